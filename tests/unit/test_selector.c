/* test_selector.c: PromQL matcher semantics (a table of selectors against label sets, run with
 * the PCRE2 JIT and with the interpreter), the selector parser's must-not-parse table with
 * line, column and reason, parse_at for the future expression parser, the printer's round
 * trip, the matcher API, PCRE2 limits, and matching from several threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <uv.h>

#include "selector.h"

typedef struct kv {
  const char *n, *v;
} kv_t;

#define MAXL 5

/* Builds a sorted label array from kv pairs (as rw_labels would deliver it). */
static uint32_t mklabels(const kv_t *kv, rc_label_t *out) {
  uint32_t n = 0;
  for (int i = 0; i < MAXL && kv[i].n != NULL; i++) {
    out[n] = (rc_label_t){kv[i].n, kv[i].v, (uint32_t)strlen(kv[i].n), (uint32_t)strlen(kv[i].v)};
    n++;
  }
  for (uint32_t i = 1; i < n; i++)
    for (uint32_t j = i; j > 0 && rc_bytes_cmp(out[j - 1].name, out[j - 1].name_len, out[j].name,
                                               out[j].name_len) > 0;
         j--) {
      rc_label_t t = out[j];
      out[j] = out[j - 1];
      out[j - 1] = t;
    }
  return n;
}

#define UP \
  { "__name__", "up" }

/* PromQL semantics: selector, series, does it match. Sources: Prometheus
 * model/labels/matcher.go (missing label == ""), model/labels/regexp.go ("^(?s:" re ")$"),
 * Go regexp/syntax (RE2 with Perl flags), promql/parser/lex.go (string escapes). */
