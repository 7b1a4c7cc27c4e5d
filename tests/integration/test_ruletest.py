#!/usr/bin/env python3
"""test_ruletest.py: `ripcord test` (issue 9) through the binary — passing suites (the rule
examples shipped in rules/ and tests/data/ruletest/), deliberately failing ones whose every
failure message is asserted, and files that cannot run (exit 2, file:line:col).

usage: test_ruletest.py <ripcord-binary>
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from harness import Runner, expect, expect_eq  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join("tests", "data", "ruletest")


def rtest(exe, *args):
    p = subprocess.run([exe, "test"] + list(args), capture_output=True, text=True, timeout=120,
                       cwd=ROOT)
    return p.returncode, p.stdout, p.stderr


def case_examples(exe):
    files = sorted("rules/" + f for f in os.listdir(os.path.join(ROOT, "rules"))
                   if f.endswith(".test.yml"))
    expect(len(files) >= 2, "rule examples with tests: %r", files)
    rc, out, err = rtest(exe, *files)
    expect_eq(rc, 0, "exit status (stdout: %s stderr: %s)" % (out, err))
    expect(out.rstrip().endswith("3 passed, 0 failed"), "last line: %r", out)


def case_pass(exe):
    rc, out, err = rtest(exe, os.path.join(DATA, "pass.test.yml"),
                         os.path.join(DATA, "window.test.yml"),
                         os.path.join(DATA, "rehearse.test.yml"))
    expect_eq(rc, 0, "exit status (stdout: %s stderr: %s)" % (out, err))
    lines = out.splitlines()
    expect_eq(lines[-1], "10 passed, 0 failed", "summary")
    expect(all(ln.startswith("ok   ") for ln in lines[:-1]), "lines: %r", lines)
    expect_eq(err, "", "stderr (the engine's logs stay quiet without --verbose)")


def case_verbose(exe):
    rc, out, _ = rtest(exe, "--verbose", os.path.join(DATA, "pass.test.yml"))
    expect_eq(rc, 0, "exit status")
    for want in ["    at 16m: api/prod error_ratio: inactive -> pending (value 0.06)",
                 "    at 18m: api/prod error_ratio: pending -> firing (value 0.1)",
                 "    at 18m: api/prod error_ratio: rollback event rollback v2 -> v1",
                 "    at 25m: api/prod error_ratio: firing -> resolved (value 0.05)",
                 "    at 6m: web/prod down: rollback event cooldown w3 -> w1"]:
        expect(want in out.splitlines(), "missing %r in:\n%s", want, out)


FAIL_OUT = """\
FAIL tests/data/ruletest/fail.test.yml:5: test "wrong state"
  line 10: at 2m: web/prod down: expected inactive, got firing (value 0)
  what happened:
    at 2m: web/prod down: inactive -> firing (value 0)
    at 2m: web/prod down: rollback event no_deploy - -> -
FAIL tests/data/ruletest/fail.test.yml:11: test "wrong value"
  line 16: at 1m: web/prod down: expected value 2, got value 1 (state inactive)
  what happened: no transitions, no rollback events
FAIL tests/data/ruletest/fail.test.yml:17: test "missing rollback"
  rollback events: expected 1, got 0
    x #1 expected: line 25: at 2m down: rollback w2 -> w1
    x #1 got:      (none)
  what happened: no transitions, no rollback events
FAIL tests/data/ruletest/fail.test.yml:26: test "unexpected rollback"
  rollback events: expected 0, got 1
    x #1 expected: (none)
    x #1 got:      at 2m web/prod down: rollback w2 -> w1 (value 0)
  what happened:
    at 2m: web/prod down: inactive -> firing (value 0)
    at 2m: web/prod down: rollback event rollback w2 -> w1
FAIL tests/data/ruletest/fail.test.yml:34: test "unknown trigger and an ambiguous one"
  line 39: at 0s: no trigger nope
  line 40: at 0s: no trigger down in rule api/staging
  what happened: no transitions, no rollback events
FAIL tests/data/ruletest/fail.test.yml:41: test "right outcome, wrong reason"
  rollback events: expected 1, got 1
    x #1 expected: line 49: at 2m down: needs_approval w2 -> w1 (reason with "rollback window")
    x #1 got:      at 2m web/prod down: needs_approval w2 -> w1 (value 0; reason "the deploy applied an irreversible migration")
  what happened:
    at 2m: web/prod down: inactive -> firing (value 0)
    at 2m: web/prod down: rollback event needs_approval w2 -> w1
0 passed, 6 failed
"""


def case_fail(exe):
    rc, out, err = rtest(exe, os.path.join(DATA, "fail.test.yml"))
    expect_eq(rc, 1, "exit status")
    got, want = out.splitlines(), FAIL_OUT.splitlines()
    for i, (g, w) in enumerate(zip(got, want)):
        expect_eq(g, w, "line %d" % (i + 1))
    expect_eq(len(got), len(want), "line count")


def case_mixed(exe):
    """Passing and failing files together: every file runs, the exit is the worst."""
    rc, out, _ = rtest(exe, os.path.join(DATA, "fail.test.yml"),
                       os.path.join(DATA, "window.test.yml"))
    expect_eq(rc, 1, "exit status")
    expect_eq(out.splitlines()[-1], "1 passed, 6 failed", "summary")


def case_bad_file(exe):
    rc, out, err = rtest(exe, os.path.join(DATA, "bad.test.yml"))
    expect_eq(rc, 2, "exit status")
    expect_eq(err.strip(), 'tests/data/ruletest/bad.test.yml:5:22: error: values: "three": '
              'not a value (a number, a+bxn, a-bxn, axn, _, _xn or stale)', "stderr")


def case_bad_rules(exe):
    rc, _, err = rtest(exe, os.path.join(DATA, "badrules.test.yml"))
    expect_eq(rc, 2, "exit status")
    expect("tests/data/ruletest/no-such-rules.yml: error: cannot open: No such file or directory"
           in err, "stderr: %r", err)


def case_usage(exe):
    rc, _, err = rtest(exe)
    expect_eq(rc, 2, "no file")
    expect(err.startswith("usage: ripcord test"), "stderr: %r", err)
    rc, _, err = rtest(exe, "--query.compat=prometheus-1", "x.yml")
    expect_eq(rc, 2, "bad compat")
    expect("--query.compat must be" in err, "stderr: %r", err)
    rc, _, err = rtest(exe, "/nonexistent/t.yml")
    expect_eq(rc, 2, "missing file")
    expect("cannot read /nonexistent/t.yml" in err, "stderr: %r", err)


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1])
        return 2
    exe = os.path.abspath(sys.argv[1])
    r = Runner("ruletest")
    r.run("the rule examples in rules/ pass their tests", case_examples, exe)
    r.run("passing suites: 0, every test ok, quiet", case_pass, exe)
    r.run("--verbose shows every transition and rollback event", case_verbose, exe)
    r.run("failing tests: exit 1, expected vs got with the time", case_fail, exe)
    r.run("several files: all run, the worst exit", case_mixed, exe)
    r.run("a bad test file: exit 2, file:line:col", case_bad_file, exe)
    r.run("a missing rule file: exit 2, named", case_bad_rules, exe)
    r.run("usage errors: exit 2", case_usage, exe)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
