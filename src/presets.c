/* presets.c: rollback events in each receiver's native format; see presets.h. */
#include "presets.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const types[] = {"generic", "slack", "pagerduty", "github", "gitlab",
                                    "alertmanager"};

int rc_preset_known(const char *type) {
  for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
    if (strcmp(type, types[i]) == 0) return 1;
  return 0;
}

static const char *str(json_t *o, const char *path1, const char *path2) {
  json_t *v = json_object_get(o, path1);
  if (path2 != NULL) v = json_object_get(v, path2);
  return json_is_string(v) ? json_string_value(v) : "";
}

static double num(json_t *o, const char *a, const char *b) {
  json_t *v = json_object_get(json_object_get(o, a), b);
  return json_is_number(v) ? json_number_value(v) : 0;
}

static void summary(json_t *ev, char *buf, size_t cap) {
  snprintf(buf, cap, "ripcord: rolling back %s in %s from %s to %s: %s = %g (%s %g)",
           str(ev, "service", NULL), str(ev, "environment", NULL), str(ev, "from", "version"),
           str(ev, "to", "version"), str(ev, "trigger", "name"), num(ev, "trigger", "value"),
           str(ev, "trigger", "op"), num(ev, "trigger", "threshold"));
}

/* RFC 3339 UTC with milliseconds, as Alertmanager writes times. */
static void rfc3339(long long ms, char *buf, size_t cap) {
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  char base[32];
  strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, cap, "%s.%03lldZ", base, ms % 1000);
}

int rc_preset_build(const char *type, const char *event_json, const char *receiver,
                    const char *target, const char *secret, const char *ref,
                    rc_preset_out_t *out) {
  memset(out, 0, sizeof(*out));
  if (strcmp(type, "generic") == 0) {
    /* The event itself, byte for byte (it is what is signed) — once it is known to be one. */
    json_t *ev = json_loads(event_json, 0, NULL);
    int ok = json_is_object(ev);
    json_decref(ev);
    if (!ok) return -1;
    out->body = strdup(event_json);
    out->sign = 1;
    return out->body ? 0 : -1;
  }
  json_t *ev = json_loads(event_json, 0, NULL);
  if (ev == NULL) return -1;
  char sum[512];
  summary(ev, sum, sizeof(sum));
  const char *key = str(ev, "idempotency_key", NULL);
  json_t *doc = NULL;
  if (strcmp(type, "slack") == 0) {
    doc = json_pack("{s:s}", "text", sum);
    if (target != NULL && *target) json_object_set_new(doc, "channel", json_string(target));
    out->sign = 1;
  } else if (strcmp(type, "pagerduty") == 0 && strcmp(str(ev, "kind", NULL), "resolve") == 0) {
    /* The trigger stopped: resolve the incident the original event opened. */
    doc = json_pack("{s:s,s:s,s:s}", "routing_key", secret ? secret : "", "event_action",
                    "resolve", "dedup_key", str(ev, "resolves", NULL));
  } else if (strcmp(type, "pagerduty") == 0) {
    doc = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:O}}", "routing_key",
                    secret ? secret : "", "event_action", "trigger", "dedup_key", key, "payload",
                    "summary", sum, "source", "ripcord", "severity", "critical", "component",
                    str(ev, "service", NULL), "group", str(ev, "environment", NULL),
                    "custom_details", ev);
    if (doc && target != NULL && *target)
      json_object_set_new(json_object_get(json_object_get(doc, "payload"), "custom_details"),
                          "notify_target", json_string(target));
  } else if (strcmp(type, "github") == 0) {
    doc = json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s}}", "event_type", "ripcord-rollback",
                    "client_payload", "service", str(ev, "service", NULL), "environment",
                    str(ev, "environment", NULL), "version", str(ev, "to", "version"),
                    "from_version", str(ev, "from", "version"), "artifact",
                    str(ev, "to", "artifact"), "idempotency_key", key, "trigger",
                    str(ev, "trigger", "name"));
    snprintf(out->header, sizeof(out->header), "Authorization: Bearer %s",
             secret ? secret : "");
  } else if (strcmp(type, "gitlab") == 0) {
    doc = json_pack("{s:s,s:s,s:{s:s,s:s,s:s,s:s,s:s,s:s}}", "token", secret ? secret : "",
                    "ref", ref && *ref ? ref : "main", "variables", "RIPCORD_ROLLBACK_VERSION",
                    str(ev, "to", "version"), "RIPCORD_ROLLBACK_FROM_VERSION",
                    str(ev, "from", "version"), "RIPCORD_ROLLBACK_SERVICE",
                    str(ev, "service", NULL), "RIPCORD_ROLLBACK_ENVIRONMENT",
                    str(ev, "environment", NULL), "RIPCORD_ROLLBACK_ARTIFACT",
                    str(ev, "to", "artifact"), "RIPCORD_ROLLBACK_KEY", key);
  } else if (strcmp(type, "alertmanager") == 0) {
    char starts[40];
    json_t *ca = json_object_get(ev, "created_at");
    rfc3339(json_is_integer(ca) ? (long long)json_integer_value(ca) : 0, starts, sizeof(starts));
    json_t *labels = json_pack("{s:s,s:s,s:s,s:s}", "alertname", "RipcordRollback", "service",
                               str(ev, "service", NULL), "environment",
                               str(ev, "environment", NULL), "trigger",
                               str(ev, "trigger", "name"));
    json_t *ann = json_pack("{s:s,s:s,s:s}", "summary", sum, "from_version",
                            str(ev, "from", "version"), "to_version", str(ev, "to", "version"));
    doc = json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:O,s:s,s:[{s:s,s:O,s:O,s:s,s:s,s:s,s:s}],s:i}",
                    "version", "4", "groupKey", key, "status", "firing", "receiver",
                    receiver ? receiver : "", "groupLabels", labels, "commonLabels", labels,
                    "commonAnnotations", ann, "externalURL", "", "alerts", "status", "firing",
                    "labels", labels, "annotations", ann, "startsAt", starts, "endsAt",
                    "0001-01-01T00:00:00Z", "generatorURL", "", "fingerprint", key,
                    "truncatedAlerts", 0);
    json_decref(labels);
    json_decref(ann);
    out->sign = 1;
  }
  if (doc != NULL) out->body = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(doc);
  json_decref(ev);
  return out->body ? 0 : -1;
}
