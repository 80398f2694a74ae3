#!/usr/bin/env bash
# What each verb prints, on a profile whose numbers are known (see
# write_sample_profile.c): top's table and --cum, folded and flame output
# consistent with top's totals, --json that parses and escapes names, diff's
# lists and its --fail-over exit code, --help and --version.
#
# usage: cli_verbs.sh FNPROF WRITE_SAMPLE_PROFILE
set -euo pipefail
FNPROF=$1 WRITER=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
scratch_dir
cd "$SCRATCH"
"$WRITER" base.pb.gz && "$WRITER" --grown grown.pb.gz ||
  fail "write_sample_profile"

# Help and version go to stdout with status 0.
"$FNPROF" --help | grep -q '^  diff ' || fail "fnprof --help lacks diff"
"$FNPROF" --help | grep -q '3  diff only' || fail "--help lacks exit codes"
"$FNPROF" --version | grep -qE '^fnprof [0-9]+\.[0-9]+' || fail "--version"
for verb in top diff flame folded; do
  "$FNPROF" "$verb" --help | grep -q "^usage: fnprof $verb " ||
    fail "fnprof $verb --help"
  "$FNPROF" "$verb" --help | grep -q -- '--json' || fail "$verb --help: --json"
done
echo "ok help and version"

# top, text: inuse_space is the default (last type, as pprof picks it).
# alloc_buffer: 100 x 64 KiB + 8 MiB = 14.25 MiB in use.
"$FNPROF" top base.pb.gz >top.txt
grep -q '^Type: inuse_space$' top.txt || fail "top: default type"
grep -qE '^Showing nodes accounting for .* of 15\.91MB total$' top.txt ||
  fail "top: header: $(grep Showing top.txt)"
grep -qE '^ +flat +flat% +sum% +cum +cum% +name$' top.txt || fail "top: columns"
sed -n '5p' top.txt | grep -qE '^ +14\.25MB +[0-9.]+% .* alloc_buffer$' ||
  fail "top: first row is '$(sed -n 5p top.txt)'"
"$FNPROF" top -n 2 base.pb.gz | grep -q '^Showing top 2 nodes out of 10$' ||
  fail "top -n 2: no 'Showing top' line"
[ "$("$FNPROF" top -n 2 base.pb.gz | wc -l)" -eq 7 ] || fail "top -n 2 rows"
# Several PROFILEs are merged first: the same profile twice doubles every
# total (15.91MB -> 31.8xMB) and keeps the rows.
"$FNPROF" top base.pb.gz base.pb.gz >top2.txt
grep -q '^File: base.pb.gz (and 1 more, merged)$' top2.txt ||
  fail "top of two: $(head -1 top2.txt)"
grep -qE '^Showing nodes accounting for .* of 31\.8[0-9]MB total$' top2.txt ||
  fail "top of two: header: $(grep Showing top2.txt)"
sed -n '5p' top2.txt | grep -qE '^ +28\.50MB +[0-9.]+% .* alloc_buffer$' ||
  fail "top of two: first row is '$(sed -n 5p top2.txt)'"
echo "ok top text"

# top --json: exact values, escaping, --cum, counts for count types.
"$FNPROF" top --json -n 0 -t alloc_objects base.pb.gz >top.json
[ "$(json top.json 'j.entries[0].name')" = \
  'std::vector<int, std::allocator<int> >::push_back(int const&)' ] ||
  fail "alloc_objects top: $(json top.json 'j.entries[0].name')"
[ "$(json top.json 'j.entries[0].flat')" = 9000 ] || fail "flat 9000"
[ "$(json top.json 'j.total')" = 12181 ] || fail "alloc_objects total"
[ "$(json top.json 'j.unit')" = count ] || fail "unit count"
json top.json 'j.entries.some(e => e.name === "log_\"quoted\"\\path")' |
  grep -q true || fail "quoted name did not survive JSON"
json top.json 'j.entries.some(e => e.name === "größe_berechnen")' |
  grep -q true || fail "UTF-8 name did not survive JSON"
"$FNPROF" top --json --cum base.pb.gz >cum.json
[ "$(json cum.json 'j.entries[0].name + " " + (j.entries[0].cum === j.total)')" \
  = "main true" ] || fail "--cum: main should come first with cum = total"
[ "$(json cum.json 'j.sort')" = cum ] || fail "--cum: sort"
echo "ok top json"

# folded: the stacks add up to top's total; inlined frames expand in place
# (server_loop calls dispatch_inline, which was inlined into it).
total=$(json <("$FNPROF" top --json base.pb.gz) 'j.total')
"$FNPROF" folded base.pb.gz >folded.txt
sum=$(awk '{s += $NF} END {print s}' folded.txt)
[ "$sum" = "$total" ] || fail "folded sums to $sum, top total $total"
grep -qxF 'main;server_loop;dispatch_inline;handle_request;alloc_buffer 6553600' \
  folded.txt || fail "folded: alloc_buffer stack missing or misordered"
"$FNPROF" folded --json -t alloc_space base.pb.gz >folded.json
[ "$(json folded.json 'j.stacks.reduce((a, s) => a + s.value, 0) === j.total')" \
  = true ] || fail "folded --json values do not add up"
