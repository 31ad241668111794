#!/usr/bin/env bash
# ysql restore, post-data: the index builds (CREATE INDEX, ADD PRIMARY KEY / UNIQUE on
# ordinary tables) run on `jobs` connections before the rest of the post-data; what they
# build is what pg_dump dumped (tablespaces, partitioned tables' indexes, exclusion and
# foreign keys, comments), and a build that fails stops the restore naming the index,
# its table and the server's message. Against a real PostgreSQL 15.
SUITE=ysql_postdata
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/ysql.so" "$BUILD/plugins/nfs.so"
need psql pg_dump python3

B=/usr/lib/postgresql/15/bin
PGDIR=$T_TMP/server
on_exit "'$ROOT/tests/servers/pg.sh' stop '$PGDIR'"
PORT=$("$ROOT/tests/servers/pg.sh" start "$PGDIR" 2>"$T_TMP/pg.err") || peer_failed "PostgreSQL 15" "$T_TMP/pg.err"
SOCK=$PGDIR/pg/sock
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# a tablespace: one index lives there
mkdir -p "$T_TMP/ts" && chmod 755 "$T_TMP" && { [ "$(id -u)" != 0 ] || chown postgres: "$T_TMP/ts"; }
q -d postgres -c "CREATE TABLESPACE fast LOCATION '$T_TMP/ts'" -c "CREATE DATABASE src" ||
    { fail "setup" "tablespace and database"; exit 0; }
q -d src >/dev/null <<'EOF' || { fail "setup" "schema"; exit 0; }
CREATE EXTENSION btree_gist;
CREATE SCHEMA s;
CREATE TABLE s.big (id bigint NOT NULL, code text NOT NULL, at timestamptz NOT NULL, r int4range, v int);
INSERT INTO s.big SELECT g, 'c' || g, timestamptz '2024-01-01' + g * interval '1 minute',
       int4range(g * 10, g * 10 + 5), g % 100 FROM generate_series(1, 60000) g;
