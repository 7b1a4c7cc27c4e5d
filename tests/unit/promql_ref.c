/* promql_ref.c: the reference PromQL range functions described in promql_ref.h.
 *
 * Each function below mirrors the Go code of prometheus/prometheus promql/functions.go and
 * promql/quantile.go, keeping Go's order of floating-point operations (a different but
 * mathematically equal order would change the last bits, which is exactly what the window
 * tests must not tolerate). Sources read:
 *   2.42: functions.go of the 2.40-2.44 line (Point{T,V,H}; extrapolatedRate with the zero
 *         clamp before the threshold test and `factor /= Range.Seconds(); result *= factor`;
 *         kahanSumInc without the ±Inf case; avg_over_time as a Kahan-compensated
 *         incremental mean; Kahan since PR #9588, merged 2021-11, i.e. 2.32).
 *   3.x:  functions.go at 3.0-3.4 (FPoint; clamp after threshold, "Fix limiting of
 *         extrapolation to negative values", 2.51.0; kahanSumInc with the ±Inf case,
 *         PR #14362, 2.54.0; avg_over_time from PR #14413, 2.55.0) and at main for 3.5+
 *         (avg_over_time from PR #16773, util/kahansum.Inc unchanged in substance).
 * Version differences are marked "VERSION:" where they are implemented. Functions that
 * 2.42 and 3.x compute identically for float samples (checked in both sources): irate,
 * idelta, count/last/present/min/max/quantile_over_time, resets, changes.
 *
 * Staleness markers are recognised by their exact bit pattern (value.IsStaleNaN), never
 * by isnan(): an ordinary NaN is a value that range functions must see.
 */
#include "promql_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ref_avg3_t g_avg3 = REF_AVG3_DIRECT_35;

void ref_set_avg3(ref_avg3_t variant) { g_avg3 = variant; }

static int is_stale(double v) {
  uint64_t b;
  memcpy(&b, &v, sizeof b);
  return b == REF_STALE_NAN_BITS;
}

/* One window sample; the scratch buffer of a query. */
typedef struct {
  int64_t t;
  double f;
} pt_t;

/* VERSION: the range selector. 3.0.0 made it left-open, (t-r, t] (CHANGELOG 3.0.0, #13904:
 * matrixIterSlice drops ts <= mint); 2.x keeps [t-r, t] (drops ts < mint). Both drop
 * staleness markers. */
static int in_range(int64_t t, int64_t mint, int64_t maxt, rc_compat_t compat) {
  if (t > maxt) return 0;
  return compat == RC_COMPAT_PROM2 ? t >= mint : t > mint;
}

static size_t collect(const int64_t *ts, const double *v, size_t n, int64_t t_ms,
                      int64_t range_ms, rc_compat_t compat, pt_t *out) {
  size_t k = 0;
  int64_t mint = t_ms - range_ms;
  /* Binary search for the first sample not older than mint (only to keep the tests fast;
   * in_range() below decides membership on its own). */
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ts[mid] < mint) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  for (size_t i = lo; i < n && ts[i] <= t_ms; i++) {
    if (!in_range(ts[i], mint, t_ms, compat) || is_stale(v[i])) continue;
    if (out != NULL) out[k] = (pt_t){ts[i], v[i]};
    k++;
  }
  return k;
}

size_t ref_window_len(const int64_t *ts, const double *v, size_t n, int64_t t_ms,
                      int64_t range_ms, rc_compat_t compat) {
  return collect(ts, v, n, t_ms, range_ms, compat, NULL);
}

/*----- Kahan-Babuska-Neumaier summation --------------------------------------------------*/

/* kahanSumInc. VERSION: since PR #14362 (2.54.0) a sum that becomes ±Inf resets the
 * compensation to 0; before (2.42), (sum - t) + inc with t = ±Inf made it NaN or ±Inf. */
static void kahan_inc(double inc, double *sum, double *c, rc_compat_t compat) {
  double t = *sum + inc;
  if (compat == RC_COMPAT_PROM3 && isinf(t)) {
    *c = 0;
  } else if (fabs(*sum) >= fabs(inc)) {
    *c += (*sum - t) + inc;
  } else {
    *c += (inc - t) + *sum;
  }
  *sum = t;
}

