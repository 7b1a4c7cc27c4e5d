/* db.c: opening the embedded SQLite store and its forward-only migrations; see db.h. */
#include "db.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"

struct rc_db {
  sqlite3 *h;
  int version;
  int unwritable;            /* the last write reported failed */
  uint64_t write_failures;   /* writes that failed, over the process' life */
  char write_error[256];     /* why the last one failed */
  int write_code;            /* and SQLite's primary result code for it */
};

/* The schema, one step per migration, never edited once released: a change is a new step. */
static const char *const migrations[] = {
    /* 1: the deploy registry (issue 5): what was deployed where, when, by whom, with which
     * database migrations, and whether it was rolled back or was itself a rollback. */
    "CREATE TABLE deploys ("
    "  id INTEGER PRIMARY KEY,"
    "  service TEXT NOT NULL,"
    "  environment TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  artifact TEXT,"
    "  deployer TEXT,"
    "  started_at INTEGER NOT NULL,"      /* ms since the epoch */
    "  recorded_at INTEGER NOT NULL,"
    "  is_rollback INTEGER NOT NULL DEFAULT 0,"
    "  rolled_back INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE INDEX deploys_target ON deploys(service, environment, started_at, id);"
    "CREATE TABLE deploy_migrations ("
    "  deploy_id INTEGER NOT NULL REFERENCES deploys(id),"
    "  migration_id TEXT NOT NULL,"
    "  reversible INTEGER NOT NULL,"
    "  applied_at INTEGER,"
    "  PRIMARY KEY (deploy_id, migration_id)"
    ");",
    /* 2: rollback events and the delivery outbox (issue 5). An event and its outbox rows are
     * written in one transaction with the deploy's rolled_back mark; the idempotency key
     * (service, environment, deploy, from -> to) makes a second firing for the same deploy,
     * here or in a replica fed the same stream, the same event. */
    "CREATE TABLE rollback_events ("
    "  id INTEGER PRIMARY KEY,"
    "  idempotency_key TEXT NOT NULL UNIQUE,"
    "  service TEXT NOT NULL,"
    "  environment TEXT NOT NULL,"
    "  deploy_id INTEGER REFERENCES deploys(id),"
    "  from_version TEXT, to_version TEXT, from_artifact TEXT, to_artifact TEXT,"
    "  trigger TEXT NOT NULL,"
    "  value REAL, threshold REAL, op TEXT, window_ms INTEGER,"
    "  status TEXT NOT NULL,"            /* rollback | dry_run | no_deploy | no_previous */
    "  created_at INTEGER NOT NULL,"
    "  payload TEXT NOT NULL"
    ");"
    "CREATE TABLE outbox ("
    "  id INTEGER PRIMARY KEY,"
    "  event_id INTEGER NOT NULL REFERENCES rollback_events(id),"
    "  receiver TEXT NOT NULL,"
    "  state TEXT NOT NULL,"             /* pending | delivered | failed */
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_attempt_at INTEGER NOT NULL,"
    "  deadline_at INTEGER NOT NULL,"
    "  last_status INTEGER, last_error TEXT, delivered_at INTEGER,"
    "  UNIQUE (event_id, receiver)"
    ");"
    "CREATE INDEX outbox_due ON outbox(state, next_attempt_at);",
    /* 3: the rule's notify target for a row (a Slack channel, a PagerDuty service name). */
    "ALTER TABLE outbox ADD COLUMN target TEXT;",
    /* 4: approval gates and the audit trail (issue 6). A rollback that waits for people has
     * its event (status needs_approval) and one approval_requests row keyed by the event; the
     * outbox rows are written when the gate opens. Votes are one per identity. The audit
     * table is append-only, each row's hash chained to the previous row's (audit.h). */
    "ALTER TABLE deploys ADD COLUMN recorded_by TEXT;"
    "CREATE TABLE approval_requests ("
    "  event_id INTEGER PRIMARY KEY REFERENCES rollback_events(id),"
    "  requester TEXT,"                  /* identity; NULL: an automatic firing */
    "  reason TEXT NOT NULL,"
    "  required INTEGER NOT NULL,"
    "  approvers TEXT NOT NULL,"         /* JSON {identities:[], groups:[]}; empty: any approver */
    "  deployers TEXT NOT NULL,"         /* JSON: who deployed / recorded the version being
                                          * rolled back (none of them may approve) */
    "  outbox TEXT NOT NULL,"            /* JSON [{receiver, target}]: written when it opens */
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  state TEXT NOT NULL,"             /* pending|approved|rejected|expired|superseded */
    "  closed_at INTEGER, closed_by TEXT"
    ");"
    "CREATE INDEX approval_requests_open ON approval_requests(state, expires_at);"
    "CREATE TABLE approval_votes ("
    "  event_id INTEGER NOT NULL REFERENCES approval_requests(event_id),"
    "  identity TEXT NOT NULL,"
    "  decision TEXT NOT NULL,"          /* approve | reject */
    "  at INTEGER NOT NULL,"
    "  comment TEXT,"
    "  PRIMARY KEY (event_id, identity)"
    ");"
    "CREATE TABLE audit ("
    "  seq INTEGER PRIMARY KEY,"         /* 1, 2, 3, ... without gaps */
    "  at INTEGER NOT NULL,"             /* ms since the epoch */
    "  actor TEXT NOT NULL,"             /* an identity, or 'ripcord' */
    "  action TEXT NOT NULL,"            /* e.g. deploy.recorded, rollback.approved */
    "  subject TEXT NOT NULL,"           /* e.g. checkout/production, event:12 */
    "  detail TEXT NOT NULL,"            /* compact JSON, keys sorted */
    "  prev_hash TEXT NOT NULL,"
    "  hash TEXT NOT NULL"
    ");",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

int rc_db_known_version(void) { return NMIGRATIONS; }

static int fail(rc_db_t *db, rc_err_t *err, int code, const char *what) {
  rc_err_set(err, code, "%s: %s", what, db->h ? sqlite3_errmsg(db->h) : "cannot open");
  return code;
}

static int exec(rc_db_t *db, const char *sql, rc_err_t *err, const char *what) {
  char *msg = NULL;
  if (sqlite3_exec(db->h, sql, NULL, NULL, &msg) == SQLITE_OK) return 0;
  rc_err_set(err, RC_EIO, "%s: %s", what, msg ? msg : sqlite3_errmsg(db->h));
  sqlite3_free(msg);
  return RC_EIO;
}

static int migrate(rc_db_t *db, rc_err_t *err) {
  /* IMMEDIATE: a second ripcord on the same directory waits (busy timeout) rather than both
   * migrating at once. */
  if (exec(db, "BEGIN IMMEDIATE", err, "cannot lock the database")) return RC_EIO;
  int rc = exec(db,
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "  version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                err, "cannot create the migrations table");
  sqlite3_stmt *st = NULL;
  if (rc == 0 && sqlite3_prepare_v2(db->h, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                                    -1, &st, NULL) != SQLITE_OK)
    rc = fail(db, err, RC_EIO, "cannot read the schema version");
  if (rc == 0 && sqlite3_step(st) == SQLITE_ROW) db->version = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (rc == 0 && db->version > NMIGRATIONS)
    rc = rc_err_set(err, RC_ENOTSUP,
                    "the database is at schema version %d, newer than this ripcord knows (%d): "
                    "it was written by a newer release; migrations only go forward",
                    db->version, NMIGRATIONS);
  for (int v = db->version; rc == 0 && v < NMIGRATIONS; v++) {
    char what[64];
    snprintf(what, sizeof(what), "schema migration %d", v + 1);
    rc = exec(db, migrations[v], err, what);
    char ins[128];
    snprintf(ins, sizeof(ins),
             "INSERT INTO schema_migrations(version, applied_at) "
             "VALUES (%d, CAST(strftime('%%s','now') AS INTEGER) * 1000)", v + 1);
    if (rc == 0) rc = exec(db, ins, err, what);
    if (rc == 0) db->version = v + 1;
  }
  /* A real write at every start, even with nothing to migrate: a read-only data directory
   * or a full disk is found now, loudly, not at the first rollback. */
  if (rc == 0) {
    char probe[64];
    snprintf(probe, sizeof(probe), "PRAGMA user_version = %d", db->version);
    rc = exec(db, probe, err, "the embedded store cannot be written");
  }
  if (rc != 0) {
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  return exec(db, "COMMIT", err, "the embedded store cannot be written (commit)");
}

int rc_db_open(const char *dir, rc_db_t **out, rc_err_t *err) {
  *out = NULL;
  rc_db_t *db = calloc(1, sizeof(*db));
  if (db == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  char path[4096];
  if (snprintf(path, sizeof(path), "%s/ripcord.db", dir) >= (int)sizeof(path)) {
    free(db);
    return rc_err_set(err, RC_EINVAL, "storage path too long");
  }
  int rc = 0;
  if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
    rc = fail(db, err, RC_EIO, path);
  if (rc == 0) sqlite3_busy_timeout(db->h, 5000);
  /* SQLite falls back to read-only when it may not open for writing: say so plainly. */
  if (rc == 0 && sqlite3_db_readonly(db->h, "main") == 1)
    rc = rc_err_set(err, RC_EIO, "%s can only be opened read-only: the data directory or the "
                    "file is not writable", path);
  /* WAL: readers do not block the writer; FULL: every commit is on disk when it returns. */
  if (rc == 0) rc = exec(db, "PRAGMA journal_mode=WAL", err, "cannot enable WAL");
  if (rc == 0) rc = exec(db, "PRAGMA synchronous=FULL", err, "cannot set synchronous");
  if (rc == 0) rc = exec(db, "PRAGMA foreign_keys=ON", err, "cannot enable foreign keys");
  if (rc == 0) rc = migrate(db, err);
  if (rc != 0) {
    rc_db_close(db);
    return rc;
  }
  *out = db;
  return 0;
}

void rc_db_close(rc_db_t *db) {
  if (db == NULL) return;
  sqlite3_close(db->h);
  free(db);
}

sqlite3 *rc_db_handle(rc_db_t *db) { return db->h; }

int rc_db_version(rc_db_t *db) { return db->version; }

void rc_db_note_write(rc_db_t *db, int ok, const char *what) {
  if (db == NULL) return;
  if (ok) {
    if (db->unwritable)
      rc_log(RC_LOG_WARN, "the embedded store is writable again: held writes are going in",
             "after=\"%s\"", db->write_error);
    db->unwritable = 0;
    return;
  }
  db->write_failures++;
  char q[300];
  const char *msg = sqlite3_errmsg(db->h);
  snprintf(db->write_error, sizeof(db->write_error), "%s", msg ? msg : "unknown error");
  db->write_code = sqlite3_errcode(db->h);
  if (!db->unwritable)
    rc_log(RC_LOG_ERROR,
           "THE EMBEDDED STORE CANNOT BE WRITTEN: rollback events and deliveries are held in "
           "memory and retried; free disk space or fix the data directory",
           "what=%s code=%d err=%s", what ? what : "-", sqlite3_extended_errcode(db->h),
           rc_log_quote(q, sizeof(q), db->write_error, strlen(db->write_error)));
  db->unwritable = 1;
}

int rc_db_writable(const rc_db_t *db) { return db != NULL && !db->unwritable; }

const char *rc_db_write_error(const rc_db_t *db) {
  return db != NULL && db->unwritable ? db->write_error : "";
}

int rc_db_http_status(rc_db_t *db) {
  /* The noted failure's code: a ROLLBACK since has reset sqlite3_errcode. */
  switch (db->unwritable ? db->write_code : sqlite3_errcode(db->h)) {
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN: return 503;
    default: return 500;
  }
}

void rc_db_render_metrics(const rc_db_t *db, rc_buf_t *o) {
  if (db == NULL) return;
  rc_buf_printf(o,
                "# HELP ripcord_storage_writable 1 while the embedded store takes writes, 0 "
                "after a write failed (full disk, read-only data directory).\n"
                "# TYPE ripcord_storage_writable gauge\nripcord_storage_writable %d\n"
                "# HELP ripcord_storage_write_failures_total Writes to the embedded store that "
                "failed.\n# TYPE ripcord_storage_write_failures_total counter\n"
                "ripcord_storage_write_failures_total %llu\n",
                db->unwritable ? 0 : 1, (unsigned long long)db->write_failures);
}
