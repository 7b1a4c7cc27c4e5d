/* test_window.c: src/window.c against the reference PromQL implementation in promql_ref.c.
 *
 * The window must give the SAME answer as Prometheus, so the main test is differential:
 * deterministic pseudo-random series (counters with resets, gauges, NaN and ±Inf, constants,
 * staleness markers, whole numbers near and beyond 2^53, -0.0, denormals, values alternating
 * between whole and fractional; 1 s, 15 s, jittered, irregular and gappy spacing) are fed
 * both to rc_window_t (default chunks, and tiny chunks so that every query crosses many
 * chunk edges) and to a plain array, and every function is evaluated at many times and
 * ranges in both compat modes. Return codes must match and results must be bit-identical,
 * with two documented exceptions (see same_result()). Then: late data, duplicates, too-old
 * samples, retention, foreach/count, memory per series, and self-checks of the reference
 * against hand-computed values (Prometheus docs' worked example, quantiles).
 *
 * Mismatches are not stopped at the first one: each test prints up to MAX_REPORTS of them
 * with everything needed to reproduce (series, function, t, range, compat, the samples in
 * the window) and fails at the end with the totals.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "promql_ref.h"
#include "rc.h"
#include "window.h"

#define MAX_REPORTS 30
#define T0 INT64_C(1700000000000) /* 2023-11-14, a realistic epoch-ms base */
#define MIN_MS INT64_C(60000)

/*----- deterministic PRNG (splitmix64) ---------------------------------------------------*/

