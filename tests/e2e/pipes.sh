#!/usr/bin/env bash
# Scripted restores read from pipes, and every long operation stops when told:
# `verify -` and `restore --from -` take a valid archive in one pass; a bad one
# on a pipe writes nothing; an endless or stalled stream ends within a second of
# SIGINT or SIGTERM; a restore killed with SIGKILL leaves no short file under a
# real name; restore gives directories the archive's modes whatever the umask.
SUITE=pipes
. "$(dirname "$0")/../lib.sh"
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/nfs.so" openssl python3

S=$T_TMP/src B=$T_TMP/bk
mkdir -p "$S/sub/inner" "$B"
echo hello > "$S/a.txt"
head -c 3000000 /dev/urandom > "$S/sub/big.bin"
chmod 750 "$S/sub"; chmod 711 "$S/sub/inner"
cat > "$T_TMP/arca.ini" <<EOF
[arca]
chunk_size = 1M
[source s]
plugin = files
path = $S
[destination d]
plugin = nfs
path = $B
[pipeline p]
source = s
destination = d
compression = zstd:1
EOF
for t in r1 r2 r3 r4 r5 r6 big; do printf '[source %s]\nplugin = files\npath = %s\n' "$t" "$T_TMP/$t" >> "$T_TMP/arca.ini"; done
A() { "$ARCA" -c "$T_TMP/arca.ini" "$@"; }
ID=$(A backup p) || { fail "backup" "$ID"; exit 0; }
AR=$B/p.$ID.arca

expect_exit "cat ARCHIVE | arca verify -" 0 sh -c "cat '$AR' | '$ARCA' verify -"
expect_match "... checked every member" "verify ok: \(stdin\): 4 objects, 4 members" "$OUT"
expect_exit "cat ARCHIVE | arca verify /dev/stdin (a fifo)" 0 sh -c "cat '$AR' | '$ARCA' verify /dev/stdin"
expect_exit "cat ARCHIVE | arca restore --from - --into r1" 0 sh -c "cat '$AR' | '$ARCA' -c '$T_TMP/arca.ini' restore --from - --into r1"
check "... restores the tree byte for byte" diff -r "$S" "$T_TMP/r1"
[ "$(stat -c %a "$T_TMP/r1/sub")" = 750 ] && pass "... with the modes of its directories" || fail "... with the modes of its directories" "$(stat -c %a "$T_TMP/r1/sub")"

# a bad archive on a pipe writes nothing
python3 - "$AR" "$T_TMP/bad.arca" "$B/p.$ID.manifest.json" <<'EOF'
import json, sys
data = bytearray(open(sys.argv[1], "rb").read()); m = json.load(open(sys.argv[3]))
x = [x for x in m["members"] if x["object"] == "sub/big.bin"][-1]
data[x["offset"] + 100] ^= 1
open(sys.argv[2], "wb").write(data)
EOF
expect_exit "a flipped byte on a pipe: restore --from - exits 3" 3 sh -c "cat '$T_TMP/bad.arca' | '$ARCA' -c '$T_TMP/arca.ini' restore --from - --into r2"
expect_match "... naming the member" "big.bin.000002.zst.*(checksum mismatch|corrupt)" "$OUT"
[ -z "$(ls -A "$T_TMP/r2" 2>/dev/null)" ] && pass "... and wrote nothing" || fail "... and wrote nothing" "$(ls -A "$T_TMP/r2")"
head -c 2000000 "$AR" > "$T_TMP/short.arca"
expect_exit "a truncated archive on a pipe: verify - exits 3" 3 sh -c "cat '$T_TMP/short.arca' | '$ARCA' verify -"

