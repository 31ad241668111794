#!/usr/bin/env bash
# Test GCS server: fake-gcs-server (the emulator most projects test against) on
# 127.0.0.1 with the in-memory backend.
#   gcs.sh start DIR [BUCKET...] -> prints GCS_ENDPOINT=http://127.0.0.1:PORT on
#       stdout (also kept in DIR/env) once the server answers, with the buckets made
#   gcs.sh stop DIR               -> stops the server started for DIR
#   gcs.sh bucket DIR NAME [JSON] -> makes one more bucket (JSON: extra bucket fields)
# fake-gcs-server is the pinned one ./run deps built into .deps/bin (FAKE_GCS_SERVER
# overrides). It does not check credentials, does not enforce retention on delete,
# ignores ifGenerationMatch on compose and commits a resumable upload on a status
# query ("bytes */*"): tests/servers/gcsfault.py stands in front of it where that matters.
# Exit 0 ok, 1 failure (with the reason and the server log's last lines on stderr).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FAKE=${FAKE_GCS_SERVER:-$ROOT/.deps/bin/fake-gcs-server}

usage() { echo "usage: $0 start DIR [BUCKET...] | stop DIR | bucket DIR NAME [JSON]" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
die() { echo "gcs.sh: $*" >&2; exit 1; }

stop() {
    local pid
    [ -f "$dir/gcs.pid" ] || return 0
    pid=$(cat "$dir/gcs.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$dir/gcs.pid"
}

# make_bucket NAME [JSON-FIELDS]: POST /storage/v1/b (fake-gcs-server checks no credentials)
make_bucket() {
    local extra=${2:-}
    curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
        --data "{\"name\":\"$1\"${extra:+,$extra}}" "$endpoint/storage/v1/b?project=arca-test" ||
        die "creating bucket $1 failed"
}

start() {
    [ -x "$FAKE" ] || die "$FAKE not found: run ./run deps (builds fake-gcs-server from the Go module proxy into .deps/bin)"
    command -v curl >/dev/null || die "curl not found: run ./run deps (Debian package curl)"
    mkdir -p "$dir" || die "cannot create $dir"
    local port pid n b
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    endpoint=http://127.0.0.1:$port
    setsid "$FAKE" -scheme http -host 127.0.0.1 -port "$port" -backend memory -log-level warn \
        -public-host "127.0.0.1:$port" -external-url "$endpoint" >"$dir/gcs.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/gcs.pid"
    n=200
    until curl -sf -o /dev/null "$endpoint/storage/v1/b?project=arca-test" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/gcs.log" >&2; die "fake-gcs-server exited"; }
        n=$((n - 1)); [ $n -gt 0 ] || { tail -n 20 "$dir/gcs.log" >&2; stop; die "fake-gcs-server did not answer within 20 s"; }
        sleep 0.1
    done
    for b in "$@"; do make_bucket "$b"; done
    echo "GCS_ENDPOINT=$endpoint" >"$dir/env"
    cat "$dir/env"
}

case "$cmd" in
    start) start "$@" ;;
    stop) stop ;;
    bucket)
        [ -f "$dir/env" ] || die "no server for $dir"
        . "$dir/env"
        endpoint=$GCS_ENDPOINT
        make_bucket "$@"
        ;;
    *) usage ;;
esac
