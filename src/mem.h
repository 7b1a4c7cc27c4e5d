/* mem.h: byte accounting for long-lived memory — an accountant (rc_mem_t) that counts, for
 * every block allocated through it, what the allocator really holds, and an optional bound.
 *
 * Why measured and not estimated: an estimate (requested size plus a guessed overhead) drifts
 * from what the process pays as soon as block sizes fall between the allocator's size classes,
 * and a memory bound enforced on a guess is a guess. So every allocation through an accountant
 * adds malloc_usable_size() of the block it got, and every free subtracts malloc_usable_size()
 * of the block it frees: no size is remembered anywhere, and the count is exactly the usable
 * bytes of the live blocks (the allocator's own 8-byte header per block is not included:
 * glibc does not report it). Memory obtained elsewhere (an mmap) is counted by its owner with
 * rc_mem_account().
 *
 * Rule: a block is freed (or reallocated) through the same accountant that allocated it — the
 * count would drift otherwise. A NULL accountant means plain malloc/free with no counting
 * (unit tests, a query's temporaries), so a block allocated with NULL is freed with NULL.
 *
 * Levels (rc_mem_level): with a limit set, the accountant reports OK below the high-water mark
 * (limit - limit/16), HIGH from there and FULL at the limit. The accountant refuses nothing
 * itself; its owner decides what to refuse at each level (store.h: new series and new chunks
 * at HIGH, any growth of a window at FULL).
 *
 * Threads: the counters are relaxed atomics, so a block may be freed on another thread than
 * the one that allocated it (a writer's blocks retired through the EBR are freed by whoever
 * collects), and any thread may read them. The limit is set before the accountant is shared.
 */
#ifndef RC_MEM_H
#define RC_MEM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rc_mem {
  _Atomic int64_t bytes;  /* usable bytes of the live blocks, plus what rc_mem_account added */
  _Atomic int64_t blocks; /* live blocks */
  int64_t limit;          /* 0: unbounded */
  int64_t high;           /* the high-water mark: limit - limit/16 */
} rc_mem_t;

typedef enum { RC_MEM_OK = 0, RC_MEM_HIGH = 1, RC_MEM_FULL = 2 } rc_mem_level_t;

/* limit in bytes; 0 means unbounded. */
void rc_mem_init(rc_mem_t *m, int64_t limit);
/* Sets the limit (and the high-water mark under it). Before the accountant is shared. */
void rc_mem_set_limit(rc_mem_t *m, int64_t limit);

/* As malloc/calloc/realloc/free, counted on m (NULL: not counted). rc_mem_realloc keeps the
 * old block (and its count) when it fails; n must be > 0. rc_mem_free(m, NULL) does nothing.
 * rc_mem_free has the shape of an EBR free function (ebr.h). */
void *rc_mem_malloc(rc_mem_t *m, size_t n);
void *rc_mem_calloc(rc_mem_t *m, size_t n, size_t size);
void *rc_mem_realloc(rc_mem_t *m, void *p, size_t n);
void rc_mem_free(rc_mem_t *m, void *p);

/* Counts memory that did not come from malloc (a mapping): +bytes when it is mapped, -bytes
 * when it is unmapped. Not a block: the block count does not change. */
void rc_mem_account(rc_mem_t *m, int64_t delta);

static inline int64_t rc_mem_bytes(const rc_mem_t *m) {
  return m ? atomic_load_explicit(&((rc_mem_t *)m)->bytes, memory_order_relaxed) : 0;
}
static inline int64_t rc_mem_blocks(const rc_mem_t *m) {
  return m ? atomic_load_explicit(&((rc_mem_t *)m)->blocks, memory_order_relaxed) : 0;
}
/* Where the count stands against the limit (always RC_MEM_OK without one). */
static inline rc_mem_level_t rc_mem_level(const rc_mem_t *m) {
  if (m == NULL || m->limit <= 0) return RC_MEM_OK;
  int64_t b = rc_mem_bytes(m);
  return b >= m->limit ? RC_MEM_FULL : b >= m->high ? RC_MEM_HIGH : RC_MEM_OK;
}

#endif
