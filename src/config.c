/* config.c: YAML daemon configuration via libyaml's event parser; see config.h.
 * Walking events rather than building a document keeps every error at the exact mark
 * (line/column) where libyaml saw the offending node. A config that parses is then scanned
 * for literal secrets (secrets.h), and the first one found is its error. */
#include "config.h"
#include "buf.h"
#include "cli.h"
#include "presets.h"
#include "rules.h"
#include "secrets.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static int mark_err(rc_err_t *err, const char *name, yaml_mark_t m, const char *what) {
  if (err != NULL) {
    err->line = (int)m.line + 1;
    err->col = (int)m.column + 1;
  }
  return rc_err_set(err, RC_EPARSE, "%s:%d:%d: %s", name, (int)m.line + 1, (int)m.column + 1,
                    what);
}

static int ev_err(rc_err_t *err, const char *name, const yaml_event_t *ev, const char *what) {
  return mark_err(err, name, ev->start_mark, what);
}

static int next(yaml_parser_t *p, yaml_event_t *ev, const char *name, rc_err_t *err) {
  if (yaml_parser_parse(p, ev)) return 0;
  if (err != NULL) {
    err->line = (int)p->problem_mark.line + 1;
    err->col = (int)p->problem_mark.column + 1;
  }
  return rc_err_set(err, RC_EPARSE, "%s:%d:%d: %s%s%s", name, (int)p->problem_mark.line + 1,
                    (int)p->problem_mark.column + 1, p->problem ? p->problem : "YAML error",
                    p->context ? " " : "", p->context ? p->context : "");
}

/* Parses a list of non-empty strings into *items (owned), recording each entry's position. */
static const char *const rules_keys[RC_CONFIG_RULES_KEYS] = {
    "service_label", "environment_label", "scrape_interval", "error_rate",
    "error_rate_requests", "latency_p99", "health_check_failures"};

/* rules: a mapping of the keys above to non-empty strings. */
static int parse_rules_map(yaml_parser_t *p, const char *name, char **set, rc_err_t *err) {
  yaml_event_t ev;
  int rc = next(p, &ev, name, err);
  if (rc) return rc;
  if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0) { /* rules: (empty) */
    yaml_event_delete(&ev);
    return 0;
  }
  if (ev.type != YAML_MAPPING_START_EVENT) {
    rc = ev_err(err, name, &ev, "rules must be a mapping (service_label, environment_label, "
                                "scrape_interval, error_rate, error_rate_requests, latency_p99, "
                                "health_check_failures)");
    yaml_event_delete(&ev);
    return rc;
  }
  yaml_event_delete(&ev);
  for (;;) {
    if ((rc = next(p, &ev, name, err))) return rc;
    if (ev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&ev);
      return 0;
    }
    int k = -1;
    for (int i = 0; ev.type == YAML_SCALAR_EVENT && i < RC_CONFIG_RULES_KEYS; i++)
      if (strcmp((const char *)ev.data.scalar.value, rules_keys[i]) == 0) k = i;
    if (k < 0 || set[k] != NULL) {
      char what[200];
      snprintf(what, sizeof(what), k < 0 ? "unknown key \"%.60s\" under rules: (known: "
                                           "service_label, environment_label, scrape_interval, "
                                           "error_rate, error_rate_requests, latency_p99, "
                                           "health_check_failures)"
                                         : "duplicate key \"%.60s\" under rules:",
               ev.type == YAML_SCALAR_EVENT ? (const char *)ev.data.scalar.value : "?");
      rc = ev_err(err, name, &ev, what);
      yaml_event_delete(&ev);
      return rc;
    }
    yaml_event_delete(&ev);
    if ((rc = next(p, &ev, name, err))) return rc;
    if (ev.type != YAML_SCALAR_EVENT || ev.data.scalar.length == 0) {
      char what[120];
      snprintf(what, sizeof(what), "rules.%s must be a non-empty string", rules_keys[k]);
      rc = ev_err(err, name, &ev, what);
      yaml_event_delete(&ev);
      return rc;
    }
    set[k] = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
    yaml_event_delete(&ev);
    if (set[k] == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
}

/*------------------------------------------------------------------------------------------
 * Lists of mappings (receivers:, identities:, approvals:): the walk they share
 *----------------------------------------------------------------------------------------*/

/* Compares a scalar (which may hold a NUL written as "\0") with a C string. */
static int scalar_is(const yaml_event_t *ev, const char *s) {
  size_t n = strlen(s);
  return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == n &&
         memcmp(ev->data.scalar.value, s, n) == 0;
}

