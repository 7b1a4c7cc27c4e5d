/* ruletest.h: `ripcord test FILE...` — rule unit tests in YAML, in the spirit of
 * `promtool test rules`, run through the real engine on a simulated clock (replay.h).
 *
 *   rule_files: [checkout.rollback.yml]   # relative to the test file; globs allowed
 *   config_file: ripcord.yml              # optional: its rules: settings (labels, templates)
 *   evaluation_interval: 1m               # default 1m
 *   rollback_window: 24h                  # optional, as serve's --rollback.window
 *   rollback_cooldown: 10m                # optional, as serve's --rollback.cooldown (0: none)
 *   tests:
 *     - name: error burst rolls v2 back to v1
 *       interval: 1m                      # spacing of input samples; default evaluation_interval
 *       deploys:                          # as POST /api/v1/deploys, at a test time
 *         - {service: checkout, environment: production, version: v1, at: 0m}
 *         - {service: checkout, environment: production, version: v2, at: 10m}
 *       input_series:
 *         - series: 'http_requests_total{service="checkout", env="production", code="200"}'
 *           values: '0+600x30'
 *         - series: 'http_requests_total{service="checkout", env="production", code="500"}'
 *           values: '0x15 0+100x15'
 *       expect_triggers:                  # states (and values) at chosen times
 *         - {eval_time: 20m, rule: checkout/production, trigger: error_rate, state: firing,
 *            value: 0.1428}
 *       expect_rollbacks:                 # every rollback event of the test, in order
 *         - {eval_time: 20m, trigger: error_rate, outcome: rollback, from: v2, to: v1}
 *
 * Values use promtool's expanding notation: `a+bxn` (a, a+b, ... a+n*b), `a-bxn`, `axn`
 * (a, n+1 times), `_` (no sample), `_xn` (n of them), `stale` (a staleness marker); numbers
 * as in Go/PromQL (1, -2.5, 1e3, Inf, -Inf, NaN). Times are durations from 0 (the epoch).
 *
 * At every time step (samples at k*interval, evaluations at k*evaluation_interval and at
 * every eval_time expected) deploys due are recorded first, then the samples at that time
 * are applied, then the triggers are evaluated and the expectations due are checked.
 * `rule:` is `service/environment`, optional when the files hold one rule. A test that lists
 * expect_rollbacks (an empty list too) fails on any rollback event it does not list.
 *
 * Exit: 0 all tests passed, 1 some failed, 2 a file could not be read or has errors (each
 * reported as file:line:col: message).
 */
#ifndef RC_RULETEST_H
#define RC_RULETEST_H

#include <stddef.h>
#include <stdint.h>

#include "rc.h"
#include "rules.h"

/* One value of an input series: a number, no sample, or a staleness marker. */
typedef enum { RC_RT_NUM = 0, RC_RT_MISSING, RC_RT_STALE } rc_rt_kind_t;
typedef struct rc_rt_value {
  rc_rt_kind_t kind;
  double v;
} rc_rt_value_t;

/* Expands promtool's notation. At most max values (RC_ELIMIT beyond). On error err->col is
 * the 1-based byte column in s and err->msg the reason. *out is malloc'ed (caller frees). */
int rc_ruletest_parse_values(const char *s, size_t len, size_t max, rc_rt_value_t **out,
                             size_t *n, rc_err_t *err);

typedef struct rc_ruletest_suite rc_ruletest_suite_t;

/* Parses a test file's text (name for messages; dir: where rule_files are relative to).
 * Problems go to d as file:line:col diagnostics; returns 0, RC_EPARSE or RC_ENOMEM. *out is
 * set when 0 is returned (rc_ruletest_suite_free). Reads nothing else from disk. */
int rc_ruletest_parse(const char *name, const char *text, size_t len, rc_ruletest_suite_t **out,
                      rc_diags_t *d);
void rc_ruletest_suite_free(rc_ruletest_suite_t *s);

/* `ripcord test [--query.compat=prometheus-2|prometheus-3] [--verbose] FILE...`. */
int rc_ruletest_main(int argc, char **argv);

#endif
