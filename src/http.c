/* http.c: HTTP/1.1 server on libuv with http-parser; see http.h for the contract.
 *
 * A connection moves through phases, and one timer per connection enforces the phase's limit:
 *
 *   NEW/IDLE --first byte--> HEADERS --headers complete--> BODY --message complete--> handler
 *      ^                                                                                 |
 *      +--------------------------- response queued (keep-alive) ------------------------+
 *
 * The header deadline runs from the first byte of a request, not from the last read, so a
 * client dripping one byte a second (slow loris) is cut off after header_timeout_ms however
 * steadily it drips. Handlers run inside on_message_complete; one that defers its answer
 * (rc_http_defer) leaves the connection in WAIT with the parser paused and reading stopped
 * until rc_http_finish answers and resumes it. Either way one request is answered before the
 * next is parsed, which keeps pipelined responses in request order without a queue.
 *
 * Closing: after an error response we half-close (FIN) and keep reading for a short linger,
 * discarding input, so that a client still sending a rejected body receives our response
 * instead of a reset.
 */
#include "http.h"

#include <ctype.h>
#include <http_parser.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "stats.h"

#define READ_BUF_SIZE (64 * 1024)
#define LINGER_MS 2000
#define MAX_WRITE_QUEUE (4u << 20) /* stop reading while this much response data is queued */
#define KEEP_BODY_BUF (1u << 20)   /* larger body buffers are freed between requests */

typedef enum { PH_NEW, PH_IDLE, PH_HEADERS, PH_BODY, PH_WAIT, PH_CLOSING, PH_LINGER } phase_t;

struct rc_http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown_req;
  rc_http_server_t *srv;
  rc_http_conn_t *prev, *next;
  http_parser parser;
  phase_t phase;
  int handles_open;       /* closed handles still to report back before free */
  int closing;            /* no more requests are processed on this connection */
  int error_status;       /* set by a callback that stopped the parser */
  const char *error_detail; /* ... and, for a 400, why (static text) */
  int last_was_value;
  int reading;
  int expect_continue;
  int close_when_written; /* close as soon as the queued writes are done (peer sent EOF) */
  rc_buf_t held;          /* input not parsed yet: the parser is paused (see conn_feed) */
  rc_buf_t hbuf;          /* URL and header bytes of the current request */
  uint32_t url_off, url_len;
  rc_http_header_t *headers;
  uint32_t nheaders;
  rc_buf_t body;
  uint64_t pending_write; /* bytes queued in uv_write requests */
  rc_http_pending_t *pending; /* the deferred request being worked on, if any */
};

struct rc_http_pending {
  rc_http_conn_t *conn; /* NULL once the connection is gone */
  int keep_alive, head;
};

typedef struct write_req {
  uv_write_t req;
  rc_http_conn_t *conn;
  size_t len;
  int close_after;
  char data[];
} write_req_t;

static char g_read_buf[READ_BUF_SIZE]; /* one loop thread: one shared read buffer */

