/* test_approvals.c: the approval gate. The vote rules as a table over every branch (closed,
 * expired, ineligible by role / by list / by group, self-approval by the requester and by the
 * deployer, a second vote by one identity); the policy layers (rule, environment entry, "*",
 * defaults); and requests in a real SQLite file driven through the HTTP handler: two
 * approvals open the gate (outbox plan handed over once), a rejection closes it, expiry at
 * the next start and at vote time, a new deploy supersedes, unknown ids and bad bodies. */
#include <http_parser.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "approvals.h"
#include "db.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*------------------------------------------------------------------------------------------
 * The rules, without I/O
 *----------------------------------------------------------------------------------------*/

static void test_judge(void **st) {
  (void)st;
  json_t *deployers = json_pack("[s]", "dana");
  json_t *listed = json_pack("{s:[s,s],s:[s]}", "identities", "alice", "bob", "groups", "sre");
  json_t *voted = json_pack("[s]", "alice");
  const char *sre[] = {"sre"}, *web[] = {"web"};
  int64_t now = 1000000;
  static const struct {
    const char *state;
    int64_t expires;
    const char *requester;
    int listed, have_voted;
    const char *who;
    int is_approver, in_sre, vote, want;
    const char *why;
  } T[] = {
      /* open request, any approver */
      {"pending", 2000000, NULL, 0, 0, "erin", 1, 0, RC_VOTE_APPROVE, 0, NULL},
      {"pending", 2000000, NULL, 0, 0, "erin", 1, 0, RC_VOTE_REJECT, 0, NULL},
      {"pending", 2000000, NULL, 0, 0, "vic", 0, 0, RC_VOTE_APPROVE, 403,
       "does not have the approver role"},
      /* listed identities and groups */
      {"pending", 2000000, NULL, 1, 0, "bob", 1, 0, RC_VOTE_APPROVE, 0, NULL},
      {"pending", 2000000, NULL, 1, 0, "gus", 1, 1, RC_VOTE_APPROVE, 0, NULL},
      {"pending", 2000000, NULL, 1, 0, "erin", 1, 0, RC_VOTE_APPROVE, 403,
       "not an eligible approver of request 7 (eligible: alice, bob, group sre)"},
      /* self-approval */
      {"pending", 2000000, "bob", 1, 0, "bob", 1, 0, RC_VOTE_APPROVE, 403,
       "no self-approval: \"bob\" requested this rollback"},
      {"pending", 2000000, NULL, 0, 0, "dana", 1, 0, RC_VOTE_APPROVE, 403,
       "no self-approval: \"dana\" deployed the version"},
      {"pending", 2000000, NULL, 0, 0, "dana", 1, 0, RC_VOTE_REJECT, 403, "no self-approval"},
      /* distinct identities */
      {"pending", 2000000, NULL, 1, 1, "alice", 1, 0, RC_VOTE_APPROVE, 409,
       "\"alice\" has already approved request 7"},
      {"pending", 2000000, NULL, 1, 1, "bob", 1, 0, RC_VOTE_APPROVE, 0, NULL},
      /* closed and expired: for everybody, before who votes */
      {"pending", 1000000, NULL, 0, 0, "erin", 1, 0, RC_VOTE_APPROVE, 409,
       "rollback request 7 expired at 1970-01-01T00:16:40.000Z"},
      {"expired", 900000, NULL, 0, 0, "erin", 1, 0, RC_VOTE_APPROVE, 409, "expired at"},
      {"rejected", 2000000, NULL, 0, 0, "erin", 1, 0, RC_VOTE_APPROVE, 409,
       "is closed: rejected by carl at"},
      {"approved", 2000000, NULL, 0, 0, "vic", 0, 0, RC_VOTE_APPROVE, 409, "is closed: approved"},
      {"superseded", 2000000, NULL, 0, 0, "erin", 1, 0, RC_VOTE_APPROVE, 409,
       "the target has had a new deploy"},
  };
  for (size_t i = 0; i < sizeof(T) / sizeof(T[0]); i++) {
    rc_vote_view_t v = {.id = 7, .state = T[i].state, .expires_at_ms = T[i].expires,
                        .closed_at_ms = 950000, .closed_by = "carl", .requester = T[i].requester,
                        .deployers = deployers, .approvers = T[i].listed ? listed : NULL,
                        .voted = T[i].have_voted ? voted : NULL};
    rc_voter_t who = {.name = T[i].who, .is_approver = T[i].is_approver,
                      .groups = T[i].in_sre ? sre : web, .ngroups = 1};
    char why[300] = "";
    int got = rc_approvals_judge(&v, &who, T[i].vote, now, why, sizeof(why));
    if (got != T[i].want || (T[i].why && strstr(why, T[i].why) == NULL))
      fail_msg("case %zu: got %d '%s', want %d '%s'", i, got, why, T[i].want,
               T[i].why ? T[i].why : "");
  }
  json_decref(deployers);
  json_decref(listed);
  json_decref(voted);
}

