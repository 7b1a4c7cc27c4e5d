/* rules.c: rollback rule files (YAML) -> rc_ruleset_t, with diagnostics at file:line:col.
 * See rules.h for the contract. What lives here: the file format, every check made on it, the
 * built-in metric templates, quantities and durations.
 *
 * ---- File format (as implemented) --------------------------------------------------------
 * Top level, a mapping with:
 *   rollback:  RULE            one rule              } exactly one of the two
 *   rollbacks: [RULE, ...]     a list of rules       }
 *   metrics:   {NAME: {expr: TEMPLATE, requests_expr: TEMPLATE}, ...}   optional: per-file
 *              templates that override a built-in of that name or define a new one
 * RULE, a mapping:
 *   service: STRING            required (a number is taken as its text: 123 -> "123")
 *   environment: STRING        required
 *   warmup: DURATION           optional: after a deploy starts, this long is not judged
 *   match: {LABEL: VALUE}      optional, exact values   } either one replaces the default
 *   match_re: {LABEL: REGEX}   optional, RE2 regexes    } service/environment matchers
 *   triggers: [TRIGGER, ...]   required, non-empty
 *   action:                    required
 *     type: previous_version | notify (tell people, roll nothing back) | dry_run   required
 *     notify: [{KIND: TARGET}] optional; KIND is slack, pagerduty or webhook (a webhook name)
 *     approval:                optional: the approval gate (approvals.h)
 *       when: needed | always  needed (default): only rollbacks that cannot be automatic
 *       required: N            approvals needed (default 2 in production, else 1)
 *       approvers: [ID...]     eligible identities; approver_groups: [GROUP...]
 *       timeout: DURATION      the request expires after this (default 30m)
 * TRIGGER, a mapping:
 *   metric: NAME | expr: PROMQL   exactly one; NAME is a built-in or a file `metrics:` name
 *   name: STRING               default: the metric name, or "expr<N>" (N = 1-based position of
 *                              the trigger in its rule); unique within the rule
 *   threshold: QUANTITY        required
 *   window: DURATION           required for metric:, > 0; for expr: optional, checked, unused
 *                              (the expression's ranges are its windows), window_ms stays 0
 *   op: ">=" | ">" | "<=" | "<"   default ">=" (quote > and >=: YAML reads > as a block scalar)
 *   for: DURATION              default 0; keep_firing_for: DURATION, default 0
 *   min_samples: INTEGER >= 0  default 0
 *   min_requests: NUMBER >= 0  default 0; needs a request count: error_rate and latency_p99
 *                              use the error_rate requests template; expr: needs requests_expr:
 *   requests_expr: PROMQL      the request count over the window (overrides the template)
 *   no_data: ignore | fire | alert   default ignore
 *   warn_threshold, resolve_threshold: QUANTITY   on the safe side of threshold (strictly for
 *                              warn, or equal for resolve): below it for > and >=, above for < <=
 *   dry_run: true | false      default false (yes/no/on/off are refused: YAML 1.1 vs 1.2)
 * QUANTITY: a number, or a number with a unit and no space: 5% (0.05), 2000ms (2), 1.5s, 2m,
 *   1h30m (seconds); Inf and NaN are refused. DURATION: Prometheus syntax (ms s m h d w y, in
 *   decreasing order, whole numbers, combined like 1h30m; "0" alone is zero).
 *
 * ---- Built-in metrics (defaults; the server config overrides them via rc_rules_cfg_t, a
 * rule file via `metrics:`). {{selector}} is `<service_label>="<service>",
 * <environment_label>="<environment>"` (default labels service and env), or only the match:
 * and match_re: matchers when either is given; {{window}} the trigger's window as a Prometheus
 * duration.
 *   error_rate              sum(rate(http_requests_total{{{selector}}, code=~"5.."}[{{window}}]))
 *                             / sum(rate(http_requests_total{{{selector}}}[{{window}}]))
 *     requests (min_requests, also used by latency_p99):
 *                           sum(increase(http_requests_total{{{selector}}}[{{window}}]))
 *   latency_p99             histogram_quantile(0.99, sum by (le)
 *                             (rate(http_request_duration_seconds_bucket{{{selector}}}[{{window}}])))
 *   health_check_failures   sum(count_over_time(up{{{selector}}}[{{window}}])
 *                             - sum_over_time(up{{{selector}}}[{{window}}]))
 *                           (scrapes in the window where up was 0)
 *
 * ---- Positions --------------------------------------------------------------------------
 * Lines and columns are 1-based characters, from libyaml's marks. An error inside a PromQL
 * expression is reported at the expression's position in the file plus its offset inside the
 * expression: exact for plain and quoted one-line scalars and for literal (|) block scalars;
 * best effort for folded (>) and multi-line flow scalars (line folding is assumed to turn one
 * line break into one space) and for double-quoted escapes (one escape = one character). An
 * error in a template from the server config is reported at the trigger's metric: value.
 *
 * Why the document API: a rule file is small, and a tree lets every mapping be checked as a
 * whole (unknown and duplicate keys, missing keys) so that one run reports every problem. A
 * first pass over the events rejects aliases (a tree with shared nodes would be walked, and
 * reported, once per reference: a "billion laughs" input) and extra documents, and turns
 * libyaml's syntax errors into messages naming the usual causes.
 *
 * ---- Literal secrets --------------------------------------------------------------------
 * Before anything else the text goes through the secret detector (secrets.h): each finding
 * is an error at its line:column, so a rule file holding a literal secret never loads, in
 * `ripcord check` as in the daemon (start and reload).
 */
#include "rules.h"
#include "buf.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "secrets.h"

#define MAX_ERRORS_PER_FILE 100
#define MAX_FILE_BYTES (16u << 20)
#define MAX_DEPTH 64
#define DEFAULT_SCRAPE_MS 15000

static const char DEF_ERROR_RATE[] =
    "sum(rate(http_requests_total{{{selector}}, code=~\"5..\"}[{{window}}])) / "
    "sum(rate(http_requests_total{{{selector}}}[{{window}}]))";
static const char DEF_REQUESTS[] = "sum(increase(http_requests_total{{{selector}}}[{{window}}]))";
static const char DEF_LATENCY_P99[] =
    "histogram_quantile(0.99, sum by (le) "
    "(rate(http_request_duration_seconds_bucket{{{selector}}}[{{window}}])))";
static const char DEF_HEALTH[] =
    "sum(count_over_time(up{{{selector}}}[{{window}}]) - sum_over_time(up{{{selector}}}[{{window}}]))";

/* What values a metric can take, for the "threshold outside the natural range" warnings. */
typedef enum { RANGE_NONE, RANGE_RATIO, RANGE_SECONDS, RANGE_COUNT } range_t;

/* A metric template: built-in, from the server config, or from the file's `metrics:`. */
typedef struct metric_def {
  const char *name;
  const char *expr, *requests; /* requests may be NULL */
  range_t range;
  /* For templates written in the file: their value nodes, to place template errors. */
  yaml_node_t *expr_node, *requests_node;
  int broken; /* a file template that did not parse: reported once, at its definition */
} metric_def_t;

#define MAX_FILE_METRICS 32

/* State for loading one file. */
typedef struct ld {
  const char *name;
  const char *src;
  size_t len;
  const rc_rules_cfg_t *cfg;
  rc_diags_t *d;
  uint32_t errors;
  int nomem, capped;
  yaml_document_t doc;
  metric_def_t file_metrics[MAX_FILE_METRICS];
  uint32_t nfile_metrics;
} ld_t;

/* ---- diagnostics ------------------------------------------------------------------------ */

