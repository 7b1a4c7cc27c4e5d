/* test_window_mt.c: windows read while their writer writes, as the evaluator will read them
 * while ingest appends (run under ThreadSanitizer by scripts/test). One writer appends to
 * several windows — in order, late samples that force chunks to be re-encoded, chunks that
 * grow and move, new chunks that swap the chunk list, expiry of old chunks — and two readers
 * walk the same windows at the same time through the epoch-based reclamation protocol. Every
 * read must be a consistent snapshot: timestamps strictly increasing, every value exactly the
 * one written for its timestamp, and the newest samples always present up to what was
 * published before the read began. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "ebr.h"
#include "window.h"

#define NWIN 8
#define STEPS 6000
#define READERS 2

static rc_window_t g_win[NWIN];
static rc_ebr_t g_ebr;
static rc_window_cfg_t g_cfg;
static _Atomic int g_done;
static _Atomic int64_t g_published[NWIN]; /* newest in-order timestamp appended, per window */
static _Atomic uint64_t g_reads, g_samples_read, g_bad;

/* The value written at ts: integers for even windows (the counter path), fractions for odd
 * ones (the XOR path). */
static double value_at(int w, int64_t ts) {
  return (w & 1) ? (double)ts * 0.001 + 0.25 : (double)(ts / 500);
}

typedef struct check {
  int w;
  int64_t last_ts, max_seen;
  uint64_t n, bad;
} check_t;

static int check_cb(void *ctx, int64_t ts, double v) {
  check_t *c = ctx;
  double want = value_at(c->w, ts);
  if (ts <= c->last_ts || memcmp(&v, &want, sizeof(v)) != 0) c->bad++;
  c->last_ts = ts;
  if (ts > c->max_seen) c->max_seen = ts;
  c->n++;
  return 0;
}

static void reader(void *arg) {
  int slot = rc_ebr_register(&g_ebr);
  unsigned seed = (unsigned)(uintptr_t)arg;
  while (!atomic_load(&g_done)) {
    int w = (int)(seed = seed * 1103515245u + 12345u) % NWIN;
    if (w < 0) w = -w;
    int64_t before = atomic_load(&g_published[w]);
    rc_ebr_enter(&g_ebr, slot);
    check_t c = {.w = w, .last_ts = INT64_MIN, .max_seen = INT64_MIN};
    rc_window_foreach(&g_win[w], INT64_MIN, INT64_MAX, check_cb, &c);
    double r;
    rc_window_eval(&g_win[w], RC_FN_RATE, 0, before, 30000, RC_COMPAT_PROM3, &r);
    rc_ebr_exit(&g_ebr, slot);
    /* Everything published before the read started must be visible. */
    if (before != INT64_MIN && c.max_seen < before) c.bad++;
    atomic_fetch_add(&g_bad, c.bad);
    atomic_fetch_add(&g_reads, 1);
    atomic_fetch_add(&g_samples_read, c.n);
  }
}

static void test_readers_during_writes(void **st) {
  (void)st;
  rc_ebr_init(&g_ebr, NULL);
  g_cfg = RC_WINDOW_CFG_DEFAULT;
  g_cfg.chunk_samples = 16; /* many chunks: list swaps, growth copies, expiry */
  g_cfg.ooo_tolerance_ms = 10000;
  g_cfg.ebr = &g_ebr;
  for (int w = 0; w < NWIN; w++) {
    rc_window_init(&g_win[w]);
    atomic_store(&g_published[w], INT64_MIN);
  }
  uv_thread_t th[READERS];
  for (int i = 0; i < READERS; i++)
    assert_int_equal(uv_thread_create(&th[i], reader, (void *)(uintptr_t)(i + 1)), 0);
  uint64_t late_ok = 0;
  for (int64_t step = 1; step <= STEPS; step++) {
    int64_t ts = step * 1000;
    for (int w = 0; w < NWIN; w++) {
      assert_int_equal(rc_window_append(&g_win[w], &g_cfg, ts, value_at(w, ts)), 0);
      atomic_store(&g_published[w], ts);
      /* A late sample between two earlier ones: re-encodes a published chunk. */
      if (step > 3 && step % 3 == 0) {
        int64_t late = ts - 2500;
        if (rc_window_append(&g_win[w], &g_cfg, late, value_at(w, late)) == 0) late_ok++;
      }
      if (step % 200 == 0) rc_window_expire(&g_win[w], &g_cfg, ts - 60000);
    }
    if (step % 50 == 0) rc_ebr_collect(&g_ebr);
  }
  atomic_store(&g_done, 1);
  for (int i = 0; i < READERS; i++) uv_thread_join(&th[i]);
  printf("     | %llu reads, %llu samples read, %llu late samples inserted\n",
         (unsigned long long)atomic_load(&g_reads), (unsigned long long)atomic_load(&g_samples_read),
         (unsigned long long)late_ok);
  assert_int_equal(atomic_load(&g_bad), 0);
  assert_true(atomic_load(&g_reads) > 0);
  assert_true(late_ok > 0);
  /* After the readers are gone, everything retired can go. */
  assert_int_equal(rc_ebr_collect(&g_ebr), 0);
  for (int w = 0; w < NWIN; w++) rc_window_free(&g_win[w], NULL);
  rc_ebr_close(&g_ebr);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_readers_during_writes)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
