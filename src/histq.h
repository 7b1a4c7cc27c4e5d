/* histq.h: PromQL's histogram_quantile(), histogram_fraction(), histogram_count() and
 * histogram_sum(), for native histograms (rc_fhist_t, e.g. a rate() result) and for classic
 * `le` bucket groups.
 *
 * Semantics: prometheus/prometheus promql/quantile.go (HistogramQuantile, HistogramFraction,
 * BucketQuantile) as of 3.x, and as of 2.42 (Debian's package) where they differ:
 *   native, 3.x: walk up (q < 0.5 or sum NaN) or down from the top, skip empty buckets,
 *     exponential interpolation inside exponential buckets, linear in the zero bucket and for
 *     custom buckets (whose first bucket is bounded by 0 and whose +Inf bucket returns its
 *     lower bound); a rank never reached returns NaN when the sum is NaN (NaN observations).
 *   native, 2.42: walk up only, linear interpolation everywhere, an unreached rank returns the
 *     last bucket's upper bound; no custom buckets (NaN).
 *   classic, 3.x: sort, +Inf bucket required, coalesce equal bounds, differences below 1e-12
 *     relative ignored, then decreases raised to the running level; fewer than 2 buckets or no
 *     observations: NaN. 2.42: the same without the 1e-12 step.
 * Interpolation uses C's log2/exp2 where Go uses its own: results may differ from Prometheus
 * in the last bit or two, never more (see test_histq.c for the measured agreement).
 *
 * Threads: pure functions over caller memory.
 */
#ifndef RC_HISTQ_H
#define RC_HISTQ_H

#include <stddef.h>

#include "histwin.h"
#include "window.h"

/* Notes PromQL would attach as info annotations (classic quantile). */
#define RC_HISTQ_FORCED_MONOTONIC 1u
#define RC_HISTQ_FIXED_PRECISION 2u

typedef struct rc_histq_bucket {
  double upper; /* the le bound (+Inf for the last) */
  double count; /* cumulative count */
} rc_histq_bucket_t;

/* histogram_quantile(q, h): q < 0 -> -Inf, q > 1 -> +Inf, q NaN or empty histogram -> NaN. */
double rc_histq_native(double q, const rc_fhist_t *h, rc_compat_t compat);

/* histogram_fraction(lower, upper, h): share of observations in (lower, upper]; NaN for an
 * empty histogram or a NaN bound, 0 when lower >= upper. */
double rc_histq_fraction(double lower, double upper, const rc_fhist_t *h, rc_compat_t compat);

static inline double rc_histq_count(const rc_fhist_t *h) { return h->count; }
static inline double rc_histq_sum(const rc_fhist_t *h) { return h->sum; }

/* histogram_quantile(q, buckets) of one classic group of n buckets. b is sorted and rewritten
 * in place (coalesced, made monotonic), as Prometheus does to its slice. *flags (may be NULL)
 * gets RC_HISTQ_* bits. n == 0 gives NaN. */
double rc_histq_classic(double q, rc_histq_bucket_t *b, size_t n, rc_compat_t compat,
                        unsigned *flags);

#endif