/*----- rate, increase, delta -------------------------------------------------------------*/

/* time.Duration.Seconds() for a range given in ms: Go splits whole seconds from the
 * nanosecond remainder, so [1234ms] is 1 + 0.234, which may differ from 1.234 in the last
 * bit. */
static double go_duration_seconds(int64_t ms) {
  int64_t ns = ms * 1000000;
  int64_t sec = ns / 1000000000;
  int64_t nsec = ns % 1000000000;
  return (double)sec + (double)nsec / 1e9;
}

static int extrapolated_rate(const pt_t *p, size_t n, int64_t t_ms, int64_t range_ms,
                             rc_compat_t compat, int is_counter, int is_rate, double *out) {
  if (n < 2) return RC_ENOENT;
  int64_t range_start = t_ms - range_ms, range_end = t_ms;

  /* v_N - v_1, then each reset adds the value before it, one by one in time order. */
  double result = p[n - 1].f - p[0].f;
  if (is_counter) {
    double prev = p[0].f;
    for (size_t i = 1; i < n; i++) {
      if (p[i].f < prev) result += prev;
      prev = p[i].f;
    }
  }

  double to_start = (double)(p[0].t - range_start) / 1000;
  double to_end = (double)(range_end - p[n - 1].t) / 1000;
  double sampled = (double)(p[n - 1].t - p[0].t) / 1000;
  double avg = sampled / (double)(n - 1);
  double threshold = avg * 1.1;
  double interval = sampled;

  if (compat == RC_COMPAT_PROM3) {
    /* VERSION: 2.51.0+ ("promql: Fix limiting of extrapolation to negative values"):
     * first decide between the edge and avg/2, then let the zero point shorten that. */
    if (to_start >= threshold) to_start = avg / 2;
    if (is_counter && result > 0 && p[0].f >= 0) {
      double to_zero = sampled * (p[0].f / result);
      if (to_zero < to_start) to_start = to_zero;
    }
    interval += to_start;
    if (to_end >= threshold) to_end = avg / 2;
    interval += to_end;
  } else {
    /* VERSION: 2.42 (and up to 2.50): the zero clamp shortens durationToStart first, and
     * the threshold test then runs on the clamped value. */
    if (is_counter && result > 0 && p[0].f >= 0) {
      double to_zero = sampled * (p[0].f / result);
      if (to_zero < to_start) to_start = to_zero;
    }
    if (to_start < threshold) {
      interval += to_start;
    } else {
      interval += avg / 2;
    }
    if (to_end < threshold) {
      interval += to_end;
    } else {
      interval += avg / 2;
    }
  }

  double factor = interval / sampled;
  if (is_rate) factor /= go_duration_seconds(range_ms);
  *out = result * factor;
  return 0;
}

/*----- irate, idelta ---------------------------------------------------------------------*/

static int instant_value(const pt_t *p, size_t n, int is_rate, double *out) {
  if (n < 2) return RC_ENOENT;
  const pt_t *last = &p[n - 1], *prev = &p[n - 2];
  int64_t interval = last->t - prev->t;
  if (interval == 0) return RC_ENOENT;
  double result;
  /* A NaN compares false, so it is never taken for a reset. */
  if (is_rate && last->f < prev->f) {
    result = last->f;
  } else {
    result = last->f - prev->f;
  }
  if (is_rate) result /= (double)interval / 1000;
  *out = result;
  return 0;
}

/*----- *_over_time -----------------------------------------------------------------------*/

static double sum_over_time(const pt_t *p, size_t n, rc_compat_t compat) {
  double sum = 0, c = 0;
  for (size_t i = 0; i < n; i++) kahan_inc(p[i].f, &sum, &c, compat);
  if (isinf(sum)) return sum;
  return sum + c;
}

/* VERSION: 2.42 (since PR #9588, 2.32, until 2.54): a Kahan-compensated incremental mean
 * throughout, skipping values that cannot change an infinite mean. */
