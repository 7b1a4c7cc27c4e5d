/* store.h: the series store — for every series some rule selects, its labels and its window of
 * samples (window.h); for every other series, only the cached decision to drop it.
 *
 * rc_store_apply() takes a decoded batch: each series is hashed once (XXH3-128 of its label
 * set, selindex.h), the decision cache says which rule selectors want it (one lookup for a
 * series seen before), unselected series are counted and dropped, selected ones are found or
 * created in the series table (bounded by max_series: past it new series are refused, counted
 * and logged at most once a minute) and their samples appended (late samples within the
 * out-of-order tolerance land in place; older ones, duplicates and conflicts are counted).
 * Chunks older than the retention are expired as the watermark (newest timestamp seen)
 * advances, and series left empty are removed.
 *
 * Threads: in this stage one thread — the ingest consumer — owns the store: it applies
 * batches and is the only thread that may query it. Counters are relaxed atomics that any
 * thread may read (rc_store_stats). Memory: the store owns its series (labels copied out of
 * the batch, windows) and its decision cache; it borrows the selector index, which must
 * outlive the store or be replaced with rc_store_set_index() first.
 */
#ifndef RC_STORE_H
#define RC_STORE_H

#include <stdatomic.h>
#include <stdint.h>

#include "batch.h"
#include "rc.h"
#include "selindex.h"
#include "window.h"

typedef struct rc_store_cfg {
  uint32_t max_series;       /* selected series held at most (--storage.max-series) */
  int64_t max_ahead_ms;      /* samples further than this ahead of the wall clock are refused
                                (--storage.max-ahead, default 10m as Prometheus): one sample
                                from a broken clock would otherwise move the watermark and
                                expire every window. 0 disables the check. */
  uint32_t cache_entries;    /* decisions cached (selected and dropped series alike) */
  rc_window_cfg_t window;
} rc_store_cfg_t;

typedef struct rc_store_series {
  rc_selindex_hash_t h;
  /* Owned, one allocation: the selector ids (uint32_t each) that want this series, then the
   * label set packed as (name length, name, value length, value) with 16-bit lengths.
   * Packed because an array of rc_label_t would cost 24 bytes per label on top of the
   * strings: a third of a selected series' budget. rc_store_series_labels() unpacks. */
  uint8_t *data;
  uint16_t nsel, nlabels;
  uint32_t label_bytes;
  rc_window_t win;
  uint64_t appended;  /* samples appended over its life */
  uint64_t touched;   /* the store's apply count when it last received a sample */
} rc_store_series_t;

/* The selector ids that want the series (borrowed from it). */
static inline const uint32_t *rc_store_series_sel(const rc_store_series_t *r) {
  return (const uint32_t *)r->data;
}
/* Unpacks up to max labels into out (pointing into the series; valid while it lives) and
 * returns the number of labels. */
uint32_t rc_store_series_labels(const rc_store_series_t *r, rc_label_t *out, uint32_t max);

typedef struct rc_store_stats {
  uint64_t series;            /* selected series held now */
  uint64_t series_created, series_removed;
  uint64_t refused_series;    /* new series refused at max_series */
  uint64_t dropped_series;    /* series entries of batches that no selector wants */
  uint64_t dropped_samples;   /* and their samples */
  uint64_t appended;          /* samples stored */
  uint64_t too_old, duplicates, conflicts;
  uint64_t too_far_ahead;     /* samples refused for being ahead of the clock */
  uint64_t histograms_skipped; /* native histogram samples: not stored yet (see store.c) */
  uint64_t bytes;             /* memory held by series (labels, windows), estimated */
  int64_t watermark_ms;       /* newest sample timestamp seen */
} rc_store_stats_t;

typedef struct rc_store rc_store_t;

/* Returns 0, RC_EINVAL or RC_ENOMEM. idx may be NULL: then nothing is selected. */
int rc_store_new(const rc_store_cfg_t *cfg, const rc_selindex_t *idx, rc_store_t **out);
void rc_store_free(rc_store_t *s);
/* A rule reload: every held series is matched against the new index at once (its selector
 * list updated, or the series removed when no selector wants it any more); decisions for
 * other series are re-made as they arrive. Returns 0 or RC_ENOMEM. Owner thread. */
int rc_store_set_index(rc_store_t *s, const rc_selindex_t *idx);
/* Applies a batch (owner thread). The batch stays the caller's. */
int rc_store_apply(rc_store_t *s, const rc_batch_t *b);
/* Looks a series up by its labels (sorted). NULL if the store does not hold it. */
rc_store_series_t *rc_store_find(rc_store_t *s, const rc_label_t *labels, uint32_t n);
/* Calls cb for every held series that selector `sel_id` wants; stops when cb returns
 * non-zero. Owner thread. Costs the number of series of that selector, not the store's. */
int rc_store_foreach(rc_store_t *s, uint32_t sel_id,
                     int (*cb)(void *ctx, rc_store_series_t *series), void *ctx);
/* The series that received at least one sample in the last rc_store_apply, each once: what an
 * evaluator triggered by that batch needs to look at. Borrowed until the next apply or
 * set_index. Owner thread. */
void rc_store_changed(rc_store_t *s, rc_store_series_t *const **out, uint32_t *n);
/* Any thread. */
void rc_store_stats(const rc_store_t *s, rc_store_stats_t *out);

#endif
