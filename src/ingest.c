/* ingest.c: the remote-write handler, the hand-off ring and its consumer thread; see ingest.h. */
#include "ingest.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "stats.h"

/*------------------------------------------------------------------------------------------
 * Content negotiation
 *----------------------------------------------------------------------------------------*/

static void trim(const char **s, size_t *n) {
  while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static int eq_ci(const char *s, size_t n, const char *lit) {
  size_t l = strlen(lit);
  return n == l && strncasecmp(s, lit, l) == 0;
}

int rc_ingest_content_type(const char *v, size_t n, int *version, char *why, size_t wsz) {
  *version = 1;
  if (v == NULL) return 0; /* Prometheus' receiver treats a missing Content-Type as 1.0 */
  const char *end = v + n, *p = v;
  const char *semi = memchr(p, ';', n);
  const char *mt = p;
  size_t mtl = (size_t)((semi ? semi : end) - p);
  trim(&mt, &mtl);
  if (!eq_ci(mt, mtl, "application/x-protobuf")) {
    snprintf(why, wsz, "unsupported Content-Type \"%.*s\": want application/x-protobuf",
             (int)(n > 80 ? 80 : n), v);
    return RC_ENOTSUP;
  }
  while (semi != NULL) {
    p = semi + 1;
    semi = memchr(p, ';', (size_t)(end - p));
    const char *param = p;
    size_t pl = (size_t)((semi ? semi : end) - p);
    trim(&param, &pl);
    const char *eq = memchr(param, '=', pl);
    if (eq == NULL) continue;
    const char *key = param, *val = eq + 1;
    size_t kl = (size_t)(eq - param), vl = pl - kl - 1;
    trim(&key, &kl);
    trim(&val, &vl);
    if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') val++, vl -= 2;
    if (!eq_ci(key, kl, "proto")) continue;
    if (vl == strlen("prometheus.WriteRequest") && memcmp(val, "prometheus.WriteRequest", vl) == 0) {
      *version = 1;
    } else if (vl == strlen("io.prometheus.write.v2.Request") &&
               memcmp(val, "io.prometheus.write.v2.Request", vl) == 0) {
      *version = 2;
    } else {
      snprintf(why, wsz,
               "unsupported protobuf message \"%.*s\": want prometheus.WriteRequest or "
               "io.prometheus.write.v2.Request",
               (int)(vl > 80 ? 80 : vl), val);
      return RC_ENOTSUP;
    }
  }
  return 0;
}

int rc_ingest_content_encoding(const char *v, size_t n, char *why, size_t wsz) {
  if (v == NULL) return 0; /* as Prometheus: a missing Content-Encoding means snappy */
  const char *s = v;
  trim(&s, &n);
  if (eq_ci(s, n, "snappy")) return 0;
  snprintf(why, wsz, "unsupported Content-Encoding \"%.*s\": only snappy is accepted",
           (int)(n > 60 ? 60 : n), s);
  return RC_ENOTSUP;
}

/*------------------------------------------------------------------------------------------
 * Lifetime
 *----------------------------------------------------------------------------------------*/

static void on_done(void *ctx, void *token, const rc_work_result_t *r);

int rc_ingest_init(rc_ingest_t *ing, const rc_ingest_config_t *cfg, const rc_store_cfg_t *store,
                   const rc_selindex_t *idx, uv_loop_t *loop, rc_err_t *err) {
  memset(ing, 0, sizeof(*ing));
  if (cfg->overload_status != 503 && cfg->overload_status != 429)
    return rc_err_set(err, RC_EINVAL, "overload status must be 503 or 429");
  ing->cfg = *cfg;
  int rc = rc_tally_init(&ing->tally, cfg->tally_max_names ? cfg->tally_max_names : 10000);
  if (rc != 0) return rc_err_set(err, rc, "tally: %s", rc_strerror(rc));
  uint32_t nw = cfg->workers;
  int inline_mode = 0;
  if (nw == 0) { /* default: one per core */
    unsigned int cores = uv_available_parallelism();
    nw = cores < 1 ? 1 : cores > RC_WORKERS_MAX ? RC_WORKERS_MAX : cores;
    /* Confined to one core: decode and apply on the loop thread (workers.h, inline mode). */
    inline_mode = cores <= 1 && loop != NULL;
  }
  ing->cfg.workers = nw;
  rc_workers_cfg_t wc = {.nworkers = nw, .max_inflight = cfg->queue_capacity,
                         .limits = cfg->limits, .store = *store, .idx = idx,
                         .tally = &ing->tally, .loop = loop, .done_cb = on_done, .ctx = ing,
                         .applied_cb = cfg->applied_cb, .applied_ctx = cfg->applied_ctx,
                         .inline_mode = inline_mode};
  wc.store.readers = 1; /* the rule evaluator and status pages read from other threads */
  rc = rc_workers_init(&ing->workers, &wc, err);
  if (rc != 0) {
    rc_tally_close(&ing->tally);
    return rc;
  }
  ing->initialised = 1;
  return 0;
}

int rc_ingest_start(rc_ingest_t *ing, rc_err_t *err) {
  int rc = rc_workers_start(&ing->workers, err);
  if (rc == 0) ing->running = 1;
  return rc;
}

void rc_ingest_stop(rc_ingest_t *ing) {
  if (!ing->running) return;
  rc_workers_stop(&ing->workers);
  ing->running = 0;
}

void rc_ingest_close(rc_ingest_t *ing) {
  if (!ing->initialised) return;
  rc_ingest_stop(ing);
  rc_workers_close(&ing->workers);
  rc_tally_close(&ing->tally);
  ing->initialised = 0;
}

/*------------------------------------------------------------------------------------------
 * The handler
 *----------------------------------------------------------------------------------------*/

static void written_headers(rc_http_response_t *res, int version, uint64_t s, uint64_t h,
                            uint64_t e) {
  if (version != 2) return; /* v1: send none rather than risk wrong ones (spec 2.0 §Response) */
  rc_buf_printf(&res->headers,
                "X-Prometheus-Remote-Write-Samples-Written: %llu\r\n"
                "X-Prometheus-Remote-Write-Histograms-Written: %llu\r\n"
                "X-Prometheus-Remote-Write-Exemplars-Written: %llu\r\n",
                (unsigned long long)s, (unsigned long long)h, (unsigned long long)e);
}

static void reply(rc_http_response_t *res, int status, const char *msg) {
  res->status = status;
  if (msg != NULL) {
    rc_buf_puts(&res->body, msg);
    rc_buf_puts(&res->body, "\n");
  }
}

/* A request whose answer waits for a worker. */
typedef struct pending {
  rc_http_pending_t *http;
  int version;
  uint64_t received_ns;
} pending_t;

static void complain(rc_ingest_t *ing, int status, const char *msg) {
  static rc_complaint_t c[6];
  int k = status == 400 ? 0 : status == 413 ? 1 : status == 415 ? 2 : status == 503 ? 3
        : status == 429 ? 4 : 5;
  char q[300];
  rc_log_complain(&c[k], uv_hrtime() / 1000000u, 60000, status >= 500 ? RC_LOG_WARN : RC_LOG_INFO,
                  "remote write refused", "status=%d reason=%s", status,
                  rc_log_quote(q, sizeof(q), msg, strlen(msg)));
  (void)ing;
}

void rc_ingest_handle_write(rc_ingest_t *ing, const rc_http_request_t *req,
                            rc_http_response_t *res) {
  char why[200];
  size_t n;
  int version = 1;
  if (req->method != HTTP_POST) {
    rc_buf_puts(&res->headers, "Allow: POST\r\n");
    reply(res, 405, "method not allowed: use POST");
    return;
  }
  const char *ct = rc_http_header(req, "Content-Type", &n);
  if (rc_ingest_content_type(ct, ct ? n : 0, &version, why, sizeof(why)) != 0) {
    reply(res, 415, why);
    complain(ing, 415, why);
    return;
  }
  const char *ce = rc_http_header(req, "Content-Encoding", &n);
  if (rc_ingest_content_encoding(ce, ce ? n : 0, why, sizeof(why)) != 0) {
    written_headers(res, version, 0, 0, 0);
    reply(res, 415, why);
    complain(ing, 415, why);
    return;
  }
  rc_stat_add(&rc_stats.body_bytes, req->body_len);
  /* Check for room before spending CPU on the decode. Room in the queue only: the store's
   * memory bound (--storage.max-memory) is deliberately not an admission check, and samples it
   * refuses are answered 204 (dropped and counted, as series refused at --storage.max-series
   * are). Why no 503: the store's memory comes back only as its watermark moves (expiry),
   * and only newer samples move it. A 503 makes Prometheus resend the same samples instead of
   * newer ones, so as long as what the store holds within the retention is over the bound —
   * which nothing but newer timestamps can change — every retry would be refused again and
   * the sender would never get past it: a deadlock, not back-pressure. Refusing at the store
   * and answering 204 lets the sender move on, which is what frees the memory. (The answer
   * is also sent before the store applies the request — workers.h, Order — so it could not
   * tell which samples the bound refused.) */
  int rc;
  rc_work_slot_t *slot = rc_workers_reserve(&ing->workers, &rc);
  if (slot == NULL && rc == RC_EFULL) {
    rc_stat_add(&rc_stats.queue_full, 1);
    rc_buf_printf(&res->headers, "Retry-After: %u\r\n", ing->cfg.retry_after_s);
    written_headers(res, version, 0, 0, 0);
    reply(res, ing->cfg.overload_status, "ingest queue full: retry later");
    complain(ing, ing->cfg.overload_status, "ingest queue full");
    return;
  }
  pending_t *p = slot ? malloc(sizeof(*p)) : NULL;
  rc_buf_t body;
  if (p == NULL || (p->http = rc_http_defer(req, res, &body)) == NULL) {
    if (slot != NULL) rc_workers_unreserve(&ing->workers, slot);
    free(p);
    written_headers(res, version, 0, 0, 0);
    reply(res, 500, "internal error: out of memory accepting the request");
    return;
  }
  p->version = version;
  p->received_ns = req->complete_ns;
  rc_workers_submit(&ing->workers, slot, version, &body, req->complete_ns, p);
}

/* Loop thread: a worker has decoded (or refused) a deferred request: answer it. */
static void on_done(void *ctx, void *token, const rc_work_result_t *r) {
  rc_ingest_t *ing = ctx;
  pending_t *p = token;
  rc_http_response_t res = {.status = 500};
  rc_buf_init(&res.headers);
  rc_buf_init(&res.body);
  if (r->status == 204 || r->status == 400)
    written_headers(&res, r->version, r->samples, r->histograms, r->exemplars);
  else
    written_headers(&res, r->version, 0, 0, 0);
  reply(&res, r->status, r->status == 204 ? NULL : r->msg);
  if (r->status != 204) complain(ing, r->status, r->msg);
  rc_http_finish(p->http, &res);
  rc_stats_request(RC_HANDLER_WRITE, r->status, uv_hrtime() - p->received_ns);
  rc_buf_free(&res.headers);
  rc_buf_free(&res.body);
  free(p);
}