static void conn_close(rc_http_conn_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void conn_send(rc_http_conn_t *c, const char *data, size_t len, int close_after);
static void conn_error(rc_http_conn_t *c, int status, const char *reason);
static void conn_feed(rc_http_conn_t *c, const char *data, size_t n);
static void arm_timer(rc_http_conn_t *c, phase_t ph);
static void conn_resume(rc_http_conn_t *c);

/*------------------------------------------------------------------------------------------
 * Small helpers
 *----------------------------------------------------------------------------------------*/

/* Every status a handler answers with needs its phrase here: 201, 202, 401, 403, 409 and 422
 * came with the deploy registry, rollbacks, auth, approvals and queries but were missing here,
 * and went out as "HTTP/1.1 401 Unknown" (fuzz_http's first find). Clients go by the number,
 * but a proxy's log or a person reading curl -v should not have to. 304: the status page. */
const char *rc_http_status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

static int trim_eq_ci(const char *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  return alen == blen && strncasecmp(a, b, blen) == 0;
}

const char *rc_http_header(const rc_http_request_t *r, const char *name, size_t *len) {
  for (uint32_t i = 0; i < r->nheaders; i++) {
    const rc_http_header_t *h = &r->headers[i];
    if (!trim_eq_ci(r->hbase + h->name_off, h->name_len, name)) continue;
    const char *v = r->hbase + h->value_off;
    size_t n = h->value_len;
    while (n && (*v == ' ' || *v == '\t')) v++, n--;
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    *len = n;
    return v;
  }
  return NULL;
}

int rc_http_parse_addr(const char *addr, struct sockaddr_storage *out, rc_err_t *err) {
  char host[256];
  const char *colon;
  memset(out, 0, sizeof(*out));
  if (addr == NULL || *addr == '\0')
    return rc_err_set(err, RC_EINVAL, "empty listen address");
  if (addr[0] == '[') {
    const char *end = strchr(addr, ']');
    if (end == NULL || end[1] != ':')
      return rc_err_set(err, RC_EINVAL, "listen address %s: want [ipv6]:port", addr);
    size_t hl = (size_t)(end - addr - 1);
    if (hl >= sizeof(host)) return rc_err_set(err, RC_EINVAL, "listen address too long");
    memcpy(host, addr + 1, hl);
    host[hl] = '\0';
    colon = end + 1;
  } else {
    colon = strrchr(addr, ':');
    if (colon == NULL)
      return rc_err_set(err, RC_EINVAL, "listen address %s: want host:port", addr);
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host)) return rc_err_set(err, RC_EINVAL, "listen address too long");
    memcpy(host, addr, hl);
    host[hl] = '\0';
  }
  char *endp;
  const char *ps = colon + 1;
  long port = strtol(ps, &endp, 10);
  if (*ps == '\0' || *endp != '\0' || port < 0 || port > 65535)
    return rc_err_set(err, RC_EINVAL, "listen address %s: port must be 0..65535", addr);
  if (host[0] == '\0') strcpy(host, "0.0.0.0");
  if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0) return 0;
  if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) == 0) return 0;
  return rc_err_set(err, RC_EINVAL, "listen address %s: %s is not an IP address", addr, host);
}

