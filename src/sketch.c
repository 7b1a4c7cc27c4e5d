/* sketch.c: the DDSketch / native-histogram quantile sketch described in sketch.h.
 *
 * Sections, in order: the bucket mapping (index and bounds without log(), exact at every
 * boundary); counter stores (variable-width dense runs, changed only through plan + commit so
 * that a failed allocation leaves them untouched); alignment of two sketches (schema reduction,
 * zero threshold); the public updates; the queries.
 *
 * The index of a normal double v = m * 2^e (m in [1,2)) at schema n > 0 is
 * e * 2^n + s(m), where s(m) = ceil(2^n log2 m) is the number of bounds B_j = 2^(j/2^n),
 * j = 0..2^n-1, strictly below m. The bounds are correctly rounded doubles. Cutting [1,2) into
 * 2^(n+1) equal cells puts at most one bound in each cell (bounds are at least 2^(1/2^n) - 1
 * > 2^-(n+1) apart), so one table entry per cell (the first bound at or above the cell's start,
 * and its position j) turns s(m) into one load and one compare: s = j + (m > B_j). Schemas <= 0
 * need no table: ceil(log2 v) is e, or e+1 when m > 1, then a ceiling shift.
 */
#include "sketch.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SIGN_BIT UINT64_C(0x8000000000000000)
#define EXP_MASK UINT64_C(0x7ff0000000000000)
#define MANT_MASK UINT64_C(0x000fffffffffffff)
#define MIN_NORMAL UINT64_C(0x0010000000000000)
#define LOW53 ((UINT64_C(1) << 53) - 1)

#define F_LOOSE_MINMAX 1u /* min/max are outer bounds only (after subtract or a histogram) */

typedef rc_sketch_store_t store_t;

/*------------------------------------------------------------------------------------------
 * Mapping
 *----------------------------------------------------------------------------------------*/

static double g_bound[256];     /* 2^(j/256) correctly rounded; schema n uses j * 2^(8-n) */
static uint64_t g_cell_mem[1020]; /* 2^(n+1) cells for each schema 1..8 */
static const uint64_t *g_cells[RC_SKETCH_SCHEMA_MAX + 1];
static double g_mid[RC_SKETCH_SCHEMA_MAX - RC_SKETCH_SCHEMA_MIN + 1]; /* 2/(gamma+1) */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static inline uint64_t dbits(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof(b));
  return b;
}

static inline double bitsd(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof(d));
  return d;
}

/* Mantissa field of bound j at schema n; j == 2^n is 2.0, one past every mantissa. */
static uint64_t bound_mant(int n, uint32_t j) {
  if (j == (1u << n)) return UINT64_C(1) << 52;
  return dbits(g_bound[j << (8 - n)]) & MANT_MASK;
}

static void tables_init(void) {
  /* exp2l carries 64 bits (x87) or 113 (binary128): rounding that to 53 bits gives the
   * correctly rounded bound for all 256 j (checked against 60-digit decimal arithmetic). */
  for (int j = 0; j < 256; j++) g_bound[j] = (double)exp2l((long double)j / 256.0L);
  size_t at = 0;
  for (int n = 1; n <= RC_SKETCH_SCHEMA_MAX; n++) {
    uint32_t nb = 1u << n, ncell = 2u << n, j = 0;
    uint64_t *cells = g_cell_mem + at;
    for (uint32_t c = 0; c < ncell; c++) {
      uint64_t start = (uint64_t)c << (51 - n), end = start + (UINT64_C(1) << (51 - n));
      while (j < nb && bound_mant(n, j) < start) j++;
      /* The next bound must lie past this cell, or one compare would not be enough. */
      assert(j == nb || bound_mant(n, j + 1) >= end);
      (void)end;
      cells[c] = ((uint64_t)j << 53) | bound_mant(n, j);
    }
    g_cells[n] = cells;
    at += ncell;
  }
  assert(at == RC_ARRAY_SIZE(g_cell_mem));
  for (int n = RC_SKETCH_SCHEMA_MIN; n <= RC_SKETCH_SCHEMA_MAX; n++)
    g_mid[n - RC_SKETCH_SCHEMA_MIN] = 2.0 / (exp2(exp2(-n)) + 1.0);
}

static inline void tables_once(void) { pthread_once(&g_once, tables_init); }

static inline int32_t ceil_shift(int32_t x, int d) {
  return x >= 0 ? (int32_t)(((uint32_t)x + (1u << d) - 1) >> d) : -(int32_t)((uint32_t)-x >> d);
}

static inline int32_t floor_shift(int32_t x, int d) {
  return x >= 0 ? x >> d : -(int32_t)(((uint32_t)-x + (1u << d) - 1) >> d);
}

/* Index at schema s-d of index i at schema s (native histograms' targetIdx). */
static inline int32_t reduce_idx(int32_t i, int d) {
  return d == 0 ? i : floor_shift(i - 1, d) + 1;
}

/* a: the bits of a positive normal finite double. */
static inline int32_t index_normal(int schema, uint64_t a) {
  int32_t e = (int32_t)(a >> 52) - 1023;
  uint64_t m = a & MANT_MASK;
  if (schema > 0) {
    /* schema is 1..RC_SKETCH_SCHEMA_MAX here: every sketch's schema is checked when it is
     * made (rc_sketch_init) and only ever reduced. */
    // cppcheck-suppress arrayIndexOutOfBoundsCond
    uint64_t c = g_cells[schema][m >> (51 - schema)];
    return e * (1 << schema) + (int32_t)(c >> 53) + (m > (c & LOW53));
  }
  return ceil_shift(e + (m != 0), -schema);
}

static int32_t index_any(int schema, double v) {
  uint64_t a = dbits(v) & ~SIGN_BIT;
  if (a >= MIN_NORMAL) return index_normal(schema, a);
  /* Subnormal: scaling by 2^64 is exact and moves the index by exactly 64 * 2^schema. */
  a = dbits(bitsd(a) * 0x1p64);
  int32_t shift = schema >= 0 ? 64 * (1 << schema) : 64 >> -schema;
  return index_normal(schema, a) - shift;
}

static double upper_bound(int schema, int32_t idx) {
  if (schema <= 0) {
    int64_t e = (int64_t)idx * (1 << -schema);
    if (e == 1024) return DBL_MAX;
    if (e > 1100) return INFINITY;
    if (e < -1100) return 0;
    return ldexp(1.0, (int)e);
  }
  int32_t k = floor_shift(idx, schema), j = idx - k * (1 << schema);
  if (j == 0 && k == 1024) return DBL_MAX;
  return ldexp(g_bound[j << (8 - schema)], k);
}

