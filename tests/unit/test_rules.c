/* test_rules.c: rollback rule files (rules.c) and `ripcord check` (check.c).
 *
 * The seed example loads with the values it states; the seed as written (an unquoted
 * `#deployments`) fails with exactly the comment message at the `#`; a table of bad files
 * pins every message to its line:col; quantities and durations have their own tables; built-in
 * metrics are checked by comparing the parsed expansion with an independently parsed expected
 * text through rc_pq_format (so the test does not depend on how the parser canonicalises). */
#include <fcntl.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "check.h"
#include "rules.h"

/* The seed's rule, with the deploy target the loader requires and the channel quoted. */
static const char SEED_OK[] =
    "# Conceptual rollback configuration\n"    /* 1 */
    "rollback:\n"                              /* 2 */
    "  service: checkout\n"                    /* 3 */
    "  environment: production\n"              /* 4 */
    "  triggers:\n"                            /* 5 */
    "    - metric: error_rate\n"               /* 6 */
    "      threshold: 5%\n"                    /* 7 */
    "      window: 5m\n"                       /* 8 */
    "    - metric: latency_p99\n"              /* 9 */
    "      threshold: 2000ms\n"                /* 10 */
    "      window: 5m\n"                       /* 11 */
    "    - metric: health_check_failures\n"    /* 12 */
    "      threshold: 3\n"                     /* 13 */
    "      window: 1m\n"                       /* 14 */
    "  action:\n"                              /* 15 */
    "    type: previous_version\n"             /* 16 */
    "    notify:\n"                            /* 17 */
    "      - slack: \"#deployments\"\n"        /* 18 */
    "      - pagerduty: on-call\n";            /* 19 */

static int load(const char *y, const rc_rules_cfg_t *cfg, rc_ruleset_t *s, rc_diags_t *d) {
  memset(s, 0, sizeof(*s));
  memset(d, 0, sizeof(*d));
  return rc_rules_load_buffer("t.yml", y, strlen(y), cfg, s, d);
}

static void dump(const rc_diags_t *d) { rc_diags_print(d, stderr); }

/* Parses `text` and returns its canonical form (malloc'd). */
static char *canon(const char *text) {
  rc_pq_expr_t *e = NULL;
  rc_err_t err = {0};
  if (rc_pq_parse(text, strlen(text), 0, &e, &err) != 0) fail_msg("parse %s: %s", text, err.msg);
  size_t n = rc_pq_format(e, NULL, 0);
  char *buf = malloc(n + 1);
  assert_non_null(buf);
  rc_pq_format(e, buf, n + 1);
  rc_pq_free(e);
  return buf;
}

static void assert_expr(const rc_pq_expr_t *e, const char *expected) {
  assert_non_null(e);
  size_t n = rc_pq_format(e, NULL, 0);
  char *got = malloc(n + 1);
  assert_non_null(got);
  rc_pq_format(e, got, n + 1);
  char *want = canon(expected);
  if (strcmp(got, want) != 0) fail_msg("expression\n got: %s\nwant: %s", got, want);
  free(got);
  free(want);
}

static void test_seed(void **st) {
  (void)st;
  rc_ruleset_t s;
  rc_diags_t d;
  int rc = load(SEED_OK, NULL, &s, &d);
  if (rc != 0 || d.n != 0) dump(&d);
  assert_int_equal(rc, 0);
  assert_int_equal(d.n, 0);
  assert_int_equal(s.n, 1);
  rc_rule_t *r = &s.rules[0];
  assert_string_equal(r->file, "t.yml");
  assert_int_equal(r->line, 3);
  assert_int_equal(r->col, 3);
  assert_string_equal(r->service, "checkout");
  assert_string_equal(r->environment, "production");
  assert_null(r->match);
  assert_int_equal(r->nmatch, 0);
  assert_string_equal(r->action, "previous_version");
  assert_int_equal(r->nnotify, 2);
  assert_string_equal(r->notify[0].kind, "slack");
  assert_string_equal(r->notify[0].target, "#deployments");
  assert_string_equal(r->notify[1].kind, "pagerduty");
  assert_string_equal(r->notify[1].target, "on-call");
  assert_int_equal(r->ntriggers, 3);
  static const char *const names[] = {"error_rate", "latency_p99", "health_check_failures"};
  static const double thr[] = {0.05, 2.0, 3};
  static const int64_t win[] = {300000, 300000, 60000};
  static const int lines[] = {6, 9, 12};
  for (int i = 0; i < 3; i++) {
    rc_trigger_t *t = &r->triggers[i];
    assert_string_equal(t->name, names[i]);
    assert_string_equal(t->metric, names[i]);
    assert_true(fabs(t->threshold - thr[i]) < 1e-12);
    assert_int_equal(t->window_ms, win[i]);
    assert_int_equal(t->op, RC_CMP_GE);
    assert_int_equal(t->for_ms, 0);
    assert_int_equal(t->keep_firing_for_ms, 0);
    assert_int_equal(t->min_samples, 0);
    assert_true(t->min_requests == 0);
    assert_int_equal(t->no_data, RC_NODATA_IGNORE);
    assert_int_equal(t->dry_run, 0);
    assert_true(isnan(t->warn_threshold));
    assert_true(isnan(t->resolve_threshold));
    assert_null(t->requests_expr); /* no min_requests */
    assert_int_equal(t->line, lines[i]);
    assert_int_equal(t->col, 7);
    assert_non_null(t->expr);
  }
  assert_expr(r->triggers[0].expr,
              "sum(rate(http_requests_total{service=\"checkout\", env=\"production\", "
              "code=~\"5..\"}[5m])) / sum(rate(http_requests_total{service=\"checkout\", "
              "env=\"production\"}[5m]))");
  assert_expr(r->triggers[1].expr,
              "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{"
              "service=\"checkout\", env=\"production\"}[5m])))");
  assert_expr(r->triggers[2].expr,
              "sum(count_over_time(up{service=\"checkout\", env=\"production\"}[1m]) - "
              "sum_over_time(up{service=\"checkout\", env=\"production\"}[1m]))");
  rc_ruleset_free(&s);
  rc_diags_free(&d);
}

