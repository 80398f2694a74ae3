# Shared by the pprof integration tests (sourced, not run): failure
# reporting, a scratch directory, Go's environment, and JSON look-ups.
# JSON is read with node, which the pprof-format check needs anyway.

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A scratch directory removed on exit.
scratch_dir() {
  SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/fnprof-test.XXXXXX")
  trap 'rm -rf "$SCRATCH"' EXIT
}

# Go writes its build cache and module path under $HOME by default, which
# may not exist or be writable in CI (root on a fresh machine): keep both in
# the build tree. GO111MODULE=off: the fixture is one file with no go.mod.
go_env() {
  local cache_dir=$1
  mkdir -p "$cache_dir"
  export GOCACHE="$cache_dir/gocache" GOPATH="$cache_dir/gopath"
  export GO111MODULE=off GOFLAGS= GOTOOLCHAIN=local
  export HOME="${HOME:-$cache_dir}"
  command -v go >/dev/null || fail "go is not installed (scripts/install-deps.sh)"
}

# json FILE EXPR: evaluates EXPR with `j` bound to FILE's parsed JSON and
# prints the result; a document that does not parse fails the test.
json() {
  node -e '
    const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const v = eval(process.argv[2]);
    if (v === undefined) { console.error("no value for " + process.argv[2]); process.exit(1); }
    console.log(typeof v === "object" ? JSON.stringify(v) : String(v));
  ' "$1" "$2" || fail "reading $2 from $1"
}

# go_top FILE TYPE [ARGS...]: `go tool pprof -top` for one sample type.
# Byte types are printed in plain bytes (-unit=B) so totals compare exactly;
# every node is shown (nothing dropped under -nodefraction);
# -symbolize=none keeps pprof off the network and out of local binaries.
go_top() {
  local file=$1 type=$2
  shift 2
  go tool pprof -top -symbolize=none -nodecount=1000000 -nodefraction=0 -unit=B \
    -sample_index="$type" "$@" "$file"
}

# expect_exit WANT CMD...: runs CMD (stdout discarded) and checks its exit
# status.
expect_exit() {
  local want=$1 got=0
  shift
  "$@" >/dev/null || got=$?
  [ "$got" -eq "$want" ] || fail "exit $got, want $want: $*"
}

# pprof_format_install CACHE_DIR: installs the npm package pprof-format into
# CACHE_DIR/npm on first use and sets NPM_DIR; run its checks with
# NODE_PATH=$NPM_DIR/node_modules. A failed install fails the test: the check
# must not silently stop running.
pprof_format_install() {
  NPM_DIR=$1/npm
  if [ ! -f "$NPM_DIR/node_modules/pprof-format/package.json" ]; then
    npm install --prefix "$NPM_DIR" --cache "$NPM_DIR/.cache" --no-audit \
      --no-fund --loglevel=error pprof-format@2 ||
      fail "npm install pprof-format@2 (needs the npm registry)"
  fi
}
