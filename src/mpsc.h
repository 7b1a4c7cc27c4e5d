/* mpsc.h: an unbounded, intrusive, lock-free multi-producer single-consumer FIFO — the inbox
 * of each ingest worker (workers.c), which the loop thread and every other worker push into.
 *
 * The algorithm is Dmitry Vyukov's intrusive MPSC queue: a producer swaps itself in as the
 * new head with one atomic exchange and then links its predecessor to it, so producers never
 * wait for each other or for the consumer; the consumer walks from the tail with a permanent
 * stub node standing in when the queue runs dry. Between a producer's exchange and its link
 * the queue is momentarily "in progress": pop then returns NULL although an item is coming.
 * Callers pair the queue with a wake-up (workers.c) that the producer triggers only after its
 * push returns, so an item seen as in progress is always followed by a wake-up.
 *
 * FIFO per producer, and linearised across producers at their exchange. Bounds are the
 * caller's (workers.c counts requests in flight). Memory: nodes are embedded in the caller's
 * items and stay the caller's; the queue allocates nothing.
 */
#ifndef RC_MPSC_H
#define RC_MPSC_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct rc_mpsc_node {
  struct rc_mpsc_node *_Atomic next;
} rc_mpsc_node_t;

typedef struct rc_mpsc {
  _Alignas(64) rc_mpsc_node_t *_Atomic head; /* producers: newest item */
  _Alignas(64) rc_mpsc_node_t *tail;         /* consumer: oldest item (or the stub) */
  rc_mpsc_node_t stub;
} rc_mpsc_t;

static inline void rc_mpsc_init(rc_mpsc_t *q) {
  atomic_init(&q->stub.next, NULL);
  atomic_init(&q->head, &q->stub);
  q->tail = &q->stub;
}

/* Any thread. */
static inline void rc_mpsc_push(rc_mpsc_t *q, rc_mpsc_node_t *n) {
  atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
  rc_mpsc_node_t *prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
  atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Consumer only. The oldest item, or NULL when empty or when the next push is in progress. */
static inline rc_mpsc_node_t *rc_mpsc_pop(rc_mpsc_t *q) {
  rc_mpsc_node_t *tail = q->tail;
  rc_mpsc_node_t *next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (tail == &q->stub) {
    if (next == NULL) return NULL;
    q->tail = next;
    tail = next;
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
  }
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  /* tail is the last linked item. If it is also the head, re-insert the stub behind it so
   * that tail can be handed out; otherwise a producer is between its exchange and its link. */
  if (tail != atomic_load_explicit(&q->head, memory_order_acquire)) return NULL;
  rc_mpsc_push(q, &q->stub);
  next = atomic_load_explicit(&tail->next, memory_order_acquire);
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  return NULL;
}

/* Consumer only: 1 when nothing is queued or in progress. */
static inline int rc_mpsc_empty(rc_mpsc_t *q) {
  return q->tail == &q->stub &&
         atomic_load_explicit(&q->stub.next, memory_order_acquire) == NULL &&
         atomic_load_explicit(&q->head, memory_order_acquire) == &q->stub;
}

#endif
