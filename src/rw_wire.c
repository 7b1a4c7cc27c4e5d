/* rw_wire.c: the default decode backend — a zero-copy protobuf reader for exactly the two
 * remote-write messages. Labels and v2 symbols point straight into the decompressed buffer
 * (owned by the batch's arena); nothing is copied and no message structs are built. This is
 * what makes the ingest target reachable: protobuf-c's generic unpacker builds a struct per
 * message and copies every label string, and measured ~17x the cost of snappy decompression
 * on Prometheus-shaped requests (bench/decode_bench).
 *
 * Semantics follow protobuf and protobuf-c (the reference, rw_pbc.c), and a differential test
 * plus a fuzz target hold the two to the same answers:
 *   - tags are varints of at most 5 bytes; wire types 3, 4, 6, 7 are errors; field number 0
 *     is an error in a one-byte tag and skipped otherwise (protobuf-c's behaviour);
 *   - a known field with the wrong wire type is an error; unknown fields are skipped;
 *   - varints are at most 10 bytes; length prefixes at most 5 bytes and within the message;
 *   - repeated scalars are accepted packed and unpacked, even mixed;
 *   - 32-bit fields take the low 32 bits of the varint; sint32/sint64 are zigzag;
 *   - for oneof and singular fields the last occurrence wins.
 * Every sub-message is parsed completely before its series is judged, so a malformed message
 * fails the request even inside a series that would be dropped anyway (as protobuf-c does).
 *
 *   v1 WriteRequest { 1: TimeSeries* { 1: Label* {1: name, 2: value}, 2: Sample* {1: f64,
 *                     2: ts}, 3: Exemplar*, 4: Histogram* }, 3: MetricMetadata* }
 *   v2 Request      { 4: bytes* symbols, 5: TimeSeries* { 1: refs, 2: Sample* {1,2,3: st},
 *                     3: Histogram*, 4: Exemplar*, 5: Metadata, 6: created ts } }
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>
#define XXH_INLINE_ALL /* the label-set key: XXH3 over ~200 bytes per series, inlined */
#include <xxhash.h>

#include "rw_internal.h"
#include "selindex.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "rw_wire.c reads fixed64 fields with memcpy and assumes a little-endian host"
#endif

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct rd {
  const uint8_t *p, *end;
} rd_t;

/*------------------------------------------------------------------------------------------
 * Wire primitives. Each returns 1 on success, 0 on malformed input.
 *----------------------------------------------------------------------------------------*/

static inline int rd_varint(rd_t *r, uint64_t *v) {
  const uint8_t *p = r->p;
  if (RC_LIKELY(p < r->end && *p < 0x80)) {
    *v = *p;
    r->p = p + 1;
    return 1;
  }
  uint64_t x = 0;
  for (int i = 0; i < 10; i++) {
    if (p >= r->end) return 0;
    uint8_t b = *p++;
    x |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      r->p = p;
      *v = x;
      return 1;
    }
  }
  return 0;
}

/* A varint of at most 5 bytes (tags and length prefixes). */
static inline int rd_varint32(rd_t *r, uint64_t *v) {
  const uint8_t *start = r->p;
  if (!rd_varint(r, v)) return 0;
  return r->p - start <= 5;
}

static inline int rd_tag(rd_t *r, uint32_t *field, int *wt) {
  uint64_t t;
  /* protobuf-c refuses field 0 in a one-byte tag (0x00..0x07) but skips it as unknown when
   * the tag takes more bytes; we match it, since no real sender writes either. */
  if (r->p < r->end && *r->p < 0x08) return 0;
  if (!rd_varint32(r, &t)) return 0;
  *field = (uint32_t)(t >> 3) & 0x1fffffffu;
  *wt = (int)(t & 7);
  /* Field number 0 is invalid in protobuf, but protobuf-c (the reference) skips it as an
   * unknown field, and so do we: it carries nothing we read either way. */
  return *wt == WT_VARINT || *wt == WT_I64 || *wt == WT_LEN || *wt == WT_I32;
}

static inline int rd_len(rd_t *r, rd_t *sub) {
  uint64_t n;
  if (!rd_varint32(r, &n) || n > (uint64_t)(r->end - r->p)) return 0;
  sub->p = r->p;
  sub->end = r->p + n;
  r->p += n;
  return 1;
}

static inline int rd_f64(rd_t *r, double *v) {
  if (r->end - r->p < 8) return 0;
  memcpy(v, r->p, 8);
  r->p += 8;
  return 1;
}

static int rd_skip(rd_t *r, int wt) {
  uint64_t v = 0;
  rd_t sub = {0};
  switch (wt) {
    case WT_VARINT: return rd_varint(r, &v);
    case WT_I64:
      if (r->end - r->p < 8) return 0;
      r->p += 8;
      return 1;
    case WT_LEN: return rd_len(r, &sub);
    case WT_I32:
      if (r->end - r->p < 4) return 0;
      r->p += 4;
      return 1;
    default: return 0;
  }
}

static inline int32_t zz32(uint64_t v) {
  uint32_t u = (uint32_t)v;
  return (int32_t)((u >> 1) ^ (0u - (u & 1)));
}
static inline int64_t zz64(uint64_t v) { return (int64_t)((v >> 1) ^ (0ull - (v & 1))); }

/* Counts the elements of a repeated scalar field occurrence (packed or not). elem = 0 for
 * varints, 8 for doubles. */
static int count_repeated(rd_t *r, int wt, int elem, uint32_t *n) {
  if (wt == WT_LEN) {
    rd_t sub = {0};
    if (!rd_len(r, &sub)) return 0;
    if (elem == 8) {
      if ((sub.end - sub.p) % 8) return 0;
      *n += (uint32_t)((sub.end - sub.p) / 8);
      return 1;
    }
    uint32_t k = 0;
    for (const uint8_t *q = sub.p; q < sub.end; q++) k += !(*q & 0x80);
    if (sub.end > sub.p && (sub.end[-1] & 0x80)) return 0; /* last varint unterminated */
    *n += k;
    return 1;
  }
  if (wt != (elem == 8 ? WT_I64 : WT_VARINT)) return 0;
  (*n)++;
  return rd_skip(r, wt);
}

/* Appends one occurrence of a repeated varint field to out[*n]. */
static int read_varints(rd_t *r, int wt, uint64_t *out, uint32_t *n, uint32_t cap) {
  if (wt == WT_VARINT) {
    if (*n >= cap || !rd_varint(r, &out[*n])) return 0;
    (*n)++;
    return 1;
  }
  rd_t sub = {0};
  if (!rd_len(r, &sub)) return 0;
  while (sub.p < sub.end) {
    if (*n >= cap || !rd_varint(&sub, &out[*n])) return 0;
    (*n)++;
  }
  return 1;
}

