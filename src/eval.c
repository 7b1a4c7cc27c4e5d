/* eval.c: the PromQL-subset evaluator over the store; see eval.h.
 *
 * One recursive walk over the tree at one instant. Vectors are arrays of elements whose label
 * arrays live in a per-evaluation arena; label strings stay in the store's series (the caller
 * keeps its EBR section open), so projecting labels (dropping __name__, by/without, on/
 * ignoring) only builds new arrays of pointers. Grouping and vector matching hash the
 * projected label set (XXH3, chained per name and value) into an open-addressing table and
 * confirm every hit by comparing the labels, so a hash collision can never merge two groups.
 */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "histq.h"

#define DEFAULT_LOOKBACK_MS 300000
#define ARENA_FIRST (64u << 10)
#define ARENA_LIMIT (256u << 20) /* one evaluation may not take more than this */

typedef struct val {
  int is_scalar;
  double scalar;
  rc_eval_elem_t *v;
  uint32_t n;
} val_t;

typedef struct ctx {
  rc_eval_t *ev;
  const rc_pq_expr_t *e;
  int64_t t;
  rc_err_t *err;
  rc_eval_result_t *res;
} ctx_t;

void rc_eval_init(rc_eval_t *ev, rc_query_t *q, rc_compat_t compat, rc_eval_sel_id_fn sel_id,
                  void *sel_ctx) {
  memset(ev, 0, sizeof(*ev));
  ev->q = q;
  ev->compat = compat;
  ev->lookback_ms = DEFAULT_LOOKBACK_MS;
  ev->clip_from_ms = INT64_MIN;
  ev->sel_id = sel_id;
  ev->sel_ctx = sel_ctx;
  rc_arena_init(&ev->arena, ARENA_FIRST, ARENA_LIMIT);
}

static void free_hists(rc_eval_t *ev) {
  for (uint32_t i = 0; i < ev->nhists; i++) rc_fhist_free(ev->hists[i]);
  ev->nhists = 0;
}

void rc_eval_close(rc_eval_t *ev) {
  free_hists(ev);
  rc_matcher_scratch_free(ev->scr);
  free(ev->hists);
  rc_query_set_free(&ev->set);
  rc_arena_free(&ev->arena);
}

static void *alloc(ctx_t *c, size_t n) {
  return rc_arena_alloc(&c->ev->arena, n ? n : 1);
}

/* A histogram owned by this evaluation (struct in the arena, buffers on the heap). */
static rc_fhist_t *new_hist(ctx_t *c) {
  rc_eval_t *ev = c->ev;
  if (ev->nhists == ev->caphists) {
    uint32_t nc = ev->caphists ? ev->caphists * 2 : 16;
    rc_fhist_t **nv = realloc(ev->hists, nc * sizeof(*nv));
    if (nv == NULL) return NULL;
    ev->hists = nv;
    ev->caphists = nc;
  }
  rc_fhist_t *h = alloc(c, sizeof(*h));
  if (h == NULL) return NULL;
  rc_fhist_init(h);
  ev->hists[ev->nhists++] = h;
  return h;
}

/*------------------------------------------------------------------------------------------
 * Label sets
 *----------------------------------------------------------------------------------------*/

static int lbl_is(const rc_label_t *l, const char *name) {
  size_t n = strlen(name);
  return l->name_len == n && memcmp(l->name, name, n) == 0;
}

static int in_list(const rc_label_t *l, char *const *names, uint32_t n) {
  for (uint32_t i = 0; i < n; i++)
    if (lbl_is(l, names[i])) return 1;
  return 0;
}

enum { PROJ_ALL, PROJ_DROP_NAME, PROJ_KEEP, PROJ_DROP };

/* The labels kept by a projection: all; all but __name__; only names[] (by / on); all but
 * names[] and __name__ (without / ignoring). drop_le also removes `le`. Writes into out (room
 * for n) and returns the count. */
static uint32_t project(const rc_label_t *in, uint32_t n, int mode, char *const *names,
                        uint32_t nnames, int drop_le, rc_label_t *out) {
  uint32_t k = 0;
  for (uint32_t i = 0; i < n; i++) {
    const rc_label_t *l = &in[i];
    int keep;
    switch (mode) {
      case PROJ_ALL: keep = 1; break;
      case PROJ_DROP_NAME: keep = !lbl_is(l, "__name__"); break;
      case PROJ_KEEP: keep = in_list(l, names, nnames); break;
      default: keep = !lbl_is(l, "__name__") && !in_list(l, names, nnames); break;
    }
    if (keep && drop_le && lbl_is(l, "le")) keep = 0;
    if (keep) out[k++] = *l;
  }
  return k;
}

