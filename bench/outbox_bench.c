/* outbox_bench.c: rollback events per second the outbox records with fsync on — the real
 * path (actions.c: decide, then one SQLite transaction with the event, its outbox row and the
 * deploy's mark, synchronous=FULL) for N firings of N distinct targets, each with two deploys
 * recorded, handed over as the evaluator hands them and processed by the loop. No receiver
 * answers: the courier is not running, so this is the recording alone.
 *
 * usage: outbox_bench [--events N] [--dir D]   (D: a directory on the disk to measure; a fresh
 *                                               temporary one under /tmp by default)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "actions.h"
#include "db.h"
#include "deploys.h"
#include "log.h"
#include "rules.h"

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  int n = 500;
  char dir[256] = "";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--events")) n = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--dir")) snprintf(dir, sizeof(dir), "%s", argv[i + 1]);
  }
  if (n < 1) n = 1;
  rc_log_set_level(RC_LOG_ERROR); /* one line per event otherwise */
  int own_dir = !dir[0];
  if (!dir[0]) {
    snprintf(dir, sizeof(dir), "/tmp/rc-outbox-bench-XXXXXX");
    if (mkdtemp(dir) == NULL) return 1;
  }
  uv_loop_t *loop = uv_default_loop();
  rc_db_t *db = NULL;
  rc_err_t err = {0};
  rc_delivery_t *dl = NULL;
  rc_actions_t *ac = NULL;
  rc_receiver_cfg_t recv = {.name = "r", .type = "generic", .url = "http://127.0.0.1:9/",
                            .timeout_ms = 1000, .deadline_ms = 3600000};
  setenv("RC_OUTBOX_BENCH", "x", 1);
  recv.secret_env = "RC_OUTBOX_BENCH";
  rc_actions_cfg_t cfg = {.cooldown_ms = 0};
  if (rc_db_open(dir, &db, &err) != 0 || rc_delivery_new(loop, db, &recv, 1, &dl, &err) != 0 ||
      rc_actions_new(loop, db, dl, &cfg, &ac, &err) != 0) {
    fprintf(stderr, "outbox_bench: %s\n", err.msg);
    return 1;
  }
  rc_delivery_close(dl, NULL, NULL); /* record only: nothing is sent */
  for (int i = 0; i < n; i++)
    for (int v = 0; v < 2; v++) {
      char json[160];
      int64_t id;
      snprintf(json, sizeof(json),
               "{\"service\":\"s%d\",\"environment\":\"prod\",\"version\":\"v%d\"}", i, v);
      if (rc_deploys_record_json(db, json, strlen(json), 1000 + v, NULL, NULL, &id, &err) != 0) return 1;
    }
  rc_trigger_t trig = {.name = "t", .op = RC_CMP_GE, .threshold = 1, .window_ms = 60000};
  rc_rule_t *rules = calloc((size_t)n, sizeof(*rules));
  char (*names)[16] = calloc((size_t)n, 16);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    snprintf(names[i], 16, "s%d", i);
    rules[i] = (rc_rule_t){.service = names[i], .environment = "prod", .action = "previous_version"};
    rc_fire_event_t ev = {.rule = &rules[i], .trigger = &trig, .value = 2, .at_ms = 5000};
    rc_actions_fire(ac, &ev);
  }
  uv_run(loop, UV_RUN_NOWAIT); /* the async callback records them all */
  double dt = now_s() - t0;
  sqlite3_stmt *st;
  sqlite3_prepare_v2(rc_db_handle(db),
                     "SELECT COUNT(*) FROM rollback_events WHERE status = 'rollback'", -1, &st, NULL);
  sqlite3_step(st);
  int got = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  printf("outbox_bench: %d rollback events recorded (of %d) in %.3f s: %.0f events/s, %.2f ms "
         "each (one transaction with fsync per event)\n",
         got, n, dt, got / dt, dt * 1e3 / got);
  rc_actions_close(ac);
  uv_run(loop, UV_RUN_DEFAULT);
  rc_db_close(db);
  free(rules);
  free(names);
  if (own_dir) {
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "outbox_bench: could not remove %s\n", dir);
  }
  return got == n ? 0 : 1;
}
