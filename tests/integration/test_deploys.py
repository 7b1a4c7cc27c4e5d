#!/usr/bin/env python3
"""test_deploys.py: the deploy registry over HTTP and its CLI, against a real daemon and its
real SQLite file — record, list, previous-version (HTTP and `ripcord previous-version`), bad
input answered 400 with a one-line reason, wrong methods, and the history surviving a
restart on the same --storage.path.

usage: test_deploys.py <ripcord-binary>
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Daemon, Runner, expect, expect_eq, request  # noqa: E402

JSON = [("Content-Type", "application/json")]


def post(port, obj):
    body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    if isinstance(body, str):
        body = body.encode()
    return request(port, "POST", "/api/v1/deploys", body, JSON)


def case_registry(exe, storage):
    d = Daemon(exe, ["--storage.path=" + storage]).start()
    try:
        ids = []
        for i, v in enumerate(["1.0.0", "1.1.0", "1.2.0"]):
            r = post(d.port, {"service": "checkout", "environment": "production", "version": v,
                              "artifact": "registry/checkout:" + v, "deployer": "ci",
                              "started_at": "2026-11-2%dT10:00:00Z" % i,
                              "migrations": [{"id": "m%d" % i, "reversible": i != 1}]})
            expect_eq(r.status, 201, "POST deploy %s (%r)" % (v, r.body))
            ids.append(json.loads(r.body)["id"])
        expect_eq(ids, [1, 2, 3], "ids")
        r = request(d.port, "GET", "/api/v1/deploys?service=checkout&environment=production")
        expect_eq(r.status, 200, "GET deploys")
        hist = json.loads(r.body)["data"]
        expect_eq([h["version"] for h in hist], ["1.2.0", "1.1.0", "1.0.0"], "newest first")
        expect_eq(hist[1]["migrations"], [{"id": "m1", "reversible": False}], "migrations kept")
        expect_eq(hist[0]["artifact"], "registry/checkout:1.2.0", "artifact")
        r = request(d.port, "GET", "/api/v1/deploys?service=checkout&environment=production&limit=1")
        expect_eq(len(json.loads(r.body)["data"]), 1, "limit")
        r = request(d.port, "GET", "/api/v1/services/checkout/production/previous-version")
        expect_eq((r.status, r.text), (200, "1.1.0\n"), "previous version over HTTP")
        p = subprocess.run([exe, "previous-version", "--service", "checkout", "--environment",
                            "production", "--url", "http://127.0.0.1:%d" % d.port],
                           capture_output=True, text=True, timeout=30)
        expect_eq((p.returncode, p.stdout), (0, "1.1.0\n"), "CLI (stderr %r)" % p.stderr)
        p = subprocess.run([exe, "previous-version", "--service", "nope", "--environment", "x",
                            "--url", "http://127.0.0.1:%d" % d.port],
                           capture_output=True, text=True, timeout=30)
        expect(p.returncode == 1 and "no previous version" in p.stderr, "CLI without history: "
               "%r", (p.returncode, p.stderr))
        p = subprocess.run([exe, "previous-version", "--service", "x"], capture_output=True,
                           text=True, timeout=30)
        expect_eq(p.returncode, 2, "CLI usage")
        # Names with characters a URL must escape round-trip through the CLI.
        r = post(d.port, {"service": "pay ments/eu", "environment": "prod", "version": "a"})
        r = post(d.port, {"service": "pay ments/eu", "environment": "prod", "version": "b"})
        p = subprocess.run([exe, "previous-version", "--service=pay ments/eu",
                            "--environment=prod", "--url=http://127.0.0.1:%d/" % d.port],
                           capture_output=True, text=True, timeout=30)
        expect_eq((p.returncode, p.stdout), (0, "a\n"), "escaped names (%r)" % p.stderr)
        d.stop()
    finally:
        d.cleanup()
    # Same storage path: the history is still there after a restart.
    d = Daemon(exe, ["--storage.path=" + storage]).start()
    try:
        r = request(d.port, "GET", "/api/v1/services/checkout/production/previous-version")
        expect_eq((r.status, r.text), (200, "1.1.0\n"), "previous version after a restart")
        d.stop()
    finally:
        d.cleanup()


def case_bad_input(exe, storage):
    d = Daemon(exe, ["--storage.path=" + storage]).start()
    try:
        cases = [
            (b"{", 400, "invalid JSON"),
            (b"{}", 400, "missing \\\"service\\\""),
            ({"service": "s", "environment": "e"}, 400, "missing \\\"version\\\""),
            ({"service": "s", "environment": "e", "version": "1", "extra": 1}, 400,
             "unknown field"),
            ({"service": "s" * 300, "environment": "e", "version": "1"}, 400, "longer than"),
            ({"service": "s", "environment": "e", "version": "1", "started_at": "soon"}, 400,
             "started_at"),
        ]
        for body, status, msg in cases:
            r = post(d.port, body)
            expect(r.status == status and msg in r.text and r.text.count("\n") == 1,
                   "bad deploy %r: %d %r", body, r.status, r.text)
        r = request(d.port, "DELETE", "/api/v1/deploys")
        expect_eq(r.status, 405, "DELETE deploys")
        r = request(d.port, "GET", "/api/v1/deploys?service=s")
        expect_eq(r.status, 400, "GET without environment")
        r = request(d.port, "POST", "/api/v1/services/a/b/previous-version")
        expect_eq(r.status, 405, "POST previous-version")
        r = request(d.port, "GET", "/api/v1/services/a/b/c/previous-version")
        expect_eq(r.status, 404, "too many path segments")
        r = request(d.port, "GET", "/api/v1/services/none/none/previous-version")
        expect_eq(r.status, 404, "no history")
        d.stop()
    finally:
        d.cleanup()


def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    r = Runner("test_deploys")
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="rc-deploys-")
    try:
        r.run("deploy registry: record, list, previous version (HTTP and CLI), restart",
              case_registry, exe, os.path.join(tmp, "a"))
        r.run("deploy registry: bad input and wrong methods", case_bad_input, exe,
              os.path.join(tmp, "b"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t0))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
