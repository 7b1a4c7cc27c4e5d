/* test_promql.c: the PromQL subset parser (promql.c). A must-parse table with each
 * expression's canonical text, which must also be a fixed point (format -> parse -> format
 * gives the same text and an equal tree); a must-not-parse table with code, line, column and
 * reason; precedence and associativity checked on the tree itself; node types, positions,
 * the selector list and the longest range; numbers and durations as PromQL reads them; the
 * depth limit on hostile nesting; every truncation of a few long expressions; the printer's
 * snprintf contract. Facts come from Prometheus promql/parser (lex.go, generated_parser.y,
 * parse.go) and docs/querying/operators.md. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "promql.h"

static rc_pq_expr_t *parse_ok(const char *s) {
  rc_pq_expr_t *e = NULL;
  rc_err_t err = {0};
  int rc = rc_pq_parse(s, strlen(s), 0, &e, &err);
  if (rc != 0) fail_msg("%s: unexpected error %d at %d:%d: %s", s, rc, err.line, err.col, err.msg);
  return e;
}

static char *fmt(const rc_pq_expr_t *e) {
  size_t n = rc_pq_format(e, NULL, 0);
  char *b = malloc(n + 1);
  assert_non_null(b);
  assert_int_equal(rc_pq_format(e, b, n + 1), n);
  return b;
}

static int same_num(double a, double b) {
  return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

/* Structural equality; selectors compared by their canonical text. */
static int tree_eq(const rc_pq_node_t *a, const rc_pq_node_t *b) {
  if (a == NULL || b == NULL) return a == b;
  if (a->kind != b->kind || a->type != b->type) return 0;
  switch (a->kind) {
    case RC_PQ_NUMBER: return same_num(a->num, b->num);
    case RC_PQ_RANGE_FN:
      if (a->fn != b->fn || a->range_ms != b->range_ms || !same_num(a->param, b->param)) return 0;
      /* fall through */
    case RC_PQ_SELECTOR: {
      char x[1024], y[1024];
      rc_selector_format(a->sel, x, sizeof(x));
      rc_selector_format(b->sel, y, sizeof(y));
      return strcmp(x, y) == 0;
    }
    case RC_PQ_AGG:
      if (a->agg != b->agg || a->without != b->without) return 0;
      break;
    case RC_PQ_BINARY:
      if (a->op != b->op || a->return_bool != b->return_bool || a->matching != b->matching ||
          a->ignoring != b->ignoring)
        return 0;
      break;
    default: break;
  }
  if (a->nlabels != b->nlabels) return 0;
  for (uint32_t i = 0; i < a->nlabels; i++)
    if (strcmp(a->labels[i], b->labels[i]) != 0) return 0;
  return tree_eq(a->args[0], b->args[0]) && tree_eq(a->args[1], b->args[1]);
}

/* ---- must parse ------------------------------------------------------------------------- */

