#!/usr/bin/env bash
# fnprof-collector killed with -9 in the middle of ingest and restarted:
# every record it acknowledged (a 200 to the exporter) is in the store.
. "$TEST_SRC/lib.sh"
KEY=AKID:cr4sh
start_collector "$WORK/db" --access-key "$KEY"
P=$PORT
"$EXPORT_PUSH" "sls://127.0.0.1:$P/proj/crash" --key "$KEY" --flush-each \
  --records 100000 --batch 50 --deadline-ms 300 >"$WORK/push.out" 2>&1 &
PUSH=$!
# Let a few dozen batches land, then kill the store without warning.
for _ in $(seq 200); do
  [ "$(grep -c acked_total "$WORK/push.out" || true)" -ge 40 ] && break
  sleep 0.05
done
kill -9 "$COLL_PID"
wait "$COLL_PID" 2>/dev/null || true
COLL_PID=
# A few failed flushes after the kill (waited for, not slept: a loaded
# machine may not run the exporter within a fixed half second).
for _ in $(seq 100); do
  grep -q "error=-111\|error=-110\|Connection refused\|Couldn't connect" \
    "$WORK/push.out" && break
  sleep 0.05
done
kill "$PUSH"; wait "$PUSH" 2>/dev/null || true
acked=$(grep -o 'acked_total [0-9]*' "$WORK/push.out" | tail -1 | cut -d' ' -f2)
[ -n "$acked" ] && [ "$acked" -ge 1000 ] || fail "too few acked before kill: '$acked'"
grep -q "error=-111\|error=-110\|Connection refused\|Couldn't connect" "$WORK/push.out" \
  || fail "the kill was not seen by the exporter"

start_collector "$WORK/db" --access-key "$KEY"
q=$(api "/api/logs?logstore=crash&limit=10000")
missing=$(echo "$q" | json "sorted(set(range($acked)) - {int(r['fields']['seq']) for r in d['records']})[:5]")
[ "$missing" = "[]" ] || fail "acknowledged records lost after kill -9: $missing (acked $acked)"
echo "crash: $acked acknowledged records all present"
