/* fuzz_config.c: rc_config_parse() on arbitrary YAML. */
#include <string.h>

#include "config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rc_config_t c;
  rc_err_t e;
  if (rc_config_parse("fuzz.yml", (const char *)data, size, &c, &e) == 0) rc_config_free(&c);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "rule_files:\n  - \"*.rules.yml\"\n  - b.yml\n",
      "# only a comment\n",
      "rule_files: [a, b, 'c']\n",
      "---\nrule_files:\n...\n",
      "rules:\n  service_label: app\n  environment_label: env\n  scrape_interval: 15s\n",
      "receivers:\n  - name: deploy\n    type: generic\n    url: http://127.0.0.1:9/h\n"
      "    secret_env: X\n    timeout: 2s\n    deadline: 1h\n"
      "  - name: gl\n    type: gitlab\n    url: https://g/api\n    ref: main\n"
      "    secret_file: /s\n",
      "identities:\n  - name: alice\n    roles: [approver, viewer]\n    groups: [sre]\n"
      "    token_env: RIPCORD_TOKEN_ALICE\n"
      "  - name: prometheus\n    roles:\n      - writer\n    token_file: /run/secrets/prom\n"
      "  - {name: ops@x, roles: [admin], groups: [], token_env: T}\n",
      "approvals:\n  - {environment: production, required: 2, approver_groups: [sre],"
      " timeout: 30m, rehearse_in: staging}\n  - environment: \"*\"\n    when: needed\n",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    emit((const uint8_t *)seeds[i], strlen(seeds[i]));
}
