/* actions.c: firing -> rollback event -> outbox; see actions.h. */
#include "actions.h"

#include <http_parser.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deploys.h"
#include "log.h"

#define MAX_RECEIVERS 16
/* Firings held while the embedded store cannot be written (full disk, read-only directory):
 * bounded so that a store that never comes back cannot eat the memory; one per target,
 * trigger and kind in a row (a trigger firing again while held is the same event). */
#define MAX_HELD 1024
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 30000

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
  rc_gate_t gate;      /* the approval policy in force for the rule's target */
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
  rc_approvals_t *approvals;
  rc_actions_audit_cb audit_cb;
  void *audit_ctx;
  rc_actions_cfg_t cfg;
  uv_async_t async;
  firing_t *_Atomic stack;
  uint64_t by_status[ST__COUNT];
  /* Firings the store refused, oldest first, retried by `retry` with a growing delay: a
   * rollback decided while the disk is full is made when it has room, not dropped. Loop
   * thread only. */
  firing_t *held, *held_tail;
  uint32_t nheld;
  uint64_t held_total, held_dropped;
  uv_timer_t retry;
  uint64_t retry_ms;
  int handles_open;
};

/*------------------------------------------------------------------------------------------
 * Deciding and recording
 *----------------------------------------------------------------------------------------*/

/* 32 hex digits of SHA-256 over the fields, NUL-separated: the same firing of the same deploy
 * gives the same key here and in any replica. salt (NULL: none) keeps events that roll
 * nothing back (dry run, notify) from taking the key of the deploy's one rollback: with
 * the plain key, a dry_run trigger that fired first made the real trigger's rollback of the
 * same deploy an ignored duplicate (found by `ripcord test`, issue 9). */
static void idempotency_key(const firing_t *f, const rc_deploy_t *cur, const rc_deploy_t *prev,
                            const char *salt, char out[33]) {
  char buf[4 * RC_DEPLOY_FIELD_MAX + 96];
  int n = snprintf(buf, sizeof(buf), "%s%c%s%c%lld%c%s%c%s%s%s", f->service, 0, f->environment,
                   0, (long long)cur->id, 0, cur->version, 0, prev->version, salt ? "\n" : "",
                   salt ? salt : "");
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

/* The seed's "test rollbacks in staging before production": whether migration id's rollback
 * has run in environment env — a deploy of the service there that applied it was followed
 * (next by started_at, then id: the registry's order) by a rollback deploy, which is how a
 * pipeline reports the rollback it ran. 1 yes, 0 no, -1 the store could not say. */
static int rehearsed(rc_db_t *db, const char *service, const char *env, const char *id) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(db),
                         "SELECT 1 FROM deploy_migrations m JOIN deploys d ON d.id = m.deploy_id"
                         " WHERE m.migration_id = ?1 AND d.service = ?2 AND d.environment = ?3"
                         " AND (SELECT n.is_rollback FROM deploys n"
                         "      WHERE n.service = d.service AND n.environment = d.environment"
                         "        AND (n.started_at > d.started_at"
                         "             OR (n.started_at = d.started_at AND n.id > d.id))"
                         "      ORDER BY n.started_at, n.id LIMIT 1) = 1"
                         " LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, env, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

/* Why a rollback that undoes undo's migrations must wait for people under the gate's
 * rehearse_in, into why (empty: it need not). A migration the store cannot vouch for counts as
 * not rehearsed: the doubt goes to a person. */
static void rehearsal_check(rc_db_t *db, const firing_t *f, const json_t *undo, char *why,
                            size_t n) {
  why[0] = 0;
  if (f->gate.rehearse_in == NULL) return;
  size_t i;
  json_t *m;
  json_array_foreach(undo, i, m) {
    const char *id = json_string_value(m);
    if (id == NULL) continue;
    int r = rehearsed(db, f->service, f->gate.rehearse_in, id);
    if (r == 1) continue;
    if (r == 0)
      snprintf(why, n, "migration %.100s has never been rolled back in %.100s", id,
               f->gate.rehearse_in);
    else
      snprintf(why, n, "cannot tell whether migration %.100s was rolled back in %.100s", id,
               f->gate.rehearse_in);
    return;
  }
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

/* Where an event goes: [{receiver, target}], from the rule's notify list (webhook: NAME
 * names a receiver; slack: #channel and pagerduty: service go to the first receiver of that
 * preset, with the channel or service as the row's target), or every receiver when the rule
 * names none. Decided when the event is recorded, so an event waiting for approval goes where
 * it would have gone. */
static json_t *plan_outbox(rc_actions_t *a, const firing_t *f) {
  json_t *plan = json_array();
  const char *const *all;
  size_t nall = rc_delivery_receivers(a->delivery, &all);
  size_t n = f != NULL && f->nreceivers ? (size_t)f->nreceivers : nall;
  for (size_t i = 0; i < n; i++) {
    const char *name = NULL, *target = NULL;
    if (f == NULL || !f->nreceivers) {
      name = all[i];
    } else if (strcmp(f->receivers[i], "webhook") == 0) {
      name = f->targets[i];
    } else {
      name = rc_delivery_receiver_of_type(a->delivery, f->receivers[i]);
      target = f->targets[i];
    }
    uint64_t deadline = 0;
    if (name == NULL || !rc_delivery_receiver(a->delivery, name, &deadline)) {
      rc_log(RC_LOG_WARN, "rule notifies a receiver the config does not have",
             "notify=%s target=%s", f ? f->receivers[i] : "-", f ? f->targets[i] : "-");
      continue;
    }
    json_array_append_new(plan, json_pack("{s:s,s:s?}", "receiver", name, "target", target));
  }
  return plan;
}

/* Inside a transaction: one pending outbox row per planned receiver, due now. */
static int write_outbox(rc_actions_t *a, int64_t event_id, const json_t *plan, int64_t now) {
  sqlite3 *h = rc_db_handle(a->db);
  size_t i;
  json_t *x;
  json_array_foreach(plan, i, x) {
    const char *name = json_string_value(json_object_get(x, "receiver"));
    const char *target = json_string_value(json_object_get(x, "target"));
    uint64_t deadline = 0;
    if (name == NULL || !rc_delivery_receiver(a->delivery, name, &deadline)) {
      /* Gone from the config while the event waited for approval. */
      rc_log(RC_LOG_WARN, "a planned receiver is no longer configured", "event=%lld receiver=%s",
             (long long)event_id, name ? name : "?");
      continue;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO outbox(event_id, receiver, state,"
                              " next_attempt_at, deadline_at, target) VALUES (?,?,'pending',?,?,?)",
                           -1, &st, NULL) != SQLITE_OK)
      return -1;
    sqlite3_bind_int64(st, 1, event_id);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + (int64_t)deadline);
    if (target) sqlite3_bind_text(st, 5, target, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
    if (rc != 0) return -1;
  }
  return 0;
}

/* Who may not approve the rollback of a deploy: its deployer and whoever recorded it. */
static json_t *deployers_of(rc_actions_t *a, const rc_deploy_t *cur) {
  json_t *arr = json_array();
  if (cur == NULL) return arr;
  if (cur->deployer[0]) json_array_append_new(arr, json_string(cur->deployer));
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(a->db), "SELECT recorded_by FROM deploys WHERE id = ?", -1,
                         &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, cur->id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
      const char *by = (const char *)sqlite3_column_text(st, 0);
      if (strcmp(by, cur->deployer) != 0) json_array_append_new(arr, json_string(by));
    }
  }
  sqlite3_finalize(st);
  return arr;
}

