/* fuzz_ruletest.c: the parsers of the rules-repo commands on arbitrary bytes — `ripcord
 * test`'s file (rc_ruletest_parse: YAML, schema, series selectors, deploy JSON), promtool's
 * expanding notation (rc_ruletest_parse_values, with a small limit so that counts hit it) and
 * `ripcord backtest`'s --from/--to (rc_backtest_parse_time). Nothing may crash or leak; an
 * expansion that succeeds must respect the limit. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "backtest.h"
#include "ruletest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rc_diags_t d = {0};
  rc_ruletest_suite_t *s = NULL;
  if (rc_ruletest_parse("fuzz.yml", (const char *)data, size, &s, &d) == 0)
    rc_ruletest_suite_free(s);
  rc_diags_free(&d);
  rc_rt_value_t *v = NULL;
  size_t n = 0;
  rc_err_t err = {0};
  if (rc_ruletest_parse_values((const char *)data, size, 4096, &v, &n, &err) == 0 && n > 4096)
    abort();
  free(v);
  if (size < 64) {
    char t[64];
    memcpy(t, data, size);
    t[size] = '\0';
    int64_t ms = 0;
    rc_backtest_parse_time(t, INT64_C(1764234000000), &ms, &err);
  }
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "rule_files: [checkout.rollback.yml]\nconfig_file: ripcord.yml\nevaluation_interval: 1m\n"
      "rollback_window: 24h\nrollback_cooldown: 0\ntests:\n"
      "  - name: burst\n    interval: 1m\n    deploys:\n"
      "      - {service: checkout, environment: production, version: v1, at: 0m}\n"
      "      - {service: checkout, environment: production, version: v2, at: 20m, is_rollback: "
      "false, artifact: a, deployer: d, migrations: [{id: m1, reversible: false}]}\n"
      "    input_series:\n"
      "      - series: 'http_requests_total{service=\"checkout\", env=\"production\", code=\"200\"}'\n"
      "        values: '0+600x25 15540+540x14'\n"
      "      - series: 'http_requests_total{service=\"checkout\", code=\"500\"}'\n"
      "        values: '0x25 60+60x14 _ _x3 stale'\n"
      "    expect_triggers:\n"
      "      - {eval_time: 24m, rule: checkout/production, trigger: error_rate, state: inactive}\n"
      "      - {eval_time: 30m, trigger: error_rate, state: firing, value: 0.1}\n"
      "    expect_rollbacks:\n"
      "      - {eval_time: 28m, trigger: error_rate, outcome: rollback, from: v2, to: v1}\n"
      "  - expect_rollbacks: []\n",
      "-2+4x3 1-2x4 1x4 1 _x3 stale 1e3+1e2x2 +Inf -Inf NaN 0x2",
      "tests: [{expect_rollbacks: [{outcome: cooldown}], input_series: [{series: '{__name__=\"a\"}', "
      "values: '1 2'}]}]\nrule_files: ['*.yml']\n",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    emit((const uint8_t *)seeds[i], strlen(seeds[i]));
}
