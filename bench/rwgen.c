/* rwgen.c: ripcord's own remote-write load generator. It sends Prometheus remote write 1.0
 * (prometheus.WriteRequest) or 2.0 (io.prometheus.write.v2.Request) to a receiver over
 * keep-alive HTTP/1.1, or dumps the exact request bodies to files (--dump) for decode_bench and
 * as a fuzz seed corpus. It exists so that benchmarks and end-to-end checks measure ripcord,
 * not the sender: see "Why the generator is cheap" below.
 *
 * What it sends: N series with realistic label sets (8-10 labels, sorted by name, unique), in
 * the mix a scraped service exposes — counters, gauges, classic histograms (_bucket with le,
 * _sum, _count) and integer native histograms (schema 3, positive spans, a zero bucket). Like
 * Prometheus, every TimeSeries entry carries exactly one sample or one histogram, with the
 * labels repeated (v1) or referenced through a per-request symbols table (v2, symbols[0]="").
 * Timestamps are strictly increasing per series and follow the wall clock.
 *
 * Why the generator is cheap: the requests of one pass over all series (ceil(N/batch) of them)
 * are built, packed with protobuf-c and snappy-compressed once, at start-up. Each later send of
 * the same request only needs new timestamps. Timestamps are always 6-byte varints (any value
 * in [2^35, 2^42) ms, i.e. 1971..2109), and all samples of a request share one timestamp
 * (several, one per round, when N is smaller than a batch), so they can be rewritten inside the
 * *compressed* body: at start-up we trace the snappy block (which output byte comes from which
 * literal byte) and check that every literal byte feeding a timestamp feeds nothing else and
 * only timestamp bytes of one kind. If so, a send is "patch a handful of literal bytes, write
 * the buffer". If not (rare: a timestamp byte was copied from unrelated data), that request is
 * re-packed and re-compressed on every send, and the count of such requests is reported.
 * Values do not change between passes unless --passes K asks for K pre-encoded variants.
 *
 * Exit status: 0 = every request answered 2xx; 1 = a non-2xx answer or a connection error;
 * 2 = bad command line.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "remote_v1.pb-c.h"
#include "remote_v2.pb-c.h"

#define USER_AGENT "rwgen/" RC_VERSION
#define MAX_DURATION_MS (3600u * 1000u) /* benchmarks are bounded: at most one hour */
#define MAX_ROUNDS 100                  /* rounds of all series in one request (small N) */
#define TS_MIN (INT64_C(1) << 35)       /* 6-byte varint range, see the file comment */
#define TS_MAX ((INT64_C(1) << 42) - 1)

/*------------------------------------------------------------------------------------------
 * Options
 *----------------------------------------------------------------------------------------*/

typedef struct opts {
  const char *url;
  int protocol;
  uint32_t series;
  double native_frac;
  uint32_t spr; /* samples per request */
  uint32_t connections;
  uint64_t requests; /* 0 = unbounded */
  uint64_t duration_ms;
  uint64_t seed;
  int64_t start_ms; /* 0 = now */
  uint32_t passes;
  uint64_t bad_after_ms; /* 0: off; else from then on 5xx counters grow bad_factor x faster */
  uint32_t bad_factor;
  const char *dump_dir;
  uint64_t timeout_ms;
  double rate; /* samples+histograms per second over all connections; 0 = as fast as possible */
  int json_only;
  int quiet;
} opts_t;

static void usage(FILE *f) {
  fprintf(f,
          "usage: rwgen [flags]\n\n"
          "Prometheus remote-write load generator for ripcord. Sends pre-encoded requests over\n"
          "keep-alive HTTP/1.1 (or writes them to files with --dump), then prints a summary and,\n"
          "as the last line, one JSON object with totals and a per-metric breakdown.\n\n"
          "Flags (--flag=value or --flag value):\n"
          "  --url URL                  receiver (default http://127.0.0.1:9095/api/v1/write)\n"
          "  --protocol 1|2             remote write 1.0 or 2.0 (default 1)\n"
          "  --series N                 distinct series (default 1000)\n"
          "  --native-histograms F      fraction of series that are native histograms, 0..1\n"
          "                             (default 0.05); --no-native-histograms means 0\n"
          "  --samples-per-request N    samples+histograms per request (default 500)\n"
          "  --connections N            parallel keep-alive connections (default 1)\n"
          "  --requests N               stop after N requests\n"
          "  --duration D               stop after D (e.g. 10s, 2m; at most 1h)\n"
          "                             (at least one of --requests/--duration when sending)\n"
          "  --seed N                   seed for values and histogram shapes (default 1)\n"
          "  --start-time MS            first timestamp, ms since the epoch (default: now);\n"
          "                             set it for byte-identical --dump output\n"
          "  --passes K                 pre-encode K variants of each request with growing\n"
          "                             counter values (default 1: values repeat each pass)\n"
          "  --bad-after D              after D of sending, the code=\"500\" request counters\n"
          "                             grow --bad-factor times faster (a bad deploy)\n"
          "  --bad-factor F             1..10000 (default 50)\n"
          "  --rate R                   at most R samples+histograms per second over all\n"
          "                             connections (default 0: as fast as the receiver answers)\n"
          "  --timeout D                socket send/receive/connect timeout (default 10s)\n"
          "  --dump DIR                 write the request bodies (snappy, exactly as POSTed) to\n"
          "                             DIR/req-000000.bin ... and DIR/meta.json instead of\n"
          "                             sending; count = --requests, default one pass\n"
          "  --json                     print only the JSON line\n"
          "  --quiet                    print nothing on stdout (errors still go to stderr)\n"
          "  --help                     this text\n\n"
          "Exit status: 0 all requests answered 2xx, 1 non-2xx answers or connection errors,\n"
          "2 bad command line.\n");
}

/* "10s", "500ms", "1m30s", "2h"; a bare number means seconds. */
static int parse_duration_ms(const char *s, uint64_t *out) {
  static const struct { const char *unit; uint64_t ms; } units[] = {
      {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
  uint64_t total = 0;
  const char *p = s;
  if (*p == '\0') return -1;
  while (*p) {
    if (*p < '0' || *p > '9') return -1;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
      if (v > UINT64_C(1) << 40) return -1;
      v = v * 10 + (uint64_t)(*p++ - '0');
    }
    uint64_t mul = 0;
    if (*p == '\0' && p - s > 0 && total == 0) mul = 1000; /* bare number: seconds */
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && !mul; i++) {
      size_t n = strlen(units[i].unit);
      if (strncmp(p, units[i].unit, n) == 0 && !(n == 1 && p[0] == 'm' && p[1] == 's')) {
        mul = units[i].ms;
        p += n;
      }
    }
    if (mul == 0) return -1;
    total += v * mul;
    if (total > (UINT64_C(1) << 50)) return -1;
  }
  *out = total;
  return 0;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out) {
  if (*s < '0' || *s > '9') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) return -1;
  *out = v;
  return 0;
}

static int bad_value(const char *flag, const char *v, const char *want) {
  fprintf(stderr, "rwgen: error: --%s: \"%s\" is not %s\n", flag, v, want);
  return 2;
}

/* Returns 0, 1 for --help, or 2 after printing an error. */
static int parse_args(int argc, char **argv, opts_t *o) {
  memset(o, 0, sizeof(*o));
  o->url = "http://127.0.0.1:9095/api/v1/write";
  o->protocol = 1;
  o->series = 1000;
  o->native_frac = 0.05;
  o->spr = 500;
  o->connections = 1;
  o->seed = 1;
  o->passes = 1;
  o->bad_factor = 50;
  o->timeout_ms = 10000;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 1;
    if (strncmp(a, "--", 2) != 0) {
      fprintf(stderr, "rwgen: error: unexpected argument \"%s\" (try --help)\n", a);
      return 2;
    }
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    char flag[64];
    if (nl >= sizeof(flag)) nl = sizeof(flag) - 1;
    memcpy(flag, name, nl);
    flag[nl] = '\0';
    /* Flags without a value. */
    if (strcmp(flag, "json") == 0 || strcmp(flag, "quiet") == 0 ||
        strcmp(flag, "no-native-histograms") == 0) {
      if (eq != NULL) {
        fprintf(stderr, "rwgen: error: --%s takes no value\n", flag);
        return 2;
      }
      if (flag[0] == 'j') o->json_only = 1;
      else if (flag[0] == 'q') o->quiet = 1;
      else o->native_frac = 0;
      continue;
    }
    static const char *const known[] = {"url", "protocol", "series", "native-histograms",
                                        "samples-per-request", "connections", "requests",
                                        "duration", "seed", "start-time", "passes", "timeout",
                                        "dump", "bad-after", "bad-factor", "rate"};
    int k = -1;
    for (int j = 0; j < (int)(sizeof(known) / sizeof(known[0])); j++)
      if (strcmp(flag, known[j]) == 0) k = j;
    if (k < 0) {
      fprintf(stderr, "rwgen: error: unknown flag \"--%s\" (try --help)\n", flag);
      return 2;
    }
    const char *v = eq ? eq + 1 : NULL;
    if (v == NULL) {
      if (i + 1 >= argc) {
        fprintf(stderr, "rwgen: error: --%s needs a value\n", flag);
        return 2;
      }
      v = argv[++i];
    }
    uint64_t n;
    switch (k) {
      case 0:
        if (strncmp(v, "http://", 7) != 0) return bad_value(flag, v, "an http:// URL");
        o->url = v;
        break;
      case 1:
        if (strcmp(v, "1") != 0 && strcmp(v, "2") != 0) return bad_value(flag, v, "1 or 2");
        o->protocol = v[0] - '0';
        break;
      case 2:
        if (parse_u64(v, 1, 10000000, &n)) return bad_value(flag, v, "a count in 1..10000000");
        o->series = (uint32_t)n;
        break;
      case 3: {
        char *end;
        errno = 0;
        double f = strtod(v, &end);
        if (errno || end == v || *end != '\0' || !(f >= 0 && f <= 1))
          return bad_value(flag, v, "a fraction in 0..1");
        o->native_frac = f;
        break;
      }
      case 4:
        if (parse_u64(v, 1, 100000, &n)) return bad_value(flag, v, "a count in 1..100000");
        o->spr = (uint32_t)n;
        break;
      case 5:
        if (parse_u64(v, 1, 256, &n)) return bad_value(flag, v, "a count in 1..256");
        o->connections = (uint32_t)n;
        break;
      case 6:
        if (parse_u64(v, 1, UINT64_C(1000000000), &n))
          return bad_value(flag, v, "a count in 1..1000000000");
        o->requests = n;
        break;
      case 7:
        if (parse_duration_ms(v, &n) || n == 0 || n > MAX_DURATION_MS)
          return bad_value(flag, v, "a duration between 1ms and 1h (like 10s)");
        o->duration_ms = n;
        break;
      case 8:
        if (parse_u64(v, 0, UINT64_MAX, &n)) return bad_value(flag, v, "a whole number");
        o->seed = n;
        break;
      case 9:
        if (parse_u64(v, (uint64_t)TS_MIN, (uint64_t)TS_MAX / 2, &n))
          return bad_value(flag, v, "a time in ms since the epoch (1971..2040)");
        o->start_ms = (int64_t)n;
        break;
      case 10:
        if (parse_u64(v, 1, 16, &n)) return bad_value(flag, v, "a count in 1..16");
        o->passes = (uint32_t)n;
        break;
      case 11:
        if (parse_duration_ms(v, &n) || n < 10 || n > MAX_DURATION_MS)
          return bad_value(flag, v, "a duration between 10ms and 1h");
        o->timeout_ms = n;
        break;
      case 13:
        if (parse_duration_ms(v, &n) || n > MAX_DURATION_MS)
          return bad_value(flag, v, "a duration of at most 1h");
        o->bad_after_ms = n;
        break;
      case 14:
        if (parse_u64(v, 1, 10000, &n)) return bad_value(flag, v, "a factor in 1..10000");
        o->bad_factor = (uint32_t)n;
        break;
      case 12:
        if (*v == '\0') return bad_value(flag, v, "a directory");
        o->dump_dir = v;
        break;
      case 15: {
        char *end;
        errno = 0;
        double r = strtod(v, &end);
        if (errno || end == v || *end != '\0' || !(r == 0 || (r >= 1 && r <= 1e10)))
          return bad_value(flag, v, "0 or a rate in 1..1e10 samples/s");
        o->rate = r;
        break;
      }
      default:
        break;
    }
  }
  if (o->dump_dir == NULL && o->requests == 0 && o->duration_ms == 0) {
    fprintf(stderr, "rwgen: error: give --requests N and/or --duration D (or --dump DIR)\n");
    return 2;
  }
  return 0;
}

