/* engine.c: rule evaluation thread, trigger state machine, rule status; see engine.h. */
#include "engine.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "trend.h"

#define DEFAULT_INTERVAL_MS 250
#define DEFAULT_LOOKBACK_MS 300000
#define MAX_SELECTORS (1u << 20)

/* Detection latency histogram bounds, seconds (Prometheus-style cumulative buckets). */
static const double lat_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,   0.5,   1,     2.5,   5,    10};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]))

typedef struct selref {
  const rc_selector_t *sel;
  uint32_t id;
} selref_t;

typedef struct tstate {
  const rc_rule_t *rule;
  const rc_trigger_t *trig;
  uint32_t rule_idx, trig_idx;
  /* evaluator's */
  rc_trigger_status_t st;
  int64_t last_true_ms;   /* last time the condition held (keep_firing_for) */
  /* The values of the last window, downsampled (trend.h): written by the evaluator and read by
   * /api/v1/rules?history=1, both under the state mutex. */
  rc_trend_t trend;
  /* The start of the current deploy of the rule's target (INT64_MIN: none known): the
   * evaluator sees only samples after it. Set by the loop thread (rc_engine_refresh_deploys). */
  _Atomic int64_t clip_ms;
} tstate_t;

/* Everything derived from one rule set, swapped whole on reload. */
typedef struct bundle {
  rc_ruleset_t rules;
  rc_selindex_entry_t *entries;
  uint32_t nentries;
  rc_selindex_t *idx;
  selref_t *refs;          /* sorted by selector pointer */
  uint32_t **deps;         /* per selector id: trigger indices, deps_n[id] of them */
  uint32_t *deps_n;
  tstate_t *tr;
  uint32_t ntr;
  uint8_t *todo;           /* evaluator's: per trigger, evaluate this round */
  _Atomic uint64_t *dirty; /* bitmap over selector ids, set by the workers */
  uint32_t ndirty;
} bundle_t;

struct rc_engine {
  rc_engine_cfg_t cfg;
  /* The current rule set. Workers read it in rc_engine_applied; the evaluator and the loop
   * thread read it; only a reload (loop thread, evaluator stopped, under mu) replaces it, and
   * frees the old one once every worker has switched index (so none can still hold it). */
  bundle_t *_Atomic cur;
  uint64_t reloads_ok, reloads_failed;
  bundle_t *graveyard;     /* bundles a failed index swap left in use (linked via todo) */
  int64_t last_reload_ms;
  int last_reload_ok;
  _Atomic uint64_t pending_ns; /* earliest request time not yet evaluated; 0: none */
  _Atomic int idle, stop;
  uv_mutex_t wake_mu;
  uv_cond_t wake_cv;
  uv_thread_t thread;
  int running;
  /* evaluator */
  rc_query_t q;
  rc_eval_t ev;
  int reader_open;
  /* GET /api/v1/query, on the loop thread: its own reader */
  rc_store_t *shards[RC_QUERY_MAX_SHARDS];
  uint32_t nshards;
  rc_query_t api_q;
  rc_eval_t api_ev;
  int api_open;
  int64_t last_full_ms;
  /* published, under mu */
  uv_mutex_t mu;
  uint64_t rounds, evaluations, failures, fired, resolved, dry_fired, warnings;
  uint64_t lat_count, lat_buckets[NLAT];
  double lat_sum;
  uint64_t eval_ns_total;
};

static inline bundle_t *bun(const rc_engine_t *e) {
  return atomic_load_explicit(&((rc_engine_t *)e)->cur, memory_order_acquire);
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*------------------------------------------------------------------------------------------
 * Construction
 *----------------------------------------------------------------------------------------*/

static int ref_cmp(const void *a, const void *b) {
  const selref_t *x = a, *y = b;
  return x->sel < y->sel ? -1 : x->sel > y->sel;
}

static uint32_t bundle_sel_id(const bundle_t *b, const rc_selector_t *sel) {
  uint32_t lo = 0, hi = b->nentries;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (b->refs[mid].sel < sel) lo = mid + 1;
    else hi = mid;
  }
  return lo < b->nentries && b->refs[lo].sel == sel ? b->refs[lo].id : UINT32_MAX;
}

/* rc_eval's selector-id callback: ctx is the engine, the ids its current bundle's. */
static uint32_t sel_id(void *ctx, const rc_selector_t *sel) {
  return bundle_sel_id(bun(ctx), sel);
}

static int add_entry(bundle_t *b, const rc_selector_t *sel, uint32_t *cap) {
  if (b->nentries == *cap) {
    uint32_t nc = *cap ? *cap * 2 : 32;
    if (nc > MAX_SELECTORS) return RC_ELIMIT;
    rc_selindex_entry_t *ne = realloc(b->entries, nc * sizeof(*ne));
    if (ne == NULL) return RC_ENOMEM;
    b->entries = ne;
    *cap = nc;
  }
  b->entries[b->nentries] = (rc_selindex_entry_t){.sel = sel, .id = b->nentries};
  b->nentries++;
  return 0;
}

static int add_dep(bundle_t *b, uint32_t id, uint32_t trig) {
  if (id >= b->nentries) return 0;
  uint32_t n = b->deps_n[id];
  for (uint32_t i = 0; i < n; i++)
    if (b->deps[id][i] == trig) return 0;
  uint32_t *nv = realloc(b->deps[id], (n + 1) * sizeof(uint32_t));
  if (nv == NULL) return RC_ENOMEM;
  nv[n] = trig;
  b->deps[id] = nv;
  b->deps_n[id] = n + 1;
  return 0;
}

static void bundle_free(bundle_t *b) {
  if (b == NULL) return;
  rc_selindex_free(b->idx);
  for (uint32_t i = 0; b->deps != NULL && i < b->nentries; i++) free(b->deps[i]);
  free(b->deps);
  free(b->deps_n);
  free(b->refs);
  free(b->entries);
  free((void *)b->dirty);
  free(b->tr);
  free(b->todo);
  rc_ruleset_free(&b->rules);
  free(b);
}

/* The time a trigger's sparkline covers: its window (the expression's longest range for an
 * expr: trigger). An instant expression has none; it shows the last 5 minutes, Prometheus'
 * lookback. */
