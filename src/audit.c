/* audit.c: the hash-chained audit trail, its anchor file, its verification, the read endpoint
 * and the `ripcord audit` command; see audit.h for the hash and what it proves.
 *
 * Nothing about the chain is cached in memory: every append reads the head inside its own
 * transaction, so a rolled-back transaction leaves no stale "next seq" behind. The only state
 * kept is the head last written to the anchor, which moves only after a commit (the WAL hook)
 * and only forward along the same chain; anything else freezes the anchor as evidence.
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "log.h"

/* SQLite's default: its own WAL hook checkpoints once the WAL holds this many pages. */
#define AUTOCHECKPOINT_PAGES 1000
#define PAGE_MAX 1000
#define PAGE_DEFAULT 100

#define ENTRY_COLS "seq, at, actor, action, subject, detail, prev_hash, hash"

struct rc_audit {
  rc_db_t *db;
  char *head_path;
  rc_audit_head_t written; /* what the anchor file says, as far as this handle knows */
  int frozen;              /* the anchor is evidence of tampering: never rewrite it */
  char problem[320];       /* "" when all is well */
  rc_complaint_t complaint;
};

static const rc_audit_head_t genesis = {0, RC_AUDIT_GENESIS};

static uint64_t mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int is_hex64(const char *s, size_t n) {
  if (n != 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return 0;
  return 1;
}

/* A column as bytes; NULL reads as "" (the schema forbids it, a tamperer need not). */
static const char *col(sqlite3_stmt *st, int i, size_t *len) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  *len = s ? (size_t)sqlite3_column_bytes(st, i) : 0;
  return s ? s : "";
}

/*------------------------------------------------------------------------------------------
 * The hash
 *----------------------------------------------------------------------------------------*/

static void put_field(EVP_MD_CTX *md, const char *p, size_t n) {
  char pre[24];
  int k = snprintf(pre, sizeof(pre), "%zu:", n);
  EVP_DigestUpdate(md, pre, (size_t)k);
  EVP_DigestUpdate(md, p, n);
}

static void put_int(EVP_MD_CTX *md, int64_t v) {
  char s[24];
  int k = snprintf(s, sizeof(s), "%lld", (long long)v);
  put_field(md, s, (size_t)k);
}

/* md is reused across rows by the verifier: one context for 100000 rows, not 100000. */
static int chain_hash(EVP_MD_CTX *md, const char *prev, size_t prev_len, int64_t seq,
                      int64_t at, const char *actor, size_t actor_len, const char *action,
                      size_t action_len, const char *subject, size_t subject_len,
                      const char *detail, size_t detail_len, char out[65]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int dl = 0;
  if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) return RC_ENOMEM;
  EVP_DigestUpdate(md, prev, prev_len); /* fixed width: needs no length */
  put_int(md, seq);
  put_int(md, at);
  put_field(md, actor, actor_len);
  put_field(md, action, action_len);
  put_field(md, subject, subject_len);
  put_field(md, detail, detail_len);
  if (EVP_DigestFinal_ex(md, d, &dl) != 1 || dl != 32) return RC_ENOMEM;
  static const char digits[] = "0123456789abcdef";
  for (unsigned i = 0; i < 32; i++) {
    out[2 * i] = digits[d[i] >> 4];
    out[2 * i + 1] = digits[d[i] & 15];
  }
  out[64] = 0;
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Reading the table
 *----------------------------------------------------------------------------------------*/

/* The newest row; genesis when the table is empty. 0 or RC_EIO. */
static int read_head(sqlite3 *h, rc_audit_head_t *out, rc_err_t *err) {
  sqlite3_stmt *st = NULL;
  *out = genesis;
  if (sqlite3_prepare_v2(h, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1", -1, &st,
                         NULL) != SQLITE_OK)
    return rc_err_set(err, RC_EIO, "cannot read the audit table: %s", sqlite3_errmsg(h));
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    size_t n;
    const char *hash = col(st, 1, &n);
    out->seq = sqlite3_column_int64(st, 0);
    snprintf(out->hash, sizeof(out->hash), "%.*s", (int)(n < 64 ? n : 64), hash);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return rc_err_set(err, RC_EIO, "cannot read the audit table: %s", sqlite3_errmsg(h));
  return 0;
}

/* The stored hash of row seq into out (genesis for 0). 1 found, 0 no such row, RC_EIO. */
static int row_hash(sqlite3 *h, int64_t seq, char out[65]) {
  if (seq == 0) {
    memcpy(out, RC_AUDIT_GENESIS, 65);
    return 1;
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(h, "SELECT hash FROM audit WHERE seq = ?", -1, &st, NULL) != SQLITE_OK)
    return RC_EIO;
  sqlite3_bind_int64(st, 1, seq);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    size_t n;
    const char *s = col(st, 0, &n);
    snprintf(out, 65, "%.*s", (int)(n < 64 ? n : 64), s);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : RC_EIO;
}

