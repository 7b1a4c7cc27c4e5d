/* main.c: ripcord's entry point — parse the command line (or hand `ripcord check` to
 * check.c), build the objects in dependency order (config, storage directory, rule files and
 * the rule engine with its selector index, ingest workers, evaluator, HTTP server), run the
 * libuv loop, and tear down in reverse order on SIGTERM/SIGINT: stop accepting, finish
 * requests in flight, let the workers drain, stop the evaluator, exit 0. A second signal
 * exits at once with status 1.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <uv.h>

#include "api.h"
#include "check.h"
#include "actions.h"
#include "apicli.h"
#include "approvals.h"
#include "audit.h"
#include "auth.h"
#include "db.h"
#include "delivery.h"
#include "deploys.h"
#include "prevcli.h"
#include "cli.h"
#include "config.h"
#include "engine.h"
#include "http.h"
#include "ingest.h"
#include "log.h"
#include "rules.h"
#include "ruletest.h"
#include "backtest.h"
#include "secrets.h"
#include "selector.h"
#include "selindex.h"
#include "stats.h"
#include "store.h"

#define MAX_WATCHED_DIRS 16

typedef struct daemon {
  uv_loop_t *loop;
  uv_signal_t sigterm, sigint, sighup;
  const rc_options_t *opts;
  /* Rule reload on a change in a rule file's directory: watchers and a debounce timer. */
  uv_fs_event_t watch[MAX_WATCHED_DIRS];
  uint32_t nwatch;
  uv_timer_t debounce;
  int debounce_on;
  rc_http_server_t http;
  rc_ingest_t ingest;
  rc_api_t api;
  int shutting_down;
  rc_selector_t **selectors; /* from the config's select: list; owned */
  size_t nselectors;
  rc_engine_t *engine;       /* owned: the rules, their selector index, the evaluator */
  rc_delivery_t *delivery;   /* owned: the outbox's courier (loop handles) */
  rc_actions_t *actions;     /* owned: firings -> rollback events (loop handle) */
  rc_approvals_t *approvals; /* owned: the approval gate (loop timer) */
  rc_auth_t *auth;           /* owned: identities (token hashes), immutable while serving */
  rc_audit_t *audit;         /* owned: the audit trail over db (closed before it) */
  rc_db_t *db;               /* owned: the embedded store (deploy registry) */
} daemon_t;

/* Parses the config's select: entries (series the store keeps besides the rules'). Every bad
 * selector is reported (file:line:col) before giving up, as a config check should. */
static int build_selection(daemon_t *d, const rc_config_t *cfg) {
  int bad = 0;
  d->selectors = calloc(cfg->n_select ? cfg->n_select : 1, sizeof(*d->selectors));
  if (d->selectors == NULL) return RC_ENOMEM;
  for (size_t i = 0; i < cfg->n_select; i++) {
    rc_err_t err = {0};
    rc_selector_t *sel = NULL;
    if (rc_selector_parse(cfg->select[i], strlen(cfg->select[i]), 0, &sel, &err) != 0) {
      /* The selector's own position is relative to the string; add the entry's. */
      rc_log(RC_LOG_ERROR, "bad selector in select:", "at=%s:%d:%d err=\"%s\"",
             cfg->path ? cfg->path : "-", cfg->select_line[i],
             cfg->select_col[i] + (err.col > 0 ? err.col - 1 : 0), err.msg);
      bad++;
      continue;
    }
    d->selectors[d->nselectors++] = sel;
  }
  return bad ? RC_EPARSE : 0;
}

/* Frees what the daemon owns besides the loop's handles: the engine, the selectors, the store. */
static void free_owned(daemon_t *d) {
  rc_auth_free(d->auth);
  d->auth = NULL;
  rc_engine_free(d->engine); /* its index borrows the selectors */
  d->engine = NULL;
  rc_audit_close(d->audit);
  d->audit = NULL;
  rc_db_close(d->db);
  d->db = NULL;
  d->engine = NULL;
  for (size_t i = 0; i < d->nselectors; i++) rc_selector_free(d->selectors[i]);
  free(d->selectors);
}

/* Loads the config's rule_files and the --rules.file files. Every diagnostic is logged with
 * file:line:col; any error refuses to start, as Prometheus does with a bad rule file, or on a
 * reload keeps the previous rules. *why (may be NULL) gets a one-line reason. */