static const struct {
  const char *sel;
  kv_t l[MAXL];
  int want;
} cases[] = {
    /* = and != */
    {"up", {UP}, 1},
    {"up", {{"__name__", "upx"}}, 0},
    {"up{job=\"api\"}", {UP, {"job", "api"}}, 1},
    {"up{job=\"api\"}", {UP, {"job", "web"}}, 0},
    {"up{job=\"api\"}", {UP}, 0},
    {"up{job!=\"api\"}", {UP}, 1},
    {"up{job!=\"api\"}", {UP, {"job", "api"}}, 0},
    {"up{job!=\"api\"}", {UP, {"job", "web"}}, 1},
    /* A missing label is the empty string. */
    {"up{job=\"\"}", {UP}, 1},
    {"up{job=\"\"}", {UP, {"job", "api"}}, 0},
    {"up{job!=\"\"}", {UP}, 0},
    {"up{job!=\"\"}", {UP, {"job", "x"}}, 1},
    {"up{job=~\".*\"}", {UP}, 1},
    {"up{job=~\".+\"}", {UP}, 0},
    {"up{job=~\".+\"}", {UP, {"job", "x"}}, 1},
    {"up{job!~\".*\"}", {UP, {"job", "x"}}, 0},
    {"up{job!~\"api\"}", {UP}, 1},
    {"up{job=~\"\"}", {UP}, 1},
    {"up{job=~\"\"}", {UP, {"job", "x"}}, 0},
    {"up{job=~\"a|b|\"}", {UP}, 1},
    /* Anchoring: the whole value must match. */
    {"up{job=~\"api\"}", {UP, {"job", "api"}}, 1},
    {"up{job=~\"foo\"}", {UP, {"job", "foobar"}}, 0},
    {"up{job=~\"foo\"}", {UP, {"job", "xfoo"}}, 0},
    {"up{job=~\"o\"}", {UP, {"job", "foo"}}, 0},
    {"up{job=~\"foo.*\"}", {UP, {"job", "foobar"}}, 1},
    {"up{job=~\".*bar\"}", {UP, {"job", "foobar"}}, 1},
    {"up{job=~\"^foo$\"}", {UP, {"job", "foo"}}, 1},
    {"up{code=~\"5..\"}", {UP, {"code", "503"}}, 1},
    {"up{code=~\"5..\"}", {UP, {"code", "5030"}}, 0},
    /* Alternation. */
    {"up{job=~\"api|web\"}", {UP, {"job", "web"}}, 1},
    {"up{job=~\"api|web\"}", {UP, {"job", "apiweb"}}, 0},
    {"up{job!~\"api|web\"}", {UP, {"job", "db"}}, 1},
    {"up{job!~\"api|web\"}", {UP, {"job", "web"}}, 0},
    {"up{v=~\"(a|ab)(c|bcd)(d*)\"}", {UP, {"v", "abcd"}}, 1},
    {"up{job=~\"ap(i)\"}", {UP, {"job", "api"}}, 1},
    /* String quoting and escapes reach the regex as PromQL unquotes them. */
    {"up{code=~\"5\\\\d\\\\d\"}", {UP, {"code", "503"}}, 1},
    {"up{code=~`5\\d\\d`}", {UP, {"code", "503"}}, 1},
    {"up{code=~'5\\\\d{2}'}", {UP, {"code", "503"}}, 1},
    {"up{q=\"a\\\"b\"}", {UP, {"q", "a\"b"}}, 1},
    {"up{q='a\\'b'}", {UP, {"q", "a'b"}}, 1},
    {"up{q=\"a'b\"}", {UP, {"q", "a'b"}}, 1},
    {"up{q=`a\\b`}", {UP, {"q", "a\\b"}}, 1},
    {"up{q=\"tab\\there\"}", {UP, {"q", "tab\there"}}, 1},
    {"up{q=\"Z\\u00fcrich\"}", {UP, {"q", "Z\xc3\xbcrich"}}, 1},
    {"up{q=\"Z\\xc3\\xbcrich\"}", {UP, {"q", "Z\xc3\xbcrich"}}, 1},
    {"up{q=\"Z\\303\\274rich\"}", {UP, {"q", "Z\xc3\xbcrich"}}, 1},
    {"up{q=\"\\U0001F600\"}", {UP, {"q", "\xf0\x9f\x98\x80"}}, 1},
    {"up{q=~\"\\\\Qa.b\\\\E\"}", {UP, {"q", "a.b"}}, 1},
    {"up{q=~\"\\\\Qa.b\\\\E\"}", {UP, {"q", "axb"}}, 0},
    /* Case sensitivity and (?i). */
    {"up{job=\"API\"}", {UP, {"job", "api"}}, 0},
    {"up{job=~\"API\"}", {UP, {"job", "api"}}, 0},
    {"up{job=~\"(?i)API\"}", {UP, {"job", "api"}}, 1},
    {"up{job=~\"(?i)api|WEB\"}", {UP, {"job", "web"}}, 1},
    {"up{job=~\"(?i:a)pi\"}", {UP, {"job", "API"}}, 0},
    {"up{job=~\"(?i:a)pi\"}", {UP, {"job", "Api"}}, 1},
    {"up{v!~\"(?i)ERROR.*\"}", {UP, {"v", "error: disk"}}, 0},
    {"up{x=~\"(?i)k\"}", {UP, {"x", "\xe2\x84\xaa"}}, 1}, /* Kelvin sign folds to k in Go */
    {"up{x=~\"(?i)\\\\W\"}", {UP, {"x", "\xe2\x84\xaa"}}, 0},
    /* Dot, newline and $. */
    {"up{m=~\"a.b\"}", {UP, {"m", "a\nb"}}, 1},
    {"up{m=~\"(?-s)a.b\"}", {UP, {"m", "a\nb"}}, 0},
    {"up{m=~\".*\"}", {UP, {"m", "a\nb"}}, 1},
    {"up{m=~\"a$\"}", {UP, {"m", "a\n"}}, 0},
    {"up{m=~\"(?m)a$\\\\n.*\"}", {UP, {"m", "a\nb"}}, 1},
    {"up{m=~\"[^a]\"}", {UP, {"m", "\n"}}, 1},
    /* UTF-8: a dot is one code point; classes are ASCII as in RE2. */
    {"up{c=\"Z\xc3\xbcrich\"}", {UP, {"c", "Z\xc3\xbcrich"}}, 1},
    {"up{c=~\"Z.rich\"}", {UP, {"c", "Z\xc3\xbcrich"}}, 1},
    {"up{c=~\"Z..rich\"}", {UP, {"c", "Z\xc3\xbcrich"}}, 0},
    {"up{c=~\"\\\\p{Han}+\"}", {UP, {"c", "\xe5\x8c\x97\xe4\xba\xac"}}, 1},
    {"up{c=~\"(?i)z\xc3\xbcrich\"}", {UP, {"c", "Z\xc3\x9cRICH"}}, 1},
    {"up{c=~\"\\\\x{1F600}\"}", {UP, {"c", "\xf0\x9f\x98\x80"}}, 1},
    {"up{c=~\"\\\\d\"}", {UP, {"c", "\xd9\xa3"}}, 0},
    {"up{c=~\"\\\\w+\"}", {UP, {"c", "h\xc3\xa9llo"}}, 0},
    {"up{c=~\"[[:digit:]]+\"}", {UP, {"c", "123"}}, 1},
    {"up{c=~\"\\\\s\"}", {UP, {"c", "\v"}}, 0}, /* RE2's \s has no \v */
    {"up{c=~\"\\\\v\"}", {UP, {"c", "\v"}}, 1},
    {"up{c=~\"a{2,3}\"}", {UP, {"c", "aaaa"}}, 0},
    /* Names: no metric name, __name__ regexes, quoted UTF-8 names. */
    {"{__name__=~\"up|down\"}", {{"__name__", "down"}}, 1},
    {"{__name__=~\"x.*\"}", {{"__name__", "xyz"}}, 1},
    {"{job=\"api\"}", {{"__name__", "anything"}, {"job", "api"}}, 1},
    {"{\"my.metric\"}", {{"__name__", "my.metric"}}, 1},
    {"{\"my.metric\", \"a.b\"=\"c\"}", {{"__name__", "my.metric"}, {"a.b", "c"}}, 1},
    /* Several matchers: AND, the same label twice, extra labels, sort order. */
    {"up{job=~\"a.*\", job!=\"ab\"}", {UP, {"job", "ac"}}, 1},
    {"up{job=~\"a.*\", job!=\"ab\"}", {UP, {"job", "ab"}}, 0},
    {"up{a=\"1\",b=\"2\"}", {UP, {"a", "1"}, {"b", "2"}, {"c", "3"}}, 1},
    {"up{a=\"1\",b=\"2\"}", {UP, {"a", "1"}, {"c", "3"}}, 0},
    {"up{z=\"1\"}", {UP, {"a", "1"}, {"z", "1"}}, 1},
    {"up{A=\"1\"}", {{"A", "1"}, UP}, 1}, /* 'A' sorts before '_' */
    {"up{A!=\"1\", zz=\"\"}", {{"A", "2"}, UP}, 1},
};

