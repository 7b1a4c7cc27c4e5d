/* approvals.c: the approval gate — policy, votes, expiry; see approvals.h. */
#include "approvals.h"

#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define DEFAULT_TIMEOUT_MS (30 * 60 * 1000LL)
#define MAX_COMMENT 1000

struct rc_approvals {
  uv_loop_t *loop;
  rc_db_t *db;
  const rc_approval_env_cfg_t *envs;
  size_t nenvs;
  uv_timer_t timer;
  int timer_open;
  rc_approvals_open_cb open_cb;
  rc_approvals_opened_cb opened_cb;
  void *cb_ctx;
  rc_approvals_audit_cb audit_cb;
  void *audit_ctx;
  uint64_t opened, approvals, rejected, expired, superseded, refused;
  int expiry_refused;  /* the last expiry pass found the store refusing writes */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 2026-11-27T10:00:00.000Z */
static void fmt_time(int64_t ms, char *out, size_t cap) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

void rc_approval_cfg_free(rc_approval_cfg_t *c) {
  for (uint32_t i = 0; i < c->napprovers; i++) free(c->approvers[i]);
  for (uint32_t i = 0; i < c->ngroups; i++) free(c->groups[i]);
  free(c->approvers);
  free(c->groups);
  free(c->rehearse_in);
  memset(c, 0, sizeof(*c));
  c->when_always = -1;
}

void rc_gate_free(rc_gate_t *g) {
  json_decref(g->approvers);
  free(g->rehearse_in);
  memset(g, 0, sizeof(*g));
}

/*------------------------------------------------------------------------------------------
 * Policy
 *----------------------------------------------------------------------------------------*/

static const rc_approval_env_cfg_t *env_entry(const rc_approvals_t *ap, const char *env) {
  for (size_t i = 0; i < ap->nenvs; i++)
    if (strcmp(ap->envs[i].environment, env) == 0) return &ap->envs[i];
  for (size_t i = 0; i < ap->nenvs; i++)
    if (strcmp(ap->envs[i].environment, "*") == 0) return &ap->envs[i];
  return NULL;
}

static json_t *approvers_json(const rc_approval_cfg_t *c) {
  json_t *ids = json_array(), *groups = json_array();
  for (uint32_t i = 0; i < c->napprovers; i++) json_array_append_new(ids, json_string(c->approvers[i]));
  for (uint32_t i = 0; i < c->ngroups; i++) json_array_append_new(groups, json_string(c->groups[i]));
  return json_pack("{s:o,s:o}", "identities", ids, "groups", groups);
}

void rc_approvals_resolve(const rc_approvals_t *ap, const char *environment,
                          const rc_approval_cfg_t *rule, rc_gate_t *out) {
  const rc_approval_env_cfg_t *e = ap ? env_entry(ap, environment) : NULL;
  const rc_approval_cfg_t *layers[2] = {rule, e ? &e->policy : NULL};
  memset(out, 0, sizeof(*out));
  out->always = -1;
  for (int i = 0; i < 2; i++) {
    const rc_approval_cfg_t *c = layers[i];
    if (c == NULL) continue;
    if (out->always < 0 && c->when_always >= 0) out->always = c->when_always;
    if (out->required == 0 && c->required > 0) out->required = c->required;
    if (out->timeout_ms == 0 && c->timeout_ms > 0) out->timeout_ms = c->timeout_ms;
    if (out->approvers == NULL && c->has_approvers) out->approvers = approvers_json(c);
    /* Out of memory leaves it unset: the rollback is then decided without the check. */
    if (out->rehearse_in == NULL && c->rehearse_in != NULL &&
        strcmp(c->rehearse_in, environment) != 0)
      out->rehearse_in = strdup(c->rehearse_in);
  }
  if (out->always < 0) out->always = 0;
  if (out->required == 0) out->required = strcmp(environment, "production") == 0 ? 2 : 1;
  if (out->timeout_ms == 0) out->timeout_ms = DEFAULT_TIMEOUT_MS;
}

/*------------------------------------------------------------------------------------------
 * The vote rules
 *----------------------------------------------------------------------------------------*/

static int in_array(const json_t *arr, const char *name) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) return 1;
  }
  return 0;
}

static int eligible(const rc_vote_view_t *v, const rc_voter_t *who) {
  if (v->approvers == NULL || json_is_null(v->approvers)) return who->is_approver;
  if (in_array(json_object_get(v->approvers, "identities"), who->name)) return 1;
  const json_t *groups = json_object_get(v->approvers, "groups");
  for (size_t i = 0; i < who->ngroups; i++)
    if (in_array(groups, who->groups[i])) return 1;
  return 0;
}

