/* test_audit.c: the hash-chained audit trail on a real SQLite file in a temporary directory —
 * appends and the documented hash (recomputed here independently), the anchor file following
 * commits and ignoring rollbacks, every kind of tampering done the way an attacker would
 * (plain SQL on the file, or deleting the anchor) and reported with its exact reason, the
 * anchor kept as evidence once it disagrees, verify time, the HTTP endpoint's paging and bad
 * parameters, and `ripcord audit verify|export` run through rc_audit_cli_main. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <fcntl.h>
#include <http_parser.h>
#include <openssl/evp.h>

#include "audit.h"
#include "db.h"

static char g_dir[64], g_head[128];

static int setup(void **st) {
  (void)st;
  snprintf(g_dir, sizeof(g_dir), "/tmp/rc-test-audit-XXXXXX");
  if (mkdtemp(g_dir) == NULL) return -1;
  snprintf(g_head, sizeof(g_head), "%s/audit.head", g_dir);
  return 0;
}

static int teardown(void **st) {
  (void)st;
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static rc_db_t *open_db(void) {
  rc_db_t *db = NULL;
  rc_err_t err = {0};
  if (rc_db_open(g_dir, &db, &err) != 0) fail_msg("open: %s", err.msg);
  return db;
}

static rc_audit_t *open_audit(rc_db_t *db) {
  rc_audit_t *a = NULL;
  rc_err_t err = {0};
  if (rc_audit_open(db, g_head, &a, &err) != 0) fail_msg("audit open: %s", err.msg);
  return a;
}

/* 2026-11-27T09:00:00Z */
#define T0 1795770000000LL

static void append(rc_audit_t *a, int64_t at, const char *actor, const char *action,
                   const char *subject, const char *detail_json) {
  rc_err_t err = {0};
  json_t *d = detail_json ? json_loads(detail_json, 0, NULL) : NULL;
  if (detail_json && d == NULL) fail_msg("bad test JSON %s", detail_json);
  if (rc_audit_append(a, at, actor, action, subject, d, &err) != 0)
    fail_msg("append: %s", err.msg);
  json_decref(d);
}

/* n entries, one minute apart from T0, each its own transaction. */
static void fill(int n) {
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  for (int i = 1; i <= n; i++) {
    char subj[32], det[64];
    snprintf(subj, sizeof(subj), "checkout/prod#%d", i);
    snprintf(det, sizeof(det), "{\"n\":%d,\"who\":\"alice\"}", i);
    append(a, T0 + (int64_t)(i - 1) * 60000, i % 2 ? "ripcord" : "alice", "deploy.recorded",
           subj, det);
  }
  rc_audit_close(a);
  rc_db_close(db);
}

static void read_file(const char *path, char *out, size_t cap) {
  FILE *f = fopen(path, "r");
  if (f == NULL) fail_msg("cannot open %s", path);
  size_t n = fread(out, 1, cap - 1, f);
  out[n] = 0;
  fclose(f);
}

/* As an attacker with the file: plain SQL over a connection of their own. */
static void attack(const char *sql) {
  char path[128];
  snprintf(path, sizeof(path), "%s/ripcord.db", g_dir);
  sqlite3 *h = NULL;
  assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
  char *msg = NULL;
  if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) fail_msg("attack %s: %s", sql, msg);
  sqlite3_close(h);
}

