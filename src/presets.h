/* presets.h: a rollback event (actions.c's generic JSON) in each receiver's native format,
 * built with jansson:
 *
 *   generic       the event itself (the documented schema, README), signed
 *   slack         incoming webhook: {"text": summary, "channel": target?}, signed
 *   pagerduty     Events API v2 trigger: routing_key (the receiver's secret), dedup_key (the
 *                 idempotency key), payload {summary, source, severity, component, group,
 *                 custom_details: the event}
 *   github        repository_dispatch: {"event_type": "ripcord-rollback", "client_payload":
 *                 {service, environment, version (to), from_version, artifact,
 *                 idempotency_key, trigger}} with Authorization: Bearer <secret>
 *   gitlab        pipeline trigger: {"token": <secret>, "ref": <ref>, "variables":
 *                 {RIPCORD_ROLLBACK_VERSION, _FROM_VERSION, _SERVICE, _ENVIRONMENT, _ARTIFACT,
 *                 _KEY}} — a rollback:production job runs with the version as a variable
 *   alertmanager  Alertmanager's webhook format (version 4), one firing alert, signed
 *
 * "Signed" receivers get the HMAC headers (delivery.h); the others authenticate with their
 * secret inside the request as their API wants, and are not signed.
 */
#ifndef RC_PRESETS_H
#define RC_PRESETS_H

#include <stddef.h>

typedef struct rc_preset_out {
  char *body;        /* malloc'ed */
  char header[1024]; /* one extra header line (no CRLF), or "" */
  int sign;          /* add the HMAC signature headers */
} rc_preset_out_t;

/* 1 if type names a preset. */
int rc_preset_known(const char *type);
/* Builds the request for a receiver of that type. target: the rule's notify target (a Slack
 * channel, a PagerDuty service name) or NULL; ref: GitLab's ref. Returns 0 or -1 (bad event
 * JSON, out of memory). */
int rc_preset_build(const char *type, const char *event_json, const char *receiver,
                    const char *target, const char *secret, const char *ref,
                    rc_preset_out_t *out);

#endif