static void audit(rc_actions_t *a, int64_t at, const char *actor, const char *action,
                  const char *subject, json_t *detail /* stolen */) {
  if (a->audit_cb != NULL) a->audit_cb(a->audit_ctx, at, actor, action, subject, detail);
  json_decref(detail);
}

struct rec_args;
static void audit_event(rc_actions_t *a, const firing_t *f, int status, const struct rec_args *x);

/* What record() needs beyond the firing. */
typedef struct rec_args {
  const rc_deploy_t *cur, *prev;
  const char *key, *payload, *why;
  const rc_gate_t *gate;      /* for ST_NEEDS_APPROVAL */
  const char *requester;      /* a person's request, or NULL */
  int64_t event_id;           /* out: the new event's id, or the one a duplicate repeats */
  char dup_why[160];          /* a duplicate's reason (why points here then) */
} rec_args_t;

/* Writes the event (and, for a rollback, its outbox rows and the deploy's mark; for one
 * that needs approval, its request) in one transaction. Returns the status actually recorded
 * (ST_DUPLICATE if the key existed) or -1. */
static int record(rc_actions_t *a, const firing_t *f, int status, rec_args_t *x) {
  sqlite3 *h = rc_db_handle(a->db);
  const rc_deploy_t *cur = x->cur, *prev = x->prev;
  if (exec(h, "BEGIN IMMEDIATE") != 0) return -1;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(h,
                              "INSERT OR IGNORE INTO rollback_events(idempotency_key, service,"
                              " environment, deploy_id, from_version, to_version, from_artifact,"
                              " to_artifact, trigger, value, threshold, op, window_ms, status,"
                              " created_at, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              -1, &st, NULL) == SQLITE_OK ? 0 : -1;
  if (rc == 0) {
    sqlite3_bind_text(st, 1, x->key, -1, SQLITE_STATIC);
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
    sqlite3_bind_text(st, 16, x->payload, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
  }
  sqlite3_finalize(st);
  int inserted = rc == 0 && sqlite3_changes(h) == 1;
  int64_t event_id = sqlite3_last_insert_rowid(h);
  if (rc == 0 && !inserted) {
    /* The reason decide() found (a cooldown, say) is not why nothing new is recorded: the
     * deploy already has this event. The log and the audit name it. */
    status = ST_DUPLICATE;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(h, "SELECT id, status FROM rollback_events WHERE idempotency_key = ?",
                           -1, &q, NULL) == SQLITE_OK) {
      sqlite3_bind_text(q, 1, x->key, -1, SQLITE_STATIC);
      if (sqlite3_step(q) == SQLITE_ROW) {
        x->event_id = sqlite3_column_int64(q, 0);
        snprintf(x->dup_why, sizeof(x->dup_why), "this deploy already has its event %lld (%s)",
                 (long long)x->event_id, (const char *)sqlite3_column_text(q, 1));
        x->why = x->dup_why;
      }
    }
    sqlite3_finalize(q);
  }
  if (rc == 0 && inserted) x->event_id = event_id;
  /* Every firing is a fact for the audit trail, a duplicate included (the trigger fired
   * again for a deploy that already has its event); first, so that what follows from the
   * event (its approval request) comes after it. */
  if (rc == 0) audit_event(a, f, status, x);
  if (rc == 0 && inserted && (status == ST_ROLLBACK || status == ST_NOTIFY ||
                              status == ST_NEEDS_APPROVAL)) {
    json_t *plan = plan_outbox(a, x->requester ? NULL : f);
    if (status == ST_NEEDS_APPROVAL) {
      json_t *deps = deployers_of(a, cur);
      /* Without a gate (actions.h) the event is recorded and never sent. */
      rc = a->approvals == NULL ? 0
                                : rc_approvals_open(a->approvals, event_id, x->gate, x->requester,
                                                    deps, x->why, plan, f->at_ms);
      json_decref(deps);
    } else {
      rc = write_outbox(a, event_id, plan, f->at_ms);
    }
    json_decref(plan);
    if (rc == 0 && cur != NULL && status == ST_ROLLBACK)
      rc = rc_deploys_mark_rolled_back(a->db, cur->id) == 0 ? 0 : -1;
  }
  if (rc == 0 && exec(h, "COMMIT") == 0) {
    rc_db_note_write(a->db, 1, NULL);
    return status;
  }
  /* Before ROLLBACK, while sqlite3_errmsg still tells why. */
  rc_db_note_write(a->db, 0, "rollback event");
  char q[300];
  rc_log(RC_LOG_ERROR, "cannot record a rollback event", "service=%s environment=%s err=%s",
         f->service, f->environment,
         rc_log_quote(q, sizeof(q), rc_db_write_error(a->db), strlen(rc_db_write_error(a->db))));
  exec(h, "ROLLBACK");
  return -1;
}

/* A trigger that fired stopped: receivers that track incidents (PagerDuty) are told, with
 * the dedup key of the event they got. A "resolved" event is recorded, keyed from the
 * original's key, with an outbox row for each such receiver that had the original. */
static int handle_resolved(rc_actions_t *a, const firing_t *f) {
  sqlite3 *h = rc_db_handle(a->db);
  sqlite3_stmt *st = NULL;
  int64_t orig = 0;
  char *payload = NULL, key[33] = "";
  if (sqlite3_prepare_v2(h, "SELECT id, idempotency_key, payload FROM rollback_events"
                            " WHERE service = ? AND environment = ? AND trigger = ?"
                            " AND status IN ('rollback', 'notify') ORDER BY id DESC LIMIT 1",
                         -1, &st, NULL) != SQLITE_OK)
    return 0;
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
  /* The audit entry and the resolve event in one transaction: a store that refuses the one
   * refuses both, and the retry writes both. */
  int rc = sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
  if (rc == 0) {
    char subject[2 * RC_DEPLOY_FIELD_MAX + 2];
    snprintf(subject, sizeof(subject), "%s/%s", f->service, f->environment);
    audit(a, f->at_ms, "ripcord", "trigger.resolved", subject,
          json_pack("{s:s,s:s,s:f}", "trigger", f->trigger, "rule_file", f->file, "value",
                    f->value));
    rc = sqlite3_exec(h, "SAVEPOINT resolve", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
  }
  if (rc == 0 && payload != NULL && sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO rollback_events(idempotency_key,"
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
  } else if (payload != NULL) {
    rc = -1;
  }
  int inserted = rc == 0 && payload != NULL && sqlite3_changes(h) == 1;
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
  free(payload);
  /* No receiver tracks the incident: nothing to tell, no event (the audit entry stays). */
  if (rc == 0 && inserted && rows == 0) {
    rc = sqlite3_exec(h, "ROLLBACK TO resolve", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
    inserted = 0;
  }
  if (rc == 0 && sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) == SQLITE_OK) {
    rc_db_note_write(a->db, 1, NULL);
    if (inserted) {
      a->by_status[ST_RESOLVED]++;
      rc_delivery_kick(a->delivery);
    }
    return 0;
  }
  rc_db_note_write(a->db, 0, "resolve event");
  sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  return -1;
}

/* The outcome of deciding on a firing or a person's request. */
typedef struct outcome {
  int status;          /* ST_* recorded, or -1 (not recorded: see http/why) */
  int64_t event_id;
  int http;            /* manual requests refused before recording: 409 etc. */
  int store_failed;    /* the store refused the write: retry later (held, or 503) */
  char why[1400];
  rc_deploy_t cur, prev;
} outcome_t;

/* Decides and records. requester != NULL: a person's request (POST /api/v1/rollbacks), which
 * always goes through the approval gate and is refused (nothing recorded) when there is
 * nothing to roll back. */
static void decide(rc_actions_t *a, const firing_t *f, const char *requester, const char *reason,
                   outcome_t *out) {
  memset(out, 0, sizeof(*out));
  out->status = -1;
  rc_deploy_t cur, prev;
  int prc = RC_ENOENT;
  int have_cur = rc_deploys_lookup(a->db, f->service, f->environment, &cur, &prev, &prc) == 0;
  int have_prev = have_cur && prc == 0;
  int irreversible = 0;
  json_t *undo = have_cur ? migrations_to_undo(a->db, cur.id, &irreversible) : json_array();
  int status = ST_ROLLBACK;
  const char *why = "";
  char rehearse_why[300] = "";
  if (have_cur && have_prev && requester == NULL)
    rehearsal_check(a->db, f, undo, rehearse_why, sizeof(rehearse_why));
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
  else if (rehearse_why[0])
    status = ST_NEEDS_APPROVAL, why = rehearse_why;
  else if (f->at_ms - cur.started_at_ms > a->cfg.rollback_window_ms)
    status = ST_NEEDS_APPROVAL, why = "the rollback window has passed";
  else if (a->cfg.cooldown_ms > 0 && recent_rollback(a->db, f, f->at_ms - a->cfg.cooldown_ms))
    status = ST_COOLDOWN, why = "another rollback of this target within the cooldown";
  else if (f->gate.always)
    status = ST_NEEDS_APPROVAL, why = "the rule requires approval for every rollback";
  char manual_why[1200];
  if (requester != NULL) {
    int64_t pending = a->approvals ? rc_approvals_pending_for(a->approvals, f->service,
                                                              f->environment) : 0;
    if (!have_cur || !have_prev) {
      out->http = 409;
      snprintf(out->why, sizeof(out->why), "%s/%s has %s", f->service, f->environment,
               !have_cur ? "no deploy recorded" : "no previous version to roll back to");
    } else if (cur.rolled_back) {
      out->http = 409;
      snprintf(out->why, sizeof(out->why), "%s/%s: version %s is already being rolled back",
               f->service, f->environment, cur.version);
    } else if (pending != 0) {
      out->http = 409;
      snprintf(out->why, sizeof(out->why), "%s/%s already has a pending rollback request: %lld",
               f->service, f->environment, (long long)pending);
    }
    if (out->http) {
      json_decref(undo);
      return;
    }
    status = ST_NEEDS_APPROVAL;
    snprintf(manual_why, sizeof(manual_why), "manual rollback requested by %s: %s", requester,
             reason);
    why = manual_why;
  }
  char key[33];
  if (have_cur && have_prev) {
    int acts = !(status == ST_DRY_RUN || status == ST_NOTIFY);
    idempotency_key(f, &cur, &prev, acts ? NULL : status_names[status], key);
  } else { /* nothing to roll back: one record per target and minute is plenty */
    rc_deploy_t none = {.id = f->at_ms / 60000};
    snprintf(none.version, sizeof(none.version), "%s", status_names[status]);
    idempotency_key(f, have_cur ? &cur : &none, &none, NULL, key);
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
  if (doc != NULL && requester != NULL) {
    json_object_set_new(doc, "requested_by", json_string(requester));
    json_object_set_new(doc, "kind", json_string("manual_rollback"));
  }
  char *payload = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if (payload == NULL) {
    json_decref(doc);
    return;
  }
  rec_args_t x = {.cur = have_cur ? &cur : NULL, .prev = have_prev ? &prev : NULL, .key = key,
                  .payload = payload, .why = why, .gate = &f->gate, .requester = requester};
  int got = record(a, f, status, &x);
  if (got == ST_DUPLICATE && requester != NULL) {
    /* The deploy had an event that was never sent (rejected, expired): this request is a new
     * one, with a key of its own. */
    char salted[64];
    snprintf(salted, sizeof(salted), "%s/manual/%lld", key, (long long)f->at_ms);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(salted, strlen(salted), md, &mdlen, EVP_sha256(), NULL);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
      key[2 * i] = digits[md[i] >> 4];
      key[2 * i + 1] = digits[md[i] & 15];
    }
    json_object_set_new(doc, "idempotency_key", json_string(key));
    free(payload);
    payload = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    x.payload = payload;
    x.why = why;
    x.event_id = 0;
    got = payload ? record(a, f, status, &x) : -1;
  }
  int store_failed = got < 0 && payload != NULL; /* record() ran and the store refused */
  json_decref(doc);
  free(payload);
  out->status = got;
  out->store_failed = store_failed;
  out->event_id = x.event_id;
  out->cur = cur;
  out->prev = prev;
  snprintf(out->why, sizeof(out->why), "%s", x.why);
  if (got < 0) return;
  a->by_status[got]++;
  char q[1500];
  rc_log(got == ST_ROLLBACK ? RC_LOG_WARN : RC_LOG_INFO, "rollback event",
         "service=%s environment=%s status=%s from=%s to=%s trigger=%s key=%s reason=%s",
         f->service, f->environment, status_names[got], have_cur ? cur.version : "-",
         have_prev ? prev.version : "-", f->trigger, key,
         rc_log_quote(q, sizeof(q), x.why, strlen(x.why)));
  if (got == ST_ROLLBACK || got == ST_NOTIFY) rc_delivery_kick(a->delivery);
}

/* Returns -1 when the store refused the write (the firing is to be held and retried). */
static int handle(rc_actions_t *a, const firing_t *f) {
  if (f->resolved) return handle_resolved(a, f);
  outcome_t out;
  decide(a, f, NULL, NULL, &out);
  return out.store_failed ? -1 : 0;
}

/*------------------------------------------------------------------------------------------
 * Held firings: the store could not take them
 *----------------------------------------------------------------------------------------*/

static int same_firing(const firing_t *x, const firing_t *y) {
  return x->resolved == y->resolved && strcmp(x->service, y->service) == 0 &&
         strcmp(x->environment, y->environment) == 0 && strcmp(x->trigger, y->trigger) == 0;
}

static void free_firing(firing_t *f) {
  rc_gate_free(&f->gate);
  free(f);
}

static void on_retry(uv_timer_t *t);

/* Keeps a firing the store refused, to be decided and recorded again when it takes writes.
 * Its time stays the firing's: the event says when the trigger fired, not when the disk had
 * room. Takes f. */
static void hold(rc_actions_t *a, firing_t *f) {
  f->next = NULL;
  /* The last held entry of the same trigger and kind stands for this one: it is decided
   * afresh against the registry when retried, and gets the same idempotency key. */
  const firing_t *last = NULL;
  for (const firing_t *h = a->held; h != NULL; h = h->next)
    if (strcmp(h->service, f->service) == 0 && strcmp(h->environment, f->environment) == 0 &&
        strcmp(h->trigger, f->trigger) == 0)
      last = h;
  if (last != NULL && same_firing(last, f)) {
    free_firing(f);
    return;
  }
  if (a->nheld >= MAX_HELD) {
    a->held_dropped++;
    rc_log(RC_LOG_ERROR, "ROLLBACK EVENT LOST: the store has refused writes for too long and "
                         "the held firings are at their bound",
           "service=%s environment=%s trigger=%s held=%u", f->service, f->environment,
           f->trigger, a->nheld);
    free_firing(f);
    return;
  }
  if (a->held_tail) a->held_tail->next = f;
  else a->held = f;
  a->held_tail = f;
  a->nheld++;
  a->held_total++;
  rc_log(RC_LOG_ERROR, "rollback event held in memory until the store takes writes",
         "service=%s environment=%s trigger=%s resolved=%d held=%u retry_in_ms=%llu",
         f->service, f->environment, f->trigger, f->resolved, a->nheld,
         (unsigned long long)a->retry_ms);
  if (!uv_is_active((uv_handle_t *)&a->retry))
    uv_timer_start(&a->retry, on_retry, a->retry_ms, 0);
}

/* Tries the held firings oldest first; at the first refusal the rest wait for the next try
 * (the store that refused one refuses the next), and the delay doubles up to RETRY_MAX_MS. */
static void on_retry(uv_timer_t *t) {
  rc_actions_t *a = t->data;
  firing_t *f = a->held;
  a->held = a->held_tail = NULL;
  a->nheld = 0;
  int refused = 0;
  uint32_t done = 0;
  while (f != NULL) {
    firing_t *n = f->next;
    f->next = NULL;
    if (!refused && handle(a, f) == 0) {
      free_firing(f);
      done++;
    } else {
      refused = 1;
      if (a->held_tail) a->held_tail->next = f;
      else a->held = f;
      a->held_tail = f;
      a->nheld++;
    }
    f = n;
  }
  if (done > 0)
    rc_log(RC_LOG_WARN, "held rollback events recorded", "count=%u still_held=%u", done,
           a->nheld);
  if (a->held != NULL) {
    a->retry_ms = a->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : a->retry_ms * 2;
    uv_timer_start(&a->retry, on_retry, a->retry_ms, 0);
  } else {
    a->retry_ms = RETRY_MIN_MS;
  }
}

/* The audit entry of a recorded event, inside its transaction. */
static void audit_event(rc_actions_t *a, const firing_t *f, int status, const rec_args_t *x) {
  char subject[2 * RC_DEPLOY_FIELD_MAX + 2];
  snprintf(subject, sizeof(subject), "%s/%s", f->service, f->environment);
  const char *action = x->requester ? "rollback.requested" : "trigger.fired";
  audit(a, f->at_ms, x->requester ? x->requester : "ripcord", action, subject,
        json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:f,s:f,s:s}", "event", (json_int_t)x->event_id,
                  "decision", status_names[status], "key", x->key, "from",
                  x->cur ? x->cur->version : "", "to", x->prev ? x->prev->version : "",
                  "trigger", f->trigger, "value", f->value, "threshold", f->threshold, "reason",
                  x->why ? x->why : ""));
}

/* The approval gate opened (inside the vote's transaction): the outbox rows planned when the
 * event was recorded, and the deploy's rolled_back mark. */
static int on_gate_open(void *ctx, int64_t event_id, const json_t *outbox,
                        const json_t *approved_by, int64_t now) {
  rc_actions_t *a = ctx;
  (void)approved_by;
  sqlite3_stmt *st = NULL;
  int64_t deploy_id = 0;
  if (sqlite3_prepare_v2(rc_db_handle(a->db), "SELECT deploy_id FROM rollback_events WHERE id = ?",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, event_id);
    if (sqlite3_step(st) == SQLITE_ROW) deploy_id = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  if (write_outbox(a, event_id, outbox, now) != 0) return -1;
  if (deploy_id > 0 && rc_deploys_mark_rolled_back(a->db, deploy_id) != 0) return -1;
  a->by_status[ST_ROLLBACK]++;
  return 0;
}

static void on_gate_opened(void *ctx, int64_t event_id) {
  rc_actions_t *a = ctx;
  rc_log(RC_LOG_WARN, "rollback approved: sending", "event=%lld", (long long)event_id);
  rc_delivery_kick(a->delivery);
}

void rc_actions_set_approvals(rc_actions_t *a, rc_approvals_t *ap) {
  a->approvals = ap;
  if (ap != NULL) rc_approvals_set_callbacks(ap, on_gate_open, on_gate_opened, a);
}

void rc_actions_set_audit(rc_actions_t *a, rc_actions_audit_cb cb, void *ctx) {
  a->audit_cb = cb;
  a->audit_ctx = ctx;
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
  /* Resolved here, while the rule is alive (a reload may free it before the loop thread
   * looks); the config's approvals: never change while running. */
  if (!f->resolved) rc_approvals_resolve(a->approvals, r->environment, &r->approval, &f->gate);
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
    /* Behind held firings, a new one waits its turn: events keep their order. */
    if (a->held != NULL || handle(a, rev) != 0) hold(a, rev);
    else free_firing(rev);
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
  uv_timer_init(loop, &a->retry);
  a->retry.data = a;
  a->retry_ms = RETRY_MIN_MS;
  a->handles_open = 2;
  *out = a;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  rc_actions_t *a = h->data;
  if (--a->handles_open > 0) return;
  firing_t *f = atomic_exchange(&a->stack, NULL);
  while (f != NULL) {
    firing_t *n = f->next;
    free_firing(f);
    f = n;
  }
  if (a->nheld > 0)
    rc_log(RC_LOG_ERROR, "stopping with rollback events the store never took: they are lost "
                         "unless the triggers fire again after the restart",
           "held=%u", a->nheld);
  for (f = a->held; f != NULL;) {
    firing_t *n = f->next;
    free_firing(f);
    f = n;
  }
  free(a);
}

void rc_actions_close(rc_actions_t *a) {
  if (a == NULL) return;
  uv_close((uv_handle_t *)&a->async, on_closed);
  uv_close((uv_handle_t *)&a->retry, on_closed);
}

/*------------------------------------------------------------------------------------------
 * GET /api/v1/rollbacks, metrics
 *----------------------------------------------------------------------------------------*/

static void json_answer(rc_http_response_t *res, int status, json_t *doc /* stolen */) {
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  res->status = s ? status : 500;
  res->content_type = "application/json";
  rc_buf_puts(&res->body, s ? s : "{\"status\":\"error\",\"error\":\"out of memory\"}");
  rc_buf_puts(&res->body, "\n");
  free(s);
}

static void json_fail(rc_http_response_t *res, int status, const char *why) {
  json_answer(res, status, json_pack("{s:s,s:s}", "status", "error", "error", why));
}

/* Events (newest first) with their deliveries and approval; one when id > 0. */
static json_t *list_events(rc_actions_t *a, int64_t id, const char *status, int limit) {
  sqlite3 *h = rc_db_handle(a->db);
  json_t *arr = json_array();
  sqlite3_stmt *st = NULL, *ds = NULL;
  if (sqlite3_prepare_v2(h, "SELECT id, payload FROM rollback_events WHERE (?1 = 0 OR id = ?1)"
                            " AND (?2 IS NULL OR status = ?2) ORDER BY id DESC LIMIT ?3",
                         -1, &st, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(h, "SELECT receiver, state, attempts, last_status, last_error,"
                            " delivered_at FROM outbox WHERE event_id = ? ORDER BY id", -1, &ds,
                         NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, id);
    if (status) sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, limit);
    while (sqlite3_step(st) == SQLITE_ROW) {
      int64_t eid = sqlite3_column_int64(st, 0);
      json_t *ev = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);
      if (ev == NULL) continue;
      json_object_set_new(ev, "id", json_integer(eid));
      json_t *dl = json_array();
      sqlite3_reset(ds);
      sqlite3_bind_int64(ds, 1, eid);
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
      json_t *appr = rc_approvals_describe(a->approvals, eid);
      if (appr != NULL) json_object_set_new(ev, "approval", appr);
      json_array_append_new(arr, ev);
    }
  }
  sqlite3_finalize(st);
  sqlite3_finalize(ds);
  return arr;
}

/* The body of POST /api/v1/rollbacks. */
int rc_actions_parse_request(const char *body, size_t len, json_t **doc, const char **svc,
                             const char **env, const char **reason, char *why, size_t cap) {
  json_error_t je;
  json_t *b = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES, &je);
  const char *key;
  json_t *v;
  int bad = 0;
  *svc = *env = *reason = NULL;
  if (b == NULL) {
    snprintf(why, cap, "bad JSON body at line %d column %d: %s", je.line, je.column,
             rc_err_printable(je.text, sizeof(je.text), je.text));
    bad = 1;
  } else if (!json_is_object(b)) {
    snprintf(why, cap, "the body must be a JSON object: {\"service\", \"environment\", "
                       "\"reason\"}");
    bad = 1;
  } else {
    json_object_foreach(b, key, v) {
      const char **dst = !strcmp(key, "service")       ? svc
                         : !strcmp(key, "environment") ? env
                         : !strcmp(key, "reason")      ? reason
                                                       : NULL;
      size_t max = dst == reason ? 1000 : RC_DEPLOY_FIELD_MAX - 1;
      if (dst == NULL) {
        char k[41];
        snprintf(why, cap, "unknown field \"%s\" (known: service, environment, reason)",
                 rc_err_printable(k, sizeof(k), key));
        bad = 1;
      } else if (!json_is_string(v) || json_string_length(v) == 0 ||
                 json_string_length(v) > max ||
                 strlen(json_string_value(v)) != json_string_length(v)) {
        snprintf(why, cap, "%s must be a non-empty string of at most %zu bytes", key, max);
        bad = 1;
      } else {
        *dst = json_string_value(v);
      }
      if (bad) break;
    }
    if (!bad && (*svc == NULL || *env == NULL || *reason == NULL)) {
      snprintf(why, cap, "missing field: %s (a manual rollback names the service, the "
               "environment and a reason)", !*svc ? "service" : !*env ? "environment" : "reason");
      bad = 1;
    }
  }
  if (bad) {
    json_decref(b);
    *svc = *env = *reason = NULL;
    return RC_EPARSE;
  }
  *doc = b;
  return 0;
}

