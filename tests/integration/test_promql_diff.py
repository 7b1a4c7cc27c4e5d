#!/usr/bin/env python3
"""test_promql_diff.py: differential test of ripcord's PromQL subset against a real Prometheus
(Debian's 2.42). Identical, deterministic data go to both over remote write 1.0 (Prometheus
runs its remote-write receiver); then a few hundred expressions of the subset are evaluated at
several instants in both (Prometheus: GET /api/v1/query?time=; ripcord: the same endpoint, in
--query.compat=prometheus-2 mode) and every answer must agree: the same label sets, and values
within 1e-9 relative (NaN equals NaN, infinities must match).

The data (seeded): counters with resets, gauges with a NaN and an ended series (staleness
marker), a classic histogram (_bucket with le, _sum, _count) and integer native histograms,
scraped every 15 s with jitter over 30 minutes, ending a few minutes before now.

Deliberate deviations (docs/PROMQL.md) are not tested here. Differences found are listed
(at most 25) with the expression, the instant and both answers.

usage: test_promql_diff.py <ripcord-binary> <prometheus-binary>
"""
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (V1, Daemon, Prometheus, Runner, expect, expect_eq,  # noqa: E402
                     pb_histogram, post_write, request, wait_until)

STALE_NAN = 0x7ff0000000000002
INSTANCES = ["a", "b", "c", "d"]
LES = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
SCRAPE_MS = 15000
SPAN_MS = 30 * 60 * 1000


def make_data(t_end):
    """Returns a list of (ts, WriteRequest bytes), one per scrape round, in time order."""
    rnd = random.Random(42)
    t0 = t_end - SPAN_MS
    counters = {i: 0.0 for i in INSTANCES}
    gauges = {i: 50.0 for i in INSTANCES}
    buckets = {i: [0] * len(LES) for i in INSTANCES}
    hsum = {i: 0.0 for i in INSTANCES}
    native = {i: [0, 0, 0, 0] for i in INSTANCES}  # absolute counts, schema 0, indexes 0..3
    nsum = {i: 0.0 for i in INSTANCES}
    rounds = []
    k = 0
    t = t0
    while t <= t_end:
        ts_list = []
        for inst in INSTANCES:
            ts = t + rnd.randint(0, 2000)  # jitter within the round
            # counter with occasional resets
            if rnd.random() < 0.03:
                counters[inst] = rnd.random() * 5
            else:
                counters[inst] += rnd.randint(0, 50) + rnd.random()
            gauges[inst] += rnd.uniform(-5, 5)
            g = gauges[inst]
            if inst == "c" and k == 40:
                g = float("nan")
            for _ in range(rnd.randint(0, 20)):
                x = rnd.lognormvariate(-1.5, 1.0)
                hsum[inst] += x
                for j, le in enumerate(LES):
                    if le == "+Inf" or x <= float(le):
                        buckets[inst][j] += 1
            for _ in range(rnd.randint(0, 10)):
                native[inst][rnd.randint(0, 3)] += 1
                nsum[inst] += rnd.random() * 4
            ts_list.append((inst, ts, g))
        series = []
        for inst, ts, g in ts_list:
            base = [("instance", inst), ("job", "diff")]
            if inst == "d" and k > 80:
                continue  # series d ended: a staleness marker was sent at k == 81
            series.append(V1.timeseries(sorted([("__name__", "reqs_total")] + base),
                                        [(counters[inst], ts)]))
            series.append(V1.timeseries(sorted([("__name__", "temp")] + base), [(g, ts)]))
            for j, le in enumerate(LES):
                series.append(V1.timeseries(sorted([("__name__", "lat_bucket"), ("le", le)] + base),
                                            [(float(buckets[inst][j]), ts)]))
            series.append(V1.timeseries(sorted([("__name__", "lat_sum")] + base),
                                        [(hsum[inst], ts)]))
            series.append(V1.timeseries(sorted([("__name__", "lat_count")] + base),
                                        [(float(buckets[inst][-1]), ts)]))
            c = native[inst]
            deltas = [c[0]] + [c[j] - c[j - 1] for j in range(1, 4)]
            h = pb_histogram(count_int=sum(c), sum=nsum[inst], schema=0,
                             positive_spans=[(0, 4)], positive_deltas=deltas, timestamp=ts)
            series.append(V1.timeseries(sorted([("__name__", "rpc_seconds")] + base),
                                        histograms=[h]))
        if k == 81:  # end series d with staleness markers, as a vanished target does
            ts = t + 500
            base = [("instance", "d"), ("job", "diff")]
            for name in ("reqs_total", "temp"):
                series.append(V1.timeseries(sorted([("__name__", name)] + base),
                                            [(("bits", STALE_NAN), ts)]))
        rounds.append((t, V1.request(series)))
        t += SCRAPE_MS
        k += 1
    return t0, rounds


RANGE_FNS = ["rate", "increase", "irate", "delta", "idelta", "resets", "changes",
             "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
             "count_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time"]


