/* fuzz_rw_decode.c: rc_rw_decode() on arbitrary bytes. The first byte picks the protocol
 * version; the rest is the HTTP body. Seeds are valid v1 and v2 bodies from rwbuild.c, raw
 * (so mutations reach the snappy layer) and wrapped (so they reach protobuf). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rw_decode.h"
#include "rwbuild.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  rc_rw_limits_t lim = {.max_decoded_bytes = 4u << 20,
                        .max_arena_bytes = 64u << 20,
                        .labels = {.max_labels = 64, .max_label_bytes = 16384}};
  rc_rw_decoder_t d;
  rc_rw_decoder_init(&d, &lim);
  rc_batch_t *b = NULL;
  rc_rw_result_t r;
  int version = (data[0] & 1) ? 2 : 1;
  if (rc_rw_decode(&d, version, (const char *)data + 1, size - 1, &b, &r) == 0) {
    /* Touch everything the batch claims to hold, so a bad pointer is caught here. */
    volatile double sink = 0;
    for (uint32_t i = 0; i < b->nseries; i++) {
      const rc_series_t *s = &b->series[i];
      for (uint32_t k = 0; k < s->nlabels; k++)
        sink += s->labels[k].name[s->labels[k].name_len ? s->labels[k].name_len - 1 : 0];
      for (uint32_t k = 0; k < s->nsamples; k++) sink += s->samples[k].value;
      for (uint32_t k = 0; k < s->nhistograms; k++) sink += s->histograms[k].count;
    }
    (void)sink;
    rc_batch_free(b);
  }
  rc_rw_decoder_close(&d);
  return 0;
}

static void emit_body(fuzz_emit_fn emit, int version, char *body, size_t len) {
  uint8_t *buf = malloc(len + 1);
  if (buf == NULL) abort();
  buf[0] = (uint8_t)(version == 2);
  memcpy(buf + 1, body, len);
  emit(buf, len + 1);
  free(buf);
  free(body);
}

void fuzz_seeds(fuzz_emit_fn emit) {
  for (int v = 1; v <= 2; v++) {
    rwb_t *b = rwb_new(v);
    rwb_series(b, "__name__=http_requests_total,job=api,code=500,method=GET");
    rwb_sample(b, 3, 1000);
    rwb_exemplar(b, 1, 1000);
    int64_t d[] = {1, 2, -1};
    rwb_series(b, "__name__=latency,job=api");
    rwb_int_histogram(b, 1000, 9, 1.5, 3, 4, d, 3, 3);
    if (v == 1) rwb_metadata(b, "http_requests_total");
    size_t len;
    /* Not emit_body(..., rwb_finish(b, &len), len): the order in which arguments are
     * evaluated is unspecified, and len was read before it was set (ASan, MALLOC_PERTURB_). */
    char *body = rwb_finish(b, &len);
    emit_body(emit, v, body, len);
  }
  emit((const uint8_t *)"\x00\x00", 2);
}
