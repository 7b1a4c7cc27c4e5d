/* audit.h: the tamper-evident audit trail (issue 6) — every security-relevant fact (rule
 * reloads, deploys recorded, triggers firing and resolving, rollback requests, approvals and
 * rejections, deliveries) appended to the `audit` table of the embedded store (db.h), each row
 * carrying a SHA-256 hash chained to the previous row's, plus the anchor file that names the
 * newest committed row, the read endpoint GET /api/v1/audit and `ripcord audit verify|export`.
 *
 * What the chain proves. Editing a row breaks its own hash; deleting, inserting or reordering
 * rows breaks the link to the next row; dropping the newest rows leaves the chain intact, which
 * is what the anchor is for: `audit.head` names the newest row (seq and hash) and is rewritten
 * only after a commit, so a table that ends before the anchor, or whose row differs from it,
 * was truncated or rewritten. An anchor copied elsewhere (a ticket, another system) and passed
 * to `verify --head SEQ:HASH` is checked the same way and cannot be rewritten along with the
 * database by someone who holds only this machine.
 *
 * The hash of row seq (an external verifier can recompute it from an export):
 *
 *   hash = lowercase hex of SHA-256( prev_hash                       64 hex digits, as stored
 *                                    "<len>:" seq      (decimal)
 *                                    "<len>:" at       (decimal ms since the epoch)
 *                                    "<len>:" actor
 *                                    "<len>:" action
 *                                    "<len>:" subject
 *                                    "<len>:" detail ) (the stored compact JSON text)
 *
 * where <len> is the decimal byte length of the field that follows, so no field boundary is
 * ambiguous ("ab"+"c" and "a"+"bc" hash differently). Row 1's prev_hash is 64 zeros.
 *
 * Threads: everything here runs on the thread that owns the database connection (the loop
 * thread). Memory: rc_audit_t borrows the rc_db_t and must be closed before it. While it is
 * open nothing else may call sqlite3_wal_hook() or sqlite3_wal_autocheckpoint() on that
 * connection: either would silently replace the hook that keeps the anchor.
 */
#ifndef RC_AUDIT_H
#define RC_AUDIT_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "db.h"
#include "http.h"
#include "rc.h"

#define RC_AUDIT_GENESIS "0000000000000000000000000000000000000000000000000000000000000000"
#define RC_AUDIT_FIELD_MAX 1024      /* bytes of actor, action or subject */
#define RC_AUDIT_DETAIL_MAX (64 << 10) /* bytes of detail as compact JSON */

typedef struct rc_audit rc_audit_t;

/* A point of the chain: the row seq and its hash (seq 0 with the genesis hash: empty). */
typedef struct rc_audit_head {
  int64_t seq;
  char hash[65];
} rc_audit_head_t;

/* Binds to the daemon's database; head_path is the anchor file (dir/audit.head), borrowed for
 * the call only. Installs a WAL hook (sqlite3_wal_hook) so the anchor is rewritten after every
 * commit that moved the chain's head, and never for a transaction that was rolled back. The
 * hook replaces SQLite's automatic checkpoint (which is itself a WAL hook), so it also runs a
 * passive checkpoint when the WAL reaches 1000 pages, as the default would.
 *
 * At open the anchor is compared with the table. Missing with an empty table: written (seq 0),
 * so the first append can never leave rows without an anchor. Behind the table with a matching
 * hash (a crash between a commit and the anchor's rename): brought up to date. Anything else
 * (missing while rows exist, ahead of the table, a different hash, malformed) is evidence: the
 * file is left exactly as it is and never rewritten by this handle; appends go on, and
 * rc_audit_problem() says why. Returns 0, or RC_EINVAL (db is NULL, path too long), RC_EIO
 * (the table cannot be read, the anchor cannot be written), RC_ENOMEM, with a reason. */
int rc_audit_open(rc_db_t *db, const char *head_path, rc_audit_t **out, rc_err_t *err);
/* Removes the hook, restores SQLite's automatic checkpoint and frees a. NULL is a no-op. */
void rc_audit_close(rc_audit_t *a);

/* Appends one entry on the db's thread. When the caller has a transaction open the entry is
 * part of it (a rollback removes it); otherwise it is its own transaction. actor and action
 * must be non-empty and subject non-NULL (all at most RC_AUDIT_FIELD_MAX bytes); detail is
 * borrowed, must be an object or NULL (= {}), and is stored as compact JSON with sorted keys.
 * Returns 0, RC_EINVAL / RC_ELIMIT (bad arguments; nothing written), RC_EIO (the database
 * refused; inside a caller's transaction nothing of the entry remains), RC_ENOMEM. */
