#!/usr/bin/env python3
"""Integration tests for fnprof-sidecar and fnprof-local. One scenario per
ctest test: `hooks_test.py SCENARIO [ARG]`. Real functions (examples/), real
processes, loopback only. See CMakeLists.txt for what each asserts."""
import glob
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

from harness import (AGENT, BOOTSTRAPS, LOCAL, SIDECAR, Collector, Sidecar, Store,
                     check_no_duplicates, check_start_end, fail, file_records,
                     free_port, http_request)

SECRET = "s3cr3t-VALUE-never-printed"


def run_local(tmp, lang, args, env_extra=None, sidecar=True):
    out_dir = os.path.join(tmp, "out")
    os.makedirs(out_dir, exist_ok=True)
    cmd = [LOCAL, "--port", str(free_port())]
    if sidecar:
        cmd += ["--sidecar", SIDECAR, "--sidecar-arg=--listen=127.0.0.1",
                "--sidecar-arg=--export=file://" + out_dir,
                "--sidecar-arg=--instance-id=local"]
    env = dict(os.environ, **(env_extra or {}))
    p = subprocess.run(cmd + args + ["--"] + BOOTSTRAPS[lang], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    return p, out_dir


def results(stdout):
    """fnprof-local's lines: (what, request id, status, x-fc-status)."""
    rows = re.findall(rb"^(\S+)\s+([0-9a-f-]{36}) status=(\d+) x-fc-status=(\S+)",
                      stdout, re.M)
    return [(w.decode(), i.decode(), int(s), f.decode()) for w, i, s, f in rows]


def bodies(stdout):
    return {m.group(1).decode(): m.group(2) for m in
            re.finditer(rb"^body (\S+) (.*)$", stdout, re.M)}


def normalized_echo(body):
    e = json.loads(body)
    for h in ("x-fc-request-id", "host"):
        e["headers"].pop(h, None)
    return e


def scenario_function(lang):
    """Every request answered as without the sidecar; Start/End lines for
    every request on stdout and in the export; every function log line
    exported with its request id."""
    args = ["--invoke", "steady", "--invoke", "spike", "--http", "GET /steady?q=1",
            "--http", "POST /echo?a=b hello-body", "--rounds", "2", "--show-body"]
    with tempfile.TemporaryDirectory() as tmp:
        p, out_dir = run_local(tmp, lang, args)
        if p.returncode != 0:
            fail("fnprof-local failed %d: %s" % (p.returncode, p.stderr[-2000:]))
        rows = results(p.stdout)
        invokes = [r for r in rows if r[0] in ("invoke", "/steady?q=1", "/echo?a=b")]
        if len(invokes) != 8 or any(r[2] != 200 for r in invokes):
            fail("invocations: %r" % (rows,))
        records = file_records(out_dir)
        check_no_duplicates(records)
        check_start_end(records, [r[1] for r in invokes])
        init = [r for r in rows if r[0] == "/initialize"]
        check_start_end(records, [init[0][1]], "Initialize")
        for rid in (r[1] for r in invokes):
            line = b"FC Invoke Start RequestId: " + rid.encode()
            if p.stdout.count(line) != 1:
                fail("stdout lacks %r" % line)
        logs = [r for r in records if r.get("stream") == "stdout"]
        for r in logs:
            m = re.match(r"\S+ (\S+) \[\w+\]", r["message"])
            if m and m.group(1) != "-" and m.group(1) != r["request_id"]:
                fail("line %r exported with id %r" % (r["message"], r["request_id"]))
            if r["message"].startswith("plain line") and r["request_id"] not in [x[1] for x in invokes]:
                fail("plain line not attributed: %r" % (r,))
        wanted = {rid for _, rid, _, _ in invokes}
        got = {r["request_id"] for r in logs}
        if not wanted <= got:
            fail("no exported log line for %r" % (wanted - got))
        # The same echo straight to the function, no sidecar in between.
        with tempfile.TemporaryDirectory() as tmp2:
            d, _ = run_local(tmp2, lang, ["--http", "POST /echo?a=b hello-body",
                                          "--show-body"], sidecar=False)
        via = [normalized_echo(b) for i, b in bodies(p.stdout).items()
               if b.startswith(b"{\"body_len") or b.startswith(b"{\"body")]
        direct = [normalized_echo(b) for b in bodies(d.stdout).values()
                  if b.startswith(b"{\"body")]
        if lang != "c" and (not via or not direct or any(v != direct[0] for v in via)):
            fail("echo differs:\nvia sidecar %r\ndirect %r" % (via, direct))


def start_c(tmp, exports, extra=()):
    sc = Sidecar(tmp, BOOTSTRAPS["c"], exports, extra)
    sc.wait_listening()
    return sc


def start_script(tmp, source, name):
    """A Python function written out from source, behind a sidecar that
    listens already."""
    fn = os.path.join(tmp, name)
    with open(fn, "w") as f:
        f.write(source)
    sc = Sidecar(tmp, [sys.executable, fn])
    try:
        sc.wait_listening()
    except BaseException:
        sc.stop()
        raise
    return sc


def invoke(sc, rid, payload=b"steady"):
    return sc.request("POST", "/invoke", payload, {"x-fc-request-id": rid,
                                                     "x-fc-control-path": "/invoke"})


def scenario_freeze_store_down():
    """Store hanging, then down, during /pre-freeze: the answer comes within
    the budget; after the thaw everything arrives, once."""
    store = Store()
    store.start("hang")
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_c(tmp, [store.url()], ["--freeze-budget", "300"])
        try:
            ids = ["r%d" % i for i in range(3)]
            for rid in ids:
                if invoke(sc, rid)[0] != 200:
                    fail("invoke failed")
            t0 = time.monotonic()
            st, _, body = sc.request("GET", "/pre-freeze")
            took = time.monotonic() - t0
            if st != 200 or took > 0.3 + 0.25:
                fail("pre-freeze with a hanging store: %d after %.3fs" % (st, took))
            if json.loads(body)["flushed"]:
                fail("claims flushed with a hanging store")
            sc.freeze(True)
            time.sleep(0.5)
            store.mode = "up"
            sc.freeze(False)
            deadline = time.time() + 10
            while time.time() < deadline and len([l for l in store.lines if l.get("stream") == "platform"]) < 9:
                time.sleep(0.05)
            check_start_end(store.lines, ids)
            check_no_duplicates(store.lines)
        finally:
            sc.stop()
    # Down: nothing listens on the store's port.
    down = Store()
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_c(tmp, [down.url()], ["--freeze-budget", "300"])
        try:
            invoke(sc, "d1")
            t0 = time.monotonic()
            st, _, _ = sc.request("GET", "/pre-freeze")
            if st != 200 or time.monotonic() - t0 > 0.55:
                fail("pre-freeze with the store down took too long")
            down.start("up")
            invoke(sc, "d2")
            sc.request("GET", "/pre-freeze")
            check_start_end(down.lines, ["d1", "d2"])
            check_no_duplicates(down.lines)
        finally:
            sc.stop()


def scenario_freeze_thaw_once():
    """Frozen right after /pre-freeze, thawed, more work, frozen again: every
    record reaches the store exactly once. Each freeze is followed by exactly
    one thaw record, made by the first request after it (the next round's
    first invocation, not the /pre-freeze itself), frozen at least as long
    as the test kept the instance stopped."""
    store = Store()
    store.start("up")
    rounds, frozen_s = 3, 0.2
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_c(tmp, [store.url()])
        try:
            ids = []
            for rnd in range(rounds + 1):
                for i in range(4 if rnd < rounds else 1):
                    rid = "t%d-%d" % (rnd, i)
                    ids.append(rid)
                    invoke(sc, rid)
                # The last round's /pre-freeze only flushes the last thaw.
                st, _, body = sc.request("GET", "/pre-freeze")
                if st != 200 or not json.loads(body)["flushed"]:
                    fail("pre-freeze with the store up did not flush: %r" % body)
                if rnd == rounds:
                    break
                sc.freeze(True)
                time.sleep(frozen_s)
                sc.freeze(False)
            check_start_end(store.lines, ids)
            check_no_duplicates(store.lines)
            order = [l for l in store.lines
                     if l.get("event") in ("pre-freeze", "thaw")]
            freezes = [l for l in order if l["event"] == "pre-freeze"]
            thaws = [l for l in order if l["event"] == "thaw"]
            if len(freezes) != rounds + 1:
                fail("pre-freeze records: %d" % len(freezes))
            if len(thaws) != rounds:
                fail("thaw records: %d, want %d: %r" % (len(thaws), rounds, thaws))
            # Exported in turn: pre-freeze, thaw, pre-freeze, thaw, ...
            want = ["pre-freeze", "thaw"] * rounds + ["pre-freeze"]
            if [l["event"] for l in order] != want:
                fail("freeze/thaw order: %r" % [l["event"] for l in order])
            starts = {l["request_id"]: l["time_ns"] for l in store.lines
                      if l.get("kind") == "invocation"}
            for rnd, (fr, th) in enumerate(zip(freezes, thaws)):
                if th.get("kind") != "instance" or th.get("thawed_by") != "invoke":
                    fail("thaw record: %r" % th)
                if th["time_ns"] != starts.get("t%d-0" % (rnd + 1)):
                    fail("thaw %d at %d, not at the arrival of t%d-0 (%r)" %
                         (rnd, th["time_ns"], rnd + 1, starts.get("t%d-0" % (rnd + 1))))
                if not fr["time_ns"] < th["time_ns"] < freezes[rnd + 1]["time_ns"]:
                    fail("thaw %d not between its pre-freeze and the next" % rnd)
                if not frozen_s * 1e9 <= th["frozen_ns"] <= th["time_ns"] - fr["time_ns"]:
                    fail("thaw %d: frozen_ns %d, slept %.1f s, %d ns since pre-freeze" %
                         (rnd, th["frozen_ns"], frozen_s, th["time_ns"] - fr["time_ns"]))
        finally:
            sc.stop()


def scenario_concurrency16(agent=None):
    """16 slow requests in flight, /pre-freeze meanwhile (answered without
    waiting for them), all 16 answered and recorded, then a clean flush;
    with the agent ("agent"), each record has heap numbers (their ends go
    in batches, one answer for each batch)."""
    import concurrent.futures
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        sc = Sidecar(tmp, BOOTSTRAPS["python"], ["file://" + out],
                     ["--agent", AGENT] if agent else [])
        try:
            sc.wait_listening()
            invoke(sc, "warm")  # held until the function is up
            ids = ["c%02d" % i for i in range(16)]
            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                futs = [pool.submit(invoke, sc, rid, b"slow") for rid in ids]
                time.sleep(0.1)
                t0 = time.monotonic()
                st, _, _ = sc.request("GET", "/pre-freeze")
                if st != 200 or time.monotonic() - t0 > 1.5:
                    fail("pre-freeze during requests: %d" % st)
                if any(f.result()[0] != 200 for f in futs):
                    fail("a concurrent request failed")
            st, _, body = sc.request("GET", "/pre-freeze")
            if not json.loads(body)["flushed"]:
                fail("final flush failed")
            records = file_records(out)
            check_start_end(records, ids)
            check_no_duplicates(records)
            for rid in ids:
                if not any(r.get("request_id") == rid and "slow request done" in r.get("message", "")
                           for r in records):
                    fail("log line of %s missing" % rid)
            inv = [r for r in records
                   if r.get("kind") == "invocation" and r.get("request_id") in ids]
            if len(inv) != 16:
                fail("%d invocation records for 16" % len(inv))
            # Their ends overlapped: sent to the agent in batches, one
            # answer each, and every record of a batch gets its numbers.
            if agent and any(int(r.get("heap_after_bytes", -1)) < 0 for r in inv):
                fail("overlapping invocations without heap numbers: %r" % inv[:3])
        finally:
            sc.stop()


def raw(port, data, read=True):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.sendall(data)
    resp = s.recv(65536) if read else b""
    s.close()
    return resp


def scenario_hostile():
    """Oversized headers / target / body, a client gone mid-body: platform
    style 4xx answers, and the sidecar keeps serving."""
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_c(tmp, [])
        try:
            invoke(sc, "h0")
            st, _, body = sc.request("GET", "/steady", headers={"x-big": "a" * 5000})
            if st != 400 or json.loads(body)["ErrorCode"] != "InvalidArgument":
                fail("big headers: %d %r" % (st, body))
            st, _, body = sc.request("GET", "/steady?" + "q" * 5000)
            if st != 400 or json.loads(body)["ErrorCode"] != "InvalidArgument":
                fail("big target: %d %r" % (st, body))
            resp = raw(sc.port, b"POST /invoke HTTP/1.1\r\nHost: x\r\n"
                       b"Content-Length: 17000000\r\n\r\nabc")
            if not re.match(rb"HTTP/1\.1 400 ", resp) or b"InvalidArgument" not in resp:
                fail("17 MB body: %r" % resp[:200])
            raw(sc.port, b"POST /invoke HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 1000\r\n\r\nonly-a-little", read=False)
            raw(sc.port, b"GET /ste", read=False)
            if invoke(sc, "h1")[0] != 200:
                fail("sidecar stopped serving after hostile input")
            if sc.proc.poll() is not None:
                fail("sidecar died")
        finally:
            sc.stop()


def scenario_never_opens_port():
    with tempfile.TemporaryDirectory() as tmp:
        sc = Sidecar(tmp, ["sleep", "30"], [], ["--start-timeout", "500"])
        try:
            sc.wait_listening()
            t0 = time.monotonic()
            st, _, body = invoke(sc, "n1")
            if st != 503 or json.loads(body)["ErrorCode"] != "FunctionNotStarted":
                fail("never started: %d %r" % (st, body))
            if time.monotonic() - t0 > 2:
                fail("held past the start limit")
            if sc.wait(5) != 3:
                fail("sidecar exit code %r, want 3" % sc.proc.returncode)
        finally:
            sc.stop()


def scenario_crash():
    """The function dies mid-request: FC's crash shape, its last log line
    exported with the request id, the sidecar exits with the function's code."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        sc = start_c(tmp, ["file://" + out])
        try:
            invoke(sc, "k0", b"spike")
            st, hdrs, body = invoke(sc, "k1", b"crash")
            msg = json.loads(body)
            if st != 404 or hdrs.get("x-fc-status") != "404" or \
               hdrs.get("x-fc-error-type") != "UnhandledInvocationError":
                fail("crash answer: %d %r" % (st, hdrs))
            if not re.match(r"Process exited unexpectedly before completing request "
                            r"\(duration: \d+ms, maxMemoryUsage: \d+\.\d\dMB\)$",
                            msg["errorMessage"]):
                fail("crash message %r" % msg)
            if sc.wait(5) != 3:
                fail("sidecar exit code %r, want the function's 3" % sc.proc.returncode)
            records = file_records(out)
            if not any(r.get("request_id") == "k1" and "about to crash" in r.get("message", "")
                       for r in records):
                fail("last log line not exported")
            check_start_end(records, ["k0", "k1"])
        finally:
            sc.stop()


def scenario_crash_final_profile():
    """A function that exits mid-request (node's process.exit) with the
    agent: the final profile its agent wrote on the way out is exported,
    a pprof file go tool pprof reads, along with its record."""
    with tempfile.TemporaryDirectory() as tmp:
        p, out_dir = run_local(tmp, "node", ["--invoke", "steady", "--invoke", "crash"],
                               env_extra={"FNPROF_AGENT": AGENT})
        if b"instance   exit=3" not in p.stdout:
            fail("the function did not exit 3: %r" % p.stdout[-500:])
        recs = [r for r in file_records(out_dir)
                if r.get("kind") == "profile" and r.get("profile_kind") == "final"]
        if len(recs) != 1:
            fail("%d final profile records, want 1" % len(recs))
        files = glob.glob(os.path.join(out_dir, "*-final-*.pb.gz"))
        if len(files) != 1:
            fail("final profile files: %r" % files)
        top = subprocess.run(["go", "tool", "pprof", "-top", files[0]],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if top.returncode != 0:
            fail("go tool pprof: %r" % top.stderr[-300:])


STEADY_BEFORE, STEADY_AFTER = 12, 4  # the detector needs 10 cycles of history


def spike_invocations(tmp):
    """fnprof-local's --file of steady invocations, the spike, steady ones;
    returns its path and how many lines it has."""
    lines = ["invoke steady"] * STEADY_BEFORE + ["invoke spike"] + \
        ["invoke steady"] * STEADY_AFTER
    inv = os.path.join(tmp, "invocations.txt")
    with open(inv, "w") as f:
        f.write("\n".join(lines) + "\n")
    return inv, len(lines)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def spike_run_rows(p, n_lines):
    """fnprof-local's invocation rows of a spike_invocations run, all
    answered 200, and the spike's request id."""
    if p.returncode != 0:
        fail("fnprof-local failed %d: %s" % (p.returncode, p.stderr[-2000:]))
    rows = [r for r in results(p.stdout) if r[0] == "invoke"]
    if len(rows) != n_lines or any(r[2] != 200 for r in rows):
        fail("invocations: %r" % (rows,))
    return rows, rows[STEADY_BEFORE][1]


def scenario_agent_collector():
    """The whole chain: fnprof-local -> sidecar -> C function with the agent,
    exported to fnprof-collector (sls://), checked through its query API."""
    from urllib.parse import quote
    with tempfile.TemporaryDirectory() as tmp:
        coll = Collector(tmp)
        try:
            inv, n_lines = spike_invocations(tmp)
            cmd = [LOCAL, "--port", str(free_port()), "--sidecar", SIDECAR,
                   "--sidecar-arg=--listen=127.0.0.1",
                   "--sidecar-arg=--export=" + coll.sls_url(),
                   "--sidecar-arg=--instance-id=agent-test", "--file", inv,
                   "--"] + BOOTSTRAPS["c"]
            env = dict(os.environ, FNPROF_AGENT=AGENT,
                       FNPROF_ACCESS_KEY_ID=coll.KEY_ID,
                       FNPROF_ACCESS_KEY_SECRET=coll.KEY_SECRET)
            p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            rows, spike_id = spike_run_rows(p, n_lines)
            for _, rid, _, _ in rows:
                got = json.loads(coll.get("/api/logs?limit=1000&request_id=" + quote(rid)))
                recs = [r["fields"] for r in got["records"]]
                msgs = [f.get("message", "") for f in recs]
                for what in ("Start", "End"):
                    want = "FC Invoke %s RequestId: %s" % (what, rid)
                    if msgs.count(want) != 1:
                        fail("%r stored %d times" % (want, msgs.count(want)))
                text = "report cache built" if rid == spike_id else "steady request"
                if not any(text in m and rid in m for m in msgs):
                    fail("function log line of %s not stored: %r" % (rid, msgs))
                inv_recs = [f for f in recs if f.get("record") == "invocation"]
                if len(inv_recs) != 1:
                    fail("%d invocation records for %s" % (len(inv_recs), rid))
                before = int(inv_recs[0].get("heap_before_bytes", -1))
                after = int(inv_recs[0].get("heap_after_bytes", -1))
                if before < 0 or after < 0:
                    fail("no heap numbers from the agent: %r" % inv_recs[0])
                if rid == spike_id and after - before < 9 << 20:
                    fail("spike invocation heap %d -> %d" % (before, after))
            got = json.loads(coll.get("/api/logs?limit=1000&q=" + quote("heap spike")))
            spikes = [r["fields"] for r in got["records"]
                      if r["fields"].get("record") == "spike"]
            if len(spikes) != 1:
                fail("%d spike reports stored, want 1" % len(spikes))
            first = spikes[0]["summary"].splitlines()[0]
            if "build_report_cache" not in first:
                fail("spike report does not name build_report_cache: %r" % first)
            events = [r["fields"].get("event") for r in json.loads(
                coll.get("/api/logs?limit=1000&q=agent_metrics"))["records"]
                if r["fields"].get("record") == "agent_metrics"]
            if sorted(events) != ["pre-freeze", "pre-stop"]:
                fail("agent metrics records: %r" % events)
            kinds = sorted(p["kind"] for p in json.loads(
                coll.get("/api/profiles?limit=100"))["profiles"])
            want = ["alloc", "final", "inuse", "spike-after", "spike-before", "spike-diff"]
            if kinds != want:
                fail("profiles stored: %r, want %r" % (kinds, want))
        finally:
            coll.stop()


# The start of a Python function's source: its POST handler has read
# `body`.
PY_POST_HANDLER = r'''
import os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
'''


LINES_FUNCTION = PY_POST_HANDLER + r'''        rid = self.headers.get("x-fc-request-id", "-")
        n = int(body or b"0") if self.path == "/invoke" else 0
        out = "".join("2026-01-01T00:00:00.000Z %s [INFO] line %d of %d, "
                      "padding to a realistic length\n" % (rid, i, n)
                      for i in range(n))
        sys.stdout.write(out)
        sys.stdout.flush()
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    do_GET = do_POST

HTTPServer(("127.0.0.1", int(os.environ["FC_SERVER_PORT"])), H).serve_forever()
'''


def scenario_freeze_many_lines():
    """Thousands of lines in one /pre-freeze to fnprof-collector (sls://):
    several buffer chunks and library batches, several requests in flight;
    every line is stored exactly once, and a second /pre-freeze sends none
    of them again."""
    from urllib.parse import quote
    per_request = {"m1": 3000, "m2": 5000, "m3": 1}
    with tempfile.TemporaryDirectory() as tmp:
        fn = os.path.join(tmp, "lines.py")
        with open(fn, "w") as f:
            f.write(LINES_FUNCTION)
        coll = Collector(tmp)
        os.environ["FNPROF_ACCESS_KEY_ID"] = coll.KEY_ID
        os.environ["FNPROF_ACCESS_KEY_SECRET"] = coll.KEY_SECRET
        # A generous budget: sanitizer builds on a loaded machine are slow,
        # and what is asserted is delivery, not speed.
        sc = Sidecar(tmp, [sys.executable, fn], [coll.sls_url()],
                     ["--freeze-budget", "5000"])
        try:
            sc.wait_listening()
            for rid, n in per_request.items():
                if invoke(sc, rid, str(n).encode())[0] != 200:
                    fail("invoke %s failed" % rid)
            flushed = []
            for rnd in range(3):  # the last one has nothing new to send
                st, _, body = sc.request("GET", "/pre-freeze")
                if st != 200:
                    fail("pre-freeze %d: %d %r" % (rnd, st, body))
                flushed.append(json.loads(body)["flushed"])
            if flushed[-2:] != [True, True]:
                fail("pre-freeze did not flush: %r" % flushed)
            for rid, n in per_request.items():
                got = json.loads(coll.get(
                    "/api/logs?limit=10000&request_id=" + quote(rid)))
                msgs = [r["fields"].get("message", "") for r in got["records"]]
                lines = sorted(int(m.split(" line ")[1].split(" ")[0])
                               for m in msgs if " line " in m)
                if lines != list(range(n)):
                    fail("%s: %d of %d lines stored, %d distinct" %
                         (rid, len(lines), n, len(set(lines))))
        finally:
            sc.stop()
            coll.stop()


def scenario_stdout_order():
    """The sidecar's stdout (the platform's log collection): a slow
    invocation's Start line is there while it still runs (held back at most
    briefly), then the function's line, then End and Summary, in order."""
    import concurrent.futures
    with tempfile.TemporaryDirectory() as tmp:
        sc = Sidecar(tmp, BOOTSTRAPS["python"])
        try:
            sc.wait_listening()
            invoke(sc, "warm")  # held until the function is up
            start = b"FC Invoke Start RequestId: slow-1"
            done = b"slow-1 [INFO] slow request done"  # before its answer
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                fut = pool.submit(invoke, sc, "slow-1", b"slow")
                # The function holds it 300 ms: the Start line must be out
                # before the function's last line, not only with it
                # (polled, not slept for: a loaded machine may take a
                # while to deliver the request).
                while True:
                    out, _ = sc.output()
                    if start in out and done not in out:
                        break
                    if done in out or fut.done():
                        fail("Start line not on stdout while the invocation runs")
                    time.sleep(0.01)
                if b"FC Invoke End RequestId: slow-1" in out and done not in out:
                    fail("End line before the invocation ended")
                if fut.result()[0] != 200:
                    fail("slow invocation failed")
            out, _ = sc.output()
            marks = [b"FC Invoke Start RequestId: slow-1",
                     b"slow-1 [INFO] slow request done",
                     b"FC Invoke End RequestId: slow-1",
                     b"FC Invoke Summary RequestId: slow-1"]
            at = [out.find(m) for m in marks]
            if -1 in at or at != sorted(at):
                fail("stdout order %r in %r" % (at, out[-800:]))
        finally:
            sc.stop()


FLOOD_FUNCTION = r'''
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, HTTPServer

def flood():  # keeps the stdout pipe busy, as a chatty function does
    end = time.time() + float(os.environ.get("FLOOD_SECONDS", "3"))
    line = b"unprefixed flood line, keeps the pipe readable\n" * 4
    while time.time() < end:
        os.write(1, line)

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        rid = self.headers.get("x-fc-request-id", "-")
        os.write(1, ("2026-01-01T00:00:00.000Z %s [INFO] handled\n" % rid).encode())
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

threading.Thread(target=flood, daemon=True).start()
HTTPServer(("127.0.0.1", int(os.environ["FC_SERVER_PORT"])), H).serve_forever()
'''


def scenario_log_flood():
    """A function that keeps its stdout pipe busy does not starve requests
    (the pipes outrank the connections only for a bounded number of
    reads), and each invocation's own line is still on stdout before its
    End line."""
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_script(tmp, FLOOD_FUNCTION, "flood.py")
        try:
            invoke(sc, "warm")  # held until the function is up
            slowest = 0.0
            for i in range(20):
                t = time.time()
                st = invoke(sc, "flood-%d" % i)[0]
                slowest = max(slowest, time.time() - t)
                if st != 200:
                    fail("flood-%d: status %d" % (i, st))
            if slowest > 2.0:
                fail("an invocation took %.2f s under a log flood" % slowest)
            out, _ = sc.output()
            for i in range(20):
                rid = "flood-%d" % i
                line = out.find(("%s [INFO] handled" % rid).encode())
                end = out.find(("FC Invoke End RequestId: %s\n" % rid).encode())
                if line < 0 or end < 0 or line > end:
                    fail("%s: own line at %d, End at %d" % (rid, line, end))
        finally:
            sc.stop()


def scenario_secrets():
    """Per-request credentials reach no output: not the sidecar's stdout or
    stderr, not fnprof-local's, not the exported records."""
    env = {"FNPROF_ACCESS_KEY_ID": "AKID-test", "FNPROF_ACCESS_KEY_SECRET": SECRET,
           "FNPROF_SECURITY_TOKEN": SECRET + "-token"}
    with tempfile.TemporaryDirectory() as tmp:
        p, out_dir = run_local(tmp, "c", ["--invoke", "steady", "--invoke", "crash"], env)
        everything = p.stdout + p.stderr
        for path in os.listdir(out_dir):
            with open(os.path.join(out_dir, path), "rb") as f:
                everything += f.read()
        if b"FC Invoke Start" not in everything:
            fail("nothing captured")
        if SECRET.encode() in everything:
            fail("the secret leaked")


def scenario_logstore_from_headers():
    """--export sls://HOST:PORT without a project and logstore: the
    platform's x-fc-service-logproject/logstore headers (with its
    per-request keys) say where the records go; nothing is sent before,
    and a later request naming another logstore does not move them (the
    sinks' in-flight requests are addressed already)."""
    from urllib.parse import quote
    with tempfile.TemporaryDirectory() as tmp:
        coll = Collector(tmp)
        os.environ.pop("FNPROF_ACCESS_KEY_ID", None)
        os.environ.pop("FNPROF_ACCESS_KEY_SECRET", None)
        sc = Sidecar(tmp, BOOTSTRAPS["c"], ["sls://127.0.0.1:%d" % coll.port])
        try:
            sc.wait_listening()
            st, _, body = sc.request("GET", "/pre-freeze")
            if st != 200 or json.loads(body)["flushed"]:
                fail("flushed with no destination: %d %r" % (st, body))
            platform = {"x-fc-request-id": "h1", "x-fc-control-path": "/invoke",
                        "x-fc-access-key-id": coll.KEY_ID,
                        "x-fc-access-key-secret": coll.KEY_SECRET,
                        "x-fc-service-logproject": "svcproj",
                        "x-fc-service-logstore": "svclogs"}
            for rid, logstore in (("h1", "svclogs"), ("h2", "elsewhere")):
                platform.update({"x-fc-request-id": rid,
                                 "x-fc-service-logstore": logstore})
                if sc.request("POST", "/invoke", b"steady", platform)[0] != 200:
                    fail("invoke %s failed" % rid)
                st, _, body = sc.request("GET", "/pre-freeze")
                if st != 200 or not json.loads(body)["flushed"]:
                    fail("pre-freeze after %s: %d %r" % (rid, st, body))
            for rid in ("h1", "h2"):
                got = json.loads(coll.get("/api/logs?limit=100&request_id=" + quote(rid)))
                where = {(r["project"], r["logstore"]) for r in got["records"]}
                if where != {("svcproj", "svclogs")}:
                    fail("%s stored in %r" % (rid, where))
        finally:
            sc.stop()
            coll.stop()


def scenario_spike_named(lang):
    """One spike report per spike endpoint, naming what did it: the
    function for C and Node (JavaScript through node's perf map, which the
    sidecar asks for), the function on CPython 3.12+ and, on older
    Pythons (Debian 12's 3.11 has no perf map), the request that did it;
    no perf map left behind."""
    with tempfile.TemporaryDirectory() as tmp:
        inv, n_lines = spike_invocations(tmp)
        maps_before = set(glob.glob("/tmp/perf-*.map"))
        p, out_dir = run_local(tmp, lang, ["--file", inv],
                               env_extra={"FNPROF_AGENT": AGENT})
        _, spike_id = spike_run_rows(p, n_lines)
        spikes = [r for r in file_records(out_dir) if r.get("kind") == "spike"]
        if len(spikes) != 1:
            fail("%d spike reports, want 1" % len(spikes))
        first = spikes[0]["summary"].splitlines()[0]
        want = {"c": "build_report_cache", "node": "JS:~buildReportCache"}.get(lang)
        if lang == "python":
            version = subprocess.run(
                BOOTSTRAPS["python"][:1] + ["-c", "import sys; print(sys.version_info >= (3, 12))"],
                stdout=subprocess.PIPE, text=True).stdout.strip()
            want = "py::build_report_cache" if version == "True" else spike_id
        grew = first.split("grew most", 1)[-1]
        if want not in grew:
            fail("spike report does not name %r: %r" % (want, first))
        if "in request " + spike_id not in first:
            fail("spike report does not name the request %s: %r" % (spike_id, first))
        # New maps of processes that are gone (a test running beside this
        # one has its own function's map, alive until that one stops).
        left = [m for m in set(glob.glob("/tmp/perf-*.map")) - maps_before
                if not pid_alive(int(m[len("/tmp/perf-"):-len(".map")]))]
        if left:
            fail("perf maps left behind: %r" % sorted(left))


def scenario_exit_on_sigterm():
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_c(tmp, [])
        try:
            invoke(sc, "s1")
            sc.proc.terminate()
            if sc.wait(5) != 0:
                fail("SIGTERM exit %r" % sc.proc.returncode)
        finally:
            sc.stop()


# A function that speaks HTTP by hand, so each way of framing a response
# (and each way of getting it wrong) can be chosen by path. X-Conn numbers
# the connection the request came on: keep-alive reuse is visible.
FRAMING_FUNCTION = r"""
import itertools, os, socket, threading
serial = itertools.count(1)
BIG = b"".join(b"%x\r\n%s\r\n" % (2048, b"z" * 2048) for _ in range(1000))
ANSWERS = {
    "/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n"
                b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
    "/bigchunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                   BIG + b"0\r\n\r\n",
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\n"
                 b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    "/close": b"HTTP/1.0 200 OK\r\nX-B: 2\r\n\r\nuntil-close",
    "/nocontent": b"HTTP/1.1 204 No Content\r\nX-C: 3\r\n\r\n",
    "/head": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
    "/fold": b"HTTP/1.1 200 OK\r\nX-F: a\r\n b\r\nContent-Length:1\r\n\r\nf",
    "/toobig": b"HTTP/1.1 200 OK\r\nContent-Length: 17000000\r\n\r\nxx",
    "/garbage": b"NOT HTTP AT ALL\r\n\r\n",
    "/cut": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
    "/extra": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
}
CLOSE_AFTER = {"/close", "/cut", "/garbage", "/toobig"}

def serve(conn):
    n = next(serial)
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = conn.recv(65536)
            if not d:
                return conn.close()
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ")
        length = 0
        for l in lines[1:]:
            k, v = l.split(":", 1)
            if k.lower() == "content-length":
                length = int(v)
        while len(buf) < length:
            buf += conn.recv(65536)
        body, buf = buf[:length], buf[length:]
        if path == "/ka":
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Conn: %d\r\nContent-Length: 2\r\n\r\nka" % n)
        elif path == "/headers":
            names = ",".join(sorted(l.split(":", 1)[0].lower() for l in lines[1:]))
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: X-Gone\r\nX-Gone: 1\r\n"
                         b"X-Stay: 1\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(names), names.encode()))
        elif path == "/echo":
            out = method.encode() + b" " + body
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
        else:
            conn.sendall(ANSWERS[path])
        if path in CLOSE_AFTER:
            return conn.close()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["FC_SERVER_PORT"])))
s.listen(64)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def scenario_upstream_framing():
    """Every way a function may frame its response reaches the caller as
    the function meant it (chunked with extensions and trailers, an interim
    100, close-delimited, HEAD, 204, folded headers, 2 MB in 1000 chunks);
    keep-alive connections are reused; what is not a response, is over
    16 MB or stops short gets 502 BadResponse, and the next request is
    served; bytes past a whole response leave it whole but end the
    connection (they cannot be the next response)."""
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_script(tmp, FRAMING_FUNCTION, "framing.py")
        try:
            want = {
                "/chunked": (200, b"hello world"),
                "/bigchunked": (200, b"z" * 2048 * 1000),
                "/continue": (201, b"ok"),
                "/close": (200, b"until-close"),
                "/nocontent": (204, b""),
                "/fold": (200, b"f"),
            }
            for path, (st_want, body_want) in want.items():
                st, hdrs, body = sc.request("GET", path)
                if st != st_want or body != body_want:
                    fail("%s: %d %r" % (path, st, body[:80]))
            if sc.request("GET", "/chunked")[1].get("x-a") != "1":
                fail("chunked: headers lost")
            # Hop-by-hop headers (RFC 9110 7.6.1), those the Connection
            # header names included, stop at the sidecar both ways.
            st, hdrs, body = sc.request("GET", "/headers", headers={
                "Connection": "keep-alive, X-Drop", "X-Drop": "1", "X-Keep": "1",
                "Keep-Alive": "timeout=5"})
            got = body.decode().split(",")
            if "x-keep" not in got or {"x-drop", "keep-alive", "connection"} & set(got):
                fail("request headers forwarded: %r" % got)
            if hdrs.get("x-stay") != "1" or "x-gone" in hdrs:
                fail("response headers returned: %r" % hdrs)
            if sc.request("GET", "/fold")[1].get("x-f") not in ("a b", "a  b"):
                fail("folded header: %r" % sc.request("GET", "/fold")[1])
            st, hdrs, body = sc.request("HEAD", "/head")
            if st != 200 or body != b"":
                fail("HEAD: %d %r" % (st, body))
            conns = {sc.request("GET", "/ka")[1]["x-conn"] for _ in range(5)}
            if len(conns) != 1:
                fail("keep-alive not reused: connections %r" % conns)
            for path in ("/toobig", "/garbage", "/cut"):
                st, _, body = sc.request("GET", path)
                if st != 502 or json.loads(body)["ErrorCode"] != "BadResponse":
                    fail("%s: %d %r" % (path, st, body[:200]))
                st, _, body = sc.request("GET", "/ka")
                if st != 200 or body != b"ka":
                    fail("after %s: %d %r" % (path, st, body))
            if "16 MB" not in json.loads(sc.request("GET", "/toobig")[2])["ErrorMessage"]:
                fail("toobig: message does not say why")
            before = sc.request("GET", "/ka")[1]["x-conn"]
            st, _, body = sc.request("GET", "/extra")
            if st != 200 or body != b"ok":
                fail("/extra: %d %r" % (st, body))
            if sc.request("GET", "/ka")[1]["x-conn"] == before:
                fail("/extra: its connection was used again")
            if sc.proc.poll() is not None:
                fail("sidecar died")
        finally:
            sc.stop()


def scenario_quiet_ends():
    """With the agent and invocations one at a time: once the spike rule's
    history is full, an invocation that took no sample ends no cycle (the
    agent's thread is not woken for it) and its record keeps the heap as it
    was; every record still has heap numbers. The C example's /steady
    allocates ~260 KiB a request, so about half of them sample nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        sc = start_c(tmp, ["file://" + out], ["--agent", AGENT])
        try:
            for i in range(60):
                if invoke(sc, "q%d" % i)[0] != 200:
                    fail("q%d not answered" % i)
            if sc.request("GET", "/pre-freeze")[0] != 200:
                fail("/pre-freeze")
        finally:
            sc.stop()
        records = file_records(out)
        inv = [r for r in records if r.get("kind") == "invocation"]
        if len(inv) != 60 or any(int(r.get("heap_after_bytes", -1)) < 0 for r in inv):
            fail("invocation records without heap numbers: %r" % inv[:3])
        metrics = [r for r in records if r.get("kind") == "agent_metrics"]
        cycles = int(metrics[-1]["cycle"]) if metrics else -1
        # Every end a cycle would be 60, and the freeze's one more.
        if not 10 <= cycles < 55:
            fail("%d cycles for 60 invocations and a freeze" % cycles)


def read_responses(s, n, timeout=5):
    """n whole responses (Content-Length framed) from socket s:
    [(status, headers dict, body)]."""
    s.settimeout(timeout)
    data, out = b"", []
    while len(out) < n:
        while b"\r\n\r\n" not in data:
            more = s.recv(65536)
            if not more:
                return out
            data += more
        head, data = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        hdrs = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        status = int(lines[0].split(" ")[1])
        if status == 100:
            continue
        length = int(hdrs.get("content-length", 0))
        while len(data) < length:
            data += s.recv(65536)
        out.append((status, hdrs, data[:length]))
        data = data[length:]
    return out


def scenario_server_edges():
    """The platform-facing server: pipelined requests answered in order on
    one connection, HTTP/1.0 (closed unless keep-alive), a chunked request
    body and Expect: 100-continue reach the function whole, HEAD without a
    body; malformed requests, unknown methods and a head over 64 KiB get
    the platform's JSON error shape and the connection ends; the server
    keeps serving."""
    with tempfile.TemporaryDirectory() as tmp:
        sc = start_script(tmp, FRAMING_FUNCTION, "framing.py")
        try:
            sc.request("GET", "/ka")  # held until the function is up
            s = socket.create_connection(("127.0.0.1", sc.port), 5)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost:x\r\nContent-Length:3\r\n\r\none"
                      b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
                      b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"3\r\nthr\r\n2;x=y\r\nee\r\n0\r\n\r\n")
            got = [r[2] for r in read_responses(s, 3)]
            if got != [b"POST one", b"POST two", b"POST three"]:
                fail("pipelined: %r" % got)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                      b"Content-Length: 4\r\n\r\n")
            s.settimeout(5)
            if not s.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n"):
                fail("no 100 Continue")
            s.sendall(b"four")
            if read_responses(s, 1)[0][2] != b"POST four":
                fail("body after 100 Continue")
            s.sendall(b"HEAD /ka HTTP/1.1\r\nHost: x\r\n\r\nGET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            data = b""
            while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"ka"):
                more = s.recv(65536)
                if not more:
                    break
                data += more
            if data.count(b"HTTP/1.1 200") != 2 or data.count(b"\r\n\r\nka") != 1:
                fail("HEAD then GET: %r" % data)
            s.close()
            # Pipelined requests the sidecar answers at once (over its
            # target limit): each answered, in order, on the same connection.
            s = socket.create_connection(("127.0.0.1", sc.port), 5)
            s.sendall((b"GET /" + b"q" * 4200 + b" HTTP/1.1\r\nHost: x\r\n\r\n") * 300 +
                      b"GET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
            r = read_responses(s, 301)
            if len(r) != 301 or any(x[0] != 400 for x in r[:300]) or r[300][2] != b"ka":
                fail("300 pipelined refusals: %d answers" % len(r))
            s.close()
            s = socket.create_connection(("127.0.0.1", sc.port), 5)
            s.sendall(b"GET /ka HTTP/1.0\r\n\r\n")
            r = read_responses(s, 1)
            if not r or r[0][0] != 200 or s.recv(10) != b"":
                fail("HTTP/1.0 without keep-alive: not answered and closed")
            s.close()
            for bad, status in ((b"NONSENSE\r\n\r\n", 400),
                                (b"BREW /ka HTTP/1.1\r\nHost: x\r\n\r\n", 405),
                                (b"GET /ka HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 400),
                                (b"POST /echo HTTP/1.1\r\nContent-Length: 17000000\r\n\r\n", 400),
                                (b"POST /echo HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
                                (b"POST /echo HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
                                (b"POST /echo HTTP/1.1\r\nContent-Length: 1\r\n"
                                 b"Content-Length: 2\r\n\r\nab", 400),
                                (b"GET /ka HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400)):
                s = socket.create_connection(("127.0.0.1", sc.port), 5)
                s.sendall(bad)
                r = read_responses(s, 1)
                if not r or r[0][0] != status or "ErrorCode" not in json.loads(r[0][2]) \
                        or s.recv(10) != b"":
                    fail("%r...: %r, want %d and a close" % (bad[:30], r, status))
                s.close()
            if sc.request("GET", "/ka")[2] != b"ka" or sc.proc.poll() is not None:
                fail("the sidecar stopped serving")
        finally:
            sc.stop()


PEAK_FUNCTION = PY_POST_HANDLER + r'''        if body == b"transient":  # 64 MiB written, then given back
            block = b"x" * (64 << 20)
            del block
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

HTTPServer(("127.0.0.1", int(os.environ["FC_SERVER_PORT"])), H).serve_forever()
'''


def scenario_peak_per_invocation():
    """Max memory used is each invocation's own: one that writes 64 MiB
    and gives it back before answering reports it, and the next one,
    which allocates nothing, reports the level it runs at, not the
    previous one's peak (the peak is reset per invocation alone)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        os.makedirs(out)
        fn = os.path.join(tmp, "peak.py")
        with open(fn, "w") as f:
            f.write(PEAK_FUNCTION)
        sc = Sidecar(tmp, [sys.executable, fn], ["file://" + out])
        try:
            sc.wait_listening()
            for rid, what in (("p0", b"small"), ("p1", b"transient"),
                              ("p2", b"small"), ("p3", b"transient")):
                if invoke(sc, rid, what)[0] != 200:
                    fail("%s not answered" % rid)
            if sc.request("GET", "/pre-freeze")[0] != 200:
                fail("/pre-freeze")
        finally:
            sc.stop()
        peak = {r["request_id"]: int(r["max_rss_bytes"]) for r in file_records(out)
                if r.get("kind") == "invocation"}
        mib = 1 << 20
        if len(peak) != 4 or min(peak.values()) <= 0:
            fail("invocation records: %r" % peak)
        for big, small in (("p1", "p0"), ("p1", "p2"), ("p3", "p2")):
            if peak[big] - peak[small] < 48 * mib:
                fail("%s's peak (%d MiB) not 48 MiB over %s's (%d MiB)"
                     % (big, peak[big] // mib, small, peak[small] // mib))


def scenario_client_timeout():
    """--client-timeout 1000: a request that stops arriving halfway (mid-head
    or mid-body) loses its connection within ~1.25 s; one that trickles in
    a byte at a time (never quiet that long) is answered; an idle
    connection between requests stays open and serves the next."""
    with tempfile.TemporaryDirectory() as tmp:
        fn = os.path.join(tmp, "framing.py")
        with open(fn, "w") as f:
            f.write(FRAMING_FUNCTION)
        sc = Sidecar(tmp, [sys.executable, fn], (), ["--client-timeout", "1000"])
        try:
            sc.wait_listening()
            sc.request("GET", "/ka")  # held until the function is up
            idle = socket.create_connection(("127.0.0.1", sc.port), 5)
            idle.sendall(b"GET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
            if read_responses(idle, 1)[0][2] != b"ka":
                fail("idle connection: first request")
            stalled = []
            for part in (b"GET /ka HTTP/1.1\r\nHost: x\r\n",
                         b"POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab"):
                s = socket.create_connection(("127.0.0.1", sc.port), 5)
                s.sendall(part)
                stalled.append(s)
            t0 = time.monotonic()
            slow = socket.create_connection(("127.0.0.1", sc.port), 5)
            slow.sendall(b"POST /echo HTTP/1.1\r\nContent-Length: 6\r\n\r\n")
            for ch in b"trick":  # 0.5 s apart, 2.5 s in all
                time.sleep(0.5)
                slow.sendall(bytes([ch]))
            for s in stalled:  # closed by now, without an answer
                s.settimeout(1)
                try:
                    if s.recv(100) != b"":
                        fail("a stalled request was answered")
                except socket.timeout:
                    fail("a stalled request kept its connection %.1f s"
                         % (time.monotonic() - t0))
                s.close()
            slow.sendall(b"y")
            if read_responses(slow, 1)[0][2] != b"POST tricky":
                fail("the trickling request was not answered")
            idle.sendall(b"GET /ka HTTP/1.1\r\nHost: x\r\n\r\n")
            if read_responses(idle, 1)[0][2] != b"ka":
                fail("the idle connection was closed")
            if sc.proc.poll() is not None:
                fail("sidecar died")
        finally:
            sc.stop()


if __name__ == "__main__":
    fn = globals()["scenario_" + sys.argv[1]]
    fn(*sys.argv[2:])
    print("ok", sys.argv[1:])
