/* decode_bench.c: in-process throughput of ripcord's remote-write decoder (rc_rw_decode: snappy,
 * protobuf-c unpack into the arena, label/histogram validation, conversion into an rc_batch_t)
 * on one core, against the "snappy floor": the time to only snappy_uncompress the same bodies.
 * The ratio decode/snappy says how far the decoder is from the cheapest thing any receiver must
 * do with a request; bench/ingest compares the full HTTP path with the same floor.
 *
 * Input: a directory written by `rwgen --dump DIR` (req-NNNNNN.bin bodies + meta.json). The
 * first pass decodes everything once and checks the totals against meta.json, so a benchmark
 * never times a decoder that rejects its input. --check adds independent checks of the corpus
 * itself (what rwgen promises: sorted unique labels, one sample or histogram per entry, strictly
 * increasing timestamps per series, valid native histograms) and then exits: that is the
 * `meson test` use.
 *
 * Timing: each round times three phases back to back, each over the whole corpus `iterations`
 * times: the full decode, snappy only, and snappy + protobuf-c's generic unpack. The median over
 * the rounds is reported, which keeps a noisy neighbour from skewing one phase more than
 * another. The breakdown is decode = snappy + the rest (protobuf parsing, validation,
 * conversion, arena); the protobuf-c phase is a reference point only, since the daemon's decoder
 * may not use protobuf-c at all. The decoder runs with `ripcord serve`'s defaults, which
 * --serve-flag can change (e.g. to pick another decode backend), without this file knowing the
 * flags.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sched.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "arena.h"
#include "corpus.h"
#include "batch.h"
#include "cli.h"
#include "remote_v1.pb-c.h"
#include "remote_v2.pb-c.h"
#include "rw_decode.h"

#define MAX_ROUNDS 101

/* Keeps the timed work observable, so the compiler cannot drop any of it. */
static volatile uint64_t g_sink;

#define MAX_SERVE_FLAGS 16

typedef struct opts {
  const char *dir;
  char *serve_argv[MAX_SERVE_FLAGS + 3]; /* "ripcord" "serve" flags... NULL */
  int serve_argc;
  int rounds;
  double min_time_s;
  int cpu;
  int check;
  int json_only;
} opts_t;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: decode_bench DIR [flags]\n\n"
          "Replays the request bodies of `rwgen --dump DIR` through rc_rw_decode() on one core\n"
          "and compares it with only snappy-decompressing them.\n\n"
          "  --rounds N      timed rounds, the median is reported (default 5, at most 101)\n"
          "  --min-time S    seconds each phase should take per round (default 0.3)\n"
          "  --cpu N         pin to CPU N first (default: leave as started, e.g. by taskset)\n"
          "  --serve-flag F  a `ripcord serve` flag for the decoder's settings, e.g.\n"
          "                  --serve-flag=--ingest.max-labels=64 (repeatable)\n"
          "  --check         verify the corpus (labels, timestamps, histograms, totals), no timing\n"
          "  --json          print only the JSON line\n"
          "  --help          this text\n");
}

