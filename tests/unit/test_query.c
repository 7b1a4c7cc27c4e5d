/* test_query.c: the rule engine's interface to the store (query.h) — series collected across
 * shards, per-series range functions, the merged quantile sketch against exact quantiles of
 * the raw samples, native histograms stored through rc_store_apply and summed by
 * rc_query_hist_sum against hist_ref.c's reference, and classic histogram_quantile grouping
 * against hand-computed values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hist_ref.h"
#include "query.h"
#include "rw_decode.h"
#include "rwbuild.h"
#include "selector.h"
#include "selindex.h"
#include "store.h"

#define T0 1700000000000LL

typedef struct fx {
  rc_selector_t *sel;
  rc_selindex_t *idx;
  rc_store_t *st[2];
  rc_batch_t *keep[64]; /* batches whose raw histograms the reference reads */
  int nkeep;
} fx_t;

static void fx_init(fx_t *f, const char *selector) {
  memset(f, 0, sizeof(*f));
  rc_err_t err = {0};
  assert_int_equal(rc_selector_parse(selector, strlen(selector), 0, &f->sel, &err), 0);
  rc_selindex_entry_t e = {.sel = f->sel, .id = 7};
  assert_int_equal(rc_selindex_build(&e, 1, &f->idx), 0);
  rc_store_cfg_t c = {.max_series = 10000, .cache_entries = 1 << 14, .readers = 1,
                      .window = RC_WINDOW_CFG_DEFAULT};
  for (int i = 0; i < 2; i++) assert_int_equal(rc_store_new(&c, f->idx, &f->st[i]), 0);
}

static void fx_free(fx_t *f) {
  for (int i = 0; i < 2; i++) rc_store_free(f->st[i]);
  for (int i = 0; i < f->nkeep; i++) rc_batch_free(f->keep[i]);
  rc_selindex_free(f->idx);
  rc_selector_free(f->sel);
}

static rc_batch_t *decode(rwb_t *b) {
  rc_batch_t *batch = rwb_decode(b);
  assert_non_null(batch);
  return batch;
}

/* Routes each series of the batch to the shard its hash names, as the workers do. */
static void apply_sharded(fx_t *f, rc_batch_t *b) {
  uint32_t *idx[2];
  rc_selindex_hash_t *hs[2];
  uint32_t n[2] = {0, 0};
  for (int i = 0; i < 2; i++) {
    idx[i] = calloc(b->nseries + 1, sizeof(uint32_t));
    hs[i] = calloc(b->nseries + 1, sizeof(rc_selindex_hash_t));
  }
  for (uint32_t k = 0; k < b->nseries; k++) {
    rc_selindex_hash_t h = rc_selindex_hash_labels(b->series[k].labels, b->series[k].nlabels);
    int s = (int)(h.hi % 2);
    idx[s][n[s]] = k;
    hs[s][n[s]++] = h;
  }
  for (int i = 0; i < 2; i++) {
    assert_int_equal(rc_store_apply_part(f->st[i], b, idx[i], hs[i], n[i]), 0);
    free(idx[i]);
    free(hs[i]);
  }
}

