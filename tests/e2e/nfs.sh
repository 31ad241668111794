#!/usr/bin/env bash
# nfs destination end to end through the arca CLI: files -> nfs (a directory,
# then NFSv3 by URL through nfs-ganesha) -> restore gives the same tree; the
# destination holds exactly P.<id>.arca and P.<id>.manifest.json; delete removes them.
SUITE=nfs # read by lib.sh
export SUITE
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so"

TREE=$T_TMP/tree

make_tree() {
    mkdir -p "$TREE"/emptydir "$TREE"/"dir with spaces"/inner "$TREE"/données/sous "$TREE"/private
    : > "$TREE"/empty
    : > "$TREE"/données/sous/vide
    head -c 5300000 /dev/urandom > "$TREE"/big.bin # ~5 MiB: six 1 MiB chunks
    printf 'été\n' > "$TREE/données/été à Paris.txt"
    printf '名前\n' > "$TREE"/"名前 ✓.txt"
    printf 'spaces\n' > "$TREE"/"dir with spaces"/"file name .txt"
    printf '#!/bin/sh\necho hi\n' > "$TREE"/run.sh
    chmod 755 "$TREE"/run.sh
    printf 'secret\n' > "$TREE"/private/key
    chmod 600 "$TREE"/private/key
    chmod 700 "$TREE"/private
    chmod 640 "$TREE"/big.bin
    ln -s "données/été à Paris.txt" "$TREE/lien été"
    ln -s ../emptydir "$TREE"/"dir with spaces"/to-empty
    ln -s does/not/exist "$TREE"/dangling
}

# write_config FILE DEST_LINE RESTORE_DIR
write_config() {
    cat > "$1" <<EOF
[arca]
plugin_path = $BUILD/plugins
chunk_size = 1M
[source s]
plugin = files
path = $TREE
[source s2]
plugin = files
path = $3
[destination d]
plugin = nfs
$2
[pipeline p]
source = s
destination = d
EOF
}

# One line per entry: type, mode (not for links: always 777), link target, size.
listing() {
    (cd "$1" && find . -mindepth 1 \( -type l -printf '%p l %l\n' \) -o \( -type d -printf '%p d %m\n' \) -o \
        -printf '%p %y %m %s\n' | LC_ALL=C sort)
}

same_tree() { # NAME RESTORED
    local out want got
    if out=$(diff -r --no-dereference "$TREE" "$2" 2>&1); then pass "$1: diff -r"
    else fail "$1: diff -r" "$(head -c 600 <<<"$out")"; fi
    want=$(listing "$TREE"); got=$(listing "$2")
    if [ "$want" = "$got" ]; then pass "$1: types, modes, symlink targets"
    else fail "$1: types, modes, symlink targets" "$(diff <(echo "$want") <(echo "$got") | head -20)"; fi
}

# Everything in DIR, hidden names included, one per line, sorted.
dir_entries() { (cd "$1" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort); }