def expressions():
    ex = []
    for fn in RANGE_FNS:
        for rng in ("1m", "5m"):
            metric = "reqs_total" if fn in ("rate", "increase", "irate", "resets") else "temp"
            ex.append("%s(%s[%s])" % (fn, metric, rng))
    for rng in ("2m", "10m"):
        ex.append("rate(reqs_total[%s])" % rng)
        ex.append("increase(reqs_total{instance=~\"a|b\"}[%s])" % rng)
        ex.append("delta(temp[%s])" % rng)
    for q in ("0", "0.5", "0.9", "0.99", "1"):
        ex.append("quantile_over_time(%s, temp[5m])" % q)
    for agg in ("sum", "avg", "min", "max", "count"):
        ex.append("%s(rate(reqs_total[5m]))" % agg)
        ex.append("%s by (instance) (rate(reqs_total[5m]))" % agg)
        ex.append("%s without (instance) (temp)" % agg)
        ex.append("%s(temp)" % agg)
        ex.append("%s by (job) (increase(reqs_total[2m]))" % agg)
    ex += [
        "temp", "reqs_total", "temp{instance!=\"a\"}", "reqs_total{instance=~\"[ab]\"}",
        "temp > 50", "temp > bool 50", "50 < temp", "temp == bool temp", "-temp",
        "temp * 2 + 1", "2 * temp - reqs_total", "temp / reqs_total", "temp % 7", "temp ^ 2",
        "reqs_total - reqs_total",
        "rate(reqs_total[5m]) > 1", "rate(reqs_total[5m]) / on(instance) rate(reqs_total[5m])",
        "sum(rate(reqs_total[5m])) / sum(rate(reqs_total[10m]))",
        "rate(reqs_total[5m]) / ignoring(job) rate(reqs_total[1m])",
        "max(temp) - min(temp)", "avg(temp) * count(temp)", "1 + 2 * 3", "2 ^ 3 ^ 2",
        "-2 ^ 2", "(1 + 2) * 3", "10 % 3", "1 > bool 2", "temp != bool 50",
        "sum(rate(lat_sum[5m])) / sum(rate(lat_count[5m]))",
        "rate(lat_sum[5m]) / rate(lat_count[5m])",
    ]
    for phi in ("0.5", "0.9", "0.99", "0", "1", "1.5", "-1"):
        ex.append("histogram_quantile(%s, rate(lat_bucket[5m]))" % phi)
        ex.append("histogram_quantile(%s, sum by (le) (rate(lat_bucket[5m])))" % phi)
        ex.append("histogram_quantile(%s, sum by (le, instance) (increase(lat_bucket[2m])))" % phi)
    for phi in ("0.5", "0.9", "0.99"):
        ex.append("histogram_quantile(%s, rate(rpc_seconds[5m]))" % phi)
        ex.append("histogram_quantile(%s, sum(rate(rpc_seconds[5m])))" % phi)
        ex.append("histogram_quantile(%s, sum by (instance) (increase(rpc_seconds[10m])))" % phi)
    ex += ["count(rate(rpc_seconds[5m]))", "count(rpc_seconds)"]
    for fn in RANGE_FNS:
        metric = "reqs_total" if fn in ("rate", "increase", "irate", "resets") else "temp"
        ex.append("%s(%s[10m])" % (fn, metric))
    for q in ("0.25", "0.75"):
        for rng in ("1m", "10m"):
            ex.append("quantile_over_time(%s, temp[%s])" % (q, rng))
    for agg in ("sum", "avg", "min", "max", "count"):
        for inner in ("irate(reqs_total[1m])", "delta(temp[5m])", "avg_over_time(temp[10m])",
                      "max_over_time(temp[1m])", "changes(temp[10m])", "resets(reqs_total[10m])"):
            ex.append("%s(%s)" % (agg, inner))
    for fn in ("rate", "increase", "irate"):
        ex.append("sum by (instance) (%s(reqs_total[5m]))" % fn)
        ex.append("%s(reqs_total{instance=\"d\"}[5m])" % fn)  # the series that ended
        ex.append("max without (job) (%s(reqs_total[2m]))" % fn)
    ex += ["temp{instance=\"d\"}", "last_over_time(temp{instance=\"d\"}[10m])",
           "count_over_time(temp{instance=\"c\"}[10m])", "avg_over_time(temp{instance=\"c\"}[10m])"]
    for op in (">", "<", ">=", "<=", "==", "!="):
        ex.append("avg_over_time(temp[5m]) %s bool 50" % op)
        ex.append("rate(reqs_total[5m]) %s 10" % op)
    return ex


