/* test_auth.c: identities and API tokens — a table of Authorization headers (Bearer, Basic,
 * padding variants, NULs, oversize, unknown schemes) with the status and reason each gets, the
 * route table by role, open mode, rc_auth_new's errors, listen addresses, and that no copy of
 * a token stays in memory we can see. Tokens are random per run (/dev/urandom), set in the
 * environment or written to files in a temporary directory this test creates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <http_parser.h>
#include <openssl/evp.h>

#include "auth.h"
#include "config.h"

/*------------------------------------------------------------------------------------------
 * Helpers: tokens, files, base64, requests
 *----------------------------------------------------------------------------------------*/

static char g_dir[64];

/* n random bytes as 2n hex characters. */
static void gen_token(char *out, size_t nbytes) {
  unsigned char b[256];
  assert_true(nbytes <= sizeof(b));
  FILE *f = fopen("/dev/urandom", "rb");
  assert_non_null(f);
  assert_int_equal(fread(b, 1, nbytes, f), nbytes);
  fclose(f);
  for (size_t i = 0; i < nbytes; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  fclose(f);
}

/* A plain base64 encoder (RFC 4648 section 4), written apart from the decoder under test. */
static size_t b64(const unsigned char *in, size_t n, char *out, int pad) {
  static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)in[i] << 16;
    if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
    if (i + 2 < n) v |= in[i + 2];
    out[o++] = al[(v >> 18) & 63];
    out[o++] = al[(v >> 12) & 63];
    if (i + 1 < n) out[o++] = al[(v >> 6) & 63];
    else if (pad) out[o++] = '=';
    if (i + 2 < n) out[o++] = al[v & 63];
    else if (pad) out[o++] = '=';
  }
  out[o] = '\0';
  return o;
}

/* A request as http.c hands it to the handler: one Authorization header (or none) in a
 * header buffer the request borrows. */
typedef struct {
  char *buf;
  rc_http_header_t h;
  rc_http_request_t r;
} fake_req_t;

static void mkreq(fake_req_t *f, int method, const char *path, const char *auth, size_t alen) {
  memset(f, 0, sizeof(*f));
  f->buf = malloc(16 + alen);
  assert_non_null(f->buf);
  memcpy(f->buf, "Authorization", 13);
  if (auth != NULL) memcpy(f->buf + 13, auth, alen);
  f->h = (rc_http_header_t){.name_off = 0, .name_len = 13, .value_off = 13,
                            .value_len = (uint32_t)alen};
  f->r.method = method;
  f->r.path = path;
  f->r.path_len = strlen(path);
  f->r.hbase = f->buf;
  f->r.headers = &f->h;
  f->r.nheaders = auth != NULL ? 1 : 0;
}

/*------------------------------------------------------------------------------------------
 * The identities every test shares (built in setup)
 *----------------------------------------------------------------------------------------*/

enum { PROM, BOB, ALICE, CI, ROOT, FILEY, NIDS };
static const char *const g_names[NIDS] = {"prom", "bob", "alice", "ci", "root", "filey"};
static char g_tok[NIDS][97];
static rc_auth_t *g_auth;
static rc_config_t g_cfg;

static int setup(void **st) {
  (void)st;
  snprintf(g_dir, sizeof(g_dir), "/tmp/rc-test-auth-XXXXXX");
  if (mkdtemp(g_dir) == NULL) return -1;
  for (int i = 0; i < NIDS; i++) gen_token(g_tok[i], 24); /* 48 hex characters */
  setenv("RC_TEST_TOK_PROM", g_tok[PROM], 1);
  setenv("RC_TEST_TOK_BOB", g_tok[BOB], 1);
  setenv("RC_TEST_TOK_ALICE", g_tok[ALICE], 1);
  setenv("RC_TEST_TOK_CI", g_tok[CI], 1);
  setenv("RC_TEST_TOK_ROOT", g_tok[ROOT], 1);
  /* A token file ends in a newline and maybe more whitespace: stripped. */
  char path[128], body[160];
  snprintf(path, sizeof(path), "%s/filey", g_dir);
  int n = snprintf(body, sizeof(body), "%s \t\r\n\n", g_tok[FILEY]);
  write_file(path, body, (size_t)n);
  char y[2048];
  snprintf(y, sizeof(y),
           "identities:\n"
           "  - {name: prom, roles: [writer], token_env: RC_TEST_TOK_PROM}\n"
           "  - {name: bob, roles: [viewer], groups: [sre], token_env: RC_TEST_TOK_BOB}\n"
           "  - name: alice\n    roles: [approver, viewer]\n    groups: [sre, leads]\n"
           "    token_env: RC_TEST_TOK_ALICE\n"
           "  - {name: ci, roles: [deployer], token_env: RC_TEST_TOK_CI}\n"
           "  - {name: root, roles: [admin], token_env: RC_TEST_TOK_ROOT}\n"
           "  - {name: filey, roles: [viewer], token_file: '%s'}\n",
           path);
  rc_err_t e = {0};
  if (rc_config_parse("auth.yml", y, strlen(y), &g_cfg, &e) != 0) {
    fprintf(stderr, "config: %s\n", e.msg);
    return -1;
  }
  if (rc_auth_new(g_cfg.identities, g_cfg.n_identities, &g_auth, &e) != 0) {
    fprintf(stderr, "auth: %s\n", e.msg);
    return -1;
  }
  return 0;
}

