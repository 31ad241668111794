#!/usr/bin/env bash
# ysql source against PostgreSQL 15: what pg_dump/pg_restore carry and arca must too -
# large objects with their contents, the database's own properties (owner, privileges,
# comment, connection limit, settings) under any target name, roles the target cluster
# lacks (refused up front, --no-owner / --no-privileges), a LATIN1 database with
# non-ASCII names, and names with a newline (which pg_dump's comments print as a space).
SUITE=ysql_fidelity
. "$(dirname "$0")/../lib.sh"

need "$ARCA" "$BUILD/plugins/ysql.so" "$BUILD/plugins/nfs.so"
need psql pg_dump python3

PGDIR=$T_TMP/server
on_exit "'$ROOT/tests/servers/pg.sh' stop '$PGDIR'"
PORT=$("$ROOT/tests/servers/pg.sh" start "$PGDIR" 2>"$T_TMP/pg.err") || peer_failed "PostgreSQL 15" "$T_TMP/pg.err"
SOCK=$PGDIR/pg/sock
export PGCLIENTENCODING=UTF8
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }
db_exists() { [ "$(q -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$1'")" = 1 ]; }
same() { # NAME A B: two outputs must be equal
    local d
    if d=$(diff <(echo "$2") <(echo "$3")); then pass "$1"; else fail "$1" "$(head -c 1500 <<<"$d")"; fi
}

mkdir -p "$T_TMP/backups"
CONF=$T_TMP/arca.ini
src() { printf '[source %s]\nplugin = ysql\nhost = 127.0.0.1\nport = %s\nuser = postgres\ndbname = %s\n%s\n[pipeline %s]\nsource = %s\ndestination = d\n' \
    "$1" "$PORT" "$2" "${3:-}" "$1" "$1"; }
{
    printf '[arca]\nchunk_size = 1M\n[destination d]\nplugin = nfs\npath = %s\n' "$T_TMP/backups"
    src lo lo
    src lo_off lo "large_objects = false"
    src props props
    src roles roles
    src roles_r roles "include_roles = true"
    src lat lat
    src lat_t lat 'tables = "tablé"'
    src nl nl
    src nl_t nl $'tables = a?b.t?x\nexclude_tables = "a b"."t x"'
} > "$CONF"
A() { "$ARCA" -c "$CONF" "$@"; }
backup_id() { tail -n 1 <<<"$OUT" | grep -Eo '^[0-9]{8}T[0-9.]+Z-[0-9a-f]{6}' || true; }

# ---- 11. large objects ------------------------------------------------------------------------
q -d postgres -c "CREATE ROLE arca_lo_owner" -c "CREATE ROLE arca_lo_reader" -c "CREATE DATABASE lo"
q -d lo >/dev/null <<'EOF'
CREATE TABLE docs (id int PRIMARY KEY, blob oid);
SELECT lo_create(4242);
COMMENT ON LARGE OBJECT 4242 IS 'empty, commented';
ALTER LARGE OBJECT 4242 OWNER TO arca_lo_owner;
GRANT SELECT ON LARGE OBJECT 4242 TO arca_lo_reader;
SELECT lo_from_bytea(5000, 'hello');
-- bigger than one lo_get batch entry (64 KiB) and than one lo_read (1 MiB)
SELECT lo_from_bytea(5001, decode(string_agg(md5(g::text), ''), 'hex')) FROM generate_series(1, 5000) g;
SELECT lo_from_bytea(5002, decode(string_agg(md5(g::text), ''), 'hex')) FROM generate_series(1, 200000) g;
-- more than one batch of small ones
SELECT lo_from_bytea(6000 + g, convert_to('object ' || g, 'UTF8')) FROM generate_series(1, 300) g;
INSERT INTO docs VALUES (1, 5000), (2, 5002);
EOF
los() { q -d "$1" -c "SELECT oid, pg_get_userbyid(lomowner), coalesce(lomacl::text, '-'), md5(lo_get(oid)), octet_length(lo_get(oid)),
                             coalesce(obj_description(oid, 'pg_largeobject'), '-') FROM pg_largeobject_metadata ORDER BY oid"; }
LO_SRC=$(los lo)
expect_exit "backup of a database with 304 large objects" 0 A -v backup lo
LO_ID=$(backup_id)
expect_match "... says how many large objects it holds" "304 large objects, 3[0-9]{6} bytes" "$OUT"
A --json inspect lo "$LO_ID" > "$T_TMP/lo.json" 2>&1
expect_match "... one object holds their contents, counted and digested" ok "$(python3 - "$T_TMP/lo.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
o = [x for x in m["objects"] if x["name"] == "large-objects/part-0000"]
ok = len(o) == 1 and o[0]["meta"]["rows"] == 304 and o[0]["meta"]["digest"].startswith("sha256-sum128:") and o[0]["size"] > 3200000
print("ok" if ok else "bad: %s" % o)
EOF
)"
expect_exit "restore with --verify-data" 0 A -v restore lo "$LO_ID" --target-database lo_copy --verify-data
expect_match "... verifies the large objects too" "verify: every table and the large objects match" "$OUT"
same "... every large object is back with its bytes, owner, privileges and comment" "$LO_SRC" "$(los lo_copy)"
expect_exit "restore with --no-large-objects" 0 A restore lo "$LO_ID" --target-database lo_none --no-large-objects
[ "$(q -d lo_none -c "SELECT count(*) FROM pg_largeobject_metadata")" = 0 ] && [ "$(q -d lo_none -c "SELECT count(*) FROM docs")" = 2 ] &&
    pass "... leaves them out, tables and all else restored" || fail "... leaves them out" "$(q -d lo_none -c "SELECT count(*) FROM pg_largeobject_metadata")"
expect_exit "backup with large_objects = false" 0 A backup lo_off
A --json inspect lo_off "$(backup_id)" > "$T_TMP/lo_off.json" 2>&1
grep -q 'large-objects/part' "$T_TMP/lo_off.json" && fail "... holds no large objects" "found one" || pass "... holds no large objects"
expect_exit "... and restores without them" 0 A restore lo_off latest --target-database lo_off_copy
[ "$(q -d lo_off_copy -c "SELECT count(*) FROM pg_largeobject_metadata")" = 0 ] && pass "... none created, not even empty ones" ||
    fail "... none created, not even empty ones" "$(q -d lo_off_copy -c "SELECT count(*) FROM pg_largeobject_metadata")"

# ---- 12. the database's own properties ----------------------------------------------------------
q -d postgres -c "CREATE ROLE arca_db_owner" -c "CREATE ROLE arca_db_reader" -c "CREATE DATABASE props OWNER arca_db_owner CONNECTION LIMIT 7"
q -d props <<'EOF'
CREATE TABLE t (id int);
COMMENT ON DATABASE props IS 'the props database, it''s "ours"';
REVOKE TEMPORARY ON DATABASE props FROM PUBLIC;
GRANT CONNECT, CREATE ON DATABASE props TO arca_db_reader WITH GRANT OPTION;
ALTER DATABASE props SET work_mem = '64MB';
ALTER DATABASE props SET search_path = "$user", public, "Odd Schema";
ALTER DATABASE props SET application_name = 'it''s props';
ALTER ROLE arca_db_reader IN DATABASE props SET statement_timeout = '5s';
EOF
props() { # everything but the name
    q -d postgres -c "SELECT pg_get_userbyid(datdba), datconnlimit, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$1'"
    q -d postgres -c "SELECT a.privilege_type, pg_get_userbyid(a.grantor), a.grantee::regrole, a.is_grantable
                      FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = '$1' ORDER BY 1, 2, 3"
    q -d postgres -c "SELECT coalesce(pg_get_userbyid(nullif(setrole, 0)), '-'), setconfig FROM pg_db_role_setting
                      WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = '$1') ORDER BY 1"
}
PROPS=$(props props)
[ "$(wc -l <<<"$PROPS")" -ge 7 ] && pass "the source's properties are set" || fail "the source's properties are set" "$PROPS"
expect_exit "backup of a database with an owner, privileges, a comment, a limit and settings" 0 A backup props
expect_exit "restore under another name" 0 A -v restore props latest --target-database props_copy
same "... carries owner, privileges, comment, connection limit and settings" "$PROPS" "$(props props_copy)"
expect_exit "restore over the original name with --clean" 0 A restore props latest --clean
same "... carries them there too" "$PROPS" "$(props props)"
expect_exit "restore with --no-owner --no-privileges" 0 A restore props latest --target-database props_bare --no-owner --no-privileges
[ "$(q -d postgres -c "SELECT pg_get_userbyid(datdba) || ' ' || (datacl IS NULL) || ' ' || datconnlimit FROM pg_database WHERE datname = 'props_bare'")" = "postgres true 7" ] &&
    pass "... gives the database neither owner nor privileges, but its limit" ||
    fail "... gives the database neither owner nor privileges" "$(props props_bare)"

