/* test_rw_decode.c: rc_rw_decode() on bodies built by a real protobuf packer (rwbuild.c) and
 * on hand-made broken bytes: success paths for v1 and v2, every request-level failure with its
 * status class and reason, per-series drops that keep the rest of the request, histogram
 * validation, and every truncation of a valid body failing cleanly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rw_decode.h"
#include "rwbuild.h"
#include "selindex.h"

/* Every test runs twice: with the zero-copy wire reader and with the protobuf-c reference. */
static int g_reference;

static rc_rw_limits_t limits(void) {
  return (rc_rw_limits_t){.max_decoded_bytes = 64u << 20,
                          .max_arena_bytes = 256u << 20,
                          .labels = {.max_labels = 64, .max_label_bytes = 4096},
                          .reference_decoder = g_reference};
}

static int use_wire(void **st) {
  (void)st;
  g_reference = 0;
  return 0;
}
static int use_pbc(void **st) {
  (void)st;
  g_reference = 1;
  return 0;
}

/* Decodes with default limits; returns rc; *out owned by caller. */
static int dec(int version, const char *body, size_t len, rc_batch_t **out, rc_rw_result_t *res) {
  rc_rw_decoder_t d;
  rc_rw_limits_t l = limits();
  rc_rw_decoder_init(&d, &l);
  int rc = rc_rw_decode(&d, version, body, len, out, res);
  rc_rw_decoder_close(&d);
  return rc;
}

static int label_is(const rc_label_t *l, const char *n, const char *v) {
  return l->name_len == strlen(n) && memcmp(l->name, n, l->name_len) == 0 &&
         l->value_len == strlen(v) && memcmp(l->value, v, l->value_len) == 0;
}

static void test_v1_ok(void **st) {
  (void)st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=http_requests_total,job=api,code=200");
  rwb_sample(b, 1, 1000);
  rwb_sample(b, 2, 2000);
  rwb_series(b, "job=api,__name__=up"); /* unsorted: must be sorted, not refused */
  rwb_sample(b, 1, 1000);
  rwb_exemplar(b, 0.5, 1000);
  rwb_metadata(b, "up");
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_batch_t *batch;
  rc_rw_result_t r;
  assert_int_equal(dec(1, body, len, &batch, &r), 0);
  assert_int_equal(r.invalid_series, 0);
  assert_int_equal(batch->nseries, 2);
  assert_int_equal(batch->nsamples, 3);
  assert_int_equal(batch->nexemplars, 1);
  assert_int_equal(batch->nmetadata, 1);
  assert_int_equal(batch->version, 1);
  const rc_series_t *s0 = &batch->series[0];
  assert_int_equal(s0->nlabels, 3);
  assert_true(label_is(&s0->labels[0], "__name__", "http_requests_total"));
  assert_true(label_is(&s0->labels[1], "code", "200"));
  assert_true(label_is(&s0->labels[2], "job", "api"));
  assert_int_equal(s0->metric_len, strlen("http_requests_total"));
  assert_memory_equal(s0->metric, "http_requests_total", s0->metric_len);
  assert_true(s0->samples[1].value == 2.0 && s0->samples[1].ts_ms == 2000);
  const rc_series_t *s1 = &batch->series[1];
  assert_true(label_is(&s1->labels[0], "__name__", "up"));
  assert_true(label_is(&s1->labels[1], "job", "api"));
  rc_batch_free(batch);
  free(body);
}

