/* test_mem.c: the byte accountant (mem.h) and the series store's memory counted through it —
 * counts equal to what the allocator reports, back to exactly zero when everything is freed
 * (windows, histogram windows, whole stores with and without the EBR, after expiry and after
 * a reload), mapped memory counted apart from blocks, and the levels against a limit. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "histwin.h"
#include "mem.h"
#include "rw_decode.h"
#include "rwbuild.h"
#include "selector.h"
#include "selindex.h"
#include "store.h"
#include "window.h"

#define MIN_MS 60000

/*----- the accountant ----------------------------------------------------------------------*/

static void test_accountant(void **st) {
  (void)st;
  rc_mem_t m;
  rc_mem_init(&m, 0);
  void *a = rc_mem_malloc(&m, 100), *b = rc_mem_calloc(&m, 10, 100);
  assert_non_null(a);
  assert_non_null(b);
  int64_t want = (int64_t)(malloc_usable_size(a) + malloc_usable_size(b));
  assert_int_equal(rc_mem_bytes(&m), want);
  assert_int_equal(rc_mem_blocks(&m), 2);
  assert_true(rc_mem_bytes(&m) >= 1100);
  /* realloc: grown, shrunk, from NULL; the count follows the block realloc returns. */
  a = rc_mem_realloc(&m, a, 5000);
  assert_non_null(a);
  assert_int_equal(rc_mem_bytes(&m), (int64_t)(malloc_usable_size(a) + malloc_usable_size(b)));
  a = rc_mem_realloc(&m, a, 10);
  assert_int_equal(rc_mem_bytes(&m), (int64_t)(malloc_usable_size(a) + malloc_usable_size(b)));
  void *c = rc_mem_realloc(&m, NULL, 64);
  assert_int_equal(rc_mem_blocks(&m), 3);
  rc_mem_free(&m, a);
  rc_mem_free(&m, b);
  rc_mem_free(&m, c);
  rc_mem_free(&m, NULL);
  assert_int_equal(rc_mem_bytes(&m), 0);
  assert_int_equal(rc_mem_blocks(&m), 0);
  /* Mapped memory counts in bytes, not blocks. */
  rc_mem_account(&m, 1 << 20);
  assert_int_equal(rc_mem_bytes(&m), 1 << 20);
  assert_int_equal(rc_mem_blocks(&m), 0);
  rc_mem_account(&m, -(1 << 20));
  assert_int_equal(rc_mem_bytes(&m), 0);
  /* No accountant: plain malloc/free, nothing counted, nothing bounded. */
  void *p = rc_mem_realloc(NULL, rc_mem_malloc(NULL, 8), 800);
  assert_non_null(p);
  rc_mem_free(NULL, p);
  assert_int_equal(rc_mem_level(NULL), RC_MEM_OK);
}

static void test_levels(void **st) {
  (void)st;
  rc_mem_t m;
  rc_mem_init(&m, 1600); /* high-water mark 1500 */
  assert_int_equal(m.high, 1500);
  assert_int_equal(rc_mem_level(&m), RC_MEM_OK);
  rc_mem_account(&m, 1499);
  assert_int_equal(rc_mem_level(&m), RC_MEM_OK);
  rc_mem_account(&m, 1);
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);
  rc_mem_account(&m, 99);
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);
  rc_mem_account(&m, 1);
  assert_int_equal(rc_mem_level(&m), RC_MEM_FULL);
  rc_mem_set_limit(&m, 0); /* unbounded: never refuses */
  assert_int_equal(rc_mem_level(&m), RC_MEM_OK);
}

/*----- windows ---------------------------------------------------------------------------*/

static void test_histwin_exact(void **st) {
  (void)st;
  rc_mem_t m;
  rc_mem_init(&m, 0);
  rc_window_cfg_t cfg = RC_WINDOW_CFG_DEFAULT;
  cfg.mem = &m;
  cfg.chunk_samples = 5;
  rc_histwin_t w;
  rc_histwin_init(&w);
  int64_t d[8] = {1, 2, 3, 1, 0, 2, 1, 1};
  for (int i = 0; i < 40; i++) {
    d[i % 8] += i % 3;
    rc_span_t sp = {(int32_t)(i % 4) - 2, (uint32_t)(4 + i % 5)}; /* layouts change: buffers grow */
    rc_histogram_t h = {.ts_ms = 1000 + (int64_t)i * 15000, .schema = 2, .count = 100.0 + i,
                        .sum = 3.5 * i, .n_pos_spans = 1, .pos_spans = &sp, .n_pos = sp.length,
                        .pos_deltas = d};
    assert_int_equal(rc_histwin_append(&w, &cfg, &h), 0);
    assert_true(rc_mem_bytes(&m) > 0);
  }
  /* A late sample re-encodes a chunk through the same accountant. */
  rc_span_t sp = {0, 4};
  rc_histogram_t late = {.ts_ms = 1000 + 38 * 15000 + 5, .schema = 2, .count = 1000, .sum = 1,
                         .n_pos_spans = 1, .pos_spans = &sp, .n_pos = 4, .pos_deltas = d};
  assert_int_equal(rc_histwin_append(&w, &cfg, &late), 0);
  rc_histwin_expire(&w, &cfg, 1000 + 20 * 15000);
  assert_false(rc_histwin_empty(&w));
  assert_true(rc_mem_bytes(&m) > 0);
  rc_histwin_expire(&w, &cfg, INT64_MAX);
  assert_true(rc_histwin_empty(&w));
  assert_int_equal(rc_mem_bytes(&m), 0); /* the encoder state went with the last chunk */
  assert_int_equal(rc_mem_blocks(&m), 0);
}

