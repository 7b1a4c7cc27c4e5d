/* test_rread.c: the remote read client (src/rread.c). The request is checked by unpacking it
 * with protobuf-c's generated code; responses are built the same way (the packer a real
 * server's protobuf library stands in for) and broken on purpose, one table row per reason,
 * each with its exact message; the client talks to a small HTTP server on 127.0.0.1 run by a
 * thread of this test, which answers with canned bytes and records the request. Every socket
 * wait is bounded (poll and SO_RCVTIMEO), so a broken client fails the test instead of
 * hanging it. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>
#include <snappy-c.h>

#include "remote_read.pb-c.h"
#include "rread.h"
#include "rwbuild.h"

/*------------------------------------------------------------------------------------------
 * A ReadResponse builder over protobuf-c's structs (fixed capacity: tests are small)
 *----------------------------------------------------------------------------------------*/

#define RB_MAX 64

typedef struct rb {
  Prometheus__Read__ReadResponse resp;
  Prometheus__Read__QueryResult res[8], *res_p[8];
  Prometheus__Read__TimeSeries ts[RB_MAX], *ts_p[RB_MAX];
  Prometheus__Read__Label lab[RB_MAX], *lab_p[RB_MAX];
  Prometheus__Read__Sample smp[RB_MAX], *smp_p[RB_MAX];
  ProtobufCBinaryData hist[RB_MAX];
  size_t nres, nts, nlab, nsmp, nhist;
} rb_t;

static void rb_init(rb_t *b) {
  memset(b, 0, sizeof(*b));
  prometheus__read__read_response__init(&b->resp);
  b->resp.results = b->res_p;
}

static void rb_result(rb_t *b) {
  assert_true(b->nres < 8);
  Prometheus__Read__QueryResult *r = &b->res[b->nres];
  prometheus__read__query_result__init(r);
  r->timeseries = &b->ts_p[b->nts];
  b->res_p[b->nres++] = r;
  b->resp.n_results = b->nres;
}

static void rb_series(rb_t *b) {
  assert_true(b->nres > 0 && b->nts < RB_MAX);
  Prometheus__Read__TimeSeries *t = &b->ts[b->nts];
  prometheus__read__time_series__init(t);
  t->labels = &b->lab_p[b->nlab];
  t->samples = &b->smp_p[b->nsmp];
  t->histograms = &b->hist[b->nhist];
  b->ts_p[b->nts++] = t;
  b->res[b->nres - 1].n_timeseries++;
}

static Prometheus__Read__TimeSeries *rb_cur(rb_t *b) { return &b->ts[b->nts - 1]; }

static void rb_label_n(rb_t *b, const char *n, size_t nl, const char *v, size_t vl) {
  assert_true(b->nlab < RB_MAX);
  Prometheus__Read__Label *l = &b->lab[b->nlab];
  prometheus__read__label__init(l);
  l->name = (ProtobufCBinaryData){nl, (uint8_t *)n};
  l->value = (ProtobufCBinaryData){vl, (uint8_t *)v};
  b->lab_p[b->nlab++] = l;
  rb_cur(b)->n_labels++;
}

static void rb_label(rb_t *b, const char *n, const char *v) {
  rb_label_n(b, n, strlen(n), v, strlen(v));
}

static void rb_sample(rb_t *b, double v, int64_t ts) {
  assert_true(b->nsmp < RB_MAX);
  Prometheus__Read__Sample *s = &b->smp[b->nsmp];
  prometheus__read__sample__init(s);
  s->value = v;
  s->timestamp = ts;
  b->smp_p[b->nsmp++] = s;
  rb_cur(b)->n_samples++;
}

static void rb_sample_bits(rb_t *b, uint64_t bits, int64_t ts) {
  double v;
  memcpy(&v, &bits, sizeof(v));
  rb_sample(b, v, ts);
}

/* A native histogram sample: the decoder only counts them, so any bytes do. */
static void rb_histogram(rb_t *b) {
  assert_true(b->nhist < RB_MAX);
  b->hist[b->nhist++] = (ProtobufCBinaryData){3, (uint8_t *)"\x18\x01\x20"};
  rb_cur(b)->n_histograms++;
}

static uint8_t *rb_pack(rb_t *b, size_t *len) {
  *len = prometheus__read__read_response__get_packed_size(&b->resp);
  uint8_t *p = malloc(*len ? *len : 1);
  assert_non_null(p);
  prometheus__read__read_response__pack(&b->resp, p);
  return p;
}

/* The HTTP body: the packed response as a snappy block. Caller frees. */
static char *rb_body(rb_t *b, size_t *len) {
  size_t rl;
  uint8_t *raw = rb_pack(b, &rl);
  char *c = rwb_snappy(raw, rl, len);
  free(raw);
  return c;
}

/* One result, one series {__name__="up", job="api"} with samples at 1000 and 2000. */
static void rb_simple(rb_t *b) {
  rb_init(b);
  rb_result(b);
  rb_series(b);
  rb_label(b, "__name__", "up");
  rb_label(b, "job", "api");
  rb_sample(b, 1, 1000);
  rb_sample(b, 0, 2000);
}

static int label_is(const rc_label_t *l, const char *n, const char *v) {
  return l->name_len == strlen(n) && memcmp(l->name, n, l->name_len) == 0 &&
         l->value_len == strlen(v) && memcmp(l->value, v, l->value_len) == 0;
}

