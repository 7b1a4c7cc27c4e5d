/* test_sketch.c: the quantile sketch (src/sketch.c) against its stated guarantees.
 *
 * Reference values come from the raw samples, never from the sketch: exact quantiles are
 * PromQL quantile_over_time's (sorted values, rank q*(n-1), linear between neighbours), and
 * reference bucket indexes are found by searching the upper bounds, not by the table the
 * sketch uses. Every random stream is a fixed-seed splitmix64, so failures reproduce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "rc.h"
#include "sketch.h"

/*------------------------------------------------------------------------------------------
 * Helpers
 *----------------------------------------------------------------------------------------*/

static uint64_t g_rng;

static void rng_seed(uint64_t s) { g_rng = s; }

static uint64_t rng_u64(void) { /* splitmix64 */
  uint64_t z = (g_rng += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static double rng_unit(void) { return (double)(rng_u64() >> 11) * 0x1p-53; } /* [0,1) */

static double rng_normal(void) {
  double u1 = 1.0 - rng_unit(), u2 = rng_unit();
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* quantile_over_time on sorted values; *lo, *hi, *f are the neighbours and the weight. */
static double exact_quantile(const double *sorted, size_t n, double q, double *lo, double *hi,
                             double *f) {
  double rank = q * (double)(n - 1);
  size_t k = (size_t)floor(rank);
  if (k > n - 1) k = n - 1;
  *f = rank - (double)k;
  *lo = sorted[k];
  *hi = sorted[k + 1 < n ? k + 1 : n - 1];
  return *f > 0 ? *lo * (1 - *f) + *hi * *f : *lo;
}

/* Reference index: the smallest i with |v| <= upper(i), found from the bounds alone. Below
 * DBL_MIN the bounds themselves are rounded to the subnormal grid (several can round to the same
 * double), so a subnormal is scaled up by 2^64 first, which shifts its index by 64 * 2^schema. */
static int32_t ref_index(int schema, double v) {
  v = fabs(v);
  if (v < DBL_MIN) return ref_index(schema, v * 0x1p64) - (int32_t)ldexp(64, schema);
  int32_t i = (int32_t)ceil(log2(v) * ldexp(1.0, schema));
  while (v > rc_sketch_upper_bound(schema, i)) i++;
  while (i > INT32_MIN + 1 && v <= rc_sketch_upper_bound(schema, i - 1)) i--;
  return i;
}

static rc_sketch_t *mk(int schema, double zt, uint32_t max_bins) {
  rc_sketch_opts_t o = {.schema = schema, .zero_threshold = zt, .max_bins = max_bins};
  rc_sketch_t *s = rc_sketch_new(&o);
  assert_non_null(s);
  return s;
}

static void add_all(rc_sketch_t *s, const double *v, size_t n) {
  for (size_t i = 0; i < n; i++) assert_int_equal(rc_sketch_add(s, v[i], 1), 0);
}

#define assert_dbl_eq(a, b)                                                             \
  do {                                                                                  \
    double a_ = (a), b_ = (b);                                                          \
    if (!(a_ == b_) && !(isnan(a_) && isnan(b_)))                                       \
      fail_msg("%s = %.17g, want %.17g", #a, a_, b_);                                   \
  } while (0)

#define assert_dbl_near(a, b, tol)                                                      \
  do {                                                                                  \
    double a_ = (a), b_ = (b);                                                          \
    if (!(fabs(a_ - b_) <= (tol))) fail_msg("%s = %.17g, want %.17g ± %g", #a, a_, b_, \
                                            (double)(tol));                             \
  } while (0)

/*------------------------------------------------------------------------------------------
 * Accuracy
 *----------------------------------------------------------------------------------------*/

enum { N_SAMPLES = 100000 };

typedef enum {
  D_UNIFORM, D_NORMAL, D_LOGNORMAL, D_PARETO, D_BIMODAL, D_CONSTANT, D_ZEROS, D_NEGATIVES,
  D_NEGATIVE_ONLY, D_ASCENDING, D_DESCENDING, D__COUNT
} dist_t;

static const char *const dist_names[] = {"uniform", "normal", "lognormal", "pareto",
                                         "bimodal", "constant", "with-zeros", "with-negatives",
                                         "negative-only", "ascending", "descending"};

static void gen(dist_t d, double *v, size_t n) {
  rng_seed(UINT64_C(0x5eed0000) + (uint64_t)d);
  for (size_t i = 0; i < n; i++) {
    switch (d) {
    case D_UNIFORM: v[i] = 1000.0 * rng_unit(); break;
    case D_NORMAL: v[i] = 100.0 + 15.0 * rng_normal(); break;
    case D_LOGNORMAL: v[i] = exp(-3.0 + rng_normal()); break; /* latency in seconds */
    case D_PARETO: v[i] = pow(1.0 - rng_unit(), -1.0 / 1.5); break;
    case D_BIMODAL:
      v[i] = rng_unit() < 0.7 ? 10.0 + rng_normal() : 200.0 + 20.0 * rng_normal();
      break;
    case D_CONSTANT: v[i] = 42.0; break;
    case D_ZEROS: v[i] = rng_unit() < 0.3 ? 0.0 : exp(rng_normal()); break;
    case D_NEGATIVES: v[i] = 50.0 * rng_normal() + 10.0; break;
    case D_NEGATIVE_ONLY: v[i] = -exp(2.0 * rng_normal()); break;
    case D_ASCENDING:
    case D_DESCENDING: v[i] = exp(-3.0 + 0.5 * rng_normal()); break;
    default: v[i] = 0; break;
    }
  }
  if (d == D_ASCENDING || d == D_DESCENDING) {
    qsort(v, n, sizeof(*v), cmp_double);
    if (d == D_DESCENDING)
      for (size_t i = 0; i < n / 2; i++) {
        double t = v[i];
        v[i] = v[n - 1 - i];
        v[n - 1 - i] = t;
      }
  }
}

static const double qs[] = {0.0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0};
#define ALL_QS ((1u << RC_ARRAY_SIZE(qs)) - 1)
#define Q_TOP (7u << 6)    /* 0.99, 0.999, 1 */
#define Q_BOTTOM 3u        /* 0, 0.01 */

/* Checks every quantile whose two order statistics lie above the collapse floor (all of them
 * when nothing collapsed) against the alpha bound; returns a bit per qs[] entry checked. */
static unsigned check_accuracy(const rc_sketch_t *s, const double *sorted, size_t n,
                               const char *what) {
  rc_sketch_stats_t st;
  rc_sketch_stats(s, &st);
  double alpha = st.alpha;
  unsigned checked = 0;
  for (size_t i = 0; i < RC_ARRAY_SIZE(qs); i++) {
    double lo, hi, f, est;
    double want = exact_quantile(sorted, n, qs[i], &lo, &hi, &f);
    int usable = 1;
    double ends[2] = {lo, hi};
    for (int e = 0; e < 2; e++) {
      if (ends[e] == 0) continue;
      int32_t fl = ends[e] > 0 ? st.pos_floor : st.neg_floor;
      if (fl != RC_SKETCH_NO_FLOOR && rc_sketch_index(st.schema, ends[e]) <= fl) usable = 0;
    }
    assert_int_equal(rc_sketch_quantile(s, qs[i], &est), 0);
    if (!usable) continue;
    /* alpha of each neighbour, weighted as quantile_over_time weights them. */
    double bound = alpha * ((1 - f) * fabs(lo) + f * fabs(hi)) * (1 + 1e-12) + 1e-300;
    if (!(fabs(est - want) <= bound))
      fail_msg("%s q=%g: estimate %.17g, exact %.17g, error %.3g > bound %.3g", what, qs[i],
               est, want, fabs(est - want), bound);
    checked |= 1u << i;
  }
  return checked;
}

static void test_accuracy(void **st) {
  (void)st;
  double *v = malloc(N_SAMPLES * sizeof(*v)), *sorted = malloc(N_SAMPLES * sizeof(*v));
  assert_non_null(v);
  assert_non_null(sorted);
  for (dist_t d = 0; d < D__COUNT; d++) {
    gen(d, v, N_SAMPLES);
    memcpy(sorted, v, N_SAMPLES * sizeof(*v));
    qsort(sorted, N_SAMPLES, sizeof(*v), cmp_double);
    /* Schema 6 without collapsing: every quantile must be within alpha. */
    rc_sketch_t *s = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
    add_all(s, v, N_SAMPLES);
    assert_int_equal(rc_sketch_count(s), N_SAMPLES);
    assert_int_equal(check_accuracy(s, sorted, N_SAMPLES, dist_names[d]), ALL_QS);
    rc_sketch_free(s);
    /* The defaults (512 bins): the bound holds wherever nothing was folded, which always
     * includes the top quantiles; a negative-only stream keeps its most negative values. */
    s = rc_sketch_new(NULL);
    add_all(s, v, N_SAMPLES);
    unsigned got = check_accuracy(s, sorted, N_SAMPLES, dist_names[d]);
    unsigned must = d == D_NEGATIVE_ONLY ? Q_BOTTOM : Q_TOP;
    if ((got & must) != must) fail_msg("%s: defaults checked %#x", dist_names[d], got);
    rc_sketch_free(s);
    /* Coarser schemas keep their own (larger) alpha. */
    for (int schema = 0; schema <= 8; schema += 4) {
      s = mk(schema, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
      add_all(s, v, N_SAMPLES);
      assert_int_equal(check_accuracy(s, sorted, N_SAMPLES, dist_names[d]), ALL_QS);
      rc_sketch_free(s);
    }
  }
  free(v);
  free(sorted);
}

/* Small n too: the rank rule must match quantile_over_time exactly, not just asymptotically. */
static void test_accuracy_small_n(void **st) {
  (void)st;
  double v[64], sorted[64];
  rng_seed(7);
  for (size_t n = 1; n <= 64; n++) {
    rc_sketch_t *s = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
    for (size_t i = 0; i < n; i++) v[i] = exp(3.0 * rng_normal());
    add_all(s, v, n);
    memcpy(sorted, v, n * sizeof(*v));
    qsort(sorted, n, sizeof(*v), cmp_double);
    assert_int_equal(check_accuracy(s, sorted, n, "small"), ALL_QS);
    rc_sketch_free(s);
  }
}

static void test_quantile_args(void **st) {
  (void)st;
  rc_sketch_t s;
  double out;
  assert_int_equal(rc_sketch_init(&s, NULL), 0);
  assert_int_equal(rc_sketch_quantile(&s, 0.5, &out), RC_ENOENT);
  assert_true(isnan(out));
  assert_int_equal(rc_sketch_add(&s, 1.0, 1), 0);
  assert_int_equal(rc_sketch_quantile(&s, -0.1, &out), RC_EINVAL);
  assert_int_equal(rc_sketch_quantile(&s, 1.1, &out), RC_EINVAL);
  assert_int_equal(rc_sketch_quantile(&s, NAN, &out), RC_EINVAL);
  assert_int_equal(rc_sketch_quantile(&s, 0.5, &out), 0);
  assert_dbl_eq(out, 1.0); /* clamped to [min, max] */
  rc_sketch_close(&s);
}

/*------------------------------------------------------------------------------------------
 * Mapping and boundaries
 *----------------------------------------------------------------------------------------*/

static void test_schema_for_alpha(void **st) {
  (void)st;
  int n = 99;
  assert_int_equal(rc_sketch_schema_for_alpha(0.01, &n), 0);
  assert_int_equal(n, 6);
  assert_int_equal(rc_sketch_schema_for_alpha(0.0108, &n), 0); /* schema 5 is 1.083 % */
  assert_int_equal(n, 6);
  assert_int_equal(rc_sketch_schema_for_alpha(0.011, &n), 0);
  assert_int_equal(n, 5);
  assert_int_equal(rc_sketch_schema_for_alpha(0.5, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(rc_sketch_schema_for_alpha(0.001, &n), RC_ENOTSUP);
  assert_int_equal(rc_sketch_schema_for_alpha(0, &n), RC_EINVAL);
  assert_int_equal(rc_sketch_schema_for_alpha(1, &n), RC_EINVAL);
  assert_int_equal(rc_sketch_schema_for_alpha(NAN, &n), RC_EINVAL);
  assert_dbl_near(rc_sketch_alpha(5), 0.010830, 1e-6);
  assert_dbl_near(rc_sketch_alpha(6), 0.005415, 1e-6);
  assert_dbl_near(rc_sketch_alpha(3), 0.043295, 1e-6);
  assert_true(isnan(rc_sketch_alpha(9)));
}

static void test_bounds_exact(void **st) {
  (void)st;
  /* Correctly rounded 2^(j/2^n), from 60-digit decimal arithmetic. */
  assert_dbl_eq(rc_sketch_upper_bound(1, 1), 0x1.6a09e667f3bcdp+0);
  assert_dbl_eq(rc_sketch_upper_bound(3, 5), 0x1.8ace5422aa0dbp+0);
  assert_dbl_eq(rc_sketch_upper_bound(6, 1), 0x1.02c9a3e778061p+0);
  assert_dbl_eq(rc_sketch_upper_bound(6, 63), 0x1.fa7c1819e90d8p+0);
  assert_dbl_eq(rc_sketch_upper_bound(8, 255), 0x1.fe9d96b2a23d9p+0);
  assert_dbl_eq(rc_sketch_upper_bound(8, 77), 0x1.3b57fbfec6cf4p+0);
  assert_dbl_eq(rc_sketch_upper_bound(6, 64 * 3 + 1), 8 * 0x1.02c9a3e778061p+0);
  assert_dbl_eq(rc_sketch_upper_bound(6, -64 + 63), 0.5 * 0x1.fa7c1819e90d8p+0);
  for (int n = RC_SKETCH_SCHEMA_MIN; n <= RC_SKETCH_SCHEMA_MAX; n++) {
    int32_t top = n >= 0 ? 1024 << n : 1024 >> -n;
    assert_int_equal(rc_sketch_index(n, DBL_MAX), top);
    assert_int_equal(rc_sketch_index(n, -DBL_MAX), top);
    assert_dbl_eq(rc_sketch_upper_bound(n, top), DBL_MAX);
    assert_true(isinf(rc_sketch_upper_bound(n, top + 1)));
    assert_true(rc_sketch_upper_bound(n, top - 1) < DBL_MAX);
    assert_int_equal(rc_sketch_index(n, 1.0), 0);
    assert_int_equal(rc_sketch_index(n, nextafter(1.0, 2.0)), 1);
    assert_int_equal(rc_sketch_index(n, 0.0), INT32_MIN);
    assert_int_equal(rc_sketch_index(n, INFINITY), INT32_MIN);
    assert_int_equal(rc_sketch_index(n, NAN), INT32_MIN);
    /* The smallest subnormal and the smallest normal. */
    assert_int_equal(rc_sketch_index(n, 0x1p-1074), ref_index(n, 0x1p-1074));
    assert_int_equal(rc_sketch_index(n, DBL_MIN), n >= 0 ? -1022 * (1 << n) : -(1022 >> -n));
  }
  assert_int_equal(rc_sketch_index(8, 0x1p-1074), -1074 * 256);
  assert_int_equal(rc_sketch_index(8, 3 * 0x1p-1074), ref_index(8, 3 * 0x1p-1074));
}

/* Every power of two and every bucket bound over a wide range lands in its bucket, and the
 * next double up lands in the next one: the upper bound is inclusive. */
static void test_boundaries(void **st) {
  (void)st;
  for (int n = RC_SKETCH_SCHEMA_MIN; n <= RC_SKETCH_SCHEMA_MAX; n++) {
    for (int k = -1074; k <= 1023; k++) {
      double p = ldexp(1.0, k);
      int32_t want = n >= 0 ? k * (1 << n) : (int32_t)ceil(k / ldexp(1.0, -n));
      if (rc_sketch_index(n, p) != want)
        fail_msg("schema %d: index(2^%d) = %d, want %d", n, k, rc_sketch_index(n, p), want);
      if (rc_sketch_index(n, -p) != want) fail_msg("schema %d: index(-2^%d)", n, k);
    }
    /* Normal bounds only: subnormal ones are rounded (see ref_index). */
    int32_t lo = n >= 0 ? -1021 * (1 << n) : -(1021 >> -n);
    int32_t hi = n >= 0 ? 1023 * (1 << n) : 1023 >> -n;
    for (int32_t i = lo; i <= hi; i += (n >= 7 ? 3 : 1)) {
      double u = rc_sketch_upper_bound(n, i);
      if (rc_sketch_index(n, u) != i)
        fail_msg("schema %d: index(upper(%d) = %a) = %d", n, i, u, rc_sketch_index(n, u));
      if (rc_sketch_index(n, nextafter(u, INFINITY)) != i + 1)
        fail_msg("schema %d: index(next above upper(%d)) != %d", n, i, i + 1);
      double below = nextafter(u, 0);
      if (below > rc_sketch_upper_bound(n, i - 1) && rc_sketch_index(n, below) != i)
        fail_msg("schema %d: index(next below upper(%d)) != %d", n, i, i);
    }
  }
  /* The same through add(): an exact bound goes to its bucket, the next double above does not. */
  for (int n = 1; n <= 8; n++) {
    rc_sketch_t *s = mk(n, 0, RC_SKETCH_MAX_BINS);
    double u = rc_sketch_upper_bound(n, 7);
    assert_int_equal(rc_sketch_add(s, u, 1), 0);
    assert_int_equal(rc_sketch_add(s, -u, 2), 0);
    assert_int_equal(rc_sketch_add(s, nextafter(u, INFINITY), 4), 0);
    assert_int_equal(rc_sketch_bucket(s, 1, 7), 1);
    assert_int_equal(rc_sketch_bucket(s, -1, 7), 2);
    assert_int_equal(rc_sketch_bucket(s, 1, 8), 4);
    rc_sketch_free(s);
  }
  /* A naive ceil(log2(v) * 2^n) gets some bounds wrong; the table never does (above). */
  int naive_wrong = 0;
  for (int32_t i = -64 * 300; i <= 64 * 300; i++) {
    double u = rc_sketch_upper_bound(6, i);
    if ((int32_t)ceil(log2(u) * 64) != i) naive_wrong++;
  }
  print_message("naive log2 index misplaces %d of %d schema-6 bounds\n", naive_wrong,
                64 * 600 + 1);
}

static void test_index_random(void **st) {
  (void)st;
  rng_seed(11);
  for (int n = RC_SKETCH_SCHEMA_MIN; n <= RC_SKETCH_SCHEMA_MAX; n++) {
    for (int i = 0; i < 200000; i++) {
      uint64_t bits = rng_u64() & UINT64_C(0x7fefffffffffffff); /* finite, >= 0 */
      double v;
      memcpy(&v, &bits, sizeof(v));
      if (v == 0) continue;
      if (rc_sketch_index(n, v) != ref_index(n, v))
        fail_msg("schema %d: index(%a) = %d, reference %d", n, v, rc_sketch_index(n, v),
                 ref_index(n, v));
    }
  }
}

static void test_zero_threshold(void **st) {
  (void)st;
  double zt = RC_SKETCH_DEFAULT_ZERO_THRESHOLD;
  rc_sketch_t *s = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_add(s, 0.0, 1), 0);
  assert_int_equal(rc_sketch_add(s, -0.0, 1), 0);
  assert_int_equal(rc_sketch_add(s, zt, 1), 0);  /* closed interval */
  assert_int_equal(rc_sketch_add(s, -zt, 1), 0);
  assert_int_equal(rc_sketch_add(s, 0x1p-1074, 1), 0); /* denormal: zero */
  assert_int_equal(rc_sketch_add(s, nextafter(zt, 1), 1), 0);
  assert_int_equal(rc_sketch_add(s, -nextafter(zt, 1), 1), 0);
  assert_int_equal(rc_sketch_bucket(s, 0, 0), 5);
  assert_int_equal(rc_sketch_bucket(s, 1, -128 * 64 + 1), 1);
  assert_int_equal(rc_sketch_bucket(s, -1, -128 * 64 + 1), 1);
  assert_int_equal(rc_sketch_count(s), 7);
  rc_sketch_free(s);
  /* Threshold 0: only zeros are zero; denormals get buckets. */
  s = mk(8, 0, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add(s, 0.0, 3), 0);
  assert_int_equal(rc_sketch_add(s, 0x1p-1074, 1), 0);
  assert_int_equal(rc_sketch_add(s, DBL_MIN, 1), 0);
  assert_int_equal(rc_sketch_bucket(s, 0, 0), 3);
  assert_int_equal(rc_sketch_bucket(s, 1, -1074 * 256), 1);
  assert_int_equal(rc_sketch_bucket(s, 1, -1022 * 256), 1);
  double out;
  assert_int_equal(rc_sketch_quantile(s, 0.0, &out), 0);
  assert_dbl_eq(out, 0.0);
  assert_int_equal(rc_sketch_quantile(s, 1.0, &out), 0);
  assert_dbl_near(out, DBL_MIN, DBL_MIN * rc_sketch_alpha(8)); /* DBL_MIN's bucket midpoint */
  rc_sketch_free(s);
}

static void test_special_values(void **st) {
  (void)st;
  rc_sketch_t s;
  rc_sketch_stats_t stats;
  double out;
  assert_int_equal(rc_sketch_init(&s, NULL), 0);
  for (int i = 1; i <= 100; i++) assert_int_equal(rc_sketch_add(&s, i, 1), 0);
  assert_int_equal(rc_sketch_add(&s, INFINITY, 5), 0);
  assert_int_equal(rc_sketch_add(&s, -INFINITY, 2), 0);
  assert_int_equal(rc_sketch_add(&s, NAN, 1), RC_EINVAL);
  double stale;
  uint64_t bits = RC_STALE_NAN_BITS;
  memcpy(&stale, &bits, sizeof(stale));
  assert_int_equal(rc_sketch_add(&s, stale, 1), RC_EINVAL);
  assert_int_equal(rc_sketch_add(&s, 5.0, 0), 0); /* n == 0: nothing */
  rc_sketch_stats(&s, &stats);
  assert_int_equal(stats.count, 107);
  assert_int_equal(stats.pinf, 5);
  assert_int_equal(stats.ninf, 2);
  assert_int_equal(stats.nan_count, 2);
  assert_true(isnan(stats.sum)); /* +Inf + -Inf */
  assert_true(isinf(stats.max) && stats.max > 0);
  assert_true(isinf(stats.min) && stats.min < 0);
  assert_int_equal(rc_sketch_quantile(&s, 1.0, &out), 0);
  assert_true(isinf(out) && out > 0);
  assert_int_equal(rc_sketch_quantile(&s, 0.0, &out), 0);
  assert_true(isinf(out) && out < 0);
  assert_int_equal(rc_sketch_quantile(&s, 0.5, &out), 0); /* rank 53: the value 52 */
  assert_dbl_near(out, 52.0, 52.0 * rc_sketch_alpha(6));
  assert_int_equal(rc_sketch_quantile_prom(&s, 0.999, &out), 0);
  assert_true(isinf(out) && out > 0);
  assert_int_equal(rc_sketch_quantile_prom(&s, 0.001, &out), 0);
  assert_true(isinf(out) && out < 0);
  rc_sketch_close(&s);
  /* The extremes of the finite range. */
  rc_sketch_t *x = mk(6, 0, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add(x, DBL_MAX, 1), 0);
  assert_int_equal(rc_sketch_add(x, -DBL_MAX, 1), 0);
  assert_int_equal(rc_sketch_add(x, 0x1p-1074, 1), 0);
  assert_int_equal(rc_sketch_bucket(x, 1, 1024 * 64), 1);
  assert_int_equal(rc_sketch_bucket(x, -1, 1024 * 64), 1);
  assert_int_equal(rc_sketch_quantile(x, 1.0, &out), 0);
  assert_dbl_near(out, DBL_MAX, DBL_MAX * rc_sketch_alpha(6));
  assert_int_equal(rc_sketch_quantile(x, 0.0, &out), 0);
  assert_dbl_near(out, -DBL_MAX, DBL_MAX * rc_sketch_alpha(6));
  /* 65535 bins at schema 6 span 1024 powers of two, not the 2098 from 2^-1074 to DBL_MAX: the
   * denormal was folded into the floor. At schema 0 everything fits. */
  rc_sketch_stats_t xs;
  rc_sketch_stats(x, &xs);
  assert_int_equal(xs.pos_floor, 1024 * 64 - 65534);
  rc_sketch_free(x);
  x = mk(0, 0, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add(x, DBL_MAX, 1), 0);
  assert_int_equal(rc_sketch_add(x, -DBL_MAX, 1), 0);
  assert_int_equal(rc_sketch_add(x, 0x1p-1074, 1), 0);
  assert_int_equal(rc_sketch_quantile(x, 0.5, &out), 0);
  assert_dbl_eq(out, 0x1p-1074); /* 2/3 of the smallest denormal rounds back to it */
  rc_sketch_free(x);
}

static void test_counter_widths(void **st) {
  (void)st;
  rc_sketch_t *s = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_add(s, 3.0, 255), 0);
  size_t fp1 = rc_sketch_footprint(s);
  assert_int_equal(rc_sketch_add(s, 3.0, 1), 0); /* 256: one byte no longer holds it */
  assert_true(rc_sketch_footprint(s) > fp1);
  assert_int_equal(rc_sketch_add(s, 3.0, 70000), 0);
  assert_int_equal(rc_sketch_add(s, 3.0, UINT64_C(1) << 33), 0);
  assert_int_equal(rc_sketch_bucket(s, 1, rc_sketch_index(6, 3.0)),
                   256 + 70000 + (UINT64_C(1) << 33));
  assert_int_equal(rc_sketch_add(s, 5.0, UINT64_MAX - rc_sketch_count(s)), 0);
  assert_int_equal(rc_sketch_add(s, 5.0, 1), RC_ELIMIT);
  assert_int_equal(rc_sketch_add(s, INFINITY, 1), RC_ELIMIT);
  assert_int_equal(rc_sketch_count(s), UINT64_MAX);
  rc_sketch_t *t = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_add(t, 1.0, 1), 0);
  assert_int_equal(rc_sketch_merge(s, t), RC_ELIMIT);
  rc_sketch_free(t);
  rc_sketch_free(s);
}

static void test_init_args(void **st) {
  (void)st;
  rc_sketch_t s;
  rc_sketch_opts_t o = RC_SKETCH_OPTS_DEFAULT;
  o.schema = 9;
  assert_int_equal(rc_sketch_init(&s, &o), RC_EINVAL);
  o = RC_SKETCH_OPTS_DEFAULT;
  o.schema = -5;
  assert_int_equal(rc_sketch_init(&s, &o), RC_EINVAL);
  o = RC_SKETCH_OPTS_DEFAULT;
  o.zero_threshold = -1;
  assert_int_equal(rc_sketch_init(&s, &o), RC_EINVAL);
  o.zero_threshold = INFINITY;
  assert_int_equal(rc_sketch_init(&s, &o), RC_EINVAL);
  o.zero_threshold = NAN;
  assert_int_equal(rc_sketch_init(&s, &o), RC_EINVAL);
  o = RC_SKETCH_OPTS_DEFAULT;
  o.max_bins = 0;
  assert_int_equal(rc_sketch_init(&s, &o), RC_EINVAL);
  o.max_bins = RC_SKETCH_MAX_BINS + 1;
  assert_int_equal(rc_sketch_init(&s, &o), RC_EINVAL);
  assert_null(rc_sketch_new(&o));
  rc_sketch_free(NULL);
  assert_int_equal(rc_sketch_init(&s, NULL), 0);
  assert_int_equal(rc_sketch_schema(&s), 6);
  rc_sketch_close(&s);
}

/*------------------------------------------------------------------------------------------
 * Merge and subtract
 *----------------------------------------------------------------------------------------*/

/* Mixed signs, zeros, infinities and a wide range, so every kind of bucket takes part. */
static void gen_mixed(double *v, size_t n, uint64_t seed) {
  rng_seed(seed);
  for (size_t i = 0; i < n; i++) {
    double u = rng_unit();
    if (u < 0.05)
      v[i] = 0;
    else if (u < 0.06)
      v[i] = u < 0.055 ? INFINITY : -INFINITY;
    else if (u < 0.3)
      v[i] = -exp(3 * rng_normal());
    else
      v[i] = exp(4 * rng_normal());
  }
}

static void merge_parts(uint32_t max_bins) {
  enum { N = 20000 };
  double *v = malloc(N * sizeof(*v));
  assert_non_null(v);
  gen_mixed(v, N, 99);
  rc_sketch_t *whole = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, max_bins);
  add_all(whole, v, N);
  for (int parts = 2; parts <= 10; parts++) {
    rc_sketch_t *p[10], *m = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, max_bins);
    for (int i = 0; i < parts; i++) p[i] = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, max_bins);
    rng_seed((uint64_t)parts);
    for (size_t i = 0; i < N; i++) /* uneven random split */
      assert_int_equal(rc_sketch_add(p[rng_u64() % (uint64_t)parts], v[i], 1), 0);
    for (int i = 0; i < parts; i++) assert_int_equal(rc_sketch_merge(m, p[i]), 0);
    if (!rc_sketch_equal(m, whole))
      fail_msg("%d parts, max_bins %u: merge != union", parts, max_bins);
    rc_sketch_stats_t a, b;
    rc_sketch_stats(m, &a);
    rc_sketch_stats(whole, &b);
    assert_dbl_eq(a.min, b.min);
    assert_dbl_eq(a.max, b.max);
    double qa, qb;
    assert_int_equal(rc_sketch_quantile(m, 0.99, &qa), 0);
    assert_int_equal(rc_sketch_quantile(whole, 0.99, &qb), 0);
    assert_dbl_eq(qa, qb);
    rc_sketch_free(m);
    for (int i = 0; i < parts; i++) rc_sketch_free(p[i]);
  }
  rc_sketch_free(whole);
  free(v);
}

static void test_merge_equals_union(void **st) {
  (void)st;
  merge_parts(RC_SKETCH_MAX_BINS);
  merge_parts(48); /* collapsing on both signs: still the same buckets as the union */
}

static void test_merge_associative(void **st) {
  (void)st;
  enum { N = 5000 };
  double v[N];
  rc_sketch_t *x[3];
  for (int i = 0; i < 3; i++) {
    gen_mixed(v, N, 1000 + (uint64_t)i);
    x[i] = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, 128);
    add_all(x[i], v, N);
  }
  rc_sketch_t l, r;
  /* (a + b) + c */
  assert_int_equal(rc_sketch_copy(&l, x[0]), 0);
  assert_int_equal(rc_sketch_merge(&l, x[1]), 0);
  assert_int_equal(rc_sketch_merge(&l, x[2]), 0);
  /* a + (b + c) */
  assert_int_equal(rc_sketch_copy(&r, x[1]), 0);
  assert_int_equal(rc_sketch_merge(&r, x[2]), 0);
  rc_sketch_t r2;
  assert_int_equal(rc_sketch_copy(&r2, x[0]), 0);
  assert_int_equal(rc_sketch_merge(&r2, &r), 0);
  assert_true(rc_sketch_equal(&l, &r2));
  /* Merging a sketch into itself doubles it. */
  rc_sketch_close(&r);
  assert_int_equal(rc_sketch_copy(&r, x[0]), 0);
  assert_int_equal(rc_sketch_merge(&r, &r), 0);
  assert_int_equal(rc_sketch_count(&r), 2 * rc_sketch_count(x[0]));
  assert_int_equal(rc_sketch_subtract(&r, x[0]), 0);
  assert_true(rc_sketch_equal(&r, x[0]));
  rc_sketch_close(&l);
  rc_sketch_close(&r);
  rc_sketch_close(&r2);
  for (int i = 0; i < 3; i++) rc_sketch_free(x[i]);
}