static int teardown(void **st) {
  (void)st;
  rc_auth_free(g_auth);
  rc_config_free(&g_cfg);
  char path[128];
  snprintf(path, sizeof(path), "%s/filey", g_dir);
  unlink(path);
  return rmdir(g_dir);
}

/*------------------------------------------------------------------------------------------
 * Authorization headers
 *----------------------------------------------------------------------------------------*/

/* Expands a header template: $P, $B, ... are the tokens of prom, bob, alice, ci, root, filey;
 * ~ is a NUL byte. With b64 set, what follows the first spaces is base64-encoded (pad: 1
 * canonical padding, 0 none), and `tweak` is applied to the encoded text. */
enum { T_NONE, T_EXTRA_PAD, T_TRIPLE_PAD, T_PAD_INSIDE, T_DIRTY_BITS, T_LONE_CHAR, T_SPACE };

static size_t expand(const char *tmpl, int enc, int pad, int tweak, char *out, size_t cap) {
  char raw[4096];
  size_t n = 0;
  for (const char *p = tmpl; *p; p++) {
    const char *ins = NULL;
    if (*p == '$' && p[1]) {
      p++;
      ins = *p == 'P' ? g_tok[PROM] : *p == 'B' ? g_tok[BOB] : *p == 'A' ? g_tok[ALICE]
          : *p == 'C' ? g_tok[CI] : *p == 'R' ? g_tok[ROOT] : g_tok[FILEY];
      memcpy(raw + n, ins, strlen(ins));
      n += strlen(ins);
    } else {
      raw[n++] = *p == '~' ? '\0' : *p;
    }
  }
  assert_true(n < cap);
  if (!enc) {
    memcpy(out, raw, n);
    return n;
  }
  const char *sp = memchr(raw, ' ', n);
  assert_non_null(sp);
  size_t pre = (size_t)(sp - raw);
  while (pre < n && raw[pre] == ' ') pre++;
  memcpy(out, raw, pre);
  size_t o = pre + b64((const unsigned char *)raw + pre, n - pre, out + pre, pad);
  char *e = out + pre; /* the encoded part */
  size_t en = o - pre;
  switch (tweak) {
    case T_EXTRA_PAD: out[o++] = '='; break;
    case T_TRIPLE_PAD: memcpy(out + o, "===", 3), o += 3; break;
    case T_PAD_INSIDE: e[4] = '='; break;
    case T_DIRTY_BITS: { /* the last data character's unused bits set: non-canonical */
      size_t last = en;
      while (last > 0 && e[last - 1] == '=') last--;
      char *c = &e[last - 1];
      *c = *c == 'A' ? 'B' : *c == 'Q' ? 'R' : *c == 'g' ? 'h' : *c == 'w' ? 'x' : (char)(*c + 1);
      break;
    }
    case T_LONE_CHAR: out[o++] = 'Q'; break;
    case T_SPACE: memmove(e + 9, e + 8, en - 8), e[8] = ' ', o++; break;
    default: break;
  }
  return o;
}

