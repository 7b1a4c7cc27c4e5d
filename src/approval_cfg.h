/* approval_cfg.h: an approval policy as people write it — in a rule's action.approval: or
 * in the server config's approvals: entries — before approvals.h resolves the layers into the
 * policy of one request. A separate header so that the config and rule loaders can hold
 * policies without pulling in the gate (libuv, SQLite).
 * Memory: the struct owns its name lists; rc_approval_cfg_free() frees them.
 */
#ifndef RC_APPROVAL_CFG_H
#define RC_APPROVAL_CFG_H

#include <stdint.h>

/* An approval policy as written in a rule's action.approval: or the config's approvals:
 * (approvals.h resolves the layers). Unset fields inherit: when_always -1, required 0,
 * timeout_ms 0, has_approvers 0. */
typedef struct rc_approval_cfg {
  int when_always;       /* 1: every rollback of the rule waits for people; 0: only when it
                          * cannot be automatic (irreversible migration, window passed) */
  int required;          /* approvals needed */
  int64_t timeout_ms;    /* the request expires this long after it is made */
  char **approvers;      /* eligible identities ... */
  uint32_t napprovers;
  char **groups;         /* ... and groups (approvers: and approver_groups:) */
  uint32_t ngroups;
  int has_approvers;     /* either list was given: only those are eligible */
  char *rehearse_in;     /* config approvals: only: the environment where a migration's rollback
                          * must have run before an automatic rollback here undoes it, or NULL */
} rc_approval_cfg_t;

/* Frees the lists and resets c to "all unset". */
void rc_approval_cfg_free(rc_approval_cfg_t *c);

/* One config approvals: entry: an environment ("*": any other) and its policy. */
typedef struct rc_approval_env_cfg {
  char *environment;
  rc_approval_cfg_t policy;
  int line;
} rc_approval_env_cfg_t;

#endif
