/* test_selindex.c: the selector index against brute force over every selector on random label
 * sets (fixed seed), and the decision cache: hits and misses, bounded capacity under both
 * policies, CLOCK keeping hot series, generation invalidation on reload, collision safety
 * with forced hash collisions, the bounded decision table, and the label-set hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "selindex.h"

static uint64_t g_rng = 0x243F6A8885A308D3ull;
static uint32_t rnd(uint32_t n) { /* xorshift64*, deterministic */
  g_rng ^= g_rng >> 12;
  g_rng ^= g_rng << 25;
  g_rng ^= g_rng >> 27;
  return (uint32_t)((g_rng * 2685821657736338717ull) >> 33) % n;
}

/* ---- random selectors and series ------------------------------------------------------- */

#define NSEL 150
#define MAXLAB 8

static const char *const label_names[] = {"job", "env", "code", "zz", "Aa"};
static const char *const values[] = {"j1", "j2", "J1", "e1", "e2", "503", "200", "x", "j10"};
static const char *const regexes[] = {"j[0-2]", ".*", ".+", "j1|j3", "(?i)J1", "e.*",
                                      "5..",    "",   "j1", "x|503", "[^j].*"};
static const char *const ops[] = {"=", "!=", "=~", "!~"};

/* Mostly named selectors (m0..m19; series use m0..m59, so most names have no rule), some
 * by a __name__ literal set or regex, a few without a name but pinned by an instance, each
 * with 0-3 random matchers using every op and a mix of literal and regex values. */
static void random_selector(char *buf, size_t cap) {
  size_t n = 0;
  uint32_t kind = rnd(100);
  uint32_t nm = 1 + rnd(3);
  if (kind < 60) n += (size_t)snprintf(buf + n, cap - n, "m%u", rnd(20));
  n += (size_t)snprintf(buf + n, cap - n, "{");
  if (kind >= 60 && kind < 75)
    n +=
        (size_t)snprintf(buf + n, cap - n, "__name__=~\"m%u|m%u|m%u\",", rnd(30), rnd(30), rnd(30));
  else if (kind >= 75 && kind < 85)
    n += (size_t)snprintf(buf + n, cap - n, "__name__=~\"m%u[0-9]\",", 1 + rnd(2));
  else if (kind >= 85)
    n += (size_t)snprintf(buf + n, cap - n, "inst=\"i%u\",", rnd(20));
  for (uint32_t i = 0; i < nm; i++) {
    uint32_t op = rnd(4);
    const char *v =
        op >= 2 ? regexes[rnd(RC_ARRAY_SIZE(regexes))] : values[rnd(RC_ARRAY_SIZE(values))];
    if (op < 2 && rnd(5) == 0) v = "";
    n += (size_t)snprintf(buf + n, cap - n, "%s%s\"%s\",",
                          label_names[rnd(RC_ARRAY_SIZE(label_names))], ops[op], v);
  }
  snprintf(buf + n, cap - n, "}");
}

typedef struct series {
  rc_label_t l[MAXLAB];
  char vals[MAXLAB][8];
  uint32_t n;
} series_t;

static void sort_labels(rc_label_t *l, uint32_t n) {
  for (uint32_t i = 1; i < n; i++)
    for (uint32_t j = i;
         j > 0 && rc_bytes_cmp(l[j - 1].name, l[j - 1].name_len, l[j].name, l[j].name_len) > 0;
         j--) {
      rc_label_t t = l[j];
      l[j] = l[j - 1];
      l[j - 1] = t;
    }
}

static void random_series(series_t *s) {
  s->n = 0;
  if (rnd(20) != 0) {
    snprintf(s->vals[s->n], sizeof(s->vals[0]), "m%u", rnd(60));
    s->l[s->n] = (rc_label_t){"__name__", s->vals[s->n], 8, (uint32_t)strlen(s->vals[s->n])};
    s->n++;
  }
  if (rnd(2)) {
    snprintf(s->vals[s->n], sizeof(s->vals[0]), "i%u", rnd(40));
    s->l[s->n] = (rc_label_t){"inst", s->vals[s->n], 4, (uint32_t)strlen(s->vals[s->n])};
    s->n++;
  }
  for (size_t i = 0; i < RC_ARRAY_SIZE(label_names); i++) {
    if (rnd(2)) continue;
    snprintf(s->vals[s->n], sizeof(s->vals[0]), "%s", values[rnd(RC_ARRAY_SIZE(values))]);
    s->l[s->n] = (rc_label_t){label_names[i], s->vals[s->n], (uint32_t)strlen(label_names[i]),
                              (uint32_t)strlen(s->vals[s->n])};
    s->n++;
  }
  sort_labels(s->l, s->n);
}

