#!/usr/bin/env bash
# Collector down, then answering 503, during flushes: batches are spooled
# (zstd segments on disk), retried with backoff, and once the collector is
# back, delivered exactly once and in order. A 400 is not retried: the batch
# is counted as rejected and kept under spool/rejected.
. "$TEST_SRC/lib.sh"
KEY=AKID:sp00l
start_collector "$WORK/db" --access-key "$KEY"
P=$PORT
stop_collector
URL="sls://127.0.0.1:$P/proj/spooled"
SP="$WORK/spool"

# 1. Nobody listening: connection refused, retried until the deadline.
"$EXPORT_PUSH" "$URL" --key "$KEY" --spool "$SP" --records 30 --batch 10 \
  --deadline-ms 800 >"$WORK/o1" || true
grep -q "^acked=0 pending=0 spooled=30 spool=3 " "$WORK/o1" || fail "down: $(cat "$WORK/o1")"
[ "$(ls "$SP"/*.seg | wc -l)" = 3 ] || fail "3 segments on disk"

fake() {
  "$PYTHON" "$TEST_SRC/fake_server.py" "$P" "$1" "$WORK/count.$1" ${2:-} >"$WORK/fake.out" &
  FAKE=$!
  for _ in $(seq 100); do grep -q ready "$WORK/fake.out" 2>/dev/null && break; sleep 0.05; done
}

# 2. 503 with Retry-After: 0: retried (more than one request), then spooled
#    behind the older segments.
fake 503 0
"$EXPORT_PUSH" "$URL" --key "$KEY" --spool "$SP" --start 30 --records 10 \
  --batch 10 --deadline-ms 800 >"$WORK/o2" || true
kill $FAKE; wait $FAKE 2>/dev/null || true
grep -q "^acked=0 pending=0 spooled=10 spool=4 .*status=503" "$WORK/o2" || fail "503: $(cat "$WORK/o2")"
[ "$(cat "$WORK/count.503")" -ge 2 ] || fail "503 was not retried"

# 3. A 400 is permanent: one request, no retry, kept for inspection.
fake 400
"$EXPORT_PUSH" "$URL" --key "$KEY" --spool "$WORK/sp400" --records 5 --batch 5 \
  --deadline-ms 800 >"$WORK/o3" || true
kill $FAKE; wait $FAKE 2>/dev/null || true
grep -q "rejected=5 .*status=400" "$WORK/o3" || fail "400: $(cat "$WORK/o3")"
[ "$(cat "$WORK/count.400")" = 1 ] || fail "400 was retried"
[ "$(ls "$WORK/sp400/rejected"/*.seg | wc -l)" = 1 ] || fail "rejected batch not kept"

# 4. Collector back on the same port: the spool drains in order, once.
start_collector "$WORK/db" --access-key "$KEY" --listen 127.0.0.1:$P
[ "$PORT" = "$P" ] || fail "port"
"$EXPORT_PUSH" "$URL" --key "$KEY" --spool "$SP" --records 0 >"$WORK/o4"
grep -q "^acked=40 pending=0 spooled=0 spool=0 .*error=0" "$WORK/o4" || fail "replay: $(cat "$WORK/o4")"
"$EXPORT_PUSH" "$URL" --key "$KEY" --spool "$SP" --records 0 >"$WORK/o5"
grep -q "^acked=0 pending=0 spooled=0 spool=0 .*error=0" "$WORK/o5" || fail "second flush: $(cat "$WORK/o5")"
q=$(api "/api/logs?logstore=spooled&limit=1000")
echo "$q" | json '[int(r["fields"]["seq"]) for r in sorted(d["records"], key=lambda r: r["id"])] == list(range(40))' \
  | grep -q True || fail "order or duplicates: $(echo "$q" | json '[r["fields"]["seq"] for r in d["records"]]')"
[ -z "$(ls "$SP"/*.seg 2>/dev/null)" ] || fail "segments left behind"

# 5. Several requests in flight, one batch refused for now: the flush
#    starts batches 0-3 at once; the store answers 503 to 1 at once, and
#    keeps doing so, so nothing new starts; it acks 0, 2 and 3 a little
#    later (they were in flight already); 1 and the unsent 4 are
#    spooled in that order, the acked ones are not. The replay then sends
#    exactly 1 and 4: every record arrives once.
P5=$PORT
stop_collector
cat >"$WORK/picky.py" <<'EOF'
import http.server, sys, time
port, accepted = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ids = [b"pk-%d" % i for i in range(5) if b"pk-%d" % i in body]
        refuse = ids == [b"pk-1"]
        if not refuse:
            time.sleep(0.3)  # the 503 to pk-1 comes back first
            with open(accepted, "a") as f:
                f.write(" ".join(i.decode() for i in ids) + "\n")
        self.send_response(503 if refuse else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer.allow_reuse_address = True
srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
print("ready", flush=True)
srv.serve_forever()
EOF
"$PYTHON" "$WORK/picky.py" "$P5" "$WORK/accepted" >"$WORK/picky.out" &
PICKY=$!
for _ in $(seq 100); do grep -q ready "$WORK/picky.out" 2>/dev/null && break; sleep 0.05; done
"$EXPORT_PUSH" "sls://127.0.0.1:$P5/proj/window" --key "$KEY" --spool "$WORK/sp5" \
  --records 50 --batch 10 --compress none --prefix pk --deadline-ms 1500 >"$WORK/o6" || true
kill $PICKY; wait $PICKY 2>/dev/null || true
grep -q "^acked=30 pending=0 spooled=20 spool=2 .*status=503" "$WORK/o6" || fail "window: $(cat "$WORK/o6")"
[ "$(sort "$WORK/accepted" | tr '\n' ' ')" = "pk-0 pk-2 pk-3 " ] || fail "accepted: $(cat "$WORK/accepted")"
start_collector "$WORK/db" --access-key "$KEY" --listen 127.0.0.1:$P5
"$EXPORT_PUSH" "sls://127.0.0.1:$P5/proj/window" --key "$KEY" --spool "$WORK/sp5" \
  --records 0 >"$WORK/o7"
grep -q "^acked=20 pending=0 spooled=0 spool=0 .*error=0" "$WORK/o7" || fail "window replay: $(cat "$WORK/o7")"
q=$(api "/api/logs?logstore=window&limit=1000")
want="$(seq 10 19 | tr '\n' ' ')$(seq 40 49 | tr '\n' ' ')"
got=$(echo "$q" | json '" ".join(r["fields"]["seq"] for r in sorted(d["records"], key=lambda r: r["id"])) + " "')
[ "$got" = "$want" ] || fail "window replay order or duplicates: $got"
echo "spool: ok"