/* A read transaction around several statements, so they all see one snapshot; a no-op when
 * the caller already has a transaction open on this connection. */
static int read_begin(sqlite3 *h) {
  if (!sqlite3_get_autocommit(h)) return 0;
  return sqlite3_exec(h, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 1 : -1;
}

static void read_end(sqlite3 *h, int began) {
  if (began == 1) sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
}

/*------------------------------------------------------------------------------------------
 * The anchor file: one line "SEQ HASH\n"
 *----------------------------------------------------------------------------------------*/

enum { ANCHOR_OK = 0, ANCHOR_MISSING = 1, ANCHOR_MALFORMED = 2 };

static int parse_head(const char *s, size_t n, char sep, rc_audit_head_t *out) {
  size_t i = 0;
  int64_t v = 0;
  if (n == 0 || s[0] < '0' || s[0] > '9') return -1;
  for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
    if (v > (INT64_MAX - 9) / 10) return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (i >= n || s[i] != sep || !is_hex64(s + i + 1, n - i - 1)) return -1;
  out->seq = v;
  memcpy(out->hash, s + i + 1, 64);
  out->hash[64] = 0;
  return 0;
}

/* ANCHOR_OK (*out filled), ANCHOR_MISSING, ANCHOR_MALFORMED, or RC_EIO (reason in err). */
static int read_anchor(const char *path, rc_audit_head_t *out, rc_err_t *err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return ANCHOR_MISSING;
    return rc_err_set(err, RC_EIO, "%s: %s", path, strerror(errno));
  }
  char buf[128];
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, sizeof(buf) - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      close(fd);
      return rc_err_set(err, RC_EIO, "%s: %s", path, strerror(e));
    }
    if (r == 0 || (n += (size_t)r) == sizeof(buf)) break;
  }
  close(fd);
  /* Exactly one line; a longer file is not one we wrote. */
  if (n == 0 || n == sizeof(buf) || buf[n - 1] != '\n') return ANCHOR_MALFORMED;
  return parse_head(buf, n - 1, ' ', out) == 0 ? ANCHOR_OK : ANCHOR_MALFORMED;
}