static void run_cases(unsigned flags) {
  rc_matcher_scratch_t *scr = rc_matcher_scratch_new();
  assert_non_null(scr);
  for (size_t i = 0; i < RC_ARRAY_SIZE(cases); i++) {
    rc_selector_t *s = NULL;
    rc_err_t e = {0};
    int rc = rc_selector_parse(cases[i].sel, strlen(cases[i].sel), flags, &s, &e);
    if (rc != 0)
      fail_msg("case %zu %s: parse error %d:%d %s", i, cases[i].sel, e.line, e.col, e.msg);
    rc_label_t l[MAXL];
    uint32_t n = mklabels(cases[i].l, l);
    int got = rc_selector_matches(s, scr, l, n);
    if (got != cases[i].want)
      fail_msg("case %zu %s: got %d want %d (flags %u)", i, cases[i].sel, got, cases[i].want,
               flags);
    rc_selector_free(s);
  }
  assert_int_equal(rc_matcher_scratch_errors(scr), 0);
  rc_matcher_scratch_free(scr);
}

static void test_semantics_jit(void **st) {
  (void)st;
  assert_true(RC_ARRAY_SIZE(cases) >= 40);
  run_cases(0);
}

static void test_semantics_interpreter(void **st) {
  (void)st;
  run_cases(RC_MATCHER_NO_JIT);
}

