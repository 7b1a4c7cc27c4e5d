#!/usr/bin/env python3
"""test_backtest.py: `ripcord backtest` against a real Prometheus 2.42 started by the test and
filled through its remote-write receiver with known data: the transitions backtest reports
equal those the live engine produced on the same data.

usage: test_backtest.py <ripcord-binary> [<prometheus-binary>]   (default /usr/bin/prometheus)

The run:
  * Prometheus (Debian's 2.42: temporary TSDB, 127.0.0.1, --web.enable-remote-write-receiver,
    a config that scrapes nothing) and `ripcord serve` with one rule file (service bt,
    environment test) of two expr: triggers on the error ratio over 10 s:
        error_ratio       > 0.05 for 5s
        error_ratio_high  > 0.1  (no for:)
  * Deploy v1 recorded before the data, v2 (started_at = the moment it is posted) during the
    first healthy phase: the live engine clips its windows at v2's start, so the backtest has
    to replay the deploy history too.
  * 61 samples per series, one a second on an exact 1 s grid of wall-clock timestamps (each
    sent once its timestamp has passed), the same remote-write 1.0 request to ripcord and then
    to Prometheus: 20 s healthy (100 requests/s, 1 error/s), 20 s bad (20 errors/s: 20 %),
    20 s healthy again; plus two series the rules do not select. The evaluated ratio is exact
    (both counters have the same timestamps, so rate()'s extrapolation cancels in the
    quotient): with 9 one-second increases in the 10 s window and k bad ones, the ratio is
    (20k + 9 - k) / 900, which crosses 0.05 at k = 2 and 0.1 at k = 5, and after the switch
    back falls under 0.1 with 5 healthy increases and under 0.05 with 8. So the data give:
    error_ratio pending at bad sample 2, firing 5 s later; error_ratio_high firing at bad
    sample 5 (the rollback v2 -> v1), error_ratio's firing a duplicate of that deploy's
    event; both resolved in the second healthy phase.
  * Live transitions: the audit trail (trigger.fired / trigger.resolved, with the evaluation's
    time and value), the rollback events (GET /api/v1/rollbacks), the log lines, and pending
    times from GET /api/v1/rules polled every 100 ms (pending is neither logged nor audited).
  * Then `ripcord backtest --from=<first sample> --to=<last sample + 30 s> --step=1s
    --storage.path=<the daemon's directory> --json=-` (the daemon still running): the same
    firings and resolutions at the same times and with the same values, the same pending,
    the same rollback events; and with --deploys=FILE, the same result. With --from between
    error_ratio's pending and its firing, the earlier samples are the warm-up: the state they
    leave carries over (live, the trigger was pending then), so the report is the full run's
    from --from on. Then: nothing listening at the URL (exit 1, one line naming it), a bad
    --from or a missing rule file (exit 2).

Tolerance (times): live - backtest must lie in [-SLACK, TIMER + lag + SLACK] ms, where TIMER =
250 ms is serve's --rules.evaluation-interval, lag is the longest delay measured between a
sample's timestamp and ripcord's answer to the write carrying it, SLACK = 100 ms (the
evaluator thread's scheduling). Why: the backtest evaluates exactly at each sample timestamp
(and each 1 s step, on the same grid); the live engine evaluates when the write arrives, `lag`
after the timestamp, with the same samples in the window (a sample leaves the 10 s window
exactly when the sample 10 s younger has its timestamp), so a firing or resolution caused by
a sample differs by the lag only; a `for: 5s` firing is due 5 s after the pending one, which
the live engine notices at the next write or 250 ms tick. It stays well under the 1 s grid, so
an evaluation one step off in the backtest is caught. Values must agree to 1e-9 relative.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (V1, Daemon, Prometheus, Runner, expect, expect_eq, free_port,  # noqa: E402
                     post_write, request)

SERVICE, ENV = "bt", "test"
RULES = """rollback:
  service: bt
  environment: test
  triggers:
    - name: error_ratio
      expr: 'sum(rate(bt_errors_total{service="bt"}[10s])) / sum(rate(bt_requests_total{service="bt"}[10s]))'
      op: ">"
      threshold: 0.05
      for: 5s
    - name: error_ratio_high
      expr: 'sum(rate(bt_errors_total{service="bt"}[10s])) / sum(rate(bt_requests_total{service="bt"}[10s]))'
      op: ">"
      threshold: 0.1
  action:
    type: previous_version
