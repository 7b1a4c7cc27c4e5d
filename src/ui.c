/* ui.c: serves the embedded status page (the generated asset table) with its security
 * headers; see ui.h. */
#include "ui.h"

#include <http_parser.h>
#include <string.h>

const rc_ui_asset_t *rc_ui_find(const char *path, size_t len) {
  for (size_t i = 0; i < rc_ui_nassets; i++) {
    const rc_ui_asset_t *a = &rc_ui_assets[i];
    if (strlen(a->path) == len && memcmp(a->path, path, len) == 0) return a;
  }
  return NULL;
}

int rc_ui_owns(const char *path, size_t len) {
  static const char pre[] = "/ui/";
  if (len == 1 && path[0] == '/') return 1;
  return len >= sizeof(pre) - 1 && memcmp(path, pre, sizeof(pre) - 1) == 0;
}

/* The headers of every answer here, error pages included: the browser must never run, sniff
 * or frame anything under these paths but what the policy allows. */
static void security_headers(rc_buf_t *h) {
  rc_buf_puts(h, "Content-Security-Policy: " RC_UI_CSP "\r\n"
                 "X-Content-Type-Options: nosniff\r\n"
                 "Referrer-Policy: no-referrer\r\n"
                 "X-Frame-Options: DENY\r\n"
                 "Cross-Origin-Opener-Policy: same-origin\r\n");
}

/* If-None-Match (RFC 9110 13.1.2): "*" or a list of entity tags; weak comparison, so
 * W/"x" matches "x". The tags here are hex digits in quotes, so finding the quoted tag as a
 * substring of the list cannot match a different tag. */
static int not_modified(const rc_http_request_t *req, const char *etag) {
  size_t n = 0;
  const char *v = rc_http_header(req, "If-None-Match", &n);
  if (v == NULL) return 0;
  if (n == 1 && v[0] == '*') return 1;
  size_t el = strlen(etag);
  for (size_t i = 0; i + el <= n; i++)
    if (memcmp(v + i, etag, el) == 0) return 1;
  return 0;
}

void rc_ui_handle(const rc_http_request_t *req, rc_http_response_t *res) {
  security_headers(&res->headers);
  if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
    res->status = 405;
    rc_buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
    rc_buf_puts(&res->body, "method not allowed: use GET\n");
    return;
  }
  const rc_ui_asset_t *a = rc_ui_find(req->path, req->path_len);
  if (a == NULL) {
    res->status = 404;
    rc_buf_puts(&res->body, "not found\n");
    return;
  }
  /* no-cache: revalidate on every load (one 304 per file), so a new binary's page is never
   * mixed with a cached script of the old one. */
  rc_buf_printf(&res->headers, "Cache-Control: no-cache\r\nETag: %s\r\n", a->etag);
  if (not_modified(req, a->etag)) {
    res->status = 304;
    return;
  }
  res->status = 200;
  res->content_type = a->content_type;
  rc_buf_append(&res->body, a->data, a->len);
  if (res->body.oom) {
    rc_buf_reset(&res->body);
    res->body.oom = 0;
    res->status = 500;
    res->content_type = NULL;
    rc_buf_puts(&res->body, "out of memory\n");
  }
}
