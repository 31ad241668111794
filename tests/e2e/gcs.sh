#!/usr/bin/env bash
# gcs destination end to end against fake-gcs-server (tests/servers/gcs.sh):
# round trips through one request, one resumable session (upload_concurrency 1)
# and parallel parts composed at commit (upload_concurrency 4), byte-identical;
# Google's own Python client downloads what arca uploaded (arca verify FILE
# accepts it) and uploads an archive arca restores; list pages past 1,000
# objects; delete; a retained backup is not deleted and arca says so; a hold
# the server does not apply fails the backup and leaves nothing; a missing
# bucket; secrets never printed or archived; part objects a SIGKILLed backup
# left are found and removed by `arca cleanup`.
SUITE=gcs
. "$(dirname "$0")/../lib.sh"

PY=$ROOT/.deps/venv/bin/python
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/gcs.so" "$PY" openssl
G=$T_TMP/gcs
rc=0
envtxt=$("$ROOT/tests/servers/gcs.sh" start "$G" arca-test arca-retain 2>"$T_TMP/gcs.err") || rc=$?
on_exit "'$ROOT/tests/servers/gcs.sh' stop '$G'"
[ "$rc" = 0 ] || peer_failed fake-gcs-server "$T_TMP/gcs.err"
eval "$envtxt"
BUCKET=arca-test
TOKEN=ya29.test-token-$RANDOM$RANDOM
# Google's Python client, anonymous (the emulator checks no credentials)
gpy() { "$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" "$@"; }
objects() { gpy ls "${2:-$BUCKET}" "$1" | cut -d' ' -f1 | LC_ALL=C sort; }
# arca must not pick up the caller's Google settings
unset GOOGLE_APPLICATION_CREDENTIALS
export CLOUDSDK_CONFIG=$T_TMP/no-gcloud GCE_METADATA_HOST=127.0.0.1:9

SMALL=$T_TMP/small BIG=$T_TMP/big
mkdir -p "$SMALL/d" "$BIG"
printf 'hello\n' > "$SMALL/a.txt"; printf 'été\n' > "$SMALL/d/b é.txt"; : > "$SMALL/empty"
head -c 300000 /dev/urandom > "$SMALL/d/r.bin"
openssl enc -aes-128-ctr -pass pass:gcs -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 21000000 > "$BIG/big.bin"
printf 'x\n' > "$BIG/x.txt"

# write_config FILE SRC PREFIX [EXTRA LINE...]
write_config() {
    local f=$1 src=$2 prefix=$3; shift 3
    mkdir -p "$T_TMP/restore-$prefix"
    {
        printf '[arca]\nchunk_size = 1M\n[source s]\nplugin = files\npath = %s\n' "$src"
        printf '[source r]\nplugin = files\npath = %s\n' "$T_TMP/restore-$prefix"
        printf '[destination d]\nplugin = gcs\nendpoint = %s\nbucket = %s\nprefix = %s\naccess_token = %s\n' \
            "$GCS_ENDPOINT" "$BUCKET" "$prefix" "$TOKEN"
        for l in "$@"; do printf '%s\n' "$l"; done
        printf '[pipeline p]\nsource = s\ndestination = d\n'
    } > "$f"
}

