# Shared helpers for the collector integration scripts (sourced).
set -euo pipefail
WORK=$(mktemp -d /tmp/fnp_coll.XXXXXX)
COLL_PID=
cleanup() {
  if [ -n "$COLL_PID" ]; then kill "$COLL_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$WORK/coll.err" ] && tail -5 "$WORK/coll.err" >&2; exit 1; }

# start_collector DB [args...]: sets PORT and COLL_PID.
start_collector() {
  local db=$1; shift
  "$COLLECTOR_BIN" --listen 127.0.0.1:0 --db "$db" "$@" \
    >"$WORK/coll.out" 2>>"$WORK/coll.err" &
  COLL_PID=$!
  for _ in $(seq 100); do
    if [ -s "$WORK/coll.out" ]; then break; fi
    sleep 0.05
  done
  local line; line=$(head -1 "$WORK/coll.out")
  [[ $line == "listening on 127.0.0.1:"* ]] || fail "no listening line: '$line'"
  PORT=${line##*:}
}
stop_collector() { kill "$COLL_PID"; wait "$COLL_PID" 2>/dev/null || true; COLL_PID=; }

api() { curl -sS --max-time 10 "http://127.0.0.1:$PORT$1"; }
# json EXPR < doc: evaluates a Python expression over the parsed JSON "d".
PYTHON=${PYTHON:-python3}
json() { "$PYTHON" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
