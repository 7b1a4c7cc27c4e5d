/* auth.h: who is calling (identities and their API tokens) and what they may do (roles).
 * Configured under identities: (config.h); this module reads each identity's token from its
 * environment variable or file, keeps only the token's SHA-256 and decides single requests:
 * authenticate the Authorization header (Bearer or Basic, as Prometheus' remote_write sends
 * either), then check the route table (rc_auth_required) against the identity's roles.
 *
 * It does not answer requests: the caller turns 401/403 into a response (with
 * RC_AUTH_CHALLENGE as WWW-Authenticate on 401), logs, and writes the audit trail.
 * With no identities configured the auth is open: every request is allowed and the caller
 * should warn, louder when the listen address is not loopback (rc_auth_addr_is_loopback).
 *
 * Threads: rc_auth_t is immutable after rc_auth_new, so any thread may read it; a config
 * reload builds a new one and swaps it, like the rule set.
 * Memory: rc_auth_t owns its identities; rc_identity_t pointers are borrowed from it and
 * valid until rc_auth_free.
 */
#ifndef RC_AUTH_H
#define RC_AUTH_H

#include <stddef.h>

#include "config.h"
#include "http.h"
#include "rc.h"

/* Bit i is the role rc_config_roles[i] names. */
enum { RC_ROLE_WRITER = 1, RC_ROLE_DEPLOYER = 2, RC_ROLE_APPROVER = 4, RC_ROLE_ADMIN = 8,
       RC_ROLE_VIEWER = 16 };
/* Reading state (metrics, rules, status, deploys): any role but writer, which is a
 * Prometheus server and needs nothing but remote write. */
#define RC_ROLES_READ (RC_ROLE_VIEWER | RC_ROLE_DEPLOYER | RC_ROLE_APPROVER | RC_ROLE_ADMIN)

/* Tokens are 16..RC_AUTH_TOKEN_MAX bytes; an Authorization header over
 * RC_AUTH_MAX_HEADER bytes is refused unread. */
#define RC_AUTH_TOKEN_MIN 16
#define RC_AUTH_TOKEN_MAX 1024
#define RC_AUTH_MAX_HEADER 4096

/* The WWW-Authenticate value a 401 answer should carry (RFC 7235: a list of challenges). */
#define RC_AUTH_CHALLENGE "Bearer realm=\"ripcord\", Basic realm=\"ripcord\""

typedef struct rc_identity {
  char *name;
  unsigned roles;               /* RC_ROLE_* mask as configured */
  char **groups;
  size_t ngroups;
  unsigned char token_hash[32]; /* SHA-256 of the token; the token itself is never kept */
} rc_identity_t;

typedef struct rc_auth rc_auth_t;

/* Reads every identity's token (env var or file, trailing whitespace of a file stripped),
 * keeps only its SHA-256 and wipes the plain text (OPENSSL_cleanse). A token is 16 to 1024
 * bytes without spaces or control characters (it has to travel in an HTTP header). Errors
 * name the identity: variable unset or empty, file unreadable or empty (RC_EIO), token too
 * short or too long, two identities with the same token, an unknown role (RC_EINVAL).
 * n == 0 gives an open auth (no identities: everything allowed; the caller logs the warning).
 * ids is only read; *out is owned by the caller (rc_auth_free). */
int rc_auth_new(const rc_identity_cfg_t *ids, size_t n, rc_auth_t **out, rc_err_t *err);
/* Wipes the token hashes and frees everything. NULL is a no-op. */
void rc_auth_free(rc_auth_t *a);
/* The number of identities; 0 means open mode. */
size_t rc_auth_count(const rc_auth_t *a);
/* The identity called name (borrowed), or NULL. */
const rc_identity_t *rc_auth_find(const rc_auth_t *a, const char *name);
/* 1 when id (may be NULL: 0) is in group. */
int rc_auth_in_group(const rc_identity_t *id, const char *group);
/* The names of the roles in mask, ", "-separated ("none" for 0), into out (always
 * NUL-terminated when cap > 0). Returns out. */
const char *rc_auth_role_names(unsigned mask, char *out, size_t cap);

/* The roles a request needs (any one of the mask is enough; admin always suffices); 0 means
 * no authentication at all (health probes). method is http_parser's enum http_method; path
 * is not NUL-terminated and is compared exactly (no decoding, as api.c routes). */
unsigned rc_auth_required(int method, const char *path, size_t path_len);

/* Decides one request. Returns 0 (go on; *who is the identity, or NULL in open mode and on
 * routes that need no authentication), 401 (no or bad credentials; *who is NULL) or 403
 * (authenticated, but no role that may act; *who is the identity, for the log), with a
 * one-line reason in why (no trailing newline, never containing the credentials). Adds
 * nothing to the response itself. Takes the same time whichever identity matches and
 * whatever the token is (up to its length). */
int rc_auth_check(const rc_auth_t *a, const rc_http_request_t *req, const rc_identity_t **who,
                  char *why, size_t cap);

/* 1 when a listen address ("host:port", "[v6]:port", ":port") binds only to loopback
 * (127.0.0.0/8, ::1, localhost); ":port", "0.0.0.0", "[::]", any other host and addresses
 * that do not parse (rc_http_parse_addr) give 0. */
int rc_auth_addr_is_loopback(const char *listen_addr);

#endif
