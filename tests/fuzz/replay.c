/* replay.c: runs a fuzz target without libFuzzer — every seed from fuzz_seeds(), every file
 * given on the command line, and ROUNDS deterministic mutations of each seed (bit flips, byte
 * overwrites with interesting values, truncations, duplications of a span). It finds less than
 * coverage-guided fuzzing, but it runs in CI on every change, under the sanitizers when the
 * build has them, and any input that crashes becomes a reproducible seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* A target whose every execution is costly (fuzz_http: a TCP connection, worker threads and
 * SQLite per input) sets fewer rounds from tests/fuzz/meson.build, so that the 'fuzz' suite
 * stays within its timeout on a small machine instead of the timeout growing. */
#ifndef ROUNDS
#define ROUNDS 3000
#endif
#define MAX_SEEDS 64

static uint8_t *seeds[MAX_SEEDS];
static size_t seed_len[MAX_SEEDS];
static size_t nseeds;
static unsigned long long executions;

static void keep_seed(const uint8_t *d, size_t n) {
  if (nseeds >= MAX_SEEDS) return;
  seeds[nseeds] = malloc(n ? n : 1);
  if (seeds[nseeds] == NULL) abort();
  memcpy(seeds[nseeds], d, n);
  seed_len[nseeds++] = n;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void) { /* xorshift64*: deterministic across runs */
  rng ^= rng >> 12;
  rng ^= rng << 25;
  rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}

static void run(const uint8_t *d, size_t n) {
  LLVMFuzzerTestOneInput(d, n);
  executions++;
}

static void mutate_and_run(const uint8_t *src, size_t n) {
  size_t cap = n * 2 + 16;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) abort();
  for (int r = 0; r < ROUNDS; r++) {
    size_t len = n;
    memcpy(buf, src, n);
    int edits = 1 + (int)(next_rand() % 4);
    for (int e = 0; e < edits && len > 0; e++) {
      size_t pos = next_rand() % len;
      switch (next_rand() % 5) {
        case 0: buf[pos] ^= (uint8_t)(1u << (next_rand() % 8)); break;
        case 1: {
          static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x22};
          buf[pos] = interesting[next_rand() % sizeof(interesting)];
          break;
        }
        case 2: len = pos; break; /* truncate */
        case 3: {                 /* duplicate a span */
          size_t span = 1 + next_rand() % 8;
          if (pos + span > len) span = len - pos;
          if (len + span <= cap) {
            memmove(buf + pos + span, buf + pos, len - pos);
            len += span;
          }
          break;
        }
        default: buf[pos] = (uint8_t)next_rand(); break;
      }
    }
    run(buf, len);
  }
  free(buf);
}

/* --write-seeds DIR: store the built-in seeds as files, to start a libFuzzer corpus. */
static int write_seeds(const char *dir) {
  for (size_t i = 0; i < nseeds; i++) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/seed-%02zu", dir, i);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(seeds[i], 1, seed_len[i], f) != seed_len[i]) {
      fprintf(stderr, "replay: cannot write %s\n", path);
      if (f) fclose(f);
      return 2;
    }
    fclose(f);
  }
  printf("replay: wrote %zu seeds to %s\n", nseeds, dir);
  return 0;
}

int main(int argc, char **argv) {
  fuzz_seeds(keep_seed);
  if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (f == NULL) {
      fprintf(stderr, "replay: cannot open %s\n", argv[i]);
      return 2;
    }
    static uint8_t fbuf[1 << 20];
    size_t n = fread(fbuf, 1, sizeof(fbuf), f);
    fclose(f);
    keep_seed(fbuf, n);
  }
  for (size_t i = 0; i < nseeds; i++) run(seeds[i], seed_len[i]);
  for (size_t i = 0; i < nseeds; i++) mutate_and_run(seeds[i], seed_len[i]);
  printf("replay: %zu seeds, %llu executions, no crash\n", nseeds, executions);
  for (size_t i = 0; i < nseeds; i++) free(seeds[i]);
  return 0;
}
