/* corpus.c: loading an rwgen --dump corpus; see corpus.h. */
#include "corpus.h"

#include <errno.h>
#include <inttypes.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_file(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return -1;
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  while (b != NULL) {
    size_t r = fread(b + n, 1, cap - n, f);
    n += r;
    if (n < cap) break;
    char *nb = realloc(b, cap * 2);
    if (nb == NULL) {
      free(b);
      b = NULL;
      break;
    }
    b = nb;
    cap *= 2;
  }
  int bad = b == NULL || ferror(f);
  fclose(f);
  if (bad) {
    free(b);
    return -1;
  }
  *out = b;
  *len = n;
  return 0;
}

static uint64_t meta_u64(json_t *meta, const char *key, int *ok) {
  json_t *v = json_object_get(meta, key);
  if (!json_is_integer(v) || json_integer_value(v) < 0) {
    fprintf(stderr, "bench: error: meta.json has no valid \"%s\"\n", key);
    *ok = 0;
    return 0;
  }
  return (uint64_t)json_integer_value(v);
}

int bench_corpus_load(const char *dir, corpus_t *c) {
  char path[4096];
  json_error_t je;
  memset(c, 0, sizeof(*c));
  snprintf(path, sizeof(path), "%s/meta.json", dir);
  c->meta = json_load_file(path, 0, &je);
  if (c->meta == NULL) {
    fprintf(stderr, "bench: error: %s: %s (line %d)\n", path, je.text, je.line);
    return -1;
  }
  int ok = 1;
  c->protocol = (int)meta_u64(c->meta, "protocol", &ok);
  uint64_t count = meta_u64(c->meta, "count", &ok);
  c->samples = meta_u64(c->meta, "samples", &ok);
  c->histograms = meta_u64(c->meta, "histograms", &ok);
  c->series = meta_u64(c->meta, "series", &ok);
  if (!ok) return -1;
  if (c->protocol != 1 && c->protocol != 2) {
    fprintf(stderr, "bench: error: meta.json: protocol must be 1 or 2\n");
    return -1;
  }
  if (count == 0 || count > 10000000) {
    fprintf(stderr, "bench: error: meta.json: count %" PRIu64 " out of range\n", count);
    return -1;
  }
  c->p = calloc(count, sizeof(*c->p));
  if (c->p == NULL) return -1;
  for (uint64_t i = 0; i < count; i++) {
    snprintf(path, sizeof(path), "%s/req-%06" PRIu64 ".bin", dir, i);
    if (read_file(path, &c->p[i].data, &c->p[i].len) != 0) {
      fprintf(stderr, "bench: error: cannot read %s: %s\n", path, strerror(errno));
      return -1;
    }
    c->n++;
    c->bytes += c->p[i].len;
    size_t ulen;
    if (snappy_uncompressed_length(c->p[i].data, c->p[i].len, &ulen) != SNAPPY_OK) {
      fprintf(stderr, "bench: error: %s is not a snappy block\n", path);
      return -1;
    }
    c->decoded_bytes += ulen;
    if (ulen > c->max_ulen) c->max_ulen = ulen;
  }
  return 0;
}

void bench_corpus_free(corpus_t *c) {
  for (size_t i = 0; i < c->n; i++) free(c->p[i].data);
  free(c->p);
  json_decref(c->meta);
}

