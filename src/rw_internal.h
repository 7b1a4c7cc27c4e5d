/* rw_internal.h: what the remote-write decode backends share — not part of the public API.
 *
 * rw_decode.c owns the entry point (snappy, limits) and the per-series acceptance rules; a
 * backend walks one protobuf message and, for each TimeSeries, fills an rc_series_t plus an
 * unnormalised label array in the arena, then calls rw_accept() or rw_reject(). Two backends
 * exist:
 *   rw_wire.c  the default: a zero-copy protobuf reader (labels point into the decompressed
 *              buffer, which the batch's arena owns);
 *   rw_pbc.c   protobuf-c's generated unpacker, kept as the reference implementation that
 *              the wire reader is differential-tested and fuzzed against
 *              (--ingest.decoder=protobuf-c selects it at run time).
 */
#ifndef RC_RW_INTERNAL_H
#define RC_RW_INTERNAL_H

#include "rw_decode.h"

typedef struct rw_ctx {
  rc_arena_t *a;
  const rc_rw_limits_t *lim;
  struct rw_lcache *lcache; /* may be NULL */
  rc_batch_t *b; /* b->series has room for every TimeSeries entry of the message */
  int lazy_labels; /* rc_rw_decoder_t.lazy_labels */
  rc_rw_result_t *res;
} rw_ctx_t;

/* Records a request-level failure in res; returns code. */
int rw_fail(rc_rw_result_t *res, rc_rw_reason_t reason, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Drops a series for `problem` (an rc_label_problem_t or RC_RWS_*), counting its samples,
 * histograms and exemplars as dropped; the first problem becomes res->msg. */
void rw_reject(rw_ctx_t *c, int problem, const rc_label_t *labels, uint32_t nlabels,
               uint64_t ns, uint64_t nh, uint64_t ne, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Normalises and checks labels, validates the histograms, counts stale markers, and appends
 * *s (labels/samples/histograms arrays and counts filled by the backend, all arena memory)
 * to the batch. utf8_checked: the backend has already verified every name and value is valid
 * UTF-8. Returns 1 when accepted, 0 when rejected (already recorded). */
int rw_accept(rw_ctx_t *c, rc_series_t *s, rc_label_t *labels, uint32_t nlabels,
              int utf8_checked);

/* The common tail of rw_accept: appends a series whose labels are known valid, sorted and free
 * of empty values (after the checks, or on a label-set cache hit) and whose histograms are
 * valid; metric_idx is the __name__ label's index. */
int rw_accept_known(rw_ctx_t *c, rc_series_t *s, rc_label_t *labels, uint32_t nlabels,
                    uint32_t metric_idx);

/* rw_accept_known for a label-set cache hit under lazy_labels: the labels stay raw (the
 * nlabels Label fields at raw[0..raw_len), known valid, sorted and free of empty values), with
 * the __name__ value given. */
int rw_accept_raw(rw_ctx_t *c, rc_series_t *s, const uint8_t *raw, uint32_t raw_len,
                  uint32_t nlabels, const char *metric, uint32_t metric_len);

/* The label-set cache (rw_wire.c). */
struct rw_lcache *rw_lcache_new(void);
void rw_lcache_free(struct rw_lcache *lc);
void rw_lcache_check_limits(struct rw_lcache *lc, const rc_label_limits_t *lim);

#define RW_OOM(c)                                                                      \
  rw_fail((c)->res, RC_RWR_MEMORY, RC_ELIMIT,                                          \
          "decoded request needs more than %zu bytes of memory", (c)->lim->max_arena_bytes)

#define RW_MIXED_HISTOGRAM "histogram mixes integer deltas and float counts"

int rw_pbc_v1(rw_ctx_t *c, const uint8_t *buf, size_t len);
int rw_pbc_v2(rw_ctx_t *c, const uint8_t *buf, size_t len);
int rw_wire_v1(rw_ctx_t *c, const uint8_t *buf, size_t len);
int rw_wire_v2(rw_ctx_t *c, const uint8_t *buf, size_t len);

#endif
