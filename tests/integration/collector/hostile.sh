#!/usr/bin/env bash
# Hostile input: each malformed, oversized, forged or slow request gets a
# clear SLS-style error (or a closed connection), and the server stays up.
. "$TEST_SRC/lib.sh"
start_collector "$WORK/db" --access-key AKID:h0stile --max-body 2MiB \
  --max-raw 8MiB --timeout 2 --max-connections 20
"$PYTHON" "$TEST_SRC/hostile.py" "$PORT" AKID h0stile "${ZSTD:-zstd}"
kill -0 "$COLL_PID" || fail "collector died"

# Loopback only unless asked: a public --listen is refused up front, and a
# bad option never echoes its value (it may be a secret).
set +e
out=$("$COLLECTOR_BIN" --listen 0.0.0.0:0 --db "$WORK/db2" 2>&1 </dev/null)
rc=$?
set -e
[ $rc = 2 ] && [[ $out == *"not a loopback address"*"--allow-remote"* ]] \
  || fail "non-loopback listen: rc=$rc $out"
set +e
out=$("$COLLECTOR_BIN" --db "$WORK/db2" --access-key 'noColonS3cret' 2>&1 </dev/null)
set -e
[[ $out == *"bad or incomplete option --access-key"* && $out != *S3cret* ]] \
  || fail "bad option message: $out"
echo "hostile: ok"
