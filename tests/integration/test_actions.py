#!/usr/bin/env python3
"""test_actions.py: rollback events end to end — a real HTTP receiver on loopback records
every request; ripcord (real SQLite file, real restarts, real kill -9) must deliver each
rollback at least once with one idempotency key, signed, retried through 500s and hangs, and
never lose one across crashes.

usage: test_actions.py <ripcord-binary>
"""
import hashlib
import hmac
import http.server
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (V1, Daemon, Runner, expect, expect_eq, free_port, metric, post_write,  # noqa: E402
                     request, wait_until)

SECRET = "test-secret-%d" % random.randint(0, 1 << 30)


class Receiver:
    """Records POSTs; answers from a script (a list of statuses, or 'hang' to sleep past the
    client's timeout), then 204."""

    def __init__(self, port=None):
        self.requests = []
        self.paths = []
        self.script = []
        self.lock = threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with rec.lock:
                    rec.requests.append((dict(self.headers), body))
                    rec.paths.append(self.path)
                    action = rec.script.pop(0) if rec.script else 204
                if action == "hang":
                    time.sleep(3)
                    action = 204
                self.send_response(action)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.port = port or free_port()
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def keys(self):
        with self.lock:
            return [h.get("Idempotency-Key") for h, _ in self.requests]

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


def setup_dir(port, trigger_extra="", notify="      - webhook: deploy\n",
              action="previous_version"):
    tmp = tempfile.mkdtemp(prefix="rc-actions-")
    with open(os.path.join(tmp, "ripcord.yml"), "w") as f:
        f.write("rule_files: ['*.rollback.yml']\nreceivers:\n  - name: deploy\n"
                "    type: generic\n    url: http://127.0.0.1:%d/hook\n"
                "    secret_env: RC_TEST_SECRET\n    timeout: 1s\n" % port)
    with open(os.path.join(tmp, "checkout.rollback.yml"), "w") as f:
        f.write("rollback:\n  service: checkout\n  environment: production\n  triggers:\n"
                "    - name: bad\n      expr: max(bad_thing)\n      threshold: 1\n" + trigger_extra +
                "  action:\n    type: " + action + "\n    notify:\n" + notify)
    return tmp


def start(exe, tmp):
    os.environ["RC_TEST_SECRET"] = SECRET
    return Daemon(exe, ["--config.file=" + os.path.join(tmp, "ripcord.yml"),
                        "--storage.path=" + os.path.join(tmp, "data"),
                        "--rules.evaluation-interval=50ms"]).start()


def deploy(port, version, migrations=(), started_at=None, is_rollback=False,
           environment="production"):
    body = {"service": "checkout", "environment": environment, "version": version,
            "artifact": "reg/checkout:" + version, "is_rollback": is_rollback,
            "migrations": [{"id": m, "reversible": r} for m, r in migrations]}
    if started_at:
        body["started_at"] = started_at
    r = request(port, "POST", "/api/v1/deploys", json.dumps(body).encode(),
                [("Content-Type", "application/json")])
    expect_eq(r.status, 201, "deploy %s" % version)


def bad(port, value):
    # Evaluation is deploy-aware: only samples after the current deploy's start count, and a
    # deploy recorded this very millisecond would hide a sample stamped the same one.
    time.sleep(0.01)
    r = post_write(port, V1.request([V1.timeseries([("__name__", "bad_thing"), ("job", "x")],
                                                   [(value, int(time.time() * 1000))])]))
    expect_eq(r.status, 204, "write")


def rollbacks(port):
    return json.loads(request(port, "GET", "/api/v1/rollbacks").body)["data"]


