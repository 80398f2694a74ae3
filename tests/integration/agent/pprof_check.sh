#!/bin/sh
# Standalone mode end to end: a program under the agent with FNPROF_DIR
# writes its final profile at exit; `go tool pprof` (an independent reader)
# must accept it, see Go's heap sample types and period, and name the
# program's call sites (by alloc_space: at exit it has freed it all).
# Usage: pprof_check.sh LIBFNPROF PROGRAM
set -eu
lib=$1
prog=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
LD_PRELOAD="$lib" FNPROF_DIR="$dir" FNPROF_RATE=16384 FNPROF_CONTROL=off \
  "$prog" accuracy-inuse > /dev/null
f=$(ls "$dir"/fnprof-*-final.pb.gz)
test "$(echo "$f" | wc -l)" -eq 1
go tool pprof -raw "$f" > "$dir/raw.txt"
grep -q '^PeriodType: space bytes' "$dir/raw.txt"
grep -q '^Period: 16384' "$dir/raw.txt"
grep -q 'alloc_objects/count alloc_space/bytes inuse_objects/count inuse_space/bytes' \
  "$dir/raw.txt"
grep -q 'bytes:\[' "$dir/raw.txt"
go tool pprof -top -sample_index=alloc_space "$f" > "$dir/top.txt"
for site in site_a site_b site_c; do
  grep -q " $site\$" "$dir/top.txt"
done
echo "ok: $f"
