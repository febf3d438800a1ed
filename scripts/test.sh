#!/usr/bin/env bash
# test.sh: everything CI checks, in order, counting suites:
#   setup     scripts/setup.sh (packages + Release-with-debug-info build in build/)
#   format    clang-format --dry-run over *.c/*.h of the module folders
#   unit      ctest in build/
#   asan      AddressSanitizer+UBSan build in build-asan/ and its ctest
#   fuzz      libFuzzer targets (clang, build-fuzz/), each run briefly with a fixed seed
#   integ     tests/integration/run.sh (real clients and fault tests against build/bin/cairn)
#   asan-integ the same against the sanitizer build's server (build-asan/bin/cairn)
# Prints "N passed, N failed" (suites) last and exits non-zero if any suite failed. A suite whose
# prerequisite failed (e.g. unit tests after a failed build) is counted as failed, not skipped.
# SKIP_ASAN=1, SKIP_FUZZ=1 or SKIP_INTEG=1 leave a suite out (for local iteration; CI runs
# everything). FUZZ_SECONDS sets how long each fuzz target runs (default 8).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
JOBS=$(nproc)
passed=0 failed=0 failed_names=()

banner() { printf '\n==== %s ====\n' "$*"; }
result() { # result NAME STATUS
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "SUITE PASS: $1"
    else
        failed=$((failed + 1))
        failed_names+=("$1")
        echo "SUITE FAIL: $1"
    fi
}
elapsed() { echo "$(($(date +%s) - $1))s"; }

t0=$(date +%s)
banner "setup"
bash scripts/setup.sh
setup_rc=$?
result setup "$setup_rc"

banner "format (clang-format)"
mapfile -t srcs < <(find common net erasure blobstore meta placement obj coord node gateway cmd tests \
    -name '*.c' -o -name '*.h' 2>/dev/null | grep -v node_modules | sort)
bad=()
for f in "${srcs[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -eq 0 ]; then
    echo "${#srcs[@]} files formatted"
    result format 0
else
    echo "not clang-format clean (run clang-format -i on them):"
    printf '  %s\n' "${bad[@]}"
    result format 1
fi

banner "unit tests (build/)"
if [ "$setup_rc" -eq 0 ]; then
    ctest --test-dir build --output-on-failure -j "$JOBS"
    result unit $?
else
    echo "build failed in setup: unit tests not run"
    result unit 1
fi

if [ "${SKIP_ASAN:-0}" != 1 ]; then
    banner "AddressSanitizer + UBSan (build-asan/)"
    s=$(date +%s)
    mkdir -p build-asan
    alog=build-asan/test-build.log
    if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON >"$alog" 2>&1 &&
        cmake --build build-asan -j "$JOBS" >>"$alog" 2>&1; then
        echo "sanitizer build done in $(elapsed "$s")"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --test-dir build-asan --output-on-failure -j "$JOBS"
        result asan $?
    else
        grep -E -A3 'error' "$alog" | head -40
        echo "sanitizer build failed (log: $alog)"
        result asan 1
    fi
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    banner "fuzz targets (build-fuzz/)"
    s=$(date +%s)
    mkdir -p build-fuzz
    flog=build-fuzz/test-build.log
    if CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCAIRN_FUZZ=ON \
        -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >"$flog" 2>&1 &&
        cmake --build build-fuzz -j "$JOBS" --target $(basename -s .c tests/fuzz/fuzz_*.c) \
            >>"$flog" 2>&1; then
        echo "fuzz build done in $(elapsed "$s")"
        frc=0
        for f in build-fuzz/bin/fuzz_*; do
            out=build-fuzz/$(basename "$f").log
            if "$f" -seed=1 -max_len=4096 -max_total_time="${FUZZ_SECONDS:-8}" >"$out" 2>&1; then
                echo "$(basename "$f"): $(grep -o 'Done [0-9]* runs' "$out" | tail -1), no findings"
            else
                echo "$(basename "$f"): FAILED (log: $out)"
                tail -30 "$out"
                frc=1
            fi
        done
        result fuzz "$frc"
    else
        grep -E -A3 'error' "$flog" | head -40
        echo "fuzz build failed (log: $flog)"
        result fuzz 1
    fi
fi

if [ "${SKIP_INTEG:-0}" != 1 ]; then
    banner "integration and fault tests"
    s=$(date +%s)
    CAIRN_BIN=$ROOT/build/bin/cairn bash tests/integration/run.sh
    rc=$?
    echo "integration tests took $(elapsed "$s")"
    result integration "$rc"
    if [ "${SKIP_ASAN:-0}" != 1 ]; then
        # The same tests against the sanitizer build of the server: a memory error aborts it, and a
        # leak fails its exit-0-on-SIGTERM check.
        banner "integration and fault tests, AddressSanitizer+UBSan server (build-asan/)"
        s=$(date +%s)
        if [ -x build-asan/bin/cairn ]; then
            ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
                CAIRN_BIN=$ROOT/build-asan/bin/cairn bash tests/integration/run.sh
            rc=$?
        else
            echo "build-asan/bin/cairn missing (sanitizer build failed)"
            rc=1
        fi
        echo "sanitizer integration tests took $(elapsed "$s")"
        result asan-integration "$rc"
    fi
fi

banner "summary ($(elapsed "$t0"))"
[ "$failed" -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
