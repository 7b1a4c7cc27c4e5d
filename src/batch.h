/* batch.h: the decoded, validated form of one remote-write request — the unit handed from
 * ingest to the aggregation layer. Both protocol versions decode into this one shape, so
 * nothing downstream knows which version a sample came in.
 *
 * Ownership: a batch lives in its own arena (the batch struct is the arena's first block);
 * every pointer below points into that arena. rc_batch_free() releases all of it at once.
 * A batch has one owner at a time: the loop thread while decoding, then whoever pops it off
 * the hand-off ring.
 */
#ifndef RC_BATCH_H
#define RC_BATCH_H

#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "rc.h"

typedef struct rc_label {
  const char *name, *value; /* not NUL-terminated; use the lengths */
  uint32_t name_len, value_len;
} rc_label_t;

typedef struct rc_sample {
  double value;
  int64_t ts_ms;
  int64_t start_ts_ms; /* remote write 2.0 start ("created") timestamp; 0 = unset */
} rc_sample_t;

typedef struct rc_span {
  int32_t offset;
  uint32_t length;
} rc_span_t;

/* A native histogram sample. Integer histograms carry deltas, float ones absolute counts. */
typedef struct rc_histogram {
  int64_t ts_ms, start_ts_ms;
  double count, sum, zero_threshold, zero_count;
  int32_t schema;    /* -4..8 exponential, -53 custom buckets */
  uint8_t is_float;
  uint8_t reset_hint; /* 0 unknown, 1 yes, 2 no, 3 gauge */
  uint8_t is_stale;   /* sum carried the staleness-marker bit pattern */
  uint32_t n_neg_spans, n_pos_spans, n_neg, n_pos, n_custom;
  const rc_span_t *neg_spans, *pos_spans;
  const int64_t *neg_deltas, *pos_deltas; /* integer histograms */
  const double *neg_counts, *pos_counts;  /* float histograms */
  const double *custom_values;            /* schema -53 bucket bounds */
} rc_histogram_t;

enum { RC_MTYPE_UNKNOWN = 0, RC_MTYPE_COUNTER, RC_MTYPE_GAUGE, RC_MTYPE_HISTOGRAM,
       RC_MTYPE_GAUGEHISTOGRAM, RC_MTYPE_SUMMARY, RC_MTYPE_INFO, RC_MTYPE_STATESET };

typedef struct rc_series {
  /* Sorted by name, unique, no empty values. NULL when a decoder with lazy_labels found the
   * label set in its cache: then raw_labels holds the nlabels Label fields of remote write
   * 1.0 as they came (checked before, sorted, unique), and rc_rw_series_labels unpacks them
   * for the rare consumer that needs them (the store, for a series it has not decided). */
  const rc_label_t *labels;
  const uint8_t *raw_labels;
  uint32_t raw_labels_len;
  const char *metric;       /* the __name__ value (points at that label's value) */
  const rc_sample_t *samples;
  const rc_histogram_t *histograms;
  uint32_t nlabels, metric_len, nsamples, nhistograms, nexemplars;
  uint32_t nstale;          /* samples + histograms that are staleness markers */
  uint8_t mtype;            /* RC_MTYPE_*; from v2 metadata, else unknown */
  /* has_id: id_lo/id_hi hold rc_selindex_hash_labels(labels), remembered by the decoder's
   * label-set cache, so that the store need not hash the labels again (rc_series_hash). */
  uint8_t has_id;
  uint64_t id_lo, id_hi;
} rc_series_t;

typedef struct rc_batch {
  rc_arena_t arena; /* owns this struct and everything it points to */
  rc_series_t *series;
  uint32_t nseries;
  uint8_t version;  /* 1 or 2 */
  uint64_t nsamples, nhistograms, nexemplars, nstale, nmetadata;
  uint64_t received_ns; /* monotonic time the request was complete */
} rc_batch_t;

/* Staleness marker: this exact NaN bit pattern (never compare with isnan()). */
#define RC_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)
static inline int rc_is_stale_nan(double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof(bits));
  return bits == RC_STALE_NAN_BITS;
}

/* Frees the batch and everything in it. NULL is a no-op. */
static inline void rc_batch_free(rc_batch_t *b) {
  if (b != NULL) {
    rc_arena_t a = b->arena; /* b itself lives in the arena */
    rc_arena_free(&a);
  }
}

#endif