static const struct {
  const char *in, *canon;
} valid[] = {
    /* numbers (strconv.ParseInt base 0, then ParseFloat) */
    {"1", "1"},
    {"1.5", "1.5"},
    {".5", "0.5"},
    {"5.", "5"},
    {"1e3", "1000"},
    {"2.5E-3", "0.0025"},
    {"1e-7", "1e-07"},
    {"1e300", "1e+300"},
    {"0x1f", "31"},
    {"0X1F", "31"},
    {"010", "8"},    /* a leading 0 means octal, as Go's ParseInt(s, 0, 64) reads it */
    {"019", "19"},   /* not octal: ParseInt fails, ParseFloat reads decimal */
    {"1_000", "1000"},
    {"Inf", "Inf"},
    {"+inf", "Inf"},
    {"-INF", "-Inf"},
    {"NaN", "NaN"},
    {"nan", "NaN"},
    {"-0", "-0"},
    {"((1))", "1"},
    {"-(2)", "-2"},
    {"0.30000000000000004", "0.30000000000000004"},
    /* scalar arithmetic and precedence */
    {"1 + 2 * 3", "1 + 2 * 3"},
    {"(1 + 2) * 3", "(1 + 2) * 3"},
    {"1 - 2 - 3", "1 - 2 - 3"},
    {"1 - (2 - 3)", "1 - (2 - 3)"},
    {"2 ^ 3 ^ 2", "2 ^ 3 ^ 2"},
    {"(2 ^ 3) ^ 2", "(2 ^ 3) ^ 2"},
    {"-2 ^ 2", "-2 ^ 2"},
    {"(-2) ^ 2", "(-2) ^ 2"},
    {"2 ^ -1", "2 ^ -1"},
    {"-(1 + 2)", "-(1 + 2)"},
    {"-(2 * 3)", "-(2 * 3)"},
    {"- -1", "1"},
    {"1 % 3 / 4", "1 % 3 / 4"},
    {"1 == bool 1", "1 == bool 1"},
    {"1 <= bool 2 + 3", "1 <= bool 2 + 3"},
    /* selectors */
    {"up", "up"},
    {"up{job=\"api\"}", "up{job=\"api\"}"},
    {"http_requests_total{job=\"api\", code=~\"5..\"}",
     "http_requests_total{code=~\"5..\",job=\"api\"}"},
    {"{__name__=\"up\", job!=\"\"}", "up{job!=\"\"}"},
    {"{\"my.metric\"}", "{__name__=\"my.metric\"}"},
    {"a:b:c", "a:b:c"},
    {"sum", "sum"},       /* aggregation keywords are metric names when no ( follows */
    {"offset", "offset"},
    {"by{a=\"b\"}", "by{a=\"b\"}"},
    {"rate", "rate"},     /* so are function names */
    {"{__name__=\"bool\"}", "{__name__=\"bool\"}"}, /* but bool is not: keep the matcher */
    {"{__name__=\"Inf\", a=\"b\"}", "{__name__=\"Inf\",a=\"b\"}"},
    {"  up  # a comment\n", "up"},
    /* range functions */
    {"rate(x[5m])", "rate(x[5m])"},
    {"increase(x{a=\"b\"}[1h30m])", "increase(x{a=\"b\"}[1h30m])"},
    {"irate(x[90s])", "irate(x[1m30s])"},
    {"delta(x[1d])", "delta(x[1d])"},
    {"idelta(x[500ms])", "idelta(x[500ms])"},
    {"resets(x[1w])", "resets(x[1w])"},
    {"changes(x[1y])", "changes(x[1y])"},
    {"avg_over_time(x[5m])", "avg_over_time(x[5m])"},
    {"min_over_time(x[5m])", "min_over_time(x[5m])"},
    {"max_over_time(x[5m])", "max_over_time(x[5m])"},
    {"sum_over_time(x[5m])", "sum_over_time(x[5m])"},
    {"count_over_time(x[5m])", "count_over_time(x[5m])"},
    {"last_over_time(x[5m])", "last_over_time(x[5m])"},
    {"present_over_time(x[5m])", "present_over_time(x[5m])"},
    {"stddev_over_time(x[5m])", "stddev_over_time(x[5m])"},
    {"stdvar_over_time(x[5m])", "stdvar_over_time(x[5m])"},
    {"quantile_over_time(0.9, x[5m])", "quantile_over_time(0.9, x[5m])"},
    {"quantile_over_time(-(0.5), x[5m])", "quantile_over_time(-0.5, x[5m])"},
    {"rate(x[300])", "rate(x[5m])"}, /* Prometheus 3: a number of seconds */
    {"rate(x[1.5])", "rate(x[1s500ms])"},
    {"rate((x[5m]))", "rate(x[5m])"},
    {"rate ( x [ 5m ] )", "rate(x[5m])"},
    {"rate(x[60m])", "rate(x[1h])"},
    /* histogram_quantile */
    {"histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
     "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))"},
    {"histogram_quantile(1 - 0.01, rate(h[5m]))", "histogram_quantile(1 - 0.01, rate(h[5m]))"},
    /* aggregations */
    {"sum(x)", "sum(x)"},
    {"sum by (job) (x)", "sum by (job) (x)"},
    {"sum(x) by (job, instance,)", "sum by (job, instance) (x)"},
    {"avg without (a) (x)", "avg without (a) (x)"},
    {"min without () (x)", "min without () (x)"},
    {"max by () (x)", "max(x)"},
    {"count(rate(x[5m]))", "count(rate(x[5m]))"},
    {"SUM BY (Job) (x)", "sum by (Job) (x)"},
    {"sum by (sum, by, on, bool) (x)", "sum by (sum, by, on, bool) (x)"},
    {"sum(sum(x))", "sum(sum(x))"},
    /* vector arithmetic and comparisons */
    {"a + b * c", "a + b * c"},
    {"(a + b) * c", "(a + b) * c"},
    {"a / on(job) b", "a / on (job) b"},
    {"a - ignoring(x, y) b", "a - ignoring (x, y) b"},
    {"a - ignoring() b", "a - ignoring () b"},
    {"a > bool on (job) b", "a > bool on (job) b"},
    {"x > 0.5", "x > 0.5"},
    {"0.5 < x", "0.5 < x"},
    {"x != bool 0", "x != bool 0"},
    {"-x", "-x"},
    {"+x", "x"},
    {"- - x", "--x"},
    {"-x ^ 2", "-x ^ 2"},
    {"(-x) ^ 2", "(-x) ^ 2"},
    {"-x * 2", "-x * 2"},
    {"a == b == c", "a == b == c"},
    {"a == (b == c)", "a == (b == c)"},
    {"sum(rate(errors[5m])) / sum(rate(requests[5m])) > 0.05",
     "sum(rate(errors[5m])) / sum(rate(requests[5m])) > 0.05"},
    {"sum by (service) (rate(http_requests_total{code=~\"5..\"}[5m]))\n"
     "  / sum by (service) (rate(http_requests_total[5m]))",
     "sum by (service) (rate(http_requests_total{code=~\"5..\"}[5m])) / sum by (service) "
     "(rate(http_requests_total[5m]))"},
};

static void test_valid(void **st) {
  (void)st;
  for (size_t i = 0; i < RC_ARRAY_SIZE(valid); i++) {
    rc_pq_expr_t *e = parse_ok(valid[i].in);
    char *a = fmt(e);
    if (strcmp(a, valid[i].canon) != 0)
      fail_msg("%s: formatted as %s, want %s", valid[i].in, a, valid[i].canon);
    /* Fixed point: the canonical text parses into the same tree and prints the same. */
    rc_pq_expr_t *e2 = parse_ok(a);
    char *b = fmt(e2);
    if (strcmp(a, b) != 0) fail_msg("%s: not a fixed point: %s then %s", valid[i].in, a, b);
    if (!tree_eq(e->root, e2->root)) fail_msg("%s: tree changed after a round trip", valid[i].in);
    assert_string_equal(e->text, valid[i].in);
    free(a);
    free(b);
    rc_pq_free(e);
    rc_pq_free(e2);
  }
}

