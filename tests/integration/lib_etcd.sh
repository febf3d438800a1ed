# shellcheck shell=bash
# lib_etcd.sh: start and stop real etcd members for shell tests and local clusters.
#
# Source it (after lib.sh in a test: its h_track makes lib.sh's EXIT trap kill the members too).
#   etcd_start N        start an N-member cluster (1..3) on free 127.0.0.1 ports, each with its own
#                       data dir under $ETCD_DIR (default $H_WORK/etcd, else a new temp dir); waits
#                       until every member answers a linearizable read (at most ETCD_READY_TIMEOUT s,
#                       default 20); sets ETCD_URLS (array), ETCD_PIDS (array), ETCD_ENDPOINTS
#                       ("URL,URL,..."); returns non-zero (members stopped) when one does not start
#   etcd_kill I         SIGKILL member I (0-based) and reap it
#   etcd_restart I      start member I again on its ports with its data
#   etcd_stop           kill every member started here
# Every member is an ordinary child process killed by PID: a system etcd on 2379 is never touched.
# Heartbeat 50 ms and election timeout 500 ms: a 3-member cluster re-elects within about a second.
ETCD_BIN=${CAIRN_ETCD:-/usr/bin/etcd}
ETCD_URLS=()
ETCD_PIDS=()
ETCD_PEERS=()
ETCD_ENDPOINTS=""
ETCD_N=0

etcd_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_etcd_spawn() { # _etcd_spawn I
    local i=$1 cluster="" j
    for ((j = 0; j < ETCD_N; j++)); do
        cluster+="${cluster:+,}m$j=${ETCD_PEERS[$j]}"
    done
    "$ETCD_BIN" --name "m$i" --data-dir "$ETCD_DIR/m$i" \
        --listen-client-urls "${ETCD_URLS[$i]}" --advertise-client-urls "${ETCD_URLS[$i]}" \
        --listen-peer-urls "${ETCD_PEERS[$i]}" --initial-advertise-peer-urls "${ETCD_PEERS[$i]}" \
        --initial-cluster "$cluster" --initial-cluster-token "cairn-$$" \
        --initial-cluster-state new --heartbeat-interval 50 --election-timeout 500 \
        >>"$ETCD_DIR/m$i.log" 2>&1 &
    ETCD_PIDS[$i]=$!
    if declare -F h_track >/dev/null; then h_track "${ETCD_PIDS[$i]}"; fi
}

_etcd_wait() { # _etcd_wait I: a linearizable read answers (the member has a leader)
    local i=$1 deadline=$((SECONDS + ${ETCD_READY_TIMEOUT:-20}))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if curl -s -m 1 -X POST -d '{"key":"L2N1LXJlYWR5"}' "${ETCD_URLS[$i]}/v3/kv/range" |
            grep -q '"revision"'; then
            return 0
        fi
        kill -0 "${ETCD_PIDS[$i]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "etcd member $i did not start (log: $ETCD_DIR/m$i.log)" >&2
    tail -5 "$ETCD_DIR/m$i.log" >&2
    return 1
}

