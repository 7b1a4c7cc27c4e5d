/* auth.c: identities, their token hashes, the Authorization header and the route table;
 * see auth.h.
 *
 * Secrets: a token exists in plain text only while it is read at startup (then it is hashed
 * and the copy wiped) and, per request, in the client's header and the decoded Basic
 * credentials (wiped after hashing). Comparison is against SHA-256 hashes with CRYPTO_memcmp
 * over every identity, with no early exit, so neither which identity matched nor how much of
 * a token was right shows in the time taken. The Basic decoder below also avoids branches
 * and table lookups on the bytes it decodes, since they are the password.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rc_auth {
  rc_identity_t *ids;
  size_t n;
};

/*------------------------------------------------------------------------------------------
 * Building the identities
 *----------------------------------------------------------------------------------------*/

static int sha256(const void *p, size_t n, unsigned char out[32]) {
  unsigned int len = 0;
  return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

/* Reads token_file into buf (cap bytes), trailing whitespace stripped. read(2) rather than
 * stdio, so that no library buffer keeps a copy we cannot wipe. */
static int read_token_file(const rc_identity_cfg_t *c, unsigned char *buf, size_t cap,
                           size_t *len, rc_err_t *err) {
  int fd = open(c->token_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return rc_err_set(err, RC_EIO, "identity %s: token_file %s: %s", c->name, c->token_file,
                      strerror(errno));
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      return rc_err_set(err, RC_EIO, "identity %s: token_file %s: %s", c->name, c->token_file,
                        strerror(e));
    }
    if (r == 0) break;
    n += (size_t)r;
    if (n == cap) break;
  }
  close(fd);
  if (n == cap)
    return rc_err_set(err, RC_EINVAL, "identity %s: token_file %s is longer than %d bytes",
                      c->name, c->token_file, RC_AUTH_TOKEN_MAX);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                   buf[n - 1] == '\t' || buf[n - 1] == '\v' || buf[n - 1] == '\f'))
    n--;
  if (n == 0)
    return rc_err_set(err, RC_EIO, "identity %s: token_file %s is empty", c->name,
                      c->token_file);
  *len = n;
  return 0;
}

/* Reads one identity's token and stores its hash; the plain text is wiped either way. */
static int load_token(const rc_identity_cfg_t *c, unsigned char hash[32], rc_err_t *err) {
  unsigned char buf[RC_AUTH_TOKEN_MAX + 2];
  const unsigned char *tok;
  size_t n = 0;
  int rc = 0;
  if (c->token_env != NULL) {
    const char *v = getenv(c->token_env);
    if (v == NULL || *v == '\0')
      return rc_err_set(err, RC_EINVAL, "identity %s: environment variable %s is %s", c->name,
                        c->token_env, v == NULL ? "not set" : "empty");
    tok = (const unsigned char *)v;
    n = strlen(v);
  } else if (c->token_file != NULL) {
    rc = read_token_file(c, buf, sizeof(buf), &n, err);
    tok = buf;
  } else {
    return rc_err_set(err, RC_EINVAL, "identity %s: needs token_env or token_file", c->name);
  }
  if (rc == 0 && n < RC_AUTH_TOKEN_MIN)
    rc = rc_err_set(err, RC_EINVAL, "identity %s: the token is shorter than %d bytes", c->name,
                    RC_AUTH_TOKEN_MIN);
  if (rc == 0 && n > RC_AUTH_TOKEN_MAX)
    rc = rc_err_set(err, RC_EINVAL, "identity %s: the token is longer than %d bytes", c->name,
                    RC_AUTH_TOKEN_MAX);
  for (size_t i = 0; rc == 0 && i < n; i++)
    if (tok[i] <= ' ' || tok[i] == 0x7f)
      rc = rc_err_set(err, RC_EINVAL, "identity %s: the token holds a space or control "
                                      "character (it has to fit in an HTTP header)", c->name);
  if (rc == 0 && sha256(tok, n, hash) != 0)
    rc = rc_err_set(err, RC_EIO, "identity %s: SHA-256 failed", c->name);
  OPENSSL_cleanse(buf, sizeof(buf));
  return rc;
}