/*------------------------------------------------------------------------------------------
 * Small utilities
 *----------------------------------------------------------------------------------------*/

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* splitmix64: small, fast and good enough for synthetic values; seeded per series so that a
 * series' values do not depend on the order requests are built in. */
static uint64_t mix64(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

typedef struct rng {
  uint64_t s;
} rng_t;

static uint64_t rng_next(rng_t *r) {
  r->s += UINT64_C(0x9e3779b97f4a7c15);
  return mix64(r->s);
}

static rng_t rng_for(uint64_t seed, uint64_t a, uint64_t b) {
  return (rng_t){mix64(seed ^ mix64(a * 0x100000001b3u + b))};
}

/* A bump allocator for the protobuf structs of one request: they are built, packed and thrown
 * away together, so one free per chunk instead of one per message. */
typedef struct pchunk {
  struct pchunk *next;
  size_t used, size;
  _Alignas(16) unsigned char data[];
} pchunk_t;

typedef struct pool {
  pchunk_t *head;
  int oom;
} pool_t;

static void *pool_alloc(pool_t *p, size_t n) {
  n = (n + 15) & ~(size_t)15;
  if (p->head == NULL || p->head->size - p->head->used < n) {
    size_t size = n > (1u << 20) ? n : (1u << 20);
    pchunk_t *c = malloc(sizeof(*c) + size);
    if (c == NULL) {
      p->oom = 1;
      return NULL;
    }
    c->next = p->head;
    c->used = 0;
    c->size = size;
    p->head = c;
  }
  void *r = p->head->data + p->head->used;
  p->head->used += n;
  return r;
}

static char *pool_printf(pool_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *pool_printf(pool_t *p, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof(tmp)) n = sizeof(tmp) - 1;
  char *s = pool_alloc(p, (size_t)n + 1);
  if (s != NULL) memcpy(s, tmp, (size_t)n + 1);
  return s;
}

static void pool_free(pool_t *p) {
  while (p->head != NULL) {
    pchunk_t *n = p->head->next;
    free(p->head);
    p->head = n;
  }
  p->oom = 0;
}

/*------------------------------------------------------------------------------------------
 * The series catalogue
 *
 * Series are grouped by target (one scraped process). Every target exposes the same 40 float
 * series — six process gauges/counters, http_requests_total by code and method, and a classic
 * histogram http_request_duration_seconds by method (12 buckets + _sum + _count, twice) — and
 * some native-histogram series rpc_duration_seconds by method and handler. The target labels
 * (cluster, env, instance, job, namespace, service, version) make every series unique.
 *----------------------------------------------------------------------------------------*/

enum { T_COUNTER = 1, T_GAUGE = 2, T_HISTOGRAM = 3 }; /* = the v2 Metadata MetricType values */

enum {
  M_UP, M_RSS, M_FDS, M_GOROUTINES, M_CPU, M_QUEUE, M_HTTP_REQ, M_HDUR_BUCKET, M_HDUR_SUM,
  M_HDUR_COUNT, M_RPC_NATIVE, M__COUNT
};

static const struct {
  const char *name, *help, *unit;
  int type;
} metrics[M__COUNT] = {
    [M_UP] = {"up", "1 if the target is up.", "", T_GAUGE},
    [M_RSS] = {"process_resident_memory_bytes", "Resident memory size in bytes.", "bytes", T_GAUGE},
    [M_FDS] = {"process_open_fds", "Number of open file descriptors.", "", T_GAUGE},
    [M_GOROUTINES] = {"go_goroutines", "Number of goroutines that currently exist.", "", T_GAUGE},
    [M_CPU] = {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
               "seconds", T_COUNTER},
    [M_QUEUE] = {"app_queue_depth", "Items waiting in the work queue.", "", T_GAUGE},
    [M_HTTP_REQ] = {"http_requests_total", "HTTP requests served, by code and method.", "",
                    T_COUNTER},
    [M_HDUR_BUCKET] = {"http_request_duration_seconds_bucket", "HTTP request latency.",
                       "seconds", T_HISTOGRAM},
    [M_HDUR_SUM] = {"http_request_duration_seconds_sum", "HTTP request latency.", "seconds",
                    T_HISTOGRAM},
    [M_HDUR_COUNT] = {"http_request_duration_seconds_count", "HTTP request latency.", "seconds",
                      T_HISTOGRAM},
    [M_RPC_NATIVE] = {"rpc_duration_seconds", "RPC latency (native histogram).", "seconds",
                      T_HISTOGRAM},
};

static const char *const codes[] = {"200", "404", "500"};
static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
static const char *const les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                  "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
#define NLE 12
static const char *const handlers[] = {"/api/v1/orders", "/api/v1/cart", "/api/v1/users",
                                       "/api/v1/search", "/healthz",     "/api/v1/items",
                                       "/api/v1/login",  "/api/v1/pay"};
static const char *const clusters[] = {"eu-west-1", "us-east-1", "ap-south-1"};
static const char *const envs[] = {"prod", "prod", "staging", "dev"};
static const char *const jobs[] = {"api-gateway", "checkout", "payments",      "inventory",
                                   "search",      "auth",     "notifications", "orders",
                                   "catalog",     "shipping", "billing",       "recommendations"};
static const char *const namespaces[] = {"shop", "platform", "data", "edge"};
#define NJOBS 12
#define NATIVE_PER_TARGET 32 /* 4 methods x 8 handlers */

typedef struct tmpl {
  uint8_t metric;
  int8_t code, method, le; /* -1: label absent */
} tmpl_t;

#define FLOAT_PER_TARGET 40
static tmpl_t g_tmpl[FLOAT_PER_TARGET];

static void build_templates(void) {
  int n = 0;
  const uint8_t gauges[] = {M_UP, M_RSS, M_FDS, M_GOROUTINES, M_CPU, M_QUEUE};
  for (size_t i = 0; i < sizeof(gauges); i++) g_tmpl[n++] = (tmpl_t){gauges[i], -1, -1, -1};
  for (int c = 0; c < 3; c++)
    for (int m = 0; m < 2; m++) g_tmpl[n++] = (tmpl_t){M_HTTP_REQ, (int8_t)c, (int8_t)m, -1};
  for (int m = 0; m < 2; m++) {
    for (int l = 0; l < NLE; l++) g_tmpl[n++] = (tmpl_t){M_HDUR_BUCKET, -1, (int8_t)m, (int8_t)l};
    g_tmpl[n++] = (tmpl_t){M_HDUR_SUM, -1, (int8_t)m, -1};
    g_tmpl[n++] = (tmpl_t){M_HDUR_COUNT, -1, (int8_t)m, -1};
  }
}

typedef struct series {
  uint32_t target;
  uint8_t native;
  uint8_t tmpl;  /* float series: index into g_tmpl */
  uint8_t combo; /* native series: method * 8 + handler */
  uint8_t metric;
} series_t;

/* Lays out N series target by target: each target's float series, then its native ones. */
static series_t *build_series(uint32_t n, double native_frac, uint32_t *n_native_out) {
  uint32_t n_native = (uint32_t)floor((double)n * native_frac + 0.5);
  if (n_native > n) n_native = n;
  uint32_t n_float = n - n_native;
  uint32_t nt = (n_float + FLOAT_PER_TARGET - 1) / FLOAT_PER_TARGET;
  uint32_t nt2 = (n_native + NATIVE_PER_TARGET - 1) / NATIVE_PER_TARGET;
  if (nt2 > nt) nt = nt2;
  if (nt == 0) nt = 1;
  series_t *s = calloc(n, sizeof(*s));
  if (s == NULL) return NULL;
  uint32_t k = 0;
  for (uint32_t t = 0; t < nt; t++) {
    for (uint32_t m = 0; m < FLOAT_PER_TARGET && t * FLOAT_PER_TARGET + m < n_float; m++)
      s[k++] = (series_t){.target = t, .tmpl = (uint8_t)m, .metric = g_tmpl[m].metric};
    /* native series j lives on target j % nt; on this target they are j = t, t+nt, ... */
    for (uint32_t j = t, c = 0; j < n_native; j += nt, c++)
      s[k++] = (series_t){.target = t, .native = 1, .combo = (uint8_t)c, .metric = M_RPC_NATIVE};
  }
  *n_native_out = n_native;
  return s;
}

typedef struct lbl {
  const char *name, *value;
} lbl_t;

static int lbl_cmp(const void *a, const void *b) {
  return strcmp(((const lbl_t *)a)->name, ((const lbl_t *)b)->name);
}

/* Fills out[] with the series' labels, sorted by name. Returns the count, or 0 on OOM. */
static uint32_t series_labels(const series_t *s, pool_t *p, lbl_t *out) {
  uint32_t t = s->target, n = 0;
  const char *job = jobs[t % NJOBS];
  out[n++] = (lbl_t){"__name__", metrics[s->metric].name};
  out[n++] = (lbl_t){"cluster", clusters[(t / NJOBS) % 3]};
  out[n++] = (lbl_t){"env", envs[(t / 5) % 4]};
  out[n++] = (lbl_t){"instance", pool_printf(p, "10.%u.%u.%u:8080", (t >> 16) & 255,
                                             (t >> 8) & 255, t & 255)};
  out[n++] = (lbl_t){"job", job};
  out[n++] = (lbl_t){"namespace", namespaces[(t % NJOBS) % 4]};
  out[n++] = (lbl_t){"service", pool_printf(p, "%s-%s", job, (t / NJOBS) % 2 ? "grpc" : "http")};
  out[n++] = (lbl_t){"version", pool_printf(p, "v2.%u.%u", (t / NJOBS) % 30, t % 7)};
  if (s->native) {
    out[n++] = (lbl_t){"method", methods[s->combo / 8]};
    out[n++] = (lbl_t){"handler", handlers[s->combo % 8]};
  } else {
    const tmpl_t *m = &g_tmpl[s->tmpl];
    if (m->code >= 0) out[n++] = (lbl_t){"code", codes[m->code]};
    if (m->method >= 0) out[n++] = (lbl_t){"method", methods[m->method]};
    if (m->le >= 0) out[n++] = (lbl_t){"le", les[m->le]};
    if (m->metric == M_QUEUE) out[n++] = (lbl_t){"queue", "ingest"};
  }
  for (uint32_t i = 0; i < n; i++)
    if (out[i].value == NULL) return 0;
  qsort(out, n, sizeof(*out), lbl_cmp);
  return n;
}

/* Float value of series i in value variant v. Counters grow with v, gauges wander. With bad
 * set (the --bad-after variants), the code="500" request counters grow bad_factor x faster. */
static double series_value(uint64_t seed, uint32_t i, const series_t *s, uint32_t v, int bad,
                           uint32_t bad_factor) {
  rng_t r = rng_for(seed, i, 0);
  uint64_t a = rng_next(&r), b = rng_next(&r);
  switch (s->metric) {
    case M_UP: return 1;
    case M_RSS: return (double)(100000000u + a % 900000000u + (b % 1000) * 4096 * (v % 3));
    case M_FDS: return (double)(10 + a % 1000 + v % 5);
    case M_GOROUTINES: return (double)(20 + a % 500 + (b + v) % 17);
    case M_CPU: return (double)(a % 100000) / 10.0 + 0.25 * v;
    case M_QUEUE: return (double)((a + v * b) % 64);
    case M_HTTP_REQ:
      if (bad && codes[g_tmpl[s->tmpl].code][0] == '5')
        return (double)(a % 1000000 + (uint64_t)v * (1 + b % 1000) * bad_factor);
      return (double)(a % 1000000 + v * (1 + b % 1000));
    default: break;
  }
  /* Classic histogram: derived from (target, method) so that buckets, _sum and _count of one
   * histogram agree: cumulative buckets, _count equal to the +Inf bucket. */
  const tmpl_t *m = &g_tmpl[s->tmpl];
  rng_t h = rng_for(seed, s->target, 1000 + (uint64_t)m->method);
  double cum = 0, sum = 0;
  static const double bounds[NLE] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20};
  for (int l = 0; l < NLE; l++) {
    double inc = (double)(rng_next(&h) % 200) * (v + 1);
    cum += inc;
    sum += inc * bounds[l] * 0.7;
    if (s->metric == M_HDUR_BUCKET && l == m->le) return cum;
  }
  return s->metric == M_HDUR_SUM ? sum : cum;
}

