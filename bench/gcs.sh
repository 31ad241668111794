#!/usr/bin/env bash
# arca's gcs destination beside Google's own clients, same fake-gcs-server, same
# data, same run:
#   upload:   `arca backup` of an incompressible file (read, chunk, zstd, hash,
#             stream) as parallel parts (chunk_size x upload_concurrency) and as
#             one resumable stream in the Python client's chunk size, vs the
#             Python client (google-cloud-storage: resumable, 100 MiB chunks)
#             and `gcloud storage cp` (where installed; parallel composite
#             uploads off) uploading the resulting .arca file
#   download: `arca verify PIPELINE ID` (ranged GETs, every member checked) vs
#             the Python client's and gcloud's download of the same object
# Also: one curl request carrying the whole file (the emulator's floor), and
# for every row the emulator's own CPU seconds (from /proc), which says how
# much of the time is the emulator. Prints wall time, ratio to the fastest
# Google client, peak RSS of the client.
# Usage: [REPS=3] bench/gcs.sh [MiB] [chunk_size] [upload_concurrency]   (1024 16M 4)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
MIB=${1:-1024} CHUNK=${2:-16M} CONC=${3:-4}
ARCA=${ARCA:-$ROOT/build/arca}
PY=$ROOT/.deps/venv/bin/python
export ARCA_PLUGIN_PATH=$ROOT/build/plugins
T=$(mktemp -d "${TMPDIR:-/tmp}/arca-gcsbench.XXXXXX")
trap '"$ROOT/tests/servers/gcs.sh" stop "$T/gcs" >/dev/null 2>&1; rm -rf "$T"' EXIT
eval "$("$ROOT/tests/servers/gcs.sh" start "$T/gcs" bench)"
GPID=$(cat "$T/gcs/gcs.pid")
GCLOUD=$(command -v gcloud || true)
GCL_ENV=(CLOUDSDK_CONFIG="$T/gcloud" CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE="$GCS_ENDPOINT/"
    CLOUDSDK_AUTH_ACCESS_TOKEN=bench-token CLOUDSDK_CORE_DISABLE_PROMPTS=1
    CLOUDSDK_STORAGE_PARALLEL_COMPOSITE_UPLOAD_ENABLED=False)

