/* engine.h: the rule engine — turns a loaded rule set into selectors the store keeps, and
 * evaluates every trigger on its own thread when a batch that touches its series lands, and
 * on a timer (windows slide past data; no-data must be noticed), driving each trigger through
 * inactive -> pending (`for`) -> firing -> resolved.
 *
 * Event-driven evaluation: the ingest workers call rc_engine_applied() after each part they
 * apply (workers.h applied_cb). It marks the selector ids of the changed series dirty (an
 * atomic bitmap), remembers the earliest request time not yet evaluated, and wakes the
 * evaluator; the evaluator then evaluates only the triggers that use a dirty selector. The
 * timer (default 250 ms) evaluates all of them.
 *
 * A trigger's value: the expression's scalar, or over a vector the worst element (the largest
 * for >= and >, the smallest for <= and <); an empty vector is "no data", handled by the
 * trigger's no_data policy. min_requests (built-ins with a request count) and min_samples
 * (samples of the expression's selectors within its longest range) must be met for the
 * condition to count. warn_threshold gives a "warning" (notified, never acted on);
 * resolve_threshold keeps a firing trigger firing until the value crosses back past it
 * (hysteresis); keep_firing_for holds it firing that long after the condition last held.
 * dry_run triggers go through every state and are shown and logged, never acted on.
 *
 * Firing hands an rc_fire_event_t to the action callback (issue 5; until then the engine logs
 * and counts it). The detection latency of an event — from the arrival of the earliest request
 * whose samples were not yet evaluated to the transition — is recorded in a histogram exposed
 * in /metrics and kept per trigger in /api/v1/rules.
 *
 * Each trigger also keeps the values of its last window for a sparkline, downsampled into a
 * fixed number of steps (trend.h; about 1 KiB per trigger): GET /api/v1/rules?history=1.
 *
 * Threads: the evaluator thread owns evaluation and state; rc_engine_applied() runs on worker
 * threads (lock-free); rc_engine_render_* run on the loop thread and take the state mutex,
 * which the evaluator holds only while publishing a round's results.
 * Memory: the engine owns the rule set it is given, the selector index it builds and the
 * per-trigger state.
 */
#ifndef RC_ENGINE_H
#define RC_ENGINE_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "eval.h"
#include "query.h"
#include "rules.h"
#include "selindex.h"
#include "store.h"

typedef enum { RC_TS_INACTIVE = 0, RC_TS_PENDING, RC_TS_FIRING } rc_trigger_state_t;

typedef struct rc_fire_event {
  const rc_rule_t *rule;
  const rc_trigger_t *trigger;
  double value;
  int64_t at_ms;            /* wall clock of the transition */
  uint64_t latency_ns;      /* detection latency (0 when fired by the timer alone) */
  int dry_run;
  int resolved;             /* 1: the firing ended */
} rc_fire_event_t;

typedef void (*rc_engine_fire_cb)(void *ctx, const rc_fire_event_t *ev);

typedef struct rc_engine_cfg {
  rc_compat_t compat;
  int64_t interval_ms;      /* timer; default 250 */
  int64_t lookback_ms;      /* instant selectors; default 5m */
  rc_engine_fire_cb on_fire; /* may be NULL: log and count only */
  void *fire_ctx;
  /* The store's batch gate (rc_workers_read_begin/end), around every read so that no
   * evaluation sees half a batch; NULL: none (a single-threaded store, tests). */
  void (*read_begin)(void *ctx), (*read_end)(void *ctx);
  void *gate_ctx;
} rc_engine_cfg_t;

typedef struct rc_engine rc_engine_t;

/* Takes ownership of *rules (the struct is emptied). extra: selectors the store must keep
 * besides the rules' (the config's select: list), borrowed; they get ids after the rules'.
 * Builds the selector index. Returns 0, RC_ENOMEM or RC_ELIMIT (too many selectors). */
int rc_engine_new(const rc_engine_cfg_t *cfg, rc_ruleset_t *rules, rc_selector_t *const *extra,
                  uint32_t nextra, rc_engine_t **out, rc_err_t *err);
void rc_engine_free(rc_engine_t *e);

