#!/usr/bin/env bash
# s3 destination against a second server, s3rver: the same round trip as
# against moto (a small archive, a multi-part one), with a folder prefix
# ("dir/sub/", which moto cannot sign-check), paged listing, delete, and the
# aws CLI reading what arca wrote.
SUITE=s3_s3rver
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/s3.so"
S=$T_TMP/s3rver
BUCKET=arca-s3rver
rc=0
envtxt=$("$ROOT/tests/servers/s3rver.sh" start "$S" "$BUCKET" 2>"$T_TMP/s3rver.err") || rc=$?
on_exit "'$ROOT/tests/servers/s3rver.sh' stop '$S'"
[ "$rc" = 0 ] || peer_failed s3rver "$T_TMP/s3rver.err"
eval "$envtxt"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
aws() {
    env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_DEFAULT_REGION=us-east-1 \
        /usr/bin/aws --endpoint-url "$S3_ENDPOINT" "$@"
}
objects() { aws s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --output text --query 'Contents[].[Key,ETag]' |
    grep -v '^None$' | LC_ALL=C sort; }

SRC=$T_TMP/src
mkdir -p "$SRC/d"
head -c 12000000 /dev/urandom > "$SRC/d/big.bin" # 3 parts of 5 MiB
printf 'hello\n' > "$SRC/a.txt"

# write_config FILE PREFIX EXTRA...
write_config() {
    local f=$1 prefix=$2; shift 2
    local r=$T_TMP/restore-${prefix//\//_}
    mkdir -p "$r"
    {
        printf '[arca]\nchunk_size = 1M\n[source s]\nplugin = files\npath = %s\n' "$SRC"
        printf '[source r]\nplugin = files\npath = %s\n' "$r"
        printf '[destination d]\nplugin = s3\nendpoint = %s\nbucket = %s\nprefix = %s\n' "$S3_ENDPOINT" "$BUCKET" "$prefix"
        printf 'access_key_id = %s\nsecret_access_key = %s\n' "$S3_KEY" "$S3_SECRET"
        for l in "$@"; do printf '%s\n' "$l"; done
        printf '[pipeline p]\nsource = s\ndestination = d\n'
    } > "$f"
    RESTORED=$r
}

round_trip() {
    local name=$1 prefix=$2 minparts=$3; shift 3
    local cfg=$T_TMP/$name.ini id etag parts objs
    write_config "$cfg" "$prefix" "$@"
    if ! id=$("$ARCA" -c "$cfg" -v backup p 2>"$T_TMP/$name.err"); then
        fail "$name: backup" "$(tail -c 600 "$T_TMP/$name.err")"; return 1
    fi
    id=$(tail -n 1 <<<"$id"); ID=$id
    pass "$name: backup"
    objs=$(objects "$prefix" | cut -f1)
    [ "$objs" = "$(printf '%s\n' "${prefix}p.$id.arca" "${prefix}p.$id.manifest.json" | LC_ALL=C sort)" ] &&
        pass "$name: the bucket holds exactly <prefix>P.<id>.arca and .manifest.json" ||
        fail "$name: the bucket holds exactly <prefix>P.<id>.arca and .manifest.json" "$objs"
    # s3rver's multipart ETag has no -N: the plugin's own account of the upload
    parts=$(sed -n "s/.*'p.$id.arca': [0-9]* bytes in \([0-9]*\) parts.*/\1/p" "$T_TMP/$name.err"); parts=${parts:-1}
    [ "$parts" -ge "$minparts" ] && pass "$name: archive stored in $parts part(s)" ||
        fail "$name: archive stored in >= $minparts part(s)" "$(grep parts "$T_TMP/$name.err")"
    expect_match "$name: list shows the backup" "^$id " "$("$ARCA" -c "$cfg" list p 2>&1)"
    check "$name: verify" "$ARCA" -c "$cfg" verify p "$id"
    check "$name: restore" "$ARCA" -c "$cfg" restore p "$id" --into r
    diff -r "$SRC" "$RESTORED" >/dev/null 2>&1 && pass "$name: restored tree is identical" ||
        fail "$name: restored tree is identical" "differs"
}

round_trip small "dir/one/" 1 "part_size = 16M"
SMALLID=$ID
round_trip multipart "dir/sub/" 3 "part_size = 5M" "upload_concurrency = 4" "list_max_keys = 1"
MP=$ID
mkdir -p "$T_TMP/dl"
if aws s3 cp --only-show-errors "s3://$BUCKET/dir/sub/p.$MP.arca" "$T_TMP/dl/x.arca" 2>"$T_TMP/cp.err"; then
    check "arca verify FILE accepts the archive aws downloaded" "$ARCA" verify "$T_TMP/dl/x.arca"
else fail "aws s3 cp downloads the archive" "$(cat "$T_TMP/cp.err")"; fi
# the folder prefix keeps backups apart: "dir/sub/" lists only its own flat names, not dir/one/ nor dir/sub/x/
aws s3 cp --only-show-errors "s3://$BUCKET/dir/sub/p.$MP.manifest.json" "s3://$BUCKET/dir/sub/x/p.$MP.manifest.json"
out=$("$ARCA" -c "$T_TMP/multipart.ini" list p 2>&1)
expect_match "list under dir/sub/ shows its backup" "^$MP " "$out"
if [ "$(grep -c "$MP" <<<"$out")" = 1 ] && ! grep -q "x/" <<<"$out"; then pass "list ignores keys in deeper folders"
else fail "list ignores keys in deeper folders" "$out"; fi
if grep -q "^${SMALLID:-none} " <<<"$out"; then fail "list ignores other prefixes" "$out"; else pass "list ignores other prefixes"; fi
check "delete" "$ARCA" -c "$T_TMP/multipart.ini" delete p "$MP"
left=$(objects "dir/sub/p.$MP")
[ -z "$left" ] && pass "delete removes the archive and its manifest" || fail "delete removes both objects" "$left"
# (s3rver has no ListMultipartUploads; tests/e2e/s3.sh and s3_faults.sh check that against moto)
