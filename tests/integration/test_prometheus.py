#!/usr/bin/env python3
"""test_prometheus.py: a real Prometheus remote-writes to ripcord.

usage: test_prometheus.py <ripcord-binary> [<prometheus-binary>]   (default /usr/bin/prometheus)

Prometheus (Debian's 2.42) gets a temporary TSDB directory and a config that scrapes itself and
ripcord every second and remote-writes to ripcord with a queue tuned for fast delivery (0.5 s
batch deadline, 1-2 shards) and metadata every 2 s. The test waits until ripcord has received
Prometheus' own series, then checks that neither side saw an error, that the sample counts of
the two agree, and that both shut down cleanly.
"""

import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, Prometheus, Runner, expect, expect_eq, ingest_status,  # noqa: E402
                     metric, metric_sum, scrape, wait_until)

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{prom_port}']
  - job_name: ripcord
    static_configs:
      - targets: ['127.0.0.1:{rc_port}']
remote_write:
  - url: http://127.0.0.1:{rc_port}/api/v1/write
    name: ripcord
    remote_timeout: 10s
    queue_config:
      capacity: 2500
      min_shards: 1
      max_shards: 2
      max_samples_per_send: 500
      batch_send_deadline: 500ms
      min_backoff: 50ms
      max_backoff: 1s
    metadata_config:
      send: true
      send_interval: 2s
