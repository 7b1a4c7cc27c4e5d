/* fuzz_deploys.c: rc_deploys_record_json() on arbitrary bytes, into a real database in a
 * temporary directory (opened once, synchronous=OFF so that each input costs no fsync).
 * Accepted deploys must read back: the current deploy of their target exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "db.h"
#include "deploys.h"
#include "fuzz.h"

static rc_db_t *g_db;

static void cleanup(void) {
  rc_db_close(g_db);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (g_db == NULL) {
    char dir[] = "/tmp/rc-fuzz-deploys-XXXXXX";
    rc_err_t err = {0};
    if (mkdtemp(dir) == NULL || rc_db_open(dir, &g_db, &err) != 0) abort();
    sqlite3_exec(rc_db_handle(g_db), "PRAGMA synchronous=OFF", NULL, NULL, NULL);
    atexit(cleanup);
  }
  rc_err_t err = {0};
  int64_t id;
  if (rc_deploys_record_json(g_db, (const char *)data, size, 1000, "fuzz", NULL, &id, &err) != 0) return 0;
  /* Accepted: it must be in the registry under its own target. */
  json_t *o = json_loadb((const char *)data, size, 0, NULL);
  rc_deploy_t d;
  if (id <= 0 || o == NULL ||
      rc_deploys_current(g_db, json_string_value(json_object_get(o, "service")),
                         json_string_value(json_object_get(o, "environment")), &d) != 0)
    abort();
  json_decref(o);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\"}",
      "{\"service\":\"checkout\",\"environment\":\"production\",\"version\":\"1.2.0\","
      "\"artifact\":\"reg/checkout:1.2.0\",\"deployer\":\"ci\",\"started_at\":"
      "\"2026-11-27T03:00:00.5+01:00\",\"is_rollback\":false,\"migrations\":[{\"id\":\"m1\","
      "\"reversible\":true,\"applied_at\":1795000000000}]}",
      "{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"started_at\":1}",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    emit((const uint8_t *)seeds[i], strlen(seeds[i]));
}
