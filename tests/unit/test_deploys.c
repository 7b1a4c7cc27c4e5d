/* test_deploys.c: the embedded store's migrations (fresh, reopened, a newer schema refused)
 * and the deploy registry: recording from JSON with a bad-input table, history order by
 * start time, and "previous version" skipping rolled-back versions and redeploys of the
 * current one; GET /api/v1/services (every target with its current and previous version).
 * Each test works in its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <http_parser.h>
#include <jansson.h>

#include "db.h"
#include "deploys.h"

static char g_dir[64];

static int setup(void **st) {
  (void)st;
  snprintf(g_dir, sizeof(g_dir), "/tmp/rc-test-deploys-XXXXXX");
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **st) {
  (void)st;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static rc_db_t *open_db(void) {
  rc_db_t *db = NULL;
  rc_err_t err = {0};
  if (rc_db_open(g_dir, &db, &err) != 0) fail_msg("open: %s", err.msg);
  return db;
}

static int64_t record(rc_db_t *db, const char *json, int64_t now) {
  rc_err_t err = {0};
  int64_t id = 0;
  if (rc_deploys_record_json(db, json, strlen(json), now, NULL, NULL, &id, &err) != 0)
    fail_msg("record %s: %s", json, err.msg);
  return id;
}

static void test_migrations(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  assert_int_equal(rc_db_version(db), rc_db_known_version());
  record(db, "{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\"}", 1000);
  rc_db_close(db);
  db = open_db(); /* reopening applies nothing and keeps the data */
  assert_int_equal(rc_db_version(db), rc_db_known_version());
  rc_deploy_t d;
  assert_int_equal(rc_deploys_current(db, "s", "e", &d), 0);
  assert_string_equal(d.version, "1");
  /* A database from a newer ripcord is refused, not downgraded. */
  assert_int_equal(sqlite3_exec(rc_db_handle(db),
                                "INSERT INTO schema_migrations VALUES (999, 0)", NULL, NULL, NULL),
                   SQLITE_OK);
  rc_db_close(db);
  rc_db_t *db2 = NULL;
  rc_err_t err = {0};
  assert_int_equal(rc_db_open(g_dir, &db2, &err), RC_ENOTSUP);
  assert_non_null(strstr(err.msg, "newer than this ripcord knows"));
}

static void test_bad_json(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  static const struct { const char *json, *msg; } t[] = {
      {"", "invalid JSON"},
      {"[1]", "must be a JSON object"},
      {"{\"environment\":\"e\",\"version\":\"1\"}", "missing \"service\""},
      {"{\"service\":\"\",\"environment\":\"e\",\"version\":\"1\"}", "\"service\" must not be empty"},
      {"{\"service\":1,\"environment\":\"e\",\"version\":\"1\"}", "\"service\" must be a string"},
      {"{\"service\":\"s\",\"environment\":\"e\"}", "missing \"version\""},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"x\":1}", "unknown field \"x\""},
      {"{\"service\":\"s\",\"service\":\"t\",\"environment\":\"e\",\"version\":\"1\"}", "duplicate"},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"started_at\":\"yesterday\"}",
       "started_at"},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"started_at\":"
       "\"2026-11-27T03:00:00\"}", "with a zone"},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"is_rollback\":\"yes\"}",
       "\"is_rollback\" must be true or false"},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"migrations\":{}}",
       "\"migrations\" must be a list"},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"migrations\":[1]}",
       "migrations[0] must be an object"},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"migrations\":[{\"id\":\"a\"}]}",
       "migrations[0].reversible"},
      {"{\"service\":\"s\",\"environment\":\"e\",\"version\":\"1\",\"migrations\":"
       "[{\"id\":\"a\",\"reversible\":true},{\"id\":\"a\",\"reversible\":false}]}",
       "listed twice"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    rc_err_t err = {0};
    int64_t id;
    int rc = rc_deploys_record_json(db, t[i].json, strlen(t[i].json), 1000, NULL, NULL, &id, &err);
    if (rc != RC_EPARSE || strstr(err.msg, t[i].msg) == NULL)
      fail_msg("case %zu: rc %d '%s', want '%s'", i, rc, err.msg, t[i].msg);
  }
  /* Nothing of a refused deploy was written, not even its first migration. */
  rc_deploy_t d;
  assert_int_equal(rc_deploys_current(db, "s", "e", &d), RC_ENOENT);
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(rc_db_handle(db), "SELECT COUNT(*) FROM deploy_migrations",
                                      -1, &q, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), 0);
  sqlite3_finalize(q);
  rc_db_close(db);
}

