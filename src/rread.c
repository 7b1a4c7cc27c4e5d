/* rread.c: the Prometheus remote read client; see rread.h for the API and the wire format.
 *
 * Three parts: the request (protobuf-c's packer, then a snappy block), the response (snappy,
 * protobuf-c's unpacker into a bounded arena, then a check-and-copy pass into one block per
 * result), and a blocking libcurl client around them. protobuf-c rather than a hand-written
 * reader (rw_wire.c) because this is not a hot path: a backtest reads each sample once, and
 * protobuf-c's unpacker is the reference the hand-written one is tested against.
 *
 * Why results are copied out of protobuf-c's structs: those take about twice the memory of
 * the wire form (a struct and a pointer per sample), and a backtest may hold a week of
 * samples; the copy is 24 bytes a sample in one block, and the unpacked message is freed.
 */
#include "rread.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "arena.h"
#include "remote_read.pb-c.h"
#include "rw_labels.h"

#define DEFAULT_TIMEOUT_MS 60000u
#define ENDPOINT "/api/v1/read"
#define ERR_BODY_KEEP 1024 /* bytes of a non-2xx body kept for the error message */

static rc_rread_limits_t effective_limits(const rc_rread_limits_t *l) {
  rc_rread_limits_t e = l ? *l : (rc_rread_limits_t){0};
  if (e.max_decoded_bytes == 0) e.max_decoded_bytes = RC_RREAD_DEFAULT_MAX_DECODED;
  if (e.max_series == 0) e.max_series = RC_RREAD_DEFAULT_MAX_SERIES;
  if (e.max_samples == 0) e.max_samples = RC_RREAD_DEFAULT_MAX_SAMPLES;
  if (e.max_memory_bytes == 0)
    e.max_memory_bytes = e.max_decoded_bytes > SIZE_MAX / 8 ? SIZE_MAX : 8 * e.max_decoded_bytes;
  return e;
}

/* s[0..len) as a short printable excerpt for an error message (control characters as '?',
 * cut at 40 bytes or an embedded NUL). Returns buf. */
static const char *excerpt(char *buf, size_t cap, const void *s, size_t len) {
  char tmp[41];
  size_t n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;
  if (n > 0) memcpy(tmp, s, n);
  tmp[n] = 0;
  return rc_err_printable(buf, cap, tmp);
}

/*------------------------------------------------------------------------------------------
 * Request
 *----------------------------------------------------------------------------------------*/

static const Prometheus__Read__LabelMatcher__Type matcher_type[] = {
    [RC_MATCH_EQ] = PROMETHEUS__READ__LABEL_MATCHER__TYPE__EQ,
    [RC_MATCH_NE] = PROMETHEUS__READ__LABEL_MATCHER__TYPE__NEQ,
    [RC_MATCH_RE] = PROMETHEUS__READ__LABEL_MATCHER__TYPE__RE,
    [RC_MATCH_NRE] = PROMETHEUS__READ__LABEL_MATCHER__TYPE__NRE,
};

/* Checks what the server's decoder would refuse (Go's protobuf rejects a `string` field that
 * is not UTF-8) so that the user hears which selector is at fault, not "HTTP 400". */