def case_retries_and_signature(exe):
    rec = Receiver()
    rec.script = [500, 500, "hang"]  # two errors, one timeout, then 204
    tmp = setup_dir(rec.port)
    d = start(exe, tmp)
    try:
        deploy(d.port, "1.0.0")
        deploy(d.port, "1.1.0", [("m1", True), ("m2", True)])
        t0 = time.monotonic()
        bad(d.port, 5)
        wait_until(lambda: any(x["deliveries"] and x["deliveries"][0]["state"] == "delivered"
                               for x in rollbacks(d.port)), 20, what="delivered")
        ev = rollbacks(d.port)[0]
        expect_eq((ev["status"], ev["from"]["version"], ev["to"]["version"]),
                  ("rollback", "1.1.0", "1.0.0"), "event")
        expect_eq(ev["migrations_to_undo"], ["m2", "m1"], "migrations to undo, newest first")
        expect_eq((ev["trigger"]["name"], ev["trigger"]["value"], ev["trigger"]["threshold"]),
                  ("bad", 5.0, 1.0), "trigger in the event")
        dl = ev["deliveries"][0]
        expect_eq((dl["attempts"], dl["last_status"]), (4, 204), "attempts")
        keys = rec.keys()
        expect(len(keys) == 4 and len(set(keys)) == 1 and keys[0] == ev["idempotency_key"],
               "one key for every attempt: %s", keys)
        for h, body in rec.requests:
            ts = h["X-Ripcord-Timestamp"]
            want = hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
            expect_eq(h["X-Ripcord-Signature"], "sha256=" + want, "signature")
            expect_eq(json.loads(body)["idempotency_key"], keys[0], "key in the body")
        print("     | delivered after 2 errors and a timeout in %.2fs" % (time.monotonic() - t0))
        s = metric(d.port, "ripcord_webhook_deliveries_total")
        expect_eq(s, 1, "deliveries metric")
        # The current deploy was rolled back: previous-version skips it from now on.
        r = request(d.port, "GET", "/api/v1/services/checkout/production/previous-version")
        expect_eq(r.text, "1.0.0\n", "previous version")
        # A second firing of the same deploy is the same event: nothing new is sent.
        bad(d.port, 0)
        wait_until(lambda: requests_after(d.port), 5, what="resolved")
        bad(d.port, 7)
        time.sleep(1.0)
        statuses = [x["status"] for x in rollbacks(d.port)]
        expect_eq(statuses, ["rollback"], "one rollback per deploy")
        expect_eq(len(rec.keys()), 4, "no second delivery")
        # The audit trail says why nothing new was recorded: the event it repeats (not the
        # cooldown, which also applies then but is not the reason).
        fired = [e for e in json.loads(request(d.port, "GET", "/api/v1/audit?limit=1000").body)
                 ["data"]["entries"] if e["action"] == "trigger.fired"]
        dup = [e["detail"] for e in fired if e["detail"]["decision"] == "duplicate"]
        expect_eq(len(dup), 1, "one duplicate firing audited: %r" % fired)
        expect_eq((dup[0]["event"], dup[0]["reason"]),
                  (ev["id"], "this deploy already has its event %d (rollback)" % ev["id"]),
                  "the duplicate's event and reason")
        # A new deploy that goes bad within the cooldown (10 min) is not rolled back at once.
        deploy(d.port, "1.2.0")
        bad(d.port, 0)
        wait_until(lambda: requests_after(d.port), 5, what="resolved")
        bad(d.port, 9)
        wait_until(lambda: len(rollbacks(d.port)) == 2, 5, what="a second event")
        expect_eq(rollbacks(d.port)[0]["status"], "cooldown", "cooldown")
        expect_eq(len(rec.keys()), 4, "nothing sent in the cooldown")
        d.stop()
        # Restart: delivered rows are not sent again.
        d = start(exe, tmp)
        time.sleep(1.2)
        expect_eq(len(rec.keys()), 4, "nothing re-sent after a restart")
        d.stop()
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def requests_after(port):
    r = json.loads(request(port, "GET", "/api/v1/rules").body)
    return r["data"]["rules"][0]["triggers"][0]["state"] == "inactive"


def case_decisions(exe):
    """No deploy, dry run, an irreversible migration, the rollback window passed, a rollback of
    a rollback: recorded, not sent."""
    rec = Receiver()
    old = "2020-01-01T00:00:00Z"  # long past the 24 h rollback window
    cases = [
        ("no_deploy", "", []),
        ("dry_run", "      dry_run: true\n", [("1", [], None, False), ("2", [], None, False)]),
        ("needs_approval", "", [("1", [], None, False), ("2", [("drop_column", False)], None, False)]),
        ("needs_approval", "", [("1", [], "2019-12-31T00:00:00Z", False), ("2", [], old, False)]),
        ("rollback_of_rollback", "", [("1", [], None, False), ("2", [], None, False),
                                      ("1", [], None, True)]),
    ]
    try:
        for want, extra, deploys in cases:
            tmp = setup_dir(rec.port, extra)
            d = start(exe, tmp)
            try:
                for v, migs, started, is_rb in deploys:
                    deploy(d.port, v, migs, started, is_rb)
                bad(d.port, 3)
                wait_until(lambda: rollbacks(d.port), 10, what="an event")
                ev = rollbacks(d.port)[0]
                expect_eq((ev["status"], ev["deliveries"]), (want, []), "decision %s" % want)
                expect(ev["reason"], "a reason is given for %s", want)
                d.stop()
            finally:
                d.cleanup()
                shutil.rmtree(tmp, ignore_errors=True)
        expect_eq(rec.keys(), [], "nothing was sent")
    finally:
        rec.stop()


