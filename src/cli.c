/* cli.c: argv -> rc_options_t, and the duration/size parsers; see cli.h.
 * The flag table is the single place a flag is declared: name, kind, where it lands, help. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*------------------------------------------------------------------------------------------
 * Value parsers
 *----------------------------------------------------------------------------------------*/

int rc_parse_duration_ms(const char *s, uint64_t *out) {
  static const struct { const char *unit; uint64_t ms; } units[] = {
      {"y", 365ull * 86400000}, {"w", 7ull * 86400000}, {"d", 86400000}, {"h", 3600000},
      {"m", 60000}, {"s", 1000}, {"ms", 1},
  };
  if (s == NULL || *s == '\0') return RC_EINVAL;
  if (strcmp(s, "0") == 0) {
    *out = 0;
    return 0;
  }
  uint64_t total = 0;
  int last = -1;
  const char *p = s;
  while (*p) {
    if (*p < '0' || *p > '9') return RC_EINVAL;
    uint64_t v = 0;
    while (*p >= '0' && *p <= '9') {
      if (v > (UINT64_MAX - 9) / 10) return RC_EINVAL;
      v = v * 10 + (uint64_t)(*p++ - '0');
    }
    int u = -1;
    /* "ms" must be tried before "m". */
    if (p[0] == 'm' && p[1] == 's') u = 6;
    else
      for (int i = 0; i < 6; i++)
        if (*p == units[i].unit[0]) u = i;
    if (u < 0 || u <= last) return RC_EINVAL; /* unknown unit, or units out of order */
    p += strlen(units[u].unit);
    if (v > UINT64_MAX / units[u].ms || total + v * units[u].ms < total) return RC_EINVAL;
    total += v * units[u].ms;
    last = u;
  }
  *out = total;
  return 0;
}

int rc_parse_size(const char *s, uint64_t *out) {
  static const struct { const char *unit; uint64_t mul; } units[] = {
      {"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000000}, {"GB", 1000000000},
      {"KiB", 1024}, {"MiB", 1048576}, {"GiB", 1073741824},
  };
  if (s == NULL || *s < '0' || *s > '9') return RC_EINVAL;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0) return RC_EINVAL;
  for (size_t i = 0; i < RC_ARRAY_SIZE(units); i++) {
    if (strcmp(end, units[i].unit) == 0) {
      if (v > UINT64_MAX / units[i].mul) return RC_EINVAL;
      *out = v * units[i].mul;
      return 0;
    }
  }
  return RC_EINVAL;
}

/*------------------------------------------------------------------------------------------
 * The flag table
 *----------------------------------------------------------------------------------------*/

typedef enum { F_STR, F_DUR, F_SIZE, F_U32, F_LEVEL, F_STATUS, F_NAMES, F_DECODER, F_RULES,
               F_COMPAT, F_BOOL } kind_t;

typedef struct flag {
  const char *name;
  kind_t kind;
  size_t off;        /* offset in rc_options_t */
  uint64_t min, max; /* for numbers, durations and sizes */
  const char *help;
} flag_t;

