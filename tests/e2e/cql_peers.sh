#!/usr/bin/env bash
# The CQL test peers the YCQL tests will rest on: a real Apache Cassandra 5.0 (Maven
# Central jars on JDK 17, tests/servers/cassandra.sh) and two independent drivers,
# DataStax's Python driver (tests/tools/cql.py) and Node.js driver (tests/tools/cql.js),
# both at protocol v4 as YugabyteDB speaks it. Checks that the node starts with password
# authentication, that the Python driver writes tests/fixtures/ycql/peers.cql (every
# native type, nested UDTs and collections, tuples, static columns, quoted names,
# clustering DESC, counters, TTL and USING TIMESTAMP), that both drivers read back the
# same values with write time and TTL (tests/tools/cqldiff.py, which must also see a
# difference when there is one), and that a wrong password fails in both. Then arca's
# own CQL wire format (plugins/ycql/cqlwire.c, through tests/tools/cqlprobe.c) against
# the same node: authentication, Rows metadata of every type, cells, paging, ERRORs.
SUITE=cql_peers
. "$(dirname "$0")/../lib.sh"

PY=$ROOT/.deps/venv/bin/python
need "$PY" node "$ROOT/node_modules/cassandra-driver/package.json"
C=$T_TMP/cassandra
rc=0
envtxt=$("$ROOT/tests/servers/cassandra.sh" start "$C" 2>"$T_TMP/cassandra.err") || rc=$?
on_exit "'$ROOT/tests/servers/cassandra.sh' stop '$C'"
[ "$rc" = 0 ] || peer_failed "Apache Cassandra" "$T_TMP/cassandra.err"
eval "$envtxt"
pass "Apache Cassandra $CASSANDRA_VERSION starts and lets the test superuser log in (protocol v4)"
expect_match "the node is a Cassandra 5.0" '^5\.0\.' "$CASSANDRA_VERSION"

cqlpy() { "$PY" "$ROOT/tests/tools/cql.py" "$CQL_HOST" "$CQL_PORT" "$CQL_USER" "$CQL_PASSWORD" "$@"; }
cqljs() { node "$ROOT/tests/tools/cql.js" "$CQL_HOST" "$CQL_PORT" "$CQL_USER" "$CQL_PASSWORD" "$@"; }

check "the Python driver writes the fixture" cqlpy exec "$ROOT/tests/fixtures/ycql/peers.cql"
if cqlpy dump peers >"$T_TMP/py.txt" 2>"$T_TMP/py.err"; then pass "the Python driver dumps keyspace peers"
else fail "the Python driver dumps keyspace peers" "$(cat "$T_TMP/py.err")"; fi
if cqljs dump peers >"$T_TMP/node.txt" 2>"$T_TMP/node.err"; then pass "the Node driver dumps keyspace peers"
else fail "the Node driver dumps keyspace peers" "$(cat "$T_TMP/node.err")"; fi
[ "$(wc -l <"$T_TMP/py.txt")" = 6 ] && pass "the dump has the fixture's 6 rows" ||
    fail "the dump has the fixture's 6 rows" "$(wc -l <"$T_TMP/py.txt") rows"
check "both drivers read the same rows, values, write times and TTLs" \
    python3 "$ROOT/tests/tools/cqldiff.py" "$T_TMP/py.txt" "$T_TMP/node.txt"

# what the dumps must tell apart, so that a restore that loses it fails the comparison
row() { grep "\"id\":\"$1\"" "$T_TMP/node.txt"; }
expect_match "row 1: a write time given with USING TIMESTAMP" '"writetime\(t\)":"1700000000000001"' "$(row 1)"
expect_match "row 1: a TTL counting down from 86400" '"ttl\(t\)":"86[0-9]{3}"' "$(row 1)"
expect_match "row 1: a blob, a varint and a decimal exactly" \
    '"b":"00ff10".*"de":"-1234500,4".*"vi":"123456789012345678901234567890"' "$(row 1)"
expect_match "row 1: a UDT nested in a map in a list" '"nested":\[\[\["home",\{"Zip":"1","g":null,"street":"S","tags":\[\]\}\]\]\]' "$(row 1)"
expect_match "row 1: a UDT in a UDT" '"ad":\{"Zip":"12345","g":\{"lat":"3ff8000000000000","lon":"c002000000000000"\}' "$(row 1)"
expect_match "row 1: a duration (a custom type at protocol v4)" '"du":"1,2,3"' "$(row 1)"
expect_match "row 2: empty text and an empty blob" '"b":"".*"t":""' "$(row 2)"
expect_match "row 3: null text and a null blob" '"b":null.*"t":null' "$(row 3)"
expect_match "the counter" '"k":"x","n":"42"' "$(grep '"table":"counts"' "$T_TMP/node.txt")"
[ "$(grep -c '"st":"static"' "$T_TMP/node.txt")" = 2 ] && pass "a static column on both rows of its partition" ||
    fail "a static column on both rows of its partition" "$(grep MixedCase "$T_TMP/node.txt")"