# ---- 13. roles the target cluster lacks -----------------------------------------------------------
q -d postgres -c "CREATE ROLE arca_carol" -c "CREATE ROLE arca_dave" -c "CREATE DATABASE roles OWNER arca_carol"
q -d roles -c "CREATE TABLE t (i int); INSERT INTO t VALUES (1), (2); ALTER TABLE t OWNER TO arca_carol; GRANT SELECT ON t TO arca_dave"
expect_exit "backup of a database whose objects belong to other roles" 0 A backup roles
expect_exit "... and one that carries the roles (include_roles)" 0 A backup roles_r
q -d postgres -c "DROP DATABASE roles" -c "DROP ROLE arca_carol" -c "DROP ROLE arca_dave"
expect_exit "restore into a cluster without those roles is refused (exit 1)" 1 A restore roles latest --target-database roles_copy
flat=$(tr '\n' ' ' <<<"$OUT")
expect_match "... naming each role and what for, with --no-owner and --no-privileges in the hint" \
    '"arca_carol" \(owns objects, owns the database\) +"arca_dave" \(privileges\) hint: .*--no-owner.*--no-privileges' "$flat"
db_exists roles_copy && fail "... before creating anything" "roles_copy exists" || pass "... before creating anything"
expect_exit "--no-owner alone is refused for the privileges' role" 1 A restore roles latest --target-database roles_copy --no-owner
expect_match "... naming only that role" '"arca_dave" \(privileges\)' "$OUT"
grep -q arca_carol <<<"$OUT" && fail "... and not the owner" "$OUT" || pass "... and not the owner"
expect_exit "--no-owner --no-privileges restores" 0 A restore roles latest --target-database roles_copy --no-owner --no-privileges --verify-data
[ "$(q -d roles_copy -c "SELECT tableowner || ' ' || (SELECT count(*) FROM t) || ' ' || (SELECT relacl IS NULL FROM pg_class WHERE relname = 't') FROM pg_tables WHERE tablename = 't'")" = "postgres 2 true" ] &&
    pass "... the table belongs to the restoring user, without grants, with its rows" ||
    fail "... the table belongs to the restoring user" "$(q -d roles_copy -c '\dp t')"
