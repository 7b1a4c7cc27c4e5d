/* selindex.h: which rule selectors want a series — an immutable selector index, and a bounded
 * per-thread cache of its decisions keyed by a hash of the label set.
 *
 * What lives here:
 *   - rc_selindex_t: built once from the loaded rules' selectors (each with a caller-given
 *     id), then read-only. Selectors that fix the metric name (__name__="x", or a regex that
 *     is a literal or an alternation of literals) are filed under each name; the rest sit in
 *     one list checked for every series. rc_selindex_match() returns the ids of every
 *     selector matching a label set, in build order.
 *   - rc_selindex_cache_t: maps a label set to the decision (the list of selector ids, or
 *     "no rule wants it") so that a series seen before costs one hash and one table lookup.
 *     Keyed by the 128-bit XXH3 of the canonical label encoding under a per-process random
 *     secret. The low 64 bits pick the slot, the full 128 bits are stored and compared: two
 *     different label sets share an entry only if all 128 bits collide, about 2^-128 per
 *     pair for inputs chosen without knowledge of the secret (1e12 series give ~1e-15 odds
 *     of any wrong answer). Storing the label bytes instead would be exact but costs the
 *     size of every dropped series (hundreds of bytes each), which the cache exists to avoid;
 *     16 bytes of hash cost the same single pass as 8.
 *   - A generation number per index: every entry records the generation it was decided
 *     under, so a rule reload (a new index) invalidates all decisions in O(1); an entry from
 *     an older generation is re-evaluated in place on its next lookup.
 * Not here: the series store, its --storage.max-series refusal and the once-a-minute log
 * line (the store counts and logs; this module hands it the counters), rule parsing.
 *
 * Bounds: the cache holds at most max_entries decisions. When full, the default policy
 * (RC_SELINDEX_EVICT) evicts with CLOCK (second chance: an entry hit since the hand last
 * passed survives one more round; entries from an older generation go first), so a long-lived
 * process with series churn keeps caching the series it sees now. RC_SELINDEX_REFUSE instead
 * reclaims only older-generation entries and otherwise answers uncached (correct, just not
 * remembered) and counts it. Distinct decisions are interned in a table bounded by
 * max_decisions and max_decision_ids; past those, answers are uncached and counted too.
 * Memory: 24 bytes per slot, slots = the power of two >= max_entries * 8 / 7.
 *
 * Ownership: the index borrows its selectors; they must outlive it (the rule set that owns
 * both frees the index first). A cache owns its table and a matcher scratch.
 *
 * Threads: an index is immutable after rc_selindex_build and may be used by any number of
 * threads at once (each passing its own rc_matcher_scratch_t). A cache is single-threaded:
 * one owner thread calls everything except rc_selindex_cache_stats, which any thread may call
 * at any time (counters are relaxed atomics: tallies, not synchronisation). The intended
 * shape: the store shards series by hash across W workers, each worker owns one cache, and
 * all of them share the current index; a reload publishes a new index, and each worker's
 * cache notices the new generation on its next call. Free an old index only after every
 * worker has stopped using it (e.g. after each acknowledged the new one).
 */
#ifndef RC_SELINDEX_H
#define RC_SELINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "mem.h"
#include "rc.h"
#include "selector.h"

typedef struct rc_selindex rc_selindex_t;

typedef struct rc_selindex_entry {
  const rc_selector_t *sel; /* borrowed: must outlive the index */
  uint32_t id;              /* returned by matching; opaque to the index, need not be unique */
} rc_selindex_entry_t;

/* Builds an index over entries[0..n) (n may be 0: nothing is selected). Returns 0, RC_EINVAL
 * (NULL selector, n too large) or RC_ENOMEM. Each index gets a new generation number. */
int rc_selindex_build(const rc_selindex_entry_t *entries, size_t n, rc_selindex_t **out);
void rc_selindex_free(rc_selindex_t *idx); /* NULL is a no-op */

uint32_t rc_selindex_generation(const rc_selindex_t *idx); /* never 0 */
uint32_t rc_selindex_size(const rc_selindex_t *idx);       /* number of entries */

/* Ids of all selectors matching the label set (sorted by name, unique names, as rc_series_t
 * guarantees), in build order. Writes at most max ids to out_ids and returns how many match
 * (which may exceed max, snprintf style). No allocation. */
uint32_t rc_selindex_match(const rc_selindex_t *idx, rc_matcher_scratch_t *scr,
                           const rc_label_t *labels, uint32_t n, uint32_t *out_ids, uint32_t max);

/* ---- label-set hash --------------------------------------------------------------------- */

typedef struct rc_selindex_hash {
  uint64_t lo, hi;
} rc_selindex_hash_t;