/* ---- must not parse --------------------------------------------------------------------- */

static const struct {
  const char *in;
  int code, line, col;
  const char *msg;
} invalid[] = {
    /* syntax */
    {"", RC_EPARSE, 1, 1, "no expression found"},
    {"  # nothing\n", RC_EPARSE, 2, 1, "no expression found"},
    {"1 +", RC_EPARSE, 1, 4, "unexpected end of input, expected an expression"},
    {"(1 + 2", RC_EPARSE, 1, 1, "unclosed left parenthesis"},
    {"1 + 2)", RC_EPARSE, 1, 6, "unexpected right parenthesis"},
    {"x y", RC_EPARSE, 1, 3, "unexpected identifier \"y\", expected an operator or end of input"},
    {"x $", RC_EPARSE, 1, 3, "unexpected character: '$'"},
    {"x = 1", RC_EPARSE, 1, 3, "unexpected \"=\""},
    {"x =~ 1", RC_EPARSE, 1, 3, "unexpected character after '='"},
    {"x ! 1", RC_EPARSE, 1, 3, "unexpected character after '!'"},
    {"1a", RC_EPARSE, 1, 1, "bad number or duration syntax: \"1a\""},
    {"1e", RC_EPARSE, 1, 1, "bad number or duration syntax"},
    {"0x", RC_EPARSE, 1, 1, "bad number or duration syntax"},
    {"1__0", RC_EPARSE, 1, 1, "bad number or duration syntax"},
    {"1e400", RC_EPARSE, 1, 1, "value out of range"},
    {"0x8000000000000000", RC_EPARSE, 1, 1, "value out of range"},
    {"x{", RC_EPARSE, 1, 3, "unexpected end of input inside braces"},
    {"x{a=1}", RC_EPARSE, 1, 5, ""}, /* selector.c's message */
    {"{a=\"\"}", RC_EPARSE, 1, 1, "at least one non-empty matcher"},
    {"bool", RC_EPARSE, 1, 1, "unexpected \"bool\", expected an expression"},
    {"on(x)", RC_EPARSE, 1, 1, "unexpected \"on\""},
    {"x + group_left y", RC_EPARSE, 1, 5, "unexpected \"group_left\""},
    {"x == on y", RC_EPARSE, 1, 9, "in grouping opts, expected \"(\""},
    {"sum by (a:b) (x)", RC_EPARSE, 1, 9, "unexpected metric identifier \"a:b\" in grouping opts"},
    {"sum by (a b) (x)", RC_EPARSE, 1, 11, "expected \",\" or \")\""},
    {"sum by (1) (x)", RC_EPARSE, 1, 9, "expected label"},
    {"sum by (a) (x) by (b)", RC_EPARSE, 1, 16, "unexpected \"by\""},
    {"sum by (a)", RC_EPARSE, 1, 11, "unexpected end of input in aggregation, expected \"(\""},
    {"rate(x[5m],)", RC_EPARSE, 1, 12, "trailing commas not allowed"},
    {"rate(x[5m] y)", RC_EPARSE, 1, 12, "in function call, expected \",\" or \")\""},
    {"x[5m", RC_EPARSE, 1, 5, "expected \":\" or \"]\""},
    {"x[]", RC_EPARSE, 1, 3, "in subquery or range, expected a duration"},
    {"x[5M]", RC_EPARSE, 1, 3, "bad number or duration syntax"},
    {"x[1.5m]", RC_EPARSE, 1, 3, "bad number or duration syntax"},
    {"x[5m1h]", RC_EPARSE, 1, 3, "bad number or duration syntax"},
    {"x[1h1h]", RC_EPARSE, 1, 3, "bad number or duration syntax"},
    {"rate(x[0s])", RC_EPARSE, 1, 8, "duration must be greater than 0"},
    {"rate(x[0])", RC_EPARSE, 1, 8, "duration must be greater than 0"},
    {"rate(x[0.0001])", RC_EPARSE, 1, 8, "whole number of milliseconds"},
    {"rate(x[300000y])", RC_EPARSE, 1, 8, "duration out of range"},
    /* types (parse.go checkAST) */
    {"1 > 2", RC_EPARSE, 1, 3, "comparisons between scalars must use BOOL modifier"},
    {"x + bool 1", RC_EPARSE, 1, 5, "bool modifier can only be used on comparison operators"},
    {"1 + on(a) x", RC_EPARSE, 1, 5, "vector matching only allowed between instant vectors"},
    {"x * ignoring() 2", RC_EPARSE, 1, 5, "vector matching only allowed between instant vectors"},
    {"x[5m]", RC_EPARSE, 1, 1, "a range vector cannot be a rule's value"},
    {"(x[5m])", RC_EPARSE, 1, 2, "a range vector cannot be a rule's value"},
    {"x[5m] + 1", RC_EPARSE, 1, 1, "binary expression must contain only scalar and instant vector"},
    {"1 - x[5m]", RC_EPARSE, 1, 5, "binary expression must contain only scalar and instant vector"},
    {"-x[5m]", RC_EPARSE, 1, 1, "unary expression only allowed on expressions of type scalar"},
    {"rate(x)", RC_EPARSE, 1, 6, "expected type range vector in call to function \"rate\", got instant vector"},
    {"rate(1)", RC_EPARSE, 1, 6, "got scalar"},
    {"rate(x[5m], x[5m])", RC_EPARSE, 1, 1, "expected 1 argument(s) in call to \"rate\", got 2"},
    {"rate()", RC_EPARSE, 1, 1, "expected 1 argument(s) in call to \"rate\", got 0"},
    {"quantile_over_time(x[5m])", RC_EPARSE, 1, 1, "expected 2 argument(s)"},
    {"quantile_over_time(x, x[5m])", RC_EPARSE, 1, 20, "expected type scalar in call to function"},
    {"histogram_quantile(0.9, x[5m])", RC_EPARSE, 1, 25, "expected type instant vector in call to function \"histogram_quantile\", got range vector"},
    {"histogram_quantile(0.9, 1)", RC_EPARSE, 1, 25, "got scalar"},
    {"histogram_quantile(x, y)", RC_EPARSE, 1, 20, "expected type scalar"},
    {"histogram_quantile(0.9, y, z)", RC_EPARSE, 1, 1, "expected 2 argument(s)"},
    {"sum(1)", RC_EPARSE, 1, 5, "expected type instant vector in aggregation expression, got scalar"},
    {"sum(x[5m])", RC_EPARSE, 1, 5, "got range vector"},
    {"sum()", RC_EPARSE, 1, 1, "no arguments for aggregate expression provided"},
    {"sum(x, y)", RC_EPARSE, 1, 1, "expected 1, got 2"},
    {"(x)[5m]", RC_EPARSE, 1, 4, "ranges only allowed for vector selectors"},
    {"rate(x[5m])[5m]", RC_EPARSE, 1, 12, "ranges only allowed for vector selectors"},
    {"1[5m]", RC_EPARSE, 1, 2, "ranges only allowed for vector selectors"},
    {"x[5m][5m]", RC_EPARSE, 1, 6, "ranges only allowed for vector selectors"},
    {"sum(x) offset 5m", RC_EPARSE, 1, 8, "offset modifier must be preceded by"},
    {"foo(x)", RC_EPARSE, 1, 1, "unknown function \"foo\""},
    {"Rate(x[5m])", RC_EPARSE, 1, 1, "unknown function \"Rate\""}, /* functions are case-sensitive */
    /* valid PromQL outside the subset: RC_ENOTSUP naming the construct */
    {"a and b", RC_ENOTSUP, 1, 3, "set operator \"and\" is not supported"},
    {"a or b", RC_ENOTSUP, 1, 3, "set operator \"or\""},
    {"a UNLESS b", RC_ENOTSUP, 1, 3, "set operator \"unless\""},
    {"1 atan2 2", RC_ENOTSUP, 1, 3, "operator \"atan2\" is not supported"},
    {"a * on(x) group_left b", RC_ENOTSUP, 1, 11, "group_left (many-to-one matching) is not supported"},
    {"a * ignoring(x) group_right(y) b", RC_ENOTSUP, 1, 17, "group_right (one-to-many matching)"},
    {"x offset 5m", RC_ENOTSUP, 1, 3, "offset modifier is not supported"},
    {"rate(x[5m] offset 1m)", RC_ENOTSUP, 1, 12, "offset modifier is not supported"},
    {"x @ 1700000000", RC_ENOTSUP, 1, 3, "@ modifier is not supported"},
    {"rate(x[5m:1m])", RC_ENOTSUP, 1, 7, "subqueries are not supported"},
    {"max_over_time(rate(x[5m])[1h:])", RC_ENOTSUP, 1, 26, "subqueries are not supported"},
    {"abs(x)", RC_ENOTSUP, 1, 1, "function \"abs\" is not supported by ripcord's streaming evaluator"},
    {"label_replace(x, \"a\", \"b\", \"c\", \"d\")", RC_ENOTSUP, 1, 1, "function \"label_replace\""},
    {"absent(x)", RC_ENOTSUP, 1, 1, "function \"absent\""},
    {"1 + time()", RC_ENOTSUP, 1, 5, "function \"time\""},
    {"vector(1)", RC_ENOTSUP, 1, 1, "function \"vector\""},
    {"scalar(x)", RC_ENOTSUP, 1, 1, "function \"scalar\""},
    {"sort(x)", RC_ENOTSUP, 1, 1, "function \"sort\""},
    {"clamp(x, 0, 1)", RC_ENOTSUP, 1, 1, "function \"clamp\""},
    {"deriv(x[5m])", RC_ENOTSUP, 1, 1, "function \"deriv\""},
    {"topk(3, x)", RC_ENOTSUP, 1, 1, "aggregation \"topk\" is not supported"},
    {"bottomk by (a) (3, x)", RC_ENOTSUP, 1, 1, "aggregation \"bottomk\""},
    {"count_values(\"v\", x)", RC_ENOTSUP, 1, 1, "aggregation \"count_values\""},
    {"quantile(0.9, x)", RC_ENOTSUP, 1, 1, "aggregation \"quantile\""},
    {"stddev(x)", RC_ENOTSUP, 1, 1, "aggregation \"stddev\""},
    {"stdvar(x)", RC_ENOTSUP, 1, 1, "aggregation \"stdvar\""},
    {"group(x)", RC_ENOTSUP, 1, 1, "aggregation \"group\""},
    {"quantile_over_time(0.5 * 1, x[5m])", RC_ENOTSUP, 1, 20, "must be a number literal here"},
    {"\"foo\"", RC_ENOTSUP, 1, 1, "string literals are not supported"},
    {"x > 5m", RC_ENOTSUP, 1, 5, "durations as numbers are not supported"},
    {"sum by (\"a.b\") (x)", RC_ENOTSUP, 1, 9, "quoted label names"},
    /* positions on later lines count characters, not bytes */
    {"sum(\n  rate(x[5m])\n) /\n  abc(y)", RC_EPARSE, 4, 3, "unknown function \"abc\""},
    {"{a=\"\xc3\xa9\"} + \xc3\xa9", RC_EPARSE, 1, 11, "unexpected character: byte 0xc3"},
};

