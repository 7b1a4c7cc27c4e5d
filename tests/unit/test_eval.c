/* test_eval.c: the PromQL-subset evaluator (eval.c) over a real store — instant selectors
 * with lookback and staleness, range functions and __name__, aggregations with by/without and
 * Prometheus 3.x's Kahan sums against 2.x's plain ones, binary operators (filtering, bool,
 * one-to-one matching with on/ignoring, the many-to-many errors), histogram_quantile over
 * classic buckets, and native histogram rates. Expected values are computed by hand or from
 * window.c's functions, which test_window checks against an independent reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "eval.h"
#include "promql.h"
#include "rw_decode.h"
#include "rwbuild.h"
#include "selindex.h"
#include "store.h"

#define T0 1700000000000LL

/* One store; the selectors of every parsed expression get ids in one index, rebuilt as
 * expressions are added (the store re-matches its series). */
typedef struct fx {
  rc_store_t *st;
  rc_selindex_t *idx;
  rc_pq_expr_t *ex[32];
  int nex;
  const rc_selector_t *sel[256];
  uint32_t nsel;
  rc_query_t q;
  rc_eval_t ev;
} fx_t;

static uint32_t sel_id(void *ctx, const rc_selector_t *sel) {
  fx_t *f = ctx;
  for (uint32_t i = 0; i < f->nsel; i++)
    if (f->sel[i] == sel) return i;
  return UINT32_MAX;
}

static rc_batch_t *decode(rwb_t *b) {
  rc_batch_t *batch = rwb_decode(b);
  assert_non_null(batch);
  return batch;
}

static void fx_init(fx_t *f, const char *const *exprs, int n) {
  memset(f, 0, sizeof(*f));
  rc_selindex_entry_t e[256];
  for (int i = 0; i < n; i++) {
    rc_err_t err = {0};
    if (rc_pq_parse(exprs[i], strlen(exprs[i]), 0, &f->ex[i], &err) != 0)
      fail_msg("parse %s: %d:%d %s", exprs[i], err.line, err.col, err.msg);
    for (uint32_t s = 0; s < f->ex[i]->nsels; s++) {
      f->sel[f->nsel] = f->ex[i]->sels[s];
      e[f->nsel] = (rc_selindex_entry_t){.sel = f->ex[i]->sels[s], .id = f->nsel};
      f->nsel++;
    }
  }
  f->nex = n;
  assert_int_equal(rc_selindex_build(e, f->nsel, &f->idx), 0);
  rc_store_cfg_t c = {.max_series = 10000, .cache_entries = 1 << 14, .readers = 1,
                      .window = RC_WINDOW_CFG_DEFAULT};
  assert_int_equal(rc_store_new(&c, f->idx, &f->st), 0);
  assert_int_equal(rc_query_init(&f->q, &f->st, 1), 0);
}

static void fx_eval_init(fx_t *f, rc_compat_t compat) {
  rc_eval_init(&f->ev, &f->q, compat, sel_id, f);
}

static void fx_free(fx_t *f) {
  rc_eval_close(&f->ev);
  rc_store_free(f->st);
  rc_selindex_free(f->idx);
  for (int i = 0; i < f->nex; i++) rc_pq_free(f->ex[i]);
}

static void apply(fx_t *f, rwb_t *b) {
  rc_batch_t *batch = decode(b);
  assert_int_equal(rc_store_apply(f->st, batch), 0);
  rc_batch_free(batch);
}

/* Evaluates expression i at t; returns the result (valid until the next eval). */
static rc_eval_result_t run(fx_t *f, int i, int64_t t, int want_rc) {
  rc_eval_result_t r;
  rc_err_t err = {0};
  rc_query_begin(&f->q);
  int rc = rc_eval(&f->ev, f->ex[i], t, &r, &err);
  rc_query_end(&f->q);
  if (rc != want_rc) fail_msg("eval %s: rc %d (%s), want %d", f->ex[i]->text, rc, err.msg, want_rc);
  return r;
}

/* The element whose label `name` has value `v` (NULL when absent). */
static const rc_eval_elem_t *find(const rc_eval_result_t *r, const char *name, const char *v) {
  for (uint32_t i = 0; i < r->n; i++)
    for (uint32_t k = 0; k < r->v[i].nlabels; k++) {
      const rc_label_t *l = &r->v[i].labels[k];
      if (l->name_len == strlen(name) && memcmp(l->name, name, l->name_len) == 0 &&
          l->value_len == strlen(v) && memcmp(l->value, v, l->value_len) == 0)
        return &r->v[i];
    }
  return NULL;
}