static int64_t trend_span_ms(const rc_trigger_t *t) {
  if (t->window_ms > 0) return t->window_ms;
  if (t->expr != NULL && t->expr->max_range_ms > 0) return t->expr->max_range_ms;
  return 5 * 60 * 1000;
}

/* Everything the engine derives from a rule set: trigger states, selector ids (every selector
 * of every trigger expression, in order, then extra), who depends on which id, the index.
 * Takes *rules (emptied). */
static int bundle_build(rc_ruleset_t *rules, rc_selector_t *const *extra, uint32_t nextra,
                        bundle_t **out) {
  *out = NULL;
  bundle_t *b = calloc(1, sizeof(*b));
  if (b == NULL) return RC_ENOMEM;
  b->rules = *rules;
  memset(rules, 0, sizeof(*rules));
  uint32_t cap = 0, ntr = 0;
  int rc = 0;
  for (uint32_t r = 0; r < b->rules.n; r++) ntr += b->rules.rules[r].ntriggers;
  b->tr = calloc(ntr ? ntr : 1, sizeof(*b->tr));
  b->todo = calloc(ntr ? ntr : 1, 1);
  if (b->tr == NULL || b->todo == NULL) rc = RC_ENOMEM;
  for (uint32_t r = 0; rc == 0 && r < b->rules.n; r++) {
    const rc_rule_t *rule = &b->rules.rules[r];
    for (uint32_t k = 0; rc == 0 && k < rule->ntriggers; k++) {
      const rc_trigger_t *t = &rule->triggers[k];
      b->tr[b->ntr] = (tstate_t){.rule = rule, .trig = t, .rule_idx = r, .trig_idx = k};
      atomic_init(&b->tr[b->ntr].clip_ms, INT64_MIN);
      rc_trend_init(&b->tr[b->ntr].trend, trend_span_ms(t),
                    t->op == RC_CMP_GE || t->op == RC_CMP_GT);
      b->ntr++;
      const rc_pq_expr_t *ex[2] = {t->expr, t->requests_expr};
      for (int j = 0; rc == 0 && j < 2; j++)
        for (uint32_t s = 0; ex[j] != NULL && rc == 0 && s < ex[j]->nsels; s++)
          rc = add_entry(b, ex[j]->sels[s], &cap);
    }
  }
  for (uint32_t i = 0; rc == 0 && i < nextra; i++) rc = add_entry(b, extra[i], &cap);
  if (rc == 0) {
    uint32_t n = b->nentries ? b->nentries : 1;
    b->refs = calloc(n, sizeof(*b->refs));
    b->deps = calloc(n, sizeof(*b->deps));
    b->deps_n = calloc(n, sizeof(*b->deps_n));
    b->ndirty = (b->nentries + 63) / 64;
    b->dirty = calloc(b->ndirty ? b->ndirty : 1, sizeof(*b->dirty));
    if (!b->refs || !b->deps || !b->deps_n || !b->dirty) rc = RC_ENOMEM;
  }
  for (uint32_t i = 0; rc == 0 && i < b->nentries; i++)
    b->refs[i] = (selref_t){.sel = b->entries[i].sel, .id = b->entries[i].id};
  if (rc == 0) qsort(b->refs, b->nentries, sizeof(*b->refs), ref_cmp);
  for (uint32_t i = 0; rc == 0 && i < b->ntr; i++) {
    const rc_trigger_t *t = b->tr[i].trig;
    const rc_pq_expr_t *ex[2] = {t->expr, t->requests_expr};
    for (int j = 0; j < 2; j++)
      for (uint32_t s = 0; ex[j] != NULL && rc == 0 && s < ex[j]->nsels; s++)
        rc = add_dep(b, bundle_sel_id(b, ex[j]->sels[s]), i);
  }
  if (rc == 0) rc = rc_selindex_build(b->entries, b->nentries, &b->idx);
  if (rc != 0) {
    bundle_free(b);
    return rc;
  }
  *out = b;
  return 0;
}

