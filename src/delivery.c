/* delivery.c: outbox delivery over libcurl multi on libuv; see delivery.h. */
#include "delivery.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "presets.h"

#define MAX_INFLIGHT 32
#define TICK_MS 500
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 60000
#define MAX_UNSAVED 256 /* outcomes held while the store refuses writes */

typedef struct receiver {
  char *name, *url, *type, *ref;
  unsigned char *secret;
  size_t secret_len;
  uint64_t timeout_ms, deadline_ms;
} receiver_t;

typedef struct transfer {
  struct transfer *prev, *next; /* the courier's list of transfers in flight */
  rc_delivery_t *d;
  CURL *easy;
  int64_t outbox_id;
  int attempts;
  int64_t deadline_at;
  char *body;
  struct curl_slist *headers;
  char errbuf[CURL_ERROR_SIZE];
} transfer_t;

/* A socket curl asked us to watch. */
typedef struct sockctx {
  uv_poll_t poll;
  struct sockctx *prev, *next; /* the courier's list of watched sockets */
  curl_socket_t fd;
  rc_delivery_t *d;
} sockctx_t;

struct rc_delivery {
  uv_loop_t *loop;
  rc_db_t *db;
  CURLM *multi;
  uv_timer_t curl_timer, tick;
  receiver_t *recv;
  const char **names;
  size_t nrecv;
  transfer_t *transfers;
  sockctx_t *sockets;
  int64_t inflight_ids[MAX_INFLIGHT];
  uint32_t ninflight;
  int closing, handles_open;
  void (*done)(void *);
  void *done_ctx;
  uint64_t delivered, failed_attempts, gave_up, attempts;
  /* Outcomes the store refused (full disk, read-only directory), oldest first: written by
   * the next scan that finds it writable again. Their rows are not sent meanwhile. */
  struct outcome *unsaved;
  uint32_t nunsaved;
  uint64_t held_total, held_dropped;
  rc_delivery_audit_cb audit_cb;
  void *audit_ctx;
};

static int64_t wall_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*------------------------------------------------------------------------------------------
 * Receivers and their secrets
 *----------------------------------------------------------------------------------------*/

