/* test_histq.c: histogram_quantile / histogram_fraction (src/histq.c) against known values.
 *
 * The expected numbers are facts from Prometheus' own PromQL test data
 * (promql/promqltest/testdata/native_histograms.test and histograms.test): the histogram
 * named in each comment, evaluated there, gave that number. Prometheus compares those with a
 * 1e-6 relative tolerance; we hold ourselves to 1e-12. 2.42 values (linear interpolation) are
 * worked out by hand in the comments. Random native histograms are also checked against the
 * independent model in hist_ref.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist_ref.h"
#include "histq.h"
#include "histwin.h"

#define P3 RC_COMPAT_PROM3
#define P2 RC_COMPAT_PROM2

static void near(double got, double want) {
  if (isnan(want)) {
    if (!isnan(got)) fail_msg("want NaN, got %.17g", got);
    return;
  }
  if (isinf(want) || want == 0) {
    if (got != want) fail_msg("want %.17g, got %.17g", want, got);
    return;
  }
  if (!(fabs(got - want) <= 1e-12 * fabs(want)))
    fail_msg("want %.17g, got %.17g (rel %.3g)", want, got, fabs(got - want) / fabs(want));
}

/* A float histogram from one span per sign. */
static void mk(rc_fhist_t *h, int schema, double count, double sum, double zc, double zt,
               int32_t poff, const double *pos, uint32_t np, int32_t noff, const double *neg,
               uint32_t nn) {
  rc_span_t ps = {poff, np}, ns = {noff, nn};
  rc_histogram_t r = {.count = count, .sum = sum, .zero_count = zc, .zero_threshold = zt,
                      .schema = schema, .is_float = 1, .n_pos_spans = np ? 1 : 0,
                      .n_neg_spans = nn ? 1 : 0, .n_pos = np, .n_neg = nn, .pos_spans = &ps,
                      .neg_spans = &ns, .pos_counts = pos, .neg_counts = neg};
  rc_fhist_init(h);
  assert_int_equal(rc_fhist_from_histogram(h, &r), 0);
}

