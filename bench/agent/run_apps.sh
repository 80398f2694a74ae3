#!/bin/sh
# Benchmarks (B) and (C) of issue 3: redis-server under a bounded
# redis-benchmark and a python3 allocation-heavy script, each without the
# agent, with it, and with the peers, over ROUNDS rounds (order rotated);
# prints medians and cost factors (> 1 means slower) two ways:
#   wall: (B) requests per second, (C) the script's own timer;
#   CPU:  user + system seconds of the profiled process tree for the same
#         work (bench/agent/cputime.c), including a profiler's helper
#         processes (heaptrack's interpreter and zstd) and its start and
#         exit. On a shared or loaded machine trust the CPU column.
# (B): Debian's redis-server links jemalloc, so "plain" is jemalloc and
# fnprof sits above it; jemalloc's own profiling is MALLOC_CONF. tcmalloc
# is not preloaded into it (redis also calls jemalloc's mallctl, which
# would then describe a heap it does not serve).
# (C): python3 (Debian's /usr/bin/python3, or PYTHON) with glibc
# ("plain"), fnprof, jemalloc plain and profiling, tcmalloc sampling,
# heaptrack.
# Usage: bench/agent/run_apps.sh BUILD_DIR [ROUNDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/peers.sh"
bench_setup "$@"
cpu=$(build_cputime "$tmp")
need redis-server /usr/bin/redis-server || true
need redis-tools /usr/bin/redis-benchmark || true
need libjemalloc2 "$je" || true
need libgoogle-perftools4 "$tc" || true
need heaptrack "$ht" || true
# The interpreter itself: a python3 found first on PATH may be a wrapper
# (pyenv's shim is a bash script that runs more processes), which every
# preload would then be loaded into and measured with.
need python3 /usr/bin/python3 || true
python=${PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(python3 -c 'import sys; print(sys.executable)')
requests=${REQUESTS:-30000} # per test (SET, GET)

# redis NAME ENV... [-- PREFIX...]: one bounded run; appends SET+GET
# requests per second to $tmp/redis-NAME and CPU ns per request to
# $tmp/redis-NAME.cpu.
redis() {
  name=$1; shift
  envs=""
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs="$envs $1"; shift; done
  [ $# -gt 0 ] && shift
  sock=$tmp/r.sock
  rm -f "$tmp/cpu1" "$sock"
  "$cpu" "$tmp/cpu1" env $envs FNPROF_CONTROL=off "$@" redis-server \
    --port 0 --unixsocket "$sock" --save "" --appendonly no \
    > "$tmp/redis.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  redis-benchmark -s "$sock" -q -n $requests -r 50000 -d 256 -t set,get \
    --csv 2> /dev/null | tr -d '"' |
    awk -F, '$1 == "SET" || $1 == "GET" {s += $2} END {print s / 2}' \
    >> "$tmp/redis-$name"
  redis-cli -s "$sock" shutdown nosave > /dev/null 2>&1 || true
  wait "$pid" 2> /dev/null || true
  awk -v u=$((2 * requests)) '{printf "%.2f\n", $1 * 1e9 / u}' "$tmp/cpu1" \
    >> "$tmp/redis-$name.cpu"
  awk '{print $2}' "$tmp/cpu1" >> "$tmp/redis-$name.rss"
  rm -f "$tmp"/ht.*
}

cat > "$tmp/alloc.py" << 'PY'
import time
t = time.perf_counter()
keep = []
for r in range(16):
    d = {i: ("x" * (i % 300), [i] * (i % 20)) for i in range(30000)}
    keep.append(list(d.values())[::50])
print(time.perf_counter() - t)
PY

# py NAME ENV... [-- PREFIX...]: one run of the script.
py() {
  name=$1; shift
  envs=""
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs="$envs $1"; shift; done
  [ $# -gt 0 ] && shift
  rm -f "$tmp/cpu1"
  "$cpu" "$tmp/cpu1" env $envs FNPROF_CONTROL=off "$@" "$python" "$tmp/alloc.py" \
    2>> "$tmp/stderr" | { grep -E '^[0-9.]+$' || true; } >> "$tmp/py-$name"
  awk '{print $1}' "$tmp/cpu1" >> "$tmp/py-$name.cpu"
  awk '{print $2}' "$tmp/cpu1" >> "$tmp/py-$name.rss"
  rm -f "$tmp"/ht.*
}

# report PREFIX LABEL UNIT HIGHER_IS_BETTER BASE OTHERS...: medians, and
# the median of each round's cost relative to that round's BASE run.
report() {
  p=$1 label=$2 unit=$3 hib=$4 base=$5
  shift 4
  for c in "$@"; do
    [ -s "$tmp/$p-$c" ] || continue
    if [ "$hib" = 1 ]; then w=$(paired "$tmp/$p-$base" "$tmp/$p-$c")
    else w=$(paired "$tmp/$p-$c" "$tmp/$p-$base"); fi
    printf '%-26s %12.3f %-6s %8s %8s\n' "$label $c" \
      "$(median < "$tmp/$p-$c")" "$unit" "$w" \
      "$(paired "$tmp/$p-$c.cpu" "$tmp/$p-$base.cpu")"
  done
}

redis_configs="plain fnprof jemalloc-prof heaptrack"
py_configs="plain fnprof jemalloc jemalloc-prof tcmalloc-prof heaptrack"
if have /usr/bin/redis-server && have /usr/bin/redis-benchmark; then
  for r in $(seq "$rounds"); do
    for c in $(rotate "$r" $redis_configs); do
      case $c in
      plain) redis plain X=1 ;;
      fnprof) redis fnprof LD_PRELOAD="$agent" ;;
      jemalloc-prof) redis jemalloc-prof MALLOC_CONF=$je_prof_conf ;;
      heaptrack) have "$ht" && redis heaptrack X=1 -- "$ht" -o "$tmp/ht" ;;
      esac
    done
  done