expect_exit "a backup that holds the roles, restored with --no-roles, is refused" 1 A restore roles_r latest --target-database roles_r_copy --no-roles
expect_match "... saying the backup holds them" "drop --no-roles: the backup holds them" "$OUT"
expect_exit "... and without --no-roles creates them and restores" 0 A restore roles_r latest --target-database roles_r_copy
[ "$(q -d roles_r_copy -c "SELECT tableowner FROM pg_tables WHERE tablename = 't'")" = arca_carol ] &&
    [ "$(q -d roles_r_copy -c "SELECT has_table_privilege('arca_dave', 't', 'SELECT')")" = t ] &&
    pass "... with owner and grant as they were" || fail "... with owner and grant as they were" "$(q -d roles_r_copy -c '\dp t')"

# ---- 14. a LATIN1 database with non-ASCII names -------------------------------------------------------
q -d postgres -c "CREATE DATABASE lat TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C'"
q -d lat <<'EOF'
CREATE SCHEMA "schéma";
CREATE TABLE "schéma"."tablé" (id serial PRIMARY KEY, "colé" text CONSTRAINT "chké" CHECK ("colé" <> 'x'), "prix£" numeric);
CREATE INDEX "idxé" ON "schéma"."tablé" ("colé");
COMMENT ON TABLE "schéma"."tablé" IS 'commenté';
CREATE TABLE "tablé" ("clé" int PRIMARY KEY, "valeur" text);
INSERT INTO "schéma"."tablé" ("colé", "prix£") VALUES ('héllo wörld', 1.5), (E'tab\there\nnewline ÿ', NULL), ('', 0);
INSERT INTO "tablé" SELECT g, 'çà ' || g FROM generate_series(1, 50) g;
EOF
lat_contents() {
    q -d "$1" -c "SELECT md5(string_agg(x::text, '|' ORDER BY id)) FROM \"schéma\".\"tablé\" x"
    q -d "$1" -c "SELECT md5(string_agg(x::text, '|' ORDER BY \"clé\")) FROM \"tablé\" x"
    q -d "$1" -c "SELECT last_value FROM \"schéma\".\"tablé_id_seq\""
}
schema_of() { pg_dump -h "$SOCK" -p "$PORT" -U postgres --schema-only "$1" 2>&1 | grep -v '^\\\(un\)\?restrict '; }
LAT_SRC=$(lat_contents lat)
[ "$(wc -l <<<"$LAT_SRC")" = 3 ] && pass "the LATIN1 database holds its tables" || fail "the LATIN1 database holds its tables" "$LAT_SRC"
expect_exit "backup of a LATIN1 database with non-ASCII table, column, constraint and index names" 0 A backup lat
expect_exit "... restores with --verify-data" 0 A restore lat latest --target-database lat_copy --verify-data
[ "$(q -d postgres -c "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'lat_copy'")" = LATIN1 ] &&
    pass "... into a LATIN1 database" || fail "... into a LATIN1 database" ""
