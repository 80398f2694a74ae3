#!/usr/bin/env bash
# Profiles written by Go itself: build tests/fixtures/go/heapwriter, let it
# write two runtime/pprof heap profiles, and check that fnprof reads them
# with the totals and top functions `go tool pprof -top` prints, that
# `fnprof diff` names the same top growth as `go tool pprof -top -base`,
# and that a `go tool pprof -proto` re-encoding reads back the same.
#
# usage: go_roundtrip.sh FNPROF HEAPWRITER_DIR CACHE_DIR
set -euo pipefail
FNPROF=$1 SRC=$2 CACHE=$3
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
scratch_dir
go_env "$CACHE"
TYPES="alloc_objects alloc_space inuse_objects inuse_space"
ROWS=4 # allocLarge/Medium/Small/Transient/Growth have distinct values

go build -o "$SCRATCH/heapwriter" "$SRC/main.go" || fail "go build heapwriter"
"$SCRATCH/heapwriter" "$SCRATCH/before.pb.gz" "$SCRATCH/after.pb.gz" ||
  fail "heapwriter did not write its profiles"

# compare_top FILE TYPE: fnprof top vs go tool pprof -top on one type.
compare_top() {
  local file=$1 type=$2 base
  base=$SCRATCH/$(basename "$file" .pb.gz).$type
  go_top "$file" "$type" >"$base.go" || fail "go tool pprof -top $file"
  "$FNPROF" top --json -n 0 --sample-type "$type" "$file" >"$base.json" ||
    fail "fnprof top $file $type"
  node "$HERE/compare_top.js" "$base.go" "$base.json" "$ROWS"
}

for f in before after; do
  for t in $TYPES; do
    compare_top "$SCRATCH/$f.pb.gz" "$t"
  done
done

# The fixture's known shape, so a broken fixture cannot pass vacuously.
top=$(json <("$FNPROF" top --json -t inuse_space "$SCRATCH/after.pb.gz") \
  'j.entries[0].name')
[ "$top" = main.allocGrowth ] || fail "after: top inuse_space is $top"

# Diff: the same top growth as go tool pprof -top -base, per type.
for t in inuse_space alloc_space inuse_objects; do
  go_top "$SCRATCH/after.pb.gz" "$t" -base "$SCRATCH/before.pb.gz" \
    >"$SCRATCH/diff.$t.go" || fail "go tool pprof -base ($t)"
  "$FNPROF" diff --json -n 0 -t "$t" "$SCRATCH/before.pb.gz" \
    "$SCRATCH/after.pb.gz" >"$SCRATCH/diff.$t.json" || fail "fnprof diff $t"
  node "$HERE/compare_top.js" "$SCRATCH/diff.$t.go" "$SCRATCH/diff.$t.json" \
    0 diff
done
grew=$(json "$SCRATCH/diff.inuse_space.json" 'j.grew[0].name')
shrank=$(json "$SCRATCH/diff.inuse_space.json" 'j.shrank[0].name')
[ "$grew" = main.allocGrowth ] || fail "diff: top growth is $grew"
[ "$shrank" = main.allocMedium ] || fail "diff: top shrinkage is $shrank"

# go tool pprof's own re-encoding must read back with the same totals.
go tool pprof -proto -symbolize=none -output="$SCRATCH/re.pb.gz" \
  "$SCRATCH/after.pb.gz" 2>/dev/null || fail "go tool pprof -proto"
want=$(json <("$FNPROF" top --json "$SCRATCH/after.pb.gz") 'j.totals')
got=$(json <("$FNPROF" top --json "$SCRATCH/re.pb.gz") 'j.totals')
[ "$want" = "$got" ] || fail "re-encoded totals $got != original $want"
echo "ok go -proto re-encoding: totals $got"
echo "PASS go_roundtrip"
