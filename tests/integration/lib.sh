# shellcheck shell=bash
# Integration-test harness, sourced by every tests/integration/test_*.sh and fault_*.sh.
#
# What it does: makes a private temp dir, starts `build/bin/cairn server` on a free 127.0.0.1 port
# with a fresh data dir and fixed test credentials, waits for GET /health/ready, and gives the test
# small check helpers that print one `ok -` / `FAIL -` line per step. h_finish stops the server with
# SIGTERM (its exit status must be 0), prints `PASS <test>` or `FAIL <test>` and exits 0/1.
# Invariant: no process started here outlives the test. The EXIT trap kills the server (and any
# background helper registered with h_track; that very process, never one that got its pid
# after it exited: h_kill_tracked) and removes the temp dir; run.sh additionally runs
# every test in its own process group and kills that group when the test ends.
# Exit status 77 means "client not installed" (run.sh reports SKIP, or FAIL when CI=true).
# Environment knobs: CAIRN_BIN (server binary), KEEP=1 (keep the temp dir), READY_TIMEOUT (s).
# Test knobs, set after sourcing: H_SERVER_ARGS (array: more `cairn server` arguments, e.g.
# --config FILE), H_ULIMIT (arguments for `ulimit` in the server's subshell, e.g. "-n 256") and
# H_CA (a CA file: the server speaks HTTPS, H_ENDPOINT is https:// and readiness is checked with
# that CA; test_tls.sh).
#
# Cluster mode: CAIRN_TEST_ENDPOINTS="URL URL ..." (spaces or commas) runs the test against nodes
# that already run (tests/integration/test_cluster_clients.sh gives it the local cluster's nodes)
# instead of a server of its own. Then h_start starts nothing and waits for the first endpoint,
# the test's node (H_ENDPOINT, H_PORT), to answer /health/ready; h_stop and h_finish stop nothing;
# the credentials are CAIRN_ACCESS_KEY/CAIRN_SECRET_KEY from the environment (required); bucket
# names get a prefix unique to the run (`h_bucket NAME`; CAIRN_TEST_BUCKET_PREFIX for the Python
# and JS suites, given or made here) so that tests sharing a cluster never meet; `h_endpoint`
# names the endpoint for the next client step: the test's node, or with CAIRN_TEST_ALTERNATE=1 the
# next node of the list in turn (recorded in H_WORK/steps.log, printed when a check failed). A test
# that needs a server of its own (its data dir, log, restarts, options) calls `h_own_server
# REASON` first: exit 77 with the reason in cluster mode, nothing otherwise. Without the variable
# nothing of this changes what a test does (h_bucket NAME is NAME, h_endpoint is H_ENDPOINT).

set -uo pipefail

H_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export H_DIR=$H_ROOT/tests/integration
CAIRN_BIN=${CAIRN_BIN:-$H_ROOT/build/bin/cairn}
H_NAME=$(basename "$0")
H_NAME=${H_NAME%.*}
H_PY=/usr/bin/python3
[ -x "$H_PY" ] || H_PY=python3

H_ENDPOINTS=()
if [ -n "${CAIRN_TEST_ENDPOINTS:-}" ]; then
    read -r -a H_ENDPOINTS <<<"${CAIRN_TEST_ENDPOINTS//,/ }"
    H_ENDPOINTS=("${H_ENDPOINTS[@]%/}")