/* Lowercase hex SHA-256 of a file's bytes, for the audit trail (which rule text was in
 * force); "unreadable" when it cannot be read. */
static void hash_file(const char *path, char out[65]) {
  snprintf(out, 65, "unreadable");
  FILE *f = fopen(path, "rb");
  if (f == NULL) return;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char buf[8192], md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  size_t n;
  int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
  while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0) ok = EVP_DigestUpdate(ctx, buf, n) == 1;
  ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
  EVP_MD_CTX_free(ctx);
  fclose(f);
  if (!ok) return;
  for (unsigned int i = 0; i < mdlen && i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int load_rules(const rc_options_t *o, const rc_config_t *cfg, rc_ruleset_t *set,
                      char *why, size_t why_cap, json_t *files /* may be NULL */) {
  rc_err_t err = {0};
  char **paths = NULL;
  size_t np = 0;
  if (why) snprintf(why, why_cap, "ok");
  if (rc_config_rule_paths(cfg, &paths, &np, &err) != 0) {
    rc_log(RC_LOG_ERROR, "cannot expand rule_files", "err=\"%s\"", err.msg);
    if (why) snprintf(why, why_cap, "%s", err.msg);
    return RC_EIO;
  }
  /* The config's rules: settings; --rules.environment-label wins over the config's. */
  rc_rules_cfg_t rcfg;
  if (rc_config_rules(cfg, &rcfg, &err) != 0) {
    rc_log(RC_LOG_ERROR, "bad rules: settings", "err=\"%s\"", err.msg);
    if (why) snprintf(why, why_cap, "%s", err.msg);
    rc_config_free_paths(paths, np);
    return RC_EPARSE;
  }
  if (o->environment_label != NULL) rcfg.environment_label = o->environment_label;
  rc_diags_t d = {0};
  int failed = 0;
  for (size_t i = 0; i < np + o->n_rule_files; i++) {
    const char *path = i < np ? paths[i] : o->rule_files[i - np];
    if (files != NULL) {
      char hex[65];
      hash_file(path, hex);
      json_object_set_new(files, path, json_string(hex));
    }
    int rc = rc_rules_load_file(path, &rcfg, set, &d);
    if (rc == RC_ENOMEM) failed = 1;
  }
  for (uint32_t i = 0; i < d.n; i++) {
    const rc_diag_t *x = &d.v[i];
    rc_log(x->level == RC_DIAG_ERROR ? RC_LOG_ERROR : RC_LOG_WARN,
           x->level == RC_DIAG_ERROR ? "rule file error" : "rule file warning",
           "at=%s:%d:%d msg=\"%s\"", x->file, x->line, x->col, x->msg);
  }
  if (d.errors) failed = 1;
  if (why && d.errors) {
    const rc_diag_t *x = &d.v[0];
    for (uint32_t i = 0; i < d.n; i++)
      if (d.v[i].level == RC_DIAG_ERROR) {
        x = &d.v[i];
        break;
      }
    snprintf(why, why_cap, "%u errors, first: %s:%d:%d: %s", d.errors, x->file, x->line, x->col,
             x->msg);
  }
  /* A rule may name a receiver the config lacks (the bundled example notifies Slack and
   * PagerDuty with none configured): it still guards, and says so now, not at 3 a.m. */
  for (uint32_t i = 0; i < set->n; i++) {
    const rc_rule_t *r = &set->rules[i];
    for (uint32_t j = 0; j < r->nnotify; j++) {
      const rc_notify_t *nt = &r->notify[j];
      int webhook = strcmp(nt->kind, "webhook") == 0, found = 0;
      for (size_t k = 0; k < cfg->n_receivers && !found; k++) {
        const rc_receiver_cfg_t *rv = &cfg->receivers[k];
        found = webhook ? strcmp(rv->name, nt->target) == 0
                        : strcmp(rv->type ? rv->type : "generic", nt->kind) == 0;
      }
      if (!found)
        rc_log(RC_LOG_WARN, "rule notifies a receiver the config does not have; it is skipped",
               "at=%s:%d:%d notify=%s target=\"%s\"", r->file, r->line, r->col, nt->kind,
               nt->target ? nt->target : "");
    }
  }
  uint32_t ntrig = 0;
  for (uint32_t i = 0; i < set->n; i++) ntrig += set->rules[i].ntriggers;
  rc_log(failed ? RC_LOG_ERROR : RC_LOG_INFO, failed ? "rule files have errors" : "rules loaded",
         "files=%zu rules=%u triggers=%u errors=%u warnings=%u", np + o->n_rule_files, set->n,
         ntrig, d.errors, d.warnings);
  rc_diags_free(&d);
  rc_config_free_paths(paths, np);
  return failed ? RC_EPARSE : 0;
}

static uint64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* mkdir -p, for --storage.path. */
static int make_dirs(const char *path, rc_err_t *err) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
    return rc_err_set(err, RC_EINVAL, "--storage.path is too long");
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
      return rc_err_set(err, RC_EIO, "cannot create %s: %s", tmp, strerror(errno));
    *p = '/';
  }
  if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
    return rc_err_set(err, RC_EIO, "cannot create %s: %s", tmp, strerror(errno));
  struct stat st;
  if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
    return rc_err_set(err, RC_EIO, "--storage.path %s is not a directory", tmp);
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Rule reload: SIGHUP, POST /-/reload, a change in a rule file's directory
 *----------------------------------------------------------------------------------------*/