# etcd_start N: N members on free ports. A port picked free can be taken before etcd binds it
# (another test's socket, on a machine running tests in parallel): then the members start
# again from nothing on other ports, up to three times in all.
etcd_start() {
    local i try ok
    ETCD_N=$1
    ETCD_DIR=${ETCD_DIR:-${H_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/cairn-etcd.XXXXXX")}/etcd}
    for try in 1 2 3; do
        mkdir -p "$ETCD_DIR"
        ETCD_URLS=() ETCD_PEERS=() ETCD_PIDS=()
        for ((i = 0; i < ETCD_N; i++)); do
            ETCD_URLS[$i]="http://127.0.0.1:$(etcd_free_port)"
            ETCD_PEERS[$i]="http://127.0.0.1:$(etcd_free_port)"
        done
        ETCD_ENDPOINTS=$(IFS=,; echo "${ETCD_URLS[*]}")
        for ((i = 0; i < ETCD_N; i++)); do _etcd_spawn "$i"; done
        ok=1
        for ((i = 0; i < ETCD_N; i++)); do
            _etcd_wait "$i" || { ok=0; break; }
        done
        [ "$ok" = 1 ] && return 0
        etcd_stop
        grep -qs "address already in use" "$ETCD_DIR"/m*.log || return 1
        [ "$try" = 3 ] && return 1
        echo "etcd: a port was taken before etcd bound it; starting again on other ports" >&2
        rm -rf "$ETCD_DIR"
    done
}

etcd_kill() { # etcd_kill I
    local p=${ETCD_PIDS[$1]:-}
    [ -n "$p" ] || return 0
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    ETCD_PIDS[$1]=""
}

etcd_restart() { # etcd_restart I
    etcd_kill "$1"
    _etcd_spawn "$1"
    _etcd_wait "$1"
}

etcd_stop() {
    local i
    for ((i = 0; i < ETCD_N; i++)); do etcd_kill "$i"; done
}

# ---- clustered cairn servers on loopback (tests that start their own nodes) ----
# cl_cluster sets PORT, RPORT, PID (S3 port, RPC port, pid per node name) and exports
# CAIRN_RPC_SECRET. CL_SERVER_CONF holds extra [server] lines (e.g. "region = eu-west-1").

# cl_cluster CLUSTER_ID DRIVES NODE...: what a test of clustered servers starts from (after lib.sh
# and this file): one etcd member, free S3 and RPC ports per node, NODES, E (the admin options
# naming the cluster), and a layout applied with the i-th NODE in AZ az<i> with DRIVES drives.
# Exits 77 (skip) without etcd; a step that fails ends the test.
cl_cluster() {
    local id=$1 drives=$2 i=0 n
    shift 2
    h_need curl python3
    [ -x "$ETCD_BIN" ] || { echo "SKIP $H_NAME: $ETCD_BIN is not installed"; exit 77; }
    etcd_start 1 || { h_bad "etcd starts"; h_finish; }
    h_ok "etcd started: $ETCD_ENDPOINTS"
    # shellcheck disable=SC2034 # NODES is the caller's
    NODES=("$@")
    declare -gA PORT RPORT PID
    export CAIRN_RPC_SECRET=$id-test-rpc-secret
    E=(--etcd "$ETCD_ENDPOINTS" --cluster "$id")
    for n in "$@"; do
        i=$((i + 1))
        PORT[$n]=$(h_free_port) RPORT[$n]=$(h_free_port)
        h_run "layout add $n in az$i" "$CAIRN_BIN" admin layout add "$n" \
            --addr "127.0.0.1:${RPORT[$n]}" --az "az$i" --drives "$drives" "${E[@]}" || h_finish
    done
    h_run "layout apply" "$CAIRN_BIN" admin layout apply --yes --objects 1000 "${E[@]}" || h_finish
}

# cl_node_start NODE CLUSTER_ID: start NODE (2+1 over 3 drives, its own data dir, member TTL 2 s)
# with a [cluster] section on ETCD_ENDPOINTS (plus the lines of CL_CLUSTER_CONF); wait until ready.
cl_node_start() {
    local n=$1 id=$2 i
    mkdir -p "$H_WORK/$n"
    cat >"$H_WORK/$n.conf" <<CONF
[server]
${CL_SERVER_CONF:-}
[storage]
drives = 3
data_cells = 2
parity_cells = 1
[cluster]
etcd = $ETCD_ENDPOINTS
id = $id
node_id = $n
member_ttl_s = 2
rpc_listen = 127.0.0.1:${RPORT[$n]}
${CL_CLUSTER_CONF:-}
CONF
    "$CAIRN_BIN" server --data "$H_WORK/$n/data" --listen "127.0.0.1:${PORT[$n]}" \
        --config "$H_WORK/$n.conf" >>"$H_WORK/$n.log" 2>&1 &
    PID[$n]=$!
    h_track "${PID[$n]}"
    for ((i = 0; i < 200; i++)); do
        curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${PORT[$n]}/health/ready" 2>/dev/null &&
            { h_ok "$n ready on port ${PORT[$n]}"; return 0; }
        sleep 0.1 # polling a readiness probe
    done
    h_bad "$n ready" "$(tail -20 "$H_WORK/$n.log")"
    return 1
}

# cl_node_stop NODE: SIGTERM, and the exit status must be 0.
cl_node_stop() {
    local n=$1 rc
    kill -TERM "${PID[$n]}" 2>/dev/null
    wait "${PID[$n]}"
    rc=$?
    [ "$rc" -eq 0 ] && h_ok "$n exited 0 on SIGTERM" || h_bad "$n exited 0 on SIGTERM" "status $rc"
}

# h_until_ok DESC SECONDS CMD...: poll CMD (every 50 ms) until it succeeds; says how long it took.
h_until_ok() {
    local desc=$1 secs=$2 t0 t1 deadline
    shift 2
    t0=$(date +%s%N)
    deadline=$((SECONDS + secs))
    while [ "$SECONDS" -le "$deadline" ]; do
        if H_OUT=$("$@" 2>&1); then
            t1=$(date +%s%N)
            h_ok "$desc (after $(((t1 - t0) / 1000000)) ms)"
            return 0
        fi
        sleep 0.05
    done
    h_bad "$desc" "$H_OUT"
    return 1
}
