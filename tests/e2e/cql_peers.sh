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
expect_match "row 1: a UDT nested in a map in a list" '"nested":\[\[\["home",\{"Zip":"1","street":"S","tags":\[\]\}\]\]\]' "$(row 1)"
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

# ---- arca's own CQL wire format (plugins/ycql/cqlwire.c) against the same server ----
# tests/tools/cqlprobe.c: STARTUP, SASL PLAIN, QUERY with paging, ERROR bodies
if cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Werror -o "$T_TMP/cqlprobe" "$ROOT/tests/tools/cqlprobe.c" \
    "$ROOT/plugins/ycql/cqlwire.c" 2>"$T_TMP/cc.err"; then pass "cqlprobe builds"
else fail "cqlprobe builds" "$(cat "$T_TMP/cc.err")"; fi
probe() { "$T_TMP/cqlprobe" "$CQL_HOST" "$CQL_PORT" "$CQL_USER" "$@"; }
out=$(probe "$CQL_PASSWORD" 100 "SELECT * FROM peers.every_type WHERE id IN (1, 2)" 2>&1)
expect_match "cqlwire: logs in with SASL PLAIN and reads a Rows result" "pages 1 rows 2" "$out"
expect_match "cqlwire: a UDT in a map in a list, as CQL writes the type" "^col nested list<frozen<map<text, frozen<peers.addr>>>>$" "$out"
expect_match "cqlwire: tuple, map and top-level UDT types" \
    "col ad peers.addr.*col m map<text, bigint>.*col tup tuple<int, text, blob>" "$(tr '\n' ' ' <<<"$out")"
expect_match "cqlwire: duration is a custom type at protocol v4" "^col du 'org.apache.cassandra.db.marshal.DurationType'$" "$out"
expect_match "cqlwire: cells as the server sent them (bigint min, blob, date at 2^31 + days)" \
    "^00000001\|6173636969\|.*\|00ff10\|8000000000000000\|01\|80004d46\|" "$out"
expect_match "cqlwire: empty and null cells told apart (row 2: empty blob and text, the rest null)" \
    '^00000002\|-\|-\|\|-.*\|-\|\|-' "$out"
out=$(probe "$CQL_PASSWORD" 5 "SELECT keyspace_name, table_name, column_name FROM system_schema.columns WHERE keyspace_name = 'peers'" 2>&1)
expect_match "cqlwire: paging 5 rows at a time reads all 32 columns of the fixture" "^pages 7 rows 32$" "$out"
expect_exit "cqlwire: a wrong password gets the server's ERROR" 1 probe wrong 5 "SELECT 1"
expect_match "cqlwire: bad credentials, code and message" \
    "error 0x0100 \(bad credentials\): Provided username cassandra and/or password are incorrect" "$OUT"
expect_exit "cqlwire: a syntax error gets the server's ERROR" 1 probe "$CQL_PASSWORD" 5 "SELEC 1"
expect_match "cqlwire: syntax error, code and message" "error 0x2000 \(syntax error\): line 1:0" "$OUT"
