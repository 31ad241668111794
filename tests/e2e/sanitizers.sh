# The core suite (tests/e2e/core.sh) again against an ASan+UBSan build of arca and the
# files/nfs plugins: any sanitizer report or failed check fails this test.
. "$(dirname "$0")/../lib.sh"

SB=$T_TMP/build
if ! make -s -C "$ROOT" BUILD="$SB" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" \
        "$SB/arca" "$SB/plugins/files.so" "$SB/plugins/nfs.so" > "$T_TMP/make.log" 2>&1; then
    fail "ASan+UBSan build" "$(tail -5 "$T_TMP/make.log")"; exit 0
fi
pass "ASan+UBSan build"
export ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
rc=0
BUILD=$SB ARCA=$SB/arca ARCA_PLUGIN_PATH=$SB/plugins ARCA_TEST_RESULTS=$T_TMP/results SUITE=core-asan \
    bash "$ROOT/tests/e2e/core.sh" > "$T_TMP/out" 2>&1 || rc=$?
n_ok=$(grep -c '^pass ' "$T_TMP/results" || true); n_bad=$(grep -c '^fail ' "$T_TMP/results" || true)
reports=$(grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T_TMP/out" | head -5)
[ "$rc" = 0 ] && [ "$n_bad" = 0 ] && [ "$n_ok" -gt 50 ] && pass "core suite passes under ASan+UBSan ($n_ok checks)" \
    || fail "core suite under ASan+UBSan" "rc=$rc failed=$n_bad: $(grep '^not ok' "$T_TMP/out" | head -3)"
[ -z "$reports" ] && pass "no sanitizer reports in the core suite" || fail "sanitizer reports" "$reports"
