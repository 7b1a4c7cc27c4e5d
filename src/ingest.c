/* ingest.c: the remote-write handler, the hand-off ring and its consumer thread; see ingest.h. */
#include "ingest.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "stats.h"

/*------------------------------------------------------------------------------------------
 * Content negotiation
 *----------------------------------------------------------------------------------------*/

static void trim(const char **s, size_t *n) {
  while (*n && (**s == ' ' || **s == '\t')) (*s)++, (*n)--;
  while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t')) (*n)--;
}

static int eq_ci(const char *s, size_t n, const char *lit) {
  size_t l = strlen(lit);
  return n == l && strncasecmp(s, lit, l) == 0;
}

int rc_ingest_content_type(const char *v, size_t n, int *version, char *why, size_t wsz) {
  *version = 1;
  if (v == NULL) return 0; /* Prometheus' receiver treats a missing Content-Type as 1.0 */
  const char *end = v + n, *p = v;
  const char *semi = memchr(p, ';', n);
  const char *mt = p;
  size_t mtl = (size_t)((semi ? semi : end) - p);
  trim(&mt, &mtl);
  if (!eq_ci(mt, mtl, "application/x-protobuf")) {
    snprintf(why, wsz, "unsupported Content-Type \"%.*s\": want application/x-protobuf",
             (int)(n > 80 ? 80 : n), v);
    return RC_ENOTSUP;
  }
  while (semi != NULL) {
    p = semi + 1;
    semi = memchr(p, ';', (size_t)(end - p));
    const char *param = p;
    size_t pl = (size_t)((semi ? semi : end) - p);
    trim(&param, &pl);
    const char *eq = memchr(param, '=', pl);
    if (eq == NULL) continue;
    const char *key = param, *val = eq + 1;
    size_t kl = (size_t)(eq - param), vl = pl - kl - 1;
    trim(&key, &kl);
    trim(&val, &vl);
    if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') val++, vl -= 2;
    if (!eq_ci(key, kl, "proto")) continue;
    if (vl == strlen("prometheus.WriteRequest") && memcmp(val, "prometheus.WriteRequest", vl) == 0) {
      *version = 1;
    } else if (vl == strlen("io.prometheus.write.v2.Request") &&
               memcmp(val, "io.prometheus.write.v2.Request", vl) == 0) {
      *version = 2;
    } else {
      snprintf(why, wsz,
               "unsupported protobuf message \"%.*s\": want prometheus.WriteRequest or "
               "io.prometheus.write.v2.Request",
               (int)(vl > 80 ? 80 : vl), val);
      return RC_ENOTSUP;
    }
  }
  return 0;
}

int rc_ingest_content_encoding(const char *v, size_t n, char *why, size_t wsz) {
  if (v == NULL) return 0; /* as Prometheus: a missing Content-Encoding means snappy */
  const char *s = v;
  trim(&s, &n);
  if (eq_ci(s, n, "snappy")) return 0;
  snprintf(why, wsz, "unsupported Content-Encoding \"%.*s\": only snappy is accepted",
           (int)(n > 60 ? 60 : n), s);
  return RC_ENOTSUP;
}

/*------------------------------------------------------------------------------------------
 * Consumer thread
 *----------------------------------------------------------------------------------------*/

/* Wake-up protocol (a Dekker-style handshake, hence the seq_cst operations): the consumer
 * announces idle=1, re-checks the ring, and only then sleeps; the producer pushes, then takes
 * idle with an exchange and posts only if it was 1. Either the consumer's re-check sees the
 * new batch, or the producer's exchange sees idle=1 and posts: a batch is never left waiting.
 * A post that races with a re-check that already found the batch only causes one spurious
 * wake-up later, which finds the ring empty and sleeps again. */
static void consumer_main(void *arg) {
  rc_ingest_t *ing = arg;
  for (;;) {
    rc_batch_t *b = rc_ring_pop(&ing->ring);
    if (b == NULL) {
      if (atomic_load(&ing->stop)) break; /* stop is set only after the last push */
      atomic_store(&ing->idle, 1);
      atomic_thread_fence(memory_order_seq_cst);
      if (rc_ring_size(&ing->ring) == 0 && !atomic_load(&ing->stop)) uv_sem_wait(&ing->wake);
      atomic_store(&ing->idle, 0);
      continue;
    }
    rc_stat_sub(&rc_stats.queue_depth, 1);
    rc_tally_add_batch(&ing->tally, b);
    if (ing->store != NULL && rc_store_apply(ing->store, b) != 0) {
      static rc_complaint_t oom;
      rc_log_complain(&oom, uv_hrtime() / 1000000u, 60000, RC_LOG_ERROR,
                      "store: out of memory applying a batch", NULL);
    }
    rc_stat_add(&rc_stats.consumed_batches, 1);
    rc_stat_add(&rc_stats.consumed_series, b->nseries);
    rc_stat_add(&rc_stats.consumed_samples, b->nsamples);
    rc_stat_add(&rc_stats.consumed_histograms, b->nhistograms);
    rc_batch_free(b);
  }
}