/* Largest index whose whole bucket lies inside [0, zt]; INT32_MIN when none does. */
static int32_t zero_cut(int schema, double zt) {
  if (!(zt > 0)) return INT32_MIN;
  int32_t j = index_any(schema, zt);
  return upper_bound(schema, j) <= zt ? j : j - 1;
}

double rc_sketch_alpha(int schema) {
  if (schema < RC_SKETCH_SCHEMA_MIN || schema > RC_SKETCH_SCHEMA_MAX) return NAN;
  double g = exp2(exp2(-schema));
  return (g - 1) / (g + 1);
}

int rc_sketch_schema_for_alpha(double alpha, int *schema) {
  if (!(alpha > 0 && alpha < 1) || schema == NULL) return RC_EINVAL;
  for (int n = RC_SKETCH_SCHEMA_MIN; n <= RC_SKETCH_SCHEMA_MAX; n++) {
    if (rc_sketch_alpha(n) <= alpha) {
      *schema = n;
      return 0;
    }
  }
  return RC_ENOTSUP;
}

int32_t rc_sketch_index(int schema, double v) {
  if (schema < RC_SKETCH_SCHEMA_MIN || schema > RC_SKETCH_SCHEMA_MAX) return INT32_MIN;
  uint64_t a = dbits(v) & ~SIGN_BIT;
  if (a == 0 || a >= EXP_MASK) return INT32_MIN;
  tables_once();
  return index_any(schema, v);
}

double rc_sketch_upper_bound(int schema, int32_t idx) {
  if (schema < RC_SKETCH_SCHEMA_MIN || schema > RC_SKETCH_SCHEMA_MAX) return NAN;
  tables_once();
  return upper_bound(schema, idx);
}

/*------------------------------------------------------------------------------------------
 * Counter stores
 *----------------------------------------------------------------------------------------*/

static inline uint64_t cget(const store_t *st, uint32_t i) {
  const void *b = st->bins;
  switch (st->width) {
  case 0: return ((const uint8_t *)b)[i];
  case 1: return ((const uint16_t *)b)[i];
  case 2: return ((const uint32_t *)b)[i];
  default: return ((const uint64_t *)b)[i];
  }
}

/* v must fit the store's width (plans make sure it does). */
static inline void cset(store_t *st, uint32_t i, uint64_t v) {
  void *b = st->bins;
  switch (st->width) {
  case 0: ((uint8_t *)b)[i] = (uint8_t)v; break;
  case 1: ((uint16_t *)b)[i] = (uint16_t)v; break;
  case 2: ((uint32_t *)b)[i] = (uint32_t)v; break;
  default: ((uint64_t *)b)[i] = v; break;
  }
}

/* The add() hot path: 0 when the counter would overflow its width. */
static inline int bump(store_t *st, uint32_t i, uint64_t n) {
  void *b = st->bins;
  switch (st->width) {
  case 0: {
    uint8_t *p = (uint8_t *)b + i;
    if (n > (uint64_t)(UINT8_MAX - *p)) return 0;
    *p = (uint8_t)(*p + n);
    return 1;
  }
  case 1: {
    uint16_t *p = (uint16_t *)b + i;
    if (n > (uint64_t)(UINT16_MAX - *p)) return 0;
    *p = (uint16_t)(*p + n);
    return 1;
  }
  case 2: {
    uint32_t *p = (uint32_t *)b + i;
    if (n > (uint64_t)(UINT32_MAX - *p)) return 0;
    *p = (uint32_t)(*p + n);
    return 1;
  }
  default: ((uint64_t *)b)[i] += n; return 1; /* the total count bounds it */
  }
}

static inline uint64_t at_index(const store_t *st, int64_t idx) {
  int64_t k = idx - st->off;
  return (k >= 0 && k < st->len) ? cget(st, (uint32_t)k) : 0;
}

static inline uint8_t width_for(uint64_t c) {
  return c <= UINT8_MAX ? 0 : c <= UINT16_MAX ? 1 : c <= UINT32_MAX ? 2 : 3;
}

/* Sum of the counters at indexes <= idx. */
static uint64_t sum_upto(const store_t *st, int64_t idx) {
  uint64_t t = 0;
  for (uint32_t k = 0; k < st->len && st->off + (int64_t)k <= idx; k++) t += cget(st, k);
  return t;
}

/* Typed loops over runs of counters, so that merging and walking do not switch on the width
 * per counter: for a destination of type TD and a source of type TS (TD at least as wide),
 * the widest sum over an overlap and the in-place addition; per type, the largest counter of
 * a run and the next non-zero counter in either direction. */
#define PAIR_LOOPS(TD, TS, name)                                                           \
  static uint64_t name##_top(const void *d, const void *s, uint32_t n) {                  \
    const TD *dp = d;                                                                      \
    const TS *sp = s;                                                                      \
    uint64_t top = 0;                                                                      \
    for (uint32_t k = 0; k < n; k++) {                                                     \
      uint64_t t = (uint64_t)dp[k] + sp[k];                                                \
      top = t > top ? t : top;                                                             \
    }                                                                                      \
    return top;                                                                            \
  }                                                                                        \
  static void name##_add(void *d, const void *s, uint32_t n) {                             \
    TD *dp = d; /* NOLINT(bugprone-macro-parentheses): TD is a type name, not an expression */ \
    const TS *sp = s;                                                                      \
    for (uint32_t k = 0; k < n; k++) dp[k] = (TD)(dp[k] + sp[k]);                          \
  }
#define RUN_LOOPS(T, name)                                                                 \
  static uint64_t name##_max(const void *s, uint32_t n) {                                  \
    const T *sp = s;                                                                       \
    T top = 0;                                                                             \
    for (uint32_t k = 0; k < n; k++) top = sp[k] > top ? sp[k] : top;                      \
    return top;                                                                            \
  }                                                                                        \
  static int64_t name##_nonzero(const void *s, int64_t k, int64_t n, int step) {           \
    const T *sp = s;                                                                       \
    while (k >= 0 && k < n && sp[k] == 0) k += step;                                       \
    return k;                                                                              \
  }