# round_trip NAME SRC PREFIX MODE-TEXT [EXTRA...]: backup, objects, mode, list, verify, restore, diff
round_trip() {
    local name=$1 src=$2 prefix=$3 mode=$4; shift 4
    local cfg=$T_TMP/$name.ini id objs
    write_config "$cfg" "$src" "$prefix" "$@"
    if ! id=$("$ARCA" -c "$cfg" "${V:--v}" backup p 2>"$T_TMP/$name.err"); then
        fail "$name: backup" "$(tail -c 600 "$T_TMP/$name.err")"; return 1
    fi
    id=$(tail -n 1 <<<"$id"); ID=$id
    pass "$name: backup"
    expect_match "$name: the archive went as $mode" "p\.$id\.arca': [0-9]+ bytes, $mode" "$(cat "$T_TMP/$name.err")"
    objs=$(objects "$prefix")
    if [ "$objs" = "$(printf '%s\n' "${prefix}p.$id.arca" "${prefix}p.$id.manifest.json" | LC_ALL=C sort)" ]; then
        pass "$name: the bucket holds exactly <prefix>P.<id>.arca and .manifest.json (no part object)"
    else fail "$name: the bucket holds exactly <prefix>P.<id>.arca and .manifest.json (no part object)" "$objs"; fi
    expect_match "$name: list shows the backup" "^$id " "$("$ARCA" -c "$cfg" list p 2>&1)"
    check "$name: verify" "$ARCA" -c "$cfg" verify p "$id"
    check "$name: restore" "$ARCA" -c "$cfg" restore p "$id" --into r
    if diff -r "$src" "$T_TMP/restore-$prefix" >/dev/null 2>&1; then pass "$name: restored tree is byte-identical"
    else fail "$name: restored tree is byte-identical" "$(diff -r "$src" "$T_TMP/restore-$prefix" 2>&1 | head -5)"; fi
}

round_trip small "$SMALL" "small/" "one request"
SMALL_ID=$ID
round_trip stream "$BIG" "stream/" "one resumable session" "chunk_size = 1M" "upload_concurrency = 1"
round_trip composed "$BIG" "composed/" "parallel parts composed" "chunk_size = 1M" "upload_concurrency = 4"
COMPOSED_ID=$ID
# more than 32 x 32 parts: a round of 33 intermediates, a round that composes only the first two of those
# again (the fewest bytes twice), then the object from 32 sources; several intermediates at once
MANY=$T_TMP/many
mkdir -p "$MANY"
openssl enc -aes-128-ctr -pass pass:many -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $((1040 * 262144 - 100000)) > "$MANY/m.bin"
V=-vv round_trip many-parts "$MANY" "many/" "parallel parts composed" "chunk_size = 256K" "upload_concurrency = 4"
expect_match "many-parts: first round: 33 intermediates of all the parts" \
    "p\.$ID\.arca': 10[3-5][0-9] sources to compose: 33 intermediates of the first 10[3-5][0-9]" "$(cat "$T_TMP/many-parts.err")"
expect_match "many-parts: second round: 33 sources, only the first 2 composed again" \
    "p\.$ID\.arca': 33 sources to compose: 1 intermediates of the first 2\$" "$(cat "$T_TMP/many-parts.err")"
rm -rf "$MANY" "$T_TMP/restore-many/"

# ---- Google's Python client reads what arca wrote, and writes what arca restores ----
DL=$T_TMP/dl; mkdir -p "$DL"
if gpy get "$BUCKET" "composed/p.$COMPOSED_ID.arca" "$DL/c.arca" 2>"$T_TMP/gpy.err"; then
    pass "google-cloud-storage downloads the composed archive (its CRC32C check passes)"
    check "arca verify FILE accepts the archive Google's client downloaded" "$ARCA" verify "$DL/c.arca"
    if grep -aqF -- "$TOKEN" "$DL/c.arca"; then fail "the archive holds no credential" "found"
    else pass "the archive holds no credential"; fi
else fail "google-cloud-storage downloads the composed archive" "$(tail -3 "$T_TMP/gpy.err")"; fi
gpy get "$BUCKET" "composed/p.$COMPOSED_ID.manifest.json" "$DL/c.manifest.json"
# uploaded by the Python client in 1 MiB resumable chunks, under another prefix
if gpy put "$BUCKET" "frompy/p.$COMPOSED_ID.arca" "$DL/c.arca" 1048576 &&
    gpy put "$BUCKET" "frompy/p.$COMPOSED_ID.manifest.json" "$DL/c.manifest.json"; then
    pass "google-cloud-storage uploads a backup (resumable, 1 MiB chunks)"
else fail "google-cloud-storage uploads a backup" "upload failed"; fi
write_config "$T_TMP/frompy.ini" "$BIG" "frompy/"
expect_match "python-uploaded backup: arca lists it" "^$COMPOSED_ID " "$("$ARCA" -c "$T_TMP/frompy.ini" list p 2>&1)"
check "python-uploaded backup: arca restores it" "$ARCA" -c "$T_TMP/frompy.ini" restore p latest --into r
diff -r "$BIG" "$T_TMP/restore-frompy/" >/dev/null 2>&1 && pass "python-uploaded backup: restored tree is identical" ||
    fail "python-uploaded backup: restored tree is identical" "differs"

