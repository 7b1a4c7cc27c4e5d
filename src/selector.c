/* selector.c: label matchers, the RE2-to-PCRE2 regex translator, selectors, the PromQL selector
 * parser and printer; see selector.h for the semantics and the thread rules.
 *
 * Sections: scratch | regex translator | matchers | selectors | parser | printer.
 *
 * Why a translator and not PCRE2 on the raw pattern: PromQL regexes are Go RE2 syntax, and the
 * two dialects disagree on more than what each supports (\s, \v, octal escapes, `$` before a
 * final newline, POSIX classes outside brackets, how (?i) folds negated classes ...). The
 * translator walks the pattern once with RE2's grammar (Go regexp/syntax/parse.go, Perl
 * flags), rejects what RE2 rejects, and emits an equivalent PCRE2 pattern in which every
 * non-alphanumeric character is escaped or spelled as \x{..}, so PCRE2 never gets a construct
 * we did not mean. It also notes the literal prefix every match must start with. It records,
 * for every output byte, the input byte it came from, so that PCRE2's own compile errors are
 * reported at the right column of what the user wrote.
 *
 * Ownership: matchers own copies of name and value, the compiled code and the prefix;
 * selectors own their matchers; the parser owns nothing it returns except the new selector.
 * Threads: see selector.h (immutable after construction; one scratch per matching thread).
 * Not here: the selector index and decision cache (selindex.c).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "selector.h"

#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rw_labels.h"
#include "wbuf.h"

/* How a matcher tests a value. Literal forms skip PCRE2 entirely: Prometheus does the same
 * (optimizeAlternatingLiterals in model/labels/regexp.go), and they are the common case. */
enum {
  K_LITSET = 0, /* value equals one of nalts literals (= and !=, =~"a|b|c") */
  K_ANY,        /* =~".*": every valid UTF-8 value */
  K_NONEMPTY,   /* =~".+": every non-empty valid UTF-8 value */
  K_PCRE,       /* everything else */
};

/* PCRE2 limits per match: a pathological pattern fails (counted) instead of spinning. */
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 100000u
#define HEAP_LIMIT_KIB 8192u
#define JIT_STACK_MIN (32u * 1024u)
#define JIT_STACK_MAX (1024u * 1024u)

/* RE2 limits (Go regexp/syntax: maxRepeat). */
#define RE2_MAX_REPEAT 1000

/* ---- small helpers -------------------------------------------------------------------- */

/* Decodes one code point from UTF-8 the caller validated; returns its byte length. A
 * sequence cut short by n is taken as its lead byte alone, so nothing past s[n) is read. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char c = s[0];
  size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
  if (k > n) k = 1;
  switch (k) {
    case 2: *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F); break;
    case 3:
      *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
      break;
    case 4:
      *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
            ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
      break;
    default: *cp = c; break;
  }
  return k;
}

static size_t utf8_encode(uint32_t cp, char *out) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not valid. */
static size_t utf8_seq_len(const char *s, size_t n) {
  unsigned char c = (unsigned char)s[0];
  size_t k = c < 0x80 ? 1 : c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
  if (k == 0 || k > n) return 0;
  return rc_utf8_valid(s, k) ? k : 0;
}

/* 1-based column (in characters) of byte offset off in s, counting from the last newline. */
static void set_pos(rc_err_t *e, const char *s, size_t n, size_t off) {
  if (e == NULL) return;
  if (off > n) off = n;
  int line = 1, col = 1;
  for (size_t i = 0; i < off; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') {
      line++;
      col = 1;
    } else if ((c & 0xC0) != 0x80) {
      col++; /* count lead bytes only: one per character */
    }
  }
  e->line = line;
  e->col = col;
}

static int is_alpha(int c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* "'x'" or "U+0007" for error messages about one input character. */
static const char *char_desc(char *buf, size_t cap, const char *s, size_t n) {
  if (n == 0) return "end of input";
  unsigned char c = (unsigned char)s[0];
  if (c >= 0x20 && c < 0x7F) {
    snprintf(buf, cap, "'%c'", c);
  } else if (c >= 0x80 && utf8_seq_len(s, n) > 0) {
    uint32_t cp;
    size_t k = utf8_decode((const unsigned char *)s, n, &cp);
    snprintf(buf, cap, "U+%04X '%.*s'", (unsigned)cp, (int)k, s);
  } else {
    snprintf(buf, cap, "byte 0x%02x", c);
  }
  return buf;
}

/* Makes an error message one printable line: messages quote pieces of the input, which may
 * hold newlines or control bytes (escaped as \xHH) and, cut at a byte count, half a UTF-8
 * character (replaced by '?'). */
static void msg_clean(char *m, size_t cap) {
  char out[sizeof(((rc_err_t *)0)->msg)];
  size_t n = strlen(m), k = 0;
  if (cap > sizeof(out)) cap = sizeof(out);
  for (size_t i = 0; i < n && k + 1 < cap;) {
    unsigned char c = (unsigned char)m[i];
    if (c < 0x20 || c == 0x7F) {
      if (k + 5 >= cap) break;
      snprintf(out + k, 5, "\\x%02x", c);
      k += 4;
      i++;
    } else if (c >= 0x80) {
      size_t sl = utf8_seq_len(m + i, n - i);
      if (sl == 0) {
        out[k++] = '?';
        i++;
      } else {
        if (k + sl >= cap) break;
        memcpy(out + k, m + i, sl);
        k += sl;
        i += sl;
      }
    } else {
      out[k++] = m[i++];
    }
  }
  out[k] = '\0';
  memcpy(m, out, k + 1);
}

/* Go's %#U: "U+0071 'q'", or just "U+000A" for a character that does not print. */
static const char *u_desc(char *buf, size_t cap, const char *s, size_t n) {
  uint32_t cp = n ? (unsigned char)s[0] : 0;
  size_t k = 1;
  if (n && cp >= 0x80) {
    if (utf8_seq_len(s, n) == 0) {
      snprintf(buf, cap, "byte 0x%02x", (unsigned)cp);
      return buf;
    }
    k = utf8_decode((const unsigned char *)s, n, &cp);
  }
  if (cp < 0x20 || cp == 0x7F)
    snprintf(buf, cap, "U+%04X", (unsigned)cp);
  else
    snprintf(buf, cap, "U+%04X '%.*s'", (unsigned)cp, (int)k, s);
  return buf;
}

/* ---- scratch ---------------------------------------------------------------------------- */

struct rc_matcher_scratch {
  pcre2_match_data *md;
  pcre2_match_context *mctx;
  pcre2_jit_stack *jstack;
  uint64_t errors;
};

rc_matcher_scratch_t *rc_matcher_scratch_new(void) {
  rc_matcher_scratch_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return NULL;
  s->md = pcre2_match_data_create(1, NULL);
  s->mctx = pcre2_match_context_create(NULL);
  if (s->md == NULL || s->mctx == NULL) {
    rc_matcher_scratch_free(s);
    return NULL;
  }
  pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
  pcre2_set_depth_limit(s->mctx, DEPTH_LIMIT);
  pcre2_set_heap_limit(s->mctx, HEAP_LIMIT_KIB);
  /* Without a JIT (or when JIT stack creation fails) the default 32 KiB machine-stack area
   * is used; patterns needing more fail with a counted error instead of crashing. */
  s->jstack = pcre2_jit_stack_create(JIT_STACK_MIN, JIT_STACK_MAX, NULL);
  if (s->jstack != NULL) pcre2_jit_stack_assign(s->mctx, NULL, s->jstack);
  return s;
}

void rc_matcher_scratch_free(rc_matcher_scratch_t *s) {
  if (s == NULL) return;
  pcre2_match_data_free(s->md);
  pcre2_match_context_free(s->mctx);
  pcre2_jit_stack_free(s->jstack);
  free(s);
}

uint64_t rc_matcher_scratch_errors(const rc_matcher_scratch_t *s) {
  return s == NULL ? 0 : s->errors;
}

/* ---- regex translator (RE2 syntax -> PCRE2 pattern) ------------------------------------ */

typedef struct range {
  uint32_t lo, hi;
} range_t;

/* A character class being assembled: code point ranges plus \p{..} items PCRE2 expands. */
typedef struct cset {
  range_t *r;
  size_t n, cap;
  char *props; /* "\p{Greek}\P{Lu}" ... emitted verbatim inside the brackets; owned */
  size_t plen, pcap;
} cset_t;

static void cset_free(cset_t *c) {
  free(c->r);
  free(c->props);
}

enum { L_NONE, L_ATOM, L_REPEAT, L_FLAGS };

typedef struct frame {
  uint8_t icase_saved; /* (?i) state to restore at ')' */
  uint8_t last;        /* what precedes the cursor in this group: L_* */
  uint32_t lastw;      /* repeat weight of the last atom (RE2's nested repeat product) */
  uint32_t maxw;       /* largest weight of anything in the group so far */
  size_t open_off;     /* where the group started, for "missing )" */
} frame_t;

typedef struct tr {
  const char *s;
  size_t n, i;
  char *out;
  uint32_t *map; /* map[k]: input offset that output byte k came from */
  size_t olen, ocap;
  size_t tok; /* input offset of the token being emitted */
  frame_t *st;
  size_t depth, stcap;
  uint8_t icase;
  int oom;
  size_t err_off;
  char err[120];
  /* The literal text every match must start with: case-sensitive literal atoms at the top
   * level before anything else, none quantified, and no top-level '|'. */
  char *pfx;
  size_t plen, pcap, plast;
  int pstate; /* 1 still collecting, 0 closed, -1 invalid (top-level alternation) */
} tr_t;

static void pfx_close(tr_t *t) {
  if (t->pstate == 1) t->pstate = 0;
}

/* A literal code point was emitted: extend the prefix if it is still open. */
static void pfx_lit(tr_t *t, uint32_t cp) {
  if (t->pstate != 1 || t->depth != 1) return;
  if (t->icase || (cp >= 0xD800 && cp <= 0xDFFF)) {
    pfx_close(t);
    return;
  }
  if (t->plen + 4 > t->pcap) {
    size_t nc = t->pcap ? t->pcap * 2 : 32;
    char *np = realloc(t->pfx, nc);
    if (np == NULL) { /* an optimisation only: just stop collecting */
      pfx_close(t);
      return;
    }
    t->pfx = np;
    t->pcap = nc;
  }
  t->plast = utf8_encode(cp, t->pfx + t->plen);
  t->plen += t->plast;
}

__attribute__((format(printf, 3, 4))) static int tr_fail(tr_t *t, size_t off, const char *fmt,
                                                         ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->err, sizeof(t->err), fmt, ap);
  va_end(ap);
  msg_clean(t->err, sizeof(t->err));
  t->err_off = off;
  return -1;
}

