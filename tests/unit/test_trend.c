/* test_trend.c: the sparkline ring (trend.c): the span clamped and cut into RC_TREND_POINTS
 * steps, the worst value per step (largest for >=, smallest for <=), gaps where nothing was
 * evaluated, a window that slides (old steps drop out, the memory stays the same), NaN and
 * infinities ignored, a clock stepping back, and times before the epoch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "trend.h"

#define T0 1700000000000LL

static void test_span_and_steps(void **st) {
  (void)st;
  rc_trend_t t;
  rc_trend_init(&t, 60000, 1);
  assert_int_equal(t.step_ms, 1000);
  assert_int_equal(t.span_ms, 60000);
  rc_trend_init(&t, 0, 1); /* no window: the minimum */
  assert_int_equal(t.span_ms, RC_TREND_MIN_SPAN_MS);
  rc_trend_init(&t, 1000, 1);
  assert_int_equal(t.step_ms, RC_TREND_MIN_SPAN_MS / RC_TREND_POINTS);
  rc_trend_init(&t, INT64_MAX, 0);
  assert_int_equal(t.span_ms, RC_TREND_MAX_SPAN_MS);
  rc_trend_init(&t, 301000, 1); /* not a multiple of the points: the step rounds down */
  assert_int_equal(t.step_ms, 5016);
  assert_int_equal(t.span_ms, 5016 * RC_TREND_POINTS);
  rc_trend_point_t p[RC_TREND_POINTS];
  assert_int_equal(rc_trend_points(&t, T0, p), 0);
}

static void test_worst_per_step(void **st) {
  (void)st;
  rc_trend_t up, down;
  rc_trend_init(&up, 60000, 1);
  rc_trend_init(&down, 60000, 0);
  /* Four evaluations inside one step, a spike among them: the spike is what stays. */
  const double v[] = {1, 9, 2, 0.5};
  for (int i = 0; i < 4; i++) {
    rc_trend_add(&up, T0 + i * 250, v[i]);
    rc_trend_add(&down, T0 + i * 250, v[i]);
  }
  rc_trend_point_t p[RC_TREND_POINTS];
  assert_int_equal(rc_trend_points(&up, T0 + 999, p), 1);
  assert_int_equal(p[0].t_ms, T0);
  assert_true(p[0].v == 9);
  assert_int_equal(rc_trend_points(&down, T0 + 999, p), 1);
  assert_true(p[0].v == 0.5);
  /* Not a number, infinities: ignored. */
  rc_trend_add(&up, T0 + 10, NAN);
  rc_trend_add(&up, T0 + 10, INFINITY);
  rc_trend_add(&down, T0 + 10, -INFINITY);
  assert_int_equal(rc_trend_points(&up, T0 + 999, p), 1);
  assert_true(p[0].v == 9);
  assert_int_equal(rc_trend_points(&down, T0 + 999, p), 1);
  assert_true(p[0].v == 0.5);
}

static void test_slide_and_gaps(void **st) {
  (void)st;
  rc_trend_t t;
  rc_trend_init(&t, 60000, 1);
  /* Ten minutes of evaluations every 250 ms but for a silence from 100 s to 110 s. */
  for (int64_t ms = 0; ms < 600000; ms += 250) {
    if (ms >= 100000 && ms < 110000) continue;
    rc_trend_add(&t, T0 + ms, (double)(ms / 1000));
  }
  rc_trend_point_t p[RC_TREND_POINTS];
  int64_t now = T0 + 599999;
  size_t n = rc_trend_points(&t, now, p);
  assert_int_equal(n, RC_TREND_POINTS); /* the last minute only, one point per second */
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(p[i].t_ms, T0 + 540000 + (int64_t)i * 1000);
    assert_true(p[i].v == (double)(540 + (int64_t)i));
  }
  /* The gap, seen from 115 s: steps 100..109 are missing, the rest there and in order. */
  rc_trend_init(&t, 60000, 1);
  for (int64_t ms = 60000; ms < 115000; ms += 500)
    if (ms < 100000 || ms >= 110000) rc_trend_add(&t, T0 + ms, 1);
  n = rc_trend_points(&t, T0 + 114999, p);
  assert_int_equal(n, 60 - 10 - 5); /* 55..114 is 60 steps; 10 silent, 5 before 60 s */
  for (size_t i = 1; i < n; i++) assert_true(p[i].t_ms > p[i - 1].t_ms);
  for (size_t i = 0; i < n; i++) assert_true(p[i].t_ms < T0 + 100000 || p[i].t_ms >= T0 + 110000);
  /* Much later, nothing new: everything has aged out of the window. */
  assert_int_equal(rc_trend_points(&t, T0 + 3600000, p), 0);
}

static void test_clock_back_and_negative(void **st) {
  (void)st;
  rc_trend_t t;
  rc_trend_init(&t, 60000, 1);
  rc_trend_add(&t, T0 + 120000, 5);
  /* More than a span back: that bucket holds a newer step, which wins. */
  rc_trend_add(&t, T0 + 60000, 50);
  rc_trend_point_t p[RC_TREND_POINTS];
  assert_int_equal(rc_trend_points(&t, T0 + 120000, p), 1);
  assert_true(p[0].v == 5);
  /* Less than a span back: a step of its own. */
  rc_trend_add(&t, T0 + 119000, 7);
  assert_int_equal(rc_trend_points(&t, T0 + 120000, p), 2);
  assert_true(p[0].v == 7 && p[1].v == 5);
  /* Simulated clocks before the epoch: floor division keeps steps aligned. */
  rc_trend_init(&t, 60000, 0);
  rc_trend_add(&t, -1, 3);
  rc_trend_add(&t, -1000, 2);
  rc_trend_add(&t, 0, 4);
  assert_int_equal(rc_trend_points(&t, 500, p), 2);
  assert_int_equal(p[0].t_ms, -1000);
  assert_true(p[0].v == 2);
  assert_int_equal(p[1].t_ms, 0);
  assert_true(p[1].v == 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_span_and_steps),
      cmocka_unit_test(test_worst_per_step),
      cmocka_unit_test(test_slide_and_gaps),
      cmocka_unit_test(test_clock_back_and_negative),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
