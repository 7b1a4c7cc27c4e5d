/* window.h: what ripcord remembers about one series over time — its float samples, kept
 * exactly, in time slots ("chunks") keyed by sample timestamp (event time, not arrival), and
 * the PromQL range functions evaluated over any window up to the retention.
 *
 * Why raw samples and not only per-slot aggregates: PromQL's answers depend on the first and
 * last sample inside (t-r, t], on every counter reset between them and, for quantile_over_time
 * and the Kahan-summed *_over_time functions, on every value in order. Per-slot aggregates
 * alone would be exact only for windows aligned to slot edges, and rules are evaluated at the
 * arrival of each batch, i.e. almost never aligned. So each chunk keeps its samples compressed
 * (timestamps as delta-of-delta; values as integer delta-of-delta when they are whole numbers
 * — counters —, as scaled delta-of-delta when they have up to 3 decimals, and Gorilla XOR
 * otherwise: 2-4 bytes per sample for counters and decimal gauges, about 9 for arbitrary
 * doubles)
 * plus a small header (time span, count, first/last, min/max) that lets a query skip or
 * summarise whole chunks. Only chunks that hold samples cost memory.
 *
 * Late data: samples older than the newest by at most the out-of-order tolerance are inserted
 * in place (their chunk is re-encoded); older ones are refused (RC_ETOOOLD). A sample with a
 * timestamp already present is idempotent when the value is identical and refused
 * (RC_ECONFLICT) when it differs, as Prometheus does. Staleness markers are stored as samples:
 * instant lookups stop at them and range functions skip them.
 *
 * Threads: a window has one writer. Readers on other threads need no lock: closed chunks never
 * change, the head chunk only grows and publishes its length in one atomic word after writing
 * the bits, and the chunk list is swapped whole. Whatever the writer replaces (a grown or
 * re-encoded chunk, an old chunk list, expired chunks) is retired through the EBR named in the
 * config, so a reader must bracket each read (eval, instant, foreach, count) with
 * rc_ebr_enter/exit on that EBR. With cfg->ebr NULL there are no other readers and replaced
 * parts are freed at once. Memory: the window owns its chunks; rc_window_free() (not while
 * readers may still hold it: retire the whole window through the EBR instead). Every chunk
 * and chunk list is allocated from cfg->mem (mem.h; NULL: not counted) and freed to it.
 *
 * Memory bound: with a limit on cfg->mem, an append that needs a new chunk is refused
 * (RC_EMEMORY) from the accountant's high-water mark on, and one that would grow any chunk
 * (the head's growth, a late sample's re-encoding) or start an empty window at its limit.
 * Samples that fit in the room the head chunk already has are still taken. A refused append
 * leaves the window as it was.
 */
#ifndef RC_WINDOW_H
#define RC_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "rc.h"

/* Extra codes of this module (beyond rc.h). */
#define RC_ETOOOLD (-20)   /* older than the out-of-order tolerance allows */
#define RC_ECONFLICT (-21) /* same timestamp, different value */
#define RC_EDUP (-22)      /* same timestamp and value: nothing to do */
#define RC_EMEMORY (-23)   /* the sample needs memory the accountant's limit does not allow */

typedef struct rc_chunk rc_chunk_t;
typedef struct rc_chunk_list rc_chunk_list_t;
struct rc_ebr;

/* The encoder's state for the chunk being appended to. It lives in the window, not in every
 * chunk, because only the head chunk is ever appended to (a late sample re-encodes its chunk
 * from scratch): about 48 bytes saved per closed chunk. Writer only. */
typedef struct rc_window_enc {
  int64_t last_ts, prev_dts;
  uint64_t prev_vbits;
  int64_t prev_vdelta, prev_ddelta;
  uint8_t prev_k, lead, trail, has_xor;
} rc_window_enc_t;

typedef struct rc_window {
  rc_chunk_list_t *_Atomic list; /* chunks, oldest first, the last one being appended to;
                                    NULL when empty. Swapped whole when chunks come or go. */
  int64_t max_ts;                /* writer's: newest sample timestamp, INT64_MIN when empty */
  rc_window_enc_t enc;           /* writer's: encoder state of the head chunk */
} rc_window_t;