static void free_identity(rc_identity_t *id) {
  free(id->name);
  for (size_t k = 0; k < id->ngroups; k++) free(id->groups[k]);
  free(id->groups);
  OPENSSL_cleanse(id->token_hash, sizeof(id->token_hash));
}

void rc_auth_free(rc_auth_t *a) {
  if (a == NULL) return;
  for (size_t i = 0; i < a->n; i++) free_identity(&a->ids[i]);
  free(a->ids);
  free(a);
}

static int build_identity(const rc_identity_cfg_t *c, rc_identity_t *id, rc_err_t *err) {
  if (c->name == NULL || c->name[0] == '\0')
    return rc_err_set(err, RC_EINVAL, "an identity has no name");
  for (size_t k = 0; k < c->nroles; k++) {
    unsigned bit = 0;
    for (int i = 0; i < RC_CONFIG_NROLES; i++)
      if (strcmp(c->roles[k], rc_config_roles[i]) == 0) bit = 1u << i;
    if (bit == 0)
      return rc_err_set(err, RC_EINVAL, "identity %s: unknown role %.40s", c->name,
                        c->roles[k]);
    id->roles |= bit;
  }
  if (id->roles == 0) return rc_err_set(err, RC_EINVAL, "identity %s: no roles", c->name);
  if ((id->name = strdup(c->name)) == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  if (c->ngroups > 0 && (id->groups = calloc(c->ngroups, sizeof(char *))) == NULL)
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  for (; id->ngroups < c->ngroups; id->ngroups++)
    if ((id->groups[id->ngroups] = strdup(c->groups[id->ngroups])) == NULL)
      return rc_err_set(err, RC_ENOMEM, "out of memory");
  return load_token(c, id->token_hash, err);
}

int rc_auth_new(const rc_identity_cfg_t *ids, size_t n, rc_auth_t **out, rc_err_t *err) {
  *out = NULL;
  rc_auth_t *a = calloc(1, sizeof(*a));
  if (a == NULL || (n > 0 && (a->ids = calloc(n, sizeof(rc_identity_t))) == NULL)) {
    free(a);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    a->n = i + 1; /* so that rc_auth_free sees a half-built entry */
    rc = build_identity(&ids[i], &a->ids[i], err);
    for (size_t j = 0; rc == 0 && j < i; j++) {
      if (strcmp(a->ids[j].name, a->ids[i].name) == 0)
        rc = rc_err_set(err, RC_EINVAL, "two identities are named %s", a->ids[i].name);
      else if (memcmp(a->ids[j].token_hash, a->ids[i].token_hash, 32) == 0)
        rc = rc_err_set(err, RC_EINVAL, "identities %s and %s have the same token",
                        a->ids[j].name, a->ids[i].name);
    }
  }
  if (rc != 0) {
    rc_auth_free(a);
    return rc;
  }
  *out = a;
  return 0;
}

size_t rc_auth_count(const rc_auth_t *a) { return a ? a->n : 0; }

const rc_identity_t *rc_auth_find(const rc_auth_t *a, const char *name) {
  for (size_t i = 0; a != NULL && name != NULL && i < a->n; i++)
    if (strcmp(a->ids[i].name, name) == 0) return &a->ids[i];
  return NULL;
}

int rc_auth_in_group(const rc_identity_t *id, const char *group) {
  for (size_t i = 0; id != NULL && group != NULL && i < id->ngroups; i++)
    if (strcmp(id->groups[i], group) == 0) return 1;
  return 0;
}

const char *rc_auth_role_names(unsigned mask, char *out, size_t cap) {
  size_t off = 0;
  if (cap == 0) return out;
  out[0] = '\0';
  for (int i = 0; i < RC_CONFIG_NROLES; i++) {
    if (!(mask & (1u << i))) continue;
    int w = snprintf(out + off, cap - off, "%s%s", off ? ", " : "", rc_config_roles[i]);
    if (w < 0 || (size_t)w >= cap - off) return out;
    off += (size_t)w;
  }
  if (off == 0) snprintf(out, cap, "none");
  return out;
}

/*------------------------------------------------------------------------------------------
 * Routes
 *----------------------------------------------------------------------------------------*/

#define M(m) (UINT64_C(1) << (m))

/* What each request needs, first match wins; anything not listed (any other path, or a listed
 * path with another method, which the handler answers 405) needs RC_ROLES_READ, so an
 * anonymous probe of an unknown path gets 401, not 404. In a pattern, '*' is one non-empty
 * path segment. Admin suffices everywhere (rc_auth_check adds it). */
static const struct route {
  uint64_t methods;
  const char *path;
  unsigned roles;
} routes[] = {
    /* Liveness and readiness: load balancers and kubelets probe without credentials. */
    {M(HTTP_GET) | M(HTTP_HEAD), "/-/healthy", 0},
    {M(HTTP_GET) | M(HTTP_HEAD), "/-/ready", 0},
    /* The status page's static shell (ui.h): it holds no data, and a browser cannot send the
     * token with a navigation — the page asks for it, then sends it with every API call. */
    {M(HTTP_GET) | M(HTTP_HEAD), "/", 0},
    {M(HTTP_GET) | M(HTTP_HEAD), "/ui/*", 0},
    /* Prometheus remote write: the only thing a writer may do. */
    {M(HTTP_POST), "/api/v1/write", RC_ROLE_WRITER},
    /* A deploy pipeline announcing a rollout. */
    {M(HTTP_POST), "/api/v1/deploys", RC_ROLE_DEPLOYER},
    /* A manual rollback request, from the same pipelines (this exact path only). */
    {M(HTTP_POST), "/api/v1/rollbacks", RC_ROLE_DEPLOYER},
    /* Votes on a pending rollback; the segment is the rollback's id. */
    {M(HTTP_POST), "/api/v1/rollbacks/*/approve", RC_ROLE_APPROVER},
    {M(HTTP_POST), "/api/v1/rollbacks/*/reject", RC_ROLE_APPROVER},
    /* Reloading config and rules changes who may act and what fires. */
    {M(HTTP_POST) | M(HTTP_PUT), "/-/reload", RC_ROLE_ADMIN},
};

static int path_match(const char *pat, const char *p, size_t n) {
  size_t i = 0;
  for (; *pat != '\0'; pat++) {
    if (*pat == '*') {
      size_t start = i;
      while (i < n && p[i] != '/') i++;
      if (i == start) return 0;
    } else if (i >= n || p[i++] != *pat) {
      return 0;
    }
  }
  return i == n;
}

unsigned rc_auth_required(int method, const char *path, size_t path_len) {
  if (method < 0 || method > 63 || path == NULL) return RC_ROLES_READ;
  for (size_t i = 0; i < RC_ARRAY_SIZE(routes); i++)
    if ((routes[i].methods & M(method)) && path_match(routes[i].path, path, path_len))
      return routes[i].roles;
  return RC_ROLES_READ;
}

/*------------------------------------------------------------------------------------------
 * Credentials
 *----------------------------------------------------------------------------------------*/

/* All ones when lo <= c <= hi, else 0 (c, lo, hi < 2^31), without a branch. */
static uint32_t in_range(uint32_t c, uint32_t lo, uint32_t hi) {
  return 0u - ((((c - lo) | (hi - c)) >> 31) ^ 1u);
}

/* One base64 character (RFC 4648 section 4 alphabet) to its 6 bits; *bad gets all ones
 * when it is not one. */
static uint32_t b64_char(unsigned char ch, uint32_t *bad) {
  uint32_t c = ch;
  uint32_t up = in_range(c, 'A', 'Z'), lo = in_range(c, 'a', 'z'), dg = in_range(c, '0', '9');
  uint32_t pl = in_range(c, '+', '+'), sl = in_range(c, '/', '/');
  *bad |= ~(up | lo | dg | pl | sl);
  return (up & (c - 'A')) | (lo & (c - 'a' + 26)) | (dg & (c - '0' + 52)) | (pl & 62u) |
         (sl & 63u);
}

/* Decodes standard base64 into out (cap >= 3 * n / 4 + 3). Padding is optional, but when
 * present it must complete the last quantum; '=' elsewhere, a lone last character and
 * non-zero unused bits (a non-canonical encoding) are errors. Returns the length or -1. */
static long b64_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
  size_t pad = 0;
  while (pad < n && in[n - 1 - pad] == '=') pad++;
  if (pad > 2 || (pad > 0 && n % 4 != 0)) return -1;
  size_t d = n - pad, rem = d % 4, o = 0;
  if (d == 0 || rem == 1 || d / 4 * 3 + 2 > cap) return -1;
  uint32_t bad = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    uint32_t v = b64_char((unsigned char)in[i], &bad) << 18 |
                 b64_char((unsigned char)in[i + 1], &bad) << 12 |
                 b64_char((unsigned char)in[i + 2], &bad) << 6 |
                 b64_char((unsigned char)in[i + 3], &bad);
    out[o++] = (unsigned char)(v >> 16);
    out[o++] = (unsigned char)(v >> 8);
    out[o++] = (unsigned char)v;
  }
  if (rem >= 2) {
    uint32_t v = b64_char((unsigned char)in[i], &bad) << 18 |
                 b64_char((unsigned char)in[i + 1], &bad) << 12;
    if (rem == 3) v |= b64_char((unsigned char)in[i + 2], &bad) << 6;
    bad |= rem == 2 ? (v & 0xffffu) : (v & 0xffu); /* unused bits must be zero */
    out[o++] = (unsigned char)(v >> 16);
    if (rem == 3) out[o++] = (unsigned char)(v >> 8);
  }
  return bad ? -1 : (long)o;
}

