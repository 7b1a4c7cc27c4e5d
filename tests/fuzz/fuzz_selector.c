/* fuzz_selector.c: the PromQL selector parser and the RE2-to-PCRE2 regex translator on
 * arbitrary input. The first byte picks the mode:
 *   even: parse the rest as a selector. A parse error must carry line/col >= 1 and a one-line
 *         reason. A selector that parses must print, re-parse and print again to the same
 *         text, and both copies must agree on a few fixed label sets.
 *   odd:  compile the rest as a regex (=~). If it compiles, the JIT and the interpreter must
 *         agree on several subjects (the input itself among them), except where one of them
 *         hit a PCRE2 limit, and so must the matcher with its literal-prefix pre-check off.
 * Any disagreement aborts, so the replay driver and libFuzzer report it as a crash. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "selector.h"

static rc_matcher_scratch_t *scratch(void) {
  static rc_matcher_scratch_t *s; /* one per process: reachable, so not a leak */
  if (s == NULL && (s = rc_matcher_scratch_new()) == NULL) abort();
  return s;
}

static const rc_label_t set_a[] = {{"__name__", "up", 8, 2}, {"job", "api", 3, 3}};
static const rc_label_t set_b[] = {{"A", "x\ny", 1, 3},
                                   {"__name__", "http_requests_total", 8, 19},
                                   {"code", "503", 4, 3},
                                   {"job", "", 3, 0}};
static const rc_label_t set_c[] = {{"job", "\xc3\xa9t\xc3\xa9", 3, 6}};

static void check_error(const rc_err_t *e) {
  if (e->code == RC_ENOMEM) return;
  if (e->line < 1 || e->col < 1 || e->msg[0] == '\0' || strchr(e->msg, '\n') != NULL) abort();
}

static void fuzz_parse(const char *in, size_t n) {
  rc_selector_t *s, *s2;
  rc_err_t e = {0};
  if (rc_selector_parse(in, n, 0, &s, &e) != 0) {
    check_error(&e);
    return;
  }
  char buf[8192], buf2[8192];
  size_t len = rc_selector_format(s, buf, sizeof(buf));
  if (len < sizeof(buf)) {
    if (rc_selector_parse(buf, len, 0, &s2, &e) != 0) {
      if (e.code == RC_ENOMEM) goto out;
      abort(); /* we printed something we cannot read back */
    }
    size_t len2 = rc_selector_format(s2, buf2, sizeof(buf2));
    if (len2 != len || memcmp(buf, buf2, len) != 0) abort();
    rc_matcher_scratch_t *scr = scratch();
    if (rc_selector_matches(s, scr, set_a, 2) != rc_selector_matches(s2, scr, set_a, 2) ||
        rc_selector_matches(s, scr, set_b, 4) != rc_selector_matches(s2, scr, set_b, 4) ||
        rc_selector_matches(s, scr, set_c, 1) != rc_selector_matches(s2, scr, set_c, 1))
      abort();
    rc_selector_free(s2);
  }
out:
  rc_selector_free(s);
}

static void fuzz_regex(const char *in, size_t n) {
  rc_matcher_t jit, interp;
  rc_err_t e = {0};
  if (rc_matcher_init(&jit, RC_MATCH_RE, "x", 1, in, n, 0, &e) != 0) {
    if (e.code == RC_EPARSE && (e.col < 1 || e.msg[0] == '\0')) abort();
    return;
  }
  if (rc_matcher_init(&interp, RC_MATCH_RE, "x", 1, in, n, RC_MATCHER_NO_JIT, &e) != 0) abort();
  static rc_matcher_scratch_t *s2;
  if (s2 == NULL && (s2 = rc_matcher_scratch_new()) == NULL) abort();
  rc_matcher_scratch_t *s1 = scratch();
  const char *subj[] = {
      in,         "",  "a", "foo",          "foobar", "\n", "503", "aaaaaaaaaaaaaaaaaaaaaaaa",
      "\xc3\xa9", "K", "k", "\xe2\x84\xaa", "_",      " "};
  size_t len[RC_ARRAY_SIZE(subj)];
  len[0] = n;
  for (size_t i = 1; i < RC_ARRAY_SIZE(subj); i++) len[i] = strlen(subj[i]);
  /* The same matcher without its literal-prefix pre-check (a shallow copy, never closed):
   * the prefix must be a necessary condition, never change an answer. */
  rc_matcher_t noprefix = interp;
  noprefix.prefix_len = 0;
  for (size_t i = 0; i < RC_ARRAY_SIZE(subj); i++) {
    uint64_t e1 = rc_matcher_scratch_errors(s1), e2 = rc_matcher_scratch_errors(s2);
    int a = rc_matcher_matches(&jit, s1, subj[i], len[i]);
    int b = rc_matcher_matches(&interp, s2, subj[i], len[i]);
    int c = rc_matcher_matches(&noprefix, s2, subj[i], len[i]);
    if ((a != b || b != c) && rc_matcher_scratch_errors(s1) == e1 &&
        rc_matcher_scratch_errors(s2) == e2)
      abort();
  }
  /* "" is what a missing label looks like: the cached answer must equal a real match. */
  if (jit.empty_matches != rc_matcher_matches(&interp, s2, "", 0) &&
      rc_matcher_scratch_errors(s2) == 0)
    abort();
  rc_matcher_close(&jit);
  rc_matcher_close(&interp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  if (data[0] % 2 == 0)
    fuzz_parse((const char *)data + 1, size - 1);
  else
    fuzz_regex((const char *)data + 1, size - 1);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "\x00up",
      "\x00http_requests_total{job=\"api\", code=~\"5..\", method!=\"GET\", path!~`/health.*`}",
      "\x00{__name__=~\"x.*\", 'a'=\"b\\n\\u00e9\\x41\\101\"}",
      "\x00{\"my.metric\", \"a.b\"=\"c\",} # comment",
      "\x00up{\n job=\"a\\\"b\",\n}",
      "\x01(?i)foo|bar.*",
      "\x01[[:alpha:]\\d_-]+\\.(com|org){1,3}",
      "\x01\\p{Greek}+\\x{1F600}?\\Qa.b\\E[^\\s]",
      "\x01(?P<n>a*)(?:b+?|c{2,})(?m)^x$",
      "\x01a{0}\\b\\B\\A\\z(?-s:.)[\\W\\S]",
  };
  /* Lengths: each seed starts with its mode byte, which may be NUL. */
  for (size_t i = 0; i < RC_ARRAY_SIZE(seeds); i++)
    emit((const uint8_t *)seeds[i], 1 + strlen(seeds[i] + 1));
}