def case_rehearsal(exe):
    """approvals: rehearse_in: staging for production: an automatic rollback that would undo a
    migration waits for people unless a deploy of the service in staging that applied it was
    followed by a rollback deploy (the seed's "test rollbacks in staging before production")."""
    rec = Receiver()
    m1 = [("m1_add_column", True)]
    cases = [
        # (staging deploys [(version, migrations, is_rollback)], want status, want reason)
        ([("v1", [], False), ("v2", m1, False)], "needs_approval",
         "migration m1_add_column has never been rolled back in staging"),
        # Rolled back in staging, then deployed again: rehearsed.
        ([("v1", [], False), ("v2", m1, False), ("v1", [], True), ("v2", m1, False)],
         "rollback", ""),
        # A forward deploy after it is not a rollback of it.
        ([("v1", [], False), ("v2", m1, False), ("v3", [], False)], "needs_approval",
         "migration m1_add_column has never been rolled back in staging"),
    ]
    try:
        for staging, want, reason in cases:
            tmp = setup_dir(rec.port)
            with open(os.path.join(tmp, "ripcord.yml"), "a") as f:
                f.write("approvals:\n  - {environment: production, rehearse_in: staging}\n")
            d = start(exe, tmp)
            try:
                for v, migs, is_rb in staging:
                    deploy(d.port, v, migs, None, is_rb, environment="staging")
                deploy(d.port, "v1")
                deploy(d.port, "v2", m1)
                before = len(rec.keys())
                bad(d.port, 3)
                wait_until(lambda: rollbacks(d.port), 10, what="an event")
                ev = rollbacks(d.port)[0]
                expect_eq((ev["status"], ev["from"]["version"], ev["to"]["version"]),
                          (want, "v2", "v1"), "decision with staging %r" % (staging,))
                expect_eq(ev["migrations_to_undo"], ["m1_add_column"], "migrations to undo")
                if want == "rollback":
                    wait_until(lambda: len(rec.keys()) > before, 10, what="the rollback sent")
                else:
                    expect_eq(ev["reason"], reason, "reason")
                    time.sleep(0.3)
                    expect_eq(len(rec.keys()), before, "nothing sent while it waits")
                d.stop()
            finally:
                d.cleanup()
                shutil.rmtree(tmp, ignore_errors=True)
    finally:
        rec.stop()


def case_kill9(exe, rounds=20):
    """kill -9 at a random moment between the event being written and its delivery, 20 times:
    after each restart the event is delivered; the receiver's de-duplicated view has every
    event once. (A kill before the event is written loses the firing with the in-memory
    series store; the next firing after restart makes the same event, same key.)"""
    rec = Receiver()
    expected, t0 = [], time.monotonic()
    try:
        for i in range(rounds):
            rec.script = [500] * random.randint(0, 2)
            tmp = setup_dir(rec.port)
            d = start(exe, tmp)
            try:
                deploy(d.port, "a%d" % i)
                deploy(d.port, "b%d" % i)
                bad(d.port, 2)
                # Between the event being written (it is in the database once the API shows
                # it) and its delivery, which the scripted 500s stretch out.
                wait_until(lambda: rollbacks(d.port), 10, what="the event written #%d" % i)
                time.sleep(random.uniform(0, 0.3))
                d.proc.send_signal(signal.SIGKILL)
                d.proc.wait(10)
                d2 = start(exe, tmp)
                try:
                    wait_until(lambda: rollbacks(d2.port) and rollbacks(d2.port)[0]["deliveries"]
                               and rollbacks(d2.port)[0]["deliveries"][0]["state"] == "delivered",
                               15, what="delivered after kill -9 #%d" % i)
                    expected.append(rollbacks(d2.port)[0]["idempotency_key"])
                    d2.stop()
                finally:
                    d2.cleanup()
            finally:
                d.cleanup()
                shutil.rmtree(tmp, ignore_errors=True)
        got = set(rec.keys())
        expect(set(expected) <= got, "lost: %s", set(expected) - got)
        expect_eq(len(set(expected)), rounds, "distinct events")
        print("     | %d kill -9 rounds: %d events, %d requests at the receiver (%d repeats, all "
              "with the same key), %.1fs" % (rounds, len(expected), len(rec.keys()),
                                            len(rec.keys()) - len(got), time.monotonic() - t0))
    finally:
        rec.stop()