static int read_doubles(rd_t *r, int wt, double *out, uint32_t *n, uint32_t cap) {
  if (wt == WT_I64) {
    if (*n >= cap || !rd_f64(r, &out[*n])) return 0;
    (*n)++;
    return 1;
  }
  rd_t sub = {0};
  if (!rd_len(r, &sub)) return 0;
  while (sub.p < sub.end) {
    if (*n >= cap || !rd_f64(&sub, &out[*n])) return 0;
    (*n)++;
  }
  return 1;
}

/*------------------------------------------------------------------------------------------
 * Shared sub-messages
 *----------------------------------------------------------------------------------------*/

/* Label {1: bytes name, 2: bytes value}. */
static int parse_label(rd_t m, rc_label_t *l) {
  l->name = l->value = "";
  l->name_len = l->value_len = 0;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0;
    rd_t s = {0};
    if (!rd_tag(&m, &f, &wt)) return 0;
    if (f == 1 || f == 2) {
      if (wt != WT_LEN || !rd_len(&m, &s)) return 0;
      if (f == 1) {
        l->name = (const char *)s.p;
        l->name_len = (uint32_t)(s.end - s.p);
      } else {
        l->value = (const char *)s.p;
        l->value_len = (uint32_t)(s.end - s.p);
      }
    } else if (!rd_skip(&m, wt)) {
      return 0;
    }
  }
  return 1;
}

/* Sample {1: double value, 2: int64 timestamp, 3: int64 start_timestamp (v2)}. */
static int parse_sample(rd_t m, rc_sample_t *s, int v2) {
  /* s is an element of an array the counting pass sized from the same bytes: it saw this
   * field, so the array exists (the analyser cannot relate the two passes). */
  s->value = 0; // NOLINT(clang-analyzer-core.NullDereference)
  s->ts_ms = s->start_ts_ms = 0;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0;
    uint64_t v = 0;
    if (!rd_tag(&m, &f, &wt)) return 0;
    if (f == 1) {
      if (wt != WT_I64 || !rd_f64(&m, &s->value)) return 0;
    } else if (f == 2 || (v2 && f == 3)) {
      if (wt != WT_VARINT || !rd_varint(&m, &v)) return 0;
      if (f == 2) s->ts_ms = (int64_t)v;
      else s->start_ts_ms = (int64_t)v;
    } else if (!rd_skip(&m, wt)) {
      return 0;
    }
  }
  return 1;
}

/* BucketSpan {1: sint32 offset, 2: uint32 length}. */
static int parse_span(rd_t m, rc_span_t *sp) {
  /* As parse_sample: an element of an array the counting pass sized from the same bytes. */
  sp->offset = 0; // NOLINT(clang-analyzer-core.NullDereference)
  sp->length = 0;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0;
    uint64_t v = 0;
    if (!rd_tag(&m, &f, &wt)) return 0;
    if (f == 1 || f == 2) {
      if (wt != WT_VARINT || !rd_varint(&m, &v)) return 0;
      if (f == 1) sp->offset = zz32(v);
      else sp->length = (uint32_t)v;
    } else if (!rd_skip(&m, wt)) {
      return 0;
    }
  }
  return 1;
}

/* Histogram: see shared/reference/remote-write.md §3 for the field table. Two passes: count
 * the repeated fields, allocate, fill. Sets *mixed when integer deltas and float counts are
 * both present. */
static int parse_histogram(rw_ctx_t *c, rd_t m, rc_histogram_t *h, int v2, int *mixed,
                           int *oom) {
  uint32_t n_ns = 0, n_ps = 0, n_nd = 0, n_pd = 0, n_nc = 0, n_pc = 0, n_cv = 0;
  rd_t scan = m;
  while (scan.p < scan.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1;
    rd_t s = {0};
    if (!rd_tag(&scan, &f, &wt)) return 0;
    switch (f) {
      case 1: case 4: case 6: case 14: case 15:
        ok = wt == WT_VARINT && rd_skip(&scan, wt);
        break;
      case 2: case 3: case 5: case 7:
        ok = wt == WT_I64 && rd_skip(&scan, wt);
        break;
      case 8: ok = wt == WT_LEN && rd_len(&scan, &s); n_ns++; break;
      case 11: ok = wt == WT_LEN && rd_len(&scan, &s); n_ps++; break;
      case 9: ok = count_repeated(&scan, wt, 0, &n_nd); break;
      case 12: ok = count_repeated(&scan, wt, 0, &n_pd); break;
      case 10: ok = count_repeated(&scan, wt, 8, &n_nc); break;
      case 13: ok = count_repeated(&scan, wt, 8, &n_pc); break;
      case 16: ok = count_repeated(&scan, wt, 8, &n_cv); break;
      case 17: /* start_timestamp in v2; an unknown field in v1 */
        ok = v2 ? wt == WT_VARINT && rd_skip(&scan, wt) : rd_skip(&scan, wt);
        break;
      default: ok = rd_skip(&scan, wt); break;
    }
    if (!ok) return 0;
  }
  memset(h, 0, sizeof(*h));
  rc_span_t *ns = n_ns ? rc_arena_alloc(c->a, n_ns * sizeof(rc_span_t)) : NULL;
  rc_span_t *ps = n_ps ? rc_arena_alloc(c->a, n_ps * sizeof(rc_span_t)) : NULL;
  uint64_t *nd = n_nd ? rc_arena_alloc(c->a, n_nd * sizeof(uint64_t)) : NULL;
  uint64_t *pd = n_pd ? rc_arena_alloc(c->a, n_pd * sizeof(uint64_t)) : NULL;
  double *nc = n_nc ? rc_arena_alloc(c->a, n_nc * sizeof(double)) : NULL;
  double *pc = n_pc ? rc_arena_alloc(c->a, n_pc * sizeof(double)) : NULL;
  double *cv = n_cv ? rc_arena_alloc(c->a, n_cv * sizeof(double)) : NULL;
  if ((n_ns && !ns) || (n_ps && !ps) || (n_nd && !nd) || (n_pd && !pd) || (n_nc && !nc) ||
      (n_pc && !pc) || (n_cv && !cv)) {
    *oom = 1;
    return 1;
  }
  uint32_t i_ns = 0, i_ps = 0, i_nd = 0, i_pd = 0, i_nc = 0, i_pc = 0, i_cv = 0;
  int count_float = 0, zero_float = 0;
  uint64_t count_int = 0, zero_int = 0;
  double count_f = 0, zero_f = 0;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1;
    uint64_t v = 0;
    rd_t s = {0};
    if (!rd_tag(&m, &f, &wt)) return 0;
    switch (f) {
      case 1: ok = rd_varint(&m, &count_int); count_float = 0; break;
      case 2: ok = rd_f64(&m, &count_f); count_float = 1; break;
      case 3: ok = rd_f64(&m, &h->sum); break;
      case 4: ok = rd_varint(&m, &v); h->schema = zz32(v); break;
      case 5: ok = rd_f64(&m, &h->zero_threshold); break;
      case 6: ok = rd_varint(&m, &zero_int); zero_float = 0; break;
      case 7: ok = rd_f64(&m, &zero_f); zero_float = 1; break;
      case 8: ok = rd_len(&m, &s) && parse_span(s, &ns[i_ns++]); break;
      case 11: ok = rd_len(&m, &s) && parse_span(s, &ps[i_ps++]); break;
      case 9: ok = read_varints(&m, wt, nd, &i_nd, n_nd); break;
      case 12: ok = read_varints(&m, wt, pd, &i_pd, n_pd); break;
      case 10: ok = read_doubles(&m, wt, nc, &i_nc, n_nc); break;
      case 13: ok = read_doubles(&m, wt, pc, &i_pc, n_pc); break;
      case 16: ok = read_doubles(&m, wt, cv, &i_cv, n_cv); break;
      case 14: ok = rd_varint(&m, &v); h->reset_hint = (uint8_t)v; break;
      case 15: ok = rd_varint(&m, &v); h->ts_ms = (int64_t)v; break;
      case 17:
        if (v2) {
          ok = rd_varint(&m, &v);
          h->start_ts_ms = (int64_t)v;
        } else {
          ok = rd_skip(&m, wt);
        }
        break;
      default: ok = rd_skip(&m, wt); break;
    }
    if (!ok) return 0;
  }
  /* Deltas are sint64: unzigzag in place (uint64_t and int64_t have the same size). */
  for (uint32_t i = 0; i < n_nd; i++) nd[i] = (uint64_t)zz64(nd[i]);
  for (uint32_t i = 0; i < n_pd; i++) pd[i] = (uint64_t)zz64(pd[i]);
  h->is_stale = rc_is_stale_nan(h->sum);
  h->is_float = count_float || zero_float || n_pc > 0 || n_nc > 0;
  h->count = count_float ? count_f : (double)count_int;
  h->zero_count = zero_float ? zero_f : (double)zero_int;
  *mixed = (n_pd || n_nd) && h->is_float;
  h->n_neg_spans = n_ns;
  h->n_pos_spans = n_ps;
  h->neg_spans = ns;
  h->pos_spans = ps;
  if (h->is_float) {
    h->n_neg = n_nc;
    h->n_pos = n_pc;
    h->neg_counts = nc;
    h->pos_counts = pc;
  } else {
    h->n_neg = n_nd;
    h->n_pos = n_pd;
    h->neg_deltas = (const int64_t *)nd;
    h->pos_deltas = (const int64_t *)pd;
  }
  h->n_custom = n_cv;
  h->custom_values = cv;
  return 1;
}

