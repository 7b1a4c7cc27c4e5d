"""harness.py: shared machinery for ripcord's integration tests (Python 3 standard library only).

What is here:
  * Daemon          start/stop a ripcord (or any) process with a temporary directory; the port is
                    read from the "ripcord listening" log line; stop() sends SIGTERM and checks the
                    exit status and how long it took. Every process started is killed when the
                    test script exits, however it exits (atexit + PR_SET_PDEATHSIG).
  * Conn, request   raw-socket HTTP/1.1: send bytes, read exactly one response (status, headers,
                    body), keep-alive and pipelining, detecting a closed connection.
  * pb_* / V1 / V2  a minimal protobuf encoder (varint, zigzag, length-delimited, fixed64 double,
                    packed repeated) and builders for remote write 1.0 WriteRequest and 2.0 Request.
  * snappy_*        snappy block format encoders: literal-only (any literal length, all five tag
                    forms) and a small greedy compressor that also emits copy operations.
  * scrape, metric  read /metrics and pick values out of it.
  * Runner          runs named cases, prints one line per case and "N passed, N failed".

Nothing here waits without a deadline: every loop is bounded in count and in time.
"""

import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

LOCALHOST = "127.0.0.1"

# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------

_live = []  # every Popen started through this module, killed at exit


def _kill_all():
    for p in list(_live):
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=10)
            except Exception:
                pass
    _live.clear()


atexit.register(_kill_all)


def _on_signal(signum, frame):
    # meson test sends SIGTERM on timeout: turn it into a normal exit so atexit runs.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_signal)

try:
    _libc = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _child_setup(nofile=None, cpus=None):
    # The child gets SIGKILL if the test script dies, even by SIGKILL.
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if nofile is not None:
        import resource
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    if cpus is not None:
        os.sched_setaffinity(0, cpus)


def spawn(argv, nofile=None, cpus=None, **kw):
    """Popen with the kill-on-exit safety nets; nofile sets the child's RLIMIT_NOFILE, cpus its
    CPU affinity (a set of CPU numbers, as taskset)."""
    p = subprocess.Popen(argv, preexec_fn=lambda: _child_setup(nofile, cpus), **kw)
    _live.append(p)
    return p


class Daemon:
    """One ripcord process. Usage:

        d = Daemon(exe, ["--web.read-header-timeout=1s"]).start()
        try: ... d.port ...
        finally: d.stop()      # SIGTERM, asserts exit status 0 within stop_bound seconds
    """

    def __init__(self, exe, flags=(), start_timeout=20.0, stop_bound=15.0, nofile=None,
                 cpus=None):
        self.exe = exe
        self.nofile = nofile
        self.cpus = cpus
        self.flags = list(flags)
        self.start_timeout = start_timeout
        self.stop_bound = stop_bound
        self.proc = None
        self.port = None
        self.tmp = None
        self._lines = []
        self._cv = threading.Condition()
        self._reader = None

    def start(self):
        self.tmp = tempfile.mkdtemp(prefix="ripcord-it-")
        argv = [self.exe, "serve", "--web.listen-address=127.0.0.1:0",
                "--storage.path=" + os.path.join(self.tmp, "data")] + self.flags
        self.proc = spawn(argv, nofile=self.nofile, cpus=self.cpus, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        pat = re.compile(r'msg="ripcord listening".*\bport=(\d+)')
        with self._cv:
            while True:
                for line in self._lines:
                    m = pat.search(line)
                    if m:
                        self.port = int(m.group(1))
                        break
                if self.port:
                    break
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("ripcord exited with status %s before listening:\n%s"
                                         % (self.proc.returncode, self.log()))
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise AssertionError("ripcord did not log its port within %.0fs:\n%s"
                                         % (self.start_timeout, self.log()))
                self._cv.wait(min(left, 0.2))
        if not self.port:
            raise AssertionError("ripcord logged port 0")
        return self

    def _read_log(self):
        for raw in self.proc.stderr:
            with self._cv:
                self._lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def log(self):
        with self._cv:
            return "\n".join(self._lines)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum=signal.SIGTERM):
        self.proc.send_signal(signum)

    def wait_exit(self, bound):
        """Waits up to bound seconds; returns (status, seconds) or raises."""
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("ripcord did not exit within %.1fs of SIGTERM:\n%s"
                                 % (bound, self.log()[-3000:]))
        secs = time.monotonic() - t0
        if self._reader is not None:  # so that log() has every line the process wrote
            self._reader.join(timeout=10)
        return rc, secs

    def stop(self, expect_status=0):
        """SIGTERM; asserts the exit status and that it exited within stop_bound seconds."""
        if self.proc is None:
            return None
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            rc, secs = self.wait_exit(self.stop_bound)
            if expect_status is not None and rc != expect_status:
                raise AssertionError("ripcord exited with status %s, want %s:\n%s"
                                     % (rc, expect_status, self.log()[-3000:]))
            return secs
        finally:
            self.cleanup()

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def cleanup(self):
        self.kill()
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        if self.proc in _live:
            _live.remove(self.proc)
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


