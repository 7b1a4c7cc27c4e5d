/* api.c: request routing and the small built-in endpoints; see api.h. */
#include "api.h"

#include <http_parser.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <uv.h>

#include "deploys.h"
#include "log.h"
#include "stats.h"
#include "ui.h"

static int path_is(const rc_http_request_t *req, const char *p) {
  size_t n = strlen(p);
  return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static int get_only(const rc_http_request_t *req, rc_http_response_t *res) {
  if (req->method == HTTP_GET || req->method == HTTP_HEAD) return 1;
  res->status = 405;
  rc_buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
  rc_buf_puts(&res->body, "method not allowed: use GET\n");
  return 0;
}

/* Store figures for /metrics, summed over the shards. Counters are safe from any thread.
 * Entries of one name are adjacent and differ by their label (HELP/TYPE once per name). */
static void render_store(rc_buf_t *o, rc_ingest_t *ing) {
  rc_store_stats_t st;
  if (ing == NULL || !ing->initialised) return;
  rc_workers_store_stats(&ing->workers, &st);
  static const struct { const char *name, *label, *type, *help; size_t off; } m[] = {
      {"ripcord_store_series", NULL, "gauge", "Series the store holds for rules.", offsetof(rc_store_stats_t, series)},
      {"ripcord_store_series_created_total", NULL, "counter", "Series added to the store.", offsetof(rc_store_stats_t, series_created)},
      {"ripcord_store_series_removed_total", NULL, "counter", "Series removed after their samples aged out.", offsetof(rc_store_stats_t, series_removed)},
      {"ripcord_store_series_refused_total", "reason=\"max_series\"", "counter", "New series refused, by reason: --storage.max-series reached, or --storage.max-memory's high-water mark.", offsetof(rc_store_stats_t, refused_series)},
      {"ripcord_store_series_refused_total", "reason=\"memory\"", NULL, NULL, offsetof(rc_store_stats_t, refused_series_memory)},
      {"ripcord_store_unselected_series_total", NULL, "counter", "Series entries no rule selector wants: counted and dropped.", offsetof(rc_store_stats_t, dropped_series)},
      {"ripcord_store_unselected_samples_total", NULL, "counter", "Samples of unselected series.", offsetof(rc_store_stats_t, dropped_samples)},
      {"ripcord_store_samples_appended_total", NULL, "counter", "Samples stored.", offsetof(rc_store_stats_t, appended)},
      {"ripcord_store_samples_refused_total", "reason=\"memory\"", "counter", "Samples of selected series not stored, by reason: memory (a refused new series, or a new chunk over --storage.max-memory's high-water mark).", offsetof(rc_store_stats_t, refused_samples_memory)},
      {"ripcord_store_samples_too_old_total", NULL, "counter", "Samples older than the out-of-order tolerance: dropped.", offsetof(rc_store_stats_t, too_old)},
      {"ripcord_store_samples_too_far_ahead_total", NULL, "counter", "Samples further ahead of the clock than --storage.max-ahead: dropped.", offsetof(rc_store_stats_t, too_far_ahead)},
      {"ripcord_store_samples_duplicate_total", NULL, "counter", "Samples repeated with the same timestamp and value: ignored.", offsetof(rc_store_stats_t, duplicates)},
      {"ripcord_store_samples_conflict_total", NULL, "counter", "Samples with a stored timestamp but another value: dropped.", offsetof(rc_store_stats_t, conflicts)},
      {"ripcord_store_histograms_appended_total", NULL, "counter", "Native histogram samples stored.", offsetof(rc_store_stats_t, hist_appended)},
      {"ripcord_store_histograms_refused_total", "reason=\"memory\"", "counter", "Native histogram samples of selected series not stored, by reason (as ripcord_store_samples_refused_total).", offsetof(rc_store_stats_t, refused_hist_memory)},
      {"ripcord_store_histograms_invalid_total", NULL, "counter", "Native histogram samples the store refused (bucket layout past its limits).", offsetof(rc_store_stats_t, hist_invalid)},
      {"ripcord_store_unselected_histograms_total", NULL, "counter", "Native histogram samples of unselected series.", offsetof(rc_store_stats_t, dropped_histograms)},
      {"ripcord_storage_memory_bytes", NULL, "gauge", "Memory the series store holds now, accounted block by block (usable size of every allocation: series, windows, table, decision cache).", offsetof(rc_store_stats_t, bytes)},
      {"ripcord_storage_memory_limit_bytes", NULL, "gauge", "--storage.max-memory (0: unbounded).", offsetof(rc_store_stats_t, memory_limit)},
  };
  for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
    uint64_t v;
    memcpy(&v, (const char *)&st + m[i].off, sizeof(v));
    if (m[i].help != NULL)
      rc_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", m[i].name, m[i].help, m[i].name, m[i].type);
    if (m[i].label != NULL)
      rc_buf_printf(o, "%s{%s} %llu\n", m[i].name, m[i].label, (unsigned long long)v);
    else
      rc_buf_printf(o, "%s %llu\n", m[i].name, (unsigned long long)v);
  }
}

