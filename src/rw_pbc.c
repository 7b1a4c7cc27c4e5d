/* rw_pbc.c: the reference decode backend — protobuf-c's generated unpackers, with the batch's
 * arena as allocator (no malloc per field). It is slower than rw_wire.c (protobuf-c builds a
 * message struct and copies every string), so the daemon uses it only when asked
 * (--ingest.decoder=protobuf-c); tests and the differential fuzz target compare the two.
 * See rw_internal.h. */
#include <stdio.h>
#include <string.h>

#include "remote_v1.pb-c.h"
#include "remote_v2.pb-c.h"
#include "rw_internal.h"

/* BucketSpan has the same layout in both generated files ({base, int32 offset, uint32
 * length}); we read it through the v1 type. Checked at compile time. */
_Static_assert(offsetof(Prometheus__BucketSpan, offset) ==
                   offsetof(Io__Prometheus__Write__V2__BucketSpan, offset) &&
               offsetof(Prometheus__BucketSpan, length) ==
                   offsetof(Io__Prometheus__Write__V2__BucketSpan, length),
               "BucketSpan layouts differ between v1 and v2");

static rc_span_t *convert_spans(rc_arena_t *a, void *const *src, size_t n, int *oom) {
  if (n == 0) return NULL;
  rc_span_t *out = rc_arena_alloc(a, n * sizeof(*out));
  if (out == NULL) {
    *oom = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const Prometheus__BucketSpan *s = src[i];
    out[i].offset = s->offset;
    out[i].length = s->length;
  }
  return out;
}

/* The v1 and v2 Histogram messages have the same fields under different C type names; this
 * macro converts either into rc_histogram_t. PFX is the generated enum prefix. Sets `mixed`
 * when integer deltas and float counts are both present, `oom` on allocation failure. */
#define CONVERT_HISTOGRAM(arena, dst, src, PFX)                                             \
  do {                                                                                      \
    memset((dst), 0, sizeof(*(dst)));                                                       \
    (dst)->ts_ms = (src)->timestamp;                                                        \
    (dst)->sum = (src)->sum;                                                                \
    (dst)->is_stale = rc_is_stale_nan((src)->sum);                                          \
    (dst)->schema = (src)->schema;                                                          \
    (dst)->zero_threshold = (src)->zero_threshold;                                          \
    (dst)->reset_hint = (uint8_t)(src)->reset_hint;                                         \
    (dst)->is_float = (src)->count_case == PFX##__COUNT_COUNT_FLOAT ||                      \
                      (src)->zero_count_case == PFX##__ZERO_COUNT_ZERO_COUNT_FLOAT ||       \
                      (src)->n_positive_counts > 0 || (src)->n_negative_counts > 0;         \
    (dst)->count = (src)->count_case == PFX##__COUNT_COUNT_FLOAT ? (src)->count_float       \
                                                                 : (double)(src)->count_int; \
    (dst)->zero_count = (src)->zero_count_case == PFX##__ZERO_COUNT_ZERO_COUNT_FLOAT        \
                            ? (src)->zero_count_float                                       \
                            : (double)(src)->zero_count_int;                                \
    mixed = ((src)->n_positive_deltas || (src)->n_negative_deltas) && (dst)->is_float;      \
    (dst)->n_pos_spans = (uint32_t)(src)->n_positive_spans;                                 \
    (dst)->n_neg_spans = (uint32_t)(src)->n_negative_spans;                                 \
    (dst)->pos_spans = convert_spans(arena, (void *const *)(src)->positive_spans,           \
                                     (src)->n_positive_spans, &oom);                        \
    (dst)->neg_spans = convert_spans(arena, (void *const *)(src)->negative_spans,           \
                                     (src)->n_negative_spans, &oom);                        \
    if ((dst)->is_float) {                                                                  \
      (dst)->n_pos = (uint32_t)(src)->n_positive_counts;                                    \
      (dst)->n_neg = (uint32_t)(src)->n_negative_counts;                                    \
      (dst)->pos_counts = (src)->positive_counts;                                           \
      (dst)->neg_counts = (src)->negative_counts;                                           \
    } else {                                                                                \
      (dst)->n_pos = (uint32_t)(src)->n_positive_deltas;                                    \
      (dst)->n_neg = (uint32_t)(src)->n_negative_deltas;                                    \
      (dst)->pos_deltas = (src)->positive_deltas;                                           \
      (dst)->neg_deltas = (src)->negative_deltas;                                           \
    }                                                                                       \
    (dst)->n_custom = (uint32_t)(src)->n_custom_values;                                     \
    (dst)->custom_values = (src)->custom_values;                                            \
  } while (0)

