/* api.c: request routing and the small built-in endpoints; see api.h. */
#include "api.h"

#include <http_parser.h>
#include <string.h>
#include <uv.h>

#include "stats.h"

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

void rc_api_handle(void *ctx, const rc_http_request_t *req, rc_http_response_t *res) {
  rc_api_t *api = ctx;
  rc_handler_t h = RC_HANDLER_OTHER;
  if (path_is(req, "/api/v1/write")) {
    h = RC_HANDLER_WRITE;
    rc_ingest_handle_write(api->ingest, req, res);
  } else if (path_is(req, "/metrics")) {
    h = RC_HANDLER_METRICS;
    if (get_only(req, res)) {
      res->status = 200;
      res->content_type = "text/plain; version=0.0.4; charset=utf-8";
      rc_stats_render(&res->body);
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
  } else {
    res->status = 404;
    rc_buf_puts(&res->body, "not found\n");
  }
  /* HEAD: the body is built as for GET and http.c sends its length but not its bytes. */
  rc_stats_request(h, res->status, uv_hrtime() - req->complete_ns);
}