# round_trip MODE DEST_LINE DEST_DIR: DEST_DIR is where the objects land locally.
round_trip() {
    local mode=$1 dest_line=$2 dest=$3 cfg=$T_TMP/$1.ini restored=$T_TMP/restored-$1 id out ents
    mkdir -p "$restored"
    write_config "$cfg" "$dest_line" "$restored"

    if ! id=$("$ARCA" -c "$cfg" backup p 2>"$T_TMP/$mode.err"); then
        fail "$mode: backup" "$(tail -c 600 "$T_TMP/$mode.err")"
        return
    fi
    id=$(tail -n 1 <<<"$id")
    expect_match "$mode: backup prints an id" '^[0-9A-Za-z]' "$id"

    ents=$(dir_entries "$dest")
    if [ "$ents" = "$(printf '%s\n' "p.$id.arca" "p.$id.manifest.json" | LC_ALL=C sort)" ]; then
        pass "$mode: destination holds exactly P.<id>.arca and P.<id>.manifest.json, no temporaries"
    else
        fail "$mode: destination holds exactly P.<id>.arca and P.<id>.manifest.json, no temporaries" "$ents"
    fi

    out=$("$ARCA" -c "$cfg" list p 2>&1)
    expect_match "$mode: list shows the backup" "^$id( |$)" "$out"
    check "$mode: verify" "$ARCA" -c "$cfg" verify p "$id"
    check "$mode: restore latest" "$ARCA" -c "$cfg" restore p latest --into s2
    same_tree "$mode" "$restored"

    # A flipped byte in the middle of the archive is an integrity failure.
    cp "$dest/p.$id.arca" "$T_TMP/pristine.arca"
    local size
    size=$(stat -c %s "$dest/p.$id.arca")
    printf '\xff' | dd of="$dest/p.$id.arca" bs=1 seek=$((size / 2)) conv=notrunc status=none
    cmp -s "$dest/p.$id.arca" "$T_TMP/pristine.arca" ||
        expect_exit "$mode: verify finds a corrupted archive" 3 "$ARCA" -c "$cfg" verify p "$id"
    cp "$T_TMP/pristine.arca" "$dest/p.$id.arca"
    rm -f "$T_TMP/pristine.arca"

    check "$mode: delete" "$ARCA" -c "$cfg" delete p "$id"
    ents=$(dir_entries "$dest")
    if [ -z "$ents" ]; then pass "$mode: delete removes the archive and its manifest"
    else fail "$mode: delete removes the archive and its manifest" "$ents"; fi
    out=$("$ARCA" -c "$cfg" list p 2>&1)
    if grep -q "$id" <<<"$out"; then fail "$mode: list no longer shows the deleted backup" "$out"
    else pass "$mode: list no longer shows the deleted backup"; fi
}

make_tree

# ---- path mode: a directory (a kernel NFS mount in production) ----
mkdir -p "$T_TMP/dest"
round_trip path "path = $T_TMP/dest" "$T_TMP/dest"

# A missing destination directory is a clear error that names it.
write_config "$T_TMP/missing.ini" "path = $T_TMP/no/such/dir" "$T_TMP/unused"
rc=0
out=$("$ARCA" -c "$T_TMP/missing.ini" backup p 2>&1) || rc=$?
if [ "$rc" = 1 ] || [ "$rc" = 2 ]; then pass "missing path: exit $rc"
else fail "missing path: exit 1 or 2" "got $rc: $(tail -c 400 <<<"$out")"; fi
expect_match "missing path: the error names the directory" "$T_TMP/no/such/dir" "$out"

# ---- url mode: NFSv3 through libnfs against nfs-ganesha ----
G=$T_TMP/ganesha
mkdir -p "$G"
rc=0
url=$("$ROOT/tests/servers/ganesha.sh" start "$G" 2>"$T_TMP/ganesha.err") || rc=$?
on_exit "'$ROOT/tests/servers/ganesha.sh' stop '$G'"
if [ "$rc" = 77 ]; then
    skip "url mode" "$(tail -n 1 "$T_TMP/ganesha.err")"   # not root: nothing the project can change
elif [ "$rc" != 0 ] || [ -z "$url" ]; then
    fail "nfs-ganesha starts" "exit $rc: $(tail -n 15 "$T_TMP/ganesha.err")"
else
    # This server's own ports, so a concurrent test run's ganesha (registered
    # last with the one rpcbind) cannot answer in its place.
    q=$(cat "$G/query" 2>/dev/null)
    mkdir -p "$G/export/backups"
    round_trip url "url = $url/backups$q" "$G/export/backups"

    # A directory missing on the server is named in the error.
    write_config "$T_TMP/missing-url.ini" "url = $url/no-such-dir$q" "$T_TMP/unused"
    rc=0
    out=$("$ARCA" -c "$T_TMP/missing-url.ini" backup p 2>&1) || rc=$?
    if [ "$rc" = 1 ] || [ "$rc" = 2 ]; then pass "missing url dir: exit $rc"
    else fail "missing url dir: exit 1 or 2" "got $rc: $(tail -c 400 <<<"$out")"; fi
    expect_match "missing url dir: the error names it" "no-such-dir" "$out"
fi