static const char *cached_date(rc_http_server_t *srv) {
  time_t now = time(NULL);
  if ((uint64_t)now != srv->date_sec) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(srv->date, sizeof(srv->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    srv->date_sec = (uint64_t)now;
  }
  return srv->date;
}

/*------------------------------------------------------------------------------------------
 * Connection lifetime
 *----------------------------------------------------------------------------------------*/

static void conn_free(rc_http_conn_t *c) {
  rc_http_server_t *srv = c->srv;
  if (c->prev) c->prev->next = c->next;
  else srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  srv->nconns--;
  rc_stat_sub(&rc_stats.conn_open, 1);
  if (c->pending != NULL) c->pending->conn = NULL; /* its answer will find no one */
  rc_buf_free(&c->hbuf);
  rc_buf_free(&c->body);
  rc_buf_free(&c->held);
  free(c->headers);
  free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  rc_http_conn_t *c = h->data;
  if (--c->handles_open == 0) {
    rc_http_server_t *srv = c->srv;
    conn_free(c);
    if (srv->draining && srv->nconns == 0 && srv->drained_cb != NULL) {
      if (srv->shutdown_timer_on) {
        srv->shutdown_timer_on = 0;
        uv_close((uv_handle_t *)&srv->shutdown_timer, NULL);
      }
      rc_http_drained_cb cb = srv->drained_cb;
      srv->drained_cb = NULL;
      cb(srv);
    }
  }
}

static void conn_close(rc_http_conn_t *c) {
  if (c->phase == PH_CLOSING) return;
  c->phase = PH_CLOSING;
  c->closing = 1;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void on_timeout(uv_timer_t *t) {
  rc_http_conn_t *c = t->data;
  switch (c->phase) {
    case PH_NEW:
    case PH_IDLE:
      rc_stat_add(&rc_stats.conn_timeouts[c->phase == PH_NEW ? RC_TIMEOUT_HEADER : RC_TIMEOUT_IDLE], 1);
      conn_close(c);
      break;
    case PH_HEADERS:
      rc_stat_add(&rc_stats.conn_timeouts[RC_TIMEOUT_HEADER], 1);
      conn_error(c, 408, "request headers not received in time");
      break;
    case PH_BODY:
      rc_stat_add(&rc_stats.conn_timeouts[RC_TIMEOUT_BODY], 1);
      conn_error(c, 408, "request body not received in time");
      break;
    default:
      conn_close(c); /* linger or a stuck write: give up */
      break;
  }
}

static void arm_timer(rc_http_conn_t *c, phase_t ph) {
  const rc_http_config_t *cfg = &c->srv->cfg;
  uint64_t ms;
  c->phase = ph;
  switch (ph) {
    case PH_NEW:
    case PH_HEADERS: ms = cfg->header_timeout_ms; break;
    case PH_BODY: ms = cfg->body_timeout_ms; break;
    case PH_IDLE: ms = cfg->idle_timeout_ms; break;
    case PH_LINGER: ms = LINGER_MS; break;
    default: return;
  }
  uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/*------------------------------------------------------------------------------------------
 * Writing
 *----------------------------------------------------------------------------------------*/

static void on_shutdown(uv_shutdown_t *req, int status) {
  rc_http_conn_t *c = req->data;
  if (status != 0 || c->phase == PH_CLOSING) {
    conn_close(c);
    return;
  }
  /* Write side closed; read and discard until EOF or the linger timer. */
  arm_timer(c, PH_LINGER);
}

static void start_close_after_write(rc_http_conn_t *c) {
  if (c->phase == PH_CLOSING || c->phase == PH_LINGER) return;
  c->phase = PH_LINGER;
  uv_timer_stop(&c->timer);
  c->shutdown_req.data = c;
  if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c);
    return;
  }
  arm_timer(c, PH_LINGER);
  /* The linger waits for the peer's EOF, which only a read can see: a deferred answer (remote
   * write) left reading stopped, and the connection would otherwise sit out the whole linger. */
  if (!c->reading) {
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  rc_http_conn_t *c = w->conn;
  c->pending_write -= w->len;
  int close_after = w->close_after;
  free(w);
  if (status != 0) {
    conn_close(c);
    return;
  }
  if (c->close_when_written) { /* see on_read: the peer has closed its side already */
    if (c->pending_write == 0) conn_close(c);
    return;
  }
  if (close_after) {
    start_close_after_write(c);
    return;
  }
  if (c->pending_write < MAX_WRITE_QUEUE / 2) conn_resume(c);
}

/* Parses the input held back while the parser was paused, then reads again — unless a
 * deferred request is still waiting for its answer or the client is still behind. */
static void conn_resume(rc_http_conn_t *c) {
  if (c->reading || c->closing || c->pending != NULL || c->pending_write >= MAX_WRITE_QUEUE / 2)
    return;
  if (HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) {
    /* The client has caught up: answer the requests held back, then read again. */
    http_parser_pause(&c->parser, 0);
    rc_buf_t in = c->held; /* conn_feed may hold input back again */
    rc_buf_init(&c->held);
    if (in.len) conn_feed(c, in.data, in.len);
    rc_buf_free(&in);
    if (c->closing || c->reading || HTTP_PARSER_ERRNO(&c->parser) == HPE_PAUSED) return;
  }
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void conn_send(rc_http_conn_t *c, const char *data, size_t len, int close_after) {
  if (c->phase == PH_CLOSING) return;
  size_t off = 0;
  if (c->pending_write == 0) {
    /* Fast path: most answers are a few hundred bytes and leave in one syscall, with no
     * allocation. uv_try_write refuses while earlier writes are queued, keeping order. */
    int n = uv_try_write((uv_stream_t *)&c->tcp, &(uv_buf_t){.base = (char *)data, .len = len}, 1);
    if (n > 0) off = (size_t)n;
  }
  if (off == len) {
    if (close_after) start_close_after_write(c);
    return;
  }
  write_req_t *w = malloc(sizeof(*w) + (len - off));
  if (w == NULL) {
    conn_close(c);
    return;
  }
  memcpy(w->data, data + off, len - off);
  w->conn = c;
  w->len = len - off;
  w->close_after = close_after;
  uv_buf_t b = {.base = w->data, .len = w->len};
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
    free(w);
    conn_close(c);
    return;
  }
  c->pending_write += w->len;
}

/* head: the request was HEAD. The headers are those GET would get, Content-Length included
 * (RFC 9110 9.3.2 and 8.6: a Content-Length sent with HEAD must be the GET body's length), but
 * no body bytes follow. */
static void send_response(rc_http_conn_t *c, rc_http_response_t *res, int keep_alive, int head) {
  rc_buf_t out;
  rc_buf_init(&out);
  int close_after = !keep_alive || res->close || c->srv->draining;
  rc_buf_printf(&out, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: ripcord/" RC_VERSION "\r\n",
                res->status, rc_http_status_text(res->status), cached_date(c->srv));
  /* A 304 has no content, and a Content-Length in it would have to be the 200's (RFC 9110
   * 8.6), which the handler no longer holds: none is sent. */
  if (res->status != 304) rc_buf_printf(&out, "Content-Length: %zu\r\n", res->body.len);
  if (res->body.len) {
    rc_buf_puts(&out, "Content-Type: ");
    rc_buf_puts(&out, res->content_type ? res->content_type : "text/plain; charset=utf-8");
    rc_buf_puts(&out, "\r\n");
  }
  if (close_after) rc_buf_puts(&out, "Connection: close\r\n");
  if (res->headers.len) rc_buf_append(&out, res->headers.data, res->headers.len);
  rc_buf_puts(&out, "\r\n");
  if (res->body.len && !head) rc_buf_append(&out, res->body.data, res->body.len);
  if (out.oom) {
    rc_buf_free(&out);
    conn_close(c);
    return;
  }
  if (close_after) c->closing = 1;
  conn_send(c, out.data, out.len, close_after);
  rc_buf_free(&out);
}

/* Answers an HTTP-level error and closes; the parser state is unusable afterwards. */
static void conn_error(rc_http_conn_t *c, int status, const char *reason) {
  if (c->closing) {
    if (c->phase != PH_LINGER) conn_close(c);
    return;
  }
  rc_http_response_t res = {.status = status};
  rc_buf_init(&res.headers);
  rc_buf_init(&res.body);
  rc_buf_puts(&res.body, reason);
  rc_buf_puts(&res.body, "\n");
  uint64_t t0 = uv_hrtime();
  send_response(c, &res, 0, 0);
  rc_stats_request(RC_HANDLER_OTHER, status, uv_hrtime() - t0);
  rc_buf_free(&res.body);
  rc_buf_free(&res.headers);
  c->closing = 1;
}

/*------------------------------------------------------------------------------------------
 * Parser callbacks
 *----------------------------------------------------------------------------------------*/

static rc_http_conn_t *P(http_parser *p) { return p->data; }

static int header_room(rc_http_conn_t *c, size_t n) {
  if (c->hbuf.len + n > c->srv->cfg.max_header_bytes) {
    c->error_status = 431;
    return 0;
  }
  return 1;
}

static int on_message_begin(http_parser *p) {
  rc_http_conn_t *c = P(p);
  if (c->closing) return 1;
  rc_buf_reset(&c->hbuf);
  rc_buf_reset(&c->body);
  c->nheaders = 0;
  c->url_off = c->url_len = 0;
  c->last_was_value = 0;
  c->error_status = 0;
  c->error_detail = NULL;
  c->expect_continue = 0;
  arm_timer(c, PH_HEADERS);
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  rc_http_conn_t *c = P(p);
  if (!header_room(c, n)) return 1;
  if (c->url_len == 0) c->url_off = (uint32_t)c->hbuf.len;
  rc_buf_append(&c->hbuf, at, n);
  c->url_len += (uint32_t)n;
  return c->hbuf.oom;
}

/* RFC 9110 token characters: what a field name may hold. http-parser lets "Host : x" through
 * and still acts on "Content-Length :" and "Transfer-Encoding :" itself, while our own header
 * lookup would not see the name: two readings of one request (RFC 9112 5.1: MUST be 400). */
static int is_tchar(unsigned char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  rc_http_conn_t *c = P(p);
  if (!header_room(c, n)) return 1;
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)at[i])) {
      c->error_status = 400;
      c->error_detail = "a header field name holds a space or a character a token may not";
      return 1;
    }
  if (c->last_was_value || c->nheaders == 0) {
    if (c->nheaders >= c->srv->cfg.max_headers) {
      c->error_status = 431;
      return 1;
    }
    rc_http_header_t *h = &c->headers[c->nheaders++];
    h->name_off = (uint32_t)c->hbuf.len;
    h->name_len = 0;
    h->value_off = h->value_len = 0;
    c->last_was_value = 0;
  }
  rc_buf_append(&c->hbuf, at, n);
  c->headers[c->nheaders - 1].name_len += (uint32_t)n;
  return c->hbuf.oom;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  rc_http_conn_t *c = P(p);
  if (!header_room(c, n) || c->nheaders == 0) return 1;
  rc_http_header_t *h = &c->headers[c->nheaders - 1];
  if (!c->last_was_value) {
    h->value_off = (uint32_t)c->hbuf.len;
    h->value_len = 0;
    c->last_was_value = 1;
  }
  rc_buf_append(&c->hbuf, at, n);
  h->value_len += (uint32_t)n;
  return c->hbuf.oom;
}