class Prometheus:
    """A real Prometheus (Debian's 2.42) on 127.0.0.1 with a temporary TSDB. config(port) gives
    prometheus.yml's text for the port it listens on; flags are added to the command line
    (e.g. --web.enable-remote-write-receiver). The log is kept in the temporary directory for
    a failing test to print."""

    def __init__(self, exe, config=None, flags=(), prefix="ripcord-prom-"):
        self.exe = exe
        self.config = config or (lambda port: "global:\n  scrape_interval: 1h\n"
                                              "  evaluation_interval: 1h\nscrape_configs: []\n")
        self.flags = list(flags)
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.proc = None
        self.port = None
        self.logf = None

    def start(self, timeout=60.0):
        cfg = os.path.join(self.tmp, "prometheus.yml")
        for _ in range(3):  # the free port can be taken between choosing and binding
            self.port = free_port()
            with open(cfg, "w") as f:
                f.write(self.config(self.port))
            if self.logf:
                self.logf.close()
            self.logf = open(os.path.join(self.tmp, "prometheus.log"), "wb")
            self.proc = spawn([self.exe, "--config.file=" + cfg,
                               "--storage.tsdb.path=" + os.path.join(self.tmp, "tsdb"),
                               "--web.listen-address=%s:%d" % (LOCALHOST, self.port),
                               "--log.level=info"] + self.flags,
                              stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)

            def ready():
                if self.proc.poll() is not None:
                    return "exited"
                try:
                    return request(self.port, "GET", "/-/ready", timeout=2).status == 200
                except OSError:
                    return False
            if wait_until(ready, timeout, what="Prometheus ready") is True:
                return self
            if "address already in use" not in self.log():
                break
        raise AssertionError("Prometheus did not start:\n" + self.log()[-3000:])

    def log(self):
        try:
            with open(os.path.join(self.tmp, "prometheus.log"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def url(self):
        return "http://%s:%d" % (LOCALHOST, self.port)

    def metrics(self):
        r = request(self.port, "GET", "/metrics", timeout=10)
        expect_eq(r.status, 200, "Prometheus /metrics")
        return parse_exposition(r.text)

    def stop(self, bound=60.0):
        """SIGTERM, then its exit status; killed (and an AssertionError) past bound."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError("Prometheus did not exit within %.0fs of SIGTERM" % bound)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.logf:
            self.logf.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def free_port():
    """A port that was free a moment ago (for programs that cannot report their own)."""
    s = socket.socket()
    s.bind((LOCALHOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it returns a truthy value or timeout seconds pass; returns the value
    or raises AssertionError. interval grows to at most 0.5 s."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except (OSError, ValueError, AssertionError) as e:
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s%s"
                                 % (timeout, what, " (last error: %r)" % last_exc if last_exc else ""))
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# ---------------------------------------------------------------------------------------------
# HTTP over raw sockets
# ---------------------------------------------------------------------------------------------

class Closed(ConnectionError):
    """The peer closed the connection (EOF or reset) before a complete response. An OSError,
    so wait_until() retries a poll that hit one."""


class Response:
    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value), in order
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %r headers=%r body=%r>" % (self.status, self.reason, self.headers,
                                                         self.body[:200])


MAX_RESPONSE_HEAD = 64 * 1024
MAX_RESPONSE_BODY = 64 << 20


class Conn:
    """One client connection. Responses are parsed from an internal buffer, so pipelined
    responses arriving in one segment are returned one per read_response() call."""

    def __init__(self, port, timeout=10.0, host=LOCALHOST):
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            raise Closed("connection closed by peer")
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out reading a response")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            self.eof = True
            raise Closed("connection reset by peer")
        if not chunk:
            self.eof = True
            raise Closed("connection closed by peer")
        self.buf += chunk

    def _read_until(self, sep, deadline, limit):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            if len(self.buf) > limit:
                raise AssertionError("response head over %d bytes" % limit)
            self._fill(deadline)

    def _read_n(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, timeout=None, head=False, skip_1xx=True):
        """Reads one response. head=True: the request was HEAD (no body follows).
        skip_1xx=False returns interim 1xx responses too. Raises Closed or socket.timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            raw = self._read_until(b"\r\n\r\n", deadline, MAX_RESPONSE_HEAD)
            lines = raw.decode("latin-1").split("\r\n")
            m = re.match(r"^(HTTP/1\.[01]) (\d{3})(?: (.*))?$", lines[0])
            if not m:
                raise AssertionError("bad status line %r" % lines[0])
            headers = []
            for line in lines[1:]:
                if ":" not in line:
                    raise AssertionError("bad header line %r" % line)
                k, v = line.split(":", 1)
                headers.append((k.strip(), v.strip()))
            status = int(m.group(2))
            resp = Response(m.group(1), status, m.group(3) or "", headers, b"")
            if 100 <= status < 200:
                if skip_1xx:
                    continue
                return resp
            if head or status in (204, 304):
                return resp
            te = resp.header("Transfer-Encoding")
            cl = resp.header("Content-Length")
            if te is not None and "chunked" in te.lower():
                body = b""
                while True:
                    size_line = self._read_until(b"\r\n", deadline, 1024)
                    size = int(size_line.split(b";")[0].strip(), 16)
                    if size == 0:
                        # trailers until an empty line
                        while self._read_until(b"\r\n", deadline, MAX_RESPONSE_HEAD):
                            pass
                        break
                    body += self._read_n(size, deadline)
                    if self._read_n(2, deadline) != b"\r\n":
                        raise AssertionError("bad chunk terminator")
                    if len(body) > MAX_RESPONSE_BODY:
                        raise AssertionError("response body too large")
                resp.body = body
            elif cl is not None:
                n = int(cl)
                if n > MAX_RESPONSE_BODY:
                    raise AssertionError("response body too large")
                resp.body = self._read_n(n, deadline)
            else:  # read until EOF
                while True:
                    try:
                        self._fill(deadline)
                    except Closed:
                        break
                    if len(self.buf) > MAX_RESPONSE_BODY:
                        raise AssertionError("response body too large")
                resp.body, self.buf = self.buf, b""
            return resp

    def request(self, method, path, body=b"", headers=(), timeout=None, **kw):
        self.send(build_request(method, path, body, headers, **kw))
        return self.read_response(timeout=timeout, head=(method == "HEAD"))

    def wait_closed(self, timeout=5.0):
        """True if the peer closes (EOF or reset) within timeout seconds; data that arrives
        meanwhile is kept in self.buf. False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline)
            except Closed:
                return True
            except (socket.timeout, TimeoutError):
                return False
            except OSError:
                return True

    def close(self, reset=False):
        try:
            if reset:  # SO_LINGER {on, 0}: close() sends RST
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def build_request(method, path, body=b"", headers=(), version="HTTP/1.1", content_length=True,
                  host=True):
    """Serialises one request. headers: list of (name, value). Content-Length is added for a
    non-empty body (or POST) unless content_length=False or the headers already set
    Content-Length or Transfer-Encoding."""
    lines = ["%s %s %s" % (method, path, version)]
    names = {k.lower() for k, _ in headers}
    if host and "host" not in names:
        lines.append("Host: 127.0.0.1")
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if content_length and "content-length" not in names and "transfer-encoding" not in names \
            and (body or method in ("POST", "PUT")):
        lines.append("Content-Length: %d" % len(body))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body


def chunked(body, sizes=(7, 100, 1)):
    """Chunked transfer coding of body, cycling through chunk sizes; with a chunk extension on
    the first chunk and a trailer, both of which a server must accept."""
    out = b""
    i = 0
    k = 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        k += 1
        piece = body[i:i + n]
        ext = ";ext=1" if i == 0 else ""
        out += b"%x%s\r\n" % (len(piece), ext.encode()) + piece + b"\r\n"
        i += n
    return out + b"0\r\nX-Trailer: yes\r\n\r\n"


def request(port, method, path, body=b"", headers=(), timeout=10.0, **kw):
    """One request on a new connection."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, path, body, headers, timeout=timeout, **kw)


def json_request(port, method, path, token=None, body=None, timeout=10.0):
    """A JSON API call: body (any JSON value) sent as application/json, token as a Bearer
    credential. Returns (response, parsed body or None when it is not JSON)."""
    hdrs = [("Authorization", "Bearer " + token)] if token else []
    data = b""
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.append(("Content-Type", "application/json"))
    r = request(port, method, path, data, hdrs, timeout=timeout)
    try:
        doc = json.loads(r.body) if r.body else None
    except ValueError:
        doc = None
    return r, doc


CT_V1 = "application/x-protobuf"
CT_V2 = "application/x-protobuf;proto=io.prometheus.write.v2.Request"


def rw_headers(version=1, content_type=None, encoding="snappy", extra=()):
    ct = content_type if content_type is not None else (CT_V1 if version == 1 else CT_V2)
    h = []
    if ct:
        h.append(("Content-Type", ct))
    if encoding:
        h.append(("Content-Encoding", encoding))
    h.append(("X-Prometheus-Remote-Write-Version", "0.1.0" if version == 1 else "2.0.0"))
    h.append(("User-Agent", "ripcord-integration-test/1"))
    return h + list(extra)


def write_request_bytes(payload, version=1, compress=True, path="/api/v1/write", **kw):
    """The bytes of a complete remote-write POST (payload: serialized protobuf)."""
    body = snappy_compress(payload) if compress else payload
    return build_request("POST", path, body, rw_headers(version, **kw))


def post_write(port, payload, version=1, compress=True, conn=None, timeout=10.0, **kw):
    body = snappy_compress(payload) if compress else payload
    hdrs = rw_headers(version, **kw)
    if conn is not None:
        return conn.request("POST", "/api/v1/write", body, hdrs, timeout=timeout)
    return request(port, "POST", "/api/v1/write", body, hdrs, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# /metrics
# ---------------------------------------------------------------------------------------------

_SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+(-?\d+))?$')
_LABEL_RE = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)')


def parse_labels(s):
    """'a="1",b="x"' -> (("a","1"),("b","x")); raises ValueError on bad syntax."""
    out = []
    pos = 0
    s = s or ""
    while pos < len(s):
        m = _LABEL_RE.match(s, pos)
        if not m:
            raise ValueError("bad label syntax at %r" % s[pos:])
        val = m.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        out.append((m.group(1), val))
        pos = m.end()
        if m.group(3) == "" and pos < len(s):
            raise ValueError("junk after labels: %r" % s[pos:])
    return tuple(out)


def parse_value(v):
    if v in ("+Inf", "Inf"):
        return float("inf")
    if v == "-Inf":
        return float("-inf")
    if v == "NaN":
        return float("nan")
    return float(v)


def parse_exposition(text):
    """Strict-enough parser of the Prometheus text format 0.0.4. Returns
    {(name, labels_tuple): value}; raises ValueError naming the first bad line."""
    out = {}
    for i, line in enumerate(text.split("\n")):
        if line == "" or line.startswith("#"):
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary",
                                                       "untyped"):
                    raise ValueError("line %d: bad TYPE line %r" % (i + 1, line))
            continue
        m = _SAMPLE_RE.match(line)
        if not m:
            raise ValueError("line %d: not `name{labels} value`: %r" % (i + 1, line))
        labels = parse_labels(m.group(2))
        key = (m.group(1), tuple(sorted(labels)))
        if key in out:
            raise ValueError("line %d: duplicate series %r" % (i + 1, line))
        out[key] = parse_value(m.group(3))
    return out