PRESETS_CONFIG = """rule_files: ['*.rollback.yml']
receivers:
  - {name: gen, type: generic, url: "http://127.0.0.1:%(p)d/gen", secret_env: RC_TEST_SECRET}
  - {name: chat, type: slack, url_env: RC_TEST_SLACK_URL, secret_env: RC_TEST_SECRET}
  - {name: pd, type: pagerduty, url: "http://127.0.0.1:%(p)d/pd", secret_env: RC_TEST_SECRET}
  - {name: gh, type: github, url: "http://127.0.0.1:%(p)d/gh", secret_env: RC_TEST_SECRET}
  - {name: gl, type: gitlab, url_file: "%(dir)s/gitlab.url", secret_env: RC_TEST_SECRET,
     ref: production}
  - {name: am, type: alertmanager, url: "http://127.0.0.1:%(p)d/am", secret_env: RC_TEST_SECRET}
"""


def case_presets(exe):
    """Every preset's exact payload, built from the same event."""
    rec = Receiver()
    tmp = setup_dir(rec.port, notify="      - webhook: gen\n      - slack: \"#deployments\"\n"
                    "      - pagerduty: checkout-oncall\n      - webhook: gh\n"
                    "      - webhook: gl\n      - webhook: am\n")
    with open(os.path.join(tmp, "ripcord.yml"), "w") as f:
        f.write(PRESETS_CONFIG % {"p": rec.port, "dir": tmp})
    # The Slack URL from a variable, GitLab's from a file: a webhook URL can be a credential.
    os.environ["RC_TEST_SLACK_URL"] = "http://127.0.0.1:%d/slack" % rec.port
    with open(os.path.join(tmp, "gitlab.url"), "w") as f:
        f.write("http://127.0.0.1:%d/gl\n" % rec.port)
    d = start(exe, tmp)
    try:
        deploy(d.port, "1.0.0")
        deploy(d.port, "1.1.0")
        bad(d.port, 3)
        wait_until(lambda: len(rec.paths) >= 6, 10, what="six deliveries")
        ev = rollbacks(d.port)[0]
        got = {p: (h, json.loads(b)) for p, (h, b) in zip(rec.paths, rec.requests)}
        key = ev["idempotency_key"]
        gen = dict(ev)
        del gen["deliveries"], gen["id"]  # the listing's, not the event's
        expect_eq(got["/gen"][1], gen, "generic: the event")
        summary = ("ripcord: rolling back checkout in production from 1.1.0 to 1.0.0: "
                   "bad = 3 (>= 1)")
        expect_eq(got["/slack"][1], {"text": summary, "channel": "#deployments"}, "slack")
        custom = dict(gen)
        custom["notify_target"] = "checkout-oncall"
        expect_eq(got["/pd"][1], {"routing_key": SECRET, "event_action": "trigger",
                                  "dedup_key": key,
                                  "payload": {"summary": summary, "source": "ripcord",
                                              "severity": "critical", "component": "checkout",
                                              "group": "production", "custom_details": custom}},
                  "pagerduty")
        expect_eq(got["/gh"][1], {"event_type": "ripcord-rollback",
                                  "client_payload": {"service": "checkout",
                                                     "environment": "production",
                                                     "version": "1.0.0", "from_version": "1.1.0",
                                                     "artifact": "reg/checkout:1.0.0",
                                                     "idempotency_key": key, "trigger": "bad"}},
                  "github")
        expect_eq(got["/gh"][0].get("Authorization"), "Bearer " + SECRET, "github token")
        expect_eq(got["/gl"][1], {"token": SECRET, "ref": "production", "variables": {
            "RIPCORD_ROLLBACK_VERSION": "1.0.0", "RIPCORD_ROLLBACK_FROM_VERSION": "1.1.0",
            "RIPCORD_ROLLBACK_SERVICE": "checkout", "RIPCORD_ROLLBACK_ENVIRONMENT": "production",
            "RIPCORD_ROLLBACK_ARTIFACT": "reg/checkout:1.0.0", "RIPCORD_ROLLBACK_KEY": key}},
                  "gitlab")
        am = got["/am"][1]
        labels = {"alertname": "RipcordRollback", "service": "checkout",
                  "environment": "production", "trigger": "bad"}
        ann = {"summary": summary, "from_version": "1.1.0", "to_version": "1.0.0"}
        starts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ev["created_at"] // 1000)) + \
            ".%03dZ" % (ev["created_at"] % 1000)
        expect_eq(am, {"version": "4", "groupKey": key, "status": "firing", "receiver": "am",
                       "groupLabels": labels, "commonLabels": labels, "commonAnnotations": ann,
                       "externalURL": "", "truncatedAlerts": 0,
                       "alerts": [{"status": "firing", "labels": labels, "annotations": ann,
                                   "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z",
                                   "generatorURL": "", "fingerprint": key}]}, "alertmanager")
        # Signed: generic, slack, alertmanager; the others carry their secret as their API
        # wants and no signature.
        for p in ("/gen", "/slack", "/am"):
            expect("X-Ripcord-Signature" in got[p][0], "%s signed", p)
        for p in ("/pd", "/gh", "/gl"):
            expect("X-Ripcord-Signature" not in got[p][0], "%s not signed", p)
            expect_eq(got[p][0].get("Idempotency-Key"), key, "%s key" % p)
        # The trigger stops firing: PagerDuty (the receiver that tracks incidents) is told
        # to resolve the incident it opened, under the same dedup key; nobody else hears.
        bad(d.port, 0)
        wait_until(lambda: len(rec.paths) >= 7, 10, what="the resolve")
        time.sleep(0.3)
        expect_eq(rec.paths[6:], ["/pd"], "only pagerduty hears of the resolve")
        expect_eq(json.loads(rec.requests[6][1]), {"routing_key": SECRET,
                                                   "event_action": "resolve",
                                                   "dedup_key": key}, "pagerduty resolve")
        res = [e for e in rollbacks(d.port) if e["status"] == "resolved"]
        expect(len(res) == 1 and res[0]["resolves"] == key and
               res[0]["idempotency_key"] != key and
               res[0]["idempotency_key"] == rec.requests[6][0].get("Idempotency-Key"),
               "one resolved event with its own key: %s", res)
        # Both facts are in the audit trail (open mode: no token needed on loopback).
        audit = json.loads(request(d.port, "GET", "/api/v1/audit?limit=1000").body)
        acts = [e["action"] for e in audit["data"]["entries"]]
        expect("trigger.fired" in acts and "trigger.resolved" in acts and
               acts.count("delivery.delivered") == 7, "audit: %s", acts)
        d.stop()
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def case_notify_and_receiver_down(exe):
    """action: notify tells the receiver and rolls nothing back; a receiver that is down (port
    closed) when the event is written gets it once it comes up, the refusals counted."""
    port = free_port()
    tmp = setup_dir(port, action="notify")
    d = start(exe, tmp)
    rec = None
    try:
        deploy(d.port, "1.0.0")
        deploy(d.port, "1.1.0")
        bad(d.port, 4)
        wait_until(lambda: rollbacks(d.port) and rollbacks(d.port)[0]["deliveries"] and
                   rollbacks(d.port)[0]["deliveries"][0]["attempts"] >= 2, 10,
                   what="two refused attempts")
        expect_eq(rollbacks(d.port)[0]["status"], "notify", "status")
        rec = Receiver(port)  # comes up on the port the daemon keeps retrying
        wait_until(lambda: rollbacks(d.port)[0]["deliveries"][0]["state"] == "delivered", 15,
                   what="delivered once the receiver is up")
        dl = rollbacks(d.port)[0]["deliveries"][0]
        expect(dl["attempts"] >= 3 and len(rec.keys()) == 1, "attempts %s, requests %s",
               dl["attempts"], rec.keys())
        r = request(d.port, "GET", "/api/v1/services/checkout/production/previous-version")
        expect_eq(r.text, "1.0.0\n", "notify did not mark the deploy rolled back")
        expect(metric(d.port, "ripcord_webhook_failed_attempts_total") >= 2, "refusals counted")
        d.stop()
    finally:
        d.cleanup()
        if rec is not None:
            rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    r = Runner("test_actions")
    t0 = time.monotonic()
    r.run("rollback delivered through 500s and a timeout, signed, once per deploy",
          case_retries_and_signature, exe)
    r.run("no deploy, dry run, irreversible migration: recorded, not sent", case_decisions, exe)
    r.run("rehearse_in: a migration never rolled back in staging waits for approval",
          case_rehearsal, exe)
    r.run("presets: generic, Slack, PagerDuty, GitHub, GitLab, Alertmanager payloads", case_presets,
          exe)
    r.run("action notify, and a receiver that is down until after the event",
          case_notify_and_receiver_down, exe)
    r.run("kill -9 between the event and its delivery, 20 times: nothing lost", case_kill9, exe)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t0))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
