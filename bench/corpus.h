/* corpus.h: a remote-write corpus written by `rwgen --dump DIR` (req-NNNNNN.bin snappy
 * bodies + meta.json with rwgen's own totals), loaded into memory for the in-process
 * benchmarks (decode_bench, scale_bench). */
#ifndef RC_BENCH_CORPUS_H
#define RC_BENCH_CORPUS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct payload {
  char *data;
  size_t len;
} payload_t;

typedef struct corpus {
  int protocol;
  size_t n;
  payload_t *p;
  uint64_t samples, histograms, series; /* per pass, from meta.json */
  size_t bytes, decoded_bytes, max_ulen;
  json_t *meta;
} corpus_t;

/* Returns 0, or -1 with the reason on stderr. Call bench_corpus_free either way. */
int bench_corpus_load(const char *dir, corpus_t *c);
void bench_corpus_free(corpus_t *c);

#endif