def scrape(port, timeout=10.0):
    r = request(port, "GET", "/metrics", timeout=timeout)
    if r.status != 200:
        raise AssertionError("GET /metrics: %d %r" % (r.status, r.body[:200]))
    return parse_exposition(r.text)


def metric(samples_or_port, name, **labels):
    """The value of one series; samples_or_port is a scrape() result or a port. Missing -> None."""
    s = samples_or_port if isinstance(samples_or_port, dict) else scrape(samples_or_port)
    return s.get((name, tuple(sorted(labels.items()))))


def metric_sum(samples, name):
    """Sum over every series of one metric name."""
    return sum(v for (n, _), v in samples.items() if n == name)


def ingest_status(port, timeout=10.0):
    r = request(port, "GET", "/api/v1/status/ingest", timeout=timeout)
    if r.status != 200:
        raise AssertionError("GET /api/v1/status/ingest: %d %r" % (r.status, r.body[:200]))
    return json.loads(r.text)


def healthy(port, timeout=10.0):
    r = request(port, "GET", "/-/healthy", timeout=timeout)
    return r.status == 200


# ---------------------------------------------------------------------------------------------
# Protobuf encoding (proto3 wire format)
# ---------------------------------------------------------------------------------------------

WT_VARINT, WT_I64, WT_LEN, WT_I32 = 0, 1, 2, 5
U64 = (1 << 64) - 1


