#!/usr/bin/env bash
# Backups an earlier arca wrote stay readable: the fixture in tests/fixtures/v1
# (archive format 1, written by arca 0.1.0) is listed, verified, inspected and
# restored byte-identical, both from a destination (where its names carry no
# pipeline) and as a file; it belongs to the pipeline its header names only.
SUITE=compat
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so"

FIX=$ROOT/tests/fixtures/v1
ID=$(ls "$FIX" | sed -n 's/\.arca$//p')
D=$T_TMP/dest R=$T_TMP/restore R2=$T_TMP/restore2 X=$T_TMP/expected
mkdir -p "$D" "$R" "$R2" "$X/sub" "$X/emptydir"
cp "$FIX/$ID.arca" "$FIX/$ID.manifest.json" "$D/"
# the tree the fixture was made from (see its README)
echo hello > "$X/a.txt"; seq 1 40000 > "$X/sub/b.txt"; printf 'fifty\n' > "$X/50%.txt"; ln -s a.txt "$X/link"

cat > "$T_TMP/arca.ini" <<EOF
[source legacy]
plugin = files
path = $T_TMP/unused
[source back]
plugin = files
path = $R
[source back2]
plugin = files
path = $R2
[destination d]
plugin = nfs
path = $D
[pipeline legacy]
source = legacy
destination = d
[pipeline other]
source = legacy
destination = d
EOF
A() { "$ARCA" -c "$T_TMP/arca.ini" "$@"; }

expect_exit "list of the pipeline that made it" 0 A list legacy
expect_match "... shows the format-1 backup" "^$ID " "$OUT"
expect_exit "list of another pipeline at the same place" 0 A list other
[ -z "$OUT" ] && pass "... does not show it" || fail "... does not show it" "$OUT"
expect_exit "list other --all" 0 A list other --all
expect_match "... shows it, marked as another pipeline's" "^$ID .*legacy \(other pipeline\)" "$OUT"
expect_exit "verify legacy latest" 0 A verify legacy latest
expect_match "... checked every member" "6 objects, 6 members" "$OUT"
expect_exit "inspect legacy ID" 0 A inspect legacy "$ID"
expect_match "... says format 1" "format: +arca v1" "$OUT"
expect_exit "restore legacy latest --into back" 0 A restore legacy latest --into back
check "... is the tree it was made from" diff -r "$X" "$R"
[ "$(stat -c %a "$R/sub")" = 750 ] && pass "... with the directory's mode" || fail "... with the directory's mode" "$(stat -c %a "$R/sub")"
expect_exit "verify FILE of the format-1 archive" 0 "$ARCA" verify "$FIX/$ID.arca"
expect_exit "restore --from FILE of it" 0 A restore --from "$FIX/$ID.arca" --into back2
check "... is the same tree" diff -r "$X" "$R2"
expect_exit "a pipeline restore of it from another pipeline is refused" 1 A restore other "$ID" --into back
expect_match "... as not found for that pipeline" "not found .* pipeline 'other'" "$OUT"
