/* sketch.h: a mergeable, subtractable streaming quantile sketch with a relative-error bound.
 *
 * What it is: a DDSketch (Masson, Rim, Lee, "DDSketch: A Fast and Fully-Mergeable Quantile
 * Sketch with Relative-Error Guarantees", PVLDB 12(12), 2019) whose buckets are exactly those
 * of a Prometheus native histogram (spec: prometheus.io/docs/specs/native_histograms/): at
 * schema n, gamma = 2^(2^-n), positive bucket i is (gamma^(i-1), gamma^i], index 0 ends at 1,
 * negative values are indexed by |x|, and a zero bucket holds |x| <= zero_threshold. So a
 * sketch and a native histogram of the same schema add and subtract bucket for bucket, and a
 * finer one is reduced to the coarser schema (old index i -> ((i - 1) >> d) + 1) first.
 *
 * Accuracy: rc_sketch_quantile() returns the bucket's relative midpoint 2 gamma^i/(gamma+1),
 * within alpha = (gamma-1)/(gamma+1) of the true value (schema 6: 0.54 %; schema 5: 1.08 %).
 * It loses that bound only for a quantile that lands in the zero bucket (returns 0; error at
 * most zero_threshold) or in a collapsed floor bucket (see max_bins). rc_sketch_quantile_prom()
 * reproduces PromQL 3.x histogram_quantile() on the same buckets instead (no alpha bound).
 *
 * Memory: a fixed header plus, per sign, one dense run of counters covering only the populated
 * index range [off, off+len). Counters start at one byte and widen (1, 2, 4, 8 bytes) when a
 * count overflows, so a sketch of 300 latencies costs a few hundred bytes. The range is
 * bounded by max_bins: past it, the LOWEST buckets (smallest |x|) are folded into a "floor"
 * bucket, which keeps high quantiles exact to alpha (what p99 needs).
 *
 * Not here: time slots, windows, locking, NaN staleness handling (store.c's job).
 * Threads: a sketch has one writer; const functions may run concurrently with each other but
 * not with a writer. Memory: every pointer is borrowed for the duration of the call.
 */
#ifndef RC_SKETCH_H
#define RC_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "rc.h"

#define RC_SKETCH_SCHEMA_MIN (-4)
#define RC_SKETCH_SCHEMA_MAX 8
/* The smallest schema whose alpha is <= 1 %: schema 5 gives 1.08 %, schema 6 gives 0.54 %. */
#define RC_SKETCH_DEFAULT_SCHEMA 6
/* client_golang's default, 2^-128: a bucket boundary at every schema. */
#define RC_SKETCH_DEFAULT_ZERO_THRESHOLD 0x1p-128
/* Per sign. At schema 6 that is 8 powers of two (a factor of 256) below the largest value. */
#define RC_SKETCH_DEFAULT_MAX_BINS 512u
#define RC_SKETCH_MAX_BINS 65535u
/* A floor value meaning "never collapsed". */
#define RC_SKETCH_NO_FLOOR INT32_MIN

typedef struct rc_sketch_opts {
  int schema;            /* -4..8; rc_sketch_schema_for_alpha() picks one from an alpha */
  double zero_threshold; /* >= 0, finite: |x| <= this counts as zero (0: exact zeros only) */
  uint32_t max_bins;     /* 1..RC_SKETCH_MAX_BINS buckets per sign before the lowest fold */
} rc_sketch_opts_t;

#define RC_SKETCH_OPTS_DEFAULT                                                          \
  ((rc_sketch_opts_t){.schema = RC_SKETCH_DEFAULT_SCHEMA,                              \
                      .zero_threshold = RC_SKETCH_DEFAULT_ZERO_THRESHOLD,              \
                      .max_bins = RC_SKETCH_DEFAULT_MAX_BINS})

/* One sign's buckets. Private: read through the functions below. */
typedef struct rc_sketch_store {
  uint8_t *bins;  /* owned; len counters of (1 << width) bytes, for indexes off..off+len-1 */
  int32_t off;    /* bucket index of the first counter */
  int32_t floor;  /* RC_SKETCH_NO_FLOOR, or: every index below it was counted here instead */
  uint16_t len;   /* populated range; when len > 0 the first and last counters are nonzero */
  uint16_t cap;   /* counters allocated */
  uint8_t width;  /* log2 of the bytes per counter, 0..3 */
} rc_sketch_store_t;

/* A sketch. Embed it and use rc_sketch_init/rc_sketch_close, or rc_sketch_new/rc_sketch_free.
 * Fields are private; sizeof is 120 bytes on LP64, plus the counters. */