/* POST /api/v1/rollbacks {"service", "environment", "reason"}. */
static void manual_request(rc_actions_t *a, const rc_http_request_t *req, const char *requester,
                           rc_http_response_t *res) {
  if (requester == NULL) {
    json_fail(res, 403, "a manual rollback needs to know who asks: configure identities: with "
                        "tokens");
    return;
  }
  if (a->approvals == NULL) {
    json_fail(res, 503, "approvals are not available");
    return;
  }
  char why[240];
  const char *svc = NULL, *env = NULL, *reason = NULL;
  json_t *b = NULL;
  if (rc_actions_parse_request(req->body, req->body_len, &b, &svc, &env, &reason, why,
                               sizeof(why)) != 0) {
    json_fail(res, 400, why);
    return;
  }
  firing_t *f = calloc(1, sizeof(*f));
  if (f == NULL) {
    json_decref(b);
    json_fail(res, 500, "out of memory");
    return;
  }
  snprintf(f->service, sizeof(f->service), "%s", svc);
  snprintf(f->environment, sizeof(f->environment), "%s", env);
  snprintf(f->trigger, sizeof(f->trigger), "manual");
  snprintf(f->action, sizeof(f->action), "previous_version");
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  f->at_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  rc_approvals_resolve(a->approvals, f->environment, NULL, &f->gate);
  outcome_t out;
  decide(a, f, requester, reason, &out);
  json_decref(b);
  if (out.http) {
    json_fail(res, out.http, out.why);
  } else if (out.store_failed) {
    char msg[400];
    snprintf(msg, sizeof(msg), "the embedded store cannot be written (%s): retry later",
             rc_db_write_error(a->db));
    rc_buf_printf(&res->headers, "Retry-After: 10\r\n");
    json_fail(res, rc_db_http_status(a->db), msg);
  } else if (out.status != ST_NEEDS_APPROVAL || out.event_id == 0) {
    json_fail(res, 500, "cannot record the rollback request");
  } else {
    json_t *ev = list_events(a, out.event_id, NULL, 1);
    json_t *one = json_array_get(ev, 0);
    json_answer(res, 202, json_pack("{s:s,s:O?}", "status", "success", "data", one));
    json_decref(ev);
  }
  rc_gate_free(&f->gate);
  free(f);
}

