/* deploys.h: the deploy registry — what version of which service is live in which
 * environment, what was live before, and the database migrations each deploy applied — in
 * the embedded store (db.h), with its HTTP API:
 *
 *   POST /api/v1/deploys                 {service, environment, version, artifact?, deployer?,
 *                                         started_at? (RFC 3339 or ms; default now),
 *                                         is_rollback? (bool), migrations?: [{id, reversible,
 *                                         applied_at?}]}  -> 201 {"id": N}
 *   GET  /api/v1/deploys?service=&environment=&limit=   -> history, newest first
 *   GET  /api/v1/services/{service}/{environment}/previous-version -> the version, as text
 *   GET  /api/v1/services?limit=         -> every target recorded (by service, environment):
 *                                         {service, environment, deploys (count), current,
 *                                         previous (null when none)}, each deploy as {id,
 *                                         version, artifact, deployer, started_at, is_rollback}
 *
 * "Previous" is the version to roll back to: walking back from the current (newest) deploy,
 * the first deploy that was not itself rolled back and does not carry the current version.
 * A deploy is marked rolled back when a rollback away from it is recorded (issue 5's rollback
 * events; rc_deploys_mark_rolled_back).
 *
 * Threads: the loop thread (the handlers and the registry share its db connection).
 */
#ifndef RC_DEPLOYS_H
#define RC_DEPLOYS_H

#include <stdint.h>

#include "audit.h"
#include "db.h"
#include "http.h"
#include "rc.h"

#define RC_DEPLOY_FIELD_MAX 256

typedef struct rc_deploy {
  int64_t id;
  char service[RC_DEPLOY_FIELD_MAX], environment[RC_DEPLOY_FIELD_MAX];
  char version[RC_DEPLOY_FIELD_MAX], artifact[RC_DEPLOY_FIELD_MAX],
      deployer[RC_DEPLOY_FIELD_MAX];
  int64_t started_at_ms;
  int is_rollback, rolled_back;
} rc_deploy_t;

/* Records a deploy from its JSON (the POST body), with the identity that sent it
 * (recorded_by, may be NULL) and its audit entry in the same transaction (audit may be NULL).
 * Returns 0 and *id; RC_EPARSE (bad JSON or a bad field: the reason in err, for a 400);
 * RC_EIO. */
int rc_deploys_record_json(rc_db_t *db, const char *json, size_t len, int64_t now_ms,
                           const char *recorded_by, rc_audit_t *audit, int64_t *id,
                           rc_err_t *err);
/* The current deploy of a target (newest by started_at, then by id) into *cur and, when
 * prev != NULL, the one a rollback would go back to into *prev, from one walk of its history.
 * Returns 0, RC_ENOENT (no deploy) or RC_EIO; *prev_rc (may be NULL) gets the same for prev
 * (RC_ENOENT without a current deploy). */
int rc_deploys_lookup(rc_db_t *db, const char *service, const char *environment,
                      rc_deploy_t *cur, rc_deploy_t *prev, int *prev_rc);
/* Either one alone. Return 0, RC_ENOENT (none) or RC_EIO. */
int rc_deploys_current(rc_db_t *db, const char *service, const char *environment,
                       rc_deploy_t *out);
int rc_deploys_previous(rc_db_t *db, const char *service, const char *environment,
                        rc_deploy_t *out);
/* The start (ms) of the current deploy of a target: the engine's deploy-aware windows
 * (engine.h rc_engine_deploy_fn; ctx is the rc_db_t). 0, or -1 when none is recorded. */
int rc_deploys_start_of(void *db, const char *service, const char *environment, int64_t *start);
/* Marks deploy id as rolled back (it will never be "previous" again). 0, RC_ENOENT, RC_EIO. */
int rc_deploys_mark_rolled_back(rc_db_t *db, int64_t id);

/* The HTTP handlers. Each returns 1 when it handled the path. */
int rc_deploys_handle(rc_db_t *db, rc_audit_t *audit, const rc_http_request_t *req,
                      const char *actor, rc_http_response_t *res);

#endif
