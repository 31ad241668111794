# Core engine end to end: archive format with standard tools, integrity refusals,
# crafted archives, config errors, fan-out, SIGKILL mid-backup, CLI contracts.
. "$(dirname "$0")/../lib.sh"

S=$T_TMP/src; R=$T_TMP/restore; B=$T_TMP/bk; B2=$T_TMP/bk2
mkdir -p "$S/sub/deeper" "$S/empty dir" "$R" "$B" "$B2"
echo hello > "$S/a.txt"
: > "$S/empty"
head -c 3500000 /dev/urandom > "$S/sub/big.bin"
seq 1 200000 > "$S/sub/deeper/text.txt"
printf 'caf\xc3\xa9 \xe2\x98\x83\n' > "$S/unicodé ☃ name.txt"
ln -s /etc/passwd "$S/abs-link"
ln -s ../a.txt "$S/sub/rel-link"

cat > "$T_TMP/arca.ini" <<EOF
[arca]
chunk_size = 1M
[source src]
plugin = files
path = $S
[source dst]
plugin = files
path = $R
[destination d]
plugin = nfs
path = $B
[destination d2]
plugin = nfs
path = $B2
[pipeline p]
source = src
destination = d
[pipeline fan]
source = src
destination = d, d2
compression = zstd:1
EOF
C=$T_TMP/arca.ini
A() { "$ARCA" -c "$C" "$@"; }

# --- backup, list, archive readable by standard tools ---
ID=$(A backup p) && pass "backup prints an id" || fail "backup prints an id" "$ID"
[[ $ID =~ ^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{6}$ ]] && pass "backup id is sortable UTC time plus suffix" || fail "backup id shape" "$ID"
AR=$B/p.$ID.arca CAT=$B/p.$ID.manifest.json
[ -f "$AR" ] && [ -f "$CAT" ] && pass "destination holds archive and catalogue manifest" || fail "destination files" "$(ls -a "$B")"
[ "$(ls -A "$B" | wc -l)" = 2 ] && pass "no temporaries left after a backup" || fail "no temporaries" "$(ls -A "$B")"
expect_match "list shows the backup" "^$ID " "$(A list p)"
first=$(tar -tf "$AR" | head -1); last=$(tar -tf "$AR" | tail -1)
[ "$first" = arca.json ] && [ "$last" = MANIFEST.json ] && pass "GNU tar lists arca.json first and MANIFEST.json last" || fail "tar order" "$first .. $last"
tar -xOf "$AR" files/sub/big.bin.000001.zst | zstd -dq | cmp -s - <(dd if="$S/sub/big.bin" bs=1M skip=1 count=1 2>/dev/null) \
    && pass "tar -xOf MEMBER | zstd -d gives the raw bytes of a chunk" || fail "tar | zstd raw bytes" ""
cat $(for i in 0 1 2 3; do echo "files/sub/big.bin.00000$i.zst"; done | sed "s|^|$T_TMP/x/|") >/dev/null 2>&1
mkdir -p "$T_TMP/x" && tar -xf "$AR" -C "$T_TMP/x" && \
    (for f in "$T_TMP/x/files/sub/big.bin".*.zst; do zstd -dqc "$f"; done) | cmp -s - "$S/sub/big.bin" \
    && pass "chunks concatenated in order reassemble a multi-chunk object" || fail "chunk reassembly" ""
tar -xOf "$AR" files/empty.000000.zst | zstd -dq | cmp -s - /dev/null && pass "an empty file is one empty zstd frame" || fail "empty frame" ""
zstd -lv "$T_TMP/x/files/a.txt.000000.zst" 2>&1 | grep -q "Check: XXH64" && pass "frames carry a content checksum" || fail "frame checksum flag" "$(zstd -lv "$T_TMP/x/files/a.txt.000000.zst" 2>&1)"
tar -xOf "$AR" MANIFEST.json | cmp -s - "$CAT" && pass "the catalogue copy is byte-identical to the archive's MANIFEST.json" \
    || fail "catalogue copy" "$(tar -xOf "$AR" MANIFEST.json | cmp - "$CAT" 2>&1)"
python3 - "$AR" "$CAT" <<'PY' && pass "manifest offsets and sha256 match the stored bytes" || fail "manifest offsets" ""
import json, hashlib, sys
data = open(sys.argv[1], 'rb').read(); m = json.load(open(sys.argv[2]))
for x in m["members"]:
    b = data[x["offset"]:x["offset"] + x["stored_size"]]
    assert hashlib.sha256(b).hexdigest() == x["sha256"], x["name"]