static int parse_args(int argc, char **argv, opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->rounds = 5;
  o->min_time_s = 0.3;
  o->cpu = -1;
  o->serve_argv[0] = "ripcord";
  o->serve_argv[1] = "serve";
  o->serve_argc = 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
    if (strcmp(a, "--check") == 0) {
      o->check = 1;
      continue;
    }
    if (strcmp(a, "--json") == 0) {
      o->json_only = 1;
      continue;
    }
    if (strncmp(a, "--", 2) != 0) {
      if (o->dir != NULL) {
        fprintf(stderr, "decode_bench: error: unexpected argument \"%s\"\n", a);
        return 2;
      }
      o->dir = a;
      continue;
    }
    const char *eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    char *v = eq ? (char *)eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
    if (nl == 12 && strncmp(a, "--serve-flag", 12) == 0) {
      if (v == NULL || o->serve_argc >= MAX_SERVE_FLAGS + 2) {
        fprintf(stderr, "decode_bench: error: --serve-flag needs a value (at most %d)\n",
                MAX_SERVE_FLAGS);
        return 2;
      }
      if (!eq) i++;
      o->serve_argv[o->serve_argc++] = v;
      continue;
    }
    int which = nl == 8 && strncmp(a, "--rounds", 8) == 0     ? 0
                : nl == 10 && strncmp(a, "--min-time", 10) == 0 ? 1
                : nl == 5 && strncmp(a, "--cpu", 5) == 0        ? 2
                                                                : -1;
    if (which < 0) {
      fprintf(stderr, "decode_bench: error: unknown flag \"%.*s\" (try --help)\n", (int)nl, a);
      return 2;
    }
    if (v == NULL) {
      fprintf(stderr, "decode_bench: error: %.*s needs a value\n", (int)nl, a);
      return 2;
    }
    if (!eq) i++;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end != '\0') d = -1;
    if (which == 0 && (d < 1 || d > MAX_ROUNDS || d != (int)d)) {
      fprintf(stderr, "decode_bench: error: --rounds: \"%s\" is not a count in 1..%d\n", v,
              MAX_ROUNDS);
      return 2;
    }
    if (which == 1 && !(d > 0 && d <= 600)) {
      fprintf(stderr, "decode_bench: error: --min-time: \"%s\" is not seconds in (0, 600]\n", v);
      return 2;
    }
    if (which == 2 && (d < 0 || d > 4095 || d != (int)d)) {
      fprintf(stderr, "decode_bench: error: --cpu: \"%s\" is not a CPU number\n", v);
      return 2;
    }
    if (which == 0) o->rounds = (int)d;
    else if (which == 1) o->min_time_s = d;
    else o->cpu = (int)d;
  }
  if (o->dir == NULL) {
    fprintf(stderr, "decode_bench: error: no corpus directory given (try --help)\n");
    return 2;
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Correctness: one decode pass against meta.json, and --check's independent corpus checks
 *----------------------------------------------------------------------------------------*/

/* Per-metric totals from decoded batches, compared with meta.json's "metrics". */
static int decode_pass_matches(rc_rw_decoder_t *d, const corpus_t *c, int check_metrics) {
  uint64_t s = 0, h = 0, n = 0;
  json_t *seen = json_object();
  int rc = 0;
  for (size_t i = 0; i < c->n && rc == 0; i++) {
    rc_batch_t *b;
    rc_rw_result_t res;
    if (rc_rw_decode(d, c->protocol, c->p[i].data, c->p[i].len, &b, &res) != 0) {
      fprintf(stderr, "decode_bench: error: payload %zu refused: %s\n", i, res.msg);
      rc = -1;
      break;
    }
    if (res.invalid_series) {
      fprintf(stderr, "decode_bench: error: payload %zu: %u invalid series, first: %s\n", i,
              res.invalid_series, res.msg);
      rc = -1;
    }
    s += b->nsamples;
    h += b->nhistograms;
    n += b->nseries;
    for (uint32_t k = 0; check_metrics && seen != NULL && k < b->nseries; k++) {
      const rc_series_t *se = &b->series[k];
      char name[256];
      snprintf(name, sizeof(name), "%.*s", (int)se->metric_len, se->metric);
      json_t *e = json_object_get(seen, name);
      if (e == NULL) {
        e = json_pack("{s:I,s:I,s:I}", "series", (json_int_t)0, "samples", (json_int_t)0,
                      "histograms", (json_int_t)0);
        json_object_set_new(seen, name, e);
      }
      const char *keys[3] = {"series", "samples", "histograms"};
      uint64_t add[3] = {1, se->nsamples, se->nhistograms};
      for (int q = 0; q < 3; q++) {
        json_t *x = json_object_get(e, keys[q]);
        json_integer_set(x, json_integer_value(x) + (json_int_t)add[q]);
      }
    }
    rc_batch_free(b);
  }
  if (rc == 0 && (s != c->samples || h != c->histograms || n != c->series)) {
    fprintf(stderr,
            "decode_bench: error: decoded %" PRIu64 " samples, %" PRIu64 " histograms, %" PRIu64
            " series; meta.json says %" PRIu64 ", %" PRIu64 ", %" PRIu64 "\n",
            s, h, n, c->samples, c->histograms, c->series);
    rc = -1;
  }
  if (rc == 0 && check_metrics) {
    json_t *want = json_object_get(c->meta, "metrics");
    if (seen == NULL || !json_equal(seen, want)) {
      char *a = json_dumps(seen, JSON_COMPACT | JSON_SORT_KEYS);
      char *b = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
      fprintf(stderr, "decode_bench: error: per-metric totals differ\n  decoded: %s\n  meta:    %s\n",
              a ? a : "?", b ? b : "?");
      free(a);
      free(b);
      rc = -1;
    }
  }
  json_decref(seen);
  return rc;
}

/* Last timestamp per series, keyed by a hash of the label set (open addressing). */
typedef struct tsmap {
  uint64_t *key;
  int64_t *last;
  size_t cap, used;
} tsmap_t;

static int tsmap_check(tsmap_t *m, uint64_t key, int64_t ts) {
  if (m->used * 2 >= m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 4096;
    uint64_t *k = calloc(cap, sizeof(*k));
    int64_t *l = calloc(cap, sizeof(*l));
    if (k == NULL || l == NULL) {
      free(k);
      free(l);
      return -1;
    }
    for (size_t i = 0; i < m->cap; i++) {
      if (m->key[i] == 0) continue;
      size_t j = m->key[i] & (cap - 1);
      while (k[j]) j = (j + 1) & (cap - 1);
      k[j] = m->key[i];
      l[j] = m->last[i];
    }
    free(m->key);
    free(m->last);
    m->key = k;
    m->last = l;
    m->cap = cap;
  }
  if (key == 0) key = 1; /* 0 marks an empty slot */
  size_t j = key & (m->cap - 1);
  while (m->key[j] && m->key[j] != key) j = (j + 1) & (m->cap - 1);
  if (m->key[j] == 0) {
    m->key[j] = key;
    m->last[j] = ts;
    m->used++;
    return 0;
  }
  if (ts <= m->last[j]) return 1;
  m->last[j] = ts;
  return 0;
}

typedef struct lview {
  const uint8_t *n, *v;
  size_t nl, vl;
} lview_t;

static int bytes_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl) {
  size_t m = al < bl ? al : bl;
  int c = m ? memcmp(a, b, m) : 0;
  return c ? c : (al > bl) - (al < bl);
}

