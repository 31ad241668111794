#!/usr/bin/env bash
# s3 destination end to end against moto with SigV4 checking on: a small
# archive (one PUT) and a multi-part one round-trip; a wrong secret fails with
# SignatureDoesNotMatch named, exit 1; list (paged) and delete; secrets never
# printed or archived; Debian's aws CLI reads what arca wrote and arca restores
# what the aws CLI wrote; no multipart upload is ever left behind.
SUITE=s3
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/s3.so"
M=$T_TMP/moto
rc=0
envtxt=$("$ROOT/tests/servers/moto.sh" start "$M" arca-test 2>"$T_TMP/moto.err") || rc=$?
on_exit "'$ROOT/tests/servers/moto.sh' stop '$M'"
[ "$rc" = 0 ] || peer_failed moto "$T_TMP/moto.err"
eval "$envtxt"
BUCKET=arca-test
aws() { "$ROOT/tests/servers/moto.sh" aws "$M" "$@"; }
# keys under a prefix, one per line: KEY SIZE ETAG
objects() { aws s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --output text \
    --query 'Contents[].[Key,Size,ETag]' | grep -v '^None$' | LC_ALL=C sort; }
uploads() { aws s3api list-multipart-uploads --bucket "$BUCKET" --output text --query 'Uploads[].[Key,UploadId]' |
    grep -v '^None$'; }
# arca must not rely on the caller's AWS settings: everything comes from the config
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

SMALL=$T_TMP/small BIG=$T_TMP/big
mkdir -p "$SMALL/d" "$BIG"
printf 'hello\n' > "$SMALL/a.txt"; printf 'été\n' > "$SMALL/d/b é.txt"; : > "$SMALL/empty"
head -c 300000 /dev/urandom > "$SMALL/d/r.bin"
head -c 17000000 /dev/urandom > "$BIG/big.bin" # 17 MB incompressible: 4 parts of 5 MiB
printf 'x\n' > "$BIG/x.txt"

# write_config FILE SRC PREFIX [EXTRA LINE...]
write_config() {
    local f=$1 src=$2 prefix=$3; shift 3
    mkdir -p "$T_TMP/restore-$prefix"
    {
        printf '[arca]\nchunk_size = 1M\n[source s]\nplugin = files\npath = %s\n' "$src"
        printf '[source r]\nplugin = files\npath = %s\n' "$T_TMP/restore-$prefix"
        printf '[destination d]\nplugin = s3\nendpoint = %s\nbucket = %s\nprefix = %s\n' "$S3_ENDPOINT" "$BUCKET" "$prefix"
        printf 'access_key_id = %s\nsecret_access_key = %s\n' "$S3_KEY" "$S3_SECRET"
        for l in "$@"; do printf '%s\n' "$l"; done
        printf '[pipeline p]\nsource = s\ndestination = d\n'
    } > "$f"
}

# round_trip NAME SRC PREFIX MINPARTS [EXTRA...]: backup, objects, list, verify, restore, diff
round_trip() {
    local name=$1 src=$2 prefix=$3 minparts=$4; shift 4
    local cfg=$T_TMP/$name.ini id objs etag parts
    write_config "$cfg" "$src" "$prefix" "$@"
    if ! id=$("$ARCA" -c "$cfg" backup p 2>"$T_TMP/$name.err"); then
        fail "$name: backup" "$(tail -c 600 "$T_TMP/$name.err")"; return 1
    fi
    id=$(tail -n 1 <<<"$id"); ID=$id
    pass "$name: backup"
    objs=$(objects "$prefix" | cut -f1)
    if [ "$objs" = "$(printf '%s\n' "${prefix}p.$id.arca" "${prefix}p.$id.manifest.json" | LC_ALL=C sort)" ]; then
        pass "$name: the bucket holds exactly <prefix>P.<id>.arca and .manifest.json"
    else fail "$name: the bucket holds exactly <prefix>P.<id>.arca and .manifest.json" "$objs"; fi
    etag=$(objects "${prefix}p.$id.arca" | cut -f3)
    parts=$(sed -n 's/.*-\([0-9]*\)"$/\1/p' <<<"$etag"); parts=${parts:-1}
    if [ "$parts" -ge "$minparts" ] && { [ "$minparts" -gt 1 ] || [ "$parts" = 1 ]; }; then
        pass "$name: archive stored in $parts part(s) (ETag $etag)"
    else fail "$name: archive stored in >= $minparts part(s)" "ETag $etag"; fi
    expect_match "$name: list shows the backup" "^$id " "$("$ARCA" -c "$cfg" list p 2>&1)"
    check "$name: verify" "$ARCA" -c "$cfg" verify p "$id"
    check "$name: restore" "$ARCA" -c "$cfg" restore p "$id" --into r
    if diff -r "$src" "$T_TMP/restore-$prefix" >/dev/null 2>&1; then pass "$name: restored tree is identical"
    else fail "$name: restored tree is identical" "$(diff -r "$src" "$T_TMP/restore-$prefix" 2>&1 | head -5)"; fi
}

# ---- a small archive: one PUT ----
round_trip small "$SMALL" "small-" 1
SMALL_ID=$ID

# ---- a multi-part archive: >= 3 parts in flight ----
round_trip multipart "$BIG" "mp-" 3 "part_size = 5M" "upload_concurrency = 3"
MP_ID=$ID

