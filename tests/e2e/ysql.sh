#!/usr/bin/env bash
# ysql source end to end against a real PostgreSQL 15 (the YSQL peer): a schema
# with one of everything survives backup and restore (pg_dump --schema-only and
# every table's ordered content identical), table-level backups and restores,
# refusals and failures that say what they left behind.
SUITE=ysql
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/ysql.so" "$BUILD/plugins/nfs.so"
need psql pg_dump python3

PW='s3cr3t-Pw-7f1e'   # must never show up in output, logs or archives
PGDIR=$T_TMP/server
on_exit "'$ROOT/tests/servers/pg.sh' stop '$PGDIR'"
PORT=$(PG_AUTH=scram PG_PASSWORD=$PW "$ROOT/tests/servers/pg.sh" start "$PGDIR" 2>"$T_TMP/pg.err") || peer_failed "PostgreSQL 15" "$T_TMP/pg.err"
SOCK=$PGDIR/pg/sock
# the tests' own client: the trusted socket, no password
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }
db_exists() { [ "$(q -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]; }

q -d postgres -c "CREATE DATABASE src" || { fail "setup" "createdb"; exit 1; }
q -d src -f "$ROOT/tests/fixtures/ysql/schema.sql" >/dev/null || { fail "setup" "loading the fixture schema"; exit 1; }

printf '%s\n' "$PW" > "$T_TMP/pw"
mkdir -p "$T_TMP/backups"
# A restore command that runs psql but refuses the post-data script: a failure
# after the database was created and the data loaded.
cat > "$T_TMP/failing-psql.sh" <<'EOF'
#!/bin/sh
in=$(mktemp) || exit 1
cat > "$in"
if grep -q 'REFRESH MATERIALIZED VIEW' "$in"; then
    echo "failing-psql: refusing the post-data script on purpose" >&2
    rm -f "$in"
    exit 3
fi
psql "$@" < "$in"; rc=$?
rm -f "$in"
exit $rc
EOF
chmod 755 "$T_TMP/failing-psql.sh"

CONF=$T_TMP/arca.ini
DEAD_PORT=$(free_port)
common="host = 127.0.0.1
port = $PORT
user = postgres
password_file = $T_TMP/pw"
cat > "$CONF" <<EOF
[arca]
chunk_size = 1M
[source src]
plugin = ysql
$common
dbname = src
jobs = 3
slice_size = 2M
[source fromfile]
plugin = ysql
$common
dbname = fromfile
[source some]
plugin = ysql
$common
dbname = src
tables = app.parent, "app".CHILD
include_roles = true
[source plain]
plugin = ysql
$common
dbname = src
tables = app.big, app.NOPK
[source failing]
plugin = ysql
$common
dbname = src
restore_command = $T_TMP/failing-psql.sh
[source asof]
plugin = ysql
$common
dbname = src
as_of = 2025-03-13T23:48:46Z
[source badpw]
plugin = ysql
host = 127.0.0.1
port = $PORT
user = postgres
password = not-the-password
dbname = src
[source dead]
plugin = ysql
host = 127.0.0.1
port = $DEAD_PORT
user = postgres
dbname = src
connect_timeout = 5
[source nodump]
plugin = ysql
$common
dbname = src
dump_command = $T_TMP/no-such-dir/pg_dump
[destination d]
plugin = nfs
path = $T_TMP/backups
[pipeline p]
source = src
destination = d
[pipeline some]
source = some
destination = d
[pipeline plain]
source = plain
destination = d
[pipeline asof]
source = asof
destination = d
[pipeline badpw]
source = badpw
destination = d
[pipeline dead]
source = dead
destination = d
[pipeline nodump]
source = nodump
destination = d
EOF
A() { "$ARCA" -c "$CONF" "$@"; }

check "config check accepts every ysql section" A config check

# ---- full round trip ------------------------------------------------------------------------
expect_exit "backup of the fixture database" 0 A -v backup p
ID=$(tail -n 1 <<<"$OUT" | grep -Eo '^[0-9]{8}T[0-9.]+Z-[0-9a-f]{6}' || true)
BACKUP_LOG=$OUT
[ -n "$ID" ] || { fail "backup printed an id" "$OUT"; exit 1; }
ARCHIVE=$T_TMP/backups/p.$ID.arca

A --json inspect p "$ID" > "$T_TMP/inspect.json" 2>&1
expect_match "the header says PostgreSQL, full mode, database src" "ok" "$(python3 - "$T_TMP/inspect.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
m = d.get("manifest", d)
h = m["header"]
info = h["source"]
flat = json.dumps(info)
ok = '"yugabytedb": "false"' in flat and '"mode": "full"' in flat and '"database": "src"' in flat
print("ok" if ok else "bad: " + flat)
EOF
)"
expect_match "objects: catalog first, pre-data before data, post-data last; big table sliced with row counts, small tables packed" "ok" "$(python3 - "$T_TMP/inspect.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
m = d.get("manifest", d)
objs = [o["name"] for o in m["objects"]]
first_data = min(i for i, n in enumerate(objs) if n.startswith("data/"))
big = [o for o in m["objects"] if o["name"].startswith("data/app.big/")]
rows = sum(o["meta"]["rows"] for o in big)
digests = all(o["meta"].get("digest", "").startswith("sha256-sum128:") or o["meta"].get("segments") for o in m["objects"] if o["name"].startswith("data/"))
ok = (objs[0] == "schema/catalog.json" and objs.index("schema/pre-data.sql") < first_data
      and objs[-1] == "schema/post-data.sql" and len(big) >= 3 and rows == 60000 and digests
      and all(o["meta"]["slices"] == len(big) for o in big))
print("ok" if ok else "bad: %s big=%d rows=%d" % (objs, len(big), rows))
EOF
)"
if grep -aq "$PW" "$ARCHIVE" "$T_TMP/backups/p.$ID.manifest.json" "$T_TMP/inspect.json" || grep -q "$PW" <<<"$BACKUP_LOG"; then
    fail "the password is in no archive, manifest or log" "found it"
