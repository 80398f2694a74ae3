#!/usr/bin/env bash
# Bad input and bad command lines: fnprof must say what is wrong on stderr
# as "fnprof VERB: ...", exit 1 (runtime) or 2 (usage), and never crash. A
# crash shows as a status >= 128 (a signal) or a sanitizer report.
#
# usage: cli_errors.sh FNPROF WRITE_SAMPLE_PROFILE
set -euo pipefail
FNPROF=$1 WRITER=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
scratch_dir
cd "$SCRATCH"

# check WANT_STATUS PREFIX_REGEX CMD...: status and first stderr line.
check() {
  local want=$1 prefix=$2 got=0
  shift 2
  "$@" >out.txt 2>err.txt || got=$?
  [ "$got" -eq "$want" ] || fail "exit $got, want $want: $* ($(cat err.txt))"
  head -n1 err.txt | grep -qE "$prefix" ||
    fail "stderr of '$*' is '$(head -n1 err.txt)', want /$prefix/"
  grep -q 'Sanitizer' err.txt && fail "sanitizer report: $*"
  [ ! -s out.txt ] || [ "$want" -eq 0 ] || fail "stdout not empty on error: $*"
  return 0
}

"$WRITER" good.pb.gz || fail "write_sample_profile"
gzip -dc good.pb.gz >good.pb
size=$(stat -c %s good.pb)
printf 'this is not a profile\n' >text.txt
: >empty.pb
head -c 64 good.pb.gz >cut.pb.gz                # gzip stream cut short
head -c $((size - 1)) good.pb >cut.pb           # last field cut short
printf 'not a profile at all' | gzip >junk.pb.gz # valid gzip, bad protobuf
printf '\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01' >badvarint.pb
printf '\x12\xff\xff\xff\xff\x0f' >hugelen.pb   # 4 GiB field in 6 bytes

for f in text.txt empty.pb cut.pb.gz cut.pb junk.pb.gz badvarint.pb \
  hugelen.pb; do
  for verb in top folded flame; do
    check 1 "^fnprof $verb: $f: " "$FNPROF" "$verb" "$f"
  done
  check 1 "^fnprof diff: $f: " "$FNPROF" diff good.pb.gz "$f"
done
check 1 "^fnprof top: missing.pb.gz: .*(No such file|not found)" \
  "$FNPROF" top missing.pb.gz
check 1 "^fnprof top: \.: " "$FNPROF" top .
echo "ok malformed and missing files"

# Prefixes of a valid raw profile, cut all through it (about 130 of them,
# plus the last few bytes, where the string table ends): an error or (at a
# field boundary, if what remains is consistent) a profile, never a crash.
# Exhaustive mutation is the fuzz target's job; this checks the CLI path.
step=$((size / 128 + 1))
for n in $(seq 1 "$step" "$size") $(seq $((size - 8)) $((size - 1))); do
  head -c "$n" good.pb >prefix.pb
  got=0
  "$FNPROF" top prefix.pb >/dev/null 2>err.txt || got=$?
  case $got in
  0) ;;
  1) grep -q '^fnprof top: prefix.pb: ' err.txt ||
       fail "prefix $n: bad message '$(cat err.txt)'" ;;
  *) fail "prefix $n of $size bytes: exit $got ($(cat err.txt))" ;;
  esac
done
echo "ok prefixes of a $size-byte raw profile"

# Usage errors: status 2.
check 2 '^usage: fnprof' "$FNPROF"
check 2 "^fnprof: unknown verb 'nope'" "$FNPROF" nope
check 2 '^fnprof top: want a PROFILE' "$FNPROF" top
check 1 '^fnprof top: a: ' "$FNPROF" top a b
check 2 "^fnprof top: unknown option '--bogus'" "$FNPROF" top --bogus good.pb.gz
check 2 "^fnprof top: unknown option '-x'" "$FNPROF" top -x good.pb.gz
check 2 "^fnprof top: option '-n' needs a value" "$FNPROF" top good.pb.gz -n
check 2 "^fnprof top: -n wants a non-negative number" "$FNPROF" top -n abc good.pb.gz
check 2 "^fnprof top: no sample type 'nope'; this profile has: alloc_objects" \
  "$FNPROF" top --sample-type nope good.pb.gz
check 2 '^fnprof diff: want BASE and PROFILE' "$FNPROF" diff good.pb.gz
check 2 "^fnprof diff: --fail-over wants a size" \
  "$FNPROF" diff --fail-over lots good.pb.gz good.pb.gz
check 2 "^fnprof folded: unknown option '--title'" "$FNPROF" folded --title x good.pb.gz
check 2 '^fnprof flame: --width wants' "$FNPROF" flame --width 0 good.pb.gz
echo "ok usage errors"

# Output that cannot be written is an error, not a silent success.
check 1 '^fnprof flame: /nonexistent-dir/x.svg: ' \
  "$FNPROF" flame -o /nonexistent-dir/x.svg good.pb.gz
if [ -w /dev/full ]; then
  got=0
  "$FNPROF" top good.pb.gz >/dev/full 2>err.txt || got=$?
  [ "$got" -eq 1 ] && grep -q '^fnprof top: writing stdout' err.txt ||
    fail "a full disk went unreported (exit $got)"
fi
echo "PASS cli_errors"