static int check_selectors(const rc_selector_t *const *sels, uint32_t nsels, int64_t start_ms,
                           int64_t end_ms, size_t *nmatchers, rc_err_t *err) {
  if (sels == NULL || nsels == 0)
    return rc_err_set(err, RC_EINVAL, "remote read request: no selectors");
  if (start_ms > end_ms)
    return rc_err_set(err, RC_EINVAL, "remote read request: start %lld is after end %lld",
                      (long long)start_ms, (long long)end_ms);
  size_t n = 0;
  char x[48];
  for (uint32_t i = 0; i < nsels; i++) {
    const rc_selector_t *s = sels[i];
    if (s == NULL || s->n == 0)
      return rc_err_set(err, RC_EINVAL, "remote read request: selector %u has no matchers", i);
    for (uint32_t k = 0; k < s->n; k++) {
      const rc_matcher_t *m = &s->m[k];
      if ((unsigned)m->op >= RC_ARRAY_SIZE(matcher_type))
        return rc_err_set(err, RC_EINVAL, "remote read request: selector %u: bad matcher op", i);
      if (!rc_utf8_valid(m->name, m->name_len))
        return rc_err_set(err, RC_EINVAL,
                          "remote read request: selector %u: a label name is not valid UTF-8", i);
      if (!rc_utf8_valid(m->value, m->value_len))
        return rc_err_set(err, RC_EINVAL,
                          "remote read request: selector %u: the value for \"%s\" is not valid "
                          "UTF-8", i, excerpt(x, sizeof(x), m->name, m->name_len));
    }
    n += s->n;
  }
  *nmatchers = n;
  return 0;
}