static void test_headers(void **st) {
  (void)st;
  enum { W, R }; /* W: POST /api/v1/write (writer); R: GET /metrics (any reading role) */
  static const struct {
    const char *h; /* NULL: no Authorization header */
    int route, enc, pad, tweak;
    int status;
    const char *why;
  } t[] = {
      {NULL, W, 0, 0, 0, 401, "authentication required: send Authorization: Bearer <token>"},
      {"", W, 0, 0, 0, 401, "empty Authorization header"},
      {"   ", W, 0, 0, 0, 401, "empty Authorization header"},
      {"Bearer", W, 0, 0, 0, 401, "malformed Bearer credentials: no token"},
      {"Bearer   ", W, 0, 0, 0, 401, "malformed Bearer credentials: no token"},
      {"Bearer $P", W, 0, 0, 0, 0, "identity \"prom\" (roles: writer)"},
      {"bearer $P", W, 0, 0, 0, 0, "identity \"prom\""},
      {"BEARER $P", W, 0, 0, 0, 0, "identity \"prom\""},
      {"Bearer     $P", W, 0, 0, 0, 0, "identity \"prom\""},
      {"Bearer \t $P\t ", W, 0, 0, 0, 0, "identity \"prom\""},
      {"  Bearer $P", W, 0, 0, 0, 0, "identity \"prom\""},
      {"Bearer $F", R, 0, 0, 0, 0, "identity \"filey\""}, /* the token read from a file */
      {"Bearer $Px", W, 0, 0, 0, 401, "invalid token"},
      {"Bearer x$P", W, 0, 0, 0, 401, "invalid token"},
      {"Bearer $P~", W, 0, 0, 0, 401, "invalid token"},
      {"Bearer $P $P", W, 0, 0, 0, 401, "invalid token"},
      {"Bearer 0123456789abcdef0123456789abcdef", W, 0, 0, 0, 401, "invalid token"},
      {"Bearer $B", W, 0, 0, 0, 403,
       "identity \"bob\" (roles: viewer) may not do this: needs writer"},
      {"Bearer:$P", W, 0, 0, 0, 401, "unsupported authorization scheme"},
      {"$P", W, 0, 0, 0, 401, "unsupported authorization scheme"},
      {"Token $P", W, 0, 0, 0, 401, "unsupported authorization scheme"},
      {"Digest username=\"prom\"", W, 0, 0, 0, 401, "unsupported authorization scheme"},
      {"Bearerx $P", W, 0, 0, 0, 401, "unsupported authorization scheme"},
      /* Basic: user = identity name, password = its token. */
      {"Basic prom:$P", W, 1, 1, 0, 0, "identity \"prom\""},
      {"basic prom:$P", W, 1, 1, 0, 0, "identity \"prom\""},
      {"BASIC   prom:$P", W, 1, 1, 0, 0, "identity \"prom\""},
      {"Basic alice:$A", R, 1, 1, 0, 0, "identity \"alice\""},
      {"Basic bob:$P", W, 1, 1, 0, 401, "invalid Basic credentials"},   /* wrong user */
      {"Basic prom:$B", W, 1, 1, 0, 401, "invalid Basic credentials"},  /* wrong password */
      {"Basic Prom:$P", W, 1, 1, 0, 401, "invalid Basic credentials"},  /* names are exact */
      {"Basic prom:$Px", W, 1, 1, 0, 401, "invalid Basic credentials"},
      {"Basic :$P", W, 1, 1, 0, 401, "invalid Basic credentials"},
      {"Basic pro:$P", W, 1, 1, 0, 401, "invalid Basic credentials"},
      {"Basic promx:$P", W, 1, 1, 0, 401, "invalid Basic credentials"},
      {"Basic prom$P", W, 1, 1, 0, 401, "malformed Basic credentials: no ':'"},
      {"Basic prom:", W, 1, 1, 0, 401, "malformed Basic credentials: empty password"},
      {"Basic bob:$B", W, 1, 1, 0, 403, "identity \"bob\" (roles: viewer) may not do this"},
      /* NUL bytes inside the credentials do not cut them short. */
      {"Basic prom:$P~", W, 1, 1, 0, 401, "invalid Basic credentials"},
      {"Basic prom~:$P", W, 1, 1, 0, 401, "invalid Basic credentials"},
      {"Basic prom:~$P", W, 1, 1, 0, 401, "invalid Basic credentials"},
      {"Basic ~prom:$P", W, 1, 1, 0, 401, "invalid Basic credentials"},
      /* Padding: "prom:" + 48 = 53 bytes (one '='), "bob:" + 48 = 52 (two), "alice:" + 48 =
       * 54 (none). Missing padding is accepted; wrong padding is not. */
      {"Basic prom:$P", W, 1, 0, 0, 0, "identity \"prom\""},
      {"Basic bob:$B", R, 1, 1, 0, 0, "identity \"bob\""},
      {"Basic bob:$B", R, 1, 0, 0, 0, "identity \"bob\""},
      {"Basic prom:$P", W, 1, 1, T_EXTRA_PAD, 401, "malformed Basic credentials: not base64"},
      {"Basic bob:$B", R, 1, 1, T_EXTRA_PAD, 401, "not base64"},
      {"Basic alice:$A", R, 1, 1, T_EXTRA_PAD, 401, "not base64"},
      {"Basic alice:$A", R, 1, 1, T_TRIPLE_PAD, 401, "not base64"},
      {"Basic bob:$B", R, 1, 0, T_EXTRA_PAD, 401, "not base64"}, /* 1 of the 2 '=' */
      {"Basic prom:$P", W, 1, 1, T_PAD_INSIDE, 401, "not base64"},
      {"Basic prom:$P", W, 1, 1, T_DIRTY_BITS, 401, "not base64"},
      {"Basic bob:$B", R, 1, 1, T_DIRTY_BITS, 401, "not base64"},
      {"Basic bob:$B", R, 1, 0, T_DIRTY_BITS, 401, "not base64"},
      {"Basic alice:$A", R, 1, 0, T_LONE_CHAR, 401, "not base64"},
      {"Basic prom:$P", W, 1, 1, T_SPACE, 401, "not base64"},
      {"Basic !!!!", W, 0, 0, 0, 401, "malformed Basic credentials: not base64"},
      {"Basic cHJvbTp4-_8", W, 0, 0, 0, 401, "not base64"}, /* base64url is not Basic's */
      {"Basic Q", W, 0, 0, 0, 401, "not base64"},
      {"Basic ====", W, 0, 0, 0, 401, "not base64"},
      {"Basic =", W, 0, 0, 0, 401, "not base64"},
      {"Basic", W, 0, 0, 0, 401, "malformed Basic credentials: nothing after Basic"},
      {"Basic ~", W, 0, 0, 0, 401, "not base64"},
      {"Basic Og==", W, 0, 0, 0, 401, "empty password"}, /* ":" */
      {"Basic YQ==", W, 0, 0, 0, 401, "no ':'"},         /* "a" */
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    char h[8192], why[200];
    size_t hn = t[i].h ? expand(t[i].h, t[i].enc, t[i].pad, t[i].tweak, h, sizeof(h)) : 0;
    fake_req_t f;
    mkreq(&f, t[i].route == W ? HTTP_POST : HTTP_GET, t[i].route == W ? "/api/v1/write" : "/metrics",
          t[i].h ? h : NULL, hn);
    const rc_identity_t *who = (const rc_identity_t *)&f; /* must be overwritten */
    memset(why, 'X', sizeof(why));
    int s = rc_auth_check(g_auth, &f.r, &who, why, sizeof(why));
    if (s != t[i].status || strstr(why, t[i].why) == NULL)
      fail_msg("case %zu (%s): %d '%s', want %d '%s'", i, t[i].h ? t[i].h : "none", s, why,
               t[i].status, t[i].why);
    if (strchr(why, '\n') != NULL) fail_msg("case %zu: reason has a newline", i);
    for (int k = 0; k < NIDS; k++)
      if (strstr(why, g_tok[k]) != NULL || strstr(why, "cHJvbT") != NULL)
        fail_msg("case %zu: the reason echoes credentials: %s", i, why);
    if (s == 401 && who != NULL) fail_msg("case %zu: who set on 401", i);
    if (s != 401 && (who == NULL || strstr(t[i].why, who->name) == NULL))
      fail_msg("case %zu: who is %s", i, who ? who->name : "NULL");
    free(f.buf);
  }
}