/* An integer native histogram, schema 3, two positive spans and a zero bucket. Valid by
 * Prometheus' rules: span lengths add up to the number of deltas, every running bucket count
 * is >= 0, count = zero_count + the sum of the buckets. */
typedef struct nhist {
  int32_t off[2];
  uint32_t len[2];
  int64_t deltas[10];
  uint32_t ndeltas;
  uint64_t zero, count;
  double sum;
} nhist_t;

static void native_hist(uint64_t seed, uint32_t i, uint32_t v, nhist_t *h) {
  rng_t r = rng_for(seed, i, 7);
  h->off[0] = (int32_t)(rng_next(&r) % 9) - 4; /* absolute index of the first bucket */
  h->off[1] = 1 + (int32_t)(rng_next(&r) % 3); /* gap to the second span */
  h->len[0] = 2 + (uint32_t)(rng_next(&r) % 5);
  h->len[1] = 1 + (uint32_t)(rng_next(&r) % 4);
  h->ndeltas = h->len[0] + h->len[1];
  h->zero = (rng_next(&r) % 5) * (v + 1);
  h->count = h->zero;
  h->sum = 0;
  int64_t prev = 0;
  int32_t idx = h->off[0];
  for (uint32_t k = 0; k < h->ndeltas; k++) {
    if (k == h->len[0]) idx += h->off[1];
    int64_t b = (int64_t)(rng_next(&r) % 50) * (v + 1);
    h->deltas[k] = b - prev;
    prev = b;
    h->count += (uint64_t)b;
    h->sum += (double)b * pow(2.0, (double)idx / 8.0) * 0.9; /* schema 3: bound 2^(idx/8) */
    idx++;
  }
}

/*------------------------------------------------------------------------------------------
 * Requests: building, packing, and planning the timestamp patch
 *----------------------------------------------------------------------------------------*/

typedef struct slot {
  char *cbuf; /* the body as sent */
  size_t clen, ccap;
  uint8_t *ubuf; /* uncompressed template; kept for slow slots and --dump verification */
  size_t ulen;
  uint32_t *ts_off; /* offsets in ubuf of the 6-byte timestamp varints */
  uint8_t *ts_round;
  uint32_t nts;
  uint32_t *patch_pos; /* compressed literal bytes that carry timestamp bytes */
  uint8_t *patch_cls;  /* 1..5: byte k of the base; 6+q: low byte of base+q */
  uint32_t npatch;
  int slow; /* re-pack and re-compress on every send */
  uint32_t entries, samples, hist;
  uint32_t m_entries[M__COUNT], m_samples[M__COUNT], m_hist[M__COUNT];
} slot_t;

typedef struct gen {
  const opts_t *o;
  series_t *series;
  uint32_t n_native;
  uint32_t rounds;      /* rounds of every series per request (N < batch), else 1 */
  uint32_t per_request; /* entries per request (last request of a pass may have fewer) */
  uint32_t nreq;        /* requests per pass */
  uint32_t nslots;      /* nreq * passes */
  slot_t *slots;
  int64_t t0; /* template timestamp base */
} gen_t;

/* v2 symbols table of one request: strings interned by content. */
typedef struct symtab {
  ProtobufCBinaryData *sym;
  uint32_t n, cap;
  uint32_t *hash; /* open addressing: index+1, 0 = empty */
  uint32_t hcap;
} symtab_t;

static uint64_t str_hash(const char *s) {
  uint64_t h = UINT64_C(1469598103934665603);
  while (*s) h = (h ^ (unsigned char)*s++) * UINT64_C(1099511628211);
  return h;
}

static int sym_grow(symtab_t *t) {
  uint32_t hcap = t->hcap ? t->hcap * 2 : 1024;
  uint32_t *h = calloc(hcap, sizeof(*h));
  ProtobufCBinaryData *s = realloc(t->sym, (size_t)hcap / 2 * sizeof(*s));
  if (h == NULL || s == NULL) {
    free(h);
    if (s != NULL) t->sym = s;
    return -1;
  }
  t->sym = s;
  t->cap = hcap / 2;
  for (uint32_t i = 0; i < t->n; i++) {
    uint32_t k = (uint32_t)str_hash((const char *)t->sym[i].data) & (hcap - 1);
    while (h[k]) k = (k + 1) & (hcap - 1);
    h[k] = i + 1;
  }
  free(t->hash);
  t->hash = h;
  t->hcap = hcap;
  return 0;
}

/* Returns the symbol's index, or UINT32_MAX on OOM. Strings must outlive the table. */
static uint32_t sym_ref(symtab_t *t, const char *s) {
  if (t->n + 1 > t->cap && sym_grow(t) != 0) return UINT32_MAX;
  uint32_t k = (uint32_t)str_hash(s) & (t->hcap - 1);
  while (t->hash[k]) {
    uint32_t i = t->hash[k] - 1;
    if (strcmp((const char *)t->sym[i].data, s) == 0) return i;
    k = (k + 1) & (t->hcap - 1);
  }
  t->sym[t->n] = (ProtobufCBinaryData){.len = strlen(s), .data = (uint8_t *)(uintptr_t)s};
  t->hash[k] = t->n + 1;
  return t->n++;
}

static void sym_free(symtab_t *t) {
  free(t->sym);
  free(t->hash);
  memset(t, 0, sizeof(*t));
}

/* The entries of slot (variant v, request r): pairs (series index, round). */
static void slot_range(const gen_t *g, uint32_t r, uint32_t *lo, uint32_t *count) {
  uint64_t start = (uint64_t)r * g->per_request;
  uint64_t total = (uint64_t)g->o->series * g->rounds;
  *lo = (uint32_t)start;
  *count = (uint32_t)((total - start) < g->per_request ? total - start : g->per_request);
}

