#!/usr/bin/env bash
# s3 destination under injected faults: a loopback proxy (tests/servers/
# faultproxy.py) between arca and moto resets a connection mid-part, answers
# 503 SlowDown, answers 500 to CompleteMultipartUpload after moto completed it,
# stalls past the timeout. Each backup either succeeds through retries (and
# verifies) or fails cleanly: exit 1, no object visible, ListMultipartUploads
# empty.
SUITE=s3_faults
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/s3.so"
M=$T_TMP/moto
rc=0
envtxt=$("$ROOT/tests/servers/moto.sh" start "$M" faults 2>"$T_TMP/moto.err") || rc=$?
on_exit "'$ROOT/tests/servers/moto.sh' stop '$M'"
[ "$rc" = 0 ] || peer_failed moto "$T_TMP/moto.err"
eval "$envtxt"
MOTO_PORT=${S3_ENDPOINT##*:}
BUCKET=faults
aws() { "$ROOT/tests/servers/moto.sh" aws "$M" "$@"; }
objects() { aws s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --output text --query 'Contents[].Key' |
    grep -v '^None$'; }
uploads() { aws s3api list-multipart-uploads --bucket "$BUCKET" --output text --query 'Uploads[].Key' |
    grep -v '^None$'; }
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

SRC=$T_TMP/src
mkdir -p "$SRC"
head -c 16000000 /dev/urandom > "$SRC/big.bin" # 4 parts of 5 MiB
printf 'x\n' > "$SRC/x.txt"

PROXY_PID=
stop_proxy() { [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=; }
on_exit stop_proxy
# start_proxy NAME RULE...: a fresh proxy in front of moto; sets PROXY_PORT and PLOG
start_proxy() {
    local name=$1; shift
    stop_proxy
    PLOG=$T_TMP/$name.proxy.log; : > "$PLOG"
    python3 "$ROOT/tests/servers/faultproxy.py" "$MOTO_PORT" "$PLOG" "$@" > "$T_TMP/$name.port" 2>"$T_TMP/$name.proxy.err" &
    PROXY_PID=$!
    for _ in $(seq 50); do [ -s "$T_TMP/$name.port" ] && break; sleep 0.1; done
    PROXY_PORT=$(head -n 1 "$T_TMP/$name.port")
}

# write_config FILE PREFIX EXTRA...
write_config() {
    local f=$1 prefix=$2; shift 2
    mkdir -p "$T_TMP/restore-$prefix"
    {
        printf '[arca]\nchunk_size = 1M\n[source s]\nplugin = files\npath = %s\n' "$SRC"
        printf '[source r]\nplugin = files\npath = %s\n' "$T_TMP/restore-$prefix"
        printf '[destination d]\nplugin = s3\nendpoint = http://127.0.0.1:%s\nbucket = %s\nprefix = %s\n' "$PROXY_PORT" "$BUCKET" "$prefix"
        printf 'access_key_id = %s\nsecret_access_key = %s\npart_size = 5M\nupload_concurrency = 2\n' "$S3_KEY" "$S3_SECRET"
        for l in "$@"; do printf '%s\n' "$l"; done
        printf '[pipeline p]\nsource = s\ndestination = d\n'
    } > "$f"
}

fired() { grep -c "^FIRED $1" "$PLOG"; }

# survives NAME ACTION RULE[,RULE] [EXTRA...]: the backup succeeds through retries, the fault fired, the backup verifies
survives() {
    local name=$1 action=$2 rule=$3; shift 3
    start_proxy "$name" ${rule//,/ }
    write_config "$T_TMP/$name.ini" "$name-" "$@"
    local id t0=$SECONDS
    if id=$("$ARCA" -c "$T_TMP/$name.ini" -v backup p 2>"$T_TMP/$name.err"); then
        pass "$name: backup succeeds through retries ($((SECONDS - t0)) s)"
        id=$(tail -n 1 <<<"$id")
        check "$name: the backup verifies" "$ARCA" -c "$T_TMP/$name.ini" verify p "$id"
    else
        fail "$name: backup succeeds through retries" "$(tail -c 800 "$T_TMP/$name.err")"
    fi
    [ "$(fired "$action")" -ge 1 ] && pass "$name: the fault was injected ($(fired "$action")x)" ||
        fail "$name: the fault was injected" "$(tail -5 "$PLOG")"
    expect_match "$name: the retry is logged" "retry 1 in" "$(cat "$T_TMP/$name.err")"
    local u; u=$(uploads)
    [ -z "$u" ] && pass "$name: no multipart upload left" || fail "$name: no multipart upload left" "$u"
}

# fails_cleanly NAME ACTION RULE [EXTRA...]: exit 1 within bounds, nothing visible, no upload left
fails_cleanly() {
    local name=$1 action=$2 rule=$3; shift 3
    start_proxy "$name" "$rule"
    write_config "$T_TMP/$name.ini" "$name-" "$@"
    local t0=$SECONDS
    expect_exit "$name: backup fails with exit 1" 1 "$ARCA" -c "$T_TMP/$name.ini" backup p
    echo "# $name: failed after $((SECONDS - t0)) s: $(grep -o 'failed: .*' <<<"$OUT" | head -c 400)"
    [ "$(fired "$action")" -ge 1 ] && pass "$name: the fault was injected ($(fired "$action")x)" ||
        fail "$name: the fault was injected" "$(tail -5 "$PLOG")"
    expect_match "$name: the error says it gave up after retries" "gave up after [0-9]+ attempts? in" "$OUT"
    stop_proxy
    local o u; o=$(objects "$name-"); u=$(uploads)
    [ -z "$o" ] && pass "$name: no object visible" || fail "$name: no object visible" "$o"
    [ -z "$u" ] && pass "$name: ListMultipartUploads is empty" || fail "$name: ListMultipartUploads is empty" "$u"
}

# a connection reset in the middle of part 2's body
survives reset-mid-part reset "reset:PUT:partNumber=2&:1"
# the store asks us to slow down, three times
survives slowdown slowdown "slowdown:PUT:partNumber=:3"
# CompleteMultipartUpload: moto completes, the client hears 500; moto accepts the retry
survives complete-500-after-commit 500after "500after:POST:uploadId=:1"
# ... and as S3 may answer the retry: NoSuchUpload; the plugin finds the object
# whole (size, part count) and takes the commit as done
survives complete-answer-lost nosuchupload "500after:POST:uploadId=:1,nosuchupload:POST:uploadId=:1"
expect_match "complete-answer-lost: the plugin says an earlier attempt completed it" "completed by an earlier attempt" "$(cat "$T_TMP/complete-answer-lost.err")"
# CompleteMultipartUpload answered 200 with an <Error> body before it reached moto... after it, too
survives complete-200-error 200error "200error:POST:uploadId=:1"
# a part that gets no answer for longer than the timeout
survives stall-past-timeout stall "stall:PUT:partNumber=1&:1:6" "timeout = 2"
# a reset while restore reads a range
start_proxy restore-reset "reset:GET:.arca:1"
write_config "$T_TMP/rr.ini" "complete-500-after-commit-"
check "reset during a ranged GET: restore succeeds" "$ARCA" -c "$T_TMP/rr.ini" restore p latest --into r
[ "$(fired reset)" -ge 1 ] && pass "reset during a ranged GET: the fault was injected" ||
    fail "reset during a ranged GET: the fault was injected" "$(tail -5 "$PLOG")"
diff -r "$SRC" "$T_TMP/restore-complete-500-after-commit-" >/dev/null && pass "reset during a ranged GET: restored tree is identical" ||
    fail "reset during a ranged GET: restored tree is identical" "differs"

# faults that do not go away: bounded retries, then a clean failure
fails_cleanly part-always-500 500 "500:PUT:partNumber=3&:always" "retries = 3"
fails_cleanly complete-always-503 slowdown "slowdown:POST:uploadId=:always" "retries = 2"
fails_cleanly part-always-stalls stall "stall:PUT:partNumber=:always:30" "timeout = 1" "retries = 5" "retry_time = 4"