/* A fixed population of selectors and the index over them. */
typedef struct fixture {
  rc_selector_t *sel[NSEL];
  rc_selindex_entry_t ent[NSEL];
  rc_selindex_t *idx;
  rc_matcher_scratch_t *scr;
} fixture_t;

static void fixture_init(fixture_t *f, uint64_t seed, size_t nsel) {
  g_rng = seed;
  for (size_t i = 0; i < nsel; i++) {
    char buf[256];
    random_selector(buf, sizeof(buf));
    rc_err_t e;
    if (rc_selector_parse(buf, strlen(buf), RC_SELECTOR_ALLOW_EMPTY, &f->sel[i], &e) != 0)
      fail_msg("selector %s: %s", buf, e.msg);
    f->ent[i] = (rc_selindex_entry_t){f->sel[i], (uint32_t)(1000 + i / 2)}; /* ids repeat */
  }
  assert_int_equal(rc_selindex_build(f->ent, nsel, &f->idx), 0);
  f->scr = rc_matcher_scratch_new();
}

static void fixture_close(fixture_t *f, size_t nsel) {
  rc_selindex_free(f->idx);
  for (size_t i = 0; i < nsel; i++) rc_selector_free(f->sel[i]);
  rc_matcher_scratch_free(f->scr);
}

/* What the index must return: every selector, in entry order. */
static uint32_t brute(const rc_selindex_entry_t *ent, size_t nsel, rc_matcher_scratch_t *scr,
                      const series_t *s, uint32_t *out) {
  uint32_t k = 0;
  for (size_t i = 0; i < nsel; i++)
    if (rc_selector_matches(ent[i].sel, scr, s->l, s->n)) out[k++] = ent[i].id;
  return k;
}

/* A reference for rc_selector_matches that shares none of its shortcuts: each label found by
 * linear search, each matcher evaluated on its own (a missing label as ""), and the regex
 * prefix pre-check switched off on a copy of the matcher. */
static int ref_matches(const rc_selector_t *sel, rc_matcher_scratch_t *scr, const series_t *s) {
  for (uint32_t k = 0; k < sel->n; k++) {
    rc_matcher_t m = sel->m[k]; /* shallow copy: never closed */
    m.prefix_len = 0;
    const char *v = "";
    uint32_t vl = 0;
    for (uint32_t j = 0; j < s->n; j++)
      if (s->l[j].name_len == m.name_len && memcmp(s->l[j].name, m.name, m.name_len) == 0) {
        v = s->l[j].value;
        vl = s->l[j].value_len;
      }
    if (!rc_matcher_matches(&m, scr, v, vl)) return 0;
  }
  return 1;
}

static void test_selector_vs_reference(void **st) {
  (void)st;
  fixture_t f;
  fixture_init(&f, 5, NSEL);
  for (int round = 0; round < 5000; round++) {
    series_t s;
    random_series(&s);
    for (size_t i = 0; i < NSEL; i++)
      if (rc_selector_matches(f.sel[i], f.scr, s.l, s.n) != ref_matches(f.sel[i], f.scr, &s))
        fail_msg("round %d selector %zu disagrees with the reference", round, i);
  }
  fixture_close(&f, NSEL);
}