static void set_label(rc_label_t *l, const ProtobufCBinaryData *n, const ProtobufCBinaryData *v) {
  l->name = n->data ? (const char *)n->data : "";
  l->name_len = (uint32_t)n->len;
  l->value = v->data ? (const char *)v->data : "";
  l->value_len = (uint32_t)v->len;
}

int rw_pbc_v1(rw_ctx_t *c, const uint8_t *buf, size_t len) {
  rc_arena_t *a = c->a;
  Prometheus__WriteRequest *wr = prometheus__write_request__unpack(rc_arena_pb(a), len, buf);
  if (wr == NULL) {
    if (a->exhausted) return RW_OOM(c);
    return rw_fail(c->res, RC_RWR_PROTOBUF, RC_EPARSE,
                   "malformed protobuf: not a valid prometheus.WriteRequest");
  }
  c->b->nmetadata = wr->n_metadata;
  c->b->series = rc_arena_alloc(a, (wr->n_timeseries ? wr->n_timeseries : 1) * sizeof(rc_series_t));
  if (c->b->series == NULL) return RW_OOM(c);
  for (size_t i = 0; i < wr->n_timeseries; i++) {
    const Prometheus__TimeSeries *ts = wr->timeseries[i];
    if (ts->n_samples == 0 && ts->n_histograms == 0 && ts->n_exemplars == 0) continue;
    uint32_t nl = (uint32_t)ts->n_labels;
    rc_label_t *labels = rc_arena_alloc(a, (nl ? nl : 1) * sizeof(rc_label_t));
    if (labels == NULL) return RW_OOM(c);
    for (uint32_t k = 0; k < nl; k++) set_label(&labels[k], &ts->labels[k]->name, &ts->labels[k]->value);
    rc_series_t s;
    memset(&s, 0, sizeof(s));
    s.nsamples = (uint32_t)ts->n_samples;
    s.nhistograms = (uint32_t)ts->n_histograms;
    s.nexemplars = (uint32_t)ts->n_exemplars;
    if (ts->n_samples) {
      rc_sample_t *sm = rc_arena_alloc(a, ts->n_samples * sizeof(rc_sample_t));
      if (sm == NULL) return RW_OOM(c);
      for (size_t k = 0; k < ts->n_samples; k++) {
        sm[k].value = ts->samples[k]->value;
        sm[k].ts_ms = ts->samples[k]->timestamp;
        sm[k].start_ts_ms = 0;
      }
      s.samples = sm;
    }
    if (ts->n_histograms) {
      rc_histogram_t *hs = rc_arena_alloc(a, ts->n_histograms * sizeof(rc_histogram_t));
      if (hs == NULL) return RW_OOM(c);
      int oom = 0, any_mixed = 0;
      for (size_t k = 0; k < ts->n_histograms; k++) {
        int mixed = 0;
        CONVERT_HISTOGRAM(a, &hs[k], ts->histograms[k], PROMETHEUS__HISTOGRAM);
        any_mixed |= mixed;
      }
      if (oom) return RW_OOM(c);
      if (any_mixed) {
        rw_reject(c, RC_RWS_HISTOGRAM, labels, nl, s.nsamples, s.nhistograms, s.nexemplars,
                  "invalid native histogram: " RW_MIXED_HISTOGRAM);
        continue;
      }
      s.histograms = hs;
    }
    rw_accept(c, &s, labels, nl, 0);
  }
  return 0;
}

static int refs_valid(const uint32_t *refs, size_t n, size_t nsym) {
  if (n % 2) return 0;
  for (size_t i = 0; i < n; i++)
    if (refs[i] >= nsym) return 0;
  return 1;
}

