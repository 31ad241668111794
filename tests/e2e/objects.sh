#!/usr/bin/env bash
# Memory does not grow with the number of objects, and no name index can be
# flooded. One million one-byte files (ARCA_OBJECTS=N changes the count):
# backup, list, inspect, verify and restore each peak under 256 MiB RSS; a
# crafted catalogue of 300,000 directories with 70-byte names (42 MB) is
# inspected, listed, verified and restored under the same bound; 200,000 names
# whose FNV-1a hashes share their low 19 bits (what made the 0.1 index take
# 276 s) are inspected in about the time of 200,000 ordinary names.
SUITE=objects
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so" /usr/bin/time python3 cc

N=${ARCA_OBJECTS:-1000000}
LIMIT_KB=$((256 * 1024))
S=$T_TMP/src R=$T_TMP/r B=$T_TMP/bk R2=$T_TMP/r2
mkdir -p "$S" "$R" "$R2" "$B"
export TMPDIR=$T_TMP # the spools of the manifest land here, and go with it

# rss NAME CMD...: runs CMD under /usr/bin/time, passes when it exits 0 under the limit
rss() {
    local name=$1; shift
    local t0=$SECONDS rc=0
    /usr/bin/time -f '%M' -o "$T_TMP/rss" "$@" >"$T_TMP/out" 2>"$T_TMP/err" || rc=$?
    local kb; kb=$(tail -n 1 "$T_TMP/rss")
    if [ "$rc" = 0 ] && [ "$kb" -lt "$LIMIT_KB" ]; then
        pass "$name: $((kb / 1024)) MiB peak RSS, $((SECONDS - t0)) s"
    else
        fail "$name: under 256 MiB" "exit $rc, $((kb / 1024)) MiB: $(tail -c 400 "$T_TMP/err")"
    fi
}

python3 - "$S" "$N" <<'EOF'
import os, sys
top, n = sys.argv[1], int(sys.argv[2])
per = 1000
for d in range((n + per - 1) // per):
    dn = os.path.join(top, "d%04d" % d)
    os.mkdir(dn)
    dfd = os.open(dn, os.O_RDONLY | os.O_DIRECTORY)
    for f in range(min(per, n - d * per)):
        fd = os.open("f%04d" % f, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=dfd)
        os.write(fd, b"x")
        os.close(fd)
    os.close(dfd)
EOF
cat > "$T_TMP/arca.ini" <<EOF
[arca]
chunk_size = 1M
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
[pipeline crafted]
source = s
destination = d
EOF
AC=("$ARCA" -c "$T_TMP/arca.ini") # not a function: /usr/bin/time runs it

rss "backup of $N one-byte files" "${AC[@]}" backup p
ID=$(tail -n 1 "$T_TMP/out")
rss "list" "${AC[@]}" list p
rss "inspect" "${AC[@]}" inspect p "$ID"
expect_match "... counts them all" "$((N + N / 1000)) objects, $N members" "$(cat "$T_TMP/out")"
rss "verify" "${AC[@]}" verify p "$ID"
rss "restore" "${AC[@]}" restore p "$ID" --into r
n=$(find "$R" -type f | wc -l)
[ "$n" = "$N" ] && pass "... every file is back" || fail "... every file is back" "$n of $N"
rm -rf "$R" "$S"; mkdir -p "$R"

# a crafted catalogue: 300,000 directories with 70-byte names, 42 MB of manifest
cc -O2 -o "$T_TMP/flood" "$ROOT/tests/tools/flood.c"
python3 -c '
import sys
for i in range(300000):
    print(("d%07d" % i).encode().hex() + "61" * 62)' > "$T_TMP/dirs.hex"
CID=$(python3 "$ROOT/tests/tools/mkarchive.py" "$T_TMP/crafted.arca" crafted "$T_TMP/dirs.hex")
mv "$T_TMP/crafted.arca" "$B/crafted.$CID.arca"; mv "$T_TMP/crafted.manifest.json" "$B/crafted.$CID.manifest.json"
sz=$(stat -c %s "$B/crafted.$CID.manifest.json")
[ "$sz" -gt 40000000 ] && pass "the crafted manifest is $((sz / 1000000)) MB" || fail "crafted manifest size" "$sz"
rss "list of the crafted catalogue" "${AC[@]}" list crafted
rss "inspect of the 300,000-directory manifest" "${AC[@]}" inspect crafted "$CID"
rss "inspect --json of it (the whole document, streamed)" "${AC[@]}" --json inspect crafted "$CID"
rss "verify of it" "${AC[@]}" verify crafted "$CID"
rss "verify FILE of it" "$ARCA" verify "$B/crafted.$CID.arca"
rss "restore of its 300,000 directories" "${AC[@]}" restore crafted "$CID" --into r2
n=$(find "$R2" -mindepth 1 -type d | wc -l)
[ "$n" = 300000 ] && pass "... all made" || fail "... all made" "$n"
rm -rf "$R2"

# hash flooding: names that pile into one chain of an unkeyed FNV-1a index
"$T_TMP/flood" 200000 > "$T_TMP/flood.hex" || { fail "flood names" ""; exit 0; }
python3 -c '
import os
for i in range(200000):
    print(os.urandom(15).replace(b"/", b"_").replace(b"\0", b"_").hex())' > "$T_TMP/control.hex"
python3 "$ROOT/tests/tools/mkarchive.py" "$T_TMP/flood.arca" f "$T_TMP/flood.hex" >/dev/null
python3 "$ROOT/tests/tools/mkarchive.py" "$T_TMP/control.arca" f "$T_TMP/control.hex" >/dev/null
t() { local t0; t0=$(date +%s.%N); "$ARCA" inspect "$1" >/dev/null 2>&1; echo "$(date +%s.%N) - $t0" | bc; }
tc=$(t "$T_TMP/control.arca"); tf=$(t "$T_TMP/flood.arca")
if [ "$(echo "$tf < 3 * $tc + 1" | bc)" = 1 ]; then
    pass "inspect of 200,000 colliding names takes ${tf}s beside ${tc}s for ordinary ones"
else
    fail "inspect of colliding names in about the time of ordinary ones" "flood ${tf}s, control ${tc}s"
fi
