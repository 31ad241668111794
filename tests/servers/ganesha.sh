#!/usr/bin/env bash
# Test NFSv3 server: nfs-ganesha (VFS FSAL) exporting DIR/export on 127.0.0.1.
#   ganesha.sh start DIR   -> prints nfs://127.0.0.1/<real export path> on stdout
#   ganesha.sh stop DIR    -> stops ganesha and the rpcbind this script started
# Everything (config, log, pid files) lives under DIR. Ready means the export is
# mounted and listed through libnfs (nfs-ls), not only that the RPC ports answer.
# Exit 0 ok, 1 failure (reason and log tail on stderr), 77 only when not root
# (the VFS FSAL needs it; callers report that as a skip).
# rpcbind is one per machine: with two test runs at once, the last ganesha to
# register wins the plain URL. DIR/query holds `?nfsport=N&mountport=N`; append
# it to the URL (after any sub-path) to reach this server without rpcbind.
set -u

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# = 2 ] || usage
cmd=$1
dir=$2

die() { echo "ganesha.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# rpcinfo answers quickly on a live rpcbind; a dead one gives a clear error.
rpcbind_alive() { timeout 5 rpcinfo -p 127.0.0.1 >/dev/null 2>&1; }

# Waits up to $2 tenths of a second for pid $1 to exit.
wait_gone() {
    local pid=$1 n=$2
    while [ "$n" -gt 0 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; n=$((n - 1)); done
    ! kill -0 "$pid" 2>/dev/null
}

stop_pidfile() {
    local f=$1 pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        # ganesha's graceful shutdown takes a few seconds; do not wait forever.
        wait_gone "$pid" 150 || { kill -9 "$pid" 2>/dev/null; wait_gone "$pid" 50; }
    fi
    rm -f "$f"
}

start() {
    local b
    PATH=$PATH:/usr/sbin:/sbin
    for b in ganesha.nfsd rpcbind rpcinfo nfs-ls python3; do
        command -v "$b" >/dev/null 2>&1 ||
            die "$b not found: run ./run deps (Debian packages nfs-ganesha rpcbind libnfs-utils python3)"
    done
    ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1 ||
        die "the VFS FSAL is not installed: run ./run deps (Debian package nfs-ganesha-vfs)"
    # The VFS FSAL works through file handles (open_by_handle_at): root only.
    [ "$(id -u)" = 0 ] || { echo "ganesha.sh: nfs-ganesha's VFS FSAL needs root" >&2; exit 77; }

    mkdir -p "$dir/export" || die "cannot create $dir/export"
    dir=$(cd "$dir" && pwd -P)
    local export_path
    export_path=$(realpath "$dir/export")

    # NFSv3 needs rpcbind: use a running one, else start ours. Not `-h 127.0.0.1`:
    # Debian's rpcbind 1.2.6 aborts with a double free on it. rpcbind accepts
    # registrations from loopback only, and ganesha itself binds 127.0.0.1.
    if ! rpcbind_alive; then
        mkdir -p /run/rpcbind
        rpcbind -f >"$dir/rpcbind.log" 2>&1 </dev/null &
        echo $! >"$dir/rpcbind.pid"
        local n=50
        until rpcbind_alive; do
            n=$((n - 1))
            [ $n -gt 0 ] || { tail -n 20 "$dir/rpcbind.log" >&2; stop_pidfile "$dir/rpcbind.pid"; die "rpcbind did not start within 5 s"; }
            sleep 0.1
        done
    fi

    local nfs_port mnt_port
    nfs_port=$(free_port)
    mnt_port=$(free_port)
    while [ "$mnt_port" = "$nfs_port" ]; do mnt_port=$(free_port); done
    echo "$nfs_port $mnt_port" >"$dir/ports"
    echo "?nfsport=$nfs_port&mountport=$mnt_port" >"$dir/query"

    cat >"$dir/ganesha.conf" <<EOF
NFS_CORE_PARAM {
    Bind_addr = 127.0.0.1;
    NFS_Port = $nfs_port;
    MNT_Port = $mnt_port;
    Protocols = 3;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}
# NFSv4 is off, but ganesha still sets up its v4 recovery store: keep it here.
NFSV4 {
    Graceless = true;
    RecoveryRoot = "$dir/recovery";
}
EXPORT {
    Export_Id = 1;
    Path = "$export_path";
    Pseudo = /export;
    Access_Type = RW;
    Squash = No_Root_Squash;
    SecType = sys;
    Protocols = 3;
    Transports = TCP;
    # Tests look at and change DIR/export directly: no stale attribute or
    # directory caching in the server.
    Attr_Expiration_Time = 0;
    FSAL { Name = VFS; }
}
NFS_KRB5 { Active_krb5 = false; }
LOG { Default_Log_Level = EVENT; }
EOF
    : >"$dir/ganesha.log"
    ganesha.nfsd -F -f "$dir/ganesha.conf" -L "$dir/ganesha.log" -p "$dir/ganesha.pid" \
        >"$dir/ganesha.out" 2>&1 </dev/null &
    local gpid=$!
    # ganesha writes its pid file itself, but only once started: record ours now
    # so that `stop` works even if start fails half way.
    echo "$gpid" >"$dir/ganesha.pid"

    # Ready when this server answers NULL calls on its own ports (rpcinfo -n
    # needs no rpcbind) and rpcbind answers for NFSv3.
    local n=300
    until timeout 5 rpcinfo -n "$nfs_port" -t 127.0.0.1 nfs 3 >/dev/null 2>&1 &&
          timeout 5 rpcinfo -n "$mnt_port" -t 127.0.0.1 mountd 3 >/dev/null 2>&1 &&
          timeout 5 rpcinfo -t 127.0.0.1 nfs 3 >/dev/null 2>&1; do
        n=$((n - 1))
        if [ $n -le 0 ] || ! kill -0 "$gpid" 2>/dev/null; then
            if kill -0 "$gpid" 2>/dev/null; then
                echo "ganesha.sh: nfs-ganesha did not answer rpcinfo -t 127.0.0.1 nfs 3 within 30 s; log tail:" >&2
            else
                echo "ganesha.sh: nfs-ganesha exited during startup; log tail:" >&2
            fi
            tail -n 25 "$dir/ganesha.log" "$dir/ganesha.out" >&2
            stop_pidfile "$dir/ganesha.pid"
            stop_pidfile "$dir/rpcbind.pid"
            exit 1
        fi
        sleep 0.1
    done
    # The RPC services answer even when the export failed to load (seen on a root
    # without /etc/mtab): mount and list it through libnfs before saying ready.
    local url="nfs://127.0.0.1$export_path?nfsport=$nfs_port&mountport=$mnt_port"
    n=50
    until timeout 5 nfs-ls "$url" >"$dir/nfs-ls.out" 2>&1; do
        n=$((n - 1))
        if [ $n -le 0 ] || ! kill -0 "$gpid" 2>/dev/null; then
            echo "ganesha.sh: the export $export_path cannot be mounted (nfs-ls: $(tail -n 1 "$dir/nfs-ls.out")); log tail:" >&2
            [ -e /etc/mtab ] || echo "ganesha.sh: /etc/mtab is missing; nfs-ganesha needs it (ln -s ../proc/self/mounts /etc/mtab)" >&2
            # the export errors, not the reconnect noise of our own probes
            grep -E ' :(CRIT|MAJ|WARN) :' "$dir/ganesha.log" | grep -v -E 'DBUS|KRB|krb5|Kerberos' | tail -n 15 >&2
            tail -n 5 "$dir/ganesha.out" >&2
            stop_pidfile "$dir/ganesha.pid"
            stop_pidfile "$dir/rpcbind.pid"
            exit 1
        fi
        sleep 0.1
    done
    echo "nfs://127.0.0.1$export_path"
}

stop() {
    [ -d "$dir" ] || exit 0
    stop_pidfile "$dir/ganesha.pid"
    stop_pidfile "$dir/rpcbind.pid"
    exit 0
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
