/* test_threads.c: the parts of ingest that cross threads, under load, meant to run under
 * ThreadSanitizer (scripts/test builds build-tsan for the 'threads' suite): two ingest
 * workers decode requests submitted from this thread, route each series to the shard that
 * owns it and apply it there, while a reader thread keeps walking the store shards through
 * their EBR (labels, float and histogram windows) and rendering what other threads may read (self-metrics, the
 * tally's JSON, the store's counters). At the end every sample must have been stored exactly
 * once, in the shard its label hash names, every series holding every one of its samples. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include <uv.h>

#include "engine.h"
#include "rules.h"
#include "rwbuild.h"
#include "selector.h"
#include "selindex.h"
#include "stats.h"
#include "store.h"
#include "tally.h"
#include "workers.h"

#define REQUESTS 400
#define SERIES_PER_REQUEST 50
#define WORKERS 2

static _Atomic int g_stop;
static rc_workers_t g_ws;
static rc_tally_t g_tally;
static _Atomic uint64_t g_reads, g_series_seen, g_done, g_done_204, g_applied;

static int walk_cb(void *ctx, rc_store_series_t *r) {
  uint32_t *n = ctx;
  rc_label_t l[8];
  uint32_t nl = rc_store_series_labels(r, l, 8);
  assert_true(nl == 3 && l[0].name_len == 8 && memcmp(l[0].value, "load", 4) == 0);
  double v;
  /* A window read while its writer appends: whatever it sees must be a sample we sent. */
  if (rc_window_eval(&r->win, RC_FN_LAST_OT, 0, INT64_MAX / 2, INT64_MAX / 4, RC_COMPAT_PROM3,
                     &v) == 0)
    assert_true(v >= 0 && v < REQUESTS && v == (double)(int64_t)v);
  /* And its native histograms: every bucket grows by one per request, so the increase over
   * any two samples is a whole, non-negative number in each bucket. */
  rc_fhist_t h;
  rc_fhist_init(&h);
  if (rc_histwin_increase(&r->hwin, INT64_MAX / 2, INT64_MAX / 4, RC_COMPAT_PROM3, &h) == 0)
    assert_true(h.count >= 0 && h.count == 3 * rc_fhist_bucket(&h, 1, 0));
  rc_fhist_free(&h);
  (*n)++;
  return 0;
}

static void reader(void *arg) {
  (void)arg;
  int slot[WORKERS];
  for (int i = 0; i < WORKERS; i++) {
    slot[i] = rc_ebr_register(rc_store_ebr(rc_workers_store(&g_ws, (uint32_t)i)));
    assert_true(slot[i] >= 0);
  }
  while (!atomic_load(&g_stop)) {
    rc_buf_t b;
    rc_buf_init(&b);
    rc_stats_render(&b);
    rc_tally_render_json(&g_tally, &b);
    rc_store_stats_t st;
    rc_workers_store_stats(&g_ws, &st);
    rc_buf_free(&b);
    uint32_t n = 0;
    for (int i = 0; i < WORKERS; i++) {
      rc_store_t *s = rc_workers_store(&g_ws, (uint32_t)i);
      rc_ebr_enter(rc_store_ebr(s), slot[i]);
      rc_store_foreach(s, 1, walk_cb, &n);
      rc_ebr_exit(rc_store_ebr(s), slot[i]);
    }
    assert_true(n <= SERIES_PER_REQUEST);
    atomic_fetch_add(&g_series_seen, n);
    atomic_fetch_add(&g_reads, 1);
  }
}

static void on_done(void *ctx, void *token, const rc_work_result_t *r) {
  (void)ctx;
  (void)token;
  atomic_fetch_add(&g_done, 1);
  if (r->status == 204) atomic_fetch_add(&g_done_204, 1);
  else print_message("answer %d: %s\n", r->status, r->msg);
}

static void on_applied(void *ctx, uint32_t shard, rc_store_t *store, uint64_t received_ns) {
  (void)ctx;
  assert_ptr_equal(store, rc_workers_store(&g_ws, shard));
  assert_true(received_ns > 0);
  rc_store_series_t *const *ch;
  uint32_t n;
  rc_store_changed(store, &ch, &n); /* valid here, on the owner thread */
  for (uint32_t i = 0; i < n; i++) assert_int_equal(rc_workers_shard_of(&g_ws, ch[i]->h), shard);
  atomic_fetch_add(&g_applied, n);
}

typedef struct check {
  uint32_t series;
} check_t;