/* XXH3-128 of the canonical encoding of the label set, under a secret drawn from getrandom()
 * once per process (so colliding label sets cannot be precomputed). Encoding, per label in
 * the given (sorted) order: LEB128(name_len) name LEB128(value_len) value — lengths make it
 * unambiguous. Thread-safe. The store may shard on `lo % W`; the cache picks its slot from
 * the top bits of lo, so the two stay independent. */
rc_selindex_hash_t rc_selindex_hash_labels(const rc_label_t *labels, uint32_t n);

/* A decoded series' hash: the one its decoder remembered, else computed. (A series whose
 * labels a decoder left raw always has its id: that is a label-set cache hit.) */
static inline rc_selindex_hash_t rc_series_hash(const rc_series_t *s) {
  if (s->has_id) return (rc_selindex_hash_t){.lo = s->id_lo, .hi = s->id_hi};
  return rc_selindex_hash_labels(s->labels, s->nlabels);
}

/* ---- decision cache --------------------------------------------------------------------- */

typedef enum rc_selindex_policy {
  RC_SELINDEX_EVICT = 0, /* when full, evict (CLOCK), older generations first */
  RC_SELINDEX_REFUSE,    /* when full, reclaim older generations only; else answer uncached */
} rc_selindex_policy_t;

typedef struct rc_selindex_cache_opts {
  uint32_t max_entries;      /* required, 1 .. 2^28 */
  uint32_t max_decisions;    /* distinct id lists per generation; 0: 4096 */
  uint32_t max_decision_ids; /* total ids stored across them; 0: 1 << 20 */
  rc_selindex_policy_t policy;
  rc_mem_t *mem;             /* accountant of the cache's memory (a store shard's); borrowed;
                                NULL: not counted. The matcher scratch is not counted. */
} rc_selindex_cache_opts_t;

typedef struct rc_selindex_stats {
  uint64_t hits;         /* answered from the cache */
  uint64_t misses;       /* evaluated against the index (includes stale) */
  uint64_t stale;        /* misses on an entry from an older generation (after a reload) */
  uint64_t selected;     /* decisions with at least one selector */
  uint64_t dropped;      /* decisions with none: the series is not stored */
  uint64_t full;         /* inserts that found the cache at max_entries */
  uint64_t evictions;    /* current-generation entries evicted to make room */
  uint64_t uncached;     /* answers not remembered (cache or decision table full) */
  uint64_t regex_errors; /* regex matches that failed (PCRE2 limits): counted as no match */
  uint64_t entries;      /* entries now in the table (any generation) */
} rc_selindex_stats_t;

typedef struct rc_selindex_decision {
  const uint32_t *ids; /* borrowed: valid until the next call on the same cache */
  uint32_t n;          /* 0: no selector wants the series; drop it */
  uint8_t cached;      /* 1 if answered from the cache without evaluating */
} rc_selindex_decision_t;

typedef struct rc_selindex_cache rc_selindex_cache_t;

/* Returns 0, RC_EINVAL (bad options) or RC_ENOMEM. The table is allocated up front. */
int rc_selindex_cache_new(const rc_selindex_cache_opts_t *o, rc_selindex_cache_t **out);
void rc_selindex_cache_free(rc_selindex_cache_t *c); /* NULL is a no-op */

/* The decision for one label set under idx: hashes the labels, then as _decide_hashed.
 * Returns 0, or RC_ENOMEM (only when idx has more selectors than the cache has seen before
 * and growing its scratch list fails). Owner thread only. */
int rc_selindex_cache_decide(rc_selindex_cache_t *c, const rc_selindex_t *idx,
                             const rc_label_t *labels, uint32_t n, rc_selindex_decision_t *out);

/* The same with a hash the caller already computed with rc_selindex_hash_labels (the store
 * hashes once to pick the shard). h must be the hash of exactly these labels. labels may be
 * NULL (a decoder left them raw): then a decision not in the cache for idx is not made and
 * RC_ENOENT returned, for the caller to unpack the labels and ask again. */
int rc_selindex_cache_decide_hashed(rc_selindex_cache_t *c, const rc_selindex_t *idx,
                                    rc_selindex_hash_t h, const rc_label_t *labels, uint32_t n,
                                    rc_selindex_decision_t *out);

/* Optional: starts loading the slot h maps to, so that deciding a batch can overlap the
 * cache misses of a large table (hash the batch, prefetch each, then decide each). No effect
 * on results. Owner thread. */
void rc_selindex_cache_prefetch(const rc_selindex_cache_t *c, rc_selindex_hash_t h);

/* A snapshot of the counters. Any thread, any time. */
void rc_selindex_cache_stats(const rc_selindex_cache_t *c, rc_selindex_stats_t *out);

#endif