int rc_rread_encode_request(const rc_selector_t *const *sels, uint32_t nsels, int64_t start_ms,
                            int64_t end_ms, rc_buf_t *out, rc_err_t *err) {
  rc_buf_reset(out);
  size_t nm = 0;
  int rc = check_selectors(sels, nsels, start_ms, end_ms, &nm, err);
  if (rc != 0) return rc;

  Prometheus__Read__Query *q = calloc(nsels, sizeof(*q));
  Prometheus__Read__Query **qp = calloc(nsels, sizeof(*qp));
  Prometheus__Read__LabelMatcher *lm = calloc(nm, sizeof(*lm));
  Prometheus__Read__LabelMatcher **lmp = calloc(nm, sizeof(*lmp));
  uint8_t *raw = NULL;
  rc = RC_ENOMEM;
  if (q == NULL || qp == NULL || lm == NULL || lmp == NULL) goto done;

  /* Every query covers the same range, so they share one ReadHints. Prometheus' TSDB
   * querier narrows its time range to the hints' when a query carries them. */
  Prometheus__Read__ReadHints hints = PROMETHEUS__READ__READ_HINTS__INIT;
  hints.start_ms = start_ms;
  hints.end_ms = end_ms;
  size_t j = 0;
  for (uint32_t i = 0; i < nsels; i++) {
    prometheus__read__query__init(&q[i]);
    q[i].start_timestamp_ms = start_ms;
    q[i].end_timestamp_ms = end_ms;
    q[i].hints = &hints;
    q[i].matchers = &lmp[j];
    q[i].n_matchers = sels[i]->n;
    for (uint32_t k = 0; k < sels[i]->n; k++, j++) {
      const rc_matcher_t *m = &sels[i]->m[k];
      prometheus__read__label_matcher__init(&lm[j]);
      lm[j].type = matcher_type[m->op];
      /* The packer only reads these; the casts drop a const protobuf-c does not declare. */
      lm[j].name.data = (uint8_t *)m->name;
      lm[j].name.len = m->name_len;
      lm[j].value.data = (uint8_t *)m->value;
      lm[j].value.len = m->value_len;
      lmp[j] = &lm[j];
    }
    qp[i] = &q[i];
  }
  Prometheus__Read__ReadRequest__ResponseType accepted[] = {
      PROMETHEUS__READ__READ_REQUEST__RESPONSE_TYPE__SAMPLES};
  Prometheus__Read__ReadRequest req = PROMETHEUS__READ__READ_REQUEST__INIT;
  req.queries = qp;
  req.n_queries = nsels;
  req.accepted_response_types = accepted;
  req.n_accepted_response_types = 1;

  size_t plen = prometheus__read__read_request__get_packed_size(&req);
  raw = malloc(plen ? plen : 1);
  if (raw == NULL) goto done;
  prometheus__read__read_request__pack(&req, raw);
  size_t clen = snappy_max_compressed_length(plen);
  if (rc_buf_reserve(out, clen) != 0) goto done;
  if (snappy_compress((const char *)raw, plen, out->data, &clen) != SNAPPY_OK) goto done;
  out->len = clen;
  rc = 0;
done:
  free(q);
  free(qp);
  free(lm);
  free(lmp);
  free(raw);
  if (rc != 0) {
    rc_buf_reset(out);
    rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Response
 *----------------------------------------------------------------------------------------*/

void rc_rread_result_free(rc_rread_result_t *r) {
  if (r == NULL) return;
  free(r->mem);
  memset(r, 0, sizeof(*r));
}

/* What copying one result needs, found while checking it. */
typedef struct need {
  size_t labels, label_bytes, samples;
} need_t;

/* Checks one series as the header promises it (labels sorted, unique, named, UTF-8; samples
 * in strictly ascending time) and adds up the room its copy takes. Empty-valued labels are
 * checked for order but not kept: an empty value is the same as no label. */
static int check_series(const Prometheus__Read__TimeSeries *ts, uint32_t ri, size_t si,
                        need_t *nd, rc_err_t *err) {
  char x[48], y[48];
  if (ts->n_labels > UINT32_MAX || ts->n_samples > UINT32_MAX)
    return rc_err_set(err, RC_ELIMIT, "result %u, series %zu: over 2^32 labels or samples", ri,
                      si);
  const ProtobufCBinaryData *prev = NULL;
  for (size_t k = 0; k < ts->n_labels; k++) {
    const ProtobufCBinaryData *n = &ts->labels[k]->name, *v = &ts->labels[k]->value;
    if (n->len == 0)
      return rc_err_set(err, RC_EPARSE, "result %u, series %zu: label %zu has an empty name",
                        ri, si, k);
    if (!rc_utf8_valid((const char *)n->data, n->len))
      return rc_err_set(err, RC_EPARSE, "result %u, series %zu: label %zu: name is not valid "
                        "UTF-8", ri, si, k);
    if (!rc_utf8_valid((const char *)v->data, v->len))
      return rc_err_set(err, RC_EPARSE, "result %u, series %zu: value of label \"%s\" is not "
                        "valid UTF-8", ri, si, excerpt(x, sizeof(x), n->data, n->len));
    if (prev != NULL) {
      int c = rc_bytes_cmp((const char *)prev->data, prev->len, (const char *)n->data, n->len);
      if (c == 0)
        return rc_err_set(err, RC_EPARSE, "result %u, series %zu: duplicate label name \"%s\"",
                          ri, si, excerpt(x, sizeof(x), n->data, n->len));
      if (c > 0)
        return rc_err_set(err, RC_EPARSE, "result %u, series %zu: labels not sorted by name "
                          "(\"%s\" after \"%s\")", ri, si, excerpt(x, sizeof(x), n->data, n->len),
                          excerpt(y, sizeof(y), prev->data, prev->len));
    }
    prev = n;
    if (v->len == 0) continue;
    nd->labels++;
    nd->label_bytes += n->len + v->len;
  }
  for (size_t k = 1; k < ts->n_samples; k++) {
    int64_t t0 = ts->samples[k - 1]->timestamp, t1 = ts->samples[k]->timestamp;
    if (t1 <= t0)
      return rc_err_set(err, RC_EPARSE, "result %u, series %zu: sample %zu: timestamp %lld is "
                        "not after %lld (samples must be in ascending time order)", ri, si, k,
                        (long long)t1, (long long)t0);
  }
  nd->samples += ts->n_samples;
  return 0;
}

/* Checks result ri and copies it into one block of its own, laid out as
 *   [series × nseries][labels × nd.labels][samples × nd.samples][label bytes]
 * (the three struct types are 24 bytes each, so every array stays 8-byte aligned).
 * *budget is what the memory limit still allows; the block is taken from it. */
static int copy_result(const Prometheus__Read__QueryResult *qr, uint32_t ri, size_t *budget,
                       size_t max_memory, rc_rread_result_t *out, rc_err_t *err) {
  need_t nd = {0};
  for (size_t si = 0; si < qr->n_timeseries; si++) {
    int rc = check_series(qr->timeseries[si], ri, si, &nd, err);
    if (rc != 0) return rc;
  }
  _Static_assert(sizeof(rc_rread_series_t) % 8 == 0 && sizeof(rc_label_t) % 8 == 0 &&
                     sizeof(rc_sample_t) % 8 == 0,
                 "result block layout needs 8-byte multiples");
  /* No overflow: every count is bounded by the decoded size, itself bounded by a size_t. */
  size_t size = qr->n_timeseries * sizeof(rc_rread_series_t) + nd.labels * sizeof(rc_label_t) +
                nd.samples * sizeof(rc_sample_t) + nd.label_bytes;
  if (size > *budget)
    return rc_err_set(err, RC_ELIMIT, "decoded response needs more than %zu bytes of memory",
                      max_memory);
  if (size == 0) return 0; /* an empty result: nothing to hold */
  char *mem = malloc(size);
  if (mem == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  *budget -= size;

  rc_rread_series_t *series = (void *)mem;
  rc_label_t *lab = (void *)(series + qr->n_timeseries);
  rc_sample_t *smp = (void *)(lab + nd.labels);
  char *str = (char *)(smp + nd.samples);
  out->mem = mem;
  out->series = series;
  out->nseries = (uint32_t)qr->n_timeseries;
  for (size_t si = 0; si < qr->n_timeseries; si++) {
    const Prometheus__Read__TimeSeries *ts = qr->timeseries[si];
    rc_rread_series_t *s = &series[si];
    s->labels = lab;
    s->nlabels = 0;
    for (size_t k = 0; k < ts->n_labels; k++) {
      const ProtobufCBinaryData *n = &ts->labels[k]->name, *v = &ts->labels[k]->value;
      if (v->len == 0) continue;
      memcpy(str, n->data, n->len);
      lab->name = str;
      lab->name_len = (uint32_t)n->len;
      str += n->len;
      memcpy(str, v->data, v->len);
      lab->value = str;
      lab->value_len = (uint32_t)v->len;
      str += v->len;
      lab++;
      s->nlabels++;
    }
    s->samples = smp;
    s->nsamples = (uint32_t)ts->n_samples;
    for (size_t k = 0; k < ts->n_samples; k++, smp++) {
      /* memcpy, not a floating-point assignment: a staleness marker is a signalling NaN,
       * and its exact bits are what marks it (an x87 load would quiet it). */
      memcpy(&smp->value, &ts->samples[k]->value, sizeof(smp->value));
      smp->ts_ms = ts->samples[k]->timestamp;
      smp->start_ts_ms = 0;
      out->nstale += rc_is_stale_nan(smp->value);
    }
    out->nsamples += ts->n_samples;
    out->nhistograms += ts->n_histograms;
  }
  return 0;
}

int rc_rread_decode_response(const void *body, size_t len, const rc_rread_limits_t *lim,
                             rc_rread_result_t *results, uint32_t nresults, rc_err_t *err) {
  if (nresults > 0 && results == NULL) return rc_err_set(err, RC_EINVAL, "no room for results");
  if (nresults > 0) memset(results, 0, nresults * sizeof(*results));
  rc_rread_limits_t l = effective_limits(lim);
  if (len == 0) return rc_err_set(err, RC_EPARSE, "empty response body");
  /* The declared length first, before allocating anything for it (snappy block format: a
   * varint of the uncompressed length, then the elements). */
  size_t ulen;
  if (snappy_uncompressed_length(body, len, &ulen) != SNAPPY_OK)
    return rc_err_set(err, RC_EPARSE, "malformed snappy block: bad uncompressed-length header");
  if (ulen > l.max_decoded_bytes)
    return rc_err_set(err, RC_ELIMIT, "decoded response would be %zu bytes, over the limit "
                      "of %zu", ulen, l.max_decoded_bytes);
  if (ulen >= l.max_memory_bytes)
    return rc_err_set(err, RC_ELIMIT, "decoded response needs more than %zu bytes of memory",
                      l.max_memory_bytes);
  char *raw = malloc(ulen ? ulen : 1);
  if (raw == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  size_t got = ulen;
  if (snappy_uncompress(body, len, raw, &got) != SNAPPY_OK || got != ulen) {
    free(raw);
    return rc_err_set(err, RC_EPARSE, "malformed snappy block: corrupt or truncated");
  }

  /* protobuf-c's unpacked message lives in an arena capped by what the memory limit leaves
   * after the decompressed bytes; protobuf-c copies every bytes field, so `raw` can go as
   * soon as it returns. */
  rc_arena_t a;
  rc_arena_init(&a, 3 * ulen + 4096, l.max_memory_bytes - ulen);
  Prometheus__Read__ReadResponse *resp = prometheus__read__read_response__unpack(
      rc_arena_pb(&a), ulen, (const uint8_t *)raw);
  free(raw);
  int rc = 0;
  if (resp == NULL) {
    rc = a.exhausted ? rc_err_set(err, RC_ELIMIT, "decoded response needs more than %zu bytes "
                                  "of memory", l.max_memory_bytes)
                     : rc_err_set(err, RC_EPARSE, "response is not a valid ReadResponse "
                                  "protobuf message");
    goto done;
  }
  if (resp->n_results != nresults) {
    rc = rc_err_set(err, RC_EPARSE, "response has %zu result%s for %u quer%s",
                    resp->n_results, resp->n_results == 1 ? "" : "s", nresults,
                    nresults == 1 ? "y" : "ies");
    goto done;
  }
  /* Counts come before any copy, so that an over-limit answer costs no more memory. */
  uint64_t nseries = 0, nsamples = 0;
  for (uint32_t i = 0; i < nresults; i++) {
    const Prometheus__Read__QueryResult *qr = resp->results[i];
    nseries += qr->n_timeseries;
    for (size_t si = 0; si < qr->n_timeseries; si++) nsamples += qr->timeseries[si]->n_samples;
  }
  if (nseries > l.max_series) {
    rc = rc_err_set(err, RC_ELIMIT, "response has %llu series, over the limit of %u",
                    (unsigned long long)nseries, l.max_series);
    goto done;
  }
  if (nsamples > l.max_samples) {
    rc = rc_err_set(err, RC_ELIMIT, "response has %llu samples, over the limit of %llu",
                    (unsigned long long)nsamples, (unsigned long long)l.max_samples);
    goto done;
  }
  size_t budget = l.max_memory_bytes > a.allocated ? l.max_memory_bytes - a.allocated : 0;
  for (uint32_t i = 0; i < nresults && rc == 0; i++)
    rc = copy_result(resp->results[i], i, &budget, l.max_memory_bytes, &results[i], err);
done:
  rc_arena_free(&a);
  if (rc != 0)
    for (uint32_t i = 0; i < nresults; i++) rc_rread_result_free(&results[i]);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * Client
 *----------------------------------------------------------------------------------------*/

struct rc_rread_client {
  CURL *easy;
  char *url; /* the endpoint: base URL + /api/v1/read */
  struct curl_slist *headers;
  rc_rread_limits_t limits;
  size_t max_body;
  rc_buf_t req, resp;
  int over_limit;   /* the write callback refused a body over max_body */
  int error_status; /* the answer is not 2xx: keep only its start */
  char errbuf[CURL_ERROR_SIZE];
};

/* A URL or token goes into a request line or header: a control character there would split it. */
static int has_control(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return 1;
  return 0;
}

/* Adds "Authorization: Bearer <token>" (trailing whitespace and line breaks trimmed: a token
 * file usually ends in one). The header text is wiped once curl has copied it. */
static int add_token(rc_rread_client_t *c, const char *tok, rc_err_t *err) {
  size_t n = strlen(tok);
  while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' ||
                   tok[n - 1] == '\t'))
    n--;
  if (n == 0) return 0;
  if (has_control(tok, n))
    return rc_err_set(err, RC_EINVAL, "remote read: the bearer token holds a control character");
  size_t hl = n + sizeof("Authorization: Bearer ");
  char *h = malloc(hl);
  if (h == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  snprintf(h, hl, "Authorization: Bearer %.*s", (int)n, tok);
  struct curl_slist *l = curl_slist_append(c->headers, h);
  OPENSSL_cleanse(h, hl);
  free(h);
  if (l == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  c->headers = l;
  return 0;
}

static int set_url(rc_rread_client_t *c, const char *url, rc_err_t *err) {
  if (url == NULL || *url == 0) return rc_err_set(err, RC_EINVAL, "remote read: no URL");
  size_t n = strlen(url);
  if (has_control(url, n) || strchr(url, ' ') != NULL)
    return rc_err_set(err, RC_EINVAL, "remote read: the URL holds a space or control character");
  if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
    return rc_err_set(err, RC_EINVAL, "remote read: the URL must start with http:// or https://");
  while (n > 0 && url[n - 1] == '/') n--;
  size_t el = sizeof(ENDPOINT) - 1;
  int has_endpoint = n >= el && memcmp(url + n - el, ENDPOINT, el) == 0;
  c->url = malloc(n + el + 1);
  if (c->url == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  snprintf(c->url, n + el + 1, "%.*s%s", (int)n, url, has_endpoint ? "" : ENDPOINT);
  return 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx) {
  rc_rread_client_t *c = ctx;
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    /* An error answer: its first line is all we report, so stop reading once we have it. */
    c->error_status = 1;
    size_t room = ERR_BODY_KEEP - c->resp.len;
    rc_buf_append(&c->resp, p, n < room ? n : room);
    return n < room ? n : 0;
  }
  if (n > c->max_body - c->resp.len) {
    c->over_limit = 1;
    return 0; /* curl stops with CURLE_WRITE_ERROR */
  }
  rc_buf_append(&c->resp, p, n);
  return c->resp.oom ? 0 : n;
}

int rc_rread_client_new(const rc_rread_opts_t *o, rc_rread_client_t **out, rc_err_t *err) {
  *out = NULL;
  rc_rread_client_t *c = calloc(1, sizeof(*c));
  if (c == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  rc_buf_init(&c->req);
  rc_buf_init(&c->resp);
  c->limits = effective_limits(&o->limits);
  c->max_body = o->max_body_bytes ? o->max_body_bytes
                                  : snappy_max_compressed_length(c->limits.max_decoded_bytes);
  int rc = set_url(c, o->url, err);
  if (rc != 0) goto fail;
  /* Reference-counted by libcurl (and thread-safe since 7.84); undone in _free. */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
    rc = rc_err_set(err, RC_EIO, "remote read: cannot initialise libcurl");
    goto fail;
  }
  c->easy = curl_easy_init();
  if (c->easy == NULL) {
    curl_global_cleanup();
    rc = rc_err_set(err, RC_EIO, "remote read: cannot initialise libcurl");
    goto fail;
  }
  static const char *const fixed[] = {
      "Content-Type: application/x-protobuf", "Content-Encoding: snappy",
      "X-Prometheus-Remote-Read-Version: 0.1.0",
      "Expect:", /* no 100-continue round trip: the body is small */
  };
  for (size_t i = 0; i < RC_ARRAY_SIZE(fixed); i++) {
    struct curl_slist *l = curl_slist_append(c->headers, fixed[i]);
    if (l == NULL) {
      rc = rc_err_set(err, RC_ENOMEM, "out of memory");
      goto fail;
    }
    c->headers = l;
  }
  if (o->bearer_token != NULL && (rc = add_token(c, o->bearer_token, err)) != 0) goto fail;

  uint32_t tmo = o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
  CURL *e = c->easy;
  curl_easy_setopt(e, CURLOPT_URL, c->url);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
  curl_easy_setopt(e, CURLOPT_USERAGENT, "ripcord/" RC_VERSION);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)tmo);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
  /* Refuses an announced Content-Length over the limit before the body comes; on_body
   * enforces it for bodies without one. Redirects are not followed (curl's default), so the
   * token goes nowhere but the configured URL. */
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_body);
  *out = c;
  return 0;
fail:
  rc_rread_client_free(c);
  return rc;
}

void rc_rread_client_free(rc_rread_client_t *c) {
  if (c == NULL) return;
  if (c->easy != NULL) {
    curl_easy_cleanup(c->easy);
    curl_global_cleanup();
  }
  for (struct curl_slist *l = c->headers; l != NULL; l = l->next)
    OPENSSL_cleanse(l->data, strlen(l->data)); /* the token */
  curl_slist_free_all(c->headers);
  free(c->url);
  rc_buf_free(&c->req);
  rc_buf_free(&c->resp);
  free(c);
}

/* The first line of an error body, printable and bounded, for "HTTP <code>: <line>". */
static const char *first_line(char *buf, size_t cap, const char *p, size_t n) {
  char tmp[128];
  size_t k = 0;
  for (; k < n && k < sizeof(tmp) - 1 && p[k] != '\n' && p[k] != '\r'; k++)
    tmp[k] = p[k] ? p[k] : '?';
  tmp[k] = 0;
  if (k == 0) snprintf(tmp, sizeof(tmp), "(empty body)");
  return rc_err_printable(buf, cap, tmp);
}

static int perform(rc_rread_client_t *c, rc_err_t *err) {
  rc_buf_reset(&c->resp);
  c->over_limit = c->error_status = 0;
  c->errbuf[0] = 0;
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->req.data);
  curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->req.len);
  CURLcode cc = curl_easy_perform(c->easy);
  long status = 0;
  curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
  char line[128];
  if (status != 0 && (status < 200 || status > 299))
    return rc_err_set(err, RC_EIO, "remote read: HTTP %ld: %s", status,
                      first_line(line, sizeof(line), c->resp.data, c->resp.len));
  if (c->over_limit || cc == CURLE_FILESIZE_EXCEEDED)
    return rc_err_set(err, RC_ELIMIT, "remote read: response body over the limit of %zu bytes",
                      c->max_body);
  if (c->resp.oom) return rc_err_set(err, RC_ENOMEM, "out of memory");
  if (cc != CURLE_OK)
    return rc_err_set(err, RC_EIO, "remote read: %s",
                      c->errbuf[0] ? c->errbuf : curl_easy_strerror(cc));
  /* A proxy's HTML page or a streamed-chunks answer would otherwise surface as "malformed
   * snappy block", which sends the user looking in the wrong place. */
  char *ct = NULL;
  curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct);
  if (ct != NULL && strncasecmp(ct, "application/x-protobuf", 22) != 0)
    return rc_err_set(err, RC_EIO, "remote read: unexpected Content-Type \"%s\" (want "
                      "application/x-protobuf)", excerpt(line, sizeof(line), ct, strlen(ct)));
  return 0;
}

int rc_rread_query(rc_rread_client_t *c, const rc_selector_t *const *sels, uint32_t nsels,
                   int64_t start_ms, int64_t end_ms, rc_rread_result_t *results, rc_err_t *err) {
  if (nsels > 0 && results != NULL) memset(results, 0, nsels * sizeof(*results));
  rc_err_t e = {0};
  int rc = rc_rread_encode_request(sels, nsels, start_ms, end_ms, &c->req, &e);
  if (rc == 0) rc = perform(c, &e);
  if (rc == 0) rc = rc_rread_decode_response(c->resp.data, c->resp.len, &c->limits, results,
                                             nsels, &e);
  /* A large answer is not kept between calls. */
  rc_buf_free(&c->resp);
  if (rc == 0) return 0;
  if (strncmp(e.msg, "remote read", 11) == 0 || rc == RC_ENOMEM)
    return rc_err_set(err, rc, "%s", e.msg);
  return rc_err_set(err, rc, "remote read: %s", e.msg);
}
