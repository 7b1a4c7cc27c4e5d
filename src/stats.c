/* stats.c: self-metrics registry and /metrics rendering; see stats.h. Metric names follow
 * Prometheus conventions: a ripcord_ prefix, _total for counters, base units (seconds, bytes),
 * and the standard process_* names so existing dashboards work unchanged. */
#include "stats.h"

#include "rc.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

rc_stats_t rc_stats;

static const int status_codes[] = {RC_STATUS_CODES};
static const double duration_buckets[RC_NDURATION] = {RC_DURATION_BUCKETS};
static const char *const handler_paths[] = {
#define RC_H_STR(n, s) s,
    RC_HANDLERS(RC_H_STR)
#undef RC_H_STR
};
static const char *const timeout_phases[RC_TIMEOUT__COUNT] = {"idle", "header", "body"};

_Static_assert(RC_ARRAY_SIZE(status_codes) < RC_NSTATUS, "status table too small");

const char *rc_handler_path(rc_handler_t h) {
  return (unsigned)h < RC_HANDLER__COUNT ? handler_paths[h] : "other";
}

void rc_stats_init(uint64_t start_time_ms) {
  memset(&rc_stats, 0, sizeof(rc_stats));
  rc_stats.start_time_ms = start_time_ms;
}

static int status_index(int status) {
  for (int i = 0; i < (int)RC_ARRAY_SIZE(status_codes); i++)
    if (status_codes[i] == status) return i;
  return RC_NSTATUS - 1;
}

void rc_stats_request(rc_handler_t h, int status, uint64_t duration_ns) {
  if ((unsigned)h >= RC_HANDLER__COUNT) h = RC_HANDLER_OTHER;
  rc_stat_add(&rc_stats.requests[h][status_index(status)], 1);
  double secs = (double)duration_ns / 1e9;
  for (int i = 0; i < RC_NDURATION; i++) {
    if (secs <= duration_buckets[i]) {
      rc_stat_add(&rc_stats.duration_bucket[h][i], 1);
      break;
    }
  }
  rc_stat_add(&rc_stats.duration_count[h], 1);
  rc_stat_add(&rc_stats.duration_sum_ns[h], duration_ns);
}

void rc_proc_read(rc_proc_t *p) {
  memset(p, 0, sizeof(*p));
  FILE *f = fopen("/proc/self/stat", "r");
  if (f != NULL) {
    char line[1024];
    if (fgets(line, sizeof(line), f) != NULL) {
      /* Fields after the ")" that closes comm: state(3) ... utime(14) stime(15) ...
       * vsize(23) rss(24), counted from 1 for the pid. */
      char *p2 = strrchr(line, ')');
      unsigned long long ut = 0, st = 0, vsize = 0, rss = 0;
      if (p2 != NULL &&
          /* The kernel's own format: sscanf is the reader it is documented with. */
          sscanf(p2 + 2,  // NOLINT(cert-err34-c)
                 "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                 "%*d %*u %llu %llu",
                 &ut, &st, &vsize, &rss) == 4) {
        long tck = sysconf(_SC_CLK_TCK);
        long page = sysconf(_SC_PAGESIZE);
        p->cpu_seconds = (double)(ut + st) / (double)(tck > 0 ? tck : 100);
        p->vsize_bytes = vsize;
        p->rss_bytes = rss * (uint64_t)(page > 0 ? page : 4096);
      }
    }
    fclose(f);
  }
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.') p->open_fds++;
    closedir(d);
    if (p->open_fds) p->open_fds--; /* the directory stream itself */
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) p->max_fds = (uint64_t)rl.rlim_cur;
}