static int diag_add(rc_diags_t *d, rc_diag_level_t level, const char *file, int line, int col,
                    const char *msg) {
  if (d->n == d->cap) {
    uint32_t nc = d->cap ? d->cap * 2 : 16;
    rc_diag_t *nv = realloc(d->v, nc * sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    d->v = nv;
    d->cap = nc;
  }
  rc_diag_t *g = &d->v[d->n];
  g->file = strdup(file);
  g->msg = strdup(msg);
  if (g->file == NULL || g->msg == NULL) {
    free(g->file);
    free(g->msg);
    return RC_ENOMEM;
  }
  g->level = level;
  g->line = line;
  g->col = col;
  d->n++;
  if (level == RC_DIAG_ERROR) d->errors++;
  else d->warnings++;
  return 0;
}

static void vdiag(ld_t *l, rc_diag_level_t level, int line, int col, const char *fmt, va_list ap) {
  if (level == RC_DIAG_ERROR) l->errors++;
  if (l->capped) return;
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  if (level == RC_DIAG_ERROR && l->errors > MAX_ERRORS_PER_FILE) {
    /* A file this broken is probably not a rule file; more lines would only bury the first. */
    l->capped = 1;
    snprintf(msg, sizeof(msg), "too many errors (%d); stopping", MAX_ERRORS_PER_FILE);
  }
  if (diag_add(l->d, level, l->name, line, col, msg) != 0) l->nomem = 1;
}

__attribute__((format(printf, 4, 5))) static void err_at(ld_t *l, int line, int col,
                                                          const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(l, RC_DIAG_ERROR, line, col, fmt, ap);
  va_end(ap);
}

__attribute__((format(printf, 4, 5))) static void warn_at(ld_t *l, int line, int col,
                                                           const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(l, RC_DIAG_WARNING, line, col, fmt, ap);
  va_end(ap);
}

#define NLINE(n) ((int)(n)->start_mark.line + 1)
#define NCOL(n) ((int)(n)->start_mark.column + 1)

__attribute__((format(printf, 3, 4))) static void err_node(ld_t *l, const yaml_node_t *n,
                                                            const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(l, RC_DIAG_ERROR, NLINE(n), NCOL(n), fmt, ap);
  va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void warn_node(ld_t *l, const yaml_node_t *n,
                                                             const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vdiag(l, RC_DIAG_WARNING, NLINE(n), NCOL(n), fmt, ap);
  va_end(ap);
}

int rc_diags_add(rc_diags_t *d, rc_diag_level_t level, const char *file, int line, int col,
                 const char *msg) {
  return diag_add(d, level, file, line, col, msg);
}

void rc_diags_free(rc_diags_t *d) {
  for (uint32_t i = 0; i < d->n; i++) {
    free(d->v[i].file);
    free(d->v[i].msg);
  }
  free(d->v);
  memset(d, 0, sizeof(*d));
}

void rc_diags_print(const rc_diags_t *d, FILE *f) {
  for (uint32_t i = 0; i < d->n; i++) {
    const rc_diag_t *g = &d->v[i];
    const char *lv = g->level == RC_DIAG_ERROR ? "error" : "warning";
    if (g->line > 0) fprintf(f, "%s:%d:%d: %s: %s\n", g->file, g->line, g->col, lv, g->msg);
    else fprintf(f, "%s: %s: %s\n", g->file, lv, g->msg);
  }
}

const char *rc_rules_cmp_name(rc_cmp_t op) {
  switch (op) {
    case RC_CMP_GE: return ">=";
    case RC_CMP_GT: return ">";
    case RC_CMP_LE: return "<=";
    case RC_CMP_LT: return "<";
  }
  return "?";
}

/* ---- quantities and durations ----------------------------------------------------------- */

static const struct { const char *unit; int64_t ms; } DUR_UNITS[] = {
    {"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}, {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000},            {"m", 60LL * 1000},            {"s", 1000},
    {"ms", 1},
};

/* Longest unit at s: "ms" before "m". Returns the index in DUR_UNITS or -1; *ulen its length. */
static int dur_unit(const char *s, size_t *ulen) {
  if (s[0] == 'm' && s[1] == 's') {
    *ulen = 2;
    return 6;
  }
  for (int i = 0; i < 6; i++)
    if (s[0] == DUR_UNITS[i].unit[0]) {
      *ulen = 1;
      return i;
    }
  return -1;
}

int rc_rules_parse_duration(const char *s, int64_t *out_ms, rc_err_t *err) {
  if (s == NULL || *s == '\0') return rc_err_set(err, RC_EPARSE, "empty duration");
  if (strcmp(s, "0") == 0) {
    *out_ms = 0;
    return 0;
  }
  if (s[0] == '-') return rc_err_set(err, RC_EPARSE, "durations cannot be negative");
  const char *p = s;
  int64_t total = 0;
  int last = -1;
  while (*p) {
    if (!isdigit((unsigned char)*p)) {
      if (*p == ' ' || *p == '\t')
        return rc_err_set(err, RC_EPARSE, "no space allowed in a duration: write e.g. 5m");
      return rc_err_set(err, RC_EPARSE,
                        "not a duration: expected a whole number and a unit (ms s m h d w y), "
                        "e.g. 5m or 1h30m");
    }
    int64_t v = 0;
    const char *num = p;
    while (isdigit((unsigned char)*p)) {
      if (v > (INT64_MAX - 9) / 10) return rc_err_set(err, RC_EPARSE, "duration too large");
      v = v * 10 + (*p++ - '0');
    }
    if (*p == '\0') {
      if (p == s + strlen(s) && num == s)
        return rc_err_set(err, RC_EPARSE, "missing unit: add one, e.g. %.20ss", s);
      return rc_err_set(err, RC_EPARSE, "missing unit after %.20s", num);
    }
    if (*p == '.')
      return rc_err_set(err, RC_EPARSE,
                        "durations take whole numbers: write 1m30s, not 1.5m (or use a smaller "
                        "unit)");
    if (*p == ' ' || *p == '\t')
      return rc_err_set(err, RC_EPARSE, "no space allowed in a duration: write e.g. 5m");
    size_t ulen = 0;
    int u = dur_unit(p, &ulen);
    if (u < 0)
      return rc_err_set(err, RC_EPARSE, "unknown duration unit \"%.8s\" (known: ms s m h d w y)",
                        p);
    if (u <= last)
      return rc_err_set(err, RC_EPARSE,
                        "duration units must be in decreasing order, each at most once "
                        "(e.g. 1h30m)");
    last = u;
    if (v > INT64_MAX / DUR_UNITS[u].ms || total > INT64_MAX - v * DUR_UNITS[u].ms)
      return rc_err_set(err, RC_EPARSE, "duration too large");
    total += v * DUR_UNITS[u].ms;
    p += ulen;
  }
  *out_ms = total;
  return 0;
}

/* Formats ms as a Prometheus duration ("5m", "1m30s", "1s500ms"). */
static void fmt_duration(int64_t ms, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = '\0';
  if (ms == 0) {
    snprintf(buf, cap, "0s");
    return;
  }
  for (size_t i = 0; i < RC_ARRAY_SIZE(DUR_UNITS) && n < cap; i++) {
    int64_t q = ms / DUR_UNITS[i].ms;
    if (q == 0) continue;
    ms -= q * DUR_UNITS[i].ms;
    n += (size_t)snprintf(buf + n, cap - n, "%lld%s", (long long)q, DUR_UNITS[i].unit);
  }
}

int rc_rules_parse_quantity(const char *s, double *out, rc_err_t *err) {
  if (s == NULL || *s == '\0') return rc_err_set(err, RC_EPARSE, "empty value");
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  size_t digits = 0;
  int frac = 0;
  while (isdigit((unsigned char)*p)) p++, digits++;
  if (*p == '.') {
    p++;
    frac = 1;
    while (isdigit((unsigned char)*p)) p++, digits++;
  }
  if (digits == 0) {
    const char *q = s + (s[0] == '+' || s[0] == '-');
    if (*q == '.') q++;
    if (strncasecmp(q, "inf", 3) == 0 || strncasecmp(q, "nan", 3) == 0)
      return rc_err_set(err, RC_EPARSE, "%.20s is not a usable threshold (Inf and NaN are refused)",
                        s);
    return rc_err_set(err, RC_EPARSE,
                      "not a number: \"%.40s\" (expected e.g. 0.05, 5%%, 2000ms or 3)", s);
  }
  if ((*p == 'e' || *p == 'E') &&
      (isdigit((unsigned char)p[1]) ||
       ((p[1] == '+' || p[1] == '-') && isdigit((unsigned char)p[2])))) {
    frac = 1;
    p += 2;
    while (isdigit((unsigned char)*p)) p++;
  }
  char num[64];
  size_t nlen = (size_t)(p - s);
  if (nlen >= sizeof(num)) return rc_err_set(err, RC_EPARSE, "number too long");
  memcpy(num, s, nlen);
  num[nlen] = '\0';
  errno = 0;
  double v = strtod(num, NULL);
  if (!isfinite(v) || errno == ERANGE)
    return rc_err_set(err, RC_EPARSE, "%.40s is out of range", num);
  if (*p == '\0') {
    *out = v;
    return 0;
  }
  if (*p == ' ' || *p == '\t') {
    const char *u = p;
    while (*u == ' ' || *u == '\t') u++;
    if (*u != '\0')
      return rc_err_set(err, RC_EPARSE, "no space allowed between a number and its unit: write %s%s",
                        num, u);
    return rc_err_set(err, RC_EPARSE, "trailing space after %s", num);
  }
  if (*p == '%') {
    if (p[1] != '\0')
      return rc_err_set(err, RC_EPARSE, "unexpected \"%.20s\" after %%", p + 1);
    *out = v / 100.0;
    return 0;
  }
  size_t ulen = 0;
  int u = dur_unit(p, &ulen);
  if (u < 0)
    return rc_err_set(err, RC_EPARSE,
                      "unknown unit \"%.20s\" (known: %% for percent; ms s m h d w y for times, in "
                      "seconds)",
                      p);
  if (p[ulen] != '\0') {
    /* Combined durations ("1h30m") are whole numbers of each unit, as in Prometheus. */
    int64_t ms = 0;
    rc_err_t e2;
    if (frac || s[0] == '-' || s[0] == '+' || rc_rules_parse_duration(s, &ms, &e2) != 0)
      return rc_err_set(err, RC_EPARSE,
                        "\"%.40s\" is not a quantity (expected e.g. 0.05, 5%%, 2000ms, 1.5s or "
                        "1h30m)",
                        s);
    *out = (double)ms / 1000.0;
    return 0;
  }
  *out = v * (double)DUR_UNITS[u].ms / 1000.0;
  if (!isfinite(*out)) return rc_err_set(err, RC_EPARSE, "%.40s is out of range", s);
  return 0;
}

/* ---- small helpers ---------------------------------------------------------------------- */

/* libyaml's marks count characters (mark.index too, not bytes), and a line break is \n, \r\n,
 * \r, NEL, LS or PS; a leading byte order mark is not counted. These two helpers convert
 * between marks and byte offsets in the source under the same rules. */
static size_t bom_len(const ld_t *l) {
  return l->len >= 3 && memcmp(l->src, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* If a line break starts at byte i, its length in bytes; else 0. */
static size_t break_len(const ld_t *l, size_t i) {
  const unsigned char *s = (const unsigned char *)l->src;
  if (s[i] == '\n') return 1;
  if (s[i] == '\r') return i + 1 < l->len && s[i + 1] == '\n' ? 2 : 1;
  if (s[i] == 0xC2 && i + 1 < l->len && s[i + 1] == 0x85) return 2;
  if (s[i] == 0xE2 && i + 2 < l->len && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9))
    return 3;
  return 0;
}

static size_t byte_of_mark(const ld_t *l, yaml_mark_t m) {
  size_t i = bom_len(l), line = 0, b;
  while (i < l->len && line < m.line) {
    if ((b = break_len(l, i)) != 0) i += b, line++;
    else i++;
  }
  for (size_t c = 0; c < m.column && i < l->len; c++) {
    i++;
    while (i < l->len && ((unsigned char)l->src[i] & 0xC0) == 0x80) i++;
  }
  return i;
}

/* 1-based line and character column of byte offset i. */
static void pos_of_index(const ld_t *l, size_t i, int *line, int *col) {
  int ln = 1, c = 1;
  size_t k = bom_len(l), b;
  while (k < i && k < l->len) {
    if ((b = break_len(l, k)) != 0) {
      ln++, c = 1, k += b;
      continue;
    }
    if (((unsigned char)l->src[k] & 0xC0) != 0x80) c++;
    k++;
  }
  *line = ln;
  *col = c;
}


static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40) return 99;
  size_t row[41];
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t cur = row[j];
      size_t sub = prev + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
      size_t best = row[j] + 1 < row[j - 1] + 1 ? row[j] + 1 : row[j - 1] + 1;
      row[j] = sub < best ? sub : best;
      prev = cur;
    }
  }
  return row[lb];
}

/* The closest of names to s, if close enough to be a likely typo; NULL otherwise. */
static const char *did_you_mean(const char *s, const char *const *names, size_t n) {
  const char *best = NULL;
  size_t bd = 99;
  for (size_t i = 0; i < n; i++) {
    size_t dd = edit_distance(s, names[i]);
    if (dd < bd) bd = dd, best = names[i];
  }
  size_t len = strlen(s);
  size_t limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
  return bd <= limit ? best : NULL;
}

static void join_names(const char *const *names, size_t n, char *buf, size_t cap) {
  size_t o = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", names[i]);
}

