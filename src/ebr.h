/* ebr.h: epoch-based reclamation, so that readers can walk a structure while its single
 * writer replaces parts of it, with no lock on either side.
 *
 * A reader brackets every walk with rc_ebr_enter()/rc_ebr_exit() on its own slot. The writer
 * unlinks an object first (readers arriving later cannot reach it), then rc_ebr_retire()s it;
 * rc_ebr_collect() frees retired objects once every reader that was inside a walk when they
 * were retired has left it. Readers never wait; the writer never waits either: what cannot be
 * freed yet stays on the writer's list until a later collect.
 *
 * Threads: one writer per rc_ebr_t (retire, collect); up to RC_EBR_MAX_READERS readers, each
 * with a slot from rc_ebr_register(). Memory: retired objects belong to the EBR until freed
 * with the function given at retire time, which receives the EBR's accountant (mem.h): an
 * EBR serves one accountant, the one its retired blocks were allocated from (a store shard's),
 * and its own list of retired objects is counted there too.
 */
#ifndef RC_EBR_H
#define RC_EBR_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"

#define RC_EBR_MAX_READERS 64

/* Frees p, allocated from mem (rc_mem_free has this shape). */
typedef void (*rc_ebr_free_fn)(rc_mem_t *mem, void *p);

typedef struct rc_ebr_item {
  void *p;
  rc_ebr_free_fn free_fn;
  uint64_t epoch;
} rc_ebr_item_t;

typedef struct rc_ebr {
  _Atomic uint64_t epoch;
  _Atomic uint32_t nslots;
  _Alignas(64) _Atomic uint64_t active[RC_EBR_MAX_READERS]; /* 0 = outside a walk */
  rc_ebr_item_t *limbo; /* writer only */
  size_t nlimbo, cap;
  rc_mem_t *mem; /* borrowed; NULL: plain malloc/free */
} rc_ebr_t;

/* mem: the accountant of the blocks retired here (may be NULL); it must outlive the EBR. */
void rc_ebr_init(rc_ebr_t *e, rc_mem_t *mem);
/* Frees everything still retired; no reader may be inside a walk. */
void rc_ebr_close(rc_ebr_t *e);
/* Returns a reader slot, or -1 when all are taken. */
int rc_ebr_register(rc_ebr_t *e);
void rc_ebr_enter(rc_ebr_t *e, int slot);
void rc_ebr_exit(rc_ebr_t *e, int slot);
/* Writer: p is unlinked; free it with free_fn(e->mem, p) once no reader can hold it. If the
 * list cannot grow, waits for the readers of the current epoch to leave (bounded: readers
 * never block). */
void rc_ebr_retire(rc_ebr_t *e, void *p, rc_ebr_free_fn free_fn);
/* Writer: frees what no reader can still hold. Returns how many objects remain retired. */
size_t rc_ebr_collect(rc_ebr_t *e);

#endif
