/* fuzz_promql.c: the PromQL subset parser (promql.c) on arbitrary bytes. A parse error must
 * be RC_EPARSE or RC_ENOTSUP (or RC_ENOMEM) with line/col >= 1 and a one-line reason. An
 * expression that parses must satisfy the tree's invariants (types as PromQL assigns them,
 * no range selector left standing, height within RC_PQ_MAX_DEPTH, sels/max_range_ms
 * consistent with the nodes), and its canonical text must parse again into an equal tree
 * that prints the same text. Any violation aborts, so the replay driver and libFuzzer report
 * it as a crash. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "promql.h"

static void check_error(int rc, const rc_err_t *e) {
  if (rc == RC_ENOMEM) return;
  if (rc != RC_EPARSE && rc != RC_ENOTSUP) abort();
  if (e->code != rc || e->line < 1 || e->col < 1 || e->msg[0] == '\0' ||
      strchr(e->msg, '\n') != NULL)
    abort();
}

/* Checks a node's invariants; returns its height. Counts selectors and the longest range. */
static int check_node(const rc_pq_node_t *x, uint32_t *nsels, int64_t *max_range) {
  if (x == NULL || x->line < 1 || x->col < 1) abort();
  int h0 = 0, h1 = 0;
  switch (x->kind) {
    case RC_PQ_NUMBER:
      if (x->type != RC_PQ_SCALAR || x->sel != NULL) abort();
      break;
    case RC_PQ_SELECTOR:
      if (x->type != RC_PQ_VECTOR || x->sel == NULL || x->range_ms != 0) abort();
      (*nsels)++;
      break;
    case RC_PQ_RANGE_FN:
      if (x->type != RC_PQ_VECTOR || x->sel == NULL || x->range_ms <= 0 || x->fn >= RC_FN__COUNT)
        abort();
      if (x->fn != RC_FN_QUANTILE_OT && !isnan(x->param)) abort(); /* φ only for quantile */
      (*nsels)++;
      if (x->range_ms > *max_range) *max_range = x->range_ms;
      break;
    case RC_PQ_HIST_QUANTILE:
      h0 = check_node(x->args[0], nsels, max_range);
      h1 = check_node(x->args[1], nsels, max_range);
      if (x->type != RC_PQ_VECTOR || x->args[0]->type != RC_PQ_SCALAR ||
          x->args[1]->type != RC_PQ_VECTOR)
        abort();
      break;
    case RC_PQ_AGG:
      h0 = check_node(x->args[0], nsels, max_range);
      if (x->type != RC_PQ_VECTOR || x->args[0]->type != RC_PQ_VECTOR || x->args[1] != NULL)
        abort();
      break;
    case RC_PQ_BINARY: {
      h0 = check_node(x->args[0], nsels, max_range);
      h1 = check_node(x->args[1], nsels, max_range);
      int scalars = x->args[0]->type == RC_PQ_SCALAR && x->args[1]->type == RC_PQ_SCALAR;
      if (x->type != (scalars ? RC_PQ_SCALAR : RC_PQ_VECTOR)) abort();
      if (x->return_bool && !rc_pq_op_is_comparison(x->op)) abort();
      if (scalars && rc_pq_op_is_comparison(x->op) && !x->return_bool) abort();
      if (x->matching && (x->args[0]->type != RC_PQ_VECTOR || x->args[1]->type != RC_PQ_VECTOR))
        abort();
      break;
    }
    case RC_PQ_NEG:
      h0 = check_node(x->args[0], nsels, max_range);
      if (x->type != x->args[0]->type || x->args[0]->kind == RC_PQ_NUMBER) abort();
      break;
    default: abort();
  }
  int h = 1 + (h0 > h1 ? h0 : h1);
  if (h > RC_PQ_MAX_DEPTH) abort();
  return h;
}

static int same(const rc_pq_node_t *a, const rc_pq_node_t *b) {
  if (a == NULL || b == NULL) return a == b;
  if (a->kind != b->kind || a->type != b->type || a->fn != b->fn || a->range_ms != b->range_ms ||
      a->agg != b->agg || a->op != b->op || a->without != b->without ||
      a->ignoring != b->ignoring || a->matching != b->matching ||
      a->return_bool != b->return_bool || a->nlabels != b->nlabels)
    return 0;
  if (!(isnan(a->num) && isnan(b->num)) && memcmp(&a->num, &b->num, sizeof(double)) != 0) return 0;
  if (!(isnan(a->param) && isnan(b->param)) && a->param != b->param) return 0;
  for (uint32_t i = 0; i < a->nlabels; i++)
    if (strcmp(a->labels[i], b->labels[i]) != 0) return 0;
  if ((a->sel == NULL) != (b->sel == NULL)) return 0;
  if (a->sel != NULL) {
    char x[4096], y[4096];
    size_t lx = rc_selector_format(a->sel, x, sizeof(x));
    size_t ly = rc_selector_format(b->sel, y, sizeof(y));
    if (lx != ly || (lx < sizeof(x) && strcmp(x, y) != 0)) return 0;
  }
  return same(a->args[0], b->args[0]) && same(a->args[1], b->args[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rc_pq_expr_t *e, *e2;
  rc_err_t err = {0};
  int rc = rc_pq_parse((const char *)data, size, 0, &e, &err);
  if (rc != 0) {
    check_error(rc, &err);
    return 0;
  }
  uint32_t nsels = 0;
  int64_t max_range = 0;
  check_node(e->root, &nsels, &max_range);
  if (nsels != e->nsels || max_range != e->max_range_ms) abort();
  for (uint32_t i = 0; i < e->nsels; i++)
    if (e->sels[i] == NULL) abort();
  size_t len = rc_pq_format(e, NULL, 0);
  char *a = malloc(len + 1), *b = NULL;
  if (a == NULL) goto out;
  if (rc_pq_format(e, a, len + 1) != len || strlen(a) != len) abort();
  rc = rc_pq_parse(a, len, 0, &e2, &err);
  if (rc == RC_ENOMEM) goto out;
  if (rc != 0) abort(); /* we printed something we cannot read back */
  if (!same(e->root, e2->root)) abort();
  size_t len2 = rc_pq_format(e2, NULL, 0);
  b = malloc(len2 + 1);
  if (b != NULL) {
    rc_pq_format(e2, b, len2 + 1);
    if (len2 != len || memcmp(a, b, len) != 0) abort();
  }
  rc_pq_free(e2);
out:
  free(a);
  free(b);
  rc_pq_free(e);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "sum by (service) (rate(http_requests_total{code=~\"5..\"}[5m]))\n"
      "  / on (service) sum by (service) (rate(http_requests_total[5m])) > bool 0.05",
      "histogram_quantile(0.99, sum without (instance) (rate(lat_bucket{a=`b`}[1h30m])))",
      "quantile_over_time(.5, x[300]) != -Inf # comment",
      "-2 ^ -3 ^ (-2) * 0x1f % 010 - 1_000.5e-3 + NaN",
      "avg(max_over_time(up{job!~\"a|b\"}[1y2w3d])) - ignoring (a, b,) min(x) <= bool 1",
      "count(changes(x[5m])) == bool Inf",
      "{__name__=\"bool\", 'a'=\"\\u00e9\"} / sum(x) WITHOUT ()",
      "a * on(x) group_left b offset 5m @ 10 and c[5m:1m]",
      "((((((1))))))",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    emit((const uint8_t *)seeds[i], strlen(seeds[i]));
}