/* native_histograms.test: histogram_quantile_1 / _2. */
static void test_native_known(void **state) {
  (void)state;
  rc_fhist_t h;
  const double b[] = {2, 3, 0, 1, 4};
  mk(&h, 0, 12, 100, 2, 0.001, 0, b, 5, 0, NULL, 0);
  near(rc_histq_native(1.001, &h, P3), INFINITY);
  near(rc_histq_native(1, &h, P3), 16);
  near(rc_histq_native(0.99, &h, P3), 15.67072476139083);
  near(rc_histq_native(0.9, &h, P3), 12.99603834169977);
  near(rc_histq_native(0.6, &h, P3), 4.594793419988138);
  near(rc_histq_native(0.5, &h, P3), 1.5874010519681994);
  near(rc_histq_native(0.1, &h, P3), 0.0006);
  near(rc_histq_native(0, &h, P3), 0);
  near(rc_histq_native(-1, &h, P3), -INFINITY);
  near(rc_histq_native(NAN, &h, P3), NAN);
  /* 2.42, linear: rank 6 reaches 7 in (1,2] holding 3 -> 1 + 2/3. */
  near(rc_histq_native(0.5, &h, P2), 1 + 2.0 / 3);
  /* rank 11.88 in (8,16] holding 4 after 8: 8 + 8 * 3.88/4. */
  near(rc_histq_native(0.99, &h, P2), 8 + 8 * 3.88 / 4);
  rc_fhist_free(&h);

  mk(&h, 0, 12, 100, 2, 0.001, 0, NULL, 0, 0, b, 5);
  near(rc_histq_native(1, &h, P3), 0);
  near(rc_histq_native(0.99, &h, P3), -0.00006);
  near(rc_histq_native(0.9, &h, P3), -0.0006);
  near(rc_histq_native(0.5, &h, P3), -1.5874010519681996);
  near(rc_histq_native(0.1, &h, P3), -12.996038341699768);
  rc_fhist_free(&h);

  /* single_histogram {schema:0 sum:5 count:4 buckets:[1 2 1]} */
  const double s[] = {1, 2, 1};
  mk(&h, 0, 4, 5, 0, 0, 0, s, 3, 0, NULL, 0);
  near(rc_histq_native(0.5, &h, P3), 1.414213562373095);
  near(rc_histq_fraction(1, 2, &h, P3), 0.5);
  near(rc_histq_fraction(0, 8, &h, P3), 1);
  near(rc_histq_count(&h), 4);
  near(rc_histq_sum(&h), 5);
  rc_fhist_free(&h);

  /* negative_histogram: the same upside down. */
  mk(&h, 0, 4, -5, 0, 0, 0, NULL, 0, 0, s, 3);
  near(rc_histq_native(0.5, &h, P3), -1.414213562373095);
  near(rc_histq_fraction(-2, -1, &h, P3), 0.5);
  rc_fhist_free(&h);

  /* balanced_histogram: buckets:[1 2 1] + n_buckets:[1 2 1], count 8, sum 0. */
  mk(&h, 0, 8, 0, 0, 0, 0, s, 3, 0, s, 3);
  near(rc_histq_native(0.5, &h, P3), 0.5);
  near(rc_histq_fraction(0, 4, &h, P3), 0.5);
  rc_fhist_free(&h);

  /* single_zero_histogram {z_bucket:1 z_bucket_w:0.5 count:1}. */
  mk(&h, 0, 1, 0.25, 1, 0.5, 0, NULL, 0, 0, NULL, 0);
  near(rc_histq_native(0.5, &h, P3), 0);
  near(rc_histq_fraction(-0.5, 0.5, &h, P3), 1);
  rc_fhist_free(&h);

  /* empty histogram: NaN everywhere. */
  mk(&h, 0, 0, 0, 0, 0, 0, NULL, 0, 0, NULL, 0);
  near(rc_histq_native(0.5, &h, P3), NAN);
  near(rc_histq_fraction(0, 8, &h, P3), NAN);
  rc_fhist_free(&h);

  /* NaN observations (count 5 > buckets 4, sum NaN): 3.x NaN, 2.42 the last upper bound. */
  mk(&h, 0, 5, NAN, 0, 0, 0, s, 3, 0, NULL, 0);
  near(rc_histq_native(0.99, &h, P3), NAN);
  near(rc_histq_native(0.99, &h, P2), 4);
  rc_fhist_free(&h);
}

/* histograms.test: testhistogram3 as NHCB, custom_values [0 0.1 0.2 1] at 50m. */
static void test_custom_known(void **state) {
  (void)state;
  const double cv[] = {0, 0.1, 0.2, 1};
  const double pb[] = {0, 50, 20, 40, 0};
  rc_span_t sp = {0, 5};
  rc_histogram_t r = {.count = 110, .sum = 330, .schema = -53, .is_float = 1, .n_pos_spans = 1,
                      .n_pos = 5, .pos_spans = &sp, .pos_counts = pb, .n_custom = 4,
                      .custom_values = cv};
  rc_fhist_t h;
  rc_fhist_init(&h);
  assert_int_equal(rc_fhist_from_histogram(&h, &r), 0);
  near(rc_histq_native(0, &h, P3), 0);
  near(rc_histq_native(0.25, &h, P3), 0.055);
  near(rc_histq_native(0.5, &h, P3), 0.125);
  near(rc_histq_native(0.75, &h, P3), 0.45);
  near(rc_histq_native(1, &h, P3), 1);
  near(rc_histq_fraction(0, 0.2, &h, P3), 0.6363636363636364);
  near(rc_histq_native(0.5, &h, P2), NAN); /* 2.42 has no custom buckets */
  rc_fhist_free(&h);
  /* negative start: custom_values [-0.25 -0.2 -0.1 0.3], counts [0 10 10 0 0] */
  const double cv2[] = {-0.25, -0.2, -0.1, 0.3};
  const double pb2[] = {0, 10, 10, 0, 0};
  r.custom_values = cv2;
  r.pos_counts = pb2;
  r.count = 20;
  r.sum = 8;
  rc_fhist_init(&h);
  assert_int_equal(rc_fhist_from_histogram(&h, &r), 0);
  near(rc_histq_native(0, &h, P3), -0.25);
  near(rc_histq_native(0.25, &h, P3), -0.225);
  near(rc_histq_native(0.5, &h, P3), -0.2);
  near(rc_histq_native(0.75, &h, P3), -0.15);
  near(rc_histq_native(1, &h, P3), -0.1);
  rc_fhist_free(&h);
}