else
    pass "the password is in no archive, manifest or log"
fi

expect_exit "restore into a new database with --verify-data" 0 A -vv restore p "$ID" --target-database restored --verify-data
expect_match "... which the restore created and verified" 'created database "restored".*|verify: every table matches' "$OUT"
# app.conv (bool, integers, char(n), varchar(n)) goes in COPY's binary format; app.big (text, float) stays in text
expect_match "... loading app.conv's slices in COPY's binary format" 'data/app\.conv/part-0000 goes in COPY.s binary format' "$OUT"
if grep -Eq 'app\.(big|everything).* goes in COPY.s binary' <<<"$OUT"; then
    fail "... and tables of other types in text" "$(grep -E 'goes in COPY' <<<"$OUT")"
else
    pass "... and tables of other types in text"
fi

schema_of() { pg_dump -h "$SOCK" -p "$PORT" -U postgres --schema-only "$1" 2>&1 | grep -v '^\\\(un\)\?restrict '; }
# every table's (and the materialized view's) rows in a fixed order, hashed: independent of arca's digest
contents_of() {
    local t
    q -d "$1" -c "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname !~ '^pg_toast' ORDER BY 1" |
    while IFS= read -r t; do
        echo "$t $(q -d "$1" -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(x::text, E'\n' ORDER BY x::text), '')) FROM $t x")"
    done
    q -d "$1" -c "SELECT format('%I.%I', schemaname, sequencename), last_value FROM pg_sequences ORDER BY 1"
}
SRC_SCHEMA=$(schema_of src)
SRC_CONTENTS=$(contents_of src)
[ "$(grep -c '^CREATE \(TABLE\|INDEX\|TRIGGER\|MATERIALIZED VIEW\|EXTENSION\)' <<<"$SRC_SCHEMA")" -ge 20 ] &&
    pass "the source's schema dump is complete enough to compare" || fail "the source's schema dump is complete enough to compare" "$SRC_SCHEMA"
same_as_src() { # NAME DB
    local s c
    s=$(diff <(echo "$SRC_SCHEMA") <(echo "$(schema_of "$2")")) && pass "$1: pg_dump --schema-only matches the source" ||
        fail "$1: pg_dump --schema-only matches the source" "$(head -c 1500 <<<"$s")"
    c=$(diff <(echo "$SRC_CONTENTS") <(echo "$(contents_of "$2")")) && pass "$1: every table's ordered content and sequence matches" ||
        fail "$1: every table's ordered content and sequence matches" "$(head -c 1500 <<<"$c")"
}
same_as_src "new database" restored
[ "$(wc -l <<<"$SRC_CONTENTS")" -ge 15 ] && pass "... over all $(wc -l <<<"$SRC_CONTENTS") tables, views and sequences" ||
    fail "... over all tables" "$SRC_CONTENTS"

# ---- refusals ----------------------------------------------------------------------------------
expect_exit "restore into a database that holds tables is refused" 1 A restore p "$ID" --target-database restored
expect_match "... saying it is not empty, with the way out" 'restored.*not empty.*hint: .*--target-database.*--clean' "$(tr '\n' ' ' <<<"$OUT")"
expect_exit "restore over the source itself is refused the same way" 1 A restore p "$ID"
same_as_src "after the refusals the source" src

expect_exit "restore with --clean replaces the database" 0 A restore p "$ID" --target-database restored --clean
same_as_src "after --clean" restored

