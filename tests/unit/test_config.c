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

static void test_identities(void **st) {
  (void)st;
  const char *y = "identities:\n"
                  "  - name: alice\n"
                  "    roles: [approver, viewer]\n"
                  "    groups: [sre]\n"
                  "    token_env: RIPCORD_TOKEN_ALICE\n"
                  "  - name: prometheus@k8s.local\n"
                  "    roles:\n      - writer\n"
                  "    token_file: /run/secrets/prom\n"
                  "  - {name: root-1_x, roles: [admin, writer, deployer], groups: [], "
                  "token_env: T}\n";
  rc_config_t c;
  rc_err_t e = {0};
  if (rc_config_parse("i.yml", y, strlen(y), &c, &e) != 0) fail_msg("%s", e.msg);
  assert_int_equal(c.n_identities, 3);
  const rc_identity_cfg_t *a = &c.identities[0], *p = &c.identities[1], *r = &c.identities[2];
  assert_string_equal(a->name, "alice");
  assert_int_equal(a->nroles, 2);
  assert_string_equal(a->roles[0], "approver");
  assert_string_equal(a->roles[1], "viewer");
  assert_int_equal(a->ngroups, 1);
  assert_string_equal(a->groups[0], "sre");
  assert_string_equal(a->token_env, "RIPCORD_TOKEN_ALICE");
  assert_null(a->token_file);
  assert_int_equal(a->line, 2);
  assert_int_equal(a->col, 5);
  assert_string_equal(p->name, "prometheus@k8s.local");
  assert_int_equal(p->nroles, 1);
  assert_string_equal(p->roles[0], "writer");
  assert_int_equal(p->ngroups, 0);
  assert_null(p->groups);
  assert_null(p->token_env);
  assert_string_equal(p->token_file, "/run/secrets/prom");
  assert_int_equal(p->line, 6);
  assert_string_equal(r->name, "root-1_x");
  assert_int_equal(r->nroles, 3);
  assert_string_equal(r->roles[2], "deployer");
  assert_int_equal(r->ngroups, 0);
  assert_string_equal(r->token_env, "T");
  assert_int_equal(r->line, 10);
  rc_config_free(&c);
  /* An explicitly empty list is open mode, as is a config without the key. */
  assert_int_equal(rc_config_parse("i.yml", "identities: []\n", 15, &c, &e), 0);
  assert_int_equal(c.n_identities, 0);
  assert_null(c.identities);
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
      {"receivers:\n  - name: a\n    url: http://x\n    url_env: U\n", 2, 5,
       "one of url, url_env and url_file"},
      {"receivers:\n  - name: a\n    url_env: U\n    url_file: /f\n", 2, 5,
       "one of url, url_env and url_file"},
      {"receivers:\n  - url: http://x\n", 2, 5, "needs a name and a url"},
      {"receivers:\n  - name: a\n    url: http://x\n    secret_env: A\n    secret_file: /f\n",
       2, 5, "secret_env or secret_file, not both"},
      {"receivers:\n  - {name: a, url: 'http://x'}\n  - {name: a, url: 'http://y'}\n", 3, 5,
       "duplicate receiver name"},
      {"receivers: []\nreceivers: []\n", 2, 1, "duplicate key \"receivers\""},
      /* identities: (issue 6). I is a valid identity's head, to vary one thing at a time. */
#define I "identities:\n  - name: a\n    roles: [viewer]\n"
      {"identities: x\n", 1, 13, "identities must be a list of mappings"},
      {"identities:\n  - x\n", 2, 5, "an identity must be a mapping"},
      {I "    token_env: A\n    rolez: [x]\n", 5, 5,
       "unknown key \"rolez\" in an identity (known: name, roles, groups, token_env, "
       "token_file)"},
      {I "    token: 0123456789abcdef\n", 4, 5,
       "tokens are never written in the config: use token_env (a variable) or token_file"},
      {"identities:\n  - name: a\n    roles: [viewer, root]\n    token_env: A\n", 3, 21,
       "unknown role \"root\" (known: writer, deployer, approver, admin, viewer)"},
      {"identities:\n  - name: a\n    roles: []\n    token_env: A\n", 3, 12,
       "roles must be a non-empty list"},
      {"identities:\n  - name: a\n    roles: viewer\n    token_env: A\n", 3, 12,
       "roles must be a non-empty list"},
      {"identities:\n  - name: a\n    roles:\n    token_env: A\n", 3, 11,
       "roles must be a non-empty list"},
      {"identities:\n  - name: a\n    roles: [viewer, \"\"]\n    token_env: A\n", 3, 21,
       "roles entries must be non-empty strings"},
      {"identities:\n  - name: a\n    token_env: A\n", 2, 5, "an identity needs roles"},
      {"identities:\n  - roles: [viewer]\n    token_env: A\n", 2, 5, "an identity needs a name"},
      {"identities:\n  - name: \"\"\n    roles: [viewer]\n    token_env: A\n", 2, 11,
       "name must be a non-empty string"},
      {"identities:\n  - name: al ice\n    roles: [viewer]\n    token_env: A\n", 2, 11,
       "a name is 1 to 64 characters of A-Z a-z 0-9 . _ @ -"},
      {"identities:\n  - name: \"a:b\"\n    roles: [viewer]\n    token_env: A\n", 2, 11,
       "a name is 1 to 64 characters"},
      {"identities:\n  - name: \"a\\0b\"\n    roles: [viewer]\n    token_env: A\n", 2, 11,
       "a name is 1 to 64 characters"},
      {"identities:\n  - name: "
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" /* 65 */
       "    roles: [viewer]\n    token_env: A\n", 2, 11, "a name is 1 to 64 characters"},
      {I "    token_env: A\n  - name: b\n    roles: [writer]\n    token_env: B\n"
         "  - name: a\n    roles: [writer]\n    token_env: C\n", 8, 11,
       "duplicate identity name \"a\" (first at line 2)"},
      {I, 2, 5, "an identity needs token_env or token_file"},
      {I "    token_env: A\n    token_file: /run/a\n", 2, 5,
       "an identity takes token_env or token_file, not both"},
      {I "    token_env: A\n    token_env: B\n", 5, 5, "duplicate key \"token_env\" in an identity"},
      {I "    token_env: \"\"\n", 4, 16, "token_env must be a non-empty string"},
      {I "    token_file: [a]\n", 4, 17, "token_file must be a non-empty string"},
      {I "    token_env: A\n    groups: sre\n", 5, 13, "groups must be a list of names"},
      {I "    token_env: A\n    groups: [sre, {a: b}]\n", 5, 19,
       "groups entries must be non-empty strings"},
      {"identities: []\nidentities: []\n", 2, 1, "duplicate key \"identities\""},
      {"identity: []\n", 1, 1, "(known: rule_files, select, rules, receivers, identities, "
                               "approvals)"},
      {"approvals: x\n", 1, 12, "approvals must be a list of mappings"},
      {"approvals:\n  - production\n", 2, 5, "an approvals entry must be a mapping"},
      {"approvals:\n  - required: 2\n", 2, 5, "needs an environment"},
      {"approvals:\n  - environment: production\n    requierd: 2\n", 3, 5,
       "unknown key \"requierd\" in an approvals entry"},
      {"approvals:\n  - environment: production\n    required: 0\n", 3, 15, "1 to 16"},
      {"approvals:\n  - environment: production\n    required: two\n", 3, 15, "1 to 16"},
      {"approvals:\n  - environment: production\n    timeout: soon\n", 3, 14, "from 1s to 7d"},
      {"approvals:\n  - environment: production\n    timeout: 8d\n", 3, 14, "from 1s to 7d"},
      {"approvals:\n  - environment: production\n    when: sometimes\n", 3, 11,
       "when must be needed or always"},
      {"approvals:\n  - environment: production\n    approvers: alice\n", 3, 16,
       "approvers must be a list of names"},
      {"approvals:\n  - environment: production\n    approvers: []\n", 2, 5,
       "nobody could approve"},
      {"approvals:\n  - environment: production\n    approver_groups: [\"\"]\n", 3, 23,
       "approver_groups entries must be non-empty strings"},
      {"approvals:\n  - environment: production\n    required: 2\n    required: 3\n", 4, 5,
       "duplicate key \"required\" in an approvals entry"},
      {"approvals:\n  - {environment: prod}\n  - {environment: prod}\n", 3, 19,
       "duplicate approvals entry for environment \"prod\" (first at line 2)"},
      {"approvals: []\napprovals: []\n", 2, 1, "duplicate key \"approvals\""},
      {"approvals:\n  - environment: production\n    rehearse_in: \"*\"\n", 3, 18,
       "rehearse_in names one environment, not \"*\""},
      {"approvals:\n  - environment: production\n    rehearse_in: production\n", 2, 5,
       "rehearse_in must name another environment than the entry's own"},
      {"approvals:\n  - environment: production\n    rehearse_in: []\n", 3, 18,
       "approvals: rehearse_in must be a non-empty string"},
#undef I
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

static void test_approvals_cfg(void **st) {
  (void)st;
  static const char y[] = "approvals:\n"
                          "  - environment: production\n"
                          "    required: 3\n"
                          "    approvers: [alice, bob]\n"
                          "    approver_groups: [sre]\n"
                          "    timeout: 15m\n"
                          "    when: always\n"
                          "    rehearse_in: staging\n"
                          "  - environment: \"*\"\n"
                          "    required: 1\n";
  rc_config_t c;
  rc_err_t e = {0};
  if (rc_config_parse("a.yml", y, strlen(y), &c, &e) != 0) fail_msg("%s", e.msg);
  assert_int_equal(c.n_approvals, 2);
  assert_string_equal(c.approvals[0].environment, "production");
  assert_int_equal(c.approvals[0].policy.required, 3);
  assert_int_equal(c.approvals[0].policy.when_always, 1);
  assert_true(c.approvals[0].policy.timeout_ms == 15 * 60000);
  assert_int_equal(c.approvals[0].policy.napprovers, 2);
  assert_string_equal(c.approvals[0].policy.approvers[1], "bob");
  assert_string_equal(c.approvals[0].policy.groups[0], "sre");
  assert_int_equal(c.approvals[0].policy.has_approvers, 1);
  assert_string_equal(c.approvals[0].policy.rehearse_in, "staging");
  assert_null(c.approvals[1].policy.rehearse_in);
  assert_string_equal(c.approvals[1].environment, "*");
  assert_int_equal(c.approvals[1].policy.when_always, -1);
  assert_int_equal(c.approvals[1].policy.has_approvers, 0);
  rc_config_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ok),
      cmocka_unit_test(test_bundled_example),
      cmocka_unit_test(test_bad),
      cmocka_unit_test(test_approvals_cfg),
      cmocka_unit_test(test_rules_settings),
      cmocka_unit_test(test_identities),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