static void test_index_vs_bruteforce(void **st) {
  (void)st;
  fixture_t f;
  fixture_init(&f, 7, NSEL);
  assert_int_equal(rc_selindex_size(f.idx), NSEL);
  uint32_t want[NSEL], got[NSEL];
  uint64_t total = 0, nonempty = 0;
  for (int round = 0; round < 20000; round++) {
    series_t s;
    random_series(&s);
    uint32_t nw = brute(f.ent, NSEL, f.scr, &s, want);
    uint32_t ng = rc_selindex_match(f.idx, f.scr, s.l, s.n, got, NSEL);
    if (ng != nw || memcmp(got, want, nw * sizeof(*got)) != 0)
      fail_msg("round %d: index %u ids, brute force %u", round, ng, nw);
    /* Truncated output reports the full count. */
    uint32_t one;
    assert_int_equal(rc_selindex_match(f.idx, f.scr, s.l, s.n, &one, 1), nw);
    if (nw) assert_int_equal(one, want[0]);
    total += nw;
    nonempty += nw > 0;
  }
  /* The population must exercise both outcomes, or the comparison proves little. */
  print_message("%llu of 20000 series selected, %llu selector matches\n",
                (unsigned long long)nonempty, (unsigned long long)total);
  assert_true(nonempty > 4000 && nonempty < 16000);
  assert_true(total > nonempty);
  fixture_close(&f, NSEL);
}

static void test_index_names(void **st) {
  (void)st;
  const char *texts[] = {"{__name__=~\"a|b\"}", "{__name__=~\"a|\",x=\"1\"}", "b", "{x=\"1\"}",
                         "{__name__=~\"a|a\"}"};
  rc_selector_t *s[5];
  rc_selindex_entry_t ent[5];
  rc_err_t e;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(rc_selector_parse(texts[i], strlen(texts[i]), 0, &s[i], &e), 0);
    ent[i] = (rc_selindex_entry_t){s[i], (uint32_t)i};
  }
  rc_selindex_t *idx;
  assert_int_equal(rc_selindex_build(ent, 5, &idx), 0);
  rc_matcher_scratch_t *scr = rc_matcher_scratch_new();
  uint32_t out[8];
  rc_label_t a[] = {{"__name__", "a", 8, 1}, {"x", "1", 1, 1}};
  rc_label_t b[] = {{"__name__", "b", 8, 1}};
  rc_label_t noname[] = {{"x", "1", 1, 1}};
  assert_int_equal(rc_selindex_match(idx, scr, a, 2, out, 8), 4);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 1);
  assert_int_equal(out[2], 3);
  assert_int_equal(out[3], 4); /* listed once although its regex names "a" twice */
  assert_int_equal(rc_selindex_match(idx, scr, b, 1, out, 8), 2);
  assert_int_equal(out[0], 0);
  assert_int_equal(out[1], 2);
  /* No __name__ at all (not a valid remote-write series, but the API allows it). */
  assert_int_equal(rc_selindex_match(idx, scr, noname, 1, out, 8), 2);
  assert_int_equal(out[0], 1);
  assert_int_equal(out[1], 3);
  rc_selindex_free(idx);
  /* An empty index selects nothing; a NULL selector is refused. */
  assert_int_equal(rc_selindex_build(NULL, 0, &idx), 0);
  assert_int_equal(rc_selindex_match(idx, scr, a, 2, out, 8), 0);
  assert_int_not_equal(rc_selindex_generation(idx), 0);
  rc_selindex_free(idx);
  rc_selindex_entry_t badent = {NULL, 1};
  assert_int_equal(rc_selindex_build(&badent, 1, &idx), RC_EINVAL);
  rc_selindex_free(NULL);
  for (int i = 0; i < 5; i++) rc_selector_free(s[i]);
  rc_matcher_scratch_free(scr);
}

/* ---- cache ------------------------------------------------------------------------------ */

static void check_decision(const rc_selindex_decision_t *d, const uint32_t *want, uint32_t nw,
                           const char *what) {
  if (d->n != nw || (nw && memcmp(d->ids, want, nw * sizeof(*want)) != 0))
    fail_msg("%s: decision has %u ids, want %u", what, d->n, nw);
}