# ---- one table from a full backup ------------------------------------------------------------------
expect_exit "--table restores one table into a new database" 0 A restore p "$ID" --target-database onetable --table app.big --verify-data
[ "$(q -d onetable -c "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'app'::regnamespace")" = 1 ] &&
    [ "$(q -d onetable -c "SELECT count(*) FROM app.big")" = 60000 ] &&
    [ "$(q -d onetable -c "SELECT count(*) FROM pg_indexes WHERE tablename = 'big'")" = 1 ] &&
    pass "... only that table, with its rows and primary key" || fail "... only that table, with its rows and primary key" ""
expect_exit "--table with a quoted mixed-case name and a new schema" 0 A restore p "$ID" --target-database onetable --table '"My Schema"."Mixed Case.Table"'
[ "$(q -d onetable -c 'SELECT string_agg("Value Col", $$,$$ ORDER BY "Id") FROM "My Schema"."Mixed Case.Table"')" = "x,Ζ" ] &&
    pass "... restores its rows" || fail "... restores its rows" ""
expect_exit "--table over an existing table is refused" 1 A restore p "$ID" --target-database onetable --table app.big
expect_match "... naming it, with a hint" '"app"."big".*hint: pass --clean' "$(tr '\n' ' ' <<<"$OUT")"
q -d onetable -c "DELETE FROM app.big WHERE id > 10"
expect_exit "--table --clean empties and reloads it" 0 A restore p "$ID" --target-database onetable --table app.big --clean
[ "$(q -d onetable -c "SELECT count(*) FROM app.big")" = 60000 ] && pass "... all rows are back" || fail "... all rows are back" ""

# --verify-data compares with the digest taken at backup time: a trigger that changes rows on the way in must be caught
q -d onetable -c "CREATE FUNCTION app.tamper() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN IF NEW.id = 4242 THEN NEW.filler := 'x'; END IF; RETURN NEW; END\$\$;
                  CREATE TRIGGER tamper BEFORE INSERT ON app.big FOR EACH ROW EXECUTE FUNCTION app.tamper();
                  ALTER TABLE app.big ENABLE ALWAYS TRIGGER tamper"
expect_exit "--verify-data notices a table that differs from the backup (exit 3)" 3 A restore p "$ID" --target-database onetable --table app.big --clean --verify-data
expect_match "... naming the table and both digests" '"app"."big": 60000 rows, sha256-sum128:[0-9a-f]{32}; the backup has 60000 rows' "$OUT"

# binary COPY converts for the target's column types: a value that does not fit fails the load,
# naming the table, the object, the row and the column (and the table keeps no partial rows)
expect_exit "--table app.conv into a new database (binary COPY)" 0 A -vv restore p "$ID" --target-database onetable --table app.conv --verify-data
expect_match "... goes in COPY's binary format" 'app\.conv/part-0000 goes in COPY.s binary format' "$OUT"
q -d onetable -c "ALTER TABLE app.conv ALTER big TYPE integer USING 0"
expect_exit "--table --clean into a column too narrow for the values fails (exit 3)" 3 A restore p "$ID" --target-database onetable --table app.conv --clean
expect_match "... naming the table, the object, the row and the column" 'loading table "app"."conv" \(data/app\.conv/part-[0-9]+\) failed: row [0-9]+: column 4: value "-?[0-9]+" is out of range for type integer' "$OUT"
[ "$(q -d onetable -c "SELECT count(*) FROM app.conv")" = 0 ] && pass "... leaving the emptied table without partial rows" ||
    fail "... leaving the emptied table without partial rows" "$(q -d onetable -c "SELECT count(*) FROM app.conv")"

# ---- restore --from a file -------------------------------------------------------------------------
expect_exit "restore --from FILE --into another source" 0 A restore --from "$ARCHIVE" --into fromfile
same_as_src "--from FILE" fromfile