static uint64_t bits_of(double v) {
  uint64_t u;
  memcpy(&u, &v, sizeof(u));
  return u;
}

static rc_selector_t *sel(const char *text) {
  rc_selector_t *s = NULL;
  rc_err_t e = {0};
  if (rc_selector_parse(text, strlen(text), 0, &s, &e) != 0) fail_msg("%s: %s", text, e.msg);
  return s;
}

/*------------------------------------------------------------------------------------------
 * Request
 *----------------------------------------------------------------------------------------*/

/* Unpacks an encoded request (snappy block of a ReadRequest). Free with ..._free_unpacked. */
static Prometheus__Read__ReadRequest *unpack_request(const char *body, size_t len) {
  size_t ulen;
  assert_int_equal(snappy_uncompressed_length(body, len, &ulen), SNAPPY_OK);
  char *raw = malloc(ulen ? ulen : 1);
  assert_non_null(raw);
  assert_int_equal(snappy_uncompress(body, len, raw, &ulen), SNAPPY_OK);
  Prometheus__Read__ReadRequest *r =
      prometheus__read__read_request__unpack(NULL, ulen, (const uint8_t *)raw);
  free(raw);
  assert_non_null(r);
  return r;
}

static void assert_matcher(const Prometheus__Read__LabelMatcher *m, int type, const char *name,
                           const char *value) {
  assert_int_equal(m->type, type);
  assert_int_equal(m->name.len, strlen(name));
  assert_memory_equal(m->name.data, name, m->name.len);
  assert_int_equal(m->value.len, strlen(value));
  if (m->value.len) assert_memory_equal(m->value.data, value, m->value.len);
}

/* Checks the request the first selector set below encodes to. */
static void assert_request(const Prometheus__Read__ReadRequest *r, int64_t start, int64_t end) {
  assert_int_equal(r->n_accepted_response_types, 1);
  assert_int_equal(r->accepted_response_types[0],
                   PROMETHEUS__READ__READ_REQUEST__RESPONSE_TYPE__SAMPLES);
  assert_int_equal(r->n_queries, 2);
  for (size_t i = 0; i < 2; i++) {
    const Prometheus__Read__Query *q = r->queries[i];
    assert_int_equal(q->start_timestamp_ms, start);
    assert_int_equal(q->end_timestamp_ms, end);
    assert_non_null(q->hints);
    assert_int_equal(q->hints->start_ms, start);
    assert_int_equal(q->hints->end_ms, end);
    assert_int_equal(q->hints->step_ms, 0);
  }
  /* The selector keeps its matchers sorted by name, and they go out in that order. */
  const Prometheus__Read__Query *q = r->queries[0];
  assert_int_equal(q->n_matchers, 4);
  assert_matcher(q->matchers[0], PROMETHEUS__READ__LABEL_MATCHER__TYPE__EQ, "__name__",
                 "http_requests_total");
  assert_matcher(q->matchers[1], PROMETHEUS__READ__LABEL_MATCHER__TYPE__NRE, "code", "5..");
  assert_matcher(q->matchers[2], PROMETHEUS__READ__LABEL_MATCHER__TYPE__NEQ, "job", "");
  assert_matcher(q->matchers[3], PROMETHEUS__READ__LABEL_MATCHER__TYPE__RE, "path",
                 "/v1/.*|/é");
  q = r->queries[1];
  assert_int_equal(q->n_matchers, 1);
  assert_matcher(q->matchers[0], PROMETHEUS__READ__LABEL_MATCHER__TYPE__EQ, "__name__", "up");
}

#define SEL0 "http_requests_total{job!=\"\", path=~\"/v1/.*|/é\", code!~\"5..\"}"
#define SEL1 "up"

static void test_encode_roundtrip(void **st) {
  (void)st;
  rc_selector_t *s0 = sel(SEL0), *s1 = sel(SEL1);
  const rc_selector_t *sels[] = {s0, s1};
  rc_buf_t out;
  rc_buf_init(&out);
  rc_err_t e = {0};
  const int64_t start = -5000, end = INT64_C(1700000000000);
  assert_int_equal(rc_rread_encode_request(sels, 2, start, end, &out, &e), 0);
  Prometheus__Read__ReadRequest *r = unpack_request(out.data, out.len);
  assert_request(r, start, end);
  prometheus__read__read_request__free_unpacked(r, NULL);

  /* A second encode into the same buffer replaces the first. */
  assert_int_equal(rc_rread_encode_request(sels + 1, 1, 7, 7, &out, &e), 0);
  r = unpack_request(out.data, out.len);
  assert_int_equal(r->n_queries, 1);
  assert_int_equal(r->queries[0]->start_timestamp_ms, 7);
  prometheus__read__read_request__free_unpacked(r, NULL);
  rc_buf_free(&out);
  rc_selector_free(s0);
  rc_selector_free(s1);
}

