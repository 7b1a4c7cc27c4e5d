/* rw_decode.c: the decode entry point (snappy block, limits) and the rules every series must
 * pass whichever backend read it (rw_internal.h explains the two backends); see rw_decode.h.
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
#include "rw_internal.h"

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
  d->lim = *lim;
  d->lcache = NULL;
  d->lazy_labels = 0;
}

void rc_rw_decoder_close(rc_rw_decoder_t *d) {
  rw_lcache_free(d->lcache);
  d->lcache = NULL;
}

int rw_fail(rc_rw_result_t *res, rc_rw_reason_t reason, int code, const char *fmt, ...) {
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

/*------------------------------------------------------------------------------------------
 * Series acceptance, shared by both backends
 *----------------------------------------------------------------------------------------*/

/* Appends at most max bytes of s to buf[*o] (stopping before `limit`), keeping the reason one
 * printable line: control bytes and, in invalid UTF-8, bytes >= 0x80 become '?', and quotes
 * and backslashes are escaped. */
static void put_text(char *buf, size_t *o, size_t limit, const char *s, size_t len, size_t max) {
  int utf8 = rc_utf8_valid(s, len);
  for (size_t i = 0; i < len && i < max && *o + 2 < limit; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      buf[(*o)++] = '\\';
      buf[(*o)++] = (char)ch;
    } else if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !utf8)) {
      buf[(*o)++] = '?';
    } else {
      buf[(*o)++] = (char)ch;
    }
  }
}

/* Writes `{name="value", ...}` for the first labels into buf (size >= 16), for 400 reasons.
 * Names and values are cut at 40 bytes and the whole at size - 1, ending in "...}". */
static void describe_labels(char *buf, size_t size, const rc_label_t *l, uint32_t n) {
  size_t o = 0, limit = size - 5; /* room for "...}" and the NUL */
  buf[o++] = '{';
  uint32_t i;
  for (i = 0; i < n && o + 8 < limit; i++) {
    if (i) put_text(buf, &o, limit, ", ", 2, 2);
    put_text(buf, &o, limit, l[i].name, l[i].name_len, 40);
    put_text(buf, &o, limit, "=", 1, 1);
    if (o + 3 < limit) buf[o++] = '"';
    put_text(buf, &o, limit, l[i].value, l[i].value_len, 40);
    if (o + 3 < limit) buf[o++] = '"';
  }
  /* Every write above keeps o <= limit = size - 5, so "...}" and the NUL always fit. */
  if (i < n || o + 8 >= limit) {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o++] = '}';
  buf[o] = '\0';
}