#define FILL_SPANS(T, INIT, dst_spans, nh, pool)                     \
  do {                                                               \
    T **sp_ = pool_alloc(pool, 2 * sizeof(T *));                     \
    T *sv_ = pool_alloc(pool, 2 * sizeof(T));                        \
    if (sp_ == NULL || sv_ == NULL) goto done;                       \
    for (int q_ = 0; q_ < 2; q_++) {                                 \
      INIT(&sv_[q_]);                                                \
      sv_[q_].offset = (nh)->off[q_];                                \
      sv_[q_].length = (nh)->len[q_];                                \
      sp_[q_] = &sv_[q_];                                            \
    }                                                                \
    dst_spans = sp_;                                                 \
  } while (0)

/* Packs slot (v, r) into a fresh buffer. Timestamps are t0 + round. Returns 0 or -1 (OOM). */
static int pack_request(const gen_t *g, uint32_t v, uint32_t r, slot_t *sl, uint8_t **out,
                        size_t *outlen) {
  uint32_t lo, count;
  slot_range(g, r, &lo, &count);
  pool_t pool = {0};
  symtab_t st = {0};
  lbl_t lbl[16];
  int rc = -1;
  uint32_t nser = g->o->series;
  memset(sl->m_entries, 0, sizeof(sl->m_entries));
  memset(sl->m_samples, 0, sizeof(sl->m_samples));
  memset(sl->m_hist, 0, sizeof(sl->m_hist));
  sl->entries = sl->samples = sl->hist = 0;
  if (g->o->protocol == 1) {
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.timeseries = pool_alloc(&pool, count * sizeof(*wr.timeseries));
    if (wr.timeseries == NULL) goto done;
    for (uint32_t e = 0; e < count; e++) {
      uint32_t i = (lo + e) % nser, round = (lo + e) / nser;
      const series_t *s = &g->series[i];
      uint32_t nl = series_labels(s, &pool, lbl);
      Prometheus__TimeSeries *ts = pool_alloc(&pool, sizeof(*ts));
      Prometheus__Label **lp = pool_alloc(&pool, nl * sizeof(*lp));
      Prometheus__Label *lv = pool_alloc(&pool, nl * sizeof(*lv));
      if (nl == 0 || ts == NULL || lp == NULL || lv == NULL) goto done;
      prometheus__time_series__init(ts);
      for (uint32_t k = 0; k < nl; k++) {
        prometheus__label__init(&lv[k]);
        lv[k].name = (ProtobufCBinaryData){strlen(lbl[k].name), (uint8_t *)(uintptr_t)lbl[k].name};
        lv[k].value =
            (ProtobufCBinaryData){strlen(lbl[k].value), (uint8_t *)(uintptr_t)lbl[k].value};
        lp[k] = &lv[k];
      }
      ts->n_labels = nl;
      ts->labels = lp;
      int64_t t = g->t0 + round;
      if (s->native) {
        nhist_t nh;
        native_hist(g->o->seed, i, v, &nh);
        Prometheus__Histogram *h = pool_alloc(&pool, sizeof(*h));
        Prometheus__Histogram **hp = pool_alloc(&pool, sizeof(*hp));
        int64_t *d = pool_alloc(&pool, nh.ndeltas * sizeof(*d));
        if (h == NULL || hp == NULL || d == NULL) goto done;
        prometheus__histogram__init(h);
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
        h->count_int = nh.count;
        h->sum = nh.sum;
        h->schema = 3;
        h->zero_threshold = 2.938735877055719e-39; /* 2^-128, Prometheus' default */
        h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        h->zero_count_int = nh.zero;
        FILL_SPANS(Prometheus__BucketSpan, prometheus__bucket_span__init, h->positive_spans,
                   &nh, &pool);
        h->n_positive_spans = 2;
        memcpy(d, nh.deltas, nh.ndeltas * sizeof(*d));
        h->positive_deltas = d;
        h->n_positive_deltas = nh.ndeltas;
        h->timestamp = t;
        hp[0] = h;
        ts->histograms = hp;
        ts->n_histograms = 1;
      } else {
        Prometheus__Sample *sm = pool_alloc(&pool, sizeof(*sm));
        Prometheus__Sample **sp = pool_alloc(&pool, sizeof(*sp));
        if (sm == NULL || sp == NULL) goto done;
        prometheus__sample__init(sm);
        sm->value = series_value(g->o->seed, i, s, v % g->o->passes, v >= g->o->passes,
                                 g->o->bad_factor);
        sm->timestamp = t;
        sp[0] = sm;
        ts->samples = sp;
        ts->n_samples = 1;
      }
      wr.timeseries[e] = ts;
    }
    wr.n_timeseries = count;
    *outlen = prometheus__write_request__get_packed_size(&wr);
    *out = malloc(*outlen ? *outlen : 1);
    if (*out == NULL) goto done;
    prometheus__write_request__pack(&wr, *out);
  } else {
    Io__Prometheus__Write__V2__Request rq = IO__PROMETHEUS__WRITE__V2__REQUEST__INIT;
    rq.timeseries = pool_alloc(&pool, count * sizeof(*rq.timeseries));
    if (rq.timeseries == NULL || sym_ref(&st, "") != 0) goto done; /* symbols[0] = "" */
    for (uint32_t e = 0; e < count; e++) {
      uint32_t i = (lo + e) % nser, round = (lo + e) / nser;
      const series_t *s = &g->series[i];
      uint32_t nl = series_labels(s, &pool, lbl);
      Io__Prometheus__Write__V2__TimeSeries *ts = pool_alloc(&pool, sizeof(*ts));
      uint32_t *refs = pool_alloc(&pool, 2 * nl * sizeof(*refs));
      Io__Prometheus__Write__V2__Metadata *md = pool_alloc(&pool, sizeof(*md));
      if (nl == 0 || ts == NULL || refs == NULL || md == NULL) goto done;
      io__prometheus__write__v2__time_series__init(ts);
      for (uint32_t k = 0; k < nl; k++) {
        refs[2 * k] = sym_ref(&st, lbl[k].name);
        refs[2 * k + 1] = sym_ref(&st, lbl[k].value);
        if (refs[2 * k] == UINT32_MAX || refs[2 * k + 1] == UINT32_MAX) goto done;
      }
      ts->labels_refs = refs;
      ts->n_labels_refs = 2 * nl;
      io__prometheus__write__v2__metadata__init(md);
      md->type = (Io__Prometheus__Write__V2__Metadata__MetricType)metrics[s->metric].type;
      md->help_ref = sym_ref(&st, metrics[s->metric].help);
      md->unit_ref = sym_ref(&st, metrics[s->metric].unit);
      if (md->help_ref == UINT32_MAX || md->unit_ref == UINT32_MAX) goto done;
      ts->metadata = md;
      int64_t t = g->t0 + round;
      if (s->native) {
        nhist_t nh;
        native_hist(g->o->seed, i, v, &nh);
        Io__Prometheus__Write__V2__Histogram *h = pool_alloc(&pool, sizeof(*h));
        Io__Prometheus__Write__V2__Histogram **hp = pool_alloc(&pool, sizeof(*hp));
        int64_t *d = pool_alloc(&pool, nh.ndeltas * sizeof(*d));
        if (h == NULL || hp == NULL || d == NULL) goto done;
        io__prometheus__write__v2__histogram__init(h);
        h->count_case = IO__PROMETHEUS__WRITE__V2__HISTOGRAM__COUNT_COUNT_INT;
        h->count_int = nh.count;
        h->sum = nh.sum;
        h->schema = 3;
        h->zero_threshold = 2.938735877055719e-39;
        h->zero_count_case = IO__PROMETHEUS__WRITE__V2__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
        h->zero_count_int = nh.zero;
        FILL_SPANS(Io__Prometheus__Write__V2__BucketSpan,
                   io__prometheus__write__v2__bucket_span__init, h->positive_spans, &nh, &pool);
        h->n_positive_spans = 2;
        memcpy(d, nh.deltas, nh.ndeltas * sizeof(*d));
        h->positive_deltas = d;
        h->n_positive_deltas = nh.ndeltas;
        h->timestamp = t;
        hp[0] = h;
        ts->histograms = hp;
        ts->n_histograms = 1;
      } else {
        Io__Prometheus__Write__V2__Sample *sm = pool_alloc(&pool, sizeof(*sm));
        Io__Prometheus__Write__V2__Sample **sp = pool_alloc(&pool, sizeof(*sp));
        if (sm == NULL || sp == NULL) goto done;
        io__prometheus__write__v2__sample__init(sm);
        sm->value = series_value(g->o->seed, i, s, v % g->o->passes, v >= g->o->passes,
                                 g->o->bad_factor);
        sm->timestamp = t;
        sp[0] = sm;
        ts->samples = sp;
        ts->n_samples = 1;
      }
      rq.timeseries[e] = ts;
    }
    rq.n_timeseries = count;
    rq.symbols = st.sym;
    rq.n_symbols = st.n;
    *outlen = io__prometheus__write__v2__request__get_packed_size(&rq);
    *out = malloc(*outlen ? *outlen : 1);
    if (*out == NULL) goto done;
    io__prometheus__write__v2__request__pack(&rq, *out);
  }
  for (uint32_t e = 0; e < count; e++) {
    const series_t *s = &g->series[(lo + e) % nser];
    sl->entries++;
    sl->m_entries[s->metric]++;
    if (s->native) {
      sl->hist++;
      sl->m_hist[s->metric]++;
    } else {
      sl->samples++;
      sl->m_samples[s->metric]++;
    }
  }
  rc = 0;
done:
  if (pool.oom) rc = -1;
  pool_free(&pool);
  sym_free(&st);
  return rc;
}

