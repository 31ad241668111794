#!/usr/bin/env bash
# Any name the kernel allows round-trips byte-identical: non-UTF-8 file, directory
# and symlink names, a non-UTF-8 symlink target, newlines, escape sequences, '%',
# a 4090-byte relative name and one longer than PATH_MAX. A backup that reports
# success verifies and restores (from the destination and from a file); names
# print escaped, never raw, on a terminal; the archive stays readable with tar.
SUITE=names
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so" python3
TREE=$ROOT/tests/tools/tree.py

S=$T_TMP/src R=$T_TMP/r R2=$T_TMP/r2 B=$T_TMP/bk
mkdir -p "$S" "$R" "$R2" "$B"
python3 "$TREE" make-odd "$S" || { fail "make the odd tree" ""; exit 0; }
cat > "$T_TMP/arca.ini" <<EOF
[arca]
chunk_size = 64K
[source s]
plugin = files
path = $S
[source r]
plugin = files
path = $R
[source r2]
plugin = files
path = $R2
[destination d]
plugin = nfs
path = $B
[pipeline p]
source = s
destination = d
EOF
A() { "$ARCA" -c "$T_TMP/arca.ini" "$@"; }

expect_exit "backup of a tree with odd names succeeds" 0 A backup p
ID=$(tail -n 1 <<<"$OUT")
expect_exit "verify p latest" 0 A verify p latest
expect_exit "restore p latest --into r" 0 A restore p latest --into r
python3 "$TREE" digest "$S" > "$T_TMP/src.digest"
python3 "$TREE" digest "$R" > "$T_TMP/r.digest"
if cmp -s "$T_TMP/src.digest" "$T_TMP/r.digest"; then
    pass "every name, link target, mode and content came back byte-identical ($(wc -l < "$T_TMP/src.digest") entries)"
else
    fail "every name came back byte-identical" "$(diff "$T_TMP/src.digest" "$T_TMP/r.digest" | head -5)"
fi
grep -q "$(printf 'new\nline' | xxd -p)" "$T_TMP/r.digest" && pass "... including the name with a newline" || fail "... including the name with a newline" ""
expect_exit "restore --from FILE" 0 A restore --from "$B/p.$ID.arca" --into r2
python3 "$TREE" digest "$R2" | cmp -s - "$T_TMP/src.digest" && pass "... is byte-identical too" || fail "... is byte-identical too" ""

# names are percent-encoded in tar and manifest: one printable line each
tar -tf "$B/p.$ID.arca" > "$T_TMP/members" 2>"$T_TMP/tar.err" && pass "GNU tar lists the archive" || fail "GNU tar lists the archive" "$(cat "$T_TMP/tar.err")"
grep -q '^files/new%0Aline\.000000\.zst$' "$T_TMP/members" && pass "... with the newline as %0A" || fail "... with the newline as %0A" "$(grep new "$T_TMP/members")"
grep -q '^files/caf%E9 latin1\.txt\.000000\.zst$' "$T_TMP/members" && pass "... and a Latin-1 byte as %E9" || fail "... and a Latin-1 byte as %E9" "$(grep caf "$T_TMP/members")"
grep -q '^files/100%25 sure' "$T_TMP/members" && pass "... and '%' as %25" || fail "... and '%' as %25" ""
tar -xOf "$B/p.$ID.arca" 'files/new%0Aline.000000.zst' | zstd -dq | grep -q "a newline in the name" \
    && pass "tar -xOf of an encoded member | zstd -d gives its bytes" || fail "tar -xOf of an encoded member" ""
LC_ALL=C grep -q $'\x1b' "$B/p.$ID.manifest.json" && fail "the manifest holds no raw escape byte" "" || pass "the manifest holds no raw escape byte"

# what reaches a terminal is escaped
out=$(A inspect p "$ID" 2>&1)
LC_ALL=C grep -q $'\x1b' <<<"$out" && fail "inspect prints no raw escape sequence" "$out" || pass "inspect prints no raw escape sequence"
expect_match "... but shows it escaped" 'esc \\x1b\[31mred' "$out"

# the writer refuses nothing the reader would refuse: each kind alone is a good backup
for n in 'caf\xe9' 'a\nb' 'x%25y'; do
    rm -rf "$S"/* "$R"/*; printf 'x' > "$S/$(printf "$n")"
    A backup p >/dev/null 2>&1 && A verify p latest >/dev/null 2>&1 && A restore p latest --into r --force >/dev/null 2>&1 \
        && [ -f "$R/$(printf "$n")" ] && pass "a single file named '$n' backs up, verifies and restores" \
        || fail "a single file named '$n' backs up, verifies and restores" ""
done