static rc_audit_report_t verify_ext(const rc_audit_head_t *ext) {
  char path[128];
  snprintf(path, sizeof(path), "%s/ripcord.db", g_dir);
  sqlite3 *h = NULL;
  assert_int_equal(sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  rc_audit_report_t r;
  rc_err_t err = {0};
  if (rc_audit_verify(h, g_head, ext, &r, &err) != 0) fail_msg("verify: %s", err.msg);
  sqlite3_close(h);
  return r;
}

static rc_audit_report_t verify(void) { return verify_ext(NULL); }

static void expect_intact(int64_t n) {
  rc_audit_report_t r = verify();
  if (r.tampered) fail_msg("tampered: %s", r.reason);
  assert_int_equal(r.entries, n);
  assert_int_equal(r.head.seq, n);
}

static void expect_tampered(const char *reason) {
  rc_audit_report_t r = verify();
  assert_true(r.tampered);
  assert_string_equal(r.reason, reason);
}

static int64_t count_rows(rc_db_t *db) {
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(rc_db_handle(db), "SELECT COUNT(*) FROM audit", -1, &q,
                                      NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return n;
}

/* The stored hash of row seq, via a fresh connection. */
static void stored_hash(int64_t seq, char out[65]) {
  char path[128];
  snprintf(path, sizeof(path), "%s/ripcord.db", g_dir);
  sqlite3 *h = NULL;
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(h, "SELECT hash FROM audit WHERE seq = ?", -1, &q, NULL),
                   SQLITE_OK);
  sqlite3_bind_int64(q, 1, seq);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  snprintf(out, 65, "%s", (const char *)sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(h);
}

/* The documented hash, written again from audit.h's description and nothing else. */
static void doc_hash(const char *prev, int64_t seq, int64_t at, const char *actor,
                     const char *action, const char *subject, const char *detail, char out[65]) {
  char s[4096], a[24], b[24];
  snprintf(a, sizeof(a), "%lld", (long long)seq);
  snprintf(b, sizeof(b), "%lld", (long long)at);
  int n = snprintf(s, sizeof(s), "%s%zu:%s%zu:%s%zu:%s%zu:%s%zu:%s%zu:%s", prev, strlen(a), a,
                   strlen(b), b, strlen(actor), actor, strlen(action), action, strlen(subject),
                   subject, strlen(detail), detail);
  unsigned char md[32];
  unsigned int ml = 0;
  assert_int_equal(EVP_Digest(s, (size_t)n, md, &ml, EVP_sha256(), NULL), 1);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/*------------------------------------------------------------------------------------------
 * Appending and the anchor
 *----------------------------------------------------------------------------------------*/

static void test_append_verify(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  assert_null(rc_audit_problem(a));
  append(a, T0, "ripcord", "rules.reloaded", "rules/prod.yml",
         "{\"sha256\":\"ab\",\"b\":[1,{\"z\":1,\"y\":2}],\"a\":null}");
  append(a, T0 + 1, "alice", "rollback.approved", "event:12", NULL);
  append(a, T0 + 2, "bob", "rollback.rejected", "", "{}");
  /* Bad arguments write nothing. */
  rc_err_t err = {0};
  json_t *arr = json_array();
  char big[RC_AUDIT_FIELD_MAX + 2];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = 0;
  assert_int_equal(rc_audit_append(a, T0, NULL, "x", "s", NULL, &err), RC_EINVAL);
  assert_int_equal(rc_audit_append(a, T0, "a", "", "s", NULL, &err), RC_EINVAL);
  assert_int_equal(rc_audit_append(a, T0, "a", "x", NULL, NULL, &err), RC_EINVAL);
  assert_int_equal(rc_audit_append(a, -1, "a", "x", "s", NULL, &err), RC_EINVAL);
  assert_int_equal(rc_audit_append(a, T0, "a", "x", "s", arr, &err), RC_EINVAL);
  assert_int_equal(rc_audit_append(a, T0, "a", "x", big, NULL, &err), RC_ELIMIT);
  assert_int_equal(rc_audit_append(NULL, T0, "a", "x", "s", NULL, &err), RC_EINVAL);
  json_decref(arr);
  assert_int_equal(count_rows(db), 3);

  /* Stored as documented: compact JSON with sorted keys (nested objects too), chained from
   * the genesis, each hash recomputable from the description in audit.h. */
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_prepare_v2(rc_db_handle(db), "SELECT seq, at, actor, action, subject,"
                                      " detail, prev_hash, hash FROM audit ORDER BY seq", -1, &q,
                                      NULL), SQLITE_OK);
  static const char *const details[] = {
      "{\"a\":null,\"b\":[1,{\"y\":2,\"z\":1}],\"sha256\":\"ab\"}", "{}", "{}"};
  char prev[65] = RC_AUDIT_GENESIS, want[65];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(q, 0), i + 1);
    assert_string_equal((const char *)sqlite3_column_text(q, 5), details[i]);
    assert_string_equal((const char *)sqlite3_column_text(q, 6), prev);
    doc_hash(prev, i + 1, sqlite3_column_int64(q, 1), (const char *)sqlite3_column_text(q, 2),
             (const char *)sqlite3_column_text(q, 3), (const char *)sqlite3_column_text(q, 4),
             details[i], want);
    assert_string_equal((const char *)sqlite3_column_text(q, 7), want);
    memcpy(prev, want, 65);
  }
  sqlite3_finalize(q);
  rc_audit_close(a);
  rc_db_close(db);

  rc_audit_report_t r = verify();
  assert_false(r.tampered);
  assert_int_equal(r.entries, 3);
  assert_int_equal(r.head.seq, 3);
  assert_string_equal(r.head.hash, prev);
}

static void anchor_is(int64_t seq, const char *hash) {
  char got[256], want[256];
  read_file(g_head, got, sizeof(got));
  snprintf(want, sizeof(want), "%lld %s\n", (long long)seq, hash);
  assert_string_equal(got, want);
}

static ino_t anchor_inode(void) {
  struct stat sb;
  assert_int_equal(stat(g_head, &sb), 0);
  return sb.st_ino;
}

