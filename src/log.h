/* log.h: logfmt lines on stderr (`ts=... level=... msg="..." key=value`), a level filter set
 * by --log.level, and rate-limited complaints for repeated bad input (collectd's c_complain
 * idea): the first occurrence is logged, later ones at most once per interval, with a count of
 * the ones suppressed in between.
 *
 * Thread-safe: each line is formatted into a stack buffer and written with one write(2).
 */
#ifndef RC_LOG_H
#define RC_LOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { RC_LOG_DEBUG = 0, RC_LOG_INFO, RC_LOG_WARN, RC_LOG_ERROR } rc_log_level_t;

/* Parses "debug"|"info"|"warn"|"error". Returns 0 or RC_EINVAL. */
int rc_log_parse_level(const char *s, rc_log_level_t *out);
void rc_log_set_level(rc_log_level_t lvl);
int rc_log_enabled(rc_log_level_t lvl);

/* msg is quoted and escaped by the logger. kvfmt is a printf format producing
 * `key=value ...` pairs (may be NULL); free-text values must be passed through
 * rc_log_quote() so that the line stays parseable. */
void rc_log(rc_log_level_t lvl, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes s as a logfmt value ("..." with \" \\ \n escaped, truncated to fit) into buf.
 * Returns buf, so it can be used inline as a %s argument. */
const char *rc_log_quote(char *buf, size_t size, const char *s, size_t len);

/* A rate-limited complaint. Zero-initialise; one per kind of problem. Not thread-safe:
 * each complaint belongs to one thread. */
typedef struct rc_complaint {
  uint64_t last_ms;     /* when it was last logged (monotonic ms), 0 = never */
  uint64_t suppressed;  /* occurrences since then that were not logged */
} rc_complaint_t;

/* Logs at most once per interval_ms; adds suppressed=N to the line when any were held back. */
void rc_log_complain(rc_complaint_t *c, uint64_t now_ms, uint64_t interval_ms,
                     rc_log_level_t lvl, const char *msg, const char *kvfmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
