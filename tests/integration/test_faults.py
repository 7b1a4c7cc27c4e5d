#!/usr/bin/env python3
"""test_faults.py: a full disk and a read-only data directory, made real for the daemon by an
LD_PRELOAD shim (fault_shim.c) that fails the data directory's writes on demand: SQLite meets
ENOSPC / EROFS in its own VFS, as on a real full disk.

What must hold: the failure is reported loudly (an error log line, ripcord_storage_writable 0);
a rollback that fires meanwhile is held in memory, not lost, and made and delivered once when
the disk has room again; a delivery whose outcome cannot be written is not sent twice;
deploys are answered 503 with Retry-After and a one-line reason (the pipeline retries);
remote write keeps being accepted and rules keep being evaluated; a data directory that is
read-only at start stops the start with a clear error.

usage: test_faults.py <ripcord-binary> <fault_shim.so>
"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Runner, expect, expect_eq, metric, request, scrape, wait_until  # noqa: E402
import test_actions as ta  # noqa: E402

SHIM = None


class Fault:
    """The flag file the shim reads: set('ENOSPC'), set('EROFS'), clear()."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "fault.flag")

    def set(self, what):
        with open(self.path, "w") as f:
            f.write(what)

    def clear(self):
        if os.path.exists(self.path):
            os.unlink(self.path)


