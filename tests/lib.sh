# Shared helpers for end-to-end tests: source it from tests/e2e/*.sh.
# Each check prints "ok - SUITE: NAME" or "not ok - SUITE: NAME: why" and appends
# a pass/fail line to $ARCA_TEST_RESULTS, which tests/run counts.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
ARCA=${ARCA:-$BUILD/arca}
RESULTS=${ARCA_TEST_RESULTS:-/dev/null}
SUITE=${SUITE:-$(basename "$0" .sh)}
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/arca-$SUITE.XXXXXX")
chmod 755 "$T_TMP"
export ARCA_PLUGIN_PATH=$BUILD/plugins
_cleanups=()
on_exit() { _cleanups+=("$1"); }
_run_cleanups() {
    local i
    for ((i=${#_cleanups[@]}-1; i>=0; i--)); do eval "${_cleanups[$i]}" >/dev/null 2>&1 || true; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf "$T_TMP"
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM

pass() { echo "ok - $SUITE: $1"; echo "pass $SUITE: $1" >> "$RESULTS"; }
fail() { echo "not ok - $SUITE: $1: ${2:-}"; echo "fail $SUITE: $1" >> "$RESULTS"; }
skip() { echo "skip - $SUITE: $1: ${2:-}"; echo "skip $SUITE: $1" >> "$RESULTS"; }

# check NAME CMD...            : passes when CMD exits 0
check() { local n=$1; shift; local out; if out=$("$@" 2>&1); then pass "$n"; else fail "$n" "exit $? from: $* :: $(tail -c 600 <<<"$out")"; fi; }
# expect_exit NAME CODE CMD... : passes when CMD exits CODE; output kept in $OUT
expect_exit() {
    local n=$1 want=$2; shift 2; local rc=0
    OUT=$("$@" 2>&1) || rc=$?
    if [ "$rc" = "$want" ]; then pass "$n"; else fail "$n" "want exit $want, got $rc from: $* :: $(tail -c 600 <<<"$OUT")"; fi
}
# expect_match NAME REGEX TEXT : passes when TEXT matches the extended REGEX
expect_match() { if grep -Eq -- "$2" <<<"$3"; then pass "$1"; else fail "$1" "no /$2/ in: $(tail -c 600 <<<"$3")"; fi; }

# free_port: an unused TCP port on 127.0.0.1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# need FILE...: a missing build product or tool fails the suite (never a skip: ./run check installs
# and builds everything a test needs)
need() {
    local f
    for f in "$@"; do
        [ -e "$f" ] || command -v "$f" >/dev/null 2>&1 ||
            { fail "prerequisites" "$f is missing: run ./run check (or make && ./run deps)"; exit 0; }
    done
}
# peer_failed NAME ERRFILE: a test server that did not start fails the suite, with its last log lines
peer_failed() { fail "$1 starts" "$(tail -n 15 "$2" 2>/dev/null)"; exit 0; }
