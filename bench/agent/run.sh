#!/bin/sh
# Benchmark (A) of issue 3 and the agent's own costs. Runs each
# configuration over ROUNDS rounds, the order rotated each round, and prints
# medians and the median of each round's ratio to that round's glibc run.
# Every configuration is read twice: wall ns per operation (as the program
# sees it) and CPU ns per operation (user + system of the whole process
# tree, bench/agent/cputime.c), each as a ratio to glibc. On a shared or
# loaded machine trust the CPU column; a lock that makes threads wait
# shows in wall time only.
# Peers (bench/agent/peers.sh installs them): plain jemalloc and jemalloc
# profiling at a 512 KiB mean, tcmalloc plain and sampling at 512 KiB,
# heaptrack (its wrapper script, as a user runs it: the program plus the
# interpreter and zstd beside it). heaptrack runs OPS/HT_DIV operations
# (default 4) to keep the bench short; the numbers are per operation, and
# its CPU column leaves out its fixed cost (~0.8 s CPU here: the wrapper,
# interpreter and compressor starting, symbolizing at exit), measured each
# round on a run of no operations, which would otherwise dominate. The
# wall column is the program's own timer around its threads, so it leaves
# out every configuration's start and exit.
# Usage: bench/agent/run.sh BUILD_DIR [ROUNDS]   (BUILD_DIR has the agent)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
. "$here/peers.sh"
bench_setup "$@"
bin=$tmp/alloc_bench
cc -O2 -pthread "$here/alloc_bench.c" -o "$bin"
cpu=$(build_cputime "$tmp")
ops=${OPS:-2000000}
ht_ops=$((ops / ${HT_DIV:-4}))
need libjemalloc2 "$je" || true
need libgoogle-perftools4 "$tc" || true
need heaptrack "$ht" || true

# run NAME UNITS ENV... -- CMD...: one measurement. Appends the program's
# printed ns/op to $tmp/NAME and the tree's CPU ns per unit to
# $tmp/NAME.cpu.
run() {
  name=$1 units=$2
  shift 2
  envs=""
  while [ "$1" != "--" ]; do envs="$envs $1"; shift; done
  shift
  rm -f "$tmp/cpu1"
  "$cpu" "$tmp/cpu1" env $envs FNPROF_CONTROL=off "$@" 2>> "$tmp/stderr" |
    { grep -E '^[0-9.]+$' || true; } >> "$tmp/$name"
  awk -v u="$units" '{printf "%.2f\n", $1 * 1e9 / u}' "$tmp/cpu1" >> "$tmp/$name.cpu"
  awk '{print $2}' "$tmp/cpu1" >> "$tmp/$name.rss"
  rm -f "$tmp"/ht.*
}

# one CONFIG THREADS: one run of a configuration (its peer missing: none).
one() {
  c=$1 t=$2 u=$(($2 * ops))
  case $c in
  glibc) run "glibc-$t" "$u" X=1 -- "$bin" a "$t" "$ops" ;;
  fnprof) run "fnprof-$t" "$u" LD_PRELOAD="$agent" -- "$bin" a "$t" "$ops" ;;
  tcmalloc) have "$tc" && run "tcmalloc-$t" "$u" LD_PRELOAD="$tc" -- \
    "$bin" a "$t" "$ops" ;;
  tcmalloc-prof) have "$tc" && run "tcmalloc-prof-$t" "$u" LD_PRELOAD="$tc" \
    TCMALLOC_SAMPLE_PARAMETER=$tc_sample -- "$bin" a "$t" "$ops" ;;
  jemalloc) have "$je" && run "jemalloc-$t" "$u" LD_PRELOAD="$je" -- \
    "$bin" a "$t" "$ops" ;;
  jemalloc-prof) have "$je" && run "jemalloc-prof-$t" "$u" LD_PRELOAD="$je" \
    MALLOC_CONF=$je_prof_conf -- "$bin" a "$t" "$ops" ;;
  heaptrack) have "$ht" && run "heaptrack-$t" $((t * ht_ops)) X=1 -- \
    "$ht" -o "$tmp/ht" "$bin" a "$t" "$ht_ops" &&
    run "heaptrack0-$t" $((t * ht_ops)) X=1 -- \
      "$ht" -o "$tmp/ht" "$bin" a "$t" 0 ;;
  esac
  true
}
configs="glibc fnprof tcmalloc tcmalloc-prof jemalloc jemalloc-prof heaptrack"
for t in 1 2; do
  for r in $(seq "$rounds"); do
    for c in $(rotate "$r" $configs); do one "$c" "$t"; done
  done
