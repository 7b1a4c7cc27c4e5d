/* actions.c: firing -> rollback event -> outbox; see actions.h. */
#include "actions.h"

#include <http_parser.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deploys.h"
#include "log.h"

#define MAX_RECEIVERS 16

/* A firing, copied out of the rule set (a reload may free it before the loop thread looks). */
typedef struct firing {
  struct firing *next;
  char service[RC_DEPLOY_FIELD_MAX], environment[RC_DEPLOY_FIELD_MAX], trigger[128],
      file[256], action[64], op[4];
  char receivers[MAX_RECEIVERS][64]; /* notify kind (webhook, slack, pagerduty, ...) */
  char targets[MAX_RECEIVERS][128];  /* its target: a receiver name, a channel, a service */
  int nreceivers;
  double value, threshold;
  int64_t window_ms, at_ms;
  int dry_run, resolved;
} firing_t;

enum { ST_ROLLBACK, ST_DRY_RUN, ST_NO_DEPLOY, ST_NO_PREVIOUS, ST_ROLLBACK_OF_ROLLBACK,
       ST_NEEDS_APPROVAL, ST_COOLDOWN, ST_DUPLICATE, ST_NOTIFY, ST_RESOLVED, ST__COUNT };
static const char *const status_names[ST__COUNT] = {
    "rollback", "dry_run", "no_deploy", "no_previous", "rollback_of_rollback",
    "needs_approval", "cooldown", "duplicate", "notify", "resolved"};

struct rc_actions {
  uv_loop_t *loop;
  rc_db_t *db;
  rc_delivery_t *delivery;
  rc_actions_cfg_t cfg;
  uv_async_t async;
  firing_t *_Atomic stack;
  uint64_t by_status[ST__COUNT];
};

/*------------------------------------------------------------------------------------------
 * Deciding and recording
 *----------------------------------------------------------------------------------------*/

/* 32 hex digits of SHA-256 over the fields, NUL-separated: the same firing of the same deploy
 * gives the same key here and in any replica. */
static void idempotency_key(const firing_t *f, const rc_deploy_t *cur, const rc_deploy_t *prev,
                            char out[33]) {
  char buf[4 * RC_DEPLOY_FIELD_MAX + 64];
  int n = snprintf(buf, sizeof(buf), "%s%c%s%c%lld%c%s%c%s", f->service, 0, f->environment, 0,
                   (long long)cur->id, 0, cur->version, 0, prev->version);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_Digest(buf, (size_t)(n < (int)sizeof(buf) ? n : (int)sizeof(buf) - 1), md, &mdlen,
             EVP_sha256(), NULL);
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 15];
  }
  out[32] = 0;
}

/* The reversible migrations of a deploy, newest first; sets *irreversible. */
static json_t *migrations_to_undo(rc_db_t *db, int64_t deploy_id, int *irreversible) {
  json_t *arr = json_array();
  *irreversible = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(db),
                         "SELECT migration_id, reversible FROM deploy_migrations"
                         " WHERE deploy_id = ? ORDER BY COALESCE(applied_at, 0) DESC, rowid DESC",
                         -1, &st, NULL) != SQLITE_OK)
    return arr;
  sqlite3_bind_int64(st, 1, deploy_id);
  while (sqlite3_step(st) == SQLITE_ROW) {
    if (!sqlite3_column_int(st, 1)) *irreversible = 1;
    else json_array_append_new(arr, json_string((const char *)sqlite3_column_text(st, 0)));
  }
  sqlite3_finalize(st);
  return arr;
}

