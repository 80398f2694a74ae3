#!/usr/bin/env bash
# The README's test command: installs what is missing, then builds and runs
# the whole suite twice:
#   1. gcc, -Werror, RelWithDebInfo: every test (unit, integration, preload).
#   2. clang, AddressSanitizer + UBSan, libFuzzer targets: every test except
#      the `preload` label — an LD_PRELOAD'ed agent cannot load into a
#      program unless libasan comes first in the link map, so the agent's
#      preload tests run in pass 1 and its logic is unit-tested in both.
# Usage: scripts/test.sh [--quick]   (--quick: pass 1 only)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test

jobs=${FNPROF_JOBS:-2}
quick=0
[ "${1:-}" = "--quick" ] && quick=1
status=0

run_pass() {
  local name=$1; shift
  local dir=build/ci-$name
  echo "== fnprof tests: $name =="
  cmake -S . -B "$dir" -DFNPROF_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1 || {
    tail -40 "$dir.build.log"; echo "build failed ($name)"; return 1; }
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure $CTEST_ARGS
}

CTEST_ARGS="" run_pass gcc -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ ||
  status=1
if [ $quick -eq 0 ]; then
  CTEST_ARGS="-LE preload" run_pass asan -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DFNPROF_SANITIZE=ON -DFNPROF_FUZZ=ON ||
    status=1
fi
exit $status