int rc_actions_handle(rc_actions_t *a, const rc_http_request_t *req, const char *requester,
                      rc_http_response_t *res) {
  static const char path[] = "/api/v1/rollbacks";
  size_t np = sizeof(path) - 1;
  if (req->path_len < np || memcmp(req->path, path, np) != 0) return 0;
  int64_t id = 0;
  if (req->path_len > np) {
    /* /api/v1/rollbacks/{id}; .../approve|reject is the approvals' */
    if (req->path[np] != '/') return 0;
    const char *p = req->path + np + 1, *end = req->path + req->path_len;
    if (memchr(p, '/', (size_t)(end - p)) != NULL) return 0;
    for (; p < end; p++) {
      if (*p < '0' || *p > '9' || id > 100000000000000LL) {
        json_fail(res, 400, "the rollback id must be a positive whole number");
        return 1;
      }
      id = id * 10 + (*p - '0');
    }
    if (id == 0) {
      json_fail(res, 400, "the rollback id must be a positive whole number");
      return 1;
    }
  }
  if (a == NULL) {
    json_fail(res, 503, "no actions");
    return 1;
  }
  if (id == 0 && req->method == HTTP_POST) {
    manual_request(a, req, requester, res);
    return 1;
  }
  if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
    rc_buf_puts(&res->headers, id ? "Allow: GET, HEAD\r\n" : "Allow: GET, HEAD, POST\r\n");
    json_fail(res, 405, id ? "method not allowed: use GET" : "method not allowed: use GET or POST");
    return 1;
  }
  char status[32];
  long ns = rc_http_query_param(req, "status", status, sizeof(status));
  int64_t limit = 200;
  if (rc_http_query_int(req, "limit", 1, 1000, &limit) < 0) {
    json_fail(res, 400, "bad parameter: limit (1 to 1000)");
    return 1;
  }
  int known = ns == RC_HTTP_QP_ABSENT;
  for (int i = 0; !known && i < ST__COUNT; i++) known = strcmp(status, status_names[i]) == 0;
  static const char *const gate_states[] = {"rejected", "expired", "superseded"};
  for (size_t i = 0; !known && i < RC_ARRAY_SIZE(gate_states); i++)
    known = strcmp(status, gate_states[i]) == 0;
  if (!known) {
    json_fail(res, 400, "bad parameter: status (e.g. rollback, needs_approval, rejected, "
                        "expired, notify, dry_run)");
    return 1;
  }
  json_t *arr = list_events(a, id, ns >= 0 ? status : NULL, id ? 1 : (int)limit);
  if (id != 0 && json_array_size(arr) == 0) {
    json_decref(arr);
    char why[80];
    snprintf(why, sizeof(why), "no rollback event %lld", (long long)id);
    json_fail(res, 404, why);
    return 1;
  }
  json_answer(res, 200, json_pack("{s:s,s:o}", "status", "success", "data",
                                  id ? json_incref(json_array_get(arr, 0)) : json_incref(arr)));
  json_decref(arr);
  return 1;
}

