# A vendor plugin without rebuilding arca: install arca under a prefix, build
# tests/vendor-plugin/ outside the tree with only what `pkg-config arca-plugin`
# names, run the destination kit against it through the installed example's
# test program (probe), and drive it with the INSTALLED binary, which must find
# its own plugins. VENDOR_SRC overrides the plugin sources (to prove a broken
# plugin turns this red).
. "$(dirname "$0")/../lib.sh"

unset ARCA_PLUGIN_PATH ARCA_CONFIG
W=$(realpath "$T_TMP")
PREFIX_DIR=$W/prefix
IARCA=$PREFIX_DIR/bin/arca
VENDOR_SRC=${VENDOR_SRC:-$ROOT/tests/vendor-plugin}
VD=$W/vendor # the out-of-tree build directory

# ---- install and build out of tree -------------------------------------------------

if ! out=$(make -C "$ROOT" install PREFIX="$PREFIX_DIR" 2>&1); then
    fail "make install PREFIX=... succeeds" "$(tail -c 600 <<<"$out")"
    exit 1
fi
pass "make install PREFIX=... succeeds"
for f in bin/arca lib/arca/plugins/files.so lib/arca/plugins/nfs.so include/arca/plugin.h lib/pkgconfig/arca-plugin.pc \
    include/arca/destkit.h share/arca/destkit/destkit.c share/doc/arca/PLUGINS.md \
    share/arca/examples/dirstore/dirstore.c share/arca/examples/dirstore/probe.c share/arca/examples/dirstore/Makefile; do
    [ -e "$PREFIX_DIR/$f" ] || { fail "install layout" "missing $PREFIX_DIR/$f"; exit 1; }
done
pass "install layout: bin/arca, lib/arca/plugins/*.so, include/arca/{plugin,destkit}.h, lib/pkgconfig/arca-plugin.pc"
pass "install layout: the kit's source, docs/PLUGINS.md and the example plugin under share/"
same=1
for f in dirstore.c probe.c Makefile; do cmp -s "$ROOT/tests/vendor-plugin/$f" "$PREFIX_DIR/share/arca/examples/dirstore/$f" || same=0; done
[ $same = 1 ] && pass "the installed example is tests/vendor-plugin's dirstore.c, probe.c and Makefile" \
    || fail "the installed example is tests/vendor-plugin's dirstore.c, probe.c and Makefile" "they differ"

export PKG_CONFIG_PATH=$PREFIX_DIR/lib/pkgconfig
out=$(pkg-config --cflags arca-plugin 2>&1)
[ "$(echo $out)" = "-I$PREFIX_DIR/include" ] && pass "pkg-config --cflags arca-plugin points at the installed include dir" \
    || fail "pkg-config --cflags arca-plugin points at the installed include dir" "got '$out'"
out=$(pkg-config --variable=destkit arca-plugin 2>&1)
[ "$out" = "$PREFIX_DIR/share/arca/destkit/destkit.c" ] && pass "pkg-config --variable=destkit names the installed kit source" \
    || fail "pkg-config --variable=destkit names the installed kit source" "got '$out'"