/* The same, into a new arena array. NULL only when out of memory (n = 0 gives a valid ptr). */
static const rc_label_t *project_new(ctx_t *c, const rc_label_t *in, uint32_t n, int mode,
                                     char *const *names, uint32_t nnames, int drop_le,
                                     uint32_t *nout) {
  rc_label_t *out = alloc(c, (size_t)n * sizeof(*out));
  if (out == NULL) return NULL;
  *nout = project(in, n, mode, names, nnames, drop_le, out);
  return out;
}

static uint64_t labels_hash(const rc_label_t *l, uint32_t n) {
  uint64_t h = 0x243f6a8885a308d3ull;
  for (uint32_t i = 0; i < n; i++) {
    h = XXH3_64bits_withSeed(l[i].name, l[i].name_len, h);
    h = XXH3_64bits_withSeed(l[i].value, l[i].value_len, h ^ 0x9e3779b97f4a7c15ull);
  }
  return h;
}

static int labels_eq(const rc_label_t *a, uint32_t na, const rc_label_t *b, uint32_t nb) {
  if (na != nb) return 0;
  for (uint32_t i = 0; i < na; i++)
    if (a[i].name_len != b[i].name_len || a[i].value_len != b[i].value_len ||
        memcmp(a[i].name, b[i].name, a[i].name_len) != 0 ||
        memcmp(a[i].value, b[i].value, a[i].value_len) != 0)
      return 0;
  return 1;
}

/* "{a="b", c="d"}" for error messages. */
static void labels_str(const rc_label_t *l, uint32_t n, char *buf, size_t cap) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, k < cap ? cap - k : 0, "{");
  for (uint32_t i = 0; i < n && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%.*s=\"%.*s\"", i ? ", " : "", (int)l[i].name_len,
                          l[i].name, (int)l[i].value_len, l[i].value);
  if (k < cap) snprintf(buf + k, cap - k, "}");
}

/* Open-addressing table from a label set to a small index (groups, match signatures). */
typedef struct lmap {
  uint32_t *slot; /* index + 1; 0 = empty */
  uint64_t *hash;
  uint32_t mask;
} lmap_t;

static int lmap_init(ctx_t *c, lmap_t *m, uint32_t n) {
  uint32_t cap = 16;
  while (cap < n * 2u) cap <<= 1;
  m->slot = alloc(c, cap * sizeof(uint32_t));
  m->hash = alloc(c, cap * sizeof(uint64_t));
  if (m->slot == NULL || m->hash == NULL) return RC_ENOMEM;
  memset(m->slot, 0, cap * sizeof(uint32_t));
  m->mask = cap - 1;
  return 0;
}

/* The slot for labels: either the one holding an equal label set, or the empty one where it
 * goes. get_labels(ctx, idx) returns the label set stored under index idx. */
typedef const rc_label_t *(*labels_of_fn)(void *ctx, uint32_t idx, uint32_t *n);

static uint32_t lmap_find(const lmap_t *m, uint64_t h, const rc_label_t *l, uint32_t n,
                          labels_of_fn get, void *gctx) {
  uint32_t i = (uint32_t)h & m->mask;
  while (m->slot[i] != 0) {
    if (m->hash[i] == h) {
      uint32_t on;
      const rc_label_t *ol = get(gctx, m->slot[i] - 1, &on);
      if (labels_eq(ol, on, l, n)) return i;
    }
    i = (i + 1) & m->mask;
  }
  return i;
}

/*------------------------------------------------------------------------------------------
 * Arithmetic, as PromQL (Go's math: % is fmod, ^ is pow)
 *----------------------------------------------------------------------------------------*/

static double arith(rc_pq_op_t op, double a, double b) {
  switch (op) {
    case RC_OP_ADD: return a + b;
    case RC_OP_SUB: return a - b;
    case RC_OP_MUL: return a * b;
    case RC_OP_DIV: return a / b;
    case RC_OP_MOD: return fmod(a, b);
    case RC_OP_POW: return pow(a, b);
    default: return NAN;
  }
}

static int compare(rc_pq_op_t op, double a, double b) {
  switch (op) {
    case RC_OP_EQ: return a == b;
    case RC_OP_NE: return a != b;
    case RC_OP_GT: return a > b;
    case RC_OP_LT: return a < b;
    case RC_OP_GE: return a >= b;
    case RC_OP_LE: return a <= b;
    default: return 0;
  }
}

