/* promql.c: the PromQL subset of promql.h — a hand-written lexer, a precedence-climbing
 * parser that type-checks as it builds the tree, and the canonical printer.
 *
 * What lives here: tokens (numbers as Go's strconv accepts them for PromQL, durations as
 * model.ParseDuration, identifiers and case-insensitive keywords), the grammar and PromQL's
 * type rules for the subset, and rc_pq_format(). Selectors are NOT parsed here: every
 * `metric{...}` goes through rc_selector_parse_at() (selector.c), so matcher syntax, string
 * escapes and regex checks exist exactly once. Evaluation is not here either (eval.c).
 *
 * Facts follow Prometheus promql/parser (lex.go, generated_parser.y, parse.go, printer.go);
 * the code is ours. Deliberate differences from PromQL, besides what the subset refuses:
 *   - quantile_over_time's φ must be a number literal (a sign and parentheses allowed): the
 *     window evaluator takes it as a constant. PromQL allows any scalar expression.
 *   - on()/ignoring() with a scalar operand is refused even when the label list is empty
 *     (PromQL silently drops an empty one).
 *   - a range selector may not be the whole expression (it cannot be a rule's value).
 *   - a sign folds into a number literal even through parentheses: -(2) is the number -2.
 *   - quoted (UTF-8) label names in by/without/on/ignoring lists are refused.
 * Accepted as Prometheus 3 does: foo[300] (a range in seconds), 1_000, and keywords used as
 * metric names where the grammar allows it (`sum`, `offset{a="b"}`).
 *
 * Ownership: the parser owns every node it allocates until rc_pq_parse() hands the whole tree
 * over in an rc_pq_expr_t; every error path frees what it built. Recursion (parsing, freeing,
 * printing) is bounded by RC_PQ_MAX_DEPTH, checked on both the parser's nesting and the height
 * of the tree, so hostile input cannot exhaust the stack.
 */
#include "promql.h"
#include "wbuf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tokens ----------------------------------------------------------------------------- */

enum {
  T_EOF, T_ERR, T_NUM, T_DUR, T_IDENT, T_METRIC_IDENT, T_KW, T_STRING,
  T_LPAREN, T_RPAREN, T_LBRACE, T_RBRACE, T_LBRACKET, T_RBRACKET, T_COMMA, T_COLON, T_AT,
  T_EQL, /* a lone '=': only meaningful inside braces, which selector.c reads */
  T_ADD, T_SUB, T_MUL, T_DIV, T_MOD, T_POW, T_EQLC, T_NEQ, T_GTR, T_LSS, T_GTE, T_LTE,
};

/* Keywords, matched case-insensitively as PromQL's lexer does (lex.go `key`). */
enum {
  KW_NONE,
  /* aggregations */
  KW_SUM, KW_AVG, KW_MIN, KW_MAX, KW_COUNT, KW_GROUP, KW_STDDEV, KW_STDVAR, KW_TOPK, KW_BOTTOMK,
  KW_COUNT_VALUES, KW_QUANTILE, KW_LIMITK, KW_LIMIT_RATIO,
  /* operators */
  KW_AND, KW_OR, KW_UNLESS, KW_ATAN2,
  /* modifiers */
  KW_OFFSET, KW_BY, KW_WITHOUT, KW_ON, KW_IGNORING, KW_GROUP_LEFT, KW_GROUP_RIGHT, KW_BOOL,
};

static const char *const kw_names[] = {
    [KW_SUM] = "sum", [KW_AVG] = "avg", [KW_MIN] = "min", [KW_MAX] = "max",
    [KW_COUNT] = "count", [KW_GROUP] = "group", [KW_STDDEV] = "stddev",
    [KW_STDVAR] = "stdvar", [KW_TOPK] = "topk", [KW_BOTTOMK] = "bottomk",
    [KW_COUNT_VALUES] = "count_values", [KW_QUANTILE] = "quantile", [KW_LIMITK] = "limitk",
    [KW_LIMIT_RATIO] = "limit_ratio", [KW_AND] = "and", [KW_OR] = "or",
    [KW_UNLESS] = "unless", [KW_ATAN2] = "atan2", [KW_OFFSET] = "offset", [KW_BY] = "by",
    [KW_WITHOUT] = "without", [KW_ON] = "on", [KW_IGNORING] = "ignoring",
    [KW_GROUP_LEFT] = "group_left", [KW_GROUP_RIGHT] = "group_right", [KW_BOOL] = "bool",
};

static int is_aggregation_kw(int kw) { return kw >= KW_SUM && kw <= KW_LIMIT_RATIO; }

/* Keywords PromQL's grammar also takes as a metric name (generated_parser.y,
 * metric_identifier): `sum` alone, or `offset{job="a"}`, is a selector. The others (bool, on,
 * ignoring, group_left, group_right, atan2) can never start an expression. */
static int kw_is_metric_name(int kw) {
  return is_aggregation_kw(kw) || kw == KW_AND || kw == KW_OR || kw == KW_UNLESS ||
         kw == KW_OFFSET || kw == KW_BY || kw == KW_WITHOUT;
}

typedef struct tok {
  int kind, kw;
  size_t off, len;
  int line, col; /* of off: nodes take their position from tokens, computed once */
  double num;  /* T_NUM */
  int64_t ms;  /* T_DUR */
} tok_t;

typedef struct ps {
  const char *t;
  size_t n;
  unsigned flags;
  rc_err_t *err;
  tok_t cur;
  int depth;
  int in_bracket;   /* ':' is a token (subquery syntax) rather than the start of a name */
  char lexmsg[100]; /* the reason of the last T_ERR token */
  size_t pc_off;    /* position cache: tokens are lexed in increasing order */
  int pc_line, pc_col;
} ps_t;