static int ci_eq(const char *a, size_t n, const char *lit) {
  size_t m = strlen(lit);
  if (n != m) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)lit[i];
    if (x >= 'A' && x <= 'Z') x = (unsigned char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = (unsigned char)(y - 'A' + 'a');
    if (x != y) return 0;
  }
  return 1;
}

/* The identity whose token hashes to the presented token's hash (and, with user != NULL,
 * whose name is user), or NULL. Every identity is compared, the match is remembered without
 * a branch, so the time depends only on the number of identities and their name lengths. */
static const rc_identity_t *match(const rc_auth_t *a, const void *tok, size_t tn,
                                  const char *user, size_t un) {
  unsigned char h[32];
  if (sha256(tok, tn, h) != 0) return NULL;
  size_t found = 0, hit = 0;
  size_t basic = user != NULL;
  for (size_t i = 0; i < a->n; i++) {
    const rc_identity_t *id = &a->ids[i];
    size_t nl = strlen(id->name);
    size_t eq = (size_t)(CRYPTO_memcmp(h, id->token_hash, 32) == 0);
    size_t name_eq = (size_t)(nl == un) &
                     (size_t)(CRYPTO_memcmp(basic ? user : "", id->name,
                                            basic ? (nl < un ? nl : un) : 0) == 0);
    eq &= name_eq | (basic ^ 1);
    size_t m = (size_t)0 - eq;
    found = (found & ~m) | (i & m);
    hit |= eq;
  }
  OPENSSL_cleanse(h, sizeof(h));
  return hit ? &a->ids[found] : NULL;
}