# ---- table-level backups -----------------------------------------------------------------------
q -d postgres -c "CREATE ROLE arca_probe_role NOLOGIN"
expect_exit "backup of two tables (tables = ..., include_roles)" 0 A backup some
q -d postgres -c "DROP ROLE arca_probe_role"
SOME_ID=$(tail -n 1 <<<"$OUT")
A --json inspect some "$SOME_ID" > "$T_TMP/some.json" 2>&1
check "... is recorded as mode tables" python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["header"]["source"]["mode"] == "tables"' "$T_TMP/some.json"
# the use case: tables dropped by mistake come back into the database that has the rest of the schema
q -d restored -c "DROP TABLE app.child, app.parent CASCADE" 2>/dev/null
expect_exit "restoring it where the two tables were dropped" 0 A -v restore some "$SOME_ID" --target-database restored
[ "$(q -d restored -c "SELECT count(*) FROM app.child c JOIN app.parent p ON p.id = c.parent_id WHERE c.note NOT LIKE '%touched%'")" = 1000 ] &&
    [ "$(q -d restored -c "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'app.child'::regclass")" = 1 ] &&
    [ "$(q -d restored -c "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.child'::regclass AND NOT tgisinternal")" = 1 ] &&
    pass "... brings rows, foreign key and trigger back (the trigger created after the load)" ||
    fail "... brings rows, foreign key and trigger back (the trigger created after the load)" "$OUT"
[ "$(q -d postgres -c "SELECT count(*) FROM pg_roles WHERE rolname = 'arca_probe_role'")" = 1 ] &&
    pass "... and recreates the backed-up role" || fail "... and recreates the backed-up role" "$OUT"
expect_exit "restoring it again is refused: the tables exist" 1 A restore some "$SOME_ID" --target-database restored
# child slices may load before parent rows: reloading related tables must not trip their foreign key
q -d restored -c "DELETE FROM app.child WHERE id % 2 = 0"
expect_exit "... and with --clean reloads both, foreign key between them and all" 0 A restore some "$SOME_ID" --target-database restored --clean --verify-data
[ "$(q -d restored -c "SELECT count(*) FROM app.child c JOIN app.parent p ON p.id = c.parent_id WHERE c.note NOT LIKE '%touched%'")" = 1000 ] &&
    pass "... without firing the trigger on the reloaded rows" || fail "... without firing the trigger on the reloaded rows" ""
expect_exit "a table-level backup of self-contained tables" 0 A backup plain
expect_exit "... restores into a new database" 0 A restore plain "$(tail -n 1 <<<"$OUT")" --target-database plain --verify-data
[ "$(q -d plain -c "SELECT string_agg(relname || ':' || (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM app.' || relname, false, true, '')))[1]::text, ',' ORDER BY relname) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'app'::regnamespace")" = "big:60000,nopk:5" ] &&
    pass "... with exactly those tables and rows" || fail "... with exactly those tables and rows" "$(q -d plain -c "SELECT relname FROM pg_class WHERE relnamespace = 'app'::regnamespace")"

# ---- a failure after the database was created ---------------------------------------------------------
expect_exit "a restore that fails in post-data exits 1" 1 A restore p "$ID" --into failing --target-database halfway
expect_match "... names the statement's tool and says the database was created and left" 'refusing the post-data script.*"halfway" was created by this restore and is left as it is for inspection' "$(tr '\n' ' ' <<<"$OUT")"
db_exists halfway && pass "... and the database is indeed still there" || fail "... and the database is indeed still there" ""
expect_exit "the same with --drop-on-failure exits 1" 1 A restore p "$ID" --into failing --target-database halfway2 --drop-on-failure
expect_match "... and says the database was dropped" '"halfway2", created by this restore, was dropped' "$OUT"
db_exists halfway2 && fail "... and it is gone" "still there" || pass "... and it is gone"

# ---- bad input -----------------------------------------------------------------------------------------
n_before=$(ls "$T_TMP/backups" | wc -l)
expect_exit "as_of on PostgreSQL is refused (exit 2)" 2 A backup asof
expect_match "... saying time travel needs YugabyteDB and naming the server" 'as_of = 2025-03-13T23:48:46Z needs YugabyteDB.*127.0.0.1:[0-9]+/src runs PostgreSQL 15' "$OUT"
expect_exit "a wrong password fails the backup (exit 1)" 1 A backup badpw
expect_match "... naming the server, with a hint" "postgres@127.0.0.1:$PORT/src.*password authentication failed.*hint: check password" "$(tr '\n' ' ' <<<"$OUT")"
grep -q 'not-the-password' <<<"$OUT" && fail "... without printing the password" "$OUT" || pass "... without printing the password"
expect_exit "an unreachable server fails the backup (exit 1)" 1 A backup dead
expect_match "... naming host and port, with a hint" "127.0.0.1:$DEAD_PORT/src.*hint: check host and port" "$(tr '\n' ' ' <<<"$OUT")"
expect_exit "a missing dump command fails the backup (exit 2)" 2 A backup nodump
expect_match "... naming it and the option" "no-such-dir/pg_dump' is not an executable file.*dump_command" "$(tr '\n' ' ' <<<"$OUT")"
[ "$(ls "$T_TMP/backups" | wc -l)" = "$n_before" ] && pass "failed backups leave nothing at the destination" ||
    fail "failed backups leave nothing at the destination" "$(ls "$T_TMP/backups")"
expect_exit "a restore with a wrong password fails (exit 1)" 1 A restore p "$ID" --into badpw --target-database never
db_exists never && fail "... creating nothing" "database 'never' exists" || pass "... creating nothing"