/* The list's start; what is the message when the value is not a list. */
static int list_start(yaml_parser_t *p, const char *name, const char *what, rc_err_t *err) {
  yaml_event_t ev;
  int rc = next(p, &ev, name, err);
  if (rc) return rc;
  if (ev.type != YAML_SEQUENCE_START_EVENT) rc = ev_err(err, name, &ev, what);
  yaml_event_delete(&ev);
  return rc;
}

/* The list's next entry: 1 with the mapping's start mark, 0 at the end of the list, or an
 * error (what: the message for an entry that is not a mapping). */
static int list_entry(yaml_parser_t *p, const char *name, const char *what, yaml_mark_t *at,
                      rc_err_t *err) {
  yaml_event_t ev;
  int rc = next(p, &ev, name, err);
  if (rc) return rc;
  if (ev.type == YAML_SEQUENCE_END_EVENT) rc = 0;
  else if (ev.type != YAML_MAPPING_START_EVENT) rc = ev_err(err, name, &ev, what);
  else *at = ev.start_mark, rc = 1;
  yaml_event_delete(&ev);
  return rc;
}

/* An entry's next key: 1 with its index in keys (seen[] marks it), 0 at the entry's end, or
 * an error for an unknown or repeated key, naming the entry (e.g. "a receiver") and the keys
 * it knows. forbidden, when given, is a key refused with its own message (an inline secret). */
static int entry_key(yaml_parser_t *p, const char *name, const char *entry,
                     const char *const *keys, int nkeys, int *seen, const char *forbidden,
                     const char *forbidden_msg, int *k, rc_err_t *err) {
  yaml_event_t ev;
  int rc = next(p, &ev, name, err);
  if (rc) return rc;
  if (ev.type == YAML_MAPPING_END_EVENT) {
    yaml_event_delete(&ev);
    return 0;
  }
  *k = -1;
  for (int i = 0; i < nkeys; i++)
    if (scalar_is(&ev, keys[i])) *k = i;
  if (*k >= 0 && !seen[*k]) {
    seen[*k] = 1;
    yaml_event_delete(&ev);
    return 1;
  }
  char what[300], known[200];
  size_t n = 0;
  for (int i = 0; i < nkeys && n < sizeof(known); i++)
    n += (size_t)snprintf(known + n, sizeof(known) - n, "%s%s", i ? ", " : "", keys[i]);
  const char *key = ev.type == YAML_SCALAR_EVENT ? (const char *)ev.data.scalar.value : "?";
  if (forbidden != NULL && scalar_is(&ev, forbidden))
    snprintf(what, sizeof(what), "%s", forbidden_msg);
  else if (*k < 0)
    snprintf(what, sizeof(what), "unknown key \"%.40s\" in %s (known: %s)", key, entry, known);
  else
    snprintf(what, sizeof(what), "duplicate key \"%.40s\" in %s", key, entry);
  rc = ev_err(err, name, &ev, what);
  yaml_event_delete(&ev);
  return rc;
}

/* receivers: a list of mappings (name, type, url, secret_env | secret_file, timeout,
 * deadline), each checked where it is written. */