static void test_v2_ok(void **st) {
  (void)st;
  rwb_t *b = rwb_new(2);
  rwb_series(b, "__name__=latency_seconds,service=checkout");
  rwb_sample(b, 0.25, 5000);
  rwb_series(b, "__name__=latency_native,service=checkout");
  int64_t deltas[] = {2, 1, -1};
  rwb_int_histogram(b, 5000, 9, 3.5, 3, 2, deltas, 3, 3); /* buckets 2,3,2 + zero 2 = 9 */
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_batch_t *batch;
  rc_rw_result_t r;
  assert_int_equal(dec(2, body, len, &batch, &r), 0);
  assert_int_equal(r.invalid_series, 0);
  assert_int_equal(batch->nseries, 2);
  assert_int_equal(batch->nsamples, 1);
  assert_int_equal(batch->nhistograms, 1);
  const rc_histogram_t *h = &batch->series[1].histograms[0];
  assert_int_equal(h->schema, 3);
  assert_true(h->count == 9 && h->zero_count == 2 && !h->is_float);
  assert_int_equal(h->n_pos, 3);
  rc_batch_free(batch);
  free(body);
}

static void test_v1_body_as_v2_is_empty(void **st) {
  /* The protos reserve each other's field numbers, so a mix-up decodes to nothing. */
  (void)st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up");
  rwb_sample(b, 1, 1);
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_batch_t *batch;
  rc_rw_result_t r;
  assert_int_equal(dec(2, body, len, &batch, &r), 0);
  assert_int_equal(batch->nseries, 0);
  rc_batch_free(batch);
  free(body);
}

/* A table of bodies with one bad series next to a good one: the bad one is dropped with the
 * named problem, the good one kept. */
typedef struct {
  const char *what;
  int version;
  void (*build)(rwb_t *b);
  int problem;
  const char *msg;
} series_case_t;

static void b_dup(rwb_t *b) { rwb_series(b, "__name__=x,job=a,job=b"); rwb_sample(b, 1, 1); }
static void b_empty_name(rwb_t *b) {
  rwb_series(b, "__name__=x");
  rwb_label(b, "", 0, "v", 1);
  rwb_sample(b, 1, 1);
}
static void b_bad_utf8_value(rwb_t *b) {
  rwb_series(b, "__name__=x");
  rwb_label(b, "job", 3, "a\xff", 2);
  rwb_sample(b, 1, 1);
}
static void b_bad_utf8_name(rwb_t *b) {
  rwb_series(b, "__name__=x");
  rwb_label(b, "j\xc0\xafob", 5, "a", 1); /* overlong encoding of '/' */
  rwb_sample(b, 1, 1);
}
static void b_surrogate(rwb_t *b) {
  rwb_series(b, "__name__=x");
  rwb_label(b, "job", 3, "\xed\xa0\x80", 3);
  rwb_sample(b, 1, 1);
}
static void b_no_name(rwb_t *b) { rwb_series(b, "job=a"); rwb_sample(b, 1, 1); }
static void b_only_empty_name(rwb_t *b) { rwb_series(b, "__name__=,job=a"); rwb_sample(b, 1, 1); }
static void b_hist_mismatch(rwb_t *b) {
  int64_t d[] = {1, 1};
  rwb_series(b, "__name__=h");
  rwb_int_histogram(b, 1, 10, 1, 0, 0, d, 2, 3); /* span says 3 buckets, 2 deltas sent */
}
static void b_hist_negative(rwb_t *b) {
  int64_t d[] = {1, -2};
  rwb_series(b, "__name__=h");
  rwb_int_histogram(b, 1, 10, 1, 0, 0, d, 2, 2);
}
static void b_hist_schema(rwb_t *b) {
  int64_t d[] = {1};
  rwb_series(b, "__name__=h");
  rwb_int_histogram(b, 1, 1, 1, 9, 0, d, 1, 1);
}
static void b_hist_count(rwb_t *b) {
  int64_t d[] = {5};
  rwb_series(b, "__name__=h");
  rwb_int_histogram(b, 1, 3, 1, 0, 0, d, 1, 1); /* count 3 < 5 observations in buckets */
}
static void b_v2_ref_range(rwb_t *b) {
  rwb_series(b, "__name__=x");
  rwb_v2_raw_ref(b, 1);
  rwb_v2_raw_ref(b, 999);
  rwb_sample(b, 1, 1);
}
static void b_v2_ref_odd(rwb_t *b) {
  rwb_series(b, "__name__=x");
  rwb_v2_raw_ref(b, 1);
  rwb_sample(b, 1, 1);
}
static void b_v2_mixed(rwb_t *b) {
  int64_t d[] = {1};
  rwb_series(b, "__name__=x");
  rwb_sample(b, 1, 1);
  rwb_int_histogram(b, 1, 1, 1, 0, 0, d, 1, 1);
}
static void b_v2_empty(rwb_t *b) { rwb_series(b, "__name__=x"); }
static void b_v2_meta_ref(rwb_t *b) {
  rwb_series(b, "__name__=x");
  rwb_sample(b, 1, 1);
  rwb_v2_metadata(b, 1, 999);
}