/*------------------------------------------------------------------------------------------
 * Label-set cache (v1)
 *
 * Prometheus sends the same label sets request after request, and checking them (UTF-8,
 * order, duplicates, names) was about a third of decoding. The cache remembers label sets
 * found valid, sorted and free of empty values, keyed by a 64-bit hash of their raw protobuf
 * bytes under a random per-decoder seed plus their length; a hit skips the checks. A wrong
 * hit needs a 64-bit collision between two byte strings of equal length under a seed the
 * sender does not know. Two-way set-associative, one set per cache line: a new label set
 * takes the first way and pushes the older one to the second. A direct-mapped table of 2^16
 * slots missed for about 1 series in 7 at 10k series and most of them at 100k (colliding
 * pairs evict each other on every request); two ways of 2^17 sets hold 100k series with
 * about 1 in 25 missing (2^16 sets: 1 in 7). 8 MiB per decoder (one per ingest worker),
 * allocated up front; only the pages label sets land on are touched.
 *----------------------------------------------------------------------------------------*/

#define LCACHE_BITS 17
#define LCACHE_WAYS 2

/* 32 bytes, two to a cache line. id_lo/id_hi: the label set's rc_selindex_hash_labels,
 * handed to the store with the series so that it does not hash the labels again (that was
 * about a tenth of ingest, perf, issue 8). A wrong hit would now also give the samples the
 * identity of the other label set: it still needs the 64-bit collision above, about 2^-64
 * per lookup (a few in a million over a year at 2M lookups a second). */
typedef struct lc_slot {
  uint64_t key;
  uint64_t id_lo, id_hi;
  uint32_t len; /* the label fields' bytes; 0 = empty slot (a Label field takes 2 or more) */
  uint16_t nlabels;
  /* Where, from the span's start, the __name__ value's length prefix is: a hit under
   * lazy_labels finds the metric name there without parsing the labels. Label sets whose
   * name lies past 64 KiB are not remembered. */
  uint16_t name_at;
} lc_slot_t;

typedef struct lc_set {
  _Alignas(64) lc_slot_t way[LCACHE_WAYS];
} lc_set_t;

_Static_assert(sizeof(lc_set_t) == 64, "one label-cache set per cache line");

struct rw_lcache {
  lc_set_t sets[1u << LCACHE_BITS]; /* first: the mapping's alignment is theirs */
  uint64_t seed;
  size_t map_bytes;      /* the mapping's length (rw_lcache_free) */
  int lim_set;
  rc_label_limits_t lim; /* the checks the entries passed; other limits clear the cache */
};

struct rw_lcache *rw_lcache_new(void) {
  /* An anonymous mapping, 2 MiB-aligned so that transparent huge pages can back it (the
   * lookups are random: with 4 KiB pages most of them also missed the TLB). Its pages are
   * zero until touched, so the table costs memory only where label sets land, and making a
   * decoder costs no 8 MiB memset (the fuzz replays make thousands). */
  enum { HUGE = 2u << 20 };
  size_t bytes = (sizeof(struct rw_lcache) + HUGE - 1) / HUGE * HUGE;
  uint8_t *m = mmap(NULL, bytes + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
  if (m == MAP_FAILED) return NULL;
  /* The aligned start as an offset into the mapping (pointer arithmetic, no int-to-pointer). */
  size_t head = (HUGE - ((uintptr_t)m & (HUGE - 1))) & (HUGE - 1), tail = HUGE - head;
  uint8_t *start = m + head;
  if (head) munmap(m, head);
  if (tail) munmap(start + bytes, tail);
  struct rw_lcache *lc = (struct rw_lcache *)(void *)start;
#ifdef MADV_HUGEPAGE
  (void)madvise(lc, bytes, MADV_HUGEPAGE); /* advice only: failure changes nothing */
#endif
  lc->map_bytes = bytes;
  if (getrandom(&lc->seed, sizeof(lc->seed), GRND_NONBLOCK) != (ssize_t)sizeof(lc->seed))
    lc->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
  return lc;
}

void rw_lcache_free(struct rw_lcache *lc) {
  if (lc != NULL) munmap(lc, lc->map_bytes);
}

void rw_lcache_check_limits(struct rw_lcache *lc, const rc_label_limits_t *lim) {
  if (lc->lim_set && memcmp(&lc->lim, lim, sizeof(*lim)) == 0) return;
  if (lc->lim_set) memset(lc->sets, 0, sizeof(lc->sets)); /* new limits: forget (rare) */
  lc->lim = *lim;
  lc->lim_set = 1;
}

/*------------------------------------------------------------------------------------------
 * Version 1
 *----------------------------------------------------------------------------------------*/

/* Exemplar (v1) {1: Label*, 2: double, 3: int64}: parsed for well-formedness only. */
static int parse_exemplar_v1(rd_t m) {
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0;
    rd_t s = {0};
    rc_label_t l;
    if (!rd_tag(&m, &f, &wt)) return 0;
    int ok;
    if (f == 1) ok = wt == WT_LEN && rd_len(&m, &s) && parse_label(s, &l);
    else if (f == 2) ok = wt == WT_I64 && rd_skip(&m, wt);
    else if (f == 3) ok = wt == WT_VARINT && rd_skip(&m, wt);
    else ok = rd_skip(&m, wt);
    if (!ok) return 0;
  }
  return 1;
}