int rc_audit_append(rc_audit_t *a, int64_t at_ms, const char *actor, const char *action,
                    const char *subject, const json_t *detail, rc_err_t *err);

/* NULL while the anchor is kept up to date; otherwise why it is not (left as evidence at
 * open, or the last failure to write it: the next commit tries again). Borrowed from a. */
const char *rc_audit_problem(const rc_audit_t *a);
/* The head as last written to the anchor file by this handle. */
rc_audit_head_t rc_audit_anchored(const rc_audit_t *a);

/* GET (or HEAD) /api/v1/audit?before=SEQ|after=SEQ&limit=N: returns 1 when the path is this
 * module's (then res is filled), else 0. before: entries with seq < SEQ, newest first (the
 * default, without before or after, is the newest page); after: seq > SEQ, oldest first;
 * limit 1..1000, default 100. Bad parameter: 400 naming it; other methods: 405 with Allow.
 *   {"status":"success","data":{"entries":[...],"next":{"before":S}|{"after":S}|null,
 *                               "head":{"seq":N,"hash":"..."}}}
 * next is null when the page reaches the end of the trail in its direction. a NULL: 503. */
int rc_audit_handle(rc_audit_t *a, const rc_http_request_t *req, rc_http_response_t *res);

/* The result of a verification. tampered 0: the chain is intact and agrees with the anchors;
 * 1: reason names the first problem found, by row. */
typedef struct rc_audit_report {
  int64_t entries;       /* rows in the table */
  rc_audit_head_t head;  /* the newest row (seq 0 and the genesis hash: empty) */
  int tampered;
  char reason[256];
} rc_audit_report_t;

/* Walks the whole trail of h in seq order, in one read transaction, recomputing every hash,
 * then compares the anchor file head_path (NULL: not checked) and ext (an external anchor,
 * NULL: none) with it. The anchor file is read before the table, so a commit landing between
 * the two cannot look like a truncation. Reports the first problem:
 *   "row N is missing (deleted)"
 *   "row N does not follow row N-1 (reordered or a row was replaced)"
 *   "row N was edited (its contents do not match its hash)"
 *   "the trail was truncated: the anchor names row S, the table ends at row L"
 *   "row S differs from the anchor"
 *   "the anchor file P is missing while the table has N entries"
 *   "the anchor file P is malformed (not one line \"SEQ HASH\")"
 * (for ext, "the anchor" reads "the anchor given with --head"). A missing anchor file with an
 * empty table is fine. Returns 0 when the check ran (verdict in out), RC_EIO (the database
 * or the anchor file cannot be read, e.g. no audit table; reason in err), RC_ENOMEM. */
int rc_audit_verify(sqlite3 *h, const char *head_path, const rc_audit_head_t *ext,
                    rc_audit_report_t *out, rc_err_t *err);

/* "SEQ:HASH" (as printed by verify, with ':' for the space) -> head. 0 or RC_EINVAL. */
int rc_audit_parse_head(const char *s, rc_audit_head_t *out, rc_err_t *err);
/* --since: RFC 3339 with a zone (2026-11-27T10:00:00Z, fractions to ms), an integer of ms
 * since the epoch, or a duration back from now_ms (24h, 30m; rc_parse_duration_ms units).
 * 0 or RC_EINVAL with a reason. */
int rc_audit_parse_since(const char *s, int64_t now_ms, int64_t *out, rc_err_t *err);
/* Writes the entries with at >= since_ms (INT64_MIN: all) to f as JSON lines in seq order,
 * each shaped as in the HTTP answer. The rows are not verified. 0 or RC_EIO. */
int rc_audit_export(sqlite3 *h, int64_t since_ms, FILE *f, rc_err_t *err);

/* `ripcord audit verify [--storage.path DIR] [--head SEQ:HASH]` and
 * `ripcord audit export [--storage.path DIR] [--since T]`; argv[0] is "audit". DIR defaults to
 * ./data; DIR/ripcord.db is opened read-only and never migrated, and the anchor is
 * DIR/audit.head. Exit 0: intact (verify prints `audit: N entries, chain intact, head SEQ
 * HASH`) or exported; 1: tampered (`audit: TAMPERED: <reason>` on stderr); 2: bad usage, a
 * bad --head or --since, a database that is missing or cannot be read. */
int rc_audit_cli_main(int argc, char **argv);

#endif