static void test_invalid(void **st) {
  (void)st;
  for (size_t i = 0; i < RC_ARRAY_SIZE(invalid); i++) {
    rc_pq_expr_t *e = (rc_pq_expr_t *)0x1;
    rc_err_t err = {0};
    int rc = rc_pq_parse(invalid[i].in, strlen(invalid[i].in), 0, &e, &err);
    if (rc != invalid[i].code || err.code != rc || err.line != invalid[i].line ||
        err.col != invalid[i].col || strstr(err.msg, invalid[i].msg) == NULL)
      fail_msg("%s: got %d (err.code %d) at %d:%d \"%s\"; want %d at %d:%d \"%s\"", invalid[i].in,
               rc, err.code, err.line, err.col, err.msg, invalid[i].code, invalid[i].line,
               invalid[i].col, invalid[i].msg);
    assert_null(e);
    assert_non_null(strchr(err.msg, '\0'));
    assert_null(strchr(err.msg, '\n'));
    assert_true(err.msg[0] != '\0');
    /* The same input without an error struct must fail the same way. */
    assert_int_equal(rc_pq_parse(invalid[i].in, strlen(invalid[i].in), 0, &e, NULL), rc);
  }
}

/* ---- trees ------------------------------------------------------------------------------ */

static void assert_num(const rc_pq_node_t *x, double v) {
  assert_non_null(x);
  assert_int_equal(x->kind, RC_PQ_NUMBER);
  assert_int_equal(x->type, RC_PQ_SCALAR);
  assert_true(same_num(x->num, v));
}

