/* histwin.c: float native histograms (rc_fhist_t) and per-series windows of histogram
 * samples (rc_histwin_t); see histwin.h for the contract.
 *
 * Semantics follow prometheus/prometheus model/histogram/float_histogram.go (Add, Sub, Mul,
 * DetectReset, zeroCountForLargerThreshold, reconcileZeroBuckets, CopyToSchema) and
 * promql/functions.go (histogramRate, extrapolatedRate), re-derived, not copied. Per bucket
 * the same additions happen in the same order as there, which is what makes results bit-equal:
 * a dense run differs from Prometheus' spans only in holding zeros where Prometheus has no
 * bucket, and adding or skipping a zero never changes a sum.
 *
 * Two deliberate departures, both documented in the header of each function:
 *  - Reset hints: RESET is believed, NO_RESET is verified like UNKNOWN. Prometheus' own TSDB
 *    re-derives resets at append time (a chunk is cut on a detected reset) and only then marks
 *    samples NotCounterReset, so for data it ingested itself a NO it sees is always true; a
 *    remote-write NO is the sender's claim, and believing a wrong one yields negative rates.
 *  - Custom bounds that differ between two samples that must be added or subtracted: newer
 *    Prometheus intersects the bounds (with an info annotation), older 3.x dropped the result;
 *    we drop it (RC_ENOTSUP). A change of custom bounds is a counter reset (3.0-3.4 rule).
 *
 * Chunk encoding (bytes; varints are LEB128, signed ones zigzag):
 *   flags: bit0 stale marker, bit1 layout follows, bit2 counts are raw doubles, bits3-4 hint
 *   ts: first sample of a chunk: svarint ts; later: svarint delta-of-delta
 *   (stale: nothing more)
 *   layout (first sample of a chunk and whenever it changed): svarint schema, 8 bytes zero
 *     threshold, svarint pos_off, varint pos_len, svarint neg_off, varint neg_len,
 *     schema -53: varint ncustom + 8 bytes per bound
 *   sum: XOR with the previous sample's sum: one byte (leading zero bytes << 4 | trailing zero
 *     bytes) then the bytes between, most significant first; 0xff when equal
 *   counts (count, zero count, pos run, neg run): raw doubles (bit2), or svarint deltas: against
 *     the previous sample's same slot when the layout is unchanged and the previous sample was
 *     integral too, else against the previous entry of the same list (0 for the first).
 */
#include "histwin.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ebr.h"
#include "sketch.h"

/* Runs produced by arithmetic (the union of many samples' runs) are capped too. */
#define MAX_UNION_RUN (1u << 20)

static inline int64_t wsub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t sat_sub(int64_t a, int64_t b) { return a < INT64_MIN + b ? INT64_MIN : a - b; }

static uint64_t dbits(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}
static double bitsd(uint64_t b) {
  double v;
  memcpy(&v, &b, 8);
  return v;
}

static inline int is_custom(const rc_fhist_t *h) { return h->schema == RC_FHIST_SCHEMA_CUSTOM; }

/* Upper bound of exponential bucket idx (Prometheus getBoundExponential). */
static inline double ub(int32_t schema, int64_t idx) {
  return rc_sketch_upper_bound(schema, (int32_t)idx);
}

/* Floor of i / 2^d for any sign. */
static inline int64_t floor_shift(int64_t i, int d) {
  return i >= 0 ? i >> d : -((-i - 1) >> d) - 1;
}
/* Index at a coarser schema (Prometheus targetIdx). */
static inline int64_t target_idx(int64_t i, int d) { return d == 0 ? i : floor_shift(i - 1, d) + 1; }

/*------------------------------------------------------------------------------------------
 * Runs
 *----------------------------------------------------------------------------------------*/

typedef struct side {
  double **v;
  int32_t *off;
  uint32_t *len, *cap;
} side_t;

static side_t side_of(rc_fhist_t *h, int sign) {
  if (sign > 0) return (side_t){&h->pos, &h->pos_off, &h->pos_len, &h->pos_cap};
  return (side_t){&h->neg, &h->neg_off, &h->neg_len, &h->neg_cap};
}

static void cside(const rc_fhist_t *h, int sign, const double **v, int32_t *off, uint32_t *len) {
  *v = sign > 0 ? h->pos : h->neg;
  *off = sign > 0 ? h->pos_off : h->neg_off;
  *len = sign > 0 ? h->pos_len : h->neg_len;
}

/* Makes the run cover [lo, hi] (new entries zero). */
static int run_cover(side_t s, int64_t lo, int64_t hi) {
  int64_t olo = *s.off, ohi = (int64_t)*s.off + *s.len - 1;
  if (*s.len == 0) olo = lo, ohi = hi;
  int64_t nlo = lo < olo ? lo : olo, nhi = hi > ohi ? hi : ohi;
  if (*s.len != 0 && nlo == olo && nhi == ohi) return 0;
  if (nhi - nlo + 1 > (int64_t)MAX_UNION_RUN) return RC_ELIMIT;
  uint32_t n = (uint32_t)(nhi - nlo + 1);
  if (*s.len == 0) {
    if (n > *s.cap) {
      double *nv = realloc(*s.v, n * sizeof(double));
      if (nv == NULL) return RC_ENOMEM;
      *s.v = nv;
      *s.cap = n;
    }
    if (n > 0) memset(*s.v, 0, n * sizeof(double)); /* memset(NULL, 0, 0) is undefined */
  } else {
    double *nv = *s.v;
    if (n > *s.cap) {
      uint32_t cap = n + n / 4;
      nv = malloc((size_t)cap * sizeof(double));
      if (nv == NULL) return RC_ENOMEM;
      memcpy(nv + (olo - nlo), *s.v, *s.len * sizeof(double));
      free(*s.v);
      *s.v = nv;
      *s.cap = cap;
    } else {
      memmove(nv + (olo - nlo), nv, *s.len * sizeof(double));
    }
    memset(nv, 0, (size_t)(olo - nlo) * sizeof(double));
    memset(nv + (olo - nlo) + *s.len, 0, (size_t)(nhi - ohi) * sizeof(double));
  }
  *s.off = (int32_t)nlo;
  *s.len = n;
  return 0;
}

/* Drops zero counts at both ends: a zero is no bucket. */
static void run_trim(side_t s) {
  uint32_t a = 0, b = *s.len;
  while (a < b && (*s.v)[a] == 0) a++;
  while (b > a && (*s.v)[b - 1] == 0) b--;
  if (a == b) {
    *s.len = 0;
    *s.off = 0;
    return;
  }
  if (a > 0) memmove(*s.v, *s.v + a, (b - a) * sizeof(double));
  *s.off += (int32_t)a;
  *s.len = b - a;
}

static void trim(rc_fhist_t *h) {
  run_trim(side_of(h, 1));
  run_trim(side_of(h, -1));
}

/*------------------------------------------------------------------------------------------
 * Basics
 *----------------------------------------------------------------------------------------*/

void rc_fhist_init(rc_fhist_t *h) { memset(h, 0, sizeof(*h)); }

void rc_fhist_free(rc_fhist_t *h) {
  free(h->pos);
  free(h->neg);
  free(h->custom);
  rc_fhist_init(h);
}

static int set_custom(rc_fhist_t *h, const double *c, uint32_t n) {
  if (n > h->custom_cap) {
    double *nc = realloc(h->custom, n * sizeof(double));
    if (nc == NULL) return RC_ENOMEM;
    h->custom = nc;
    h->custom_cap = n;
  }
  if (n) memcpy(h->custom, c, n * sizeof(double));
  h->ncustom = n;
  return 0;
}

static int set_run(side_t s, int32_t off, const double *v, uint32_t len) {
  if (len > *s.cap) {
    double *nv = realloc(*s.v, len * sizeof(double));
    if (nv == NULL) return RC_ENOMEM;
    *s.v = nv;
    *s.cap = len;
  }
  if (len) memcpy(*s.v, v, len * sizeof(double));
  *s.off = len ? off : 0;
  *s.len = len;
  return 0;
}

