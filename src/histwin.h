/* histwin.h: what ripcord remembers about one native-histogram series over time, and the
 * float-histogram arithmetic PromQL's rate()/increase() and sum() need on it.
 *
 * Two parts:
 *  - rc_fhist_t: a float native histogram (counts absolute), as PromQL holds one after
 *    decoding, and the operations Prometheus' FloatHistogram offers that we need (Add, Sub,
 *    Mul, schema reduction, DetectReset), with the same arithmetic in the same order, so that
 *    results agree with Prometheus bit for bit.
 *  - rc_histwin_t: a series' histogram samples, kept exactly, in time chunks like window.h's
 *    (same cfg, same thread contract, same late/duplicate/stale rules), and rate()/increase()
 *    and the instant lookup over them.
 *
 * Why buckets are dense runs (offset + counts, zero meaning "no bucket") and not spans: every
 * operation is then an indexed loop, and a bucket count of zero behaves exactly like a missing
 * bucket in every Prometheus operation we reproduce (DetectReset, Add/Sub, zero-threshold
 * widening, quantile, fraction: see histwin.c), because Prometheus results are Compact(0)ed
 * before anything looks at empty buckets. The cost is that a histogram whose populated buckets
 * lie far apart needs a long run: a sample whose run per sign would exceed
 * RC_FHIST_MAX_RUN buckets is refused (RC_ELIMIT).
 *
 * Why samples are stored compressed per chunk: a series at 15 s for the retention (1 h by
 * default) is 240 samples of ~20 buckets; as float64 that is ~40 KiB per series. Each chunk
 * stores a sample's layout (schema, zero threshold, bucket runs, custom bounds) only when it
 * differs from the previous sample's, and counts as zigzag varint deltas against the previous
 * sample's same bucket when all counts are whole numbers (every integer histogram, most float
 * ones from recording rules of whole counts); other float histograms fall back to raw doubles,
 * since deltas of arbitrary doubles do not compress without losing exactness. The sum is XORed
 * with the previous one and its zero bytes at both ends dropped. Measured: ~33 bytes per sample
 * for 20 populated buckets (see the report in test_histwin.c).
 *
 * Threads: exactly as window.h. One writer; readers on other threads without locks, each read
 * (rate, increase, instant, foreach, count, empty) bracketed by rc_ebr_enter/exit on cfg->ebr;
 * everything the writer replaces is retired through cfg->ebr (freed at once when NULL).
 * Memory: chunks, chunk lists and the head's encoder state come from cfg->mem and are bounded
 * by it as window.h describes; a reader's decoding state is its own (plain malloc).
 * rc_fhist_t values are plain caller-owned values: no sharing, no locking.
 */
#ifndef RC_HISTWIN_H
#define RC_HISTWIN_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "rc.h"
#include "window.h"

/* Custom-bucket ("NHCB") schema; exponential schemas are -4..8. */
#define RC_FHIST_SCHEMA_CUSTOM (-53)
/* Longest dense run of buckets per sign a sample may need (see above). */
#define RC_FHIST_MAX_RUN 16384u
/* Most custom bounds a sample may carry. */
#define RC_FHIST_MAX_CUSTOM 4096u

/* Reset hints, as on the wire. */
enum { RC_HINT_UNKNOWN = 0, RC_HINT_RESET = 1, RC_HINT_NO_RESET = 2, RC_HINT_GAUGE = 3 };

/* Warnings PromQL would attach as annotations (the value is still produced). */
#define RC_FHIST_WARN_NOT_COUNTER 1u /* rate/increase over a gauge histogram */

/* A float native histogram. Buckets: positive bucket index pos_off + i has count pos[i]
 * (0 <= i < pos_len), negative likewise; a zero count is the same as no bucket; runs are kept
 * trimmed (first and last count nonzero) by every function below except on NaN counts.
 * Owned buffers: init before first use, rc_fhist_free() when done; a freed fhist may be reused.
 * Fields may be read directly; write them only through the functions. */
