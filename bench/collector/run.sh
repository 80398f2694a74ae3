#!/usr/bin/env bash
# Runs the collector benchmarks from a build tree:
#   bench/collector/run.sh build-coll
# encode: one core, realistic log lines. store: the SQLite store alone.
# ingest: the export library into a fresh fnprof-collector per run (1.2M
# records: long enough to include WAL checkpoints, i.e. sustained), 1 and 2
# concurrent clients, default durability (synchronous=FULL) and NORMAL.
set -euo pipefail
b=${1:?build dir}
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null || true; fi; rm -rf "$work"' EXIT
taskset -c 0 "$b/bench/collector/bench_collector" encode 1000000 2>/dev/null ||
  "$b/bench/collector/bench_collector" encode 1000000
"$b/bench/collector/bench_collector" store "$work/store.db" 1228800
for sync in full normal; do
  for clients in 1 2; do
    extra=()
    if [ $sync = normal ]; then extra=(--sync normal); fi
    rm -f "$work"/db*
    "$b/collector/fnprof-collector" --listen 127.0.0.1:0 --db "$work/db" \
      --access-key BENCH:b3nch "${extra[@]}" >"$work/out" 2>/dev/null &
    pid=$!
    for _ in $(seq 100); do [ -s "$work/out" ] && break; sleep 0.05; done
    port=$(head -1 "$work/out" | sed 's/.*://')
    echo -n "sync=$sync "
    "$b/bench/collector/bench_collector" ingest \
      "sls://127.0.0.1:$port/bench/logs" 1228800 $clients
    kill $pid
    wait $pid 2>/dev/null || true
    pid=
  done
done