static int read_secret(const rc_receiver_cfg_t *c, receiver_t *r, rc_err_t *err) {
  if (c->secret_env != NULL) {
    const char *v = getenv(c->secret_env);
    if (v == NULL || *v == 0)
      return rc_err_set(err, RC_EINVAL, "receiver %s: environment variable %s is not set",
                        c->name, c->secret_env);
    r->secret_len = strlen(v);
    r->secret = (unsigned char *)strdup(v);
  } else if (c->secret_file != NULL) {
    FILE *f = fopen(c->secret_file, "rb");
    if (f == NULL)
      return rc_err_set(err, RC_EIO, "receiver %s: %s: %s", c->name, c->secret_file,
                        strerror(errno));
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--; /* a file ends in one */
    if (n == 0)
      return rc_err_set(err, RC_EINVAL, "receiver %s: %s is empty", c->name, c->secret_file);
    r->secret = malloc(n + 1); /* NUL-terminated too: presets put some secrets in the body */
    if (r->secret) {
      memcpy(r->secret, buf, n);
      r->secret[n] = 0;
    }
    r->secret_len = n;
  } else {
    rc_log(RC_LOG_WARN, "receiver without a secret: its requests are not signed", "name=%s",
           c->name);
    return 0;
  }
  if (r->secret == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  /* Some presets send the secret in a header (GitHub's token) or a JSON string: a control
   * character there would split the header (injection) or be a mistake in the file. */
  for (size_t i = 0; i < r->secret_len; i++)
    if (r->secret[i] < 0x20 || r->secret[i] == 0x7f)
      return rc_err_set(err, RC_EINVAL, "receiver %s: the secret holds a control character "
                        "(a line break inside the file?)", c->name);
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Sending
 *----------------------------------------------------------------------------------------*/

static const receiver_t *find_receiver(const rc_delivery_t *d, const char *name) {
  for (size_t i = 0; i < d->nrecv; i++)
    if (strcmp(d->recv[i].name, name) == 0) return &d->recv[i];
  return NULL;
}

static void hex(const unsigned char *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = 0;
}

static void forget_inflight(rc_delivery_t *d, int64_t id) {
  for (uint32_t i = 0; i < d->ninflight; i++)
    if (d->inflight_ids[i] == id) {
      d->inflight_ids[i] = d->inflight_ids[--d->ninflight];
      return;
    }
}

static int is_inflight(const rc_delivery_t *d, int64_t id) {
  for (uint32_t i = 0; i < d->ninflight; i++)
    if (d->inflight_ids[i] == id) return 1;
  return 0;
}

static void transfer_unlink(rc_delivery_t *d, transfer_t *t) {
  if (t->prev) t->prev->next = t->next;
  else d->transfers = t->next;
  if (t->next) t->next->prev = t->prev;
}

static void transfer_free(transfer_t *t) {
  curl_slist_free_all(t->headers);
  free(t->body);
  free(t);
}

/* An attempt's outcome, to be written to its outbox row. */
typedef struct outcome {
  int64_t outbox_id, next, now;
  int attempts, ok;
  long status;
  char state[12];
  char error[256];
} outcome_t;

/* Writes an outcome to the outbox; a row's end (delivered, or given up at its deadline) is
 * audited with the row update in one transaction (the attempts between are in the outbox and
 * the metrics). Returns 0, or -1 when the store refused the write. */
static int persist(rc_delivery_t *d, const outcome_t *o) {
  sqlite3_stmt *st = NULL;
  sqlite3 *h = rc_db_handle(d->db);
  int final = strcmp(o->state, "pending") != 0 && d->audit_cb != NULL;
  int rc = 0;
  if (final && sqlite3_exec(h, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) rc = -1;
  if (rc == 0 && sqlite3_prepare_v2(h,
                         "UPDATE outbox SET state = ?, attempts = ?, next_attempt_at = ?,"
                         " last_status = ?, last_error = ?,"
                         " delivered_at = CASE WHEN ? THEN ? ELSE delivered_at END WHERE id = ?",
                         -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, o->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, o->attempts);
    sqlite3_bind_int64(st, 3, o->next);
    if (o->status > 0) sqlite3_bind_int64(st, 4, o->status);
    if (o->error[0]) sqlite3_bind_text(st, 5, o->error, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, o->ok);
    sqlite3_bind_int64(st, 7, o->now);
    sqlite3_bind_int64(st, 8, o->outbox_id);
    if (sqlite3_step(st) != SQLITE_DONE) rc = -1;
  } else {
    rc = -1;
  }
  sqlite3_finalize(st);
  if (rc == 0 && final) {
    int64_t event_id = 0;
    char receiver[128] = "";
    if (sqlite3_prepare_v2(h, "SELECT event_id, receiver FROM outbox WHERE id = ?", -1, &st,
                           NULL) == SQLITE_OK) {
      sqlite3_bind_int64(st, 1, o->outbox_id);
      if (sqlite3_step(st) == SQLITE_ROW) {
        event_id = sqlite3_column_int64(st, 0);
        snprintf(receiver, sizeof(receiver), "%s", (const char *)sqlite3_column_text(st, 1));
      }
    }
    sqlite3_finalize(st);
    char subject[40];
    snprintf(subject, sizeof(subject), "event:%lld", (long long)event_id);
    json_t *detail = json_pack("{s:s,s:I,s:i,s:i,s:s}", "receiver", receiver, "outbox",
                               (json_int_t)o->outbox_id, "attempts", o->attempts, "status",
                               (int)o->status, "error", o->error);
    d->audit_cb(d->audit_ctx, o->now, "ripcord", o->ok ? "delivery.delivered" : "delivery.gave_up",
                subject, detail);
    json_decref(detail);
    if (sqlite3_exec(h, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) rc = -1;
  }
  rc_db_note_write(d->db, rc == 0, "outbox"); /* before ROLLBACK: it reads the error */
  if (rc != 0 && final) sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
  return rc;
}

static int unsaved_find(const rc_delivery_t *d, int64_t id) {
  for (uint32_t i = 0; i < d->nunsaved; i++)
    if (d->unsaved[i].outbox_id == id) return (int)i;
  return -1;
}

/* Writes the outcomes the store refused before, oldest first; stops at the first refusal. */
static void flush_unsaved(rc_delivery_t *d) {
  uint32_t done = 0;
  while (done < d->nunsaved && persist(d, &d->unsaved[done]) == 0) done++;
  if (done == 0) return;
  memmove(d->unsaved, d->unsaved + done, (d->nunsaved - done) * sizeof(d->unsaved[0]));
  d->nunsaved -= done;
  rc_log(RC_LOG_WARN, "held delivery outcomes written to the outbox", "count=%u still_held=%u",
         done, d->nunsaved);
}

/* Records an attempt's outcome in the outbox; when the store refuses, the outcome is held
 * (and the row left alone by scan) until it takes writes: a delivered row is not sent again
 * and a failing receiver keeps its backoff. Held outcomes are lost on a restart, and a
 * delivered row then goes out once more: at least once, and the idempotency key lets the
 * receiver tell. */
static void record(rc_delivery_t *d, transfer_t *t, long status, const char *error) {
  outcome_t o = {.outbox_id = t->outbox_id, .status = status, .now = wall_ms()};
  o.ok = status >= 200 && status < 300;
  o.attempts = t->attempts + 1;
  o.next = o.now;
  snprintf(o.state, sizeof(o.state), "pending");
  snprintf(o.error, sizeof(o.error), "%s", error ? error : "");
  if (o.ok) {
    snprintf(o.state, sizeof(o.state), "delivered");
    d->delivered++;
  } else {
    d->failed_attempts++;
    uint64_t backoff = BACKOFF_MIN_MS;
    for (int i = 1; i < o.attempts && backoff < BACKOFF_MAX_MS; i++) backoff *= 2;
    if (backoff > BACKOFF_MAX_MS) backoff = BACKOFF_MAX_MS;
    /* +-20 % jitter, so replicas and many rows do not retry in lockstep. */
    double j = 0.8 + 0.4 * ((double)(rand() % 1000) / 1000.0);
    o.next = o.now + (int64_t)((double)backoff * j);
    if (o.next > t->deadline_at) {
      snprintf(o.state, sizeof(o.state), "failed");
      d->gave_up++;
    }
  }
  if (d->nunsaved > 0 || persist(d, &o) != 0) {
    int i = unsaved_find(d, o.outbox_id);
    if (i >= 0) {
      d->unsaved[i] = o;
    } else if (d->nunsaved < MAX_UNSAVED) {
      d->unsaved[d->nunsaved++] = o;
      d->held_total++;
    } else {
      /* Bounded: the row stays pending in the outbox and is sent again once scan sees it. */
      d->held_dropped++;
    }
    rc_log(RC_LOG_ERROR, "delivery outcome held in memory until the store takes writes",
           "outbox=%lld state=%s held=%u", (long long)o.outbox_id, o.state, d->nunsaved);
  }
  if (!o.ok)
    rc_log(RC_LOG_WARN, strcmp(o.state, "failed") == 0 ? "webhook delivery gave up"
                                                       : "webhook delivery failed, will retry",
           "outbox=%lld attempt=%d status=%ld err=\"%s\"", (long long)o.outbox_id, o.attempts,
           status, o.error);
}

static void check_done(rc_delivery_t *d) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(d->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    transfer_t *t = NULL;
    curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    long status = 0;
    curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
    const char *error = m->data.result == CURLE_OK ? (status >= 300 ? "HTTP error status" : "")
                                                   : (t->errbuf[0] ? t->errbuf
                                                                   : curl_easy_strerror(m->data.result));
    record(d, t, m->data.result == CURLE_OK ? status : 0, error);
    forget_inflight(d, t->outbox_id);
    transfer_unlink(d, t);
    curl_multi_remove_handle(d->multi, m->easy_handle);
    curl_easy_cleanup(m->easy_handle);
    transfer_free(t);
  }
}

static void start_transfer(rc_delivery_t *d, int64_t id, const char *receiver, int attempts,
                           int64_t deadline_at, const char *key, const char *payload,
                           const char *target) {
  const receiver_t *r = find_receiver(d, receiver);
  if (r == NULL) return; /* removed from the config: stays pending until it returns */
  rc_preset_out_t pre;
  if (rc_preset_build(r->type, payload, r->name, target, (const char *)r->secret, r->ref,
                      &pre) != 0)
    return;
  transfer_t *t = calloc(1, sizeof(*t));
  if (t == NULL) {
    free(pre.body);
    return;
  }
  t->d = d;
  t->outbox_id = id;
  t->attempts = attempts;
  t->deadline_at = deadline_at;
  t->body = pre.body;
  t->easy = curl_easy_init();
  char line[512], ts[32];
  snprintf(ts, sizeof(ts), "%lld", (long long)(wall_ms() / 1000));
  snprintf(line, sizeof(line), "Idempotency-Key: %s", key);
  t->headers = curl_slist_append(t->headers, "Content-Type: application/json");
  t->headers = curl_slist_append(t->headers, line);
  snprintf(line, sizeof(line), "X-Ripcord-Timestamp: %s", ts);
  t->headers = curl_slist_append(t->headers, line);
  if (pre.header[0]) t->headers = curl_slist_append(t->headers, pre.header);
  if (strcmp(r->type, "github") == 0)
    t->headers = curl_slist_append(t->headers, "Accept: application/vnd.github+json");
  if (pre.sign && r->secret != NULL && t->body != NULL) {
    /* HMAC over "timestamp.body": the timestamp is signed too, so a captured request cannot
     * be replayed later with a fresh timestamp. */
    size_t tl = strlen(ts), bl = strlen(t->body);
    unsigned char *msg = malloc(tl + 1 + bl), mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    if (msg != NULL) {
      memcpy(msg, ts, tl);
      msg[tl] = '.';
      memcpy(msg + tl + 1, t->body, bl);
      HMAC(EVP_sha256(), r->secret, (int)r->secret_len, msg, tl + 1 + bl, mac, &maclen);
      free(msg);
      char hx[2 * EVP_MAX_MD_SIZE + 1];
      hex(mac, maclen, hx);
      snprintf(line, sizeof(line), "X-Ripcord-Signature: sha256=%s", hx);
      t->headers = curl_slist_append(t->headers, line);
    }
  }
  if (t->easy == NULL || t->body == NULL || t->headers == NULL) {
    if (t->easy) curl_easy_cleanup(t->easy);
    transfer_free(t);
    return;
  }
  curl_easy_setopt(t->easy, CURLOPT_URL, r->url);
  curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->body);
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->headers);
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
  curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
  curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "ripcord/" RC_VERSION);
  if (curl_multi_add_handle(d->multi, t->easy) != CURLM_OK) {
    curl_easy_cleanup(t->easy);
    transfer_free(t);
    return;
  }
  d->attempts++;
  d->inflight_ids[d->ninflight++] = id;
  t->next = d->transfers;
  if (d->transfers) d->transfers->prev = t;
  d->transfers = t;
}

