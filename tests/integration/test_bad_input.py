#!/usr/bin/env python3
"""test_bad_input.py: a table of malformed, hostile and borderline remote-write requests.

usage: test_bad_input.py <ripcord-binary>

For every case: the status code and a reason substring of the one-line body are checked, the
exact change of the write counters (samples, histograms, exemplars, stale markers, each
decode-error and invalid-series reason; anything not listed must not move), that the server is
still alive (GET /-/healthy), and that a good request afterwards is counted exactly.
"""

import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (NORMAL_NAN, SNAPPY_FRAMED_MAGIC, STALE_NAN, V1, V2, Closed, Conn,  # noqa: E402
                     Daemon, Runner, build_request, chunked, expect, expect_eq, good_histogram,
                     healthy, ingest_status, metric, pb_bytes, pb_double, pb_fixed32, pb_fixed64,
                     pb_histogram, pb_key, pb_message, pb_packed_uint, pb_uint, pb_varint,
                     post_write, request, rw_headers, scrape, snappy_compress, snappy_literal,
                     v1_simple, wait_until, write_request_bytes, WT_LEN, WT_VARINT)

MAX_BODY = 256 * 1024
TS = 1700000000000

# Counters whose change every case checks; a case lists the ones it expects to move.
TRACKED = ["ripcord_write_samples_total", "ripcord_write_histograms_total",
           "ripcord_write_exemplars_total", "ripcord_write_stale_markers_total",
           "ripcord_write_metadata_total", "ripcord_write_dropped_samples_total",
           "ripcord_write_dropped_histograms_total", "ripcord_write_dropped_exemplars_total"]
DECODE_REASONS = ["empty_body", "snappy_framed", "snappy", "decoded_too_large", "protobuf",
                  "decoded_memory_limit", "symbols"]
SERIES_REASONS = ["label_name_empty", "label_name_invalid", "label_name_utf8", "label_value_utf8",
                  "label_name_duplicate", "metric_name_missing", "metric_name_invalid",
                  "too_many_labels", "labels_too_long", "label_refs_invalid",
                  "exemplar_refs_invalid", "histogram_invalid", "no_samples_or_histograms",
                  "samples_and_histograms"]

WRITTEN = ("X-Prometheus-Remote-Write-Samples-Written",
           "X-Prometheus-Remote-Write-Histograms-Written",
           "X-Prometheus-Remote-Write-Exemplars-Written")


def tracked_values(samples):
    out = {}
    for n in TRACKED:
        out[n] = metric(samples, n)
    for r in DECODE_REASONS:
        out["decode_errors{%s}" % r] = metric(samples, "ripcord_write_decode_errors_total", reason=r)
    for r in SERIES_REASONS:
        out["invalid_series{%s}" % r] = metric(samples, "ripcord_write_invalid_series_total",
                                               reason=r)
    for k, v in out.items():
        if v is None:
            raise AssertionError("/metrics lacks %s" % k)
    return out


def short(name):
    return name.replace("ripcord_write_", "").replace("_total", "")


# ---------------------------------------------------------------------------------------------
# Payload helpers
# ---------------------------------------------------------------------------------------------

def series(metric_name, n, extra=(), ts=TS):
    labels = sorted([("__name__", metric_name), ("job", "bad-input")] + list(extra))
    return V1.timeseries(labels, [(float(i), ts + i) for i in range(n)])


def v1(*ts, metadata=()):
    return V1.request(list(ts), metadata)


def framed_snappy(payload):
    """The snappy *framing* format: stream identifier, then one uncompressed-data chunk (type
    0x01: 4-byte masked CRC, then the data). Remote write forbids it."""
    data = b"\x00\x00\x00\x00" + payload
    return SNAPPY_FRAMED_MAGIC + b"\x01" + len(data).to_bytes(3, "little") + data


def post(body, headers=None, version=1, path="/api/v1/write", method="POST"):
    return build_request(method, path, body, rw_headers(version) if headers is None else headers)


def post_pb(payload, version=1, **kw):
    return write_request_bytes(payload, version=version, **kw)


