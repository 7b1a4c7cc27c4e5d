/* api.h: the HTTP routes — which path goes to which handler — plus the small handlers that
 * are not worth a file of their own: /metrics, /-/healthy, /-/ready, /api/v1/status/ingest,
 * /api/v1/rules[?history=1] (the engine renders it), /api/v1/query, /api/v1/whoami,
 * POST /-/reload; the deploy registry's routes are deploys.c's, the status page's (/ and
 * /ui/...) ui.c's. Every request is first authenticated and its role checked (auth.h): 401 or
 * 403 with a one-line reason before any handler runs. Runs on the loop thread. */
#ifndef RC_API_H
#define RC_API_H

#include "actions.h"
#include "audit.h"
#include "auth.h"
#include "db.h"
#include "delivery.h"
#include "engine.h"
#include "http.h"
#include "ingest.h"

typedef struct rc_api {
  rc_ingest_t *ingest; /* borrowed */
  rc_engine_t *engine; /* borrowed; may be NULL */
  rc_db_t *db;         /* borrowed: the embedded store (deploy registry); may be NULL */
  rc_actions_t *actions;   /* borrowed; may be NULL */
  rc_approvals_t *approvals; /* borrowed; may be NULL */
  rc_auth_t *auth;         /* borrowed; NULL or no identities: every request allowed */
  rc_audit_t *audit;       /* borrowed; may be NULL */
  rc_delivery_t *delivery; /* borrowed; may be NULL */
  /* POST /-/reload: reloads the rules; 0 or an error with a one-line reason in why. */
  int (*reload)(void *ctx, const char *actor, char *why, size_t why_cap);
  void *reload_ctx;
  /* After a deploy is recorded (POST /api/v1/deploys answered 201). */
  void (*deployed)(void *ctx);
  void *deployed_ctx;
  int ready;           /* 1 once serving; 0 again when draining */
} rc_api_t;

/* rc_http_handler_cb for the server; ctx is an rc_api_t. */
void rc_api_handle(void *ctx, const rc_http_request_t *req, rc_http_response_t *res);

#endif