PAIR_LOOPS(uint8_t, uint8_t, p88)
PAIR_LOOPS(uint16_t, uint8_t, p168)
PAIR_LOOPS(uint16_t, uint16_t, p1616)
PAIR_LOOPS(uint32_t, uint8_t, p328)
PAIR_LOOPS(uint32_t, uint16_t, p3216)
PAIR_LOOPS(uint32_t, uint32_t, p3232)
PAIR_LOOPS(uint64_t, uint8_t, p648)
PAIR_LOOPS(uint64_t, uint16_t, p6416)
PAIR_LOOPS(uint64_t, uint32_t, p6432)
PAIR_LOOPS(uint64_t, uint64_t, p6464)
RUN_LOOPS(uint8_t, r8)
RUN_LOOPS(uint16_t, r16)
RUN_LOOPS(uint32_t, r32)
RUN_LOOPS(uint64_t, r64)

/* Indexed [destination width][source width]; NULL where the source is wider. */
static uint64_t (*const pair_top[4][4])(const void *, const void *, uint32_t) = {
    {p88_top}, {p168_top, p1616_top}, {p328_top, p3216_top, p3232_top},
    {p648_top, p6416_top, p6432_top, p6464_top}};
static void (*const pair_add[4][4])(void *, const void *, uint32_t) = {
    {p88_add}, {p168_add, p1616_add}, {p328_add, p3216_add, p3232_add},
    {p648_add, p6416_add, p6432_add, p6464_add}};
static uint64_t (*const run_max[4])(const void *, uint32_t) = {r8_max, r16_max, r32_max, r64_max};
static int64_t (*const next_nonzero[4])(const void *, int64_t, int64_t, int) = {
    r8_nonzero, r16_nonzero, r32_nonzero, r64_nonzero};

/* Room for need counters plus a quarter, rounded to 8 bytes, within max_bins where possible. */
static uint16_t grow_cap(uint32_t need, uint32_t max_bins, uint8_t w) {
  uint32_t cap = need + need / 4 + 4;
  if (cap > max_bins) cap = max_bins;
  if (cap < need) cap = need;
  uint32_t bytes = ((cap << w) + 7) & ~7u;
  cap = bytes >> w;
  return (uint16_t)(cap > RC_SKETCH_MAX_BINS ? RC_SKETCH_MAX_BINS : cap);
}

/* What adding one store into another will do. Computed (and allocated) before anything is
 * changed, so that two stores can be planned and then both committed, or neither. */
typedef struct plan {
  int32_t lo, hi, floor;
  uint8_t width;
  uint8_t noop;   /* nothing to change */
  uint8_t empty;  /* both stores empty: only the floor may change */
  uint16_t cap;
  uint8_t *buf;   /* new counters (zeroed), or NULL to work in place */
} plan_t;

static int plan_add(const store_t *d, const store_t *s, uint32_t max_bins, plan_t *p) {
  memset(p, 0, sizeof(*p));
  int32_t floor = d->floor > s->floor ? d->floor : s->floor;
  if (s->len == 0 && floor == d->floor) {
    p->noop = 1;
    return 0;
  }
  p->floor = floor;
  int64_t lo = INT64_MAX, hi = INT64_MIN;
  if (d->len) lo = d->off, hi = d->off + (int64_t)d->len - 1;
  if (s->len) {
    if (s->off < lo) lo = s->off;
    if (s->off + (int64_t)s->len - 1 > hi) hi = s->off + (int64_t)s->len - 1;
  }
  if (lo > hi) {
    p->empty = 1;
    return 0;
  }
  if (floor != RC_SKETCH_NO_FLOOR && lo < floor) lo = floor;
  if (hi < lo) hi = lo;
  if (hi - lo + 1 > (int64_t)max_bins) { /* collapse the lowest buckets */
    floor = (int32_t)(hi - max_bins + 1);
    lo = floor;
  }
  int fold = floor != RC_SKETCH_NO_FLOOR &&
             ((d->len && d->off < lo) || (s->len && s->off < lo));
  /* The widest counter afterwards decides the width. */
  uint64_t top = fold ? sum_upto(d, lo) + sum_upto(s, lo) : 0;
  int64_t ov_lo = 0, ov_hi = -1; /* overlap of s and d above lo, done with a typed loop */
  if (pair_top[d->width][s->width] && d->len && s->len) {
    ov_lo = d->off > s->off ? d->off : s->off;
    if (fold && ov_lo <= lo) ov_lo = lo + 1;
    ov_hi = d->off + (int64_t)d->len - 1;
    if (s->off + (int64_t)s->len - 1 < ov_hi) ov_hi = s->off + (int64_t)s->len - 1;
    if (ov_lo <= ov_hi) {
      uint64_t t = pair_top[d->width][s->width](d->bins + ((size_t)(ov_lo - d->off) << d->width),
                                      s->bins + ((size_t)(ov_lo - s->off) << s->width),
                                      (uint32_t)(ov_hi - ov_lo + 1));
      if (t > top) top = t;
    }
  }
  for (uint32_t k = 0; k < s->len; k++) {
    int64_t i = s->off + (int64_t)k;
    if (i >= ov_lo && i <= ov_hi) {
      k = (uint32_t)(ov_hi - s->off); /* skip the overlap */
      continue;
    }
    if (!(fold && i <= lo) && (d->len == 0 || i > d->off + (int64_t)d->len - 1)) {
      /* From here on d holds nothing: the largest counter of s is the sum. */
      uint64_t t = run_max[s->width](s->bins + ((size_t)k << s->width), s->len - k);
      if (t > top) top = t;
      break;
    }
    uint64_t c = cget(s, k);
    if (c == 0 || (fold && i <= lo)) continue;
    uint64_t t = c + at_index(d, i);
    if (t > top) top = t;
  }
  uint8_t w = width_for(top);
  if (w < d->width) w = d->width;
  uint32_t need = (uint32_t)(hi - lo + 1);
  p->lo = (int32_t)lo;
  p->hi = (int32_t)hi;
  p->floor = floor;
  p->width = w;
  if (w != d->width || need > d->cap) {
    p->cap = grow_cap(need, max_bins, w);
    p->buf = calloc(p->cap, (size_t)1 << w);
    if (p->buf == NULL) return RC_ENOMEM;
  }
  return 0;
}

