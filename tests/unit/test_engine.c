/* test_engine.c: the rule engine's trigger state machine, driven round by round with
 * rc_engine_eval_once at chosen instants over a real store: for (pending, then firing),
 * keep_firing_for, resolve_threshold (hysteresis), warn_threshold, the no-data policies,
 * min_requests, dry_run, and the fire/resolve events handed to the action callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine.h"
#include "rules.h"
#include "rw_decode.h"
#include "rwbuild.h"
#include "store.h"

#define T0 1700000000000LL

typedef struct events {
  int fired, resolved, dry;
  double last_value;
} events_t;

static void on_fire(void *ctx, const rc_fire_event_t *ev) {
  events_t *e = ctx;
  if (ev->resolved) e->resolved++;
  else if (ev->dry_run) e->dry++;
  else e->fired++;
  e->last_value = ev->value;
}

typedef struct fx {
  rc_engine_t *eng;
  rc_store_t *st;
  events_t ev;
} fx_t;

static void fx_init(fx_t *f, const char *yaml) {
  memset(f, 0, sizeof(*f));
  rc_ruleset_t set = {0};
  rc_diags_t d = {0};
  int rc = rc_rules_load_buffer("test.yml", yaml, strlen(yaml), NULL, &set, &d);
  if (rc != 0) {
    rc_diags_print(&d, stderr);
    fail_msg("rules did not load");
  }
  rc_diags_free(&d);
  rc_engine_cfg_t cfg = {.compat = RC_COMPAT_PROM3, .on_fire = on_fire, .fire_ctx = &f->ev};
  rc_err_t err = {0};
  assert_int_equal(rc_engine_new(&cfg, &set, NULL, 0, &f->eng, &err), 0);
  rc_store_cfg_t c = {.max_series = 1000, .cache_entries = 4096, .readers = 1,
                      .window = RC_WINDOW_CFG_DEFAULT};
  assert_int_equal(rc_store_new(&c, rc_engine_index(f->eng), &f->st), 0);
}

static void fx_free(fx_t *f) {
  rc_engine_free(f->eng); /* before the store: it holds reader slots in it */
  rc_store_free(f->st);
}

/* Writes gauge `name` = v at ts. */
static void put(fx_t *f, const char *name, double v, int64_t ts) {
  rwb_t *b = rwb_new(1);
  char spec[96];
  snprintf(spec, sizeof(spec), "__name__=%s,job=x", name);
  rwb_series(b, spec);
  rwb_sample(b, v, ts);
  rc_batch_t *batch = rwb_decode(b);
  assert_non_null(batch);
  assert_int_equal(rc_store_apply(f->st, batch), 0);
  rc_batch_free(batch);
}

static rc_trigger_status_t status(fx_t *f, uint32_t trig, int64_t now) {
  assert_int_equal(rc_engine_eval_once(f->eng, &f->st, 1, now), 0);
  rc_trigger_status_t s;
  assert_int_equal(rc_engine_status(f->eng, 0, trig, &s), 0);
  return s;
}

static void test_for_and_keep_firing(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "rollback:\n  service: s\n  environment: e\n  triggers:\n"
              "    - name: t\n      expr: max(g)\n      threshold: 10\n      for: 30s\n"
              "      keep_firing_for: 20s\n"
              "  action:\n    type: previous_version\n");
  put(&f, "g", 5, T0);
  rc_trigger_status_t s = status(&f, 0, T0);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  assert_true(s.has_value && s.value == 5);
  put(&f, "g", 12, T0 + 1000);
  s = status(&f, 0, T0 + 1000);
  assert_int_equal(s.state, RC_TS_PENDING);
  assert_int_equal(s.pending_since_ms, T0 + 1000);
  s = status(&f, 0, T0 + 30999); /* 29.999 s pending: not yet */
  assert_int_equal(s.state, RC_TS_PENDING);
  s = status(&f, 0, T0 + 31000);
  assert_int_equal(s.state, RC_TS_FIRING);
  assert_int_equal(f.ev.fired, 1);
  assert_true(f.ev.last_value == 12);
  /* The condition stops; keep_firing_for holds it 20 s after it last held. */
  put(&f, "g", 1, T0 + 32000);
  s = status(&f, 0, T0 + 32000);
  assert_int_equal(s.state, RC_TS_FIRING);
  s = status(&f, 0, T0 + 50999);
  assert_int_equal(s.state, RC_TS_FIRING);
  s = status(&f, 0, T0 + 51000);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  assert_int_equal(f.ev.resolved, 1);
  /* A pending condition that stops before `for` resets. */
  put(&f, "g", 11, T0 + 60000);
  s = status(&f, 0, T0 + 60000);
  assert_int_equal(s.state, RC_TS_PENDING);
  put(&f, "g", 3, T0 + 61000);
  s = status(&f, 0, T0 + 61000);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  assert_int_equal(f.ev.fired, 1);
  fx_free(&f);
}

