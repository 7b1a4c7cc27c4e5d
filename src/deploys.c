/* deploys.c: the deploy registry and its HTTP API; see deploys.h. JSON in and out goes
 * through jansson; every SQL statement is prepared with bound parameters. */
#include "deploys.h"

#include <http_parser.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "log.h"

#define MAX_MIGRATIONS 1000

/* Accepts RFC 3339 with a zone (rc_parse_rfc3339), or a positive integer of ms. */
static int parse_time(json_t *v, int64_t *ms) {
  if (json_is_integer(v)) {
    *ms = (int64_t)json_integer_value(v);
    return *ms > 0 ? 0 : -1;
  }
  if (!json_is_string(v)) return -1;
  return rc_parse_rfc3339(json_string_value(v), ms);
}

/* A required or optional short string field. */
static int str_field(json_t *o, const char *key, int required, const char **out, rc_err_t *err) {
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if (v == NULL || json_is_null(v)) {
    if (required) return rc_err_set(err, RC_EPARSE, "missing \"%s\"", key);
    return 0;
  }
  if (!json_is_string(v)) return rc_err_set(err, RC_EPARSE, "\"%s\" must be a string", key);
  size_t n = json_string_length(v);
  if (n == 0 && required) return rc_err_set(err, RC_EPARSE, "\"%s\" must not be empty", key);
  if (n >= RC_DEPLOY_FIELD_MAX)
    return rc_err_set(err, RC_EPARSE, "\"%s\" is longer than %d bytes", key,
                      RC_DEPLOY_FIELD_MAX - 1);
  if (memchr(json_string_value(v), 0, n) != NULL)
    return rc_err_set(err, RC_EPARSE, "\"%s\" contains a NUL byte", key);
  *out = json_string_value(v);
  return 0;
}

static int step_done(sqlite3 *h, sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  (void)h;
  return rc == SQLITE_DONE ? 0 : RC_EIO;
}