/* Starts every due row not already in flight, up to MAX_INFLIGHT. */
static void scan(rc_delivery_t *d) {
  if (d->closing) return;
  if (d->nunsaved > 0) flush_unsaved(d);
  if (d->ninflight >= MAX_INFLIGHT) return;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(rc_db_handle(d->db),
                         "SELECT o.id, o.receiver, o.attempts, o.deadline_at, e.idempotency_key,"
                         " e.payload, o.target FROM outbox o"
                         " JOIN rollback_events e ON e.id = o.event_id"
                         " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
                         " ORDER BY o.next_attempt_at LIMIT ?", -1, &st, NULL) != SQLITE_OK)
    return;
  sqlite3_bind_int64(st, 1, wall_ms());
  sqlite3_bind_int(st, 2, MAX_INFLIGHT * 2);
  while (d->ninflight < MAX_INFLIGHT && sqlite3_step(st) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(st, 0);
    if (is_inflight(d, id)) continue;
    int u = unsaved_find(d, id);
    if (u >= 0 && (strcmp(d->unsaved[u].state, "pending") != 0 ||
                   d->unsaved[u].next > wall_ms()))
      continue; /* its outcome is held: delivered or given up, or backing off */
    start_transfer(d, id, (const char *)sqlite3_column_text(st, 1), sqlite3_column_int(st, 2),
                   sqlite3_column_int64(st, 3), (const char *)sqlite3_column_text(st, 4),
                   (const char *)sqlite3_column_text(st, 5),
                   (const char *)sqlite3_column_text(st, 6));
  }
  sqlite3_finalize(st);
}