def read_one(port, raw, timeout=15.0, head=False):
    with Conn(port, timeout=timeout) as c:
        try:
            c.send(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before it has read everything
        return c.read_response(timeout=timeout, head=head)


# ---------------------------------------------------------------------------------------------
# The table. Each case: name, request bytes, status, reason substring, expected counter deltas,
# and optionally a check(response) for headers.
# ---------------------------------------------------------------------------------------------

def written_is(s, h, e):
    def check(resp):
        got = tuple(resp.header(n) for n in WRITTEN)
        expect_eq(got, (str(s), str(h), str(e)), "Written headers")
    return check


def no_written(resp):
    for n in WRITTEN:
        expect(resp.header(n) is None, "v1 response carries %s: %s", n, resp.header(n))


def closes(resp):
    expect_eq((resp.header("Connection") or "").lower(), "close", "Connection header")


def both(*checks):
    def check(resp):
        for c in checks:
            c(resp)
    return check


def unknown_fields_v1():
    """Unknown fields of every wire type at every nesting level (and the reserved field 2):
    a proto3 decoder must skip them."""
    junk = (pb_uint(99, 12345) + pb_fixed32(98, 7) + pb_fixed64(97, 1) + pb_bytes(96, b"zz")
            + pb_message(95, pb_uint(1, 1)))
    label = lambda n, v: pb_bytes(1, n) + pb_bytes(2, v) + pb_uint(7, 1) + pb_bytes(8, b"x")
    sample = lambda v, t: pb_double(1, v) + pb_uint(2, t) + pb_uint(9, 3) + pb_fixed32(10, 1)
    ts = (pb_message(1, label("__name__", "unknown_fields")) + pb_message(1, label("job", "x"))
          + pb_message(2, sample(1.0, TS)) + pb_message(2, sample(2.0, TS + 1)) + junk)
    return pb_bytes(2, b"cortex-source") + pb_message(1, ts) + junk


def unknown_fields_v2():
    b = V2()
    b.series({"__name__": "unknown_fields_v2", "job": "x"}, samples=[(1.0, TS)],
             extra=pb_uint(42, 1) + pb_bytes(43, b"x") + pb_fixed64(44, 0))
    return pb_uint(1, 5) + pb_bytes(3, b"reserved") + b.build() + pb_fixed32(77, 1)


def hist_series_v1(name, hists):
    return V1.timeseries([("__name__", name), ("job", "h")], histograms=hists)


def v2_partial():
    """Series 1 valid (2 samples, 1 exemplar), series 2 valid (1 histogram), series 3 refers
    outside the symbol table (3 samples, 1 exemplar): 400, and Written = the valid part."""
    b = V2()
    b.series({"__name__": "v2_ok", "job": "a"}, samples=[(1.0, TS), (2.0, TS + 1)],
             exemplars=[({"trace_id": "abc"}, 1.0, TS)], metadata=(1, "help", ""))
    b.series({"__name__": "v2_hist", "job": "a"}, histograms=[good_histogram(TS)])
    b.series(labels_refs=[1, 2, 1000, 3], samples=[(1.0, TS), (2.0, TS + 1), (3.0, TS + 2)],
             exemplars=[({"trace_id": "abc"}, 1.0, TS)])
    return b.build()


def v2_full():
    b = V2()
    b.series({"__name__": "v2_full_a", "job": "a", "instance": "i"},
             samples=[(1.0, TS, TS - 1000), (2.0, TS + 1)],
             exemplars=[({"trace_id": "t1"}, 1.0, TS), ({"trace_id": "t2"}, 2.0, TS + 1)],
             metadata=(1, "A counter.", "seconds"))
    b.series({"__name__": "v2_full_b", "job": "a"}, samples=[(5.0, TS)], metadata=(2, "", ""))
    b.series({"__name__": "v2_full_h", "job": "a"},
             histograms=[good_histogram(TS), good_histogram(TS + 1, start_timestamp=TS - 5)],
             metadata=(3, "", ""))
    return b.build()


def v2_bad(kind):
    b = V2()
    b.series({"__name__": "v2_good_part", "job": "a"}, samples=[(1.0, TS)])  # always valid
    if kind == "refs_range":
        b.series(labels_refs=[1, 2, 3, 99], samples=[(1.0, TS), (2.0, TS + 1)])
    elif kind == "refs_odd":
        b.series(labels_refs=[1, 2, 3], samples=[(1.0, TS), (2.0, TS + 1)])
    elif kind == "mixed":
        b.series({"__name__": "v2_mixed", "job": "a"}, samples=[(1.0, TS), (2.0, TS + 1)],
                 histograms=[good_histogram(TS)])
    elif kind == "empty":
        b.series({"__name__": "v2_empty", "job": "a"}, metadata=(1, "", ""))
    elif kind == "exemplar_refs":
        b.series({"__name__": "v2_bad_ex", "job": "a"}, samples=[(1.0, TS), (2.0, TS + 1)],
                 extra=pb_message(4, pb_bytes(1, pb_varint(1) + pb_varint(500)) + pb_double(2, 1)
                                  + pb_uint(3, TS)))
    elif kind == "schema":
        b.series({"__name__": "v2_bad_schema", "job": "a"},
                 histograms=[good_histogram(TS, schema=9)])
    return b.build()


def nested_bad_varint():
    # A Sample whose timestamp varint never ends within 10 bytes.
    sample = pb_double(1, 1.0) + pb_key(2, WT_VARINT) + b"\xff" * 11 + b"\x01"
    ts = pb_message(1, V1.label("__name__", "x")) + pb_message(2, sample)
    return pb_message(1, ts)


def truncated_snappy():
    blk = snappy_compress(v1(series("trunc", 50)))
    return blk[:-7]


def corrupt_copy_snappy():
    # Literal "ab" then a copy with offset 100: points before the start of the output.
    return pb_varint(10) + b"\x04ab" + bytes([((6 - 4) << 2) | 1, 100])


def build_cases():
    ok_series = series("partial_ok", 3)
    ok_series2 = series("partial_ok2", 4)
    c = []

    def add(name, raw, status, reason, deltas=None, check=None):
        c.append(dict(name=name, raw=raw, status=status, reason=reason, deltas=deltas or {},
                      check=check))

    S, H, E = ("ripcord_write_samples_total", "ripcord_write_histograms_total",
               "ripcord_write_exemplars_total")
    DS, DH, DE = ("ripcord_write_dropped_samples_total", "ripcord_write_dropped_histograms_total",
                  "ripcord_write_dropped_exemplars_total")

    def dec(r):
        return "decode_errors{%s}" % r

    def inv(r):
        return "invalid_series{%s}" % r

    # --- body framing and snappy ------------------------------------------------------------
    add("empty body (Content-Length: 0)", post(b""), 400, "empty request body",
        {dec("empty_body"): 1}, no_written)
    add("POST without Content-Length or chunked", post(b"", headers=rw_headers(1))
        .replace(b"Content-Length: 0\r\n", b""), 400, "empty request body", {dec("empty_body"): 1})
    add("truncated snappy block", post(truncated_snappy()), 400, "corrupt or truncated",
        {dec("snappy"): 1})
    add("snappy copy before start of output", post(corrupt_copy_snappy()), 400,
        "malformed snappy block", {dec("snappy"): 1})
    add("snappy declares more bytes than it holds",
        post(snappy_literal(v1(series("short", 2)), declared_len=len(v1(series("short", 2))) + 10)),
        400, "malformed snappy block", {dec("snappy"): 1})
    add("snappy declares fewer bytes than it holds",
        post(snappy_literal(v1(series("long", 2)), declared_len=5)), 400, "malformed snappy block",
        {dec("snappy"): 1})
    add("snappy framed format (stream identifier)", post(framed_snappy(v1(series("fr", 1)))), 400,
        "framed", {dec("snappy_framed"): 1})
    add("protobuf sent without snappy", post(v1(series("raw", 3))), 400, "malformed snappy block",
        {dec("snappy"): 1})
    add("snappy length varint longer than 5 bytes", post(b"\xff" * 11 + b"\x00"), 400,
        "uncompressed-length", {dec("snappy"): 1})
    add("declared uncompressed length 4 GiB - 1", post(pb_varint((4 << 30) - 1) + b"\x00" * 16),
        413, "over the limit", {dec("decoded_too_large"): 1})
    add("declared uncompressed length 4 GiB", post(pb_varint(4 << 30) + b"\x00" * 16), 413,
        "limit", {dec("decoded_too_large"): 1})
    add("declared uncompressed length 1 TiB", post(pb_varint(1 << 40) + b"\x00" * 16), 413,
        "limit", {dec("decoded_too_large"): 1})
    add("body over --web.max-body-size (Content-Length)",
        post(snappy_literal(b"\x00" * (MAX_BODY + 100))), 413, "request body too large", {}, closes)
    add("body over --web.max-body-size (chunked)",
        build_request("POST", "/api/v1/write",
                      chunked(snappy_literal(b"\x00" * (MAX_BODY + 100)), sizes=(40000,)),
                      rw_headers(1) + [("Transfer-Encoding", "chunked")]),
        413, "request body too large", {}, closes)

    # --- protobuf ---------------------------------------------------------------------------
    add("protobuf: varint over 10 bytes", post_pb(nested_bad_varint()), 400, "malformed protobuf",
        {dec("protobuf"): 1})
    add("protobuf: length prefix past the end",
        post_pb(pb_key(1, WT_LEN) + pb_varint(1000) + b"\x0a\x00"), 400, "malformed protobuf",
        {dec("protobuf"): 1})
    add("protobuf: wrong wire type (timeseries as varint)", post_pb(pb_uint(1, 5)), 400,
        "malformed protobuf", {dec("protobuf"): 1})
    add("protobuf: wrong wire type (sample value as varint)",
        post_pb(pb_message(1, pb_message(1, V1.label("__name__", "w")) +
                           pb_message(2, pb_uint(1, 7) + pb_uint(2, TS)))), 400,
        "malformed protobuf", {dec("protobuf"): 1})
    add("protobuf: wire type 7 does not exist", post_pb(bytes([(1 << 3) | 7, 0])), 400,
        "malformed protobuf", {dec("protobuf"): 1})
    add("protobuf: v2 garbage", post_pb(b"\x22\x05ab", version=2), 400, "malformed protobuf",
        {dec("protobuf"): 1}, written_is(0, 0, 0))
    add("protobuf: field number 0", post_pb(v1(series("f0", 1)) + pb_uint(0, 1)), 400,
        "malformed protobuf", {dec("protobuf"): 1})
    add("protobuf: group wire types (3, 4) are not proto3",
        post_pb(v1(series("grp", 1)) + pb_key(9, 3) + pb_key(9, 4)), 400, "malformed protobuf",
        {dec("protobuf"): 1})
    add("protobuf: truncated fixed64",
        post_pb(v1(series("f64", 1)) + pb_key(9, 1) + b"\x00\x00\x00"), 400, "malformed protobuf",
        {dec("protobuf"): 1})
    add("protobuf: truncated embedded message",
        post_pb(pb_message(1, pb_message(1, V1.label("__name__", "t"))[:-1])), 400,
        "malformed protobuf", {dec("protobuf"): 1})
    add("protobuf: length varint overflows 64 bits",
        post_pb(v1(series("lo", 1)) + pb_key(9, 2) + b"\xff" * 9 + b"\x01"), 400,
        "malformed protobuf", {dec("protobuf"): 1})
    add("protobuf: v2 labels_refs as fixed32",
        post_pb(pb_bytes(4, b"") + pb_bytes(4, b"__name__") + pb_bytes(4, b"q")
                + pb_message(5, pb_fixed32(1, 1) + pb_message(2, pb_double(1, 1) + pb_uint(2, TS)))
                , version=2), 400, "malformed protobuf", {dec("protobuf"): 1}, written_is(0, 0, 0))
    add("protobuf: repeated scalar field, last value wins; empty Sample; negative timestamp",
        post_pb(pb_message(1, pb_message(1, V1.label("__name__", "edge")) + pb_message(1, V1.label(
            "nul", "a\x00b")) + pb_message(2, pb_double(1, 1.0) + pb_double(1, 2.0) + pb_uint(2, TS)
                                           + pb_uint(2, TS + 1))
            + pb_message(2, b"") + pb_message(2, pb_double(1, 3.0) + pb_uint(2, -5)))),
        204, None, {S: 3})
    add("protobuf: v2 labels_refs half packed, half not; unknown metric type 99",
        post_pb(pb_bytes(4, b"") + pb_bytes(4, b"__name__") + pb_bytes(4, b"q")
                + pb_message(5, pb_uint(1, 1) + pb_packed_uint(1, [2])
                             + pb_message(2, pb_double(1, 1) + pb_uint(2, TS))
                             + pb_message(5, pb_uint(1, 99))), version=2),
        204, None, {S: 1}, written_is(1, 0, 0))
    add("unknown fields are skipped (v1, all wire types, all levels)",
        post_pb(unknown_fields_v1()), 204, None, {S: 2}, no_written)
    add("unknown and reserved fields are skipped (v2)", post_pb(unknown_fields_v2(), version=2),
        204, None, {S: 1}, written_is(1, 0, 0))

    # --- labels -----------------------------------------------------------------------------
    add("unsorted labels are sorted and accepted",
        post_pb(v1(V1.timeseries([("job", "x"), ("__name__", "unsorted"), ("a", "1")],
                                 [(1.0, TS), (2.0, TS + 1)]))), 204, None, {S: 2})
    add("duplicate label names: 400, rest ingested",
        post_pb(v1(ok_series, V1.timeseries([("__name__", "dup"), ("job", "a"), ("job", "b")],
                                            [(1.0, TS), (2.0, TS + 1)]), ok_series2)),
        400, "duplicate label name", {S: 7, DS: 2, inv("label_name_duplicate"): 1}, no_written)
    add("empty label name",
        post_pb(v1(ok_series, V1.timeseries([("", "v"), ("__name__", "e")], [(1.0, TS)]))),
        400, "empty label name", {S: 3, DS: 1, inv("label_name_empty"): 1})
    add("invalid UTF-8 in label value",
        post_pb(v1(V1.timeseries([("__name__", "u"), ("job", b"\xc3\x28")], [(1.0, TS)]),
                   ok_series)),
        400, "label value is not valid UTF-8", {S: 3, DS: 1, inv("label_value_utf8"): 1})
    add("UTF-16 surrogate encoded in label value",
        post_pb(v1(V1.timeseries([("__name__", "u"), ("job", b"a\xed\xa0\x80")], [(1.0, TS)]))),
        400, "label value is not valid UTF-8", {DS: 1, inv("label_value_utf8"): 1})
    add("overlong UTF-8 in metric name",
        post_pb(v1(V1.timeseries([("__name__", b"m\xc0\xaf")], [(1.0, TS)]))),
        400, "label value is not valid UTF-8", {DS: 1, inv("label_value_utf8"): 1})
    add("invalid UTF-8 in label name",
        post_pb(v1(ok_series, V1.timeseries([("__name__", "u"), (b"j\xffb", "x")],
                                            [(1.0, TS), (2.0, TS + 1)]))),
        400, "label name is not valid UTF-8", {S: 3, DS: 2, inv("label_name_utf8"): 1})
    add("missing __name__",
        post_pb(v1(V1.timeseries([("job", "x")], [(1.0, TS)]), ok_series2)),
        400, "missing metric name", {S: 4, DS: 1, inv("metric_name_missing"): 1})
    add("empty __name__ value counts as missing",
        post_pb(v1(V1.timeseries([("__name__", ""), ("job", "x")], [(1.0, TS)]))),
        400, "missing metric name", {DS: 1, inv("metric_name_missing"): 1})
    add("label with an empty value is dropped, series accepted",
        post_pb(v1(V1.timeseries([("__name__", "emptyval"), ("a", ""), ("job", "x")],
                                 [(1.0, TS)]))), 204, None, {S: 1})
    add("129 labels (limit 128)",
        post_pb(v1(V1.timeseries(sorted([("__name__", "many")] +
                                        [("l%03d" % i, "v") for i in range(128)]),
                                 [(1.0, TS)]))),
        400, "too many labels", {DS: 1, inv("too_many_labels"): 1})

    # --- native histograms ------------------------------------------------------------------
    add("histogram: spans describe 3 buckets, 2 deltas sent",
        post_pb(v1(hist_series_v1("h_span", [good_histogram(TS, positive_spans=[(0, 3)])]),
                   ok_series)),
        400, "spans describe", {S: 3, DH: 1, inv("histogram_invalid"): 1})
    add("histogram: negative bucket count",
        post_pb(v1(hist_series_v1("h_neg", [good_histogram(TS, positive_deltas=[1, -2])]))),
        400, "bucket count below zero", {DH: 1, inv("histogram_invalid"): 1})
    add("histogram: count below the bucket total",
        post_pb(v1(hist_series_v1("h_cnt", [good_histogram(TS, count_int=2)]))),
        400, "less than", {DH: 1, inv("histogram_invalid"): 1})
    add("histogram: delta overflow",
        post_pb(v1(hist_series_v1("h_ovf", [good_histogram(TS, positive_deltas=[(1 << 63) - 1,
                                                                                5])]))),
        400, "overflowing", {DH: 1, inv("histogram_invalid"): 1})
    add("histogram: negative zero threshold",
        post_pb(v1(hist_series_v1("h_zt", [good_histogram(TS, zero_threshold=-1.0)]))),
        400, "zero threshold", {DH: 1, inv("histogram_invalid"): 1})
    add("histogram: integer deltas mixed with float counts",
        post_pb(v1(hist_series_v1("h_mix", [good_histogram(TS, positive_counts=[1.0, 2.0])]))),
        400, "mixes integer deltas and float counts", {DH: 1, inv("histogram_invalid"): 1})
    add("histogram: custom bounds not increasing (schema -53)",
        post_pb(v1(hist_series_v1("h_nhcb", [pb_histogram(
            count_int=3, sum=1.0, schema=-53, positive_spans=[(0, 2)], positive_deltas=[1, 1],
            custom_values=[5.0, 1.0], timestamp=TS)]))),
        400, "strictly increasing", {DH: 1, inv("histogram_invalid"): 1})
    add("valid histograms: integer, float, unpacked, custom buckets",
        post_pb(v1(hist_series_v1("h_ok", [
            good_histogram(TS),
            good_histogram(TS + 1, packed=False),
            pb_histogram(count_float=6.5, sum=3.0, schema=-2, zero_threshold=0.001,
                         zero_count_float=0.5, positive_spans=[(-3, 1), (2, 2)],
                         positive_counts=[1.0, 2.0, 1.0], negative_spans=[(0, 1)],
                         negative_counts=[2.0], timestamp=TS + 2),
            pb_histogram(count_int=4, sum=7.0, schema=-53, positive_spans=[(0, 2), (1, 1)],
                         positive_deltas=[1, 1, -1], custom_values=[0.5, 1.0, 5.0],
                         timestamp=TS + 3)]))),
        204, None, {H: 4})

    # --- content negotiation and routing -----------------------------------------------------
    add("Content-Encoding: gzip", post(snappy_compress(v1(series("gz", 1))),
                                       rw_headers(1, encoding="gzip")),
        415, "unsupported Content-Encoding")
    add("Content-Type: application/json", post(snappy_compress(v1(series("js", 1))),
                                               rw_headers(1, content_type="application/json")),
        415, "unsupported Content-Type")
    add("unknown proto= parameter",
        post(snappy_compress(v1(series("pp", 1))),
             rw_headers(1, content_type="application/x-protobuf;proto=io.prometheus.write.v3.Request")),
        415, "unsupported protobuf message")
    add("no Content-Type and no Content-Encoding means v1 snappy",
        post(snappy_compress(v1(series("bare", 2))), [("User-Agent", "old")]), 204, None, {S: 2},
        no_written)
    add("Content-Type case and spacing, quoted proto (v2)",
        post(snappy_compress(v2_full()),
             rw_headers(2, content_type='Application/X-Protobuf ; proto="io.prometheus.write.v2.Request"')),
        204, None, {S: 3, H: 2, E: 2}, written_is(3, 2, 2))
    add("GET /api/v1/write", build_request("GET", "/api/v1/write"), 405, "method not allowed",
        {}, lambda r: expect_eq(r.header("Allow"), "POST", "Allow header"))
    add("unknown path", post(snappy_compress(v1(series("np", 1))), path="/api/v1/push"), 404,
        "not found")
    add("CONNECT method", build_request("CONNECT", "127.0.0.1:443"), 501, "method not implemented",
        {}, closes)

    # --- HTTP framing -----------------------------------------------------------------------
    add("malformed chunked encoding (bad chunk size)",
        build_request("POST", "/api/v1/write", b"zz\r\nhello\r\n0\r\n\r\n",
                      rw_headers(1) + [("Transfer-Encoding", "chunked")]),
        400, "malformed HTTP request", {}, closes)
    add("both Content-Length and Transfer-Encoding",
        build_request("POST", "/api/v1/write", b"5\r\nhello\r\n0\r\n\r\n",
                      rw_headers(1) + [("Transfer-Encoding", "chunked"), ("Content-Length", "5")]),
        400, "malformed HTTP request", {}, closes)
    add("garbage request line", b"HELLO THERE\r\n\r\n", 400, "malformed HTTP request", {}, closes)
    add("10000 headers", post(snappy_compress(v1(series("hdr", 1))),
                              rw_headers(1) + [("X-H%d" % i, "v") for i in range(10000)]),
        431, "request header fields too large", {}, closes)
    add("header bytes over the limit", post(snappy_compress(v1(series("hdr", 1))),
                                            rw_headers(1) + [("X-Big", "a" * 20000)]),
        431, "request header fields too large", {}, closes)

    # --- semantics --------------------------------------------------------------------------
    add("staleness marker and ordinary NaN",
        post_pb(v1(V1.timeseries([("__name__", "stale"), ("job", "x")],
                                 [(1.0, TS), (("bits", STALE_NAN), TS + 1),
                                  (("bits", NORMAL_NAN), TS + 2)]))),
        204, None, {S: 3, "ripcord_write_stale_markers_total": 1})
    add("stale histogram (sum = StaleNaN, rest ignored)",
        post_pb(v1(hist_series_v1("stale_h", [pb_histogram(sum=("bits", STALE_NAN), schema=100,
                                                           positive_spans=[(0, 9)],
                                                           timestamp=TS)]))),
        204, None, {H: 1, "ripcord_write_stale_markers_total": 1})
    add("metadata-only request (v1)",
        post_pb(v1(metadata=[V1.metadata(1, "a_total", "A counter.", ""),
                             V1.metadata(2, "b", "", "bytes")])),
        204, None, {"ripcord_write_metadata_total": 2})
    add("v1 exemplars and samples", post_pb(v1(V1.timeseries(
        [("__name__", "ex"), ("job", "x")], [(1.0, TS)],
        exemplars=[({"trace_id": "a"}, 1.0, TS), ({}, 2.0, TS + 1)]))),
        204, None, {S: 1, E: 2}, no_written)

    # --- remote write 2.0 -------------------------------------------------------------------
    add("v2 success: exact Written headers", post_pb(v2_full(), version=2), 204, None,
        {S: 3, H: 2, E: 2}, written_is(3, 2, 2))
    add("v2 one invalid series: 400, Written = valid part", post_pb(v2_partial(), version=2),
        400, "labels_refs", {S: 2, H: 1, E: 1, DS: 3, DE: 1, inv("label_refs_invalid"): 1},
        written_is(2, 1, 1))
    add("v2 symbols[0] is not the empty string",
        post_pb(V2().series({"__name__": "s", "job": "a"}, samples=[(1.0, TS)])
                .build(symbols=["x", "__name__", "s", "job", "a"]), version=2),
        400, "symbols", {dec("symbols"): 1}, written_is(0, 0, 0))
    add("v2 timeseries without a symbol table",
        post_pb(V2().series(labels_refs=[], samples=[(1.0, TS)]).build(symbols=[]), version=2),
        400, "symbols", {dec("symbols"): 1}, written_is(0, 0, 0))
    add("v2 labels_refs out of range", post_pb(v2_bad("refs_range"), version=2), 400,
        "labels_refs", {S: 1, DS: 2, inv("label_refs_invalid"): 1}, written_is(1, 0, 0))
    add("v2 labels_refs of odd length", post_pb(v2_bad("refs_odd"), version=2), 400,
        "labels_refs", {S: 1, DS: 2, inv("label_refs_invalid"): 1}, written_is(1, 0, 0))
    add("v2 series with samples and histograms", post_pb(v2_bad("mixed"), version=2), 400,
        "both samples and histograms",
        {S: 1, DS: 2, DH: 1, inv("samples_and_histograms"): 1}, written_is(1, 0, 0))
    add("v2 series with neither samples nor histograms", post_pb(v2_bad("empty"), version=2),
        400, "samples or histograms", {S: 1, inv("no_samples_or_histograms"): 1},
        written_is(1, 0, 0))
    add("v2 exemplar labels_refs out of range", post_pb(v2_bad("exemplar_refs"), version=2),
        400, "exemplar labels_refs", {S: 1, DS: 2, DE: 1, inv("exemplar_refs_invalid"): 1},
        written_is(1, 0, 0))
    add("v2 histogram schema 9", post_pb(v2_bad("schema"), version=2), 400, "schema 9",
        {S: 1, DH: 1, inv("histogram_invalid"): 1}, written_is(1, 0, 0))
    add("v2 unpacked labels_refs and rc.3 created_timestamp",
        post_pb(V2().series({"__name__": "v2_unpacked", "job": "a"}, samples=[(1.0, TS)],
                            created_timestamp=TS - 10, packed=False).build(), version=2),
        204, None, {S: 1}, written_is(1, 0, 0))
    add("v1 body sent as v2 decodes to nothing: Written 0",
        post_pb(v1(series("v1_as_v2", 3)), version=2), 204, None, {}, written_is(0, 0, 0))
    add("v2 415 for gzip still carries Written headers",
        post(snappy_compress(v2_full()), rw_headers(2, encoding="gzip")), 415,
        "unsupported Content-Encoding", {}, written_is(0, 0, 0))
    return c


# ---------------------------------------------------------------------------------------------
# Running a table case
# ---------------------------------------------------------------------------------------------

GOOD_N = 3


def good_request_counted(port):
    """The server still counts a good request exactly."""
    expect(healthy(port), "server not healthy")
    before = metric(scrape(port), "ripcord_write_samples_total")
    r = post_write(port, v1_simple("after_bad_input", GOOD_N))
    expect_eq(r.status, 204, "good request status (body %r)" % r.body)
    after = metric(scrape(port), "ripcord_write_samples_total")
    expect_eq(after - before, GOOD_N, "samples counted for the good request")


def check_reason(resp, reason):
    body = resp.body
    expect(body.endswith(b"\n") and body.count(b"\n") == 1,
           "body is not exactly one line: %r", body[:300])
    expect(reason.encode() in body, "reason %r not in body %r", reason, body[:300])


def run_table_case(port, case):
    before = tracked_values(scrape(port))
    resp = read_one(port, case["raw"])
    expect_eq(resp.status, case["status"], "status (body %r)" % resp.body[:300])
    if case["reason"] is not None:
        check_reason(resp, case["reason"])
    else:
        expect_eq(resp.body, b"", "body of a %d" % resp.status)
    if case["check"]:
        case["check"](resp)
    after = tracked_values(scrape(port))
    for k in before:
        want = case["deltas"].get(k, 0)
        expect_eq(after[k] - before[k], want, "change of %s" % short(k))
    good_request_counted(port)


# ---------------------------------------------------------------------------------------------
# Cases that need more than one request/response
# ---------------------------------------------------------------------------------------------

def case_snappy_literal_forms(port):
    """Valid bodies whose snappy literals use every length form (tag-only, 1..4 extra bytes):
    the server decodes them all."""
    payload = v1(*[series("lit_forms", 1, extra=[("pad", "p" * 1000 + str(i))]) for i in range(70)])
    expect(len(payload) > 65536 + 100, "payload too small for the 3-byte form: %d", len(payload))
    before = metric(scrape(port), "ripcord_write_samples_total")
    for chunk in (1, 60, 61, 256, 257, 65536, 65537, None):
        body = snappy_literal(payload, chunk=chunk)
        r = request(port, "POST", "/api/v1/write", body, rw_headers(1))
        expect_eq(r.status, 204, "status with literal chunk %r (body %r)" % (chunk, r.body))
    after = metric(scrape(port), "ripcord_write_samples_total")
    expect_eq(after - before, 70 * 8, "samples")
    good_request_counted(port)


def case_slow_headers(port):
    """--web.read-header-timeout=1s: a client dripping header lines is cut off with 408 (or a
    close) well before it finishes, and the header-timeout counter moves."""
    before = metric(scrape(port), "ripcord_http_connection_timeouts_total", phase="header")
    c = Conn(port, timeout=10)
    got = None
    t0 = time.monotonic()
    try:
        c.send(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\n")
        for i in range(40):  # at most 40 * 0.25 s = 10 s
            r, _, _ = select.select([c.sock], [], [], 0.25)
            if r:
                try:
                    got = c.read_response(timeout=5)
                except Closed:
                    got = "closed"
                break
            try:
                c.send(b"X-Slow-%d: a\r\n" % i)
            except OSError:
                got = "closed"
                break
    finally:
        c.close()
    elapsed = time.monotonic() - t0
    expect(got is not None, "server did not react within %.1fs", elapsed)
    expect(0.8 <= elapsed <= 6.0, "cut off after %.2fs, want about 1s", elapsed)
    if got != "closed":
        expect_eq(got.status, 408, "status")
        check_reason(got, "request headers not received in time")
    wait_until(lambda: metric(scrape(port), "ripcord_http_connection_timeouts_total",
                              phase="header") == before + 1, 10, what="header timeout counted")
    good_request_counted(port)


def case_reset_mid_body(port):
    """A client that resets the connection mid-body: counted as aborted, nothing ingested."""
    s0 = scrape(port)
    before = metric(s0, "ripcord_http_connections_aborted_total")
    samples0 = metric(s0, "ripcord_write_samples_total")
    body = snappy_compress(v1(series("reset", 100)))
    c = Conn(port)
    try:
        c.send(build_request("POST", "/api/v1/write", b"", rw_headers(1) + [
            ("Expect", "100-continue"), ("Content-Length", str(len(body)))]))
        interim = c.read_response(skip_1xx=False)  # proves the server is in the body phase
        expect_eq(interim.status, 100, "interim status")
        c.send(body[:len(body) // 2])
    finally:
        c.close(reset=True)
    wait_until(lambda: metric(scrape(port), "ripcord_http_connections_aborted_total") == before + 1,
               10, what="aborted connection counted")
    expect_eq(metric(scrape(port), "ripcord_write_samples_total"), samples0, "samples")
    good_request_counted(port)


def case_pipelined(port):
    """good / bad payload (valid framing) / good on one connection, sent in one write: answered
    in order 204, 400, 204 on the same connection, and both good requests counted."""
    before = tracked_values(scrape(port))
    good1 = write_request_bytes(v1_simple("pipe_a", 2))
    bad = build_request("POST", "/api/v1/write", truncated_snappy(), rw_headers(1))
    good2 = write_request_bytes(v1_simple("pipe_b", 5))
    with Conn(port) as c:
        c.send(good1 + bad + good2)
        rs = [c.read_response() for _ in range(3)]
        expect_eq([r.status for r in rs], [204, 400, 204], "statuses")
        check_reason(rs[1], "malformed snappy block")
        for r in rs:
            expect(r.header("Connection") is None, "Connection: %s", r.header("Connection"))
        # still usable afterwards
        r = c.request("GET", "/-/healthy")
        expect_eq(r.status, 200, "healthy on the same connection")
    after = tracked_values(scrape(port))
    expect_eq(after["ripcord_write_samples_total"] - before["ripcord_write_samples_total"], 7,
              "samples")
    expect_eq(after["decode_errors{snappy}"] - before["decode_errors{snappy}"], 1, "snappy errors")
    good_request_counted(port)


def case_v1_no_written_headers(port):
    """v1 answers never carry Written headers: success, partial (400) and refused."""
    for payload, status in ((v1_simple("v1_nw", 2), 204),
                            (v1(series("v1_nw", 1), V1.timeseries([("job", "x")], [(1.0, TS)])), 400),
                            (nested_bad_varint(), 400)):
        r = post_write(port, payload)
        expect_eq(r.status, status, "status")
        no_written(r)
    good_request_counted(port)


def case_tally_matches(port):
    """Everything accepted reaches the consumer: the ingest tally's totals equal the accepted
    samples, histograms and exemplars counters."""
    def same():
        s = scrape(port)
        t = ingest_status(port)["totals"]
        return (t["samples"] == metric(s, "ripcord_write_samples_total")
                and t["histograms"] == metric(s, "ripcord_write_histograms_total")
                and t["exemplars"] == metric(s, "ripcord_write_exemplars_total")) and t
    t = wait_until(same, 15, what="tally totals equal to the accepted counters")
    expect(t["samples"] > 100, "suspiciously few samples in the tally: %r", t)
    st = ingest_status(port)["metrics"]
    expect_eq(st.get("partial_ok", {}).get("samples", 0) % 3, 0, "partial_ok samples")
    expect("dup" not in st, "the duplicate-label series reached the consumer")
    expect("v2_ok" in st and "v2_hist" in st, "v2 partial valid series missing from the tally")


def case_queue_full(exe):
    """--ingest.queue-capacity=1 and a burst of pipelined requests: some are answered 503 with
    Retry-After (never 429 or 400), every 204 is counted and no 503 is, and the queue-full counter
    equals the number of 503s. v2 503s carry zero Written headers."""
    d = Daemon(exe, ["--ingest.queue-capacity=1"]).start()
    try:
        s0 = scrape(d.port)
        n204 = n503 = samples = 0
        for attempt in range(10):  # bounded: each burst is ~200 requests
            # Whether the queue fills is a race between the loop thread parsing requests and
            # the workers applying them; a sanitizer build shifts it. Later bursts carry more
            # series per request, so the workers fall behind on any build.
            k = (1, 1, 50, 200, 500)[min(attempt, 4)]
            for version in (1, 2):
                if version == 1:
                    one = write_request_bytes(V1.request([
                        V1.timeseries([("__name__", "burst"), ("job", "it"), ("k", str(i))],
                                      [(1.0, TS)]) for i in range(k)]))
                else:
                    one = write_request_bytes(V2().series({"__name__": "burst2", "job": "x"},
                                                          samples=[(1.0, TS)]).build(), version=2)
                with Conn(d.port, timeout=30) as c:
                    c.send(one * 200)
                    for _ in range(200):
                        r = c.read_response()
                        if r.status == 204:
                            n204 += 1
                            samples += k if version == 1 else 1
                        elif r.status == 503:
                            n503 += 1
                            expect_eq(r.header("Retry-After"), "1", "Retry-After")
                            check_reason(r, "queue full")
                            if version == 2:
                                written_is(0, 0, 0)(r)
                        else:
                            raise AssertionError("unexpected status %d: %r" % (r.status, r.body))
            if n503 > 0 and n204 > 0:
                break
        expect(n503 > 0, "no 503 in %d pipelined requests", n204 + n503)
        s1 = scrape(d.port)
        expect_eq(metric(s1, "ripcord_write_samples_total") - metric(s0, "ripcord_write_samples_total"),
                  samples, "samples counted (those of the 204s only)")
        expect_eq(metric(s1, "ripcord_ingest_queue_full_total")
                  - metric(s0, "ripcord_ingest_queue_full_total"), n503, "queue_full counter")
        expect_eq(metric(s1, "ripcord_ingest_queue_capacity"), 1, "queue capacity gauge")
        good_request_counted(d.port)
        print("     | %d accepted, %d answered 503" % (n204, n503))
    finally:
        d.stop()


def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    r = Runner("test_bad_input")
    t0 = time.monotonic()
    cases = build_cases()
    # The whole table runs once per protobuf decoder: both must give the same answers.
    for decoder in ("wire", "protobuf-c"):
        tag = "[%s] " % decoder
        d = None
        try:
            d = Daemon(exe, ["--web.read-header-timeout=1s", "--web.max-body-size=%d" % MAX_BODY,
                             "--ingest.decoder=" + decoder]).start()
            for case in cases:
                r.run(tag + case["name"], run_table_case, d.port, case)
            r.run(tag + "snappy literals of every length form", case_snappy_literal_forms, d.port)
            if decoder == "wire":  # HTTP-level, decoder-independent
                r.run("slow headers: 408 after --web.read-header-timeout", case_slow_headers,
                      d.port)
                r.run("connection reset mid-body", case_reset_mid_body, d.port)
            r.run(tag + "pipelined good/bad/good answered in order", case_pipelined, d.port)
            r.run(tag + "v1 answers carry no Written headers", case_v1_no_written_headers, d.port)
            r.run(tag + "ingest tally equals the accepted counters", case_tally_matches, d.port)
            r.run(tag + "daemon exits 0 on SIGTERM", d.stop)
        except Exception as e:  # setup failure
            r.fail_setup(tag + "daemon", e)
            if d is not None:
                print(d.log()[-3000:])
        finally:
            if d is not None:
                d.cleanup()
    r.run("queue full: 503 + Retry-After (--ingest.queue-capacity=1)", case_queue_full, exe)
    print("%d cases in %.1fs" % (r.passed + r.failed, time.monotonic() - t0))
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