/* The seed exactly as the issue quotes it (with the deploy target): one error, at the `#`. */
static void test_seed_unquoted(void **st) {
  (void)st;
  char *y = strdup(SEED_OK);
  assert_non_null(y);
  char *q = strstr(y, "\"#deployments\"");
  assert_non_null(q);
  memmove(q, q + 1, strlen(q + 1) + 1);      /* drop the opening quote */
  memmove(q + 12, q + 13, strlen(q + 13) + 1); /* and the closing one */
  assert_non_null(strstr(y, "- slack: #deployments\n"));
  rc_ruleset_t s;
  rc_diags_t d;
  assert_int_equal(load(y, NULL, &s, &d), RC_EPARSE);
  if (d.n != 1) dump(&d);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.errors, 1);
  assert_int_equal(d.v[0].level, RC_DIAG_ERROR);
  assert_string_equal(d.v[0].file, "t.yml");
  assert_int_equal(d.v[0].line, 18);
  assert_int_equal(d.v[0].col, 16);
  assert_string_equal(d.v[0].msg, "value is empty: \"#deployments\" was read as a comment; "
                                  "quote it: slack: \"#deployments\"");
  assert_int_equal(s.n, 0);
  /* The printed form. */
  char buf[512];
  FILE *f = fmemopen(buf, sizeof(buf), "w");
  assert_non_null(f);
  rc_diags_print(&d, f);
  fclose(f);
  assert_non_null(strstr(buf, "t.yml:18:16: error: value is empty: \"#deployments\""));
  rc_diags_free(&d);
  free(y);
}

/* The seed verbatim (no service/environment either): three errors, in file order. */
static void test_seed_verbatim(void **st) {
  (void)st;
  static const char y[] =
      "# Conceptual rollback configuration\n"
      "rollback:\n"
      "  triggers:\n"
      "    - metric: error_rate\n"
      "      threshold: 5%\n"
      "      window: 5m\n"
      "    - metric: latency_p99\n"
      "      threshold: 2000ms\n"
      "      window: 5m\n"
      "    - metric: health_check_failures\n"
      "      threshold: 3\n"
      "      window: 1m\n"
      "  action:\n"
      "    type: previous_version\n"
      "    notify:\n"
      "      - slack: #deployments\n"
      "      - pagerduty: on-call\n";
  rc_ruleset_t s;
  rc_diags_t d;
  assert_int_equal(load(y, NULL, &s, &d), RC_EPARSE);
  if (d.n != 3) dump(&d);
  assert_int_equal(d.n, 3);
  assert_string_equal(d.v[0].msg, "a rule needs service:");
  assert_string_equal(d.v[1].msg, "a rule needs environment:");
  assert_int_equal(d.v[0].line, 3);
  assert_int_equal(d.v[2].line, 16);
  assert_int_equal(d.v[2].col, 16);
  assert_non_null(strstr(d.v[2].msg, "was read as a comment"));
  rc_diags_free(&d);
}

/* ---- bad files -------------------------------------------------------------------------- */

/* Lines 1-4 of a one-trigger rule; the trigger's first key is at 5:7. */
#define H "rollback:\n  service: checkout\n  environment: production\n  triggers:\n    - "
#define M "metric: error_rate\n"
#define TH "      threshold: 5%\n"
#define W "      window: 5m\n"
#define A "  action:\n    type: previous_version\n"
/* A complete rule up to its action, for action/notify cases (action: at line 8). */
#define R H M TH W
/* Triggers and action for rule-level cases. */
#define TA "  triggers: [{metric: error_rate, threshold: 1%, window: 5m}]\n" A