static void test_subtract(void **st) {
  (void)st;
  enum { N = 8000 };
  double v[N];
  gen_mixed(v, N, 5);
  /* Without collapsing (the documented condition for subtract to undo merge exactly). */
  rc_sketch_t *a = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  rc_sketch_t *b = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  add_all(a, v, N / 2);
  add_all(b, v + N / 2, N / 2);
  rc_sketch_t m;
  assert_int_equal(rc_sketch_copy(&m, a), 0);
  assert_int_equal(rc_sketch_merge(&m, b), 0);
  assert_int_equal(rc_sketch_subtract(&m, b), 0);
  assert_true(rc_sketch_equal(&m, a));
  rc_sketch_stats_t stats;
  rc_sketch_stats(&m, &stats);
  assert_false(stats.minmax_exact);
  /* Taking out what is not there fails and changes nothing. */
  rc_sketch_t before;
  assert_int_equal(rc_sketch_copy(&before, &m), 0);
  assert_int_equal(rc_sketch_subtract(&m, b), RC_EINVAL);
  assert_true(rc_sketch_equal(&m, &before));
  rc_sketch_t *one = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_add(one, 123456.0, 1), 0);
  if (rc_sketch_bucket(&m, 1, rc_sketch_index(6, 123456.0)) == 0)
    assert_int_equal(rc_sketch_subtract(&m, one), RC_EINVAL);
  assert_true(rc_sketch_equal(&m, &before));
  /* Emptying resets everything. */
  assert_int_equal(rc_sketch_subtract(&m, a), 0);
  rc_sketch_stats(&m, &stats);
  assert_int_equal(stats.count, 0);
  assert_dbl_eq(stats.sum, 0);
  assert_int_equal(rc_sketch_subtract(&m, &m), 0);
  rc_sketch_close(&before);
  rc_sketch_close(&m);
  rc_sketch_free(a);
  rc_sketch_free(b);
  rc_sketch_free(one);
}

