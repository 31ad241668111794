#!/usr/bin/env bash
# The demo (README's first command): start a throwaway PostgreSQL 15 (the YSQL peer) in
# a temp dir, load sample data, back it up with the ysql source to a local nfs path
# destination, list, verify, restore into a new database, show the row counts side by
# side, stop the server. KEEP=1 keeps the temp dir.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARCA=$ROOT/build/arca
W=$(mktemp -d /tmp/arca-demo.XXXXXX); chmod 755 "$W"
cleanup() { "$ROOT/tests/servers/pg.sh" stop "$W" >/dev/null 2>&1 || true; [ -n "${KEEP:-}" ] || rm -rf "$W"; }
trap cleanup EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

say "tests/servers/pg.sh start $W     # PostgreSQL 15 on 127.0.0.1, in the temp dir"
PORT=$("$ROOT/tests/servers/pg.sh" start "$W"); echo "port $PORT"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres)
"${PSQL[@]}" -d postgres -c "CREATE DATABASE shop"
say "pgbench -i -s 5 shop + the type-coverage schema of the tests"
pgbench -q -i -s 5 -h 127.0.0.1 -p "$PORT" -U postgres shop 2>&1 | tail -1
"${PSQL[@]}" -d shop -f "$ROOT/tests/fixtures/ysql/schema.sql" >/dev/null

mkdir -p "$W/backups"
cat > "$W/arca.ini" <<EOF2
[arca]
plugin_path = $ROOT/build/plugins

[source shop]
plugin = ysql
host = 127.0.0.1
port = $PORT
user = postgres
dbname = shop
jobs = 2

[destination local]
plugin = nfs
path = $W/backups

[pipeline nightly]
source = shop
destination = local
compression = zstd:3
EOF2
cd "$W"
say "cat arca.ini"; sed -n '/\[source/,$p' arca.ini
say "arca config check";                 "$ARCA" -c arca.ini config check
say "arca backup nightly";               id=$("$ARCA" -c arca.ini backup nightly); echo "$id"
say "arca list nightly";                 "$ARCA" -c arca.ini list nightly
say "arca verify nightly $id";           "$ARCA" -c arca.ini verify nightly "$id"
say "arca inspect nightly $id";          "$ARCA" -c arca.ini inspect nightly "$id" | head -22
say "arca restore nightly latest --target-database shop_restored --verify-data"
"$ARCA" -c arca.ini restore nightly latest --target-database shop_restored --verify-data

say "row counts, source beside restored"
counts() {
    "${PSQL[@]}" -d "$1" -At -c "SELECT format('%s.%s', schemaname, relname) FROM pg_stat_user_tables ORDER BY 1" |
    while read -r t; do
        printf '%s\t%s\n' "$t" "$("${PSQL[@]}" -d "$1" -At -c "SELECT count(*) FROM $(sed 's/\([^.]*\)\.\(.*\)/"\1"."\2"/' <<<"$t")")"
    done
}
join -t $'\t' <(counts shop) <(counts shop_restored) | awk -F'\t' 'BEGIN { printf "%-40s %12s %12s\n", "table", "shop", "shop_restored" }
    { printf "%-40s %12s %12s%s\n", $1, $2, $3, ($2 == $3 ? "" : "   DIFFERENT"); if ($2 != $3) bad = 1 } END { exit bad }' \
    && echo "every table has the same row count"
say "tests/servers/pg.sh stop"
