/* rw_decode.c: snappy block -> protobuf-c -> validated rc_batch_t; see rw_decode.h.
 *
 * Wire format recap (shared/reference/remote-write.md):
 *
 *   body = snappy_block( WriteRequest | Request )
 *          ^^^^^^^^^^^^ starts with the uncompressed length as a base-128 varint; we read it
 *                       (snappy_uncompressed_length, O(1)) and check it before allocating.
 *   v1 WriteRequest{ 1: repeated TimeSeries{labels, samples, exemplars, histograms},
 *                    3: repeated MetricMetadata }
 *   v2 Request{ 4: repeated bytes symbols (symbols[0] == ""), 5: repeated TimeSeries{
 *                 1: labels_refs (name,value pairs into symbols), 2: samples,
 *                 3: histograms, 4: exemplars, 5: metadata, 6: rc.3 created_timestamp } }
 */
#include "rw_decode.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rc.h"
#include "remote_v1.pb-c.h"
#include "remote_v2.pb-c.h"

static const char *const reason_names[] = {
#define RC_RWR_STR(n, s) s,
    RC_RW_REASONS(RC_RWR_STR)
#undef RC_RWR_STR
};

const char *rc_rw_reason_name(rc_rw_reason_t r) {
  return (unsigned)r < RC_RWR__COUNT ? reason_names[r] : "unknown";
}

static const char *const series_problem_names[] = {
#define RC_RWS_STR(n, s) s,
    RC_RW_SERIES_PROBLEMS(RC_RWS_STR)
#undef RC_RWS_STR
};

const char *rc_rw_series_problem_name(int p) {
  if (p >= 0 && p < RC_LP__COUNT) return rc_label_problem_name((rc_label_problem_t)p);
  if (p >= RC_LP__COUNT && p < RC_RWS__COUNT) return series_problem_names[p - RC_LP__COUNT];
  return "unknown";
}

void rc_rw_decoder_init(rc_rw_decoder_t *d, const rc_rw_limits_t *lim) {
  d->buf = NULL;
  d->cap = 0;
  d->lim = *lim;
}

void rc_rw_decoder_close(rc_rw_decoder_t *d) {
  free(d->buf);
  d->buf = NULL;
  d->cap = 0;
}

static int fail(rc_rw_result_t *res, rc_rw_reason_t reason, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(rc_rw_result_t *res, rc_rw_reason_t reason, int code, const char *fmt, ...) {
  va_list ap;
  res->reason = reason;
  va_start(ap, fmt);
  vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
  va_end(ap);
  return code;
}

/*------------------------------------------------------------------------------------------
 * Histograms
 *----------------------------------------------------------------------------------------*/

static int spans_total(const rc_span_t *spans, uint32_t n, uint64_t *total, char *why,
                       size_t wsz, const char *side) {
  uint64_t t = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (i > 0 && spans[i].offset < 0) {
      snprintf(why, wsz, "%s span %" PRIu32 " has negative offset %" PRId32, side, i,
               spans[i].offset);
      return 0;
    }
    t += spans[i].length;
  }
  *total = t;
  return 1;
}

