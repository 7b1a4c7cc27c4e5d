/* replay.c: the rule engine, store, actions and deploy registry on a simulated clock; see
 * replay.h. */
#include "replay.h"

#include <dirent.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "actions.h"
#include "config.h"
#include "approvals.h"
#include "db.h"
#include "delivery.h"
#include "deploys.h"
#include "store.h"

typedef struct rname {
  char *service, *environment;
  char **triggers;
  uint32_t ntriggers;
  rc_trigger_state_t *last; /* per trigger: the state reported last */
} rname_t;

struct rc_replay {
  uv_loop_t loop;
  int loop_on;
  char dir[4096];
  rc_db_t *db;
  rc_delivery_t *delivery;
  rc_actions_t *actions;
  rc_approvals_t *approvals;
  rc_engine_t *engine;
  rc_store_t *store;
  rname_t *names;
  uint32_t nrules;
  const rc_selector_t **sels;
  uint32_t nsels;
  int64_t last_event_id;
  rc_replay_transition_cb on_transition;
  rc_replay_rollback_cb on_rollback;
  void *ctx;
};

const char *rc_trigger_state_name(rc_trigger_state_t s) {
  return s == RC_TS_PENDING ? "pending" : s == RC_TS_FIRING ? "firing" : "inactive";
}

/* Copies what the report needs of the rules (the engine takes the rule set itself) and the
 * distinct selectors of their expressions. */
static int copy_names(rc_replay_t *r, const rc_ruleset_t *rules) {
  r->names = calloc(rules->n ? rules->n : 1, sizeof(*r->names));
  if (r->names == NULL) return RC_ENOMEM;
  r->nrules = rules->n;
  uint32_t cap = 0;
  for (uint32_t i = 0; i < rules->n; i++) {
    const rc_rule_t *ru = &rules->rules[i];
    rname_t *n = &r->names[i];
    n->service = strdup(ru->service ? ru->service : "");
    n->environment = strdup(ru->environment ? ru->environment : "");
    n->triggers = calloc(ru->ntriggers ? ru->ntriggers : 1, sizeof(char *));
    n->last = calloc(ru->ntriggers ? ru->ntriggers : 1, sizeof(*n->last));
    if (!n->service || !n->environment || !n->triggers || !n->last) return RC_ENOMEM;
    n->ntriggers = ru->ntriggers;
    for (uint32_t k = 0; k < ru->ntriggers; k++) {
      const rc_trigger_t *t = &ru->triggers[k];
      if ((n->triggers[k] = strdup(t->name ? t->name : "")) == NULL) return RC_ENOMEM;
      const rc_pq_expr_t *ex[2] = {t->expr, t->requests_expr};
      for (int j = 0; j < 2; j++)
        for (uint32_t s = 0; ex[j] != NULL && s < ex[j]->nsels; s++) {
          const rc_selector_t *sel = ex[j]->sels[s];
          uint32_t q = 0;
          while (q < r->nsels && r->sels[q] != sel) q++;
          if (q < r->nsels) continue;
          if (r->nsels == cap) {
            uint32_t nc = cap ? cap * 2 : 16;
            const rc_selector_t **ns = realloc(r->sels, nc * sizeof(*ns));
            if (ns == NULL) return RC_ENOMEM;
            r->sels = ns;
            cap = nc;
          }
          r->sels[r->nsels++] = sel;
        }
    }
  }
  return 0;
}

/* Removes the private database directory (its files are ours: the db and its WAL). */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      char p[4400];
      snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
      (void)remove(p);
    }
    closedir(d);
  }
  (void)remove(dir);
}

