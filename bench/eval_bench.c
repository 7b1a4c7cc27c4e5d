/* eval_bench.c: what rule evaluation costs — R rules, each an error ratio
 *   sum(rate(http_requests_total{service="sI", code=~"5.."}[5m]))
 *     / sum(rate(http_requests_total{service="sI"}[5m]))
 * over S selected series in total (S/R per service, 5 minutes of samples at 15 s), evaluated
 * in process by the engine (rc_engine_eval_once: every trigger, as the timer does). It prints
 * the median time of a full round and per trigger; a batch that touches one service costs one
 * trigger's evaluation, since the engine evaluates only the triggers whose series changed.
 * Default sizes: 100 rules over 10k series, then 10x the rules and 10x the series.
 *
 * --interval S spaces the samples S seconds apart (default 15; 1 puts 301 samples in each
 * 5m window instead of 21, which is what a 1 s scrape costs the window maths).
 *
 * usage: eval_bench [--rounds N] [--interval S]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "engine.h"
#include "rules.h"
#include "store.h"

#define T0 1700000000000LL

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* One batch with every series of the run at one timestamp, built directly in an arena. */
static rc_batch_t *make_batch(uint32_t rules, uint32_t per_rule, int64_t ts, int round) {
  rc_arena_t a;
  rc_arena_init(&a, 1 << 20, 1ull << 34);
  rc_batch_t *b = rc_arena_alloc(&a, sizeof(*b));
  memset(b, 0, sizeof(*b));
  uint32_t n = rules * per_rule;
  b->series = rc_arena_alloc(&a, n * sizeof(rc_series_t));
  static const char *const codes[] = {"200", "201", "404", "500"};
  for (uint32_t i = 0; i < n; i++) {
    rc_label_t *l = rc_arena_alloc(&a, 4 * sizeof(rc_label_t));
    char *buf = rc_arena_alloc(&a, 64);
    uint32_t svc = i / per_rule, k = i % per_rule;
    int sl = snprintf(buf, 32, "s%u", svc), il = snprintf(buf + 32, 32, "i%u", k / 4);
    l[0] = (rc_label_t){"__name__", "http_requests_total", 8, 19};
    l[1] = (rc_label_t){"code", codes[k % 4], 4, 3};
    l[2] = (rc_label_t){"instance", buf + 32, 8, (uint32_t)il};
    l[3] = (rc_label_t){"service", buf, 7, (uint32_t)sl};
    rc_sample_t *s = rc_arena_alloc(&a, sizeof(rc_sample_t));
    *s = (rc_sample_t){.value = (double)(round * (k % 4 == 3 ? 1 : 20)), .ts_ms = ts};
    b->series[i] = (rc_series_t){.labels = l, .nlabels = 4, .metric = l[0].value,
                                 .metric_len = 19, .samples = s, .nsamples = 1};
  }
  b->nseries = n;
  b->nsamples = n;
  b->arena = a;
  return b;
}

static int interval_s = 15;

static int run(uint32_t rules, uint32_t series, int rounds, double *round_ms) {
  uint32_t per_rule = series / rules;
  rc_buf_t y;
  rc_buf_init(&y);
  rc_buf_puts(&y, "rollbacks:\n");
  for (uint32_t r = 0; r < rules; r++)
    rc_buf_printf(&y,
                  "  - service: s%u\n    environment: bench\n    triggers:\n"
                  "      - name: error_ratio\n        expr: 'sum(rate(http_requests_total{service=\"s%u\", "
                  "code=~\"5..\"}[5m])) / sum(rate(http_requests_total{service=\"s%u\"}[5m]))'\n"
                  "        threshold: 0.5\n    action:\n      type: previous_version\n",
                  r, r, r);
  rc_ruleset_t set = {0};
  rc_diags_t d = {0};
  rc_rules_cfg_t rcfg = {.scrape_interval_ms = 15000};
  if (rc_rules_load_buffer("bench.yml", y.data, y.len, &rcfg, &set, &d) != 0) {
    rc_diags_print(&d, stderr);
    return 1;
  }
  rc_diags_free(&d);
  rc_buf_free(&y);
  rc_engine_cfg_t ecfg = {.compat = RC_COMPAT_PROM3};
  rc_engine_t *eng = NULL;
  rc_err_t err = {0};
  if (rc_engine_new(&ecfg, &set, NULL, 0, &eng, &err) != 0) return 1;
  rc_store_cfg_t sc = {.max_series = series * 2, .cache_entries = series * 2, .readers = 1,
                       .window = RC_WINDOW_CFG_DEFAULT};
  rc_store_t *st = NULL;
  if (rc_store_new(&sc, rc_engine_index(eng), &st) != 0) return 1;
  int steps = 300 / interval_s; /* 5 minutes */
  for (int k = 0; k <= steps; k++) {
    rc_batch_t *b = make_batch(rules, per_rule, T0 + (int64_t)k * interval_s * 1000, k);
    if (rc_store_apply(st, b) != 0) return 1;
    rc_batch_free(b);
  }
  rc_store_stats_t ss;
  rc_store_stats(st, &ss);
  double *t = calloc((size_t)rounds, sizeof(double));
  for (int i = 0; i < rounds; i++) {
    double t0 = now_s();
    if (rc_engine_eval_once(eng, &st, 1, T0 + (int64_t)steps * interval_s * 1000 + 1000) != 0)
      return 1;
    t[i] = (now_s() - t0) * 1e3;
  }
  qsort(t, (size_t)rounds, sizeof(double), cmp_double);
  *round_ms = t[rounds / 2];
  rc_trigger_status_t s;
  rc_engine_status(eng, 0, 0, &s);
  printf("  %5u rules x %6u series (%4u per rule, %" PRIu64 " stored): round %8.3f ms, "
         "%7.2f us per trigger (value %.4f, failures %" PRIu64 ")\n",
         rules, series, per_rule, ss.series, *round_ms, *round_ms * 1e3 / rules, s.value,
         s.failures);
  free(t);
  rc_engine_free(eng);
  rc_store_free(st);
  return 0;
}

int main(int argc, char **argv) {
  int rounds = 9;
  for (int i = 1; i + 1 < argc; i += 2)
    if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--interval") == 0) interval_s = atoi(argv[i + 1]);
  if (rounds < 1) rounds = 1;
  if (interval_s < 1 || interval_s > 300) interval_s = 15;
  printf("eval_bench: error-ratio rules, 5 min of %d s samples, %d rounds, medians\n", interval_s,
         rounds);
  double base, more_rules, more_series;
  if (run(100, 10000, rounds, &base) || run(1000, 10000, rounds, &more_rules) ||
      run(100, 100000, rounds, &more_series))
    return 1;
  printf("  10x rules: x%.1f per round; 10x series: x%.1f per round\n", more_rules / base,
         more_series / base);
  return 0;
}