def query(port, expr, t_ms):
    qs = urllib.parse.urlencode({"query": expr, "time": "%.3f" % (t_ms / 1000.0)})
    r = request(port, "GET", "/api/v1/query?" + qs, timeout=30)
    try:
        doc = json.loads(r.body)
    except ValueError:
        return ("error", "status %d, not JSON: %r" % (r.status, r.body[:200]))
    if doc.get("status") != "success":
        return ("error", doc.get("error"))
    d = doc["data"]
    if d["resultType"] == "scalar":
        return ("scalar", float(d["result"][1]))
    out = {}
    for el in d["result"]:
        key = tuple(sorted(el["metric"].items()))
        if "histogram" in el:
            h = el["histogram"][1]
            out[key] = ("h", float(h["count"]), float(h["sum"]))
        else:
            out[key] = float(el["value"][1])
    return ("vector", out)


def close(a, b):
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b)
                and all(close(x, y) for x, y in zip(a[1:], b[1:])))
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300) or a == b


def same(p, r):
    if p[0] != r[0]:
        return False
    if p[0] == "error":
        return True
    if p[0] == "scalar":
        return close(p[1], r[1])
    if set(p[1]) != set(r[1]):
        return False
    return all(close(p[1][k], r[1][k]) for k in p[1])


def main():
    if len(sys.argv) < 3:
        print("usage: %s <ripcord-binary> <prometheus-binary>" % sys.argv[0], file=sys.stderr)
        return 2
    exe, prom_exe = os.path.abspath(sys.argv[1]), sys.argv[2]
    r = Runner("test_promql_diff")
    if not os.path.exists(prom_exe):
        r.run("prometheus binary present", lambda: expect(False, "no %s: install Debian's "
                                                          "prometheus (scripts/install-deps)",
                                                          prom_exe))
        return r.finish()
    tmp = tempfile.mkdtemp(prefix="ripcord-diff-")
    cfg = os.path.join(tmp, "ripcord.yml")
    with open(cfg, "w") as f:
        f.write("select:\n  - '{__name__=~\".+\"}'\n")
    prom = Prometheus(prom_exe, config=lambda port: "global:\n  scrape_interval: 1h\n",
                      flags=["--web.enable-remote-write-receiver",
                             "--enable-feature=native-histograms"],
                      prefix="ripcord-diff-prom-")
    d = None
    state = {}
    try:
        prom.start()
        d = Daemon(exe, ["--config.file=" + cfg, "--query.compat=prometheus-2",
                         "--storage.retention=2h"]).start()
        t_end = int(time.time() * 1000) - 3 * 60 * 1000
        t0, rounds = make_data(t_end)

        def case_send():
            for _, payload in rounds:
                a = post_write(prom.port, payload)
                expect(a.status in (200, 204), "Prometheus answered %d: %r", a.status, a.body)
                b = post_write(d.port, payload)
                expect_eq(b.status, 204, "ripcord write")
            # Both answered every write; Prometheus commits on receipt, ripcord's workers
            # apply asynchronously: wait for the last sample to be visible in both.
            last = t_end
            wait_until(lambda: query(d.port, "count(temp)", last + 3000)[1] == query(
                prom.port, "count(temp)", last + 3000)[1], 20, what="both hold the data")
            state["sent"] = True
        r.run("identical data to Prometheus 2.42 and ripcord (%d rounds)" % len(rounds),
              case_send)

        def case_compare():
            expect(state.get("sent"), "no data sent")
            # Instants: on sample-round boundaries (closed vs open windows matter there),
            # between rounds, and near the end of the data.
            instants = [t0 + 10 * 60 * 1000, t0 + 12 * 60 * 1000 + 7000,
                        t0 + 20 * 60 * 1000 + SCRAPE_MS, t0 + 21 * 60 * 1000 + 500,
                        t_end, t_end + 60 * 1000]
            exprs = expressions()
            total, bad, both_error, nonempty = 0, [], 0, 0
            for e in exprs:
                for t in instants:
                    p = query(prom.port, e, t)
                    q = query(d.port, e, t)
                    total += 1
                    if p[0] == "error" and q[0] == "error":
                        both_error += 1
                    if p[0] == "scalar" or (p[0] == "vector" and p[1]):
                        nonempty += 1
                    if not same(p, q):
                        bad.append((e, t - t0, p, q))
            print("     | %d expressions x %d instants = %d comparisons (%d with a value), "
                  "%d disagree, %d errors on both sides" % (len(exprs), len(instants), total,
                                                             nonempty, len(bad), both_error))
            for e, dt, p, q in bad[:25]:
                print("     | %s @+%dms\n     |   prometheus %s\n     |   ripcord    %s"
                      % (e, dt, str(p)[:300], str(q)[:300]))
            expect(len(exprs) >= 200, "only %d expressions", len(exprs))
            # Agreement on nothing proves nothing: most answers must hold values.
            expect(nonempty >= 0.8 * total, "only %d of %d answers hold a value", nonempty, total)
            expect(not bad, "%d of %d answers differ", len(bad), total)
        r.run("every expression agrees with Prometheus 2.42 at every instant", case_compare)
        r.run("ripcord exits 0", d.stop)
    finally:
        if d is not None:
            d.cleanup()
        try:
            prom.stop()
        finally:
            prom.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
