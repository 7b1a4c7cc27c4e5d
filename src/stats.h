/* stats.h: ripcord's self-metrics — the counters behind GET /metrics — and their rendering in
 * the Prometheus text exposition format (version 0.0.4).
 *
 * There is one global instance, rc_stats. Every field is an atomic updated with relaxed
 * ordering: each counter is a tally, not a synchronisation point, so readers may see values a
 * few increments apart but never torn. The loop thread writes the HTTP and decode counters, the
 * ingest consumer thread the consumer ones; the loop thread renders them all.
 */
#ifndef RC_STATS_H
#define RC_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "buf.h"
#include "rw_decode.h"

typedef _Atomic uint64_t rc_counter_t;

#define RC_HANDLERS(X) \
  X(WRITE, "/api/v1/write") X(METRICS, "/metrics") X(HEALTHY, "/-/healthy") \
  X(READY, "/-/ready") X(STATUS, "/api/v1/status/ingest") X(OTHER, "other")
typedef enum {
#define RC_H_ENUM(n, s) RC_HANDLER_##n,
  RC_HANDLERS(RC_H_ENUM)
#undef RC_H_ENUM
  RC_HANDLER__COUNT
} rc_handler_t;

/* Status codes we answer with; anything else is counted under the last slot. */
#define RC_STATUS_CODES 200, 204, 400, 404, 405, 408, 411, 413, 415, 429, 431, 500, 501, 503, 505
#define RC_NSTATUS 16

#define RC_DURATION_BUCKETS 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, \
                            0.1, 0.25, 0.5, 1, 2.5, 5, 10
#define RC_NDURATION 16

typedef enum { RC_TIMEOUT_IDLE = 0, RC_TIMEOUT_HEADER, RC_TIMEOUT_BODY, RC_TIMEOUT__COUNT } rc_timeout_t;

typedef struct rc_stats {
  uint64_t start_time_ms;
  rc_counter_t requests[RC_HANDLER__COUNT][RC_NSTATUS];
  rc_counter_t duration_bucket[RC_HANDLER__COUNT][RC_NDURATION];
  rc_counter_t duration_count[RC_HANDLER__COUNT];
  rc_counter_t duration_sum_ns[RC_HANDLER__COUNT];
  rc_counter_t conn_accepted, conn_rejected, conn_open, conn_aborted;
  rc_counter_t conn_timeouts[RC_TIMEOUT__COUNT];
  rc_counter_t http_parse_errors;
  rc_counter_t body_bytes, decoded_bytes;
  rc_counter_t samples, histograms, exemplars, metadata, series, stale_markers;
  rc_counter_t decode_errors[RC_RWR__COUNT];
  rc_counter_t invalid_series[RC_RWS__COUNT];
  rc_counter_t dropped_samples, dropped_histograms, dropped_exemplars;
  rc_counter_t queue_full;     /* requests answered 503: max in flight reached */
  rc_counter_t queue_depth;    /* gauge: requests in flight in the workers */
  rc_counter_t queue_capacity; /* gauge */
  rc_counter_t consumed_batches, consumed_samples, consumed_histograms, consumed_series;
  rc_counter_t tally_overflow; /* series whose metric name did not fit the tally table */
  rc_counter_t ready;          /* gauge: 1 while serving, 0 while starting or draining */
} rc_stats_t;

extern rc_stats_t rc_stats;

static inline void rc_stat_add(rc_counter_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
static inline void rc_stat_sub(rc_counter_t *c, uint64_t n) {
  atomic_fetch_sub_explicit(c, n, memory_order_relaxed);
}
static inline void rc_stat_set(rc_counter_t *c, uint64_t v) {
  atomic_store_explicit(c, v, memory_order_relaxed);
}
static inline uint64_t rc_stat_get(rc_counter_t *c) {
  return atomic_load_explicit(c, memory_order_relaxed);
}

void rc_stats_init(uint64_t start_time_ms);
/* Counts one answered request and its duration. */
void rc_stats_request(rc_handler_t h, int status, uint64_t duration_ns);
/* Appends the whole exposition to out. */
void rc_stats_render(rc_buf_t *out);
const char *rc_handler_path(rc_handler_t h);

/* Process figures from /proc/self; 0 when unavailable. */
typedef struct rc_proc {
  uint64_t rss_bytes, vsize_bytes, open_fds, max_fds;
  double cpu_seconds;
} rc_proc_t;
void rc_proc_read(rc_proc_t *p);

#endif