static void test_cache_hit_miss(void **st) {
  (void)st;
  fixture_t f;
  fixture_init(&f, 11, NSEL);
  rc_selindex_cache_t *c;
  rc_selindex_cache_opts_t o = {.max_entries = 10000};
  assert_int_equal(rc_selindex_cache_new(&o, &c), 0);
  series_t pop[500];
  uint32_t want[NSEL];
  for (int i = 0; i < 500; i++) random_series(&pop[i]);
  uint64_t sel = 0, drop = 0;
  /* Two passes: the first decides, the second must be all hits with the same answers. */
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < 500; i++) {
      rc_selindex_decision_t d;
      assert_int_equal(rc_selindex_cache_decide(c, f.idx, pop[i].l, pop[i].n, &d), 0);
      uint32_t nw = brute(f.ent, NSEL, f.scr, &pop[i], want);
      check_decision(&d, want, nw, "hit/miss");
      if (pass == 1) assert_int_equal(d.cached, 1);
      if (nw)
        sel++;
      else
        drop++;
    }
  }
  rc_selindex_stats_t s;
  rc_selindex_cache_stats(c, &s);
  assert_int_equal(s.hits + s.misses, 1000);
  assert_true(s.hits >= 500); /* the random population may repeat a series in pass 0 */
  assert_int_equal(s.entries, s.misses);
  assert_int_equal(s.selected, sel);
  assert_int_equal(s.dropped, drop);
  assert_true(s.selected > 0 && s.dropped > 0);
  assert_int_equal(s.full + s.evictions + s.uncached + s.stale + s.regex_errors, 0);
  rc_selindex_cache_free(c);
  fixture_close(&f, NSEL);
}

static void test_cache_bounded_evict(void **st) {
  (void)st;
  fixture_t f;
  fixture_init(&f, 13, NSEL);
  rc_selindex_cache_t *c;
  rc_selindex_cache_opts_t o = {.max_entries = 100, .policy = RC_SELINDEX_EVICT};
  assert_int_equal(rc_selindex_cache_new(&o, &c), 0);
  series_t hot[10];
  for (int i = 0; i < 10; i++) random_series(&hot[i]);
  uint32_t want[NSEL];
  rc_selindex_stats_t s;
  uint64_t hot_hits = 0, hot_calls = 0;
  for (int i = 0; i < 5000; i++) {
    series_t x;
    random_series(&x);
    /* Make the cold series unique so every one is a new key. */
    snprintf(x.vals[0], sizeof(x.vals[0]), "u%d", i);
    x.l[x.n] = (rc_label_t){"uniq", x.vals[0], 4, (uint32_t)strlen(x.vals[0])};
    x.n++;
    sort_labels(x.l, x.n);
    rc_selindex_decision_t d;
    assert_int_equal(rc_selindex_cache_decide(c, f.idx, x.l, x.n, &d), 0);
    check_decision(&d, want, brute(f.ent, NSEL, f.scr, &x, want), "cold");
    series_t *h = &hot[i % 10];
    assert_int_equal(rc_selindex_cache_decide(c, f.idx, h->l, h->n, &d), 0);
    check_decision(&d, want, brute(f.ent, NSEL, f.scr, h, want), "hot");
    hot_calls++;
    hot_hits += d.cached;
    rc_selindex_cache_stats(c, &s);
    assert_true(s.entries <= 100);
  }
  rc_selindex_cache_stats(c, &s);
  assert_int_equal(s.entries, 100);
  assert_true(s.full > 4000);
  assert_true(s.evictions > 4000);
  assert_int_equal(s.uncached, 0);
  /* CLOCK keeps the series used between every two cold ones. */
  assert_true(hot_hits * 100 >= hot_calls * 95);
  rc_selindex_cache_free(c);
  fixture_close(&f, NSEL);
}