void rw_reject(rw_ctx_t *c, int problem, const rc_label_t *labels, uint32_t nlabels,
               uint64_t nsamples, uint64_t nhist, uint64_t nexemplars, const char *fmt, ...) {
  rc_rw_result_t *res = c->res;
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

int rw_accept(rw_ctx_t *c, rc_series_t *s, rc_label_t *labels, uint32_t nl, int utf8_checked) {
  int bad;
  uint32_t n0 = nl, midx = 0;
  rc_label_problem_t p =
      rc_labels_normalize_ex(labels, &nl, &c->lim->labels, utf8_checked, &midx, &bad);
  if (p != RC_LP_OK) {
    char text[120];
    label_problem_text(text, sizeof(text), p, labels, bad);
    /* Early problems stop before sorting: describe the set as the sender gave it. */
    rw_reject(c, p, labels, p <= RC_LP_VALUE_UTF8 ? n0 : nl, s->nsamples, s->nhistograms,
              s->nexemplars, "%s", text);
    return 0;
  }
  for (uint32_t i = 0; i < s->nhistograms; i++) {
    char why[120];
    if (!rc_histogram_valid(&s->histograms[i], why, sizeof(why))) {
      rw_reject(c, RC_RWS_HISTOGRAM, labels, nl, s->nsamples, s->nhistograms, s->nexemplars,
                "invalid native histogram: %s", why);
      return 0;
    }
  }
  return rw_accept_known(c, s, labels, nl, midx);
}

static int append_series(rw_ctx_t *c, rc_series_t *s) {
  uint32_t stale = 0;
  for (uint32_t i = 0; i < s->nsamples; i++) stale += rc_is_stale_nan(s->samples[i].value);
  for (uint32_t i = 0; i < s->nhistograms; i++) stale += s->histograms[i].is_stale;
  s->nstale = stale;
  rc_batch_t *b = c->b;
  b->series[b->nseries++] = *s;
  b->nsamples += s->nsamples;
  b->nhistograms += s->nhistograms;
  b->nexemplars += s->nexemplars;
  b->nstale += stale;
  return 1;
}

int rw_accept_known(rw_ctx_t *c, rc_series_t *s, rc_label_t *labels, uint32_t nl,
                    uint32_t midx) {
  s->labels = labels;
  s->nlabels = nl;
  s->metric = labels[midx].value;
  s->metric_len = labels[midx].value_len;
  return append_series(c, s);
}

int rw_accept_raw(rw_ctx_t *c, rc_series_t *s, const uint8_t *raw, uint32_t raw_len,
                  uint32_t nlabels, const char *metric, uint32_t metric_len) {
  s->labels = NULL;
  s->raw_labels = raw;
  s->raw_labels_len = raw_len;
  s->nlabels = nlabels;
  s->metric = metric;
  s->metric_len = metric_len;
  return append_series(c, s);
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
    return rw_fail(res, RC_RWR_PROTOBUF, RC_EINVAL, "unknown remote write version %d", version);
  if (len == 0) return rw_fail(res, RC_RWR_EMPTY_BODY, RC_EPARSE, "empty request body");
  if (len >= sizeof(snappy_framed_magic) &&
      memcmp(body, snappy_framed_magic, sizeof(snappy_framed_magic)) == 0)
    return rw_fail(res, RC_RWR_SNAPPY_FRAMED, RC_EPARSE,
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
    return rw_fail(res, RC_RWR_TOO_LARGE, RC_ELIMIT,
                "decoded body would be %llu bytes, over the limit of %zu",
                (unsigned long long)declared, d->lim.max_decoded_bytes);
  size_t ulen;
  if (snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK)
    return rw_fail(res, RC_RWR_SNAPPY, RC_EPARSE,
                "malformed snappy block: bad uncompressed-length header");
  if (ulen > d->lim.max_decoded_bytes)
    return rw_fail(res, RC_RWR_TOO_LARGE, RC_ELIMIT,
                "decoded body would be %zu bytes, over the limit of %zu", ulen,
                d->lim.max_decoded_bytes);
  rc_arena_t a;
  /* One chunk for the decompressed bytes (the wire reader's labels point into them) and the
   * batch's arrays, which come to about as much again; protobuf-c's unpacked messages take
   * several times the wire size. */
  rc_arena_init(&a, (d->lim.reference_decoder ? 4 : 2) * ulen + 4096, d->lim.max_arena_bytes);
  rc_batch_t *b = rc_arena_alloc(&a, sizeof(*b));
  if (b == NULL) {
    int limited = a.exhausted && a.allocated + 4096 > a.limit;
    rc_arena_free(&a);
    return limited ? rw_fail(res, RC_RWR_MEMORY, RC_ELIMIT,
                          "decoded request needs more than %zu bytes of memory",
                          d->lim.max_arena_bytes)
                   : rw_fail(res, RC_RWR_MEMORY, RC_ENOMEM, "out of memory");
  }
  memset(b, 0, sizeof(*b));
  b->version = (uint8_t)version;
  char *raw = rc_arena_alloc(&a, ulen ? ulen : 1);
  if (raw == NULL) {
    rc_arena_free(&a);
    return rw_fail(res, RC_RWR_MEMORY, RC_ELIMIT,
                   "decoded request needs more than %zu bytes of memory", d->lim.max_arena_bytes);
  }
  size_t got = ulen;
  /* Also for a declared length of 0: the block must then be that header alone, and snappy
   * says so (64 NUL bytes declare 0 and are not a valid block). */
  if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != ulen) {
    rc_arena_free(&a);
    return rw_fail(res, RC_RWR_SNAPPY, RC_EPARSE, "malformed snappy block: corrupt or truncated");
  }
  res->decoded_bytes = ulen;
  if (d->lcache == NULL && !d->lim.reference_decoder) d->lcache = rw_lcache_new(); /* NULL: none */
  if (d->lcache != NULL) rw_lcache_check_limits(d->lcache, &d->lim.labels);
  rw_ctx_t ctx = {.a = &a, .lim = &d->lim, .lcache = d->lcache, .b = b, .res = res,
                  .lazy_labels = d->lazy_labels};
  const uint8_t *p = (const uint8_t *)raw;
  int rc;
  if (d->lim.reference_decoder)
    rc = version == 1 ? rw_pbc_v1(&ctx, p, ulen) : rw_pbc_v2(&ctx, p, ulen);
  else
    rc = version == 1 ? rw_wire_v1(&ctx, p, ulen) : rw_wire_v2(&ctx, p, ulen);
  if (rc != 0) {
    rc_arena_free(&a);
    return rc;
  }
  b->arena = a; /* from here on the batch owns its arena */
  *out = b;
  return 0;
}
