/* ui.h: the status page — the HTML, CSS and JavaScript in src/ui/, embedded in the binary at
 * build time (src/ui/embed.py writes them as byte arrays into the generated ui_assets.c) and
 * served from memory: GET / is index.html, GET /ui/<file> the rest. No CDN, no file read at
 * run time: the page works offline and cannot drift from the binary that serves it.
 *
 * The shell holds no data. Everything the page shows it fetches from the JSON API that the CLI
 * and curl use (/api/v1/rules?history=1, /api/v1/services, /api/v1/rollbacks, /api/v1/audit,
 * /api/v1/whoami), sending the token it keeps in sessionStorage in an Authorization header —
 * never a cookie, so a request forged by another site carries no credentials (the CSRF
 * defence). That is why these paths need no role (auth.c's route table lists them as public)
 * while every request for data does.
 *
 * Every answer here carries a strict Content-Security-Policy (no inline script or style
 * anywhere: embed.py refuses to build a page that has any), nosniff, no referrer and no
 * framing. Assets are revalidated on each load (Cache-Control: no-cache) against a strong
 * ETag computed at build time; If-None-Match gets 304.
 *
 * Threads: the loop thread (the table is constant data, readable from anywhere).
 */
#ifndef RC_UI_H
#define RC_UI_H

#include <stddef.h>

#include "http.h"

#define RC_UI_CSP                                                                          \
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "        \
  "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

typedef struct rc_ui_asset {
  const char *path;         /* "/" or "/ui/<file name>" */
  const char *content_type; /* with charset for text */
  const unsigned char *data;
  size_t len;
  const char *etag;         /* a quoted strong validator: "\"<hex>\"" */
} rc_ui_asset_t;

/* The generated table (ui_assets.c), in src/ui/ file order. */
extern const rc_ui_asset_t rc_ui_assets[];
extern const size_t rc_ui_nassets;

/* The asset served at path (not NUL-terminated, compared exactly), or NULL. */
const rc_ui_asset_t *rc_ui_find(const char *path, size_t len);

/* 1 when path is the page's: "/" or anything under "/ui/" (whether or not such a file
 * exists: the handler answers 404 for one that does not). */
int rc_ui_owns(const char *path, size_t len);

/* Answers a request for one of the page's paths (rc_ui_owns): 200 with the asset (HEAD: the
 * same headers, no body), 304 when If-None-Match names its ETag, 404 for an unknown file, 405
 * with Allow for other methods; 500 when the body cannot be copied (out of memory). */
void rc_ui_handle(const rc_http_request_t *req, rc_http_response_t *res);

#endif