static const series_case_t series_cases[] = {
    {"duplicate label", 1, b_dup, RC_LP_DUPLICATE, "duplicate label name \"job\""},
    {"duplicate label v2", 2, b_dup, RC_LP_DUPLICATE, "duplicate label name"},
    {"empty label name", 1, b_empty_name, RC_LP_NAME_EMPTY, "empty label name"},
    {"bad utf8 value", 1, b_bad_utf8_value, RC_LP_VALUE_UTF8, "label value is not valid UTF-8"},
    {"bad utf8 name", 1, b_bad_utf8_name, RC_LP_NAME_UTF8, "label name is not valid UTF-8"},
    {"surrogate value", 2, b_surrogate, RC_LP_VALUE_UTF8, "not valid UTF-8"},
    {"no __name__", 1, b_no_name, RC_LP_NO_METRIC_NAME, "missing metric name"},
    {"empty __name__", 1, b_only_empty_name, RC_LP_NO_METRIC_NAME, "missing metric name"},
    {"hist span mismatch", 1, b_hist_mismatch, RC_RWS_HISTOGRAM, "spans describe 3/0 buckets"},
    {"hist negative bucket", 2, b_hist_negative, RC_RWS_HISTOGRAM, "below zero"},
    {"hist schema", 1, b_hist_schema, RC_RWS_HISTOGRAM, "schema 9 out of range"},
    {"hist count", 1, b_hist_count, RC_RWS_HISTOGRAM, "count 3 is less than"},
    {"v2 ref out of range", 2, b_v2_ref_range, RC_RWS_LABEL_REFS, "outside the"},
    {"v2 odd refs", 2, b_v2_ref_odd, RC_RWS_LABEL_REFS, "odd length"},
    {"v2 samples+histograms", 2, b_v2_mixed, RC_RWS_MIXED, "both samples and histograms"},
    {"v2 neither", 2, b_v2_empty, RC_RWS_EMPTY, "must carry samples or histograms"},
    {"v2 metadata ref", 2, b_v2_meta_ref, RC_RWS_METADATA_REFS, "help_ref or unit_ref"},
};

static void test_series_table(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof(series_cases) / sizeof(series_cases[0]); i++) {
    const series_case_t *c = &series_cases[i];
    rwb_t *b = rwb_new(c->version);
    rwb_series(b, "__name__=good,job=a");
    rwb_sample(b, 7, 100);
    rwb_sample(b, 8, 200);
    c->build(b);
    size_t len;
    char *body = rwb_finish(b, &len);
    rc_batch_t *batch = NULL;
    rc_rw_result_t r;
    int rc = dec(c->version, body, len, &batch, &r);
    if (rc != 0 || r.invalid_series != 1 || r.invalid_by[c->problem] != 1 ||
        strstr(r.msg, c->msg) == NULL || batch->nseries != 1 || batch->nsamples != 2)
      fail_msg("case '%s': rc=%d invalid=%u by=%u msg='%s'", c->what, rc, r.invalid_series,
               r.invalid_by[c->problem], r.msg);
    rc_batch_free(batch);
    free(body);
  }
}

