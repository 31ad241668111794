#!/usr/bin/env bash
# s3 destination, bounded memory: a 1 GiB backup streamed to moto in 8 MiB parts,
# 4 in flight, peaks under part_size x (upload_concurrency + 2) + 64 MiB RSS
# (the core is kept small with chunk_size = 1M so that the figure is the
# plugin's). Downloads are measured by bench/s3_vs_awscli.sh: moto serves each
# ranged GET of a 1 GiB object in about a second, too slow for the test suite.
# S3_MEMORY_MIB=N changes the size (default 1024; the bound is the same).
SUITE=s3_memory
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/s3.so" /usr/bin/time
M=$T_TMP/moto
rc=0
envtxt=$("$ROOT/tests/servers/moto.sh" start "$M" mem 2>"$T_TMP/moto.err") || rc=$?
on_exit "'$ROOT/tests/servers/moto.sh' stop '$M'"
[ "$rc" = 0 ] || peer_failed moto "$T_TMP/moto.err"
eval "$envtxt"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE
export AWS_EC2_METADATA_DISABLED=true AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

MIB=${S3_MEMORY_MIB:-1024}
PART_MIB=8 CONC=4
BOUND=$((PART_MIB * (CONC + 2) + 64))
S=$T_TMP/src R=$T_TMP/restore
mkdir -p "$S" "$R"
openssl enc -aes-128-ctr -pass pass:s3mem -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $((MIB << 20)) > "$S/big.bin"
cat > "$T_TMP/arca.ini" <<EOF
[arca]
chunk_size = 1M
workers = 2
[source s]
plugin = files
path = $S
[source r]
plugin = files
path = $R
[destination d]
plugin = s3
endpoint = $S3_ENDPOINT
bucket = mem
access_key_id = $S3_KEY
secret_access_key = $S3_SECRET
part_size = ${PART_MIB}M
upload_concurrency = $CONC
[pipeline p]
source = s
destination = d
EOF
peak() { awk -F': ' '/Maximum resident set size/ {print int($2/1024)}' "$1"; }
wall() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1"; }

/usr/bin/time -v -o "$T_TMP/tb" "$ARCA" -c "$T_TMP/arca.ini" -v backup p > "$T_TMP/id" 2>"$T_TMP/backup.err"
mb=$(peak "$T_TMP/tb")
parts=$(sed -n 's/.* bytes in \([0-9]*\) parts.*/\1/p' "$T_TMP/backup.err" | head -n 1)
echo "# backup of $MIB MiB in ${parts:-?} parts: $(wall "$T_TMP/tb") wall, peak RSS $mb MiB (bound $BOUND MiB)"
if [ -s "$T_TMP/id" ] && [ "$mb" -lt "$BOUND" ]; then
    pass "$MIB MiB streamed upload peaks under part_size x (upload_concurrency + 2) + 64 MiB ($mb < $BOUND MiB)"
else
    fail "$MIB MiB streamed upload peaks under part_size x (upload_concurrency + 2) + 64 MiB" "$mb MiB: $(tail -c 400 "$T_TMP/backup.err")"
fi
[ "${parts:-0}" -ge $((MIB / PART_MIB)) ] && pass "the upload was multipart ($parts parts)" ||
    fail "the upload was multipart" "$(grep parts "$T_TMP/backup.err")"
