/* approvals.h: the manual approval gate. A rollback that must not be automatic (the deploy
 * applied an irreversible migration, its rollback window has passed, or the rule says
 * `approval: {when: always}`) and every rollback a person requests (POST /api/v1/rollbacks)
 * wait here for people:
 *
 *   the event is recorded with status needs_approval and one approval_requests row (same
 *   transaction), holding the policy resolved at that moment: approvals required, eligible
 *   approvers, expiry, who deployed the version (they may not approve), who asked (nor they),
 *   and the outbox rows to write when the gate opens.
 *
 *   POST /api/v1/rollbacks/{id}/approve|reject (role approver) records a vote after the rules:
 *   eligible (named identity or group, or any approver when the policy names none), not the
 *   requester, not a deployer of the version, one vote per identity, the request still
 *   pending and not past its expiry, the target still on the deploy it was made for.
 *   A rejection closes it; the required number of approvals opens it: the event becomes
 *   status rollback, its outbox rows and the deploy's rolled_back mark are written in the
 *   vote's transaction, and delivery goes on exactly as for an automatic rollback.
 *
 *   A timer closes requests when they expire; it is set again from the table after a restart,
 *   so expiry fires on time across restarts (an expiry that fell while ripcord was down is
 *   applied at start).
 *
 * Policy layers, most specific first: the rule's action.approval:, the config's approvals:
 * entry for the environment, its entry for "*", then the defaults: 2 approvals in
 * `production`, 1 elsewhere, any identity with the approver role, 30 minutes.
 *
 * Threads: the loop thread only (SQLite connection, timer).
 */
#ifndef RC_APPROVALS_H
#define RC_APPROVALS_H

#include <jansson.h>
#include <uv.h>

#include "approval_cfg.h"
#include "db.h"
#include "http.h"
#include "rules.h"

typedef struct rc_approvals rc_approvals_t;

/* The policy in force for one request. */
typedef struct rc_gate {
  int always;          /* every rollback waits (rule or config said when: always) */
  int required;
  int64_t timeout_ms;
  json_t *approvers;   /* {"identities": [...], "groups": [...]}, or NULL: any approver */
  char *rehearse_in;   /* owned: migrations undone here must have been rolled back there
                        * first (actions.c), or NULL */
} rc_gate_t;

void rc_gate_free(rc_gate_t *g);

/* Who votes: the identity as authentication found it. */
typedef struct rc_voter {
  const char *name;
  int is_approver;     /* has the approver or admin role */
  const char *const *groups;
  size_t ngroups;
} rc_voter_t;

/* A request as the vote rules see it. */
typedef struct rc_vote_view {
  int64_t id;
  const char *state;   /* pending, approved, rejected, expired, superseded */
  int64_t expires_at_ms, closed_at_ms;
  const char *closed_by;
  const char *requester;        /* NULL: made by a firing trigger */
  const json_t *deployers;      /* array of names */
  const json_t *approvers;      /* as rc_gate_t.approvers */
  const json_t *voted;          /* array of names that approved already */
} rc_vote_view_t;

enum { RC_VOTE_REJECT = 0, RC_VOTE_APPROVE = 1 };

/* The vote rules, without I/O. Returns 0 (the vote counts), 403 (this identity may not vote
 * on it) or 409 (the request is not open to votes, or this identity voted already), with a
 * one-line reason in why. */
int rc_approvals_judge(const rc_vote_view_t *v, const rc_voter_t *who, int vote, int64_t now_ms,
                       char *why, size_t cap);

/* envs: the config's approvals: entries (borrowed for the gate's lifetime). */
int rc_approvals_new(uv_loop_t *loop, rc_db_t *db, const rc_approval_env_cfg_t *envs, size_t nenvs,
                     rc_approvals_t **out, rc_err_t *err);
/* Applies expiries that fell while ripcord was down and sets the timer. */
int rc_approvals_start(rc_approvals_t *ap);
void rc_approvals_close(rc_approvals_t *ap);

/* The policy for a rollback of a target in environment, the rule's own (may be NULL) first. */
void rc_approvals_resolve(const rc_approvals_t *ap, const char *environment,
                          const rc_approval_cfg_t *rule, rc_gate_t *out);

/* Inside the caller's transaction: the request row of event_id. deployers and outbox are
 * JSON arrays (borrowed). Returns 0 or RC_EIO. */
int rc_approvals_open(rc_approvals_t *ap, int64_t event_id, const rc_gate_t *g,
                      const char *requester, const json_t *deployers, const char *reason,
                      const json_t *outbox, int64_t now_ms);

/* Called (inside the vote's transaction) when a request gets its last approval: writes the
 * outbox rows and marks the deploy. Set by the actions module. Returns 0 or -1. */
typedef int (*rc_approvals_open_cb)(void *ctx, int64_t event_id, const json_t *outbox,
                                    const json_t *approved_by, int64_t now_ms);
/* Called after commit when a gate opened (to wake delivery). */
typedef void (*rc_approvals_opened_cb)(void *ctx, int64_t event_id);
void rc_approvals_set_callbacks(rc_approvals_t *ap, rc_approvals_open_cb open,
                                rc_approvals_opened_cb opened, void *ctx);

/* Audit hook: called inside the transaction of each change, so the change and its audit
 * entry commit together (action such as "approval.approved", subject "event:12", detail
 * borrowed). */
typedef void (*rc_approvals_audit_cb)(void *ctx, int64_t at_ms, const char *actor,
                                      const char *action, const char *subject,
                                      const json_t *detail);
void rc_approvals_set_audit(rc_approvals_t *ap, rc_approvals_audit_cb cb, void *ctx);

/* POST /api/v1/rollbacks/{id}/approve|reject. who is NULL when ripcord runs without
 * identities (then votes are refused: a gate needs to know who is voting). Returns 1 when the
 * path is this module's. */
int rc_approvals_handle(rc_approvals_t *ap, const rc_http_request_t *req, const rc_voter_t *who,
                        rc_http_response_t *res);

/* The approval part of an event for GET /api/v1/rollbacks, or NULL when it has none. */
json_t *rc_approvals_describe(rc_approvals_t *ap, int64_t event_id);

/* The pending request for a target, if any (for one-at-a-time manual requests): its event id,
 * or 0. */
int64_t rc_approvals_pending_for(rc_approvals_t *ap, const char *service, const char *environment);

void rc_approvals_render_metrics(rc_approvals_t *ap, rc_buf_t *out);

#endif
