#!/usr/bin/env bash
# The s3 destination against a real Ceph RADOS Gateway (tests/servers/rgw.sh):
# round trips (one PUT, multipart) over HTTP and HTTPS; object lock checked on
# the stored objects, not assumed (RGW 16 drops the lock headers of
# CreateMultipartUpload: arca applies the retention itself, or fails), and a
# locked backup is not "deleted"; sse asked for but not applied is a failure;
# TLS: ca_file, a name the certificate lacks, verify_tls = false, a CA file
# that is not PEM, the wrong scheme for a port (fast, with a hint, one exit code
# everywhere); virtual-hosted addressing through a name in a private /etc/hosts;
# listing failures (wrong secret, missing bucket) are errors, not "no backups".
SUITE=s3_rgw
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/s3.so" unshare
G=$T_TMP/rgw
envtxt=$("$ROOT/tests/servers/rgw.sh" start "$G" 2>"$T_TMP/rgw.err") || peer_failed "Ceph RGW" "$T_TMP/rgw.err"
on_exit "'$ROOT/tests/servers/rgw.sh' stop '$G'"
eval "$envtxt"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_CA_BUNDLE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
aws() { AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_DEFAULT_REGION=$S3_REGION \
        /usr/bin/aws --endpoint-url "$S3_ENDPOINT" "$@"; }
aws s3api create-bucket --bucket plain >/dev/null || { fail "create bucket plain" ""; exit 0; }
aws s3api create-bucket --bucket locked --object-lock-enabled-for-bucket >/dev/null || { fail "create bucket locked" ""; exit 0; }
aws s3api create-bucket --bucket vhost >/dev/null

