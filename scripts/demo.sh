#!/usr/bin/env bash
# The README's main command: a function with a heap spike, run the way the
# platform runs it, ending with the report that names the culprit.
#
#   1. installs what is missing (scripts/install-deps.sh), builds what the
#      demo needs into build/demo (cmake, -j2);
#   2. starts fnprof-collector (the log store) on a free loopback port with
#      a temporary SQLite database;
#   3. runs the C example function through `fnprof local`: fnprof-sidecar in
#      front of it, libfnprof.so preloaded into it, /initialize, steady
#      invocations, one /spike, more steady ones, /pre-freeze + a real freeze
#      (SIGSTOP) + thaw, /pre-stop;
#   4. reads the spike report and the profiles back from the collector,
#      saves them under out/demo/, prints the report and the diff.
# Exits non-zero when the report does not name build_report_cache.
# Usage: scripts/demo.sh        (FNPROF_JOBS=N to change the build's -j2)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
B=$ROOT/build/demo
OUT=$ROOT/out/demo
CULPRIT=build_report_cache
KEY_ID=fnprof-demo
KEY_SECRET=fnprof-demo-secret

say() { printf '\n== %s ==\n' "$*"; }

bash scripts/install-deps.sh

say "building into build/demo"
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$B.cmake.log" 2>&1 || {
  tail -30 "$B.cmake.log"; exit 1; }
cmake --build "$B" -j"${FNPROF_JOBS:-2}" --target fnprof_cli fnprof \
  fnprof-sidecar fnprof-local fnprof-collector example_c_function \
  >"$B.build.log" 2>&1 || { tail -40 "$B.build.log"; exit 1; }
# The collector's web page (npm ci + esbuild at build time). Not needed for
# the report, so a failure only means the page is not offered at the end.
WEB_PAGE="the web page: timeline, logs, spike diff"
cmake --build "$B" --target fnprof_web >>"$B.build.log" 2>&1 ||
  WEB_PAGE="the web page was not built: see $B.build.log"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fnprof-demo.XXXXXX")
COLLECTOR_PID=
cleanup() {
  if [ -n "$COLLECTOR_PID" ] && kill -0 "$COLLECTOR_PID" 2>/dev/null; then
    kill "$COLLECTOR_PID" 2>/dev/null || true
    wait "$COLLECTOR_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$OUT"
mkdir -p "$OUT"

say "starting fnprof-collector"
"$B/collector/fnprof-collector" --listen 127.0.0.1:0 --db "$TMP/store.db" \
  --access-key "$KEY_ID:$KEY_SECRET" >"$TMP/collector.out" 2>"$OUT/collector.log" &
COLLECTOR_PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n '1s/.*:\([0-9][0-9]*\)$/\1/p' "$TMP/collector.out")
  [ -n "$PORT" ] && break
  kill -0 "$COLLECTOR_PID" 2>/dev/null || break
  sleep 0.05
done
[ -n "$PORT" ] || { cat "$OUT/collector.log"; echo "demo: collector did not start" >&2; exit 1; }
URL=http://127.0.0.1:$PORT
echo "collector: $URL (database $TMP/store.db)"

# The platform's side: 12 steady invocations (the spike detector wants a
# history of 10 heap cycles first), the spike, 4 more (the "after" profile
# is taken two cycles after the spike), then freeze/thaw and stop.
{ for _ in $(seq 12); do echo "invoke steady"; done
  echo "invoke spike"
  for _ in $(seq 4); do echo "invoke steady"; done; } >"$TMP/invocations.txt"
INSTANCE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

