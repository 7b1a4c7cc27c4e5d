/* replay.h: the real rule engine on a simulated clock — for `ripcord test` (rule unit tests)
 * and `ripcord backtest` (replaying history pulled by remote read).
 *
 * A replay owns the same parts `serve` wires together, minus the network: one store shard,
 * the engine (rc_engine_eval_once at the instants the caller chooses instead of the
 * evaluator thread's wall clock), the actions module deciding every firing (rollback,
 * no_previous, needs_approval, cooldown, ...) against a deploy registry in a private SQLite
 * file, and a courier with no receivers, so nothing is ever sent. Time is whatever the caller
 * says: samples carry their own timestamps, deploys are recorded "at" a time, and each
 * evaluation passes its instant down to the engine and from there to the actions, whose
 * rollback window and cooldown then run on the same clock.
 *
 * After each evaluation the replay reports, through the caller's callbacks, every trigger
 * whose state changed (inactive -> pending -> firing -> inactive; "resolved" is firing ->
 * inactive) and every rollback event the actions recorded, in order.
 *
 * Threads: one; nothing here is shared. Memory: the replay owns the rules it is given, its
 * store, engine, loop, database and the temporary directory that holds it (removed by
 * rc_replay_free).
 */
#ifndef RC_REPLAY_H
#define RC_REPLAY_H

#include <stdint.h>

#include "batch.h"
#include "engine.h"
#include "rc.h"
#include "rules.h"

typedef struct rc_replay rc_replay_t;

typedef struct rc_replay_cfg {
  rc_compat_t compat;          /* --query.compat */
  int64_t retention_ms;        /* how far back windows reach; 0: the store's default (1 h) */
  int64_t rollback_window_ms;  /* as serve's --rollback.window; 0: 24 h */
  int64_t cooldown_ms;         /* as serve's --rollback.cooldown; -1: none, 0: 10 min */
  uint32_t max_series;         /* 0: 1,000,000 */
  /* The config's approvals: entries (borrowed for the replay's life; NULL: defaults). The
   * gate decides which events wait for people; its expiry timer is not started: approvals
   * never happen in a replay. */
  const struct rc_approval_env_cfg *approval_envs;
  size_t n_approval_envs;
} rc_replay_cfg_t;

/* A trigger's state change seen after an evaluation. Strings borrowed until rc_replay_free. */
typedef struct rc_replay_transition {
  int64_t at_ms;
  uint32_t rule, trigger;      /* indexes in the rule set as loaded */
  const char *service, *environment, *trigger_name;
  rc_trigger_state_t from, to;
  int has_value;
  double value;
} rc_replay_transition_t;

/* A rollback event recorded by the actions. Strings borrowed for the callback only. */
typedef struct rc_replay_rollback {
  int64_t at_ms;
  const char *service, *environment, *trigger_name;
  const char *outcome;         /* rollback, dry_run, no_deploy, no_previous, needs_approval,
                                  rollback_of_rollback, cooldown */
  const char *from_version, *to_version; /* "" when none */
  const char *reason;          /* why this outcome, as the event records it ("" for none) */
  double value;
} rc_replay_rollback_t;

typedef void (*rc_replay_transition_cb)(void *ctx, const rc_replay_transition_t *t);
typedef void (*rc_replay_rollback_cb)(void *ctx, const rc_replay_rollback_t *r);

/* Takes *rules (emptied). Returns 0 or an error with a one-line message. */
int rc_replay_new(const rc_replay_cfg_t *cfg, rc_ruleset_t *rules, rc_replay_t **out,
                  rc_err_t *err);
void rc_replay_free(rc_replay_t *r);

void rc_replay_set_callbacks(rc_replay_t *r, rc_replay_transition_cb on_transition,
                             rc_replay_rollback_cb on_rollback, void *ctx);

/* Records a deploy as POST /api/v1/deploys would (the same JSON), at at_ms, and has the
 * engine's deploy-aware windows follow it. */
int rc_replay_deploy(rc_replay_t *r, const char *json, size_t len, int64_t at_ms,
                     rc_err_t *err);

/* Applies a batch (labels sorted by name, as the decoder gives them). Samples must come in
 * time order per series, as from a real sender. */
int rc_replay_apply(rc_replay_t *r, const rc_batch_t *b, rc_err_t *err);

/* Evaluates every trigger at now_ms, lets the actions decide on what fired, and reports
 * transitions and rollback events through the callbacks. */
int rc_replay_eval(rc_replay_t *r, int64_t now_ms, rc_err_t *err);

/* The current state of trigger t of rule i. */
int rc_replay_status(rc_replay_t *r, uint32_t rule, uint32_t trigger, rc_trigger_status_t *out);

/* The rule set as loaded (names only: service, environment, trigger names). */
uint32_t rc_replay_nrules(const rc_replay_t *r);
uint32_t rc_replay_ntriggers(const rc_replay_t *r, uint32_t rule);
const char *rc_replay_service(const rc_replay_t *r, uint32_t rule);
const char *rc_replay_environment(const rc_replay_t *r, uint32_t rule);
const char *rc_replay_trigger_name(const rc_replay_t *r, uint32_t rule, uint32_t trigger);

/* The distinct selectors of the rules' expressions (for backtest: which series to pull).
 * Borrowed until rc_replay_free. */
void rc_replay_selectors(const rc_replay_t *r, const rc_selector_t *const **out, uint32_t *n);

/* Samples the store kept (selected) and refused, since the start. */
void rc_replay_store_stats(const rc_replay_t *r, rc_store_stats_t *out);

const char *rc_trigger_state_name(rc_trigger_state_t s);

/* Loads rule files (globs; relative to the directory of base, NULL: the working directory)
 * with the rules: settings of config_file (NULL: none; also relative to base), as `serve`
 * does. *cfg stays loaded (rc_config_free): a replay borrows its approvals: entries.
 * Diagnostics (file:line:col) go to d. 0, or an error with a reason (RC_EPARSE when a file
 * has errors). */
struct rc_config;
int rc_replay_load_rules(const char *base, const char *config_file, const char *const *files,
                         uint32_t nfiles, struct rc_config *cfg, rc_ruleset_t *set, rc_diags_t *d,
                         rc_err_t *err);

#endif