/* Must not parse: input, 1-based line and column, a piece of the reason. */
static const struct {
  const char *in;
  int line, col;
  const char *why;
} bad[] = {
    {"", 1, 1, "unexpected end of input, expected a metric name"},
    {"   # only a comment", 1, 20, "unexpected end of input"},
    {"1up", 1, 1, "expected a metric name or \"{\""},
    {"up{", 1, 4, "unexpected end of input inside braces"},
    {"up{job=\"a\"", 1, 11, "unexpected end of input inside braces"},
    {"up{job=\"api}", 1, 8, "unterminated quoted string"},
    {"up{job=`api}", 1, 8, "unterminated raw string"},
    {"up{job=\"a\nb\"}", 1, 8, "unterminated quoted string"},
    {"up{job=\"a\\qb\"}", 1, 10, "unknown escape sequence U+0071 'q'"},
    {"up{job=\"a\\x4g\"}", 1, 13, "illegal character U+0067 'g' in escape sequence"},
    {"up{job=\"\\ud800\"}", 1, 9, "escape sequence is an invalid Unicode code point"},
    {"up{job=\"\\U00110000\"}", 1, 9, "invalid Unicode code point"},
    {"up{job=\"\xff\"}", 1, 9, "invalid UTF-8"},
    {"up{job=\"a\" env=\"b\"}", 1, 12,
     "unexpected identifier \"env\" in label matching, expected \",\" or \"}\""},
    {"up{job \"a\"}", 1, 8, "expected label matching operator"},
    {"up{job=}", 1, 8, "unexpected '}' in label matching, expected string"},
    {"up{job=api}", 1, 8, "expected string"},
    {"up{=~\"a\"}", 1, 4, "unexpected \"=~\" in label matching, expected identifier or \"}\""},
    {"up{\"\"=\"a\"}", 1, 4, "empty label name"},
    {"up{\"\\xff\"=\"a\"}", 1, 4, "label name is not valid UTF-8"},
    {"up{job!\"a\"}", 1, 7, "unexpected character after '!' inside braces"},
    {"up{,}", 1, 4, "expected identifier or \"}\""},
    {"up{job=\"a\",,}", 1, 12, "unexpected \",\""},
    {"up{job:x=\"a\"}", 1, 7, "unexpected character inside braces: ':'"},
    {"up{{", 1, 4, "unexpected left brace"},
    {"up{__name__=\"x\"}", 1, 1, "metric name must not be set twice: \"up\" or \"x\""},
    {"up{\"down\"}", 1, 1, "metric name must not be set twice"},
    {"up{__name__=~\"x.*\"}", 1, 1, "metric name must not be set twice"},
    {"{job=\"\"}", 1, 1, "vector selector must contain at least one non-empty matcher"},
    {"{}", 1, 1, "at least one non-empty matcher"},
    {"  {job=~\".*\"}", 1, 3, "at least one non-empty matcher"},
    {"{\"\"}", 1, 2, "empty label name"},
    {"up{job=\"a\"} extra", 1, 13, "unexpected identifier \"extra\" after the selector"},
    {"up{job=\"a\"}[5m]", 1, 12, "unexpected '[' after the selector"},
    {"up{\n  job=\"a\"\n  env=\"b\"}", 3, 3, "expected \",\" or \"}\""},
    /* Regexes: RE2 refuses these; columns point into the string as written. */
    {"up{job=~\"a(?=b)\"}", 1, 11, "lookahead (?= is not supported"},
    {"up{job=~\"a(?<!b)\"}", 1, 11, "lookbehind"},
    {"up{job=~\"(a)\\\\1\"}", 1, 13, "backreferences are not supported"},
    {"up{job=~\"(?P<n>a)(?P=n)\"}", 1, 18, "backreferences are not supported"},
    {"up{job=~\"a*+\"}", 1, 12, "possessive quantifiers are not supported"},
    {"up{job=~\"a**\"}", 1, 12, "invalid nested repetition operator"},
    {"up{job=~\"(?>a)\"}", 1, 10, "atomic groups"},
    {"up{job=~\"(?R)\"}", 1, 10, "recursion"},
    {"up{job=~\"(*UTF)a\"}", 1, 11, "missing argument to repetition operator"},
    {"up{job=~\"\\\\C\"}", 1, 10, "\\C (any byte) is not supported"},
    {"up{job=~\"\\\\Z\"}", 1, 10, "invalid escape sequence: `\\Z`"},
    {"up{job=~\"(?x)a\"}", 1, 10, "invalid or unsupported Perl syntax"},
    {"up{job=~\"a(b\"}", 1, 11, "missing closing ): `(b`"},
    {"up{job=~\"a)\"}", 1, 11, "unexpected )"},
    {"up{job=~\"[a\"}", 1, 10, "missing closing ]"},
    {"up{job=~\"[z-a]\"}", 1, 11, "invalid character class range: `z-a`"},
    {"up{job=~\"[[:foo:]]\"}", 1, 11, "invalid character class range: `[:foo:]`"},
    {"up{job=~\"a{1001}\"}", 1, 11, "invalid repeat count"},
    {"up{job=~\"(a{100}){11}\"}", 1, 18, "invalid repeat count"},
    {"up{job=~\"*a\"}", 1, 10, "missing argument to repetition operator"},
    {"up{job=~\"\\\\p{NoSuchScript}\"}", 1, 10, "unknown property"},
    {"up{job=~\"\\xff\"}", 1, 10, "invalid UTF-8"},
    {"up{job=~`a\\`}", 1, 11, "trailing backslash"},
    {"up{a=\"x\", job=~\"\\u00e9(\"}", 1, 23, "missing closing )"},
    /* Found by libFuzzer: the reason quotes the regex, newline included; it stays one line. */
    {"up{m=~\"a(\\n(\\nb\"}", 1, 12, "missing closing ): `(\\x0ab`"},
};