static void emit_n(tr_t *t, const char *p, size_t k) {
  if (t->oom) return;
  if (t->olen + k + 1 > t->ocap) {
    size_t nc = t->ocap ? t->ocap : 256;
    while (nc < t->olen + k + 1) nc *= 2;
    char *no = realloc(t->out, nc);
    if (no == NULL) {
      t->oom = 1;
      return;
    }
    t->out = no;
    uint32_t *nm = realloc(t->map, nc * sizeof(*nm));
    if (nm == NULL) {
      t->oom = 1;
      return;
    }
    t->map = nm;
    t->ocap = nc;
  }
  memcpy(t->out + t->olen, p, k);
  for (size_t j = 0; j < k; j++) t->map[t->olen + j] = (uint32_t)t->tok;
  t->olen += k;
  t->out[t->olen] = '\0';
}

static void emit(tr_t *t, const char *p) { emit_n(t, p, strlen(p)); }

static void emit_hex(tr_t *t, uint32_t cp) {
  char b[16];
  int k = snprintf(b, sizeof(b), "\\x{%x}", (unsigned)cp);
  emit_n(t, b, (size_t)k);
}

/* A never-matching atom: the class of no code point (PCRE2 rejects an empty []). */
#define NEVER_ATOM "[^\\x{0}-\\x{10ffff}]"

static int is_surrogate(uint32_t cp) { return cp >= 0xD800 && cp <= 0xDFFF; }

/* One literal code point, spelled so PCRE2 cannot read it as syntax. */
static void emit_literal(tr_t *t, uint32_t cp) {
  if (cp < 0x80 && is_alnum((int)cp) && cp != '_') {
    char c = (char)cp;
    emit_n(t, &c, 1);
  } else if (cp > 0x20 && cp < 0x7F) {
    char b[2] = {'\\', (char)cp};
    emit_n(t, b, 2);
  } else if (is_surrogate(cp)) {
    /* RE2 accepts \x{D800} but no UTF-8 text contains it; PCRE2 rejects it outright. */
    emit(t, NEVER_ATOM);
  } else {
    emit_hex(t, cp);
  }
}

static int cset_add(tr_t *t, cset_t *c, uint32_t lo, uint32_t hi) {
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 16;
    range_t *nr = realloc(c->r, nc * sizeof(*nr));
    if (nr == NULL) {
      t->oom = 1;
      return -1;
    }
    c->r = nr;
    c->cap = nc;
  }
  c->r[c->n++] = (range_t){lo, hi};
  return 0;
}

static int range_cmp(const void *a, const void *b) {
  const range_t *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges ranges in place. */
static void cset_clean(cset_t *c) {
  if (c->n < 2) return;
  qsort(c->r, c->n, sizeof(*c->r), range_cmp);
  size_t w = 0;
  for (size_t i = 1; i < c->n; i++) {
    if (c->r[i].lo <= c->r[w].hi + 1) {
      if (c->r[i].hi > c->r[w].hi) c->r[w].hi = c->r[i].hi;
    } else {
      c->r[++w] = c->r[i];
    }
  }
  c->n = w + 1;
}

/* RE2's (?i) folding of an ASCII set: both cases of each letter, plus the two non-ASCII code
 * points whose simple case folding orbit contains an ASCII letter (U+017F long s, U+212A
 * Kelvin sign), exactly what Go's appendFoldedRange adds for ASCII input. */
static void fold_ascii(tr_t *t, cset_t *c) {
  size_t n0 = c->n;
  int has_k = 0, has_s = 0;
  for (size_t i = 0; i < n0; i++) {
    for (uint32_t cp = c->r[i].lo; cp <= c->r[i].hi && cp < 0x80; cp++) {
      if (cp >= 'a' && cp <= 'z') cset_add(t, c, cp - 32, cp - 32);
      if (cp >= 'A' && cp <= 'Z') cset_add(t, c, cp + 32, cp + 32);
      if (cp == 'k' || cp == 'K') has_k = 1;
      if (cp == 's' || cp == 'S') has_s = 1;
    }
  }
  if (has_k) cset_add(t, c, 0x212A, 0x212A);
  if (has_s) cset_add(t, c, 0x17F, 0x17F);
}

/* Adds a named ASCII set (Perl or POSIX class) to dst, negated if neg. Under (?i) a negated
 * set is folded before it is complemented, as RE2 does, so that PCRE2's caseless matching of
 * the complement cannot reach a letter the set excluded. */
static void cset_add_named(tr_t *t, cset_t *dst, const range_t *r, size_t n, int neg) {
  if (!neg) {
    for (size_t i = 0; i < n; i++) cset_add(t, dst, r[i].lo, r[i].hi);
    return;
  }
  cset_t tmp = {0};
  for (size_t i = 0; i < n; i++) cset_add(t, &tmp, r[i].lo, r[i].hi);
  if (t->icase) fold_ascii(t, &tmp);
  cset_clean(&tmp);
  uint32_t next = 0;
  for (size_t i = 0; i < tmp.n; i++) {
    if (tmp.r[i].lo > next) cset_add(t, dst, next, tmp.r[i].lo - 1);
    next = tmp.r[i].hi + 1;
  }
  if (next <= 0x10FFFF) cset_add(t, dst, next, 0x10FFFF);
  free(tmp.r);
}

typedef struct named_set {
  const char *name;
  range_t r[4];
  size_t n;
} named_set_t;

/* Go regexp/syntax perl_groups.go: ASCII only. */
static const named_set_t posix_sets[] = {
    {"alnum", {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}}, 3},
    {"alpha", {{'A', 'Z'}, {'a', 'z'}}, 2},
    {"ascii", {{0, 0x7F}}, 1},
    {"blank", {{'\t', '\t'}, {' ', ' '}}, 2},
    {"cntrl", {{0, 0x1F}, {0x7F, 0x7F}}, 2},
    {"digit", {{'0', '9'}}, 1},
    {"graph", {{'!', '~'}}, 1},
    {"lower", {{'a', 'z'}}, 1},
    {"print", {{' ', '~'}}, 1},
    {"punct", {{'!', '/'}, {':', '@'}, {'[', '`'}, {'{', '~'}}, 4},
    {"space", {{'\t', '\r'}, {' ', ' '}}, 2},
    {"upper", {{'A', 'Z'}}, 1},
    {"word", {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'_', '_'}}, 4},
    {"xdigit", {{'0', '9'}, {'A', 'F'}, {'a', 'f'}}, 3},
};
static const named_set_t perl_d = {"d", {{'0', '9'}}, 1};
/* RE2's \s has no \v, unlike PCRE2's. */
static const named_set_t perl_s = {"s", {{'\t', '\n'}, {'\f', '\r'}, {' ', ' '}}, 3};
static const named_set_t perl_w = {"w", {{'0', '9'}, {'A', 'Z'}, {'a', 'z'}, {'_', '_'}}, 4};

/* If s[i..] starts a Perl class escape (\d \D \s \S \w \W), adds it and returns 1. */
static int perl_class(tr_t *t, cset_t *c, size_t i) {
  if (i + 1 >= t->n || t->s[i] != '\\') return 0;
  const named_set_t *g = NULL;
  switch (t->s[i + 1] | 0x20) {
    case 'd': g = &perl_d; break;
    case 's': g = &perl_s; break;
    case 'w': g = &perl_w; break;
    default: return 0;
  }
  cset_add_named(t, c, g->r, g->n, t->s[i + 1] >= 'A' && t->s[i + 1] <= 'Z');
  return 1;
}

static void props_append(tr_t *t, cset_t *c, const char *p) {
  size_t k = strlen(p);
  if (c->plen + k + 1 > c->pcap) {
    size_t nc = c->pcap ? c->pcap * 2 : 64;
    while (nc < c->plen + k + 1) nc *= 2;
    char *np = realloc(c->props, nc);
    if (np == NULL) {
      t->oom = 1;
      return;
    }
    c->props = np;
    c->pcap = nc;
  }
  memcpy(c->props + c->plen, p, k + 1);
  c->plen += k;
}

/* Parses \pX, \p{Name}, \PX, \P{^Name} at s[i]; adds it to c. Returns bytes consumed or -1.
 * Go canonicalises names (case, '_', '-', ' ' ignored) and has four specials (Any, Assigned,
 * ASCII, LC); PCRE2 matches property names just as loosely, so other names pass through and
 * PCRE2's Unicode tables decide whether they exist. */
