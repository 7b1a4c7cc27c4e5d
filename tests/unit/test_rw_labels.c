/* test_rw_labels.c: UTF-8 validation table, legacy charsets, and label-set normalisation
 * (sorting, empty values, duplicates, __name__, limits). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rw_labels.h"

static void test_utf8_table(void **st) {
  (void)st;
  static const struct { const char *s; size_t n; int ok; } t[] = {
      {"", 0, 1},
      {"plain ascii long enough for the fast path", 41, 1},
      {"caf\xc3\xa9", 5, 1},
      {"\xe2\x82\xac", 3, 1},             /* euro sign */
      {"\xf0\x9f\x98\x80", 4, 1},         /* emoji */
      {"\xf4\x8f\xbf\xbf", 4, 1},         /* U+10FFFF */
      {"a\0b", 3, 1},                     /* NUL is valid UTF-8 */
      {"\xff", 1, 0},
      {"\xc0\xaf", 2, 0},                 /* overlong '/' */
      {"\xe0\x80\xaf", 3, 0},             /* overlong */
      {"\xed\xa0\x80", 3, 0},             /* surrogate */
      {"\xf4\x90\x80\x80", 4, 0},         /* > U+10FFFF */
      {"\xc3", 1, 0},                     /* truncated */
      {"abcdefgh\xe2\x82", 10, 0},        /* truncated after the fast path */
      {"\x80", 1, 0},                     /* lone continuation */
      {"\xf8\x88\x80\x80\x80", 5, 0},     /* 5-byte form */
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (rc_utf8_valid(t[i].s, t[i].n) != t[i].ok) fail_msg("utf8 case %zu", i);
}

static void test_legacy(void **st) {
  (void)st;
  assert_true(rc_legacy_metric_name("http:requests_total", 19));
  assert_false(rc_legacy_metric_name("1abc", 4));
  assert_false(rc_legacy_metric_name("a-b", 3));
  assert_true(rc_legacy_label_name("_a1", 3));
  assert_false(rc_legacy_label_name("a:b", 3));
  assert_false(rc_legacy_label_name("", 0));
}

#define L(n, v) {n, v, sizeof(n) - 1, sizeof(v) - 1}

static void test_normalize_sorts_and_drops_empty(void **st) {
  (void)st;
  rc_label_t l[] = {L("job", "api"), L("a", ""), L("__name__", "up"), L("code", "200")};
  uint32_t n = 4, midx = 99;
  int bad;
  assert_int_equal(rc_labels_normalize(l, &n, NULL, &midx, &bad), RC_LP_OK);
  assert_int_equal(n, 3);
  assert_int_equal(midx, 0);
  assert_memory_equal(l[0].name, "__name__", 8);
  assert_memory_equal(l[1].name, "code", 4);
  assert_memory_equal(l[2].name, "job", 3);
}

static void test_normalize_prefix_order(void **st) {
  /* Go compares strings bytewise with the shorter string first on a common prefix. */
  (void)st;
  rc_label_t l[] = {L("__name__", "x"), L("ab", "1"), L("a", "2")};
  uint32_t n = 3, midx;
  int bad;
  assert_int_equal(rc_labels_normalize(l, &n, NULL, &midx, &bad), RC_LP_OK);
  assert_memory_equal(l[1].name, "a", 1);
  assert_int_equal(l[1].name_len, 1);
}

static void test_normalize_problems(void **st) {
  (void)st;
  rc_label_limits_t lim = {.max_labels = 3, .max_label_bytes = 30};
  int bad;
  uint32_t midx, n;
  {
    rc_label_t l[] = {L("__name__", "x"), L("job", "a"), L("job", "b")};
    n = 3;
    assert_int_equal(rc_labels_normalize(l, &n, &lim, &midx, &bad), RC_LP_DUPLICATE);
    assert_int_equal(bad, 2);
  }
  {
    rc_label_t l[] = {L("job", "a")};
    n = 1;
    assert_int_equal(rc_labels_normalize(l, &n, &lim, &midx, &bad), RC_LP_NO_METRIC_NAME);
  }
  {
    rc_label_t l[] = {L("__name__", "x"), L("a", "1"), L("b", "2"), L("c", "3")};
    n = 4;
    assert_int_equal(rc_labels_normalize(l, &n, &lim, &midx, &bad), RC_LP_TOO_MANY);
  }
  {
    rc_label_t l[] = {L("__name__", "x"), L("a", "0123456789012345678901234567890")};
    n = 2;
    assert_int_equal(rc_labels_normalize(l, &n, &lim, &midx, &bad), RC_LP_TOO_LONG);
  }
  {
    rc_label_t l[] = {L("__name__", "x"), L("", "v")};
    n = 2;
    assert_int_equal(rc_labels_normalize(l, &n, &lim, &midx, &bad), RC_LP_NAME_EMPTY);
    assert_int_equal(bad, 1);
  }
  assert_string_equal(rc_label_problem_name(RC_LP_DUPLICATE), "label_name_duplicate");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utf8_table),
      cmocka_unit_test(test_legacy),
      cmocka_unit_test(test_normalize_sorts_and_drops_empty),
      cmocka_unit_test(test_normalize_prefix_order),
      cmocka_unit_test(test_normalize_problems),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
