/* scale_bench.c: core scaling of the ingest workers — the recorded request bodies of an
 * `rwgen --dump` corpus replayed in process through rc_workers (decode, tally, route by series
 * hash, apply to the store shards) with 1 worker and with 2, side by side in each round.
 *
 * What is timed: from the first submit to the last batch applied (rc_workers_stop joins the
 * workers after everything in flight is done). Bodies are copied into their buffers before
 * the clock starts and max_inflight covers the whole corpus, so the submitting thread does
 * nothing but queue and then sleeps in the join: the figure is the workers' throughput. Each
 * pass starts from an empty store, so every pass appends the same samples to the same
 * number of new series. Rounds alternate the worker counts (1, 2, 1, 2, ...) so that a noisy
 * neighbour hurts both alike; the medians and the ratio of medians are reported.
 *
 * Selection: like bench/ingest with a config, the rules select about a tenth of rwgen's
 * series (see SELECT below), so the store does real work for those and drops the rest.
 *
 * Usage: scale_bench CORPUS_DIR [--rounds N] [--max-workers W] [--json]
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "cli.h"
#include "corpus.h"
#include "selector.h"
#include "selindex.h"
#include "stats.h"
#include "tally.h"
#include "workers.h"

/* Per rwgen target: 4 of its 40 float series (up, process CPU, and the two code="500"
 * request counters), plus nothing of the native histograms: ~10 % of all series. */
static const char *const SELECT[] = {
    "up",
    "process_cpu_seconds_total",
    "http_requests_total{code=\"500\"}",
};
#define NSELECT (sizeof(SELECT) / sizeof(SELECT[0]))

typedef struct pass {
  double seconds, cpu_seconds;
  uint64_t appended, dropped;
  _Atomic uint64_t done, bad;
} pass_t;

static void on_done(void *ctx, void *token, const rc_work_result_t *r) {
  pass_t *p = ctx;
  (void)token;
  atomic_fetch_add(&p->done, 1);
  if (r->status != 204) atomic_fetch_add(&p->bad, 1);
}

static double cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int run_pass(const corpus_t *c, uint32_t workers, const rc_selindex_t *idx,
                    const rc_options_t *defaults, pass_t *out) {
  rc_tally_t tally;
  if (rc_tally_init(&tally, 10000) != 0) return -1;
  rc_workers_cfg_t wc = {.nworkers = workers, .max_inflight = (uint32_t)c->n + 1,
                         .limits = defaults->ingest.limits, .store = defaults->store,
                         .idx = idx, .tally = &tally, .done_cb = on_done, .ctx = out};
  wc.store.readers = 1; /* as the daemon runs it */
  wc.store.max_ahead_ms = 0; /* rwgen's timestamps may be anywhere */
  rc_workers_t ws;
  rc_err_t err = {0};
  if (rc_workers_init(&ws, &wc, &err) != 0) {
    fprintf(stderr, "scale_bench: error: %s\n", err.msg);
    rc_tally_close(&tally);
    return -1;
  }
  rc_buf_t *bodies = calloc(c->n, sizeof(*bodies));
  rc_work_slot_t **slots = calloc(c->n, sizeof(*slots));
  int rc = bodies && slots ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < c->n; i++) {
    rc_buf_init(&bodies[i]);
    rc_buf_append(&bodies[i], c->p[i].data, c->p[i].len);
    int r;
    slots[i] = rc_workers_reserve(&ws, &r);
    if (bodies[i].oom || slots[i] == NULL) rc = -1;
  }
  atomic_store(&out->done, 0);
  atomic_store(&out->bad, 0);
  if (rc == 0 && rc_workers_start(&ws, &err) == 0) {
    uint64_t t0 = uv_hrtime();
    double c0 = cpu_now();
    for (size_t i = 0; i < c->n; i++)
      rc_workers_submit(&ws, slots[i], c->protocol, &bodies[i], t0, NULL);
    rc_workers_stop(&ws);
    out->seconds = (double)(uv_hrtime() - t0) / 1e9;
    out->cpu_seconds = cpu_now() - c0;
    rc_store_stats_t st;
    rc_workers_store_stats(&ws, &st);
    out->appended = st.appended;
    out->dropped = st.dropped_samples;
    if (atomic_load(&out->done) != c->n || atomic_load(&out->bad) != 0) {
      fprintf(stderr, "scale_bench: error: %" PRIu64 " answers, %" PRIu64 " not 204\n",
              (uint64_t)atomic_load(&out->done), (uint64_t)atomic_load(&out->bad));
      rc = -1;
    }
  } else {
    rc = -1;
  }
  for (size_t i = 0; bodies != NULL && i < c->n; i++) rc_buf_free(&bodies[i]);
  free(bodies);
  free(slots);
  rc_workers_close(&ws);
  rc_tally_close(&tally);
  return rc;
}

