"""Shared helpers for the hooks integration tests: free loopback ports, a
sidecar in a session of its own (so the test can freeze it like the
platform), raw HTTP on loopback, a tiny log store that can be up, down or
hanging, and readers for the records the sidecar exported."""
import glob
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time

SIDECAR = os.environ["HOOKS_SIDECAR"]
LOCAL = os.environ["HOOKS_LOCAL"]
C_FUNCTION = os.environ["HOOKS_C_FUNCTION"]
EXAMPLES = os.environ["HOOKS_EXAMPLES"]
AGENT = os.environ.get("HOOKS_AGENT")
COLLECTOR = os.environ.get("HOOKS_COLLECTOR")

BOOTSTRAPS = {
    "c": [C_FUNCTION],
    "python": ["python3", os.path.join(EXAMPLES, "python", "server.py")],
    "node": ["node", os.path.join(EXAMPLES, "node", "server.js")],
}

# The examples listen on FC_SERVER_HOST; tests keep everything on loopback.
os.environ["FC_SERVER_HOST"] = "127.0.0.1"


def fail(msg):
    raise AssertionError(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sidecar:
    def __init__(self, tmp, bootstrap, exports=(), extra=()):
        self.port = free_port()
        self.out_path = os.path.join(tmp, "sidecar.out")
        self.err_path = os.path.join(tmp, "sidecar.err")
        args = [SIDECAR, "--listen", "127.0.0.1", "--port", str(self.port),
                "--instance-id", "test"]
        for url in exports:
            args += ["--export", url]
        args += list(extra) + ["--"] + list(bootstrap)
        self.out = open(self.out_path, "wb")
        self.err = open(self.err_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.err,
                                     start_new_session=True)

    def wait_listening(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.01)
        fail("sidecar did not listen")

    def request(self, method, path, body=b"", headers=None, timeout=10):
        return http_request(self.port, method, path, body, headers, timeout)

    def freeze(self, on):
        os.killpg(self.proc.pid, signal.SIGSTOP if on else signal.SIGCONT)

    def wait(self, timeout=10):
        return self.proc.wait(timeout)

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGCONT)
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        self.out.close()
        self.err.close()

    def output(self):
        with open(self.out_path, "rb") as f:
            out = f.read()
        with open(self.err_path, "rb") as f:
            return out, f.read()


def http_request(port, method, path, body=b"", headers=None, timeout=10):
    """One request on a fresh connection; (status, headers dict, body)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    hdrs = {k.lower(): v for k, v in resp.getheaders()}
    conn.close()
    return resp.status, hdrs, data


def flatten(rec):
    """A record as the export library writes it ({time_ns, kind, instance,
    request_id, fields}) back in the sidecar's flat shape: the sidecar's
    own kind travels as the field "record"."""
    out = dict(rec.get("fields", {}))
    for k in ("time_ns", "instance", "request_id"):
        if k in rec:
            out[k] = rec[k]
    out.setdefault("request_id", "")
    if "record" in out:
        out["kind"] = out.pop("record")
    for k, v in list(out.items()):
        if isinstance(v, str) and k.endswith(("_ns", "_bytes")) and v.lstrip("-").isdigit():
            out[k] = int(v)
    return out


def file_records(directory):
    """Every record the file:// sink wrote, in order."""
    records = []
    for path in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        with open(path) as f:
            records += [flatten(json.loads(line)) for line in f if line.strip()]
    return records


class Store:
    """A log store on loopback: 'up' acknowledges, 'hang' never answers,
    'down' is not listening at all. Keeps every line it acknowledged."""

    def __init__(self):
        self.port = free_port()
        self.mode = "down"
        self.lines = []
        self.server = None

    def start(self, mode):
        self.mode = mode
        if self.server is None and mode != "down":
            store = self

            class H(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"

                def log_message(self, *a):
                    pass

                def do_POST(self):
                    n = int(self.headers.get("Content-Length") or 0)
                    data = self.rfile.read(n)
                    if store.mode == "hang":
                        time.sleep(30)
                        return
                    store.lines += [json.loads(l) for l in data.splitlines() if l]
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
            self.server.daemon_threads = True
            threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self):
        return "http://127.0.0.1:%d/ingest" % self.port


def check_no_duplicates(records):
    seen = set()
    for r in records:
        key = (r.get("kind"), r.get("time_ns"), r.get("message"), r.get("event"))
        if key in seen:
            fail("record exported twice: %r" % (r,))
        seen.add(key)


def check_start_end(records, ids, word="Invoke"):
    msgs = [r["message"] for r in records if r.get("stream") == "platform"]
    for rid in ids:
        for what in ("Start", "End"):
            line = "FC %s %s RequestId: %s" % (word, what, rid)
            if msgs.count(line) != 1:
                fail("%r exported %d times" % (line, msgs.count(line)))


class Collector:
    """fnprof-collector on a free loopback port with a temp SQLite db."""

    KEY_ID, KEY_SECRET = "hooks-test-id", "hooks-test-secret"

    def __init__(self, tmp):
        self.out = open(os.path.join(tmp, "collector.out"), "w+b")
        self.proc = subprocess.Popen(
            [COLLECTOR, "--listen", "127.0.0.1:0", "--db",
             os.path.join(tmp, "store.db"), "--access-key",
             "%s:%s" % (self.KEY_ID, self.KEY_SECRET)],
            stdout=self.out, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        self.port = None
        while self.port is None and time.time() < deadline:
            # stderr shares the file: a warning may come before the line.
            self.out.seek(0)
            text = self.out.read().decode(errors="replace")
            for line in text.split("\n")[:-1]:  # whole lines only
                if line.startswith("listening on "):
                    self.port = int(line.rsplit(":", 1)[1])
            if self.port is None and self.proc.poll() is not None:
                break
            if self.port is None:
                time.sleep(0.02)
        if self.port is None:
            self.stop()
            fail("fnprof-collector did not say its port")

    def sls_url(self, project="hooks", logstore="fn"):
        return "sls://127.0.0.1:%d/%s/%s" % (self.port, project, logstore)

    def get(self, path):
        st, _, body = http_request(self.port, "GET", path)
        if st != 200:
            fail("collector %s: %d %r" % (path, st, body[:300]))
        return body

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()
