/* promql.h: the PromQL subset ripcord evaluates in streaming — its syntax tree and parser.
 *
 * The subset (issue 4), with PromQL's own syntax:
 *   number literals (1, 1.5, 1e3, 0x1f, Inf, NaN, and duration-free only: no 5m as a number)
 *   instant selectors          metric{l="v", l2=~"re"}            (selector.h parses these)
 *   range selectors            metric{...}[5m]   only as the argument of a range function
 *   range functions            rate increase irate delta idelta resets changes
 *                              avg_over_time min_over_time max_over_time sum_over_time
 *                              count_over_time last_over_time present_over_time
 *                              stddev_over_time stdvar_over_time quantile_over_time(φ, v[r])
 *   histogram_quantile(φ, v)   v: an instant vector of classic buckets (`le` label) or of
 *                              native histograms — typically rate(x[5m]) or sum by (le)(...)
 *   aggregations               sum avg min max count, with by (...) or without (...) before
 *                              or after the argument
 *   binary operators           + - * / % ^  == != > < >= <=  (with `bool` on comparisons),
 *                              scalar-scalar, scalar-vector, vector-vector one-to-one with
 *                              on(...) / ignoring(...); precedence and associativity as PromQL
 *                              (^ right-associative and above unary minus)
 *   unary minus, parentheses
 * Anything else (offset, @, subqueries, other functions, and/or/unless, group_left/right,
 * topk, label_replace, ...) is refused with RC_ENOTSUP naming the construct and its position.
 *
 * Errors: rc_err_t with 1-based line and column (characters, as selector.c counts them) inside
 * the expression text and a one-line reason; a caller that embeds the expression in a file
 * adds the expression's own position (rules.c does).
 *
 * Ownership: a parsed expression (rc_pq_expr_t) owns all its nodes, selectors and strings;
 * rc_pq_free() releases everything. Nodes are immutable after parsing and may be read from any
 * thread.
 */
#ifndef RC_PROMQL_H
#define RC_PROMQL_H

#include <stddef.h>
#include <stdint.h>

#include "rc.h"
#include "selector.h"
#include "window.h"

typedef enum rc_pq_kind {
  RC_PQ_NUMBER,     /* num */
  RC_PQ_SELECTOR,   /* sel: an instant vector selector */
  RC_PQ_RANGE_FN,   /* fn over sel[range_ms] (the matrix argument); param for quantile_over_time */
  RC_PQ_HIST_QUANTILE, /* histogram_quantile(args[0] = φ, args[1] = vector) */
  RC_PQ_AGG,        /* agg over args[0], grouped by labels */
  RC_PQ_BINARY,     /* args[0] op args[1] */
  RC_PQ_NEG,        /* -args[0] */
} rc_pq_kind_t;

typedef enum rc_pq_agg { RC_AGG_SUM, RC_AGG_AVG, RC_AGG_MIN, RC_AGG_MAX, RC_AGG_COUNT } rc_pq_agg_t;

typedef enum rc_pq_op {
  RC_OP_ADD, RC_OP_SUB, RC_OP_MUL, RC_OP_DIV, RC_OP_MOD, RC_OP_POW,
  RC_OP_EQ, RC_OP_NE, RC_OP_GT, RC_OP_LT, RC_OP_GE, RC_OP_LE,
} rc_pq_op_t;

/* Comparison operators: RC_OP_EQ..RC_OP_LE. */
static inline int rc_pq_op_is_comparison(rc_pq_op_t op) { return op >= RC_OP_EQ; }

/* Value type of a node, as PromQL types it. */
typedef enum rc_pq_type { RC_PQ_SCALAR, RC_PQ_VECTOR } rc_pq_type_t;

typedef struct rc_pq_node rc_pq_node_t;

struct rc_pq_node {
  rc_pq_kind_t kind;
  rc_pq_type_t type;   /* scalar or instant vector (a range selector never stands alone) */
  int line, col;       /* where the node starts in the expression (1-based) */
  /* RC_PQ_NUMBER */
  double num;
  /* RC_PQ_SELECTOR, RC_PQ_RANGE_FN: the series selector (owned) */
  rc_selector_t *sel;
  /* RC_PQ_RANGE_FN */
  rc_fn_t fn;
  int64_t range_ms;    /* > 0 */
  double param;        /* quantile_over_time's φ (a number literal; NaN otherwise) */
  /* RC_PQ_AGG */
  rc_pq_agg_t agg;
  /* RC_PQ_AGG: by/without labels; RC_PQ_BINARY: on/ignoring labels (owned, NUL-terminated) */
  char **labels;
  uint32_t nlabels;
  uint8_t without;     /* AGG: 1 = without(...), 0 = by(...) (nlabels 0 and by: all in one) */
  uint8_t ignoring;    /* BINARY: 1 = ignoring(...), 0 = on(...) */
  uint8_t matching;    /* BINARY: 1 when on(...)/ignoring(...) was written */
  uint8_t return_bool; /* BINARY: comparison with `bool` */
  /* RC_PQ_BINARY */
  rc_pq_op_t op;
  /* children: BINARY 2, HIST_QUANTILE 2, AGG 1, NEG 1 */
  rc_pq_node_t *args[2];
};

typedef struct rc_pq_expr {
  rc_pq_node_t *root;
  char *text;          /* the expression as given (owned copy) */
  /* Every selector of the expression, in order of appearance (borrowed from the nodes): what
   * the store must keep for this expression (the selector index is built from them). */
  rc_selector_t **sels;
  uint32_t nsels;
  int64_t max_range_ms; /* the longest range in the expression: retention must cover it */
} rc_pq_expr_t;

/* How deep an expression may nest: parentheses, call and aggregation arguments, signs and
 * the right side of ^ each add a level, and the tree (which the evaluator walks recursively)
 * may be at most this high, so a chain like 1+1+...+1 also counts. Deeper input fails with
 * RC_EPARSE instead of exhausting the stack. */
#define RC_PQ_MAX_DEPTH 200

/* Parses text[0..len). Returns 0 and *out (caller frees with rc_pq_free); RC_EPARSE (syntax or
 * type error), RC_ENOTSUP (valid PromQL outside the subset: the message names the construct),
 * or RC_ENOMEM, with err->line/col/msg. flags: RC_MATCHER_NO_JIT passes on to the matchers. */
int rc_pq_parse(const char *text, size_t len, unsigned flags, rc_pq_expr_t **out, rc_err_t *err);
void rc_pq_free(rc_pq_expr_t *e); /* NULL is a no-op */

/* The expression as canonical PromQL text (parseable again into an equal tree). snprintf
 * style: writes at most cap bytes including the NUL and returns the full length. */
size_t rc_pq_format(const rc_pq_expr_t *e, char *buf, size_t cap);

/* Name of a range function ("rate", ...) and of an aggregation / operator, for messages. */
const char *rc_pq_fn_name(rc_fn_t fn);
const char *rc_pq_agg_name(rc_pq_agg_t a);
const char *rc_pq_op_name(rc_pq_op_t op);

#endif
