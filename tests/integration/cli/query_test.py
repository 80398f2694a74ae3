#!/usr/bin/env python3
"""`fnprof logs / metrics / profiles / spikes` against a real
fnprof-collector, fed through the export library (export_push, spike_push:
signed SLS PutLogs, OTLP metrics, profile uploads). Each check can fail;
every process is bounded by a timeout. See CMakeLists.txt."""
import json
import os
import socket
import subprocess
import sys
import tempfile

FNPROF = os.environ["FNPROF_CLI"]
COLLECTOR = os.environ["COLLECTOR_BIN"]
EXPORT_PUSH = os.environ["EXPORT_PUSH"]
SPIKE_PUSH = os.environ["SPIKE_PUSH"]
PROFILE = os.environ["PROFILE_FIXTURE"]  # a Go-written heap profile
KEY = "AKTEST:sec-ret-1"


def fail(msg):
    raise AssertionError(msg)


def run(args, env=None, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30, env=env, **kw)


class Collector:
    def __init__(self, tmp, listen="127.0.0.1:0", extra=()):
        self.out = open(os.path.join(tmp, "coll.out"), "w+")
        self.proc = subprocess.Popen(
            [COLLECTOR, "--listen", listen, "--db", os.path.join(tmp, "c.db"),
             "--access-key", KEY] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            fail("collector said %r" % line)
        self.addr = line[len("listening on "):]
        self.url = "http://" + self.addr

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def cli(args, url, key=False, expect=0):
    env = dict(os.environ, FNPROF_COLLECTOR_URL=url)
    env.pop("FNPROF_ACCESS_KEY_ID", None)
    env.pop("FNPROF_ACCESS_KEY_SECRET", None)
    if key:
        env["FNPROF_ACCESS_KEY_ID"], env["FNPROF_ACCESS_KEY_SECRET"] = \
            KEY.split(":")
    p = run([FNPROF] + args, env=env)
    if p.returncode != expect:
        fail("fnprof %s: exit %d, want %d; stderr %r" %
             (" ".join(args), p.returncode, expect, p.stderr))
    return p


def push(args):
    p = run(args)
    if p.returncode != 0 or (b"error=0" not in p.stdout and
                             args[0] == EXPORT_PUSH):
        fail("%s: %r %r" % (args[0], p.stdout, p.stderr))
    return p.stdout.decode()


def sls_url(c):
    return "sls://%s/proj/applogs" % c.addr


def check_logs(c):
    # 25 records in batches of 10: seq 0..24, request id = seq.
    push([EXPORT_PUSH, sls_url(c), "--records", "25", "--batch", "10",
          "--key", KEY])
    lines = cli(["logs", "--limit", "1000"], c.url).stdout.decode().splitlines()
    if len(lines) != 25:
        fail("logs: %d lines, want 25: %r" % (len(lines), lines[:3]))
    # time, request id, level + message, oldest first.
    f = lines[7].split("  ")
    if f[1] != "7" or f[2] != "INFO GET /api/items/7 200 in 7 ms":
        fail("logs line 7 is %r" % lines[7])
    if not (f[0].startswith("20") and f[0].endswith("Z") and "T" in f[0]):
        fail("logs time column %r is not RFC 3339 UTC" % f[0])
    one = cli(["logs", "--request-id", "13"], c.url).stdout.decode()
    if one.count("\n") != 1 or "GET /api/items/13 " not in one:
        fail("--request-id 13 gave %r" % one)
    q = cli(["logs", "-q", "items/2", "--logstore", "applogs", "--json"],
            c.url).stdout
    d = json.loads(q)
    seqs = sorted(int(r["fields"]["seq"]) for r in d["records"])
    if seqs != [2, 20, 21, 22, 23, 24]:
        fail("-q items/2 matched seqs %r" % seqs)
    if d["records"][0]["logstore"] != "applogs" or \
            d["records"][0]["instance"] != "inst-7":
        fail("record lacks logstore/instance: %r" % d["records"][0])
    if json.loads(cli(["logs", "--logstore", "other", "--json"],
                      c.url).stdout)["count"] != 0:
        fail("--logstore other matched records")
    if json.loads(cli(["logs", "--instance", "inst-7", "--limit", "3",
                       "--json"], c.url).stdout)["count"] != 3:
        fail("--limit 3 not honoured")
    # Time range: everything was sent in the last minutes, nothing before.
    if cli(["logs", "--from", "10m", "--to", "now", "--limit", "100"],
           c.url).stdout.decode().count("\n") != 25:
        fail("--from 10m --to now lost records")
    if cli(["logs", "--to", "10m"], c.url).stdout != b"":
        fail("--to 10m (ago) found records")
    t7 = d["records"][0]["time_ns"]
    got = json.loads(cli(["logs", "--from", str(t7), "--to", str(t7 + 1),
                          "--json"], c.url).stdout)
    if got["count"] < 1 or any(r["time_ns"] != t7 for r in got["records"]):
        fail("--from/--to in ns: %r" % got)


def check_metrics(c):
    push([EXPORT_PUSH, "otlp+http://%s" % c.addr, "--records", "4",
          "--metrics", "--key", KEY])
    out = cli(["metrics", "heap_live_bytes"], c.url).stdout.decode()
    rows = [l.split("  ") for l in out.splitlines()]
    if [r[1] for r in rows] != ["0 By", "1024 By", "2048 By", "3072 By"]:
        fail("metrics rows %r" % rows)
    if rows[0][2] != "inst-7":
        fail("metrics instance column %r" % rows[0])
    if cli(["metrics", "no_such_metric"], c.url).stdout != b"":
        fail("an unknown metric has points")
    d = json.loads(cli(["metrics", "heap_live_bytes", "--json"], c.url).stdout)
    if d["count"] != 4 or d["points"][3]["value"] != 3072:
        fail("metrics --json %r" % d)


def check_profiles(c, tmp):
    push([EXPORT_PUSH, sls_url(c), "--records", "0", "--profile", PROFILE,
          "--key", KEY])
    d = json.loads(cli(["profiles", "--kind", "heap", "--json"], c.url).stdout)
    if d["count"] != 1 or d["profiles"][0]["instance"] != "inst-7":
        fail("profiles --kind heap: %r" % d)
    pid = d["profiles"][0]["id"]
    line = cli(["profiles", "--instance", "inst-7"], c.url).stdout.decode()
    cols = line.split("  ")
    if cols[0] != str(pid) or cols[2] != "inst-7" or cols[3] != "heap" or \
            cols[4].strip() != str(os.path.getsize(PROFILE)):
        fail("profiles line %r" % line)
    out = os.path.join(tmp, "got.pb.gz")
    cli(["profiles", "get", str(pid), "-o", out], c.url)
    if open(out, "rb").read() != open(PROFILE, "rb").read():
        fail("downloaded profile differs from the uploaded one")
    top = run([FNPROF, "top", "--json", out])
    if top.returncode != 0 or not json.loads(top.stdout)["entries"]:
        fail("fnprof top cannot read the download: %r" % top.stderr)
    e = cli(["profiles", "get", "999", "-o", out], c.url, expect=1).stderr
    if not e.startswith(b"fnprof profiles: ") or b"404" not in e:
        fail("missing profile: %r" % e)
    if cli(["profiles", "--kind", "spike-diff"], c.url).stdout != b"":
        fail("no spike-diff profile was uploaded yet")


def check_spikes(c):
    # inst-a: cycle 7 with all three profiles, cycle 9 without a diff;
    # inst-b: cycle 3. What each link must point at: (kind, time) lines.
    want = []
    for inst, cycle, kinds in [("inst-a", "7", "before,after,diff"),
                               ("inst-a", "9", "before,after"),
                               ("inst-b", "3", "before,after,diff")]:
        out = push([SPIKE_PUSH, sls_url(c), KEY, PROFILE, inst, cycle, kinds])
        want.append((inst, cycle, dict(
            (l.split()[0], int(l.split()[1])) for l in out.splitlines())))
    profs = json.loads(cli(["profiles", "--limit", "100", "--json"],
                           c.url).stdout)["profiles"]
    by_id = {p["id"]: p for p in profs}
    d = json.loads(cli(["spikes", "--json"], c.url).stdout)
    if d["count"] != 3:
        fail("spikes: %d, want 3: %r" % (d["count"], d))
    for s, (inst, cycle, links) in zip(d["spikes"], want):
        if s["instance"] != inst or s["report"]["trigger_cycle"] != int(cycle):
            fail("spike order/content: %r, want %s cycle %s" %
                 (s, inst, cycle))
        if s["fields"]["record"] != "spike" or \
                not s["summary"].startswith("heap spike at cycle " + cycle):
            fail("spike fields: %r" % s["fields"])
        for k in ("before", "after", "diff"):
            pid = s[k + "_profile_id"]
            kind = "spike-" + k
            if kind not in links:
                if pid is not None:
                    fail("%s cycle %s: %s linked to %r, want null" %
                         (inst, cycle, kind, pid))
                continue
            p = by_id.get(pid)
            if p is None or p["kind"] != kind or p["instance"] != inst or \
                    p["time_ns"] != links[kind]:
                fail("%s cycle %s: %s -> %r, want the %s upload at %d" %
                     (inst, cycle, kind, p, inst, links[kind]))
    only_b = json.loads(cli(["spikes", "--instance", "inst-b", "--json"],
                            c.url).stdout)
    if [s["report"]["trigger_cycle"] for s in only_b["spikes"]] != [3]:
        fail("--instance inst-b: %r" % only_b)
    lines = cli(["spikes", "--instance", "inst-a"], c.url).stdout.decode()
    rows = lines.splitlines()
    a9 = d["spikes"][1]
    if len(rows) != 2 or "inst-a" not in rows[1] or \
            ("before=%d after=%d diff=-" % (a9["before_profile_id"],
                                            a9["after_profile_id"])) \
            not in rows[1] or "heap spike at cycle 9:" not in rows[1]:
        fail("spikes human output %r" % rows)
    # The linked profile downloads and is the uploaded one.
    pid = d["spikes"][0]["diff_profile_id"]
    got = cli(["profiles", "get", str(pid), "-o", "-"], c.url).stdout
    if got != open(PROFILE, "rb").read():
        fail("spike diff profile download differs")


def check_usage(url):
    for verb in ("logs", "metrics", "profiles", "spikes"):
        h = cli([verb, "--help"], url)
        if not h.stdout.startswith(b"usage: fnprof " + verb.encode()):
            fail("%s --help: %r" % (verb, h.stdout[:80]))
    for args, needle in [
            (["logs", "--bogus"], b"fnprof logs: unknown option '--bogus'"),
            (["logs", "--limit", "x"], b"fnprof logs: --limit wants"),
            (["logs", "--from", "yesterday"], b"fnprof logs: --from wants"),
            (["logs", "--kind", "heap"], b"fnprof logs: --kind does not"),
            (["metrics"], b"fnprof metrics: which metric?"),
            (["profiles", "get"], b"fnprof profiles: get needs a profile"),
            (["profiles", "get", "x1", "-o", "f"],
             b"fnprof profiles: 'x1' is not a profile id"),
            (["profiles", "get", "1"], b"fnprof profiles: get needs -o"),
            (["profiles", "list"], b"fnprof profiles: unknown subcommand"),
            (["spikes", "extra"], b"fnprof spikes: unexpected argument")]:
        e = cli(args, url, expect=2).stderr
        if not e.startswith(needle):
            fail("%r: stderr %r, want %r" % (args, e, needle))


def check_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    e = cli(["logs"], "http://127.0.0.1:%d" % port, expect=1).stderr
    if not e.startswith(b"fnprof logs: cannot query the collector"):
        fail("unreachable collector: %r" % e)


def remote_ip():
    """A non-loopback IPv4 of this machine, or None."""
    try:
        out = run(["hostname", "-I"]).stdout.decode().split()
    except (OSError, subprocess.SubprocessError):
        return None
    v4 = [a for a in out if "." in a and not a.startswith("127.")]
    return v4[0] if v4 else None


def check_bearer(tmp):
    """From a non-loopback peer, reads need the key: sent from
    FNPROF_ACCESS_KEY_ID/SECRET, and the secret never printed."""
    ip = remote_ip()
    if ip is None:
        print("no non-loopback address: bearer check skipped")
        return
    d = os.path.join(tmp, "remote")
    os.mkdir(d)
    c = Collector(d, listen="%s:0" % ip, extra=["--allow-remote"])
    try:
        e = cli(["logs"], c.url, expect=1).stderr
        if b"401" not in e or b"sec-ret-1" in e:
            fail("keyless remote read: %r" % e)
        p = cli(["logs", "--json"], c.url, key=True)
        if json.loads(p.stdout)["count"] != 0 or b"sec-ret-1" in p.stderr:
            fail("keyed remote read: %r %r" % (p.stdout, p.stderr))
        env = dict(os.environ, FNPROF_ACCESS_KEY_ID="AKTEST",
                   FNPROF_ACCESS_KEY_SECRET="wrong-secret")
        w = run([FNPROF, "logs", "--url", c.url], env=env)
        if w.returncode != 1 or b"401" not in w.stderr or \
                b"wrong-secret" in w.stderr:
            fail("wrong secret: %r" % w.stderr)
    finally:
        c.stop()


def main():
    with tempfile.TemporaryDirectory() as tmp:
        c = Collector(tmp)
        try:
            check_usage(c.url)
            check_logs(c)
            check_metrics(c)
            check_profiles(c, tmp)
            check_spikes(c)
            check_unreachable()
        finally:
            c.stop()
        check_bearer(tmp)
    print("ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
