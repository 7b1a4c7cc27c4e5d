/* test_ruletest.c: `ripcord test`'s parsers — promtool's expanding notation (good and bad
 * tables) and the test file (a bad-input table, each case with its file:line:col message).
 * Running tests through the engine is covered by tests/integration/test_ruletest.py on real
 * files, through the binary. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"
#include "rc.h"
#include "ruletest.h"

#define M RC_RT_MISSING
#define S RC_RT_STALE

typedef struct {
  const char *in;
  size_t n;
  rc_rt_value_t want[12];
} good_t;

static void test_values_good(void **st) {
  (void)st;
  static const good_t cases[] = {
      {"1 2 3", 3, {{0, 1}, {0, 2}, {0, 3}}},
      {"-2+4x3", 4, {{0, -2}, {0, 2}, {0, 6}, {0, 10}}},
      {" 1-2x4", 5, {{0, 1}, {0, -1}, {0, -3}, {0, -5}, {0, -7}}},
      {"1x4", 5, {{0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}}},
      {"1 _x3 stale", 5, {{0, 1}, {M, 0}, {M, 0}, {M, 0}, {S, 0}}},
      {"_ 5", 2, {{M, 0}, {0, 5}}},
      {"1e3+1e2x2", 3, {{0, 1000}, {0, 1100}, {0, 1200}}},
      {"1e+3+2x1", 2, {{0, 1000}, {0, 1002}}},
      {"0x2", 3, {{0, 0}, {0, 0}, {0, 0}}}, /* not hex: 0, twice more */
      {"+Inf -Inf", 2, {{0, INFINITY}, {0, -INFINITY}}},
      {"\t7\n8  ", 2, {{0, 7}, {0, 8}}},
      {"", 0, {{0, 0}}},
      {"_x0 1", 1, {{0, 1}}},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    rc_rt_value_t *v = NULL;
    size_t n = 0;
    rc_err_t err = {0};
    int rc = rc_ruletest_parse_values(cases[i].in, strlen(cases[i].in), 1000, &v, &n, &err);
    if (rc != 0) fail_msg("case %zu \"%s\": %s", i, cases[i].in, err.msg);
    assert_int_equal(n, cases[i].n);
    for (size_t k = 0; k < n; k++) {
      assert_int_equal(v[k].kind, cases[i].want[k].kind);
      if (v[k].kind == RC_RT_NUM && v[k].v != cases[i].want[k].v)
        fail_msg("case %zu \"%s\" value %zu: %g, want %g", i, cases[i].in, k, v[k].v,
                 cases[i].want[k].v);
    }
    free(v);
  }
  /* NaN compares unequal to itself: on its own. */
  rc_rt_value_t *v = NULL;
  size_t n = 0;
  rc_err_t err = {0};
  assert_int_equal(rc_ruletest_parse_values("NaN", 3, 10, &v, &n, &err), 0);
  assert_int_equal(n, 1);
  assert_true(isnan(v[0].v));
  free(v);
}

typedef struct {
  const char *in;
  size_t max;
  int rc, col;
  const char *msg;
} bad_t;

