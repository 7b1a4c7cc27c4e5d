/* test_threads.c: the parts of ingest that cross threads, under load, meant to run under
 * ThreadSanitizer (scripts/test builds build-tsan for the 'threads' suite): the loop-side
 * handler pushes decoded batches through the SPSC ring while the consumer thread tallies
 * them and applies them to the store, and a third thread keeps reading what other threads
 * may read (self-metrics, the tally's JSON, the store's counters). At the end every sample
 * pushed must have been consumed and stored exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <http_parser.h>
#include <uv.h>

#include "ingest.h"
#include "rwbuild.h"
#include "selector.h"
#include "selindex.h"
#include "stats.h"
#include "store.h"

#define REQUESTS 400
#define SERIES_PER_REQUEST 50

static _Atomic int g_stop;
static rc_ingest_t g_ing;
static rc_store_t *g_store;
static _Atomic uint64_t g_reads;

static void reader(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
    rc_buf_t b;
    rc_buf_init(&b);
    rc_stats_render(&b);
    rc_tally_render_json(&g_ing.tally, &b);
    rc_store_stats_t st;
    rc_store_stats(g_store, &st);
    rc_buf_free(&b);
    atomic_fetch_add(&g_reads, 1);
  }
}

static void test_handoff_under_load(void **state) {
  (void)state;
  rc_stats_init(0);
  rc_selector_t *sel = NULL;
  rc_err_t err = {0};
  assert_int_equal(rc_selector_parse("load", 4, 0, &sel, &err), 0);
  rc_selindex_entry_t e = {.sel = sel, .id = 1};
  rc_selindex_t *idx = NULL;
  assert_int_equal(rc_selindex_build(&e, 1, &idx), 0);
  rc_store_cfg_t sc = {.max_series = 100000, .cache_entries = 1 << 16,
                       .window = RC_WINDOW_CFG_DEFAULT};
  assert_int_equal(rc_store_new(&sc, idx, &g_store), 0);

  rc_ingest_config_t ic = {.queue_capacity = 8, .overload_status = 503, .retry_after_s = 1,
                           .tally_max_names = 100,
                           .limits = {.max_decoded_bytes = 1 << 24, .max_arena_bytes = 1 << 26,
                                      .labels = {.max_labels = 64, .max_label_bytes = 4096}}};
  assert_int_equal(rc_ingest_init(&g_ing, &ic, &err), 0);
  g_ing.store = g_store;
  assert_int_equal(rc_ingest_start(&g_ing, &err), 0);
  uv_thread_t rt;
  assert_int_equal(uv_thread_create(&rt, reader, NULL), 0);

  uint64_t accepted = 0, busy = 0;
  for (int r = 0; r < REQUESTS; r++) {
    rwb_t *b = rwb_new(1 + (r & 1));
    for (int k = 0; k < SERIES_PER_REQUEST; k++) {
      char spec[96];
      snprintf(spec, sizeof(spec), "__name__=%s,job=j,instance=i%d", k % 2 ? "load" : "other", k);
      rwb_series(b, spec);
      rwb_sample(b, r, 1700000000000LL + r * 1000);
    }
    size_t len;
    char *body = rwb_finish(b, &len);
    char hb[128];
    rc_http_header_t hdr[1];
    const char *ct = r & 1 ? "application/x-protobuf;proto=io.prometheus.write.v2.Request"
                           : "application/x-protobuf";
    int n = snprintf(hb, sizeof(hb), "Content-Type%s", ct);
    (void)n;
    hdr[0] = (rc_http_header_t){.name_off = 0, .name_len = 12, .value_off = 12,
                                .value_len = (uint32_t)strlen(ct)};
    rc_http_request_t req = {.method = HTTP_POST, .path = "/api/v1/write", .path_len = 13,
                             .body = body, .body_len = len, .complete_ns = uv_hrtime(),
                             .hbase = hb, .headers = hdr, .nheaders = 1};
    for (int attempt = 0; attempt < 10000; attempt++) {
      rc_http_response_t res = {.status = 0};
      rc_buf_init(&res.headers);
      rc_buf_init(&res.body);
      rc_ingest_handle_write(&g_ing, &req, &res);
      int status = res.status;
      rc_buf_free(&res.headers);
      rc_buf_free(&res.body);
      if (status == 204) {
        accepted++;
        break;
      }
      assert_int_equal(status, 503); /* the ring is full: retry, as Prometheus would */
      busy++;
      uv_sleep(0);
    }
    free(body);
  }
  rc_ingest_stop(&g_ing); /* drains the ring */
  atomic_store(&g_stop, 1);
  uv_thread_join(&rt);
  assert_int_equal(accepted, REQUESTS);
  assert_int_equal(rc_stat_get(&rc_stats.consumed_samples), REQUESTS * SERIES_PER_REQUEST);
  assert_int_equal(rc_stat_get(&rc_stats.queue_depth), 0);
  rc_store_stats_t st;
  rc_store_stats(g_store, &st);
  assert_int_equal(st.appended, REQUESTS * SERIES_PER_REQUEST / 2);
  assert_int_equal(st.dropped_samples, REQUESTS * SERIES_PER_REQUEST / 2);
  assert_int_equal(st.series, SERIES_PER_REQUEST / 2);
  printf("     | %llu requests, %llu answered 503 first, %llu concurrent reads\n",
         (unsigned long long)accepted, (unsigned long long)busy,
         (unsigned long long)atomic_load(&g_reads));
  rc_ingest_close(&g_ing);
  rc_store_free(g_store);
  rc_selindex_free(idx);
  rc_selector_free(sel);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_handoff_under_load)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