/* Request-level failures built from raw bytes. */
typedef struct {
  const char *what;
  int version;
  const char *bytes;
  size_t len;
  int snappy_wrap; /* compress bytes with snappy first */
  int rc;
  rc_rw_reason_t reason;
  const char *msg;
} req_case_t;

static const req_case_t req_cases[] = {
    {"empty body", 1, "", 0, 0, RC_EPARSE, RC_RWR_EMPTY_BODY, "empty request body"},
    {"framed snappy", 1, "\xff\x06\x00\x00sNaPpY\x00\x00", 12, 0, RC_EPARSE, RC_RWR_SNAPPY_FRAMED, "framed"},
    {"bad length varint", 1, "\xff\xff\xff\xff\xff\xff", 6, 0, RC_EPARSE, RC_RWR_SNAPPY, "uncompressed-length"},
    {"declared 4 GiB", 1, "\x80\x80\x80\x80\x10\x00", 6, 0, RC_ELIMIT, RC_RWR_TOO_LARGE, "over the limit"},
    {"truncated literal", 1, "\x0a\x24" "abc", 5, 0, RC_EPARSE, RC_RWR_SNAPPY, "corrupt or truncated"},
    {"bad protobuf varint", 1, "\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12, 1, RC_EPARSE, RC_RWR_PROTOBUF, "malformed protobuf"},
    {"length past end", 1, "\x0a\x10\x0a", 3, 1, RC_EPARSE, RC_RWR_PROTOBUF, "prometheus.WriteRequest"},
    {"wrong wire type", 1, "\x0d\x01\x02\x03\x04", 5, 1, RC_EPARSE, RC_RWR_PROTOBUF, "malformed protobuf"},
    {"v2 wrong wire type", 2, "\x2d\x01\x02\x03\x04", 5, 1, RC_EPARSE, RC_RWR_PROTOBUF, "io.prometheus.write.v2.Request"},
    {"v2 symbols[0] not empty", 2, "\x22\x01x\x2a\x04\x0a\x02\x01\x01", 9, 1, RC_EPARSE, RC_RWR_SYMBOLS, "start with the empty string"},
    {"v2 series without symbols", 2, "\x2a\x04\x0a\x02\x00\x00", 6, 1, RC_EPARSE, RC_RWR_SYMBOLS, "symbols"},
};

static void test_request_table(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
    const req_case_t *c = &req_cases[i];
    size_t len = c->len;
    char *body = c->snappy_wrap ? rwb_snappy(c->bytes, c->len, &len) : NULL;
    rc_batch_t *batch = (rc_batch_t *)1;
    rc_rw_result_t r;
    int rc = dec(c->version, body ? body : c->bytes, len, &batch, &r);
    if (rc != c->rc || r.reason != c->reason || batch != NULL || strstr(r.msg, c->msg) == NULL)
      fail_msg("case '%s': rc=%d reason=%s msg='%s'", c->what, rc, rc_rw_reason_name(r.reason),
               r.msg);
    free(body);
  }
}

static void test_unknown_fields_skipped(void **st) {
  (void)st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up");
  rwb_sample(b, 1, 1);
  size_t rl;
  uint8_t *raw = rwb_pack(b, &rl);
  rwb_free(b);
  /* Append field 15 (varint) and field 16 (length-delimited) at the top level. */
  uint8_t *more = malloc(rl + 7);
  memcpy(more, raw, rl);
  memcpy(more + rl, "\x78\x05\x82\x01\x02hi", 7);
  size_t len;
  char *body = rwb_snappy(more, rl + 7, &len);
  rc_batch_t *batch;
  rc_rw_result_t r;
  assert_int_equal(dec(1, body, len, &batch, &r), 0);
  assert_int_equal(batch->nsamples, 1);
  rc_batch_free(batch);
  free(body);
  free(more);
  free(raw);
}