static int has_label(const rc_eval_elem_t *e, const char *name) {
  for (uint32_t k = 0; k < e->nlabels; k++)
    if (e->labels[k].name_len == strlen(name) && memcmp(e->labels[k].name, name, strlen(name)) == 0)
      return 1;
  return 0;
}

/*------------------------------------------------------------------------------------------*/

static void test_selectors_and_functions(void **st) {
  (void)st;
  static const char *const ex[] = {
      "up",                            /* 0 */
      "rate(reqs_total[1m])",          /* 1 */
      "last_over_time(up[5m])",        /* 2 */
      "-up",                           /* 3 */
      "up{job=\"b\"}",                 /* 4 */
  };
  fx_t f;
  fx_init(&f, ex, 5);
  fx_eval_init(&f, RC_COMPAT_PROM3);
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up,job=a");
  rwb_sample(b, 1, T0);
  rwb_series(b, "__name__=up,job=b");
  rwb_sample(b, 0, T0);
  rwb_sample(b, 0x1p-1000, T0 + 10000); /* replaced below by a staleness marker */
  rwb_series(b, "__name__=reqs_total,job=a");
  for (int i = 0; i <= 60; i++) rwb_sample(b, i * 10.0, T0 + i * 1000);
  apply(&f, b);
  /* A staleness marker ends up{job="b"}. */
  b = rwb_new(1);
  rwb_series(b, "__name__=up,job=b");
  double stale;
  uint64_t bits = UINT64_C(0x7ff0000000000002);
  memcpy(&stale, &bits, 8);
  rwb_sample(b, stale, T0 + 20000);
  apply(&f, b);

  rc_eval_result_t r = run(&f, 0, T0 + 30000, 0);
  assert_int_equal(r.n, 1); /* job=b is stale */
  assert_non_null(find(&r, "job", "a"));
  assert_true(has_label(&r.v[0], "__name__"));
  assert_true(r.v[0].v == 1);
  r = run(&f, 4, T0 + 30000, 0);
  assert_int_equal(r.n, 0);
  r = run(&f, 4, T0 + 15000, 0); /* before the marker: the newest value */
  assert_int_equal(r.n, 1);
  assert_true(r.v[0].v == 0x1p-1000);
  /* Lookback: 5 minutes after the last sample (3.x: left-open, so exactly 5m is out). */
  r = run(&f, 0, T0 + 300000 - 1, 0);
  assert_int_equal(r.n, 1);
  r = run(&f, 0, T0 + 300000, 0);
  assert_int_equal(r.n, 0);

  r = run(&f, 1, T0 + 60000, 0);
  assert_int_equal(r.n, 1);
  assert_false(has_label(&r.v[0], "__name__")); /* rate drops the metric name */
  assert_true(fabs(r.v[0].v - 10.0) < 1e-9);
  r = run(&f, 2, T0 + 30000, 0);
  assert_int_equal(r.n, 2);                      /* range vectors skip the marker */
  assert_true(has_label(&r.v[0], "__name__"));   /* last_over_time keeps it */
  r = run(&f, 3, T0 + 30000, 0);
  assert_int_equal(r.n, 1);
  assert_true(r.v[0].v == -1 && !has_label(&r.v[0], "__name__"));
  fx_free(&f);
}