# the comparison can fail: one value changed, one TTL off by more than the slack, one row gone
sed '0,/"n":"42"/s//"n":"43"/' "$T_TMP/node.txt" >"$T_TMP/bad1.txt"
expect_exit "cqldiff sees a changed counter" 1 python3 "$ROOT/tests/tools/cqldiff.py" "$T_TMP/py.txt" "$T_TMP/bad1.txt"
sed -E '0,/"ttl\(t\)":"86[0-9]{3}"/s//"ttl(t)":"100"/' "$T_TMP/node.txt" >"$T_TMP/bad2.txt"
expect_exit "cqldiff sees a lost TTL" 1 python3 "$ROOT/tests/tools/cqldiff.py" "$T_TMP/py.txt" "$T_TMP/bad2.txt"
sed '$d' "$T_TMP/node.txt" >"$T_TMP/bad3.txt"
expect_exit "cqldiff sees a missing row" 1 python3 "$ROOT/tests/tools/cqldiff.py" "$T_TMP/py.txt" "$T_TMP/bad3.txt"

# the server checks passwords
expect_exit "a wrong password: the Python driver fails" 1 "$PY" "$ROOT/tests/tools/cql.py" "$CQL_HOST" "$CQL_PORT" \
    "$CQL_USER" wrong dump peers
expect_match "a wrong password: the server says so (Python)" "password are incorrect" "$OUT"
expect_exit "a wrong password: the Node driver fails" 1 node "$ROOT/tests/tools/cql.js" "$CQL_HOST" "$CQL_PORT" \
    "$CQL_USER" wrong dump peers
expect_match "a wrong password: the server says so (Node)" "password are incorrect" "$OUT"

# ---- arca's own CQL client code (plugins/ycql/cqlwire.c, cqlconn.c) against the same server ----
# tests/tools/cqlprobe.c: STARTUP, SASL PLAIN, QUERY with paging, pipelined requests, ERROR bodies
if cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Werror -I"$ROOT/core/include" -I"$ROOT/plugins/common" -o "$T_TMP/cqlprobe" \
    "$ROOT/tests/tools/cqlprobe.c" "$ROOT/plugins/ycql/cqlwire.c" "$ROOT/plugins/ycql/cqlconn.c" \
    "$ROOT/plugins/ycql/schema.c" "$ROOT/plugins/ycql/export.c" "$ROOT/plugins/ycql/rows.c" \
    "$ROOT/plugins/ycql/ranges.c" "$ROOT/plugins/common/pc_buf.c" -lssl -lcrypto \
    2>"$T_TMP/cc.err"; then pass "cqlprobe builds"
else fail "cqlprobe builds" "$(cat "$T_TMP/cc.err")"; fi
probe() { "$T_TMP/cqlprobe" "$@"; }
at=("$CQL_HOST" "$CQL_PORT" "$CQL_USER")
expect_match "cqlconn: protocol v4 negotiated, password accepted" "^protocol v4$" "$(probe "${at[@]}" "$CQL_PASSWORD" version 2>&1)"
out=$(probe "${at[@]}" "$CQL_PASSWORD" query 100 "SELECT * FROM peers.every_type WHERE id IN (1, 2)" 2>&1)
expect_match "cqlwire: a Rows result" "pages 1 rows 2" "$out"
expect_match "cqlwire: a UDT in a map in a list, as CQL writes the type" "^col nested list<frozen<map<text, frozen<peers.addr>>>>$" "$out"
expect_match "cqlwire: tuple, map and top-level UDT types" \
    "col ad peers.addr.*col m map<text, bigint>.*col tup tuple<int, text, blob>" "$(tr '\n' ' ' <<<"$out")"
expect_match "cqlwire: duration is a custom type at protocol v4" "^col du 'org.apache.cassandra.db.marshal.DurationType'$" "$out"
expect_match "cqlwire: cells as the server sent them (bigint min, blob, date at 2^31 + days)" \
    "^00000001\|6173636969\|.*\|00ff10\|8000000000000000\|01\|80004d46\|" "$out"
expect_match "cqlwire: empty and null cells told apart (row 2: empty blob and text, the rest null)" \
    '^00000002\|-\|-\|\|-.*\|-\|\|-' "$out"
