#!/usr/bin/env bash
# Fuzz smoke: the libFuzzer harnesses for the archive reader, the manifest parser
# and the config loader (tests/fuzz/, `make fuzz` runs them longer) are built
# with ASan+UBSan and run FUZZ_SMOKE_SECONDS each (default 10) from their seeds;
# every saved regression input is replayed. Any crash fails.
SUITE=fuzz
. "$(dirname "$0")/../lib.sh"
need clang-14
if ! make -s -C "$ROOT" fuzz-build > "$T_TMP/build.log" 2>&1; then
    fail "fuzz harnesses build" "$(tail -5 "$T_TMP/build.log")"; exit 0
fi
pass "fuzz harnesses build with ASan+UBSan"
"$ROOT/tests/fuzz/run" "$ROOT/build-fuzz/fuzz" "${FUZZ_SMOKE_SECONDS:-10}" > "$T_TMP/run.log" 2>&1
while IFS= read -r line; do
    case $line in
        *", ok") pass "$line" ;;
        *) fail "${line%%:*}" "$line" ;;
    esac
done < "$T_TMP/run.log"
[ "$(grep -c ', ok$' "$T_TMP/run.log")" = 3 ] && pass "all three harnesses ran" || fail "all three harnesses ran" "$(cat "$T_TMP/run.log")"