int rc_fhist_copy(rc_fhist_t *dst, const rc_fhist_t *src) {
  if (dst == src) return 0;
  if (set_run(side_of(dst, 1), src->pos_off, src->pos, src->pos_len) != 0 ||
      set_run(side_of(dst, -1), src->neg_off, src->neg, src->neg_len) != 0 ||
      set_custom(dst, src->custom, src->ncustom) != 0)
    return RC_ENOMEM;
  dst->schema = src->schema;
  dst->hint = src->hint;
  dst->warn = src->warn;
  dst->zero_threshold = src->zero_threshold;
  dst->zero_count = src->zero_count;
  dst->count = src->count;
  dst->sum = src->sum;
  return 0;
}

double rc_fhist_bucket(const rc_fhist_t *h, int sign, int32_t idx) {
  const double *v;
  int32_t off;
  uint32_t len;
  cside(h, sign, &v, &off, &len);
  int64_t k = (int64_t)idx - off;
  return k >= 0 && k < (int64_t)len ? v[k] : 0;
}

static int custom_equal(const rc_fhist_t *a, const rc_fhist_t *b) {
  if (a->ncustom != b->ncustom) return 0;
  for (uint32_t i = 0; i < a->ncustom; i++)
    if (a->custom[i] != b->custom[i]) return 0;
  return 1;
}

int rc_fhist_equal(const rc_fhist_t *a, const rc_fhist_t *b) {
  if (a->schema != b->schema || a->zero_threshold != b->zero_threshold ||
      dbits(a->zero_count) != dbits(b->zero_count) || dbits(a->count) != dbits(b->count) ||
      dbits(a->sum) != dbits(b->sum) || a->pos_len != b->pos_len || a->neg_len != b->neg_len ||
      a->ncustom != b->ncustom)
    return 0;
  if (a->pos_len && a->pos_off != b->pos_off) return 0;
  if (a->neg_len && a->neg_off != b->neg_off) return 0;
  for (uint32_t i = 0; i < a->pos_len; i++)
    if (dbits(a->pos[i]) != dbits(b->pos[i])) return 0;
  for (uint32_t i = 0; i < a->neg_len; i++)
    if (dbits(a->neg[i]) != dbits(b->neg[i])) return 0;
  for (uint32_t i = 0; i < a->ncustom; i++)
    if (dbits(a->custom[i]) != dbits(b->custom[i])) return 0;
  return 1;
}

/*------------------------------------------------------------------------------------------
 * From the wire
 *----------------------------------------------------------------------------------------*/

static int bad_count(double c) { return !(c >= 0) || isinf(c); }

/* Walks one sign's spans: checks them against n and the index range, yields absolute counts.
 * With out == NULL it only validates and finds the nonzero index range [*lo, *hi]. */
static int walk_side(const rc_histogram_t *h, int sign, int64_t ilo, int64_t ihi, double *out,
                     int64_t out_off, int64_t *lo, int64_t *hi) {
  uint32_t nspans = sign > 0 ? h->n_pos_spans : h->n_neg_spans;
  uint32_t n = sign > 0 ? h->n_pos : h->n_neg;
  const rc_span_t *sp = sign > 0 ? h->pos_spans : h->neg_spans;
  const int64_t *d = sign > 0 ? h->pos_deltas : h->neg_deltas;
  const double *fc = sign > 0 ? h->pos_counts : h->neg_counts;
  if ((nspans && sp == NULL) || (n && (h->is_float ? fc == NULL : d == NULL))) return RC_EINVAL;
  uint64_t total = 0;
  for (uint32_t i = 0; i < nspans; i++) total += sp[i].length;
  if (total != n) return RC_EINVAL;
  int64_t idx = 0, acc = 0;
  uint32_t k = 0;
  for (uint32_t i = 0; i < nspans; i++) {
    if (i > 0 && sp[i].offset < 0) return RC_EINVAL;
    idx += sp[i].offset;
    for (uint32_t j = 0; j < sp[i].length; j++, idx++, k++) {
      if (idx < ilo || idx > ihi) return RC_EINVAL;
      double c;
      if (h->is_float) {
        c = fc[k];
        if (bad_count(c)) return RC_EINVAL;
      } else {
        if (__builtin_add_overflow(acc, d[k], &acc) || acc < 0) return RC_EINVAL;
        c = (double)acc;
      }
      if (c == 0) continue;
      if (out != NULL) {
        out[idx - out_off] = c;
      } else {
        if (idx < *lo) *lo = idx;
        if (idx > *hi) *hi = idx;
      }
    }
  }
  return 0;
}

