/* fuzz_rw_diff.c: differential target — the zero-copy wire reader (rw_wire.c) and the
 * protobuf-c reference (rw_pbc.c) must give the same answer for every input: the same
 * success or failure and reason, the same dropped series and first problem, and the same
 * series, labels, samples and histograms. The wire decoder runs with lazy_labels, as the
 * ingest workers do: its labels are compared as rc_rw_series_labels gives them, and the
 * identity it hands the store must be the hash of those labels. The input is raw protobuf (byte 0 picks the
 * version); the target snappy-compresses it so that mutations land in the protobuf layer.
 * Any disagreement aborts, which is what a fuzzer reports as a finding. */
#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rw_decode.h"
#include "rwbuild.h"
#include "selindex.h"

static const uint8_t *g_input;
static size_t g_input_len;

/* Reports the disagreement with the input in hex (the replay driver has no crash files). */
static __attribute__((noreturn)) void differ(const char *what) {
  fprintf(stderr, "rw_wire and protobuf-c disagree: %s\ninput (%zu bytes): ", what, g_input_len);
  for (size_t i = 0; i < g_input_len && i < 4096; i++) fprintf(stderr, "%02x", g_input[i]);
  fprintf(stderr, "\n");
  abort();
}

static int same_double(double a, double b) { return memcmp(&a, &b, sizeof(a)) == 0; }

static void compare_hist(const rc_histogram_t *a, const rc_histogram_t *b) {
  if (a->ts_ms != b->ts_ms || a->start_ts_ms != b->start_ts_ms || !same_double(a->count, b->count) ||
      !same_double(a->sum, b->sum) || !same_double(a->zero_threshold, b->zero_threshold) ||
      !same_double(a->zero_count, b->zero_count) || a->schema != b->schema ||
      a->is_float != b->is_float || a->reset_hint != b->reset_hint || a->is_stale != b->is_stale ||
      a->n_neg_spans != b->n_neg_spans || a->n_pos_spans != b->n_pos_spans || a->n_neg != b->n_neg ||
      a->n_pos != b->n_pos || a->n_custom != b->n_custom)
    differ("histogram header");
  for (uint32_t i = 0; i < a->n_pos_spans; i++)
    if (a->pos_spans[i].offset != b->pos_spans[i].offset || a->pos_spans[i].length != b->pos_spans[i].length)
      differ("positive span");
  for (uint32_t i = 0; i < a->n_neg_spans; i++)
    if (a->neg_spans[i].offset != b->neg_spans[i].offset || a->neg_spans[i].length != b->neg_spans[i].length)
      differ("negative span");
  for (uint32_t i = 0; i < a->n_pos; i++)
    if (a->is_float ? !same_double(a->pos_counts[i], b->pos_counts[i]) : a->pos_deltas[i] != b->pos_deltas[i])
      differ("positive bucket");
  for (uint32_t i = 0; i < a->n_neg; i++)
    if (a->is_float ? !same_double(a->neg_counts[i], b->neg_counts[i]) : a->neg_deltas[i] != b->neg_deltas[i])
      differ("negative bucket");
  for (uint32_t i = 0; i < a->n_custom; i++)
    if (!same_double(a->custom_values[i], b->custom_values[i])) differ("custom bound");
}