static uint64_t g_rng = 88172645463325252ull;
static double rnd(void) { /* xorshift64, uniform in (0, 1) */
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

/*------------------------------------------------------------------------------------------*/

static void test_collect_and_eval(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "reqs");
  rwb_t *b = rwb_new(1);
  for (int s = 0; s < 40; s++) {
    char spec[64];
    snprintf(spec, sizeof(spec), "__name__=%s,instance=i%d", s % 4 == 3 ? "other" : "reqs", s);
    rwb_series(b, spec);
    for (int i = 0; i < 120; i++) rwb_sample(b, (double)(i * (s + 1) % 1000), T0 + i * 15000);
  }
  rc_batch_t *batch = decode(b);
  apply_sharded(&f, batch);
  rc_batch_free(batch);
  rc_query_t q;
  assert_int_equal(rc_query_init(&q, f.st, 2), 0);
  rc_query_set_t set = {0};
  rc_query_begin(&q);
  assert_int_equal(rc_query_collect(&q, 7, &set), 0);
  assert_int_equal(set.n, 30); /* every selected series once, from both shards */
  assert_int_equal(rc_query_collect(&q, 8, &set), 0); /* no such selector */
  assert_int_equal(set.n, 30);
  double out[30];
  uint8_t present[30];
  int64_t t = T0 + 119 * 15000;
  for (int fn = 0; fn < RC_FN__COUNT; fn++) {
    uint32_t k = rc_query_eval(&set, (rc_fn_t)fn, 0.9, t, 300000, RC_COMPAT_PROM3, out, present);
    assert_int_equal(k, 30);
    for (uint32_t i = 0; i < set.n; i++) {
      double want;
      assert_int_equal(rc_window_eval(&set.v[i]->win, (rc_fn_t)fn, 0.9, t, 300000,
                                      RC_COMPAT_PROM3, &want), 0);
      assert_memory_equal(&want, &out[i], sizeof(double)); /* bit for bit */
    }
  }
  /* Before any sample: PromQL outputs nothing. */
  assert_int_equal(rc_query_eval(&set, RC_FN_RATE, 0, T0 - 1, 300000, RC_COMPAT_PROM3, out,
                                 present), 0);
  assert_true(isnan(out[0]) && present[0] == 0);
  rc_query_end(&q);
  rc_query_set_free(&set);
  fx_free(&f);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* quantile_over_time's rank rule over sorted values. */
static double exact_q(const double *v, size_t n, double q) {
  double rank = q * (double)(n - 1);
  size_t lo = (size_t)floor(rank), hi = lo + 1 < n ? lo + 1 : lo;
  double w = rank - floor(rank);
  return v[lo] * (1 - w) + v[hi] * w;
}

static void test_merged_sketch(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "latency");
  rwb_t *b = rwb_new(1);
  enum { NS = 50, NP = 600 };
  double *all = malloc(NS * NP * sizeof(double));
  size_t nall = 0;
  int64_t t = T0 + (NP - 1) * 1000, range = 300000;
  for (int s = 0; s < NS; s++) {
    char spec[64];
    snprintf(spec, sizeof(spec), "__name__=latency,pod=p%d", s);
    rwb_series(b, spec);
    for (int i = 0; i < NP; i++) {
      int64_t ts = T0 + i * 1000;
      /* lognormal latencies around 80 ms, a slow pod every tenth */
      double v = exp(log(0.08) + 0.6 * sqrt(-2 * log(rnd())) * cos(6.283185307179586 * rnd()));
      if (s % 10 == 0) v *= 4;
      if (i == 450 && s == 3) v = NAN; /* a NaN sample: ignored by the sketch */
      rwb_sample(b, v, ts);
      if (ts > t - range && !isnan(v)) all[nall++] = v;
    }
  }
  rc_batch_t *batch = decode(b);
  apply_sharded(&f, batch);
  rc_batch_free(batch);
  rc_query_t q;
  assert_int_equal(rc_query_init(&q, f.st, 2), 0);
  rc_query_set_t set = {0};
  rc_query_begin(&q);
  assert_int_equal(rc_query_collect(&q, 7, &set), 0);
  assert_int_equal(set.n, NS);
  rc_sketch_t sk;
  assert_int_equal(rc_sketch_init(&sk, NULL), 0);
  assert_int_equal(rc_query_sketch(&set, t, range, RC_COMPAT_PROM3, &sk), 0);
  assert_int_equal(rc_sketch_count(&sk), nall);
  qsort(all, nall, sizeof(double), cmp_d);
  double alpha = rc_sketch_alpha(RC_SKETCH_DEFAULT_SCHEMA);
  static const double qs[] = {0.5, 0.9, 0.99, 0.999};
  for (size_t i = 0; i < 4; i++) {
    double got, want = exact_q(all, nall, qs[i]);
    assert_int_equal(rc_sketch_quantile(&sk, qs[i], &got), 0);
    if (fabs(got - want) > alpha * want) fail_msg("q%.3f: sketch %.9g exact %.9g", qs[i], got, want);
  }
  /* Merging per-series sketches gives the same buckets as one pass over the union. */
  rc_sketch_t merged, one;
  assert_int_equal(rc_sketch_init(&merged, NULL), 0);
  for (uint32_t i = 0; i < set.n; i++) {
    rc_query_set_t single = {.v = &set.v[i], .n = 1, .cap = 1};
    assert_int_equal(rc_sketch_init(&one, NULL), 0);
    assert_int_equal(rc_query_sketch(&single, t, range, RC_COMPAT_PROM3, &one), 0);
    assert_int_equal(rc_sketch_merge(&merged, &one), 0);
    rc_sketch_close(&one);
  }
  assert_true(rc_sketch_equal(&merged, &sk));
  /* 2.x windows include the left edge: one more sample per series here. */
  rc_sketch_t sk2;
  assert_int_equal(rc_sketch_init(&sk2, NULL), 0);
  assert_int_equal(rc_query_sketch(&set, t, range, RC_COMPAT_PROM2, &sk2), 0);
  assert_int_equal(rc_sketch_count(&sk2), nall + NS);
  rc_sketch_close(&sk2);
  rc_sketch_close(&merged);
  rc_sketch_close(&sk);
  rc_query_end(&q);
  rc_query_set_free(&set);
  free(all);
  fx_free(&f);
}