/* MetricMetadata {1: enum type, 2: string name, 4: string help, 5: string unit}. */
static int parse_metadata_v1(rd_t m) {
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok;
    if (!rd_tag(&m, &f, &wt)) return 0;
    if (f == 1) ok = wt == WT_VARINT && rd_skip(&m, wt);
    else if (f == 2 || f == 4 || f == 5) ok = wt == WT_LEN && rd_skip(&m, wt);
    else ok = rd_skip(&m, wt);
    if (!ok) return 0;
  }
  return 1;
}

#define PROTO_FAIL_V1(c)                                            \
  rw_fail((c)->res, RC_RWR_PROTOBUF, RC_EPARSE,                     \
          "malformed protobuf: not a valid prometheus.WriteRequest")

static int parse_series_v1_general(rw_ctx_t *c, rd_t m) {
  uint32_t nl = 0, ns = 0, ne = 0, nh = 0;
  rd_t scan = m, s = {0};
  while (scan.p < scan.end) {
    uint32_t f = 0;
    int wt = 0;
    if (!rd_tag(&scan, &f, &wt)) return PROTO_FAIL_V1(c);
    if (f >= 1 && f <= 4) {
      if (wt != WT_LEN || !rd_len(&scan, &s)) return PROTO_FAIL_V1(c);
      nl += f == 1;
      ns += f == 2;
      ne += f == 3;
      nh += f == 4;
    } else if (!rd_skip(&scan, wt)) {
      return PROTO_FAIL_V1(c);
    }
  }
  rc_label_t *labels = rc_arena_alloc(c->a, (nl ? nl : 1) * sizeof(rc_label_t));
  rc_sample_t *samples = ns ? rc_arena_alloc(c->a, ns * sizeof(rc_sample_t)) : NULL;
  rc_histogram_t *hists = nh ? rc_arena_alloc(c->a, nh * sizeof(rc_histogram_t)) : NULL;
  if (labels == NULL || (ns && !samples) || (nh && !hists)) return RW_OOM(c);
  uint32_t il = 0, is = 0, ih = 0;
  int any_mixed = 0, oom = 0;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1, mixed = 0;
    if (!rd_tag(&m, &f, &wt)) return PROTO_FAIL_V1(c);
    if (f >= 1 && f <= 4) {
      rd_len(&m, &s); /* checked in the counting pass */
      if (f == 1) ok = parse_label(s, &labels[il++]);
      else if (f == 2) ok = parse_sample(s, &samples[is++], 0);
      else if (f == 3) ok = parse_exemplar_v1(s);
      else ok = parse_histogram(c, s, &hists[ih++], 0, &mixed, &oom);
      any_mixed |= mixed;
    } else {
      rd_skip(&m, wt);
    }
    if (!ok) return PROTO_FAIL_V1(c);
  }
  if (oom) return RW_OOM(c);
  if (ns == 0 && nh == 0 && ne == 0) return 0; /* e.g. labels only: nothing to ingest */
  if (any_mixed) {
    rw_reject(c, RC_RWS_HISTOGRAM, labels, nl, ns, nh, ne,
              "invalid native histogram: " RW_MIXED_HISTOGRAM);
    return 0;
  }
  rc_series_t sr;
  memset(&sr, 0, sizeof(sr));
  sr.samples = samples;
  sr.histograms = hists;
  sr.nsamples = ns;
  sr.nhistograms = nh;
  sr.nexemplars = ne;
  rw_accept(c, &sr, labels, nl, 0);
  return 0;
}

/* Most series Prometheus sends have a handful of labels and exactly one sample, and no
 * histogram. For those, one pass into stack buffers replaces the count-allocate-fill passes;
 * anything else (histograms, more than RW_LOCAL_* items) takes the general path. */
#define RW_LOCAL_LABELS 64
#define RW_LOCAL_SAMPLES 16

/* The label-set cache's key of a series, worked out a few series ahead of its parse so that
 * the cache slot can be prefetched: with thousands of series the slot is a cache miss, and
 * taken one at a time those misses were the largest single cost of decoding (perf, issue 8). */
typedef struct lc_hint {
  const uint8_t *start; /* NULL: no key (no labels, or the cache is off) */
  uint32_t len;
  uint64_t key;
} lc_hint_t;

/* The span of the label fields from the first one to the last of the run that follows it.
 * Only a hint: parse_series_v1 uses it when its own span is the same bytes. */
static void lc_hint(const rw_ctx_t *c, rd_t m, lc_hint_t *h) {
  const uint8_t *start = NULL, *end = NULL;
  h->start = NULL;
  while (m.p < m.end) {
    const uint8_t *at = m.p;
    uint32_t f = 0;
    int wt = 0;
    rd_t sub = {0};
    if (!rd_tag(&m, &f, &wt)) return;
    if (f == 1 && wt == WT_LEN) {
      if (!rd_len(&m, &sub)) return;
      if (start == NULL) start = at;
      end = m.p;
    } else if (start != NULL) {
      break;
    } else if (!rd_skip(&m, wt)) {
      return;
    }
  }
  if (start == NULL) return;
  h->start = start;
  h->len = (uint32_t)(end - start);
  h->key = XXH3_64bits_withSeed(start, h->len, c->lcache->seed);
  __builtin_prefetch(&c->lcache->sets[h->key >> (64 - LCACHE_BITS)], 1, 3);
}