/* Labels sorted by name, unique, no empty name or value, __name__ present; returns a hash. */
static const char *check_labels(const lview_t *l, size_t n, uint64_t *hash) {
  uint64_t h = 0;
  int has_name = 0;
  if (n < 8 || n > 10) return "label count outside 8..10";
  for (size_t i = 0; i < n; i++) {
    if (l[i].nl == 0 || l[i].vl == 0) return "empty label name or value";
    if (i > 0 && bytes_cmp(l[i - 1].n, l[i - 1].nl, l[i].n, l[i].nl) >= 0)
      return "labels not sorted by name, or a name repeats";
    if (l[i].nl == 8 && memcmp(l[i].n, "__name__", 8) == 0) has_name = 1;
    /* Chained through the seed, name and value separately: no separator ambiguity. */
    h = XXH3_64bits_withSeed(l[i].n, l[i].nl, h);
    h = XXH3_64bits_withSeed(l[i].v, l[i].vl, h ^ UINT64_C(0x9e3779b97f4a7c15));
  }
  if (!has_name) return "no __name__ label";
  *hash = h;
  return NULL;
}

/* Integer native histogram, schema 3, by Prometheus' rules; count must equal exactly. */
#define CHECK_HIST(h, PFX, why)                                                                   \
  do {                                                                                            \
    uint64_t span_total = 0, buckets = 0;                                                         \
    int64_t cur = 0;                                                                              \
    if ((h)->count_case != PFX##__COUNT_COUNT_INT) why = "not an integer histogram";              \
    else if ((h)->schema != 3) why = "schema is not 3";                                           \
    else if ((h)->n_positive_spans == 0 || (h)->n_positive_deltas == 0) why = "no buckets";       \
    for (size_t k_ = 0; !why && k_ < (h)->n_positive_spans; k_++)                                 \
      span_total += (h)->positive_spans[k_]->length;                                             \
    if (!why && span_total != (h)->n_positive_deltas) why = "span lengths != number of deltas";   \
    for (size_t k_ = 0; !why && k_ < (h)->n_positive_deltas; k_++) {                              \
      cur += (h)->positive_deltas[k_];                                                            \
      if (cur < 0) why = "a bucket count goes negative";                                          \
      buckets += (uint64_t)cur;                                                                   \
    }                                                                                             \
    if (!why && (h)->zero_count_case != PFX##__ZERO_COUNT_ZERO_COUNT_INT) why = "no zero bucket"; \
    if (!why && (h)->count_int != (h)->zero_count_int + buckets)                                  \
      why = "count != zero_count + buckets";                                                      \
  } while (0)

static int check_corpus(const corpus_t *c) {
  char *buf = malloc(c->max_ulen ? c->max_ulen : 1);
  tsmap_t m = {0};
  lview_t lv[32];
  int rc = 0;
  uint64_t entries = 0;
  if (buf == NULL) return -1;
  for (size_t i = 0; i < c->n && rc == 0; i++) {
    size_t ulen = c->max_ulen;
    if (snappy_uncompress(c->p[i].data, c->p[i].len, buf, &ulen) != SNAPPY_OK) {
      fprintf(stderr, "check: payload %zu: snappy block does not decompress\n", i);
      rc = -1;
      break;
    }
    const char *why = NULL;
    size_t bad = 0;
    if (c->protocol == 1) {
      Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, ulen, (uint8_t *)buf);
      if (wr == NULL) {
        fprintf(stderr, "check: payload %zu: not a WriteRequest\n", i);
        rc = -1;
        break;
      }
      for (size_t k = 0; k < wr->n_timeseries && !why; k++) {
        const Prometheus__TimeSeries *ts = wr->timeseries[k];
        bad = k;
        if (ts->n_labels > 32) {
          why = "too many labels";
          break;
        }
        for (size_t q = 0; q < ts->n_labels; q++)
          lv[q] = (lview_t){ts->labels[q]->name.data, ts->labels[q]->value.data,
                            ts->labels[q]->name.len, ts->labels[q]->value.len};
        uint64_t hash = 0;
        why = check_labels(lv, ts->n_labels, &hash);
        if (why) break;
        if (ts->n_samples + ts->n_histograms != 1 || ts->n_exemplars) {
          why = "entry does not carry exactly one sample or histogram";
          break;
        }
        int64_t t = ts->n_samples ? ts->samples[0]->timestamp : ts->histograms[0]->timestamp;
        if (ts->n_histograms) CHECK_HIST(ts->histograms[0], PROMETHEUS__HISTOGRAM, why);
        if (!why && tsmap_check(&m, hash, t) != 0) why = "timestamp not strictly increasing";
        entries++;
      }
      prometheus__write_request__free_unpacked(wr, NULL);
    } else {
      Io__Prometheus__Write__V2__Request *rq =
          io__prometheus__write__v2__request__unpack(NULL, ulen, (uint8_t *)buf);
      if (rq == NULL) {
        fprintf(stderr, "check: payload %zu: not a v2 Request\n", i);
        rc = -1;
        break;
      }
      if (rq->n_symbols == 0 || rq->symbols[0].len != 0) why = "symbols[0] is not \"\"";
      for (size_t k = 0; k < rq->n_timeseries && !why; k++) {
        const Io__Prometheus__Write__V2__TimeSeries *ts = rq->timeseries[k];
        bad = k;
        size_t nl = ts->n_labels_refs / 2;
        if (ts->n_labels_refs % 2 || nl > 32) {
          why = "odd or too many labels_refs";
          break;
        }
        for (size_t q = 0; q < ts->n_labels_refs && !why; q++)
          if (ts->labels_refs[q] >= rq->n_symbols) why = "labels_refs outside the symbols";
        if (why) break;
        for (size_t q = 0; q < nl; q++) {
          const ProtobufCBinaryData *n = &rq->symbols[ts->labels_refs[2 * q]];
          const ProtobufCBinaryData *v = &rq->symbols[ts->labels_refs[2 * q + 1]];
          lv[q] = (lview_t){n->data, v->data, n->len, v->len};
        }
        uint64_t hash = 0;
        why = check_labels(lv, nl, &hash);
        if (why) break;
        if (ts->n_samples + ts->n_histograms != 1 || ts->n_exemplars) {
          why = "entry does not carry exactly one sample or histogram";
          break;
        }
        if (ts->metadata == NULL || ts->metadata->type == 0) {
          why = "no metadata type";
          break;
        }
        int64_t t = ts->n_samples ? ts->samples[0]->timestamp : ts->histograms[0]->timestamp;
        if (ts->n_histograms)
          CHECK_HIST(ts->histograms[0], IO__PROMETHEUS__WRITE__V2__HISTOGRAM, why);
        if (!why && tsmap_check(&m, hash, t) != 0) why = "timestamp not strictly increasing";
        entries++;
      }
      io__prometheus__write__v2__request__free_unpacked(rq, NULL);
    }
    if (why) {
      fprintf(stderr, "check: payload %zu, entry %zu: %s\n", i, bad, why);
      rc = -1;
    }
  }
  if (rc == 0 && entries != c->series) {
    fprintf(stderr, "check: %" PRIu64 " entries, meta.json says %" PRIu64 "\n", entries, c->series);
    rc = -1;
  }
  if (rc == 0)
    printf("check: %zu payloads, %" PRIu64 " entries over %zu distinct series: labels sorted and "
           "unique, timestamps strictly increasing, histograms valid\n",
           c->n, entries, m.used);
  free(buf);
  free(m.key);
  free(m.last);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Timed phases
 *----------------------------------------------------------------------------------------*/

enum { PH_DECODE, PH_SNAPPY, PH_UNPACK, PH__COUNT };
static const char *const phase_names[PH__COUNT] = {"decode", "snappy", "protobuf-c unpack"};

/* Returns elapsed ns for `iters` passes of phase ph over the corpus, or 0 on failure. */
static uint64_t run_phase(int ph, rc_rw_decoder_t *d, const corpus_t *c, char *buf, int iters,
                          uint64_t *sink) {
  uint64_t t0 = now_ns();
  for (int it = 0; it < iters; it++) {
    for (size_t i = 0; i < c->n; i++) {
      const payload_t *p = &c->p[i];
      if (ph == PH_DECODE) {
        rc_batch_t *b;
        rc_rw_result_t res;
        if (rc_rw_decode(d, c->protocol, p->data, p->len, &b, &res) != 0) return 0;
        *sink += b->nsamples;
        rc_batch_free(b);
        continue;
      }
      /* What the decoder does first: read the declared length, then decompress into a
       * buffer that is reused across requests. */
      size_t ulen;
      if (snappy_uncompressed_length(p->data, p->len, &ulen) != SNAPPY_OK ||
          snappy_uncompress(p->data, p->len, buf, &ulen) != SNAPPY_OK)
        return 0;
      *sink += (unsigned char)buf[ulen / 2];
      if (ph == PH_UNPACK) {
        /* Same arena sizing and limit as rc_rw_decode, so this is its unpack step alone. */
        rc_arena_t a;
        rc_arena_init(&a, ulen * 3 + 4096, d->lim.max_arena_bytes);
        void *msg = c->protocol == 1
                        ? (void *)prometheus__write_request__unpack(rc_arena_pb(&a), ulen,
                                                                    (uint8_t *)buf)
                        : (void *)io__prometheus__write__v2__request__unpack(rc_arena_pb(&a), ulen,
                                                                             (uint8_t *)buf);
        rc_arena_free(&a);
        if (msg == NULL) return 0;
      }
    }
  }
  uint64_t el = now_ns() - t0;
  return el ? el : 1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  opts_t o;
  int prc = parse_args(argc, argv, &o);
  if (prc == 1) {
    usage(stdout);
    return 0;
  }
  if (prc != 0) return 2;
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.cpu, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      fprintf(stderr, "decode_bench: error: cannot pin to CPU %d: %s\n", o.cpu, strerror(errno));
      return 2;
    }
  }
  corpus_t c;
  if (bench_corpus_load(o.dir, &c) != 0) {
    bench_corpus_free(&c);
    return 1;
  }
  /* The daemon's own defaults (limits, name validation), taken from its flag parser so the
   * benchmark can never drift from what `ripcord serve` runs with. */
  rc_options_t ro;
  rc_err_t err;
  if (rc_cli_parse(o.serve_argc, o.serve_argv, &ro, &err) != 0) {
    fprintf(stderr, "decode_bench: error: ripcord serve flags: %s\n", err.msg);
    bench_corpus_free(&c);
    return 1;
  }
  rc_rw_decoder_t dec;
  rc_rw_decoder_init(&dec, &ro.ingest.limits);
  char *buf = malloc(c.max_ulen ? c.max_ulen : 1);
  int rc = 1;
  if (buf == NULL) goto out;

  uint64_t t0 = now_ns();
  if (decode_pass_matches(&dec, &c, 1) != 0) goto out;
  uint64_t first_ns = now_ns() - t0;
  if (o.check) {
    rc = check_corpus(&c) == 0 ? 0 : 1;
    if (rc == 0) printf("check: rc_rw_decode agrees with meta.json, per metric\n");
    goto out;
  }

  int iters = (int)(o.min_time_s * 1e9 / (double)(first_ns ? first_ns : 1)) + 1;
  if (iters > 1000000) iters = 1000000;
  uint64_t times[PH__COUNT][MAX_ROUNDS], sink = 0;
  for (int r = 0; r < o.rounds; r++)
    for (int ph = 0; ph < PH__COUNT; ph++) {
      times[ph][r] = run_phase(ph, &dec, &c, buf, iters, &sink);
      if (times[ph][r] == 0) {
        fprintf(stderr, "decode_bench: error: phase %s failed on a payload that decoded before\n",
                phase_names[ph]);
        goto out;
      }
    }
  double med[PH__COUNT]; /* ns per pass over the corpus */
  for (int ph = 0; ph < PH__COUNT; ph++) {
    qsort(times[ph], (size_t)o.rounds, sizeof(uint64_t), cmp_u64);
    uint64_t mid = o.rounds % 2 ? times[ph][o.rounds / 2]
                                : (times[ph][o.rounds / 2 - 1] + times[ph][o.rounds / 2]) / 2;
    med[ph] = (double)mid / iters;
  }
  double per_pass = (double)(c.samples + c.histograms);
  double rate[PH__COUNT];
  for (int ph = 0; ph < PH__COUNT; ph++) rate[ph] = per_pass / (med[ph] / 1e9);
  double ratio = med[PH_DECODE] / med[PH_SNAPPY];
  double rest = med[PH_DECODE] - med[PH_SNAPPY];
  if (!o.json_only) {
    printf("decode_bench: protocol %d, %zu payloads, %.0f samples+histograms per pass "
           "(%" PRIu64 " histograms), %.2f MiB compressed, %.2f MiB decoded\n",
           c.protocol, c.n, per_pass, c.histograms, (double)c.bytes / 1048576.0,
           (double)c.decoded_bytes / 1048576.0);
    printf("  %d rounds x %d passes, median per pass, one core:\n", o.rounds, iters);
    printf("  rc_rw_decode          %9.3f ms  %12.0f samples/s  %8.1f MB/s decoded\n",
           med[PH_DECODE] / 1e6, rate[PH_DECODE], (double)c.decoded_bytes / med[PH_DECODE] * 1e3);
    printf("  snappy floor          %9.3f ms  %12.0f samples/s  %8.1f MB/s decoded\n",
           med[PH_SNAPPY] / 1e6, rate[PH_SNAPPY], (double)c.decoded_bytes / med[PH_SNAPPY] * 1e3);
    printf("  snappy + protobuf-c   %9.3f ms  %12.0f samples/s  (reference: generic unpack)\n",
           med[PH_UNPACK] / 1e6, rate[PH_UNPACK]);
    printf("  decode = snappy %.0f%% + parse/validate/convert %.0f%%\n",
           100 * med[PH_SNAPPY] / med[PH_DECODE], 100 * rest / med[PH_DECODE]);
    printf("  ratio decode/snappy   %.2f\n", ratio);
  }
  json_t *j = json_pack(
      "{s:i,s:I,s:I,s:I,s:I,s:I,s:i,s:i,"
      "s:{s:f,s:f},s:{s:f,s:f},s:{s:f,s:f},s:f,s:f}",
      "protocol", c.protocol, "payloads", (json_int_t)c.n, "samples_per_pass",
      (json_int_t)c.samples, "histograms_per_pass", (json_int_t)c.histograms, "bytes",
      (json_int_t)c.bytes, "decoded_bytes", (json_int_t)c.decoded_bytes, "rounds", o.rounds,
      "iterations", iters, "decode", "ns_per_pass", med[PH_DECODE], "samples_per_s",
      rate[PH_DECODE], "snappy", "ns_per_pass", med[PH_SNAPPY], "samples_per_s", rate[PH_SNAPPY],
      "protobuf_c_unpack", "ns_per_pass", med[PH_UNPACK], "samples_per_s", rate[PH_UNPACK],
      "ratio", ratio, "rest_ns_per_pass", rest);
  char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  printf("%s\n", s ? s : "{\"error\":\"cannot render JSON\"}");
  free(s);
  json_decref(j);
  g_sink = sink;
  rc = 0;
out:
  free(buf);
  rc_rw_decoder_close(&dec);
  bench_corpus_free(&c);
  return rc;
}