static void test_bad_input(void **st) {
  (void)st;
  assert_true(RC_ARRAY_SIZE(bad) >= 20);
  for (size_t i = 0; i < RC_ARRAY_SIZE(bad); i++) {
    rc_selector_t *s = (rc_selector_t *)0x1;
    rc_err_t e = {0};
    int rc = rc_selector_parse(bad[i].in, strlen(bad[i].in), 0, &s, &e);
    if (rc != RC_EPARSE) fail_msg("bad %zu %s: rc %d", i, bad[i].in, rc);
    assert_null(s);
    if (e.line != bad[i].line || e.col != bad[i].col || strstr(e.msg, bad[i].why) == NULL)
      fail_msg("bad %zu %s: got %d:%d \"%s\", want %d:%d \"%s\"", i, bad[i].in, e.line, e.col,
               e.msg, bad[i].line, bad[i].col, bad[i].why);
    assert_null(strchr(e.msg, '\n')); /* one line */
  }
}

static void test_parse_at(void **st) {
  (void)st;
  const char *expr = "rate(http_requests_total{code=~\"5..\"}[5m]) / on() up";
  rc_selector_t *s;
  size_t end;
  rc_err_t e;
  assert_int_equal(rc_selector_parse_at(expr, strlen(expr), 5, &end, 0, &s, &e), 0);
  assert_int_equal(expr[end], '[');
  assert_int_equal(s->n, 2);
  rc_selector_free(s);
  /* A bare name stops right after the name, not after the blank behind it. */
  size_t up = strlen(expr) - 2;
  assert_int_equal(rc_selector_parse_at(expr, strlen(expr), up - 1, &end, 0, &s, &e), 0);
  assert_int_equal(end, strlen(expr));
  rc_selector_free(s);
  const char *two = "foo + bar";
  assert_int_equal(rc_selector_parse_at(two, strlen(two), 0, &end, 0, &s, &e), 0);
  assert_int_equal(end, 3);
  rc_selector_free(s);
  /* Errors carry positions in the whole text. */
  const char *multi = "sum(\n  up{job=~\"(\"}\n)";
  assert_int_equal(rc_selector_parse_at(multi, strlen(multi), 4, &end, 0, &s, &e), RC_EPARSE);
  assert_int_equal(e.line, 2);
  assert_int_equal(e.col, 12);
  /* ALLOW_EMPTY lets {} through for callers that want it (PromQL has such cases). */
  assert_int_equal(rc_selector_parse("{a=\"\"}", 6, RC_SELECTOR_ALLOW_EMPTY, &s, &e), 0);
  rc_selector_free(s);
}

