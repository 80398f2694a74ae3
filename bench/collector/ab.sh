#!/usr/bin/env bash
# Interleaved before/after comparison of the store and of end-to-end ingest:
#   bench/collector/ab.sh DIR_A DIR_B [ROUNDS] [RECORDS]
# Each DIR holds a bench_collector and a fnprof-collector (e.g. copies from
# two build trees). Rounds alternate A and B so load from other work on
# the machine hits both alike; compare within a round. Per run it prints
# wall-clock records/s and the CPU seconds the store (store mode) or the
# server (ingest mode) spent, which moves far less with the machine's load.
# Ingest runs use DIR_B's bench_collector as the client against both
# servers (the client is not what is compared; it takes the batch size).
# Besides batches of 2048, 4 clients push batches of 64 (the sidecar's
# /pre-freeze sends several small batches at once).
set -euo pipefail
a=${1:?dir A}
b=${2:?dir B}
rounds=${3:-3}
records=${4:-409600}
work=$(mktemp -d)
pid=
trap 'if [ -n "$pid" ]; then kill $pid 2>/dev/null || true; fi; rm -rf "$work"' EXIT

ingest() { # DIR SYNC CLIENTS [BATCH]
  local extra=()
  if [ "$2" = normal ]; then extra=(--sync normal); fi
  rm -f "$work"/db*
  "$1/fnprof-collector" --listen 127.0.0.1:0 --db "$work/db" \
    --access-key BENCH:b3nch "${extra[@]}" >"$work/out" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do [ -s "$work/out" ] && break; sleep 0.05; done
  local port r cpu
  port=$(head -1 "$work/out" | sed 's/.*://')
  r=$("$b/bench_collector" ingest "sls://127.0.0.1:$port/bench/logs" \
    "$records" "$3" "${4:-2048}" | sed 's/.*= \([0-9]*\) records\/s.*/\1/')
  # utime + stime of the server, in clock ticks (USER_HZ 100).
  cpu=$(awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$pid/stat")
  kill $pid
  wait $pid 2>/dev/null || true
  pid=
  echo "ingest sync=$2 clients=$3 batch=${4:-2048} records/s=$r server_cpu_s=$cpu"
}

for round in $(seq "$rounds"); do
  for dir in "$a" "$b"; do
    rm -f "$work"/s.db*
    t=$( { /usr/bin/time -f '%U %S' "$dir/bench_collector" store \
      "$work/s.db" "$records" >"$work/store.out"; } 2>&1 | tail -1)
    echo "round=$round dir=$dir store records/s=$(sed \
      's/.*= \([0-9]*\) records\/s.*/\1/' "$work/store.out") cpu_s=$(echo "$t" |
      awk '{printf "%.2f", $1 + $2}')"
    for sync in full normal; do
      for clients in 1 2; do
        echo "round=$round dir=$dir $(ingest "$dir" $sync $clients)"
      done
    done
    echo "round=$round dir=$dir $(ingest "$dir" full 4 64)"
  done
done
