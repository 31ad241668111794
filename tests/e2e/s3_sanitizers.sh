#!/usr/bin/env bash
# The s3 suites (tests/e2e/s3.sh, s3_faults.sh) again against an ASan+UBSan build
# of arca and the files and s3 plugins: the upload threads, retries, aborts and
# ranged reads under the sanitizers. Any report or failed check fails this test.
SUITE=s3_sanitizers
. "$(dirname "$0")/../lib.sh"

SB=$T_TMP/build
if ! make -s -C "$ROOT" BUILD="$SB" SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" \
        "$SB/arca" "$SB/plugins/files.so" "$SB/plugins/s3.so" > "$T_TMP/make.log" 2>&1; then
    fail "ASan+UBSan build" "$(tail -5 "$T_TMP/make.log")"; exit 0
fi
pass "ASan+UBSan build of arca, files.so and s3.so"
export ASAN_OPTIONS=detect_leaks=1:exitcode=86 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for suite in s3 s3_faults; do
    rc=0
    : > "$T_TMP/results.$suite"
    BUILD=$SB ARCA=$SB/arca ARCA_PLUGIN_PATH=$SB/plugins ARCA_TEST_RESULTS=$T_TMP/results.$suite SUITE=$suite-asan \
        bash "$ROOT/tests/e2e/$suite.sh" > "$T_TMP/out.$suite" 2>&1 || rc=$?
    n_ok=$(grep -c '^pass ' "$T_TMP/results.$suite" || true); n_bad=$(grep -c '^fail ' "$T_TMP/results.$suite" || true)
    [ "$rc" = 0 ] && [ "$n_bad" = 0 ] && [ "$n_ok" -gt 20 ] && pass "$suite passes under ASan+UBSan ($n_ok checks)" ||
        fail "$suite under ASan+UBSan" "rc=$rc failed=$n_bad: $(grep '^not ok' "$T_TMP/out.$suite" | head -3)"
    reports=$(grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T_TMP/out.$suite" | head -5)
    [ -z "$reports" ] && pass "no sanitizer reports in $suite" || fail "sanitizer reports in $suite" "$reports"
done