# stalled and endless streams stop within a second of a signal
# stop_in_time NAME SIGNAL CMD...: CMD reads from a pipe that never ends
stop_in_time() {
    local name=$1 sig=$2; shift 2
    local fifo=$T_TMP/fifo.$RANDOM
    mkfifo "$fifo"
    ( head -c 1500000 "$AR"; sleep 60 ) > "$fifo" &
    local feeder=$!
    "$@" < "$fifo" > "$T_TMP/stop.out" 2>&1 &
    local pid=$!
    sleep 1.5
    local t0; t0=$(date +%s%N)
    kill "-$sig" "$pid" 2>/dev/null
    local rc=0 n=0
    while kill -0 "$pid" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.05; n=$((n + 1)); done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"; fail "$name stops within a second of SIG$sig" "still running after 2.5 s"
    else
        wait "$pid" || rc=$?
        local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
        [ "$ms" -lt 1000 ] && [ "$rc" = 1 ] && pass "$name stops ${ms} ms after SIG$sig, exit 1" \
            || fail "$name stops within a second of SIG$sig with exit 1" "rc=$rc after ${ms} ms: $(cat "$T_TMP/stop.out")"
    fi
    kill "$feeder" 2>/dev/null; pkill -P "$feeder" 2>/dev/null; wait "$feeder" 2>/dev/null
    rm -f "$fifo"
}
stop_in_time "verify - of a stalled stream" INT "$ARCA" verify -
expect_match "... saying it was interrupted" "interrupted" "$(cat "$T_TMP/stop.out")"
stop_in_time "restore --from - of a stalled stream" TERM "$ARCA" -c "$T_TMP/arca.ini" restore --from - --into r3
[ -z "$(ls -A "$T_TMP/r3" 2>/dev/null)" ] && pass "... and wrote nothing" || fail "... and wrote nothing" "$(ls -A "$T_TMP/r3")"

# a restore killed mid-file leaves no short file under its real name
mkdir -p "$T_TMP/big"
openssl enc -aes-128-ctr -pass pass:pipes -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 300000000 > "$T_TMP/big/huge.bin"
sed -i "s|^path = $S\$|path = $T_TMP/big|" "$T_TMP/arca.ini"
HID=$(A backup p) || { fail "backup of a 300 MB file" "$HID"; exit 0; }
"$ARCA" -c "$T_TMP/arca.ini" restore p "$HID" --into r4 >/dev/null 2>&1 & # not through A(): $! must be arca
pid=$!
for _ in $(seq 1 200); do
    t=$(find "$T_TMP/r4" -name '.arca-tmp.*' -size +1k 2>/dev/null | head -1); [ -n "$t" ] && break; sleep 0.05
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
kill -0 $pid 2>/dev/null && fail "SIGKILL mid-restore: arca is gone" "still running"
[ -n "$t" ] && pass "SIGKILL mid-restore: the file was being written under a temporary name" || fail "SIGKILL mid-restore" "no temporary seen: $(ls -A "$T_TMP/r4")"
[ ! -e "$T_TMP/r4/huge.bin" ] && pass "... and nothing is under its real name" || fail "... and nothing is under its real name" "$(ls -la "$T_TMP/r4")"
"$ARCA" -c "$T_TMP/arca.ini" restore p "$HID" --into r5 > "$T_TMP/r5.out" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    t=$(find "$T_TMP/r5" -name '.arca-tmp.*' -size +1k 2>/dev/null | head -1); [ -n "$t" ] && break; sleep 0.05
done
t0=$(date +%s%N); kill -INT $pid; rc=0; wait $pid || rc=$?; ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$rc" = 1 ] && [ "$ms" -lt 1000 ] && pass "SIGINT mid-restore stops in ${ms} ms with exit 1" || fail "SIGINT mid-restore" "rc=$rc after ${ms} ms"
[ -z "$(ls -A "$T_TMP/r5")" ] && pass "... and removes its temporary file" || fail "... and removes its temporary file" "$(ls -A "$T_TMP/r5")"

# directories get the archive's modes, not the umask's
sed -i "s|^path = $T_TMP/big\$|path = $S|" "$T_TMP/arca.ini"
( umask 000; A restore p "$ID" --into r6 ) >/dev/null 2>&1
m_root=$(stat -c %a "$T_TMP/r6"); m_sub=$(stat -c %a "$T_TMP/r6/sub"); m_in=$(stat -c %a "$T_TMP/r6/sub/inner")
[ "$m_sub" = 750 ] && [ "$m_in" = 711 ] && pass "under umask 000, listed directories get their archive modes (750, 711)" \
    || fail "listed directories get their archive modes under umask 000" "sub $m_sub inner $m_in"
[ "$m_root" = 700 ] && pass "... and the target made for the restore is 700, not 777" || fail "... the target made for the restore is 700" "$m_root"
