#!/usr/bin/env bash
# files source end to end through the arca CLI: a tree survives backup and restore
# byte for byte with modes, types, link targets and mtimes; --force; exclude.
SUITE=files
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so"

TREE=$T_TMP/tree
# write_config FILE RESTORE_PATH [EXTRA SOURCE OPTION LINES]
write_config() {
    cat > "$1" <<EOF
[arca]
chunk_size = 1M
[source src]
plugin = files
path = $TREE
${3:-}
[source dst]
plugin = files
path = $2
[destination d]
plugin = nfs
path = $T_TMP/backups
[pipeline p]
source = src
destination = d
EOF
}

make_tree() {
    mkdir -p "$TREE"/a/b/c "$TREE"/emptydir "$TREE"/"with space" "$TREE"/ro "$TREE"/cache/sub
    : > "$TREE"/empty
    : > "$TREE"/a/b/c/empty-deep
    echo deep > "$TREE"/a/b/c/deep.txt
    head -c 5242881 /dev/urandom > "$TREE"/multi-chunk.bin    # 5 MiB + 1: six chunks
    printf 'unicode\n' > "$TREE"/"héllo wörld ✓.txt"
    printf 'spaces\n' > "$TREE"/"with space"/"file name.txt"
    printf 'cache\n' > "$TREE"/cache/sub/blob
    printf 'tmp\n' > "$TREE"/a/scratch.tmp
    printf '#!/bin/sh\n' > "$TREE"/run.sh
    chmod 4755 "$TREE"/run.sh
    chmod 600 "$TREE"/multi-chunk.bin
    chmod 750 "$TREE"/a/b
    echo ro > "$TREE"/ro/file
    chmod 444 "$TREE"/ro/file
    chmod 555 "$TREE"/ro
    ln -s /etc/passwd "$TREE"/abs-link
    ln -s does/not/exist "$TREE"/dangling
    ln -s ../emptydir "$TREE"/a/rel-link
    mkfifo "$TREE"/fifo
    # distinct mtimes with nanoseconds, deepest first so directories keep theirs
    local i=0 p
    while IFS= read -r -d '' p; do
        i=$((i + 1))
        touch -h -d "@$((1500000000 + i * 97)).$(printf '%09d' $((i * 1234567)))" "$p"
    done < <(find "$TREE" -mindepth 1 -depth -print0)
}

# listing DIR: path, mode, type, link target, size (dirs: -), mtime; one line each, sorted
listing() {
    (cd "$1" && find . -mindepth 1 \( -type d -printf '%p %m %y - %T@\n' \) -o \
        \( ! -type p -printf '%p %m %y %l %s %T@\n' \) | LC_ALL=C sort)
}

same_tree() { # NAME RESTORED
    local want got
    diff -r --no-dereference "$TREE" "$2" 2>&1 | grep -vx "Only in $TREE: fifo" > "$T_TMP/diff.out"
    if [ -s "$T_TMP/diff.out" ]; then fail "$1: diff -r" "$(head -c 600 "$T_TMP/diff.out")"
    else pass "$1: diff -r"; fi
    want=$(listing "$TREE"); got=$(listing "$2")
    if [ "$want" = "$got" ]; then
        pass "$1: modes, types, link targets, sizes, mtimes"
    else
        fail "$1: modes, types, link targets, sizes, mtimes" "$(diff <(echo "$want") <(echo "$got") | head -20)"
    fi
}

make_tree
mkdir -p "$T_TMP/backups"
CONF=$T_TMP/arca.ini
RESTORE=$T_TMP/restore/here     # missing: the restore creates it
write_config "$CONF" "$RESTORE"

# --- backup ---------------------------------------------------------------------
OUT=$("$ARCA" -c "$CONF" backup p 2>"$T_TMP/backup.err"); rc=$?
if [ $rc = 0 ]; then pass "backup exits 0"; else fail "backup exits 0" "exit $rc: $(tail -c 600 "$T_TMP/backup.err")"; fi
ID=$(tail -n1 <<<"$OUT")
expect_match "backup prints the new id" '^[A-Za-z0-9._-]+$' "$ID"
expect_match "backup warns about the skipped fifo" 'fifo' "$(cat "$T_TMP/backup.err")"
ARCHIVE=$(ls "$T_TMP"/backups/*.arca 2>/dev/null | head -n1)
check "the 5 MiB + 1 file is stored as six 1 MiB chunks" \
    test "$(tar -tf "$ARCHIVE" | grep -c '^files/multi-chunk\.bin\.')" = 6

# --- restore latest into a missing directory --------------------------------------
check "restore latest into a new directory" "$ARCA" -c "$CONF" restore p latest --into dst
same_tree "round trip" "$RESTORE"
check "an absolute symlink is restored, not followed" test "$(readlink "$RESTORE/abs-link")" = /etc/passwd
check "a dangling symlink is restored" test "$(readlink "$RESTORE/dangling")" = does/not/exist
check "the fifo is not restored" test ! -e "$RESTORE/fifo"

# --- non-empty target ----------------------------------------------------------------
echo changed > "$RESTORE/a/b/c/deep.txt"
rc=0; OUT=$("$ARCA" -c "$CONF" restore p latest --into dst 2>&1) || rc=$?
if [ $rc = 1 ] || [ $rc = 2 ]; then pass "restore into a non-empty directory is refused"
else fail "restore into a non-empty directory is refused" "exit $rc: $(tail -c 600 <<<"$OUT")"; fi
expect_match "the refusal names the target and suggests --force" "$RESTORE.*--force|--force.*$RESTORE" "$(tr '\n' ' ' <<<"$OUT")"
check "the refused restore changed nothing" grep -qx changed "$RESTORE/a/b/c/deep.txt"
check "restore --force into a non-empty directory" "$ARCA" -c "$CONF" restore p latest --into dst --force
same_tree "forced restore" "$RESTORE"

# --- restore --from FILE.arca ---------------------------------------------------------
FROM=$T_TMP/from-file
write_config "$T_TMP/from.ini" "$FROM"
check "restore --from FILE.arca" "$ARCA" -c "$T_TMP/from.ini" restore --from "$ARCHIVE" --into dst
same_tree "restore --from" "$FROM"

# --- exclude ---------------------------------------------------------------------------
EXCL=$T_TMP/excluded
write_config "$T_TMP/excl.ini" "$EXCL" "exclude = *.tmp, cache/*"
check "backup with exclude" "$ARCA" -c "$T_TMP/excl.ini" backup p
check "restore of the excluded backup" "$ARCA" -c "$T_TMP/excl.ini" restore p latest --into dst
check "exclude drops *.tmp at any depth" test ! -e "$EXCL/a/scratch.tmp"
check "exclude cache/* keeps cache/ but empty" bash -c "[ -d '$EXCL/cache' ] && [ -z \"\$(ls -A '$EXCL/cache')\" ]"
check "exclude keeps everything else" cmp "$TREE/multi-chunk.bin" "$EXCL/multi-chunk.bin"