static void test_encode_errors(void **st) {
  (void)st;
  rc_selector_t *ok = sel(SEL1), *empty = rc_selector_new(), *bad = rc_selector_new();
  assert_non_null(empty);
  assert_non_null(bad);
  rc_err_t e = {0};
  /* An equality matcher takes any bytes; the server's protobuf decoder does not. */
  assert_int_equal(rc_selector_add(bad, RC_MATCH_EQ, "job", 3, "a\xff", 2, 0, &e), 0);
  rc_buf_t out;
  rc_buf_init(&out);
  const rc_selector_t *s_ok[] = {ok}, *s_empty[] = {ok, empty}, *s_bad[] = {ok, bad};
  assert_int_equal(rc_rread_encode_request(s_ok, 0, 0, 1, &out, &e), RC_EINVAL);
  assert_string_equal(e.msg, "remote read request: no selectors");
  assert_int_equal(rc_rread_encode_request(s_ok, 1, 2, 1, &out, &e), RC_EINVAL);
  assert_string_equal(e.msg, "remote read request: start 2 is after end 1");
  assert_int_equal(rc_rread_encode_request(s_empty, 2, 0, 1, &out, &e), RC_EINVAL);
  assert_string_equal(e.msg, "remote read request: selector 1 has no matchers");
  assert_int_equal(rc_rread_encode_request(s_bad, 2, 0, 1, &out, &e), RC_EINVAL);
  assert_string_equal(e.msg,
                      "remote read request: selector 1: the value for \"job\" is not valid UTF-8");
  assert_int_equal(out.len, 0);
  rc_buf_free(&out);
  rc_selector_free(ok);
  rc_selector_free(empty);
  rc_selector_free(bad);
}

/*------------------------------------------------------------------------------------------
 * Response
 *----------------------------------------------------------------------------------------*/

static void test_decode_ok(void **st) {
  (void)st;
  rb_t b;
  rb_init(&b);
  rb_result(&b);
  rb_series(&b);
  rb_label(&b, "__name__", "http_requests_total");
  rb_label(&b, "code", "");   /* empty value: same as no label, dropped */
  rb_label(&b, "job", "api");
  rb_label(&b, "zone", "eu-1");
  rb_sample(&b, 1.5, 1000);
  rb_sample_bits(&b, RC_STALE_NAN_BITS, 2000);
  rb_sample(&b, -3, 3000);
  rb_series(&b);
  rb_label(&b, "__name__", "latency");
  rb_histogram(&b);
  rb_histogram(&b);
  rb_result(&b); /* an empty result */
  rb_result(&b);
  rb_series(&b);
  rb_label(&b, "__name__", "up");
  rb_sample(&b, 1, -1000); /* before the epoch is still a time */
  size_t len;
  char *body = rb_body(&b, &len);

  rc_rread_result_t r[3];
  rc_err_t e = {0};
  assert_int_equal(rc_rread_decode_response(body, len, NULL, r, 3, &e), 0);
  assert_int_equal(r[0].nseries, 2);
  assert_int_equal(r[0].nsamples, 3);
  assert_int_equal(r[0].nstale, 1);
  assert_int_equal(r[0].nhistograms, 2);
  const rc_rread_series_t *s = &r[0].series[0];
  assert_int_equal(s->nlabels, 3);
  assert_true(label_is(&s->labels[0], "__name__", "http_requests_total"));
  assert_true(label_is(&s->labels[1], "job", "api"));
  assert_true(label_is(&s->labels[2], "zone", "eu-1"));
  assert_int_equal(s->nsamples, 3);
  assert_true(s->samples[0].value == 1.5 && s->samples[0].ts_ms == 1000);
  assert_true(rc_is_stale_nan(s->samples[1].value) && s->samples[1].ts_ms == 2000);
  assert_true(s->samples[2].value == -3 && s->samples[2].ts_ms == 3000);
  assert_int_equal(s->samples[0].start_ts_ms, 0);
  s = &r[0].series[1];
  assert_int_equal(s->nlabels, 1);
  assert_true(label_is(&s->labels[0], "__name__", "latency"));
  assert_int_equal(s->nsamples, 0);
  assert_int_equal(r[1].nseries, 0);
  assert_null(r[1].series);
  assert_int_equal(r[2].nseries, 1);
  assert_int_equal(r[2].series[0].samples[0].ts_ms, -1000);
  for (int i = 0; i < 3; i++) rc_rread_result_free(&r[i]);
  assert_null(r[0].mem);
  rc_rread_result_free(&r[0]); /* twice is harmless */
  rc_rread_result_free(NULL);
  free(body);
}