say "fnprof local: the C example under fnprof-sidecar and libfnprof.so"
FC_SERVER_HOST=127.0.0.1 FNPROF_ACCESS_KEY_ID=$KEY_ID \
  FNPROF_ACCESS_KEY_SECRET=$KEY_SECRET \
  timeout 120 "$B/tools/fnprof" local --port "$INSTANCE_PORT" \
  --sidecar-arg=--listen=127.0.0.1 \
  --sidecar-arg="--export=sls://127.0.0.1:$PORT/demo/function" \
  --sidecar-arg=--instance-id=demo-instance \
  --file "$TMP/invocations.txt" -- "$B/examples/example_c_function" \
  >"$OUT/local.log" 2>"$OUT/local.err" || {
  tail -20 "$OUT/local.err"; echo "demo: fnprof local failed" >&2; exit 1; }
grep -E '^(invoke|/initialize|/pre-freeze|/pre-stop|frozen|thawed|instance) ' \
  "$OUT/local.log" | sed 's/^/  /'

say "reading back from the collector"
python3 - "$URL" "$OUT" <<'EOF'
import json, sys, urllib.parse, urllib.request
url, out = sys.argv[1], sys.argv[2]
def get(path):
    with urllib.request.urlopen(url + path, timeout=10) as r:
        return r.read()
logs = json.loads(get("/api/logs?limit=10000&instance=demo-instance"))["records"]
spikes = [r["fields"] for r in logs if r["fields"].get("record") == "spike"]
invocations = [r for r in logs if r["fields"].get("record") == "invocation"]
with open(out + "/spike-report.json", "w") as f:
    json.dump([json.loads(s["report"]) for s in spikes], f, indent=2)
with open(out + "/spike-summary.txt", "w") as f:
    f.write("".join(s["summary"] + "\n" for s in spikes))
print("  %d records stored: %d invocation metrics, %d spike report(s)"
      % (len(logs), len(invocations), len(spikes)))
for p in json.loads(get("/api/profiles?limit=100"))["profiles"]:
    name = "%s/%s.pb.gz" % (out, p["kind"])
    with open(name, "wb") as f:
        f.write(get("/api/profiles/%d" % p["id"]))
    print("  profile %-12s %6d bytes -> %s" % (p["kind"], p["size"], name))
EOF

kill "$COLLECTOR_PID" && wait "$COLLECTOR_PID" 2>/dev/null || true
COLLECTOR_PID=
cp "$TMP"/store.db* "$OUT/" 2>/dev/null || true

say "the spike report"
if [ ! -s "$OUT/spike-summary.txt" ]; then
  echo "demo: no spike report was stored" >&2
  exit 1
fi
head -1 "$OUT/spike-summary.txt"

if [ -f "$OUT/spike-before.pb.gz" ] && [ -f "$OUT/spike-after.pb.gz" ]; then
  say "fnprof diff spike-before spike-after (what grew)"
  "$B/tools/fnprof" diff --symbolize -n 5 "$OUT/spike-before.pb.gz" \
    "$OUT/spike-after.pb.gz" | sed 's/^/  /' || true
fi

cat <<EOF

== where to look ==
  saved here:   out/demo/  (spike-before/after/diff, inuse at the freeze,
                final and alloc at the stop, spike-report.json, store.db)
  the store:    $B/collector/fnprof-collector --db out/demo/store.db --listen 127.0.0.1:8080
                then http://127.0.0.1:8080/ ($WEB_PAGE)
                     http://127.0.0.1:8080/api/logs?instance=demo-instance
                     http://127.0.0.1:8080/api/logs?q=heap%20spike
                     http://127.0.0.1:8080/api/profiles
  profiles:     $B/tools/fnprof top --symbolize out/demo/final.pb.gz
                $B/tools/fnprof diff --symbolize out/demo/spike-before.pb.gz out/demo/spike-after.pb.gz
                go tool pprof -top -diff_base out/demo/spike-before.pb.gz out/demo/spike-after.pb.gz
EOF

if ! head -1 "$OUT/spike-summary.txt" | grep -q "$CULPRIT"; then
  echo "demo: the spike report does not name $CULPRIT" >&2
  exit 1
fi
echo
echo "demo: the spike report names $CULPRIT"
