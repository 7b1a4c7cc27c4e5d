/* check.c: the `ripcord check FILE...` subcommand (see check.h). It shares the loader with the
 * daemon (rules.c), so a file that passes here is a file the daemon loads, and the output is
 * compiler-style so that editors and CI annotate the offending line.
 *
 * Literal secrets (secrets.c) are refused by the loaders themselves; here the config file is
 * scanned first so that every finding in it is listed, not only the first one the config
 * parser stops at. `--secrets-only` is the repository scan: the detector alone over any text
 * files (scripts/secret-scan, scripts/pre-commit).
 *
 * Everything goes to stdout, diagnostics first and then the file's summary, so that piping
 * the output keeps each file's lines together; the exit status carries the verdict. */
#include "check.h"

#include <stdio.h>
#include <string.h>

#include "config.h"
#include "rules.h"
#include "secrets.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: ripcord check [--config.file=F] FILE...\n"
          "       ripcord check --secrets-only FILE...\n"
          "Checks rollback rule files: YAML syntax, keys, thresholds, durations and PromQL,\n"
          "and that neither they nor the config hold a literal secret.\n"
          "Prints file:line:col: error|warning: message, and per file a summary line.\n"
          "--config.file: take the server config's rules: settings (labels, templates,\n"
          "scrape interval) as `ripcord serve` would.\n"
          "--secrets-only: only look for literal secrets, in any text files (binary files\n"
          "are skipped); prints file:line:col: kind \"prefix\": hint per finding.\n"
          "Exit status: 0 no errors (warnings allowed), 1 errors or secrets, 2 usage.\n");
}

/* --config.file=F or --config.file F: returns the value and how many argv slots it took. */
static const char *config_flag(int argc, char **argv, int i, int *took) {
  const char *a = argv[i];
  *took = 0;
  if (a == NULL || strncmp(a, "--config.file", 13) != 0) return NULL;
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

/* Prints one file's findings; returns how many there were, or -1 if it could not be read. */
static int report_secrets(const rc_secrets_t *s, const char *path, int as_errors,
                          size_t *allowed) {
  rc_secret_findings_t f = {0};
  rc_err_t err = {0};
  int binary = 0;
  if (rc_secrets_scan_file(s, path, &f, &binary, &err) != 0) {
    printf("%s\n", err.msg);
    rc_secret_findings_free(&f);
    return -1;
  }
  for (size_t i = 0; i < f.n; i++) {
    const rc_secret_finding_t *x = &f.v[i];
    if (as_errors) {
      char msg[300];
      rc_secrets_message(x, msg, sizeof(msg));
      printf("%s:%d:%d: error: %s\n", path, x->line, x->col, msg);
    } else {
      printf("%s:%d:%d: %s \"%s\": %s%s\n", path, x->line, x->col,
             rc_secrets_kind_name(x->kind), x->prefix, rc_secrets_hint(x->kind),
             x->allow_no_reason ? " (the ripcord:allow-secret comment needs a reason)" : "");
    }
  }
  *allowed += f.allowed;
  int n = (int)f.n;
  rc_secret_findings_free(&f);
  return n;
}

/* --secrets-only FILE...: the detector alone. */
static int secrets_only(int argc, char **argv, int from) {
  rc_secrets_t *s;
  rc_err_t err = {0};
  if (rc_secrets_new(&s, &err) != 0) {
    fprintf(stderr, "ripcord check: %s\n", err.msg);
    return 2;
  }
  size_t findings = 0, allowed = 0, files = 0;
  int failed = 0, dashes = 0;
  for (int i = from; i < argc && argv[i] != NULL; i++) {
    if (!dashes && strcmp(argv[i], "--") == 0) {
      dashes = 1;
      continue;
    }
    if (!dashes && strcmp(argv[i], "--secrets-only") == 0) continue;
    int n = report_secrets(s, argv[i], 0, &allowed);
    files++;
    if (n < 0) failed = 1;
    else findings += (size_t)n;
  }
  rc_secrets_free(s);
  printf("secrets: %zu finding%s in %zu file%s", findings, findings == 1 ? "" : "s", files,
         files == 1 ? "" : "s");
  if (allowed) printf(" (%zu allowed by ripcord:allow-secret)", allowed);
  printf("\n");
  fflush(stdout);
  return failed || findings ? 1 : 0;
}

int rc_check_main(int argc, char **argv) {
  int first = 1, files = 0, failed = 0, only_secrets = 0;
  const char *config = NULL;
  for (int i = 1; i < argc && argv[i] != NULL; i++) {
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
    if (strcmp(a, "--secrets-only") == 0) {
      only_secrets = 1;
      continue;
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
  if (only_secrets && config != NULL) {
    fprintf(stderr, "ripcord check: --secrets-only takes files, not --config.file\n");
    return 2;
  }
  if (only_secrets) return secrets_only(argc, argv, 1);
  rc_config_t cfg = {0};
  rc_rules_cfg_t rcfg = {0};
  int have_cfg = 0;
  if (config != NULL) {
    /* Every literal secret in the config, each at its line (the parser stops at the first). */
    rc_secrets_t *s;
    rc_err_t err = {0};
    if (rc_secrets_new(&s, &err) != 0) {
      printf("%s\n", err.msg);
      return 1;
    }
    size_t allowed = 0;
    int n = report_secrets(s, config, 1, &allowed);
    rc_secrets_free(s);
    if (n != 0) { /* findings, or unreadable (said already) */
      if (n > 0) printf("%s: %d error%s\n", config, n, n == 1 ? "" : "s");
      return 1;
    }
    if (rc_config_load(config, &cfg, &err) != 0 || rc_config_rules(&cfg, &rcfg, &err) != 0) {
      printf("%s\n", err.msg);
      rc_config_free(&cfg);
      return 1;
    }
    have_cfg = 1;
  }
  int after_dashes = 0;
  for (int i = 1; i < argc && argv[i] != NULL; i++) {
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
