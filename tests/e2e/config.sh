# Config validation: every error is reported with file:line and the key, exit 2.
. "$(dirname "$0")/../lib.sh"

C=$T_TMP/bad.ini
cat > "$C" <<EOF2
[arca]
chunk_size = 12Q
wokers = 3

[source src]
plugin = files
pth = /tmp/x

[source s2]
plugin = nosuch

[destination d]
plugin = nfs
path = $T_TMP
fsync = maybe

[destination dup]
plugin = nfs
path = $T_TMP
path = $T_TMP

[pipeline p]
source = src
destination = d, nope
compression = lz4

[pipeline q]
destination = d

[pipeline r]
source = ghost
destination = d
[bogus x]
key outside = 1
[destination e]
plugin = files
path = $T_TMP
[destination f]
plugin = nfs
path = \${ARCA_TEST_UNSET_VAR}
EOF2
unset ARCA_TEST_UNSET_VAR
expect_exit "config check of a bad file exits 2" 2 "$ARCA" -c "$C" config check
o=$OUT
expect_match "bad size named with file:line and key" "bad.ini:2: \[arca\]: chunk_size = '12Q': not a size" "$o"
expect_match "unknown key in [arca] named with its line" "bad.ini:3: \[arca\]: unknown key 'wokers'" "$o"
expect_match "unknown plugin key named with its line and the known keys" "bad.ini:7: \[source src\]: unknown key 'pth' \(known keys: path" "$o"
expect_match "missing required key named with the section line" "bad.ini:5: \[source src\]: missing required key 'path'" "$o"
expect_match "missing plugin named with its line and search dirs" "bad.ini:10: \[source s2\]: plugin 'nosuch' not found \(looked for nosuch.so in " "$o"
expect_match "bad bool named" "bad.ini:15: \[destination d\]: fsync = 'maybe': not a boolean" "$o"
expect_match "duplicate key named with both lines" "bad.ini:20: \[destination dup\]: key 'path' given twice \(first at line 19\)" "$o"
expect_match "pipeline naming an unknown destination" "bad.ini:24: \[pipeline p\]: destination 'nope': no \[destination nope\] section" "$o"
expect_match "bad compression named" "bad.ini:25: \[pipeline p\]: compression = 'lz4'" "$o"
expect_match "pipeline without source" "bad.ini:27: \[pipeline q\]: missing required key 'source'" "$o"
expect_match "pipeline naming an unknown source" "bad.ini:31: \[pipeline r\]: source = 'ghost': no \[source ghost\] section" "$o"
expect_match "unknown section kind" "bad.ini:33: unknown section \[bogus x\]" "$o"
expect_match "a source plugin used as a destination" "bad.ini:36: \[destination e\]: plugin 'files' is a source plugin, not a destination" "$o"
expect_match "unset environment variable named" "bad.ini:40: \[destination f\]: path: environment variable 'ARCA_TEST_UNSET_VAR' is not set" "$o"
expect_match "the error count is reported" "bad.ini: 1[0-9] errors" "$o"
n=$(grep -c "unknown key 'pth'" <<<"$o")
[ "$n" = 1 ] && pass "each section's errors are reported once" || fail "errors once" "pth reported $n times"