/* Producer side of the handshake above. */
static void wake_consumer(rc_ingest_t *ing) {
  if (atomic_exchange(&ing->idle, 0)) uv_sem_post(&ing->wake);
}

int rc_ingest_init(rc_ingest_t *ing, const rc_ingest_config_t *cfg, rc_err_t *err) {
  memset(ing, 0, sizeof(*ing));
  if (cfg->overload_status != 503 && cfg->overload_status != 429)
    return rc_err_set(err, RC_EINVAL, "overload status must be 503 or 429");
  ing->cfg = *cfg;
  int rc = rc_ring_init(&ing->ring, cfg->queue_capacity);
  if (rc != 0) return rc_err_set(err, rc, "ingest queue capacity %u: %s", cfg->queue_capacity,
                                 rc_strerror(rc));
  if (uv_sem_init(&ing->wake, 0) != 0) {
    rc_ring_close(&ing->ring);
    return rc_err_set(err, RC_ENOMEM, "cannot create semaphore");
  }
  rc = rc_tally_init(&ing->tally, cfg->tally_max_names ? cfg->tally_max_names : 10000);
  if (rc != 0) {
    uv_sem_destroy(&ing->wake);
    rc_ring_close(&ing->ring);
    return rc_err_set(err, rc, "tally: %s", rc_strerror(rc));
  }
  rc_rw_decoder_init(&ing->dec, &cfg->limits);
  rc_stat_set(&rc_stats.queue_capacity, rc_ring_capacity(&ing->ring));
  return 0;
}

int rc_ingest_start(rc_ingest_t *ing, rc_err_t *err) {
  atomic_store(&ing->stop, 0);
  atomic_store(&ing->idle, 0);
  if (uv_thread_create(&ing->thread, consumer_main, ing) != 0)
    return rc_err_set(err, RC_ENOMEM, "cannot start the ingest consumer thread");
  ing->running = 1;
  return 0;
}

void rc_ingest_stop(rc_ingest_t *ing) {
  if (!ing->running) return;
  atomic_store(&ing->stop, 1);
  uv_sem_post(&ing->wake); /* unconditionally: the consumer may be asleep or about to be */
  uv_thread_join(&ing->thread);
  ing->running = 0;
}

void rc_ingest_close(rc_ingest_t *ing) {
  rc_ingest_stop(ing);
  rc_batch_t *b;
  while ((b = rc_ring_pop(&ing->ring)) != NULL) rc_batch_free(b);
  rc_rw_decoder_close(&ing->dec);
  rc_tally_close(&ing->tally);
  uv_sem_destroy(&ing->wake);
  rc_ring_close(&ing->ring);
}

/*------------------------------------------------------------------------------------------
 * The handler
 *----------------------------------------------------------------------------------------*/

static void written_headers(rc_http_response_t *res, int version, uint64_t s, uint64_t h,
                            uint64_t e) {
  if (version != 2) return; /* v1: send none rather than risk wrong ones (spec 2.0 §Response) */
  rc_buf_printf(&res->headers,
                "X-Prometheus-Remote-Write-Samples-Written: %llu\r\n"
                "X-Prometheus-Remote-Write-Histograms-Written: %llu\r\n"
                "X-Prometheus-Remote-Write-Exemplars-Written: %llu\r\n",
                (unsigned long long)s, (unsigned long long)h, (unsigned long long)e);
}

static void reply(rc_http_response_t *res, int status, const char *msg) {
  res->status = status;
  if (msg != NULL) {
    rc_buf_puts(&res->body, msg);
    rc_buf_puts(&res->body, "\n");
  }
}

