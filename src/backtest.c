/* backtest.c: `ripcord backtest` — flags, deploy history (registry or file), the chunked
 * remote-read pull, the time-ordered replay through replay.h, and the report (table, JSON,
 * progress); see backtest.h. */
#include "backtest.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "replay.h"
#include "rread.h"
#include "selindex.h"

#define MAX_RULE_FILES 64

/*------------------------------------------------------------------------------------------
 * Times
 *----------------------------------------------------------------------------------------*/

int rc_backtest_parse_time(const char *s, int64_t now_ms, int64_t *out, rc_err_t *err) {
  static const char what[] = "must be RFC 3339 with a zone (2026-11-27T09:00:00Z), unix seconds, "
                             "unix milliseconds, now or now-<duration> (now-7d)";
  if (s == NULL || *s == '\0') return rc_err_set(err, RC_EINVAL, "a time %s", what);
  if (strncmp(s, "now", 3) == 0) {
    if (s[3] == '\0') {
      *out = now_ms;
      return 0;
    }
    uint64_t d = 0;
    if (s[3] != '-' || rc_parse_duration_ms(s + 4, &d) != 0 || d > (uint64_t)now_ms)
      return rc_err_set(err, RC_EINVAL, "\"%.40s\": a time %s", s, what);
    *out = now_ms - (int64_t)d;
    return 0;
  }
  size_t n = strlen(s), dg = 0;
  while (dg < n && s[dg] >= '0' && s[dg] <= '9') dg++;
  if (dg == n && n <= 16) {
    int64_t v = strtoll(s, NULL, 10);
    *out = n >= 13 ? v : v * 1000; /* 13 digits: milliseconds (after 2001-09-09) */
    return 0;
  }
  if (rc_parse_rfc3339(s, out) == 0) return 0;
  return rc_err_set(err, RC_EINVAL, "\"%.40s\": a time %s", s, what);
}

static int64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static double mono_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fmt_time(int64_t ms, char *b, size_t cap) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(b, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  if (n > 0 && n + 6 <= cap) snprintf(b + n, cap - n, ".%03dZ", (int)((ms % 1000 + 1000) % 1000));
}

/*------------------------------------------------------------------------------------------
 * Deploy history
 *----------------------------------------------------------------------------------------*/

typedef struct deploy {
  int64_t at_ms;
  char *json;
} deploy_t;

typedef struct deploys {
  deploy_t *v;
  size_t n, cap;
} deploys_t;