int rc_deploys_record_json(rc_db_t *db, const char *json, size_t len, int64_t now_ms,
                           const char *recorded_by, rc_audit_t *audit, int64_t *id,
                           rc_err_t *err) {
  json_error_t je;
  json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
  if (o == NULL)
    return rc_err_set(err, RC_EPARSE, "invalid JSON at %d:%d: %s", je.line, je.column,
                      rc_err_printable(je.text, sizeof(je.text), je.text));
  int rc = 0;
  const char *service, *env, *version, *artifact, *deployer;
  if (!json_is_object(o)) rc = rc_err_set(err, RC_EPARSE, "the body must be a JSON object");
  if (rc == 0) rc = str_field(o, "service", 1, &service, err);
  if (rc == 0) rc = str_field(o, "environment", 1, &env, err);
  if (rc == 0) rc = str_field(o, "version", 1, &version, err);
  if (rc == 0) rc = str_field(o, "artifact", 0, &artifact, err);
  if (rc == 0) rc = str_field(o, "deployer", 0, &deployer, err);
  int64_t started = now_ms;
  json_t *sv = rc == 0 ? json_object_get(o, "started_at") : NULL;
  if (sv != NULL && !json_is_null(sv) && parse_time(sv, &started) != 0)
    rc = rc_err_set(err, RC_EPARSE, "\"started_at\" must be RFC 3339 with a zone "
                                    "(2026-11-27T03:00:00Z) or milliseconds since the epoch");
  json_t *rb = rc == 0 ? json_object_get(o, "is_rollback") : NULL;
  if (rb != NULL && !json_is_boolean(rb))
    rc = rc_err_set(err, RC_EPARSE, "\"is_rollback\" must be true or false");
  json_t *migs = rc == 0 ? json_object_get(o, "migrations") : NULL;
  if (migs != NULL && !json_is_null(migs) &&
      (!json_is_array(migs) || json_array_size(migs) > MAX_MIGRATIONS))
    rc = rc_err_set(err, RC_EPARSE, "\"migrations\" must be a list of at most %d entries",
                    MAX_MIGRATIONS);
  const char *known[] = {"service", "environment", "version", "artifact", "deployer",
                         "started_at", "is_rollback", "migrations"};
  const char *key;
  json_t *val;
  if (rc == 0)
    json_object_foreach(o, key, val) {
      int ok = 0;
      for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) ok |= !strcmp(key, known[i]);
      if (!ok) {
        char k[61];
        rc = rc_err_set(err, RC_EPARSE, "unknown field \"%s\"", rc_err_printable(k, sizeof(k), key));
        break;
      }
    }
  /* Validate every migration before writing anything. */
  size_t i;
  json_t *m;
  if (rc == 0 && json_is_array(migs))
    json_array_foreach(migs, i, m) {
      const char *mid;
      json_t *rev = json_object_get(m, "reversible");
      int64_t at;
      if (!json_is_object(m) || str_field(m, "id", 1, &mid, err) != 0) {
        if (!json_is_object(m)) rc_err_set(err, RC_EPARSE, "migrations[%zu] must be an object", i);
        rc = RC_EPARSE;
      } else if (!json_is_boolean(rev)) {
        rc = rc_err_set(err, RC_EPARSE, "migrations[%zu].reversible must be true or false", i);
      } else if (json_object_get(m, "applied_at") != NULL &&
                 parse_time(json_object_get(m, "applied_at"), &at) != 0) {
        rc = rc_err_set(err, RC_EPARSE, "migrations[%zu].applied_at is not a time", i);
      }
      if (rc != 0) break;
    }
  sqlite3 *h = rc_db_handle(db);
  if (rc == 0 && sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    rc = rc_err_set(err, RC_EIO, "database: %s", sqlite3_errmsg(h));
  int in_tx = rc == 0;
  sqlite3_stmt *st = NULL;
  if (rc == 0 && sqlite3_prepare_v2(h,
                                    "INSERT INTO deploys(service, environment, version, artifact,"
                                    " deployer, started_at, recorded_at, is_rollback, recorded_by)"
                                    " VALUES (?,?,?,?,?,?,?,?,?)", -1, &st, NULL) != SQLITE_OK)
    rc = rc_err_set(err, RC_EIO, "database: %s", sqlite3_errmsg(h));
  if (rc == 0) {
    sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, env, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, version, -1, SQLITE_STATIC);
    if (artifact) sqlite3_bind_text(st, 4, artifact, -1, SQLITE_STATIC);
    if (deployer) sqlite3_bind_text(st, 5, deployer, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, started);
    sqlite3_bind_int64(st, 7, now_ms);
    sqlite3_bind_int(st, 8, rb != NULL && json_is_true(rb));
    if (recorded_by) sqlite3_bind_text(st, 9, recorded_by, -1, SQLITE_STATIC);
    if (step_done(h, st) != 0) rc = rc_err_set(err, RC_EIO, "database: %s", sqlite3_errmsg(h));
    st = NULL;
  }
  int64_t new_id = rc == 0 ? sqlite3_last_insert_rowid(h) : 0;
  if (rc == 0 && json_is_array(migs))
    json_array_foreach(migs, i, m) {
      const char *mid = json_string_value(json_object_get(m, "id"));
      int64_t at = 0;
      json_t *av = json_object_get(m, "applied_at");
      int has_at = av != NULL && parse_time(av, &at) == 0;
      if (sqlite3_prepare_v2(h, "INSERT INTO deploy_migrations(deploy_id, migration_id,"
                                " reversible, applied_at) VALUES (?,?,?,?)", -1, &st,
                             NULL) != SQLITE_OK) {
        rc = rc_err_set(err, RC_EIO, "database: %s", sqlite3_errmsg(h));
        break;
      }
      sqlite3_bind_int64(st, 1, new_id);
      sqlite3_bind_text(st, 2, mid, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 3, json_is_true(json_object_get(m, "reversible")));
      if (has_at) sqlite3_bind_int64(st, 4, at);
      int src = sqlite3_step(st);
      sqlite3_finalize(st);
      if (src == SQLITE_CONSTRAINT) {
        rc = rc_err_set(err, RC_EPARSE, "migration \"%.60s\" is listed twice", mid);
        break;
      }
      if (src != SQLITE_DONE) {
        rc = rc_err_set(err, RC_EIO, "database: %s", sqlite3_errmsg(h));
        break;
      }
    }
  if (rc == 0 && audit != NULL) {
    /* In the deploy's own transaction: the registry and its audit entry commit together. */
    char subject[2 * RC_DEPLOY_FIELD_MAX + 2];
    snprintf(subject, sizeof(subject), "%s/%s", service, env);
    json_t *detail = json_pack("{s:I,s:s,s:s?,s:s?,s:I,s:b,s:O?}", "deploy", (json_int_t)new_id,
                               "version", version, "artifact", artifact, "deployer", deployer,
                               "started_at", (json_int_t)started, "is_rollback",
                               rb != NULL && json_is_true(rb), "migrations", migs);
    rc_err_t ae = {0};
    if (rc_audit_append(audit, now_ms, recorded_by ? recorded_by : "anonymous",
                        "deploy.recorded", subject, detail, &ae) != 0)
      rc_log(RC_LOG_ERROR, "cannot append to the audit trail", "err=\"%s\"", ae.msg);
    json_decref(detail);
  }
  if (in_tx) {
    if (rc == 0 && sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
      rc = rc_err_set(err, RC_EIO, "database: %s", sqlite3_errmsg(h));
    if (rc == 0 || rc == RC_EIO) rc_db_note_write(db, rc == 0, "deploy"); /* before ROLLBACK */
    if (rc != 0) sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  } else if (rc == RC_EIO) {
    rc_db_note_write(db, 0, "deploy");
  }
  json_decref(o);
  if (rc == 0) *id = new_id;
  return rc;
}

