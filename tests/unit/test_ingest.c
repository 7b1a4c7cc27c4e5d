/* test_ingest.c: content negotiation (Content-Type -> protocol version, Content-Encoding)
 * as the remote-write specs and Prometheus' receiver define it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "ingest.h"

static void test_content_type(void **st) {
  (void)st;
  static const struct { const char *ct; int ok, version; } t[] = {
      {NULL, 1, 1},
      {"application/x-protobuf", 1, 1},
      {"Application/X-Protobuf", 1, 1},
      {"application/x-protobuf;proto=prometheus.WriteRequest", 1, 1},
      {"application/x-protobuf;proto=io.prometheus.write.v2.Request", 1, 2},
      {"application/x-protobuf; proto=io.prometheus.write.v2.Request", 1, 2},
      {" application/x-protobuf ; proto = \"io.prometheus.write.v2.Request\" ", 1, 2},
      {"application/x-protobuf;charset=binary", 1, 1},
      {"application/x-protobuf;proto=io.prometheus.write.v3.Request", 0, 0},
      {"application/json", 0, 0},
      {"text/plain", 0, 0},
      {"", 0, 0},
      {"application/x-protobufx", 0, 0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    int v = 0;
    char why[200] = "";
    int rc = rc_ingest_content_type(t[i].ct, t[i].ct ? strlen(t[i].ct) : 0, &v, why, sizeof(why));
    if ((rc == 0) != t[i].ok || (t[i].ok && v != t[i].version) || (!t[i].ok && why[0] == '\0'))
      fail_msg("case %zu '%s': rc=%d v=%d", i, t[i].ct ? t[i].ct : "(null)", rc, v);
  }
}

static void test_content_encoding(void **st) {
  (void)st;
  char why[200];
  assert_int_equal(rc_ingest_content_encoding(NULL, 0, why, sizeof(why)), 0);
  assert_int_equal(rc_ingest_content_encoding("snappy", 6, why, sizeof(why)), 0);
  assert_int_equal(rc_ingest_content_encoding(" Snappy ", 8, why, sizeof(why)), 0);
  assert_int_equal(rc_ingest_content_encoding("gzip", 4, why, sizeof(why)), RC_ENOTSUP);
  assert_non_null(strstr(why, "only snappy"));
  assert_int_equal(rc_ingest_content_encoding("snappy, gzip", 12, why, sizeof(why)), RC_ENOTSUP);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_content_type),
      cmocka_unit_test(test_content_encoding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