out=$(probe "${at[@]}" "$CQL_PASSWORD" query 5 "SELECT keyspace_name, table_name, column_name FROM system_schema.columns WHERE keyspace_name = 'peers'" 2>&1)
expect_match "cqlwire: paging 5 rows at a time reads all 32 columns of the fixture" "^pages 7 rows 32$" "$out"
expect_match "cqlconn: 300 requests in flight on one connection, each answer on its own stream" \
    "^pipelined 300, at most 300 in flight" "$(probe "${at[@]}" "$CQL_PASSWORD" pipeline 300 "SELECT release_version FROM system.local" 2>&1)"
expect_exit "cqlconn: a wrong password fails the connection" 1 probe "${at[@]}" wrong version
expect_match "cqlconn: ... naming the server, the user and the server's reason" \
    "127.0.0.1:$CQL_PORT refused user 'cassandra': .*ERROR 0x0100 \(bad credentials\): Provided username cassandra and/or password are incorrect" "$OUT"
expect_exit "cqlwire: a syntax error gets the server's ERROR" 1 probe "${at[@]}" "$CQL_PASSWORD" query 5 "SELEC 1"
expect_match "cqlwire: syntax error, code and message" "error 0x2000 \(syntax error\): line 1:0" "$OUT"
# the schema (plugins/ycql/schema.c): DDL read from system_schema, run under another keyspace name,
# read back: the same DDL, and the Python driver's own DDL of both keyspaces is the same too
if probe "${at[@]}" "$CQL_PASSWORD" ddl peers peers_copy >"$T_TMP/ddl.cql" 2>"$T_TMP/ddl.err"; then
    pass "schema: DDL of keyspace peers (as peers_copy)"
else fail "schema: DDL of keyspace peers (as peers_copy)" "$(cat "$T_TMP/ddl.err")"; fi
expect_match "schema: a type after the type its fields use (geo, then addr)" \
    "CREATE TYPE peers_copy.geo .*CREATE TYPE peers_copy.addr \(street text, \"Zip\" int, tags frozen<set<text>>, g frozen<geo>\)" \
    "$(tr '\n' ' ' <<<"$(cat "$T_TMP/ddl.cql")")"
expect_match "schema: composite partition key, clustering DESC, static column, quoted names" \
    'CREATE TABLE peers_copy."MixedCase" \( +"Part" text, +c1 int, +"Clu" text, +st text STATIC, +v blob, +PRIMARY KEY \(\("Part", c1\), "Clu"\) \) WITH CLUSTERING ORDER BY \("Clu" DESC\)' \
    "$(tr '\n' ' ' <<<"$(cat "$T_TMP/ddl.cql")")"
check "schema: the DDL runs (the Python driver sends it)" cqlpy exec "$T_TMP/ddl.cql"
probe "${at[@]}" "$CQL_PASSWORD" ddl peers >"$T_TMP/ddl1.cql" 2>&1
probe "${at[@]}" "$CQL_PASSWORD" ddl peers_copy peers >"$T_TMP/ddl2.cql" 2>&1
if cmp -s "$T_TMP/ddl1.cql" "$T_TMP/ddl2.cql" && [ -s "$T_TMP/ddl1.cql" ]; then pass "schema: the recreated keyspace reads back as the same DDL"
else fail "schema: the recreated keyspace reads back as the same DDL" "$(diff "$T_TMP/ddl1.cql" "$T_TMP/ddl2.cql" | head -5)"; fi
cqlpy ddl peers >"$T_TMP/py1.cql" 2>&1
cqlpy ddl peers_copy 2>&1 | sed 's/peers_copy/peers/g' >"$T_TMP/py2.cql"
if cmp -s "$T_TMP/py1.cql" "$T_TMP/py2.cql" && grep -q 'CREATE INDEX every_type_t' "$T_TMP/py1.cql"; then
    pass "schema: the Python driver's own DDL of both keyspaces is the same (types, tables, options, indexes)"
else fail "schema: the Python driver's own DDL of both keyspaces is the same" "$(diff "$T_TMP/py1.cql" "$T_TMP/py2.cql" | head -8)"; fi
expect_exit "schema: a keyspace that does not exist" 1 probe "${at[@]}" "$CQL_PASSWORD" ddl no_such_ks
expect_match "schema: ... is named" "127.0.0.1:$CQL_PORT: keyspace 'no_such_ks' does not exist" "$OUT"

# the export (plugins/ycql/export.c, rows.c): every table of peers in 3 token ranges, pages of 2
# rows, into the archive's row format; the Python driver decodes each stored cell with its own
# type for the column and must print exactly its own dump (values, nulls, write times, TTLs)
mkdir -p "$T_TMP/rows"
if probe "${at[@]}" "$CQL_PASSWORD" export peers 3 2 "$T_TMP/rows" >"$T_TMP/export.out" 2>&1; then
    pass "export: keyspace peers in 3 token ranges, 2-row pages"
