#!/usr/bin/env python3
"""test_deps_audit.py: scripts/deps-audit against the built binary — the libraries ripcord
links are listed with the Debian package and version that ship them, and a library that no
package owns makes it fail.

usage: test_deps_audit.py <ripcord-binary>
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Runner, expect, expect_eq  # noqa: E402

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts", "deps-audit")
# Each with the start of its soname: the libraries a security advisory would most likely name.
MUST = ["libuv.so.", "libsqlite3.so.", "libcurl.so.", "libcrypto.so."]


def audit(args, env=None):
    p = subprocess.run([sys.executable, SCRIPT] + args, capture_output=True, text=True,
                       timeout=60, env=env)
    return p.returncode, p.stdout, p.stderr


def case_json(exe):
    rc, out, err = audit(["--json", exe])
    expect_eq(rc, 0, "exit status (stderr: %s)" % err.strip())
    doc = json.loads(out)
    libs = doc["libraries"]
    for prefix in MUST:
        rows = [r for r in libs if r["library"].startswith(prefix)]
        expect(len(rows) == 1, "%s: %d rows", prefix, len(rows))
        r = rows[0]
        expect(r["direct"], "%s not marked direct", prefix)
        expect(r["path"] and os.path.exists(r["path"]), "%s: path %r", prefix, r["path"])
        expect(r["package"] and r["version"] and r["source"],
               "%s: package %r version %r source %r", prefix, r["package"], r["version"],
               r["source"])
        # The version is what dpkg says is installed.
        p = subprocess.run(["dpkg-query", "-W", "-f=${Version}", r["package"]],
                           capture_output=True, text=True, timeout=30)
        expect_eq(r["version"], p.stdout, "%s version" % prefix)
    expect(all(r["problem"] is None for r in libs), "problems: %r",
           [r for r in libs if r["problem"]])
    expect(any(r["library"].startswith("libc.so.") for r in libs), "libc listed")


def case_table(exe):
    rc, out, err = audit([exe])
    expect_eq(rc, 0, "exit status (stderr: %s)" % err.strip())
    lines = out.splitlines()
    expect(lines[0].split()[:5] == ["library", "direct", "path", "package", "version"],
           "header: %r", lines[0])
    for prefix in MUST:
        row = [ln for ln in lines if ln.startswith(prefix)]
        expect(len(row) == 1 and len(row[0].split()) >= 6, "%s row: %r", prefix, row)
    expect("0 without a Debian package" in lines[-1], "last line: %r", lines[-1])


def case_unowned(exe):
    """A copy of libuv outside any package, preferred through LD_LIBRARY_PATH: exit 1."""
    rc, out, _ = audit(["--json", exe])
    uv = [r for r in json.loads(out)["libraries"] if r["library"].startswith("libuv.so.")][0]
    tmp = tempfile.mkdtemp(prefix="rc-deps-")
    try:
        shutil.copy(uv["path"], os.path.join(tmp, uv["library"]))
        env = dict(os.environ, LD_LIBRARY_PATH=tmp)
        rc, out, err = audit([exe], env=env)
        expect_eq(rc, 1, "exit status with a hand-copied libuv")
        row = [ln for ln in out.splitlines() if ln.startswith(uv["library"])]
        expect(row and tmp in row[0] and "no Debian package owns this file" in row[0],
               "row: %r", row)
        expect("no Debian package owns this file" in err, "stderr: %r", err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def case_usage(exe):
    rc, _, err = audit(["/nonexistent/ripcord"])
    expect_eq(rc, 2, "no such binary")
    expect("no binary" in err, "stderr: %r", err)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1])
        return 2
    exe = sys.argv[1]
    r = Runner("deps_audit")
    r.run("--json lists libuv, libsqlite3, libcurl, libcrypto with package and version",
          case_json, exe)
    r.run("the table lists them too", case_table, exe)
    r.run("a library no package owns: exit 1, named", case_unowned, exe)
    r.run("no binary: exit 2", case_usage, exe)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
