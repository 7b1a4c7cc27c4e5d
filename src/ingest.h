/* ingest.h: POST /api/v1/write — content negotiation, decode, status mapping — and the
 * hand-off of decoded batches to the aggregation layer over a bounded SPSC ring to one
 * consumer thread. Until the series store exists (issue 3) the consumer is the counting
 * consumer of tally.h.
 *
 * Threads: rc_ingest_handle_write() runs on the loop thread (the ring's only producer); the
 * consumer thread is the ring's only consumer and frees every batch it pops.
 * Status mapping (shared/reference/remote-write.md §6): 204 success; 400 malformed or with
 * invalid series (never retried by Prometheus, so never used for overload); 413 too large;
 * 415 wrong Content-Type/Content-Encoding; 503 + Retry-After when the ring is full (Prometheus
 * retries 5xx; it drops a batch answered 429 unless retry_on_http_429 is set, so 429 is only
 * used with --ingest.overload-status=429); 500 internal faults. Remote write 2.0 answers
 * carry the X-Prometheus-Remote-Write-*-Written headers.
 */
#ifndef RC_INGEST_H
#define RC_INGEST_H

#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "ring.h"
#include "store.h"
#include "rw_decode.h"
#include "tally.h"

typedef struct rc_ingest_config {
  uint32_t queue_capacity;  /* batches (requests) */
  int overload_status;      /* 503 (default) or 429 */
  uint32_t retry_after_s;
  uint32_t tally_max_names;
  rc_rw_limits_t limits;
} rc_ingest_config_t;

typedef struct rc_ingest {
  rc_ingest_config_t cfg;
  rc_rw_decoder_t dec; /* loop thread only */
  rc_ring_t ring;
  uv_sem_t wake;       /* the consumer sleeps on it when the ring is empty */
  _Atomic int idle;    /* 1 while the consumer is (about to be) asleep: only then is a post
                          needed, which saves a futex wake-up and a context switch per request */
  uv_thread_t thread;
  _Atomic int stop;
  int running;
  rc_tally_t tally;    /* written by the consumer thread */
  rc_store_t *store;   /* borrowed; NULL: no store. Owned (used) by the consumer thread */
  uint64_t complain_ms;
} rc_ingest_t;

int rc_ingest_init(rc_ingest_t *ing, const rc_ingest_config_t *cfg, rc_err_t *err);
/* Starts the consumer thread. */
int rc_ingest_start(rc_ingest_t *ing, rc_err_t *err);
/* Lets the consumer finish every batch already queued, then joins it. Call after the HTTP
 * server has drained, so that nothing is pushed any more. */
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
