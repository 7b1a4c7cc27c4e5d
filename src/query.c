/* query.c: reading the store for rules — sets of series across shards, per-series range
 * functions, merged sketches, native and classic histogram quantiles; see query.h. */
#include "query.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "ebr.h"

int rc_query_init(rc_query_t *q, rc_store_t *const *shards, uint32_t n) {
  memset(q, 0, sizeof(*q));
  if (n > RC_QUERY_MAX_SHARDS) return RC_EINVAL;
  for (uint32_t i = 0; i < n; i++) {
    q->shards[i] = shards[i];
    rc_ebr_t *e = rc_store_ebr(shards[i]);
    q->slot[i] = e ? rc_ebr_register(e) : -1;
    if (e != NULL && q->slot[i] < 0) return RC_ELIMIT;
  }
  q->n = n;
  return 0;
}

void rc_query_begin(rc_query_t *q) {
  for (uint32_t i = 0; i < q->n; i++)
    if (q->slot[i] >= 0) rc_ebr_enter(rc_store_ebr(q->shards[i]), q->slot[i]);
  q->inside = 1;
}

void rc_query_end(rc_query_t *q) {
  for (uint32_t i = 0; i < q->n; i++)
    if (q->slot[i] >= 0) rc_ebr_exit(rc_store_ebr(q->shards[i]), q->slot[i]);
  q->inside = 0;
}

int rc_query_set_add(rc_query_set_t *set, rc_store_series_t *r) {
  if (set->n == set->cap) {
    uint32_t nc = set->cap ? set->cap * 2 : 64;
    rc_store_series_t **nv = realloc(set->v, nc * sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    set->v = nv;
    set->cap = nc;
  }
  set->v[set->n++] = r;
  return 0;
}

void rc_query_set_reset(rc_query_set_t *set) { set->n = 0; }

void rc_query_set_free(rc_query_set_t *set) {
  free(set->v);
  memset(set, 0, sizeof(*set));
}

static int collect_cb(void *ctx, rc_store_series_t *r) { return rc_query_set_add(ctx, r); }

int rc_query_collect(rc_query_t *q, uint32_t sel_id, rc_query_set_t *set) {
  for (uint32_t i = 0; i < q->n; i++) {
    int rc = rc_store_foreach(q->shards[i], sel_id, collect_cb, set);
    if (rc != 0) return rc;
  }
  return 0;
}

uint32_t rc_query_eval(const rc_query_set_t *set, rc_fn_t fn, double param, int64_t t_ms,
                       int64_t range_ms, rc_compat_t compat, double *out, uint8_t *present) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < set->n; i++) {
    int ok = rc_window_eval(&set->v[i]->win, fn, param, t_ms, range_ms, compat, &out[i]) == 0;
    if (!ok) out[i] = NAN;
    present[i] = (uint8_t)ok;
    k += (uint32_t)ok;
  }
  return k;
}

/*------------------------------------------------------------------------------------------
 * Merged sketch
 *----------------------------------------------------------------------------------------*/

typedef struct sk_ctx {
  rc_sketch_t *s;
  int rc;
} sk_ctx_t;

static int sketch_cb(void *ctx, int64_t ts, double v) {
  sk_ctx_t *c = ctx;
  (void)ts;
  if (rc_is_stale_nan(v)) return 0;
  int rc = rc_sketch_add(c->s, v, 1);
  if (rc == RC_EINVAL) return 0; /* NaN: counted by the sketch, otherwise ignored */
  c->rc = rc;
  return rc;
}

/* The window's inclusive [from, to] for a range ending at t. */
static void range_bounds(int64_t t_ms, int64_t range_ms, rc_compat_t compat, int64_t *from,
                         int64_t *to) {
  int64_t start = t_ms < INT64_MIN + range_ms ? INT64_MIN : t_ms - range_ms;
  *from = compat == RC_COMPAT_PROM3 && start < INT64_MAX ? start + 1 : start;
  *to = t_ms;
}

int rc_query_sketch(const rc_query_set_t *set, int64_t t_ms, int64_t range_ms,
                    rc_compat_t compat, rc_sketch_t *out) {
  int64_t from, to;
  range_bounds(t_ms, range_ms, compat, &from, &to);
  sk_ctx_t c = {.s = out};
  for (uint32_t i = 0; i < set->n && c.rc == 0; i++)
    rc_window_foreach(&set->v[i]->win, from, to, sketch_cb, &c);
  return c.rc;
}

