/* hist_ref.h: a deliberately plain model of native histograms for the tests: sparse sorted
 * (index, count) lists as Prometheus keeps them (explicit buckets, zeros included, until
 * compacted), linear searches, and rate()/increase()/histogram_quantile() transcribed step by
 * step from the Prometheus functions they model, over raw remote-write samples. Nothing here
 * is shared with src/histwin.c or src/histq.c (bounds are computed here too), so agreement
 * between the two is evidence, not tautology. Speed is no concern.
 */
#ifndef HIST_REF_H
#define HIST_REF_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

typedef struct ref_bucket {
  int32_t idx;
  double count;
} ref_bucket_t;

typedef struct ref_hist {
  int32_t schema;
  uint8_t hint;
  double zt, zc, count, sum;
  ref_bucket_t *b[2]; /* [0] positive, [1] negative; ascending index */
  size_t n[2];
  double *custom;
  size_t ncustom;
} ref_hist_t;

void ref_hist_free(ref_hist_t *h);
/* A valid raw sample (not stale) to absolute counts, explicit zero buckets kept. */
void ref_from_raw(ref_hist_t *out, const rc_histogram_t *h);
double ref_bucket(const ref_hist_t *h, int sign, int32_t idx);
/* Upper bound of exponential bucket idx. */
double ref_bound(int32_t schema, int32_t idx);

/* rate (is_rate) or increase at t over range of the raw samples (sorted by ts, stale markers
 * included); compat 0 = Prometheus 3.x, 1 = 2.42. Returns 0 (*out set, caller frees), -8
 * (nothing: fewer than 2 samples) or -7 (incompatible: custom/exponential mix etc.). */
int ref_rate(const rc_histogram_t *s, size_t n, int64_t t, int64_t range, int compat,
             int is_rate, ref_hist_t *out);
/* histogram_quantile; compat as above. */
double ref_quantile(double q, const ref_hist_t *h, int compat);

#endif