void rc_actions_render_metrics(rc_actions_t *a, rc_buf_t *o) {
  if (a == NULL) return;
  rc_buf_puts(o, "# HELP ripcord_rollback_events_total Firings that became rollback events, by "
                 "what was decided.\n# TYPE ripcord_rollback_events_total counter\n");
  for (int i = 0; i < ST__COUNT; i++)
    rc_buf_printf(o, "ripcord_rollback_events_total{status=\"%s\"} %llu\n", status_names[i],
                  (unsigned long long)a->by_status[i]);
  rc_buf_printf(o,
                "# HELP ripcord_rollback_events_held Firings the embedded store refused, held "
                "in memory and retried.\n# TYPE ripcord_rollback_events_held gauge\n"
                "ripcord_rollback_events_held %u\n"
                "# HELP ripcord_rollback_events_held_total Firings that had to be held.\n"
                "# TYPE ripcord_rollback_events_held_total counter\n"
                "ripcord_rollback_events_held_total %llu\n"
                "# HELP ripcord_rollback_events_lost_total Held firings dropped at the bound "
                "(the store refused writes for too long).\n"
                "# TYPE ripcord_rollback_events_lost_total counter\n"
                "ripcord_rollback_events_lost_total %llu\n",
                a->nheld, (unsigned long long)a->held_total,
                (unsigned long long)a->held_dropped);
}