# ---- list pages past 1,000 objects; delete ----
gpy fill "$BUCKET" "pages/p.0-junk-" 1001
write_config "$T_TMP/pages.ini" "$SMALL" "pages/"
id1=$("$ARCA" -c "$T_TMP/pages.ini" backup p 2>/dev/null | tail -n 1)
id2=$("$ARCA" -c "$T_TMP/pages.ini" backup p 2>/dev/null | tail -n 1)
[ "$(objects pages/ | wc -l)" -ge 1005 ] && pass "the prefix holds more than 1,000 objects" ||
    fail "the prefix holds more than 1,000 objects" "$(objects pages/ | wc -l)"
out=$("$ARCA" -c "$T_TMP/pages.ini" list p 2>&1)
expect_match "list past 1,000 objects (pageToken): first backup" "^$id1 " "$out"
expect_match "list past 1,000 objects (pageToken): second backup" "^$id2 " "$out"
write_config "$T_TMP/pages7.ini" "$SMALL" "pages/" "list_max_results = 7"
out=$("$ARCA" -c "$T_TMP/pages7.ini" list p 2>&1)
expect_match "list with 7 objects a page (144 pages) still finds the backups" "^$id2 " "$out"
check "delete" "$ARCA" -c "$T_TMP/pages.ini" delete p "$id1"
left=$(objects "pages/p.$id1")
[ -z "$left" ] && pass "delete removes the archive and its manifest" || fail "delete removes the archive and its manifest" "$left"
out=$("$ARCA" -c "$T_TMP/pages.ini" list p 2>&1)
grep -q "$id1" <<<"$out" && fail "list no longer shows the deleted backup" "$out" || pass "list no longer shows the deleted backup"
expect_match "list still shows the other backup" "^$id2 " "$out"
rc=0; out=$("$ARCA" -c "$T_TMP/pages.ini" delete p "$id1" 2>&1) || rc=$?
[ "$rc" != 0 ] && pass "deleting a missing backup fails (exit $rc)" || fail "deleting a missing backup fails" "$out"

# ---- retention: stored with it (checked on the object), and then not deleted ----
BUCKET=arca-retain
write_config "$T_TMP/retain.ini" "$BIG" "ret/" "retention_mode = Unlocked" "retain_until = 30d" "upload_concurrency = 4"
if rid=$("$ARCA" -c "$T_TMP/retain.ini" -v backup p 2>"$T_TMP/retain.err"); then
    rid=$(tail -n 1 <<<"$rid"); pass "retention: backup succeeds"
    expect_match "retention: written as one stream, not as parts that could be retained" "one resumable session" \
        "$(cat "$T_TMP/retain.err")"
    read -r mode until <<<"$(gpy retention "$BUCKET" "ret/p.$rid.arca")"
    now=$(date +%s)
    [ "$mode" = Unlocked ] && [ "$until" -ge $((now + 29 * 86400)) ] &&
        pass "retention: Google's client sees the archive retained (Unlocked) for 30 days" ||
        fail "retention: Google's client sees the archive retained (Unlocked) for 30 days" "mode=$mode until=$until"
    expect_exit "retention: arca delete of a retained backup exits 1" 1 "$ARCA" -c "$T_TMP/retain.ini" delete p "$rid"
    expect_match "retention: and says it is retained, not deleted" "retained \(Unlocked mode\) until .*not deleted" "$OUT"
    grep -qi "deleted p\|^deleted" <<<"$OUT" && fail "retention: arca does not claim it deleted it" "$OUT" ||
        pass "retention: arca does not claim it deleted it"
    expect_match "retention: the backup is still listed" "^$rid " "$("$ARCA" -c "$T_TMP/retain.ini" list p 2>&1)"
    [ -n "$(objects "ret/p.$rid.arca")" ] && pass "retention: the archive is still there" ||
        fail "retention: the archive is still there" "gone"