static int deploys_add(deploys_t *d, int64_t at, json_t *body) {
  if (d->n == d->cap) {
    size_t nc = d->cap ? d->cap * 2 : 16;
    deploy_t *nv = realloc(d->v, nc * sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    d->v = nv;
    d->cap = nc;
  }
  char *j = json_dumps(body, JSON_COMPACT);
  if (j == NULL) return RC_ENOMEM;
  d->v[d->n++] = (deploy_t){.at_ms = at, .json = j};
  return 0;
}

static void deploys_free(deploys_t *d) {
  for (size_t i = 0; i < d->n; i++) free(d->v[i].json);
  free(d->v);
}

static int deploy_cmp(const void *a, const void *b) {
  const deploy_t *x = a, *y = b;
  return x->at_ms < y->at_ms ? -1 : x->at_ms > y->at_ms; /* the caller sorts stably */
}

/* --deploys FILE: a JSON array of POST /api/v1/deploys bodies, each with started_at. */
static int deploys_from_file(const char *path, deploys_t *d, rc_err_t *err) {
  json_error_t je;
  json_t *doc = json_load_file(path, 0, &je);
  if (doc == NULL)
    return rc_err_set(err, RC_EPARSE, "--deploys %s:%d:%d: %s", path, je.line, je.column,
                      je.text);
  int rc = 0;
  if (!json_is_array(doc)) rc = rc_err_set(err, RC_EPARSE, "--deploys %s: not a JSON array", path);
  for (size_t i = 0; rc == 0 && i < json_array_size(doc); i++) {
    json_t *o = json_array_get(doc, i), *sa = json_object_get(o, "started_at");
    int64_t at = 0;
    if (!json_is_object(o)) {
      rc = rc_err_set(err, RC_EPARSE, "--deploys %s: entry %zu is not an object", path, i + 1);
    } else if (json_is_integer(sa) && json_integer_value(sa) > 0) {
      at = (int64_t)json_integer_value(sa);
    } else if (!json_is_string(sa) || rc_parse_rfc3339(json_string_value(sa), &at) != 0) {
      rc = rc_err_set(err, RC_EPARSE,
                      "--deploys %s: entry %zu needs started_at (RFC 3339 with a zone or ms)",
                      path, i + 1);
    }
    if (rc == 0 && deploys_add(d, at, o) != 0) rc = rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  json_decref(doc);
  return rc;
}

/* --storage.path DIR: ripcord's registry, read-only (the daemon may be running: WAL readers do
 * not block it). rolled_back marks are not copied: the replay makes its own. */
static int deploys_from_registry(const char *dir, deploys_t *d, rc_err_t *err) {
  char path[4200];
  snprintf(path, sizeof(path), "%s/ripcord.db", dir);
  sqlite3 *h = NULL;
  if (sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    int rc = rc_err_set(err, RC_EIO, "--storage.path: cannot open %s: %s", path,
                        h ? sqlite3_errmsg(h) : "out of memory");
    sqlite3_close(h);
    return rc;
  }
  sqlite3_busy_timeout(h, 5000);
  sqlite3_stmt *st = NULL, *mig = NULL;
  int rc = 0;
  if (sqlite3_prepare_v2(h,
                         "SELECT id, service, environment, version, artifact, deployer,"
                         " started_at, is_rollback FROM deploys ORDER BY started_at, id",
                         -1, &st, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(h,
                         "SELECT migration_id, reversible, applied_at FROM deploy_migrations"
                         " WHERE deploy_id = ?1 ORDER BY rowid",
                         -1, &mig, NULL) != SQLITE_OK) {
    rc = rc_err_set(err, RC_EIO, "--storage.path: %s is not a ripcord registry: %s", path,
                    sqlite3_errmsg(h));
  }
  int s;
  while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *o = json_object();
    static const char *const keys[] = {"service", "environment", "version", "artifact",
                                       "deployer"};
    for (int k = 0; k < 5; k++) {
      const unsigned char *v = sqlite3_column_text(st, k + 1);
      if (v != NULL) json_object_set_new(o, keys[k], json_string((const char *)v));
    }
    int64_t at = sqlite3_column_int64(st, 6);
    json_object_set_new(o, "started_at", json_integer(at));
    json_object_set_new(o, "is_rollback", json_boolean(sqlite3_column_int(st, 7)));
    json_t *ms = json_array();
    sqlite3_reset(mig);
    sqlite3_bind_int64(mig, 1, sqlite3_column_int64(st, 0));
    while (sqlite3_step(mig) == SQLITE_ROW) {
      json_t *m = json_pack("{s:s,s:b}", "id", (const char *)sqlite3_column_text(mig, 0),
                            "reversible", sqlite3_column_int(mig, 1));
      if (m && sqlite3_column_type(mig, 2) != SQLITE_NULL)
        json_object_set_new(m, "applied_at", json_integer(sqlite3_column_int64(mig, 2)));
      json_array_append_new(ms, m);
    }
    if (json_array_size(ms)) json_object_set(o, "migrations", ms);
    json_decref(ms);
    if (deploys_add(d, at, o) != 0) rc = rc_err_set(err, RC_ENOMEM, "out of memory");
    json_decref(o);
  }
  if (rc == 0 && s != SQLITE_DONE)
    rc = rc_err_set(err, RC_EIO, "--storage.path: reading %s: %s", path, sqlite3_errmsg(h));
  sqlite3_finalize(st);
  sqlite3_finalize(mig);
  sqlite3_close(h);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Report
 *----------------------------------------------------------------------------------------*/

typedef struct bt {
  int64_t from, to, step, warmup, chunk;
  rc_replay_t *rp;
  deploys_t deploys;
  size_t next_deploy;
  json_t *transitions, *rollbacks;
  int table; /* print the table on stdout */
  int progress;
  /* counts */
  uint64_t samples, evaluations, batches;
  double replay_s, fetch_s;
  /* distinct series seen (open addressing on the identity hash's low word; 0 = empty) */
  uint64_t *seen;
  size_t seen_n, seen_cap;
  int failed;
} bt_t;

static void on_transition(void *ctx, const rc_replay_transition_t *t) {
  bt_t *b = ctx;
  if (t->at_ms < b->from) return; /* the warm-up: state carried, not reported */
  int resolved = t->from == RC_TS_FIRING && t->to == RC_TS_INACTIVE;
  json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:b}", "at", (json_int_t)t->at_ms, "service",
                        t->service, "environment", t->environment, "trigger", t->trigger_name,
                        "from", rc_trigger_state_name(t->from), "to",
                        rc_trigger_state_name(t->to), "resolved", resolved);
  if (o == NULL) {
    b->failed = 1;
    return;
  }
  json_object_set_new(o, "value", t->has_value && t->value == t->value ? json_real(t->value)
                                                                        : json_null());
  json_array_append_new(b->transitions, o);
}

static void on_rollback(void *ctx, const rc_replay_rollback_t *e) {
  bt_t *b = ctx;
  if (e->at_ms < b->from) return;
  json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s}", "at", (json_int_t)e->at_ms, "service",
                        e->service ? e->service : "", "environment",
                        e->environment ? e->environment : "", "trigger",
                        e->trigger_name ? e->trigger_name : "", "outcome",
                        e->outcome ? e->outcome : "", "from_version",
                        e->from_version ? e->from_version : "", "to_version",
                        e->to_version ? e->to_version : "");
  if (o == NULL) {
    b->failed = 1;
    return;
  }
  json_object_set_new(o, "value", e->value == e->value ? json_real(e->value) : json_null());
  json_object_set_new(o, "reason", json_string(e->reason ? e->reason : ""));
  json_array_append_new(b->rollbacks, o);
}