static void test_policy_layers(void **st) {
  (void)st;
  char *ids[] = {"alice"}, *groups[] = {"sre"};
  rc_approval_env_cfg_t envs[] = {
      {.environment = "staging", .policy = {.when_always = 1, .required = 0, .timeout_ms = 60000}},
      {.environment = "*", .policy = {.when_always = -1, .required = 3, .approvers = ids,
                                      .napprovers = 1, .has_approvers = 1,
                                      .rehearse_in = "staging"}},
  };
  rc_approvals_t *ap = NULL;
  rc_err_t err = {0};
  assert_int_equal(rc_approvals_new(NULL, NULL, envs, 2, &ap, &err), 0);
  rc_gate_t g;
  /* staging: its entry (always, 60 s), required from the default for non-production (the
   * "*" entry applies only where no entry names the environment). */
  rc_approvals_resolve(ap, "staging", NULL, &g);
  assert_int_equal(g.always, 1);
  assert_int_equal(g.required, 1);
  assert_true(g.timeout_ms == 60000);
  assert_null(g.approvers);
  assert_null(g.rehearse_in);
  rc_gate_free(&g);
  /* "*" covers dev: its rollbacks are rehearsed in staging (staging has an entry of its own). */
  rc_approvals_resolve(ap, "dev", NULL, &g);
  assert_string_equal(g.rehearse_in, "staging");
  rc_gate_free(&g);
  {
    /* With only "*", staging falls to it too, but is not its own rehearsal. */
    rc_approvals_t *only = NULL;
    assert_int_equal(rc_approvals_new(NULL, NULL, &envs[1], 1, &only, &err), 0);
    rc_approvals_resolve(only, "staging", NULL, &g);
    assert_int_equal(g.required, 3);
    assert_null(g.rehearse_in);
    rc_gate_free(&g);
    rc_approvals_close(only);
  }
  rc_approvals_resolve(ap, "production", NULL, &g);
  assert_int_equal(g.always, 0);
  assert_int_equal(g.required, 3);
  assert_true(g.timeout_ms == 30 * 60000);
  assert_string_equal(json_string_value(json_array_get(json_object_get(g.approvers, "identities"), 0)),
                      "alice");
  assert_string_equal(g.rehearse_in, "staging");
  rc_gate_free(&g);
  /* A rule's own policy wins field by field. */
  rc_approval_cfg_t rule = {.when_always = -1, .required = 1, .groups = groups, .ngroups = 1,
                            .has_approvers = 1};
  rc_approvals_resolve(ap, "production", &rule, &g);
  assert_int_equal(g.required, 1);
  assert_int_equal(json_array_size(json_object_get(g.approvers, "identities")), 0);
  assert_string_equal(json_string_value(json_array_get(json_object_get(g.approvers, "groups"), 0)),
                      "sre");
  rc_gate_free(&g);
  rc_approvals_close(ap);
  /* No config at all: 2 in production, 1 elsewhere, any approver, 30 min. */
  rc_approvals_resolve(NULL, "production", NULL, &g);
  assert_int_equal(g.required, 2);
  assert_null(g.approvers);
  rc_approvals_resolve(NULL, "dev", NULL, &g);
  assert_int_equal(g.required, 1);
  assert_true(g.timeout_ms == 30 * 60000);
}