static size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* The slot of set holding the label fields keyed `key`, `len` bytes long; NULL: none. */
static const lc_slot_t *lc_find(const lc_set_t *set, uint64_t key, uint32_t len) {
  for (int w = 0; w < LCACHE_WAYS; w++) {
    const lc_slot_t *e = &set->way[w];
    if (e->len == len && e->key == key) return e;
  }
  return NULL;
}

/* The __name__ value of a label set the cache knows, from its raw span: 1, or 0 if the prefix
 * at name_at is not a length within the span. That was checked when the set was remembered,
 * so only a 64-bit key collision with other bytes could fail it: then the caller parses. */
static int lc_name(const uint8_t *span, const lc_slot_t *e, const char **name, uint32_t *len) {
  rd_t r = {span + e->name_at, span + e->len};
  uint64_t n = 0;
  if (!rd_varint(&r, &n) || n > (uint64_t)(r.end - r.p)) return 0;
  *name = (const char *)r.p;
  *len = (uint32_t)n;
  return 1;
}

/* The index of the __name__ label in labels parsed from the span the cache knows; -1 when it
 * is not among them (the key collision of lc_name). */
static int64_t lc_metric_index(const rc_label_t *labels, uint32_t nl, const uint8_t *span,
                               const lc_slot_t *e) {
  const char *name;
  uint32_t len;
  if (!lc_name(span, e, &name, &len)) return -1;
  for (uint32_t i = 0; i < nl; i++)
    if (labels[i].value == name && labels[i].value_len == len) return i;
  return -1;
}

static int parse_series_v1(rw_ctx_t *c, rd_t m, const lc_hint_t *hint) {
  rc_label_t lbuf[RW_LOCAL_LABELS];
  rc_sample_t sbuf[RW_LOCAL_SAMPLES];
  uint32_t nl = 0, ns = 0, ne = 0;
  rd_t all = m, s = {0};
  /* The raw bytes of the label fields, when they sit together (as every sender writes them):
   * the label-set cache's key. */
  const uint8_t *lab_start = NULL, *lab_end = NULL;
  int lab_together = 1;
  /* Under lazy_labels, the cache's slot when the hint's span is known: its labels are not
   * parsed at all (that was a fifth of ingest at 10k series, perf, issue 8). */
  const lc_slot_t *raw_hit = NULL;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1;
    const uint8_t *tag_at = m.p;
    if (!rd_tag(&m, &f, &wt)) return PROTO_FAIL_V1(c);
    if (f >= 1 && f <= 4) {
      if (wt != WT_LEN || !rd_len(&m, &s)) return PROTO_FAIL_V1(c);
      if (f == 1) {
        if (nl == 0 && raw_hit == NULL && c->lazy_labels && hint != NULL &&
            hint->start == tag_at) {
          const lc_set_t *set = &c->lcache->sets[hint->key >> (64 - LCACHE_BITS)];
          raw_hit = lc_find(set, hint->key, hint->len);
          if (raw_hit != NULL) {
            lab_start = tag_at;
            lab_end = m.p = tag_at + hint->len; /* the fields lc_hint walked: known sound */
            continue;
          }
        }
        /* A label field after a known run: rare enough (no sender does it) to start over
         * with the labels parsed. */
        if (raw_hit != NULL) return parse_series_v1(c, all, NULL);
        if (nl == RW_LOCAL_LABELS) return parse_series_v1_general(c, all);
        if (nl == 0) lab_start = tag_at;
        else if (tag_at != lab_end) lab_together = 0;
        lab_end = m.p;
        ok = parse_label(s, &lbuf[nl++]);
      } else if (f == 2) {
        if (ns == RW_LOCAL_SAMPLES) return parse_series_v1_general(c, all);
        ok = parse_sample(s, &sbuf[ns++], 0);
      } else if (f == 3) {
        ok = parse_exemplar_v1(s);
        ne++;
      } else {
        return parse_series_v1_general(c, all);
      }
    } else {
      ok = rd_skip(&m, wt);
    }
    if (!ok) return PROTO_FAIL_V1(c);
  }
  if (ns == 0 && ne == 0) return 0;
  rc_sample_t *samples = ns ? rc_arena_alloc(c->a, ns * sizeof(rc_sample_t)) : NULL;
  if (ns && samples == NULL) return RW_OOM(c);
  if (ns) memcpy(samples, sbuf, ns * sizeof(rc_sample_t));
  rc_series_t sr;
  memset(&sr, 0, sizeof(sr));
  sr.samples = samples;
  sr.nsamples = ns;
  sr.nexemplars = ne;
  if (raw_hit != NULL) {
    const char *name;
    uint32_t name_len;
    if (!lc_name(lab_start, raw_hit, &name, &name_len)) return parse_series_v1(c, all, NULL);
    sr.has_id = 1;
    sr.id_lo = raw_hit->id_lo;
    sr.id_hi = raw_hit->id_hi;
    rw_accept_raw(c, &sr, lab_start, raw_hit->len, raw_hit->nlabels, name, name_len);
    return 0;
  }
  rc_label_t *labels = rc_arena_alloc(c->a, (nl ? nl : 1) * sizeof(rc_label_t));
  if (labels == NULL) return RW_OOM(c);
  memcpy(labels, lbuf, nl * sizeof(rc_label_t));
  lc_set_t *set = NULL;
  uint64_t key = 0;
  uint32_t len = 0;
  if (c->lcache != NULL && nl > 0 && lab_together) {
    len = (uint32_t)(lab_end - lab_start);
    if (hint != NULL && hint->start == lab_start && hint->len == len)
      key = hint->key;
    else
      key = XXH3_64bits_withSeed(lab_start, len, c->lcache->seed);
    set = &c->lcache->sets[key >> (64 - LCACHE_BITS)];
    const lc_slot_t *e = lc_find(set, key, len);
    int64_t midx = e != NULL && e->nlabels == nl ? lc_metric_index(labels, nl, lab_start, e) : -1;
    if (midx >= 0) {
      sr.has_id = 1;
      sr.id_lo = e->id_lo;
      sr.id_hi = e->id_hi;
      rw_accept_known(c, &sr, labels, nl, (uint32_t)midx);
      return 0;
    }
  }
  if (!rw_accept(c, &sr, labels, nl, 0) || set == NULL) return 0;
  /* Remember it only if the checks changed nothing: same labels in the same order. */
  rc_series_t *got = &c->b->series[c->b->nseries - 1];
  if (got->nlabels != nl) return 0;
  for (uint32_t i = 0; i < nl; i++)
    if (got->labels[i].name != lbuf[i].name) return 0;
  rc_selindex_hash_t id = rc_selindex_hash_labels(got->labels, nl);
  got->has_id = 1;
  got->id_lo = id.lo;
  got->id_hi = id.hi;
  /* The value's length prefix ends where the value starts. A sender may pad a varint with
   * zero groups (protobuf readers accept that): name_at is found by the minimal length, so a
   * set whose prefix is not minimal is not remembered, or a hit would read its name from the
   * middle of the prefix. */
  const uint8_t *value = (const uint8_t *)got->metric;
  size_t at = (size_t)(value - lab_start) - varint_size(got->metric_len);
  rd_t prefix = {lab_start + at, value};
  uint64_t plen = 0;
  if (at > UINT16_MAX || !rd_varint(&prefix, &plen) || plen != got->metric_len ||
      prefix.p != value)
    return 0;
  for (int w = LCACHE_WAYS - 1; w > 0; w--) set->way[w] = set->way[w - 1];
  set->way[0] = (lc_slot_t){.key = key, .id_lo = id.lo, .id_hi = id.hi, .len = len,
                            .nlabels = (uint16_t)nl, .name_at = (uint16_t)at};
  return 0;
}