int rc_engine_new(const rc_engine_cfg_t *cfg, rc_ruleset_t *rules, rc_selector_t *const *extra,
                  uint32_t nextra, rc_engine_t **out, rc_err_t *err) {
  *out = NULL;
  rc_engine_t *e = calloc(1, sizeof(*e));
  if (e == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  e->cfg = *cfg;
  if (e->cfg.interval_ms <= 0) e->cfg.interval_ms = DEFAULT_INTERVAL_MS;
  if (e->cfg.lookback_ms <= 0) e->cfg.lookback_ms = DEFAULT_LOOKBACK_MS;
  bundle_t *b;
  int rc = bundle_build(rules, extra, nextra, &b);
  if (rc != 0) {
    free(e);
    return rc_err_set(err, rc, "rule engine: %s", rc_strerror(rc));
  }
  atomic_init(&e->cur, b);
  uv_mutex_init(&e->mu);
  uv_mutex_init(&e->wake_mu);
  uv_cond_init(&e->wake_cv);
  atomic_store(&e->pending_ns, 0);
  e->last_reload_ok = 1;
  *out = e;
  return 0;
}

void rc_engine_free(rc_engine_t *e) {
  if (e == NULL) return;
  rc_engine_stop(e);
  if (e->reader_open) rc_eval_close(&e->ev);
  if (e->api_open) rc_eval_close(&e->api_ev);
  bundle_free(bun(e));
  while (e->graveyard != NULL) {
    bundle_t *g = e->graveyard;
    e->graveyard = (bundle_t *)g->todo;
    g->todo = NULL;
    bundle_free(g);
  }
  uv_mutex_destroy(&e->mu);
  uv_mutex_destroy(&e->wake_mu);
  uv_cond_destroy(&e->wake_cv);
  free(e);
}

const rc_selindex_t *rc_engine_index(const rc_engine_t *e) { return bun(e)->idx; }

/*------------------------------------------------------------------------------------------
 * Wake-ups from the workers
 *----------------------------------------------------------------------------------------*/

void rc_engine_applied(void *ctx, uint32_t shard, rc_store_t *store, uint64_t received_ns) {
  rc_engine_t *e = ctx;
  (void)shard;
  bundle_t *b = bun(e);
  rc_store_series_t *const *ch;
  uint32_t n, marked = 0;
  rc_store_changed(store, &ch, &n);
  for (uint32_t i = 0; i < n; i++) {
    uint32_t k;
    const uint32_t *ids = rc_store_series_sel(ch[i], &k);
    for (uint32_t j = 0; j < k; j++) {
      /* During a reload a shard may still carry the previous ids: at worst a wrong trigger
       * is evaluated once; the full round after the swap covers the rest. */
      if (ids[j] >= b->nentries) continue;
      uint64_t bit = 1ull << (ids[j] % 64);
      _Atomic uint64_t *w = &b->dirty[ids[j] / 64];
      /* Most batches touch the same selectors again: skip the locked op when already set. */
      if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(w, bit, memory_order_release);
      marked = 1;
    }
  }
  if (!marked) return;
  uint64_t cur = atomic_load(&e->pending_ns);
  while ((cur == 0 || received_ns < cur) &&
         !atomic_compare_exchange_weak(&e->pending_ns, &cur, received_ns)) {
  }
  if (atomic_exchange(&e->idle, 0)) {
    /* The lock orders us after the evaluator's check of idle (it is then waiting, or will
     * see idle clear); the signal comes after the unlock, so the woken evaluator does not
     * at once block on the mutex we still hold (on one core: two more switches). */
    uv_mutex_lock(&e->wake_mu);
    uv_mutex_unlock(&e->wake_mu);
    uv_cond_signal(&e->wake_cv);
  }
}

/*------------------------------------------------------------------------------------------
 * Evaluation
 *----------------------------------------------------------------------------------------*/

static int cmp_holds(rc_cmp_t op, double v, double thr) {
  switch (op) {
    case RC_CMP_GE: return v >= thr;
    case RC_CMP_GT: return v > thr;
    case RC_CMP_LE: return v <= thr;
    case RC_CMP_LT: return v < thr;
  }
  return 0;
}

/* The worst element: the one most likely to cross the threshold. NaN elements never count. */
static int reduce(const rc_eval_result_t *r, rc_cmp_t op, double *out) {
  if (r->is_scalar) {
    *out = r->scalar;
    return !isnan(r->scalar);
  }
  int have = 0;
  int up = op == RC_CMP_GE || op == RC_CMP_GT;
  for (uint32_t i = 0; i < r->n; i++) {
    double v = r->v[i].v;
    if (r->v[i].h != NULL || isnan(v)) continue;
    if (!have || (up ? v > *out : v < *out)) *out = v;
    have = 1;
  }
  return have;
}

typedef struct count_ctx {
  int64_t t, range;
  rc_compat_t compat;
  double n;
} count_ctx_t;

static int count_cb(void *ctx, rc_store_series_t *r) {
  count_ctx_t *c = ctx;
  double v;
  if (rc_window_eval(&r->win, RC_FN_COUNT_OT, 0, c->t, c->range, c->compat, &v) == 0) c->n += v;
  return 0;
}

/* Samples of the expression's selectors within its longest range (min_samples), since the
 * deploy (clip) at most. */
static double samples_in_range(rc_engine_t *e, const rc_pq_expr_t *x, int64_t t, int64_t clip) {
  count_ctx_t c = {.t = t, .range = x->max_range_ms > 0 ? x->max_range_ms : e->cfg.lookback_ms,
                   .compat = e->cfg.compat};
  if (clip != INT64_MIN && t - c.range < clip) c.range = t > clip ? t - clip : 0;
  if (c.range <= 0) return 0;
  for (uint32_t s = 0; s < x->nsels; s++) {
    uint32_t id = sel_id(e, x->sels[s]);
    for (uint32_t i = 0; i < e->q.n; i++) rc_store_foreach(e->q.shards[i], id, count_cb, &c);
  }
  return c.n;
}

static void record_latency(rc_engine_t *e, uint64_t ns) {
  double s = (double)ns / 1e9;
  e->lat_count++;
  e->lat_sum += s;
  for (size_t i = 0; i < NLAT; i++)
    if (s <= lat_bounds[i]) e->lat_buckets[i]++;
}

static void transition(rc_engine_t *e, tstate_t *ts, int fired, int64_t now, uint64_t lat_ns) {
  rc_fire_event_t ev = {.rule = ts->rule, .trigger = ts->trig, .value = ts->st.value,
                        .at_ms = now, .latency_ns = lat_ns, .dry_run = ts->trig->dry_run,
                        .resolved = !fired};
  /* Every transition names the value, the condition and the window it was judged over. */
  const rc_trigger_t *t = ts->trig;
  char cond[64], win[32];
  snprintf(cond, sizeof(cond), "%s %g", rc_rules_cmp_name(t->op), t->threshold);
  if (t->window_ms) snprintf(win, sizeof(win), "%lldms", (long long)t->window_ms);
  else snprintf(win, sizeof(win), "%lldms", (long long)t->expr->max_range_ms);
  if (fired) {
    rc_log(RC_LOG_WARN, t->dry_run ? "rollback trigger firing (dry run: no action)"
                                   : "rollback trigger firing",
           "service=%s environment=%s trigger=%s value=%g condition=\"%s\" window=%s "
           "latency_ms=%.3f",
           ts->rule->service, ts->rule->environment, t->name, ts->st.value, cond, win,
           (double)lat_ns / 1e6);
  } else {
    rc_log(RC_LOG_INFO, "rollback trigger resolved",
           "service=%s environment=%s trigger=%s value=%g condition=\"%s\" window=%s",
           ts->rule->service, ts->rule->environment, t->name, ts->st.value, cond, win);
  }
  if (e->cfg.on_fire != NULL) e->cfg.on_fire(e->cfg.fire_ctx, &ev);
}

/* One trigger at now: evaluate, then move its state. Returns 1 if it started firing. */
static void eval_trigger(rc_engine_t *e, tstate_t *ts, int64_t now, uint64_t lat_start_ns) {
  const rc_trigger_t *t = ts->trig;
  rc_trigger_status_t *st = &ts->st;
  rc_err_t err = {0};
  rc_eval_result_t res;
  uint64_t t0 = uv_hrtime();
  e->ev.clip_from_ms = atomic_load_explicit(&ts->clip_ms, memory_order_relaxed);
  int rc = rc_eval(&e->ev, t->expr, now, &res, &err);
  double value = NAN;
  int have = rc == 0 && reduce(&res, t->op, &value);
  int enough = 1;
  if (rc == 0 && have && t->min_requests > 0 && t->requests_expr != NULL) {
    rc_eval_result_t rq;
    double reqs;
    if (rc_eval(&e->ev, t->requests_expr, now, &rq, &err) != 0 ||
        !reduce(&rq, RC_CMP_GE, &reqs) || reqs < t->min_requests)
      enough = 0;
  }
  if (rc == 0 && have && t->min_samples > 0 && samples_in_range(e, t->expr, now, e->ev.clip_from_ms) <
                                                      (double)t->min_samples)
    enough = 0;
  uint64_t dt = uv_hrtime() - t0;

  uv_mutex_lock(&e->mu);
  e->evaluations++;
  e->eval_ns_total += dt;
  st->evaluations++;
  st->last_eval_ns = dt;
  st->last_eval_ms = now;
  if (rc != 0) {
    e->failures++;
    st->failures++;
    snprintf(st->error, sizeof(st->error), "%s", err.msg);
    uv_mutex_unlock(&e->mu);
    return; /* no value this round: the state stays as it was */
  }
  st->error[0] = 0;
  st->has_value = have;
  st->value = value;
  st->no_data = !have;
  if (have) rc_trend_add(&ts->trend, now, value);
  int holds;
  if (!have) holds = t->no_data == RC_NODATA_FIRE;
  else if (!enough) holds = 0;
  else if (st->state == RC_TS_FIRING && !isnan(t->resolve_threshold))
    holds = cmp_holds(t->op, value, t->resolve_threshold); /* hysteresis */
  else holds = cmp_holds(t->op, value, t->threshold);
  int warn = have && enough && !holds && !isnan(t->warn_threshold) &&
             cmp_holds(t->op, value, t->warn_threshold);
  if (warn && !st->warning) e->warnings++;
  st->warning = warn;
  int fire = 0, resolve = 0;
  if (holds) {
    ts->last_true_ms = now;
    if (st->state == RC_TS_INACTIVE) {
      st->state = RC_TS_PENDING;
      st->pending_since_ms = now;
    }
    if (st->state == RC_TS_PENDING && now - st->pending_since_ms >= t->for_ms) {
      st->state = RC_TS_FIRING;
      st->firing_since_ms = now;
      st->fired++;
      fire = 1;
    }
  } else if (st->state == RC_TS_PENDING) {
    st->state = RC_TS_INACTIVE;
    st->pending_since_ms = 0;
  } else if (st->state == RC_TS_FIRING && now - ts->last_true_ms >= t->keep_firing_for_ms) {
    st->state = RC_TS_INACTIVE;
    st->pending_since_ms = st->firing_since_ms = 0;
    resolve = 1;
    e->resolved++;
  }
  uint64_t lat = 0;
  if (fire) {
    if (t->dry_run) e->dry_fired++;
    else e->fired++;
    if (lat_start_ns != 0) {
      lat = uv_hrtime() - lat_start_ns;
      st->last_latency_ns = lat;
      record_latency(e, lat);
    }
  }
  uv_mutex_unlock(&e->mu);
  if (fire || resolve) transition(e, ts, fire, now, lat);
  (void)res;
}

static void gate_begin(rc_engine_t *e) {
  if (e->cfg.read_begin != NULL) e->cfg.read_begin(e->cfg.gate_ctx);
}

static void gate_end(rc_engine_t *e) {
  if (e->cfg.read_end != NULL) e->cfg.read_end(e->cfg.gate_ctx);
}

void rc_engine_set_gate(rc_engine_t *e, void (*read_begin)(void *), void (*read_end)(void *),
                        void *ctx) {
  e->cfg.read_begin = read_begin;
  e->cfg.read_end = read_end;
  e->cfg.gate_ctx = ctx;
}

/* One round: the triggers whose selectors saw data (all of them when full). */
static void round_once(rc_engine_t *e, int64_t now, int full) {
  uint64_t lat_start = atomic_exchange(&e->pending_ns, 0);
  memset(bun(e)->todo, full, bun(e)->ntr);
  for (uint32_t w = 0; w < bun(e)->ndirty; w++) {
    uint64_t bits = atomic_exchange_explicit(&bun(e)->dirty[w], 0, memory_order_acquire);
    while (bits) {
      uint32_t id = w * 64 + (uint32_t)__builtin_ctzll(bits);
      bits &= bits - 1;
      for (uint32_t k = 0; id < bun(e)->nentries && k < bun(e)->deps_n[id]; k++) bun(e)->todo[bun(e)->deps[id][k]] = 1;
    }
  }
  gate_begin(e);
  rc_query_begin(&e->q);
  for (uint32_t i = 0; i < bun(e)->ntr; i++)
    if (bun(e)->todo[i]) eval_trigger(e, &bun(e)->tr[i], now, lat_start);
  rc_query_end(&e->q);
  gate_end(e);
  uv_mutex_lock(&e->mu);
  e->rounds++;
  uv_mutex_unlock(&e->mu);
}

static int any_dirty(rc_engine_t *e) {
  if (atomic_load(&e->pending_ns) != 0) return 1;
  for (uint32_t w = 0; w < bun(e)->ndirty; w++)
    if (atomic_load(&bun(e)->dirty[w])) return 1;
  return 0;
}

/* Event-driven rounds are spaced by at least the last round's duration (and 0.5 ms): under a
 * stream of batches that touch many triggers the evaluator then takes at most about half a
 * core, instead of all of it, from ingest — and adds at most one round's duration to the
 * detection latency, which is what the round costs anyway. The timer's full rounds are not
 * held back. */
#define MIN_GAP_NS 500000u

static void engine_main(void *arg) {
  rc_engine_t *e = arg;
  uint64_t next_ok_ns = 0;
  while (!atomic_load(&e->stop)) {
    int64_t now = wall_ms();
    int full = now - e->last_full_ms >= e->cfg.interval_ms;
    uint64_t wait_ns = (uint64_t)(e->last_full_ms + e->cfg.interval_ms - now) * 1000000u;
    if (full || any_dirty(e)) {
      uint64_t t0 = uv_hrtime();
      if (!full && t0 < next_ok_ns) {
        /* Too soon after the last round: let the batches pile up into one round. */
        uint64_t gap = next_ok_ns - t0;
        wait_ns = gap < wait_ns ? gap : wait_ns;
        uv_mutex_lock(&e->wake_mu);
        if (!atomic_load(&e->stop)) uv_cond_timedwait(&e->wake_cv, &e->wake_mu, wait_ns);
        uv_mutex_unlock(&e->wake_mu);
        continue;
      }
      if (full) e->last_full_ms = now;
      round_once(e, now, full);
      uint64_t t1 = uv_hrtime(), dur = t1 - t0;
      next_ok_ns = t1 + (dur > MIN_GAP_NS ? dur : MIN_GAP_NS);
      continue;
    }
    /* Nothing to do, but the last round was too recent for the next: sleep out the gap with
     * idle clear, so that batches landing meanwhile only mark their triggers dirty. Going idle
     * at once instead had the next batch wake us only to wait for the gap: two more context
     * switches a round, about a tenth of a core at 10k series under inline ingest (perf,
     * issue 8). The detection latency is the same: a round could not start earlier. */
    uint64_t t = uv_hrtime();
    if (t < next_ok_ns) {
      uint64_t gap = next_ok_ns - t;
      uv_mutex_lock(&e->wake_mu);
      if (!atomic_load(&e->stop))
        uv_cond_timedwait(&e->wake_cv, &e->wake_mu, gap < wait_ns ? gap : wait_ns);
      uv_mutex_unlock(&e->wake_mu);
      continue;
    }
    /* Sleep until the next tick or a wake-up (see rc_engine_applied: idle is cleared before
     * the signal, and checked here under the mutex, so no wake-up is lost). */
    atomic_store(&e->idle, 1);
    atomic_thread_fence(memory_order_seq_cst);
    if (any_dirty(e)) {
      atomic_store(&e->idle, 0);
      continue;
    }
    uv_mutex_lock(&e->wake_mu);
    if (atomic_load(&e->idle) && !atomic_load(&e->stop))
      uv_cond_timedwait(&e->wake_cv, &e->wake_mu, wait_ns);
    uv_mutex_unlock(&e->wake_mu);
    atomic_store(&e->idle, 0);
  }
}

static int open_reader(rc_engine_t *e, rc_store_t *const *shards, uint32_t n, rc_err_t *err) {
  if (n > RC_QUERY_MAX_SHARDS) return rc_err_set(err, RC_EINVAL, "too many store shards");
  memcpy(e->shards, shards, n * sizeof(*shards));
  e->nshards = n;
  if (rc_query_init(&e->q, shards, n) != 0)
    return rc_err_set(err, RC_ELIMIT, "rule engine: no reader slot in the store");
  rc_eval_init(&e->ev, &e->q, e->cfg.compat, sel_id, e);
  e->ev.lookback_ms = e->cfg.lookback_ms;
  e->reader_open = 1;
  return 0;
}

static int start_thread(rc_engine_t *e, rc_err_t *err) {
  atomic_store(&e->stop, 0);
  if (uv_thread_create(&e->thread, engine_main, e) != 0)
    return rc_err_set(err, RC_ENOMEM, "cannot start the rule evaluator thread");
  e->running = 1;
  return 0;
}

int rc_engine_start(rc_engine_t *e, rc_store_t *const *shards, uint32_t nshards, rc_err_t *err) {
  int rc = open_reader(e, shards, nshards, err);
  return rc != 0 ? rc : start_thread(e, err);
}

/*------------------------------------------------------------------------------------------
 * Reload
 *----------------------------------------------------------------------------------------*/

static int same_expr(const rc_pq_expr_t *a, const rc_pq_expr_t *b) {
  if (a == NULL || b == NULL) return a == b;
  char x[4096], y[4096];
  size_t nx = rc_pq_format(a, x, sizeof(x)), ny = rc_pq_format(b, y, sizeof(y));
  if (nx >= sizeof(x) || ny >= sizeof(y)) return strcmp(a->text, b->text) == 0;
  return strcmp(x, y) == 0;
}

static int same_num(double a, double b) { return a == b || (isnan(a) && isnan(b)); }

/* Whether a trigger is unchanged by a reload: same target, name, expression and every
 * setting that decides its state. Only then does its state carry over. */
static int same_trigger(const tstate_t *a, const tstate_t *b) {
  const rc_trigger_t *x = a->trig, *y = b->trig;
  return strcmp(a->rule->service, b->rule->service) == 0 &&
         strcmp(a->rule->environment, b->rule->environment) == 0 &&
         strcmp(x->name, y->name) == 0 && x->op == y->op && same_num(x->threshold, y->threshold) &&
         same_num(x->warn_threshold, y->warn_threshold) &&
         same_num(x->resolve_threshold, y->resolve_threshold) && x->for_ms == y->for_ms &&
         x->keep_firing_for_ms == y->keep_firing_for_ms && x->min_samples == y->min_samples &&
         same_num(x->min_requests, y->min_requests) && x->no_data == y->no_data &&
         x->dry_run == y->dry_run && same_expr(x->expr, y->expr) &&
         same_expr(x->requests_expr, y->requests_expr);
}

int rc_engine_reload(rc_engine_t *e, rc_ruleset_t *rules, rc_selector_t *const *extra,
                     uint32_t nextra, rc_engine_swap_fn swap, void *swap_ctx, rc_err_t *err) {
  bundle_t *nb;
  int rc = bundle_build(rules, extra, nextra, &nb);
  if (rc != 0) {
    rc_engine_reload_failed(e);
    return rc_err_set(err, rc, "rule reload: %s", rc_strerror(rc));
  }
  bundle_t *old = bun(e);
  /* The evaluator is stopped for the swap: it walks the bundle and writes the trigger states
   * without a lock. Stopped first, so the states copied below are its last. */
  int was_running = e->running;
  rc_engine_stop(e);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < nb->ntr; i++)
    for (uint32_t j = 0; j < old->ntr; j++)
      if (same_trigger(&nb->tr[i], &old->tr[j])) {
        nb->tr[i].st = old->tr[j].st;
        nb->tr[i].last_true_ms = old->tr[j].last_true_ms;
        nb->tr[i].trend = old->tr[j].trend; /* same expression, so the same window */
        atomic_store(&nb->tr[i].clip_ms, atomic_load(&old->tr[j].clip_ms));
        kept++;
        break;
      }
  uv_mutex_lock(&e->mu);
  atomic_store_explicit(&e->cur, nb, memory_order_release);
  uv_mutex_unlock(&e->mu);
  rc = swap != NULL ? swap(swap_ctx, nb->idx) : 0;
  if (rc == 0) {
    bundle_free(old); /* every shard has switched: nothing uses its index or bitmap */
  } else {
    /* Some shard still selects with the old index: it must outlive the engine. */
    uv_mutex_lock(&e->mu);
    free(old->todo); /* the field becomes the graveyard link */
    old->todo = (uint8_t *)e->graveyard;
    e->graveyard = old;
    uv_mutex_unlock(&e->mu);
  }
  if (e->api_open) e->api_ev.adhoc_ids = nb->nentries;
  e->last_full_ms = 0; /* evaluate everything at once under the new rules */
  uv_mutex_lock(&e->mu);
  e->reloads_ok++;
  e->last_reload_ok = 1;
  e->last_reload_ms = wall_ms();
  uv_mutex_unlock(&e->mu);
  rc_log(RC_LOG_INFO, "rules reloaded", "rules=%u triggers=%u unchanged=%u index_swap=%s",
         nb->rules.n, nb->ntr, kept, rc == 0 ? "ok" : rc_strerror(rc));
  rc_err_t terr;
  if (was_running && start_thread(e, &terr) != 0) {
    rc_log(RC_LOG_ERROR, "cannot restart the rule evaluator after a reload", NULL);
    return rc_err_set(err, RC_ENOMEM, "%s", terr.msg);
  }
  return 0;
}