static int parse_receivers(yaml_parser_t *p, const char *name, rc_config_t *c, rc_err_t *err) {
  static const char *const keys[] = {"name", "type", "url", "secret_env", "secret_file",
                                     "timeout", "deadline", "ref", "url_env", "url_file"};
  enum { NKEYS = 10 };
  yaml_event_t ev;
  int rc = list_start(p, name, "receivers must be a list of mappings", err);
  if (rc) return rc;
  for (;;) {
    yaml_mark_t at = {0};
    if ((rc = list_entry(p, name, "a receiver must be a mapping (name, type, url, ...)", &at,
                         err)) <= 0)
      return rc;
    rc_receiver_cfg_t *nr = realloc(c->receivers, (c->n_receivers + 1) * sizeof(*nr));
    if (nr == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
    c->receivers = nr;
    rc_receiver_cfg_t *r = &c->receivers[c->n_receivers++];
    memset(r, 0, sizeof(*r));
    r->line = (int)at.line + 1;
    r->timeout_ms = 5000;
    r->deadline_ms = 3600000;
    char *vals[NKEYS] = {0};
    int seen[NKEYS] = {0}, k = -1;
    while ((rc = entry_key(p, name, "a receiver", keys, NKEYS, seen, "secret",
                           "secrets are never written in the config: use secret_env (a "
                           "variable) or secret_file (a path)", &k, err)) > 0 &&
           k >= 0 && k < NKEYS) { /* entry_key's 1 means k is set; said for the analysers */
      if ((rc = next(p, &ev, name, err))) break;
      if (ev.type != YAML_SCALAR_EVENT || ev.data.scalar.length == 0) {
        char what[80];
        snprintf(what, sizeof(what), "receivers: %s must be a non-empty string", keys[k]);
        rc = ev_err(err, name, &ev, what);
        yaml_event_delete(&ev);
        break;
      }
      free(vals[k]); /* NULL: entry_key refuses a repeated key; said for the analysers */
      vals[k] = strndup((const char *)ev.data.scalar.value, ev.data.scalar.length);
      if (vals[k] == NULL) rc = rc_err_set(err, RC_ENOMEM, "out of memory");
      /* vals[k] is owned by vals[] (handed to r or freed after the loop, on every path): the
       * analyser loses a store through a variable index and calls it a leak here. */
      if (rc == 0 && (k == 5 || k == 6) && // NOLINT(clang-analyzer-unix.Malloc)
          rc_parse_duration_ms(vals[k], k == 5 ? &r->timeout_ms : &r->deadline_ms) != 0)
        rc = ev_err(err, name, &ev, "receivers: not a duration (like 5s, 1h)");
      if (rc == 0 && k == 2 && strncmp(vals[k], "http://", 7) != 0 &&
          strncmp(vals[k], "https://", 8) != 0)
        rc = ev_err(err, name, &ev, "receivers: url must start with http:// or https://");
      if (rc == 0 && k == 1 && !rc_preset_known(vals[k]))
        rc = ev_err(err, name, &ev, "receivers: type must be generic, slack, pagerduty, github, "
                                    "gitlab or alertmanager");
      yaml_event_delete(&ev);
      if (rc) break;
    }
    r->name = vals[0], r->type = vals[1], r->url = vals[2], r->secret_env = vals[3],
    r->secret_file = vals[4], r->ref = vals[7], r->url_env = vals[8], r->url_file = vals[9];
    free(vals[5]);
    free(vals[6]);
    /* A Slack incoming webhook's URL is itself the credential: it may come from a variable
     * or a file, like a secret. */
    if (rc == 0 && (r->name == NULL || (r->url == NULL && r->url_env == NULL &&
                                        r->url_file == NULL)))
      rc = mark_err(err, name, at, "a receiver needs a name and a url (url, url_env or url_file)");
    if (rc == 0 && (r->url != NULL) + (r->url_env != NULL) + (r->url_file != NULL) > 1)
      rc = mark_err(err, name, at, "a receiver takes one of url, url_env and url_file");
    if (rc == 0 && r->secret_env && r->secret_file)
      rc = mark_err(err, name, at, "a receiver takes secret_env or secret_file, not both");
    for (size_t i = 0; rc == 0 && i + 1 < c->n_receivers; i++)
      if (strcmp(c->receivers[i].name, r->name) == 0)
        rc = mark_err(err, name, at, "duplicate receiver name");
    if (rc) return rc;
  }
}

/*------------------------------------------------------------------------------------------
 * identities: who may call the API (issue 6)
 *----------------------------------------------------------------------------------------*/

const char *const rc_config_roles[RC_CONFIG_NROLES] = {"writer", "deployer", "approver", "admin",
                                                       "viewer"};

/* An identity's name travels in logs, the audit table and Basic credentials (where a ':'
 * would end it), so it is kept to 1..64 of [A-Za-z0-9._@-]. */
static int identity_name_ok(const unsigned char *s, size_t n) {
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '_' || ch == '@' || ch == '-'))
      return 0;
  }
  return 1;
}

/* An identity's roles: (known role names, at least one) or groups: (any non-empty names,
 * possibly none), as a block or flow list. */
