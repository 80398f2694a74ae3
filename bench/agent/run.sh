#!/bin/sh
# Benchmark (A) of issue 3 and the agent's own costs. Runs each
# configuration interleaved over ROUNDS rounds and prints medians.
# Usage: bench/agent/run.sh BUILD_DIR [ROUNDS]   (BUILD_DIR has the agent)
set -eu
build=${1:?build dir}
rounds=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
agent=$(cd "$build" && pwd)/agent/libfnprof.so
bin=$(mktemp -d)/alloc_bench
trap 'rm -rf "$(dirname "$bin")"' EXIT
cc -O2 -pthread "$here/alloc_bench.c" -o "$bin"
ops=${OPS:-2000000}
je=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
tc=/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# run NAME ENV... -- ARGS: one measurement, appended to $tmp/NAME
tmp=$(mktemp -d)
run() {
  name=$1; shift
  envs=""
  while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
  shift
  env $envs FNPROF_CONTROL=off "$bin" "$@" >> "$tmp/$name"
}

for t in 1 2; do
  for r in $(seq "$rounds"); do
    run "glibc-$t" X=1 -- a "$t" "$ops"
    run "fnprof-$t" LD_PRELOAD="$agent" -- a "$t" "$ops"
    [ -e "$tc" ] && run "tcmalloc-$t" LD_PRELOAD="$tc" -- a "$t" "$ops"
    [ -e "$tc" ] && run "tcmalloc-prof-$t" LD_PRELOAD="$tc" \
      TCMALLOC_SAMPLE_PARAMETER=524288 -- a "$t" "$ops"
    [ -e "$je" ] && run "jemalloc-$t" LD_PRELOAD="$je" -- a "$t" "$ops"
    [ -e "$je" ] && run "jemalloc-prof-$t" LD_PRELOAD="$je" \
      MALLOC_CONF=prof:true,lg_prof_sample:19 -- a "$t" "$ops"
  done
done
# Direct costs: a malloc(64)+free pair with the agent off (pure
# interposition: countdown + range check), and at FNPROF_RATE=1 (every
# allocation sampled: unwind, bucket, owned block, and its free).
for r in $(seq "$rounds"); do
  run pair-glibc X=1 -- pair 5000000 64
  run pair-off LD_PRELOAD="$agent" FNPROF_RATE=0 -- pair 5000000 64
  run pair-default LD_PRELOAD="$agent" -- pair 5000000 64
  run pair-rate1 LD_PRELOAD="$agent" FNPROF_RATE=1 -- pair 500000 64
done

printf '%-22s %10s %8s\n' config "ns/op" "x glibc"
for t in 1 2; do
  base=$(median < "$tmp/glibc-$t")
  for c in glibc fnprof tcmalloc tcmalloc-prof jemalloc jemalloc-prof; do
    [ -e "$tmp/$c-$t" ] || continue
    m=$(median < "$tmp/$c-$t")
    printf '%-22s %10.2f %8.3f\n' "(A) $c ${t}T" "$m" \
      "$(echo "$m $base" | awk '{print $1/$2}')"
  done
done
g=$(median < "$tmp/pair-glibc")
off=$(median < "$tmp/pair-off")
one=$(median < "$tmp/pair-rate1")
printf '%-22s %10.2f\n' "pair glibc" "$g"
printf '%-22s %10.2f\n' "pair agent off" "$off"
printf '%-22s %10.2f\n' "pair agent default" "$(median < "$tmp/pair-default")"
printf '%-22s %10.2f\n' "pair agent rate=1" "$one"
printf 'interposition (fast path malloc+free): %.2f ns per pair\n' \
  "$(echo "$off $g" | awk '{print $1-$2}')"
printf 'per sample (stack, bucket, owned block + its free): %.0f ns\n' \
  "$(echo "$one $g" | awk '{print $1-$2}')"
rm -rf "$tmp"
