/* rwbuild.c: see rwbuild.h. */
#include "rwbuild.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_v1.pb-c.h"
#include "rw_decode.h"
#include "store.h"
#include "remote_v2.pb-c.h"

#define MAXS 256

struct rwb {
  int version;
  Prometheus__WriteRequest v1;
  Io__Prometheus__Write__V2__Request v2;
  /* v2 symbols */
  ProtobufCBinaryData syms[1024];
  size_t nsyms;
};

static void *xcalloc(size_t n, size_t s) {
  void *p = calloc(n ? n : 1, s);
  if (p == NULL) abort();
  return p;
}

static void *xgrow(void *p, size_t n, size_t s) {
  p = realloc(p, (n ? n : 1) * s);
  if (p == NULL) abort();
  return p;
}

static ProtobufCBinaryData bin(const char *s, size_t n) {
  ProtobufCBinaryData d;
  d.len = n;
  d.data = xcalloc(n + 1, 1);
  memcpy(d.data, s, n);
  return d;
}

rwb_t *rwb_new(int version) {
  rwb_t *b = xcalloc(1, sizeof(*b));
  b->version = version;
  prometheus__write_request__init(&b->v1);
  io__prometheus__write__v2__request__init(&b->v2);
  b->syms[0] = bin("", 0);
  b->nsyms = 1;
  return b;
}

static uint32_t sym(rwb_t *b, const char *s, size_t n) {
  for (size_t i = 0; i < b->nsyms; i++)
    if (b->syms[i].len == n && memcmp(b->syms[i].data, s, n) == 0) return (uint32_t)i;
  b->syms[b->nsyms] = bin(s, n);
  return (uint32_t)b->nsyms++;
}

void rwb_v2_first_symbol(rwb_t *b, const char *s) {
  free(b->syms[0].data);
  b->syms[0] = bin(s, strlen(s));
}

static Prometheus__TimeSeries *cur1(rwb_t *b) { return b->v1.timeseries[b->v1.n_timeseries - 1]; }
static Io__Prometheus__Write__V2__TimeSeries *cur2(rwb_t *b) {
  return b->v2.timeseries[b->v2.n_timeseries - 1];
}

void rwb_label(rwb_t *b, const char *name, size_t nlen, const char *value, size_t vlen) {
  if (b->version == 1) {
    Prometheus__TimeSeries *ts = cur1(b);
    Prometheus__Label *l = xcalloc(1, sizeof(*l));
    prometheus__label__init(l);
    l->name = bin(name, nlen);
    l->value = bin(value, vlen);
    ts->labels = xgrow(ts->labels, ts->n_labels + 1, sizeof(void *));
    ts->labels[ts->n_labels++] = l;
  } else {
    Io__Prometheus__Write__V2__TimeSeries *ts = cur2(b);
    ts->labels_refs = xgrow(ts->labels_refs, ts->n_labels_refs + 2, sizeof(uint32_t));
    ts->labels_refs[ts->n_labels_refs++] = sym(b, name, nlen);
    ts->labels_refs[ts->n_labels_refs++] = sym(b, value, vlen);
  }
}

void rwb_v2_metadata(rwb_t *b, int type, uint32_t help_ref) {
  Io__Prometheus__Write__V2__TimeSeries *ts = cur2(b);
  Io__Prometheus__Write__V2__Metadata *m = xcalloc(1, sizeof(*m));
  io__prometheus__write__v2__metadata__init(m);
  m->type = (Io__Prometheus__Write__V2__Metadata__MetricType)type;
  m->help_ref = help_ref;
  ts->metadata = m;
}

void rwb_v2_raw_ref(rwb_t *b, uint32_t ref) {
  Io__Prometheus__Write__V2__TimeSeries *ts = cur2(b);
  ts->labels_refs = xgrow(ts->labels_refs, ts->n_labels_refs + 1, sizeof(uint32_t));
  ts->labels_refs[ts->n_labels_refs++] = ref;
}

void rwb_series(rwb_t *b, const char *spec) {
  if (b->version == 1) {
    Prometheus__TimeSeries *ts = xcalloc(1, sizeof(*ts));
    prometheus__time_series__init(ts);
    b->v1.timeseries = xgrow(b->v1.timeseries, b->v1.n_timeseries + 1, sizeof(void *));
    b->v1.timeseries[b->v1.n_timeseries++] = ts;
  } else {
    Io__Prometheus__Write__V2__TimeSeries *ts = xcalloc(1, sizeof(*ts));
    io__prometheus__write__v2__time_series__init(ts);
    b->v2.timeseries = xgrow(b->v2.timeseries, b->v2.n_timeseries + 1, sizeof(void *));
    b->v2.timeseries[b->v2.n_timeseries++] = ts;
  }
  const char *p = spec;
  while (p && *p) {
    const char *eq = strchr(p, '=');
    const char *comma = strchr(p, ',');
    if (eq == NULL) break;
    const char *vend = comma ? comma : p + strlen(p);
    rwb_label(b, p, (size_t)(eq - p), eq + 1, (size_t)(vend - eq - 1));
    p = comma ? comma + 1 : NULL;
  }
}

