/* cli.h: command-line parsing in Prometheus' style — `ripcord serve --web.listen-address=...`,
 * `--flag value` or `--flag=value`, `--version`, `--help` — into one options struct with the
 * embedded defaults. Also the value parsers every config surface shares: durations (`500ms`,
 * `1m30s`, `2h`, `1d`) and sizes (`32MiB`, `512KiB`, `1GB`, plain bytes).
 * Pure: no I/O beyond what the caller prints from the returned error.
 */
#ifndef RC_CLI_H
#define RC_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "ingest.h"
#include "log.h"
#include "rc.h"
#include "store.h"

typedef enum { RC_CMD_NONE = 0, RC_CMD_SERVE, RC_CMD_VERSION, RC_CMD_HELP } rc_cmd_t;

#define RC_CLI_MAX_RULE_FILES 64

typedef struct rc_options {
  rc_cmd_t cmd;
  const char *config_file;    /* NULL: embedded defaults */
  const char *listen_address;
  int web_insecure;             /* listen beyond loopback without identities */
  const char *storage_path;
  rc_log_level_t log_level;
  rc_http_config_t http;
  rc_ingest_config_t ingest;
  rc_store_cfg_t store;
  /* Rules: files given with --rules.file (repeatable), besides the config's rule_files. */
  const char *rule_files[RC_CLI_MAX_RULE_FILES];
  uint32_t n_rule_files;
  uint64_t rules_interval_ms;   /* the evaluator's timer */
  const char *environment_label;
  int compat;                   /* rc_compat_t: prometheus-3 (default) or prometheus-2 */
  uint64_t rollback_cooldown_ms; /* no second automatic rollback of a target within this */
  uint64_t rollback_window_ms;   /* deploys older than this need approval to roll back */
} rc_options_t;

/* Fills o with the defaults, then applies argv. Returns 0, or RC_EINVAL with a one-line
 * message in err (the caller prints it and exits 2). argv strings are borrowed. */
int rc_cli_parse(int argc, char **argv, rc_options_t *o, rc_err_t *err);
void rc_cli_usage(FILE *f);

/* "1h30m" -> ms. Returns 0 or RC_EINVAL. Units: ms s m h d w y, in decreasing order. */
int rc_parse_duration_ms(const char *s, uint64_t *out);
/* RFC 3339 with a zone (2026-11-27T10:00:00Z, ...T10:00:00.5+01:00; fractions keep ms) ->
 * ms since the epoch. A time without a zone, or a date that does not exist, is refused.
 * Returns 0 or -1. */
int rc_parse_rfc3339(const char *s, int64_t *out_ms);
/* "32MiB" -> bytes. Units: B KB MB GB (10^3) KiB MiB GiB (2^10); none = bytes. */
int rc_parse_size(const char *s, uint64_t *out);

#endif
