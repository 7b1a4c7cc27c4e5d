/* replay.c: runs a fuzz target without libFuzzer — every seed from fuzz_seeds() with ROUNDS
 * deterministic mutations of each (bit flips, byte overwrites with interesting values,
 * truncations, duplications of a span), then every file given on the command line or found in
 * a directory given there (the target's corpus under tests/fuzz/corpus/, grown by libFuzzer
 * from real payloads: scripts/fuzz) with CORPUS_ROUNDS mutations each. It finds less than
 * coverage-guided fuzzing, but it runs in CI on every change, under the sanitizers when the
 * build has them, and any input that crashes becomes a reproducible seed. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* A target whose every execution is costly (fuzz_http: a TCP connection, worker threads and
 * SQLite per input) sets fewer rounds from tests/fuzz/meson.build, so that the 'fuzz' suite
 * stays within its timeout on a small machine instead of the timeout growing. */
#ifndef ROUNDS
#define ROUNDS 3000
#endif
#define CORPUS_ROUNDS (ROUNDS / 300) /* a corpus has thousands of inputs, each already new */
#define MAX_SEEDS 64
#define MAX_FILE (1u << 20)

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

static void mutate_and_run(const uint8_t *src, size_t n, int rounds) {
  size_t cap = n * 2 + 16;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) abort();
  for (int r = 0; r < rounds; r++) {
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

static unsigned long corpus_files;

/* Runs one corpus file and a few mutations of it. */
static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 2;
  }
  static uint8_t fbuf[MAX_FILE];
  size_t n = fread(fbuf, 1, sizeof(fbuf), f);
  fclose(f);
  run(fbuf, n);
  uint8_t *copy = malloc(n ? n : 1);
  if (copy == NULL) abort();
  memcpy(copy, fbuf, n);
  mutate_and_run(copy, n, CORPUS_ROUNDS);
  free(copy);
  corpus_files++;
  return 0;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A file, or every regular file of a directory in name order (the same order every run). */
static int run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    /* meson passes each target's corpus directory whether it has one or not. */
    if (strstr(path, "/corpus/") != NULL) {
      printf("replay: no corpus at %s\n", path);
      return 0;
    }
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 2;
  }
  if (!S_ISDIR(st.st_mode)) return run_file(path);
  DIR *d = opendir(path);
  if (d == NULL) return 2;
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof(*names));
      if (nn == NULL) abort();
      names = nn;
    }
    size_t len = strlen(path) + strlen(e->d_name) + 2;
    names[n] = malloc(len);
    if (names[n] == NULL) abort();
    snprintf(names[n++], len, "%s/%s", path, e->d_name);
  }
  closedir(d);
  qsort(names, n, sizeof(*names), cmp_names);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    if (rc == 0) rc = run_file(names[i]);
    free(names[i]);
  }
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  fuzz_seeds(keep_seed);
  if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) return write_seeds(argv[2]);
  for (size_t i = 0; i < nseeds; i++) run(seeds[i], seed_len[i]);
  for (size_t i = 0; i < nseeds; i++) mutate_and_run(seeds[i], seed_len[i], ROUNDS);
  for (int i = 1; i < argc; i++)
    if (run_path(argv[i]) != 0) return 2;
  printf("replay: %zu seeds, %lu corpus files, %llu executions, no crash\n", nseeds,
         corpus_files, executions);
  for (size_t i = 0; i < nseeds; i++) free(seeds[i]);
  return 0;
}