static void print_table(bt_t *b, FILE *f) {
  fprintf(f, "%-24s  %-28s  %-22s  %-24s  %s\n", "time", "rule", "trigger", "transition",
          "value");
  size_t i;
  json_t *o;
  json_array_foreach(b->transitions, i, o) {
    char t[40], rule[300], tr[60], val[40] = "-";
    fmt_time((int64_t)json_integer_value(json_object_get(o, "at")), t, sizeof(t));
    snprintf(rule, sizeof(rule), "%s/%s", json_string_value(json_object_get(o, "service")),
             json_string_value(json_object_get(o, "environment")));
    snprintf(tr, sizeof(tr), "%s -> %s", json_string_value(json_object_get(o, "from")),
             json_is_true(json_object_get(o, "resolved"))
                 ? "resolved" : json_string_value(json_object_get(o, "to")));
    json_t *v = json_object_get(o, "value");
    if (json_is_number(v)) snprintf(val, sizeof(val), "%.6g", json_number_value(v));
    fprintf(f, "%-24s  %-28s  %-22s  %-24s  %s\n", t, rule,
            json_string_value(json_object_get(o, "trigger")), tr, val);
  }
  fprintf(f, "\n%-24s  %-28s  %-22s  %-24s  %s\n", "time", "rule", "trigger", "rollback event",
          "from -> to");
  json_array_foreach(b->rollbacks, i, o) {
    char t[40], rule[300], vers[200];
    fmt_time((int64_t)json_integer_value(json_object_get(o, "at")), t, sizeof(t));
    snprintf(rule, sizeof(rule), "%s/%s", json_string_value(json_object_get(o, "service")),
             json_string_value(json_object_get(o, "environment")));
    const char *fv = json_string_value(json_object_get(o, "from_version"));
    const char *tv = json_string_value(json_object_get(o, "to_version"));
    snprintf(vers, sizeof(vers), "%s -> %s", fv && *fv ? fv : "-", tv && *tv ? tv : "-");
    fprintf(f, "%-24s  %-28s  %-22s  %-24s  %s\n", t, rule,
            json_string_value(json_object_get(o, "trigger")),
            json_string_value(json_object_get(o, "outcome")), vers);
  }
}

