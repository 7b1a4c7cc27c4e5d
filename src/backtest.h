/* backtest.h: `ripcord backtest` — "what would these rules have done last week?"
 *
 *   ripcord backtest --prometheus.url=URL --from=T --to=T [--step=15s] [--warmup=1h]
 *                    [--chunk=1h] [--config.file=F] [--deploys=FILE | --storage.path=DIR]
 *                    [--query.compat=...] [--bearer-token-file=F] [--timeout=60s]
 *                    [--json=FILE|-] [--quiet] RULEFILE...
 *
 * Pulls the raw samples of every series the rules' expressions select from a Prometheus
 * server's remote read endpoint (rread.h), a chunk of time at a time, from from - warmup to
 * to, and replays them in time order through the real engine on a simulated clock
 * (replay.h): every distinct sample timestamp is a batch, applied and then evaluated, as serve
 * evaluates on every batch; between batches the engine is also evaluated every --step, as
 * serve's timer does (windows slide, no-data is noticed). The warm-up is evaluated too, so
 * that a trigger pending or firing at from is so there, as it was live; transitions and
 * rollback events are reported from from on. Deploys come from ripcord's own registry
 * (--storage.path, opened read-only) or a JSON file (--deploys: an array of POST
 * /api/v1/deploys bodies), and are recorded at their start times as the replay passes them,
 * so deploy-aware windows, rollback targets, the rollback window and the cooldown apply as
 * they would have.
 *
 * Reports every trigger transition (pending, firing, resolved) and every rollback event,
 * as a table on stdout and/or JSON (--json). Progress on stderr when it is a terminal.
 * Times: RFC 3339, unix seconds, unix milliseconds (13 digits or more), now, now-<duration>.
 * Exit: 0 done, 1 Prometheus could not be read, 2 usage or file errors.
 */
#ifndef RC_BACKTEST_H
#define RC_BACKTEST_H

#include <stdint.h>

#include "rc.h"

/* "2026-11-27T09:00:00Z", "1764234000", "1764234000000", "now", "now-2h" -> ms. */
int rc_backtest_parse_time(const char *s, int64_t now_ms, int64_t *out, rc_err_t *err);

int rc_backtest_main(int argc, char **argv);

#endif