static void test_cache_bounded_refuse(void **st) {
  (void)st;
  fixture_t f;
  fixture_init(&f, 17, NSEL);
  rc_selindex_cache_t *c;
  rc_selindex_cache_opts_t o = {.max_entries = 64, .policy = RC_SELINDEX_REFUSE};
  assert_int_equal(rc_selindex_cache_new(&o, &c), 0);
  uint32_t want[NSEL];
  series_t x[200];
  for (int i = 0; i < 200; i++) {
    random_series(&x[i]);
    snprintf(x[i].vals[0], sizeof(x[i].vals[0]), "u%d", i);
    x[i].l[x[i].n] = (rc_label_t){"uniq", x[i].vals[0], 4, (uint32_t)strlen(x[i].vals[0])};
    x[i].n++;
    sort_labels(x[i].l, x[i].n);
  }
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < 200; i++) {
      rc_selindex_decision_t d;
      assert_int_equal(rc_selindex_cache_decide(c, f.idx, x[i].l, x[i].n, &d), 0);
      check_decision(&d, want, brute(f.ent, NSEL, f.scr, &x[i], want), "refuse");
      /* The first 64 got in and stay; the rest are answered, never remembered. */
      assert_int_equal(d.cached, pass == 1 && i < 64);
    }
  rc_selindex_stats_t s;
  rc_selindex_cache_stats(c, &s);
  assert_int_equal(s.entries, 64);
  assert_int_equal(s.full, 272);
  assert_int_equal(s.uncached, 272);
  assert_int_equal(s.evictions, 0);
  assert_int_equal(s.hits, 64);

  /* After a reload the old entries are reclaimable: new series get in again. */
  rc_selindex_t *idx2;
  assert_int_equal(rc_selindex_build(f.ent, NSEL / 2, &idx2), 0);
  for (int i = 100; i < 164; i++) {
    rc_selindex_decision_t d;
    assert_int_equal(rc_selindex_cache_decide(c, idx2, x[i].l, x[i].n, &d), 0);
    check_decision(&d, want, brute(f.ent, NSEL / 2, f.scr, &x[i], want), "refuse reload");
  }
  rc_selindex_cache_stats(c, &s);
  assert_int_equal(s.entries, 64);
  assert_int_equal(s.uncached, 272); /* none refused: stale entries made room */
  for (int i = 100; i < 164; i++) {
    rc_selindex_decision_t d;
    assert_int_equal(rc_selindex_cache_decide(c, idx2, x[i].l, x[i].n, &d), 0);
    assert_int_equal(d.cached, 1);
  }
  rc_selindex_free(idx2);
  rc_selindex_cache_free(c);
  fixture_close(&f, NSEL);
}

static void test_generation(void **st) {
  (void)st;
  const char *t1 = "up{job=\"api\"}", *t2 = "up{job=\"web\"}";
  rc_selector_t *s1, *s2;
  rc_err_t e;
  assert_int_equal(rc_selector_parse(t1, strlen(t1), 0, &s1, &e), 0);
  assert_int_equal(rc_selector_parse(t2, strlen(t2), 0, &s2, &e), 0);
  rc_selindex_entry_t e1 = {s1, 1}, e2 = {s2, 2};
  rc_selindex_t *idx1, *idx2;
  assert_int_equal(rc_selindex_build(&e1, 1, &idx1), 0);
  assert_int_equal(rc_selindex_build(&e2, 1, &idx2), 0);
  assert_int_not_equal(rc_selindex_generation(idx1), rc_selindex_generation(idx2));
  rc_selindex_cache_t *c;
  rc_selindex_cache_opts_t o = {.max_entries = 16};
  assert_int_equal(rc_selindex_cache_new(&o, &c), 0);
  rc_label_t api[] = {{"__name__", "up", 8, 2}, {"job", "api", 3, 3}};
  rc_label_t web[] = {{"__name__", "up", 8, 2}, {"job", "web", 3, 3}};
  rc_selindex_decision_t d;
  assert_int_equal(rc_selindex_cache_decide(c, idx1, api, 2, &d), 0);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.ids[0], 1);
  assert_int_equal(rc_selindex_cache_decide(c, idx1, web, 2, &d), 0);
  assert_int_equal(d.n, 0);
  assert_int_equal(rc_selindex_cache_decide(c, idx1, web, 2, &d), 0);
  assert_int_equal(d.cached, 1);
  /* Reload: the same series, the new rules, re-evaluated once, then cached again. */
  assert_int_equal(rc_selindex_cache_decide(c, idx2, web, 2, &d), 0);
  assert_int_equal(d.cached, 0);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.ids[0], 2);
  assert_int_equal(rc_selindex_cache_decide(c, idx2, api, 2, &d), 0);
  assert_int_equal(d.n, 0);
  assert_int_equal(rc_selindex_cache_decide(c, idx2, web, 2, &d), 0);
  assert_int_equal(d.cached, 1);
  assert_int_equal(d.ids[0], 2);
  rc_selindex_stats_t s;
  rc_selindex_cache_stats(c, &s);
  assert_int_equal(s.stale, 2);
  assert_int_equal(s.entries, 2); /* re-evaluated in place, not duplicated */
  /* Going back to the first index is just another generation change. */
  assert_int_equal(rc_selindex_cache_decide(c, idx1, api, 2, &d), 0);
  assert_int_equal(d.cached, 0);
  assert_int_equal(d.ids[0], 1);
  rc_selindex_cache_free(c);
  rc_selindex_free(idx1);
  rc_selindex_free(idx2);
  rc_selector_free(s1);
  rc_selector_free(s2);
}