static int recent_rollback(rc_db_t *db, const firing_t *f, int64_t since) {
  sqlite3_stmt *st = NULL;
  int found = 0;
  if (sqlite3_prepare_v2(rc_db_handle(db),
                         "SELECT 1 FROM rollback_events WHERE service = ? AND environment = ?"
                         " AND status = 'rollback' AND created_at >= ? LIMIT 1", -1, &st,
                         NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, f->service, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, f->environment, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, since);
  found = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_finalize(st);
  return found;
}

static int exec(sqlite3 *h, const char *sql) {
  return sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : RC_EIO;
}

/* Writes the event (and, for a rollback, its outbox rows and the deploy's mark) in one
 * transaction. Returns the status actually recorded (ST_DUPLICATE if the key existed). */
static int record(rc_actions_t *a, const firing_t *f, int status, const rc_deploy_t *cur,
                  const rc_deploy_t *prev, const char *key, const char *payload) {
  sqlite3 *h = rc_db_handle(a->db);
  if (exec(h, "BEGIN IMMEDIATE") != 0) return -1;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(h,
                              "INSERT OR IGNORE INTO rollback_events(idempotency_key, service,"
                              " environment, deploy_id, from_version, to_version, from_artifact,"
                              " to_artifact, trigger, value, threshold, op, window_ms, status,"
                              " created_at, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              -1, &st, NULL) == SQLITE_OK ? 0 : -1;
  if (rc == 0) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->environment, -1, SQLITE_STATIC);
    if (cur) sqlite3_bind_int64(st, 4, cur->id);
    if (cur) sqlite3_bind_text(st, 5, cur->version, -1, SQLITE_STATIC);
    if (prev) sqlite3_bind_text(st, 6, prev->version, -1, SQLITE_STATIC);
    if (cur) sqlite3_bind_text(st, 7, cur->artifact, -1, SQLITE_STATIC);
    if (prev) sqlite3_bind_text(st, 8, prev->artifact, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, f->trigger, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 10, f->value);
    sqlite3_bind_double(st, 11, f->threshold);
    sqlite3_bind_text(st, 12, f->op, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, f->window_ms);
    sqlite3_bind_text(st, 14, status_names[status], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 15, f->at_ms);
    sqlite3_bind_text(st, 16, payload, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
  }
  sqlite3_finalize(st);
  int inserted = rc == 0 && sqlite3_changes(h) == 1;
  int64_t event_id = sqlite3_last_insert_rowid(h);
  if (rc == 0 && !inserted) status = ST_DUPLICATE;
  if (rc == 0 && inserted && (status == ST_ROLLBACK || status == ST_NOTIFY)) {
    const char *const *all;
    size_t nall = rc_delivery_receivers(a->delivery, &all);
    size_t n = f->nreceivers ? (size_t)f->nreceivers : nall;
    for (size_t i = 0; rc == 0 && i < n; i++) {
      /* webhook: NAME names a receiver; slack: #channel and pagerduty: service go to the
       * first receiver of that preset, with the channel or service as the row's target. */
      const char *name = NULL, *target = NULL;
      if (!f->nreceivers) {
        name = all[i];
      } else {
        const char *kind = f->receivers[i];
        if (strcmp(kind, "webhook") == 0) {
          name = f->targets[i];
        } else {
          name = rc_delivery_receiver_of_type(a->delivery, kind);
          target = f->targets[i];
        }
      }
      uint64_t deadline = 0;
      if (name == NULL || !rc_delivery_receiver(a->delivery, name, &deadline)) {
        rc_log(RC_LOG_WARN, "rule notifies a receiver the config does not have",
               "notify=%s target=%s", f->nreceivers ? f->receivers[i] : "-",
               f->nreceivers ? f->targets[i] : "-");
        continue;
      }
      if (sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO outbox(event_id, receiver, state,"
                                " next_attempt_at, deadline_at, target) VALUES (?,?,'pending',?,?,?)",
                             -1, &st, NULL) != SQLITE_OK) {
        rc = -1;
        break;
      }
      sqlite3_bind_int64(st, 1, event_id);
      sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
      sqlite3_bind_int64(st, 3, f->at_ms);
      sqlite3_bind_int64(st, 4, f->at_ms + (int64_t)deadline);
      if (target) sqlite3_bind_text(st, 5, target, -1, SQLITE_STATIC);
      rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
      sqlite3_finalize(st);
    }
    if (rc == 0 && cur != NULL && status == ST_ROLLBACK)
      rc = rc_deploys_mark_rolled_back(a->db, cur->id) == 0 ? 0 : -1;
  }
  if (rc == 0 && exec(h, "COMMIT") == 0) return status;
  exec(h, "ROLLBACK");
  rc_log(RC_LOG_ERROR, "cannot record a rollback event", "err=\"%s\"", sqlite3_errmsg(h));
  return -1;
}

/* A trigger that fired stopped: receivers that track incidents (PagerDuty) are told, with
 * the dedup key of the event they got. A "resolved" event is recorded, keyed from the
 * original's key, with an outbox row for each such receiver that had the original. */
static void handle_resolved(rc_actions_t *a, const firing_t *f) {
  sqlite3 *h = rc_db_handle(a->db);
  sqlite3_stmt *st = NULL;
  int64_t orig = 0;
  char *payload = NULL, key[33] = "";
  if (sqlite3_prepare_v2(h, "SELECT id, idempotency_key, payload FROM rollback_events"
                            " WHERE service = ? AND environment = ? AND trigger = ?"
                            " AND status IN ('rollback', 'notify') ORDER BY id DESC LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_text(st, 1, f->service, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, f->environment, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, f->trigger, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    orig = sqlite3_column_int64(st, 0);
    json_t *ev = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
    if (ev != NULL) {
      json_object_set_new(ev, "kind", json_string("resolve"));
      json_object_set_new(ev, "status", json_string("resolved"));
      json_object_set(ev, "resolves", json_object_get(ev, "idempotency_key"));
      json_object_set_new(ev, "resolved_at", json_integer(f->at_ms));
      /* Its own key, derived from the original's. */
      unsigned char md[EVP_MAX_MD_SIZE];
      unsigned int mdlen = 0;
      char in[64];
      int n = snprintf(in, sizeof(in), "%s/resolve", (const char *)sqlite3_column_text(st, 1));
      EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL);
      static const char digits[] = "0123456789abcdef";
      for (int i = 0; i < 16; i++) {
        key[2 * i] = digits[md[i] >> 4];
        key[2 * i + 1] = digits[md[i] & 15];
      }
      key[32] = 0;
      json_object_set_new(ev, "idempotency_key", json_string(key));
      payload = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
      json_decref(ev);
    }
  }
  sqlite3_finalize(st);
  if (payload == NULL) return;
  int rc = sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
  if (rc == 0 && sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO rollback_events(idempotency_key,"
                                       " service, environment, trigger, status, created_at, payload)"
                                       " VALUES (?,?,?,?,'resolved',?,?)", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, f->service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, f->environment, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, f->trigger, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, f->at_ms);
    sqlite3_bind_text(st, 6, payload, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
  } else {
    rc = -1;
  }
  int inserted = rc == 0 && sqlite3_changes(h) == 1;
  int64_t event_id = sqlite3_last_insert_rowid(h);
  int rows = 0;
  /* The receivers of the original event that track incidents. */
  if (inserted && sqlite3_prepare_v2(h, "SELECT receiver, target, deadline_at - next_attempt_at"
                                        " FROM outbox WHERE event_id = ?", -1, &st, NULL) ==
                      SQLITE_OK) {
    sqlite3_bind_int64(st, 1, orig);
    while (rc == 0 && sqlite3_step(st) == SQLITE_ROW) {
      const char *name = (const char *)sqlite3_column_text(st, 0);
      const char *type = rc_delivery_receiver_type(a->delivery, name);
      if (type == NULL || strcmp(type, "pagerduty") != 0) continue;
      sqlite3_stmt *ins = NULL;
      if (sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO outbox(event_id, receiver, state,"
                                " next_attempt_at, deadline_at, target)"
                                " VALUES (?,?,'pending',?,?,?)", -1, &ins, NULL) != SQLITE_OK) {
        rc = -1;
        break;
      }
      sqlite3_bind_int64(ins, 1, event_id);
      sqlite3_bind_text(ins, 2, name, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(ins, 3, f->at_ms);
      sqlite3_bind_int64(ins, 4, f->at_ms + sqlite3_column_int64(st, 2));
      if (sqlite3_column_type(st, 1) != SQLITE_NULL)
        sqlite3_bind_text(ins, 5, (const char *)sqlite3_column_text(st, 1), -1, SQLITE_TRANSIENT);
      rc = sqlite3_step(ins) == SQLITE_DONE ? 0 : -1;
      sqlite3_finalize(ins);
      rows++;
    }
    sqlite3_finalize(st);
  }
  /* No receiver tracks the incident: nothing to tell, nothing recorded. */
  if (rc == 0 && inserted && rows == 0) rc = -1;
  if (rc == 0 && sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
    if (inserted) a->by_status[ST_RESOLVED]++;
    if (rows) rc_delivery_kick(a->delivery);
  } else {
    sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  }
  free(payload);
}

static void handle(rc_actions_t *a, const firing_t *f) {
  if (f->resolved) {
    handle_resolved(a, f);
    return;
  }
  rc_deploy_t cur, prev;
  int have_cur = rc_deploys_current(a->db, f->service, f->environment, &cur) == 0;
  int have_prev = have_cur && rc_deploys_previous(a->db, f->service, f->environment, &prev) == 0;
  int irreversible = 0;
  json_t *undo = have_cur ? migrations_to_undo(a->db, cur.id, &irreversible) : json_array();
  int status = ST_ROLLBACK;
  const char *why = "";
  if (!have_cur) status = ST_NO_DEPLOY, why = "no deploy recorded for this target";
  else if (cur.is_rollback)
    status = ST_ROLLBACK_OF_ROLLBACK, why = "the current deploy is a rollback: not rolled back automatically";
  else if (!have_prev) status = ST_NO_PREVIOUS, why = "no previous version to roll back to";
  else if (f->dry_run || strcmp(f->action, "dry_run") == 0)
    status = ST_DRY_RUN, why = "dry run: recorded, not sent";
  else if (strcmp(f->action, "notify") == 0)
    status = ST_NOTIFY, why = "action notify: people are told, nothing is rolled back";
  else if (irreversible)
    status = ST_NEEDS_APPROVAL, why = "the deploy applied an irreversible migration";
  else if (f->at_ms - cur.started_at_ms > a->cfg.rollback_window_ms)
    status = ST_NEEDS_APPROVAL, why = "the rollback window has passed";
  else if (a->cfg.cooldown_ms > 0 && recent_rollback(a->db, f, f->at_ms - a->cfg.cooldown_ms))
    status = ST_COOLDOWN, why = "another rollback of this target within the cooldown";
  char key[33];
  if (have_cur && have_prev) {
    idempotency_key(f, &cur, &prev, key);
  } else { /* nothing to roll back: one record per target and minute is plenty */
    rc_deploy_t none = {.id = f->at_ms / 60000};
    snprintf(none.version, sizeof(none.version), "%s", status_names[status]);
    idempotency_key(f, have_cur ? &cur : &none, &none, key);
  }
  json_t *doc = json_pack(
      "{s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:o},s:{s:s,s:s},s:{s:s,s:s,s:f,s:s,s:f,s:I},"
      "s:o,s:b,s:I}",
      "kind", "rollback", "status", status_names[status], "reason", why, "idempotency_key", key,
      "service", f->service, "environment", f->environment, "from", "version",
      have_cur ? cur.version : "", "artifact", have_cur ? cur.artifact : "", "deploy_id",
      have_cur ? json_integer(cur.id) : json_null(), "to", "version",
      have_prev ? prev.version : "", "artifact", have_prev ? prev.artifact : "", "trigger",
      "name", f->trigger, "rule_file", f->file, "value", f->value, "op", f->op, "threshold",
      f->threshold, "window_ms", (json_int_t)f->window_ms, "migrations_to_undo", undo,
      "dry_run", f->dry_run, "created_at", (json_int_t)f->at_ms);
  char *payload = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(doc);
  if (payload == NULL) return;
  int got = record(a, f, status, have_cur ? &cur : NULL, have_prev ? &prev : NULL, key, payload);
  free(payload);
  if (got < 0) return;
  a->by_status[got]++;
  rc_log(got == ST_ROLLBACK ? RC_LOG_WARN : RC_LOG_INFO, "rollback event",
         "service=%s environment=%s status=%s from=%s to=%s trigger=%s key=%s reason=\"%s\"",
         f->service, f->environment, status_names[got], have_cur ? cur.version : "-",
         have_prev ? prev.version : "-", f->trigger, key, why);
  if (got == ST_ROLLBACK || got == ST_NOTIFY) rc_delivery_kick(a->delivery);
}

/*------------------------------------------------------------------------------------------
 * Hand-off from the evaluator thread
 *----------------------------------------------------------------------------------------*/

void rc_actions_fire(void *ctx, const rc_fire_event_t *ev) {
  rc_actions_t *a = ctx;

  firing_t *f = calloc(1, sizeof(*f));
  if (f == NULL) return;
  const rc_rule_t *r = ev->rule;
  const rc_trigger_t *t = ev->trigger;
  snprintf(f->service, sizeof(f->service), "%s", r->service);
  snprintf(f->environment, sizeof(f->environment), "%s", r->environment);
  snprintf(f->trigger, sizeof(f->trigger), "%s", t->name);
  snprintf(f->file, sizeof(f->file), "%s", r->file ? r->file : "");
  snprintf(f->action, sizeof(f->action), "%s", r->action ? r->action : "");
  snprintf(f->op, sizeof(f->op), "%s", rc_rules_cmp_name(t->op));
  for (uint32_t i = 0; i < r->nnotify && f->nreceivers < MAX_RECEIVERS; i++) {
    snprintf(f->receivers[f->nreceivers], sizeof(f->receivers[0]), "%s", r->notify[i].kind);
    snprintf(f->targets[f->nreceivers], sizeof(f->targets[0]), "%s", r->notify[i].target);
    f->nreceivers++;
  }
  f->value = ev->value;
  f->threshold = t->threshold;
  f->window_ms = t->window_ms ? t->window_ms : (t->expr ? t->expr->max_range_ms : 0);
  f->at_ms = ev->at_ms;
  f->dry_run = ev->dry_run;
  f->resolved = ev->resolved;
  firing_t *head = atomic_load_explicit(&a->stack, memory_order_relaxed);
  do {
    f->next = head;
  } while (!atomic_compare_exchange_weak_explicit(&a->stack, &head, f, memory_order_release,
                                                  memory_order_relaxed));
  uv_async_send(&a->async);
}

static void on_async(uv_async_t *h) {
  rc_actions_t *a = h->data;
  firing_t *f = atomic_exchange_explicit(&a->stack, NULL, memory_order_acquire), *rev = NULL;
  while (f != NULL) { /* oldest first */
    firing_t *n = f->next;
    f->next = rev;
    rev = f;
    f = n;
  }
  while (rev != NULL) {
    firing_t *n = rev->next;
    handle(a, rev);
    free(rev);
    rev = n;
  }
}

int rc_actions_new(uv_loop_t *loop, rc_db_t *db, rc_delivery_t *delivery,
                   const rc_actions_cfg_t *cfg, rc_actions_t **out, rc_err_t *err) {
  rc_actions_t *a = calloc(1, sizeof(*a));
  if (a == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  a->loop = loop;
  a->db = db;
  a->delivery = delivery;
  a->cfg = *cfg;
  if (a->cfg.rollback_window_ms <= 0) a->cfg.rollback_window_ms = 24 * 3600 * 1000LL;
  if (a->cfg.cooldown_ms < 0) a->cfg.cooldown_ms = 0;
  if (uv_async_init(loop, &a->async, on_async) != 0) {
    free(a);
    return rc_err_set(err, RC_ENOMEM, "cannot create the actions' async handle");
  }
  a->async.data = a;
  *out = a;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  rc_actions_t *a = h->data;
  firing_t *f = atomic_exchange(&a->stack, NULL);
  while (f != NULL) {
    firing_t *n = f->next;
    free(f);
    f = n;
  }
  free(a);
}

void rc_actions_close(rc_actions_t *a) {
  if (a != NULL) uv_close((uv_handle_t *)&a->async, on_closed);
}

/*------------------------------------------------------------------------------------------
 * GET /api/v1/rollbacks, metrics
 *----------------------------------------------------------------------------------------*/

int rc_actions_handle(rc_actions_t *a, const rc_http_request_t *req, rc_http_response_t *res) {
  static const char path[] = "/api/v1/rollbacks";
  if (req->path_len != sizeof(path) - 1 || memcmp(req->path, path, sizeof(path) - 1) != 0)
    return 0;
  res->content_type = "application/json";
  if (a == NULL) {
    res->status = 503;
    rc_buf_puts(&res->body, "{\"status\":\"error\",\"error\":\"no actions\"}\n");
    return 1;
  }
  if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
    res->status = 405;
    rc_buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
    rc_buf_puts(&res->body, "{\"status\":\"error\",\"error\":\"method not allowed: use GET\"}\n");
    return 1;
  }
  sqlite3 *h = rc_db_handle(a->db);
  json_t *arr = json_array();
  sqlite3_stmt *st = NULL, *ds = NULL;
  if (sqlite3_prepare_v2(h, "SELECT id, payload FROM rollback_events ORDER BY id DESC LIMIT 200",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(h, "SELECT receiver, state, attempts, last_status, last_error,"
                            " delivered_at FROM outbox WHERE event_id = ? ORDER BY id", -1, &ds,
                         NULL) == SQLITE_OK) {
    while (sqlite3_step(st) == SQLITE_ROW) {
      json_t *ev = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
      if (ev == NULL) continue;
      json_t *dl = json_array();
      sqlite3_reset(ds);
      sqlite3_bind_int64(ds, 1, sqlite3_column_int64(st, 0));
      while (sqlite3_step(ds) == SQLITE_ROW) {
        json_t *o = json_pack("{s:s,s:s,s:i}", "receiver", (const char *)sqlite3_column_text(ds, 0),
                              "state", (const char *)sqlite3_column_text(ds, 1), "attempts",
                              sqlite3_column_int(ds, 2));
        if (sqlite3_column_type(ds, 3) != SQLITE_NULL)
          json_object_set_new(o, "last_status", json_integer(sqlite3_column_int(ds, 3)));
        if (sqlite3_column_type(ds, 4) != SQLITE_NULL)
          json_object_set_new(o, "last_error", json_string((const char *)sqlite3_column_text(ds, 4)));
        if (sqlite3_column_type(ds, 5) != SQLITE_NULL)
          json_object_set_new(o, "delivered_at", json_integer(sqlite3_column_int64(ds, 5)));
        json_array_append_new(dl, o);
      }
      json_object_set_new(ev, "deliveries", dl);
      json_array_append_new(arr, ev);
    }
  }
  sqlite3_finalize(st);
  sqlite3_finalize(ds);
  json_t *doc = json_pack("{s:s,s:o}", "status", "success", "data", arr);
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  res->status = s ? 200 : 500;
  rc_buf_puts(&res->body, s ? s : "{\"status\":\"error\",\"error\":\"out of memory\"}");
  rc_buf_puts(&res->body, "\n");
  free(s);
  return 1;
}

void rc_actions_render_metrics(rc_actions_t *a, rc_buf_t *o) {
  if (a == NULL) return;
  rc_buf_puts(o, "# HELP ripcord_rollback_events_total Firings that became rollback events, by "
                 "what was decided.\n# TYPE ripcord_rollback_events_total counter\n");
  for (int i = 0; i < ST__COUNT; i++)
    rc_buf_printf(o, "ripcord_rollback_events_total{status=\"%s\"} %llu\n", status_names[i],
                  (unsigned long long)a->by_status[i]);
}