static const char *SV(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static int is_plain(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int is_null(const yaml_node_t *n) {
  if (!is_plain(n)) return 0;
  const char *v = SV(n);
  return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
         strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *kind_name(const yaml_node_t *n) {
  if (n->type == YAML_MAPPING_NODE) return "a mapping";
  if (n->type == YAML_SEQUENCE_NODE) return "a list";
  if (is_null(n)) return "nothing";
  return "a string";
}

static yaml_node_t *node(ld_t *l, yaml_node_item_t id) { return yaml_document_get_node(&l->doc, id); }

/* The value of key in mapping m (first occurrence; duplicates are reported by check_keys). */
static yaml_node_t *get(ld_t *l, yaml_node_t *m, const char *key, yaml_node_t **keynode) {
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key);
    if (k && k->type == YAML_SCALAR_NODE && strcmp(SV(k), key) == 0) {
      if (keynode) *keynode = k;
      return node(l, p->value);
    }
  }
  return NULL;
}

/* Reports keys of m that are not in known (with a did-you-mean), duplicates and non-string
 * keys. Returns the number of problems. */
static int check_keys(ld_t *l, yaml_node_t *m, const char *where, const char *const *known,
                      size_t nknown) {
  int bad = 0;
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key);
    if (k == NULL) continue;
    if (k->type != YAML_SCALAR_NODE) {
      err_node(l, k, "keys of %s must be plain names, not %s", where, kind_name(k));
      bad++;
      continue;
    }
    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < p; q++) {
      yaml_node_t *k2 = node(l, q->key);
      if (k2 && k2->type == YAML_SCALAR_NODE && strcmp(SV(k2), SV(k)) == 0) {
        err_node(l, k, "duplicate key \"%.60s\" in %s (first at line %d)", SV(k), where,
                 NLINE(k2));
        bad++;
        break;
      }
    }
    if (known == NULL) continue;
    size_t i;
    for (i = 0; i < nknown; i++)
      if (strcmp(known[i], SV(k)) == 0) break;
    if (i < nknown) continue;
    const char *dym = did_you_mean(SV(k), known, nknown);
    if (dym) {
      err_node(l, k, "unknown key \"%.60s\" in %s; did you mean \"%s\"?", SV(k), where, dym);
    } else {
      char list[300];
      join_names(known, nknown, list, sizeof(list));
      err_node(l, k, "unknown key \"%.60s\" in %s (known: %s)", SV(k), where, list);
    }
    bad++;
  }
  return bad;
}

/* Is some key of m a likely typo of `want`? Then "needs want:" would only repeat the
 * unknown-key error already given for it. */
static int has_typo_of(ld_t *l, yaml_node_t *m, const char *want) {
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key);
    if (k && k->type == YAML_SCALAR_NODE && strcmp(SV(k), want) != 0 &&
        did_you_mean(SV(k), &want, 1) != NULL)
      return 1;
  }
  return 0;
}

/* An empty value where a string was required: if the source line goes on with " #...", the
 * value was most likely swallowed as a comment (the seed's `- slack: #deployments`). */
static void empty_value_error(ld_t *l, const yaml_node_t *key, const yaml_node_t *val,
                              const char *what) {
  const yaml_node_t *from = key ? key : val;
  size_t i = byte_of_mark(l, from->end_mark);
  int col = (int)from->end_mark.column + 1;
  if (key) {
    /* Past the key, the colon and blanks, on the same line. */
    while (i < l->len && (l->src[i] == ' ' || l->src[i] == '\t' || l->src[i] == ':')) i++, col++;
  } else {
    i = byte_of_mark(l, val->start_mark);
    col = NCOL(val);
    while (i < l->len && (l->src[i] == ' ' || l->src[i] == '\t')) i++, col++;
  }
  if (i < l->len && l->src[i] == '#' && (i == 0 || l->src[i - 1] == ' ' || l->src[i - 1] == '\t')) {
    size_t e = i;
    while (e < l->len && l->src[e] != '\n' && l->src[e] != '\r') e++;
    while (e > i && (l->src[e - 1] == ' ' || l->src[e - 1] == '\t')) e--;
    int n = (int)(e - i) > 80 ? 80 : (int)(e - i);
    if (key)
      err_at(l, (int)from->end_mark.line + 1, col,
             "value is empty: \"%.*s\" was read as a comment; quote it: %s: \"%.*s\"", n,
             l->src + i, SV(key), n, l->src + i);
    else
      err_at(l, (int)from->end_mark.line + 1, col,
             "value is empty: \"%.*s\" was read as a comment; quote it: - \"%.*s\"", n,
             l->src + i, n, l->src + i);
    return;
  }
  err_node(l, key ? key : val, "%s is empty; expected a string", what);
}

/* A string value. Numbers and booleans are taken as their text ("service: 123" -> "123").
 * Returns a malloc'd copy, or NULL after reporting. */
static char *get_string(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what) {
  if (v->type != YAML_SCALAR_NODE) {
    err_node(l, v, "%s must be a string, not %s", what, kind_name(v));
    return NULL;
  }
  if (is_null(v)) {
    empty_value_error(l, key, v, what);
    return NULL;
  }
  if (v->data.scalar.length == 0) { /* "" or '' */
    err_node(l, v, "%s is empty; expected a string", what);
    return NULL;
  }
  if (memchr(v->data.scalar.value, '\0', v->data.scalar.length) != NULL) {
    err_node(l, v, "%s contains a NUL character", what);
    return NULL;
  }
  char *s = strdup(SV(v));
  if (s == NULL) l->nomem = 1;
  return s;
}

/* A plain scalar for a number/quantity/duration; quoted text is accepted too (a quantity such
 * as "5%" reads the same either way). Returns the text or NULL after reporting. */
static const char *get_scalar_text(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what,
                                   const char *expected) {
  if (v->type != YAML_SCALAR_NODE) {
    err_node(l, v, "%s must be %s, not %s", what, expected, kind_name(v));
    return NULL;
  }
  if (is_null(v) || v->data.scalar.length == 0) {
    if (key) {
      /* Reuse the comment detection; a quantity rarely starts with '#', but be clear. */
      size_t i = byte_of_mark(l, key->end_mark);
      while (i < l->len && (l->src[i] == ' ' || l->src[i] == ':')) i++;
      if (i < l->len && l->src[i] == '#') {
        empty_value_error(l, key, v, what);
        return NULL;
      }
    }
    err_node(l, key ? key : v, "%s is empty; expected %s", what, expected);
    return NULL;
  }
  if (memchr(v->data.scalar.value, '\0', v->data.scalar.length) != NULL) {
    err_node(l, v, "%s contains a NUL character", what);
    return NULL;
  }
  return SV(v);
}

static int get_quantity(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what, double *out) {
  const char *s = get_scalar_text(l, key, v, what, "a number or quantity (e.g. 0.05, 5%, 2000ms)");
  if (s == NULL) return -1;
  if (is_plain(v) && (strcasecmp(s, ".inf") == 0 || strcasecmp(s, "-.inf") == 0 ||
                      strcasecmp(s, "+.inf") == 0 || strcasecmp(s, ".nan") == 0)) {
    err_node(l, v, "%s: %s is not a usable threshold (Inf and NaN are refused)", what, s);
    return -1;
  }
  rc_err_t e = {0};
  if (rc_rules_parse_quantity(s, out, &e) != 0) {
    err_node(l, v, "%s: %s", what, e.msg);
    return -1;
  }
  return 0;
}

static int get_duration(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what,
                        int64_t *out) {
  const char *s = get_scalar_text(l, key, v, what, "a duration (e.g. 5m, 30s, 1h30m)");
  if (s == NULL) return -1;
  rc_err_t e = {0};
  if (rc_rules_parse_duration(s, out, &e) != 0) {
    err_node(l, v, "%s: %s", what, e.msg);
    return -1;
  }
  return 0;
}

static int get_bool(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what, int *out) {
  if (v->type == YAML_SCALAR_NODE && is_plain(v)) {
    const char *s = SV(v);
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return *out = 1, 0;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return *out = 0, 0;
    static const char *const yes[] = {"yes", "Yes", "YES", "on", "On", "ON", "y", "Y"};
    static const char *const no[] = {"no", "No", "NO", "off", "Off", "OFF", "n", "N"};
    for (size_t i = 0; i < RC_ARRAY_SIZE(yes); i++) {
      if (!strcmp(s, yes[i])) {
        err_node(l, v, "%s: \"%s\" is a YAML 1.1 boolean that other tools read as a string; "
                 "write true", what, s);
        return -1;
      }
      if (!strcmp(s, no[i])) {
        err_node(l, v, "%s: \"%s\" is a YAML 1.1 boolean that other tools read as a string; "
                 "write false", what, s);
        return -1;
      }
    }
  }
  if (v->type == YAML_SCALAR_NODE && is_null(v)) {
    err_node(l, key ? key : v, "%s is empty; expected true or false", what);
    return -1;
  }
  if (v->type == YAML_SCALAR_NODE && !is_plain(v) &&
      (!strcmp(SV(v), "true") || !strcmp(SV(v), "false"))) {
    err_node(l, v, "%s must be a boolean, not the string \"%s\"; drop the quotes", what, SV(v));
    return -1;
  }
  err_node(l, v, "%s must be true or false, not %s%s%.40s%s", what,
           v->type == YAML_SCALAR_NODE ? "" : kind_name(v),
           v->type == YAML_SCALAR_NODE ? "\"" : "", v->type == YAML_SCALAR_NODE ? SV(v) : "",
           v->type == YAML_SCALAR_NODE ? "\"" : "");
  return -1;
}

/* A non-negative whole number (min_samples). */
static int get_count(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what, uint64_t *out) {
  const char *s = get_scalar_text(l, key, v, what, "a whole number >= 0");
  if (s == NULL) return -1;
  uint64_t x = 0;
  const char *p = s;
  if (*p == '+') p++;
  if (!isdigit((unsigned char)*p)) goto bad;
  for (; isdigit((unsigned char)*p); p++) {
    if (x > (UINT64_MAX - 9) / 10) {
      err_node(l, v, "%s: too large", what);
      return -1;
    }
    x = x * 10 + (uint64_t)(*p - '0');
  }
  if (*p != '\0') goto bad;
  *out = x;
  return 0;
bad:
  err_node(l, v, "%s must be a whole number >= 0, not \"%.40s\"", what, s);
  return -1;
}

/* ---- positions inside scalars ----------------------------------------------------------- */

/* Byte offset in text of 1-based (line, character column), clamped to len.
 * The NOLINTs: clang-analyzer follows an empty template through expand() (whose malloc it
 * sees as unwritten) and then assumes i < len with len = strlen(text) = 0; every byte below
 * len is written. */
static size_t offset_of(const char *text, size_t len, int line, int col) {
  size_t i = 0;
  for (int ln = 1; ln < line && i < len; i++)
    if (text[i] == '\n') ln++; // NOLINT(clang-analyzer-core.UndefinedBinaryOperatorResult)
  for (int c = 1; c < col && i < len && text[i] != '\n'; c++) {
    i++;
    // NOLINTNEXTLINE(clang-analyzer-core.UndefinedBinaryOperatorResult)
    while (i < len && ((unsigned char)text[i] & 0xC0) == 0x80) i++;
  }
  return i;
}

/* The raw source index where decoded byte `off` of scalar n comes from (see the header
 * comment for where this is exact and where it is a best effort). */
