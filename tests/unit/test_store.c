/* test_store.c: the series store — selection through the selector index and decision cache,
 * the max-series bound, appends with late, duplicate and conflicting samples, retention
 * sweeps that remove emptied series, lookups by selector id, and a rule reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rw_decode.h"
#include "rwbuild.h"
#include "selector.h"
#include "selindex.h"
#include "store.h"

typedef struct fixture {
  rc_selector_t *sel[3];
  rc_selindex_t *idx;
  rc_store_t *store;
  uint64_t fixed; /* bytes held before the first series: table, decision cache */
} fixture_t;

static rc_selindex_t *build_index(rc_selector_t **sel, const char *const *text, size_t n) {
  rc_selindex_entry_t e[8];
  for (size_t i = 0; i < n; i++) {
    rc_err_t err = {0};
    if (rc_selector_parse(text[i], strlen(text[i]), 0, &sel[i], &err) != 0)
      fail_msg("selector %s: %s", text[i], err.msg);
    e[i].sel = sel[i];
    e[i].id = (uint32_t)(10 + i);
  }
  rc_selindex_t *idx = NULL;
  assert_int_equal(rc_selindex_build(e, n, &idx), 0);
  return idx;
}

static rc_store_cfg_t cfg(uint32_t max_series) {
  rc_store_cfg_t c = {.max_series = max_series, .cache_entries = 1024, .max_ahead_ms = 600000,
                      .window = RC_WINDOW_CFG_DEFAULT};
  c.window.retention_ms = 600000; /* 10 min */
  return c;
}

static int setup(void **st) {
  fixture_t *f = calloc(1, sizeof(*f));
  static const char *const text[] = {"http_requests_total{code=~\"5..\"}", "{job=\"db\"}"};
  f->idx = build_index(f->sel, text, 2);
  rc_store_cfg_t c = cfg(3);
  assert_int_equal(rc_store_new(&c, f->idx, &f->store), 0);
  rc_store_stats_t s;
  rc_store_stats(f->store, &s);
  f->fixed = s.bytes;
  *st = f;
  return 0;
}

static int teardown(void **st) {
  fixture_t *f = *st;
  rc_store_free(f->store);
  rc_selindex_free(f->idx);
  for (int i = 0; i < 3; i++) rc_selector_free(f->sel[i]);
  free(f);
  return 0;
}

/* Decodes a body built with rwbuild into a batch. */
static rc_batch_t *batch_of(rwb_t *b) {
  rc_batch_t *batch = rwb_decode(b);
  assert_non_null(batch);
  return batch;
}

static rc_store_series_t *find(rc_store_t *s, const char *spec) {
  return rwb_store_find(s, spec);
}

static void test_selection(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=http_requests_total,code=500,job=api");
  rwb_sample(b, 1, 1000);
  rwb_sample(b, 2, 2000);
  rwb_series(b, "__name__=http_requests_total,code=200,job=api"); /* not selected */
  rwb_sample(b, 7, 1000);
  rwb_series(b, "__name__=up,job=db");
  rwb_sample(b, 1, 1000);
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_stats_t s;
  rc_store_stats(f->store, &s);
  assert_int_equal(s.series, 2);
  assert_int_equal(s.appended, 3);
  assert_int_equal(s.dropped_series, 1);
  assert_int_equal(s.dropped_samples, 1);
  rc_store_series_t *r = find(f->store, "__name__=http_requests_total,code=500,job=api");
  assert_non_null(r);
  assert_int_equal(rc_window_count(&r->win), 2);
  uint32_t nsel;
  const uint32_t *sel = rc_store_series_sel(r, &nsel);
  assert_int_equal(nsel, 1);
  assert_int_equal(sel[0], 10);
  rc_label_t l[8];
  assert_int_equal(rc_store_series_labels(r, l, 8), 3); /* __name__, code, job */
  assert_int_equal(l[1].name_len, 4);
  assert_memory_equal(l[1].name, "code", 4);
  assert_memory_equal(l[1].value, "500", 3);
  assert_null(find(f->store, "__name__=http_requests_total,code=200,job=api"));
  /* The window answers PromQL questions about what was stored. */
  double v;
  assert_int_equal(rc_window_eval(&r->win, RC_FN_INCREASE, 0, 2000, 2000, RC_COMPAT_PROM3, &v), 0);
}

