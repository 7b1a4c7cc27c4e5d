/* store.c: series table, selection, appends and retention; see store.h.
 *
 * The series table is open addressing with linear probing over pointers, keyed by the
 * 128-bit label hash (the low 64 bits pick the slot, all 128 are compared, as the decision
 * cache does). Deletion uses backward shifting, so there are no tombstones and probe chains
 * stay short under churn. Capacity is fixed at creation (a power of two >= 2 x max_series),
 * so the table never rehashes on the ingest path.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "log.h"

typedef struct counters {
  _Atomic uint64_t series, created, removed, refused, dropped_series, dropped_samples,
      appended, too_old, dups, conflicts, hist_skipped, bytes, ahead;
  _Atomic int64_t watermark;
} counters_t;

/* The series of one selector id. */
typedef struct selvec {
  uint32_t id;
  uint32_t n, cap;
  rc_store_series_t **v;
} selvec_t;

typedef struct ptrvec {
  rc_store_series_t **v;
  uint32_t n, cap;
} ptrvec_t;

struct rc_store {
  rc_store_cfg_t cfg;
  const rc_selindex_t *idx;
  rc_selindex_cache_t *cache;
  rc_matcher_scratch_t *scratch; /* for re-matching held series on reload */
  rc_store_series_t **tab;
  uint32_t mask;
  uint32_t nseries;
  int64_t watermark, last_sweep;
  selvec_t *sel; /* sorted by id */
  uint32_t nsel, capsel;
  ptrvec_t changed; /* series touched by the last apply */
  uint64_t applies;
  rc_complaint_t full_complaint, ahead_complaint;
  counters_t c;
};