static void gate_begin(void *ctx) { rc_workers_read_begin(ctx); }
static void gate_end(void *ctx) { rc_workers_read_end(ctx); }


static void on_deployed(void *ctx) {
  daemon_t *d = ctx;
  rc_engine_refresh_deploys(d->engine, rc_deploys_start_of, d->db);
}

static int swap_index(void *ctx, const rc_selindex_t *idx) {
  return rc_workers_swap_index(ctx, idx);
}

/* Loads everything again; the new set replaces the old only if it loaded without error. */
/* The audit hooks of actions, approvals and delivery: one append inside the caller's
 * transaction. A failed append is logged and counted, never allowed to stop a rollback. */
static void audit_hook(void *ctx, int64_t at_ms, const char *actor, const char *action,
                       const char *subject, const json_t *detail) {
  rc_err_t err = {0};
  if (ctx != NULL && rc_audit_append(ctx, at_ms, actor, action, subject, detail, &err) != 0)
    rc_log(RC_LOG_ERROR, "cannot append to the audit trail", "action=%s err=\"%s\"", action,
           err.msg);
}

static void audit_reload(daemon_t *d, const char *actor, const char *action, json_t *files,
                         const char *why) {
  json_t *detail = json_pack("{s:O,s:s?}", "files", files, "error", why);
  audit_hook(d->audit, (int64_t)wall_ms(), actor, action, "rules", detail);
  json_decref(detail);
}

static int reload_rules(daemon_t *d, const char *actor, char *why, size_t cap) {
  const rc_options_t *o = d->opts;
  rc_config_t cfg = {0};
  rc_err_t err = {0};
  json_t *files = json_object();
  if (o->config_file != NULL && rc_config_load(o->config_file, &cfg, &err) != 0) {
    rc_log(RC_LOG_ERROR, "reload: cannot load configuration; previous rules stay",
           "err=\"%s\"", err.msg);
    snprintf(why, cap, "configuration: %s", err.msg);
    rc_engine_reload_failed(d->engine);
    audit_reload(d, actor, "rules.reload_failed", files, why);
    json_decref(files);
    return RC_EPARSE;
  }
  rc_ruleset_t rules = {0};
  int rc = load_rules(o, &cfg, &rules, why, cap, files);
  rc_config_free(&cfg);
  if (rc != 0) {
    rc_ruleset_free(&rules);
    rc_engine_reload_failed(d->engine);
    rc_log(RC_LOG_ERROR, "reload failed: previous rules stay in force", "err=\"%s\"", why);
    audit_reload(d, actor, "rules.reload_failed", files, why);
    json_decref(files);
    return rc;
  }
  /* The config's select: list is read at start only (its selectors are in use). */
  rc = rc_engine_reload(d->engine, &rules, d->selectors, (uint32_t)d->nselectors, swap_index,
                        &d->ingest.workers, &err);
  rc_ruleset_free(&rules);
  if (rc != 0) snprintf(why, cap, "%s", err.msg);
  else rc_engine_refresh_deploys(d->engine, rc_deploys_start_of, d->db);
  audit_reload(d, actor, rc == 0 ? "rules.reloaded" : "rules.reload_failed", files,
               rc == 0 ? NULL : why);
  json_decref(files);
  return rc;
}

