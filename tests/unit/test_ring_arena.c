/* test_ring_arena.c: the SPSC ring (bounds, order, and a two-thread run checking that every
 * item arrives once and in order) and the arena (alignment, growth, limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "arena.h"
#include "rc.h"
#include "ring.h"

static void test_ring_bounds(void **st) {
  (void)st;
  rc_ring_t r;
  assert_int_equal(rc_ring_init(&r, 0), RC_EINVAL);
  assert_int_equal(rc_ring_init(&r, 3), 0);
  assert_int_equal(rc_ring_capacity(&r), 4);
  assert_null(rc_ring_pop(&r));
  for (uintptr_t i = 1; i <= 4; i++) assert_int_equal(rc_ring_push(&r, (void *)i), 0);
  assert_int_equal(rc_ring_push(&r, (void *)5), RC_EFULL);
  assert_int_equal(rc_ring_size(&r), 4);
  for (uintptr_t i = 1; i <= 4; i++) assert_ptr_equal(rc_ring_pop(&r), (void *)i);
  assert_null(rc_ring_pop(&r));
  rc_ring_close(&r);
}

#define N_ITEMS 2000000u
static rc_ring_t g_ring;

static void producer(void *arg) {
  (void)arg;
  for (uintptr_t i = 1; i <= N_ITEMS;) {
    if (rc_ring_push(&g_ring, (void *)i) == 0) i++;
  }
}

static void test_ring_threads(void **st) {
  (void)st;
  assert_int_equal(rc_ring_init(&g_ring, 64), 0);
  uv_thread_t t;
  assert_int_equal(uv_thread_create(&t, producer, NULL), 0);
  uintptr_t expect = 1;
  while (expect <= N_ITEMS) {
    void *p = rc_ring_pop(&g_ring);
    if (p == NULL) continue;
    if ((uintptr_t)p != expect) fail_msg("got %zu, want %zu", (size_t)(uintptr_t)p, (size_t)expect);
    expect++;
  }
  uv_thread_join(&t);
  assert_null(rc_ring_pop(&g_ring));
  rc_ring_close(&g_ring);
}

static void test_arena(void **st) {
  (void)st;
  rc_arena_t a;
  rc_arena_init(&a, 256, 1 << 20);
  for (int i = 1; i < 2000; i++) {
    unsigned char *p = rc_arena_alloc(&a, (size_t)(i % 37) + 1);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xab, (size_t)(i % 37) + 1);
  }
  assert_false(a.exhausted);
  assert_null(rc_arena_alloc(&a, 2 << 20)); /* over the limit */
  assert_true(a.exhausted);
  assert_null(rc_arena_alloc(&a, SIZE_MAX));
  rc_arena_free(&a);
  assert_int_equal(a.allocated, 0);
  /* protobuf-c view */
  ProtobufCAllocator *pb = rc_arena_pb(&a);
  void *q = pb->alloc(pb->allocator_data, 100);
  assert_non_null(q);
  pb->free(pb->allocator_data, q);
  rc_arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ring_bounds),
      cmocka_unit_test(test_ring_threads),
      cmocka_unit_test(test_arena),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
