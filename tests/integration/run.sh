#!/usr/bin/env bash
# Runs every integration test (test_*.sh, one per client) and fault test (fault_*.sh), each in its
# own process group under a timeout, prints PASS/FAIL/SKIP per test and a final
# "N passed, N failed" line; exits non-zero if any test failed.
#   tests/integration/run.sh                 all tests
#   tests/integration/run.sh test_s3cmd ...  only these (names with or without .sh)
# A test exits 77 when its client is not installed: SKIP, except with CI=true where it is a FAIL
# (scripts/setup.sh installs every client). TEST_TIMEOUT overrides the per-test limit (seconds).
# INTEG_JOBS=N runs up to N tests at once (default 1; scripts/test.sh uses 2), at most
# INTEG_HEAVY_JOBS (default 2) of them whole-cluster tests, two only when both are "pairable"
# (below); results print as tests end.
# CAIRN_TEST_ENDPOINTS="URL ..." runs the tests against running nodes (lib.sh "Cluster mode").
# Full output of failed tests is printed; logs stay in $LOG_DIR (default: a temp dir).
set -u
here=$(cd "$(dirname "$0")" && pwd)
LOG_DIR=${LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-it-logs.XXXXXX")}
mkdir -p "$LOG_DIR"
export LOG_DIR # tests keep artefacts under it ($LOG_DIR/<test>/: test_website_browser's screenshots)

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

# Tests that start a whole local cluster (3 etcd members, 6 nodes) are "heavy". One that kills
# nodes under load, races calls, waits on grace periods and ticks or measures runs as the only
# heavy test, so its timing margins hold on a 2-core machine; single-node tests fill the other
# INTEG_JOBS - 1 lanes (default 1: one test at a time). A "pairable" one checks behaviour through
# the nodes with no such margin: two of them may run at once (INTEG_HEAVY_JOBS, default 2; 1
# never pairs). The heavy tests were the critical path (one at a time, about 560 s of a 576 s
# run in CI, the single-node ones 330 s beside them); pairing these 10 (about 140 s) cuts it by
# about 60 s per run. Not test_cluster_versioning: it reads a setting through one node right after
# setting it through another (the etcd watch's tens of ms), which failed once paired on a loaded
# machine. Heavy tests start first, the pairable ones before the others, so the long
# ones do not end up alone at the end.
# A "solo" test measures latency (fault_slow_drive's and fault_slow_read's p99 bounds) and runs
# with nothing beside it.
heavy() { [[ $1 == *cluster* ]]; }
pairable() {
    case $1 in
    test_cluster_buckets | test_cluster_clients | test_cluster_compression | test_cluster_lifecycle | \
        test_cluster_lock | test_cluster_sse | test_cluster_tls | test_cluster_users | \
        test_cluster_website | test_local_cluster) return 0 ;;
    esac
    return 1
}
solo() { [[ $1 == fault_slow_drive || $1 == fault_slow_read ]]; }
jobs_max=${INTEG_JOBS:-1}
heavy_max=${INTEG_HEAVY_JOBS:-2}
pending=()
for t in "${tests[@]}"; do heavy "${t%.sh}" && pairable "${t%.sh}" && pending+=("${t%.sh}"); done
for t in "${tests[@]}"; do heavy "${t%.sh}" && ! pairable "${t%.sh}" && pending+=("${t%.sh}"); done
for t in "${tests[@]}"; do heavy "${t%.sh}" || pending+=("${t%.sh}"); done

passed=0 failed=0 skipped=0
declare -A running=() started=() # pid -> name, name -> start time
nheavy=0 npaired=0 solo_running=0

start_test() { # start_test NAME: runs it in the background, in its own process group
    local name=$1 secs
    secs=${TEST_TIMEOUT:-${limit[$name]:-240}}
    started[$name]=$(date +%s)
    # timeout runs the test in its own process group and signals that whole group on expiry;
    # killing the group afterwards (report) removes anything a test left behind.
    timeout -k 10 "$secs" bash "$here/$name.sh" </dev/null >"$LOG_DIR/$name.log" 2>&1 &
    running[$!]=$name
    heavy "$name" && nheavy=$((nheavy + 1))
    heavy "$name" && pairable "$name" && npaired=$((npaired + 1))
    solo "$name" && solo_running=1
}

report() { # report PID RC
    local name=${running[$1]} rc=$2 took log why secs
    unset "running[$1]"
    kill -KILL -- "-$1" 2>/dev/null
    heavy "$name" && nheavy=$((nheavy - 1))
    heavy "$name" && pairable "$name" && npaired=$((npaired - 1))
    solo "$name" && solo_running=0
    log=$LOG_DIR/$name.log
    took=$(($(date +%s) - started[$name]))
    secs=${TEST_TIMEOUT:-${limit[$name]:-240}}
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
}

while [ ${#pending[@]} -gt 0 ] || [ ${#running[@]} -gt 0 ]; do
    # Start what fits: the first pending test the lane limits allow (a solo test waits for an
    # empty machine, and while it runs nothing else starts).
    while [ ${#running[@]} -lt "$jobs_max" ] && [ "$solo_running" -eq 0 ]; do
        pick=-1
        for i in "${!pending[@]}"; do
            if solo "${pending[$i]}"; then
                [ ${#running[@]} -eq 0 ] || continue
            elif heavy "${pending[$i]}" && { [ "$nheavy" -ge "$heavy_max" ] ||
                { [ "$nheavy" -gt 0 ] && ! { pairable "${pending[$i]}" && [ "$npaired" -eq "$nheavy" ]; }; }; }; then
                continue # a second heavy test only when it and the one running are pairable
            fi
            pick=$i
            break
        done
        [ "$pick" -ge 0 ] || break
        name=${pending[$pick]}
        unset "pending[$pick]"
        pending=("${pending[@]}")
        if [ -f "$here/$name.sh" ]; then
            start_test "$name"
        else
            echo "FAIL $name (no such test)"
            failed=$((failed + 1))
        fi
    done
    [ ${#running[@]} -gt 0 ] || continue
    wait -n -p done_pid
    rc=$?
    report "$done_pid" "$rc"
done
echo "integration logs: $LOG_DIR"
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
