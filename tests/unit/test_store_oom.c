/* test_store_oom.c: the store when an allocation fails at the worst place — a new selector's
 * entry in the selector table, after the series is already in the series table. Linked with
 * -Wl,--wrap=rc_mem_malloc (tests/meson.build) so one chosen allocation can fail.
 *
 * What must hold: the series the lists missed is still expired and removed by the retention
 * sweep (the sweep walks the selector lists, and falls back to the table while a series is
 * missing from them), and the store's counts stay right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mem.h"
#include "rw_decode.h"
#include "rwbuild.h"
#include "selector.h"
#include "selindex.h"
#include "store.h"

/* Armed: the next rc_mem_malloc of fail_size bytes returns NULL. */
static int armed, failures;
static size_t fail_size;
void *__real_rc_mem_malloc(rc_mem_t *m, size_t n);
void *__wrap_rc_mem_malloc(rc_mem_t *m, size_t n);
void *__wrap_rc_mem_malloc(rc_mem_t *m, size_t n) {
  if (armed && n == fail_size) {
    armed = 0;
    failures++;
    return NULL;
  }
  return __real_rc_mem_malloc(m, n);
}

static int apply1(rc_store_t *s, const char *spec, int64_t ts) {
  rwb_t *b = rwb_new(1);
  rwb_series(b, spec);
  rwb_sample(b, 1, ts);
  rc_batch_t *batch = rwb_decode(b);
  assert_non_null(batch);
  int rc = rc_store_apply(s, batch);
  rc_batch_free(batch);
  return rc;
}

static rc_store_series_t *find(rc_store_t *s, const char *spec) {
  return rwb_store_find(s, spec);
}

static int count_cb(void *ctx, rc_store_series_t *r) {
  (void)r;
  (*(int *)ctx)++;
  return 0;
}

static void test_selector_entry_fails(void **st) {
  (void)st;
  static const char *const text[] = {"http_requests_total{code=~\"5..\"}", "{job=\"db\"}"};
  rc_selector_t *sel[2];
  rc_selindex_entry_t e[2];
  for (int i = 0; i < 2; i++) {
    rc_err_t err = {0};
    assert_int_equal(rc_selector_parse(text[i], strlen(text[i]), 0, &sel[i], &err), 0);
    e[i].sel = sel[i];
    e[i].id = (uint32_t)(10 + i);
  }
  rc_selindex_t *idx = NULL;
  assert_int_equal(rc_selindex_build(e, 2, &idx), 0);
  rc_store_cfg_t c = {.max_series = 100, .cache_entries = 1024, .window = RC_WINDOW_CFG_DEFAULT};
  c.window.retention_ms = 600000; /* 10 min */
  rc_store_t *s = NULL;
  assert_int_equal(rc_store_new(&c, idx, &s), 0);
  const char *C = "__name__=up,job=db,instance=c", *A = "__name__=http_requests_total,code=500";
  assert_int_equal(apply1(s, C, 1000), 0); /* selector 11's entry: the table has one */
  /* A wants only selector 10: growing the selector table to two entries (an 8-byte header
   * and 16 bytes per entry, store.c's seltab_t) fails, after A went into the series table. */
  fail_size = 8 + 2 * 16;
  armed = 1;
  assert_int_equal(apply1(s, A, 3000000), RC_ENOMEM);
  assert_int_equal(failures, 1); /* the injection hit (else the layout above changed) */
  assert_int_equal(apply1(s, A, 3000000), 0); /* a duplicate: A is held */
  assert_non_null(find(s, A));
  assert_null(find(s, C)); /* the sweep at 3,000,000 aged C out */
  /* Another series moves the watermark on: A (last sample at 3,000,000) ages out too. */
  for (int64_t t = 4000000; t <= 10000000; t += 1000000)
    assert_int_equal(apply1(s, "__name__=up,job=db,instance=d", t), 0);
  rc_store_stats_t ss;
  rc_store_stats(s, &ss);
  assert_null(find(s, A));
  assert_int_equal(ss.series, 1);
  assert_int_equal(ss.series_removed, 2);
  /* The selector that lost its entry works once a series creates it again. */
  assert_int_equal(apply1(s, "__name__=http_requests_total,code=503", 10000000), 0);
  int n = 0;
  rc_store_foreach(s, 10, count_cb, &n);
  assert_int_equal(n, 1);
  rc_store_free(s);
  rc_selindex_free(idx);
  for (int i = 0; i < 2; i++) rc_selector_free(sel[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_selector_entry_fails),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
