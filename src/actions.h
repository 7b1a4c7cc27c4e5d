/* actions.h: what happens when a trigger fires — the rollback event. The engine's fire
 * callback (evaluator thread) hands the firing to the loop thread, which decides and records:
 *
 *   no deploy recorded for the rule's target        -> event "no_deploy", nothing sent
 *   the current deploy is itself a rollback          -> "rollback_of_rollback": a rollback is
 *                                                       never itself rolled back automatically
 *   no previous version                              -> "no_previous"
 *   the trigger is dry_run                           -> "dry_run": recorded and shown, not sent
 *   an irreversible migration in the current deploy,
 *     or its rollback window (24 h) has passed,
 *     or the rule says approval: {when: always}      -> "needs_approval": the event and its
 *                                                       approval request (approvals.h); the
 *                                                       outbox rows follow if people approve
 *   a rollback of the same target within the cooldown -> "cooldown"
 *   otherwise                                        -> "rollback": the event, one outbox row
 *                                                       per receiver and the current deploy's
 *                                                       rolled_back mark, in one transaction;
 *                                                       then the courier (delivery.h) sends
 *
 * One rollback per deploy: the event's idempotency key is derived from (service, environment,
 * deploy id, from -> to version), so a second firing for the same deploy finds the event
 * already there; a replica fed the same stream derives the same key for the receiver to
 * de-duplicate. The payload (generic JSON, jansson) lists the trigger with its value,
 * threshold and window, both versions and artifacts, and the reversible migrations to undo,
 * newest first. GET /api/v1/rollbacks shows events with their deliveries.
 *
 * Threads: rc_actions_fire on any thread (lock-free hand-off + uv_async); everything else on
 * the loop thread.
 */
#ifndef RC_ACTIONS_H
#define RC_ACTIONS_H

#include <uv.h>

#include "approvals.h"
#include "buf.h"
#include "db.h"
#include "delivery.h"
#include "engine.h"
#include "http.h"

typedef struct rc_actions rc_actions_t;

typedef struct rc_actions_cfg {
  int64_t rollback_window_ms; /* --rollback.window, 24 h */
  int64_t cooldown_ms;        /* --rollback.cooldown, 10 min; 0: none */
} rc_actions_cfg_t;

int rc_actions_new(uv_loop_t *loop, rc_db_t *db, rc_delivery_t *delivery,
                   const rc_actions_cfg_t *cfg, rc_actions_t **out, rc_err_t *err);
/* The engine's on_fire callback (ctx: the actions). Any thread. */
void rc_actions_fire(void *ctx, const rc_fire_event_t *ev);
/* Closes the async handle; firings not yet handled are dropped (the trigger still fires on
 * its next evaluation after a restart, and the idempotency key makes that the same event). */
void rc_actions_close(rc_actions_t *a);
/* The approval gate for rollbacks that wait for people (approvals.h); without one, such
 * events are recorded and never sent. */
void rc_actions_set_approvals(rc_actions_t *a, rc_approvals_t *ap);
/* Audit hook: called inside the transaction of each recorded event (detail borrowed). */
typedef void (*rc_actions_audit_cb)(void *ctx, int64_t at_ms, const char *actor,
                                    const char *action, const char *subject,
                                    const json_t *detail);
void rc_actions_set_audit(rc_actions_t *a, rc_actions_audit_cb cb, void *ctx);
/* GET /api/v1/rollbacks[?status=S] and /api/v1/rollbacks/{id}: events with their deliveries
 * and approval; POST /api/v1/rollbacks {service, environment, reason}: a person's request
 * for a rollback to the previous version, through the approval gate (requester: the
 * authenticated identity, NULL without identities — then refused). Returns 1 when it
 * handled the path. */
int rc_actions_handle(rc_actions_t *a, const rc_http_request_t *req, const char *requester,
                      rc_http_response_t *res);
void rc_actions_render_metrics(rc_actions_t *a, rc_buf_t *out);
/* The body of POST /api/v1/rollbacks: a JSON object with non-empty string service,
 * environment (each under RC_DEPLOY_FIELD_MAX bytes) and reason (at most 1000 bytes), no
 * other field. Returns 0 with *doc (the caller json_decref()s it; the strings point into it),
 * or RC_EPARSE with a one-line reason in why. */
int rc_actions_parse_request(const char *body, size_t len, json_t **doc, const char **svc,
                             const char **env, const char **reason, char *why, size_t cap);

#endif