static void test_format_roundtrip(void **st) {
  (void)st;
  static const struct {
    const char *in, *out;
  } t[] = {
      {"up", "up"},
      {"up{}", "up"},
      {"  up { job = \"api\" , } # trailing comment", "up{job=\"api\"}"},
      {"up{z=\"1\",a!=\"2\",m=~\"x.*\",b!~'y'}", "up{a!=\"2\",b!~\"y\",m=~\"x.*\",z=\"1\"}"},
      {"{__name__=\"up\"}", "up"},
      {"{__name__=~\"up|down\"}", "{__name__=~\"up|down\"}"},
      {"{\"my.metric\", \"a.b\"=\"c\"}", "{__name__=\"my.metric\",\"a.b\"=\"c\"}"},
      {"{\"a\",\"b\"}", "{__name__=\"a\",__name__=\"b\"}"},
      {"up{q=\"a\\\"b\\\\c\\nd\\x01\\xff\xc3\xa9\"}",
       "up{q=\"a\\\"b\\\\c\\nd\\x01\\xff\xc3\xa9\"}"},
      {"up{q=`raw\\d`}", "up{q=\"raw\\\\d\"}"},
      {"{job=\"x\"}", "{job=\"x\"}"},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(t); i++) {
    rc_selector_t *s, *s2;
    rc_err_t e;
    if (rc_selector_parse(t[i].in, strlen(t[i].in), 0, &s, &e) != 0)
      fail_msg("%zu: %s: %s", i, t[i].in, e.msg);
    char buf[256], buf2[256];
    size_t n = rc_selector_format(s, buf, sizeof(buf));
    assert_int_equal(n, strlen(buf));
    if (strcmp(buf, t[i].out) != 0) fail_msg("%zu: got %s want %s", i, buf, t[i].out);
    /* Parse what we printed: same text again. */
    if (rc_selector_parse(buf, n, 0, &s2, &e) != 0) fail_msg("%zu: reparse %s: %s", i, buf, e.msg);
    rc_selector_format(s2, buf2, sizeof(buf2));
    assert_string_equal(buf, buf2);
    /* Truncation is snprintf-like. */
    char small[5];
    assert_int_equal(rc_selector_format(s, small, sizeof(small)), n);
    assert_int_equal(strlen(small), n < 4 ? n : 4);
    rc_selector_free(s);
    rc_selector_free(s2);
  }
}

static void test_matcher_api(void **st) {
  (void)st;
  rc_matcher_t m;
  rc_err_t e;
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "a", 1, "x(y", 3, 0, &e), RC_EPARSE);
  assert_int_equal(e.col, 2);
  assert_int_equal(e.line, 0);
  assert_non_null(strstr(e.msg, "missing closing )"));
  assert_int_equal(rc_matcher_init(&m, (rc_match_op_t)9, "a", 1, "x", 1, 0, &e), RC_EINVAL);
  char *huge = malloc(RC_MATCHER_MAX_REGEX + 1);
  memset(huge, 'a', RC_MATCHER_MAX_REGEX + 1);
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "a", 1, huge, RC_MATCHER_MAX_REGEX + 1, 0, &e),
                   RC_EINVAL);
  /* The same length is fine for an equality matcher. */
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_EQ, "a", 1, huge, RC_MATCHER_MAX_REGEX + 1, 0, &e),
                   0);
  rc_matcher_close(&m);
  free(huge);

  /* Literals: what the index files selectors under. */
  const char *p;
  uint32_t len;
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "__name__", 8, "a|bc|d", 6, 0, &e), 0);
  assert_int_equal(rc_matcher_literals(&m), 3);
  rc_matcher_literal(&m, 1, &p, &len);
  assert_int_equal(len, 2);
  assert_memory_equal(p, "bc", 2);
  assert_int_equal(m.empty_matches, 0);
  rc_matcher_close(&m);
  rc_matcher_close(&m); /* idempotent */
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "x", 1, "a|", 2, 0, &e), 0);
  assert_int_equal(rc_matcher_literals(&m), 0); /* "" is in the set: not a fixed name */
  assert_int_equal(m.empty_matches, 1);
  rc_matcher_close(&m);
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_NE, "x", 1, "a", 1, 0, &e), 0);
  assert_int_equal(rc_matcher_literals(&m), 0);
  assert_int_equal(m.empty_matches, 1);
  assert_int_equal(rc_matcher_matches(&m, NULL, NULL, 0), 1);
  rc_matcher_close(&m);
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "x", 1, "a.c", 3, 0, &e), 0);
  assert_int_equal(rc_matcher_literals(&m), 0);
  /* No scratch: still correct (slow path). */
  assert_int_equal(rc_matcher_matches(&m, NULL, "abc", 3), 1);
  assert_int_equal(rc_matcher_matches(&m, NULL, "abcd", 4), 0);
  rc_matcher_close(&m);
  /* Many literal alternatives (a host list): no regex engine, a sorted binary search, and no
   * PCRE2 size limit; the same list with one metacharacter needs PCRE2, which refuses it
   * cleanly once the compiled pattern passes 64 KiB. */
  enum { NHOSTS = 6000 };
  char *big = malloc(NHOSTS * 24 + 16);
  size_t bl = 0;
  for (int i = 0; i < NHOSTS; i++)
    bl += (size_t)sprintf(big + bl, "%shost-%d:9100", i ? "|" : "", (i * 7919) % NHOSTS);
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "x", 1, big, bl, 0, &e), 0);
  assert_int_equal(rc_matcher_literals(&m), NHOSTS);
  assert_null(m.re);
  rc_matcher_scratch_t *scr = rc_matcher_scratch_new();
  char host[32];
  for (int i = 0; i < NHOSTS; i += 97) {
    int hl = sprintf(host, "host-%d:9100", i);
    assert_int_equal(rc_matcher_matches(&m, scr, host, (size_t)hl), 1);
    host[hl - 1] = '1';
    assert_int_equal(rc_matcher_matches(&m, scr, host, (size_t)hl), 0);
  }
  assert_int_equal(rc_matcher_matches(&m, scr, "", 0), 0);
  rc_matcher_close(&m);
  memcpy(big + bl, "|x.*", 5);
  int rc = rc_matcher_init(&m, RC_MATCH_RE, "x", 1, big, bl + 4, 0, &e);
  if (rc == 0) rc_matcher_close(&m); /* a PCRE2 built with a larger link size may accept it */
  else assert_non_null(strstr(e.msg, "too large"));
  free(big);
  rc_matcher_scratch_free(scr);
  assert_string_equal(rc_match_op_str(RC_MATCH_NRE), "!~");

  /* Selector built by hand: sorted by name, stable among equal names. */
  rc_selector_t *s = rc_selector_new();
  assert_int_equal(rc_selector_add(s, RC_MATCH_EQ, "z", 1, "1", 1, 0, &e), 0);
  assert_int_equal(rc_selector_add(s, RC_MATCH_RE, "a", 1, "x.*", 3, 0, &e), 0);
  assert_int_equal(rc_selector_add(s, RC_MATCH_NE, "a", 1, "xy", 2, 0, &e), 0);
  assert_int_equal(rc_selector_add(s, RC_MATCH_RE, "a", 1, "(", 1, 0, &e), RC_EPARSE);
  assert_int_equal(s->n, 3);
  assert_string_equal(s->m[0].name, "a");
  assert_int_equal(s->m[0].op, RC_MATCH_RE);
  assert_int_equal(s->m[1].op, RC_MATCH_NE);
  assert_string_equal(s->m[2].name, "z");
  rc_selector_free(s);
  rc_selector_free(NULL);
  rc_matcher_scratch_free(NULL);
}