static double avg_incremental_242(const pt_t *p, size_t n) {
  double mean = 0, count = 0, c = 0;
  for (size_t i = 0; i < n; i++) {
    double f = p[i].f;
    count++;
    if (isinf(mean)) {
      if (isinf(f) && (mean > 0) == (f > 0)) continue;
      if (!isinf(f) && !isnan(f)) continue;
    }
    kahan_inc(f / count - mean / count, &mean, &c, RC_COMPAT_PROM2);
  }
  if (isinf(mean)) return mean;
  return mean + c;
}

/* VERSION: 2.55.0-3.4 (PR #14413): Kahan sum divided by the count; only when the running
 * sum would overflow does it switch to the incremental mean, from that sample on. */
static double avg_kahan_sum_30(const pt_t *p, size_t n) {
  double sum = 0, mean = 0, count = 0, c = 0;
  int incremental = 0;
  for (size_t i = 0; i < n; i++) {
    double f = p[i].f;
    count++;
    if (!incremental) {
      double new_sum = sum, new_c = c;
      kahan_inc(f, &new_sum, &new_c, RC_COMPAT_PROM3);
      /* The first value is always taken, even ±Inf, so count-1 below is never 0. */
      if (count == 1 || !isinf(new_sum)) {
        sum = new_sum;
        c = new_c;
        continue;
      }
      incremental = 1;
      mean = sum / (count - 1);
      c /= count - 1;
    }
    if (isinf(mean)) {
      if (isinf(f) && (mean > 0) == (f > 0)) continue;
      if (!isinf(f) && !isnan(f)) continue;
    }
    double corrected = mean + c;
    kahan_inc(f / count - corrected / count, &mean, &c, RC_COMPAT_PROM3);
  }
  if (incremental) return mean + c;
  return (sum + c) / count;
}

/* VERSION: 3.5.0+ (PR #16773, "Re-introduce direct mean calculation"): the sum starts at
 * the first value, the result is sum/count + c/count, and after an overflow the mean is
 * carried as q*mean + f/count with q = (count-1)/count. */
static double avg_direct_35(const pt_t *p, size_t n) {
  double sum = p[0].f, count = 1, mean = 0, c = 0;
  int incremental = 0;
  for (size_t i = 1; i < n; i++) {
    double f = p[i].f;
    count = (double)(i + 1);
    if (!incremental) {
      double new_sum = sum, new_c = c;
      kahan_inc(f, &new_sum, &new_c, RC_COMPAT_PROM3);
      if (!isinf(new_sum)) {
        sum = new_sum;
        c = new_c;
        continue;
      }
      incremental = 1;
      mean = sum / (count - 1);
      c /= count - 1;
    }
    double q = (count - 1) / count;
    mean = q * mean;
    c = q * c;
    kahan_inc(f / count, &mean, &c, RC_COMPAT_PROM3);
  }
  if (incremental) return mean + c;
  return sum / count + c / count;
}

static double avg_over_time(const pt_t *p, size_t n, rc_compat_t compat) {
  if (compat == RC_COMPAT_PROM2) return avg_incremental_242(p, n);
  return g_avg3 == REF_AVG3_DIRECT_35 ? avg_direct_35(p, n) : avg_kahan_sum_30(p, n);
}

/* min/max start from the first value; a NaN accumulator is replaced by whatever comes
 * next (so the result is NaN only if every value is, and then it is the last NaN). Same
 * in 2.42 and 3.x. */
static double min_over_time(const pt_t *p, size_t n) {
  double m = p[0].f;
  for (size_t i = 0; i < n; i++) {
    if (p[i].f < m || isnan(m)) m = p[i].f;
  }
  return m;
}

static double max_over_time(const pt_t *p, size_t n) {
  double m = p[0].f;
  for (size_t i = 0; i < n; i++) {
    if (p[i].f > m || isnan(m)) m = p[i].f;
  }
  return m;
}

/* Population variance by Welford's method with both running sums Kahan-compensated. The
 * 2.42/3.x difference is kahan_inc's ±Inf case: when the sum of squares overflows (finite
 * values such as ±1e300), 3.x returns +Inf but 2.42's compensation becomes NaN and so does
 * the result. */