/* A 5-minute window of 30 s slots: total += newest slot, total -= expiring slot; at every
 * step the total must equal a sketch built from exactly the values in the window. */
static void test_sliding_window(void **st) {
  (void)st;
  enum { SLOTS = 10, STEPS = 40, PER = 30 };
  double v[STEPS][PER];
  rng_seed(2024);
  for (int t = 0; t < STEPS; t++)
    for (int i = 0; i < PER; i++) v[t][i] = exp(-4.0 + 0.2 * t * rng_unit() + rng_normal());
  /* No collapsing here: a collapse raises the floor for good, which a fresh sketch of a later
   * window would not have (test_collapsing covers that case). */
  rc_sketch_t *slot[STEPS], *total = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  for (int t = 0; t < STEPS; t++) {
    slot[t] = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
    add_all(slot[t], v[t], PER);
    assert_int_equal(rc_sketch_merge(total, slot[t]), 0);
    if (t >= SLOTS) assert_int_equal(rc_sketch_subtract(total, slot[t - SLOTS]), 0);
    rc_sketch_t *fresh = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
    for (int u = t >= SLOTS ? t - SLOTS + 1 : 0; u <= t; u++) add_all(fresh, v[u], PER);
    if (!rc_sketch_equal(total, fresh)) fail_msg("window at step %d differs", t);
    double a, b;
    assert_int_equal(rc_sketch_quantile(total, 0.99, &a), 0);
    assert_int_equal(rc_sketch_quantile(fresh, 0.99, &b), 0);
    assert_dbl_near(a, b, b * 2 * rc_sketch_alpha(6)); /* clamps may differ (min/max loose) */
    rc_sketch_free(fresh);
  }
  for (int t = 0; t < STEPS; t++) rc_sketch_free(slot[t]);
  rc_sketch_free(total);
}