/* Staleness markers and other NaN payloads come out with exactly the bits that went in. */
static void test_stale_bits(void **st) {
  (void)st;
  static const uint64_t bits[] = {RC_STALE_NAN_BITS, UINT64_C(0x7ff8000000000001),
                                  UINT64_C(0xfff8000000000000), UINT64_C(0x7ff8000000000000),
                                  UINT64_C(0x7ff0000000000000), UINT64_C(0xfff0000000000001)};
  rb_t b;
  rb_init(&b);
  rb_result(&b);
  rb_series(&b);
  rb_label(&b, "__name__", "x");
  for (size_t i = 0; i < RC_ARRAY_SIZE(bits); i++) rb_sample_bits(&b, bits[i], (int64_t)i);
  size_t len;
  char *body = rb_body(&b, &len);
  rc_rread_result_t r;
  rc_err_t e = {0};
  assert_int_equal(rc_rread_decode_response(body, len, NULL, &r, 1, &e), 0);
  assert_int_equal(r.series[0].nsamples, RC_ARRAY_SIZE(bits));
  for (size_t i = 0; i < RC_ARRAY_SIZE(bits); i++)
    assert_int_equal(bits_of(r.series[0].samples[i].value), bits[i]);
  assert_int_equal(r.nstale, 1);
  rc_rread_result_free(&r);
  free(body);

  /* -0.0 by hand: protobuf-c's packer takes it for proto3's default and leaves it out, where
   * Go's sends it. ReadResponse{QueryResult{TimeSeries{Label{a, b}, Sample{-0.0, 5}}}}. */
  static const char pb[] = "\x0a\x17\x0a\x15\x0a\x06\x0a\x01" "a" "\x12\x01" "b"
                           "\x12\x0b\x09\x00\x00\x00\x00\x00\x00\x00\x80\x10\x05";
  body = rwb_snappy(pb, sizeof(pb) - 1, &len);
  assert_int_equal(rc_rread_decode_response(body, len, NULL, &r, 1, &e), 0);
  assert_int_equal(r.series[0].nsamples, 1);
  assert_int_equal(bits_of(r.series[0].samples[0].value), UINT64_C(0x8000000000000000));
  assert_int_equal(r.series[0].samples[0].ts_ms, 5);
  rc_rread_result_free(&r);
  free(body);
}

/* A bad-input case: a body to build, the limits, how many queries, and what must come out. */
typedef struct bad_case {
  const char *what;
  void (*build)(rb_t *b);  /* a response to pack and compress; NULL: raw is the body */
  const char *raw;         /* a literal body (build NULL), or raw protobuf (prefix "pb:") */
  size_t raw_len;
  rc_rread_limits_t lim;
  uint32_t nqueries;
  int rc;
  const char *msg;
} bad_case_t;

static void b_unsorted_samples(rb_t *b) {
  rb_simple(b);
  rb_sample(b, 2, 1500);
}
static void b_duplicate_ts(rb_t *b) {
  rb_simple(b);
  rb_sample(b, 2, 2000);
}
static void b_unsorted_labels(rb_t *b) {
  rb_simple(b);
  rb_label(b, "instance", "a");
}
static void b_duplicate_labels(rb_t *b) {
  rb_simple(b);
  rb_label(b, "job", "web");
}
static void b_empty_name(rb_t *b) {
  rb_init(b);
  rb_result(b);
  rb_series(b);
  rb_label(b, "", "x");
}
static void b_bad_utf8_name(rb_t *b) {
  rb_simple(b);
  rb_label_n(b, "k\xc0\xaf", 3, "v", 1); /* overlong '/' */
}
static void b_bad_utf8_value(rb_t *b) {
  rb_simple(b);
  rb_label_n(b, "zone", 4, "\xed\xa0\x80", 3); /* a surrogate */
}
static void b_second_series_bad(rb_t *b) {
  rb_simple(b);
  rb_result(b);
  rb_series(b);
  rb_label(b, "__name__", "b");
  rb_series(b);
  rb_label(b, "b", "1");
  rb_label(b, "a", "1");
}
static void b_two_results(rb_t *b) {
  rb_simple(b);
  rb_result(b);
}
static void b_many(rb_t *b) { /* 3 series, 6 samples */
  rb_simple(b);
  for (int i = 0; i < 2; i++) {
    rb_series(b);
    rb_label(b, "__name__", i ? "b" : "a");
    rb_sample(b, 1, 1);
    rb_sample(b, 1, 2);
  }
}

#define PB(s) NULL, "pb:" s, sizeof("pb:" s) - 1
#define RAW(s) NULL, s, sizeof(s) - 1