/*----- the store ---------------------------------------------------------------------------*/

static rc_selector_t *g_sel;
static rc_selindex_t *g_idx;

static int setup(void **st) {
  (void)st;
  rc_err_t err = {0};
  const char *text = "{job=\"db\"}";
  if (rc_selector_parse(text, strlen(text), 0, &g_sel, &err) != 0) return -1;
  rc_selindex_entry_t e = {.sel = g_sel, .id = 7};
  return rc_selindex_build(&e, 1, &g_idx);
}

static int teardown(void **st) {
  (void)st;
  rc_selindex_free(g_idx);
  rc_selector_free(g_sel);
  return 0;
}

static rc_store_cfg_t store_cfg(rc_mem_t *m, int readers) {
  rc_store_cfg_t c = {.max_series = 4096, .cache_entries = 1024, .max_ahead_ms = 0,
                      .mem = m, .readers = readers,
                      .window = RC_WINDOW_CFG_DEFAULT};
  c.window.retention_ms = 10 * MIN_MS;
  return c;
}

/* One sample for each of the series instance=<from..to-1> (job=db: selected) at ts. */
static void apply_series(rc_store_t *s, int from, int to, int64_t ts, double v) {
  rwb_t *b = rwb_new(1);
  for (int i = from; i < to; i++) {
    char spec[96];
    snprintf(spec, sizeof(spec), "__name__=up,job=db,instance=i%05d", i);
    rwb_series(b, spec);
    rwb_sample(b, v, ts);
  }
  rc_batch_t *batch = rwb_decode(b);
  assert_non_null(batch);
  assert_int_equal(rc_store_apply(s, batch), 0);
  rc_batch_free(batch);
}

static rc_store_stats_t stats(rc_store_t *s) {
  rc_store_stats_t st;
  rc_store_stats(s, &st);
  return st;
}

/* Exact accounting through a store's whole life, with and without the EBR: series, chunks
 * over several spans, late samples, histograms, expiry that removes series, a reload that
 * drops them all — and zero, exactly, when the store is freed. */
static void test_store_exact(void **st) {
  (void)st;
  for (int readers = 0; readers <= 1; readers++) {
    rc_mem_t m;
    rc_mem_init(&m, 0);
    rc_store_cfg_t c = store_cfg(&m, readers);
    rc_store_t *s = NULL;
    assert_int_equal(rc_store_new(&c, g_idx, &s), 0);
    int64_t fixed = rc_mem_bytes(&m);
    assert_true(fixed > 0);
    apply_series(s, 0, 50, 1000, 1);
    int64_t b50 = rc_mem_bytes(&m);
    assert_true(b50 > fixed);
    apply_series(s, 50, 100, 1000, 1);
    int64_t b100 = rc_mem_bytes(&m);
    assert_true(b100 - fixed > (b50 - fixed) * 3 / 2); /* grows with series */
    /* 10 minutes of samples every 15 s: new chunks every 2 minutes. */
    for (int64_t t = 16000; t <= 10 * MIN_MS; t += 15000) apply_series(s, 0, 100, t, (double)t);
    int64_t b10m = rc_mem_bytes(&m);
    assert_true(b10m > b100 + 100 * 4 * 24); /* grows with chunks */
    apply_series(s, 0, 100, 10 * MIN_MS - 7000, 3); /* late: re-encoded chunks */
    rwb_t *b = rwb_new(1);
    rwb_series(b, "__name__=lat,job=db");
    int64_t d[3] = {1, 1, 1};
    rwb_int_histogram(b, 10 * MIN_MS, 10, 1.5, 0, 0, d, 3, 3);
    rc_batch_t *batch = rwb_decode(b);
    assert_non_null(batch);
    assert_int_equal(rc_store_apply(s, batch), 0);
    rc_batch_free(batch);
    assert_int_equal((int64_t)stats(s).bytes, rc_mem_bytes(&m));
    /* The watermark moves 15 minutes on: all but the newest series age out. */
    apply_series(s, 1000, 1001, 25 * MIN_MS, 1);
    rc_store_stats_t x = stats(s);
    assert_int_equal(x.series, 1);
    assert_true(rc_mem_bytes(&m) < b100);
    /* A reload that selects nothing drops the last one. */
    assert_int_equal(rc_store_set_index(s, NULL), 0);
    assert_int_equal(stats(s).series, 0);
    assert_true(rc_mem_bytes(&m) < fixed + 16 * 1024); /* the cache's decisions, lists */
    rc_store_free(s);
    assert_int_equal(rc_mem_bytes(&m), 0);
    assert_int_equal(rc_mem_blocks(&m), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accountant),
      cmocka_unit_test(test_levels),
      cmocka_unit_test(test_histwin_exact),
      cmocka_unit_test(test_store_exact),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