typedef struct rc_fhist {
  int32_t schema;       /* -4..8, or RC_FHIST_SCHEMA_CUSTOM */
  uint8_t hint;         /* RC_HINT_*; rate/increase results are RC_HINT_GAUGE as in 3.x */
  uint8_t warn;         /* RC_FHIST_WARN_* set by the query that produced it */
  double zero_threshold, zero_count, count, sum;
  int32_t pos_off, neg_off;
  uint32_t pos_len, neg_len, pos_cap, neg_cap;
  double *pos, *neg;
  double *custom; /* schema -53: strictly increasing finite upper bounds (bucket i covers
                     (custom[i-1], custom[i]], bucket ncustom is the +Inf bucket) */
  uint32_t ncustom, custom_cap;
} rc_fhist_t;

void rc_fhist_init(rc_fhist_t *h);
void rc_fhist_free(rc_fhist_t *h);
/* dst (initialised) becomes an independent copy of src. 0 or RC_ENOMEM. */
int rc_fhist_copy(rc_fhist_t *dst, const rc_fhist_t *src);

/* Validates a decoded remote-write sample and converts it (deltas summed to absolute counts,
 * empty buckets dropped) into dst (initialised). Returns 0 or:
 *   RC_EINVAL  stale marker; schema neither -4..8 nor -53; spans inconsistent with the bucket
 *              count or a non-first span with a negative offset; a bucket index out of the
 *              schema's range; integer deltas summing below zero or past 2^63; a count, zero
 *              count or bucket count negative, NaN or infinite; zero threshold negative or not
 *              finite; custom bounds not strictly increasing, not finite, or given with an
 *              exponential schema; negative buckets, a zero bucket or a bucket index past
 *              ncustom with custom buckets
 *   RC_ENOTSUP reserved schemas 9..52 (the spec lets a receiver refuse them)
 *   RC_ELIMIT  a run longer than RC_FHIST_MAX_RUN or more than RC_FHIST_MAX_CUSTOM bounds
 *   RC_ENOMEM
 * The sum may be anything (NaN, Inf): Prometheus does not check it. */
int rc_fhist_from_histogram(rc_fhist_t *dst, const rc_histogram_t *h);

/* Count of one bucket: sign +1 or -1 (custom buckets: +1 only). 0 when absent. */
double rc_fhist_bucket(const rc_fhist_t *h, int sign, int32_t idx);

/* h += other / h -= other, as Prometheus 3.x FloatHistogram.Add/Sub: the zero buckets are
 * reconciled first (the larger threshold, widened past populated buckets), then h is reduced
 * to other's schema if other's is coarser, other's buckets are reduced to h's schema and those
 * above the zero threshold added. Count and sum are added; h's hint follows Prometheus'
 * adjustCounterReset. Custom buckets add only to custom buckets with identical bounds.
 * Returns 0, RC_ENOTSUP (exponential with custom, or different custom bounds: Prometheus
 * >= 3.? intersects the bounds, we refuse) or RC_ENOMEM; on error h is unspecified. */
int rc_fhist_add(rc_fhist_t *h, const rc_fhist_t *other);
int rc_fhist_sub(rc_fhist_t *h, const rc_fhist_t *other);
/* Multiplies count, sum, zero count and every bucket (Prometheus Mul). */
void rc_fhist_mul(rc_fhist_t *h, double factor);
/* Reduces h to a coarser exponential schema (index i -> ((i-1) >> d) + 1, counts summed in
 * index order). target >= h->schema or custom buckets: no-op. 0 or RC_ENOMEM. */
int rc_fhist_reduce(rc_fhist_t *h, int32_t target_schema);
/* Whether cur follows a counter reset after prev (Prometheus DetectReset), with one deliberate
 * difference: a NO_RESET hint is verified, not believed (see histwin.c). 1 or 0. */
int rc_fhist_detect_reset(const rc_fhist_t *cur, const rc_fhist_t *prev);
/* 1 when both hold the same schema, threshold, custom bounds, counts and sum bits. */
int rc_fhist_equal(const rc_fhist_t *a, const rc_fhist_t *b);

