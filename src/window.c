/* window.c: per-series chunks of compressed samples and the PromQL range functions over them;
 * see window.h for the design and the contract.
 *
 * Chunk encoding (a bit stream, most significant bit first):
 *   sample 0:  ts (64 bits raw) | value (64 bits raw)
 *   sample k:  ts delta-of-delta:  '0' (0) | '10'+14 bits | '110'+17 | '1110'+20 | '1111'+64
 *              value: '0' + integer delta-of-delta, used when this and the previous value are
 *                     whole numbers of magnitude <= 2^53 (counters):
 *                     '0' (0) | '10'+7 bits | '110'+16 | '1110'+32 | '1111'+64
 *                     '10' + Gorilla XOR against the previous value's bits:
 *                     '0' (same bits) | '10' + bits inside the previous leading/trailing-zero
 *                     window | '11' + 6 bits leading zeros + 6 bits (length-1) + bits
 *                     '11' + 2 bits scale k (1..3) + delta-of-delta of the values times 10^k,
 *                     used when both values are exactly m/10^k (gauges with a few decimals,
 *                     which XOR cannot compress: the bits of 12.34 and 12.37 differ widely)
 * Values round-trip bit for bit (staleness markers, NaN payloads and -0.0 included: -0.0 and
 * NaN never take the integer path). A chunk is re-encoded whole when a late sample lands in it.
 *
 * PromQL functions follow prometheus/prometheus promql/functions.go (3.x), with the 2.x
 * differences selected by rc_compat_t; the tests compare against an independent reference.
 */
#include "window.h"

#include <math.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ebr.h"

/* Readers use min_ts (fixed once the chunk is published), max_ts (only to skip chunks) and
 * pub; everything else is the writer's. Data bytes are read and written with relaxed atomic
 * byte accesses: the byte holding the published end is still being filled by the writer,
 * and readers only use its published (high) bits. */
struct rc_chunk {
  int64_t min_ts;
  _Atomic int64_t max_ts;
  /* flags << 56 | count << 32 | nbits, stored (release) after the bits are written: what a
   * reader may decode, and the CF_* flags of those samples, in one load. The writer reads its
   * own count and flags back from it (pub_count/pub_flags). count < 2^24: a chunk takes at
   * most chunk_samples in order, plus late samples within --storage.out-of-order-tolerance
   * (at most 1 h), one per millisecond. */
  _Atomic uint64_t pub;
  /* The newest non-stale value's bits: with the first sample (stored raw at the start) and
   * the flags, what rate()/increase()/delta() need of a chunk a window holds whole, without
   * decoding it. Readers use it only once the chunk is closed (not the last of the list they
   * loaded: the push of the next head published it). */
  uint64_t last_vbits;
  uint32_t nbits;     /* bits written to data */
  uint32_t cap;       /* bytes allocated for data */
  uint8_t data[];
};
/* CF_HASV: a non-stale value was appended; CF_STALE: a staleness marker was; CF_RESET: a value
 * below the one before it (a counter reset: rate() must see the values around it). */
enum { CF_HASV = 1, CF_STALE = 2, CF_RESET = 4 };
static inline uint32_t pub_count(uint64_t pub) { return (uint32_t)(pub >> 32) & 0xffffffu; }
static inline unsigned pub_flags(uint64_t pub) { return (unsigned)(pub >> 56); }
/* The writer's view of its own chunk. */
static inline uint64_t wpub(const rc_chunk_t *c) {
  return atomic_load_explicit(&((rc_chunk_t *)c)->pub, memory_order_relaxed);
}
/* The encoder state (rc_window_enc_t, window.h): last_ts is the newest timestamp, prev_dts the
 * last timestamp delta, prev_vbits the last value's bits, prev_vdelta the last integer delta
 * (0 after a non-integer value), prev_ddelta/prev_k the last decimal delta and its scale (0
 * unless the last value was decimal), lead/trail/has_xor the last XOR window. */

struct rc_chunk_list {
  _Atomic uint32_t n; /* chunks readers may use; grows in place, shrinks only by a new list */
  uint32_t cap;
  rc_chunk_t *_Atomic c[];
};

/* The EBR frees with its own accountant, which the store makes the same as cfg->mem. */
static void retire(const rc_window_cfg_t *cfg, void *p) {
  if (p == NULL) return;
  if (cfg != NULL && cfg->ebr != NULL) rc_ebr_retire(cfg->ebr, p, rc_mem_free);
  else rc_mem_free(cfg != NULL ? cfg->mem : NULL, p);
}

/* Timestamps come from senders and may be anything an int64 holds: arithmetic on them wraps
 * (as Go's does, which is also what keeps our answers equal to Prometheus') instead of
 * overflowing, which C leaves undefined. */
static inline int64_t wsub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t sat_sub(int64_t a, int64_t b) { /* b >= 0 */
  return a < INT64_MIN + b ? INT64_MIN : a - b;
}

