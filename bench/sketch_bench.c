/* sketch_bench.c: micro-benchmark of the quantile sketch (src/sketch.c) on one core.
 *
 * Reports, as the median of --rounds rounds (default 7):
 *   - ns per rc_sketch_add() on uniform and lognormal inputs (1M values, pre-generated);
 *   - ns per bucket index alone, three ways over the same values: the sketch's table lookup,
 *     a naive ceil(log2(v) * 2^n) (fast but wrong at some bucket boundaries), and frexp plus a
 *     binary search over the bounds (what a Prometheus client does);
 *   - ns per rc_sketch_quantile() and rc_sketch_quantile_prom() at q = 0.99;
 *   - ns to merge 10 slot sketches into a window sketch (10 x 30 values: a 5-minute window of
 *     30 s slots at 1 s resolution; and 10 x 1000 values);
 *   - bytes per sketch (rc_sketch_footprint, before and after rc_sketch_shrink) for 5 minutes of
 *     latencies at 1 s (300 values) and at 15 s (20 values), schemas 6 and 5, averaged over
 *     1000 sketches with the worst one shown.
 * Inputs come from a fixed-seed generator, so runs are comparable. Usage:
 *   sketch_bench [--rounds N]
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sketch.h"

#define N_VALUES (1u << 20)
#define MAX_ROUNDS 101

static volatile double g_sink;

static uint64_t g_rng = 12345;

static uint64_t rng_u64(void) { /* splitmix64 */
  uint64_t z = (g_rng += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

static double rng_unit(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }

static double rng_normal(void) {
  double u1 = 1.0 - rng_unit(), u2 = rng_unit();
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/*------------------------------------------------------------------------------------------
 * Index computations to compare with the table
 *----------------------------------------------------------------------------------------*/

static int32_t index_naive_log(int schema, double v) {
  return (int32_t)ceil(log2(fabs(v)) * ldexp(1.0, schema));
}

static double g_frac[256]; /* bounds in [0.5, 1) for the frexp variant, schema 6 */

static int32_t index_frexp_search(int schema, double v) {
  int e;
  double f = frexp(fabs(v), &e);
  int lo = 0, hi = 1 << schema; /* first bound >= f */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (g_frac[mid] < f)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo + (e - 1) * (1 << schema);
}

/*------------------------------------------------------------------------------------------
 * Phases; each returns the time of one round in ns per operation
 *----------------------------------------------------------------------------------------*/

static double time_add(const double *v, size_t n) {
  rc_sketch_t s;
  rc_sketch_init(&s, NULL);
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) rc_sketch_add(&s, v[i], 1);
  double t = (now_ns() - t0) / (double)n;
  g_sink = (double)rc_sketch_count(&s);
  rc_sketch_close(&s);
  return t;
}

typedef int32_t (*index_fn)(int, double);

static double time_index(index_fn fn, const double *v, size_t n) {
  int64_t acc = 0;
  double t0 = now_ns();
  for (size_t i = 0; i < n; i++) acc += fn(6, v[i]);
  double t = (now_ns() - t0) / (double)n;
  g_sink = (double)acc;
  return t;
}

static double time_quantile(const rc_sketch_t *s, int prom, int reps) {
  double acc = 0, out;
  double t0 = now_ns();
  for (int i = 0; i < reps; i++) {
    /* A q that changes a little each time keeps the call from being hoisted. */
    double q = 0.99 + (double)(i & 7) * 1e-4;
    if (prom)
      rc_sketch_quantile_prom(s, q, &out);
    else
      rc_sketch_quantile(s, q, &out);
    acc += out;
  }
  double t = (now_ns() - t0) / reps;
  g_sink = acc;
  return t;
}

static double time_merge10(rc_sketch_t *const *slots, int reps) {
  rc_sketch_t w;
  rc_sketch_init(&w, NULL);
  double t0 = now_ns();
  for (int r = 0; r < reps; r++) {
    rc_sketch_clear(&w);
    for (int i = 0; i < 10; i++) rc_sketch_merge(&w, slots[i]);
  }
  double t = (now_ns() - t0) / reps;
  g_sink = (double)rc_sketch_count(&w);
  rc_sketch_close(&w);
  return t;
}

/* Lognormal latencies around 100 ms (sigma in natural-log units). */
static void latencies(double *v, size_t n, double sigma) {
  for (size_t i = 0; i < n; i++) v[i] = 0.1 * exp(sigma * rng_normal());
}

static void footprint(int schema, size_t n, double sigma) {
  enum { SKETCHES = 1000 };
  double v[300], sum_grown = 0, sum_shrunk = 0;
  size_t max_grown = 0, max_shrunk = 0;
  rc_sketch_opts_t o = RC_SKETCH_OPTS_DEFAULT;
  o.schema = schema;
  for (int k = 0; k < SKETCHES; k++) {
    rc_sketch_t s;
    rc_sketch_init(&s, &o);
    latencies(v, n, sigma);
    for (size_t i = 0; i < n; i++) rc_sketch_add(&s, v[i], 1);
    size_t g = rc_sketch_footprint(&s);
    rc_sketch_shrink(&s);
    size_t sh = rc_sketch_footprint(&s);
    sum_grown += (double)g;
    sum_shrunk += (double)sh;
    if (g > max_grown) max_grown = g;
    if (sh > max_shrunk) max_shrunk = sh;
    rc_sketch_close(&s);
  }
  printf("bytes/sketch  schema %d  %3zu values  sigma %.1f : %6.0f mean, %5zu max; shrunk %6.0f "
         "mean, %5zu max\n",
         schema, n, sigma, sum_grown / SKETCHES, max_grown, sum_shrunk / SKETCHES, max_shrunk);
}

int main(int argc, char **argv) {
  int rounds = 7;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else {
      fprintf(stderr, "usage: %s [--rounds N]\n", argv[0]);
      return 2;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 7;
  for (int j = 0; j < 64; j++) g_frac[j] = rc_sketch_upper_bound(6, j) / 2;

  double *uni = malloc(N_VALUES * sizeof(double)), *logn = malloc(N_VALUES * sizeof(double));
  if (uni == NULL || logn == NULL) return 1;
  for (size_t i = 0; i < N_VALUES; i++) uni[i] = 0.001 + rng_unit(); /* 1 ms .. 1 s */
  latencies(logn, N_VALUES, 1.0);

  /* Agreement first: a benchmark of a wrong answer is worthless. */
  size_t naive_wrong = 0, search_wrong = 0;
  for (size_t i = 0; i < N_VALUES; i++) {
    int32_t want = rc_sketch_index(6, logn[i]);
    naive_wrong += index_naive_log(6, logn[i]) != want;
    search_wrong += index_frexp_search(6, logn[i]) != want;
  }

  double r[7][MAX_ROUNDS];
  for (int k = 0; k < rounds; k++) {
    r[0][k] = time_add(uni, N_VALUES);
    r[1][k] = time_add(logn, N_VALUES);
    r[2][k] = time_index(rc_sketch_index, logn, N_VALUES);
    r[3][k] = time_index(index_naive_log, logn, N_VALUES);
    r[4][k] = time_index(index_frexp_search, logn, N_VALUES);
  }
  printf("sketch_bench: median of %d rounds, schema %d (alpha %.4f%%), one core\n", rounds,
         RC_SKETCH_DEFAULT_SCHEMA, 100 * rc_sketch_alpha(RC_SKETCH_DEFAULT_SCHEMA));
  printf("add           uniform 1ms..1s          : %6.2f ns/add\n", median(r[0], rounds));
  printf("add           lognormal (100ms, s=1)    : %6.2f ns/add\n", median(r[1], rounds));
  printf("index only    table (rc_sketch_index)   : %6.2f ns\n", median(r[2], rounds));
  printf("index only    naive ceil(log2 v * 2^n)  : %6.2f ns  (%zu of %u values disagree)\n",
         median(r[3], rounds), naive_wrong, N_VALUES);
  printf("index only    frexp + binary search     : %6.2f ns  (%zu disagree)\n",
         median(r[4], rounds), search_wrong);

  /* Queries: a 5-minute sketch of 300 values, and one of 1M values. */
  rc_sketch_t small, big;
  rc_sketch_init(&small, NULL);
  rc_sketch_init(&big, NULL);
  for (size_t i = 0; i < 300; i++) rc_sketch_add(&small, logn[i], 1);
  for (size_t i = 0; i < N_VALUES; i++) rc_sketch_add(&big, logn[i], 1);
  for (int k = 0; k < rounds; k++) {
    r[0][k] = time_quantile(&small, 0, 200000);
    r[1][k] = time_quantile(&small, 1, 200000);
    r[2][k] = time_quantile(&big, 0, 50000);
    r[3][k] = time_quantile(&big, 1, 50000);
  }
  printf("quantile      q=0.99, 300 values        : %6.1f ns (DDSketch), %6.1f ns (PromQL)\n",
         median(r[0], rounds), median(r[1], rounds));
  printf("quantile      q=0.99, 1M values         : %6.1f ns (DDSketch), %6.1f ns (PromQL)\n",
         median(r[2], rounds), median(r[3], rounds));
  rc_sketch_close(&small);
  rc_sketch_close(&big);

  /* Merges: ten slots into a window sketch that keeps its buffers between rounds. */
  rc_sketch_t *s30[10], *s1k[10];
  for (int i = 0; i < 10; i++) {
    s30[i] = rc_sketch_new(NULL);
    s1k[i] = rc_sketch_new(NULL);
    for (size_t k = 0; k < 30; k++) rc_sketch_add(s30[i], logn[1000 * i + k], 1);
    for (size_t k = 0; k < 1000; k++) rc_sketch_add(s1k[i], logn[100000 + 1000 * i + k], 1);
  }
  for (int k = 0; k < rounds; k++) {
    r[0][k] = time_merge10(s30, 20000);
    r[1][k] = time_merge10(s1k, 5000);
  }
  printf("merge 10      slots of 30 values        : %6.0f ns per window (%5.0f ns/merge)\n",
         median(r[0], rounds), median(r[0], rounds) / 10);
  printf("merge 10      slots of 1000 values      : %6.0f ns per window (%5.0f ns/merge)\n",
         median(r[1], rounds), median(r[1], rounds) / 10);
  for (int i = 0; i < 10; i++) {
    rc_sketch_free(s30[i]);
    rc_sketch_free(s1k[i]);
  }

  printf("sizeof(rc_sketch_t) = %zu\n", sizeof(rc_sketch_t));
  for (int schema = 6; schema >= 5; schema--) {
    footprint(schema, 300, 0.5);
    footprint(schema, 300, 1.0);
    footprint(schema, 20, 0.5);
    footprint(schema, 20, 1.0);
  }
  free(uni);
  free(logn);
  return 0;
}
