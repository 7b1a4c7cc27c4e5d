/* histq.c: histogram_quantile / histogram_fraction for native and classic histograms; see
 * histq.h for the semantics and the versions reproduced.
 *
 * Native buckets are listed once, ascending (negative buckets from the most negative, the
 * zero bucket when it holds anything, then positive ones), with Prometheus' clipping of the
 * innermost bounds at the zero threshold. Empty buckets are left out: in 3.x the walk skips
 * them, and in 2.42 a rate() result had none (it was Compact(0)ed), so they could not be hit.
 */
#include "histq.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "sketch.h"

typedef struct qb {
  double lower, upper, count;
} qb_t;

/* All non-empty buckets of h, ascending. Returns the count or -1 (out of memory). */
static long list_buckets(const rc_fhist_t *h, qb_t **out) {
  size_t cap = (size_t)h->pos_len + h->neg_len + 1;
  qb_t *b = malloc(cap * sizeof(*b));
  if (b == NULL) return -1;
  size_t n = 0;
  double zt = h->zero_threshold;
  if (h->schema == RC_FHIST_SCHEMA_CUSTOM) {
    for (uint32_t i = 0; i < h->pos_len; i++) {
      if (h->pos[i] == 0) continue;
      int64_t idx = (int64_t)h->pos_off + i;
      double lo = idx == 0 ? -INFINITY : h->custom[idx - 1];
      double up = idx >= (int64_t)h->ncustom ? INFINITY : h->custom[idx];
      b[n++] = (qb_t){lo, up, h->pos[i]};
    }
    *out = b;
    return (long)n;
  }
  for (uint32_t k = h->neg_len; k-- > 0;) {
    if (h->neg[k] == 0) continue;
    int32_t idx = h->neg_off + (int32_t)k;
    double lo = -rc_sketch_upper_bound(h->schema, idx);
    double up = -rc_sketch_upper_bound(h->schema, idx - 1);
    if (up < 0 && up > -zt) up = -zt;
    b[n++] = (qb_t){lo, up, h->neg[k]};
  }
  if (h->zero_count > 0) b[n++] = (qb_t){-zt, zt, h->zero_count};
  for (uint32_t k = 0; k < h->pos_len; k++) {
    if (h->pos[k] == 0) continue;
    int32_t idx = h->pos_off + (int32_t)k;
    double lo = rc_sketch_upper_bound(h->schema, idx - 1);
    double up = rc_sketch_upper_bound(h->schema, idx);
    if (lo > 0 && lo < zt) lo = zt;
    b[n++] = (qb_t){lo, up, h->pos[k]};
  }
  *out = b;
  return (long)n;
}

double rc_histq_native(double q, const rc_fhist_t *h, rc_compat_t compat) {
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  if (h == NULL || h->count == 0 || isnan(q)) return NAN;
  int custom = h->schema == RC_FHIST_SCHEMA_CUSTOM;
  if (custom && compat == RC_COMPAT_PROM2) return NAN;
  qb_t *b;
  long n = list_buckets(h, &b);
  if (n < 0) return NAN;
  int forward = compat == RC_COMPAT_PROM2 || isnan(h->sum) || q < 0.5;
  double rank = forward ? q * h->count : (1 - q) * h->count;
  double cum = 0;
  qb_t bk = {0, 0, 0};
  for (long i = 0; i < n; i++) {
    bk = b[forward ? i : n - 1 - i];
    cum += bk.count;
    if (cum >= rank) break;
  }
  free(b);
  if (!custom && bk.lower < 0 && bk.upper > 0) {
    /* The zero bucket: bounded by 0 on a side that has no buckets. */
    if (h->neg_len == 0 && h->pos_len > 0) bk.lower = 0;
    else if (h->pos_len == 0 && h->neg_len > 0) bk.upper = 0;
  } else if (custom) {
    if (bk.lower == -INFINITY) {
      if (bk.upper <= 0) return bk.upper;
      bk.lower = 0;
    } else if (bk.upper == INFINITY) {
      return bk.lower;
    }
  }
  if (cum > h->count) cum = h->count;
  if (cum < rank) {
    /* Only NaN observations (counted in count, in no bucket) get here. */
    if (compat == RC_COMPAT_PROM3 && isnan(h->sum)) return NAN;
    return bk.upper;
  }
  if (forward) rank -= cum - bk.count;
  else rank = cum - rank;
  double fraction = rank / bk.count;
  if (compat == RC_COMPAT_PROM2 || custom || (bk.lower <= 0 && bk.upper >= 0))
    return bk.lower + (bk.upper - bk.lower) * fraction;
  /* Exponential buckets are linear on a log scale. */
  double ll = log2(fabs(bk.lower)), lu = log2(fabs(bk.upper));
  if (bk.lower > 0) return exp2(ll + (lu - ll) * fraction);
  return -exp2(lu + (ll - lu) * (1 - fraction));
}

