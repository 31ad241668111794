#!/usr/bin/env bash
# One read of the source feeds three destinations: s3 (moto, SigV4 checked),
# gcs (fake-gcs-server, parallel parts) and nfs (a path). All three hold the
# same archive bytes, list shows the backup at each, each restores it; and
# when gcs fails mid-upload (the fault proxy answers 503 to every part), the
# backup exits 1 and no destination shows anything, temporaries included.
SUITE=gcs_fanout
. "$(dirname "$0")/../lib.sh"

PY=$ROOT/.deps/venv/bin/python
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/gcs.so" "$BUILD/plugins/s3.so" "$BUILD/plugins/nfs.so" "$PY" openssl
G=$T_TMP/gcs M=$T_TMP/moto
rc=0
envtxt=$("$ROOT/tests/servers/gcs.sh" start "$G" fan 2>"$T_TMP/gcs.err") || rc=$?
on_exit "'$ROOT/tests/servers/gcs.sh' stop '$G'"
[ "$rc" = 0 ] || peer_failed fake-gcs-server "$T_TMP/gcs.err"
eval "$envtxt"
rc=0
envtxt=$("$ROOT/tests/servers/moto.sh" start "$M" fan 2>"$T_TMP/moto.err") || rc=$?
on_exit "'$ROOT/tests/servers/moto.sh' stop '$M'"
[ "$rc" = 0 ] || peer_failed moto "$T_TMP/moto.err"
eval "$envtxt"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE GOOGLE_APPLICATION_CREDENTIALS
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
gpy() { "$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" "$@"; }
aws() { "$ROOT/tests/servers/moto.sh" aws "$M" "$@"; }

SRC=$T_TMP/src NFS=$T_TMP/nfs
mkdir -p "$SRC/d" "$NFS"
openssl enc -aes-128-ctr -pass pass:fan -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 12000000 > "$SRC/big.bin"
printf 'x\n' > "$SRC/d/x.txt"

PROXY_PID=
on_exit '[ -n "$PROXY_PID" ] && kill $PROXY_PID'
python3 "$ROOT/tests/servers/gcsfault.py" "${GCS_ENDPOINT##*:}" "$T_TMP/proxy.log" "503:POST:uploadType=multipart:always" \
    > "$T_TMP/proxy.port" 2>"$T_TMP/proxy.err" &
PROXY_PID=$!
for _ in $(seq 50); do [ -s "$T_TMP/proxy.port" ] && break; sleep 0.1; done

# config ENDPOINT PREFIX RESTORE-DIR
config() {
    mkdir -p "$3"
    cat <<EOF2
[arca]
chunk_size = 1M
[source s]
plugin = files
path = $SRC
[source r]
plugin = files
path = $3
[destination s3]
plugin = s3
endpoint = $S3_ENDPOINT
bucket = fan
prefix = $2
access_key_id = $S3_KEY
secret_access_key = $S3_SECRET
part_size = 5M
[destination gcs]
plugin = gcs
endpoint = $1
bucket = fan
prefix = $2
access_token = fan-token
chunk_size = 1M
upload_concurrency = 4
retries = 2
[destination nfs]
plugin = nfs
path = $NFS
[pipeline p]
source = s
destination = s3, gcs, nfs
EOF2
}
config "$GCS_ENDPOINT" ok- "$T_TMP/r1" > "$T_TMP/ok.ini"
if id=$("$ARCA" -c "$T_TMP/ok.ini" -v backup p 2>"$T_TMP/ok.err"); then
    id=$(tail -n 1 <<<"$id"); pass "fan-out s3 + gcs + nfs: one backup succeeds"
else fail "fan-out s3 + gcs + nfs: one backup succeeds" "$(tail -c 600 "$T_TMP/ok.err")"; id=none; fi
expect_match "the source was read once (one backup line)" "^1$" "$(grep -c 'info: backup ' "$T_TMP/ok.err")"
aws s3 cp --only-show-errors "s3://fan/ok-p.$id.arca" "$T_TMP/s3.arca"
gpy get fan "ok-p.$id.arca" "$T_TMP/gcs.arca"
if cmp -s "$T_TMP/s3.arca" "$T_TMP/gcs.arca" && cmp -s "$T_TMP/gcs.arca" "$NFS/p.$id.arca"; then
    pass "s3, gcs and nfs hold the same archive bytes"
else fail "s3, gcs and nfs hold the same archive bytes" "$(ls -l "$T_TMP"/*.arca "$NFS")"; fi
expect_match "list shows the backup at the three destinations" "^3$" \
    "$("$ARCA" -c "$T_TMP/ok.ini" list p 2>&1 | grep -c "^$id ")"
check "restore from the gcs destination" "$ARCA" -c "$T_TMP/ok.ini" restore p "$id" --into r --destination gcs
diff -r "$SRC" "$T_TMP/r1" >/dev/null && pass "restore from gcs: byte-identical" || fail "restore from gcs: byte-identical" "differs"

# ---- gcs fails mid-upload: nothing anywhere ----
config "http://127.0.0.1:$(cat "$T_TMP/proxy.port")" bad- "$T_TMP/r2" > "$T_TMP/bad.ini"
expect_exit "gcs failing mid-upload: the fan-out backup exits 1" 1 "$ARCA" -c "$T_TMP/bad.ini" backup p
expect_match "the error names the gcs destination" "destination 'gcs' \(gcs\)" "$OUT"
s3left=$(aws s3api list-objects-v2 --bucket fan --prefix bad- --output text --query 'Contents[].Key' | grep -v '^None$')
gleft=$(gpy ls fan bad-)
nleft=$(ls -A "$NFS" | grep -v "^p\.$id\.")
[ -z "$s3left$gleft$nleft" ] && pass "no destination shows the failed backup, no temporary or part object anywhere" ||
    fail "no destination shows the failed backup" "s3: $s3left gcs: $gleft nfs: $nleft"
up=$(aws s3api list-multipart-uploads --bucket fan --output text --query 'Uploads[].Key' | grep -v '^None$')
[ -z "$up" ] && pass "no multipart upload left at s3" || fail "no multipart upload left at s3" "$up"