/*------------------------------------------------------------------------------------------
 * Native histograms
 *----------------------------------------------------------------------------------------*/

int rc_query_hist_sum(const rc_query_set_t *set, int64_t t_ms, int64_t range_ms,
                      rc_compat_t compat, int is_rate, rc_fhist_t *out, uint32_t *n_used) {
  rc_fhist_t one;
  rc_fhist_init(&one);
  uint32_t used = 0;
  int rc = 0;
  for (uint32_t i = 0; i < set->n && rc == 0; i++) {
    const rc_histwin_t *w = &set->v[i]->hwin;
    int r = is_rate ? rc_histwin_rate(w, t_ms, range_ms, compat, &one)
                    : rc_histwin_increase(w, t_ms, range_ms, compat, &one);
    if (r == RC_ENOENT) continue;
    if (r != 0) {
      rc = r;
      break;
    }
    /* The first result is copied, not added to an empty histogram: Prometheus' sum starts
     * from the first value, so the schema and zero threshold are that series' own. */
    rc = used == 0 ? rc_fhist_copy(out, &one) : rc_fhist_add(out, &one);
    used++;
  }
  rc_fhist_free(&one);
  *n_used = used;
  if (rc == 0 && used == 0) return RC_ENOENT;
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Classic histograms
 *----------------------------------------------------------------------------------------*/

typedef struct cbucket {
  double le, sum, comp; /* Kahan compensation (3.x) */
} cbucket_t;

typedef struct group {
  const rc_store_series_t *any;
  uint64_t key;
  cbucket_t *b;
  uint32_t n, cap;
} group_t;

/* Whether a label takes part in the group key. */
static int keep_label(const rc_label_t *l, const char *const *by, uint32_t nby) {
  if (by == NULL) {
    if (l->name_len == 2 && memcmp(l->name, "le", 2) == 0) return 0;
    if (l->name_len == 8 && memcmp(l->name, "__name__", 8) == 0) return 0;
    return 1;
  }
  for (uint32_t i = 0; i < nby; i++)
    if (strlen(by[i]) == l->name_len && memcmp(by[i], l->name, l->name_len) == 0) return 1;
  return 0;
}

/* Hash of the kept labels, and the le value parsed (NAN when absent or not a number). Each
 * name and value is hashed on its own, chained through the seed, so "ab"+"c" and "a"+"bc"
 * differ; same_group() confirms a match anyway. */
static uint64_t group_key(const rc_label_t *l, uint32_t n, const char *const *by, uint32_t nby,
                          double *le) {
  uint64_t h = 0x6a09e667f3bcc909ull;
  *le = NAN;
  for (uint32_t i = 0; i < n; i++) {
    if (l[i].name_len == 2 && memcmp(l[i].name, "le", 2) == 0) {
      char tmp[64];
      if (l[i].value_len > 0 && l[i].value_len < sizeof(tmp)) {
        memcpy(tmp, l[i].value, l[i].value_len);
        tmp[l[i].value_len] = 0;
        char *end;
        double v = strtod(tmp, &end);
        if (*end == 0) *le = v;
      }
      continue;
    }
    if (!keep_label(&l[i], by, nby)) continue;
    h = XXH3_64bits_withSeed(l[i].name, l[i].name_len, h);
    h = XXH3_64bits_withSeed(l[i].value, l[i].value_len, h ^ 0x9e3779b97f4a7c15ull);
  }
  return h;
}

/* Whether two series have the same kept labels (the hash picked the group; this confirms). */
static int same_group(const rc_store_series_t *a, const rc_store_series_t *b,
                      const char *const *by, uint32_t nby, rc_label_t *la, rc_label_t *lb,
                      uint32_t max) {
  uint32_t na = rc_store_series_labels(a, la, max), nb = rc_store_series_labels(b, lb, max);
  uint32_t i = 0, j = 0;
  for (;;) {
    while (i < na && !keep_label(&la[i], by, nby)) i++;
    while (j < nb && !keep_label(&lb[j], by, nby)) j++;
    if (i == na || j == nb) return i == na && j == nb;
    if (la[i].name_len != lb[j].name_len || la[i].value_len != lb[j].value_len ||
        memcmp(la[i].name, lb[j].name, la[i].name_len) != 0 ||
        memcmp(la[i].value, lb[j].value, la[i].value_len) != 0)
      return 0;
    i++, j++;
  }
}

static int bucket_add(group_t *g, double le, double v, rc_compat_t compat) {
  for (uint32_t i = 0; i < g->n; i++) {
    if (g->b[i].le != le) continue;
    if (compat == RC_COMPAT_PROM3) { /* Prometheus 3.x sums with Kahan compensation */
      double s = g->b[i].sum, t = s + v;
      if (isinf(t)) g->b[i].comp = 0;
      else if (fabs(s) >= fabs(v)) g->b[i].comp += (s - t) + v;
      else g->b[i].comp += (v - t) + s;
      g->b[i].sum = t;
    } else {
      g->b[i].sum += v;
    }
    return 0;
  }
  if (g->n == g->cap) {
    uint32_t nc = g->cap ? g->cap * 2 : 16;
    cbucket_t *nb = realloc(g->b, nc * sizeof(*nb));
    if (nb == NULL) return RC_ENOMEM;
    g->b = nb;
    g->cap = nc;
  }
  g->b[g->n++] = (cbucket_t){.le = le, .sum = v};
  return 0;
}

int rc_query_classic_quantile(const rc_query_set_t *set, double phi, int64_t t_ms,
                              int64_t range_ms, rc_compat_t compat, const char *const *by,
                              uint32_t nby, rc_query_group_cb cb, void *ctx, uint32_t *skipped) {
  enum { MAXL = 256 };
  rc_label_t *la = calloc(2 * MAXL, sizeof(*la)), *lb = la ? la + MAXL : NULL;
  group_t *g = NULL;
  uint32_t ng = 0, capg = 0, skip = 0;
  rc_histq_bucket_t *tmp = NULL;
  uint32_t tmp_cap = 0;
  int rc = la ? 0 : RC_ENOMEM;
  for (uint32_t i = 0; i < set->n && rc == 0; i++) {
    const rc_store_series_t *r = set->v[i];
    uint32_t nl = rc_store_series_labels(r, la, MAXL);
    double le;
    uint64_t key = group_key(la, nl < MAXL ? nl : MAXL, by, nby, &le);
    if (isnan(le) || nl > MAXL) {
      skip++;
      continue;
    }
    double v;
    if (rc_window_eval(&r->win, RC_FN_RATE, 0, t_ms, range_ms, compat, &v) != 0) continue;
    /* Linear search over groups: a rule's histogram has a handful of groups. */
    group_t *gr = NULL;
    for (uint32_t k = 0; k < ng && gr == NULL; k++)
      if (g[k].key == key && same_group(g[k].any, r, by, nby, la, lb, MAXL)) gr = &g[k];
    if (gr == NULL) {
      if (ng == capg) {
        uint32_t nc = capg ? capg * 2 : 8;
        group_t *nv = realloc(g, nc * sizeof(*nv));
        if (nv == NULL) {
          rc = RC_ENOMEM;
          break;
        }
        g = nv;
        capg = nc;
      }
      gr = &g[ng++];
      *gr = (group_t){.any = r, .key = key};
    }
    rc = bucket_add(gr, le, v, compat);
  }
  for (uint32_t k = 0; k < ng && rc == 0; k++) {
    if (g[k].n > tmp_cap) {
      rc_histq_bucket_t *nt = realloc(tmp, g[k].n * sizeof(*nt));
      if (nt == NULL) {
        rc = RC_ENOMEM;
        break;
      }
      tmp = nt;
      tmp_cap = g[k].n;
    }
    for (uint32_t j = 0; j < g[k].n; j++)
      tmp[j] = (rc_histq_bucket_t){.upper = g[k].b[j].le, .count = g[k].b[j].sum + g[k].b[j].comp};
    double q = rc_histq_classic(phi, tmp, g[k].n, compat, NULL);
    rc = cb(ctx, g[k].any, q);
  }
  for (uint32_t k = 0; k < ng; k++) free(g[k].b);
  free(g);
  free(tmp);
  free(la);
  if (skipped) *skipped = skip;
  return rc;
}
