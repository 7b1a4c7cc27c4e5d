/* arena.h: a bump allocator for one request's decoded data.
 *
 * Why: protobuf-c allocates once per message and per string; for a 500-sample request that is
 * thousands of malloc calls. An arena turns them into a few chunk allocations, and freeing the
 * whole request is one walk over its chunks. The arena also enforces a byte limit, which bounds
 * what a hostile body can make us allocate (protobuf structs are several times larger than
 * their wire form).
 *
 * Ownership: the arena owns every block it hands out; blocks are never freed one by one.
 * Not thread-safe: one owner at a time (ownership may move between threads with the batch).
 */
#ifndef RC_ARENA_H
#define RC_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct rc_arena_chunk rc_arena_chunk_t;

typedef struct rc_arena {
  rc_arena_chunk_t *head;  /* current chunk; older ones linked behind it */
  size_t next_size;        /* size of the next chunk to allocate */
  size_t allocated;        /* bytes obtained from malloc, all chunks */
  size_t limit;            /* allocation fails once `allocated` would pass this */
  int exhausted;           /* set when an allocation failed for the limit or malloc */
  ProtobufCAllocator pb;   /* protobuf-c view of this arena (see rc_arena_pb) */
} rc_arena_t;

/* first: size of the first chunk (it is allocated lazily); limit: cap on total bytes. */
void rc_arena_init(rc_arena_t *a, size_t first, size_t limit);
/* Returns 16-byte aligned memory, or NULL when the limit would be passed or malloc fails. */
void *rc_arena_alloc(rc_arena_t *a, size_t n);
/* Frees every chunk. The arena may be used again afterwards. */
void rc_arena_free(rc_arena_t *a);
/* An allocator for protobuf_c_message_unpack(); its free() is a no-op. Borrowed from a. */
ProtobufCAllocator *rc_arena_pb(rc_arena_t *a);

#endif