int rc_fhist_from_histogram(rc_fhist_t *dst, const rc_histogram_t *h) {
  if (h == NULL || h->is_stale) return RC_EINVAL;
  int32_t s = h->schema;
  int custom = s == RC_FHIST_SCHEMA_CUSTOM;
  if (!custom && (s < -4 || s > 8)) return s >= 9 && s <= 52 ? RC_ENOTSUP : RC_EINVAL;
  if (bad_count(h->count) || bad_count(h->zero_count) || bad_count(h->zero_threshold))
    return RC_EINVAL;
  if (h->reset_hint > RC_HINT_GAUGE) return RC_EINVAL;
  if (!h->is_float && (h->count != trunc(h->count) || h->zero_count != trunc(h->zero_count)))
    return RC_EINVAL;
  int64_t ilo, ihi;
  if (custom) {
    if (h->zero_threshold != 0 || h->zero_count != 0 || h->n_neg_spans || h->n_neg)
      return RC_EINVAL;
    if (h->n_custom > RC_FHIST_MAX_CUSTOM) return RC_ELIMIT;
    if (h->n_custom && h->custom_values == NULL) return RC_EINVAL;
    for (uint32_t i = 0; i < h->n_custom; i++) {
      double c = h->custom_values[i];
      if (!isfinite(c) || (i > 0 && !(c > h->custom_values[i - 1]))) return RC_EINVAL;
    }
    ilo = 0;
    ihi = h->n_custom;
  } else {
    if (h->n_custom) return RC_EINVAL;
    ilo = -(INT64_C(1) << (11 + (s > 0 ? s : 0)));
    ihi = (s >= 0 ? (INT64_C(1) << (10 + s)) : (INT64_C(1024) >> -s)) + 1;
  }
  int64_t lo[2] = {INT64_MAX, INT64_MAX}, hi[2] = {INT64_MIN, INT64_MIN};
  for (int k = 0; k < 2; k++) {
    int rc = walk_side(h, k ? -1 : 1, ilo, ihi, NULL, 0, &lo[k], &hi[k]);
    if (rc != 0) return rc;
    if (lo[k] <= hi[k] && hi[k] - lo[k] + 1 > (int64_t)RC_FHIST_MAX_RUN) return RC_ELIMIT;
  }
  dst->pos_len = dst->neg_len = 0;
  dst->pos_off = dst->neg_off = 0;
  for (int k = 0; k < 2; k++) {
    if (lo[k] > hi[k]) continue;
    side_t sd = side_of(dst, k ? -1 : 1);
    if (run_cover(sd, lo[k], hi[k]) != 0) return RC_ENOMEM;
    walk_side(h, k ? -1 : 1, ilo, ihi, *sd.v, lo[k], &lo[k], &hi[k]);
  }
  if (set_custom(dst, h->custom_values, custom ? h->n_custom : 0) != 0) return RC_ENOMEM;
  dst->schema = s;
  dst->hint = h->reset_hint;
  dst->warn = 0;
  dst->zero_threshold = h->zero_threshold;
  dst->zero_count = h->zero_count;
  dst->count = h->count;
  dst->sum = h->sum;
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Arithmetic
 *----------------------------------------------------------------------------------------*/

int rc_fhist_reduce(rc_fhist_t *h, int32_t target) {
  if (is_custom(h) || target >= h->schema) return 0;
  int d = h->schema - target;
  for (int sign = 1; sign >= -1; sign -= 2) {
    side_t s = side_of(h, sign);
    if (*s.len == 0) continue;
    int64_t lo = target_idx(*s.off, d), hi = target_idx((int64_t)*s.off + *s.len - 1, d);
    uint32_t n = (uint32_t)(hi - lo + 1);
    double *nv = calloc(n, sizeof(double));
    if (nv == NULL) return RC_ENOMEM;
    /* Ascending index order, as Prometheus' merging iterator sums. */
    for (uint32_t i = 0; i < *s.len; i++) nv[target_idx((int64_t)*s.off + i, d) - lo] += (*s.v)[i];
    free(*s.v);
    *s.v = nv;
    *s.cap = n;
    *s.len = n;
    *s.off = (int32_t)lo;
    run_trim(s);
  }
  h->schema = target;
  return 0;
}

/* What h's zero count would be with the (larger or equal) threshold thr, and the threshold
 * actually needed: widened to the upper bound of a populated bucket it would cut
 * (Prometheus zeroCountForLargerThreshold). Exponential schemas only. */
static void zero_for_threshold(const rc_fhist_t *h, double thr, double *cnt, double *nthr) {
  if (thr == h->zero_threshold) {
    *cnt = h->zero_count;
    *nthr = thr;
    return;
  }
  for (;;) {
    double c = h->zero_count;
    int again = 0;
    for (int sign = 1; sign >= -1 && !again; sign -= 2) {
      const double *v;
      int32_t off;
      uint32_t len;
      cside(h, sign, &v, &off, &len);
      for (uint32_t i = 0; i < len; i++) {
        int64_t idx = (int64_t)off + i;
        if (ub(h->schema, idx - 1) >= thr) break;
        c += v[i];
        double up = ub(h->schema, idx);
        if (up > thr) {
          if (v[i] != 0) {
            thr = up;
            /* A negative bucket moved it: the positive side must be redone. */
            again = sign < 0;
          }
          break;
        }
      }
    }
    if (!again) {
      *cnt = c;
      *nthr = thr;
      return;
    }
  }
}

/* Zeroes the buckets that now lie inside the zero bucket (their counts were added to it). */
static void trim_in_zero(rc_fhist_t *h) {
  for (int sign = 1; sign >= -1; sign -= 2) {
    side_t s = side_of(h, sign);
    for (uint32_t i = 0; i < *s.len; i++) {
      if (ub(h->schema, (int64_t)*s.off + i - 1) >= h->zero_threshold) break;
      (*s.v)[i] = 0;
    }
    run_trim(s);
  }
}

/* Brings h and other to a common zero threshold, changing h; returns other's zero count at
 * that threshold (Prometheus reconcileZeroBuckets). */
static double reconcile_zero(rc_fhist_t *h, const rc_fhist_t *other) {
  double oc = other->zero_count, ot = other->zero_threshold;
  while (ot != h->zero_threshold) {
    if (h->zero_threshold > ot) zero_for_threshold(other, h->zero_threshold, &oc, &ot);
    if (ot > h->zero_threshold) {
      double c, t;
      zero_for_threshold(h, ot, &c, &t);
      h->zero_count = c;
      h->zero_threshold = t;
      trim_in_zero(h);
    }
  }
  return oc;
}

static void adjust_hint(rc_fhist_t *h, const rc_fhist_t *o) {
  if (o->hint == h->hint || h->hint == RC_HINT_GAUGE) return;
  if (o->hint == RC_HINT_GAUGE) h->hint = RC_HINT_GAUGE;
  else h->hint = RC_HINT_UNKNOWN; /* unknown on either side, or a RESET/NO_RESET clash */
}

static int addsub(rc_fhist_t *h, const rc_fhist_t *other, int neg) {
  int custom = is_custom(h);
  if (custom != is_custom(other) || (custom && !custom_equal(h, other))) return RC_ENOTSUP;
  adjust_hint(h, other);
  if (!custom) {
    double oz = reconcile_zero(h, other);
    h->zero_count = neg ? h->zero_count - oz : h->zero_count + oz;
  }
  h->count = neg ? h->count - other->count : h->count + other->count;
  h->sum = neg ? h->sum - other->sum : h->sum + other->sum;
  if (!custom && other->schema < h->schema) {
    int rc = rc_fhist_reduce(h, other->schema);
    if (rc != 0) return rc;
  }
  int d = custom ? 0 : other->schema - h->schema;
  for (int sign = 1; sign >= -1; sign -= 2) {
    const double *v;
    int32_t off;
    uint32_t len;
    cside(other, sign, &v, &off, &len);
    if (len == 0) continue;
    /* Other's buckets at h's schema; the leading ones inside h's zero bucket are skipped. */
    int64_t lo = target_idx(off, d), hi = target_idx((int64_t)off + len - 1, d);
    uint32_t skip = 0;
    if (!custom)
      while (lo <= hi && ub(h->schema, lo) <= h->zero_threshold) lo++;
    if (lo > hi) continue;
    side_t s = side_of(h, sign);
    int rc = run_cover(s, lo, hi);
    if (rc != 0) return rc;
    if (d == 0) {
      skip = (uint32_t)(lo - off);
      for (uint32_t i = skip; i < len; i++) {
        double *p = &(*s.v)[(int64_t)off + i - *s.off];
        *p = neg ? *p - v[i] : *p + v[i];
      }
      continue;
    }
    /* Merge other's buckets into each target bucket first (0 + b1 + b2 ...), then add. */
    uint32_t i = 0;
    while (i < len) {
      int64_t t = target_idx((int64_t)off + i, d);
      double m = 0;
      while (i < len && target_idx((int64_t)off + i, d) == t) m += v[i++];
      if (t < lo) continue;
      double *p = &(*s.v)[t - *s.off];
      *p = neg ? *p - m : *p + m;
    }
  }
  trim(h);
  return 0;
}

int rc_fhist_add(rc_fhist_t *h, const rc_fhist_t *other) { return addsub(h, other, 0); }
int rc_fhist_sub(rc_fhist_t *h, const rc_fhist_t *other) { return addsub(h, other, 1); }

void rc_fhist_mul(rc_fhist_t *h, double f) {
  h->zero_count *= f;
  h->count *= f;
  h->sum *= f;
  for (uint32_t i = 0; i < h->pos_len; i++) h->pos[i] *= f;
  for (uint32_t i = 0; i < h->neg_len; i++) h->neg[i] *= f;
}

int rc_fhist_detect_reset(const rc_fhist_t *cur, const rc_fhist_t *prev) {
  if (cur->hint == RC_HINT_RESET) return 1;
  /* RC_HINT_NO_RESET is verified like UNKNOWN (see the file header). GAUGE is treated as a
   * counter, as Prometheus does when rate() is applied to one. */
  if (cur->count < prev->count) return 1;
  if (is_custom(cur) && (!is_custom(prev) || !custom_equal(cur, prev))) return 1;
  if (cur->schema > prev->schema) return 1; /* also: custom before, exponential now */
  if (cur->zero_threshold < prev->zero_threshold) return 1;
  double pz, thr;
  zero_for_threshold(prev, cur->zero_threshold, &pz, &thr);
  if (thr != cur->zero_threshold) return 1;
  if (cur->zero_count < pz) return 1;
  int custom = is_custom(cur), d = custom ? 0 : prev->schema - cur->schema;
  for (int sign = 1; sign >= -1; sign -= 2) {
    const double *v;
    int32_t off;
    uint32_t len;
    cside(prev, sign, &v, &off, &len);
    uint32_t i = 0;
    int below = !custom;
    while (i < len) {
      int64_t t = target_idx((int64_t)off + i, d);
      double m = 0;
      while (i < len && target_idx((int64_t)off + i, d) == t) m += v[i++];
      if (below && ub(cur->schema, t) <= cur->zero_threshold) continue;
      below = 0;
      if (m != 0 && rc_fhist_bucket(cur, sign, (int32_t)t) < m) return 1;
    }
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * rate() / increase()
 *----------------------------------------------------------------------------------------*/

/* Go's time.Duration.Seconds() of a millisecond count (see window.c). */
static double duration_seconds(int64_t ms) {
  return (double)(ms / 1000) + (double)((ms % 1000) * 1000000) / 1e9;
}

/* histogramRate for counters: last - first at the coarsest schema of the range, plus every
 * histogram that preceded a reset. 3.x: a reset between the first two samples replaces the
 * first one by an empty histogram (so its layout cannot make the range incompatible). */
static int histogram_rate(const rc_fhist_t *const *p, size_t n, rc_compat_t compat,
                          rc_fhist_t *h) {
  rc_fhist_t empty;
  rc_fhist_init(&empty);
  const rc_fhist_t *prev = p[0], *last = p[n - 1];
  h->warn = 0;
  if (compat == RC_COMPAT_PROM2) {
    /* 2.42 predates custom buckets. */
    for (size_t i = 0; i < n; i++)
      if (is_custom(p[i])) return RC_ENOTSUP;
  }
  if (prev->hint == RC_HINT_GAUGE || last->hint == RC_HINT_GAUGE) h->warn |= RC_FHIST_WARN_NOT_COUNTER;
  if (compat == RC_COMPAT_PROM3 && rc_fhist_detect_reset(p[1], prev)) {
    /* Borrowed bounds: empty is never freed, only read. */
    empty.schema = p[1]->schema;
    empty.custom = p[1]->custom;
    empty.ncustom = p[1]->ncustom;
    prev = &empty;
  }
  int custom = is_custom(prev);
  if (is_custom(last) != custom) return RC_ENOTSUP;
  int32_t min_schema = last->schema < prev->schema ? last->schema : prev->schema;
  for (size_t i = 1; i + 1 < n; i++) {
    if (p[i]->hint == RC_HINT_GAUGE) h->warn |= RC_FHIST_WARN_NOT_COUNTER;
    if (p[i]->schema < min_schema) min_schema = p[i]->schema;
    if (is_custom(p[i]) != custom) return RC_ENOTSUP;
  }
  uint8_t warn = h->warn;
  int rc = rc_fhist_copy(h, last);
  if (rc == 0) rc = rc_fhist_reduce(h, min_schema);
  if (rc == 0) rc = rc_fhist_sub(h, prev);
  for (size_t i = 1; rc == 0 && i < n; i++) {
    if (rc_fhist_detect_reset(p[i], prev)) rc = rc_fhist_add(h, prev);
    prev = p[i];
  }
  h->warn = warn;
  h->hint = RC_HINT_GAUGE;
  return rc;
}

int rc_fhist_extrapolated_rate(const rc_fhist_t *const *p, const int64_t *ts, size_t n,
                               int64_t range_start, int64_t range_end, int64_t range_ms,
                               int is_rate, rc_compat_t compat, rc_fhist_t *out) {
  if (n < 2) return RC_ENOENT;
  int rc = histogram_rate(p, n, compat, out);
  if (rc != 0) return rc;
  double to_start = (double)wsub(ts[0], range_start) / 1000;
  double to_end = (double)wsub(range_end, ts[n - 1]) / 1000;
  double sampled = (double)wsub(ts[n - 1], ts[0]) / 1000;
  double avg = sampled / (double)(n - 1);
  double threshold = avg * 1.1;
  double factor;
  if (compat == RC_COMPAT_PROM2) {
    /* 2.42: the zero clamp looked at the float result only (0 for histograms), then the
     * threshold decided between the gap and half an interval. */
    double interval = sampled;
    interval += to_start < threshold ? to_start : avg / 2;
    interval += to_end < threshold ? to_end : avg / 2;
    factor = interval / sampled;
  } else {
    if (to_start >= threshold) to_start = avg / 2;
    /* 3.6+: counters do not go below zero, judged by the observation count. */
    double to_zero = to_start;
    if (out->count > 0 && p[0]->count >= 0) to_zero = sampled * (p[0]->count / out->count);
    if (to_zero < to_start) to_start = to_zero;
    if (to_end >= threshold) to_end = avg / 2;
    factor = (sampled + to_start + to_end) / sampled;
  }
  if (is_rate) factor /= duration_seconds(range_ms);
  rc_fhist_mul(out, factor);
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Chunk codec
 *----------------------------------------------------------------------------------------*/

struct rc_hchunk {
  int64_t min_ts;
  _Atomic int64_t max_ts;
  _Atomic uint64_t pub; /* count << 32 | bytes, stored (release) after the bytes */
  uint32_t count, nbytes, cap;
  uint8_t data[];
};
typedef struct rc_hchunk rc_hchunk_t;

struct rc_hchunk_list {
  _Atomic uint32_t n;
  uint32_t cap;
  rc_hchunk_t *_Atomic c[];
};

/* Encoder and decoder state: the previous sample of the chunk, which the next one is coded
 * against. */
typedef struct hstate {
  rc_fhist_t prev; /* the last non-stale sample, valid when has_prev */
  int has_prev, prev_int;
  int64_t last_ts, prev_dts;
  uint32_t n;
  rc_mem_t *mem; /* prev's buffers: the window's accountant for an encoder (they live as
                    long as the head chunk), NULL for a reader's decoder (temporaries) */
} hstate_t;

struct rc_histwin_enc {
  hstate_t st;
};

enum { F_STALE = 1, F_LAYOUT = 2, F_RAW = 4 };

static void st_init(hstate_t *s, rc_mem_t *mem) {
  memset(s, 0, sizeof(*s));
  rc_fhist_init(&s->prev);
  s->mem = mem;
}
static void st_free(hstate_t *s) {
  rc_mem_free(s->mem, s->prev.pos);
  rc_mem_free(s->mem, s->prev.neg);
  rc_mem_free(s->mem, s->prev.custom);
  rc_fhist_init(&s->prev);
}

static void put_uv(uint8_t *b, uint32_t *p, uint64_t v) {
  while (v >= 0x80) {
    b[(*p)++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b[(*p)++] = (uint8_t)v;
}
static void put_sv(uint8_t *b, uint32_t *p, int64_t v) {
  /* Zig-zag; the sign is taken from the unsigned bits (a right shift of a negative signed
   * value is implementation-defined). */
  put_uv(b, p, ((uint64_t)v << 1) ^ ((uint64_t)0 - ((uint64_t)v >> 63)));
}
static void put_f64(uint8_t *b, uint32_t *p, double v) {
  uint64_t x = dbits(v);
  for (int i = 0; i < 8; i++) b[(*p)++] = (uint8_t)(x >> (8 * i));
}
static uint64_t get_uv(const uint8_t *b, uint32_t *p) {
  uint64_t v = 0;
  for (int s = 0; s < 64; s += 7) {
    uint8_t c = b[(*p)++];
    v |= (uint64_t)(c & 0x7f) << s;
    if (!(c & 0x80)) break;
  }
  return v;
}
static int64_t get_sv(const uint8_t *b, uint32_t *p) {
  uint64_t u = get_uv(b, p);
  return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}
static double get_f64(const uint8_t *b, uint32_t *p) {
  uint64_t x = 0;
  for (int i = 0; i < 8; i++) x |= (uint64_t)b[(*p)++] << (8 * i);
  return bitsd(x);
}

static int is_intval(double v) {
  return v >= 0 && v == trunc(v) && v <= 9007199254740992.0 && !signbit(v);
}

static int all_int(const rc_fhist_t *h) {
  if (!is_intval(h->count) || !is_intval(h->zero_count)) return 0;
  for (uint32_t i = 0; i < h->pos_len; i++)
    if (!is_intval(h->pos[i])) return 0;
  for (uint32_t i = 0; i < h->neg_len; i++)
    if (!is_intval(h->neg[i])) return 0;
  return 1;
}

static int same_layout(const rc_fhist_t *a, const rc_fhist_t *b) {
  return a->schema == b->schema && dbits(a->zero_threshold) == dbits(b->zero_threshold) &&
         a->pos_off == b->pos_off && a->pos_len == b->pos_len && a->neg_off == b->neg_off &&
         a->neg_len == b->neg_len && a->ncustom == b->ncustom &&
         (a->ncustom == 0 || memcmp(a->custom, b->custom, a->ncustom * sizeof(double)) == 0);
}

/* Bytes a sample can take at most. */
static size_t enc_bound(const rc_fhist_t *h) {
  return h ? 80 + 8 * (size_t)h->ncustom + 10 * (2 + (size_t)h->pos_len + h->neg_len) : 16;
}

/* Encodes (ts, h) (h NULL: stale marker) against s into out; s is not changed. */
static uint32_t enc_sample(const hstate_t *s, uint8_t *out, int64_t ts, const rc_fhist_t *h,
                           uint8_t hint) {
  uint32_t p = 1;
  uint8_t f = (uint8_t)((hint & 3) << 3);
  if (s->n == 0) put_sv(out, &p, ts);
  else put_sv(out, &p, wsub(wsub(ts, s->last_ts), s->prev_dts));
  if (h == NULL) {
    out[0] = f | F_STALE;
    return p;
  }
  int layout = !s->has_prev || !same_layout(h, &s->prev);
  int integral = all_int(h);
  if (layout) {
    f |= F_LAYOUT;
    put_sv(out, &p, h->schema);
    put_f64(out, &p, h->zero_threshold);
    put_sv(out, &p, h->pos_off);
    put_uv(out, &p, h->pos_len);
    put_sv(out, &p, h->neg_off);
    put_uv(out, &p, h->neg_len);
    if (h->schema == RC_FHIST_SCHEMA_CUSTOM) {
      put_uv(out, &p, h->ncustom);
      for (uint32_t i = 0; i < h->ncustom; i++) put_f64(out, &p, h->custom[i]);
    }
  }
  uint64_t x = dbits(h->sum) ^ (s->has_prev ? dbits(s->prev.sum) : 0);
  if (x == 0) {
    out[p++] = 0xff;
  } else {
    int lz = __builtin_clzll(x) / 8, tz = __builtin_ctzll(x) / 8;
    out[p++] = (uint8_t)(lz << 4 | tz);
    for (int i = 7 - lz; i >= tz; i--) out[p++] = (uint8_t)(x >> (8 * i));
  }
  if (!integral) {
    f |= F_RAW;
    put_f64(out, &p, h->count);
    put_f64(out, &p, h->zero_count);
    for (uint32_t i = 0; i < h->pos_len; i++) put_f64(out, &p, h->pos[i]);
    for (uint32_t i = 0; i < h->neg_len; i++) put_f64(out, &p, h->neg[i]);
  } else {
    int vs_prev = !layout && s->prev_int;
    const rc_fhist_t *q = &s->prev;
    put_sv(out, &p, (int64_t)h->count - (vs_prev ? (int64_t)q->count : 0));
    put_sv(out, &p, (int64_t)h->zero_count - (vs_prev ? (int64_t)q->zero_count : 0));
    for (int sign = 1; sign >= -1; sign -= 2) {
      const double *v = sign > 0 ? h->pos : h->neg, *pv = sign > 0 ? q->pos : q->neg;
      uint32_t len = sign > 0 ? h->pos_len : h->neg_len;
      for (uint32_t i = 0; i < len; i++) {
        int64_t base = vs_prev ? (int64_t)pv[i] : (i ? (int64_t)v[i - 1] : 0);
        put_sv(out, &p, (int64_t)v[i] - base);
      }
    }
  }
  out[0] = f;
  return p;
}

/* Grows a run's or the bounds' buffer to hold n values, keeping its content; an encoder's
 * (mem set) not at the accountant's limit. */
static int grow(rc_mem_t *mem, double **v, uint32_t *cap, uint32_t n) {
  if (n <= *cap) return 0;
  if (rc_mem_level(mem) >= RC_MEM_FULL) return RC_EMEMORY;
  double *nv = rc_mem_realloc(mem, *v, n * sizeof(double));
  if (nv == NULL) return RC_ENOMEM;
  *v = nv;
  *cap = n;
  return 0;
}

/* Makes room in s for h, so that st_commit() cannot fail. The state stays valid either way. */
static int st_reserve(hstate_t *s, const rc_fhist_t *h) {
  if (h == NULL) return 0;
  int rc;
  if ((rc = grow(s->mem, &s->prev.pos, &s->prev.pos_cap, h->pos_len)) != 0 ||
      (rc = grow(s->mem, &s->prev.neg, &s->prev.neg_cap, h->neg_len)) != 0 ||
      (rc = grow(s->mem, &s->prev.custom, &s->prev.custom_cap, h->ncustom)) != 0)
    return rc;
  return 0;
}

/* Commits a sample just written to the state; st_reserve() came first, so nothing allocates. */
static void st_commit(hstate_t *s, int64_t ts, const rc_fhist_t *h) {
  if (h != NULL) {
    rc_fhist_copy(&s->prev, h);
    s->has_prev = 1;
    s->prev_int = all_int(h);
  }
  s->prev_dts = s->n == 0 ? 0 : wsub(ts, s->last_ts);
  s->last_ts = ts;
  s->n++;
}

/* The integer bucket counts of one span list: each delta-coded against the same bucket of the
 * previous sample (vs_prev) or against the bucket before it. */
static void dec_deltas(const uint8_t *b, uint32_t *p, double *vv, uint32_t len, int vs_prev) {
  for (uint32_t i = 0; i < len; i++) {
    int64_t base = vs_prev ? (int64_t)vv[i] : (i ? (int64_t)vv[i - 1] : 0);
    vv[i] = (double)(get_sv(b, p) + base);
  }
}

/* Decodes the next sample at *p into s (s->prev is the sample unless *stale). */
static int dec_sample(hstate_t *s, const uint8_t *b, uint32_t *p, int64_t *ts, int *stale) {
  uint8_t f = b[(*p)++];
  int64_t v = get_sv(b, p);
  if (s->n == 0) {
    *ts = v;
    s->prev_dts = 0;
  } else {
    s->prev_dts = wadd(s->prev_dts, v);
    *ts = wadd(s->last_ts, s->prev_dts);
  }
  s->last_ts = *ts;
  s->n++;
  *stale = f & F_STALE;
  if (*stale) return 0;
  rc_fhist_t *h = &s->prev;
  int layout = f & F_LAYOUT;
  int vs_prev = !layout && s->prev_int && !(f & F_RAW);
  if (layout) {
    h->schema = (int32_t)get_sv(b, p);
    h->zero_threshold = get_f64(b, p);
    h->pos_off = (int32_t)get_sv(b, p);
    h->pos_len = (uint32_t)get_uv(b, p);
    h->neg_off = (int32_t)get_sv(b, p);
    h->neg_len = (uint32_t)get_uv(b, p);
    h->ncustom = h->schema == RC_FHIST_SCHEMA_CUSTOM ? (uint32_t)get_uv(b, p) : 0;
    if (grow(s->mem, &h->pos, &h->pos_cap, h->pos_len) != 0 ||
        grow(s->mem, &h->neg, &h->neg_cap, h->neg_len) != 0 ||
        grow(s->mem, &h->custom, &h->custom_cap, h->ncustom) != 0) {
      /* This decoder cannot go on; callers stop at the error. The lengths go back to what
       * the arrays hold, so that the state stays consistent whatever a caller does next. */
      s->has_prev = 0;
      h->pos_len = h->pos_cap < h->pos_len ? 0 : h->pos_len;
      h->neg_len = h->neg_cap < h->neg_len ? 0 : h->neg_len;
      h->ncustom = h->custom_cap < h->ncustom ? 0 : h->ncustom;
      return RC_ENOMEM;
    }
    for (uint32_t i = 0; i < h->ncustom; i++) h->custom[i] = get_f64(b, p);
  }
  uint8_t xh = b[(*p)++];
  uint64_t x = 0;
  if (xh != 0xff) {
    int lz = xh >> 4, tz = xh & 15;
    for (int i = 7 - lz; i >= tz; i--) x |= (uint64_t)b[(*p)++] << (8 * i);
  }
  h->sum = bitsd(x ^ (s->has_prev ? dbits(h->sum) : 0));
  h->hint = (uint8_t)((f >> 3) & 3);
  if (f & F_RAW) {
    h->count = get_f64(b, p);
    h->zero_count = get_f64(b, p);
    for (uint32_t i = 0; i < h->pos_len; i++) h->pos[i] = get_f64(b, p);
    for (uint32_t i = 0; i < h->neg_len; i++) h->neg[i] = get_f64(b, p);
    s->prev_int = 0;
  } else {
    h->count = (double)(get_sv(b, p) + (vs_prev ? (int64_t)h->count : 0));
    h->zero_count = (double)(get_sv(b, p) + (vs_prev ? (int64_t)h->zero_count : 0));
    /* Positive buckets, then negative ones: each array with its own length (a loop over
     * the sign with ternaries lost that pairing for gcc's analyser). */
    dec_deltas(b, p, h->pos, h->pos_len, vs_prev);
    dec_deltas(b, p, h->neg, h->neg_len, vs_prev);
    s->prev_int = 1;
  }
  s->has_prev = 1;
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Chunks and the chunk list (the same protocol as window.c)
 *----------------------------------------------------------------------------------------*/

/* The EBR frees with its own accountant, which the store makes the same as cfg->mem. */
static void retire(const rc_window_cfg_t *cfg, void *p) {
  if (p == NULL) return;
  if (cfg != NULL && cfg->ebr != NULL) rc_ebr_retire(cfg->ebr, p, rc_mem_free);
  else rc_mem_free(cfg != NULL ? cfg->mem : NULL, p);
}

static rc_hchunk_t *chunk_new(rc_mem_t *mem, uint32_t cap) {
  rc_hchunk_t *c = rc_mem_malloc(mem, sizeof(*c) + cap);
  if (c == NULL) return NULL;
  memset(c, 0, sizeof(*c));
  c->cap = cap;
  return c;
}

static rc_hchunk_t *chunk_copy(rc_mem_t *mem, const rc_hchunk_t *c, uint32_t cap) {
  rc_hchunk_t *n = rc_mem_malloc(mem, sizeof(*n) + cap);
  if (n == NULL) return NULL;
  n->min_ts = c->min_ts;
  atomic_init(&n->max_ts, atomic_load_explicit(&((rc_hchunk_t *)c)->max_ts, memory_order_relaxed));
  atomic_init(&n->pub, ((uint64_t)c->count << 32) | c->nbytes);
  n->count = c->count;
  n->nbytes = c->nbytes;
  n->cap = cap;
  memcpy(n->data, c->data, c->nbytes);
  return n;
}

/* Room for `bytes` more; a chunk readers may hold is copied, never resized in place. Growing
 * is refused (RC_EMEMORY) once mem is at its limit. */
static int chunk_reserve(rc_mem_t *mem, rc_hchunk_t **cp, size_t bytes, rc_hchunk_t **old) {
  rc_hchunk_t *c = *cp;
  if (bytes > UINT32_MAX / 2 || c->nbytes + bytes > UINT32_MAX / 2) return RC_ELIMIT;
  uint32_t need = c->nbytes + (uint32_t)bytes;
  if (need <= c->cap) return 0;
  if (rc_mem_level(mem) >= RC_MEM_FULL) return RC_EMEMORY;
  uint32_t cap = c->cap ? c->cap : 64;
  while (cap < need) cap = cap < 256 ? cap * 2 : cap + cap / 2;
  rc_hchunk_t *n = chunk_copy(mem, c, cap);
  if (n == NULL) return RC_ENOMEM;
  if (*old == NULL) *old = c;
  else rc_mem_free(mem, c); /* an intermediate copy nobody has seen */
  *cp = n;
  return 0;
}

static void chunk_publish(rc_hchunk_t *c, int64_t last_ts) {
  atomic_store_explicit(&c->max_ts, last_ts, memory_order_relaxed);
  atomic_store_explicit(&c->pub, ((uint64_t)c->count << 32) | c->nbytes, memory_order_release);
}

/* Appends (ts, h) to a chunk coded with state s (ts newer than its last); the chunk's blocks
 * come from mem. The encoding buffer is this call's temporary: plain malloc. */
static int chunk_append(rc_mem_t *mem, rc_hchunk_t **cp, hstate_t *s, int64_t ts,
                        const rc_fhist_t *h, uint8_t hint, rc_hchunk_t **old) {
  size_t bound = enc_bound(h);
  uint8_t sbuf[1024], *buf = bound <= sizeof(sbuf) ? sbuf : malloc(bound);
  if (buf == NULL) return RC_ENOMEM;
  uint32_t n = enc_sample(s, buf, ts, h, hint);
  int rc = st_reserve(s, h);
  if (rc == 0) rc = chunk_reserve(mem, cp, n, old);
  if (rc == 0) {
    rc_hchunk_t *c = *cp;
    memcpy(c->data + c->nbytes, buf, n);
    c->nbytes += n;
    if (c->count == 0) c->min_ts = ts;
    c->count++;
    st_commit(s, ts, h);
    chunk_publish(c, ts);
  }
  if (buf != sbuf) free(buf);
  return rc;
}

typedef struct dsamp {
  int64_t ts;
  int stale;
  rc_fhist_t h;
} dsamp_t;

static void dsamps_free(dsamp_t *d, size_t n) {
  for (size_t i = 0; i < n; i++) rc_fhist_free(&d[i].h);
  free(d);
}

/* Decodes a whole (writer-owned) chunk into a new array of c->count + extra entries. */
static int chunk_decode_all(const rc_hchunk_t *c, uint32_t extra, dsamp_t **out) {
  dsamp_t *d = calloc((size_t)c->count + extra, sizeof(*d));
  if (d == NULL) return RC_ENOMEM;
  hstate_t s;
  st_init(&s, NULL);
  uint32_t p = 0;
  int rc = 0;
  for (uint32_t i = 0; i < c->count && rc == 0; i++) {
    rc = dec_sample(&s, c->data, &p, &d[i].ts, &d[i].stale);
    if (rc == 0 && !d[i].stale) rc = rc_fhist_copy(&d[i].h, &s.prev);
  }
  st_free(&s);
  if (rc != 0) {
    dsamps_free(d, (size_t)c->count + extra);
    return rc;
  }
  *out = d;
  return 0;
}

/* Builds a private chunk (from mem) from decoded samples; its final state goes to *st
 * (initialised). */
static int chunk_build(rc_mem_t *mem, const dsamp_t *d, uint32_t n, hstate_t *st,
                       rc_hchunk_t **out) {
  rc_hchunk_t *c = chunk_new(mem, 64 + n * 32);
  if (c == NULL) return RC_ENOMEM;
  for (uint32_t i = 0; i < n; i++) {
    rc_hchunk_t *old = NULL;
    int rc = chunk_append(mem, &c, st, d[i].ts, d[i].stale ? NULL : &d[i].h,
                          d[i].stale ? 0 : d[i].h.hint, &old);
    rc_mem_free(mem, old); /* private: nobody else can hold it */
    if (rc != 0) {
      rc_mem_free(mem, c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

static rc_hchunk_list_t *wlist(const rc_histwin_t *w) {
  return atomic_load_explicit(&((rc_histwin_t *)w)->list, memory_order_acquire);
}
static uint32_t list_n(const rc_hchunk_list_t *l) {
  return l ? atomic_load_explicit(&((rc_hchunk_list_t *)l)->n, memory_order_acquire) : 0;
}
static rc_hchunk_t *list_get(const rc_hchunk_list_t *l, uint32_t i) {
  return atomic_load_explicit(&((rc_hchunk_list_t *)l)->c[i], memory_order_acquire);
}
static rc_hchunk_list_t *list_new(rc_mem_t *mem, uint32_t cap) {
  rc_hchunk_list_t *l = rc_mem_malloc(mem, sizeof(*l) + cap * sizeof(l->c[0]));
  if (l == NULL) return NULL;
  atomic_init(&l->n, 0);
  l->cap = cap;
  return l;
}

static void slot_replace(const rc_window_cfg_t *cfg, rc_hchunk_list_t *l, uint32_t i,
                         rc_hchunk_t *c, rc_hchunk_t *old) {
  atomic_store_explicit(&l->c[i], c, memory_order_release);
  retire(cfg, old);
}

/*------------------------------------------------------------------------------------------
 * Window maintenance (writer)
 *----------------------------------------------------------------------------------------*/

void rc_histwin_init(rc_histwin_t *w) {
  atomic_init(&w->list, NULL);
  w->max_ts = INT64_MIN;
  w->enc = NULL;
}

static void enc_drop(rc_histwin_t *w, rc_mem_t *mem) {
  if (w->enc != NULL) {
    st_free(&w->enc->st);
    rc_mem_free(mem, w->enc);
    w->enc = NULL;
  }
}

void rc_histwin_free(rc_histwin_t *w, rc_mem_t *mem) {
  rc_hchunk_list_t *l = wlist(w);
  for (uint32_t i = 0; i < list_n(l); i++) rc_mem_free(mem, list_get(l, i));
  rc_mem_free(mem, l);
  enc_drop(w, mem);
  rc_histwin_init(w);
}

int rc_histwin_empty(const rc_histwin_t *w) { return list_n(wlist(w)) == 0; }

/* Adds an empty head chunk with a fresh encoder state, both with room for h (the sample about
 * to be appended; NULL for a stale marker), so that appending it next cannot fail and leave an
 * empty chunk behind — the memory bound reached in between, or no memory. */
static int push_chunk(rc_histwin_t *w, const rc_window_cfg_t *cfg, const rc_fhist_t *h) {
  if (w->enc == NULL) {
    w->enc = rc_mem_malloc(cfg->mem, sizeof(*w->enc));
    if (w->enc == NULL) return RC_ENOMEM;
    st_init(&w->enc->st, cfg->mem);
  } else {
    /* Keep the fhist buffers for reuse; forget the state. */
    rc_fhist_t keep = w->enc->st.prev;
    st_init(&w->enc->st, cfg->mem);
    w->enc->st.prev = keep;
  }
  int rc = st_reserve(&w->enc->st, h);
  if (rc != 0) return rc;
  size_t first = enc_bound(h);
  if (first > UINT32_MAX / 2) return RC_ELIMIT;
  rc_hchunk_list_t *l = wlist(w);
  uint32_t n = list_n(l);
  rc_hchunk_t *c = chunk_new(cfg->mem, first > 64 ? (uint32_t)first : 64);
  if (c == NULL) return RC_ENOMEM;
  if (l == NULL || n == l->cap) {
    rc_hchunk_list_t *nl = list_new(cfg->mem, l ? l->cap * 2 : 2);
    if (nl == NULL) {
      rc_mem_free(cfg->mem, c);
      return RC_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) atomic_init(&nl->c[i], list_get(l, i));
    atomic_init(&nl->c[n], c);
    atomic_init(&nl->n, n + 1);
    atomic_store_explicit(&w->list, nl, memory_order_release);
    retire(cfg, l);
    return 0;
  }
  atomic_store_explicit(&l->c[n], c, memory_order_release);
  atomic_store_explicit(&l->n, n + 1, memory_order_release);
  return 0;
}

/* Inserts into chunk i by decoding it, inserting in order and re-encoding it. The decoded
 * samples are this call's temporaries (plain malloc); the new chunk and, for the head, its
 * encoder state are counted, and refused at the accountant's limit. */
static int insert_into(rc_histwin_t *w, const rc_window_cfg_t *cfg, rc_hchunk_list_t *l,
                       uint32_t i, int64_t ts, const rc_fhist_t *h) {
  rc_hchunk_t *c = list_get(l, i);
  uint32_t n = c->count;
  dsamp_t *d;
  int rc = chunk_decode_all(c, 1, &d);
  if (rc != 0) return rc;
  uint32_t pos = 0;
  while (pos < n && d[pos].ts < ts) pos++;
  if (pos < n && d[pos].ts == ts) {
    int same = h == NULL ? d[pos].stale : (!d[pos].stale && rc_fhist_equal(&d[pos].h, h));
    rc = same ? RC_EDUP : RC_ECONFLICT;
    goto out;
  }
  if (rc_mem_level(cfg->mem) >= RC_MEM_FULL) { /* after the duplicate check: those cost nothing */
    rc = RC_EMEMORY;
    goto out;
  }
  memmove(&d[pos + 1], &d[pos], (n - pos) * sizeof(*d));
  rc_fhist_init(&d[pos].h);
  d[pos].ts = ts;
  d[pos].stale = h == NULL;
  if (h != NULL && (rc = rc_fhist_copy(&d[pos].h, h)) != 0) goto out;
  hstate_t st;
  st_init(&st, cfg->mem);
  rc_hchunk_t *nc = NULL;
  rc = chunk_build(cfg->mem, d, n + 1, &st, &nc);
  if (rc != 0) {
    st_free(&st);
    goto out;
  }
  if (i == list_n(l) - 1) { /* the head: appends continue from the new encoding */
    st_free(&w->enc->st);
    w->enc->st = st;
  } else {
    st_free(&st);
  }
  slot_replace(cfg, l, i, nc, c);
out:
  dsamps_free(d, (size_t)n + 1);
  return rc;
}

int rc_histwin_append(rc_histwin_t *w, const rc_window_cfg_t *cfg, const rc_histogram_t *h) {
  if (w == NULL || cfg == NULL || h == NULL) return RC_EINVAL;
  rc_fhist_t fh;
  rc_fhist_init(&fh);
  const rc_fhist_t *hp = NULL;
  int rc = 0;
  if (!h->is_stale) {
    rc = rc_fhist_from_histogram(&fh, h);
    if (rc != 0) goto out;
    hp = &fh;
  }
  int64_t ts = h->ts_ms;
  rc_hchunk_list_t *l = wlist(w);
  uint32_t n = list_n(l);
  if (n == 0 || ts > w->max_ts) {
    rc_hchunk_t *head = n ? list_get(l, n - 1) : NULL;
    if (head == NULL || head->count >= cfg->chunk_samples ||
        wsub(ts, head->min_ts) >= cfg->chunk_span_ms) {
      /* No new chunk from the high-water mark on, no first chunk at the limit (window.c
       * says why). */
      if (rc_mem_level(cfg->mem) >= (n == 0 ? RC_MEM_FULL : RC_MEM_HIGH)) {
        rc = RC_EMEMORY;
        goto out;
      }
      if (head != NULL && head->nbytes < head->cap) {
        /* The old head is complete: give back its growth slack. */
        rc_hchunk_t *fit = chunk_copy(cfg->mem, head, head->nbytes);
        if (fit != NULL) slot_replace(cfg, l, n - 1, fit, head);
      }
      if ((rc = push_chunk(w, cfg, hp)) != 0) goto out;
      l = wlist(w);
      n = list_n(l);
    }
    rc_hchunk_t *c = list_get(l, n - 1), *old = NULL;
    rc = chunk_append(cfg->mem, &c, &w->enc->st, ts, hp, hp ? hp->hint : 0, &old);
    if (old != NULL) slot_replace(cfg, l, n - 1, c, old);
    if (rc == 0) w->max_ts = ts;
    goto out;
  }
  if (ts < sat_sub(w->max_ts, cfg->ooo_tolerance_ms)) {
    rc = RC_ETOOOLD;
    goto out;
  }
  uint32_t i = n - 1;
  while (i > 0 && list_get(l, i)->min_ts > ts) i--;
  rc = insert_into(w, cfg, l, i, ts, hp);
out:
  rc_fhist_free(&fh);
  return rc;
}

void rc_histwin_expire(rc_histwin_t *w, const rc_window_cfg_t *cfg, int64_t before_ms) {
  rc_hchunk_list_t *l = wlist(w);
  uint32_t n = list_n(l), drop = 0;
  while (drop < n &&
         atomic_load_explicit(&list_get(l, drop)->max_ts, memory_order_relaxed) < before_ms)
    drop++;
  if (drop == 0) return;
  rc_hchunk_list_t *nl = NULL;
  if (drop < n) {
    nl = list_new(cfg->mem, l->cap);
    if (nl == NULL) return; /* try again at the next sweep */
    for (uint32_t i = drop; i < n; i++) atomic_init(&nl->c[i - drop], list_get(l, i));
    atomic_init(&nl->n, n - drop);
  }
  atomic_store_explicit(&w->list, nl, memory_order_release);
  for (uint32_t i = 0; i < drop; i++) retire(cfg, list_get(l, i));
  retire(cfg, l);
  if (nl == NULL) {
    w->max_ts = INT64_MIN;
    enc_drop(w, cfg->mem);
  }
}

uint32_t rc_histwin_count(const rc_histwin_t *w) {
  rc_hchunk_list_t *l = wlist(w);
  uint32_t n = 0, k = list_n(l);
  for (uint32_t i = 0; i < k; i++)
    n += (uint32_t)(atomic_load_explicit(&list_get(l, i)->pub, memory_order_acquire) >> 32);
  return n;
}

/*------------------------------------------------------------------------------------------
 * Reads
 *----------------------------------------------------------------------------------------*/

int rc_histwin_foreach(const rc_histwin_t *w, int64_t from_ms, int64_t to_ms,
                       rc_histwin_sample_cb cb, void *ctx) {
  rc_hchunk_list_t *l = wlist(w);
  uint32_t n = list_n(l);
  hstate_t s;
  st_init(&s, NULL);
  int rc = 0;
  for (uint32_t i = 0; i < n && rc == 0; i++) {
    rc_hchunk_t *c = list_get(l, i);
    uint64_t pub = atomic_load_explicit(&c->pub, memory_order_acquire);
    uint32_t cnt = (uint32_t)(pub >> 32);
    if (cnt == 0) continue;
    if (atomic_load_explicit(&c->max_ts, memory_order_relaxed) < from_ms) continue;
    if (c->min_ts > to_ms) break;
    rc_fhist_t keep = s.prev;
    st_init(&s, NULL);
    s.prev = keep;
    uint32_t p = 0;
    for (uint32_t k = 0; k < cnt; k++) {
      int64_t ts;
      int stale;
      if ((rc = dec_sample(&s, c->data, &p, &ts, &stale)) != 0) break;
      if (ts < from_ms) continue;
      if (ts > to_ms) {
        i = n; /* done */
        break;
      }
      if ((rc = cb(ctx, ts, stale ? NULL : &s.prev)) != 0) break;
    }
  }
  st_free(&s);
  return rc;
}

typedef struct range_buf {
  dsamp_t *d;
  size_t n, cap;
  int oom;
} range_buf_t;

static int collect(void *ctx, int64_t ts, const rc_fhist_t *h) {
  range_buf_t *b = ctx;
  if (h == NULL) return 0; /* range vectors never contain staleness markers */
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 32;
    dsamp_t *nd = realloc(b->d, cap * sizeof(*nd));
    if (nd == NULL) {
      b->oom = 1;
      return RC_ENOMEM;
    }
    b->d = nd;
    b->cap = cap;
  }
  dsamp_t *s = &b->d[b->n];
  rc_fhist_init(&s->h);
  s->ts = ts;
  s->stale = 0;
  if (rc_fhist_copy(&s->h, h) != 0) {
    rc_fhist_free(&s->h);
    b->oom = 1;
    return RC_ENOMEM;
  }
  b->n++;
  return 0;
}

static int rate_or_increase(const rc_histwin_t *w, int64_t t_ms, int64_t range_ms,
                            rc_compat_t compat, int is_rate, rc_fhist_t *out) {
  if (w == NULL || out == NULL || range_ms < 0) return RC_EINVAL;
  range_buf_t b = {0};
  int64_t start = wsub(t_ms, range_ms), end = t_ms;
  int rc = 0;
  if (start <= end)
    rc = rc_histwin_foreach(w, compat == RC_COMPAT_PROM3 ? wadd(start, 1) : start, end, collect, &b);
  if (rc == 0 && b.n < 2) rc = RC_ENOENT;
  const rc_fhist_t **p = NULL;
  int64_t *ts = NULL;
  if (rc == 0) {
    p = malloc(b.n * sizeof(*p));
    ts = malloc(b.n * sizeof(*ts));
    if (p == NULL || ts == NULL) rc = RC_ENOMEM;
  }
  if (rc == 0) {
    for (size_t i = 0; i < b.n; i++) {
      p[i] = &b.d[i].h;
      ts[i] = b.d[i].ts;
    }
    rc = rc_fhist_extrapolated_rate(p, ts, b.n, start, end, range_ms, is_rate, compat, out);
  }
  free(p);
  free(ts);
  for (size_t i = 0; i < b.n; i++) rc_fhist_free(&b.d[i].h);
  free(b.d);
  return rc;
}

int rc_histwin_rate(const rc_histwin_t *w, int64_t t_ms, int64_t range_ms, rc_compat_t compat,
                    rc_fhist_t *out) {
  return rate_or_increase(w, t_ms, range_ms, compat, 1, out);
}

int rc_histwin_increase(const rc_histwin_t *w, int64_t t_ms, int64_t range_ms,
                        rc_compat_t compat, rc_fhist_t *out) {
  return rate_or_increase(w, t_ms, range_ms, compat, 0, out);
}

typedef struct last_ctx {
  rc_fhist_t *out;
  int64_t ts;
  int found, stale, oom;
} last_ctx_t;

static int keep_last(void *ctx, int64_t ts, const rc_fhist_t *h) {
  last_ctx_t *l = ctx;
  l->ts = ts;
  l->found = 1;
  l->stale = h == NULL;
  if (h != NULL && rc_fhist_copy(l->out, h) != 0) return RC_ENOMEM;
  return 0;
}

int rc_histwin_instant(const rc_histwin_t *w, int64_t t_ms, int64_t lookback_ms,
                       rc_compat_t compat, rc_fhist_t *out, int64_t *ts) {
  if (w == NULL || out == NULL || lookback_ms < 0) return RC_EINVAL;
  last_ctx_t l = {out, 0, 0, 0, 0};
  int64_t from = wadd(wsub(t_ms, lookback_ms), compat == RC_COMPAT_PROM3 ? 1 : 0);
  int rc = 0;
  if (from <= t_ms) rc = rc_histwin_foreach(w, from, t_ms, keep_last, &l);
  if (rc != 0) return rc;
  if (!l.found || l.stale) return RC_ENOENT;
  if (ts != NULL) *ts = l.ts;
  return 0;
}