else fail "retention: backup succeeds" "$(tail -c 600 "$T_TMP/retain.err")"; fi
# a hold the server does not apply (fake-gcs-server keeps no holds): a failure, and nothing left
write_config "$T_TMP/hold.ini" "$SMALL" "hold/" "temporary_hold = true"
expect_exit "hold not applied by the server: backup exits 1" 1 "$ARCA" -c "$T_TMP/hold.ini" backup p
expect_match "hold not applied: the error says what the server did and that it was removed" \
    "temporary hold was asked for, the server reports none.*removed" "$OUT"
[ -z "$(objects hold/)" ] && pass "hold not applied: nothing is left in the bucket" || fail "hold not applied: nothing is left" "$(objects hold/)"
BUCKET=arca-test

# ---- a missing bucket: exit 1, and what to do ----
write_config "$T_TMP/nobucket.ini" "$BIG" "x/"
sed -i 's/^bucket = .*/bucket = no-such-bucket/' "$T_TMP/nobucket.ini"
expect_exit "missing bucket: backup exits 1" 1 "$ARCA" -c "$T_TMP/nobucket.ini" backup p
expect_match "missing bucket: the error names the bucket, the status and what to check" \
    "bucket 'no-such-bucket'.*HTTP 404.*hint: check bucket and endpoint" "$OUT"
expect_exit "missing bucket: list exits 1" 1 "$ARCA" -c "$T_TMP/nobucket.ini" list p

# ---- secrets stay out of output and archives ----
out=$("$ARCA" -c "$T_TMP/composed.ini" -v list p 2>&1; "$ARCA" -c "$T_TMP/composed.ini" --json inspect p "$COMPOSED_ID" 2>&1
      "$ARCA" -c "$T_TMP/composed.ini" config check 2>&1; "$ARCA" -c "$T_TMP/composed.ini" -v verify p "$COMPOSED_ID" 2>&1
      "$ARCA" -c "$T_TMP/nobucket.ini" -v backup p 2>&1)
grep -qF -- "$TOKEN" <<<"$out" && fail "the access token never appears in output" "found" ||
    pass "the access token never appears in output (-v list, inspect, config check, verify, a failure)"

# ---- cleanup: part objects a SIGKILLed composite upload left ----
openssl enc -aes-128-ctr -pass pass:kill -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 200000000 > "$T_TMP/kill.bin"
mkdir -p "$T_TMP/killsrc"; mv "$T_TMP/kill.bin" "$T_TMP/killsrc/"
write_config "$T_TMP/kill.ini" "$T_TMP/killsrc" "kill/" "chunk_size = 1M" "upload_concurrency = 2"
sed -i 's/^\[pipeline p\]/[pipeline p]\ncompression = zstd:19/' "$T_TMP/kill.ini"
"$ARCA" -c "$T_TMP/kill.ini" backup p >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 300); do [ -n "$(objects kill/.arca-tmp/)" ] && break; sleep 0.1; done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
parts=$(objects kill/.arca-tmp/ | wc -l)
[ "$parts" -ge 1 ] && pass "a SIGKILLed backup leaves part objects ($parts)" || fail "a SIGKILLed backup leaves part objects" "none"
[ -z "$("$ARCA" -c "$T_TMP/kill.ini" list p 2>&1 | grep '^20')" ] && pass "list does not show the killed backup" ||
    fail "list does not show the killed backup" "shown"
out=$("$ARCA" -c "$T_TMP/kill.ini" cleanup p --dry-run 2>&1)
[ "$(objects kill/.arca-tmp/ | wc -l)" = "$parts" ] && pass "cleanup keeps leftovers younger than 24h" ||
    fail "cleanup keeps leftovers younger than 24h" "$out"
out=$("$ARCA" -c "$T_TMP/kill.ini" cleanup p --older-than 0s 2>&1)
expect_match "cleanup --older-than 0s names the interrupted upload" "p\.[0-9A-Za-z.-]+\.arca \(started" "$out"
[ -z "$(objects kill/.arca-tmp/)" ] && pass "cleanup --older-than 0s removes the part objects" ||
    fail "cleanup --older-than 0s removes the part objects" "$(objects kill/.arca-tmp/ | head -3)"