static void progress(bt_t *b, int64_t upto, int done) {
  if (!b->progress) return;
  double pct = b->to > b->from - b->warmup
                   ? 100.0 * (double)(upto - (b->from - b->warmup)) / (double)(b->to - (b->from - b->warmup))
                   : 100.0;
  if (pct > 100) pct = 100;
  char t[40];
  fmt_time(upto, t, sizeof(t));
  double rate = b->replay_s > 0 ? (double)b->samples / b->replay_s : 0;
  fprintf(stderr, "\rbacktest: %s  %5.1f%%  %llu samples  %.3gM samples/s replayed%s", t, pct,
          (unsigned long long)b->samples, rate / 1e6, done ? "\n" : "   ");
  fflush(stderr);
}

/*------------------------------------------------------------------------------------------
 * Replay
 *----------------------------------------------------------------------------------------*/

static int seen_add(bt_t *b, uint64_t h) {
  if (h == 0) h = 1;
  if ((b->seen_n + 1) * 2 > b->seen_cap) {
    size_t nc = b->seen_cap ? b->seen_cap * 2 : 1024;
    uint64_t *nv = calloc(nc, sizeof(*nv));
    if (nv == NULL) return RC_ENOMEM;
    for (size_t i = 0; i < b->seen_cap; i++)
      if (b->seen[i]) {
        size_t j = b->seen[i] & (nc - 1);
        while (nv[j]) j = (j + 1) & (nc - 1);
        nv[j] = b->seen[i];
      }
    free(b->seen);
    b->seen = nv;
    b->seen_cap = nc;
  }
  size_t j = h & (b->seen_cap - 1);
  while (b->seen[j] && b->seen[j] != h) j = (j + 1) & (b->seen_cap - 1);
  if (!b->seen[j]) {
    b->seen[j] = h;
    b->seen_n++;
  }
  return 0;
}

/* Deploys due at or before t, in time order. */
static int deploys_until(bt_t *b, int64_t t, rc_err_t *err) {
  while (b->next_deploy < b->deploys.n && b->deploys.v[b->next_deploy].at_ms <= t) {
    const deploy_t *d = &b->deploys.v[b->next_deploy++];
    rc_err_t e = {0};
    if (rc_replay_deploy(b->rp, d->json, strlen(d->json), d->at_ms, &e) != 0)
      return rc_err_set(err, RC_EPARSE, "a deploy was refused: %s (%.200s)", e.msg, d->json);
  }
  return 0;
}

/* Evaluated from the start of the warm-up, so that a trigger pending or firing at --from is
 * in that state there, as it was live; only what happens from --from on is reported. */
static int eval_at(bt_t *b, int64_t t, rc_err_t *err) {
  if (t > b->to) return 0;
  int rc = deploys_until(b, t, err);
  if (rc == 0) rc = rc_replay_eval(b->rp, t, err);
  b->evaluations++;
  return rc;
}

typedef struct pt {
  int64_t ts;
  uint32_t series;
  uint32_t idx;
} pt_t;

static int pt_cmp(const void *a, const void *c) {
  const pt_t *x = a, *y = c;
  if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
  return x->series < y->series ? -1 : x->series > y->series;
}

typedef struct sref {
  const rc_rread_series_t *s;
  const char *metric;
  uint32_t metric_len;
} sref_t;

/* One chunk's samples, in time order: batches per distinct timestamp, evaluations after
 * each batch and at every step tick in between. *next_tick carries over between chunks. */