static void test_stale_marker(void **st) {
  (void)st;
  uint64_t stale_bits = UINT64_C(0x7ff0000000000002), nan_bits = UINT64_C(0x7ff8000000000001);
  double stale, plain_nan;
  memcpy(&stale, &stale_bits, 8);
  memcpy(&plain_nan, &nan_bits, 8);
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=up");
  rwb_sample(b, stale, 1);
  rwb_series(b, "__name__=up2");
  rwb_sample(b, plain_nan, 1);
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_batch_t *batch;
  rc_rw_result_t r;
  assert_int_equal(dec(1, body, len, &batch, &r), 0);
  assert_int_equal(batch->nstale, 1);
  assert_int_equal(batch->series[0].nstale, 1);
  assert_int_equal(batch->series[1].nstale, 0);
  assert_true(rc_is_stale_nan(batch->series[0].samples[0].value));
  rc_batch_free(batch);
  free(body);
}

static void test_memory_limit(void **st) {
  (void)st;
  rwb_t *b = rwb_new(1);
  for (int i = 0; i < 200; i++) {
    rwb_series(b, "__name__=m,job=a,instance=b,service=c");
    rwb_sample(b, i, i);
  }
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_rw_decoder_t d;
  rc_rw_limits_t l = limits();
  l.max_arena_bytes = 8192;
  rc_rw_decoder_init(&d, &l);
  rc_batch_t *batch;
  rc_rw_result_t r;
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &batch, &r), RC_ELIMIT);
  assert_int_equal(r.reason, RC_RWR_MEMORY);
  assert_null(batch);
  /* The decoder stays usable after a refusal. */
  l.max_arena_bytes = 1 << 20;
  d.lim = l;
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &batch, &r), 0);
  assert_int_equal(batch->nseries, 200);
  rc_batch_free(batch);
  rc_rw_decoder_close(&d);
  free(body);
}

static void test_every_truncation(void **st) {
  (void)st;
  rwb_t *b = rwb_new(2);
  rwb_series(b, "__name__=http_requests_total,job=api,code=500");
  rwb_sample(b, 3, 1000);
  rwb_exemplar(b, 1, 1000);
  int64_t d[] = {1, 2};
  rwb_series(b, "__name__=lat,job=api");
  rwb_int_histogram(b, 1000, 3, 1, 0, 0, d, 2, 2);
  size_t rl;
  uint8_t *raw = rwb_pack(b, &rl);
  rwb_free(b);
  /* Every prefix of the protobuf, compressed validly: must decode or fail cleanly. */
  for (size_t cut = 0; cut < rl; cut++) {
    size_t len;
    char *body = rwb_snappy(raw, cut, &len);
    rc_batch_t *batch;
    rc_rw_result_t r;
    int rc = dec(2, body, len, &batch, &r);
    assert_true(rc == 0 || rc == RC_EPARSE);
    if (rc == 0) rc_batch_free(batch);
    else assert_null(batch);
    free(body);
  }
  /* Every prefix of the compressed body. */
  size_t len;
  char *full = rwb_snappy(raw, rl, &len);
  for (size_t cut = 0; cut < len; cut++) {
    rc_batch_t *batch;
    rc_rw_result_t r;
    int rc = dec(2, full, cut, &batch, &r);
    assert_int_equal(rc, RC_EPARSE);
  }
  free(full);
  free(raw);
}

static void test_legacy_names(void **st) {
  (void)st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=http.requests,job=a");
  rwb_sample(b, 1, 1);
  rwb_series(b, "__name__=ok,job.name=a");
  rwb_sample(b, 1, 1);
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_rw_decoder_t d;
  rc_rw_limits_t l = limits();
  rc_batch_t *batch;
  rc_rw_result_t r;
  rc_rw_decoder_init(&d, &l); /* UTF-8 names (Prometheus 3): both accepted */
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &batch, &r), 0);
  assert_int_equal(batch->nseries, 2);
  rc_batch_free(batch);
  d.lim.labels.legacy_names = 1;
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &batch, &r), 0);
  assert_int_equal(batch->nseries, 0);
  assert_int_equal(r.invalid_by[RC_LP_METRIC_NAME_INVALID], 1);
  assert_int_equal(r.invalid_by[RC_LP_NAME_INVALID], 1);
  rc_batch_free(batch);
  rc_rw_decoder_close(&d);
  free(body);
}

