#!/usr/bin/env bash
# Hostile input: each malformed, oversized, forged or slow request gets a
# clear SLS-style error (or a closed connection), and the server stays up.
. "$TEST_SRC/lib.sh"
start_collector "$WORK/db" --access-key AKID:h0stile --max-body 2MiB \
  --max-raw 8MiB --timeout 2 --max-connections 20
"$PYTHON" "$TEST_SRC/hostile.py" "$PORT" AKID h0stile "${ZSTD:-zstd}"
kill -0 "$COLL_PID" || fail "collector died"
