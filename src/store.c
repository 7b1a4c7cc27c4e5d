/* store.c: series table, selection, appends and retention; see store.h.
 *
 * The series table is open addressing with linear probing over pointers, keyed by the
 * 128-bit label hash (the low 64 bits pick the slot, all 128 are compared, as the decision
 * cache does). Deletion uses backward shifting, so there are no tombstones and probe chains
 * stay short under churn. Capacity is fixed at creation (a power of two >= 2 x max_series),
 * so the table never rehashes on the ingest path. The table is the writer's alone: readers
 * reach series only through the selector lists, which are published copy-on-write (store.h).
 *
 * Memory: everything the store keeps past one call — itself, the table, the decision cache,
 * selector lists, series, label blobs, windows, the EBR's list — is allocated from the store's
 * accountant (mem.h) and freed to it, the EBR included (it frees with the same accountant), so
 * rc_store_stats().bytes is exact at every moment. Temporaries freed before a call returns
 * (the reload's id and label buffers, the rebuild's counters) are plain malloc.
 */
#include "store.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "log.h"
#include "rw_decode.h"

typedef struct counters {
  _Atomic uint64_t series, created, removed, refused, dropped_series, dropped_samples,
      appended, too_old, dups, conflicts, hist_appended, hist_invalid, hist_dropped, ahead,
      mem_series, mem_samples, mem_hist;
  _Atomic int64_t watermark;
} counters_t;

/* The series of one selector id: an array readers walk up to the published length. The
 * writer appends in place while there is room (element first, then the length, release), and
 * otherwise copies into a larger array, publishes it and retires the old one. */
typedef struct selarr {
  _Atomic uint32_t n;
  uint32_t cap;
  rc_store_series_t *v[];
} selarr_t;

/* Every selector id that has series, sorted by id; replaced whole when an id is added. */
typedef struct seltab {
  uint32_t n, cap;
  struct selent {
    uint32_t id;
    selarr_t *_Atomic arr;
  } e[];
} seltab_t;

typedef struct ptrvec {
  rc_store_series_t **v;
  uint32_t n, cap;
} ptrvec_t;

struct rc_store {
  rc_store_cfg_t cfg;
  /* Labels a decoder left raw (rc_series_t.labels NULL), unpacked for a decision or a new
   * series; reused, grown to the largest label set seen. */
  rc_label_t *unpacked;
  uint32_t unpacked_cap;
  rc_mem_t *mem;      /* cfg.mem, or own */
  rc_mem_t *own;      /* the accountant when the caller gave none (plain malloc) */
  const rc_selindex_t *idx;
  rc_selindex_cache_t *cache;
  rc_matcher_scratch_t *scratch; /* for re-matching held series on reload */
  rc_store_series_t **tab;
  uint32_t mask;
  uint32_t nseries;
  int64_t watermark, last_sweep;
  seltab_t *_Atomic sel;
  ptrvec_t changed; /* series touched by the last apply */
  ptrvec_t removed; /* series unlinked from the table, to retire once the lists drop them */
  /* Some held series may be missing from a selector list (an allocation failed adding it, or
   * a rebuild failed): the sweep walks the table instead of the lists until a rebuild. */
  int lists_incomplete;
  uint64_t applies;
  rc_complaint_t full_complaint, ahead_complaint, mem_complaint;
  int has_ebr;
  rc_ebr_t ebr;
  counters_t c;
};

