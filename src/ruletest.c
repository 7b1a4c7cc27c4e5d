/* ruletest.c: `ripcord test` — the test file's parser (libyaml document, every error at its
 * line:col), promtool's expanding notation, and the runner that drives replay.h's engine
 * through each test's timeline and compares what happened with what was expected; see
 * ruletest.h. */
#include "ruletest.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "batch.h"
#include "buf.h"
#include "config.h"
#include "log.h"
#include "replay.h"
#include "selector.h"

#define MAX_VALUES 1000000u   /* per input series: a week at 1 s is 604,800 */
#define MAX_STEPS 10000000u   /* time steps per test: bounds a typo like eval_time: 100y */
/* Test time 0 on the engine's clock: 2020-01-01T00:00:00Z. Times in the files and in the
 * report are durations from it; the engine, the store and the deploy registry see real
 * epoch milliseconds (the registry refuses a deploy "at" the epoch itself). */
#define BASE_MS INT64_C(1577836800000)

/*------------------------------------------------------------------------------------------
 * Expanding notation
 *----------------------------------------------------------------------------------------*/

/* A number as PromQL writes one: decimal or exponent form, Inf/NaN with an optional sign.
 * Hex floats (which strtod would take) are refused: "0x10" must stay "0, 10 more times". */
static int parse_num(const char *s, size_t len, double *out) {
  char buf[64];
  if (len == 0 || len >= sizeof(buf)) return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  const char *p = buf + (buf[0] == '+' || buf[0] == '-');
  if (strcasecmp(p, "inf") == 0 || strcasecmp(p, "nan") == 0) {
    *out = strcasecmp(p, "nan") == 0 ? NAN : buf[0] == '-' ? -INFINITY : INFINITY;
    return 0;
  }
  for (const char *q = p; *q; q++)
    if (!((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' ||
          *q == '-'))
      return -1;
  char *end = NULL;
  errno = 0;
  double v = strtod(buf, &end);
  if (end == buf || *end != '\0' || errno == ERANGE) return -1;
  *out = v;
  return 0;
}

static int push_value(rc_rt_value_t **v, size_t *n, size_t *cap, size_t max, rc_rt_value_t x) {
  if (*n >= max) return RC_ELIMIT;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 64;
    rc_rt_value_t *nv = realloc(*v, nc * sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    *v = nv;
    *cap = nc;
  }
  (*v)[(*n)++] = x;
  return 0;
}

/* "\"item\": why", with the item's column. */
static int values_err(rc_err_t *err, int code, size_t col, const char *why, const char *item,
                      int ilen) {
  if (err) {
    err->line = 0;
    err->col = (int)col + 1;
  }
  return rc_err_set(err, code, "\"%.*s\": %s", ilen, item, why);
}

int rc_ruletest_parse_values(const char *s, size_t len, size_t max, rc_rt_value_t **out,
                             size_t *n, rc_err_t *err) {
  *out = NULL;
  *n = 0;
  size_t cap = 0, i = 0;
  rc_rt_value_t *v = NULL;
  int rc = 0;
  while (rc == 0) {
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    if (i >= len) break;
    size_t st = i;
    while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') i++;
    const char *it = s + st;
    size_t il = i - st;
    int show = il > 40 ? 40 : (int)il;
    /* Split a trailing "x<count>". */
    size_t xe = il;
    uint64_t count = 0;
    int has_x = 0;
    {
      size_t d = il;
      while (d > 0 && it[d - 1] >= '0' && it[d - 1] <= '9') d--;
      if (d < il && d > 0 && it[d - 1] == 'x') {
        if (il - d > 7) {
          rc = values_err(err, RC_ELIMIT, st, "repeat count too large", it, show);
          break;
        }
        for (size_t k = d; k < il; k++) count = count * 10 + (uint64_t)(it[k] - '0');
        has_x = 1;
        xe = d - 1;
      }
    }
    if (xe == 1 && it[0] == '_') {
      /* `_` one missing sample; `_xn` n of them (a missing sample cannot increment). */
      uint64_t k = has_x ? count : 1;
      for (uint64_t j = 0; rc == 0 && j < k; j++)
        rc = push_value(&v, n, &cap, max, (rc_rt_value_t){.kind = RC_RT_MISSING});
      if (rc == RC_ELIMIT) rc = values_err(err, RC_ELIMIT, st, "more values than the limit", it, show);
      continue;
    }
    if (xe == 5 && strncmp(it, "stale", 5) == 0) {
      if (has_x) {
        rc = values_err(err, RC_EPARSE, st, "stale cannot be repeated", it, show);
        break;
      }
      rc = push_value(&v, n, &cap, max, (rc_rt_value_t){.kind = RC_RT_STALE});
      if (rc == RC_ELIMIT) rc = values_err(err, RC_ELIMIT, st, "more values than the limit", it, show);
      continue;
    }
    /* a, or a+b / a-b before x<count>: find the operator after the first number, skipping
     * the sign of an exponent ("1e+3+2x4"). */
    static const char *const what =
        "not a value (a number, a+bxn, a-bxn, axn, _, _xn or stale)";
    size_t op = 0;
    for (size_t k = 1; k < xe; k++)
      if ((it[k] == '+' || it[k] == '-') && it[k - 1] != 'e' && it[k - 1] != 'E') {
        op = k;
        break;
      }
    double a = 0, b = 0;
    if (op == 0) {
      if (parse_num(it, xe, &a) != 0) {
        rc = values_err(err, RC_EPARSE, st, what, it, show);
        break;
      }
    } else {
      if (!has_x) {
        rc = values_err(err, RC_EPARSE, st,
                        parse_num(it, op, &a) == 0 ? "a+b needs a count: a+bxn" : what, it, show);
        break;
      }
      /* b carries no sign of its own: "1+-2x3" is a typo, not a decrement. */
      if (parse_num(it, op, &a) != 0 || op + 1 >= xe || it[op + 1] == '+' || it[op + 1] == '-' ||
          parse_num(it + op + 1, xe - op - 1, &b) != 0 || !isfinite(b)) {
        rc = values_err(err, RC_EPARSE, st, what, it, show);
        break;
      }
      if (it[op] == '-') b = -b;
    }
    uint64_t k = has_x ? count + 1 : 1;
    for (uint64_t j = 0; rc == 0 && j < k; j++)
      rc = push_value(&v, n, &cap, max, (rc_rt_value_t){.kind = RC_RT_NUM, .v = a + (double)j * b});
    if (rc == RC_ELIMIT) {
      rc = values_err(err, RC_ELIMIT, st, "more values than the limit", it, show);
      break;
    }
  }
  if (rc == RC_ELIMIT && err && err->msg[0] == '\0')
    rc_err_set(err, RC_ELIMIT, "more than %zu values", max);
  if (rc == RC_ENOMEM) rc_err_set(err, RC_ENOMEM, "out of memory");
  if (rc != 0) {
    free(v);
    *n = 0;
    return rc;
  }
  *out = v;
  return 0;
}

/*------------------------------------------------------------------------------------------
 * The test file
 *----------------------------------------------------------------------------------------*/

typedef struct series_in {
  rc_label_t *labels;
  uint32_t nlabels;
  char *metric; /* points at the __name__ label's value */
  rc_selector_t *sel; /* owns the label strings */
  rc_rt_value_t *values;
  size_t nvalues;
} series_in_t;

typedef struct deploy_in {
  int64_t at_ms;
  char *json; /* the POST /api/v1/deploys body */
  int line;
} deploy_in_t;

typedef struct expect_trig {
  int64_t at_ms;
  char *rule;    /* service/environment or NULL */
  char *trigger;
  rc_trigger_state_t state;
  int has_value;
  double value;
  int line, col;
} expect_trig_t;

typedef struct expect_rb {
  int has_at;
  int64_t at_ms;
  char *rule, *trigger, *outcome, *from, *to; /* NULL: not checked */
  char *reason;                                /* a part of the event's reason, or NULL */
  int line;
} expect_rb_t;

typedef struct test_group {
  char *name;
  int line;
  int64_t interval_ms;
  series_in_t *series;
  uint32_t nseries;
  deploy_in_t *deploys;
  uint32_t ndeploys;
  expect_trig_t *trig;
  uint32_t ntrig;
  int check_rollbacks;
  expect_rb_t *rb;
  uint32_t nrb;
} test_group_t;

struct rc_ruletest_suite {
  char **rule_files;
  uint32_t nrule_files;
  int rule_files_line;
  char *config_file;
  int64_t eval_ms;
  int64_t rollback_window_ms, cooldown_ms; /* 0 / -1: defaults */
  test_group_t *tests;
  uint32_t ntests;
};

typedef struct tp {
  const char *name;
  yaml_document_t doc;
  rc_diags_t *d;
  int errors, nomem;
} tp_t;

#define NLINE(n) ((int)(n)->start_mark.line + 1)
#define NCOL(n) ((int)(n)->start_mark.column + 1)

__attribute__((format(printf, 3, 4))) static void perr(tp_t *p, const yaml_node_t *n,
                                                        const char *fmt, ...) {
  char msg[400];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  p->errors++;
  if (p->errors > 50) return; /* the first ones say it; a flood buries them */
  if (rc_diags_add(p->d, RC_DIAG_ERROR, p->name, n ? NLINE(n) : 1, n ? NCOL(n) : 1, msg) != 0)
    p->nomem = 1;
}

static yaml_node_t *nd(tp_t *p, yaml_node_item_t id) { return yaml_document_get_node(&p->doc, id); }
static const char *sv(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static const char *kind(const yaml_node_t *n) {
  return n->type == YAML_MAPPING_NODE ? "a mapping" : n->type == YAML_SEQUENCE_NODE ? "a list"
                                                                                   : "a string";
}

/* Checks m is a mapping whose keys are all known and unique; 0 if not a mapping. */
static int mapping(tp_t *p, yaml_node_t *m, const char *where, const char *const *known) {
  if (m->type != YAML_MAPPING_NODE) {
    perr(p, m, "%s must be a mapping, not %s", where, kind(m));
    return 0;
  }
  for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
    yaml_node_t *k = nd(p, a->key);
    if (k == NULL) continue;
    if (k->type != YAML_SCALAR_NODE) {
      perr(p, k, "keys of %s must be names, not %s", where, kind(k));
      continue;
    }
    int ok = 0;
    for (const char *const *q = known; *q; q++) ok |= strcmp(*q, sv(k)) == 0;
    if (!ok) {
      char list[300] = "";
      size_t o = 0;
      for (const char *const *q = known; *q && o < sizeof(list); q++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", q == known ? "" : ", ", *q);
      perr(p, k, "unknown key \"%.60s\" in %s (known: %s)", sv(k), where, list);
    }
    for (yaml_node_pair_t *b = m->data.mapping.pairs.start; b < a; b++) {
      yaml_node_t *k2 = nd(p, b->key);
      if (k2 && k2->type == YAML_SCALAR_NODE && strcmp(sv(k2), sv(k)) == 0) {
        perr(p, k, "duplicate key \"%.60s\" in %s (first at line %d)", sv(k), where, NLINE(k2));
        break;
      }
    }
  }
  return 1;
}

static yaml_node_t *get(tp_t *p, yaml_node_t *m, const char *key) {
  for (yaml_node_pair_t *a = m->data.mapping.pairs.start; a < m->data.mapping.pairs.top; a++) {
    yaml_node_t *k = nd(p, a->key);
    if (k && k->type == YAML_SCALAR_NODE && strcmp(sv(k), key) == 0) return nd(p, a->value);
  }
  return NULL;
}

static const char *scalar(tp_t *p, yaml_node_t *v, const char *what) {
  if (v->type != YAML_SCALAR_NODE) {
    perr(p, v, "%s must be a string, not %s", what, kind(v));
    return NULL;
  }
  if (v->data.scalar.length == 0) {
    perr(p, v, "%s is empty", what);
    return NULL;
  }
  if (memchr(v->data.scalar.value, '\0', v->data.scalar.length) != NULL) {
    perr(p, v, "%s contains a NUL character", what);
    return NULL;
  }
  return sv(v);
}

static char *dup_scalar(tp_t *p, yaml_node_t *v, const char *what) {
  const char *s = scalar(p, v, what);
  if (s == NULL) return NULL;
  char *c = strdup(s);
  if (c == NULL) p->nomem = 1;
  return c;
}

static int duration(tp_t *p, yaml_node_t *v, const char *what, int allow_zero, int64_t *out) {
  const char *s = scalar(p, v, what);
  if (s == NULL) return -1;
  rc_err_t e = {0};
  if (strcmp(s, "0") == 0) {
    *out = 0;
  } else if (rc_rules_parse_duration(s, out, &e) != 0) {
    perr(p, v, "%s: %s", what, e.msg);
    return -1;
  }
  if (*out == 0 && !allow_zero) {
    perr(p, v, "%s must be more than 0", what);
    return -1;
  }
  return 0;
}

static int boolean(tp_t *p, yaml_node_t *v, const char *what, int *out) {
  const char *s = scalar(p, v, what);
  if (s == NULL) return -1;
  if (strcmp(s, "true") == 0) *out = 1;
  else if (strcmp(s, "false") == 0) *out = 0;
  else {
    perr(p, v, "%s must be true or false, not \"%.40s\"", what, s);
    return -1;
  }
  return 0;
}

static int number(tp_t *p, yaml_node_t *v, const char *what, double *out) {
  const char *s = scalar(p, v, what);
  if (s == NULL) return -1;
  if (parse_num(s, strlen(s), out) != 0) {
    perr(p, v, "%s: \"%.40s\" is not a number", what, s);
    return -1;
  }
  return 0;
}

static void *grow(tp_t *p, void *arr, uint32_t n, size_t elem) {
  void *na = realloc(arr, ((size_t)n + 1) * elem);
  if (na == NULL) {
    p->nomem = 1;
    return NULL;
  }
  memset((char *)na + (size_t)n * elem, 0, elem);
  return na;
}

/* `series: 'name{a="b", ...}'`: a selector with only = matchers, read as a label set. */
static void parse_series_spec(tp_t *p, yaml_node_t *v, series_in_t *s) {
  const char *text = scalar(p, v, "series");
  if (text == NULL) return;
  rc_err_t e = {0};
  if (rc_selector_parse(text, strlen(text), RC_MATCHER_NO_JIT, &s->sel, &e) != 0) {
    perr(p, v, "series: %s (at column %d of the series)", e.msg, e.col);
    return;
  }
  const rc_selector_t *sel = s->sel;
  s->labels = calloc(sel->n ? sel->n : 1, sizeof(rc_label_t));
  if (s->labels == NULL) {
    p->nomem = 1;
    return;
  }
  for (uint32_t i = 0; i < sel->n; i++) {
    const rc_matcher_t *m = &sel->m[i];
    if (m->op != RC_MATCH_EQ) {
      perr(p, v, "series: label %.60s must be given with =, not a matcher", m->name);
      return;
    }
    if (i > 0 && sel->m[i - 1].name_len == m->name_len &&
        memcmp(sel->m[i - 1].name, m->name, m->name_len) == 0) {
      perr(p, v, "series: label %.60s given twice", m->name);
      return;
    }
    if (m->value_len == 0) continue; /* an empty value is no label, as in Prometheus */
    rc_label_t *l = &s->labels[s->nlabels++];
    *l = (rc_label_t){.name = m->name, .name_len = m->name_len, .value = m->value,
                      .value_len = m->value_len};
    if (strcmp(m->name, "__name__") == 0) s->metric = m->value;
  }
  if (s->metric == NULL) perr(p, v, "series: no metric name");
}

static void parse_input(tp_t *p, yaml_node_t *list, test_group_t *g) {
  if (list->type != YAML_SEQUENCE_NODE) {
    perr(p, list, "input_series must be a list, not %s", kind(list));
    return;
  }
  static const char *const keys[] = {"series", "values", NULL};
  for (yaml_node_item_t *it = list->data.sequence.items.start;
       it < list->data.sequence.items.top && !p->nomem; it++) {
    yaml_node_t *m = nd(p, *it);
    if (m == NULL || !mapping(p, m, "an input series", keys)) continue;
    series_in_t *ns = grow(p, g->series, g->nseries, sizeof(*ns));
    if (ns == NULL) return;
    g->series = ns;
    series_in_t *s = &g->series[g->nseries++];
    yaml_node_t *v = get(p, m, "series"), *vals = get(p, m, "values");
    if (v == NULL) perr(p, m, "an input series needs series:");
    else parse_series_spec(p, v, s);
    if (vals == NULL) {
      perr(p, m, "an input series needs values:");
      continue;
    }
    const char *t = scalar(p, vals, "values");
    if (t == NULL) continue;
    rc_err_t e = {0};
    if (rc_ruletest_parse_values(t, strlen(t), MAX_VALUES, &s->values, &s->nvalues, &e) != 0) {
      yaml_node_t at = *vals;
      /* Point at the item when the scalar is on one line (plain or quoted). */
      if (vals->start_mark.line == vals->end_mark.line)
        at.start_mark.column += (size_t)(e.col - 1) +
                                (vals->data.scalar.style != YAML_PLAIN_SCALAR_STYLE);
      if (e.msg[0] == '\0') snprintf(e.msg, sizeof(e.msg), "%s", rc_strerror(RC_ENOMEM));
      perr(p, &at, "values: %s", e.msg);
    }
  }
}

/* A deploy as the JSON POST /api/v1/deploys takes, at a test time. */
static void parse_deploys(tp_t *p, yaml_node_t *list, test_group_t *g) {
  if (list->type != YAML_SEQUENCE_NODE) {
    perr(p, list, "deploys must be a list, not %s", kind(list));
    return;
  }
  static const char *const keys[] = {"service", "environment", "version", "at", "artifact",
                                     "deployer", "is_rollback", "migrations", NULL};
  for (yaml_node_item_t *it = list->data.sequence.items.start;
       it < list->data.sequence.items.top && !p->nomem; it++) {
    yaml_node_t *m = nd(p, *it);
    if (m == NULL || !mapping(p, m, "a deploy", keys)) continue;
    json_t *o = json_object();
    if (o == NULL) {
      p->nomem = 1;
      return;
    }
    int64_t at = 0;
    int ok = 1;
    static const char *const strs[] = {"service", "environment", "version", "artifact",
                                       "deployer"};
    for (size_t k = 0; k < 5; k++) {
      yaml_node_t *v = get(p, m, strs[k]);
      if (v == NULL) {
        if (k < 3) {
          perr(p, m, "a deploy needs %s:", strs[k]);
          ok = 0;
        }
        continue;
      }
      const char *s = scalar(p, v, strs[k]);
      if (s == NULL) ok = 0;
      else json_object_set_new(o, strs[k], json_string(s));
    }
    yaml_node_t *v = get(p, m, "at");
    if (v == NULL) {
      perr(p, m, "a deploy needs at: (its time in the test, e.g. 10m)");
      ok = 0;
    } else if (duration(p, v, "at", 1, &at) != 0) {
      ok = 0;
    }
    if ((v = get(p, m, "is_rollback")) != NULL) {
      int b = 0;
      if (boolean(p, v, "is_rollback", &b) != 0) ok = 0;
      else json_object_set_new(o, "is_rollback", json_boolean(b));
    }
    if ((v = get(p, m, "migrations")) != NULL) {
      if (v->type != YAML_SEQUENCE_NODE) {
        perr(p, v, "migrations must be a list, not %s", kind(v));
        ok = 0;
      } else {
        json_t *arr = json_array();
        static const char *const mkeys[] = {"id", "reversible", NULL};
        for (yaml_node_item_t *mi = v->data.sequence.items.start;
             mi < v->data.sequence.items.top; mi++) {
          yaml_node_t *mm = nd(p, *mi);
          if (mm == NULL || !mapping(p, mm, "a migration", mkeys)) {
            ok = 0;
            continue;
          }
          yaml_node_t *id = get(p, mm, "id"), *rev = get(p, mm, "reversible");
          const char *ids = id ? scalar(p, id, "id") : NULL;
          int r = 0;
          if (id == NULL) perr(p, mm, "a migration needs id:");
          if (rev == NULL) perr(p, mm, "a migration needs reversible: true or false");
          else if (boolean(p, rev, "reversible", &r) != 0) ok = 0;
          if (ids == NULL || rev == NULL) {
            ok = 0;
            continue;
          }
          json_array_append_new(arr, json_pack("{s:s,s:b}", "id", ids, "reversible", r));
        }
        json_object_set_new(o, "migrations", arr);
      }
    }
    json_object_set_new(o, "started_at", json_integer(BASE_MS + at));
    if (ok) {
      deploy_in_t *nd2 = grow(p, g->deploys, g->ndeploys, sizeof(*nd2));
      if (nd2 == NULL) {
        json_decref(o);
        return;
      }
      g->deploys = nd2;
      deploy_in_t *d = &g->deploys[g->ndeploys++];
      d->at_ms = at;
      d->line = NLINE(m);
      d->json = json_dumps(o, JSON_COMPACT);
      if (d->json == NULL) p->nomem = 1;
    }
    json_decref(o);
  }
}

static int parse_state(tp_t *p, yaml_node_t *v, rc_trigger_state_t *out) {
  const char *s = scalar(p, v, "state");
  if (s == NULL) return -1;
  if (strcmp(s, "inactive") == 0) *out = RC_TS_INACTIVE;
  else if (strcmp(s, "pending") == 0) *out = RC_TS_PENDING;
  else if (strcmp(s, "firing") == 0) *out = RC_TS_FIRING;
  else {
    perr(p, v, "state must be inactive, pending or firing, not \"%.40s\"", s);
    return -1;
  }
  return 0;
}

static void parse_expect_triggers(tp_t *p, yaml_node_t *list, test_group_t *g) {
  if (list->type != YAML_SEQUENCE_NODE) {
    perr(p, list, "expect_triggers must be a list, not %s", kind(list));
    return;
  }
  static const char *const keys[] = {"eval_time", "rule", "trigger", "state", "value", NULL};
  for (yaml_node_item_t *it = list->data.sequence.items.start;
       it < list->data.sequence.items.top && !p->nomem; it++) {
    yaml_node_t *m = nd(p, *it);
    if (m == NULL || !mapping(p, m, "an expected trigger state", keys)) continue;
    expect_trig_t *nt = grow(p, g->trig, g->ntrig, sizeof(*nt));
    if (nt == NULL) return;
    g->trig = nt;
    expect_trig_t *x = &g->trig[g->ntrig++];
    x->line = NLINE(m);
    x->col = NCOL(m);
    yaml_node_t *v;
    if ((v = get(p, m, "eval_time")) == NULL) perr(p, m, "needs eval_time:");
    else duration(p, v, "eval_time", 1, &x->at_ms);
    if ((v = get(p, m, "rule")) != NULL) x->rule = dup_scalar(p, v, "rule");
    if ((v = get(p, m, "trigger")) == NULL) perr(p, m, "needs trigger: (its name)");
    else x->trigger = dup_scalar(p, v, "trigger");
    if ((v = get(p, m, "state")) == NULL) perr(p, m, "needs state: inactive, pending or firing");
    else parse_state(p, v, &x->state);
    if ((v = get(p, m, "value")) != NULL && number(p, v, "value", &x->value) == 0)
      x->has_value = 1;
  }
}

static void parse_expect_rollbacks(tp_t *p, yaml_node_t *list, test_group_t *g) {
  g->check_rollbacks = 1;
  if (list->type == YAML_SCALAR_NODE && list->data.scalar.length == 0) return; /* `key:` */
  if (list->type != YAML_SEQUENCE_NODE) {
    perr(p, list, "expect_rollbacks must be a list, not %s", kind(list));
    return;
  }
  static const char *const keys[] = {"eval_time", "rule", "trigger", "outcome", "from", "to",
                                     "reason", NULL};
  static const char *const outcomes[] = {"rollback", "dry_run", "no_deploy", "no_previous",
                                         "needs_approval", "rollback_of_rollback", "cooldown",
                                         NULL};
  for (yaml_node_item_t *it = list->data.sequence.items.start;
       it < list->data.sequence.items.top && !p->nomem; it++) {
    yaml_node_t *m = nd(p, *it);
    if (m == NULL || !mapping(p, m, "an expected rollback", keys)) continue;
    expect_rb_t *nr = grow(p, g->rb, g->nrb, sizeof(*nr));
    if (nr == NULL) return;
    g->rb = nr;
    expect_rb_t *x = &g->rb[g->nrb++];
    x->line = NLINE(m);
    yaml_node_t *v;
    if ((v = get(p, m, "eval_time")) != NULL && duration(p, v, "eval_time", 1, &x->at_ms) == 0)
      x->has_at = 1;
    if ((v = get(p, m, "rule")) != NULL) x->rule = dup_scalar(p, v, "rule");
    if ((v = get(p, m, "trigger")) != NULL) x->trigger = dup_scalar(p, v, "trigger");
    if ((v = get(p, m, "from")) != NULL) x->from = dup_scalar(p, v, "from");
    if ((v = get(p, m, "to")) != NULL) x->to = dup_scalar(p, v, "to");
    if ((v = get(p, m, "reason")) != NULL) x->reason = dup_scalar(p, v, "reason");
    if ((v = get(p, m, "outcome")) != NULL) {
      x->outcome = dup_scalar(p, v, "outcome");
      int ok = 0;
      for (const char *const *o = outcomes; x->outcome && *o; o++) ok |= strcmp(*o, x->outcome) == 0;
      if (x->outcome && !ok)
        perr(p, v, "outcome must be one of rollback, dry_run, no_deploy, no_previous, "
                   "needs_approval, rollback_of_rollback, cooldown; not \"%.40s\"", x->outcome);
    } else if ((x->outcome = strdup("rollback")) == NULL) {
      p->nomem = 1;
    }
  }
}

static void parse_group(tp_t *p, yaml_node_t *m, test_group_t *g, int64_t eval_ms) {
  static const char *const keys[] = {"name", "interval", "deploys", "input_series",
                                     "expect_triggers", "expect_rollbacks", NULL};
  g->line = NLINE(m);
  g->interval_ms = eval_ms;
  if (!mapping(p, m, "a test", keys)) return;
  yaml_node_t *v;
  if ((v = get(p, m, "name")) != NULL) g->name = dup_scalar(p, v, "name");
  if ((v = get(p, m, "interval")) != NULL) duration(p, v, "interval", 0, &g->interval_ms);
  if ((v = get(p, m, "deploys")) != NULL) parse_deploys(p, v, g);
  if ((v = get(p, m, "input_series")) != NULL) parse_input(p, v, g);
  if ((v = get(p, m, "expect_triggers")) != NULL) parse_expect_triggers(p, v, g);
  if ((v = get(p, m, "expect_rollbacks")) != NULL) parse_expect_rollbacks(p, v, g);
  if (g->ntrig == 0 && !g->check_rollbacks)
    perr(p, m, "a test needs expect_triggers: or expect_rollbacks: (else it checks nothing)");
}

static void parse_root(tp_t *p, yaml_node_t *root, rc_ruletest_suite_t *s) {
  static const char *const keys[] = {"rule_files", "config_file", "evaluation_interval",
                                     "rollback_window", "rollback_cooldown", "tests", NULL};
  if (!mapping(p, root, "a test file", keys)) return;
  yaml_node_t *v;
  s->eval_ms = 60000;
  s->cooldown_ms = 0;
  if ((v = get(p, root, "evaluation_interval")) != NULL)
    duration(p, v, "evaluation_interval", 0, &s->eval_ms);
  if ((v = get(p, root, "rollback_window")) != NULL)
    duration(p, v, "rollback_window", 0, &s->rollback_window_ms);
  if ((v = get(p, root, "rollback_cooldown")) != NULL &&
      duration(p, v, "rollback_cooldown", 1, &s->cooldown_ms) == 0 && s->cooldown_ms == 0)
    s->cooldown_ms = -1; /* given as 0: none */
  if ((v = get(p, root, "config_file")) != NULL) s->config_file = dup_scalar(p, v, "config_file");
  if ((v = get(p, root, "rule_files")) == NULL) {
    perr(p, root, "a test file needs rule_files: (the rule files under test)");
  } else if (v->type != YAML_SEQUENCE_NODE) {
    perr(p, v, "rule_files must be a list, not %s", kind(v));
  } else {
    s->rule_files_line = NLINE(v);
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         it < v->data.sequence.items.top && !p->nomem; it++) {
      char **nf = grow(p, s->rule_files, s->nrule_files, sizeof(char *));
      if (nf == NULL) return;
      s->rule_files = nf;
      char *f = dup_scalar(p, nd(p, *it), "a rule file");
      if (f) s->rule_files[s->nrule_files++] = f;
    }
    if (s->nrule_files == 0 && p->errors == 0) perr(p, v, "rule_files is empty");
  }
  if ((v = get(p, root, "tests")) == NULL) {
    perr(p, root, "a test file needs tests:");
  } else if (v->type != YAML_SEQUENCE_NODE) {
    perr(p, v, "tests must be a list, not %s", kind(v));
  } else {
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         it < v->data.sequence.items.top && !p->nomem; it++) {
      test_group_t *ng = grow(p, s->tests, s->ntests, sizeof(*ng));
      if (ng == NULL) return;
      s->tests = ng;
      parse_group(p, nd(p, *it), &s->tests[s->ntests++], s->eval_ms);
    }
  }
}

