/* tally.c: per-metric-name counters with open addressing (linear probing) keyed by xxh3;
 * see tally.h. */
#include "tally.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "rc.h"
#include "stats.h"

int rc_tally_init(rc_tally_t *t, uint32_t max_names) {
  memset(t, 0, sizeof(*t));
  if (max_names == 0) return RC_EINVAL;
  uint32_t cap = 64;
  while (cap < max_names * 2u) cap <<= 1; /* load factor <= 0.5 keeps probes short */
  t->slots = calloc(cap, sizeof(*t->slots));
  if (t->slots == NULL) return RC_ENOMEM;
  t->cap = cap;
  t->max_names = max_names;
  if (uv_mutex_init(&t->lock) != 0) {
    free(t->slots);
    return RC_ENOMEM;
  }
  return 0;
}

void rc_tally_close(rc_tally_t *t) {
  if (t->slots == NULL) return;
  for (uint32_t i = 0; i < t->cap; i++) free(t->slots[i].name);
  free(t->slots);
  t->slots = NULL;
  uv_mutex_destroy(&t->lock);
}

static rc_tally_entry_t *lookup(rc_tally_t *t, const char *name, uint32_t len, int create) {
  uint32_t i = (uint32_t)XXH3_64bits(name, len) & (t->cap - 1);
  for (;;) {
    rc_tally_entry_t *e = &t->slots[i];
    if (e->name == NULL) {
      if (!create) return NULL;
      if (t->used >= t->max_names) return NULL;
      e->name = malloc(len + 1);
      if (e->name == NULL) return NULL;
      memcpy(e->name, name, len);
      e->name[len] = '\0';
      e->name_len = len;
      t->used++;
      return e;
    }
    if (e->name_len == len && memcmp(e->name, name, len) == 0) return e;
    i = (i + 1) & (t->cap - 1);
  }
}

void rc_tally_add_batch(rc_tally_t *t, const rc_batch_t *b) {
  uint64_t overflow = 0;
  uv_mutex_lock(&t->lock);
  rc_tally_entry_t *last = NULL;
  for (uint32_t i = 0; i < b->nseries; i++) {
    const rc_series_t *s = &b->series[i];
    rc_tally_entry_t *e;
    /* Prometheus sends runs of the same metric; reuse the previous lookup when it matches. */
    if (last != NULL && last->name_len == s->metric_len &&
        memcmp(last->name, s->metric, s->metric_len) == 0)
      e = last;
    else
      e = lookup(t, s->metric, s->metric_len, 1);
    if (e == NULL) {
      e = &t->overflow;
      overflow++;
    } else {
      last = e;
    }
    e->series++;
    e->samples += s->nsamples;
    e->histograms += s->nhistograms;
    e->exemplars += s->nexemplars;
  }
  t->batches++;
  uv_mutex_unlock(&t->lock);
  if (overflow) rc_stat_add(&rc_stats.tally_overflow, overflow);
}

static json_t *entry_json(const rc_tally_entry_t *e) {
  return json_pack("{s:I,s:I,s:I,s:I}", "series", (json_int_t)e->series, "samples",
                   (json_int_t)e->samples, "histograms", (json_int_t)e->histograms,
                   "exemplars", (json_int_t)e->exemplars);
}

int rc_tally_render_json(rc_tally_t *t, rc_buf_t *out) {
  json_t *root = json_object(), *metrics = json_object();
  rc_tally_entry_t total = {0};
  if (root == NULL || metrics == NULL) goto oom;
  uv_mutex_lock(&t->lock);
  for (uint32_t i = 0; i < t->cap; i++) {
    rc_tally_entry_t *e = &t->slots[i];
    if (e->name == NULL) continue;
    total.series += e->series;
    total.samples += e->samples;
    total.histograms += e->histograms;
    total.exemplars += e->exemplars;
    json_object_setn_new(metrics, e->name, e->name_len, entry_json(e));
  }
  total.series += t->overflow.series;
  total.samples += t->overflow.samples;
  total.histograms += t->overflow.histograms;
  total.exemplars += t->overflow.exemplars;
  json_object_set_new(root, "batches", json_integer((json_int_t)t->batches));
  json_object_set_new(root, "overflow", entry_json(&t->overflow));
  uv_mutex_unlock(&t->lock);
  json_object_set_new(root, "totals", entry_json(&total));
  json_object_set_new(root, "metrics", metrics);
  metrics = NULL;
  char *s = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(root);
  if (s == NULL) return RC_ENOMEM;
  rc_buf_puts(out, s);
  free(s);
  return out->oom ? RC_ENOMEM : 0;
oom:
  json_decref(root);
  json_decref(metrics);
  return RC_ENOMEM;
}

int rc_tally_get(rc_tally_t *t, const char *name, rc_tally_entry_t *out) {
  uv_mutex_lock(&t->lock);
  rc_tally_entry_t *e = lookup(t, name, (uint32_t)strlen(name), 0);
  if (e != NULL) *out = *e;
  uv_mutex_unlock(&t->lock);
  return e != NULL;
}
