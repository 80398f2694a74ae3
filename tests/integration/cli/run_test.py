#!/usr/bin/env python3
"""`fnprof run` checks (see CMakeLists.txt). Each check can fail; every
process is bounded by a timeout."""
import glob
import json
import os
import subprocess
import sys
import tempfile

FNPROF = os.environ["FNPROF_CLI"]
# The interpreter itself, not a wrapper script (pyenv shims exec a chain of
# shells, each of which would write a profile of its own).
PYTHON = os.path.realpath(sys.executable)
AGENT = os.path.realpath(os.path.join(os.path.dirname(FNPROF), "..", "agent",
                                      "libfnprof.so"))
# 100,000 x 1000-byte objects: ~103 MB allocated. At the default 512 KiB
# mean interval that is ~200 samples, a relative standard error of ~7 %, so
# 60 MB is far more than three standard errors below the truth.
SCRIPT = "x = [bytes(1000) for _ in range(100000)]"
MIN_ALLOC_BYTES = 60 << 20
MAX_ALLOC_BYTES = 400 << 20


def fail(msg):
    raise AssertionError(msg)


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30, **kw)


def check_profile():
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "prof")  # does not exist yet: run creates it
        p = run([FNPROF, "run", "--dir", d, "--", PYTHON, "-c", SCRIPT])
        if p.returncode != 0:
            fail("fnprof run exited %d: %s" % (p.returncode, p.stderr))
        files = glob.glob(os.path.join(d, "fnprof-*-final.pb.gz"))
        if len(files) != 1:
            fail("want one final profile, got %r" % os.listdir(d))
        t = run([FNPROF, "top", "--json", "-n", "5", "--sample-type",
                 "alloc_space", files[0]])
        if t.returncode != 0:
            fail("fnprof top exited %d: %s" % (t.returncode, t.stderr))
        top = json.loads(t.stdout)
        if not MIN_ALLOC_BYTES <= top["total"] <= MAX_ALLOC_BYTES:
            fail("alloc_space total %d outside [%d, %d]" %
                 (top["total"], MIN_ALLOC_BYTES, MAX_ALLOC_BYTES))
        if not top["entries"] or top["entries"][0]["flat"] < MIN_ALLOC_BYTES // 2:
            fail("no dominant allocation site: %r" % top["entries"][:2])


def check_environment():
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "d2")
        env = dict(os.environ, LD_PRELOAD="/nonexistent-preload.so")
        p = run([FNPROF, "run", "--rate", "4096", "--dir", d, "--", "sh", "-c",
                 'printf "%s|%s|%s" "$LD_PRELOAD" "$FNPROF_RATE" "$FNPROF_DIR"'],
                env=env)
        want = "%s:/nonexistent-preload.so|4096|%s" % (AGENT, d)
        if p.returncode != 0 or p.stdout.decode() != want:
            fail("environment %r (rc %d), want %r" % (p.stdout, p.returncode, want))
        if not os.path.isdir(d):
            fail("--dir was not created")


def check_exit_codes():
    cases = [
        ([FNPROF, "run"], 2),                             # no command
        ([FNPROF, "run", "--bogus", "--", "true"], 2),    # unknown option
        ([FNPROF, "run", "--rate", "x", "--", "true"], 2),
        ([FNPROF, "run", "--agent", "/nonexistent.so", "--", "true"], 2),
        ([FNPROF, "run", "--dir", "/proc/nope", "--", "true"], 1),
        ([FNPROF, "run", "--", "/nonexistent-program"], 1),
        ([FNPROF, "run", "--", "sh", "-c", "exit 7"], 7),  # the program's own
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for args, code in cases:
            p = run(args, cwd=tmp)
            if p.returncode != code:
                fail("%r exited %d, want %d: %s" % (args[1:], p.returncode, code,
                                                    p.stderr))


if __name__ == "__main__":
    check_profile()
    check_environment()
    check_exit_codes()
    print("ok")