/* http-parser gives on_headers_complete's return value a meaning of its own: 1 means "this
 * message has no body" (F_SKIPBODY) and 2 "upgrade", and only other values stop the parser with
 * HPE_CB_headers_complete. Returning 1 for an error used to make the parser skip the body and
 * run the handler on an empty request (an over-limit Content-Length got "400 empty request
 * body", and the body bytes were then parsed as the next request; CONNECT reached the router). */
#define HEADERS_COMPLETE_ERROR (-1)

static int on_headers_complete(http_parser *p) {
  rc_http_conn_t *c = P(p);
  if (p->upgrade && p->method != HTTP_CONNECT) {
    /* We speak HTTP/1.1 only; ignoring Upgrade is allowed (RFC 9110 7.8). */
    p->upgrade = 0;
  }
  if (p->method == HTTP_CONNECT) {
    c->error_status = 501;
    return HEADERS_COMPLETE_ERROR;
  }
  int chunked = (p->flags & F_CHUNKED) != 0;
  uint64_t cl = p->content_length;
  if (!chunked && cl != ULLONG_MAX && cl > 0) {
    if (cl > c->srv->cfg.max_body_bytes) {
      c->error_status = 413;
      return HEADERS_COMPLETE_ERROR;
    }
    if (rc_buf_reserve(&c->body, (size_t)cl) != 0) {
      c->error_status = 500;
      return HEADERS_COMPLETE_ERROR;
    }
  }
  rc_http_request_t probe = {.hbase = c->hbuf.data, .headers = c->headers, .nheaders = c->nheaders};
  size_t n;
  const char *ex = rc_http_header(&probe, "Expect", &n);
  if (ex != NULL && trim_eq_ci(ex, n, "100-continue") && p->http_minor >= 1)
    conn_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25, 0);
  arm_timer(c, PH_BODY);
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  rc_http_conn_t *c = P(p);
  if (c->body.len + n > c->srv->cfg.max_body_bytes) {
    c->error_status = 413;
    return 1;
  }
  rc_buf_append(&c->body, at, n);
  if (c->body.oom) {
    c->error_status = 500;
    return 1;
  }
  return 0;
}

