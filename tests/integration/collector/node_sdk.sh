#!/usr/bin/env bash
# The official Node SDK pushes logs to fnprof-collector and they come back
# from /api/logs with fields, time, project, logstore, topic and tags; a
# wrong secret gets 401 SignatureNotMatch and stores nothing; an unknown
# AccessKeyId gets 401 Unauthorized.
. "$TEST_SRC/lib.sh"
export NODE_PATH=$NODE_DIR/node_modules
start_collector "$WORK/db" --access-key AKID:s3cr3t/KEY= --access-key other:x

out=$(node "$TEST_SRC/node_sdk.js" "$PORT" AKID 's3cr3t/KEY=' myproj fnlogs 3)
[ "$out" = ok ] || fail "SDK push: $out"
# Host 127.0.0.1:PORT names no project: stored under "default".
out=$(node "$TEST_SRC/node_sdk.js" "$PORT" AKID 's3cr3t/KEY=' '' fnlogs 1)
[ "$out" = ok ] || fail "SDK push without project: $out"

q=$(api "/api/logs?logstore=fnlogs&project=myproj")
[ "$(echo "$q" | json 'd["count"]')" = 3 ] || fail "count: $q"
echo "$q" | json 'd["records"][1]' | grep -q "'message': 'node says hi 1'" \
  || fail "fields: $q"
check=$(echo "$q" | json '(lambda r: (r["project"], r["logstore"], r["topic"],
  r["source"], r["tags"]["instance"], r["tags"]["function"], r["instance"],
  r["request_id"], r["time_ns"] % 1000000000))(d["records"][2])')
[ "$check" = "('myproj', 'fnlogs', 'node-topic', '10.1.2.3', 'node-inst', 'fn-node', 'node-inst', 'req-node-2', 1002)" ] \
  || fail "record shape: $check"
[ "$(api "/api/logs?request_id=req-node-1" | json 'd["count"]')" = 1 ] \
  || fail "by request_id"
[ "$(api "/api/logs?q=says%20hi%202&logstore=fnlogs" | json 'd["count"]')" = 1 ] \
  || fail "text match"
[ "$(api "/api/logs?project=default" | json 'd["count"]')" = 1 ] \
  || fail "default project"

# Wrong secret and unknown key: the SDK sees the SLS error, nothing stored.
out=$(node "$TEST_SRC/node_sdk.js" "$PORT" AKID wrong-secret myproj fnlogs 2)
[ "$out" = "err SignatureNotMatchError SignatureNotMatch" ] || fail "wrong secret: $out"
out=$(node "$TEST_SRC/node_sdk.js" "$PORT" NOPE 's3cr3t/KEY=' myproj fnlogs 2)
[ "$out" = "err UnauthorizedError Unauthorized" ] || fail "unknown key: $out"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST \
  -H 'Content-Type: application/x-protobuf' -H "Date: $(date -uR | sed 's/+0000/GMT/')" \
  -H 'x-log-apiversion: 0.6.0' -H 'x-log-signaturemethod: hmac-sha1' \
  -H 'x-log-bodyrawsize: 0' -H 'Authorization: LOG AKID:AAAAAAAAAAAAAAAAAAAAAAAAAAA=' \
  --data-binary '' \
  "http://127.0.0.1:$PORT/logstores/fnlogs/shards/lb")
[ "$code" = 401 ] || fail "bad signature status $code"
[ "$(api "/api/logs?logstore=fnlogs" | json 'd["count"]')" = 4 ] || fail "stored after 401"
# Secrets never reach the server's output.
! grep -q 's3cr3t' "$WORK/coll.out" "$WORK/coll.err" || fail "secret printed"
echo "node sdk: ok"