#define OFF(f) offsetof(rc_options_t, f)
static const flag_t flags[] = {
    {"config.file", F_STR, OFF(config_file), 0, 0, "ripcord configuration file (YAML). Default: embedded defaults."},
    {"web.listen-address", F_STR, OFF(listen_address), 0, 0, "Address to listen on for remote write and the API."},
    {"storage.path", F_STR, OFF(storage_path), 0, 0, "Directory for ripcord's state (SQLite)."},
    {"log.level", F_LEVEL, OFF(log_level), 0, 0, "Only log messages with this level or above: debug, info, warn, error."},
    {"web.insecure", F_BOOL, OFF(web_insecure), 0, 0, "Allow listening on a non-loopback address with no identities configured (every request allowed). Default false."},
    {"web.max-connections", F_U32, OFF(http.max_connections), 1, 1000000, "Maximum simultaneous connections."},
    {"web.max-body-size", F_SIZE, OFF(http.max_body_bytes), 1024, 1ull << 32, "Largest request body accepted, as sent (compressed)."},
    {"web.max-header-size", F_SIZE, OFF(http.max_header_bytes), 256, 64ull << 20, "Largest request line plus headers."},
    {"web.max-headers", F_U32, OFF(http.max_headers), 4, 100000, "Most headers in one request."},
    {"web.read-header-timeout", F_DUR, OFF(http.header_timeout_ms), 1, 86400000, "Time allowed from a request's first byte to its last header."},
    {"web.read-timeout", F_DUR, OFF(http.body_timeout_ms), 1, 86400000, "Time allowed to receive a request body."},
    {"web.idle-timeout", F_DUR, OFF(http.idle_timeout_ms), 1, 86400000, "Keep-alive connections idle this long are closed."},
    {"web.shutdown-timeout", F_DUR, OFF(http.shutdown_timeout_ms), 1, 86400000, "On SIGTERM, how long requests in flight may take."},
    {"storage.max-series", F_U32, OFF(store.max_series), 1, 1u << 28, "Most series the store keeps for rules; new ones past it are refused and counted."},
    {"storage.max-memory", F_SIZE, OFF(store.max_memory), 0, 1ull << 48, "Most memory the series store may hold (accounted per block: series, windows, table, decision cache), like 512MiB or 2GiB; 0: unbounded. Near it new series and new chunks are refused and counted; series held keep their head chunks."},
    {"storage.retention", F_DUR, OFF(store.window.retention_ms), 1000, 7ull * 86400000, "How far back rule windows may reach."},
    {"storage.max-ahead", F_DUR, OFF(store.max_ahead_ms), 0, 7ull * 86400000, "Samples further ahead of the wall clock are refused (0: no check)."},
    {"storage.out-of-order-tolerance", F_DUR, OFF(store.window.ooo_tolerance_ms), 0, 3600000, "How late a sample may arrive and still land in its place."},
    {"storage.decision-cache-size", F_U32, OFF(store.cache_entries), 1, 1u << 28, "Series whose keep-or-drop decision is remembered (selected and dropped alike)."},
    {"ingest.queue-capacity", F_U32, OFF(ingest.queue_capacity), 1, 1u << 20, "Requests that may be in flight (decoding or being stored) before writes are answered 503."},
    {"ingest.workers", F_U32, OFF(ingest.workers), 0, 64, "Ingest worker threads, each decoding requests and owning one shard of the store (0: one per core)."},
    {"ingest.max-decoded-size", F_SIZE, OFF(ingest.limits.max_decoded_bytes), 1024, 4ull << 30, "Largest uncompressed remote-write body."},
    {"ingest.max-decoded-memory", F_SIZE, OFF(ingest.limits.max_arena_bytes), 4096, 16ull << 30, "Most memory one decoded request may take."},
    {"ingest.max-labels", F_U32, OFF(ingest.limits.labels.max_labels), 1, 100000, "Most labels in one series."},
    {"ingest.overload-status", F_STATUS, OFF(ingest.overload_status), 0, 0, "Status when the queue is full: 503 (Prometheus retries) or 429 (dropped unless retry_on_http_429)."},
    {"ingest.decoder", F_DECODER, OFF(ingest.limits.reference_decoder), 0, 0, "Protobuf decoder: wire (zero-copy, default) or protobuf-c (the slower reference)."},
    {"rules.file", F_RULES, OFF(rule_files), 0, 0, "A rollback rule file to load (repeatable), besides the config's rule_files."},
    {"rules.evaluation-interval", F_DUR, OFF(rules_interval_ms), 10, 3600000, "How often every trigger is evaluated even when no data arrives (windows slide, no-data is noticed)."},
    {"rules.environment-label", F_STR, OFF(environment_label), 0, 0, "The series label that carries a rule's environment in the built-in metrics (overrides the config's rules.environment_label; default env)."},
    {"rollback.cooldown", F_DUR, OFF(rollback_cooldown_ms), 0, 7ull * 86400000, "No second automatic rollback of a target within this (0: none)."},
    {"rollback.window", F_DUR, OFF(rollback_window_ms), 1000, 365ull * 86400000, "A deploy older than this is not rolled back automatically: the event needs approval."},
    {"query.compat", F_COMPAT, OFF(compat), 0, 0, "PromQL semantics: prometheus-3 (default) or prometheus-2 (2.4x: closed windows, older extrapolation and sums)."},
    {"ingest.name-validation", F_NAMES, OFF(ingest.limits.labels.legacy_names), 0, 0, "Metric and label names: utf8 (Prometheus 3) or legacy (Prometheus 2 charset)."},
};

static void defaults(rc_options_t *o) {
  memset(o, 0, sizeof(*o));
  o->listen_address = "127.0.0.1:9095";
  o->storage_path = "./data";
  o->log_level = RC_LOG_INFO;
  o->http = RC_HTTP_CONFIG_DEFAULT;
  o->rules_interval_ms = 250;
  o->rollback_cooldown_ms = 600000;
  o->rollback_window_ms = 86400000;
  o->environment_label = NULL; /* the config's rules.environment_label, else "env" */
  o->store = (rc_store_cfg_t){
      .max_series = 100000,
      /* 1 GiB: the defaults above (100,000 series, 1 h retention) at a 15 s scrape interval
       * take about 320 MiB, counters at 1 s about 800 MiB (README, --storage.max-memory), so
       * it does not bind unless something is off — a week's retention, a label explosion —
       * and then it keeps the daemon from taking the host's memory. 0 turns it off. */
      .max_memory = (size_t)1 << 30,
      .max_ahead_ms = 600000,
      .cache_entries = 1u << 20,
      .window = RC_WINDOW_CFG_DEFAULT,
  };
  o->ingest = (rc_ingest_config_t){
      .queue_capacity = 256,
      .overload_status = 503,
      .retry_after_s = 1,
      .tally_max_names = 10000,
      .limits = {.max_decoded_bytes = 128u << 20,
                 .max_arena_bytes = 1024u << 20,
                 .labels = {.max_labels = 128, .max_label_bytes = 64 * 1024, .legacy_names = 0}},
  };
}

