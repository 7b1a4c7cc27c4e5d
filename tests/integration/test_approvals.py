#!/usr/bin/env python3
"""test_approvals.py: identities, the approval gate and the audit trail end to end — a real
ripcord with tokens (generated here, handed over in environment variables and a file), a real
HTTP receiver for the rollback webhook, the CLI (`ripcord rollback|approve|reject|audit`),
restarts in the middle of an approval, and tampering with a copy of the SQLite file.

usage: test_approvals.py <ripcord-binary>
"""
import base64
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (V1, Daemon, Runner, expect, expect_eq, free_port, json_request,  # noqa: E402
                     post_write, wait_until)
from test_actions import Receiver  # noqa: E402

# Identity -> roles; tokens are made per run, never written in the repo.
IDENTITIES = {
    "prom": ["writer"],
    "ci": ["deployer"],
    "rita": ["deployer", "approver"],  # requests rollbacks and could approve others'
    "dana": ["approver"],              # deploys (as the deploy's deployer field)
    "alice": ["approver"],
    "bob": ["approver"],
    "carl": ["approver"],
    "erin": ["approver"],              # not eligible in production (not listed)
    "vic": ["viewer"],
    "root": ["admin"],
}
TOKENS = {name: secrets.token_hex(20) for name in IDENTITIES}


def write_config(tmp, receiver_port, staging_timeout="3s"):
    ids = []
    for name, roles in IDENTITIES.items():
        src = "token_env: RC_TOK_%s" % name.upper()
        if name == "prom":  # one from a file, as a Kubernetes secret would be
            path = os.path.join(tmp, "prom.token")
            with open(path, "w") as f:
                f.write(TOKENS[name] + "\n")
            os.chmod(path, 0o600)
            src = "token_file: " + path
        groups = "    groups: [sre]\n" if name in ("carl",) else ""
        ids.append("  - name: %s\n    roles: [%s]\n%s    %s\n" % (name, ", ".join(roles), groups, src))
    with open(os.path.join(tmp, "ripcord.yml"), "w") as f:
        f.write("rule_files: ['*.rollback.yml']\n"
                "receivers:\n  - name: deploy\n    type: generic\n"
                "    url: http://127.0.0.1:%d/hook\n    secret_env: RC_TEST_SECRET\n"
                "    timeout: 1s\n" % receiver_port)
        f.write("identities:\n" + "".join(ids))
        f.write("approvals:\n"
                "  - environment: production\n    required: 2\n"
                "    approvers: [alice, bob, rita, dana]\n    approver_groups: [sre]\n"
                "  - environment: staging\n    required: 1\n    timeout: %s\n" % staging_timeout)
    with open(os.path.join(tmp, "checkout.rollback.yml"), "w") as f:
        f.write("rollbacks:\n")
        for env in ("production", "staging"):
            f.write("  - service: checkout\n    environment: %s\n    triggers:\n"
                    "      - name: bad\n        expr: max(bad_thing{env=\"%s\"})\n"
                    "        threshold: 1\n"
                    "    action:\n      type: previous_version\n      notify:\n"
                    "        - webhook: deploy\n" % (env, env))


def env_with_tokens():
    env = dict(os.environ)
    for name, tok in TOKENS.items():
        env["RC_TOK_%s" % name.upper()] = tok
    env["RC_TEST_SECRET"] = secrets.token_hex(16)
    return env


def start(exe, tmp, extra=()):
    os.environ.update(env_with_tokens())
    return Daemon(exe, ["--config.file=" + os.path.join(tmp, "ripcord.yml"),
                        "--storage.path=" + os.path.join(tmp, "data"),
                        "--rules.evaluation-interval=50ms"] + list(extra)).start()


def auth(name):
    return [("Authorization", "Bearer " + TOKENS[name])]


def api(port, method, path, who=None, body=None):
    return json_request(port, method, path, TOKENS[who] if who else None, body)