static void test_merge_schemas(void **st) {
  (void)st;
  enum { N = 6000 };
  double v[N];
  gen_mixed(v, N, 77);
  rc_sketch_t *fine = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  rc_sketch_t *coarse = mk(4, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  rc_sketch_t *want = mk(4, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  add_all(fine, v, N / 2);
  add_all(coarse, v + N / 2, N / 2);
  add_all(want, v, N);
  rc_sketch_t d;
  assert_int_equal(rc_sketch_copy(&d, fine), 0);
  assert_int_equal(rc_sketch_merge(&d, coarse), 0); /* dst becomes coarser */
  assert_int_equal(rc_sketch_schema(&d), 4);
  assert_true(rc_sketch_equal(&d, want));
  rc_sketch_close(&d);
  assert_int_equal(rc_sketch_copy(&d, coarse), 0);
  assert_int_equal(rc_sketch_merge(&d, fine), 0); /* src is reduced */
  assert_true(rc_sketch_equal(&d, want));
  /* And subtracting the fine half again leaves the coarse half. */
  assert_int_equal(rc_sketch_subtract(&d, fine), 0);
  assert_true(rc_sketch_equal(&d, coarse));
  rc_sketch_close(&d);
  /* Different zero thresholds: the larger one, widened to cut no populated bucket. */
  rc_sketch_t *z = mk(6, 0.001, RC_SKETCH_MAX_BINS);
  rc_sketch_t *y = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add(z, 0.0005, 1), 0);
  assert_int_equal(rc_sketch_add(z, 0.0011, 1), 0);
  assert_int_equal(rc_sketch_add(y, 0.00100001, 1), 0); /* shares 0.001's bucket */
  assert_int_equal(rc_sketch_add(y, 0.00099, 1), 0);
  assert_int_equal(rc_sketch_add(y, 1.0, 1), 0);
  int32_t j = rc_sketch_index(6, 0.001);
  assert_int_equal(rc_sketch_index(6, 0.00100001), j);
  assert_int_equal(rc_sketch_merge(y, z), 0);
  rc_sketch_stats_t s;
  rc_sketch_stats(y, &s);
  assert_dbl_eq(s.zero_threshold, rc_sketch_upper_bound(6, j));
  assert_true(0.0011 > s.zero_threshold);
  assert_int_equal(s.zero_count, 3); /* 0.0005, 0.00099, 0.00100001 */
  assert_int_equal(rc_sketch_bucket(y, 1, rc_sketch_index(6, 0.0011)), 1);
  assert_int_equal(s.count, 5);
  rc_sketch_free(z);
  rc_sketch_free(y);
  rc_sketch_free(fine);
  rc_sketch_free(coarse);
  rc_sketch_free(want);
}

/*------------------------------------------------------------------------------------------
 * Collapsing and memory
 *----------------------------------------------------------------------------------------*/

static void test_collapsing(void **st) {
  (void)st;
  enum { N = 100000, BINS = 512 };
  double *v = malloc(N * sizeof(*v)), *sorted = malloc(N * sizeof(*v));
  assert_non_null(v);
  assert_non_null(sorted);
  rng_seed(31337);
  for (size_t i = 0; i < N; i++) v[i] = exp(2.0 * rng_normal()); /* ~25 powers of two */
  memcpy(sorted, v, N * sizeof(*v));
  qsort(sorted, N, sizeof(*v), cmp_double);
  rc_sketch_t *s = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, BINS);
  size_t peak = 0;
  for (size_t i = 0; i < N; i++) {
    assert_int_equal(rc_sketch_add(s, v[i], 1), 0);
    if (rc_sketch_footprint(s) > peak) peak = rc_sketch_footprint(s);
  }
  rc_sketch_stats_t stats;
  rc_sketch_stats(s, &stats);
  assert_int_equal(stats.count, N);
  assert_true(stats.pos_floor != RC_SKETCH_NO_FLOOR);
  /* The floor is exactly BINS-1 below the top bucket, and holds everything at or below it. */
  int32_t top = rc_sketch_index(6, sorted[N - 1]);
  assert_int_equal(stats.pos_floor, top - BINS + 1);
  uint64_t below = 0;
  for (size_t i = 0; i < N; i++) below += rc_sketch_index(6, v[i]) <= stats.pos_floor;
  assert_int_equal(rc_sketch_bucket(s, 1, stats.pos_floor), below);
  /* Bounded memory: at most BINS counters of 4 bytes (no count reaches 2^32) plus rounding. */
  assert_true(peak <= sizeof(rc_sketch_t) + BINS * 4 + 8);
  /* p99 and p99.9 sit inside the kept range: within alpha. */
  for (int i = 0; i < 2; i++) {
    double q = i ? 0.999 : 0.99, lo, hi, f, est;
    double want = exact_quantile(sorted, N, q, &lo, &hi, &f);
    assert_true(rc_sketch_index(6, lo) > stats.pos_floor);
    assert_int_equal(rc_sketch_quantile(s, q, &est), 0);
    assert_dbl_near(est, want, want * rc_sketch_alpha(6) * (1 + 1e-12));
  }
  /* The median was folded: the guarantee is gone, as documented. */
  double lo, hi, f, est;
  exact_quantile(sorted, N, 0.5, &lo, &hi, &f);
  assert_true(rc_sketch_index(6, lo) <= stats.pos_floor);
  assert_int_equal(rc_sketch_quantile(s, 0.5, &est), 0);
  assert_true(est >= lo * (1 - rc_sketch_alpha(6))); /* folded values only move up */
  rc_sketch_free(s);
  free(v);
  free(sorted);
}