static int check_cb(void *ctx, rc_store_series_t *r) {
  check_t *c = ctx;
  /* every sample, once: floats in one series, histograms in its neighbour */
  assert_int_equal(rc_window_count(&r->win) + rc_histwin_count(&r->hwin), REQUESTS);
  c->series++;
  return 0;
}

static void test_workers_under_load(void **state) {
  (void)state;
  rc_stats_init(0);
  rc_selector_t *sel = NULL;
  rc_err_t err = {0};
  assert_int_equal(rc_selector_parse("load", 4, 0, &sel, &err), 0);
  rc_selindex_entry_t e = {.sel = sel, .id = 1};
  rc_selindex_t *idx = NULL;
  assert_int_equal(rc_selindex_build(&e, 1, &idx), 0);
  assert_int_equal(rc_tally_init(&g_tally, 100), 0);
  rc_workers_cfg_t wc = {
      .nworkers = WORKERS, .max_inflight = 8,
      .limits = {.max_decoded_bytes = 1 << 24, .max_arena_bytes = 1 << 26,
                 .labels = {.max_labels = 64, .max_label_bytes = 4096}},
      .store = {.max_series = 100000, .cache_entries = 1 << 16, .readers = 1,
                .window = RC_WINDOW_CFG_DEFAULT},
      .idx = idx, .tally = &g_tally, .done_cb = on_done, .applied_cb = on_applied};
  assert_int_equal(rc_workers_init(&g_ws, &wc, &err), 0);
  assert_int_equal(rc_workers_start(&g_ws, &err), 0);
  uv_thread_t rt;
  assert_int_equal(uv_thread_create(&rt, reader, NULL), 0);

  uint64_t busy = 0;
  const int64_t t0 = 1700000000000LL;
  for (int r = 0; r < REQUESTS; r++) {
    rwb_t *b = rwb_new(1 + (r & 1));
    for (int k = 0; k < SERIES_PER_REQUEST; k++) {
      char spec[96];
      snprintf(spec, sizeof(spec), "__name__=%s,job=j,instance=i%d", k % 2 ? "load" : "other", k);
      rwb_series(b, spec);
      rwb_sample(b, r, t0 + r * 1000);
      if (k % 2) { /* and a native histogram series beside each selected one: 3 buckets */
        snprintf(spec, sizeof(spec), "__name__=load,job=h,instance=i%d", k);
        rwb_series(b, spec);
        int64_t deltas[3] = {r + 1, 0, 0};
        rwb_int_histogram(b, t0 + r * 1000, 3 * (uint64_t)(r + 1), r, 0, 0, deltas, 3, 3);
      }
    }
    size_t len;
    char *body = rwb_finish(b, &len);
    rc_work_slot_t *slot = NULL;
    for (int attempt = 0; attempt < 100000 && slot == NULL; attempt++) {
      int rc;
      slot = rc_workers_reserve(&g_ws, &rc);
      if (slot == NULL) {
        assert_int_equal(rc, RC_EFULL); /* all in flight: retry, as Prometheus would */
        busy++;
        uv_sleep(0);
      }
    }
    assert_non_null(slot);
    rc_buf_t body_buf;
    rc_buf_init(&body_buf);
    rc_buf_append(&body_buf, body, len);
    free(body);
    rc_workers_submit(&g_ws, slot, 1 + (r & 1), &body_buf, uv_hrtime(), NULL);
    assert_int_equal(body_buf.len, 0); /* moved */
  }
  rc_workers_stop(&g_ws); /* lets everything in flight finish */
  atomic_store(&g_stop, 1);
  uv_thread_join(&rt);
  assert_int_equal(atomic_load(&g_done), REQUESTS);
  assert_int_equal(atomic_load(&g_done_204), REQUESTS);
  assert_int_equal(rc_stat_get(&rc_stats.consumed_samples), REQUESTS * SERIES_PER_REQUEST);
  assert_int_equal(rc_stat_get(&rc_stats.queue_depth), 0);
  rc_store_stats_t st;
  rc_workers_store_stats(&g_ws, &st);
  assert_int_equal(st.appended, REQUESTS * SERIES_PER_REQUEST / 2);
  assert_int_equal(atomic_load(&g_applied), REQUESTS * SERIES_PER_REQUEST);
  assert_int_equal(st.dropped_samples, REQUESTS * SERIES_PER_REQUEST / 2);
  assert_int_equal(st.hist_appended, REQUESTS * SERIES_PER_REQUEST / 2);
  assert_int_equal(st.series, SERIES_PER_REQUEST);
  check_t c = {0};
  uint32_t per_shard[WORKERS];
  for (uint32_t i = 0; i < WORKERS; i++) {
    uint32_t before = c.series;
    rc_store_foreach(rc_workers_store(&g_ws, i), 1, check_cb, &c);
    per_shard[i] = c.series - before;
  }
  assert_int_equal(c.series, SERIES_PER_REQUEST);
  rc_tally_entry_t te;
  assert_int_equal(rc_tally_get(&g_tally, "load", &te), 1);
  assert_int_equal(te.samples, REQUESTS * SERIES_PER_REQUEST / 2);
  printf("     | %d requests, %llu refused as full first, %u+%u series per shard, %llu "
         "concurrent walks seeing %llu series\n",
         REQUESTS, (unsigned long long)busy, per_shard[0], per_shard[1],
         (unsigned long long)atomic_load(&g_reads), (unsigned long long)atomic_load(&g_series_seen));
  rc_workers_close(&g_ws);
  rc_tally_close(&g_tally);
  rc_selindex_free(idx);
  rc_selector_free(sel);
}

