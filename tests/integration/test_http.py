#!/usr/bin/env python3
"""test_http.py: ripcord's HTTP/1.1 server from the outside — keep-alive, pipelining, chunked
bodies, Expect: 100-continue, timeouts, connection limits, HTTP/1.0, HEAD, the /metrics text
format, concurrency, and graceful shutdown with a request in flight.

usage: test_http.py <ripcord-binary>
"""

import email.utils
import os
import random
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (V1, V2, Closed, Conn, Daemon, Runner, build_request, chunked, expect,  # noqa: E402
                     expect_eq, good_histogram, ingest_status, metric, parse_exposition,
                     parse_labels, post_write, request, rw_headers, scrape, snappy_compress,
                     v1_simple, wait_until, write_request_bytes)

TS = 1700000000000


def samples_total(port_or_samples):
    return metric(port_or_samples, "ripcord_write_samples_total")


def metrics_via(conn):
    r = conn.request("GET", "/metrics")
    expect_eq(r.status, 200, "GET /metrics")
    return parse_exposition(r.text)


# ---------------------------------------------------------------------------------------------
# Cases on the main daemon (default limits)
# ---------------------------------------------------------------------------------------------

def case_keepalive(port):
    """200 requests of all kinds on one connection: one TCP connection accepted, none closed,
    every write counted."""
    with Conn(port) as c:
        s0 = metrics_via(c)
        acc0 = metric(s0, "ripcord_http_connections_accepted_total")
        sent = 0
        for i in range(200):
            k = i % 4
            if k == 0:
                r = post_write(port, v1_simple("keepalive", 1 + i % 5), conn=c)
                sent += 1 + i % 5
                expect_eq(r.status, 204, "write #%d" % i)
            elif k == 1:
                r = c.request("GET", "/-/healthy")
                expect_eq((r.status, r.text), (200, "ripcord is healthy.\n"), "healthy #%d" % i)
            elif k == 2:
                r = c.request("GET", "/-/ready")
                expect_eq((r.status, r.text), (200, "ripcord is ready.\n"), "ready #%d" % i)
            else:
                r = c.request("GET", "/nowhere")
                expect_eq(r.status, 404, "404 #%d" % i)
            expect(r.header("Connection") is None, "request #%d: Connection: %s", i,
                   r.header("Connection"))
        s1 = metrics_via(c)
    expect_eq(metric(s1, "ripcord_http_connections_accepted_total") - acc0, 0,
              "connections accepted during the 200 requests")
    expect_eq(samples_total(s1) - samples_total(s0), sent, "samples")


def case_pipelining(port):
    """60 requests written in one send, answered in order."""
    reqs, want = [], []
    for i in range(60):
        k = i % 3
        if k == 0:
            reqs.append(write_request_bytes(v1_simple("pipelined", 2)))
            want.append(204)
        elif k == 1:
            reqs.append(build_request("GET", "/-/healthy"))
            want.append(200)
        else:
            reqs.append(build_request("GET", "/missing-%d" % i))
            want.append(404)
    s0 = samples_total(port)
    with Conn(port, timeout=20) as c:
        c.send(b"".join(reqs))
        got = [c.read_response().status for _ in reqs]
        expect_eq(got, want, "statuses in order")
        expect_eq(c.buf, b"", "bytes after the last response")
    expect_eq(samples_total(port) - s0, 40, "samples")


def case_reset_before_answer(port):
    """Clients that send writes and reset the connection before the answers come (the decode
    runs on a worker thread meanwhile): the daemon drops those answers, keeps serving, and
    counts every sample it accepted exactly once."""
    import struct as _struct
    s0 = samples_total(port)
    reqs = b"".join(write_request_bytes(v1_simple("reset_early", 2)) for _ in range(30))
    for _ in range(20):
        sk = socket.create_connection(("127.0.0.1", port), timeout=5)
        sk.sendall(reqs)
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _struct.pack("ii", 1, 0))
        sk.close()  # RST: whatever was answered or not, the connection is gone
    # A request on a fresh connection still works, and the counts settle on a whole number of
    # requests: 2 samples each, nothing half-counted, nothing counted twice.
    r = request(port, "POST", "/api/v1/write", snappy_compress(
        V1.request([V1.timeseries([("__name__", "after_reset")], [(1.0, TS)])])), rw_headers(1))
    expect_eq(r.status, 204, "write after the resets")
    deadline = time.monotonic() + 10
    while True:
        got = samples_total(port) - s0
        if get_queue_depth(port) == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    expect(got % 2 == 1 and got <= 20 * 30 * 2 + 1, "samples after resets: %d", got)


def get_queue_depth(port):
    r = request(port, "GET", "/metrics")
    m = re.search(r"^ripcord_ingest_queue_depth (\d+)$", r.text, re.M)
    return int(m.group(1)) if m else -1


