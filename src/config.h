/* config.h: the daemon configuration file (YAML, --config.file). In this stage it names the
 * rule files (`rule_files:`, paths and globs relative to the config file, as in Prometheus)
 * and the series selectors the store keeps (`select:`, until rules name their own), the
 * receivers rollback events go to, and the identities allowed to call the API
 * (`identities:`, checked by auth.c); later stages add deploy targets and approval policy.
 *
 * Errors carry file:line:col (1-based) and a reason; every unknown key is an error, because a
 * misspelt key silently ignored is how a rollback rule quietly never loads.
 * Memory: rc_config_t owns its strings; free with rc_config_free().
 */
#ifndef RC_CONFIG_H
#define RC_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "approval_cfg.h"
#include "rc.h"

#define RC_CONFIG_RULES_KEYS 7

typedef struct rc_config {
  char *path;        /* the file it was read from, or NULL for the embedded defaults */
  char **rule_files; /* patterns as written, resolved against the config file's directory */
  size_t n_rule_files;
  /* select: PromQL series selectors whose series the store keeps, until rules (issue 4)
   * supply their own. line/col locate each entry for error messages. */
  char **select;
  int *select_line, *select_col;
  size_t n_select;
  /* rules: settings every rule file relies on (NULL when not given): the labels that carry a
   * rule's service and environment, the scrape interval `ripcord check` compares windows
   * with, and the built-in metrics' PromQL templates ({{selector}}, {{window}}). */
  char *rules_set[RC_CONFIG_RULES_KEYS];
  /* receivers: where rollback events go (issue 5). Secrets are named (an environment
   * variable or a file), never written here. */
  struct rc_receiver_cfg *receivers;
  size_t n_receivers;
  /* identities: who may call the API and in which roles (issue 6). Like receivers' secrets,
   * tokens are named (an environment variable or a file), never written here; auth.c reads
   * them. None configured means open mode. */
  struct rc_identity_cfg *identities;
  size_t n_identities;
  /* approvals: the approval gate's policy per environment ("*": any other), under each
   * rule's own action.approval: (approvals.h). */
  rc_approval_env_cfg_t *approvals;
  size_t n_approvals;
} rc_config_t;

typedef struct rc_receiver_cfg {
  char *name, *type, *url; /* type: a preset (presets.h); generic when not given */
  char *secret_env, *secret_file;
  char *url_env, *url_file; /* the URL from a variable or a file (a Slack webhook URL is a
                             * credential); exactly one of url, url_env, url_file */
  char *ref;               /* gitlab: the ref the pipeline runs on */
  uint64_t timeout_ms, deadline_ms;
  int line;
} rc_receiver_cfg_t;

/* One entry of identities:, as written (auth.c turns it into an rc_identity_t). roles are
 * names from rc_config_roles, at least one; groups are free names approval policies use.
 * Exactly one of token_env and token_file is set. line/col locate the entry's mapping. */
typedef struct rc_identity_cfg {
  char *name;
  char **roles;
  size_t nroles;
  char **groups;
  size_t ngroups;
  char *token_env, *token_file;
  int line, col;
} rc_identity_cfg_t;

/* The role names identities: accepts. Entry i is the role whose auth.h bit is 1 << i
 * (RC_ROLE_WRITER = 1 is "writer", ...), so the two lists cannot drift apart. */
#define RC_CONFIG_NROLES 5
extern const char *const rc_config_roles[RC_CONFIG_NROLES];

/* Keys of the rules: mapping, in rules_set order. */
enum { RC_CFG_SERVICE_LABEL, RC_CFG_ENVIRONMENT_LABEL, RC_CFG_SCRAPE_INTERVAL,
       RC_CFG_ERROR_RATE, RC_CFG_ERROR_RATE_REQUESTS, RC_CFG_LATENCY_P99,
       RC_CFG_HEALTH_CHECK_FAILURES };

/* Parses YAML text (name is used in messages only). Returns 0 or RC_EPARSE/RC_ENOMEM with
 * err->line/col/msg set. A text holding a literal secret (secrets.h: a token, a webhook URL,
 * credentials in a URL, ...) is refused with RC_EPARSE at the first one, even in a comment. */
int rc_config_parse(const char *name, const char *text, size_t len, rc_config_t *out,
                    rc_err_t *err);
/* Reads and parses a file. RC_EIO when it cannot be read. */
int rc_config_load(const char *path, rc_config_t *out, rc_err_t *err);
void rc_config_free(rc_config_t *c);
/* Expands the rule_files patterns; returns the number of files matched, or a negative code. */
int rc_config_count_rule_files(const rc_config_t *c, rc_err_t *err);
/* The files the rule_files patterns match, in pattern order (each pattern's matches sorted, as
 * glob sorts them). *out is owned by the caller: rc_config_free_paths. Returns 0, RC_EIO or
 * RC_ENOMEM. */
int rc_config_rule_paths(const rc_config_t *c, char ***out, size_t *n, rc_err_t *err);
void rc_config_free_paths(char **paths, size_t n);

/* The rules: settings as the rule loader takes them (strings borrowed from c). Returns 0 or
 * RC_EPARSE (scrape_interval is not a duration) with a reason. */
struct rc_rules_cfg;
int rc_config_rules(const rc_config_t *c, struct rc_rules_cfg *out, rc_err_t *err);

#endif