void rc_ruletest_suite_free(rc_ruletest_suite_t *s) {
  if (s == NULL) return;
  for (uint32_t i = 0; i < s->nrule_files; i++) free(s->rule_files[i]);
  free(s->rule_files);
  free(s->config_file);
  for (uint32_t i = 0; i < s->ntests; i++) {
    test_group_t *g = &s->tests[i];
    free(g->name);
    for (uint32_t k = 0; k < g->nseries; k++) {
      rc_selector_free(g->series[k].sel);
      free(g->series[k].labels);
      free(g->series[k].values);
    }
    free(g->series);
    for (uint32_t k = 0; k < g->ndeploys; k++) free(g->deploys[k].json);
    free(g->deploys);
    for (uint32_t k = 0; k < g->ntrig; k++) {
      free(g->trig[k].rule);
      free(g->trig[k].trigger);
    }
    free(g->trig);
    for (uint32_t k = 0; k < g->nrb; k++) {
      expect_rb_t *x = &g->rb[k];
      free(x->rule);
      free(x->trigger);
      free(x->outcome);
      free(x->reason);
      free(x->from);
      free(x->to);
    }
    free(g->rb);
  }
  free(s->tests);
  free(s);
}

int rc_ruletest_parse(const char *name, const char *text, size_t len, rc_ruletest_suite_t **out,
                      rc_diags_t *d) {
  *out = NULL;
  tp_t p = {.name = name, .d = d};
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return RC_ENOMEM;
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!yaml_parser_load(&parser, &p.doc)) {
    char msg[300];
    snprintf(msg, sizeof(msg), "%s%s%s", parser.problem ? parser.problem : "YAML error",
             parser.context ? " " : "", parser.context ? parser.context : "");
    int rc = rc_diags_add(d, RC_DIAG_ERROR, name, (int)parser.problem_mark.line + 1,
                          (int)parser.problem_mark.column + 1, msg);
    yaml_parser_delete(&parser);
    return rc == 0 ? RC_EPARSE : RC_ENOMEM;
  }
  yaml_parser_delete(&parser);
  rc_ruletest_suite_t *s = calloc(1, sizeof(*s));
  if (s == NULL) {
    yaml_document_delete(&p.doc);
    return RC_ENOMEM;
  }
  yaml_node_t *root = yaml_document_get_root_node(&p.doc);
  if (root == NULL) {
    if (rc_diags_add(d, RC_DIAG_ERROR, name, 1, 1, "the file is empty") != 0) p.nomem = 1;
    p.errors++;
  } else {
    parse_root(&p, root, s);
  }
  yaml_document_delete(&p.doc);
  if (p.nomem || p.errors) {
    rc_ruletest_suite_free(s);
    return p.nomem ? RC_ENOMEM : RC_EPARSE;
  }
  *out = s;
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Running
 *----------------------------------------------------------------------------------------*/