/* Oversized headers are refused unread; one just under the limit is read and judged. */
static void test_header_size(void **st) {
  (void)st;
  static char h[RC_AUTH_MAX_HEADER + 64];
  char why[200];
  const rc_identity_t *who;
  fake_req_t f;
  memcpy(h, "Bearer ", 7);
  memset(h + 7, 'a', sizeof(h) - 7);
  mkreq(&f, HTTP_POST, "/api/v1/write", h, RC_AUTH_MAX_HEADER);
  assert_int_equal(rc_auth_check(g_auth, &f.r, &who, why, sizeof(why)), 401);
  assert_string_equal(why, "invalid token");
  free(f.buf);
  mkreq(&f, HTTP_POST, "/api/v1/write", h, RC_AUTH_MAX_HEADER + 1);
  assert_int_equal(rc_auth_check(g_auth, &f.r, &who, why, sizeof(why)), 401);
  assert_non_null(strstr(why, "Authorization header longer than 4096 bytes"));
  free(f.buf);
  /* A Basic header of the largest size decodes into the largest buffer. */
  memcpy(h, "Basic ", 6);
  memset(h + 6, 'Q', sizeof(h) - 6);
  size_t n = 6 + (RC_AUTH_MAX_HEADER - 6) / 4 * 4;
  mkreq(&f, HTTP_POST, "/api/v1/write", h, n);
  assert_int_equal(rc_auth_check(g_auth, &f.r, &who, why, sizeof(why)), 401);
  assert_non_null(strstr(why, "no ':'"));
  free(f.buf);
  /* A tiny or absent why buffer is fine. */
  mkreq(&f, HTTP_POST, "/api/v1/write", NULL, 0);
  assert_int_equal(rc_auth_check(g_auth, &f.r, &who, why, 1), 401);
  assert_string_equal(why, "");
  assert_int_equal(rc_auth_check(g_auth, &f.r, NULL, NULL, 0), 401);
  free(f.buf);
}

/*------------------------------------------------------------------------------------------
 * Routes and roles
 *----------------------------------------------------------------------------------------*/