static int deny(int status, char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int deny(int status, char *why, size_t cap, const char *fmt, ...) {
  if (why != NULL && cap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
  }
  return status;
}

int rc_auth_check(const rc_auth_t *a, const rc_http_request_t *req, const rc_identity_t **who,
                  char *why, size_t cap) {
  const rc_identity_t *none = NULL;
  if (who == NULL) who = &none;
  *who = NULL;
  if (a == NULL || a->n == 0) return deny(0, why, cap, "open mode: no identities configured");
  unsigned need = rc_auth_required(req->method, req->path, req->path_len);
  if (need == 0) return deny(0, why, cap, "no authentication needed");

  size_t hl = 0;
  const char *h = rc_http_header(req, "Authorization", &hl);
  if (h == NULL)
    return deny(401, why, cap, "authentication required: send Authorization: Bearer <token>");
  if (hl > RC_AUTH_MAX_HEADER)
    return deny(401, why, cap, "Authorization header longer than %d bytes", RC_AUTH_MAX_HEADER);
  if (hl == 0)
    return deny(401, why, cap, "empty Authorization header: send Authorization: Bearer <token>");
  /* Authorization: <scheme> SP+ <credentials>   (RFC 7235 section 2.1; the scheme is
   *                ^^^^^^^^ case-insensitive)      never echoed: it may be a bare token. */
  size_t sl = 0;
  while (sl < hl && h[sl] != ' ' && h[sl] != '\t') sl++;
  size_t off = sl;
  while (off < hl && (h[off] == ' ' || h[off] == '\t')) off++;
  const char *cred = h + off;
  size_t cn = hl - off;
  const rc_identity_t *id = NULL;
  int basic = 0;
  if (ci_eq(h, sl, "Bearer")) {
    if (cn == 0) return deny(401, why, cap, "malformed Bearer credentials: no token");
    id = match(a, cred, cn, NULL, 0);
  } else if (ci_eq(h, sl, "Basic")) {
    /* Basic base64(user ":" password): the user is the identity's name (which holds no ':'),
     * the password its token (RFC 7617). */
    unsigned char dec[RC_AUTH_MAX_HEADER / 4 * 3 + 4];
    basic = 1;
    if (cn == 0) return deny(401, why, cap, "malformed Basic credentials: nothing after Basic");
    long dn = b64_decode(cred, cn, dec, sizeof(dec));
    const unsigned char *colon = dn > 0 ? memchr(dec, ':', (size_t)dn) : NULL;
    int rc = 0;
    if (dn < 0) {
      rc = deny(401, why, cap, "malformed Basic credentials: not base64");
    } else if (colon == NULL) {
      rc = deny(401, why, cap, "malformed Basic credentials: no ':' between user and password");
    } else if (colon + 1 == dec + dn) {
      rc = deny(401, why, cap, "malformed Basic credentials: empty password");
    } else {
      size_t un = (size_t)(colon - dec);
      id = match(a, colon + 1, (size_t)(dec + dn - colon - 1), (const char *)dec, un);
    }
    OPENSSL_cleanse(dec, sizeof(dec));
    if (rc != 0) return rc;
  } else {
    return deny(401, why, cap, "unsupported authorization scheme: use Bearer or Basic");
  }
  if (id == NULL)
    return basic ? deny(401, why, cap, "invalid Basic credentials: the user must be an "
                                       "identity's name and the password its token")
                 : deny(401, why, cap, "invalid token");
  *who = id;
  char have[64], want[64];
  rc_auth_role_names(id->roles, have, sizeof(have));
  if (id->roles & (need | RC_ROLE_ADMIN))
    return deny(0, why, cap, "identity \"%s\" (roles: %s)", id->name, have);
  rc_auth_role_names(need, want, sizeof(want));
  return deny(403, why, cap, "identity \"%s\" (roles: %s) may not do this: needs %s%s",
              id->name, have, need & (need - 1) ? "one of " : "", want);
}

/*------------------------------------------------------------------------------------------
 * Listen addresses
 *----------------------------------------------------------------------------------------*/

int rc_auth_addr_is_loopback(const char *listen_addr) {
  struct sockaddr_storage ss;
  if (listen_addr == NULL || rc_http_parse_addr(listen_addr, &ss, NULL) != 0) return 0;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
    return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
  }
  if (ss.ss_family == AF_INET6) {
    const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&ss)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(a6)) return 1;
    return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127; /* ::ffff:127.x.y.z */
  }
  return 0;
}