static size_t raw_index(const ld_t *l, const yaml_node_t *n, size_t off) {
  const char *s = l->src;
  size_t len = l->len, i = byte_of_mark(l, n->start_mark);
  yaml_scalar_style_t st = n->data.scalar.style;
  if (st == YAML_LITERAL_SCALAR_STYLE || st == YAML_FOLDED_SCALAR_STYLE) {
    while (i < len && s[i] != '\n') i++; /* past the header line */
    if (i < len) i++;
    size_t indent = 0, j = i;
    while (j < len && (s[j] == '\n' || s[j] == ' ')) { /* first non-blank line's indent */
      if (s[j] == '\n') indent = 0, i = j + 1;
      else indent++;
      j++;
    }
    int at_line_start = 1;
    for (size_t k = 0; k < off && i < len; k++) {
      if (at_line_start) {
        for (size_t m = 0; m < indent && i < len && s[i] == ' '; m++) i++;
        at_line_start = 0;
      }
      size_t b = break_len(l, i);
      if (b) at_line_start = 1;
      i += b ? b : 1;
    }
    if (at_line_start)
      for (size_t m = 0; m < indent && i < len && s[i] == ' '; m++) i++;
    return i;
  }
  int dq = st == YAML_DOUBLE_QUOTED_SCALAR_STYLE, sq = st == YAML_SINGLE_QUOTED_SCALAR_STYLE;
  if (dq || sq) i++;
  const char *v = (const char *)n->data.scalar.value;
  for (size_t k = 0; k < off && i < len;) {
    if (dq && s[i] == '\\' && i + 1 < len) {
      size_t el = s[i + 1] == 'x' ? 4 : s[i + 1] == 'u' ? 6 : s[i + 1] == 'U' ? 10 : 2;
      i += el;
      k++; /* one escape = one decoded byte: a best effort for \u escapes */
      while (k < off && k < n->data.scalar.length && ((unsigned char)v[k] & 0xC0) == 0x80) k++;
      continue;
    }
    if (sq && s[i] == '\'' && i + 1 < len && s[i + 1] == '\'') {
      i += 2;
      k++;
      continue;
    }
    if (s[i] == '\n' || s[i] == '\r') { /* folded line break: one space */
      while (i < len && (s[i] == '\n' || s[i] == '\r' || s[i] == ' ' || s[i] == '\t')) i++;
      k++;
      continue;
    }
    i++;
    k++;
  }
  return i;
}

/* Position in the file of (eline, ecol) inside the expression held by scalar n. */
static void expr_pos(const ld_t *l, const yaml_node_t *n, int eline, int ecol, int *line,
                     int *col) {
  if (eline < 1) eline = 1;
  if (ecol < 1) ecol = 1;
  size_t off = offset_of(SV(n), n->data.scalar.length, eline, ecol);
  pos_of_index(l, raw_index(l, n, off), line, col);
}

/* ---- templates -------------------------------------------------------------------------- */

/* One piece of an expanded template: expanded[ex, ex+len) came from template[tp...). A
 * placeholder's pieces map back to the placeholder's first character. */
typedef struct seg { size_t ex, tp, len; int literal; } seg_t;
#define MAX_SEGS 64

/* Expands {{selector}} and {{window}}. Returns a malloc'd string (NULL: out of memory). */
static char *expand(const char *tmpl, const char *sel, const char *win, seg_t *segs,
                    size_t *nsegs) {
  size_t cap = strlen(tmpl) + 1, n = 0, ns = 0;
  for (const char *p = tmpl; (p = strstr(p, "{{")) != NULL; p++) cap += strlen(sel) + strlen(win);
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  const char *p = tmpl;
  while (*p) {
    const char *rep = NULL;
    size_t skip = 0;
    if (strncmp(p, "{{selector}}", 12) == 0) rep = sel, skip = 12;
    else if (strncmp(p, "{{window}}", 10) == 0) rep = win, skip = 10;
    if (rep) {
      size_t rl = strlen(rep);
      if (ns < MAX_SEGS) segs[ns++] = (seg_t){n, (size_t)(p - tmpl), rl, 0};
      memcpy(out + n, rep, rl);
      n += rl;
      p += skip;
      continue;
    }
    size_t start = (size_t)(p - tmpl), ex = n;
    while (*p && strncmp(p, "{{selector}}", 12) != 0 && strncmp(p, "{{window}}", 10) != 0)
      out[n++] = *p++;
    if (ns < MAX_SEGS) segs[ns++] = (seg_t){ex, start, n - ex, 1};
  }
  out[n] = '\0';
  *nsegs = ns;
  return out;
}

static size_t template_offset(const seg_t *segs, size_t ns, size_t ex_off) {
  for (size_t i = 0; i < ns; i++)
    if (ex_off >= segs[i].ex && ex_off < segs[i].ex + segs[i].len)
      return segs[i].literal ? segs[i].tp + (ex_off - segs[i].ex) : segs[i].tp;
  return ns ? segs[ns - 1].tp + segs[ns - 1].len : 0;
}

static const metric_def_t BUILTINS[] = {
    {"error_rate", DEF_ERROR_RATE, DEF_REQUESTS, RANGE_RATIO, NULL, NULL, 0},
    {"latency_p99", DEF_LATENCY_P99, DEF_REQUESTS, RANGE_SECONDS, NULL, NULL, 0},
    {"health_check_failures", DEF_HEALTH, NULL, RANGE_COUNT, NULL, NULL, 0},
};

/* The effective definition of a metric: ours, overridden by the server config, overridden by
 * the file's `metrics:` (a file template without requests_expr keeps the inherited one). */
static int find_metric(const ld_t *l, const char *name, metric_def_t *out) {
  int found = 0;
  memset(out, 0, sizeof(*out));
  for (size_t b = 0; b < RC_ARRAY_SIZE(BUILTINS); b++) {
    if (strcmp(BUILTINS[b].name, name) != 0) continue;
    *out = BUILTINS[b];
    found = 1;
    const rc_rules_cfg_t *c = l->cfg;
    if (c) {
      if (b == 0 && c->error_rate_expr) out->expr = c->error_rate_expr;
      if (b == 1 && c->latency_p99_expr) out->expr = c->latency_p99_expr;
      if (b == 2 && c->health_check_failures_expr) out->expr = c->health_check_failures_expr;
      if (b != 2 && c->error_rate_requests_expr) out->requests = c->error_rate_requests_expr;
    }
  }
  for (uint32_t i = 0; i < l->nfile_metrics; i++) {
    const metric_def_t *f = &l->file_metrics[i];
    if (strcmp(f->name, name) != 0) continue;
    out->name = f->name;
    out->expr = f->expr;
    out->expr_node = f->expr_node;
    out->broken = f->broken;
    if (f->requests_node) {
      out->requests = f->requests;
      out->requests_node = f->requests_node;
    }
    found = 1;
  }
  return found ? 0 : -1;
}

/* ---- expressions ------------------------------------------------------------------------ */

static void min_range(const rc_pq_node_t *n, int64_t *min) {
  if (n == NULL) return;
  if (n->kind == RC_PQ_RANGE_FN && n->range_ms > 0 && (*min == 0 || n->range_ms < *min))
    *min = n->range_ms;
  min_range(n->args[0], min);
  min_range(n->args[1], min);
}

/* Parses PromQL written in the file (value node v). Errors at their place in the file. */
static rc_pq_expr_t *parse_file_expr(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what) {
  char *text = get_string(l, key, v, what);
  if (text == NULL) return NULL;
  rc_pq_expr_t *e = NULL;
  rc_err_t pe = {0};
  int rc = rc_pq_parse(text, strlen(text), 0, &e, &pe);
  free(text);
  if (rc == RC_ENOMEM) {
    l->nomem = 1;
    return NULL;
  }
  if (rc != 0) {
    int line, col;
    expr_pos(l, v, pe.line, pe.col, &line, &col);
    err_at(l, line, col, "%s: %s", what, pe.msg);
    return NULL;
  }
  return e;
}

/* Expands and parses a template for one trigger. Template errors go to the template's place
 * when it was written in this file, else to the trigger's metric: value. */
static rc_pq_expr_t *parse_template(ld_t *l, const char *tmpl, yaml_node_t *tmpl_node,
                                    const char *label, const char *sel, int64_t window_ms,
                                    yaml_node_t *at) {
  char win[64];
  fmt_duration(window_ms, win, sizeof(win));
  seg_t segs[MAX_SEGS];
  size_t ns = 0;
  char *text = expand(tmpl, sel, win, segs, &ns);
  if (text == NULL) {
    l->nomem = 1;
    return NULL;
  }
  rc_pq_expr_t *e = NULL;
  rc_err_t pe = {0};
  int rc = rc_pq_parse(text, strlen(text), 0, &e, &pe);
  if (rc == RC_ENOMEM) l->nomem = 1;
  else if (rc != 0) {
    size_t off = offset_of(text, strlen(text), pe.line, pe.col);
    if (tmpl_node) {
      size_t toff = template_offset(segs, ns, off);
      int line, col;
      pos_of_index(l, raw_index(l, tmpl_node, toff), &line, &col);
      if (at == tmpl_node) err_at(l, line, col, "%s: %s", label, pe.msg);
      else err_at(l, line, col, "%s (expanded for the trigger at line %d): %s", label, NLINE(at),
                  pe.msg);
    } else {
      err_node(l, at, "%s does not parse: %s, at offset %zu of: %.200s", label, pe.msg, off,
               text);
    }
  }
  free(text);
  return e;
}

/* ---- PromQL text helpers ---------------------------------------------------------------- */

static int valid_label_name(const char *s) {
  if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
  for (s++; *s; s++)
    if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
  return 1;
}

/* Appends `name op "value"` with the value escaped as a PromQL (Go) string. */
static char *matcher_text(const char *name, const char *op, const char *v, size_t vlen) {
  size_t cap = strlen(name) + strlen(op) + 4 * vlen + 3;
  char *out = malloc(cap);
  if (out == NULL) return NULL;
  size_t n = (size_t)snprintf(out, cap, "%s%s\"", name, op);
  for (size_t i = 0; i < vlen; i++) {
    unsigned char c = (unsigned char)v[i];
    if (c == '\\' || c == '"') out[n++] = '\\', out[n++] = (char)c;
    else if (c == '\n') out[n++] = '\\', out[n++] = 'n';
    else if (c == '\t') out[n++] = '\\', out[n++] = 't';
    else if (c == '\r') out[n++] = '\\', out[n++] = 'r';
    else if (c < 0x20 || c == 0x7f) n += (size_t)snprintf(out + n, cap - n, "\\x%02x", c);
    else out[n++] = (char)c;
  }
  out[n++] = '"';
  out[n] = '\0';
  return out;
}

static int push_str(char ***v, uint32_t *n, char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof(char *));
  if (nv == NULL) return -1;
  *v = nv;
  nv[(*n)++] = s;
  return 0;
}

/* ---- freeing ---------------------------------------------------------------------------- */

static void trigger_free(rc_trigger_t *t) {
  free(t->name);
  free(t->metric);
  rc_pq_free(t->expr);
  rc_pq_free(t->requests_expr);
}