static int on_message_complete(http_parser *p) {
  rc_http_conn_t *c = P(p);
  rc_http_server_t *srv = c->srv;
  uv_timer_stop(&c->timer);
  rc_http_request_t req = {
      .conn = c,
      .method = p->method,
      .body = c->body.data ? c->body.data : "",
      .body_len = c->body.len,
      .complete_ns = uv_hrtime(),
      .hbase = c->hbuf.data ? c->hbuf.data : "",
      .headers = c->headers,
      .nheaders = c->nheaders,
  };
  struct http_parser_url u;
  const char *url = req.hbase + c->url_off;
  http_parser_url_init(&u);
  if (http_parser_parse_url(url, c->url_len, 0, &u) == 0 && (u.field_set & (1 << UF_PATH))) {
    req.path = url + u.field_data[UF_PATH].off;
    req.path_len = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
      req.query = url + u.field_data[UF_QUERY].off;
      req.query_len = u.field_data[UF_QUERY].len;
    }
  } else {
    req.path = url;
    req.path_len = c->url_len;
  }
  rc_http_response_t res = {.status = 500};
  rc_buf_init(&res.headers);
  rc_buf_init(&res.body);
  srv->handler(srv->handler_ctx, &req, &res);
  if (res.deferred) {
    /* The answer comes from rc_http_finish. Stop here: conn_feed holds whatever input follows
     * and stops reading (the same pause as for a client that does not read its answers). No
     * timer runs in WAIT: the work is ours, and the shutdown timer bounds it at exit. */
    rc_buf_free(&res.headers);
    rc_buf_free(&res.body);
    c->pending->keep_alive = http_should_keep_alive(p);
    c->pending->head = p->method == HTTP_HEAD;
    c->phase = PH_WAIT;
    http_parser_pause(p, 1);
    return 0;
  }
  send_response(c, &res, http_should_keep_alive(p), p->method == HTTP_HEAD);
  rc_buf_free(&res.headers);
  rc_buf_free(&res.body);
  if (c->body.cap > KEEP_BODY_BUF) rc_buf_free(&c->body);
  /* Keep-alive: wait for the next request. After a Connection: close answer that is still
   * queued (the client is not reading it), the idle timeout bounds how long that client may
   * hold the connection; before, no timer ran in that state and it was held forever. */
  if (c->phase != PH_LINGER && c->phase != PH_CLOSING) arm_timer(c, PH_IDLE);
  /* Pipelined requests behind this one wait while more than MAX_WRITE_QUEUE of answers is
   * queued for a client that is not reading them (conn_feed holds them, on_write resumes). */
  if (!c->closing && c->pending_write > MAX_WRITE_QUEUE) http_parser_pause(p, 1);
  /* Stop parsing after a response that closes the connection: pipelined bytes behind it
   * belong to requests we will not answer. */
  return c->closing ? 1 : 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
       : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The value of parameter `name` in a URL query string, percent- and '+'-decoded into out
 * (NUL-terminated). Returns its length, or -1 when absent or too long or badly encoded. */