void rwb_sample(rwb_t *b, double v, int64_t ts_ms) {
  if (b->version == 1) {
    Prometheus__TimeSeries *ts = cur1(b);
    Prometheus__Sample *s = xcalloc(1, sizeof(*s));
    prometheus__sample__init(s);
    s->value = v;
    s->timestamp = ts_ms;
    ts->samples = xgrow(ts->samples, ts->n_samples + 1, sizeof(void *));
    ts->samples[ts->n_samples++] = s;
  } else {
    Io__Prometheus__Write__V2__TimeSeries *ts = cur2(b);
    Io__Prometheus__Write__V2__Sample *s = xcalloc(1, sizeof(*s));
    io__prometheus__write__v2__sample__init(s);
    s->value = v;
    s->timestamp = ts_ms;
    ts->samples = xgrow(ts->samples, ts->n_samples + 1, sizeof(void *));
    ts->samples[ts->n_samples++] = s;
  }
}

void rwb_exemplar(rwb_t *b, double v, int64_t ts_ms) {
  if (b->version == 1) {
    Prometheus__TimeSeries *ts = cur1(b);
    Prometheus__Exemplar *e = xcalloc(1, sizeof(*e));
    prometheus__exemplar__init(e);
    e->value = v;
    e->timestamp = ts_ms;
    ts->exemplars = xgrow(ts->exemplars, ts->n_exemplars + 1, sizeof(void *));
    ts->exemplars[ts->n_exemplars++] = e;
  } else {
    Io__Prometheus__Write__V2__TimeSeries *ts = cur2(b);
    Io__Prometheus__Write__V2__Exemplar *e = xcalloc(1, sizeof(*e));
    io__prometheus__write__v2__exemplar__init(e);
    e->value = v;
    e->timestamp = ts_ms;
    ts->exemplars = xgrow(ts->exemplars, ts->n_exemplars + 1, sizeof(void *));
    ts->exemplars[ts->n_exemplars++] = e;
  }
}

#define FILL_HIST(h, PFX)                                                   \
  do {                                                                      \
    (h)->timestamp = ts_ms;                                                 \
    (h)->count_case = PFX##__COUNT_COUNT_INT;                               \
    (h)->count_int = count;                                                 \
    (h)->sum = sum;                                                         \
    (h)->schema = schema;                                                   \
    (h)->zero_threshold = 1e-128;                                           \
    (h)->zero_count_case = PFX##__ZERO_COUNT_ZERO_COUNT_INT;                \
    (h)->zero_count_int = zero_count;                                       \
    (h)->n_positive_deltas = ndeltas;                                       \
    (h)->positive_deltas = xcalloc(ndeltas, sizeof(int64_t));               \
    memcpy((h)->positive_deltas, deltas, ndeltas * sizeof(int64_t));        \
  } while (0)

void rwb_int_histogram(rwb_t *b, int64_t ts_ms, uint64_t count, double sum, int32_t schema,
                       uint64_t zero_count, const int64_t *deltas, size_t ndeltas,
                       uint32_t span_len) {
  if (b->version == 1) {
    Prometheus__TimeSeries *ts = cur1(b);
    Prometheus__Histogram *h = xcalloc(1, sizeof(*h));
    prometheus__histogram__init(h);
    FILL_HIST(h, PROMETHEUS__HISTOGRAM);
    Prometheus__BucketSpan *sp = xcalloc(1, sizeof(*sp));
    prometheus__bucket_span__init(sp);
    sp->offset = 0;
    sp->length = span_len;
    h->n_positive_spans = span_len ? 1 : 0;
    h->positive_spans = xcalloc(1, sizeof(void *));
    h->positive_spans[0] = sp;
    ts->histograms = xgrow(ts->histograms, ts->n_histograms + 1, sizeof(void *));
    ts->histograms[ts->n_histograms++] = h;
  } else {
    Io__Prometheus__Write__V2__TimeSeries *ts = cur2(b);
    Io__Prometheus__Write__V2__Histogram *h = xcalloc(1, sizeof(*h));
    io__prometheus__write__v2__histogram__init(h);
    FILL_HIST(h, IO__PROMETHEUS__WRITE__V2__HISTOGRAM);
    Io__Prometheus__Write__V2__BucketSpan *sp = xcalloc(1, sizeof(*sp));
    io__prometheus__write__v2__bucket_span__init(sp);
    sp->offset = 0;
    sp->length = span_len;
    h->n_positive_spans = span_len ? 1 : 0;
    h->positive_spans = xcalloc(1, sizeof(void *));
    h->positive_spans[0] = sp;
    ts->histograms = xgrow(ts->histograms, ts->n_histograms + 1, sizeof(void *));
    ts->histograms[ts->n_histograms++] = h;
  }
}

