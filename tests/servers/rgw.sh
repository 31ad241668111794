#!/usr/bin/env bash
# Test S3 server: a real Ceph RADOS Gateway (Debian 12's radosgw 16.2) on one
# monitor and one memstore OSD, all on 127.0.0.1, auth none, pools of size 1.
# No kernel module or block device: everything lives in DIR and in memory.
#   rgw.sh start DIR   -> prints shell assignments on stdout (also in DIR/env):
#       S3_ENDPOINT=http://127.0.0.1:PORT S3_TLS_ENDPOINT=https://127.0.0.1:PORT2
#       S3_KEY=... S3_SECRET=... S3_REGION=default S3_CA=DIR/tls/ca.pem S3_DNS=s3.test
#     The TLS endpoint's certificate (from a CA made here, S3_CA) names
#     s3.test, *.s3.test, localhost and 127.0.0.1; rgw answers virtual-hosted
#     requests for BUCKET.s3.test.
#   rgw.sh stop DIR    -> stops the gateway, the OSD and the monitor
# Ready means a signed request is answered. Exit 0 ok, 1 failure (reason and
# the log's last lines on stderr).
set -u
usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# = 2 ] || usage
cmd=$1 dir=$2
die() { echo "rgw.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

stop_pid() {
    local f=$1 pid n
    [ -f "$f" ] || return 0
    pid=$(cat "$f")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for n in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$f"
}

stop() {
    stop_pid "$dir/rgw.pid"
    stop_pid "$dir/osd.pid"
    stop_pid "$dir/mon.pid"
}

fail_start() {
    echo "rgw.sh: $1; last lines of $2:" >&2
    tail -n 20 "$2" >&2
    stop
    exit 1
}

tls_material() {
    local t=$dir/tls
    mkdir -p "$t"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=arca test CA" -keyout "$t/ca.key" -out "$t/ca.pem" \
        >"$t/openssl.log" 2>&1 || return 1
    openssl req -newkey rsa:2048 -nodes -subj "/CN=s3.test" -keyout "$t/server.key" -out "$t/server.csr" \
        >>"$t/openssl.log" 2>&1 || return 1
    printf 'subjectAltName=DNS:s3.test,DNS:*.s3.test,DNS:localhost,IP:127.0.0.1\n' > "$t/ext.cnf"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 2 \
        -extfile "$t/ext.cnf" -out "$t/server.crt" >>"$t/openssl.log" 2>&1 || return 1
    cat "$t/server.crt" "$t/server.key" > "$t/server.pem"
}

start() {
    local b
    for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph openssl curl python3; do
        command -v "$b" >/dev/null 2>&1 || die "$b not found: run ./run deps (Debian packages ceph-mon ceph-osd radosgw ceph-common)"
    done
    mkdir -p "$dir" || die "cannot create $dir"
    dir=$(cd "$dir" && pwd -P)
    rm -rf "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/rgw"
    mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/rgw"
    tls_material || { cat "$dir/tls/openssl.log" >&2; die "cannot make the test CA and certificate"; }
    local fsid mp rp tp
    fsid=$(cat /proc/sys/kernel/random/uuid)
    mp=$(free_port); rp=$(free_port); tp=$(free_port)
    while [ "$rp" = "$mp" ] || [ "$tp" = "$rp" ] || [ "$tp" = "$mp" ]; do rp=$(free_port); tp=$(free_port); done
    # Defaults that would hang or fail on one machine without auth: msgr2 and
    # secure mon mode (rgw waits ~300 s), pools of size 3, a real OSD device.
    cat > "$dir/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = v1:127.0.0.1:$mp
mon initial members = a
public addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = 4294967296
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
keyring = $dir/keyring
[mon.a]
mon data = $dir/mon
public addr = v1:127.0.0.1:$mp
[osd.0]
osd data = $dir/osd
# placed by this script before it starts: at boot it must not touch the CRUSH map (its
# device-class update fell back to "osd create" and exited with "wrong fsid" once on a
# fresh machine, placement notwithstanding)
osd crush update on start = false
osd class update on start = false
[client.rgw.t]
rgw frontends = beast endpoint=127.0.0.1:$rp ssl_endpoint=127.0.0.1:$tp ssl_certificate=$dir/tls/server.pem
rgw data = $dir/rgw
ms mon client mode = crc
rgw dns name = s3.test
rgw lc debug interval = 10
EOF
    : > "$dir/keyring"
    local C=(-c "$dir/ceph.conf")
    monmaptool --create --add a "v1:127.0.0.1:$mp" --fsid "$fsid" "$dir/monmap" >"$dir/log/setup.log" 2>&1 &&
        ceph-mon "${C[@]}" --mkfs -i a --monmap "$dir/monmap" >>"$dir/log/setup.log" 2>&1 ||
        fail_start "the monitor could not be made" "$dir/log/setup.log"
    ceph-mon "${C[@]}" -i a -f >"$dir/log/mon.out" 2>&1 </dev/null &
    echo $! > "$dir/mon.pid"
    # The OSD is made with the uuid it is registered under and placed in the
    # CRUSH map before it starts: at boot it sets its device class, and an OSD
    # that is not placed yet falls back to "osd create" with its own uuid,
    # which a mismatch turns into "wrong fsid" and an exit.
    local ouuid
    ouuid=$(cat /proc/sys/kernel/random/uuid)
    timeout 30 ceph "${C[@]}" --connect-timeout 30 osd create "$ouuid" >>"$dir/log/setup.log" 2>&1 ||
        fail_start "the monitor did not answer" "$dir/log/mon.out"
    ceph-osd "${C[@]}" -i 0 --mkfs --osd-uuid "$ouuid" >>"$dir/log/setup.log" 2>&1 ||
        fail_start "the OSD could not be made" "$dir/log/setup.log"
    timeout 30 ceph "${C[@]}" osd crush add osd.0 1.0 host=localhost root=default >>"$dir/log/setup.log" 2>&1 ||
        fail_start "the OSD could not be placed" "$dir/log/setup.log"
    ceph-osd "${C[@]}" -i 0 -f >"$dir/log/osd.out" 2>&1 </dev/null &
    echo $! > "$dir/osd.pid"
    # radosgw creates its pools at start and blocks until they are served: wait
    # until the OSD is up and in, so that a slow OSD start is not a hung gateway
    local up=0 n=120
    until [ "$up" = 1 ]; do
        up=$(timeout 10 ceph "${C[@]}" osd stat -f json 2>>"$dir/log/setup.log" |
             python3 -c 'import json,sys; print(json.load(sys.stdin).get("num_up_osds", 0))' 2>/dev/null || echo 0)
        [ "$up" = 1 ] && break
        n=$((n - 1)); [ $n -gt 0 ] || fail_start "the OSD did not come up within 60 s" "$dir/log/osd.0.log"
        sleep 0.5
    done
    radosgw "${C[@]}" -n client.rgw.t -f >"$dir/log/rgw.out" 2>&1 </dev/null &
    echo $! > "$dir/rgw.pid"
    local n=360
    until curl -s -o /dev/null "http://127.0.0.1:$rp/"; do
        kill -0 "$(cat "$dir/rgw.pid")" 2>/dev/null || fail_start "radosgw exited" "$dir/log/rgw.out"
        n=$((n - 1)); [ $n -gt 0 ] || fail_start "radosgw did not answer within 180 s" "$dir/log/client.rgw.t.log"
        sleep 0.5
    done
    local key secret
    key=ARCA$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)
    secret=$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')
    radosgw-admin "${C[@]}" user create --uid=arca --display-name=arca --access-key="$key" --secret-key="$secret" \
        >>"$dir/log/setup.log" 2>&1 || fail_start "radosgw-admin user create failed" "$dir/log/setup.log"
    # ready: a signed request is answered
    n=60
    until AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=default AWS_CONFIG_FILE=/dev/null \
          AWS_SHARED_CREDENTIALS_FILE=/dev/null env -u AWS_CA_BUNDLE /usr/bin/aws --endpoint-url "http://127.0.0.1:$rp" \
          s3api list-buckets >/dev/null 2>"$dir/log/ready.err"; do
        n=$((n - 1)); [ $n -gt 0 ] || fail_start "a signed list-buckets was not answered" "$dir/log/ready.err"
        sleep 0.5
    done
    {
        echo "S3_ENDPOINT=http://127.0.0.1:$rp"
        echo "S3_TLS_ENDPOINT=https://127.0.0.1:$tp"
        echo "S3_TLS_PORT=$tp"
        echo "S3_KEY=$key"
        echo "S3_SECRET=$secret"
        echo "S3_REGION=default"
        echo "S3_CA=$dir/tls/ca.pem"
        echo "S3_DNS=s3.test"
        echo "RGW_CONF=$dir/ceph.conf"
    } > "$dir/env"
    cat "$dir/env"
}

case $cmd in
    start) start ;;
    stop) [ -d "$dir" ] && stop; exit 0 ;;
    *) usage ;;
esac