/* Forced collisions through decide_hashed: label sets whose hashes share the low 64 bits (and
 * so the home slot) must still get their own answers; keys that only collide in the top bits
 * that pick the slot make long probe runs, which eviction's backward shift must keep intact. */
static void test_collisions(void **st) {
  (void)st;
  fixture_t f;
  fixture_init(&f, 19, NSEL);
  uint32_t want[NSEL];
  for (int variant = 0; variant < 2; variant++) {
    rc_selindex_cache_t *c;
    rc_selindex_cache_opts_t o = {.max_entries = 50};
    assert_int_equal(rc_selindex_cache_new(&o, &c), 0);
    series_t x[300];
    rc_selindex_hash_t h[300];
    for (int i = 0; i < 300; i++) {
      random_series(&x[i]);
      snprintf(x[i].vals[0], sizeof(x[i].vals[0]), "u%d", i);
      x[i].l[x[i].n] = (rc_label_t){"uniq", x[i].vals[0], 4, (uint32_t)strlen(x[i].vals[0])};
      x[i].n++;
      sort_labels(x[i].l, x[i].n);
      h[i] = rc_selindex_hash_labels(x[i].l, x[i].n);
      if (variant == 0)
        h[i].lo = 0x1234; /* all 64 low bits equal: only hi tells them apart */
      else
        h[i].lo &= 0xF000000000000000ull; /* few home slots, long runs */
    }
    for (int round = 0; round < 3000; round++) {
      int i = (int)rnd(300);
      if (round < 40) i = round;
      rc_selindex_decision_t d;
      assert_int_equal(rc_selindex_cache_decide_hashed(c, f.idx, h[i], x[i].l, x[i].n, &d), 0);
      check_decision(&d, want, brute(f.ent, NSEL, f.scr, &x[i], want), "collision");
    }
    /* With 40 entries (under the bound of 50), all sharing lo, each is still its own. */
    rc_selindex_stats_t s;
    rc_selindex_cache_stats(c, &s);
    assert_true(s.hits > 0);
    assert_true(s.evictions > 0);
    rc_selindex_cache_free(c);
  }
  fixture_close(&f, NSEL);
}

static void test_decision_table_full(void **st) {
  (void)st;
  fixture_t f;
  fixture_init(&f, 23, NSEL);
  rc_selindex_cache_t *c;
  rc_selindex_cache_opts_t o = {.max_entries = 1000, .max_decisions = 3, .max_decision_ids = 8};
  assert_int_equal(rc_selindex_cache_new(&o, &c), 0);
  uint32_t want[NSEL];
  for (int i = 0; i < 2000; i++) {
    series_t x;
    random_series(&x);
    rc_selindex_decision_t d;
    assert_int_equal(rc_selindex_cache_decide(c, f.idx, x.l, x.n, &d), 0);
    check_decision(&d, want, brute(f.ent, NSEL, f.scr, &x, want), "decisions full");
  }
  rc_selindex_stats_t s;
  rc_selindex_cache_stats(c, &s);
  assert_true(s.uncached > 0);
  assert_true(s.hits > 0); /* dropped series (the empty decision) always fit */
  rc_selindex_cache_free(c);
  fixture_close(&f, NSEL);
}

