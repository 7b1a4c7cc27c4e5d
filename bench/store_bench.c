/* store_bench.c: the series store in-process, for the issue 3 figures that do not need HTTP:
 *   - apply rate: samples/s through rc_store_apply (hash, decision, append) on one core;
 *   - memory: bytes per selected series (the store's accountant, mem.h: usable bytes of every
 *     block, less what the store held before its first series) and per unselected series
 *     (process RSS growth attributed to the decision cache), for 5 minutes (--minutes) of
 *     samples at a 15 s and a 1 s interval;
 *   - query cost: a 5m rate over 1,000 series and a p99 merged over the same 1,000 series
 *     (every sample of their windows into one sketch).
 * Batches are built in memory (no decode), the way the ingest consumer hands them over.
 * Usage: store_bench [--series N] [--selected-every K] [--interval-ms MS] [--rounds R]
 *                    [--minutes M]   (M minutes of samples, retention M minutes)
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "query.h"
#include "selector.h"
#include "selindex.h"
#include "sketch.h"
#include "store.h"

#define NLABELS 9

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f == NULL) return 0;
  if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
  fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

typedef struct gen {
  uint32_t n;
  char (*vals)[NLABELS][48];
  rc_label_t (*labels)[NLABELS];
  double *value;
} gen_t;

static const char *const names[NLABELS] = {"__name__", "code", "env", "instance", "job",
                                           "method", "sel", "service", "version"};

static int gen_init(gen_t *g, uint32_t n, uint32_t every) {
  g->n = n;
  g->vals = calloc(n, sizeof(*g->vals));
  g->labels = calloc(n, sizeof(*g->labels));
  g->value = calloc(n, sizeof(double));
  if (!g->vals || !g->labels || !g->value) return -1;
  for (uint32_t i = 0; i < n; i++) {
    snprintf(g->vals[i][0], 48, "http_requests_total");
    snprintf(g->vals[i][1], 48, "%d", (int[]){200, 404, 500, 503}[i % 4]);
    snprintf(g->vals[i][2], 48, "production");
    snprintf(g->vals[i][3], 48, "10.%u.%u.%u:8080", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    snprintf(g->vals[i][4], 48, "checkout-api");
    snprintf(g->vals[i][5], 48, "%s", (const char *[]){"GET", "POST"}[(i / 4) % 2]);
    snprintf(g->vals[i][6], 48, "%s", i % every == 0 ? "yes" : "no");
    snprintf(g->vals[i][7], 48, "svc-%u", i % 50);
    snprintf(g->vals[i][8], 48, "v1.%u", i % 7);
    for (int k = 0; k < NLABELS; k++) {
      g->labels[i][k].name = names[k];
      g->labels[i][k].name_len = (uint32_t)strlen(names[k]);
      g->labels[i][k].value = g->vals[i][k];
      g->labels[i][k].value_len = (uint32_t)strlen(g->vals[i][k]);
    }
  }
  return 0;
}

/* One batch holding one sample for every series in [from, to) at ts. */
static void make_batch(gen_t *g, uint32_t from, uint32_t to, int64_t ts, rc_batch_t *b,
                       rc_series_t *series, rc_sample_t *samples) {
  memset(b, 0, sizeof(*b));
  for (uint32_t i = from; i < to; i++) {
    rc_series_t *s = &series[i - from];
    memset(s, 0, sizeof(*s));
    g->value[i] += (double)((i * 7 + (uint32_t)(ts / 1000)) % 50);
    samples[i - from] = (rc_sample_t){.value = g->value[i], .ts_ms = ts};
    s->labels = g->labels[i];
    s->nlabels = NLABELS;
    s->metric = g->vals[i][0];
    s->metric_len = (uint32_t)strlen(g->vals[i][0]);
    s->samples = &samples[i - from];
    s->nsamples = 1;
  }
  b->series = series;
  b->nseries = to - from;
  b->nsamples = to - from;
}

typedef struct qctx {
  int64_t t;
  double sink;
  uint32_t n, max;
  rc_sketch_t *sk;
} qctx_t;

