#!/usr/bin/env bash
# arca's s3 destination beside Debian's aws CLI, same moto server, same run:
#   upload:   `arca backup` of a 1 GiB incompressible file (read, chunk, zstd,
#             hash, stream to S3) vs `aws s3 cp` of the resulting .arca file
#   download: `arca verify PIPELINE ID` (ranged GETs, every member checked) vs
#             `aws s3 cp s3://.../ID.arca FILE`
# Prints wall times, ratios (arca / aws: below 1.0 means arca is faster) and peak RSS.
# Usage: bench/s3_vs_awscli.sh [MiB] [part_size] [upload_concurrency]   (1024 16M 4)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIB=${1:-1024} PART=${2:-16M} CONC=${3:-4}
ARCA=${ARCA:-$ROOT/build/arca}
export ARCA_PLUGIN_PATH=$ROOT/build/plugins
T=$(mktemp -d "${TMPDIR:-/tmp}/arca-s3bench.XXXXXX")
trap '"$ROOT/tests/servers/moto.sh" stop "$T/moto" >/dev/null 2>&1; rm -rf "$T"' EXIT
eval "$("$ROOT/tests/servers/moto.sh" start "$T/moto" bench)"
aws() { "$ROOT/tests/servers/moto.sh" aws "$T/moto" "$@"; }
export AWS_EC2_METADATA_DISABLED=true

mkdir -p "$T/src" "$T/r"
openssl enc -aes-128-ctr -pass pass:bench -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $((MIB << 20)) > "$T/src/data.bin"
cat > "$T/arca.ini" <<EOF
[arca]
workers = 2
[source s]
plugin = files
path = $T/src
[destination d]
plugin = s3
endpoint = $S3_ENDPOINT
bucket = bench
access_key_id = $S3_KEY
secret_access_key = $S3_SECRET
part_size = $PART
upload_concurrency = $CONC
[pipeline p]
source = s
destination = d
EOF
secs() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s }' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ { printf "%d", $2 / 1024 }' "$1"; }

/usr/bin/time -v -o "$T/t.up" "$ARCA" -c "$T/arca.ini" backup p > "$T/id"
ID=$(tail -n 1 "$T/id")
aws s3 cp --only-show-errors "s3://bench/p.$ID.arca" "$T/archive.arca" # the same bytes, for aws to upload
SIZE=$(stat -c %s "$T/archive.arca")
/usr/bin/time -v -o "$T/a.up" "$ROOT/tests/servers/moto.sh" aws "$T/moto" s3 cp --only-show-errors "$T/archive.arca" s3://bench/aws-copy.arca
/usr/bin/time -v -o "$T/t.down" "$ARCA" -c "$T/arca.ini" verify p "$ID" > /dev/null
rm -f "$T/archive.arca"
/usr/bin/time -v -o "$T/a.down" "$ROOT/tests/servers/moto.sh" aws "$T/moto" s3 cp --only-show-errors s3://bench/aws-copy.arca "$T/archive.arca"

mb=$(echo "$SIZE / 1048576" | bc -l)
row() { printf '%-10s %-34s %8.2f s %8.1f MiB/s %6d MiB RSS\n' "$1" "$2" "$(secs "$3")" "$(echo "$mb / $(secs "$3")" | bc -l)" "$(rss "$3")"; }
echo "archive: $(printf '%.0f' "$mb") MiB, part_size $PART, upload_concurrency $CONC, moto on loopback"
row upload "arca backup (incl. zstd, hashing)" "$T/t.up"
row upload "aws s3 cp" "$T/a.up"
row download "arca verify (every member checked)" "$T/t.down"
row download "aws s3 cp" "$T/a.down"
printf 'ratio arca/aws (wall time): upload %.2f, download %.2f\n' \
    "$(echo "$(secs "$T/t.up") / $(secs "$T/a.up")" | bc -l)" "$(echo "$(secs "$T/t.down") / $(secs "$T/a.down")" | bc -l)"