/* Native histograms go through decode and rc_store_apply_part like everything else, then
 * sum(rate()) and histogram_quantile() agree with the reference over the raw samples. */
static void test_native_hist_sum(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "rpc_seconds");
  enum { NS = 3, NP = 40 };
  int64_t t = T0 + (NP - 1) * 15000 + 7000; /* not aligned to the samples */
  /* One batch per scrape, as Prometheus sends; kept for the reference. */
  uint64_t acc[NS][6] = {{0}};
  for (int i = 0; i < NP; i++) {
    rwb_t *b = rwb_new(1);
    for (int s = 0; s < NS; s++) {
      char spec[64];
      snprintf(spec, sizeof(spec), "__name__=rpc_seconds,pod=p%d", s);
      rwb_series(b, spec);
      if (s == 1 && i == 25) memset(acc[s], 0, sizeof(acc[s])); /* a restart: counter reset */
      uint64_t count = 0;
      int64_t deltas[6];
      uint64_t prev = 0;
      for (int k = 0; k < 6; k++) {
        acc[s][k] += (uint64_t)(rnd() * 10 * (k + 1) * (s + 1));
        deltas[k] = (int64_t)acc[s][k] - (int64_t)prev;
        prev = acc[s][k];
        count += acc[s][k];
      }
      rwb_int_histogram(b, T0 + i * 15000, count, (double)count * 0.05, 1, 0, deltas, 6, 6);
    }
    rc_batch_t *batch = decode(b);
    apply_sharded(&f, batch);
    f.keep[f.nkeep++] = batch;
  }
  rc_store_stats_t s0, s1;
  rc_store_stats(f.st[0], &s0);
  rc_store_stats(f.st[1], &s1);
  assert_int_equal(s0.hist_appended + s1.hist_appended, NS * NP);
  assert_int_equal(s0.hist_invalid + s1.hist_invalid, 0);

  rc_query_t q;
  assert_int_equal(rc_query_init(&q, f.st, 2), 0);
  rc_query_set_t set = {0};
  rc_query_begin(&q);
  assert_int_equal(rc_query_collect(&q, 7, &set), 0);
  assert_int_equal(set.n, NS);
  for (int compat = 0; compat < 2; compat++) {
    rc_fhist_t sum;
    rc_fhist_init(&sum);
    uint32_t used = 0;
    assert_int_equal(rc_query_hist_sum(&set, t, 300000, (rc_compat_t)compat, 1, &sum, &used), 0);
    assert_int_equal(used, NS);
    /* Reference: each series' rate from its raw samples, summed in the set's order. */
    double want_count = 0, want_sum = 0, want_b[16] = {0};
    ref_hist_t total = {0};
    for (uint32_t k = 0; k < set.n; k++) {
      rc_label_t l[4];
      rc_store_series_labels(set.v[k], l, 4);
      int s = l[1].value[1] - '0';
      rc_histogram_t raw[NP];
      for (int i = 0; i < NP; i++) raw[i] = f.keep[i]->series[s].histograms[0];
      ref_hist_t r = {0};
      assert_int_equal(ref_rate(raw, NP, t, 300000, compat, 1, &r), 0);
      want_count += r.count;
      want_sum += r.sum;
      for (int idx = 0; idx < 16; idx++) want_b[idx] += ref_bucket(&r, 1, idx);
      if (k == 0) total = r;
      else ref_hist_free(&r);
    }
    assert_true(fabs(sum.count - want_count) <= 1e-12 * want_count);
    assert_true(fabs(sum.sum - want_sum) <= 1e-12 * fabs(want_sum));
    for (int idx = 0; idx < 16; idx++)
      assert_true(fabs(rc_fhist_bucket(&sum, 1, idx) - want_b[idx]) <= 1e-12 * want_count);
    /* The quantile of the sum, against the reference's quantile of the summed buckets. */
    total.count = want_count;
    total.sum = want_sum;
    for (size_t j = 0; j < total.n[0]; j++) total.b[0][j].count = want_b[total.b[0][j].idx];
    for (double phi = 0.5; phi < 1; phi += 0.2) {
      double got = rc_histq_native(phi, &sum, (rc_compat_t)compat);
      double want = ref_quantile(phi, &total, compat);
      if (fabs(got - want) > 1e-9 * fabs(want)) fail_msg("q%.2f: %.12g vs %.12g", phi, got, want);
    }
    ref_hist_free(&total);
    rc_fhist_free(&sum);
  }
  rc_query_end(&q);
  rc_query_set_free(&set);
  fx_free(&f);
}