/* Protobuf wire walking, just enough to find the timestamp fields we packed. */
static int pb_varint(const uint8_t *b, size_t end, size_t *p, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t c = b[(*p)++];
    x |= (uint64_t)(c & 127) << shift;
    if (!(c & 128)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

static int pb_skip(const uint8_t *b, size_t end, size_t *p, unsigned wt) {
  uint64_t v;
  switch (wt) {
    case 0: return pb_varint(b, end, p, &v);
    case 1: *p += 8; break;
    case 2:
      if (pb_varint(b, end, p, &v) != 0 || v > end - *p) return -1;
      *p += v;
      break;
    case 5: *p += 4; break;
    default: return -1;
  }
  return *p <= end ? 0 : -1;
}

/* Records varint field `want` of the message b[p..end) (a Sample or Histogram). */
static int find_ts_leaf(const gen_t *g, const uint8_t *b, size_t p, size_t end, unsigned want,
                        slot_t *sl) {
  while (p < end) {
    uint64_t key;
    if (pb_varint(b, end, &p, &key) != 0) return -1;
    if ((key >> 3) == want && (key & 7) == 0) {
      size_t at = p;
      if (sl->nts >= sl->entries) return -1;
      uint64_t v;
      if (pb_varint(b, end, &p, &v) != 0 || p - at != 6) return -1;
      int64_t round = (int64_t)v - g->t0;
      if (round < 0 || round >= (int64_t)g->rounds) return -1;
      sl->ts_off[sl->nts] = (uint32_t)at;
      sl->ts_round[sl->nts] = (uint8_t)round;
      sl->nts++;
      continue;
    }
    if (pb_skip(b, end, &p, key & 7) != 0) return -1;
  }
  return 0;
}

/* Finds every timestamp varint in a packed request: v1 WriteRequest.timeseries(1) ->
 * samples(2).timestamp(2) | histograms(4).timestamp(15); v2 Request.timeseries(5) ->
 * samples(2).timestamp(2) | histograms(3).timestamp(15). */
static int find_ts(const gen_t *g, const uint8_t *b, size_t len, slot_t *sl) {
  unsigned top = g->o->protocol == 1 ? 1 : 5, hist = g->o->protocol == 1 ? 4 : 3;
  size_t p = 0;
  sl->nts = 0;
  while (p < len) {
    uint64_t key, l;
    if (pb_varint(b, len, &p, &key) != 0) return -1;
    if ((key >> 3) != top || (key & 7) != 2) {
      if (pb_skip(b, len, &p, key & 7) != 0) return -1;
      continue;
    }
    if (pb_varint(b, len, &p, &l) != 0 || l > len - p) return -1;
    size_t q = p, end = p + l;
    while (q < end) {
      uint64_t k2, l2;
      if (pb_varint(b, end, &q, &k2) != 0) return -1;
      unsigned f = (unsigned)(k2 >> 3);
      if ((k2 & 7) == 2 && (f == 2 || f == hist)) {
        if (pb_varint(b, end, &q, &l2) != 0 || l2 > end - q) return -1;
        if (find_ts_leaf(g, b, q, q + l2, f == 2 ? 2 : 15, sl) != 0) return -1;
        q += l2;
      } else if (pb_skip(b, end, &q, k2 & 7) != 0) {
        return -1;
      }
    }
    p = end;
  }
  return sl->nts == sl->entries ? 0 : -1;
}

/* For every byte of the snappy block's output, which byte of the compressed input it comes
 * from in the end (following copies back to their literal). Returns 0 or -1 if malformed. */
static int snappy_roots(const uint8_t *c, size_t clen, uint32_t *root, size_t ulen) {
  size_t p = 0, o = 0;
  uint64_t declared;
  if (pb_varint(c, clen, &p, &declared) != 0 || declared != ulen) return -1;
  while (p < clen) {
    uint8_t tag = c[p++];
    size_t len, off;
    if ((tag & 3) == 0) {
      len = (size_t)(tag >> 2) + 1;
      if (len > 60) {
        size_t nb = len - 60;
        if (p + nb > clen) return -1;
        len = 0;
        for (size_t k = 0; k < nb; k++) len |= (size_t)c[p + k] << (8 * k);
        len += 1;
        p += nb;
      }
      if (len > clen - p || len > ulen - o) return -1;
      for (size_t k = 0; k < len; k++) root[o++] = (uint32_t)(p + k);
      p += len;
      continue;
    }
    if ((tag & 3) == 1) {
      if (p + 1 > clen) return -1;
      len = ((tag >> 2) & 7) + 4;
      off = ((size_t)(tag >> 5) << 8) | c[p];
      p += 1;
    } else if ((tag & 3) == 2) {
      if (p + 2 > clen) return -1;
      len = (size_t)(tag >> 2) + 1;
      off = (size_t)c[p] | (size_t)c[p + 1] << 8;
      p += 2;
    } else {
      if (p + 4 > clen) return -1;
      len = (size_t)(tag >> 2) + 1;
      off = (size_t)c[p] | (size_t)c[p + 1] << 8 | (size_t)c[p + 2] << 16 | (size_t)c[p + 3] << 24;
      p += 4;
    }
    if (off == 0 || off > o || len > ulen - o) return -1;
    for (size_t k = 0; k < len; k++, o++) root[o] = root[o - off];
  }
  return o == ulen ? 0 : -1;
}

/* Decides how slot sl gets new timestamps: the list of compressed literal bytes to rewrite,
 * or slow = 1 when some literal feeds both a timestamp byte and anything else. The timestamp
 * byte classes: 1..5 = varint byte k of the request's base time (equal in every field, since
 * rounds never carry out of the low 7 bits), 6+q = low byte of round q. */
static int plan_patch(slot_t *sl) {
  uint32_t *root = malloc(sl->ulen * sizeof(*root));
  uint8_t *cls = calloc(sl->ulen ? sl->ulen : 1, 1);
  uint8_t *mark = malloc(sl->clen);
  int rc = -1;
  if (root == NULL || cls == NULL || mark == NULL) goto out;
  if (snappy_roots((const uint8_t *)sl->cbuf, sl->clen, root, sl->ulen) != 0) goto out;
  for (uint32_t i = 0; i < sl->nts; i++)
    for (int k = 0; k < 6; k++)
      cls[sl->ts_off[i] + k] = (uint8_t)(k ? k : 6 + sl->ts_round[i]);
  memset(mark, 0xff, sl->clen);
  sl->slow = 0;
  for (size_t o = 0; o < sl->ulen && !sl->slow; o++) {
    uint8_t *m = &mark[root[o]];
    if (*m == 0xff) *m = cls[o];
    else if (*m != cls[o]) sl->slow = 1;
  }
  sl->npatch = 0;
  if (!sl->slow) {
    for (size_t c = 0; c < sl->clen; c++)
      if (mark[c] != 0xff && mark[c] != 0) sl->npatch++;
    sl->patch_pos = malloc((sl->npatch ? sl->npatch : 1) * sizeof(*sl->patch_pos));
    sl->patch_cls = malloc(sl->npatch ? sl->npatch : 1);
    if (sl->patch_pos == NULL || sl->patch_cls == NULL) goto out;
    uint32_t n = 0;
    for (size_t c = 0; c < sl->clen; c++)
      if (mark[c] != 0xff && mark[c] != 0) {
        sl->patch_pos[n] = (uint32_t)c;
        sl->patch_cls[n++] = mark[c];
      }
  }
  rc = 0;
out:
  free(root);
  free(cls);
  free(mark);
  return rc;
}

static void put_varint6(uint8_t *p, int64_t v) {
  for (int k = 0; k < 6; k++) p[k] = (uint8_t)(((uint64_t)v >> (7 * k)) & 127) | (k < 5 ? 0x80 : 0);
}

/* Rewrites the slot's timestamps to base + round. Slot must be owned by the caller. */
static int slot_set_time(slot_t *sl, int64_t base) {
  if (!sl->slow) {
    for (uint32_t i = 0; i < sl->npatch; i++) {
      uint8_t c = sl->patch_cls[i];
      uint8_t b = c < 6 ? (uint8_t)(((uint64_t)base >> (7 * c)) & 127) | (c < 5 ? 0x80 : 0)
                        : (uint8_t)((((uint64_t)base + (uint64_t)(c - 6)) & 127) | 0x80);
      sl->cbuf[sl->patch_pos[i]] = (char)b;
    }
    return 0;
  }
  for (uint32_t i = 0; i < sl->nts; i++) put_varint6(sl->ubuf + sl->ts_off[i], base + sl->ts_round[i]);
  size_t n = sl->ccap;
  if (snappy_compress((const char *)sl->ubuf, sl->ulen, sl->cbuf, &n) != SNAPPY_OK) return -1;
  sl->clen = n;
  return 0;
}

/* The next base time for a request holding `rounds` rounds: later than every timestamp this
 * slot has sent, not before `floor`, and such that base + rounds - 1 does not carry out of the
 * varint's low 7 bits (which the patch plan relies on). */
static int64_t next_base(int64_t last, uint32_t rounds, int64_t floor) {
  int64_t t = last + (int64_t)rounds;
  if (t < floor) t = floor;
  if ((t & 127) + (int64_t)rounds - 1 > 127) t = (t | 127) + 1;
  return t;
}

static int build_slots(gen_t *g, int keep_ubuf) {
  const opts_t *o = g->o;
  build_templates();
  g->series = build_series(o->series, o->native_frac, &g->n_native);
  if (g->series == NULL) return -1;
  g->rounds = 1;
  if (o->series < o->spr) {
    g->rounds = o->spr / o->series;
    if (g->rounds > MAX_ROUNDS) g->rounds = MAX_ROUNDS;
    g->per_request = g->rounds * o->series;
    g->nreq = 1;
  } else {
    g->per_request = o->spr;
    g->nreq = (o->series + o->spr - 1) / o->spr;
  }
  /* With --bad-after, a second set of variants (v >= passes) carries the bad values. */
  uint32_t variants = o->passes * (o->bad_after_ms && o->dump_dir == NULL ? 2 : 1);
  g->nslots = g->nreq * variants;
  g->slots = calloc(g->nslots, sizeof(*g->slots));
  if (g->slots == NULL) return -1;
  for (uint32_t v = 0; v < variants; v++)
    for (uint32_t r = 0; r < g->nreq; r++) {
      slot_t *sl = &g->slots[v * g->nreq + r];
      uint8_t *u = NULL;
      size_t ulen = 0;
      if (pack_request(g, v, r, sl, &u, &ulen) != 0) {
        fprintf(stderr, "rwgen: error: out of memory building request %u\n", r);
        free(u);
        return -1;
      }
      sl->ubuf = u;
      sl->ulen = ulen;
      sl->ts_off = malloc(sl->entries * sizeof(*sl->ts_off));
      sl->ts_round = malloc(sl->entries ? sl->entries : 1);
      sl->ccap = snappy_max_compressed_length(ulen);
      sl->cbuf = malloc(sl->ccap);
      if (sl->ts_off == NULL || sl->ts_round == NULL || sl->cbuf == NULL) return -1;
      if (find_ts(g, u, ulen, sl) != 0) {
        fprintf(stderr, "rwgen: internal error: cannot locate timestamps in request %u\n", r);
        return -1;
      }
      sl->clen = sl->ccap;
      if (snappy_compress((const char *)u, ulen, sl->cbuf, &sl->clen) != SNAPPY_OK ||
          plan_patch(sl) != 0) {
        fprintf(stderr, "rwgen: internal error: snappy failed on request %u\n", r);
        return -1;
      }
      if (!sl->slow && !keep_ubuf) {
        free(sl->ubuf);
        sl->ubuf = NULL;
        char *small = realloc(sl->cbuf, sl->clen);
        if (small != NULL) {
          sl->cbuf = small;
          sl->ccap = sl->clen;
        }
      }
    }
  return 0;
}

static void free_slots(gen_t *g) {
  for (uint32_t i = 0; g->slots != NULL && i < g->nslots; i++) {
    slot_t *sl = &g->slots[i];
    free(sl->cbuf);
    free(sl->ubuf);
    free(sl->ts_off);
    free(sl->ts_round);
    free(sl->patch_pos);
    free(sl->patch_cls);
  }
  free(g->slots);
  free(g->series);
}

/* --dump only: decompresses the patched body and compares it with the template patched the
 * slow way, so the in-place patch is proven on every dumped request. */
static int verify_slot(const slot_t *sl, int64_t base) {
  uint8_t *want = malloc(sl->ulen ? sl->ulen : 1), *got = malloc(sl->ulen ? sl->ulen : 1);
  size_t n = sl->ulen;
  int ok = want != NULL && got != NULL;
  if (ok) {
    memcpy(want, sl->ubuf, sl->ulen);
    for (uint32_t i = 0; i < sl->nts; i++) put_varint6(want + sl->ts_off[i], base + sl->ts_round[i]);
    ok = snappy_uncompress(sl->cbuf, sl->clen, (char *)got, &n) == SNAPPY_OK && n == sl->ulen &&
         memcmp(want, got, n) == 0;
  }
  free(want);
  free(got);
  return ok ? 0 : -1;
}

/*------------------------------------------------------------------------------------------
 * Counting what was sent and what was accepted
 *----------------------------------------------------------------------------------------*/

typedef struct tally {
  uint64_t requests_sent, answered, ok, errors, reconnects;
  uint64_t sent_entries, sent_samples, sent_hist;
  uint64_t entries, samples, hist; /* in requests answered 2xx */
  uint64_t m_entries[M__COUNT], m_samples[M__COUNT], m_hist[M__COUNT];
  uint64_t by_code[600];
  uint64_t lat_sum_ns, lat_max_ns;
  uint64_t bytes;
} tally_t;

static void tally_sent(tally_t *t, const slot_t *sl) {
  t->requests_sent++;
  t->sent_entries += sl->entries;
  t->sent_samples += sl->samples;
  t->sent_hist += sl->hist;
  t->bytes += sl->clen;
}

static void tally_answer(tally_t *t, const slot_t *sl, int status) {
  t->answered++;
  t->by_code[status >= 100 && status < 600 ? status : 0]++;
  if (status < 200 || status > 299) return;
  t->ok++;
  t->entries += sl->entries;
  t->samples += sl->samples;
  t->hist += sl->hist;
  for (int m = 0; m < M__COUNT; m++) {
    t->m_entries[m] += sl->m_entries[m];
    t->m_samples[m] += sl->m_samples[m];
    t->m_hist[m] += sl->m_hist[m];
  }
}

static void tally_merge(tally_t *into, const tally_t *t) {
  const uint64_t *a = (const uint64_t *)t;
  uint64_t *b = (uint64_t *)into;
  uint64_t max = into->lat_max_ns > t->lat_max_ns ? into->lat_max_ns : t->lat_max_ns;
  for (size_t i = 0; i < sizeof(*t) / sizeof(uint64_t); i++) b[i] += a[i];
  into->lat_max_ns = max;
}

/*------------------------------------------------------------------------------------------
 * HTTP/1.1 client: one blocking socket per connection thread
 *----------------------------------------------------------------------------------------*/

typedef struct target {
  struct sockaddr_storage addr;
  socklen_t addrlen;
  char hostport[300]; /* for the Host header */
  char path[512];
} target_t;

static int parse_url(const char *url, target_t *t, char *err, size_t esz) {
  const char *p = url + strlen("http://");
  const char *slash = strchr(p, '/');
  size_t hl = slash ? (size_t)(slash - p) : strlen(p);
  if (hl == 0 || hl >= sizeof(t->hostport)) {
    snprintf(err, esz, "--url %s: missing or too long host", url);
    return -1;
  }
  memcpy(t->hostport, p, hl);
  t->hostport[hl] = '\0';
  snprintf(t->path, sizeof(t->path), "%s", slash ? slash : "/");
  char host[300], port[16] = "80";
  const char *hp = t->hostport, *colon;
  if (hp[0] == '[') {
    const char *end = strchr(hp, ']');
    if (end == NULL) {
      snprintf(err, esz, "--url %s: bad IPv6 literal", url);
      return -1;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(end - hp - 1), hp + 1);
    colon = end[1] == ':' ? end + 1 : NULL;
  } else {
    colon = strrchr(hp, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon ? (size_t)(colon - hp) : strlen(hp)), hp);
  }
  if (colon != NULL) snprintf(port, sizeof(port), "%s", colon + 1);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0 || res == NULL) {
    snprintf(err, esz, "--url %.80s: cannot resolve %.80s:%s: %s", url, host, port,
             gai_strerror(rc));
    return -1;
  }
  memcpy(&t->addr, res->ai_addr, res->ai_addrlen);
  t->addrlen = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static int conn_open(const target_t *t, uint64_t timeout_ms, char *err, size_t esz) {
  int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, esz, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000),
                       .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
  /* Small requests must not wait for Nagle; SO_SNDTIMEO also bounds connect() on Linux. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) != 0) {
    snprintf(err, esz, "connect to %.100s: %s", t->hostport, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static int send_all(int fd, struct iovec *iov, int n, char *err, size_t esz) {
  while (n > 0) {
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      snprintf(err, esz, "send: %s", errno == EAGAIN ? "timed out" : strerror(errno));
      return -1;
    }
    size_t left = (size_t)w;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (char *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

typedef struct rbuf {
  char d[16384];
  size_t s, e; /* unread bytes are d[s..e) */
} rbuf_t;