typedef struct {
  uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r) {
  uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static double rng_unit(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static int64_t rng_range(rng_t *r, int64_t lo, int64_t hi) { /* inclusive */
  return lo + (int64_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static double rng_normal(rng_t *r) {
  double u = rng_unit(r), w = rng_unit(r);
  if (u < 1e-300) u = 1e-300;
  return sqrt(-2 * log(u)) * cos(2 * M_PI * w);
}

/*----- bit helpers ------------------------------------------------------------------------*/

static uint64_t bits_of(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

static double from_bits(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

#define STALE from_bits(REF_STALE_NAN_BITS)
#define NAN_ORD from_bits(UINT64_C(0x7ff8000000000001)) /* Go's math.NaN() */

/*----- series --------------------------------------------------------------------------*/

typedef struct {
  int64_t *ts;
  double *v;
  size_t n, cap;
} series_t;

static void series_push(series_t *s, int64_t t, double v) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 256;
    s->ts = realloc(s->ts, s->cap * sizeof *s->ts);
    s->v = realloc(s->v, s->cap * sizeof *s->v);
    assert_non_null(s->ts);
    assert_non_null(s->v);
  }
  s->ts[s->n] = t;
  s->v[s->n] = v;
  s->n++;
}

static void series_free(series_t *s) {
  free(s->ts);
  free(s->v);
  memset(s, 0, sizeof *s);
}

typedef enum { IV_1S, IV_15S, IV_JITTER, IV_IRREG, IV_GAPS } interval_t;
typedef enum {
  VK_COUNTER,      /* whole increments 0..50/s, resets to 0 and to a smaller value */
  VK_COUNTER_FRAC, /* fractional increments and resets */
  VK_COUNTER_BIG,  /* a counter crossing 2^53 */
  VK_GAUGE,        /* random walk through negative values */
  VK_GAUGE_2DEC,   /* the same, rounded to 2 decimals */
  VK_SPECIAL,      /* gauge with NaN (two payloads), +Inf and -Inf */
  VK_CONST,        /* one value throughout */
  VK_BIGINT,       /* whole numbers near and beyond 2^53, 2^63, 2^64, 1e300, both signs */
  VK_ALT,          /* alternating whole / fractional */
  VK_ZEROS,        /* -0.0, +0.0, denormals, tiny values */
  VK_LATENCY,      /* lognormal doubles */
} vkind_t;

typedef struct {
  const char *name;
  vkind_t kind;
  interval_t iv;
  int64_t span_ms;
  int stale; /* insert staleness markers */
  uint64_t seed;
  int64_t base; /* first timestamp; 0 means T0 */
} spec_t;

static const spec_t g_specs[] = {
    {"counter/15s", VK_COUNTER, IV_15S, 70 * MIN_MS, 0, 1, 0},
    {"counter/1s", VK_COUNTER, IV_1S, 20 * MIN_MS, 0, 2, 0},
    {"counter/jitter+stale", VK_COUNTER, IV_JITTER, 70 * MIN_MS, 1, 3, 0},
    {"counter/gaps+stale", VK_COUNTER, IV_GAPS, 70 * MIN_MS, 1, 4, 0},
    {"counter-frac/irregular", VK_COUNTER_FRAC, IV_IRREG, 70 * MIN_MS, 0, 5, 0},
    {"counter-frac/15s+stale", VK_COUNTER_FRAC, IV_15S, 70 * MIN_MS, 1, 6, 0},
    {"counter-2^53/15s", VK_COUNTER_BIG, IV_15S, 70 * MIN_MS, 0, 7, 0},
    {"gauge/1s", VK_GAUGE, IV_1S, 15 * MIN_MS, 0, 8, 0},
    {"gauge/jitter+stale", VK_GAUGE, IV_JITTER, 70 * MIN_MS, 1, 9, 0},
    {"gauge/irregular", VK_GAUGE, IV_IRREG, 70 * MIN_MS, 0, 10, 0},
    {"gauge-2dec/15s", VK_GAUGE_2DEC, IV_15S, 70 * MIN_MS, 0, 11, 0},
    {"special/15s+stale", VK_SPECIAL, IV_15S, 70 * MIN_MS, 1, 12, 0},
    {"special/irregular", VK_SPECIAL, IV_IRREG, 70 * MIN_MS, 0, 13, 0},
    {"const/15s", VK_CONST, IV_15S, 70 * MIN_MS, 0, 14, 0},
    {"const/gaps+stale", VK_CONST, IV_GAPS, 70 * MIN_MS, 1, 15, 0},
    {"bigint/15s", VK_BIGINT, IV_15S, 70 * MIN_MS, 0, 16, 0},
    {"bigint/irregular+stale", VK_BIGINT, IV_IRREG, 70 * MIN_MS, 1, 17, 0},
    {"alternating/1s", VK_ALT, IV_1S, 15 * MIN_MS, 0, 18, 0},
    {"alternating/jitter", VK_ALT, IV_JITTER, 70 * MIN_MS, 0, 19, 0},
    {"zeros-denormals/15s", VK_ZEROS, IV_15S, 70 * MIN_MS, 0, 20, 0},
    {"zeros-denormals/irregular+stale", VK_ZEROS, IV_IRREG, 70 * MIN_MS, 1, 21, 0},
    {"latency/15s", VK_LATENCY, IV_15S, 70 * MIN_MS, 0, 22, 0},
    {"latency/gaps+stale", VK_LATENCY, IV_GAPS, 70 * MIN_MS, 1, 23, 0},
    /* Prometheus allows timestamps before 1970: the series crosses ts = 0. */
    {"gauge/negative-ts", VK_GAUGE, IV_JITTER, 30 * MIN_MS, 0, 24, -15 * MIN_MS},
    {"counter/negative-ts+stale", VK_COUNTER, IV_IRREG, 30 * MIN_MS, 1, 25, -20 * MIN_MS - 1},
};

static int64_t next_step(rng_t *r, interval_t iv) {
  switch (iv) {
  case IV_1S: return 1000;
  case IV_15S: return 15000;
  case IV_JITTER: return 15000 + rng_range(r, -3000, 3000);
  case IV_IRREG: {
    double u = rng_unit(r);
    if (u < 0.5) return rng_range(r, 50, 3000);
    if (u < 0.9) return rng_range(r, 3000, 30000);
    return rng_range(r, 30000, 90000);
  }
  case IV_GAPS:
    return rng_unit(r) < 0.02 ? rng_range(r, 2 * MIN_MS, 20 * MIN_MS) : 15000;
  }
  return 15000;
}

static double pick_bigint(rng_t *r) {
  static const double base[] = {
      9007199254740992.0,  /* 2^53 */
      9007199254740993.0,  /* rounds to 2^53 */
      9007199254740991.0,  /* 2^53 - 1 */
      4503599627370496.0,  /* 2^52 */
      9223372036854775808.0, /* 2^63 */
      18446744073709551616.0, /* 2^64 */
      1.8e19, 1e300, 123456789012345678.0, 4611686018427387904.0, 1.0, 0.0, 1e15,
  };
  double b = base[rng_next(r) % RC_ARRAY_SIZE(base)];
  double k = (double)rng_range(r, -3, 3);
  double v = b + k * (b >= 9007199254740992.0 ? 2 : 1);
  return rng_unit(r) < 0.3 ? -v : v;
}

static double pick_zero_like(rng_t *r) {
  static const double z[] = {-0.0, 0.0, 5e-324, -5e-324, DBL_MIN, DBL_MIN / 3, -DBL_MIN / 7,
                             1e-310, 1e-300, -1e-320, 0.5, 1.0, -0.0, 0.0};
  return z[rng_next(r) % RC_ARRAY_SIZE(z)];
}

static void gen_series(const spec_t *sp, series_t *s) {
  rng_t r = {sp->seed * UINT64_C(1000003)};
  memset(s, 0, sizeof *s);
  int64_t t = (sp->base != 0 ? sp->base : T0) + (int64_t)(sp->seed * 137);
  int64_t end = t + sp->span_ms;
  double v = 0, prev_t = (double)t;
  switch (sp->kind) {
  case VK_COUNTER: v = (double)rng_range(&r, 0, 1000); break;
  case VK_COUNTER_FRAC: v = rng_unit(&r) * 100; break;
  case VK_COUNTER_BIG: v = 9007199254740992.0 - 3000; break;
  case VK_CONST: v = (sp->seed & 1) ? 42.5 : 7; break;
  default: v = rng_normal(&r) * 100; break;
  }
  for (size_t i = 0; t <= end; i++) {
    double secs = ((double)t - prev_t) / 1000;
    double out = v;
    switch (sp->kind) {
    case VK_COUNTER:
    case VK_COUNTER_BIG:
      for (double k = 0; k < secs; k++) v += (double)rng_range(&r, 0, 50);
      if (rng_unit(&r) < 0.02) v = rng_unit(&r) < 0.5 ? 0 : floor(v * (0.1 + 0.8 * rng_unit(&r)));
      out = v;
      break;
    case VK_COUNTER_FRAC:
      v += rng_unit(&r) * 10 * (secs > 1 ? secs : 1);
      if (rng_unit(&r) < 0.02) v = rng_unit(&r) < 0.3 ? 0 : v * (0.1 + 0.8 * rng_unit(&r));
      out = v;
      break;
    case VK_GAUGE: v += rng_normal(&r) * 5; out = v; break;
    case VK_GAUGE_2DEC: v += rng_normal(&r) * 5; out = round(v * 100) / 100; break;
    case VK_SPECIAL: {
      v += rng_normal(&r) * 5;
      double u = rng_unit(&r);
      if (u < 0.03) out = NAN_ORD;
      else if (u < 0.04) out = from_bits(UINT64_C(0xfff8000000000abc)); /* negative NaN */
      else if (u < 0.06) out = INFINITY;
      else if (u < 0.08) out = -INFINITY;
      else out = v;
      break;
    }
    case VK_CONST: out = v; break;
    case VK_BIGINT: out = pick_bigint(&r); break;
    case VK_ALT:
      out = (double)rng_range(&r, -1000, 1000);
      if (i % 2) out += rng_unit(&r) < 0.5 ? 0.5 : 0.1;
      break;
    case VK_ZEROS: out = pick_zero_like(&r); break;
    case VK_LATENCY: out = exp(rng_normal(&r) * 0.8 - 3); break;
    }
    if (sp->stale && i > 3 && rng_unit(&r) < 0.02) {
      out = STALE;
      /* A stale marker is usually followed by a pause before the series comes back. */
      if (rng_unit(&r) < 0.5) t += rng_range(&r, 0, 5 * MIN_MS);
    }
    series_push(s, t, out);
    prev_t = (double)t;
    t += next_step(&r, sp->iv);
  }
}

/*----- comparing the window with the reference -------------------------------------------*/

/* Every window here counts its memory on one accountant (unbounded): the memory figures and
 * the checks that refused or expired samples leave nothing behind read it. */
static rc_mem_t g_mem;

static const rc_window_cfg_t *cfg_default(void) {
  static rc_window_cfg_t c;
  c = RC_WINDOW_CFG_DEFAULT;
  c.mem = &g_mem;
  return &c;
}

static const rc_window_cfg_t *cfg_tiny(void) {
  static rc_window_cfg_t c;
  c = RC_WINDOW_CFG_DEFAULT;
  c.mem = &g_mem;
  c.chunk_samples = 3;
  c.chunk_span_ms = 2000;
  return &c;
}

static const double g_phis[] = {-0.5, 0, -0.0, 0.5, 0.9, 0.99, 1, 1.5, NAN};
/* 1235 ms: Go's Duration.Seconds() (1 + 0.235) differs in the last bit from 1235/1000. */
static const int64_t g_ranges[] = {1000,  1235,  1500,   5000,   15000,   30000,  60000,
                                   61000, 90001, 300000, 600000, 1800000, 3600000};
static const rc_compat_t g_compats[] = {RC_COMPAT_PROM3, RC_COMPAT_PROM2};

static const char *compat_name(rc_compat_t c) { return c == RC_COMPAT_PROM3 ? "3.x" : "2.42"; }

/* Mismatch reports printed in the current test, and mismatches by function and compat
 * (index RC_FN__COUNT is the instant lookup), printed as a summary when a test ends. */
static size_t g_reports;
static size_t g_tally[RC_FN__COUNT + 1][2];

static void tally_reset(void) {
  g_reports = 0;
  memset(g_tally, 0, sizeof g_tally);
}

static void tally_print(void) {
  for (int f = 0; f <= RC_FN__COUNT; f++) {
    for (int k = 0; k < 2; k++) {
      if (g_tally[f][k] == 0) continue;
      printf("  mismatches: %-20s %-4s %zu\n", f == RC_FN__COUNT ? "instant" : ref_fn_name((rc_fn_t)f),
             compat_name(g_compats[k]), g_tally[f][k]);
    }
  }
}

/* A comparison context: one series (as arrays), the windows holding it, and counters. */
typedef struct {
  const char *label;
  const int64_t *ts;
  const double *v;
  size_t n;
  const rc_window_t *w[3];
  const char *wname[3];
  size_t nw;
  size_t checks, failures;
} cmp_t;

/* Bit-identical, except: (1) when both are NaN and the function computes (rather than
 * selects) its result — which NaN payload comes out of arithmetic on NaNs depends on operand
 * order on x86, in Go as in C, and PromQL prints every NaN as "NaN"; last/min/max pass a
 * stored value through and must keep its exact bits; (2) quantile_over_time over more than 12
 * values when both results are zeros: Go's pdqsort does not define the order of -0 and +0
 * (they compare equal), so the sign of a zero quantile is not defined by Prometheus either. */
static int same_result(rc_fn_t fn, size_t wlen, int rc_a, double a, int rc_b, double b) {
  if (rc_a != rc_b) return 0;
  if (rc_a != 0) return 1;
  if (bits_of(a) == bits_of(b)) return 1;
  int selects = fn == RC_FN_LAST_OT || fn == RC_FN_MIN_OT || fn == RC_FN_MAX_OT;
  if (!selects && isnan(a) && isnan(b)) return 1;
  if (fn == RC_FN_QUANTILE_OT && wlen > 12 && a == 0 && b == 0) return 1;
  return 0;
}

static void dump_window(const cmp_t *c, int64_t t, int64_t r, rc_compat_t compat) {
  size_t k = 0;
  for (size_t i = 0; i < c->n; i++) {
    int in = c->ts[i] <= t && (compat == RC_COMPAT_PROM2 ? c->ts[i] >= t - r : c->ts[i] > t - r);
    if (!in) continue;
    if (k++ < 16) {
      printf("      ts=%" PRId64 " v=%.17g (0x%016" PRIx64 ")\n", c->ts[i], c->v[i],
             bits_of(c->v[i]));
    }
  }
  if (k > 16) printf("      ... %zu samples in the window in all\n", k);
}

static void check_point(cmp_t *c, int64_t t, int64_t r) {
  for (size_t ci = 0; ci < RC_ARRAY_SIZE(g_compats); ci++) {
    rc_compat_t compat = g_compats[ci];
    size_t wlen = ref_window_len(c->ts, c->v, c->n, t, r, compat);
    for (int f = 0; f < RC_FN__COUNT; f++) {
      size_t np = f == RC_FN_QUANTILE_OT ? RC_ARRAY_SIZE(g_phis) : 1;
      for (size_t pi = 0; pi < np; pi++) {
        double phi = f == RC_FN_QUANTILE_OT ? g_phis[pi] : 0;
        double want = 0;
        int want_rc = ref_eval(c->ts, c->v, c->n, (rc_fn_t)f, phi, t, r, compat, &want);
        assert_true(want_rc == 0 || want_rc == RC_ENOENT);
        for (size_t wi = 0; wi < c->nw; wi++) {
          double got = 0;
          int got_rc = rc_window_eval(c->w[wi], (rc_fn_t)f, phi, t, r, compat, &got);
          c->checks++;
          if (same_result((rc_fn_t)f, wlen, want_rc, want, got_rc, got)) continue;
          c->failures++;
          g_tally[f][ci]++;
          if (g_reports++ < MAX_REPORTS) {
            printf("MISMATCH %s [%s] %s(phi=%g) t=%" PRId64 " range=%" PRId64 "ms %s: "
                   "ref rc=%d v=%.17g (0x%016" PRIx64 "), window rc=%d v=%.17g (0x%016" PRIx64
                   "), %zu samples in window\n",
                   c->label, c->wname[wi], ref_fn_name((rc_fn_t)f), phi, t, r,
                   compat_name(compat), want_rc, want, bits_of(want), got_rc, got,
                   bits_of(got), wlen);
            dump_window(c, t, r, compat);
          }
        }
      }
    }
  }
}

static void check_instant(cmp_t *c, int64_t t, int64_t lookback) {
  for (size_t ci = 0; ci < RC_ARRAY_SIZE(g_compats); ci++) {
    rc_compat_t compat = g_compats[ci];
    double want = 0;
    int64_t want_ts = 0;
    int want_rc = ref_instant(c->ts, c->v, c->n, t, lookback, compat, &want, &want_ts);
    for (size_t wi = 0; wi < c->nw; wi++) {
      double got = 0;
      int64_t got_ts = 0;
      int got_rc = rc_window_instant(c->w[wi], t, lookback, compat, &got, &got_ts);
      c->checks++;
      if (got_rc == want_rc &&
          (want_rc != 0 || (bits_of(got) == bits_of(want) && got_ts == want_ts))) {
        continue;
      }
      c->failures++;
      g_tally[RC_FN__COUNT][ci]++;
      if (g_reports++ < MAX_REPORTS) {
        printf("MISMATCH %s [%s] instant t=%" PRId64 " lookback=%" PRId64 " %s: ref rc=%d "
               "v=%.17g ts=%" PRId64 ", window rc=%d v=%.17g ts=%" PRId64 "\n",
               c->label, c->wname[wi], t, lookback, compat_name(compat), want_rc, want,
               want_ts, got_rc, got, got_ts);
      }
    }
  }
}

/* Evaluation times for one series: exactly on sample timestamps and 1 ms either side,
 * between samples, before the first and after the last; plus, per range, the times whose
 * window starts exactly on a sample (where 2.x's closed and 3.x's open windows differ). */
static size_t pick_times(const int64_t *ts, size_t n, rng_t *r, int density, int64_t *out,
                         size_t max) {
  size_t k = 0;
  int exact = density > 1 ? 12 : 5, mid = density > 1 ? 6 : 3;
  if (n == 0) return 0;
  for (int i = 0; i < exact && k + 3 <= max; i++) {
    int64_t s = ts[rng_next(r) % n];
    out[k++] = s;
    out[k++] = s - 1;
    out[k++] = s + 1;
  }
  for (int i = 0; i < mid && k < max && n > 1; i++) {
    size_t j = rng_next(r) % (n - 1);
    out[k++] = ts[j] + (ts[j + 1] - ts[j]) / 2;
  }
  if (k + 6 <= max) {
    out[k++] = ts[0] - 10000;
    out[k++] = ts[0];
    out[k++] = ts[n - 1];
    out[k++] = ts[n - 1] + 2 * MIN_MS;
    out[k++] = ts[n - 1] + 61 * MIN_MS;
    out[k++] = rng_range(r, ts[0], ts[n - 1]);
  }
  return k;
}

static void run_grid(cmp_t *c, uint64_t seed, int density) {
  rng_t r = {seed};
  int64_t times[128];
  size_t nt = pick_times(c->ts, c->n, &r, density, times, RC_ARRAY_SIZE(times));
  for (size_t ri = 0; ri < RC_ARRAY_SIZE(g_ranges); ri++) {
    int64_t range = g_ranges[ri];
    for (size_t ti = 0; ti < nt; ti++) check_point(c, times[ti], range);
    for (int e = 0; e < 2 * density && c->n > 0; e++) {
      int64_t s = c->ts[rng_next(&r) % c->n];
      check_point(c, s + range, range);
      check_point(c, s + range - 1, range);
      check_point(c, s + range + 1, range);
    }
  }
  for (size_t ti = 0; ti < nt; ti++) check_instant(c, times[ti], 300000);
  for (int e = 0; e < 4 * density && c->n > 0; e++) {
    int64_t s = c->ts[rng_next(&r) % c->n];
    check_instant(c, s + 300000, 300000); /* lookback edge: 2.x sees s, 3.x does not */
    check_instant(c, s + 299999, 300000);
    check_instant(c, s + 300001, 300000);
  }
}

static void build_window(rc_window_t *w, const rc_window_cfg_t *cfg, const series_t *s) {
  rc_window_init(w);
  for (size_t i = 0; i < s->n; i++) {
    int rc = rc_window_append(w, cfg, s->ts[i], s->v[i]);
    if (rc != 0) fail_msg("append #%zu ts=%" PRId64 " returned %d", i, s->ts[i], rc);
  }
  assert_int_equal(rc_window_count(w), s->n);
}

/*----- tests: the reference itself --------------------------------------------------------*/

static double ref1(const int64_t *ts, const double *v, size_t n, rc_fn_t fn, double phi,
                   int64_t t, int64_t r, rc_compat_t compat) {
  double out = 0;
  assert_int_equal(ref_eval(ts, v, n, fn, phi, t, r, compat, &out), 0);
  return out;
}

/* promql-semantics.md §2, worked example: [1m] at t=60s over 10,13,16,19 at 5,20,35,50 s.
 * increase = 12 and rate = 0.2/s, which Go computes as 9 * ((60/45)/60) =
 * 0.19999999999999998, not 12/60. The 2.x window is closed but no sample sits at 0 s. */
static void test_ref_worked_example(void **st) {
  (void)st;
  const int64_t ts[] = {5000, 20000, 35000, 50000};
  const double v[] = {10, 13, 16, 19};
  for (size_t ci = 0; ci < 2; ci++) {
    rc_compat_t c = g_compats[ci];
    double inc = ref1(ts, v, 4, RC_FN_INCREASE, 0, 60000, 60000, c);
    double rate = ref1(ts, v, 4, RC_FN_RATE, 0, 60000, 60000, c);
    assert_true(inc == 12.0);
    assert_true(fabs(rate - 0.2) < 1e-15);
    assert_true(rate == 9 * ((60.0 / 45) / 60));
    assert_true(ref1(ts, v, 4, RC_FN_DELTA, 0, 60000, 60000, c) == 12.0);
  }
}

/* The clamp order of 2.42 vs 3.x: samples 8,18,28,38 at 30..60 s, [1m] at 60 s. The series
 * starts 30 s into the window (> 1.1 * 10 s), durationToZero = 30 * 8/30 = 8 s. 3.x: avg/2 =
 * 5 s, not shortened by 8 s: 30 * 35/30 = 35. 2.42: min(30, 8) = 8 < 11: 30 * 38/30 = 38. */
static void test_ref_clamp_order(void **st) {
  (void)st;
  const int64_t ts[] = {30000, 40000, 50000, 60000};
  const double v[] = {8, 18, 28, 38};
  assert_true(ref1(ts, v, 4, RC_FN_INCREASE, 0, 60000, 60000, RC_COMPAT_PROM3) == 35.0);
  assert_true(ref1(ts, v, 4, RC_FN_INCREASE, 0, 60000, 60000, RC_COMPAT_PROM2) == 38.0);
  /* A zero point closer than avg/2 limits both: 100,110,120,130 -> to_zero = 300 s > 5 s,
   * so no clamp in either; with 1,11,21,31 to_zero = 1 s limits both to 1 s: 31 * 31/30. */
  const double v2[] = {1, 11, 21, 31};
  double want = 30 * ((30.0 + 1 + 0) / 30);
  assert_true(ref1(ts, v2, 4, RC_FN_INCREASE, 0, 60000, 60000, RC_COMPAT_PROM3) == want);
  assert_true(ref1(ts, v2, 4, RC_FN_INCREASE, 0, 60000, 60000, RC_COMPAT_PROM2) == want);
  /* Counter resets add the value before the drop: 5, 10, 2, 4 -> 4-5 + 10 = 9 raw. */
  const double v3[] = {5, 10, 2, 4};
  assert_int_equal((int)ref1(ts, v3, 4, RC_FN_RESETS, 0, 60000, 60000, RC_COMPAT_PROM3), 1);
  assert_true(ref1(ts, v3, 4, RC_FN_IRATE, 0, 60000, 60000, RC_COMPAT_PROM3) == 0.2);
  assert_true(ref1(ts, v3, 4, RC_FN_IDELTA, 0, 60000, 60000, RC_COMPAT_PROM3) == 2.0);
}

/* Window edges: a sample exactly at t-r is inside in 2.x, outside in 3.x; stale markers
 * never count; the lookback follows the same rule and a stale newest sample hides all. */
static void test_ref_edges_and_staleness(void **st) {
  (void)st;
  const int64_t ts[] = {0, 15000, 30000, 45000, 60000};
  const double v[] = {1, 2, STALE, 4, 5};
  assert_true(ref1(ts, v, 5, RC_FN_COUNT_OT, 0, 60000, 60000, RC_COMPAT_PROM2) == 4);
  assert_true(ref1(ts, v, 5, RC_FN_COUNT_OT, 0, 60000, 60000, RC_COMPAT_PROM3) == 3);
  assert_true(ref1(ts, v, 5, RC_FN_SUM_OT, 0, 60000, 60000, RC_COMPAT_PROM2) == 12);
  double out = 0;
  int64_t ots = 0;
  assert_int_equal(ref_eval(ts, v, 5, RC_FN_RATE, 0, 30000, 1, RC_COMPAT_PROM3, &out),
                   RC_ENOENT); /* only the stale marker in (29.999, 30] */
  assert_int_equal(ref_instant(ts, v, 5, 30000, 300000, RC_COMPAT_PROM3, &out, &ots),
                   RC_ENOENT);
  assert_int_equal(ref_instant(ts, v, 5, 44999, 300000, RC_COMPAT_PROM3, &out, &ots),
                   RC_ENOENT);
  assert_int_equal(ref_instant(ts, v, 5, 45000, 300000, RC_COMPAT_PROM3, &out, &ots), 0);
  assert_true(out == 4 && ots == 45000);
  assert_int_equal(ref_instant(ts, v, 5, 360000, 300000, RC_COMPAT_PROM2, &out, &ots), 0);
  assert_int_equal(ref_instant(ts, v, 5, 360000, 300000, RC_COMPAT_PROM3, &out, &ots),
                   RC_ENOENT);
}

/* quantile_over_time by hand (type 7): {1,2,3,4} φ=.5 -> 2.5, φ=.25 -> 1.75;
 * {10..50} φ=.9 -> 40*.4 + 50*.6 = 46; out-of-range φ; NaN sorts first; x*0 with x=Inf. */
static void test_ref_quantile(void **st) {
  (void)st;
  const int64_t ts[] = {1000, 2000, 3000, 4000, 5000};
  const double a[] = {3, 1, 4, 2};
  const double b[] = {50, 10, 40, 20, 30};
  const double c[] = {2, NAN_ORD, 1};
  const double d[] = {1, INFINITY};
  rc_compat_t k = RC_COMPAT_PROM3;
  assert_true(ref1(ts, a, 4, RC_FN_QUANTILE_OT, 0.5, 5000, 10000, k) == 2.5);
  assert_true(ref1(ts, a, 4, RC_FN_QUANTILE_OT, 0.25, 5000, 10000, k) == 1.75);
  assert_true(ref1(ts, a, 4, RC_FN_QUANTILE_OT, 0, 5000, 10000, k) == 1);
  assert_true(ref1(ts, a, 4, RC_FN_QUANTILE_OT, 1, 5000, 10000, k) == 4);
  assert_true(ref1(ts, b, 5, RC_FN_QUANTILE_OT, 0.9, 5000, 10000, k) == 46);
  assert_true(ref1(ts, b, 5, RC_FN_QUANTILE_OT, -0.5, 5000, 10000, k) == -INFINITY);
  assert_true(ref1(ts, b, 5, RC_FN_QUANTILE_OT, 1.5, 5000, 10000, k) == INFINITY);
  assert_true(isnan(ref1(ts, b, 5, RC_FN_QUANTILE_OT, NAN, 5000, 10000, k)));
  assert_true(isnan(ref1(ts, c, 3, RC_FN_QUANTILE_OT, 0, 5000, 10000, k)));
  assert_true(ref1(ts, c, 3, RC_FN_QUANTILE_OT, 1, 5000, 10000, k) == 2);
  assert_true(ref1(ts, c, 3, RC_FN_QUANTILE_OT, 0.75, 5000, 10000, k) == 1.5);
  assert_true(isnan(ref1(ts, d, 2, RC_FN_QUANTILE_OT, 0, 5000, 10000, k)));
  /* φ=1 with an Inf maximum: w=0 and x[hi]*w = Inf*0 = NaN, so Prometheus returns NaN. */
  assert_true(isnan(ref1(ts, d, 2, RC_FN_QUANTILE_OT, 1, 5000, 10000, k)));
  assert_true(ref1(ts, d, 2, RC_FN_QUANTILE_OT, 0.5, 5000, 10000, k) == INFINITY);
  /* min/max skip NaN, changes does not count NaN->NaN. */
  assert_true(ref1(ts, c, 3, RC_FN_MIN_OT, 0, 5000, 10000, k) == 1);
  assert_true(ref1(ts, c, 3, RC_FN_MAX_OT, 0, 5000, 10000, k) == 2);
}

/* Kahan: Prometheus' own test series 1, 1e100, 1, -1e100: sum 2 in both versions; avg 0.5
 * in 3.x (Kahan sum / count) but -2.4283361152821613e+83 in 2.42's incremental mean. */
static void test_ref_kahan(void **st) {
  (void)st;
  const int64_t ts[] = {1000, 2000, 3000, 4000};
  const double v[] = {1, 1e100, 1, -1e100};
  for (size_t ci = 0; ci < 2; ci++) {
    assert_true(ref1(ts, v, 4, RC_FN_SUM_OT, 0, 4000, 10000, g_compats[ci]) == 2);
  }
  assert_true(ref1(ts, v, 4, RC_FN_AVG_OT, 0, 4000, 10000, RC_COMPAT_PROM3) == 0.5);
  ref_set_avg3(REF_AVG3_KAHAN_SUM);
  assert_true(ref1(ts, v, 4, RC_FN_AVG_OT, 0, 4000, 10000, RC_COMPAT_PROM3) == 0.5);
  /* The two 3.x variants differ in the last bit on ordinary data: avg of 0.1, 0.7, 0.3 is
   * 0.36666666666666664 in 3.0-3.4 ((sum+c)/n) and 0.3666666666666667 in 3.5+ (sum/n+c/n). */
  const double tenths[] = {0.1, 0.7, 0.3};
  double a30 = ref1(ts, tenths, 3, RC_FN_AVG_OT, 0, 4000, 10000, RC_COMPAT_PROM3);
  ref_set_avg3(REF_AVG3_DIRECT_35);
  double a35 = ref1(ts, tenths, 3, RC_FN_AVG_OT, 0, 4000, 10000, RC_COMPAT_PROM3);
  assert_true(a30 == 0.36666666666666664 && a35 == 0.3666666666666667);
  assert_true(ref1(ts, v, 4, RC_FN_AVG_OT, 0, 4000, 10000, RC_COMPAT_PROM2) ==
              -2.4283361152821613e+83);
  /* Overflow of the running sum switches 3.x to the incremental mean. */
  const double big[] = {1.5e308, 1.5e308, -1e308};
  double avg = ref1(ts, big, 3, RC_FN_AVG_OT, 0, 4000, 10000, RC_COMPAT_PROM3);
  assert_true(isfinite(avg) && fabs(avg - 6.666666666666667e307) < 1e294);
  /* A single ±Inf: 3.x gives Inf (compensation reset), stdvar of [1, Inf] NaN in both. */
  const double inf1[] = {INFINITY};
  assert_true(ref1(ts, inf1, 1, RC_FN_AVG_OT, 0, 4000, 10000, RC_COMPAT_PROM3) == INFINITY);
  assert_true(ref1(ts, inf1, 1, RC_FN_SUM_OT, 0, 4000, 10000, RC_COMPAT_PROM2) == INFINITY);
  /* Population variance of 2,4,4,4,5,5,7,9 is exactly 4. */
  const int64_t ts8[] = {1, 2, 3, 4, 5, 6, 7, 8};
  const double v8[] = {2, 4, 4, 4, 5, 5, 7, 9};
  assert_true(ref1(ts8, v8, 8, RC_FN_STDVAR_OT, 0, 8, 100, RC_COMPAT_PROM3) == 4);
  assert_true(ref1(ts8, v8, 8, RC_FN_STDDEV_OT, 0, 8, 100, RC_COMPAT_PROM2) == 2);
}

/*----- tests: the window ----------------------------------------------------------------*/

/* Every function, every φ, both compat modes, default and tiny chunks, ~25 series. */
static void test_window_exact(void **st) {
  (void)st;
  size_t checks = 0, failures = 0;
  tally_reset();
  for (size_t si = 0; si < RC_ARRAY_SIZE(g_specs); si++) {
    series_t s;
    gen_series(&g_specs[si], &s);
    rc_window_t wd, wt;
    build_window(&wd, cfg_default(), &s);
    build_window(&wt, cfg_tiny(), &s);
    cmp_t c = {.label = g_specs[si].name, .ts = s.ts, .v = s.v, .n = s.n,
               .w = {&wd, &wt}, .wname = {"default", "tiny"}, .nw = 2};
    run_grid(&c, g_specs[si].seed + 1000, 2);
    checks += c.checks;
    failures += c.failures;
    if (c.failures) printf("  %s: %zu mismatches\n", g_specs[si].name, c.failures);
    rc_window_free(&wd, &g_mem);
    rc_window_free(&wt, &g_mem);
    series_free(&s);
  }
  printf("window_exact: %zu comparisons, %zu mismatches\n", checks, failures);
  tally_print();
  if (failures) fail_msg("%zu of %zu window results differ from the reference", failures, checks);
}

/* Every function at times across [from, to] and every range: a and b answer identically. */
static void assert_same_evals(const rc_window_t *a, const rc_window_t *b, int64_t from,
                              int64_t to, int64_t step) {
  for (int64_t t = from - 1000; t <= to + 61000; t += step) {
    for (size_t ri = 0; ri < RC_ARRAY_SIZE(g_ranges); ri++) {
      for (size_t ci = 0; ci < RC_ARRAY_SIZE(g_compats); ci++) {
        for (int f = 0; f < RC_FN__COUNT; f++) {
          double x = 0, y = 0;
          int rx = rc_window_eval(a, (rc_fn_t)f, 0.5, t, g_ranges[ri], g_compats[ci], &x);
          int ry = rc_window_eval(b, (rc_fn_t)f, 0.5, t, g_ranges[ri], g_compats[ci], &y);
          if (rx != ry || (rx == 0 && bits_of(x) != bits_of(y))) {
            fail_msg("%s at t=%" PRId64 " range=%" PRId64 " %s: rc %d/%d, 0x%016" PRIx64
                     " vs 0x%016" PRIx64,
                     ref_fn_name((rc_fn_t)f), t, g_ranges[ri], compat_name(g_compats[ci]), rx,
                     ry, bits_of(x), bits_of(y));
          }
        }
      }
    }
  }
}

/* Arrival order: sample i arrives at ts + d with d uniform in [0, 50 s), so no sample is
 * ever more than 50 s older than the newest one already appended (tolerance is 60 s). */
static size_t *shuffled_order(const series_t *s, uint64_t seed) {
  rng_t r = {seed};
  int64_t *key = malloc(s->n * sizeof *key);
  size_t *idx = malloc(s->n * sizeof *idx);
  assert_non_null(key);
  assert_non_null(idx);
  for (size_t i = 0; i < s->n; i++) {
    key[i] = s->ts[i] + rng_range(&r, 0, 49999);
    idx[i] = i;
  }
  /* Insertion sort by arrival key: n is small enough and it keeps the helper obvious. */
  for (size_t i = 1; i < s->n; i++) {
    for (size_t j = i; j > 0 && key[idx[j]] < key[idx[j - 1]]; j--) {
      size_t t = idx[j];
      idx[j] = idx[j - 1];
      idx[j - 1] = t;
    }
  }
  free(key);
  return idx;
}

typedef struct {
  int64_t *ts;
  double *v;
  size_t n, cap;
  int64_t stop_after; /* stop (return 7) after this many samples; <0: never */
} collect_t;

static int collect_cb(void *ctx, int64_t ts, double v) {
  collect_t *c = ctx;
  if (c->n == c->cap) {
    c->cap = c->cap ? c->cap * 2 : 256;
    c->ts = realloc(c->ts, c->cap * sizeof *c->ts);
    c->v = realloc(c->v, c->cap * sizeof *c->v);
    assert_non_null(c->ts);
    assert_non_null(c->v);
  }
  c->ts[c->n] = ts;
  c->v[c->n] = v;
  c->n++;
  if (c->stop_after >= 0 && (int64_t)c->n >= c->stop_after) return 7;
  return 0;
}

static void collect_free(collect_t *c) {
  free(c->ts);
  free(c->v);
}

static void assert_same_samples(const int64_t *ts, const double *v, size_t n,
                                const collect_t *got, const char *what) {
  if (got->n != n) fail_msg("%s: %zu samples, want %zu", what, got->n, n);
  for (size_t i = 0; i < n; i++) {
    if (got->ts[i] != ts[i] || bits_of(got->v[i]) != bits_of(v[i])) {
      fail_msg("%s: sample %zu is (%" PRId64 ", 0x%016" PRIx64 "), want (%" PRId64
               ", 0x%016" PRIx64 ")",
               what, i, got->ts[i], bits_of(got->v[i]), ts[i], bits_of(v[i]));
    }
  }
}

static void assert_window_holds(const rc_window_t *w, const int64_t *ts, const double *v,
                                size_t n, const char *what) {
  collect_t got = {.stop_after = -1};
  assert_int_equal(rc_window_foreach(w, INT64_MIN, INT64_MAX, collect_cb, &got), 0);
  assert_same_samples(ts, v, n, &got, what);
  assert_int_equal(rc_window_count(w), n);
  collect_free(&got);
}

/* Late data within the tolerance gives the same window as in-order data, at every stage:
 * halfway through the arrivals and at the end the window must equal the reference over
 * exactly the samples that have arrived (sorted), and at the end the in-order window. */
static void test_window_late_data(void **st) {
  (void)st;
  static const size_t pick[] = {0, 2, 4, 9, 11, 16, 19, 21, 24};
  size_t checks = 0, failures = 0;
  tally_reset();
  for (size_t pi = 0; pi < RC_ARRAY_SIZE(pick); pi++) {
    const spec_t *sp = &g_specs[pick[pi]];
    series_t s;
    gen_series(sp, &s);
    size_t *order = shuffled_order(&s, sp->seed + 77);
    const rc_window_cfg_t *cfgs[] = {cfg_default(), cfg_tiny()};
    for (size_t k = 0; k < 2; k++) {
      rc_window_t w;
      rc_window_init(&w);
      unsigned char *seen = calloc(s.n, 1);
      series_t sub = {0};
      assert_non_null(seen);
      for (size_t a = 0; a < s.n; a++) {
        size_t i = order[a];
        int rc = rc_window_append(&w, cfgs[k], s.ts[i], s.v[i]);
        if (rc != 0) fail_msg("%s: late append of ts=%" PRId64 " returned %d", sp->name, s.ts[i], rc);
        seen[i] = 1;
        if ((a + 1) % (s.n / 2 + 1) != 0 && a + 1 != s.n) continue;
        sub.n = 0;
        for (size_t j = 0; j < s.n; j++) {
          if (seen[j]) series_push(&sub, s.ts[j], s.v[j]);
        }
        assert_window_holds(&w, sub.ts, sub.v, sub.n, sp->name);
        cmp_t c = {.label = sp->name, .ts = sub.ts, .v = sub.v, .n = sub.n,
                   .w = {&w}, .wname = {k ? "tiny/late" : "default/late"}, .nw = 1};
        run_grid(&c, sp->seed + 2000 + a, 1);
        checks += c.checks;
        failures += c.failures;
      }
      /* And, independently of the reference, exactly what the in-order window answers. */
      rc_window_t in_order;
      build_window(&in_order, cfgs[k], &s);
      assert_same_evals(&w, &in_order, s.ts[0], s.ts[s.n - 1], 29999);
      rc_window_free(&in_order, &g_mem);
      free(seen);
      series_free(&sub);
      rc_window_free(&w, &g_mem);
    }
    free(order);
    series_free(&s);
  }
  printf("late_data: %zu comparisons, %zu mismatches\n", checks, failures);
  tally_print();
  if (failures) fail_msg("%zu late-data results differ from the reference", failures);
}

/* Too old: refused with RC_ETOOOLD and nothing changes. Exactly at the tolerance the header
 * promises acceptance ("older than the newest by at most the tolerance"). Duplicates:
 * identical bits are RC_EDUP and change nothing; different bits (incl. -0 vs +0 and another
 * NaN payload) are RC_ECONFLICT and the first value stays. */
static void test_window_late_limits_and_dups(void **st) {
  (void)st;
  const rc_window_cfg_t *cfgs[] = {cfg_default(), cfg_tiny()};
  for (size_t k = 0; k < 2; k++) {
    const rc_window_cfg_t *cfg = cfgs[k];
    series_t s = {0};
    /* 15 s spacing with a few values that stress duplicate detection. */
    for (int i = 0; i < 40; i++) {
      double v = i * 1.5;
      if (i == 35) v = STALE;
      if (i == 36) v = -0.0;
      if (i == 37) v = 0.0;
      if (i == 38) v = NAN_ORD;
      series_push(&s, T0 + i * 15000, v);
    }
    rc_window_t w;
    build_window(&w, cfg, &s);
    int64_t max_ts = s.ts[s.n - 1];
    int64_t bytes = rc_mem_bytes(&g_mem);

    /* Too old, both at a free timestamp and on an existing one. */
    int64_t old_free = max_ts - cfg->ooo_tolerance_ms - 1;
    assert_int_equal(rc_window_append(&w, cfg, old_free, 1), RC_ETOOOLD);
    assert_int_equal(rc_window_append(&w, cfg, T0 + 7, 1), RC_ETOOOLD);
    assert_int_equal(rc_window_append(&w, cfg, T0 - 3600000, 1), RC_ETOOOLD);
    assert_int_equal(rc_window_append(&w, cfg, s.ts[0], 99), RC_ETOOOLD);
    assert_window_holds(&w, s.ts, s.v, s.n, "after too-old appends");
    assert_int_equal(rc_mem_bytes(&g_mem), bytes);

    /* Duplicates within the tolerance: every sample of the last 60 s, then the newest. */
    for (size_t i = 0; i < s.n; i++) {
      if (s.ts[i] < max_ts - cfg->ooo_tolerance_ms) continue;
      assert_int_equal(rc_window_append(&w, cfg, s.ts[i], s.v[i]), RC_EDUP);
      double other = s.v[i] + 1;
      if (bits_of(s.v[i]) == bits_of(-0.0)) other = 0.0;
      if (bits_of(s.v[i]) == bits_of(0.0)) other = -0.0;
      if (isnan(s.v[i])) other = from_bits(bits_of(s.v[i]) ^ 0x10); /* another NaN */
      assert_int_equal(rc_window_append(&w, cfg, s.ts[i], other), RC_ECONFLICT);
    }
    assert_window_holds(&w, s.ts, s.v, s.n, "after duplicates");
    /* Refused appends must not leave a trace in any result either (chunk summaries): the
     * window must answer exactly as one that never saw them. */
    rc_window_t fresh;
    build_window(&fresh, cfg, &s);
    assert_same_evals(&w, &fresh, s.ts[0], max_ts, 7499);
    rc_window_free(&fresh, &g_mem);

    /* A new newest sample 7 ms later moves the limit to a free timestamp; a sample exactly
     * at the tolerance is accepted and inserted in place, 1 ms older is refused. */
    series_push(&s, max_ts + 7, 4.5);
    assert_int_equal(rc_window_append(&w, cfg, max_ts + 7, 4.5), 0);
    int64_t edge = max_ts + 7 - cfg->ooo_tolerance_ms;
    assert_int_equal(rc_window_append(&w, cfg, edge - 1, 123.25), RC_ETOOOLD);
    assert_int_equal(rc_window_append(&w, cfg, edge, 123.25), 0);
    series_t s2 = {0};
    for (size_t i = 0; i < s.n; i++) {
      if (i > 0 && s.ts[i - 1] < edge && s.ts[i] > edge) series_push(&s2, edge, 123.25);
      series_push(&s2, s.ts[i], s.v[i]);
    }
    assert_window_holds(&w, s2.ts, s2.v, s2.n, "after the edge append");
    series_free(&s2);
    rc_window_free(&w, &g_mem);
    series_free(&s);
  }
}

/* Retention: rc_window_expire(w, cutoff) drops whole chunks whose newest sample is older
 * than the cutoff. "Kept" is therefore: every sample with ts >= cutoff, plus the older
 * samples that share a chunk with one of them — a suffix of the series in time order, whose
 * older part is bounded by the chunk limits (fewer than chunk_samples samples, within
 * chunk_span_ms of the cutoff). Queries must then equal the reference over the kept suffix. */
static void test_window_retention(void **st) {
  (void)st;
  static const size_t pick[] = {0, 1, 3, 10, 12, 14, 17};
  const rc_window_cfg_t *cfgs[] = {cfg_default(), cfg_tiny()};
  size_t checks = 0, failures = 0;
  tally_reset();
  for (size_t pi = 0; pi < RC_ARRAY_SIZE(pick); pi++) {
    const spec_t *sp = &g_specs[pick[pi]];
    series_t s;
    gen_series(sp, &s);
    for (size_t k = 0; k < 2; k++) {
      rc_window_t w;
      build_window(&w, cfgs[k], &s);
      int64_t first = s.ts[0], last = s.ts[s.n - 1];
      const int64_t cuts[] = {first - 1, first + (last - first) / 4, first + (last - first) / 2,
                              first + (last - first) / 2, last - 61000, last, last + 1};
      size_t prev_n = s.n;
      int64_t prev_bytes = rc_mem_bytes(&g_mem);
      for (size_t ci = 0; ci < RC_ARRAY_SIZE(cuts); ci++) {
        int64_t cut = cuts[ci];
        rc_window_expire(&w, cfgs[k], cut);
        collect_t got = {.stop_after = -1};
        assert_int_equal(rc_window_foreach(&w, INT64_MIN, INT64_MAX, collect_cb, &got), 0);
        assert_int_equal(rc_window_count(&w), got.n);
        /* A suffix of the original, holding everything at or after the cutoff. */
        size_t start = s.n - got.n;
        assert_same_samples(s.ts + start, s.v + start, got.n, &got, "kept after expire");
        for (size_t i = 0; i < start; i++) assert_true(s.ts[i] < cut);
        size_t older = 0;
        for (size_t i = start; i < s.n; i++) {
          if (s.ts[i] >= cut) break;
          older++;
          assert_true(s.ts[i] >= cut - cfgs[k]->chunk_span_ms);
        }
        assert_true(older < cfgs[k]->chunk_samples);
        if (cut > last) assert_int_equal(got.n, 0);
        assert_true(got.n <= prev_n);
        assert_true(rc_mem_bytes(&g_mem) <= prev_bytes);
        if (got.n < prev_n) assert_true(rc_mem_bytes(&g_mem) < prev_bytes);
        if (got.n == 0) assert_int_equal(rc_mem_bytes(&g_mem), 0); /* nothing else is alive */
        int dropped = got.n < prev_n;
        prev_n = got.n;
        prev_bytes = rc_mem_bytes(&g_mem);
        cmp_t c = {.label = sp->name, .ts = got.ts, .v = got.v, .n = got.n, .w = {&w},
                   .wname = {k ? "tiny/expired" : "default/expired"}, .nw = 1};
        /* Queries again wherever samples were dropped (and once with nothing dropped). */
        if (got.n > 0 && (ci == 0 || dropped)) run_grid(&c, sp->seed + 3000 + ci, 1);
        checks += c.checks;
        failures += c.failures;
        collect_free(&got);
      }
      rc_window_free(&w, &g_mem);
    }
    series_free(&s);
  }
  printf("retention: %zu comparisons, %zu mismatches\n", checks, failures);
  tally_print();
  if (failures) fail_msg("%zu results after expiry differ from the reference", failures);
}

/* foreach visits exactly the samples with ts in [from, to], oldest first, stale markers
 * included, and stops at the first non-zero callback result, returning it. */
static void test_window_foreach(void **st) {
  (void)st;
  static const size_t pick[] = {2, 4, 11, 16, 20};
  const rc_window_cfg_t *cfgs[] = {cfg_default(), cfg_tiny()};
  size_t ranges = 0;
  for (size_t pi = 0; pi < RC_ARRAY_SIZE(pick); pi++) {
    const spec_t *sp = &g_specs[pick[pi]];
    series_t s;
    gen_series(sp, &s);
    rng_t r = {sp->seed + 4000};
    for (size_t k = 0; k < 2; k++) {
      rc_window_t w;
      build_window(&w, cfgs[k], &s);
      assert_window_holds(&w, s.ts, s.v, s.n, "foreach all");
      for (int q = 0; q < 300; q++) {
        int64_t from, to;
        switch (q % 4) {
        case 0: /* exactly on samples */
          from = s.ts[rng_next(&r) % s.n];
          to = s.ts[rng_next(&r) % s.n];
          break;
        case 1: /* one ms off */
          from = s.ts[rng_next(&r) % s.n] + 1;
          to = s.ts[rng_next(&r) % s.n] - 1;
          break;
        default:
          from = rng_range(&r, s.ts[0] - 100000, s.ts[s.n - 1] + 100000);
          to = from + rng_range(&r, -1000, 20 * MIN_MS);
          break;
        }
        size_t lo = 0, hi = 0;
        while (lo < s.n && s.ts[lo] < from) lo++;
        hi = lo;
        while (hi < s.n && s.ts[hi] <= to) hi++;
        collect_t got = {.stop_after = -1};
        assert_int_equal(rc_window_foreach(&w, from, to, collect_cb, &got), 0);
        assert_same_samples(s.ts + lo, s.v + lo, from <= to ? hi - lo : 0, &got, sp->name);
        collect_free(&got);
        if (hi - lo >= 3) {
          collect_t part = {.stop_after = 2};
          assert_int_equal(rc_window_foreach(&w, from, to, collect_cb, &part), 7);
          assert_same_samples(s.ts + lo, s.v + lo, 2, &part, "foreach stopped early");
          collect_free(&part);
        }
        ranges++;
      }
      rc_window_free(&w, &g_mem);
    }
    series_free(&s);
  }
  /* An empty window visits nothing. */
  rc_window_t e;
  rc_window_init(&e);
  collect_t none = {.stop_after = -1};
  assert_int_equal(rc_window_foreach(&e, INT64_MIN, INT64_MAX, collect_cb, &none), 0);
  assert_int_equal(none.n, 0);
  assert_int_equal(rc_window_count(&e), 0);
  double out;
  assert_int_equal(rc_window_eval(&e, RC_FN_COUNT_OT, 0, T0, 60000, RC_COMPAT_PROM3, &out),
                   RC_ENOENT);
  rc_window_free(&e, &g_mem);
  printf("foreach: %zu ranges checked\n", ranges);
}

/*----- memory -----------------------------------------------------------------------------*/

typedef enum { MEM_COUNTER, MEM_GAUGE2, MEM_LATENCY } mem_kind_t;

static size_t bytes_for(mem_kind_t kind, int64_t step_ms, uint64_t seed) {
  rng_t r = {seed};
  rc_window_t w;
  rc_window_init(&w);
  int64_t before = rc_mem_bytes(&g_mem);
  const rc_window_cfg_t *cfg = cfg_default();
  double v = 1000 + (double)rng_range(&r, 0, 100000), g = rng_normal(&r) * 50;
  for (int64_t t = T0; t < T0 + 5 * MIN_MS; t += step_ms) {
    double out;
    switch (kind) {
    case MEM_COUNTER:
      for (int64_t k = 0; k < step_ms / 1000; k++) v += (double)rng_range(&r, 0, 50);
      out = v;
      break;
    case MEM_GAUGE2: g += rng_normal(&r); out = round(g * 100) / 100; break;
    default: out = exp(rng_normal(&r) * 0.7 - 2.5); break;
    }
    assert_int_equal(rc_window_append(&w, cfg, t, out), 0);
  }
  size_t b = (size_t)(rc_mem_bytes(&g_mem) - before);
  rc_window_free(&w, &g_mem);
  assert_int_equal(rc_mem_bytes(&g_mem), before); /* exactly what it took comes back */
  return b;
}

/* Bytes per series for 5 minutes of samples, averaged over 20 series of each kind: what the
 * allocator holds for the window's blocks (mem.h), its own 8-byte headers not included. Loose
 * bounds only for the counter (the project target is <= 1 KiB per series at 15 s). */
static void test_window_memory(void **st) {
  (void)st;
  static const char *const names[] = {"counter", "gauge (2 decimals)", "latency (lognormal)"};
  size_t at15[3] = {0}, at1[3] = {0};
  for (int k = 0; k < 3; k++) {
    for (uint64_t seed = 1; seed <= 20; seed++) {
      at15[k] += bytes_for((mem_kind_t)k, 15000, seed * 31 + (uint64_t)k);
      at1[k] += bytes_for((mem_kind_t)k, 1000, seed * 37 + (uint64_t)k);
    }
    at15[k] /= 20;
    at1[k] /= 20;
    printf("memory: %-20s 5 min at 15 s: %5zu B/series (20 samples); at 1 s: %5zu B/series "
           "(300 samples, %.2f B/sample)\n",
           names[k], at15[k], at1[k], (double)at1[k] / 300);
  }
  assert_true(at15[MEM_COUNTER] <= 1024);
  assert_true(at1[MEM_COUNTER] <= 2048);
}

int main(void) {
  /* Mismatch reports go to stdout, cmocka's verdicts to stderr: keep them in order. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ref_worked_example),
      cmocka_unit_test(test_ref_clamp_order),
      cmocka_unit_test(test_ref_edges_and_staleness),
      cmocka_unit_test(test_ref_quantile),
      cmocka_unit_test(test_ref_kahan),
      cmocka_unit_test(test_window_exact),
      cmocka_unit_test(test_window_late_data),
      cmocka_unit_test(test_window_late_limits_and_dups),
      cmocka_unit_test(test_window_retention),
      cmocka_unit_test(test_window_foreach),
      cmocka_unit_test(test_window_memory),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