/* Labels a lazy decoder left raw (a label-set cache hit: rc_series_t.labels NULL): the store
 * unpacks them for a decision it has not cached and for a series it creates, and the result is
 * the same as from parsed labels, also after the index changes (decisions made again). */
static void test_raw_labels(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=http_requests_total,code=500,job=api");
  rwb_sample(b, 1, 1000);
  rwb_series(b, "__name__=http_requests_total,code=200,job=api"); /* not selected */
  rwb_sample(b, 7, 1000);
  rwb_series(b, "__name__=up,instance=a,job=db");
  rwb_sample(b, 1, 1000);
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_rw_limits_t lim = {.max_decoded_bytes = 1 << 26, .max_arena_bytes = 1 << 28,
                        .labels = {.max_labels = 64, .max_label_bytes = 4096}};
  rc_rw_decoder_t d;
  rc_rw_decoder_init(&d, &lim);
  d.lazy_labels = 1;
  rc_batch_t *warm, *raw;
  rc_rw_result_t r;
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &warm, &r), 0); /* fills the cache */
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &raw, &r), 0);
  for (uint32_t i = 0; i < raw->nseries; i++) assert_null(raw->series[i].labels);
  assert_int_equal(rc_store_apply(f->store, raw), 0);
  rc_store_stats_t s;
  rc_store_stats(f->store, &s);
  assert_int_equal(s.series, 2);
  assert_int_equal(s.dropped_series, 1);
  rc_store_series_t *x = find(f->store, "__name__=up,instance=a,job=db");
  assert_non_null(x);
  rc_label_t l[8];
  assert_int_equal(rc_store_series_labels(x, l, 8), 3); /* __name__, instance, job */
  assert_memory_equal(l[1].name, "instance", 8);
  assert_memory_equal(l[1].value, "a", 1);
  assert_memory_equal(l[2].value, "db", 2);
  /* Another index: every cached decision is stale, so each is made again from raw labels. */
  rc_selector_t *sel2[1];
  static const char *const text2[] = {"http_requests_total"};
  rc_selindex_t *idx2 = build_index(sel2, text2, 1);
  assert_int_equal(rc_store_set_index(f->store, idx2), 0);
  rc_batch_free(raw);
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &raw, &r), 0);
  assert_null(raw->series[1].labels);
  rc_store_stats(f->store, &s);
  uint64_t dropped = s.dropped_series;
  assert_int_equal(rc_store_apply(f->store, raw), 0);
  rc_store_stats(f->store, &s);
  assert_int_equal(s.dropped_series, dropped + 1); /* now only up{} is dropped */
  assert_non_null(find(f->store, "__name__=http_requests_total,code=200,job=api"));
  rc_store_set_index(f->store, f->idx);
  rc_selindex_free(idx2);
  rc_selector_free(sel2[0]);
  rc_batch_free(raw);
  rc_batch_free(warm);
  rc_rw_decoder_close(&d);
  free(body);
}

static int count_cb(void *ctx, rc_store_series_t *r) {
  (void)r;
  (*(int *)ctx)++;
  return 0;
}

static void test_max_series_and_foreach(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  for (int i = 0; i < 5; i++) {
    char spec[96];
    snprintf(spec, sizeof(spec), "__name__=up,job=db,instance=i%d", i);
    rwb_series(b, spec);
    rwb_sample(b, 1, 1000);
  }
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_stats_t s;
  rc_store_stats(f->store, &s);
  assert_int_equal(s.series, 3); /* max_series */
  assert_int_equal(s.refused_series, 2);
  int n = 0;
  rc_store_foreach(f->store, 11, count_cb, &n);
  assert_int_equal(n, 3);
  n = 0;
  rc_store_foreach(f->store, 10, count_cb, &n);
  assert_int_equal(n, 0);
}

