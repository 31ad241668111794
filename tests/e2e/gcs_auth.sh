#!/usr/bin/env bash
# gcs credentials, in Application Default Credentials order, against a token
# endpoint that verifies arca's RS256 JWT with google-auth (tests/servers/
# gcsauth.py) and a metadata-server stand-in that requires Metadata-Flavor;
# the fault proxy in front of fake-gcs-server checks every bearer token
# against the issued ones (unknown or expired: 401). Tokens are renewed before
# they expire, also in the middle of a long upload; a wrong key, an expired
# fixed token and no credentials at all exit 1 saying what to do; the private
# key never appears in output.
SUITE=gcs_auth
. "$(dirname "$0")/../lib.sh"

PY=$ROOT/.deps/venv/bin/python
need "$ARCA" "$BUILD/plugins/files.so" "$BUILD/plugins/gcs.so" "$PY" openssl curl
G=$T_TMP/gcs
rc=0
envtxt=$("$ROOT/tests/servers/gcs.sh" start "$G" auth 2>"$T_TMP/gcs.err") || rc=$?
on_exit "'$ROOT/tests/servers/gcs.sh' stop '$G'"
[ "$rc" = 0 ] || peer_failed fake-gcs-server "$T_TMP/gcs.err"
eval "$envtxt"
GPORT=${GCS_ENDPOINT##*:}
unset GOOGLE_APPLICATION_CREDENTIALS
export CLOUDSDK_CONFIG=$T_TMP/no-gcloud GCE_METADATA_HOST=127.0.0.1:9
EMAIL=backup@arca-test.iam.gserviceaccount.com

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_TMP/key.pem" 2>/dev/null
openssl pkey -in "$T_TMP/key.pem" -pubout -out "$T_TMP/pub.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T_TMP/other.pem" 2>/dev/null
KEYLINE=$(sed -n 2p "$T_TMP/key.pem") # a line of the private key, to look for in output
: > "$T_TMP/tokens"
PIDS=()
on_exit 'for p in "${PIDS[@]}"; do kill $p; done'
# start_auth NAME [ARGS...]: a token endpoint + metadata stand-in; sets AUTH_PORT
start_auth() {
    local name=$1; shift
    "$PY" "$ROOT/tests/servers/gcsauth.py" "$T_TMP/$name.log" "$T_TMP/tokens" --pubkey "$T_TMP/pub.pem" \
        --email "$EMAIL" --client-id cid.apps.googleusercontent.com --client-secret csecret --refresh-token rtoken \
        "$@" > "$T_TMP/$name.port" 2>"$T_TMP/$name.err" &
    PIDS+=($!)
    for _ in $(seq 50); do [ -s "$T_TMP/$name.port" ] && break; sleep 0.1; done
    [ -s "$T_TMP/$name.port" ] || peer_failed gcsauth "$T_TMP/$name.err"
    AUTH_PORT=$(cat "$T_TMP/$name.port")
}
# start_proxy NAME RULE...: the token-checking proxy; sets PROXY_PORT and PLOG
start_proxy() {
    local name=$1; shift
    PLOG=$T_TMP/$name.proxy.log; : > "$PLOG"
    python3 "$ROOT/tests/servers/gcsfault.py" "$GPORT" "$PLOG" --tokens "$T_TMP/tokens" "$@" > "$T_TMP/$name.pport" \
        2>"$T_TMP/$name.perr" &
    PIDS+=($!)
    for _ in $(seq 50); do [ -s "$T_TMP/$name.pport" ] && break; sleep 0.1; done
    PROXY_PORT=$(cat "$T_TMP/$name.pport")
}
sa_json() { # KEYFILE TOKEN_PORT
    python3 -c 'import json,sys; print(json.dumps({"type": "service_account", "project_id": "arca-test",
        "client_email": sys.argv[2], "private_key": open(sys.argv[1]).read(), "private_key_id": "k1",
        "token_uri": "http://127.0.0.1:%s/token" % sys.argv[3]}))' "$1" "$EMAIL" "$2"
}