/* The rule engine's thread evaluating while two workers write: woken by their applied hooks,
 * reading both shards through the EBR, and twice reloaded meanwhile (index swapped in both
 * shards live). The trigger watches the newest value of series that grow with every request,
 * so it must end firing, once, evaluated many times on the way. */
static _Atomic int g_fired, g_torn;

static void on_fire(void *ctx, const rc_fire_event_t *ev) {
  (void)ctx;
  if (ev->resolved) return;
  if (strncmp(ev->trigger->name, "torn", 4) == 0) atomic_fetch_add(&g_torn, 1);
  else atomic_fetch_add(&g_fired, 1);
}

static void gate_begin(void *ctx) { rc_workers_read_begin(ctx); }
static void gate_end(void *ctx) { rc_workers_read_end(ctx); }

static void noop_done(void *ctx, void *token, const rc_work_result_t *r) {
  (void)ctx;
  (void)token;
  assert_int_equal(r->status, 204);
}

static int swap(void *ctx, const rc_selindex_t *idx) { return rc_workers_swap_index(ctx, idx); }

/* inline: one shard, no worker thread, the submitting thread (with its loop) decodes and
 * applies (workers.h, inline mode) while the evaluator holds the gate on its own thread. */
static void engine_run(int inline_mode) {
  rc_stats_init(0);
  atomic_store(&g_fired, 0);
  atomic_store(&g_torn, 0);
  uv_loop_t loop;
  if (inline_mode) assert_int_equal(uv_loop_init(&loop), 0);
  const uint32_t W = inline_mode ? 1 : WORKERS;
  static const char yaml[] =
      "rollback:\n  service: s\n  environment: e\n  triggers:\n"
      "    - name: grows\n      expr: max(load)\n      threshold: 300\n"
      "    - name: rate\n      expr: sum(rate(load[1m]))\n      threshold: 1e9\n"
      /* num and den are written together, equal, in every request, spread over both shards:
       * a torn read (one shard's part applied, not the other's) makes them differ. */
      "    - name: torn_up\n      expr: sum(num) - sum(den)\n      threshold: 0.5\n"
      "    - name: torn_down\n      expr: sum(den) - sum(num)\n      threshold: 0.5\n"
      "  action:\n    type: previous_version\n";
  rc_ruleset_t set = {0};
  rc_diags_t d = {0};
  assert_int_equal(rc_rules_load_buffer("t.yml", yaml, strlen(yaml), NULL, &set, &d), 0);
  rc_diags_free(&d);
  rc_engine_cfg_t ecfg = {.compat = RC_COMPAT_PROM3, .interval_ms = 5, .on_fire = on_fire};
  rc_engine_t *eng = NULL;
  rc_err_t err = {0};
  assert_int_equal(rc_engine_new(&ecfg, &set, NULL, 0, &eng, &err), 0);
  rc_workers_cfg_t wc = {
      .nworkers = W, .max_inflight = 8,
      .limits = {.max_decoded_bytes = 1 << 24, .max_arena_bytes = 1 << 26,
                 .labels = {.max_labels = 64, .max_label_bytes = 4096}},
      .store = {.max_series = 1000, .cache_entries = 1 << 12, .readers = 1,
                .window = RC_WINDOW_CFG_DEFAULT},
      .idx = rc_engine_index(eng), .done_cb = noop_done, .applied_cb = rc_engine_applied,
      .applied_ctx = eng, .loop = inline_mode ? &loop : NULL, .inline_mode = inline_mode};
  assert_int_equal(rc_workers_init(&g_ws, &wc, &err), 0);
  assert_int_equal(rc_workers_start(&g_ws, &err), 0);
  rc_store_t *shards[WORKERS];
  for (uint32_t i = 0; i < W; i++) shards[i] = rc_workers_store(&g_ws, i);
  rc_engine_set_gate(eng, gate_begin, gate_end, &g_ws);
  assert_int_equal(rc_engine_start(eng, shards, W, &err), 0);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const int64_t t0 = (int64_t)now.tv_sec * 1000 - 400 * 100; /* the last 40 s, 100 ms apart */
  for (int r = 0; r < 400; r++) {
    rwb_t *b = rwb_new(1 + (r & 1));
    for (int k = 0; k < 8; k++) {
      char spec[64];
      snprintf(spec, sizeof(spec), "__name__=load,instance=i%d", k);
      rwb_series(b, spec);
      rwb_sample(b, r, t0 + r * 100);
      snprintf(spec, sizeof(spec), "__name__=num,instance=i%d", k);
      rwb_series(b, spec);
      rwb_sample(b, r, t0 + r * 100);
      snprintf(spec, sizeof(spec), "__name__=den,instance=i%d", k);
      rwb_series(b, spec);
      rwb_sample(b, r, t0 + r * 100);
    }
    size_t len;
    char *body = rwb_finish(b, &len);
    rc_work_slot_t *slot = NULL;
    for (int attempt = 0; attempt < 100000 && slot == NULL; attempt++) {
      int rc;
      if (inline_mode) uv_run(&loop, UV_RUN_NOWAIT); /* answers, batches the gate held */
      if ((slot = rc_workers_reserve(&g_ws, &rc)) == NULL) uv_sleep(0);
    }
    assert_non_null(slot);
    rc_buf_t bb;
    rc_buf_init(&bb);
    rc_buf_append(&bb, body, len);
    free(body);
    rc_workers_submit(&g_ws, slot, 1 + (r & 1), &bb, uv_hrtime(), NULL);
    if (r == 150 || r == 250) { /* reload the same rules while workers write and it evaluates */
      rc_ruleset_t again = {0};
      rc_diags_t d2 = {0};
      assert_int_equal(rc_rules_load_buffer("t.yml", yaml, strlen(yaml), NULL, &again, &d2), 0);
      rc_diags_free(&d2);
      assert_int_equal(rc_engine_reload(eng, &again, NULL, 0, swap, &g_ws, &err), 0);
    }
  }
  rc_workers_stop(&g_ws);
  if (inline_mode) {
    assert_int_equal(rc_stat_get(&rc_stats.queue_depth), 0); /* stop finished everything */
    printf("     | inline: %llu batches waited for the gate\n",
           (unsigned long long)g_ws.inline_held);
  }
  /* The last batches may still be waiting for the evaluator: give it a few rounds. */
  rc_trigger_status_t st = {0};
  for (int i = 0; i < 400 && st.state != RC_TS_FIRING; i++) {
    uv_sleep(5);
    assert_int_equal(rc_engine_status(eng, 0, 0, &st), 0);
  }
  rc_engine_stop(eng);
  assert_int_equal(st.state, RC_TS_FIRING);
  assert_true(st.value == 399);
  assert_true(st.evaluations > 1);
  assert_int_equal(atomic_load(&g_fired), 1);
  assert_int_equal(atomic_load(&g_torn), 0); /* never saw half a request */
  rc_trigger_status_t st2;
  assert_int_equal(rc_engine_status(eng, 0, 1, &st2), 0);
  assert_int_equal(st2.failures, 0);
  assert_true(st2.has_value && st2.state == RC_TS_INACTIVE);
  printf("     | engine: %llu evaluations of the first trigger while %s wrote\n",
         (unsigned long long)st.evaluations, inline_mode ? "the loop thread" : "2 workers");
  rc_engine_free(eng); /* before the stores: it holds reader slots in them */
  rc_workers_close(&g_ws);
  if (inline_mode) {
    uv_run(&loop, UV_RUN_DEFAULT); /* the closed handles' callbacks */
    assert_int_equal(uv_loop_close(&loop), 0);
  }
}

static void test_engine_with_workers(void **state) {
  (void)state;
  engine_run(0);
}

static void test_engine_inline(void **state) {
  (void)state;
  engine_run(1);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_workers_under_load),
                                     cmocka_unit_test(test_engine_with_workers),
                                     cmocka_unit_test(test_engine_inline)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
