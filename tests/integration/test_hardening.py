#!/usr/bin/env python3
"""test_hardening.py: the hardening the build promises, read from the binary's ELF headers
with readelf (binutils): position-independent executable, full RELRO (GNU_RELRO and
BIND_NOW), stack protector and _FORTIFY_SOURCE in use (their libc entry points are imported),
and a stack that is not executable.

usage: test_hardening.py <ripcord-binary>
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Runner, expect  # noqa: E402


def readelf(args, exe):
    return subprocess.run(["readelf"] + args + [exe], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def case_pie(exe):
    hdr = readelf(["-h"], exe)
    expect(any("Type:" in l and "DYN" in l for l in hdr.splitlines()),
           "not a PIE: %s", [l for l in hdr.splitlines() if "Type:" in l])
    dyn = readelf(["-d"], exe)
    expect("PIE" in dyn, "DT_FLAGS_1 without PIE")


def case_relro(exe):
    ph = readelf(["-l", "-W"], exe)
    expect("GNU_RELRO" in ph, "no GNU_RELRO segment")
    dyn = readelf(["-d"], exe)
    expect("BIND_NOW" in dyn or "(FLAGS)" in dyn and "NOW" in dyn,
           "partial RELRO only: no BIND_NOW")


def case_stack(exe):
    ph = readelf(["-l", "-W"], exe)
    stack = [l for l in ph.splitlines() if "GNU_STACK" in l]
    expect(len(stack) == 1, "no GNU_STACK header (the stack would default to executable)")
    expect(stack[0].split()[-2] == "RW",
           "executable stack: %s", stack[0])
    syms = readelf(["--dyn-syms", "-W"], exe)
    expect("__stack_chk_fail" in syms, "no stack protector (__stack_chk_fail not imported)")


def case_fortify(exe):
    syms = readelf(["--dyn-syms", "-W"], exe)
    chk = sorted({w for l in syms.splitlines() for w in l.split()
                  if w.startswith("__") and "_chk@" in w})
    expect(chk, "no _FORTIFY_SOURCE checks (__*_chk) imported")


def main():
    if len(sys.argv) < 2:
        print("usage: %s <ripcord-binary>" % sys.argv[0], file=sys.stderr)
        return 2
    exe = os.path.abspath(sys.argv[1])
    r = Runner("test_hardening")
    r.run("position-independent executable", case_pie, exe)
    r.run("full RELRO (GNU_RELRO + BIND_NOW)", case_relro, exe)
    r.run("non-executable stack and a stack protector", case_stack, exe)
    r.run("_FORTIFY_SOURCE checks in use", case_fortify, exe)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