assert m["totals"]["members"] == len(m["members"]) >= 5
PY
H=$(tar -xOf "$AR" arca.json)
python3 -c 'import json,sys; h=json.loads(sys.argv[1]); assert h["format"]=="arca" and h["format_version"]==2 and h["pipeline"]=="p" and h["source"]["name"]=="src" and h["source"]["plugin"]=="files" and h["compression"]=="zstd:3" and h["chunk_size"]==1048576 and h["created"].endswith("Z")' "$H" \
    && pass "arca.json carries format, version, source plugin, compression, chunk size, UTC time" || fail "arca.json fields" "$H"
expect_exit "inspect FILE exits 0" 0 "$ARCA" inspect "$AR"
expect_match "inspect shows the backup id and source" "backup id: +$ID" "$OUT"
J=$("$ARCA" --json inspect "$AR")
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["header"]["backup_id"]==sys.argv[2] and len(d["objects"])>5' "$J" "$ID" \
    && pass "inspect --json is the manifest document" || fail "inspect --json" "$J"

# --- verify and restore ---
expect_exit "verify PIPELINE ID exits 0" 0 A verify p "$ID"
expect_exit "verify FILE exits 0" 0 "$ARCA" verify "$AR"
expect_exit "restore PIPELINE latest --into exits 0" 0 A restore p latest --into dst
diff -r "$S" "$R" >/dev/null && pass "restore is byte-identical (diff -r)" || fail "restore byte-identical" "$(diff -r "$S" "$R" 2>&1 | head)"
[ "$(readlink "$R/abs-link")" = /etc/passwd ] && [ -L "$R/sub/rel-link" ] && pass "symlinks restored as links" || fail "symlinks" ""
rm -rf "$R"; mkdir "$R"
expect_exit "restore --from FILE --into exits 0" 0 A restore --from "$AR" --into dst
diff -r "$S" "$R" >/dev/null && pass "restore --from FILE is byte-identical" || fail "restore --from identical" ""

# --- integrity: flipped byte, truncation, missing manifest ---
cp "$AR" "$T_TMP/flip.arca"
off=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); x=[x for x in m["members"] if x["name"]=="files/sub/big.bin.000002.zst"][0]; print(x["offset"]+1000)' "$CAT")
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); o=int(sys.argv[2]); f.seek(o); b=f.read(1)[0]; f.seek(o); f.write(bytes([b ^ 0x01]))' "$T_TMP/flip.arca" "$off"
expect_exit "one flipped byte: verify FILE exits 3" 3 "$ARCA" verify "$T_TMP/flip.arca"
expect_match "flipped byte: the member is named" "files/sub/big.bin.000002.zst.*checksum mismatch" "$OUT"
cp "$AR" "$T_TMP/keep.arca"; cp "$T_TMP/flip.arca" "$AR"
expect_exit "flipped byte at the destination: verify PIPELINE exits 3" 3 A verify p "$ID"
expect_match "verify PIPELINE names the member" "big.bin.000002.zst" "$OUT"
rm -rf "$R"; mkdir "$R"
expect_exit "flipped byte: restore exits 3" 3 A restore p "$ID" --into dst
cp "$T_TMP/keep.arca" "$AR"
size=$(stat -c %s "$AR")
head -c $((size / 2)) "$AR" > "$T_TMP/trunc.arca"
expect_exit "truncated archive: verify FILE exits 3" 3 "$ARCA" verify "$T_TMP/trunc.arca"
expect_match "truncation is called truncated" "truncated" "$OUT"
head -c $((size / 2)) "$T_TMP/keep.arca" > "$AR"
expect_exit "truncated archive at the destination: verify exits 3" 3 A verify p "$ID"
rm -rf "$R"; mkdir "$R"
expect_exit "truncated archive at the destination: restore exits 3" 3 A restore p "$ID" --into dst
cp "$T_TMP/keep.arca" "$AR"
expect_exit "intact again: verify exits 0" 0 A verify p "$ID"