long rc_http_query_param(const rc_http_request_t *req, const char *name, char *out, size_t cap) {
  const char *q = req->query;
  size_t n = req->query_len;
  size_t nl = strlen(name);
  for (size_t i = 0; q != NULL && i < n;) {
    size_t end = i;
    while (end < n && q[end] != '&') end++;
    /* "?name" without '=' is there, with no value: bad rather than absent. */
    if (end - i == nl && memcmp(q + i, name, nl) == 0) return RC_HTTP_QP_BAD;
    if (end - i > nl && memcmp(q + i, name, nl) == 0 && q[i + nl] == '=') {
      size_t k = 0;
      for (size_t j = i + nl + 1; j < end; j++) {
        if (k + 1 >= cap) return RC_HTTP_QP_BAD;
        if (q[j] == '+') out[k++] = ' ';
        else if (q[j] == '%') {
          int h, l;
          if (j + 2 >= end) return RC_HTTP_QP_BAD;
          if ((h = hexval(q[j + 1])) < 0 || (l = hexval(q[j + 2])) < 0) return RC_HTTP_QP_BAD;
          out[k++] = (char)(h * 16 + l);
          j += 2;
        } else out[k++] = q[j];
      }
      out[k] = 0;
      return (long)k;
    }
    i = end + 1;
  }
  return RC_HTTP_QP_ABSENT;
}

int rc_http_query_int(const rc_http_request_t *req, const char *name, int64_t lo, int64_t hi,
                      int64_t *v) {
  char buf[24];
  long n = rc_http_query_param(req, name, buf, sizeof(buf));
  if (n == RC_HTTP_QP_ABSENT) return 0;
  if (n <= 0 || n > 18) return -1;
  int64_t x = 0;
  for (long i = 0; i < n; i++) {
    if (buf[i] < '0' || buf[i] > '9') return -1;
    x = x * 10 + (buf[i] - '0');
  }
  if (x < lo || x > hi) return -1;
  *v = x;
  return 1;
}

rc_http_pending_t *rc_http_defer(const rc_http_request_t *req, rc_http_response_t *res,
                                 rc_buf_t *body) {
  rc_http_conn_t *c = req->conn;
  rc_http_pending_t *p = calloc(1, sizeof(*p));
  if (p == NULL || c == NULL || c->pending != NULL) {
    free(p);
    return NULL;
  }
  p->conn = c;
  c->pending = p;
  *body = c->body; /* req->body points into it and moves with it */
  rc_buf_init(&c->body);
  res->deferred = 1;
  return p;
}