/* 401/403 before any handler: JSON under /api/v1/ (except remote write, whose clients log
 * text), text elsewhere; 401 carries the challenge. Repeated failures are logged at most
 * every 10 s per kind (a Prometheus with a stale token retries forever). */
static void deny(const rc_http_request_t *req, rc_http_response_t *res, int status,
                 const char *why) {
  static rc_complaint_t c401, c403;
  res->status = status;
  if (status == 401) rc_buf_printf(&res->headers, "WWW-Authenticate: %s\r\n", RC_AUTH_CHALLENGE);
  int json = req->path_len > 8 && memcmp(req->path, "/api/v1/", 8) == 0 &&
             !path_is(req, "/api/v1/write");
  if (json) {
    res->content_type = "application/json";
    json_t *doc = json_pack("{s:s,s:s,s:s}", "status", "error", "errorType",
                            status == 401 ? "unauthorized" : "forbidden", "error", why);
    char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    rc_buf_puts(&res->body, s ? s : "{\"status\":\"error\"}");
    rc_buf_puts(&res->body, "\n");
    free(s);
    json_decref(doc);
  } else {
    rc_buf_printf(&res->body, "%s: %s\n", status == 401 ? "unauthorized" : "forbidden", why);
  }
  char q[200], p[120];
  rc_log_complain(status == 401 ? &c401 : &c403, uv_hrtime() / 1000000, 10000, RC_LOG_WARN,
                  status == 401 ? "request not authenticated" : "request not allowed",
                  "path=%s reason=%s", rc_log_quote(p, sizeof(p), req->path, req->path_len),
                  rc_log_quote(q, sizeof(q), why, strlen(why)));
}

/* GET /api/v1/whoami: the identity the request authenticated as — what the status page needs
 * to offer approve/reject only to those who may, and what `curl -H "Authorization: ..."`
 * tells someone unsure which token they hold. open: no identities are configured (every
 * request is allowed, votes are refused: a gate needs to know who votes). */
static void whoami(const rc_api_t *api, const rc_identity_t *who, rc_http_response_t *res) {
  int open = api->auth == NULL || rc_auth_count(api->auth) == 0;
  json_t *roles = json_array(), *groups = json_array();
  for (int i = 0; who != NULL && i < RC_CONFIG_NROLES; i++)
    if (who->roles & (1u << i)) json_array_append_new(roles, json_string(rc_config_roles[i]));
  for (size_t i = 0; who != NULL && i < who->ngroups; i++)
    json_array_append_new(groups, json_string(who->groups[i]));
  json_t *doc = json_pack("{s:s,s:{s:s?,s:o,s:o,s:b}}", "status", "success", "data", "name",
                          who ? who->name : NULL, "roles", roles, "groups", groups, "open", open);
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  if (s == NULL) {
    res->status = 500;
    rc_buf_puts(&res->body, "out of memory\n");
    return;
  }
  res->status = 200;
  res->content_type = "application/json";
  rc_buf_puts(&res->body, s);
  rc_buf_puts(&res->body, "\n");
  free(s);
}