static int rate_cb(void *ctx, rc_store_series_t *r) {
  qctx_t *q = ctx;
  double v;
  if (q->n >= q->max) return 1;
  if (rc_window_eval(&r->win, RC_FN_RATE, 0, q->t, 300000, RC_COMPAT_PROM3, &v) == 0) q->sink += v;
  q->n++;
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  uint32_t n = 100000, every = 10, rounds = 5;
  int64_t interval = 15000, minutes = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--series")) n = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--selected-every")) every = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--interval-ms")) interval = atoll(argv[i + 1]);
    else if (!strcmp(argv[i], "--rounds")) rounds = (uint32_t)atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--minutes")) minutes = atoll(argv[i + 1]);
    else {
      fprintf(stderr, "store_bench: unknown flag %s\n", argv[i]);
      return 2;
    }
  }
  if (n == 0 || every == 0 || interval <= 0 || rounds == 0 || minutes <= 0) {
    fprintf(stderr, "store_bench: bad arguments\n");
    return 2;
  }
  gen_t g;
  if (gen_init(&g, n, every) != 0) return 1;
  rc_selector_t *sel = NULL;
  rc_err_t err = {0};
  const char *text = "http_requests_total{sel=\"yes\"}";
  if (rc_selector_parse(text, strlen(text), 0, &sel, &err) != 0) return 1;
  rc_selindex_entry_t e = {.sel = sel, .id = 1};
  rc_selindex_t *idx = NULL;
  if (rc_selindex_build(&e, 1, &idx) != 0) return 1;

  uint32_t per_batch = 500;
  rc_series_t *series = calloc(per_batch, sizeof(*series));
  rc_sample_t *samples = calloc(per_batch, sizeof(*samples));
  int64_t steps = minutes * 60000 / interval;
  double apply_rates[16], rate_us[16], p99_us[16];
  if (rounds > 16) rounds = 16;
  uint64_t sel_bytes = 0, nsel = 0;
  long rss_growth = 0;
  for (uint32_t round = 0; round < rounds; round++) {
    /* Sized as an operator would: room for twice the selected series, and a decision for
     * every active series. */
    rc_store_cfg_t cfg = {.max_series = 2 * (n / every + 1), .cache_entries = n,
                          .window = RC_WINDOW_CFG_DEFAULT};
    cfg.window.retention_ms = minutes * 60000;
    rc_store_t *st = NULL;
    long rss0 = rss_kib();
    if (rc_store_new(&cfg, idx, &st) != 0) return 1;
    rc_store_stats_t s0;
    rc_store_stats(st, &s0); /* the table and the decision cache, before any series */
    memset(g.value, 0, n * sizeof(double));
    double t0 = now_s();
    uint64_t applied = 0;
    int64_t ts = 1700000000000;
    for (int64_t step = 0; step <= steps; step++, ts += interval) {
      for (uint32_t from = 0; from < n; from += per_batch) {
        uint32_t to = from + per_batch < n ? from + per_batch : n;
        rc_batch_t b;
        make_batch(&g, from, to, ts, &b, series, samples);
        if (rc_store_apply(st, &b) != 0) return 1;
        applied += to - from;
      }
    }
    double el = now_s() - t0;
    apply_rates[round] = (double)applied / el;
    rc_store_stats_t ss;
    rc_store_stats(st, &ss);
    sel_bytes = ss.bytes - s0.bytes;
    nsel = ss.series;
    if (round == 0) rss_growth = rss_kib() - rss0; /* later rounds reuse freed heap */
    /* Query cost over 1,000 selected series at the last timestamp. */
    qctx_t q = {.t = ts - interval, .max = 1000};
    t0 = now_s();
    rc_store_foreach(st, 1, rate_cb, &q);
    rate_us[round] = (now_s() - t0) * 1e6;
    /* Merged p99 through the rule engine's interface (query.h): collect, sketch, quantile. */
    rc_sketch_t sk;
    rc_sketch_init(&sk, NULL);
    rc_query_t qq;
    rc_query_set_t set = {0};
    rc_query_init(&qq, &st, 1);
    t0 = now_s();
    rc_query_begin(&qq);
    rc_query_collect(&qq, 1, &set);
    if (set.n > 1000) set.n = 1000;
    rc_query_sketch(&set, ts - interval, 300000, RC_COMPAT_PROM3, &sk);
    double p99;
    rc_sketch_quantile(&sk, 0.99, &p99);
    rc_query_end(&qq);
    p99_us[round] = (now_s() - t0) * 1e6;
    rc_query_set_free(&set);
    rc_sketch_close(&sk);
    if (q.n != 1000 && nsel >= 1000) fprintf(stderr, "store_bench: only %u series queried\n", q.n);
    rc_store_free(st);
  }
  qsort(apply_rates, rounds, sizeof(double), cmp_double);
  qsort(rate_us, rounds, sizeof(double), cmp_double);
  qsort(p99_us, rounds, sizeof(double), cmp_double);
  uint64_t nunsel = n - nsel;
  /* RSS growth minus what the selected series hold is what the unselected ones cost
   * (decision cache slots, and the series table's share). */
  double unsel_b = nunsel ? ((double)rss_growth * 1024 - (double)sel_bytes) / (double)nunsel : 0;
  printf("store_bench: %u series, %" PRIu64 " selected, %" PRId64 " min at %" PRId64
         " ms, %u rounds, medians\n", n, nsel, minutes, interval, rounds);
  printf("  apply             %10.0f samples/s (one core: hash, decision, append)\n",
         apply_rates[rounds / 2]);
  printf("  selected series   %10.0f B each (accounted: usable bytes of the store's blocks)\n",
         nsel ? (double)sel_bytes / (double)nsel : 0);
  printf("  unselected series %10.0f B each (RSS growth not held by selected series)\n", unsel_b);
  printf("  5m rate x1000     %10.0f us\n", rate_us[rounds / 2]);
  printf("  p99 over 1000     %10.0f us (all window samples into one sketch)\n", p99_us[rounds / 2]);
  rc_selindex_free(idx);
  rc_selector_free(sel);
  free(series);
  free(samples);
  return 0;
}