same "... with the same schema" "$(schema_of lat)" "$(schema_of lat_copy)"
same "... and the same rows and sequence" "$LAT_SRC" "$(lat_contents lat_copy)"
expect_exit "--table with a non-ASCII name" 0 A restore lat latest --target-database lat_one --table '"schéma"."tablé"' --verify-data
[ "$(q -d lat_one -c "SELECT count(*) || ' ' || obj_description('\"schéma\".\"tablé\"'::regclass) FROM \"schéma\".\"tablé\"")" = "3 commenté" ] &&
    pass "... brings that table with its comment" || fail "... brings that table with its comment" ""
expect_exit "a table-level backup of a non-ASCII name (tables = \"tablé\")" 0 A backup lat_t
expect_exit "... restores" 0 A restore lat_t latest --target-database lat_t_copy --verify-data
[ "$(q -d lat_t_copy -c "SELECT count(*) FROM \"tablé\"")" = 50 ] && pass "... with its rows" || fail "... with its rows" ""

# ---- 15. names with a newline ---------------------------------------------------------------------
q -d postgres -c "CREATE DATABASE nl"
q -d nl <<'EOF'
CREATE SCHEMA "a
b";
CREATE TABLE "a
b"."t
x" (id serial CONSTRAINT "pk
1" PRIMARY KEY, v text);
CREATE INDEX "i
dx" ON "a
b"."t
x" (v);
COMMENT ON TABLE "a
b"."t
x" IS 'the newline table';
INSERT INTO "a
b"."t
x" (v) VALUES ('one'), (E'two\nlines');
-- what pg_dump's comments print for the names above
CREATE SCHEMA "a b";
CREATE TABLE "a b"."t x" (id int PRIMARY KEY, v text);
COMMENT ON TABLE "a b"."t x" IS 'the space table';
INSERT INTO "a b"."t x" VALUES (1, 'space');
EOF
NLT=$'"a\nb"."t\nx"'
nl_table() { # DB: the newline table's rows, comment, indexes, constraint, default
    q -d "$1" -c "SELECT string_agg(id || ':' || v, ',' ORDER BY id) FROM $NLT"
    q -d "$1" -c "SELECT obj_description(c.oid), (SELECT string_agg(indexrelid::regclass::text, ',' ORDER BY 1) FROM pg_index WHERE indrelid = c.oid),
                         (SELECT string_agg(conname, ',') FROM pg_constraint WHERE conrelid = c.oid), pg_get_expr(d.adbin, d.adrelid)
                  FROM pg_class c LEFT JOIN pg_attrdef d ON d.adrelid = c.oid WHERE c.oid = '$NLT'::regclass"
}
NL_SRC=$(nl_table nl)
grep -q "^the newline table|" <<<"$NL_SRC" && pass "the newline table is there" || fail "the newline table is there" "$NL_SRC"
expect_exit "full backup of a database with a newline in schema, table, index and constraint names" 0 A backup nl
expect_exit "--table with a newline in its names restores" 0 A restore nl latest --target-database nl_one --table "$NLT" --verify-data
same "... the table with its rows, comment, index, primary key and default" "$NL_SRC" "$(nl_table nl_one)"
[ "$(q -d nl_one -c "SELECT count(*) FROM pg_class WHERE relnamespace::regnamespace::text = '\"a b\"'")" = 0 ] &&
    pass "... and nothing of the table whose comments read alike" || fail "... and nothing of the table whose comments read alike" ""
expect_exit "a table-level backup (tables = a?b.t?x, the lookalike excluded)" 0 A backup nl_t
expect_exit "... restores" 0 A restore nl_t latest --target-database nl_t_copy --verify-data
same "... with rows, comment, index, primary key and default" "$NL_SRC" "$(nl_table nl_t_copy)"
expect_exit "a full restore" 0 A restore nl latest --target-database nl_copy --verify-data
same "... keeps each table's own comment" "$(q -d nl -c "SELECT obj_description(oid) FROM pg_class WHERE relkind = 'r' AND relnamespace::regnamespace::text LIKE '\"a%' ORDER BY 1")" \
    "$(q -d nl_copy -c "SELECT obj_description(oid) FROM pg_class WHERE relkind = 'r' AND relnamespace::regnamespace::text LIKE '\"a%' ORDER BY 1")"