typedef struct rc_sketch {
  rc_sketch_store_t pos, neg;
  uint64_t count;      /* observations held, every kind except NaN */
  uint64_t zero_count; /* |x| <= zero_threshold */
  uint64_t pinf, ninf; /* +Inf and -Inf observations */
  double sum, min, max;
  double zero_threshold;
  uint32_t nan_count;  /* NaN observations rejected (saturates) */
  uint16_t max_bins;
  int8_t schema;
  uint8_t flags;
} rc_sketch_t;

typedef struct rc_sketch_stats {
  uint64_t count, zero_count, pinf, ninf;
  uint32_t nan_count;
  int schema;
  double alpha, zero_threshold;
  double sum;     /* IEEE sum of what was added minus what was subtracted */
  double min, max; /* exact while minmax_exact; otherwise only outer bounds */
  int minmax_exact; /* 0 after a subtraction or a native histogram (bounds come from buckets) */
  int32_t pos_floor, neg_floor; /* RC_SKETCH_NO_FLOOR unless collapsed */
} rc_sketch_stats_t;

/*------------------------------------------------------------------------------------------
 * Mapping (pure functions; any thread)
 *----------------------------------------------------------------------------------------*/

/* alpha = (gamma-1)/(gamma+1) of a schema in -4..8 (NaN for anything else). */
double rc_sketch_alpha(int schema);
/* The smallest (cheapest) schema whose alpha is <= the requested one. Returns 0, RC_EINVAL
 * (alpha not in (0, 1)) or RC_ENOTSUP (finer than schema 8's 0.135 % was asked for). */
int rc_sketch_schema_for_alpha(double alpha, int *schema);
/* Bucket index of |v| at a schema, exact at every boundary (no log()): |v| must be > 0 and
 * finite, else INT32_MIN is returned. DBL_MAX is in bucket 2^(10+schema). */
int32_t rc_sketch_index(int schema, double v);
/* Upper bound of positive bucket idx (inclusive); the lower bound is that of idx-1. Follows
 * Prometheus: the bucket holding DBL_MAX ends at DBL_MAX, the one after it at +Inf. The
 * non-power-of-two bounds are 2^(j/2^schema) correctly rounded; Prometheus' own table is up to
 * 3 ulp below some of them, so only values within 3 ulp under such a bound can land one bucket
 * lower here than in client_golang. */
double rc_sketch_upper_bound(int schema, int32_t idx);

/*------------------------------------------------------------------------------------------
 * Lifetime
 *----------------------------------------------------------------------------------------*/

/* Initialises an empty sketch; opts NULL means RC_SKETCH_OPTS_DEFAULT. Returns 0 or RC_EINVAL
 * (bad opts). Allocates nothing; pair with exactly one rc_sketch_close(). */
int rc_sketch_init(rc_sketch_t *s, const rc_sketch_opts_t *opts);
/* Frees the counters. The struct may be initialised again afterwards. */
void rc_sketch_close(rc_sketch_t *s);
/* Heap variant: returns NULL on bad opts or out of memory. rc_sketch_free(NULL) is a no-op. */
rc_sketch_t *rc_sketch_new(const rc_sketch_opts_t *opts);
void rc_sketch_free(rc_sketch_t *s);
/* Makes dst (uninitialised, or closed) an independent copy of src. 0 or RC_ENOMEM. */
int rc_sketch_copy(rc_sketch_t *dst, const rc_sketch_t *src);
/* Empties the sketch, keeping its current schema, zero threshold, max_bins and buffers. */
void rc_sketch_clear(rc_sketch_t *s);
/* Releases spare capacity and narrows counters to the widest count (e.g. for a time slot
 * that will not change again). 0 or RC_ENOMEM (then unchanged). */
int rc_sketch_shrink(rc_sketch_t *s);
/* Bytes held: the struct plus the counters allocated (malloc's own overhead not included). */
size_t rc_sketch_footprint(const rc_sketch_t *s);

/*------------------------------------------------------------------------------------------
 * Updates. Each is all-or-nothing: on any error the sketch is unchanged.
 *----------------------------------------------------------------------------------------*/

/* Adds n observations of v (n == 0 does nothing).
 *   finite v: bucket index(|v|) of its sign, or the zero bucket when |v| <= zero_threshold;
 *   +Inf / -Inf: counted apart, a quantile landing there is +Inf / -Inf;
 *   NaN (the staleness marker included): RC_EINVAL, counted in nan_count, nothing else kept.
 * Returns 0, RC_EINVAL, RC_ELIMIT (the total count would pass 2^64-1) or RC_ENOMEM. */
int rc_sketch_add(rc_sketch_t *dst, double v, uint64_t n);