int rc_histogram_valid(const rc_histogram_t *h, char *why, size_t wsz) {
  if (h->is_stale) return 1; /* a staleness marker: every other field is ignored */
  if (!(h->schema >= -4 && h->schema <= 8) && h->schema != -53) {
    snprintf(why, wsz, "schema %" PRId32 " out of range (-4..8, or -53)", h->schema);
    return 0;
  }
  if (isnan(h->zero_threshold) || h->zero_threshold < 0) {
    snprintf(why, wsz, "zero threshold must be >= 0");
    return 0;
  }
  uint64_t npos, nneg;
  if (!spans_total(h->pos_spans, h->n_pos_spans, &npos, why, wsz, "positive") ||
      !spans_total(h->neg_spans, h->n_neg_spans, &nneg, why, wsz, "negative"))
    return 0;
  if (npos != h->n_pos || nneg != h->n_neg) {
    snprintf(why, wsz,
             "spans describe %" PRIu64 "/%" PRIu64 " buckets but %" PRIu32 "/%" PRIu32
             " counts were sent (positive/negative)",
             npos, nneg, h->n_pos, h->n_neg);
    return 0;
  }
  double total = h->zero_count;
  if (h->is_float) {
    for (uint32_t i = 0; i < h->n_pos + h->n_neg; i++) {
      double c = i < h->n_pos ? h->pos_counts[i] : h->neg_counts[i - h->n_pos];
      if (!(c >= 0)) {
        snprintf(why, wsz, "negative or NaN bucket count");
        return 0;
      }
      total += c;
    }
    if (!(h->zero_count >= 0) || !(h->count >= 0)) {
      snprintf(why, wsz, "negative or NaN count");
      return 0;
    }
  } else {
    /* Integer histograms send deltas; the running sum is the bucket count and must stay
     * non-negative. Buckets are summed in double: exact up to 2^53 observations. */
    for (int side = 0; side < 2; side++) {
      const int64_t *d = side ? h->neg_deltas : h->pos_deltas;
      uint32_t n = side ? h->n_neg : h->n_pos;
      int64_t cur = 0;
      for (uint32_t i = 0; i < n; i++) {
        if (__builtin_add_overflow(cur, d[i], &cur) || cur < 0) {
          snprintf(why, wsz, "bucket count below zero or overflowing");
          return 0;
        }
        total += (double)cur;
      }
    }
  }
  if (h->count < total && !(h->is_float && h->count >= total * (1 - 1e-9))) {
    snprintf(why, wsz, "count %g is less than the %g observations in its buckets", h->count,
             total);
    return 0;
  }
  if (h->schema == -53) {
    if (h->n_neg_spans || h->n_neg || h->zero_count != 0) {
      snprintf(why, wsz, "custom-bucket histogram with negative or zero buckets");
      return 0;
    }
    for (uint32_t i = 0; i < h->n_custom; i++) {
      if (isnan(h->custom_values[i]) || (i > 0 && !(h->custom_values[i] > h->custom_values[i - 1]))) {
        snprintf(why, wsz, "custom bucket bounds must be strictly increasing");
        return 0;
      }
    }
    /* Bucket i counts observations <= custom_values[i]; index n_custom is the +Inf bucket,
     * so the highest populated index may be n_custom but not more. */
    int64_t last = -1, pos = 0;
    for (uint32_t i = 0; i < h->n_pos_spans; i++) {
      pos += h->pos_spans[i].offset;
      if (i == 0 && pos < 0) {
        snprintf(why, wsz, "custom-bucket span starts below index 0");
        return 0;
      }
      if (h->pos_spans[i].length) last = pos + h->pos_spans[i].length - 1;
      pos += h->pos_spans[i].length;
    }
    if (last > (int64_t)h->n_custom) {
      snprintf(why, wsz, "bucket index %" PRId64 " beyond the %" PRIu32 " custom bounds", last,
               h->n_custom);
      return 0;
    }
  } else if (h->n_custom) {
    snprintf(why, wsz, "custom bucket bounds on an exponential schema");
    return 0;
  }
  return 1;
}