static const struct bad {
  const char *y;
  int line, col;
  const char *msg;
} BAD[] = {
    /* top level */
    {"rollbak:\n  service: x\n", 1, 1, "unknown key \"rollbak\" in the file; did you mean \"rollback\"?"},
    {"- a\n- b\n", 1, 1, "a rule file is a mapping with rollback:"},
    {"rollback: 5\n", 1, 11, "a rule must be a mapping"},
    {"rollback:\n", 1, 1, "the rule is empty"},
    {"rollback: {}\nrollbacks: []\n", 2, 1, "either rollback: (one rule) or rollbacks:"},
    {"rollbacks: x\n", 1, 12, "rollbacks must be a list of rules"},
    {"metrics: {}\n", 1, 1, "no rollback: or rollbacks: in this file"},
    {"x: &a {}\nrollback: *a\n", 2, 11, "YAML aliases (*a) are not supported"},
    {"rollback: {}\n---\nrollback: {}\n", 2, 1, "one YAML document"},
    /* YAML syntax and its gotchas */
    {"rollback:\n\tservice: x\n", 2, 1, "tab character in indentation"},
    {"rollback:\n  service: x\n - a\n", 3, 2, "YAML syntax: did not find expected key"},
    {"rollback: [a\n", 2, 1, "YAML syntax: did not find expected ',' or ']'"},
    {H M TH W "      op: >=\n" A, 8, 11, "an unquoted > starts a YAML block scalar; quote it: op: \">=\""},
    {H M TH W "      op: >\n" A, 8, 11, "op: an unquoted > starts a YAML block scalar; quote the operator: op: \">\""},
    /* rule keys */
    {"rollback:\n  environment: p\n  triggers: [{metric: error_rate, threshold: 1, window: 5m}]\n" A,
     2, 3, "a rule needs service:"},
    {"rollback:\n  service: c\n  triggers: [{metric: error_rate, threshold: 1, window: 5m}]\n" A,
     2, 3, "a rule needs environment:"},
    {"rollback:\n  service: c\n  enviroment: p\n" TA, 3, 3,
     "unknown key \"enviroment\" in rule; did you mean \"environment\"?"},
    {"rollback:\n  service: c\n  environment: p\n  service: d\n" TA, 4, 3,
     "duplicate key \"service\" in rule (first at line 2)"},
    {"rollback:\n  service:\n  environment: p\n", 2, 3, "service is empty; expected a string"},
    {"rollback:\n  service: #checkout\n  environment: p\n" TA, 2, 12,
     "value is empty: \"#checkout\" was read as a comment; quote it: service: \"#checkout\""},
    {"rollback:\n  service: [a]\n  environment: p\n" TA, 2, 12, "service must be a string, not a list"},
    {"rollback:\n  service: c\n  environment: p\n" A, 2, 3, "a rule needs triggers:"},
    {"rollback:\n  service: c\n  environment: p\n  triggers: []\n" A, 4, 13,
     "triggers must be a non-empty list, not an empty list"},
    {"rollback:\n  service: c\n  environment: p\n  triggers: x\n" A, 4, 13,
     "triggers must be a non-empty list, not a string"},
    {"rollback:\n  service: c\n  environment: p\n  triggers:\n    - error_rate\n" A, 5, 7,
     "a trigger must be a mapping"},
    {"rollback:\n  service: c\n  environment: p\n  match: []\n  triggers: [{metric: error_rate, "
     "threshold: 1, window: 5m}]\n" A, 4, 10, "match must be a non-empty mapping"},
    {"rollback:\n  service: c\n  environment: p\n  match: {bad-label: x}\n" TA, 4, 11,
     "\"bad-label\" is not a label name"},
    {"rollback:\n  service: c\n  environment: p\n  match_re: {code: \"5(..\"}\n" TA, 4, 22,
     "match_re: code:"},
    /* trigger keys */
    {H M "      threshold: 5 %\n" W A, 6, 18, "no space allowed between a number and its unit: write 5%"},
    {H M TH "      window: 300\n" A, 7, 15, "missing unit: add one, e.g. 300s"},
    {H M "      threshold: Inf\n" W A, 6, 18, "Inf and NaN are refused"},
    {H M "      threshold: .inf\n" W A, 6, 18, "Inf and NaN are refused"},
    {H M "      threshold: 5%%\n" W A, 6, 18, "unexpected \"%\" after %"},
    {H M "      threshold: abc\n" W A, 6, 18, "not a number: \"abc\""},
    {H M "      threshold: [1]\n" W A, 6, 18, "threshold must be a number or quantity"},
    {H M "      threshold: 5 furlongs\n" W A, 6, 18, "no space allowed between a number and its unit"},
    {H M "      threshold: 5kg\n" W A, 6, 18, "unknown unit \"kg\""},
    {H M W A, 5, 7, "a trigger needs threshold:"},
    {H M TH "      window: 0s\n" A, 7, 15, "window must be longer than 0"},
    {H M TH "      window: 5 m\n" A, 7, 15, "no space allowed in a duration"},
    {H M TH "      window: 1.5m\n" A, 7, 15, "durations take whole numbers"},
    {H M TH "      window: 5m1h\n" A, 7, 15, "decreasing order"},
    {H M TH "      window: -5m\n" A, 7, 15, "cannot be negative"},
    {H M TH "      window: 5x\n" A, 7, 15, "unknown duration unit \"x\""},
    {H M TH A, 5, 7, "a metric: trigger needs window:"},
    {H M TH W "      expr: up\n" A, 8, 7, "either metric: or expr:, not both"},
    {H "threshold: 1\n" W A, 5, 7, "a trigger needs metric:"},
    {H "metric: error_rte\n" TH W A, 5, 15, "unknown metric \"error_rte\"; did you mean \"error_rate\"?"},
    {H "metric: saturation\n" TH W A, 5, 15, "unknown metric \"saturation\" (known: error_rate, "
                                             "latency_p99, health_check_failures;"},
    {H M "      treshold: 5%\n" W A, 6, 7, "unknown key \"treshold\" in trigger; did you mean \"threshold\"?"},
    {H M TH W "      min_request: 5\n" A, 8, 7, "did you mean \"min_requests\"?"},
    {H M TH W "      bogus: 1\n" A, 8, 7, "unknown key \"bogus\" in trigger (known: metric, expr,"},
    {H M TH W "      window: 1m\n" A, 8, 7, "duplicate key \"window\" in trigger (first at line 7)"},
    {H M TH W "      op: \"=>\"\n" A, 8, 11, "op: unknown operator \"=>\"; did you mean \">=\"?"},
    {H M TH W "      op: \"!=\"\n" A, 8, 11, "op: unknown operator \"!=\""},
    {H M TH W "      dry_run: yes\n" A, 8, 16, "dry_run: \"yes\" is a YAML 1.1 boolean"},
    {H M TH W "      dry_run: off\n" A, 8, 16, "write false"},
    {H M TH W "      dry_run: \"true\"\n" A, 8, 16, "not the string \"true\"; drop the quotes"},
    {H M TH W "      dry_run: 1\n" A, 8, 16, "dry_run must be true or false, not \"1\""},
    {H M TH W "      no_data: skip\n" A, 8, 16, "no_data: unknown value \"skip\" (expected one of: "
                                                "ignore, fire, alert)"},
    {H M TH W "      no_data: fier\n" A, 8, 16, "did you mean \"fire\"?"},
    {H M TH W "      for: 5\n" A, 8, 12, "for: missing unit"},
    {H M TH W "      for: -1m\n" A, 8, 12, "cannot be negative"},
    {H M TH W "      keep_firing_for: 1.5m\n" A, 8, 24, "whole numbers"},
    {H M TH W "      min_samples: -1\n" A, 8, 20, "min_samples must be a whole number >= 0"},
    {H M TH W "      min_samples: 1.5\n" A, 8, 20, "min_samples must be a whole number >= 0"},
    {H M TH W "      min_requests: -5\n" A, 8, 21, "min_requests must be a number >= 0"},
    {H M TH W "      min_requests: 5%\n" A, 8, 21, "min_requests must be a number >= 0"},
    {H "metric: health_check_failures\n" TH W "      min_requests: 10\n" A, 8, 21,
     "metric health_check_failures has no request count"},
    {H "expr: up\n" TH "      min_requests: 10\n" A, 7, 21,
     "min_requests on an expr: trigger needs requests_expr:"},
    {H M TH W "      warn_threshold: 6%\n" A, 8, 23,
     "warn_threshold 0.06 must be below threshold 0.05"},
    {H M TH W "      warn_threshold: 5%\n" A, 8, 23, "must be below threshold"},
    {H M TH W "      op: \"<\"\n      warn_threshold: 1%\n" A, 9, 23, "must be above threshold"},
    {H M TH W "      resolve_threshold: 6%\n" A, 8, 26,
     "resolve_threshold 0.06 must be at or below threshold 0.05"},
    {H M TH W "      name: \"\"\n" A, 8, 13, "name is empty"},
    {H M TH W "    - metric: error_rate\n      threshold: 6%\n      window: 10m\n" A, 8, 7,
     "duplicate trigger name \"error_rate\" in this rule (first at line 5)"},
    /* expressions: the error inside the expression is placed in the file */
    {H "expr: sum(rate(x[5m])) $\n" TH A, 5, 30, "expr: "},
    {H "expr: \"sum(rate(x[5m])) $\"\n" TH A, 5, 31, "expr: "},
    {H "expr: 'up{a=''b''} $'\n" TH A, 5, 26, "expr: "},
    {H "expr: |\n        sum(rate(x[5m]))\n          / $\n" TH A, 7, 13, "expr: "},
    {H "expr: up\n" TH "      requests_expr: \"sum($)\"\n" A, 7, 27, "requests_expr: "},
    {H "expr:\n" TH A, 5, 7, "expr is empty"},
    /* libyaml counts characters, not bytes, and CRLF as one break */
    {"rollback:\n  service: \"\xc3\xbcn\xc3\xaf\"\n  environment: b\n  triggers:\n"
     "    - {expr: \"sum(x{a=\\\"\xc3\xa9\\\"}) $\", threshold: 1}\n" A, 5, 31, "expr: "},
    {"rollback:\r\n  service: a\r\n  environment: b\r\n  triggers:\r\n    - expr: |\r\n"
     "        sum(rate(x[5m]))\r\n          + $\r\n      threshold: 1\r\n" A, 7, 13, "expr: "},
    /* action */
    {R, 2, 3, "a rule needs action:"},
    {R "  action:\n", 8, 3, "action is empty"},
    {R "  action: {}\n", 8, 11, "action needs type:"},
    {R "  action:\n    type: rollback\n", 9, 11, "action type: unknown value \"rollback\" (expected "
                                                "one of: previous_version, notify, dry_run)"},
    {R "  action:\n    type: previous_versoin\n", 9, 11, "did you mean \"previous_version\"?"},
    {R A "    notfy: []\n", 10, 5, "did you mean \"notify\"?"},
    {R A "    notify: slack\n", 10, 13, "notify must be a list"},
    {R A "    notify:\n      - \"#x\"\n", 11, 9, "each notify entry is one KIND: TARGET pair"},
    {R A "    notify:\n      - {slack: a, pagerduty: b}\n", 11, 9, "each notify entry is one KIND"},
    {R A "    notify:\n      - slak: \"#x\"\n", 11, 9, "did you mean \"slack\"?"},
    {R A "    notify:\n      - slack:\n", 11, 9, "notify slack target is empty"},
    {R A "    notify:\n      - pagerduty: #oncall\n", 11, 20, "quote it: pagerduty: \"#oncall\""},
    /* action.approval */
    {R A "    approval: 2\n", 10, 15, "approval must be a mapping"},
    {R A "    approval:\n      when: sometimes\n", 11, 13, "approval when: unknown value"},
    {R A "    approval:\n      required: 0\n", 11, 17, "approval required must be 1 to 16"},
    {R A "    approval:\n      required: two\n", 11, 17, "approval required"},
    {R A "    approval:\n      timeout: 0s\n", 11, 16, "between 1s and 7d"},
    {R A "    approval:\n      approvers: alice\n", 11, 18, "approvers must be a list of names"},
    {R A "    approval:\n      approvers: []\n", 11, 7, "nobody could approve"},
    {R A "    approval:\n      approver_group: [sre]\n", 11, 7, "did you mean \"approver_groups\"?"},
    /* per-file templates */
    {"metrics:\n  error_rate:\n    expr: \"sum($)\"\n" R A, 3, 16, "template: "},
    {"metrics:\n  custom: {}\n" R A, 2, 11, "metrics: custom needs expr:"},
    {"metrics:\n  bad-name: {expr: up}\n" R A, 2, 3, "is not a valid name"},
};

