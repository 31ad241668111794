#!/usr/bin/env bash
# Many small tables: arca backup (ysql -> nfs path) beside pg_dump -Fc in one run, on one
# throwaway PostgreSQL 15 server (tests/servers/pg.sh; max_locks_per_transaction raised so
# that both tools can lock every table).
#   N tables "tI (id int PRIMARY KEY, v text)" of 10 rows each; REPS runs of each tool,
#   interleaved; prints every run, the best and median of each, the ratio of the bests,
#   the manifest's and the archive's sizes and pg_dump's file size.
# Usage: bench/manytables.sh [N=20000] [REPS=3]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-20000}
REPS=${2:-3}
B=${PG_BIN:-/usr/lib/postgresql/15/bin}
ARCA=${ARCA:-$ROOT/build/arca}
make -C "$ROOT" -s >/dev/null

W=$(mktemp -d "${TMPDIR:-/tmp}/arca-many.XXXXXX")
chmod 755 "$W"
trap '"$ROOT/tests/servers/pg.sh" stop "$W/server" >/dev/null 2>&1; rm -rf "$W"' EXIT
PORT=$("$ROOT/tests/servers/pg.sh" start "$W/server")
SOCK=$W/server/pg/sock
q() { "$B/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres "$@"; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

locks=$(( (2 * N + 200) / 100 + 64 ))
q -d postgres -c "ALTER SYSTEM SET max_locks_per_transaction = $locks" >/dev/null
as_pg "$B/pg_ctl" -D "$W/server/pg/data" -l "$W/server/pg/pg.log" -w -t 60 -m fast restart >/dev/null
q -d postgres -c "CREATE DATABASE many"
echo "creating $N tables ..." >&2
for ((k = 0; k < N; k += 1000)); do
    q -d many -c "DO \$\$BEGIN FOR i IN $((k + 1))..$((k + 1000 < N ? k + 1000 : N)) LOOP
                    EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i);
                    EXECUTE format('INSERT INTO t%s SELECT g, md5(g::text) FROM generate_series(1, 10) g', i);
                  END LOOP; END\$\$"
done
q -d many -c "CHECKPOINT"

mkdir -p "$W/out"
cat > "$W/arca.ini" <<EOF
[source many]
plugin = ysql
host = 127.0.0.1
port = $PORT
user = postgres
dbname = many
jobs = 2
dump_command = $B/pg_dump
restore_command = $B/psql
[destination d]
plugin = nfs
path = $W/out
[pipeline p]
source = many
destination = d
EOF
chmod 600 "$W/arca.ini"

now() { date +%s.%N; }
A=() D=()
for ((r = 1; r <= REPS; r++)); do
    rm -f "$W"/out/p.*
    t0=$(now); "$ARCA" -c "$W/arca.ini" -v backup p > "$W/arca.out" 2> "$W/arca.err"; t1=$(now)
    A+=("$(echo "$t1 - $t0" | bc)")
    phases=$(grep -o 'backed up.*' "$W/arca.err" || true)
    t0=$(now); "$B/pg_dump" -Fc -h "$SOCK" -p "$PORT" -U postgres -f "$W/many.dump" many; t1=$(now)
    D+=("$(echo "$t1 - $t0" | bc)")
    printf 'run %d: arca %.2f s, pg_dump -Fc %.2f s  (load %s)\n  arca: %s\n' "$r" "${A[-1]}" "${D[-1]}" \
        "$(cut -d' ' -f1 /proc/loadavg)" "$phases"
done
manifest=$(stat -c %s "$W"/out/p.*.manifest.json)
archive=$(stat -c %s "$W"/out/p.*.arca)
dump=$(stat -c %s "$W/many.dump")
python3 - "$N" "$manifest" "$archive" "$dump" "${A[*]}" "${D[*]}" <<'PY'
import statistics, sys
n, manifest, archive, dump = (int(x) for x in sys.argv[1:5])
a = [float(x) for x in sys.argv[5].split()]; d = [float(x) for x in sys.argv[6].split()]
print("%d tables: arca backup best %.2f s (median %.2f), pg_dump -Fc best %.2f s (median %.2f): ratio %.2f (best), %.2f (median)"
      % (n, min(a), statistics.median(a), min(d), statistics.median(d), min(a) / min(d),
         statistics.median(a) / statistics.median(d)))
print("manifest %.2f MB (%d bytes per table), archive %.2f MB, pg_dump -Fc file %.2f MB"
      % (manifest / 1e6, manifest // n, archive / 1e6, dump / 1e6))
PY