/* The 400 reason stays one bounded, printable line however many and however odd the labels
 * (regression: the description once overflowed its buffer, found by the differential fuzzer). */
static void test_reason_bounded(void **st) {
  (void)st;
  rwb_t *b = rwb_new(1);
  rwb_series(b, "__name__=x");
  for (int i = 0; i < 40; i++) {
    char name[64], value[64];
    snprintf(name, sizeof(name), "label_%02d_with_a_rather_long_name_xxxxxxxxxx", i);
    snprintf(value, sizeof(value), "v\n\"\\\x01%02d\xff", i);
    rwb_label(b, name, strlen(name), value, strlen(value));
  }
  rwb_label(b, "", 0, "x", 1);
  rwb_sample(b, 1, 1);
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_batch_t *batch;
  rc_rw_result_t r;
  assert_int_equal(dec(1, body, len, &batch, &r), 0);
  assert_int_equal(r.invalid_series, 1);
  assert_non_null(strstr(r.msg, "...}"));
  assert_true(strlen(r.msg) < sizeof(r.msg));
  for (const char *p = r.msg; *p; p++) assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
  rc_batch_free(batch);
  free(body);
}

/* One decoder, the same bodies again and again: the label-set cache's hits must give exactly
 * what the checks gave, and a bad label set must be refused every time, cached or not. Eager,
 * and with lazy_labels (hits leave the labels raw; rc_rw_series_labels unpacks them). */
static void repeated_decodes(int lazy) {
  rwb_t *b = rwb_new(1);
  for (int i = 0; i < 20; i++) {
    char spec[96];
    snprintf(spec, sizeof(spec), "__name__=m,instance=i%d,job=a", i);
    rwb_series(b, spec);
    rwb_sample(b, i, 1000 + i);
  }
  rwb_series(b, "job=a,__name__=unsorted");   /* valid, but needs sorting: never cached */
  rwb_sample(b, 1, 1);
  rwb_series(b, "__name__=dup,job=a,job=b");  /* invalid */
  rwb_sample(b, 1, 1);
  size_t len;
  char *body = rwb_finish(b, &len);
  rc_rw_decoder_t d;
  rc_rw_limits_t l = limits();
  rc_rw_decoder_init(&d, &l);
  d.lazy_labels = lazy;
  rc_batch_t *first = NULL;
  rc_rw_result_t r0;
  uint32_t raw = 0;
  assert_int_equal(rc_rw_decode(&d, 1, body, len, &first, &r0), 0);
  for (uint32_t i = 0; i < first->nseries; i++) assert_non_null(first->series[i].labels);
  for (int round = 0; round < 3; round++) {
    rc_batch_t *again;
    rc_rw_result_t r;
    assert_int_equal(rc_rw_decode(&d, 1, body, len, &again, &r), 0);
    assert_int_equal(r.invalid_series, 1);
    assert_string_equal(r.msg, r0.msg);
    assert_int_equal(again->nseries, first->nseries);
    for (uint32_t i = 0; i < again->nseries; i++) {
      const rc_series_t *x = &again->series[i], *y = &first->series[i];
      assert_int_equal(x->nlabels, y->nlabels);
      assert_int_equal(x->metric_len, y->metric_len);
      assert_memory_equal(x->metric, y->metric, x->metric_len);
      rc_label_t buf[8];
      raw += x->labels == NULL;
      const rc_label_t *xl = rc_rw_series_labels(x, buf, 8);
      assert_non_null(xl);
      if (x->labels == NULL) assert_null(rc_rw_series_labels(x, buf, x->nlabels - 1)); /* no room */
      for (uint32_t k = 0; k < x->nlabels; k++) {
        assert_int_equal(xl[k].name_len, y->labels[k].name_len);
        assert_int_equal(xl[k].value_len, y->labels[k].value_len);
        assert_memory_equal(xl[k].name, y->labels[k].name, xl[k].name_len);
        assert_memory_equal(xl[k].value, y->labels[k].value, xl[k].value_len);
      }
      rc_selindex_hash_t h = rc_series_hash(x), want = rc_selindex_hash_labels(xl, x->nlabels);
      assert_true(h.lo == want.lo && h.hi == want.hi);
    }
    rc_batch_free(again);
  }
  /* Lazy: the 20 sorted label sets come back raw (cache hits) every round; the unsorted one
   * is never remembered, so it is always parsed. Eager: never raw. */
  if (g_reference || !lazy) assert_int_equal(raw, 0);
  else assert_int_equal(raw, 3 * 20);
  rc_batch_free(first);
  rc_rw_decoder_close(&d);
  free(body);
}

