#!/usr/bin/env bash
# Benchmark: arca backup files -> nfs(path) beside `tar -cf - DIR | zstd -3 -T2 > out`
# on the same data in the same run. Prints wall time, CPU, peak RSS, output size for
# each, medians over REPS runs, and the wall-time ratio arca / tar+zstd.
# Usage: bench/files_vs_tar.sh [SIZE_MIB (default 1024)] [REPS (default 3)]
# Data: half pseudo-random (incompressible), half text (compressible), in 8 files.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZE=${1:-1024}; REPS=${2:-3}
ARCA=${ARCA:-$ROOT/build/arca}
W=$(mktemp -d "${TMPDIR:-/tmp}/arca-bench.XXXXXX"); trap 'rm -rf "$W"' EXIT
mkdir -p "$W/data/rnd" "$W/data/txt" "$W/out"
per=$((SIZE * 1048576 / 8))
for i in 1 2 3 4; do
    openssl enc -aes-128-ctr -pass pass:$i -nosalt -pbkdf2 </dev/zero 2>/dev/null | head -c $per > "$W/data/rnd/r$i.bin"
done
python3 - "$W/data/txt" "$per" <<'PY'
import random, sys
random.seed(7)
words = ["%s%d" % (w, i % 97) for i, w in enumerate(("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua backup archive yugabyte postgres tablet snapshot").split() * 40)]
for i in range(4):
    with open("%s/t%d.txt" % (sys.argv[1], i), "w") as f:
        n = 0
        while n < int(sys.argv[2]):
            line = " ".join(random.choice(words) for _ in range(12)) + "\n"
            f.write(line); n += len(line)
PY
cat > "$W/arca.ini" <<EOF2
[arca]
plugin_path = $ROOT/build/plugins
[source s]
plugin = files
path = $W/data
[destination d]
plugin = nfs
path = $W/out
[pipeline p]
source = s
destination = d
compression = zstd:3
EOF2
measure() { # measure NAME CMD... -> appends "NAME wall cpu rss_kib" to $W/results
    local name=$1; shift
    rm -rf "$W/out"/* "$W/out.tar.zst"; sync
    /usr/bin/time -f "%e %U %S %M" -o "$W/t" "$@" >/dev/null
    read -r wall u s rss < "$W/t"
    local size; size=$(du -cb "$W/out" "$W/out.tar.zst" 2>/dev/null | tail -1 | cut -f1)
    echo "$name $wall $(echo "$u + $s" | bc) $rss $size" >> "$W/results"
}
cat /dev/null > "$W/results"
for r in $(seq 1 "$REPS"); do
    # both write durably (arca fsyncs on commit, so tar's output is fsynced too)
    measure arca "$ARCA" -c "$W/arca.ini" backup p
    measure tar_zstd sh -c "tar -cf - -C '$W' data | zstd -q -3 -T2 > '$W/out.tar.zst' && sync '$W/out.tar.zst'"
done
python3 - "$W/results" "$SIZE" "$REPS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def med(name, col): return statistics.median(float(r[col]) for r in rows if r[0] == name)
print("files -> nfs(path), %s MiB (half random, half text), median of %s runs, %s" % (sys.argv[2], sys.argv[3], open("/proc/cpuinfo").read().count("processor") and "%d cores" % open("/proc/cpuinfo").read().count("processor\t")))
print("%-10s %8s %8s %10s %12s" % ("tool", "wall s", "cpu s", "peak MiB", "output MiB"))
for n in ("arca", "tar_zstd"):
    print("%-10s %8.2f %8.2f %10.1f %12.1f" % (n, med(n, 1), med(n, 2), med(n, 3) / 1024, med(n, 4) / 1048576))
print("ratio arca/tar+zstd wall time: %.2f (target <= 1.2)" % (med("arca", 1) / med("tar_zstd", 1)))
print("arca peak RSS: %.1f MiB" % (med("arca", 3) / 1024))
PY