static int ptr_push(rc_store_series_t ***v, uint32_t *n, uint32_t *cap, rc_store_series_t *r) {
  if (*n == *cap) {
    uint32_t nc = *cap ? *cap * 2 : 16;
    rc_store_series_t **nv = realloc(*v, nc * sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = r;
  return 0;
}

/* The vector of selector id, created (kept sorted) when missing. NULL when out of memory. */
static selvec_t *selvec_get(rc_store_t *s, uint32_t id, int create) {
  uint32_t lo = 0, hi = s->nsel;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (s->sel[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  if (lo < s->nsel && s->sel[lo].id == id) return &s->sel[lo];
  if (!create) return NULL;
  if (s->nsel == s->capsel) {
    uint32_t nc = s->capsel ? s->capsel * 2 : 8;
    selvec_t *nv = realloc(s->sel, nc * sizeof(*nv));
    if (nv == NULL) return NULL;
    s->sel = nv;
    s->capsel = nc;
  }
  memmove(&s->sel[lo + 1], &s->sel[lo], (s->nsel - lo) * sizeof(*s->sel));
  s->sel[lo] = (selvec_t){.id = id};
  s->nsel++;
  return &s->sel[lo];
}

static int selvec_add(rc_store_t *s, rc_store_series_t *r) {
  const uint32_t *ids = rc_store_series_sel(r);
  for (uint32_t k = 0; k < r->nsel; k++) {
    selvec_t *v = selvec_get(s, ids[k], 1);
    if (v == NULL || ptr_push(&v->v, &v->n, &v->cap, r) != 0) return RC_ENOMEM;
  }
  return 0;
}

/* Rebuilds every selector's list from the table: after series were removed (rare: a sweep
 * that aged some out, a reload), O(series) once instead of a search per removal. */
static int selvec_rebuild(rc_store_t *s) {
  for (uint32_t i = 0; i < s->nsel; i++) s->sel[i].n = 0;
  for (uint32_t i = 0; i <= s->mask; i++)
    if (s->tab[i] != NULL && selvec_add(s, s->tab[i]) != 0) return RC_ENOMEM;
  return 0;
}

static void add(_Atomic uint64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

int rc_store_new(const rc_store_cfg_t *cfg, const rc_selindex_t *idx, rc_store_t **out) {
  *out = NULL;
  if (cfg->max_series == 0 || cfg->max_series > (1u << 28) || cfg->cache_entries == 0)
    return RC_EINVAL;
  rc_store_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return RC_ENOMEM;
  s->cfg = *cfg;
  s->idx = idx;
  uint32_t cap = 16;
  while (cap < cfg->max_series * 2u) cap <<= 1;
  s->tab = calloc(cap, sizeof(*s->tab));
  rc_selindex_cache_opts_t co = {.max_entries = cfg->cache_entries, .policy = RC_SELINDEX_EVICT};
  s->scratch = rc_matcher_scratch_new();
  if (s->tab == NULL || s->scratch == NULL || rc_selindex_cache_new(&co, &s->cache) != 0) {
    rc_matcher_scratch_free(s->scratch);
    free(s->tab);
    free(s);
    return RC_ENOMEM;
  }
  s->mask = cap - 1;
  s->watermark = INT64_MIN;
  s->last_sweep = INT64_MIN;
  atomic_store(&s->c.watermark, INT64_MIN);
  *out = s;
  return 0;
}

static size_t series_bytes(const rc_store_series_t *r) {
  return sizeof(*r) + 16 + r->nsel * sizeof(uint32_t) + r->label_bytes + 16 +
         rc_window_bytes(&r->win);
}

static void series_free(rc_store_series_t *r) {
  rc_window_free(&r->win);
  free(r->data);
  free(r);
}

uint32_t rc_store_series_labels(const rc_store_series_t *r, rc_label_t *out, uint32_t max) {
  const uint8_t *p = r->data + r->nsel * sizeof(uint32_t);
  for (uint32_t i = 0; i < r->nlabels && i < max; i++) {
    uint16_t nl, vl;
    memcpy(&nl, p, 2);
    out[i].name = (const char *)p + 2;
    out[i].name_len = nl;
    p += 2 + nl;
    memcpy(&vl, p, 2);
    out[i].value = (const char *)p + 2;
    out[i].value_len = vl;
    p += 2 + vl;
  }
  return r->nlabels;
}

void rc_store_free(rc_store_t *s) {
  if (s == NULL) return;
  for (uint32_t i = 0; i <= s->mask; i++)
    if (s->tab[i]) series_free(s->tab[i]);
  free(s->tab);
  for (uint32_t i = 0; i < s->nsel; i++) free(s->sel[i].v);
  free(s->sel);
  free(s->changed.v);
  rc_matcher_scratch_free(s->scratch);
  rc_selindex_cache_free(s->cache);
  free(s);
}

static int hash_eq(rc_selindex_hash_t a, rc_selindex_hash_t b) { return a.lo == b.lo && a.hi == b.hi; }

static uint32_t find_slot(const rc_store_t *s, rc_selindex_hash_t h) {
  uint32_t i = (uint32_t)h.lo & s->mask;
  while (s->tab[i] != NULL && !hash_eq(s->tab[i]->h, h)) i = (i + 1) & s->mask;
  return i;
}

/* Backward-shift deletion for linear probing. */
static void remove_slot(rc_store_t *s, uint32_t i) {
  uint32_t j = i;
  for (;;) {
    s->tab[i] = NULL;
    for (;;) {
      j = (j + 1) & s->mask;
      if (s->tab[j] == NULL) return;
      uint32_t home = (uint32_t)s->tab[j]->h.lo & s->mask;
      /* Move tab[j] into the hole at i unless its home lies cyclically in (i, j]. */
      if (i <= j ? (i < home && home <= j) : (i < home || home <= j)) continue;
      break;
    }
    s->tab[i] = s->tab[j];
    i = j;
  }
}

static rc_store_series_t *series_new(const rc_series_t *src, rc_selindex_hash_t h,
                                     const uint32_t *ids, uint32_t nids) {
  size_t lbytes = 0;
  for (uint32_t i = 0; i < src->nlabels; i++) {
    /* 16-bit lengths: the decoder caps a label set at --ingest.max-labels and 64 KiB. */
    if (src->labels[i].name_len > UINT16_MAX || src->labels[i].value_len > UINT16_MAX)
      return NULL;
    lbytes += 4 + src->labels[i].name_len + src->labels[i].value_len;
  }
  if (nids > UINT16_MAX || src->nlabels > UINT16_MAX) return NULL;
  rc_store_series_t *r = calloc(1, sizeof(*r));
  uint8_t *d = malloc(nids * sizeof(uint32_t) + lbytes + 1);
  if (r == NULL || d == NULL) {
    free(r);
    free(d);
    return NULL;
  }
  memcpy(d, ids, nids * sizeof(uint32_t));
  uint8_t *p = d + nids * sizeof(uint32_t);
  for (uint32_t i = 0; i < src->nlabels; i++) {
    const rc_label_t *x = &src->labels[i];
    uint16_t nl = (uint16_t)x->name_len, vl = (uint16_t)x->value_len;
    memcpy(p, &nl, 2);
    memcpy(p + 2, x->name, nl);
    p += 2 + nl;
    memcpy(p, &vl, 2);
    memcpy(p + 2, x->value, vl);
    p += 2 + vl;
  }
  r->h = h;
  r->data = d;
  r->nsel = (uint16_t)nids;
  r->nlabels = (uint16_t)src->nlabels;
  r->label_bytes = (uint32_t)lbytes;
  rc_window_init(&r->win);
  return r;
}

/* Replaces a series' selector ids (the label bytes stay). Returns 0 or RC_ENOMEM. */
static int series_set_sel(rc_store_series_t *r, const uint32_t *ids, uint32_t nids) {
  if (nids > UINT16_MAX) return RC_EINVAL;
  uint8_t *d = malloc(nids * sizeof(uint32_t) + r->label_bytes + 1);
  if (d == NULL) return RC_ENOMEM;
  memcpy(d, ids, nids * sizeof(uint32_t));
  memcpy(d + nids * sizeof(uint32_t), r->data + r->nsel * sizeof(uint32_t), r->label_bytes);
  free(r->data);
  r->data = d;
  r->nsel = (uint16_t)nids;
  return 0;
}

int rc_store_set_index(rc_store_t *s, const rc_selindex_t *idx) {
  s->idx = idx;
  s->changed.n = 0;
  uint32_t max = idx ? rc_selindex_size(idx) : 0, cap = 64;
  uint32_t *ids = malloc((max ? max : 1) * sizeof(uint32_t));
  rc_label_t *lbl = malloc(cap * sizeof(rc_label_t));
  int rc = ids && lbl ? 0 : RC_ENOMEM;
  for (uint32_t i = 0; rc == 0 && i <= s->mask; i++) {
    rc_store_series_t *r = s->tab[i];
    if (r == NULL) continue;
    if (r->nlabels > cap) { /* label sets may be as large as --ingest.max-labels allows */
      rc_label_t *nl = realloc(lbl, r->nlabels * sizeof(rc_label_t));
      if (nl == NULL) {
        rc = RC_ENOMEM;
        break;
      }
      lbl = nl;
      cap = r->nlabels;
    }
    uint32_t nl = rc_store_series_labels(r, lbl, cap);
    uint32_t n = idx ? rc_selindex_match(idx, s->scratch, lbl, nl, ids, max) : 0;
    if (n > max) n = max;
    if (n == 0) {
      remove_slot(s, i);
      series_free(r);
      s->nseries--;
      add(&s->c.removed, 1);
      if (s->tab[i] != NULL) i--; /* the shift moved an unvisited entry here */
      continue;
    }
    rc = series_set_sel(r, ids, n);
  }
  free(ids);
  free(lbl);
  atomic_store_explicit(&s->c.series, s->nseries, memory_order_relaxed);
  return rc != 0 ? rc : selvec_rebuild(s);
}

void rc_store_changed(rc_store_t *s, rc_store_series_t *const **out, uint32_t *n) {
  *out = s->changed.v;
  *n = s->changed.n;
}

/* Expires chunks past the retention and removes series left empty. Runs when the watermark
 * has moved a chunk span since the last sweep, so its O(series) cost is amortised. */
static void sweep(rc_store_t *s) {
  /* Saturating: a sender may send timestamps near INT64_MIN. */
  int64_t ret = s->cfg.window.retention_ms;
  int64_t cutoff = s->watermark < INT64_MIN + ret ? INT64_MIN : s->watermark - ret;
  uint64_t bytes = 0, removed = 0;
  for (uint32_t i = 0; i <= s->mask; i++) {
    rc_store_series_t *r = s->tab[i];
    if (r == NULL) continue;
    rc_window_expire(&r->win, &s->cfg.window, cutoff);
    if (rc_window_empty(&r->win)) {
      remove_slot(s, i);
      series_free(r);
      s->nseries--;
      removed++;
      add(&s->c.removed, 1);
      /* The shift may have moved an unvisited entry into slot i: look at it again. */
      if (s->tab[i] != NULL) i--;
      continue;
    }
    bytes += series_bytes(r);
  }
  atomic_store_explicit(&s->c.series, s->nseries, memory_order_relaxed);
  atomic_store_explicit(&s->c.bytes, bytes, memory_order_relaxed);
  s->last_sweep = s->watermark;
  if (removed) {
    s->changed.n = 0; /* it may name freed series */
    selvec_rebuild(s); /* out of memory here leaves lists short until the next rebuild */
  }
}

int rc_store_apply(rc_store_t *s, const rc_batch_t *b) {
  s->changed.n = 0;
  s->applies++;
  int64_t ahead_limit = INT64_MAX;
  if (s->cfg.max_ahead_ms > 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    ahead_limit = now_ms + s->cfg.max_ahead_ms;
  }
  uint64_t ahead = 0;
  uint64_t dropped = 0, dropped_samples = 0, appended = 0, too_old = 0, dups = 0, conflicts = 0,
           hist = 0, refused = 0;
  if (s->idx == NULL || rc_selindex_size(s->idx) == 0) {
    /* No selector at all: every series is dropped, no need to hash or cache anything. */
    for (uint32_t k = 0; k < b->nseries; k++) {
      hist += b->series[k].nhistograms;
      dropped += b->series[k].nsamples != 0;
      dropped_samples += b->series[k].nsamples;
    }
    add(&s->c.dropped_series, dropped);
    add(&s->c.dropped_samples, dropped_samples);
    add(&s->c.hist_skipped, hist);
    return 0;
  }
  /* Hash the series a group at a time and prefetch their cache slots before deciding, so
   * that the cache misses of a large decision table overlap instead of queueing up. */
  enum { GROUP = 16 };
  rc_selindex_hash_t hs[GROUP];
  for (uint32_t k = 0; k < b->nseries; k++) {
    const rc_series_t *src = &b->series[k];
    if (k % GROUP == 0) {
      for (uint32_t j = k; j < b->nseries && j < k + GROUP; j++) {
        hs[j - k] = rc_selindex_hash_labels(b->series[j].labels, b->series[j].nlabels);
        rc_selindex_cache_prefetch(s->cache, hs[j - k]);
      }
    }
    hist += src->nhistograms;
    if (src->nsamples == 0) continue;
    rc_selindex_hash_t h = hs[k % GROUP];
    rc_selindex_decision_t d = {0};
    if (rc_selindex_cache_decide_hashed(s->cache, s->idx, h, src->labels, src->nlabels, &d) != 0 ||
        d.n == 0) {
      dropped++;
      dropped_samples += src->nsamples;
      continue;
    }
    uint32_t slot = find_slot(s, h);
    rc_store_series_t *r = s->tab[slot];
    if (r == NULL) {
      if (s->nseries >= s->cfg.max_series) {
        refused++;
        rc_log_complain(&s->full_complaint, uv_hrtime() / 1000000u, 60000, RC_LOG_WARN,
                        "series limit reached: new series refused", "max_series=%u",
                        s->cfg.max_series);
        continue;
      }
      r = series_new(src, h, d.ids, d.n);
      if (r == NULL) return RC_ENOMEM;
      s->tab[slot] = r;
      s->nseries++;
      add(&s->c.created, 1);
      if (selvec_add(s, r) != 0) return RC_ENOMEM;
    }
    for (uint32_t i = 0; i < src->nsamples; i++) {
      const rc_sample_t *x = &src->samples[i];
      if (x->ts_ms > ahead_limit) {
        ahead++;
        continue;
      }
      int rc = rc_window_append(&r->win, &s->cfg.window, x->ts_ms, x->value);
      switch (rc) {
        case 0:
          appended++;
          r->appended++;
          if (r->touched != s->applies) {
            r->touched = s->applies;
            if (ptr_push(&s->changed.v, &s->changed.n, &s->changed.cap, r) != 0) return RC_ENOMEM;
          }
          break;
        case RC_ETOOOLD: too_old++; break;
        case RC_EDUP: dups++; break;
        case RC_ECONFLICT: conflicts++; break;
        default: return rc;
      }
      if (x->ts_ms > s->watermark) s->watermark = x->ts_ms;
    }
  }
  add(&s->c.dropped_series, dropped);
  add(&s->c.dropped_samples, dropped_samples);
  add(&s->c.appended, appended);
  add(&s->c.too_old, too_old);
  add(&s->c.ahead, ahead);
  if (ahead)
    rc_log_complain(&s->ahead_complaint, uv_hrtime() / 1000000u, 60000, RC_LOG_WARN,
                    "samples ahead of the clock refused", "count=%llu max_ahead_ms=%lld",
                    (unsigned long long)ahead, (long long)s->cfg.max_ahead_ms);
  add(&s->c.dups, dups);
  add(&s->c.conflicts, conflicts);
  add(&s->c.hist_skipped, hist);
  add(&s->c.refused, refused);
  atomic_store_explicit(&s->c.watermark, s->watermark, memory_order_relaxed);
  atomic_store_explicit(&s->c.series, s->nseries, memory_order_relaxed);
  if (s->watermark != INT64_MIN &&
      (s->last_sweep == INT64_MIN ||
       (uint64_t)s->watermark - (uint64_t)s->last_sweep >= (uint64_t)s->cfg.window.chunk_span_ms))
    sweep(s);
  return 0;
}

rc_store_series_t *rc_store_find(rc_store_t *s, const rc_label_t *labels, uint32_t n) {
  rc_selindex_hash_t h = rc_selindex_hash_labels(labels, n);
  return s->tab[find_slot(s, h)];
}

int rc_store_foreach(rc_store_t *s, uint32_t sel_id,
                     int (*cb)(void *ctx, rc_store_series_t *series), void *ctx) {
  selvec_t *v = selvec_get(s, sel_id, 0);
  for (uint32_t i = 0; v != NULL && i < v->n; i++) {
    int rc = cb(ctx, v->v[i]);
    if (rc != 0) return rc;
  }
  return 0;
}

void rc_store_stats(const rc_store_t *s, rc_store_stats_t *o) {
  counters_t *c = (counters_t *)&s->c;
  o->series = atomic_load_explicit(&c->series, memory_order_relaxed);
  o->series_created = atomic_load_explicit(&c->created, memory_order_relaxed);
  o->series_removed = atomic_load_explicit(&c->removed, memory_order_relaxed);
  o->refused_series = atomic_load_explicit(&c->refused, memory_order_relaxed);
  o->dropped_series = atomic_load_explicit(&c->dropped_series, memory_order_relaxed);
  o->dropped_samples = atomic_load_explicit(&c->dropped_samples, memory_order_relaxed);
  o->appended = atomic_load_explicit(&c->appended, memory_order_relaxed);
  o->too_old = atomic_load_explicit(&c->too_old, memory_order_relaxed);
  o->too_far_ahead = atomic_load_explicit(&c->ahead, memory_order_relaxed);
  o->duplicates = atomic_load_explicit(&c->dups, memory_order_relaxed);
  o->conflicts = atomic_load_explicit(&c->conflicts, memory_order_relaxed);
  o->histograms_skipped = atomic_load_explicit(&c->hist_skipped, memory_order_relaxed);
  o->bytes = atomic_load_explicit(&c->bytes, memory_order_relaxed);
  o->watermark_ms = atomic_load_explicit(&c->watermark, memory_order_relaxed);
}