echo "ok folded"

# flame: a complete SVG with names escaped (alloc_objects, where the C++
# frame is wide enough to be drawn).
"$FNPROF" flame -t alloc_objects -o flame.svg base.pb.gz
head -c 200 flame.svg | grep -q '<svg' || fail "flame: no <svg"
tail -c 20 flame.svg | grep -q '</svg>' || fail "flame: not closed"
grep -q 'std::vector&lt;int' flame.svg || fail "flame: '<' not escaped"
if grep -q '<int,' flame.svg; then fail "flame: raw '<' in a name"; fi
if command -v xmllint >/dev/null; then
  xmllint --noout flame.svg || fail "flame: not well-formed XML"
fi
"$FNPROF" flame --json --title 'a "title"' base.pb.gz >flame.json
json flame.json 'j.svg.startsWith("<") && j.output === null' | grep -q true ||
  fail "flame --json without -o embeds the SVG"
"$FNPROF" flame --json -o f2.svg base.pb.gz >flame2.json
[ "$(json flame2.json 'j.output')" = f2.svg ] && [ -s f2.svg ] ||
  fail "flame --json -o"
"$FNPROF" flame --base base.pb.gz -o diff.svg grown.pb.gz
grep -q 'cache_insert' diff.svg && tail -c 20 diff.svg | grep -q '</svg>' ||
  fail "flame --base: no differential graph"
echo "ok flame"

# diff: cache_insert grew by 9 x 1500 x 512 bytes in use, parse_json's
# 3 x 4 KiB went away.
"$FNPROF" diff --json base.pb.gz grown.pb.gz >diff.json
[ "$(json diff.json '[j.grew[0].name, j.grew[0].delta].join(" ")')" = \
  "cache_insert 6912000" ] || fail "diff grew: $(json diff.json 'j.grew')"
[ "$(json diff.json '[j.shrank[0].name, j.shrank[0].delta].join(" ")')" = \
  "parse_json -12288" ] || fail "diff shrank: $(json diff.json 'j.shrank')"
[ "$(json diff.json 'j.delta')" = $((6912000 - 12288)) ] || fail "diff delta"
[ "$(json diff.json 'j.grew_stacks[0].frames.join(";")')" = \
  "cache_insert;handle_request;dispatch_inline;server_loop;main" ] ||
  fail "diff stack: $(json diff.json 'j.grew_stacks[0]')"
"$FNPROF" diff base.pb.gz grown.pb.gz >diff.txt
grep -qE '^ +\+6\.59MB +cache_insert$' diff.txt || fail "diff text: growth"
grep -qE '^ +-12\.00kB +parse_json$' diff.txt || fail "diff text: shrinkage"
echo "ok diff"

# The CI gate: 3 only when the net change exceeds --fail-over.
expect_exit 3 "$FNPROF" diff --fail-over 1MiB base.pb.gz grown.pb.gz
expect_exit 0 "$FNPROF" diff --fail-over 10MiB base.pb.gz grown.pb.gz
expect_exit 0 "$FNPROF" diff --fail-over 0 grown.pb.gz base.pb.gz
expect_exit 0 "$FNPROF" diff --fail-over 0 base.pb.gz base.pb.gz
"$FNPROF" diff --fail-over 1MiB base.pb.gz grown.pb.gz >/dev/null 2>gate.txt ||
  true
grep -qx 'fnprof diff: inuse_space grew by +6\.58MB, over --fail-over 1\.00MB' \
  gate.txt || fail "diff: gate message '$(cat gate.txt)'"
"$FNPROF" diff --json --fail-over 1MiB base.pb.gz grown.pb.gz >gate.json || true
[ "$(json gate.json 'j.over + " " + j.fail_over')" = "true 1048576" ] ||
  fail "diff --json: over"
[ "$(json <("$FNPROF" diff --json base.pb.gz base.pb.gz) \
  'j.grew.length + j.shrank.length + j.grew_stacks.length')" = 0 ] ||
  fail "diff of a profile with itself is not empty"
echo "ok diff gate"

# --symbolize: bare addresses inside write_sample_profile itself, resolved
# from the executable on disk (top and diff).
"$WRITER" --unsymbolized bare.pb.gz || fail "write_sample_profile --unsymbolized"
[ "$(json <("$FNPROF" top --json bare.pb.gz) 'j.entries[0].name')" != \
  add_samples ] || fail "bare profile already has names"
"$FNPROF" top --json --symbolize bare.pb.gz >sym.json
[ "$(json sym.json 'j.entries.slice(0, 3).map(e => e.name + ":" + e.flat).join(" ")')" \
  = "add_samples:3072 add_code:2048 add_header:1024" ] ||
  fail "top --symbolize: $(json sym.json 'j.entries')"
[ "$(json sym.json 'j.entries.find(e => e.name === "add_mappings").cum')" = \
  6144 ] || fail "top --symbolize: root frame"
[ "$(json <("$FNPROF" diff --json --symbolize bare.pb.gz bare.pb.gz) \
  'j.grew.length')" = 0 ] || fail "diff --symbolize of a profile with itself"
echo "PASS cli_verbs"