static int api_reload(void *ctx, const char *actor, char *why, size_t cap) {
  return reload_rules(ctx, actor ? actor : "anonymous", why, cap);
}

static void on_sighup(uv_signal_t *h, int signum) {
  (void)signum;
  char why[300];
  rc_log(RC_LOG_INFO, "SIGHUP: reloading rules", NULL);
  reload_rules(h->data, "signal:SIGHUP", why, sizeof(why));
}

static void on_debounce(uv_timer_t *t) {
  char why[300];
  rc_log(RC_LOG_INFO, "rule files changed: reloading", NULL);
  reload_rules(t->data, "ripcord:file-watch", why, sizeof(why));
}

static void on_dir_change(uv_fs_event_t *h, const char *file, int events, int status) {
  daemon_t *d = h->data;
  (void)events;
  if (status != 0 || d->debounce_on == 0) return;
  /* Editors write a file in several steps (temp file, rename): wait for quiet. Only YAML
   * files count, so our own logs or a data directory next to the rules do not. */
  if (file != NULL) {
    size_t n = strlen(file);
    if (!(n > 4 && (strcmp(file + n - 4, ".yml") == 0 || strcmp(file + n - 5, ".yaml") == 0)))
      return;
  }
  uv_timer_start(&d->debounce, on_debounce, 300, 0);
}

/* Watches the directory of every rule file, and of the config file. */
static void watch_rule_dirs(daemon_t *d, const rc_config_t *cfg) {
  char **paths = NULL;
  size_t np = 0;
  rc_err_t err = {0};
  uv_timer_init(d->loop, &d->debounce);
  d->debounce.data = d;
  d->debounce_on = 1;
  if (rc_config_rule_paths(cfg, &paths, &np, &err) != 0) np = 0;
  size_t total = np + d->opts->n_rule_files + (cfg->path ? 1 : 0);
  char seen[MAX_WATCHED_DIRS][4096];
  for (size_t i = 0; i < total && d->nwatch < MAX_WATCHED_DIRS; i++) {
    const char *p = i < np ? paths[i] : i < np + d->opts->n_rule_files
                                            ? d->opts->rule_files[i - np] : cfg->path;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", p);
    char *slash = strrchr(tmp, '/');
    if (slash == NULL) snprintf(tmp, sizeof(tmp), ".");
    else if (slash == tmp) tmp[1] = 0;
    else *slash = 0;
    int dup = 0;
    for (uint32_t k = 0; k < d->nwatch; k++) dup |= strcmp(seen[k], tmp) == 0;
    if (dup) continue;
    uv_fs_event_t *w = &d->watch[d->nwatch];
    uv_fs_event_init(d->loop, w);
    w->data = d;
    if (uv_fs_event_start(w, on_dir_change, tmp, 0) != 0) {
      uv_close((uv_handle_t *)w, NULL);
      continue;
    }
    snprintf(seen[d->nwatch], sizeof(seen[0]), "%s", tmp);
    d->nwatch++;
  }
  rc_config_free_paths(paths, np);
}

static void close_reload_handles(daemon_t *d) {
  if (!d->debounce_on) return;
  d->debounce_on = 0;
  for (uint32_t i = 0; i < d->nwatch; i++) uv_close((uv_handle_t *)&d->watch[i], NULL);
  uv_close((uv_handle_t *)&d->debounce, NULL);
  uv_close((uv_handle_t *)&d->sighup, NULL);
}

static void on_drained(rc_http_server_t *srv) {
  daemon_t *d = RC_CONTAINER_OF(srv, daemon_t, http);
  rc_log(RC_LOG_INFO, "http server drained; finishing the ingest queue", "queued=%llu",
         (unsigned long long)rc_stat_get(&rc_stats.queue_depth));
  rc_ingest_stop(&d->ingest);
  /* The evaluator before the actions it hands firings to; undelivered rows stay in the
   * outbox for the next start. */
  rc_engine_stop(d->engine);
  rc_actions_close(d->actions);
  d->actions = NULL;
  rc_approvals_close(d->approvals);
  d->approvals = NULL;
  rc_delivery_close(d->delivery, NULL, NULL);
  d->delivery = NULL;
  uv_close((uv_handle_t *)&d->sigterm, NULL);
  uv_close((uv_handle_t *)&d->sigint, NULL);
  close_reload_handles(d);
}