static void test_footprint(void **st) {
  (void)st;
  double v[300];
  rng_seed(4242);
  for (int i = 0; i < 300; i++) v[i] = exp(-2.0 + 0.5 * rng_normal()); /* ~135 ms latencies */
  rc_sketch_t *s = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_footprint(s), sizeof(rc_sketch_t));
  add_all(s, v, 300);
  size_t grown = rc_sketch_footprint(s);
  assert_int_equal(rc_sketch_shrink(s), 0);
  size_t shrunk = rc_sketch_footprint(s);
  print_message("300 latencies at schema 6: %zu bytes, %zu after shrink (header %zu)\n", grown,
                shrunk, sizeof(rc_sketch_t));
  assert_true(shrunk <= grown);
  assert_true(grown <= 1024);
  /* Shrinking changes no bucket, and the sketch keeps working afterwards. */
  rc_sketch_t *t = rc_sketch_new(NULL);
  add_all(t, v, 300);
  assert_true(rc_sketch_equal(s, t));
  assert_int_equal(rc_sketch_add(s, 1e6, 300), 0);
  assert_int_equal(rc_sketch_add(t, 1e6, 300), 0);
  assert_true(rc_sketch_equal(s, t));
  rc_sketch_clear(s);
  assert_int_equal(rc_sketch_count(s), 0);
  assert_int_equal(rc_sketch_shrink(s), 0);
  assert_int_equal(rc_sketch_footprint(s), sizeof(rc_sketch_t));
  rc_sketch_free(s);
  rc_sketch_free(t);
}

