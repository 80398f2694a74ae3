#!/usr/bin/env bash
# pprof benchmark (not a test): fnprof vs go tool pprof on the same large
# profiles, interleaved rounds, median wall times and their ratio.
#   top:  fnprof top --symbolize  vs  go tool pprof -top
#         (decode + symbolize pass + per-function totals + table)
#   diff: fnprof diff             vs  go tool pprof -top -base
# The profiles are already symbolized, so --symbolize only checks that
# nothing is missing; go runs with -symbolize=none for the same reason.
#
# usage: bench/pprof/run.sh [BUILD_DIR] [ROUNDS] [N_SAMPLES] [N_LOCS]
# BUILD_DIR must hold a built tree (tools/fnprof and the static libraries).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "${1:-$ROOT/build}" && pwd)
ROUNDS=${2:-7}
N_SAMPLES=${3:-50000}
N_LOCS=${4:-5000}
FNPROF=$BUILD/tools/fnprof
[ -x "$FNPROF" ] || { echo "run.sh: no $FNPROF; build first" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/fnprof-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export GOCACHE=$WORK/gocache GOPATH=$WORK/gopath GOFLAGS=

# The generator links the build tree's static libraries directly: a
# benchmark helper needs no CMake target of its own.
cc -O2 -std=gnu11 -I"$ROOT/pprof/include" -I"$ROOT/common/include" \
  "$ROOT/bench/pprof/gen_profile.c" "$BUILD/pprof/libfnprof_pprof.a" \
  "$BUILD/common/libfnp_common.a" \
  $(pkg-config --libs libprotobuf-c zlib libdw) -lm -o "$WORK/gen_profile"
"$WORK/gen_profile" "$N_SAMPLES" "$N_LOCS" "$WORK/base.pb.gz"
"$WORK/gen_profile" --grown "$N_SAMPLES" "$N_LOCS" "$WORK/cur.pb.gz"
echo "profiles: $N_SAMPLES samples, $N_LOCS locations;" \
  "$(stat -c %s "$WORK/cur.pb.gz") bytes gzip'd; $ROUNDS rounds"

# Fast and wrong would be worthless: first check both tools agree on these
# files (total and top rows; top growth for the diff).
CMP=$ROOT/tests/integration/pprof/compare_top.js
go tool pprof -top -symbolize=none -unit=B -nodefraction=0 -sample_index=inuse_space \
  "$WORK/cur.pb.gz" >"$WORK/go.txt" 2>/dev/null
"$FNPROF" top --json -n 0 -t inuse_space "$WORK/cur.pb.gz" >"$WORK/fn.json"
node "$CMP" "$WORK/go.txt" "$WORK/fn.json" 10
go tool pprof -top -symbolize=none -unit=B -nodefraction=0 -sample_index=inuse_space \
  -base "$WORK/base.pb.gz" "$WORK/cur.pb.gz" >"$WORK/go.txt" 2>/dev/null
"$FNPROF" diff --json -n 0 -t inuse_space "$WORK/base.pb.gz" \
  "$WORK/cur.pb.gz" >"$WORK/fn.json"
node "$CMP" "$WORK/go.txt" "$WORK/fn.json" 0 diff

# ms CMD...: wall time of CMD in milliseconds; CMD must succeed.
ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>&1 || { echo "run.sh: failed: $*" >&2; exit 1; }
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {
  print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

GO_TOP=(go tool pprof -top -symbolize=none -sample_index=inuse_space)
declare -A T
for ((r = 1; r <= ROUNDS; r++)); do
  # Interleaved, so drift in machine load hits both tools alike.
  T[fn_top]+=" $(ms "$FNPROF" top --symbolize -t inuse_space "$WORK/cur.pb.gz")"
  T[go_top]+=" $(ms "${GO_TOP[@]}" "$WORK/cur.pb.gz")"
  T[fn_diff]+=" $(ms "$FNPROF" diff -t inuse_space "$WORK/base.pb.gz" "$WORK/cur.pb.gz")"
  T[go_diff]+=" $(ms "${GO_TOP[@]}" -base "$WORK/base.pb.gz" "$WORK/cur.pb.gz")"
done

report() {
  local name=$1 fn go
  fn=$(echo "${T[fn_$name]}" | median)
  go=$(echo "${T[go_$name]}" | median)
  awk -v n="$name" -v f="$fn" -v g="$go" 'BEGIN {
    printf "%-5s fnprof %7.1f ms   go tool pprof %7.1f ms   ratio %5.1fx\n",
      n, f, g, (f > 0 ? g / f : 0) }'
  echo "      rounds (ms): fnprof${T[fn_$name]} | go${T[go_$name]}"
}
report top
report diff
