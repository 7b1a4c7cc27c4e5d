/* hist_ref.c: the plain reference model of hist_ref.h. Each function follows the Prometheus
 * function named in its comment, one step at a time, on sparse (index, count) lists. */
#include "hist_ref.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CUSTOM (-53)

void ref_hist_free(ref_hist_t *h) {
  free(h->b[0]);
  free(h->b[1]);
  free(h->custom);
  memset(h, 0, sizeof(*h));
}

static void ref_copy(ref_hist_t *d, const ref_hist_t *s) {
  *d = *s;
  for (int k = 0; k < 2; k++) {
    d->b[k] = malloc((s->n[k] + 1) * sizeof(ref_bucket_t));
    if (s->n[k]) memcpy(d->b[k], s->b[k], s->n[k] * sizeof(ref_bucket_t));
  }
  d->custom = malloc((s->ncustom + 1) * sizeof(double));
  if (s->ncustom) memcpy(d->custom, s->custom, s->ncustom * sizeof(double));
}

double ref_bound(int32_t schema, int32_t idx) {
  if (schema <= 0) {
    long e = (long)idx * (1L << -schema);
    if (e == 1024) return DBL_MAX;
    return ldexp(1.0, (int)(e > 2000 ? 2000 : e < -2000 ? -2000 : e));
  }
  long per = 1L << schema;
  long k = (long)floor((double)idx / (double)per);
  long j = idx - k * per;
  if (j == 0 && k + 1 == 1025) return DBL_MAX;
  return ldexp(exp2((double)j / (double)per) / 2, (int)(k + 1));
}

static int is_custom(const ref_hist_t *h) { return h->schema == CUSTOM; }

static ref_bucket_t *find(const ref_hist_t *h, int k, int32_t idx) {
  for (size_t i = 0; i < h->n[k]; i++)
    if (h->b[k][i].idx == idx) return &h->b[k][i];
  return NULL;
}

double ref_bucket(const ref_hist_t *h, int sign, int32_t idx) {
  ref_bucket_t *b = find(h, sign > 0 ? 0 : 1, idx);
  return b ? b->count : 0;
}

/* Adds c to bucket idx, inserting it (with count c) where it belongs if missing. */
static void addto(ref_hist_t *h, int k, int32_t idx, double c) {
  ref_bucket_t *b = find(h, k, idx);
  if (b != NULL) {
    b->count += c;
    return;
  }
  h->b[k] = realloc(h->b[k], (h->n[k] + 1) * sizeof(ref_bucket_t));
  size_t i = 0;
  while (i < h->n[k] && h->b[k][i].idx < idx) i++;
  memmove(&h->b[k][i + 1], &h->b[k][i], (h->n[k] - i) * sizeof(ref_bucket_t));
  h->b[k][i] = (ref_bucket_t){idx, c};
  h->n[k]++;
}

void ref_from_raw(ref_hist_t *out, const rc_histogram_t *h) {
  memset(out, 0, sizeof(*out));
  out->schema = h->schema;
  out->hint = h->reset_hint;
  out->zt = h->zero_threshold;
  out->zc = h->zero_count;
  out->count = h->count;
  out->sum = h->sum;
  for (int k = 0; k < 2; k++) {
    const rc_span_t *sp = k ? h->neg_spans : h->pos_spans;
    uint32_t ns = k ? h->n_neg_spans : h->n_pos_spans;
    const int64_t *d = k ? h->neg_deltas : h->pos_deltas;
    const double *f = k ? h->neg_counts : h->pos_counts;
    int32_t idx = 0;
    size_t j = 0;
    double run = 0;
    for (uint32_t s = 0; s < ns; s++) {
      idx += sp[s].offset;
      for (uint32_t l = 0; l < sp[s].length; l++, j++, idx++) {
        if (h->is_float) run = f[j];
        else run += (double)d[j];
        addto(out, k, idx, run);
      }
    }
  }
  out->ncustom = h->n_custom;
  out->custom = malloc((h->n_custom + 1) * sizeof(double));
  if (h->n_custom) memcpy(out->custom, h->custom_values, h->n_custom * sizeof(double));
}

