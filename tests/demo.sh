#!/usr/bin/env bash
# The demo: a sample tree backed up by the `files` source to a local `nfs` path
# destination, listed, verified, inspected, restored and compared. Everything in a
# temp dir, removed at the end (KEEP=1 keeps it).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCA=$ROOT/build/arca
W=$(mktemp -d /tmp/arca-demo.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
mkdir -p "$W/data/docs" "$W/data/empty-dir" "$W/backups" "$W/restored"
seq 1 300000 > "$W/data/docs/numbers.txt"
head -c 12000000 /dev/urandom > "$W/data/blob.bin"
echo "héllo wörld" > "$W/data/docs/unicode name ✓.txt"
: > "$W/data/empty-file"
ln -s docs/numbers.txt "$W/data/link-to-numbers"
cat > "$W/arca.ini" <<EOF2
[arca]
plugin_path = $ROOT/build/plugins
chunk_size = 4M

[source data]
plugin = files
path = $W/data

[source restored]
plugin = files
path = $W/restored

[destination local]
plugin = nfs
path = $W/backups

[pipeline demo]
source = data
destination = local
compression = zstd:3
EOF2
cd "$W"
say arca config check;            "$ARCA" -c arca.ini config check
say arca backup demo;             id=$("$ARCA" -c arca.ini backup demo); echo "$id"
say arca list demo;               "$ARCA" -c arca.ini list demo
say arca verify demo "$id";       "$ARCA" -c arca.ini verify demo "$id"
say arca inspect backups/$id.arca; "$ARCA" inspect "backups/$id.arca" | head -16
say tar -tvf backups/$id.arca;    tar -tvf "backups/$id.arca" | head -8
say arca restore demo latest --into restored; "$ARCA" -c arca.ini restore demo latest --into restored
say diff -r data restored;        diff -r data restored && echo "identical: every file, link and directory"