/* The machine's own ceiling for two cores on this work: two independent single-worker pools
 * (separate stores, tallies, decoders), each replaying the whole corpus, at the same time.
 * Shared caches, memory bandwidth and a hypervisor's idea of "2 cores" all show up here, so
 * the 2-worker figure is judged against what two cores can do at all. */
typedef struct pair_arg {
  const corpus_t *c;
  const rc_selindex_t *idx;
  const rc_options_t *o;
  pass_t p;
  int rc;
} pair_arg_t;

static void pair_thread(void *arg) {
  pair_arg_t *a = arg;
  a->rc = run_pass(a->c, 1, a->idx, a->o, &a->p);
}

/* Returns the combined samples/s of two concurrent single-worker passes, or -1. */
static double pair_pass(const corpus_t *c, const rc_selindex_t *idx, const rc_options_t *o) {
  pair_arg_t a[2] = {{.c = c, .idx = idx, .o = o}, {.c = c, .idx = idx, .o = o}};
  uv_thread_t t[2];
  for (int i = 0; i < 2; i++)
    if (uv_thread_create(&t[i], pair_thread, &a[i]) != 0) return -1;
  for (int i = 0; i < 2; i++) uv_thread_join(&t[i]);
  if (a[0].rc != 0 || a[1].rc != 0) return -1;
  double total = (double)(c->samples + c->histograms);
  return total / a[0].p.seconds + total / a[1].p.seconds;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *dir = NULL;
  int rounds = 5, json_only = 0;
  uint32_t max_workers = 2;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--max-workers") == 0 && i + 1 < argc)
      max_workers = (uint32_t)atoi(argv[++i]);
    else if (strcmp(argv[i], "--json") == 0) json_only = 1;
    else if (argv[i][0] != '-' && dir == NULL) dir = argv[i];
    else {
      fprintf(stderr, "usage: scale_bench CORPUS_DIR [--rounds N] [--max-workers W] [--json]\n");
      return 2;
    }
  }
  if (dir == NULL || rounds < 1 || rounds > 100 || max_workers < 1 || max_workers > 16) {
    fprintf(stderr, "usage: scale_bench CORPUS_DIR [--rounds N] [--max-workers W] [--json]\n");
    return 2;
  }
  corpus_t c;
  if (bench_corpus_load(dir, &c) != 0) {
    bench_corpus_free(&c);
    return 1;
  }
  rc_stats_init(0);
  rc_options_t o;
  rc_err_t err = {0};
  char *av[] = {"ripcord", "serve", NULL};
  if (rc_cli_parse(2, av, &o, &err) != 0) {
    fprintf(stderr, "scale_bench: error: %s\n", err.msg);
    return 1;
  }
  rc_selector_t *sel[NSELECT];
  rc_selindex_entry_t ent[NSELECT];
  for (size_t i = 0; i < NSELECT; i++) {
    if (rc_selector_parse(SELECT[i], strlen(SELECT[i]), 0, &sel[i], &err) != 0) return 1;
    ent[i] = (rc_selindex_entry_t){.sel = sel[i], .id = (uint32_t)i};
  }
  rc_selindex_t *idx = NULL;
  if (rc_selindex_build(ent, NSELECT, &idx) != 0) return 1;

  double *secs = calloc((size_t)rounds * max_workers, sizeof(double));
  double *cpu = calloc((size_t)rounds * max_workers, sizeof(double));
  pass_t p = {0};
  double *pair = calloc((size_t)rounds, sizeof(double));
  uint64_t appended[17] = {0};
  for (int r = 0; r < rounds; r++) {
    for (uint32_t w = 1; w <= max_workers; w++) {
      if (run_pass(&c, w, idx, &o, &p) != 0) return 1;
      secs[(w - 1) * (size_t)rounds + (size_t)r] = p.seconds;
      cpu[(w - 1) * (size_t)rounds + (size_t)r] = p.cpu_seconds;
      if (appended[w] != 0 && appended[w] != p.appended) {
        fprintf(stderr, "scale_bench: error: %u workers stored %" PRIu64 " samples, before %" PRIu64
                        "\n", w, p.appended, appended[w]);
        return 1;
      }
      appended[w] = p.appended;
    }
    if (max_workers >= 2 && (pair[r] = pair_pass(&c, idx, &o)) < 0) return 1;
  }
  if (max_workers > 1 && appended[1] != appended[2]) {
    fprintf(stderr, "scale_bench: error: 1 and 2 workers stored different sample counts\n");
    return 1;
  }
  uint64_t total = c.samples + c.histograms;
  json_t *res = json_object();
  double base = 0;
  if (!json_only)
    printf("corpus: %zu requests, %" PRIu64 " samples + %" PRIu64 " histograms, %" PRIu64
           " series; stored %" PRIu64 " samples (selected series)\n",
           c.n, c.samples, c.histograms, c.series, appended[1]);
  for (uint32_t w = 1; w <= max_workers; w++) {
    double *v = &secs[(w - 1) * (size_t)rounds], *cv = &cpu[(w - 1) * (size_t)rounds];
    qsort(v, (size_t)rounds, sizeof(double), cmp_double);
    qsort(cv, (size_t)rounds, sizeof(double), cmp_double);
    double cpu_rate = (double)total / cv[rounds / 2];
    double med = v[rounds / 2];
    double rate = (double)total / med;
    if (w == 1) base = rate;
    if (!json_only)
      printf("workers=%u  median %.3f s  %.2f M samples/s  (min %.3f, max %.3f)  x%.2f  "
             "%.2f M samples/CPU-s\n", w, med, rate / 1e6, v[0], v[rounds - 1], rate / base,
             cpu_rate / 1e6);
    char key[32];
    snprintf(key, sizeof(key), "workers_%u", w);
    json_object_set_new(res, key, json_pack("{s:f,s:f,s:f}", "median_s", med, "samples_per_s", rate,
                                               "samples_per_cpu_s", cpu_rate));
  }
  if (max_workers >= 2) {
    qsort(pair, (size_t)rounds, sizeof(double), cmp_double);
    double pm = pair[rounds / 2];
    if (!json_only)
      printf("ceiling: two independent 1-worker pools at once  %.2f M samples/s  x%.2f\n",
             pm / 1e6, pm / base);
    json_object_set_new(res, "two_independent_pools",
                        json_pack("{s:f,s:f}", "samples_per_s", pm, "ratio_to_1", pm / base));
  }
  json_object_set_new(res, "rounds", json_integer(rounds));
  char *js = json_dumps(res, JSON_COMPACT);
  printf("%s\n", js);
  free(js);
  json_decref(res);
  free(secs);
  free(cpu);
  free(pair);
  rc_selindex_free(idx);
  for (size_t i = 0; i < NSELECT; i++) rc_selector_free(sel[i]);
  bench_corpus_free(&c);
  return 0;
}