/* Full, with every series held stopped, and only new series arriving (a deploy replaced the
 * pods): the refused series' timestamps move the watermark, the old series age out, and the
 * new ones are taken — instead of a store full of dead series forever. */
static void test_full_store_recovers(void **st) {
  fixture_t *f = *st;
  for (int i = 0; i < 3; i++) {
    char spec[96];
    snprintf(spec, sizeof(spec), "__name__=up,job=db,instance=old%d", i);
    rwb_t *b = rwb_new(1);
    rwb_series(b, spec);
    rwb_sample(b, 1, 1000);
    rc_batch_t *batch = batch_of(b);
    assert_int_equal(rc_store_apply(f->store, batch), 0);
    rc_batch_free(batch);
  }
  rc_store_stats_t s;
  int64_t t = 1000;
  do {
    t += 60000;
    rwb_t *b = rwb_new(1);
    rwb_series(b, "__name__=up,job=db,instance=new");
    rwb_sample(b, 1, t);
    rc_batch_t *batch = batch_of(b);
    assert_int_equal(rc_store_apply(f->store, batch), 0);
    rc_batch_free(batch);
    rc_store_stats(f->store, &s);
  } while (s.series_created == 3 && t < 3600000);
  assert_int_equal(s.series_removed, 3);
  assert_int_equal(s.series, 1);
  assert_true(t > 600000); /* the old ones went when the retention (10 min) had passed */
  assert_non_null(find(f->store, "__name__=up,job=db,instance=new"));
}

static void test_late_duplicate_conflict(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up,job=db");
  rwb_sample(b, 1, 100000);
  rwb_sample(b, 3, 130000);
  rwb_sample(b, 2, 115000);  /* late, within 1m: lands in place */
  rwb_sample(b, 3, 130000);  /* duplicate: ignored */
  rwb_sample(b, 9, 130000);  /* conflict: dropped */
  rwb_sample(b, 0, 10000);   /* older than the tolerance */
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_stats_t s;
  rc_store_stats(f->store, &s);
  assert_int_equal(s.appended, 3);
  assert_int_equal(s.duplicates, 1);
  assert_int_equal(s.conflicts, 1);
  assert_int_equal(s.too_old, 1);
  rc_store_series_t *r = find(f->store, "__name__=up,job=db");
  double v;
  assert_int_equal(rc_window_eval(&r->win, RC_FN_LAST_OT, 0, 130000, 60000, RC_COMPAT_PROM3, &v), 0);
  assert_true(v == 3);
  assert_int_equal(rc_window_eval(&r->win, RC_FN_COUNT_OT, 0, 130000, 60000, RC_COMPAT_PROM3, &v), 0);
  assert_true(v == 3);
}

static void test_retention_removes(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up,job=db,instance=old");
  rwb_sample(b, 1, 1000);
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  /* Another series moves the watermark an hour on: the old one ages out entirely. */
  b = rwb_new(1);
  rwb_series(b, "__name__=up,job=db,instance=new");
  rwb_sample(b, 1, 3600000);
  batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_stats_t s;
  rc_store_stats(f->store, &s);
  assert_int_equal(s.series, 1);
  assert_int_equal(s.series_removed, 1);
  assert_null(find(f->store, "__name__=up,job=db,instance=old"));
  assert_non_null(find(f->store, "__name__=up,job=db,instance=new"));
  assert_true(s.bytes > f->fixed && s.bytes - f->fixed < 2048); /* one series, one sample */
}

