#!/usr/bin/env bash
# The s3 destination against servers that misbehave (tests/servers/bads3.py):
# every answer has a hard cap and every request a deadline, so an endless
# listing or error body, a server repeating its continuation token, one that
# drips a byte every 2 s, a HEAD claiming 2^63 bytes and a CompleteMultipartUpload
# answer cut after <ETag> each end quickly with a clear error, little memory and
# nothing visible.
SUITE=s3_bounds
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/s3.so" python3 /usr/bin/time

S=$T_TMP/src
mkdir -p "$S"
head -c 12000000 /dev/urandom > "$S/big.bin"
# serve MODE [CATALOGUE]: starts bads3.py, sets PORT
serve() {
    local pf=$T_TMP/port.$1
    rm -f "$pf" "$pf.log"
    python3 "$ROOT/tests/servers/bads3.py" "$1" "$pf" ${2:+"$2"} >"$T_TMP/bads3.$1.log" 2>&1 &
    local pid=$!
    on_exit "kill $pid"
    for _ in $(seq 1 50); do [ -s "$pf" ] && break; sleep 0.1; done
    PORT=$(cat "$pf")
    LOG=$pf.log
    cat > "$T_TMP/$1.ini" <<EOF
[source s]
plugin = files
path = $S
[destination d]
plugin = s3
endpoint = http://127.0.0.1:$PORT
region = us-east-1
bucket = b
access_key_id = AKIDEXAMPLE
secret_access_key = secret
part_size = 5M
timeout = 3
retries = 2
retry_time = 20
[pipeline p]
source = s
destination = d
EOF
}
# timed NAME WANT_RC LIMIT_S CMD...: exit code, wall time under LIMIT_S, RSS under 100 MiB
timed() {
    local name=$1 want=$2 limit=$3; shift 3
    local t0=$SECONDS rc=0
    OUT=$(/usr/bin/time -f '%M' -o "$T_TMP/rss" timeout 120 "$@" 2>&1) || rc=$?
    local s=$((SECONDS - t0)) kb; kb=$(tail -n 1 "$T_TMP/rss" 2>/dev/null || echo 0)
    if [ "$rc" = "$want" ] && [ "$s" -le "$limit" ] && [ "${kb:-0}" -lt 102400 ]; then
        pass "$name: exit $rc in $s s, $((kb / 1024)) MiB"
    else
        fail "$name: exit $want within $limit s under 100 MiB" "exit $rc after $s s, $((kb / 1024)) MiB: $(tail -c 400 <<<"$OUT")"
    fi
}

serve endless-list
timed "an endless 200 listing" 1 10 "$ARCA" -c "$T_TMP/endless-list.ini" list p
expect_match "... is cut off and said so" "longer than 16384 KiB, cut off" "$OUT"

serve endless-500
timed "an endless 500 body" 1 10 "$ARCA" -c "$T_TMP/endless-500.ini" list p
expect_match "... is cut off and said so" "HTTP 500 with an answer longer than 64 KiB" "$OUT"

serve repeat-token
timed "a server repeating its continuation token" 1 10 "$ARCA" -c "$T_TMP/repeat-token.ini" list p
expect_match "... is stopped, naming the token" "repeats the continuation token 'SAMETOKEN'" "$OUT"
n=$(grep -c "list-type=2" "$LOG")
[ "$n" -le 3 ] && pass "... after $n requests" || fail "... after a few requests" "$n requests"

serve drip
timed "a listing dripped a byte every 2 s" 1 30 "$ARCA" -c "$T_TMP/drip.ini" list p
expect_match "... ends by its deadline" "not answered within its deadline" "$OUT"

# a real catalogue, served as it is, with HEAD answers that lie
printf '%s\n' "$(printf 'd' | xxd -p)" > "$T_TMP/one.hex"
CID=$(python3 "$ROOT/tests/tools/mkarchive.py" "$T_TMP/p.arca" p "$T_TMP/one.hex")
mv "$T_TMP/p.manifest.json" "$T_TMP/p.$CID.manifest.json"
serve huge-head "$T_TMP/p.$CID.manifest.json"
timed "list where HEAD claims 2^63 bytes" 0 10 "$ARCA" -c "$T_TMP/huge-head.ini" list p
expect_match "... shows the backup from the catalogue's start" "^$CID " "$OUT"
grep -q "^HEAD" "$LOG" && fail "... without any HEAD (the listing gave the sizes)" "$(grep -c ^HEAD "$LOG") HEADs" \
    || pass "... without any HEAD (the listing gave the sizes)"
timed "verify where HEAD claims 2^63 bytes (an integrity failure)" 3 10 "$ARCA" -c "$T_TMP/huge-head.ini" verify p "$CID"
expect_match "... refused" "claims 9223372036854775807 bytes, more than an S3 object can hold" "$OUT"

serve cut-complete
timed "a CompleteMultipartUpload answer cut after <ETag>" 1 60 "$ARCA" -c "$T_TMP/cut-complete.ini" backup p
expect_match "... is not taken for a completed upload" "without a complete CompleteMultipartUploadResult" "$OUT"
grep -q "^DELETE .*uploadId=UPLOAD1" "$LOG" && pass "... and the upload is aborted" || fail "... and the upload is aborted" "$(cat "$LOG")"