static int fsync_dir(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (slash == NULL) snprintf(dir, sizeof(dir), ".");
  else if (slash == path) snprintf(dir, sizeof(dir), "/");
  else snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Temp file, fsync, rename, fsync of the directory: after a crash the anchor is either the
 * old line or the new one, never a torn one, and the rename itself is durable. */
static int write_anchor(const char *path, const rc_audit_head_t *hd, rc_err_t *err) {
  char tmp[4200], line[96];
  if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
    return rc_err_set(err, RC_EINVAL, "anchor path too long");
  int n = snprintf(line, sizeof(line), "%lld %s\n", (long long)hd->seq, hd->hash);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return rc_err_set(err, RC_EIO, "%s: %s", tmp, strerror(errno));
  const char *what = NULL;
  for (int off = 0; off < n && what == NULL;) {
    ssize_t w = write(fd, line + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) what = "write";
    else off += (int)w;
  }
  if (what == NULL && fsync(fd) != 0) what = "fsync";
  int e = errno;
  if (close(fd) != 0 && what == NULL) what = "close", e = errno;
  if (what == NULL && rename(tmp, path) != 0) what = "rename", e = errno;
  if (what != NULL) {
    unlink(tmp);
    return rc_err_set(err, RC_EIO, "%s: %s: %s", path, what, strerror(e));
  }
  if (fsync_dir(path) != 0)
    return rc_err_set(err, RC_EIO, "%s: fsync of its directory: %s", path, strerror(errno));
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Keeping the anchor: open, the WAL hook, close
 *----------------------------------------------------------------------------------------*/

static void freeze(rc_audit_t *a, const char *why) {
  char q[400];
  a->frozen = 1;
  snprintf(a->problem, sizeof(a->problem), "%s; the anchor %s is left as it is", why,
           a->head_path);
  rc_log(RC_LOG_ERROR, "audit trail does not match its anchor", "reason=%s",
         rc_log_quote(q, sizeof(q), a->problem, strlen(a->problem)));
}

/* After a commit: move the anchor to the committed head, if the head moved forward along the
 * chain the anchor already names. A head that went back, or a named row whose hash changed,
 * means rows were removed or rewritten behind our back: the anchor stays as evidence. */
static void anchor_sync(rc_audit_t *a) {
  if (a->frozen) return;
  sqlite3 *h = rc_db_handle(a->db);
  rc_audit_head_t hd;
  rc_err_t err = {0};
  char q[400], was[65], why[300];
  int rc = read_head(h, &hd, &err);
  if (rc == 0 && hd.seq == a->written.seq && strcmp(hd.hash, a->written.hash) == 0) return;
  if (rc == 0 && hd.seq < a->written.seq) {
    snprintf(why, sizeof(why), "the table's newest row went back from %lld to %lld",
             (long long)a->written.seq, (long long)hd.seq);
    freeze(a, why);
    return;
  }
  int found = rc == 0 ? row_hash(h, a->written.seq, was) : 0;
  if (rc == 0 && found < 0) rc = rc_err_set(&err, RC_EIO, "cannot read the audit table");
  if (rc == 0 && (found == 0 || strcmp(was, a->written.hash) != 0)) {
    snprintf(why, sizeof(why), "row %lld no longer has the hash the anchor names",
             (long long)a->written.seq);
    freeze(a, why);
    return;
  }
  if (rc == 0) rc = write_anchor(a->head_path, &hd, &err);
  if (rc == 0) {
    a->written = hd;
    a->problem[0] = 0;
    return;
  }
  /* The commit stands; the anchor is only behind, which verify accepts. Retried at the next
   * commit, since the head will still differ from what was written. */
  snprintf(a->problem, sizeof(a->problem), "cannot update the anchor: %s", err.msg);
  rc_log_complain(&a->complaint, mono_ms(), 60000, RC_LOG_ERROR, "audit anchor not updated",
                  "reason=%s", rc_log_quote(q, sizeof(q), err.msg, strlen(err.msg)));
}

/* Called by SQLite after each commit to the WAL, once the write lock is released, so reading
 * here is allowed. It is never called for a rollback. Installing it removes SQLite's
 * auto-checkpoint hook (the two share the slot), hence the passive checkpoint at the same
 * threshold the default uses; without it the WAL would grow without bound. */
static int wal_hook(void *ctx, sqlite3 *h, const char *zdb, int npages) {
  rc_audit_t *a = ctx;
  if (zdb != NULL && strcmp(zdb, "main") == 0) anchor_sync(a);
  if (npages >= AUTOCHECKPOINT_PAGES)
    sqlite3_wal_checkpoint_v2(h, zdb, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
  return SQLITE_OK; /* the commit has happened whatever we return */
}

int rc_audit_open(rc_db_t *db, const char *head_path, rc_audit_t **out, rc_err_t *err) {
  *out = NULL;
  if (db == NULL || head_path == NULL || !*head_path)
    return rc_err_set(err, RC_EINVAL, "audit: no database or anchor path");
  if (strlen(head_path) > 4000) return rc_err_set(err, RC_EINVAL, "audit: anchor path too long");
  rc_audit_t *a = calloc(1, sizeof(*a));
  if (a == NULL || (a->head_path = strdup(head_path)) == NULL) {
    free(a);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  a->db = db;
  sqlite3 *h = rc_db_handle(db);
  rc_audit_head_t hd, anc;
  char hash[65], why[300];
  int rc = read_head(h, &hd, err);
  int st = rc == 0 ? read_anchor(head_path, &anc, err) : rc;
  if (st < 0) {
    rc = st;
  } else if (st == ANCHOR_MISSING && hd.seq == 0) {
    /* Written before the first append, so no row ever exists without an anchor. */
    if ((rc = write_anchor(head_path, &genesis, err)) == 0) a->written = genesis;
  } else if (st == ANCHOR_MISSING) {
    snprintf(why, sizeof(why), "the anchor file is missing while the table has rows (up to %lld)",
             (long long)hd.seq);
    freeze(a, why);
  } else if (st == ANCHOR_MALFORMED) {
    freeze(a, "the anchor file is malformed");
  } else if (anc.seq > hd.seq) {
    snprintf(why, sizeof(why), "the trail was truncated: the anchor names row %lld, the table "
             "ends at row %lld", (long long)anc.seq, (long long)hd.seq);
    freeze(a, why);
  } else if ((st = row_hash(h, anc.seq, hash)) < 0) {
    rc = rc_err_set(err, RC_EIO, "cannot read the audit table: %s", sqlite3_errmsg(h));
  } else if (st == 0 || strcmp(hash, anc.hash) != 0) {
    snprintf(why, sizeof(why), "row %lld differs from the anchor", (long long)anc.seq);
    freeze(a, why);
  } else {
    /* The anchor is behind only after a crash between a commit and its rename. */
    a->written = anc;
    if (anc.seq < hd.seq && (rc = write_anchor(head_path, &hd, err)) == 0) a->written = hd;
  }
  if (rc != 0) {
    free(a->head_path); /* no hook installed yet: nothing else to undo */
    free(a);
    return rc;
  }
  sqlite3_wal_hook(h, wal_hook, a);
  *out = a;
  return 0;
}

void rc_audit_close(rc_audit_t *a) {
  if (a == NULL) return;
  /* Installs SQLite's own checkpointing hook in place of ours. */
  sqlite3 *h = rc_db_handle(a->db);
  if (h != NULL) sqlite3_wal_autocheckpoint(h, AUTOCHECKPOINT_PAGES);
  free(a->head_path);
  free(a);
}

const char *rc_audit_problem(const rc_audit_t *a) {
  return a != NULL && a->problem[0] ? a->problem : NULL;
}

rc_audit_head_t rc_audit_anchored(const rc_audit_t *a) { return a ? a->written : genesis; }

/*------------------------------------------------------------------------------------------
 * Appending
 *----------------------------------------------------------------------------------------*/

static int check_field(const char *name, const char *v, int may_be_empty, rc_err_t *err) {
  if (v == NULL || (!may_be_empty && !*v))
    return rc_err_set(err, RC_EINVAL, "audit: %s is required", name);
  if (strlen(v) > RC_AUDIT_FIELD_MAX)
    return rc_err_set(err, RC_ELIMIT, "audit: %s is longer than %d bytes", name,
                      RC_AUDIT_FIELD_MAX);
  return 0;
}

static int insert_entry(sqlite3 *h, int64_t at_ms, const char *actor, const char *action,
                        const char *subject, const char *detail, rc_err_t *err) {
  rc_audit_head_t prev;
  int rc = read_head(h, &prev, err);
  if (rc != 0) return rc;
  if (prev.seq == INT64_MAX) return rc_err_set(err, RC_ELIMIT, "audit: the trail is full");
  char hash[65];
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md == NULL || chain_hash(md, prev.hash, strlen(prev.hash), prev.seq + 1, at_ms, actor,
                               strlen(actor), action, strlen(action), subject, strlen(subject),
                               detail, strlen(detail), hash) != 0)
    rc = rc_err_set(err, RC_ENOMEM, "audit: cannot compute SHA-256");
  EVP_MD_CTX_free(md);
  if (rc != 0) return rc;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(h, "INSERT INTO audit(" ENTRY_COLS ") VALUES (?,?,?,?,?,?,?,?)", -1,
                         &st, NULL) != SQLITE_OK)
    return rc_err_set(err, RC_EIO, "audit: %s", sqlite3_errmsg(h));
  sqlite3_bind_int64(st, 1, prev.seq + 1);
  sqlite3_bind_int64(st, 2, at_ms);
  sqlite3_bind_text(st, 3, actor, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, action, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 5, subject, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 6, detail, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 7, prev.hash, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 8, hash, -1, SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) rc = rc_err_set(err, RC_EIO, "audit: %s", sqlite3_errmsg(h));
  sqlite3_finalize(st);
  return rc;
}

int rc_audit_append(rc_audit_t *a, int64_t at_ms, const char *actor, const char *action,
                    const char *subject, const json_t *detail, rc_err_t *err) {
  if (a == NULL) return rc_err_set(err, RC_EINVAL, "audit: not open");
  int rc = check_field("actor", actor, 0, err);
  if (rc == 0) rc = check_field("action", action, 0, err);
  if (rc == 0) rc = check_field("subject", subject, 1, err);
  if (rc == 0 && at_ms < 0) rc = rc_err_set(err, RC_EINVAL, "audit: time before the epoch");
  if (rc == 0 && detail != NULL && !json_is_object(detail))
    rc = rc_err_set(err, RC_EINVAL, "audit: detail must be a JSON object");
  if (rc != 0) return rc;
  /* Sorted keys and no whitespace: the same facts always give the same bytes, so an external
   * verifier can rebuild detail from an export and get the stored text. */
  char *dj = detail ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
  if (dj == NULL) return rc_err_set(err, RC_ENOMEM, "audit: cannot encode detail");
  if (strlen(dj) > RC_AUDIT_DETAIL_MAX) {
    free(dj);
    return rc_err_set(err, RC_ELIMIT, "audit: detail is longer than %d bytes",
                      RC_AUDIT_DETAIL_MAX);
  }
  sqlite3 *h = rc_db_handle(a->db);
  /* Inside the caller's transaction a savepoint lets a failed insert vanish without undoing
   * the caller's own work; on our own, IMMEDIATE takes the write lock before MAX(seq) is read. */
  int own = sqlite3_get_autocommit(h);
  if (sqlite3_exec(h, own ? "BEGIN IMMEDIATE" : "SAVEPOINT rc_audit_append", NULL, NULL, NULL) !=
      SQLITE_OK) {
    rc = rc_err_set(err, RC_EIO, "audit: %s", sqlite3_errmsg(h));
    free(dj);
    return rc;
  }
  rc = insert_entry(h, at_ms, actor, action, subject, dj, err);
  free(dj);
  if (rc == 0 && sqlite3_exec(h, own ? "COMMIT" : "RELEASE rc_audit_append", NULL, NULL, NULL) !=
                     SQLITE_OK)
    rc = rc_err_set(err, RC_EIO, "audit: %s", sqlite3_errmsg(h));
  if (rc != 0)
    sqlite3_exec(h, own ? "ROLLBACK" : "ROLLBACK TO rc_audit_append; RELEASE rc_audit_append",
                 NULL, NULL, NULL);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Verifying
 *----------------------------------------------------------------------------------------*/

int rc_audit_parse_head(const char *s, rc_audit_head_t *out, rc_err_t *err) {
  char low[128];
  size_t n = s ? strlen(s) : 0;
  if (n >= sizeof(low)) n = sizeof(low) - 1;
  for (size_t i = 0; i < n; i++) low[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] + 32) : s[i];
  if (s == NULL || strlen(s) != n || parse_head(low, n, ':', out) != 0)
    return rc_err_set(err, RC_EINVAL, "--head must be SEQ:HASH (a row number, ':', and its 64 "
                                      "hex digit hash, as `ripcord audit verify` prints them)");
  return 0;
}

/* Compares one anchor with the walked chain; at_seq is the hash of row anc->seq ("" if the
 * table has no such row). Fills out->reason and returns 1 when they disagree. */
static int anchor_mismatch(rc_audit_report_t *out, const char *name, const rc_audit_head_t *anc,
                           const char *at_seq) {
  if (anc->seq > out->head.seq)
    snprintf(out->reason, sizeof(out->reason),
             "the trail was truncated: %s names row %lld, the table ends at row %lld", name,
             (long long)anc->seq, (long long)out->head.seq);
  else if (strcmp(anc->seq == 0 ? RC_AUDIT_GENESIS : at_seq, anc->hash) != 0)
    snprintf(out->reason, sizeof(out->reason), "row %lld differs from %s", (long long)anc->seq,
             name);
  else
    return 0;
  out->tampered = 1;
  return 1;
}

/* The walk: the first row that is missing, out of place or edited sets out->reason. */
static int walk(sqlite3 *h, rc_audit_report_t *out, const rc_audit_head_t *want1, char *hash1,
                const rc_audit_head_t *want2, char *hash2, rc_err_t *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(h, "SELECT " ENTRY_COLS " FROM audit ORDER BY seq", -1, &st, NULL) !=
      SQLITE_OK)
    return rc_err_set(err, RC_EIO, "cannot read the audit table: %s", sqlite3_errmsg(h));
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (md == NULL) {
    sqlite3_finalize(st);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  char prev[65], calc[65];
  memcpy(prev, RC_AUDIT_GENESIS, 65);
  int64_t expect = 1;
  int rc = 0, src = SQLITE_DONE;
  while (!out->tampered && (src = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t seq = sqlite3_column_int64(st, 0), at = sqlite3_column_int64(st, 1);
    size_t la, lx, ls, ld, lp, lh;
    const char *actor = col(st, 2, &la), *action = col(st, 3, &lx), *subject = col(st, 4, &ls),
               *detail = col(st, 5, &ld), *ph = col(st, 6, &lp), *hash = col(st, 7, &lh);
    out->entries++;
    if (seq > expect) {
      snprintf(out->reason, sizeof(out->reason), "row %lld is missing (deleted)",
               (long long)expect);
    } else if (seq < expect) {
      snprintf(out->reason, sizeof(out->reason),
               "row %lld is out of range (the trail starts at row 1)", (long long)seq);
    } else if (lp != 64 || memcmp(ph, prev, 64) != 0) {
      if (seq == 1)
        snprintf(out->reason, sizeof(out->reason),
                 "row 1 does not start the chain (reordered or a row was replaced)");
      else
        snprintf(out->reason, sizeof(out->reason),
                 "row %lld does not follow row %lld (reordered or a row was replaced)",
                 (long long)seq, (long long)(seq - 1));
    } else if (chain_hash(md, ph, lp, seq, at, actor, la, action, lx, subject, ls, detail, ld,
                          calc) != 0) {
      rc = rc_err_set(err, RC_ENOMEM, "cannot compute SHA-256");
      break;
    } else if (lh != 64 || memcmp(hash, calc, 64) != 0) {
      snprintf(out->reason, sizeof(out->reason),
               "row %lld was edited (its contents do not match its hash)", (long long)seq);
    }
    if (out->reason[0]) {
      out->tampered = 1;
      break;
    }
    /* Only rows whose hash was recomputed and matched get here: the stored hash is trusted. */
    memcpy(prev, calc, 65);
    if (want1 && want1->seq == seq) memcpy(hash1, calc, 65);
    if (want2 && want2->seq == seq) memcpy(hash2, calc, 65);
    out->head.seq = seq;
    memcpy(out->head.hash, calc, 65);
    expect = seq + 1;
  }
  if (rc == 0 && !out->tampered && src != SQLITE_DONE)
    rc = rc_err_set(err, RC_EIO, "cannot read the audit table: %s", sqlite3_errmsg(h));
  EVP_MD_CTX_free(md);
  sqlite3_finalize(st);
  return rc;
}

int rc_audit_verify(sqlite3 *h, const char *head_path, const rc_audit_head_t *ext,
                    rc_audit_report_t *out, rc_err_t *err) {
  memset(out, 0, sizeof(*out));
  out->head = genesis;
  /* The anchor first: it only ever names committed rows, so a snapshot taken after reading it
   * holds that row even if the daemon commits in between. */
  rc_audit_head_t anc;
  int ast = head_path ? read_anchor(head_path, &anc, err) : ANCHOR_MISSING;
  if (ast < 0) return ast;
  int began = read_begin(h);
  if (began < 0) return rc_err_set(err, RC_EIO, "cannot read the database: %s", sqlite3_errmsg(h));
  char h_anc[65] = "", h_ext[65] = "";
  int rc = walk(h, out, ast == ANCHOR_OK ? &anc : NULL, h_anc, ext, h_ext, err);
  /* A tampered walk stops early; the count is of the whole table, for the report. */
  if (rc == 0 && out->tampered) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(h, "SELECT COUNT(*) FROM audit", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      out->entries = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  read_end(h, began);
  if (rc != 0 || out->tampered) return rc;
  if (head_path && ast == ANCHOR_MISSING && out->entries > 0) {
    snprintf(out->reason, sizeof(out->reason),
             "the anchor file %.150s is missing while the table has %lld entries", head_path,
             (long long)out->entries);
    out->tampered = 1;
  } else if (head_path && ast == ANCHOR_MALFORMED) {
    snprintf(out->reason, sizeof(out->reason),
             "the anchor file %.150s is malformed (not one line \"SEQ HASH\")", head_path);
    out->tampered = 1;
  } else if (ast == ANCHOR_OK && anchor_mismatch(out, "the anchor", &anc, h_anc)) {
    return 0;
  } else if (ext != NULL) {
    anchor_mismatch(out, "the anchor given with --head", ext, h_ext);
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Entries as JSON: export and the HTTP answer
 *----------------------------------------------------------------------------------------*/

/* 2026-11-27T10:00:00.123Z */
static void format_time(int64_t ms, char out[40]) {
  int64_t sec = ms / 1000, rem = ms % 1000;
  if (rem < 0) rem += 1000, sec -= 1;
  time_t t = (time_t)sec;
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL) {
    snprintf(out, 40, "%lld", (long long)ms);
    return;
  }
  char d[32];
  strftime(d, sizeof(d), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 40, "%s.%03dZ", d, (int)rem);
}

/* One row (ENTRY_COLS) as an object; detail as the object it holds, or as the stored text
 * when that is not JSON (a tampered row is still shown, not hidden). */
static json_t *entry_json(sqlite3_stmt *st) {
  size_t n[8];
  const char *s[8];
  for (int i = 2; i < 8; i++) s[i] = col(st, i, &n[i]);
  int64_t at = sqlite3_column_int64(st, 1);
  char when[40];
  format_time(at, when);
  json_t *detail = json_loadb(s[5], n[5], JSON_DECODE_ANY, NULL);
  if (detail == NULL) detail = json_stringn(s[5], n[5]);
  return json_pack("{s:I,s:s,s:I,s:s%,s:s%,s:s%,s:o*,s:s%,s:s%}", "seq",
                   (json_int_t)sqlite3_column_int64(st, 0), "at", when, "at_ms", (json_int_t)at,
                   "actor", s[2], n[2], "action", s[3], n[3], "subject", s[4], n[4], "detail",
                   detail, "prev_hash", s[6], n[6], "hash", s[7], n[7]);
}

int rc_audit_export(sqlite3 *h, int64_t since_ms, FILE *f, rc_err_t *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(h, "SELECT " ENTRY_COLS " FROM audit WHERE at >= ? ORDER BY seq", -1,
                         &st, NULL) != SQLITE_OK)
    return rc_err_set(err, RC_EIO, "cannot read the audit table: %s", sqlite3_errmsg(h));
  sqlite3_bind_int64(st, 1, since_ms);
  int rc = 0, src;
  while ((src = sqlite3_step(st)) == SQLITE_ROW) {
    json_t *e = entry_json(st);
    /* JSON_ENSURE_ASCII is off: UTF-8 passes through; one line per entry either way. */
    if (e == NULL || json_dumpf(e, f, JSON_COMPACT) != 0 || fputc('\n', f) == EOF) {
      json_decref(e);
      rc = rc_err_set(err, RC_EIO, "cannot write the export: %s", strerror(errno));
      break;
    }
    json_decref(e);
  }
  if (rc == 0 && src != SQLITE_DONE)
    rc = rc_err_set(err, RC_EIO, "cannot read the audit table: %s", sqlite3_errmsg(h));
  sqlite3_finalize(st);
  return rc;
}

static void json_reply(rc_http_response_t *res, int status, json_t *doc) {
  char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  res->content_type = "application/json";
  res->status = s ? status : 500;
  rc_buf_puts(&res->body, s ? s : "{\"status\":\"error\",\"error\":\"out of memory\"}");
  rc_buf_puts(&res->body, "\n");
  free(s);
}

static void error_reply(rc_http_response_t *res, int status, const char *msg) {
  json_reply(res, status, json_pack("{s:s,s:s}", "status", "error", "error", msg));
}

/* 0 absent, 1 *v set, -1 present but not a decimal integer in [lo, hi]. */
static int int_param(const rc_http_request_t *req, const char *name, int64_t lo, int64_t hi,
                     int64_t *v) {
  return rc_http_query_int(req, name, lo, hi, v);
}

int rc_audit_handle(rc_audit_t *a, const rc_http_request_t *req, rc_http_response_t *res) {
  static const char path[] = "/api/v1/audit";
  if (req->path_len != sizeof(path) - 1 || memcmp(req->path, path, sizeof(path) - 1) != 0)
    return 0;
  if (a == NULL) {
    error_reply(res, 503, "no audit trail (storage unavailable)");
    return 1;
  }
  if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
    rc_buf_puts(&res->headers, "Allow: GET, HEAD\r\n");
    error_reply(res, 405, "method not allowed: use GET");
    return 1;
  }
  int64_t before = 0, after = 0, limit = PAGE_DEFAULT;
  int hb = int_param(req, "before", 1, INT64_MAX, &before);
  int ha = int_param(req, "after", 0, INT64_MAX, &after);
  int hl = int_param(req, "limit", 1, PAGE_MAX, &limit);
  const char *bad = hb < 0   ? "before must be a row number (an integer >= 1)"
                    : ha < 0   ? "after must be a row number (an integer >= 0)"
                    : hl < 0   ? "limit must be an integer in 1..1000"
                    : hb && ha ? "before and after cannot be combined"
                               : NULL;
  if (bad != NULL) {
    error_reply(res, 400, bad);
    return 1;
  }

  sqlite3 *h = rc_db_handle(a->db);
  sqlite3_stmt *st = NULL;
  const char *sql = ha   ? "SELECT " ENTRY_COLS " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?"
                    : hb ? "SELECT " ENTRY_COLS " FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?"
                         : "SELECT " ENTRY_COLS " FROM audit WHERE seq <= ? ORDER BY seq DESC LIMIT ?";
  int began = read_begin(h);
  rc_audit_head_t hd;
  json_t *entries = json_array();
  int64_t last = 0, got = 0;
  int ok = began >= 0 && entries != NULL && read_head(h, &hd, NULL) == 0 &&
           sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK;
  if (ok) {
    sqlite3_bind_int64(st, 1, ha ? after : hb ? before : INT64_MAX);
    sqlite3_bind_int64(st, 2, limit + 1); /* one more than asked: is there a next page? */
    int src;
    while ((src = sqlite3_step(st)) == SQLITE_ROW && got < limit) {
      last = sqlite3_column_int64(st, 0);
      json_array_append_new(entries, entry_json(st));
      got++;
    }
    ok = src == SQLITE_ROW || src == SQLITE_DONE;
    json_t *next = src == SQLITE_ROW ? json_pack("{s:I}", ha ? "after" : "before", (json_int_t)last)
                                     : json_null();
    if (ok)
      json_reply(res, 200,
                 json_pack("{s:s,s:{s:O,s:o,s:{s:I,s:s}}}", "status", "success", "data",
                           "entries", entries, "next", next,
                           "head", "seq", (json_int_t)hd.seq, "hash", hd.hash));
    else
      json_decref(next);
  }
  sqlite3_finalize(st);
  read_end(h, began);
  json_decref(entries);
  if (!ok) error_reply(res, 500, "cannot read the audit table");
  return 1;
}

/*------------------------------------------------------------------------------------------
 * `ripcord audit verify|export`
 *----------------------------------------------------------------------------------------*/

int rc_audit_parse_since(const char *s, int64_t now_ms, int64_t *out, rc_err_t *err) {
  static const char what[] = "--since must be RFC 3339 with a zone (2026-11-27T10:00:00Z), "
                             "milliseconds since the epoch, or a duration back from now (24h)";
  size_t n = s ? strlen(s) : 0, d = 0;
  while (d < n && s[d] >= '0' && s[d] <= '9') d++;
  if (n == 0) return rc_err_set(err, RC_EINVAL, what);
  if (d == n) { /* all digits: ms since the epoch */
    if (n > 18) return rc_err_set(err, RC_EINVAL, what);
    *out = strtoll(s, NULL, 10);
    return 0;
  }
  if (d == 4 && s[4] == '-') return rc_parse_rfc3339(s, out) == 0 ? 0 : rc_err_set(err, RC_EINVAL, what);
  uint64_t back;
  if (rc_parse_duration_ms(s, &back) != 0 || back > (uint64_t)INT64_MAX / 2)
    return rc_err_set(err, RC_EINVAL, what);
  *out = now_ms - (int64_t)back;
  return 0;
}

static int usage(FILE *f, int code) {
  fprintf(f, "usage: ripcord audit verify [--storage.path DIR] [--head SEQ:HASH]\n"
             "       ripcord audit export [--storage.path DIR] [--since T]\n"
             "  DIR defaults to ./data. T: RFC 3339 (2026-11-27T10:00:00Z), ms since the epoch,\n"
             "  or a duration back from now (24h). verify exits 0 intact, 1 tampered, 2 error.\n");
  return code;
}

/* The database as it is: read-only, no migrations, so verifying never changes what it checks. */
static int open_readonly(const char *dir, sqlite3 **h) {
  char path[4096];
  struct stat sb;
  *h = NULL;
  if (snprintf(path, sizeof(path), "%s/ripcord.db", dir) >= (int)sizeof(path)) {
    fprintf(stderr, "ripcord: error: storage path too long\n");
    return 2;
  }
  if (stat(path, &sb) != 0) {
    fprintf(stderr, "ripcord: error: %s: %s (is --storage.path right?)\n", path, strerror(errno));
    return 2;
  }
  if (sqlite3_open_v2(path, h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    fprintf(stderr, "ripcord: error: %s: %s\n", path, *h ? sqlite3_errmsg(*h) : "cannot open");
    sqlite3_close(*h);
    *h = NULL;
    return 2;
  }
  sqlite3_busy_timeout(*h, 5000);
  return 0;
}

int rc_audit_cli_main(int argc, char **argv) {
  if (argc < 2) return usage(stderr, 2);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help"))
    return usage(stdout, 0);
  int verify = !strcmp(cmd, "verify");
  if (!verify && strcmp(cmd, "export") != 0) return usage(stderr, 2);
  const char *dir = "./data", *head = NULL, *since = NULL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i], **dst = NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout, 0);
    if (!strncmp(a, "--storage.path", 14)) dst = &dir, a += 14;
    else if (verify && !strncmp(a, "--head", 6)) dst = &head, a += 6;
    else if (!verify && !strncmp(a, "--since", 7)) dst = &since, a += 7;
    else return usage(stderr, 2);
    if (*a == '=') *dst = a + 1;
    else if (*a == 0 && i + 1 < argc) *dst = argv[++i];
    else return usage(stderr, 2);
  }
  rc_err_t err = {0};
  rc_audit_head_t ext;
  int64_t since_ms = INT64_MIN;
  if (head != NULL && rc_audit_parse_head(head, &ext, &err) != 0) {
    fprintf(stderr, "ripcord: error: %s\n", err.msg);
    return 2;
  }
  if (since != NULL && rc_audit_parse_since(since, wall_ms(), &since_ms, &err) != 0) {
    fprintf(stderr, "ripcord: error: %s\n", err.msg);
    return 2;
  }
  sqlite3 *h;
  int code = open_readonly(dir, &h);
  if (code != 0) return code;
  if (verify) {
    char anchor[4200];
    snprintf(anchor, sizeof(anchor), "%s/audit.head", dir);
    rc_audit_report_t r;
    if (rc_audit_verify(h, anchor, head ? &ext : NULL, &r, &err) != 0) {
      fprintf(stderr, "ripcord: error: %s\n", err.msg);
      code = 2;
    } else if (r.tampered) {
      fprintf(stderr, "audit: TAMPERED: %s\n", r.reason);
      code = 1;
    } else {
      printf("audit: %lld entries, chain intact, head %lld %s\n", (long long)r.entries,
             (long long)r.head.seq, r.head.hash);
    }
  } else {
    int began = read_begin(h);
    if (began < 0 || rc_audit_export(h, since_ms, stdout, &err) != 0) {
      fprintf(stderr, "ripcord: error: %s\n", began < 0 ? sqlite3_errmsg(h) : err.msg);
      code = 2;
    }
    read_end(h, began);
    if (code == 0 && fflush(stdout) != 0) {
      fprintf(stderr, "ripcord: error: cannot write the export: %s\n", strerror(errno));
      code = 2;
    }
  }
  sqlite3_close(h);
  return code;
}
