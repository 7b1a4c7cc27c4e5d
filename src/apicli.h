/* apicli.h: the CLI side of ripcord's HTTP API — what `ripcord previous-version`,
 * `ripcord rollback`, `ripcord approve`, `ripcord reject` and `ripcord services` share: one blocking libcurl
 * request to a running ripcord (a CLI, not the daemon), with the caller's API token.
 *
 * The token comes from the environment (RIPCORD_TOKEN) or a file (--token-file), never from a
 * flag: command lines are visible to every user of the machine (ps, /proc). It is sent as
 * `Authorization: Bearer`; with neither, no header is sent (a ripcord without identities).
 *
 *   ripcord rollback --service S --environment E --reason R   request a rollback to the
 *                                                               previous version (deployer)
 *   ripcord approve ID [--comment C]                           vote on a request (approver)
 *   ripcord reject ID [--comment C]
 *   ripcord services                                           every target with its current
 *                                                               and previous version (reader)
 *
 * Each also takes --url (default http://127.0.0.1:9095) and --token-file. Exit codes: 0 done;
 * 1 refused by the server or the server unreachable (reason on stderr, the server's own
 * one-line reason when it gave one); 2 bad usage.
 */
#ifndef RC_APICLI_H
#define RC_APICLI_H

#include <stddef.h>

#include "buf.h"

/* Options every API command takes. */
typedef struct rc_apicli {
  const char *url;        /* base URL */
  const char *token_file; /* NULL: RIPCORD_TOKEN, else no token */
} rc_apicli_t;

/* If argv[*i] is --url or --token-file (either form), consumes it (and its value) and returns
 * 1; 0 when it is another argument; -1 when its value is missing. */
int rc_apicli_common_arg(rc_apicli_t *o, int argc, char **argv, int *i);

/* One request: method "GET"/"POST", path (already escaped), JSON body or NULL. On return
 * *status is the HTTP status (0 when no answer) and out holds the body (NUL-terminated).
 * Returns 0 when an answer came, else -1 with the reason printed on stderr. */
int rc_apicli_request(const rc_apicli_t *o, const char *method, const char *path,
                      const char *body, long *status, rc_buf_t *out);

/* Percent-encodes s for a path segment into out (NUL-terminated). Returns 0, or -1 when it
 * does not fit. */
int rc_apicli_escape(const char *s, char *out, size_t cap);

/* Prints the server's refusal on stderr: its JSON "error" when it has one, else the body. */
void rc_apicli_print_error(const char *what, long status, const rc_buf_t *body);

int rc_apicli_rollback_main(int argc, char **argv);
/* argv[0] is "approve" or "reject". */
int rc_apicli_vote_main(int argc, char **argv);
/* GET /api/v1/services as a tab-separated table on stdout. */
int rc_apicli_services_main(int argc, char **argv);

#endif
