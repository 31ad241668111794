#!/usr/bin/env bash
# Test CQL server: Apache Cassandra 5.0 (the jars ./run deps copied from Maven Central
# into .deps/cassandra/lib, pinned in tests/peers/cassandra/pom.xml) on JDK 17, one node
# on 127.0.0.1, PasswordAuthenticator on, data under DIR. The native port takes plain and
# TLS connections both (client_encryption_options optional): a test CA made at start
# (DIR/tls/ca.pem) signed the node's certificate for 127.0.0.1 and "localhost".
#   cassandra.sh start DIR -> prints CQL_HOST, CQL_PORT, CQL_USER, CQL_PASSWORD (the test
#       superuser's, not a secret), CQL_CA (the CA's PEM) and CASSANDRA_VERSION on stdout
#       (also kept in DIR/env) once DataStax's Python driver (protocol v4) logs in over TLS
#       and reads system.local
#   cassandra.sh stop DIR  -> stops the node started for DIR
# CASSANDRA_HEAP (768m) sets -Xmx. Exit 0 ok, 1 failure (with the reason and the
# node's last log lines on stderr).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIB=${CASSANDRA_LIB:-$ROOT/.deps/cassandra/lib}
PY=$ROOT/.deps/venv/bin/python
JAVA=${CASSANDRA_JAVA:-/usr/lib/jvm/java-17-openjdk-amd64/bin/java}

usage() { echo "usage: $0 start DIR | stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 dir=$2
die() { echo "cassandra.sh: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

stop() {
    local pid
    [ -f "$dir/cassandra.pid" ] || return 0
    pid=$(cat "$dir/cassandra.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$dir/cassandra.pid"
}

# login: true when the driver logs in over TLS (checking the certificate) with protocol
# v4 and reads the release version
login() {
    "$PY" - "$1" "$dir/tls/ca.pem" <<'PYEOF' >"$dir/version" 2>>"$dir/login.log"
import ssl, sys
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import Cluster
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
tls.load_verify_locations(sys.argv[2])
c = Cluster(["127.0.0.1"], port=int(sys.argv[1]), protocol_version=4, connect_timeout=5, ssl_context=tls,
            ssl_options={"server_hostname": "127.0.0.1"},
            auth_provider=PlainTextAuthProvider("cassandra", "cassandra"))
try:
    print(c.connect().execute("SELECT release_version FROM system.local").one()[0])
finally:
    c.shutdown()
PYEOF
}

start() {
    ls "$LIB"/cassandra-all-*.jar >/dev/null 2>&1 || die "no cassandra-all jar in $LIB: run ./run deps (Maven Central)"
    [ -x "$JAVA" ] || die "$JAVA not found: run ./run deps (Debian package openjdk-17-jre-headless)"
    [ -x "$PY" ] || die "$PY not found: run ./run deps (PyPI: cassandra-driver)"
    mkdir -p "$dir/tls" || die "cannot create $dir"
    command -v openssl >/dev/null || die "openssl not found: run ./run deps (Debian package openssl)"
    local native storage jmx pid n flags t=$dir/tls
    # the test CA and the node's certificate (PKCS12 for the JVM; the password is a test value)
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=arca test CA" -keyout "$t/ca.key" -out "$t/ca.pem" \
        >"$t/openssl.log" 2>&1 &&
        openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$t/node.key" -out "$t/node.csr" >>"$t/openssl.log" 2>&1 &&
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$t/ext" &&
        openssl x509 -req -in "$t/node.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 2 -extfile "$t/ext" \
            -out "$t/node.pem" >>"$t/openssl.log" 2>&1 &&
        openssl pkcs12 -export -in "$t/node.pem" -inkey "$t/node.key" -name node -passout pass:arca-test \
            -out "$t/node.p12" >>"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; die "cannot make the test certificates"; }
    native=$(free_port) storage=$(free_port) jmx=$(free_port)
    cat >"$dir/cassandra.yaml" <<YAML
cluster_name: arca-test
num_tokens: 1
initial_token: 0
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
commitlog_sync: periodic
commitlog_sync_period: 10000ms
commitlog_segment_size: 8MiB
commitlog_directory: $dir/commitlog
hints_directory: $dir/hints
saved_caches_directory: $dir/saved_caches
cdc_raw_directory: $dir/cdc_raw
data_file_directories: [$dir/data]
listen_address: 127.0.0.1
storage_port: $storage
rpc_address: 127.0.0.1
start_native_transport: true
native_transport_port: $native
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$storage"
endpoint_snitch: SimpleSnitch
authenticator: PasswordAuthenticator
authorizer: AllowAllAuthorizer
concurrent_compactors: 1
client_encryption_options:
  enabled: true
  optional: true
  keystore: $t/node.p12
  keystore_password: arca-test
  store_type: PKCS12
YAML
    cat >"$dir/logback.xml" <<XML
<configuration><appender name="F" class="ch.qos.logback.core.FileAppender"><file>$dir/system.log</file>
<encoder><pattern>%-5level %date{HH:mm:ss.SSS} %logger{20}: %msg%n</pattern></encoder></appender>
<root level="INFO"><appender-ref ref="F"/></root></configuration>
XML
    flags=$(grep -v '^#' "$ROOT/tests/peers/cassandra/jvm17.options" | tr '\n' ' ')
    # shellcheck disable=SC2086 # one flag a word
    setsid "$JAVA" -Xms256m "-Xmx${CASSANDRA_HEAP:-768m}" -XX:+UseG1GC $flags -javaagent:"$(ls "$LIB"/jamm-*.jar | head -n 1)" \
        -Dcassandra.config="file://$dir/cassandra.yaml" -Dcassandra.storagedir="$dir" -Dcassandra-foreground=yes \
        -Dlogback.configurationFile="file://$dir/logback.xml" -Dcassandra.jmx.local.port="$jmx" \
        -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=1000 \
        -Dcassandra.superuser_setup_delay_ms=100 -Dcassandra.unsafesystem=true \
        -cp "$LIB/*" org.apache.cassandra.service.CassandraDaemon >"$dir/out.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/cassandra.pid"
    n=180
    until grep -q 'Starting listening for CQL clients' "$dir/system.log" 2>/dev/null && login "$native"; do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$dir/system.log" "$dir/out.log" >&2; die "Cassandra exited"; }
        n=$((n - 1)); [ $n -gt 0 ] || { tail -n 20 "$dir/system.log" "$dir/login.log" >&2; stop; die "Cassandra did not let the test superuser log in within 180 s"; }
        sleep 1
    done
    printf 'CQL_HOST=127.0.0.1\nCQL_PORT=%s\nCQL_USER=cassandra\nCQL_PASSWORD=cassandra\nCQL_CA=%s\nCASSANDRA_VERSION=%s\n' \
        "$native" "$t/ca.pem" "$(cat "$dir/version")" >"$dir/env"
    cat "$dir/env"
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