/*------------------------------------------------------------------------------------------
 * Native histograms
 *----------------------------------------------------------------------------------------*/

typedef struct bucket_list {
  int32_t idx[16384];
  uint64_t cnt[16384];
  size_t n;
} bucket_list_t;

/* Encodes sorted (index, count) pairs as spans + deltas / float counts, with gaps of one or
 * two empty buckets kept inside a span (as Prometheus does) and longer gaps as new spans. */
typedef struct enc {
  rc_span_t spans[16384];
  int64_t deltas[16384];
  double counts[16384];
  uint32_t nspans, nb;
} enc_t;

static void encode(const bucket_list_t *b, enc_t *e) {
  e->nspans = e->nb = 0;
  int64_t prev = 0;
  int32_t next = 0; /* index after the last stored bucket */
  for (size_t i = 0; i < b->n; i++) {
    int32_t gap = b->idx[i] - next;
    if (e->nspans == 0 || gap > 2) {
      e->spans[e->nspans].offset = e->nspans == 0 ? b->idx[i] : gap;
      e->spans[e->nspans].length = 0;
      e->nspans++;
    } else {
      for (int32_t g = 0; g < gap; g++) { /* explicit empty buckets */
        e->deltas[e->nb] = -prev;
        e->counts[e->nb] = 0;
        prev = 0;
        e->nb++;
        e->spans[e->nspans - 1].length++;
      }
    }
    e->deltas[e->nb] = (int64_t)b->cnt[i] - prev;
    e->counts[e->nb] = (double)b->cnt[i];
    prev = (int64_t)b->cnt[i];
    e->nb++;
    e->spans[e->nspans - 1].length++;
    next = b->idx[i] + 1;
  }
}

/* Builds a native histogram of values at a schema with the reference index, like a client. */
typedef struct nh {
  enc_t pos, neg;
  rc_histogram_t h;
} nh_t;

static void to_list(const double *v, size_t n, int schema, int sign, bucket_list_t *b) {
  b->n = 0;
  int32_t *idx = malloc(n * sizeof(*idx));
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if ((sign > 0 ? v[i] > 0 : v[i] < 0) && fabs(v[i]) > RC_SKETCH_DEFAULT_ZERO_THRESHOLD &&
        !isinf(v[i]))
      idx[m++] = ref_index(schema, v[i]);
  for (size_t i = 1; i < m; i++) /* insertion sort: small inputs */
    for (size_t k = i; k > 0 && idx[k - 1] > idx[k]; k--) {
      int32_t t = idx[k];
      idx[k] = idx[k - 1];
      idx[k - 1] = t;
    }
  for (size_t i = 0; i < m; i++) {
    if (b->n && b->idx[b->n - 1] == idx[i]) {
      b->cnt[b->n - 1]++;
    } else {
      b->idx[b->n] = idx[i];
      b->cnt[b->n] = 1;
      b->n++;
    }
  }
  free(idx);
}

static void build_nh(nh_t *x, const double *v, size_t n, int schema, int is_float) {
  bucket_list_t *b = malloc(sizeof(*b));
  assert_non_null(b);
  memset(&x->h, 0, sizeof(x->h));
  to_list(v, n, schema, +1, b);
  encode(b, &x->pos);
  to_list(v, n, schema, -1, b);
  encode(b, &x->neg);
  free(b);
  double zc = 0, sum = 0;
  for (size_t i = 0; i < n; i++) {
    if (fabs(v[i]) <= RC_SKETCH_DEFAULT_ZERO_THRESHOLD) zc++;
    sum += v[i];
  }
  x->h.schema = schema;
  x->h.zero_threshold = RC_SKETCH_DEFAULT_ZERO_THRESHOLD;
  x->h.zero_count = zc;
  x->h.count = (double)n;
  x->h.sum = sum;
  x->h.is_float = (uint8_t)is_float;
  x->h.pos_spans = x->pos.spans;
  x->h.n_pos_spans = x->pos.nspans;
  x->h.n_pos = x->pos.nb;
  x->h.neg_spans = x->neg.spans;
  x->h.n_neg_spans = x->neg.nspans;
  x->h.n_neg = x->neg.nb;
  if (is_float) {
    x->h.pos_counts = x->pos.counts;
    x->h.neg_counts = x->neg.counts;
  } else {
    x->h.pos_deltas = x->pos.deltas;
    x->h.neg_deltas = x->neg.deltas;
  }
}