static void test_hysteresis_warn_dry_run(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "rollback:\n  service: s\n  environment: e\n  triggers:\n"
              "    - name: t\n      expr: max(g)\n      threshold: 10\n"
              "      warn_threshold: 8\n      resolve_threshold: 6\n"
              "    - name: shadow\n      expr: max(g)\n      threshold: 9\n      dry_run: true\n"
              "  action:\n    type: previous_version\n");
  put(&f, "g", 9, T0);
  rc_trigger_status_t s = status(&f, 0, T0);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  assert_int_equal(s.warning, 1); /* 9: in the warn band, no rollback */
  s = status(&f, 1, T0);
  assert_int_equal(s.state, RC_TS_FIRING); /* the dry run fires... */
  assert_int_equal(f.ev.dry, 1);           /* ...as a dry-run event */
  assert_int_equal(f.ev.fired, 0);
  put(&f, "g", 10, T0 + 1000);
  s = status(&f, 0, T0 + 1000);
  assert_int_equal(s.state, RC_TS_FIRING);
  assert_int_equal(s.warning, 0);
  /* Hysteresis: stays firing while the value is at or above 6. */
  put(&f, "g", 7, T0 + 2000);
  s = status(&f, 0, T0 + 2000);
  assert_int_equal(s.state, RC_TS_FIRING);
  put(&f, "g", 5.5, T0 + 3000);
  s = status(&f, 0, T0 + 3000);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  assert_int_equal(f.ev.fired, 1);
  assert_int_equal(f.ev.resolved, 2); /* the real trigger and the dry run */
  fx_free(&f);
}

static void test_no_data_and_min_requests(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "rollback:\n  service: s\n  environment: e\n  triggers:\n"
              "    - name: ignore\n      expr: max(absent_metric)\n      threshold: 1\n"
              "    - name: fire\n      expr: max(absent_metric)\n      threshold: 1\n"
              "      no_data: fire\n"
              "    - name: lowtraffic\n      expr: max(errs) / max(reqs)\n      threshold: 0.1\n"
              "      min_requests: 100\n      requests_expr: max(reqs)\n"
              "  action:\n    type: previous_version\n");
  put(&f, "errs", 5, T0);
  put(&f, "reqs", 10, T0); /* 50 % errors, but only 10 requests */
  rc_trigger_status_t s = status(&f, 0, T0);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  assert_int_equal(s.no_data, 1);
  s = status(&f, 1, T0);
  assert_int_equal(s.state, RC_TS_FIRING);
  s = status(&f, 2, T0);
  assert_true(s.has_value && s.value == 0.5);
  assert_int_equal(s.state, RC_TS_INACTIVE); /* not enough requests to judge */
  put(&f, "errs", 50, T0 + 1000);
  put(&f, "reqs", 200, T0 + 1000);
  s = status(&f, 2, T0 + 1000);
  assert_int_equal(s.state, RC_TS_FIRING);
  /* The JSON view and the metrics render without error and name the triggers. */
  rc_buf_t b;
  rc_buf_init(&b);
  assert_int_equal(rc_engine_render_json(f.eng, 0, &b), 0);
  assert_non_null(strstr(b.data, "\"lowtraffic\""));
  assert_non_null(strstr(b.data, "\"state\":\"firing\""));
  rc_buf_reset(&b);
  rc_engine_render_metrics(f.eng, &b);
  assert_non_null(strstr(b.data, "ripcord_rule_trigger_state{service=\"s\",environment=\"e\",trigger=\"fire\"} 2"));
  rc_buf_free(&b);
  fx_free(&f);
}

/* GET /api/v1/rules?history=1: each trigger's worst value per step over its window, ending
 * at its last evaluation; without history=1 the answer is as before. A reload that keeps a
 * trigger keeps its history. */