def deploy(port, version, env="production", deployer="dana", migrations=(), who="ci"):
    r, _ = api(port, "POST", "/api/v1/deploys", who, {
        "service": "checkout", "environment": env, "version": version,
        "artifact": "reg/checkout:" + version, "deployer": deployer,
        "migrations": [{"id": m, "reversible": rv} for m, rv in migrations]})
    expect_eq(r.status, 201, "deploy %s" % version)
    time.sleep(0.01)


def cli(exe, args, who=None, url=None):
    env = dict(os.environ)
    env.pop("RIPCORD_TOKEN", None)
    if who:
        env["RIPCORD_TOKEN"] = TOKENS[who]
    argv = [exe] + args + (["--url", url] if url else [])
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def event(port, eid):
    r, doc = api(port, "GET", "/api/v1/rollbacks/%d" % eid, "vic")
    expect_eq(r.status, 200, "GET rollback %d" % eid)
    return doc["data"]


# ---------------------------------------------------------------------------------------------


def case_tokens(exe):
    """401 without or with a bad token, 403 for a role that may not act, each with a reason;
    health open; remote write with Bearer and with Basic (as Prometheus sends either)."""
    tmp = tempfile.mkdtemp(prefix="rc-appr-")
    write_config(tmp, free_port())
    d = start(exe, tmp)
    try:
        sample = V1.request([V1.timeseries([("__name__", "up"), ("job", "x")],
                                           [(1, int(time.time() * 1000))])])
        r = post_write(d.port, sample)
        expect_eq(r.status, 401, "write without a token")
        expect("authentication required" in r.body.decode(), "reason: %r", r.body)
        expect("Bearer" in (r.header("WWW-Authenticate") or ""), "challenge: %r", r.headers)
        r = post_write(d.port, sample, extra=[("Authorization", "Bearer " + "x" * 40)])
        expect_eq((r.status, "invalid token" in r.body.decode()), (401, True), "bad token")
        expect(TOKENS["prom"] not in r.body.decode(), "no token echoed")
        r = post_write(d.port, sample, extra=auth("prom"))
        expect_eq(r.status, 204, "write with the writer's Bearer token")
        basic = base64.b64encode(("prom:" + TOKENS["prom"]).encode()).decode()
        r = post_write(d.port, sample, extra=[("Authorization", "Basic " + basic)])
        expect_eq(r.status, 204, "write with Basic auth (token from a file)")
        basic = base64.b64encode(("vic:" + TOKENS["prom"]).encode()).decode()
        r = post_write(d.port, sample, extra=[("Authorization", "Basic " + basic)])
        expect_eq(r.status, 401, "Basic with another identity's name")
        r = post_write(d.port, sample, extra=auth("vic"))
        expect_eq(r.status, 403, "viewer writing")
        expect("needs writer" in r.body.decode() and '"vic"' in r.body.decode(),
               "403 reason: %r", r.body)
        r, doc = api(d.port, "GET", "/metrics", "prom")
        expect_eq(r.status, 403, "writer reading /metrics")
        r, doc = api(d.port, "GET", "/api/v1/rules")
        expect_eq((r.status, doc["errorType"]), (401, "unauthorized"), "API without a token: JSON")
        r, _ = api(d.port, "GET", "/no/such/path")
        expect_eq(r.status, 401, "unknown path without a token is 401, not 404")
        r, _ = api(d.port, "GET", "/-/healthy")
        expect_eq(r.status, 200, "health is open")
        r, _ = api(d.port, "GET", "/api/v1/rules", "vic")
        expect_eq(r.status, 200, "viewer reads rules")
        r, doc = api(d.port, "POST", "/-/reload", "vic")
        expect_eq(r.status, 403, "viewer reloading")
        r, _ = api(d.port, "POST", "/-/reload", "root")
        expect_eq(r.status, 200, "admin reloads")
        r, doc = api(d.port, "POST", "/api/v1/deploys", "alice", {"service": "x"})
        expect_eq(r.status, 403, "approver recording a deploy")
        r, doc = api(d.port, "POST", "/api/v1/rollbacks/1/approve", "ci")
        expect_eq(r.status, 403, "deployer approving")
        # The CLI shows the server's reason and exits 1.
        rc, out, err = cli(exe, ["previous-version", "--service", "checkout", "--environment",
                                 "production"], url="http://127.0.0.1:%d" % d.port)
        expect_eq(rc, 1, "previous-version without a token")
        expect("HTTP 401" in err and "authentication required" in err, "cli reason: %r", err)
        d.stop()
    finally:
        d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def case_listen_rules(exe):
    """No identities: fine on loopback (with a warning), refused beyond it unless --web.insecure;
    with identities any address is allowed."""
    tmp = tempfile.mkdtemp(prefix="rc-appr-")
    try:
        with open(os.path.join(tmp, "empty.yml"), "w") as f:
            f.write("rule_files: []\n")
        argv = [exe, "serve", "--config.file=" + os.path.join(tmp, "empty.yml"),
                "--storage.path=" + os.path.join(tmp, "data"), "--web.listen-address=0.0.0.0:0"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        expect_eq(p.returncode, 1, "no identities beyond loopback")
        expect("refusing to listen beyond loopback without authentication" in p.stderr and
               "--web.insecure" in p.stderr, "reason: %r", p.stderr[-400:])
        d = Daemon(exe, ["--config.file=" + os.path.join(tmp, "empty.yml")]).start()
        try:
            expect("no identities configured" in d.log(), "warning on loopback")
            d.stop()
        finally:
            d.cleanup()
        # Bound to all interfaces but only spoken to over loopback.
        d = Daemon(exe, ["--config.file=" + os.path.join(tmp, "empty.yml"),
                         "--web.listen-address=0.0.0.0:0", "--web.insecure"]).start()
        try:
            r, _ = api(d.port, "GET", "/-/healthy")
            expect_eq(r.status, 200, "--web.insecure starts")
            d.stop()
        finally:
            d.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_manual_gate(exe):
    """ripcord rollback -> every policy branch through the CLI and the API -> two approvals
    open the gate -> the webhook arrives once, as an automatic one would; then a rejection."""
    rec = Receiver()
    tmp = tempfile.mkdtemp(prefix="rc-appr-")
    write_config(tmp, rec.port)
    d = start(exe, tmp)
    url = "http://127.0.0.1:%d" % (d.port)
    try:
        deploy(d.port, "1.0.0")
        deploy(d.port, "1.1.0")
        rc, out, err = cli(exe, ["rollback", "--service", "checkout", "--environment", "production",
                                 "--reason", "p99 doubled after 1.1.0"], who="rita", url=url)
        expect_eq(rc, 0, "rollback request: %s %s" % (out, err))
        expect("1.1.0 -> 1.0.0" in out and "2 approval" in out, "cli says: %r", out)
        eid = int(out.split()[2].rstrip(":"))
        ev = event(d.port, eid)
        expect_eq((ev["status"], ev["approval"]["state"], ev["approval"]["requester"],
                   ev["deliveries"]), ("needs_approval", "pending", "rita", []), "pending")
        # One pending request per target.
        r, doc = api(d.port, "POST", "/api/v1/rollbacks", "ci", {
            "service": "checkout", "environment": "production", "reason": "again"})
        expect_eq(r.status, 409, "second request")
        expect("already has a pending rollback request" in doc["error"], "%r", doc)
        r, doc = api(d.port, "POST", "/api/v1/rollbacks", "ci", {"service": "checkout"})
        expect_eq((r.status, "missing field: environment" in doc["error"]), (400, True),
                  "bad manual request")
        # Policy branches, each a clear refusal.
        branches = [
            ("rita", 403, "no self-approval: \"rita\" requested this rollback"),
            ("dana", 403, "no self-approval: \"dana\" deployed the version"),
            ("erin", 403, "not an eligible approver of request %d" % eid),
        ]
        for who, status, text in branches:
            rc, out, err = cli(exe, ["approve", str(eid)], who=who, url=url)
            expect(rc == 1 and ("HTTP %d" % status) in err and text in err,
                   "%s: rc=%d %r", who, rc, err)
        r, doc = api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "vic")
        expect_eq(r.status, 403, "viewer approving (role)")
        rc, out, err = cli(exe, ["approve", str(eid), "--comment", "saw it too"], who="alice",
                           url=url)
        expect(rc == 0 and "pending (1 of 2 approvals)" in out, "alice: %r %r", out, err)
        rc, out, err = cli(exe, ["approve", str(eid)], who="alice", url=url)
        expect(rc == 1 and "HTTP 409" in err and "distinct identities" in err, "alice again: %r",
               err)
        expect_eq(rec.keys(), [], "nothing sent before the gate opens")
        # carl is eligible through his group.
        rc, out, err = cli(exe, ["approve", str(eid)], who="carl", url=url)
        expect(rc == 0 and "approved (2 of 2 approvals)" in out, "carl: %r %r", out, err)
        wait_until(lambda: event(d.port, eid)["deliveries"] and
                   event(d.port, eid)["deliveries"][0]["state"] == "delivered", 10,
                   what="delivered after approval")
        ev = event(d.port, eid)
        expect_eq(len(rec.requests), 1, "one webhook")
        sent = json.loads(rec.requests[0][1])
        expect_eq((sent["status"], sent["to"]["version"], sent["approved_by"],
                   sent["requested_by"], sent["kind"]),
                  ("rollback", "1.0.0", ["alice", "carl"], "rita", "manual_rollback"),
                  "the webhook's event")
        expect_eq(rec.requests[0][0]["Idempotency-Key"], ev["idempotency_key"], "key")
        rc, out, err = cli(exe, ["approve", str(eid)], who="bob", url=url)
        expect(rc == 1 and "is closed: approved by carl" in err, "after: %r", err)
        # A rejection closes the next one.
        deploy(d.port, "1.2.0")
        r, doc = api(d.port, "POST", "/api/v1/rollbacks", "ci", {
            "service": "checkout", "environment": "production", "reason": "try again"})
        expect_eq(r.status, 202, "request after a new deploy: %s" % (doc,))
        eid2 = doc["data"]["id"]
        rc, out, err = cli(exe, ["reject", str(eid2), "--comment", "the CDN, not us"], who="bob",
                           url=url)
        expect(rc == 0 and "rejected" in out, "reject: %r %r", out, err)
        rc, out, err = cli(exe, ["approve", str(eid2)], who="alice", url=url)
        expect(rc == 1 and "is closed: rejected by bob" in err, "approve after reject: %r", err)
        rc, out, err = cli(exe, ["approve", "999999"], who="alice", url=url)
        expect(rc == 1 and "HTTP 404" in err and "no rollback request 999999" in err,
               "unknown: %r", err)
        expect_eq(event(d.port, eid2)["status"], "rejected", "event status")
        expect_eq(len(rec.requests), 1, "nothing sent for the rejected one")
        d.stop()
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def case_automatic_gate_and_restart(exe):
    """An irreversible migration turns a firing into an approval request; a restart between the
    first and second approval keeps both; the second approval sends the webhook."""
    rec = Receiver()
    tmp = tempfile.mkdtemp(prefix="rc-appr-")
    write_config(tmp, rec.port)
    d = start(exe, tmp)
    try:
        deploy(d.port, "1.0.0")
        deploy(d.port, "1.1.0", migrations=[("drop_column_x", False)])
        r = post_write(d.port, V1.request([V1.timeseries(
            [("__name__", "bad_thing"), ("env", "production")], [(5, int(time.time() * 1000))])]),
            extra=auth("prom"))
        expect_eq(r.status, 204, "write")
        eid = wait_until(lambda: [e["id"] for e in api(d.port, "GET",
                                                         "/api/v1/rollbacks?status=needs_approval",
                                                         "vic")[1]["data"]], 10,
                         what="an approval request")[0]
        ev = event(d.port, eid)
        expect_eq((ev["approval"]["requester"], ev["approval"]["required"],
                   ev["approval"]["deployers"]), (None, 2, ["dana", "ci"]),
                  "automatic request: no requester, deployer and recorder barred")
        expect("irreversible migration" in ev["reason"], "reason: %r", ev["reason"])
        r, doc = api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "alice")
        expect_eq(r.status, 200, "first approval")
        d.stop()
        d = start(exe, tmp)
        expect_eq(event(d.port, eid)["approval"]["approvals"], 1, "the approval survived")
        r, doc = api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "alice")
        expect_eq(r.status, 409, "alice again after the restart")
        r, doc = api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "bob")
        expect_eq((r.status, doc["data"]["state"]), (200, "approved"), "second approval")
        wait_until(lambda: len(rec.requests) == 1, 10, what="the webhook")
        expect_eq(json.loads(rec.requests[0][1])["approved_by"], ["alice", "bob"], "approved_by")
        d.stop()
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def case_expiry_across_restart(exe):
    """A request in staging with a 3 s time box: ripcord is stopped and started again before
    it expires; it expires on time afterwards with nobody voting; approving it then is a clear
    error. Another expires while ripcord is down and is closed at start."""
    rec = Receiver()
    tmp = tempfile.mkdtemp(prefix="rc-appr-")
    write_config(tmp, rec.port, staging_timeout="3s")
    d = start(exe, tmp)
    try:
        deploy(d.port, "2.0.0", env="staging")
        deploy(d.port, "2.1.0", env="staging")
        r, doc = api(d.port, "POST", "/api/v1/rollbacks", "rita", {
            "service": "checkout", "environment": "staging", "reason": "staging is broken"})
        expect_eq(r.status, 202, "request")
        eid = doc["data"]["id"]
        expires = doc["data"]["approval"]["expires_at"]
        d.stop()
        d = start(exe, tmp)
        expect_eq(event(d.port, eid)["approval"]["state"], "pending", "still pending after restart")
        wait_until(lambda: event(d.port, eid)["approval"]["state"] == "expired", 8,
                   what="expiry after the restart")
        late = time.time() * 1000 - expires
        expect(late < 2000, "expired on time (%.0f ms after its time)", late)
        expect_eq(event(d.port, eid)["approval"]["closed_at"], expires, "closed at its time")
        r, doc = api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "alice")
        expect_eq(r.status, 409, "approve after expiry")
        expect("expired at" in doc["error"], "reason: %r", doc)
        # Expires while ripcord is down.
        r, doc = api(d.port, "POST", "/api/v1/rollbacks", "rita", {
            "service": "checkout", "environment": "staging", "reason": "once more"})
        expect_eq(r.status, 202, "second request")
        eid2 = doc["data"]["id"]
        d.stop()
        time.sleep(3.5)
        d = start(exe, tmp)
        expect_eq(event(d.port, eid2)["approval"]["state"], "expired", "closed at start")
        expect("approval requests expired while ripcord was down" in d.log(), "logged")
        expect_eq(rec.keys(), [], "nothing sent")
        d.stop()
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def tamper(src_dir, sql):
    """A copy of the data directory with sql applied to its database, as an attacker with the
    file would; returns the copy's path."""
    dst = tempfile.mkdtemp(prefix="rc-tamper-")
    shutil.rmtree(dst)
    shutil.copytree(src_dir, dst)
    if sql:
        db = sqlite3.connect(os.path.join(dst, "ripcord.db"))
        db.executescript(sql)
        db.commit()
        db.close()
    return dst