void rc_cli_usage(FILE *f) {
  fprintf(f,
          "usage: ripcord [<flags>] <command> [<flags>]\n\n"
          "ripcord watches Prometheus remote-write streams and rolls back bad deploys.\n\n"
          "Commands:\n"
          "  serve      run the daemon\n"
          "  check      check rule files (ripcord check FILE...), or scan any files for\n"
          "             literal secrets (ripcord check --secrets-only FILE...)\n"
          "  previous-version  the version to roll back to (--service S --environment E [--url U])\n"
          "  rollback          request a rollback to the previous version, through the approval\n"
          "                    gate (--service S --environment E --reason R [--url U])\n"
          "  approve, reject   vote on a rollback request (ID [--comment C] [--url U])\n"
          "  services          every service's current and previous version ([--url U])\n"
          "  audit             verify the audit trail's hash chain, or export it (audit verify|export)\n"
          "  version    print the version\n\n"
          "Flags:\n"
          "  -h, --help       show this help\n"
          "      --version    print the version\n");
  for (size_t i = 0; i < RC_ARRAY_SIZE(flags); i++)
    fprintf(f, "      --%-28s %s\n", flags[i].name, flags[i].help);
}

static int set_flag(const flag_t *fl, const char *v, rc_options_t *o, rc_err_t *err) {
  void *dst = (char *)o + fl->off;
  uint64_t n;
  switch (fl->kind) {
    case F_STR:
      if (*v == '\0') return rc_err_set(err, RC_EINVAL, "--%s: empty value", fl->name);
      *(const char **)dst = v;
      return 0;
    case F_LEVEL:
      if (rc_log_parse_level(v, dst) != 0)
        return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" is not one of debug, info, warn, error",
                          fl->name, v);
      return 0;
    case F_STATUS:
      if (strcmp(v, "503") == 0) *(int *)dst = 503;
      else if (strcmp(v, "429") == 0) *(int *)dst = 429;
      else return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" must be 503 or 429", fl->name, v);
      return 0;
    case F_NAMES:
      if (strcmp(v, "utf8") == 0) *(int *)dst = 0;
      else if (strcmp(v, "legacy") == 0) *(int *)dst = 1;
      else return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" must be utf8 or legacy", fl->name, v);
      return 0;
    case F_RULES:
      if (*v == '\0') return rc_err_set(err, RC_EINVAL, "--%s: empty value", fl->name);
      if (o->n_rule_files >= RC_CLI_MAX_RULE_FILES)
        return rc_err_set(err, RC_EINVAL, "--%s: at most %d files (use rule_files globs)",
                          fl->name, RC_CLI_MAX_RULE_FILES);
      o->rule_files[o->n_rule_files++] = v;
      return 0;
    case F_BOOL:
      if (strcmp(v, "true") == 0) *(int *)dst = 1;
      else if (strcmp(v, "false") == 0) *(int *)dst = 0;
      else return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" must be true or false", fl->name, v);
      return 0;
    case F_COMPAT:
      if (strcmp(v, "prometheus-3") == 0) *(int *)dst = 0;
      else if (strcmp(v, "prometheus-2") == 0) *(int *)dst = 1;
      else return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" must be prometheus-3 or prometheus-2",
                             fl->name, v);
      return 0;
    case F_DECODER:
      if (strcmp(v, "wire") == 0) *(int *)dst = 0;
      else if (strcmp(v, "protobuf-c") == 0) *(int *)dst = 1;
      else return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" must be wire or protobuf-c", fl->name, v);
      return 0;
    case F_DUR:
      if (rc_parse_duration_ms(v, &n) != 0)
        return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" is not a duration (like 10s, 1m30s)",
                          fl->name, v);
      break;
    case F_SIZE:
      if (rc_parse_size(v, &n) != 0)
        return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" is not a size (like 32MiB, 4096)",
                          fl->name, v);
      break;
    case F_U32: {
      char *end;
      errno = 0;
      unsigned long long x = strtoull(v, &end, 10);
      if (*v < '0' || *v > '9' || *end != '\0' || errno != 0)
        return rc_err_set(err, RC_EINVAL, "--%s: \"%s\" is not a whole number", fl->name, v);
      n = x;
      break;
    }
    default:
      return RC_EINVAL;
  }
  if (n < fl->min || n > fl->max)
    return rc_err_set(err, RC_EINVAL, "--%s: %s is out of range (%" PRIu64 "..%" PRIu64 ")",
                      fl->name, v, fl->min, fl->max);
  if (fl->kind == F_U32) *(uint32_t *)dst = (uint32_t)n;
  else if (fl->kind == F_DUR) *(uint64_t *)dst = n;
  else *(size_t *)dst = (size_t)n;
  return 0;
}

