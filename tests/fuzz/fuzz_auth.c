/* fuzz_auth.c: rc_auth_check() with arbitrary bytes as the Authorization header value (scheme
 * parsing, the Basic decoder, the constant-time match), on a route a writer may use and one
 * it may not; the same bytes also go through rc_auth_required() as a path and
 * rc_auth_addr_is_loopback() as a listen address. Besides not crashing, every answer must be
 * 0, 401 or 403 with a one-line reason, and a 401 names no identity.
 *
 * The two tokens are fixed so that seeds can reach the success paths; they are fuzzing
 * fixtures, not secrets, and nothing else accepts them. */
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "fuzz.h"

#define TOKEN "fuzz-only-not-a-secret-0123456789"

static rc_auth_t *auth(void) {
  static rc_auth_t *a;
  if (a == NULL) {
    static char *writer[] = {"writer"}, *viewer[] = {"viewer"}, *groups[] = {"sre"};
    rc_identity_cfg_t ids[] = {
        {.name = "writer", .roles = writer, .nroles = 1, .token_env = "RC_FUZZ_TOKEN_W"},
        {.name = "viewer", .roles = viewer, .nroles = 1, .groups = groups, .ngroups = 1,
         .token_env = "RC_FUZZ_TOKEN_V"},
    };
    setenv("RC_FUZZ_TOKEN_W", TOKEN, 1);
    setenv("RC_FUZZ_TOKEN_V", TOKEN "x", 1);
    rc_err_t e;
    if (rc_auth_new(ids, 2, &a, &e) != 0) abort();
  }
  return a;
}

static void check(const uint8_t *data, size_t size, int method, const char *path) {
  char hb[16 + 8192];
  if (size > sizeof(hb) - 13) size = sizeof(hb) - 13;
  memcpy(hb, "Authorization", 13);
  memcpy(hb + 13, data, size);
  rc_http_header_t h = {.name_off = 0, .name_len = 13, .value_off = 13,
                        .value_len = (uint32_t)size};
  rc_http_request_t req = {.method = method, .path = path, .path_len = strlen(path),
                           .hbase = hb, .headers = &h, .nheaders = 1};
  const rc_identity_t *who = NULL;
  char why[200];
  memset(why, 'X', sizeof(why));
  int s = rc_auth_check(auth(), &req, &who, why, sizeof(why));
  if (s != 0 && s != 401 && s != 403) abort();
  if (memchr(why, '\0', sizeof(why)) == NULL || strchr(why, '\n') != NULL) abort();
  if ((s == 401) != (who == NULL)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  check(data, size, HTTP_POST, "/api/v1/write");
  check(data, size, HTTP_GET, "/metrics");
  unsigned need = rc_auth_required(HTTP_POST, (const char *)data, size);
  if (need & ~(unsigned)(RC_ROLES_READ | RC_ROLE_WRITER)) abort();
  char addr[256];
  size_t n = size < sizeof(addr) - 1 ? size : sizeof(addr) - 1;
  memcpy(addr, data, n);
  addr[n] = '\0';
  rc_auth_addr_is_loopback(addr);
  return 0;
}

void fuzz_seeds(fuzz_emit_fn emit) {
  static const char *const seeds[] = {
      "Bearer " TOKEN,
      "bearer   " TOKEN "x",
      "Basic d3JpdGVyOmZ1enotb25seS1ub3QtYS1zZWNyZXQtMDEyMzQ1Njc4OQ==", /* writer:TOKEN */
      "Basic dmlld2VyOmZ1enotb25seS1ub3QtYS1zZWNyZXQtMDEyMzQ1Njc4OXg",  /* viewer:TOKENx */
      "Basic d3JpdGVyOg==",                                             /* writer: */
      "Digest username=\"writer\"",
      "/api/v1/rollbacks/12/approve",
      "[::1]:9090",
      "",
  };
  for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
    emit((const uint8_t *)seeds[i], strlen(seeds[i]));
}
