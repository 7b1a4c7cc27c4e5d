/* fuzz_rules.c: rc_rules_load_buffer() on arbitrary bytes — YAML syntax, the schema checks,
 * the position arithmetic inside scalars (raw_index walks the source by the scalar's style,
 * the riskiest code in rules.c), templates and PromQL. A load must never crash or leak,
 * whatever it reports; a successful one must leave a rule set that frees cleanly. */
#include <string.h>

#include "fuzz.h"
#include "rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rc_ruleset_t set = {0};
  rc_diags_t d = {0};
  rc_rules_cfg_t cfg = {.environment_label = "namespace", .scrape_interval_ms = 30000};
  rc_rules_load_buffer("fuzz.yml", (const char *)data, size, (size & 1) ? &cfg : NULL, &set, &d);
  rc_ruleset_free(&set);
  rc_diags_free(&d);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      /* the seed example, channel quoted */
      "rollback:\n  service: checkout\n  environment: production\n  triggers:\n"
      "    - metric: error_rate\n      threshold: 5%\n      window: 5m\n"
      "    - metric: latency_p99\n      threshold: 2000ms\n      window: 5m\n"
      "    - metric: health_check_failures\n      threshold: 3\n      window: 1m\n"
      "  action:\n    type: previous_version\n    notify:\n"
      "      - slack: \"#deployments\"\n      - pagerduty: on-call\n",
      /* the seed's gotcha */
      "rollback:\n  service: a\n  environment: b\n  triggers: [{metric: error_rate, threshold: 1, "
      "window: 5m}]\n  action:\n    type: previous_version\n    notify:\n      - slack: #x\n",
      /* expr triggers in every scalar style, with all options */
      "rollbacks:\n  - service: c\n    environment: p\n    match: {job: api}\n"
      "    match_re: {code: \"5..\"}\n    triggers:\n"
      "      - expr: |\n          sum(rate(x{a=\"b\"}[5m]))\n            / sum(rate(y[5m]))\n"
      "        op: \">\"\n        threshold: 2\n        for: 1m\n        keep_firing_for: 1m30s\n"
      "        min_samples: 3\n        min_requests: 10\n"
      "        requests_expr: 'sum(increase(x[5m]))'\n        no_data: alert\n"
      "        warn_threshold: 1.5\n        resolve_threshold: 1\n        dry_run: true\n"
      "      - expr: >\n          max(up)\n        threshold: 1\n        op: <\n"
      "      - expr: \"sum(rate(z{q=\\\"\\\\\\\"\\\"}[1m]))\"\n        threshold: 0.5\n"
      "    action: {type: previous_version, notify: [{webhook: bot}]}\n",
      /* per-file templates */
      "metrics:\n  error_rate:\n    expr: sum(rate(e{{{selector}}}[{{window}}]))\n"
      "    requests_expr: sum(increase(r{{{selector}}}[{{window}}]))\n"
      "rollback: {service: s, environment: e, triggers: [{metric: error_rate, threshold: 1%, "
      "window: 2m, min_requests: 5}], action: {type: previous_version}}\n",
      /* syntax gotchas */
      "rollback:\n\tservice: x\n",
      "rollback:\n  triggers:\n    - op: >=\n      dry_run: yes\n      threshold: 5 %\n",
      "a: &x {}\nb: *x\n---\nc: 1\n",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    emit((const uint8_t *)seeds[i], strlen(seeds[i]));
}