int rc_cli_parse(int argc, char **argv, rc_options_t *o, rc_err_t *err) {
  defaults(o);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0) {
      o->cmd = RC_CMD_HELP;
      return 0;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "version") == 0) {
      o->cmd = RC_CMD_VERSION;
      return 0;
    }
    if (a[0] != '-') {
      if (o->cmd != RC_CMD_NONE)
        return rc_err_set(err, RC_EINVAL, "unexpected argument \"%s\"", a);
      if (strcmp(a, "serve") == 0) o->cmd = RC_CMD_SERVE;
      else return rc_err_set(err, RC_EINVAL, "unknown command \"%s\" (try --help)", a);
      continue;
    }
    if (a[1] != '-' || a[2] == '\0')
      return rc_err_set(err, RC_EINVAL, "unknown flag \"%s\" (try --help)", a);
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nl = eq ? (size_t)(eq - name) : strlen(name);
    const flag_t *fl = NULL;
    for (size_t k = 0; k < RC_ARRAY_SIZE(flags); k++)
      if (strlen(flags[k].name) == nl && strncmp(flags[k].name, name, nl) == 0) fl = &flags[k];
    if (fl == NULL)
      return rc_err_set(err, RC_EINVAL, "unknown flag \"--%.*s\" (try --help)", (int)nl, name);
    const char *v = eq ? eq + 1 : NULL;
    if (v == NULL && fl->kind == F_BOOL) v = "true"; /* --web.insecure alone */
    if (v == NULL) {
      if (i + 1 >= argc) return rc_err_set(err, RC_EINVAL, "--%s needs a value", fl->name);
      v = argv[++i];
    }
    int rc = set_flag(fl, v, o, err);
    if (rc != 0) return rc;
  }
  if (o->cmd == RC_CMD_NONE)
    return rc_err_set(err, RC_EINVAL, "no command given: try \"ripcord serve\" or --help");
  struct sockaddr_storage ss;
  rc_err_t aerr;
  if (rc_http_parse_addr(o->listen_address, &ss, &aerr) != 0)
    return rc_err_set(err, RC_EINVAL, "--web.listen-address: %s", aerr.msg);
  if (o->ingest.limits.max_decoded_bytes < 16)
    return rc_err_set(err, RC_EINVAL, "--ingest.max-decoded-size too small");
  return 0;
}

static int digits_at(const char *s, int n, int *v) {
  *v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    *v = *v * 10 + (s[i] - '0');
  }
  return 0;
}

/* Moved from audit.c (deploys.c had a second one): see cli.h. */
int rc_parse_rfc3339(const char *s, int64_t *out) {
  int Y, M, D, h, m, sec, ms = 0, off = 0;
  if (strlen(s) < 20 || digits_at(s, 4, &Y) || s[4] != '-' || digits_at(s + 5, 2, &M) ||
      s[7] != '-' || digits_at(s + 8, 2, &D) || (s[10] != 'T' && s[10] != 't') ||
      digits_at(s + 11, 2, &h) || s[13] != ':' || digits_at(s + 14, 2, &m) || s[16] != ':' ||
      digits_at(s + 17, 2, &sec))
    return -1;
  const char *p = s + 19;
  if (*p == '.') {
    int k = 0;
    for (p++; *p >= '0' && *p <= '9'; p++, k++)
      if (k < 3) ms = ms * 10 + (*p - '0');
    if (k == 0) return -1;
    for (; k < 3; k++) ms *= 10;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
    int oh, om;
    if (digits_at(p + 1, 2, &oh) || digits_at(p + 4, 2, &om) || oh > 23 || om > 59) return -1;
    off = (oh * 60 + om) * (*p == '-' ? -1 : 1);
    p += 6;
  } else {
    return -1;
  }
  if (*p != 0 || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return -1;
  struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D, .tm_hour = h,
                  .tm_min = m, .tm_sec = sec};
  time_t t = timegm(&tm);
  /* timegm normalises 31 November to 1 December: refuse a date that moved. */
  if (t == (time_t)-1 || tm.tm_mday != D || tm.tm_mon != M - 1) return -1;
  *out = ((int64_t)t - (int64_t)off * 60) * 1000 + ms;
  return 0;
}