static void assert_bin(const rc_pq_node_t *x, rc_pq_op_t op) {
  assert_non_null(x);
  assert_int_equal(x->kind, RC_PQ_BINARY);
  assert_int_equal(x->op, op);
}

static void assert_sel(const rc_pq_node_t *x, const char *text) {
  char b[256];
  assert_non_null(x);
  assert_int_equal(x->kind, RC_PQ_SELECTOR);
  assert_int_equal(x->type, RC_PQ_VECTOR);
  rc_selector_format(x->sel, b, sizeof(b));
  assert_string_equal(b, text);
}

static void test_precedence(void **st) {
  (void)st;
  /* 1 - 2 - 3 == (1 - 2) - 3: left-associative. */
  rc_pq_expr_t *e = parse_ok("1 - 2 - 3");
  assert_bin(e->root, RC_OP_SUB);
  assert_bin(e->root->args[0], RC_OP_SUB);
  assert_num(e->root->args[0]->args[0], 1);
  assert_num(e->root->args[0]->args[1], 2);
  assert_num(e->root->args[1], 3);
  assert_int_equal(e->root->type, RC_PQ_SCALAR);
  rc_pq_free(e);
  /* 2 ^ 3 ^ 2 == 2 ^ (3 ^ 2): right-associative. */
  e = parse_ok("2 ^ 3 ^ 2");
  assert_bin(e->root, RC_OP_POW);
  assert_num(e->root->args[0], 2);
  assert_bin(e->root->args[1], RC_OP_POW);
  assert_num(e->root->args[1]->args[0], 3);
  assert_num(e->root->args[1]->args[1], 2);
  rc_pq_free(e);
  /* -2 ^ 2 == -(2 ^ 2) == -4: ^ binds tighter than the sign. */
  e = parse_ok("-2 ^ 2");
  assert_int_equal(e->root->kind, RC_PQ_NEG);
  assert_int_equal(e->root->type, RC_PQ_SCALAR);
  assert_bin(e->root->args[0], RC_OP_POW);
  assert_num(e->root->args[0]->args[0], 2);
  assert_int_equal(e->root->line, 1);
  assert_int_equal(e->root->col, 1);
  rc_pq_free(e);
  /* -a * b == (-a) * b: the sign binds tighter than *. */
  e = parse_ok("-a * b");
  assert_bin(e->root, RC_OP_MUL);
  assert_int_equal(e->root->args[0]->kind, RC_PQ_NEG);
  assert_sel(e->root->args[0]->args[0], "a");
  rc_pq_free(e);
  /* a + b * c == a + (b * c). */
  e = parse_ok("a + b * c");
  assert_bin(e->root, RC_OP_ADD);
  assert_sel(e->root->args[0], "a");
  assert_bin(e->root->args[1], RC_OP_MUL);
  assert_sel(e->root->args[1]->args[0], "b");
  assert_sel(e->root->args[1]->args[1], "c");
  rc_pq_free(e);
  /* a * b + c == (a * b) + c; a > b + c == a > (b + c); a + b > c * d ^ e. */
  e = parse_ok("a * b + c > d - e ^ f ^ g % h");
  assert_bin(e->root, RC_OP_GT);
  assert_bin(e->root->args[0], RC_OP_ADD);
  assert_bin(e->root->args[0]->args[0], RC_OP_MUL);
  assert_bin(e->root->args[1], RC_OP_SUB);
  assert_bin(e->root->args[1]->args[1], RC_OP_MOD);
  assert_bin(e->root->args[1]->args[1]->args[0], RC_OP_POW);
  assert_bin(e->root->args[1]->args[1]->args[0]->args[1], RC_OP_POW);
  rc_pq_free(e);
  /* 2 ^ -3 ^ 2 == 2 ^ (-(3 ^ 2)). */
  e = parse_ok("2 ^ -3 ^ 2");
  assert_bin(e->root, RC_OP_POW);
  assert_int_equal(e->root->args[1]->kind, RC_PQ_NEG);
  assert_bin(e->root->args[1]->args[0], RC_OP_POW);
  rc_pq_free(e);
  /* A sign folds into a number literal, which starts at the sign. */
  e = parse_ok("1 + -  2");
  assert_num(e->root->args[1], -2);
  assert_int_equal(e->root->args[1]->col, 5);
  rc_pq_free(e);
}