static void complain(rc_ingest_t *ing, int status, const char *msg) {
  static rc_complaint_t c[6];
  int k = status == 400 ? 0 : status == 413 ? 1 : status == 415 ? 2 : status == 503 ? 3
        : status == 429 ? 4 : 5;
  char q[300];
  rc_log_complain(&c[k], uv_hrtime() / 1000000u, 60000, status >= 500 ? RC_LOG_WARN : RC_LOG_INFO,
                  "remote write refused", "status=%d reason=%s", status,
                  rc_log_quote(q, sizeof(q), msg, strlen(msg)));
  (void)ing;
}

void rc_ingest_handle_write(rc_ingest_t *ing, const rc_http_request_t *req,
                            rc_http_response_t *res) {
  char why[200];
  size_t n;
  int version = 1;
  if (req->method != HTTP_POST) {
    rc_buf_puts(&res->headers, "Allow: POST\r\n");
    reply(res, 405, "method not allowed: use POST");
    return;
  }
  const char *ct = rc_http_header(req, "Content-Type", &n);
  if (rc_ingest_content_type(ct, ct ? n : 0, &version, why, sizeof(why)) != 0) {
    reply(res, 415, why);
    complain(ing, 415, why);
    return;
  }
  const char *ce = rc_http_header(req, "Content-Encoding", &n);
  if (rc_ingest_content_encoding(ce, ce ? n : 0, why, sizeof(why)) != 0) {
    written_headers(res, version, 0, 0, 0);
    reply(res, 415, why);
    complain(ing, 415, why);
    return;
  }
  rc_stat_add(&rc_stats.body_bytes, req->body_len);
  /* Check for room before spending CPU on the decode. Only this thread pushes, so room seen
   * now is still there after decoding. */
  if (rc_ring_size(&ing->ring) >= rc_ring_capacity(&ing->ring)) {
    rc_stat_add(&rc_stats.queue_full, 1);
    rc_buf_printf(&res->headers, "Retry-After: %u\r\n", ing->cfg.retry_after_s);
    written_headers(res, version, 0, 0, 0);
    reply(res, ing->cfg.overload_status, "ingest queue full: retry later");
    complain(ing, ing->cfg.overload_status, "ingest queue full");
    return;
  }
  rc_batch_t *b = NULL;
  rc_rw_result_t r;
  int rc = rc_rw_decode(&ing->dec, version, req->body, req->body_len, &b, &r);
  rc_stat_add(&rc_stats.decoded_bytes, r.decoded_bytes);
  if (rc != 0) {
    rc_stat_add(&rc_stats.decode_errors[r.reason], 1);
    int status = rc == RC_EPARSE ? 400 : rc == RC_ELIMIT ? 413 : 500;
    written_headers(res, version, 0, 0, 0);
    reply(res, status, r.msg);
    complain(ing, status, r.msg);
    return;
  }
  b->received_ns = req->complete_ns;
  uint64_t ns = b->nsamples, nh = b->nhistograms, ne = b->nexemplars;
  rc_stat_add(&rc_stats.samples, ns);
  rc_stat_add(&rc_stats.histograms, nh);
  rc_stat_add(&rc_stats.exemplars, ne);
  rc_stat_add(&rc_stats.series, b->nseries);
  rc_stat_add(&rc_stats.metadata, b->nmetadata);
  rc_stat_add(&rc_stats.stale_markers, b->nstale);
  if (b->nseries > 0) {
    rc_stat_add(&rc_stats.queue_depth, 1); /* before the push: the consumer decrements */
    if (rc_ring_push(&ing->ring, b) != 0) { /* cannot happen: room was checked above */
      rc_stat_sub(&rc_stats.queue_depth, 1);
      rc_batch_free(b);
      written_headers(res, version, 0, 0, 0);
      reply(res, 500, "internal error: ingest queue rejected a batch");
      return;
    }
    wake_consumer(ing);
  } else {
    rc_batch_free(b);
  }
  written_headers(res, version, ns, nh, ne);
  if (r.invalid_series) {
    for (int i = 0; i < RC_RWS__COUNT; i++)
      if (r.invalid_by[i]) rc_stat_add(&rc_stats.invalid_series[i], r.invalid_by[i]);
    rc_stat_add(&rc_stats.dropped_samples, r.dropped_samples);
    rc_stat_add(&rc_stats.dropped_histograms, r.dropped_histograms);
    rc_stat_add(&rc_stats.dropped_exemplars, r.dropped_exemplars);
    char msg[320];
    snprintf(msg, sizeof(msg), "%s (%u invalid series dropped, the rest ingested)", r.msg,
             r.invalid_series);
    reply(res, 400, msg);
    complain(ing, 400, msg);
    return;
  }
  reply(res, 204, NULL);
}