/* The selector index for the store (owned by the engine; valid until rc_engine_free). */
const rc_selindex_t *rc_engine_index(const rc_engine_t *e);

/* Sets the batch gate after creation (the workers are created after the engine). */
void rc_engine_set_gate(rc_engine_t *e, void (*read_begin)(void *), void (*read_end)(void *),
                        void *ctx);

/* Starts the evaluator thread reading these store shards. */
int rc_engine_start(rc_engine_t *e, rc_store_t *const *shards, uint32_t nshards, rc_err_t *err);
/* Stops and joins the evaluator. */
void rc_engine_stop(rc_engine_t *e);

/* Switches the store's selection to a new index and returns once nothing uses the old one
 * (rc_workers_swap_index). 0 or an error code. */
typedef int (*rc_engine_swap_fn)(void *ctx, const rc_selindex_t *idx);

/* Rule reload (the loop thread): takes *rules (emptied) — already loaded and checked
 * completely by the caller — builds the new selector index, carries the state of every
 * unchanged trigger over (same target, name, expression and settings), stops the evaluator,
 * swaps, has the store switch index through swap, frees the old rules and restarts the
 * evaluator, which then evaluates every trigger. Returns 0, or an error with the old rules
 * still in force. */
int rc_engine_reload(rc_engine_t *e, rc_ruleset_t *rules, rc_selector_t *const *extra,
                     uint32_t nextra, rc_engine_swap_fn swap, void *swap_ctx, rc_err_t *err);
/* Deploy-aware evaluation: fn gives the start (ms) of the current deploy of a target, or
 * non-zero when none is recorded; every trigger of that target then evaluates only samples
 * after it (eval.h clip_from_ms), so a new version is never rolled back for the old one's
 * errors. The loop thread calls it at start, after a reload and after each recorded deploy. */
typedef int (*rc_engine_deploy_fn)(void *ctx, const char *service, const char *environment,
                                   int64_t *start_ms);
void rc_engine_refresh_deploys(rc_engine_t *e, rc_engine_deploy_fn fn, void *ctx);

/* Counts a reload that failed before reaching the engine (a rule file with errors). */
void rc_engine_reload_failed(rc_engine_t *e);

/* workers.h applied_cb: ctx is the engine. Worker threads. */
void rc_engine_applied(void *ctx, uint32_t shard, rc_store_t *store, uint64_t received_ns);

/* Runs one evaluation round now on the calling thread (tests; the thread must not be running
 * and rc_engine_start must not have been called: pass the shards here instead). */
int rc_engine_eval_once(rc_engine_t *e, rc_store_t *const *shards, uint32_t nshards,
                        int64_t now_ms);

/* GET /api/v1/rules: JSON. history: 1 adds each trigger's "history" (trend.h): the worst
 * value per step over its window, {"span_ms", "step_ms", "end_ms", "points": [[t_ms, v]...]},
 * oldest first, ending at its last evaluation. /metrics: rule metrics. Loop thread. */
int rc_engine_render_json(rc_engine_t *e, int history, rc_buf_t *out);
void rc_engine_render_metrics(rc_engine_t *e, rc_buf_t *out);

/* GET /api/v1/query: evaluates an ad-hoc expression at t_ms on the calling thread (the loop
 * thread: it gets its own reader slots) and writes Prometheus' JSON answer to out. Selectors
 * the rules do not use see the series the store holds anyway (the rules' and select:'s).
 * Returns the HTTP status: 200, 400 (parse error), 422 (evaluation error), 503 (not started)
 * or 500. */
int rc_engine_query(rc_engine_t *e, const char *expr, size_t len, int64_t t_ms, rc_buf_t *out);

/* State of trigger k of rule r (tests). */
typedef struct rc_trigger_status {
  rc_trigger_state_t state;
  int warning, no_data, has_value;
  double value;
  int64_t pending_since_ms, firing_since_ms, last_eval_ms;
  uint64_t evaluations, failures, fired, last_latency_ns;
  uint64_t last_eval_ns;      /* how long the last evaluation took */
  char error[200];
} rc_trigger_status_t;
int rc_engine_status(rc_engine_t *e, uint32_t rule, uint32_t trigger, rc_trigger_status_t *out);

#endif