static void test_history(void **st) {
  (void)st;
  fx_t f;
  const char *yaml = "rollback:\n  service: s\n  environment: e\n  triggers:\n"
                     "    - name: t\n      expr: max(max_over_time(g[1m]))\n      threshold: 10\n"
                     "  action:\n    type: previous_version\n";
  fx_init(&f, yaml);
  /* One evaluation a second for 90 s: the value is the second's number (a 1m window over a
   * rising gauge), so the last 60 steps hold 30..89. */
  for (int i = 0; i < 90; i++) {
    put(&f, "g", i, T0 + i * 1000);
    status(&f, 0, T0 + i * 1000);
  }
  rc_buf_t b;
  rc_buf_init(&b);
  assert_int_equal(rc_engine_render_json(f.eng, 0, &b), 0);
  assert_null(strstr(b.data, "\"history\""));
  assert_non_null(strstr(b.data, "\"window_ms\":60000")); /* an expr: trigger's window */
  rc_buf_reset(&b);
  assert_int_equal(rc_engine_render_json(f.eng, 1, &b), 0);
  rc_buf_append(&b, "", 1);
  char want[200];
  snprintf(want, sizeof(want), "\"history\":{\"span_ms\":60000,\"step_ms\":1000,\"end_ms\":%lld,"
           "\"points\":[[%lld,30.0],[%lld,31.0],", (long long)(T0 + 89000), (long long)(T0 + 30000),
           (long long)(T0 + 31000));
  if (strstr(b.data, want) == NULL) fail_msg("want %s in %s", want, b.data);
  snprintf(want, sizeof(want), "[%lld,89.0]]}", (long long)(T0 + 89000));
  assert_non_null(strstr(b.data, want));
  /* Exactly RC_TREND_POINTS points: count the pairs. */
  const char *p = strstr(b.data, "\"points\":[");
  size_t pairs = 0;
  for (; p != NULL && (p = strstr(p + 1, "[17")) != NULL;) pairs++;
  assert_int_equal(pairs, 60);
  /* A reload with the same trigger keeps its history. */
  rc_ruleset_t set = {0};
  rc_diags_t d = {0};
  assert_int_equal(rc_rules_load_buffer("test.yml", yaml, strlen(yaml), NULL, &set, &d), 0);
  rc_diags_free(&d);
  rc_err_t err = {0};
  assert_int_equal(rc_engine_reload(f.eng, &set, NULL, 0, NULL, NULL, &err), 0);
  rc_buf_reset(&b);
  assert_int_equal(rc_engine_render_json(f.eng, 1, &b), 0);
  rc_buf_append(&b, "", 1);
  assert_non_null(strstr(b.data, want));
  rc_buf_free(&b);
  fx_free(&f);
}

static int64_t g_deploy_start = INT64_MIN;

static int deploy_start(void *ctx, const char *service, const char *environment, int64_t *out) {
  (void)ctx;
  if (strcmp(service, "s") != 0 || strcmp(environment, "e") != 0 || g_deploy_start == INT64_MIN)
    return -1;
  *out = g_deploy_start;
  return 0;
}

/* Deploy-aware windows: samples from before the current deploy's start are not judged. */
static void test_deploy_clipping(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "rollback:\n  service: s\n  environment: e\n  triggers:\n"
              "    - name: gauge\n      expr: max(g)\n      threshold: 10\n"
              "    - name: ratio\n      expr: sum(rate(errs[1m]))\n      threshold: 1\n"
              "  action:\n    type: previous_version\n");
  /* The old version: bad gauge, errors growing 5 per second. */
  for (int i = 0; i <= 60; i++) put(&f, "errs", 5.0 * i, T0 + i * 1000);
  put(&f, "g", 20, T0 + 60000);
  rc_trigger_status_t s = status(&f, 0, T0 + 60000);
  assert_int_equal(s.state, RC_TS_FIRING); /* no deploy known: everything counts */
  /* A new version starts: its triggers see nothing of the old one. */
  g_deploy_start = T0 + 60500;
  rc_engine_refresh_deploys(f.eng, deploy_start, NULL);
  s = status(&f, 0, T0 + 61000);
  assert_int_equal(s.no_data, 1);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  s = status(&f, 1, T0 + 61000);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  /* The new version's own samples: healthy gauge, counters growing 0.1/s. */
  for (int i = 1; i <= 20; i++) put(&f, "errs", 300 + 0.1 * i, T0 + 60500 + i * 1000);
  put(&f, "g", 3, T0 + 62000);
  s = status(&f, 0, T0 + 80500);
  assert_true(s.has_value && s.value == 3 && s.state == RC_TS_INACTIVE);
  s = status(&f, 1, T0 + 80500);
  assert_true(s.has_value && s.value < 0.2 && s.state == RC_TS_INACTIVE);
  g_deploy_start = INT64_MIN;
  fx_free(&f);
}

/* warmup: the first stretch after a deploy is not judged either. */
static void test_warmup(void **st) {
  (void)st;
  fx_t f;
  fx_init(&f, "rollback:\n  service: s\n  environment: e\n  warmup: 10s\n  triggers:\n"
              "    - name: gauge\n      expr: max(g)\n      threshold: 10\n"
              "  action:\n    type: previous_version\n");
  g_deploy_start = T0;
  rc_engine_refresh_deploys(f.eng, deploy_start, NULL);
  put(&f, "g", 50, T0 + 5000); /* bad, but inside the warmup */
  rc_trigger_status_t s = status(&f, 0, T0 + 9000);
  assert_int_equal(s.state, RC_TS_INACTIVE);
  assert_int_equal(s.no_data, 1);
  put(&f, "g", 50, T0 + 11000); /* bad after it */
  s = status(&f, 0, T0 + 11000);
  assert_int_equal(s.state, RC_TS_FIRING);
  g_deploy_start = INT64_MIN;
  fx_free(&f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_for_and_keep_firing),
      cmocka_unit_test(test_hysteresis_warn_dry_run),
      cmocka_unit_test(test_no_data_and_min_requests),
      cmocka_unit_test(test_deploy_clipping),
      cmocka_unit_test(test_warmup),
      cmocka_unit_test(test_history),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
