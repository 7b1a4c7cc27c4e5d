/* http.h: the HTTP/1.1 server on the libuv loop — listener, connections, framing (Debian's
 * http-parser does the parsing), limits, timeouts, replies and graceful shutdown. It knows
 * nothing about remote write: every complete request goes to one handler callback, which fills
 * in a response synchronously, or defers it (rc_http_defer) and answers later from the loop
 * thread with rc_http_finish — the remote-write handler does, while a worker thread decodes.
 * A connection with a deferred request reads no further request until it is answered, which
 * keeps pipelined answers in order without a queue.
 *
 * Threads: everything here runs on the loop thread.
 * Memory: the server owns its connections; a connection is freed only in the close callbacks
 * of both its handles (libuv's rule). A request passed to the handler borrows the connection's
 * buffers and is valid only during the call, except the body of a deferred request, which
 * moves to the handler. A deferred request whose connection closes meanwhile (shutdown
 * timeout, client reset) is dropped at rc_http_finish.
 *
 * Limits and what the client sees:
 *   request line + headers over max_header_bytes, or more than max_headers  -> 431, close
 *   body (Content-Length or chunked total) over max_body_bytes              -> 413, close
 *   headers not complete header_timeout_ms after the first byte             -> 408, close
 *   body not complete body_timeout_ms after the headers                     -> 408, close
 *   keep-alive connection idle for idle_timeout_ms                          -> closed
 *   malformed HTTP (bad chunk size, bad header syntax, ...)                 -> 400, close
 *   more than max_connections open                                          -> accepted, closed at once
 *   more than 4 MiB of answers queued to a client that pipelines but does not read
 *                                      -> parsing pauses (input held) until the client reads
 * Every one of these is counted in rc_stats.
 */
#ifndef RC_HTTP_H
#define RC_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "rc.h"

typedef struct rc_http_config {
  size_t max_header_bytes;   /* request line + all headers */
  uint32_t max_headers;
  size_t max_body_bytes;
  uint32_t max_connections;
  uint64_t header_timeout_ms;
  uint64_t body_timeout_ms;
  uint64_t idle_timeout_ms;
  uint64_t shutdown_timeout_ms; /* how long in-flight requests may take after SIGTERM */
} rc_http_config_t;

#define RC_HTTP_CONFIG_DEFAULT                                                            \
  (rc_http_config_t) {                                                                    \
    .max_header_bytes = 16 * 1024, .max_headers = 100, .max_body_bytes = 32u << 20,       \
    .max_connections = 1024, .header_timeout_ms = 10000, .body_timeout_ms = 60000,        \
    .idle_timeout_ms = 120000, .shutdown_timeout_ms = 30000,                               \
  }

typedef struct rc_http_header {
  uint32_t name_off, name_len, value_off, value_len;
} rc_http_header_t;

typedef struct rc_http_request {
  int method;              /* enum http_method from http_parser.h */
  const char *path;        /* URL path, without the query; not NUL-terminated */
  size_t path_len;
  const char *query;       /* the URL's query string (after '?'), or NULL; not NUL-terminated */
  size_t query_len;
  const char *body;
  size_t body_len;
  uint64_t complete_ns;    /* uv_hrtime() when the last body byte arrived */
  /* private */
  struct rc_http_conn *conn;
  const char *hbase;
  const rc_http_header_t *headers;
  uint32_t nheaders;
} rc_http_request_t;

/* The value of query parameter `name`, percent- and '+'-decoded into out (NUL-terminated).
 * Returns its length, RC_HTTP_QP_ABSENT, or RC_HTTP_QP_BAD when it is there but longer than
 * cap-1 or badly encoded — a bad value must be refused, never taken for an absent one (a
 * dropped filter would answer with more than was asked). */
#define RC_HTTP_QP_ABSENT (-1)
#define RC_HTTP_QP_BAD (-2)
long rc_http_query_param(const rc_http_request_t *req, const char *name, char *out, size_t cap);
/* A decimal whole-number parameter in [lo, hi]: 0 absent, 1 *v set, -1 present but not such
 * a number (empty, signs, other characters, out of range, badly encoded). */
int rc_http_query_int(const rc_http_request_t *req, const char *name, int64_t lo, int64_t hi,
                      int64_t *v);

/* Case-insensitive header lookup; returns the first value (borrowed, not NUL-terminated,
 * surrounding whitespace trimmed) and its length, or NULL when absent. */
const char *rc_http_header(const rc_http_request_t *r, const char *name, size_t *len);

typedef struct rc_http_response {
  int status;
  const char *content_type; /* default text/plain; charset=utf-8 */
  rc_buf_t headers;         /* extra header lines, each ending in \r\n */
  rc_buf_t body;
  int close;                /* handler asks to close the connection after this response */
  int deferred;             /* set by rc_http_defer: no answer now */
} rc_http_response_t;

typedef struct rc_http_pending rc_http_pending_t;

/* Inside a handler: the answer will come later. The request body moves to *body (the caller
 * frees it with rc_buf_free); req->body stays valid as long as *body is. res is marked
 * deferred and must not be filled. Returns NULL when out of memory: answer now instead. */
rc_http_pending_t *rc_http_defer(const rc_http_request_t *req, rc_http_response_t *res,
                                 rc_buf_t *body);
/* Loop thread: sends the answer of a deferred request and lets its connection read the next
 * one; if the connection has closed meanwhile, only frees p. res stays the caller's. */
void rc_http_finish(rc_http_pending_t *p, rc_http_response_t *res);

typedef void (*rc_http_handler_cb)(void *ctx, const rc_http_request_t *req,
                                   rc_http_response_t *res);

typedef struct rc_http_conn rc_http_conn_t;
typedef struct rc_http_server rc_http_server_t;
typedef void (*rc_http_drained_cb)(rc_http_server_t *srv);

struct rc_http_server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t shutdown_timer;
  rc_http_config_t cfg;
  rc_http_handler_cb handler;
  void *handler_ctx;
  rc_http_conn_t *conns; /* intrusive list of open connections */
  uint32_t nconns;
  int listening, draining, shutdown_timer_on;
  rc_http_drained_cb drained_cb;
  char date[40];         /* cached Date header value */
  uint64_t date_sec;
};

/* Returns 0 or RC_EINVAL for a bad config (reason in err). */
int rc_http_server_init(rc_http_server_t *srv, uv_loop_t *loop, const rc_http_config_t *cfg,
                        rc_http_handler_cb handler, void *ctx, rc_err_t *err);
/* addr is "host:port", "[v6]:port" or ":port"; port 0 picks a free port. */
int rc_http_server_listen(rc_http_server_t *srv, const char *addr, rc_err_t *err);
/* The port actually bound, or 0. */
int rc_http_server_port(rc_http_server_t *srv);
/* Stops accepting, closes idle connections, lets requests in flight finish (each answered
 * with Connection: close), force-closes what is left after shutdown_timeout_ms, then calls
 * cb once no connection remains and the server's own handles are closed. */
void rc_http_server_shutdown(rc_http_server_t *srv, rc_http_drained_cb cb);

/* Parses "host:port" into a sockaddr. Returns 0 or RC_EINVAL with a reason. */
int rc_http_parse_addr(const char *addr, struct sockaddr_storage *out, rc_err_t *err);
const char *rc_http_status_text(int status);

#endif