static int ptr_push(rc_mem_t *m, rc_store_series_t ***v, uint32_t *n, uint32_t *cap,
                    rc_store_series_t *r) {
  if (*n == *cap) {
    uint32_t nc = *cap ? *cap * 2 : 16;
    rc_store_series_t **nv = rc_mem_realloc(m, *v, nc * sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = r;
  return 0;
}

/* Frees p now when no other thread reads, else once no reader can hold it; either way with
 * the store's accountant (the EBR's is the same). */
static void retire(rc_store_t *s, void *p, rc_ebr_free_fn fn) {
  if (p == NULL) return;
  if (s->has_ebr) rc_ebr_retire(&s->ebr, p, fn);
  else fn(s->mem, p);
}

static seltab_t *seltab(const rc_store_t *s) {
  return atomic_load_explicit(&((rc_store_t *)s)->sel, memory_order_acquire);
}

/* The entry of selector id in t, or NULL. */
static struct selent *selent_find(seltab_t *t, uint32_t id) {
  uint32_t lo = 0, hi = t ? t->n : 0;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (t->e[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  return t && lo < t->n && t->e[lo].id == id ? &t->e[lo] : NULL;
}

/* The entry of selector id, added (a new table published) when missing. NULL: no memory.
 * gcc 12's analyzer treats t as the atomic load itself, re-done at each use, and reports the
 * NULL it allows for the first as dereferenced by the later ones inside `if (t != NULL)`. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-null-dereference"
#endif
static struct selent *selent_get(rc_store_t *s, uint32_t id) {
  seltab_t *t = seltab(s);
  struct selent *e = selent_find(t, id);
  if (e != NULL) return e;
  uint32_t n = 0, lo = 0;
  if (t != NULL) {
    n = t->n;
    while (lo < n && t->e[lo].id < id) lo++;
  }
  seltab_t *nt = rc_mem_malloc(s->mem, sizeof(*nt) + (n + 1) * sizeof(nt->e[0]));
  if (nt == NULL) return NULL;
  nt->n = nt->cap = n + 1;
  nt->e[lo].id = id;
  atomic_init(&nt->e[lo].arr, NULL);
  for (uint32_t j = 0; t != NULL && j < n; j++) { /* the others, around the new one */
    uint32_t i = j < lo ? j : j + 1;
    nt->e[i].id = t->e[j].id;
    atomic_init(&nt->e[i].arr, atomic_load_explicit(&t->e[j].arr, memory_order_relaxed));
  }
  atomic_store_explicit(&s->sel, nt, memory_order_release);
  retire(s, t, rc_mem_free);
  return &nt->e[lo];
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static selarr_t *selarr_new(rc_mem_t *m, uint32_t cap) {
  selarr_t *a = rc_mem_malloc(m, sizeof(*a) + cap * sizeof(a->v[0]));
  if (a != NULL) {
    atomic_init(&a->n, 0);
    a->cap = cap;
  }
  return a;
}

static int selarr_push(rc_store_t *s, struct selent *e, rc_store_series_t *r) {
  selarr_t *a = atomic_load_explicit(&e->arr, memory_order_relaxed);
  uint32_t n = a ? atomic_load_explicit(&a->n, memory_order_relaxed) : 0;
  if (a == NULL || n == a->cap) {
    selarr_t *na = selarr_new(s->mem, a ? a->cap * 2 : 8);
    if (na == NULL) return RC_ENOMEM;
    if (n) memcpy(na->v, a->v, n * sizeof(a->v[0]));
    atomic_store_explicit(&na->n, n, memory_order_relaxed);
    na->v[n] = r;
    atomic_store_explicit(&na->n, n + 1, memory_order_relaxed);
    atomic_store_explicit(&e->arr, na, memory_order_release);
    retire(s, a, rc_mem_free);
    return 0;
  }
  a->v[n] = r;
  atomic_store_explicit(&a->n, n + 1, memory_order_release);
  return 0;
}

static int selvec_add(rc_store_t *s, rc_store_series_t *r) {
  uint32_t nids;
  const uint32_t *ids = rc_store_series_sel(r, &nids);
  for (uint32_t k = 0; k < nids; k++) {
    struct selent *e = selent_get(s, ids[k]);
    if (e == NULL || selarr_push(s, e, r) != 0) return RC_ENOMEM;
  }
  return 0;
}

/* Rebuilds every selector's list from the table into new arrays, published one by one, the
 * old ones retired: after series were removed (rare: a sweep that aged some out, a reload),
 * O(series) once instead of a search per removal. A reader sees each list either before or
 * after; removed series are retired only after this (see retire_removed). *missing counts
 * the (series, id) pairs left out because the id has no entry: its creation failed for lack
 * of memory (selvec_add, a reload), and the next series of that id creates it. */
static int selvec_rebuild(rc_store_t *s, uint32_t *missing) {
  seltab_t *t = seltab(s);
  *missing = 0;
  if (t == NULL) {
    *missing = s->nseries;
    return 0;
  }
  uint32_t *cnt = calloc(t->n ? t->n : 1, sizeof(*cnt));
  if (cnt == NULL) return RC_ENOMEM;
  for (uint32_t i = 0; i <= s->mask; i++) {
    if (s->tab[i] == NULL) continue;
    uint32_t nids;
    const uint32_t *ids = rc_store_series_sel(s->tab[i], &nids);
    for (uint32_t k = 0; k < nids; k++) {
      struct selent *e = selent_find(t, ids[k]);
      if (e != NULL) cnt[e - t->e]++;
      else (*missing)++;
    }
  }
  selarr_t **na = calloc(t->n ? t->n : 1, sizeof(*na));
  int rc = na ? 0 : RC_ENOMEM;
  for (uint32_t j = 0; rc == 0 && j < t->n; j++)
    if ((na[j] = selarr_new(s->mem, cnt[j] < 8 ? 8 : cnt[j])) == NULL) rc = RC_ENOMEM;
  if (rc == 0) {
    for (uint32_t i = 0; i <= s->mask; i++) {
      if (s->tab[i] == NULL) continue;
      uint32_t nids;
      const uint32_t *ids = rc_store_series_sel(s->tab[i], &nids);
      for (uint32_t k = 0; k < nids; k++) {
        struct selent *e = selent_find(t, ids[k]);
        if (e == NULL) continue; /* counted in *missing above */
        selarr_t *a = na[e - t->e];
        uint32_t n = atomic_load_explicit(&a->n, memory_order_relaxed);
        a->v[n] = s->tab[i];
        atomic_store_explicit(&a->n, n + 1, memory_order_relaxed);
      }
    }
    for (uint32_t j = 0; j < t->n; j++) {
      selarr_t *old = atomic_load_explicit(&t->e[j].arr, memory_order_relaxed);
      atomic_store_explicit(&t->e[j].arr, na[j], memory_order_release);
      retire(s, old, rc_mem_free);
    }
  } else {
    for (uint32_t j = 0; na != NULL && j < t->n; j++) rc_mem_free(s->mem, na[j]);
  }
  free(na);
  free(cnt);
  return rc;
}

static void add(_Atomic uint64_t *c, uint64_t n) {
  atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

int rc_store_new(const rc_store_cfg_t *cfg, const rc_selindex_t *idx, rc_store_t **out) {
  *out = NULL;
  if (cfg->max_series == 0 || cfg->max_series > (1u << 28) || cfg->cache_entries == 0 ||
      cfg->max_memory > INT64_MAX)
    return RC_EINVAL;
  rc_mem_t *m = cfg->mem, *own = NULL;
  if (m == NULL) { /* the caller does not read the count: keep one here (not counted itself) */
    if ((own = malloc(sizeof(*own))) == NULL) return RC_ENOMEM;
    rc_mem_init(own, 0);
    m = own;
  }
  rc_mem_set_limit(m, (int64_t)cfg->max_memory);
  rc_store_t *s = rc_mem_calloc(m, 1, sizeof(*s));
  if (s == NULL) {
    free(own);
    return RC_ENOMEM;
  }
  s->cfg = *cfg;
  s->idx = idx;
  s->mem = m;
  s->own = own;
  uint32_t cap = 16;
  while (cap < cfg->max_series * 2u) cap <<= 1;
  s->tab = rc_mem_calloc(m, cap, sizeof(*s->tab));
  rc_selindex_cache_opts_t co = {.max_entries = cfg->cache_entries, .policy = RC_SELINDEX_EVICT,
                                 .mem = m};
  /* Not counted: the matcher scratch is selector.c's (PCRE2 match data, a few hundred bytes
   * allocated by PCRE2 itself). */
  s->scratch = rc_matcher_scratch_new();
  if (s->tab == NULL || s->scratch == NULL || rc_selindex_cache_new(&co, &s->cache) != 0) {
    rc_matcher_scratch_free(s->scratch);
    rc_mem_free(m, s->tab);
    rc_mem_free(m, s);
    free(own);
    return RC_ENOMEM;
  }
  s->mask = cap - 1;
  s->cfg.mem = m;
  s->cfg.window.mem = m;
  if (cfg->readers) {
    rc_ebr_init(&s->ebr, m);
    s->has_ebr = 1;
    s->cfg.window.ebr = &s->ebr;
  } else {
    s->cfg.window.ebr = NULL;
  }
  s->watermark = INT64_MIN;
  s->last_sweep = INT64_MIN;
  atomic_store(&s->c.watermark, INT64_MIN);
  *out = s;
  return 0;
}

/* Frees a series (allocated from m); with readers, only through retire() once no list
 * reaches it. */
static void series_free(rc_mem_t *m, void *p) {
  rc_store_series_t *r = p;
  rc_window_free(&r->win, m);
  rc_histwin_free(&r->hwin, m);
  rc_mem_free(m, atomic_load_explicit(&r->data, memory_order_relaxed));
  rc_mem_free(m, r);
}

rc_ebr_t *rc_store_ebr(rc_store_t *s) { return s->has_ebr ? &s->ebr : NULL; }

uint32_t rc_store_series_labels(const rc_store_series_t *r, rc_label_t *out, uint32_t max) {
  uint32_t nids;
  const uint8_t *p = (const uint8_t *)(rc_store_series_sel(r, &nids) + nids);
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
  rc_mem_t *m = s->mem, *own = s->own;
  if (s->has_ebr) rc_ebr_close(&s->ebr); /* no reader may be left: frees what was retired */
  for (uint32_t i = 0; i <= s->mask; i++)
    if (s->tab[i]) series_free(m, s->tab[i]);
  for (uint32_t i = 0; i < s->removed.n; i++) series_free(m, s->removed.v[i]);
  rc_mem_free(m, s->tab);
  seltab_t *t = seltab(s);
  for (uint32_t i = 0; t != NULL && i < t->n; i++)
    rc_mem_free(m, atomic_load_explicit(&t->e[i].arr, memory_order_relaxed));
  rc_mem_free(m, t);
  rc_mem_free(m, s->changed.v);
  rc_mem_free(m, s->unpacked);
  rc_mem_free(m, s->removed.v);
  rc_matcher_scratch_free(s->scratch);
  rc_selindex_cache_free(s->cache);
  rc_mem_free(m, s);
  free(own);
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

static rc_store_series_t *series_new(rc_mem_t *m, const rc_series_t *src, rc_selindex_hash_t h,
                                     const uint32_t *ids, uint32_t nids) {
  size_t lbytes = 0;
  for (uint32_t i = 0; i < src->nlabels; i++) {
    /* 16-bit lengths: the decoder caps a label set at --ingest.max-labels and 64 KiB. */
    if (src->labels[i].name_len > UINT16_MAX || src->labels[i].value_len > UINT16_MAX)
      return NULL;
    lbytes += 4 + src->labels[i].name_len + src->labels[i].value_len;
  }
  if (nids > UINT16_MAX || src->nlabels > UINT16_MAX) return NULL;
  rc_store_series_t *r = rc_mem_calloc(m, 1, sizeof(*r));
  uint8_t *d = rc_mem_malloc(m, (nids + 1) * sizeof(uint32_t) + lbytes + 1);
  if (r == NULL || d == NULL) {
    rc_mem_free(m, r);
    rc_mem_free(m, d);
    return NULL;
  }
  memcpy(d, &nids, sizeof(uint32_t));
  memcpy(d + sizeof(uint32_t), ids, nids * sizeof(uint32_t));
  uint8_t *p = d + (nids + 1) * sizeof(uint32_t);
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
  atomic_init(&r->data, d);
  r->nlabels = (uint16_t)src->nlabels;
  r->label_bytes = (uint32_t)lbytes;
  rc_window_init(&r->win);
  rc_histwin_init(&r->hwin);
  return r;
}

/* Replaces a series' selector ids (the label bytes stay): a new blob, published whole, the
 * old one retired. Returns 0 or RC_ENOMEM. */
static int series_set_sel(rc_store_t *s, rc_store_series_t *r, const uint32_t *ids,
                          uint32_t nids) {
  if (nids > UINT16_MAX) return RC_EINVAL;
  uint32_t old_n;
  const uint32_t *old_ids = rc_store_series_sel(r, &old_n);
  if (old_n == nids && memcmp(old_ids, ids, nids * sizeof(uint32_t)) == 0) return 0;
  uint8_t *d = rc_mem_malloc(s->mem, (nids + 1) * sizeof(uint32_t) + r->label_bytes + 1);
  if (d == NULL) return RC_ENOMEM;
  memcpy(d, &nids, sizeof(uint32_t));
  memcpy(d + sizeof(uint32_t), ids, nids * sizeof(uint32_t));
  memcpy(d + (nids + 1) * sizeof(uint32_t), old_ids + old_n, r->label_bytes);
  uint8_t *old = atomic_load_explicit(&r->data, memory_order_relaxed);
  atomic_store_explicit(&r->data, d, memory_order_release);
  retire(s, old, rc_mem_free);
  return 0;
}

/* selvec_rebuild, and whether every held series is in all its lists afterwards. */
static int rebuild_lists(rc_store_t *s) {
  uint32_t missing = 0;
  int rc = selvec_rebuild(s, &missing);
  s->lists_incomplete = rc != 0 || missing != 0;
  return rc;
}

/* Unlinks the series in table slot i (backward shift) and queues it for retire_removed.
 * The caller must revisit slot i: the shift may have moved an unvisited entry into it. */
static int unlink_series(rc_store_t *s, uint32_t i) {
  rc_store_series_t *r = s->tab[i];
  remove_slot(s, i);
  s->nseries--;
  add(&s->c.removed, 1);
  return ptr_push(s->mem, &s->removed.v, &s->removed.n, &s->removed.cap, r);
}

/* After the lists were rebuilt without them, removed series can go: retired, so that a reader
 * still walking an old list finishes with them alive. If the rebuild failed they stay queued
 * (still reachable from the old lists) until a later one succeeds. */
static void retire_removed(rc_store_t *s, int rebuilt_ok) {
  if (!rebuilt_ok) return;
  for (uint32_t i = 0; i < s->removed.n; i++) retire(s, s->removed.v[i], series_free);
  s->removed.n = 0;
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
      rc = unlink_series(s, i);
      if (s->tab[i] != NULL) i--; /* the shift moved an unvisited entry here */
      continue;
    }
    rc = series_set_sel(s, r, ids, n);
  }
  free(ids);
  free(lbl);
  atomic_store_explicit(&s->c.series, s->nseries, memory_order_relaxed);
  /* A series whose ids changed may belong to a selector that has no entry yet. */
  for (uint32_t i = 0; rc == 0 && i <= s->mask; i++) {
    if (s->tab[i] == NULL) continue;
    uint32_t nids;
    const uint32_t *sid = rc_store_series_sel(s->tab[i], &nids);
    for (uint32_t k = 0; rc == 0 && k < nids; k++)
      if (selent_get(s, sid[k]) == NULL) rc = RC_ENOMEM;
  }
  if (rc != 0) s->lists_incomplete = 1; /* ids changed without the lists following */
  int rb = rc != 0 ? rc : rebuild_lists(s);
  retire_removed(s, rb == 0);
  if (s->has_ebr) rc_ebr_collect(&s->ebr);
  return rb;
}

void rc_store_changed(rc_store_t *s, rc_store_series_t *const **out, uint32_t *n) {
  *out = s->changed.v;
  *n = s->changed.n;
}

/* Expires chunks past the retention and removes series left empty. Runs when the watermark
 * has moved a chunk span since the last sweep, so its O(series) cost is amortised. */
/* Expires r's chunks before cutoff; returns whether it is left empty. */
static int expire_series(rc_store_t *s, rc_store_series_t *r, int64_t cutoff) {
  rc_window_expire(&r->win, &s->cfg.window, cutoff);
  rc_histwin_expire(&r->hwin, &s->cfg.window, cutoff);
  return rc_window_empty(&r->win) && rc_histwin_empty(&r->hwin);
}

static void sweep(rc_store_t *s) {
  /* Saturating: a sender may send timestamps near INT64_MIN. */
  int64_t ret = s->cfg.window.retention_ms;
  int64_t cutoff = s->watermark < INT64_MIN + ret ? INT64_MIN : s->watermark - ret;
  uint64_t removed = 0;
  seltab_t *t = seltab(s);
  int walked = s->nseries == 0;
  if (!walked && !s->lists_incomplete && t != NULL) {
    uint32_t held = s->nseries, seen = 0;
    /* Every held series is in the list of each of its selector ids: visiting each series in
     * the list of its first id visits each exactly once, and costs what the store holds, not
     * the table's capacity (2 x max_series slots, mostly empty: a replay of a day of history
     * spent an eighth of its time scanning them). The lists do not change here; the removed
     * series leave them in the rebuild below. */
    for (uint32_t j = 0; j < t->n; j++) {
      const selarr_t *a = atomic_load_explicit(&t->e[j].arr, memory_order_relaxed);
      uint32_t n = a ? atomic_load_explicit(&a->n, memory_order_relaxed) : 0;
      for (uint32_t k = 0; k < n; k++) {
        rc_store_series_t *r = a->v[k];
        uint32_t nids;
        const uint32_t *ids = rc_store_series_sel(r, &nids);
        if (nids == 0 || ids[0] != t->e[j].id) continue;
        seen++;
        if (expire_series(s, r, cutoff)) {
          uint32_t slot = find_slot(s, r->h);
          if (s->tab[slot] == r) (void)unlink_series(s, slot); /* out of memory: leaks */
          removed++;
        }
      }
    }
    /* A safety net under the flag: a series the lists missed is found by the table walk
     * (expiring those already visited again is a no-op). */
    walked = seen == held;
    if (!walked) s->lists_incomplete = 1;
  }
  if (!walked) {
    for (uint32_t i = 0; i <= s->mask; i++) {
      rc_store_series_t *r = s->tab[i];
      if (r == NULL) continue;
      if (expire_series(s, r, cutoff)) {
        (void)unlink_series(s, i); /* out of memory: it stays in the lists and leaks */
        removed++;
        /* The shift may have moved an unvisited entry into slot i: look at it again. */
        if (s->tab[i] != NULL) i--;
      }
    }
  }
  atomic_store_explicit(&s->c.series, s->nseries, memory_order_relaxed);
  s->last_sweep = s->watermark;
  if (removed || s->removed.n) {
    s->changed.n = 0; /* it may name removed series */
    retire_removed(s, rebuild_lists(s) == 0);
  }
}

/* Tallies of one apply, added to the shared counters once at its end. */
typedef struct tallies {
  uint64_t ahead, dropped, dropped_samples, dropped_hist, appended, too_old, dups, conflicts,
      hist_appended, hist_invalid, refused, mem_series, mem_samples, mem_hist;
} tallies_t;

static int64_t ahead_limit(const rc_store_t *s) {
  if (s->cfg.max_ahead_ms <= 0) return INT64_MAX;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + s->cfg.max_ahead_ms;
}

/* Counts an append and lists the series as changed by this apply (once). */
static int mark_changed(rc_store_t *s, rc_store_series_t *r) {
  r->appended++;
  if (r->touched == s->applies) return 0;
  r->touched = s->applies;
  return ptr_push(s->mem, &s->changed.v, &s->changed.n, &s->changed.cap, r);
}

/* The samples of a series that is refused whole still move the watermark: expiry is driven
 * by it, and when the store is full (series or memory) while the series it holds have stopped
 * (the old version's pods after a deploy), the new series' timestamps are the only ones left
 * to age the old ones out. Without this the store would stay full, and refusing, forever. */
static void advance_watermark(rc_store_t *s, const rc_series_t *src, int64_t limit) {
  for (uint32_t i = 0; i < src->nsamples; i++) {
    int64_t ts = src->samples[i].ts_ms;
    if (ts <= limit && ts > s->watermark) s->watermark = ts;
  }
  for (uint32_t i = 0; i < src->nhistograms; i++) {
    int64_t ts = src->histograms[i].ts_ms;
    if (ts <= limit && ts > s->watermark) s->watermark = ts;
  }
}

/* A copy of *src with its labels unpacked into the store's scratch array when the decoder
 * left them raw. Returns 0, RC_ENOMEM, or RC_EPARSE (raw labels the decoder did not check:
 * cannot happen). */
static int unpack_labels(rc_store_t *s, const rc_series_t *src, rc_series_t *out) {
  *out = *src;
  if (src->labels != NULL) return 0;
  if (src->nlabels > s->unpacked_cap) {
    rc_label_t *v = rc_mem_realloc(s->mem, s->unpacked, src->nlabels * sizeof(rc_label_t));
    if (v == NULL) return RC_ENOMEM;
    s->unpacked = v;
    s->unpacked_cap = src->nlabels;
  }
  out->labels = rc_rw_series_labels(src, s->unpacked, s->unpacked_cap);
  return out->labels != NULL ? 0 : RC_EPARSE;
}

/* One series of a batch with its label hash: decide, find or create, append. The labels may
 * still be raw (rc_series_t): they are unpacked only for a decision the cache does not hold
 * or a series not held yet, which a stream of known series never needs. */
static int apply_series(rc_store_t *s, const rc_series_t *in, rc_selindex_hash_t h,
                        int64_t limit, tallies_t *t) {
  if (in->nsamples == 0 && in->nhistograms == 0) return 0;
  rc_selindex_decision_t d = {0};
  rc_series_t whole;
  const rc_series_t *src = in;
  int drc = rc_selindex_cache_decide_hashed(s->cache, s->idx, h, src->labels, src->nlabels, &d);
  if (drc == RC_ENOENT && src->labels == NULL) {
    if ((drc = unpack_labels(s, in, &whole)) == RC_ENOMEM) return drc;
    src = &whole;
    if (drc == 0)
      drc = rc_selindex_cache_decide_hashed(s->cache, s->idx, h, src->labels, src->nlabels, &d);
  }
  if (drc != 0 || d.n == 0) {
    t->dropped++;
    t->dropped_samples += src->nsamples;
    t->dropped_hist += src->nhistograms;
    return 0;
  }
  uint32_t slot = find_slot(s, h);
  rc_store_series_t *r = s->tab[slot];
  if (r == NULL) {
    if (s->nseries >= s->cfg.max_series) {
      t->refused++;
      rc_log_complain(&s->full_complaint, uv_hrtime() / 1000000u, 60000, RC_LOG_WARN,
                      "series limit reached: new series refused", "max_series=%u",
                      s->cfg.max_series);
      advance_watermark(s, src, limit);
      return 0;
    }
    /* From the high-water mark on, the memory left is for the series already held. */
    if (rc_mem_level(s->mem) >= RC_MEM_HIGH) {
      t->mem_series++;
      t->mem_samples += src->nsamples;
      t->mem_hist += src->nhistograms;
      advance_watermark(s, src, limit);
      return 0;
    }
    if (src->labels == NULL) {
      int urc = unpack_labels(s, in, &whole);
      if (urc == RC_ENOMEM) return urc;
      if (urc != 0) {
        t->dropped++;
        t->dropped_samples += src->nsamples;
        t->dropped_hist += src->nhistograms;
        return 0;
      }
      src = &whole;
    }
    r = series_new(s->mem, src, h, d.ids, d.n);
    if (r == NULL) return RC_ENOMEM;
    s->tab[slot] = r;
    s->nseries++;
    add(&s->c.created, 1);
    /* Out of memory here leaves it missing from some lists until the next rebuild. */
    if (selvec_add(s, r) != 0) {
      s->lists_incomplete = 1;
      return RC_ENOMEM;
    }
  }
  for (uint32_t i = 0; i < src->nsamples; i++) {
    const rc_sample_t *x = &src->samples[i];
    if (x->ts_ms > limit) {
      t->ahead++;
      continue;
    }
    int rc = rc_window_append(&r->win, &s->cfg.window, x->ts_ms, x->value);
    switch (rc) {
      case 0:
        t->appended++;
        if (mark_changed(s, r) != 0) return RC_ENOMEM;
        break;
      case RC_ETOOOLD: t->too_old++; break;
      case RC_EDUP: t->dups++; break;
      case RC_ECONFLICT: t->conflicts++; break;
      case RC_EMEMORY: t->mem_samples++; break; /* still moves the watermark, below */
      default: return rc;
    }
    if (x->ts_ms > s->watermark) s->watermark = x->ts_ms;
  }
  for (uint32_t i = 0; i < src->nhistograms; i++) {
    const rc_histogram_t *x = &src->histograms[i];
    if (x->ts_ms > limit) {
      t->ahead++;
      continue;
    }
    int rc = rc_histwin_append(&r->hwin, &s->cfg.window, x);
    switch (rc) {
      case 0:
        t->hist_appended++;
        if (mark_changed(s, r) != 0) return RC_ENOMEM;
        break;
      case RC_ETOOOLD: t->too_old++; break;
      case RC_EDUP: t->dups++; break;
      case RC_ECONFLICT: t->conflicts++; break;
      case RC_EMEMORY: t->mem_hist++; break;
      case RC_ENOMEM: return rc;
      default: t->hist_invalid++; continue; /* refused by the histogram checks */
    }
    if (x->ts_ms > s->watermark) s->watermark = x->ts_ms;
  }
  return 0;
}

static void apply_end(rc_store_t *s, const tallies_t *t) {
  add(&s->c.dropped_series, t->dropped);
  add(&s->c.dropped_samples, t->dropped_samples);
  add(&s->c.appended, t->appended);
  add(&s->c.too_old, t->too_old);
  add(&s->c.ahead, t->ahead);
  if (t->ahead)
    rc_log_complain(&s->ahead_complaint, uv_hrtime() / 1000000u, 60000, RC_LOG_WARN,
                    "samples ahead of the clock refused", "count=%llu max_ahead_ms=%lld",
                    (unsigned long long)t->ahead, (long long)s->cfg.max_ahead_ms);
  add(&s->c.dups, t->dups);
  add(&s->c.conflicts, t->conflicts);
  add(&s->c.hist_appended, t->hist_appended);
  add(&s->c.hist_invalid, t->hist_invalid);
  add(&s->c.hist_dropped, t->dropped_hist);
  add(&s->c.refused, t->refused);
  add(&s->c.mem_series, t->mem_series);
  add(&s->c.mem_samples, t->mem_samples);
  add(&s->c.mem_hist, t->mem_hist);
  if (t->mem_series || t->mem_samples || t->mem_hist)
    rc_log_complain(&s->mem_complaint, uv_hrtime() / 1000000u, 60000, RC_LOG_WARN,
                    "memory limit reached: new series and samples needing new chunks refused",
                    "series=%llu samples=%llu histograms=%llu bytes=%lld max_memory=%lld",
                    (unsigned long long)t->mem_series, (unsigned long long)t->mem_samples,
                    (unsigned long long)t->mem_hist, (long long)rc_mem_bytes(s->mem),
                    (long long)s->mem->limit);
  atomic_store_explicit(&s->c.watermark, s->watermark, memory_order_relaxed);
  atomic_store_explicit(&s->c.series, s->nseries, memory_order_relaxed);
  if (s->watermark != INT64_MIN &&
      (s->last_sweep == INT64_MIN ||
       (uint64_t)s->watermark - (uint64_t)s->last_sweep >= (uint64_t)s->cfg.window.chunk_span_ms))
    sweep(s);
  if (s->has_ebr) rc_ebr_collect(&s->ebr);
}

/* With no selector at all every series is dropped: no need to hash or cache anything. */
static int nothing_selected(rc_store_t *s) {
  return s->idx == NULL || rc_selindex_size(s->idx) == 0;
}

static void drop_series(const rc_series_t *src, tallies_t *t) {
  t->dropped += src->nsamples + src->nhistograms != 0;
  t->dropped_samples += src->nsamples;
  t->dropped_hist += src->nhistograms;
}

int rc_store_apply(rc_store_t *s, const rc_batch_t *b) {
  s->changed.n = 0;
  s->applies++;
  tallies_t t = {0};
  int rc = 0;
  if (nothing_selected(s)) {
    for (uint32_t k = 0; k < b->nseries; k++) drop_series(&b->series[k], &t);
    apply_end(s, &t);
    return 0;
  }
  int64_t limit = ahead_limit(s);
  /* Hash the series AHEAD in front of the one being decided and prefetch their cache slots,
   * so that the cache misses of a large decision table overlap instead of queueing up (a
   * group-at-a-time version left the first series of every group waiting on its miss). */
  enum { AHEAD = 8 };
  rc_selindex_hash_t hs[AHEAD];
  uint32_t n = b->nseries;
  for (uint32_t j = 0; j < n && j < AHEAD; j++) {
    hs[j] = rc_series_hash(&b->series[j]);
    rc_selindex_cache_prefetch(s->cache, hs[j]);
  }
  for (uint32_t k = 0; rc == 0 && k < n; k++) {
    rc_selindex_hash_t h = hs[k % AHEAD];
    if (k + AHEAD < n) {
      const rc_series_t *nx = &b->series[k + AHEAD];
      hs[k % AHEAD] = rc_series_hash(nx);
      rc_selindex_cache_prefetch(s->cache, hs[k % AHEAD]);
    }
    rc = apply_series(s, &b->series[k], h, limit, &t);
  }
  apply_end(s, &t);
  return rc;
}

int rc_store_apply_part(rc_store_t *s, const rc_batch_t *b, const uint32_t *idx,
                        const rc_selindex_hash_t *hs, uint32_t n) {
  s->changed.n = 0;
  s->applies++;
  tallies_t t = {0};
  int rc = 0;
  if (nothing_selected(s)) {
    for (uint32_t k = 0; k < n; k++) drop_series(&b->series[idx[k]], &t);
    apply_end(s, &t);
    return 0;
  }
  int64_t limit = ahead_limit(s);
  enum { AHEAD = 8 }; /* prefetch distance: the hashes are known, so run ahead of the decisions */
  for (uint32_t k = 0; k < n && k < AHEAD; k++) rc_selindex_cache_prefetch(s->cache, hs[k]);
  for (uint32_t k = 0; rc == 0 && k < n; k++) {
    if (k + AHEAD < n) rc_selindex_cache_prefetch(s->cache, hs[k + AHEAD]);
    rc = apply_series(s, &b->series[idx[k]], hs[k], limit, &t);
  }
  apply_end(s, &t);
  return rc;
}

rc_store_series_t *rc_store_find(rc_store_t *s, const rc_label_t *labels, uint32_t n) {
  rc_selindex_hash_t h = rc_selindex_hash_labels(labels, n);
  return s->tab[find_slot(s, h)];
}

int rc_store_foreach(rc_store_t *s, uint32_t sel_id,
                     int (*cb)(void *ctx, rc_store_series_t *series), void *ctx) {
  struct selent *e = selent_find(seltab(s), sel_id);
  selarr_t *a = e ? atomic_load_explicit(&e->arr, memory_order_acquire) : NULL;
  uint32_t n = a ? atomic_load_explicit(&a->n, memory_order_acquire) : 0;
  for (uint32_t i = 0; i < n; i++) {
    int rc = cb(ctx, a->v[i]);
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
  o->hist_appended = atomic_load_explicit(&c->hist_appended, memory_order_relaxed);
  o->hist_invalid = atomic_load_explicit(&c->hist_invalid, memory_order_relaxed);
  o->dropped_histograms = atomic_load_explicit(&c->hist_dropped, memory_order_relaxed);
  o->refused_series_memory = atomic_load_explicit(&c->mem_series, memory_order_relaxed);
  o->refused_samples_memory = atomic_load_explicit(&c->mem_samples, memory_order_relaxed);
  o->refused_hist_memory = atomic_load_explicit(&c->mem_hist, memory_order_relaxed);
  o->bytes = (uint64_t)rc_mem_bytes(s->mem);
  o->memory_limit = (uint64_t)s->mem->limit;
  o->watermark_ms = atomic_load_explicit(&c->watermark, memory_order_relaxed);
}