/* Moves r to the next TimeSeries (field 1) of a WriteRequest already checked by the scan in
 * rw_wire_v1; 0 at the end. */
static int next_series_v1(rd_t *r, rd_t *s) {
  while (r->p < r->end) {
    uint32_t f = 0;
    int wt = 0;
    if (!rd_tag(r, &f, &wt)) return 0;
    if (f == 1) return rd_len(r, s);
    if (!rd_skip(r, wt)) return 0;
  }
  return 0;
}

int rw_wire_v1(rw_ctx_t *c, const uint8_t *buf, size_t len) {
  rd_t m = {buf, buf + len}, scan = m, s = {0}, s2 = {0};
  uint32_t nts = 0;
  while (scan.p < scan.end) {
    uint32_t f = 0;
    int wt = 0;
    if (!rd_tag(&scan, &f, &wt)) return PROTO_FAIL_V1(c);
    if (f == 1 || f == 3) {
      if (wt != WT_LEN || !rd_len(&scan, &s)) return PROTO_FAIL_V1(c);
      if (f == 1) nts++;
      else if (!parse_metadata_v1(s)) return PROTO_FAIL_V1(c);
      else c->b->nmetadata++;
    } else if (!rd_skip(&scan, wt)) {
      return PROTO_FAIL_V1(c);
    }
  }
  c->b->series = rc_arena_alloc(c->a, (nts ? nts : 1) * sizeof(rc_series_t));
  if (c->b->series == NULL) return RW_OOM(c);
  /* The scan above checked the top level, so these walks cannot fail. `ahead` runs LC_AHEAD
   * series in front of `m`, computing keys and prefetching their cache slots into a ring. */
  enum { LC_AHEAD = 8 };
  lc_hint_t ring[LC_AHEAD];
  rd_t ahead = m;
  uint32_t nahead = 0, ndone = 0;
  if (c->lcache != NULL)
    while (nahead < LC_AHEAD && next_series_v1(&ahead, &s)) lc_hint(c, s, &ring[nahead++]);
  while (next_series_v1(&m, &s)) {
    const lc_hint_t *h = NULL;
    lc_hint_t cur;
    if (c->lcache != NULL) {
      cur = ring[ndone++ % LC_AHEAD];
      h = &cur;
      if (next_series_v1(&ahead, &s2)) lc_hint(c, s2, &ring[nahead++ % LC_AHEAD]);
    }
    int rc = parse_series_v1(c, s, h);
    if (rc != 0) return rc;
  }
  return 0;
}

const rc_label_t *rc_rw_series_labels(const rc_series_t *s, rc_label_t *buf, uint32_t cap) {
  if (s->labels != NULL) return s->labels;
  if (s->raw_labels == NULL || cap < s->nlabels) return NULL;
  rd_t m = {s->raw_labels, s->raw_labels + s->raw_labels_len}, sub = {0};
  uint32_t n = 0;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0;
    if (!rd_tag(&m, &f, &wt) || f != 1 || wt != WT_LEN || !rd_len(&m, &sub) ||
        n == s->nlabels || !parse_label(sub, &buf[n++]))
      return NULL;
  }
  return n == s->nlabels ? buf : NULL;
}

/*------------------------------------------------------------------------------------------
 * Version 2
 *----------------------------------------------------------------------------------------*/

#define PROTO_FAIL_V2(c)                                            \
  rw_fail((c)->res, RC_RWR_PROTOBUF, RC_EPARSE,                     \
          "malformed protobuf: not a valid io.prometheus.write.v2.Request")

typedef struct sym {
  const char *p;
  uint32_t len;
  uint32_t utf8; /* 1 if valid UTF-8: checked once per request, not once per reference */
} sym_t;

/* Exemplar (v2) {1: uint32* refs, 2: double, 3: int64}. Sets *refs_ok to whether the refs are
 * even in number and all within the symbol table. */
static int parse_exemplar_v2(rd_t m, uint32_t nsym, int *refs_ok) {
  uint32_t nrefs = 0;
  int in_range = 1;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1;
    uint64_t v = 0;
    if (!rd_tag(&m, &f, &wt)) return 0;
    if (f == 1) {
      if (wt == WT_VARINT) {
        ok = rd_varint(&m, &v);
        in_range &= (uint32_t)v < nsym;
        nrefs++;
      } else if (wt == WT_LEN) {
        rd_t s = {0};
        ok = rd_len(&m, &s);
        while (ok && s.p < s.end) {
          ok = rd_varint(&s, &v);
          in_range &= (uint32_t)v < nsym;
          nrefs++;
        }
      } else {
        ok = 0;
      }
    } else if (f == 2) {
      ok = wt == WT_I64 && rd_skip(&m, wt);
    } else if (f == 3) {
      ok = wt == WT_VARINT && rd_skip(&m, wt);
    } else {
      ok = rd_skip(&m, wt);
    }
    if (!ok) return 0;
  }
  *refs_ok = in_range && nrefs % 2 == 0;
  return 1;
}

/* Metadata {1: enum type, 3: uint32 help_ref, 4: uint32 unit_ref}; sets *type when present
 * and raises *max_ref to the largest of the refs seen (they must index the symbols). */
static int parse_metadata_v2(rd_t m, int32_t *type, uint32_t *max_ref) {
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1;
    uint64_t v = 0;
    if (!rd_tag(&m, &f, &wt)) return 0;
    if (f == 1 || f == 3 || f == 4) {
      ok = wt == WT_VARINT && rd_varint(&m, &v);
      if (f == 1) *type = (int32_t)(uint32_t)v;
      else if ((uint32_t)v > *max_ref) *max_ref = (uint32_t)v;
    } else {
      ok = rd_skip(&m, wt);
    }
    if (!ok) return 0;
  }
  return 1;
}

