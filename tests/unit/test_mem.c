/* test_mem.c: the byte accountant (mem.h) — counts equal to what the allocator reports for
 * every block, back to exactly zero when everything is freed, mapped memory counted apart from
 * blocks, and the levels against a limit. */
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem.h"

/*----- the accountant ----------------------------------------------------------------------*/

static void test_accountant(void **st) {
  (void)st;
  rc_mem_t m;
  rc_mem_init(&m, 0);
  void *a = rc_mem_malloc(&m, 100), *b = rc_mem_calloc(&m, 10, 100);
  assert_non_null(a);
  assert_non_null(b);
  int64_t want = (int64_t)(malloc_usable_size(a) + malloc_usable_size(b));
  assert_int_equal(rc_mem_bytes(&m), want);
  assert_int_equal(rc_mem_blocks(&m), 2);
  assert_true(rc_mem_bytes(&m) >= 1100);
  /* realloc: grown, shrunk, from NULL; the count follows the block realloc returns. */
  a = rc_mem_realloc(&m, a, 5000);
  assert_non_null(a);
  assert_int_equal(rc_mem_bytes(&m), (int64_t)(malloc_usable_size(a) + malloc_usable_size(b)));
  a = rc_mem_realloc(&m, a, 10);
  assert_int_equal(rc_mem_bytes(&m), (int64_t)(malloc_usable_size(a) + malloc_usable_size(b)));
  void *c = rc_mem_realloc(&m, NULL, 64);
  assert_int_equal(rc_mem_blocks(&m), 3);
  rc_mem_free(&m, a);
  rc_mem_free(&m, b);
  rc_mem_free(&m, c);
  rc_mem_free(&m, NULL);
  assert_int_equal(rc_mem_bytes(&m), 0);
  assert_int_equal(rc_mem_blocks(&m), 0);
  /* Mapped memory counts in bytes, not blocks. */
  rc_mem_account(&m, 1 << 20);
  assert_int_equal(rc_mem_bytes(&m), 1 << 20);
  assert_int_equal(rc_mem_blocks(&m), 0);
  rc_mem_account(&m, -(1 << 20));
  assert_int_equal(rc_mem_bytes(&m), 0);
  /* No accountant: plain malloc/free, nothing counted, nothing bounded. */
  void *p = rc_mem_realloc(NULL, rc_mem_malloc(NULL, 8), 800);
  assert_non_null(p);
  rc_mem_free(NULL, p);
  assert_int_equal(rc_mem_level(NULL), RC_MEM_OK);
}

static void test_levels(void **st) {
  (void)st;
  rc_mem_t m;
  rc_mem_init(&m, 1600); /* high-water mark 1500 */
  assert_int_equal(m.high, 1500);
  assert_int_equal(rc_mem_level(&m), RC_MEM_OK);
  rc_mem_account(&m, 1499);
  assert_int_equal(rc_mem_level(&m), RC_MEM_OK);
  rc_mem_account(&m, 1);
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);
  rc_mem_account(&m, 99);
  assert_int_equal(rc_mem_level(&m), RC_MEM_HIGH);
  rc_mem_account(&m, 1);
  assert_int_equal(rc_mem_level(&m), RC_MEM_FULL);
  rc_mem_set_limit(&m, 0); /* unbounded: never refuses */
  assert_int_equal(rc_mem_level(&m), RC_MEM_OK);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accountant),
      cmocka_unit_test(test_levels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
