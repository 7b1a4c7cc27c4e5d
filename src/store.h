/* store.h: the series store — for every series some rule selects, its labels and its window of
 * samples (window.h); for every other series, only the cached decision to drop it.
 *
 * rc_store_apply() takes a decoded batch: each series is hashed once (XXH3-128 of its label
 * set, selindex.h), the decision cache says which rule selectors want it (one lookup for a
 * series seen before), unselected series are counted and dropped, selected ones are found or
 * created in the series table (bounded by max_series: past it new series are refused, counted
 * and logged at most once a minute) and their samples (floats to the window, native
 * histograms to the histogram window) appended (late samples within the
 * out-of-order tolerance land in place; older ones, duplicates and conflicts are counted).
 * Chunks older than the retention are expired as the watermark (newest timestamp seen)
 * advances, and series left empty are removed.
 *
 * Threads: one writer per store — the ingest worker that owns this shard (workers.h): it
 * applies batches, sets the index, and alone may call rc_store_find and rc_store_changed.
 * With cfg.readers set, other threads may read at the same time without locks: they bracket
 * every walk with rc_ebr_enter/exit on rc_store_ebr(s) (a slot from rc_ebr_register), then
 * walk a selector's series (rc_store_foreach), read their labels (rc_store_series_labels) and
 * windows (window.h). Everything a reader can reach is published with release stores and
 * replaced copy-on-write: a selector's series list is an array whose length is published after
 * the new element, grown or rebuilt into a new array; a series' selector ids live in the same
 * blob as its labels, replaced whole on reload; removed series and old arrays are retired
 * through the store's EBR and freed once no reader can hold them. A reader thus sees each list
 * as it was at some instant, and every series in it alive. Counters are relaxed atomics that
 * any thread may read (rc_store_stats). Memory: the store owns its series (labels copied out
 * of the batch, windows), its lists and its decision cache; it borrows the selector index,
 * which must outlive the store or be replaced with rc_store_set_index() first.
 *
 * Memory accounting and bound (mem.h): every block the store keeps is allocated from its
 * accountant (cfg.mem), so rc_store_stats().bytes is exact and live. With cfg.max_memory set:
 *  - from the high-water mark (max_memory - max_memory/16) on, new series are refused
 *    (refused_series_memory) and so is every sample that would need a new chunk
 *    (refused_samples_memory / refused_hist_memory) — except the first chunk of a series
 *    admitted just below the mark, refused only at max_memory;
 *  - series already held keep taking samples into their head chunks, which may grow until
 *    max_memory itself; at max_memory only samples that fit in the room a head chunk already
 *    has are taken.
 * The count thus passes max_memory by at most the one allocation that crossed it (a chunk
 * growing, or a new series with its list growing) plus bookkeeping that is never refused
 * (the list of changed series, the EBR's list, reload and sweep rebuilds), which is bounded
 * by the number of series. Refused samples still move the watermark (so do the samples of a
 * refused series): expiry is driven by the watermark, and it is what brings the memory back
 * down — refusing the timestamps too would stop the store from ever freeing anything.
 */
#ifndef RC_STORE_H
#define RC_STORE_H

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "batch.h"
#include "ebr.h"
#include "mem.h"
#include "rc.h"
#include "selindex.h"
#include "histwin.h"
#include "window.h"

typedef struct rc_store_cfg {
  uint32_t max_series;       /* selected series held at most (--storage.max-series) */
  int64_t max_ahead_ms;      /* samples further than this ahead of the wall clock are refused
                                (--storage.max-ahead, default 10m as Prometheus): one sample
                                from a broken clock would otherwise move the watermark and
                                expire every window. 0 disables the check. */
  uint32_t cache_entries;    /* decisions cached (selected and dropped series alike) */
  size_t max_memory;         /* bytes this store may hold (--storage.max-memory's share); 0:
                                unbounded. See "Memory accounting and bound" above. */
  rc_mem_t *mem;             /* the store's accountant: borrowed, must outlive the store, its
                                limit set by rc_store_new to max_memory. NULL: the store keeps
                                its own. */
  int readers;               /* 1: threads other than the writer read (see Threads above) */
  rc_window_cfg_t window;    /* its ebr and mem are set by the store */
} rc_store_cfg_t;