static void test_aggregations(void **st) {
  (void)st;
  static const char *const ex[] = {
      "sum(g)",                     /* 0 */
      "sum by (zone) (g)",          /* 1 */
      "avg without (inst) (g)",     /* 2 */
      "max(g)", "min(g)", "count(g)", /* 3 4 5 */
      "sum(k)",                     /* 6: Kahan vs plain */
      "avg(k)",                     /* 7 */
      "sum by (__name__) (g)",      /* 8 */
  };
  fx_t f;
  fx_init(&f, ex, 9);
  rwb_t *b = rwb_new(1);
  const char *zone[] = {"x", "x", "y", "y"};
  double vals[] = {1, 2, 3, NAN};
  for (int i = 0; i < 4; i++) {
    char spec[96];
    snprintf(spec, sizeof(spec), "__name__=g,inst=i%d,zone=%s", i, zone[i]);
    rwb_series(b, spec);
    rwb_sample(b, vals[i], T0);
  }
  double kv[] = {1e100, 1.0, -1e100};
  for (int i = 0; i < 3; i++) {
    char spec[64];
    snprintf(spec, sizeof(spec), "__name__=k,inst=i%d", i);
    rwb_series(b, spec);
    rwb_sample(b, kv[i], T0);
  }
  apply(&f, b);
  for (int compat = 0; compat < 2; compat++) {
    fx_eval_init(&f, (rc_compat_t)compat);
    rc_eval_result_t r = run(&f, 0, T0, 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.v[0].nlabels, 0);
    assert_true(isnan(r.v[0].v)); /* NaN poisons a sum */
    r = run(&f, 1, T0, 0);
    assert_int_equal(r.n, 2);
    assert_true(find(&r, "zone", "x")->v == 3);
    assert_int_equal(find(&r, "zone", "x")->nlabels, 1);
    r = run(&f, 2, T0, 0);
    assert_int_equal(r.n, 2);
    assert_true(find(&r, "zone", "x")->v == 1.5);
    assert_false(has_label(find(&r, "zone", "x"), "__name__")); /* without drops it */
    r = run(&f, 3, T0, 0);
    assert_true(r.v[0].v == 3); /* NaN loses to any number in max and min */
    r = run(&f, 4, T0, 0);
    assert_true(r.v[0].v == 1);
    r = run(&f, 5, T0, 0);
    assert_true(r.v[0].v == 4);
    /* 1e100 + 1 - 1e100: Prometheus 3.x's Kahan-Neumaier sum keeps the 1, 2.x loses it. */
    r = run(&f, 6, T0, 0);
    assert_true(r.v[0].v == (compat == RC_COMPAT_PROM3 ? 1.0 : 0.0));
    r = run(&f, 7, T0, 0);
    if (compat == RC_COMPAT_PROM3) assert_true(fabs(r.v[0].v - 1.0 / 3) < 1e-15);
    r = run(&f, 8, T0, 0);
    assert_int_equal(r.n, 1);
    assert_non_null(find(&r, "__name__", "g")); /* by (__name__) keeps it */
    rc_eval_close(&f.ev);
  }
  fx_eval_init(&f, RC_COMPAT_PROM3);
  fx_free(&f);
}

static void test_binary(void **st) {
  (void)st;
  static const char *const ex[] = {
      "errs / reqs",                          /* 0: one-to-one on all labels but __name__ */
      "errs > 5",                             /* 1: filter keeps name and value */
      "errs > bool 5",                        /* 2 */
      "10 - errs",                            /* 3 */
      "errs / on(svc) reqs",                  /* 4: result keeps only svc */
      "errs / ignoring(code) reqs_code",      /* 5 */
      "errs + on(svc) dup",                   /* 6: many-to-many on the right */
      "2 ^ 3 ^ 2",                            /* 7 */
      "1 < bool 2",                           /* 8 */
      "errs == reqs",                         /* 9: vector filter */
      "-2 ^ 2",                               /* 10 */
      "7 % 4 + 10 / 4",                       /* 11 */
  };
  fx_t f;
  fx_init(&f, ex, 12);
  fx_eval_init(&f, RC_COMPAT_PROM3);
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=errs,svc=a");
  rwb_sample(b, 10, T0);
  rwb_series(b, "__name__=errs,svc=b");
  rwb_sample(b, 2, T0);
  rwb_series(b, "__name__=reqs,svc=a");
  rwb_sample(b, 100, T0);
  rwb_series(b, "__name__=reqs,svc=b");
  rwb_sample(b, 2, T0);
  rwb_series(b, "__name__=reqs,svc=c"); /* unmatched */
  rwb_sample(b, 7, T0);
  rwb_series(b, "__name__=reqs_code,code=500,svc=a");
  rwb_sample(b, 20, T0);
  rwb_series(b, "__name__=dup,svc=a,x=1");
  rwb_sample(b, 1, T0);
  rwb_series(b, "__name__=dup,svc=a,x=2");
  rwb_sample(b, 1, T0);
  apply(&f, b);
  rc_eval_result_t r = run(&f, 0, T0, 0);
  assert_int_equal(r.n, 2);
  assert_true(find(&r, "svc", "a")->v == 0.1);
  assert_false(has_label(find(&r, "svc", "a"), "__name__"));
  r = run(&f, 1, T0, 0);
  assert_int_equal(r.n, 1);
  assert_true(r.v[0].v == 10 && has_label(&r.v[0], "__name__"));
  r = run(&f, 2, T0, 0);
  assert_int_equal(r.n, 2);
  assert_true(find(&r, "svc", "a")->v == 1 && find(&r, "svc", "b")->v == 0);
  assert_false(has_label(&r.v[0], "__name__"));
  r = run(&f, 3, T0, 0);
  assert_true(find(&r, "svc", "b")->v == 8);
  r = run(&f, 4, T0, 0);
  assert_int_equal(r.n, 2);
  assert_int_equal(find(&r, "svc", "a")->nlabels, 1);
  r = run(&f, 5, T0, 0);
  assert_int_equal(r.n, 1);
  assert_true(r.v[0].v == 0.5 && !has_label(&r.v[0], "code"));
  rc_err_t err = {0};
  rc_query_begin(&f.q);
  assert_int_equal(rc_eval(&f.ev, f.ex[6], T0, &r, &err), RC_EINVAL);
  rc_query_end(&f.q);
  assert_non_null(strstr(err.msg, "many-to-many matching not allowed"));
  r = run(&f, 7, T0, 0);
  assert_true(r.is_scalar && r.scalar == 512); /* right-associative */
  r = run(&f, 8, T0, 0);
  assert_true(r.is_scalar && r.scalar == 1);
  r = run(&f, 9, T0, 0);
  assert_int_equal(r.n, 1); /* only svc=b: 2 == 2, keeping the left value and labels */
  assert_true(find(&r, "svc", "b") && has_label(&r.v[0], "__name__"));
  r = run(&f, 10, T0, 0);
  assert_true(r.scalar == -4);
  r = run(&f, 11, T0, 0);
  assert_true(r.scalar == 3 + 2.5);
  fx_free(&f);
}

