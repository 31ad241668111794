#!/usr/bin/env bash
# gcs destination, bounded memory: a 1 GiB backup streamed to fake-gcs-server
# as parallel parts (8 MiB chunks, 4 in flight) peaks under
# chunk_size x (upload_concurrency + 2) + 64 MiB RSS (the core is kept small
# with chunk_size = 1M so that the figure is the plugin's); the 1 GiB object
# then downloads with Google's Python client and verifies.
# GCS_MEMORY_MIB=N changes the size (default 1024; the bound is the same).
SUITE=gcs_memory
. "$(dirname "$0")/../lib.sh"

PY=$ROOT/.deps/venv/bin/python
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/gcs.so" /usr/bin/time "$PY" openssl
G=$T_TMP/gcs
rc=0
envtxt=$("$ROOT/tests/servers/gcs.sh" start "$G" mem 2>"$T_TMP/gcs.err") || rc=$?
on_exit "'$ROOT/tests/servers/gcs.sh' stop '$G'"
[ "$rc" = 0 ] || peer_failed fake-gcs-server "$T_TMP/gcs.err"
eval "$envtxt"
unset GOOGLE_APPLICATION_CREDENTIALS

MIB=${GCS_MEMORY_MIB:-1024}
CHUNK_MIB=8 CONC=4
BOUND=$((CHUNK_MIB * (CONC + 2) + 64))
S=$T_TMP/src
mkdir -p "$S"
openssl enc -aes-128-ctr -pass pass:gcsmem -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $((MIB << 20)) > "$S/big.bin"
cat > "$T_TMP/arca.ini" <<EOF2
[arca]
chunk_size = 1M
workers = 2
[source s]
plugin = files
path = $S
[destination d]
plugin = gcs
endpoint = $GCS_ENDPOINT
bucket = mem
access_token = memory-test-token
chunk_size = ${CHUNK_MIB}M
upload_concurrency = $CONC
[pipeline p]
source = s
destination = d
EOF2
peak() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1"; }

/usr/bin/time -v -o "$T_TMP/tb" "$ARCA" -c "$T_TMP/arca.ini" -v backup p > "$T_TMP/id" 2>"$T_TMP/backup.err"
mb=$(peak "$T_TMP/tb")
id=$(tail -n 1 "$T_TMP/id")
echo "# backup of $MIB MiB: $(wall "$T_TMP/tb") wall, peak RSS $mb MiB (bound $BOUND MiB)"
if [ -n "$id" ] && [ "$mb" -lt "$BOUND" ]; then
    pass "$MIB MiB streamed upload peaks under chunk_size x (upload_concurrency + 2) + 64 MiB ($mb < $BOUND MiB)"
else
    fail "$MIB MiB streamed upload peaks under chunk_size x (upload_concurrency + 2) + 64 MiB" "$mb MiB: $(tail -c 400 "$T_TMP/backup.err")"
fi
expect_match "the upload went as parallel parts composed at commit" "parallel parts composed" "$(cat "$T_TMP/backup.err")"
if "$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" get mem "p.$id.arca" "$T_TMP/dl.arca" 2>"$T_TMP/dl.err"; then
    check "Google's client downloads the $MIB MiB archive and arca verify FILE accepts it" "$ARCA" verify "$T_TMP/dl.arca"
else fail "Google's client downloads the archive" "$(tail -3 "$T_TMP/dl.err")"; fi
