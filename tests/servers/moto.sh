#!/usr/bin/env bash
# Test S3 server: moto_server on 127.0.0.1 with SigV4 checking on.
#   moto.sh start DIR [BUCKET...] -> prints shell assignments on stdout:
#       S3_ENDPOINT=http://127.0.0.1:PORT S3_KEY=... S3_SECRET=... S3_REGION=us-east-1
#     (also kept in DIR/env). moto lets the first 4 requests through unsigned:
#     they create an IAM user, its allow-all policy and its access key, and the
#     first bucket; from then on every request must be signed with that key.
#   moto.sh stop DIR              -> stops the server started for DIR
#   moto.sh aws DIR ARGS...       -> Debian's aws CLI (/usr/bin/aws) against it
# moto is the pinned one ./run deps put in .deps/venv (MOTO_SERVER overrides it).
# Exit 0 ok, 1 failure (with the reason and the server log's last lines on stderr).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MOTO=${MOTO_SERVER:-$ROOT/.deps/venv/bin/moto_server}

usage() { echo "usage: $0 start DIR [BUCKET...] | stop DIR | aws DIR ARGS..." >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
AWS=/usr/bin/aws

die() { echo "moto.sh: $*" >&2; exit 1; }

# awscli with nothing from the caller's environment or home directory
aws_clean() {
    env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_SESSION_TOKEN -u AWS_DEFAULT_PROFILE \
        AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
        AWS_DEFAULT_REGION=us-east-1 AWS_PAGER= "$AWS" --endpoint-url "$endpoint" "$@"
}

stop() {
    local pid
    [ -f "$dir/moto.pid" ] || return 0
    pid=$(cat "$dir/moto.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$dir/moto.pid"
}

start() {
    [ -x "$MOTO" ] || die "$MOTO not found: run ./run deps (installs moto from PyPI into .deps/venv)"
    [ -x "$AWS" ] || die "$AWS not found: run ./run deps (Debian package awscli)"
    command -v curl >/dev/null || die "curl not found: run ./run deps (Debian package curl)"
    mkdir -p "$dir" || die "cannot create $dir"
    local port pid n
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
    endpoint=http://127.0.0.1:$port
    INITIAL_NO_AUTH_ACTION_COUNT=4 setsid "$MOTO" -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/moto.pid"
    n=200
    until curl -s -o /dev/null "$endpoint/moto-api/" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/moto.log" >&2; die "moto_server exited"; }
        n=$((n - 1)); [ $n -gt 0 ] || { tail -n 20 "$dir/moto.log" >&2; stop; die "moto_server did not answer within 20 s"; }
        sleep 0.1
    done
    # requests 1-3 (unsigned): the user, its policy, its key
    AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap aws_clean iam create-user --user-name arca >/dev/null ||
        { stop; die "iam create-user failed"; }
    AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap aws_clean iam put-user-policy --user-name arca \
        --policy-name all --policy-document \
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}' >/dev/null ||
        { stop; die "iam put-user-policy failed"; }
    local keys
    keys=$(AWS_ACCESS_KEY_ID=bootstrap AWS_SECRET_ACCESS_KEY=bootstrap aws_clean iam create-access-key \
        --user-name arca --output text --query 'AccessKey.[AccessKeyId,SecretAccessKey]') ||
        { stop; die "iam create-access-key failed"; }
    local key secret
    read -r key secret <<<"$keys"
    [ -n "$key" ] && [ -n "$secret" ] || { stop; die "no access key in: $keys"; }
    {
        echo "S3_ENDPOINT=$endpoint"
        echo "S3_KEY=$key"
        echo "S3_SECRET=$secret"
        echo "S3_REGION=us-east-1"
    } >"$dir/env"
    # request 4 and later: signed with the new key
    local b
    for b in "$@"; do
        AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret aws_clean s3api create-bucket --bucket "$b" >/dev/null ||
            { stop; die "create-bucket $b failed"; }
    done
    # burn the unsigned allowance if no bucket did, so that nothing after this is let through unsigned
    local i
    for ((i = $#; i < 1; i++)); do
        AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret aws_clean s3api list-buckets >/dev/null 2>&1
    done
    cat "$dir/env"
}

case "$cmd" in
    start) start "$@" ;;
    stop) stop ;;
    aws)
        [ -f "$dir/env" ] || die "no server for $dir"
        . "$dir/env"
        endpoint=$S3_ENDPOINT
        AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET aws_clean "$@"
        ;;
    *) usage ;;
esac