G=$T_TMP/good.ini
mkdir -p "$T_TMP/d"
printf 's3cret\n' > "$T_TMP/secret"
export ARCA_TEST_DIR=$T_TMP/d
cat > "$G" <<'EOF2'
; a comment
[arca]
workers = 2
chunk_size = 2M
[source s]
plugin = files
path = ${ARCA_TEST_DIR}
[destination d]
plugin = nfs
path = ${ARCA_TEST_DIR}
[pipeline p]
source = s
destination = d
EOF2
expect_exit "a good config checks clean" 0 "$ARCA" -c "$G" config check
expect_match "config check says ok" "ok \(4 sections, 1 pipelines\)" "$OUT"
expect_exit "ARCA_CONFIG is used when -c is absent" 0 env ARCA_CONFIG="$G" "$ARCA" config check
(cd "$T_TMP" && cp "$G" arca.ini && env -u ARCA_CONFIG "$ARCA" config check >/dev/null 2>&1) && pass "./arca.ini is used when nothing else is given" || fail "./arca.ini lookup" ""
expect_exit "no config anywhere exits 2" 2 env -u ARCA_CONFIG bash -c "cd / && '$ARCA' config check"
expect_exit "a missing -c file exits 2 naming it" 2 "$ARCA" -c "$T_TMP/none.ini" config check
expect_match "missing file named" "none.ini: cannot read config file" "$OUT"

# ---- config and plugins only from places nobody else can write -------------------------
# (as OpenSSH's StrictModes: root or the invoking user owns them, nobody else may write)
U=$T_TMP/trust; mkdir -p "$U/plugins" "$U/shared"
cp "$G" "$U/arca.ini"
chmod 666 "$U/arca.ini"
expect_exit "a world-writable config file is refused" 2 "$ARCA" -c "$U/arca.ini" config check
expect_match "... naming it and the fix" "refusing config file $U/arca.ini: .*writable by everyone: fix with chmod o-w" "$OUT"
chmod 644 "$U/arca.ini"; chmod 777 "$U"
expect_exit "a config in a world-writable directory is refused" 2 "$ARCA" -c "$U/arca.ini" config check
expect_match "... naming the directory" "$U is writable by everyone" "$OUT"
chmod 755 "$U"
if id nobody >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    chown nobody "$U/arca.ini"
    expect_exit "a config owned by another user is refused" 2 "$ARCA" -c "$U/arca.ini" config check
    expect_match "... naming the owner" "owned by uid $(id -u nobody)" "$OUT"
    mkdir -p "$U/cwd"; cp "$G" "$U/cwd/arca.ini"; chown nobody "$U/cwd/arca.ini"
    out=$(cd "$U/cwd" && env -u ARCA_CONFIG "$ARCA" config check 2>&1); rc=$?
    [ "$rc" = 2 ] && pass "./arca.ini planted by another user is refused, not read" || fail "./arca.ini of another user refused" "rc=$rc $out"
    chown root "$U/arca.ini"
else
    skip "a config owned by another user is refused" "needs root and a 'nobody' user to own the file"
fi
# a plugin directory others can write to: its .so is never loaded
cp "$BUILD/plugins/files.so" "$U/plugins/files.so"
cp "$BUILD/plugins/nfs.so" "$U/plugins/nfs.so"
chmod 777 "$U/plugins"
sed "/^\\[arca\\]/a plugin_path = $U/plugins" "$G" > "$U/pp.ini"
expect_exit "plugin_path with a world-writable directory: config check fails" 2 env ARCA_PLUGIN_PATH= "$ARCA" -c "$U/pp.ini" config check
expect_match "... refusing to load from it, naming the fix" "refusing to load plugin from directory $U/plugins: .*chmod o-w" "$OUT"
expect_exit "arca plugins with such a directory on ARCA_PLUGIN_PATH" 0 env ARCA_PLUGIN_PATH="$U/plugins" "$ARCA" plugins
expect_match "... warns and skips it" "skipping plugin directory $U/plugins" "$OUT"
chmod 755 "$U/plugins"; chmod 666 "$U/plugins/files.so"
expect_exit "a world-writable plugin file is refused" 2 env ARCA_PLUGIN_PATH= "$ARCA" -c "$U/pp.ini" config check
expect_match "... naming it" "$U/plugins/files.so: refusing to load plugin: .*writable by everyone" "$OUT"
chmod 644 "$U/plugins/files.so"
expect_exit "the same directory, owned and safe, is used" 0 env ARCA_PLUGIN_PATH= "$ARCA" -c "$U/pp.ini" config check
