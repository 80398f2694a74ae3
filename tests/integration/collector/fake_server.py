"""A stand-in store that answers every POST with a fixed status (503, 429,
400...) and counts requests in a file. usage: fake_server.py PORT STATUS
COUNT_FILE [RETRY_AFTER]"""
import http.server, sys

port, status, count_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
retry_after = sys.argv[4] if len(sys.argv) > 4 else None
n = 0

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global n
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        n += 1
        with open(count_file, "w") as f:
            f.write(str(n))
        body = b'{"errorCode":"ServerBusy","errorMessage":"fake"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
print("ready", flush=True)
srv.serve_forever()