/* Removes empty buckets (Compact(0)). */
static void compact(ref_hist_t *h) {
  for (int k = 0; k < 2; k++) {
    size_t m = 0;
    for (size_t i = 0; i < h->n[k]; i++)
      if (h->b[k][i].count != 0) h->b[k][m++] = h->b[k][i];
    h->n[k] = m;
  }
}

/* CopyToSchema / mustReduceResolution: merge buckets into the coarser schema. */
static void reduce(ref_hist_t *h, int32_t target) {
  if (is_custom(h) || target >= h->schema) return;
  double div = pow(2, h->schema - target);
  for (int k = 0; k < 2; k++) {
    ref_bucket_t *nb = malloc((h->n[k] + 1) * sizeof(ref_bucket_t));
    size_t m = 0;
    for (size_t i = 0; i < h->n[k]; i++) {
      int32_t t = (int32_t)floor((double)(h->b[k][i].idx - 1) / div) + 1;
      if (m > 0 && nb[m - 1].idx == t) nb[m - 1].count += h->b[k][i].count;
      else nb[m++] = (ref_bucket_t){t, 0 + h->b[k][i].count};
    }
    free(h->b[k]);
    h->b[k] = nb;
    h->n[k] = m;
  }
  h->schema = target;
}

/* zeroCountForLargerThreshold. */
static void zero_for(const ref_hist_t *h, double thr, double *cnt, double *nthr) {
  if (thr == h->zt) {
    *cnt = h->zc;
    *nthr = thr;
    return;
  }
restart:;
  double c = h->zc;
  for (size_t i = 0; i < h->n[0]; i++) {
    ref_bucket_t b = h->b[0][i];
    double lo = ref_bound(h->schema, b.idx - 1), up = ref_bound(h->schema, b.idx);
    if (lo >= thr) break;
    c += b.count;
    if (up > thr) {
      if (b.count != 0) thr = up;
      break;
    }
  }
  for (size_t i = 0; i < h->n[1]; i++) {
    ref_bucket_t b = h->b[1][i];
    double lo = -ref_bound(h->schema, b.idx), up = -ref_bound(h->schema, b.idx - 1);
    if (up <= -thr) break;
    c += b.count;
    if (lo < -thr) {
      if (b.count != 0) {
        thr = -lo;
        goto restart;
      }
      break;
    }
  }
  *cnt = c;
  *nthr = thr;
}

/* trimBucketsInZeroBucket. */
static void trim_zero(ref_hist_t *h) {
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < h->n[k]; i++) {
      if (ref_bound(h->schema, h->b[k][i].idx - 1) >= h->zt) break;
      h->b[k][i].count = 0;
    }
  compact(h);
}

/* reconcileZeroBuckets. */
static double reconcile(ref_hist_t *h, const ref_hist_t *o) {
  double oc = o->zc, ot = o->zt;
  while (ot != h->zt) {
    if (h->zt > ot) zero_for(o, h->zt, &oc, &ot);
    if (ot > h->zt) {
      double c, t;
      zero_for(h, ot, &c, &t);
      h->zc = c;
      h->zt = t;
      trim_zero(h);
    }
  }
  return oc;
}

static int same_custom(const ref_hist_t *a, const ref_hist_t *b) {
  if (a->ncustom != b->ncustom) return 0;
  for (size_t i = 0; i < a->ncustom; i++)
    if (a->custom[i] != b->custom[i]) return 0;
  return 1;
}

/* FloatHistogram.Add / Sub. */
static int addsub(ref_hist_t *h, const ref_hist_t *o, int neg) {
  if (is_custom(h) != is_custom(o)) return -7;
  if (is_custom(h) && !same_custom(h, o)) return -7;
  if (!is_custom(h)) {
    double oz = reconcile(h, o);
    if (neg) h->zc -= oz;
    else h->zc += oz;
  }
  if (neg) {
    h->count -= o->count;
    h->sum -= o->sum;
  } else {
    h->count += o->count;
    h->sum += o->sum;
  }
  if (!is_custom(h) && o->schema < h->schema) reduce(h, o->schema);
  ref_hist_t oo;
  ref_copy(&oo, o);
  reduce(&oo, h->schema);
  for (int k = 0; k < 2; k++) {
    int leading = !is_custom(h);
    for (size_t i = 0; i < oo.n[k]; i++) {
      if (leading && ref_bound(h->schema, oo.b[k][i].idx) <= h->zt) continue;
      leading = 0;
      double c = oo.b[k][i].count;
      addto(h, k, oo.b[k][i].idx, neg ? -c : c);
    }
  }
  ref_hist_free(&oo);
  return 0;
}

