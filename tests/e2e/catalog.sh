#!/usr/bin/env bash
# A backup belongs to its pipeline. Two pipelines writing to one destination
# (the same directory, through one [destination] section and through two) list,
# resolve `latest`, verify, restore and delete only their own backups; a backup
# moved under another pipeline's name is refused; a restore into a source other
# than the one the backup was made from must be asked for; objects that are not
# backups never show up; a destination that cannot be listed is an error, not
# "no backups"; config check warns when pipelines share a place.
SUITE=catalog
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so"

SA=$T_TMP/a SB=$T_TMP/b SC=$T_TMP/c R=$T_TMP/r D=$T_TMP/shared
mkdir -p "$SA" "$SB" "$SC" "$R" "$D"
echo "from a" > "$SA/only-a.txt"
echo "from b" > "$SB/only-b.txt"
echo "from c" > "$SC/only-c.txt"
config() {
    cat > "$T_TMP/arca.ini" <<EOF
[source sa]
plugin = files
path = $SA
[source sb]
plugin = files
path = $SB
[source sc]
plugin = files
path = $SC
[source r]
plugin = files
path = $R
[destination d]
plugin = nfs
path = $D
[destination same]
plugin = nfs
path = $D
[pipeline a]
source = ${1:-sa}
destination = d
[pipeline b]
source = sb
destination = same
[pipeline c]
source = sc
destination = d
EOF
}
config
A() { "$ARCA" -c "$T_TMP/arca.ini" "$@"; }

expect_exit "config check passes with pipelines sharing a place" 0 A config check
expect_match "... and warns that a and b write to one place through two sections" \
    "pipelines 'a' \(destination 'd'\) and 'b' \(destination 'same'\) both write to $D" "$OUT"
expect_match "... and that a and c share one section" "pipelines 'a' \(destination 'd'\) and 'c' \(destination 'd'\)" "$OUT"

AID=$(A backup a) && pass "backup a" || fail "backup a" "$AID"
sleep 0.01
BID=$(A backup b) && pass "backup b (newer)" || fail "backup b" "$BID"
[ -f "$D/a.$AID.arca" ] && [ -f "$D/b.$BID.manifest.json" ] && pass "objects are named after their pipeline" \
    || fail "objects are named after their pipeline" "$(ls "$D")"

expect_exit "list a" 0 A list a
expect_match "... shows a's backup" "^$AID " "$OUT"
grep -q "$BID" <<<"$OUT" && fail "... not b's" "$OUT" || pass "... not b's"
expect_exit "list a --all" 0 A list a --all
expect_match "... shows b's backup, marked" "^$BID .* b \(other pipeline\)" "$OUT"
expect_match "... and a's, unmarked" "^$AID .* a$" "$OUT"
expect_exit "list --json a" 0 A --json list a
check "... holds one backup, a's" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert [x["id"] for x in d]==[sys.argv[2]]' "$OUT" "$AID"

expect_exit "restore a latest (b's is newer) into r" 0 A restore a latest --into r
[ -f "$R/only-a.txt" ] && [ ! -e "$R/only-b.txt" ] && pass "... restored a's data, not b's" || fail "... restored a's data, not b's" "$(ls "$R")"
expect_exit "verify b latest" 0 A verify b latest
expect_match "... checked b's archive" "b\.$BID\.arca" "$OUT"
expect_exit "inspect a with b's id" 1 A inspect a "$BID"
expect_match "... is not found for a" "not found .* pipeline 'a'" "$OUT"

# a backup moved under another pipeline's name is refused, not restored
cp "$D/b.$BID.arca" "$D/c.$BID.arca"; cp "$D/b.$BID.manifest.json" "$D/c.$BID.manifest.json"
expect_exit "b's backup copied under c's name: verify c refuses it" 3 A verify c "$BID"
expect_match "... saying whose it is" "belongs to pipeline 'b', not 'c'" "$OUT"
rm -f "$D/c.$BID.arca" "$D/c.$BID.manifest.json"

# objects that are not backups never count
echo '{}' > "$D/hello.manifest.json"; echo '{}' > "$D/a.hello.manifest.json"; echo '{}' > "$D/a.20991231T000000Z-zzzzzz.manifest.json"
expect_exit "list a with stray objects at the destination" 0 A list a
[ "$(grep -c . <<<"$OUT")" = 2 ] && pass "... shows only the real backup" || fail "... shows only the real backup" "$OUT"
expect_exit "verify a latest with stray objects" 0 A verify a latest
expect_match "... is a's backup" "a\.$AID\.arca" "$OUT"
rm -f "$D"/*hello* "$D"/a.2099*

# restoring a backup into a source it was not made from must be explicit
config sc
expect_exit "after a's source changed: restore a latest is refused" 2 A restore a latest
expect_match "... saying where it came from and how to go on" "made from source 'sa'.*say --into sc" "$OUT"
[ ! -e "$SC/only-a.txt" ] && pass "... and wrote nothing" || fail "... and wrote nothing" "$(ls "$SC")"
config

expect_exit "delete a's backup through b is refused" 1 A delete b "$AID"
[ -f "$D/a.$AID.arca" ] && pass "... and a's backup is still there" || fail "... and a's backup is still there" "$(ls "$D")"
expect_exit "delete a's backup through a" 0 A delete a "$AID"
[ ! -e "$D/a.$AID.arca" ] && [ -f "$D/b.$BID.arca" ] && pass "... removes a's objects only" || fail "... removes a's objects only" "$(ls "$D")"

# a destination that cannot be listed is an error, not an empty list
mv "$D" "$D.gone"
# (the nfs plugin checks its directory when the pipeline opens: exit 2, a setup error)
for cmd in "list a" "restore a latest --into r" "verify a latest"; do
    rc=0; out=$(A $cmd 2>&1) || rc=$?
    [ "$rc" = 1 ] || [ "$rc" = 2 ] && pass "$cmd with the destination gone fails" || fail "$cmd with the destination gone fails" "rc=$rc $out"
    expect_match "... naming the destination" "destination 'd' \(nfs\)" "$out"
    grep -q "no backups" <<<"$out" && fail "... and does not say 'no backups'" "$out" || pass "... and does not say 'no backups'"
done
mv "$D.gone" "$D"
cat > "$T_TMP/badname.ini" <<EOF
[source s]
plugin = files
path = $SA
[destination d]
plugin = nfs
path = $D
[pipeline .hidden]
source = s
destination = d
EOF
expect_exit "pipeline names that cannot name objects are refused" 2 "$ARCA" -c "$T_TMP/badname.ini" config check
expect_match "... saying why" "pipeline name may use only letters" "$OUT"
