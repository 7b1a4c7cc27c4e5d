/* rw_labels.c: UTF-8 checks, legacy name charsets, and label-set normalisation; see
 * rw_labels.h. These run once per label of every incoming series, so the common case (ASCII,
 * already sorted, as every Prometheus sends) takes a fast path: 8 bytes at a time for UTF-8
 * and one linear pass for the order check; sorting happens only when a sender got it wrong.
 */
#include "rw_labels.h"

#include <string.h>

#include "rc.h"

static const char *const problem_names[] = {
#define RC_LP_STR(n, s) s,
    RC_LABEL_PROBLEMS(RC_LP_STR)
#undef RC_LP_STR
};

const char *rc_label_problem_name(rc_label_problem_t p) {
  return (unsigned)p < RC_LP__COUNT ? problem_names[p] : "unknown";
}

/* Validation follows the Unicode table of well-formed byte sequences (Unicode 15, table 3-7),
 * which excludes overlong forms, UTF-16 surrogates and code points above U+10FFFF. */
/* Slow path: validates from the first byte at or after `i` that may be non-ASCII. */
static int utf8_valid_from(const unsigned char *s, size_t len, size_t i) {
  while (i < len) {
    /* ASCII fast path: 8 bytes at a time while no byte has its top bit set. */
    while (i + 8 <= len) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & UINT64_C(0x8080808080808080)) break;
      i += 8;
    }
    if (i >= len) break;
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0) lo = 0xA0;      /* overlong */
      else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0) lo = 0x90;      /* overlong */
      else if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else {
      return 0;
    }
    if (len - i - 1 < need) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xC0) != 0x80) return 0;
    i += need + 1;
  }
  return 1;
}

/* Validation follows the Unicode table of well-formed byte sequences (Unicode 15, table 3-7),
 * which excludes overlong forms, UTF-16 surrogates and code points above U+10FFFF. Label
 * names and values are short and almost always ASCII, so the common case is one OR over the
 * bytes with no branch per byte; only strings with a high bit set take the full check. */
int rc_utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, s + i, 8);
    acc |= w;
  }
  for (; i < len; i++) acc |= s[i];
  if (RC_LIKELY(!(acc & UINT64_C(0x8080808080808080)))) return 1;
  return utf8_valid_from(s, len, 0);
}

static int name_char(unsigned char c, int first, int colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return 1;
  if (colon && c == ':') return 1;
  return !first && c >= '0' && c <= '9';
}

int rc_legacy_metric_name(const char *s, size_t len) {
  if (len == 0) return 0;
  for (size_t i = 0; i < len; i++)
    if (!name_char((unsigned char)s[i], i == 0, 1)) return 0;
  return 1;
}

int rc_legacy_label_name(const char *s, size_t len) {
  if (len == 0) return 0;
  for (size_t i = 0; i < len; i++)
    if (!name_char((unsigned char)s[i], i == 0, 0)) return 0;
  return 1;
}

/* Label names nearly always differ in their first byte; compare that inline and leave the
 * rest to memcmp. */
static inline int label_cmp(const rc_label_t *a, const rc_label_t *b) {
  if (a->name_len && b->name_len && a->name[0] != b->name[0])
    return (unsigned char)a->name[0] - (unsigned char)b->name[0];
  return rc_bytes_cmp(a->name, a->name_len, b->name, b->name_len);
}

static inline int is_metric_name_label(const rc_label_t *l) {
  static const char name[8] = {'_', '_', 'n', 'a', 'm', 'e', '_', '_'};
  uint64_t a, b;
  if (l->name_len != 8) return 0;
  memcpy(&a, l->name, 8);
  memcpy(&b, name, 8);
  return a == b;
}

/* Insertion sort: label sets are small (typically under 16) and nearly always sorted already;
 * it is stable, so with duplicates the first occurrence stays first. */
static void labels_sort(rc_label_t *l, uint32_t n) {
  for (uint32_t i = 1; i < n; i++) {
    rc_label_t x = l[i];
    uint32_t j = i;
    while (j > 0 && label_cmp(&l[j - 1], &x) > 0) {
      l[j] = l[j - 1];
      j--;
    }
    l[j] = x;
  }
}

rc_label_problem_t rc_labels_normalize(rc_label_t *labels, uint32_t *n,
                                       const rc_label_limits_t *lim, uint32_t *metric_idx,
                                       int *bad) {
  return rc_labels_normalize_ex(labels, n, lim, 0, metric_idx, bad);
}

rc_label_problem_t rc_labels_normalize_ex(rc_label_t *labels, uint32_t *n,
                                          const rc_label_limits_t *lim, int utf8_checked,
                                          uint32_t *metric_idx, int *bad) {
  uint32_t out = 0, total_bytes = 0;
  int sorted = 1;
  *bad = -1;
  for (uint32_t i = 0; i < *n; i++) {
    rc_label_t *l = &labels[i];
    if (l->name_len == 0) {
      *bad = (int)i;
      return RC_LP_NAME_EMPTY;
    }
    if (!utf8_checked && !rc_utf8_valid(l->name, l->name_len)) {
      *bad = (int)i;
      return RC_LP_NAME_UTF8;
    }
    if (!utf8_checked && !rc_utf8_valid(l->value, l->value_len)) {
      *bad = (int)i;
      return RC_LP_VALUE_UTF8;
    }
    if (l->value_len == 0) continue; /* an empty value is the same as no label */
    total_bytes += l->name_len + l->value_len;
    if (out != i) labels[out] = *l;
    if (out > 0 && sorted && label_cmp(&labels[out - 1], &labels[out]) >= 0) sorted = 0;
    out++;
  }
  *n = out;
  if (lim != NULL && lim->max_labels && out > lim->max_labels) return RC_LP_TOO_MANY;
  if (lim != NULL && lim->max_label_bytes && total_bytes > lim->max_label_bytes)
    return RC_LP_TOO_LONG;
  if (!sorted) labels_sort(labels, out);
  int found = -1;
  for (uint32_t i = 0; i < out; i++) {
    if (i > 0 && label_cmp(&labels[i - 1], &labels[i]) == 0) {
      *bad = (int)i;
      return RC_LP_DUPLICATE;
    }
    if (is_metric_name_label(&labels[i])) {
      found = (int)i;
    } else if (lim != NULL && lim->legacy_names &&
               !rc_legacy_label_name(labels[i].name, labels[i].name_len)) {
      *bad = (int)i;
      return RC_LP_NAME_INVALID;
    }
  }
  if (found < 0) return RC_LP_NO_METRIC_NAME;
  if (lim != NULL && lim->legacy_names &&
      !rc_legacy_metric_name(labels[found].value, labels[found].value_len)) {
    *bad = found;
    return RC_LP_METRIC_NAME_INVALID;
  }
  *metric_idx = (uint32_t)found;
  return RC_LP_OK;
}
