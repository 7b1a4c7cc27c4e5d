/* fuzz_presets.c: webhook payload rendering (rc_preset_build) on arbitrary event JSON, for
 * every preset. The first byte picks the preset and whether a target and a ref are given; the
 * rest is the event. A built body must be valid JSON (it goes to another system's parser),
 * and the extra header line must hold no CR or LF (header injection). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "presets.h"

static const char *const types[] = {"generic", "slack", "pagerduty", "github", "gitlab",
                                    "alertmanager"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const char *type = types[data[0] % 6];
  char *ev = malloc(size);
  if (ev == NULL) return 0;
  memcpy(ev, data + 1, size - 1);
  ev[size - 1] = 0; /* the outbox keeps events as C strings */
  rc_preset_out_t out;
  memset(&out, 0, sizeof(out));
  const char *target = (data[0] & 8) ? "#deploys" : NULL;
  const char *ref = (data[0] & 16) ? "main" : NULL;
  if (rc_preset_build(type, ev, "r", target, "not-a-secret-fuzz-only", ref, &out) == 0) {
    json_t *doc = out.body ? json_loads(out.body, 0, NULL) : NULL;
    if (doc == NULL || strpbrk(out.header, "\r\n") != NULL) abort();
    json_decref(doc);
  }
  free(out.body);
  free(ev);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char event[] =
      "{\"created_at\":1795754528493,\"dry_run\":false,\"environment\":\"production\","
      "\"from\":{\"artifact\":\"reg/checkout:1.1.0\",\"deploy_id\":2,\"version\":\"1.1.0\"},"
      "\"idempotency_key\":\"be4db5e4ef54ba43e8cbed161a75f984\",\"kind\":\"rollback\","
      "\"migrations_to_undo\":[\"m2\"],\"reason\":\"\",\"service\":\"checkout\",\"status\":"
      "\"rollback\",\"to\":{\"artifact\":\"reg/checkout:1.0.0\",\"version\":\"1.0.0\"},"
      "\"trigger\":{\"name\":\"bad\",\"op\":\">=\",\"rule_file\":\"r.yml\",\"threshold\":1.0,"
      "\"value\":3.0,\"window_ms\":0}}";
  static const char resolve[] = "{\"kind\":\"resolve\",\"resolves\":\"abc\",\"service\":\"s\"}";
  uint8_t buf[sizeof(event) + 1];
  for (int t = 0; t < 6 + 24; t += 1) {
    buf[0] = (uint8_t)t;
    memcpy(buf + 1, event, sizeof(event) - 1);
    emit(buf, sizeof(event));
  }
  buf[0] = 2; /* pagerduty resolve */
  memcpy(buf + 1, resolve, sizeof(resolve) - 1);
  emit(buf, sizeof(resolve));
  /* Regression: libFuzzer's first find (2026-11-27) — the generic preset passed an event that
   * was not JSON through as its body. */
  static const uint8_t not_json[] = {0xf6, 0xef};
  emit(not_json, sizeof(not_json));
}