start_auth auth
start_proxy main
sa_json "$T_TMP/key.pem" "$AUTH_PORT" > "$T_TMP/sa.json"
sa_json "$T_TMP/other.pem" "$AUTH_PORT" > "$T_TMP/wrong.json"
chmod 600 "$T_TMP"/*.json

SRC=$T_TMP/src
mkdir -p "$SRC"
openssl enc -aes-128-ctr -pass pass:auth -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 3000000 > "$SRC/a.bin"
printf 'x\n' > "$SRC/x.txt"

# write_config FILE PREFIX [EXTRA LINE...]
write_config() {
    local f=$1 prefix=$2; shift 2
    {
        printf '[arca]\nchunk_size = 1M\n[source s]\nplugin = files\npath = %s\n' "$SRC"
        printf '[destination d]\nplugin = gcs\nendpoint = http://127.0.0.1:%s\nbucket = auth\nprefix = %s\n' \
            "$PROXY_PORT" "$prefix"
        printf 'chunk_size = 1M\nupload_concurrency = 1\n'
        for l in "$@"; do printf '%s\n' "$l"; done
        printf '[pipeline p]\nsource = s\ndestination = d\n'
    } > "$f"
}
issued() { grep -c "^ISSUED $1" "$T_TMP/${2:-auth}.log"; }
no_bad_tokens() {
    local bad; bad=$(grep -E '^(BADTOKEN|EXPIRED)' "$PLOG")
    [ -z "$bad" ] && pass "$1: every request carried a valid, unexpired token" || fail "$1: every request carried a valid token" "$bad"
}
# works NAME KIND [ENV...] -- EXTRA...: backup and list succeed with a token of KIND
works() {
    local name=$1 kind=$2; shift 2
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    write_config "$T_TMP/$name.ini" "$name/" "$@"
    local before; before=$(issued "$kind")
    if env "${envs[@]}" "$ARCA" -c "$T_TMP/$name.ini" -v backup p > "$T_TMP/$name.out" 2>&1 &&
        env "${envs[@]}" "$ARCA" -c "$T_TMP/$name.ini" list p >> "$T_TMP/$name.out" 2>&1; then
        pass "$name: backup and list succeed"
    else fail "$name: backup and list succeed" "$(tail -c 600 "$T_TMP/$name.out")"; fi
    [ "$(issued "$kind")" -gt "$before" ] && pass "$name: the token came from the $kind grant" ||
        fail "$name: the token came from the $kind grant" "$(tail -3 "$T_TMP/auth.log")"
    grep -qF -- "$KEYLINE" "$T_TMP/$name.out" && fail "$name: the private key never appears in output" "found" ||
        pass "$name: the private key never appears in output"
}

works sa-key-option sa -- "credentials = $T_TMP/sa.json"
no_bad_tokens sa-key-option
expect_match "sa-key-option: the token endpoint verified the JWT (no refusal)" "^$" "$(grep REFUSED "$T_TMP/auth.log")"
works sa-key-file-contents sa -- "credentials_file = $T_TMP/sa.json"
works google-application-credentials sa "GOOGLE_APPLICATION_CREDENTIALS=$T_TMP/sa.json" --
mkdir -p "$T_TMP/gcloud"
printf '{"type":"authorized_user","client_id":"cid.apps.googleusercontent.com","client_secret":"csecret","refresh_token":"rtoken","token_uri":"http://127.0.0.1:%s/token"}\n' \
    "$AUTH_PORT" > "$T_TMP/gcloud/application_default_credentials.json"
works gcloud-adc-user user "CLOUDSDK_CONFIG=$T_TMP/gcloud" --
works metadata-server meta "GCE_METADATA_HOST=127.0.0.1:$AUTH_PORT" --
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AUTH_PORT/computeMetadata/v1/instance/service-accounts/default/token")
[ "$code" = 403 ] && pass "metadata-server: the stand-in refuses requests without Metadata-Flavor (arca sent it)" ||
    fail "metadata-server: the stand-in refuses requests without Metadata-Flavor" "HTTP $code"
# ADC order: the option before the environment, the environment before gcloud's file and the metadata server
works order-option-first sa "GOOGLE_APPLICATION_CREDENTIALS=$T_TMP/wrong.json" -- "credentials = $T_TMP/sa.json"
works order-env-before-gcloud sa "GOOGLE_APPLICATION_CREDENTIALS=$T_TMP/sa.json" "CLOUDSDK_CONFIG=$T_TMP/gcloud" \
    "GCE_METADATA_HOST=127.0.0.1:$AUTH_PORT" --

# ---- tokens that live 4 s, an upload that takes longer: renewed before expiry, mid-upload ----
start_auth short --life 4
sa_json "$T_TMP/key.pem" "$AUTH_PORT" > "$T_TMP/short.json"
start_proxy slow "delay:PUT:upload_id=:always:0.35"
write_config "$T_TMP/slow.ini" "slow/" "credentials = $T_TMP/short.json"
mkdir -p "$T_TMP/slowsrc"
openssl enc -aes-128-ctr -pass pass:slow -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c 24000000 > "$T_TMP/slowsrc/s.bin"
sed -i "s|^path = $SRC\$|path = $T_TMP/slowsrc|" "$T_TMP/slow.ini"
t0=$SECONDS
if "$ARCA" -c "$T_TMP/slow.ini" -v backup p > "$T_TMP/slow.out" 2>&1; then
    pass "short-lived tokens: a $((SECONDS - t0)) s upload succeeds"
else fail "short-lived tokens: the upload succeeds" "$(tail -c 600 "$T_TMP/slow.out")"; fi
n=$(issued sa short)
[ "$n" -ge 3 ] && pass "short-lived tokens: renewed in the middle of the upload ($n tokens)" ||
    fail "short-lived tokens: renewed in the middle of the upload" "$n tokens: $(cat "$T_TMP/short.log")"
no_bad_tokens "short-lived tokens"
expect_match "short-lived tokens: no 401 was needed" "^$" "$(grep -c 401 "$T_TMP/slow.out" | grep -v '^0$')"
start_proxy main2

# ---- failures that say what to do ----
write_config "$T_TMP/wrongkey.ini" "wrongkey/" "credentials = $T_TMP/wrong.json"
expect_exit "wrong key: backup exits 1" 1 "$ARCA" -c "$T_TMP/wrongkey.ini" backup p
expect_match "wrong key: names the source, the token endpoint's answer and what to do" \
    "cannot get an access token from the credentials option .*wrong.json \(service account $EMAIL\).*HTTP 400 invalid_grant: Invalid JWT Signature.*create a new key" "$OUT"
grep -qF -- "$KEYLINE" <<<"$OUT" && fail "wrong key: no key material in the message" "found" || pass "wrong key: no key material in the message"
expect_exit "wrong key: list exits 1 too" 1 "$ARCA" -c "$T_TMP/wrongkey.ini" list p

echo "ya29.expired-token $(($(date +%s) - 10))" >> "$T_TMP/tokens"
write_config "$T_TMP/expired.ini" "expired/" "access_token = ya29.expired-token"
expect_exit "expired token: backup exits 1" 1 "$ARCA" -c "$T_TMP/expired.ini" backup p
expect_match "expired token: HTTP 401, the source, and to give a fresh token" \
    "HTTP 401 authError.*\[credentials: the access_token option\].*give a fresh access_token" "$OUT"
grep -qF ya29.expired-token <<<"$OUT" && fail "expired token: the token is not printed" "found" || pass "expired token: the token is not printed"

write_config "$T_TMP/none.ini" "none/"
t0=$SECONDS
expect_exit "no credentials anywhere: backup exits 1" 1 "$ARCA" -c "$T_TMP/none.ini" backup p
expect_match "no credentials anywhere: says where it looked and what to give" \
    "metadata server at 127.0.0.1:9.*hint: off Google Cloud, give credentials" "$OUT"
[ $((SECONDS - t0)) -le 20 ] && pass "no credentials anywhere: fails within 20 s ($((SECONDS - t0)) s)" ||
    fail "no credentials anywhere: fails within 20 s" "$((SECONDS - t0)) s"
[ -z "$("$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" ls auth wrongkey/)$("$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" ls auth expired/)" ] &&
    pass "failed backups left nothing in the bucket" || fail "failed backups left nothing in the bucket" "objects left"