typedef struct rc_window_cfg {
  int64_t retention_ms;     /* how far back queries may reach (default 1h) */
  int64_t ooo_tolerance_ms; /* how late a sample may arrive (default 1m) */
  uint32_t chunk_samples;   /* samples per chunk before a new one starts (default 120) */
  int64_t chunk_span_ms;    /* time span per chunk before a new one starts (default 2m):
                               retention is enforced per chunk, so this bounds the overshoot */
  struct rc_ebr *ebr;       /* readers on other threads: retire through it; NULL: none */
  rc_mem_t *mem;            /* accountant of every chunk and list (NULL: not counted); with
                               ebr set it must be the EBR's own, which frees what is retired */
} rc_window_cfg_t;

#define RC_WINDOW_CFG_DEFAULT \
  (rc_window_cfg_t) { .retention_ms = 3600000, .ooo_tolerance_ms = 60000, \
                      .chunk_samples = 120, .chunk_span_ms = 120000 }

/* Which Prometheus to agree with. 3.x: windows (t-r, t], current extrapolation and
 * avg_over_time. 2.x (as Debian's 2.42): windows [t-r, t], the pre-2.51 zero-clamp order, the
 * pre-2.55 incremental avg_over_time. */
typedef enum { RC_COMPAT_PROM3 = 0, RC_COMPAT_PROM2 = 1 } rc_compat_t;

typedef enum {
  RC_FN_RATE, RC_FN_INCREASE, RC_FN_DELTA, RC_FN_IRATE, RC_FN_IDELTA,
  RC_FN_COUNT_OT, RC_FN_SUM_OT, RC_FN_AVG_OT, RC_FN_MIN_OT, RC_FN_MAX_OT, RC_FN_LAST_OT,
  RC_FN_PRESENT_OT, RC_FN_STDDEV_OT, RC_FN_STDVAR_OT, RC_FN_QUANTILE_OT,
  RC_FN_RESETS, RC_FN_CHANGES,
  RC_FN__COUNT
} rc_fn_t;

void rc_window_init(rc_window_t *w);
/* mem: the accountant the window was appended with (cfg->mem). */
void rc_window_free(rc_window_t *w, rc_mem_t *mem);

/* Appends or inserts one sample. Returns 0, RC_EDUP, RC_ECONFLICT, RC_ETOOOLD, RC_EMEMORY
 * or RC_ENOMEM. */
int rc_window_append(rc_window_t *w, const rc_window_cfg_t *cfg, int64_t ts, double v);
/* Drops chunks whose newest sample is older than before_ms (retention). Writer. */
void rc_window_expire(rc_window_t *w, const rc_window_cfg_t *cfg, int64_t before_ms);
/* 1 when the window holds no sample. */
int rc_window_empty(const rc_window_t *w);

/* f(v[range]) at time t_ms, with PromQL's semantics for the chosen compat. param is φ for
 * quantile_over_time. Returns 0 and *out, or RC_ENOENT when PromQL would output nothing
 * (e.g. fewer than 2 samples for rate). */
int rc_window_eval(const rc_window_t *w, rc_fn_t fn, double param, int64_t t_ms,
                   int64_t range_ms, rc_compat_t compat, double *out);

/* Instant-vector lookup: newest sample at or before t_ms within the lookback; none if that
 * sample is a staleness marker. Returns 0 (value, timestamp) or RC_ENOENT. */
int rc_window_instant(const rc_window_t *w, int64_t t_ms, int64_t lookback_ms,
                      rc_compat_t compat, double *v, int64_t *ts);

/* Calls cb for every sample (stale markers included) with ts in [from_ms, to_ms], oldest
 * first; stops early when cb returns non-zero and returns that value. */
typedef int (*rc_window_sample_cb)(void *ctx, int64_t ts, double v);
int rc_window_foreach(const rc_window_t *w, int64_t from_ms, int64_t to_ms,
                      rc_window_sample_cb cb, void *ctx);

uint32_t rc_window_count(const rc_window_t *w);

#endif