static void test_bad(void **st) {
  (void)st;
  int failed = 0;
  for (size_t i = 0; i < RC_ARRAY_SIZE(BAD); i++) {
    rc_ruleset_t s;
    rc_diags_t d;
    int rc = load(BAD[i].y, NULL, &s, &d);
    const rc_diag_t *e = NULL;
    for (uint32_t j = 0; j < d.n && e == NULL; j++)
      if (d.v[j].level == RC_DIAG_ERROR) e = &d.v[j];
    if (rc != RC_EPARSE || s.n != 0 || e == NULL || e->line != BAD[i].line ||
        e->col != BAD[i].col || strstr(e->msg, BAD[i].msg) == NULL) {
      fprintf(stderr, "case %zu: rc=%d rules=%u want %d:%d '%s'\n%s", i, rc, s.n, BAD[i].line,
              BAD[i].col, BAD[i].msg, BAD[i].y);
      dump(&d);
      failed++;
    }
    rc_ruleset_free(&s);
    rc_diags_free(&d);
  }
  assert_true(RC_ARRAY_SIZE(BAD) >= 40);
  assert_int_equal(failed, 0);
}

/* A file with an error adds nothing; diagnostics accumulate across files. */
static void test_all_or_nothing(void **st) {
  (void)st;
  rc_ruleset_t s = {0};
  rc_diags_t d = {0};
  assert_int_equal(rc_rules_load_buffer("a.yml", SEED_OK, strlen(SEED_OK), NULL, &s, &d), 0);
  assert_int_equal(s.n, 1);
  static const char bad[] = "rollbacks:\n"
                            "  - service: a\n    environment: p\n"
                            "    triggers: [{metric: error_rate, threshold: 1%, window: 5m}]\n"
                            "    action: {type: previous_version}\n"
                            "  - service: b\n    environment: p\n"
                            "    triggers: [{metric: error_rate, threshold: x, window: 5m}]\n"
                            "    action: {type: previous_version}\n";
  assert_int_equal(rc_rules_load_buffer("b.yml", bad, strlen(bad), NULL, &s, &d), RC_EPARSE);
  assert_int_equal(s.n, 1);
  assert_int_equal(d.errors, 1);
  assert_string_equal(d.v[0].file, "b.yml");
  assert_int_equal(d.v[0].line, 8);
  assert_int_equal(rc_rules_load_file("/nonexistent/x.yml", NULL, &s, &d), RC_EIO);
  assert_int_equal(d.errors, 2);
  assert_int_equal(d.v[1].line, 0);
  assert_non_null(strstr(d.v[1].msg, "cannot open"));
  rc_ruleset_free(&s);
  rc_diags_free(&d);
}

