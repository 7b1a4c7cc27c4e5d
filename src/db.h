/* db.h: ripcord's embedded store — one SQLite database, `ripcord.db` under --storage.path, in
 * WAL mode with synchronous=FULL (a committed deploy or rollback event survives a crash or a
 * power cut), and forward-only schema migrations recorded in a version table.
 *
 * Migrations: db.c holds the schema as an ordered list of steps; opening a database applies
 * every step it has not seen, in one transaction, and records each in schema_migrations. A
 * database written by a newer ripcord (a version this binary does not know) is refused:
 * there is no going back, by design, as with the deploys' own migrations.
 *
 * Threads: a connection belongs to the thread that uses it (the loop thread today); SQLite is
 * built thread-safe, but ripcord does not share a connection. Memory: the handle owns the
 * connection; rc_db_close() closes it.
 */
#ifndef RC_DB_H
#define RC_DB_H

#include <sqlite3.h>

#include "rc.h"

struct rc_buf;

typedef struct rc_db rc_db_t;

/* Opens (creating when missing) dir/ripcord.db, sets WAL and FULL sync, applies pending
 * migrations. Returns 0, or RC_EIO / RC_ENOTSUP (newer schema) / RC_ENOMEM with a reason. */
int rc_db_open(const char *dir, rc_db_t **out, rc_err_t *err);
void rc_db_close(rc_db_t *db); /* NULL is a no-op */

sqlite3 *rc_db_handle(rc_db_t *db);
/* The schema version the database is at (the number of migrations applied). */
int rc_db_version(rc_db_t *db);
/* The schema version this binary knows. */
int rc_db_known_version(void);

/* Whether the store can be written, as the writers found it. Every writer that commits
 * something ripcord must not lose (a rollback event, an outbox row's end, a deploy, a vote)
 * reports the outcome here: ok = 0 right after the failed statement or COMMIT, while
 * sqlite3_errmsg still tells why. The first failure is logged as an error (a full disk, a
 * read-only data directory, an I/O error), the return to writable as a warning; /metrics
 * shows the state (rc_db_render_metrics). The writers keep what they could not write in
 * memory and retry: see actions.c and delivery.c. Loop thread. */
void rc_db_note_write(rc_db_t *db, int ok, const char *what);
int rc_db_writable(const rc_db_t *db);
/* The last write failure's reason ("database or disk is full"), or "" when writable. */
const char *rc_db_write_error(const rc_db_t *db);
/* SQLite's answer to a failed write, as HTTP: 503 for a full disk, a read-only or locked
 * database (a condition that passes, so the client should retry), 500 otherwise. */
int rc_db_http_status(rc_db_t *db);
void rc_db_render_metrics(const rc_db_t *db, struct rc_buf *out);

#endif