static void test_required(void **st) {
  (void)st;
  static const struct {
    int method;
    const char *path;
    unsigned need;
  } t[] = {
      {HTTP_GET, "/-/healthy", 0},
      {HTTP_HEAD, "/-/healthy", 0},
      {HTTP_GET, "/-/ready", 0},
      {HTTP_HEAD, "/-/ready", 0},
      {HTTP_POST, "/-/healthy", RC_ROLES_READ}, /* a wrong method still needs a reader */
      {HTTP_GET, "/-/healthy/", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/write", RC_ROLE_WRITER},
      {HTTP_GET, "/api/v1/write", RC_ROLES_READ},
      {HTTP_PUT, "/api/v1/write", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/writeX", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/write/", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/deploys", RC_ROLE_DEPLOYER},
      {HTTP_GET, "/api/v1/deploys", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/rollbacks", RC_ROLE_DEPLOYER},
      {HTTP_GET, "/api/v1/rollbacks", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/rollbacks/12/approve", RC_ROLE_APPROVER},
      {HTTP_POST, "/api/v1/rollbacks/12/reject", RC_ROLE_APPROVER},
      {HTTP_POST, "/api/v1/rollbacks/abc-1/approve", RC_ROLE_APPROVER},
      {HTTP_GET, "/api/v1/rollbacks/12/approve", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/rollbacks//approve", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/rollbacks/1/2/approve", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/rollbacks/12/approved", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/rollbacks/12", RC_ROLES_READ},
      {HTTP_POST, "/api/v1/rollbacks/", RC_ROLES_READ},
      {HTTP_POST, "/-/reload", RC_ROLE_ADMIN},
      {HTTP_PUT, "/-/reload", RC_ROLE_ADMIN},
      {HTTP_GET, "/-/reload", RC_ROLES_READ},
      {HTTP_GET, "/metrics", RC_ROLES_READ},
      {HTTP_GET, "/api/v1/rules", RC_ROLES_READ},
      {HTTP_DELETE, "/api/v1/rules", RC_ROLES_READ},
      {HTTP_GET, "/nope", RC_ROLES_READ},
      {HTTP_GET, "", RC_ROLES_READ},
      /* The status page's shell is public; its data is not. */
      {HTTP_GET, "/", 0},
      {HTTP_HEAD, "/", 0},
      {HTTP_POST, "/", RC_ROLES_READ},
      {HTTP_GET, "/ui/app.js", 0},
      {HTTP_HEAD, "/ui/app.css", 0},
      {HTTP_GET, "/ui/no-such-file", 0},
      {HTTP_GET, "/ui/", RC_ROLES_READ},
      {HTTP_GET, "/ui/a/b", RC_ROLES_READ},
      {HTTP_GET, "/ui", RC_ROLES_READ},
      {HTTP_DELETE, "/ui/app.js", RC_ROLES_READ},
      {HTTP_GET, "//", RC_ROLES_READ},
      {HTTP_GET, "/index.html", RC_ROLES_READ},
      {HTTP_GET, "/api/v1/whoami", RC_ROLES_READ},
      {HTTP_GET, "/api/v1/services", RC_ROLES_READ},
      {999, "/-/healthy", RC_ROLES_READ},
      {-1, "/-/healthy", RC_ROLES_READ},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    unsigned got = rc_auth_required(t[i].method, t[i].path, strlen(t[i].path));
    if (got != t[i].need)
      fail_msg("case %zu: %d %s needs %u, want %u", i, t[i].method, t[i].path, got, t[i].need);
  }
  /* The length counts, not a NUL. */
  assert_int_equal(rc_auth_required(HTTP_GET, "/-/healthyX", 10), 0);
  assert_int_equal(rc_auth_required(HTTP_GET, "/-/healthy\0x", 12), RC_ROLES_READ);
  assert_int_equal(rc_auth_required(HTTP_GET, NULL, 0), RC_ROLES_READ);
}

static void test_roles(void **st) {
  (void)st;
  static const struct {
    int who; /* -1: no header */
    int method;
    const char *path;
    int status;
    const char *why;
  } t[] = {
      {PROM, HTTP_POST, "/api/v1/write", 0, ""},
      {PROM, HTTP_GET, "/metrics", 403,
       "identity \"prom\" (roles: writer) may not do this: needs one of deployer, approver, "
       "admin, viewer"},
      {PROM, HTTP_GET, "/nope", 403, "needs one of"},
      {PROM, HTTP_POST, "/api/v1/deploys", 403, "needs deployer"},
      {BOB, HTTP_POST, "/api/v1/write", 403,
       "identity \"bob\" (roles: viewer) may not do this: needs writer"},
      {BOB, HTTP_GET, "/metrics", 0, ""},
      {BOB, HTTP_GET, "/api/v1/rules", 0, ""},
      {BOB, HTTP_GET, "/nope", 0, ""}, /* the handler answers 404 */
      {BOB, HTTP_POST, "/api/v1/rollbacks/12/approve", 403, "needs approver"},
      {BOB, HTTP_POST, "/-/reload", 403,
       "identity \"bob\" (roles: viewer) may not do this: needs admin"},
      {BOB, HTTP_PUT, "/-/reload", 403, "needs admin"},
      {BOB, HTTP_POST, "/api/v1/rollbacks", 403, "needs deployer"},
      {ALICE, HTTP_POST, "/api/v1/rollbacks/12/approve", 0, ""},
      {ALICE, HTTP_POST, "/api/v1/rollbacks/12/reject", 0, ""},
      {ALICE, HTTP_POST, "/api/v1/rollbacks", 403,
       "identity \"alice\" (roles: approver, viewer) may not do this: needs deployer"},
      {ALICE, HTTP_GET, "/metrics", 0, ""},
      {CI, HTTP_POST, "/api/v1/rollbacks", 0, ""},
      {CI, HTTP_POST, "/api/v1/deploys", 0, ""},
      {CI, HTTP_GET, "/api/v1/rollbacks", 0, ""},
      {CI, HTTP_POST, "/api/v1/rollbacks/12/approve", 403, "needs approver"},
      {CI, HTTP_POST, "/api/v1/write", 403, "needs writer"},
      {FILEY, HTTP_POST, "/-/reload", 403, "identity \"filey\" (roles: viewer)"},
      {-1, HTTP_GET, "/-/healthy", 0, ""},
      {-1, HTTP_HEAD, "/-/ready", 0, ""},
      {-1, HTTP_POST, "/-/healthy", 401, "authentication required"},
      {-1, HTTP_GET, "/nope", 401, "authentication required"}, /* not 404 */
      {-1, HTTP_GET, "/metrics", 401, "authentication required"},
      {-1, HTTP_POST, "/api/v1/write", 401, "authentication required"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    char h[160], why[200];
    fake_req_t f;
    int n = t[i].who >= 0 ? snprintf(h, sizeof(h), "Bearer %s", g_tok[t[i].who]) : 0;
    mkreq(&f, t[i].method, t[i].path, t[i].who >= 0 ? h : NULL, (size_t)n);
    const rc_identity_t *who = NULL;
    int s = rc_auth_check(g_auth, &f.r, &who, why, sizeof(why));
    if (s != t[i].status || strstr(why, t[i].why) == NULL)
      fail_msg("case %zu: %d '%s', want %d '%s'", i, s, why, t[i].status, t[i].why);
    if (t[i].who >= 0 && (who == NULL || strcmp(who->name, g_names[t[i].who]) != 0))
      fail_msg("case %zu: who is %s", i, who ? who->name : "NULL");
    if (t[i].who < 0 && who != NULL) fail_msg("case %zu: who set without credentials", i);
    free(f.buf);
  }
  /* Admin suffices for every route, whatever it needs. */
  static const struct { int m; const char *p; } all[] = {
      {HTTP_POST, "/api/v1/write"}, {HTTP_POST, "/api/v1/deploys"},
      {HTTP_POST, "/api/v1/rollbacks"}, {HTTP_POST, "/api/v1/rollbacks/7/approve"},
      {HTTP_POST, "/api/v1/rollbacks/7/reject"}, {HTTP_POST, "/-/reload"},
      {HTTP_PUT, "/-/reload"}, {HTTP_GET, "/metrics"}, {HTTP_GET, "/-/healthy"},
      {HTTP_DELETE, "/whatever"}, {HTTP_GET, "/api/v1/query"}};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    char h[160], why[200];
    fake_req_t f;
    int n = snprintf(h, sizeof(h), "Bearer %s", g_tok[ROOT]);
    mkreq(&f, all[i].m, all[i].p, h, (size_t)n);
    if (rc_auth_check(g_auth, &f.r, NULL, why, sizeof(why)) != 0)
      fail_msg("admin on %s: %s", all[i].p, why);
    free(f.buf);
  }
}

static void test_lookup(void **st) {
  (void)st;
  assert_int_equal(rc_auth_count(g_auth), NIDS);
  const rc_identity_t *a = rc_auth_find(g_auth, "alice");
  assert_non_null(a);
  assert_int_equal(a->roles, RC_ROLE_APPROVER | RC_ROLE_VIEWER);
  assert_true(rc_auth_in_group(a, "sre"));
  assert_true(rc_auth_in_group(a, "leads"));
  assert_false(rc_auth_in_group(a, "ops"));
  assert_false(rc_auth_in_group(a, "sr"));
  assert_false(rc_auth_in_group(NULL, "sre"));
  assert_false(rc_auth_in_group(rc_auth_find(g_auth, "prom"), "sre"));
  assert_int_equal(rc_auth_find(g_auth, "root")->roles, RC_ROLE_ADMIN);
  assert_null(rc_auth_find(g_auth, "Alice"));
  assert_null(rc_auth_find(g_auth, NULL));
  assert_null(rc_auth_find(NULL, "alice"));
  char b[64];
  assert_string_equal(rc_auth_role_names(RC_ROLES_READ, b, sizeof(b)),
                      "deployer, approver, admin, viewer");
  assert_string_equal(rc_auth_role_names(RC_ROLE_WRITER, b, sizeof(b)), "writer");
  assert_string_equal(rc_auth_role_names(0, b, sizeof(b)), "none");
  assert_string_equal(rc_auth_role_names(RC_ROLES_READ, b, 9), "deployer"); /* truncated */
  /* Every role config accepts maps to the bit auth.h gives it. */
  static const unsigned bits[RC_CONFIG_NROLES] = {RC_ROLE_WRITER, RC_ROLE_DEPLOYER,
                                                  RC_ROLE_APPROVER, RC_ROLE_ADMIN,
                                                  RC_ROLE_VIEWER};
  for (int i = 0; i < RC_CONFIG_NROLES; i++)
    assert_string_equal(rc_auth_role_names(bits[i], b, sizeof(b)), rc_config_roles[i]);
}

static void test_open_mode(void **st) {
  (void)st;
  rc_auth_t *a = NULL;
  rc_err_t e = {0};
  assert_int_equal(rc_auth_new(NULL, 0, &a, &e), 0);
  assert_non_null(a);
  assert_int_equal(rc_auth_count(a), 0);
  assert_null(rc_auth_find(a, "alice"));
  static const struct { int m; const char *p; const char *h; } t[] = {
      {HTTP_POST, "/api/v1/write", NULL}, {HTTP_POST, "/-/reload", NULL},
      {HTTP_GET, "/nope", NULL}, {HTTP_POST, "/api/v1/write", "Bearer junk"},
      {HTTP_GET, "/metrics", "Unknown scheme"}};
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    fake_req_t f;
    char why[200];
    mkreq(&f, t[i].m, t[i].p, t[i].h, t[i].h ? strlen(t[i].h) : 0);
    const rc_identity_t *who = (const rc_identity_t *)&f;
    assert_int_equal(rc_auth_check(a, &f.r, &who, why, sizeof(why)), 0);
    assert_null(who);
    assert_non_null(strstr(why, "open mode"));
    who = (const rc_identity_t *)&f;
    assert_int_equal(rc_auth_check(NULL, &f.r, &who, why, sizeof(why)), 0);
    assert_null(who);
    free(f.buf);
  }
  rc_auth_free(a);
  rc_auth_free(NULL);
}

/*------------------------------------------------------------------------------------------
 * rc_auth_new's errors
 *----------------------------------------------------------------------------------------*/

static int new_from(const char *yaml, rc_err_t *e) {
  rc_config_t c;
  if (rc_config_parse("n.yml", yaml, strlen(yaml), &c, e) != 0) fail_msg("config: %s", e->msg);
  rc_auth_t *a = (rc_auth_t *)&c;
  int rc = rc_auth_new(c.identities, c.n_identities, &a, e);
  if (rc == 0) {
    assert_int_equal(rc_auth_count(a), c.n_identities);
    rc_auth_free(a);
  } else {
    assert_null(a);
  }
  rc_config_free(&c);
  return rc;
}

static void test_new_errors(void **st) {
  (void)st;
  char tok[49], tok2[49], path[128], big[2100], y[1024];
  gen_token(tok, 24);
  gen_token(tok2, 24);
  rc_err_t e = {0};
  unsetenv("RC_TEST_UNSET");
  assert_int_equal(new_from("identities:\n  - {name: u1, roles: [viewer], token_env: "
                            "RC_TEST_UNSET}\n", &e), RC_EINVAL);
  assert_string_equal(e.msg, "identity u1: environment variable RC_TEST_UNSET is not set");
  setenv("RC_TEST_EMPTY", "", 1);
  assert_int_equal(new_from("identities:\n  - {name: u2, roles: [viewer], token_env: "
                            "RC_TEST_EMPTY}\n", &e), RC_EINVAL);
  assert_string_equal(e.msg, "identity u2: environment variable RC_TEST_EMPTY is empty");
  /* 16 bytes is the shortest token. */
  tok[15] = '\0';
  setenv("RC_TEST_SHORT", tok, 1);
  assert_int_equal(new_from("identities:\n  - {name: u3, roles: [viewer], token_env: "
                            "RC_TEST_SHORT}\n", &e), RC_EINVAL);
  assert_string_equal(e.msg, "identity u3: the token is shorter than 16 bytes");
  gen_token(tok, 8);
  setenv("RC_TEST_SHORT", tok, 1);
  assert_int_equal(new_from("identities:\n  - {name: u3, roles: [viewer], token_env: "
                            "RC_TEST_SHORT}\n", &e), 0);
  /* A token that could not travel in a header. */
  gen_token(tok, 24);
  tok[10] = ' ';
  setenv("RC_TEST_SPACE", tok, 1);
  assert_int_equal(new_from("identities:\n  - {name: u4, roles: [viewer], token_env: "
                            "RC_TEST_SPACE}\n", &e), RC_EINVAL);
  assert_non_null(strstr(e.msg, "identity u4: the token holds a space or control character"));
  /* Files: missing, empty, too long. */
  snprintf(y, sizeof(y), "identities:\n  - {name: f1, roles: [viewer], token_file: '%s/no'}\n",
           g_dir);
  assert_int_equal(new_from(y, &e), RC_EIO);
  assert_non_null(strstr(e.msg, "identity f1: token_file "));
  assert_non_null(strstr(e.msg, "/no: No such file or directory"));
  snprintf(path, sizeof(path), "%s/empty", g_dir);
  write_file(path, "\n \n", 3);
  snprintf(y, sizeof(y), "identities:\n  - {name: f2, roles: [viewer], token_file: '%s'}\n",
           path);
  assert_int_equal(new_from(y, &e), RC_EIO);
  assert_non_null(strstr(e.msg, "identity f2: token_file "));
  assert_non_null(strstr(e.msg, " is empty"));
  memset(big, 'a', sizeof(big));
  write_file(path, big, sizeof(big));
  assert_int_equal(new_from(y, &e), RC_EINVAL);
  assert_non_null(strstr(e.msg, "is longer than 1024 bytes"));
  write_file(path, big, RC_AUTH_TOKEN_MAX); /* the longest token */
  assert_int_equal(new_from(y, &e), 0);
  gen_token(tok, 4); /* 8 bytes */
  write_file(path, tok, strlen(tok));
  assert_int_equal(new_from(y, &e), RC_EINVAL);
  assert_string_equal(e.msg, "identity f2: the token is shorter than 16 bytes");
  /* The same token twice, once from a variable and once from a file ending in a newline. */
  gen_token(tok, 24);
  setenv("RC_TEST_DUP_A", tok, 1);
  setenv("RC_TEST_DUP_B", tok2, 1);
  char line[64];
  int n = snprintf(line, sizeof(line), "%s\n", tok);
  write_file(path, line, (size_t)n);
  snprintf(y, sizeof(y),
           "identities:\n  - {name: d1, roles: [viewer], token_env: RC_TEST_DUP_A}\n"
           "  - {name: d2, roles: [writer], token_env: RC_TEST_DUP_B}\n"
           "  - {name: d3, roles: [admin], token_file: '%s'}\n",
           path);
  assert_int_equal(new_from(y, &e), RC_EINVAL);
  assert_string_equal(e.msg, "identities d1 and d3 have the same token");
  setenv("RC_TEST_DUP_B", tok, 1);
  assert_int_equal(new_from("identities:\n  - {name: d1, roles: [viewer], token_env: "
                            "RC_TEST_DUP_A}\n  - {name: d2, roles: [viewer], token_env: "
                            "RC_TEST_DUP_B}\n", &e), RC_EINVAL);
  assert_string_equal(e.msg, "identities d1 and d2 have the same token");
  unlink(path);
  /* A config built by hand rather than parsed is checked too. */
  char *roles[] = {"root"}, *ok_roles[] = {"viewer"};
  setenv("RC_TEST_DUP_B", tok2, 1);
  rc_identity_cfg_t c[2] = {
      {.name = "h1", .roles = roles, .nroles = 1, .token_env = "RC_TEST_DUP_A"},
      {.name = "h1", .roles = ok_roles, .nroles = 1, .token_env = "RC_TEST_DUP_B"}};
  rc_auth_t *a = NULL;
  assert_int_equal(rc_auth_new(c, 1, &a, &e), RC_EINVAL);
  assert_string_equal(e.msg, "identity h1: unknown role root");
  c[0].roles = ok_roles;
  assert_int_equal(rc_auth_new(c, 2, &a, &e), RC_EINVAL);
  assert_string_equal(e.msg, "two identities are named h1");
  c[1].name = "h2";
  c[1].token_env = NULL;
  assert_int_equal(rc_auth_new(c, 2, &a, &e), RC_EINVAL);
  assert_string_equal(e.msg, "identity h2: needs token_env or token_file");
  c[1].nroles = 0;
  assert_int_equal(rc_auth_new(c, 2, &a, &e), RC_EINVAL);
  assert_string_equal(e.msg, "identity h2: no roles");
  assert_null(a);
}

/*------------------------------------------------------------------------------------------
 * No token is kept
 *----------------------------------------------------------------------------------------*/

static int contains(const void *hay, size_t n, const char *needle, size_t nn) {
  return nn <= n && memmem(hay, n, needle, nn) != NULL;
}

static void test_no_token_copy(void **st) {
  (void)st;
  for (int i = 0; i < NIDS; i++) {
    const rc_identity_t *id = rc_auth_find(g_auth, g_names[i]);
    assert_non_null(id);
    /* The hash is SHA-256 of the token (computed here independently of auth.c's path). */
    unsigned char want[32];
    unsigned int wl = 0;
    assert_int_equal(EVP_Digest(g_tok[i], strlen(g_tok[i]), want, &wl, EVP_sha256(), NULL), 1);
    assert_memory_equal(id->token_hash, want, 32);
    /* Neither the token nor any 8 bytes of it, as text or as raw bytes, anywhere we can see. */
    size_t tl = strlen(g_tok[i]);
    unsigned char rawtok[64];
    for (size_t k = 0; k + 1 < tl; k += 2) {
      unsigned v;
      sscanf(g_tok[i] + k, "%2x", &v);
      rawtok[k / 2] = (unsigned char)v;
    }
    for (size_t off = 0; off + 8 <= tl; off++) {
      assert_false(contains(id, sizeof(*id), g_tok[i] + off, 8));
      assert_false(contains(id->name, strlen(id->name), g_tok[i] + off, 8));
      for (size_t g = 0; g < id->ngroups; g++)
        assert_false(contains(id->groups[g], strlen(id->groups[g]), g_tok[i] + off, 8));
    }
    for (size_t off = 0; off + 8 <= tl / 2; off++)
      assert_false(contains(id, sizeof(*id), (const char *)rawtok + off, 8));
  }
}

/*------------------------------------------------------------------------------------------
 * Listen addresses
 *----------------------------------------------------------------------------------------*/

static void test_loopback(void **st) {
  (void)st;
  static const struct { const char *a; int want; } t[] = {
      {"127.0.0.1:9090", 1},
      {"127.0.0.1:0", 1},
      {"127.1.2.3:80", 1},
      {"127.255.255.255:80", 1},
      {"localhost:9090", 1},
      {"[::1]:9090", 1},
      {"::1:9090", 1}, /* http.c reads the last ':' as the port's */
      {"[::ffff:127.0.0.1]:80", 1},
      {":9090", 0},
      {"0.0.0.0:9090", 0},
      {"[::]:9090", 0},
      {"[::2]:9090", 0},
      {"[::ffff:10.0.0.1]:80", 0},
      {"10.0.0.1:9090", 0},
      {"126.255.255.255:80", 0},
      {"128.0.0.1:80", 0},
      {"192.168.1.1:80", 0},
      {"localhost.example.com:80", 0},
      {"127.0.0.1.nip.io:80", 0},
      {"LOCALHOST:80", 0}, /* http.c does not listen on it either */
      {"127.0.0.1", 0},    /* no port: not an address http.c accepts */
      {"127.0.0.1:", 0},
      {"127.0.0.1:99999", 0},
      {"[::1]", 0},
      {"", 0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    if (rc_auth_addr_is_loopback(t[i].a) != t[i].want)
      fail_msg("case %zu: %s should give %d", i, t[i].a, t[i].want);
  assert_int_equal(rc_auth_addr_is_loopback(NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_headers),     cmocka_unit_test(test_header_size),
      cmocka_unit_test(test_required),    cmocka_unit_test(test_roles),
      cmocka_unit_test(test_lookup),      cmocka_unit_test(test_open_mode),
      cmocka_unit_test(test_new_errors),  cmocka_unit_test(test_no_token_copy),
      cmocka_unit_test(test_loopback),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