/*------------------------------------------------------------------------------------------
 * curl multi on libuv
 *----------------------------------------------------------------------------------------*/

static void on_poll(uv_poll_t *p, int status, int events) {
  sockctx_t *s = p->data;
  int flags = 0, running;
  if (status < 0) flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  rc_delivery_t *d = s->d;
  curl_multi_socket_action(d->multi, s->fd, flags, &running);
  check_done(d);
}

static void on_poll_closed(uv_handle_t *h) { free(h->data); }

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp) {
  rc_delivery_t *d = userp;
  sockctx_t *s = socketp;
  (void)e;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      if (s->prev) s->prev->next = s->next;
      else d->sockets = s->next;
      if (s->next) s->next->prev = s->prev;
      uv_poll_stop(&s->poll);
      uv_close((uv_handle_t *)&s->poll, on_poll_closed);
      curl_multi_assign(d->multi, fd, NULL);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL) return -1;
    s->fd = fd;
    s->d = d;
    if (uv_poll_init_socket(d->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->poll.data = s;
    curl_multi_assign(d->multi, fd, s);
    s->next = d->sockets;
    if (d->sockets) d->sockets->prev = s;
    d->sockets = s;
  }
  int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
  uv_poll_start(&s->poll, ev, on_poll);
  return 0;
}

