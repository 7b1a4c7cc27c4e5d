/* selector_bench.c: nanoseconds per rule-selection decision (src/selindex.c), one core.
 *
 *   cached    a series seen before: hash the label set, one table lookup (the target is well
 *             under 100 ns for a 9-label series); also with rc_selindex_cache_prefetch over the
 *             batch, which overlaps the cache misses of a table larger than the CPU caches
 *   uncached  a series the current rules have not decided: evaluate it against the candidate
 *             selectors (default 100 rules) and store the decision (timed as a reload: every
 *             pass alternates between two indexes over the same rules, so every decision is
 *             made again and written back in place)
 * plus the parts: the hash alone, and the index match alone.
 *
 * Input is synthetic and deterministic: --rules selectors shaped like alerting rules (by
 * metric name with job/code/path matchers, __name__ regexes and literal sets, name-less
 * selectors, (?i) regexes) and --series distinct 9-label series (__name__ code env instance
 * job method path region service), about a third of which some rule selects. Series are
 * processed in batches of --batch (one remote-write request's worth); before each batch its
 * labels are read once, untimed, because in ripcord they were just decoded and sit in the CPU
 * cache, while the decision table is as cold as its size makes it. Each phase repeats over
 * all series until --min-time; the median of --rounds is reported, so a noisy neighbour skews
 * one round, not the result.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "selindex.h"
#include "selector.h"

#define NLAB 9
#define MAX_ROUNDS 51
#define PREFETCH_AHEAD 8

static volatile uint64_t g_sink; /* keeps timed work observable */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t g_rng = 42;
static uint32_t rnd(uint32_t n) {
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 2685821657736338717ull) >> 33) % n;
}

typedef struct series {
  rc_label_t l[NLAB];
  char buf[NLAB][24];
} series_t;

static const char *const names[NLAB] = {"__name__", "code", "env",    "instance", "job",
                                        "method",   "path", "region", "service"};

static void make_series(series_t *s, uint32_t i) {
  static const char *const codes[] = {"200", "201", "404", "500", "503"};
  static const char *const envs[] = {"prod", "staging", "dev"};
  static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
  static const char *const paths[] = {"/api/v1/users", "/api/v1/orders", "/healthz", "/metrics",
                                      "/api/v2/search"};
  static const char *const regions[] = {"eu-west-1", "us-east-1", "ap-south-1"};
  snprintf(s->buf[0], 24, "metric_%02u", rnd(60));
  snprintf(s->buf[1], 24, "%s", codes[rnd(5)]);
  snprintf(s->buf[2], 24, "%s", envs[rnd(3)]);
  snprintf(s->buf[3], 24, "10.0.%u.%u:9100", (i / 250) % 256, i % 250); /* makes it unique */
  snprintf(s->buf[4], 24, "api-%u", rnd(10));
  snprintf(s->buf[5], 24, "%s", methods[rnd(4)]);
  snprintf(s->buf[6], 24, "%s", paths[rnd(5)]);
  snprintf(s->buf[7], 24, "%s", regions[rnd(3)]);
  snprintf(s->buf[8], 24, "svc-%u", i / 65000);
  for (int k = 0; k < NLAB; k++) /* names[] is already in label order */
    s->l[k] =
        (rc_label_t){names[k], s->buf[k], (uint32_t)strlen(names[k]), (uint32_t)strlen(s->buf[k])};
}