static int parse_id_list(yaml_parser_t *p, const char *name, const char *key, int roles,
                         char ***items, size_t *n, rc_err_t *err) {
  static const char *const roles_list = "writer, deployer, approver, admin, viewer";
  yaml_event_t ev;
  char what[160];
  int rc = next(p, &ev, name, err);
  if (rc) return rc;
  if (ev.type != YAML_SEQUENCE_START_EVENT) {
    if (roles) snprintf(what, sizeof(what), "roles must be a non-empty list of %s", roles_list);
    else snprintf(what, sizeof(what), "%s must be a list of names", key);
    rc = ev_err(err, name, &ev, what);
    yaml_event_delete(&ev);
    return rc;
  }
  yaml_mark_t start = ev.start_mark;
  yaml_event_delete(&ev);
  for (;;) {
    if ((rc = next(p, &ev, name, err))) return rc;
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      if (roles && *n == 0) {
        snprintf(what, sizeof(what), "roles must be a non-empty list of %s", roles_list);
        return mark_err(err, name, start, what);
      }
      return 0;
    }
    if (ev.type != YAML_SCALAR_EVENT || ev.data.scalar.length == 0) {
      snprintf(what, sizeof(what), "%s entries must be non-empty strings", key);
      rc = ev_err(err, name, &ev, what);
      yaml_event_delete(&ev);
      return rc;
    }
    int known = !roles;
    for (int i = 0; !known && i < RC_CONFIG_NROLES; i++) known = scalar_is(&ev, rc_config_roles[i]);
    if (!known) {
      snprintf(what, sizeof(what), "unknown role \"%.40s\" (known: %s)",
               (const char *)ev.data.scalar.value, roles_list);
      rc = ev_err(err, name, &ev, what);
      yaml_event_delete(&ev);
      return rc;
    }
    char **nv = realloc(*items, (*n + 1) * sizeof(char *));
    if (nv) *items = nv;
    char *str = nv ? strndup((const char *)ev.data.scalar.value, ev.data.scalar.length) : NULL;
    yaml_event_delete(&ev);
    if (str == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
    (*items)[(*n)++] = str;
  }
}

/* identities: a list of mappings (name, roles, groups, token_env | token_file). Each entry is
 * appended to c as soon as it starts, so rc_config_free cleans up after any error. */