static void test_nodes(void **st) {
  (void)st;
  rc_pq_expr_t *e = parse_ok(
      "sum by (job) (rate(a{x=\"1\"}[5m]))\n"
      "  / on (job) group_x_total\n"
      "  > bool quantile_over_time(0.95, b[1h]) * -c");
  const rc_pq_node_t *r = e->root;
  assert_bin(r, RC_OP_GT);
  assert_true(r->return_bool);
  assert_int_equal(r->type, RC_PQ_VECTOR);
  const rc_pq_node_t *div = r->args[0];
  assert_bin(div, RC_OP_DIV);
  assert_true(div->matching);
  assert_false(div->ignoring);
  assert_int_equal(div->nlabels, 1);
  assert_string_equal(div->labels[0], "job");
  assert_int_equal(div->line, 1);
  assert_int_equal(div->col, 1);
  const rc_pq_node_t *agg = div->args[0];
  assert_int_equal(agg->kind, RC_PQ_AGG);
  assert_int_equal(agg->agg, RC_AGG_SUM);
  assert_false(agg->without);
  assert_int_equal(agg->nlabels, 1);
  const rc_pq_node_t *rate = agg->args[0];
  assert_int_equal(rate->kind, RC_PQ_RANGE_FN);
  assert_int_equal(rate->fn, RC_FN_RATE);
  assert_int_equal(rate->range_ms, 300000);
  assert_true(isnan(rate->param));
  assert_int_equal(rate->col, 15);
  assert_sel(div->args[1], "group_x_total");
  assert_int_equal(div->args[1]->line, 2);
  assert_int_equal(div->args[1]->col, 14);
  const rc_pq_node_t *mul = r->args[1];
  assert_bin(mul, RC_OP_MUL);
  assert_int_equal(mul->line, 3);
  assert_int_equal(mul->col, 10);
  assert_int_equal(mul->args[0]->fn, RC_FN_QUANTILE_OT);
  assert_true(same_num(mul->args[0]->param, 0.95));
  assert_int_equal(mul->args[0]->range_ms, 3600000);
  assert_int_equal(mul->args[1]->kind, RC_PQ_NEG);
  assert_int_equal(mul->args[1]->col, 44);
  assert_int_equal(mul->args[1]->type, RC_PQ_VECTOR);
  /* Selectors in order of appearance, borrowed from the nodes; the longest range. */
  assert_int_equal(e->nsels, 4);
  assert_ptr_equal(e->sels[0], rate->sel);
  assert_ptr_equal(e->sels[1], div->args[1]->sel);
  assert_ptr_equal(e->sels[2], mul->args[0]->sel);
  assert_ptr_equal(e->sels[3], mul->args[1]->args[0]->sel);
  assert_int_equal(e->max_range_ms, 3600000);
  rc_pq_free(e);

  e = parse_ok("histogram_quantile(0.5 + 0.49, sum without (instance) (rate(h[2m])))");
  assert_int_equal(e->root->kind, RC_PQ_HIST_QUANTILE);
  assert_int_equal(e->root->type, RC_PQ_VECTOR);
  assert_bin(e->root->args[0], RC_OP_ADD);
  assert_int_equal(e->root->args[0]->type, RC_PQ_SCALAR);
  assert_int_equal(e->root->args[1]->kind, RC_PQ_AGG);
  assert_true(e->root->args[1]->without);
  assert_int_equal(e->nsels, 1);
  assert_int_equal(e->max_range_ms, 120000);
  rc_pq_free(e);

  e = parse_ok("42");
  assert_int_equal(e->nsels, 0);
  assert_null(e->sels);
  assert_int_equal(e->max_range_ms, 0);
  assert_int_equal(e->root->type, RC_PQ_SCALAR);
  rc_pq_free(e);

  /* Aggregation keywords are case-insensitive; `by` may follow the argument. */
  e = parse_ok("Count(x) WITHOUT (a)");
  assert_int_equal(e->root->agg, RC_AGG_COUNT);
  assert_true(e->root->without);
  rc_pq_free(e);
}