done
# Direct costs: a malloc(64)+free pair with the agent off (pure
# interposition: countdown + range check), and at FNPROF_RATE=1 (every
# allocation sampled: unwind, bucket, owned block, and its free).
for r in $(seq "$rounds"); do
  run pair-glibc 5000000 X=1 -- "$bin" pair 5000000 64
  run pair-off 5000000 LD_PRELOAD="$agent" FNPROF_RATE=0 -- "$bin" pair 5000000 64
  run pair-default 5000000 LD_PRELOAD="$agent" -- "$bin" pair 5000000 64
  run pair-rate1 500000 LD_PRELOAD="$agent" FNPROF_RATE=1 -- "$bin" pair 500000 64
done

echo "(A) $rounds rounds, configurations rotated each round; ns/op medians;"
echo "    ratios: median of each round's ratio to that round's glibc run"
printf '%-22s %10s %10s %10s\n' config "wall ns/op" "x glibc" "x glibc CPU"
for t in 1 2; do
  for c in $configs; do
    [ -s "$tmp/$c-$t" ] || continue
    if [ "$c" = heaptrack ]; then # its fixed cost (the no-op run) taken out
      paste "$tmp/heaptrack-$t.cpu" "$tmp/heaptrack0-$t.cpu" |
        awk '{print $1 - $2}' > "$tmp/ht-net.cpu"
      cr=$(paired "$tmp/ht-net.cpu" "$tmp/glibc-$t.cpu")
    else
      cr=$(paired "$tmp/$c-$t.cpu" "$tmp/glibc-$t.cpu")
    fi
    printf '%-22s %10.2f %10s %10s\n' "(A) $c ${t}T" \
      "$(median < "$tmp/$c-$t")" "$(paired "$tmp/$c-$t" "$tmp/glibc-$t")" "$cr"
  done
done
for t in 1 2; do
  g=$(median < "$tmp/glibc-$t.rss") f=$(median < "$tmp/fnprof-$t.rss")
  printf '(A) %sT peak RSS: glibc %.1f MiB, fnprof %.1f MiB (+%.1f MiB)\n' "$t" \
    "$(echo "$g" | awk '{print $1 / 1024}')" "$(echo "$f" | awk '{print $1 / 1024}')" \
    "$(echo "$f $g" | awk '{print ($1 - $2) / 1024}')"
done
printf '%-22s %10s %10s\n' "malloc(64)+free pair" "wall ns" "CPU ns"
for c in glibc off default rate1; do
  printf '%-22s %10.2f %10.2f\n' "pair $c" "$(median < "$tmp/pair-$c")" \
    "$(median < "$tmp/pair-$c.cpu")"
done
diff2() { echo "$1 $2" | awk '{printf "%.1f", $1-$2}'; }
printf 'interposition (fast path malloc+free): %s ns wall, %s ns CPU per pair\n' \
  "$(diff2 "$(median < "$tmp/pair-off")" "$(median < "$tmp/pair-glibc")")" \
  "$(diff2 "$(median < "$tmp/pair-off.cpu")" "$(median < "$tmp/pair-glibc.cpu")")"
printf 'per sample (stack, bucket, owned block + its free): %s ns wall, %s ns CPU\n' \
  "$(diff2 "$(median < "$tmp/pair-rate1")" "$(median < "$tmp/pair-glibc")")" \
  "$(diff2 "$(median < "$tmp/pair-rate1.cpu")" "$(median < "$tmp/pair-glibc.cpu")")"