/*------------------------------------------------------------------------------------------
 * Requests in SQLite, through the handler
 *----------------------------------------------------------------------------------------*/

static char g_dir[64];
static int g_opened;
static json_t *g_outbox;

static int setup(void **st) {
  (void)st;
  snprintf(g_dir, sizeof(g_dir), "/tmp/rc-test-approvals-XXXXXX");
  g_opened = 0;
  return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **st) {
  (void)st;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
  json_decref(g_outbox);
  g_outbox = NULL;
  return system(cmd) == 0 ? 0 : -1;
}

static int on_open(void *ctx, int64_t id, const json_t *outbox, const json_t *by, int64_t now) {
  (void)ctx, (void)id, (void)by, (void)now;
  g_opened++;
  json_decref(g_outbox);
  g_outbox = json_deep_copy(outbox);
  return 0;
}

static void exec_sql(rc_db_t *db, const char *sql) {
  char *msg = NULL;
  if (sqlite3_exec(rc_db_handle(db), sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("%s: %s", sql, msg);
}

/* A deploy pair for checkout/production (deployer dana) and event 1 waiting for approval. */
static rc_approvals_t *fixture(rc_db_t **dbp, int64_t created, int64_t timeout_ms,
                               const char *requester) {
  rc_db_t *db = NULL;
  rc_err_t err = {0};
  if (rc_db_open(g_dir, &db, &err) != 0) fail_msg("open: %s", err.msg);
  exec_sql(db, "INSERT INTO deploys(id, service, environment, version, deployer, started_at,"
               " recorded_at) VALUES (1, 'checkout', 'production', '1.0', 'dana', 1, 1),"
               " (2, 'checkout', 'production', '1.1', 'dana', 2, 2)");
  exec_sql(db, "INSERT INTO rollback_events(id, idempotency_key, service, environment, deploy_id,"
               " from_version, to_version, trigger, status, created_at, payload) VALUES (1, 'k',"
               " 'checkout', 'production', 2, '1.1', '1.0', 'manual', 'needs_approval', 1,"
               " '{\"status\":\"needs_approval\",\"idempotency_key\":\"k\"}')");
  rc_approvals_t *ap = NULL;
  assert_int_equal(rc_approvals_new(NULL, db, NULL, 0, &ap, &err), 0);
  rc_approvals_set_callbacks(ap, on_open, NULL, NULL);
  rc_gate_t g = {0};
  rc_approvals_resolve(ap, "production", NULL, &g);
  g.timeout_ms = timeout_ms;
  json_t *deps = json_pack("[s]", "dana");
  json_t *plan = json_pack("[{s:s}]", "receiver", "deploy");
  exec_sql(db, "BEGIN");
  assert_int_equal(rc_approvals_open(ap, 1, &g, requester, deps, "because", plan, created), 0);
  exec_sql(db, "COMMIT");
  json_decref(deps);
  json_decref(plan);
  rc_gate_free(&g);
  *dbp = db;
  return ap;
}

typedef struct answer {
  int status;
  char body[1024];
} answer_t;

static answer_t vote(rc_approvals_t *ap, const char *path, const char *who, int approver,
                     const char *body) {
  rc_http_request_t req;
  memset(&req, 0, sizeof(req));
  req.method = HTTP_POST;
  req.path = path;
  req.path_len = strlen(path);
  req.body = body;
  req.body_len = body ? strlen(body) : 0;
  rc_http_response_t res;
  memset(&res, 0, sizeof(res));
  rc_voter_t v = {.name = who, .is_approver = approver};
  answer_t a = {0};
  if (!rc_approvals_handle(ap, &req, who ? &v : NULL, &res)) {
    a.status = -1;
    return a;
  }
  a.status = res.status;
  snprintf(a.body, sizeof(a.body), "%.*s", (int)res.body.len, res.body.data);
  rc_buf_free(&res.body);
  rc_buf_free(&res.headers);
  return a;
}

static const char *state_of(rc_db_t *db, const char *table_col) {
  static char out[64];
  sqlite3_stmt *st = NULL;
  char sql[160];
  snprintf(sql, sizeof(sql), "SELECT %s", table_col);
  out[0] = 0;
  if (sqlite3_prepare_v2(rc_db_handle(db), sql, -1, &st, NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(out, sizeof(out), "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return out;
}

#define EXPECT(a, code, text)                                                                  \
  do {                                                                                         \
    answer_t _a = (a);                                                                         \
    if (_a.status != (code) || strstr(_a.body, (text)) == NULL)                                \
      fail_msg("line %d: got %d %s, want %d with '%s'", __LINE__, _a.status, _a.body, (code),  \
               (text));                                                                        \
  } while (0)

static void test_two_approvals_open_the_gate(void **st) {
  (void)st;
  rc_db_t *db;
  rc_approvals_t *ap = fixture(&db, now_ms(), 60000, "rita");
  const char *P = "/api/v1/rollbacks/1/approve";
  EXPECT(vote(ap, P, "rita", 1, NULL), 403, "no self-approval: \\\"rita\\\" requested");
  EXPECT(vote(ap, P, "dana", 1, NULL), 403, "no self-approval: \\\"dana\\\" deployed");
  EXPECT(vote(ap, P, "vic", 0, NULL), 403, "does not have the approver role");
  EXPECT(vote(ap, P, "alice", 1, "{\"comment\":\"saw the graphs\"}"), 200,
         "\"state\":\"pending\"");
  EXPECT(vote(ap, P, "alice", 1, NULL), 409, "approvals must come from distinct identities");
  assert_int_equal(g_opened, 0);
  EXPECT(vote(ap, P, "bob", 1, NULL), 200, "\"state\":\"approved\"");
  assert_int_equal(g_opened, 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(g_outbox, 0), "receiver")),
                      "deploy");
  assert_string_equal(state_of(db, "state FROM approval_requests WHERE event_id = 1"), "approved");
  assert_string_equal(state_of(db, "status FROM rollback_events WHERE id = 1"), "rollback");
  assert_non_null(strstr(state_of(db, "payload FROM rollback_events WHERE id = 1"),
                         "\"approved_by\":[\"alice\",\"bob\"]"));
  /* Closed: a third approval, and a rejection, are refused; the gate opened once. */
  EXPECT(vote(ap, P, "carl", 1, NULL), 409, "is closed: approved by bob");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/reject", "carl", 1, NULL), 409, "is closed");
  assert_int_equal(g_opened, 1);
  /* The votes, with the comment. */
  json_t *d = rc_approvals_describe(ap, 1);
  assert_int_equal(json_array_size(json_object_get(d, "votes")), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(d, "votes"), 0),
                                                        "comment")), "saw the graphs");
  json_decref(d);
  rc_approvals_close(ap);
  rc_db_close(db);
}