"""


def prom_sum(samples, name):
    return metric_sum(samples, name)


def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary> [<prometheus-binary>]" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    prom_exe = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/prometheus"
    r = Runner("test_prometheus")
    t0 = time.monotonic()
    if not os.access(prom_exe, os.X_OK):
        r.fail_setup("prometheus binary", "%s is not executable (apt-get install prometheus)"
                     % prom_exe)
        return r.finish()
    # The store keeps what the config's select: list names (until rules do): Prometheus' `up`
    # series and its HTTP request counters; everything else is counted and dropped.
    sel_dir = tempfile.mkdtemp(prefix="ripcord-it-sel-")
    sel_cfg = os.path.join(sel_dir, "ripcord.yml")
    with open(sel_cfg, "w") as f:
        f.write("select:\n  - up\n  - 'prometheus_http_requests_total{handler=~\"/metrics|/-/ready\"}'\n")
    d = Daemon(exe, flags=["--config.file=" + sel_cfg])
    p = None
    state = {}
    try:
        r.run("ripcord starts", d.start)
        p = Prometheus(prom_exe, config=lambda port: CONFIG.format(prom_port=port, rc_port=d.port),
                       prefix="ripcord-it-prom-")
        if not r.run("Prometheus starts and is ready", p.start):
            print(p.log()[-3000:])
            raise SystemExit(r.finish())

        def delivered():
            st = ingest_status(d.port)
            m = st["metrics"]
            ok = ("up" in m and "prometheus_http_requests_total" in m
                  and "ripcord_write_samples_total" in m and st["totals"]["samples"] > 2000)
            return ok and st

        def case_delivery():
            st = wait_until(delivered, 60, interval=0.5,
                            what="Prometheus' own series (and ripcord's) in ripcord's tally")
            up = st["metrics"]["up"]
            expect(up["samples"] >= 2 and up["series"] >= 2, "up: %r", up)
            state["tally"] = st
            print("     | tally totals after %.1fs: %r" % (time.monotonic() - t0, st["totals"]))

        def case_no_errors_ripcord():
            s = scrape(d.port)
            for (name, labels), v in sorted(s.items()):
                if name in ("ripcord_write_decode_errors_total", "ripcord_write_invalid_series_total",
                            "ripcord_write_dropped_samples_total", "ripcord_ingest_queue_full_total",
                            "ripcord_http_parse_errors_total"):
                    expect_eq(v, 0, "%s%r" % (name, labels))
                if name == "ripcord_http_requests_total" and dict(labels).get("handler") == \
                        "/api/v1/write":
                    code = dict(labels)["code"]
                    if code != "204":
                        expect_eq(v, 0, "write answers with code %s" % code)
            expect(metric(s, "ripcord_http_requests_total", handler="/api/v1/write",
                          code="204") > 0, "no 204 answers")

        def case_no_errors_prometheus():
            s = p.metrics()
            sent = prom_sum(s, "prometheus_remote_storage_samples_total")
            expect(sent > 0, "prometheus_remote_storage_samples_total is %r" % sent)
            for name in ("prometheus_remote_storage_samples_failed_total",
                         "prometheus_remote_storage_samples_retried_total",
                         "prometheus_remote_storage_samples_dropped_total",
                         "prometheus_remote_storage_metadata_failed_total",
                         "prometheus_remote_storage_metadata_retried_total",
                         "prometheus_remote_storage_exemplars_failed_total",
                         "prometheus_remote_storage_histograms_failed_total"):
                present = any(n == name for n, _ in s)
                if name == "prometheus_remote_storage_samples_failed_total":
                    expect(present, "%s missing from Prometheus' /metrics" % name)
                expect_eq(prom_sum(s, name), 0, name)
            bad = [l for l in p.log().splitlines()
                   if re.search(r"level=(error|warn).*(remote|queue_manager|non-recoverable)", l)]
            expect(not bad, "Prometheus logged remote-write problems:\n%s", "\n".join(bad[:5]))

        def case_metadata():
            wait_until(lambda: metric(d.port, "ripcord_write_metadata_total") > 50, 30, interval=0.5,
                       what="metadata-only WriteRequests from Prometheus")

        def case_counts_agree():
            # ripcord counts a sample when the request arrives; Prometheus counts it just before
            # sending. So ripcord's count read first can never exceed Prometheus' read after.
            rs = scrape(d.port)
            ps = p.metrics()
            r0 = metric(rs, "ripcord_write_samples_total")
            p1 = prom_sum(ps, "prometheus_remote_storage_samples_total")
            expect(r0 <= p1, "ripcord counted %d samples, Prometheus sent only %d", r0, p1)
            m0 = metric(rs, "ripcord_write_metadata_total")
            pm = prom_sum(ps, "prometheus_remote_storage_metadata_total")
            expect(0 < m0 <= pm, "ripcord counted %d metadata entries, Prometheus sent %d", m0, pm)
            state["p1"] = p1

        r.run("Prometheus' series arrive at ripcord", case_delivery)
        r.run("ripcord: no decode errors, invalid series or non-204 answers",
              case_no_errors_ripcord)
        r.run("Prometheus: nothing failed, retried or dropped", case_no_errors_prometheus)
        r.run("metadata requests accepted", case_metadata)

        def case_store():
            # Prometheus scrapes itself and ripcord: two `up` series, plus its request
            # counters; the store holds them and drops the rest without loss or conflict.
            def stored():
                s = scrape(d.port)
                return metric(s, "ripcord_store_series") >= 3 and s
            s = wait_until(stored, 30, interval=0.5, what="selected series in the store")
            expect(metric(s, "ripcord_store_samples_appended_total") > 0, "nothing appended")
            expect(metric(s, "ripcord_store_unselected_series_total") > 0, "nothing dropped")
            for name in ("ripcord_store_samples_conflict_total", "ripcord_store_samples_too_old_total"):
                expect_eq(metric(s, name), 0, name)
            for reason in ("max_series", "memory"):
                expect_eq(metric(s, "ripcord_store_series_refused_total", reason=reason), 0,
                          "series refused for " + reason)
            expect_eq(metric(s, "ripcord_store_samples_refused_total", reason="memory"), 0,
                      "samples refused for memory")

        r.run("store keeps the selected series, drops the rest", case_store)
        r.run("sample counts agree (ripcord <= Prometheus sent)", case_counts_agree)

        def case_prom_stop():
            rc = p.stop()
            expect_eq(rc, 0, "Prometheus exit status")

        def case_flushed():
            # Prometheus flushes its queues on shutdown: everything it had counted as sent must
            # be in ripcord now, and the consumer must have seen all of it.
            p1 = state.get("p1")
            expect(p1 is not None, "no earlier Prometheus count")
            s = scrape(d.port)
            rfinal = metric(s, "ripcord_write_samples_total")
            expect(rfinal >= p1, "ripcord has %d samples, Prometheus had sent %d", rfinal, p1)
            wait_until(lambda: ingest_status(d.port)["totals"]["samples"] ==
                       metric(d.port, "ripcord_write_samples_total"), 15,
                       what="consumer tally equal to the accepted samples")
            case_no_errors_ripcord()

        r.run("Prometheus exits 0 on SIGTERM", case_prom_stop)
        r.run("after Prometheus' shutdown flush, ripcord has every sample", case_flushed)
        r.run("ripcord exits 0 on SIGTERM", d.stop)
    finally:
        if p is not None:
            if r.failed:
                print("---- Prometheus log (tail) ----\n" + p.log()[-3000:])
            p.cleanup()
        if r.failed and d.proc is not None:
            print("---- ripcord log (tail) ----\n" + d.log()[-3000:])
        d.cleanup()
        shutil.rmtree(sel_dir, ignore_errors=True)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t0))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
