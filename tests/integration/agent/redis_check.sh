#!/bin/sh
# redis-server (Debian's, linked with jemalloc: under the agent the next
# malloc is jemalloc's) loaded by a bounded redis-benchmark. The agent must
# see redis' allocations and frees: the final profile's in-use total tracks
# redis' own used_memory. The agent records requested sizes and redis
# counts usable ones (jemalloc's size classes), so the profile reads a few
# percent lower; FNPROF_RATE=16384 gives ~1300 live samples (standard error
# under 3 %), so [0.80, 1.05] of used_memory is a wide margin for both.
# Fails without redis: scripts/install-deps.sh --test installs it.
# Usage: redis_check.sh LIBFNPROF
set -eu
lib=$1
if ! command -v redis-server > /dev/null || ! command -v redis-benchmark > /dev/null; then
  echo "redis-server/redis-benchmark not installed (scripts/install-deps.sh --test)" >&2
  exit 1
fi
dir=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2> /dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
sock=$dir/redis.sock
LD_PRELOAD="$lib" FNPROF_RATE=16384 FNPROF_DIR="$dir" FNPROF_CONTROL=off \
  redis-server --port 0 --unixsocket "$sock" --save "" --appendonly no \
  > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  [ -S "$sock" ] && break
  sleep 0.1
done
redis-benchmark -s "$sock" -n 50000 -r 20000 -d 1000 -t set > /dev/null 2>&1
used=$(redis-cli -s "$sock" info memory | tr -d '\r' |
  awk -F: '$1 == "used_memory" {print $2}')
redis-cli -s "$sock" shutdown nosave > /dev/null 2>&1 || true
wait "$pid" || true
pid=
f=$(ls "$dir"/fnprof-*-final.pb.gz)
inuse=$(go tool pprof -top -unit=B -sample_index=inuse_space "$f" 2>/dev/null |
  sed -n 's/.* of \([0-9]*\)B total.*/\1/p')
echo "redis used_memory $used, agent inuse_space $inuse"
awk -v a="$inuse" -v u="$used" 'BEGIN { r = a / u; printf "ratio %.3f\n", r;
  exit !(r >= 0.80 && r <= 1.05) }'
