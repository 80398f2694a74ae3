# Sourced by run.sh and run_apps.sh: where the peers a user would pick
# instead of fnprof live, installing any that is missing by its Debian
# package name (as root, or through sudo without a password; set
# BENCH_NO_INSTALL=1 to only skip), and the cputime helper.
je=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2          # libjemalloc2
tc=/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4          # libgoogle-perftools4
ht=/usr/bin/heaptrack                                  # heaptrack
je_prof_conf=prof:true,lg_prof_sample:19               # 512 KiB mean, as fnprof
tc_sample=524288

# need PKG FILE: true when FILE exists, after installing PKG if it did not.
need() {
  [ -e "$2" ] && return 0
  if [ -z "${BENCH_NO_INSTALL:-}" ] && command -v apt-get > /dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    echo "bench: installing Debian package $1 (for $2)" >&2
    $sudo apt-get install -y --no-install-recommends "$1" > /dev/null 2>&1 ||
      { $sudo apt-get update > /dev/null 2>&1 &&
        $sudo apt-get install -y --no-install-recommends "$1" > /dev/null 2>&1; } ||
      true
  fi
  [ -e "$2" ] && return 0
  echo "bench: $2 missing (Debian package $1): its column is skipped" >&2
  return 1
}

# have FILE: set by the script once need has run, so rounds do not retry.
have() { [ -e "$1" ]; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { echo "$1 $2" | awk '{printf "%.3f", $1/$2}'; }
# paired FILE BASE_FILE: the median of the per-round ratios FILE/BASE_FILE
# (line i of each is round i). Pairing runs that were minutes apart with
# their own round's baseline cancels the machine's slow drifts, which a
# ratio of two medians does not.
paired() { paste "$1" "$2" | awk '$2 > 0 {print $1 / $2}' | median | awk '{printf "%.3f", $1}'; }
# rotate N WORDS...: WORDS rotated left by N, so no configuration always
# runs first in its round (the first run after another program's exit
# paid for cold caches and was systematically slower).
rotate() {
  n=$1; shift
  k=$((n % $#))
  i=0
  for w in "$@"; do [ $i -ge $k ] && printf '%s ' "$w"; i=$((i + 1)); done
  i=0
  for w in "$@"; do [ $i -lt $k ] && printf '%s ' "$w"; i=$((i + 1)); done
}

# build_cputime DIR: (with $here set) compiles cputime.c into DIR, prints its path.
build_cputime() {
  cc -O2 "$here/cputime.c" -o "$1/cputime" && echo "$1/cputime"
}

# bench_setup BUILD_DIR [ROUNDS]: what both scripts start with (with $here
# set): build, rounds, the agent in BUILD_DIR, and a temporary directory
# removed at exit.
bench_setup() {
  build=${1:?build dir}
  rounds=${2:-5}
  agent=$(cd "$build" && pwd)/agent/libfnprof.so
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
}
