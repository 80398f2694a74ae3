#!/usr/bin/env bash
# Profiles written by this library: write_sample_profile builds one through
# the public API; go tool pprof (-raw, -top) and the npm package
# pprof-format must read it with the totals and top functions fnprof reports,
# and a `go tool pprof -proto` re-encoding must read back the same.
#
# usage: fmt_roundtrip.sh FNPROF WRITE_SAMPLE_PROFILE CACHE_DIR
set -euo pipefail
FNPROF=$1 WRITER=$2 CACHE=$3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
scratch_dir
go_env "$CACHE"
P=$SCRATCH/sample.pb.gz
"$WRITER" "$P" || fail "write_sample_profile"

# -raw decodes every message; it must succeed and show what we wrote.
go tool pprof -raw -symbolize=none "$P" >"$SCRATCH/raw.txt" 2>&1 ||
  { cat "$SCRATCH/raw.txt" >&2; fail "go tool pprof -raw rejects our profile"; }
for want in "alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes" \
  "PeriodType: space bytes" "Period: 524288" "thread:[worker]" \
  "6c1f1e2d3c4b5a69788796a5b4c3d2e1f0011223" "größe_berechnen"; do
  grep -qF -- "$want" "$SCRATCH/raw.txt" || fail "go -raw lacks '$want'"
done
echo "ok go tool pprof -raw accepts the profile"

# Totals and every row, all four types (names include C++ templates, quotes,
# backslashes and UTF-8).
for t in alloc_objects alloc_space inuse_objects inuse_space; do
  go_top "$P" "$t" >"$SCRATCH/$t.go" 2>&1 || fail "go tool pprof -top ($t)"
  "$FNPROF" top --json -n 0 -t "$t" "$P" >"$SCRATCH/$t.json" ||
    fail "fnprof top $t"
  node "$HERE/compare_top.js" "$SCRATCH/$t.go" "$SCRATCH/$t.json" 100
done

# pprof-format, installed into the build tree on first use. A failed install
# fails the test: the check must not silently stop running.
pprof_format_install "$CACHE"
for t in inuse_space alloc_objects; do
  NODE_PATH=$NPM_DIR/node_modules node "$HERE/check_pprof_format.js" "$P" \
    "$SCRATCH/$t.json" || fail "pprof-format disagrees ($t)"
done

# go tool pprof's normalized re-encoding reads back with the same numbers.
go tool pprof -proto -symbolize=none -output="$SCRATCH/re.pb.gz" "$P" \
  2>/dev/null || fail "go tool pprof -proto"
"$FNPROF" top --json -n 0 -t inuse_space "$SCRATCH/re.pb.gz" \
  >"$SCRATCH/re.json" || fail "fnprof top on go's re-encoding"
want=$(json "$SCRATCH/inuse_space.json" 'JSON.stringify([j.totals, j.entries])')
got=$(json "$SCRATCH/re.json" 'JSON.stringify([j.totals, j.entries])')
[ "$want" = "$got" ] || fail "re-encoded profile reads differently:
  want $want
  got  $got"
echo "ok go -proto re-encoding reads back identically"
echo "PASS fmt_roundtrip"
