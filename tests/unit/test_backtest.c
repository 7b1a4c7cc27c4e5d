/* test_backtest.c: `ripcord backtest`'s time flags — good and bad tables. The command itself
 * runs against a real Prometheus in tests/integration/test_backtest.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "backtest.h"

#define NOW INT64_C(1764234000000) /* 2025-11-27T09:00:00Z */

static void test_times_good(void **st) {
  (void)st;
  static const struct {
    const char *in;
    int64_t want;
  } cases[] = {
      {"now", NOW},
      {"now-7d", NOW - 7 * 86400000LL},
      {"now-1h30m", NOW - 5400000LL},
      {"1764234000", NOW},
      {"1764234000000", NOW},
      {"1764234000123", NOW + 123},
      {"2025-11-27T09:00:00Z", NOW},
      {"2025-11-27T10:00:00+01:00", NOW},
      {"2025-11-27T09:00:00.250Z", NOW + 250},
      {"0", 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int64_t got = -1;
    rc_err_t err = {0};
    if (rc_backtest_parse_time(cases[i].in, NOW, &got, &err) != 0 || got != cases[i].want)
      fail_msg("case %zu \"%s\": got %lld (%s), want %lld", i, cases[i].in, (long long)got,
               err.msg, (long long)cases[i].want);
  }
}

static void test_times_bad(void **st) {
  (void)st;
  static const char *const cases[] = {
      "", "today", "now+1h", "now-", "now-7x", "now-100000d", "2025-11-27T09:00:00",
      "2025-11-31T09:00:00Z", "2025-13-01T00:00:00Z", "12345678901234567", "-5", "1.5",
      "2025-11-27 09:00:00Z", "now-1h ",
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int64_t got = 0;
    rc_err_t err = {0};
    if (rc_backtest_parse_time(cases[i], NOW, &got, &err) != RC_EINVAL ||
        strstr(err.msg, "a time must be RFC 3339 with a zone") == NULL)
      fail_msg("case %zu \"%s\": accepted (%lld) or unclear: \"%s\"", i, cases[i],
               (long long)got, err.msg);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_times_good),
      cmocka_unit_test(test_times_bad),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