static double variance_over_time(const pt_t *p, size_t n, rc_compat_t compat) {
  double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
  for (size_t i = 0; i < n; i++) {
    double f = p[i].f;
    count++;
    double delta = f - (mean + c_mean);
    kahan_inc(delta / count, &mean, &c_mean, compat);
    kahan_inc(delta * (f - (mean + c_mean)), &aux, &c_aux, compat);
  }
  return (aux + c_aux) / count;
}

/* vectorByValueHeap.Less: a NaN is "less" than anything, including another NaN. */
static int go_less(double a, double b) { return isnan(a) || a < b; }

/* Go's sort.Sort (pdqsort since Go 1.19, which builds both 2.42 and 3.x) runs a plain
 * insertion sort for up to 12 elements; we do exactly that, so the order of equal values
 * (+0 and -0) and of NaNs is Go's. Above 12 Go's pdqsort order among equal elements is not
 * specified; we then use a stable merge sort on the same comparison, which gives the same
 * multiset order and differs from Go at most in the order of +0/-0 and of NaN payloads. */
static void insertion_sort(double *x, size_t n) {
  for (size_t i = 1; i < n; i++) {
    for (size_t j = i; j > 0 && go_less(x[j], x[j - 1]); j--) {
      double t = x[j];
      x[j] = x[j - 1];
      x[j - 1] = t;
    }
  }
}

static void merge_sort(double *x, double *tmp, size_t n) {
  if (n <= 12) {
    insertion_sort(x, n);
    return;
  }
  size_t h = n / 2;
  merge_sort(x, tmp, h);
  merge_sort(x + h, tmp, n - h);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = go_less(x[j], x[i]) ? x[j++] : x[i++];
  while (i < h) tmp[k++] = x[i++];
  while (j < n) tmp[k++] = x[j++];
  memcpy(x, tmp, n * sizeof *x);
}

/* promql/quantile.go quantile(): Hyndman-Fan type 7 with Go's exact arithmetic, including
 * x[lo]*(1-w) + x[hi]*w when w is 0 (so an Inf at x[hi] turns the result into NaN). NaN φ
 * returns NaN since 2.34 (PR #10295), so 2.42 and 3.x agree. */
static int quantile_over_time(const pt_t *p, size_t n, double q, double *out) {
  if (isnan(q)) {
    *out = NAN;
    return 0;
  }
  if (q < 0) {
    *out = -INFINITY;
    return 0;
  }
  if (q > 1) {
    *out = INFINITY;
    return 0;
  }
  double *x = malloc(2 * n * sizeof *x);
  if (x == NULL) return RC_ENOMEM;
  for (size_t i = 0; i < n; i++) x[i] = p[i].f;
  merge_sort(x, x + n, n);
  double dn = (double)n;
  double rank = q * (dn - 1);
  double lower = fmax(0, floor(rank));
  double upper = fmin(dn - 1, lower + 1);
  double weight = rank - floor(rank);
  *out = x[(size_t)lower] * (1 - weight) + x[(size_t)upper] * weight;
  free(x);
  return 0;
}

static double resets(const pt_t *p, size_t n) {
  size_t k = 0;
  for (size_t i = 1; i < n; i++) {
    if (p[i].f < p[i - 1].f) k++;
  }
  return (double)k;
}

/* NaN -> NaN is not a change; -0 -> +0 is not either (they compare equal). */
static double changes(const pt_t *p, size_t n) {
  size_t k = 0;
  for (size_t i = 1; i < n; i++) {
    double cur = p[i].f, prev = p[i - 1].f;
    if (cur != prev && !(isnan(cur) && isnan(prev))) k++;
  }
  return (double)k;
}

/*----- entry points ----------------------------------------------------------------------*/