static long unicode_class(tr_t *t, cset_t *c, size_t i) {
  int neg = t->s[i + 1] == 'P';
  size_t j = i + 2;
  char name[64];
  size_t nl = 0;
  if (j >= t->n) return tr_fail(t, i, "invalid character class range: `%.*s`", 2, t->s + i);
  if (t->s[j] != '{') {
    if (!is_alpha((unsigned char)t->s[j]) || t->s[j] == '_')
      return tr_fail(t, i, "invalid character class range: `%.*s`", 3, t->s + i);
    name[nl++] = t->s[j++];
  } else {
    size_t k = j + 1;
    while (k < t->n && t->s[k] != '}') k++;
    if (k >= t->n)
      return tr_fail(t, i, "invalid character class range: `%.*s`", (int)(k - i), t->s + i);
    size_t a = j + 1;
    if (a < k && t->s[a] == '^') {
      neg = !neg;
      a++;
    }
    if (a == k || k - a >= sizeof(name))
      return tr_fail(t, i, "invalid character class range: `%.*s`", (int)(k + 1 - i), t->s + i);
    for (size_t q = a; q < k; q++) {
      int ch = (unsigned char)t->s[q];
      if (!is_alnum(ch) && ch != '-' && ch != ' ')
        return tr_fail(t, i, "invalid character class range: `%.*s`", (int)(k + 1 - i), t->s + i);
      name[nl++] = (char)ch;
    }
    j = k + 1;
  }
  name[nl] = '\0';
  /* Canonical form, Go's canonicalName: first letter upper, rest lower, no '_', '-', ' '. */
  char canon[64];
  size_t cl = 0;
  for (size_t q = 0; q < nl; q++) {
    char ch = name[q];
    if (ch == '_' || ch == '-' || ch == ' ') continue;
    if (cl == 0 && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
    if (cl > 0 && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
    canon[cl++] = ch;
  }
  canon[cl] = '\0';
  char buf[96];
  if (strcmp(canon, "Any") == 0) {
    if (!neg) cset_add(t, c, 0, 0x10FFFF);
  } else if (strcmp(canon, "Ascii") == 0) {
    static const range_t ascii = {0, 0x7F};
    cset_add_named(t, c, &ascii, 1, neg);
  } else if (strcmp(canon, "Assigned") == 0) {
    props_append(t, c, neg ? "\\p{Cn}" : "\\P{Cn}");
  } else if (strcmp(canon, "Lc") == 0) {
    props_append(t, c, neg ? "\\P{L&}" : "\\p{L&}");
  } else {
    snprintf(buf, sizeof(buf), "\\%c{%s}", neg ? 'P' : 'p', name);
    props_append(t, c, buf);
  }
  return (long)(j - i);
}

/* Emits an assembled class. An empty positive class never matches; an empty negated one
 * matches anything (PCRE2 has no way to write either as []). Surrogates, which RE2 ranges may
 * contain and PCRE2 refuses, are cut out: no UTF-8 text contains them. */
static void cset_emit(tr_t *t, cset_t *c, int neg) {
  cset_clean(c);
  size_t mark = t->olen;
  emit(t, neg ? "[^" : "[");
  int any = 0;
  for (size_t i = 0; i < c->n; i++) {
    uint32_t lo = c->r[i].lo, hi = c->r[i].hi;
    range_t parts[2];
    size_t np = 0;
    if (hi < 0xD800 || lo > 0xDFFF) {
      parts[np++] = (range_t){lo, hi};
    } else {
      if (lo < 0xD800) parts[np++] = (range_t){lo, 0xD7FF};
      if (hi > 0xDFFF) parts[np++] = (range_t){0xE000, hi};
    }
    for (size_t p = 0; p < np; p++) {
      emit_hex(t, parts[p].lo);
      if (parts[p].hi != parts[p].lo) {
        emit(t, "-");
        emit_hex(t, parts[p].hi);
      }
      any = 1;
    }
  }
  if (c->plen) {
    emit(t, c->props);
    any = 1;
  }
  if (!any) {
    t->olen = mark;
    emit(t, neg ? "[\\x{0}-\\x{10ffff}]" : NEVER_ATOM);
    return;
  }
  emit(t, "]");
}

/* Parses an escape that denotes one code point (Go parseEscape). s[i] is the backslash.
 * Returns bytes consumed, or -1 with the error set. */
static long parse_escape(tr_t *t, size_t i, uint32_t *cp) {
  if (i + 1 >= t->n) return tr_fail(t, i, "trailing backslash at end of expression");
  unsigned char c = (unsigned char)t->s[i + 1];
  size_t j = i + 2;
  if (c >= 0x80) {
    uint32_t u;
    size_t k = utf8_decode((const unsigned char *)t->s + i + 1, t->n - i - 1, &u);
    return tr_fail(t, i, "invalid escape sequence: `\\%.*s`", (int)k, t->s + i + 1);
  }
  if (!is_alnum(c) || c == '_') {
    *cp = c; /* escaped punctuation (and \_) is itself */
    return 2;
  }
  switch (c) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
      /* A single non-zero digit would be a backreference, which RE2 lacks. */
      if (j >= t->n || t->s[j] < '0' || t->s[j] > '7')
        return tr_fail(t, i, "backreferences are not supported: `\\%c`", c);
      /* fall through */
    case '0': {
      uint32_t v = (uint32_t)(c - '0');
      for (int k = 1; k < 3 && j < t->n && t->s[j] >= '0' && t->s[j] <= '7'; k++, j++)
        v = v * 8 + (uint32_t)(t->s[j] - '0');
      *cp = v;
      return (long)(j - i);
    }
    case '8':
    case '9': return tr_fail(t, i, "backreferences are not supported: `\\%c`", c);
    case 'x': {
      if (j < t->n && t->s[j] == '{') {
        uint32_t v = 0;
        size_t k = j + 1, nh = 0;
        while (k < t->n && t->s[k] != '}') {
          int h = hexval((unsigned char)t->s[k]);
          if (h < 0 || (v = v * 16 + (uint32_t)h) > 0x10FFFF) break;
          k++;
          nh++;
        }
        if (k >= t->n || t->s[k] != '}' || nh == 0) {
          while (k < t->n && t->s[k] != '}' && k - i < 16) k++;
          return tr_fail(t, i, "invalid escape sequence: `%.*s`", (int)((k < t->n ? k + 1 : k) - i),
                         t->s + i);
        }
        *cp = v;
        return (long)(k + 1 - i);
      }
      if (j + 1 < t->n && hexval((unsigned char)t->s[j]) >= 0 &&
          hexval((unsigned char)t->s[j + 1]) >= 0) {
        *cp = (uint32_t)(hexval((unsigned char)t->s[j]) * 16 + hexval((unsigned char)t->s[j + 1]));
        return 4;
      }
      return tr_fail(t, i, "invalid escape sequence: `%.*s`", (int)(j + 2 <= t->n ? 4 : t->n - i),
                     t->s + i);
    }
    case 'a': *cp = 7; return 2;
    case 'f': *cp = '\f'; return 2;
    case 'n': *cp = '\n'; return 2;
    case 'r': *cp = '\r'; return 2;
    case 't': *cp = '\t'; return 2;
    case 'v': *cp = 0x0B; return 2; /* a character in RE2; a class in PCRE2 */
    case 'C': return tr_fail(t, i, "\\C (any byte) is not supported");
    case 'k':
    case 'g': return tr_fail(t, i, "backreferences are not supported: `\\%c`", c);
    default: return tr_fail(t, i, "invalid escape sequence: `\\%c`", c);
  }
}

/* Parses a bracketed class starting at s[i] == '['. Returns bytes consumed or -1. */
static long parse_class(tr_t *t, size_t i) {
  size_t start = i;
  cset_t c = {0};
  size_t j = i + 1;
  int neg = 0;
  if (j < t->n && t->s[j] == '^') {
    neg = 1;
    j++;
  }
  int first = 1; /* ']' right after '[' or '[^' is a literal */
  for (;;) {
    if (j >= t->n) {
      cset_free(&c);
      return tr_fail(t, start, "missing closing ]: `%.*s`", (int)(j - start > 20 ? 20 : j - start),
                     t->s + start);
    }
    if (t->s[j] == ']' && !first) break;
    first = 0;
    if (t->s[j] == '[' && j + 1 < t->n && t->s[j + 1] == ':') {
      const char *end = NULL;
      for (size_t k = j + 2; k + 1 < t->n; k++)
        if (t->s[k] == ':' && t->s[k + 1] == ']') {
          end = t->s + k;
          break;
        }
      if (end != NULL) {
        const char *nm = t->s + j + 2;
        size_t nlen = (size_t)(end - nm);
        int pneg = nlen > 0 && nm[0] == '^';
        const named_set_t *g = NULL;
        for (size_t q = 0; q < RC_ARRAY_SIZE(posix_sets); q++)
          if (strlen(posix_sets[q].name) == nlen - (size_t)pneg &&
              memcmp(posix_sets[q].name, nm + pneg, nlen - (size_t)pneg) == 0)
            g = &posix_sets[q];
        if (g == NULL) {
          cset_free(&c);
          return tr_fail(t, j, "invalid character class range: `%.*s`", (int)(nlen + 4), t->s + j);
        }
        cset_add_named(t, &c, g->r, g->n, pneg);
        j = (size_t)(end - t->s) + 2;
        continue;
      }
    }
    if (t->s[j] == '\\' && j + 1 < t->n && (t->s[j + 1] == 'p' || t->s[j + 1] == 'P')) {
      long k = unicode_class(t, &c, j);
      if (k < 0) {
        cset_free(&c);
        return -1;
      }
      j += (size_t)k;
      continue;
    }
    if (perl_class(t, &c, j)) {
      j += 2;
      continue;
    }
    size_t rs = j;
    uint32_t lo, hi;
    if (t->s[j] == '\\') {
      long k = parse_escape(t, j, &lo);
      if (k < 0) {
        cset_free(&c);
        return -1;
      }
      j += (size_t)k;
    } else {
      j += utf8_decode((const unsigned char *)t->s + j, t->n - j, &lo);
    }
    hi = lo;
    if (j + 1 < t->n && t->s[j] == '-' && t->s[j + 1] != ']') {
      j++;
      if (t->s[j] == '\\') {
        long k = parse_escape(t, j, &hi);
        if (k < 0) {
          cset_free(&c);
          return -1;
        }
        j += (size_t)k;
      } else {
        j += utf8_decode((const unsigned char *)t->s + j, t->n - j, &hi);
      }
      if (hi < lo) {
        cset_free(&c);
        return tr_fail(t, rs, "invalid character class range: `%.*s`", (int)(j - rs), t->s + rs);
      }
    }
    cset_add(t, &c, lo, hi);
  }
  j++; /* ']' */
  cset_emit(t, &c, neg);
  cset_free(&c);
  return (long)(j - start);
}

static frame_t *top(tr_t *t) { return &t->st[t->depth - 1]; }

static void atom_done(tr_t *t, uint32_t w) {
  frame_t *f = top(t);
  f->last = L_ATOM;
  f->lastw = w;
  if (w > f->maxw) f->maxw = w;
}

static int push_frame(tr_t *t, size_t off) {
  if (t->depth == t->stcap) {
    size_t nc = t->stcap * 2;
    frame_t *ns = realloc(t->st, nc * sizeof(*ns));
    if (ns == NULL) {
      t->oom = 1;
      return -1;
    }
    t->st = ns;
    t->stcap = nc;
  }
  t->st[t->depth++] =
      (frame_t){.icase_saved = t->icase, .last = L_NONE, .lastw = 1, .maxw = 1, .open_off = off};
  return 0;
}

/* Go parseInt: a decimal number without leading zeros; -1 if it is 1e8 or more. Returns the
 * bytes read, 0 if there is no number. */
static size_t parse_int(tr_t *t, size_t j, int *v) {
  size_t a = j;
  if (j >= t->n || !is_digit((unsigned char)t->s[j])) return 0;
  if (t->s[j] == '0' && j + 1 < t->n && is_digit((unsigned char)t->s[j + 1])) return 0;
  long x = 0;
  for (; j < t->n && is_digit((unsigned char)t->s[j]); j++)
    if (x >= 0) x = x >= 10000000 ? -1 : x * 10 + (t->s[j] - '0');
  *v = (int)x;
  return j - a;
}

/* Go parseRepeat: {n}, {n,}, {n,m}. Returns the bytes of the form, or 0 when s[i..] is not one
 * (then '{' is a literal). *min is -1 when a number is too large. */
static size_t parse_braces(tr_t *t, size_t i, int *min, int *max) {
  size_t j = i + 1, k;
  if ((k = parse_int(t, j, min)) == 0) return 0;
  j += k;
  if (j >= t->n) return 0;
  if (t->s[j] != ',') {
    *max = *min;
  } else {
    j++;
    if (j >= t->n) return 0;
    if (t->s[j] == '}') {
      *max = -1;
    } else {
      if ((k = parse_int(t, j, max)) == 0) return 0;
      j += k;
      if (*max < 0) *min = -1;
    }
  }
  if (j >= t->n || t->s[j] != '}') return 0;
  return j + 1 - i;
}

/* Applies a repetition operator of `len` bytes at s[i] (already validated as a form). */
static long repeat(tr_t *t, size_t i, size_t len, int min, int max) {
  frame_t *f = top(t);
  size_t after = i + len;
  int lazy = after < t->n && t->s[after] == '?';
  if (lazy) after++;
  if (f->last == L_REPEAT) {
    if (t->s[i] == '+' && i > 0 && strchr("*+?}", t->s[i - 1]) != NULL)
      return tr_fail(t, i, "possessive quantifiers are not supported: `%c+`", t->s[i - 1]);
    return tr_fail(t, i, "invalid nested repetition operator: `%.*s`", (int)(after - i), t->s + i);
  }
  if (f->last == L_NONE)
    return tr_fail(t, i, "missing argument to repetition operator: `%.*s`", (int)(after - i),
                   t->s + i);
  if (f->last == L_FLAGS)
    return tr_fail(t, i, "repetition operator after a flag group is not supported: `%.*s`",
                   (int)(after - i), t->s + i);
  if (t->pstate == 1 && t->depth == 1) { /* the quantified literal is optional or repeated */
    t->plen -= t->plast;
    t->pstate = 0;
  }
  uint32_t w = f->lastw;
  if (t->s[i] == '{') {
    uint32_t m = (uint32_t)(max < 0 ? min : max);
    /* RE2 caps the product of nested counts (repeatIsValid), not just each count. */
    if ((min >= 2 || max >= 2) && m != 0 && (uint64_t)m * w > RE2_MAX_REPEAT)
      return tr_fail(t, i, "invalid repeat count: `%.*s`", (int)len, t->s + i);
    w = m == 0 ? 1 : m * w;
  }
  emit_n(t, t->s + i, len);
  if (lazy) emit(t, "?");
  f->last = L_REPEAT;
  f->lastw = w;
  if (w > f->maxw) f->maxw = w;
  return (long)(after - i);
}

/* (?...) at s[i]: named groups, flag groups, and everything RE2 refuses. */
static long perl_group(tr_t *t, size_t i) {
  const char *s = t->s;
  size_t n = t->n, j = i + 2;
  if (j >= n) return tr_fail(t, i, "missing closing ): `(?`");
  char c = s[j];
  int named = (c == 'P' && j + 1 < n && s[j + 1] == '<') ||
              (c == '<' && !(j + 1 < n && (s[j + 1] == '=' || s[j + 1] == '!')));
  if (named) {
    size_t a = j + (c == 'P' ? 2 : 1), k = a;
    while (k < n && s[k] != '>') {
      if (!is_alnum((unsigned char)s[k])) break;
      k++;
    }
    if (k >= n || s[k] != '>' || k == a)
      return tr_fail(t, i, "invalid named capture: `%.*s`", (int)((k < n ? k + 1 : n) - i), s + i);
    if (push_frame(t, i) < 0) return -1;
    emit(t, "(?:");
    return (long)(k + 1 - i);
  }
  switch (c) {
    case '=': return tr_fail(t, i, "lookahead (?= is not supported");
    case '!': return tr_fail(t, i, "negative lookahead (?! is not supported");
    case '<': return tr_fail(t, i, "lookbehind (?<%c is not supported", s[j + 1]);
    case '>': return tr_fail(t, i, "atomic groups (?> are not supported");
    case '#': return tr_fail(t, i, "comments (?# are not supported");
    case '|': return tr_fail(t, i, "branch reset (?| is not supported");
    case '(': return tr_fail(t, i, "conditionals (?( are not supported");
    case 'C': return tr_fail(t, i, "callouts (?C are not supported");
    case 'R':
    case '&':
    case '+':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9': return tr_fail(t, i, "recursion and subroutine calls are not supported: `(?%c`", c);
    case 'P':
      if (j + 1 < n && s[j + 1] == '=')
        return tr_fail(t, i, "backreferences are not supported: `(?P=`");
      if (j + 1 < n && s[j + 1] == '>')
        return tr_fail(t, i, "recursion and subroutine calls are not supported: `(?P>`");
      break;
    case '\'': return tr_fail(t, i, "invalid named capture: `(?'` (use (?P<name>...))");
    default: break;
  }
  /* Flags: (?flags) or (?flags:re), flags from i m s U, at most one '-', Go parsePerlFlags. */
  int sign = 1, saw = 0;
  uint8_t icase = t->icase;
  size_t k = j;
  for (; k < n; k++) {
    char f = s[k];
    if (f == 'i' || f == 'm' || f == 's' || f == 'U') {
      if (f == 'i') icase = sign > 0;
      saw = 1;
      continue;
    }
    if (f == '-') {
      if (sign < 0) break;
      sign = -1;
      saw = 0;
      continue;
    }
    if (f == ':' || f == ')') {
      if (sign < 0 && !saw) break;
      if (f == ':') {
        if (push_frame(t, i) < 0) return -1;
        emit_n(t, s + i, k + 1 - i); /* "(?flags:" is valid PCRE2 as written */
        t->icase = icase;
      } else {
        if (k > j) emit_n(t, s + i, k + 1 - i); /* "(?)" changes nothing: emit nothing */
        t->icase = icase;
        frame_t *fr = top(t);
        if (fr->last != L_NONE) fr->last = L_FLAGS;
      }
      return (long)(k + 1 - i);
    }
    break;
  }
  if (k < n && s[k] == '*') return tr_fail(t, i, "missing argument to repetition operator: `*`");
  return tr_fail(t, i, "invalid or unsupported Perl syntax: `%.*s`", (int)((k < n ? k + 1 : n) - i),
                 s + i);
}

/* Translates t->s into t->out. Returns 0 or -1 (t->err/t->err_off, or t->oom). */
static int translate(tr_t *t) {
  t->stcap = 16;
  t->st = malloc(t->stcap * sizeof(*t->st));
  if (t->st == NULL) {
    t->oom = 1;
    return -1;
  }
  t->depth = 0;
  push_frame(t, 0);
  emit(t, ""); /* makes out non-NULL even for the empty pattern */
  t->pstate = 1;
  while (t->i < t->n && !t->oom) {
    size_t i = t->i;
    t->tok = i;
    unsigned char c = (unsigned char)t->s[i];
    long used = 1;
    /* Prefix bookkeeping: literals extend it (below), quantifiers trim it (repeat), a
     * top-level '|' voids it, a leading '^' is a no-op, anything else ends it. */
    if (c == '|' && t->depth == 1)
      t->pstate = -1;
    else if (c == '^' && t->plen == 0) {
    } else if (c != '*' && c != '+' && c != '?' && c != '{' && c != '\\' &&
               (c < 0x80 ? strchr("()[]$.", c) != NULL : 0))
      pfx_close(t);
    switch (c) {
      case '(':
        if (i + 1 < t->n && t->s[i + 1] == '?') {
          used = perl_group(t, i);
        } else if (i + 1 < t->n && t->s[i + 1] == '*') {
          used = tr_fail(t, i + 1,
                         "missing argument to repetition operator: `*` "
                         "(PCRE2 verbs like (*UTF) are not supported)");
        } else {
          if (push_frame(t, i) < 0) return -1;
          emit(t, "(?:"); /* captures are never read: do not pay for them */
        }
        break;
      case ')': {
        if (t->depth <= 1) {
          used = tr_fail(t, i, "unexpected )");
          break;
        }
        frame_t f = *top(t);
        t->depth--;
        t->icase = f.icase_saved;
        emit(t, ")");
        atom_done(t, f.maxw);
        break;
      }
      case '|':
        emit(t, "|");
        top(t)->last = L_NONE;
        break;
      case '^':
        emit(t, "(?:^)");
        atom_done(t, 1);
        break;
      case '$':
        emit(t, "(?:$)");
        atom_done(t, 1);
        break;
      case '.':
        emit(t, ".");
        atom_done(t, 1);
        break;
      case '[':
        used = parse_class(t, i);
        if (used > 0) atom_done(t, 1);
        break;
      case '*':
      case '+':
      case '?': used = repeat(t, i, 1, 0, 0); break;
      case '{': {
        int min = 0, max = 0;
        size_t k = parse_braces(t, i, &min, &max);
        if (k == 0) {
          emit_literal(t, '{');
          pfx_lit(t, '{');
          atom_done(t, 1);
          break;
        }
        if (min < 0 || min > RE2_MAX_REPEAT || max > RE2_MAX_REPEAT || (max >= 0 && min > max)) {
          used = tr_fail(t, i, "invalid repeat count: `%.*s`", (int)k, t->s + i);
          break;
        }
        used = repeat(t, i, k, min, max);
        break;
      }
      case '\\': {
        char e = i + 1 < t->n ? t->s[i + 1] : 0;
        if (e == 'A' || e == 'z' || e == 'b' || e == 'B') {
          pfx_close(t);
          char b[8] = "(?:\\X)";
          b[4] = e;
          emit(t, b);
          atom_done(t, 1);
          used = 2;
        } else if (e == 'Q') {
          size_t j = i + 2;
          while (j < t->n && !(t->s[j] == '\\' && j + 1 < t->n && t->s[j + 1] == 'E')) {
            uint32_t cp;
            t->tok = j;
            j += utf8_decode((const unsigned char *)t->s + j, t->n - j, &cp);
            emit_literal(t, cp);
            pfx_lit(t, cp);
            atom_done(t, 1);
          }
          used = (long)((j < t->n ? j + 2 : j) - i);
        } else if (e == 'p' || e == 'P' || (e | 0x20) == 'd' || (e | 0x20) == 's' ||
                   (e | 0x20) == 'w') {
          cset_t cs = {0};
          pfx_close(t);
          if (e == 'p' || e == 'P') {
            used = unicode_class(t, &cs, i);
          } else {
            perl_class(t, &cs, i);
            used = 2;
          }
          if (used > 0) {
            cset_emit(t, &cs, 0);
            atom_done(t, 1);
          }
          cset_free(&cs);
        } else {
          uint32_t cp = 0;
          used = parse_escape(t, i, &cp);
          if (used > 0) {
            emit_literal(t, cp);
            pfx_lit(t, cp);
            atom_done(t, 1);
          }
        }
        break;
      }
      default: {
        uint32_t cp;
        used = (long)utf8_decode((const unsigned char *)t->s + i, t->n - i, &cp);
        emit_literal(t, cp);
        pfx_lit(t, cp);
        atom_done(t, 1);
        break;
      }
    }
    if (used < 0) return -1;
    t->i = i + (size_t)used;
  }
  if (t->oom) return -1;
  if (t->depth > 1)
    return tr_fail(t, top(t)->open_off, "missing closing ): `%.*s`",
                   (int)(t->n - top(t)->open_off > 20 ? 20 : t->n - top(t)->open_off),
                   t->s + top(t)->open_off);
  return 0;
}

/* ---- matchers --------------------------------------------------------------------------- */

const char *rc_match_op_str(rc_match_op_t op) {
  switch (op) {
    case RC_MATCH_EQ: return "=";
    case RC_MATCH_NE: return "!=";
    case RC_MATCH_RE: return "=~";
    case RC_MATCH_NRE: return "!~";
  }
  return "?";
}

/* Alternatives of a literal set are scanned linearly up to this many; larger sets are sorted
 * (by length, then bytes) and binary-searched. */
#define MAX_LITSET_SCAN 8

/* Orders (offset, length) pairs into value by length, then bytes. */
static int alt_cmp(const void *a, const void *b, void *value) {
  const uint32_t *x = a, *y = b;
  if (x[1] != y[1]) return x[1] < y[1] ? -1 : 1;
  return x[1] ? memcmp((const char *)value + x[0], (const char *)value + y[0], x[1]) : 0;
}

static int litset_search(const rc_matcher_t *m, const char *v, size_t len) {
  uint32_t lo = 0, hi = m->nalts;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    uint32_t al = m->alts[2 * mid];
    uint32_t ml = m->alts[2 * mid + 1];
    int c = ml != len ? (ml < len ? -1 : 1) : (len ? memcmp(m->value + al, v, len) : 0);
    if (c == 0) return 1;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return 0;
}

/* Runs the compiled regex: 1 match, 0 no match, -1 PCRE2 error (limits). */
static int regex_run(const rc_matcher_t *m, pcre2_match_data *md, pcre2_match_context *mctx,
                     const char *v, size_t len) {
  /* PCRE2 10.42 wants a non-NULL subject even when it is empty. */
  PCRE2_SPTR subj = (PCRE2_SPTR)(v != NULL ? v : "");
  int rc = m->jit ? pcre2_jit_match((pcre2_code *)m->re, subj, len, 0, 0, md, mctx)
                  : pcre2_match((pcre2_code *)m->re, subj, len, 0, 0, md, mctx);
  if (rc >= 0) return 1; /* 0 would mean "ovector too small": still a match */
  return rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

static inline int prefix_ok(const rc_matcher_t *m, const char *v, size_t len) {
  return len >= m->prefix_len && (m->prefix_len == 0 || memcmp(v, m->prefix, m->prefix_len) == 0);
}

/* The positive test (=, =~) on a value: 1, 0, or -1 on a regex error. */
static int value_test(const rc_matcher_t *m, rc_matcher_scratch_t *scr, const char *v, size_t len) {
  switch (m->kind) {
    case K_LITSET:
      if (m->alts == NULL)
        return len == m->value_len && (len == 0 || memcmp(v, m->value, len) == 0);
      if (m->nalts > MAX_LITSET_SCAN) return litset_search(m, v, len);
      for (uint32_t i = 0; i < m->nalts; i++) {
        uint32_t off = m->alts[2 * i], al = m->alts[2 * i + 1];
        if (al == len && (len == 0 || memcmp(v, m->value + off, len) == 0)) return 1;
      }
      return 0;
    case K_ANY: return 1;
    case K_NONEMPTY: return len > 0;
    default: break;
  }
  if (!prefix_ok(m, v, len)) return 0; /* no PCRE2 call for values that cannot match */
  if (scr != NULL) return regex_run(m, scr->md, scr->mctx, v, len);
  /* No scratch: correct but slow (allocates); the hot paths always pass one. */
  pcre2_match_data *md = pcre2_match_data_create(1, NULL);
  if (md == NULL) return -1;
  int r = regex_run(m, md, NULL, v, len);
  pcre2_match_data_free(md);
  return r;
}

int rc_matcher_matches(const rc_matcher_t *m, rc_matcher_scratch_t *scr, const char *v,
                       size_t len) {
  int r = value_test(m, scr, v, v == NULL ? 0 : len);
  if (RC_UNLIKELY(r < 0)) {
    if (scr != NULL) scr->errors++;
    return 0; /* an error never selects, whatever the op */
  }
  return (m->op == RC_MATCH_EQ || m->op == RC_MATCH_RE) ? r : !r;
}

void rc_matcher_close(rc_matcher_t *m) {
  if (m == NULL) return;
  free(m->name);
  free(m->value);
  free(m->alts);
  free(m->prefix);
  pcre2_code_free((pcre2_code *)m->re);
  memset(m, 0, sizeof(*m));
}

/* Splits a regex made only of literal text and '|' (no RE2 metacharacter: the set Go's
 * regexp.QuoteMeta escapes) into its alternatives. Returns 1 if it is such a set. */
static int literal_set(rc_matcher_t *m) {
  static const char meta[] = "\\.+*?()[]{}^$";
  uint32_t nalts = 1;
  for (uint32_t i = 0; i < m->value_len; i++) {
    if (m->value[i] == '|')
      nalts++;
    else if (m->value[i] != '\0' && strchr(meta, m->value[i]) != NULL)
      return 0;
  }
  if (nalts == 1) return 1; /* alts NULL: the whole value */
  m->alts = malloc(2 * sizeof(uint32_t) * nalts);
  if (m->alts == NULL) return -1;
  uint32_t k = 0, start = 0;
  for (uint32_t i = 0; i <= m->value_len; i++) {
    if (i == m->value_len || m->value[i] == '|') {
      m->alts[2 * k] = start;
      m->alts[2 * k + 1] = i - start;
      k++;
      start = i + 1;
    }
  }
  m->nalts = nalts;
  if (nalts > MAX_LITSET_SCAN) qsort_r(m->alts, nalts, 2 * sizeof(uint32_t), alt_cmp, m->value);
  return 1;
}

/* Compiles m->value (RE2 syntax). On a syntax error returns RC_EPARSE with *err_off the byte
 * offset in value and the reason in msg. */
static int compile_regex(rc_matcher_t *m, unsigned flags, size_t *err_off, char *msg, size_t mcap) {
  tr_t t = {.s = m->value, .n = m->value_len};
  int rc = translate(&t);
  if (rc < 0) {
    free(t.out);
    free(t.map);
    free(t.st);
    free(t.pfx);
    if (t.oom) return RC_ENOMEM;
    *err_off = t.err_off;
    snprintf(msg, mcap, "invalid regular expression: %s", t.err);
    return RC_EPARSE;
  }
  free(t.st);
  if (t.pstate >= 0 && t.plen > 0) {
    m->prefix = t.pfx;
    m->prefix_len = (uint32_t)t.plen;
    t.pfx = NULL;
  }
  free(t.pfx);
  pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
  if (cc == NULL) {
    free(t.out);
    free(t.map);
    return RC_ENOMEM;
  }
  pcre2_set_newline(cc, PCRE2_NEWLINE_LF); /* (?-s). and (?m)^$ know only \n, as in RE2 */
  pcre2_set_parens_nest_limit(cc, 1000);   /* RE2's maxHeight; PCRE2's default is 250 */
  int ec;
  PCRE2_SIZE eoff;
  /* ANCHORED+ENDANCHORED: the whole value must match (Prometheus: "^(?s:" re ")$").
   * DOTALL: Go compiles with syntax.DotNL. DOLLAR_ENDONLY: RE2's $ is end of text.
   * ALT_CIRCUMFLEX: RE2's (?m)^ also matches after a final newline.
   * MATCH_INVALID_UTF: a malformed subject never crashes or errors, it just fails to match.
   * NEVER_UCP: \d \w \b stay ASCII, as in RE2 (the translator spells classes out anyway). */
  uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOTALL | PCRE2_DOLLAR_ENDONLY |
                  PCRE2_ALT_CIRCUMFLEX | PCRE2_ANCHORED | PCRE2_ENDANCHORED |
                  PCRE2_NEVER_BACKSLASH_C | PCRE2_NEVER_UCP;
  pcre2_code *code = pcre2_compile((PCRE2_SPTR)t.out, t.olen, opts, &ec, &eoff, cc);
  pcre2_compile_context_free(cc);
  if (code == NULL) {
    PCRE2_UCHAR emsg[120];
    if (pcre2_get_error_message(ec, emsg, sizeof(emsg)) < 0)
      snprintf((char *)emsg, sizeof(emsg), "error");
    if (ec == PCRE2_ERROR_NOMEMORY) {
      free(t.out);
      free(t.map);
      return RC_ENOMEM;
    }
    *err_off = eoff < t.olen ? t.map[eoff] : m->value_len;
    snprintf(msg, mcap, "invalid regular expression: %s", (const char *)emsg);
    free(t.out);
    free(t.map);
    return RC_EPARSE;
  }
  free(t.out);
  free(t.map);
  m->re = (struct pcre2_real_code_8 *)code;
  /* JIT when the library has one and the platform lets it map executable memory; otherwise
   * the interpreter gives the same answers, just slower. */
  if (!(flags & RC_MATCHER_NO_JIT) && pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0) m->jit = 1;
  return 0;
}

/* rc_matcher_init with the error position as a byte offset into value (the parser maps it
 * back to its input). */
static int matcher_init(rc_matcher_t *m, rc_match_op_t op, const char *name, size_t name_len,
                        const char *value, size_t value_len, unsigned flags, size_t *err_off,
                        char *msg, size_t mcap) {
  memset(m, 0, sizeof(*m));
  *err_off = 0;
  msg[0] = '\0';
  if ((unsigned)op > RC_MATCH_NRE || name_len >= UINT32_MAX || value_len >= UINT32_MAX ||
      (name == NULL && name_len) || (value == NULL && value_len)) {
    snprintf(msg, mcap, "invalid matcher");
    return RC_EINVAL;
  }
  int is_re = op == RC_MATCH_RE || op == RC_MATCH_NRE;
  if (is_re && value_len > RC_MATCHER_MAX_REGEX) {
    snprintf(msg, mcap, "regular expression longer than %u bytes", RC_MATCHER_MAX_REGEX);
    return RC_EINVAL;
  }
  m->op = op;
  m->name = malloc(name_len + 1);
  m->value = malloc(value_len + 1);
  if (m->name == NULL || m->value == NULL) {
    rc_matcher_close(m);
    return RC_ENOMEM;
  }
  if (name_len) memcpy(m->name, name, name_len);
  if (value_len) memcpy(m->value, value, value_len);
  m->name[name_len] = m->value[value_len] = '\0';
  m->name_len = (uint32_t)name_len;
  m->value_len = (uint32_t)value_len;
  m->kind = K_LITSET;
  m->nalts = 1;
  if (is_re) {
    if (!rc_utf8_valid(m->value, value_len)) {
      size_t i = 0;
      while (i < value_len) {
        size_t k = utf8_seq_len(m->value + i, value_len - i);
        if (k == 0) break;
        i += k;
      }
      *err_off = i;
      snprintf(msg, mcap, "invalid regular expression: invalid UTF-8");
      rc_matcher_close(m);
      return RC_EPARSE;
    }
    /* A plain literal or alternation of literals (no RE2 metacharacter at all) is always a
     * valid RE2 pattern and needs no regex engine: Prometheus does not even parse it
     * (optimizeAlternatingLiterals). This also keeps long host lists within reach: Debian's
     * PCRE2 caps a compiled pattern at 64 KiB. */
    int lit = literal_set(m);
    if (lit < 0) {
      rc_matcher_close(m);
      return RC_ENOMEM;
    }
    if (lit) {
      m->kind = K_LITSET;
    } else {
      m->nalts = 0;
      int rc = compile_regex(m, flags, err_off, msg, mcap);
      if (rc != 0) {
        rc_matcher_close(m);
        return rc;
      }
      if (value_len == 2 && (memcmp(m->value, ".*", 2) == 0 || memcmp(m->value, ".+", 2) == 0)) {
        /* The two most common patterns: answered without PCRE2 (valid UTF-8 values). */
        m->kind = m->value[1] == '*' ? K_ANY : K_NONEMPTY;
        pcre2_code_free((pcre2_code *)m->re);
        m->re = NULL;
        m->jit = 0;
        free(m->prefix);
        m->prefix = NULL;
        m->prefix_len = 0;
      } else {
        m->kind = K_PCRE;
      }
    }
  }
  int r = value_test(m, NULL, "", 0);
  m->empty_matches = (uint8_t)(r < 0 ? 0 : (op == RC_MATCH_EQ || op == RC_MATCH_RE) ? r : !r);
  return 0;
}

int rc_matcher_init(rc_matcher_t *m, rc_match_op_t op, const char *name, size_t name_len,
                    const char *value, size_t value_len, unsigned flags, rc_err_t *err) {
  size_t off;
  char msg[sizeof(((rc_err_t *)0)->msg)];
  int rc = matcher_init(m, op, name, name_len, value, value_len, flags, &off, msg, sizeof(msg));
  if (rc != 0 && err != NULL) {
    rc_err_set(err, rc, "%s", rc == RC_ENOMEM ? rc_strerror(rc) : msg);
    err->line = 0;
    err->col = 0;
    if (rc == RC_EPARSE) {
      set_pos(err, value, value_len, off);
      err->line = 0; /* a column inside the value; lines mean nothing here */
    }
  }
  return rc;
}

uint32_t rc_matcher_literals(const rc_matcher_t *m) {
  if (m->op != RC_MATCH_EQ && m->op != RC_MATCH_RE) return 0;
  if (m->nalts == 0) return 0;
  for (uint32_t i = 0; i < m->nalts; i++) {
    const char *p;
    uint32_t len;
    rc_matcher_literal(m, i, &p, &len);
    if (len == 0) return 0; /* "" would also match a missing label: not a fixed set */
  }
  return m->nalts;
}

void rc_matcher_literal(const rc_matcher_t *m, uint32_t i, const char **p, uint32_t *len) {
  if (m->alts == NULL) {
    *p = m->value;
    *len = m->value_len;
  } else {
    *p = m->value + m->alts[2 * i];
    *len = m->alts[2 * i + 1];
  }
}

/* ---- selectors -------------------------------------------------------------------------- */

rc_selector_t *rc_selector_new(void) { return calloc(1, sizeof(rc_selector_t)); }

void rc_selector_free(rc_selector_t *s) {
  if (s == NULL) return;
  for (uint32_t i = 0; i < s->n; i++) rc_matcher_close(&s->m[i]);
  free(s->m);
  free(s);
}

/* Inserts an initialised matcher after every matcher whose name sorts before or equal to
 * its own, so equal names keep their source order. Takes ownership of *m on success. */
static int selector_insert(rc_selector_t *s, rc_matcher_t *m) {
  if (s->n == s->cap) {
    uint32_t nc = s->cap ? s->cap * 2 : 4;
    rc_matcher_t *nm = realloc(s->m, nc * sizeof(*nm));
    if (nm == NULL) return RC_ENOMEM;
    s->m = nm;
    s->cap = nc;
  }
  uint32_t pos = s->n;
  while (pos > 0 &&
         rc_bytes_cmp(s->m[pos - 1].name, s->m[pos - 1].name_len, m->name, m->name_len) > 0)
    pos--;
  memmove(&s->m[pos + 1], &s->m[pos], (s->n - pos) * sizeof(*m));
  s->m[pos] = *m;
  s->n++;
  return 0;
}

int rc_selector_add(rc_selector_t *s, rc_match_op_t op, const char *name, size_t name_len,
                    const char *value, size_t value_len, unsigned flags, rc_err_t *err) {
  rc_matcher_t m;
  int rc = rc_matcher_init(&m, op, name, name_len, value, value_len, flags, err);
  if (rc != 0) return rc;
  rc = selector_insert(s, &m);
  if (rc != 0) {
    rc_matcher_close(&m);
    rc_err_set(err, rc, "%s", rc_strerror(rc));
  }
  return rc;
}

/* rc_bytes_cmp with the first byte compared inline: label names almost always differ there,
 * and this runs for every (label, matcher) step of every evaluation. */
static inline int name_cmp(const char *a, uint32_t al, const char *b, uint32_t bl) {
  if (al && bl && a[0] != b[0]) return (unsigned char)a[0] < (unsigned char)b[0] ? -1 : 1;
  return rc_bytes_cmp(a, al, b, bl);
}

int rc_selector_matches(const rc_selector_t *s, rc_matcher_scratch_t *scr, const rc_label_t *labels,
                        uint32_t n) {
  /* Cheap matchers (literals, .*, .+, a regex's required prefix) are decided during the walk;
   * the PCRE2 calls wait until every cheap one has passed, since most candidates fail on a
   * literal (job="api", a metric-name prefix) and a regex costs ten times more. */
  enum { DEFER = 8 };
  const rc_matcher_t *dm[DEFER];
  const char *dv[DEFER];
  uint32_t dl[DEFER], nd = 0, j = 0;
  for (uint32_t k = 0; k < s->n; k++) {
    const rc_matcher_t *m = &s->m[k];
    int c = 1;
    /* Both lists are sorted by name, so the label cursor only moves forward. */
    while (j < n && (c = name_cmp(labels[j].name, labels[j].name_len, m->name, m->name_len)) < 0)
      j++;
    if (j >= n || c != 0) {
      if (!m->empty_matches) return 0;
      continue;
    }
    const char *v = labels[j].value;
    uint32_t vl = labels[j].value_len;
    if (m->kind == K_PCRE) {
      if (!prefix_ok(m, v, vl)) {
        if (m->op == RC_MATCH_RE) return 0;
        continue; /* !~ holds: the regex cannot match */
      }
      if (nd < DEFER) {
        dm[nd] = m, dv[nd] = v, dl[nd] = vl, nd++;
        continue;
      }
    }
    if (!rc_matcher_matches(m, scr, v, vl)) return 0;
  }
  for (uint32_t k = 0; k < nd; k++)
    if (!rc_matcher_matches(dm[k], scr, dv[k], dl[k])) return 0;
  return 1;
}

/* ---- parser ----------------------------------------------------------------------------- */
/*
 *   selector  :=  metric_name [ '{' matchers '}' ]  |  '{' matchers '}'
 *   matchers  :=  [ matcher { ',' matcher } [ ',' ] ]
 *   matcher   :=  (label_name | string) op string   |   string        (the metric name)
 *   op        :=  '='  |  '!='  |  '=~'  |  '!~'
 *   metric_name [a-zA-Z_:][a-zA-Z0-9_:]*      label_name [a-zA-Z_][a-zA-Z0-9_]*
 *   string    :=  "..." | '...' (Go escapes, only the opening quote escapable) | `raw`
 * Whitespace (space, tab, CR, LF) and # comments may separate any two tokens
 * (Prometheus promql/parser/lex.go, generated_parser.y).
 */

typedef struct ps {
  const char *t;
  size_t n, i;
  unsigned flags;
  rc_err_t *err;
} ps_t;

__attribute__((format(printf, 3, 4))) static int perr(ps_t *p, size_t off, const char *fmt, ...) {
  if (p->err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    msg_clean(p->err->msg, sizeof(p->err->msg));
    p->err->code = RC_EPARSE;
    set_pos(p->err, p->t, p->n, off);
  }
  return RC_EPARSE;
}

static int oom(ps_t *p) { return rc_err_set(p->err, RC_ENOMEM, "%s", rc_strerror(RC_ENOMEM)); }

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static void skip_ws(ps_t *p) {
  while (p->i < p->n) {
    char c = p->t[p->i];
    if (is_space((unsigned char)c)) {
      p->i++;
    } else if (c == '#') {
      while (p->i < p->n && p->t[p->i] != '\n' && p->t[p->i] != '\r') p->i++;
    } else {
      break;
    }
  }
}

/* What sits at offset off, for "unexpected X" messages. */
static const char *token_desc(ps_t *p, size_t off, char *buf, size_t cap) {
  if (off >= p->n) return "end of input";
  char c = p->t[off];
  if (is_alpha((unsigned char)c) || c == ':') {
    size_t j = off;
    while (j < p->n && j - off < 32 && (is_alnum((unsigned char)p->t[j]) || p->t[j] == ':')) j++;
    snprintf(buf, cap, "identifier \"%.*s\"", (int)(j - off), p->t + off);
    return buf;
  }
  if (c == '"' || c == '\'' || c == '`') return "string";
  if (c == '!' && off + 1 < p->n && (p->t[off + 1] == '=' || p->t[off + 1] == '~')) {
    snprintf(buf, cap, "\"!%c\"", p->t[off + 1]);
    return buf;
  }
  if (c == '=' && off + 1 < p->n && p->t[off + 1] == '~') return "\"=~\"";
  char cb[32];
  snprintf(buf, cap, "%s", char_desc(cb, sizeof(cb), p->t + off, p->n - off));
  return buf;
}

/* Can a token inside braces start with c? Anything else is a lexical error in PromQL
 * ("unexpected character inside braces"), reported as such rather than as a grammar error. */
static int brace_char_ok(char c) {
  return is_alpha((unsigned char)c) || is_space((unsigned char)c) ||
         strchr(",\"'`=!{}#", c) != NULL;
}

/* "unexpected X in label matching, expected Y", or the lexical error when X is no token. */
static int unexpected(ps_t *p, size_t off, const char *expected) {
  char db[96];
  if (off < p->n && (!brace_char_ok(p->t[off]) || p->t[off] == '\0'))
    return perr(p, off, "unexpected character inside braces: %s",
                char_desc(db, sizeof(db), p->t + off, p->n - off));
  return perr(p, off, "unexpected %s in label matching, expected %s",
              token_desc(p, off, db, sizeof(db)), expected);
}

/* Reads a quoted string at p->i into a new buffer (*out, *olen; NUL-terminated). If map is
 * not NULL, (*map)[k] is the input offset output byte k came from. Advances p->i past it. */
static int read_string(ps_t *p, char **out, size_t *olen, uint32_t **map) {
  const char *t = p->t;
  size_t start = p->i, n = p->n;
  char q = t[start];
  size_t end = start + 1;
  /* Find the closing quote first: the output is never longer than the input span. */
  if (q == '`') {
    while (end < n && t[end] != '`') end++;
    if (end >= n) return perr(p, start, "unterminated raw string");
  } else {
    while (end < n && t[end] != q) {
      if (t[end] == '\n') return perr(p, start, "unterminated quoted string");
      if (t[end] == '\\' && end + 1 >= n) return perr(p, end, "escape sequence not terminated");
      end += (t[end] == '\\' && t[end + 1] != '\n') ? 2 : 1;
    }
    if (end >= n) return perr(p, start, "unterminated quoted string");
  }
  size_t cap = end - start;
  char *o = malloc(cap + 1);
  uint32_t *mp = map ? malloc((cap + 1) * sizeof(*mp)) : NULL;
  if (o == NULL || (map && mp == NULL)) {
    free(o);
    free(mp);
    return oom(p);
  }
  size_t k = 0, i = start + 1;
  int rc = 0;
  char cb[32];
  while (i < end) {
    unsigned char c = (unsigned char)t[i];
    size_t at = i;
    if (c >= 0x80) {
      size_t sl = utf8_seq_len(t + i, end - i);
      if (sl == 0) {
        rc = perr(p, i, "invalid UTF-8 rune");
        break;
      }
      for (size_t z = 0; z < sl; z++) {
        if (mp) mp[k] = (uint32_t)at;
        o[k++] = t[i++];
      }
      continue;
    }
    if (c == '\r' && q == '`') { /* Go's Unquote drops CR from raw strings */
      i++;
      continue;
    }
    if (c != '\\' || q == '`') {
      if (mp) mp[k] = (uint32_t)at;
      o[k++] = (char)c;
      i++;
      continue;
    }
    /* Escape sequence (lexEscape in promql/parser/lex.go). The scan above guarantees a
     * character after the backslash before `end`. */
    char e = t[i + 1];
    uint32_t cp = 0;
    int nd = 0, base = 0, is_byte = 0;
    uint32_t maxv = 0;
    i += 2;
    switch (e) {
      case 'a': cp = 7; break;
      case 'b': cp = 8; break;
      case 'f': cp = '\f'; break;
      case 'n': cp = '\n'; break;
      case 'r': cp = '\r'; break;
      case 't': cp = '\t'; break;
      case 'v': cp = 0x0B; break;
      case '\\': cp = '\\'; break;
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7': nd = 2, base = 8, maxv = 255, is_byte = 1, cp = (uint32_t)(e - '0'); break;
      case 'x': nd = 2, base = 16, maxv = 255, is_byte = 1; break;
      case 'u': nd = 4, base = 16, maxv = 0x10FFFF; break;
      case 'U': nd = 8, base = 16, maxv = 0x10FFFF; break;
      default:
        if (e == q) {
          cp = (uint32_t)q;
          break;
        }
        rc = perr(p, at, "unknown escape sequence %s",
                  u_desc(cb, sizeof(cb), t + at + 1, n - at - 1));
        break;
    }
    if (rc) break;
    for (; nd > 0; nd--, i++) {
      int d = i < end ? hexval((unsigned char)t[i]) : -1;
      if (d < 0 || d >= base) { /* i <= end: at worst this is the closing quote */
        rc = perr(p, i, "illegal character %s in escape sequence",
                  u_desc(cb, sizeof(cb), t + i, n - i));
        break;
      }
      cp = cp * (uint32_t)base + (uint32_t)d;
    }
    if (rc) break;
    if (base && (cp > maxv || (cp >= 0xD800 && cp < 0xE000))) {
      rc = perr(p, at, "escape sequence is an invalid Unicode code point");
      break;
    }
    if (is_byte) { /* \x and octal give a byte, not a code point (Go string semantics) */
      if (mp) mp[k] = (uint32_t)at;
      o[k++] = (char)cp;
    } else {
      char u[4];
      size_t ul = utf8_encode(cp, u);
      for (size_t z = 0; z < ul; z++) {
        if (mp) mp[k] = (uint32_t)at;
        o[k++] = u[z];
      }
    }
  }
  if (rc) {
    free(o);
    free(mp);
    return rc;
  }
  o[k] = '\0';
  if (mp) mp[k] = (uint32_t)end; /* one past the last byte: the closing quote */
  *out = o;
  *olen = k;
  if (map) *map = mp;
  p->i = end + 1;
  return 0;
}

static int has_name_matcher(const rc_selector_t *s, uint32_t *idx) {
  for (uint32_t k = 0; k < s->n; k++)
    if (s->m[k].name_len == 8 && memcmp(s->m[k].name, "__name__", 8) == 0) {
      *idx = k;
      return 1;
    }
  return 0;
}

/* Adds a matcher parsed from the input; regex errors are reported inside the value string. */
static int add_parsed(ps_t *p, rc_selector_t *s, rc_match_op_t op, const char *name, size_t nlen,
                      const char *val, size_t vlen, const uint32_t *vmap) {
  rc_matcher_t m;
  size_t off;
  char msg[sizeof(((rc_err_t *)0)->msg)];
  int rc = matcher_init(&m, op, name, nlen, val, vlen, p->flags, &off, msg, sizeof(msg));
  if (rc == RC_ENOMEM) return oom(p);
  if (rc != 0) return perr(p, vmap ? vmap[off] : p->i, "%s", msg);
  if (selector_insert(s, &m) != 0) {
    rc_matcher_close(&m);
    return oom(p);
  }
  return 0;
}

static int parse_matcher(ps_t *p, rc_selector_t *s) {
  const char *t = p->t;
  size_t name_off = p->i;
  char *name = NULL, *val = NULL;
  size_t nlen = 0, vlen = 0;
  uint32_t *vmap = NULL;
  int quoted = 0, rc;
  char db[96];
  char c = t[p->i];
  if (is_alpha((unsigned char)c)) {
    size_t j = p->i;
    while (j < p->n && is_alnum((unsigned char)t[j])) j++;
    nlen = j - p->i;
    name = malloc(nlen + 1);
    if (name == NULL) return oom(p);
    memcpy(name, t + p->i, nlen);
    name[nlen] = '\0';
    p->i = j;
  } else if (c == '"' || c == '\'' || c == '`') {
    if ((rc = read_string(p, &name, &nlen, NULL)) != 0) return rc;
    quoted = 1;
    if (nlen == 0) {
      free(name);
      return perr(p, name_off, "empty label name");
    }
    if (!rc_utf8_valid(name, nlen)) {
      free(name);
      return perr(p, name_off, "label name is not valid UTF-8");
    }
  } else if (c == '{') {
    return perr(p, p->i, "unexpected left brace '{' inside braces");
  } else {
    return unexpected(p, p->i, "identifier or \"}\"");
  }
  skip_ws(p);
  rc_match_op_t op;
  size_t op_off = p->i;
  if (p->i < p->n && t[p->i] == '=') {
    op = (p->i + 1 < p->n && t[p->i + 1] == '~') ? RC_MATCH_RE : RC_MATCH_EQ;
    p->i += op == RC_MATCH_RE ? 2 : 1;
  } else if (p->i < p->n && t[p->i] == '!') {
    char nx = p->i + 1 < p->n ? t[p->i + 1] : 0;
    if (nx != '=' && nx != '~') {
      free(name);
      return perr(p, p->i, "unexpected character after '!' inside braces: %s",
                  char_desc(db, sizeof(db), t + p->i + 1, p->n - p->i - 1));
    }
    op = nx == '=' ? RC_MATCH_NE : RC_MATCH_NRE;
    p->i += 2;
  } else if (quoted) {
    /* A lone string is the metric name (Prometheus 3: {"my.metric", ...}). */
    rc = add_parsed(p, s, RC_MATCH_EQ, "__name__", 8, name, nlen, NULL);
    free(name);
    return rc;
  } else {
    free(name);
    return unexpected(p, op_off, "label matching operator");
  }
  skip_ws(p);
  size_t val_off = p->i;
  if (p->i >= p->n || (t[p->i] != '"' && t[p->i] != '\'' && t[p->i] != '`')) {
    free(name);
    return unexpected(p, val_off, "string");
  }
  if ((rc = read_string(p, &val, &vlen, &vmap)) != 0) {
    free(name);
    return rc;
  }
  rc = add_parsed(p, s, op, name, nlen, val, vlen, vmap);
  free(name);
  free(val);
  free(vmap);
  return rc;
}

static int parse_braces_list(ps_t *p, rc_selector_t *s) {
  p->i++; /* '{' */
  for (;;) {
    skip_ws(p);
    if (p->i >= p->n) return perr(p, p->i, "unexpected end of input inside braces");
    if (p->t[p->i] == '}') break; /* empty list, or after a trailing comma */
    int rc = parse_matcher(p, s);
    if (rc != 0) return rc;
    skip_ws(p);
    if (p->i >= p->n) return perr(p, p->i, "unexpected end of input inside braces");
    if (p->t[p->i] == ',') {
      p->i++;
      skip_ws(p);
      if (p->i < p->n && p->t[p->i] == ',')
        return perr(p, p->i, "unexpected \",\" in label matching, expected identifier or \"}\"");
      continue;
    }
    if (p->t[p->i] == '}') break;
    return unexpected(p, p->i, "\",\" or \"}\"");
  }
  p->i++; /* '}' */
  return 0;
}

int rc_selector_parse_at(const char *text, size_t len, size_t start, size_t *end, unsigned flags,
                         rc_selector_t **out, rc_err_t *err) {
  ps_t p = {.t = text, .n = len, .i = start, .flags = flags, .err = err};
  char db[96];
  *out = NULL;
  if (text == NULL && len) return rc_err_set(err, RC_EINVAL, "no input");
  if (start > len) return rc_err_set(err, RC_EINVAL, "start past the end of the input");
  rc_selector_t *s = rc_selector_new();
  if (s == NULL) return oom(&p);
  skip_ws(&p);
  size_t sel_off = p.i, metric_off = 0, metric_len = 0;
  int rc = 0;
  if (p.i < p.n && (is_alpha((unsigned char)text[p.i]) || text[p.i] == ':')) {
    metric_off = p.i;
    while (p.i < p.n && (is_alnum((unsigned char)text[p.i]) || text[p.i] == ':')) p.i++;
    metric_len = p.i - metric_off;
  }
  size_t after_name = p.i;
  skip_ws(&p);
  if (p.i < p.n && text[p.i] == '{') {
    rc = parse_braces_list(&p, s);
  } else if (metric_len == 0) {
    rc = perr(&p, p.i, "unexpected %s, expected a metric name or \"{\"",
              token_desc(&p, p.i, db, sizeof(db)));
  } else {
    p.i = after_name; /* stop right after the name: what follows is the caller's */
  }
  if (rc == 0 && metric_len > 0) {
    uint32_t k;
    if (has_name_matcher(s, &k)) {
      rc = perr(&p, metric_off, "metric name must not be set twice: \"%.*s\" or \"%.*s\"",
                (int)(metric_len > 40 ? 40 : metric_len), text + metric_off,
                (int)(s->m[k].value_len > 40 ? 40 : s->m[k].value_len), s->m[k].value);
    } else {
      rc = add_parsed(&p, s, RC_MATCH_EQ, "__name__", 8, text + metric_off, metric_len, NULL);
    }
  }
  if (rc == 0 && !(flags & RC_SELECTOR_ALLOW_EMPTY)) {
    /* PromQL refuses selectors that would match every series by accident (e.g. {a=""}). */
    int non_empty = 0;
    for (uint32_t k = 0; k < s->n; k++) non_empty |= !s->m[k].empty_matches;
    if (!non_empty)
      rc = perr(&p, sel_off, "vector selector must contain at least one non-empty matcher");
  }
  if (rc != 0) {
    rc_selector_free(s);
    return rc;
  }
  if (end != NULL) *end = p.i;
  *out = s;
  return 0;
}

int rc_selector_parse(const char *text, size_t len, unsigned flags, rc_selector_t **out,
                      rc_err_t *err) {
  size_t end;
  int rc = rc_selector_parse_at(text, len, 0, &end, flags, out, err);
  if (rc != 0) return rc;
  ps_t p = {.t = text, .n = len, .i = end, .err = err};
  skip_ws(&p);
  if (p.i < len) {
    char db[96];
    rc_selector_free(*out);
    *out = NULL;
    return perr(&p, p.i, "unexpected %s after the selector", token_desc(&p, p.i, db, sizeof(db)));
  }
  return 0;
}

/* ---- printer ---------------------------------------------------------------------------- */

/* wbuf_t, wbuf_put(), wbuf_puts(): wbuf.h */

/* A double-quoted PromQL string whose unquoting gives back exactly s[0..n). */
static void put_quoted(wbuf_t *w, const char *s, size_t n) {
  wbuf_put(w, "\"", 1);
  for (size_t i = 0; i < n;) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x80) {
      size_t k = utf8_seq_len(s + i, n - i);
      if (k > 0) {
        wbuf_put(w, s + i, k);
        i += k;
        continue;
      }
    }
    char e[8];
    const char *r = NULL;
    switch (c) {
      case '"': r = "\\\""; break;
      case '\\': r = "\\\\"; break;
      case '\n': r = "\\n"; break;
      case '\t': r = "\\t"; break;
      case '\r': r = "\\r"; break;
      case 7: r = "\\a"; break;
      case 8: r = "\\b"; break;
      case '\f': r = "\\f"; break;
      case 0x0B: r = "\\v"; break;
      default:
        if (c < 0x20 || c >= 0x7F) {
          snprintf(e, sizeof(e), "\\x%02x", c);
          r = e;
        }
    }
    if (r != NULL)
      wbuf_puts(w, r);
    else
      wbuf_put(w, (const char *)&c, 1);
    i++;
  }
  wbuf_put(w, "\"", 1);
}