static void rule_free(rc_rule_t *r) {
  free(r->file);
  free(r->service);
  free(r->environment);
  for (uint32_t i = 0; i < r->nmatch; i++) free(r->match[i]);
  free(r->match);
  for (uint32_t i = 0; i < r->ntriggers; i++) trigger_free(&r->triggers[i]);
  free(r->triggers);
  free(r->action);
  for (uint32_t i = 0; i < r->nnotify; i++) {
    free(r->notify[i].kind);
    free(r->notify[i].target);
  }
  free(r->notify);
  rc_approval_cfg_free(&r->approval);
  memset(r, 0, sizeof(*r));
}

void rc_ruleset_free(rc_ruleset_t *set) {
  for (uint32_t i = 0; i < set->n; i++) rule_free(&set->rules[i]);
  free(set->rules);
  memset(set, 0, sizeof(*set));
}

/* ---- rules ------------------------------------------------------------------------------ */

static const char *const TRIGGER_KEYS[] = {
    "metric",       "expr",           "name",          "threshold",       "window",
    "op",           "for",            "keep_firing_for", "min_samples",   "min_requests",
    "requests_expr", "no_data",       "warn_threshold", "resolve_threshold", "dry_run",
};
static const char *const RULE_KEYS[] = {"service", "environment", "match", "match_re",
                                        "triggers", "action", "warmup"};
static const char *const ACTION_KEYS[] = {"type", "notify", "approval"};
static const char *const APPROVAL_KEYS[] = {"when", "required", "approvers", "approver_groups",
                                            "timeout"};
static const char *const APPROVAL_WHEN[] = {"needed", "always"};
static const char *const ACTION_TYPES[] = {"previous_version", "notify", "dry_run"};
static const char *const NOTIFY_KINDS[] = {"slack", "pagerduty", "webhook"};
static const char *const NODATA[] = {"ignore", "fire", "alert"};
static const char *const TOP_KEYS[] = {"rollback", "rollbacks", "metrics"};
static const char *const METRIC_KEYS[] = {"expr", "requests_expr"};

/* Does op fire on the "high" side (value above threshold)? */
static int fires_high(rc_cmp_t op) { return op == RC_CMP_GE || op == RC_CMP_GT; }

static void parse_op(ld_t *l, yaml_node_t *key, yaml_node_t *v, rc_cmp_t *op) {
  if (v->type == YAML_SCALAR_NODE &&
      (v->data.scalar.style == YAML_FOLDED_SCALAR_STYLE ||
       v->data.scalar.style == YAML_LITERAL_SCALAR_STYLE)) {
    const char *c = v->data.scalar.style == YAML_FOLDED_SCALAR_STYLE ? ">" : "|";
    err_node(l, v, "op: an unquoted %s starts a YAML block scalar; quote the operator: op: \"%s\"",
             c, c);
    return;
  }
  const char *s = get_scalar_text(l, key, v, "op", "one of \">=\", \">\", \"<=\", \"<\"");
  if (s == NULL) return;
  if (!strcmp(s, ">=")) *op = RC_CMP_GE;
  else if (!strcmp(s, ">")) *op = RC_CMP_GT;
  else if (!strcmp(s, "<=")) *op = RC_CMP_LE;
  else if (!strcmp(s, "<")) *op = RC_CMP_LT;
  else if (!strcmp(s, "=>")) err_node(l, v, "op: unknown operator \"=>\"; did you mean \">=\"?");
  else if (!strcmp(s, "=<")) err_node(l, v, "op: unknown operator \"=<\"; did you mean \"<=\"?");
  else
    err_node(l, v, "op: unknown operator \"%.20s\" (expected \">=\", \">\", \"<=\" or \"<\")", s);
}

/* A keyword from a fixed list, with a did-you-mean. Returns its index or -1. */
static int get_enum(ld_t *l, yaml_node_t *key, yaml_node_t *v, const char *what,
                    const char *const *names, size_t n) {
  char *s = get_string(l, key, v, what);
  if (s == NULL) return -1;
  for (size_t i = 0; i < n; i++)
    if (strcmp(s, names[i]) == 0) {
      free(s);
      return (int)i;
    }
  const char *dym = did_you_mean(s, names, n);
  char list[200];
  join_names(names, n, list, sizeof(list));
  if (dym) err_node(l, v, "%s: unknown value \"%.60s\"; did you mean \"%s\"?", what, s, dym);
  else err_node(l, v, "%s: unknown value \"%.60s\" (expected one of: %s)", what, s, list);
  free(s);
  return -1;
}

typedef struct rule_ctx {
  const char *selector; /* {{selector}} for this rule */
  int selector_ok;
} rule_ctx_t;

static void check_thresholds(ld_t *l, rc_trigger_t *t, yaml_node_t *wn, yaml_node_t *rn) {
  int high = fires_high(t->op);
  if (wn && !isnan(t->warn_threshold)) {
    if (high ? !(t->warn_threshold < t->threshold) : !(t->warn_threshold > t->threshold))
      err_node(l, wn,
               "warn_threshold %g must be %s threshold %g: the warning band lies on the safe side "
               "of the rollback (op %s)",
               t->warn_threshold, high ? "below" : "above", t->threshold,
               rc_rules_cmp_name(t->op));
  }
  if (rn && !isnan(t->resolve_threshold)) {
    if (high ? t->resolve_threshold > t->threshold : t->resolve_threshold < t->threshold)
      err_node(l, rn,
               "resolve_threshold %g must be %s threshold %g: a firing trigger resolves once the "
               "value is back past it (op %s)",
               t->resolve_threshold, high ? "at or below" : "at or above", t->threshold,
               rc_rules_cmp_name(t->op));
  }
}

/* Warnings about values a metric cannot or will hardly take. */
static void range_warnings(ld_t *l, yaml_node_t *thr_node, const rc_trigger_t *t, range_t r) {
  double th = t->threshold;
  if (r == RANGE_NONE) return;
  if ((t->op == RC_CMP_LT && th <= 0) || (t->op == RC_CMP_LE && th < 0)) {
    warn_node(l, thr_node, "%s is never negative: op %s with threshold %g can never fire",
              t->metric, rc_rules_cmp_name(t->op), th);
    return;
  }
  if (r == RANGE_RATIO && (th < 0 || th > 1))
    warn_node(l, thr_node,
              "threshold %g is outside error_rate's range 0..1 (write 5%% or 0.05 for five "
              "percent)",
              th);
  else if (r == RANGE_SECONDS && th > 3600)
    warn_node(l, thr_node,
              "threshold %g s is over an hour: latency thresholds are in seconds (2000ms = 2)", th);
  else if (r == RANGE_SECONDS && th <= 0)
    warn_node(l, thr_node, "threshold %g s: a latency is never below or at zero", th);
  else if (r == RANGE_COUNT && th < 0)
    warn_node(l, thr_node, "threshold %g: a failure count is never negative", th);
}