/* ---- quantities and durations ----------------------------------------------------------- */

static void test_quantity(void **st) {
  (void)st;
  static const struct { const char *s; double v; } good[] = {
      {"5%", 0.05},     {"0.05", 0.05},   {"2000ms", 2},   {"2s", 2},      {"1.5s", 1.5},
      {"1.5m", 90},     {"3", 3},         {"0", 0},        {"-1", -1},     {"+2", 2},
      {"1e3", 1000},    {"1e-3", 0.001},  {"2.5E2", 250},  {"100%", 1},    {"0.5%", 0.005},
      {"250ms", 0.25},  {"1h", 3600},     {"1h30m", 5400}, {"1d", 86400},  {"1w", 604800},
      {".5", 0.5},      {"5.", 5},        {"1y", 31536000},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(good); i++) {
    double v = -99;
    rc_err_t e = {0};
    if (rc_rules_parse_quantity(good[i].s, &v, &e) != 0 || fabs(v - good[i].v) > 1e-9 * fabs(good[i].v))
      fail_msg("%s: got %g (%s)", good[i].s, v, e.msg);
  }
  static const struct { const char *s, *msg; } bad[] = {
      {"", "empty"},
      {"Inf", "Inf and NaN are refused"},
      {"-Inf", "Inf and NaN are refused"},
      {"NaN", "Inf and NaN are refused"},
      {"5 %", "no space allowed between a number and its unit: write 5%"},
      {"5 ", "trailing space"},
      {"abc", "not a number"},
      {"%", "not a number"},
      {"5%%", "unexpected"},
      {"5kg", "unknown unit \"kg\""},
      {"1.5h30m", "is not a quantity"},
      {"1e999", "out of range"},
      {"0x10", "unknown unit"},
      {"1,5", "unknown unit"},
      {"5e", "unknown unit"},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(bad); i++) {
    double v;
    rc_err_t e = {0};
    if (rc_rules_parse_quantity(bad[i].s, &v, &e) != RC_EPARSE || strstr(e.msg, bad[i].msg) == NULL)
      fail_msg("%s: '%s' (want '%s')", bad[i].s, e.msg, bad[i].msg);
  }
}

static void test_duration(void **st) {
  (void)st;
  static const struct { const char *s; int64_t ms; } good[] = {
      {"0", 0},           {"0s", 0},          {"5m", 300000},     {"30s", 30000},
      {"1h30m", 5400000}, {"500ms", 500},     {"1s500ms", 1500},  {"2d", 172800000},
      {"1w", 604800000},  {"1y", 31536000000}, {"1y2w3d4h5m6s7ms", 31536000000LL + 1209600000 +
                                                                    259200000 + 14400000 + 300000 +
                                                                    6000 + 7},
      {"90s", 90000},     {"120m", 7200000},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(good); i++) {
    int64_t v = -1;
    rc_err_t e = {0};
    if (rc_rules_parse_duration(good[i].s, &v, &e) != 0 || v != good[i].ms)
      fail_msg("%s: got %lld (%s)", good[i].s, (long long)v, e.msg);
  }
  static const struct { const char *s, *msg; } bad[] = {
      {"", "empty"},
      {"300", "missing unit: add one, e.g. 300s"},
      {"5m30", "missing unit after 30"},
      {"1.5m", "whole numbers"},
      {"-5m", "cannot be negative"},
      {"5 m", "no space"},
      {"5x", "unknown duration unit \"x\""},
      {"5m1h", "decreasing order"},
      {"5m5m", "decreasing order"},
      {"m", "not a duration"},
      {"99999999999999999999s", "too large"},
      {"9223372036854775807y", "too large"},
      {"5M", "unknown duration unit"},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(bad); i++) {
    int64_t v;
    rc_err_t e = {0};
    if (rc_rules_parse_duration(bad[i].s, &v, &e) != RC_EPARSE || strstr(e.msg, bad[i].msg) == NULL)
      fail_msg("%s: '%s' (want '%s')", bad[i].s, e.msg, bad[i].msg);
  }
  assert_string_equal(rc_rules_cmp_name(RC_CMP_LT), "<");
}

/* ---- good files ------------------------------------------------------------------------- */

