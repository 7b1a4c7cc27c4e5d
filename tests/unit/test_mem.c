/* test_mem.c: the byte accountant (mem.h) and the memory bound of the series store built on
 * it — counts equal to what the allocator reports, back to exactly zero when everything is
 * freed (windows, histogram windows, whole stores with and without the EBR, after expiry and
 * after a reload), and --storage.max-memory's policy: new series and new chunks refused from
 * the high-water mark, series held still taking samples, refused timestamps still moving the
 * watermark so that expiry brings the memory back down and new series are accepted again. */
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

/* A window at the bound: a new chunk is refused from the high-water mark, the head chunk
 * grows until the limit, a refused sample leaves the window exactly as it was, and expiry
 * gives everything back. */
static void test_window_bound(void **st) {
  (void)st;
  rc_mem_t m;
  rc_mem_init(&m, 0);
  rc_window_cfg_t cfg = RC_WINDOW_CFG_DEFAULT;
  cfg.mem = &m;
  cfg.chunk_samples = 8;
  rc_window_t w;
  rc_window_init(&w);
  int64_t t = 1000;
  for (int i = 0; i < 8; i++, t += 1000) assert_int_equal(rc_window_append(&w, &cfg, t, i * 1.5), 0);
  /* The window sits right at the high-water mark (set by hand: the limit is far above), so
   * its next chunk is refused. */
  int64_t held = rc_mem_bytes(&m);
  rc_mem_set_limit(&m, held * 4);
  m.high = held;
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);
  assert_int_equal(rc_window_append(&w, &cfg, t, 99), RC_EMEMORY);
  assert_int_equal(rc_window_count(&w), 8);
  assert_int_equal(rc_mem_bytes(&m), held);
  /* Late samples re-encode a chunk: allowed below the limit, refused at it. */
  assert_int_equal(rc_window_append(&w, &cfg, 1500, 7), 0);
  assert_int_equal(rc_window_count(&w), 9);
  held = rc_mem_bytes(&m);
  rc_mem_set_limit(&m, held);
  assert_int_equal(rc_window_append(&w, &cfg, 2500, 7), RC_EMEMORY);
  assert_int_equal(rc_window_append(&w, &cfg, 1500, 7), RC_EDUP); /* costs nothing: told apart */
  assert_int_equal(rc_window_append(&w, &cfg, 1500, 8), RC_ECONFLICT);
  assert_int_equal(rc_window_count(&w), 9);
  assert_int_equal(rc_mem_bytes(&m), held);
  /* An empty window's first chunk: refused only at the limit. */
  rc_window_t e;
  rc_window_init(&e);
  assert_int_equal(rc_window_append(&e, &cfg, 1000, 1), RC_EMEMORY);
  assert_true(rc_window_empty(&e));
  rc_mem_set_limit(&m, held * 2);
  m.high = held; /* HIGH, not FULL: a new series' first sample is taken */
  assert_int_equal(rc_window_append(&e, &cfg, 1000, 1), 0);
  rc_window_free(&e, &m);
  /* Unbounded again: a new chunk, then everything expired returns the count to zero. */
  rc_mem_set_limit(&m, 0);
  assert_int_equal(rc_window_append(&w, &cfg, t, 99), 0);
  assert_true(rc_mem_bytes(&m) > held);
  rc_window_expire(&w, &cfg, t + 1);
  assert_true(rc_window_empty(&w));
  assert_int_equal(rc_mem_bytes(&m), 0);
  assert_int_equal(rc_mem_blocks(&m), 0);
}

