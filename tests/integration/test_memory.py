#!/usr/bin/env python3
"""test_memory.py: --storage.max-memory end to end — a daemon with a small bound (8 MiB over
two shards) flooded with far more distinct selected series than fit.

What must hold:
  * every write is answered 204 (memory is not an admission check: see src/ingest.c);
  * ripcord_storage_memory_bytes (accounted) never passes the limit by more than the stated
    slack: 32 KiB, i.e. per shard the one allocation that crossed its share and the bookkeeping
    the store never refuses (store.h, "Memory accounting and bound");
  * new series are refused and counted (ripcord_store_series_refused_total{reason="memory"},
    and their samples in ripcord_store_samples_refused_total{reason="memory"});
  * a series held before the flood keeps taking samples, and the rule reading it keeps
    evaluating them (its value on /api/v1/rules follows what was written);
  * RSS does not grow with the refused part of the flood (not checked against an
    AddressSanitizer build, whose quarantine holds on to freed memory);
  * once the watermark moves past the retention (samples two hours ahead, --storage.max-ahead=0),
    the old series are expired, the memory comes back down and new series are accepted again.

usage: test_memory.py <ripcord-binary>
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (V1, Daemon, Runner, expect, expect_eq, healthy, metric, post_write,  # noqa: E402
                     request, scrape, wait_until)

LIMIT = 8 << 20
SLACK = 32 << 10

RULES = """rollback:
  service: memtest
  environment: test
  triggers:
    - name: keep
      expr: 'max(keep_value{job="mem"})'
      threshold: 1e12
    - name: flood
      expr: 'count(flood_total{job="mem"})'
      threshold: 1e12
  action:
    type: previous_version
