/* test_ui.c: the status page's module (ui.c) and its generated asset table: what is served at
 * which path with which Content-Type, the security headers on every answer (errors too),
 * ETag and If-None-Match, HEAD, 404 for an unknown asset, 405 for other methods, and odd
 * paths (a NUL inside, very long, traversal) that must never serve a file. Also checks what
 * embed.py promised: the HTML holds no inline script or style. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <http_parser.h>

#include "ui.h"

typedef struct answer {
  int status;
  const char *ctype;
  char *headers; /* NUL-terminated copies */
  char *body;
  size_t body_len;
} answer_t;

/* One request through rc_ui_handle, with at most one extra header (name: value). */
static answer_t call(int method, const char *path, size_t path_len, const char *hname,
                     const char *hvalue) {
  char hbuf[512];
  rc_http_header_t h = {0};
  rc_http_request_t req;
  memset(&req, 0, sizeof(req));
  req.method = method;
  req.path = path;
  req.path_len = path_len;
  if (hname != NULL) {
    size_t n = strlen(hname), v = strlen(hvalue);
    assert_true(n + v < sizeof(hbuf));
    memcpy(hbuf, hname, n);
    memcpy(hbuf + n, hvalue, v);
    h = (rc_http_header_t){.name_off = 0, .name_len = (uint32_t)n, .value_off = (uint32_t)n,
                           .value_len = (uint32_t)v};
    req.hbase = hbuf;
    req.headers = &h;
    req.nheaders = 1;
  }
  rc_http_response_t res = {.status = 500};
  rc_buf_init(&res.headers);
  rc_buf_init(&res.body);
  rc_ui_handle(&req, &res);
  answer_t a = {.status = res.status, .ctype = res.content_type};
  rc_buf_append(&res.headers, "", 1);
  rc_buf_append(&res.body, "", 1);
  a.headers = rc_buf_steal(&res.headers, NULL);
  a.body_len = res.body.len - 1;
  a.body = rc_buf_steal(&res.body, NULL);
  return a;
}

static answer_t get(const char *path) { return call(HTTP_GET, path, strlen(path), NULL, NULL); }

static void answer_free(answer_t *a) {
  free(a->headers);
  free(a->body);
}

/* The value of header name in a's extra headers, copied into out ("" when absent). */
static const char *header(const answer_t *a, const char *name, char *out, size_t cap) {
  out[0] = 0;
  size_t n = strlen(name);
  for (const char *p = a->headers; p != NULL && *p; p = strstr(p, "\r\n") ? strstr(p, "\r\n") + 2 : NULL) {
    if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1, *end = strstr(v, "\r\n");
      while (*v == ' ') v++;
      snprintf(out, cap, "%.*s", (int)(end ? end - v : (long)strlen(v)), v);
      return out;
    }
  }
  return out;
}

static void expect_security_headers(const answer_t *a) {
  char v[400];
  assert_string_equal(header(a, "Content-Security-Policy", v, sizeof(v)), RC_UI_CSP);
  assert_string_equal(header(a, "X-Content-Type-Options", v, sizeof(v)), "nosniff");
  assert_string_equal(header(a, "Referrer-Policy", v, sizeof(v)), "no-referrer");
  assert_string_equal(header(a, "X-Frame-Options", v, sizeof(v)), "DENY");
  /* Nothing inline may run: the policy must not allow it. */
  assert_null(strstr(RC_UI_CSP, "unsafe-inline"));
  assert_null(strstr(RC_UI_CSP, "unsafe-eval"));
}

static void test_assets(void **st) {
  (void)st;
  static const struct {
    const char *path, *ctype, *needle;
  } want[] = {
      {"/", "text/html; charset=utf-8", "<script src=\"/ui/app.js\""},
      {"/ui/app.js", "text/javascript; charset=utf-8", "/api/v1/rules?history=1"},
      {"/ui/app.css", "text/css; charset=utf-8", "@media (max-width: 720px)"},
      {"/ui/favicon.svg", "image/svg+xml", "<svg"},
  };
  assert_int_equal(rc_ui_nassets, RC_ARRAY_SIZE(want));
  for (size_t i = 0; i < RC_ARRAY_SIZE(want); i++) {
    answer_t a = get(want[i].path);
    assert_int_equal(a.status, 200);
    assert_non_null(a.ctype);
    assert_string_equal(a.ctype, want[i].ctype);
    assert_non_null(strstr(a.body, want[i].needle));
    const rc_ui_asset_t *as = rc_ui_find(want[i].path, strlen(want[i].path));
    assert_non_null(as);
    assert_int_equal(a.body_len, as->len);
    assert_memory_equal(a.body, as->data, as->len);
    expect_security_headers(&a);
    char v[100];
    assert_string_equal(header(&a, "Cache-Control", v, sizeof(v)), "no-cache");
    assert_string_equal(header(&a, "ETag", v, sizeof(v)), as->etag);
    assert_true(strlen(as->etag) > 2 && as->etag[0] == '"' && as->etag[strlen(as->etag) - 1] == '"');
    answer_free(&a);
  }
  /* Distinct files, distinct validators. */
  for (size_t i = 0; i < rc_ui_nassets; i++)
    for (size_t j = i + 1; j < rc_ui_nassets; j++)
      assert_string_not_equal(rc_ui_assets[i].etag, rc_ui_assets[j].etag);
}