static double classic(double q, const double (*b)[2], size_t n, rc_compat_t c, unsigned *fl) {
  rc_histq_bucket_t buf[16];
  for (size_t i = 0; i < n; i++) buf[i] = (rc_histq_bucket_t){b[i][0], b[i][1]};
  return rc_histq_classic(q, buf, n, c, fl);
}

/* histograms.test: testhistogram, testhistogram2, testhistogram3 at the times given there. */
static void test_classic_known(void **state) {
  (void)state;
  /* le given out of order on purpose: the function sorts. */
  const double pos[][2] = {{1, 110}, {0.1, 50}, {INFINITY, 120}, {0.2, 70}};
  const double neg[][2] = {{-0.2, 10}, {-0.1, 20}, {0.3, 20}, {INFINITY, 30}};
  for (int c = 0; c < 2; c++) {
    rc_compat_t cc = c ? P2 : P3;
    near(classic(0, pos, 4, cc, NULL), 0);
    near(classic(0, neg, 4, cc, NULL), -0.2);
    near(classic(1, pos, 4, cc, NULL), 1);
    near(classic(1, neg, 4, cc, NULL), 0.3);
    near(classic(0.2, pos, 4, cc, NULL), 0.048);
    near(classic(0.2, neg, 4, cc, NULL), -0.2);
    near(classic(0.5, pos, 4, cc, NULL), 0.15);
    near(classic(0.5, neg, 4, cc, NULL), -0.15);
    near(classic(0.8, pos, 4, cc, NULL), 0.72);
    near(classic(0.8, neg, 4, cc, NULL), 0.3);
    near(classic(-0.1, pos, 4, cc, NULL), -INFINITY);
    near(classic(1.01, pos, 4, cc, NULL), INFINITY);
    near(classic(NAN, pos, 4, cc, NULL), NAN);
  }
  const double t2[][2] = {{0, 1}, {2, 3}, {4, 6}, {6, 9}, {INFINITY, 9}};
  const double t2b[][2] = {{0, 0}, {2, 1}, {4, 2}, {6, 3}, {INFINITY, 3}};
  near(classic(1.0 / 6, t2b, 5, P3, NULL), 1);
  near(classic(0.5, t2b, 5, P3, NULL), 3);
  near(classic(5.0 / 6, t2b, 5, P3, NULL), 5);
  (void)t2;
  const double t3[][2] = {{0, 0}, {0.1, 50}, {0.2, 70}, {1, 110}, {INFINITY, 110}};
  near(classic(0.25, t3, 5, P3, NULL), 0.055);
  near(classic(0.75, t3, 5, P3, NULL), 0.45);
  /* The rules: no +Inf bucket, a single bucket, no observations -> NaN. */
  const double noinf[][2] = {{1, 1}, {2, 2}};
  near(classic(0.5, noinf, 2, P3, NULL), NAN);
  const double one[][2] = {{INFINITY, 5}};
  near(classic(0.5, one, 1, P3, NULL), NAN);
  const double zero[][2] = {{1, 0}, {INFINITY, 0}};
  near(classic(0.5, zero, 2, P3, NULL), NAN);
  near(rc_histq_classic(0.5, NULL, 0, P3, NULL), NAN);
  /* Coalescing: le="0.2" twice (as "0.2" and "2e-1") adds up. mixed_bucket: 1,1,1,1,4. */
  const double mixed[][2] = {{0.1, 1}, {0.2, 1}, {0.2, 1}, {0.2, 1}, {INFINITY, 4}};
  near(classic(0.5, mixed, 5, P3, NULL), 0.15); /* cum 1, 3, 4: rank 2 -> 0.1 + 0.1/2 */
  /* Into the +Inf bucket: the largest finite bound. */
  const double top[][2] = {{1, 1}, {INFINITY, 10}};
  near(classic(0.9, top, 2, P3, NULL), 1);
}