void rc_api_handle(void *ctx, const rc_http_request_t *req, rc_http_response_t *res) {
  rc_api_t *api = ctx;
  rc_handler_t h = RC_HANDLER_OTHER;
  const rc_identity_t *who = NULL;
  if (api->auth != NULL && rc_auth_count(api->auth) > 0 &&
      rc_auth_required(req->method, req->path, req->path_len) != 0) {
    char why[300];
    int st = rc_auth_check(api->auth, req, &who, why, sizeof(why));
    if (st != 0) {
      deny(req, res, st, why);
      rc_stats_request(path_is(req, "/api/v1/write") ? RC_HANDLER_WRITE : RC_HANDLER_OTHER,
                       res->status, uv_hrtime() - req->complete_ns);
      return;
    }
  }
  /* The voter and the requester, as the approval gate sees them. */
  rc_voter_t voter = {0};
  if (who != NULL)
    voter = (rc_voter_t){.name = who->name,
                         .is_approver = (who->roles & (RC_ROLE_APPROVER | RC_ROLE_ADMIN)) != 0,
                         .groups = (const char *const *)who->groups, .ngroups = who->ngroups};
  if (path_is(req, "/api/v1/write")) {
    h = RC_HANDLER_WRITE;
    rc_ingest_handle_write(api->ingest, req, res);
    if (res->deferred) return; /* counted when answered (ingest.c on_done) */
  } else if (path_is(req, "/metrics")) {
    h = RC_HANDLER_METRICS;
    if (get_only(req, res)) {
      res->status = 200;
      res->content_type = "text/plain; version=0.0.4; charset=utf-8";
      rc_stats_render(&res->body);
      render_store(&res->body, api->ingest);
      if (api->engine != NULL) rc_engine_render_metrics(api->engine, &res->body);
      rc_actions_render_metrics(api->actions, &res->body);
      rc_approvals_render_metrics(api->approvals, &res->body);
      rc_delivery_render_metrics(api->delivery, &res->body);
      rc_db_render_metrics(api->db, &res->body);
    }
  } else if (path_is(req, "/-/healthy")) {
    h = RC_HANDLER_HEALTHY;
    if (get_only(req, res)) {
      res->status = 200;
      rc_buf_puts(&res->body, "ripcord is healthy.\n");
    }
  } else if (path_is(req, "/-/ready")) {
    h = RC_HANDLER_READY;
    if (get_only(req, res)) {
      res->status = api->ready ? 200 : 503;
      rc_buf_puts(&res->body, api->ready ? "ripcord is ready.\n" : "ripcord is not ready.\n");
    }
  } else if (path_is(req, "/api/v1/status/ingest")) {
    h = RC_HANDLER_STATUS;
    if (get_only(req, res)) {
      res->status = 200;
      res->content_type = "application/json";
      if (rc_tally_render_json(&api->ingest->tally, &res->body) != 0) {
        rc_buf_reset(&res->body);
        res->status = 500;
        res->content_type = NULL;
        rc_buf_puts(&res->body, "out of memory\n");
      }
    }
  } else if (path_is(req, "/-/reload")) {
    h = RC_HANDLER_STATUS;
    if (req->method != HTTP_POST && req->method != HTTP_PUT) {
      res->status = 405;
      rc_buf_puts(&res->headers, "Allow: POST, PUT\r\n");
      rc_buf_puts(&res->body, "method not allowed: use POST\n");
    } else if (api->reload == NULL) {
      res->status = 503;
      rc_buf_puts(&res->body, "reload not available\n");
    } else {
      char why[300];
      int rc = api->reload(api->reload_ctx, who ? who->name : NULL, why, sizeof(why));
      res->status = rc == 0 ? 200 : 500;
      rc_buf_printf(&res->body, rc == 0 ? "rules reloaded\n"
                                        : "reload failed, previous rules stay in force: %s\n",
                    why);
    }
  } else if (path_is(req, "/api/v1/query")) {
    h = RC_HANDLER_STATUS;
    if (get_only(req, res)) {
      char expr[8192], tbuf[64];
      long n = rc_http_query_param(req, "query", expr, sizeof(expr));
      int64_t t_ms;
      struct timespec now;
      clock_gettime(CLOCK_REALTIME, &now);
      t_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
      int bad_time = 0;
      long tn = rc_http_query_param(req, "time", tbuf, sizeof(tbuf));
      if (tn == RC_HTTP_QP_BAD) bad_time = 1;
      if (tn >= 0) {
        char *end;
        double t = strtod(tbuf, &end);
        /* Unix seconds; past +-1e12 (year 33658) the millisecond count would not fit. */
        if (end == tbuf || *end != 0 || !isfinite(t) || fabs(t) > 1e12) bad_time = 1;
        else t_ms = (int64_t)llround(t * 1000.0);
      }
      res->content_type = "application/json";
      if (n < 0 || bad_time) {
        res->status = 400;
        rc_buf_puts(&res->body, n < 0 ? "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                        "\"error\":\"missing or bad parameter: query\"}\n"
                                      : "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                        "\"error\":\"bad parameter: time (unix seconds)\"}\n");
      } else if (api->engine == NULL) {
        res->status = 503;
        rc_buf_puts(&res->body, "{\"status\":\"error\",\"errorType\":\"unavailable\","
                                "\"error\":\"no rule engine\"}\n");
      } else {
        res->status = rc_engine_query(api->engine, expr, (size_t)n, t_ms, &res->body);
      }
    }
  } else if (path_is(req, "/api/v1/rules")) {
    h = RC_HANDLER_STATUS;
    int64_t history = 0;
    int ok = get_only(req, res);
    if (ok && rc_http_query_int(req, "history", 0, 1, &history) < 0) {
      res->status = 400;
      res->content_type = "application/json";
      rc_buf_puts(&res->body, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                              "\"error\":\"bad parameter: history (0 or 1)\"}\n");
    } else if (ok) {
      res->status = 200;
      res->content_type = "application/json";
      if (api->engine == NULL ||
          rc_engine_render_json(api->engine, (int)history, &res->body) != 0) {
        rc_buf_reset(&res->body);
        res->status = api->engine == NULL ? 503 : 500;
        res->content_type = NULL;
        rc_buf_puts(&res->body, api->engine == NULL ? "no rule engine\n" : "out of memory\n");
      }
    }
  } else if (path_is(req, "/api/v1/whoami")) {
    h = RC_HANDLER_STATUS;
    if (get_only(req, res)) whoami(api, who, res);
  } else if (rc_ui_owns(req->path, req->path_len)) {
    h = RC_HANDLER_STATUS;
    rc_ui_handle(req, res);
  } else if (rc_deploys_handle(api->db, api->audit, req, who ? who->name : NULL, res)) {
    h = RC_HANDLER_STATUS;
    if (res->status == 201 && api->deployed != NULL) api->deployed(api->deployed_ctx);
  } else if (rc_audit_handle(api->audit, req, res)) {
    h = RC_HANDLER_STATUS;
  } else if (rc_approvals_handle(api->approvals, req, who ? &voter : NULL, res)) {
    h = RC_HANDLER_STATUS;
  } else if (rc_actions_handle(api->actions, req, who ? who->name : NULL, res)) {
    h = RC_HANDLER_STATUS;
  } else {
    res->status = 404;
    rc_buf_puts(&res->body, "not found\n");
  }
  /* HEAD: the body is built as for GET and http.c sends its length but not its bytes. */
  rc_stats_request(h, res->status, uv_hrtime() - req->complete_ns);
}
