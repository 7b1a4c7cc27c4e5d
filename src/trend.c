/* trend.c: a fixed ring of time buckets holding a trigger's worst value per step; see trend.h. */
#include "trend.h"

#include <math.h>

/* Floor division, so that a step index is right for times before the epoch too (simulated
 * clocks in tests start anywhere). */
static int64_t step_of(int64_t t, int64_t step) {
  int64_t q = t / step;
  return (t % step != 0 && t < 0) ? q - 1 : q;
}

static size_t pos_of(int64_t k) {
  int64_t m = k % RC_TREND_POINTS;
  return (size_t)(m < 0 ? m + RC_TREND_POINTS : m);
}

void rc_trend_init(rc_trend_t *t, int64_t span_ms, int up) {
  if (span_ms < RC_TREND_MIN_SPAN_MS) span_ms = RC_TREND_MIN_SPAN_MS;
  if (span_ms > RC_TREND_MAX_SPAN_MS) span_ms = RC_TREND_MAX_SPAN_MS;
  t->step_ms = span_ms / RC_TREND_POINTS;
  t->span_ms = t->step_ms * RC_TREND_POINTS;
  t->up = up != 0;
  for (size_t i = 0; i < RC_TREND_POINTS; i++) {
    t->slot[i] = INT64_MIN;
    t->v[i] = 0;
  }
}

void rc_trend_add(rc_trend_t *t, int64_t now_ms, double v) {
  if (!isfinite(v) || t->step_ms <= 0) return;
  int64_t k = step_of(now_ms, t->step_ms);
  size_t p = pos_of(k);
  if (t->slot[p] == k) {
    if (t->up ? v > t->v[p] : v < t->v[p]) t->v[p] = v;
  } else if (t->slot[p] < k) { /* empty, or a step a whole span older: reuse the bucket */
    t->slot[p] = k;
    t->v[p] = v;
  } /* else the bucket holds a newer step: the time went back more than a span */
}

size_t rc_trend_points(const rc_trend_t *t, int64_t now_ms, rc_trend_point_t *out) {
  if (t->step_ms <= 0) return 0;
  int64_t cur = step_of(now_ms, t->step_ms);
  size_t n = 0;
  for (int64_t k = cur - (RC_TREND_POINTS - 1); k <= cur; k++) {
    size_t p = pos_of(k);
    if (t->slot[p] != k) continue;
    out[n].t_ms = k * t->step_ms;
    out[n].v = t->v[p];
    n++;
  }
  return n;
}