"""
TRIGGERS = ("error_ratio", "error_ratio_high")
HEALTHY1, BAD, HEALTHY2 = 20, 20, 20  # seconds of each phase
NSAMPLES = HEALTHY1 + BAD + HEALTHY2 + 1  # sample 0 plus one per second
V2_AFTER = 5  # v2 is recorded between samples 5 and 6
TAIL_MS = 30000  # the backtest runs to the last sample + 30 s; the test waits that long too
TIMER_MS = 250  # serve's default --rules.evaluation-interval
SLACK_MS = 100


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def labels(name, service):
    return sorted([("__name__", name), ("service", service), ("job", "bt"), ("instance", "a")])


def make_requests(ts0):
    """[(ts, WriteRequest bytes)]: the 61 rounds, in time order."""
    out = []
    reqs, errs, other = 1000.0, 10.0, 0.0
    for i in range(NSAMPLES):
        ts = ts0 + i * 1000
        if i > 0:
            reqs += 100
            errs += 20 if HEALTHY1 < i <= HEALTHY1 + BAD else 1
            other += 7
        out.append((ts, V1.request([
            V1.timeseries(labels("bt_requests_total", SERVICE), [(reqs, ts)]),
            V1.timeseries(labels("bt_errors_total", SERVICE), [(errs, ts)]),
            # Not selected by the rules: neither side's engine should read them.
            V1.timeseries(labels("bt_requests_total", "other"), [(reqs * 2, ts)]),
            V1.timeseries(labels("bt_unrelated_total", SERVICE), [(other, ts)]),
        ])))
    return out


def post_prom_write(port, payload):
    """Remote write 1.0 to Prometheus' receiver (same request bytes as to ripcord)."""
    return post_write(port, payload)


# ---------------------------------------------------------------------------------------------
# ripcord views
# ---------------------------------------------------------------------------------------------

def post_deploy(port, version, started_at):
    body = {"service": SERVICE, "environment": ENV, "version": version,
            "artifact": "reg/bt:" + version, "started_at": started_at}
    r = request(port, "POST", "/api/v1/deploys", json.dumps(body).encode(),
                [("Content-Type", "application/json")])
    expect_eq(r.status, 201, "POST deploy %s (%r)" % (version, r.body[:200]))
    return body


def rule_states(port):
    r = request(port, "GET", "/api/v1/rules", timeout=5)
    expect_eq(r.status, 200, "GET /api/v1/rules")
    return {t["name"]: t for t in json.loads(r.body)["data"]["rules"][0]["triggers"]}


def audit_entries(port):
    r = request(port, "GET", "/api/v1/audit?limit=1000")
    expect_eq(r.status, 200, "GET /api/v1/audit")
    return list(reversed(json.loads(r.body)["data"]["entries"]))  # oldest first


