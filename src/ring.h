/* ring.h: a bounded single-producer/single-consumer queue of pointers, on C11 atomics.
 *
 * Why not ck_ring: the hand-off has exactly one producer (the libuv loop thread) and one
 * consumer (the ingest consumer thread), and an SPSC ring is ~40 lines whose memory ordering
 * can be read in full: the producer publishes a slot with a release store of `tail`, the
 * consumer takes it with an acquire load, and vice versa for `head`. No CAS, no locks.
 *
 * Ownership: pushing a pointer hands the object to the consumer; the ring never frees items.
 * Capacity is rounded up to a power of two.
 */
#ifndef RC_RING_H
#define RC_RING_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct rc_ring {
  _Alignas(64) _Atomic size_t head; /* next slot to pop; written by the consumer only */
  _Alignas(64) _Atomic size_t tail; /* next slot to push; written by the producer only */
  _Alignas(64) size_t mask;
  void **slots;
} rc_ring_t;

/* Returns 0, RC_EINVAL (capacity 0 or too large) or RC_ENOMEM. */
int rc_ring_init(rc_ring_t *r, size_t capacity);
void rc_ring_close(rc_ring_t *r);
/* Producer side. Returns 0, or RC_EFULL when the ring is full (the item stays the caller's). */
int rc_ring_push(rc_ring_t *r, void *item);
/* Consumer side. Returns the oldest item, or NULL when empty. */
void *rc_ring_pop(rc_ring_t *r);
/* Items in the ring right now; exact from either side, approximate from a third thread. */
size_t rc_ring_size(rc_ring_t *r);
size_t rc_ring_capacity(const rc_ring_t *r);

#endif