/* The worked example of the native histogram spec (§ Buckets), in both of its encodings. */
static void test_histogram_spec_example(void **st) {
  (void)st;
  rc_span_t sp1[] = {{-2, 2}, {2, 1}, {1, 2}};
  int64_t d1[] = {3, 2, -4, 2, -1};
  rc_span_t sp2[] = {{-2, 8}};
  int64_t d2[] = {3, 2, -5, 0, 1, -1, 3, -1};
  rc_histogram_t h = {.schema = 3, .zero_threshold = RC_SKETCH_DEFAULT_ZERO_THRESHOLD,
                      .count = 14, .sum = 1.0, .n_pos_spans = 3, .n_pos = 5,
                      .pos_spans = sp1, .pos_deltas = d1};
  rc_sketch_t *a = mk(3, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add_histogram(a, &h, 1), 0);
  int32_t idx[] = {-2, -1, 0, 1, 2, 3, 4, 5};
  uint64_t want[] = {3, 5, 0, 0, 1, 0, 3, 2};
  for (size_t i = 0; i < 8; i++) assert_int_equal(rc_sketch_bucket(a, 1, idx[i]), want[i]);
  assert_int_equal(rc_sketch_count(a), 14);
  rc_histogram_t h2 = h;
  h2.pos_spans = sp2;
  h2.n_pos_spans = 1;
  h2.n_pos = 8;
  h2.pos_deltas = d2;
  rc_sketch_t *b = mk(3, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add_histogram(b, &h2, 1), 0);
  assert_true(rc_sketch_equal(a, b));
  /* The same as negative buckets mirror into the negative store. */
  rc_histogram_t h3 = h;
  h3.pos_spans = NULL;
  h3.n_pos_spans = h3.n_pos = 0;
  h3.pos_deltas = NULL;
  h3.neg_spans = sp1;
  h3.n_neg_spans = 3;
  h3.n_neg = 5;
  h3.neg_deltas = d1;
  rc_sketch_t *c = mk(3, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add_histogram(c, &h3, 1), 0);
  for (size_t i = 0; i < 8; i++) assert_int_equal(rc_sketch_bucket(c, -1, idx[i]), want[i]);
  rc_sketch_free(a);
  rc_sketch_free(b);
  rc_sketch_free(c);
}

static void test_histogram_interop(void **st) {
  (void)st;
  enum { N = 3000 };
  double v[N];
  gen_mixed(v, N, 8080);
  for (size_t i = 0; i < N; i++)
    if (isinf(v[i])) v[i] = 1.5; /* infinities are tested apart */
  nh_t *x = malloc(sizeof(*x));
  assert_non_null(x);
  for (int schema = -4; schema <= 8; schema++) {
    for (int is_float = 0; is_float <= 1; is_float++) {
      build_nh(x, v, N, schema, is_float);
      rc_sketch_t *raw = mk(schema, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
      rc_sketch_t *fromh = mk(schema, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
      add_all(raw, v, N);
      assert_int_equal(rc_sketch_add_histogram(fromh, &x->h, 1), 0);
      if (!rc_sketch_equal(raw, fromh))
        fail_msg("schema %d float %d: histogram != raw", schema, is_float);
      double a, b;
      assert_int_equal(rc_sketch_quantile_prom(raw, 0.99, &a), 0);
      assert_int_equal(rc_sketch_quantile_prom(fromh, 0.99, &b), 0);
      assert_dbl_eq(a, b);
      /* Subtracting it again empties the sketch. */
      assert_int_equal(rc_sketch_add_histogram(fromh, &x->h, -1), 0);
      assert_int_equal(rc_sketch_count(fromh), 0);
      rc_sketch_free(raw);
      rc_sketch_free(fromh);
    }
  }
  /* Schema reduction: a schema-8 histogram into a schema-6 sketch; a schema-2 one makes the
   * schema-6 sketch coarser. */
  build_nh(x, v, N, 8, 0);
  rc_sketch_t *raw6 = rc_sketch_new(NULL), *s6 = rc_sketch_new(NULL);
  add_all(raw6, v, N);
  assert_int_equal(rc_sketch_add_histogram(s6, &x->h, 1), 0);
  assert_int_equal(rc_sketch_schema(s6), 6);
  assert_true(rc_sketch_equal(raw6, s6));
  build_nh(x, v, N / 2, 2, 0);
  rc_sketch_t *raw2 = mk(2, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  add_all(raw2, v, N / 2);
  add_all(raw2, v + N / 2, N - N / 2);
  rc_sketch_t *mixed = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  add_all(mixed, v + N / 2, N - N / 2);
  assert_int_equal(rc_sketch_add_histogram(mixed, &x->h, 1), 0);
  assert_int_equal(rc_sketch_schema(mixed), 2);
  assert_true(rc_sketch_equal(mixed, raw2));
  rc_sketch_free(raw6);
  rc_sketch_free(s6);
  rc_sketch_free(raw2);
  rc_sketch_free(mixed);
  free(x);
}

/* A window from cumulative histograms: H(t) - H(t-w) is the sketch of what came in between. */
static void test_histogram_window(void **st) {
  (void)st;
  enum { N = 4000 };
  double v[N];
  rng_seed(60);
  for (size_t i = 0; i < N; i++) v[i] = exp(-3 + rng_normal());
  nh_t *h1 = malloc(sizeof(*h1)), *h2 = malloc(sizeof(*h2));
  assert_non_null(h1);
  assert_non_null(h2);
  build_nh(h1, v, 1500, 6, 0); /* cumulative at t-w */
  build_nh(h2, v, N, 6, 0);    /* cumulative at t */
  rc_sketch_t *w = rc_sketch_new(NULL), *want = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_add_histogram(w, &h2->h, 1), 0);
  assert_int_equal(rc_sketch_add_histogram(w, &h1->h, -1), 0);
  add_all(want, v + 1500, N - 1500);
  assert_true(rc_sketch_equal(w, want));
  /* The reverse order cannot go below zero: refused, unchanged. */
  rc_sketch_t *r = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_add_histogram(r, &h1->h, 1), 0);
  rc_sketch_t before;
  assert_int_equal(rc_sketch_copy(&before, r), 0);
  assert_int_equal(rc_sketch_add_histogram(r, &h2->h, -1), RC_EINVAL);
  assert_true(rc_sketch_equal(r, &before));
  rc_sketch_close(&before);
  rc_sketch_free(r);
  rc_sketch_free(w);
  rc_sketch_free(want);
  free(h1);
  free(h2);
}

static void test_histogram_errors(void **st) {
  (void)st;
  rc_span_t sp[] = {{0, 2}};
  int64_t deltas[] = {2, 1};
  double counts[] = {2, 1.5};
  rc_histogram_t ok = {.schema = 6, .zero_threshold = RC_SKETCH_DEFAULT_ZERO_THRESHOLD,
                       .count = 5, .sum = 3, .n_pos_spans = 1, .n_pos = 2, .pos_spans = sp,
                       .pos_deltas = deltas};
  rc_sketch_t *s = rc_sketch_new(NULL);
  rc_histogram_t h = ok;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 0), RC_EINVAL);
  h.is_stale = 1;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_EINVAL);
  h = ok;
  h.schema = -53;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_ENOTSUP);
  h.schema = 9;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_EINVAL);
  h = ok;
  h.zero_threshold = NAN;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_EINVAL);
  h = ok;
  h.n_pos = 3; /* spans and counts disagree */
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_EINVAL);
  h = ok;
  int64_t bad[] = {2, -3}; /* running count below zero */
  h.pos_deltas = bad;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_EINVAL);
  h = ok;
  h.is_float = 1;
  h.pos_counts = counts; /* 1.5 observations */
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_ENOTSUP);
  h = ok;
  rc_span_t far[] = {{(64 << 10) + 2, 1}}; /* beyond the +Inf bucket */
  h.pos_spans = far;
  h.n_pos = 1;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_EINVAL);
  h = ok;
  rc_span_t negoff[] = {{0, 1}, {-3, 1}};
  h.pos_spans = negoff;
  h.n_pos_spans = 2;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), RC_EINVAL);
  assert_int_equal(rc_sketch_count(s), 0); /* nothing got in */
  /* The +Inf overflow bucket, and NaN observations (count above the buckets). */
  h = ok;
  rc_span_t inf[] = {{(64 << 10) + 1, 1}};
  int64_t one[] = {4};
  h.pos_spans = inf;
  h.n_pos = 1;
  h.pos_deltas = one;
  h.count = 7;
  assert_int_equal(rc_sketch_add_histogram(s, &h, 1), 0);
  rc_sketch_stats_t stats;
  rc_sketch_stats(s, &stats);
  assert_int_equal(stats.pinf, 4);
  assert_int_equal(stats.count, 4);
  assert_int_equal(stats.nan_count, 3);
  double out;
  assert_int_equal(rc_sketch_quantile(s, 0.5, &out), 0);
  assert_true(isinf(out) && out > 0);
  rc_sketch_free(s);
}

