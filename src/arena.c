/* arena.c: chunked bump allocator; see arena.h. Chunks double in size up to 8 MiB so a large
 * request costs O(log n) mallocs, and a small one a single chunk. */
#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

struct rc_arena_chunk {
  rc_arena_chunk_t *next;
  size_t size; /* usable bytes in data[] */
  size_t used;
  _Alignas(16) unsigned char data[];
};

#define ARENA_ALIGN 16u
#define ARENA_MAX_CHUNK ((size_t)8 << 20)

void rc_arena_init(rc_arena_t *a, size_t first, size_t limit) {
  a->head = NULL;
  a->next_size = first < 256 ? 256 : first;
  a->allocated = 0;
  a->limit = limit;
  a->exhausted = 0;
  a->pb.alloc = NULL;
  a->pb.free = NULL;
  a->pb.allocator_data = NULL;
}

static int arena_grow(rc_arena_t *a, size_t need) {
  size_t size = a->next_size;
  if (size < need) size = need;
  /* Near the limit, shrink the chunk to what is left rather than fail while room remains. */
  size_t left = a->limit > a->allocated + sizeof(rc_arena_chunk_t)
                    ? a->limit - a->allocated - sizeof(rc_arena_chunk_t)
                    : 0;
  if (size > left && need <= left) size = left;
  size_t total = sizeof(rc_arena_chunk_t) + size;
  if (total < size || a->allocated + total > a->limit) {
    a->exhausted = 1;
    return -1;
  }
  rc_arena_chunk_t *c = malloc(total);
  if (c == NULL) {
    a->exhausted = 1;
    return -1;
  }
  c->next = a->head;
  c->size = size;
  c->used = 0;
  a->head = c;
  a->allocated += total;
  if (a->next_size < ARENA_MAX_CHUNK) a->next_size *= 2;
  return 0;
}

void *rc_arena_alloc(rc_arena_t *a, size_t n) {
  if (n > SIZE_MAX - ARENA_ALIGN) return NULL;
  n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
  if (n == 0) n = ARENA_ALIGN;
  rc_arena_chunk_t *c = a->head;
  if (c == NULL || c->size - c->used < n) {
    if (arena_grow(a, n) != 0) return NULL;
    c = a->head;
  }
  void *p = c->data + c->used;
  c->used += n;
  return p;
}

void rc_arena_free(rc_arena_t *a) {
  rc_arena_chunk_t *c = a->head;
  while (c != NULL) {
    rc_arena_chunk_t *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
  a->allocated = 0;
}

static void *pb_alloc(void *data, size_t size) { return rc_arena_alloc(data, size); }
static void pb_free(void *data, void *p) {
  (void)data;
  (void)p; /* freed with the arena */
}

ProtobufCAllocator *rc_arena_pb(rc_arena_t *a) {
  a->pb.alloc = pb_alloc;
  a->pb.free = pb_free;
  a->pb.allocator_data = a;
  return &a->pb;
}
