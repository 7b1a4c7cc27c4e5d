/* api.h: the HTTP routes — which path goes to which handler — plus the small handlers that
 * are not worth a file of their own: /metrics, /-/healthy, /-/ready, /api/v1/status/ingest,
 * /api/v1/rules (the engine renders it). Runs on the loop thread. */
#ifndef RC_API_H
#define RC_API_H

#include "engine.h"
#include "http.h"
#include "ingest.h"

typedef struct rc_api {
  rc_ingest_t *ingest; /* borrowed */
  rc_engine_t *engine; /* borrowed; may be NULL */
  int ready;           /* 1 once serving; 0 again when draining */
} rc_api_t;

/* rc_http_handler_cb for the server; ctx is an rc_api_t. */
void rc_api_handle(void *ctx, const rc_http_request_t *req, rc_http_response_t *res);

#endif