static int replay_chunk(bt_t *b, rc_rread_result_t *res, uint32_t nres, int64_t *next_tick,
                        rc_err_t *err) {
  /* Distinct series of this chunk (several selectors may return the same one). */
  uint32_t nref = 0, cap = 0;
  sref_t *refs = NULL;
  size_t npts = 0;
  uint64_t *hs = NULL;
  size_t hcap = 0;
  int rc = 0;
  for (uint32_t q = 0; q < nres; q++) hcap += res[q].nseries;
  size_t hsz = 16;
  while (hsz < hcap * 2) hsz <<= 1;
  hs = calloc(hsz, sizeof(*hs));
  if (hs == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  for (uint32_t q = 0; rc == 0 && q < nres; q++)
    for (uint32_t i = 0; rc == 0 && i < res[q].nseries; i++) {
      const rc_rread_series_t *s = &res[q].series[i];
      rc_selindex_hash_t h = rc_selindex_hash_labels(s->labels, s->nlabels);
      uint64_t key = h.lo ? h.lo : 1;
      size_t j = key & (hsz - 1);
      while (hs[j] && hs[j] != key) j = (j + 1) & (hsz - 1);
      if (hs[j]) continue; /* returned by an earlier selector already */
      hs[j] = key;
      if (seen_add(b, key) != 0) rc = RC_ENOMEM;
      const char *metric = NULL;
      uint32_t mlen = 0;
      for (uint32_t k = 0; k < s->nlabels; k++)
        if (s->labels[k].name_len == 8 && memcmp(s->labels[k].name, "__name__", 8) == 0) {
          metric = s->labels[k].value;
          mlen = s->labels[k].value_len;
        }
      if (metric == NULL || s->nsamples == 0) continue;
      if (nref == cap) {
        uint32_t nc = cap ? cap * 2 : 256;
        sref_t *nr = realloc(refs, nc * sizeof(*nr));
        if (nr == NULL) {
          rc = RC_ENOMEM;
          break;
        }
        refs = nr;
        cap = nc;
      }
      refs[nref++] = (sref_t){.s = s, .metric = metric, .metric_len = mlen};
      npts += s->nsamples;
    }
  free(hs);
  if (rc != 0) {
    free(refs);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  pt_t *pts = malloc((npts ? npts : 1) * sizeof(*pts));
  if (pts == NULL) {
    free(refs);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  rc_series_t *bs = malloc((nref ? nref : 1) * sizeof(*bs));
  if (bs == NULL) {
    free(refs);
    free(pts);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  size_t k = 0;
  for (uint32_t r = 0; r < nref; r++)
    for (uint32_t i = 0; i < refs[r].s->nsamples; i++)
      pts[k++] = (pt_t){.ts = refs[r].s->samples[i].ts_ms, .series = r, .idx = i};
  qsort(pts, npts, sizeof(*pts), pt_cmp);
  double t0 = mono_s();
  for (size_t i = 0; rc == 0 && i < npts;) {
    int64_t ts = pts[i].ts;
    /* Step ticks before this batch: windows slide, series go quiet. */
    while (rc == 0 && *next_tick < ts) {
      rc = eval_at(b, *next_tick, err);
      *next_tick += b->step;
    }
    if (rc != 0) break;
    rc = deploys_until(b, ts, err);
    rc_batch_t batch = {.series = bs, .version = 1};
    for (; i < npts && pts[i].ts == ts; i++) {
      const sref_t *r = &refs[pts[i].series];
      const rc_sample_t *smp = &r->s->samples[pts[i].idx];
      int stale = rc_is_stale_nan(smp->value);
      bs[batch.nseries++] = (rc_series_t){.labels = r->s->labels, .nlabels = r->s->nlabels,
                                          .metric = r->metric, .metric_len = r->metric_len,
                                          .samples = smp, .nsamples = 1, .nstale = (uint32_t)stale};
      batch.nsamples++;
      batch.nstale += (uint64_t)stale;
    }
    if (rc == 0) rc = rc_replay_apply(b->rp, &batch, err);
    b->samples += batch.nsamples;
    b->batches++;
    /* As serve evaluates on every batch. */
    if (rc == 0) rc = eval_at(b, ts, err);
    if (*next_tick == ts) *next_tick += b->step;
  }
  b->replay_s += mono_s() - t0;
  free(refs);
  free(pts);
  free(bs);
  if (rc == 0 && b->failed) rc = rc_err_set(err, RC_ENOMEM, "out of memory");
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Command
 *----------------------------------------------------------------------------------------*/

static void usage(FILE *f) {
  fprintf(f,
          "usage: ripcord backtest --prometheus.url=URL --from=T --to=T [--step=15s]\n"
          "                        [--warmup=1h] [--chunk=1h] [--config.file=F]\n"
          "                        [--deploys=FILE | --storage.path=DIR]\n"
          "                        [--query.compat=prometheus-3|prometheus-2]\n"
          "                        [--bearer-token-file=F] [--timeout=60s]\n"
          "                        [--json=FILE|-] [--quiet] RULEFILE...\n"
          "Replays the raw samples the rules select, pulled from Prometheus' remote read API,\n"
          "through the rule engine and reports every transition and rollback event.\n"
          "T: RFC 3339 (2026-11-27T09:00:00Z), unix seconds or milliseconds, now, now-7d.\n"
          "Exit status: 0 done, 1 Prometheus could not be read, 2 usage or file errors.\n");
}

/* --name=value or --name value. Returns the value, or NULL if argv[*i] is not --name. */
static const char *flag(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (a == NULL || strncmp(a, name, n) != 0) return NULL;
  if (a[n] == '=') return a + n + 1;
  if (a[n] == '\0' && *i + 1 < argc) return argv[++*i];
  return NULL;
}

static char *read_token(const char *path, rc_err_t *err) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    rc_err_set(err, RC_EIO, "--bearer-token-file %s: %s", path, strerror(errno));
    return NULL;
  }
  char buf[4096];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = 0;
  char *t = strdup(buf);
  memset(buf, 0, sizeof(buf));
  if (t == NULL) rc_err_set(err, RC_ENOMEM, "out of memory");
  return t;
}

int rc_backtest_main(int argc, char **argv) {
  const char *url = NULL, *from_s = NULL, *to_s = NULL, *step_s = "15s", *warm_s = "1h",
             *chunk_s = "1h", *config = NULL, *deploys_path = NULL, *storage = NULL,
             *json_path = NULL, *token_file = NULL, *timeout_s = "60s";
  const char *files[MAX_RULE_FILES];
  uint32_t nfiles = 0;
  rc_compat_t compat = RC_COMPAT_PROM3;
  int quiet = 0;
  for (int i = 1; i < argc && argv[i] != NULL; i++) {
    const char *v;
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else if ((v = flag(argc, argv, &i, "--prometheus.url")) != NULL) url = v;
    else if ((v = flag(argc, argv, &i, "--from")) != NULL) from_s = v;
    else if ((v = flag(argc, argv, &i, "--to")) != NULL) to_s = v;
    else if ((v = flag(argc, argv, &i, "--step")) != NULL) step_s = v;
    else if ((v = flag(argc, argv, &i, "--warmup")) != NULL) warm_s = v;
    else if ((v = flag(argc, argv, &i, "--chunk")) != NULL) chunk_s = v;
    else if ((v = flag(argc, argv, &i, "--config.file")) != NULL) config = v;
    else if ((v = flag(argc, argv, &i, "--deploys")) != NULL) deploys_path = v;
    else if ((v = flag(argc, argv, &i, "--storage.path")) != NULL) storage = v;
    else if ((v = flag(argc, argv, &i, "--json")) != NULL) json_path = v;
    else if ((v = flag(argc, argv, &i, "--bearer-token-file")) != NULL) token_file = v;
    else if ((v = flag(argc, argv, &i, "--timeout")) != NULL) timeout_s = v;
    else if ((v = flag(argc, argv, &i, "--query.compat")) != NULL) {
      if (strcmp(v, "prometheus-3") == 0) compat = RC_COMPAT_PROM3;
      else if (strcmp(v, "prometheus-2") == 0) compat = RC_COMPAT_PROM2;
      else {
        fprintf(stderr, "ripcord backtest: --query.compat must be prometheus-3 or prometheus-2\n");
        return 2;
      }
    } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) quiet = 1;
    else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "ripcord backtest: unknown flag or missing value: %s\n", a);
      usage(stderr);
      return 2;
    } else if (nfiles < MAX_RULE_FILES) files[nfiles++] = a;
    else {
      fprintf(stderr, "ripcord backtest: more than %d rule files\n", MAX_RULE_FILES);
      return 2;
    }
  }
  rc_err_t err = {0};
  bt_t b;
  memset(&b, 0, sizeof(b));
  uint64_t step = 0, warm = 0, chunk = 0, tmo = 0;
  int64_t now = wall_ms();
  const char *bad = NULL;
  if (url == NULL || from_s == NULL || to_s == NULL || nfiles == 0) bad = "";
  else if (rc_backtest_parse_time(from_s, now, &b.from, &err) != 0) bad = "--from: ";
  else if (rc_backtest_parse_time(to_s, now, &b.to, &err) != 0) bad = "--to: ";
  else if (rc_parse_duration_ms(step_s, &step) != 0 || step == 0 || step > 86400000)
    bad = "--step must be a duration from 1ms to 1d", err.msg[0] = 0;
  else if (rc_parse_duration_ms(warm_s, &warm) != 0 || warm > 7 * 86400000ull)
    bad = "--warmup must be a duration up to 7d", err.msg[0] = 0;
  else if (rc_parse_duration_ms(chunk_s, &chunk) != 0 || chunk < 1000 || chunk > 86400000)
    bad = "--chunk must be a duration from 1s to 1d", err.msg[0] = 0;
  else if (rc_parse_duration_ms(timeout_s, &tmo) != 0 || tmo == 0 || tmo > 3600000)
    bad = "--timeout must be a duration up to 1h", err.msg[0] = 0;
  else if (b.to < b.from) bad = "--to is before --from", err.msg[0] = 0;
  else if (deploys_path && storage) bad = "--deploys and --storage.path: give one", err.msg[0] = 0;
  if (bad != NULL) {
    if (*bad || err.msg[0]) fprintf(stderr, "ripcord backtest: %s%s\n", bad, err.msg);
    else usage(stderr);
    return 2;
  }
  b.step = (int64_t)step;
  b.warmup = (int64_t)warm;
  b.chunk = (int64_t)chunk;
  b.progress = !quiet && isatty(2);
  b.table = json_path == NULL || strcmp(json_path, "-") != 0;
  b.transitions = json_array();
  b.rollbacks = json_array();
  rc_log_set_level(RC_LOG_ERROR); /* the engine's and actions' logs: the report says it */

  int exit_code = 2;
  rc_config_t cfg = {0};
  rc_ruleset_t rules = {0};
  rc_diags_t d = {0};
  rc_rread_client_t *cl = NULL;
  char *token = NULL;
  rc_rread_result_t *res = NULL;
  uint32_t nsels = 0;
  if (rc_replay_load_rules(NULL, config, files, nfiles, &cfg, &rules, &d, &err) != 0) {
    rc_diags_print(&d, stderr);
    fprintf(stderr, "ripcord backtest: %s\n", err.msg);
    goto out;
  }
  if ((deploys_path && deploys_from_file(deploys_path, &b.deploys, &err) != 0) ||
      (storage && deploys_from_registry(storage, &b.deploys, &err) != 0)) {
    fprintf(stderr, "ripcord backtest: %s\n", err.msg);
    goto out;
  }
  /* Time order; equal times keep their file or registry order (insertion sort: stable). */
  for (size_t i = 1; i < b.deploys.n; i++)
    for (size_t j = i; j > 0 && deploy_cmp(&b.deploys.v[j - 1], &b.deploys.v[j]) > 0; j--) {
      deploy_t t = b.deploys.v[j];
      b.deploys.v[j] = b.deploys.v[j - 1];
      b.deploys.v[j - 1] = t;
    }
  if (token_file != NULL && (token = read_token(token_file, &err)) == NULL) {
    fprintf(stderr, "ripcord backtest: %s\n", err.msg);
    goto out;
  }
  rc_replay_cfg_t rcfg = {.compat = compat,
                          .retention_ms = b.warmup > 3600000 ? b.warmup : 3600000,
                          .approval_envs = cfg.approvals, .n_approval_envs = cfg.n_approvals};
  if (rc_replay_new(&rcfg, &rules, &b.rp, &err) != 0) {
    fprintf(stderr, "ripcord backtest: %s\n", err.msg);
    goto out;
  }
  rc_replay_set_callbacks(b.rp, on_transition, on_rollback, &b);
  const rc_selector_t *const *sels = NULL;
  rc_replay_selectors(b.rp, &sels, &nsels);
  rc_rread_opts_t ro = {.url = url, .timeout_ms = (uint32_t)tmo, .bearer_token = token};
  if (rc_rread_client_new(&ro, &cl, &err) != 0) {
    fprintf(stderr, "ripcord backtest: %s\n", err.msg);
    goto out;
  }
  res = calloc(nsels ? nsels : 1, sizeof(*res));
  if (res == NULL) goto out;
  exit_code = 0;
  int64_t start = b.from - b.warmup, next_tick = start;
  for (int64_t cs = start; exit_code == 0 && cs <= b.to; cs += b.chunk) {
    int64_t ce = cs + b.chunk - 1 < b.to ? cs + b.chunk - 1 : b.to;
    double f0 = mono_s();
    int rc = nsels ? rc_rread_query(cl, sels, nsels, cs, ce, res, &err) : 0;
    b.fetch_s += mono_s() - f0;
    if (rc != 0) {
      fprintf(stderr, "%sripcord backtest: cannot read %s: %s\n", b.progress ? "\n" : "", url,
              err.msg);
      exit_code = 1;
      break;
    }
    if (replay_chunk(&b, res, nsels, &next_tick, &err) != 0) {
      fprintf(stderr, "%sripcord backtest: %s\n", b.progress ? "\n" : "", err.msg);
      exit_code = 2;
    }
    for (uint32_t q = 0; q < nsels; q++) rc_rread_result_free(&res[q]);
    progress(&b, ce, 0);
  }
  /* After the last sample: the step ticks to the end (windows empty out, firings resolve). */
  double t0 = mono_s();
  while (exit_code == 0 && next_tick <= b.to) {
    if (eval_at(&b, next_tick, &err) != 0) {
      fprintf(stderr, "ripcord backtest: %s\n", err.msg);
      exit_code = 2;
    }
    next_tick += b.step;
  }
  b.replay_s += mono_s() - t0;
  if (exit_code == 0) progress(&b, b.to, 1);
  if (exit_code == 0) {
    rc_store_stats_t ss;
    rc_replay_store_stats(b.rp, &ss);
    json_t *doc = json_pack(
        "{s:I,s:I,s:O,s:O,s:{s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f}}", "from", (json_int_t)b.from, "to",
        (json_int_t)b.to, "transitions", b.transitions, "rollbacks", b.rollbacks, "summary",
        "series", (json_int_t)b.seen_n, "samples", (json_int_t)b.samples, "batches",
        (json_int_t)b.batches, "evaluations", (json_int_t)b.evaluations, "seconds",
        b.replay_s + b.fetch_s, "fetch_seconds", b.fetch_s, "replay_seconds", b.replay_s,
        "samples_per_second", b.replay_s > 0 ? (double)b.samples / b.replay_s : 0.0);
    if (b.table) {
      print_table(&b, stdout);
      printf("\n%llu series, %llu samples, %llu evaluations; fetched in %.2f s, replayed in "
             "%.2f s (%.3g samples/s)\n",
             (unsigned long long)b.seen_n, (unsigned long long)b.samples,
             (unsigned long long)b.evaluations, b.fetch_s, b.replay_s,
             b.replay_s > 0 ? (double)b.samples / b.replay_s : 0.0);
    }
    if (json_path != NULL && doc != NULL) {
      int wrc = strcmp(json_path, "-") == 0
                    ? json_dumpf(doc, stdout, JSON_INDENT(1)) | (fputc('\n', stdout) == EOF)
                    : json_dump_file(doc, json_path, JSON_INDENT(1));
      if (wrc != 0) {
        fprintf(stderr, "ripcord backtest: cannot write %s\n", json_path);
        exit_code = 2;
      }
    }
    json_decref(doc);
  }
out:
  free(res);
  rc_rread_client_free(cl);
  if (token) {
    memset(token, 0, strlen(token));
    free(token);
  }
  rc_replay_free(b.rp);
  rc_ruleset_free(&rules);
  rc_config_free(&cfg);
  rc_diags_free(&d);
  deploys_free(&b.deploys);
  json_decref(b.transitions);
  json_decref(b.rollbacks);
  free(b.seen);
  return exit_code;
}