static void test_reload(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=cpu,job=web");
  rwb_sample(b, 1, 1000);
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  assert_null(find(f->store, "__name__=cpu,job=web"));
  /* A new rule set selects it: the cached "drop" decision must not stick. */
  rc_selector_t *sel[1];
  static const char *const text[] = {"cpu"};
  rc_selindex_t *idx = build_index(sel, text, 1);
  assert_int_equal(rc_store_set_index(f->store, idx), 0);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  assert_non_null(find(f->store, "__name__=cpu,job=web"));
  /* Back to the first rules: the cpu series is wanted by nobody and goes at once. */
  assert_int_equal(rc_store_set_index(f->store, f->idx), 0);
  assert_null(find(f->store, "__name__=cpu,job=web"));
  int n = 0;
  rc_store_foreach(f->store, 0, count_cb, &n);
  assert_int_equal(n, 0);
  rc_selindex_free(idx);
  rc_selector_free(sel[0]);
}

/* Timestamps are whatever a sender writes: the extremes of int64 must neither crash nor
 * overflow (UBSan runs this in scripts/test). */
static void test_extreme_timestamps(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up,job=db");
  rwb_sample(b, 1, INT64_MIN + 1);
  rwb_sample(b, 2, -1);
  rwb_sample(b, 3, INT64_MAX - 1);
  rwb_sample(b, 4, INT64_MAX);
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_series_t *r = find(f->store, "__name__=up,job=db");
  assert_non_null(r);
  const int64_t ts[] = {INT64_MIN, INT64_MIN + 1, -1, 0, INT64_MAX - 1, INT64_MAX};
  for (size_t i = 0; i < sizeof(ts) / sizeof(ts[0]); i++) {
    for (int fn = 0; fn < RC_FN__COUNT; fn++) {
      double v;
      rc_window_eval(&r->win, (rc_fn_t)fn, 0.5, ts[i], INT64_MAX, RC_COMPAT_PROM3, &v);
      rc_window_eval(&r->win, (rc_fn_t)fn, 0.5, ts[i], 300000, RC_COMPAT_PROM2, &v);
    }
    double v;
    int64_t at;
    rc_window_instant(&r->win, ts[i], INT64_MAX, RC_COMPAT_PROM3, &v, &at);
  }
  /* The two samples far in the future were refused (--storage.max-ahead), the others kept. */
  double v;
  assert_int_equal(rc_window_eval(&r->win, RC_FN_LAST_OT, 0, 0, 10, RC_COMPAT_PROM3, &v), 0);
  assert_true(v == 2);
  rc_store_stats_t sts;
  rc_store_stats(f->store, &sts);
  assert_int_equal(sts.too_far_ahead, 2);
  assert_int_equal(sts.appended, 2);
}

/* One sample from a broken clock must not move the watermark and expire every window. */
static void test_future_sample_refused(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up,job=db");
  rwb_sample(b, 1, 1000);
  rwb_sample(b, 2, 2000);
  rwb_sample(b, 3, 4102444800000LL); /* 2100-01-01 */
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_stats_t s;
  rc_store_stats(f->store, &s);
  assert_int_equal(s.too_far_ahead, 1);
  assert_int_equal(s.appended, 2);
  assert_int_equal(s.series, 1);
  assert_true(s.watermark_ms == 2000);
  rc_store_series_t *r = find(f->store, "__name__=up,job=db");
  assert_non_null(r);
  assert_int_equal(rc_window_count(&r->win), 2);
}

/* What an evaluator triggered by a batch looks at: the series that batch touched, once each,
 * and each selector's series without scanning the store. */
static void test_changed_and_by_selector(void **st) {
  fixture_t *f = *st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up,job=db,instance=a");
  rwb_sample(b, 1, 1000);
  rwb_sample(b, 2, 2000);
  rwb_series(b, "__name__=http_requests_total,code=503,job=x");
  rwb_sample(b, 1, 1000);
  rwb_series(b, "__name__=up,job=web"); /* not selected */
  rwb_sample(b, 1, 1000);
  rc_batch_t *batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_series_t *const *ch;
  uint32_t nch;
  rc_store_changed(f->store, &ch, &nch);
  assert_int_equal(nch, 2);
  int n10 = 0, n11 = 0;
  rc_store_foreach(f->store, 10, count_cb, &n10);
  rc_store_foreach(f->store, 11, count_cb, &n11);
  assert_int_equal(n10, 1);
  assert_int_equal(n11, 1);
  /* A batch that only repeats a stored sample changes nothing. */
  b = rwb_new(1);
  rwb_series(b, "__name__=up,job=db,instance=a");
  rwb_sample(b, 2, 2000);
  batch = batch_of(b);
  assert_int_equal(rc_store_apply(f->store, batch), 0);
  rc_batch_free(batch);
  rc_store_changed(f->store, &ch, &nch);
  assert_int_equal(nch, 0);
}