/* DetectReset, with a NO_RESET hint verified like UNKNOWN (ripcord's choice). */
static int detect_reset(const ref_hist_t *cur, const ref_hist_t *prev) {
  if (cur->hint == 1) return 1;
  if (cur->count < prev->count) return 1;
  if (is_custom(cur) && (!is_custom(prev) || !same_custom(cur, prev))) return 1;
  if (cur->schema > prev->schema) return 1;
  if (cur->zt < prev->zt) return 1;
  double pz, thr;
  zero_for(prev, cur->zt, &pz, &thr);
  if (thr != cur->zt) return 1;
  if (cur->zc < pz) return 1;
  ref_hist_t p;
  ref_copy(&p, prev);
  reduce(&p, cur->schema);
  int reset = 0;
  for (int k = 0; k < 2 && !reset; k++) {
    int leading = !is_custom(cur);
    for (size_t i = 0; i < p.n[k]; i++) {
      ref_bucket_t b = p.b[k][i];
      if (leading && ref_bound(cur->schema, b.idx) <= cur->zt) continue;
      leading = 0;
      ref_bucket_t *c = find(cur, k, b.idx);
      if ((c == NULL && b.count != 0) || (c != NULL && c->count < b.count)) {
        reset = 1;
        break;
      }
    }
  }
  ref_hist_free(&p);
  return reset;
}

static double dur_seconds(int64_t ms) {
  return (double)(ms / 1000) + (double)((ms % 1000) * 1000000) / 1e9;
}

int ref_rate(const rc_histogram_t *s, size_t n, int64_t t, int64_t range, int compat,
             int is_rate, ref_hist_t *out) {
  int64_t start = t - range;
  ref_hist_t *v = calloc(n + 1, sizeof(*v));
  int64_t *ts = calloc(n + 1, sizeof(*ts));
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i].is_stale || s[i].ts_ms > t) continue;
    if (compat == 0 ? s[i].ts_ms <= start : s[i].ts_ms < start) continue;
    ref_from_raw(&v[m], &s[i]);
    ts[m++] = s[i].ts_ms;
  }
  int rc = 0;
  ref_hist_t empty = {0};
  if (m < 2) {
    rc = -8;
    goto out;
  }
  const ref_hist_t *prev = &v[0], *last = &v[m - 1];
  if (compat == 1)
    for (size_t i = 0; i < m; i++)
      if (is_custom(&v[i])) {
        rc = -7;
        goto out;
      }
  if (compat == 0 && detect_reset(&v[1], prev)) {
    empty.schema = v[1].schema;
    empty.ncustom = v[1].ncustom;
    empty.custom = malloc((v[1].ncustom + 1) * sizeof(double));
    if (v[1].ncustom) memcpy(empty.custom, v[1].custom, v[1].ncustom * sizeof(double));
    prev = &empty;
  }
  if (is_custom(last) != is_custom(prev)) {
    rc = -7;
    goto out;
  }
  int32_t min = last->schema < prev->schema ? last->schema : prev->schema;
  for (size_t i = 1; i + 1 < m; i++) {
    if (v[i].schema < min) min = v[i].schema;
    if (is_custom(&v[i]) != is_custom(prev)) {
      rc = -7;
      goto out;
    }
  }
  ref_copy(out, last);
  reduce(out, min);
  if ((rc = addsub(out, prev, 1)) != 0) goto fail;
  for (size_t i = 1; i < m; i++) {
    if (detect_reset(&v[i], prev) && (rc = addsub(out, prev, 0)) != 0) goto fail;
    prev = &v[i];
  }
  compact(out);
  out->hint = 3;
  double to_start = (double)(ts[0] - start) / 1000, to_end = (double)(t - ts[m - 1]) / 1000;
  double sampled = (double)(ts[m - 1] - ts[0]) / 1000, avg = sampled / (double)(m - 1);
  double f;
  if (compat == 1) {
    double iv = sampled;
    iv += to_start < avg * 1.1 ? to_start : avg / 2;
    iv += to_end < avg * 1.1 ? to_end : avg / 2;
    f = iv / sampled;
  } else {
    if (to_start >= avg * 1.1) to_start = avg / 2;
    double tz = to_start;
    if (out->count > 0 && v[0].count >= 0) tz = sampled * (v[0].count / out->count);
    if (tz < to_start) to_start = tz;
    if (to_end >= avg * 1.1) to_end = avg / 2;
    f = (sampled + to_start + to_end) / sampled;
  }
  if (is_rate) f /= dur_seconds(range);
  out->zc *= f;
  out->count *= f;
  out->sum *= f;
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < out->n[k]; i++) out->b[k][i].count *= f;
  goto out;