"""


def series(name, labels, points):
    return V1.timeseries(sorted([("__name__", name), ("job", "mem")] + list(labels)), points)


def write(port, ts_list):
    r = post_write(port, V1.request(ts_list), timeout=30)
    expect_eq(r.status, 204, "remote write answer")


def settle(port):
    """Waits until every request answered so far is applied: a write is answered before the
    store applies it (src/workers.h, Order), so counters read right after may lag."""
    wait_until(lambda: metric(port, "ripcord_ingest_queue_depth") == 0, 30,
               what="the ingest queue drained")


def flood(port, start, count, ts, per_request=1000, samples=3):
    """count new series flood_total{i=start..}, `samples` samples each ending at ts.

    One request in flight at a time: each is applied before the next is sent. Otherwise how
    many requests wait in the ingest queue (each holding its body and decoded parts) depends
    on how far the workers fall behind on a loaded machine, and the allocator keeps that peak
    resident: the RSS check then measured the machine's load (it once saw +7.5 MB), not what
    the refused series cost."""
    for base in range(start, start + count, per_request):
        write(port, [series("flood_total", [("i", "%07d" % i)],
                            [(float(i * 10 + k) / 7.0, ts - (samples - 1 - k) * 1000)
                             for k in range(samples)])
                     for i in range(base, min(base + per_request, start + count))])
        settle(port)


def trigger(port, name):
    r = request(port, "GET", "/api/v1/rules")
    expect_eq(r.status, 200, "GET /api/v1/rules")
    rules = json.loads(r.body)["data"]["rules"]
    return {t["name"]: t for t in rules[0]["triggers"]}[name]


def memory(s):
    return metric(s, "ripcord_storage_memory_bytes")


def asan(exe):
    """True for a binary built with AddressSanitizer (it links libasan)."""
    with open(exe, "rb") as f:
        return b"libasan.so" in f.read()


def main():
    exe = sys.argv[1]
    r = Runner("memory")
    tmp = tempfile.mkdtemp(prefix="rc-mem-")
    rules = os.path.join(tmp, "mem.rules.yml")
    with open(rules, "w") as f:
        f.write(RULES)
    d = Daemon(exe, ["--rules.file=" + rules, "--rules.evaluation-interval=100ms",
                     "--storage.max-memory=8MiB", "--storage.max-series=60000",
                     "--storage.decision-cache-size=4096", "--ingest.workers=2",
                     "--storage.max-ahead=0"]).start()
    state = {}
    try:
        def case_start():
            s = scrape(d.port)
            expect_eq(metric(s, "ripcord_storage_memory_limit_bytes"), LIMIT, "limit metric")
            m = memory(s)
            # The tables and caches of both shards, allocated up front, counted from the start.
            expect(100 << 10 < m < LIMIT // 2, "fixed cost %d", m)
            state["fixed"] = m

        def case_keep_before():
            now = int(time.time() * 1000)
            write(d.port, [series("keep_value", [], [(1.0, now)])])
            wait_until(lambda: trigger(d.port, "keep")["value"] == 1.0, 10,
                       what="the keep rule evaluated")

        def case_flood():
            now = int(time.time() * 1000)
            flood(d.port, 0, 30000, now)
            s = scrape(d.port)
            state["rss1"] = metric(s, "process_resident_memory_bytes")
            m = memory(s)
            expect(m <= LIMIT + SLACK, "memory %d over the limit %d + %d", m, LIMIT, SLACK)
            expect(m > LIMIT * 3 // 4, "memory %d: the flood should have filled it", m)
            refused = metric(s, "ripcord_store_series_refused_total", reason="memory")
            held = metric(s, "ripcord_store_series")
            expect(refused > 0 and held > 1000, "refused %s, held %s", refused, held)
            expect_eq(metric(s, "ripcord_store_series_refused_total", reason="max_series"), 0,
                      "refused for max series")
            expect(metric(s, "ripcord_store_samples_refused_total", reason="memory") >= 3 * refused,
                   "the refused series' samples are counted")
            state["held"] = held
            print("     | flood: %d series held, %d refused, %d bytes accounted (limit %d), "
                  "RSS %d" % (held, refused, m, LIMIT, state["rss1"]), flush=True)

        def case_flood_more():
            # Twice as much again, all refused: neither the accounted memory nor RSS grows.
            now = int(time.time() * 1000)
            flood(d.port, 100000, 60000, now)
            s = scrape(d.port)
            m = memory(s)
            expect(m <= LIMIT + SLACK, "memory %d over the limit", m)
            expect_eq(metric(s, "ripcord_store_series"), state["held"], "series held")
            rss = metric(s, "process_resident_memory_bytes")
            if not asan(exe):
                expect(rss - state["rss1"] < 4 << 20, "RSS grew by %d with refused series only",
                       rss - state["rss1"])
            print("     | second flood: RSS %d -> %d%s" % (state["rss1"], rss,
                  " (not checked: AddressSanitizer's quarantine)" if asan(exe) else ""), flush=True)

        def case_keep_evaluates():
            # The series held before the flood takes samples (its head chunk grows past the
            # high-water mark) and the rule follows them.
            for v in range(2, 31):
                write(d.port, [series("keep_value", [], [(float(v), int(time.time() * 1000))])])
                time.sleep(0.02)
            wait_until(lambda: trigger(d.port, "keep")["value"] == 30.0, 10,
                       what="the keep rule at the last value written")
            expect(trigger(d.port, "flood")["value"] >= state["held"] - 1,
                   "the flood rule sees the series held")
            s = scrape(d.port)
            expect(memory(s) <= LIMIT + SLACK, "memory over the limit")
            expect(healthy(d.port), "healthy")

        def case_recovers():
            # Samples two hours ahead (refused as new series, but moving each shard's
            # watermark) age out everything held: memory back near the fixed cost, and new
            # series accepted again.
            ahead = int(time.time() * 1000) + 2 * 3600 * 1000
            removed0 = metric(d.port, "ripcord_store_series_removed_total")
            flood(d.port, 900000, 200, ahead, per_request=200, samples=1)
            wait_until(lambda: metric(d.port, "ripcord_store_series_removed_total") >=
                       removed0 + state["held"], 10, what="the old series expired")
            s = scrape(d.port)
            m = memory(s)
            expect(m < state["fixed"] + (1 << 20), "memory %d after expiry (fixed %d)", m,
                   state["fixed"])
            created0 = metric(s, "ripcord_store_series_created_total")
            flood(d.port, 950000, 500, ahead + 1000, per_request=500, samples=1)
            s = scrape(d.port)
            expect_eq(metric(s, "ripcord_store_series_created_total") - created0, 500,
                      "new series accepted after the memory came back")
            print("     | after expiry: %d bytes accounted" % m, flush=True)

        def case_too_small():
            # A share the table and decision cache already fill is refused at start, saying so.
            p = subprocess.run([exe, "serve", "--web.listen-address=127.0.0.1:0",
                                "--storage.path=" + os.path.join(tmp, "small"),
                                "--storage.max-memory=1MiB", "--ingest.workers=2"],
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
            err = p.stderr.decode("utf-8", "replace")
            expect_eq(p.returncode, 1, "exit status (stderr %r)" % err[-500:])
            expect("--storage.max-memory too small for the table and decision cache" in err and
                   "of 524288 bytes per shard): lower --storage.decision-cache-size" in err,
                   "the reason: %r", err[-500:])

        r.run("limit and fixed cost exposed at start", case_start)
        r.run("a limit the fixed cost fills refuses the start", case_too_small)
        r.run("a series held before the flood", case_keep_before)
        if r.run("flood: memory bounded, new series refused and counted", case_flood):
            r.run("more flood: nothing grows", case_flood_more)
            r.run("the held series keeps taking samples; its rule follows", case_keep_evaluates)
            r.run("watermark past the retention: memory back, series accepted", case_recovers)
        def case_stop():
            d.stop()
            log = d.log()
            expect('msg="memory limit reached' in log, "the refusals are logged")
            expect(log.count('msg="memory limit reached') <= 2 * 2,
                   "logged at most once a minute per shard")
            # Every block went back through the accountant it came from (workers.c checks).
            expect("did not return to zero" not in log, "accounting drift:\n%s", log[-2000:])

        r.run("clean stop, accounting back to zero", case_stop)
    finally:
        d.cleanup()
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
