#!/usr/bin/env bash
# End-to-end test of fnprof-collector's web page in headless Chromium.
#   1. set-up: Debian's chromium (apt-get, when missing and we are root) and
#      playwright-core (npm ci into the build tree; no browser downloads);
#   2. the demo scenario (scripts/demo.sh's steps) against a collector that
#      serves the page: the C example under fnprof-sidecar + libfnprof.so
#      via `fnprof local`, 12 steady invocations, a spike, 4 more, a freeze
#      and stop;
#   3. page_test.mjs against it, then against an empty store and a big
#      one (bigstore.py: 100k log lines, 300 profiles).
# Environment (set by CMakeLists.txt): WEB_COLLECTOR, WEB_FNPROF,
# WEB_C_FUNCTION, WEB_BUNDLE, WEB_WORK (build-tree scratch + artifacts).
# Fails when chromium or the bundle is missing: scripts/install-deps.sh --test
# installs chromium, and the build bundles the page with npm.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
: "${WEB_COLLECTOR:?}" "${WEB_FNPROF:?}" "${WEB_C_FUNCTION:?}" "${WEB_BUNDLE:?}" "${WEB_WORK:?}"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
ART=$WEB_WORK/e2e-artifacts
NPM_DIR=$WEB_WORK/npm

if [ ! -f "$WEB_BUNDLE/index.html" ]; then
  echo "e2e/web: no bundle at $WEB_BUNDLE (npm missing at build time?)" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "e2e/web: installing Debian's chromium (test set-up)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >"$WEB_WORK/apt.log" 2>&1 ||
      { tail -5 "$WEB_WORK/apt.log"; echo "e2e/web: no chromium" >&2; exit 1; }
  else
    echo "e2e/web: $CHROMIUM missing and cannot install it" >&2
    exit 1
  fi
fi
mkdir -p "$NPM_DIR" "$ART"
if ! cmp -s "$HERE/package-lock.json" "$NPM_DIR/package-lock.json" ||
   [ ! -d "$NPM_DIR/node_modules/playwright-core" ]; then
  cp "$HERE/package.json" "$HERE/package-lock.json" "$NPM_DIR/"
  (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error)
fi
cp "$HERE/page_test.mjs" "$NPM_DIR/"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fnprof-e2e-web.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT

# start_collector NAME: starts one on a free port; sets URL.
start_collector() {
  "$WEB_COLLECTOR" --listen 127.0.0.1:0 --db "$TMP/$1.db" --web "$WEB_BUNDLE" \
    >"$TMP/$1.out" 2>"$ART/$1-collector.log" &
  PIDS+=($!)
  local port=
  for _ in $(seq 100); do
    port=$(sed -n '1s/.*:\([0-9][0-9]*\)$/\1/p' "$TMP/$1.out")
    [ -n "$port" ] && break
    sleep 0.05
  done
  [ -n "$port" ] || { cat "$ART/$1-collector.log"; echo "e2e/web: no collector" >&2; exit 1; }
  URL=http://127.0.0.1:$port
}

# The demo scenario (scripts/demo.sh), with this build's binaries.
start_collector demo
{ for _ in $(seq 12); do echo "invoke steady"; done
  echo "invoke spike"
  for _ in $(seq 4); do echo "invoke steady"; done; } >"$TMP/invocations.txt"
INSTANCE_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# The sidecar signs its uploads (it sends nothing without a key pair); this
# collector has no --access-key, so it accepts them and the test's own
# unsigned profile uploads alike.
FC_SERVER_HOST=127.0.0.1 FNPROF_ACCESS_KEY_ID=fnprof-e2e \
  FNPROF_ACCESS_KEY_SECRET=fnprof-e2e-secret timeout 120 "$WEB_FNPROF" local --port "$INSTANCE_PORT" \
  --sidecar-arg=--listen=127.0.0.1 \
  --sidecar-arg="--export=sls://127.0.0.1:${URL##*:}/demo/function" \
  --sidecar-arg=--instance-id=demo-instance \
  --file "$TMP/invocations.txt" -- "$WEB_C_FUNCTION" \
  >"$ART/local.log" 2>"$ART/local.err" || {
  tail -20 "$ART/local.err"; echo "e2e/web: fnprof local failed" >&2; exit 1; }

DEMO_URL=$URL
cd "$NPM_DIR"
node page_test.mjs demo "$URL" "$ART" "$CHROMIUM"
start_collector empty
node page_test.mjs empty "$URL" "$ART" "$CHROMIUM"
start_collector big
python3 -c 'import sys, urllib.request as u; open(sys.argv[2], "wb").write(u.urlopen(sys.argv[1]).read())' \
  "$DEMO_URL/api/profiles/1" "$TMP/profile.pb"
python3 "$HERE/bigstore.py" "$TMP/big.db" "$TMP/profile.pb"
node page_test.mjs big "$URL" "$ART" "$CHROMIUM"
echo "e2e/web: passed; screenshots in $ART"