static void test_rejection_closes(void **st) {
  (void)st;
  rc_db_t *db;
  rc_approvals_t *ap = fixture(&db, now_ms(), 60000, NULL);
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "alice", 1, NULL), 200, "\"approvals\":1");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/reject", "bob", 1, "{\"comment\":\"it is the CDN\"}"), 200,
         "\"state\":\"rejected\"");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "carl", 1, NULL), 409,
         "is closed: rejected by bob");
  assert_int_equal(g_opened, 0);
  assert_string_equal(state_of(db, "status FROM rollback_events WHERE id = 1"), "rejected");
  rc_approvals_close(ap);
  rc_db_close(db);
}

static void test_expiry(void **st) {
  (void)st;
  rc_db_t *db;
  /* Made 2 s ago with a 1 s time box: expired before anyone voted. */
  rc_approvals_t *ap = fixture(&db, now_ms() - 2000, 1000, NULL);
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "alice", 1, NULL), 409, "expired at");
  /* The vote noticed it: closed at its expiry time, the event too. */
  assert_string_equal(state_of(db, "state FROM approval_requests WHERE event_id = 1"), "expired");
  assert_string_equal(state_of(db, "status FROM rollback_events WHERE id = 1"), "expired");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "bob", 1, NULL), 409, "expired at");
  rc_approvals_close(ap);
  rc_db_close(db);
}

