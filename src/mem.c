/* mem.c: the byte accountant; see mem.h.
 *
 * malloc_usable_size() is glibc's (musl has it too; meson checks for it): the usable size of
 * a block is fixed for its lifetime, so reading it at allocation and again at free gives the
 * same number, and the count returns to exactly zero when every block is freed. Under
 * AddressSanitizer it reports the requested size, consistently, so the same holds there.
 */
#include "mem.h"

#include <malloc.h>
#include <stdlib.h>

static void count(rc_mem_t *m, int64_t bytes, int64_t blocks) {
  atomic_fetch_add_explicit(&m->bytes, bytes, memory_order_relaxed);
  if (blocks != 0) atomic_fetch_add_explicit(&m->blocks, blocks, memory_order_relaxed);
}

void rc_mem_init(rc_mem_t *m, int64_t limit) {
  atomic_init(&m->bytes, 0);
  atomic_init(&m->blocks, 0);
  rc_mem_set_limit(m, limit);
}

void rc_mem_set_limit(rc_mem_t *m, int64_t limit) {
  m->limit = limit > 0 ? limit : 0;
  /* The last sixteenth is kept for the head chunks of series already held (store.h): with
   * the default retention and chunk span a series holds about 30 chunks, so finishing every
   * head chunk needs about a thirtieth of what the series hold. */
  m->high = m->limit - m->limit / 16;
}

void *rc_mem_malloc(rc_mem_t *m, size_t n) {
  void *p = malloc(n);
  if (p != NULL && m != NULL) count(m, (int64_t)malloc_usable_size(p), 1);
  return p;
}

void *rc_mem_calloc(rc_mem_t *m, size_t n, size_t size) {
  void *p = calloc(n, size);
  if (p != NULL && m != NULL) count(m, (int64_t)malloc_usable_size(p), 1);
  return p;
}

void *rc_mem_realloc(rc_mem_t *m, void *p, size_t n) {
  if (m == NULL) return realloc(p, n);
  /* Read before: a block realloc moved is gone afterwards. */
  int64_t old = p != NULL ? (int64_t)malloc_usable_size(p) : 0;
  void *q = realloc(p, n);
  if (q != NULL) count(m, (int64_t)malloc_usable_size(q) - old, p == NULL ? 1 : 0);
  return q;
}

void rc_mem_free(rc_mem_t *m, void *p) {
  if (p == NULL) return;
  if (m != NULL) count(m, -(int64_t)malloc_usable_size(p), -1);
  free(p);
}

void rc_mem_account(rc_mem_t *m, int64_t delta) {
  if (m != NULL && delta != 0) count(m, delta, 0);
}