# ---- a wrong secret: SignatureDoesNotMatch, exit 1, nothing left ----
write_config "$T_TMP/bad.ini" "$BIG" "bad-" "part_size = 5M"
sed -i "s|^secret_access_key = .*|secret_access_key = Wrong${S3_SECRET:5}|" "$T_TMP/bad.ini"
expect_exit "wrong secret: backup exits 1" 1 "$ARCA" -c "$T_TMP/bad.ini" backup p
expect_match "wrong secret: the error names SignatureDoesNotMatch" "SignatureDoesNotMatch" "$OUT"
expect_match "wrong secret: the error hints at secret_access_key and the clock" "hint: check secret_access_key.*clock" "$OUT"
expect_match "wrong secret: the error names the URL" "$S3_ENDPOINT/$BUCKET/bad-" "$OUT"
if grep -qF -- "${S3_SECRET:5}" <<<"$OUT"; then fail "wrong secret: the secret is not printed" "$OUT"
else pass "wrong secret: the secret is not printed"; fi
[ -z "$(objects bad-)" ] && pass "wrong secret: nothing stored" || fail "wrong secret: nothing stored" "$(objects bad-)"
expect_exit "wrong secret: list exits 1" 1 "$ARCA" -c "$T_TMP/bad.ini" list p

# ---- secrets stay out of logs, listings and archives ----
out=$("$ARCA" -c "$T_TMP/multipart.ini" -v list p 2>&1; "$ARCA" -c "$T_TMP/multipart.ini" --json inspect p "$MP_ID" 2>&1
      "$ARCA" -c "$T_TMP/multipart.ini" config check 2>&1; "$ARCA" -c "$T_TMP/multipart.ini" -v verify p "$MP_ID" 2>&1)
if grep -qF -- "$S3_SECRET" <<<"$out"; then fail "the secret never appears in output (-v list, inspect, config check, verify)" "found"
else pass "the secret never appears in output (-v list, inspect, config check, verify)"; fi

# ---- interoperability with Debian's aws CLI ----
DL=$T_TMP/dl; mkdir -p "$DL"
if aws s3 cp --only-show-errors "s3://$BUCKET/mp-p.$MP_ID.arca" "$DL/$MP_ID.arca" 2>"$T_TMP/awscp.err"; then
    pass "aws s3 cp downloads the archive arca uploaded"
    check "arca verify FILE accepts the archive aws downloaded" "$ARCA" verify "$DL/$MP_ID.arca"
    if grep -aqF -- "$S3_SECRET" "$DL/$MP_ID.arca" || grep -aqF -- "$S3_KEY" "$DL/$MP_ID.arca"; then
        fail "the archive holds no credential" "found"
    else pass "the archive holds no credential"; fi
else fail "aws s3 cp downloads the archive arca uploaded" "$(cat "$T_TMP/awscp.err")"; fi
# aws uploads a backup (its own multipart for the 17 MB archive); arca lists and restores it
aws s3 cp --only-show-errors "s3://$BUCKET/mp-p.$MP_ID.manifest.json" "$DL/$MP_ID.manifest.json"
write_config "$T_TMP/fromaws.ini" "$BIG" "fromaws-"
aws s3 cp --only-show-errors "$DL/$MP_ID.arca" "s3://$BUCKET/fromaws-p.$MP_ID.arca" &&
    aws s3 cp --only-show-errors "$DL/$MP_ID.manifest.json" "s3://$BUCKET/fromaws-p.$MP_ID.manifest.json"
expect_match "aws-uploaded archive: multipart by aws (ETag -N)" '"[0-9a-f]+-[0-9]+"' "$(objects "fromaws-p.$MP_ID.arca")"
expect_match "aws-uploaded archive: arca lists it" "^$MP_ID " "$("$ARCA" -c "$T_TMP/fromaws.ini" list p 2>&1)"
check "aws-uploaded archive: arca restores it" "$ARCA" -c "$T_TMP/fromaws.ini" restore p latest --into r
if diff -r "$BIG" "$T_TMP/restore-fromaws-" >/dev/null 2>&1; then pass "aws-uploaded archive: restored tree is identical"
else fail "aws-uploaded archive: restored tree is identical" "differs"; fi

# ---- list pages through continuation tokens; delete removes both objects ----
write_config "$T_TMP/pages.ini" "$SMALL" "small-" "list_max_keys = 1"
id2=$("$ARCA" -c "$T_TMP/pages.ini" backup p 2>/dev/null | tail -n 1)
out=$("$ARCA" -c "$T_TMP/pages.ini" list p 2>&1)
expect_match "list with one key per page: first backup" "^$SMALL_ID " "$out"
expect_match "list with one key per page: second backup" "^$id2 " "$out"
check "delete" "$ARCA" -c "$T_TMP/pages.ini" delete p "$SMALL_ID"
left=$(objects "small-$SMALL_ID")
[ -z "$left" ] && pass "delete removes the archive and its manifest" || fail "delete removes the archive and its manifest" "$left"
out=$("$ARCA" -c "$T_TMP/pages.ini" list p 2>&1)
if grep -q "$SMALL_ID" <<<"$out"; then fail "list no longer shows the deleted backup" "$out"
else pass "list no longer shows the deleted backup"; fi
expect_match "list still shows the other backup" "^$id2 " "$out"
rc=0; out=$("$ARCA" -c "$T_TMP/pages.ini" delete p "$SMALL_ID" 2>&1) || rc=$?
[ "$rc" != 0 ] && pass "deleting a missing backup fails (exit $rc)" || fail "deleting a missing backup fails" "$out"

# ---- nothing half-done anywhere ----
left=$(uploads)
[ -z "$left" ] && pass "ListMultipartUploads is empty after every run" || fail "ListMultipartUploads is empty after every run" "$left"
