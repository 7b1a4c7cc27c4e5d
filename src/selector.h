/* selector.h: PromQL label matchers and series selectors — `name{a="b", c=~"d.*", e!="f"}` —
 * their parser, and matching them against a label set.
 *
 * What lives here: a matcher is {label name, op (= != =~ !~), value}; a selector is a list of
 * matchers that must all hold (AND). rc_selector_parse() reads the PromQL selector syntax,
 * including Prometheus 3 quoted names (`{"my.metric", "a.b"="c"}`), comments and trailing
 * commas, with PromQL string escapes, and reports errors with 1-based line and column (columns
 * count characters, not bytes) and a one-line reason. The parser is self-contained so that the
 * PromQL expression parser can call rc_selector_parse_at() in the middle of an expression.
 * It does not know range selectors, offsets or `@`; those belong to the PromQL parser.
 *
 * Semantics are PromQL's (Prometheus model/labels/matcher.go, regexp.go; promql/parser):
 *   - a label the series does not have behaves as the empty string: {foo=""} matches series
 *     without foo, {foo!=""} requires it, {foo=~".*"} matches its absence;
 *   - regexes are fully anchored: Prometheus compiles "^(?s:" + re + ")$", so =~"foo" does not
 *     match "foobar" and `.` matches a newline unless the pattern says (?-s);
 *   - regex syntax is Go's RE2 (regexp/syntax with the Perl flags). We compile with PCRE2
 *     (JIT when available), after a translator in selector.c has checked the pattern against
 *     RE2's grammar and rewritten the few constructs whose meaning differs between the two
 *     engines. Rejected because RE2 rejects them (the error names the construct and column):
 *       backreferences (\1, \k<n>, (?P=n)), lookahead/lookbehind ((?=, (?!, (?<=, (?<!),
 *       atomic groups (?>, possessive quantifiers (a*+), stacked quantifiers (a**), \C,
 *       recursion and subroutine calls ((?R), (?1), (?&n), (?P>n)), conditionals (?(,
 *       callouts (?C, comments (?#, branch reset (?|, backtracking verbs (*VERB), inline
 *       flags other than i m s U, \G \K \Z \R \X \h \H \V \N \e \c \g \o and every other
 *       letter escape RE2 lacks, [\b] (RE2 has no backspace escape), repeat counts over 1000
 *       (also nested, as RE2 multiplies them), invalid UTF-8.
 *     Rewritten so PCRE2 agrees with RE2: \s is [\t\n\f\r ] (PCRE2 adds \v), \v is U+000B (not
 *     a class), octal \12 is a character (not a backreference), `$` means end of text
 *     (PCRE2_DOLLAR_ENDONLY), (?m)^ also matches after a final newline (PCRE2_ALT_CIRCUMFLEX),
 *     \d \w \s and POSIX classes are ASCII and fold under (?i) as RE2 folds them, captures
 *     become non-capturing groups, literal braces and brackets are escaped.
 *     Known differences left: Unicode property names PCRE2 knows and Go does not (binary
 *     properties such as \p{Alphabetic}) are accepted; (?i) does not widen \p{Lu} as Go does;
 *     on a value that is not valid UTF-8 a regex sees no character where Go sees U+FFFD (label
 *     values reaching the store are validated UTF-8, so this never arises from remote write).
 *
 * Ownership: a matcher owns copies of its name and value and its compiled regex; a selector
 * owns its matchers. Results of the matching functions borrow nothing.
 *
 * Threads: matchers and selectors are immutable after construction and may be matched from
 * any number of threads at once, PROVIDED each thread passes its own rc_matcher_scratch_t
 * (PCRE2 match data and the JIT stack must not be shared between threads). Construction,
 * parsing and freeing are single-threaded per object.
 */
#ifndef RC_SELECTOR_H
#define RC_SELECTOR_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "rc.h"
#include "rw_labels.h" /* rc_bytes_cmp: the label order matching relies on */

typedef enum rc_match_op {
  RC_MATCH_EQ = 0, /* =  */
  RC_MATCH_NE,     /* != */
  RC_MATCH_RE,     /* =~ */
  RC_MATCH_NRE,    /* !~ */
} rc_match_op_t;

/* Flags for rc_matcher_init and the selector parser. */
#define RC_MATCHER_NO_JIT 0x1u       /* interpret even when PCRE2 has a JIT (tests the fallback) */
#define RC_SELECTOR_ALLOW_EMPTY 0x2u /* skip PromQL's "at least one non-empty matcher" rule */

/* Longest regex accepted, in bytes (Go has no fixed cap; this bounds compile time and memory). */
#define RC_MATCHER_MAX_REGEX (256u * 1024u)

struct pcre2_real_code_8;

/* Read the public fields; never write them. */
typedef struct rc_matcher {
  rc_match_op_t op;
  uint32_t name_len, value_len;
  char *name;  /* owned, NUL-terminated (may also contain NUL bytes: use name_len) */
  char *value; /* owned, NUL-terminated; for =~ and !~ the regex as written */
  /* private */
  uint8_t kind;          /* how value is tested: see selector.c */
  uint8_t empty_matches; /* result of matching "" (also the answer for a missing label) */
  uint8_t jit;           /* the regex was JIT-compiled */
  uint32_t nalts;        /* literal alternatives (kind LITSET) */
  uint32_t *alts;        /* owned: offset, length pairs into value */
  uint32_t prefix_len;   /* a regex match must start with these bytes (checked before PCRE2) */
  char *prefix;          /* owned */
  struct pcre2_real_code_8 *re;
} rc_matcher_t;