static void on_signal(uv_signal_t *h, int signum) {
  daemon_t *d = h->data;
  if (d->shutting_down) {
    rc_log(RC_LOG_WARN, "second signal: exiting now", "signal=%s", strsignal(signum));
    exit(1);
  }
  d->shutting_down = 1;
  d->api.ready = 0;
  rc_stat_set(&rc_stats.ready, 0);
  rc_log(RC_LOG_INFO, "shutting down", "signal=%s connections=%u", strsignal(signum),
         d->http.nconns);
  rc_http_server_shutdown(&d->http, on_drained);
}

/* Literal secrets in the config file, each logged at its line with the message `ripcord
 * check` gives. Returns how many (0 also when the file cannot be read: rc_config_load says
 * so next). rc_config_load refuses the same file on its own; this is here so that the log
 * lists every finding, not only the first. Rule files need nothing here: their loader
 * reports each finding as a rule file error. */
static int config_secrets(const char *path) {
  rc_secrets_t *s;
  rc_secret_findings_t f = {0};
  int binary = 0;
  if (rc_secrets_new(&s, NULL) != 0) return 0;
  if (rc_secrets_scan_file(s, path, &f, &binary, NULL) != 0) rc_secret_findings_free(&f);
  rc_secrets_free(s);
  for (size_t i = 0; i < f.n; i++) {
    char msg[300];
    rc_secrets_message(&f.v[i], msg, sizeof(msg));
    rc_log(RC_LOG_ERROR, "configuration error", "at=%s:%d:%d msg=\"%s\"", path, f.v[i].line,
           f.v[i].col, msg);
  }
  int n = (int)f.n;
  rc_secret_findings_free(&f);
  return n;
}

