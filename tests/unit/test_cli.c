/* test_cli.c: durations, sizes, and the command line (defaults, both flag forms, every kind
 * of bad input with its message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"

static void test_durations(void **st) {
  (void)st;
  static const struct { const char *s; int ok; uint64_t ms; } t[] = {
      {"0", 1, 0}, {"500ms", 1, 500}, {"10s", 1, 10000}, {"1m30s", 1, 90000},
      {"2h", 1, 7200000}, {"1d", 1, 86400000}, {"1h30m15s250ms", 1, 5415250},
      {"", 0, 0}, {"10", 0, 0}, {"s", 0, 0}, {"1x", 0, 0}, {"30s1m", 0, 0}, {"1s1s", 0, 0},
      {"-1s", 0, 0}, {"99999999999999999999s", 0, 0}, {"1.5s", 0, 0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    uint64_t v = 12345;
    int rc = rc_parse_duration_ms(t[i].s, &v);
    if ((rc == 0) != t[i].ok || (t[i].ok && v != t[i].ms)) fail_msg("duration '%s'", t[i].s);
  }
}

static void test_sizes(void **st) {
  (void)st;
  static const struct { const char *s; int ok; uint64_t v; } t[] = {
      {"4096", 1, 4096}, {"32MiB", 1, 32u << 20}, {"1KB", 1, 1000}, {"2GiB", 1, 2ull << 30},
      {"10B", 1, 10}, {"", 0, 0}, {"MiB", 0, 0}, {"1 MiB", 0, 0}, {"1mib", 0, 0},
      {"-5", 0, 0}, {"99999999999999999999GiB", 0, 0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    uint64_t v = 0;
    int rc = rc_parse_size(t[i].s, &v);
    if ((rc == 0) != t[i].ok || (t[i].ok && v != t[i].v)) fail_msg("size '%s'", t[i].s);
  }
}

static int parse(rc_options_t *o, rc_err_t *e, int n, ...) {
  char *argv[16] = {"ripcord"};
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) argv[i + 1] = va_arg(ap, char *);
  va_end(ap);
  memset(e, 0, sizeof(*e));
  return rc_cli_parse(n + 1, argv, o, e);
}

static void test_flags(void **st) {
  (void)st;
  rc_options_t o;
  rc_err_t e;
  assert_int_equal(parse(&o, &e, 1, "serve"), 0);
  assert_int_equal(o.cmd, RC_CMD_SERVE);
  assert_string_equal(o.listen_address, "127.0.0.1:9095");
  assert_string_equal(o.storage_path, "./data");
  assert_int_equal(o.http.max_body_bytes, 32u << 20);
  assert_int_equal(o.ingest.overload_status, 503);
  assert_int_equal(o.store.max_memory, 1u << 30); /* 1 GiB by default (cli.c says why) */
  assert_int_equal(parse(&o, &e, 2, "serve", "--storage.max-memory=512MiB"), 0);
  assert_int_equal(o.store.max_memory, 512u << 20);
  assert_int_equal(parse(&o, &e, 2, "serve", "--storage.max-memory=0"), 0);
  assert_int_equal(o.store.max_memory, 0); /* unbounded */

  assert_int_equal(parse(&o, &e, 5, "serve", "--web.listen-address=127.0.0.1:0",
                         "--web.read-header-timeout", "2s", "--web.max-body-size=1MiB"), 0);
  assert_string_equal(o.listen_address, "127.0.0.1:0");
  assert_int_equal(o.http.header_timeout_ms, 2000);
  assert_int_equal(o.http.max_body_bytes, 1u << 20);
  assert_int_equal(o.ingest.limits.reference_decoder, 0);
  assert_int_equal(parse(&o, &e, 2, "serve", "--ingest.decoder=protobuf-c"), 0);
  assert_int_equal(o.ingest.limits.reference_decoder, 1);
  assert_int_equal(parse(&o, &e, 1, "--version"), 0);
  assert_int_equal(o.cmd, RC_CMD_VERSION);
  assert_int_equal(parse(&o, &e, 1, "-h"), 0);
  assert_int_equal(o.cmd, RC_CMD_HELP);
}

static void test_bad_flags(void **st) {
  (void)st;
  static const struct { const char *a, *b; const char *msg; } t[] = {
      {"serve", "--nope", "unknown flag \"--nope\""},
      {"serve", "-x", "unknown flag"},
      {"serve", "--web.max-connections=0", "out of range"},
      {"serve", "--web.max-connections=ten", "not a whole number"},
      {"serve", "--web.read-timeout=soon", "not a duration"},
      {"serve", "--web.max-body-size=big", "not a size"},
      {"serve", "--storage.max-memory=2TB", "not a size"},
      {"serve", "--storage.max-memory=-1", "not a size"},
      {"serve", "--log.level=loud", "not one of"},
      {"serve", "--ingest.overload-status=500", "must be 503 or 429"},
      {"serve", "--ingest.decoder=fast", "must be wire or protobuf-c"},
      {"serve", "--web.listen-address=nohost", "host:port"},
      {"serve", "--web.listen-address=1.2.3.4:99999", "port must be"},
      {"serve", "--web.listen-address=example.com:80", "not an IP address"},
      {"fly", NULL, "unknown command"},
      {"serve", "--config.file", "needs a value"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    rc_options_t o;
    rc_err_t e;
    int rc = t[i].b ? parse(&o, &e, 2, t[i].a, t[i].b) : parse(&o, &e, 1, t[i].a);
    if (rc != RC_EINVAL || strstr(e.msg, t[i].msg) == NULL)
      fail_msg("case %zu: rc=%d msg='%s'", i, rc, e.msg);
  }
  rc_options_t o;
  rc_err_t e;
  assert_int_equal(parse(&o, &e, 0), RC_EINVAL);
  assert_non_null(strstr(e.msg, "no command"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_flags),
      cmocka_unit_test(test_bad_flags),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