/* Reads more bytes; returns bytes read, 0 on EOF, -1 on error (message in err). */
static ssize_t rb_fill(int fd, rbuf_t *rb, char *err, size_t esz) {
  if (rb->s > 0) {
    memmove(rb->d, rb->d + rb->s, rb->e - rb->s);
    rb->e -= rb->s;
    rb->s = 0;
  }
  if (rb->e == sizeof(rb->d)) {
    snprintf(err, esz, "response header line too long");
    return -1;
  }
  for (;;) {
    ssize_t n = recv(fd, rb->d + rb->e, sizeof(rb->d) - rb->e, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      snprintf(err, esz, "receive: %s",
               errno == EAGAIN || errno == EWOULDBLOCK ? "timed out" : strerror(errno));
      return -1;
    }
    rb->e += (size_t)n;
    return n;
  }
}

/* Returns a pointer to the next CRLF-terminated line (NUL-terminated in place), or NULL. */
static char *rb_line(int fd, rbuf_t *rb, char *err, size_t esz) {
  for (;;) {
    char *nl = memchr(rb->d + rb->s, '\n', rb->e - rb->s);
    if (nl != NULL) {
      char *line = rb->d + rb->s;
      rb->s = (size_t)(nl - rb->d) + 1;
      *nl = '\0';
      if (nl > line && nl[-1] == '\r') nl[-1] = '\0';
      return line;
    }
    ssize_t n = rb_fill(fd, rb, err, esz);
    if (n == 0) snprintf(err, esz, "connection closed by the server mid-response");
    if (n <= 0) return NULL;
  }
}

static int rb_skip(int fd, rbuf_t *rb, uint64_t n, char *err, size_t esz) {
  while (n > 0) {
    if (rb->s == rb->e) {
      ssize_t r = rb_fill(fd, rb, err, esz);
      if (r == 0) snprintf(err, esz, "connection closed by the server mid-body");
      if (r <= 0) return -1;
    }
    size_t take = rb->e - rb->s < n ? rb->e - rb->s : (size_t)n;
    rb->s += take;
    n -= take;
  }
  return 0;
}

