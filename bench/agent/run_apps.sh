#!/bin/sh
# Benchmarks (B) and (C) of issue 3: redis-server under a bounded
# redis-benchmark (requests per second, higher is better) and a python3
# allocation-heavy script (seconds, lower is better), each without the
# agent and with it (and for redis, whose Debian build links jemalloc,
# with jemalloc's own profiling), interleaved over ROUNDS rounds; prints
# medians and ratios (the cost factor: > 1 means slower).
# Usage: bench/agent/run_apps.sh BUILD_DIR [ROUNDS]
set -eu
build=${1:?build dir}
rounds=${2:-5}
agent=$(cd "$build" && pwd)/agent/libfnprof.so
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

redis_rps() { # ENV...: one bounded run, prints SET+GET requests per second
  sock=$tmp/r.sock
  env "$@" FNPROF_CONTROL=off redis-server --port 0 --unixsocket "$sock" \
    --save "" --appendonly no > "$tmp/redis.log" 2>&1 &
  pid=$!
  for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
  redis-benchmark -s "$sock" -q -n 100000 -r 50000 -d 256 -t set,get \
    --csv 2> /dev/null | tr -d '"' |
    awk -F, '$1 == "SET" || $1 == "GET" {s += $2} END {print s / 2}'
  redis-cli -s "$sock" shutdown nosave > /dev/null 2>&1 || true
  wait "$pid" 2> /dev/null || true
}

cat > "$tmp/alloc.py" << 'PY'
import time
t = time.perf_counter()
keep = []
for r in range(20):
    d = {i: ("x" * (i % 300), [i] * (i % 20)) for i in range(30000)}
    keep.append(list(d.values())[::50])
print(time.perf_counter() - t)
PY

if command -v redis-server > /dev/null; then
  for r in $(seq "$rounds"); do
    redis_rps X=1 >> "$tmp/redis-plain"
    redis_rps LD_PRELOAD="$agent" >> "$tmp/redis-fnprof"
    redis_rps MALLOC_CONF=prof:true,lg_prof_sample:19 >> "$tmp/redis-jeprof"
  done
  base=$(median < "$tmp/redis-plain")
  for c in plain fnprof jeprof; do
    m=$(median < "$tmp/redis-$c")
    printf '(B) redis %-8s %12.0f req/s  cost x%.3f\n' "$c" "$m" \
      "$(echo "$base $m" | awk '{print $1/$2}')"
  done
fi
for r in $(seq "$rounds"); do
  python3 "$tmp/alloc.py" >> "$tmp/py-plain"
  LD_PRELOAD="$agent" FNPROF_CONTROL=off python3 "$tmp/alloc.py" >> "$tmp/py-fnprof"
done
base=$(median < "$tmp/py-plain")
for c in plain fnprof; do
  m=$(median < "$tmp/py-$c")
  printf '(C) python3 %-6s %10.3f s      cost x%.3f\n' "$c" "$m" \
    "$(echo "$m $base" | awk '{print $1/$2}')"
done
