#!/usr/bin/env bash
# ysql source: one row of a 300 MB bytea and a 200 MB text (800 MB of COPY text) backs
# up and restores with --verify-data in bounded memory: peak RSS under 256 MiB (libpq
# alone would hold such a row twice). The row's digest in the manifest is the one of
# the COPY line PostgreSQL itself writes (computed here from psql's COPY), so the line
# arca builds piece by piece is byte for byte COPY's, escapes and all.
SUITE=ysql_hugerow
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/ysql.so" "$BUILD/plugins/nfs.so"
need psql python3 /usr/bin/time

RSS_MAX_KIB=$((256 * 1024))
PGDIR=$T_TMP/server
on_exit "'$ROOT/tests/servers/pg.sh' stop '$PGDIR'"
PORT=$("$ROOT/tests/servers/pg.sh" start "$PGDIR" 2>"$T_TMP/pg.err") || peer_failed "PostgreSQL 15" "$T_TMP/pg.err"
SOCK=$PGDIR/pg/sock
export PGCLIENTENCODING=UTF8
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }

q -d postgres -c "CREATE DATABASE huge"
# every byte COPY escapes is in the big values: tab, newline, carriage return, backslash,
# backspace, form feed, vertical tab (\013: E'' has no \v); and a multibyte character cut by
# the 16 MiB pieces
t0=$SECONDS
q -d huge >/dev/null <<'EOF' || { fail "setup" "creating the huge row"; exit 0; }
CREATE TABLE h (id int PRIMARY KEY, b bytea, t text, j jsonb, n numeric);
INSERT INTO h SELECT 1, decode(repeat('00ff5c0a0d0908', 300 * 1024 * 1024 / 7 + 1), 'hex'),
                      repeat(s, 200 * 1024 * 1024 / octet_length(s) + 1), '{"small": true}', 1.5
  FROM (SELECT E'tab\there, newline\nreturn\rback\\slash\bbell\fform\013vert é€😀 ' AS s) x;
INSERT INTO h VALUES (2, '\x00', E'a\tb', NULL, NULL), (3, NULL, NULL, '[1, 2]', 0);
EOF
sizes=$(q -d huge -c "SELECT octet_length(b) || ' ' || octet_length(t) FROM h WHERE id = 1")
read -r bsize tsize <<<"$sizes"
[ "$bsize" -ge $((300 * 1024 * 1024)) ] && [ "$tsize" -ge $((200 * 1024 * 1024)) ] &&
    pass "a row of a ${bsize}-byte bytea and a ${tsize}-byte text (made in $((SECONDS - t0)) s)" ||
    fail "a row of a 300 MB bytea and a 200 MB text" "$sizes"

mkdir -p "$T_TMP/backups"
CONF=$T_TMP/arca.ini
cat > "$CONF" <<EOF
[source huge]
plugin = ysql
host = 127.0.0.1
port = $PORT
user = postgres
dbname = huge
[destination d]
plugin = nfs
path = $T_TMP/backups
[pipeline p]
source = huge
destination = d
EOF
A() { "$ARCA" -c "$CONF" "$@"; }
rss() { tail -n 1 "$1" | grep -Eo '^[0-9]+' || echo 999999999; }

t0=$SECONDS
expect_exit "backup" 0 /usr/bin/time -f '%M KiB peak RSS' -o "$T_TMP/backup.time" "$ARCA" -c "$CONF" backup p
ID=$(tail -n 1 <<<"$OUT")
BRSS=$(rss "$T_TMP/backup.time")
[ "$BRSS" -lt "$RSS_MAX_KIB" ] && pass "... in $BRSS KiB peak RSS (< $RSS_MAX_KIB), $((SECONDS - t0)) s" ||
    fail "... in less than $RSS_MAX_KIB KiB peak RSS" "$BRSS KiB"

# the digest PostgreSQL's own COPY text gives (psql holds the line; this is the test's memory)
want=$(q -d huge -c "COPY public.h (id, b, t, j, n) TO STDOUT" | python3 -c '
import hashlib, sys
s, n = 0, 0
for line in sys.stdin.buffer:
    s = (s + int.from_bytes(hashlib.sha256(line).digest()[:16], "big")) % (1 << 128)
    n += 1
print("%d sha256-sum128:%032x" % (n, s))')
got=$(A --json inspect p "$ID" 2>&1 | python3 -c '
import json, sys
m = json.load(sys.stdin)
o = [x for x in m["objects"] if x["name"].startswith("data/public.h/")]
print("%d %s" % (sum(x["meta"]["rows"] for x in o), o[0]["meta"]["digest"] if len(o) == 1 else "?"))')
[ "$got" = "$want" ] && pass "... its digest is that of PostgreSQL's COPY text ($want)" ||
    fail "... its digest is that of PostgreSQL's COPY text" "archive: $got, COPY: $want"

t0=$SECONDS
expect_exit "restore with --verify-data" 0 /usr/bin/time -f '%M KiB peak RSS' -o "$T_TMP/restore.time" \
    "$ARCA" -c "$CONF" restore p "$ID" --target-database copy --verify-data
RRSS=$(rss "$T_TMP/restore.time")
[ "$RRSS" -lt "$RSS_MAX_KIB" ] && pass "... in $RRSS KiB peak RSS (< $RSS_MAX_KIB), $((SECONDS - t0)) s" ||
    fail "... in less than $RSS_MAX_KIB KiB peak RSS" "$RRSS KiB"
rows() { q -d "$1" -c "SELECT id, md5(b), md5(t), j, n FROM h ORDER BY id"; }
[ "$(rows huge)" = "$(rows copy)" ] && pass "... the rows are the same, byte for byte" ||
    fail "... the rows are the same, byte for byte" "$(diff <(rows huge) <(rows copy))"
echo "# huge row: backup $BRSS KiB, restore --verify-data $RRSS KiB peak RSS"