static void make_rule(char *buf, size_t cap, uint32_t i) {
  switch (i % 10) {
    case 0:
    case 1:
    case 2:
      snprintf(buf, cap, "metric_%02u{job=\"api-%u\",code=~\"5..\"}", rnd(30), rnd(10));
      break;
    case 3:
    case 4:
      snprintf(buf, cap, "metric_%02u{env=\"prod\",path!~\"/health.*|/metrics\"}", rnd(30));
      break;
    case 5:
      snprintf(buf, cap, "metric_%02u{method=~\"GET|POST\",region!=\"ap-south-1\"}", rnd(30));
      break;
    case 6: snprintf(buf, cap, "{__name__=~\"metric_0[0-4]\",env=\"prod\",code!=\"200\"}"); break;
    case 7:
      snprintf(buf, cap, "{__name__=~\"metric_%02u|metric_%02u\",job=~\"api-.*\"}", rnd(30),
               rnd(30));
      break;
    case 8:
      snprintf(buf, cap, "{job=\"api-%u\",instance=~\"10\\\\.0\\\\.%u\\\\.[0-9]+:9100\"}", rnd(10),
               rnd(4));
      break;
    default: snprintf(buf, cap, "metric_%02u{path=~\"(?i)/API/V1/.*\"}", rnd(30)); break;
  }
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct opts {
  uint32_t series, rules, batch;
  int rounds;
  double min_time;
} opts_t;

typedef enum { PH_HASH, PH_MATCH, PH_CACHED, PH_PREFETCH, PH_UNCACHED, PH__N } phase_t;

static const char *const phase_name[PH__N] = {
    "hash only (XXH3-128 of 9 labels)", "index match only", "cached decision (hash + lookup)",
    "cached decision, prefetch 8 ahead", "uncached decision (match + store)"};

typedef struct ctx {
  const opts_t *o;
  series_t *s;
  rc_selindex_t *idx, *idx2; /* same rules, two generations */
  rc_matcher_scratch_t *scr;
  rc_selindex_cache_t *warm;
  rc_selindex_hash_t *h;
  int flip;
} ctx_t;

/* Reads every label byte of series [a, b): what decoding the request left in the cache. */
static uint64_t touch(const ctx_t *c, uint32_t a, uint32_t b) {
  uint64_t x = 0;
  for (uint32_t i = a; i < b; i++)
    for (int k = 0; k < NLAB; k++) {
      const rc_label_t *l = &c->s[i].l[k];
      for (uint32_t j = 0; j < l->value_len; j++) x += (unsigned char)l->value[j];
      x += l->name_len;
    }
  return x;
}

/* One pass over all series, batch by batch; returns the timed ns. */
static uint64_t pass(ctx_t *c, phase_t ph) {
  uint64_t sink = 0, ns = 0;
  uint32_t ids[256];
  rc_selindex_decision_t d;
  const rc_selindex_t *idx = c->idx;
  if (ph == PH_UNCACHED) idx = (c->flip ^= 1) ? c->idx2 : c->idx;
  for (uint32_t a = 0; a < c->o->series; a += c->o->batch) {
    uint32_t b = a + c->o->batch < c->o->series ? a + c->o->batch : c->o->series;
    sink += touch(c, a, b);
    uint64_t t0 = now_ns();
    for (uint32_t i = a; i < b; i++) {
      const rc_label_t *l = c->s[i].l;
      switch (ph) {
        case PH_HASH: sink += rc_selindex_hash_labels(l, NLAB).lo; break;
        case PH_MATCH: sink += rc_selindex_match(idx, c->scr, l, NLAB, ids, 256); break;
        case PH_PREFETCH: {
          /* Software pipeline: hash and prefetch PREFETCH_AHEAD series ahead of the one
           * being decided, so each slot's cache miss overlaps the work in between. */
          if (i == a)
            for (uint32_t j = a; j < b && j < a + PREFETCH_AHEAD; j++) {
              c->h[j - a] = rc_selindex_hash_labels(c->s[j].l, NLAB);
              rc_selindex_cache_prefetch(c->warm, c->h[j - a]);
            }
          uint32_t ahead = i + PREFETCH_AHEAD;
          if (ahead < b) {
            c->h[ahead - a] = rc_selindex_hash_labels(c->s[ahead].l, NLAB);
            rc_selindex_cache_prefetch(c->warm, c->h[ahead - a]);
          }
          rc_selindex_cache_decide_hashed(c->warm, idx, c->h[i - a], l, NLAB, &d);
          sink += d.n + d.cached;
          break;
        }
        default:
          rc_selindex_cache_decide(c->warm, idx, l, NLAB, &d);
          sink += d.n + d.cached;
          break;
      }
    }
    ns += now_ns() - t0;
  }
  g_sink += sink;
  return ns;
}

static double measure(ctx_t *c, phase_t ph) {
  double per[MAX_ROUNDS];
  for (int r = 0; r < c->o->rounds; r++) {
    uint64_t ns = 0, n = 0;
    do {
      ns += pass(c, ph);
      n += c->o->series;
    } while ((double)ns < c->o->min_time * 1e9);
    per[r] = (double)ns / (double)n;
  }
  qsort(per, (size_t)c->o->rounds, sizeof(double), cmp_double);
  return per[c->o->rounds / 2];
}

static int parse_args(int argc, char **argv, opts_t *o) {
  *o = (opts_t){.series = 10000, .rules = 100, .batch = 500, .rounds = 7, .min_time = 0.1};
  for (int i = 1; i < argc; i += 2) { /* every option takes one value */
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (v == NULL) return -1;
    if (strcmp(a, "--series") == 0)
      o->series = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--rules") == 0)
      o->rules = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--rounds") == 0)
      o->rounds = atoi(v);
    else if (strcmp(a, "--batch") == 0)
      o->batch = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--min-time") == 0)
      o->min_time = atof(v);
    else
      return -1;
  }
  if (o->series == 0 || o->series > 16000000 || o->rules == 0 || o->rules > 100000 ||
      o->batch == 0 || o->batch > 100000 || o->rounds < 1 || o->rounds > MAX_ROUNDS)
    return -1;
  return 0;
}

int main(int argc, char **argv) {
  opts_t o;
  if (parse_args(argc, argv, &o) != 0) {
    fprintf(stderr,
            "usage: selector_bench [--series N] [--rules N] [--batch N] [--rounds R] "
            "[--min-time S]\n");
    return 2;
  }
  rc_selector_t **sel = calloc(o.rules, sizeof(*sel));
  rc_selindex_entry_t *ent = calloc(o.rules, sizeof(*ent));
  series_t *s = malloc(o.series * sizeof(*s));
  if (sel == NULL || ent == NULL || s == NULL) return 1;
  for (uint32_t i = 0; i < o.rules; i++) {
    char buf[256];
    rc_err_t e;
    make_rule(buf, sizeof(buf), i);
    if (rc_selector_parse(buf, strlen(buf), 0, &sel[i], &e) != 0) {
      fprintf(stderr, "selector_bench: rule %s: %d:%d %s\n", buf, e.line, e.col, e.msg);
      return 1;
    }
    ent[i] = (rc_selindex_entry_t){sel[i], i};
  }
  for (uint32_t i = 0; i < o.series; i++) make_series(&s[i], i);
  ctx_t c = {.o = &o, .s = s, .scr = rc_matcher_scratch_new(), .h = malloc(o.batch * sizeof(*c.h))};
  if (rc_selindex_build(ent, o.rules, &c.idx) != 0 ||
      rc_selindex_build(ent, o.rules, &c.idx2) != 0 || c.scr == NULL || c.h == NULL)
    return 1;
  rc_selindex_cache_opts_t co = {.max_entries = o.series};
  if (rc_selindex_cache_new(&co, &c.warm) != 0) return 1;

  /* Warm the cache and check that the next pass is answered entirely from it. */
  uint64_t selected = 0;
  rc_selindex_decision_t d;
  for (uint32_t i = 0; i < o.series; i++) {
    rc_selindex_cache_decide(c.warm, c.idx, s[i].l, NLAB, &d);
    selected += d.n > 0;
  }
  for (uint32_t i = 0; i < o.series; i++) {
    rc_selindex_cache_decide(c.warm, c.idx, s[i].l, NLAB, &d);
    if (!d.cached) {
      fprintf(stderr, "selector_bench: series %u not cached after warm-up\n", i);
      return 1;
    }
  }

  printf("selector_bench: %u distinct series x %d labels, %u rules, %.1f%% of series selected\n",
         o.series, NLAB, o.rules, 100.0 * (double)selected / o.series);
  double r[PH__N];
  for (int ph = 0; ph < PH__N; ph++) {
    r[ph] = measure(&c, (phase_t)ph);
    printf("  %-38s %9.1f ns\n", phase_name[ph], r[ph]);
  }
  printf(
      "{\"series\":%u,\"rules\":%u,\"hash_ns\":%.1f,\"match_ns\":%.1f,\"cached_ns\":%.1f,"
      "\"cached_prefetch_ns\":%.1f,\"uncached_ns\":%.1f}\n",
      o.series, o.rules, r[PH_HASH], r[PH_MATCH], r[PH_CACHED], r[PH_PREFETCH], r[PH_UNCACHED]);

  rc_selindex_stats_t st;
  rc_selindex_cache_stats(c.warm, &st);
  if (st.regex_errors != 0 || st.uncached != 0 || st.stale == 0) {
    fprintf(stderr, "selector_bench: unexpected regex errors or uncached answers\n");
    return 1;
  }
  rc_selindex_cache_free(c.warm);
  rc_selindex_free(c.idx);
  rc_selindex_free(c.idx2);
  rc_matcher_scratch_free(c.scr);
  free(c.h);
  for (uint32_t i = 0; i < o.rules; i++) rc_selector_free(sel[i]);
  free(sel);
  free(ent);
  free(s);
  return g_sink == 42 ? 3 : 0; /* never 42 in practice; reads the sink */
}