static void on_curl_timer(uv_timer_t *t) {
  rc_delivery_t *d = t->data;
  int running;
  curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(d);
}

static int on_timer_request(CURLM *m, long timeout_ms, void *userp) {
  rc_delivery_t *d = userp;
  (void)m;
  if (d->closing) return 0;
  if (timeout_ms < 0) uv_timer_stop(&d->curl_timer);
  else uv_timer_start(&d->curl_timer, on_curl_timer, (uint64_t)timeout_ms, 0);
  return 0;
}

static void on_tick(uv_timer_t *t) { scan(t->data); }

/*------------------------------------------------------------------------------------------
 * Lifetime
 *----------------------------------------------------------------------------------------*/

/* The receiver's URL: as written, or from its variable or file (url_env, url_file: a Slack
 * incoming-webhook URL is a credential and never sits in the config). NULL with err set. */
static char *read_url(const rc_receiver_cfg_t *c, rc_err_t *err) {
  char buf[4096];
  const char *u = c->url;
  if (u == NULL && c->url_env != NULL) {
    u = getenv(c->url_env);
    if (u == NULL || *u == 0) {
      rc_err_set(err, RC_EINVAL, "receiver %s: environment variable %s is not set", c->name,
                 c->url_env);
      return NULL;
    }
  } else if (u == NULL && c->url_file != NULL) {
    FILE *f = fopen(c->url_file, "rb");
    if (f == NULL) {
      rc_err_set(err, RC_EIO, "receiver %s: %s: %s", c->name, c->url_file, strerror(errno));
      return NULL;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    buf[n] = 0;
    u = buf;
  }
  if (u == NULL || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)) {
    rc_err_set(err, RC_EINVAL, "receiver %s: the url must start with http:// or https://",
               c->name);
    return NULL;
  }
  for (const char *p = u; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
      rc_err_set(err, RC_EINVAL, "receiver %s: the url holds a space or a control character",
                 c->name);
      return NULL;
    }
  char *out = strdup(u);
  if (out == NULL) rc_err_set(err, RC_ENOMEM, "out of memory");
  return out;
}