static int parse_series_v2_general(rw_ctx_t *c, rd_t m, const sym_t *syms, uint32_t nsym) {
  uint32_t nrefs = 0, ns = 0, nh = 0, ne = 0;
  rd_t scan = m, s = {0};
  while (scan.p < scan.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1;
    if (!rd_tag(&scan, &f, &wt)) return PROTO_FAIL_V2(c);
    switch (f) {
      case 1: ok = count_repeated(&scan, wt, 0, &nrefs); break;
      case 2: case 3: case 4: case 5:
        ok = wt == WT_LEN && rd_len(&scan, &s);
        ns += f == 2;
        nh += f == 3;
        ne += f == 4;
        break;
      case 6: ok = wt == WT_VARINT && rd_skip(&scan, wt); break;
      default: ok = rd_skip(&scan, wt); break;
    }
    if (!ok) return PROTO_FAIL_V2(c);
  }
  uint64_t *refs = nrefs ? rc_arena_alloc(c->a, nrefs * sizeof(uint64_t)) : NULL;
  rc_sample_t *samples = ns ? rc_arena_alloc(c->a, ns * sizeof(rc_sample_t)) : NULL;
  rc_histogram_t *hists = nh ? rc_arena_alloc(c->a, nh * sizeof(rc_histogram_t)) : NULL;
  if ((nrefs && !refs) || (ns && !samples) || (nh && !hists)) return RW_OOM(c);
  uint32_t ir = 0, is = 0, ih = 0;
  int any_mixed = 0, oom = 0, ex_refs_ok = 1;
  int32_t mtype = 0;
  uint32_t meta_ref = 0;
  int64_t created = 0;
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1, mixed = 0, rok = 1;
    uint64_t v = 0;
    rd_tag(&m, &f, &wt);
    switch (f) {
      case 1: ok = read_varints(&m, wt, refs, &ir, nrefs); break;
      case 2: rd_len(&m, &s); ok = parse_sample(s, &samples[is++], 1); break;
      case 3:
        rd_len(&m, &s);
        ok = parse_histogram(c, s, &hists[ih++], 1, &mixed, &oom);
        any_mixed |= mixed;
        break;
      case 4:
        rd_len(&m, &s);
        ok = parse_exemplar_v2(s, nsym, &rok);
        ex_refs_ok &= rok;
        break;
      case 5: rd_len(&m, &s); ok = parse_metadata_v2(s, &mtype, &meta_ref); break;
      case 6: rd_varint(&m, &v); created = (int64_t)v; break;
      default: rd_skip(&m, wt); break;
    }
    if (!ok) return PROTO_FAIL_V2(c);
  }
  if (oom) return RW_OOM(c);
  /* The same checks, in the same order, as the reference backend (rw_pbc.c). */
  int refs_ok = nrefs % 2 == 0;
  for (uint32_t i = 0; i < nrefs && refs_ok; i++) refs_ok = (uint32_t)refs[i] < nsym;
  if (!refs_ok) {
    rw_reject(c, RC_RWS_LABEL_REFS, NULL, 0, ns, nh, ne,
              "labels_refs has odd length or points outside the %u symbols", nsym);
    return 0;
  }
  uint32_t nl = nrefs / 2;
  rc_label_t *labels = rc_arena_alloc(c->a, (nl ? nl : 1) * sizeof(rc_label_t));
  if (labels == NULL) return RW_OOM(c);
  uint32_t all_utf8 = 1;
  for (uint32_t k = 0; k < nl; k++) {
    const sym_t *n = &syms[(uint32_t)refs[2 * k]], *val = &syms[(uint32_t)refs[2 * k + 1]];
    all_utf8 &= n->utf8 & val->utf8;
    labels[k].name = n->p;
    labels[k].name_len = n->len;
    labels[k].value = val->p;
    labels[k].value_len = val->len;
  }
  if (ns && nh) {
    rw_reject(c, RC_RWS_MIXED, labels, nl, ns, nh, ne,
              "a series must not carry both samples and histograms");
    return 0;
  }
  if (!ns && !nh) {
    rw_reject(c, RC_RWS_EMPTY, labels, nl, ns, nh, ne, "a series must carry samples or histograms");
    return 0;
  }
  if (!ex_refs_ok) {
    rw_reject(c, RC_RWS_EXEMPLAR_REFS, labels, nl, ns, nh, ne,
              "exemplar labels_refs has odd length or points outside the symbols");
    return 0;
  }
  if (meta_ref >= nsym) {
    rw_reject(c, RC_RWS_METADATA_REFS, labels, nl, ns, nh, ne,
              "metadata help_ref or unit_ref points outside the symbols");
    return 0;
  }
  for (uint32_t i = 0; i < ns; i++)
    if (samples[i].start_ts_ms == 0) samples[i].start_ts_ms = created;
  for (uint32_t i = 0; i < nh; i++)
    if (hists[i].start_ts_ms == 0) hists[i].start_ts_ms = created;
  if (any_mixed) {
    rw_reject(c, RC_RWS_HISTOGRAM, labels, nl, ns, nh, ne,
              "invalid native histogram: " RW_MIXED_HISTOGRAM);
    return 0;
  }
  rc_series_t sr;
  memset(&sr, 0, sizeof(sr));
  if ((unsigned)mtype <= RC_MTYPE_STATESET) sr.mtype = (uint8_t)mtype;
  sr.samples = samples;
  sr.histograms = hists;
  sr.nsamples = ns;
  sr.nhistograms = nh;
  sr.nexemplars = ne;
  rw_accept(c, &sr, labels, nl, (int)all_utf8);
  return 0;
}