/*------------------------------------------------------------------------------------------
 * The window
 *----------------------------------------------------------------------------------------*/

typedef struct rc_hchunk_list rc_hchunk_list_t;
struct rc_histwin_enc;

typedef struct rc_histwin {
  rc_hchunk_list_t *_Atomic list; /* chunks, oldest first, the last one appended to */
  int64_t max_ts;                 /* writer's: newest timestamp, INT64_MIN when empty */
  struct rc_histwin_enc *enc;     /* writer's: encoder state of the head chunk (heap) */
} rc_histwin_t;

void rc_histwin_init(rc_histwin_t *w);
/* Frees everything (not while readers may hold it: retire the series through the EBR); mem is
 * the accountant the window was appended with (cfg->mem). */
void rc_histwin_free(rc_histwin_t *w, rc_mem_t *mem);

/* Appends or inserts one sample (a stale marker when h->is_stale). Returns 0, RC_EDUP (same
 * timestamp, identical sample), RC_ECONFLICT (same timestamp, different sample), RC_ETOOOLD,
 * RC_EMEMORY (cfg->mem's bound, as window.h), RC_ENOMEM, or rc_fhist_from_histogram()'s
 * validation errors. Writer. */
int rc_histwin_append(rc_histwin_t *w, const rc_window_cfg_t *cfg, const rc_histogram_t *h);
/* Drops chunks whose newest sample is older than before_ms. Writer. */
void rc_histwin_expire(rc_histwin_t *w, const rc_window_cfg_t *cfg, int64_t before_ms);
int rc_histwin_empty(const rc_histwin_t *w);
/* Samples held, stale markers included. */
uint32_t rc_histwin_count(const rc_histwin_t *w);

/* Calls cb for every sample with ts in [from_ms, to_ms], oldest first (h is NULL for a stale
 * marker; it is borrowed for the call only). Stops when cb returns non-zero and returns that.
 * RC_ENOMEM if decoding needed memory it could not get. */
typedef int (*rc_histwin_sample_cb)(void *ctx, int64_t ts, const rc_fhist_t *h);
int rc_histwin_foreach(const rc_histwin_t *w, int64_t from_ms, int64_t to_ms,
                       rc_histwin_sample_cb cb, void *ctx);

/* PromQL rate()/increase() of the histograms in (t-range, t] (3.x) or [t-range, t] (2.x) into
 * out (initialised; its old content is replaced). Stale markers are skipped. Semantics: see
 * histwin.c. Returns 0; RC_ENOENT (fewer than 2 samples: PromQL outputs nothing);
 * RC_ENOTSUP (custom and exponential buckets mixed, custom bounds that differ between samples
 * that must be added, or custom buckets under 2.x: PromQL outputs nothing with a warning);
 * RC_ENOMEM. A rate over gauge histograms is computed and flagged in out->warn, as PromQL. */
int rc_histwin_rate(const rc_histwin_t *w, int64_t t_ms, int64_t range_ms, rc_compat_t compat,
                    rc_fhist_t *out);
int rc_histwin_increase(const rc_histwin_t *w, int64_t t_ms, int64_t range_ms,
                        rc_compat_t compat, rc_fhist_t *out);

/* Instant lookup: newest sample at or before t_ms within the lookback ((t-lb, t] for 3.x,
 * [t-lb, t] for 2.x), into out. RC_ENOENT when there is none or it is a stale marker. */
int rc_histwin_instant(const rc_histwin_t *w, int64_t t_ms, int64_t lookback_ms,
                       rc_compat_t compat, rc_fhist_t *out, int64_t *ts);

/* The rate/increase core on samples already in memory (oldest first, no stale markers, at
 * least 2), exposed for callers that assemble ranges themselves. first_ts/last_ts and the range
 * give the extrapolation. Same returns as rc_histwin_rate. */
int rc_fhist_extrapolated_rate(const rc_fhist_t *const *pts, const int64_t *ts, size_t n,
                               int64_t range_start, int64_t range_end, int64_t range_ms,
                               int is_rate, rc_compat_t compat, rc_fhist_t *out);

#endif