def preload(exe):
    """LD_PRELOAD for exe: the shim, after AddressSanitizer's runtime when exe links it (ASan
    insists on coming first in the library list)."""
    libs = [SHIM]
    try:
        out = subprocess.run(["ldd", exe], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("libasan") and len(parts) >= 3:
            libs.insert(0, parts[2])
    return ":".join(libs)


def fault_env(exe, data, fault):
    return {"LD_PRELOAD": preload(exe), "RIPCORD_FAULT_DIR": data,
            "RIPCORD_FAULT_FLAG": fault.path}


def start_faulty(exe, tmp, fault):
    """The daemon with the shim preloaded (only it: the variables are removed once it runs)."""
    env = fault_env(exe, os.path.join(tmp, "data"), fault)
    os.environ.update(env)
    try:
        return ta.start(exe, tmp)
    finally:
        for k in env:
            os.environ.pop(k, None)


def gauge(port, name):
    return metric(scrape(port), name)


def case_full_disk_holds_the_rollback(exe):
    rec = ta.Receiver()
    tmp = ta.setup_dir(rec.port)
    fault = Fault(tmp)
    d = start_faulty(exe, tmp, fault)
    try:
        ta.deploy(d.port, "1.0.0")
        ta.deploy(d.port, "1.1.0")
        expect_eq(gauge(d.port, "ripcord_storage_writable"), 1.0, "writable before")
        fault.set("ENOSPC")
        ta.bad(d.port, 5)  # remote write is still accepted (204, checked by bad())
        wait_until(lambda: gauge(d.port, "ripcord_rollback_events_held") == 1.0, 10,
                   what="the firing held")
        expect_eq(gauge(d.port, "ripcord_storage_writable"), 0.0, "reported not writable")
        log = d.log()
        expect("THE EMBEDDED STORE CANNOT BE WRITTEN" in log and "disk is full" in log,
               "a loud error naming the cause:\n%s", log[-2000:])
        expect_eq(ta.rollbacks(d.port), [], "nothing recorded while the disk is full")
        # Deploy systems are told to come back, with why.
        body = json.dumps({"service": "checkout", "environment": "production",
                           "version": "1.2.0"}).encode()
        r = request(d.port, "POST", "/api/v1/deploys", body, [("Content-Type", "application/json")])
        expect_eq(r.status, 503, "deploy while the disk is full")
        expect(r.header("Retry-After"), "Retry-After on the 503")
        expect("disk is full" in r.text and "\n" not in r.text.strip(),
               "one-line reason: %r", r.text)
        # Ingest and evaluation go on: a newer sample changes the rule's value.
        ta.bad(d.port, 7)
        wait_until(lambda: '"value":7' in request(d.port, "GET", "/api/v1/rules").text
                   .replace(" ", ""), 10, what="rules evaluated on new data")
        time.sleep(1.5)  # a retry or two happen meanwhile, and must fail quietly
        expect_eq(rec.keys(), [], "nothing sent while the event is not recorded")
        expect_eq(gauge(d.port, "ripcord_rollback_events_held"), 1.0, "still one held")
        fault.clear()
        wait_until(lambda: ta.rollbacks(d.port) and ta.rollbacks(d.port)[0]["deliveries"] and
                   ta.rollbacks(d.port)[0]["deliveries"][0]["state"] == "delivered", 45,
                   what="recorded and delivered once the disk has room")
        ev = ta.rollbacks(d.port)[0]
        expect_eq((ev["status"], ev["from"]["version"], ev["to"]["version"]),
                  ("rollback", "1.1.0", "1.0.0"), "the held event")
        expect_eq(len(ta.rollbacks(d.port)), 1, "one event")
        expect_eq(rec.keys(), [ev["idempotency_key"]], "delivered once")
        expect_eq(gauge(d.port, "ripcord_storage_writable"), 1.0, "writable again")
        expect_eq(gauge(d.port, "ripcord_rollback_events_held"), 0.0, "none held")
        expect("writable again" in d.log(), "the recovery is logged")
        d.stop()
        out = subprocess.run([exe, "audit", "verify", "--storage.path",
                              os.path.join(tmp, "data")], capture_output=True, text=True,
                             timeout=30)
        expect_eq(out.returncode, 0, "audit chain intact: %s %s" % (out.stdout, out.stderr))
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def case_delivery_outcome_held(exe):
    """The disk fills while a webhook is in flight: the 2xx cannot be written, and the row must
    not be sent again for that; it is marked delivered once the disk has room."""
    rec = ta.Receiver()
    rec.script = ["hang"]  # 3 s before the 204
    tmp = ta.setup_dir(rec.port).rstrip("/")
    # The receiver's timeout must outlast the hang.
    cfg = os.path.join(tmp, "ripcord.yml")
    with open(cfg) as f:
        text = f.read().replace("timeout: 1s", "timeout: 10s")
    with open(cfg, "w") as f:
        f.write(text)
    fault = Fault(tmp)
    d = start_faulty(exe, tmp, fault)
    try:
        ta.deploy(d.port, "1.0.0")
        ta.deploy(d.port, "1.1.0")
        ta.bad(d.port, 5)
        wait_until(lambda: len(rec.keys()) == 1, 10, what="the webhook in flight")
        fault.set("ENOSPC")
        wait_until(lambda: gauge(d.port, "ripcord_webhook_outcomes_held") == 1.0, 10,
                   what="the delivered outcome held")
        time.sleep(2.5)  # five scans of the outbox
        expect_eq(len(rec.keys()), 1, "not sent again while its outcome is held")
        fault.clear()
        wait_until(lambda: ta.rollbacks(d.port)[0]["deliveries"][0]["state"] == "delivered", 20,
                   what="outcome written")
        expect_eq(len(rec.keys()), 1, "sent once")
        expect_eq(gauge(d.port, "ripcord_webhook_outcomes_held"), 0.0, "none held")
        d.stop()
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def case_read_only(exe):
    """Read-only while running: the same hold and 503; read-only at start: no start, and
    the reason says so."""
    rec = ta.Receiver()
    tmp = ta.setup_dir(rec.port)
    fault = Fault(tmp)
    d = start_faulty(exe, tmp, fault)
    try:
        ta.deploy(d.port, "1.0.0")
        ta.deploy(d.port, "1.1.0")
        fault.set("EROFS")
        ta.bad(d.port, 5)
        wait_until(lambda: gauge(d.port, "ripcord_rollback_events_held") == 1.0, 10,
                   what="the firing held")
        body = json.dumps({"service": "checkout", "environment": "production",
                           "version": "1.2.0"}).encode()
        r = request(d.port, "POST", "/api/v1/deploys", body, [("Content-Type", "application/json")])
        expect_eq(r.status, 503, "deploy on a read-only directory: %s" % r.text)
        d.stop()  # held events are named as lost on the way out
        expect("stopping with rollback events the store never took" in d.log(),
               "the loss at shutdown is logged")
        # A restart on the read-only directory refuses to start, naming the cause.
        os.environ.update(fault_env(exe, os.path.join(tmp, "data"), fault))
        try:
            p = subprocess.run([exe, "serve", "--config.file=" + os.path.join(tmp, "ripcord.yml"),
                                "--storage.path=" + os.path.join(tmp, "data"),
                                "--web.listen-address=127.0.0.1:0"],
                               capture_output=True, text=True, timeout=30)
        finally:
            for k in ("LD_PRELOAD", "RIPCORD_FAULT_DIR", "RIPCORD_FAULT_FLAG"):
                os.environ.pop(k, None)
        expect(p.returncode != 0, "no start on a read-only data directory")
        expect("read-only" in p.stderr or "readonly" in p.stderr,
               "the reason names read-only:\n%s", p.stderr[-1500:])
        # Writable again: it starts, and the firing comes back with the data.
        fault.clear()
        d2 = ta.start(exe, tmp)
        try:
            ta.bad(d2.port, 5)
            wait_until(lambda: ta.rollbacks(d2.port), 10, what="fired again after the restart")
            d2.stop()
        finally:
            d2.cleanup()
    finally:
        d.cleanup()
        rec.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    global SHIM
    if len(sys.argv) < 3:
        print("usage: %s <ripcord-binary> <fault_shim.so>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    SHIM = os.path.abspath(sys.argv[2])
    r = Runner("test_faults")
    r.run("full disk: rollback held, made and delivered once there is room; deploys 503",
          case_full_disk_holds_the_rollback, exe)
    r.run("full disk during a delivery: not sent twice, marked once there is room",
          case_delivery_outcome_held, exe)
    r.run("read-only data directory: held while running, no start, then recovery",
          case_read_only, exe)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