/* The literal prefix a regex match must start with (checked before calling PCRE2). */
static void test_regex_prefix(void **st) {
  (void)st;
  static const struct {
    const char *re, *prefix;
  } t[] = {
      {"foo.*", "foo"},       {"ab*", "a"},
      {"ab?c", "a"},          {"a{2}", ""},
      {"ab{2}c", "a"},        {"a|b", ""},
      {"foo.*|bar", ""},      {"(?i)abc", ""},
      {"\\.foo.*", ".foo"},   {"\\Qa.b\\E.*", "a.b"},
      {"^abc.*", "abc"},      {"abc$x*", "abc"},
      {"a\\bc", "a"},         {"\xc3\xa9t\xc3\xa9.*", "\xc3\xa9t\xc3\xa9"},
      {"a{,3}.*", "a{,3}"},   {"10\\.0\\..*", "10.0."},
      {"(ab)c", ""},          {"a(b|c)", "a"},
      {"[a]bc", ""},          {"ab(?i)c.*", "ab"},
      {"a\\x{D800}b.*", "a"},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(t); i++) {
    rc_matcher_t m;
    rc_err_t e;
    assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "x", 1, t[i].re, strlen(t[i].re), 0, &e), 0);
    /* Literal-only patterns take the literal fast path and need no prefix. */
    if (m.kind == 0) {
      rc_matcher_close(&m);
      continue;
    }
    if (m.prefix_len != strlen(t[i].prefix) ||
        (m.prefix_len && memcmp(m.prefix, t[i].prefix, m.prefix_len) != 0))
      fail_msg("%s: prefix \"%.*s\", want \"%s\"", t[i].re, (int)m.prefix_len,
               m.prefix ? m.prefix : "", t[i].prefix);
    rc_matcher_close(&m);
  }
}

