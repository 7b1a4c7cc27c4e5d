/* test_config.c: the daemon config file — the bundled example loads, and bad files fail
 * with file:line:col and a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "selector.h"

static void test_ok(void **st) {
  (void)st;
  const char *y = "# comment\nrule_files:\n  - \"a/*.yml\"\n  - b.yml\n";
  rc_config_t c;
  rc_err_t e = {0};
  assert_int_equal(rc_config_parse("t.yml", y, strlen(y), &c, &e), 0);
  assert_int_equal(c.n_rule_files, 2);
  assert_string_equal(c.rule_files[0], "a/*.yml");
  rc_config_free(&c);
  const char *y2 = "select:\n  - 'up{job=\"api\"}'\n  - http_requests_total\n";
  assert_int_equal(rc_config_parse("t.yml", y2, strlen(y2), &c, &e), 0);
  assert_int_equal(c.n_select, 2);
  assert_string_equal(c.select[0], "up{job=\"api\"}");
  assert_int_equal(c.select_line[0], 2);
  assert_int_equal(c.select_col[0], 6); /* first character inside the quotes */
  assert_int_equal(c.select_col[1], 5);
  rc_config_free(&c);
  assert_int_equal(rc_config_parse("t.yml", "", 0, &c, &e), 0); /* empty file: defaults */
  assert_int_equal(c.n_rule_files, 0);
  rc_config_free(&c);
}

static void test_bundled_example(void **st) {
  (void)st;
  rc_config_t c;
  rc_err_t e = {0};
  /* meson passes the source tree in RC_SRCDIR (tests/meson.build). */
  const char *src = getenv("RC_SRCDIR");
  char path[4096];
  snprintf(path, sizeof(path), "%s/rules/ripcord.yml", src ? src : "..");
  int rc = rc_config_load(path, &c, &e);
  if (rc != 0) fail_msg("%s", e.msg);
  assert_true(c.n_rule_files >= 1);
  assert_true(rc_config_count_rule_files(&c, &e) >= 1);
  /* Its select: entries are selectors the daemon accepts. */
  assert_true(c.n_select >= 1);
  for (size_t i = 0; i < c.n_select; i++) {
    rc_selector_t *sel = NULL;
    if (rc_selector_parse(c.select[i], strlen(c.select[i]), 0, &sel, &e) != 0)
      fail_msg("select[%zu] %s: %s", i, c.select[i], e.msg);
    rc_selector_free(sel);
  }
  rc_config_free(&c);
}

static void test_rules_settings(void **st) {
  (void)st;
  const char *y = "rules:\n  environment_label: namespace\n  scrape_interval: 30s\n"
                  "  error_rate: 'sum(rate(errors_total{{{selector}}}[{{window}}]))'\n";
  rc_config_t c;
  rc_err_t e = {0};
  assert_int_equal(rc_config_parse("r.yml", y, strlen(y), &c, &e), 0);
  assert_string_equal(c.rules_set[RC_CFG_ENVIRONMENT_LABEL], "namespace");
  assert_string_equal(c.rules_set[RC_CFG_SCRAPE_INTERVAL], "30s");
  assert_string_equal(c.rules_set[RC_CFG_ERROR_RATE],
                      "sum(rate(errors_total{{{selector}}}[{{window}}]))");
  assert_null(c.rules_set[RC_CFG_SERVICE_LABEL]);
  assert_null(c.rules_set[RC_CFG_LATENCY_P99]);
  rc_config_free(&c);
}

static void test_bad(void **st) {
  (void)st;
  static const struct { const char *y; int line, col; const char *msg; } t[] = {
      {"rule_file:\n  - a\n", 1, 1, "unknown key \"rule_file\""},
      {"select: up\n", 1, 9, "select must be a list of selectors"},
      {"select:\n  - \"\"\n", 2, 5, "non-empty strings"},
      {"rule_files: a.yml\n", 1, 13, "must be a list"},
      {"rule_files:\n  - {a: b}\n", 2, 5, "non-empty strings"},
      {"- a\n- b\n", 1, 1, "must be a mapping"},
      {"rule_files: [a\n", 2, 1, "did not find expected ','"},
      {"rule_files: []\nrule_files: []\n", 2, 1, "duplicate key"},
      {"rule_files:\n  - a\n - b\n", 3, 2, "did not find expected key"},
      {"rule_files:\n\t- a\n", 2, 1, "cannot start any token"},
      {"rules: env\n", 1, 8, "rules must be a mapping"},
      {"rules:\n  env_label: x\n", 2, 3, "unknown key \"env_label\" under rules:"},
      {"rules:\n  latency_p99: \"\"\n", 2, 16, "rules.latency_p99 must be a non-empty string"},
      {"rules:\n  service_label: a\n  service_label: b\n", 3, 3, "duplicate key"},
      {"rules: {}\nrules: {}\n", 2, 1, "duplicate key \"rules\""},
      {"receivers: x\n", 1, 12, "receivers must be a list of mappings"},
      {"receivers:\n  - x\n", 2, 5, "a receiver must be a mapping"},
      {"receivers:\n  - name: a\n    urls: http://x\n", 3, 5, "unknown key \"urls\" in a receiver"},
      {"receivers:\n  - name: a\n    url: http://x\n    secret: s3cr3t\n", 4, 5,
       "secrets are never written in the config"},
      {"receivers:\n  - name: a\n    url: ftp://x\n", 3, 10, "url must start with http://"},
      {"receivers:\n  - name: a\n    url: http://x\n    type: teams\n", 4, 11,
       "type must be generic, slack"},
      {"receivers:\n  - name: a\n    url: http://x\n    timeout: soon\n", 4, 14,
       "not a duration"},
      {"receivers:\n  - name: a\n    url: http://x\n    name: b\n", 4, 5,
       "duplicate key \"name\" in a receiver"},
      {"receivers:\n  - name: a\n    url: \"\"\n", 3, 10, "url must be a non-empty string"},
      {"receivers:\n  - name: a\n", 2, 5, "needs a name and a url"},
      {"receivers:\n  - url: http://x\n", 2, 5, "needs a name and a url"},
      {"receivers:\n  - name: a\n    url: http://x\n    secret_env: A\n    secret_file: /f\n",
       2, 5, "secret_env or secret_file, not both"},
      {"receivers:\n  - {name: a, url: 'http://x'}\n  - {name: a, url: 'http://y'}\n", 3, 5,
       "duplicate receiver name"},
      {"receivers: []\nreceivers: []\n", 2, 1, "duplicate key \"receivers\""},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    rc_config_t c;
    rc_err_t e = {0};
    int rc = rc_config_parse("bad.yml", t[i].y, strlen(t[i].y), &c, &e);
    if (rc != RC_EPARSE || e.line != t[i].line || e.col != t[i].col ||
        strstr(e.msg, t[i].msg) == NULL || strncmp(e.msg, "bad.yml:", 8) != 0)
      fail_msg("case %zu: rc=%d %d:%d '%s'", i, rc, e.line, e.col, e.msg);
  }
  rc_config_t c;
  rc_err_t e = {0};
  assert_int_equal(rc_config_load("/nonexistent/ripcord.yml", &c, &e), RC_EIO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok),
      cmocka_unit_test(test_bundled_example),
      cmocka_unit_test(test_bad),
      cmocka_unit_test(test_rules_settings),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