static void test_values_bad(void **st) {
  (void)st;
  static const bad_t cases[] = {
      {"abc", 100, RC_EPARSE, 1, "\"abc\": not a value"},
      {"1 2 x3", 100, RC_EPARSE, 5, "\"x3\": not a value"},
      {"1+2", 100, RC_EPARSE, 1, "\"1+2\": a+b needs a count: a+bxn"},
      {"1 stalex2", 100, RC_EPARSE, 3, "\"stalex2\": stale cannot be repeated"},
      {"1+Infx2", 100, RC_EPARSE, 1, "\"1+Infx2\": not a value"},
      {"0x1p3", 100, RC_EPARSE, 1, "not a value"},
      {"1x99999999", 100, RC_ELIMIT, 1, "repeat count too large"},
      {"1 2 3x5", 6, RC_ELIMIT, 5, "\"3x5\": more values than the limit"},
      {"_x7", 6, RC_ELIMIT, 1, "more values than the limit"},
      {"1..2", 100, RC_EPARSE, 1, "not a value"},
      {"1+-2x3", 100, RC_EPARSE, 1, "not a value"},
      {"--1", 100, RC_EPARSE, 1, "not a value"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    rc_rt_value_t *v = NULL;
    size_t n = 0;
    rc_err_t err = {0};
    int rc = rc_ruletest_parse_values(cases[i].in, strlen(cases[i].in), cases[i].max, &v, &n, &err);
    if (rc != cases[i].rc || err.col != cases[i].col || strstr(err.msg, cases[i].msg) == NULL)
      fail_msg("case %zu \"%s\": rc %d col %d \"%s\"; want rc %d col %d \"%s\"", i, cases[i].in,
               rc, err.col, err.msg, cases[i].rc, cases[i].col, cases[i].msg);
    assert_null(v);
    assert_int_equal(n, 0);
  }
}

typedef struct {
  const char *yaml;
  const char *want; /* "line:col: message" of the first error, a substring of it */
} file_bad_t;

#define HEAD "rule_files: [r.yml]\n"
#define SERIES "    input_series:\n      - series: 'up{job=\"a\"}'\n        values: '1 2'\n"
#define EXPECT "    expect_triggers:\n      - {eval_time: 1m, trigger: t, state: firing}\n"

static void test_file_bad(void **st) {
  (void)st;
  static const file_bad_t cases[] = {
      {"", "t.yml:1:1: the file is empty"},
      {"tests: []\n", "1:1: a test file needs rule_files:"},
      {"rule_files: r.yml\ntests: []\n", "1:13: rule_files must be a list, not a string"},
      {HEAD "tets: []\n", "2:1: unknown key \"tets\" in a test file"},
      {HEAD "tests: []\ntests: []\n", "3:1: duplicate key \"tests\" in a test file (first at line 2)"},
      {HEAD "tests:\n  - name: x\n" SERIES, "3:5: a test needs expect_triggers: or expect_rollbacks:"},
      {HEAD "tests:\n  - input_series:\n      - series: 'up'\n        values: '1 x 3'\n" EXPECT,
       "5:20: values: \"x\": not a value"},
      {HEAD "tests:\n  - input_series:\n      - series: 'up{job=~\"a\"}'\n        values: '1'\n" EXPECT,
       "4:17: series: label job must be given with =, not a matcher"},
      {HEAD "tests:\n  - input_series:\n      - series: '{job=\"a\"}'\n        values: '1'\n" EXPECT,
       "4:17: series: no metric name"},
      {HEAD "tests:\n  - input_series:\n      - series: 'up{job=\"a\"'\n        values: '1'\n" EXPECT,
       "4:17: series:"},
      {HEAD "tests:\n  - deploys:\n      - {service: s, environment: e, at: 1m}\n" EXPECT,
       "4:9: a deploy needs version:"},
      {HEAD "tests:\n  - deploys:\n      - {service: s, environment: e, version: v}\n" EXPECT,
       "4:9: a deploy needs at:"},
      {HEAD "tests:\n  - deploys:\n      - {service: s, environment: e, version: v, at: soon}\n" EXPECT,
       "4:54: at: not a duration"},
      {HEAD "tests:\n  - expect_triggers:\n      - {eval_time: 1m, trigger: t, state: burning}\n",
       "4:44: state must be inactive, pending or firing, not \"burning\""},
      {HEAD "tests:\n  - expect_triggers:\n      - {eval_time: 1m, state: firing}\n",
       "4:9: needs trigger:"},
      {HEAD "tests:\n  - expect_triggers:\n      - {eval_time: 1m, trigger: t, state: firing, value: lots}\n",
       "4:59: value: \"lots\" is not a number"},
      {HEAD "tests:\n  - expect_rollbacks:\n      - {outcome: rolled}\n",
       "4:19: outcome must be one of rollback"},
      {HEAD "tests:\n  - expect_rollbacks: {a: 1}\n", "3:23: expect_rollbacks must be a list, not a mapping"},
      {HEAD "evaluation_interval: 0\ntests: []\n", "2:22: evaluation_interval must be more than 0"},
      {HEAD "tests:\n  - interval: -1m\n" EXPECT, "3:15: interval:"},
      {HEAD "tests: [\n", "t.yml:3:1:"},
      {HEAD "tests:\n  - deploys:\n      - {service: s, environment: e, version: v, at: 1m, migrations: [{id: m1}]}\n" EXPECT,
       "a migration needs reversible: true or false"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    rc_diags_t d = {0};
    rc_ruletest_suite_t *s = NULL;
    int rc = rc_ruletest_parse("t.yml", cases[i].yaml, strlen(cases[i].yaml), &s, &d);
    char got[600] = "(no diagnostic)";
    if (d.n > 0)
      snprintf(got, sizeof(got), "%s:%d:%d: %s", d.v[0].file, d.v[0].line, d.v[0].col, d.v[0].msg);
    if (rc != RC_EPARSE || s != NULL || strstr(got, cases[i].want) == NULL)
      fail_msg("case %zu: rc %d, first diagnostic \"%s\"; want \"%s\"", i, rc, got, cases[i].want);
    rc_diags_free(&d);
  }
}

static void test_file_good(void **st) {
  (void)st;
  const char *y = HEAD "config_file: c.yml\nevaluation_interval: 30s\nrollback_cooldown: 0\n"
                       "tests:\n  - name: n\n    interval: 15s\n"
                       "    deploys:\n      - {service: s, environment: e, version: v1, at: 0s,"
                       " migrations: [{id: m1, reversible: true}]}\n" SERIES EXPECT
                       "    expect_rollbacks: []\n  - expect_rollbacks:\n";
  rc_diags_t d = {0};
  rc_ruletest_suite_t *s = NULL;
  int rc = rc_ruletest_parse("t.yml", y, strlen(y), &s, &d);
  if (rc != 0) {
    rc_diags_print(&d, stderr);
    fail_msg("a good file was refused");
  }
  assert_non_null(s);
  rc_ruletest_suite_free(s);
  rc_diags_free(&d);
}

/* rc_buf_read_file, which the test, rule, config and secret-scan loaders read files with:
 * the limit exactly, one byte over, an empty file, NUL termination, appending. */
static void test_read_file(void **st) {
  (void)st;
  static const size_t sizes[] = {0, 1, 8191, 8192, 8193, 100000};
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    FILE *f = tmpfile();
    assert_non_null(f);
    for (size_t k = 0; k < sizes[i]; k++) fputc('a' + (int)(k % 26), f);
    for (int over = 0; over < 2; over++) {
      rewind(f);
      rc_buf_t b;
      rc_buf_init(&b);
      rc_buf_append(&b, "x", 1); /* appended after what is there */
      size_t max = over ? (sizes[i] ? sizes[i] - 1 : 0) : sizes[i];
      int rc = rc_buf_read_file(&b, f, max);
      if (over && sizes[i] > 0) {
        assert_int_equal(rc, RC_ELIMIT);
        assert_int_equal(b.len, 1 + max);
      } else {
        assert_int_equal(rc, 0);
        assert_int_equal(b.len, 1 + sizes[i]);
        for (size_t k = 0; k < sizes[i]; k++) assert_int_equal(b.data[1 + k], 'a' + (int)(k % 26));
      }
      assert_int_equal(b.data[b.len], '\0');
      rc_buf_free(&b);
    }
    fclose(f);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_read_file),
      cmocka_unit_test(test_values_good),
      cmocka_unit_test(test_values_bad),
      cmocka_unit_test(test_file_bad),
      cmocka_unit_test(test_file_good),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