ALTER TABLE s.big ADD CONSTRAINT big_pkey PRIMARY KEY (id);
ALTER TABLE s.big ADD CONSTRAINT big_code_key UNIQUE (code) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX big_at ON s.big (at DESC) TABLESPACE fast;
CREATE INDEX big_v_part ON s.big (v) INCLUDE (code) WHERE v > 50;
CREATE INDEX big_lower ON s.big (lower(code));
ALTER TABLE s.big ADD CONSTRAINT big_r_excl EXCLUDE USING gist (r WITH &&);
COMMENT ON INDEX s.big_at IS 'newest first';
ALTER TABLE s.big CLUSTER ON big_pkey;
CREATE TABLE s.small (id int PRIMARY KEY, big_id bigint REFERENCES s.big (id), note text);
CREATE INDEX small_note ON s.small (note);
INSERT INTO s.small SELECT g, g, 'n' || g FROM generate_series(1, 500) g;
CREATE TABLE s.ev (id bigint NOT NULL, d date NOT NULL, PRIMARY KEY (id, d)) PARTITION BY RANGE (d);
CREATE TABLE s.ev_1 PARTITION OF s.ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE s.ev_2 PARTITION OF s.ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE INDEX ev_d ON s.ev (d);
INSERT INTO s.ev SELECT g, date '2024-01-01' + g % 700 FROM generate_series(1, 5000) g;
-- an index whose expression fails once s.poison holds a row (filled after the index is built):
-- its build fails on restore, after the data is in
CREATE TABLE s.poison (v int);
CREATE FUNCTION s.guard(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS
$$BEGIN IF EXISTS (SELECT 1 FROM s.poison WHERE v = x) THEN RAISE EXCEPTION 'poisoned value %', x; END IF; RETURN x; END$$;
CREATE TABLE s.victim (id int PRIMARY KEY, v int);
INSERT INTO s.victim SELECT g, g FROM generate_series(1, 1000) g;
CREATE INDEX victim_guard ON s.victim (s.guard(v));
EOF

mkdir -p "$T_TMP/backups"
CONF=$T_TMP/arca.ini
cat > "$CONF" <<EOF
[source src]
plugin = ysql
host = 127.0.0.1
port = $PORT
user = postgres
dbname = src
jobs = 2
dump_command = $B/pg_dump
restore_command = $B/psql
[destination d]
plugin = nfs
path = $T_TMP/backups
[pipeline p]
source = src
destination = d
EOF
A() { "$ARCA" -c "$CONF" "$@"; }
schema_of() { pg_dump -h "$SOCK" -p "$PORT" -U postgres --schema-only "$1" 2>&1 | grep -v '^\\\(un\)\?restrict '; }

expect_exit "backup" 0 A backup p
ID=$(A list p 2>/dev/null | grep -Eo '[0-9]{8}T[0-9.]+Z-[0-9a-f]{6}' | tail -n 1)

# ---- the builds run apart, on two connections; the result is what pg_dump dumped -----------------
expect_exit "restore --jobs 2" 0 A -vv restore p "$ID" --target-database copy --jobs 2 --verify-data
LOG=$OUT
expect_match "... builds the indexes and keys of ordinary tables on 2 connections" \
    "([0-9]+) indexes and keys built on 2 connections" "$LOG"
built=$(grep -Eo '[0-9]+ indexes and keys built' <<<"$LOG" | grep -Eo '^[0-9]+')
# big: code key, at, v_part, lower (not the exclusion constraint, not the primary key: its
# entry also holds CLUSTER ON); small: pkey, note; victim: pkey, guard; ev_1/ev_2 are
# partitions and ev is partitioned: theirs stay in the script
[ "$built" = 8 ] && pass "... 8 of them (none on the partitioned table or its partitions, no exclusion constraint, not one with CLUSTER ON)" ||
    fail "... 8 builds" "$built: $(grep -Eo '(INDEX|CONSTRAINT) .* built in' <<<"$LOG" | tr '\n' ' ')"
expect_match "... the tablespace's index among them" "INDEX big_at on s.big built in" "$LOG"
s1=$(schema_of src); s2=$(schema_of copy)
d=$(diff <(echo "$s1") <(echo "$s2")) && pass "pg_dump --schema-only of the copy matches the source" ||
    fail "pg_dump --schema-only of the copy matches the source" "$(head -c 1500 <<<"$d")"
[ "$(q -d copy -c "SELECT tablespace FROM pg_indexes WHERE indexname = 'big_at'")" = fast ] &&
    pass "big_at is in tablespace fast" || fail "big_at is in tablespace fast" ""
[ "$(q -d copy -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = 's'::regnamespace AND NOT i.indisvalid")" = 0 ] &&
    pass "every index valid (the partitioned table's attached)" || fail "every index valid" ""
[ "$(q -d copy -c "SELECT count(*) FROM s.big") $(q -d copy -c "SELECT condeferrable FROM pg_constraint WHERE conname = 'big_code_key'")" = "60000 t" ] &&
    pass "rows and the deferrable unique key" || fail "rows and the deferrable unique key" ""

# ---- one transaction per restore would be too many locks: none is needed in a new database ---------
q -d postgres -c "ALTER SYSTEM SET max_locks_per_transaction = 10" >/dev/null &&
    as_pg "$B/pg_ctl" -D "$PGDIR/pg/data" -w -t 60 -m fast restart >/dev/null 2>&1 ||
    fail "restart with max_locks_per_transaction = 10" "$(tail -n 5 "$PGDIR/pg/pg.log")"
q -d postgres -c "CREATE DATABASE many" >/dev/null
for ((k = 0; k < 1500; k += 50)); do # 50 a transaction: the lock table is small now
    q -d many -c "DO \$\$BEGIN FOR i IN $((k + 1))..$((k + 50)) LOOP
                    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
                    EXECUTE format('CREATE INDEX ON t%s (v)', i);
                    EXECUTE format('INSERT INTO t%s VALUES (1, ''x'')', i);
                  END LOOP; END\$\$" || fail "setup: 1,500 tables" ""
done
sed -e "s|^dbname = .*|dbname = many|" "$CONF" > "$T_TMP/many.ini"
"$ARCA" -c "$T_TMP/many.ini" backup p >/dev/null 2>&1 || fail "backup of 1,500 tables" ""
MID=$("$ARCA" -c "$T_TMP/many.ini" list p 2>/dev/null | grep -Eo '[0-9]{8}T[0-9.]+Z-[0-9a-f]{6}' | tail -n 1)
# 1,000 lock slots (10 x 100 connections); the pre-data alone takes more than 2 a table
expect_exit "1,500 tables with a lock table of 1,000: restore into a new database" 0 \
    "$ARCA" -c "$T_TMP/many.ini" restore p "$MID" --target-database many2 --jobs 2 --verify-data
[ "$(q -d many2 -c "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")" = 3000 ] &&
    pass "... with its 3,000 indexes" || fail "... with its 3,000 indexes" ""
q -d postgres -c "CREATE DATABASE many3" >/dev/null
expect_exit "... into an existing empty database (one transaction) it fails" 1 \
    "$ARCA" -c "$T_TMP/many.ini" restore p "$MID" --target-database many3 --jobs 2
expect_match "... saying none of it was applied and what to raise or do" \
    "none of it was applied.*raise max_locks_per_transaction, or let the restore create the database" "$(tr '\n' ' ' <<<"$OUT")"
[ "$(q -d many3 -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = 0 ] &&
    pass "... leaving it empty" || fail "... leaving it empty" ""

# ---- a build that fails ---------------------------------------------------------------------------
q -d src -c "INSERT INTO s.poison VALUES (777)" >/dev/null
expect_exit "backup with a poisoned index expression" 0 A backup p
PID_=$(A list p 2>/dev/null | grep -Eo '[0-9]{8}T[0-9.]+Z-[0-9a-f]{6}' | tail -n 1)
expect_exit "its restore fails (exit 1)" 1 A restore p "$PID_" --target-database bad --jobs 2
expect_match "... naming the index, its table and the server's message" \
    "post-data schema failed at INDEX victim_guard \(table s.victim\): .*poisoned value 777" "$(tr '\n' ' ' <<<"$OUT")"
expect_match "... and the database left for inspection" "\"bad\" was created by this restore and is left" "$OUT"
[ "$(q -d bad -c "SELECT count(*) FROM s.victim")" = 1000 ] && pass "... which holds the data" ||
    fail "... which holds the data" ""