static void copy_col(char *dst, sqlite3_stmt *st, int col) {
  const unsigned char *t = sqlite3_column_text(st, col);
  snprintf(dst, RC_DEPLOY_FIELD_MAX, "%s", t ? (const char *)t : "");
}

static void row_to_deploy(sqlite3_stmt *st, rc_deploy_t *d) {
  memset(d, 0, sizeof(*d));
  d->id = sqlite3_column_int64(st, 0);
  copy_col(d->service, st, 1);
  copy_col(d->environment, st, 2);
  copy_col(d->version, st, 3);
  copy_col(d->artifact, st, 4);
  copy_col(d->deployer, st, 5);
  d->started_at_ms = sqlite3_column_int64(st, 6);
  d->is_rollback = sqlite3_column_int(st, 7);
  d->rolled_back = sqlite3_column_int(st, 8);
}

#define DEPLOY_COLS \
  "id, service, environment, version, artifact, deployer, started_at, is_rollback, rolled_back"

/* Newest first: by start time, then by the order they were recorded. */
static sqlite3_stmt *history(rc_db_t *db, const char *service, const char *env) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(db),
                         "SELECT " DEPLOY_COLS " FROM deploys WHERE service = ? AND environment = ?"
                         " ORDER BY started_at DESC, id DESC", -1, &st, NULL) != SQLITE_OK)
    return NULL;
  sqlite3_bind_text(st, 1, service, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, env, -1, SQLITE_TRANSIENT);
  return st;
}