static void test_head_and_methods(void **st) {
  (void)st;
  /* HEAD: the same status and headers; http.c sends the length but not the bytes. */
  answer_t g = get("/"), h = call(HTTP_HEAD, "/", 1, NULL, NULL);
  assert_int_equal(h.status, 200);
  assert_string_equal(h.ctype, g.ctype);
  assert_string_equal(h.headers, g.headers);
  assert_int_equal(h.body_len, g.body_len);
  answer_free(&g);
  answer_free(&h);
  const int other[] = {HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_PATCH, HTTP_OPTIONS, HTTP_TRACE};
  for (size_t i = 0; i < RC_ARRAY_SIZE(other); i++) {
    answer_t a = call(other[i], "/ui/app.js", 10, NULL, NULL);
    char v[100];
    assert_int_equal(a.status, 405);
    assert_string_equal(header(&a, "Allow", v, sizeof(v)), "GET, HEAD");
    expect_security_headers(&a);
    assert_null(strstr(a.body, "use strict")); /* no asset bytes in a refusal */
    answer_free(&a);
  }
}

static void test_etag(void **st) {
  (void)st;
  const rc_ui_asset_t *js = rc_ui_find("/ui/app.js", 10);
  assert_non_null(js);
  char weak[80], list[200];
  snprintf(weak, sizeof(weak), "W/%s", js->etag);
  snprintf(list, sizeof(list), "\"0000\", %s, \"ffff\"", js->etag);
  const char *match[] = {js->etag, weak, list, "*"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(match); i++) {
    answer_t a = call(HTTP_GET, "/ui/app.js", 10, "If-None-Match", match[i]);
    char v[100];
    assert_int_equal(a.status, 304);
    assert_int_equal(a.body_len, 0);
    assert_string_equal(header(&a, "ETag", v, sizeof(v)), js->etag);
    expect_security_headers(&a);
    answer_free(&a);
  }
  const rc_ui_asset_t *css = rc_ui_find("/ui/app.css", 11);
  assert_non_null(css);
  /* Another file's tag, a prefix of the tag, garbage, empty: the full file. */
  char prefix[40];
  snprintf(prefix, sizeof(prefix), "%.8s\"", js->etag);
  const char *miss[] = {css->etag, prefix, "garbage", "", "\"\"", "W/"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(miss); i++) {
    answer_t a = call(HTTP_GET, "/ui/app.js", 10, "if-none-match", miss[i]);
    assert_int_equal(a.status, 200);
    assert_int_equal(a.body_len, js->len);
    answer_free(&a);
  }
}

static void test_unknown_and_odd_paths(void **st) {
  (void)st;
  const char *bad[] = {"/ui/", "/ui/nope.js", "/ui/app.js/", "/ui/app.js.map", "/ui/../ui/app.js",
                       "/ui/%61pp.js", "/ui/APP.JS", "/ui/app.js?x", "/ui//app.js", "/ui/index.html",
                       "/ui/app.js%00", "/ui/./app.css"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(bad); i++) {
    assert_true(rc_ui_owns(bad[i], strlen(bad[i])));
    answer_t a = get(bad[i]);
    if (a.status != 404) fail_msg("%s: status %d, want 404", bad[i], a.status);
    assert_string_equal(a.body, "not found\n");
    expect_security_headers(&a);
    answer_free(&a);
  }
  /* A NUL inside the path: the length counts, so "/ui/app.js\0x" is not app.js. */
  answer_t a = call(HTTP_GET, "/ui/app.js\0x", 12, NULL, NULL);
  assert_int_equal(a.status, 404);
  answer_free(&a);
  /* "/" is the page only as the whole path. */
  a = call(HTTP_GET, "/x", 1, NULL, NULL);
  assert_int_equal(a.status, 200); /* path_len 1: just "/" */
  answer_free(&a);
  /* A very long path under /ui/. */
  size_t n = 100000;
  char *longp = malloc(n);
  assert_non_null(longp);
  memcpy(longp, "/ui/", 4);
  memset(longp + 4, 'a', n - 4);
  a = call(HTTP_GET, longp, n, NULL, NULL);
  assert_int_equal(a.status, 404);
  answer_free(&a);
  free(longp);
  /* Not the page's: the API, health, empty, prefixes that only look alike. */
  const char *others[] = {"", "//", "/u", "/ui", "/uix/app.js", "/api/v1/rules", "/index.html",
                          "/-/healthy", "/UI/app.js"};
  for (size_t i = 0; i < RC_ARRAY_SIZE(others); i++)
    if (rc_ui_owns(others[i], strlen(others[i]))) fail_msg("%s is not the page's", others[i]);
  assert_null(rc_ui_find("", 0));
  assert_null(rc_ui_find("/ui/app", 7));
}

/* embed.py refuses these at build time; this checks the built table as well, so a change to
 * the generator that stops checking shows here. */
static void test_no_inline_code(void **st) {
  (void)st;
  const rc_ui_asset_t *html = rc_ui_find("/", 1);
  assert_non_null(html);
  char *s = malloc(html->len + 1);
  assert_non_null(s);
  memcpy(s, html->data, html->len);
  s[html->len] = 0;
  for (char *p = s; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
  assert_null(strstr(s, "<style"));
  assert_null(strstr(s, " style="));
  assert_null(strstr(s, " onclick="));
  assert_null(strstr(s, " onload="));
  assert_null(strstr(s, "javascript:"));
  for (char *p = strstr(s, "<script"); p != NULL; p = strstr(p + 1, "<script")) {
    char *end = strchr(p, '>');
    assert_non_null(end);
    *end = 0;
    assert_non_null(strstr(p, " src="));
    *end = '>';
  }
  free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_assets),
      cmocka_unit_test(test_head_and_methods),
      cmocka_unit_test(test_etag),
      cmocka_unit_test(test_unknown_and_odd_paths),
      cmocka_unit_test(test_no_inline_code),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