int ref_eval(const int64_t *ts, const double *v, size_t n, rc_fn_t fn, double param,
             int64_t t_ms, int64_t range_ms, rc_compat_t compat, double *out) {
  if (out == NULL || (n > 0 && (ts == NULL || v == NULL)) || (unsigned)fn >= RC_FN__COUNT) {
    return RC_EINVAL;
  }
  size_t k = collect(ts, v, n, t_ms, range_ms, compat, NULL);
  /* Every function outputs nothing for a window without samples. */
  if (k == 0) return RC_ENOENT;
  pt_t *p = malloc(k * sizeof *p);
  if (p == NULL) return RC_ENOMEM;
  collect(ts, v, n, t_ms, range_ms, compat, p);

  int rc = 0;
  switch (fn) {
  case RC_FN_RATE: rc = extrapolated_rate(p, k, t_ms, range_ms, compat, 1, 1, out); break;
  case RC_FN_INCREASE: rc = extrapolated_rate(p, k, t_ms, range_ms, compat, 1, 0, out); break;
  case RC_FN_DELTA: rc = extrapolated_rate(p, k, t_ms, range_ms, compat, 0, 0, out); break;
  case RC_FN_IRATE: rc = instant_value(p, k, 1, out); break;
  case RC_FN_IDELTA: rc = instant_value(p, k, 0, out); break;
  case RC_FN_COUNT_OT: *out = (double)k; break;
  case RC_FN_SUM_OT: *out = sum_over_time(p, k, compat); break;
  case RC_FN_AVG_OT: *out = avg_over_time(p, k, compat); break;
  case RC_FN_MIN_OT: *out = min_over_time(p, k); break;
  case RC_FN_MAX_OT: *out = max_over_time(p, k); break;
  case RC_FN_LAST_OT: *out = p[k - 1].f; break;
  case RC_FN_PRESENT_OT: *out = 1; break;
  case RC_FN_STDDEV_OT: *out = sqrt(variance_over_time(p, k, compat)); break;
  case RC_FN_STDVAR_OT: *out = variance_over_time(p, k, compat); break;
  case RC_FN_QUANTILE_OT: rc = quantile_over_time(p, k, param, out); break;
  case RC_FN_RESETS: *out = resets(p, k); break;
  case RC_FN_CHANGES: *out = changes(p, k); break;
  default: rc = RC_EINVAL; break;
  }
  free(p);
  return rc;
}

int ref_instant(const int64_t *ts, const double *v, size_t n, int64_t t_ms, int64_t lookback_ms,
                rc_compat_t compat, double *out_v, int64_t *out_ts) {
  if (out_v == NULL || out_ts == NULL || (n > 0 && (ts == NULL || v == NULL))) return RC_EINVAL;
  /* The newest sample at or before t, stale or not (engine.go vectorSelectorSingle). */
  size_t i = n;
  while (i > 0 && ts[i - 1] > t_ms) i--;
  if (i == 0) return RC_ENOENT;
  int64_t st = ts[i - 1];
  /* VERSION: lookback closed in 2.x (ts < t-lookback is too old), left-open in 3.0+. */
  if (compat == RC_COMPAT_PROM2 ? st < t_ms - lookback_ms : st <= t_ms - lookback_ms) {
    return RC_ENOENT;
  }
  /* A staleness marker ends the series even if older samples lie within the lookback. */
  if (is_stale(v[i - 1])) return RC_ENOENT;
  *out_v = v[i - 1];
  *out_ts = st;
  return 0;
}

const char *ref_fn_name(rc_fn_t fn) {
  static const char *const names[RC_FN__COUNT] = {
      [RC_FN_RATE] = "rate",
      [RC_FN_INCREASE] = "increase",
      [RC_FN_DELTA] = "delta",
      [RC_FN_IRATE] = "irate",
      [RC_FN_IDELTA] = "idelta",
      [RC_FN_COUNT_OT] = "count_over_time",
      [RC_FN_SUM_OT] = "sum_over_time",
      [RC_FN_AVG_OT] = "avg_over_time",
      [RC_FN_MIN_OT] = "min_over_time",
      [RC_FN_MAX_OT] = "max_over_time",
      [RC_FN_LAST_OT] = "last_over_time",
      [RC_FN_PRESENT_OT] = "present_over_time",
      [RC_FN_STDDEV_OT] = "stddev_over_time",
      [RC_FN_STDVAR_OT] = "stdvar_over_time",
      [RC_FN_QUANTILE_OT] = "quantile_over_time",
      [RC_FN_RESETS] = "resets",
      [RC_FN_CHANGES] = "changes",
  };
  return (unsigned)fn < RC_FN__COUNT ? names[fn] : "?";
}