static void test_rollbacks_list_and_match(void **st) {
  (void)st;
  static const char y[] =
      "rollbacks:\n"
      "  - service: checkout\n"
      "    environment: production\n"
      "    triggers:\n"
      "      - metric: error_rate\n"
      "        threshold: 0.1\n"
      "        window: 10m\n"
      "        min_requests: 50\n"
      "    action: {type: previous_version, notify: [{webhook: deploy-bot}]}\n"
      "  - service: 123\n"
      "    environment: staging\n"
      "    match: {job: \"api \\\"v2\\\"\", namespace: shop}\n"
      "    match_re: {code: \"5..|429\"}\n"
      "    triggers:\n"
      "      - metric: latency_p99\n"
      "        threshold: 1.5s\n"
      "        window: 2m\n"
      "        min_requests: 10\n"
      "    action:\n"
      "      type: previous_version\n"
      "      approval:\n"
      "        when: always\n"
      "        required: 3\n"
      "        approvers: [alice, bob]\n"
      "        approver_groups: [sre]\n"
      "        timeout: 15m\n";
  rc_ruleset_t s;
  rc_diags_t d;
  int rc = load(y, NULL, &s, &d);
  if (rc != 0 || d.n) dump(&d);
  assert_int_equal(rc, 0);
  assert_int_equal(d.n, 0);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.rules[0].line, 2);
  assert_int_equal(s.rules[0].col, 5);
  assert_int_equal(s.rules[0].nnotify, 1);
  assert_string_equal(s.rules[0].notify[0].kind, "webhook");
  assert_string_equal(s.rules[0].notify[0].target, "deploy-bot");
  rc_trigger_t *t = &s.rules[0].triggers[0];
  assert_true(t->min_requests == 50);
  assert_expr(t->requests_expr,
              "sum(increase(http_requests_total{service=\"checkout\", env=\"production\"}[10m]))");
  rc_rule_t *r = &s.rules[1];
  assert_string_equal(r->service, "123");
  assert_int_equal(r->nmatch, 3);
  assert_string_equal(r->match[0], "job=\"api \\\"v2\\\"\"");
  assert_string_equal(r->match[1], "namespace=\"shop\"");
  assert_string_equal(r->match[2], "code=~\"5..|429\"");
  assert_int_equal(r->nnotify, 0);
  assert_int_equal(s.rules[0].approval.when_always, -1); /* not given: inherits */
  assert_int_equal(s.rules[0].approval.has_approvers, 0);
  assert_int_equal(r->approval.when_always, 1);
  assert_int_equal(r->approval.required, 3);
  assert_true(r->approval.timeout_ms == 15 * 60000);
  assert_int_equal(r->approval.napprovers, 2);
  assert_string_equal(r->approval.approvers[1], "bob");
  assert_int_equal(r->approval.ngroups, 1);
  assert_string_equal(r->approval.groups[0], "sre");
  assert_int_equal(r->approval.has_approvers, 1);
  t = &r->triggers[0];
  assert_true(fabs(t->threshold - 1.5) < 1e-12);
  assert_int_equal(t->window_ms, 120000);
  /* match: replaces the service/environment matchers. */
  assert_expr(t->expr, "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_"
                       "bucket{job=\"api \\\"v2\\\"\", namespace=\"shop\", code=~\"5..|429\"}[2m])))");
  assert_expr(t->requests_expr, "sum(increase(http_requests_total{job=\"api \\\"v2\\\"\", "
                                "namespace=\"shop\", code=~\"5..|429\"}[2m]))");
  rc_ruleset_free(&s);
  rc_diags_free(&d);
}

static void test_expr_all_options(void **st) {
  (void)st;
  static const char y[] =
      "rollback:\n"
      "  service: checkout\n"
      "  environment: production\n"
      "  triggers:\n"
      "    - name: canary_ratio\n"
      "      expr: |\n"
      "        sum(rate(http_requests_total{version=\"canary\", code=~\"5..\"}[5m]))\n"
      "          / sum(rate(http_requests_total{version=\"canary\"}[5m]))\n"
      "      op: \">\"\n"
      "      threshold: 2\n"
      "      window: 5m\n"
      "      for: 1m\n"
      "      keep_firing_for: 2m30s\n"
      "      min_samples: 4\n"
      "      min_requests: 100\n"
      "      requests_expr: sum(increase(http_requests_total{version=\"canary\"}[5m]))\n"
      "      no_data: alert\n"
      "      warn_threshold: 1.5\n"
      "      resolve_threshold: 1.2\n"
      "      dry_run: true\n"
      "    - expr: max(up)\n"
      "      op: <=\n"
      "      threshold: 0.5\n"
      "      warn_threshold: 0.9\n"
      "      no_data: fire\n"
      "      dry_run: false\n"
      "    - expr: 'sum(rate(x[5m])) > bool 1'\n"
      "      op: <\n"
      "      threshold: 1\n"
      "      resolve_threshold: 1\n"
      "  action: {type: previous_version}\n";
  rc_ruleset_t s;
  rc_diags_t d;
  int rc = load(y, NULL, &s, &d);
  if (rc != 0 || d.n) dump(&d);
  assert_int_equal(rc, 0);
  assert_int_equal(d.n, 0);
  rc_trigger_t *t = &s.rules[0].triggers[0];
  assert_string_equal(t->name, "canary_ratio");
  assert_null(t->metric);
  assert_expr(t->expr, "sum(rate(http_requests_total{version=\"canary\", code=~\"5..\"}[5m])) / "
                       "sum(rate(http_requests_total{version=\"canary\"}[5m]))");
  assert_expr(t->requests_expr, "sum(increase(http_requests_total{version=\"canary\"}[5m]))");
  assert_int_equal(t->op, RC_CMP_GT);
  assert_true(t->threshold == 2);
  assert_int_equal(t->window_ms, 0); /* expr: its ranges are its windows */
  assert_int_equal(t->for_ms, 60000);
  assert_int_equal(t->keep_firing_for_ms, 150000);
  assert_int_equal(t->min_samples, 4);
  assert_true(t->min_requests == 100);
  assert_int_equal(t->no_data, RC_NODATA_ALERT);
  assert_true(t->warn_threshold == 1.5);
  assert_true(t->resolve_threshold == 1.2);
  assert_int_equal(t->dry_run, 1);
  assert_int_equal(t->line, 5);
  t = &s.rules[0].triggers[1];
  assert_string_equal(t->name, "expr2");
  assert_int_equal(t->op, RC_CMP_LE);
  assert_true(t->warn_threshold == 0.9);
  assert_int_equal(t->no_data, RC_NODATA_FIRE);
  assert_int_equal(t->dry_run, 0);
  assert_null(t->requests_expr);
  t = &s.rules[0].triggers[2];
  assert_string_equal(t->name, "expr3");
  assert_int_equal(t->op, RC_CMP_LT);
  assert_true(t->resolve_threshold == 1);
  rc_ruleset_free(&s);
  rc_diags_free(&d);
}

