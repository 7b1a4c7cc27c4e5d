/* rread.h: a Prometheus remote read client, for `ripcord backtest` — it fetches the raw samples
 * that past rule evaluations would have seen from a Prometheus (or anything that serves
 * /api/v1/read) so that the rules can be replayed over them.
 *
 * What lives here: encoding one ReadRequest (one Query per selector), decoding the answer, and
 * a blocking libcurl client that does one POST per call. Only the SAMPLES response type
 * (protocol 0.1.0: one snappy-compressed ReadResponse protobuf) is asked for and understood;
 * the streamed chunk type needs a chunk (XOR) decoder we do not have. Native histogram samples
 * in a response are counted and dropped: the backtest replays float samples only.
 *
 *   ReadRequest  { 1: Query* { 1: start ms, 2: end ms, 3: LabelMatcher* {1: type, 2: name,
 *                  3: value}, 4: ReadHints {3: start ms, 4: end ms} }, 2: [SAMPLES] }
 *   ReadResponse { 1: QueryResult* { 1: TimeSeries* { 1: Label*, 2: Sample*, 4: Histogram* } } }
 *
 * The response is untrusted input: every malformed body gives RC_EPARSE and every body over a
 * limit RC_ELIMIT, with a one-line reason, never a crash (tests/fuzz/fuzz_rread.c). Why it is
 * strict about order: the backtest feeds samples to the same windows the daemon uses, which
 * assume a series' labels sorted and unique and its samples in time order; Prometheus sends
 * them so, and anything else means a broken server whose data we should not guess about.
 *
 * What it does not do: retries, splitting a long range into several requests, PromQL. Those
 * belong to the backtest command, which knows how much it asks for.
 *
 * Ownership: results own their memory (one block each, freed by rc_rread_result_free). The
 * client owns its curl handle and a copy of its options. Threads: no shared state; a client
 * is used by one thread at a time. Decoding is pure (no I/O) and safe from any thread.
 */
#ifndef RC_RREAD_H
#define RC_RREAD_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "buf.h"
#include "rc.h"
#include "selector.h"

/* Limits on one response. Zero fields take the defaults below. */
typedef struct rc_rread_limits {
  size_t max_decoded_bytes; /* snappy-declared uncompressed length, checked before allocating */
  uint32_t max_series;      /* over all results of one response */
  uint64_t max_samples;     /* float samples over all results of one response */
  size_t max_memory_bytes;  /* protobuf-c's unpacked message plus the results; 0: 8 times
                               max_decoded_bytes (Prometheus-shaped bodies need about 4) */
} rc_rread_limits_t;

#define RC_RREAD_DEFAULT_MAX_DECODED ((size_t)256 << 20)
#define RC_RREAD_DEFAULT_MAX_SERIES 1000000u
/* Prometheus' own default for storage.remote.read-sample-limit. */
#define RC_RREAD_DEFAULT_MAX_SAMPLES UINT64_C(50000000)

/* One series of a result. Everything points into the result's memory block. */
typedef struct rc_rread_series {
  rc_label_t *labels; /* sorted by name (bytewise), unique, no empty names or values, UTF-8 */
  uint32_t nlabels;
  uint32_t nsamples;  /* may be 0: a series that held only native histograms */
  rc_sample_t *samples; /* strictly ascending ts_ms; start_ts_ms is 0; stale markers kept
                           bit-exact (rc_is_stale_nan) */
} rc_rread_series_t;

/* The answer to one query. Zero-initialise, or let rc_rread_decode_response fill it. */
typedef struct rc_rread_result {
  rc_rread_series_t *series; /* in the order the server sent them */
  uint32_t nseries;
  uint64_t nsamples;    /* sum over the series */
  uint64_t nstale;      /* samples that are staleness markers */
  uint64_t nhistograms; /* native histogram samples received and dropped */
  void *mem;            /* private: the one block that holds everything above */
} rc_rread_result_t;

/* Frees what r holds and zeroes it. A zeroed result (or NULL) is a no-op. */
void rc_rread_result_free(rc_rread_result_t *r);