fail:
  ref_hist_free(out);
out:
  ref_hist_free(&empty);
  for (size_t i = 0; i < m; i++) ref_hist_free(&v[i]);
  free(v);
  free(ts);
  return rc;
}

typedef struct qbk {
  double lo, up, c;
} qbk_t;

/* HistogramQuantile (3.x) / histogramQuantile (2.42) over AllBucketIterator's sequence. */
double ref_quantile(double q, const ref_hist_t *h, int compat) {
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  if (h->count == 0 || isnan(q)) return NAN;
  int custom = is_custom(h);
  if (custom && compat == 1) return NAN;
  qbk_t *l = malloc((h->n[0] + h->n[1] + 1) * sizeof(*l));
  size_t m = 0;
  if (custom) {
    for (size_t i = 0; i < h->n[0]; i++) {
      int32_t x = h->b[0][i].idx;
      l[m++] = (qbk_t){x == 0 ? -INFINITY : h->custom[x - 1],
                       x >= (int32_t)h->ncustom ? INFINITY : h->custom[x], h->b[0][i].count};
    }
  } else {
    for (size_t i = h->n[1]; i-- > 0;) {
      ref_bucket_t b = h->b[1][i];
      qbk_t x = {-ref_bound(h->schema, b.idx), -ref_bound(h->schema, b.idx - 1), b.count};
      if (x.up < 0 && x.up > -h->zt) x.up = -h->zt;
      l[m++] = x;
    }
    if (h->zc > 0) l[m++] = (qbk_t){-h->zt, h->zt, h->zc};
    for (size_t i = 0; i < h->n[0]; i++) {
      ref_bucket_t b = h->b[0][i];
      qbk_t x = {ref_bound(h->schema, b.idx - 1), ref_bound(h->schema, b.idx), b.count};
      if (x.lo > 0 && x.lo < h->zt) x.lo = h->zt;
      l[m++] = x;
    }
  }
  int fwd = compat == 1 || isnan(h->sum) || q < 0.5;
  double rank = fwd ? q * h->count : (1 - q) * h->count, cum = 0;
  qbk_t b = {0, 0, 0};
  for (size_t i = 0; i < m; i++) {
    b = l[fwd ? i : m - 1 - i];
    if (compat == 0 && b.c == 0) continue;
    cum += b.c;
    if (cum >= rank) break;
  }
  free(l);
  if (!custom && b.lo < 0 && b.up > 0) {
    if (h->n[1] == 0 && h->n[0] > 0) b.lo = 0;
    else if (h->n[0] == 0 && h->n[1] > 0) b.up = 0;
  } else if (custom) {
    if (b.lo == -INFINITY) {
      if (b.up <= 0) return b.up;
      b.lo = 0;
    } else if (b.up == INFINITY) {
      return b.lo;
    }
  }
  if (cum > h->count) cum = h->count;
  if (cum < rank) return compat == 0 && isnan(h->sum) ? NAN : b.up;
  if (fwd) rank -= cum - b.c;
  else rank = cum - rank;
  double f = rank / b.c;
  if (compat == 1 || custom || (b.lo <= 0 && b.up >= 0)) return b.lo + (b.up - b.lo) * f;
  if (b.lo > 0) return exp2(log2(b.lo) + (log2(b.up) - log2(b.lo)) * f);
  return -exp2(log2(-b.up) + (log2(-b.lo) - log2(-b.up)) * (1 - f));
}
