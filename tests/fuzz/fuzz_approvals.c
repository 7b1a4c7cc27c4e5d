/* fuzz_approvals.c: the approval gate's request parsers on arbitrary bytes. The first byte
 * picks the target:
 *   even: the body of POST /api/v1/rollbacks (rc_actions_parse_request) — an accepted body
 *         must give three non-empty strings within their limits;
 *   odd:  a vote (rc_approvals_handle) on a real request in a temporary SQLite file — the
 *         rest is "PATH\nBODY"; the answer must be one of the statuses the gate gives, and a
 *         vote is recorded only when the answer is 200.
 */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actions.h"
#include "approvals.h"
#include "db.h"
#include "deploys.h"
#include "fuzz.h"
#include "log.h"

static rc_db_t *g_db;
static rc_approvals_t *g_ap;

static void cleanup(void) {
  rc_approvals_close(g_ap);
  rc_db_close(g_db);
}

static int64_t count_votes(void) {
  sqlite3_stmt *st = NULL;
  int64_t n = -1;
  if (sqlite3_prepare_v2(rc_db_handle(g_db), "SELECT COUNT(*) FROM approval_votes", -1, &st,
                         NULL) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return n;
}

static void setup(void) {
  char dir[] = "/tmp/rc-fuzz-approvals-XXXXXX";
  rc_err_t err = {0};
  if (mkdtemp(dir) == NULL || rc_db_open(dir, &g_db, &err) != 0) abort();
  sqlite3 *h = rc_db_handle(g_db);
  sqlite3_exec(h, "PRAGMA synchronous=OFF", NULL, NULL, NULL);
  if (sqlite3_exec(h,
                   "INSERT INTO deploys(id, service, environment, version, deployer, started_at,"
                   " recorded_at) VALUES (1, 's', 'production', '1', 'dana', 1, 1),"
                   " (2, 's', 'production', '2', 'dana', 2, 2);"
                   "INSERT INTO rollback_events(id, idempotency_key, service, environment,"
                   " deploy_id, trigger, status, created_at, payload) VALUES (1, 'k', 's',"
                   " 'production', 2, 'manual', 'needs_approval', 1, '{}');"
                   "INSERT INTO approval_requests(event_id, requester, reason, required, approvers,"
                   " deployers, outbox, created_at, expires_at, state) VALUES (1, 'rita', 'r',"
                   " 1000000, 'null', '[\"dana\"]', '[]', 1, 9000000000000, 'pending');",
                   NULL, NULL, NULL) != SQLITE_OK)
    abort();
  if (rc_approvals_new(NULL, g_db, NULL, 0, &g_ap, &err) != 0) abort();
  rc_log_set_level(RC_LOG_ERROR); /* every vote logs; the fuzzer needs none of it */
  atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  if ((data[0] & 1) == 0) {
    json_t *doc = NULL;
    const char *svc, *env, *reason;
    char why[240];
    if (rc_actions_parse_request((const char *)data + 1, size - 1, &doc, &svc, &env, &reason,
                                 why, sizeof(why)) == 0) {
      if (!svc || !env || !reason || !*svc || !*env || !*reason || strlen(reason) > 1000 ||
          strlen(svc) >= RC_DEPLOY_FIELD_MAX || strlen(env) >= RC_DEPLOY_FIELD_MAX)
        abort();
      json_decref(doc);
    } else if (why[0] == 0 || strchr(why, '\n') != NULL) {
      abort(); /* a refusal always says why, on one line */
    }
    return 0;
  }
  if (g_db == NULL) setup();
  const char *p = (const char *)data + 1, *end = (const char *)data + size;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  rc_http_request_t req;
  memset(&req, 0, sizeof(req));
  req.method = HTTP_POST;
  req.path = p;
  req.path_len = nl ? (size_t)(nl - p) : (size_t)(end - p);
  req.body = nl ? nl + 1 : NULL;
  req.body_len = nl ? (size_t)(end - nl - 1) : 0;
  rc_http_response_t res;
  memset(&res, 0, sizeof(res));
  static const char *const groups[] = {"sre"};
  rc_voter_t who = {.name = (data[0] & 2) ? "alice" : "rita", .is_approver = 1, .groups = groups,
                    .ngroups = 1};
  int64_t before = count_votes();
  if (rc_approvals_handle(g_ap, &req, &who, &res)) {
    int ok = res.status == 200 || res.status == 400 || res.status == 403 || res.status == 404 ||
             res.status == 405 || res.status == 409;
    if (!ok || (res.status == 200) != (count_votes() == before + 1)) abort();
    /* Put the request back as it was, so every input meets the same state. */
    sqlite3_exec(rc_db_handle(g_db),
                 "DELETE FROM approval_votes; UPDATE approval_requests SET state = 'pending',"
                 " closed_at = NULL, closed_by = NULL; UPDATE rollback_events SET"
                 " status = 'needs_approval', payload = '{}'",
                 NULL, NULL, NULL);
  }
  rc_buf_free(&res.body);
  rc_buf_free(&res.headers);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "\x00{\"service\":\"checkout\",\"environment\":\"production\",\"reason\":\"p99\"}",
      "\x00{\"service\":\"s\",\"environment\":\"e\",\"reason\":\"r\",\"x\":1}",
      "\x00[]",
      "\x03/api/v1/rollbacks/1/approve\n{\"comment\":\"ok\"}",
      "\x03/api/v1/rollbacks/1/reject\n",
      "\x01/api/v1/rollbacks/1/approve",
      "\x03/api/v1/rollbacks/18446744073709551617/approve",
      /* Regression (the CI fuzz smoke's first find, 2026-11-27): a key holding a line break
       * was echoed into the one-line refusal. */
      "\x00{\"service\":\"ch\",\"environm\\nt\":\"ct\",\"reason\":\"p9\"}",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
    size_t n = strlen(seeds[i] + 1) + 1; /* the first byte may be 0 */
    emit((const uint8_t *)seeds[i], n);
  }
}
