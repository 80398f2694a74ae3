#!/usr/bin/env bash
# Standalone mode end to end, read by two independent decoders. A program
# under the agent with FNPROF_DIR writes its final profile at exit:
# - `go tool pprof` must accept it, see Go's heap sample types and period,
#   and name the program's call sites (by alloc_space: at exit it has freed
#   it all), with the same total and top functions as `fnprof top`;
# - the npm package pprof-format (a pure-JS decoder) must decode the same
#   file to the four heap sample types, the period, and the totals of all
#   four types and per-function values that `fnprof top --json` reports.
# A spike run's "after" profile, written while its heap is live, gets the
# same checks on inuse_space (the final profile's inuse is all zero).
#
# usage: pprof_check.sh LIBFNPROF PROGRAM FNPROF CACHE_DIR
set -euo pipefail
LIB=$1 PROG=$2 FNPROF=$3 CACHE=$4
PPROF_IT=$(cd "$(dirname "$0")/../pprof" && pwd)
# fail, scratch_dir, go_env, go_top, json, pprof_format_install
# shellcheck source=SCRIPTDIR/../pprof/lib.sh
. "$PPROF_IT/lib.sh"
scratch_dir
go_env "$CACHE"
pprof_format_install "$CACHE"
TYPES="alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes"

# preloaded NAME [VAR=VALUE...] MODE...: runs PROGRAM under the agent with
# its profiles written to $SCRATCH/NAME.
preloaded() {
  local out=$SCRATCH/$1
  shift
  mkdir "$out"
  env LD_PRELOAD="$LIB" FNPROF_DIR="$out" FNPROF_CONTROL=off "$@" >/dev/null ||
    fail "$PROG under the agent: $*"
}

# only GLOB: the one file GLOB names.
only() {
  if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    fail "want one profile, found: $*"
  fi
  echo "$1"
}

# decoders NAME FILE TYPE ROWS HEADER: pprof-format agrees with `fnprof top`
# on every total and every function's flat TYPE value (functions named by
# address: the agent writes bare addresses), and checks the HEADER fields
# (see check_pprof_format.js); symbolized, `fnprof top` agrees with
# `go tool pprof -top` on the TYPE total and its first ROWS functions.
# Their outputs are left in $SCRATCH/NAME.{json,sym.json,go}.
decoders() {
  local base=$SCRATCH/$1 f=$2 t=$3 rows=$4 header=$5
  "$FNPROF" top --json -n 0 -t "$t" "$f" >"$base.json" || fail "fnprof top $t $f"
  NODE_PATH=$NPM_DIR/node_modules node "$PPROF_IT/check_pprof_format.js" \
    "$f" "$base.json" "$header" || fail "pprof-format disagrees ($t, $f)"
  "$FNPROF" top --json --symbolize -n 0 -t "$t" "$f" >"$base.sym.json" ||
    fail "fnprof top --symbolize $t $f"
  [ "$(json "$base.json" 'j.totals')" = "$(json "$base.sym.json" 'j.totals')" ] ||
    fail "fnprof top's totals change with --symbolize ($f)"
  go_top "$f" "$t" -symbolize=local >"$base.go" 2>&1 ||
    { cat "$base.go" >&2; fail "go tool pprof -top $t $f"; }
  node "$PPROF_IT/compare_top.js" "$base.go" "$base.sym.json" "$rows"
}

preloaded final FNPROF_RATE=16384 "$PROG" accuracy-inuse
f=$(only "$SCRATCH"/final/fnprof-*-final.pb.gz)
go tool pprof -raw "$f" >"$SCRATCH/raw.txt" 2>&1 ||
  { cat "$SCRATCH/raw.txt" >&2; fail "go tool pprof -raw rejects $f"; }
for want in "PeriodType: space bytes" "Period: 16384" "bytes:[" "$TYPES"; do
  grep -qF -- "$want" "$SCRATCH/raw.txt" || fail "go -raw lacks '$want'"
done
# The three call sites, well apart by design, lead alloc_space.
decoders final "$f" alloc_space 3 "{\"types\": \"$TYPES\", \"period\": 16384,
  \"comment\": \"rate 16384\", \"mainFile\": \"$(basename "$PROG")\",
  \"bytesLabel\": true}"
for site in site_a site_b site_c; do
  grep -q " $site\$" "$SCRATCH/final.go" ||
    fail "go tool pprof -top does not name $site"
done
echo "ok: $f"

# A spike's after profile holds the live heap: site_b's baseline and
# spike_fn's growth lead inuse_space (the agent writes it at its default rate).
preloaded spike FNPROF_CYCLE_PERCENT=0 "$PROG" spike
f=$(only "$SCRATCH"/spike/fnprof-*-spike-after.pb.gz)
decoders spike "$f" inuse_space 2 "{\"types\": \"$TYPES\", \"period\": 524288,
  \"comment\": \"rate 524288\", \"mainFile\": \"$(basename "$PROG")\"}"
[ "$(json "$SCRATCH/spike.json" 'j.total')" -gt 0 ] ||
  fail "the spike's after profile holds no inuse_space"
grep -q " spike_fn\$" "$SCRATCH/spike.go" ||
  fail "go tool pprof -top does not name spike_fn"
echo "ok: $f"