def case_audit(exe):
    """Everything above leaves an audit trail: GET /api/v1/audit pages through it, `ripcord
    audit verify` passes, and edit, delete, reorder and truncate are each detected; export
    writes JSON lines."""
    rec = Receiver()
    tmp = tempfile.mkdtemp(prefix="rc-appr-")
    write_config(tmp, rec.port)
    d = start(exe, tmp)
    data = os.path.join(tmp, "data")
    try:
        deploy(d.port, "1.0.0")
        deploy(d.port, "1.1.0")
        r, doc = api(d.port, "POST", "/api/v1/rollbacks", "rita", {
            "service": "checkout", "environment": "production", "reason": "audit me"})
        eid = doc["data"]["id"]
        api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "dana")  # refused: deployer
        api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "alice")
        api(d.port, "POST", "/api/v1/rollbacks/%d/approve" % eid, "bob")
        wait_until(lambda: len(rec.requests) == 1, 10, what="the webhook")
        api(d.port, "POST", "/-/reload", "root")

        def actions():
            r, doc = api(d.port, "GET", "/api/v1/audit?limit=1000", "vic")
            return [(e["actor"], e["action"]) for e in reversed(doc["data"]["entries"])]
        want = [("ripcord:start", "rules.loaded"), ("ci", "deploy.recorded"),
                ("ci", "deploy.recorded"), ("rita", "rollback.requested"),
                ("rita", "approval.requested"), ("dana", "approval.refused"),
                ("alice", "approval.approved"), ("bob", "approval.approved"),
                ("ripcord", "rollback.released"), ("ripcord", "delivery.delivered"),
                ("root", "rules.reloaded")]
        wait_until(lambda: actions() == want, 5, what="the audit entries %r, got %r" % (want, actions()))
        r, doc = api(d.port, "GET", "/api/v1/audit?limit=2", "vic")
        expect_eq(len(doc["data"]["entries"]), 2, "a page")
        r, doc = api(d.port, "GET", "/api/v1/audit?limit=0", "vic")
        expect_eq(r.status, 400, "bad limit")
        r, doc = api(d.port, "GET", "/api/v1/audit")
        expect_eq(r.status, 401, "audit needs a token")
        r, doc = api(d.port, "GET", "/api/v1/audit?limit=1000", "vic")
        reload_entry = doc["data"]["entries"][0]
        files = reload_entry["detail"]["files"]
        path = os.path.join(tmp, "checkout.rollback.yml")
        with open(path, "rb") as f:
            expect_eq(files.get(path), hashlib.sha256(f.read()).hexdigest(), "file hash")
        d.stop()
        rc, out, err = cli(exe, ["audit", "verify", "--storage.path", data])
        expect(rc == 0 and "chain intact" in out, "verify: %r %r", out, err)
        rc, out, err = cli(exe, ["audit", "export", "--storage.path", data, "--since", "1h"])
        lines = [json.loads(x) for x in out.splitlines()]
        expect_eq([e["action"] for e in lines], [a for _, a in want], "export")
        cases = [
            ("edit", "UPDATE audit SET actor = 'mallory' WHERE seq = 7;", "row 7 was edited"),
            ("delete", "DELETE FROM audit WHERE seq = 5;", "row 5 is missing"),
            ("reorder", "UPDATE audit SET seq = -1 WHERE seq = 6; UPDATE audit SET seq = 6 WHERE"
                        " seq = 7; UPDATE audit SET seq = 7 WHERE seq = -1;",
             "row 6 does not follow row 5"),
            ("truncate", "DELETE FROM audit WHERE seq > 8;", "truncated"),
        ]
        for name, sql, text in cases:
            copy = tamper(data, sql)
            try:
                rc, out, err = cli(exe, ["audit", "verify", "--storage.path", copy])
                expect(rc == 1 and "TAMPERED" in err and text in err, "%s: rc=%d %r %r", name,
                       rc, out, err)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
        rc, out, err = cli(exe, ["audit", "verify", "--storage.path", data, "--head",
                                 "3:" + "0" * 64])
        expect(rc == 1 and "--head" in err, "external anchor mismatch: %r", err)
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    r = Runner("test_approvals")
    t0 = time.monotonic()
    r.run("tokens: 401 and 403 with reasons, Bearer and Basic remote write", case_tokens, exe)
    r.run("no identities: loopback only unless --web.insecure", case_listen_rules, exe)
    r.run("manual rollback through the gate: every refusal, two approvals, a rejection",
          case_manual_gate, exe)
    r.run("irreversible migration -> approval request; restart between approvals",
          case_automatic_gate_and_restart, exe)
    r.run("expiry on time across a restart, and while ripcord is down", case_expiry_across_restart,
          exe)
    r.run("audit trail: entries, paging, verify, tampering detected, export", case_audit, exe)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t0))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
