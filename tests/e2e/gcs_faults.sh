#!/usr/bin/env bash
# gcs destination under faults, through tests/servers/gcsfault.py in front of
# fake-gcs-server (the proxy keeps resumable sessions as Google documents them:
# a persisted Range shorter than what was sent, resent bytes ignored, status
# queries answered). Each backup survives by retry and verifies, or fails
# cleanly: exit 1, nothing visible, no part object left, the error saying
# what gave up. A 401 in the middle of an upload gets a new token (service-
# account key, tests/servers/gcsauth.py) and the upload goes on.
SUITE=gcs_faults
. "$(dirname "$0")/../lib.sh"

PY=$ROOT/.deps/venv/bin/python
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/gcs.so" "$PY" openssl
G=$T_TMP/gcs
rc=0
envtxt=$("$ROOT/tests/servers/gcs.sh" start "$G" faults 2>"$T_TMP/gcs.err") || rc=$?
on_exit "'$ROOT/tests/servers/gcs.sh' stop '$G'"
[ "$rc" = 0 ] || peer_failed fake-gcs-server "$T_TMP/gcs.err"
eval "$envtxt"
GPORT=${GCS_ENDPOINT##*:}
BUCKET=faults
gpy() { "$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" "$@"; }
objects() { gpy ls "$BUCKET" "$1" | cut -d' ' -f1; }
unset GOOGLE_APPLICATION_CREDENTIALS
export CLOUDSDK_CONFIG=$T_TMP/no-gcloud GCE_METADATA_HOST=127.0.0.1:9

# a service account whose key the token endpoint checks (for the 401 case)
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_TMP/key.pem" 2>/dev/null
openssl pkey -in "$T_TMP/key.pem" -pubout -out "$T_TMP/pub.pem"
: > "$T_TMP/tokens"
"$PY" "$ROOT/tests/servers/gcsauth.py" "$T_TMP/auth.log" "$T_TMP/tokens" --pubkey "$T_TMP/pub.pem" \
    --email backup@arca-test.iam.gserviceaccount.com > "$T_TMP/auth.port" 2>"$T_TMP/auth.err" &
AUTH_PID=$!
on_exit "kill $AUTH_PID"
for _ in $(seq 50); do [ -s "$T_TMP/auth.port" ] && break; sleep 0.1; done
[ -s "$T_TMP/auth.port" ] || peer_failed gcsauth "$T_TMP/auth.err"
python3 -c 'import json,sys; print(json.dumps({"type": "service_account", "client_email": sys.argv[2],
    "private_key": open(sys.argv[1]).read(), "private_key_id": "k1", "token_uri": sys.argv[3]}))' \
    "$T_TMP/key.pem" backup@arca-test.iam.gserviceaccount.com "http://127.0.0.1:$(cat "$T_TMP/auth.port")/token" \
    > "$T_TMP/sa.json"

SRC=$T_TMP/src SMALL=$T_TMP/small
mkdir -p "$SRC" "$SMALL"
openssl enc -aes-128-ctr -pass pass:faults -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 9000000 > "$SRC/big.bin"
printf 'x\n' > "$SRC/x.txt"; printf 'small\n' > "$SMALL/s.txt"

