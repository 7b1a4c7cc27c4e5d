/* rules.h: rollback rule files — YAML as SREs write them (the seed's form), loaded into rule
 * sets the engine evaluates, with errors and warnings at file:line:column.
 *
 * A file holds one `rollback:` mapping or a list under `rollbacks:`. A rule guards one deploy
 * target (`service`, `environment`) with triggers; each trigger is a built-in metric
 * (`error_rate`, `latency_p99`, `health_check_failures`: PromQL templates, overridable in the
 * server config) or an `expr:` (the PromQL subset of promql.h), a threshold in base units
 * (`5%` -> 0.05, `2000ms` -> 2, `3`), a window (`5m`), and optional `name`, `op`, `for`,
 * `min_samples`, `min_requests`, `no_data`, `warn_threshold`, `resolve_threshold`,
 * `keep_firing_for`, `dry_run`. An action says what to do when a trigger fires
 * (`type: previous_version`) and whom to notify.
 *
 * Every value is checked at load: a bad file produces diagnostics, never a half-loaded rule
 * set. YAML gotchas get their own message (an unquoted `#` that turned a value into a comment,
 * tabs, duplicate keys, unknown keys with a "did you mean").
 *
 * Ownership: a rule set owns everything in it (strings, parsed expressions). Immutable once
 * loaded; any thread may read it.
 */
#ifndef RC_RULES_H
#define RC_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "approval_cfg.h"
#include "promql.h"
#include "rc.h"

typedef enum { RC_NODATA_IGNORE = 0, RC_NODATA_FIRE, RC_NODATA_ALERT } rc_nodata_t;

/* The trigger condition: value OP threshold. */
typedef enum { RC_CMP_GE = 0, RC_CMP_GT, RC_CMP_LE, RC_CMP_LT } rc_cmp_t;

typedef struct rc_trigger {
  char *name;            /* the given name, else the metric name, else "expr" + index */
  char *metric;          /* the built-in used, or NULL for expr: */
  rc_pq_expr_t *expr;    /* what is evaluated (a built-in's template expanded and parsed) */
  rc_pq_expr_t *requests_expr; /* min_requests: the request count over the window (built-ins
                                  that have one), NULL otherwise */
  rc_cmp_t op;
  double threshold;      /* base units */
  double warn_threshold, resolve_threshold; /* NaN when not given */
  int64_t window_ms;     /* the trigger's window (0 for expr: the expression has its own) */
  int64_t for_ms;        /* how long the condition must hold before firing (0: at once) */
  int64_t keep_firing_for_ms;
  uint64_t min_samples;  /* 0: no minimum */
  double min_requests;   /* 0: no minimum */
  rc_nodata_t no_data;
  int dry_run;
  int line, col;         /* where the trigger starts in its file */
} rc_trigger_t;

typedef struct rc_notify {
  char *kind;            /* "slack", "pagerduty", ... */
  char *target;          /* "#deployments", "on-call", ... */
} rc_notify_t;


typedef struct rc_rule {
  char *file;            /* path it was loaded from */
  int line, col;
  char *service, *environment;
  char **match;          /* `match:` as PromQL matchers text (`k="v"` / `k=~"re"`), or NULL */
  uint32_t nmatch;
  rc_trigger_t *triggers;
  uint32_t ntriggers;
  char *action;          /* "previous_version", "notify" or "dry_run" */
  int64_t warmup_ms;     /* deploy-aware windows start this long after the deploy (0) */
  rc_notify_t *notify;
  uint32_t nnotify;
  rc_approval_cfg_t approval; /* action.approval:, unset fields inherit */
} rc_rule_t;

typedef struct rc_ruleset {
  rc_rule_t *rules;
  uint32_t n;
} rc_ruleset_t;

/* Server-side settings the rule files rely on. */
typedef struct rc_rules_cfg {
  const char *service_label;     /* label carrying the service; default "service" */
  const char *environment_label; /* label carrying the environment; default "env" */
  /* Built-in templates (NULL: the defaults in rules.c). Placeholders: {{selector}} (the
   * matchers derived from service/environment or match:, without braces) and {{window}}. */
  const char *error_rate_expr, *error_rate_requests_expr;
  const char *latency_p99_expr;
  const char *health_check_failures_expr;
  /* Added with rules.c: the scrape (sample) interval the window warnings assume; 0: 15s. */
  int64_t scrape_interval_ms;
} rc_rules_cfg_t;

typedef enum { RC_DIAG_ERROR, RC_DIAG_WARNING } rc_diag_level_t;

typedef struct rc_diag {
  rc_diag_level_t level;
  char *file;
  int line, col;
  char *msg;
} rc_diag_t;

typedef struct rc_diags {
  rc_diag_t *v;
  uint32_t n, cap;
  uint32_t errors, warnings;
} rc_diags_t;

/* Loads one file's rules and appends them to *set (only if the file has no error: a file with
 * errors adds nothing). Diagnostics are appended to *d. Returns 0, RC_EPARSE (errors reported
 * in d), RC_EIO (file unreadable, reported in d) or RC_ENOMEM. */
int rc_rules_load_file(const char *path, const rc_rules_cfg_t *cfg, rc_ruleset_t *set,
                       rc_diags_t *d);
/* The same from a buffer (tests, fuzzing); name is used in diagnostics. */
int rc_rules_load_buffer(const char *name, const char *text, size_t len,
                         const rc_rules_cfg_t *cfg, rc_ruleset_t *set, rc_diags_t *d);
void rc_ruleset_free(rc_ruleset_t *set);
void rc_diags_free(rc_diags_t *d);
/* Appends one diagnostic (other loaders that report as file:line:col, e.g. ruletest.c).
 * Returns 0 or RC_ENOMEM. */
int rc_diags_add(rc_diags_t *d, rc_diag_level_t level, const char *file, int line, int col,
                 const char *msg);
/* "file:line:col: error: msg" per diagnostic. */
void rc_diags_print(const rc_diags_t *d, FILE *f);

/* Parses "5%", "0.05", "2000ms", "2s", "1.5m", "3" into base units (percent -> fraction,
 * durations -> seconds). Returns 0 or RC_EPARSE with a reason in err. */
int rc_rules_parse_quantity(const char *s, double *out, rc_err_t *err);
/* ">=", ">", "<=", "<" (for messages and /api/v1/rules). */
const char *rc_rules_cmp_name(rc_cmp_t op);

/* Parses a Prometheus duration ("5m", "30s", "1h30m", "500ms") into ms. 0 or RC_EPARSE. */
int rc_rules_parse_duration(const char *s, int64_t *out_ms, rc_err_t *err);

#endif