/* Prometheus' kahanSumInc (Neumaier's variant). */
static void kahan_inc(double inc, double *sum, double *c) {
  double t = *sum + inc;
  if (isinf(t)) *c = 0;
  else if (fabs(*sum) >= fabs(inc)) *c += (*sum - t) + inc;
  else *c += (inc - t) + *sum;
  *sum = t;
}

/*------------------------------------------------------------------------------------------
 * Leaves: selectors and range functions
 *----------------------------------------------------------------------------------------*/

static int eval_node(ctx_t *c, const rc_pq_node_t *n, val_t *out);

typedef struct adhoc_ctx {
  ctx_t *c;
  const rc_selector_t *sel;
  rc_label_t *lbl;
  uint32_t cap;
  int rc;
} adhoc_ctx_t;

/* Keeps a series the ad-hoc selector matches, once (a series wanted by several selector ids
 * is in several lists: the set is checked linearly, fine for the sizes a query API sees). */
static int adhoc_cb(void *ctx, rc_store_series_t *r) {
  adhoc_ctx_t *a = ctx;
  if (r->nlabels > a->cap) {
    rc_label_t *nl = realloc(a->lbl, r->nlabels * sizeof(*nl));
    if (nl == NULL) return a->rc = RC_ENOMEM;
    a->lbl = nl;
    a->cap = r->nlabels;
  }
  uint32_t n = rc_store_series_labels(r, a->lbl, a->cap);
  if (!rc_selector_matches(a->sel, a->c->ev->scr, a->lbl, n)) return 0;
  rc_query_set_t *set = &a->c->ev->set;
  for (uint32_t i = 0; i < set->n; i++)
    if (set->v[i] == r) return 0;
  return a->rc = rc_query_set_add(set, r);
}

static int collect(ctx_t *c, const rc_selector_t *sel) {
  rc_eval_t *ev = c->ev;
  rc_query_set_reset(&ev->set);
  uint32_t id = ev->sel_id(ev->sel_ctx, sel);
  int rc = 0;
  if (id != UINT32_MAX) {
    rc = rc_query_collect(ev->q, id, &ev->set);
  } else if (ev->adhoc_ids > 0) {
    if (ev->scr == NULL && (ev->scr = rc_matcher_scratch_new()) == NULL) return RC_ENOMEM;
    adhoc_ctx_t a = {.c = c, .sel = sel};
    for (uint32_t k = 0; k < ev->adhoc_ids && a.rc == 0; k++)
      for (uint32_t s = 0; s < ev->q->n && a.rc == 0; s++)
        rc_store_foreach(ev->q->shards[s], k, adhoc_cb, &a);
    free(a.lbl);
    rc = a.rc;
  }
  c->res->series += ev->set.n;
  return rc;
}

/* The series' labels, unpacked into the arena. */
static const rc_label_t *series_labels(ctx_t *c, const rc_store_series_t *r, uint32_t *n) {
  rc_label_t *l = alloc(c, (size_t)r->nlabels * sizeof(*l));
  if (l == NULL) return NULL;
  *n = rc_store_series_labels(r, l, r->nlabels);
  return l;
}

/* A range or lookback ending at t, clipped to start after the deploy (see eval.h); 0 when
 * nothing of it is left. */
static int64_t clipped(const ctx_t *c, int64_t range) {
  int64_t from = c->ev->clip_from_ms;
  if (from == INT64_MIN || c->t - range >= from) return range;
  return c->t > from ? c->t - from : 0;
}

static int eval_selector(ctx_t *c, const rc_pq_node_t *n, val_t *out) {
  int64_t lookback = clipped(c, c->ev->lookback_ms);
  if (lookback <= 0) return 0;
  int rc = collect(c, n->sel);
  if (rc != 0) return rc;
  rc_query_set_t *set = &c->ev->set;
  out->v = alloc(c, (size_t)set->n * sizeof(*out->v));
  if (out->v == NULL) return RC_ENOMEM;
  for (uint32_t i = 0; i < set->n; i++) {
    const rc_store_series_t *r = set->v[i];
    double v;
    int64_t ts = INT64_MIN, hts = INT64_MIN;
    int have = rc_window_instant(&r->win, c->t, lookback, c->ev->compat, &v, &ts) == 0;
    rc_fhist_t *h = NULL;
    if (!rc_histwin_empty(&r->hwin)) {
      h = new_hist(c);
      if (h == NULL) return RC_ENOMEM;
      if (rc_histwin_instant(&r->hwin, c->t, lookback, c->ev->compat, h, &hts) != 0)
        h = NULL;
    }
    if (!have && h == NULL) continue;
    rc_eval_elem_t *el = &out->v[out->n];
    el->labels = series_labels(c, r, &el->nlabels);
    if (el->labels == NULL) return RC_ENOMEM;
    /* A series that switched between floats and histograms: the newer sample counts. */
    if (h != NULL && (!have || hts > ts)) el->h = h, el->v = NAN;
    else el->h = NULL, el->v = v;
    out->n++;
  }
  return 0;
}