typedef struct grp {
  int n;
  char job[4][8];
  double v[4];
} grp_t;

static int grp_cb(void *ctx, const rc_store_series_t *any, double value) {
  grp_t *g = ctx;
  rc_label_t l[8];
  uint32_t nl = rc_store_series_labels(any, l, 8);
  for (uint32_t i = 0; i < nl; i++)
    if (l[i].name_len == 3 && memcmp(l[i].name, "job", 3) == 0)
      snprintf(g->job[g->n], sizeof(g->job[0]), "%.*s", (int)l[i].value_len, l[i].value);
  g->v[g->n++] = value;
  return 0;
}

static void test_classic_quantile(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "{__name__=\"req_seconds_bucket\"}");
  /* Per-second slopes of the cumulative buckets: job a 1,3,4,4; job b 0,2,4,4. */
  static const char *const les[] = {"0.1", "0.5", "1", "+Inf", "abc"};
  static const double slope[2][5] = {{1, 3, 4, 4, 9}, {0, 2, 4, 4, 9}};
  rwb_t *b = rwb_new(1);
  for (int j = 0; j < 2; j++)
    for (int k = 0; k < 5; k++) {
      char spec[96];
      snprintf(spec, sizeof(spec), "__name__=req_seconds_bucket,job=%c,le=%s", 'a' + j, les[k]);
      rwb_series(b, spec);
      for (int i = 0; i < 600; i++) rwb_sample(b, slope[j][k] * i, T0 + i * 1000);
    }
  rc_batch_t *batch = decode(b);
  apply_sharded(&f, batch);
  rc_batch_free(batch);
  rc_query_t q;
  assert_int_equal(rc_query_init(&q, f.st, 2), 0);
  rc_query_set_t set = {0};
  rc_query_begin(&q);
  assert_int_equal(rc_query_collect(&q, 7, &set), 0);
  assert_int_equal(set.n, 10);
  int64_t t = T0 + 599 * 1000;
  /* No aggregation: one group per job. */
  grp_t g = {0};
  uint32_t skipped = 0;
  assert_int_equal(rc_query_classic_quantile(&set, 0.5, t, 300000, RC_COMPAT_PROM3, NULL, 0,
                                             grp_cb, &g, &skipped), 0);
  assert_int_equal(skipped, 2); /* le="abc" in each job */
  assert_int_equal(g.n, 2);
  for (int i = 0; i < 2; i++) {
    /* rank 2 of 4 in bucket (0.1, 0.5]: a: 0.1 + 0.4 * (2-1)/(3-1); b: 0.1 + 0.4 * 2/2 */
    double want = strcmp(g.job[i], "a") == 0 ? 0.3 : 0.5;
    if (fabs(g.v[i] - want) > 1e-9) fail_msg("job %s: %.12g, want %g", g.job[i], g.v[i], want);
  }
  /* sum by () (le): one group, slopes 1,5,8,8 -> rank 4 in (0.1, 0.5]: 0.1 + 0.4 * 3/4 */
  memset(&g, 0, sizeof(g));
  static const char *const none[1] = {NULL};
  assert_int_equal(rc_query_classic_quantile(&set, 0.5, t, 300000, RC_COMPAT_PROM3, none, 0,
                                             grp_cb, &g, &skipped), 0);
  assert_int_equal(g.n, 1);
  assert_true(fabs(g.v[0] - 0.4) <= 1e-9);
  /* sum by (job) (le) is the same as no aggregation here; phi 0.99 lands in (0.5, 1]. */
  memset(&g, 0, sizeof(g));
  static const char *const by_job[1] = {"job"};
  assert_int_equal(rc_query_classic_quantile(&set, 0.99, t, 300000, RC_COMPAT_PROM2, by_job, 1,
                                             grp_cb, &g, &skipped), 0);
  assert_int_equal(g.n, 2);
  for (int i = 0; i < 2; i++) {
    /* rank 3.96: a: 0.5 + 0.5 * (3.96-3)/(4-3); b: 0.5 + 0.5 * (3.96-2)/(4-2) */
    double want = strcmp(g.job[i], "a") == 0 ? 0.98 : 0.99;
    if (fabs(g.v[i] - want) > 1e-9) fail_msg("job %s: %.12g, want %g", g.job[i], g.v[i], want);
  }
  rc_query_end(&q);
  rc_query_set_free(&set);
  fx_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_collect_and_eval),
      cmocka_unit_test(test_merged_sketch),
      cmocka_unit_test(test_native_hist_sum),
      cmocka_unit_test(test_classic_quantile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