int rc_deploys_lookup(rc_db_t *db, const char *service, const char *environment,
                      rc_deploy_t *cur, rc_deploy_t *prev, int *prev_rc) {
  if (prev_rc) *prev_rc = RC_ENOENT;
  sqlite3_stmt *st = history(db, service, environment);
  if (st == NULL) {
    if (prev_rc) *prev_rc = RC_EIO;
    return RC_EIO;
  }
  int rc = sqlite3_step(st), crc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? RC_ENOENT : RC_EIO;
  if (crc == 0) row_to_deploy(st, cur);
  if (crc == 0 && prev != NULL) {
    rc_deploy_t d;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      row_to_deploy(st, &d);
      /* Not a version that was rolled back, and not the one live now (a redeploy of it). */
      if (d.rolled_back || strcmp(d.version, cur->version) == 0) continue;
      *prev = d;
      break;
    }
    if (prev_rc) *prev_rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? RC_ENOENT : RC_EIO;
  } else if (crc == RC_EIO && prev_rc) {
    *prev_rc = RC_EIO;
  }
  sqlite3_finalize(st);
  return crc;
}

int rc_deploys_current(rc_db_t *db, const char *service, const char *environment,
                       rc_deploy_t *out) {
  return rc_deploys_lookup(db, service, environment, out, NULL, NULL);
}

int rc_deploys_previous(rc_db_t *db, const char *service, const char *environment,
                        rc_deploy_t *out) {
  rc_deploy_t cur;
  int prc = RC_ENOENT, crc = rc_deploys_lookup(db, service, environment, &cur, out, &prc);
  return crc == RC_EIO ? RC_EIO : prc;
}

int rc_deploys_mark_rolled_back(rc_db_t *db, int64_t id) {
  sqlite3 *h = rc_db_handle(db);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(h, "UPDATE deploys SET rolled_back = 1 WHERE id = ?", -1, &st, NULL) !=
      SQLITE_OK)
    return RC_EIO;
  sqlite3_bind_int64(st, 1, id);
  if (step_done(h, st) != 0) return RC_EIO;
  return sqlite3_changes(h) == 1 ? 0 : RC_ENOENT;
}

/*------------------------------------------------------------------------------------------
 * HTTP
 *----------------------------------------------------------------------------------------*/

static int64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void json_reply(rc_http_response_t *res, int status, json_t *doc) {
  res->status = status;
  res->content_type = "application/json";
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  if (s == NULL) {
    res->status = 500;
    res->content_type = NULL;
    rc_buf_puts(&res->body, "out of memory\n");
    return;
  }
  rc_buf_puts(&res->body, s);
  rc_buf_puts(&res->body, "\n");
  free(s);
}

static void error_reply(rc_http_response_t *res, int status, const char *msg) {
  json_reply(res, status, json_pack("{s:s,s:s}", "status", "error", "error", msg));
}

static json_t *deploy_json(rc_db_t *db, const rc_deploy_t *d) {
  json_t *migs = json_array();
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(db),
                         "SELECT migration_id, reversible, applied_at FROM deploy_migrations"
                         " WHERE deploy_id = ? ORDER BY rowid", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, d->id);
    while (sqlite3_step(st) == SQLITE_ROW) {
      json_t *m = json_pack("{s:s,s:b}", "id", (const char *)sqlite3_column_text(st, 0),
                            "reversible", sqlite3_column_int(st, 1));
      if (sqlite3_column_type(st, 2) != SQLITE_NULL)
        json_object_set_new(m, "applied_at", json_integer(sqlite3_column_int64(st, 2)));
      json_array_append_new(migs, m);
    }
    sqlite3_finalize(st);
  }
  return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:b,s:b,s:o}", "id", (json_int_t)d->id,
                   "service", d->service, "environment", d->environment, "version", d->version,
                   "artifact", d->artifact, "deployer", d->deployer, "started_at",
                   (json_int_t)d->started_at_ms, "is_rollback", d->is_rollback, "rolled_back",
                   d->rolled_back, "migrations", migs);
}

static int path_eq(const rc_http_request_t *req, const char *p) {
  size_t n = strlen(p);
  return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A path segment, percent-decoded ('+' stays '+' in a path). 0, or -1 when malformed, too
 * long or decoding to a NUL. */
static int unescape(const char *s, size_t n, char *out, size_t cap) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      int h, l;
      if (i + 2 >= n) return -1;
      if ((h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0) return -1;
      c = h * 16 + l;
      i += 2;
    }
    if (c == 0 || k + 1 >= cap) return -1;
    out[k++] = (char)c;
  }
  out[k] = 0;
  return 0;
}

