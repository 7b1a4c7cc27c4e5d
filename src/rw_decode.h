/* rw_decode.h: one remote-write request body (snappy block + protobuf, version 1.0 or 2.0) in,
 * one validated rc_batch_t out. No I/O and no shared state: the HTTP edge calls this on the
 * loop thread, tests and fuzzers call it directly.
 *
 * What it checks, in order: the snappy block header (declared length against a limit, before
 * any allocation), the snappy payload (decompressed into the batch's arena), the protobuf
 * message (read zero-copy, or by protobuf-c as the reference; the arena has a byte limit),
 * then every series (labels, histograms, v2 symbol references). A bad series
 * is dropped and counted and the rest of the request is kept, which spec 1.0 allows; the
 * caller answers 400 naming the first problem so the sender does not retry.
 */
#ifndef RC_RW_DECODE_H
#define RC_RW_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "rw_labels.h"

/* Request-level failures; label values of ripcord_write_decode_errors_total. */
#define RC_RW_REASONS(X)              \
  X(NONE, "none")                     \
  X(EMPTY_BODY, "empty_body")         \
  X(SNAPPY_FRAMED, "snappy_framed")   \
  X(SNAPPY, "snappy")                 \
  X(TOO_LARGE, "decoded_too_large")   \
  X(PROTOBUF, "protobuf")             \
  X(MEMORY, "decoded_memory_limit")   \
  X(SYMBOLS, "symbols")

typedef enum {
#define RC_RWR_ENUM(n, s) RC_RWR_##n,
  RC_RW_REASONS(RC_RWR_ENUM)
#undef RC_RWR_ENUM
  RC_RWR__COUNT
} rc_rw_reason_t;
const char *rc_rw_reason_name(rc_rw_reason_t r);

/* Series-level problems beyond the label ones of rw_labels.h. A series problem index is either
 * an rc_label_problem_t or RC_LP__COUNT + one of these. */
#define RC_RW_SERIES_PROBLEMS(X)                   \
  X(LABEL_REFS, "label_refs_invalid")              \
  X(EXEMPLAR_REFS, "exemplar_refs_invalid")        \
  X(METADATA_REFS, "metadata_refs_invalid")        \
  X(HISTOGRAM, "histogram_invalid")                \
  X(EMPTY, "no_samples_or_histograms")             \
  X(MIXED, "samples_and_histograms")

enum {
#define RC_RWS_ENUM(n, s) RC_RWS_##n,
  RC_RWS__FIRST = RC_LP__COUNT - 1,
  RC_RW_SERIES_PROBLEMS(RC_RWS_ENUM)
#undef RC_RWS_ENUM
  RC_RWS__COUNT
};
const char *rc_rw_series_problem_name(int p);

typedef struct rc_rw_limits {
  size_t max_decoded_bytes; /* cap on the snappy-declared uncompressed length */
  size_t max_arena_bytes;   /* cap on memory for the unpacked message and the batch */
  rc_label_limits_t labels;
  int reference_decoder;    /* 1: decode with protobuf-c (the reference) instead of the
                               zero-copy wire reader; --ingest.decoder=protobuf-c */
} rc_rw_limits_t;

typedef struct rc_rw_result {
  rc_rw_reason_t reason; /* request-level failure, RC_RWR_NONE if a batch was produced */
  char msg[256];         /* one line: the request failure or the first invalid series */
  uint32_t invalid_series;
  uint32_t invalid_by[RC_RWS__COUNT];
  uint64_t dropped_samples, dropped_histograms, dropped_exemplars;
  size_t decoded_bytes;  /* uncompressed protobuf size */
} rc_rw_result_t;

/* A decoder's settings, and a cache of v1 label sets already found valid (keyed by a seeded
 * 64-bit hash of their raw bytes plus length), so a series seen before skips the UTF-8, order
 * and duplicate checks. Each batch's arena holds its own decompressed bytes; the cache holds
 * no pointers into them. One decoder serves any number of requests in turn on one thread. */
typedef struct rc_rw_decoder {
  rc_rw_limits_t lim;
  struct rw_lcache *lcache; /* label sets seen valid before (rw_wire.c); lazily allocated */
  /* Set by a consumer that reads labels through rc_rw_series_labels (the ingest workers): a
   * remote write 1.0 series whose label set the cache knows is left with labels NULL and its
   * raw label fields, not parsed. Off (0) after rc_rw_decoder_init. */
  int lazy_labels;
} rc_rw_decoder_t;

void rc_rw_decoder_init(rc_rw_decoder_t *d, const rc_rw_limits_t *lim);
void rc_rw_decoder_close(rc_rw_decoder_t *d);

/* Decodes body[0..len) as remote write `version` (1 or 2).
 * Returns 0 and sets *out to a new batch (owned by the caller; free with rc_batch_free) —
 * res->invalid_series tells whether series were dropped. On failure returns RC_EPARSE
 * (malformed: answer 400), RC_ELIMIT (too large: answer 413) or RC_ENOMEM (answer 500),
 * sets *out to NULL and explains in res. res is always fully written. */
int rc_rw_decode(rc_rw_decoder_t *d, int version, const char *body, size_t len,
                 rc_batch_t **out, rc_rw_result_t *res);

/* The labels of a decoded series: s->labels, or, when the decoder left them raw
 * (lazy_labels), unpacked into buf (room for cap labels). NULL if cap is less than s->nlabels
 * (or the raw form is not what the decoder checked, which cannot happen). */
const rc_label_t *rc_rw_series_labels(const rc_series_t *s, rc_label_t *buf, uint32_t cap);

/* Validates a converted native histogram (schema, spans against bucket counts, non-negative
 * counts, custom bounds). Returns 1 if valid, else 0 with a reason in why. */
int rc_histogram_valid(const rc_histogram_t *h, char *why, size_t why_size);

#endif