/* expr: ending in a plain comparison is a Prometheus alerting habit; here it is a mistake. */
static void test_expr_comparison(void **st) {
  (void)st;
  static const char y[] = H "expr: sum(rate(x[5m])) > 0.05\n" TH A;
  rc_ruleset_t s;
  rc_diags_t d;
  assert_int_equal(load(y, NULL, &s, &d), RC_EPARSE);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.v[0].line, 5);
  assert_int_equal(d.v[0].col, 13);
  assert_non_null(strstr(d.v[0].msg, "drop the comparison"));
  rc_diags_free(&d);
}

/* Server-config labels and templates, per-file templates, the scrape interval. */
static void test_cfg_and_file_templates(void **st) {
  (void)st;
  rc_rules_cfg_t cfg = {
      .service_label = "app",
      .environment_label = "namespace",
      .error_rate_expr = "sum(rate(errors_total{{{selector}}}[{{window}}]))",
      .error_rate_requests_expr = "sum(increase(requests_total{{{selector}}}[{{window}}]))",
      .scrape_interval_ms = 20000, /* 1m30s windows pass: 90s >= 4 x 20s */
  };
  static const char y[] =
      "metrics:\n"
      "  latency_p99:\n"
      "    expr: max(max_over_time(p99_seconds{{{selector}}}[{{window}}]))\n"
      "  queue_depth:\n"
      "    expr: 'max(max_over_time(queue_depth{{{selector}}}[{{window}}]))'\n"
      "    requests_expr: sum(increase(jobs_total{{{selector}}}[{{window}}]))\n"
      "rollback:\n"
      "  service: shop\n"
      "  environment: prod\n"
      "  triggers:\n"
      "    - {metric: error_rate, threshold: 1%, window: 2m, min_requests: 5}\n"
      "    - {metric: latency_p99, threshold: 300ms, window: 1m30s, min_requests: 5}\n"
      "    - {metric: queue_depth, threshold: 1000, window: 5m, min_requests: 1}\n"
      "    - {metric: health_check_failures, threshold: 1, window: 3m}\n"
      "  action: {type: previous_version}\n";
  rc_ruleset_t s;
  rc_diags_t d;
  int rc = load(y, &cfg, &s, &d);
  if (rc != 0 || d.n) dump(&d);
  assert_int_equal(rc, 0);
  assert_int_equal(d.n, 0);
  rc_trigger_t *t = s.rules[0].triggers;
  assert_expr(t[0].expr, "sum(rate(errors_total{app=\"shop\", namespace=\"prod\"}[2m]))");
  assert_expr(t[0].requests_expr, "sum(increase(requests_total{app=\"shop\", namespace=\"prod\"}[2m]))");
  assert_expr(t[1].expr, "max(max_over_time(p99_seconds{app=\"shop\", namespace=\"prod\"}[1m30s]))");
  /* A file template without requests_expr keeps the inherited request count. */
  assert_expr(t[1].requests_expr, "sum(increase(requests_total{app=\"shop\", namespace=\"prod\"}[1m30s]))");
  assert_string_equal(t[2].name, "queue_depth");
  assert_expr(t[2].expr, "max(max_over_time(queue_depth{app=\"shop\", namespace=\"prod\"}[5m]))");
  assert_expr(t[2].requests_expr, "sum(increase(jobs_total{app=\"shop\", namespace=\"prod\"}[5m]))");
  assert_expr(t[3].expr, "sum(count_over_time(up{app=\"shop\", namespace=\"prod\"}[3m]) - "
                         "sum_over_time(up{app=\"shop\", namespace=\"prod\"}[3m]))");
  rc_ruleset_free(&s);
  rc_diags_free(&d);

  /* A broken server-config template is reported at the trigger's metric: value. */
  cfg.error_rate_expr = "sum(rate(errors_total{{{selector}}}[{{window}}]) $";
  assert_int_equal(load(H M TH W A, &cfg, &s, &d), RC_EPARSE);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.v[0].line, 5);
  assert_int_equal(d.v[0].col, 15);
  assert_non_null(strstr(d.v[0].msg, "template of metric error_rate does not parse"));
  rc_diags_free(&d);
}

/* ---- warnings --------------------------------------------------------------------------- */

static const struct bad WARN[] = {
    {H M TH "      window: 30s\n" A, 7, 15, "window 30s is shorter than 4x the scrape interval (15s, assumed)"},
    {H M "      threshold: 5\n" W A, 6, 18, "outside error_rate's range 0..1"},
    {H M "      threshold: -1%\n" W A, 6, 18, "outside error_rate's range 0..1"},
    {H "metric: latency_p99\n      threshold: 5000\n" W A, 6, 18, "over an hour"},
    {H "metric: latency_p99\n      threshold: 0\n" W A, 6, 18, "a latency is never below or at zero"},
    {H "metric: health_check_failures\n      threshold: -1\n" W A, 6, 18, "a failure count is never negative"},
    {H M "      threshold: 0\n      op: \"<\"\n" W A, 6, 18, "can never fire"},
    {H M TH W "      dry_run: true\n" A, 5, 5, "every trigger of this rule is dry_run"},
    {H "expr: sum(rate(x[30s]))\n" TH A, 5, 13, "range [30s] in expr: is shorter than 4x"},
    {"rollback:\n  service: c\n  environment: p\n  match: {code: \"5.*\"}\n  triggers:\n    - " M TH W A,
     4, 17, "match: values are exact; \"5.*\" looks like a regex: use match_re:"},
    {"# nothing yet\n", 1, 1, "no rules in this file"},
    {"rollbacks: []\n", 1, 12, "rollbacks: is empty"},
};