mkdir -p "$T/src"
openssl enc -aes-128-ctr -pass pass:bench -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $((MIB << 20)) > "$T/src/data.bin"
config() { # FILE CHUNK CONC
    cat > "$1" <<EOF
[arca]
workers = 2
[source s]
plugin = files
path = $T/src
[destination d]
plugin = gcs
endpoint = $GCS_ENDPOINT
bucket = bench
access_token = bench-token
chunk_size = $2
upload_concurrency = $3
[pipeline p]
source = s
destination = d
EOF
}
config "$T/par.ini" "$CHUNK" "$CONC"
config "$T/seq.ini" 100M 1
secs() { awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, a, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + a[i]; printf "%.2f", s }' "$1"; }
rss() { awk -F': ' '/Maximum resident set size/ { printf "%d", $2 / 1024 }' "$1"; }
cpu() { awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$1"; }
# the emulator's CPU seconds so far (utime + stime of fake-gcs-server)
gcpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$GPID/stat"; }
declare -A EMU
run() { # KEY CMD...: timed into $T/KEY.$R.t, the emulator's CPU for it into $T/KEY.$R.emu
    local k=$1 before; shift
    before=$(gcpu)
    /usr/bin/time -v -o "$T/$k.$R.t" "$@" > "$T/$k.out" 2>"$T/$k.err" || { echo "bench: $k failed: $(tail -3 "$T/$k.err")" >&2; exit 1; }
    echo "$(gcpu) - $before" | bc -l > "$T/$k.$R.emu"
}

# REPS rounds (3 unless set), every tool once a round, in the same order; each
# row below is the round with that tool's median wall time (the machine may be shared)
REPS=${REPS:-3}
for ((R = 1; R <= REPS; R++)); do
    run arca_up_par "$ARCA" -c "$T/par.ini" -v backup p
    ID=$(tail -n 1 "$T/arca_up_par.out")
    run py_down "$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" get bench "p.$ID.arca" "$T/archive.arca"
    SIZE=$(stat -c %s "$T/archive.arca")
    run arca_up_seq "$ARCA" -c "$T/seq.ini" -v backup p
    ID2=$(tail -n 1 "$T/arca_up_seq.out")
    run py_up "$PY" "$ROOT/tests/tools/gcsclient.py" "$GCS_ENDPOINT" put bench py-copy.arca "$T/archive.arca"
    run curl_up curl -sf -o /dev/null -X POST -H "Content-Type: application/octet-stream" -T "$T/archive.arca" \
        "$GCS_ENDPOINT/upload/storage/v1/b/bench/o?uploadType=media&name=curl-copy.arca"
    run arca_down "$ARCA" -c "$T/par.ini" verify p "$ID"
    run curl_down curl -sf -o /dev/null "$GCS_ENDPOINT/storage/v1/b/bench/o/curl-copy.arca?alt=media"
    if [ -n "$GCLOUD" ]; then
        run gcloud_up env "${GCL_ENV[@]}" "$GCLOUD" storage cp "$T/archive.arca" gs://bench/gcloud-copy.arca
        rm -f "$T/archive.arca"
        run gcloud_down env "${GCL_ENV[@]}" "$GCLOUD" storage cp gs://bench/gcloud-copy.arca "$T/archive.arca"
    fi
    # the emulator keeps objects in memory: this round's backups go
    "$ARCA" -c "$T/par.ini" delete p "$ID" >/dev/null 2>&1
    "$ARCA" -c "$T/par.ini" delete p "$ID2" >/dev/null 2>&1
done
for f in "$T"/*.1.t; do # the median round of each tool -> $T/KEY.t, EMU[KEY]
    k=$(basename "$f" .1.t)
    m=$(for r in $(seq "$REPS"); do echo "$(secs "$T/$k.$r.t") $r"; done | sort -n | awk -v n="$REPS" 'NR == int((n + 1) / 2) { print $2 }')
    cp "$T/$k.$m.t" "$T/$k.t"
    EMU[$k]=$(cat "$T/$k.$m.emu")
done

mb=$(echo "$SIZE / 1048576" | bc -l)
best() { # the fastest Google client for a direction
    local b="" k
    for k in "$@"; do
        [ -f "$T/$k.t" ] || continue
        if [ -z "$b" ] || [ "$(echo "$(secs "$T/$k.t") < $(secs "$T/$b.t")" | bc -l)" = 1 ]; then b=$k; fi
    done
    echo "$b"
}
UPB=$(best py_up gcloud_up) DOWNB=$(best py_down gcloud_down)
row() { # DIR LABEL KEY BEST
    local s; s=$(secs "$T/$3.t")
    printf '%-9s %-50s %7.2f s %6.1f MiB/s  ratio %5.2f  %5d MiB RSS  client CPU %5.1f s  emulator CPU %5.1f s\n' \
        "$1" "$2" "$s" "$(echo "$mb / $s" | bc -l)" "$(echo "$s / $(secs "$T/$4.t")" | bc -l)" "$(rss "$T/$3.t")" \
        "$(cpu "$T/$3.t")" "${EMU[$3]}"
}
echo "archive: $(printf '%.0f' "$mb") MiB incompressible; fake-gcs-server v1.56.1 (memory backend) on loopback; $(nproc) cores"
echo "$REPS rounds, medians; ratio: wall time / the fastest Google client in that direction ($UPB up, $DOWNB down); below 1.0 arca is faster"
row upload "arca backup: parts $CHUNK x $CONC composed (+zstd, hashes)" arca_up_par "$UPB"
row upload "arca backup: one resumable stream, 100M chunks" arca_up_seq "$UPB"
row upload "python google-cloud-storage (resumable, 100M)" py_up "$UPB"
if [ -n "$GCLOUD" ]; then row upload "gcloud storage cp (parallel composite off)" gcloud_up "$UPB"; fi
row upload "curl: one request (the emulator's floor)" curl_up "$UPB"
row download "arca verify (ranged GETs, every member checked)" arca_down "$DOWNB"
row download "python google-cloud-storage" py_down "$DOWNB"
if [ -n "$GCLOUD" ]; then row download "gcloud storage cp" gcloud_down "$DOWNB"; fi
row download "curl: one request (the emulator's floor)" curl_down "$DOWNB"