static void test_cache_opts(void **st) {
  (void)st;
  rc_selindex_cache_t *c;
  rc_selindex_cache_opts_t o = {0};
  assert_int_equal(rc_selindex_cache_new(&o, &c), RC_EINVAL);
  assert_int_equal(rc_selindex_cache_new(NULL, &c), RC_EINVAL);
  o.max_entries = (1u << 28) + 1;
  assert_int_equal(rc_selindex_cache_new(&o, &c), RC_EINVAL);
  o.max_entries = 1;
  o.policy = (rc_selindex_policy_t)7;
  assert_int_equal(rc_selindex_cache_new(&o, &c), RC_EINVAL);
  o.policy = RC_SELINDEX_EVICT;
  assert_int_equal(rc_selindex_cache_new(&o, &c), 0);
  /* A one-entry cache still answers correctly. */
  rc_selindex_t *idx;
  assert_int_equal(rc_selindex_build(NULL, 0, &idx), 0);
  rc_label_t a[] = {{"__name__", "a", 8, 1}}, b[] = {{"__name__", "b", 8, 1}};
  rc_selindex_decision_t d;
  for (int i = 0; i < 10; i++) {
    assert_int_equal(rc_selindex_cache_decide(c, idx, i % 2 ? a : b, 1, &d), 0);
    assert_int_equal(d.n, 0);
    assert_non_null(d.ids);
  }
  rc_selindex_free(idx);
  rc_selindex_cache_free(c);
  rc_selindex_cache_free(NULL);
}

static int u64_cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static void test_hash(void **st) {
  (void)st;
  rc_label_t x[] = {{"a", "bc", 1, 2}};
  rc_label_t y[] = {{"ab", "c", 2, 1}};
  rc_label_t z[] = {{"a", "b", 1, 1}, {"c", "", 1, 0}};
  rc_selindex_hash_t hx = rc_selindex_hash_labels(x, 1), hy = rc_selindex_hash_labels(y, 1);
  rc_selindex_hash_t hz = rc_selindex_hash_labels(z, 2);
  assert_true(hx.lo != hy.lo || hx.hi != hy.hi); /* lengths make the encoding unambiguous */
  assert_true(hx.lo != hz.lo || hx.hi != hz.hi);
  rc_selindex_hash_t hx2 = rc_selindex_hash_labels(x, 1);
  assert_true(hx.lo == hx2.lo && hx.hi == hx2.hi);
  /* Large label sets take the streaming path; equal input, equal hash; one byte, different. */
  static char big1[3000], big2[3000];
  memset(big1, 'v', sizeof(big1));
  memset(big2, 'v', sizeof(big2));
  big2[2999] = 'w';
  rc_label_t b1[] = {{"__name__", "m", 8, 1}, {"big", big1, 3, 3000}};
  rc_label_t b2[] = {{"__name__", "m", 8, 1}, {"big", big2, 3, 3000}};
  rc_selindex_hash_t h1 = rc_selindex_hash_labels(b1, 2), h1b = rc_selindex_hash_labels(b1, 2);
  rc_selindex_hash_t h2 = rc_selindex_hash_labels(b2, 2);
  assert_true(h1.lo == h1b.lo && h1.hi == h1b.hi);
  assert_true(h1.lo != h2.lo || h1.hi != h2.hi);
  /* 100k distinct label sets: not even the low 64 bits collide, and the top bits spread. */
  enum { N = 100000 };
  uint64_t *lo = malloc(N * sizeof(*lo));
  uint32_t buckets[16] = {0};
  for (int i = 0; i < N; i++) {
    char v[16];
    int n = snprintf(v, sizeof(v), "%d", i);
    rc_label_t l[] = {{"__name__", "m", 8, 1}, {"i", v, 1, (uint32_t)n}};
    rc_selindex_hash_t h = rc_selindex_hash_labels(l, 2);
    lo[i] = h.lo;
    buckets[h.lo >> 60]++;
  }
  for (int i = 0; i < 16; i++) assert_true(buckets[i] > N / 16 * 9 / 10);
  qsort(lo, N, sizeof(*lo), u64_cmp);
  for (int i = 1; i < N; i++) assert_true(lo[i] != lo[i - 1]);
  free(lo);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_selector_vs_reference),
      cmocka_unit_test(test_index_vs_bruteforce),
      cmocka_unit_test(test_index_names),
      cmocka_unit_test(test_cache_hit_miss),
      cmocka_unit_test(test_cache_bounded_evict),
      cmocka_unit_test(test_cache_bounded_refuse),
      cmocka_unit_test(test_generation),
      cmocka_unit_test(test_collisions),
      cmocka_unit_test(test_decision_table_full),
      cmocka_unit_test(test_cache_opts),
      cmocka_unit_test(test_hash),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