/* dst += src. Exact and associative when both have the same schema and zero threshold: the
 * result is bucket for bucket the sketch of the union, collapsing included (when max_bins is
 * the same). Otherwise both are first brought to the coarser schema (pairs of buckets merged,
 * as native-histogram schema reduction does) and the larger zero threshold (widened to a
 * bucket boundary if it would cut a populated bucket; buckets below it join the zero bucket):
 * dst may thus become coarser. dst keeps its own max_bins. src may equal dst.
 * Returns 0, RC_ELIMIT (a count would overflow) or RC_ENOMEM. */
int rc_sketch_merge(rc_sketch_t *dst, const rc_sketch_t *src);

/* dst -= src, for sliding windows (running total minus the expiring slot). Aligned as for
 * merge. Every bucket of src must be covered by dst: if any count would go below zero, or src
 * was collapsed above dst's floor, returns RC_EINVAL and changes nothing. Exactly undoes
 * rc_sketch_merge(dst, src) unless that merge collapsed buckets. Afterwards min/max are outer
 * bounds only; an emptied sketch is reset (floor, sum, min, max). src may equal dst. */
int rc_sketch_subtract(rc_sketch_t *dst, const rc_sketch_t *src);

/* Adds (sign +1) or subtracts (sign -1) one native histogram sample, bucket for bucket, so a
 * window can be H(t) - H(t-w). The histogram is reduced to the sketch's schema when finer; when
 * coarser, the sketch is reduced to the histogram's (as merge does). Its ±Inf overflow buckets
 * (index 2^(10+schema)+1) count as ±Inf; count minus its buckets (NaN observations) goes to
 * nan_count. Float histograms must carry whole-number counts (RC_ENOTSUP otherwise: keep those
 * as histograms). Returns 0; RC_EINVAL (stale marker, bad sign, spans or counts, index out of
 * range, or a subtraction below zero); RC_ENOTSUP (custom buckets, schema -53, or fractional
 * counts); RC_ELIMIT; RC_ENOMEM. */
int rc_sketch_add_histogram(rc_sketch_t *dst, const rc_histogram_t *h, int sign);

/*------------------------------------------------------------------------------------------
 * Queries
 *----------------------------------------------------------------------------------------*/

/* DDSketch estimate of the q-quantile with PromQL quantile_over_time's rank rule: rank
 * q*(count-1), interpolated linearly between the order statistics floor(rank) and the next,
 * each estimated by its bucket's relative midpoint, the result clamped to [min, max]. Relative
 * error <= alpha against quantile_over_time over the raw values when both order statistics
 * have the same sign and sit above the zero threshold and the floor. Returns 0, RC_EINVAL
 * (q NaN or outside [0,1]) or RC_ENOENT (empty sketch; *out = NaN). */
int rc_sketch_quantile(const rc_sketch_t *s, double q, double *out);

/* PromQL 3.x histogram_quantile(q, h) on the sketch's buckets: q < 0 -> -Inf, q > 1 -> +Inf,
 * empty or NaN q -> NaN; rank q*count walking up (q < 0.5 or sum NaN) or (1-q)*count walking
 * down, first non-empty bucket whose cumulative count reaches the rank, exponential
 * interpolation inside the bucket, linear in the zero bucket (bounded by 0 on the side that has
 * no buckets). Always returns 0. Differs from Prometheus only where a histogram held NaN
 * observations (Prometheus counts them in h.Count; the sketch does not). */
int rc_sketch_quantile_prom(const rc_sketch_t *s, double q, double *out);

uint64_t rc_sketch_count(const rc_sketch_t *s);
int rc_sketch_schema(const rc_sketch_t *s);
void rc_sketch_stats(const rc_sketch_t *s, rc_sketch_stats_t *out);

/* Count of one bucket: sign +1 or -1 and its index (floors included as stored). */
uint64_t rc_sketch_bucket(const rc_sketch_t *s, int sign, int32_t idx);

/* Calls cb for every non-empty bucket in ascending value order: -Inf (sign -1, index
 * INT32_MAX), negative buckets, zero (sign 0), positive buckets, +Inf (sign +1, INT32_MAX). */
typedef void (*rc_sketch_bucket_cb)(int sign, int32_t idx, uint64_t count, void *arg);
void rc_sketch_foreach(const rc_sketch_t *s, rc_sketch_bucket_cb cb, void *arg);

/* 1 when both hold the same buckets: schema, zero threshold, floors, every count (zero and
 * ±Inf included). Sum, min, max, capacity and counter width are not compared. */
int rc_sketch_equal(const rc_sketch_t *a, const rc_sketch_t *b);

#endif