/* Encodes one ReadRequest — one Query per selector, each over [start_ms, end_ms] (inclusive,
 * as Prometheus reads it) with ReadHints of the same range, accepted_response_types = [SAMPLES]
 * — as a snappy block into out (reset first). sels are borrowed. Label matcher values are sent
 * as written: =~ "a.*" goes as regex "a.*", which the server anchors itself.
 * Returns 0; RC_EINVAL (no selectors, a selector without matchers, start after end, a name or
 * value that is not valid UTF-8: the server's protobuf decoder would refuse the request);
 * RC_ENOMEM. */
int rc_rread_encode_request(const rc_selector_t *const *sels, uint32_t nsels, int64_t start_ms,
                            int64_t end_ms, rc_buf_t *out, rc_err_t *err);

/* Decodes body[0..len), a snappy-compressed ReadResponse, into results[0..nresults): one per
 * query of the request, in order; the response must hold exactly nresults results. lim may be
 * NULL (all defaults). On success returns 0 and each results[i] owns its memory (the caller
 * frees each). On failure returns RC_EPARSE (malformed: bad snappy, bad protobuf, unsorted or
 * duplicate labels, invalid UTF-8, samples out of time order, a result count that differs
 * from nresults), RC_ELIMIT (over a limit) or RC_ENOMEM, explains in err (one line, may be
 * NULL) and leaves every results[i] zeroed. results' previous contents are not freed. */
int rc_rread_decode_response(const void *body, size_t len, const rc_rread_limits_t *lim,
                             rc_rread_result_t *results, uint32_t nresults, rc_err_t *err);

/* ---- client ------------------------------------------------------------------------------ */

typedef struct rc_rread_opts {
  const char *url;          /* base URL, http:// or https://, e.g. http://127.0.0.1:9090 (a
                               path prefix is kept); /api/v1/read is appended unless the URL
                               already ends with it */
  uint32_t timeout_ms;      /* whole request, connect to last byte; 0: 60000 */
  const char *bearer_token; /* NULL or "": no Authorization header. The caller reads it from an
                               environment variable or a file; it is copied, sent only as
                               `Authorization: Bearer`, never logged, and wiped on free */
  rc_rread_limits_t limits; /* for the decoded response (see above) */
  size_t max_body_bytes;    /* the HTTP body as received; 0: the most a valid snappy block of
                               limits.max_decoded_bytes can take */
} rc_rread_opts_t;

typedef struct rc_rread_client rc_rread_client_t;

/* Makes a client; o and its strings are copied. Returns 0; RC_EINVAL (no URL, a scheme other
 * than http/https, a control character in the URL or the token); RC_ENOMEM; RC_EIO (libcurl
 * cannot be initialised). */
int rc_rread_client_new(const rc_rread_opts_t *o, rc_rread_client_t **out, rc_err_t *err);
void rc_rread_client_free(rc_rread_client_t *c); /* NULL is a no-op */

/* One POST of a ReadRequest for sels (see rc_rread_encode_request) with Content-Type:
 * application/x-protobuf, Content-Encoding: snappy, X-Prometheus-Remote-Read-Version: 0.1.0
 * and User-Agent: ripcord/VERSION; the answer is decoded into results[0..nsels) (see
 * rc_rread_decode_response; the caller frees each). Connections are kept alive between calls.
 * Errors, with err->msg starting "remote read: ":
 *   RC_EIO     a connection error or timeout (curl's message); a non-2xx status ("remote read:
 *              HTTP 400: " and the first line of the body, printable and bounded); a 2xx
 *              answer whose Content-Type is not application/x-protobuf;
 *   RC_ELIMIT  a body over max_body_bytes (refused while it is received) or a decoded response
 *              over the limits;
 *   RC_EPARSE  a malformed response; RC_EINVAL a bad request (as for encoding); RC_ENOMEM.
 * On failure every results[i] is zeroed. */
int rc_rread_query(rc_rread_client_t *c, const rc_selector_t *const *sels, uint32_t nsels,
                   int64_t start_ms, int64_t end_ms, rc_rread_result_t *results, rc_err_t *err);

#endif