static void compare(const rc_batch_t *a, const rc_batch_t *b) {
  if (a->nseries != b->nseries || a->nsamples != b->nsamples || a->nhistograms != b->nhistograms ||
      a->nexemplars != b->nexemplars || a->nstale != b->nstale || a->nmetadata != b->nmetadata)
    differ("batch totals");
  for (uint32_t i = 0; i < a->nseries; i++) {
    const rc_series_t *x = &a->series[i], *y = &b->series[i];
    if (x->nlabels != y->nlabels || x->nsamples != y->nsamples || x->nhistograms != y->nhistograms ||
        x->nexemplars != y->nexemplars || x->nstale != y->nstale || x->mtype != y->mtype ||
        x->metric_len != y->metric_len || memcmp(x->metric, y->metric, x->metric_len) != 0)
      differ("series header");
    rc_label_t buf[64]; /* the limits' max_labels */
    const rc_label_t *xl = rc_rw_series_labels(x, buf, 64);
    if (xl == NULL) differ("raw labels");
    for (uint32_t k = 0; k < x->nlabels; k++)
      if (xl[k].name_len != y->labels[k].name_len || xl[k].value_len != y->labels[k].value_len ||
          memcmp(xl[k].name, y->labels[k].name, xl[k].name_len) != 0 ||
          memcmp(xl[k].value, y->labels[k].value, xl[k].value_len) != 0)
        differ("label");
    if (x->has_id) {
      rc_selindex_hash_t h = rc_selindex_hash_labels(xl, x->nlabels);
      if (h.lo != x->id_lo || h.hi != x->id_hi) differ("series identity");
    }
    for (uint32_t k = 0; k < x->nsamples; k++)
      if (!same_double(x->samples[k].value, y->samples[k].value) || x->samples[k].ts_ms != y->samples[k].ts_ms ||
          x->samples[k].start_ts_ms != y->samples[k].start_ts_ms)
        differ("sample");
    for (uint32_t k = 0; k < x->nhistograms; k++) compare_hist(&x->histograms[k], &y->histograms[k]);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > (1u << 20)) return 0;
  int version = (data[0] & 1) ? 2 : 1;
  g_input = data;
  g_input_len = size;
  size_t clen = snappy_max_compressed_length(size - 1);
  char *body = malloc(clen ? clen : 1);
  if (body == NULL || snappy_compress((const char *)data + 1, size - 1, body, &clen) != SNAPPY_OK) {
    free(body);
    return 0;
  }
  rc_rw_limits_t lim = {.max_decoded_bytes = 4u << 20,
                        .max_arena_bytes = 256u << 20,
                        .labels = {.max_labels = 64, .max_label_bytes = 16384}};
  /* The wire decoder lives across inputs, so that its label-set cache is warm with label sets
   * of earlier (related, mutated) inputs and its hit path is compared too. */
  static rc_rw_decoder_t dw;
  static int dw_ready;
  if (!dw_ready) {
    rc_rw_decoder_init(&dw, &lim);
    dw.lazy_labels = 1;
    dw_ready = 1;
  }
  rc_rw_decoder_t dp;
  lim.reference_decoder = 1;
  rc_rw_decoder_init(&dp, &lim);
  rc_batch_t *bw = NULL, *bp = NULL;
  rc_rw_result_t rw, rp;
  int cw = rc_rw_decode(&dw, version, body, clen, &bw, &rw);
  if (cw == 0) { /* and once more, now with every label set of this input in the cache */
    rc_batch_free(bw);
    cw = rc_rw_decode(&dw, version, body, clen, &bw, &rw);
  }
  int cp = rc_rw_decode(&dp, version, body, clen, &bp, &rp);
  if (cw != cp || rw.reason != rp.reason) {
    fprintf(stderr, "wire: %d %s '%s'\nprotobuf-c: %d %s '%s'\n", cw, rc_rw_reason_name(rw.reason),
            rw.msg, cp, rc_rw_reason_name(rp.reason), rp.msg);
    differ("status");
  }
  if (cw == 0) {
    if (rw.invalid_series != rp.invalid_series || strcmp(rw.msg, rp.msg) != 0 ||
        memcmp(rw.invalid_by, rp.invalid_by, sizeof(rw.invalid_by)) != 0 ||
        rw.dropped_samples != rp.dropped_samples || rw.dropped_histograms != rp.dropped_histograms ||
        rw.dropped_exemplars != rp.dropped_exemplars) {
      fprintf(stderr, "wire: '%s'\nprotobuf-c: '%s'\n", rw.msg, rp.msg);
      differ("dropped series");
    }
    compare(bw, bp);
  }
  rc_batch_free(bw);
  rc_batch_free(bp);
  rc_rw_decoder_close(&dp);
  free(body);
  return 0;
}

static void emit_raw(fuzz_emit_fn emit, int version, rwb_t *b) {
  size_t len;
  uint8_t *raw = rwb_pack(b, &len);
  rwb_free(b);
  uint8_t *buf = malloc(len + 1);
  if (buf == NULL) abort();
  buf[0] = (uint8_t)(version == 2);
  memcpy(buf + 1, raw, len);
  emit(buf, len + 1);
  free(buf);
  free(raw);
}

void fuzz_seeds(fuzz_emit_fn emit) {
  for (int v = 1; v <= 2; v++) {
    rwb_t *b = rwb_new(v);
    rwb_series(b, "__name__=http_requests_total,job=api,code=500,method=GET");
    rwb_sample(b, 3, 1000);
    rwb_exemplar(b, 1, 1000);
    rwb_series(b, "job=api,__name__=unsorted,le=0.5");
    rwb_sample(b, 1, 1);
    rwb_sample(b, 2, 2);
    emit_raw(emit, v, b);
    b = rwb_new(v);
    int64_t d[] = {1, 2, -1};
    rwb_series(b, "__name__=latency,job=api");
    rwb_int_histogram(b, 1000, 9, 1.5, 3, 4, d, 3, 3);
    rwb_series(b, "__name__=x,job=a,job=b");
    rwb_sample(b, 1, 1);
    if (v == 1) rwb_metadata(b, "latency");
    emit_raw(emit, v, b);
  }
}
