#!/usr/bin/env python3
"""An FC custom-runtime function in Python (http.server, standard library only).

Endpoints (event invocations are POST /invoke; the payload picks the action):
  /steady          a little work, a small answer
  /spike           build_report_cache() allocates and keeps ~10 MiB
  /echo            answers with what it received (method, path, query,
                   headers, body digest) so a test can compare answers
  /slow            holds the request 300 ms (concurrency tests)
  /crash           the process exits in the middle of the request
  /pre-freeze, /pre-stop, /initialize   the lifecycle hooks
Logs use FC's recommended `time requestId [LEVEL] message` format for some
lines and plain prints for others (attributed by the sidecar to the request
in flight). Listens on FC_SERVER_PORT (default 9000) on FC_SERVER_HOST
(default 0.0.0.0, as the platform requires).
"""
import datetime
import hashlib
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPORT_CACHE = []  # what the spike endpoint keeps alive


def log(request_id, level, message):
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)
    # One write per line: print() writes the text and its newline separately,
    # so lines from concurrent requests (ThreadingHTTPServer) could merge.
    sys.stdout.write("%s %s [%s] %s\n" % (stamp, request_id, level, message))
    sys.stdout.flush()


def build_report_cache():
    """The spike: ~10 MiB that stays allocated."""
    block = bytearray(10 * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1  # touch every page so it counts in RSS
    REPORT_CACHE.append(block)
    return len(block)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as FC expects

    def log_message(self, fmt, *args):  # no access log on stderr
        pass

    def answer(self, code, body, ctype="application/json", fc_status="200"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-fc-status", fc_status)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def action(self, path, payload):
        rid = self.headers.get("x-fc-request-id", "-")
        if path == "/invoke":
            path = "/" + (payload.decode(errors="replace").strip() or "steady")
        if path == "/spike":
            n = build_report_cache()
            log(rid, "INFO", "report cache built: %d bytes" % n)
            return self.answer(200, json.dumps({"cached": len(REPORT_CACHE)}))
        if path == "/slow":  # holds the request, for concurrency tests
            time.sleep(0.3)
            log(rid, "INFO", "slow request done")
            return self.answer(200, json.dumps({"ok": True, "path": path}))
        if path == "/crash":
            log(rid, "ERROR", "about to crash")
            os._exit(3)
        if path in ("/pre-freeze", "/pre-stop", "/initialize"):
            log(rid, "INFO", "hook %s" % path)
            return self.answer(200, "{}")
        if path == "/echo" or path.startswith("/echo"):
            print("echo request", flush=True)
            return self.answer(200, self.echo(payload))
        log(rid, "INFO", "steady request")
        print("plain line for %s" % path, flush=True)
        return self.answer(200, json.dumps({"ok": True, "path": path}))

    def echo(self, payload):
        headers = {k.lower(): v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "keep-alive", "content-length")}
        return json.dumps({"method": self.command, "target": self.path,
                           "headers": headers, "body_len": len(payload),
                           "body_sha256": hashlib.sha256(payload).hexdigest()},
                          sort_keys=True)

    def handle_any(self):
        payload = self.body()
        self.action(self.path.split("?")[0], payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


def main():
    port = int(os.environ.get("FC_SERVER_PORT", "9000"))
    host = os.environ.get("FC_SERVER_HOST", "0.0.0.0")
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print("python example listening on %s:%d" % (host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
