#!/usr/bin/env bash
# Throwaway PostgreSQL 15 server for tests: initdb + pg_ctl as the `postgres` user,
# listening on 127.0.0.1 only, on a free port.
#   pg.sh start DIR   -> prints the port on stdout (superuser `postgres`)
#   pg.sh stop DIR    -> fast shutdown of the server started in DIR
# Everything (data, socket, log) lives under DIR/pg; DIR is made 0755 and every
# directory above it must be searchable by `postgres`. The Unix socket is in
# DIR/pg/sock and always trusted (tests' own psql uses it).
# PG_AUTH=scram: TCP connections need the password PG_PASSWORD (default "secret").
# Exit 0 ok, 1 failure (with the reason and the server log's last lines on stderr).
set -u

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# = 2 ] || usage
cmd=$1
dir=$2
B=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "pg.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs a command as postgres when we are root (initdb refuses root), else as ourselves.
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    [ -x "$B/initdb" ] && [ -x "$B/pg_ctl" ] ||
        die "PostgreSQL 15 server binaries not found in $B: run ./run deps (Debian package postgresql-15)"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' user to run the server as (the Debian package postgresql-15 creates it)"
    fi
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd -P)
    chmod 755 "$dir"
    local pgdir=$dir/pg
    mkdir -p "$pgdir/sock" || die "cannot create $pgdir"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$pgdir"
    local p=$dir
    while [ "$p" != / ]; do
        as_pg test -x "$p" || die "$p is not searchable by the postgres user (chmod o+x it)"
        p=$(dirname "$p")
    done

    as_pg "$B/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$pgdir/initdb.log" 2>&1 || { tail -n 20 "$pgdir/initdb.log" >&2; die "initdb failed"; }
    if [ "${PG_AUTH:-trust}" = scram ]; then
        printf 'local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n' |
            as_pg sh -c "cat > '$pgdir/data/pg_hba.conf'"
    fi

    # Durability is not under test: no fsync, no full-page writes.
    local port tries=5
    while [ $tries -gt 0 ]; do
        port=$(free_port)
        echo "$port" >"$dir/pg.port"
        if as_pg "$B/pg_ctl" -D "$pgdir/data" -l "$pgdir/pg.log" -w -t 30 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $pgdir/sock -c fsync=off -c full_page_writes=off -c max_connections=100" \
            start >"$pgdir/pg_ctl.log" 2>&1; then
            "$B/pg_isready" -q -h 127.0.0.1 -p "$port" -t 10 ||
                { tail -n 20 "$pgdir/pg.log" >&2; stop_server; die "server on port $port is not ready (pg_isready)"; }
            if [ "${PG_AUTH:-trust}" = scram ]; then
                echo "ALTER ROLE postgres PASSWORD :'pw';" |
                    "$B/psql" -X -q -h "$pgdir/sock" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
                        -v pw="${PG_PASSWORD:-secret}" >/dev/null ||
                    { stop_server; die "cannot set the password of postgres"; }
            fi
            echo "$port"
            return 0
        fi
        # the port may have been taken between the probe and the bind: try another
        tries=$((tries - 1))
    done
    tail -n 20 "$pgdir/pg.log" >&2
    die "pg_ctl start failed"
}

stop_server() {
    [ -d "$dir/pg/data" ] || return 0
    as_pg "$B/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
        as_pg "$B/pg_ctl" -D "$dir/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1
    return 0
}

stop() {
    stop_server
    exit 0
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