void rwb_metadata(rwb_t *b, const char *family) {
  Prometheus__MetricMetadata *m = xcalloc(1, sizeof(*m));
  prometheus__metric_metadata__init(m);
  m->type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER;
  m->metric_family_name = strdup(family);
  b->v1.metadata = xgrow(b->v1.metadata, b->v1.n_metadata + 1, sizeof(void *));
  b->v1.metadata[b->v1.n_metadata++] = m;
}

uint8_t *rwb_pack(rwb_t *b, size_t *len) {
  size_t n;
  uint8_t *out;
  if (b->version == 1) {
    n = prometheus__write_request__get_packed_size(&b->v1);
    out = xcalloc(n, 1);
    prometheus__write_request__pack(&b->v1, out);
  } else {
    b->v2.n_symbols = b->nsyms;
    b->v2.symbols = b->syms;
    n = io__prometheus__write__v2__request__get_packed_size(&b->v2);
    out = xcalloc(n, 1);
    io__prometheus__write__v2__request__pack(&b->v2, out);
  }
  *len = n;
  return out;
}

char *rwb_snappy(const void *raw, size_t len, size_t *out_len) {
  size_t cap = snappy_max_compressed_length(len);
  char *c = xcalloc(cap, 1);
  if (snappy_compress(raw, len, c, &cap) != SNAPPY_OK) abort();
  *out_len = cap;
  return c;
}

void rwb_free(rwb_t *b) {
  /* Every message was built with calloc/malloc, so protobuf-c's default allocator can free
   * each one with all it holds. The v2 symbols belong to b, not to the message. */
  for (size_t i = 0; i < b->v1.n_timeseries; i++)
    protobuf_c_message_free_unpacked(&b->v1.timeseries[i]->base, NULL);
  for (size_t i = 0; i < b->v1.n_metadata; i++)
    protobuf_c_message_free_unpacked(&b->v1.metadata[i]->base, NULL);
  for (size_t i = 0; i < b->v2.n_timeseries; i++)
    protobuf_c_message_free_unpacked(&b->v2.timeseries[i]->base, NULL);
  free(b->v1.timeseries);
  free(b->v2.timeseries);
  free(b->v1.metadata);
  for (size_t i = 0; i < b->nsyms; i++) free(b->syms[i].data);
  free(b);
}

char *rwb_finish(rwb_t *b, size_t *len) {
  size_t rl;
  uint8_t *raw = rwb_pack(b, &rl);
  char *c = rwb_snappy(raw, rl, len);
  free(raw);
  rwb_free(b);
  return c;
}

struct rc_store_series *rwb_store_find(struct rc_store *s, const char *spec) {
  rwb_t *b = rwb_new(1);
  rwb_series(b, spec);
  rwb_sample(b, 0, 1);
  rc_batch_t *batch = rwb_decode(b);
  if (batch == NULL) return NULL;
  rc_store_series_t *r = rc_store_find(s, batch->series[0].labels, batch->series[0].nlabels);
  rc_batch_free(batch);
  return r;
}

struct rc_batch *rwb_decode(rwb_t *b) {
  int version = b->version;
  size_t len;
  char *body = rwb_finish(b, &len);
  if (body == NULL) return NULL;
  rc_rw_limits_t lim = {.max_decoded_bytes = 1 << 26, .max_arena_bytes = 1 << 28,
                        .labels = {.max_labels = 64, .max_label_bytes = 4096}};
  rc_rw_decoder_t d;
  rc_rw_decoder_init(&d, &lim);
  rc_batch_t *batch = NULL;
  rc_rw_result_t r;
  int rc = rc_rw_decode(&d, version, body, len, &batch, &r);
  rc_rw_decoder_close(&d);
  free(body);
  if (rc != 0 || r.invalid_series) {
    fprintf(stderr, "rwb_decode: %s\n", r.msg);
    rc_batch_free(batch);
    return NULL;
  }
  return batch;
}