static void test_histogram_quantile(void **st) {
  (void)st;
  static const char *const ex[] = {
      "histogram_quantile(0.5, sum by (le) (rate(lat_bucket[5m])))",          /* 0 */
      "histogram_quantile(0.5, rate(lat_bucket[5m]))",                        /* 1 */
      "histogram_quantile(0.9, sum(rate(rpc_seconds[5m])))",                  /* 2 */
      "histogram_quantile(0.5, sum by (job, le) (rate(lat_bucket[5m]))) > 0.35", /* 3 */
  };
  fx_t f;
  fx_init(&f, ex, 4);
  fx_eval_init(&f, RC_COMPAT_PROM3);
  static const char *const les[] = {"0.1", "0.5", "1", "+Inf"};
  static const double slope[2][4] = {{1, 3, 4, 4}, {0, 2, 4, 4}};
  rwb_t *b = rwb_new(1);
  for (int j = 0; j < 2; j++)
    for (int k = 0; k < 4; k++) {
      char spec[96];
      snprintf(spec, sizeof(spec), "__name__=lat_bucket,job=%c,le=%s", 'a' + j, les[k]);
      rwb_series(b, spec);
      for (int i = 0; i < 600; i++) rwb_sample(b, slope[j][k] * i, T0 + i * 1000);
    }
  apply(&f, b);
  /* Native histograms: two series, i observations at scrape i, all in one bucket. */
  for (int i = 0; i < 40; i++) {
    b = rwb_new(1);
    for (int s = 0; s < 2; s++) {
      char spec[64];
      snprintf(spec, sizeof(spec), "__name__=rpc_seconds,pod=p%d", s);
      rwb_series(b, spec);
      int64_t d[2] = {i, -i}; /* bucket 0 holds all i observations, bucket 1 none */
      rwb_int_histogram(b, T0 + i * 15000, (uint64_t)i, i * 0.1, 0, 0, d, 2, 2);
    }
    apply(&f, b);
  }
  int64_t t = T0 + 599 * 1000;
  rc_eval_result_t r = run(&f, 0, t, 0);
  assert_int_equal(r.n, 1);
  assert_true(fabs(r.v[0].v - 0.4) < 1e-9); /* slopes 1,5,8,8: rank 4 in (0.1, 0.5] */
  r = run(&f, 1, t, 0);
  assert_int_equal(r.n, 2);
  assert_true(fabs(find(&r, "job", "a")->v - 0.3) < 1e-9);
  assert_true(fabs(find(&r, "job", "b")->v - 0.5) < 1e-9);
  assert_false(has_label(find(&r, "job", "a"), "le"));
  r = run(&f, 3, t, 0);
  assert_int_equal(r.n, 1); /* only job b's 0.5 passes > 0.35 */
  assert_non_null(find(&r, "job", "b"));
  /* Native: every observation in bucket 0 of schema 0, i.e. (0.5, 1]: p90 lies inside it. */
  r = run(&f, 2, T0 + 39 * 15000, 0);
  assert_int_equal(r.n, 1);
  assert_true(r.v[0].v > 0.5 && r.v[0].v <= 1);
  rc_store_stats_t ss;
  rc_store_stats(f.st, &ss);
  assert_int_equal(ss.hist_invalid, 0);
  fx_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_selectors_and_functions),
      cmocka_unit_test(test_aggregations),
      cmocka_unit_test(test_binary),
      cmocka_unit_test(test_histogram_quantile),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