static void test_anchor_follows_commits(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  /* Written at open, before any row: no row ever exists without an anchor. */
  anchor_is(0, RC_AUDIT_GENESIS);
  char h[65];
  for (int i = 1; i <= 3; i++) {
    append(a, T0 + i, "ripcord", "trigger.fired", "checkout/prod", NULL);
    stored_hash(i, h);
    anchor_is(i, h);
    assert_int_equal(rc_audit_anchored(a).seq, i);
  }
  /* Several appends in the caller's transaction: the anchor moves once, at COMMIT. */
  sqlite3 *dbh = rc_db_handle(db);
  assert_int_equal(sqlite3_exec(dbh, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  for (int i = 4; i <= 6; i++) append(a, T0 + i, "alice", "rollback.requested", "event:1", NULL);
  anchor_is(3, h);
  assert_int_equal(sqlite3_exec(dbh, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  stored_hash(6, h);
  anchor_is(6, h);
  /* A commit that does not touch the trail does not rewrite the anchor (same inode: no
   * rename happened). */
  ino_t ino = anchor_inode();
  assert_int_equal(sqlite3_exec(dbh, "INSERT INTO deploys(service, environment, version,"
                                     " started_at, recorded_at) VALUES ('s','e','1',1,1)",
                                NULL, NULL, NULL), SQLITE_OK);
  assert_true(anchor_inode() == ino);
  /* The WAL hook also stands in for SQLite's auto-checkpoint: many commits later the WAL has
   * been checkpointed and reset instead of growing without bound. */
  /* Six commits of about 220 pages each (1800 rows of 3000 bytes): without a checkpoint the
   * WAL would hold over 1300 frames; with one at 1000 it restarts and holds the last few. */
  for (int c = 0; c < 6; c++)
    assert_int_equal(sqlite3_exec(dbh, "INSERT INTO deploys(service, environment, version,"
                                       " started_at, recorded_at) SELECT 's', 'e',"
                                       " hex(randomblob(1500)), 1, 1 FROM"
                                       " (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1"
                                       "  FROM n WHERE i < 300) SELECT i FROM n)", NULL, NULL,
                                  NULL), SQLITE_OK);
  int log = -1, ckpt = -1;
  assert_int_equal(sqlite3_wal_checkpoint_v2(dbh, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &ckpt),
                   SQLITE_OK);
  if (log >= 1000) fail_msg("the WAL holds %d frames: no automatic checkpoint ran", log);
  rc_audit_close(a);
  rc_db_close(db);
  expect_intact(6);
}

static void test_rollback_leaves_no_trace(void **st) {
  (void)st;
  fill(4);
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  char h4[65], before[256], after[256];
  stored_hash(4, h4);
  read_file(g_head, before, sizeof(before));
  ino_t ino = anchor_inode();
  sqlite3 *dbh = rc_db_handle(db);
  assert_int_equal(sqlite3_exec(dbh, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  append(a, T0 + 100, "alice", "rollback.approved", "event:7", "{\"comment\":\"go\"}");
  append(a, T0 + 101, "ripcord", "delivery.sent", "event:7", NULL);
  assert_int_equal(count_rows(db), 6);
  assert_int_equal(sqlite3_exec(dbh, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
  assert_int_equal(count_rows(db), 4);
  read_file(g_head, after, sizeof(after));
  assert_string_equal(before, after);
  assert_true(anchor_inode() == ino);
  anchor_is(4, h4);
  expect_intact(4);
  /* The next append continues from the committed head, not from the rolled-back rows. */
  append(a, T0 + 102, "bob", "rollback.rejected", "event:7", NULL);
  char h5[65];
  stored_hash(5, h5);
  anchor_is(5, h5);
  rc_audit_close(a);
  rc_db_close(db);
  expect_intact(5);
}

/* A crash between a commit and the anchor's rename leaves the anchor behind: that is not
 * tampering, and the next open brings it up to date. */
static void test_anchor_behind(void **st) {
  (void)st;
  fill(10);
  char h5[65], h10[65];
  stored_hash(5, h5);
  stored_hash(10, h10);
  FILE *f = fopen(g_head, "w");
  fprintf(f, "5 %s\n", h5);
  fclose(f);
  expect_intact(10);
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  assert_null(rc_audit_problem(a));
  anchor_is(10, h10);
  rc_audit_close(a);
  rc_db_close(db);
}

/*------------------------------------------------------------------------------------------
 * Tampering
 *----------------------------------------------------------------------------------------*/

static void test_tampering(void **st) {
  (void)st;
  static const struct { const char *sql, *reason; } t[] = {
      {"UPDATE audit SET detail = '{\"n\":4,\"who\":\"mallory\"}' WHERE seq = 4",
       "row 4 was edited (its contents do not match its hash)"},
      {"UPDATE audit SET actor = 'mallory' WHERE seq = 4",
       "row 4 was edited (its contents do not match its hash)"},
      {"UPDATE audit SET at = at + 1 WHERE seq = 1",
       "row 1 was edited (its contents do not match its hash)"},
      {"UPDATE audit SET hash = '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'"
       " WHERE seq = 7", "row 7 was edited (its contents do not match its hash)"},
      {"DELETE FROM audit WHERE seq = 5", "row 5 is missing (deleted)"},
      {"DELETE FROM audit WHERE seq = 1", "row 1 is missing (deleted)"},
      /* Swap the contents of two rows (everything but seq): a reordering. */
      {"CREATE TEMP TABLE t AS SELECT * FROM audit WHERE seq IN (3, 4);"
       "UPDATE audit SET (at, actor, action, subject, detail, prev_hash, hash) ="
       " (SELECT at, actor, action, subject, detail, prev_hash, hash FROM t"
       "  WHERE t.seq = 7 - audit.seq) WHERE seq IN (3, 4)",
       "row 3 does not follow row 2 (reordered or a row was replaced)"},
      /* The same by renumbering. */
      {"UPDATE audit SET seq = -seq WHERE seq IN (6, 7); UPDATE audit SET seq = 13 + seq"
       " WHERE seq IN (-6, -7)", "row 6 does not follow row 5 (reordered or a row was replaced)"},
      {"INSERT INTO audit SELECT 0, at, actor, action, subject, detail, prev_hash, hash FROM audit"
       " WHERE seq = 1", "row 0 is out of range (the trail starts at row 1)"},
      {"UPDATE audit SET prev_hash = hash WHERE seq = 1",
       "row 1 does not start the chain (reordered or a row was replaced)"},
      /* Dropping the newest rows leaves a perfect chain: only the anchor knows. */
      {"DELETE FROM audit WHERE seq > 8",
       "the trail was truncated: the anchor names row 10, the table ends at row 8"},
      {"DELETE FROM audit",
       "the trail was truncated: the anchor names row 10, the table ends at row 0"},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    teardown(NULL);
    setup(NULL);
    fill(10);
    expect_intact(10);
    attack(t[i].sql);
    rc_audit_report_t r = verify();
    if (!r.tampered || strcmp(r.reason, t[i].reason) != 0)
      fail_msg("case %zu (%s): got %s'%s', want '%s'", i, t[i].sql, r.tampered ? "" : "intact ",
               r.reason, t[i].reason);
  }
}

/* A careful attacker rewrites a row and recomputes its hash: the next row no longer follows.
 * Rewriting every row after it too leaves a valid chain that the anchor still contradicts. */
static void test_rewrite_with_hashes(void **st) {
  (void)st;
  fill(10);
  char path[128];
  snprintf(path, sizeof(path), "%s/ripcord.db", g_dir);
  sqlite3 *h = NULL;
  assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
  sqlite3_stmt *q, *u;
  assert_int_equal(sqlite3_prepare_v2(h, "SELECT seq, at, actor, action, subject, detail, "
                                      "prev_hash FROM audit WHERE seq >= ? ORDER BY seq", -1, &q,
                                      NULL), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(h, "UPDATE audit SET actor = ?, prev_hash = ?, hash = ?"
                                      " WHERE seq = ?", -1, &u, NULL), SQLITE_OK);
  for (int pass = 0; pass < 2; pass++) {
    /* pass 0: only row 4; pass 1: rows 4..10, re-chained. */
    sqlite3_reset(q);
    sqlite3_bind_int64(q, 1, 4);
    char prev[65] = "";
    while (sqlite3_step(q) == SQLITE_ROW) {
      int64_t seq = sqlite3_column_int64(q, 0);
      if (pass == 0 && seq > 4) break;
      if (!prev[0]) snprintf(prev, sizeof(prev), "%s", (const char *)sqlite3_column_text(q, 6));
      char hash[65];
      const char *actor = seq == 4 ? "mallory" : (const char *)sqlite3_column_text(q, 2);
      doc_hash(prev, seq, sqlite3_column_int64(q, 1), actor,
               (const char *)sqlite3_column_text(q, 3), (const char *)sqlite3_column_text(q, 4),
               (const char *)sqlite3_column_text(q, 5), hash);
      char actor_copy[64];
      snprintf(actor_copy, sizeof(actor_copy), "%s", actor);
      sqlite3_reset(u);
      sqlite3_bind_text(u, 1, actor_copy, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(u, 2, prev, -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(u, 3, hash, -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(u, 4, seq);
      assert_int_equal(sqlite3_step(u), SQLITE_DONE);
      memcpy(prev, hash, 65);
    }
    sqlite3_reset(q);
    if (pass == 0) expect_tampered("row 5 does not follow row 4 (reordered or a row was replaced)");
    else expect_tampered("row 10 differs from the anchor");
  }
  sqlite3_finalize(q);
  sqlite3_finalize(u);
  sqlite3_close(h);
}

static void test_anchor_file_tampering(void **st) {
  (void)st;
  fill(10);
  char want[256];
  assert_int_equal(unlink(g_head), 0);
  snprintf(want, sizeof(want), "the anchor file %s is missing while the table has 10 entries",
           g_head);
  expect_tampered(want);
  FILE *f = fopen(g_head, "w");
  fprintf(f, "garbage\n");
  fclose(f);
  snprintf(want, sizeof(want), "the anchor file %s is malformed (not one line \"SEQ HASH\")",
           g_head);
  expect_tampered(want);
  /* An empty table without an anchor is a trail that has not started. */
  teardown(NULL);
  setup(NULL);
  rc_db_t *db = open_db();
  rc_db_close(db);
  rc_audit_report_t r = verify();
  assert_false(r.tampered);
  assert_int_equal(r.entries, 0);
  assert_string_equal(r.head.hash, RC_AUDIT_GENESIS);
}

static void test_external_head(void **st) {
  (void)st;
  fill(10);
  char h5[65], s[128];
  stored_hash(5, h5);
  rc_audit_head_t ext;
  rc_err_t err = {0};
  snprintf(s, sizeof(s), "5:%s", h5);
  assert_int_equal(rc_audit_parse_head(s, &ext, &err), 0);
  rc_audit_report_t r = verify_ext(&ext);
  assert_false(r.tampered);
  for (char *p = s; *p; p++) *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
  assert_int_equal(rc_audit_parse_head(s, &ext, &err), 0); /* upper case is accepted */
  assert_string_equal(ext.hash, h5);
  snprintf(s, sizeof(s), "5:%s", "1111111111111111111111111111111111111111111111111111111111111111");
  assert_int_equal(rc_audit_parse_head(s, &ext, &err), 0);
  r = verify_ext(&ext);
  assert_true(r.tampered);
  assert_string_equal(r.reason, "row 5 differs from the anchor given with --head");
  snprintf(s, sizeof(s), "11:%s", h5);
  assert_int_equal(rc_audit_parse_head(s, &ext, &err), 0);
  r = verify_ext(&ext);
  assert_string_equal(r.reason, "the trail was truncated: the anchor given with --head names row "
                                "11, the table ends at row 10");
  /* Both the local anchor and the table rewritten consistently (someone who holds the whole
   * machine): only the copy kept elsewhere can tell. */
  snprintf(s, sizeof(s), "5:%s", h5);
  assert_int_equal(rc_audit_parse_head(s, &ext, &err), 0);
  attack("DELETE FROM audit WHERE seq >= 5");
  rc_db_t *db = open_db();
  assert_int_equal(unlink(g_head), 0);
  FILE *f = fopen(g_head, "w");
  char h4[65];
  stored_hash(4, h4);
  fprintf(f, "4 %s\n", h4);
  fclose(f);
  rc_audit_t *a = open_audit(db);
  assert_null(rc_audit_problem(a));
  append(a, T0, "mallory", "deploy.recorded", "checkout/prod#5", "{\"forged\":true}");
  rc_audit_close(a);
  rc_db_close(db);
  assert_false(verify().tampered);
  r = verify_ext(&ext);
  assert_string_equal(r.reason, "row 5 differs from the anchor given with --head");
  static const char *const bad[] = {"", "5", "5:", "x:" RC_AUDIT_GENESIS, "-1:" RC_AUDIT_GENESIS,
                                    "5:" RC_AUDIT_GENESIS "0", "5 " RC_AUDIT_GENESIS,
                                    "5:0000000000000000000000000000000000000000000000000000000000000g"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(rc_audit_parse_head(bad[i], &ext, &err), RC_EINVAL);
}

/* Once the anchor disagrees with the table the daemon keeps appending but never rewrites the
 * anchor: the evidence outlives a restart and later appends. */
static void test_anchor_kept_as_evidence(void **st) {
  (void)st;
  fill(10);
  attack("DELETE FROM audit WHERE seq > 8");
  char before[256], after[256];
  read_file(g_head, before, sizeof(before));
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  assert_non_null(rc_audit_problem(a));
  assert_non_null(strstr(rc_audit_problem(a), "the trail was truncated: the anchor names row 10"));
  append(a, T0, "ripcord", "rules.reloaded", "rules.yml", NULL);
  rc_audit_close(a);
  rc_db_close(db);
  read_file(g_head, after, sizeof(after));
  assert_string_equal(before, after);
  expect_tampered("the trail was truncated: the anchor names row 10, the table ends at row 9");

  /* Rows removed behind the running daemon's back: its next commit sees that the row the
   * anchor names has changed and stops moving the anchor. */
  teardown(NULL);
  setup(NULL);
  fill(10);
  db = open_db();
  a = open_audit(db);
  assert_null(rc_audit_problem(a));
  attack("DELETE FROM audit WHERE seq = 10");
  read_file(g_head, before, sizeof(before));
  append(a, T0 + 1, "ripcord", "trigger.fired", "checkout/prod", NULL); /* a new row 10 */
  assert_non_null(rc_audit_problem(a));
  append(a, T0 + 2, "ripcord", "trigger.resolved", "checkout/prod", NULL);
  read_file(g_head, after, sizeof(after));
  assert_string_equal(before, after);
  rc_audit_close(a);
  rc_db_close(db);
  expect_tampered("row 10 differs from the anchor");
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void test_verify_time(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  assert_int_equal(sqlite3_exec(rc_db_handle(db), "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
  for (int i = 0; i < 1000; i++)
    append(a, T0 + i, "ripcord", "delivery.sent", "event:1",
           "{\"receiver\":\"webhook\",\"status\":200,\"attempt\":1}");
  assert_int_equal(sqlite3_exec(rc_db_handle(db), "COMMIT", NULL, NULL, NULL), SQLITE_OK);
  rc_audit_close(a);
  rc_db_close(db);
  double t = now_s();
  expect_intact(1000);
  t = now_s() - t;
  print_message("verify of 1000 entries: %.1f ms\n", t * 1000);
  assert_true(t < 2.0); /* well under: a few ms unsanitised */
}

/*------------------------------------------------------------------------------------------
 * GET /api/v1/audit
 *----------------------------------------------------------------------------------------*/

typedef struct {
  int status;
  char allow;
  json_t *doc;
} reply_t;

static reply_t get(rc_audit_t *a, int method, const char *path, const char *query) {
  rc_http_request_t req = {.method = method, .path = path, .path_len = strlen(path),
                           .query = query, .query_len = query ? strlen(query) : 0};
  rc_http_response_t res = {0};
  rc_buf_init(&res.headers);
  rc_buf_init(&res.body);
  reply_t r = {0};
  if (!rc_audit_handle(a, &req, &res)) {
    r.status = -1;
  } else {
    r.status = res.status;
    r.allow = res.headers.len && strstr(res.headers.data, "Allow: GET, HEAD\r\n") != NULL;
    assert_string_equal(res.content_type, "application/json");
    assert_true(res.body.len > 0 && res.body.data[res.body.len - 1] == '\n');
    assert_null(memchr(res.body.data, '\n', res.body.len - 1)); /* one line */
    r.doc = json_loadb(res.body.data, res.body.len, 0, NULL);
    assert_non_null(r.doc);
  }
  rc_buf_free(&res.headers);
  rc_buf_free(&res.body);
  return r;
}

/* The seqs of a page as "25,24,...", and next as "before:16", "after:10" or "null". */
static void page(rc_audit_t *a, const char *query, const char *seqs, const char *next) {
  reply_t r = get(a, HTTP_GET, "/api/v1/audit", query);
  assert_int_equal(r.status, 200);
  json_t *data = json_object_get(r.doc, "data"), *e;
  assert_string_equal(json_string_value(json_object_get(r.doc, "status")), "success");
  char got[512] = "", nx[64];
  size_t i;
  json_array_foreach(json_object_get(data, "entries"), i, e) {
    size_t n = strlen(got);
    snprintf(got + n, sizeof(got) - n, "%s%lld", i ? "," : "",
             (long long)json_integer_value(json_object_get(e, "seq")));
  }
  json_t *nj = json_object_get(data, "next");
  if (json_is_null(nj)) snprintf(nx, sizeof(nx), "null");
  else if (json_object_get(nj, "before"))
    snprintf(nx, sizeof(nx), "before:%lld", (long long)json_integer_value(json_object_get(nj, "before")));
  else
    snprintf(nx, sizeof(nx), "after:%lld", (long long)json_integer_value(json_object_get(nj, "after")));
  if (strcmp(got, seqs) != 0 || strcmp(nx, next) != 0)
    fail_msg("?%s: got [%s] next %s, want [%s] next %s", query ? query : "", got, nx, seqs, next);
  json_t *head = json_object_get(data, "head");
  assert_int_equal(json_integer_value(json_object_get(head, "seq")), 25);
  assert_int_equal(strlen(json_string_value(json_object_get(head, "hash"))), 64);
  json_decref(r.doc);
}

static void test_http(void **st) {
  (void)st;
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  /* An empty trail: no entries, the genesis head. */
  reply_t r = get(a, HTTP_GET, "/api/v1/audit", NULL);
  assert_int_equal(r.status, 200);
  json_t *data = json_object_get(r.doc, "data");
  assert_int_equal(json_array_size(json_object_get(data, "entries")), 0);
  assert_true(json_is_null(json_object_get(data, "next")));
  assert_int_equal(json_integer_value(json_object_get(json_object_get(data, "head"), "seq")), 0);
  json_decref(r.doc);
  rc_audit_close(a);
  rc_db_close(db);

  fill(25);
  db = open_db();
  a = open_audit(db);
  page(a, NULL, "25,24,23,22,21,20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1", "null");
  page(a, "limit=10", "25,24,23,22,21,20,19,18,17,16", "before:16");
  page(a, "before=16&limit=10", "15,14,13,12,11,10,9,8,7,6", "before:6");
  page(a, "limit=10&before=6", "5,4,3,2,1", "null");
  page(a, "before=6&limit=5", "5,4,3,2,1", "null");
  page(a, "before=1", "", "null");
  page(a, "after=0&limit=10", "1,2,3,4,5,6,7,8,9,10", "after:10");
  page(a, "after=20&limit=10", "21,22,23,24,25", "null");
  page(a, "after=25", "", "null");
  page(a, "after=999", "", "null");
  page(a, "limit=1000&before=3", "2,1", "null");
  page(a, "unrelated=1&limit=1", "25", "before:25");

  /* An entry is shaped as in the export. */
  r = get(a, HTTP_HEAD, "/api/v1/audit", "limit=1");
  assert_int_equal(r.status, 200);
  json_t *e = json_array_get(json_object_get(json_object_get(r.doc, "data"), "entries"), 0);
  const char *key;
  json_t *v;
  static const char *const keys[] = {"seq", "at", "at_ms", "actor", "action", "subject",
                                     "detail", "prev_hash", "hash"};
  size_t k = 0;
  json_object_foreach(e, key, v) assert_string_equal(key, keys[k++]);
  assert_int_equal(k, 9);
  assert_string_equal(json_string_value(json_object_get(e, "at")), "2026-11-27T09:24:00.000Z");
  assert_int_equal(json_integer_value(json_object_get(e, "at_ms")), T0 + 24 * 60000);
  assert_string_equal(json_string_value(json_object_get(e, "actor")), "ripcord");
  assert_string_equal(json_string_value(json_object_get(e, "subject")), "checkout/prod#25");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "detail"), "n")), 25);
  json_decref(r.doc);

  static const struct { const char *q, *msg; } bad[] = {
      {"limit=0", "limit"}, {"limit=1001", "limit"}, {"limit=abc", "limit"}, {"limit=", "limit"},
      {"limit=-1", "limit"}, {"limit=1e3", "limit"}, {"before=0", "before"},
      {"before=-3", "before"}, {"before=%zz", "before"}, {"before=", "before"},
      {"before", "before"}, {"after=x", "after"}, {"after=99999999999999999999", "after"},
      {"before=3&after=1", "before and after cannot be combined"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    r = get(a, HTTP_GET, "/api/v1/audit", bad[i].q);
    const char *msg = json_string_value(json_object_get(r.doc, "error"));
    if (r.status != 400 || msg == NULL || strncmp(msg, bad[i].msg, strlen(bad[i].msg)) != 0)
      fail_msg("?%s: %d %s, want 400 %s...", bad[i].q, r.status, msg ? msg : "", bad[i].msg);
    assert_string_equal(json_string_value(json_object_get(r.doc, "status")), "error");
    json_decref(r.doc);
  }
  r = get(a, HTTP_POST, "/api/v1/audit", NULL);
  assert_int_equal(r.status, 405);
  assert_true(r.allow);
  json_decref(r.doc);
  r = get(a, HTTP_DELETE, "/api/v1/audit", "before=3");
  assert_int_equal(r.status, 405);
  json_decref(r.doc);
  assert_int_equal(get(a, HTTP_GET, "/api/v1/audits", NULL).status, -1);
  assert_int_equal(get(a, HTTP_GET, "/api/v1/audi", NULL).status, -1);
  assert_int_equal(get(a, HTTP_GET, "/api/v1/rollbacks", NULL).status, -1);
  r = get(NULL, HTTP_GET, "/api/v1/audit", NULL);
  assert_int_equal(r.status, 503);
  json_decref(r.doc);
  rc_audit_close(a);
  rc_db_close(db);
}

/*------------------------------------------------------------------------------------------
 * `ripcord audit verify|export`
 *----------------------------------------------------------------------------------------*/

static char g_out[1 << 16], g_errout[4096];

/* Runs the command with stdout and stderr sent to files, then reads them back. */
static int cli(const char *a1, const char *a2, const char *a3, const char *a4, const char *a5) {
  char *argv[8] = {"audit"};
  int argc = 1;
  const char *in[] = {a1, a2, a3, a4, a5};
  for (int i = 0; i < 5 && in[i]; i++) argv[argc++] = (char *)in[i];
  char po[128], pe[128];
  snprintf(po, sizeof(po), "%s/cli.out", g_dir);
  snprintf(pe, sizeof(pe), "%s/cli.err", g_dir);
  fflush(stdout);
  fflush(stderr);
  int so = dup(1), se = dup(2);
  int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600), fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(so >= 0 && se >= 0 && fo >= 0 && fe >= 0);
  dup2(fo, 1);
  dup2(fe, 2);
  int code = rc_audit_cli_main(argc, argv);
  fflush(stdout);
  fflush(stderr);
  dup2(so, 1);
  dup2(se, 2);
  close(so), close(se), close(fo), close(fe);
  read_file(po, g_out, sizeof(g_out));
  read_file(pe, g_errout, sizeof(g_errout));
  return code;
}

static void test_cli_verify(void **st) {
  (void)st;
  char want[256], h[65], hv[128];
  /* No database: exit 2 with the reason, and nothing created. */
  assert_int_equal(cli("verify", "--storage.path", g_dir, NULL, NULL), 2);
  assert_non_null(strstr(g_errout, "ripcord.db: No such file or directory"));
  char path[128];
  snprintf(path, sizeof(path), "%s/ripcord.db", g_dir);
  assert_int_not_equal(access(path, F_OK), 0);

  fill(10);
  stored_hash(10, h);
  assert_int_equal(cli("verify", "--storage.path", g_dir, NULL, NULL), 0);
  snprintf(want, sizeof(want), "audit: 10 entries, chain intact, head 10 %s\n", h);
  assert_string_equal(g_out, want);
  char dirflag[128];
  snprintf(dirflag, sizeof(dirflag), "--storage.path=%s", g_dir);
  snprintf(hv, sizeof(hv), "10:%s", h);
  assert_int_equal(cli("verify", dirflag, "--head", hv, NULL), 0);
  snprintf(hv, sizeof(hv), "--head=9:%s", h);
  assert_int_equal(cli("verify", dirflag, hv, NULL, NULL), 1);
  assert_string_equal(g_errout, "audit: TAMPERED: row 9 differs from the anchor given with --head\n");
  assert_int_equal(cli("verify", dirflag, "--head", "nonsense", NULL), 2);
  assert_non_null(strstr(g_errout, "--head must be SEQ:HASH"));
  assert_int_equal(cli("verify", dirflag, "--since", "1h", NULL), 2); /* export's flag */
  assert_int_equal(cli("verify", dirflag, "--head", NULL, NULL), 2);
  assert_int_equal(cli("frobnicate", NULL, NULL, NULL, NULL), 2);
  assert_int_equal(cli(NULL, NULL, NULL, NULL, NULL), 2);
  assert_int_equal(cli("--help", NULL, NULL, NULL, NULL), 0);
  assert_non_null(strstr(g_out, "usage: ripcord audit verify"));

  attack("UPDATE audit SET subject = 'elsewhere' WHERE seq = 3");
  assert_int_equal(cli("verify", dirflag, NULL, NULL, NULL), 1);
  assert_string_equal(g_errout, "audit: TAMPERED: row 3 was edited (its contents do not match its hash)\n");
  assert_string_equal(g_out, "");
  unlink(g_head);
  attack("UPDATE audit SET subject = 'checkout/prod#3' WHERE seq = 3");
  assert_int_equal(cli("verify", dirflag, NULL, NULL, NULL), 1);
  assert_non_null(strstr(g_errout, "audit.head is missing while the table has 10 entries"));

  /* Read-only and never migrated: a database from before the audit table stays as it is. */
  teardown(NULL);
  setup(NULL);
  snprintf(dirflag, sizeof(dirflag), "--storage.path=%s", g_dir);
  snprintf(path, sizeof(path), "%s/ripcord.db", g_dir);
  attack("PRAGMA journal_mode=WAL; CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY,"
         " applied_at INTEGER NOT NULL); INSERT INTO schema_migrations VALUES (1, 0)");
  assert_int_equal(cli("verify", dirflag, NULL, NULL, NULL), 2);
  if (!strstr(g_errout, "no such table: audit")) fail_msg("%s", g_errout);
  assert_int_equal(cli("export", dirflag, NULL, NULL, NULL), 2);
  sqlite3 *hh;
  sqlite3_stmt *q;
  assert_int_equal(sqlite3_open(path, &hh), SQLITE_OK);
  assert_int_equal(sqlite3_prepare_v2(hh, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit'",
                                      -1, &q, NULL), SQLITE_OK);
  assert_int_equal(sqlite3_step(q), SQLITE_ROW);
  assert_int_equal(sqlite3_column_int(q, 0), 0);
  sqlite3_finalize(q);
  sqlite3_close(hh);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

static void test_cli_export(void **st) {
  (void)st;
  fill(10); /* at T0 (09:00Z) + 0..9 minutes */
  char dirflag[128];
  snprintf(dirflag, sizeof(dirflag), "--storage.path=%s", g_dir);
  assert_int_equal(cli("export", dirflag, NULL, NULL, NULL), 0);
  assert_int_equal(count_lines(g_out), 10);
  /* Each line one entry, in seq order, shaped as documented. */
  char *line = g_out;
  char prev[65] = RC_AUDIT_GENESIS;
  for (int i = 1; i <= 10; i++) {
    char *nl = strchr(line, '\n');
    json_t *e = json_loadb(line, (size_t)(nl - line), 0, NULL);
    assert_non_null(e);
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), i);
    assert_string_equal(json_string_value(json_object_get(e, "prev_hash")), prev);
    /* An external verifier can recompute the hash from the export alone. */
    char *detail = json_dumps(json_object_get(e, "detail"), JSON_COMPACT | JSON_SORT_KEYS);
    char want[65];
    doc_hash(prev, i, json_integer_value(json_object_get(e, "at_ms")),
             json_string_value(json_object_get(e, "actor")),
             json_string_value(json_object_get(e, "action")),
             json_string_value(json_object_get(e, "subject")), detail, want);
    free(detail);
    assert_string_equal(json_string_value(json_object_get(e, "hash")), want);
    snprintf(prev, sizeof(prev), "%s", want);
    if (i == 3) assert_string_equal(json_string_value(json_object_get(e, "at")), "2026-11-27T09:02:00.000Z");
    json_decref(e);
    line = nl + 1;
  }
  static const struct { const char *since; int lines; const char *first; } t[] = {
      {"2026-11-27T09:05:00Z", 5, "{\"seq\":6,"},
      {"2026-11-27T09:04:59.999Z", 5, "{\"seq\":6,"},
      {"2026-11-27T09:05:00.001Z", 4, "{\"seq\":7,"},
      {"2026-11-27T10:05:00+01:00", 5, "{\"seq\":6,"},
      {"2026-11-27T08:05:00-01:00", 5, "{\"seq\":6,"},
      {"2026-11-27T10:05:00-01:00", 0, ""},
      {"1795770300000", 5, "{\"seq\":6,"},
      {"0", 10, "{\"seq\":1,"},
      {"2026-11-28T00:00:00Z", 0, ""},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
    int code = cli("export", dirflag, "--since", t[i].since, NULL);
    if (code != 0 || count_lines(g_out) != t[i].lines || strncmp(g_out, t[i].first, strlen(t[i].first)))
      fail_msg("--since %s: exit %d, %d lines, '%.20s'", t[i].since, code, count_lines(g_out), g_out);
  }
  /* A duration back from now: entries of the last day only (in a trail of their own, as
   * T0 may be ahead of the clock this runs on). */
  teardown(NULL);
  setup(NULL);
  snprintf(dirflag, sizeof(dirflag), "--storage.path=%s", g_dir);
  rc_db_t *db = open_db();
  rc_audit_t *a = open_audit(db);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int64_t now = (int64_t)ts.tv_sec * 1000;
  append(a, now - 48 * 3600 * 1000, "ripcord", "deploy.recorded", "checkout/prod", NULL);
  append(a, now - 3600 * 1000, "ripcord", "trigger.fired", "checkout/prod", NULL);
  append(a, now - 60 * 1000, "ripcord", "trigger.resolved", "checkout/prod", NULL);
  rc_audit_close(a);
  rc_db_close(db);
  assert_int_equal(cli("export", dirflag, "--since=24h", NULL, NULL), 0);
  assert_int_equal(count_lines(g_out), 2);
  assert_int_equal(cli("export", dirflag, "--since", "30m", NULL), 0);
  assert_int_equal(count_lines(g_out), 1);
  assert_non_null(strstr(g_out, "trigger.resolved"));

  static const char *const bad[] = {"yesterday", "", "-1h", "2026-11-27", "2026-11-27T10:00:00",
                                    "2026-11-31T10:00:00Z", "2026-11-27T25:00:00Z",
                                    "2026-11-27T10:00:00.Z", "2026-11-27T10:00:00+1:00", "1h2x",
                                    "99999999999999999999", "30m1h"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    int code = cli("export", dirflag, "--since", bad[i], NULL);
    if (code != 2 || strstr(g_errout, "--since must be") == NULL)
      fail_msg("--since '%s': exit %d, %s", bad[i], code, g_errout);
  }
  rc_err_t err = {0};
  int64_t v;
  assert_int_equal(rc_audit_parse_since("24", 0, &v, &err), 0);
  assert_int_equal(v, 24);
  assert_int_equal(rc_audit_parse_since("1h30m", 10000000, &v, &err), 0);
  assert_int_equal(v, 10000000 - 5400000);
  assert_int_equal(rc_audit_parse_since("2026-11-27T09:00:00Z", 0, &v, &err), 0);
  assert_int_equal(v, T0);
  assert_int_equal(cli("export", dirflag, "--head", "1:" RC_AUDIT_GENESIS, NULL), 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_append_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_anchor_follows_commits, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rollback_leaves_no_trace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_anchor_behind, setup, teardown),
      cmocka_unit_test_setup_teardown(test_tampering, setup, teardown),
      cmocka_unit_test_setup_teardown(test_rewrite_with_hashes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_anchor_file_tampering, setup, teardown),
      cmocka_unit_test_setup_teardown(test_external_head, setup, teardown),
      cmocka_unit_test_setup_teardown(test_anchor_kept_as_evidence, setup, teardown),
      cmocka_unit_test_setup_teardown(test_verify_time, setup, teardown),
      cmocka_unit_test_setup_teardown(test_http, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cli_verify, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cli_export, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