/*------------------------------------------------------------------------------------------
 * Prometheus estimation
 *----------------------------------------------------------------------------------------*/

static void test_quantile_prom(void **st) {
  (void)st;
  double out;
  rc_sketch_t *s = mk(0, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_quantile_prom(s, 0.5, &out), 0);
  assert_true(isnan(out));
  assert_int_equal(rc_sketch_add(s, 3.0, 10), 0); /* bucket (2, 4] */
  assert_int_equal(rc_sketch_quantile_prom(s, 0.5, &out), 0);
  assert_dbl_near(out, 2 * sqrt(2), 1e-12); /* halfway in log space */
  assert_int_equal(rc_sketch_quantile(s, 0.5, &out), 0);
  assert_dbl_eq(out, 3.0); /* midpoint 8/3, clamped to min = max = 3 */
  assert_int_equal(rc_sketch_quantile_prom(s, -1, &out), 0);
  assert_true(isinf(out) && out < 0);
  assert_int_equal(rc_sketch_quantile_prom(s, 2, &out), 0);
  assert_true(isinf(out) && out > 0);
  assert_int_equal(rc_sketch_quantile_prom(s, NAN, &out), 0);
  assert_true(isnan(out));
  rc_sketch_free(s);
  /* Ascending (q < 0.5) and descending (q >= 0.5) walks. */
  s = mk(0, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add(s, 1.5, 4), 0); /* (1, 2] */
  assert_int_equal(rc_sketch_add(s, 3.0, 4), 0); /* (2, 4] */
  assert_int_equal(rc_sketch_quantile_prom(s, 0.25, &out), 0); /* rank 2 of 4 in (1,2] */
  assert_dbl_near(out, sqrt(2), 1e-12);
  assert_int_equal(rc_sketch_quantile_prom(s, 0.75, &out), 0); /* 2 from the top of (2,4] */
  assert_dbl_near(out, 2 * sqrt(2), 1e-12);
  /* q = 0.5 walks down: rank 4 from the top is the bottom of (2,4]. */
  assert_int_equal(rc_sketch_quantile_prom(s, 0.5, &out), 0);
  assert_dbl_near(out, 2.0, 1e-12);
  rc_sketch_free(s);
  /* The zero bucket is linear, from 0 when there are only positive buckets. */
  s = rc_sketch_new(NULL);
  assert_int_equal(rc_sketch_add(s, 0.0, 4), 0);
  assert_int_equal(rc_sketch_add(s, 3.0, 4), 0);
  assert_int_equal(rc_sketch_quantile_prom(s, 0.25, &out), 0);
  assert_dbl_eq(out, RC_SKETCH_DEFAULT_ZERO_THRESHOLD / 2);
  rc_sketch_free(s);
  /* Negative buckets mirror: [-4, -2), a quarter of the way up from -4 in log space. */
  s = mk(0, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add(s, -3.0, 4), 0);
  assert_int_equal(rc_sketch_quantile_prom(s, 0.25, &out), 0);
  assert_dbl_near(out, -pow(2, 1.75), 1e-12);
  assert_int_equal(rc_sketch_add(s, 0.0, 4), 0); /* zero bucket, only negatives: up to 0 */
  assert_int_equal(rc_sketch_quantile_prom(s, 0.75, &out), 0);
  assert_dbl_eq(out, -RC_SKETCH_DEFAULT_ZERO_THRESHOLD / 2);
  rc_sketch_free(s);
  /* Property on a real distribution: the estimate lies in the bucket of the rank-q*n
   * observation, so it is within one bucket width of it. */
  enum { N = 50000 };
  double *v = malloc(N * sizeof(*v));
  assert_non_null(v);
  gen(D_LOGNORMAL, v, N);
  s = mk(6, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  add_all(s, v, N);
  qsort(v, N, sizeof(*v), cmp_double);
  double g = rc_sketch_upper_bound(6, 1);
  for (size_t i = 0; i < RC_ARRAY_SIZE(qs); i++) {
    if (qs[i] == 0 || qs[i] == 1) continue;
    size_t k = (size_t)ceil(qs[i] * N) - 1; /* the observation where cum >= q*n */
    assert_int_equal(rc_sketch_quantile_prom(s, qs[i], &out), 0);
    if (!(out >= v[k] / g && out <= v[k] * g)) fail_msg("q=%g: %.17g vs %.17g", qs[i], out, v[k]);
  }
  free(v);
  rc_sketch_free(s);
}

/*------------------------------------------------------------------------------------------
 * Iteration
 *----------------------------------------------------------------------------------------*/

typedef struct seen {
  int n;
  int sign[8];
  int32_t idx[8];
  uint64_t count[8];
} seen_t;

static void collect(int sign, int32_t idx, uint64_t count, void *arg) {
  seen_t *s = arg;
  if (s->n < 8) {
    s->sign[s->n] = sign;
    s->idx[s->n] = idx;
    s->count[s->n] = count;
  }
  s->n++;
}

static void test_foreach(void **st) {
  (void)st;
  rc_sketch_t *s = mk(0, RC_SKETCH_DEFAULT_ZERO_THRESHOLD, RC_SKETCH_MAX_BINS);
  assert_int_equal(rc_sketch_add(s, 3.0, 2), 0);
  assert_int_equal(rc_sketch_add(s, -3.0, 3), 0);
  assert_int_equal(rc_sketch_add(s, -0.7, 1), 0);
  assert_int_equal(rc_sketch_add(s, 0.0, 4), 0);
  assert_int_equal(rc_sketch_add(s, INFINITY, 5), 0);
  assert_int_equal(rc_sketch_add(s, -INFINITY, 6), 0);
  seen_t seen = {0};
  rc_sketch_foreach(s, collect, &seen);
  assert_int_equal(seen.n, 6);
  int sign[] = {-1, -1, -1, 0, 1, 1};
  int32_t idx[] = {INT32_MAX, 2, 0, 0, 2, INT32_MAX};
  uint64_t cnt[] = {6, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(seen.sign[i], sign[i]);
    assert_int_equal(seen.idx[i], idx[i]);
    assert_int_equal(seen.count[i], cnt[i]);
  }
  rc_sketch_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accuracy),
      cmocka_unit_test(test_accuracy_small_n),
      cmocka_unit_test(test_quantile_args),
      cmocka_unit_test(test_schema_for_alpha),
      cmocka_unit_test(test_bounds_exact),
      cmocka_unit_test(test_boundaries),
      cmocka_unit_test(test_index_random),
      cmocka_unit_test(test_zero_threshold),
      cmocka_unit_test(test_special_values),
      cmocka_unit_test(test_counter_widths),
      cmocka_unit_test(test_init_args),
      cmocka_unit_test(test_merge_equals_union),
      cmocka_unit_test(test_merge_associative),
      cmocka_unit_test(test_subtract),
      cmocka_unit_test(test_sliding_window),
      cmocka_unit_test(test_merge_schemas),
      cmocka_unit_test(test_collapsing),
      cmocka_unit_test(test_footprint),
      cmocka_unit_test(test_histogram_spec_example),
      cmocka_unit_test(test_histogram_interop),
      cmocka_unit_test(test_histogram_window),
      cmocka_unit_test(test_histogram_errors),
      cmocka_unit_test(test_quantile_prom),
      cmocka_unit_test(test_foreach),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
