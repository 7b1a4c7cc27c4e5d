/* check.c: the `ripcord check FILE...` subcommand (see check.h). It shares the loader with the
 * daemon (rules.c), so a file that passes here is a file the daemon loads, and the output is
 * compiler-style so that editors and CI annotate the offending line.
 *
 * Everything goes to stdout, diagnostics first and then the file's summary, so that piping
 * the output keeps each file's lines together; the exit status carries the verdict. */
#include "check.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "rules.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: ripcord check [--config.file=F] FILE...\n"
          "Checks rollback rule files: YAML syntax, keys, thresholds, durations and PromQL.\n"
          "Prints file:line:col: error|warning: message, and per file a summary line.\n"
          "--config.file: take the server config's rules: settings (labels, templates,\n"
          "scrape interval) as `ripcord serve` would.\n"
          "Exit status: 0 no errors (warnings allowed), 1 errors, 2 usage.\n");
}

/* --config.file=F or --config.file F: returns the value and how many argv slots it took. */
static const char *config_flag(int argc, char **argv, int i, int *took) {
  const char *a = argv[i];
  *took = 0;
  if (strncmp(a, "--config.file", 13) != 0) return NULL;
  if (a[13] == '=') {
    *took = 1;
    return a + 14;
  }
  if (a[13] == '\0' && i + 1 < argc) {
    *took = 2;
    return argv[i + 1];
  }
  return NULL;
}

int rc_check_main(int argc, char **argv) {
  int first = 1, files = 0, failed = 0;
  const char *config = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int took;
    const char *cf = config_flag(argc, argv, i, &took);
    if (cf != NULL) {
      config = cf;
      i += took - 1;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      first = i + 1;
      files += argc - i - 1;
      break;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "ripcord check: unknown option %s\n", a);
      usage(stderr);
      return 2;
    }
    files++;
  }
  if (files == 0) {
    usage(stderr);
    return 2;
  }
  rc_config_t cfg = {0};
  rc_rules_cfg_t rcfg = {0};
  int have_cfg = 0;
  if (config != NULL) {
    rc_err_t err = {0};
    if (rc_config_load(config, &cfg, &err) != 0 || rc_config_rules(&cfg, &rcfg, &err) != 0) {
      printf("%s\n", err.msg);
      rc_config_free(&cfg);
      return 1;
    }
    have_cfg = 1;
  }
  int after_dashes = 0;
  for (int i = 1; i < argc; i++) {
    const char *path = argv[i];
    int took;
    if (!after_dashes && config_flag(argc, argv, i, &took) != NULL) {
      i += took - 1;
      continue;
    }
    if (!after_dashes && strcmp(path, "--") == 0) {
      after_dashes = 1;
      continue;
    }
    if (!after_dashes && i < first && path[0] == '-' && path[1] != '\0') continue;
    rc_ruleset_t set = {0};
    rc_diags_t d = {0};
    int rc = rc_rules_load_file(path, have_cfg ? &rcfg : NULL, &set, &d);
    rc_diags_print(&d, stdout);
    if (rc == RC_ENOMEM) {
      printf("%s: out of memory\n", path);
      failed = 1;
    } else if (rc != 0 || d.errors > 0) {
      printf("%s: %u error%s", path, d.errors, d.errors == 1 ? "" : "s");
      if (d.warnings) printf(", %u warning%s", d.warnings, d.warnings == 1 ? "" : "s");
      printf("\n");
      failed = 1;
    } else {
      uint32_t ntrig = 0;
      for (uint32_t r = 0; r < set.n; r++) ntrig += set.rules[r].ntriggers;
      printf("%s: %u rule%s, %u trigger%s", path, set.n, set.n == 1 ? "" : "s", ntrig,
             ntrig == 1 ? "" : "s");
      if (d.warnings) printf(", %u warning%s", d.warnings, d.warnings == 1 ? "" : "s");
      printf("\n");
    }
    rc_ruleset_free(&set);
    rc_diags_free(&d);
  }
  fflush(stdout);
  if (have_cfg) rc_config_free(&cfg);
  return failed ? 1 : 0;
}
