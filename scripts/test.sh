#!/usr/bin/env bash
# test.sh: everything CI checks, in order, counting suites:
#   setup     scripts/setup.sh (packages + Release-with-debug-info build in build/)
#   format    clang-format --dry-run over *.c/*.h of the module folders; no raw LMDB write in meta/
#             outside md_mirror.c (the metadata copies would diverge)
#   unit      ctest in build/ (three tests per core at once: CTEST_JOBS)
#   release   the Release configuration (-O3) built in build-release/ (build only, no tests)
#   asan      AddressSanitizer+UBSan build in build-asan/ and its ctest
#   fuzz      libFuzzer targets (clang, build-fuzz/) via scripts/fuzz.sh, each run briefly over
#             its seed corpus (tests/fuzz/corpus/, not written to) with a fixed seed, as many at
#             once as there are cores (each fuzzer is single-threaded)
#   integ     tests/integration/run.sh (real clients and fault tests against build/bin/cairn)
#   asan-integ the same against the sanitizer build's server (build-asan/bin/cairn)
# Prints each suite's time and "N passed, N failed" (suites) last and exits non-zero if any suite
# failed. A suite whose prerequisite failed (e.g. unit tests after a failed build) is counted as
# failed, not skipped.
# Every build here has -DCAIRN_WERROR=ON (warnings are errors in CI; a plain cmake build leaves it
# off). SKIP_RELEASE=1, SKIP_ASAN=1, SKIP_FUZZ=1 or SKIP_INTEG=1 leave a suite out (for local
# iteration; CI runs everything). FUZZ_SECONDS sets how long each fuzz target runs (default 8),
# FUZZ_JOBS how many run at once (default: the core count).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
JOBS=$(nproc)
# ctest runs three tests per core: most of the unit tests' time is spent waiting (etcd, timers,
# quorum timeouts on fake nodes), not computing. Measured on 2 cores: the release tests took 75 s
# at -j 2 and 29 s at -j 6 for 30 s of CPU; the sanitizer tests 96 s and 40 s for 70 s of CPU.
# CTEST_JOBS overrides.
CTEST_JOBS=${CTEST_JOBS:-$((JOBS * 3))}
passed=0 failed=0 failed_names=()

elapsed() { echo "$(($(date +%s) - $1))s"; }
# A suite's time runs from its banner to its result; the summary lists every suite's.
banner() {
    printf '\n==== %s ====\n' "$*"
    suite_t0=$(date +%s)
}
times=()
result() { # result NAME STATUS
    local took
    took=$(elapsed "$suite_t0")
    times+=("$1 $took")
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1))
        echo "SUITE PASS: $1 ($took)"
    else
        failed=$((failed + 1))
        failed_names+=("$1")
        echo "SUITE FAIL: $1 ($took)"
    fi
}

t0=$(date +%s)
banner "setup"
bash scripts/setup.sh
setup_rc=$?
result setup "$setup_rc"

banner "format (clang-format)"
mapfile -t srcs < <(find common net erasure blobstore meta placement obj repl coord node gateway cmd tests \
    -name '*.c' -o -name '*.h' 2>/dev/null | grep -v node_modules | sort)
bad=()
for f in "${srcs[@]}"; do
    clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
# Every metadata write must reach the store's copies (meta/md_mirror.c): a raw LMDB write in meta/
# would land in the primary only and the copies would silently diverge.
raw=$(grep -nE '\bmdb_(put|del|cursor_put|cursor_del)\(' meta/*.c | grep -v '^meta/md_mirror.c:' | grep -v '^[^:]*:[0-9]*: *[/*]')
if [ -n "$raw" ]; then
    echo "raw LMDB writes outside meta/md_mirror.c (use md_db_put/md_db_del/md_db_cursor_del):"
    echo "$raw"
    bad+=(meta/)
fi
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
    ctest --test-dir build --output-on-failure -j "$CTEST_JOBS"
    result unit $?
else
    echo "build failed in setup: unit tests not run"
    result unit 1
fi

if [ "${SKIP_RELEASE:-0}" != 1 ]; then
    # What a user's `cmake -DCMAKE_BUILD_TYPE=Release` builds: -O3 finds warnings (maybe-
    # uninitialized) that the -O2 build does not, so CI keeps that configuration warning-free.
    banner "Release build (build-release/)"
    s=$(date +%s)
    mkdir -p build-release
    rlog=build-release/test-build.log
    if cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DCAIRN_WERROR=ON >"$rlog" 2>&1 &&
        cmake --build build-release -j "$JOBS" >>"$rlog" 2>&1; then
        echo "Release build done in $(elapsed "$s")"
        result release 0
    else
        grep -E -A3 'error' "$rlog" | head -40
        echo "Release build failed (log: $rlog)"
        result release 1
    fi
fi

if [ "${SKIP_ASAN:-0}" != 1 ]; then
    banner "AddressSanitizer + UBSan (build-asan/)"
    s=$(date +%s)
    mkdir -p build-asan
    alog=build-asan/test-build.log
    if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON -DCAIRN_WERROR=ON \
        >"$alog" 2>&1 &&
        cmake --build build-asan -j "$JOBS" >>"$alog" 2>&1; then
        echo "sanitizer build done in $(elapsed "$s")"
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --test-dir build-asan --output-on-failure -j "$CTEST_JOBS"
        result asan $?
    else
        grep -E -A3 'error' "$alog" | head -40
        echo "sanitizer build failed (log: $alog)"
        result asan 1
    fi
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
    # A fresh output dir each time: the seed corpora are only read, new inputs land in
    # build-fuzz/ci/<target>/corpus, findings in build-fuzz/ci/<target>/findings.
    banner "fuzz targets (build-fuzz/, scripts/fuzz.sh)"
    rm -rf build-fuzz/ci
    FUZZ_OUT=build-fuzz/ci FUZZ_JOBS=${FUZZ_JOBS:-$JOBS} bash scripts/fuzz.sh "${FUZZ_SECONDS:-8}"
    result fuzz $?
fi

# Two tests at a time (one whole-cluster test at most, two only of the "pairable" ones:
# tests/integration/run.sh): the suite's time is mostly cluster tests waiting on timers, which
# leaves a core for single-node tests.
INTEG_JOBS=${INTEG_JOBS:-2}
if [ "${SKIP_INTEG:-0}" != 1 ]; then
    banner "integration and fault tests"
    s=$(date +%s)
    CAIRN_BIN=$ROOT/build/bin/cairn INTEG_JOBS=$INTEG_JOBS bash tests/integration/run.sh
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
                CAIRN_BIN=$ROOT/build-asan/bin/cairn INTEG_JOBS=$INTEG_JOBS bash tests/integration/run.sh
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
echo "time per suite: $(printf '%s, ' "${times[@]}" | sed 's/, $//')"
[ "$failed" -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