static void test_numbers_and_durations(void **st) {
  (void)st;
  static const struct {
    const char *in;
    double v;
  } nums[] = {
      {"0x1f", 31},           {"0755", 493},        {"0_7", 7},          {"0x_ff", 255},
      {"1_000.000_1", 1000.0001}, {"1e+2", 100},    {"1E-2", 0.01},      {"1.e2", 100},
      {"9223372036854775807", 9223372036854775807.0},
      {"99999999999999999999", 1e20}, {"1e-400", 0}, {"0x7fffffffffffffff", 9223372036854775807.0},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(nums); i++) {
    rc_pq_expr_t *e = parse_ok(nums[i].in);
    assert_num(e->root, nums[i].v);
    rc_pq_free(e);
  }
  rc_pq_expr_t *inf = parse_ok("iNf");
  assert_true(isinf(inf->root->num) && inf->root->num > 0);
  rc_pq_free(inf);
  static const struct {
    const char *in;
    int64_t ms;
  } durs[] = {
      {"rate(x[1ms])", 1},        {"rate(x[1s])", 1000},        {"rate(x[1m])", 60000},
      {"rate(x[1h])", 3600000},   {"rate(x[1d])", 86400000},    {"rate(x[1w])", 604800000},
      {"rate(x[1y])", 31536000000}, {"rate(x[1h30m])", 5400000},
      {"rate(x[1y2w3d4h5m6s7ms])", 31536000000 + 2 * 604800000 + 3 * 86400000 + 4 * 3600000 +
                                       5 * 60000 + 6 * 1000 + 7},
      {"rate(x[0s1ms])", 1},      {"rate(x[292y])", 292 * 31536000000LL},
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(durs); i++) {
    rc_pq_expr_t *e = parse_ok(durs[i].in);
    assert_int_equal(e->root->range_ms, durs[i].ms);
    char *a = fmt(e);
    rc_pq_expr_t *e2 = parse_ok(a);
    assert_int_equal(e2->root->range_ms, durs[i].ms);
    free(a);
    rc_pq_free(e);
    rc_pq_free(e2);
  }
}

/* ---- limits and robustness -------------------------------------------------------------- */

static char *repeat3(const char *pre, size_t n, const char *mid, const char *post, size_t m) {
  size_t lp = strlen(pre), lm = strlen(mid), lq = strlen(post);
  char *s = malloc(lp * n + lm + lq * m + 1), *o = s;
  assert_non_null(s);
  for (size_t i = 0; i < n; i++, o += lp) memcpy(o, pre, lp);
  memcpy(o, mid, lm);
  o += lm;
  for (size_t i = 0; i < m; i++, o += lq) memcpy(o, post, lq);
  *o = '\0';
  return s;
}

static void expect_depth_error(const char *s, int col) {
  rc_pq_expr_t *e = NULL;
  rc_err_t err = {0};
  assert_int_equal(rc_pq_parse(s, strlen(s), 0, &e, &err), RC_EPARSE);
  assert_null(e);
  if (strstr(err.msg, "nested too deeply (limit 200 levels)") == NULL)
    fail_msg("got \"%s\"", err.msg);
  if (col > 0) assert_int_equal(err.col, col);
}

static void test_depth(void **st) {
  (void)st;
  /* 10000 nested parentheses fail cleanly at the first one past the limit. */
  char *s = repeat3("(", 10000, "1", ")", 10000);
  expect_depth_error(s, RC_PQ_MAX_DEPTH + 1);
  free(s);
  /* Exactly at the limit is fine (the outermost level is the expression itself). */
  s = repeat3("(", RC_PQ_MAX_DEPTH - 1, "x", ")", RC_PQ_MAX_DEPTH - 1);
  rc_pq_expr_t *e = parse_ok(s);
  rc_pq_free(e);
  free(s);
  s = repeat3("sum(", 10000, "x", ")", 10000);
  expect_depth_error(s, 0);
  free(s);
  s = repeat3("-", 10000, "x", "", 0);
  expect_depth_error(s, 0);
  free(s);
  s = repeat3("2^", 10000, "2", "", 0);
  expect_depth_error(s, 0);
  free(s);
  s = repeat3("rate(x[5m]) + ", 10000, "1", "", 0); /* no recursion, but a tall tree */
  expect_depth_error(s, 0);
  free(s);
  s = repeat3("histogram_quantile(0.5, ", 10000, "x", ")", 10000);
  expect_depth_error(s, 0);
  free(s);
  /* A wide but shallow tree is fine. */
  s = repeat3("(1 + 1) + ", 1, "(x * x)", " * (x - x)", 150);
  e = parse_ok(s);
  assert_int_equal(e->nsels, 302);
  rc_pq_free(e);
  free(s);
}

/* (t + t) * (t + t) ... as a balanced tree of the given height, appended at *o. */
static void balanced(char **o, int h) {
  if (h == 0) {
    memcpy(*o, "up{a=\"b\"}", 9);
    *o += 9;
    return;
  }
  *(*o)++ = '(';
  balanced(o, h - 1);
  memcpy(*o, h % 2 ? " + " : " / ", 3);
  *o += 3;
  balanced(o, h - 1);
  *(*o)++ = ')';
}

/* Many nodes, little height: must stay linear (node positions once cost a rescan of the text
 * from the start for every binary node). 65536 selectors, about 1 MB of text. */
static void test_wide(void **st) {
  (void)st;
  char *s = malloc(2u << 20), *o = s;
  assert_non_null(s);
  balanced(&o, 16);
  *o = '\0';
  rc_pq_expr_t *e = parse_ok(s);
  assert_int_equal(e->nsels, 65536);
  assert_int_equal(e->root->col, 17); /* parentheses leave no node: the first selector */
  char *a = fmt(e);
  rc_pq_expr_t *e2 = parse_ok(a);
  assert_true(tree_eq(e->root, e2->root));
  free(a);
  rc_pq_free(e);
  rc_pq_free(e2);
  free(s);
  /* Long literals: leading zeros never overflow, long decimals keep every digit. */
  char lit[700];
  memcpy(lit, "0x", 2);
  memset(lit + 2, '0', 600);
  strcpy(lit + 602, "1f");
  e = parse_ok(lit);
  assert_num(e->root, 31);
  rc_pq_free(e);
  memset(lit, '0', 600);
  strcpy(lit + 600, "9.5");
  e = parse_ok(lit);
  assert_num(e->root, 9.5);
  rc_pq_free(e);
}