size_t rc_selector_format(const rc_selector_t *s, char *buf, size_t cap) {
  wbuf_t w = {.b = buf, .cap = cap};
  /* PromQL's usual form name{...} when the name is fixed by one plain = matcher. */
  uint32_t names = 0, name_k = 0;
  for (uint32_t k = 0; k < s->n; k++)
    if (s->m[k].name_len == 8 && memcmp(s->m[k].name, "__name__", 8) == 0) names++, name_k = k;
  int outside = names == 1 && s->m[name_k].op == RC_MATCH_EQ &&
                rc_legacy_metric_name(s->m[name_k].value, s->m[name_k].value_len);
  if (outside) wbuf_put(&w, s->m[name_k].value, s->m[name_k].value_len);
  if (!outside || s->n > 1) {
    wbuf_put(&w, "{", 1);
    int first = 1;
    for (uint32_t k = 0; k < s->n; k++) {
      const rc_matcher_t *m = &s->m[k];
      if (outside && k == name_k) continue;
      if (!first) wbuf_put(&w, ",", 1);
      first = 0;
      if (rc_legacy_label_name(m->name, m->name_len))
        wbuf_put(&w, m->name, m->name_len);
      else
        put_quoted(&w, m->name, m->name_len);
      wbuf_puts(&w, rc_match_op_str(m->op));
      put_quoted(&w, m->value, m->value_len);
    }
    wbuf_put(&w, "}", 1);
  }
  if (cap > 0) buf[w.len < cap ? w.len : cap - 1] = '\0';
  return w.len;
}
