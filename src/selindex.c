/* selindex.c: the selector index (by metric name, then the name-less rest) and the per-thread
 * decision cache; selindex.h has the design, the bounds and the thread rules in full.
 *
 * Sections: label-set hash | index | cache (slots, decision table, CLOCK, decide).
 *
 * The cache is open addressing with linear probing and backward-shift deletion (no
 * tombstones, so lookups never slow down under churn). A slot is 24 bytes: the 128-bit key,
 * the generation it was decided under (0 = empty), and the index of an interned decision (the
 * id list, shared by every series with the same answer) whose top bit is CLOCK's reference
 * bit. Not here: anything about storing series; this file only says which rules want one.
 * Threads: the index is read-only after build; a cache belongs to one thread; its counters
 * are relaxed atomics written by that thread only, readable from any.
 */
#define XXH_INLINE_ALL /* the hot path hashes ~200 bytes: inlining XXH3 is worth it */
#include "selindex.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- label-set hash --------------------------------------------------------------------- */

#define SECRET_SIZE 192 /* >= XXH3_SECRET_SIZE_MIN (136) */

static unsigned char g_secret[SECRET_SIZE];
static pthread_once_t g_secret_once = PTHREAD_ONCE_INIT;

/* Fills the secret from the kernel. If getrandom is unavailable (very old kernels, seccomp),
 * falls back to time, pid and addresses: unpredictable enough that a remote sender cannot
 * aim collisions, though not cryptographic. */