/* Reads one response: status line, headers, and the body (skipped). */
static int read_response(int fd, rbuf_t *rb, int *status, int *must_close, char *err,
                         size_t esz) {
  for (;;) {
    char *line = rb_line(fd, rb, err, esz);
    if (line == NULL) return -1;
    int minor = 1, code = 0;
    if (sscanf(line, "HTTP/1.%d %3d", &minor, &code) != 2 || code < 100 || code > 599) {
      snprintf(err, esz, "malformed status line \"%.60s\"", line);
      return -1;
    }
    int64_t clen = -1;
    int chunked = 0, close_hdr = minor == 0, keepalive_hdr = 0;
    for (;;) {
      char *h = rb_line(fd, rb, err, esz);
      if (h == NULL) return -1;
      if (*h == '\0') break;
      char *colon = strchr(h, ':');
      if (colon == NULL) continue;
      *colon = '\0';
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      if (strcasecmp(h, "Content-Length") == 0) clen = strtoll(v, NULL, 10);
      else if (strcasecmp(h, "Transfer-Encoding") == 0 && strcasestr(v, "chunked")) chunked = 1;
      else if (strcasecmp(h, "Connection") == 0 && strcasestr(v, "close")) close_hdr = 1;
      else if (strcasecmp(h, "Connection") == 0 && strcasestr(v, "keep-alive")) keepalive_hdr = 1;
    }
    if (minor == 0 && keepalive_hdr) close_hdr = 0;
    if (code >= 100 && code < 200) continue; /* interim response: the real one follows */
    if (chunked) {
      for (;;) {
        char *sz = rb_line(fd, rb, err, esz);
        if (sz == NULL) return -1;
        uint64_t n = strtoull(sz, NULL, 16);
        if (n == 0) {
          for (;;) { /* trailers up to the empty line */
            char *tl = rb_line(fd, rb, err, esz);
            if (tl == NULL) return -1;
            if (*tl == '\0') break;
          }
          break;
        }
        if (rb_skip(fd, rb, n, err, esz) != 0 || rb_line(fd, rb, err, esz) == NULL) return -1;
      }
    } else if (clen > 0) {
      if (rb_skip(fd, rb, (uint64_t)clen, err, esz) != 0) return -1;
    } else if (clen < 0 && code != 204 && code != 304) {
      /* No length: the body runs to the end of the connection. */
      for (;;) {
        rb->s = rb->e;
        ssize_t r = rb_fill(fd, rb, err, esz);
        if (r < 0) return -1;
        if (r == 0) break;
      }
      close_hdr = 1;
    }
    *status = code;
    *must_close = close_hdr;
    return 0;
  }
}

/*------------------------------------------------------------------------------------------
 * Sending
 *----------------------------------------------------------------------------------------*/

static atomic_int g_stop;          /* set by a signal, the deadline or a fatal error */
static atomic_uint_fast64_t g_claimed; /* requests claimed, for --requests */
static atomic_int g_failed;

static void on_signal(int sig) {
  (void)sig;
  atomic_store(&g_stop, 1);
}

/* Start gate: every connection is opened first, then all start sending together, so the
 * measured interval holds no connect time and no pre-encoding. */
typedef struct gate {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  uint32_t ready;
  int open;
} gate_t;

static void gate_arrive_and_wait(gate_t *g) {
  pthread_mutex_lock(&g->mu);
  g->ready++;
  pthread_cond_broadcast(&g->cv);
  while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
  pthread_mutex_unlock(&g->mu);
}

typedef struct worker {
  gen_t *g;
  const target_t *tgt;
  uint32_t id;
  pthread_t thread;
  gate_t *gate;
  uint64_t deadline_ns; /* 0 = none */
  uint64_t bad_ns;      /* --bad-after: from then on the bad variants; 0 = never */
  uint64_t pace_ns;     /* --rate: when this connection's budget started */
  double rate;          /* --rate: this connection's share, samples+histograms/s; 0 = off */
  int64_t clock_offset; /* added to the wall clock for timestamps (--start-time) */
  int64_t *last_base;   /* per request index r: the last base time sent */
  tally_t t;
  uint64_t end_ns;
  char err[256];
} worker_t;

static void *worker_main(void *arg) {
  worker_t *w = arg;
  gen_t *g = w->g;
  const opts_t *o = g->o;
  rbuf_t *rb = calloc(1, sizeof(*rb));
  char hdr[1024];
  int fd = -1;
  uint32_t reconnects_left = 100;
  /* This connection owns requests r with r % connections == id, so every series is only ever
   * sent on one connection, in order: its timestamps arrive strictly increasing. */
  uint32_t owned = 0;
  for (uint32_t r = w->id; r < g->nreq; r += o->connections) owned++;
  if (rb == NULL) {
    snprintf(w->err, sizeof(w->err), "out of memory");
    atomic_store(&g_failed, 1);
    atomic_store(&g_stop, 1);
  } else if (owned > 0) {
    fd = conn_open(w->tgt, o->timeout_ms, w->err, sizeof(w->err));
    if (fd < 0) {
      atomic_store(&g_failed, 1);
      atomic_store(&g_stop, 1);
    }
  }
  gate_arrive_and_wait(w->gate);
  for (uint64_t j = 0; fd >= 0 && owned > 0 && !atomic_load(&g_stop); j++) {
    if (w->rate > 0) {
      /* --rate: the next request leaves once what was sent fits the budget. A receiver that
       * fell behind may be caught up with at most one second's worth at full speed. */
      uint64_t sent = w->t.sent_samples + w->t.sent_hist;
      double ahead_ns = (double)sent * 1e9 / w->rate;
      uint64_t due = w->pace_ns + (uint64_t)(ahead_ns < 1e18 ? ahead_ns : 1e18);
      uint64_t now = mono_ns();
      if (now > due + 1000000000u) w->pace_ns += now - due - 1000000000u;
      while (now < due && !atomic_load(&g_stop) && !(w->deadline_ns && now >= w->deadline_ns)) {
        uint64_t d = due - now < 50000000u ? due - now : 50000000u; /* signals within 50 ms */
        struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
        nanosleep(&ts, NULL);
        now = mono_ns();
      }
    }
    if (w->deadline_ns && mono_ns() >= w->deadline_ns) break;
    if (o->requests && atomic_fetch_add(&g_claimed, 1) >= o->requests) break;
    uint32_t r = w->id + (uint32_t)(j % owned) * o->connections;
    uint32_t v = (uint32_t)((j / owned) % o->passes);
    if (w->bad_ns && mono_ns() >= w->bad_ns) v += o->passes;
    slot_t *sl = &g->slots[v * g->nreq + r];
    int64_t base = next_base(w->last_base[r], g->rounds, wall_ms() + w->clock_offset);
    if (base + (int64_t)g->rounds > TS_MAX || slot_set_time(sl, base) != 0) {
      snprintf(w->err, sizeof(w->err), "cannot set timestamps (time beyond 2109?)");
      atomic_store(&g_failed, 1);
      break;
    }
    w->last_base[r] = base + (int64_t)g->rounds - 1;
    int hl = snprintf(hdr, sizeof(hdr),
                      "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: " USER_AGENT
                      "\r\nContent-Type: %s\r\nContent-Encoding: snappy\r\n"
                      "X-Prometheus-Remote-Write-Version: %s\r\nContent-Length: %zu\r\n\r\n",
                      w->tgt->path, w->tgt->hostport,
                      o->protocol == 1 ? "application/x-protobuf"
                                       : "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                      o->protocol == 1 ? "0.1.0" : "2.0.0", sl->clen);
    struct iovec iov[2] = {{hdr, (size_t)hl}, {sl->cbuf, sl->clen}};
    uint64_t t0 = mono_ns();
    int status = 0, must_close = 0;
    tally_sent(&w->t, sl);
    if (send_all(fd, iov, 2, w->err, sizeof(w->err)) != 0 ||
        read_response(fd, rb, &status, &must_close, w->err, sizeof(w->err)) != 0) {
      w->t.errors++;
      atomic_store(&g_failed, 1);
      atomic_store(&g_stop, 1); /* a broken receiver: stop everything, report what we have */
      break;
    }
    uint64_t lat = mono_ns() - t0;
    w->t.lat_sum_ns += lat;
    if (lat > w->t.lat_max_ns) w->t.lat_max_ns = lat;
    tally_answer(&w->t, sl, status);
    if (must_close) {
      /* The server ended the keep-alive connection (after an error answer, or draining). */
      close(fd);
      rb->s = rb->e = 0;
      fd = -1;
      if (reconnects_left-- == 0) {
        snprintf(w->err, sizeof(w->err), "server closed the connection too often");
        atomic_store(&g_failed, 1);
        break;
      }
      w->t.reconnects++;
      fd = conn_open(w->tgt, o->timeout_ms, w->err, sizeof(w->err));
      if (fd < 0) {
        atomic_store(&g_failed, 1);
        atomic_store(&g_stop, 1);
      }
    }
  }
  w->end_ns = mono_ns();
  if (fd >= 0) close(fd);
  free(rb);
  return NULL;
}

/*------------------------------------------------------------------------------------------
 * Reporting
 *----------------------------------------------------------------------------------------*/

static json_t *metrics_json(const uint64_t *e, const uint64_t *s, const uint64_t *h) {
  json_t *m = json_object();
  for (int i = 0; i < M__COUNT && m != NULL; i++) {
    if (e[i] == 0) continue;
    json_object_set_new(m, metrics[i].name,
                        json_pack("{s:I,s:I,s:I}", "series", (json_int_t)e[i], "samples",
                                  (json_int_t)s[i], "histograms", (json_int_t)h[i]));
  }
  return m;
}

static void print_json(json_t *j) {
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  if (s != NULL) {
    printf("%s\n", s);
    free(s);
  } else {
    printf("{\"error\":\"out of memory rendering JSON\"}\n");
  }
  fflush(stdout);
}

static int report(const gen_t *g, const tally_t *t, double elapsed, double cpu, uint32_t slow,
                  const char *err) {
  const opts_t *o = g->o;
  uint64_t non2xx = t->answered - t->ok;
  double el = elapsed > 0 ? elapsed : 1e-9;
  if (!o->json_only) {
    printf("rwgen: protocol %d, %u series (%u native histograms), %u per request, %u "
           "connection(s), %u distinct requests (%u re-compressed per send)\n",
           o->protocol, o->series, g->n_native, g->per_request, o->connections, g->nslots, slow);
    printf("  requests    %" PRIu64 " answered in %.3f s (%.1f/s), 2xx %" PRIu64
           ", non-2xx %" PRIu64 ", errors %" PRIu64 "\n",
           t->answered, elapsed, (double)t->answered / el, t->ok, non2xx, t->errors);
    printf("  samples     %" PRIu64 " accepted (%.0f/s), histograms %" PRIu64
           " (%.0f/s), series entries %" PRIu64 "\n",
           t->samples, (double)t->samples / el, t->hist, (double)t->hist / el, t->entries);
    printf("  by status  ");
    for (int c = 0; c < 600; c++)
      if (t->by_code[c]) printf(" %d=%" PRIu64, c, t->by_code[c]);
    printf("\n");
    if (t->answered)
      printf("  latency     mean %.3f ms, max %.3f ms; body %.1f KiB/request\n",
             (double)t->lat_sum_ns / (double)t->answered / 1e6, (double)t->lat_max_ns / 1e6,
             (double)t->bytes / (double)t->requests_sent / 1024.0);
    printf("  generator   %.3f CPU s (%.1f%% of one core)\n", cpu, 100.0 * cpu / el);
    if (err != NULL && *err) printf("  error       %s\n", err);
  }
  json_t *by = json_object();
  for (int c = 0; c < 600 && by != NULL; c++)
    if (t->by_code[c]) {
      char k[8];
      snprintf(k, sizeof(k), "%d", c);
      json_object_set_new(by, k, json_integer((json_int_t)t->by_code[c]));
    }
  json_t *j = json_object();
  json_object_set_new(j, "protocol", json_integer(o->protocol));
  json_object_set_new(j, "requests", json_integer((json_int_t)t->answered));
  json_object_set_new(j, "requests_2xx", json_integer((json_int_t)t->ok));
  json_object_set_new(j, "non_2xx", json_integer((json_int_t)non2xx));
  json_object_set_new(j, "errors", json_integer((json_int_t)t->errors));
  json_object_set_new(j, "series", json_integer((json_int_t)t->entries));
  json_object_set_new(j, "samples", json_integer((json_int_t)t->samples));
  json_object_set_new(j, "histograms", json_integer((json_int_t)t->hist));
  json_object_set_new(j, "sent", json_pack("{s:I,s:I,s:I,s:I}", "requests",
                                           (json_int_t)t->requests_sent, "series",
                                           (json_int_t)t->sent_entries, "samples",
                                           (json_int_t)t->sent_samples, "histograms",
                                           (json_int_t)t->sent_hist));
  json_object_set_new(j, "elapsed_s", json_real(elapsed));
  json_object_set_new(j, "requests_per_s", json_real((double)t->answered / el));
  json_object_set_new(j, "samples_per_s", json_real((double)t->samples / el));
  json_object_set_new(j, "histograms_per_s", json_real((double)t->hist / el));
  json_object_set_new(j, "generator_cpu_s", json_real(cpu));
  json_object_set_new(j, "by_code", by);
  json_object_set_new(j, "metrics", metrics_json(t->m_entries, t->m_samples, t->m_hist));
  if (err != NULL && *err) json_object_set_new(j, "error", json_string(err));
  print_json(j);
  json_decref(j);
  return (t->errors || non2xx || (err != NULL && *err) || t->answered == 0) ? 1 : 0;
}

/*------------------------------------------------------------------------------------------
 * --dump
 *----------------------------------------------------------------------------------------*/

static int write_file(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (f == NULL) return -1;
  size_t w = fwrite(data, 1, len, f);
  int rc = fclose(f);
  return w == len && rc == 0 ? 0 : -1;
}

static int dump(gen_t *g, uint32_t slow) {
  const opts_t *o = g->o;
  uint64_t count = o->requests ? o->requests : g->nreq;
  if (mkdir(o->dump_dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "rwgen: error: cannot create %s: %s\n", o->dump_dir, strerror(errno));
    return 1;
  }
  int64_t *last = malloc(g->nreq * sizeof(*last));
  if (last == NULL) return 1;
  int64_t start = (o->start_ms ? o->start_ms : wall_ms()) & ~(int64_t)127;
  for (uint32_t r = 0; r < g->nreq; r++) last[r] = start - 1;
  tally_t t;
  memset(&t, 0, sizeof(t));
  char path[4096];
  int rc = 0;
  for (uint64_t k = 0; k < count && rc == 0; k++) {
    uint32_t r = (uint32_t)(k % g->nreq), v = (uint32_t)((k / g->nreq) % o->passes);
    slot_t *sl = &g->slots[v * g->nreq + r];
    /* Deterministic time: a dump must not depend on when it was made (given --start-time). */
    int64_t base = next_base(last[r], g->rounds, start);
    last[r] = base + (int64_t)g->rounds - 1;
    if (slot_set_time(sl, base) != 0 || verify_slot(sl, base) != 0) {
      fprintf(stderr, "rwgen: internal error: patched request %" PRIu64 " does not decode to "
              "the expected bytes\n", k);
      rc = 1;
      break;
    }
    snprintf(path, sizeof(path), "%s/req-%06" PRIu64 ".bin", o->dump_dir, k);
    if (write_file(path, sl->cbuf, sl->clen) != 0) {
      fprintf(stderr, "rwgen: error: cannot write %s: %s\n", path, strerror(errno));
      rc = 1;
      break;
    }
    tally_sent(&t, sl);
    tally_answer(&t, sl, 204);
  }
  free(last);
  if (rc != 0) return rc;
  json_t *m = json_object();
  json_object_set_new(m, "protocol", json_integer(o->protocol));
  json_object_set_new(m, "content_type",
                      json_string(o->protocol == 1
                                      ? "application/x-protobuf"
                                      : "application/x-protobuf;proto=io.prometheus.write.v2.Request"));
  json_object_set_new(m, "count", json_integer((json_int_t)count));
  json_object_set_new(m, "series", json_integer((json_int_t)t.entries));
  json_object_set_new(m, "samples", json_integer((json_int_t)t.samples));
  json_object_set_new(m, "histograms", json_integer((json_int_t)t.hist));
  json_object_set_new(m, "bytes", json_integer((json_int_t)t.bytes));
  json_object_set_new(m, "distinct_series", json_integer(o->series));
  json_object_set_new(m, "seed", json_integer((json_int_t)o->seed));
  json_object_set_new(m, "metrics", metrics_json(t.m_entries, t.m_samples, t.m_hist));
  char *s = json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS);
  snprintf(path, sizeof(path), "%s/meta.json", o->dump_dir);
  if (s == NULL || write_file(path, s, strlen(s)) != 0) {
    fprintf(stderr, "rwgen: error: cannot write %s\n", path);
    rc = 1;
  }
  free(s);
  if (rc == 0) {
    if (!o->json_only)
      printf("rwgen: wrote %" PRIu64 " requests (%" PRIu64 " samples, %" PRIu64
             " histograms, %.1f KiB) to %s; %u distinct requests, %u re-compressed per send\n",
             count, t.samples, t.hist, (double)t.bytes / 1024.0, o->dump_dir, g->nslots, slow);
    json_object_del(m, "content_type");
    print_json(m);
  }
  json_decref(m);
  return rc;
}