static const bad_case_t bad_cases[] = {
    {"empty body", RAW(""), {0}, 1, RC_EPARSE, "empty response body"},
    {"bad snappy header", RAW("\xff\xff\xff\xff\xff\xff"), {0}, 1, RC_EPARSE,
     "malformed snappy block: bad uncompressed-length header"},
    {"bad snappy data", RAW("\x05\x10" "abc"), {0}, 1, RC_EPARSE,
     "malformed snappy block: corrupt or truncated"},
    {"snappy shorter than declared", RAW("\x08\x0c" "abcd"), {0}, 1, RC_EPARSE,
     "malformed snappy block: corrupt or truncated"},
    {"truncated protobuf", PB("\x0a\x05\x0a\x03\x0a\x01"), {0}, 1, RC_EPARSE,
     "response is not a valid ReadResponse protobuf message"},
    {"results as a varint", PB("\x08\x01"), {0}, 1, RC_EPARSE,
     "response is not a valid ReadResponse protobuf message"},
    {"sample value as a varint",
     PB("\x0a\x06\x0a\x04\x12\x02\x08\x01"), {0}, 1, RC_EPARSE,
     "response is not a valid ReadResponse protobuf message"},
    {"timestamp as fixed64",
     PB("\x0a\x0d\x0a\x0b\x12\x09\x11\x01\x02\x03\x04\x05\x06\x07\x08"), {0}, 1, RC_EPARSE,
     "response is not a valid ReadResponse protobuf message"},
    {"wire type 7", PB("\x0f"), {0}, 1, RC_EPARSE,
     "response is not a valid ReadResponse protobuf message"},
    {"length past the end", PB("\x0a\x7f\x00"), {0}, 1, RC_EPARSE,
     "response is not a valid ReadResponse protobuf message"},
    {"unsorted samples", b_unsorted_samples, NULL, 0, {0}, 1, RC_EPARSE,
     "result 0, series 0: sample 2: timestamp 1500 is not after 2000 (samples must be in "
     "ascending time order)"},
    {"duplicate timestamps", b_duplicate_ts, NULL, 0, {0}, 1, RC_EPARSE,
     "result 0, series 0: sample 2: timestamp 2000 is not after 2000 (samples must be in "
     "ascending time order)"},
    {"unsorted labels", b_unsorted_labels, NULL, 0, {0}, 1, RC_EPARSE,
     "result 0, series 0: labels not sorted by name (\"instance\" after \"job\")"},
    {"duplicate labels", b_duplicate_labels, NULL, 0, {0}, 1, RC_EPARSE,
     "result 0, series 0: duplicate label name \"job\""},
    {"empty label name", b_empty_name, NULL, 0, {0}, 1, RC_EPARSE,
     "result 0, series 0: label 0 has an empty name"},
    {"label name not UTF-8", b_bad_utf8_name, NULL, 0, {0}, 1, RC_EPARSE,
     "result 0, series 0: label 2: name is not valid UTF-8"},
    {"label value not UTF-8", b_bad_utf8_value, NULL, 0, {0}, 1, RC_EPARSE,
     "result 0, series 0: value of label \"zone\" is not valid UTF-8"},
    {"a later series bad", b_second_series_bad, NULL, 0, {0}, 2, RC_EPARSE,
     "result 1, series 1: labels not sorted by name (\"a\" after \"b\")"},
    {"fewer results than queries", rb_simple, NULL, 0, {0}, 2, RC_EPARSE,
     "response has 1 result for 2 queries"},
    {"more results than queries", b_two_results, NULL, 0, {0}, 1, RC_EPARSE,
     "response has 2 results for 1 query"},
    {"over max_decoded_bytes", b_many, NULL, 0, {.max_decoded_bytes = 16}, 1, RC_ELIMIT,
     "decoded response would be 138 bytes, over the limit of 16"},
    {"over max_series", b_many, NULL, 0, {.max_series = 2}, 1, RC_ELIMIT,
     "response has 3 series, over the limit of 2"},
    {"over max_samples", b_many, NULL, 0, {.max_samples = 5}, 1, RC_ELIMIT,
     "response has 6 samples, over the limit of 5"},
    {"over max_memory_bytes (unpacking)", b_many, NULL, 0, {.max_memory_bytes = 512}, 1,
     RC_ELIMIT, "decoded response needs more than 512 bytes of memory"},
    {"over max_memory_bytes (the decompressed bytes)", b_many, NULL, 0,
     {.max_memory_bytes = 64}, 1, RC_ELIMIT, "decoded response needs more than 64 bytes of memory"},
};

static void test_decode_bad(void **st) {
  (void)st;
  for (size_t i = 0; i < RC_ARRAY_SIZE(bad_cases); i++) {
    const bad_case_t *c = &bad_cases[i];
    char *body = NULL;
    size_t len = 0;
    if (c->build != NULL) {
      rb_t b;
      c->build(&b);
      body = rb_body(&b, &len);
    } else if (strncmp(c->raw, "pb:", 3) == 0) {
      body = rwb_snappy(c->raw + 3, c->raw_len - 3, &len);
    } else {
      len = c->raw_len;
      body = malloc(len + 1);
      assert_non_null(body);
      memcpy(body, c->raw, len);
    }
    rc_rread_result_t r[2];
    memset(r, 0xa5, sizeof(r)); /* whatever was there must not be trusted or freed */
    rc_err_t e = {0};
    int rc = rc_rread_decode_response(body, len, &c->lim, r, c->nqueries, &e);
    if (rc != c->rc || strcmp(e.msg, c->msg) != 0)
      fail_msg("%s: got %d \"%s\", want %d \"%s\"", c->what, rc, e.msg, c->rc, c->msg);
    for (uint32_t k = 0; k < c->nqueries; k++) {
      assert_null(r[k].mem);
      assert_int_equal(r[k].nseries, 0);
    }
    free(body);
  }
}

/* Memory between "fits" and "does not" is found by the limit, never by a crash or a leak:
 * every limit from 0 up to the one that fits either decodes or gives RC_ELIMIT. */
static void test_memory_limit_sweep(void **st) {
  (void)st;
  rb_t b;
  b_many(&b);
  size_t len;
  char *body = rb_body(&b, &len);
  int fitted = 0;
  for (size_t m = 1; m < 16384 && !fitted; m += 7) {
    rc_rread_limits_t lim = {.max_memory_bytes = m};
    rc_rread_result_t r;
    rc_err_t e = {0};
    int rc = rc_rread_decode_response(body, len, &lim, &r, 1, &e);
    if (rc == 0) {
      fitted = 1;
      assert_int_equal(r.nsamples, 6);
      rc_rread_result_free(&r);
    } else {
      assert_int_equal(rc, RC_ELIMIT);
    }
  }
  assert_true(fitted);
  free(body);
}

/* Every truncation of a valid body, at the snappy and at the protobuf level, fails cleanly
 * (or, for protobuf, may still be a valid shorter message). */
