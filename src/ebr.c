/* ebr.c: epoch-based reclamation; see ebr.h.
 *
 * Why it is safe: a reader publishes the epoch it saw (seq_cst store, then a full fence)
 * before it loads any pointer. The writer unlinks, records the current epoch R with the
 * object, and when collecting advances the epoch and reads every slot after a full fence. If
 * a slot reads 0 or an epoch > R, that reader entered after the unlink was visible, so it
 * cannot reach the object; when every slot qualifies, the object is freed.
 */
#include "ebr.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

void rc_ebr_init(rc_ebr_t *e, rc_mem_t *mem) {
  memset(e, 0, sizeof(*e));
  atomic_init(&e->epoch, 1);
  e->mem = mem;
}

void rc_ebr_close(rc_ebr_t *e) {
  for (size_t i = 0; i < e->nlimbo; i++) e->limbo[i].free_fn(e->mem, e->limbo[i].p);
  rc_mem_free(e->mem, e->limbo);
  e->limbo = NULL;
  e->nlimbo = e->cap = 0;
}

int rc_ebr_register(rc_ebr_t *e) {
  uint32_t s = atomic_fetch_add(&e->nslots, 1);
  return s < RC_EBR_MAX_READERS ? (int)s : -1;
}

void rc_ebr_enter(rc_ebr_t *e, int slot) {
  atomic_store(&e->active[slot], atomic_load(&e->epoch));
  atomic_thread_fence(memory_order_seq_cst);
}

void rc_ebr_exit(rc_ebr_t *e, int slot) {
  atomic_store_explicit(&e->active[slot], 0, memory_order_release);
}

/* The oldest epoch a reader is in, or UINT64_MAX when none is inside a walk. */
static uint64_t oldest_reader(rc_ebr_t *e) {
  atomic_thread_fence(memory_order_seq_cst);
  uint64_t min = UINT64_MAX;
  uint32_t n = atomic_load(&e->nslots);
  if (n > RC_EBR_MAX_READERS) n = RC_EBR_MAX_READERS;
  for (uint32_t i = 0; i < n; i++) {
    uint64_t a = atomic_load_explicit(&e->active[i], memory_order_acquire);
    if (a != 0 && a < min) min = a;
  }
  return min;
}

size_t rc_ebr_collect(rc_ebr_t *e) {
  if (e->nlimbo == 0) return 0;
  atomic_fetch_add(&e->epoch, 1);
  uint64_t min = oldest_reader(e);
  size_t keep = 0;
  for (size_t i = 0; i < e->nlimbo; i++) {
    if (e->limbo[i].epoch < min) e->limbo[i].free_fn(e->mem, e->limbo[i].p);
    else e->limbo[keep++] = e->limbo[i];
  }
  e->nlimbo = keep;
  return keep;
}

void rc_ebr_retire(rc_ebr_t *e, void *p, rc_ebr_free_fn free_fn) {
  if (e->nlimbo == e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 64;
    rc_ebr_item_t *n = rc_mem_realloc(e->mem, e->limbo, cap * sizeof(*n));
    if (n == NULL) {
      /* No room to defer: wait until every current reader has moved on, then free now.
       * Readers never block, so this ends. */
      uint64_t now = atomic_fetch_add(&e->epoch, 1) + 1;
      while (oldest_reader(e) < now) sched_yield();
      free_fn(e->mem, p);
      return;
    }
    e->limbo = n;
    e->cap = cap;
  }
  e->limbo[e->nlimbo++] = (rc_ebr_item_t){p, free_fn, atomic_load(&e->epoch)};
  if (e->nlimbo >= 256) rc_ebr_collect(e);
}
