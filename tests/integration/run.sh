#!/usr/bin/env bash
# Runs every integration test (test_*.sh, one per client) and fault test (fault_*.sh), each in its
# own process group under a timeout, prints PASS/FAIL/SKIP per test and a final
# "N passed, N failed" line; exits non-zero if any test failed.
#   tests/integration/run.sh                 all tests
#   tests/integration/run.sh test_s3cmd ...  only these (names with or without .sh)
# A test exits 77 when its client is not installed: SKIP, except with CI=true where it is a FAIL
# (scripts/setup.sh installs every client). TEST_TIMEOUT overrides the per-test limit (seconds).
# CAIRN_TEST_ENDPOINTS="URL ..." runs the tests against running nodes (lib.sh "Cluster mode").
# Full output of failed tests is printed; logs stay in $LOG_DIR (default: a temp dir).
set -u
here=$(cd "$(dirname "$0")" && pwd)
LOG_DIR=${LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-it-logs.XXXXXX")}
mkdir -p "$LOG_DIR"

declare -A limit=([test_restic]=420 [test_rclone]=300 [fault_kill9]=300 [test_cluster_clients]=480)
if [ $# -gt 0 ]; then
    tests=("$@")
else
    tests=()
    for f in "$here"/test_*.sh "$here"/fault_*.sh; do
        tests+=("$(basename "$f")")
    done
fi

# With CAIRN_TEST_ENDPOINTS (lib.sh "Cluster mode") a test that needs a server of its own skips
# (h_own_server): not a missing client, so a SKIP under CI=true too.
own_server_skip() { [ -n "${CAIRN_TEST_ENDPOINTS:-}" ] && tail -n 1 "$1" | grep -q 'needs its own server'; }

passed=0 failed=0 skipped=0
for t in "${tests[@]}"; do
    name=${t%.sh}
    [ -f "$here/$name.sh" ] || { echo "FAIL $name (no such test)"; failed=$((failed + 1)); continue; }
    secs=${TEST_TIMEOUT:-${limit[$name]:-240}}
    log=$LOG_DIR/$name.log
    start=$(date +%s)
    # timeout runs the test in its own process group and signals that whole group on expiry;
    # killing the group afterwards removes anything a test left behind.
    timeout -k 10 "$secs" bash "$here/$name.sh" </dev/null >"$log" 2>&1 &
    tpid=$!
    wait "$tpid"
    rc=$?
    kill -KILL -- "-$tpid" 2>/dev/null
    took=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        echo "PASS $name (${took}s, $(grep -c '^ok - ' "$log") checks)"
        passed=$((passed + 1))
    elif [ "$rc" -eq 77 ] && { [ "${CI:-}" != true ] || own_server_skip "$log"; }; then
        echo "SKIP $name ($(tail -1 "$log"))"
        skipped=$((skipped + 1))
    else
        why="exit $rc"
        [ "$rc" -eq 124 ] && why="timed out after ${secs}s"
        [ "$rc" -eq 77 ] && why="client not installed (CI=true)"
        echo "FAIL $name ($why, ${took}s) -- output follows"
        sed 's/^/    /' "$log"
        failed=$((failed + 1))
    fi
done
echo "integration logs: $LOG_DIR"
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