static int eval_range_fn(ctx_t *c, const rc_pq_node_t *n, val_t *out) {
  int64_t range = clipped(c, n->range_ms);
  if (range <= 0) return 0;
  int rc = collect(c, n->sel);
  if (rc != 0) return rc;
  rc_query_set_t *set = &c->ev->set;
  out->v = alloc(c, (size_t)set->n * sizeof(*out->v));
  if (out->v == NULL) return RC_ENOMEM;
  int keep_name = n->fn == RC_FN_LAST_OT;
  int hist_fn = n->fn == RC_FN_RATE || n->fn == RC_FN_INCREASE;
  for (uint32_t i = 0; i < set->n; i++) {
    const rc_store_series_t *r = set->v[i];
    rc_eval_elem_t *el = &out->v[out->n];
    el->h = NULL;
    int ok = rc_window_eval(&r->win, n->fn, n->param, c->t, range, c->ev->compat, &el->v) == 0;
    if (!ok && hist_fn && !rc_histwin_empty(&r->hwin)) {
      rc_fhist_t *h = new_hist(c);
      if (h == NULL) return RC_ENOMEM;
      int hr = n->fn == RC_FN_RATE
                   ? rc_histwin_rate(&r->hwin, c->t, range, c->ev->compat, h)
                   : rc_histwin_increase(&r->hwin, c->t, range, c->ev->compat, h);
      if (hr == RC_ENOMEM) return hr;
      if (hr == 0) el->h = h, el->v = NAN, ok = 1;
    } else if (!ok && !rc_histwin_empty(&r->hwin)) {
      c->res->dropped++; /* a function PromQL applies to floats only */
    }
    if (!ok) continue;
    uint32_t nl;
    const rc_label_t *all = series_labels(c, r, &nl);
    if (all == NULL) return RC_ENOMEM;
    el->labels = keep_name ? all : project_new(c, all, nl, PROJ_DROP_NAME, NULL, 0, 0, &el->nlabels);
    if (keep_name) el->nlabels = nl;
    if (el->labels == NULL) return RC_ENOMEM;
    out->n++;
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * histogram_quantile
 *----------------------------------------------------------------------------------------*/

typedef struct hgroup {
  const rc_label_t *labels;
  uint32_t nlabels;
  rc_histq_bucket_t *b;
  uint32_t n, cap;
} hgroup_t;

static const rc_label_t *hgroup_labels(void *ctx, uint32_t idx, uint32_t *n) {
  hgroup_t *g = &((hgroup_t *)ctx)[idx];
  *n = g->nlabels;
  return g->labels;
}

static int parse_le(const rc_label_t *l, uint32_t n, double *le) {
  for (uint32_t i = 0; i < n; i++) {
    if (!lbl_is(&l[i], "le")) continue;
    char tmp[64];
    if (l[i].value_len == 0 || l[i].value_len >= sizeof(tmp)) return 0;
    memcpy(tmp, l[i].value, l[i].value_len);
    tmp[l[i].value_len] = 0;
    char *end;
    *le = strtod(tmp, &end);
    return *end == 0;
  }
  return 0;
}

static int eval_hist_quantile(ctx_t *c, const rc_pq_node_t *n, val_t *out) {
  val_t phi = {0}, in = {0};
  int rc = eval_node(c, n->args[0], &phi);
  if (rc == 0) rc = eval_node(c, n->args[1], &in);
  if (rc != 0) return rc;
  double q = phi.scalar;
  out->v = alloc(c, (size_t)in.n * sizeof(*out->v));
  hgroup_t *g = alloc(c, (size_t)in.n * sizeof(*g));
  lmap_t m;
  if (out->v == NULL || g == NULL || lmap_init(c, &m, in.n) != 0) return RC_ENOMEM;
  uint32_t ng = 0;
  rc_label_t *tmp = NULL;
  for (uint32_t i = 0; i < in.n; i++) {
    rc_eval_elem_t *el = &in.v[i];
    if (el->h != NULL) { /* a native histogram: its own quantile */
      rc_eval_elem_t *o = &out->v[out->n++];
      o->labels = project_new(c, el->labels, el->nlabels, PROJ_DROP_NAME, NULL, 0, 0, &o->nlabels);
      if (o->labels == NULL) return RC_ENOMEM;
      o->h = NULL;
      o->v = rc_histq_native(q, el->h, c->ev->compat);
      continue;
    }
    double le;
    if (!parse_le(el->labels, el->nlabels, &le)) {
      c->res->dropped++; /* PromQL skips it with a warning */
      continue;
    }
    tmp = alloc(c, (size_t)el->nlabels * sizeof(*tmp));
    if (tmp == NULL) return RC_ENOMEM;
    uint32_t nt = project(el->labels, el->nlabels, PROJ_DROP_NAME, NULL, 0, 1, tmp);
    uint64_t h = labels_hash(tmp, nt);
    uint32_t s = lmap_find(&m, h, tmp, nt, hgroup_labels, g);
    if (m.slot[s] == 0) {
      g[ng] = (hgroup_t){.labels = tmp, .nlabels = nt};
      m.slot[s] = ++ng;
      m.hash[s] = h;
    }
    hgroup_t *gr = &g[m.slot[s] - 1];
    if (gr->n == gr->cap) {
      uint32_t nc = gr->cap ? gr->cap * 2 : 16;
      rc_histq_bucket_t *nb = alloc(c, nc * sizeof(*nb));
      if (nb == NULL) return RC_ENOMEM;
      if (gr->n) memcpy(nb, gr->b, gr->n * sizeof(*nb));
      gr->b = nb;
      gr->cap = nc;
    }
    gr->b[gr->n++] = (rc_histq_bucket_t){.upper = le, .count = el->v};
  }
  for (uint32_t k = 0; k < ng; k++) {
    rc_eval_elem_t *o = &out->v[out->n++];
    o->labels = g[k].labels;
    o->nlabels = g[k].nlabels;
    o->h = NULL;
    o->v = rc_histq_classic(q, g[k].b, g[k].n, c->ev->compat, NULL);
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Aggregation
 *----------------------------------------------------------------------------------------*/

typedef struct agroup {
  const rc_label_t *labels;
  uint32_t nlabels;
  uint64_t count;     /* elements */
  uint64_t nfloat, nhist;
  double sum, comp;   /* sum (Kahan compensation in 3.x) */
  double mean;        /* incremental mean (2.x; 3.x after overflow) */
  int incremental;
  double minmax;
  rc_fhist_t *h;      /* sum of histograms */
  int hist_err;
} agroup_t;

static const rc_label_t *agroup_labels(void *ctx, uint32_t idx, uint32_t *n) {
  agroup_t *g = &((agroup_t *)ctx)[idx];
  *n = g->nlabels;
  return g->labels;
}

static void agg_float(rc_pq_agg_t op, rc_compat_t compat, agroup_t *g, double f) {
  g->nfloat++;
  switch (op) {
    case RC_AGG_SUM:
      if (g->nfloat == 1) g->sum = f, g->comp = 0;
      else if (compat == RC_COMPAT_PROM3) kahan_inc(f, &g->sum, &g->comp);
      else g->sum += f;
      break;
    case RC_AGG_AVG: {
      double cnt = (double)g->nfloat;
      if (g->nfloat == 1) {
        g->sum = f, g->comp = 0, g->mean = f, g->incremental = compat != RC_COMPAT_PROM3;
        break;
      }
      if (compat == RC_COMPAT_PROM3 && !g->incremental) {
        double s = g->sum, cc = g->comp;
        kahan_inc(f, &s, &cc);
        if (!isinf(s)) {
          g->sum = s, g->comp = cc;
          break;
        }
        /* The sum overflowed: continue as an incremental mean, as Prometheus 3.x does. */
        g->incremental = 1;
        g->mean = g->sum / (cnt - 1);
        g->comp /= cnt - 1;
      }
      if (isinf(g->mean)) {
        if (isinf(f) && (g->mean > 0) == (f > 0)) break;
        if (!isinf(f) && !isnan(f)) break;
      }
      if (compat == RC_COMPAT_PROM3) {
        double cur = g->mean + g->comp;
        kahan_inc(f / cnt - cur / cnt, &g->mean, &g->comp);
      } else {
        g->mean += f / cnt - g->mean / cnt;
      }
      break;
    }
    case RC_AGG_MIN:
      if (g->nfloat == 1 || g->minmax > f || isnan(g->minmax)) g->minmax = f;
      break;
    case RC_AGG_MAX:
      if (g->nfloat == 1 || g->minmax < f || isnan(g->minmax)) g->minmax = f;
      break;
    case RC_AGG_COUNT: break;
  }
}

static int eval_agg(ctx_t *c, const rc_pq_node_t *n, val_t *out) {
  val_t in = {0};
  int rc = eval_node(c, n->args[0], &in);
  if (rc != 0) return rc;
  agroup_t *g = alloc(c, (size_t)in.n * sizeof(*g));
  lmap_t m;
  if (g == NULL || lmap_init(c, &m, in.n) != 0) return RC_ENOMEM;
  uint32_t ng = 0;
  int mode = n->without ? PROJ_DROP : PROJ_KEEP;
  for (uint32_t i = 0; i < in.n; i++) {
    rc_eval_elem_t *el = &in.v[i];
    rc_label_t *tmp = alloc(c, (size_t)el->nlabels * sizeof(*tmp));
    if (tmp == NULL) return RC_ENOMEM;
    uint32_t nt = project(el->labels, el->nlabels, mode, n->labels, n->nlabels, 0, tmp);
    uint64_t h = labels_hash(tmp, nt);
    uint32_t s = lmap_find(&m, h, tmp, nt, agroup_labels, g);
    if (m.slot[s] == 0) {
      g[ng] = (agroup_t){.labels = tmp, .nlabels = nt};
      m.slot[s] = ++ng;
      m.hash[s] = h;
    }
    agroup_t *gr = &g[m.slot[s] - 1];
    gr->count++;
    if (el->h == NULL) {
      agg_float(n->agg, c->ev->compat, gr, el->v);
      continue;
    }
    gr->nhist++;
    if (n->agg != RC_AGG_SUM && n->agg != RC_AGG_AVG) continue; /* min/max ignore them */
    if (gr->h == NULL) {
      if ((gr->h = new_hist(c)) == NULL || rc_fhist_copy(gr->h, el->h) != 0) return RC_ENOMEM;
    } else {
      int r = rc_fhist_add(gr->h, el->h);
      if (r == RC_ENOMEM) return r;
      if (r != 0) gr->hist_err = 1;
    }
  }
  out->v = alloc(c, (size_t)ng * sizeof(*out->v));
  if (out->v == NULL) return RC_ENOMEM;
  for (uint32_t k = 0; k < ng; k++) {
    agroup_t *gr = &g[k];
    rc_eval_elem_t *o = &out->v[out->n];
    o->labels = gr->labels;
    o->nlabels = gr->nlabels;
    o->h = NULL;
    if (n->agg == RC_AGG_COUNT) {
      o->v = (double)gr->count;
    } else if (gr->nhist > 0 && (n->agg == RC_AGG_SUM || n->agg == RC_AGG_AVG)) {
      /* Floats mixed with histograms, or histograms that cannot be added: no output. */
      if (gr->nfloat > 0 || gr->hist_err) {
        c->res->dropped += (uint32_t)gr->count;
        continue;
      }
      if (n->agg == RC_AGG_AVG) rc_fhist_mul(gr->h, 1.0 / (double)gr->nhist);
      o->h = gr->h;
      o->v = NAN;
    } else if (gr->nfloat == 0) { /* min/max over histograms only */
      c->res->dropped += (uint32_t)gr->count;
      continue;
    } else if (n->agg == RC_AGG_SUM) {
      o->v = c->ev->compat == RC_COMPAT_PROM3 ? gr->sum + gr->comp : gr->sum;
    } else if (n->agg == RC_AGG_AVG) {
      double cnt = (double)gr->nfloat;
      if (c->ev->compat != RC_COMPAT_PROM3) o->v = gr->mean;
      else if (gr->incremental) o->v = gr->mean + gr->comp;
      else o->v = gr->sum / cnt + gr->comp / cnt;
    } else {
      o->v = gr->minmax;
    }
    out->n++;
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Binary operators
 *----------------------------------------------------------------------------------------*/

static int scalar_vector(ctx_t *c, const rc_pq_node_t *n, const val_t *vec, double s,
                         int scalar_left, val_t *out) {
  int cmp = rc_pq_op_is_comparison(n->op);
  out->v = alloc(c, (size_t)vec->n * sizeof(*out->v));
  if (out->v == NULL) return RC_ENOMEM;
  for (uint32_t i = 0; i < vec->n; i++) {
    const rc_eval_elem_t *el = &vec->v[i];
    if (el->h != NULL) {
      c->res->dropped++;
      continue;
    }
    double a = scalar_left ? s : el->v, b = scalar_left ? el->v : s;
    rc_eval_elem_t *o = &out->v[out->n];
    o->h = NULL;
    if (cmp) {
      int holds = compare(n->op, a, b);
      if (!n->return_bool && !holds) continue;
      o->v = n->return_bool ? (double)holds : el->v;
    } else {
      o->v = arith(n->op, a, b);
    }
    if (cmp && !n->return_bool) {
      o->labels = el->labels, o->nlabels = el->nlabels;
    } else {
      o->labels = project_new(c, el->labels, el->nlabels, PROJ_DROP_NAME, NULL, 0, 0, &o->nlabels);
      if (o->labels == NULL) return RC_ENOMEM;
    }
    out->n++;
  }
  return 0;
}

typedef struct sigent {
  const rc_label_t *labels;
  uint32_t nlabels;
  const rc_eval_elem_t *el;
  int matched;
} sigent_t;

static const rc_label_t *sigent_labels(void *ctx, uint32_t idx, uint32_t *n) {
  sigent_t *s = &((sigent_t *)ctx)[idx];
  *n = s->nlabels;
  return s->labels;
}

static int vector_vector(ctx_t *c, const rc_pq_node_t *n, const val_t *l, const val_t *r,
                         val_t *out) {
  int cmp = rc_pq_op_is_comparison(n->op);
  int mode = n->matching && !n->ignoring ? PROJ_KEEP : PROJ_DROP;
  sigent_t *rs = alloc(c, (size_t)r->n * sizeof(*rs));
  lmap_t m;
  if (rs == NULL || lmap_init(c, &m, r->n) != 0) return RC_ENOMEM;
  uint32_t nrs = 0;
  char a[64], b[64]; /* rc_err_t holds 160 bytes: the reason first, then what fits */
  for (uint32_t i = 0; i < r->n; i++) {
    const rc_eval_elem_t *el = &r->v[i];
    rc_label_t *sig = alloc(c, (size_t)el->nlabels * sizeof(*sig));
    if (sig == NULL) return RC_ENOMEM;
    uint32_t ns = project(el->labels, el->nlabels, mode, n->labels, n->nlabels, 0, sig);
    uint64_t h = labels_hash(sig, ns);
    uint32_t s = lmap_find(&m, h, sig, ns, sigent_labels, rs);
    if (m.slot[s] != 0) {
      labels_str(sig, ns, a, sizeof(a));
      labels_str(el->labels, el->nlabels, b, sizeof(b));
      return rc_err_set(c->err, RC_EINVAL,
                        "many-to-many matching not allowed: duplicate series for the match "
                        "group %s on the right hand-side: %s", a, b);
    }
    rs[nrs] = (sigent_t){.labels = sig, .nlabels = ns, .el = el};
    m.slot[s] = ++nrs;
    m.hash[s] = h;
  }
  out->v = alloc(c, (size_t)l->n * sizeof(*out->v));
  if (out->v == NULL) return RC_ENOMEM;
  for (uint32_t i = 0; i < l->n; i++) {
    const rc_eval_elem_t *el = &l->v[i];
    rc_label_t *sig = alloc(c, (size_t)el->nlabels * sizeof(*sig));
    if (sig == NULL) return RC_ENOMEM;
    uint32_t ns = project(el->labels, el->nlabels, mode, n->labels, n->nlabels, 0, sig);
    uint64_t h = labels_hash(sig, ns);
    uint32_t s = lmap_find(&m, h, sig, ns, sigent_labels, rs);
    if (m.slot[s] == 0) continue; /* unmatched: dropped */
    sigent_t *re = &rs[m.slot[s] - 1];
    if (re->matched) {
      labels_str(sig, ns, a, sizeof(a));
      return rc_err_set(c->err, RC_EINVAL,
                        "many-to-one matching must be explicit (group_left/group_right): "
                        "multiple matches for labels %s", a);
    }
    re->matched = 1;
    if (el->h != NULL || re->el->h != NULL) {
      c->res->dropped++;
      continue;
    }
    rc_eval_elem_t *o = &out->v[out->n];
    o->h = NULL;
    if (cmp) {
      int holds = compare(n->op, el->v, re->el->v);
      if (!n->return_bool && !holds) continue;
      o->v = n->return_bool ? (double)holds : el->v;
    } else {
      o->v = arith(n->op, el->v, re->el->v);
    }
    /* Result labels: the left side's, without __name__ unless a filtering comparison, then
     * only the on() labels or without the ignoring() ones. */
    int drop_name = !cmp || n->return_bool;
    rc_label_t *ol = alloc(c, (size_t)el->nlabels * sizeof(*ol));
    if (ol == NULL) return RC_ENOMEM;
    uint32_t k = 0;
    for (uint32_t j = 0; j < el->nlabels; j++) {
      const rc_label_t *x = &el->labels[j];
      if (drop_name && lbl_is(x, "__name__")) continue;
      if (n->matching) {
        int listed = in_list(x, n->labels, n->nlabels);
        if (n->ignoring ? listed : !listed) continue;
      }
      ol[k++] = *x;
    }
    o->labels = ol;
    o->nlabels = k;
    out->n++;
  }
  return 0;
}

static int eval_binary(ctx_t *c, const rc_pq_node_t *n, val_t *out) {
  val_t l = {0}, r = {0};
  int rc = eval_node(c, n->args[0], &l);
  if (rc == 0) rc = eval_node(c, n->args[1], &r);
  if (rc != 0) return rc;
  if (l.is_scalar && r.is_scalar) {
    out->is_scalar = 1;
    out->scalar = rc_pq_op_is_comparison(n->op) ? (double)compare(n->op, l.scalar, r.scalar)
                                                : arith(n->op, l.scalar, r.scalar);
    return 0;
  }
  if (l.is_scalar) return scalar_vector(c, n, &r, l.scalar, 1, out);
  if (r.is_scalar) return scalar_vector(c, n, &l, r.scalar, 0, out);
  return vector_vector(c, n, &l, &r, out);
}

static int eval_neg(ctx_t *c, const rc_pq_node_t *n, val_t *out) {
  val_t in = {0};
  int rc = eval_node(c, n->args[0], &in);
  if (rc != 0) return rc;
  if (in.is_scalar) {
    out->is_scalar = 1;
    out->scalar = -in.scalar;
    return 0;
  }
  out->v = alloc(c, (size_t)in.n * sizeof(*out->v));
  if (out->v == NULL) return RC_ENOMEM;
  for (uint32_t i = 0; i < in.n; i++) {
    const rc_eval_elem_t *el = &in.v[i];
    if (el->h != NULL) {
      c->res->dropped++;
      continue;
    }
    rc_eval_elem_t *o = &out->v[out->n++];
    o->h = NULL;
    o->v = -el->v;
    o->labels = project_new(c, el->labels, el->nlabels, PROJ_DROP_NAME, NULL, 0, 0, &o->nlabels);
    if (o->labels == NULL) return RC_ENOMEM;
  }
  return 0;
}

static int eval_node(ctx_t *c, const rc_pq_node_t *n, val_t *out) {
  memset(out, 0, sizeof(*out));
  switch (n->kind) {
    case RC_PQ_NUMBER:
      out->is_scalar = 1;
      out->scalar = n->num;
      return 0;
    case RC_PQ_SELECTOR: return eval_selector(c, n, out);
    case RC_PQ_RANGE_FN: return eval_range_fn(c, n, out);
    case RC_PQ_HIST_QUANTILE: return eval_hist_quantile(c, n, out);
    case RC_PQ_AGG: return eval_agg(c, n, out);
    case RC_PQ_BINARY: return eval_binary(c, n, out);
    case RC_PQ_NEG: return eval_neg(c, n, out);
  }
  return rc_err_set(c->err, RC_EINVAL, "unknown expression node");
}

int rc_eval(rc_eval_t *ev, const rc_pq_expr_t *e, int64_t t_ms, rc_eval_result_t *out,
            rc_err_t *err) {
  free_hists(ev);
  rc_arena_free(&ev->arena);
  rc_arena_init(&ev->arena, ARENA_FIRST, ARENA_LIMIT);
  memset(out, 0, sizeof(*out));
  ctx_t c = {.ev = ev, .e = e, .t = t_ms, .err = err, .res = out};
  val_t v;
  int rc = eval_node(&c, e->root, &v);
  if (rc == RC_ENOMEM || (rc == 0 && ev->arena.exhausted))
    return rc_err_set(err, RC_ENOMEM, "out of memory evaluating the expression");
  if (rc != 0) return rc;
  out->is_scalar = v.is_scalar;
  out->scalar = v.scalar;
  out->v = v.v;
  out->n = v.n;
  return 0;
}
