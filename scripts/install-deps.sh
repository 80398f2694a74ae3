#!/usr/bin/env bash
# Installs, by Debian package name, everything fnprof needs to build and run
# its demo; with --test, also what the test suite runs against (real
# programs under the agent, a real browser). Does nothing (and needs no
# network) when all are present.
# Usage: scripts/install-deps.sh [--test]
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
  libunwind-dev libdw-dev libelf-dev zlib1g-dev libzstd-dev liblz4-dev
  libcurl4-openssl-dev libevent-dev libssl-dev libsqlite3-dev libcmocka-dev
  golang-go nodejs npm python3
)
if [ "${1:-}" = "--test" ]; then
  # redis-server (linked with jemalloc) under the agent; Debian's chromium
  # for the web page's end-to-end test.
  PKGS+=(redis-server redis-tools chromium)
fi

missing=()
for p in "${PKGS[@]}"; do
  # nodejs/npm may come from another channel (e.g. a newer node with npm
  # bundled): accept the command when it exists.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