/* The v2 counterpart of parse_series_v1's fast path: samples only, few labels. */
static int parse_series_v2(rw_ctx_t *c, rd_t m, const sym_t *syms, uint32_t nsym) {
  uint32_t refs[2 * RW_LOCAL_LABELS];
  rc_sample_t sbuf[RW_LOCAL_SAMPLES];
  uint32_t nrefs = 0, ns = 0, ne = 0;
  int ex_refs_ok = 1;
  int32_t mtype = 0;
  uint32_t meta_ref = 0;
  int64_t created = 0;
  rd_t all = m, s = {0};
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0, ok = 1, rok = 1;
    uint64_t v = 0;
    if (!rd_tag(&m, &f, &wt)) return PROTO_FAIL_V2(c);
    switch (f) {
      case 1:
        if (wt == WT_VARINT) {
          if (nrefs == 2 * RW_LOCAL_LABELS) return parse_series_v2_general(c, all, syms, nsym);
          ok = rd_varint(&m, &v);
          refs[nrefs++] = (uint32_t)v;
        } else if (wt == WT_LEN) {
          ok = rd_len(&m, &s);
          while (ok && s.p < s.end) {
            if (nrefs == 2 * RW_LOCAL_LABELS) return parse_series_v2_general(c, all, syms, nsym);
            ok = rd_varint(&s, &v);
            refs[nrefs++] = (uint32_t)v;
          }
        } else {
          ok = 0;
        }
        break;
      case 2:
        if (ns == RW_LOCAL_SAMPLES) return parse_series_v2_general(c, all, syms, nsym);
        ok = wt == WT_LEN && rd_len(&m, &s) && parse_sample(s, &sbuf[ns++], 1);
        break;
      case 3: return parse_series_v2_general(c, all, syms, nsym);
      case 4:
        ok = wt == WT_LEN && rd_len(&m, &s) && parse_exemplar_v2(s, nsym, &rok);
        ex_refs_ok &= rok;
        ne++;
        break;
      case 5: ok = wt == WT_LEN && rd_len(&m, &s) && parse_metadata_v2(s, &mtype, &meta_ref); break;
      case 6:
        ok = wt == WT_VARINT && rd_varint(&m, &v);
        created = (int64_t)v;
        break;
      default: ok = rd_skip(&m, wt); break;
    }
    if (!ok) return PROTO_FAIL_V2(c);
  }
  int refs_ok = nrefs % 2 == 0;
  for (uint32_t i = 0; i < nrefs && refs_ok; i++) refs_ok = refs[i] < nsym;
  if (!refs_ok) {
    rw_reject(c, RC_RWS_LABEL_REFS, NULL, 0, ns, 0, ne,
              "labels_refs has odd length or points outside the %u symbols", nsym);
    return 0;
  }
  uint32_t nl = nrefs / 2;
  rc_label_t *labels = rc_arena_alloc(c->a, (nl ? nl : 1) * sizeof(rc_label_t));
  if (labels == NULL) return RW_OOM(c);
  uint32_t all_utf8 = 1;
  for (uint32_t k = 0; k < nl; k++) {
    const sym_t *n = &syms[refs[2 * k]], *val = &syms[refs[2 * k + 1]];
    all_utf8 &= n->utf8 & val->utf8;
    labels[k].name = n->p;
    labels[k].name_len = n->len;
    labels[k].value = val->p;
    labels[k].value_len = val->len;
  }
  if (ns == 0) {
    rw_reject(c, RC_RWS_EMPTY, labels, nl, ns, 0, ne, "a series must carry samples or histograms");
    return 0;
  }
  if (!ex_refs_ok) {
    rw_reject(c, RC_RWS_EXEMPLAR_REFS, labels, nl, ns, 0, ne,
              "exemplar labels_refs has odd length or points outside the symbols");
    return 0;
  }
  if (meta_ref >= nsym) {
    rw_reject(c, RC_RWS_METADATA_REFS, labels, nl, ns, 0, ne,
              "metadata help_ref or unit_ref points outside the symbols");
    return 0;
  }
  rc_sample_t *samples = rc_arena_alloc(c->a, ns * sizeof(rc_sample_t));
  if (samples == NULL) return RW_OOM(c);
  for (uint32_t i = 0; i < ns; i++) {
    samples[i] = sbuf[i];
    if (samples[i].start_ts_ms == 0) samples[i].start_ts_ms = created;
  }
  rc_series_t sr;
  memset(&sr, 0, sizeof(sr));
  if ((unsigned)mtype <= RC_MTYPE_STATESET) sr.mtype = (uint8_t)mtype;
  sr.samples = samples;
  sr.nsamples = ns;
  sr.nexemplars = ne;
  rw_accept(c, &sr, labels, nl, (int)all_utf8);
  return 0;
}

int rw_wire_v2(rw_ctx_t *c, const uint8_t *buf, size_t len) {
  rd_t m = {buf, buf + len}, scan = m, s = {0};
  uint32_t nsym = 0, nts = 0;
  while (scan.p < scan.end) {
    uint32_t f = 0;
    int wt = 0;
    if (!rd_tag(&scan, &f, &wt)) return PROTO_FAIL_V2(c);
    if (f == 4 || f == 5) {
      if (wt != WT_LEN || !rd_len(&scan, &s)) return PROTO_FAIL_V2(c);
      nsym += f == 4;
      nts += f == 5;
    } else if (!rd_skip(&scan, wt)) {
      return PROTO_FAIL_V2(c);
    }
  }
  sym_t *syms = nsym ? rc_arena_alloc(c->a, nsym * sizeof(sym_t)) : NULL;
  c->b->series = rc_arena_alloc(c->a, (nts ? nts : 1) * sizeof(rc_series_t));
  if ((nsym && !syms) || c->b->series == NULL) return RW_OOM(c);
  uint32_t k = 0;
  for (scan = m; scan.p < scan.end;) {
    uint32_t f = 0;
    int wt = 0;
    rd_tag(&scan, &f, &wt);
    if (f != 4) {
      rd_skip(&scan, wt);
      continue;
    }
    rd_len(&scan, &s);
    /* The first pass counted this field 4 (nsym > 0), so syms was allocated. */
    syms[k].p = (const char *)s.p; // NOLINT(clang-analyzer-core.NullDereference)
    syms[k].len = (uint32_t)(s.end - s.p);
    syms[k].utf8 = (uint32_t)rc_utf8_valid(syms[k].p, syms[k].len);
    k++;
  }
  if (nts > 0 && (nsym == 0 || syms[0].len != 0)) {
    /* A malformed message outranks a bad symbol table (protobuf-c, the reference, fails the
     * unpack first), so parse the series into a throw-away batch before answering. */
    rc_batch_t scratch;
    rc_rw_result_t scratch_res;
    memset(&scratch, 0, sizeof(scratch));
    memset(&scratch_res, 0, sizeof(scratch_res));
    scratch.series = c->b->series;
    rw_ctx_t dry = {.a = c->a, .lim = c->lim, .b = &scratch, .res = &scratch_res};
    for (rd_t d = m; d.p < d.end;) {
      uint32_t f = 0;
      int wt = 0;
      rd_tag(&d, &f, &wt);
      if (f != 5) {
        rd_skip(&d, wt);
        continue;
      }
      rd_len(&d, &s);
      int rc = parse_series_v2(&dry, s, syms, nsym);
      if (rc == RC_EPARSE) return PROTO_FAIL_V2(c);
      if (rc != 0) return RW_OOM(c);
    }
    return rw_fail(c->res, RC_RWR_SYMBOLS, RC_EPARSE,
                   "symbols table must be present and start with the empty string");
  }
  while (m.p < m.end) {
    uint32_t f = 0;
    int wt = 0;
    rd_tag(&m, &f, &wt);
    if (f != 5) {
      rd_skip(&m, wt);
      continue;
    }
    rd_len(&m, &s);
    int rc = parse_series_v2(c, s, syms, nsym);
    if (rc != 0) return rc;
  }
  return 0;
}