def pb_varint(n):
    """Unsigned base-128 varint. Negative numbers are encoded as 64-bit two's complement,
    which is how int32/int64 fields carry them (10 bytes)."""
    if n < 0:
        n &= U64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n, bits=64):
    return ((n << 1) ^ (n >> (bits - 1))) & ((1 << bits) - 1)


def pb_key(field, wt):
    return pb_varint((field << 3) | wt)


def pb_uint(field, n):
    return pb_key(field, WT_VARINT) + pb_varint(n)


def pb_sint32(field, n):
    return pb_key(field, WT_VARINT) + pb_varint(zigzag(n, 32))


def pb_sint64(field, n):
    return pb_key(field, WT_VARINT) + pb_varint(zigzag(n, 64))


def pb_bytes(field, b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return pb_key(field, WT_LEN) + pb_varint(len(b)) + b


pb_message = pb_bytes  # an embedded message is length-delimited bytes


def double_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def pb_double(field, x):
    return pb_key(field, WT_I64) + struct.pack("<d", x)


def pb_fixed64(field, bits):
    """A double field given as its raw 64-bit pattern (for NaN payloads)."""
    return pb_key(field, WT_I64) + struct.pack("<Q", bits)


def pb_fixed32(field, n):
    return pb_key(field, WT_I32) + struct.pack("<I", n)


def pb_packed_uint(field, ns):
    return pb_bytes(field, b"".join(pb_varint(n) for n in ns)) if ns else b""


def pb_packed_sint64(field, ns):
    return pb_bytes(field, b"".join(pb_varint(zigzag(n)) for n in ns)) if ns else b""


def pb_packed_double(field, xs):
    return pb_bytes(field, b"".join(struct.pack("<d", x) for x in xs)) if xs else b""


STALE_NAN = 0x7FF0000000000002
NORMAL_NAN = 0x7FF8000000000001


def _value_field(field, v):
    """v is a float or ('bits', u64) for an exact bit pattern."""
    if isinstance(v, tuple) and v[0] == "bits":
        return pb_fixed64(field, v[1])
    return pb_double(field, float(v))


# --- Shared by v1 and v2: Histogram and BucketSpan (same field numbers) ----------------------

def pb_span(offset, length):
    return pb_sint32(1, offset) + pb_uint(2, length)


def pb_histogram(count_int=None, count_float=None, sum=0.0, schema=0, zero_threshold=0.0,
                 zero_count_int=None, zero_count_float=None, negative_spans=(),
                 negative_deltas=(), negative_counts=(), positive_spans=(), positive_deltas=(),
                 positive_counts=(), reset_hint=0, timestamp=0, custom_values=(),
                 start_timestamp=0, packed=True):
    """A native histogram. sum may be ('bits', u64), e.g. ('bits', STALE_NAN).
    packed=False sends the repeated scalars unpacked (one key per element), which decoders
    must accept too."""
    out = b""
    if count_int is not None:
        out += pb_uint(1, count_int)
    if count_float is not None:
        out += pb_double(2, count_float)
    out += _value_field(3, sum)
    if schema:
        out += pb_sint32(4, schema)
    if zero_threshold:
        out += pb_double(5, zero_threshold)
    if zero_count_int is not None:
        out += pb_uint(6, zero_count_int)
    if zero_count_float is not None:
        out += pb_double(7, zero_count_float)
    for o, l in negative_spans:
        out += pb_message(8, pb_span(o, l))
    if packed:
        out += pb_packed_sint64(9, negative_deltas) + pb_packed_double(10, negative_counts)
    else:
        out += b"".join(pb_sint64(9, d) for d in negative_deltas)
        out += b"".join(pb_double(10, c) for c in negative_counts)
    for o, l in positive_spans:
        out += pb_message(11, pb_span(o, l))
    if packed:
        out += pb_packed_sint64(12, positive_deltas) + pb_packed_double(13, positive_counts)
    else:
        out += b"".join(pb_sint64(12, d) for d in positive_deltas)
        out += b"".join(pb_double(13, c) for c in positive_counts)
    if reset_hint:
        out += pb_uint(14, reset_hint)
    out += pb_uint(15, timestamp)
    out += pb_packed_double(16, custom_values)
    if start_timestamp:
        out += pb_uint(17, start_timestamp)
    return out


def good_histogram(ts, **over):
    """A valid integer histogram: zero bucket 1, positive buckets 2 and 1, count 5."""
    kw = dict(count_int=5, sum=10.5, schema=0, zero_threshold=1e-128, zero_count_int=1,
              positive_spans=[(0, 2)], positive_deltas=[2, -1], timestamp=ts)
    kw.update(over)
    return pb_histogram(**kw)


# --- Remote write 1.0 ------------------------------------------------------------------------

def _labels_list(labels):
    if isinstance(labels, dict):
        return list(labels.items())
    return list(labels)


class V1:
    """Builders for prometheus.WriteRequest. Labels are a dict or a list of (name, value) in
    the order to send (names and values may be str or bytes)."""

    @staticmethod
    def label(name, value):
        return pb_bytes(1, name) + pb_bytes(2, value)

    @staticmethod
    def sample(value, ts):
        return _value_field(1, value) + pb_uint(2, ts)

    @staticmethod
    def exemplar(labels, value, ts):
        return (b"".join(pb_message(1, V1.label(n, v)) for n, v in _labels_list(labels))
                + pb_double(2, value) + pb_uint(3, ts))

    @staticmethod
    def timeseries(labels, samples=(), exemplars=(), histograms=()):
        """samples: [(value, ts)]; exemplars: [(labels, value, ts)]; histograms: [bytes]."""
        out = b"".join(pb_message(1, V1.label(n, v)) for n, v in _labels_list(labels))
        out += b"".join(pb_message(2, V1.sample(v, t)) for v, t in samples)
        out += b"".join(pb_message(3, V1.exemplar(l, v, t)) for l, v, t in exemplars)
        out += b"".join(pb_message(4, h) for h in histograms)
        return out

    @staticmethod
    def metadata(mtype, family, help_="", unit=""):
        return pb_uint(1, mtype) + pb_bytes(2, family) + pb_bytes(4, help_) + pb_bytes(5, unit)

    @staticmethod
    def request(timeseries=(), metadata=()):
        """timeseries: encoded TimeSeries bodies (V1.timeseries(...))."""
        return (b"".join(pb_message(1, t) for t in timeseries)
                + b"".join(pb_message(3, m) for m in metadata))


def v1_simple(metric, n_samples=1, ts0=1700000000000, extra_labels=(), value=1.0):
    """A v1 WriteRequest with one series carrying n_samples samples."""
    labels = [("__name__", metric)] + list(extra_labels) + [("job", "it")]
    labels = sorted(labels)
    return V1.request([V1.timeseries(labels, [(value + i, ts0 + i * 1000)
                                              for i in range(n_samples)])])


# --- Remote write 2.0 ------------------------------------------------------------------------

class V2:
    """Builder for io.prometheus.write.v2.Request with an interning symbol table.

        b = V2()
        b.series({"__name__": "up", "job": "x"}, samples=[(1.0, ts)], metadata=(1, "help", ""))
        payload = b.build()

    For malformed requests, pass raw labels_refs= and/or set b.symbols directly."""

    def __init__(self):
        self.symbols = [""]
        self._index = {"": 0}
        self.ts = []

    def ref(self, s):
        if isinstance(s, bytes):
            key = s
        else:
            key = s.encode("utf-8")
        if key not in self._index:
            self._index[key] = len(self.symbols)
            self.symbols.append(key)
        return self._index[key]

    def refs(self, labels):
        out = []
        for n, v in _labels_list(labels):
            out += [self.ref(n), self.ref(v)]
        return out

    def series(self, labels=None, samples=(), histograms=(), exemplars=(), metadata=None,
               created_timestamp=0, labels_refs=None, packed=True, extra=b""):
        """samples: [(value, ts)] or [(value, ts, start_ts)]; histograms: [bytes];
        exemplars: [(labels, value, ts)]; metadata: (type, help, unit)."""
        refs = labels_refs if labels_refs is not None else self.refs(labels or {})
        out = pb_packed_uint(1, refs) if packed else b"".join(pb_uint(1, r) for r in refs)
        for s in samples:
            body = _value_field(1, s[0]) + pb_uint(2, s[1])
            if len(s) > 2 and s[2]:
                body += pb_uint(3, s[2])
            out += pb_message(2, body)
        out += b"".join(pb_message(3, h) for h in histograms)
        for l, v, t in exemplars:
            out += pb_message(4, pb_packed_uint(1, self.refs(l)) + pb_double(2, v) + pb_uint(3, t))
        if metadata is not None:
            mtype, help_, unit = metadata
            md = pb_uint(1, mtype)
            if help_:
                md += pb_uint(3, self.ref(help_))
            if unit:
                md += pb_uint(4, self.ref(unit))
            out += pb_message(5, md)
        if created_timestamp:
            out += pb_uint(6, created_timestamp)
        self.ts.append(out + extra)
        return self

    def build(self, symbols=None):
        syms = self.symbols if symbols is None else symbols
        return (b"".join(pb_bytes(4, s) for s in syms)
                + b"".join(pb_message(5, t) for t in self.ts))


# ---------------------------------------------------------------------------------------------
# Snappy block format
# ---------------------------------------------------------------------------------------------

def snappy_literal_tag(n):
    """Tag (and extra length bytes) of a literal of n >= 1 bytes: lengths up to 60 fit in the
    tag byte; longer ones put len-1 in the next 1..4 bytes (tag values 60..63)."""
    if n < 1 or n > 1 << 32:
        raise ValueError("literal length %d" % n)
    m = n - 1
    if m < 60:
        return bytes([m << 2])
    nbytes = 1 if m < 1 << 8 else 2 if m < 1 << 16 else 3 if m < 1 << 24 else 4
    return bytes([(59 + nbytes) << 2]) + m.to_bytes(nbytes, "little")


def snappy_literal(data, chunk=None, declared_len=None):
    """Literal-only snappy block: uncompressed length varint, then literals of at most `chunk`
    bytes each (default: one literal for everything). Valid input for any snappy decoder."""
    out = bytearray(pb_varint(len(data) if declared_len is None else declared_len))
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        piece = data[i:i + step]
        out += snappy_literal_tag(len(piece))
        out += piece
    return bytes(out)


def _snappy_copy(offset, length):
    out = bytearray()
    while length > 0:
        n = min(length, 64)
        if length - n < 4 and length > 64:  # keep the remainder copyable (>= 4)
            n = length - 4
        if 4 <= n <= 11 and offset < 2048:  # copy with 1-byte offset
            out.append(((offset >> 8) << 5) | ((n - 4) << 2) | 1)
            out.append(offset & 0xFF)
        else:  # copy with 2-byte offset
            out.append(((n - 1) << 2) | 2)
            out += struct.pack("<H", offset)
        length -= n
    return bytes(out)


def snappy_compress(data):
    """A small greedy snappy compressor: 4-byte hash matches within the last 64 KiB become
    copy operations, the rest literals. Real compression, so the server's decoder is exercised
    on copies as well as literals."""
    out = bytearray(pb_varint(len(data)))
    table = {}
    i = 0
    lit_start = 0
    n = len(data)
    while i + 4 <= n:
        key = data[i:i + 4]
        cand = table.get(key)
        table[key] = i
        if cand is not None and i - cand <= 65535:
            length = 4
            while i + length < n and data[cand + length] == data[i + length]:
                length += 1
            if lit_start < i:
                out += snappy_literal_tag(i - lit_start) + data[lit_start:i]
            out += _snappy_copy(i - cand, length)
            i += length
            lit_start = i
        else:
            i += 1
    if lit_start < n:
        out += snappy_literal_tag(n - lit_start) + data[lit_start:]
    return bytes(out)


SNAPPY_FRAMED_MAGIC = b"\xff\x06\x00\x00sNaPpY"


def _libsnappy():
    for name in ("libsnappy.so.1", "libsnappy.so"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def snappy_reference_uncompress(block):
    """Decompresses with the system libsnappy through ctypes (for self-checks); None if the
    library is unavailable, raises ValueError if libsnappy rejects the block."""
    lib = _libsnappy()
    if lib is None:
        return None
    n = ctypes.c_size_t(0)
    if lib.snappy_uncompressed_length(block, ctypes.c_size_t(len(block)), ctypes.byref(n)) != 0:
        raise ValueError("bad length header")
    out = ctypes.create_string_buffer(max(1, n.value))
    if lib.snappy_uncompress(block, ctypes.c_size_t(len(block)), out, ctypes.byref(n)) != 0:
        raise ValueError("corrupt block")
    return out.raw[:n.value]


# ---------------------------------------------------------------------------------------------
# Case runner
# ---------------------------------------------------------------------------------------------

class Runner:
    """Runs cases in order; each prints `ok`/`FAIL` with its time. Ends with
    "N passed, N failed"; exit status 0 only if every case passed."""

    def __init__(self, suite):
        self.suite = suite
        self.passed = 0
        self.failed = 0
        self.failures = []

    def run(self, name, fn, *args):
        t0 = time.monotonic()
        try:
            fn(*args)
        except BaseException as e:  # noqa: B902 - a case must never kill the suite
            if isinstance(e, KeyboardInterrupt):
                raise
            if isinstance(e, SystemExit) and e.code and e.code >= 128:
                raise
            self.failed += 1
            self.failures.append(name)
            print("FAIL %-60s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
            for line in traceback.format_exc().rstrip().split("\n"):
                print("     | " + line, flush=True)
            return False
        self.passed += 1
        print("ok   %-60s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
        return True

    def fail_setup(self, what, exc):
        self.failed += 1
        self.failures.append(what)
        print("FAIL %s: %s" % (what, exc), flush=True)

    def finish(self):
        if self.failures:
            print("%s: failed: %s" % (self.suite, ", ".join(self.failures)), flush=True)
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1


def expect(cond, msg, *args):
    if not cond:
        raise AssertionError(msg % args if args else msg)


def expect_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


# ---------------------------------------------------------------------------------------------
# Self-test of the encoders: `python3 harness.py` (uses libsnappy via ctypes when present)
# ---------------------------------------------------------------------------------------------

def _selftest():
    r = Runner("harness self-test")

    def varints():
        expect_eq(pb_varint(0), b"\x00", "0")
        expect_eq(pb_varint(300), b"\xac\x02", "300")
        expect_eq(pb_varint(-1), b"\xff" * 9 + b"\x01", "-1")
        expect_eq(zigzag(-1), 1, "zz -1")
        expect_eq(zigzag(1), 2, "zz 1")
        expect_eq(zigzag(-2147483648, 32), 4294967295, "zz min32")
        expect_eq(pb_double(1, 1.0), b"\x09" + struct.pack("<d", 1.0), "double")

    def literal_forms():
        for n in (1, 59, 60, 61, 62, 255, 256, 257, 65535, 65536, 65537, 1 << 17):
            tag = snappy_literal_tag(n)
            want = 1 if n <= 60 else 2 if n <= 256 else 3 if n <= 65536 else 4
            expect_eq(len(tag), want, "tag length for %d" % n)

    def against_libsnappy():
        import random
        rnd = random.Random(7)
        samples = [b"", b"a", b"x" * 61, bytes(range(256)) * 300,
                   bytes(rnd.getrandbits(8) for _ in range(70000)),
                   (b"abcd" * 5000) + bytes(rnd.getrandbits(8) for _ in range(3000))]
        for data in samples:
            for chunk in (None, 1, 60, 61, 300, 70000):
                blk = snappy_literal(data, chunk=chunk)
                got = snappy_reference_uncompress(blk)
                if got is None:
                    return
                expect(got == data, "literal chunk=%r len=%d mismatch", chunk, len(data))
            blk = snappy_compress(data)
            expect(snappy_reference_uncompress(blk) == data, "compress len=%d mismatch", len(data))

    r.run("varint/zigzag/double", varints)
    r.run("snappy literal tag forms", literal_forms)
    r.run("snappy encoders agree with libsnappy", against_libsnappy)
    return r.finish()


if __name__ == "__main__":
    sys.exit(_selftest())