static int parse_trigger(ld_t *l, yaml_node_t *tn, uint32_t index, const rule_ctx_t *rc,
                         rc_trigger_t *t) {
  uint32_t errors0 = l->errors;
  memset(t, 0, sizeof(*t));
  t->warn_threshold = t->resolve_threshold = NAN;
  t->line = NLINE(tn);
  t->col = NCOL(tn);
  if (tn->type != YAML_MAPPING_NODE) {
    if (is_null(tn)) err_node(l, tn, "trigger %u is empty; expected a mapping with metric: or expr:",
                              index + 1);
    else err_node(l, tn, "a trigger must be a mapping (metric:/expr:, threshold:, ...), not %s",
                  kind_name(tn));
    return -1;
  }
  check_keys(l, tn, "trigger", TRIGGER_KEYS, RC_ARRAY_SIZE(TRIGGER_KEYS));
  yaml_node_t *k, *v;
  yaml_node_t *metric_k = NULL, *expr_k = NULL;
  yaml_node_t *metric_v = get(l, tn, "metric", &metric_k);
  yaml_node_t *expr_v = get(l, tn, "expr", &expr_k);
  metric_def_t def;
  int have_def = 0;
  if (metric_v && expr_v) {
    err_node(l, expr_k, "a trigger takes either metric: or expr:, not both");
  } else if (!metric_v && !expr_v) {
    if (has_typo_of(l, tn, "metric") || has_typo_of(l, tn, "expr")) l->errors++;
    else err_node(l, tn, "a trigger needs metric: (error_rate, latency_p99, health_check_failures) or "
             "expr: (PromQL)");
  } else if (metric_v) {
    t->metric = get_string(l, metric_k, metric_v, "metric");
    if (t->metric) {
      if (find_metric(l, t->metric, &def) == 0) {
        have_def = 1;
      } else {
        const char *names[RC_ARRAY_SIZE(BUILTINS) + MAX_FILE_METRICS];
        size_t nn = 0;
        for (size_t b = 0; b < RC_ARRAY_SIZE(BUILTINS); b++) names[nn++] = BUILTINS[b].name;
        for (uint32_t i = 0; i < l->nfile_metrics; i++) names[nn++] = l->file_metrics[i].name;
        const char *dym = did_you_mean(t->metric, names, nn);
        char list[400];
        join_names(names, nn, list, sizeof(list));
        if (dym)
          err_node(l, metric_v, "unknown metric \"%.60s\"; did you mean \"%s\"?", t->metric, dym);
        else
          err_node(l, metric_v, "unknown metric \"%.60s\" (known: %s; or write expr: with PromQL)",
                   t->metric, list);
      }
    }
  }
  if ((v = get(l, tn, "name", &k)) != NULL) t->name = get_string(l, k, v, "name");

  yaml_node_t *thr_v = get(l, tn, "threshold", &k);
  int have_thr = 0;
  if (thr_v == NULL) {
    if (!has_typo_of(l, tn, "threshold")) err_node(l, tn, "a trigger needs threshold:");
    else l->errors++;
  }
  else have_thr = get_quantity(l, k, thr_v, "threshold", &t->threshold) == 0;

  yaml_node_t *win_v = get(l, tn, "window", &k);
  int64_t window_ms = 0;
  int have_win = 0;
  if (win_v) {
    if (get_duration(l, k, win_v, "window", &window_ms) == 0) {
      if (window_ms <= 0) err_node(l, win_v, "window must be longer than 0");
      else have_win = 1;
    }
  } else if (metric_v) {
    if (!has_typo_of(l, tn, "window"))
      err_node(l, tn, "a metric: trigger needs window: (e.g. window: 5m)");
    else l->errors++;
  }
  if (metric_v) t->window_ms = have_win ? window_ms : 0;

  if ((v = get(l, tn, "op", &k)) != NULL) parse_op(l, k, v, &t->op);
  if ((v = get(l, tn, "for", &k)) != NULL) get_duration(l, k, v, "for", &t->for_ms);
  if ((v = get(l, tn, "keep_firing_for", &k)) != NULL)
    get_duration(l, k, v, "keep_firing_for", &t->keep_firing_for_ms);
  if ((v = get(l, tn, "min_samples", &k)) != NULL)
    get_count(l, k, v, "min_samples", &t->min_samples);
  yaml_node_t *minreq_v = get(l, tn, "min_requests", &k);
  if (minreq_v) {
    const char *s = get_scalar_text(l, k, minreq_v, "min_requests", "a number >= 0");
    if (s) {
      rc_err_t e = {0};
      double x = 0;
      int bad = rc_rules_parse_quantity(s, &x, &e) != 0;
      if (!bad && strpbrk(s, "%msdhwy") != NULL) bad = 1;
      if (bad || x < 0)
        err_node(l, minreq_v, "min_requests must be a number >= 0 (a request count), not \"%.40s\"",
                 s);
      else t->min_requests = x;
    }
  }
  if ((v = get(l, tn, "no_data", &k)) != NULL) {
    int i = get_enum(l, k, v, "no_data", NODATA, RC_ARRAY_SIZE(NODATA));
    if (i >= 0) t->no_data = (rc_nodata_t)i;
  }
  yaml_node_t *warn_v = get(l, tn, "warn_threshold", &k);
  if (warn_v && get_quantity(l, k, warn_v, "warn_threshold", &t->warn_threshold) != 0)
    t->warn_threshold = NAN, warn_v = NULL;
  yaml_node_t *res_v = get(l, tn, "resolve_threshold", &k);
  if (res_v && get_quantity(l, k, res_v, "resolve_threshold", &t->resolve_threshold) != 0)
    t->resolve_threshold = NAN, res_v = NULL;
  if ((v = get(l, tn, "dry_run", &k)) != NULL) get_bool(l, k, v, "dry_run", &t->dry_run);
  if (have_thr) check_thresholds(l, t, warn_v, res_v);

  /* The expression(s). */
  yaml_node_t *req_k = NULL, *req_v = get(l, tn, "requests_expr", &req_k);
  if (expr_v && !metric_v) {
    t->expr = parse_file_expr(l, expr_k, expr_v, "expr");
    if (t->expr && t->expr->root && t->expr->root->kind == RC_PQ_BINARY &&
        rc_pq_op_is_comparison(t->expr->root->op) && !t->expr->root->return_bool) {
      err_node(l, expr_v,
               "expr: ends in a comparison (%s); ripcord compares it with threshold: itself, so "
               "drop the comparison and set threshold: and op:",
               rc_pq_op_name(t->expr->root->op));
    }
  } else if (have_def && def.broken) {
    l->errors++; /* already reported at the template; the trigger cannot load */
  } else if (have_def && have_win && rc->selector_ok) {
    char label[96];
    snprintf(label, sizeof(label), "template of metric %s", t->metric);
    t->expr = parse_template(l, def.expr, def.expr_node, label, rc->selector, window_ms, metric_v);
  }
  if (req_v) {
    t->requests_expr = parse_file_expr(l, req_k, req_v, "requests_expr");
  } else if (t->min_requests > 0) {
    if (metric_v && have_def && def.requests == NULL && def.requests_node == NULL) {
      err_node(l, minreq_v,
               "min_requests: metric %s has no request count; use min_samples, or give "
               "requests_expr:",
               t->metric);
    } else if (!metric_v && expr_v) {
      err_node(l, minreq_v,
               "min_requests on an expr: trigger needs requests_expr: (PromQL counting the "
               "requests in the window, e.g. sum(increase(http_requests_total{...}[5m])))");
    } else if (have_def && have_win && rc->selector_ok) {
      char label[96];
      snprintf(label, sizeof(label), "requests template of metric %s", t->metric);
      t->requests_expr = parse_template(l, def.requests, def.requests_node, label, rc->selector,
                                        window_ms, metric_v);
    }
  }

  /* Default name, and warnings once the trigger is known to be valid. */
  if (t->name == NULL && l->errors == errors0) {
    char nb[32];
    snprintf(nb, sizeof(nb), "expr%u", index + 1);
    t->name = strdup(t->metric ? t->metric : nb);
    if (t->name == NULL) l->nomem = 1;
  }
  if (l->errors != errors0) return -1;
  int64_t scrape = l->cfg && l->cfg->scrape_interval_ms > 0 ? l->cfg->scrape_interval_ms
                                                             : DEFAULT_SCRAPE_MS;
  char sb[32], wb[32];
  fmt_duration(scrape, sb, sizeof(sb));
  if (t->metric && t->window_ms > 0 && t->window_ms < 4 * scrape) {
    fmt_duration(t->window_ms, wb, sizeof(wb));
    warn_node(l, win_v,
              "window %s is shorter than 4x the scrape interval (%s%s): too few samples for a "
              "stable rate",
              wb, sb, l->cfg && l->cfg->scrape_interval_ms > 0 ? "" : ", assumed");
  }
  if (!t->metric && t->expr) {
    int64_t mr = 0;
    min_range(t->expr->root, &mr);
    if (mr > 0 && mr < 4 * scrape) {
      fmt_duration(mr, wb, sizeof(wb));
      warn_node(l, expr_v,
                "range [%s] in expr: is shorter than 4x the scrape interval (%s%s): too few "
                "samples for a stable rate",
                wb, sb, l->cfg && l->cfg->scrape_interval_ms > 0 ? "" : ", assumed");
    }
  }
  if (have_def) range_warnings(l, thr_v, t, def.range);
  return 0;
}

static void parse_match(ld_t *l, yaml_node_t *mv, int regex, rc_rule_t *r) {
  const char *what = regex ? "match_re" : "match";
  if (mv->type != YAML_MAPPING_NODE || mv->data.mapping.pairs.start == mv->data.mapping.pairs.top) {
    err_node(l, mv, "%s must be a non-empty mapping of label: %s (e.g. %s: {job: api})", what,
             regex ? "regex" : "value", what);
    return;
  }
  check_keys(l, mv, what, NULL, 0);
  for (yaml_node_pair_t *p = mv->data.mapping.pairs.start; p < mv->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
    if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) continue;
    if (!valid_label_name(SV(k))) {
      err_node(l, k, "%s: \"%.60s\" is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", what, SV(k));
      continue;
    }
    char *val;
    if (v->type == YAML_SCALAR_NODE && !is_null(v)) {
      val = strdup(SV(v));
      if (val == NULL) {
        l->nomem = 1;
        return;
      }
    } else if (v->type == YAML_SCALAR_NODE) {
      /* An empty exact value is meaningful in PromQL ({l=""}: the label is absent) but it
       * should be written so; a bare key is more likely a mistake (or a # comment). */
      empty_value_error(l, k, v, what);
      continue;
    } else {
      err_node(l, v, "%s: the value of %s must be a string, not %s", what, SV(k), kind_name(v));
      continue;
    }
    size_t vlen = v->data.scalar.length;
    if (regex) {
      rc_matcher_t m;
      rc_err_t e = {0};
      int rc = rc_matcher_init(&m, RC_MATCH_RE, SV(k), strlen(SV(k)), val, vlen, 0, &e);
      if (rc == 0) rc_matcher_close(&m);
      if (rc == RC_ENOMEM) l->nomem = 1;
      else if (rc != 0) {
        int line, col;
        expr_pos(l, v, 1, e.col > 0 ? e.col : 1, &line, &col);
        err_at(l, line, col, "match_re: %s: %s", SV(k), e.msg);
        free(val);
        continue;
      }
    } else if (strpbrk(val, "*+?|()[]^$\\") != NULL) {
      warn_node(l, v, "match: values are exact; \"%.60s\" looks like a regex: use match_re:", val);
    }
    char *mt = matcher_text(SV(k), regex ? "=~" : "=", val, vlen);
    free(val);
    if (mt == NULL || push_str(&r->match, &r->nmatch, mt) != 0) {
      free(mt);
      l->nomem = 1;
      return;
    }
  }
}

/* A list of names (approvers:, approver_groups:). */
static void get_name_list(ld_t *l, yaml_node_t *k, yaml_node_t *v, const char *what,
                          char ***out, uint32_t *n) {
  if (v->type != YAML_SEQUENCE_NODE) {
    err_node(l, v, "%s must be a list of names, not %s", what, is_null(v) ? "empty" : kind_name(v));
    return;
  }
  if (v->data.sequence.items.top == v->data.sequence.items.start) {
    err_node(l, k, "%s is an empty list: nobody could approve; leave it out for any approver",
             what);
    return;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(l, *it);
    if (e == NULL) continue;
    char *s = get_string(l, NULL, e, what);
    if (s == NULL) continue;
    char **nv = realloc(*out, (*n + 1) * sizeof(*nv));
    if (nv == NULL) {
      free(s);
      l->nomem = 1;
      return;
    }
    *out = nv;
    nv[(*n)++] = s;
  }
}

static void parse_approval(ld_t *l, yaml_node_t *ak, yaml_node_t *av, rc_approval_cfg_t *c) {
  if (av->type != YAML_MAPPING_NODE) {
    err_node(l, is_null(av) ? ak : av, "approval must be a mapping (when:, required:, "
             "approvers:, approver_groups:, timeout:)");
    return;
  }
  check_keys(l, av, "approval", APPROVAL_KEYS, RC_ARRAY_SIZE(APPROVAL_KEYS));
  yaml_node_t *k, *v;
  if ((v = get(l, av, "when", &k)) != NULL)
    c->when_always = get_enum(l, k, v, "approval when", APPROVAL_WHEN, RC_ARRAY_SIZE(APPROVAL_WHEN));
  if ((v = get(l, av, "required", &k)) != NULL) {
    uint64_t n = 0;
    if (get_count(l, k, v, "approval required", &n) == 0) {
      if (n < 1 || n > 16) err_node(l, v, "approval required must be 1 to 16, not %llu",
                                    (unsigned long long)n);
      else c->required = (int)n;
    }
  }
  if ((v = get(l, av, "timeout", &k)) != NULL &&
      get_duration(l, k, v, "approval timeout", &c->timeout_ms) == 0 &&
      (c->timeout_ms < 1000 || c->timeout_ms > 7 * 86400000LL)) {
    err_node(l, v, "approval timeout must be between 1s and 7d");
    c->timeout_ms = 0;
  }
  if ((v = get(l, av, "approvers", &k)) != NULL) {
    get_name_list(l, k, v, "approvers", &c->approvers, &c->napprovers);
    c->has_approvers = 1;
  }
  if ((v = get(l, av, "approver_groups", &k)) != NULL) {
    get_name_list(l, k, v, "approver_groups", &c->groups, &c->ngroups);
    c->has_approvers = 1;
  }
}