static inline uint8_t ld8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void st8(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

/*------------------------------------------------------------------------------------------
 * Bits
 *----------------------------------------------------------------------------------------*/

static void put_bits(uint8_t *buf, uint32_t *pos, uint64_t v, int n) {
  /* Writes the low n bits of v (n <= 64), most significant first. */
  while (n > 0) {
    uint32_t byte = *pos >> 3, off = *pos & 7;
    int room = 8 - (int)off, take = n < room ? n : room;
    /* off = *pos & 7, so 1 <= room <= 8 and take <= 8: the shift is in range (the analyser
     * does not carry the bound of the & through). */
    uint8_t bits = (uint8_t)((v >> (n - take)) & ((1u << take) - 1)); // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
    uint8_t cur = off == 0 ? 0 : ld8(&buf[byte]);
    st8(&buf[byte], (uint8_t)(cur | (bits << (room - take))));
    *pos += (uint32_t)take;
    n -= take;
  }
}

typedef struct br {
  const uint8_t *buf;
  uint32_t pos, end;
} br_t;

static uint64_t get_bits(br_t *r, int n) {
  uint64_t v = 0;
  while (n > 0) {
    uint32_t byte = r->pos >> 3, off = r->pos & 7;
    int room = 8 - (int)off, take = n < room ? n : room;
    uint8_t bits = (uint8_t)((ld8(&r->buf[byte]) >> (room - take)) & ((1u << take) - 1));
    v = (v << take) | bits;
    r->pos += (uint32_t)take;
    n -= take;
  }
  return v;
}

static int64_t sign_extend(uint64_t v, int n) {
  if (n >= 64) return (int64_t)v;
  uint64_t m = UINT64_C(1) << (n - 1);
  return (int64_t)((v ^ m) - m);
}

static int fits(int64_t v, int n) {
  int64_t lo = -(INT64_C(1) << (n - 1)), hi = (INT64_C(1) << (n - 1)) - 1;
  return v >= lo && v <= hi;
}

/* Bucketed signed integer: prefixes of 1..4 bits select a width; '1111' means 64 bits. */
typedef struct width_table {
  int w[3];
} width_table_t;
static const width_table_t TS_WIDTHS = {{14, 17, 20}};
static const width_table_t INT_WIDTHS = {{7, 16, 32}};

static uint32_t bucket_bits(int64_t v, const width_table_t *t) {
  if (v == 0) return 1;
  for (int i = 0; i < 3; i++)
    if (fits(v, t->w[i])) return (uint32_t)(i + 2) + (uint32_t)t->w[i];
  return 4 + 64;
}

static void put_bucket(uint8_t *buf, uint32_t *pos, int64_t v, const width_table_t *t) {
  if (v == 0) {
    put_bits(buf, pos, 0, 1);
    return;
  }
  for (int i = 0; i < 3; i++) {
    if (fits(v, t->w[i])) {
      /* prefix: i+1 ones then a zero: '10', '110', '1110' */
      put_bits(buf, pos, ((UINT64_C(1) << (i + 2)) - 2), i + 2);
      put_bits(buf, pos, (uint64_t)v, t->w[i]);
      return;
    }
  }
  put_bits(buf, pos, 0xf, 4);
  put_bits(buf, pos, (uint64_t)v, 64);
}

/* The next 4 bits, without consuming them; bits past the published end read as zeros (a
 * valid stream never consumes them, and the byte after the end may not be allocated). */
static inline unsigned peek4(const br_t *r) {
  uint32_t byte = r->pos >> 3, off = r->pos & 7;
  unsigned w = (unsigned)ld8(&r->buf[byte]) << 8;
  if (off > 4 && ((byte + 1) << 3) < r->end) w |= ld8(&r->buf[byte + 1]);
  return (w >> (12 - off)) & 0xfu;
}

static int64_t get_bucket(br_t *r, const width_table_t *t) {
  /* The prefix ('0', '10', '110', '1110', '1111') in one read instead of a bit at a time:
   * the decoders' hottest call. */
  unsigned p = peek4(r);
  int ones = p == 0xf ? 4 : p >= 0xe ? 3 : p >= 0xc ? 2 : p >= 0x8 ? 1 : 0;
  r->pos += (uint32_t)(ones < 4 ? ones + 1 : 4);
  if (ones == 0) return 0;
  if (ones == 4) return (int64_t)get_bits(r, 64);
  int w = t->w[ones - 1];
  return sign_extend(get_bits(r, w), w);
}

static uint64_t dbits(double v) {
  uint64_t b;
  memcpy(&b, &v, 8);
  return b;
}
static double bitsd(uint64_t b) {
  double v;
  memcpy(&v, &b, 8);
  return v;
}

/* Whole numbers that int64 holds exactly, excluding -0.0 (it would come back as +0.0). */
static int is_int(double v) {
  return v == trunc(v) && fabs(v) <= 9007199254740992.0 && !(v == 0 && signbit(v));
}

static const double POW10[4] = {1, 10, 100, 1000};

/* If v is exactly m / 10^k with |m| <= 2^53, sets *m and returns 1. The decoder recomputes
 * (double)m / 10^k, so "exactly" means that division gives v's bits back. */
static int decimal_of(double v, int k, int64_t *m) {
  double x = v * POW10[k];
  if (!(fabs(x) <= 9007199254740992.0)) return 0; /* NaN and Inf fail here too */
  int64_t r = llround(x);
  double back = (double)r / POW10[k];
  if (dbits(back) != dbits(v)) return 0;
  *m = r;
  return 1;
}

/*------------------------------------------------------------------------------------------
 * Chunks
 *----------------------------------------------------------------------------------------*/

static rc_chunk_t *chunk_new(rc_mem_t *mem, uint32_t cap) {
  rc_chunk_t *c = rc_mem_malloc(mem, sizeof(*c) + cap);
  if (c == NULL) return NULL;
  memset(c, 0, sizeof(*c));
  c->cap = cap;
  return c;
}

/* Copies a chunk into a new allocation of cap data bytes (cap >= its used bytes). The copy
 * is private until published; the original is left for the caller to retire. */
static rc_chunk_t *chunk_copy(rc_mem_t *mem, const rc_chunk_t *c, uint32_t cap) {
  rc_chunk_t *n = rc_mem_malloc(mem, sizeof(*n) + cap);
  if (n == NULL) return NULL;
  memcpy(n, c, sizeof(*n)); /* the writer's own fields; atomics are re-set below */
  atomic_init(&n->max_ts, atomic_load_explicit(&((rc_chunk_t *)c)->max_ts, memory_order_relaxed));
  atomic_init(&n->pub, wpub(c));
  uint32_t used = (c->nbits + 7) / 8;
  for (uint32_t i = 0; i < used; i++) n->data[i] = ld8(&c->data[i]);
  n->cap = cap;
  return n;
}

/* Makes room for `bits` more bits. A chunk readers may hold is never resized in place: it is
 * copied, *cp points at the copy, and *old at the original for the caller to publish over
 * and retire. Growing is refused (RC_EMEMORY) once mem is at its limit. */
static int chunk_reserve(rc_mem_t *mem, rc_chunk_t **cp, uint32_t bits, rc_chunk_t **old) {
  rc_chunk_t *c = *cp;
  uint32_t need = (c->nbits + bits + 7) / 8;
  if (need <= c->cap) return 0;
  if (rc_mem_level(mem) >= RC_MEM_FULL) return RC_EMEMORY;
  uint32_t cap = c->cap ? c->cap : 16;
  while (cap < need) cap = cap < 64 ? cap * 2 : cap + cap / 2;
  rc_chunk_t *n = chunk_copy(mem, c, cap);
  if (n == NULL) return RC_ENOMEM;
  if (*old == NULL) *old = c;
  else rc_mem_free(mem, c); /* an intermediate copy nobody has seen */
  *cp = n;
  return 0;
}

#define STALE_BITS UINT64_C(0x7ff0000000000002)

/* Publishes one more appended value vb: the summary (struct rc_chunk) follows it, then pub. */
static void chunk_publish(rc_chunk_t *c, int64_t last_ts, uint64_t vb) {
  uint64_t p = wpub(c);
  unsigned flags = pub_flags(p);
  if (vb == STALE_BITS) {
    flags |= CF_STALE;
  } else {
    /* The comparison rate() makes (extrapolated_rate); NaN never counts as a reset there. */
    if ((flags & CF_HASV) && bitsd(vb) < bitsd(c->last_vbits)) flags |= CF_RESET;
    c->last_vbits = vb;
    flags |= CF_HASV;
  }
  atomic_store_explicit(&c->max_ts, last_ts, memory_order_relaxed);
  atomic_store_explicit(&c->pub,
                        (uint64_t)flags << 56 | (uint64_t)(pub_count(p) + 1) << 32 | c->nbits,
                        memory_order_release);
}

/* Appends (ts, v) to the end of a chunk; ts must be greater than its newest timestamp. If the
 * chunk had to move, *cp is the new one and *old the one to publish over and retire. */
static int chunk_append(rc_mem_t *mem, rc_chunk_t **cp, rc_window_enc_t *e, int64_t ts,
                        double v, rc_chunk_t **old) {
  rc_chunk_t *c = *cp;
  uint64_t vb = dbits(v);
  int rc;
  if (pub_count(wpub(c)) == 0) {
    if ((rc = chunk_reserve(mem, cp, 128, old)) != 0) return rc;
    c = *cp;
    put_bits(c->data, &c->nbits, (uint64_t)ts, 64);
    put_bits(c->data, &c->nbits, vb, 64);
    c->min_ts = e->last_ts = ts;
    e->prev_dts = 0;
    e->prev_vbits = vb;
    e->prev_vdelta = 0;
    e->prev_k = 0;
    e->prev_ddelta = 0;
    chunk_publish(c, e->last_ts, vb);
    return 0;
  }
  int64_t dts = wsub(ts, e->last_ts), dod = wsub(dts, e->prev_dts);
  double prev = bitsd(e->prev_vbits);
  int int_mode = is_int(prev) && is_int(v);
  int64_t vdelta = 0, vdod = 0, dm = 0, pm = 0, ddelta = 0, ddod = 0;
  int k = 0;
  if (!int_mode) {
    /* The smallest scale at which both values are exact decimals. */
    for (int kk = 1; kk <= 3 && k == 0; kk++)
      if (decimal_of(v, kk, &dm) && decimal_of(prev, kk, &pm)) k = kk;
  }
  uint64_t x = 0;
  uint32_t bits = bucket_bits(dod, &TS_WIDTHS) + 1;
  int lead = 0, trail = 0, reuse = 0;
  if (int_mode) {
    vdelta = (int64_t)v - (int64_t)prev;
    vdod = vdelta - e->prev_vdelta;
    bits += bucket_bits(vdod, &INT_WIDTHS);
  } else if (k != 0) {
    ddelta = dm - pm;
    ddod = ddelta - (e->prev_k == k ? e->prev_ddelta : 0);
    bits += 1 + 2 + bucket_bits(ddod, &INT_WIDTHS);
  } else {
    bits += 1;
    x = vb ^ e->prev_vbits;
    if (x == 0) {
      bits += 1;
    } else {
      lead = __builtin_clzll(x);
      trail = __builtin_ctzll(x);
      reuse = e->has_xor && lead >= e->lead && trail >= e->trail;
      bits += reuse ? 2 + (uint32_t)(64 - e->lead - e->trail) : 2 + 12 + (uint32_t)(64 - lead - trail);
    }
  }
  if ((rc = chunk_reserve(mem, cp, bits, old)) != 0) return rc;
  c = *cp;
  put_bucket(c->data, &c->nbits, dod, &TS_WIDTHS);
  if (int_mode) {
    put_bits(c->data, &c->nbits, 0, 1);
    put_bucket(c->data, &c->nbits, vdod, &INT_WIDTHS);
    e->prev_vdelta = vdelta;
    e->prev_k = 0;
    e->prev_ddelta = 0;
  } else if (k != 0) {
    put_bits(c->data, &c->nbits, 3, 2);
    put_bits(c->data, &c->nbits, (uint64_t)k, 2);
    put_bucket(c->data, &c->nbits, ddod, &INT_WIDTHS);
    e->prev_vdelta = 0;
    e->prev_k = (uint8_t)k;
    e->prev_ddelta = ddelta;
  } else {
    put_bits(c->data, &c->nbits, 2, 2);
    if (x == 0) {
      put_bits(c->data, &c->nbits, 0, 1);
    } else if (reuse) {
      put_bits(c->data, &c->nbits, 2, 2);
      put_bits(c->data, &c->nbits, x >> e->trail, 64 - e->lead - e->trail);
    } else {
      int sig = 64 - lead - trail;
      put_bits(c->data, &c->nbits, 3, 2);
      put_bits(c->data, &c->nbits, (uint64_t)lead, 6);
      put_bits(c->data, &c->nbits, (uint64_t)(sig - 1), 6);
      put_bits(c->data, &c->nbits, x >> trail, sig);
      e->lead = (uint8_t)lead;
      e->trail = (uint8_t)trail;
      e->has_xor = 1;
    }
    e->prev_vdelta = 0;
    e->prev_k = 0;
    e->prev_ddelta = 0;
  }
  e->prev_dts = dts;
  e->prev_vbits = vb;
  e->last_ts = ts;
  chunk_publish(c, e->last_ts, vb);
  return 0;
}

/* Sequential decoder of one chunk. */
typedef struct cit {
  br_t r;
  uint32_t left;
  int64_t ts, dts, vdelta, ddelta;
  uint64_t vbits;
  uint8_t lead, trail, started, k;
} cit_t;

/* Decodes the samples covered by pub, a value of the chunk's pub word that the caller loaded
 * (acquire): readers may run while the writer appends. */
static void cit_init_pub(cit_t *it, const rc_chunk_t *c, uint64_t pub) {
  memset(it, 0, sizeof(*it));
  it->r.buf = c->data;
  it->r.end = (uint32_t)pub;
  it->left = pub_count(pub);
}

static void cit_init(cit_t *it, const rc_chunk_t *c) {
  cit_init_pub(it, c, atomic_load_explicit(&((rc_chunk_t *)c)->pub, memory_order_acquire));
}

static int cit_next(cit_t *it, int64_t *ts, double *v) {
  if (it->left == 0) return 0;
  it->left--;
  if (!it->started) {
    it->started = 1;
    it->ts = (int64_t)get_bits(&it->r, 64);
    it->vbits = get_bits(&it->r, 64);
  } else {
    int64_t dod = get_bucket(&it->r, &TS_WIDTHS);
    it->dts = wadd(it->dts, dod);
    it->ts = wadd(it->ts, it->dts);
    if (get_bits(&it->r, 1) == 0) {
      int64_t vdod = get_bucket(&it->r, &INT_WIDTHS);
      it->vdelta += vdod;
      double prev = bitsd(it->vbits);
      it->vbits = dbits((double)((int64_t)prev + it->vdelta));
      it->k = 0;
      it->ddelta = 0;
    } else if (get_bits(&it->r, 1) == 1) {
      /* decimal: both values are m / 10^k */
      int k = (int)get_bits(&it->r, 2);
      int64_t ddod = get_bucket(&it->r, &INT_WIDTHS);
      it->ddelta = (it->k == k ? it->ddelta : 0) + ddod;
      int64_t pm = 0;
      decimal_of(bitsd(it->vbits), k, &pm); /* the encoder checked it is exact */
      it->vbits = dbits((double)(pm + it->ddelta) / POW10[k]);
      it->k = (uint8_t)k;
      it->vdelta = 0;
    } else {
      it->vdelta = 0;
      it->k = 0;
      it->ddelta = 0;
      if (get_bits(&it->r, 1) == 1) {
        uint64_t x;
        if (get_bits(&it->r, 1) == 0) {
          int sig = 64 - it->lead - it->trail;
          x = get_bits(&it->r, sig) << it->trail;
        } else {
          int lead = (int)get_bits(&it->r, 6), sig = (int)get_bits(&it->r, 6) + 1;
          int trail = 64 - lead - sig;
          x = get_bits(&it->r, sig) << trail;
          it->lead = (uint8_t)lead;
          it->trail = (uint8_t)trail;
        }
        it->vbits ^= x;
      }
    }
  }
  *ts = it->ts;
  *v = bitsd(it->vbits);
  return 1;
}

/* Decodes a whole chunk into caller arrays of at least pub_count entries. */
static void chunk_decode(const rc_chunk_t *c, int64_t *ts, double *v) {
  cit_t it;
  cit_init(&it, c);
  for (uint32_t i = 0; cit_next(&it, &ts[i], &v[i]); i++) {
  }
}

/* Builds a private chunk from sorted arrays into *out; its final encoder state goes to *enc.
 * Returns 0, RC_EMEMORY or RC_ENOMEM. */
static int chunk_build(rc_mem_t *mem, const int64_t *ts, const double *v, uint32_t n,
                       rc_window_enc_t *enc, rc_chunk_t **out) {
  rc_chunk_t *c = chunk_new(mem, 16 + n * 2);
  if (c == NULL) return RC_ENOMEM;
  memset(enc, 0, sizeof(*enc));
  for (uint32_t i = 0; i < n; i++) {
    rc_chunk_t *old = NULL;
    int rc = chunk_append(mem, &c, enc, ts[i], v[i], &old);
    rc_mem_free(mem, old); /* private: nobody else can hold it */
    if (rc != 0) {
      rc_mem_free(mem, c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Window maintenance (writer)
 *----------------------------------------------------------------------------------------*/

static rc_chunk_list_t *wlist(const rc_window_t *w) {
  return atomic_load_explicit(&((rc_window_t *)w)->list, memory_order_acquire);
}
static uint32_t list_n(const rc_chunk_list_t *l) {
  return l ? atomic_load_explicit(&((rc_chunk_list_t *)l)->n, memory_order_acquire) : 0;
}
static rc_chunk_t *list_get(const rc_chunk_list_t *l, uint32_t i) {
  return atomic_load_explicit(&((rc_chunk_list_t *)l)->c[i], memory_order_acquire);
}

void rc_window_init(rc_window_t *w) {
  atomic_init(&w->list, NULL);
  w->max_ts = INT64_MIN;
  memset(&w->enc, 0, sizeof(w->enc));
}

void rc_window_free(rc_window_t *w, rc_mem_t *mem) {
  rc_chunk_list_t *l = wlist(w);
  for (uint32_t i = 0; i < list_n(l); i++) rc_mem_free(mem, list_get(l, i));
  rc_mem_free(mem, l);
  rc_window_init(w);
}

int rc_window_empty(const rc_window_t *w) { return list_n(wlist(w)) == 0; }

static rc_chunk_list_t *list_new(rc_mem_t *mem, uint32_t cap) {
  rc_chunk_list_t *l = rc_mem_malloc(mem, sizeof(*l) + cap * sizeof(l->c[0]));
  if (l == NULL) return NULL;
  atomic_init(&l->n, 0);
  l->cap = cap;
  return l;
}

/* Publishes chunk c in slot i (replacing what was there) and retires the old one. */
static void slot_replace(const rc_window_cfg_t *cfg, rc_chunk_list_t *l, uint32_t i,
                         rc_chunk_t *c, rc_chunk_t *old) {
  atomic_store_explicit(&l->c[i], c, memory_order_release);
  retire(cfg, old);
}

/* Adds a new empty head chunk, growing the list by swapping in a copy when it is full. */
static int push_chunk(rc_window_t *w, const rc_window_cfg_t *cfg) {
  memset(&w->enc, 0, sizeof(w->enc)); /* a new head chunk starts from nothing */
  rc_chunk_list_t *l = wlist(w);
  uint32_t n = list_n(l);
  rc_chunk_t *c = chunk_new(cfg->mem, 24);
  if (c == NULL) return RC_ENOMEM;
  if (l == NULL || n == l->cap) {
    rc_chunk_list_t *nl = list_new(cfg->mem, l ? l->cap * 2 : 2);
    if (nl == NULL) {
      rc_mem_free(cfg->mem, c);
      return RC_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) atomic_init(&nl->c[i], list_get(l, i));
    atomic_init(&nl->c[n], c);
    atomic_init(&nl->n, n + 1);
    atomic_store_explicit(&w->list, nl, memory_order_release);
    retire(cfg, l);
    return 0;
  }
  atomic_store_explicit(&l->c[n], c, memory_order_release); /* before n: readers stop at n */
  atomic_store_explicit(&l->n, n + 1, memory_order_release);
  return 0;
}

/* Appends at the end of the head chunk (slot i), publishing it anew if it had to move. */
static int head_append(rc_window_t *w, const rc_window_cfg_t *cfg, rc_chunk_list_t *l,
                       uint32_t i, int64_t ts, double v) {
  rc_chunk_t *c = list_get(l, i), *old = NULL;
  int rc = chunk_append(cfg->mem, &c, &w->enc, ts, v, &old);
  if (old != NULL) slot_replace(cfg, l, i, c, old);
  return rc;
}

/* Inserts into the chunk in slot i by decoding it, inserting in order and re-encoding. The
 * decoded arrays are temporaries of this call: plain malloc, not counted. The new chunk is
 * counted; at the limit the insert is refused (it would hold two copies until the old one is
 * collected). */
static int insert_into(rc_window_t *w, const rc_window_cfg_t *cfg, rc_chunk_list_t *l,
                       uint32_t i, int64_t ts, double v) {
  rc_chunk_t *c = list_get(l, i);
  uint32_t n = pub_count(wpub(c));
  /* pub's 24-bit count: out of reach with a tolerance of at most 1 h (struct rc_chunk), but
   * the bound is the format's, so it is kept whatever the configuration. */
  if (n >= 0xffffffu) return RC_ETOOOLD;
  int64_t sts[256];
  double sv[256];
  int64_t *t = n + 1 <= 256 ? sts : malloc((n + 1) * sizeof(int64_t));
  double *vv = n + 1 <= 256 ? sv : malloc((n + 1) * sizeof(double));
  int rc = 0;
  if (t == NULL || vv == NULL) {
    rc = RC_ENOMEM;
    goto out;
  }
  chunk_decode(c, t, vv);
  uint32_t pos = 0;
  while (pos < n && t[pos] < ts) pos++;
  if (pos < n && t[pos] == ts) {
    rc = dbits(vv[pos]) == dbits(v) ? RC_EDUP : RC_ECONFLICT;
    goto out;
  }
  if (rc_mem_level(cfg->mem) >= RC_MEM_FULL) { /* after the duplicate check: those cost nothing */
    rc = RC_EMEMORY;
    goto out;
  }
  memmove(&t[pos + 1], &t[pos], (n - pos) * sizeof(int64_t));
  memmove(&vv[pos + 1], &vv[pos], (n - pos) * sizeof(double));
  t[pos] = ts;
  vv[pos] = v;
  rc_window_enc_t enc;
  rc_chunk_t *nc = NULL;
  if ((rc = chunk_build(cfg->mem, t, vv, n + 1, &enc, &nc)) != 0) goto out;
  if (i == list_n(l) - 1) w->enc = enc; /* the head: appends continue from the new encoding */
  slot_replace(cfg, l, i, nc, c);
out:
  if (t != sts) free(t);
  if (vv != sv) free(vv);
  return rc;
}

int rc_window_append(rc_window_t *w, const rc_window_cfg_t *cfg, int64_t ts, double v) {
  rc_chunk_list_t *l = wlist(w);
  uint32_t n = list_n(l);
  if (n == 0 || ts > w->max_ts) {
    rc_chunk_t *head = n ? list_get(l, n - 1) : NULL;
    uint32_t head_n = head ? pub_count(wpub(head)) : 0;
    /* pub holds 24 bits of count whatever chunk_samples a caller configures. */
    if (head == NULL || head_n >= cfg->chunk_samples || head_n >= 0xffffffu ||
        wsub(ts, head->min_ts) >= cfg->chunk_span_ms) {
      /* A new chunk is what a window costs as time passes: refused from the high-water mark
       * on, so that the memory left goes to head chunks already started. The first chunk of
       * an empty window is refused only at the limit: the series was just admitted (the
       * store admits new series below the high-water mark), and holding it without its
       * first sample would help nobody. */
      if (rc_mem_level(cfg->mem) >= (n == 0 ? RC_MEM_FULL : RC_MEM_HIGH)) return RC_EMEMORY;
      if (head != NULL) {
        /* The old head is complete: give back its growth slack. */
        uint32_t used = (head->nbits + 7) / 8;
        rc_chunk_t *fit = used < head->cap ? chunk_copy(cfg->mem, head, used) : NULL;
        if (fit != NULL) slot_replace(cfg, l, n - 1, fit, head);
      }
      if (push_chunk(w, cfg) != 0) return RC_ENOMEM;
      l = wlist(w);
      n = list_n(l);
    }
    int rc = head_append(w, cfg, l, n - 1, ts, v);
    if (rc == 0) w->max_ts = ts;
    return rc;
  }
  /* Late or repeated sample. */
  if (ts < sat_sub(w->max_ts, cfg->ooo_tolerance_ms)) return RC_ETOOOLD;
  uint32_t i = n - 1;
  while (i > 0 && list_get(l, i)->min_ts > ts) i--;
  /* Into chunk i, in place or at its end (a gap before the next chunk): either way the chunk
   * is re-encoded, since only the head keeps an encoder state. */
  return insert_into(w, cfg, l, i, ts, v);
}

void rc_window_expire(rc_window_t *w, const rc_window_cfg_t *cfg, int64_t before_ms) {
  rc_chunk_list_t *l = wlist(w);
  uint32_t n = list_n(l), drop = 0;
  while (drop < n &&
         atomic_load_explicit(&list_get(l, drop)->max_ts, memory_order_relaxed) < before_ms)
    drop++;
  if (drop == 0) return;
  rc_chunk_list_t *nl = NULL;
  if (drop < n) {
    nl = list_new(cfg->mem, l->cap);
    if (nl == NULL) return; /* try again at the next sweep */
    for (uint32_t i = drop; i < n; i++) atomic_init(&nl->c[i - drop], list_get(l, i));
    atomic_init(&nl->n, n - drop);
  }
  atomic_store_explicit(&w->list, nl, memory_order_release);
  for (uint32_t i = 0; i < drop; i++) retire(cfg, list_get(l, i));
  retire(cfg, l);
  if (nl == NULL) { /* nothing left: the next sample starts afresh */
    w->max_ts = INT64_MIN;
    memset(&w->enc, 0, sizeof(w->enc));
  }
}

uint32_t rc_window_count(const rc_window_t *w) {
  rc_chunk_list_t *l = wlist(w);
  uint32_t n = 0, k = list_n(l);
  for (uint32_t i = 0; i < k; i++)
    n += pub_count(atomic_load_explicit(&list_get(l, i)->pub, memory_order_acquire));
  return n;
}

/* Calls cb for the samples of chunk c (as of pub) in [from_ms, to_ms]; sets *past once a
 * sample is newer than to_ms (nothing later can be in range). Returns cb's non-zero. */
static inline int chunk_range(const rc_chunk_t *c, uint64_t pub, int64_t from_ms, int64_t to_ms,
                              rc_window_sample_cb cb, void *ctx, int *past) {
  cit_t it;
  int64_t ts;
  double v;
  cit_init_pub(&it, c, pub);
  while (cit_next(&it, &ts, &v)) {
    if (ts < from_ms) continue;
    if (ts > to_ms) {
      *past = 1;
      return 0;
    }
    int rc = cb(ctx, ts, v);
    if (rc != 0) return rc;
  }
  return 0;
}

int rc_window_foreach(const rc_window_t *w, int64_t from_ms, int64_t to_ms,
                      rc_window_sample_cb cb, void *ctx) {
  rc_chunk_list_t *l = wlist(w);
  uint32_t n = list_n(l);
  for (uint32_t i = 0; i < n; i++) {
    rc_chunk_t *c = list_get(l, i);
    /* pub first: min_ts and the bits it covers were written before it (release). */
    uint64_t pub = atomic_load_explicit(&c->pub, memory_order_acquire);
    if (pub_count(pub) == 0) continue; /* a new head chunk, not yet holding a sample */
    if (atomic_load_explicit(&c->max_ts, memory_order_relaxed) < from_ms) continue;
    if (c->min_ts > to_ms) break;
    int past = 0, rc = chunk_range(c, pub, from_ms, to_ms, cb, ctx, &past);
    if (rc != 0 || past) return rc;
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * PromQL functions
 *----------------------------------------------------------------------------------------*/

/* A range's samples, decoded for one evaluation and freed before it returns: the reader's
 * temporaries, plain malloc (the accountant counts what the store holds, not a query's
 * scratch, which may also run on another thread than the store's writer). */
typedef struct range_buf {
  int64_t *ts;
  double *v;
  size_t n, cap;
  int64_t sts[512];
  double sv[512];
  int oom;
} range_buf_t;

static int collect(void *ctx, int64_t ts, double v) {
  range_buf_t *b = ctx;
  if (dbits(v) == STALE_BITS) return 0; /* range vectors never contain staleness markers */
  if (b->n == b->cap) {
    size_t cap = b->cap * 2;
    int64_t *nt = malloc(cap * sizeof(int64_t));
    double *nv = malloc(cap * sizeof(double));
    if (nt == NULL || nv == NULL) {
      free(nt);
      free(nv);
      b->oom = 1;
      return 1;
    }
    memcpy(nt, b->ts, b->n * sizeof(int64_t));
    memcpy(nv, b->v, b->n * sizeof(double));
    if (b->ts != b->sts) free(b->ts);
    if (b->v != b->sv) free(b->v);
    b->ts = nt;
    b->v = nv;
    b->cap = cap;
  }
  b->ts[b->n] = ts;
  b->v[b->n++] = v;
  return 0;
}

/* Neumaier-compensated increment, as Prometheus' kahansum.Inc (3.x): an infinite sum resets
 * the compensation. 2.x (kahanSumInc before PR #14362, 2.54) had no such case, which turns
 * e.g. stdvar_over_time of [1e300, -1e300] into NaN there and +Inf in 3.x. */
static void kahan_inc_c(double inc, double *sum, double *c, rc_compat_t compat) {
  double t = *sum + inc;
  if (compat == RC_COMPAT_PROM3 && isinf(t)) *c = 0;
  else if (fabs(*sum) >= fabs(inc)) *c += (*sum - t) + inc;
  else *c += (inc - t) + *sum;
  *sum = t;
}

/* Go's time.Duration.Seconds(): whole seconds plus the remainder, which rounds differently
 * from range_ms / 1000 for some ranges (e.g. 1118 ms). */
static double duration_seconds(int64_t ms) {
  return (double)(ms / 1000) + (double)((ms % 1000) * 1000000) / 1e9;
}

static int cmp_nan_first(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  if (isnan(x)) return isnan(y) ? 0 : -1;
  if (isnan(y)) return 1;
  return (x > y) - (x < y);
}

static double quantile_sorted(double q, double *v, size_t n) {
  if (n == 0 || isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  qsort(v, n, sizeof(double), cmp_nan_first);
  double rank = q * (double)(n - 1);
  double lo = fmax(0, floor(rank)), hi = fmin((double)(n - 1), lo + 1);
  double weight = rank - floor(rank);
  return v[(size_t)lo] * (1 - weight) + v[(size_t)hi] * weight;
}

/* What rate()/increase()/delta() need of a range: its first and last non-stale samples, how
 * many there are, and the value before each counter reset in time order (Prometheus adds
 * them one by one in that order, which the sum's rounding depends on). */
typedef struct rate_acc {
  int64_t first_ts, last_ts;
  double first_v, last_v;
  size_t n;
  int oom;
  double *resets;
  size_t nresets, cap;
  double sresets[32]; /* last: eval_rate zeroes what comes before it */
} rate_acc_t;

static void racc_add(rate_acc_t *a, int64_t ts, double v) {
  if (dbits(v) == STALE_BITS) return; /* range vectors never contain staleness markers */
  if (a->n == 0) {
    a->first_ts = ts;
    a->first_v = v;
  } else if (v < a->last_v) {
    if (a->nresets == a->cap) {
      size_t cap = a->cap * 2;
      double *nr = malloc(cap * sizeof(double));
      if (nr == NULL) {
        a->oom = 1;
        return;
      }
      memcpy(nr, a->resets, a->nresets * sizeof(double));
      if (a->resets != a->sresets) free(a->resets);
      a->resets = nr;
      a->cap = cap;
    }
    a->resets[a->nresets++] = a->last_v;
  }
  a->last_ts = ts;
  a->last_v = v;
  a->n++;
}

static int racc_cb(void *ctx, int64_t ts, double v) {
  rate_acc_t *a = ctx;
  racc_add(a, ts, v);
  return a->oom; /* stops the chunk's walk */
}

/* The samples in [from_ms, to_ms] into a. A closed chunk the range holds whole, with neither a
 * staleness marker nor a reset inside, is not decoded: its first sample is read from the
 * chunk's start (stored raw) and the rest from its summary. */
static int racc_collect(const rc_window_t *w, int64_t from_ms, int64_t to_ms, rate_acc_t *a) {
  rc_chunk_list_t *l = wlist(w);
  uint32_t n = list_n(l);
  for (uint32_t i = 0; i < n; i++) {
    rc_chunk_t *c = list_get(l, i);
    uint64_t pub = atomic_load_explicit(&c->pub, memory_order_acquire);
    uint32_t count = pub_count(pub);
    if (count == 0) continue;
    int64_t max_ts = atomic_load_explicit(&c->max_ts, memory_order_relaxed);
    if (max_ts < from_ms) continue;
    if (c->min_ts > to_ms) break;
    if (i + 1 < n && c->min_ts >= from_ms && max_ts <= to_ms &&
        (pub_flags(pub) & (CF_HASV | CF_STALE | CF_RESET)) == CF_HASV) {
      br_t r = {.buf = c->data, .pos = 64, .end = (uint32_t)pub};
      racc_add(a, c->min_ts, bitsd(get_bits(&r, 64)));
      if (count > 1) {
        a->last_ts = max_ts;
        a->last_v = bitsd(c->last_vbits);
        a->n += count - 1;
      }
    } else {
      int past = 0;
      chunk_range(c, pub, from_ms, to_ms, racc_cb, a, &past);
      if (past) break;
    }
    if (a->oom) return RC_ENOMEM;
  }
  return a->oom ? RC_ENOMEM : 0;
}

static double extrapolated_rate(const rate_acc_t *b, int64_t start, int64_t end, double range_s,
                                int is_counter, int is_rate, rc_compat_t compat) {
  size_t n = b->n;
  double result = b->last_v - b->first_v;
  if (is_counter) /* reset corrections, added one by one in time order as Prometheus does */
    for (size_t i = 0; i < b->nresets; i++) result += b->resets[i];
  double to_start = (double)wsub(b->first_ts, start) / 1000;
  double to_end = (double)wsub(end, b->last_ts) / 1000;
  double sampled = (double)wsub(b->last_ts, b->first_ts) / 1000;
  double avg = sampled / (double)(n - 1);
  double threshold = avg * 1.1;
  if (compat == RC_COMPAT_PROM2) {
    /* Before 2.51 the zero clamp came first, then the threshold test on what was left. */
    if (is_counter && result > 0 && b->first_v >= 0) {
      double to_zero = sampled * (b->first_v / result);
      if (to_zero < to_start) to_start = to_zero;
    }
    double interval = sampled;
    interval += to_start < threshold ? to_start : avg / 2;
    interval += to_end < threshold ? to_end : avg / 2;
    double factor = interval / sampled;
    if (is_rate) factor /= range_s;
    return result * factor;
  }
  if (to_start >= threshold) to_start = avg / 2;
  if (is_counter) {
    double to_zero = to_start;
    if (result > 0 && b->first_v >= 0) to_zero = sampled * (b->first_v / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  if (to_end >= threshold) to_end = avg / 2;
  double factor = (sampled + to_start + to_end) / sampled;
  if (is_rate) factor /= range_s;
  return result * factor;
}

/* rate(), increase(), delta(): from the range's summary (rate_acc_t), not its samples. */
static int eval_rate(const rc_window_t *w, rc_fn_t fn, int64_t t_ms, int64_t range_ms,
                     rc_compat_t compat, double *out) {
  rate_acc_t a;
  memset(&a, 0, offsetof(rate_acc_t, sresets));
  a.resets = a.sresets;
  a.cap = sizeof(a.sresets) / sizeof(a.sresets[0]);
  int64_t start = wsub(t_ms, range_ms), end = t_ms;
  int rc = 0;
  /* 3.x: (start, end]; 2.x: [start, end]. A window that wrapped holds nothing. */
  if (start <= end)
    rc = racc_collect(w, compat == RC_COMPAT_PROM3 ? wadd(start, 1) : start, end, &a);
  if (rc == 0 && a.n < 2) rc = RC_ENOENT;
  if (rc == 0)
    *out = extrapolated_rate(&a, start, end, duration_seconds(range_ms), fn != RC_FN_DELTA,
                             fn == RC_FN_RATE, compat);
  if (a.resets != a.sresets) free(a.resets);
  return rc;
}

int rc_window_eval(const rc_window_t *w, rc_fn_t fn, double param, int64_t t_ms,
                   int64_t range_ms, rc_compat_t compat, double *out) {
  if (fn == RC_FN_RATE || fn == RC_FN_INCREASE || fn == RC_FN_DELTA)
    return eval_rate(w, fn, t_ms, range_ms, compat, out);
  range_buf_t b;
  b.ts = b.sts;
  b.v = b.sv;
  b.n = 0;
  b.cap = 512;
  b.oom = 0;
  int64_t start = wsub(t_ms, range_ms), end = t_ms;
  /* 3.x: (start, end]; 2.x: [start, end]. A window that wrapped holds nothing. */
  if (start <= end)
    rc_window_foreach(w, compat == RC_COMPAT_PROM3 ? wadd(start, 1) : start, end, collect, &b);
  int rc = 0;
  size_t n = b.n;
  double r = 0;
  if (b.oom) {
    rc = RC_ENOMEM;
    goto out;
  }
  if (n == 0) {
    rc = RC_ENOENT;
    goto out;
  }
  switch (fn) {
    case RC_FN_IRATE:
    case RC_FN_IDELTA: {
      if (n < 2) {
        rc = RC_ENOENT;
        break;
      }
      double last = b.v[n - 1], prev = b.v[n - 2];
      int64_t dt = wsub(b.ts[n - 1], b.ts[n - 2]);
      if (dt == 0) {
        rc = RC_ENOENT;
        break;
      }
      r = (fn == RC_FN_IRATE && last < prev) ? last : last - prev;
      if (fn == RC_FN_IRATE) r /= (double)dt / 1000;
      break;
    }
    case RC_FN_COUNT_OT: r = (double)n; break;
    case RC_FN_PRESENT_OT: r = 1; break;
    case RC_FN_LAST_OT: r = b.v[n - 1]; break;
    case RC_FN_SUM_OT: {
      double sum = 0, c = 0;
      for (size_t i = 0; i < n; i++) kahan_inc_c(b.v[i], &sum, &c, compat);
      r = isinf(sum) ? sum : sum + c;
      break;
    }
    case RC_FN_AVG_OT: {
      if (compat == RC_COMPAT_PROM2) {
        /* 2.x: incremental mean with compensation throughout. */
        double mean = 0, c = 0, count = 0;
        for (size_t i = 0; i < n; i++) {
          count++;
          if (isinf(mean)) {
            if (isinf(b.v[i]) && (mean > 0) == (b.v[i] > 0)) continue;
            if (!isinf(b.v[i]) && !isnan(b.v[i])) continue;
          }
          kahan_inc_c(b.v[i] / count - mean / count, &mean, &c, compat);
        }
        r = isinf(mean) ? mean : mean + c;
        break;
      }
      double sum = b.v[0], count = 1, mean = 0, c = 0;
      int incremental = 0;
      for (size_t i = 1; i < n; i++) {
        count = (double)(i + 1);
        if (!incremental) {
          double ns = sum, nc = c;
          kahan_inc_c(b.v[i], &ns, &nc, compat);
          if (!isinf(ns)) {
            sum = ns;
            c = nc;
            continue;
          }
          incremental = 1;
          mean = sum / (count - 1);
          c /= (count - 1);
        }
        double q = (count - 1) / count;
        double m = q * mean, cc = q * c;
        kahan_inc_c(b.v[i] / count, &m, &cc, compat);
        mean = m;
        c = cc;
      }
      r = incremental ? mean + c : sum / count + c / count;
      break;
    }
    case RC_FN_MIN_OT:
    case RC_FN_MAX_OT: {
      double m = b.v[0];
      for (size_t i = 0; i < n; i++) {
        double x = b.v[i];
        if ((fn == RC_FN_MAX_OT ? x > m : x < m) || isnan(m)) m = x;
      }
      r = m;
      break;
    }
    case RC_FN_STDDEV_OT:
    case RC_FN_STDVAR_OT: {
      double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
      for (size_t i = 0; i < n; i++) {
        count++;
        double delta = b.v[i] - (mean + cmean);
        kahan_inc_c(delta / count, &mean, &cmean, compat);
        kahan_inc_c(delta * (b.v[i] - (mean + cmean)), &aux, &caux, compat);
      }
      double var = (aux + caux) / count;
      r = fn == RC_FN_STDDEV_OT ? sqrt(var) : var;
      break;
    }
    case RC_FN_QUANTILE_OT: r = quantile_sorted(param, b.v, n); break;
    case RC_FN_RESETS:
    case RC_FN_CHANGES: {
      double cnt = 0;
      for (size_t i = 1; i < n; i++) {
        double cur = b.v[i], prev = b.v[i - 1];
        if (fn == RC_FN_RESETS ? cur < prev : (cur != prev && !(isnan(cur) && isnan(prev))))
          cnt++;
      }
      r = cnt;
      break;
    }
    default: rc = RC_EINVAL; break;
  }
out:
  if (b.ts != b.sts) free(b.ts);
  if (b.v != b.sv) free(b.v);
  if (rc == 0) *out = r;
  return rc;
}

typedef struct last_ctx {
  int64_t ts;
  double v;
  int found;
} last_ctx_t;

static int keep_last(void *ctx, int64_t ts, double v) {
  last_ctx_t *l = ctx;
  l->ts = ts;
  l->v = v;
  l->found = 1;
  return 0;
}

int rc_window_instant(const rc_window_t *w, int64_t t_ms, int64_t lookback_ms,
                      rc_compat_t compat, double *v, int64_t *ts) {
  last_ctx_t l = {0, 0, 0};
  int64_t from = wadd(wsub(t_ms, lookback_ms), compat == RC_COMPAT_PROM3 ? 1 : 0);
  if (from <= t_ms) rc_window_foreach(w, from, t_ms, keep_last, &l);
  if (!l.found || dbits(l.v) == STALE_BITS) return RC_ENOENT;
  *v = l.v;
  *ts = l.ts;
  return 0;
}