else fail "export: keyspace peers in 3 token ranges, 2-row pages" "$(cat "$T_TMP/export.out")"; fi
expect_match "export: ... every table's rows counted (every_type 3, MixedCase 2, counts 1)" \
    "MixedCase ranges 3 rows 2 counts ranges 3 rows 1 every_type ranges 3 rows 3" "$(LC_ALL=C sort "$T_TMP/export.out" | tr '\n' ' ')"
# (a TTL counts down between the export and the dump: cqldiff allows it 120 s)
cqlpy dump peers >"$T_TMP/py-now.txt" 2>&1
if cqlpy rows "peers:$T_TMP/rows" >"$T_TMP/rows.txt" 2>"$T_TMP/rows.err" &&
    python3 "$ROOT/tests/tools/cqldiff.py" "$T_TMP/py-now.txt" "$T_TMP/rows.txt" >"$T_TMP/rows.diff" 2>&1; then
    pass "export: the Python driver reads every stored cell back as its own dump (write time and TTL too)"
else fail "export: the Python driver reads every stored cell back as its own dump" \
    "$(cat "$T_TMP/rows.err" "$T_TMP/rows.diff" | head -c 1500)"; fi
grep -q '"ttl(' "$T_TMP/rows.txt" && grep -Eq '"ttl\([^)]*\)":"[0-9]+"' "$T_TMP/rows.txt" &&
    pass "export: ... with a cell's TTL among them" || fail "export: ... with a cell's TTL among them" "$(head -c 600 "$T_TMP/rows.txt")"

# TLS on the same port (the node takes both): the certificate checked against the test CA
expect_match "cqlconn: TLS with the server's certificate checked against ca_file" "^protocol v4$" \
    "$(probe --ssl --ca "$CQL_CA" "${at[@]}" "$CQL_PASSWORD" version 2>&1)"
expect_match "cqlconn: TLS by the name localhost (in the certificate)" "^protocol v4$" \
    "$(probe --ssl --ca "$CQL_CA" localhost "$CQL_PORT" "$CQL_USER" "$CQL_PASSWORD" version 2>&1)"
expect_match "cqlconn: over TLS, 300 requests in flight" "^pipelined 300, at most 300 in flight" \
    "$(probe --ssl --ca "$CQL_CA" "${at[@]}" "$CQL_PASSWORD" pipeline 300 "SELECT release_version FROM system.local" 2>&1)"
expect_match "cqlconn: over TLS, a paged query" "^pages 7 rows 32$" "$(probe --ssl --ca "$CQL_CA" "${at[@]}" "$CQL_PASSWORD" \
    query 5 "SELECT keyspace_name, table_name, column_name FROM system_schema.columns WHERE keyspace_name = 'peers'" 2>&1)"
expect_exit "cqlconn: TLS against the system's CAs only: refused" 1 probe --ssl "${at[@]}" "$CQL_PASSWORD" version
expect_match "cqlconn: ... saying the certificate is not trusted and what to do" \
    "127.0.0.1:$CQL_PORT: the server's certificate is not trusted: .*\(ca_file, or verify_tls = false" "$OUT"
expect_match "cqlconn: TLS with verification off connects" "^protocol v4$" \
    "$(probe --ssl --no-verify "${at[@]}" "$CQL_PASSWORD" version 2>&1)"
# a port nobody listens on; a server that accepts and never answers
port=$(free_port)
expect_exit "cqlconn: connection refused" 1 probe --timeout 2000 127.0.0.1 "$port" u p version
expect_match "cqlconn: ... says so with the address" "cannot connect to 127.0.0.1:$port: Connection refused" "$OUT"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4)
c, _ = s.accept(); time.sleep(30)' "$port" &
silent=$!
on_exit "kill $silent 2>/dev/null"
sleep 0.5
t0=$(date +%s%N)
expect_exit "cqlconn: a server that never answers" 1 probe --timeout 1500 127.0.0.1 "$port" u p version
ms=$((($(date +%s%N) - t0) / 1000000))
expect_match "cqlconn: ... fails within the request timeout (${ms} ms for 1500), naming the server" \
    "127.0.0.1:$port: no answer within the request timeout" "$OUT"
[ "$ms" -lt 8000 ] && pass "cqlconn: the silent server was given up on in time" || fail "cqlconn: the silent server was given up on in time" "$ms ms"
kill "$silent" 2>/dev/null