/* A pattern that backtracks exponentially hits PCRE2's match limit: counted, and the matcher
 * does not hold for either op. */
static void test_regex_limits(void **st) {
  (void)st;
  for (unsigned flags = 0; flags <= RC_MATCHER_NO_JIT; flags += RC_MATCHER_NO_JIT) {
    rc_matcher_t re, nre;
    rc_err_t e;
    /* The trailing 'z' defeats PCRE2's required-character shortcut. */
    const char *pat = "(x+x+)+y";
    assert_int_equal(rc_matcher_init(&re, RC_MATCH_RE, "x", 1, pat, strlen(pat), flags, &e), 0);
    assert_int_equal(rc_matcher_init(&nre, RC_MATCH_NRE, "x", 1, pat, strlen(pat), flags, &e), 0);
    char v[64];
    memset(v, 'x', 40);
    memcpy(v + 40, "yz", 2);
    rc_matcher_scratch_t *scr = rc_matcher_scratch_new();
    assert_int_equal(rc_matcher_matches(&re, scr, v, 42), 0);
    assert_int_equal(rc_matcher_matches(&nre, scr, v, 42), 0);
    assert_int_equal(rc_matcher_scratch_errors(scr), 2);
    /* Normal input is unaffected. */
    assert_int_equal(rc_matcher_matches(&re, scr, "xxy", 3), 1);
    assert_int_equal(rc_matcher_matches(&nre, scr, "xxyz", 4), 1);
    rc_matcher_scratch_free(scr);
    rc_matcher_close(&re);
    rc_matcher_close(&nre);
  }
}

/* Values that are not UTF-8 (never produced by the decoder) neither crash nor match a regex
 * that needs a character there. */
static void test_invalid_utf8_value(void **st) {
  (void)st;
  rc_matcher_t m;
  rc_err_t e;
  rc_matcher_scratch_t *scr = rc_matcher_scratch_new();
  assert_int_equal(rc_matcher_init(&m, RC_MATCH_RE, "x", 1, "a.c", 3, 0, &e), 0);
  assert_int_equal(rc_matcher_matches(&m, scr,
                                      "a\xff"
                                      "c",
                                      3),
                   0);
  assert_int_equal(rc_matcher_matches(&m, scr, "a\xc3", 2), 0);
  assert_int_equal(rc_matcher_scratch_errors(scr), 0);
  rc_matcher_close(&m);
  rc_matcher_scratch_free(scr);
}

/* Matching one shared selector from several threads, each with its own scratch. */
#define NTHREADS 4
static rc_selector_t *g_shared;
static int g_thread_fail;

static void worker(void *arg) {
  (void)arg;
  rc_matcher_scratch_t *scr = rc_matcher_scratch_new();
  char val[32];
  for (int i = 0; i < 20000; i++) {
    int len = snprintf(val, sizeof(val), "api-%d", i % 100);
    rc_label_t l[] = {{"__name__", "up", 8, 2}, {"job", val, 3, (uint32_t)len}};
    int want = (i % 100) % 7 == 0 || (i % 100) >= 90; /* api-0,7,..,98 or api-9x */
    if (rc_selector_matches(g_shared, scr, l, 2) != want) g_thread_fail = 1;
  }
  rc_matcher_scratch_free(scr);
}

static void test_threads(void **st) {
  (void)st;
  const char *sel = "up{job=~\"api-(0|7|14|21|28|35|42|49|56|63|70|77|84|91|98|9[0-9])\"}";
  rc_err_t e;
  assert_int_equal(rc_selector_parse(sel, strlen(sel), 0, &g_shared, &e), 0);
  uv_thread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) assert_int_equal(uv_thread_create(&t[i], worker, NULL), 0);
  for (int i = 0; i < NTHREADS; i++) uv_thread_join(&t[i]);
  assert_int_equal(g_thread_fail, 0);
  rc_selector_free(g_shared);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_semantics_jit),      cmocka_unit_test(test_semantics_interpreter),
      cmocka_unit_test(test_bad_input),          cmocka_unit_test(test_parse_at),
      cmocka_unit_test(test_format_roundtrip),   cmocka_unit_test(test_matcher_api),
      cmocka_unit_test(test_regex_prefix),       cmocka_unit_test(test_regex_limits),
      cmocka_unit_test(test_invalid_utf8_value), cmocka_unit_test(test_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