/* Every prefix of a few long expressions: parses or fails with a position, never crashes
 * (ASan checks the reads; the buffer is exactly the prefix, not NUL-terminated). */
static void test_truncations(void **st) {
  (void)st;
  static const char *const full[] = {
      "sum by (service) (rate(http_requests_total{code=~\"5..\", job!=\"x\"}[5m])) / on (service) "
      "sum by (service) (rate(http_requests_total[5m])) > bool 0.05",
      "histogram_quantile(0.99, sum without (instance) (rate(lat_bucket{a=`b`}[1h30m]))) ^ -2 ^ 0x1f",
      "quantile_over_time(.5, x[300]) != -Inf # trailing comment",
      "a * ignoring(b) group_left c offset 5m @ 10 and d[5m:1m]",
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(full); i++) {
    size_t n = strlen(full[i]);
    for (size_t k = 0; k <= n; k++) {
      char *b = malloc(k ? k : 1);
      assert_non_null(b);
      memcpy(b, full[i], k);
      rc_pq_expr_t *e = NULL;
      rc_err_t err = {0};
      int rc = rc_pq_parse(b, k, 0, &e, &err);
      if (rc == 0) {
        char *a = fmt(e);
        rc_pq_expr_t *e2 = parse_ok(a);
        char *c = fmt(e2);
        assert_string_equal(a, c);
        free(a);
        free(c);
        rc_pq_free(e2);
        rc_pq_free(e);
      } else {
        assert_true(rc == RC_EPARSE || rc == RC_ENOTSUP);
        assert_true(err.line >= 1 && err.col >= 1 && err.msg[0] != '\0');
      }
      free(b);
    }
  }
}

static void test_api(void **st) {
  (void)st;
  rc_pq_expr_t *e = NULL;
  rc_err_t err = {0};
  assert_int_equal(rc_pq_parse(NULL, 3, 0, &e, &err), RC_EINVAL);
  assert_int_equal(rc_pq_parse("1", 1, 0, NULL, &err), RC_EINVAL);
  assert_int_equal(rc_pq_parse(NULL, 0, 0, &e, &err), RC_EPARSE);
  rc_pq_free(NULL);
  /* Only len bytes are read: the rest of the buffer is not the expression. */
  assert_int_equal(rc_pq_parse("x + y", 1, 0, &e, &err), 0);
  assert_string_equal(e->text, "x");
  rc_pq_free(e);
  /* An embedded NUL is an unexpected character, not the end. */
  assert_int_equal(rc_pq_parse("x\0+ y", 5, 0, &e, &err), RC_EPARSE);
  assert_int_equal(err.col, 2);
  /* snprintf contract. */
  e = parse_ok("sum by (job) (rate({__name__=\"bool\", a=\"b\"}[5m]))");
  char full[128], small[12];
  size_t n = rc_pq_format(e, full, sizeof(full));
  assert_int_equal(n, strlen(full));
  assert_string_equal(full, "sum by (job) (rate({__name__=\"bool\",a=\"b\"}[5m]))");
  for (size_t cap = 0; cap <= n + 1; cap++) {
    char buf[128];
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(rc_pq_format(e, cap ? buf : NULL, cap), n);
    if (cap > 0) {
      assert_int_equal(strlen(buf), cap - 1 < n ? cap - 1 : n);
      assert_memory_equal(buf, full, strlen(buf));
    }
  }
  assert_int_equal(rc_pq_format(e, small, sizeof(small)), n);
  assert_string_equal(small, "sum by (job");
  rc_pq_free(e);
  assert_int_equal(rc_pq_format(NULL, small, sizeof(small)), 0);
  assert_string_equal(small, "");
  /* Names. */
  assert_string_equal(rc_pq_fn_name(RC_FN_RATE), "rate");
  assert_string_equal(rc_pq_fn_name(RC_FN_QUANTILE_OT), "quantile_over_time");
  assert_string_equal(rc_pq_fn_name(RC_FN_CHANGES), "changes");
  for (int f = 0; f < RC_FN__COUNT; f++) assert_string_not_equal(rc_pq_fn_name((rc_fn_t)f), "?");
  assert_string_equal(rc_pq_fn_name(RC_FN__COUNT), "?");
  assert_string_equal(rc_pq_agg_name(RC_AGG_COUNT), "count");
  assert_string_equal(rc_pq_op_name(RC_OP_POW), "^");
  assert_string_equal(rc_pq_op_name(RC_OP_LE), "<=");
  assert_true(rc_pq_op_is_comparison(RC_OP_EQ) && !rc_pq_op_is_comparison(RC_OP_POW));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),     cmocka_unit_test(test_invalid),
      cmocka_unit_test(test_precedence), cmocka_unit_test(test_nodes),
      cmocka_unit_test(test_numbers_and_durations), cmocka_unit_test(test_depth),
      cmocka_unit_test(test_wide),      cmocka_unit_test(test_truncations),
      cmocka_unit_test(test_api),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