mkdir -p "$VD"
cp "$VENDOR_SRC"/*.c "$VENDOR_SRC"/Makefile "$VD"/
case "$VD" in "$ROOT"/*) fail "vendor build dir is outside the repo" "$VD"; exit 1 ;; esac

expect_exit "without arca-plugin.pc the vendor build fails" 2 env PKG_CONFIG_PATH= make -C "$VD" dirstore.so
[ ! -e "$VD/dirstore.so" ] && pass "... and produces no plugin" || fail "... and produces no plugin" "dirstore.so exists"

# With the .pc found but the installed header gone, the compile itself must fail:
# nothing else (the source tree, /usr/include) can stand in for the installed header.
mv "$PREFIX_DIR/include/arca/plugin.h" "$W/plugin.h.aside"
expect_exit "without the installed header the vendor build fails" 2 make -C "$VD" dirstore.so
expect_match "... because the compiler cannot find arca/plugin.h" "arca/plugin.h" "$OUT"
mv "$W/plugin.h.aside" "$PREFIX_DIR/include/arca/plugin.h"

if ! out=$(make -C "$VD" all refused 2>&1); then
    fail "vendor plugins build out of tree" "$(tail -c 600 <<<"$out")"
    exit 1
fi
pass "vendor plugins build out of tree"
line=$(grep -E -- '-o dirstore\.so' <<<"$out")
expect_match "the compile line uses the pkg-config cflags" "-I$PREFIX_DIR/include( |$)" "$line"
grep -q -- "$ROOT" <<<"$out" && fail "the compile line does not refer to the source tree" "$line" \
    || pass "the compile line does not refer to the source tree"
expect_match "the compile line has -fPIC -shared -fvisibility=hidden -Wall -Wextra -Werror -std=c11" \
    "-std=c11 -Wall -Wextra -Werror -fPIC -shared -fvisibility=hidden" "$line"
syms=$(nm -D --defined-only "$VD/dirstore.so" | awk '$2 ~ /^[TDBR]$/ {print $3}')
[ "$syms" = arca_plugin_entry ] && pass "dirstore.so exports only arca_plugin_entry" \
    || fail "dirstore.so exports only arca_plugin_entry" "exports: $(echo $syms)"

# ---- the destination contract: the installed example's probe runs the kit ------------

# A vendor starts from the installed example: copied out, built with its own
# Makefile against the installed header and kit, nothing from the source tree.
EX=$W/example
cp -r "$PREFIX_DIR/share/arca/examples/dirstore" "$EX"
if ! out=$(make -C "$EX" 2>&1); then
    fail "the installed example builds: dirstore.so and probe" "$(tail -c 600 <<<"$out")"
    exit 1
fi
pass "the installed example builds: dirstore.so and probe"
line=$(grep -E -- '-o probe ' <<<"$out")
expect_match "... the probe compiles the installed kit source" " $PREFIX_DIR/share/arca/destkit/destkit\.c( |$)" "$line"
grep -q -- "$ROOT" <<<"$out" && fail "... and nothing from the source tree" "$out" || pass "... and nothing from the source tree"

mkdir -p "$W/probe"
out=$("$EX/probe" "$VD/dirstore.so" "$W/probe" 2>/dev/null)
rc=$?
nkit=0
while IFS= read -r l; do
    if [[ $l =~ ^ok\ [0-9]+\ -\ (.*)\ \#\ SKIP\ (.*)$ ]]; then
        skip "probe: kit: ${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    elif [[ $l =~ ^ok\ [0-9]+\ -\ (.*)$ ]]; then
        pass "probe: kit: ${BASH_REMATCH[1]}"; nkit=$((nkit + 1))
    elif [[ $l =~ ^not\ ok\ [0-9]+\ -\ ([^:]*):\ (.*)$ ]]; then
        fail "probe: kit: ${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"; nkit=$((nkit + 1))
    elif [[ $l =~ ^ok\ -\ (.*)$ ]]; then
        pass "probe: ${BASH_REMATCH[1]}"
    elif [[ $l =~ ^not\ ok\ -\ ([^:]*):\ (.*)$ ]]; then
        fail "probe: ${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    fi
done <<<"$out"
# the plan line says how many kit checks apply; all of them must have reported
plan=$(sed -n 's/^1\.\.\([0-9]*\)$/\1/p' <<<"$out")
[ -n "$plan" ] && [ "$plan" -gt 0 ] && [ "$nkit" = "$plan" ] && pass "probe: the kit ran all $plan checks that apply to dirstore" \
    || fail "probe: the kit ran all checks that apply to dirstore" "plan '${plan}', reported $nkit"
# a crash or an early exit says so once; failed checks were reported above
[ "$rc" = 0 ] || grep -q '^not ok' <<<"$out" || fail "probe runs to the end" "exit $rc after: $(tail -n 1 <<<"$out")"

# ---- configuration: plugin_path in [arca], and plugin = /abs/path.so -----------------

mkdir -p "$W/plugins" "$W/src/sub/deeper" "$W/src/empty" "$W/ds" "$W/ds2" "$W/nfs" "$W/dsfail" "$W/nfsfail" \
    "$W/dsfail2" "$W/nfsfail2" "$W/dsabs"
cp "$VD/dirstore.so" "$W/plugins/"
head -c $((3 << 20)) /dev/urandom > "$W/src/big.bin"
echo "hello from a vendor test" > "$W/src/small.txt"
printf 'nested\n' > "$W/src/sub/deeper/n.txt"
: > "$W/src/sub/empty-file"
ln -s small.txt "$W/src/link"

C=$W/arca.ini
cat > "$C" <<EOF
[arca]
plugin_path = $W/plugins
chunk_size = 1M
workers = 2

[source src]
plugin = files
path = $W/src

[source back]
plugin = files
path = $W/restored

[destination ds]
plugin = dirstore
root = $W/ds

[destination ds2]
plugin = dirstore
root = $W/ds2

[destination nfsd]
plugin = nfs
path = $W/nfs

[destination dsfail]
plugin = dirstore
root = $W/dsfail
fail_after_bytes = 1M

[destination nfsfail]
plugin = nfs
path = $W/nfsfail

[destination dsfail2]
plugin = dirstore
root = $W/dsfail2
fail_after_bytes = 1M

[destination nfsfail2]
plugin = nfs
path = $W/nfsfail2

[pipeline solo]
source = src
destination = ds

[pipeline fan]
source = src
destination = ds2, nfsd

[pipeline failing]
source = src
destination = dsfail, nfsfail

[pipeline failing2]
source = src
destination = nfsfail2, dsfail2
EOF

expect_exit "config check accepts dirstore found on plugin_path" 0 "$IARCA" -c "$C" config check

expect_exit "arca plugins lists the installed and the vendor plugins" 0 "$IARCA" -c "$C" plugins
expect_match "... dirstore as a destination with ABI 1.1" "^dirstore +1\.1\.0 +destination +ABI 1\.1 " "$OUT"
expect_match "... files from the install dir" "^files .* source .*ABI 1\.1" "$OUT"
expect_match "... nfs from the install dir" "^nfs .* destination .*ABI 1\.1" "$OUT"
expect_exit "arca plugins nfs" 0 "$IARCA" -c "$C" plugins nfs
expect_match "... is the installed nfs.so, found relative to the binary" "^  $PREFIX_DIR/lib/arca/plugins/nfs\.so$" "$OUT"
grep -q -- "$ROOT" <<<"$OUT" && fail "... not the build tree's" "$OUT" || pass "... not the build tree's"

expect_exit "arca plugins dirstore" 0 "$IARCA" -c "$C" plugins dirstore
o=$OUT
expect_match "... names it, its role and ABI" "^dirstore 1\.1\.0 \(destination, ABI 1\.1\)" "$o"
expect_match "... shows its file on plugin_path" "^  $W/plugins/dirstore\.so$" "$o"
expect_match "... shows root as a required string" "^  root +string +required" "$o"
expect_match "... with its help" "existing directory that holds the objects" "$o"
expect_match "... shows fail_after_bytes as a size defaulting to 0" "^  fail_after_bytes +size +default=0" "$o"
expect_match "... with its help" "every upload fails once it has written this many bytes" "$o"

# ---- backup, list, verify, restore through dirstore -----------------------------------

expect_exit "backup to dirstore" 0 "$IARCA" -c "$C" backup solo
id=$(tail -n 1 <<<"$OUT")
expect_match "... prints the new id" "^[0-9]{8}T[0-9.]+Z-[0-9a-f]+$" "$id"
objs=$(cd "$W/ds" && ls -A | tr '\n' ' ')
[ "$objs" = "solo.$id.arca solo.$id.manifest.json " ] && pass "dirstore root holds exactly the archive and its manifest" \
    || fail "dirstore root holds exactly the archive and its manifest" "ls -A: $objs"
n=$(tar -tf "$W/ds/solo.$id.arca" | grep -c '^files/big\.bin')
[ "$n" -ge 3 ] && pass "the 3 MiB file is stored as several 1 MiB chunks" || fail "the 3 MiB file is stored as several 1 MiB chunks" "$n members"

expect_exit "list solo" 0 "$IARCA" -c "$C" list solo
expect_match "... shows the backup at dirstore" "^$id .*\(files\).* ds$" "$OUT"
expect_exit "verify solo ID exits 0" 0 "$IARCA" -c "$C" verify solo "$id"
expect_match "... having read the archive from dirstore" "verify ok: destination 'ds' \(dirstore\): solo\.$id\.arca" "$OUT"
expect_exit "restore solo latest --into an empty dir" 0 "$IARCA" -c "$C" restore solo latest --into back
check "... is byte-identical (diff -r)" diff -r "$W/src" "$W/restored"

# a corrupted object at dirstore must be caught on the way back
cp "$W/ds/solo.$id.arca" "$W/saved.arca"
sz=$(stat -c %s "$W/ds/solo.$id.arca")
printf 'X' | dd of="$W/ds/solo.$id.arca" bs=1 seek=$((sz / 2)) conv=notrunc status=none
expect_exit "verify of a corrupted archive at dirstore exits 3" 3 "$IARCA" -c "$C" verify solo "$id"
truncate -s $((sz - 4096)) "$W/ds/solo.$id.arca"
expect_exit "verify of a truncated archive at dirstore exits 3" 3 "$IARCA" -c "$C" verify solo "$id"
cp "$W/saved.arca" "$W/ds/solo.$id.arca"

# ---- the same plugin named by absolute path, no plugin_path ---------------------------

CA=$W/abs.ini
cat > "$CA" <<EOF
[arca]
chunk_size = 1M
[source src]
plugin = files
path = $W/src
[destination dsabs]
plugin = $VD/dirstore.so
root = $W/dsabs
[pipeline p]
source = src
destination = dsabs
EOF
expect_exit "config check accepts plugin = /abs/path/dirstore.so" 0 "$IARCA" -c "$CA" config check
expect_exit "arca plugins /abs/path/dirstore.so" 0 "$IARCA" -c "$CA" plugins "$VD/dirstore.so"
expect_match "... describes it" "^dirstore 1\.1\.0 \(destination, ABI 1\.1\)" "$OUT"
expect_exit "backup to dirstore loaded by path" 0 "$IARCA" -c "$CA" backup p
aid=$(tail -n 1 <<<"$OUT")
expect_exit "list by path" 0 "$IARCA" -c "$CA" list p
expect_match "... shows it" "^$aid .* dsabs$" "$OUT"
expect_exit "verify by path" 0 "$IARCA" -c "$CA" verify p latest

# ---- fan-out: dirstore + the installed nfs ------------------------------------------------

expect_exit "backup fans out to dirstore and nfs" 0 "$IARCA" -c "$C" backup fan
fid=$(tail -n 1 <<<"$OUT")
expect_exit "list fan" 0 "$IARCA" -c "$C" list fan
expect_match "... dirstore lists the id" "^$fid .* ds2$" "$OUT"
expect_match "... nfs lists the same id" "^$fid .* nfsd$" "$OUT"
check "... both hold byte-identical archives" cmp "$W/ds2/fan.$fid.arca" "$W/nfs/fan.$fid.arca"
expect_exit "verify fan checks both destinations" 0 "$IARCA" -c "$C" verify fan "$fid"
expect_match "... dirstore verified" "verify ok: destination 'ds2' \(dirstore\)" "$OUT"
expect_match "... nfs verified" "verify ok: destination 'nfsd' \(nfs\)" "$OUT"

# ---- failure: nothing anywhere, temporaries included ----------------------------------------

for pl in failing failing2; do
    [ $pl = failing ] && dd=dsfail nd=nfsfail || dd=dsfail2 nd=nfsfail2
    expect_exit "$pl: backup through a failing dirstore exits 1" 1 "$IARCA" -c "$C" backup $pl
    expect_match "$pl: ... the error names dirstore's temporary and the reason" \
        "destination '$dd' \(dirstore\): cannot write '$W/$dd/\.dirstore-tmp\.[^']*': Input/output error \(fail_after_bytes" "$OUT"
    l=$(ls -A "$W/$dd"); [ -z "$l" ] && pass "$pl: ... dirstore holds no file at all" || fail "$pl: ... dirstore holds no file at all" "$l"
    l=$(ls -A "$W/$nd"); [ -z "$l" ] && pass "$pl: ... nfs holds no file at all" || fail "$pl: ... nfs holds no file at all" "$l"
    l=$("$IARCA" -q -c "$C" list $pl 2>/dev/null); rc=$?
    [ $rc = 0 ] && [ -z "$l" ] && pass "$pl: ... list shows no backup" || fail "$pl: ... list shows no backup" "exit $rc: $l"
done

# ---- plugins the loader must refuse -------------------------------------------------------

refuse() { # NAME PLUGIN-VALUE
    cat > "$W/$1.ini" <<EOF
[destination d]
plugin = $2
root = $W/ds
EOF
}
refuse wrong "$VD/wrong_abi.so"
expect_exit "a plugin of ABI major 99: config check exits 2" 2 "$IARCA" -c "$W/wrong.ini" config check
expect_match "... naming the .so" "$VD/wrong_abi\.so" "$OUT"
expect_match "... and its ABI 99.x" "ABI 99\.3" "$OUT"
expect_match "... and this arca's ABI 1.1" "this arca speaks ABI 1\.1" "$OUT"

refuse nosym "$VD/no_symbol.so"
expect_exit "a .so without the entry symbol: config check exits 2" 2 "$IARCA" -c "$W/nosym.ini" config check
expect_match "... naming the .so and arca_plugin_entry" "$VD/no_symbol\.so: .*arca_plugin_entry" "$OUT"

cat > "$W/missing.ini" <<EOF
[arca]
plugin_path = $W/plugins
[destination d]
plugin = nosuchvendor
EOF
expect_exit "an unknown plugin name: config check exits 2" 2 "$IARCA" -c "$W/missing.ini" config check
expect_match "... naming the plugin" "plugin 'nosuchvendor' not found" "$OUT"
expect_match "... and every searched directory" "in $W/plugins:$PREFIX_DIR/lib/arca/plugins\)" "$OUT"