static void test_truncations(void **st) {
  (void)st;
  rb_t b;
  b_many(&b);
  size_t rl, len;
  uint8_t *raw = rb_pack(&b, &rl);
  char *body = rwb_snappy(raw, rl, &len);
  rc_rread_result_t r;
  rc_err_t e = {0};
  for (size_t n = 0; n < len; n++) {
    assert_int_equal(rc_rread_decode_response(body, n, NULL, &r, 1, &e), RC_EPARSE);
    assert_null(r.mem);
  }
  for (size_t n = 0; n < rl; n++) {
    size_t cl;
    char *c = rwb_snappy(raw, n, &cl);
    int rc = rc_rread_decode_response(c, cl, NULL, &r, 1, &e);
    assert_true(rc == 0 || rc == RC_EPARSE);
    rc_rread_result_free(&r);
    free(c);
  }
  free(raw);
  free(body);
}

/*------------------------------------------------------------------------------------------
 * Client against a canned HTTP server on 127.0.0.1
 *----------------------------------------------------------------------------------------*/

enum { ANSWER, CLOSE, HANG };

typedef struct srv {
  int lfd;
  uint16_t port;
  pthread_t th;
  int mode;
  char *answer; /* the bytes to send (mode ANSWER) */
  size_t answer_len;
  char head[8192]; /* the request as received: headers, then body */
  size_t head_len, body_off, body_len;
} srv_t;

static void set_rcvtimeo(int fd, int ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Reads one request (headers and a Content-Length body) into s->head. */
static void read_request(srv_t *s, int fd) {
  size_t want = 0;
  for (;;) {
    if (s->body_off == 0) {
      char *end = memmem(s->head, s->head_len, "\r\n\r\n", 4);
      if (end != NULL) {
        s->body_off = (size_t)(end + 4 - s->head);
        char *cl = memmem(s->head, s->body_off, "Content-Length: ", 16);
        want = cl ? (size_t)strtoul(cl + 16, NULL, 10) : 0;
      }
    }
    if (s->body_off != 0 && s->head_len - s->body_off >= want) break;
    if (s->head_len == sizeof(s->head)) break;
    ssize_t n = recv(fd, s->head + s->head_len, sizeof(s->head) - s->head_len, 0);
    if (n <= 0) break;
    s->head_len += (size_t)n;
  }
  s->body_len = s->body_off ? s->head_len - s->body_off : 0;
}

static void *serve(void *arg) {
  srv_t *s = arg;
  struct pollfd p = {.fd = s->lfd, .events = POLLIN};
  if (poll(&p, 1, 5000) != 1) return NULL;
  int fd = accept(s->lfd, NULL, NULL);
  if (fd < 0) return NULL;
  set_rcvtimeo(fd, 3000);
  read_request(s, fd);
  if (s->mode == ANSWER) {
    for (size_t off = 0; off < s->answer_len;) {
      ssize_t n = send(fd, s->answer + off, s->answer_len - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += (size_t)n;
    }
  } else if (s->mode == HANG) {
    char c;
    while (recv(fd, &c, 1, 0) > 0) { /* until the client gives up (or 3 s pass) */
    }
  }
  close(fd);
  return NULL;
}

/* Starts a server that answers one connection. answer is copied. */
static void srv_start(srv_t *s, int mode, const char *answer, size_t len) {
  memset(s, 0, sizeof(*s));
  s->mode = mode;
  if (answer != NULL) {
    s->answer = malloc(len);
    assert_non_null(s->answer);
    memcpy(s->answer, answer, len);
    s->answer_len = len;
  }
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(s->lfd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(listen(s->lfd, 4), 0);
  socklen_t al = sizeof(a);
  assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
  s->port = ntohs(a.sin_port);
  assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void srv_stop(srv_t *s) {
  pthread_join(s->th, NULL);
  close(s->lfd);
  free(s->answer);
}

/* "HTTP/1.1 <status>" with a Content-Type and the body (a Content-Length unless no_length). */
static char *http_answer(const char *status, const char *ctype, const void *body, size_t len,
                         int no_length, size_t *out_len) {
  char head[512];
  int hl;
  if (no_length)
    hl = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\nConnection: close"
                  "\r\n\r\n", status, ctype);
  else
    hl = snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Encoding: "
                  "snappy\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, ctype,
                  len);
  char *a = malloc((size_t)hl + len);
  assert_non_null(a);
  memcpy(a, head, (size_t)hl);
  if (len) memcpy(a + hl, body, len);
  *out_len = (size_t)hl + len;
  return a;
}

static rc_rread_client_t *client(const srv_t *s, const char *path, uint32_t timeout_ms,
                                 size_t max_body) {
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)s->port, path);
  rc_rread_opts_t o = {.url = url, .timeout_ms = timeout_ms, .bearer_token = "s3cr3t-t0k\n",
                       .max_body_bytes = max_body};
  rc_rread_client_t *c = NULL;
  rc_err_t e = {0};
  if (rc_rread_client_new(&o, &c, &e) != 0) fail_msg("client: %s", e.msg);
  return c;
}