# --- crafted archives (bsdtar): nothing may be written ---
# a one-file backup to craft from: its manifest lists exactly one member
mkdir -p "$T_TMP/one"; echo hello > "$T_TMP/one/a.txt"
cat >> "$C" <<EOF
[source one]
plugin = files
path = $T_TMP/one
[pipeline one]
source = one
destination = d
EOF
OID=$(A backup one)
CR=$T_TMP/craft; mkdir -p "$CR"; (cd "$CR" && tar -xf "$B/one.$OID.arca" arca.json MANIFEST.json files/a.txt.000000.zst && echo evil > evil && cp MANIFEST.json MANIFEST.orig)
# craft NAME [bsdtar options] -- MEMBERS...: an archive built by bsdtar whose manifest offsets
# are patched to bsdtar's own layout (MANIFEST.json is last, so patching moves nothing
# else): each crafted archive is then refused for its own defect, not for an offset.
craft() {
    local out=$CR/$1.arca; shift
    local opts=(); while [ "$1" != -- ]; do opts+=("$1"); shift; done; shift
    (cd "$CR" && cp MANIFEST.orig MANIFEST.json && bsdtar -cf "$out" --format pax -P "${opts[@]}" "$@" &&
     python3 - "$out" MANIFEST.json <<'PY' && bsdtar -cf "$out" --format pax -P "${opts[@]}" "$@"
import json, sys, tarfile
m = json.load(open(sys.argv[2])); byname = {x["name"]: x for x in m["members"]}
with tarfile.open(sys.argv[1]) as t:
    for ti in t.getmembers():
        if ti.name in byname and "patched" not in byname[ti.name]:
            byname[ti.name]["offset"] = ti.offset_data; byname[ti.name]["patched"] = 1
for x in m["members"]: x.pop("patched", None)
json.dump(m, open(sys.argv[2], "w"))
PY
    )
}
craft dotdot -s ',^evil$,../x,' -- arca.json files/a.txt.000000.zst evil MANIFEST.json
craft abs -s ",^evil\$,$T_TMP/abs-escape," -- arca.json files/a.txt.000000.zst evil MANIFEST.json
RT=$T_TMP/rt; mkdir -p "$RT/inner"
cat >> "$C" <<EOF
[source inner]
plugin = files
path = $RT/inner
EOF
for k in dotdot abs; do
    expect_exit "crafted archive with a $k member: restore refused with exit 3" 3 A restore --from "$CR/$k.arca" --into inner
    expect_match "crafted $k: the member is named and refused" "(\.\./x|abs-escape).*refused" "$OUT"
    [ -z "$(ls -A "$RT/inner")" ] && [ ! -e "$RT/x" ] && [ ! -e "$T_TMP/abs-escape" ] && [ ! -e "$RT/inner/a.txt" ] \
        && pass "crafted $k: nothing written anywhere" || fail "crafted $k: nothing written" "$(find "$RT" "$T_TMP/abs-escape" 2>/dev/null)"