/* A length prefix padded with a zero group (0x82 0x00 for 2: valid protobuf, which no sender
 * writes): the label-set cache finds a hit's metric name by the minimal prefix length, so such
 * a set must not be remembered; every decode gives the right name. The same set with a
 * minimal prefix is remembered (its second decode is raw). */
static void test_padded_name_prefix(void **st) {
  (void)st;
  static const uint8_t pad[] = {
      0x0a, 0x29,                                                   /* TimeSeries, 41 */
      0x0a, 0x0f, 0x0a, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_', /* __name__ = */
      0x12, 0x82, 0x00, 'u', 'p',                                   /* "up", padded prefix */
      0x0a, 0x08, 0x0a, 0x03, 'j', 'o', 'b', 0x12, 0x01, 'a',       /* job = "a" */
      0x12, 0x0c, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0xe8, 0x07}; /* 1.0 @ 1000 */
  uint8_t min[sizeof(pad) - 1];
  /* The same message with the minimal prefix: one byte shorter in three lengths. */
  memcpy(min, pad, 15);
  min[1] = 0x28;
  min[3] = 0x0e;
  min[15] = 0x02;
  memcpy(min + 16, pad + 17, sizeof(pad) - 17);
  const uint8_t *raw[2] = {pad, min};
  size_t rawlen[2] = {sizeof(pad), sizeof(min)};
  for (int v = 0; v < 2; v++) {
    size_t len;
    char *body = rwb_snappy(raw[v], rawlen[v], &len);
    rc_rw_decoder_t d;
    rc_rw_limits_t l = limits();
    rc_rw_decoder_init(&d, &l);
    d.lazy_labels = 1;
    for (int round = 0; round < 3; round++) {
      rc_batch_t *b;
      rc_rw_result_t r;
      assert_int_equal(rc_rw_decode(&d, 1, body, len, &b, &r), 0);
      assert_int_equal(b->nseries, 1);
      const rc_series_t *x = &b->series[0];
      assert_int_equal(x->metric_len, 2);
      assert_memory_equal(x->metric, "up", 2);
      rc_label_t buf[2];
      const rc_label_t *xl = rc_rw_series_labels(x, buf, 2);
      assert_non_null(xl);
      assert_true(label_is(&xl[0], "__name__", "up") && label_is(&xl[1], "job", "a"));
      /* Padded: never remembered, so always parsed. Minimal: raw from the second decode on
       * (the reference decoder has no cache). */
      int want_raw = v == 1 && round > 0 && !g_reference;
      assert_int_equal(x->labels == NULL, want_raw);
      rc_batch_free(b);
    }
    rc_rw_decoder_close(&d);
    free(body);
  }
}

static void test_repeated_decodes(void **st) {
  (void)st;
  repeated_decodes(0);
  repeated_decodes(1);
}

