/* delivery.h: the outbox's courier — sends every pending outbox row (db.c, table outbox) to
 * its receiver over HTTP, at least once, with libcurl's multi interface driven by the libuv
 * loop (socket and timer callbacks: no blocking call, no thread per request).
 *
 * Each request carries Content-Type: application/json, the event's Idempotency-Key (the same
 * for every attempt, and for a replica that saw the same firing), X-Ripcord-Timestamp (unix
 * seconds) and, when the receiver has a secret, X-Ripcord-Signature: sha256=<hex of
 * HMAC-SHA256(secret, timestamp + "." + body)> (OpenSSL's libcrypto). A 2xx answer delivers
 * the row; anything else — an error status, a refused connection, the receiver's timeout —
 * schedules another attempt with exponential backoff (0.5 s doubling to 60 s, +-20 % jitter)
 * until the receiver's deadline, after which the row is failed. Rows are read from the
 * database, so whatever was pending when ripcord stopped or crashed is sent after restart.
 *
 * Secrets come from an environment variable or a file named in the config, read once at
 * start; never from the config itself.
 *
 * Threads: the loop thread only. Memory: the courier owns its transfers and handles; close it
 * with rc_delivery_close and run the loop until the callback fires.
 */
#ifndef RC_DELIVERY_H
#define RC_DELIVERY_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "config.h"
#include "db.h"
#include "rc.h"

typedef struct rc_delivery rc_delivery_t;

/* Loads the receivers (their secrets too). Returns 0, or RC_EINVAL / RC_EIO (a secret that
 * cannot be read) / RC_ENOMEM with a reason. */
int rc_delivery_new(uv_loop_t *loop, rc_db_t *db, const rc_receiver_cfg_t *recv, size_t n,
                    rc_delivery_t **out, rc_err_t *err);
/* Audit hook: called inside the transaction that records a row's end (delivered or given
 * up at its deadline); detail borrowed. */
typedef void (*rc_delivery_audit_cb)(void *ctx, int64_t at_ms, const char *actor,
                                     const char *action, const char *subject,
                                     const json_t *detail);
void rc_delivery_set_audit(rc_delivery_t *d, rc_delivery_audit_cb cb, void *ctx);
/* Looks for due rows now (after an event was written). */
void rc_delivery_kick(rc_delivery_t *d);
/* 1 if a receiver of that name is configured; its deadline in *deadline_ms. */
int rc_delivery_receiver(const rc_delivery_t *d, const char *name, uint64_t *deadline_ms);
/* The name of the first receiver of a preset type (slack, pagerduty, ...), or NULL. */
const char *rc_delivery_receiver_of_type(const rc_delivery_t *d, const char *type);
/* The type of the receiver called name (NULL: none such, e.g. removed from the config). */
const char *rc_delivery_receiver_type(const rc_delivery_t *d, const char *name);
/* The names of all receivers (borrowed), for rules that name none. */
size_t rc_delivery_receivers(const rc_delivery_t *d, const char *const **names);
/* Stops sending (transfers in flight are abandoned: their rows stay pending) and closes the
 * handles; done(ctx) runs once they are closed. */
void rc_delivery_close(rc_delivery_t *d, void (*done)(void *ctx), void *ctx);
void rc_delivery_render_metrics(rc_delivery_t *d, rc_buf_t *out);

#endif