static void list_approvers(const json_t *approvers, char *out, size_t cap) {
  size_t n = 0, i;
  json_t *x;
  out[0] = 0;
  json_array_foreach(json_object_get(approvers, "identities"), i, x) {
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "",
                          json_string_value(x));
    if (n >= cap) return;
  }
  json_array_foreach(json_object_get(approvers, "groups"), i, x) {
    n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%sgroup %s", n ? ", " : "",
                          json_string_value(x));
    if (n >= cap) return;
  }
}

int rc_approvals_judge(const rc_vote_view_t *v, const rc_voter_t *who, int vote, int64_t now,
                       char *why, size_t cap) {
  const char *verb = vote == RC_VOTE_APPROVE ? "approve" : "reject";
  char t[40];
  /* The request first: a closed one is closed for everybody. */
  if (strcmp(v->state, "pending") != 0) {
    fmt_time(v->closed_at_ms, t, sizeof(t));
    if (strcmp(v->state, "expired") == 0)
      snprintf(why, cap, "rollback request %" PRId64 " expired at %s: request a new one", v->id, t);
    else if (strcmp(v->state, "superseded") == 0)
      snprintf(why, cap, "rollback request %" PRId64 " was closed at %s: the target has had a "
               "new deploy since", v->id, t);
    else
      snprintf(why, cap, "rollback request %" PRId64 " is closed: %s by %s at %s", v->id,
               v->state, v->closed_by ? v->closed_by : "ripcord", t);
    return 409;
  }
  if (now >= v->expires_at_ms) {
    fmt_time(v->expires_at_ms, t, sizeof(t));
    snprintf(why, cap, "rollback request %" PRId64 " expired at %s: request a new one", v->id, t);
    return 409;
  }
  /* Then the voter. */
  if (!eligible(v, who)) {
    char list[200];
    list_approvers(v->approvers, list, sizeof(list));
    if (v->approvers == NULL || json_is_null(v->approvers))
      snprintf(why, cap, "identity \"%s\" may not %s: it does not have the approver role",
               who->name, verb);
    else
      snprintf(why, cap, "identity \"%s\" is not an eligible approver of request %" PRId64
               " (eligible: %s)", who->name, v->id, list);
    return 403;
  }
  if (v->requester != NULL && strcmp(v->requester, who->name) == 0) {
    snprintf(why, cap, "no self-approval: \"%s\" requested this rollback and may not %s it",
             who->name, verb);
    return 403;
  }
  if (v->deployers != NULL && in_array(v->deployers, who->name)) {
    snprintf(why, cap, "no self-approval: \"%s\" deployed the version being rolled back and may "
             "not %s its rollback", who->name, verb);
    return 403;
  }
  if (v->voted != NULL && in_array(v->voted, who->name)) {
    snprintf(why, cap, "\"%s\" has already approved request %" PRId64 ": approvals must come "
             "from distinct identities", who->name, v->id);
    return 409;
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Requests in the database
 *----------------------------------------------------------------------------------------*/

static int exec(sqlite3 *h, const char *sql) {
  return sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : RC_EIO;
}

static void audit(rc_approvals_t *ap, int64_t at, const char *actor, const char *action,
                  int64_t event_id, json_t *detail /* stolen */) {
  if (ap->audit_cb != NULL) {
    char subject[32];
    snprintf(subject, sizeof(subject), "event:%" PRId64, event_id);
    ap->audit_cb(ap->audit_ctx, at, actor, action, subject, detail);
  }
  json_decref(detail);
}

int rc_approvals_open(rc_approvals_t *ap, int64_t event_id, const rc_gate_t *g,
                      const char *requester, const json_t *deployers, const char *reason,
                      const json_t *outbox, int64_t now) {
  sqlite3 *h = rc_db_handle(ap->db);
  sqlite3_stmt *st = NULL;
  char *appr = g->approvers ? json_dumps(g->approvers, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  char *deps = json_dumps(deployers, JSON_COMPACT);
  char *ob = json_dumps(outbox, JSON_COMPACT);
  int rc = RC_EIO;
  if (deps != NULL && ob != NULL &&
      sqlite3_prepare_v2(h, "INSERT INTO approval_requests(event_id, requester, reason, required,"
                            " approvers, deployers, outbox, created_at, expires_at, state)"
                            " VALUES (?,?,?,?,?,?,?,?,?,'pending')", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, event_id);
    if (requester) sqlite3_bind_text(st, 2, requester, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, g->required);
    sqlite3_bind_text(st, 5, appr ? appr : "null", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, deps, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, ob, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now);
    sqlite3_bind_int64(st, 9, now + g->timeout_ms);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : RC_EIO;
  }
  sqlite3_finalize(st);
  if (rc == 0) {
    ap->opened++;
    audit(ap, now, requester ? requester : "ripcord", "approval.requested", event_id,
          json_pack("{s:s,s:i,s:I,s:O?}", "reason", reason, "required", g->required,
                    "expires_at", (json_int_t)now + (json_int_t)g->timeout_ms, "approvers",
                    g->approvers));
  }
  free(appr);
  free(deps);
  free(ob);
  return rc;
}

/* A request row with what the vote rules and the release need. */
typedef struct req_row {
  int64_t id, expires_at, closed_at, deploy_id;
  int required;
  char state[16], closed_by[128], service[128], environment[128];
  char *requester;
  json_t *deployers, *approvers, *outbox, *voted;
} req_row_t;

static void req_free(req_row_t *r) {
  free(r->requester);
  json_decref(r->deployers);
  json_decref(r->approvers);
  json_decref(r->outbox);
  json_decref(r->voted);
}

static json_t *col_json(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  return s ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
}

static void col_str(sqlite3_stmt *st, int i, char *out, size_t cap) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  snprintf(out, cap, "%s", s ? s : "");
}

/* Returns 0, RC_ENOENT or RC_EIO. */
static int load_request(rc_approvals_t *ap, int64_t id, req_row_t *r) {
  sqlite3 *h = rc_db_handle(ap->db);
  sqlite3_stmt *st = NULL;
  memset(r, 0, sizeof(*r));
  r->id = id;
  if (sqlite3_prepare_v2(h, "SELECT q.state, q.expires_at, COALESCE(q.closed_at, 0), q.closed_by,"
                            " q.requester, q.deployers, q.approvers, q.outbox, q.required,"
                            " e.deploy_id, e.service, e.environment"
                            " FROM approval_requests q JOIN rollback_events e ON e.id = q.event_id"
                            " WHERE q.event_id = ?", -1, &st, NULL) != SQLITE_OK)
    return RC_EIO;
  sqlite3_bind_int64(st, 1, id);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? RC_ENOENT : RC_EIO;
  }
  col_str(st, 0, r->state, sizeof(r->state));
  r->expires_at = sqlite3_column_int64(st, 1);
  r->closed_at = sqlite3_column_int64(st, 2);
  col_str(st, 3, r->closed_by, sizeof(r->closed_by));
  if (sqlite3_column_type(st, 4) != SQLITE_NULL)
    r->requester = strdup((const char *)sqlite3_column_text(st, 4));
  r->deployers = col_json(st, 5);
  r->approvers = col_json(st, 6);
  r->outbox = col_json(st, 7);
  r->required = sqlite3_column_int(st, 8);
  r->deploy_id = sqlite3_column_int64(st, 9);
  col_str(st, 10, r->service, sizeof(r->service));
  col_str(st, 11, r->environment, sizeof(r->environment));
  sqlite3_finalize(st);
  r->voted = json_array();
  if (sqlite3_prepare_v2(h, "SELECT identity FROM approval_votes WHERE event_id = ? AND"
                            " decision = 'approve' ORDER BY at, identity", -1, &st, NULL) != SQLITE_OK)
    return RC_EIO;
  sqlite3_bind_int64(st, 1, id);
  while (sqlite3_step(st) == SQLITE_ROW)
    json_array_append_new(r->voted, json_string((const char *)sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  return 0;
}

/* The request's event gets its final status (the payload's too, so the listing and any later
 * delivery agree). Inside a transaction. */
static int set_event_status(sqlite3 *h, int64_t id, const char *status, const char *reason,
                            const json_t *extra /* merged into the payload, may be NULL */) {
  sqlite3_stmt *st = NULL;
  json_t *ev = NULL;
  if (sqlite3_prepare_v2(h, "SELECT payload FROM rollback_events WHERE id = ?", -1, &st, NULL) ==
      SQLITE_OK) {
    sqlite3_bind_int64(st, 1, id);
    if (sqlite3_step(st) == SQLITE_ROW)
      ev = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
  }
  sqlite3_finalize(st);
  if (ev == NULL) return -1;
  json_object_set_new(ev, "status", json_string(status));
  if (reason) json_object_set_new(ev, "reason", json_string(reason));
  if (extra) json_object_update(ev, (json_t *)extra);
  char *payload = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(ev);
  int rc = -1;
  if (payload && sqlite3_prepare_v2(h, "UPDATE rollback_events SET status = ?, payload = ?"
                                       " WHERE id = ?", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, status, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, payload, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, id);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
    sqlite3_finalize(st);
  }
  free(payload);
  return rc;
}

static int close_request(sqlite3 *h, int64_t id, const char *state, int64_t at, const char *by) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(h, "UPDATE approval_requests SET state = ?, closed_at = ?, closed_by = ?"
                            " WHERE event_id = ? AND state = 'pending'", -1, &st, NULL) != SQLITE_OK)
    return -1;
  sqlite3_bind_text(st, 1, state, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, at);
  if (by) sqlite3_bind_text(st, 3, by, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, id);
  int rc = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(h) == 1 ? 0 : -1;
  sqlite3_finalize(st);
  return rc;
}

/* The deploy the target is on now (0 when none), and whether it is being rolled back
 * already (an automatic rollback went out while the request waited). */
static int64_t current_deploy(sqlite3 *h, const char *service, const char *environment,
                              int *rolled_back) {
  sqlite3_stmt *st = NULL;
  int64_t id = 0;
  *rolled_back = 0;
  if (sqlite3_prepare_v2(h, "SELECT id, rolled_back FROM deploys WHERE service = ? AND"
                            " environment = ? ORDER BY started_at DESC, id DESC LIMIT 1", -1, &st,
                         NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, environment, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) {
    id = sqlite3_column_int64(st, 0);
    *rolled_back = sqlite3_column_int(st, 1);
  }
  sqlite3_finalize(st);
  return id;
}

/*------------------------------------------------------------------------------------------
 * Expiry
 *----------------------------------------------------------------------------------------*/

static void schedule(rc_approvals_t *ap);

/* Closes every pending request whose time is up. Returns how many. */
static int expire_due(rc_approvals_t *ap, int64_t now) {
  sqlite3 *h = rc_db_handle(ap->db);
  sqlite3_stmt *st = NULL;
  int64_t ids[64], exp[64];
  int n = 0;
  if (sqlite3_prepare_v2(h, "SELECT event_id, expires_at FROM approval_requests WHERE"
                            " state = 'pending' AND expires_at <= ? ORDER BY expires_at LIMIT 64",
                         -1, &st, NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_int64(st, 1, now);
  while (n < 64 && sqlite3_step(st) == SQLITE_ROW) {
    ids[n] = sqlite3_column_int64(st, 0);
    exp[n] = sqlite3_column_int64(st, 1);
    n++;
  }
  sqlite3_finalize(st);
  int done = 0;
  ap->expiry_refused = 0;
  for (int i = 0; i < n; i++) {
    if (exec(h, "BEGIN IMMEDIATE") != 0) {
      rc_db_note_write(ap->db, 0, "approval expiry");
      ap->expiry_refused = 1;
      break;
    }
    char t[40], why[120];
    fmt_time(exp[i], t, sizeof(t));
    snprintf(why, sizeof(why), "the approval request expired at %s without enough approvals", t);
    /* Closed at its expiry time, not when we noticed (a restart may notice late). */
    int ok = close_request(h, ids[i], "expired", exp[i], NULL) == 0 &&
             set_event_status(h, ids[i], "expired", why, NULL) == 0;
    if (ok) audit(ap, now, "ripcord", "approval.expired", ids[i],
                  json_pack("{s:I,s:I}", "expires_at", (json_int_t)exp[i], "noticed_at",
                            (json_int_t)now));
    if (ok && exec(h, "COMMIT") == 0) {
      rc_db_note_write(ap->db, 1, NULL);
      ap->expired++;
      done++;
      rc_log(RC_LOG_WARN, "rollback approval request expired", "event=%" PRId64 " expired_at=%s",
             ids[i], t);
    } else {
      /* The store refused: the request stays pending (and refuses votes as expired, since
       * votes check the time) until a later pass can close it. */
      rc_db_note_write(ap->db, 0, "approval expiry");
      ap->expiry_refused = 1;
      exec(h, "ROLLBACK");
      break;
    }
  }
  return done;
}

static void on_timer(uv_timer_t *t) {
  rc_approvals_t *ap = t->data;
  expire_due(ap, now_ms());
  schedule(ap);
}

static void schedule(rc_approvals_t *ap) {
  if (!ap->timer_open) return;
  sqlite3_stmt *st = NULL;
  int64_t next = 0;
  if (sqlite3_prepare_v2(rc_db_handle(ap->db), "SELECT MIN(expires_at) FROM approval_requests"
                                               " WHERE state = 'pending'", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
    next = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  uv_timer_stop(&ap->timer);
  if (next == 0) return;
  int64_t wait = next - now_ms();
  /* A due request the store would not close is retried every 5 s, not in a busy loop. */
  if (ap->expiry_refused && wait < 5000) wait = 5000;
  uv_timer_start(&ap->timer, on_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

/*------------------------------------------------------------------------------------------
 * Votes
 *----------------------------------------------------------------------------------------*/

static void json_error(rc_http_response_t *res, int status, const char *why) {
  res->status = status;
  res->content_type = "application/json";
  json_t *doc = json_pack("{s:s,s:s}", "status", "error", "error", why);
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  rc_buf_puts(&res->body, s ? s : "{\"status\":\"error\",\"error\":\"out of memory\"}");
  rc_buf_puts(&res->body, "\n");
  free(s);
  json_decref(doc);
}

/* /api/v1/rollbacks/{id}/approve -> id and the vote; 0 when the path is not of that shape. */
static int parse_path(const rc_http_request_t *req, int64_t *id, int *vote, int *bad_id) {
  static const char pre[] = "/api/v1/rollbacks/";
  size_t np = sizeof(pre) - 1;
  *bad_id = 0;
  if (req->path_len <= np || memcmp(req->path, pre, np) != 0) return 0;
  const char *p = req->path + np, *end = req->path + req->path_len;
  const char *slash = memchr(p, '/', (size_t)(end - p));
  if (slash == NULL) return 0;
  size_t vl = (size_t)(end - slash - 1);
  if (vl == 7 && memcmp(slash + 1, "approve", 7) == 0) *vote = RC_VOTE_APPROVE;
  else if (vl == 6 && memcmp(slash + 1, "reject", 6) == 0) *vote = RC_VOTE_REJECT;
  else return 0;
  int64_t v = 0;
  if (p == slash || slash - p > 15) *bad_id = 1;
  for (const char *q = p; q < slash && !*bad_id; q++) {
    if (*q < '0' || *q > '9') *bad_id = 1;
    else v = v * 10 + (*q - '0');
  }
  if (!*bad_id && v == 0) *bad_id = 1;
  *id = v;
  return 1;
}

int rc_approvals_handle(rc_approvals_t *ap, const rc_http_request_t *req, const rc_voter_t *who,
                        rc_http_response_t *res) {
  int64_t id = 0;
  int vote = 0, bad_id = 0;
  if (!parse_path(req, &id, &vote, &bad_id)) return 0;
  const char *verb = vote == RC_VOTE_APPROVE ? "approve" : "reject";
  if (req->method != HTTP_POST) {
    res->status = 405;
    rc_buf_puts(&res->headers, "Allow: POST\r\n");
    json_error(res, 405, "method not allowed: use POST");
    return 1;
  }
  if (bad_id) {
    json_error(res, 400, "the rollback id must be a positive whole number");
    return 1;
  }
  if (ap == NULL) {
    json_error(res, 503, "approvals are not available");
    return 1;
  }
  if (who == NULL) {
    ap->refused++;
    json_error(res, 403, "approvals need to know who votes: configure identities: with tokens");
    return 1;
  }
  /* Optional body: {"comment": "..."}. */
  char comment[MAX_COMMENT + 1] = "";
  if (req->body_len > 0) {
    json_error_t je;
    json_t *b = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    const char *key;
    json_t *v;
    int bad = b == NULL || !json_is_object(b);
    char why[200] = "the body must be a JSON object: {\"comment\": \"...\"}";
    if (b == NULL) snprintf(why, sizeof(why), "bad JSON body at line %d column %d: %s", je.line,
                            je.column, rc_err_printable(je.text, sizeof(je.text), je.text));
    if (!bad) json_object_foreach(b, key, v) {
        if (strcmp(key, "comment") != 0) {
          char k[41];
          snprintf(why, sizeof(why), "unknown field \"%s\" (known: comment)",
                   rc_err_printable(k, sizeof(k), key));
          bad = 1;
        } else if (!json_is_string(v) || json_string_length(v) > MAX_COMMENT) {
          snprintf(why, sizeof(why), "comment must be a string of at most %d bytes", MAX_COMMENT);
          bad = 1;
        } else {
          snprintf(comment, sizeof(comment), "%s", json_string_value(v));
        }
      }
    json_decref(b);
    if (bad) {
      json_error(res, 400, why);
      return 1;
    }
  }
  int64_t now = now_ms();
  sqlite3 *h = rc_db_handle(ap->db);
  if (exec(h, "BEGIN IMMEDIATE") != 0) {
    json_error(res, 503, "the database is busy; try again");
    return 1;
  }
  req_row_t r;
  int lr = load_request(ap, id, &r);
  if (lr != 0) {
    exec(h, "ROLLBACK");
    req_free(&r);
    char why[120];
    snprintf(why, sizeof(why), lr == RC_ENOENT ? "no rollback request %" PRId64 " (unknown id, or "
             "the event did not need approval)" : "cannot read request %" PRId64, id);
    json_error(res, lr == RC_ENOENT ? 404 : 500, why);
    return 1;
  }
  rc_vote_view_t view = {.id = id, .state = r.state, .expires_at_ms = r.expires_at,
                         .closed_at_ms = r.closed_at, .closed_by = r.closed_by[0] ? r.closed_by : NULL,
                         .requester = r.requester, .deployers = r.deployers,
                         .approvers = r.approvers, .voted = r.voted};
  char why[600];
  int status = rc_approvals_judge(&view, who, vote, now, why, sizeof(why));
  /* The target moved on (a new deploy, perhaps the fix): the request no longer means what it
   * meant. Closed rather than acted on. */
  int superseded = 0, rolled_back = 0;
  if (status == 0 && vote == RC_VOTE_APPROVE &&
      (current_deploy(h, r.service, r.environment, &rolled_back) != r.deploy_id || rolled_back)) {
    superseded = 1;
    status = 409;
    snprintf(why, sizeof(why), "rollback request %" PRId64 " is closed: %s/%s %s since it was "
             "made", id, r.service, r.environment,
             rolled_back ? "is already being rolled back" : "has had a new deploy");
  }
  int rc = 0, opened = 0;
  const char *state = "pending";
  if (status != 0) {
    /* An expiry the timer has not applied yet, or a superseded request: close it now. */
    if (superseded || (strcmp(r.state, "pending") == 0 && now >= r.expires_at)) {
      const char *st_name = superseded ? "superseded" : "expired";
      int64_t at = superseded ? now : r.expires_at;
      rc = close_request(h, id, st_name, at, NULL) == 0 &&
                   set_event_status(h, id, st_name, why, NULL) == 0
               ? 0
               : -1;
      if (rc == 0) {
        audit(ap, now, "ripcord", superseded ? "approval.superseded" : "approval.expired", id,
              json_pack("{s:s}", "noticed_by_vote_of", who->name));
        if (superseded) ap->superseded++;
        else ap->expired++;
      }
    }
    /* A refused vote is a security-relevant fact too. */
    audit(ap, now, who->name, "approval.refused", id,
          json_pack("{s:s,s:i,s:s}", "vote", verb, "status", status, "reason", why));
    ap->refused++;
    if (rc == 0 && exec(h, "COMMIT") == 0) {
      char q[700];
      rc_log(RC_LOG_WARN, "approval vote refused", "event=%" PRId64 " identity=%s vote=%s "
             "reason=%s", id, who->name, verb, rc_log_quote(q, sizeof(q), why, strlen(why)));
    } else {
      exec(h, "ROLLBACK");
    }
    req_free(&r);
    json_error(res, status, why);
    return 1;
  }
  sqlite3_stmt *st = NULL;
  rc = sqlite3_prepare_v2(h, "INSERT INTO approval_votes(event_id, identity, decision, at, comment)"
                             " VALUES (?,?,?,?,?)", -1, &st, NULL) == SQLITE_OK ? 0 : -1;
  if (rc == 0) {
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, who->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, vote == RC_VOTE_APPROVE ? "approve" : "reject", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    if (comment[0]) sqlite3_bind_text(st, 5, comment, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -1;
  }
  sqlite3_finalize(st);
  int have = (int)json_array_size(r.voted) + (vote == RC_VOTE_APPROVE);
  if (rc == 0 && vote == RC_VOTE_APPROVE) json_array_append_new(r.voted, json_string(who->name));
  audit(ap, now, who->name, vote == RC_VOTE_APPROVE ? "approval.approved" : "approval.rejected", id,
        json_pack("{s:s,s:i,s:i}", "comment", comment, "approvals", have, "required",
                  r.required));
  if (rc == 0 && vote == RC_VOTE_REJECT) {
    char reason[200];
    snprintf(reason, sizeof(reason), "rejected by %s", who->name);
    rc = close_request(h, id, "rejected", now, who->name) == 0 &&
                 set_event_status(h, id, "rejected", reason, NULL) == 0
             ? 0
             : -1;
    state = "rejected";
  } else if (rc == 0 && have >= r.required) {
    json_t *extra = json_pack("{s:O}", "approved_by", r.voted);
    rc = close_request(h, id, "approved", now, who->name) == 0 &&
                 set_event_status(h, id, "rollback", "approved", extra) == 0 &&
                 (ap->open_cb == NULL || ap->open_cb(ap->cb_ctx, id, r.outbox, r.voted, now) == 0)
             ? 0
             : -1;
    json_decref(extra);
    if (rc == 0)
      audit(ap, now, "ripcord", "rollback.released", id,
            json_pack("{s:O,s:O}", "approved_by", r.voted, "outbox", r.outbox));
    state = "approved";
    opened = 1;
  }
  if (rc == 0 && exec(h, "COMMIT") == 0) {
    rc_db_note_write(ap->db, 1, NULL);
    if (vote == RC_VOTE_APPROVE) ap->approvals++;
    else ap->rejected++;
    rc_log(RC_LOG_WARN, "approval vote", "event=%" PRId64 " identity=%s vote=%s approvals=%d "
           "required=%d state=%s", id, who->name, verb, have, r.required, state);
    if (opened && ap->opened_cb) ap->opened_cb(ap->cb_ctx, id);
    if (strcmp(state, "pending") != 0) schedule(ap);
    json_t *doc = json_pack("{s:s,s:{s:I,s:s,s:i,s:i,s:O}}", "status", "success", "data", "id",
                            (json_int_t)id, "state", state, "approvals", have, "required",
                            r.required, "approved_by", r.voted);
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    res->status = 200;
    res->content_type = "application/json";
    rc_buf_puts(&res->body, s ? s : "{}");
    rc_buf_puts(&res->body, "\n");
    free(s);
    json_decref(doc);
  } else {
    rc_db_note_write(ap->db, 0, "approval vote"); /* before ROLLBACK: it reads the error */
    exec(h, "ROLLBACK");
    int code = rc_db_http_status(ap->db);
    char msg[400];
    snprintf(msg, sizeof(msg), "the vote was not recorded: the embedded store cannot be "
                               "written (%s)%s", rc_db_write_error(ap->db),
             code == 503 ? "; retry later" : "");
    if (code == 503) rc_buf_printf(&res->headers, "Retry-After: 10\r\n");
    json_error(res, code, msg);
  }
  req_free(&r);
  return 1;
}

/*------------------------------------------------------------------------------------------
 * Reading
 *----------------------------------------------------------------------------------------*/

json_t *rc_approvals_describe(rc_approvals_t *ap, int64_t event_id) {
  if (ap == NULL) return NULL;
  req_row_t r;
  if (load_request(ap, event_id, &r) != 0) {
    req_free(&r);
    return NULL;
  }
  json_t *votes = json_array();
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(ap->db), "SELECT identity, decision, at, comment FROM"
                                               " approval_votes WHERE event_id = ? ORDER BY at, identity",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, event_id);
    while (sqlite3_step(st) == SQLITE_ROW)
      json_array_append_new(votes, json_pack("{s:s,s:s,s:I,s:s?}", "identity",
                                             (const char *)sqlite3_column_text(st, 0), "decision",
                                             (const char *)sqlite3_column_text(st, 1), "at",
                                             (json_int_t)sqlite3_column_int64(st, 2), "comment",
                                             (const char *)sqlite3_column_text(st, 3)));
  }
  sqlite3_finalize(st);
  json_t *doc = json_pack("{s:s,s:i,s:i,s:I,s:s?,s:O?,s:O?,s:o}", "state", r.state, "required",
                          r.required, "approvals", (int)json_array_size(r.voted), "expires_at",
                          (json_int_t)r.expires_at, "requester", r.requester, "approvers",
                          r.approvers, "deployers", r.deployers, "votes", votes);
  if (doc && r.closed_at) {
    json_object_set_new(doc, "closed_at", json_integer(r.closed_at));
    if (r.closed_by[0]) json_object_set_new(doc, "closed_by", json_string(r.closed_by));
  }
  req_free(&r);
  return doc;
}

int64_t rc_approvals_pending_for(rc_approvals_t *ap, const char *service, const char *environment) {
  sqlite3_stmt *st = NULL;
  int64_t id = 0;
  if (sqlite3_prepare_v2(rc_db_handle(ap->db),
                         "SELECT q.event_id FROM approval_requests q JOIN rollback_events e"
                         " ON e.id = q.event_id WHERE q.state = 'pending' AND e.service = ? AND"
                         " e.environment = ? AND q.expires_at > ? LIMIT 1", -1, &st, NULL) != SQLITE_OK)
    return 0;
  sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, environment, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, now_ms());
  if (sqlite3_step(st) == SQLITE_ROW) id = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return id;
}

void rc_approvals_render_metrics(rc_approvals_t *ap, rc_buf_t *o) {
  if (ap == NULL) return;
  int64_t pending = 0;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(ap->db), "SELECT COUNT(*) FROM approval_requests WHERE"
                                               " state = 'pending'", -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    pending = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  rc_buf_printf(o, "# HELP ripcord_approval_requests_pending Rollbacks waiting for approval.\n"
                   "# TYPE ripcord_approval_requests_pending gauge\n"
                   "ripcord_approval_requests_pending %lld\n", (long long)pending);
  rc_buf_printf(o, "# HELP ripcord_approval_requests_total Approval requests opened.\n"
                   "# TYPE ripcord_approval_requests_total counter\n"
                   "ripcord_approval_requests_total %llu\n", (unsigned long long)ap->opened);
  rc_buf_printf(o, "# HELP ripcord_approval_votes_total Votes recorded, by decision.\n"
                   "# TYPE ripcord_approval_votes_total counter\n"
                   "ripcord_approval_votes_total{decision=\"approve\"} %llu\n"
                   "ripcord_approval_votes_total{decision=\"reject\"} %llu\n",
                (unsigned long long)ap->approvals, (unsigned long long)ap->rejected);
  rc_buf_printf(o, "# HELP ripcord_approval_votes_refused_total Votes refused by the gate's rules.\n"
                   "# TYPE ripcord_approval_votes_refused_total counter\n"
                   "ripcord_approval_votes_refused_total %llu\n", (unsigned long long)ap->refused);
  rc_buf_printf(o, "# HELP ripcord_approval_requests_closed_total Requests closed without "
                   "approval, by why.\n# TYPE ripcord_approval_requests_closed_total counter\n"
                   "ripcord_approval_requests_closed_total{state=\"expired\"} %llu\n"
                   "ripcord_approval_requests_closed_total{state=\"superseded\"} %llu\n",
                (unsigned long long)ap->expired, (unsigned long long)ap->superseded);
}

/*------------------------------------------------------------------------------------------
 * Life cycle
 *----------------------------------------------------------------------------------------*/

int rc_approvals_new(uv_loop_t *loop, rc_db_t *db, const rc_approval_env_cfg_t *envs, size_t nenvs,
                     rc_approvals_t **out, rc_err_t *err) {
  rc_approvals_t *ap = calloc(1, sizeof(*ap));
  if (ap == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  ap->loop = loop;
  ap->db = db;
  ap->envs = envs;
  ap->nenvs = nenvs;
  if (loop != NULL) {
    if (uv_timer_init(loop, &ap->timer) != 0) {
      free(ap);
      return rc_err_set(err, RC_ENOMEM, "cannot create the approvals timer");
    }
    ap->timer.data = ap;
    ap->timer_open = 1;
  }
  *out = ap;
  return 0;
}

int rc_approvals_start(rc_approvals_t *ap) {
  int n = expire_due(ap, now_ms());
  if (n > 0)
    rc_log(RC_LOG_WARN, "approval requests expired while ripcord was down", "count=%d", n);
  schedule(ap);
  return 0;
}

void rc_approvals_set_callbacks(rc_approvals_t *ap, rc_approvals_open_cb open,
                                rc_approvals_opened_cb opened, void *ctx) {
  ap->open_cb = open;
  ap->opened_cb = opened;
  ap->cb_ctx = ctx;
}

void rc_approvals_set_audit(rc_approvals_t *ap, rc_approvals_audit_cb cb, void *ctx) {
  ap->audit_cb = cb;
  ap->audit_ctx = ctx;
}

static void on_closed(uv_handle_t *h) { free(h->data); }

void rc_approvals_close(rc_approvals_t *ap) {
  if (ap == NULL) return;
  if (ap->timer_open) {
    ap->timer_open = 0;
    uv_close((uv_handle_t *)&ap->timer, on_closed);
  } else {
    free(ap);
  }
}