/* /api/v1/services/{service}/{environment}/previous-version: the two segments, decoded. */
static int prev_path(const rc_http_request_t *req, char *svc, char *env, size_t cap) {
  static const char pre[] = "/api/v1/services/", suf[] = "/previous-version";
  size_t np = sizeof(pre) - 1, ns = sizeof(suf) - 1;
  if (req->path_len <= np + ns || memcmp(req->path, pre, np) != 0 ||
      memcmp(req->path + req->path_len - ns, suf, ns) != 0)
    return 0;
  const char *a = req->path + np, *end = req->path + req->path_len - ns;
  const char *slash = memchr(a, '/', (size_t)(end - a));
  if (slash == NULL || slash == a || slash + 1 >= end || memchr(slash + 1, '/', (size_t)(end - slash - 1)))
    return -1;
  if (unescape(a, (size_t)(slash - a), svc, cap) != 0 ||
      unescape(slash + 1, (size_t)(end - slash - 1), env, cap) != 0)
    return -1;
  return 1;
}

/* One deploy, short: what a listing of targets shows (no migrations). */
static json_t *deploy_brief(const rc_deploy_t *d) {
  return json_pack("{s:I,s:s,s:s,s:s,s:I,s:b}", "id", (json_int_t)d->id, "version", d->version,
                   "artifact", d->artifact, "deployer", d->deployer, "started_at",
                   (json_int_t)d->started_at_ms, "is_rollback", d->is_rollback);
}

/* GET /api/v1/services: every target the registry knows, by service then environment, with
 * its current deploy and the one a rollback would go back to (null when there is none). */
static void list_services(rc_db_t *db, const rc_http_request_t *req, rc_http_response_t *res) {
  int64_t limit = 1000;
  if (rc_http_query_int(req, "limit", 1, 10000, &limit) < 0) {
    error_reply(res, 400, "limit must be 1..10000");
    return;
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(db),
                         "SELECT service, environment, COUNT(*) FROM deploys"
                         " GROUP BY service, environment ORDER BY service, environment LIMIT ?",
                         -1, &st, NULL) != SQLITE_OK) {
    error_reply(res, 500, "database error");
    return;
  }
  sqlite3_bind_int64(st, 1, limit);
  json_t *arr = json_array();
  int rc = SQLITE_DONE, failed = 0;
  while (!failed && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    char svc[RC_DEPLOY_FIELD_MAX], env[RC_DEPLOY_FIELD_MAX];
    copy_col(svc, st, 0);
    copy_col(env, st, 1);
    rc_deploy_t cur, prev;
    int hp = RC_ENOENT, hc = rc_deploys_lookup(db, svc, env, &cur, &prev, &hp);
    if (hc != 0 || (hp != 0 && hp != RC_ENOENT)) {
      failed = 1;
      break;
    }
    json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:o,s:o}", "service", svc, "environment",
                                         env, "deploys", (json_int_t)sqlite3_column_int64(st, 2),
                                         "current", deploy_brief(&cur), "previous",
                                         hp == 0 ? deploy_brief(&prev) : json_null()));
  }
  if (!failed && rc != SQLITE_DONE) failed = 1;
  sqlite3_finalize(st);
  if (failed) {
    json_decref(arr);
    error_reply(res, 500, "database error");
    return;
  }
  json_reply(res, 200, json_pack("{s:s,s:o}", "status", "success", "data", arr));
}