def case_chunked(port):
    """Chunked request bodies in several shapes (1-byte chunks, one chunk, extensions and
    trailers, sent in many TCP writes) are accepted and counted exactly."""
    payload = V1.request([V1.timeseries([("__name__", "chunked_body"), ("job", "x")],
                                        [(float(i), TS + i) for i in range(10)])])
    body = snappy_compress(payload)
    hdrs = rw_headers(1) + [("Transfer-Encoding", "chunked")]
    s0 = samples_total(port)
    for sizes in ((1,), (len(body),), (3, 50, 7), (1000,)):
        r = request(port, "POST", "/api/v1/write", chunked(body, sizes=sizes), hdrs)
        expect_eq(r.status, 204, "status for chunk sizes %r (body %r)" % (sizes, r.body))
    # Written in pieces, one chunk per send.
    raw = build_request("POST", "/api/v1/write", chunked(body, sizes=(5,)), hdrs)
    with Conn(port) as c:
        for i in range(0, len(raw), 9):
            c.send(raw[i:i + 9])
        r = c.read_response()
        expect_eq(r.status, 204, "status when sent in 9-byte writes")
        # and the connection stays usable after a chunked request
        r = c.request("GET", "/-/healthy")
        expect_eq(r.status, 200, "healthy after chunked")
    expect_eq(samples_total(port) - s0, 50, "samples")
    # lowercase transfer-encoding and chunk-size in upper-case hex
    big = snappy_compress(V1.request([V1.timeseries(
        [("__name__", "chunked_body"), ("pad", "y" * 300)], [(1.0, TS)])]))
    raw = (b"POST /api/v1/write HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-protobuf\r\n"
           b"transfer-encoding: chunked\r\n\r\n" + b"%X\r\n" % len(big) + big + b"\r\n0\r\n\r\n")
    with Conn(port) as c:
        c.send(raw)
        expect_eq(c.read_response().status, 204, "lower-case headers, upper-case hex")