typedef struct rc_selector {
  rc_matcher_t *m; /* owned; sorted by name (bytewise), source order among equal names */
  uint32_t n, cap;
} rc_selector_t;

/* Per-thread matching state: PCRE2 match data (one ovector pair is enough: we only ask
 * "did it match"), a match context with limits, and a JIT stack. Opaque. */
typedef struct rc_matcher_scratch rc_matcher_scratch_t;

/* ---- scratch ---------------------------------------------------------------------------- */

/* Returns a new scratch, or NULL when out of memory. One per thread; never shared. */
rc_matcher_scratch_t *rc_matcher_scratch_new(void);
void rc_matcher_scratch_free(rc_matcher_scratch_t *s); /* NULL is a no-op */
/* Regex matches that ended in a PCRE2 error (match limit, JIT stack) since creation; each
 * counted as "the matcher does not hold", whatever the op. */
uint64_t rc_matcher_scratch_errors(const rc_matcher_scratch_t *s);

/* ---- matchers --------------------------------------------------------------------------- */

/* Builds a matcher, copying name and value. Regexes are checked against RE2's grammar and
 * compiled. Returns 0; RC_EPARSE for a bad regex (err->col is the 1-based character column
 * inside value, err->msg the reason); RC_EINVAL for a bad op or an over-long regex;
 * RC_ENOMEM. On failure *m needs no close. err may be NULL. */
int rc_matcher_init(rc_matcher_t *m, rc_match_op_t op, const char *name, size_t name_len,
                    const char *value, size_t value_len, unsigned flags, rc_err_t *err);
void rc_matcher_close(rc_matcher_t *m); /* idempotent on a zeroed or closed matcher */

/* Does the matcher hold for value v[0..len)? Pass v = NULL, len = 0 for a missing label.
 * Returns 1 or 0. scr may be NULL only for matchers without a regex. Thread rules above. */
int rc_matcher_matches(const rc_matcher_t *m, rc_matcher_scratch_t *scr, const char *v, size_t len);

/* If the matcher holds for exactly a fixed set of non-empty values — `="x"`, or `=~` a plain
 * literal or an alternation of literals such as "a|b|c" — returns how many (the selector
 * index files selectors under them); otherwise 0. rc_matcher_literal() fetches value i
 * (borrowed from m, not NUL-terminated). */
uint32_t rc_matcher_literals(const rc_matcher_t *m);
void rc_matcher_literal(const rc_matcher_t *m, uint32_t i, const char **p, uint32_t *len);

/* Returns "=", "!=", "=~" or "!~". */
const char *rc_match_op_str(rc_match_op_t op);

/* ---- selectors -------------------------------------------------------------------------- */

/* An empty selector (matches every series until matchers are added). NULL if out of memory. */
rc_selector_t *rc_selector_new(void);
void rc_selector_free(rc_selector_t *s); /* NULL is a no-op */

/* Adds a matcher (see rc_matcher_init), keeping the list sorted by name. */
int rc_selector_add(rc_selector_t *s, rc_match_op_t op, const char *name, size_t name_len,
                    const char *value, size_t value_len, unsigned flags, rc_err_t *err);

/* Parses a whole selector: text[0..len) must hold exactly one selector, with optional
 * whitespace and # comments around it. On success *out is a new selector (caller frees).
 * Errors: RC_EPARSE with err->line/col/msg; RC_ENOMEM. flags: RC_MATCHER_NO_JIT,
 * RC_SELECTOR_ALLOW_EMPTY. */
int rc_selector_parse(const char *text, size_t len, unsigned flags, rc_selector_t **out,
                      rc_err_t *err);

/* Parses one selector starting at byte offset `start` (leading whitespace and comments are
 * skipped) and stops right after it: after the closing brace, or after the metric name when
 * no brace follows. *end receives the offset where parsing stopped. Error positions are
 * relative to text, so an expression parser can pass its whole input. */
int rc_selector_parse_at(const char *text, size_t len, size_t start, size_t *end, unsigned flags,
                         rc_selector_t **out, rc_err_t *err);

/* Does the selector hold for this label set? labels must be sorted by name (bytewise,
 * rc_bytes_cmp order) with unique names, as rc_series_t guarantees; unsorted input gives
 * wrong answers. Walks labels and matchers together: O(n + matchers), no allocation. */
int rc_selector_matches(const rc_selector_t *s, rc_matcher_scratch_t *scr, const rc_label_t *labels,
                        uint32_t n);

/* The selector as PromQL text, canonical (sorted matchers, Go-style escapes), parseable by
 * rc_selector_parse into an equal selector. Writes at most cap bytes including the NUL and
 * returns the length the full text needs (snprintf style). */
size_t rc_selector_format(const rc_selector_t *s, char *buf, size_t cap);

#endif
