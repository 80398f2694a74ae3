#!/usr/bin/env bash
# The export library's requests, accepted by fnprof-collector, and the same
# bytes read by independent decoders: protoc --decode_raw for the LogGroup,
# the official OTLP definitions (protobufjs) for OTLP. Also: every SLS
# compression, dedupe of a re-sent batch id, profile upload and download.
. "$TEST_SRC/lib.sh"
export NODE_PATH=$NODE_DIR/node_modules
KEY=AKID:exp0rt-secret
start_collector "$WORK/db" --access-key "$KEY"
URL="sls://127.0.0.1:$PORT/proj-e/store-e"

for c in zstd deflate lz4 none; do
  "$EXPORT_PUSH" "$URL" --key "$KEY" --compress $c --records 25 --batch 10 \
    --dump "$WORK/lg.$c" >"$WORK/push.$c" || fail "push $c: $(cat "$WORK/push.$c")"
  grep -q "^acked=25 pending=0 spooled=0 spool=0 rejected=0 dropped=0 status=200 error=0" \
    "$WORK/push.$c" || fail "flush $c: $(cat "$WORK/push.$c")"
done
q=$(api "/api/logs?logstore=store-e&project=proj-e&limit=1000")
[ "$(echo "$q" | json 'd["count"]')" = 100 ] || fail "stored: $(echo "$q" | head -c 300)"
echo "$q" | json '[r["fields"]["seq"] for r in d["records"][:25]] == [str(i) for i in range(25)]' \
  | grep -q True || fail "order"
echo "$q" | json 'd["records"][0]["tags"]' | grep -q "'__pack_id__'" || fail "pack id tag"

# Independent decoder: protoc reads our LogGroup without our schema.
"$PROTOC" --decode_raw <"$WORK/lg.zstd" >"$WORK/lg.txt"
grep -q '2: "GET /api/items/3 200 in 3 ms"' "$WORK/lg.txt" || fail "decode_raw message"
grep -q '1: "seq"' "$WORK/lg.txt" || fail "decode_raw key"
grep -q '3: "fnprof"' "$WORK/lg.txt" || fail "decode_raw topic"
[ "$(grep -c '^1 {' "$WORK/lg.txt")" = 10 ] || fail "decode_raw: 10 logs"

# A re-sent batch (same batch ids) is acknowledged and not stored twice.
"$EXPORT_PUSH" "$URL" --key "$KEY" --records 10 --batch 5 --prefix FIXED >"$WORK/d1"
"$EXPORT_PUSH" "$URL" --key "$KEY" --records 10 --batch 5 --prefix FIXED >"$WORK/d2"
grep -q "^acked=10 " "$WORK/d2" || fail "duplicate not acked: $(cat "$WORK/d2")"
[ "$(api "/api/logs?logstore=store-e&limit=1000" | json 'd["count"]')" = 110 ] \
  || fail "duplicate stored"
[ "$(api "/api/stats" | json 'd["duplicates"]')" = 2 ] || fail "dup count"

# OTLP logs and metrics: accepted, stored, and readable by the official defs.
OURL="otlp+http://127.0.0.1:$PORT"
"$EXPORT_PUSH" "$OURL" --key "$KEY" --records 7 --batch 7 --dump "$WORK/ol.pb" \
  | grep -q "^acked=7 .*error=0" || fail "otlp logs push"
"$EXPORT_PUSH" "$OURL" --key "$KEY" --records 4 --batch 4 --metrics \
  --dump "$WORK/om.pb" | grep -q "^acked=4 .*error=0" || fail "otlp metrics push"
[ "$(api "/api/logs?logstore=logs&project=otlp" | json 'd["count"]')" = 7 ] || fail "otlp logs stored"
m=$(api "/api/metrics?name=heap_live_bytes")
[ "$(echo "$m" | json '[float(p["value"]) for p in d["points"]]')" = "[0.0, 1024.0, 2048.0, 3072.0]" ] \
  || fail "metrics: $m"
node "$TEST_SRC/otlp_decode.js" logs "$WORK/ol.pb" >"$WORK/ol.json"
json 'd["resourceLogs"][0]["scopeLogs"][0]["logRecords"][2]["body"]["stringValue"]' \
  <"$WORK/ol.json" | grep -qx "GET /api/items/2 200 in 2 ms" || fail "otlp body: $(cat "$WORK/ol.json" | head -c 400)"
json '[a for a in d["resourceLogs"][0]["resource"]["attributes"] if a["key"]=="fnprof.batch.id"][0]["value"]["stringValue"]' \
  <"$WORK/ol.json" | grep -qx "DUMP-0" || fail "otlp batch id"
json 'd["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["severityNumber"]' \
  <"$WORK/ol.json" | grep -qx 9 || fail "otlp severity"
node "$TEST_SRC/otlp_decode.js" metrics "$WORK/om.pb" >"$WORK/om.json"
json '[m["gauge"]["dataPoints"][0]["asDouble"] for m in d["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]]' \
  <"$WORK/om.json" | grep -qx "\[0, 1024, 2048, 3072\]" || fail "otlp metrics: $(head -c 400 "$WORK/om.json")"
json 'd["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][1]["unit"]' <"$WORK/om.json" \
  | grep -qx By || fail "otlp unit"

# Profiles: signed upload, list, byte-exact download.
printf '\x1f\x8b\x08\x00fake-gzip-profile-bytes' >"$WORK/heap.pb.gz"
"$EXPORT_PUSH" "$URL" --key "$KEY" --records 0 --profile "$WORK/heap.pb.gz" \
  | grep -q "^acked=1 .*error=0" || fail "profile push"
id=$(api "/api/profiles?instance=inst-7&kind=heap" | json 'd["profiles"][0]["id"]')
api "/api/profiles/$id" >"$WORK/dl"
cmp -s "$WORK/dl" "$WORK/heap.pb.gz" || fail "profile bytes differ"
echo "export: ok"
