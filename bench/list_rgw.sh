#!/usr/bin/env bash
# `arca list` of N backups (default 1500) on a real Ceph RGW, this arca beside
# arca 0.1.0 (commit 7121825, built here in a temporary worktree), in one run.
# The backups are written straight into the bucket (a small archive and its
# catalogue each, as each arca names them) so that only listing is measured.
#   bench/list_rgw.sh [N]
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1500}
T=$(mktemp -d /tmp/arca-listbench.XXXXXX)
OLD=$T/old
cleanup() {
    "$ROOT/tests/servers/rgw.sh" stop "$T/rgw" >/dev/null 2>&1 || true
    git -C "$ROOT" worktree remove --force "$OLD" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
make -s -C "$ROOT" all
git -C "$ROOT" worktree add -q --detach "$OLD" 7121825
make -s -C "$OLD" build/arca build/plugins/s3.so build/plugins/files.so >/dev/null
eval "$("$ROOT/tests/servers/rgw.sh" start "$T/rgw")"
PY=$ROOT/.deps/venv/bin/python
[ -x "$PY" ] || { echo "run ./run deps first (boto3 comes with moto in .deps/venv)" >&2; exit 1; }

# one real backup of each kind, copied N times under new ids
mkdir -p "$T/src"; echo hello > "$T/src/a.txt"
for v in new old; do
    BIN=$ROOT/build; [ $v = old ] && BIN=$OLD/build
    cat > "$T/$v.ini" <<EOF
[arca]
plugin_path = $BIN/plugins
[source s]
plugin = files
path = $T/src
[destination d]
plugin = s3
endpoint = $S3_ENDPOINT
region = $S3_REGION
bucket = bench
prefix = $v/
access_key_id = $S3_KEY
secret_access_key = $S3_SECRET
[pipeline p]
source = s
destination = d
EOF
done
AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET AWS_DEFAULT_REGION=$S3_REGION \
    /usr/bin/aws --endpoint-url "$S3_ENDPOINT" s3api create-bucket --bucket bench >/dev/null
"$ROOT/build/arca" -c "$T/new.ini" backup p >/dev/null
ARCA_PLUGIN_PATH= "$OLD/build/arca" -c "$T/old.ini" backup p >/dev/null
"$PY" - "$S3_ENDPOINT" "$S3_KEY" "$S3_SECRET" "$N" <<'EOF'
import boto3, concurrent.futures, json, sys
ep, key, secret, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=key, aws_secret_access_key=secret, region_name="default")
objs = [o["Key"] for o in s3.list_objects_v2(Bucket="bench")["Contents"]]
def copies(prefix):
    cat = [k for k in objs if k.startswith(prefix) and k.endswith(".manifest.json")][0]
    ident = cat[len(prefix):-len(".manifest.json")].split(".", 1)[-1] if prefix == "new/" else cat[len(prefix):-len(".manifest.json")]
    body = {k: s3.get_object(Bucket="bench", Key=k)["Body"].read() for k in objs if k.startswith(prefix)}
    jobs = []
    for i in range(n):
        new_id = "20250101T%06d.000Z-%06x" % (i % 240000, i)
        for k, b in body.items():
            jobs.append((k.replace(ident, new_id), b.replace(ident.encode(), new_id.encode())))
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kb: s3.put_object(Bucket="bench", Key=kb[0], Body=kb[1]), jobs))
copies("new/")
copies("old/")
EOF
t() { local t0; t0=$(date +%s.%N); "$@" > "$T/out" 2>/dev/null; echo "$(date +%s.%N) - $t0" | bc; }
tn=$(t "$ROOT/build/arca" -c "$T/new.ini" list p)
nn=$(grep -c '^2025' "$T/out" || true)
to=$(ARCA_PLUGIN_PATH= t "$OLD/build/arca" -c "$T/old.ini" list p)
no=$(grep -c '^2025' "$T/out" || true)
printf 'arca list of %s backups on Ceph RGW (loopback):\n' "$N"
printf '  arca 0.1.0: %6.2f s (%s listed)\n  this arca:  %6.2f s (%s listed)\n  ratio:      %6.3f\n' "$to" "$no" "$tn" "$nn" "$(echo "$tn / $to" | bc -l)"