int rw_pbc_v2(rw_ctx_t *c, const uint8_t *buf, size_t len) {
  rc_arena_t *a = c->a;
  Io__Prometheus__Write__V2__Request *rq =
      io__prometheus__write__v2__request__unpack(rc_arena_pb(a), len, buf);
  if (rq == NULL) {
    if (a->exhausted) return RW_OOM(c);
    return rw_fail(c->res, RC_RWR_PROTOBUF, RC_EPARSE,
                   "malformed protobuf: not a valid io.prometheus.write.v2.Request");
  }
  size_t nsym = rq->n_symbols;
  if (rq->n_timeseries > 0 && (nsym == 0 || rq->symbols[0].len != 0))
    return rw_fail(c->res, RC_RWR_SYMBOLS, RC_EPARSE,
                   "symbols table must be present and start with the empty string");
  c->b->series = rc_arena_alloc(a, (rq->n_timeseries ? rq->n_timeseries : 1) * sizeof(rc_series_t));
  if (c->b->series == NULL) return RW_OOM(c);
  for (size_t i = 0; i < rq->n_timeseries; i++) {
    const Io__Prometheus__Write__V2__TimeSeries *ts = rq->timeseries[i];
    uint64_t ns = ts->n_samples, nh = ts->n_histograms, ne = ts->n_exemplars;
    if (!refs_valid(ts->labels_refs, ts->n_labels_refs, nsym)) {
      rw_reject(c, RC_RWS_LABEL_REFS, NULL, 0, ns, nh, ne,
                "labels_refs has odd length or points outside the %zu symbols", nsym);
      continue;
    }
    uint32_t nl = (uint32_t)(ts->n_labels_refs / 2);
    rc_label_t *labels = rc_arena_alloc(a, (nl ? nl : 1) * sizeof(rc_label_t));
    if (labels == NULL) return RW_OOM(c);
    for (uint32_t k = 0; k < nl; k++)
      set_label(&labels[k], &rq->symbols[ts->labels_refs[2 * k]],
                &rq->symbols[ts->labels_refs[2 * k + 1]]);
    if (ns && nh) {
      rw_reject(c, RC_RWS_MIXED, labels, nl, ns, nh, ne,
                "a series must not carry both samples and histograms");
      continue;
    }
    if (!ns && !nh) {
      rw_reject(c, RC_RWS_EMPTY, labels, nl, ns, nh, ne, "a series must carry samples or histograms");
      continue;
    }
    int bad_ex = 0;
    for (size_t k = 0; k < ts->n_exemplars && !bad_ex; k++)
      bad_ex = !refs_valid(ts->exemplars[k]->labels_refs, ts->exemplars[k]->n_labels_refs, nsym);
    if (bad_ex) {
      rw_reject(c, RC_RWS_EXEMPLAR_REFS, labels, nl, ns, nh, ne,
                "exemplar labels_refs has odd length or points outside the symbols");
      continue;
    }
    if (ts->metadata != NULL && (ts->metadata->help_ref >= nsym || ts->metadata->unit_ref >= nsym)) {
      rw_reject(c, RC_RWS_METADATA_REFS, labels, nl, ns, nh, ne,
                "metadata help_ref or unit_ref points outside the symbols");
      continue;
    }
    rc_series_t s;
    memset(&s, 0, sizeof(s));
    s.nsamples = (uint32_t)ns;
    s.nhistograms = (uint32_t)nh;
    s.nexemplars = (uint32_t)ne;
    if (ts->metadata != NULL && (unsigned)ts->metadata->type <= RC_MTYPE_STATESET)
      s.mtype = (uint8_t)ts->metadata->type;
    if (ns) {
      rc_sample_t *sm = rc_arena_alloc(a, ns * sizeof(rc_sample_t));
      if (sm == NULL) return RW_OOM(c);
      for (size_t k = 0; k < ns; k++) {
        sm[k].value = ts->samples[k]->value;
        sm[k].ts_ms = ts->samples[k]->timestamp;
        sm[k].start_ts_ms = ts->samples[k]->start_timestamp ? ts->samples[k]->start_timestamp
                                                            : ts->created_timestamp;
      }
      s.samples = sm;
    }
    if (nh) {
      rc_histogram_t *hs = rc_arena_alloc(a, nh * sizeof(rc_histogram_t));
      if (hs == NULL) return RW_OOM(c);
      int oom = 0, any_mixed = 0;
      for (size_t k = 0; k < nh; k++) {
        const Io__Prometheus__Write__V2__Histogram *src = ts->histograms[k];
        int mixed = 0;
        CONVERT_HISTOGRAM(a, &hs[k], src, IO__PROMETHEUS__WRITE__V2__HISTOGRAM);
        hs[k].start_ts_ms = src->start_timestamp ? src->start_timestamp : ts->created_timestamp;
        any_mixed |= mixed;
      }
      if (oom) return RW_OOM(c);
      if (any_mixed) {
        rw_reject(c, RC_RWS_HISTOGRAM, labels, nl, ns, nh, ne,
                  "invalid native histogram: " RW_MIXED_HISTOGRAM);
        continue;
      }
      s.histograms = hs;
    }
    rw_accept(c, &s, labels, nl, 0);
  }
  return 0;
}