static void test_expiry_at_start(void **st) {
  (void)st;
  rc_db_t *db;
  rc_approvals_t *ap = fixture(&db, now_ms() - 5000, 1000, NULL);
  rc_approvals_close(ap);
  /* "Restart": a new gate over the same file applies the expiry that fell meanwhile. */
  rc_err_t err = {0};
  assert_int_equal(rc_approvals_new(NULL, db, NULL, 0, &ap, &err), 0);
  assert_string_equal(state_of(db, "state FROM approval_requests WHERE event_id = 1"), "pending");
  rc_approvals_start(ap);
  assert_string_equal(state_of(db, "state FROM approval_requests WHERE event_id = 1"), "expired");
  int64_t closed = atoll(state_of(db, "closed_at FROM approval_requests WHERE event_id = 1"));
  int64_t expires = atoll(state_of(db, "expires_at FROM approval_requests WHERE event_id = 1"));
  assert_true(closed == expires); /* closed at its time, not when noticed */
  rc_approvals_close(ap);
  rc_db_close(db);
}

static void test_superseded_by_new_deploy(void **st) {
  (void)st;
  rc_db_t *db;
  rc_approvals_t *ap = fixture(&db, now_ms(), 60000, NULL);
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "alice", 1, NULL), 200, "pending");
  exec_sql(db, "INSERT INTO deploys(id, service, environment, version, started_at, recorded_at)"
               " VALUES (3, 'checkout', 'production', '1.2', 3, 3)");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "bob", 1, NULL), 409, "has had a new deploy");
  assert_string_equal(state_of(db, "state FROM approval_requests WHERE event_id = 1"), "superseded");
  assert_int_equal(g_opened, 0);
  rc_approvals_close(ap);
  rc_db_close(db);
}

static void test_bad_requests(void **st) {
  (void)st;
  rc_db_t *db;
  rc_approvals_t *ap = fixture(&db, now_ms(), 60000, NULL);
  EXPECT(vote(ap, "/api/v1/rollbacks/99/approve", "alice", 1, NULL), 404, "no rollback request 99");
  EXPECT(vote(ap, "/api/v1/rollbacks/x1/approve", "alice", 1, NULL), 400, "positive whole number");
  EXPECT(vote(ap, "/api/v1/rollbacks/0/approve", "alice", 1, NULL), 400, "positive whole number");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", NULL, 0, NULL), 403, "configure identities");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "alice", 1, "{\"coment\":\"x\"}"), 400,
         "unknown field \\\"coment\\\"");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "alice", 1, "[1]"), 400, "JSON object");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "alice", 1, "{\"comment\":1}"), 400,
         "comment must be a string");
  EXPECT(vote(ap, "/api/v1/rollbacks/1/approve", "alice", 1, "{"), 400, "bad JSON body");
  /* Not this module's paths. */
  assert_int_equal(vote(ap, "/api/v1/rollbacks/1", "alice", 1, NULL).status, -1);
  assert_int_equal(vote(ap, "/api/v1/rollbacks/1/approved", "alice", 1, NULL).status, -1);
  /* Nothing was recorded by the refused bodies. */
  assert_string_equal(state_of(db, "COUNT(*) FROM approval_votes"), "0");
  rc_approvals_close(ap);
  rc_db_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_judge),
      cmocka_unit_test(test_policy_layers),
      cmocka_unit_test_setup_teardown(test_two_approvals_open_the_gate, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rejection_closes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_expiry_at_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_superseded_by_new_deploy, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
