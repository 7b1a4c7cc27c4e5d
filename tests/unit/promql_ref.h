/* promql_ref.h: a deliberately plain reference implementation of PromQL's range functions
 * (rate, increase, delta, irate, idelta, the *_over_time family, resets, changes) and of the
 * instant-vector lookup, over an array of raw samples. It exists only to check src/window.c:
 * every result here is computed the way Prometheus' Go code computes it, operation by
 * operation, so that the window can be required to agree bit for bit.
 *
 * Nothing is clever here on purpose: each call scans the whole array, copies the samples of
 * the window into a scratch buffer and evaluates the function on that buffer. Speed and
 * memory do not matter; being easy to compare line by line with functions.go does.
 *
 * Which Prometheus: RC_COMPAT_PROM3 follows 3.x, RC_COMPAT_PROM2 follows 2.42 (Debian 12's
 * prometheus package). Every place where the two differ is marked "VERSION:" in
 * promql_ref.c, with the tag or pull request it comes from.
 *
 * Floating point: results are exact only if the compiler does not contract a*b+c into a
 * fused multiply-add (Go on amd64 does not); build with the default x86-64 target or with
 * -ffp-contract=off.
 */
#ifndef PROMQL_REF_H
#define PROMQL_REF_H

#include <stddef.h>
#include <stdint.h>

#include "window.h"

/* Bit pattern of Prometheus' staleness marker (model/value.StaleNaN). */
#define REF_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* avg_over_time changed twice within 3.x; ref_eval uses this for RC_COMPAT_PROM3.
 *  REF_AVG3_KAHAN_SUM   2.55-3.4: Kahan sum from 0, (sum + c) / count; the incremental mean
 *                        only once the running sum overflows (PR #14413).
 *  REF_AVG3_DIRECT_35    3.5 (LTS) and later, the default: the sum starts at the first value,
 *                        the result is sum/count + c/count, and the incremental fallback
 *                        scales mean and compensation by (n-1)/n (PR #16773). Both are "Kahan
 *                        sum / count with an incremental fallback"; they differ in the last
 *                        bit for ordinary data and in ±Inf/NaN corner cases. */
typedef enum { REF_AVG3_KAHAN_SUM = 0, REF_AVG3_DIRECT_35 = 1 } ref_avg3_t;
void ref_set_avg3(ref_avg3_t variant);

/* f(v[range]) at t_ms: ts must be strictly increasing; v may hold staleness markers, which
 * range vectors drop. param is φ for quantile_over_time. Returns 0 and *out, RC_ENOENT when
 * PromQL outputs nothing for the series, RC_EINVAL for an unknown fn or a NULL pointer,
 * RC_ENOMEM if the scratch buffer cannot be allocated. */
int ref_eval(const int64_t *ts, const double *v, size_t n, rc_fn_t fn, double param,
             int64_t t_ms, int64_t range_ms, rc_compat_t compat, double *out);

/* Instant-vector selector at t_ms: the newest sample with ts <= t_ms, if it lies within the
 * lookback window ([t-lookback, t] in 2.x, (t-lookback, t] in 3.x) and is not a staleness
 * marker. Returns 0 with its value and its own timestamp, or RC_ENOENT. */
int ref_instant(const int64_t *ts, const double *v, size_t n, int64_t t_ms, int64_t lookback_ms,
                rc_compat_t compat, double *out_v, int64_t *out_ts);

/* Number of non-stale samples in the range window of (t_ms, range_ms, compat); the test uses
 * it to know how many values quantile_over_time sorted. */
size_t ref_window_len(const int64_t *ts, const double *v, size_t n, int64_t t_ms,
                      int64_t range_ms, rc_compat_t compat);

/* Name of a function for messages ("rate", "quantile_over_time", ...). */
const char *ref_fn_name(rc_fn_t fn);

#endif