typedef struct got_rb {
  int64_t at_ms;
  char *service, *environment, *trigger, *outcome, *from, *to, *reason;
  double value;
} got_rb_t;

typedef struct run {
  const rc_ruletest_suite_t *s;
  const test_group_t *g;
  rc_replay_t *rp;
  int verbose;
  got_rb_t *rb;
  uint32_t nrb, caprb;
  char **fails;   /* failure lines of this test */
  uint32_t nfails;
  char **log;     /* transitions, shown with a failure or with --verbose */
  uint32_t nlog;
  int nomem;
} run_t;

/* "1h2m3s" for messages: test times are durations since 0. */
static void fmt_dur(int64_t ms, char *b, size_t cap) {
  if (ms == 0) {
    snprintf(b, cap, "0s");
    return;
  }
  size_t o = 0;
  const char *neg = ms < 0 ? "-" : "";
  uint64_t u = ms < 0 ? (uint64_t)-ms : (uint64_t)ms;
  o += (size_t)snprintf(b, cap, "%s", neg);
  static const struct { uint64_t ms; const char *u; } units[] = {
      {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  for (size_t i = 0; i < 5 && o < cap; i++)
    if (u >= units[i].ms) {
      o += (size_t)snprintf(b + o, cap - o, "%llu%s", (unsigned long long)(u / units[i].ms),
                            units[i].u);
      u %= units[i].ms;
    }
}

__attribute__((format(printf, 3, 4))) static void add_line(run_t *r, int fail, const char *fmt,
                                                            ...) {
  char buf[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  char ***arr = fail ? &r->fails : &r->log;
  uint32_t *n = fail ? &r->nfails : &r->nlog;
  char **na = realloc(*arr, (*n + 1) * sizeof(char *));
  char *c = strdup(buf);
  if (na == NULL || c == NULL) {
    free(c);
    if (na) *arr = na;
    r->nomem = 1;
    return;
  }
  *arr = na;
  (*arr)[(*n)++] = c;
}

static void on_transition(void *ctx, const rc_replay_transition_t *t) {
  run_t *r = ctx;
  char at[40];
  fmt_dur(t->at_ms - BASE_MS, at, sizeof(at));
  const char *what = t->to == RC_TS_INACTIVE && t->from == RC_TS_FIRING ? "resolved"
                                                                         : rc_trigger_state_name(t->to);
  if (t->has_value)
    add_line(r, 0, "at %s: %s/%s %s: %s -> %s (value %.6g)", at, t->service, t->environment,
             t->trigger_name, rc_trigger_state_name(t->from), what, t->value);
  else
    add_line(r, 0, "at %s: %s/%s %s: %s -> %s (no value)", at, t->service, t->environment,
             t->trigger_name, rc_trigger_state_name(t->from), what);
}

static void on_rollback(void *ctx, const rc_replay_rollback_t *e) {
  run_t *r = ctx;
  if (r->nrb == r->caprb) {
    uint32_t nc = r->caprb ? r->caprb * 2 : 8;
    got_rb_t *n = realloc(r->rb, nc * sizeof(*n));
    if (n == NULL) {
      r->nomem = 1;
      return;
    }
    r->rb = n;
    r->caprb = nc;
  }
  got_rb_t *g = &r->rb[r->nrb++];
  *g = (got_rb_t){.at_ms = e->at_ms - BASE_MS, .service = strdup(e->service ? e->service : ""),
                  .environment = strdup(e->environment ? e->environment : ""),
                  .trigger = strdup(e->trigger_name ? e->trigger_name : ""),
                  .outcome = strdup(e->outcome ? e->outcome : ""),
                  .from = strdup(e->from_version ? e->from_version : ""),
                  .to = strdup(e->to_version ? e->to_version : ""),
                  .reason = strdup(e->reason ? e->reason : ""), .value = e->value};
  if (!g->service || !g->environment || !g->trigger || !g->outcome || !g->from || !g->to ||
      !g->reason) {
    r->nomem = 1;
    return;
  }
  char at[40];
  fmt_dur(g->at_ms, at, sizeof(at));
  add_line(r, 0, "at %s: %s/%s %s: rollback event %s %s -> %s", at, g->service, g->environment,
           g->trigger, g->outcome, *g->from ? g->from : "-", *g->to ? g->to : "-");
}

/* The trigger named `trigger` in the rules named `rule` (service/environment; NULL: every
 * rule). 0 with *ri and *ti set, or -1 none, -2 more than one (two rule files may guard the same
 * target, like the bundled checkout and canary rules). */
static int find_trigger(rc_replay_t *rp, const char *rule, const char *trigger, uint32_t *ri,
                        uint32_t *ti) {
  int found = 0;
  for (uint32_t i = 0; i < rc_replay_nrules(rp); i++) {
    if (rule != NULL) {
      char full[600];
      snprintf(full, sizeof(full), "%s/%s", rc_replay_service(rp, i), rc_replay_environment(rp, i));
      if (strcmp(full, rule) != 0) continue;
    }
    for (uint32_t k = 0; k < rc_replay_ntriggers(rp, i); k++)
      if (strcmp(rc_replay_trigger_name(rp, i, k), trigger) == 0) {
        if (found++ == 0) *ri = i, *ti = k;
      }
  }
  return found == 1 ? 0 : found == 0 ? -1 : -2;
}

static int close_enough(double got, double want) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  double tol = 1e-6 * fmax(1.0, fabs(want));
  return fabs(got - want) <= tol;
}

static void check_trig(run_t *r, const expect_trig_t *x) {
  char at[40];
  fmt_dur(x->at_ms, at, sizeof(at));
  uint32_t ri = 0, ti = 0;
  int f = find_trigger(r->rp, x->rule, x->trigger, &ri, &ti);
  if (f != 0) {
    add_line(r, 1, "line %d: at %s: %s trigger %s%s%s", x->line, at,
             f == -1 ? "no" : "more than one", x->trigger, x->rule ? " in rule " : "",
             x->rule ? x->rule : (f == -2 ? " (say which with rule: service/environment)" : ""));
    return;
  }
  const char *rname_s = rc_replay_service(r->rp, ri);
  const char *rname_e = rc_replay_environment(r->rp, ri);
  rc_trigger_status_t st;
  if (rc_replay_status(r->rp, ri, ti, &st) != 0) {
    add_line(r, 1, "line %d: at %s: no status for %s", x->line, at, x->trigger);
    return;
  }
  char gotv[64] = "no value";
  if (st.has_value) snprintf(gotv, sizeof(gotv), "value %.10g", st.value);
  else if (st.error[0]) snprintf(gotv, sizeof(gotv), "error: %.50s", st.error);
  if (st.state != x->state)
    add_line(r, 1, "line %d: at %s: %s/%s %s: expected %s, got %s (%s)", x->line, at, rname_s,
             rname_e, x->trigger, rc_trigger_state_name(x->state),
             rc_trigger_state_name(st.state), gotv);
  else if (x->has_value && (!st.has_value || !close_enough(st.value, x->value)))
    add_line(r, 1, "line %d: at %s: %s/%s %s: expected value %.10g, got %s (state %s)", x->line,
             at, rname_s, rname_e, x->trigger, x->value, gotv, rc_trigger_state_name(st.state));
}

static int rb_matches(const expect_rb_t *x, const got_rb_t *g) {
  char full[600];
  snprintf(full, sizeof(full), "%s/%s", g->service, g->environment);
  return (!x->has_at || x->at_ms == g->at_ms) && (!x->rule || strcmp(x->rule, full) == 0) &&
         (!x->trigger || strcmp(x->trigger, g->trigger) == 0) &&
         (!x->outcome || strcmp(x->outcome, g->outcome) == 0) &&
         (!x->from || strcmp(x->from, g->from) == 0) && (!x->to || strcmp(x->to, g->to) == 0) &&
         (!x->reason || strstr(g->reason, x->reason) != NULL);
}

static void describe_expected(const expect_rb_t *x, char *b, size_t cap) {
  char at[40] = "any time";
  if (x->has_at) fmt_dur(x->at_ms, at, sizeof(at));
  snprintf(b, cap, "line %d: at %s%s%s%s%s: %s %s -> %s", x->line, at, x->rule ? " " : "",
           x->rule ? x->rule : "", x->trigger ? " " : "", x->trigger ? x->trigger : "",
           x->outcome ? x->outcome : "any outcome", x->from ? x->from : "*", x->to ? x->to : "*");
  if (x->reason) {
    size_t o = strlen(b);
    snprintf(b + o, cap - o, " (reason with \"%.120s\")", x->reason);
  }
}

static void describe_got(const got_rb_t *g, char *b, size_t cap) {
  char at[40];
  fmt_dur(g->at_ms, at, sizeof(at));
  snprintf(b, cap, "at %s %s/%s %s: %s %s -> %s (value %.6g%s%.120s%s)", at, g->service,
           g->environment, g->trigger, g->outcome, *g->from ? g->from : "-",
           *g->to ? g->to : "-", g->value, *g->reason ? "; reason \"" : "", g->reason,
           *g->reason ? "\"" : "");
}

static void check_rollbacks(run_t *r) {
  const test_group_t *g = r->g;
  uint32_t n = g->nrb > r->nrb ? g->nrb : r->nrb;
  int bad = g->nrb != r->nrb;
  for (uint32_t i = 0; !bad && i < n; i++) bad = !rb_matches(&g->rb[i], &r->rb[i]);
  if (!bad) return;
  add_line(r, 1, "rollback events: expected %u, got %u", g->nrb, r->nrb);
  for (uint32_t i = 0; i < n; i++) {
    char e[512] = "(none)", o[512] = "(none)";
    if (i < g->nrb) describe_expected(&g->rb[i], e, sizeof(e));
    if (i < r->nrb) describe_got(&r->rb[i], o, sizeof(o));
    int ok = i < g->nrb && i < r->nrb && rb_matches(&g->rb[i], &r->rb[i]);
    add_line(r, 1, "  %s #%u expected: %s", ok ? " " : "x", i + 1, e);
    add_line(r, 1, "  %s #%u got:      %s", ok ? " " : "x", i + 1, o);
  }
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* Applies the samples of step k (time k*interval) of every input series. */
static int apply_step(run_t *r, size_t k, rc_err_t *err) {
  const test_group_t *g = r->g;
  rc_series_t *sv2 = calloc(g->nseries ? g->nseries : 1, sizeof(*sv2));
  rc_sample_t *smp = calloc(g->nseries ? g->nseries : 1, sizeof(*smp));
  if (sv2 == NULL || smp == NULL) {
    free(sv2);
    free(smp);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  rc_batch_t b = {.series = sv2, .version = 1};
  int64_t ts = BASE_MS + (int64_t)k * g->interval_ms;
  for (uint32_t i = 0; i < g->nseries; i++) {
    const series_in_t *s = &g->series[i];
    if (k >= s->nvalues || s->values[k].kind == RC_RT_MISSING) continue;
    rc_sample_t *x = &smp[b.nseries];
    x->ts_ms = ts;
    if (s->values[k].kind == RC_RT_STALE) {
      uint64_t bits = RC_STALE_NAN_BITS;
      memcpy(&x->value, &bits, sizeof(bits));
    } else {
      x->value = s->values[k].v;
    }
    rc_series_t *o = &sv2[b.nseries++];
    *o = (rc_series_t){.labels = s->labels, .nlabels = s->nlabels, .metric = s->metric,
                       .metric_len = (uint32_t)strlen(s->metric), .samples = x, .nsamples = 1,
                       .nstale = s->values[k].kind == RC_RT_STALE};
    b.nsamples++;
    b.nstale += o->nstale;
  }
  int rc = b.nseries ? rc_replay_apply(r->rp, &b, err) : 0;
  free(sv2);
  free(smp);
  return rc;
}

/* Runs one test. Returns 0 (ran: see r->nfails) or an error that stops the file. */
static int run_group(run_t *r, rc_ruleset_t *rules, const rc_config_t *conf, rc_compat_t compat,
                     rc_err_t *err) {
  const rc_ruletest_suite_t *s = r->s;
  const test_group_t *g = r->g;
  rc_replay_cfg_t cfg = {.compat = compat, .rollback_window_ms = s->rollback_window_ms,
                         .cooldown_ms = s->cooldown_ms, .approval_envs = conf->approvals,
                         .n_approval_envs = conf->n_approvals};
  int rc = rc_replay_new(&cfg, rules, &r->rp, err);
  if (rc != 0) return rc;
  rc_replay_set_callbacks(r->rp, on_transition, on_rollback, r);
  /* The timeline: sample steps, evaluation steps and the expectations' times. */
  size_t nsteps = 0;
  for (uint32_t i = 0; i < g->nseries; i++)
    if (g->series[i].nvalues > nsteps) nsteps = g->series[i].nvalues;
  int64_t end = nsteps ? (int64_t)(nsteps - 1) * g->interval_ms : 0;
  for (uint32_t i = 0; i < g->ntrig; i++) end = g->trig[i].at_ms > end ? g->trig[i].at_ms : end;
  for (uint32_t i = 0; i < g->nrb; i++)
    if (g->rb[i].has_at && g->rb[i].at_ms > end) end = g->rb[i].at_ms;
  if ((uint64_t)end / (uint64_t)s->eval_ms > MAX_STEPS) {
    rc_replay_free(r->rp);
    r->rp = NULL;
    return rc_err_set(err, RC_ELIMIT, "the test runs to %lld ms: more than %u evaluations",
                      (long long)end, MAX_STEPS);
  }
  size_t nextra = g->ntrig;
  int64_t *extra = calloc(nextra ? nextra : 1, sizeof(*extra));
  uint32_t *dorder = calloc(g->ndeploys ? g->ndeploys : 1, sizeof(*dorder));
  if (extra == NULL || dorder == NULL) {
    free(extra);
    free(dorder);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  for (uint32_t i = 0; i < g->ntrig; i++) extra[i] = g->trig[i].at_ms;
  qsort(extra, nextra, sizeof(*extra), cmp_i64);
  /* Deploys in time order, ties in file order. */
  for (uint32_t i = 0; i < g->ndeploys; i++) dorder[i] = i;
  for (uint32_t i = 1; i < g->ndeploys; i++)
    for (uint32_t j = i; j > 0 && g->deploys[dorder[j - 1]].at_ms > g->deploys[dorder[j]].at_ms; j--) {
      uint32_t t = dorder[j];
      dorder[j] = dorder[j - 1];
      dorder[j - 1] = t;
    }
  size_t si = 0, xi = 0;
  uint32_t di = 0;
  int64_t next_eval = 0;
  rc = 0;
  while (rc == 0 && !r->nomem) {
    int64_t t = INT64_MAX;
    if (si < nsteps) t = (int64_t)si * g->interval_ms;
    if (next_eval <= end && next_eval < t) t = next_eval;
    if (xi < nextra && extra[xi] < t) t = extra[xi];
    if (di < g->ndeploys && g->deploys[dorder[di]].at_ms < t) t = g->deploys[dorder[di]].at_ms;
    if (t == INT64_MAX) break;
    while (rc == 0 && di < g->ndeploys && g->deploys[dorder[di]].at_ms <= t) {
      const deploy_in_t *d = &g->deploys[dorder[di++]];
      rc_err_t e = {0};
      if (rc_replay_deploy(r->rp, d->json, strlen(d->json), BASE_MS + d->at_ms, &e) != 0)
        add_line(r, 1, "line %d: the deploy was refused: %s", d->line, e.msg);
    }
    if (si < nsteps && (int64_t)si * g->interval_ms == t) rc = apply_step(r, si++, err);
    int eval = 0;
    if (next_eval == t) {
      eval = 1;
      next_eval += s->eval_ms;
    }
    while (xi < nextra && extra[xi] == t) eval = 1, xi++;
    if (rc == 0 && eval) {
      rc = rc_replay_eval(r->rp, BASE_MS + t, err);
      for (uint32_t i = 0; rc == 0 && i < g->ntrig; i++)
        if (g->trig[i].at_ms == t) check_trig(r, &g->trig[i]);
    }
  }
  free(extra);
  free(dorder);
  if (rc == 0 && g->check_rollbacks) check_rollbacks(r);
  if (r->nomem && rc == 0) rc = rc_err_set(err, RC_ENOMEM, "out of memory");
  rc_replay_free(r->rp);
  r->rp = NULL;
  return rc;
}

static void run_reset(run_t *r) {
  for (uint32_t i = 0; i < r->nrb; i++) {
    got_rb_t *g = &r->rb[i];
    free(g->service);
    free(g->environment);
    free(g->trigger);
    free(g->outcome);
    free(g->from);
    free(g->to);
    free(g->reason);
  }
  free(r->rb);
  for (uint32_t i = 0; i < r->nfails; i++) free(r->fails[i]);
  free(r->fails);
  for (uint32_t i = 0; i < r->nlog; i++) free(r->log[i]);
  free(r->log);
  r->rb = NULL;
  r->nrb = r->caprb = 0;
  r->fails = r->log = NULL;
  r->nfails = r->nlog = 0;
  r->nomem = 0;
}

static char *read_all(const char *path, size_t *len, rc_err_t *err) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    rc_err_set(err, RC_EIO, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  rc_buf_t b;
  rc_buf_init(&b);
  int rc = rc_buf_read_file(&b, f, 64u << 20);
  fclose(f);
  if (rc != 0) {
    rc_buf_free(&b);
    rc_err_set(err, rc, rc == RC_ELIMIT ? "%s: larger than 64 MiB" : "cannot read %s", path);
    return NULL;
  }
  return rc_buf_steal(&b, len);
}

/* One test file: 0 all passed, 1 some failed, 2 the file could not be run. */
static int run_file(const char *file, rc_compat_t compat, int verbose, int *passed, int *failed) {
  rc_err_t err = {0};
  size_t len = 0;
  char *text = read_all(file, &len, &err);
  if (text == NULL) {
    fprintf(stderr, "%s: %s\n", file, err.msg);
    return 2;
  }
  rc_diags_t d = {0};
  rc_ruletest_suite_t *s = NULL;
  int rc = rc_ruletest_parse(file, text, len, &s, &d);
  free(text);
  if (rc != 0) {
    rc_diags_print(&d, stderr);
    if (d.n == 0) fprintf(stderr, "%s: %s\n", file, rc_strerror(rc));
    rc_diags_free(&d);
    return 2;
  }
  int result = 0;
  for (uint32_t i = 0; i < s->ntests; i++) {
    const test_group_t *g = &s->tests[i];
    rc_ruleset_t rules = {0};
    rc_diags_t rd = {0};
    rc_config_t cfg = {0};
    if (rc_replay_load_rules(file, s->config_file, (const char *const *)s->rule_files,
                             s->nrule_files, &cfg, &rules, &rd, &err) != 0) {
      rc_diags_print(&rd, stderr);
      fprintf(stderr, "%s: %s\n", file, err.msg);
      rc_diags_free(&rd);
      rc_ruleset_free(&rules);
      rc_config_free(&cfg);
      result = 2;
      break;
    }
    if (verbose) rc_diags_print(&rd, stderr); /* warnings */
    rc_diags_free(&rd);
    run_t r = {.s = s, .g = g, .verbose = verbose};
    char name[300];
    snprintf(name, sizeof(name), "%s", g->name ? g->name : "");
    if (!g->name) snprintf(name, sizeof(name), "#%u", i + 1);
    rc = run_group(&r, &rules, &cfg, compat, &err);
    rc_ruleset_free(&rules);
    rc_config_free(&cfg);
    if (rc != 0) {
      fprintf(stderr, "%s:%d: test \"%s\": %s\n", file, g->line, name, err.msg);
      run_reset(&r);
      result = 2;
      break;
    }
    if (r.nfails) {
      (*failed)++;
      if (result == 0) result = 1;
      printf("FAIL %s:%d: test \"%s\"\n", file, g->line, name);
      for (uint32_t k = 0; k < r.nfails; k++) printf("  %s\n", r.fails[k]);
      printf("  what happened:%s\n", r.nlog ? "" : " no transitions, no rollback events");
      for (uint32_t k = 0; k < r.nlog; k++) printf("    %s\n", r.log[k]);
    } else {
      (*passed)++;
      printf("ok   %s:%d: test \"%s\"\n", file, g->line, name);
      if (verbose)
        for (uint32_t k = 0; k < r.nlog; k++) printf("    %s\n", r.log[k]);
    }
    run_reset(&r);
  }
  rc_ruletest_suite_free(s);
  rc_diags_free(&d);
  return result;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: ripcord test [--query.compat=prometheus-3|prometheus-2] [--verbose] FILE...\n"
          "Runs rule unit tests (see docs/RULE_TESTS.md) through the rule engine on a simulated\n"
          "clock. Exit status: 0 all passed, 1 a test failed, 2 a file could not be read or has\n"
          "errors.\n");
}

int rc_ruletest_main(int argc, char **argv) {
  rc_compat_t compat = RC_COMPAT_PROM3;
  int verbose = 0, nfiles = 0;
  char **files = calloc((size_t)argc + 1, sizeof(char *));
  if (files == NULL) return 2;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      free(files);
      return 0;
    } else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
      verbose = 1;
    } else if (strncmp(a, "--query.compat=", 15) == 0 || strcmp(a, "--query.compat") == 0) {
      const char *v = a[14] == '=' ? a + 15 : (i + 1 < argc ? argv[++i] : "");
      if (strcmp(v, "prometheus-3") == 0) compat = RC_COMPAT_PROM3;
      else if (strcmp(v, "prometheus-2") == 0) compat = RC_COMPAT_PROM2;
      else {
        fprintf(stderr, "ripcord test: --query.compat must be prometheus-3 or prometheus-2\n");
        free(files);
        return 2;
      }
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "ripcord test: unknown flag %s\n", a);
      usage(stderr);
      free(files);
      return 2;
    } else {
      files[nfiles++] = argv[i];
    }
  }
  if (nfiles == 0) {
    usage(stderr);
    free(files);
    return 2;
  }
  /* The engine and the actions log every firing; the report says it better here. */
  rc_log_set_level(verbose ? RC_LOG_WARN : RC_LOG_ERROR);
  int passed = 0, failed = 0, worst = 0;
  for (int i = 0; i < nfiles; i++) {
    int r = run_file(files[i], compat, verbose, &passed, &failed);
    if (r > worst) worst = r;
  }
  free(files);
  printf("%d passed, %d failed\n", passed, failed);
  return worst;
}