def case_expect_continue(port):
    """Expect: 100-continue gets an interim 100 before the body is sent, then the final 204;
    an over-limit Content-Length gets the final 413 and no 100."""
    body = snappy_compress(v1_simple("expect_continue", 4))
    s0 = samples_total(port)
    with Conn(port) as c:
        c.send(build_request("POST", "/api/v1/write", b"", rw_headers(1) + [
            ("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        r = c.read_response(skip_1xx=False)
        expect_eq((r.status, r.body), (100, b""), "interim response")
        c.send(body)
        r = c.read_response()
        expect_eq(r.status, 204, "final status")
        # The same connection again, 100-continue and keep-alive together.
        c.send(build_request("POST", "/api/v1/write", b"", rw_headers(1) + [
            ("Expect", "100-Continue"), ("Content-Length", str(len(body)))]))
        expect_eq(c.read_response(skip_1xx=False).status, 100, "second interim")
        c.send(body)
        expect_eq(c.read_response().status, 204, "second final")
    expect_eq(samples_total(port) - s0, 8, "samples")
    with Conn(port) as c:
        c.send(build_request("POST", "/api/v1/write", b"", rw_headers(1) + [
            ("Expect", "100-continue"), ("Content-Length", str(64 << 30))]))
        r = c.read_response(skip_1xx=False)
        expect_eq(r.status, 413, "status for a 64 GiB Content-Length")
        expect(b"request body too large" in r.body, "body %r", r.body)
        expect(c.wait_closed(10), "connection not closed after 413")


def case_http10(port):
    """HTTP/1.0 without keep-alive: answered, then closed. HTTP/1.0 with Connection: keep-alive:
    the connection stays usable."""
    with Conn(port) as c:
        c.send(b"GET /-/healthy HTTP/1.0\r\n\r\n")
        r = c.read_response()
        expect_eq(r.status, 200, "status")
        expect_eq((r.header("Connection") or "").lower(), "close", "Connection header")
        expect(c.wait_closed(10), "HTTP/1.0 connection left open")
        expect_eq(c.buf, b"", "bytes after the response")
    body = snappy_compress(v1_simple("http10", 2))
    s0 = samples_total(port)
    with Conn(port) as c:
        c.send(build_request("POST", "/api/v1/write", body, rw_headers(1), version="HTTP/1.0"))
        r = c.read_response()
        expect_eq(r.status, 204, "HTTP/1.0 write")
        expect(c.wait_closed(10), "HTTP/1.0 write connection left open")
    with Conn(port) as c:
        for i in range(3):
            c.send(b"GET /-/healthy HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            expect_eq(r.status, 200, "keep-alive HTTP/1.0 #%d" % i)
            expect(r.header("Connection") is None or r.header("Connection").lower() != "close",
                   "keep-alive HTTP/1.0 answered with Connection: close")
    expect_eq(samples_total(port) - s0, 2, "samples")


def case_connection_close(port):
    """A request with Connection: close is answered with Connection: close and the server
    closes; pipelined requests behind it are not answered."""
    with Conn(port) as c:
        c.send(build_request("GET", "/-/healthy", headers=[("Connection", "close")])
               + build_request("GET", "/-/ready"))
        r = c.read_response()
        expect_eq(r.status, 200, "status")
        expect_eq((r.header("Connection") or "").lower(), "close", "Connection header")
        expect(c.wait_closed(10), "connection left open")
        expect_eq(c.buf, b"", "a request behind Connection: close was answered")


def check_exposition(text):
    """The Prometheus text format, strictly: every non-comment line is `name{labels} value`,
    each family has one HELP and one TYPE before its samples, a family's samples are contiguous,
    no series repeats, counters are named *_total and non-negative, histogram buckets are
    cumulative with +Inf equal to _count."""
    lines = text.split("\n")
    expect_eq(lines[-1], "", "the exposition ends with a newline")
    types, helps, seen_families, series = {}, set(), [], set()
    current = None
    sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    hist = {}
    for i, line in enumerate(lines[:-1], 1):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            expect(name not in helps, "line %d: second HELP for %s", i, name)
            expect(len(line.split(" ", 3)) == 4 and line.split(" ", 3)[3], "line %d: empty HELP", i)
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            expect(len(parts) == 4, "line %d: bad TYPE %r", i, line)
            expect(parts[2] not in types, "line %d: second TYPE for %s", i, parts[2])
            expect(parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"),
                   "line %d: bad type %r", i, parts[3])
            types[parts[2]] = parts[3]
            continue
        expect(not line.startswith("#") and line.strip() == line and line,
               "line %d: unexpected line %r", i, line)
        m = sample_re.match(line)
        expect(m is not None, "line %d: not `name{labels} value`: %r", i, line)
        name, labels, value = m.group(1), parse_labels(m.group(2)), m.group(3)
        v = float(value)  # raises on a malformed value
        family = name
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and types.get(name[:-len(suf)]) == "histogram":
                family = name[:-len(suf)]
        expect(family in types, "line %d: %s has no TYPE before it", i, name)
        expect(family in helps, "line %d: %s has no HELP before it", i, name)
        if family != current:
            expect(family not in seen_families, "line %d: samples of %s are not contiguous", i,
                   family)
            seen_families.append(family)
            current = family
        key = (name, labels)
        expect(key not in series, "line %d: duplicate series %r", i, line)
        series.add(key)
        t = types[family]
        if t == "counter":
            expect(name.endswith("_total"), "line %d: counter %s not named *_total", i, name)
            expect(v >= 0, "line %d: negative counter", i)
        if t == "histogram":
            rest = tuple(kv for kv in labels if kv[0] != "le")
            h = hist.setdefault((family, rest), {"buckets": [], "count": None, "sum": None})
            if name.endswith("_bucket"):
                le = dict(labels).get("le")
                expect(le is not None, "line %d: bucket without le", i)
                h["buckets"].append((float(le), v))
            elif name.endswith("_count"):
                h["count"] = v
            else:
                h["sum"] = v
    for (family, rest), h in hist.items():
        b = h["buckets"]
        expect(b and b[-1][0] == float("inf"), "%s%r: no +Inf bucket", family, rest)
        expect(all(b[k][0] < b[k + 1][0] and b[k][1] <= b[k + 1][1] for k in range(len(b) - 1)),
               "%s%r: buckets not increasing/cumulative: %r", family, rest, b)
        expect_eq(b[-1][1], h["count"], "%s%r: +Inf bucket vs _count" % (family, rest))
        expect(h["sum"] is not None, "%s%r: no _sum", family, rest)
    for name in types:
        expect(name in seen_families, "TYPE %s declared but no samples", name)
    return types


def case_metrics_format(port):
    """GET /metrics is valid Prometheus text format and has the metrics the tests rely on;
    HEAD /metrics has the same headers (including the real Content-Length) and no body, and the
    connection stays in sync afterwards."""
    with Conn(port) as c:
        r = c.request("GET", "/metrics")
        expect_eq(r.status, 200, "status")
        expect(r.header("Content-Type", ).startswith("text/plain; version=0.0.4"),
               "Content-Type %r", r.header("Content-Type"))
        types = check_exposition(r.text)
        for name, t in (("ripcord_write_samples_total", "counter"),
                        ("ripcord_write_decode_errors_total", "counter"),
                        ("ripcord_write_invalid_series_total", "counter"),
                        ("ripcord_http_connection_timeouts_total", "counter"),
                        ("ripcord_http_connections_aborted_total", "counter"),
                        ("ripcord_http_request_duration_seconds", "histogram"),
                        ("ripcord_http_connections_open", "gauge"),
                        ("ripcord_ready", "gauge"), ("process_start_time_seconds", "gauge")):
            expect_eq(types.get(name), t, "TYPE of %s" % name)
        s = parse_exposition(r.text)
        expect_eq(metric(s, "ripcord_ready"), 1, "ripcord_ready")
        expect(metric(s, "ripcord_http_connections_open") >= 1, "no open connection counted")
        start = metric(s, "process_start_time_seconds")
        expect(abs(start - time.time()) < 3600, "process_start_time_seconds %r", start)
        get_len = len(r.body)
        r = c.request("HEAD", "/metrics")
        expect_eq(r.status, 200, "HEAD status")
        expect_eq(r.body, b"", "HEAD body")
        cl = int(r.header("Content-Length") or "0")
        # Counters move between the two requests; the length must be the GET body's, roughly.
        expect(abs(cl - get_len) < 2048, "HEAD Content-Length %d vs GET body %d", cl, get_len)
        expect(r.header("Content-Type", ).startswith("text/plain"), "HEAD Content-Type")
        r = c.request("GET", "/-/healthy")  # would fail to parse if HEAD had sent a body
        expect_eq(r.status, 200, "request after HEAD")
        r = c.request("POST", "/metrics", b"x")
        expect_eq(r.status, 405, "POST /metrics")
        expect_eq(r.header("Allow"), "GET, HEAD", "Allow")


def case_response_headers(port):
    """Every response has a valid Date, Server and Content-Length; query strings are ignored
    for routing."""
    r = request(port, "GET", "/-/healthy")
    d = email.utils.parsedate_to_datetime(r.header("Date"))
    expect(abs(d.timestamp() - time.time()) < 300, "Date %r", r.header("Date"))
    expect(r.header("Server", ).startswith("ripcord/"), "Server %r", r.header("Server"))
    expect_eq(r.header("Content-Length"), str(len(r.body)), "Content-Length")
    r = post_write(port, v1_simple("query", 1), timeout=10)
    expect_eq(r.status, 204, "write")
    expect_eq(r.header("Content-Length"), "0", "Content-Length of 204")
    body = snappy_compress(v1_simple("query", 1))
    r = request(port, "POST", "/api/v1/write?tenant=a&x=%20", body, rw_headers(1))
    expect_eq(r.status, 204, "write with a query string")
    r = request(port, "GET", "/-/healthy?probe=1")
    expect_eq(r.status, 200, "healthy with a query string")


def case_large_body(port):
    """A ~3 MB incompressible body, sent in many writes, is accepted and counted."""
    rnd = random.Random(42)
    ts = []
    for i in range(3000):
        val = rnd.randbytes(500).hex()
        ts.append(V1.timeseries([("__name__", "large_body"), ("blob", val), ("i", str(i))],
                                [(float(i), TS)]))
    body = snappy_compress(V1.request(ts))
    expect(len(body) > 2_500_000, "body only %d bytes", len(body))
    s0 = samples_total(port)
    raw = build_request("POST", "/api/v1/write", body, rw_headers(1))
    with Conn(port, timeout=60) as c:
        for i in range(0, len(raw), 100_000):
            c.send(raw[i:i + 100_000])
        r = c.read_response(timeout=60)
        expect_eq(r.status, 204, "status (body %r)" % r.body)
    expect_eq(samples_total(port) - s0, 3000, "samples")


def case_concurrent(port):
    """16 clients x 25 requests each at once, v1 and v2 mixed: every request 204 and every
    sample, histogram and exemplar counted exactly; the consumer's tally agrees."""
    s0 = scrape(port)
    errors = []
    n_clients, n_req = 16, 25

    def client(k):
        try:
            with Conn(port, timeout=30) as c:
                for i in range(n_req):
                    if (k + i) % 2:
                        r = post_write(port, v1_simple("concurrent_v1", 3), conn=c, timeout=30)
                    else:
                        p = V2().series({"__name__": "concurrent_v2", "job": "c%d" % k},
                                        samples=[(1.0, TS + i)],
                                        exemplars=[({"trace_id": "t"}, 1.0, TS + i)])
                        p.series({"__name__": "concurrent_v2_h", "job": "c%d" % k},
                                 histograms=[good_histogram(TS + i)])
                        r = post_write(port, p.build(), version=2, conn=c, timeout=30)
                        if r.status == 204:
                            expect_eq(r.header("X-Prometheus-Remote-Write-Samples-Written"), "1",
                                      "Samples-Written")
                    if r.status != 204:
                        raise AssertionError("client %d request %d: %d %r" % (k, i, r.status,
                                                                              r.body))
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    expect(not any(t.is_alive() for t in threads), "clients still running after 120s")
    expect(not errors, "client errors: %r", errors[:3])
    n_v1 = sum(1 for k in range(n_clients) for i in range(n_req) if (k + i) % 2)
    n_v2 = n_clients * n_req - n_v1
    s1 = scrape(port)
    expect_eq(samples_total(s1) - samples_total(s0), 3 * n_v1 + n_v2, "samples")
    expect_eq(metric(s1, "ripcord_write_histograms_total")
              - metric(s0, "ripcord_write_histograms_total"), n_v2, "histograms")
    expect_eq(metric(s1, "ripcord_write_exemplars_total")
              - metric(s0, "ripcord_write_exemplars_total"), n_v2, "exemplars")

    def tally_ok():
        m = ingest_status(port)["metrics"]
        return (m.get("concurrent_v1", {}).get("samples") == 3 * n_v1
                and m.get("concurrent_v2", {}).get("samples") == n_v2
                and m.get("concurrent_v2", {}).get("exemplars") == n_v2
                and m.get("concurrent_v2_h", {}).get("histograms") == n_v2)
    wait_until(tally_ok, 20, what="consumer tally of the concurrent writes")


# ---------------------------------------------------------------------------------------------
# Cases with their own daemon
# ---------------------------------------------------------------------------------------------

def case_timeouts(exe):
    """--web.idle-timeout=1s closes an idle keep-alive connection after about 1 s;
    --web.read-timeout=1s answers a stalled body with 408. Both are counted by phase."""
    d = Daemon(exe, ["--web.idle-timeout=1s", "--web.read-timeout=1s"]).start()
    try:
        s0 = scrape(d.port)
        with Conn(d.port) as c:
            expect_eq(c.request("GET", "/-/healthy").status, 200, "first request")
            t0 = time.monotonic()
            expect(c.wait_closed(15), "idle connection not closed within 15s")
            idle = time.monotonic() - t0
        expect(0.7 <= idle <= 8, "idle connection closed after %.2fs, want about 1s", idle)
        body = snappy_compress(v1_simple("stalled", 5))
        with Conn(d.port) as c:
            c.send(build_request("POST", "/api/v1/write", body[:len(body) // 2], rw_headers(1) + [
                ("Content-Length", str(len(body)))]))
            t0 = time.monotonic()
            r = c.read_response(timeout=15)
            stalled = time.monotonic() - t0
            expect_eq(r.status, 408, "status for a stalled body")
            expect(b"request body not received in time" in r.body, "body %r", r.body)
            expect_eq((r.header("Connection") or "").lower(), "close", "Connection")
            expect(0.7 <= stalled <= 8, "stalled body answered after %.2fs", stalled)
            expect(c.wait_closed(10), "connection not closed after 408")

        def counted():
            s = scrape(d.port)
            return (metric(s, "ripcord_http_connection_timeouts_total", phase="idle")
                    - metric(s0, "ripcord_http_connection_timeouts_total", phase="idle") == 1
                    and metric(s, "ripcord_http_connection_timeouts_total", phase="body")
                    - metric(s0, "ripcord_http_connection_timeouts_total", phase="body") == 1)
        wait_until(counted, 10, what="idle and body timeouts counted")
        expect_eq(samples_total(d.port), samples_total(s0), "samples from the stalled request")
    finally:
        d.stop()


def case_max_connections(exe):
    """--web.max-connections=3: a 4th connection is accepted and closed at once without an
    answer, and counted; once one closes, a new connection is served again."""
    d = Daemon(exe, ["--web.max-connections=3"]).start()
    conns = []
    try:
        for i in range(3):
            c = Conn(d.port)
            conns.append(c)
            expect_eq(c.request("GET", "/-/healthy").status, 200, "connection %d" % i)
        rej0 = metric(metrics_via(conns[0]), "ripcord_http_connections_rejected_total")
        extra = Conn(d.port)
        try:
            try:
                extra.send(build_request("GET", "/-/healthy"))
            except OSError:
                pass
            expect(extra.wait_closed(10), "4th connection not closed")
            expect_eq(extra.buf, b"", "the 4th connection got an answer")
        finally:
            extra.close()
        s = metrics_via(conns[0])
        expect_eq(metric(s, "ripcord_http_connections_rejected_total") - rej0, 1, "rejected")
        expect_eq(metric(s, "ripcord_http_connections_open"), 3, "open connections")
        # The three keep working.
        for i, c in enumerate(conns):
            expect_eq(post_write(d.port, v1_simple("maxconn", 1), conn=c).status, 204,
                      "write on connection %d" % i)
        conns.pop().close()
        wait_until(lambda: metric(metrics_via(conns[0]), "ripcord_http_connections_open") == 2,
                   10, what="closed connection released")
        expect_eq(request(d.port, "GET", "/-/healthy").status, 200, "new connection after release")
    finally:
        for c in conns:
            c.close()
        d.stop()


def _wait_log(d, pattern, timeout):
    rx = re.compile(pattern)
    return wait_until(lambda: rx.search(d.log()), timeout, what="log line %r" % pattern)


def _refused(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


def case_graceful_shutdown(exe):
    """With a request in flight (headers and half the body sent) SIGTERM stops the listener
    and closes idle connections, the request still completes with 204 and Connection: close,
    its samples reach the consumer, and the process exits 0."""
    d = Daemon(exe).start()
    try:
        idle = Conn(d.port)
        expect_eq(idle.request("GET", "/-/healthy").status, 200, "idle connection")
        payload = V1.request([V1.timeseries([("__name__", "in_flight"), ("job", "x")],
                                            [(float(i), TS + i) for i in range(7)])])
        body = snappy_compress(payload)
        c = Conn(d.port, timeout=20)
        c.send(build_request("POST", "/api/v1/write", b"", rw_headers(1) + [
            ("Content-Length", str(len(body))), ("Expect", "100-continue")]))
        expect_eq(c.read_response(skip_1xx=False).status, 100, "interim")  # headers parsed
        c.send(body[:len(body) // 2])
        before = samples_total(d.port)
        d.signal(signal.SIGTERM)
        _wait_log(d, r'msg="shutting down"', 10)
        expect(idle.wait_closed(10), "idle keep-alive connection not closed on SIGTERM")
        wait_until(lambda: _refused(d.port), 10, what="new connections refused")
        expect(d.alive(), "daemon exited with a request in flight")
        c.send(body[len(body) // 2:])
        r = c.read_response()
        expect_eq(r.status, 204, "in-flight request status (body %r)" % r.body)
        expect_eq((r.header("Connection") or "").lower(), "close", "Connection header")
        expect(c.wait_closed(10), "connection not closed after the last response")
        c.close()
        idle.close()
        rc, secs = d.wait_exit(15)
        expect_eq(rc, 0, "exit status")
        expect(secs < 10, "took %.1fs to exit", secs)
        m = re.search(r'msg="ripcord stopped" samples=(\d+)', d.log())
        expect(m is not None, "no 'ripcord stopped' line:\n%s", d.log()[-2000:])
        expect_eq(int(m.group(1)), before + 7, "samples consumed at exit")
        expect(_refused(d.port), "port still accepting after exit")
    finally:
        d.cleanup()


def case_shutdown_timeout(exe):
    """--web.shutdown-timeout=1s: a request that never completes does not hold the process:
    it exits 0 about 1 s after SIGTERM, closing that connection."""
    d = Daemon(exe, ["--web.shutdown-timeout=1s"]).start()
    try:
        c = Conn(d.port, timeout=20)
        c.send(build_request("POST", "/api/v1/write", b"", rw_headers(1) + [
            ("Content-Length", "1000"), ("Expect", "100-continue")]))
        expect_eq(c.read_response(skip_1xx=False).status, 100, "interim")
        c.send(b"x" * 10)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc, _ = d.wait_exit(15)
        secs = time.monotonic() - t0
        expect_eq(rc, 0, "exit status")
        expect(0.7 <= secs <= 8, "exited %.2fs after SIGTERM, want about 1s", secs)
        expect(c.wait_closed(5), "stuck connection not closed")
        c.close()
    finally:
        d.cleanup()


def case_second_signal(exe):
    """A second SIGTERM while draining exits at once with status 1."""
    d = Daemon(exe, ["--web.shutdown-timeout=60s"]).start()
    try:
        c = Conn(d.port, timeout=20)
        c.send(build_request("POST", "/api/v1/write", b"", rw_headers(1) + [
            ("Content-Length", "1000"), ("Expect", "100-continue")]))
        expect_eq(c.read_response(skip_1xx=False).status, 100, "interim")
        d.signal(signal.SIGTERM)
        _wait_log(d, r'msg="shutting down"', 10)
        expect(d.alive(), "exited with a request in flight")
        d.signal(signal.SIGTERM)
        rc, secs = d.wait_exit(10)
        expect_eq(rc, 1, "exit status after a second signal")
        c.close()
    finally:
        d.cleanup()


def _big_status_daemon(exe, flags=()):
    """A daemon whose /api/v1/status/ingest answer is ~0.8 MB (8000 metric names), so that 20
    pipelined answers (~16 MB) overflow the kernel socket buffers and wait in ripcord's own
    write queue."""
    d = Daemon(exe, flags).start()
    ts = [V1.timeseries([("__name__", "big_status_%05d_padding_padding_padding" % i)], [(1.0, TS)])
          for i in range(8000)]
    expect_eq(post_write(d.port, V1.request(ts), timeout=30).status, 204, "seed write")
    wait_until(lambda: ingest_status(d.port)["totals"]["series"] == 8000, 20,
               what="seed series consumed")
    return d


STATUS_REQ = b"GET /api/v1/status/ingest HTTP/1.1\r\nHost: x\r\n\r\n"


def _status_served(port):
    return metric(port, "ripcord_http_requests_total", handler="/api/v1/status/ingest",
                  code="200") or 0


def _read_all_status(c, n, what):
    want = None
    for i in range(n):
        r = c.read_response(timeout=30)
        expect_eq(r.status, 200, "%s: response %d" % (what, i))
        if want is None:
            want = len(r.body)
            expect(want > 500_000, "status answer only %d bytes", want)
        expect_eq(len(r.body), want, "%s: length of response %d" % (what, i))
        ingest = r.body.decode()
        expect(ingest.endswith("}"), "%s: response %d truncated", what, i)
    expect(c.wait_closed(10), "%s: connection not closed after the last answer" % what)
    expect_eq(c.buf, b"", "%s: bytes after the last answer" % what)


def case_half_close(exe):
    """A client that sends its requests and then half-closes (shutdown(SHUT_WR), as HTTP/1.0
    tools and `nc -N` do) still gets every answer in full, and is not counted as aborted —
    also when the answers do not fit in the socket buffers."""
    d = _big_status_daemon(exe)
    try:
        ab0 = metric(d.port, "ripcord_http_connections_aborted_total")
        for last in (b"HTTP/1.1", b"HTTP/1.0"):
            base = _status_served(d.port)
            with Conn(d.port, timeout=30) as c:
                c.send(STATUS_REQ * 19 + STATUS_REQ.replace(b"HTTP/1.1", last))
                c.sock.shutdown(socket.SHUT_WR)
                # Let ripcord answer what it will before the client reads (it holds the rest
                # back once ~4 MiB are queued), then read everything.
                wait_until(lambda: _status_served(d.port) > base, 20, what="first answers")
                _read_all_status(c, 20, last.decode())
        expect_eq(metric(d.port, "ripcord_http_connections_aborted_total") - ab0, 0, "aborted")
    finally:
        d.stop()


def case_shutdown_slow_reader(exe):
    """SIGTERM while a keep-alive connection between requests still has answers queued for a
    client that has not read them yet: the answers already made are delivered in full (the
    requests held back are not answered), then the connection is closed and the process
    exits 0."""
    d = _big_status_daemon(exe)
    try:
        base = _status_served(d.port)
        c = Conn(d.port, timeout=30)
        try:
            c.send(STATUS_REQ * 20)
            last = [-1]

            def settled():  # answered some, and holds the rest back: the count stops moving
                v = _status_served(d.port)
                ok = v == last[0] and v > base
                last[0] = v
                return ok
            wait_until(settled, 20, interval=0.3, what="answers made and the rest held back")
            made = int(last[0] - base)
            expect(2 <= made < 20, "%d answers made before the client read", made)
            d.signal(signal.SIGTERM)
            _wait_log(d, r'msg="shutting down"', 10)
            _read_all_status(c, made, "slow reader")
        finally:
            c.close()
        rc, secs = d.wait_exit(15)
        expect_eq(rc, 0, "exit status")
    finally:
        d.cleanup()


def case_unread_close_answer(exe):
    """--web.idle-timeout=1s: a client that pipelines requests, the last with Connection: close,
    and never reads the (16 MB of) answers is disconnected after about the idle timeout instead
    of holding the connection forever; counted as an idle timeout."""
    d = _big_status_daemon(exe, ["--web.idle-timeout=1s"])
    try:
        s0 = scrape(d.port)
        c = Conn(d.port, timeout=30)
        try:
            t0 = time.monotonic()
            c.send(STATUS_REQ * 19 + STATUS_REQ.replace(b"\r\n\r\n",
                                                        b"\r\nConnection: close\r\n\r\n"))

            def released():
                s = scrape(d.port)
                # 1 = the connection doing this scrape
                # (>= 1: on a loaded machine a client connection that closed while the loop
                # was busy rendering can also be reaped by its idle timer first)
                return (metric(s, "ripcord_http_connections_open") == 1
                        and metric(s, "ripcord_http_connection_timeouts_total", phase="idle")
                        - metric(s0, "ripcord_http_connection_timeouts_total", phase="idle") >= 1)
            wait_until(released, 20, what="the unread connection closed by the idle timeout")
            secs = time.monotonic() - t0
            expect(secs >= 0.7, "closed after %.2fs, before the idle timeout", secs)
        finally:
            c.close()
    finally:
        d.stop()


def _rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def case_pipelined_flood(exe):
    """~1500 pipelined requests for a 0.8 MB answer in one 60 KB write, never read: ripcord
    answers a few, then holds the rest back until the client reads (bounded memory, the loop
    stays free for other clients), and resumes as the client reads."""
    d = _big_status_daemon(exe)
    c = None
    try:
        rss0 = _rss_kib(d.proc.pid)
        req = b"GET /api/v1/status/ingest HTTP/1.1\r\n\r\n"
        n = 60000 // len(req)
        base = _status_served(d.port)
        c = Conn(d.port, timeout=30)
        c.send(req * n)
        wait_until(lambda: _status_served(d.port) > base, 20, what="first answers")
        for i in range(3):
            t0 = time.monotonic()
            expect_eq(request(d.port, "GET", "/-/healthy", timeout=20).status, 200, "healthy")
            lat = time.monotonic() - t0
            expect(lat < 5, "another client waited %.1fs", lat)
            time.sleep(0.2)
        held = int(_status_served(d.port) - base)
        grown = _rss_kib(d.proc.pid) - rss0
        expect(held < 100, "%d of %d answers produced for a client that reads none", held, n)
        # Unbounded, this was ~1.2 GB. The bound leaves room for ASan's 256 MB quarantine.
        expect(grown < 512 * 1024, "RSS grew by %d KiB", grown)
        want = None
        for i in range(held + 20):  # past the held-back point: it must resume
            r = c.read_response(timeout=30)
            expect_eq(r.status, 200, "answer %d" % i)
            want = want or len(r.body)
            expect_eq(len(r.body), want, "length of answer %d" % i)
        expect(_status_served(d.port) - base >= held + 20, "did not resume")
        print("     | %d answered before the client read, RSS +%d KiB" % (held, grown))
    finally:
        if c is not None:
            c.close()
        d.stop()


def case_fd_exhaustion(exe):
    """RLIMIT_NOFILE=48 and 80 connections at once: ripcord serves what it can, closes the
    rest (never hangs them past the client timeout), keeps serving afterwards and exits 0."""
    d = Daemon(exe, nofile=48).start()
    conns = []
    try:
        for i in range(80):
            conns.append(Conn(d.port, timeout=10))
        served = refused = 0
        t0 = time.monotonic()
        for c in conns:
            try:
                r = c.request("GET", "/-/healthy", timeout=5)
                expect_eq(r.status, 200, "status")
                served += 1
            except (Closed, OSError):
                refused += 1
        expect(time.monotonic() - t0 < 60, "clients waited too long")
        expect(served >= 20, "only %d of 80 connections served", served)
        print("     | %d served, %d closed" % (served, refused))
        for c in conns:
            c.close()
        conns = []
        wait_until(lambda: metric(d.port, "ripcord_http_connections_open") == 1, 15,
                   what="all connections released")
        expect_eq(post_write(d.port, v1_simple("after_emfile", 3)).status, 204, "write afterwards")
        expect_eq(samples_total(d.port), 3, "samples")
    finally:
        for c in conns:
            c.close()
        d.stop()


def case_startup_errors(exe):
    """Startup failures exit non-zero at once with a reason: the port is taken (1), the storage
    path is a file (1), an unknown flag (2), a value out of range (2)."""
    import subprocess
    import tempfile
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="ripcord-it-")
    try:
        afile = os.path.join(tmp, "file")
        open(afile, "w").close()
        for args, status, text in (
                (["--web.listen-address=127.0.0.1:%d" % port, "--storage.path=" + tmp],
                 1, "cannot start the HTTP server"),
                (["--web.listen-address=127.0.0.1:0", "--storage.path=" + afile], 1,
                 "storage path unusable"),
                (["--no-such-flag=1"], 2, "unknown flag"),
                (["--web.max-connections=0"], 2, "out of range")):
            p = subprocess.run([exe, "serve"] + args, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=20)
            err = p.stderr.decode("utf-8", "replace")
            expect_eq(p.returncode, status, "exit status for %r (stderr %r)" % (args, err))
            expect(text in err, "%r not in stderr %r", text, err)
    finally:
        holder.close()
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    r = Runner("test_http")
    t0 = time.monotonic()
    d = None
    try:
        d = Daemon(exe).start()
        for name, fn in (("keep-alive: 200 requests on one connection", case_keepalive),
                         ("pipelining: 60 requests in one write, answered in order",
                          case_pipelining),
                         ("clients that reset before their answers", case_reset_before_answer),
                         ("chunked request bodies", case_chunked),
                         ("Expect: 100-continue", case_expect_continue),
                         ("HTTP/1.0 closes after the response (unless keep-alive)", case_http10),
                         ("Connection: close", case_connection_close),
                         ("GET/HEAD /metrics: Prometheus text format", case_metrics_format),
                         ("response headers and query strings", case_response_headers),
                         ("large incompressible body", case_large_body),
                         ("16 concurrent clients", case_concurrent)):
            r.run(name, fn, d.port)
        r.run("main daemon exits 0 on SIGTERM", d.stop)
    except Exception as e:
        r.fail_setup("daemon", e)
    finally:
        if d is not None:
            d.cleanup()
    r.run("idle and body timeouts", case_timeouts, exe)
    r.run("--web.max-connections enforced", case_max_connections, exe)
    r.run("graceful shutdown with a request in flight", case_graceful_shutdown, exe)
    r.run("--web.shutdown-timeout bounds the drain", case_shutdown_timeout, exe)
    r.run("second SIGTERM exits at once with status 1", case_second_signal, exe)
    r.run("half-closing client gets every answer in full", case_half_close, exe)
    r.run("SIGTERM delivers answers queued for a slow reader", case_shutdown_slow_reader, exe)
    r.run("unread Connection: close answers do not pin the connection", case_unread_close_answer,
          exe)
    r.run("pipelined flood of large answers is held back", case_pipelined_flood, exe)
    r.run("file descriptor exhaustion", case_fd_exhaustion, exe)
    r.run("startup errors exit non-zero with a reason", case_startup_errors, exe)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t0))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