void rc_engine_refresh_deploys(rc_engine_t *e, rc_engine_deploy_fn fn, void *ctx) {
  bundle_t *b = bun(e);
  for (uint32_t i = 0; i < b->ntr; i++) {
    int64_t start;
    const rc_rule_t *r = b->tr[i].rule;
    if (fn(ctx, r->service, r->environment, &start) != 0) start = INT64_MIN;
    else if (start <= INT64_MAX - r->warmup_ms) start += r->warmup_ms;
    atomic_store_explicit(&b->tr[i].clip_ms, start, memory_order_relaxed);
  }
}

void rc_engine_reload_failed(rc_engine_t *e) {
  uv_mutex_lock(&e->mu);
  e->reloads_failed++;
  e->last_reload_ok = 0;
  uv_mutex_unlock(&e->mu);
}

void rc_engine_stop(rc_engine_t *e) {
  if (!e->running) return;
  atomic_store(&e->stop, 1);
  uv_mutex_lock(&e->wake_mu);
  uv_cond_signal(&e->wake_cv);
  uv_mutex_unlock(&e->wake_mu);
  uv_thread_join(&e->thread);
  e->running = 0;
}

int rc_engine_eval_once(rc_engine_t *e, rc_store_t *const *shards, uint32_t nshards,
                        int64_t now_ms) {
  if (e->running) return RC_EINVAL;
  rc_err_t err = {0};
  if (!e->reader_open && open_reader(e, shards, nshards, &err) != 0) return RC_ELIMIT;
  round_once(e, now_ms, 1);
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Ad-hoc queries
 *----------------------------------------------------------------------------------------*/

/* A sample value as Prometheus writes it in JSON: a string, NaN and infinities spelled out. */
static json_t *prom_value(double v) {
  char b[40];
  if (isnan(v)) snprintf(b, sizeof(b), "NaN");
  else if (isinf(v)) snprintf(b, sizeof(b), v > 0 ? "+Inf" : "-Inf");
  else snprintf(b, sizeof(b), "%.17g", v);
  return json_string(b);
}

static json_t *api_error(const char *type, const char *msg) {
  return json_pack("{s:s,s:s,s:s}", "status", "error", "errorType", type, "error", msg);
}

int rc_engine_query(rc_engine_t *e, const char *expr, size_t len, int64_t t_ms, rc_buf_t *out) {
  json_t *doc = NULL;
  int status = 200;
  rc_pq_expr_t *x = NULL;
  rc_err_t err = {0};
  if (e->nshards == 0) {
    status = 503;
    doc = api_error("unavailable", "the rule engine has not started");
  } else if (rc_pq_parse(expr, len, 0, &x, &err) != 0) {
    status = 400;
    char msg[220];
    snprintf(msg, sizeof(msg), "%d:%d: %s", err.line, err.col, err.msg);
    doc = api_error("bad_data", msg);
  } else {
    if (!e->api_open) {
      if (rc_query_init(&e->api_q, e->shards, e->nshards) != 0) {
        rc_pq_free(x);
        status = 503;
        doc = api_error("unavailable", "no reader slot left in the store");
        goto done;
      }
      rc_eval_init(&e->api_ev, &e->api_q, e->cfg.compat, sel_id, e);
      e->api_ev.lookback_ms = e->cfg.lookback_ms;
      e->api_ev.adhoc_ids = bun(e)->nentries;
      e->api_open = 1;
    }
    rc_eval_result_t r;
    gate_begin(e);
    rc_query_begin(&e->api_q);
    int rc = rc_eval(&e->api_ev, x, t_ms, &r, &err);
    double ts = (double)t_ms / 1000.0;
    if (rc != 0) {
      status = rc == RC_ENOMEM ? 500 : 422;
      doc = api_error("execution", err.msg);
    } else if (r.is_scalar) {
      doc = json_pack("{s:s,s:{s:s,s:[f,o]}}", "status", "success", "data", "resultType",
                      "scalar", "result", ts, prom_value(r.scalar));
    } else {
      json_t *res = json_array();
      for (uint32_t i = 0; i < r.n; i++) {
        json_t *m = json_object();
        for (uint32_t k = 0; k < r.v[i].nlabels; k++) {
          const rc_label_t *l = &r.v[i].labels[k];
          json_object_setn_new_nocheck(m, l->name, l->name_len,
                                       json_stringn_nocheck(l->value, l->value_len));
        }
        json_t *el;
        if (r.v[i].h != NULL)
          el = json_pack("{s:o,s:[f,{s:o,s:o}]}", "metric", m, "histogram", ts, "count",
                         prom_value(r.v[i].h->count), "sum", prom_value(r.v[i].h->sum));
        else
          el = json_pack("{s:o,s:[f,o]}", "metric", m, "value", ts, prom_value(r.v[i].v));
        json_array_append_new(res, el);
      }
      doc = json_pack("{s:s,s:{s:s,s:o}}", "status", "success", "data", "resultType", "vector",
                      "result", res);
    }
    rc_query_end(&e->api_q);
    gate_end(e);
    rc_pq_free(x);
  }
done:
  if (doc == NULL) return 500;
  char *s = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  if (s == NULL) return 500;
  rc_buf_puts(out, s);
  rc_buf_puts(out, "\n");
  free(s);
  return out->oom ? 500 : status;
}

/*------------------------------------------------------------------------------------------
 * Status
 *----------------------------------------------------------------------------------------*/

static const char *state_name(rc_trigger_state_t s) {
  return s == RC_TS_FIRING ? "firing" : s == RC_TS_PENDING ? "pending" : "inactive";
}

static const char *op_name(rc_cmp_t op) {
  return op == RC_CMP_GT ? ">" : op == RC_CMP_LE ? "<=" : op == RC_CMP_LT ? "<" : ">=";
}

/* JSON number, or null for NaN/Inf (JSON has neither). */
static json_t *num(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static json_t *ms_time(int64_t ms) { return ms ? json_integer(ms) : json_null(); }

/* history: {"span_ms", "step_ms", "end_ms", "points": [[t_ms, value], ...]}, the trend as it
 * was copied under the lock; the window ends at the trigger's last evaluation (wall time in the
 * daemon, the simulated instant in replays). */
static json_t *history_json(const rc_trend_t *t, int64_t end_ms) {
  rc_trend_point_t pts[RC_TREND_POINTS];
  size_t n = end_ms ? rc_trend_points(t, end_ms, pts) : 0;
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < n; i++)
    json_array_append_new(arr, json_pack("[I,f]", (json_int_t)pts[i].t_ms, pts[i].v));
  return json_pack("{s:I,s:I,s:o,s:o}", "span_ms", (json_int_t)t->span_ms, "step_ms",
                   (json_int_t)t->step_ms, "end_ms", ms_time(end_ms), "points", arr);
}

int rc_engine_render_json(rc_engine_t *e, int history, rc_buf_t *out) {
  json_t *rules = json_array();
  /* With history, the trends are copied under the lock and turned into JSON after it: the
   * evaluator waits on this lock to publish a round, and sixty numbers per trigger would
   * hold it long enough to show in the detection latency. The bundle cannot change meanwhile:
   * reloads run on this (the loop) thread. */
  const bundle_t *b = bun(e);
  uint32_t ntr = b->ntr;
  rc_trend_t *snap = NULL;
  int64_t *ends = NULL;
  json_t **objs = NULL;
  if (history) {
    snap = malloc((ntr ? ntr : 1) * sizeof(*snap));
    ends = calloc(ntr ? ntr : 1, sizeof(*ends));
    objs = calloc(ntr ? ntr : 1, sizeof(*objs));
    if (snap == NULL || ends == NULL || objs == NULL) {
      free(snap);
      free(ends);
      free(objs);
      json_decref(rules);
      return RC_ENOMEM;
    }
  }
  uv_mutex_lock(&e->mu);
  json_t *cur = NULL;
  for (uint32_t i = 0; i < ntr; i++) {
    const tstate_t *ts = &b->tr[i];
    if (ts->trig_idx == 0) {
      const rc_rule_t *r = ts->rule;
      cur = json_array();
      json_t *notify = json_array();
      for (uint32_t k = 0; k < r->nnotify; k++)
        json_array_append_new(notify, json_pack("{s:s,s:s}", "kind", r->notify[k].kind,
                                                "target", r->notify[k].target));
      json_array_append_new(rules, json_pack("{s:s,s:i,s:s,s:s,s:s,s:o,s:o}", "file", r->file,
                                             "line", r->line, "service", r->service,
                                             "environment", r->environment, "action",
                                             r->action ? r->action : "", "notify", notify,
                                             "triggers", cur));
    }
    const rc_trigger_t *t = ts->trig;
    const rc_trigger_status_t *st = &ts->st;
    json_t *o = json_pack(
        "{s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:s,s:o,s:o,s:o,s:b,s:b,s:b,s:I,s:I,s:I,s:f,s:o}",
        "name", t->name, "expr", t->expr && t->expr->text ? t->expr->text : "", "op",
        op_name(t->op), "threshold", num(t->threshold), "warn_threshold", num(t->warn_threshold),
        "resolve_threshold", num(t->resolve_threshold), "value", st->has_value ? num(st->value)
                                                                                : json_null(),
        "state", state_name(st->state), "pending_since_ms", ms_time(st->pending_since_ms),
        "firing_since_ms", ms_time(st->firing_since_ms), "last_eval_ms",
        ms_time(st->last_eval_ms), "warning", st->warning, "no_data", st->no_data, "dry_run",
        t->dry_run, "evaluations", (json_int_t)st->evaluations, "fired", (json_int_t)st->fired,
        "failures", (json_int_t)st->failures, "last_evaluation_seconds",
        (double)st->last_eval_ns / 1e9, "last_detection_latency_seconds",
        st->last_latency_ns ? json_real((double)st->last_latency_ns / 1e9) : json_null());
    if (o != NULL && st->error[0]) json_object_set_new(o, "error", json_string(st->error));
    /* The window as rollback events name it: an expr: trigger's is its longest range. */
    int64_t win = t->window_ms ? t->window_ms : t->expr ? t->expr->max_range_ms : 0;
    if (o != NULL && win) json_object_set_new(o, "window_ms", json_integer(win));
    if (o != NULL && t->for_ms) json_object_set_new(o, "for_ms", json_integer(t->for_ms));
    if (history) {
      snap[i] = ts->trend;
      ends[i] = st->last_eval_ms;
      objs[i] = json_incref(o); /* our own reference: an append may fail and drop o */
    }
    if (cur != NULL && o != NULL) json_array_append_new(cur, o);
  }
  json_t *doc = json_pack("{s:s,s:{s:o,s:I,s:I}}", "status", "success", "data", "rules", rules,
                          "rounds", (json_int_t)e->rounds, "evaluations",
                          (json_int_t)e->evaluations);
  uv_mutex_unlock(&e->mu);
  for (uint32_t i = 0; history && i < ntr; i++) {
    if (objs[i] != NULL) json_object_set_new(objs[i], "history", history_json(&snap[i], ends[i]));
    json_decref(objs[i]);
  }
  free(snap);
  free(ends);
  free(objs);
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  if (s == NULL) return RC_ENOMEM;
  rc_buf_puts(out, s);
  rc_buf_puts(out, "\n");
  free(s);
  return out->oom ? RC_ENOMEM : 0;
}

/* A label value in the text exposition format: backslash, quote and newline escaped. */
static void put_label_value(rc_buf_t *o, const char *s) {
  for (; s != NULL && *s; s++) {
    if (*s == '\\') rc_buf_puts(o, "\\\\");
    else if (*s == '"') rc_buf_puts(o, "\\\"");
    else if (*s == '\n') rc_buf_puts(o, "\\n");
    else rc_buf_append(o, s, 1);
  }
}

void rc_engine_render_metrics(rc_engine_t *e, rc_buf_t *o) {
  uv_mutex_lock(&e->mu);
  rc_buf_printf(o,
                "# HELP ripcord_rule_triggers Rollback triggers loaded.\n"
                "# TYPE ripcord_rule_triggers gauge\nripcord_rule_triggers %u\n"
                "# HELP ripcord_rule_evaluation_rounds_total Evaluation rounds (batch- or timer-driven).\n"
                "# TYPE ripcord_rule_evaluation_rounds_total counter\n"
                "ripcord_rule_evaluation_rounds_total %llu\n"
                "# HELP ripcord_rule_evaluations_total Trigger evaluations.\n"
                "# TYPE ripcord_rule_evaluations_total counter\nripcord_rule_evaluations_total %llu\n"
                "# HELP ripcord_rule_evaluation_failures_total Trigger evaluations that failed (PromQL errors).\n"
                "# TYPE ripcord_rule_evaluation_failures_total counter\n"
                "ripcord_rule_evaluation_failures_total %llu\n"
                "# HELP ripcord_rule_evaluation_seconds_total Time spent evaluating triggers.\n"
                "# TYPE ripcord_rule_evaluation_seconds_total counter\n"
                "ripcord_rule_evaluation_seconds_total %.9f\n"
                "# HELP ripcord_rule_fired_total Triggers that started firing (dry runs apart).\n"
                "# TYPE ripcord_rule_fired_total counter\nripcord_rule_fired_total %llu\n"
                "# HELP ripcord_rule_dry_run_fired_total Dry-run triggers that started firing.\n"
                "# TYPE ripcord_rule_dry_run_fired_total counter\nripcord_rule_dry_run_fired_total %llu\n"
                "# HELP ripcord_rule_resolved_total Firing triggers that resolved.\n"
                "# TYPE ripcord_rule_resolved_total counter\nripcord_rule_resolved_total %llu\n"
                "# HELP ripcord_rule_warnings_total Triggers that entered their warn band.\n"
                "# TYPE ripcord_rule_warnings_total counter\nripcord_rule_warnings_total %llu\n",
                bun(e)->ntr, (unsigned long long)e->rounds, (unsigned long long)e->evaluations,
                (unsigned long long)e->failures, (double)e->eval_ns_total / 1e9,
                (unsigned long long)e->fired, (unsigned long long)e->dry_fired,
                (unsigned long long)e->resolved, (unsigned long long)e->warnings);
  rc_buf_printf(o,
                "# HELP ripcord_rules_reloads_total Rule reloads, by result.\n"
                "# TYPE ripcord_rules_reloads_total counter\n"
                "ripcord_rules_reloads_total{result=\"success\"} %llu\n"
                "ripcord_rules_reloads_total{result=\"failure\"} %llu\n"
                "# HELP ripcord_rules_last_reload_successful 1 if the last reload loaded every "
                "rule file, 0 if it failed (the previous rules stay in force).\n"
                "# TYPE ripcord_rules_last_reload_successful gauge\n"
                "ripcord_rules_last_reload_successful %d\n",
                (unsigned long long)e->reloads_ok, (unsigned long long)e->reloads_failed,
                e->last_reload_ok);
  rc_buf_puts(o, "# HELP ripcord_rule_detection_latency_seconds From the arrival of the first "
                 "request not yet evaluated to a trigger firing.\n"
                 "# TYPE ripcord_rule_detection_latency_seconds histogram\n");
  for (size_t i = 0; i < NLAT; i++)
    rc_buf_printf(o, "ripcord_rule_detection_latency_seconds_bucket{le=\"%g\"} %llu\n",
                  lat_bounds[i], (unsigned long long)e->lat_buckets[i]);
  rc_buf_printf(o,
                "ripcord_rule_detection_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
                "ripcord_rule_detection_latency_seconds_sum %.9f\n"
                "ripcord_rule_detection_latency_seconds_count %llu\n",
                (unsigned long long)e->lat_count, e->lat_sum, (unsigned long long)e->lat_count);
  if (bun(e)->ntr > 0) /* a TYPE line without samples is not valid exposition */
    rc_buf_puts(o, "# HELP ripcord_rule_trigger_state 0 inactive, 1 pending, 2 firing.\n"
                   "# TYPE ripcord_rule_trigger_state gauge\n");
  for (uint32_t i = 0; i < bun(e)->ntr; i++) {
    const tstate_t *ts = &bun(e)->tr[i];
    rc_buf_puts(o, "ripcord_rule_trigger_state{service=\"");
    put_label_value(o, ts->rule->service);
    rc_buf_puts(o, "\",environment=\"");
    put_label_value(o, ts->rule->environment);
    rc_buf_puts(o, "\",trigger=\"");
    put_label_value(o, ts->trig->name);
    rc_buf_printf(o, "\"} %d\n", (int)ts->st.state);
  }
  uv_mutex_unlock(&e->mu);
}

int rc_engine_status(rc_engine_t *e, uint32_t rule, uint32_t trigger, rc_trigger_status_t *out) {
  int rc = RC_ENOENT;
  uv_mutex_lock(&e->mu);
  for (uint32_t i = 0; i < bun(e)->ntr; i++)
    if (bun(e)->tr[i].rule_idx == rule && bun(e)->tr[i].trig_idx == trigger) {
      *out = bun(e)->tr[i].st;
      rc = 0;
    }
  uv_mutex_unlock(&e->mu);
  return rc;
}