int rc_replay_new(const rc_replay_cfg_t *cfg, rc_ruleset_t *rules, rc_replay_t **out,
                  rc_err_t *err) {
  *out = NULL;
  rc_replay_t *r = calloc(1, sizeof(*r));
  if (r == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  if (copy_names(r, rules) != 0) {
    rc_replay_free(r);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  const char *tmp = getenv("TMPDIR");
  snprintf(r->dir, sizeof(r->dir), "%s/ripcord-replay-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (mkdtemp(r->dir) == NULL) {
    int rc = rc_err_set(err, RC_EIO, "cannot create a temporary directory under %s",
                        tmp && *tmp ? tmp : "/tmp");
    r->dir[0] = '\0';
    rc_replay_free(r);
    return rc;
  }
  if (uv_loop_init(&r->loop) != 0) {
    rc_replay_free(r);
    return rc_err_set(err, RC_ENOMEM, "cannot create an event loop");
  }
  r->loop_on = 1;
  rc_actions_cfg_t acfg = {
      .rollback_window_ms = cfg->rollback_window_ms > 0 ? cfg->rollback_window_ms : 86400000,
      .cooldown_ms = cfg->cooldown_ms < 0 ? 0 : cfg->cooldown_ms > 0 ? cfg->cooldown_ms : 600000};
  int rc = rc_db_open(r->dir, &r->db, err);
  if (rc == 0) rc = rc_delivery_new(&r->loop, r->db, NULL, 0, &r->delivery, err);
  if (rc == 0) rc = rc_actions_new(&r->loop, r->db, r->delivery, &acfg, &r->actions, err);
  if (rc == 0)
    rc = rc_approvals_new(&r->loop, r->db, cfg->approval_envs, cfg->n_approval_envs,
                          &r->approvals, err);
  if (rc == 0) rc_actions_set_approvals(r->actions, r->approvals);
  rc_engine_cfg_t ecfg = {.compat = cfg->compat, .on_fire = rc_actions_fire,
                          .fire_ctx = r->actions};
  if (rc == 0) rc = rc_engine_new(&ecfg, rules, NULL, 0, &r->engine, err);
  if (rc == 0) {
    rc_store_cfg_t sc = {.max_series = cfg->max_series ? cfg->max_series : 1000000,
                         .max_ahead_ms = 0, /* the clock is simulated: nothing is "ahead" */
                         .cache_entries = 1u << 20,
                         .readers = 1, /* the engine reads through reader slots */
                         .window = RC_WINDOW_CFG_DEFAULT};
    if (cfg->retention_ms > 0) sc.window.retention_ms = cfg->retention_ms;
    rc = rc_store_new(&sc, rc_engine_index(r->engine), &r->store);
    if (rc != 0) rc_err_set(err, rc, "cannot create the series store: %s", rc_strerror(rc));
  }
  if (rc != 0) {
    rc_replay_free(r);
    return rc;
  }
  *out = r;
  return 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void rc_replay_free(rc_replay_t *r) {
  if (r == NULL) return;
  rc_engine_free(r->engine); /* before the store: it holds reader slots in it */
  rc_store_free(r->store);
  if (r->actions) rc_actions_close(r->actions);
  if (r->approvals) rc_approvals_close(r->approvals);
  if (r->delivery) rc_delivery_close(r->delivery, NULL, NULL);
  if (r->loop_on) {
    uv_run(&r->loop, UV_RUN_NOWAIT);
    uv_walk(&r->loop, close_walk, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(&r->loop);
  }
  rc_db_close(r->db);
  if (r->dir[0]) remove_dir(r->dir);
  for (uint32_t i = 0; r->names && i < r->nrules; i++) {
    rname_t *n = &r->names[i];
    free(n->service);
    free(n->environment);
    for (uint32_t k = 0; n->triggers && k < n->ntriggers; k++) free(n->triggers[k]);
    free(n->triggers);
    free(n->last);
  }
  free(r->names);
  free(r->sels);
  free(r);
}

void rc_replay_set_callbacks(rc_replay_t *r, rc_replay_transition_cb on_transition,
                             rc_replay_rollback_cb on_rollback, void *ctx) {
  r->on_transition = on_transition;
  r->on_rollback = on_rollback;
  r->ctx = ctx;
}

int rc_replay_deploy(rc_replay_t *r, const char *json, size_t len, int64_t at_ms,
                     rc_err_t *err) {
  int64_t id = 0;
  int rc = rc_deploys_record_json(r->db, json, len, at_ms, "ripcord:replay", NULL, &id, err);
  if (rc != 0) return rc;
  rc_engine_refresh_deploys(r->engine, rc_deploys_start_of, r->db);
  return 0;
}

int rc_replay_apply(rc_replay_t *r, const rc_batch_t *b, rc_err_t *err) {
  int rc = rc_store_apply(r->store, b);
  if (rc != 0) return rc_err_set(err, rc, "store: %s", rc_strerror(rc));
  return 0;
}

/* Rollback events recorded since the last call, oldest first. */
static int report_rollbacks(rc_replay_t *r, rc_err_t *err) {
  sqlite3 *h = rc_db_handle(r->db);
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(h,
                         "SELECT id, created_at, service, environment, trigger, status,"
                         " coalesce(from_version, ''), coalesce(to_version, ''), value,"
                         " coalesce(json_extract(payload, '$.reason'), '')"
                         " FROM rollback_events WHERE id > ?1 ORDER BY id",
                         -1, &st, NULL) != SQLITE_OK)
    return rc_err_set(err, RC_EIO, "reading rollback events: %s", sqlite3_errmsg(h));
  sqlite3_bind_int64(st, 1, r->last_event_id);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    r->last_event_id = sqlite3_column_int64(st, 0);
    rc_replay_rollback_t ev = {
        .at_ms = sqlite3_column_int64(st, 1),
        .service = (const char *)sqlite3_column_text(st, 2),
        .environment = (const char *)sqlite3_column_text(st, 3),
        .trigger_name = (const char *)sqlite3_column_text(st, 4),
        .outcome = (const char *)sqlite3_column_text(st, 5),
        .from_version = (const char *)sqlite3_column_text(st, 6),
        .to_version = (const char *)sqlite3_column_text(st, 7),
        .value = sqlite3_column_double(st, 8),
        .reason = (const char *)sqlite3_column_text(st, 9)};
    if (r->on_rollback) r->on_rollback(r->ctx, &ev);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return rc_err_set(err, RC_EIO, "reading rollback events: %s",
                                           sqlite3_errmsg(h));
  return 0;
}

int rc_replay_eval(rc_replay_t *r, int64_t now_ms, rc_err_t *err) {
  int rc = rc_engine_eval_once(r->engine, &r->store, 1, now_ms);
  if (rc != 0) return rc_err_set(err, rc, "evaluation: %s", rc_strerror(rc));
  for (uint32_t i = 0; i < r->nrules; i++) {
    rname_t *n = &r->names[i];
    for (uint32_t k = 0; k < n->ntriggers; k++) {
      rc_trigger_status_t st;
      if (rc_engine_status(r->engine, i, k, &st) != 0) continue;
      if (st.state == n->last[k]) continue;
      rc_replay_transition_t t = {.at_ms = now_ms, .rule = i, .trigger = k,
                                  .service = n->service, .environment = n->environment,
                                  .trigger_name = n->triggers[k], .from = n->last[k],
                                  .to = st.state, .has_value = st.has_value,
                                  .value = st.value};
      n->last[k] = st.state;
      if (r->on_transition) r->on_transition(r->ctx, &t);
    }
  }
  /* The engine handed firings to the actions through their async handle: let the loop run
   * them (the decision and the event row happen on this thread, now). */
  uv_run(&r->loop, UV_RUN_NOWAIT);
  return report_rollbacks(r, err);
}

int rc_replay_status(rc_replay_t *r, uint32_t rule, uint32_t trigger, rc_trigger_status_t *out) {
  return rc_engine_status(r->engine, rule, trigger, out);
}

uint32_t rc_replay_nrules(const rc_replay_t *r) { return r->nrules; }
uint32_t rc_replay_ntriggers(const rc_replay_t *r, uint32_t rule) {
  return rule < r->nrules ? r->names[rule].ntriggers : 0;
}
const char *rc_replay_service(const rc_replay_t *r, uint32_t rule) {
  return rule < r->nrules ? r->names[rule].service : "";
}
const char *rc_replay_environment(const rc_replay_t *r, uint32_t rule) {
  return rule < r->nrules ? r->names[rule].environment : "";
}
const char *rc_replay_trigger_name(const rc_replay_t *r, uint32_t rule, uint32_t trigger) {
  return rule < r->nrules && trigger < r->names[rule].ntriggers ? r->names[rule].triggers[trigger]
                                                                 : "";
}

void rc_replay_selectors(const rc_replay_t *r, const rc_selector_t *const **out, uint32_t *n) {
  *out = (const rc_selector_t *const *)r->sels;
  *n = r->nsels;
}

void rc_replay_store_stats(const rc_replay_t *r, rc_store_stats_t *out) {
  rc_store_stats(r->store, out);
}

/* path relative to the directory of base (unless absolute, or base is NULL). */
static void rel_path(const char *base, const char *path, char *out, size_t cap) {
  const char *slash = base ? strrchr(base, '/') : NULL;
  if (path[0] == '/' || slash == NULL) snprintf(out, cap, "%s", path);
  else snprintf(out, cap, "%.*s/%s", (int)(slash - base), base, path);
}

int rc_replay_load_rules(const char *base, const char *config_file, const char *const *files,
                         uint32_t nfiles, rc_config_t *cfg, rc_ruleset_t *set, rc_diags_t *d,
                         rc_err_t *err) {
  rc_rules_cfg_t rcfg = {0};
  int have_cfg = 0;
  if (config_file != NULL) {
    char cp[4096];
    rel_path(base, config_file, cp, sizeof(cp));
    if (rc_config_load(cp, cfg, err) != 0) return RC_EPARSE;
    have_cfg = 1;
    if (rc_config_rules(cfg, &rcfg, err) != 0) return RC_EPARSE;
  }
  int rc = 0;
  for (uint32_t i = 0; rc == 0 && i < nfiles; i++) {
    char pat[4096];
    rel_path(base, files[i], pat, sizeof(pat));
    glob_t gl;
    memset(&gl, 0, sizeof(gl));
    /* GLOB_NOCHECK: a name that matches nothing is loaded as given, and its loader says the
     * file cannot be read. */
    if (glob(pat, GLOB_NOCHECK, NULL, &gl) != 0) {
      rc = rc_err_set(err, RC_EIO, "rule files: cannot expand %s", pat);
      break;
    }
    for (size_t k = 0; k < gl.gl_pathc; k++)
      if (rc_rules_load_file(gl.gl_pathv[k], have_cfg ? &rcfg : NULL, set, d) == RC_ENOMEM)
        rc = rc_err_set(err, RC_ENOMEM, "out of memory");
    globfree(&gl);
  }
  if (rc == 0 && d->errors) rc = rc_err_set(err, RC_EPARSE, "the rule files have errors");
  return rc;
}