S=$T_TMP/src R=$T_TMP/r
mkdir -p "$S/d" "$R"
echo small > "$S/d/small.txt"
head -c 23000000 /dev/urandom > "$S/big.bin"
# a private /etc/hosts: s3.test, its virtual-hosted names and a name the certificate lacks
printf '127.0.0.1 localhost s3.test vhost.s3.test wrong.test\n' > "$T_TMP/hosts"
with_hosts() { unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$T_TMP/hosts" "$@"; }

# ini NAME [extra destination lines...] -> $T_TMP/NAME.ini with pipeline p into destination d
ini() {
    local name=$1; shift
    {
        printf '[arca]\nchunk_size = 1M\n[source s]\nplugin = files\npath = %s\n[source r]\nplugin = files\npath = %s\n' "$S" "$R"
        printf '[destination d]\nplugin = s3\nregion = %s\naccess_key_id = %s\nsecret_access_key = %s\npart_size = 5M\n' \
            "$S3_REGION" "$S3_KEY" "$S3_SECRET"
        printf 'retries = 2\nretry_time = 10\ntimeout = 10\n'
        printf '%s\n' "$@"
        printf '[pipeline p]\nsource = s\ndestination = d\n'
    } > "$T_TMP/$name.ini"
}
A() { local n=$1; shift; "$ARCA" -c "$T_TMP/$n.ini" "$@"; }
uploads() { aws s3api list-multipart-uploads --bucket "$1" --output text --query 'Uploads[].Key' | grep -v '^None$'; }
objects() { aws s3api list-objects-v2 --bucket "$1" --output text --query 'Contents[].Key' | grep -v '^None$'; }

# ---- round trips over HTTP and HTTPS ----
ini http "endpoint = $S3_ENDPOINT" "bucket = plain" "prefix = h/"
expect_exit "backup to RGW over HTTP (multipart)" 0 A http backup p
ID=$(tail -n 1 <<<"$OUT")
expect_exit "verify" 0 A http verify p "$ID"
expect_exit "restore" 0 A http restore p "$ID" --into r
check "... byte-identical" diff -r "$S" "$R"
rm -rf "$R"; mkdir -p "$R"
ini https "endpoint = $S3_TLS_ENDPOINT" "bucket = plain" "prefix = t/" "ca_file = $S3_CA"
expect_exit "backup over HTTPS with ca_file" 0 A https backup p
expect_exit "... verify" 0 A https verify p latest
expect_exit "... restore" 0 A https restore p latest --into r
check "... byte-identical" diff -r "$S" "$R"
rm -rf "$R"; mkdir -p "$R"
[ -z "$(uploads plain)" ] && pass "no multipart upload is left" || fail "no multipart upload is left" "$(uploads plain)"

# ---- TLS: what went wrong, said plainly, one exit code in every command ----
ini noca "endpoint = $S3_TLS_ENDPOINT" "bucket = plain" "prefix = t/"
expect_exit "HTTPS without ca_file: backup exits 2" 2 A noca backup p
expect_match "... with curl's reason and the ca_file hint" "certificate.*set ca_file to the CA" "$OUT"
expect_exit "... list exits 2 too" 2 A noca list p
expect_match "... with the same hint" "set ca_file" "$OUT"
ini wrongname "endpoint = https://wrong.test:$S3_TLS_PORT" "bucket = plain" "prefix = t/" "ca_file = $S3_CA"
rc=0; OUT=$(with_hosts "$ARCA" -c "$T_TMP/wrongname.ini" list p 2>&1) || rc=$?
[ "$rc" = 2 ] && pass "a host name the certificate lacks: list exits 2" || fail "a host name the certificate lacks: list exits 2" "rc=$rc $OUT"
expect_match "... naming the name, not blaming ca_file" "wrong.test.*not issued for this host name" "$OUT"
grep -q "set ca_file" <<<"$OUT" && fail "... and not suggesting ca_file" "$OUT" || pass "... and not suggesting ca_file"
ini notls "endpoint = $S3_TLS_ENDPOINT" "bucket = plain" "prefix = t/" "verify_tls = false"
expect_exit "verify_tls = false: list works" 0 A notls list p
expect_match "... with a warning" "verify_tls = false" "$OUT"
printf 'not a certificate\n' > "$T_TMP/bad.pem"
ini badpem "endpoint = $S3_TLS_ENDPOINT" "bucket = plain" "ca_file = $T_TMP/bad.pem"
expect_exit "a ca_file that is not PEM: config check exits 2" 2 A badpem config check
expect_match "... naming it" "ca_file '$T_TMP/bad.pem' holds no PEM certificate" "$OUT"
ini wrongscheme "endpoint = https://127.0.0.1:${S3_ENDPOINT##*:}" "bucket = plain"
t0=$SECONDS
expect_exit "https:// to the plain HTTP port: list exits 2" 2 A wrongscheme list p
[ $((SECONDS - t0)) -lt 5 ] && pass "... at once, not after retries ($((SECONDS - t0)) s)" || fail "... at once" "$((SECONDS - t0)) s"
expect_match "... with a hint about the scheme" "plain HTTP, not TLS: use http://" "$OUT"
expect_exit "... backup exits 2 too" 2 A wrongscheme backup p
ini wrongscheme2 "endpoint = http://127.0.0.1:$S3_TLS_PORT" "bucket = plain"
t0=$SECONDS
rc=0; OUT=$(A wrongscheme2 list p 2>&1) || rc=$?
[ "$rc" != 0 ] && [ $((SECONDS - t0)) -lt 15 ] && pass "http:// to the TLS port fails in $((SECONDS - t0)) s (exit $rc)" \
    || fail "http:// to the TLS port fails quickly" "rc=$rc after $((SECONDS - t0)) s: $OUT"
expect_match "... saying the port may speak TLS" "https://" "$OUT"
rc2=0; OUT=$(A wrongscheme2 backup p 2>&1) || rc2=$?
[ "$rc2" = "$rc" ] && pass "... backup exits $rc too" || fail "... backup exits the same as list ($rc)" "rc=$rc2 $OUT"
rc2=0; OUT=$(with_hosts "$ARCA" -c "$T_TMP/wrongname.ini" backup p 2>&1) || rc2=$?
[ "$rc2" = 2 ] && pass "a host name the certificate lacks: backup exits 2 too" \
    || fail "a host name the certificate lacks: backup exits 2 too" "rc=$rc2 $OUT"

# ---- virtual-hosted addressing: vhost.s3.test ----
ini vhost "endpoint = https://s3.test:$S3_TLS_PORT" "bucket = vhost" "path_style = false" "ca_file = $S3_CA"
rc=0; OUT=$(with_hosts "$ARCA" -c "$T_TMP/vhost.ini" backup p 2>&1) || rc=$?
[ "$rc" = 0 ] && pass "virtual-hosted backup (https://vhost.s3.test)" || fail "virtual-hosted backup" "rc=$rc $OUT"
rc=0; OUT=$(with_hosts "$ARCA" -c "$T_TMP/vhost.ini" restore p latest --into r 2>&1) || rc=$?
[ "$rc" = 0 ] && diff -r "$S" "$R" >/dev/null && pass "... restores byte-identical" || fail "... restores" "rc=$rc $OUT"
rm -rf "$R"; mkdir -p "$R"
[ -n "$(objects vhost)" ] && pass "... the objects are in bucket vhost" || fail "... the objects are in bucket vhost" ""

# ---- object lock: checked on the stored objects ----
ini lock "endpoint = $S3_ENDPOINT" "bucket = locked" "object_lock_mode = GOVERNANCE" "object_lock_retain_until = 2d"
expect_exit "multipart backup to an object-lock bucket" 0 A lock -v backup p
LID=$(tail -n 1 <<<"$OUT")
expect_match "... RGW dropped the multipart lock headers: arca set the retention" "locked by PutObjectRetention" "$OUT"
for k in "p.$LID.arca" "p.$LID.manifest.json"; do
    ret=$(aws s3api get-object-retention --bucket locked --key "$k" --output text 2>&1)
    expect_match "$k is locked in GOVERNANCE mode" "GOVERNANCE" "$ret"
done
expect_exit "delete of the locked backup fails" 1 A lock delete p "$LID"
expect_match "... saying it is locked and until when" "locked in GOVERNANCE mode until 20[0-9-]+T.*not deleted" "$OUT"
grep -q "^deleted" <<<"$OUT" && fail "... and not claiming it was deleted" "$OUT" || pass "... and not claiming it was deleted"
expect_match "... list still shows it" "^$LID " "$(A lock list p 2>&1)"
vers=$(aws s3api list-object-versions --bucket locked --output text --query 'DeleteMarkers[].Key' | grep -v '^None$')
[ -z "$vers" ] && pass "... and no delete marker hides it" || fail "... and no delete marker hides it" "$vers"

# ---- sse asked for, not applied: a failure, and nothing left ----
ini sse "endpoint = $S3_TLS_ENDPOINT" "bucket = plain" "prefix = sse/" "ca_file = $S3_CA" "sse = AES256"
rc=0; OUT=$(A sse backup p 2>&1) || rc=$?
if [ "$rc" = 0 ]; then
    enc=$(aws s3api head-object --bucket plain --key "sse/p.$(tail -n 1 <<<"$OUT").arca" --query ServerSideEncryption --output text 2>&1)
    [ "$enc" = AES256 ] && pass "sse = AES256: this RGW encrypts, and says so" || fail "sse = AES256 reported ok without encryption" "$enc"
else
    pass "sse = AES256 that RGW does not apply: the backup fails (exit $rc)"
    expect_match "... saying the object was stored without encryption" "sse = AES256 was asked for, but the server stored it without server-side encryption" "$OUT"
    [ -z "$(objects plain | grep '^sse/')" ] && pass "... and nothing is left under the prefix" || fail "... nothing left" "$(objects plain | grep '^sse/')"
    [ -z "$(uploads plain)" ] && pass "... no upload either" || fail "... no upload either" "$(uploads plain)"
fi

# ---- listing failures are errors ----
ini badkey "endpoint = $S3_ENDPOINT" "bucket = plain" "prefix = h/"
sed -i "s/^secret_access_key = .*/secret_access_key = wrongwrongwrong/" "$T_TMP/badkey.ini"
expect_exit "a wrong secret: list exits 1" 1 A badkey list p
expect_match "... with the server's reason" "403 SignatureDoesNotMatch" "$OUT"
grep -q "no backups" <<<"$OUT" && fail "... not 'no backups'" "$OUT" || pass "... not 'no backups'"
expect_exit "... restore latest exits 1" 1 A badkey restore p latest --into r
grep -q "no backups" <<<"$OUT" && fail "... not 'no backups'" "$OUT" || pass "... not 'no backups'"
ini nobucket "endpoint = $S3_ENDPOINT" "bucket = nosuchbucket"
expect_exit "a missing bucket: list exits 1" 1 A nobucket list p
expect_match "... NoSuchBucket named" "NoSuchBucket" "$OUT"
