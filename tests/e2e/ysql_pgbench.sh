#!/usr/bin/env bash
# ysql source: a backup taken while pgbench writes is one consistent snapshot.
# Every pgbench transaction adds the same delta to an account, a teller, a branch
# and a history row, so in any consistent state the sums of account, teller and
# branch balances all equal the sum of history deltas. The backup copies those
# tables over several connections (pgbench_accounts in several slices) while
# pgbench commits; the restored database must still balance.
SUITE=ysql_pgbench
. "$(dirname "$0")/../lib.sh"

B=/usr/lib/postgresql/15/bin
need "$ARCA" "$BUILD/plugins/ysql.so" "$BUILD/plugins/nfs.so"
need "$B/pgbench"

PGDIR=$T_TMP/server
on_exit "'$ROOT/tests/servers/pg.sh' stop '$PGDIR'"
PORT=$("$ROOT/tests/servers/pg.sh" start "$PGDIR" 2>"$T_TMP/pg.err") || peer_failed "PostgreSQL 15" "$T_TMP/pg.err"
SOCK=$PGDIR/pg/sock
q() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }

q -d postgres -c "CREATE DATABASE bench"
"$B/pgbench" -i -q -s 5 -h "$SOCK" -p "$PORT" -U postgres bench >"$T_TMP/init.log" 2>&1 ||
    { fail "setup" "pgbench -i: $(tail -n 5 "$T_TMP/init.log")"; exit 1; }

mkdir -p "$T_TMP/backups"
CONF=$T_TMP/arca.ini
cat > "$CONF" <<EOF
[arca]
chunk_size = 1M
[source bench]
plugin = ysql
host = 127.0.0.1
port = $PORT
user = postgres
dbname = bench
jobs = 3
slice_size = 8M
[destination d]
plugin = nfs
path = $T_TMP/backups
[pipeline p]
source = bench
destination = d
EOF
A() { "$ARCA" -c "$CONF" "$@"; }

# balances: accounts, tellers, branches, history, and the history row count
balances() {
    q -d "$1" -c "SELECT (SELECT sum(abalance) FROM pgbench_accounts) || ' ' || (SELECT sum(tbalance) FROM pgbench_tellers)
                  || ' ' || (SELECT sum(bbalance) FROM pgbench_branches) || ' ' || (SELECT coalesce(sum(delta), 0) FROM pgbench_history)
                  || ' ' || (SELECT count(*) FROM pgbench_history)"
}
balanced() { # "a t b h n": a == t == b == h
    local a t b h n
    read -r a t b h n <<<"$1"
    [ "$a" = "$h" ] && [ "$t" = "$h" ] && [ "$b" = "$h" ]
}

# pgbench writes for the whole backup: started first, stopped after
"$B/pgbench" -n -c 4 -j 2 -T 60 -h "$SOCK" -p "$PORT" -U postgres bench >"$T_TMP/pgbench.log" 2>&1 &
PGB=$!
on_exit "kill $PGB"
# wait until writes are flowing
for _ in $(seq 50); do
    [ "$(q -d bench -c "SELECT count(*) > 100 FROM pgbench_history")" = t ] && break
    sleep 0.1
done
before=$(q -d bench -c "SELECT count(*) FROM pgbench_history")
expect_exit "backup while pgbench writes" 0 A backup p
ID=$(tail -n 1 <<<"$OUT")
after=$(q -d bench -c "SELECT count(*) FROM pgbench_history")
kill "$PGB" 2>/dev/null
wait "$PGB" 2>/dev/null
[ "$after" -gt "$before" ] && pass "... pgbench committed during the backup ($before -> $after history rows)" ||
    fail "... pgbench committed during the backup" "$before -> $after"
n_slices=$(A --json inspect p "$ID" 2>/dev/null | grep -o '"name": *"data/public.pgbench_accounts/part-[0-9]*"' | sort -u | wc -l)
[ "$n_slices" -ge 3 ] && pass "... pgbench_accounts was copied in $n_slices slices" || fail "... pgbench_accounts was copied in slices" "$n_slices"

expect_exit "restore into a new database with --verify-data" 0 A restore p "$ID" --target-database copy --verify-data
got=$(balances copy)
balanced "$got" && pass "the restored database balances: accounts = tellers = branches = history ($got)" ||
    fail "the restored database balances: accounts = tellers = branches = history" "$got"
read -r _ _ _ _ n <<<"$got"
[ "$n" -ge "$before" ] && [ "$n" -le "$after" ] && pass "... at a point during the backup ($before <= $n <= $after history rows)" ||
    fail "... at a point during the backup" "$before <= $n <= $after"