static void test_warnings(void **st) {
  (void)st;
  int failed = 0;
  for (size_t i = 0; i < RC_ARRAY_SIZE(WARN); i++) {
    rc_ruleset_t s;
    rc_diags_t d;
    int rc = load(WARN[i].y, NULL, &s, &d);
    if (rc != 0 || d.errors != 0 || d.warnings != 1 || d.v[0].level != RC_DIAG_WARNING ||
        d.v[0].line != WARN[i].line || d.v[0].col != WARN[i].col ||
        strstr(d.v[0].msg, WARN[i].msg) == NULL) {
      fprintf(stderr, "warning case %zu: rc=%d want %d:%d '%s'\n%s", i, rc, WARN[i].line,
              WARN[i].col, WARN[i].msg, WARN[i].y);
      dump(&d);
      failed++;
    }
    rc_ruleset_free(&s);
    rc_diags_free(&d);
  }
  assert_int_equal(failed, 0);
  /* A configured scrape interval moves the bar: 30s windows are fine at 5s. */
  rc_rules_cfg_t cfg = {.scrape_interval_ms = 5000};
  rc_ruleset_t s;
  rc_diags_t d;
  assert_int_equal(load(H M TH "      window: 30s\n" A, &cfg, &s, &d), 0);
  assert_int_equal(d.n, 0);
  rc_ruleset_free(&s);
  rc_diags_free(&d);
  cfg.scrape_interval_ms = 60000;
  assert_int_equal(load(H M TH "      window: 3m\n" A, &cfg, &s, &d), 0);
  assert_int_equal(d.warnings, 1);
  assert_non_null(strstr(d.v[0].msg, "(1m)"));
  rc_ruleset_free(&s);
  rc_diags_free(&d);
}

/* ---- the bundled examples and `ripcord check` ------------------------------------------- */

static void example_path(char *buf, size_t cap, const char *name) {
  const char *src = getenv("RC_SRCDIR"); /* set by tests/meson.build */
  snprintf(buf, cap, "%s/rules/%s", src ? src : "..", name);
}

static void test_examples(void **st) {
  (void)st;
  static const char *const files[] = {"checkout.rollback.yml", "canary.rollback.yml"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(files); i++) {
    char path[4096];
    example_path(path, sizeof(path), files[i]);
    rc_ruleset_t s = {0};
    rc_diags_t d = {0};
    int rc = rc_rules_load_file(path, NULL, &s, &d);
    if (rc != 0 || d.n) dump(&d);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 0);
    assert_true(s.n >= 1);
    if (i == 1) { /* canary: expr triggers, one of them dry_run */
      int dry = 0, exprs = 0;
      for (uint32_t r = 0; r < s.n; r++)
        for (uint32_t t = 0; t < s.rules[r].ntriggers; t++) {
          dry += s.rules[r].triggers[t].dry_run;
          exprs += s.rules[r].triggers[t].metric == NULL;
        }
      assert_int_equal(dry, 1);
      assert_true(exprs >= 2);
    }
    rc_ruleset_free(&s);
    rc_diags_free(&d);
  }
}

/* Runs rc_check_main with stdout sent to /dev/null. */
static int run_check(int argc, char **argv) {
  fflush(stdout);
  int saved = dup(1), nul = open("/dev/null", O_WRONLY);
  assert_true(saved >= 0 && nul >= 0);
  dup2(nul, 1);
  close(nul);
  int rc = rc_check_main(argc, argv);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  return rc;
}

static void test_check_main(void **st) {
  (void)st;
  char a[4096], b[4096], bad[] = "/tmp/test_rules_bad_XXXXXX";
  example_path(a, sizeof(a), "checkout.rollback.yml");
  example_path(b, sizeof(b), "canary.rollback.yml");
  int fd = mkstemp(bad);
  assert_true(fd >= 0);
  static const char y[] = "rollback:\n  service: x\n";
  assert_int_equal(write(fd, y, sizeof(y) - 1), (ssize_t)(sizeof(y) - 1));
  close(fd);
  char *ok[] = {"check", a, b};
  assert_int_equal(run_check(3, ok), 0);
  char *mixed[] = {"check", a, bad};
  assert_int_equal(run_check(3, mixed), 1);
  char *missing[] = {"check", "/nonexistent.yml"};
  assert_int_equal(run_check(2, missing), 1);
  char *none[] = {"check"};
  assert_int_equal(run_check(1, none), 2);
  char *opt[] = {"check", "--frobnicate", a};
  assert_int_equal(run_check(3, opt), 2);
  char *help[] = {"check", "--help"};
  assert_int_equal(run_check(2, help), 0);
  char *dashes[] = {"check", "--", a};
  assert_int_equal(run_check(3, dashes), 0);
  unlink(bad);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_seed),
      cmocka_unit_test(test_seed_unquoted),
      cmocka_unit_test(test_seed_verbatim),
      cmocka_unit_test(test_bad),
      cmocka_unit_test(test_all_or_nothing),
      cmocka_unit_test(test_quantity),
      cmocka_unit_test(test_duration),
      cmocka_unit_test(test_rollbacks_list_and_match),
      cmocka_unit_test(test_expr_all_options),
      cmocka_unit_test(test_expr_comparison),
      cmocka_unit_test(test_cfg_and_file_templates),
      cmocka_unit_test(test_warnings),
      cmocka_unit_test(test_examples),
      cmocka_unit_test(test_check_main),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