/* Runs one query of the two SEL0/SEL1 selectors against a server answering `answer`. */
static int query_once(srv_t *s, int mode, const char *answer, size_t alen, const char *path,
                      uint32_t timeout_ms, size_t max_body, rc_rread_result_t *r, rc_err_t *e) {
  srv_start(s, mode, answer, alen);
  rc_rread_client_t *c = client(s, path, timeout_ms, max_body);
  rc_selector_t *s0 = sel(SEL0), *s1 = sel(SEL1);
  const rc_selector_t *sels[] = {s0, s1};
  int rc = rc_rread_query(c, sels, 2, 1000, 61000, r, e);
  rc_rread_client_free(c);
  srv_stop(s);
  rc_selector_free(s0);
  rc_selector_free(s1);
  return rc;
}

static int has_header(const srv_t *s, const char *line) {
  char want[256];
  snprintf(want, sizeof(want), "\r\n%s\r\n", line);
  return memmem(s->head, s->body_off, want, strlen(want)) != NULL;
}

static void test_client_ok(void **st) {
  (void)st;
  rb_t b;
  rb_simple(&b);
  rb_result(&b);
  rb_series(&b);
  rb_label(&b, "__name__", "up");
  rb_sample_bits(&b, RC_STALE_NAN_BITS, 5000);
  size_t bl, al;
  char *body = rb_body(&b, &bl);
  char *ans = http_answer("200 OK", "application/x-protobuf", body, bl, 0, &al);
  srv_t s;
  rc_rread_result_t r[2];
  rc_err_t e = {0};
  assert_int_equal(query_once(&s, ANSWER, ans, al, "/prom/", 5000, 0, r, &e), 0);
  assert_int_equal(r[0].nseries, 1);
  assert_true(label_is(&r[0].series[0].labels[1], "job", "api"));
  assert_int_equal(r[0].series[0].nsamples, 2);
  assert_int_equal(bits_of(r[1].series[0].samples[0].value), RC_STALE_NAN_BITS);
  rc_rread_result_free(&r[0]);
  rc_rread_result_free(&r[1]);

  /* What went out: the endpoint under the URL's path, the protocol's headers, the token. */
  assert_true(s.head_len > 0);
  assert_memory_equal(s.head, "POST /prom/api/v1/read HTTP/1.1\r\n", 33);
  assert_true(has_header(&s, "Content-Type: application/x-protobuf"));
  assert_true(has_header(&s, "Content-Encoding: snappy"));
  assert_true(has_header(&s, "X-Prometheus-Remote-Read-Version: 0.1.0"));
  assert_true(has_header(&s, "User-Agent: ripcord/" RC_VERSION));
  assert_true(has_header(&s, "Authorization: Bearer s3cr3t-t0k"));
  assert_null(memmem(s.head, s.body_off, "Expect:", 7));
  Prometheus__Read__ReadRequest *req = unpack_request(s.head + s.body_off, s.body_len);
  assert_request(req, 1000, 61000);
  prometheus__read__read_request__free_unpacked(req, NULL);
  free(ans);
  free(body);
}

/* A URL that already names the endpoint is used as it is. */
static void test_client_endpoint_url(void **st) {
  (void)st;
  rb_t b;
  rb_simple(&b);
  rb_result(&b);
  size_t bl, al;
  char *body = rb_body(&b, &bl);
  char *ans = http_answer("200 OK", "application/x-protobuf", body, bl, 0, &al);
  srv_t s;
  rc_rread_result_t r[2];
  rc_err_t e = {0};
  assert_int_equal(query_once(&s, ANSWER, ans, al, "/api/v1/read", 5000, 0, r, &e), 0);
  assert_memory_equal(s.head, "POST /api/v1/read HTTP/1.1\r\n", 28);
  rc_rread_result_free(&r[0]);
  rc_rread_result_free(&r[1]);
  free(ans);
  free(body);
}

static void test_client_http_error(void **st) {
  (void)st;
  static const char text[] = "bad matcher:\x01 \"x\"\nsecond line\n";
  size_t al;
  char *ans = http_answer("400 Bad Request", "text/plain; charset=utf-8", text,
                          sizeof(text) - 1, 0, &al);
  srv_t s;
  rc_rread_result_t r[2];
  rc_err_t e = {0};
  assert_int_equal(query_once(&s, ANSWER, ans, al, "", 5000, 0, r, &e), RC_EIO);
  assert_string_equal(e.msg, "remote read: HTTP 400: bad matcher:? \"x\"");
  assert_null(r[0].mem);
  free(ans);

  /* A long error body without a line break: the message stays one bounded line. */
  char big[4000];
  memset(big, 'x', sizeof(big));
  ans = http_answer("500 Internal Server Error", "text/plain", big, sizeof(big), 0, &al);
  assert_int_equal(query_once(&s, ANSWER, ans, al, "", 5000, 0, r, &e), RC_EIO);
  assert_memory_equal(e.msg, "remote read: HTTP 500: xxxx", 27);
  assert_true(strlen(e.msg) < sizeof(e.msg));
  free(ans);

  ans = http_answer("503 Service Unavailable", "text/plain", "", 0, 0, &al);
  assert_int_equal(query_once(&s, ANSWER, ans, al, "", 5000, 0, r, &e), RC_EIO);
  assert_string_equal(e.msg, "remote read: HTTP 503: (empty body)");
  free(ans);
}