static void parse_action(ld_t *l, yaml_node_t *ak, yaml_node_t *av, rc_rule_t *r) {
  if (av->type != YAML_MAPPING_NODE) {
    if (is_null(av)) err_node(l, ak, "action is empty; expected e.g. action: {type: previous_version}");
    else err_node(l, av, "action must be a mapping (type:, notify:), not %s", kind_name(av));
    return;
  }
  check_keys(l, av, "action", ACTION_KEYS, RC_ARRAY_SIZE(ACTION_KEYS));
  yaml_node_t *k, *v;
  if ((v = get(l, av, "type", &k)) == NULL) {
    err_node(l, av, "action needs type: (previous_version)");
  } else {
    int i = get_enum(l, k, v, "action type", ACTION_TYPES, RC_ARRAY_SIZE(ACTION_TYPES));
    if (i >= 0 && (r->action = strdup(ACTION_TYPES[i])) == NULL) l->nomem = 1;
  }
  if ((v = get(l, av, "approval", &k)) != NULL) parse_approval(l, k, v, &r->approval);
  if ((v = get(l, av, "notify", &k)) == NULL || is_null(v)) return;
  if (v->type != YAML_SEQUENCE_NODE) {
    err_node(l, v, "notify must be a list (- slack: \"#channel\"), not %s", kind_name(v));
    return;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = node(l, *it);
    if (e == NULL) continue;
    if (e->type != YAML_MAPPING_NODE ||
        e->data.mapping.pairs.top - e->data.mapping.pairs.start != 1) {
      err_node(l, e, "each notify entry is one KIND: TARGET pair (slack: \"#deployments\", "
               "pagerduty: on-call, webhook: NAME)%s",
               e->type == YAML_MAPPING_NODE ? "" : ", not a bare value");
      continue;
    }
    yaml_node_t *ek = node(l, e->data.mapping.pairs.start->key);
    yaml_node_t *ev = node(l, e->data.mapping.pairs.start->value);
    if (ek == NULL || ev == NULL) continue;
    if (ek->type != YAML_SCALAR_NODE) {
      err_node(l, ek, "a notify kind must be a name, not %s", kind_name(ek));
      continue;
    }
    int kind = get_enum(l, NULL, ek, "notify kind", NOTIFY_KINDS, RC_ARRAY_SIZE(NOTIFY_KINDS));
    char what[64];
    snprintf(what, sizeof(what), "notify %s target", kind >= 0 ? NOTIFY_KINDS[kind] : "");
    char *target = get_string(l, ek, ev, what);
    if (kind < 0 || target == NULL) {
      free(target);
      continue;
    }
    rc_notify_t *nn = realloc(r->notify, (r->nnotify + 1) * sizeof(*nn));
    char *kd = strdup(NOTIFY_KINDS[kind]);
    if (nn == NULL || kd == NULL) {
      if (nn) r->notify = nn;
      free(kd);
      free(target);
      l->nomem = 1;
      return;
    }
    r->notify = nn;
    nn[r->nnotify].kind = kd;
    nn[r->nnotify].target = target;
    r->nnotify++;
  }
}

static int parse_rule(ld_t *l, yaml_node_t *rk, yaml_node_t *rn, rc_rule_t *r) {
  uint32_t errors0 = l->errors;
  memset(r, 0, sizeof(*r));
  r->approval.when_always = -1;
  if (rn->type != YAML_MAPPING_NODE) {
    if (is_null(rn)) err_node(l, rk ? rk : rn, "the rule is empty; expected service:, environment:, "
                              "triggers: and action:");
    else err_node(l, rn, "a rule must be a mapping (service:, environment:, triggers:, action:), "
                  "not %s", kind_name(rn));
    return -1;
  }
  r->line = NLINE(rn);
  r->col = NCOL(rn);
  if ((r->file = strdup(l->name)) == NULL) l->nomem = 1;
  check_keys(l, rn, "rule", RULE_KEYS, RC_ARRAY_SIZE(RULE_KEYS));
  yaml_node_t *k, *v;
  if ((v = get(l, rn, "service", &k)) == NULL) {
    if (!has_typo_of(l, rn, "service")) err_node(l, rn, "a rule needs service:");
    else l->errors++;
  } else {
    r->service = get_string(l, k, v, "service");
  }
  if ((v = get(l, rn, "environment", &k)) == NULL) {
    if (!has_typo_of(l, rn, "environment")) err_node(l, rn, "a rule needs environment:");
    else l->errors++;
  } else {
    r->environment = get_string(l, k, v, "environment");
  }
  /* warmup: after a deploy starts, this long of the new version's samples is not judged
   * either (deploy-aware windows start at the deploy's start plus the warmup). */
  if ((v = get(l, rn, "warmup", &k)) != NULL) get_duration(l, k, v, "warmup", &r->warmup_ms);
  yaml_node_t *mv = get(l, rn, "match", &k);
  if (mv) parse_match(l, mv, 0, r);
  yaml_node_t *mrv = get(l, rn, "match_re", &k);
  if (mrv) parse_match(l, mrv, 1, r);

  /* {{selector}}: match:/match_re: replace the derived matchers (issue 4). */
  rule_ctx_t rc = {NULL, 0};
  char *sel = NULL;
  uint32_t sel_errors = l->errors;
  if (!mv && !mrv && r->service && r->environment) {
    const rc_rules_cfg_t *c = l->cfg;
    const char *sl = c && c->service_label ? c->service_label : "service";
    const char *el = c && c->environment_label ? c->environment_label : "env";
    char *a = matcher_text(sl, "=", r->service, strlen(r->service));
    char *b = matcher_text(el, "=", r->environment, strlen(r->environment));
    if (a && b && (sel = malloc(strlen(a) + strlen(b) + 3)) != NULL) sprintf(sel, "%s, %s", a, b);
    free(a);
    free(b);
    if (sel == NULL) l->nomem = 1;
  } else if ((mv || mrv) && r->nmatch > 0) {
    size_t need = 1;
    for (uint32_t i = 0; i < r->nmatch; i++) need += strlen(r->match[i]) + 2;
    if ((sel = malloc(need)) != NULL) {
      size_t at = 0;
      for (uint32_t i = 0; i < r->nmatch; i++) {
        size_t ml = strlen(r->match[i]);
        if (i) memcpy(sel + at, ", ", 2), at += 2;
        memcpy(sel + at, r->match[i], ml);
        at += ml;
      }
      sel[at] = '\0';
    } else {
      l->nomem = 1;
    }
  }
  rc.selector = sel;
  rc.selector_ok = sel != NULL && l->errors == sel_errors && !l->nomem;

  yaml_node_t *tk = NULL, *tv = get(l, rn, "triggers", &tk);
  if (tv == NULL) {
    if (!has_typo_of(l, rn, "triggers"))
      err_node(l, rn, "a rule needs triggers: (a non-empty list)");
    else l->errors++;
  } else if (tv->type != YAML_SEQUENCE_NODE ||
             tv->data.sequence.items.start == tv->data.sequence.items.top) {
    err_node(l, is_null(tv) ? tk : tv, "triggers must be a non-empty list, not %s",
             tv->type == YAML_SEQUENCE_NODE ? "an empty list" : kind_name(tv));
  } else {
    size_t n = (size_t)(tv->data.sequence.items.top - tv->data.sequence.items.start);
    r->triggers = calloc(n, sizeof(rc_trigger_t));
    if (r->triggers == NULL) {
      l->nomem = 1;
    } else {
      uint32_t ndry = 0;
      for (size_t i = 0; i < n; i++) {
        yaml_node_t *tn = node(l, tv->data.sequence.items.start[i]);
        if (tn == NULL) continue;
        rc_trigger_t *t = &r->triggers[r->ntriggers];
        if (parse_trigger(l, tn, (uint32_t)i, &rc, t) != 0) {
          trigger_free(t);
          memset(t, 0, sizeof(*t));
          continue;
        }
        for (uint32_t j = 0; j < r->ntriggers; j++)
          if (t->name && r->triggers[j].name && strcmp(t->name, r->triggers[j].name) == 0) {
            err_node(l, tn,
                     "duplicate trigger name \"%.60s\" in this rule (first at line %d); give one "
                     "a name:",
                     t->name, r->triggers[j].line);
            break;
          }
        ndry += (uint32_t)t->dry_run;
        r->ntriggers++;
      }
      if (ndry > 0 && ndry == n && l->errors == errors0)
        warn_node(l, tv, "every trigger of this rule is dry_run: it can never roll back");
    }
  }
  free(sel);

  yaml_node_t *av = get(l, rn, "action", &k);
  if (av == NULL) {
    if (!has_typo_of(l, rn, "action"))
      err_node(l, rn, "a rule needs action: (e.g. action: {type: previous_version})");
    else l->errors++;
  } else {
    parse_action(l, k, av, r);
  }
  return l->errors == errors0 && !l->nomem ? 0 : -1;
}

/* `metrics:` — per-file templates. Each is checked by expanding it with a stand-in selector,
 * so a broken template is reported once, at its own place, even if no trigger uses it. */
static void parse_metrics(ld_t *l, yaml_node_t *mk, yaml_node_t *mv) {
  if (mv->type != YAML_MAPPING_NODE) {
    if (!is_null(mv)) err_node(l, mv, "metrics must be a mapping of NAME: {expr: TEMPLATE}, not %s",
                               kind_name(mv));
    (void)mk;
    return;
  }
  check_keys(l, mv, "metrics", NULL, 0);
  for (yaml_node_pair_t *p = mv->data.mapping.pairs.start; p < mv->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(l, p->key), *v = node(l, p->value);
    if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) continue;
    if (!valid_label_name(SV(k))) {
      err_node(l, k, "metrics: \"%.60s\" is not a valid name ([a-zA-Z_][a-zA-Z0-9_]*)", SV(k));
      continue;
    }
    if (v->type != YAML_MAPPING_NODE) {
      err_node(l, is_null(v) ? k : v, "metrics: %s must be a mapping with expr: (a template)",
               SV(k));
      continue;
    }
    uint32_t e0 = l->errors;
    check_keys(l, v, "a metric template", METRIC_KEYS, RC_ARRAY_SIZE(METRIC_KEYS));
    yaml_node_t *ek = NULL, *ev = get(l, v, "expr", &ek);
    yaml_node_t *qk = NULL, *qv = get(l, v, "requests_expr", &qk);
    if (ev == NULL) err_node(l, v, "metrics: %s needs expr: (a PromQL template)", SV(k));
    char *chk;
    if (ev && (chk = get_string(l, ek, ev, "expr")) != NULL) {
      free(chk);
      rc_pq_free(parse_template(l, SV(ev), ev, "template", "__stand_in__=\"x\"", 300000, ev));
    }
    if (qv && (chk = get_string(l, qk, qv, "requests_expr")) != NULL) {
      free(chk);
      rc_pq_free(parse_template(l, SV(qv), qv, "template", "__stand_in__=\"x\"", 300000, qv));
    }
    if (ev == NULL || ev->type != YAML_SCALAR_NODE || (qv && qv->type != YAML_SCALAR_NODE))
      continue;
    if (l->nfile_metrics == MAX_FILE_METRICS) {
      err_node(l, k, "too many metric templates in one file (at most %d)", MAX_FILE_METRICS);
      continue;
    }
    metric_def_t *d = &l->file_metrics[l->nfile_metrics++];
    memset(d, 0, sizeof(*d));
    d->name = SV(k);
    d->expr = SV(ev);
    d->expr_node = ev;
    d->requests = qv ? SV(qv) : NULL;
    d->requests_node = qv;
    d->broken = l->errors != e0;
  }
}