done
(cd "$CR" && ln -sf /etc/passwd lnk); craft link -- arca.json files/a.txt.000000.zst lnk MANIFEST.json
expect_exit "crafted archive with a symlink member: refused with exit 3" 3 A restore --from "$CR/link.arca" --into inner
expect_match "symlink member named" "lnk.*symbolic link.*refused" "$OUT"
craft extra -- arca.json files/a.txt.000000.zst evil MANIFEST.json
expect_exit "member not in the manifest: refused with exit 3" 3 "$ARCA" verify "$CR/extra.arca"
expect_match "unlisted member named" "'evil' comes after the manifest's last member: unlisted" "$OUT"
craft renamed -s ',^files/a\.txt,files/b.txt,' -- arca.json files/a.txt.000000.zst MANIFEST.json
expect_exit "a member renamed (same bytes, same size): refused with exit 3" 3 "$ARCA" verify "$CR/renamed.arca"
expect_match "... as not the member the manifest lists next" "'files/b.txt.000000.zst' is not the member the manifest lists next \('files/a.txt.000000.zst'\)" "$OUT"
craft dup -- arca.json files/a.txt.000000.zst files/a.txt.000000.zst MANIFEST.json
expect_exit "duplicate member: refused with exit 3" 3 "$ARCA" verify "$CR/dup.arca"
expect_match "duplicate named" "a.txt.000000.zst' comes after the manifest's last member: unlisted or duplicated" "$OUT"
python3 - "$CR/MANIFEST.orig" "$CR/evilman.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["objects"][0]["name"] = "../../etc/evil"
json.dump(m, open(sys.argv[2], "w"))
PY
(cd "$CR" && cp evilman.json MANIFEST.json.x && mkdir -p e2 && cp arca.json e2/ && cp evilman.json e2/MANIFEST.json && cd e2 && bsdtar -cf "$CR/evilman.arca" --format pax arca.json MANIFEST.json)
expect_exit "manifest naming ../../etc/evil: refused with exit 3" 3 A restore --from "$CR/evilman.arca" --into inner
expect_match "unsafe manifest name refused" "unsafe name.*refused" "$OUT"
# arca's own manifest (offset 1536) over bsdtar's layout, whose headers are larger
(cd "$CR" && cp MANIFEST.orig MANIFEST.json && bsdtar -cf "$CR/shifted.arca" --format pax arca.json files/a.txt.000000.zst MANIFEST.json)
expect_exit "member at an offset other than the manifest's: refused with exit 3" 3 "$ARCA" verify "$CR/shifted.arca"
expect_match "offset disagreement named" "a.txt.000000.zst' starts at byte [0-9]+, the manifest says 1536" "$OUT"
[ -z "$(ls -A "$RT/inner")" ] && pass "refused archives wrote nothing into the target" || fail "target untouched" "$(ls -A "$RT/inner")"
python3 - "$CAT" "$CR/sizeman.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["members"][0]["stored_size"] += 1; m["totals"]["stored_bytes"] += 1
json.dump(m, open(sys.argv[2], "w"))
PY
cp "$CAT" "$T_TMP/man.keep"; cp "$CR/sizeman.json" "$CAT"
expect_exit "size disagreeing with the manifest: verify exits 3" 3 A verify p "$ID"
expect_match "size disagreement named" "is [0-9]+ bytes, the manifest says" "$OUT"
cp "$T_TMP/man.keep" "$CAT"

# --- fan-out: one read feeds two destinations ---
FID=$(A backup fan) && pass "fan-out backup succeeds" || fail "fan-out backup" "$FID"
[ -f "$B/fan.$FID.arca" ] && [ -f "$B2/fan.$FID.arca" ] && cmp -s "$B/fan.$FID.arca" "$B2/fan.$FID.arca" \
    && pass "fan-out: both destinations hold the same archive bytes" || fail "fan-out identical" ""
[ "$(A list fan | grep -c "^$FID ")" = 2 ] && pass "fan-out: list shows the backup at both destinations" || fail "fan-out list" "$(A list fan)"
expect_exit "fan-out: verify checks both destinations" 0 A verify fan "$FID"
[ "$(grep -c '^verify ok' <<<"$OUT")" = 2 ] && pass "fan-out: two verify results" || fail "fan-out verify count" "$OUT"
expect_exit "delete removes the backup everywhere" 0 A delete fan "$FID"
[ ! -e "$B/fan.$FID.arca" ] && [ ! -e "$B2/fan.$FID.manifest.json" ] && pass "delete leaves no file of the backup" || fail "delete files" "$(ls "$B" "$B2")"
expect_exit "deleting it again fails" 1 A delete fan "$FID"

# --- SIGKILL mid-backup leaves no visible backup ---
K=$T_TMP/kill; mkdir -p "$K/src" "$K/bk"
openssl enc -aes-128-ctr -pass pass:arca -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 400000000 > "$K/src/big"
cat > "$K/arca.ini" <<EOF
[source s]
plugin = files
path = $K/src
[destination d]
plugin = nfs
path = $K/bk
[pipeline p]
source = s
destination = d
compression = zstd:19
EOF
"$ARCA" -c "$K/arca.ini" backup p > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 100); do
    t=$(find "$K/bk" -type f -size +1k | head -1); [ -n "$t" ] && break; sleep 0.1
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
[ -n "$t" ] && pass "SIGKILL: the backup was killed mid-way (data was being written)" || fail "SIGKILL mid-way" "no data written before the kill"
out=$("$ARCA" -c "$K/arca.ini" list p 2>&1)
[ -z "$out" ] && pass "SIGKILL: list shows no backup" || fail "SIGKILL list" "$out"
[ -z "$(find "$K/bk" -name '*.arca' -o -name '*.manifest.json')" ] && pass "SIGKILL: no archive under a final name" || fail "SIGKILL final names" "$(ls -a "$K/bk")"

