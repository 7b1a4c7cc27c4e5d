/* ring.c: SPSC pointer ring; see ring.h for the memory-ordering argument. */
#include "ring.h"

#include <stdlib.h>

#include "rc.h"

int rc_ring_init(rc_ring_t *r, size_t capacity) {
  if (capacity == 0 || capacity > ((size_t)1 << 30)) return RC_EINVAL;
  size_t cap = 1;
  while (cap < capacity) cap <<= 1;
  r->slots = calloc(cap, sizeof(void *));
  if (r->slots == NULL) return RC_ENOMEM;
  r->mask = cap - 1;
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  return 0;
}

void rc_ring_close(rc_ring_t *r) {
  free(r->slots);
  r->slots = NULL;
}

int rc_ring_push(rc_ring_t *r, void *item) {
  size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  if (tail - head > r->mask) return RC_EFULL;
  r->slots[tail & r->mask] = item;
  atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
  return 0;
}

void *rc_ring_pop(rc_ring_t *r) {
  size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
  size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  if (head == tail) return NULL;
  void *item = r->slots[head & r->mask];
  atomic_store_explicit(&r->head, head + 1, memory_order_release);
  return item;
}

size_t rc_ring_size(rc_ring_t *r) {
  size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
  size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  return tail - head;
}

size_t rc_ring_capacity(const rc_ring_t *r) { return r->mask + 1; }