/* The v1 and v2 Histogram messages have the same fields under different C type names; this
 * macro converts either into rc_histogram_t. PFX is the generated enum prefix. */
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
    mixed = ((src)->n_positive_deltas || (src)->n_negative_deltas) &&                       \
            ((dst)->is_float || (src)->count_case == PFX##__COUNT_COUNT_FLOAT);             \
    (dst)->n_pos_spans = (uint32_t)(src)->n_positive_spans;                                 \
    (dst)->n_neg_spans = (uint32_t)(src)->n_negative_spans;                                 \
    rc_span_t *ps_ = convert_spans(arena, (void *const *)(src)->positive_spans,             \
                                   (src)->n_positive_spans, &oom);                          \
    rc_span_t *ns_ = convert_spans(arena, (void *const *)(src)->negative_spans,             \
                                   (src)->n_negative_spans, &oom);                          \
    (dst)->pos_spans = ps_;                                                                 \
    (dst)->neg_spans = ns_;                                                                 \
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

/* BucketSpan has the same layout in both generated files ({base, int32 offset, uint32
 * length}); we read it through the v1 type. Checked at compile time below. */
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

/*------------------------------------------------------------------------------------------
 * Series bookkeeping shared by both versions
 *----------------------------------------------------------------------------------------*/

/* Writes `{name="value", ...}` for the first few labels into buf, for error messages. */
static void describe_labels(char *buf, size_t size, const rc_label_t *l, uint32_t n) {
  size_t o = 0;
  buf[o++] = '{';
  for (uint32_t i = 0; i < n && o + 8 < size; i++) {
    int w = snprintf(buf + o, size - o, "%s%.*s=\"%.*s\"", i ? ", " : "",
                     (int)(l[i].name_len > 40 ? 40 : l[i].name_len), l[i].name,
                     (int)(l[i].value_len > 40 ? 40 : l[i].value_len), l[i].value);
    if (w < 0 || (size_t)w >= size - o) {
      o = size - 5;
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    o += (size_t)w;
  }
  buf[o++] = '}';
  buf[o] = '\0';
}

static void series_invalid(rc_rw_result_t *res, int problem, const rc_label_t *labels,
                           uint32_t nlabels, uint64_t nsamples, uint64_t nhist,
                           uint64_t nexemplars, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void series_invalid(rc_rw_result_t *res, int problem, const rc_label_t *labels,
                           uint32_t nlabels, uint64_t nsamples, uint64_t nhist,
                           uint64_t nexemplars, const char *fmt, ...) {
  if (res->invalid_series == 0) {
    char what[160], desc[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    describe_labels(desc, sizeof(desc), labels, nlabels);
    snprintf(res->msg, sizeof(res->msg), "invalid series %s: %s", desc, what);
  }
  res->invalid_series++;
  res->invalid_by[problem]++;
  res->dropped_samples += nsamples;
  res->dropped_histograms += nhist;
  res->dropped_exemplars += nexemplars;
}

/* Label-problem text for the 400 reason; bad is the offending label or -1. */
static void label_problem_text(char *buf, size_t size, rc_label_problem_t p,
                               const rc_label_t *l, int bad) {
  const char *what = "";
  switch (p) {
    case RC_LP_NAME_EMPTY: what = "empty label name"; break;
    case RC_LP_NAME_INVALID: what = "invalid label name"; break;
    case RC_LP_NAME_UTF8: what = "label name is not valid UTF-8"; break;
    case RC_LP_VALUE_UTF8: what = "label value is not valid UTF-8"; break;
    case RC_LP_DUPLICATE: what = "duplicate label name"; break;
    case RC_LP_NO_METRIC_NAME: what = "missing metric name (__name__ label)"; break;
    case RC_LP_METRIC_NAME_INVALID: what = "invalid metric name"; break;
    case RC_LP_TOO_MANY: what = "too many labels"; break;
    case RC_LP_TOO_LONG: what = "labels too long"; break;
    default: what = "invalid labels"; break;
  }
  if (bad >= 0 && (p == RC_LP_DUPLICATE || p == RC_LP_NAME_INVALID ||
                   p == RC_LP_METRIC_NAME_INVALID))
    snprintf(buf, size, "%s \"%.*s\"", what, (int)(l[bad].name_len > 60 ? 60 : l[bad].name_len),
             p == RC_LP_METRIC_NAME_INVALID ? l[bad].value : l[bad].name);
  else
    snprintf(buf, size, "%s", what);
}

/* Normalises a series' labels; on failure records the problem and returns 0. */
static int series_labels(rc_rw_result_t *res, const rc_label_limits_t *lim, rc_label_t *labels,
                         uint32_t *nlabels, uint32_t *metric_idx, uint64_t ns, uint64_t nh,
                         uint64_t ne) {
  int bad;
  uint32_t n0 = *nlabels;
  rc_label_problem_t p = rc_labels_normalize(labels, nlabels, lim, metric_idx, &bad);
  if (p == RC_LP_OK) return 1;
  char text[120];
  label_problem_text(text, sizeof(text), p, labels, bad);
  /* Describe the labels as they are now; for early problems that is still the sender's set. */
  series_invalid(res, p, labels, p <= RC_LP_VALUE_UTF8 ? n0 : *nlabels, ns, nh, ne, "%s", text);
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Version 1
 *----------------------------------------------------------------------------------------*/

static int decode_v1(rc_arena_t *a, const rc_rw_limits_t *lim, const char *buf, size_t len,
                     rc_batch_t *b, rc_rw_result_t *res) {
  Prometheus__WriteRequest *wr =
      prometheus__write_request__unpack(rc_arena_pb(a), len, (const uint8_t *)buf);
  if (wr == NULL) {
    if (a->exhausted)
      return fail(res, RC_RWR_MEMORY, RC_ELIMIT,
                  "decoded request needs more than %zu bytes of memory", lim->max_arena_bytes);
    return fail(res, RC_RWR_PROTOBUF, RC_EPARSE,
                "malformed protobuf: not a valid prometheus.WriteRequest");
  }
  b->nmetadata = wr->n_metadata;
  b->series = rc_arena_alloc(a, (wr->n_timeseries ? wr->n_timeseries : 1) * sizeof(rc_series_t));
  if (b->series == NULL) goto oom;
  for (size_t i = 0; i < wr->n_timeseries; i++) {
    const Prometheus__TimeSeries *ts = wr->timeseries[i];
    uint32_t nl = (uint32_t)ts->n_labels, midx = 0;
    rc_label_t *labels = rc_arena_alloc(a, (nl ? nl : 1) * sizeof(rc_label_t));
    if (labels == NULL) goto oom;
    for (uint32_t k = 0; k < nl; k++) {
      const Prometheus__Label *l = ts->labels[k];
      labels[k].name = l->name.data ? (const char *)l->name.data : "";
      labels[k].name_len = (uint32_t)l->name.len;
      labels[k].value = l->value.data ? (const char *)l->value.data : "";
      labels[k].value_len = (uint32_t)l->value.len;
    }
    if (ts->n_samples == 0 && ts->n_histograms == 0 && ts->n_exemplars == 0) continue;
    if (!series_labels(res, &lim->labels, labels, &nl, &midx, ts->n_samples, ts->n_histograms,
                       ts->n_exemplars))
      continue;
    rc_series_t *s = &b->series[b->nseries];
    memset(s, 0, sizeof(*s));
    s->labels = labels;
    s->nlabels = nl;
    s->metric = labels[midx].value;
    s->metric_len = labels[midx].value_len;
    if (ts->n_samples) {
      rc_sample_t *sm = rc_arena_alloc(a, ts->n_samples * sizeof(rc_sample_t));
      if (sm == NULL) goto oom;
      for (size_t k = 0; k < ts->n_samples; k++) {
        sm[k].value = ts->samples[k]->value;
        sm[k].ts_ms = ts->samples[k]->timestamp;
        sm[k].start_ts_ms = 0;
        s->nstale += rc_is_stale_nan(sm[k].value);
      }
      s->samples = sm;
      s->nsamples = (uint32_t)ts->n_samples;
    }
    if (ts->n_histograms) {
      rc_histogram_t *hs = rc_arena_alloc(a, ts->n_histograms * sizeof(rc_histogram_t));
      if (hs == NULL) goto oom;
      int bad_hist = 0, oom = 0, mixed = 0;
      char why[120] = "";
      for (size_t k = 0; k < ts->n_histograms && !bad_hist; k++) {
        const Prometheus__Histogram *src = ts->histograms[k];
        CONVERT_HISTOGRAM(a, &hs[k], src, PROMETHEUS__HISTOGRAM);
        if (oom) goto oom;
        if (mixed) {
          snprintf(why, sizeof(why), "histogram mixes integer deltas and float counts");
          bad_hist = 1;
        } else if (!rc_histogram_valid(&hs[k], why, sizeof(why))) {
          bad_hist = 1;
        }
        s->nstale += hs[k].is_stale;
      }
      if (bad_hist) {
        series_invalid(res, RC_RWS_HISTOGRAM, labels, nl, ts->n_samples, ts->n_histograms,
                       ts->n_exemplars, "invalid native histogram: %s", why);
        continue;
      }
      s->histograms = hs;
      s->nhistograms = (uint32_t)ts->n_histograms;
    }
    s->nexemplars = (uint32_t)ts->n_exemplars;
    b->nseries++;
    b->nsamples += s->nsamples;
    b->nhistograms += s->nhistograms;
    b->nexemplars += s->nexemplars;
    b->nstale += s->nstale;
  }
  return 0;
oom:
  return fail(res, RC_RWR_MEMORY, RC_ELIMIT, "decoded request needs more than %zu bytes of memory",
              lim->max_arena_bytes);
}

/*------------------------------------------------------------------------------------------
 * Version 2
 *----------------------------------------------------------------------------------------*/

static int refs_valid(const uint32_t *refs, size_t n, size_t nsym) {
  if (n % 2) return 0;
  for (size_t i = 0; i < n; i++)
    if (refs[i] >= nsym) return 0;
  return 1;
}

static int decode_v2(rc_arena_t *a, const rc_rw_limits_t *lim, const char *buf, size_t len,
                     rc_batch_t *b, rc_rw_result_t *res) {
  Io__Prometheus__Write__V2__Request *rq =
      io__prometheus__write__v2__request__unpack(rc_arena_pb(a), len, (const uint8_t *)buf);
  if (rq == NULL) {
    if (a->exhausted)
      return fail(res, RC_RWR_MEMORY, RC_ELIMIT,
                  "decoded request needs more than %zu bytes of memory", lim->max_arena_bytes);
    return fail(res, RC_RWR_PROTOBUF, RC_EPARSE,
                "malformed protobuf: not a valid io.prometheus.write.v2.Request");
  }
  size_t nsym = rq->n_symbols;
  if (rq->n_timeseries > 0 && (nsym == 0 || rq->symbols[0].len != 0))
    return fail(res, RC_RWR_SYMBOLS, RC_EPARSE,
                "symbols table must be present and start with the empty string");
  b->series = rc_arena_alloc(a, (rq->n_timeseries ? rq->n_timeseries : 1) * sizeof(rc_series_t));
  if (b->series == NULL) goto oom;
  for (size_t i = 0; i < rq->n_timeseries; i++) {
    const Io__Prometheus__Write__V2__TimeSeries *ts = rq->timeseries[i];
    uint64_t ns = ts->n_samples, nh = ts->n_histograms, ne = ts->n_exemplars;
    if (!refs_valid(ts->labels_refs, ts->n_labels_refs, nsym)) {
      series_invalid(res, RC_RWS_LABEL_REFS, NULL, 0, ns, nh, ne,
                     "labels_refs has odd length or points outside the %zu symbols", nsym);
      continue;
    }
    uint32_t nl = (uint32_t)(ts->n_labels_refs / 2), midx = 0;
    rc_label_t *labels = rc_arena_alloc(a, (nl ? nl : 1) * sizeof(rc_label_t));
    if (labels == NULL) goto oom;
    for (uint32_t k = 0; k < nl; k++) {
      const ProtobufCBinaryData *n = &rq->symbols[ts->labels_refs[2 * k]];
      const ProtobufCBinaryData *v = &rq->symbols[ts->labels_refs[2 * k + 1]];
      labels[k].name = n->data ? (const char *)n->data : "";
      labels[k].name_len = (uint32_t)n->len;
      labels[k].value = v->data ? (const char *)v->data : "";
      labels[k].value_len = (uint32_t)v->len;
    }
    if (!series_labels(res, &lim->labels, labels, &nl, &midx, ns, nh, ne)) continue;
    if (ns && nh) {
      series_invalid(res, RC_RWS_MIXED, labels, nl, ns, nh, ne,
                     "a series must not carry both samples and histograms");
      continue;
    }
    if (!ns && !nh) {
      series_invalid(res, RC_RWS_EMPTY, labels, nl, ns, nh, ne,
                     "a series must carry samples or histograms");
      continue;
    }
    int bad_ex = 0;
    for (size_t k = 0; k < ts->n_exemplars && !bad_ex; k++)
      bad_ex = !refs_valid(ts->exemplars[k]->labels_refs, ts->exemplars[k]->n_labels_refs, nsym);
    if (bad_ex) {
      series_invalid(res, RC_RWS_EXEMPLAR_REFS, labels, nl, ns, nh, ne,
                     "exemplar labels_refs has odd length or points outside the symbols");
      continue;
    }
    rc_series_t *s = &b->series[b->nseries];
    memset(s, 0, sizeof(*s));
    s->labels = labels;
    s->nlabels = nl;
    s->metric = labels[midx].value;
    s->metric_len = labels[midx].value_len;
    if (ts->metadata != NULL && (unsigned)ts->metadata->type <= RC_MTYPE_STATESET)
      s->mtype = (uint8_t)ts->metadata->type;
    if (ns) {
      rc_sample_t *sm = rc_arena_alloc(a, ns * sizeof(rc_sample_t));
      if (sm == NULL) goto oom;
      for (size_t k = 0; k < ns; k++) {
        sm[k].value = ts->samples[k]->value;
        sm[k].ts_ms = ts->samples[k]->timestamp;
        sm[k].start_ts_ms = ts->samples[k]->start_timestamp ? ts->samples[k]->start_timestamp
                                                            : ts->created_timestamp;
        s->nstale += rc_is_stale_nan(sm[k].value);
      }
      s->samples = sm;
      s->nsamples = (uint32_t)ns;
    }
    if (nh) {
      rc_histogram_t *hs = rc_arena_alloc(a, nh * sizeof(rc_histogram_t));
      if (hs == NULL) goto oom;
      int bad_hist = 0, oom = 0, mixed = 0;
      char why[120] = "";
      for (size_t k = 0; k < nh && !bad_hist; k++) {
        const Io__Prometheus__Write__V2__Histogram *src = ts->histograms[k];
        CONVERT_HISTOGRAM(a, &hs[k], src, IO__PROMETHEUS__WRITE__V2__HISTOGRAM);
        if (oom) goto oom;
        hs[k].start_ts_ms = src->start_timestamp ? src->start_timestamp : ts->created_timestamp;
        if (mixed) {
          snprintf(why, sizeof(why), "histogram mixes integer deltas and float counts");
          bad_hist = 1;
        } else if (!rc_histogram_valid(&hs[k], why, sizeof(why))) {
          bad_hist = 1;
        }
        s->nstale += hs[k].is_stale;
      }
      if (bad_hist) {
        series_invalid(res, RC_RWS_HISTOGRAM, labels, nl, ns, nh, ne,
                       "invalid native histogram: %s", why);
        continue;
      }
      s->histograms = hs;
      s->nhistograms = (uint32_t)nh;
    }
    s->nexemplars = (uint32_t)ne;
    b->nseries++;
    b->nsamples += s->nsamples;
    b->nhistograms += s->nhistograms;
    b->nexemplars += s->nexemplars;
    b->nstale += s->nstale;
  }
  return 0;
oom:
  return fail(res, RC_RWR_MEMORY, RC_ELIMIT, "decoded request needs more than %zu bytes of memory",
              lim->max_arena_bytes);
}

/*------------------------------------------------------------------------------------------
 * Entry point
 *----------------------------------------------------------------------------------------*/

/* The snappy framing format's stream identifier chunk: type 0xff, length 6, "sNaPpY". */
static const char snappy_framed_magic[10] = {'\xff', 6, 0, 0, 's', 'N', 'a', 'P', 'p', 'Y'};

int rc_rw_decode(rc_rw_decoder_t *d, int version, const char *body, size_t len,
                 rc_batch_t **out, rc_rw_result_t *res) {
  memset(res, 0, sizeof(*res));
  *out = NULL;
  if (version != 1 && version != 2)
    return fail(res, RC_RWR_PROTOBUF, RC_EINVAL, "unknown remote write version %d", version);
  if (len == 0) return fail(res, RC_RWR_EMPTY_BODY, RC_EPARSE, "empty request body");
  if (len >= sizeof(snappy_framed_magic) &&
      memcmp(body, snappy_framed_magic, sizeof(snappy_framed_magic)) == 0)
    return fail(res, RC_RWR_SNAPPY_FRAMED, RC_EPARSE,
                "snappy framed (stream) format is not accepted; send the block format");
  /* Read the declared length ourselves first: snappy's own reader stops at 32 bits, and a
   * declared 4 GiB should be answered "too large" (413), not "malformed" (400). */
  uint64_t declared = 0;
  size_t vi = 0;
  for (int shift = 0; vi < len && vi < 10; vi++, shift += 7) {
    declared |= (uint64_t)((unsigned char)body[vi] & 0x7f) << shift;
    if (!((unsigned char)body[vi] & 0x80)) break;
  }
  if (vi < len && vi < 10 && declared > d->lim.max_decoded_bytes)
    return fail(res, RC_RWR_TOO_LARGE, RC_ELIMIT,
                "decoded body would be %llu bytes, over the limit of %zu",
                (unsigned long long)declared, d->lim.max_decoded_bytes);
  size_t ulen;
  if (snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK)
    return fail(res, RC_RWR_SNAPPY, RC_EPARSE,
                "malformed snappy block: bad uncompressed-length header");
  if (ulen > d->lim.max_decoded_bytes)
    return fail(res, RC_RWR_TOO_LARGE, RC_ELIMIT,
                "decoded body would be %zu bytes, over the limit of %zu", ulen,
                d->lim.max_decoded_bytes);
  if (ulen > d->cap) {
    /* The scratch buffer only grows; its size is bounded by max_decoded_bytes. */
    size_t cap = d->cap ? d->cap : 64 * 1024;
    while (cap < ulen) cap *= 2;
    if (cap > d->lim.max_decoded_bytes) cap = d->lim.max_decoded_bytes;
    char *nb = realloc(d->buf, cap ? cap : 1);
    if (nb == NULL) return fail(res, RC_RWR_MEMORY, RC_ENOMEM, "out of memory decompressing");
    d->buf = nb;
    d->cap = cap;
  }
  size_t got = ulen;
  if (ulen > 0 && (snappy_uncompress(body, len, d->buf, &got) != SNAPPY_OK || got != ulen))
    return fail(res, RC_RWR_SNAPPY, RC_EPARSE, "malformed snappy block: corrupt or truncated");
  res->decoded_bytes = ulen;

  rc_arena_t a;
  /* protobuf-c's unpacked form is typically 2-4x the wire size. */
  rc_arena_init(&a, ulen * 3 + 4096, d->lim.max_arena_bytes);
  rc_batch_t *b = rc_arena_alloc(&a, sizeof(*b));
  if (b == NULL) {
    int limited = a.exhausted && a.allocated + 4096 > a.limit;
    rc_arena_free(&a);
    return limited ? fail(res, RC_RWR_MEMORY, RC_ELIMIT,
                          "decoded request needs more than %zu bytes of memory",
                          d->lim.max_arena_bytes)
                   : fail(res, RC_RWR_MEMORY, RC_ENOMEM, "out of memory");
  }
  memset(b, 0, sizeof(*b));
  b->version = (uint8_t)version;
  int rc = version == 1 ? decode_v1(&a, &d->lim, d->buf, ulen, b, res)
                        : decode_v2(&a, &d->lim, d->buf, ulen, b, res);
  if (rc != 0) {
    rc_arena_free(&a);
    return rc;
  }
  b->arena = a; /* from here on the batch owns its arena */
  *out = b;
  return 0;
}