/* Head growth between the high-water mark and the limit: a series held keeps its samples. */
static void test_window_head_grows(void **st) {
  (void)st;
  rc_mem_t m;
  rc_mem_init(&m, 0);
  rc_window_cfg_t cfg = RC_WINDOW_CFG_DEFAULT;
  cfg.mem = &m;
  cfg.chunk_samples = 1000;
  cfg.chunk_span_ms = 3600000;
  rc_window_t w;
  rc_window_init(&w);
  assert_int_equal(rc_window_append(&w, &cfg, 1000, 0.5), 0);
  int64_t held = rc_mem_bytes(&m);
  rc_mem_set_limit(&m, held * 16); /* high-water mark 15 x held: far above */
  m.high = held;                   /* but say we are at it: only head growth may go on */
  int ok = 0;
  for (int i = 1; i < 100; i++) ok += rc_window_append(&w, &cfg, 1000 + i * 1000, i / 7.0) == 0;
  assert_int_equal(ok, 99); /* one chunk: 100 samples within its span and count */
  assert_true(rc_mem_bytes(&m) > held);
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);
  /* At the limit, only what fits in the room the head already has. */
  rc_mem_set_limit(&m, rc_mem_bytes(&m));
  int taken = 0, refused = 0;
  for (int i = 100; i < 900 && refused == 0; i++) {
    int rc = rc_window_append(&w, &cfg, 1000 + i * 1000, i / 7.0);
    if (rc == 0) taken++;
    else if (rc == RC_EMEMORY) refused++;
  }
  assert_int_equal(refused, 1);
  assert_true(taken < 100); /* the room the head had: a fraction of what it held */
  assert_int_equal(rc_window_count(&w), 100 + (uint32_t)taken);
  assert_true(rc_mem_bytes(&m) <= m.limit);
  rc_window_free(&w, &m);
  assert_int_equal(rc_mem_bytes(&m), 0);
  assert_int_equal(rc_mem_blocks(&m), 0);
}

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

  /* Bounded: at the high-water mark no new chunk (but an empty window's first), at the limit
   * nothing; a refusal leaves no empty chunk behind. */
  rc_histogram_t h = {.ts_ms = 1000, .schema = 2, .count = 100, .sum = 1, .n_pos_spans = 1,
                      .pos_spans = &sp, .n_pos = 4, .pos_deltas = d};
  assert_int_equal(rc_histwin_append(&w, &cfg, &h), 0);
  int64_t held = rc_mem_bytes(&m);
  rc_mem_set_limit(&m, held * 4);
  m.high = held;
  for (int i = 1; i < 5; i++) { /* the rest of the chunk (5 samples): growth is allowed */
    h.ts_ms += 15000;
    assert_int_equal(rc_histwin_append(&w, &cfg, &h), 0);
  }
  h.ts_ms += 15000;
  assert_int_equal(rc_histwin_append(&w, &cfg, &h), RC_EMEMORY); /* a sixth needs a chunk */
  assert_int_equal(rc_histwin_count(&w), 5);
  rc_histwin_t e;
  rc_histwin_init(&e);
  assert_int_equal(rc_histwin_append(&e, &cfg, &h), 0); /* an empty window's first chunk */
  rc_mem_set_limit(&m, rc_mem_bytes(&m));
  rc_histwin_t e2;
  rc_histwin_init(&e2);
  assert_int_equal(rc_histwin_append(&e2, &cfg, &h), RC_EMEMORY);
  assert_true(rc_histwin_empty(&e2));
  rc_histwin_free(&e2, &m);
  rc_histwin_free(&e, &m);
  rc_histwin_free(&w, &m);
  assert_int_equal(rc_mem_bytes(&m), 0);
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