double rc_histq_fraction(double lower, double upper, const rc_fhist_t *h, rc_compat_t compat) {
  if (h == NULL || h->count == 0 || isnan(lower) || isnan(upper)) return NAN;
  if (lower >= upper) return 0;
  int custom = h->schema == RC_FHIST_SCHEMA_CUSTOM;
  if (custom && compat == RC_COMPAT_PROM2) return NAN;
  qb_t *b;
  long n = list_buckets(h, &b);
  if (n < 0) return NAN;
  double rank = 0, lr = 0, ur = 0;
  int lset = 0, uset = 0;
  for (long i = 0; i < n; i++) {
    qb_t x = b[i];
    int zero;
    if (compat == RC_COMPAT_PROM3) zero = x.lower <= 0 && x.upper >= 0;
    else zero = x.lower < 0 && x.upper > 0;
    if (zero) {
      if (h->neg_len == 0 && h->pos_len > 0) x.lower = 0;
      else if (h->pos_len == 0 && h->neg_len > 0) x.upper = 0;
    }
    if (!lset && x.lower >= lower) lr = rank, lset = 1;
    if (!uset && x.lower >= upper) ur = rank, uset = 1;
    if (lset && uset) break;
    int linear = compat == RC_COMPAT_PROM2 || custom || zero;
    for (int k = 0; k < 2; k++) {
      double v = k ? upper : lower;
      int *set = k ? &uset : &lset;
      double *r = k ? &ur : &lr;
      if (*set || !(x.lower < v && x.upper > v)) continue;
      if (linear) {
        *r = rank + x.count * (v - x.lower) / (x.upper - x.lower);
      } else {
        double ll = log2(fabs(x.lower)), lu = log2(fabs(x.upper)), lv = log2(fabs(v));
        double f = v > 0 ? (lv - ll) / (lu - ll) : 1 - ((lv - lu) / (ll - lu));
        *r = rank + x.count * f;
      }
      *set = 1;
    }
    if (lset && uset) break;
    rank += x.count;
  }
  free(b);
  if (!lset || lr > h->count) lr = h->count;
  if (!uset || ur > h->count) ur = h->count;
  return (ur - lr) / h->count;
}

/*------------------------------------------------------------------------------------------
 * Classic buckets
 *----------------------------------------------------------------------------------------*/

static int cmp_upper(const void *a, const void *b) {
  double x = ((const rc_histq_bucket_t *)a)->upper, y = ((const rc_histq_bucket_t *)b)->upper;
  if (isnan(x) || isnan(y)) return isnan(y) - isnan(x); /* NaN first: a total order */
  return (x > y) - (x < y);
}

/* util/almost.Equal: relative difference below eps (NaN equals NaN). */
static int almost_equal(double a, double b, double eps) {
  if (isnan(a) && isnan(b)) return 1;
  if (a == b) return 1;
  double abs_sum = fabs(a) + fabs(b), diff = fabs(a - b);
  if (a == 0 || b == 0 || abs_sum < DBL_MIN) return diff < eps * DBL_MIN;
  return diff / fmin(abs_sum, DBL_MAX) < eps;
}

double rc_histq_classic(double q, rc_histq_bucket_t *b, size_t n, rc_compat_t compat,
                        unsigned *flags) {
  unsigned fl = 0;
  if (flags != NULL) *flags = 0;
  if (isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  if (b == NULL || n == 0) return NAN;
  qsort(b, n, sizeof(*b), cmp_upper);
  if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0)) return NAN;
  size_t m = 0; /* coalesce equal bounds */
  for (size_t i = 1; i < n; i++) {
    if (b[i].upper == b[m].upper) b[m].count += b[i].count;
    else b[++m] = b[i];
  }
  n = m + 1;
  double prev = b[0].count;
  for (size_t i = 1; i < n; i++) {
    double cur = b[i].count;
    if (compat == RC_COMPAT_PROM2) {
      /* 2.42: the running maximum (envelope). */
      if (cur > prev) prev = cur;
      else if (cur < prev) b[i].count = prev, fl |= RC_HISTQ_FORCED_MONOTONIC;
      continue;
    }
    if (cur == prev) continue;
    if (almost_equal(prev, cur, 1e-12)) {
      b[i].count = prev; /* a float rounding artefact, either way; prev stays */
      fl |= RC_HISTQ_FIXED_PRECISION;
      continue;
    }
    if (cur < prev) {
      b[i].count = prev;
      fl |= RC_HISTQ_FORCED_MONOTONIC;
      continue;
    }
    prev = cur;
  }
  if (n < 2) return NAN;
  double obs = b[n - 1].count;
  if (obs == 0) return NAN;
  if (flags != NULL) *flags = fl;
  double rank = q * obs;
  size_t lo = 0, hi = n - 1; /* sort.Search over the finite buckets */
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (!(b[mid].count >= rank)) lo = mid + 1;
    else hi = mid;
  }
  if (lo == n - 1) return b[n - 2].upper;
  if (lo == 0 && b[0].upper <= 0) return b[0].upper;
  double start = 0, end = b[lo].upper, count = b[lo].count;
  if (lo > 0) {
    start = b[lo - 1].upper;
    count -= b[lo - 1].count;
    rank -= b[lo - 1].count;
  }
  return start + (end - start) * (rank / count);
}
