/* trend.h: a trigger's recent values for a sparkline — the values the evaluator computed over
 * the last window, downsampled into a fixed number of time buckets, so the memory per trigger
 * is fixed (RC_TREND_POINTS buckets, about 1 KiB) whatever the evaluation rate or window.
 *
 * Time is cut into steps of span / RC_TREND_POINTS milliseconds, aligned to the epoch; bucket
 * k holds the step [k * step, (k + 1) * step). The ring keeps the newest RC_TREND_POINTS steps;
 * a value landing in a step the ring does not hold yet overwrites the oldest one. Each bucket
 * keeps the *worst* value of its step — the largest for a trigger that fires on >= or >, the
 * smallest for <= or < — not the last or the mean: a value that crossed the threshold for a
 * moment must still show as a crossing once it has been folded into a wider bucket.
 * Evaluations without a value (no data, errors) add nothing: the sparkline shows a gap.
 *
 * It does not know about triggers, JSON or threads: engine.c owns one per trigger, writes it
 * on the evaluator thread and reads it on the loop thread, both under the engine's state
 * mutex. No allocation: the struct is embedded.
 */
#ifndef RC_TREND_H
#define RC_TREND_H

#include <stddef.h>
#include <stdint.h>

#define RC_TREND_POINTS 60
/* The span is the trigger's window, clamped: a step never shorter than 250 ms (the default
 * evaluation interval; shorter steps would mostly stay empty), a span never longer than a
 * day (a step of 24 min still says something at a glance). */
#define RC_TREND_MIN_SPAN_MS (RC_TREND_POINTS * 250)
#define RC_TREND_MAX_SPAN_MS (24 * 3600 * 1000)

typedef struct rc_trend {
  int64_t span_ms, step_ms;
  int up;                           /* 1: keep the largest value per step, 0: the smallest */
  int64_t slot[RC_TREND_POINTS];    /* the step index each bucket holds; INT64_MIN: empty */
  double v[RC_TREND_POINTS];
} rc_trend_t;

typedef struct rc_trend_point {
  int64_t t_ms; /* start of the step */
  double v;     /* the worst value seen in it */
} rc_trend_point_t;

/* Empties t for a window of span_ms (clamped as above; <= 0 takes the minimum). up: 1 for
 * >= and > triggers, 0 for <= and <. */
void rc_trend_init(rc_trend_t *t, int64_t span_ms, int up);
/* Folds the value v evaluated at now_ms into its step. NaN and infinities are ignored (JSON
 * has no number for them; the trigger's own value says "no data"). A time more than a span
 * older than the newest step held is ignored too (a clock stepping back). */
void rc_trend_add(rc_trend_t *t, int64_t now_ms, double v);
/* The buckets within the span ending at now_ms, oldest first, into out (room for
 * RC_TREND_POINTS). Returns how many. */
size_t rc_trend_points(const rc_trend_t *t, int64_t now_ms, rc_trend_point_t *out);

#endif
