#!/usr/bin/env bash
# arca cleanup PIPELINE [--older-than AGE] [--dry-run]: what SIGKILLed backups
# left behind (a hidden temporary on an nfs path, an unfinished multipart
# upload on S3 against moto) is listed by --dry-run, kept while younger than
# AGE, removed otherwise, and only for the pipeline asked about.
SUITE=cleanup
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so" "$BUILD/plugins/s3.so" openssl

S=$T_TMP/src B=$T_TMP/bk
mkdir -p "$S" "$B"
openssl enc -aes-128-ctr -pass pass:cleanup -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 300000000 > "$S/big"
M=$T_TMP/moto
envtxt=$("$ROOT/tests/servers/moto.sh" start "$M" clean 2>"$T_TMP/moto.err") || peer_failed moto "$T_TMP/moto.err"
on_exit "'$ROOT/tests/servers/moto.sh' stop '$M'"
eval "$envtxt"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
cat > "$T_TMP/arca.ini" <<EOF
[source s]
plugin = files
path = $S
[destination d]
plugin = nfs
path = $B
[destination s3]
plugin = s3
endpoint = $S3_ENDPOINT
region = us-east-1
bucket = clean
access_key_id = $S3_KEY
secret_access_key = $S3_SECRET
part_size = 5M
upload_concurrency = 2
[pipeline p]
source = s
destination = d
compression = zstd:19
[pipeline other]
source = s
destination = d
compression = zstd:19
[pipeline up]
source = s
destination = s3
compression = zstd:19
EOF
A() { "$ARCA" -c "$T_TMP/arca.ini" "$@"; }
# kill_mid PIPELINE TEST-CMD: starts a backup, SIGKILLs it once TEST-CMD succeeds
kill_mid() {
    "$ARCA" -c "$T_TMP/arca.ini" backup "$1" >/dev/null 2>&1 &
    local pid=$! n
    for n in $(seq 1 200); do eval "$2" && break; sleep 0.1; done
    kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
}
uploads() { "$ROOT/tests/servers/moto.sh" aws "$M" s3api list-multipart-uploads --bucket clean --output text \
    --query 'Uploads[].Key' | grep -v '^None$'; }

# ---- nfs path: hidden temporaries ----
kill_mid p '[ -n "$(find "$B" -name ".arca-tmp.p.*" -size +100k)" ]'
kill_mid other '[ -n "$(find "$B" -name ".arca-tmp.other.*" -size +100k)" ]'
[ "$(ls -A "$B" | grep -c '^\.arca-tmp\.')" = 2 ] && pass "two SIGKILLed backups left two temporaries" \
    || fail "two SIGKILLed backups left two temporaries" "$(ls -A "$B")"
expect_exit "cleanup p (default: older than 24h) keeps a young temporary" 0 A cleanup p
expect_match "... and says nothing was to clean" "nothing to clean up at destination 'd'" "$OUT"
expect_exit "cleanup p --older-than 0 --dry-run" 0 A cleanup p --older-than 0 --dry-run
expect_match "... names p's temporary by the object it was for" "would remove destination 'd' \(nfs\): p\.[0-9T.]+Z-[0-9a-f]+\.arca" "$OUT"
grep -q "other\." <<<"$OUT" && fail "... and not the other pipeline's" "$OUT" || pass "... and not the other pipeline's"
[ "$(ls -A "$B" | grep -c '^\.arca-tmp\.')" = 2 ] && pass "... and removes nothing" || fail "... and removes nothing" "$(ls -A "$B")"
expect_exit "cleanup p --older-than 0" 0 A cleanup p --older-than 0
expect_match "... removes it" "removed destination 'd' \(nfs\): p\." "$OUT"
[ "$(ls -A "$B" | grep -c '^\.arca-tmp\.p\.')" = 0 ] && [ "$(ls -A "$B" | grep -c '^\.arca-tmp\.other\.')" = 1 ] \
    && pass "... only p's temporary is gone" || fail "... only p's temporary is gone" "$(ls -A "$B")"
expect_exit "cleanup other --older-than=0" 0 A cleanup other --older-than=0
[ -z "$(ls -A "$B")" ] && pass "... the destination is empty" || fail "... the destination is empty" "$(ls -A "$B")"
expect_exit "a bad age is a usage error" 2 A cleanup p --older-than soon

# ---- S3: an unfinished multipart upload ----
kill_mid up '[ -n "$(uploads)" ]'
[ -n "$(uploads)" ] && pass "a SIGKILLed multipart backup left an unfinished upload" || fail "a SIGKILLed multipart backup left an unfinished upload" ""
expect_exit "cleanup up --older-than 0 --dry-run" 0 A cleanup up --older-than 0 --dry-run
expect_match "... lists the upload" "would remove destination 's3' \(s3\): up\." "$OUT"
[ -n "$(uploads)" ] && pass "... and leaves it" || fail "... and leaves it" ""
expect_exit "cleanup up --older-than 0" 0 A cleanup up --older-than 0
[ -z "$(uploads)" ] && pass "... ListMultipartUploads is empty after it" || fail "... ListMultipartUploads is empty after it" "$(uploads)"
