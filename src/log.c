/* log.c: logfmt writer and rate-limited complaints; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "rc.h"

static _Atomic int g_level = RC_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

int rc_log_parse_level(const char *s, rc_log_level_t *out) {
  for (int i = 0; i < (int)RC_ARRAY_SIZE(level_names); i++) {
    if (strcmp(s, level_names[i]) == 0) {
      *out = (rc_log_level_t)i;
      return 0;
    }
  }
  return RC_EINVAL;
}

void rc_log_set_level(rc_log_level_t lvl) { atomic_store(&g_level, (int)lvl); }
int rc_log_enabled(rc_log_level_t lvl) { return (int)lvl >= atomic_load(&g_level); }

const char *rc_log_quote(char *buf, size_t size, const char *s, size_t len) {
  size_t o = 0;
  if (size < 3) {
    if (size) buf[0] = '\0';
    return buf;
  }
  buf[o++] = '"';
  for (size_t i = 0; i < len && o + 4 < size; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '"' || ch == '\\') {
      buf[o++] = '\\';
      buf[o++] = (char)ch;
    } else if (ch == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
    } else if (ch < 0x20 || ch == 0x7f) {
      buf[o++] = '?';
    } else {
      buf[o++] = (char)ch;
    }
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

static void log_vwrite(rc_log_level_t lvl, const char *msg, const char *suffix,
                       const char *kvfmt, va_list ap) {
  char line[2048], q[512];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof(line),
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s msg=%s",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                   tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[lvl],
                   rc_log_quote(q, sizeof(q), msg, strlen(msg)));
  if (n < 0) return;
  if ((size_t)n >= sizeof(line)) n = sizeof(line) - 1;
  if (kvfmt != NULL && kvfmt[0] && (size_t)n + 2 < sizeof(line)) {
    line[n++] = ' ';
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, kvfmt, ap);
    if (m > 0) n += m;
    if ((size_t)n >= sizeof(line)) n = sizeof(line) - 1;
  }
  if (suffix != NULL && (size_t)n + strlen(suffix) + 1 < sizeof(line)) {
    memcpy(line + n, suffix, strlen(suffix));
    n += (int)strlen(suffix);
  }
  if ((size_t)n >= sizeof(line) - 1) n = sizeof(line) - 2;
  line[n++] = '\n';
  /* One write(2) per line keeps lines whole when threads log at once. */
  ssize_t w = write(STDERR_FILENO, line, (size_t)n);
  (void)w;
}

void rc_log(rc_log_level_t lvl, const char *msg, const char *kvfmt, ...) {
  if (!rc_log_enabled(lvl)) return;
  va_list ap;
  va_start(ap, kvfmt);
  log_vwrite(lvl, msg, NULL, kvfmt, ap);
  va_end(ap);
}

void rc_log_complain(rc_complaint_t *c, uint64_t now_ms, uint64_t interval_ms,
                     rc_log_level_t lvl, const char *msg, const char *kvfmt, ...) {
  if (c->last_ms != 0 && now_ms - c->last_ms < interval_ms) {
    c->suppressed++;
    return;
  }
  char suffix[48] = "";
  if (c->suppressed) snprintf(suffix, sizeof(suffix), " suppressed=%llu",
                              (unsigned long long)c->suppressed);
  c->last_ms = now_ms ? now_ms : 1;
  c->suppressed = 0;
  if (!rc_log_enabled(lvl)) return;
  va_list ap;
  va_start(ap, kvfmt);
  log_vwrite(lvl, msg, suffix, kvfmt, ap);
  va_end(ap);
}