static void commit_add(store_t *d, const store_t *s, const plan_t *p) {
  if (p->noop) return;
  d->floor = p->floor;
  if (p->empty) return;
  uint32_t need = (uint32_t)(p->hi - p->lo + 1);
  if (p->buf) {
    store_t nd = {.bins = p->buf, .off = p->lo, .floor = p->floor, .len = (uint16_t)need,
                  .cap = p->cap, .width = p->width};
    for (uint32_t k = 0; k < d->len; k++) {
      uint64_t c = cget(d, k);
      int32_t i = d->off + (int32_t)k, j = i < p->lo ? p->lo : i;
      if (c) cset(&nd, (uint32_t)(j - p->lo), cget(&nd, (uint32_t)(j - p->lo)) + c);
    }
    free(d->bins);
    *d = nd;
  } else {
    size_t w = d->width;
    if (d->len && d->off < p->lo) { /* fold our own buckets below the new floor, in place */
      uint32_t cut = (uint32_t)(p->lo - d->off); /* counters below lo */
      uint64_t t = 0;
      for (uint32_t k = 0; k < d->len && k <= cut; k++) t += cget(d, k);
      if (cut >= d->len) {
        d->len = 1;
      } else {
        memmove(d->bins, d->bins + ((size_t)cut << w), (size_t)(d->len - cut) << w);
        d->len = (uint16_t)(d->len - cut);
      }
      d->off = p->lo;
      cset(d, 0, t);
    }
    if (d->len == 0) {
      memset(d->bins, 0, (size_t)need << w);
    } else {
      uint32_t shift = (uint32_t)(d->off - p->lo), end = shift + d->len;
      if (shift) {
        memmove(d->bins + ((size_t)shift << w), d->bins, (size_t)d->len << w);
        memset(d->bins, 0, (size_t)shift << w);
      }
      memset(d->bins + ((size_t)end << w), 0, (size_t)(need - end) << w);
    }
    d->off = p->lo;
    d->len = (uint16_t)need;
  }
  uint32_t k = 0;
  if (s->len && s->off < p->lo) { /* s's buckets below the floor go into it */
    uint64_t t = 0;
    for (; k < s->len && s->off + (int64_t)k <= p->lo; k++) t += cget(s, k);
    cset(d, 0, cget(d, 0) + t);
  }
  if (k >= s->len) return;
  uint32_t at = (uint32_t)(s->off + (int64_t)k - p->lo);
  if (pair_add[d->width][s->width]) { /* always, unless s has wider counters than d */
    pair_add[d->width][s->width](d->bins + ((size_t)at << d->width),
                                 s->bins + ((size_t)k << s->width), s->len - k);
    return;
  }
  for (; k < s->len; k++, at++) {
    uint64_t c = cget(s, k);
    if (c) cset(d, at, cget(d, at) + c);
  }
}

/* Adds n to bucket idx: range growth, widening and collapsing all go through plan/commit. */
static int store_add(store_t *st, int32_t idx, uint64_t n, uint32_t max_bins) {
  if (idx < st->floor) idx = st->floor; /* below a collapse: counted in the floor bucket */
  int64_t rel = (int64_t)idx - st->off;
  if (rel >= 0 && rel < st->len && bump(st, (uint32_t)rel, n)) return 0;
  uint64_t one = n;
  store_t src = {.bins = (uint8_t *)&one, .off = idx, .floor = RC_SKETCH_NO_FLOOR, .len = 1,
                 .cap = 1, .width = 3};
  plan_t p;
  int rc = plan_add(st, &src, max_bins, &p);
  if (rc == 0) commit_add(st, &src, &p);
  return rc;
}

/* Can s be taken out of d? Buckets of s at or below d's floor come out of the floor bucket. */
static int sub_check(const store_t *d, const store_t *s) {
  if (s->len == 0) return 0;
  if (s->floor > d->floor) return RC_EINVAL; /* s folded buckets that d still keeps apart */
  uint64_t below = 0;
  for (uint32_t k = 0; k < s->len; k++) {
    int64_t i = s->off + (int64_t)k;
    uint64_t c = cget(s, k);
    if (c == 0) continue;
    if (d->floor != RC_SKETCH_NO_FLOOR && i <= d->floor) {
      below += c;
    } else if (c > at_index(d, i)) {
      return RC_EINVAL;
    }
  }
  return below > at_index(d, d->floor) ? RC_EINVAL : 0;
}

/* Drops zero counters from both ends, keeping the first and last nonzero. */
static void trim(store_t *st) {
  uint32_t a = 0, b = st->len;
  while (a < b && cget(st, a) == 0) a++;
  while (b > a && cget(st, b - 1) == 0) b--;
  if (a == b) {
    st->len = 0;
    return;
  }
  if (a) memmove(st->bins, st->bins + ((size_t)a << st->width), (size_t)(b - a) << st->width);
  st->off += (int32_t)a;
  st->len = (uint16_t)(b - a);
}

static void sub_apply(store_t *d, const store_t *s) {
  for (uint32_t k = 0; k < s->len; k++) {
    uint64_t c = cget(s, k);
    int32_t i = s->off + (int32_t)k;
    if (c == 0) continue;
    if (d->floor != RC_SKETCH_NO_FLOOR && i < d->floor) i = d->floor;
    uint32_t r = (uint32_t)(i - d->off);
    cset(d, r, cget(d, r) - c);
  }
  trim(d);
}

static int store_copy(store_t *dst, const store_t *src) {
  *dst = *src;
  dst->bins = NULL;
  dst->cap = 0;
  if (src->len == 0) return 0;
  dst->bins = malloc((size_t)src->len << src->width);
  if (dst->bins == NULL) return RC_ENOMEM;
  memcpy(dst->bins, src->bins, (size_t)src->len << src->width);
  dst->cap = src->len;
  return 0;
}

static int store_equal(const store_t *a, const store_t *b) {
  if (a->floor != b->floor || a->len != b->len) return 0;
  if (a->len && a->off != b->off) return 0;
  for (uint32_t k = 0; k < a->len; k++)
    if (cget(a, k) != cget(b, k)) return 0;
  return 1;
}

/*------------------------------------------------------------------------------------------
 * Lifetime
 *----------------------------------------------------------------------------------------*/

static void reset_data(rc_sketch_t *s) {
  s->pos.len = s->neg.len = 0;
  s->pos.off = s->neg.off = 0;
  s->pos.floor = s->neg.floor = RC_SKETCH_NO_FLOOR;
  s->count = s->zero_count = s->pinf = s->ninf = 0;
  s->sum = 0;
  s->min = INFINITY;
  s->max = -INFINITY;
  s->flags = 0;
}

int rc_sketch_init(rc_sketch_t *s, const rc_sketch_opts_t *opts) {
  rc_sketch_opts_t o = opts ? *opts : RC_SKETCH_OPTS_DEFAULT;
  if (s == NULL || o.schema < RC_SKETCH_SCHEMA_MIN || o.schema > RC_SKETCH_SCHEMA_MAX ||
      !(o.zero_threshold >= 0) || isinf(o.zero_threshold) || o.max_bins < 1 ||
      o.max_bins > RC_SKETCH_MAX_BINS)
    return RC_EINVAL;
  tables_once();
  memset(s, 0, sizeof(*s));
  reset_data(s);
  s->schema = (int8_t)o.schema;
  s->zero_threshold = fabs(o.zero_threshold); /* -0.0 would defeat add()'s bit compare */
  s->max_bins = (uint16_t)o.max_bins;
  return 0;
}