/* More label sets than the label-set cache holds (2 ways x 2^17 sets), decoded again and again by
 * one decoder: whatever the cache keeps or evicts, every series comes out with its own labels
 * and samples, and the identity handed to the store (has_id) is the hash of those labels. */
static void cache_identity(int lazy) {
  enum { PER_REQ = 2000, NREQ = 150 }; /* 300k label sets */
  char *bodies[NREQ];
  size_t lens[NREQ];
  for (int q = 0; q < NREQ; q++) {
    rwb_t *b = rwb_new(1);
    for (int i = 0; i < PER_REQ; i++) {
      char spec[96];
      snprintf(spec, sizeof(spec), "__name__=m,instance=i%d,job=j%d", i, q);
      rwb_series(b, spec);
      rwb_sample(b, q * PER_REQ + i, 1000);
    }
    bodies[q] = rwb_finish(b, &lens[q]);
  }
  rc_rw_decoder_t d;
  rc_rw_limits_t l = limits();
  rc_rw_decoder_init(&d, &l);
  d.lazy_labels = lazy;
  uint64_t with_id = 0;
  for (int round = 0; round < 3; round++) {
    for (int q = 0; q < NREQ; q++) {
      rc_batch_t *bt;
      rc_rw_result_t r;
      assert_int_equal(rc_rw_decode(&d, 1, bodies[q], lens[q], &bt, &r), 0);
      assert_int_equal(bt->nseries, PER_REQ);
      for (uint32_t i = 0; i < bt->nseries; i++) {
        const rc_series_t *x = &bt->series[i];
        char inst[32], job[32];
        int ni = snprintf(inst, sizeof(inst), "i%u", i), nj = snprintf(job, sizeof(job), "j%d", q);
        assert_int_equal(x->nlabels, 3);
        rc_label_t buf[3];
        const rc_label_t *xl = rc_rw_series_labels(x, buf, 3);
        assert_non_null(xl);
        assert_int_equal(x->metric_len, 1);
        assert_memory_equal(x->metric, "m", 1);
        assert_int_equal(xl[1].value_len, ni);
        assert_memory_equal(xl[1].value, inst, ni);
        assert_int_equal(xl[2].value_len, nj);
        assert_memory_equal(xl[2].value, job, nj);
        assert_int_equal(x->nsamples, 1);
        assert_true(x->samples[0].value == (double)(q * PER_REQ + (int)i));
        rc_selindex_hash_t h = rc_series_hash(x), want = rc_selindex_hash_labels(xl, 3);
        assert_true(h.lo == want.lo && h.hi == want.hi);
        with_id += x->has_id;
      }
      rc_batch_free(bt);
    }
  }
  /* The wire decoder remembers identities; the reference (protobuf-c) decoder has no cache. */
  if (!g_reference) assert_int_equal(with_id, 3ull * NREQ * PER_REQ);
  rc_rw_decoder_close(&d);
  for (int q = 0; q < NREQ; q++) free(bodies[q]);
}

static void test_cache_identity(void **st) {
  (void)st;
  cache_identity(0);
  cache_identity(1);
}

#define BOTH(t) cmocka_unit_test_setup(t, use_wire), cmocka_unit_test_setup(t, use_pbc)

int main(void) {
  const struct CMUnitTest tests[] = {
      BOTH(test_v1_ok),
      BOTH(test_v2_ok),
      BOTH(test_v1_body_as_v2_is_empty),
      BOTH(test_series_table),
      BOTH(test_request_table),
      BOTH(test_unknown_fields_skipped),
      BOTH(test_stale_marker),
      BOTH(test_memory_limit),
      BOTH(test_every_truncation),
      BOTH(test_legacy_names),
      BOTH(test_reason_bounded),
      BOTH(test_repeated_decodes),
      BOTH(test_padded_name_prefix),
      BOTH(test_cache_identity),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
