/* query.h: the store's interface for the rule engine — how a rule's evaluation reads the
 * series its selectors picked, on any thread, while the ingest workers keep writing.
 *
 * The shape of an evaluation:
 *   rc_query_begin(q);                         enter every shard's EBR: series stay alive
 *   rc_query_collect(q, sel_id, &set);         the series of one selector, across shards
 *     or the series an apply changed (workers.h applied_cb + rc_store_changed), which is how
 *     an evaluator triggered by a batch looks only at what that batch touched;
 *   rc_query_eval(set, fn, ...)                f(v[range]) per series (window.h functions)
 *   rc_query_sketch(set, ...)                  one DDSketch of every raw sample in the range,
 *                                              merged across series (latency_p99)
 *   rc_query_hist_sum(set, ...)                sum of rate()/increase() of native histograms
 *   rc_query_classic_quantile(set, ...)        histogram_quantile over classic _bucket series,
 *                                              grouped by their labels without `le`
 *   rc_query_end(q);                           pointers from the set are invalid after this
 *
 * Values follow PromQL for the chosen compat (rc_compat_t): the per-series functions are
 * window.c's, checked against a reference in tests/unit/promql_ref.c; the histogram ones are
 * histwin.c's and histq.c's. What PromQL does across series (sum/avg with Kahan compensation,
 * grouping, binary operators) is the rule engine's, not this file's — except the two
 * histogram paths above, which need the grouping to build a histogram at all.
 *
 * Threads: an rc_query_t belongs to one thread (it holds that thread's EBR slot in every
 * shard). Memory: sets and results are the caller's; series pointers are borrowed for the
 * duration of begin..end.
 */
#ifndef RC_QUERY_H
#define RC_QUERY_H

#include <stdint.h>

#include "histq.h"
#include "histwin.h"
#include "sketch.h"
#include "store.h"
#include "window.h"

#define RC_QUERY_MAX_SHARDS 64

typedef struct rc_query {
  rc_store_t *shards[RC_QUERY_MAX_SHARDS];
  int slot[RC_QUERY_MAX_SHARDS]; /* EBR slot per shard; -1: the store has no readers */
  uint32_t n;
  int inside;
} rc_query_t;

/* A set of series (borrowed pointers). */
typedef struct rc_query_set {
  rc_store_series_t **v;
  uint32_t n, cap;
} rc_query_set_t;

/* Registers this thread as a reader of every shard. Returns 0, RC_EINVAL (too many shards) or
 * RC_ELIMIT (a shard has no free reader slot). */
int rc_query_init(rc_query_t *q, rc_store_t *const *shards, uint32_t n);
void rc_query_begin(rc_query_t *q);
void rc_query_end(rc_query_t *q);

/* Appends the series selector sel_id wants, from every shard, to set. 0 or RC_ENOMEM. */
int rc_query_collect(rc_query_t *q, uint32_t sel_id, rc_query_set_t *set);
int rc_query_set_add(rc_query_set_t *set, rc_store_series_t *r);
void rc_query_set_reset(rc_query_set_t *set);
void rc_query_set_free(rc_query_set_t *set);

/* out[i] = fn(series i's samples in range) at t, or NaN with present[i] = 0 when PromQL would
 * output nothing for it. Returns how many are present. */
uint32_t rc_query_eval(const rc_query_set_t *set, rc_fn_t fn, double param, int64_t t_ms,
                       int64_t range_ms, rc_compat_t compat, double *out, uint8_t *present);

/* Adds every float sample of every series in the range ((t-range, t] for 3.x, [t-range, t]
 * for 2.x; staleness markers skipped) to out (initialised by the caller, any options), so
 * that rc_sketch_quantile(out, 0.99) is the p99 of all of them within the sketch's alpha.
 * NaN samples are counted in the sketch's nan_count and otherwise ignored. Returns 0 or
 * RC_ENOMEM / RC_ELIMIT from the sketch. */
int rc_query_sketch(const rc_query_set_t *set, int64_t t_ms, int64_t range_ms,
                    rc_compat_t compat, rc_sketch_t *out);

/* sum(rate(h[range])) (is_rate) or sum(increase(h[range])) over the native histograms of the
 * set, into out (initialised). *n_used gets the number of series that produced a value.
 * Returns 0, RC_ENOENT (no series produced one), RC_ENOTSUP (buckets that cannot be added:
 * PromQL drops the result with a warning) or RC_ENOMEM. */
int rc_query_hist_sum(const rc_query_set_t *set, int64_t t_ms, int64_t range_ms,
                      rc_compat_t compat, int is_rate, rc_fhist_t *out, uint32_t *n_used);

/* histogram_quantile(phi, sum by (<by>, le) (rate(x_bucket[range]))) over the classic bucket
 * series of the set: series are grouped by the labels in by[0..nby) (all labels but __name__
 * and le when by is NULL: no aggregation), each bucket's rate summed within its group, and
 * the quantile taken per group. Series without a parseable `le` are skipped (counted in
 * *skipped), as PromQL does. cb gets each group's result and one series of the group (for its
 * labels); a non-zero return stops. Returns 0, the cb's value, or RC_ENOMEM. */
typedef int (*rc_query_group_cb)(void *ctx, const rc_store_series_t *any, double value);
int rc_query_classic_quantile(const rc_query_set_t *set, double phi, int64_t t_ms,
                              int64_t range_ms, rc_compat_t compat, const char *const *by,
                              uint32_t nby, rc_query_group_cb cb, void *ctx, uint32_t *skipped);

#endif
