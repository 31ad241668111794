#!/usr/bin/env bash
# Second S3 test server: s3rver 3.7 (npm, installed at the repository root by
# `npm ci`) on 127.0.0.1. Lenient: it does not check signatures, so it proves
# interoperability (path-style keys with '/', listing, multipart), never signing.
#   s3rver.sh start DIR BUCKET -> prints S3_ENDPOINT=... S3_KEY=S3RVER S3_SECRET=S3RVER S3_REGION=us-east-1
#   s3rver.sh stop DIR
# Exit 0 ok, 1 failure (with the reason and the server log's last lines on stderr).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
usage() { echo "usage: $0 start DIR BUCKET | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
die() { echo "s3rver.sh: $*" >&2; exit 1; }

stop() {
    local pid
    [ -f "$dir/s3rver.pid" ] || return 0
    pid=$(cat "$dir/s3rver.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$dir/s3rver.pid"
}

start() {
    local bucket=$1 js=$ROOT/node_modules/s3rver/bin/s3rver.js port pid n
    command -v node >/dev/null 2>&1 || die "node not found: run ./run deps (Debian packages nodejs npm)"
    [ -f "$js" ] || die "s3rver not installed: run ./run deps (npm ci from the npm registry)"
    command -v curl >/dev/null || die "curl not found: run ./run deps (Debian package curl)"
    mkdir -p "$dir/data" || die "cannot create $dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    # Node 17+ refuses the legacy MD5 use of s3rver's dependencies without the legacy provider
    NODE_OPTIONS=--openssl-legacy-provider setsid node "$js" -d "$dir/data" -a 127.0.0.1 -p "$port" \
        --configure-bucket "$bucket" --silent >"$dir/s3rver.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/s3rver.pid"
    n=100
    until curl -s -o /dev/null "http://127.0.0.1:$port/"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/s3rver.log" >&2; die "s3rver exited"; }
        n=$((n - 1)); [ $n -gt 0 ] || { tail -n 20 "$dir/s3rver.log" >&2; stop; die "s3rver did not answer within 10 s"; }
        sleep 0.1
    done
    printf 'S3_ENDPOINT=http://127.0.0.1:%s\nS3_KEY=S3RVER\nS3_SECRET=S3RVER\nS3_REGION=us-east-1\n' "$port" | tee "$dir/env"
}

case "$cmd" in
    start) [ $# = 3 ] || usage; start "$3" ;;
    stop) stop ;;
    *) usage ;;
esac