void rc_sketch_close(rc_sketch_t *s) {
  if (s == NULL) return;
  free(s->pos.bins);
  free(s->neg.bins);
  s->pos.bins = s->neg.bins = NULL;
  s->pos.cap = s->neg.cap = 0;
  reset_data(s);
}

rc_sketch_t *rc_sketch_new(const rc_sketch_opts_t *opts) {
  rc_sketch_t *s = malloc(sizeof(*s));
  if (s == NULL) return NULL;
  if (rc_sketch_init(s, opts) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

void rc_sketch_free(rc_sketch_t *s) {
  if (s == NULL) return;
  rc_sketch_close(s);
  free(s);
}

int rc_sketch_copy(rc_sketch_t *dst, const rc_sketch_t *src) {
  rc_sketch_t c = *src;
  if (store_copy(&c.pos, &src->pos) != 0) return RC_ENOMEM;
  if (store_copy(&c.neg, &src->neg) != 0) {
    free(c.pos.bins);
    return RC_ENOMEM;
  }
  *dst = c;
  return 0;
}

void rc_sketch_clear(rc_sketch_t *s) {
  reset_data(s);
  s->nan_count = 0;
}

int rc_sketch_shrink(rc_sketch_t *s) {
  store_t *st[2] = {&s->pos, &s->neg};
  uint8_t *nb[2] = {NULL, NULL};
  uint8_t nw[2];
  for (int i = 0; i < 2; i++) {
    uint64_t top = 0;
    for (uint32_t k = 0; k < st[i]->len; k++)
      if (cget(st[i], k) > top) top = cget(st[i], k);
    nw[i] = width_for(top);
    if (st[i]->len == 0 || (nw[i] == st[i]->width && st[i]->cap == st[i]->len)) continue;
    nb[i] = malloc((size_t)st[i]->len << nw[i]);
    if (nb[i] == NULL) {
      free(nb[0]);
      return RC_ENOMEM;
    }
  }
  for (int i = 0; i < 2; i++) {
    if (st[i]->len == 0) { /* nothing held: give the buffer back */
      free(st[i]->bins);
      st[i]->bins = NULL;
      st[i]->cap = 0;
      continue;
    }
    if (nb[i] == NULL) continue;
    store_t n = *st[i];
    n.bins = nb[i];
    n.width = nw[i];
    n.cap = n.len;
    for (uint32_t k = 0; k < n.len; k++) cset(&n, k, cget(st[i], k));
    free(st[i]->bins);
    *st[i] = n;
  }
  return 0;
}

size_t rc_sketch_footprint(const rc_sketch_t *s) {
  return sizeof(*s) + ((size_t)s->pos.cap << s->pos.width) + ((size_t)s->neg.cap << s->neg.width);
}

/*------------------------------------------------------------------------------------------
 * Alignment: bringing two sketches to one schema and zero threshold
 *----------------------------------------------------------------------------------------*/

/* Does x hold anything in bucket j of schema t (t <= x's schema)? */
static int populated_at(const rc_sketch_t *x, int t, int32_t j) {
  int d = x->schema - t;
  int64_t a = ((int64_t)j - 1) * (1 << d) + 1, b = (int64_t)j * (1 << d);
  const store_t *st[2] = {&x->pos, &x->neg};
  for (int i = 0; i < 2; i++)
    for (int64_t k = a; k <= b; k++)
      if (at_index(st[i], k)) return 1;
  return 0;
}

/* The larger threshold, moved up to its bucket's upper bound if it would cut a populated
 * bucket of either sketch (the native-histogram rule for merging zero buckets). */
static double common_zero_threshold(const rc_sketch_t *a, const rc_sketch_t *b, int t) {
  double zt = a->zero_threshold > b->zero_threshold ? a->zero_threshold : b->zero_threshold;
  if (!(zt > 0)) return zt;
  int32_t j = index_any(t, zt);
  if (upper_bound(t, j) != zt && (populated_at(a, t, j) || populated_at(b, t, j)))
    zt = upper_bound(t, j);
  return zt;
}

/* out = in at schema t (<= in's) and zero threshold zt (>= in's). out is initialised here. */
static int transform(rc_sketch_t *out, const rc_sketch_t *in, int t, double zt) {
  rc_sketch_opts_t o = {.schema = t, .zero_threshold = zt, .max_bins = in->max_bins};
  int rc = rc_sketch_init(out, &o);
  if (rc != 0) return rc;
  out->count = in->count;
  out->zero_count = in->zero_count;
  out->pinf = in->pinf;
  out->ninf = in->ninf;
  out->sum = in->sum;
  out->min = in->min;
  out->max = in->max;
  out->nan_count = in->nan_count;
  out->flags = in->flags;
  int d = in->schema - t;
  int32_t cut = zero_cut(t, zt);
  for (int side = 0; side < 2; side++) {
    const store_t *is = side ? &in->neg : &in->pos;
    store_t *os = side ? &out->neg : &out->pos;
    if (is->floor != RC_SKETCH_NO_FLOOR) {
      int32_t f = reduce_idx(is->floor, d);
      os->floor = f <= cut ? RC_SKETCH_NO_FLOOR : f;
    }
    uint64_t run = 0;
    int32_t rj = 0;
    for (uint32_t k = 0; k < is->len; k++) {
      uint64_t c = cget(is, k);
      if (c == 0) continue;
      int32_t j = reduce_idx(is->off + (int32_t)k, d);
      if (j <= cut) {
        out->zero_count += c;
        continue;
      }
      if (run && j != rj) {
        if ((rc = store_add(os, rj, run, out->max_bins)) != 0) goto fail;
        run = 0;
      }
      rj = j;
      run += c;
    }
    if (run && (rc = store_add(os, rj, run, out->max_bins)) != 0) goto fail;
  }
  return 0;
fail:
  rc_sketch_close(out);
  return rc;
}

static inline uint32_t sat_add32(uint32_t a, uint64_t b) {
  return b >= UINT32_MAX - a ? UINT32_MAX : (uint32_t)(a + b);
}

/* dst += src, same schema and zero threshold. All or nothing. */
static int merge_same(rc_sketch_t *d, const rc_sketch_t *s) {
  plan_t pp, pn;
  int rc = plan_add(&d->pos, &s->pos, d->max_bins, &pp);
  if (rc != 0) return rc;
  if ((rc = plan_add(&d->neg, &s->neg, d->max_bins, &pn)) != 0) {
    free(pp.buf);
    return rc;
  }
  commit_add(&d->pos, &s->pos, &pp);
  commit_add(&d->neg, &s->neg, &pn);
  d->count += s->count;
  d->zero_count += s->zero_count;
  d->pinf += s->pinf;
  d->ninf += s->ninf;
  d->nan_count = sat_add32(d->nan_count, s->nan_count);
  d->sum += s->sum;
  if (s->min < d->min) d->min = s->min;
  if (s->max > d->max) d->max = s->max;
  d->flags |= s->flags;
  return 0;
}

/* dst -= src, same schema and zero threshold. All or nothing. */
static int subtract_same(rc_sketch_t *d, const rc_sketch_t *s) {
  if (s->count > d->count || s->zero_count > d->zero_count || s->pinf > d->pinf ||
      s->ninf > d->ninf || sub_check(&d->pos, &s->pos) || sub_check(&d->neg, &s->neg))
    return RC_EINVAL;
  sub_apply(&d->pos, &s->pos);
  sub_apply(&d->neg, &s->neg);
  d->count -= s->count;
  d->zero_count -= s->zero_count;
  d->pinf -= s->pinf;
  d->ninf -= s->ninf;
  d->nan_count = d->nan_count > s->nan_count ? d->nan_count - s->nan_count : 0;
  d->sum -= s->sum;
  d->flags |= F_LOOSE_MINMAX;
  if (d->count == 0) reset_data(d);
  return 0;
}

/* Aligns dst and src, then applies op. dst is replaced only when op succeeded. */
static int combine(rc_sketch_t *dst, const rc_sketch_t *src,
                   int (*op)(rc_sketch_t *, const rc_sketch_t *)) {
  if (dst == src) { /* an operand that changes under the operation: use a copy */
    rc_sketch_t tmp;
    int rc = rc_sketch_copy(&tmp, src);
    if (rc == 0) rc = combine(dst, &tmp, op);
    rc_sketch_close(&tmp);
    return rc;
  }
  int t = dst->schema < src->schema ? dst->schema : src->schema;
  double zt = common_zero_threshold(dst, src, t);
  rc_sketch_t s2, d2;
  const rc_sketch_t *sp = src;
  rc_sketch_t *dp = dst;
  int rc = 0;
  if (src->schema != t || src->zero_threshold != zt) {
    if ((rc = transform(&s2, src, t, zt)) != 0) return rc;
    sp = &s2;
  }
  if (dst->schema != t || dst->zero_threshold != zt) {
    if ((rc = transform(&d2, dst, t, zt)) != 0) goto out;
    dp = &d2;
  }
  rc = op(dp, sp);
  if (dp == &d2) {
    if (rc == 0) {
      rc_sketch_close(dst);
      *dst = d2;
    } else {
      rc_sketch_close(&d2);
    }
  }
out:
  if (sp == &s2) rc_sketch_close(&s2);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Updates
 *----------------------------------------------------------------------------------------*/

static int add_special(rc_sketch_t *s, double v, uint64_t n) {
  if (isnan(v)) {
    s->nan_count = sat_add32(s->nan_count, n ? n : 1);
    return RC_EINVAL;
  }
  if (n == 0) return 0;
  if (n > UINT64_MAX - s->count) return RC_ELIMIT;
  if (isinf(v)) {
    if (v > 0)
      s->pinf += n;
    else
      s->ninf += n;
  } else if (fabs(v) <= s->zero_threshold) {
    s->zero_count += n;
  } else { /* a subnormal above a tiny zero threshold */
    store_t *st = signbit(v) ? &s->neg : &s->pos;
    int rc = store_add(st, index_any(s->schema, v), n, s->max_bins);
    if (rc != 0) return rc;
  }
  s->count += n;
  s->sum += v * (double)n;
  if (v < s->min) s->min = v;
  if (v > s->max) s->max = v;
  return 0;
}

int rc_sketch_add(rc_sketch_t *s, double v, uint64_t n) {
  uint64_t bits = dbits(v), a = bits & ~SIGN_BIT;
  /* One test each for: above the zero threshold, normal and finite, n >= 1 and no overflow. */
  if (RC_LIKELY(a > dbits(s->zero_threshold) && a - MIN_NORMAL < EXP_MASK - MIN_NORMAL &&
                n - 1 < UINT64_MAX - s->count)) {
    store_t *st = (bits & SIGN_BIT) ? &s->neg : &s->pos;
    int32_t idx = index_normal(s->schema, a);
    uint32_t rel = (uint32_t)(idx - st->off);
    if (RC_UNLIKELY(rel >= st->len || !bump(st, rel, n))) {
      int rc = store_add(st, idx, n, s->max_bins);
      if (rc != 0) return rc;
    }
    s->count += n;
    s->sum += v * (double)n;
    if (v < s->min) s->min = v;
    if (v > s->max) s->max = v;
    return 0;
  }
  return add_special(s, v, n);
}

int rc_sketch_merge(rc_sketch_t *dst, const rc_sketch_t *src) {
  if (dst == NULL || src == NULL) return RC_EINVAL;
  if (src->count > UINT64_MAX - dst->count) return RC_ELIMIT;
  return combine(dst, src, merge_same);
}

int rc_sketch_subtract(rc_sketch_t *dst, const rc_sketch_t *src) {
  if (dst == NULL || src == NULL) return RC_EINVAL;
  if (src->count > dst->count) return RC_EINVAL;
  return combine(dst, src, subtract_same);
}

/* A histogram bucket count as a whole number of observations. */
static int whole_count(double c, uint64_t *out) {
  if (!(c >= 0)) return RC_EINVAL;
  if (c >= 0x1p64) return RC_ELIMIT;
  if (c != floor(c)) return RC_ENOTSUP;
  *out = (uint64_t)c;
  return 0;
}

/* Decodes one side's spans into t (schema t->schema <= h->schema), adding to *total. */
static int hist_side(rc_sketch_t *t, const rc_histogram_t *h, int neg, uint64_t *total) {
  const rc_span_t *sp = neg ? h->neg_spans : h->pos_spans;
  uint32_t nsp = neg ? h->n_neg_spans : h->n_pos_spans, nb = neg ? h->n_neg : h->n_pos;
  store_t *st = neg ? &t->neg : &t->pos;
  uint64_t *inf = neg ? &t->ninf : &t->pinf;
  int d = h->schema - t->schema, rc;
  int64_t top = (int64_t)1 << (10 + h->schema); /* the bucket holding DBL_MAX */
  int64_t bottom = index_any(h->schema, 0x1p-1074);
  int32_t cut = zero_cut(t->schema, t->zero_threshold);
  int64_t idx = 0, cur = 0;
  uint64_t run = 0;
  int32_t rj = 0;
  uint32_t k = 0;
  const void *arr = h->is_float ? (const void *)(neg ? h->neg_counts : h->pos_counts)
                                 : (const void *)(neg ? h->neg_deltas : h->pos_deltas);
  if ((nsp && sp == NULL) || (nb && arr == NULL)) return RC_EINVAL;
  for (uint32_t si = 0; si < nsp; si++) {
    if (si > 0 && sp[si].offset < 0) return RC_EINVAL;
    idx += sp[si].offset;
    for (uint32_t l = 0; l < sp[si].length; l++, idx++) {
      if (k >= nb) return RC_EINVAL;
      uint64_t c;
      if (h->is_float) {
        if ((rc = whole_count(neg ? h->neg_counts[k] : h->pos_counts[k], &c)) != 0) return rc;
      } else {
        if (__builtin_add_overflow(cur, neg ? h->neg_deltas[k] : h->pos_deltas[k], &cur) ||
            cur < 0)
          return RC_EINVAL;
        c = (uint64_t)cur;
      }
      k++;
      if (c == 0) continue;
      if (idx < bottom || idx > top + 1) return RC_EINVAL;
      if (__builtin_add_overflow(*total, c, total)) return RC_ELIMIT;
      if (idx == top + 1) { /* the ±Inf overflow bucket */
        *inf += c;
        continue;
      }
      int32_t j = reduce_idx((int32_t)idx, d);
      if (j <= cut) { /* entirely inside the zero bucket (threshold not on a boundary) */
        t->zero_count += c;
        continue;
      }
      if (run && j != rj) {
        if ((rc = store_add(st, rj, run, t->max_bins)) != 0) return rc;
        run = 0;
      }
      rj = j;
      run += c;
    }
  }
  if (k != nb) return RC_EINVAL;
  return run ? store_add(st, rj, run, t->max_bins) : 0;
}

/* Outer bounds of a sketch's values, from its buckets (a histogram carries no min/max). */
static void minmax_from_buckets(rc_sketch_t *t) {
  double lo = INFINITY, hi = -INFINITY, zt = t->zero_threshold;
  int n = t->schema;
  if (t->pos.len) {
    lo = upper_bound(n, t->pos.off - 1);
    hi = upper_bound(n, t->pos.off + t->pos.len - 1);
  }
  if (t->zero_count) {
    lo = -zt;
    if (hi < zt) hi = zt;
  }
  if (t->neg.len) {
    lo = -upper_bound(n, t->neg.off + t->neg.len - 1);
    if (hi < -upper_bound(n, t->neg.off - 1)) hi = -upper_bound(n, t->neg.off - 1);
  }
  if (t->ninf) lo = -INFINITY;
  if (t->pinf) hi = INFINITY;
  t->min = lo;
  t->max = hi;
}

int rc_sketch_add_histogram(rc_sketch_t *s, const rc_histogram_t *h, int sign) {
  if (s == NULL || h == NULL || (sign != 1 && sign != -1) || h->is_stale) return RC_EINVAL;
  if (h->schema == -53) return RC_ENOTSUP;
  if (h->schema < RC_SKETCH_SCHEMA_MIN || h->schema > RC_SKETCH_SCHEMA_MAX ||
      !(h->zero_threshold >= 0) || isinf(h->zero_threshold))
    return RC_EINVAL;
  uint64_t zc, total;
  int rc = whole_count(h->zero_count, &zc);
  if (rc != 0) return rc;
  rc_sketch_t t;
  rc_sketch_opts_t o = {.schema = h->schema < s->schema ? h->schema : s->schema,
                        .zero_threshold = h->zero_threshold,
                        .max_bins = s->max_bins};
  if ((rc = rc_sketch_init(&t, &o)) != 0) return rc;
  t.zero_count = total = zc;
  if ((rc = hist_side(&t, h, 0, &total)) == 0 && (rc = hist_side(&t, h, 1, &total)) == 0) {
    t.count = total;
    t.sum = h->sum;
    /* Observations the buckets do not hold were NaN (client_golang counts them). */
    double nan_obs = h->count - (double)total;
    if (nan_obs >= 1) t.nan_count = nan_obs >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)nan_obs;
    minmax_from_buckets(&t);
    t.flags = F_LOOSE_MINMAX;
    rc = sign > 0 ? rc_sketch_merge(s, &t) : rc_sketch_subtract(s, &t);
  }
  rc_sketch_close(&t);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Queries
 *----------------------------------------------------------------------------------------*/

enum { K_NINF, K_NEG, K_ZERO, K_POS, K_PINF };

/* Non-empty buckets in value order (dir +1) or reverse (dir -1). */
typedef struct walk {
  const rc_sketch_t *s;
  int dir, stage, started;
  int64_t k;
} walk_t;

typedef struct vbucket {
  int kind;
  int32_t idx;
  uint64_t count;
} vbucket_t;

static void walk_init(walk_t *w, const rc_sketch_t *s, int dir) {
  w->s = s;
  w->dir = dir;
  w->stage = dir > 0 ? K_NINF : K_PINF;
  w->started = 0;
  w->k = 0;
}

static int walk_next(walk_t *w, vbucket_t *b) {
  const rc_sketch_t *s = w->s;
  while (w->stage >= K_NINF && w->stage <= K_PINF) {
    int st = w->stage;
    if (st == K_NINF || st == K_ZERO || st == K_PINF) {
      uint64_t c = st == K_NINF ? s->ninf : st == K_ZERO ? s->zero_count : s->pinf;
      w->stage += w->dir;
      if (c) {
        b->kind = st;
        b->idx = INT32_MAX;
        b->count = c;
        return 1;
      }
      continue;
    }
    const store_t *x = st == K_NEG ? &s->neg : &s->pos;
    int up = (st == K_POS) == (w->dir > 0); /* negative values ascend as |x| descends */
    if (!w->started) {
      w->started = 1;
      w->k = up ? 0 : (int64_t)x->len - 1;
    }
    w->k = next_nonzero[x->width](x->bins, w->k, x->len, up ? 1 : -1);
    if (w->k >= 0 && w->k < x->len) {
      uint32_t k = (uint32_t)w->k;
      w->k += up ? 1 : -1;
      b->kind = st;
      b->idx = x->off + (int32_t)k;
      b->count = cget(x, k);
      return 1;
    }
    w->stage += w->dir;
    w->started = 0;
  }
  return 0;
}

/* DDSketch representative value of a bucket. */
static double rep_value(const rc_sketch_t *s, const vbucket_t *b) {
  double mid = g_mid[s->schema - RC_SKETCH_SCHEMA_MIN];
  switch (b->kind) {
  case K_NINF: return -INFINITY;
  case K_NEG: return -upper_bound(s->schema, b->idx) * mid;
  case K_ZERO: return 0;
  case K_POS: return upper_bound(s->schema, b->idx) * mid;
  default: return INFINITY;
  }
}

/* Estimate of the order statistic of 0-based rank k; *end is the rank just past its bucket.
 * Walks from whichever end is nearer. */
static double value_at(const rc_sketch_t *s, uint64_t k, uint64_t *end) {
  walk_t w;
  vbucket_t b = {K_ZERO, 0, 0};
  uint64_t cum = 0;
  if (k < s->count / 2) {
    walk_init(&w, s, +1);
    while (walk_next(&w, &b) && (cum += b.count) <= k) {}
    *end = cum;
  } else {
    uint64_t r = s->count - 1 - k; /* rank from the top */
    walk_init(&w, s, -1);
    while (walk_next(&w, &b) && (cum += b.count) <= r) {}
    *end = s->count - (cum - b.count);
  }
  return rep_value(s, &b);
}

int rc_sketch_quantile(const rc_sketch_t *s, double q, double *out) {
  *out = NAN;
  if (!(q >= 0 && q <= 1)) return RC_EINVAL;
  if (s->count == 0) return RC_ENOENT;
  double rank = q * (double)(s->count - 1);
  uint64_t k = rank >= (double)(s->count - 1) ? s->count - 1 : (uint64_t)rank, end;
  double f = rank - (double)k;
  double v = value_at(s, k, &end);
  if (f > 0 && k + 1 < s->count && k + 1 >= end) {
    double hi = value_at(s, k + 1, &end);
    if (hi != v) v = v * (1 - f) + hi * f; /* quantile_over_time's weighting */
  }
  if (v < s->min) v = s->min;
  if (v > s->max) v = s->max;
  *out = v;
  return 0;
}

int rc_sketch_quantile_prom(const rc_sketch_t *s, double q, double *out) {
  if (q < 0) {
    *out = -INFINITY;
    return 0;
  }
  if (q > 1) {
    *out = INFINITY;
    return 0;
  }
  if (s->count == 0 || isnan(q)) {
    *out = NAN;
    return 0;
  }
  double count = (double)s->count, cum = 0, zt = s->zero_threshold;
  int asc = isnan(s->sum) || q < 0.5;
  double rank = asc ? q * count : (1 - q) * count;
  walk_t w;
  vbucket_t b = {K_ZERO, 0, 0};
  walk_init(&w, s, asc ? +1 : -1);
  while (walk_next(&w, &b)) {
    cum += (double)b.count;
    if (cum >= rank) break;
  }
  double lower, upper, bc = (double)b.count;
  int n = s->schema;
  switch (b.kind) {
  case K_NINF:
    lower = -INFINITY;
    upper = -DBL_MAX;
    break;
  case K_NEG:
    lower = -upper_bound(n, b.idx);
    upper = -upper_bound(n, b.idx - 1);
    if (upper < 0 && upper > -zt) upper = -zt;
    break;
  case K_ZERO:
    lower = -zt;
    upper = zt;
    break;
  case K_POS:
    lower = upper_bound(n, b.idx - 1);
    upper = upper_bound(n, b.idx);
    if (lower > 0 && lower < zt) lower = zt;
    break;
  default:
    lower = DBL_MAX;
    upper = INFINITY;
    break;
  }
  if (lower < 0 && upper > 0) { /* the zero bucket, bounded by 0 on a side with no buckets */
    int has_neg = s->neg.len || s->ninf, has_pos = s->pos.len || s->pinf;
    if (!has_neg && has_pos)
      lower = 0;
    else if (!has_pos && has_neg)
      upper = 0;
  }
  if (cum > count) cum = count;
  if (cum < rank) {
    *out = upper;
    return 0;
  }
  double f = (asc ? rank - (cum - bc) : cum - rank) / bc;
  if (lower <= 0 && upper >= 0) {
    *out = lower + (upper - lower) * f;
    return 0;
  }
  double ll = log2(fabs(lower)), lu = log2(fabs(upper));
  *out = lower > 0 ? exp2(ll + (lu - ll) * f) : -exp2(lu + (ll - lu) * (1 - f));
  return 0;
}

uint64_t rc_sketch_count(const rc_sketch_t *s) { return s->count; }

int rc_sketch_schema(const rc_sketch_t *s) { return s->schema; }

void rc_sketch_stats(const rc_sketch_t *s, rc_sketch_stats_t *o) {
  o->count = s->count;
  o->zero_count = s->zero_count;
  o->pinf = s->pinf;
  o->ninf = s->ninf;
  o->nan_count = s->nan_count;
  o->schema = s->schema;
  o->alpha = rc_sketch_alpha(s->schema);
  o->zero_threshold = s->zero_threshold;
  o->sum = s->sum;
  o->min = s->count ? s->min : NAN;
  o->max = s->count ? s->max : NAN;
  o->minmax_exact = !(s->flags & F_LOOSE_MINMAX);
  o->pos_floor = s->pos.floor;
  o->neg_floor = s->neg.floor;
}

uint64_t rc_sketch_bucket(const rc_sketch_t *s, int sign, int32_t idx) {
  if (sign == 0) return s->zero_count;
  return at_index(sign > 0 ? &s->pos : &s->neg, idx);
}

void rc_sketch_foreach(const rc_sketch_t *s, rc_sketch_bucket_cb cb, void *arg) {
  walk_t w;
  vbucket_t b;
  walk_init(&w, s, +1);
  while (walk_next(&w, &b)) {
    int sign = b.kind == K_ZERO ? 0 : b.kind < K_ZERO ? -1 : 1;
    cb(sign, b.kind == K_ZERO ? 0 : b.idx, b.count, arg);
  }
}

int rc_sketch_equal(const rc_sketch_t *a, const rc_sketch_t *b) {
  return a->schema == b->schema && a->zero_threshold == b->zero_threshold &&
         a->count == b->count && a->zero_count == b->zero_count && a->pinf == b->pinf &&
         a->ninf == b->ninf && store_equal(&a->pos, &b->pos) && store_equal(&a->neg, &b->neg);
}