typedef struct rc_store_series {
  rc_selindex_hash_t h;
  /* Owned, one allocation: the number of selector ids (uint32_t), the ids that want this
   * series, then the label set packed as (name length, name, value length, value) with
   * 16-bit lengths. Packed because an array of rc_label_t would cost 24 bytes per label on
   * top of the strings: a third of a selected series' budget. One blob so that a reload,
   * which changes the ids, replaces it with one atomic store that readers see whole.
   * rc_store_series_sel() and rc_store_series_labels() unpack. */
  uint8_t *_Atomic data;
  uint16_t nlabels;
  uint32_t label_bytes;
  rc_window_t win;      /* float samples */
  rc_histwin_t hwin;    /* native histogram samples (a series may switch kinds, as in TSDB) */
  uint64_t appended;  /* writer's: samples appended over its life */
  uint64_t touched;   /* writer's: the store's apply count when it last received a sample */
} rc_store_series_t;

/* The selector ids that want the series (borrowed from it; the writer's view, or a reader's
 * inside an EBR walk), their number in *n. */
static inline const uint32_t *rc_store_series_sel(const rc_store_series_t *r, uint32_t *n) {
  const uint8_t *d = atomic_load_explicit(&((rc_store_series_t *)r)->data, memory_order_acquire);
  uint32_t k;
  memcpy(&k, d, sizeof(k));
  *n = k;
  return (const uint32_t *)(const void *)(d + sizeof(uint32_t));
}
/* Unpacks up to max labels into out (pointing into the series; valid while it lives, and for
 * a reader until its EBR walk ends) and returns the number of labels. */
uint32_t rc_store_series_labels(const rc_store_series_t *r, rc_label_t *out, uint32_t max);

typedef struct rc_store_stats {
  uint64_t series;            /* selected series held now */
  uint64_t series_created, series_removed;
  uint64_t refused_series;    /* new series refused at max_series */
  uint64_t refused_series_memory;  /* new series refused at the memory high-water mark */
  uint64_t refused_samples_memory; /* float samples refused for memory (of refused series,
                                      or needing a chunk the bound did not allow) */
  uint64_t refused_hist_memory;    /* native histogram samples, likewise */
  uint64_t dropped_series;    /* series entries of batches that no selector wants */
  uint64_t dropped_samples;   /* and their samples */
  uint64_t appended;          /* samples stored */
  uint64_t too_old, duplicates, conflicts;
  uint64_t too_far_ahead;     /* samples refused for being ahead of the clock */
  uint64_t hist_appended;     /* native histogram samples stored */
  uint64_t hist_invalid;      /* native histogram samples refused by the histogram window's
                                 checks (e.g. a bucket run past RC_FHIST_MAX_RUN) */
  uint64_t dropped_histograms; /* native histogram samples of unselected series */
  uint64_t bytes;             /* memory the store holds, exactly (its accountant, live) */
  uint64_t memory_limit;      /* max_memory; 0: unbounded */
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
/* Applies only the series b->series[idx[k]], k < n, whose label hashes (rc_selindex_hash_labels)
 * the caller already computed in hs[k]: the part of a batch that a worker routed to this
 * shard. The rest of the batch is not looked at. Owner thread. */
int rc_store_apply_part(rc_store_t *s, const rc_batch_t *b, const uint32_t *idx,
                        const rc_selindex_hash_t *hs, uint32_t n);
/* The EBR readers of this store bracket their walks with; NULL unless cfg.readers. */
rc_ebr_t *rc_store_ebr(rc_store_t *s);
/* Looks a series up by its labels (sorted). NULL if the store does not hold it. */
rc_store_series_t *rc_store_find(rc_store_t *s, const rc_label_t *labels, uint32_t n);
/* Calls cb for every held series that selector `sel_id` wants; stops when cb returns
 * non-zero and returns that value. Costs the number of series of that selector, not the
 * store's. The writer, or a reader inside an EBR walk: a reader sees the list as it was when
 * the call began. */
int rc_store_foreach(rc_store_t *s, uint32_t sel_id,
                     int (*cb)(void *ctx, rc_store_series_t *series), void *ctx);
/* The series that received at least one sample in the last rc_store_apply, each once: what an
 * evaluator triggered by that batch needs to look at. Borrowed until the next apply or
 * set_index. Owner thread. */
void rc_store_changed(rc_store_t *s, rc_store_series_t *const **out, uint32_t *n);
/* Any thread. */
void rc_store_stats(const rc_store_t *s, rc_store_stats_t *out);

#endif