static int serve(const rc_options_t *o) {
  rc_err_t err = {0};
  daemon_t d;
  memset(&d, 0, sizeof(d));
  rc_log_set_level(o->log_level);
  rc_stats_init(wall_ms());
  signal(SIGPIPE, SIG_IGN);

  rc_config_t cfg = {0};
  if (o->config_file != NULL) {
    if (config_secrets(o->config_file) > 0) {
      rc_log(RC_LOG_ERROR, "refusing to start: the configuration holds literal secrets",
             "file=%s", o->config_file);
      return 1;
    }
    if (rc_config_load(o->config_file, &cfg, &err) != 0) {
      rc_log(RC_LOG_ERROR, "cannot load configuration", "err=\"%s\"", err.msg);
      return 1;
    }
    int n = rc_config_count_rule_files(&cfg, &err);
    if (n < 0) {
      rc_log(RC_LOG_ERROR, "cannot expand rule_files", "err=\"%s\"", err.msg);
      rc_config_free(&cfg);
      return 1;
    }
    rc_log(RC_LOG_INFO, "configuration loaded", "file=%s rule_files=%d", o->config_file, n);
  }
  /* Identities before anything listens or writes: a bad token source refuses to start. */
  if (rc_auth_new(cfg.identities, cfg.n_identities, &d.auth, &err) != 0) {
    rc_log(RC_LOG_ERROR, "cannot load identities", "err=\"%s\"", err.msg);
    rc_config_free(&cfg);
    return 1;
  }
  if (rc_auth_count(d.auth) == 0) {
    if (!rc_auth_addr_is_loopback(o->listen_address) && !o->web_insecure) {
      rc_log(RC_LOG_ERROR, "refusing to listen beyond loopback without authentication",
             "address=%s hint=\"configure identities: with tokens, or pass --web.insecure\"",
             o->listen_address);
      free_owned(&d);
      rc_config_free(&cfg);
      return 1;
    }
    rc_log(RC_LOG_WARN, "no identities configured: every request is allowed, approvals are off",
           "address=%s", o->listen_address);
  } else {
    rc_log(RC_LOG_INFO, "identities loaded", "count=%zu", rc_auth_count(d.auth));
  }
  if (make_dirs(o->storage_path, &err) != 0) {
    rc_log(RC_LOG_ERROR, "storage path unusable", "err=\"%s\"", err.msg);
    free_owned(&d);
    rc_config_free(&cfg);
    return 1;
  }
  if (rc_db_open(o->storage_path, &d.db, &err) != 0) {
    rc_log(RC_LOG_ERROR, "cannot open the embedded store", "err=\"%s\"", err.msg);
    free_owned(&d);
    rc_config_free(&cfg);
    return 1;
  }
  rc_log(RC_LOG_INFO, "embedded store ready", "path=%s/ripcord.db schema=%d", o->storage_path,
         rc_db_version(d.db));
  {
    char head[4200];
    snprintf(head, sizeof(head), "%s/audit.head", o->storage_path);
    if (rc_audit_open(d.db, head, &d.audit, &err) != 0) {
      rc_log(RC_LOG_ERROR, "cannot open the audit trail", "err=\"%s\"", err.msg);
      free_owned(&d);
      rc_config_free(&cfg);
      return 1;
    }
    if (rc_audit_problem(d.audit) != NULL)
      rc_log(RC_LOG_ERROR, "the audit trail's anchor does not match: run ripcord audit verify",
             "problem=\"%s\"", rc_audit_problem(d.audit));
  }

  rc_ruleset_t rules = {0};
  d.loop = uv_default_loop();
  /* Actions before the engine: firing hands events to them. */
  rc_actions_cfg_t acfg = {.rollback_window_ms = (int64_t)o->rollback_window_ms,
                           .cooldown_ms = (int64_t)o->rollback_cooldown_ms};
  if (rc_delivery_new(d.loop, d.db, cfg.receivers, cfg.n_receivers, &d.delivery, &err) != 0 ||
      rc_actions_new(d.loop, d.db, d.delivery, &acfg, &d.actions, &err) != 0 ||
      rc_approvals_new(d.loop, d.db, cfg.approvals, cfg.n_approvals, &d.approvals, &err) != 0) {
    rc_log(RC_LOG_ERROR, "cannot set up rollback actions", "err=\"%s\"", err.msg);
    free_owned(&d);
    rc_config_free(&cfg);
    return 1;
  }
  rc_actions_set_approvals(d.actions, d.approvals);
  rc_actions_set_audit(d.actions, audit_hook, d.audit);
  rc_approvals_set_audit(d.approvals, audit_hook, d.audit);
  rc_delivery_set_audit(d.delivery, audit_hook, d.audit);
  rc_approvals_start(d.approvals);
  rc_engine_cfg_t ecfg = {.compat = (rc_compat_t)o->compat,
                          .interval_ms = (int64_t)o->rules_interval_ms,
                          .on_fire = rc_actions_fire, .fire_ctx = d.actions};
  d.opts = o;
  json_t *start_files = json_object();
  if (build_selection(&d, &cfg) != 0 || load_rules(o, &cfg, &rules, NULL, 0, start_files) != 0 ||
      rc_engine_new(&ecfg, &rules, d.selectors, (uint32_t)d.nselectors, &d.engine, &err) != 0) {
    rc_log(RC_LOG_ERROR, "cannot set up the rules and the series store",
           err.msg[0] ? "err=\"%s\"" : NULL, err.msg);
    json_decref(start_files);
    rc_ruleset_free(&rules);
    free_owned(&d);
    rc_config_free(&cfg);
    return 1;
  }

  /* Which rule text is in force from now on. */
  audit_reload(&d, "ripcord:start", "rules.loaded", start_files, NULL);
  json_decref(start_files);

  rc_ingest_config_t icfg = o->ingest;
  icfg.applied_cb = rc_engine_applied;
  icfg.applied_ctx = d.engine;
  int irc = rc_ingest_init(&d.ingest, &icfg, &o->store, rc_engine_index(d.engine), d.loop, &err);
  if (irc == 0) irc = rc_ingest_start(&d.ingest, &err);
  if (irc == 0) {
    rc_store_t *shards[RC_WORKERS_MAX];
    uint32_t ns = rc_workers_count(&d.ingest.workers);
    for (uint32_t i = 0; i < ns; i++) shards[i] = rc_workers_store(&d.ingest.workers, i);
    rc_engine_set_gate(d.engine, gate_begin, gate_end, &d.ingest.workers);
    rc_engine_refresh_deploys(d.engine, rc_deploys_start_of, d.db);
    irc = rc_engine_start(d.engine, shards, ns, &err);
  }
  if (irc != 0) {
    rc_log(RC_LOG_ERROR, "cannot start ingest", "err=\"%s\"", err.msg);
    rc_ingest_close(&d.ingest);
    free_owned(&d);
    rc_config_free(&cfg);
    return 1;
  }
  rc_log(RC_LOG_INFO, "series store ready",
         "selectors=%zu max_series=%u retention_ms=%lld workers=%u inline=%d", d.nselectors,
         o->store.max_series, (long long)o->store.window.retention_ms, d.ingest.cfg.workers,
         d.ingest.workers.cfg.inline_mode);
  d.api.ingest = &d.ingest;
  d.api.engine = d.engine;
  d.api.db = d.db;
  d.api.actions = d.actions;
  d.api.approvals = d.approvals;
  d.api.auth = d.auth;
  d.api.audit = d.audit;
  d.api.deployed = on_deployed;
  d.api.deployed_ctx = &d;
  d.api.delivery = d.delivery;
  if (rc_http_server_init(&d.http, d.loop, &o->http, rc_api_handle, &d.api, &err) != 0 ||
      rc_http_server_listen(&d.http, o->listen_address, &err) != 0) {
    rc_log(RC_LOG_ERROR, "cannot start the HTTP server", "err=\"%s\"", err.msg);
    rc_engine_stop(d.engine);
    rc_ingest_close(&d.ingest);
    free_owned(&d);
    rc_config_free(&cfg);
    return 1;
  }
  uv_signal_init(d.loop, &d.sigterm);
  uv_signal_init(d.loop, &d.sigint);
  d.sigterm.data = d.sigint.data = &d;
  uv_signal_start(&d.sigterm, on_signal, SIGTERM);
  uv_signal_start(&d.sigint, on_signal, SIGINT);
  uv_signal_init(d.loop, &d.sighup);
  d.sighup.data = &d;
  uv_signal_start(&d.sighup, on_sighup, SIGHUP);
  watch_rule_dirs(&d, &cfg);
  d.api.reload = api_reload;
  d.api.reload_ctx = &d;

  d.api.ready = 1;
  rc_stat_set(&rc_stats.ready, 1);
  rc_log(RC_LOG_INFO, "ripcord listening", "version=%s address=%s port=%d storage=%s",
         RC_VERSION, o->listen_address, rc_http_server_port(&d.http), o->storage_path);
  uv_run(d.loop, UV_RUN_DEFAULT);

  rc_engine_stop(d.engine);   /* before the stores go: it reads them */
  rc_ingest_close(&d.ingest); /* the workers are joined: the store has no user left */
  free_owned(&d);
  rc_config_free(&cfg);
  int rc = uv_loop_close(d.loop);
  if (rc != 0) rc_log(RC_LOG_WARN, "loop closed with handles open", "err=%s", uv_strerror(rc));
  rc_log(RC_LOG_INFO, "ripcord stopped", "samples=%llu",
         (unsigned long long)rc_stat_get(&rc_stats.consumed_samples));
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "check") == 0) return rc_check_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "test") == 0) return rc_ruletest_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "backtest") == 0) return rc_backtest_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "previous-version") == 0)
    return rc_prevcli_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "audit") == 0) return rc_audit_cli_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "rollback") == 0)
    return rc_apicli_rollback_main(argc - 1, argv + 1);
  if (argc >= 2 && (strcmp(argv[1], "approve") == 0 || strcmp(argv[1], "reject") == 0))
    return rc_apicli_vote_main(argc - 1, argv + 1);
  if (argc >= 2 && strcmp(argv[1], "services") == 0)
    return rc_apicli_services_main(argc - 1, argv + 1);
  rc_options_t o;
  rc_err_t err = {0};
  if (rc_cli_parse(argc, argv, &o, &err) != 0) {
    fprintf(stderr, "ripcord: error: %s\n", err.msg);
    return 2;
  }
  switch (o.cmd) {
    case RC_CMD_HELP:
      rc_cli_usage(stdout);
      return 0;
    case RC_CMD_VERSION:
      printf("ripcord, version %s (libuv %s)\n", RC_VERSION, uv_version_string());
      return 0;
    case RC_CMD_SERVE:
      return serve(&o);
    default:
      return 2;
  }
}