void rc_http_finish(rc_http_pending_t *p, rc_http_response_t *res) {
  rc_http_conn_t *c = p->conn;
  int keep_alive = p->keep_alive, head = p->head;
  free(p);
  if (c == NULL) return;
  c->pending = NULL;
  if (c->phase == PH_CLOSING || c->phase == PH_LINGER) return;
  send_response(c, res, keep_alive, head);
  /* While draining, send_response answered with Connection: close and set closing. */
  if (c->phase == PH_LINGER || c->phase == PH_CLOSING || c->closing) return;
  arm_timer(c, PH_IDLE);
  conn_resume(c);
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/*------------------------------------------------------------------------------------------
 * Reading
 *----------------------------------------------------------------------------------------*/

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = g_read_buf;
  buf->len = sizeof(g_read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  rc_http_conn_t *c = s->data;
  if (nread == 0) return;
  if (nread < 0) {
    /* EOF or reset. Mid-request that is an aborted request; between requests it is the
     * normal end of a keep-alive connection. After the final answer (closing) it is neither:
     * the phase is still PH_BODY while a Connection: close answer is being written. */
    if ((c->phase == PH_HEADERS || c->phase == PH_BODY) && !c->closing)
      rc_stat_add(&rc_stats.conn_aborted, 1);
    if (nread == UV_EOF && c->pending_write > 0) {
      /* A client may half-close right after its last request (HTTP/1.0 style, `nc -N`).
       * Closing now would cancel the answers still queued and truncate them; finish writing
       * first (on_write closes), bounded by the idle timeout if the client stops reading. */
      uv_read_stop(s);
      c->reading = 0;
      c->closing = 1;
      c->close_when_written = 1;
      arm_timer(c, PH_IDLE);
      return;
    }
    conn_close(c);
    return;
  }
  if (c->phase == PH_LINGER || c->closing) return; /* discard after the final response */
  conn_feed(c, buf->base, (size_t)nread);
}

/* Parses input and runs the handler for every complete request in it. */
static void conn_feed(rc_http_conn_t *c, const char *data, size_t n) {
  if (c->phase == PH_NEW || c->phase == PH_IDLE) arm_timer(c, PH_HEADERS);
  size_t done = http_parser_execute(&c->parser, &parser_settings, data, n);
  if (c->closing) return;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e == HPE_PAUSED) {
    /* on_message_complete paused: the client pipelines faster than it reads our answers.
     * Keep the rest of its input (the read buffer is shared) and stop reading until on_write
     * sees the queue drain. Before, one 64 KiB read of pipelined requests for large answers
     * (GET /api/v1/status/ingest) was answered in one go: gigabytes queued and the loop
     * blocked for tens of seconds, every other client and SIGTERM waiting. */
    rc_buf_append(&c->held, data + done, n - done);
    if (c->held.oom) {
      conn_close(c);
      return;
    }
    if (c->reading) {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
    }
    return;
  }
  if (e != HPE_OK || done != n) {
    int status = c->error_status;
    const char *reason;
    char tmp[160];
    switch (status) {
      case 431: reason = "request header fields too large"; break;
      case 413: reason = "request body too large"; break;
      case 501: reason = "method not implemented"; break;
      case 500: reason = "out of memory reading the request"; break;
      case 400:
        if (c->error_detail != NULL) {
          rc_stat_add(&rc_stats.http_parse_errors, 1);
          snprintf(tmp, sizeof(tmp), "malformed HTTP request: %s", c->error_detail);
          reason = tmp;
          break;
        }
        /* fall through */
      default:
        status = 400;
        rc_stat_add(&rc_stats.http_parse_errors, 1);
        if (e == HPE_HEADER_OVERFLOW) {
          status = 431;
          reason = "request header fields too large";
        } else {
          snprintf(tmp, sizeof(tmp), "malformed HTTP request: %s", http_errno_description(e));
          reason = tmp;
        }
    }
    if (status == 413) {
      char t2[96];
      snprintf(t2, sizeof(t2), "request body too large: limit is %zu bytes",
               c->srv->cfg.max_body_bytes);
      conn_error(c, status, t2);
    } else {
      conn_error(c, status, reason);
    }
    return;
  }
  if (c->pending_write > MAX_WRITE_QUEUE && c->reading) {
    /* A client pipelining faster than it reads our answers: stop reading until it catches up. */
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

static void on_stub_closed(uv_handle_t *h) { free(h); }

static void on_connection(uv_stream_t *listener, int status) {
  rc_http_server_t *srv = listener->data;
  if (status != 0) {
    rc_log(RC_LOG_WARN, "accept failed", "err=%s", uv_strerror(status));
    return;
  }
  if (srv->nconns >= srv->cfg.max_connections || srv->draining) {
    /* Accept and close at once: leaving it in the backlog would only delay the client. */
    uv_tcp_t *stub = malloc(sizeof(*stub));
    if (stub == NULL) return;
    uv_tcp_init(srv->loop, stub);
    if (uv_accept(listener, (uv_stream_t *)stub) == 0) rc_stat_add(&rc_stats.conn_rejected, 1);
    uv_close((uv_handle_t *)stub, on_stub_closed);
    return;
  }
  rc_http_conn_t *c = calloc(1, sizeof(*c));
  if (c == NULL) return;
  c->headers = calloc(srv->cfg.max_headers ? srv->cfg.max_headers : 1, sizeof(rc_http_header_t));
  if (c->headers == NULL) {
    free(c);
    return;
  }
  c->srv = srv;
  uv_tcp_init(srv->loop, &c->tcp);
  uv_timer_init(srv->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles_open = 2;
  rc_buf_init(&c->hbuf);
  rc_buf_init(&c->body);
  rc_buf_init(&c->held);
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  rc_stat_add(&rc_stats.conn_open, 1);
  if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  rc_stat_add(&rc_stats.conn_accepted, 1);
  uv_tcp_nodelay(&c->tcp, 1); /* answers are small and latency is the product */
  c->reading = 1;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  arm_timer(c, PH_NEW);
}

/*------------------------------------------------------------------------------------------
 * Server
 *----------------------------------------------------------------------------------------*/

int rc_http_server_init(rc_http_server_t *srv, uv_loop_t *loop, const rc_http_config_t *cfg,
                        rc_http_handler_cb handler, void *ctx, rc_err_t *err) {
  memset(srv, 0, sizeof(*srv));
  if (cfg->max_header_bytes < 256 || cfg->max_header_bytes > (64u << 20))
    return rc_err_set(err, RC_EINVAL, "max header bytes must be 256..64MiB");
  if (cfg->max_headers < 4 || cfg->max_headers > 100000)
    return rc_err_set(err, RC_EINVAL, "max headers must be 4..100000");
  if (cfg->max_body_bytes < 1024 || cfg->max_body_bytes > (1ull << 32))
    return rc_err_set(err, RC_EINVAL, "max body bytes must be 1KiB..4GiB");
  if (cfg->max_connections < 1) return rc_err_set(err, RC_EINVAL, "max connections must be >= 1");
  if (!cfg->header_timeout_ms || !cfg->body_timeout_ms || !cfg->idle_timeout_ms)
    return rc_err_set(err, RC_EINVAL, "timeouts must be > 0");
  srv->loop = loop;
  srv->cfg = *cfg;
  srv->handler = handler;
  srv->handler_ctx = ctx;
  return 0;
}

int rc_http_server_listen(rc_http_server_t *srv, const char *addr, rc_err_t *err) {
  struct sockaddr_storage ss;
  int rc = rc_http_parse_addr(addr, &ss, err);
  if (rc != 0) return rc;
  uv_tcp_init(srv->loop, &srv->listener);
  srv->listener.data = srv;
  srv->listening = 1;
  rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
  if (rc != 0) {
    rc_err_set(err, RC_EIO, "listen on %s: %s", addr, uv_strerror(rc));
    return RC_EIO;
  }
  return 0;
}

int rc_http_server_port(rc_http_server_t *srv) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  if (!srv->listening || uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
    return 0;
  if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

static void on_shutdown_timeout(uv_timer_t *t) {
  rc_http_server_t *srv = t->data;
  rc_log(RC_LOG_WARN, "shutdown timeout: closing connections with requests still in flight",
         "connections=%u", srv->nconns);
  for (rc_http_conn_t *c = srv->conns; c != NULL; c = c->next) conn_close(c);
}

void rc_http_server_shutdown(rc_http_server_t *srv, rc_http_drained_cb cb) {
  srv->draining = 1;
  srv->drained_cb = cb;
  if (srv->listening) {
    srv->listening = 0;
    uv_close((uv_handle_t *)&srv->listener, NULL);
  }
  /* Connections between requests close now; the others finish their request first. */
  rc_http_conn_t *next;
  for (rc_http_conn_t *c = srv->conns; c != NULL; c = next) {
    next = c->next;
    if (c->phase != PH_NEW && c->phase != PH_IDLE) continue;
    if (c->pending_write > 0) {
      /* An answer is still being written: let it finish (on_write closes), or the shutdown
       * timer cuts it off. Closing now would truncate it. */
      if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
      c->reading = 0;
      c->closing = 1;
      c->close_when_written = 1;
    } else {
      conn_close(c);
    }
  }
  if (srv->nconns == 0) {
    srv->drained_cb = NULL;
    cb(srv);
    return;
  }
  uv_timer_init(srv->loop, &srv->shutdown_timer);
  srv->shutdown_timer.data = srv;
  srv->shutdown_timer_on = 1;
  uv_timer_start(&srv->shutdown_timer, on_shutdown_timeout, srv->cfg.shutdown_timeout_ms, 0);
}