/*------------------------------------------------------------------------------------------
 * main
 *----------------------------------------------------------------------------------------*/

int main(int argc, char **argv) {
  opts_t o;
  int prc = parse_args(argc, argv, &o);
  if (prc == 1) {
    usage(stdout);
    return 0;
  }
  if (prc != 0) return 2;
  if (o.quiet && freopen("/dev/null", "w", stdout) == NULL) {
    fprintf(stderr, "rwgen: error: cannot silence stdout: %s\n", strerror(errno));
    return 1;
  }

  gen_t g;
  memset(&g, 0, sizeof(g));
  g.o = &o;
  g.t0 = TS_MIN + 128 * 1000; /* any aligned 6-byte value: every send rewrites it */
  target_t tgt;
  char err[256] = "";
  if (o.dump_dir == NULL && parse_url(o.url, &tgt, err, sizeof(err)) != 0) {
    fprintf(stderr, "rwgen: error: %s\n", err);
    return 2;
  }
  if (build_slots(&g, o.dump_dir != NULL) != 0) {
    free_slots(&g);
    return 1;
  }
  uint32_t slow = 0;
  for (uint32_t i = 0; i < g.nslots; i++) slow += (uint32_t)g.slots[i].slow;
  if (o.dump_dir != NULL) {
    int rc = dump(&g, slow);
    free_slots(&g);
    return rc;
  }
  if (o.connections > g.nreq) {
    fprintf(stderr, "rwgen: note: only %u distinct requests per pass; using %u connection(s)\n",
            g.nreq, g.nreq);
    o.connections = g.nreq;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  worker_t *w = calloc(o.connections, sizeof(*w));
  int64_t *last = malloc(g.nreq * sizeof(*last));
  gate_t gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
  if (w == NULL || last == NULL) {
    fprintf(stderr, "rwgen: error: out of memory\n");
    free(w);
    free(last);
    free_slots(&g);
    return 1;
  }
  int64_t offset = o.start_ms ? o.start_ms - wall_ms() : 0;
  for (uint32_t r = 0; r < g.nreq; r++) last[r] = TS_MIN;
  uint32_t started = 0;
  for (uint32_t c = 0; c < o.connections; c++) {
    w[c] = (worker_t){.g = &g, .tgt = &tgt, .id = c, .gate = &gate,
                      .clock_offset = offset, .last_base = last};
    if (pthread_create(&w[c].thread, NULL, worker_main, &w[c]) != 0) {
      snprintf(err, sizeof(err), "cannot start connection thread %u", c);
      atomic_store(&g_stop, 1); /* the ones started leave as soon as the gate opens */
      atomic_store(&g_failed, 1);
      break;
    }
    started++;
  }
  pthread_mutex_lock(&gate.mu);
  while (gate.ready < started) pthread_cond_wait(&gate.cv, &gate.mu);
  double cpu0 = cpu_seconds();
  uint64_t t0 = mono_ns();
  for (uint32_t c = 0; c < started; c++) {
    w[c].deadline_ns = o.duration_ms ? t0 + o.duration_ms * 1000000u : 0;
    w[c].bad_ns = o.bad_after_ms ? t0 + o.bad_after_ms * 1000000u : 0;
    w[c].pace_ns = t0;
    w[c].rate = o.rate / (double)o.connections;
  }
  gate.open = 1;
  pthread_cond_broadcast(&gate.cv);
  pthread_mutex_unlock(&gate.mu);
  tally_t total;
  memset(&total, 0, sizeof(total));
  uint64_t t_end = t0;
  for (uint32_t c = 0; c < started; c++) {
    pthread_join(w[c].thread, NULL);
    tally_merge(&total, &w[c].t);
    if (w[c].end_ns > t_end) t_end = w[c].end_ns;
    if (w[c].err[0] && !err[0]) snprintf(err, sizeof(err), "connection %u: %s", c, w[c].err);
  }
  double cpu = cpu_seconds() - cpu0;
  if (err[0]) fprintf(stderr, "rwgen: error: %s\n", err);
  int rc = report(&g, &total, (double)(t_end - t0) / 1e9, cpu, slow, err);
  free(w);
  free(last);
  free_slots(&g);
  return rc;
}
