/* fuzz_rread.c: rc_rread_decode_response() on arbitrary bytes — a remote read answer is
 * whatever the server (or anything pretending to be it) sends.
 *
 * The first byte is a control byte, the rest the input:
 *   bits 0-1  how many queries the request had (1 to 4), so the result-count check is reached
 *             both ways;
 *   bit 2     tight limits (a few series, samples and KiB), so the limit paths are explored;
 *   bit 7     the input is raw protobuf, compressed here before decoding, so that mutations
 *             reach the protobuf and validation layers instead of dying in snappy.
 * Seeds are valid responses written with a tiny wire writer below, raw and compressed. */
#include <snappy-c.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rread.h"
#include "rwbuild.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  uint8_t ctl = data[0];
  uint32_t nq = 1u + (ctl & 3u);
  rc_rread_limits_t lim = {.max_decoded_bytes = 1u << 20};
  if (ctl & 4u) lim = (rc_rread_limits_t){.max_decoded_bytes = 4096, .max_series = 4,
                                          .max_samples = 16, .max_memory_bytes = 16384};
  char *packed = NULL;
  const char *body = (const char *)data + 1;
  size_t len = size - 1;
  if (ctl & 0x80u) {
    packed = rwb_snappy(body, len, &len);
    body = packed;
  }
  rc_rread_result_t r[4];
  rc_err_t err;
  if (rc_rread_decode_response(body, len, &lim, r, nq, &err) == 0) {
    /* Touch everything the results claim to hold, so a bad pointer or count is caught here. */
    volatile double sink = 0;
    for (uint32_t q = 0; q < nq; q++) {
      uint64_t n = 0;
      for (uint32_t i = 0; i < r[q].nseries; i++) {
        const rc_rread_series_t *s = &r[q].series[i];
        for (uint32_t k = 0; k < s->nlabels; k++)
          sink += s->labels[k].name[s->labels[k].name_len - 1] +
                  s->labels[k].value[s->labels[k].value_len - 1];
        for (uint32_t k = 0; k < s->nsamples; k++) sink += (double)s->samples[k].ts_ms;
        n += s->nsamples;
      }
      if (n != r[q].nsamples) abort();
      rc_rread_result_free(&r[q]);
    }
    (void)sink;
  } else {
    for (uint32_t q = 0; q < nq; q++)
      if (r[q].mem != NULL || r[q].nseries != 0) abort(); /* failures leave nothing behind */
  }
  free(packed);
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Seeds: a protobuf wire writer just big enough for ReadResponse
 *----------------------------------------------------------------------------------------*/

typedef struct w {
  uint8_t b[512];
  size_t n;
} w_t;

static void w_varint(w_t *w, uint64_t v) {
  do {
    w->b[w->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
}

/* Appends field `f` (wire type 2) holding inner[0..n). */
static void w_bytes(w_t *w, uint32_t f, const void *inner, size_t n) {
  w_varint(w, (uint64_t)f << 3 | 2);
  w_varint(w, n);
  memcpy(w->b + w->n, inner, n);
  w->n += n;
}

static void w_label(w_t *ts, const char *name, const char *value) {
  w_t l = {0};
  w_bytes(&l, 1, name, strlen(name));
  w_bytes(&l, 2, value, strlen(value));
  w_bytes(ts, 1, l.b, l.n);
}

static void w_sample(w_t *ts, uint64_t bits, int64_t t) {
  w_t s = {0};
  s.b[s.n++] = 0x09; /* field 1, fixed64 */
  memcpy(s.b + s.n, &bits, 8);
  s.n += 8;
  s.b[s.n++] = 0x10; /* field 2, varint */
  w_varint(&s, (uint64_t)t);
  w_bytes(ts, 2, s.b, s.n);
}

static uint64_t f64(double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  return u;
}

static void emit_seed(fuzz_emit_fn emit, uint8_t ctl, const w_t *resp) {
  uint8_t buf[1 + 1024];
  size_t n = 0;
  char *c = NULL;
  if (ctl & 0x80u) {
    memcpy(buf + 1, resp->b, resp->n);
    n = resp->n;
  } else {
    c = rwb_snappy(resp->b, resp->n, &n);
    memcpy(buf + 1, c, n);
  }
  buf[0] = ctl;
  emit(buf, n + 1);
  free(c);
}

void fuzz_seeds(fuzz_emit_fn emit) {
  /* One query: node up{instance, job} with a staleness marker between two samples. */
  w_t ts = {0}, qr = {0}, resp = {0};
  w_label(&ts, "__name__", "up");
  w_label(&ts, "instance", "a:9100");
  w_label(&ts, "job", "node");
  w_sample(&ts, f64(1), 1700000000000);
  w_sample(&ts, RC_STALE_NAN_BITS, 1700000015000);
  w_sample(&ts, f64(0.5), 1700000030000);
  w_bytes(&qr, 1, ts.b, ts.n);
  w_bytes(&resp, 1, qr.b, qr.n);
  emit_seed(emit, 0x00, &resp);
  emit_seed(emit, 0x80, &resp);
  emit_seed(emit, 0x84, &resp);

  /* Two queries: a counter series and a native-histogram series, then an empty result. */
  w_t a = {0}, h = {0};
  qr.n = resp.n = 0;
  w_label(&a, "__name__", "http_requests_total");
  w_label(&a, "code", "500");
  w_label(&a, "job", "api");
  w_sample(&a, f64(3), 1000);
  w_sample(&a, f64(7), 2000);
  w_label(&h, "__name__", "latency_seconds");
  w_bytes(&h, 4, "\x18\x01\x20\x02", 4); /* histogram {schema: 1, zero_count ...}: dropped */
  w_bytes(&qr, 1, a.b, a.n);
  w_bytes(&qr, 1, h.b, h.n);
  w_bytes(&resp, 1, qr.b, qr.n);
  w_bytes(&resp, 1, "", 0);
  emit_seed(emit, 0x01, &resp);
  emit_seed(emit, 0x81, &resp);

  emit((const uint8_t *)"\x00\x00", 2); /* an empty ReadResponse: no results */
}
