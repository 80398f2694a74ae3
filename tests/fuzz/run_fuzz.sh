#!/usr/bin/env bash
# Runs a libFuzzer target for a bounded time on a copy of its seed corpus
# (the copy, so new inputs never land in the source tree). Fails on any crash.
set -euo pipefail
target=$1 corpus=$2 seconds=${3:-30}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$corpus" "$work/corpus"
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
  -print_final_stats=1 "$work/corpus" 2>"$work/log" || {
  tail -50 "$work/log" >&2
  exit 1
}
grep -E 'stat::number_of_executed_units' "$work/log"