/* The sweep walks the selector lists, not the table: a series in two lists (both selectors
 * want it) is expired and removed once, series in one list are not missed, and the lists
 * and the table agree afterwards. */
static void test_sweep_over_lists(void **st) {
  (void)st;
  rc_selector_t *sel[3] = {0};
  static const char *const text[] = {"http_requests_total{code=~\"5..\"}", "{job=\"db\"}"};
  rc_selindex_t *idx = build_index(sel, text, 2);
  rc_store_cfg_t c = cfg(1000);
  rc_store_t *s = NULL;
  assert_int_equal(rc_store_new(&c, idx, &s), 0);
  enum { N = 120 };
  int want10 = 0, want11 = 0, kept = 0, removed = 0;
  for (int phase = 0; phase < 2; phase++) {
    rwb_t *b = rwb_new(1);
    for (int i = phase * N / 2; i < (phase + 1) * N / 2; i++) {
      char spec[128];
      int e5 = i % 2 == 0, db = i % 3 == 0;
      snprintf(spec, sizeof(spec), "__name__=http_requests_total,code=%s,job=%s,instance=i%d",
               e5 ? "500" : "200", db ? "db" : "web", i);
      rwb_series(b, spec);
      /* The first half only at the start; the second half an hour on: the first ages out. */
      rwb_sample(b, 1, phase == 0 ? 1000 : 3600000);
      if (phase == 1) {
        want10 += e5;
        want11 += db;
        kept += e5 || db;
      } else {
        removed += e5 || db;
      }
    }
    rc_batch_t *batch = batch_of(b);
    assert_int_equal(rc_store_apply(s, batch), 0);
    rc_batch_free(batch);
  }
  rc_store_stats_t ss;
  rc_store_stats(s, &ss);
  assert_int_equal(ss.series_removed, removed);
  assert_int_equal(ss.series, kept);
  int n10 = 0, n11 = 0;
  rc_store_foreach(s, 10, count_cb, &n10);
  rc_store_foreach(s, 11, count_cb, &n11);
  assert_int_equal(n10, want10);
  assert_int_equal(n11, want11);
  for (int i = 0; i < N; i++) {
    char spec[128];
    int e5 = i % 2 == 0, db = i % 3 == 0;
    snprintf(spec, sizeof(spec), "__name__=http_requests_total,code=%s,job=%s,instance=i%d",
             e5 ? "500" : "200", db ? "db" : "web", i);
    rc_store_series_t *r = find(s, spec);
    if (i >= N / 2 && (e5 || db)) assert_non_null(r);
    else assert_null(r);
  }
  rc_store_free(s);
  rc_selindex_free(idx);
  for (int i = 0; i < 3; i++) rc_selector_free(sel[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_selection, setup, teardown),
      cmocka_unit_test_setup_teardown(test_raw_labels, setup, teardown),
      cmocka_unit_test_setup_teardown(test_max_series_and_foreach, setup, teardown),
      cmocka_unit_test_setup_teardown(test_full_store_recovers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_late_duplicate_conflict, setup, teardown),
      cmocka_unit_test_setup_teardown(test_retention_removes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
      cmocka_unit_test_setup_teardown(test_extreme_timestamps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_changed_and_by_selector, setup, teardown),
      cmocka_unit_test_setup_teardown(test_future_sample_refused, setup, teardown),
      cmocka_unit_test(test_sweep_over_lists),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