# --- SIGTERM mid-backup: exit 1, and the temporaries are gone too ---
rm -rf "$K/bk"/.[!.]* "$K/bk"/* 2>/dev/null
"$ARCA" -c "$K/arca.ini" backup p > /dev/null 2> "$K/err" &
pid=$!
for _ in $(seq 1 100); do
    t=$(find "$K/bk" -type f -size +1k | head -1); [ -n "$t" ] && break; sleep 0.1
done
kill -TERM $pid 2>/dev/null; rc=0; wait $pid || rc=$?
[ -n "$t" ] && [ "$rc" = 1 ] && pass "SIGTERM: the backup stops with exit 1" || fail "SIGTERM exit" "rc=$rc t=$t $(cat "$K/err")"
expect_match "SIGTERM: the error says interrupted and that nothing is visible" "interrupted.*no destination shows this backup" "$(cat "$K/err")"
[ -z "$(ls -A "$K/bk")" ] && pass "SIGTERM: the destination is left empty (temporaries removed)" || fail "SIGTERM leftovers" "$(ls -A "$K/bk")"

# --- CLI contracts ---
expect_exit "unknown command exits 2" 2 "$ARCA" frobnicate
expect_exit "backup of an unknown pipeline exits 2" 2 A backup nope
expect_match "unknown pipeline named" "no \[pipeline nope\]" "$OUT"
expect_exit "verify of an unknown id exits 1" 1 A verify p 20200101T000000.000Z-000000
expect_exit "restore --from without --into exits 2" 2 A restore --from "$AR"
expect_exit "restore of a files backup into a restore flag it does not know exits 2" 2 A restore p latest --into dst --no-such-flag
expect_exit "verify of a missing file exits 1" 1 "$ARCA" verify "$T_TMP/none.arca"
expect_exit "verify of a non-arca tar exits 3" 3 "$ARCA" verify "$CR/../x/files/a.txt.000000.zst"
expect_exit "--json list is JSON" 0 A --json list p
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d[0]["id"]==sys.argv[2]' "$OUT" "$ID" && pass "--json list holds the id" || fail "--json list" "$OUT"
expect_exit "plugins lists the in-tree plugins" 0 "$ARCA" plugins
expect_match "plugins shows files and nfs with roles" "files .*source.*ABI 1\.[0-9]" "$OUT"
expect_exit "plugins NAME shows options" 0 "$ARCA" plugins nfs
expect_match "plugins nfs lists path and url options" "path .*string" "$OUT"
P=$(script -qec "$ARCA -c $C backup p" /dev/null 2>&1)
expect_match "a TTY gets a progress line with a rate" "backup: .*/s" "$P"
N=$("$ARCA" -c "$C" backup p 2>&1 >/dev/null)
[ -z "$N" ] && pass "no progress line when stderr is not a TTY" || fail "no progress off a TTY" "$N"
V=$("$ARCA" -v -c "$C" backup p 2>&1 >/dev/null)
expect_match "-v logs an info line" "info: backup .* objects" "$V"

# --- reader and writer share their limits: a chunk size the writer would refuse is refused ---
printf '%s\n' "$(printf 'dir' | xxd -p)" > "$T_TMP/one.hex"
python3 "$ROOT/tests/tools/mkarchive.py" "$T_TMP/huge-chunk.arca" p "$T_TMP/one.hex" 1073741824 >/dev/null
expect_exit "an archive claiming 1 GiB chunks is refused (exit 3)" 3 "$ARCA" verify "$T_TMP/huge-chunk.arca"
expect_match "... naming the limit the writer has too" "chunk_size from 65536 to 268435456" "$OUT"
cat > "$T_TMP/bigchunk.ini" <<EOF2
[arca]
chunk_size = 1G
EOF2
expect_exit "... and the writer refuses chunk_size = 1G" 2 "$ARCA" -c "$T_TMP/bigchunk.ini" config check
expect_match "... with the same range" "from 65536 to 268435456" "$OUT"
python3 "$ROOT/tests/tools/mkarchive.py" "$T_TMP/max-chunk.arca" p "$T_TMP/one.hex" 268435456 >/dev/null
/usr/bin/time -f %M -o "$T_TMP/rss" "$ARCA" verify "$T_TMP/max-chunk.arca" >/dev/null 2>&1
kb=$(tail -n 1 "$T_TMP/rss")
[ "$kb" -lt 65536 ] && pass "a small archive with the largest chunk size verifies in $((kb / 1024)) MiB" || fail "small archive, largest chunk size: under 64 MiB" "$((kb / 1024)) MiB"