static void secret_init(void) {
  size_t got = 0;
  while (got < SECRET_SIZE) {
    ssize_t r = getrandom(g_secret + got, SECRET_SIZE - got, 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += (size_t)r;
  }
  if (got == SECRET_SIZE) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t seed[4] = {(uint64_t)ts.tv_nsec, (uint64_t)ts.tv_sec, (uint64_t)getpid(),
                      (uint64_t)(uintptr_t)&got};
  for (size_t i = 0; i < SECRET_SIZE; i += 8) {
    seed[3] += i;
    uint64_t v = XXH3_64bits(seed, sizeof(seed));
    memcpy(g_secret + i, &v, 8);
  }
}

static inline size_t put_len(unsigned char *p, uint32_t v) {
  size_t k = 0;
  while (v >= 0x80) {
    p[k++] = (unsigned char)(v | 0x80);
    v >>= 7;
  }
  p[k++] = (unsigned char)v;
  return k;
}

/* Copies n bytes without a libc call: label names and values are mostly under 16 bytes, and
 * with _FORTIFY_SOURCE every variable-length memcpy into the stack buffer is an out-of-line
 * __memcpy_chk. Fixed-size memcpy into locals compiles to plain loads and stores; the
 * overlapping head/tail words never read outside s[0..n). */
static inline void copy_bytes(unsigned char *d, const char *s, uint32_t n) {
  if (n >= 8) {
    uint64_t w;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
      memcpy(&w, s + i, 8);
      memcpy(d + i, &w, 8);
    }
    memcpy(&w, s + n - 8, 8);
    memcpy(d + n - 8, &w, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    memcpy(&a, s, 4);
    memcpy(&b, s + n - 4, 4);
    memcpy(d, &a, 4);
    memcpy(d + n - 4, &b, 4);
  } else if (n > 0) {
    d[0] = (unsigned char)s[0];
    d[n / 2] = (unsigned char)s[n / 2];
    d[n - 1] = (unsigned char)s[n - 1];
  }
}

#define HASH_STACK_BYTES 2048

/* Huge label sets: stream the same bytes (XXH3 streaming equals one-shot on the same input;
 * it is just slower, so it is kept for sets that do not fit the stack buffer). */
static __attribute__((noinline)) XXH128_hash_t hash_stream(const rc_label_t *labels, uint32_t n) {
  XXH3_state_t st;
  XXH3_INITSTATE(&st);
  XXH3_128bits_reset_withSecret(&st, g_secret, sizeof(g_secret));
  for (uint32_t i = 0; i < n; i++) {
    unsigned char lb[5];
    XXH3_128bits_update(&st, lb, put_len(lb, labels[i].name_len));
    XXH3_128bits_update(&st, labels[i].name, labels[i].name_len);
    XXH3_128bits_update(&st, lb, put_len(lb, labels[i].value_len));
    XXH3_128bits_update(&st, labels[i].value, labels[i].value_len);
  }
  return XXH3_128bits_digest(&st);
}

rc_selindex_hash_t rc_selindex_hash_labels(const rc_label_t *labels, uint32_t n) {
  pthread_once(&g_secret_once, secret_init);
  /* Common case: encode into one buffer and hash it in one shot. */
  unsigned char buf[HASH_STACK_BYTES];
  size_t k = 0;
  XXH128_hash_t h;
  for (uint32_t i = 0; i < n; i++) {
    const rc_label_t *l = &labels[i];
    if (RC_UNLIKELY((size_t)l->name_len + l->value_len + 10 > HASH_STACK_BYTES - k)) {
      h = hash_stream(labels, n);
      return (rc_selindex_hash_t){.lo = h.low64, .hi = h.high64};
    }
    k += put_len(buf + k, l->name_len);
    copy_bytes(buf + k, l->name, l->name_len);
    k += l->name_len;
    k += put_len(buf + k, l->value_len);
    copy_bytes(buf + k, l->value, l->value_len);
    k += l->value_len;
  }
  h = XXH3_128bits_withSecret(buf, k, g_secret, sizeof(g_secret));
  return (rc_selindex_hash_t){.lo = h.low64, .hi = h.high64};
}

/* ---- index ------------------------------------------------------------------------------ */

typedef struct name_slot {
  const char *name; /* NULL: empty slot; borrowed from a selector */
  uint32_t len;
  uint32_t off, cnt; /* entry indices in idx->lists[off .. off+cnt), ascending */
} name_slot_t;

struct rc_selindex {
  uint32_t gen, n;
  const rc_selector_t **sel; /* per entry */
  uint32_t *ids;             /* per entry */
  name_slot_t *names;
  uint32_t nmask;
  uint32_t *lists;
  uint32_t *generic; /* entries without a fixed name, ascending */
  uint32_t ngeneric;
};

static _Atomic uint32_t g_generation;

typedef struct pair {
  const char *name;
  uint32_t len, entry;
} pair_t;

static int pair_cmp(const void *a, const void *b) {
  const pair_t *x = a, *y = b;
  int c = rc_bytes_cmp(x->name, x->len, y->name, y->len);
  if (c != 0) return c;
  return (x->entry > y->entry) - (x->entry < y->entry);
}

static uint32_t name_home(const char *name, uint32_t len, uint32_t mask) {
  return (uint32_t)XXH3_64bits(name, len) & mask;
}

static int is_name_label(const char *s, uint32_t len) {
  return len == 8 && memcmp(s, "__name__", 8) == 0;
}

/* The matcher that fixes the metric name to a finite set, if the selector has one. */
static const rc_matcher_t *name_matcher(const rc_selector_t *s) {
  for (uint32_t k = 0; k < s->n; k++)
    if (is_name_label(s->m[k].name, s->m[k].name_len) && rc_matcher_literals(&s->m[k]) > 0)
      return &s->m[k];
  return NULL;
}

int rc_selindex_build(const rc_selindex_entry_t *entries, size_t n, rc_selindex_t **out) {
  *out = NULL;
  if (n >= UINT32_MAX / 4 || (n > 0 && entries == NULL)) return RC_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (entries[i].sel == NULL) return RC_EINVAL;
  rc_selindex_t *idx = calloc(1, sizeof(*idx));
  if (idx == NULL) return RC_ENOMEM;
  idx->n = (uint32_t)n;
  size_t npairs = 0;
  for (size_t i = 0; i < n; i++) {
    const rc_matcher_t *m = name_matcher(entries[i].sel);
    npairs += m ? rc_matcher_literals(m) : 0;
  }
  pair_t *pairs = malloc((npairs ? npairs : 1) * sizeof(*pairs));
  idx->sel = malloc((n ? n : 1) * sizeof(*idx->sel));
  idx->ids = malloc((n ? n : 1) * sizeof(*idx->ids));
  idx->generic = malloc((n ? n : 1) * sizeof(*idx->generic));
  idx->lists = malloc((npairs ? npairs : 1) * sizeof(*idx->lists));
  uint32_t ncap = 16;
  while (ncap < npairs * 2) ncap <<= 1;
  idx->names = calloc(ncap, sizeof(*idx->names));
  if (pairs == NULL || idx->sel == NULL || idx->ids == NULL || idx->generic == NULL ||
      idx->lists == NULL || idx->names == NULL) {
    free(pairs);
    rc_selindex_free(idx);
    return RC_ENOMEM;
  }
  idx->nmask = ncap - 1;
  size_t np = 0;
  for (size_t i = 0; i < n; i++) {
    idx->sel[i] = entries[i].sel;
    idx->ids[i] = entries[i].id;
    const rc_matcher_t *m = name_matcher(entries[i].sel);
    if (m == NULL) {
      idx->generic[idx->ngeneric++] = (uint32_t)i;
      continue;
    }
    for (uint32_t a = 0, na = rc_matcher_literals(m); a < na; a++) {
      rc_matcher_literal(m, a, &pairs[np].name, &pairs[np].len);
      pairs[np++].entry = (uint32_t)i;
    }
  }
  /* Group by name; within a name, entries ascend, so matching can merge in build order. */
  qsort(pairs, np, sizeof(*pairs), pair_cmp);
  uint32_t nl = 0;
  for (size_t a = 0; a < np;) {
    size_t b = a;
    uint32_t off = nl;
    for (; b < np && pairs[b].len == pairs[a].len &&
           memcmp(pairs[b].name, pairs[a].name, pairs[a].len) == 0;
         b++)
      if (b == a || pairs[b].entry != pairs[b - 1].entry) idx->lists[nl++] = pairs[b].entry;
    uint32_t h = name_home(pairs[a].name, pairs[a].len, idx->nmask);
    while (idx->names[h].name != NULL) h = (h + 1) & idx->nmask;
    idx->names[h] = (name_slot_t){pairs[a].name, pairs[a].len, off, nl - off};
    a = b;
  }
  free(pairs);
  uint32_t g;
  do {
    g = atomic_fetch_add_explicit(&g_generation, 1, memory_order_relaxed) + 1;
  } while (g == 0); /* 0 marks an empty cache slot */
  idx->gen = g;
  *out = idx;
  return 0;
}

void rc_selindex_free(rc_selindex_t *idx) {
  if (idx == NULL) return;
  free(idx->sel);
  free(idx->ids);
  free(idx->names);
  free(idx->lists);
  free(idx->generic);
  free(idx);
}

uint32_t rc_selindex_generation(const rc_selindex_t *idx) { return idx->gen; }
uint32_t rc_selindex_size(const rc_selindex_t *idx) { return idx->n; }

/* Binary search for __name__ in sorted labels. */
static const rc_label_t *find_name(const rc_label_t *labels, uint32_t n) {
  uint32_t lo = 0, hi = n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    int c = labels[mid].name_len ? (unsigned char)labels[mid].name[0] - '_' : -1;
    if (c == 0) c = rc_bytes_cmp(labels[mid].name, labels[mid].name_len, "__name__", 8);
    if (c == 0) return &labels[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

uint32_t rc_selindex_match(const rc_selindex_t *idx, rc_matcher_scratch_t *scr,
                           const rc_label_t *labels, uint32_t n, uint32_t *out_ids, uint32_t max) {
  static const uint32_t no_entries[1];
  const uint32_t *a = no_entries; /* never NULL: na == 0 says it is empty */
  uint32_t na = 0;
  const rc_label_t *nm = find_name(labels, n);
  if (nm != NULL && nm->value_len > 0) {
    uint32_t h = name_home(nm->value, nm->value_len, idx->nmask);
    for (;; h = (h + 1) & idx->nmask) {
      const name_slot_t *s = &idx->names[h];
      if (s->name == NULL) break;
      if (s->len == nm->value_len && memcmp(s->name, nm->value, s->len) == 0) {
        a = idx->lists + s->off;
        na = s->cnt;
        break;
      }
    }
  }
  /* Merge the by-name candidates with the name-less ones, in entry order. */
  const uint32_t *b = idx->generic;
  uint32_t nb = idx->ngeneric, ia = 0, ib = 0, cnt = 0;
  while (ia < na || ib < nb) {
    uint32_t e = (ib >= nb || (ia < na && a[ia] < b[ib])) ? a[ia++] : b[ib++];
    if (rc_selector_matches(idx->sel[e], scr, labels, n)) {
      if (cnt < max) out_ids[cnt] = idx->ids[e];
      cnt++;
    }
  }
  return cnt;
}

/* ---- cache: slots and the decision table ------------------------------------------------ */

typedef struct cslot {
  uint64_t lo, hi;
  uint32_t gen; /* 0: empty */
  uint32_t dec; /* decision index | REF_BIT */
} cslot_t;

#define REF_BIT 0x80000000u

typedef struct decision {
  uint64_t h;
  uint32_t off, n;
} decision_t;

struct rc_selindex_cache {
  rc_mem_t *mem; /* every block below, and the cache itself; a mapped table by its size */
  cslot_t *slots;
  uint32_t mask, shift, max, count, live, hand, gen;
  rc_selindex_policy_t policy;

  /* Interned id lists of the current generation; decision 0 is the empty list. */
  decision_t *decs;
  uint32_t ndecs, max_decs;
  uint32_t *dmap; /* decision index + 1, 0 = empty; open addressing on decision_t.h */
  uint32_t dmask;
  uint32_t *pool;
  uint32_t pool_len, pool_cap, pool_max;

  uint32_t *tmp; /* one evaluation's ids */
  uint32_t tmp_cap;
  rc_matcher_scratch_t *scr;

  _Atomic uint64_t hits, misses, stale, selected, dropped, full, evictions, uncached, regex_errors,
      entries;
};

/* Counters have one writer (the owner thread), so a relaxed load+store is enough and costs
 * no locked instruction; readers on other threads see a recent value. */
#define BUMP(c, field)                                                                            \
  atomic_store_explicit(&(c)->field, atomic_load_explicit(&(c)->field, memory_order_relaxed) + 1, \
                        memory_order_relaxed)
#define SETC(c, field, v) atomic_store_explicit(&(c)->field, (v), memory_order_relaxed)

/* Slot tables past a few MiB are mapped directly and offered transparent huge pages: every
 * lookup in a table larger than the CPU caches is a cache miss, and with 4 KiB pages also a
 * TLB miss, which 2 MiB pages mostly remove (THP is often "madvise"-only). */
#define HUGE_TABLE_BYTES (4u << 20)

/* A mapping is counted at its full size, as malloc_usable_size counts a large calloc (glibc
 * maps those too): the pages are committed as the table fills, and a bound must assume they
 * will be. */
static cslot_t *slots_alloc(rc_mem_t *m, size_t n) {
  size_t bytes = n * sizeof(cslot_t);
  if (bytes < HUGE_TABLE_BYTES) return rc_mem_calloc(m, n, sizeof(cslot_t));
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
  (void)madvise(p, bytes, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#endif
  rc_mem_account(m, (int64_t)bytes);
  return p; /* anonymous mappings are zero-filled: every slot starts empty */
}

static void slots_free(rc_mem_t *m, cslot_t *p, size_t n) {
  if (p == NULL) return;
  if (n * sizeof(cslot_t) < HUGE_TABLE_BYTES) {
    rc_mem_free(m, p);
  } else {
    munmap(p, n * sizeof(cslot_t));
    rc_mem_account(m, -(int64_t)(n * sizeof(cslot_t)));
  }
}

int rc_selindex_cache_new(const rc_selindex_cache_opts_t *o, rc_selindex_cache_t **out) {
  *out = NULL;
  if (o == NULL || o->max_entries == 0 || o->max_entries > (1u << 28) ||
      (o->policy != RC_SELINDEX_EVICT && o->policy != RC_SELINDEX_REFUSE))
    return RC_EINVAL;
  rc_selindex_cache_t *c = rc_mem_calloc(o->mem, 1, sizeof(*c));
  if (c == NULL) return RC_ENOMEM;
  c->mem = o->mem;
  uint32_t cap = 16, bits = 4;
  /* Load stays <= 7/8 at max_entries. With 3/4 the power-of-two rounding often doubled the
   * table (100k entries took 262,144 slots: 63 bytes per cached series, over the store's
   * 64-byte budget for a series no rule wants); at 7/8 the same 100k take 131,072 slots (31
   * bytes each), and linear probing at that load still averages under 5 probes for a hit. */
  while ((uint64_t)cap * 7 < (uint64_t)o->max_entries * 8) cap <<= 1, bits++;
  c->mask = cap - 1;
  c->slots = slots_alloc(c->mem, cap);
  c->shift = 64 - bits;
  c->max = o->max_entries;
  c->policy = o->policy;
  c->max_decs = o->max_decisions ? o->max_decisions : 4096;
  if (c->max_decs > (1u << 24)) c->max_decs = 1u << 24;
  c->pool_max = o->max_decision_ids ? o->max_decision_ids : (1u << 20);
  uint32_t dcap = 16;
  while (dcap < c->max_decs * 2) dcap <<= 1;
  c->dmask = dcap - 1;
  c->decs = rc_mem_malloc(c->mem, c->max_decs * sizeof(*c->decs));
  c->dmap = rc_mem_calloc(c->mem, dcap, sizeof(*c->dmap));
  c->scr = rc_matcher_scratch_new();
  if (c->slots == NULL || c->decs == NULL || c->dmap == NULL || c->scr == NULL) {
    rc_selindex_cache_free(c);
    return RC_ENOMEM;
  }
  c->decs[0] = (decision_t){0, 0, 0};
  c->ndecs = 1;
  *out = c;
  return 0;
}

void rc_selindex_cache_free(rc_selindex_cache_t *c) {
  if (c == NULL) return;
  rc_mem_t *m = c->mem;
  slots_free(m, c->slots, (size_t)c->mask + 1);
  rc_mem_free(m, c->decs);
  rc_mem_free(m, c->dmap);
  rc_mem_free(m, c->pool);
  rc_mem_free(m, c->tmp);
  rc_matcher_scratch_free(c->scr);
  rc_mem_free(m, c);
}

void rc_selindex_cache_stats(const rc_selindex_cache_t *c, rc_selindex_stats_t *o) {
#define LOADC(f) o->f = atomic_load_explicit(&c->f, memory_order_relaxed)
  LOADC(hits);
  LOADC(misses);
  LOADC(stale);
  LOADC(selected);
  LOADC(dropped);
  LOADC(full);
  LOADC(evictions);
  LOADC(uncached);
  LOADC(regex_errors);
  LOADC(entries);
#undef LOADC
}

/* A new index: forget the interned decisions (old entries become stale by generation and are
 * never read through them) and make sure one evaluation's ids fit in tmp. */
static int switch_generation(rc_selindex_cache_t *c, const rc_selindex_t *idx) {
  if (idx->n > c->tmp_cap) {
    uint32_t *nt = rc_mem_realloc(c->mem, c->tmp, idx->n * sizeof(*nt));
    if (nt == NULL) return RC_ENOMEM;
    c->tmp = nt;
    c->tmp_cap = idx->n;
  }
  c->gen = idx->gen;
  c->live = 0;
  c->ndecs = 1;
  c->pool_len = 0;
  memset(c->dmap, 0, (c->dmask + 1) * sizeof(*c->dmap));
  return 0;
}

/* Interns ids[0..n); returns the decision index, or -1 when the table is full. */
static int64_t intern(rc_selindex_cache_t *c, const uint32_t *ids, uint32_t n) {
  if (n == 0) return 0;
  uint64_t h = XXH3_64bits(ids, n * sizeof(*ids));
  uint32_t i = (uint32_t)h & c->dmask;
  for (; c->dmap[i] != 0; i = (i + 1) & c->dmask) {
    const decision_t *d = &c->decs[c->dmap[i] - 1];
    if (d->h == h && d->n == n && memcmp(c->pool + d->off, ids, n * sizeof(*ids)) == 0)
      return c->dmap[i] - 1;
  }
  if (c->ndecs >= c->max_decs || n > c->pool_max - c->pool_len) return -1;
  if (c->pool_len + n > c->pool_cap) {
    uint32_t nc = c->pool_cap ? c->pool_cap : 256;
    while (nc < c->pool_len + n) nc = nc > c->pool_max / 2 ? c->pool_max : nc * 2;
    uint32_t *np = rc_mem_realloc(c->mem, c->pool, nc * sizeof(*np));
    if (np == NULL) return -1; /* treated like a full table: answer uncached */
    c->pool = np;
    c->pool_cap = nc;
  }
  memcpy(c->pool + c->pool_len, ids, n * sizeof(*ids));
  c->decs[c->ndecs] = (decision_t){h, c->pool_len, n};
  c->pool_len += n;
  c->dmap[i] = c->ndecs + 1;
  return c->ndecs++;
}

static inline uint32_t home(const rc_selindex_cache_t *c, uint64_t lo) {
  return (uint32_t)(lo >> c->shift);
}

/* Removes slot i, shifting later members of its probe run back (no tombstones, so lookups
 * never slow down as entries come and go). */
static void slot_delete(rc_selindex_cache_t *c, uint32_t i) {
  cslot_t *s = c->slots;
  for (uint32_t j = i;;) {
    j = (j + 1) & c->mask;
    if (s[j].gen == 0) break;
    uint32_t k = home(c, s[j].lo);
    /* s[j] may fill the hole at i if i lies on its probe path k..j. */
    if (((j - k) & c->mask) >= ((j - i) & c->mask)) {
      s[i] = s[j];
      i = j;
    }
  }
  memset(&s[i], 0, sizeof(s[i]));
  c->count--;
  SETC(c, entries, c->count);
}

/* CLOCK: frees one slot. Older-generation entries go at once; a current one survives if it
 * was used since the hand last passed. With stale_only, only older generations are taken.
 * Returns 1 if a slot was freed. */
static int evict_one(rc_selindex_cache_t *c, int stale_only) {
  for (uint64_t steps = 0; steps <= 2ull * (c->mask + 1); steps++) {
    cslot_t *e = &c->slots[c->hand];
    if (e->gen != 0) {
      if (e->gen != c->gen) {
        slot_delete(c, c->hand); /* the hand stays: a shifted entry may now sit here */
        return 1;
      }
      if (!stale_only) {
        if (e->dec & REF_BIT) {
          e->dec &= ~REF_BIT;
        } else {
          slot_delete(c, c->hand);
          c->live--;
          BUMP(c, evictions);
          return 1;
        }
      }
    }
    c->hand = (c->hand + 1) & c->mask;
  }
  return 0;
}

static const uint32_t g_no_ids[1];

/* The ids of decision d (never a NULL pointer, even for the empty decision). */
static inline const uint32_t *dec_ids(const rc_selindex_cache_t *c, int64_t d) {
  return c->decs[d].n ? c->pool + c->decs[d].off : g_no_ids;
}

static void answer(rc_selindex_cache_t *c, rc_selindex_decision_t *out, const uint32_t *ids,
                   uint32_t n, int cached) {
  out->ids = ids != NULL ? ids : g_no_ids;
  out->n = n;
  out->cached = (uint8_t)cached;
  if (n)
    BUMP(c, selected);
  else
    BUMP(c, dropped);
}

/* Evaluates the label set against the index into c->tmp; returns the count. */
static uint32_t evaluate(rc_selindex_cache_t *c, const rc_selindex_t *idx, const rc_label_t *labels,
                         uint32_t n) {
  uint64_t e0 = rc_matcher_scratch_errors(c->scr);
  uint32_t k = rc_selindex_match(idx, c->scr, labels, n, c->tmp, c->tmp_cap);
  uint64_t e1 = rc_matcher_scratch_errors(c->scr);
  if (e1 != e0) SETC(c, regex_errors, e1);
  return k; /* <= tmp_cap: every entry matches at most once */
}

int rc_selindex_cache_decide_hashed(rc_selindex_cache_t *c, const rc_selindex_t *idx,
                                    rc_selindex_hash_t h, const rc_label_t *labels, uint32_t n,
                                    rc_selindex_decision_t *out) {
  if (RC_UNLIKELY(idx->gen != c->gen)) {
    int rc = switch_generation(c, idx);
    if (rc != 0) return rc;
  }
  cslot_t *s = c->slots;
  uint32_t i = home(c, h.lo);
  for (;; i = (i + 1) & c->mask) {
    cslot_t *e = &s[i];
    if (e->gen == 0) break;
    if (e->lo != h.lo || e->hi != h.hi) continue;
    if (RC_LIKELY(e->gen == c->gen)) {
      /* Written only when it changes: a hit then leaves its line clean. */
      if (!(e->dec & REF_BIT)) e->dec |= REF_BIT;
      uint32_t d = e->dec & ~REF_BIT;
      BUMP(c, hits);
      answer(c, out, dec_ids(c, d), c->decs[d].n, 1);
      return 0;
    }
    /* Decided under an older index: decide again, in place. */
    if (labels == NULL) return RC_ENOENT;
    BUMP(c, misses);
    BUMP(c, stale);
    uint32_t k = evaluate(c, idx, labels, n);
    int64_t d = intern(c, c->tmp, k);
    if (d < 0) {
      BUMP(c, uncached);
      answer(c, out, c->tmp, k, 0);
      return 0;
    }
    e->gen = c->gen;
    e->dec = (uint32_t)d | REF_BIT;
    c->live++;
    answer(c, out, dec_ids(c, d), k, 0);
    return 0;
  }
  if (labels == NULL) return RC_ENOENT;
  BUMP(c, misses);
  uint32_t k = evaluate(c, idx, labels, n);
  int64_t d = intern(c, c->tmp, k);
  int room = d >= 0;
  if (room && c->count >= c->max) {
    BUMP(c, full);
    if (c->policy == RC_SELINDEX_EVICT)
      room = evict_one(c, 0);
    else
      room = c->count > c->live && evict_one(c, 1);
  }
  if (!room) {
    BUMP(c, uncached);
    answer(c, out, c->tmp, k, 0);
    return 0;
  }
  /* The key is absent; eviction may have moved entries, so look for a hole from home. */
  for (i = home(c, h.lo); s[i].gen != 0; i = (i + 1) & c->mask) {
  }
  /* No reference bit yet: a series must come back once to earn its second chance, so a
   * flood of one-off label sets cycles through without displacing series seen repeatedly. */
  s[i] = (cslot_t){.lo = h.lo, .hi = h.hi, .gen = c->gen, .dec = (uint32_t)d};
  c->count++;
  c->live++;
  SETC(c, entries, c->count);
  answer(c, out, dec_ids(c, d), k, 0);
  return 0;
}

void rc_selindex_cache_prefetch(const rc_selindex_cache_t *c, rc_selindex_hash_t h) {
  __builtin_prefetch(&c->slots[home(c, h.lo)], 0, 3);
}

int rc_selindex_cache_decide(rc_selindex_cache_t *c, const rc_selindex_t *idx,
                             const rc_label_t *labels, uint32_t n, rc_selindex_decision_t *out) {
  return rc_selindex_cache_decide_hashed(c, idx, rc_selindex_hash_labels(labels, n), labels, n,
                                         out);
}