def rollback_events(port):
    r = request(port, "GET", "/api/v1/rollbacks")
    expect_eq(r.status, 200, "GET /api/v1/rollbacks")
    return sorted(json.loads(r.body)["data"], key=lambda e: (e["created_at"], e["id"]))


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def run_backtest(exe, args, timeout=120):
    p = subprocess.run([exe, "backtest"] + args, capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    return p


# ---------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------

def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary> [<prometheus-binary>]" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    prom_exe = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/prometheus"
    r = Runner("test_backtest")
    t_start = time.monotonic()
    if not os.access(prom_exe, os.X_OK):
        r.fail_setup("prometheus binary", "%s is not executable (apt-get install prometheus)"
                     % prom_exe)
        return r.finish()
    tmp = tempfile.mkdtemp(prefix="ripcord-bt-")
    rule_file = os.path.join(tmp, "bt.rollback.yml")
    with open(rule_file, "w") as f:
        f.write(RULES)
    d = Daemon(exe, ["--rules.file=" + rule_file])
    p = Prometheus(prom_exe, flags=["--web.enable-remote-write-receiver"],
                   prefix="ripcord-bt-prom-")
    st = {}  # what the cases hand on

    def case_start():
        p.start()
        d.start()
        t = rule_states(d.port)
        expect_eq(sorted(t), sorted(TRIGGERS), "triggers loaded")

    def poll_states(live):
        """One look at /api/v1/rules: pending and firing times seen per trigger."""
        for name, t in rule_states(d.port).items():
            x = live.setdefault(name, {"pending": set(), "firing": set(), "states": []})
            if t["pending_since_ms"] is not None:
                x["pending"].add(t["pending_since_ms"])
            if t["firing_since_ms"] is not None:
                x["firing"].add(t["firing_since_ms"])
            if not x["states"] or x["states"][-1] != t["state"]:
                x["states"].append(t["state"])

    def case_feed():
        ts0 = (int(time.time()) + 2) * 1000
        rounds = make_requests(ts0)
        v1_at = ts0 - 30000
        deploys = [post_deploy(d.port, "v1", v1_at)]
        live = {}
        lags = []
        prom_errors = []
        v2_at = None
        deadline = time.monotonic() + NSAMPLES + 30  # bounded whatever the clock does
        for i, (ts, payload) in enumerate(rounds):
            # Wait for the sample's time (its timestamp must not be in the future when it
            # arrives: the live engine evaluates at the wall clock), polling the states.
            while True:
                left = ts / 1000 - time.time()
                if left <= 0:
                    break
                expect(time.monotonic() < deadline, "feeding took too long")
                if left > 0.15:
                    poll_states(live)
                time.sleep(min(left, 0.1))
            resp = post_write(d.port, payload)
            lags.append(time.time() * 1000 - ts)
            expect_eq(resp.status, 204, "ripcord write %d" % i)
            resp = post_prom_write(p.port, payload)
            if resp.status not in (200, 204):
                prom_errors.append((i, resp.status, resp.body[:200]))
            if i == V2_AFTER:
                time.sleep(0.3)
                v2_at = int(time.time() * 1000)
                deploys.append(post_deploy(d.port, "v2", v2_at))
            poll_states(live)
        expect(not prom_errors, "Prometheus refused writes: %r", prom_errors[:3])
        ts_end = rounds[-1][0]
        # The backtest runs to the last sample + 30 s: let the live engine run as long
        # (the windows empty; nothing should change any more).
        while time.time() * 1000 < ts_end + TAIL_MS + 500:
            expect(time.monotonic() < deadline + TAIL_MS / 1000 + 5, "tail took too long")
            poll_states(live)
            time.sleep(0.1)
        st.update(ts0=ts0, ts_end=ts_end, live=live, lags=lags, deploys=deploys,
                  v1_at=v1_at, v2_at=v2_at, tol=TIMER_MS + max(lags) + SLACK_MS)
        print("     | %d rounds from %s; ripcord answered each write %.1f..%.1f ms after its "
              "timestamp; time tolerance %.0f ms" % (len(rounds), iso(ts0), min(lags), max(lags),
                                                     st["tol"]))

    def case_live():
        # What the live engine did, and that it is what the data were built to produce (a
        # guard on the test itself: otherwise agreeing would prove little).
        entries = audit_entries(d.port)
        fired = {n: [] for n in TRIGGERS}
        resolved = {n: [] for n in TRIGGERS}
        for e in entries:
            if e["action"] == "trigger.fired":
                fired[e["detail"]["trigger"]].append(e)
            elif e["action"] == "trigger.resolved":
                resolved[e["detail"]["trigger"]].append(e)
        events = rollback_events(d.port)
        st.update(fired=fired, resolved=resolved, events=events)
        for n in TRIGGERS:
            print("     | live %-16s fired %s resolved %s pending_since %s" % (
                n, [(iso(e["at_ms"]), e["detail"]["decision"], e["detail"]["value"])
                    for e in fired[n]],
                [(iso(e["at_ms"]), e["detail"]["value"]) for e in resolved[n]],
                [iso(x) for x in sorted(st["live"][n]["pending"])]))
        print("     | live events %s" % [(e["status"], e["trigger"]["name"], iso(e["created_at"]))
                                         for e in events])
        ts0 = st["ts0"]
        bad0 = ts0 + HEALTHY1 * 1000  # the last healthy sample; bad sample k at bad0 + k s
        heal0 = bad0 + BAD * 1000  # the last bad sample; healthy sample j at heal0 + j s
        tol = st["tol"]
        want = {"error_ratio": (bad0 + 2000, bad0 + 7000, heal0 + 8000),
                "error_ratio_high": (bad0 + 5000, bad0 + 5000, heal0 + 5000)}
        for n, (pend, fire, res) in want.items():
            expect_eq(len(fired[n]), 1, "%s fired once live" % n)
            expect_eq(len(resolved[n]), 1, "%s resolved once live" % n)
            expect(0 <= fired[n][0]["at_ms"] - fire <= tol, "%s fired live at %s, want %s",
                   n, iso(fired[n][0]["at_ms"]), iso(fire))
            expect(0 <= resolved[n][0]["at_ms"] - res <= tol, "%s resolved live at %s, want %s",
                   n, iso(resolved[n][0]["at_ms"]), iso(res))
            pend_live = sorted(st["live"][n]["pending"])
            expect(len(pend_live) == 1 and 0 <= pend_live[0] - pend <= tol,
                   "%s pending live since %s, want %s", n, [iso(x) for x in pend_live], iso(pend))
        expect_eq(fired["error_ratio_high"][0]["detail"]["decision"], "rollback",
                  "error_ratio_high's decision")
        expect_eq(fired["error_ratio"][0]["detail"]["decision"], "duplicate",
                  "error_ratio's decision (the deploy already has its event)")
        acted = [e for e in events if e["status"] != "resolved"]
        expect_eq(fired["error_ratio"][0]["detail"]["reason"],
                  "this deploy already has its event %d (rollback)" % acted[0]["id"],
                  "error_ratio's reason")
        expect_eq([(e["status"], e["trigger"]["name"], e["from"]["version"], e["to"]["version"])
                   for e in acted], [("rollback", "error_ratio_high", "v2", "v1")],
                  "live rollback events")
        # The log says the same as the audit trail.
        log = d.log()
        for n in TRIGGERS:
            expect_eq(log.count('msg="rollback trigger firing" service=bt environment=test '
                                'trigger=%s ' % n), len(fired[n]), "firing log lines of " + n)
            expect_eq(log.count('msg="rollback trigger resolved" service=bt environment=test '
                                'trigger=%s ' % n), len(resolved[n]), "resolved log lines of " + n)

    def backtest_args(deploy_arg, frm=None, to=None, out="-"):
        return ["--prometheus.url=" + p.url(),
                "--from=%s" % (frm if frm is not None else st["ts0"]),
                "--to=%s" % (to if to is not None else st["ts_end"] + TAIL_MS),
                "--step=1s", deploy_arg, "--json=" + out, rule_file]

    def case_backtest_runs():
        t0 = time.monotonic()
        res = run_backtest(exe, backtest_args("--storage.path=" + os.path.join(d.tmp, "data")))
        expect_eq(res.returncode, 0, "exit status (stderr %r)" % res.stderr[-2000:])
        doc = json.loads(res.stdout)
        st["bt"] = doc
        print("     | backtest took %.2fs: summary %s" % (time.monotonic() - t0,
                                                         json.dumps(doc.get("summary"))))
        for t in doc["transitions"]:
            print("     |   %s %-16s %s -> %s value %r%s" % (
                iso(t["at"]), t["trigger"], t["from"], t["to"], t["value"],
                " (resolved)" if t.get("resolved") else ""))
        for x in doc["rollbacks"]:
            print("     |   rollback %s %-16s %s %s -> %s value %r" % (
                iso(x["at"]), x["trigger"], x["outcome"], x["from_version"], x["to_version"],
                x["value"]))
        expect_eq((doc["from"], doc["to"]), (st["ts0"], st["ts_end"] + TAIL_MS), "from, to")
        for t in doc["transitions"]:
            expect_eq((t["service"], t["environment"]), (SERVICE, ENV), "target of %r" % t)
            expect(t["at"] >= st["ts0"], "transition before --from: %r", t)
            expect(t["from"] in ("inactive", "pending", "firing") and
                   t["to"] in ("inactive", "pending", "firing"), "states of %r", t)

    def bt_times(doc, name, pred):
        return [t for t in doc["transitions"] if t["trigger"] == name and pred(t)]

    def compare_times(what, live, bt):
        """live, bt: [(at_ms, value)] in time order. Same count; each pair within the
        tolerance (live after backtest), same value."""
        tol = st["tol"]
        expect_eq(len(bt), len(live), "%s: how many (live %s, backtest %s)" % (
            what, [iso(a) for a, _ in live], [iso(a) for a, _ in bt]))
        diffs = []
        for (la, lv), (ba, bv) in zip(live, bt):
            diffs.append(la - ba)
            expect(-SLACK_MS <= la - ba <= tol, "%s: live at %s, backtest at %s (%+d ms, "
                   "tolerance [-%d, %d])", what, iso(la), iso(ba), la - ba, SLACK_MS, tol)
            if lv is not None:
                expect(close(lv, bv), "%s: live value %r, backtest %r", what, lv, bv)
        return diffs

    def case_firing_resolved(doc_key="bt"):
        doc = st[doc_key]
        out = []
        for n in TRIGGERS:
            live_f = [(e["at_ms"], e["detail"]["value"]) for e in st["fired"][n]]
            live_r = [(e["at_ms"], e["detail"]["value"]) for e in st["resolved"][n]]
            bt_f = [(t["at"], t["value"]) for t in bt_times(doc, n, lambda t: t["to"] == "firing")]
            bt_r = [(t["at"], t["value"]) for t in bt_times(
                doc, n, lambda t: t["from"] == "firing" and t["to"] != "firing")]
            out.append("%s fired %s ms, resolved %s ms" % (
                n, compare_times(n + " firing", live_f, bt_f),
                compare_times(n + " resolution", live_r, bt_r)))
            for t in bt_times(doc, n, lambda t: t["from"] == "firing" and t["to"] != "firing"):
                expect_eq((t["to"], t["resolved"]), ("inactive", True), "resolution of %s" % n)
            for t in bt_times(doc, n, lambda t: t["to"] == "firing"):
                expect_eq(t["resolved"], False, "a firing is not resolved: %r" % t)
        print("     | live - backtest: " + "; ".join(out))

    def case_pending():
        doc = st["bt"]
        # error_ratio (for: 5s): one pending, before its firing. Live pending_since_ms is the
        # evaluation's time, so the same tolerance holds.
        live = [(x, None) for x in sorted(st["live"]["error_ratio"]["pending"])]
        bt = [(t["at"], t["value"]) for t in bt_times(doc, "error_ratio",
                                                      lambda t: t["to"] == "pending")]
        diffs = compare_times("error_ratio pending", live, bt)
        seq = [(t["from"], t["to"]) for t in doc["transitions"] if t["trigger"] == "error_ratio"]
        expect_eq(seq, [("inactive", "pending"), ("pending", "firing"), ("firing", "inactive")],
                  "error_ratio's transitions")
        # error_ratio_high (no for:) goes from inactive to firing in one evaluation: live it
        # never shows pending (pending_since = firing_since). The backtest may report the
        # step through pending, at the firing's time, or not at all.
        hi_live = st["live"]["error_ratio_high"]
        expect_eq(hi_live["pending"], hi_live["firing"], "live: pending and firing together")
        for t in bt_times(doc, "error_ratio_high", lambda t: t["to"] == "pending"):
            expect(t["at"] in [x["at"] for x in bt_times(doc, "error_ratio_high",
                                                          lambda t: t["to"] == "firing")],
                   "error_ratio_high pending apart from its firing: %r", t)
        print("     | pending live - backtest: %s ms" % diffs)

    def case_rollbacks(doc_key="bt"):
        doc = st[doc_key]
        tol = st["tol"]
        live = [e for e in st["events"] if e["status"] != "resolved"]
        live_dup = [e for n in TRIGGERS for e in st["fired"][n]
                    if e["detail"]["decision"] == "duplicate"]
        bt = sorted(doc["rollbacks"], key=lambda x: x["at"])
        bt_dup = [x for x in bt if x["outcome"] == "duplicate"]
        bt = [x for x in bt if x["outcome"] != "duplicate"]
        expect_eq([(x["trigger"], x["outcome"], x["from_version"], x["to_version"]) for x in bt],
                  [(e["trigger"]["name"], e["status"], e["from"]["version"], e["to"]["version"])
                   for e in live], "rollback events (trigger, outcome, from, to): backtest vs "
                  "live (a firing for a deploy that already has its event is a duplicate live, "
                  "not a second event)")
        for x, e in zip(bt, live):
            expect(-SLACK_MS <= e["created_at"] - x["at"] <= tol,
                   "rollback at %s live, %s backtest", iso(e["created_at"]), iso(x["at"]))
            expect(close(e["trigger"]["value"], x["value"]), "rollback value live %r, "
                   "backtest %r", e["trigger"]["value"], x["value"])
            expect_eq((x["service"], x["environment"]), (SERVICE, ENV), "target")
            expect_eq(x["reason"], e["reason"], "the event's reason, backtest vs live")
        # If the backtest lists duplicates, they must be the live ones.
        if bt_dup:
            expect_eq([(x["trigger"], x["from_version"], x["to_version"]) for x in bt_dup],
                      [(e["detail"]["trigger"], e["detail"]["from"], e["detail"]["to"])
                       for e in live_dup], "duplicate firings")

    def case_summary():
        s = st["bt"]["summary"]
        # The rules select two series (bt_requests_total and bt_errors_total of service bt);
        # the other two sent are not read. All 61 samples of each are in [from - 1h, to].
        expect_eq(s["series"], 2, "series")
        expect(2 * NSAMPLES <= s["samples"] <= 4 * NSAMPLES,
               "samples %r: want at least the %d sent (at most twice that, if the two "
               "triggers' identical selectors were fetched twice)", s["samples"], 2 * NSAMPLES)
        steps = (st["ts_end"] + TAIL_MS - st["ts0"]) // 1000
        expect(s["evaluations"] >= steps, "evaluations %r, want at least one per 1 s step (%d)",
               s["evaluations"], steps)
        expect(s["evaluations"] <= len(TRIGGERS) * (steps + 3600 + 2 * NSAMPLES + 10),
               "evaluations %r: more than the instants there are", s["evaluations"])
        expect(s["seconds"] >= 0 and s["samples_per_second"] >= 0, "times: %r", s)

    def case_deploys_file():
        # The same history as a file: v1 and v2 with the times ripcord recorded. --from as
        # RFC 3339, --to in unix seconds (both whole seconds here), the JSON to a file and
        # the table on stdout.
        dep_file = os.path.join(tmp, "deploys.json")
        with open(dep_file, "w") as f:
            json.dump(st["deploys"], f)
        out = os.path.join(tmp, "bt.json")
        frm = datetime.datetime.fromtimestamp(st["ts0"] / 1000, datetime.timezone.utc) \
            .strftime("%Y-%m-%dT%H:%M:%SZ")
        to = "%d" % ((st["ts_end"] + TAIL_MS) // 1000)
        res = run_backtest(exe, backtest_args("--deploys=" + dep_file, frm, to, out))
        expect_eq(res.returncode, 0, "exit status (stderr %r)" % res.stderr[-2000:])
        with open(out) as f:
            doc = json.load(f)
        st["bt_file"] = doc
        for n in TRIGGERS:
            expect(n in res.stdout, "the table names %s: %r", n, res.stdout[:2000])
        expect_eq((doc["from"], doc["to"]), (st["ts0"], st["ts_end"] + TAIL_MS), "from, to")
        key = lambda t: (t["at"], t["trigger"], t["from"], t["to"])  # noqa: E731
        expect_eq(sorted(map(key, doc["transitions"])), sorted(map(key, st["bt"]["transitions"])),
                  "transitions: --deploys=FILE vs --storage.path")
        rk = lambda x: (x["at"], x["trigger"], x["outcome"], x["from_version"],  # noqa: E731
                        x["to_version"])
        expect_eq(sorted(map(rk, doc["rollbacks"])), sorted(map(rk, st["bt"]["rollbacks"])),
                  "rollbacks: --deploys=FILE vs --storage.path")
        case_rollbacks("bt_file")

    def case_from_mid_run():
        # --from between error_ratio's pending and error_ratio_high's firing: the samples
        # before it are replayed as warmup (the state carries over: error_ratio goes from
        # pending to firing with no inactive -> pending reported), and exactly the full run's
        # transitions and rollbacks at or after --from are reported.
        frm = st["ts0"] + (HEALTHY1 + 3) * 1000
        res = run_backtest(exe, backtest_args("--storage.path=" + os.path.join(d.tmp, "data"),
                                              frm=frm))
        expect_eq(res.returncode, 0, "exit status (stderr %r)" % res.stderr[-2000:])
        doc = json.loads(res.stdout)
        key = lambda t: (t["at"], t["trigger"], t["from"], t["to"], t["value"])  # noqa: E731
        want = [key(t) for t in st["bt"]["transitions"] if t["at"] >= frm]
        # First the one that matters most, said plainly: error_ratio fires when live it did.
        live_fire = st["fired"]["error_ratio"][0]["at_ms"]
        full = [t for t in st["bt"]["transitions"] if t["trigger"] == "error_ratio"]
        mid = [t for t in doc["transitions"] if t["trigger"] == "error_ratio"]
        expect([t["at"] for t in mid if t["to"] == "firing"] ==
               [t["at"] for t in full if t["to"] == "firing"],
               "with --from=%s, error_ratio (for: 5s) is reported %s; live it was pending since "
               "%s (before --from) and fired at %s, which the full backtest reports as %s: the "
               "warm-up must carry the trigger's state over, not only fill the windows",
               iso(frm), [(iso(t["at"]), t["from"] + "->" + t["to"]) for t in mid],
               iso(sorted(st["live"]["error_ratio"]["pending"])[0]), iso(live_fire),
               [(iso(t["at"]), t["from"] + "->" + t["to"]) for t in full])
        expect_eq([key(t) for t in doc["transitions"]], want, "transitions from %s" % iso(frm))
        expect(("error_ratio", "pending", "firing") in [(t[1], t[2], t[3]) for t in want],
               "the case is meant to cut between pending and firing: %r", want)
        rk = lambda x: (x["at"], x["trigger"], x["outcome"], x["from_version"],  # noqa: E731
                        x["to_version"])
        expect_eq(sorted(map(rk, doc["rollbacks"])),
                  sorted(rk(x) for x in st["bt"]["rollbacks"] if x["at"] >= frm), "rollbacks")

    def case_unreachable():
        port = free_port()
        url = "http://127.0.0.1:%d" % port
        res = run_backtest(exe, ["--prometheus.url=" + url, "--from=%d" % st.get("ts0", 0),
                                 "--to=%d" % (st.get("ts0", 0) + 60000), "--step=1s",
                                 "--json=-", rule_file], timeout=60)
        lines = res.stderr.strip().splitlines()
        expect_eq(res.returncode, 1, "exit status (stderr %r)" % res.stderr)
        expect(len(lines) == 1 and "127.0.0.1:%d" % port in lines[0],
               "one line naming the URL: %r", res.stderr)
        expect_eq(res.stdout.strip(), "", "nothing on stdout")

    def case_bad_args():
        for bad in (["--from=yesterday"], ["--from=2026-13-45T99:00:00Z"],
                    ["--from=now-2x"]):
            res = run_backtest(exe, ["--prometheus.url=" + p.url()] + bad +
                               ["--to=now", "--json=-", rule_file], timeout=60)
            expect_eq(res.returncode, 2, "%s: exit status (stderr %r)" % (bad, res.stderr))
            expect(res.stderr.strip(), "%s: a message on stderr", bad)
        res = run_backtest(exe, ["--prometheus.url=" + p.url(), "--from=now-1h", "--to=now",
                                 "--json=-", os.path.join(tmp, "missing.rollback.yml")],
                           timeout=60)
        expect_eq(res.returncode, 2, "a missing rule file: exit status (stderr %r)" % res.stderr)

    try:
        if not r.run("Prometheus 2.42 (remote-write receiver) and ripcord serve start",
                     case_start):
            print("---- Prometheus log (tail) ----\n" + p.log()[-3000:])
            print("---- ripcord log (tail) ----\n" + d.log()[-3000:])
            return r.finish()
        if r.run("61 s of healthy / 20 % errors / healthy to both, once a second", case_feed):
            r.run("live: each trigger pending, fired and resolved once, as built; one rollback",
                  case_live)
            if r.run("backtest --storage.path (daemon running) --json=-: exit 0, a report",
                     case_backtest_runs):
                r.run("backtest: every firing and resolution at the live times and values",
                      case_firing_resolved)
                r.run("backtest: pending as live", case_pending)
                r.run("backtest: the same rollback events (trigger, outcome, versions, time)",
                      case_rollbacks)
                r.run("backtest: summary (series, samples, evaluations) plausible", case_summary)
                r.run("backtest --deploys=FILE, RFC 3339 / unix-seconds times, --json=FILE: "
                      "same result", case_deploys_file)
                r.run("backtest --from in the middle: earlier samples are warmup, the rest "
                      "the same", case_from_mid_run)
        r.run("backtest: nothing listening at the URL: exit 1, one line naming it",
              case_unreachable)
        r.run("backtest: bad --from, missing rule file: exit 2", case_bad_args)
        r.run("ripcord exits 0 on SIGTERM", d.stop)
        r.run("Prometheus exits 0 on SIGTERM", lambda: expect_eq(p.stop(), 0, "exit status"))
    finally:
        if r.failed:
            print("---- Prometheus log (tail) ----\n" + p.log()[-2000:])
            print("---- ripcord log (tail) ----\n" + d.log()[-4000:])
        d.cleanup()
        p.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t_start))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