PROXY_PID=
stop_proxy() { [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null; wait "$PROXY_PID" 2>/dev/null; PROXY_PID=; }
on_exit stop_proxy
# start_proxy NAME [--tokens] RULE...: a fresh proxy; sets PROXY_PORT and PLOG
start_proxy() {
    local name=$1; shift
    stop_proxy
    PLOG=$T_TMP/$name.proxy.log; : > "$PLOG"
    python3 "$ROOT/tests/servers/gcsfault.py" "$GPORT" "$PLOG" "$@" > "$T_TMP/$name.port" 2>"$T_TMP/$name.proxy.err" &
    PROXY_PID=$!
    for _ in $(seq 50); do [ -s "$T_TMP/$name.port" ] && break; sleep 0.1; done
    PROXY_PORT=$(head -n 1 "$T_TMP/$name.port")
}

# write_config FILE PREFIX SRC EXTRA...
write_config() {
    local f=$1 prefix=$2 src=$3; shift 3
    mkdir -p "$T_TMP/restore-$prefix"
    {
        printf '[arca]\nchunk_size = 1M\n[source s]\nplugin = files\npath = %s\n' "$src"
        printf '[source r]\nplugin = files\npath = %s\n' "$T_TMP/restore-$prefix"
        printf '[destination d]\nplugin = gcs\nendpoint = http://127.0.0.1:%s\nbucket = %s\nprefix = %s\n' \
            "$PROXY_PORT" "$BUCKET" "$prefix"
        printf 'chunk_size = %s\n' "${DCHUNK:-1M}"
        for l in "$@"; do printf '%s\n' "$l"; done
        grep -q '^credentials' <<<"$(printf '%s\n' "$@")" || printf 'access_token = test-token\n'
        printf '[pipeline p]\nsource = s\ndestination = d\n'
    } > "$f"
}

fired() { grep -c "^FIRED $1" "$PLOG"; }

# survives NAME ACTION SRC RULE[,RULE] [EXTRA...]: the backup succeeds through retries, the fault fired, it verifies
survives() {
    local name=$1 action=$2 src=$3 rule=$4; shift 4
    start_proxy "$name" ${rule//,/ }
    write_config "$T_TMP/$name.ini" "$name/" "$src" "$@"
    local id t0=$SECONDS
    if id=$("$ARCA" -c "$T_TMP/$name.ini" -v backup p 2>"$T_TMP/$name.err"); then
        pass "$name: backup succeeds through retries ($((SECONDS - t0)) s)"
        id=$(tail -n 1 <<<"$id")
        check "$name: the backup verifies" "$ARCA" -c "$T_TMP/$name.ini" verify p "$id"
        check "$name: restore is byte-identical" bash -c "'$ARCA' -c '$T_TMP/$name.ini' restore p '$id' --into r &&
            diff -r '$src' '$T_TMP/restore-$name/'"
    else
        fail "$name: backup succeeds through retries" "$(tail -c 800 "$T_TMP/$name.err")"
    fi
    [ "$(fired "$action")" -ge 1 ] && pass "$name: the fault was injected ($(fired "$action")x)" ||
        fail "$name: the fault was injected" "$(tail -5 "$PLOG")"
    local t; t=$(objects "$name/.arca-tmp/")
    [ -z "$t" ] && pass "$name: no part object left" || fail "$name: no part object left" "$t"
}

# fails_cleanly NAME ACTION SRC RULE WANT-REGEX [EXTRA...]: exit 1, the reason, nothing visible, nothing left
fails_cleanly() {
    local name=$1 action=$2 src=$3 rule=$4 want=$5; shift 5
    start_proxy "$name" "$rule"
    write_config "$T_TMP/$name.ini" "$name/" "$src" "$@"
    local t0=$SECONDS
    expect_exit "$name: backup fails with exit 1" 1 "$ARCA" -c "$T_TMP/$name.ini" backup p
    echo "# $name: failed after $((SECONDS - t0)) s: $(grep -o 'error: .*' <<<"$OUT" | head -c 500)"
    [ "$(fired "$action")" -ge 1 ] && pass "$name: the fault was injected ($(fired "$action")x)" ||
        fail "$name: the fault was injected" "$(tail -5 "$PLOG")"
    expect_match "$name: the error says why" "$want" "$OUT"
    stop_proxy
    local o; o=$(objects "$name/")
    [ -z "$o" ] && pass "$name: no backup visible and no part object left" ||
        fail "$name: no backup visible and no part object left" "$o"
}

C1="upload_concurrency = 1" C3="upload_concurrency = 3"
# ---- one resumable session: the server persists less than was sent, or fails mid-chunk ----
survives stream-partial-range partial "$SRC" "partial:PUT:upload_id=:3" "$C1"
expect_match "stream-partial-range: the rest of the chunk was sent from the server's Range" \
    "persisted=[0-9]+ \(partial\)" "$(cat "$PLOG")"
survives stream-503-mid-chunk 503mid "$SRC" "503mid:PUT:upload_id=:2" "$C1"
expect_match "stream-503-mid-chunk: the session was asked how much it had (bytes */*)" "status query" "$(cat "$PLOG")"
expect_match "stream-503-mid-chunk: the retry is logged, resuming" "retry 1 in .*resuming" "$(cat "$T_TMP/stream-503-mid-chunk.err")"
survives stream-reset-mid-chunk reset "$SRC" "reset:PUT:upload_id=:1" "$C1"
survives stream-token-expires 401 "$SRC" "401:PUT:upload_id=:1" "$C1" "credentials = $T_TMP/sa.json"
expect_match "stream-token-expires: a new token was fetched after the 401" "fetching a new access token" \
    "$(cat "$T_TMP/stream-token-expires.err")"
[ "$(grep -c '^ISSUED sa' "$T_TMP/auth.log")" -ge 2 ] && pass "stream-token-expires: the token endpoint issued a second token" ||
    fail "stream-token-expires: the token endpoint issued a second token" "$(cat "$T_TMP/auth.log")"
# no byte was sent twice past what the server persisted: the object is whole and the session never restarted
[ "$(grep -c 'uploadType=resumable' "$T_TMP/stream-503-mid-chunk.proxy.log")" = 1 ] &&
    pass "stream-503-mid-chunk: one session only (never restarted from the start)" ||
    fail "stream-503-mid-chunk: one session only" "$(grep -c 'uploadType=resumable' "$T_TMP/stream-503-mid-chunk.proxy.log")"

# ---- parallel parts ----
survives parts-503 503 "$SRC" "503:POST:uploadType=multipart:3" "$C3"
survives parts-reset reset "$SRC" "reset:POST:uploadType=multipart:2" "$C3"
survives compose-503 503 "$SRC" "503:POST:/compose:2" "$C3"
# 72 parts of 256K: two intermediates composed at once, then the object; the first two compose requests fail
MID=$T_TMP/mid
mkdir -p "$MID"
openssl enc -aes-128-ctr -pass pass:mid -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $((72 * 262144 - 50000)) > "$MID/a.bin"
DCHUNK=256K survives intermediates-503 503 "$MID" "503:POST:/compose:2" "$C3"
survives part-stall-past-timeout stall "$SRC" "stall:POST:uploadType=multipart:1:6" "$C3" "timeout = 2"
# a single-request upload whose answer is lost: the retry meets ifGenerationMatch=0 (412), and the
# object there is this upload's (size, CRC32C): taken as done, not stored twice
survives single-answer-lost 500after "$SMALL" "500after:POST:uploadType=multipart:1"
expect_match "single-answer-lost: the plugin says an earlier attempt stored it" "stored by an earlier attempt" \
    "$(cat "$T_TMP/single-answer-lost.err")"
# a reset while restore reads a range
start_proxy restore-reset "reset:GET:alt=media:1"
write_config "$T_TMP/rr.ini" "parts-503/" "$SRC"
rm -rf "$T_TMP/restore-parts-503" && mkdir -p "$T_TMP/restore-parts-503"
check "reset during a ranged GET: restore succeeds" "$ARCA" -c "$T_TMP/rr.ini" restore p latest --into r
[ "$(fired reset)" -ge 1 ] && pass "reset during a ranged GET: the fault was injected" ||
    fail "reset during a ranged GET: the fault was injected" "$(tail -5 "$PLOG")"
diff -r "$SRC" "$T_TMP/restore-parts-503/" >/dev/null && pass "reset during a ranged GET: restored tree is identical" ||
    fail "reset during a ranged GET: restored tree is identical" "differs"

# ---- faults that do not go away: bounded retries, then a clean failure ----
fails_cleanly session-gone gone "$SRC" "gone:PUT:upload_id=:always" "HTTP 410" "$C1"
fails_cleanly chunks-always-503 503mid "$SRC" "503mid:PUT:upload_id=:always" "gave up after [0-9]+ attempts" \
    "$C1" "retries = 3" "retry_time = 10"
fails_cleanly parts-always-503 503 "$SRC" "503:POST:uploadType=multipart:always" "gave up after [0-9]+ attempts" \
    "$C3" "retries = 2"
fails_cleanly compose-always-503 503 "$SRC" "503:POST:/compose:always" "cannot compose.*gave up after" "$C3" "retries = 2"
DCHUNK=256K fails_cleanly intermediates-always-503 503 "$MID" "503:POST:/compose:always" "cannot compose.*gave up after" \
    "$C3" "retries = 2"
fails_cleanly parts-always-stall stall "$SRC" "stall:POST:uploadType=multipart:always:30" "no progress for 1 s" \
    "$C3" "timeout = 1" "retries = 5" "retry_time = 4"