fi
for r in $(seq "$rounds"); do
  for c in $(rotate "$r" $py_configs); do
    case $c in
    plain) py plain X=1 ;;
    fnprof) py fnprof LD_PRELOAD="$agent" ;;
    jemalloc) have "$je" && py jemalloc LD_PRELOAD="$je" ;;
    jemalloc-prof) have "$je" && py jemalloc-prof LD_PRELOAD="$je" \
      MALLOC_CONF=$je_prof_conf ;;
    tcmalloc-prof) have "$tc" && py tcmalloc-prof LD_PRELOAD="$tc" \
      TCMALLOC_SAMPLE_PARAMETER=$tc_sample ;;
    heaptrack) have "$ht" && py heaptrack X=1 -- "$ht" -o "$tmp/ht" ;;
    esac
  done
done

echo "(B) (C) $rounds rounds, configurations rotated each round; medians;"
echo "    cost: median of each round's time ratio to that round's plain run"
echo "    (> 1 is slower)"
printf '%-26s %12s %-6s %8s %8s\n' config median unit "cost" "cost CPU"
[ -s "$tmp/redis-plain" ] &&
  report redis "(B) redis" "req/s" 1 $redis_configs
report py "(C) python3" s 0 $py_configs
for p in redis py; do
  [ -s "$tmp/$p-plain.rss" ] && [ -s "$tmp/$p-fnprof.rss" ] || continue
  g=$(median < "$tmp/$p-plain.rss") f=$(median < "$tmp/$p-fnprof.rss")
  echo "$p $g $f" | awk '{printf "%s peak RSS: plain %.1f MiB, fnprof %.1f MiB (+%.1f MiB)\n",
    $1 == "py" ? "(C) python3" : "(B) redis", $2 / 1024, $3 / 1024, ($3 - $2) / 1024}'
done