static int is_space(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_alnum(int c) { return is_alpha(c) || is_digit(c); }
static int is_xdigit(int c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 1-based line and column of byte offset off, counting characters (UTF-8 lead bytes) as
 * selector.c does. */
static void pos_at(ps_t *p, size_t off, int *line, int *col) {
  if (off > p->n) off = p->n;
  if (off < p->pc_off) {
    p->pc_off = 0;
    p->pc_line = 1;
    p->pc_col = 1;
  }
  for (size_t i = p->pc_off; i < off; i++) {
    unsigned char c = (unsigned char)p->t[i];
    if (c == '\n') {
      p->pc_line++;
      p->pc_col = 1;
    } else if ((c & 0xC0) != 0x80) {
      p->pc_col++;
    }
  }
  p->pc_off = off;
  *line = p->pc_line;
  *col = p->pc_col;
}

__attribute__((format(printf, 4, 5))) static int perr(ps_t *p, int code, size_t off,
                                                      const char *fmt, ...) {
  if (p->err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
    va_end(ap);
    /* Messages quote only ASCII pieces of the input, but keep them one printable line. */
    for (char *m = p->err->msg; *m; m++)
      if ((unsigned char)*m < 0x20 || (unsigned char)*m >= 0x7F) *m = '?';
    p->err->code = code;
    pos_at(p, off, &p->err->line, &p->err->col);
  }
  return code;
}

static int oom(ps_t *p) {
  if (p->err != NULL) p->err->line = p->err->col = 0;
  return rc_err_set(p->err, RC_ENOMEM, "%s", rc_strerror(RC_ENOMEM));
}

/* ---- lexer ------------------------------------------------------------------------------ */

static int lex_fail(ps_t *p, tok_t *t, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int lex_fail(ps_t *p, tok_t *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->lexmsg, sizeof(p->lexmsg), fmt, ap);
  va_end(ap);
  t->kind = T_ERR;
  return T_ERR;
}

/* A character for messages: 'c' when printable ASCII, else its byte value. */
static const char *char_desc(char *buf, size_t cap, const char *s, size_t n) {
  if (n == 0) return "end of input";
  unsigned char c = (unsigned char)s[0];
  if (c >= 0x20 && c < 0x7F)
    snprintf(buf, cap, "'%c'", c);
  else
    snprintf(buf, cap, "byte 0x%02x", c);
  return buf;
}

/* A run of digits in which '_' may separate two digits (Go's literal syntax, which
 * strconv.ParseInt/ParseFloat accept and recent PromQL lexes). Returns the end offset. */
static size_t digit_run(const char *s, size_t n, size_t i, int hex) {
  while (i < n) {
    int c = (unsigned char)s[i];
    if (hex ? is_xdigit(c) : is_digit(c)) {
      i++;
    } else if (c == '_' && i > 0 && (hex ? is_xdigit((unsigned char)s[i - 1])
                                        : is_digit((unsigned char)s[i - 1])) &&
               i + 1 < n && (hex ? is_xdigit((unsigned char)s[i + 1])
                                 : is_digit((unsigned char)s[i + 1]))) {
      i++;
    } else {
      break;
    }
  }
  return i;
}

/* The value of a scanned number literal, as PromQL's parser computes it: strconv.ParseInt
 * with base 0 first (so 0x1f is hex and a leading 0 means octal: 010 == 8), then
 * strconv.ParseFloat. Returns 0, or -1 when neither accepts it (out of range). */
static int number_value(const char *s, size_t len, double *out) {
  char small[128], *b = small;
  if (len >= sizeof(small) && (b = malloc(len + 1)) == NULL) return -2;
  size_t k = 0;
  for (size_t i = 0; i < len; i++)
    if (s[i] != '_') b[k++] = s[i];
  b[k] = '\0';
  int rc = 0;
  if (k > 2 && b[0] == '0' && (b[1] | 0x20) == 'x') {
    /* ParseInt only: Go's ParseFloat wants a 'p' exponent for hex, which PromQL cannot lex. */
    uint64_t v = 0;
    for (size_t i = 2; i < k && rc == 0; i++) {
      int c = (unsigned char)b[i];
      int d = is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10;
      if (v > ((uint64_t)INT64_MAX - (uint64_t)d) / 16) rc = -1;
      v = v * 16 + (uint64_t)d;
    }
    *out = (double)v;
    goto done;
  }
  int octal = k > 1 && b[0] == '0';
  for (size_t i = 0; i < k && octal; i++) octal = b[i] >= '0' && b[i] <= '7';
  if (octal) {
    uint64_t v = 0;
    int fits = 1;
    for (size_t i = 1; i < k && fits; i++) {
      if (v > ((uint64_t)INT64_MAX - (uint64_t)(b[i] - '0')) / 8) fits = 0;
      v = v * 8 + (uint64_t)(b[i] - '0');
    }
    if (fits) {
      *out = (double)v;
      goto done;
    }
    /* ParseInt overflowed: Go falls back to ParseFloat, which reads the digits as decimal. */
  }
  errno = 0;
  *out = strtod(b, NULL);
  if (errno == ERANGE && isinf(*out)) rc = -1; /* Go: ErrRange; underflow to 0 is accepted */
done:
  if (b != small) free(b);
  return rc;
}

/* Scans a number literal at off. Returns its end, or 0 if the text there is not a complete
 * number (the caller then tries a duration). */
static size_t scan_number(const char *s, size_t n, size_t off) {
  size_t i = off;
  if (s[i] == '0' && i + 1 < n && (s[i + 1] | 0x20) == 'x') {
    i += 2;
    if (i < n && s[i] == '_') i++; /* 0x_1f: Go allows '_' after the base prefix */
    if (i >= n || !is_xdigit((unsigned char)s[i])) return 0;
    i = digit_run(s, n, i, 1);
  } else {
    size_t m = digit_run(s, n, i, 0);
    int digits = m > i;
    i = m;
    if (i < n && s[i] == '.') {
      i++;
      m = digit_run(s, n, i, 0);
      digits |= m > i;
      i = m;
    }
    if (!digits) return 0;
    if (i < n && (s[i] | 0x20) == 'e') {
      i++;
      if (i < n && (s[i] == '+' || s[i] == '-')) i++;
      if (i >= n || !is_digit((unsigned char)s[i])) return 0;
      i = digit_run(s, n, i, 0);
    }
  }
  if (i < n && is_alnum((unsigned char)s[i])) return 0;
  return i;
}

/* A duration as Prometheus' model.ParseDuration reads it: one or more <digits><unit> groups,
 * units y w d h m s ms each at most once and in that order. Returns its end offset, or 0; on
 * success *ms is the value, and *overflow is set when it exceeds what Go's time.Duration holds
 * (about 292 years, the "duration out of range" error). */
static size_t scan_duration(const char *s, size_t n, size_t off, int64_t *ms, int *overflow) {
  static const int64_t unit_ms[] = {31536000000, 604800000, 86400000, 3600000, 60000, 1000, 1};
  const int64_t max_ms = INT64_MAX / 1000000; /* the limit of a nanosecond int64 */
  size_t i = off;
  int last = -1;
  int64_t total = 0;
  *overflow = 0;
  while (i < n && is_digit((unsigned char)s[i])) {
    int64_t v = 0;
    while (i < n && is_digit((unsigned char)s[i])) {
      if (v > (INT64_MAX - 9) / 10) *overflow = 1;
      else v = v * 10 + (s[i] - '0');
      i++;
    }
    if (i >= n) return 0;
    int u;
    switch (s[i]) {
      case 'y': u = 0; break;
      case 'w': u = 1; break;
      case 'd': u = 2; break;
      case 'h': u = 3; break;
      case 'm': u = (i + 1 < n && s[i + 1] == 's') ? 6 : 4; break;
      case 's': u = 5; break;
      default: return 0;
    }
    i += u == 6 ? 2 : 1;
    if (u <= last) return 0;
    last = u;
    if (v > max_ms / unit_ms[u]) *overflow = 1;
    else total += v * unit_ms[u];
    if (total > max_ms) *overflow = 1;
  }
  if (last < 0 || (i < n && is_alnum((unsigned char)s[i]))) return 0;
  *ms = total;
  return i;
}

/* Lexes the token at or after off (whitespace and # comments skipped) into *t. A lexical
 * error becomes a T_ERR token with its reason in p->lexmsg, reported only when the parser
 * actually reaches it (a look-ahead may pass over it). */
static int lex(ps_t *p, size_t off, tok_t *t) {
  const char *s = p->t;
  size_t n = p->n;
  for (;;) {
    if (off < n && is_space((unsigned char)s[off])) {
      off++;
    } else if (off < n && s[off] == '#') {
      while (off < n && s[off] != '\n' && s[off] != '\r') off++;
    } else {
      break;
    }
  }
  memset(t, 0, sizeof(*t));
  t->off = off;
  t->len = 1;
  pos_at(p, off, &t->line, &t->col);
  if (off >= n) {
    t->len = 0;
    return t->kind = T_EOF;
  }
  char c = s[off];
  char nx = off + 1 < n ? s[off + 1] : '\0';
  char db[32];
  switch (c) {
    case '(': return t->kind = T_LPAREN;
    case ')': return t->kind = T_RPAREN;
    case '{': return t->kind = T_LBRACE;
    case '}': return t->kind = T_RBRACE;
    case '[': return t->kind = T_LBRACKET;
    case ']': return t->kind = T_RBRACKET;
    case ',': return t->kind = T_COMMA;
    case '@': return t->kind = T_AT;
    case '+': return t->kind = T_ADD;
    case '-': return t->kind = T_SUB;
    case '*': return t->kind = T_MUL;
    case '/': return t->kind = T_DIV;
    case '%': return t->kind = T_MOD;
    case '^': return t->kind = T_POW;
    case '=':
      if (nx == '=') return t->len = 2, t->kind = T_EQLC;
      if (nx == '~') return lex_fail(p, t, "unexpected character after '=': '~'");
      return t->kind = T_EQL;
    case '!':
      if (nx == '=') return t->len = 2, t->kind = T_NEQ;
      return lex_fail(p, t, "unexpected character after '!': %s",
                      char_desc(db, sizeof(db), s + off + 1, n - off - 1));
    case '<':
      if (nx == '=') return t->len = 2, t->kind = T_LTE;
      return t->kind = T_LSS;
    case '>':
      if (nx == '=') return t->len = 2, t->kind = T_GTE;
      return t->kind = T_GTR;
    case '"':
    case '\'':
    case '`': return t->kind = T_STRING;
    default: break;
  }
  if (c == ':' && p->in_bracket) return t->kind = T_COLON;
  if (is_digit((unsigned char)c) || (c == '.' && is_digit((unsigned char)nx))) {
    size_t end = scan_number(s, n, off);
    if (end > 0) {
      t->len = end - off;
      int rc = number_value(s + off, t->len, &t->num);
      if (rc == -2) return lex_fail(p, t, "out of memory");
      if (rc != 0)
        return lex_fail(p, t, "error parsing number \"%.*s\": value out of range",
                        (int)(t->len > 40 ? 40 : t->len), s + off);
      return t->kind = T_NUM;
    }
    int overflow;
    end = scan_duration(s, n, off, &t->ms, &overflow);
    if (end > 0) {
      t->len = end - off;
      if (overflow)
        return lex_fail(p, t, "duration out of range: \"%.*s\"",
                        (int)(t->len > 40 ? 40 : t->len), s + off);
      return t->kind = T_DUR;
    }
    size_t j = off;
    while (j < n && (is_alnum((unsigned char)s[j]) || s[j] == '.')) j++;
    return lex_fail(p, t, "bad number or duration syntax: \"%.*s\"",
                    (int)(j - off > 40 ? 40 : j - off), s + off);
  }
  if (is_alpha((unsigned char)c) || c == ':') {
    size_t j = off;
    int colon = 0;
    while (j < n && (is_alnum((unsigned char)s[j]) || s[j] == ':')) colon |= s[j++] == ':';
    t->len = j - off;
    char low[16];
    if (t->len < sizeof(low)) {
      for (size_t k = 0; k < t->len; k++) {
        char ch = s[off + k];
        low[k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
      }
      low[t->len] = '\0';
      if (strcmp(low, "inf") == 0) return t->num = INFINITY, t->kind = T_NUM;
      if (strcmp(low, "nan") == 0) return t->num = NAN, t->kind = T_NUM;
      for (int k = KW_SUM; k <= KW_BOOL; k++)
        if (strcmp(low, kw_names[k]) == 0) return t->kw = k, t->kind = T_KW;
    }
    return t->kind = colon ? T_METRIC_IDENT : T_IDENT;
  }
  return lex_fail(p, t, "unexpected character: %s", char_desc(db, sizeof(db), s + off, n - off));
}

static int next(ps_t *p) { return lex(p, p->cur.off + p->cur.len, &p->cur); }

static int peek(ps_t *p, tok_t *t) { return lex(p, p->cur.off + p->cur.len, t); }

/* How a token reads in "unexpected X" messages. */
static const char *tok_desc(ps_t *p, const tok_t *t, char *buf, size_t cap) {
  int l = (int)(t->len > 40 ? 40 : t->len);
  const char *s = p->t + t->off;
  switch (t->kind) {
    case T_EOF: return "end of input";
    case T_NUM: snprintf(buf, cap, "number \"%.*s\"", l, s); return buf;
    case T_DUR: snprintf(buf, cap, "duration \"%.*s\"", l, s); return buf;
    case T_IDENT: snprintf(buf, cap, "identifier \"%.*s\"", l, s); return buf;
    case T_METRIC_IDENT: snprintf(buf, cap, "metric identifier \"%.*s\"", l, s); return buf;
    case T_KW: snprintf(buf, cap, "\"%s\"", kw_names[t->kw]); return buf;
    case T_STRING: return "string";
    default: snprintf(buf, cap, "\"%.*s\"", l, s); return buf;
  }
}

/* "unexpected X<where>, expected Y"; a lexical error at that spot is reported instead. */
static int unexpected(ps_t *p, const char *where, const char *expected) {
  if (p->cur.kind == T_ERR) {
    if (strcmp(p->lexmsg, "out of memory") == 0) return oom(p);
    return perr(p, RC_EPARSE, p->cur.off, "%s", p->lexmsg);
  }
  char db[64];
  return perr(p, RC_EPARSE, p->cur.off, "unexpected %s%s, expected %s",
              tok_desc(p, &p->cur, db, sizeof(db)), where, expected);
}

/* ---- nodes ------------------------------------------------------------------------------ */

static void node_free(rc_pq_node_t *x) {
  if (x == NULL) return;
  node_free(x->args[0]);
  node_free(x->args[1]);
  rc_selector_free(x->sel);
  for (uint32_t i = 0; i < x->nlabels; i++) free(x->labels[i]);
  free(x->labels);
  free(x);
}

/* What a parse function hands back: the node, its height (for the depth limit), and whether
 * it is a range selector — a SELECTOR node with range_ms set, which only a range function may
 * consume; it never survives into a finished tree. */
typedef struct pn {
  rc_pq_node_t *n;
  size_t off; /* where it starts in the text, for messages about it */
  int h;
  int matrix;
} pn_t;

static rc_pq_node_t *node_new(rc_pq_kind_t kind, int line, int col) {
  rc_pq_node_t *x = calloc(1, sizeof(*x));
  if (x == NULL) return NULL;
  x->kind = kind;
  x->type = RC_PQ_VECTOR;
  x->param = NAN;
  x->line = line;
  x->col = col;
  return x;
}

/* Grouping labels of by/without/on/ignoring, owned by the node under construction. */
typedef struct labels {
  char **v;
  uint32_t n, cap;
} labels_t;

static void labels_free(labels_t *l) {
  for (uint32_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

static int depth_error(ps_t *p, size_t off) {
  return perr(p, RC_EPARSE, off, "expression nested too deeply (limit %d levels)",
              RC_PQ_MAX_DEPTH);
}

/* ---- parser ----------------------------------------------------------------------------- */
/*
 *   expr     := unary { binop modifiers expr }       precedence climbing, lowest first:
 *                                                    == != > < >= <=;  + -;  * / %;  ^ (right)
 *   modifiers:= [ "bool" ] [ ("on" | "ignoring") grouping ]
 *   unary    := ("-" | "+") power | primary          (-2 ^ 2 is -(2 ^ 2); -a * b is (-a) * b)
 *   primary  := number | selector [ "[" duration "]" ] | "(" expr ")" | call | aggregation
 *   call     := name "(" [ expr { "," expr } ] ")"
 *   aggregation := aggop [ grouping_kw grouping ] "(" expr ")" [ grouping_kw grouping ]
 *   grouping := "(" [ label { "," label } [ "," ] ] ")"
 * Refused with RC_ENOTSUP where PromQL would accept them: and/or/unless/atan2, group_left/
 * group_right, offset, @, subqueries, strings outside selectors, durations used as numbers,
 * functions and aggregations outside the subset, quoted label names in grouping lists.
 */

static int parse_expr(ps_t *p, int min_prec, pn_t *out);

/* Binary operator at the current token: 0 if none, else its precedence (PromQL's table). */
static int binop(const tok_t *t, rc_pq_op_t *op) {
  switch (t->kind) {
    case T_EQLC: *op = RC_OP_EQ; return 3;
    case T_NEQ: *op = RC_OP_NE; return 3;
    case T_GTR: *op = RC_OP_GT; return 3;
    case T_LSS: *op = RC_OP_LT; return 3;
    case T_GTE: *op = RC_OP_GE; return 3;
    case T_LTE: *op = RC_OP_LE; return 3;
    case T_ADD: *op = RC_OP_ADD; return 4;
    case T_SUB: *op = RC_OP_SUB; return 4;
    case T_MUL: *op = RC_OP_MUL; return 5;
    case T_DIV: *op = RC_OP_DIV; return 5;
    case T_MOD: *op = RC_OP_MOD; return 5;
    case T_POW: *op = RC_OP_POW; return 6;
    default: return 0;
  }
}

#define PREC_POW 6

static int op_prec(rc_pq_op_t op) {
  if (rc_pq_op_is_comparison(op)) return 3;
  if (op == RC_OP_ADD || op == RC_OP_SUB) return 4;
  if (op == RC_OP_POW) return PREC_POW;
  return 5;
}

static const char *type_name(const pn_t *v) {
  if (v->matrix) return "range vector";
  return v->n->type == RC_PQ_SCALAR ? "scalar" : "instant vector";
}

/* "(" [ label { "," label } [","] ] ")": label names may be keywords (by (sum) is fine), as
 * PromQL's maybe_label rule allows, but not names with ':' or numbers. */
static int parse_grouping(ps_t *p, labels_t *l) {
  if (p->cur.kind != T_LPAREN) return unexpected(p, " in grouping opts", "\"(\"");
  next(p);
  while (p->cur.kind != T_RPAREN) {
    if (p->cur.kind == T_STRING)
      return perr(p, RC_ENOTSUP, p->cur.off,
                  "quoted label names in grouping opts are not supported");
    if (p->cur.kind != T_IDENT && p->cur.kind != T_KW)
      return unexpected(p, " in grouping opts", "label");
    if (l->n == l->cap) {
      uint32_t cap = l->cap ? l->cap * 2 : 4;
      char **v = realloc(l->v, cap * sizeof(*v));
      if (v == NULL) return oom(p);
      l->v = v;
      l->cap = cap;
    }
    char *s = malloc(p->cur.len + 1);
    if (s == NULL) return oom(p);
    memcpy(s, p->t + p->cur.off, p->cur.len);
    s[p->cur.len] = '\0';
    l->v[l->n++] = s;
    next(p);
    if (p->cur.kind == T_COMMA) {
      next(p);
    } else if (p->cur.kind != T_RPAREN) {
      return unexpected(p, " in grouping opts", "\",\" or \")\"");
    }
  }
  next(p);
  return 0;
}

/* "(" args ")" of a call or aggregation. Keeps the first two arguments (no supported function
 * takes more) and counts the rest, so the arity message can say how many were given. */
static int parse_args(ps_t *p, const char *what, pn_t args[2], int *nargs) {
  *nargs = 0;
  if (p->cur.kind != T_LPAREN) return unexpected(p, what, "\"(\"");
  next(p);
  if (p->cur.kind == T_RPAREN) {
    next(p);
    return 0;
  }
  for (;;) {
    pn_t a = {0};
    int rc = parse_expr(p, 1, &a);
    if (rc != 0) return rc;
    if (*nargs < 2)
      args[*nargs] = a;
    else
      node_free(a.n);
    (*nargs)++;
    if (p->cur.kind == T_COMMA) {
      next(p);
      if (p->cur.kind == T_RPAREN)
        return perr(p, RC_EPARSE, p->cur.off, "trailing commas not allowed in function call args");
      continue;
    }
    if (p->cur.kind == T_RPAREN) break;
    return unexpected(p, what, "\",\" or \")\"");
  }
  next(p);
  return 0;
}

static void args_free(pn_t args[2], int nargs) {
  for (int i = 0; i < nargs && i < 2; i++) node_free(args[i].n);
}

static const struct {
  const char *name;
  rc_fn_t fn;
} range_fns[] = {
    {"rate", RC_FN_RATE},
    {"increase", RC_FN_INCREASE},
    {"delta", RC_FN_DELTA},
    {"irate", RC_FN_IRATE},
    {"idelta", RC_FN_IDELTA},
    {"count_over_time", RC_FN_COUNT_OT},
    {"sum_over_time", RC_FN_SUM_OT},
    {"avg_over_time", RC_FN_AVG_OT},
    {"min_over_time", RC_FN_MIN_OT},
    {"max_over_time", RC_FN_MAX_OT},
    {"last_over_time", RC_FN_LAST_OT},
    {"present_over_time", RC_FN_PRESENT_OT},
    {"stddev_over_time", RC_FN_STDDEV_OT},
    {"stdvar_over_time", RC_FN_STDVAR_OT},
    {"quantile_over_time", RC_FN_QUANTILE_OT},
    {"resets", RC_FN_RESETS},
    {"changes", RC_FN_CHANGES},
};

/* PromQL functions (2.x and 3.x, experimental ones included) outside the subset: refused as
 * unsupported rather than unknown, so the message tells the user the query is fine PromQL. */
static const char *const other_fns[] = {
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh",
    "ceil", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "day_of_month", "day_of_week",
    "day_of_year", "days_in_month", "deg", "deriv", "double_exponential_smoothing", "exp",
    "first_over_time", "floor", "histogram_avg", "histogram_count", "histogram_fraction",
    "histogram_stddev", "histogram_stdvar", "histogram_sum", "holt_winters", "hour", "info",
    "label_join", "label_replace", "ln", "log10", "log2", "mad_over_time", "minute", "month",
    "pi", "predict_linear", "rad", "round", "scalar", "sgn", "sin", "sinh", "sort",
    "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "tan", "tanh", "time",
    "timestamp", "ts_of_first_over_time", "ts_of_last_over_time", "ts_of_max_over_time",
    "ts_of_min_over_time", "vector", "year",
};

static int name_is(ps_t *p, const tok_t *t, const char *name) {
  return strlen(name) == t->len && memcmp(p->t + t->off, name, t->len) == 0;
}

/* name "(" args ")": the current token is the name and the next one "(". */
static int parse_call(ps_t *p, pn_t *out) {
  tok_t name = p->cur;
  int nl = (int)(name.len > 40 ? 40 : name.len);
  const char *ns = p->t + name.off;
  int fn = -1, hq = name_is(p, &name, "histogram_quantile");
  for (size_t i = 0; i < RC_ARRAY_SIZE(range_fns) && fn < 0; i++)
    if (name_is(p, &name, range_fns[i].name)) fn = (int)range_fns[i].fn;
  if (fn < 0 && !hq) {
    for (size_t i = 0; i < RC_ARRAY_SIZE(other_fns); i++)
      if (name_is(p, &name, other_fns[i]))
        return perr(p, RC_ENOTSUP, name.off,
                    "function \"%s\" is not supported by ripcord's streaming evaluator",
                    other_fns[i]);
    return perr(p, RC_EPARSE, name.off, "unknown function \"%.*s\"", nl, ns);
  }
  next(p);
  pn_t args[2] = {{0}};
  int nargs, rc = parse_args(p, " in function call", args, &nargs);
  if (rc != 0) {
    args_free(args, nargs);
    return rc;
  }
  int want = (hq || fn == RC_FN_QUANTILE_OT) ? 2 : 1;
  if (nargs != want) {
    args_free(args, nargs);
    return perr(p, RC_EPARSE, name.off, "expected %d argument(s) in call to \"%.*s\", got %d",
                want, nl, ns, nargs);
  }
  /* PromQL's type rules (RC_EPARSE) before the subset's narrower ones (RC_ENOTSUP). */
  pn_t *v = &args[want - 1];
  if (want == 2 && (args[0].matrix || args[0].n->type != RC_PQ_SCALAR)) {
    rc = perr(p, RC_EPARSE, args[0].off, "expected type scalar in call to function \"%.*s\", got %s",
              nl, ns, type_name(&args[0]));
  } else if (!hq && !v->matrix) {
    rc = perr(p, RC_EPARSE, v->off,
              "expected type range vector in call to function \"%.*s\", got %s", nl, ns,
              type_name(v));
  } else if (hq && (v->matrix || v->n->type != RC_PQ_VECTOR)) {
    rc = perr(p, RC_EPARSE, v->off,
              "expected type instant vector in call to function \"%.*s\", got %s", nl, ns,
              type_name(v));
  } else if (fn == RC_FN_QUANTILE_OT && args[0].n->kind != RC_PQ_NUMBER) {
    /* PromQL takes any scalar expression; the window evaluator takes φ as a constant. */
    rc = perr(p, RC_ENOTSUP, args[0].off,
              "quantile_over_time's quantile must be a number literal here, not an expression");
  }
  if (rc == 0 && (v->h + 1 > RC_PQ_MAX_DEPTH || (want == 2 && args[0].h + 1 > RC_PQ_MAX_DEPTH)))
    rc = depth_error(p, name.off);
  if (rc != 0) {
    args_free(args, nargs);
    return rc;
  }
  rc_pq_node_t *x;
  if (hq) {
    x = node_new(RC_PQ_HIST_QUANTILE, name.line, name.col);
    if (x == NULL) {
      args_free(args, nargs);
      return oom(p);
    }
    x->args[0] = args[0].n;
    x->args[1] = args[1].n;
    out->h = 1 + (args[0].h > args[1].h ? args[0].h : args[1].h);
  } else {
    /* The range selector node dissolves into the call: its selector and range move over. */
    x = node_new(RC_PQ_RANGE_FN, name.line, name.col);
    if (x == NULL) {
      args_free(args, nargs);
      return oom(p);
    }
    x->fn = (rc_fn_t)fn;
    x->sel = v->n->sel;
    x->range_ms = v->n->range_ms;
    v->n->sel = NULL;
    node_free(v->n);
    if (want == 2) {
      x->param = args[0].n->num;
      node_free(args[0].n);
    }
    out->h = 1;
  }
  out->n = x;
  out->off = name.off;
  out->matrix = 0;
  return 0;
}

/* aggop [by|without (...)] "(" expr ")" [by|without (...)]: the current token is the
 * aggregation keyword, and the next one "(", "by" or "without". */
static int parse_aggregation(ps_t *p, pn_t *out) {
  tok_t kw = p->cur;
  rc_pq_agg_t agg;
  switch (kw.kw) {
    case KW_SUM: agg = RC_AGG_SUM; break;
    case KW_AVG: agg = RC_AGG_AVG; break;
    case KW_MIN: agg = RC_AGG_MIN; break;
    case KW_MAX: agg = RC_AGG_MAX; break;
    case KW_COUNT: agg = RC_AGG_COUNT; break;
    default:
      return perr(p, RC_ENOTSUP, kw.off,
                  "aggregation \"%s\" is not supported by ripcord's streaming evaluator",
                  kw_names[kw.kw]);
  }
  next(p);
  labels_t l = {0};
  int grouped = 0, without = 0, rc = 0;
  pn_t args[2] = {{0}};
  int nargs = 0;
  if (p->cur.kind == T_KW && (p->cur.kw == KW_BY || p->cur.kw == KW_WITHOUT)) {
    grouped = 1;
    without = p->cur.kw == KW_WITHOUT;
    next(p);
    rc = parse_grouping(p, &l);
  }
  if (rc == 0) rc = parse_args(p, " in aggregation", args, &nargs);
  if (rc == 0 && !grouped && p->cur.kind == T_KW &&
      (p->cur.kw == KW_BY || p->cur.kw == KW_WITHOUT)) {
    without = p->cur.kw == KW_WITHOUT;
    next(p);
    rc = parse_grouping(p, &l);
  }
  if (rc == 0 && nargs == 0)
    rc = perr(p, RC_EPARSE, kw.off, "no arguments for aggregate expression provided");
  else if (rc == 0 && nargs > 1)
    rc = perr(p, RC_EPARSE, kw.off,
              "wrong number of arguments for aggregate expression provided, expected 1, got %d",
              nargs);
  else if (rc == 0 && (args[0].matrix || args[0].n->type != RC_PQ_VECTOR))
    rc = perr(p, RC_EPARSE, args[0].off,
              "expected type instant vector in aggregation expression, got %s",
              type_name(&args[0]));
  else if (rc == 0 && args[0].h + 1 > RC_PQ_MAX_DEPTH)
    rc = depth_error(p, kw.off);
  rc_pq_node_t *x = NULL;
  if (rc == 0 && (x = node_new(RC_PQ_AGG, kw.line, kw.col)) == NULL) rc = oom(p);
  if (rc != 0 || x == NULL) {
    args_free(args, nargs);
    labels_free(&l);
    return rc;
  }
  x->agg = agg;
  x->without = (uint8_t)without;
  x->labels = l.v;
  x->nlabels = l.n;
  x->args[0] = args[0].n;
  out->n = x;
  out->off = kw.off;
  out->h = args[0].h + 1;
  out->matrix = 0;
  return 0;
}

/* A selector starting at the current token, read by selector.c. */
static int parse_selector(ps_t *p, pn_t *out) {
  size_t end, start = p->cur.off;
  rc_selector_t *s;
  int rc = rc_selector_parse_at(p->t, p->n, start, &end, p->flags, &s, p->err);
  if (rc != 0) return rc;
  rc_pq_node_t *x = node_new(RC_PQ_SELECTOR, p->cur.line, p->cur.col);
  if (x == NULL) {
    rc_selector_free(s);
    return oom(p);
  }
  x->sel = s;
  out->n = x;
  out->off = start;
  out->h = 1;
  out->matrix = 0;
  /* Resume lexing right after the selector. */
  p->cur.off = end;
  p->cur.len = 0;
  next(p);
  return 0;
}

/* "[" range "]" after an expression. Only a plain selector takes a range; a subquery
 * ("[5m:1m]") is refused whatever precedes it. */
static int parse_range(ps_t *p, pn_t *x, int paren) {
  size_t lb = p->cur.off;
  p->in_bracket = 1;
  next(p);
  int64_t ms = 0;
  size_t doff = p->cur.off;
  int rc = 0;
  if (p->cur.kind == T_DUR) {
    ms = p->cur.ms;
  } else if (p->cur.kind == T_NUM) {
    /* Prometheus 3 reads a plain number here as seconds (foo[300] is foo[5m]). */
    double v = p->cur.num * 1000.0;
    if (!(v > 0))
      rc = perr(p, RC_EPARSE, doff, "duration must be greater than 0");
    else if (!(v <= (double)(INT64_MAX / 1000000)) || v != floor(v))
      rc = perr(p, RC_EPARSE, doff,
                "range must be a whole number of milliseconds within about 292 years");
    else
      ms = (int64_t)v;
  } else if (p->cur.kind == T_COLON) {
    rc = unexpected(p, " in range", "a duration");
  } else {
    rc = unexpected(p, " in subquery or range", "a duration");
  }
  if (rc == 0) {
    next(p);
    if (p->cur.kind == T_COLON)
      rc = perr(p, RC_ENOTSUP, lb, "subqueries are not supported");
    else if (p->cur.kind != T_RBRACKET)
      rc = unexpected(p, " in subquery or range", "\":\" or \"]\"");
    else if (x->n->kind != RC_PQ_SELECTOR || x->matrix || paren)
      rc = perr(p, RC_EPARSE, lb, "ranges only allowed for vector selectors");
    else if (ms <= 0)
      rc = perr(p, RC_EPARSE, doff, "duration must be greater than 0");
  }
  p->in_bracket = 0;
  if (rc != 0) return rc;
  next(p);
  x->n->range_ms = ms;
  x->matrix = 1;
  return 0;
}

static int parse_primary(ps_t *p, pn_t *out) {
  int rc, paren = 0;
  tok_t nt;
  out->n = NULL;
  out->off = p->cur.off;
  out->matrix = 0;
  switch (p->cur.kind) {
    case T_NUM: {
      rc_pq_node_t *x = node_new(RC_PQ_NUMBER, p->cur.line, p->cur.col);
      if (x == NULL) return oom(p);
      x->type = RC_PQ_SCALAR;
      x->num = p->cur.num;
      out->n = x;
      out->h = 1;
      next(p);
      rc = 0;
      break;
    }
    case T_DUR:
      return perr(p, RC_ENOTSUP, p->cur.off,
                  "durations as numbers are not supported: write the number of seconds");
    case T_STRING:
      return perr(p, RC_ENOTSUP, p->cur.off,
                  "string literals are not supported outside selectors");
    case T_LPAREN: {
      size_t lp = p->cur.off;
      next(p);
      rc = parse_expr(p, 1, out);
      if (rc != 0) return rc;
      if (p->cur.kind != T_RPAREN) {
        rc = p->cur.kind == T_EOF
                 ? perr(p, RC_EPARSE, lp, "unclosed left parenthesis")
                 : unexpected(p, "", "\")\" or an operator");
        node_free(out->n);
        out->n = NULL;
        return rc;
      }
      next(p); /* the parentheses leave no trace in the tree, but (x)[5m] is still wrong */
      paren = 1;
      break;
    }
    case T_LBRACE:
    case T_METRIC_IDENT:
      rc = parse_selector(p, out);
      break;
    case T_IDENT:
      peek(p, &nt);
      rc = nt.kind == T_LPAREN ? parse_call(p, out) : parse_selector(p, out);
      break;
    case T_KW:
      if (is_aggregation_kw(p->cur.kw)) {
        peek(p, &nt);
        if (nt.kind == T_LPAREN || (nt.kind == T_KW && (nt.kw == KW_BY || nt.kw == KW_WITHOUT))) {
          rc = parse_aggregation(p, out);
          break;
        }
      }
      if (kw_is_metric_name(p->cur.kw)) {
        rc = parse_selector(p, out);
        break;
      }
      return unexpected(p, "", "an expression");
    case T_EOF:
      return unexpected(p, "", "an expression");
    default:
      return unexpected(p, "", "an expression");
  }
  if (rc != 0) return rc;
  /* Postfix: ranges, and the modifiers the subset refuses. */
  for (;;) {
    if (p->cur.kind == T_LBRACKET) {
      rc = parse_range(p, out, paren);
    } else if (p->cur.kind == T_KW && p->cur.kw == KW_OFFSET) {
      /* Every parse_* that returns 0 has set out->n (fuzz_promql checks the tree after each
       * successful parse); the analyser loses that through the recursion. */
      rc = out->n->kind == RC_PQ_SELECTOR && !paren // NOLINT(clang-analyzer-core.NullDereference)
               ? perr(p, RC_ENOTSUP, p->cur.off, "offset modifier is not supported")
               : perr(p, RC_EPARSE, p->cur.off,
                      "offset modifier must be preceded by an instant vector selector or range "
                      "vector selector or a subquery");
    } else if (p->cur.kind == T_AT) {
      rc = perr(p, RC_ENOTSUP, p->cur.off, "@ modifier is not supported");
    } else {
      break;
    }
    if (rc != 0) {
      node_free(out->n);
      out->n = NULL;
      return rc;
    }
  }
  return 0;
}

static int parse_unary(ps_t *p, pn_t *out) {
  int rc;
  out->n = NULL;
  if (++p->depth > RC_PQ_MAX_DEPTH) {
    rc = depth_error(p, p->cur.off);
  } else if (p->cur.kind == T_ADD || p->cur.kind == T_SUB) {
    int neg = p->cur.kind == T_SUB;
    size_t opoff = p->cur.off;
    int opline = p->cur.line, opcol = p->cur.col;
    next(p);
    /* The operand binds ^ but nothing looser: -2 ^ 2 == -(2 ^ 2), -a * b == (-a) * b. */
    rc = parse_expr(p, PREC_POW, out);
    if (rc == 0 && out->matrix) {
      rc = perr(p, RC_EPARSE, opoff,
                "unary expression only allowed on expressions of type scalar or instant vector");
      node_free(out->n);
      out->n = NULL;
    } else if (rc == 0 && out->n->kind == RC_PQ_NUMBER) {
      /* PromQL folds a sign into a number literal and starts it at the sign. */
      if (neg) out->n->num = -out->n->num;
      out->n->line = opline;
      out->n->col = opcol;
      out->off = opoff;
    } else if (rc == 0 && neg) {
      rc_pq_node_t *x = NULL;
      if (out->h + 1 > RC_PQ_MAX_DEPTH)
        rc = depth_error(p, opoff);
      else if ((x = node_new(RC_PQ_NEG, opline, opcol)) == NULL)
        rc = oom(p);
      if (rc != 0 || x == NULL) {
        node_free(out->n);
        out->n = NULL;
      } else {
        x->type = out->n->type;
        x->args[0] = out->n;
        out->n = x;
        out->h++;
        out->off = opoff;
      }
    }
  } else {
    rc = parse_primary(p, out);
  }
  p->depth--;
  return rc;
}

/* The binary node for lhs op rhs with PromQL's checks (parse.go checkAST, BinaryExpr). The
 * operands are consumed whatever happens. */
static int make_binary(ps_t *p, pn_t *lhs, pn_t *rhs, rc_pq_op_t op, size_t opoff,
                       size_t booloff, size_t matchoff, labels_t *l, int ignoring) {
  int rc = 0;
  int ret_bool = booloff != SIZE_MAX, matching = matchoff != SIZE_MAX;
  if (lhs->matrix || rhs->matrix)
    rc = perr(p, RC_EPARSE, lhs->matrix ? lhs->off : rhs->off,
              "binary expression must contain only scalar and instant vector types");
  else if (ret_bool && !rc_pq_op_is_comparison(op))
    rc = perr(p, RC_EPARSE, booloff, "bool modifier can only be used on comparison operators");
  else if (rc_pq_op_is_comparison(op) && !ret_bool && lhs->n->type == RC_PQ_SCALAR &&
           rhs->n->type == RC_PQ_SCALAR)
    rc = perr(p, RC_EPARSE, opoff, "comparisons between scalars must use BOOL modifier");
  else if (matching && (lhs->n->type == RC_PQ_SCALAR || rhs->n->type == RC_PQ_SCALAR))
    /* Stricter than PromQL, which lets an empty on()/ignoring() pass and drops it. */
    rc = perr(p, RC_EPARSE, matchoff, "vector matching only allowed between instant vectors");
  int h = 1 + (lhs->h > rhs->h ? lhs->h : rhs->h);
  if (rc == 0 && h > RC_PQ_MAX_DEPTH) rc = depth_error(p, opoff);
  rc_pq_node_t *x = NULL;
  /* lhs->n is set: make_binary is only called with two parsed operands (as above). */
  if (rc == 0 && (x = node_new(RC_PQ_BINARY, lhs->n->line, lhs->n->col)) == NULL) // NOLINT(clang-analyzer-core.NullDereference)
    rc = oom(p);
  if (rc != 0 || x == NULL) {
    node_free(lhs->n);
    node_free(rhs->n);
    lhs->n = rhs->n = NULL;
    labels_free(l);
    return rc;
  }
  x->op = op;
  x->type = lhs->n->type == RC_PQ_SCALAR && rhs->n->type == RC_PQ_SCALAR ? RC_PQ_SCALAR
                                                                           : RC_PQ_VECTOR;
  x->return_bool = (uint8_t)ret_bool;
  x->matching = (uint8_t)matching;
  x->ignoring = (uint8_t)ignoring;
  x->labels = l->v;
  x->nlabels = l->n;
  l->v = NULL;
  l->n = l->cap = 0;
  x->args[0] = lhs->n;
  x->args[1] = rhs->n;
  lhs->n = x;
  lhs->h = h;
  lhs->matrix = 0;
  return 0;
}

/* Precedence climbing: operands, then operators of precedence >= min_prec. Left-associative
 * operators loop; ^ recurses on its right side at its own level. */
static int parse_expr(ps_t *p, int min_prec, pn_t *out) {
  int rc = parse_unary(p, out);
  if (rc != 0) return rc;
  for (;;) {
    rc_pq_op_t op;
    int prec = binop(&p->cur, &op);
    if (prec == 0 && p->cur.kind == T_KW) {
      int kw = p->cur.kw;
      if (kw == KW_AND || kw == KW_OR || kw == KW_UNLESS)
        rc = perr(p, RC_ENOTSUP, p->cur.off, "set operator \"%s\" is not supported",
                  kw_names[kw]);
      else if (kw == KW_ATAN2)
        rc = perr(p, RC_ENOTSUP, p->cur.off, "operator \"atan2\" is not supported");
      if (rc != 0) break;
    }
    if (prec == 0 || prec < min_prec) return 0;
    size_t opoff = p->cur.off, booloff = SIZE_MAX, matchoff = SIZE_MAX;
    int ignoring = 0;
    labels_t l = {0};
    next(p);
    if (p->cur.kind == T_KW && p->cur.kw == KW_BOOL) {
      booloff = p->cur.off;
      next(p);
    }
    if (p->cur.kind == T_KW && (p->cur.kw == KW_ON || p->cur.kw == KW_IGNORING)) {
      matchoff = p->cur.off;
      ignoring = p->cur.kw == KW_IGNORING;
      next(p);
      rc = parse_grouping(p, &l);
      if (rc == 0 && p->cur.kind == T_KW &&
          (p->cur.kw == KW_GROUP_LEFT || p->cur.kw == KW_GROUP_RIGHT))
        rc = perr(p, RC_ENOTSUP, p->cur.off, "%s (%s matching) is not supported",
                  kw_names[p->cur.kw],
                  p->cur.kw == KW_GROUP_LEFT ? "many-to-one" : "one-to-many");
    } else if (p->cur.kind == T_KW &&
               (p->cur.kw == KW_GROUP_LEFT || p->cur.kw == KW_GROUP_RIGHT)) {
      rc = unexpected(p, "", "an expression"); /* PromQL: group_x needs on/ignoring first */
    }
    pn_t rhs = {0};
    if (rc == 0) rc = parse_expr(p, op == RC_OP_POW ? prec : prec + 1, &rhs);
    if (rc != 0) {
      labels_free(&l);
      break;
    }
    rc = make_binary(p, out, &rhs, op, opoff, booloff, matchoff, &l, ignoring);
    if (rc != 0) return rc;
  }
  node_free(out->n);
  out->n = NULL;
  return rc;
}

/* ---- expression ------------------------------------------------------------------------- */

static void walk_sels(rc_pq_node_t *x, rc_pq_expr_t *e, uint32_t *k) {
  if (x == NULL) return;
  if (x->sel != NULL) {
    if (e->sels != NULL) e->sels[*k] = x->sel;
    (*k)++;
  }
  if (x->kind == RC_PQ_RANGE_FN && x->range_ms > e->max_range_ms) e->max_range_ms = x->range_ms;
  walk_sels(x->args[0], e, k);
  walk_sels(x->args[1], e, k);
}

int rc_pq_parse(const char *text, size_t len, unsigned flags, rc_pq_expr_t **out, rc_err_t *err) {
  if (out == NULL) return rc_err_set(err, RC_EINVAL, "no output");
  *out = NULL;
  if (text == NULL && len > 0) return rc_err_set(err, RC_EINVAL, "no input");
  if (text == NULL) text = "";
  ps_t p = {.t = text, .n = len, .flags = flags, .err = err, .pc_line = 1, .pc_col = 1};
  if (err != NULL) *err = (rc_err_t){0};
  lex(&p, 0, &p.cur);
  if (p.cur.kind == T_EOF) return perr(&p, RC_EPARSE, p.cur.off, "no expression found in input");
  pn_t root = {0};
  int rc = parse_expr(&p, 1, &root);
  if (rc != 0) return rc;
  if (p.cur.kind != T_EOF) {
    rc = p.cur.kind == T_RPAREN
             ? perr(&p, RC_EPARSE, p.cur.off, "unexpected right parenthesis \")\"")
             : unexpected(&p, "", "an operator or end of input");
  } else if (root.matrix) {
    rc = perr(&p, RC_EPARSE, root.off, "a range vector cannot be a rule's value");
  }
  if (rc != 0) {
    node_free(root.n);
    return rc;
  }
  rc_pq_expr_t *e = calloc(1, sizeof(*e));
  if (e == NULL || (e->text = malloc(len + 1)) == NULL) {
    free(e);
    node_free(root.n);
    return oom(&p);
  }
  memcpy(e->text, text, len);
  e->text[len] = '\0';
  e->root = root.n;
  uint32_t k = 0;
  walk_sels(e->root, e, &k);
  if (k > 0) {
    e->sels = calloc(k, sizeof(*e->sels));
    if (e->sels == NULL) {
      rc_pq_free(e);
      return oom(&p);
    }
    e->nsels = k;
    k = 0;
    e->max_range_ms = 0;
    walk_sels(e->root, e, &k);
  }
  *out = e;
  return 0;
}

void rc_pq_free(rc_pq_expr_t *e) {
  if (e == NULL) return;
  node_free(e->root);
  free(e->sels);
  free(e->text);
  free(e);
}

/* ---- printer ---------------------------------------------------------------------------- */

/* wbuf_t, wbuf_put(), wbuf_puts(): wbuf.h */

/* The shortest text that reads back as exactly v. */
static void put_number(wbuf_t *w, double v) {
  char b[40];
  if (isnan(v)) {
    wbuf_puts(w, "NaN");
    return;
  }
  if (isinf(v)) {
    wbuf_puts(w, v < 0 ? "-Inf" : "Inf");
    return;
  }
  /* Fewest significant digits that round-trip, then plain decimals unless the exponent is
   * large or tiny (1000 rather than 1e+03; 1e+300 rather than 301 digits). */
  int prec = 1;
  for (; prec < 17; prec++) {
    snprintf(b, sizeof(b), "%.*e", prec - 1, v);
    if (strtod(b, NULL) == v) break;
  }
  snprintf(b, sizeof(b), "%.*e", prec - 1, v);
  int exp10 = (int)strtol(strchr(b, 'e') + 1, NULL, 10);
  if (exp10 > -7 && exp10 < 15) { /* below 2^53: no binary digits leak into %f */
    int decimals = prec - 1 - exp10;
    snprintf(b, sizeof(b), "%.*f", decimals > 0 ? decimals : 0, v);
  }
  wbuf_puts(w, b);
}

/* Prometheus' model.Duration form: 1h30m, 5m, 1y2w, 500ms. */
static void put_duration(wbuf_t *w, int64_t ms) {
  static const struct {
    int64_t ms;
    const char *u;
  } units[] = {{31536000000, "y"}, {604800000, "w"}, {86400000, "d"}, {3600000, "h"},
               {60000, "m"},       {1000, "s"},      {1, "ms"}};
  char b[32];
  if (ms <= 0) {
    wbuf_puts(w, "0s");
    return;
  }
  for (size_t i = 0; i < RC_ARRAY_SIZE(units); i++) {
    if (ms >= units[i].ms) {
      snprintf(b, sizeof(b), "%lld%s", (long long)(ms / units[i].ms), units[i].u);
      wbuf_puts(w, b);
      ms %= units[i].ms;
    }
  }
}

/* Metric names that our own parser would not read back as a metric name at the start of an
 * expression (keywords outside PromQL's metric_identifier, and the number words). */
static int name_needs_matcher(const char *v, uint32_t n) {
  static const char *const words[] = {"bool", "on", "ignoring", "group_left", "group_right",
                                      "atan2", "inf", "nan"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(words); i++) {
    if (strlen(words[i]) != n) continue;
    uint32_t k = 0;
    while (k < n && (v[k] | 0x20) == words[i][k]) k++;
    if (k == n) return 1;
  }
  return 0;
}

static void put_selector(wbuf_t *w, const rc_selector_t *s) {
  const rc_matcher_t *name = NULL;
  uint32_t names = 0;
  for (uint32_t k = 0; k < s->n; k++)
    if (s->m[k].name_len == 8 && memcmp(s->m[k].name, "__name__", 8) == 0) names++, name = &s->m[k];
  if (names != 1 || name->op != RC_MATCH_EQ || !name_needs_matcher(name->value, name->value_len)) {
    char *dst = w->len < w->cap ? w->b + w->len : NULL;
    w->len += rc_selector_format(s, dst, dst ? w->cap - w->len : 0);
    return;
  }
  /* selector.c prints name{rest}: write {__name__="name",rest} instead (the name is a
   * keyword, plain ASCII needing no escapes). Without a scratch buffer: print name{rest} so
   * that rest lands where it belongs, then write the prefix over name{. */
  size_t start = w->len, skip = name->value_len + 1; /* "name{" */
  size_t lp = 13 + name->value_len;                   /* {__name__="name", */
  if (s->n == 1) {
    wbuf_puts(w, "{__name__=\"");
    wbuf_put(w, name->value, name->value_len);
    wbuf_puts(w, "\"}");
    return;
  }
  size_t at = start + lp - skip;
  char *dst = at < w->cap ? w->b + at : NULL;
  size_t full = rc_selector_format(s, dst, dst ? w->cap - at : 0);
  w->len = start;
  wbuf_puts(w, "{__name__=\"");
  wbuf_put(w, name->value, name->value_len);
  wbuf_put(w, "\",", 2);
  w->len = start + lp + full - skip;
}

static void put_labels(wbuf_t *w, char *const *l, uint32_t n) {
  wbuf_put(w, "(", 1);
  for (uint32_t i = 0; i < n; i++) {
    if (i) wbuf_put(w, ", ", 2);
    wbuf_puts(w, l[i]);
  }
  wbuf_put(w, ")", 1);
}

static int num_negative(const rc_pq_node_t *x) {
  return x->kind == RC_PQ_NUMBER && !isnan(x->num) && signbit(x->num);
}

static void put_node(wbuf_t *w, const rc_pq_node_t *x);

/* A binary operand, in parentheses when reading it back without them would build another
 * tree: a looser operator, an equal one on the non-associative side, or a sign on the left
 * of ^ (-2 ^ 2 reads as -(2 ^ 2)). */
static void put_operand(wbuf_t *w, const rc_pq_node_t *c, rc_pq_op_t parent, int right) {
  int paren = 0;
  if (c->kind == RC_PQ_BINARY) {
    int cp = op_prec(c->op), pp = op_prec(parent);
    paren = cp < pp || (cp == pp && (parent == RC_OP_POW ? !right : right));
  } else if (parent == RC_OP_POW && !right) {
    paren = c->kind == RC_PQ_NEG || num_negative(c);
  }
  if (paren) wbuf_put(w, "(", 1);
  put_node(w, c);
  if (paren) wbuf_put(w, ")", 1);
}

static void put_node(wbuf_t *w, const rc_pq_node_t *x) {
  switch (x->kind) {
    case RC_PQ_NUMBER: put_number(w, x->num); break;
    case RC_PQ_SELECTOR: put_selector(w, x->sel); break;
    case RC_PQ_RANGE_FN:
      wbuf_puts(w, rc_pq_fn_name(x->fn));
      wbuf_put(w, "(", 1);
      if (x->fn == RC_FN_QUANTILE_OT) {
        put_number(w, x->param);
        wbuf_put(w, ", ", 2);
      }
      put_selector(w, x->sel);
      wbuf_put(w, "[", 1);
      put_duration(w, x->range_ms);
      wbuf_put(w, "])", 2);
      break;
    case RC_PQ_HIST_QUANTILE:
      wbuf_puts(w, "histogram_quantile(");
      put_node(w, x->args[0]);
      wbuf_put(w, ", ", 2);
      put_node(w, x->args[1]);
      wbuf_put(w, ")", 1);
      break;
    case RC_PQ_AGG:
      wbuf_puts(w, rc_pq_agg_name(x->agg));
      if (x->without || x->nlabels > 0) {
        wbuf_puts(w, x->without ? " without " : " by ");
        put_labels(w, x->labels, x->nlabels);
        wbuf_put(w, " ", 1);
      }
      wbuf_put(w, "(", 1);
      put_node(w, x->args[0]);
      wbuf_put(w, ")", 1);
      break;
    case RC_PQ_BINARY:
      put_operand(w, x->args[0], x->op, 0);
      wbuf_put(w, " ", 1);
      wbuf_puts(w, rc_pq_op_name(x->op));
      if (x->return_bool) wbuf_puts(w, " bool");
      if (x->matching) {
        wbuf_puts(w, x->ignoring ? " ignoring " : " on ");
        put_labels(w, x->labels, x->nlabels);
      }
      wbuf_put(w, " ", 1);
      put_operand(w, x->args[1], x->op, 1);
      break;
    case RC_PQ_NEG: {
      /* Only ^ binds tighter than a sign: -(a * b) must keep its parentheses. */
      const rc_pq_node_t *c = x->args[0];
      int paren = c->kind == RC_PQ_BINARY && c->op != RC_OP_POW;
      wbuf_put(w, "-", 1);
      if (paren) wbuf_put(w, "(", 1);
      put_node(w, c);
      if (paren) wbuf_put(w, ")", 1);
      break;
    }
  }
}

size_t rc_pq_format(const rc_pq_expr_t *e, char *buf, size_t cap) {
  wbuf_t w = {.b = buf, .cap = buf ? cap : 0};
  if (e != NULL && e->root != NULL) put_node(&w, e->root);
  if (buf != NULL && w.cap > 0) buf[w.len < w.cap ? w.len : w.cap - 1] = '\0';
  return w.len;
}

/* ---- names ------------------------------------------------------------------------------ */

const char *rc_pq_fn_name(rc_fn_t fn) {
  for (size_t i = 0; i < RC_ARRAY_SIZE(range_fns); i++)
    if (range_fns[i].fn == fn) return range_fns[i].name;
  return "?";
}

const char *rc_pq_agg_name(rc_pq_agg_t a) {
  switch (a) {
    case RC_AGG_SUM: return "sum";
    case RC_AGG_AVG: return "avg";
    case RC_AGG_MIN: return "min";
    case RC_AGG_MAX: return "max";
    case RC_AGG_COUNT: return "count";
  }
  return "?";
}

const char *rc_pq_op_name(rc_pq_op_t op) {
  static const char *const names[] = {
      [RC_OP_ADD] = "+", [RC_OP_SUB] = "-", [RC_OP_MUL] = "*",  [RC_OP_DIV] = "/",
      [RC_OP_MOD] = "%", [RC_OP_POW] = "^", [RC_OP_EQ] = "==",  [RC_OP_NE] = "!=",
      [RC_OP_GT] = ">",  [RC_OP_LT] = "<",  [RC_OP_GE] = ">=",  [RC_OP_LE] = "<=",
  };
  if ((unsigned)op < RC_ARRAY_SIZE(names)) return names[op];
  return "?";
}
