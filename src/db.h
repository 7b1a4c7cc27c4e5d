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

#endif
