#!/usr/bin/env bash
# fuzz.sh [SECONDS]: build the libFuzzer targets (clang, ASan+UBSan, build-fuzz/) and run every
# target for SECONDS (default 1800) over its seed corpus, then print one summary line per target.
#
# Each target starts from tests/fuzz/corpus/<target>/ (read only: passed as a second corpus dir)
# and writes what it discovers to $FUZZ_OUT/<target>/corpus; crashes, leaks, timeouts and
# out-of-memory inputs go to $FUZZ_OUT/<target>/findings/, the full log to $FUZZ_OUT/<target>/log.
# The run is reproducible: libFuzzer's seed is fixed (FUZZ_SEED, printed). UBSan reports abort
# (-fno-sanitize-recover), so undefined behaviour counts as a finding.
#
# Environment:
#   FUZZ_OUT      output directory (default build-fuzz/runs)
#   FUZZ_TARGETS  space-separated subset, e.g. "fuzz_http fuzz_xml" (default: every target)
#   FUZZ_JOBS     targets run at once (default 1; each is single-threaded)
#   FUZZ_SEED     libFuzzer -seed (default 1)
#   FUZZ_NICE     nice level of the fuzzers (default 0; 19 on a shared machine)
#   FUZZ_MAX_LEN  -max_len (default 4096)
# Summary columns: target, seconds run, executions, cov (code edges) and ft (features) from
# libFuzzer's last status line, corpus files (seeds + discovered), findings. Exits non-zero when
# the build failed or any target reported a finding. Used by scripts/test.sh with a few seconds
# per target and a fresh FUZZ_OUT.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

SECONDS_PER_TARGET=${1:-1800}
OUT=${FUZZ_OUT:-build-fuzz/runs}
JOBS=${FUZZ_JOBS:-1}
SEED=${FUZZ_SEED:-1}
NICE=${FUZZ_NICE:-0}
MAX_LEN=${FUZZ_MAX_LEN:-4096}

build() {
    local log=build-fuzz/fuzz-build.log
    local flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"
    mkdir -p build-fuzz
    CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DCAIRN_FUZZ=ON -DCAIRN_WERROR=ON \
        -DCMAKE_C_FLAGS="$flags" >"$log" 2>&1 &&
        cmake --build build-fuzz -j "$(nproc)" --target $(basename -s .c tests/fuzz/fuzz_*.c) \
            >>"$log" 2>&1 && return 0
    grep -E -A3 'error' "$log" | head -40
    echo "fuzz build failed (log: $log)"
    return 1
}

# run TARGET: one libFuzzer run; its exit status is the fuzzer's.
run() {
    local t=$1 dir=$OUT/$1 seeds=()
    mkdir -p "$dir/corpus" "$dir/findings"
    [ -d "tests/fuzz/corpus/$t" ] && seeds=("tests/fuzz/corpus/$t")
    nice -n "$NICE" "build-fuzz/bin/$t" -seed="$SEED" -max_len="$MAX_LEN" \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$dir/findings/" \
        "$dir/corpus" "${seeds[@]}" >"$dir/log" 2>&1
}

# summary TARGET STATUS: one line from the log.
summary() {
    local t=$1 dir=$OUT/$1 last runs secs seeds found
    last=$(grep -E '(DONE|pulse|NEW|REDUCE|INITED) +cov:' "$dir/log" | tail -1)
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/log" | grep -o '[0-9]*$')
    secs=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$dir/log" | grep -o 'in [0-9]*' |
        grep -o '[0-9]*')
    seeds=$(find "tests/fuzz/corpus/$t" -type f 2>/dev/null | wc -l)
    found=$(find "$dir/findings" -type f | wc -l)
    printf '%-14s %6ss %12s runs  cov %-5s ft %-6s corpus %4s+%-5s findings %s%s\n' "$t" \
        "${secs:-?}" "${runs:-?}" "$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")" \
        "$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")" "$seeds" \
        "$(find "$dir/corpus" -type f | wc -l)" "$found" \
        "$([ "$2" -eq 0 ] || echo " (FAILED: $dir/log)")"
}

build || exit 1
if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    mapfile -t targets < <(basename -s .c tests/fuzz/fuzz_*.c)
fi
echo "fuzzing ${#targets[@]} targets for ${SECONDS_PER_TARGET}s each, $JOBS at a time," \
    "seed $SEED, output in $OUT"

declare -A status=() pids=()
pending=("${targets[@]}")
while [ ${#pending[@]} -gt 0 ] || [ ${#pids[@]} -gt 0 ]; do
    while [ ${#pending[@]} -gt 0 ] && [ ${#pids[@]} -lt "$JOBS" ]; do
        run "${pending[0]}" &
        pids[${pending[0]}]=$!
        pending=("${pending[@]:1}")
    done
    for t in "${!pids[@]}"; do
        if ! kill -0 "${pids[$t]}" 2>/dev/null; then
            wait "${pids[$t]}"
            status[$t]=$?
            unset "pids[$t]"
        fi
    done
    [ ${#pids[@]} -eq 0 ] || sleep 1
done

rc=0
for t in "${targets[@]}"; do
    summary "$t" "${status[$t]}"
    if [ "${status[$t]}" -ne 0 ] || [ -n "$(ls -A "$OUT/$t/findings")" ]; then
        rc=1
        tail -30 "$OUT/$t/log" | grep -v '^"' >&2
    fi
done
exit "$rc"