/* rc_deploys_lookup's one walk agrees with current and previous asked one at a time; want_prev
 * NULL: there is none. */
static void lookup_is(rc_db_t *db, const char *want_cur, const char *want_prev) {
  rc_deploy_t cur, prev, one;
  int prc = -99, crc = rc_deploys_lookup(db, "svc", "prod", &cur, &prev, &prc);
  assert_int_equal(crc, want_cur ? 0 : RC_ENOENT);
  assert_int_equal(prc, want_prev ? 0 : RC_ENOENT);
  assert_int_equal(rc_deploys_current(db, "svc", "prod", &one), crc);
  if (want_cur) {
    assert_string_equal(cur.version, want_cur);
    assert_int_equal(cur.id, one.id);
  }
  assert_int_equal(rc_deploys_previous(db, "svc", "prod", &one), prc);
  if (want_prev) {
    assert_string_equal(prev.version, want_prev);
    assert_int_equal(prev.id, one.id);
  }
  /* Without prev: only the current one. */
  assert_int_equal(rc_deploys_lookup(db, "svc", "prod", &one, NULL, NULL), crc);
}

static void test_previous_version(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  rc_deploy_t d;
  assert_int_equal(rc_deploys_previous(db, "svc", "prod", &d), RC_ENOENT);
  lookup_is(db, NULL, NULL);
  record(db, "{\"service\":\"svc\",\"environment\":\"prod\",\"version\":\"v1\","
             "\"started_at\":\"2026-11-20T10:00:00Z\"}", 1);
  assert_int_equal(rc_deploys_previous(db, "svc", "prod", &d), RC_ENOENT); /* only one */
  lookup_is(db, "v1", NULL);
  int64_t v2 = record(db, "{\"service\":\"svc\",\"environment\":\"prod\",\"version\":\"v2\","
                          "\"started_at\":\"2026-11-21T10:00:00.250+01:00\"}", 2);
  record(db, "{\"service\":\"svc\",\"environment\":\"staging\",\"version\":\"v9\"}", 3);
  assert_int_equal(rc_deploys_previous(db, "svc", "prod", &d), 0);
  assert_string_equal(d.version, "v1");
  /* Recorded late but started earlier: history is by start time, not by arrival. */
  record(db, "{\"service\":\"svc\",\"environment\":\"prod\",\"version\":\"v0\","
             "\"started_at\":1700000000000}", 4);
  assert_int_equal(rc_deploys_current(db, "svc", "prod", &d), 0);
  assert_string_equal(d.version, "v2");
  assert_int_equal(d.started_at_ms, 1795251600250LL); /* 2026-11-21T09:00:00.250Z */
  record(db, "{\"service\":\"svc\",\"environment\":\"prod\",\"version\":\"v3\","
             "\"started_at\":\"2026-11-22T10:00:00Z\"}", 5);
  assert_int_equal(rc_deploys_previous(db, "svc", "prod", &d), 0);
  assert_string_equal(d.version, "v2");
  /* v2 was rolled back: never "previous" again. */
  assert_int_equal(rc_deploys_mark_rolled_back(db, v2), 0);
  assert_int_equal(rc_deploys_mark_rolled_back(db, 9999), RC_ENOENT);
  assert_int_equal(rc_deploys_previous(db, "svc", "prod", &d), 0);
  assert_string_equal(d.version, "v1");
  lookup_is(db, "v3", "v1");
  /* A redeploy of the current version is not a version to go back to. */
  record(db, "{\"service\":\"svc\",\"environment\":\"prod\",\"version\":\"v1\","
             "\"started_at\":\"2026-11-23T10:00:00Z\",\"is_rollback\":true}", 6);
  assert_int_equal(rc_deploys_current(db, "svc", "prod", &d), 0);
  assert_true(d.is_rollback);
  assert_int_equal(rc_deploys_previous(db, "svc", "prod", &d), 0);
  assert_string_equal(d.version, "v3");
  lookup_is(db, "v1", "v3");
  rc_db_close(db);
}

