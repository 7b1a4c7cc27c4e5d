/* ingest.h: POST /api/v1/write — content negotiation, admission, the deferred answer — on
 * top of the ingest workers (workers.h), which decode, tally and apply to the store shards.
 *
 * Threads: rc_ingest_handle_write() runs on the loop thread: it checks the headers, reserves
 * a place among the requests in flight, defers the HTTP answer (http.h) and hands the body to
 * a worker; the answer is sent from the loop thread when the worker reports back (on_done).
 * Status mapping (shared/reference/remote-write.md §6): 204 success; 400 malformed or with
 * invalid series (never retried by Prometheus, so never used for overload); 413 too large;
 * 415 wrong Content-Type/Content-Encoding; 503 + Retry-After when queue_capacity requests are
 * in flight (Prometheus retries 5xx; it drops a batch answered 429 unless retry_on_http_429
 * is set, so 429 is only used with --ingest.overload-status=429); 500 internal faults. Remote
 * write 2.0 answers carry the X-Prometheus-Remote-Write-*-Written headers.
 */
#ifndef RC_INGEST_H
#define RC_INGEST_H

#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "rw_decode.h"
#include "store.h"
#include "tally.h"
#include "workers.h"

typedef struct rc_ingest_config {
  uint32_t queue_capacity;  /* requests in flight (decoding or applying) before 503 */
  uint32_t workers;         /* ingest worker threads and store shards; 0: one per core */
  int overload_status;      /* 503 (default) or 429 */
  uint32_t retry_after_s;
  uint32_t tally_max_names;
  rc_rw_limits_t limits;
  rc_workers_applied_cb applied_cb; /* the rule engine's hook (engine.h); may be NULL */
  void *applied_ctx;
} rc_ingest_config_t;

typedef struct rc_ingest {
  rc_ingest_config_t cfg; /* workers: the number actually started */
  rc_tally_t tally;       /* written by the workers; read by any thread */
  rc_workers_t workers;
  int initialised, running;
} rc_ingest_t;

/* Creates the tally and the workers with their store shards (store: the whole store's
 * configuration, split across shards; idx: the selector index, borrowed). Answers are
 * delivered on loop's thread. */
int rc_ingest_init(rc_ingest_t *ing, const rc_ingest_config_t *cfg, const rc_store_cfg_t *store,
                   const rc_selindex_t *idx, uv_loop_t *loop, rc_err_t *err);
int rc_ingest_start(rc_ingest_t *ing, rc_err_t *err);
/* Lets every request in flight finish (answers delivered), then joins the workers. Call
 * after the HTTP server has drained, so that nothing is submitted any more. */
void rc_ingest_stop(rc_ingest_t *ing);
void rc_ingest_close(rc_ingest_t *ing);

/* The /api/v1/write handler (loop thread). */
void rc_ingest_handle_write(rc_ingest_t *ing, const rc_http_request_t *req,
                            rc_http_response_t *res);

/* Content-Type -> remote write version (1 or 2). NULL/absent means 1, as Prometheus does.
 * Returns 0, or RC_ENOTSUP with a one-line reason in why. */
int rc_ingest_content_type(const char *v, size_t n, int *version, char *why, size_t why_size);
/* Content-Encoding: absent or "snappy" is accepted. Returns 0 or RC_ENOTSUP. */
int rc_ingest_content_encoding(const char *v, size_t n, char *why, size_t why_size);

#endif