/* Where 2.42 and 3.x differ for classic buckets: the 1e-12 tolerance. */
static void test_classic_monotonic(void **state) {
  (void)state;
  rc_histq_bucket_t b[4];
  unsigned fl;
  double e = 1e-11;
  rc_histq_bucket_t in[4] = {{1, 100}, {2, 100 + e}, {3, 100}, {INFINITY, 200}};
  memcpy(b, in, sizeof(b));
  rc_histq_classic(0.5, b, 4, P3, &fl);
  assert_true(b[1].count == 100 && b[2].count == 100);
  assert_int_equal(fl, RC_HISTQ_FIXED_PRECISION);
  memcpy(b, in, sizeof(b));
  rc_histq_classic(0.5, b, 4, P2, &fl);
  assert_true(b[1].count == 100 + e && b[2].count == 100 + e);
  assert_int_equal(fl, RC_HISTQ_FORCED_MONOTONIC);
  /* A real decrease is raised in both. */
  rc_histq_bucket_t d[3] = {{1, 10}, {2, 5}, {INFINITY, 20}};
  double v = rc_histq_classic(0.25, d, 3, P3, &fl);
  assert_true(d[1].count == 10);
  assert_int_equal(fl, RC_HISTQ_FORCED_MONOTONIC);
  near(v, 0.5); /* rank 5 in (0,1] of 10 */
}

/* Random native histograms: histq against hist_ref, both versions. */
static uint64_t g_rng = 7;
static uint64_t rnd(void) {
  uint64_t z = (g_rng += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static void test_native_vs_ref(void **state) {
  (void)state;
  const double qs[] = {0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1};
  for (int iter = 0; iter < 2000; iter++) {
    double pc[24], nc[24];
    uint32_t np = (uint32_t)(rnd() % 24), nn = (uint32_t)(rnd() % 6 == 0 ? rnd() % 24 : 0);
    double count = 0;
    for (uint32_t i = 0; i < np; i++) count += pc[i] = (double)(rnd() % 4) * (rnd() % 2 ? 1 : 0.25);
    for (uint32_t i = 0; i < nn; i++) count += nc[i] = (double)(rnd() % 4);
    double zc = rnd() % 3 ? 0 : (double)(rnd() % 5);
    count += zc;
    int schema = (int)(rnd() % 13) - 4;
    double zt = rnd() % 2 ? 0 : ldexp(1, -(int)(rnd() % 12));
    rc_span_t ps = {(int32_t)(rnd() % 40) - 20, np}, ns = {(int32_t)(rnd() % 40) - 20, nn};
    rc_histogram_t r = {.count = count, .sum = rnd() % 9 ? 3.5 : NAN, .zero_count = zc,
                        .zero_threshold = zt, .schema = schema, .is_float = 1,
                        .n_pos_spans = 1, .n_neg_spans = 1, .n_pos = np, .n_neg = nn,
                        .pos_spans = &ps, .neg_spans = &ns, .pos_counts = pc, .neg_counts = nc};
    rc_fhist_t h;
    rc_fhist_init(&h);
    assert_int_equal(rc_fhist_from_histogram(&h, &r), 0);
    ref_hist_t ref;
    ref_from_raw(&ref, &r);
    /* Prometheus evaluates compacted histograms; drop explicit empties in the model. */
    for (int k = 0; k < 2; k++) {
      size_t m = 0;
      for (size_t i = 0; i < ref.n[k]; i++)
        if (ref.b[k][i].count != 0) ref.b[k][m++] = ref.b[k][i];
      ref.n[k] = m;
    }
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
      for (int c = 0; c < 2; c++)
        near(rc_histq_native(qs[i], &h, c ? P2 : P3), ref_quantile(qs[i], &ref, c));
    ref_hist_free(&ref);
    rc_fhist_free(&h);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_native_known),      cmocka_unit_test(test_custom_known),
      cmocka_unit_test(test_classic_known),     cmocka_unit_test(test_classic_monotonic),
      cmocka_unit_test(test_native_vs_ref),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