static int parse_identities(yaml_parser_t *p, const char *name, rc_config_t *c, rc_err_t *err) {
  static const char *const keys[] = {"name", "roles", "groups", "token_env", "token_file"};
  enum { K_NAME, K_ROLES, K_GROUPS, K_ENV, K_FILE, NKEYS };
  yaml_event_t ev;
  int rc = list_start(p, name, "identities must be a list of mappings (name, roles, groups, "
                               "token_env or token_file)", err);
  if (rc) return rc;
  for (;;) {
    yaml_mark_t at = {0};
    if ((rc = list_entry(p, name, "an identity must be a mapping (name, roles, groups, "
                                  "token_env or token_file)", &at, err)) <= 0)
      return rc;
    rc_identity_cfg_t *nv = realloc(c->identities, (c->n_identities + 1) * sizeof(*nv));
    if (nv == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
    c->identities = nv;
    rc_identity_cfg_t *id = &c->identities[c->n_identities++];
    memset(id, 0, sizeof(*id));
    id->line = (int)at.line + 1;
    id->col = (int)at.column + 1;
    int seen[NKEYS] = {0}, k = -1;
    while ((rc = entry_key(p, name, "an identity", keys, NKEYS, seen, "token",
                           "tokens are never written in the config: use token_env (a variable) "
                           "or token_file (a path)", &k, err)) > 0 &&
           k >= 0) { /* entry_key's 1 means k is set; said for the analysers */
      if (k == K_ROLES || k == K_GROUPS) {
        rc = k == K_ROLES ? parse_id_list(p, name, "roles", 1, &id->roles, &id->nroles, err)
                          : parse_id_list(p, name, "groups", 0, &id->groups, &id->ngroups, err);
        if (rc) return rc;
        continue;
      }
      if ((rc = next(p, &ev, name, err))) return rc;
      const unsigned char *v = ev.type == YAML_SCALAR_EVENT ? ev.data.scalar.value : NULL;
      size_t vn = v != NULL ? ev.data.scalar.length : 0;
      char what[160];
      if (vn == 0) {
        snprintf(what, sizeof(what), "identities: %s must be a non-empty string", keys[k]);
        rc = ev_err(err, name, &ev, what);
      } else if (k == K_NAME && !identity_name_ok(v, vn)) {
        rc = ev_err(err, name, &ev, "identities: a name is 1 to 64 characters of A-Z a-z 0-9 "
                                    ". _ @ -");
      }
      for (size_t i = 0; rc == 0 && k == K_NAME && i + 1 < c->n_identities; i++) {
        const char *o = c->identities[i].name;
        if (strlen(o) == vn && memcmp(o, v, vn) == 0) {
          snprintf(what, sizeof(what), "duplicate identity name \"%s\" (first at line %d)", o,
                   c->identities[i].line);
          rc = ev_err(err, name, &ev, what);
        }
      }
      char *str = rc == 0 ? strndup((const char *)v, vn) : NULL;
      yaml_event_delete(&ev);
      if (rc) return rc;
      if (str == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
      *(k == K_NAME ? &id->name : k == K_ENV ? &id->token_env : &id->token_file) = str;
    }
    if (rc < 0) return rc;
    if (id->name == NULL)
      return mark_err(err, name, at, "an identity needs a name");
    if (id->roles == NULL)
      return mark_err(err, name, at, "an identity needs roles (a non-empty list of writer, "
                                     "deployer, approver, admin, viewer)");
    if (id->token_env == NULL && id->token_file == NULL)
      return mark_err(err, name, at, "an identity needs token_env or token_file");
    if (id->token_env != NULL && id->token_file != NULL)
      return mark_err(err, name, at, "an identity takes token_env or token_file, not both");
  }
}

/*------------------------------------------------------------------------------------------
 * approvals: the approval gate's policy per environment (issue 6)
 *----------------------------------------------------------------------------------------*/

/* approvals: a list of mappings (environment, when, required, approvers, approver_groups,
 * timeout, rehearse_in). Appended as soon as an entry starts, so rc_config_free cleans up
 * after errors. */
static int parse_approvals(yaml_parser_t *p, const char *name, rc_config_t *c, rc_err_t *err) {
  static const char *const keys[] = {"environment", "when", "required", "approvers",
                                     "approver_groups", "timeout", "rehearse_in"};
  enum { K_ENV, K_WHEN, K_REQ, K_IDS, K_GROUPS, K_TIMEOUT, K_REHEARSE, NKEYS };
  yaml_event_t ev;
  int rc = list_start(p, name, "approvals must be a list of mappings (environment, required, "
                               "approvers, approver_groups, timeout, when, rehearse_in)", err);
  if (rc) return rc;
  for (;;) {
    yaml_mark_t at = {0};
    if ((rc = list_entry(p, name, "an approvals entry must be a mapping (environment, ...)", &at,
                         err)) <= 0)
      return rc;
    rc_approval_env_cfg_t *nv = realloc(c->approvals, (c->n_approvals + 1) * sizeof(*nv));
    if (nv == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
    c->approvals = nv;
    rc_approval_env_cfg_t *e = &c->approvals[c->n_approvals++];
    memset(e, 0, sizeof(*e));
    e->policy.when_always = -1;
    e->line = (int)at.line + 1;
    int seen[NKEYS] = {0}, k = -1;
    while ((rc = entry_key(p, name, "an approvals entry", keys, NKEYS, seen, NULL, NULL, &k,
                           err)) > 0 &&
           k >= 0) { /* entry_key's 1 means k is set; said for the analysers */
      if (k == K_IDS || k == K_GROUPS) {
        size_t n = 0;
        char **items = NULL;
        rc = parse_id_list(p, name, keys[k], 0, &items, &n, err);
        if (k == K_IDS) e->policy.approvers = items, e->policy.napprovers = (uint32_t)n;
        else e->policy.groups = items, e->policy.ngroups = (uint32_t)n;
        e->policy.has_approvers = 1;
        if (rc) return rc;
        if (n == 0) return mark_err(err, name, at, "an empty approvers list means nobody could "
                                                   "approve; leave it out for any approver");
        continue;
      }
      if ((rc = next(p, &ev, name, err))) return rc;
      const char *v = ev.type == YAML_SCALAR_EVENT ? (const char *)ev.data.scalar.value : NULL;
      char what[160] = "";
      if (v == NULL || ev.data.scalar.length == 0 || strlen(v) != ev.data.scalar.length) {
        snprintf(what, sizeof(what), "approvals: %s must be a non-empty string", keys[k]);
      } else if (k == K_ENV) {
        for (size_t i = 0; i + 1 < c->n_approvals && !what[0]; i++)
          if (strcmp(c->approvals[i].environment, v) == 0)
            snprintf(what, sizeof(what), "duplicate approvals entry for environment \"%.60s\" "
                     "(first at line %d)", v, c->approvals[i].line);
        if (!what[0] && (e->environment = strdup(v)) == NULL) {
          yaml_event_delete(&ev);
          return rc_err_set(err, RC_ENOMEM, "out of memory");
        }
      } else if (k == K_WHEN) {
        if (strcmp(v, "always") == 0) e->policy.when_always = 1;
        else if (strcmp(v, "needed") == 0) e->policy.when_always = 0;
        else snprintf(what, sizeof(what), "approvals: when must be needed or always");
      } else if (k == K_REQ) {
        char *end;
        long x = strtol(v, &end, 10);
        if (*v < '0' || *v > '9' || *end || x < 1 || x > 16)
          snprintf(what, sizeof(what), "approvals: required must be a whole number from 1 to 16");
        else e->policy.required = (int)x;
      } else if (k == K_TIMEOUT) {
        uint64_t ms = 0;
        if (rc_parse_duration_ms(v, &ms) != 0 || ms < 1000 || ms > 7 * 86400000ull)
          snprintf(what, sizeof(what), "approvals: timeout must be a duration from 1s to 7d");
        else e->policy.timeout_ms = (int64_t)ms;
      } else if (k == K_REHEARSE) {
        if (strcmp(v, "*") == 0)
          snprintf(what, sizeof(what), "approvals: rehearse_in names one environment, not \"*\"");
        else if ((e->policy.rehearse_in = strdup(v)) == NULL) {
          yaml_event_delete(&ev);
          return rc_err_set(err, RC_ENOMEM, "out of memory");
        }
      }
      if (what[0]) rc = ev_err(err, name, &ev, what);
      yaml_event_delete(&ev);
      if (rc) return rc;
    }
    if (rc < 0) return rc;
    if (e->environment == NULL)
      return mark_err(err, name, at, "an approvals entry needs an environment (or \"*\")");
    if (e->policy.rehearse_in != NULL && strcmp(e->policy.rehearse_in, e->environment) == 0)
      return mark_err(err, name, at, "approvals: rehearse_in must name another environment "
                                     "than the entry's own");
  }
}

static int parse_string_list(yaml_parser_t *p, const char *name, const char *key, char ***items,
                             int **lines, int **cols, size_t *n, rc_err_t *err) {
  yaml_event_t ev;
  char what[120];
  int rc = next(p, &ev, name, err);
  if (rc) return rc;
  if (ev.type == YAML_SCALAR_EVENT && ev.data.scalar.length == 0) { /* key: (empty) */
    yaml_event_delete(&ev);
    return 0;
  }
  if (ev.type != YAML_SEQUENCE_START_EVENT) {
    snprintf(what, sizeof(what), "%s must be a list of %s", key,
             lines ? "selectors" : "paths or globs");
    rc = ev_err(err, name, &ev, what);
    yaml_event_delete(&ev);
    return rc;
  }
  yaml_event_delete(&ev);
  for (;;) {
    if ((rc = next(p, &ev, name, err))) return rc;
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      return 0;
    }
    if (ev.type != YAML_SCALAR_EVENT || ev.data.scalar.length == 0) {
      snprintf(what, sizeof(what), "%s entries must be non-empty strings", key);
      rc = ev_err(err, name, &ev, what);
      yaml_event_delete(&ev);
      return rc;
    }
    char **nf = realloc(*items, (*n + 1) * sizeof(char *));
    if (nf) *items = nf;
    int ok = nf != NULL;
    if (ok && lines) {
      int *nl = realloc(*lines, (*n + 1) * sizeof(int));
      if (nl) *lines = nl;
      int *nc = nl ? realloc(*cols, (*n + 1) * sizeof(int)) : NULL;
      if (nc) *cols = nc;
      ok = nl && nc;
    }
    char *str = ok ? strndup((const char *)ev.data.scalar.value, ev.data.scalar.length) : NULL;
    if (str != NULL && lines) {
      (*lines)[*n] = (int)ev.start_mark.line + 1;
      /* Point inside a quoted scalar at its first character, so that a selector's own
       * column can be added to it. */
      int quoted = ev.data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                   ev.data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
      (*cols)[*n] = (int)ev.start_mark.column + 1 + (quoted ? 1 : 0);
    }
    yaml_event_delete(&ev);
    if (str == NULL) return rc_err_set(err, RC_ENOMEM, "out of memory");
    (*items)[(*n)++] = str;
  }
}

/* A literal secret anywhere in the text (a comment included: it is committed all the same) is
 * an error at the first one; `ripcord check --config.file` lists them all. */
static int refuse_secrets(const char *name, const char *text, size_t len, rc_err_t *err) {
  rc_secret_findings_t f = {0};
  int rc = rc_secrets_scan_once(text, len, &f);
  if (rc != 0) {
    rc_secret_findings_free(&f);
    return rc_err_set(err, rc, "out of memory");
  }
  if (f.n > 0) {
    char msg[300];
    rc_secrets_message(&f.v[0], msg, sizeof(msg));
    if (err != NULL) {
      err->line = f.v[0].line;
      err->col = f.v[0].col;
    }
    rc = rc_err_set(err, RC_EPARSE, "%s:%d:%d: %s", name, f.v[0].line, f.v[0].col, msg);
  }
  rc_secret_findings_free(&f);
  return rc;
}

int rc_config_parse(const char *name, const char *text, size_t len, rc_config_t *c,
                    rc_err_t *err) {
  memset(c, 0, sizeof(*c));
  yaml_parser_t p;
  yaml_event_t ev;
  int rc = 0, depth = 0, seen[6] = {0};
  if (!yaml_parser_initialize(&p)) return rc_err_set(err, RC_ENOMEM, "out of memory");
  yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
  /* stream-start, then an optional document holding one mapping. */
  for (;;) {
    if ((rc = next(&p, &ev, name, err))) goto out;
    yaml_event_type_t t = ev.type;
    if (t == YAML_STREAM_END_EVENT) {
      yaml_event_delete(&ev);
      break;
    }
    if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
        t == YAML_DOCUMENT_END_EVENT) {
      yaml_event_delete(&ev);
      continue;
    }
    if (depth == 0) {
      if (t == YAML_SCALAR_EVENT && ev.data.scalar.length == 0) { /* empty document */
        yaml_event_delete(&ev);
        continue;
      }
      if (t != YAML_MAPPING_START_EVENT) {
        rc = ev_err(err, name, &ev, "the configuration must be a mapping of keys");
        yaml_event_delete(&ev);
        goto out;
      }
      depth = 1;
      yaml_event_delete(&ev);
      continue;
    }
    if (t == YAML_MAPPING_END_EVENT) {
      depth = 0;
      yaml_event_delete(&ev);
      continue;
    }
    if (t != YAML_SCALAR_EVENT) {
      rc = ev_err(err, name, &ev, "expected a key");
      yaml_event_delete(&ev);
      goto out;
    }
    /* The top-level keys, each allowed once. */
    static const char *const top[] = {"rule_files", "select", "rules", "receivers",
                                      "identities", "approvals"};
    int k = -1;
    for (int i = 0; i < (int)RC_ARRAY_SIZE(top); i++)
      if (scalar_is(&ev, top[i])) k = i;
    if (k < 0 || seen[k]) {
      char what[200];
      snprintf(what, sizeof(what),
               k < 0 ? "unknown key \"%.60s\" (known: rule_files, select, rules, receivers, "
                       "identities, approvals)"
                     : "duplicate key \"%.60s\"",
               (const char *)ev.data.scalar.value);
      rc = ev_err(err, name, &ev, what);
      yaml_event_delete(&ev);
      goto out;
    }
    seen[k] = 1;
    yaml_event_delete(&ev);
    switch (k) {
      case 0:
        rc = parse_string_list(&p, name, "rule_files", &c->rule_files, NULL, NULL,
                               &c->n_rule_files, err);
        break;
      case 1:
        rc = parse_string_list(&p, name, "select", &c->select, &c->select_line, &c->select_col,
                               &c->n_select, err);
        break;
      case 2: rc = parse_rules_map(&p, name, c->rules_set, err); break;
      case 3: rc = parse_receivers(&p, name, c, err); break;
      case 4: rc = parse_identities(&p, name, c, err); break;
      default: rc = parse_approvals(&p, name, c, err); break;
    }
    if (rc) goto out;
  }
out:
  yaml_parser_delete(&p);
  if (rc == 0) rc = refuse_secrets(name, text, len, err);
  if (rc != 0) rc_config_free(c);
  return rc;
}

int rc_config_load(const char *path, rc_config_t *c, rc_err_t *err) {
  memset(c, 0, sizeof(*c));
  FILE *f = fopen(path, "rb");
  if (f == NULL) return rc_err_set(err, RC_EIO, "%s: %s", path, strerror(errno));
  rc_buf_t b;
  rc_buf_init(&b);
  int rrc = rc_buf_read_file(&b, f, 16u << 20);
  fclose(f);
  if (rrc != 0) {
    rc_buf_free(&b);
    return rrc == RC_ELIMIT ? rc_err_set(err, RC_ELIMIT, "%s: larger than 16 MiB", path)
           : rrc == RC_ENOMEM ? rc_err_set(err, RC_ENOMEM, "out of memory")
                              : rc_err_set(err, RC_EIO, "%s: read error", path);
  }
  size_t len = 0;
  char *buf = rc_buf_steal(&b, &len);
  int rc = rc_config_parse(path, buf ? buf : "", len, c, err);
  free(buf);
  if (rc == 0 && (c->path = strdup(path)) == NULL) {
    rc_config_free(c);
    return rc_err_set(err, RC_ENOMEM, "out of memory");
  }
  return rc;
}

void rc_config_free(rc_config_t *c) {
  for (size_t i = 0; i < c->n_rule_files; i++) free(c->rule_files[i]);
  free(c->rule_files);
  for (size_t i = 0; i < c->n_select; i++) free(c->select[i]);
  free(c->select);
  free(c->select_line);
  free(c->select_col);
  for (int i = 0; i < RC_CONFIG_RULES_KEYS; i++) free(c->rules_set[i]);
  for (size_t i = 0; i < c->n_receivers; i++) {
    rc_receiver_cfg_t *r = &c->receivers[i];
    free(r->name), free(r->type), free(r->url), free(r->secret_env), free(r->secret_file);
    free(r->url_env), free(r->url_file);
    free(r->ref);
  }
  free(c->receivers);
  for (size_t i = 0; i < c->n_identities; i++) {
    rc_identity_cfg_t *id = &c->identities[i];
    for (size_t k = 0; k < id->nroles; k++) free(id->roles[k]);
    for (size_t k = 0; k < id->ngroups; k++) free(id->groups[k]);
    free(id->roles), free(id->groups);
    free(id->name), free(id->token_env), free(id->token_file);
  }
  free(c->identities);
  for (size_t i = 0; i < c->n_approvals; i++) {
    free(c->approvals[i].environment);
    rc_approval_cfg_free(&c->approvals[i].policy);
  }
  free(c->approvals);
  free(c->path);
  memset(c, 0, sizeof(*c));
}

int rc_config_rule_paths(const rc_config_t *c, char ***out, size_t *n, rc_err_t *err) {
  *out = NULL;
  *n = 0;
  char dir[4096] = ".";
  if (c->path != NULL) {
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", c->path);
    snprintf(dir, sizeof(dir), "%s", dirname(tmp));
  }
  for (size_t i = 0; i < c->n_rule_files; i++) {
    char pat[8192];
    if (c->rule_files[i][0] == '/') snprintf(pat, sizeof(pat), "%s", c->rule_files[i]);
    else snprintf(pat, sizeof(pat), "%s/%s", dir, c->rule_files[i]);
    glob_t g;
    int rc = glob(pat, 0, NULL, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
      globfree(&g);
      rc_config_free_paths(*out, *n);
      *out = NULL;
      *n = 0;
      return rc_err_set(err, RC_EIO, "rule_files pattern %s cannot be expanded", pat);
    }
    for (size_t k = 0; rc == 0 && k < g.gl_pathc; k++) {
      char **nv = realloc(*out, (*n + 1) * sizeof(char *));
      char *p = nv ? strdup(g.gl_pathv[k]) : NULL;
      if (p == NULL) {
        if (nv) *out = nv;
        globfree(&g);
        rc_config_free_paths(*out, *n);
        *out = NULL;
        *n = 0;
        return rc_err_set(err, RC_ENOMEM, "out of memory");
      }
      *out = nv;
      (*out)[(*n)++] = p;
    }
    globfree(&g);
  }
  return 0;
}

void rc_config_free_paths(char **paths, size_t n) {
  for (size_t i = 0; i < n; i++) free(paths[i]);
  free(paths);
}

int rc_config_count_rule_files(const rc_config_t *c, rc_err_t *err) {
  char **p;
  size_t n;
  int rc = rc_config_rule_paths(c, &p, &n, err);
  if (rc != 0) return rc;
  rc_config_free_paths(p, n);
  return (int)n;
}

int rc_config_rules(const rc_config_t *c, struct rc_rules_cfg *out, rc_err_t *err) {
  memset(out, 0, sizeof(*out));
  out->service_label = c->rules_set[RC_CFG_SERVICE_LABEL];
  out->environment_label = c->rules_set[RC_CFG_ENVIRONMENT_LABEL];
  out->error_rate_expr = c->rules_set[RC_CFG_ERROR_RATE];
  out->error_rate_requests_expr = c->rules_set[RC_CFG_ERROR_RATE_REQUESTS];
  out->latency_p99_expr = c->rules_set[RC_CFG_LATENCY_P99];
  out->health_check_failures_expr = c->rules_set[RC_CFG_HEALTH_CHECK_FAILURES];
  const char *si = c->rules_set[RC_CFG_SCRAPE_INTERVAL];
  if (si != NULL) {
    uint64_t ms;
    if (rc_parse_duration_ms(si, &ms) != 0 || ms == 0)
      return rc_err_set(err, RC_EPARSE, "%s: rules.scrape_interval \"%s\" is not a duration",
                        c->path ? c->path : "config", si);
    out->scrape_interval_ms = (int64_t)ms;
  }
  return 0;
}
