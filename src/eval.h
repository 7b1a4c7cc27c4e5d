/* eval.h: evaluating a parsed PromQL-subset expression (promql.h) at one instant, over the
 * series store (query.h), with PromQL's semantics for the chosen compat (Prometheus 3.x by
 * default, 2.4x with RC_COMPAT_PROM2).
 *
 * What it reproduces (shared/reference/promql-semantics.md): instant selectors with the
 * lookback window and staleness; range functions (window.c, histwin.c for native histograms);
 * histogram_quantile over classic `le` buckets (grouped by their other labels) and native
 * histograms; sum/avg/min/max/count with by/without (3.x: Kahan sums, avg as Kahan sum / count
 * with the incremental-mean fallback on overflow; 2.4x: plain sums, incremental mean); binary
 * operators scalar/scalar, vector/scalar and vector/vector one-to-one with on/ignoring, with
 * `bool`, filtering comparisons and PromQL's __name__ dropping. Native histograms take part in
 * sum/avg/count and in histogram_quantile; elsewhere they are dropped, as PromQL drops what an
 * operator cannot take (with an annotation there; counted in rc_eval_result_t.dropped here).
 *
 * Errors that PromQL raises at query time (many-to-many matching, duplicate output series)
 * return RC_EINVAL with the message; a rule whose expression errs has no value this round.
 *
 * Threads and memory: one evaluation at a time per rc_eval_t; the caller holds the query
 * reader inside rc_query_begin/end for the whole evaluation and while reading the result,
 * whose labels point into the store's series and into the evaluator's arena (valid until the
 * next rc_eval or rc_eval_close).
 */
#ifndef RC_EVAL_H
#define RC_EVAL_H

#include <stdint.h>

#include "arena.h"
#include "batch.h"
#include "histwin.h"
#include "promql.h"
#include "query.h"

typedef struct rc_eval_elem {
  const rc_label_t *labels; /* sorted by name; borrowed (store or arena) */
  uint32_t nlabels;
  double v;                 /* the value, when h is NULL */
  rc_fhist_t *h;            /* a native histogram value (arena-owned struct, heap buffers) */
} rc_eval_elem_t;

typedef struct rc_eval_result {
  int is_scalar;
  double scalar;
  rc_eval_elem_t *v;        /* instant vector (is_scalar 0) */
  uint32_t n;
  uint32_t dropped;         /* histogram elements an operator could not take */
  uint32_t series;          /* series read from the store (for min_samples-like checks) */
} rc_eval_result_t;

/* Maps a selector of the expression being evaluated to the selector id the store knows it
 * by (the id it was given in the selector index). */
typedef uint32_t (*rc_eval_sel_id_fn)(void *ctx, const rc_selector_t *sel);

typedef struct rc_eval {
  rc_query_t *q;
  rc_compat_t compat;
  int64_t lookback_ms;      /* instant selectors; default 5m */
  rc_eval_sel_id_fn sel_id;
  void *sel_ctx;
  /* Ad-hoc expressions (GET /api/v1/query): a selector sel_id does not know (UINT32_MAX) is
   * answered by walking the series of every selector id below adhoc_ids, once each, and
   * keeping those it matches. The store holds only selected series, so an ad-hoc query sees
   * exactly those. 0: unknown selectors select nothing. */
  uint32_t adhoc_ids;
  /* Deploy-aware evaluation: samples at or before this time (the current deploy's start)
   * are not seen — ranges and the lookback are clipped to (clip_from_ms, t] — so a new
   * version is never judged on the old one's samples. INT64_MIN: no clipping. */
  int64_t clip_from_ms;
  /* private */
  rc_matcher_scratch_t *scr;
  rc_arena_t arena;
  rc_query_set_t set;
  rc_fhist_t **hists;       /* histograms made during an evaluation, freed at the next */
  uint32_t nhists, caphists;
} rc_eval_t;

void rc_eval_init(rc_eval_t *ev, rc_query_t *q, rc_compat_t compat, rc_eval_sel_id_fn sel_id,
                  void *sel_ctx);
void rc_eval_close(rc_eval_t *ev);

/* Evaluates e at t_ms into *out (inside rc_query_begin/end). Returns 0, RC_EINVAL (a PromQL
 * query-time error, reason in err) or RC_ENOMEM. */
int rc_eval(rc_eval_t *ev, const rc_pq_expr_t *e, int64_t t_ms, rc_eval_result_t *out,
            rc_err_t *err);

#endif