static void help(rc_buf_t *o, const char *name, const char *type, const char *text) {
  rc_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static void counter(rc_buf_t *o, const char *name, const char *text, rc_counter_t *c) {
  help(o, name, "counter", text);
  rc_buf_printf(o, "%s %llu\n", name, (unsigned long long)rc_stat_get(c));
}

static void gauge(rc_buf_t *o, const char *name, const char *text, rc_counter_t *c) {
  help(o, name, "gauge", text);
  rc_buf_printf(o, "%s %llu\n", name, (unsigned long long)rc_stat_get(c));
}

#define ULL(x) ((unsigned long long)(x))

void rc_stats_render(rc_buf_t *o) {
  rc_stats_t *s = &rc_stats;
  help(o, "ripcord_build_info", "gauge", "Build information.");
  rc_buf_printf(o, "ripcord_build_info{version=\"%s\"} 1\n", RC_VERSION);

  help(o, "ripcord_http_requests_total", "counter", "HTTP requests answered, by handler and status code.");
  for (int h = 0; h < RC_HANDLER__COUNT; h++)
    for (int i = 0; i < RC_NSTATUS; i++) {
      uint64_t v = rc_stat_get(&s->requests[h][i]);
      if (v == 0 && !(h == RC_HANDLER_WRITE && (i == 1 || i == 2))) continue;
      if (i < (int)RC_ARRAY_SIZE(status_codes))
        rc_buf_printf(o, "ripcord_http_requests_total{handler=\"%s\",code=\"%d\"} %llu\n",
                      handler_paths[h], status_codes[i], ULL(v));
      else
        rc_buf_printf(o, "ripcord_http_requests_total{handler=\"%s\",code=\"other\"} %llu\n",
                      handler_paths[h], ULL(v));
    }

  help(o, "ripcord_http_request_duration_seconds", "histogram",
       "Time from a complete request to its response being queued, by handler.");
  for (int h = 0; h < RC_HANDLER__COUNT; h++) {
    uint64_t count = rc_stat_get(&s->duration_count[h]);
    if (count == 0 && h != RC_HANDLER_WRITE) continue;
    uint64_t cum = 0;
    for (int i = 0; i < RC_NDURATION; i++) {
      cum += rc_stat_get(&s->duration_bucket[h][i]);
      rc_buf_printf(o, "ripcord_http_request_duration_seconds_bucket{handler=\"%s\",le=\"%g\"} %llu\n",
                    handler_paths[h], duration_buckets[i], ULL(cum));
    }
    rc_buf_printf(o, "ripcord_http_request_duration_seconds_bucket{handler=\"%s\",le=\"+Inf\"} %llu\n",
                  handler_paths[h], ULL(count));
    rc_buf_printf(o, "ripcord_http_request_duration_seconds_sum{handler=\"%s\"} %.9f\n",
                  handler_paths[h], (double)rc_stat_get(&s->duration_sum_ns[h]) / 1e9);
    rc_buf_printf(o, "ripcord_http_request_duration_seconds_count{handler=\"%s\"} %llu\n",
                  handler_paths[h], ULL(count));
  }

  counter(o, "ripcord_http_connections_accepted_total", "TCP connections accepted.", &s->conn_accepted);
  counter(o, "ripcord_http_connections_rejected_total", "Connections closed at once because --web.max-connections was reached.", &s->conn_rejected);
  counter(o, "ripcord_http_connections_aborted_total", "Connections closed by the client in the middle of a request.", &s->conn_aborted);
  gauge(o, "ripcord_http_connections_open", "Connections open now.", &s->conn_open);
  help(o, "ripcord_http_connection_timeouts_total", "counter", "Connections closed for a timeout, by phase (idle keep-alive, headers, body).");
  for (int i = 0; i < RC_TIMEOUT__COUNT; i++)
    rc_buf_printf(o, "ripcord_http_connection_timeouts_total{phase=\"%s\"} %llu\n", timeout_phases[i],
                  ULL(rc_stat_get(&s->conn_timeouts[i])));
  counter(o, "ripcord_http_parse_errors_total", "Requests that were not valid HTTP/1.x.", &s->http_parse_errors);

  counter(o, "ripcord_write_body_bytes_total", "Remote-write body bytes received, as sent (compressed).", &s->body_bytes);
  counter(o, "ripcord_write_decoded_bytes_total", "Remote-write bytes after snappy decompression.", &s->decoded_bytes);
  counter(o, "ripcord_write_series_total", "TimeSeries entries accepted.", &s->series);
  counter(o, "ripcord_write_samples_total", "Float samples accepted.", &s->samples);
  counter(o, "ripcord_write_histograms_total", "Native histogram samples accepted.", &s->histograms);
  counter(o, "ripcord_write_exemplars_total", "Exemplars accepted.", &s->exemplars);
  counter(o, "ripcord_write_metadata_total", "Metadata entries received.", &s->metadata);
  counter(o, "ripcord_write_stale_markers_total", "Staleness markers among the accepted samples and histograms.", &s->stale_markers);
  help(o, "ripcord_write_decode_errors_total", "counter", "Requests refused whole, by reason.");
  for (int i = 1; i < RC_RWR__COUNT; i++)
    rc_buf_printf(o, "ripcord_write_decode_errors_total{reason=\"%s\"} %llu\n",
                  rc_rw_reason_name((rc_rw_reason_t)i), ULL(rc_stat_get(&s->decode_errors[i])));
  help(o, "ripcord_write_invalid_series_total", "counter", "Series dropped from otherwise accepted requests, by reason.");
  for (int i = 1; i < RC_RWS__COUNT; i++)
    rc_buf_printf(o, "ripcord_write_invalid_series_total{reason=\"%s\"} %llu\n",
                  rc_rw_series_problem_name(i), ULL(rc_stat_get(&s->invalid_series[i])));
  counter(o, "ripcord_write_dropped_samples_total", "Samples dropped with invalid series.", &s->dropped_samples);
  counter(o, "ripcord_write_dropped_histograms_total", "Histograms dropped with invalid series.", &s->dropped_histograms);
  counter(o, "ripcord_write_dropped_exemplars_total", "Exemplars dropped with invalid series.", &s->dropped_exemplars);

  gauge(o, "ripcord_ingest_queue_depth", "Requests in flight in the ingest workers: being decoded, or decoded and not yet applied to the store.", &s->queue_depth);
  gauge(o, "ripcord_ingest_queue_capacity", "Requests that may be in flight in the ingest workers before writes are answered 503.", &s->queue_capacity);
  counter(o, "ripcord_ingest_queue_full_total", "Requests answered 503 because the hand-off queue was full.", &s->queue_full);
  counter(o, "ripcord_ingest_consumed_batches_total", "Requests taken off the hand-off queue.", &s->consumed_batches);
  counter(o, "ripcord_ingest_consumed_series_total", "Series taken off the hand-off queue.", &s->consumed_series);
  counter(o, "ripcord_ingest_consumed_samples_total", "Samples taken off the hand-off queue.", &s->consumed_samples);
  counter(o, "ripcord_ingest_consumed_histograms_total", "Histograms taken off the hand-off queue.", &s->consumed_histograms);
  counter(o, "ripcord_ingest_tally_overflow_total", "Series counted under the overflow entry because the per-metric tally was full.", &s->tally_overflow);
  gauge(o, "ripcord_ready", "1 while ripcord accepts writes, 0 while starting or shutting down.", &s->ready);

  rc_proc_t p;
  rc_proc_read(&p);
  help(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  rc_buf_printf(o, "process_cpu_seconds_total %.2f\n", p.cpu_seconds);
  help(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  rc_buf_printf(o, "process_resident_memory_bytes %llu\n", ULL(p.rss_bytes));
  help(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  rc_buf_printf(o, "process_virtual_memory_bytes %llu\n", ULL(p.vsize_bytes));
  help(o, "process_open_fds", "gauge", "Number of open file descriptors.");
  rc_buf_printf(o, "process_open_fds %llu\n", ULL(p.open_fds));
  help(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
  rc_buf_printf(o, "process_max_fds %llu\n", ULL(p.max_fds));
  help(o, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  rc_buf_printf(o, "process_start_time_seconds %.3f\n", (double)s->start_time_ms / 1000.0);
}