static void test_client_over_limit(void **st) {
  (void)st;
  char big[1000];
  memset(big, 0, sizeof(big));
  srv_t s;
  rc_rread_result_t r[2];
  rc_err_t e = {0};
  size_t al;
  for (int no_length = 0; no_length <= 1; no_length++) {
    char *ans = http_answer("200 OK", "application/x-protobuf", big, sizeof(big), no_length, &al);
    assert_int_equal(query_once(&s, ANSWER, ans, al, "", 5000, 100, r, &e), RC_ELIMIT);
    assert_string_equal(e.msg, "remote read: response body over the limit of 100 bytes");
    free(ans);
  }
}

static void test_client_bad_answers(void **st) {
  (void)st;
  srv_t s;
  rc_rread_result_t r[2];
  rc_err_t e = {0};
  size_t al, bl;

  assert_int_equal(query_once(&s, CLOSE, NULL, 0, "", 5000, 0, r, &e), RC_EIO);
  assert_string_equal(e.msg, "remote read: Empty reply from server");

  char *ans = http_answer("200 OK", "text/html", "<html>", 6, 0, &al);
  assert_int_equal(query_once(&s, ANSWER, ans, al, "", 5000, 0, r, &e), RC_EIO);
  assert_string_equal(e.msg,
                      "remote read: unexpected Content-Type \"text/html\" (want "
                      "application/x-protobuf)");
  free(ans);

  rb_t b;
  rb_simple(&b);
  char *body = rb_body(&b, &bl); /* one result for two queries */
  ans = http_answer("200 OK", "application/x-protobuf", body, bl, 0, &al);
  assert_int_equal(query_once(&s, ANSWER, ans, al, "", 5000, 0, r, &e), RC_EPARSE);
  assert_string_equal(e.msg, "remote read: response has 1 result for 2 queries");
  assert_null(r[0].mem);
  free(ans);
  free(body);

  ans = http_answer("200 OK", "application/x-protobuf", "\x05\x10" "abc", 5, 0, &al);
  assert_int_equal(query_once(&s, ANSWER, ans, al, "", 5000, 0, r, &e), RC_EPARSE);
  assert_string_equal(e.msg, "remote read: malformed snappy block: corrupt or truncated");
  free(ans);
}

static void test_client_timeout(void **st) {
  (void)st;
  srv_t s;
  rc_rread_result_t r[2];
  rc_err_t e = {0};
  assert_int_equal(query_once(&s, HANG, NULL, 0, "", 300, 0, r, &e), RC_EIO);
  assert_memory_equal(e.msg, "remote read: Operation timed out after", 38);
}

static void test_client_refused(void **st) {
  (void)st;
  /* A port that was just listening and is now closed: nothing answers there. */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  socklen_t al = sizeof(a);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
  close(fd);
  srv_t fake = {.port = ntohs(a.sin_port)};
  rc_rread_client_t *c = client(&fake, "", 2000, 0);
  rc_selector_t *s1 = sel(SEL1);
  const rc_selector_t *sels[] = {s1};
  rc_rread_result_t r;
  rc_err_t e = {0};
  assert_int_equal(rc_rread_query(c, sels, 1, 0, 1, &r, &e), RC_EIO);
  assert_memory_equal(e.msg, "remote read: Failed to connect to 127.0.0.1", 43);
  /* A bad request never reaches the network, and says so with the same prefix. */
  assert_int_equal(rc_rread_query(c, sels, 1, 2, 1, &r, &e), RC_EINVAL);
  assert_string_equal(e.msg, "remote read request: start 2 is after end 1");
  rc_rread_client_free(c);
  rc_selector_free(s1);
}

static void test_client_new_errors(void **st) {
  (void)st;
  static const struct {
    const char *url, *token, *msg;
  } cases[] = {
      {NULL, NULL, "remote read: no URL"},
      {"", NULL, "remote read: no URL"},
      {"ftp://127.0.0.1/", NULL, "remote read: the URL must start with http:// or https://"},
      {"127.0.0.1:9090", NULL, "remote read: the URL must start with http:// or https://"},
      {"http://127.0.0.1:9090/\r\nX: y", NULL,
       "remote read: the URL holds a space or control character"},
      {"http://127.0.0.1:9090", "abc\r\nX-Injected: 1",
       "remote read: the bearer token holds a control character"},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(cases); i++) {
    rc_rread_opts_t o = {.url = cases[i].url, .bearer_token = cases[i].token};
    rc_rread_client_t *c = (void *)1;
    rc_err_t e = {0};
    assert_int_equal(rc_rread_client_new(&o, &c, &e), RC_EINVAL);
    assert_null(c);
    assert_string_equal(e.msg, cases[i].msg);
  }
  rc_rread_client_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_encode_roundtrip),   cmocka_unit_test(test_encode_errors),
      cmocka_unit_test(test_decode_ok),          cmocka_unit_test(test_stale_bits),
      cmocka_unit_test(test_decode_bad),         cmocka_unit_test(test_memory_limit_sweep),
      cmocka_unit_test(test_truncations),        cmocka_unit_test(test_client_ok),
      cmocka_unit_test(test_client_endpoint_url), cmocka_unit_test(test_client_http_error),
      cmocka_unit_test(test_client_over_limit),  cmocka_unit_test(test_client_bad_answers),
      cmocka_unit_test(test_client_timeout),     cmocka_unit_test(test_client_refused),
      cmocka_unit_test(test_client_new_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