fi
H_CLUSTER=0
[ ${#H_ENDPOINTS[@]} -eq 0 ] || H_CLUSTER=1
if [ "$H_CLUSTER" = 1 ]; then
    if [ -z "${CAIRN_ACCESS_KEY:-}" ] || [ -z "${CAIRN_SECRET_KEY:-}" ]; then
        echo "FAIL - CAIRN_TEST_ENDPOINTS needs the cluster's CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY"
        echo "FAIL $H_NAME"
        exit 1
    fi
    H_RUN_ID=$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')
    export CAIRN_TEST_BUCKET_PREFIX=${CAIRN_TEST_BUCKET_PREFIX:-t$H_RUN_ID-}
else
    export CAIRN_ACCESS_KEY=CAIRNTESTACCESSKEY01
    export CAIRN_SECRET_KEY=cairn-test-secret-key-0123456789abcdefXYZ
    export CAIRN_TEST_BUCKET_PREFIX=""
fi
export AWS_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
# plain HTTP to 127.0.0.1: a CA bundle from the environment only breaks clients (rclone refuses it)
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_CA_BUNDLE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""

H_WORK=$(mktemp -d "${TMPDIR:-/tmp}/cairn-it-$H_NAME.XXXXXX")
export H_REAL_HOME=${H_REAL_HOME:-${HOME:-/root}} # kept by a test run from another test
export HOME=$H_WORK/home # clients must not read or write the caller's config files
mkdir -p "$HOME"
H_DATA=$H_WORK/data
H_LOG=$H_WORK/server.log
H_PID=""
H_PID_START="" # h_starttime of H_PID: the cleanup kills that process only
H_PORT=""
H_ENDPOINT=""
H_FAILS=0
H_CHECKS=0
H_TRACKED=()
H_SERVER_ARGS=()
H_ULIMIT=""
H_CA=""

# h_starttime PID: when the process with PID started (clock ticks since boot, field 22 of its
# stat line); fails when there is none. A pid and its start time name one process: once a process
# exits, the kernel hands its pid to another in time (pid_max is 32768 on many machines, and a
# test suite forks thousands of processes a minute), though only after going round all the
# others, so never within the same tick.
h_starttime() {
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    s=${s##*) } # after "PID (COMM) ": COMM may hold spaces and parentheses
    read -r -a s <<<"$s"
    [ -n "${s[19]:-}" ] || return 1
    echo "${s[19]}"
}

# SIGKILL PID:START (an entry of H_TRACKED) if that very process still runs: never a process
# that got the pid after it (another test's server or node, on a machine running tests in
# parallel: the cleanup kills long-exited helpers, whose pids have been handed out again).
h_kill_tracked() {
    h_same "$1" && kill -KILL "${1%%:*}" 2>/dev/null
}

h_same() { # h_same PID:START: that process runs (a zombie yet to be reaped counts)
    local st
    st=$(h_starttime "${1%%:*}") && [ "$st" = "${1#*:}" ]
}

h_cleanup() {
    local p
    for p in "${H_TRACKED[@]}" ${H_PID:+"$H_PID:$H_PID_START"}; do
        h_kill_tracked "$p"
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept: $H_WORK" >&2
    else
        rm -rf "$H_WORK"
    fi
}
trap h_cleanup EXIT
trap 'exit 143' TERM INT

# h_track PID [WORD]: SIGKILL the process at exit (should it still run). Kept as PID:START
# (h_kill_tracked); WORD, when given, must be in its command line now (a pid read from a pid file
# may already be another process's), else it is not tracked.
h_track() {
    local st
    st=$(h_starttime "$1") || return 0 # gone already
    if [ -n "${2:-}" ]; then
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2" || return 0
    fi
    H_TRACKED+=("$1:$st")
}

# h_free_port: a port free now on 127.0.0.1 for a server to listen on. Not one the kernel would
# hand out: an ephemeral port (32768-60999) can become some connection's local end between this
# check and the server's bind (with two tests running at once and clusters dialling each other,
# "address already in use" came so); below that range only another listener can take it. Ports
# ending in 50..99 (mod 100): h_cluster_base_port's bases use 1..46, so the two never meet.
# Never one this test was handed before ($H_WORK/ports): a test that picks all its ports first
# and starts its servers after got the same port twice once (one in 6,000, picked six times).
h_free_port() {
    "$H_PY" - "$H_WORK/ports" <<'EOF'
import random, socket, sys
try:
    given = set(open(sys.argv[1]).read().split())
except OSError:
    given = set()
for _ in range(200):
    port = random.randrange(20000, 32000, 100) + random.randrange(50, 100)
    if str(port) in given:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    with open(sys.argv[1], "a") as f:
        f.write("%d\n" % port)
    print(port)
    break
EOF
}

# h_cluster_base_port: a base port for deploy/local-cluster.sh (CAIRN_CLUSTER_PORT) whose 18
# ports (etcd BASE+1..3 and +11..13, S3 +21..26, RPC +41..46) are all free now; empty if none.
h_cluster_base_port() {
    "$H_PY" - <<'EOF'
import random, socket
offsets = [1, 2, 3, 11, 12, 13] + list(range(21, 27)) + list(range(41, 47))
for _ in range(50):
    base = random.randrange(20000, 32000, 100)  # below the usual ephemeral range (32768-60999)
    socks = []
    try:
        for o in offsets:
            s = socket.socket()
            s.bind(("127.0.0.1", base + o))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
EOF
}

# h_need CMD...: exit 77 (client missing) unless every command exists.
h_need() {
    local c
    for c in "$@"; do
        if ! command -v "$c" >/dev/null 2>&1; then
            echo "SKIP $H_NAME: '$c' is not installed"
            exit 77
        fi
    done
}

# h_own_server REASON: the test needs a server (or etcd and nodes) of its own; in cluster mode it
# skips (exit 77; run.sh counts it as SKIP even with CI=true, by the words "needs its own server").
h_own_server() {
    if [ "$H_CLUSTER" = 1 ]; then
        echo "SKIP $H_NAME: needs its own server, not CAIRN_TEST_ENDPOINTS: $1"
        exit 77
    fi
}

# h_bucket NAME: the bucket name a test uses (NAME, behind the run's prefix in cluster mode).
h_bucket() { echo "$CAIRN_TEST_BUCKET_PREFIX$1"; }

# h_endpoint: the endpoint for the next client step (see "Cluster mode" above). Called in command
# substitutions, so the turn is kept in a file, not a variable.
h_endpoint() {
    local n=0
    if [ "$H_CLUSTER" != 1 ] || [ "${CAIRN_TEST_ALTERNATE:-0}" != 1 ]; then
        echo "$H_ENDPOINT"
        return
    fi
    [ -f "$H_WORK/steps.log" ] && n=$(wc -l <"$H_WORK/steps.log")
    echo "step $((n + 1)): ${H_ENDPOINTS[n % ${#H_ENDPOINTS[@]}]}" >>"$H_WORK/steps.log"
    echo "${H_ENDPOINTS[n % ${#H_ENDPOINTS[@]}]}"
}

# h_cluster_start: cluster mode's h_start: the test's node must answer /health/ready.
h_cluster_start() {
    local timeout=${READY_TIMEOUT:-30} i
    if [ ${#H_SERVER_ARGS[@]} -gt 0 ] || [ -n "$H_ULIMIT" ]; then
        h_own_server "it starts its server with options of its own"
    fi
    H_ENDPOINT=${H_ENDPOINTS[0]}
    H_PORT=${H_ENDPOINT##*:}
    for ((i = 0; i < timeout * 10; i++)); do
        if curl -fsS -o /dev/null --max-time 2 "$H_ENDPOINT/health/ready" 2>/dev/null; then
            echo "ok - cluster node $H_ENDPOINT ready (${#H_ENDPOINTS[@]} given, alternating:" \
                "${CAIRN_TEST_ALTERNATE:-0}, buckets $CAIRN_TEST_BUCKET_PREFIX*)"
            return 0
        fi
        sleep 0.1 # polling a readiness probe
    done
    echo "FAIL - cluster node $H_ENDPOINT not ready after ${timeout}s"
    echo "FAIL $H_NAME"
    exit 1
}

h_server_log_tail() {
    if [ "$H_CLUSTER" = 1 ]; then
        echo "---- cluster mode: no server of its own; nodes per step (last ${1:-40}) ----"
        tail -n "${1:-40}" "$H_WORK/steps.log" 2>/dev/null
        echo "----"
        return
    fi
    local f
    # a test that ran deploy/local-cluster.sh (lib_cluster.sh's lc_setup): each node's and etcd
    # member's log, which the cleanup deletes with the cluster dir
    for f in "$H_WORK"/cluster/n*/server.log "$H_WORK"/cluster/etcd/m*.log; do
        [ -f "$f" ] || continue
        echo "---- ${f#"$H_WORK"/} (last 15 lines) ----"
        tail -n 15 "$f"
    done
    [ -f "$H_LOG" ] || return 0
    echo "---- server log (last ${1:-40} lines) ----"
    tail -n "${1:-40}" "$H_LOG" 2>/dev/null
    echo "----"
}

# h_start: start the server (same port and data dir on a restart) and wait until it is ready.
h_start() {
    local timeout=${READY_TIMEOUT:-30} i
    if [ "$H_CLUSTER" = 1 ]; then
        h_cluster_start
        return
    fi
    if [ ! -x "$CAIRN_BIN" ]; then
        echo "FAIL - server binary $CAIRN_BIN missing"
        echo "FAIL $H_NAME"
        exit 1
    fi
    [ -n "$H_PORT" ] || H_PORT=$(h_free_port)
    H_ENDPOINT=http://127.0.0.1:$H_PORT
    [ -z "$H_CA" ] || H_ENDPOINT=https://127.0.0.1:$H_PORT
    mkdir -p "$H_DATA"
    echo "== starting cairn on $H_ENDPOINT (data $H_DATA)" >>"$H_LOG"
    (
        # shellcheck disable=SC2086 # H_ULIMIT is a list of ulimit arguments
        [ -z "$H_ULIMIT" ] || ulimit $H_ULIMIT || exit 1
        exec "$CAIRN_BIN" server --data "$H_DATA" --listen "127.0.0.1:$H_PORT" "${H_SERVER_ARGS[@]}"
    ) >>"$H_LOG" 2>&1 &
    H_PID=$!
    H_PID_START=$(h_starttime "$H_PID")
    for ((i = 0; i < timeout * 10; i++)); do
        if ! kill -0 "$H_PID" 2>/dev/null; then
            wait "$H_PID"
            echo "FAIL - server exited during start-up (status $?)"
            h_server_log_tail
            H_PID=""
            echo "FAIL $H_NAME"
            exit 1
        fi
        if curl -fsS -o /dev/null --max-time 2 ${H_CA:+--cacert "$H_CA"} \
            "$H_ENDPOINT/health/ready" 2>/dev/null; then
            echo "ok - server ready on port $H_PORT"
            return 0
        fi
        sleep 0.1 # polling a readiness probe, not synchronisation by delay
    done
    echo "FAIL - server not ready after ${timeout}s"
    h_server_log_tail
    echo "FAIL $H_NAME"
    exit 1
}

# h_stop: SIGTERM, wait (bounded), and require exit status 0.
h_stop() {
    local i rc
    [ -n "$H_PID" ] || return 0
    kill -TERM "$H_PID" 2>/dev/null
    for ((i = 0; i < 300; i++)); do
        h_same "$H_PID:$H_PID_START" || break
        sleep 0.1
    done
    if h_same "$H_PID:$H_PID_START"; then
        kill -KILL "$H_PID"
        wait "$H_PID" 2>/dev/null
        h_bad "server stopped within 30s of SIGTERM" "had to SIGKILL it"
    else
        wait "$H_PID"
        rc=$?
        if [ "$rc" -eq 0 ]; then
            h_ok "server exited 0 on SIGTERM"
        else
            h_bad "server exited 0 on SIGTERM" "exit status $rc"
        fi
    fi
    H_PID=""
}

# h_kill9: crash the server (no clean shutdown).
h_kill9() {
    [ -n "$H_PID" ] || return 0
    kill -KILL "$H_PID" 2>/dev/null
    wait "$H_PID" 2>/dev/null
    H_PID=""
    echo "ok - server killed with SIGKILL"
}

h_ok() {
    H_CHECKS=$((H_CHECKS + 1))
    echo "ok - $1"
}

# h_bad DESC [DETAIL]: record a failed check.
h_bad() {
    H_CHECKS=$((H_CHECKS + 1))
    H_FAILS=$((H_FAILS + 1))
    echo "FAIL - $1"
    [ $# -lt 2 ] || printf '%s\n' "$2" | head -n 30 | sed 's/^/    | /'
}

# h_run DESC CMD...: the command must succeed. Its output is kept in $H_OUT.
H_OUT=""
h_run() {
    local desc=$1
    shift
    if H_OUT=$("$@" 2>&1); then
        h_ok "$desc"
        return 0
    fi
    h_bad "$desc" "\$ $*"$'\n'"$H_OUT"
    return 1
}

# h_fails_with DESC PATTERN CMD...: the command must fail and its output must match PATTERN (ERE).
h_fails_with() {
    local desc=$1 pat=$2
    shift 2
    if H_OUT=$("$@" 2>&1); then
        h_bad "$desc" "command succeeded, expected failure matching /$pat/"$'\n'"$H_OUT"
        return 1
    fi
    if grep -Eq -- "$pat" <<<"$H_OUT"; then
        h_ok "$desc"
        return 0
    fi
    h_bad "$desc" "expected /$pat/ in:"$'\n'"$H_OUT"
    return 1
}

# h_eq DESC EXPECTED ACTUAL
h_eq() {
    if [ "$2" = "$3" ]; then
        h_ok "$1"
    else
        h_bad "$1" "expected: $2"$'\n'"actual:   $3"
    fi
}

# h_gen FILE BYTES SEED: deterministic pseudo-random content (seed printed by the caller).
h_gen() {
    "$H_PY" - "$1" "$2" "$3" <<'EOF'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with open(path, "wb") as f:
    left = size
    while left:
        n = min(left, 1 << 20)
        f.write(rng.randbytes(n))
        left -= n
EOF
}

h_md5() { md5sum "$1" | cut -d' ' -f1; }

# h_finish: stop the server, print the verdict, exit.
h_finish() {
    h_stop
    if [ "$H_FAILS" -eq 0 ]; then
        echo "PASS $H_NAME ($H_CHECKS checks)"
        exit 0
    fi
    h_server_log_tail 60
    echo "FAIL $H_NAME ($H_FAILS of $H_CHECKS checks failed)"
    exit 1
}