/* ---- YAML syntax pass ------------------------------------------------------------------- */

/* libyaml's error, with the usual causes named. */
static void yaml_error(ld_t *l, yaml_parser_t *p) {
  int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
  const char *problem = p->problem ? p->problem : "YAML error";
  if (p->error == YAML_MEMORY_ERROR) {
    l->nomem = 1;
    return;
  }
  /* A tab where indentation is expected. */
  size_t i = byte_of_mark(l, p->problem_mark);
  if (i < l->len && l->src[i] == '\t') {
    size_t b = i;
    while (b > 0 && l->src[b - 1] != '\n') b--;
    int only_ws = 1;
    for (size_t k = b; k < i; k++)
      if (l->src[k] != ' ' && l->src[k] != '\t') only_ws = 0;
    if (only_ws) {
      err_at(l, line, col, "tab character in indentation: YAML indents with spaces only (%s)",
             problem);
      return;
    }
  }
  if (p->context && strstr(p->context, "block scalar") != NULL) {
    size_t ci = byte_of_mark(l, p->context_mark);
    if (ci < l->len && (l->src[ci] == '>' || l->src[ci] == '|')) {
      int cl = (int)p->context_mark.line + 1, cc = (int)p->context_mark.column + 1;
      /* `op: >=` — YAML reads `>` as the start of a folded block scalar. */
      size_t e = ci;
      while (e < l->len && l->src[e] != '\n' && l->src[e] != ' ' && l->src[e] != '#') e++;
      /* The key on the same line, to show the fix whole: op: ">=". */
      size_t kb = ci, ke;
      while (kb > 0 && l->src[kb - 1] != '\n') kb--;
      while (kb < ci && (l->src[kb] == ' ' || l->src[kb] == '-')) kb++;
      for (ke = kb; ke < ci && l->src[ke] != ':'; ke++) {}
      if (ke < ci && ke > kb)
        err_at(l, cl, cc, "an unquoted %c starts a YAML block scalar; quote it: %.*s: \"%.*s\"",
               l->src[ci], (int)(ke - kb), l->src + kb, (int)(e - ci), l->src + ci);
      else
        err_at(l, cl, cc, "an unquoted %c starts a YAML block scalar; quote it: \"%.*s\"",
               l->src[ci], (int)(e - ci), l->src + ci);
      return;
    }
  }
  if (p->context)
    err_at(l, line, col, "YAML syntax: %s %s (line %d)", problem, p->context,
           (int)p->context_mark.line + 1);
  else err_at(l, line, col, "YAML syntax: %s", problem);
}

/* Checks what the document loader would accept silently or choke on. 0 when fine. */
static int syntax_pass(ld_t *l) {
  yaml_parser_t p;
  yaml_event_t ev;
  if (!yaml_parser_initialize(&p)) return l->nomem = 1, -1;
  yaml_parser_set_input_string(&p, (const unsigned char *)l->src, l->len);
  int depth = 0, docs = 0, rc = 0;
  for (;;) {
    if (!yaml_parser_parse(&p, &ev)) {
      yaml_error(l, &p);
      rc = -1;
      break;
    }
    yaml_event_type_t t = ev.type;
    if (t == YAML_ALIAS_EVENT) {
      err_at(l, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
             "YAML aliases (*%.40s) are not supported in rule files; repeat the value",
             (const char *)ev.data.alias.anchor);
      rc = -1;
    } else if (t == YAML_DOCUMENT_START_EVENT && ++docs == 2) {
      err_at(l, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
             "a rule file holds one YAML document; use rollbacks: for several rules");
      rc = -1;
    } else if (t == YAML_MAPPING_START_EVENT || t == YAML_SEQUENCE_START_EVENT) {
      if (++depth > MAX_DEPTH) {
        err_at(l, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
               "nested deeper than %d levels", MAX_DEPTH);
        rc = -1;
      }
    } else if (t == YAML_MAPPING_END_EVENT || t == YAML_SEQUENCE_END_EVENT) {
      depth--;
    }
    yaml_event_delete(&ev);
    if (t == YAML_STREAM_END_EVENT || rc != 0) break;
  }
  yaml_parser_delete(&p);
  return rc;
}

/* Checks run mapping by mapping, so a later key can be reported before an earlier one; the
 * reader wants file order. Insertion sort: stable, and a file has at most ~100 diagnostics. */
static void sort_diags(rc_diags_t *d, uint32_t from) {
  for (uint32_t i = from + 1; i < d->n; i++) {
    rc_diag_t x = d->v[i];
    uint32_t j = i;
    while (j > from && (d->v[j - 1].line > x.line ||
                        (d->v[j - 1].line == x.line && d->v[j - 1].col > x.col))) {
      d->v[j] = d->v[j - 1];
      j--;
    }
    d->v[j] = x;
  }
}

/* ---- entry points ----------------------------------------------------------------------- */

static int append_rules(rc_ruleset_t *set, rc_rule_t *rules, uint32_t n) {
  if (n == 0) return 0;
  rc_rule_t *nr = realloc(set->rules, (set->n + n) * sizeof(*nr));
  if (nr == NULL) return RC_ENOMEM;
  memcpy(nr + set->n, rules, n * sizeof(*nr));
  set->rules = nr;
  set->n += n;
  return 0;
}

int rc_rules_load_buffer(const char *name, const char *text, size_t len,
                         const rc_rules_cfg_t *cfg, rc_ruleset_t *set, rc_diags_t *d) {
  ld_t l;
  memset(&l, 0, sizeof(l));
  l.name = name ? name : "<rules>";
  l.src = text ? text : "";
  l.len = text ? len : 0;
  l.cfg = cfg;
  l.d = d;
  uint32_t first_diag = d->n;
  rc_secret_findings_t sf = {0};
  if (rc_secrets_scan_once(l.src, l.len, &sf) != 0) {
    rc_secret_findings_free(&sf);
    return RC_ENOMEM;
  }
  for (size_t i = 0; i < sf.n; i++) {
    char msg[300];
    rc_secrets_message(&sf.v[i], msg, sizeof(msg));
    err_at(&l, sf.v[i].line, sf.v[i].col, "%s", msg);
  }
  rc_secret_findings_free(&sf);
  if (syntax_pass(&l) != 0) return l.nomem ? RC_ENOMEM : RC_EPARSE;

  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) return RC_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)l.src, l.len);
  if (!yaml_parser_load(&p, &l.doc)) {
    yaml_error(&l, &p);
    yaml_parser_delete(&p);
    return l.nomem ? RC_ENOMEM : RC_EPARSE;
  }
  yaml_parser_delete(&p);

  rc_rule_t *rules = NULL;
  uint32_t nrules = 0;
  yaml_node_t *root = yaml_document_get_root_node(&l.doc);
  if (root == NULL || is_null(root)) {
    warn_at(&l, 1, 1, "no rules in this file (expected rollback: or rollbacks:)");
  } else if (root->type != YAML_MAPPING_NODE) {
    err_node(&l, root, "a rule file is a mapping with rollback: (one rule) or rollbacks: (a list), "
             "not %s", kind_name(root));
  } else {
    check_keys(&l, root, "the file", TOP_KEYS, RC_ARRAY_SIZE(TOP_KEYS));
    yaml_node_t *k1 = NULL, *k2 = NULL, *mk = NULL;
    yaml_node_t *one = get(&l, root, "rollback", &k1);
    yaml_node_t *many = get(&l, root, "rollbacks", &k2);
    yaml_node_t *mets = get(&l, root, "metrics", &mk);
    if (mets) parse_metrics(&l, mk, mets);
    if (one && many) {
      err_node(&l, k2, "use either rollback: (one rule) or rollbacks: (a list), not both");
    } else if (!one && !many) {
      if (l.errors == 0) err_node(&l, root, "no rollback: or rollbacks: in this file");
    } else if (one) {
      if ((rules = calloc(1, sizeof(*rules))) == NULL) l.nomem = 1;
      else if (parse_rule(&l, k1, one, &rules[0]) == 0) nrules = 1;
      else rule_free(&rules[0]);
    } else if (many->type != YAML_SEQUENCE_NODE) {
      if (is_null(many)) warn_node(&l, k2, "rollbacks: is empty; no rules in this file");
      else err_node(&l, many, "rollbacks must be a list of rules (- service: ...), not %s",
                    kind_name(many));
    } else {
      size_t n = (size_t)(many->data.sequence.items.top - many->data.sequence.items.start);
      if (n == 0) warn_node(&l, many, "rollbacks: is empty; no rules in this file");
      if (n > 0 && (rules = calloc(n, sizeof(*rules))) == NULL) l.nomem = 1;
      for (size_t i = 0; rules && i < n; i++) {
        yaml_node_t *rn = node(&l, many->data.sequence.items.start[i]);
        if (rn == NULL) continue;
        if (parse_rule(&l, NULL, rn, &rules[nrules]) == 0) nrules++;
        else rule_free(&rules[nrules]);
      }
    }
  }
  yaml_document_delete(&l.doc);
  sort_diags(d, first_diag);
  int rc = l.nomem ? RC_ENOMEM : l.errors ? RC_EPARSE : 0;
  if (rc == 0) rc = append_rules(set, rules, nrules);
  if (rc != 0)
    for (uint32_t i = 0; i < nrules; i++) rule_free(&rules[i]);
  free(rules);
  return rc;
}

int rc_rules_load_file(const char *path, const rc_rules_cfg_t *cfg, rc_ruleset_t *set,
                       rc_diags_t *d) {
  FILE *f = fopen(path, "rb");
  char msg[300];
  if (f == NULL) {
    snprintf(msg, sizeof(msg), "cannot open: %s", strerror(errno));
    return diag_add(d, RC_DIAG_ERROR, path, 0, 0, msg) ? RC_ENOMEM : RC_EIO;
  }
  rc_buf_t b;
  rc_buf_init(&b);
  int rc = rc_buf_read_file(&b, f, MAX_FILE_BYTES);
  if (rc == RC_ELIMIT) {
    snprintf(msg, sizeof(msg), "larger than %u MiB; not a rule file?", MAX_FILE_BYTES >> 20);
    rc = RC_EIO;
  } else if (rc == RC_EIO) {
    snprintf(msg, sizeof(msg), "read error: %s", strerror(errno));
  }
  fclose(f);
  const char *buf = b.data;
  size_t len = b.len;
  if (rc == RC_EIO && diag_add(d, RC_DIAG_ERROR, path, 0, 0, msg) != 0) rc = RC_ENOMEM;
  if (rc == 0) rc = rc_rules_load_buffer(path, buf ? buf : "", buf ? len : 0, cfg, set, d);
  rc_buf_free(&b);
  return rc;
}