int rc_deploys_handle(rc_db_t *db, rc_audit_t *audit, const rc_http_request_t *req,
                      const char *actor, rc_http_response_t *res) {
  char svc[RC_DEPLOY_FIELD_MAX], env[RC_DEPLOY_FIELD_MAX];
  if (path_eq(req, "/api/v1/services")) {
    if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
      rc_buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
      error_reply(res, 405, "method not allowed: use GET");
    } else if (db == NULL) {
      error_reply(res, 503, "no deploy registry (storage unavailable)");
    } else {
      list_services(db, req, res);
    }
    return 1;
  }
  if (path_eq(req, "/api/v1/deploys")) {
    if (db == NULL) {
      error_reply(res, 503, "no deploy registry (storage unavailable)");
    } else if (req->method == HTTP_POST) {
      rc_err_t err = {0};
      int64_t id;
      int rc = rc_deploys_record_json(db, req->body, req->body_len, wall_ms(), actor, audit, &id,
                                      &err);
      if (rc == 0) json_reply(res, 201, json_pack("{s:s,s:I}", "status", "success", "id", (json_int_t)id));
      else if (rc == RC_EIO && rc_db_http_status(db) == 503) {
        /* A full disk or a read-only directory passes: the pipeline should retry, not
         * give up on recording the deploy. */
        rc_buf_printf(&res->headers, "Retry-After: 10\r\n");
        char msg[400];
        snprintf(msg, sizeof(msg), "the deploy was not recorded: the embedded store cannot be "
                                   "written (%s); retry later", rc_db_write_error(db));
        error_reply(res, 503, msg);
      } else error_reply(res, rc == RC_EPARSE ? 400 : 500, err.msg);
    } else if (req->method == HTTP_GET || req->method == HTTP_HEAD) {
      if (rc_http_query_param(req, "service", svc, sizeof(svc)) <= 0 ||
          rc_http_query_param(req, "environment", env, sizeof(env)) <= 0) {
        error_reply(res, 400, "service and environment parameters are required");
        return 1;
      }
      int64_t limit = 100;
      if (rc_http_query_int(req, "limit", 1, 10000, &limit) < 0) {
        error_reply(res, 400, "limit must be 1..10000");
        return 1;
      }
      sqlite3_stmt *st = history(db, svc, env);
      if (st == NULL) {
        error_reply(res, 500, "database error");
        return 1;
      }
      json_t *arr = json_array();
      rc_deploy_t d;
      for (long k = 0; k < limit && sqlite3_step(st) == SQLITE_ROW; k++) {
        row_to_deploy(st, &d);
        json_array_append_new(arr, deploy_json(db, &d));
      }
      sqlite3_finalize(st);
      json_reply(res, 200, json_pack("{s:s,s:o}", "status", "success", "data", arr));
    } else {
      rc_buf_puts(&res->headers, "Allow: GET, HEAD, POST\r\n");
      error_reply(res, 405, "method not allowed: GET or POST");
    }
    return 1;
  }
  int p = prev_path(req, svc, env, sizeof(svc));
  if (p == 0) return 0;
  if (p < 0) {
    error_reply(res, 404, "not found: /api/v1/services/{service}/{environment}/previous-version");
  } else if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
    rc_buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
    error_reply(res, 405, "method not allowed: use GET");
  } else if (db == NULL) {
    error_reply(res, 503, "no deploy registry (storage unavailable)");
  } else {
    rc_deploy_t d;
    int rc = rc_deploys_previous(db, svc, env, &d);
    if (rc == 0) {
      /* Plain text, for PREVIOUS_VERSION=$(curl -sf .../previous-version) in a pipeline. */
      res->status = 200;
      rc_buf_printf(&res->body, "%s\n", d.version);
    } else {
      res->status = rc == RC_ENOENT ? 404 : 500;
      rc_buf_printf(&res->body, "%s\n", rc == RC_ENOENT
                                            ? "no previous version recorded for this target"
                                            : "database error");
    }
  }
  return 1;
}

int rc_deploys_start_of(void *db, const char *service, const char *environment, int64_t *start) {
  rc_deploy_t dep;
  if (rc_deploys_current(db, service, environment, &dep) != 0) return -1;
  *start = dep.started_at_ms;
  return 0;
}