/* One request through rc_deploys_handle; the JSON answer parsed (NULL for a text one). */
static json_t *call(rc_db_t *db, int method, const char *path, const char *query, int *status) {
  rc_http_request_t req;
  memset(&req, 0, sizeof(req));
  req.method = method;
  req.path = path;
  req.path_len = strlen(path);
  req.query = query;
  req.query_len = query ? strlen(query) : 0;
  rc_http_response_t res;
  memset(&res, 0, sizeof(res));
  assert_int_equal(rc_deploys_handle(db, NULL, &req, NULL, &res), 1);
  *status = res.status;
  json_t *doc = json_loadb(res.body.data ? res.body.data : "", res.body.len, 0, NULL);
  rc_buf_free(&res.body);
  rc_buf_free(&res.headers);
  return doc;
}

static void test_services(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  int status;
  json_t *doc = call(db, HTTP_GET, "/api/v1/services", NULL, &status);
  assert_int_equal(status, 200);
  assert_int_equal(json_array_size(json_object_get(doc, "data")), 0);
  json_decref(doc);
  record(db, "{\"service\":\"web\",\"environment\":\"prod\",\"version\":\"1\",\"deployer\":\"ann\","
             "\"started_at\":1700000000000}", 1);
  record(db, "{\"service\":\"web\",\"environment\":\"prod\",\"version\":\"2\",\"artifact\":\"img:2\","
             "\"deployer\":\"bo\",\"started_at\":1700000060000}", 2);
  record(db, "{\"service\":\"api\",\"environment\":\"staging\",\"version\":\"7\"}", 3);
  record(db, "{\"service\":\"<img src=x onerror=alert(1)>\",\"environment\":\"e\",\"version\":\"x\"}", 4);
  doc = call(db, HTTP_GET, "/api/v1/services", NULL, &status);
  assert_int_equal(status, 200);
  json_t *data = json_object_get(doc, "data");
  assert_int_equal(json_array_size(data), 3);
  /* By service name (byte order): "<img..." < "api" < "web". */
  assert_string_equal(json_string_value(json_object_get(json_array_get(data, 0), "service")),
                      "<img src=x onerror=alert(1)>");
  json_t *api = json_array_get(data, 1), *web = json_array_get(data, 2);
  assert_string_equal(json_string_value(json_object_get(api, "service")), "api");
  assert_true(json_is_null(json_object_get(api, "previous")));
  assert_int_equal(json_integer_value(json_object_get(api, "deploys")), 1);
  json_t *cur = json_object_get(web, "current"), *prev = json_object_get(web, "previous");
  assert_string_equal(json_string_value(json_object_get(web, "environment")), "prod");
  assert_string_equal(json_string_value(json_object_get(cur, "version")), "2");
  assert_string_equal(json_string_value(json_object_get(cur, "artifact")), "img:2");
  assert_string_equal(json_string_value(json_object_get(cur, "deployer")), "bo");
  assert_int_equal(json_integer_value(json_object_get(cur, "started_at")), 1700000060000LL);
  assert_true(json_is_false(json_object_get(cur, "is_rollback")));
  assert_string_equal(json_string_value(json_object_get(prev, "version")), "1");
  assert_int_equal(json_integer_value(json_object_get(web, "deploys")), 2);
  json_decref(doc);
  /* limit, and what is refused. */
  doc = call(db, HTTP_GET, "/api/v1/services", "limit=1", &status);
  assert_int_equal(status, 200);
  assert_int_equal(json_array_size(json_object_get(doc, "data")), 1);
  json_decref(doc);
  const char *bad[] = {"limit=0", "limit=10001", "limit=abc", "limit=%zz", "limit=-1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    doc = call(db, HTTP_GET, "/api/v1/services", bad[i], &status);
    assert_int_equal(status, 400);
    assert_non_null(json_string_value(json_object_get(doc, "error")));
    json_decref(doc);
  }
  doc = call(db, HTTP_POST, "/api/v1/services", NULL, &status);
  assert_int_equal(status, 405);
  json_decref(doc);
  doc = call(NULL, HTTP_GET, "/api/v1/services", NULL, &status);
  assert_int_equal(status, 503);
  json_decref(doc);
  rc_db_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
      cmocka_unit_test_setup_teardown(test_previous_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_services, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