static rc_store_cfg_t store_cfg(rc_mem_t *m, size_t max_memory, int readers) {
  rc_store_cfg_t c = {.max_series = 4096, .cache_entries = 1024, .max_ahead_ms = 0,
                      .max_memory = max_memory, .mem = m, .readers = readers,
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

/* The table and the decision cache: what a store holds before its first series. */
static int64_t fixed_cost(int readers) {
  rc_mem_t m;
  rc_mem_init(&m, 0);
  rc_store_cfg_t c = store_cfg(&m, 0, readers);
  rc_store_t *s = NULL;
  assert_int_equal(rc_store_new(&c, g_idx, &s), 0);
  int64_t b = rc_mem_bytes(&m);
  assert_int_equal((int64_t)stats(s).bytes, b);
  rc_store_free(s);
  assert_int_equal(rc_mem_bytes(&m), 0);
  return b;
}

/* Exact accounting through a store's whole life, with and without the EBR: series, chunks
 * over several spans, late samples, histograms, expiry that removes series, a reload that
 * drops them all — and zero, exactly, when the store is freed. */
static void test_store_exact(void **st) {
  (void)st;
  for (int readers = 0; readers <= 1; readers++) {
    rc_mem_t m;
    rc_mem_init(&m, 0);
    rc_store_cfg_t c = store_cfg(&m, 0, readers);
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

/* The bound as an operator sees it: past the high-water mark new series are refused and
 * counted while the series held still take samples; a sample needing a new chunk is refused
 * but moves the watermark, so that once it has moved past the retention the old data is
 * expired, the memory comes back down and new series are accepted again. */
static void test_store_bound(void **st) {
  (void)st;
  int readers = 1;
  int64_t fixed = fixed_cost(readers);
  /* Room for about 40 series of one sample on top of the fixed cost. */
  int64_t per_series;
  {
    rc_mem_t m;
    rc_mem_init(&m, 0);
    rc_store_cfg_t c = store_cfg(&m, 0, readers);
    rc_store_t *s = NULL;
    assert_int_equal(rc_store_new(&c, g_idx, &s), 0);
    apply_series(s, 0, 100, 1000, 1);
    per_series = (rc_mem_bytes(&m) - fixed) / 100;
    rc_store_free(s);
  }
  int64_t limit = (fixed + 40 * per_series) * 16 / 15; /* high-water mark: fixed + 40 series */
  rc_mem_t m;
  rc_mem_init(&m, 0);
  rc_store_cfg_t c = store_cfg(&m, (size_t)limit, readers);
  rc_store_t *s = NULL;
  assert_int_equal(rc_store_new(&c, g_idx, &s), 0);
  assert_int_equal((int64_t)stats(s).memory_limit, limit);

  apply_series(s, 0, 200, 1000, 1);
  rc_store_stats_t x = stats(s);
  assert_true(x.series >= 30 && x.series <= 50);
  assert_int_equal(x.refused_series_memory, 200 - x.series);
  assert_int_equal(x.refused_samples_memory, 200 - x.series);
  assert_int_equal(x.refused_series, 0); /* max_series is another reason */
  /* Refused at the mark; a little under it now that the EBR gave back the lists the new
   * series replaced, at most one series over. */
  assert_true(rc_mem_bytes(&m) > m.high - 2 * per_series);
  assert_true(rc_mem_bytes(&m) < m.high + 2 * per_series);
  uint64_t held = x.series;

  /* Series held keep taking samples into their head chunks (one a second: the heads grow). */
  for (int64_t t = 2000; t <= 20000; t += 1000) apply_series(s, 0, (int)held, t, t / 7.0);
  x = stats(s);
  assert_int_equal(x.appended, held + held * 19);
  assert_int_equal(x.series, held);
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);

  /* 3 minutes on, their head chunks are past the 2 minute span: a new chunk each, refused. */
  uint64_t refused_before = x.refused_samples_memory;
  apply_series(s, 0, (int)held, 3 * MIN_MS, 5);
  x = stats(s);
  assert_int_equal(x.refused_samples_memory, refused_before + held);
  assert_int_equal(x.watermark_ms, 3 * MIN_MS); /* the refused samples moved it */

  /* 11 minutes: still refused, but the watermark passes the retention of everything held,
   * the sweep expires it, and the memory comes back down. */
  apply_series(s, 0, (int)held, 11 * MIN_MS, 6);
  x = stats(s);
  assert_int_equal(x.series, 0);
  assert_int_equal(x.series_removed, held);
  assert_int_equal(rc_mem_level(&m), RC_MEM_OK);
  assert_true(rc_mem_bytes(&m) < fixed + 16 * 1024);

  /* New series are accepted again. */
  apply_series(s, 500, 510, 11 * MIN_MS + 1000, 1);
  x = stats(s);
  assert_int_equal(x.series, 10);
  rc_store_free(s);
  assert_int_equal(rc_mem_bytes(&m), 0);
  assert_int_equal(rc_mem_blocks(&m), 0);
}

/* A store whose series have all stopped, full, and only new series arriving (the previous
 * version's pods after a deploy): the refused series' timestamps age the old ones out. */
static void test_store_refused_series_move_watermark(void **st) {
  (void)st;
  int64_t fixed = fixed_cost(0);
  rc_mem_t m;
  rc_mem_init(&m, 0);
  rc_store_cfg_t c = store_cfg(&m, (size_t)(fixed + 64 * 1024), 0);
  rc_store_t *s = NULL;
  assert_int_equal(rc_store_new(&c, g_idx, &s), 0);
  int next = 0;
  while (rc_mem_level(&m) == RC_MEM_OK && next < 4000) {
    apply_series(s, next, next + 10, 1000, 1);
    next += 10;
  }
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);
  uint64_t old = stats(s).series;
  /* Only new series from now on, their time moving: refused until the old ones age out. */
  int64_t t = 1000;
  uint64_t accepted = 0;
  for (int round = 0; round < 30 && accepted == 0; round++) {
    t += MIN_MS;
    apply_series(s, 10000 + round * 10, 10000 + round * 10 + 10, t, 1);
    accepted = stats(s).series_created - old;
  }
  rc_store_stats_t x = stats(s);
  assert_true(accepted > 0);
  assert_int_equal(x.series_removed, old);
  assert_true(t > 10 * MIN_MS); /* not before the retention had passed */
  rc_store_free(s);
  assert_int_equal(rc_mem_bytes(&m), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accountant),
      cmocka_unit_test(test_levels),
      cmocka_unit_test(test_window_bound),
      cmocka_unit_test(test_window_head_grows),
      cmocka_unit_test(test_histwin_exact),
      cmocka_unit_test(test_store_exact),
      cmocka_unit_test(test_store_bound),
      cmocka_unit_test(test_store_refused_series_move_watermark),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
