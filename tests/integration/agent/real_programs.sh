#!/bin/sh
# Real programs under the agent (issue 3, "Must show"): each one runs with
# LD_PRELOAD=libfnprof.so and FNPROF_DIR, exits normally, and leaves a final
# profile that `go tool pprof` reads, with samples in it. Programs that are
# not installed are skipped (and said so).
# Usage: real_programs.sh LIBFNPROF
set -eu
lib=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

check() { # NAME CMD...: run under the agent, then read the final profile
  name=$1
  shift
  out="$dir/$name"
  mkdir "$out"
  LD_PRELOAD="$lib" FNPROF_DIR="$out" FNPROF_RATE=65536 FNPROF_CONTROL=off \
    "$@" > "$out/stdout"
  f=$(ls "$out"/fnprof-*-final.pb.gz | head -1)
  go tool pprof -raw "$f" > "$out/raw.txt"
  n=$(grep -c '^ *[0-9]* *[0-9]* *[0-9]* *[0-9]*: ' "$out/raw.txt" || true)
  test "$n" -gt 0
  go tool pprof -top -sample_index=alloc_space "$f" > /dev/null
  echo "ok: $name ($n samples)"
}

# named NAME PATTERN: after `check NAME` of a JIT runtime that wrote its
# perf map (FNPROF_JIT_MAP_UNLINK=1 set), the profile names a function
# matching PATTERN and the map is gone.
named() {
  f=$(ls "$dir/$1"/fnprof-*-final.pb.gz | head -1)
  go tool pprof -top -cum -sample_index=alloc_space "$f" 2> /dev/null |
    grep -q "$2" || { echo "$1: no function matching $2"; exit 1; }
  pid=$(basename "$f" | cut -d- -f2)
  test ! -e "/tmp/perf-$pid.map" || { echo "$1: perf map left"; exit 1; }
  echo "ok: $1 names $2, map removed"
}

if command -v python3 > /dev/null; then
  check python3 python3 -c '
import json
data = [json.dumps({"k": i, "v": [i] * 50}) for i in range(20000)]
print(len("".join(data)))'
else
  echo "skip: python3"
fi
if command -v node > /dev/null; then
  check node node -e '
const a = []; for (let i = 0; i < 200000; i++) a.push({i, s: "x" + i});
console.log(a.length);'
  # JavaScript by name: node writes its perf map (the flags fnprof run and
  # the sidecar put in NODE_OPTIONS), the agent names the JIT frames from
  # it in the profile, then removes the map at exit.
  NODE_OPTIONS="--perf-basic-prof-only-functions --interpreted-frames-native-stack" \
    FNPROF_JIT_MAP_UNLINK=1 check node-jit node -e '
const keep = [];
function fillReportCache() {
  for (let i = 0; i < 64; i++) keep.push(Buffer.alloc(256 * 1024, 1));
}
fillReportCache();
console.log(keep.length);'
  named node-jit 'JS:.fillReportCache'
else
  echo "skip: node"
fi
# Python by name where CPython can say it (3.12+: PYTHONPERFSUPPORT=1 makes
# its perf trampolines and map); Debian 12's python3 is 3.11, so this runs
# only where a newer interpreter is installed (pyenv's, here).
py312=""
for p in /usr/bin/python3.1[2-9] "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python3; do
  [ -x "$p" ] && py312=$p && break
done
if [ -n "$py312" ]; then
  PYTHONPERFSUPPORT=1 FNPROF_JIT_MAP_UNLINK=1 check python-jit "$py312" -c '
keep = []
def fill_report_cache():
    for i in range(64):
        keep.append(bytearray(256 * 1024))
fill_report_cache()
print(len(keep))'
  named python-jit 'py::fill_report_cache'
else
  echo "skip: python-jit (no CPython 3.12+)"
fi
check sort sh -c 'seq 1 200000 | sort -r | head -1'
