# Memory stays bounded: a 2 GiB backup, its verify and restore each peak under 200 MiB RSS
# (measured with /usr/bin/time -v; figures printed for the closing note).
. "$(dirname "$0")/../lib.sh"

S=$T_TMP/src; B=$T_TMP/bk; R=$T_TMP/restore
mkdir -p "$S" "$B" "$R"
# 2 GiB: one 1.5 GiB file (many chunks of one object) and 64 files of 8 MiB
openssl enc -aes-128-ctr -pass pass:mem -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 1610612736 > "$S/big.bin"
for i in $(seq 1 64); do head -c 8388608 "$S/big.bin" | tr '\000-\377' '\001-\377\000' > "$S/f$i.bin" 2>/dev/null || head -c 8388608 "$S/big.bin" > "$S/f$i.bin"; done
cat > "$T_TMP/arca.ini" <<EOF2
[arca]
chunk_size = 8M
workers = 2
[source s]
plugin = files
path = $S
[source r]
plugin = files
path = $R
[destination d]
plugin = nfs
path = $B
fsync = false
[pipeline p]
source = s
destination = d
EOF2
peak() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
/usr/bin/time -v -o "$T_TMP/tb" "$ARCA" -c "$T_TMP/arca.ini" backup p > "$T_TMP/id" 2>/dev/null
mb=$(peak "$T_TMP/tb"); echo "# backup of $(du -sm "$S" | cut -f1) MiB: peak RSS $mb MiB"
[ -s "$T_TMP/id" ] && [ "$mb" -lt 200 ] && pass "2 GiB backup peaks under 200 MiB RSS ($mb MiB)" || fail "backup RSS" "$mb MiB"
rm -f "$S/big.bin"
/usr/bin/time -v -o "$T_TMP/tv" "$ARCA" -c "$T_TMP/arca.ini" verify p latest >/dev/null 2>&1
mv=$(peak "$T_TMP/tv"); echo "# verify: peak RSS $mv MiB"
[ "$mv" -lt 200 ] && pass "verify of a 2 GiB backup peaks under 200 MiB RSS ($mv MiB)" || fail "verify RSS" "$mv MiB"
/usr/bin/time -v -o "$T_TMP/tr" "$ARCA" -c "$T_TMP/arca.ini" restore p latest --into r >/dev/null 2>&1
mr=$(peak "$T_TMP/tr"); echo "# restore: peak RSS $mr MiB"
[ "$mr" -lt 200 ] && [ "$(stat -c %s "$R/big.bin")" = 1610612736 ] && pass "restore of a 2 GiB backup peaks under 200 MiB RSS ($mr MiB)" || fail "restore RSS" "$mr MiB"
