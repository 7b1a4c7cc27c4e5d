/* rw_labels.h: label-set validation and normalisation for remote write, as the spec asks:
 * names non-empty, valid and unique, __name__ present, names and values valid UTF-8, labels
 * with empty values removed (an empty value is the same as no label), unsorted sets sorted
 * rather than rejected. Pure functions over caller memory: no allocation, no I/O.
 */
#ifndef RC_RW_LABELS_H
#define RC_RW_LABELS_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"

/* Returns 1 if s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int rc_utf8_valid(const char *s, size_t len);

/* Legacy (Prometheus 2.x) charsets: metric names [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]*. */
int rc_legacy_metric_name(const char *s, size_t len);
int rc_legacy_label_name(const char *s, size_t len);

/* Why a label set was refused; the values label ripcord_write_invalid_series_total. */
#define RC_LABEL_PROBLEMS(X)                  \
  X(OK, "ok")                                 \
  X(NAME_EMPTY, "label_name_empty")           \
  X(NAME_INVALID, "label_name_invalid")       \
  X(NAME_UTF8, "label_name_utf8")             \
  X(VALUE_UTF8, "label_value_utf8")           \
  X(DUPLICATE, "label_name_duplicate")        \
  X(NO_METRIC_NAME, "metric_name_missing")    \
  X(METRIC_NAME_INVALID, "metric_name_invalid") \
  X(TOO_MANY, "too_many_labels")              \
  X(TOO_LONG, "labels_too_long")

typedef enum {
#define RC_LP_ENUM(n, s) RC_LP_##n,
  RC_LABEL_PROBLEMS(RC_LP_ENUM)
#undef RC_LP_ENUM
  RC_LP__COUNT
} rc_label_problem_t;

const char *rc_label_problem_name(rc_label_problem_t p);

typedef struct rc_label_limits {
  uint32_t max_labels;      /* after empty values are dropped */
  uint32_t max_label_bytes; /* sum of name and value lengths */
  int legacy_names;         /* 1: enforce the legacy charsets; 0: any UTF-8 (Prometheus 3) */
} rc_label_limits_t;

/* Validates and normalises labels[0..*n) in place: drops empty-valued labels, sorts by name
 * (bytewise, shorter first on a common prefix, as Go compares strings), then checks. On
 * success returns RC_LP_OK, updates *n and sets *metric_idx to the __name__ label. On failure
 * returns the problem and sets *bad to the offending label's index (or -1). */
rc_label_problem_t rc_labels_normalize(rc_label_t *labels, uint32_t *n,
                                       const rc_label_limits_t *lim, uint32_t *metric_idx,
                                       int *bad);
/* The same, but when utf8_checked is 1 the caller vouches that every name and value is valid
 * UTF-8 (remote write 2.0 checks each symbol once per request, not once per reference). */
rc_label_problem_t rc_labels_normalize_ex(rc_label_t *labels, uint32_t *n,
                                          const rc_label_limits_t *lim, int utf8_checked,
                                          uint32_t *metric_idx, int *bad);

/* Bytewise comparison of two byte strings, Go style. */
static inline int rc_bytes_cmp(const char *a, size_t alen, const char *b, size_t blen) {
  size_t m = alen < blen ? alen : blen;
  int c = m ? memcmp(a, b, m) : 0;
  if (c != 0) return c;
  return (alen > blen) - (alen < blen);
}

#endif
