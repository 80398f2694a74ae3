#!/usr/bin/env bash
# What fnprof-sidecar costs a function (issue 5, "Must show (benchmark)"):
#   1. added latency per invocation (p50, p99 at concurrency 1) and
#      throughput (concurrency 1 and 8) for a trivial function, called
#      directly, through fnprof-sidecar (without and with the agent) and
#      through nginx as a keep-alive reverse proxy (the peer; bare, and
#      writing an access line per request as the sidecar writes its
#      platform lines), interleaved
#      over ROUNDS rounds with the order rotated, medians reported;
#   2. GET /pre-freeze with 10k buffered log lines + agent metrics + an inuse
#      profile, exported to fnprof-collector (sls://), median of REPS.
# Loopback only; everything it starts is stopped on exit.
#
#   bench/hooks/run.sh [BUILD_DIR]    (default build/bench)
#   ROUNDS=5 SECS=2 REPS=7 FNPROF_JOBS=2 to change the defaults;
#   SKIP_BUILD=1 to measure BUILD_DIR as it is (while changing the sidecar);
#   SIDECAR_BEFORE=PATH adds another fnprof-sidecar binary (say, one built
#   from an older commit) as "before" and "before+agent", for A/B runs (its
#   /pre-freeze reps take turns with the sidecar's).
# Installs wrk and nginx (Debian packages) when missing; configures and
# builds the sidecar, agent and collector in BUILD_DIR; compiles the trivial
# function (bench/hooks/trivial.c) there.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
B=${1:-build/bench}
case $B in /*) ;; *) B=$ROOT/$B ;; esac
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-2}
REPS=${REPS:-7}
LINES=10000
HERE=$ROOT/bench/hooks

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get install -y "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [ -z "${SKIP_BUILD:-}" ]; then
  echo "building into $B"
  mkdir -p "$B"
  cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$B.cmake.log" 2>&1 || {
    tail -30 "$B.cmake.log"; exit 1; }
  cmake --build "$B" -j"${FNPROF_JOBS:-2}" --target fnprof fnprof-sidecar \
    fnprof-collector >"$B.build.log" 2>&1 || { tail -40 "$B.build.log"; exit 1; }
fi
# shellcheck disable=SC2046
cc -O2 -std=gnu11 "$HERE/trivial.c" -o "$B/bench_trivial" \
  $(pkg-config --cflags --libs libevent)
SIDECAR=$B/hooks/fnprof-sidecar
AGENT=$B/agent/libfnprof.so
[ -x "$SIDECAR" ] && [ -f "$AGENT" ] || { echo "bench: missing $SIDECAR or $AGENT" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/fnprof-bench-hooks.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_http() { # PORT: until it answers 200 (20 s at most)
  for _ in $(seq 400); do
    curl -fs -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "bench: nothing answers on port $1" >&2
  return 1
}

# The function, called directly (and nginx's upstream).
P_DIRECT=$(free_port)
FC_SERVER_HOST=127.0.0.1 FC_SERVER_PORT=$P_DIRECT "$B/bench_trivial" &
PIDS+=($!)

# The sidecar, each with a function of its own; its stdout (the platform's
# log collection) goes to a file, as the platform reads it.
P_SC=$(free_port)
"$SIDECAR" --listen 127.0.0.1 --port "$P_SC" --no-agent \
  --instance-id bench-noagent -- "$B/bench_trivial" >"$TMP/sc.out" 2>"$TMP/sc.err" &
PIDS+=($!)
P_SCA=$(free_port)
"$SIDECAR" --listen 127.0.0.1 --port "$P_SCA" --agent "$AGENT" \
  --instance-id bench-agent -- "$B/bench_trivial" >"$TMP/sca.out" 2>"$TMP/sca.err" &
PIDS+=($!)

TARGETS=(direct nginx nginx+log sidecar sidecar+agent)
if [ -n "${SIDECAR_BEFORE:-}" ]; then
  P_B=$(free_port)
  "$SIDECAR_BEFORE" --listen 127.0.0.1 --port "$P_B" --no-agent \
    -- "$B/bench_trivial" >"$TMP/b.out" 2>"$TMP/b.err" &
  PIDS+=($!)
  P_BA=$(free_port)
  "$SIDECAR_BEFORE" --listen 127.0.0.1 --port "$P_BA" --agent "$AGENT" \
    -- "$B/bench_trivial" >"$TMP/ba.out" 2>"$TMP/ba.err" &
  PIDS+=($!)
  TARGETS+=(before before+agent)
fi

# nginx: one worker (the sidecar is one event loop too), keep-alive both
# sides, everything under its directory, as the current user. "nginx"
# writes no log: the bare proxy, the peer the targets name. "nginx+log"
# writes an access line per request, unbuffered, as the sidecar writes its
# platform lines (at once on an idle instance): the like-for-like peer.
# nginx_start DIR PORT ACCESS_LOG
nginx_start() {
  mkdir -p "$1"
  cat >"$1/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 256; }
http {
  access_log $3;
  client_body_temp_path $1/body;
  proxy_temp_path $1/proxy;
  fastcgi_temp_path $1/fastcgi;
  uwsgi_temp_path $1/uwsgi;
  scgi_temp_path $1/scgi;
  keepalive_requests 1000000;
  upstream fn { server 127.0.0.1:$P_DIRECT; keepalive 16; }
  server {
    listen 127.0.0.1:$2;
    location / {
      proxy_pass http://fn;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  "$NGINX" -p "$1" -c "$1/nginx.conf" 2>"$1/stderr" &
  PIDS+=($!)
}
P_NGX=$(free_port)
nginx_start "$TMP/nginx" "$P_NGX" off
P_NGXL=$(free_port)
nginx_start "$TMP/nginx-log" "$P_NGXL" "$TMP/nginx-log/access.log"

port_of() {
  case $1 in
  direct) echo "$P_DIRECT" ;; nginx) echo "$P_NGX" ;; nginx+log) echo "$P_NGXL" ;;
  sidecar) echo "$P_SC" ;; sidecar+agent) echo "$P_SCA" ;;
  before) echo "$P_B" ;; before+agent) echo "$P_BA" ;;
  esac
}
for t in "${TARGETS[@]}"; do wait_http "$(port_of "$t")"; done

# wrk's report -> "p50_us p99_us rps"
parse_wrk() {
  awk '
    function us(v) {
      if (v ~ /us$/) return v + 0
      if (v ~ /ms$/) return (v + 0) * 1000
      if (v ~ /s$/) return (v + 0) * 1000000
      return v + 0
    }
    $1 == "50%" { p50 = us($2) }
    $1 == "99%" { p99 = us($2) }
    $1 == "Requests/sec:" { rps = $2 }
    END { printf "%.1f %.1f %.1f\n", p50, p99, rps }'
}

RES=$TMP/results.txt
: >"$RES"
echo "warming up"
for t in "${TARGETS[@]}"; do
  wrk -t1 -c8 -d1s "http://127.0.0.1:$(port_of "$t")/" >/dev/null
done
echo "measuring: $ROUNDS rounds x ${#TARGETS[@]} targets x (c1, c8) x ${SECS}s"
for r in $(seq "$ROUNDS"); do
  n=${#TARGETS[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${TARGETS[$(((i + r) % n))]}
    url=http://127.0.0.1:$(port_of "$t")/
    read -r p50 p99 rps1 < <(wrk -t1 -c1 -d"${SECS}s" --latency "$url" | parse_wrk)
    read -r _ _ rps8 < <(wrk -t1 -c8 -d"${SECS}s" --latency "$url" | parse_wrk)
    echo "$r $t $p50 $p99 $rps1 $rps8" >>"$RES"
    printf '  round %d %-14s p50 %7.1f us  p99 %7.1f us  c1 %8.0f/s  c8 %8.0f/s\n' \
      "$r" "$t" "$p50" "$p99" "$rps1" "$rps8"
  done
done

echo
python3 - "$RES" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {}
for t in dict.fromkeys(r[1] for r in rows):
    cols = [[float(x) for x in r[2:]] for r in rows if r[1] == t]
    med[t] = [statistics.median(c) for c in zip(*cols)]
d, n = med["direct"], med["nginx"]
print("medians over %d rounds (latency at concurrency 1; wrk, loopback)"
      % len({r[0] for r in rows}))
print("%-14s %9s %9s %9s %9s %10s %10s %8s %8s %8s %8s" % (
    "target", "p50 us", "p99 us", "+p50 us", "+p99 us", "c1 req/s",
    "c8 req/s", "c1/dir", "c8/dir", "c1/ngx", "c8/ngx"))
for t, m in med.items():
    print("%-14s %9.1f %9.1f %9.1f %9.1f %10.0f %10.0f %8.2f %8.2f %8.2f %8.2f"
          % (t, m[0], m[1], m[0] - d[0], m[1] - d[1], m[2], m[3],
             m[2] / d[2], m[3] / d[3], m[2] / n[2], m[3] / n[3]))
if "nginx+log" in med:
    l = med["nginx+log"]
    print("against nginx+log (an access line per request):" + "".join(
        "  %s %.2f / %.2f" % (t, med[t][2] / l[2], med[t][3] / l[3])
        for t in med if t.startswith("sidecar")))
EOF

# ---- /pre-freeze -----------------------------------------------------------
echo
echo "/pre-freeze: $LINES log lines + metrics + an inuse profile to fnprof-collector"
"$B/collector/fnprof-collector" --listen 127.0.0.1:0 --db "$TMP/store.db" \
  --access-key bench:bench-secret >"$TMP/collector.out" 2>"$TMP/collector.err" &
PIDS+=($!)
CPORT=
for _ in $(seq 200); do
  CPORT=$(sed -n '1s/.*:\([0-9][0-9]*\)$/\1/p' "$TMP/collector.out")
  [ -n "$CPORT" ] && break
  sleep 0.05
done
[ -n "$CPORT" ] || { cat "$TMP/collector.err"; echo "bench: collector did not start" >&2; exit 1; }
# freeze_start NAME SIDECAR_BINARY: a sidecar with the agent exporting to
# the collector, its first export done; remembered in FREEZE as NAME:PORT.
FREEZE=()
freeze_start() {
  local name=$1 bin=$2 port
  port=$(free_port)
  FNPROF_ACCESS_KEY_ID=bench FNPROF_ACCESS_KEY_SECRET=bench-secret \
    "$bin" --listen 127.0.0.1 --port "$port" --agent "$AGENT" \
    --export "sls://127.0.0.1:$CPORT/bench/function" --instance-id "bench-$name" \
    -- "$B/bench_trivial" >"$TMP/fz-$name.out" 2>"$TMP/fz-$name.err" &
  PIDS+=($!)
  wait_http "$port"
  curl -fs -o /dev/null "http://127.0.0.1:$port/pre-freeze" # the first export
  : >"$TMP/freeze-$name.txt"
  FREEZE+=("$name:$port")
}
freeze_start sidecar "$SIDECAR"
if [ -n "${SIDECAR_BEFORE:-}" ]; then freeze_start before "$SIDECAR_BEFORE"; fi
# REPS x (10k lines, then time /pre-freeze), the sidecars taking turns so
# that load from elsewhere hits both alike.
for i in $(seq "$REPS"); do
  for f in "${FREEZE[@]}"; do
    name=${f%%:*} port=${f##*:}
    curl -fs -o /dev/null -H "x-fc-request-id: bench-lines-$i" \
      "http://127.0.0.1:$port/lines?n=$LINES"
    sleep 0.2 # let the function's lines reach the sidecar's buffer
    t=$(curl -fs -o /dev/null -w '%{http_code} %{time_total}' \
      "http://127.0.0.1:$port/pre-freeze")
    echo "  $name rep $i: /pre-freeze ${t#* }s (HTTP ${t%% *})"
    echo "$t" >>"$TMP/freeze-$name.txt"
  done
done
for f in "${FREEZE[@]}"; do
  name=${f%%:*}
  python3 - "$name" "$TMP/freeze-$name.txt" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[2])]
ms = sorted(float(r[1]) * 1000 for r in rows)
bad = [r for r in rows if r[0] != "200"]
print("%s: /pre-freeze median %.1f ms (min %.1f, max %.1f, %d reps%s)"
      % (sys.argv[1], statistics.median(ms), ms[0], ms[-1], len(ms),
         ", %d not 200" % len(bad) if bad else ""))
EOF
done