int rc_delivery_new(uv_loop_t *loop, rc_db_t *db, const rc_receiver_cfg_t *recv, size_t n,
                    rc_delivery_t **out, rc_err_t *err) {
  *out = NULL;
  rc_delivery_t *d = calloc(1, sizeof(*d));
  if (d == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  d->loop = loop;
  d->db = db;
  d->recv = calloc(n ? n : 1, sizeof(*d->recv));
  d->names = calloc(n ? n : 1, sizeof(*d->names));
  d->unsaved = calloc(MAX_UNSAVED, sizeof(*d->unsaved));
  int rc = d->recv && d->names && d->unsaved ? 0 : rc_err_set(err, RC_ENOMEM, "out of memory");
  for (size_t i = 0; rc == 0 && i < n; i++) {
    receiver_t *r = &d->recv[i];
    r->name = strdup(recv[i].name);
    r->type = strdup(recv[i].type ? recv[i].type : "generic");
    r->ref = recv[i].ref ? strdup(recv[i].ref) : NULL;
    r->timeout_ms = recv[i].timeout_ms;
    r->deadline_ms = recv[i].deadline_ms;
    d->nrecv++;
    d->names[i] = r->name;
    if (r->name == NULL || r->type == NULL) rc = rc_err_set(err, RC_ENOMEM, "out of memory");
    if (rc == 0 && (r->url = read_url(&recv[i], err)) == NULL) rc = err ? err->code : RC_EINVAL;
    if (rc == 0) rc = read_secret(&recv[i], r, err);
  }
  if (rc == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
    rc = rc_err_set(err, RC_EIO, "cannot initialise libcurl");
  if (rc == 0 && (d->multi = curl_multi_init()) == NULL)
    rc = rc_err_set(err, RC_ENOMEM, "cannot create a curl multi handle");
  if (rc != 0) {
    for (size_t i = 0; i < d->nrecv; i++) {
      free(d->recv[i].name), free(d->recv[i].url), free(d->recv[i].secret);
      free(d->recv[i].type), free(d->recv[i].ref);
    }
    free(d->recv);
    free(d->names);
    free(d->unsaved);
    free(d);
    return rc;
  }
  curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
  curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
  curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
  curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
  uv_timer_init(loop, &d->curl_timer);
  uv_timer_init(loop, &d->tick);
  d->curl_timer.data = d->tick.data = d;
  d->handles_open = 2;
  /* Rows left pending by a previous run are due now: the first tick sends them. */
  uv_timer_start(&d->tick, on_tick, 0, TICK_MS);
  *out = d;
  return 0;
}

void rc_delivery_kick(rc_delivery_t *d) {
  if (d != NULL) scan(d);
}

int rc_delivery_receiver(const rc_delivery_t *d, const char *name, uint64_t *deadline_ms) {
  const receiver_t *r = find_receiver(d, name);
  if (r != NULL && deadline_ms) *deadline_ms = r->deadline_ms;
  return r != NULL;
}

const char *rc_delivery_receiver_of_type(const rc_delivery_t *d, const char *type) {
  for (size_t i = 0; i < d->nrecv; i++)
    if (strcmp(d->recv[i].type, type) == 0) return d->recv[i].name;
  return NULL;
}

void rc_delivery_set_audit(rc_delivery_t *d, rc_delivery_audit_cb cb, void *ctx) {
  d->audit_cb = cb;
  d->audit_ctx = ctx;
}

const char *rc_delivery_receiver_type(const rc_delivery_t *d, const char *name) {
  for (size_t i = 0; i < d->nrecv; i++)
    if (strcmp(d->recv[i].name, name) == 0) return d->recv[i].type;
  return NULL;
}

size_t rc_delivery_receivers(const rc_delivery_t *d, const char *const **names) {
  *names = d->names;
  return d->nrecv;
}

static void on_closed(uv_handle_t *h) {
  rc_delivery_t *d = h->data;
  if (--d->handles_open > 0) return;
  for (size_t i = 0; i < d->nrecv; i++) {
    free(d->recv[i].name), free(d->recv[i].url), free(d->recv[i].secret);
    free(d->recv[i].type), free(d->recv[i].ref);
  }
  free(d->recv);
  free(d->names);
  if (d->nunsaved > 0)
    rc_log(RC_LOG_ERROR, "stopping with delivery outcomes the store never took: those rows "
                         "stay pending and are sent again after the restart",
           "held=%u", d->nunsaved);
  free(d->unsaved);
  void (*done)(void *) = d->done;
  void *ctx = d->done_ctx;
  free(d);
  if (done) done(ctx);
}

void rc_delivery_close(rc_delivery_t *d, void (*done)(void *ctx), void *ctx) {
  if (d == NULL) {
    if (done) done(ctx);
    return;
  }
  d->closing = 1;
  d->done = done;
  d->done_ctx = ctx;
  /* Abandon transfers in flight: their rows stay pending and go out after a restart. */
  transfer_t *t = d->transfers;
  d->transfers = NULL;
  while (t != NULL) {
    transfer_t *next = t->next;
    curl_multi_remove_handle(d->multi, t->easy);
    curl_easy_cleanup(t->easy);
    transfer_free(t);
    t = next;
  }
  curl_multi_cleanup(d->multi);
  d->multi = NULL;
  /* Sockets curl did not hand back: close their watchers ourselves. */
  while (d->sockets != NULL) {
    sockctx_t *sk = d->sockets;
    d->sockets = sk->next;
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, on_poll_closed);
  }
  uv_timer_stop(&d->tick);
  uv_timer_stop(&d->curl_timer);
  uv_close((uv_handle_t *)&d->tick, on_closed);
  uv_close((uv_handle_t *)&d->curl_timer, on_closed);
}

void rc_delivery_render_metrics(rc_delivery_t *d, rc_buf_t *o) {
  if (d == NULL) return;
  rc_buf_printf(o,
                "# HELP ripcord_webhook_attempts_total Webhook requests started.\n"
                "# TYPE ripcord_webhook_attempts_total counter\n"
                "ripcord_webhook_attempts_total %llu\n"
                "# HELP ripcord_webhook_deliveries_total Outbox rows delivered (2xx answer).\n"
                "# TYPE ripcord_webhook_deliveries_total counter\n"
                "ripcord_webhook_deliveries_total %llu\n"
                "# HELP ripcord_webhook_failed_attempts_total Attempts answered with an error or none.\n"
                "# TYPE ripcord_webhook_failed_attempts_total counter\n"
                "ripcord_webhook_failed_attempts_total %llu\n"
                "# HELP ripcord_webhook_gave_up_total Outbox rows that passed their deadline undelivered.\n"
                "# TYPE ripcord_webhook_gave_up_total counter\n"
                "ripcord_webhook_gave_up_total %llu\n",
                (unsigned long long)d->attempts, (unsigned long long)d->delivered,
                (unsigned long long)d->failed_attempts, (unsigned long long)d->gave_up);
  rc_buf_printf(o,
                "# HELP ripcord_webhook_outcomes_held Delivery outcomes the embedded store "
                "refused, held in memory until it takes writes.\n"
                "# TYPE ripcord_webhook_outcomes_held gauge\nripcord_webhook_outcomes_held %u\n",
                d->nunsaved);
}
