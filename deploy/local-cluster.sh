#!/usr/bin/env bash
# local-cluster.sh: a cairn cluster on loopback - 3 etcd members and 6 nodes in 3 AZs.
#
#   deploy/local-cluster.sh start           start etcd and every node (what is running stays)
#   deploy/local-cluster.sh start NODE-ID   start one stopped node (n1..n6)
#   deploy/local-cluster.sh start MEMBER    start one stopped etcd member (m1..m3) on its data dir
#   deploy/local-cluster.sh stop            stop the nodes, then etcd (SIGTERM, SIGKILL after a bound)
#   deploy/local-cluster.sh status          the node lines, then the etcd members
#   deploy/local-cluster.sh restart-rolling restart the nodes one at a time (docs/upgrades.md)
#
# start and status print one line per node, "<node-id> <az> <endpoint> <pid>" (endpoint
# http://127.0.0.1:PORT, the node's S3 port; pid "-" followed by "down" for a stopped node), then
# start prints an aws command line. start returns once every node answers /health/ready and reports
# the current layout epoch in /admin/status.
#
# Topology: etcd members m1..m3 (one per AZ, so losing an AZ leaves etcd its quorum), nodes n1..n6
# (n1, n2 in az1; n3, n4 in az2; n5, n6 in az3), one `cairn server` process each with its own config
# file and 4 drive folders. The first start writes the layout (`cairn admin layout add` per node,
# then `apply --yes`); later starts keep the layout etcd holds.
#
# Environment:
#   CAIRN_CLUSTER_DIR   where everything lives (default ./cairn-cluster)
#   CAIRN_CLUSTER_PORT  base port (default 27100, below the usual ephemeral range): etcd clients
#                       BASE+1..3, etcd peers BASE+11..13, node S3 ports BASE+21..26, node RPC
#                       ports BASE+41..46; kept in the cluster dir by the first start
#   CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY   the S3 root credentials of every node; when unset, a pair
#                       is generated once into DIR/credentials (mode 0600)
#   CAIRN_BIN           the cairn binary (default build/bin/cairn of this checkout)
#   CAIRN_ETCD          the etcd binary (default /usr/bin/etcd); the system etcd is never used
#   CAIRN_CLUSTER       the cluster id in etcd (default local)
#   CAIRN_CLUSTER_GC_GRACE_S  [cluster] gc_grace_s of every node (default 900; tests shorten it)
#                       (the nodes inherit the environment: any CAIRN_<SECTION>_<KEY> sets that
#                       key, e.g. CAIRN_CLUSTER_MAINTENANCE_S=2 for a 2 s maintenance tick in tests)
#   CAIRN_CLUSTER_CONF_EXTRA  text appended to every node's configuration (tests: e.g. a
#                       [lifecycle] section with a short day_s)
#   CAIRN_CLUSTER_RPC_HOST  the host of the node RPC addresses in the layout and the member records
#                       (default 127.0.0.1; `localhost` tests RPC by DNS name, docs/rpc.md); set
#                       before the first start, which writes the layout
#   CAIRN_CLUSTER_TLS   1: the node RPC over TLS ([cluster] tls_ca, tls_cert, tls_key; docs/tls.md)
#                       with a CA and one certificate per node made once into DIR/tls (openssl);
#                       CAIRN_CLUSTER_TLS_MODE (the key [cluster] tls_mode, inherited by the nodes)
#                       with restart-rolling switches a running cluster step by step (docs/tls.md)
#   STOP_TIMEOUT        seconds a process gets after SIGTERM before SIGKILL (default 15)
#   READY_TIMEOUT       seconds start waits for etcd and for the nodes (default 60)
#   SETTLE_TIMEOUT      seconds restart-rolling waits, after a node is ready again, for every node
#                       to list all six as live members and to hold no undelivered hint (default 30)
# The cluster secret of the node RPC is generated once into DIR/rpc.secret (mode 0600); every node
# reads it through `rpc_secret_file`, and the master key (users' secrets, docs/users.md) likewise
# from DIR/master.key through `master_key_file`. Nothing is ever passed on a command line.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
CAIRN_BIN=${CAIRN_BIN:-$here/../build/bin/cairn}
ETCD_BIN=${CAIRN_ETCD:-/usr/bin/etcd}
CLUSTER_ID=${CAIRN_CLUSTER:-local}
STOP_TIMEOUT=${STOP_TIMEOUT:-15}
READY_TIMEOUT=${READY_TIMEOUT:-60}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-30}
RPC_HOST=${CAIRN_CLUSTER_RPC_HOST:-127.0.0.1}
NODES=(n1 n2 n3 n4 n5 n6)
declare -A CHILD=() # node -> pid of the node process this run of the script started
ETCDS=(m1 m2 m3)
DRIVES=4

die() {
    echo "local-cluster: $*" >&2
    exit 1
}

az_of_node() { echo "az$(((${1#n} + 1) / 2))"; } # n1 n2 -> az1, n3 n4 -> az2, n5 n6 -> az3
node_index() { echo "${1#n}"; }

# ---- the cluster directory and its settings ----

setup_dir() { # setup_dir CREATE (1: make the directory; 0: it may be missing)
    DIR=${CAIRN_CLUSTER_DIR:-./cairn-cluster}
    if [ "$1" = 1 ]; then mkdir -p "$DIR" || die "cannot create $DIR"; fi
    [ -d "$DIR" ] && DIR=$(cd "$DIR" && pwd)
    local saved=""
    [ -f "$DIR/cluster.env" ] && saved=$(sed -n 's/^base_port=//p' "$DIR/cluster.env")
    if [ -n "$saved" ]; then
        # start refuses another base port; stop and status go by the one the cluster runs on
        if [ "$1" = 1 ] && [ -n "${CAIRN_CLUSTER_PORT:-}" ] && [ "$CAIRN_CLUSTER_PORT" != "$saved" ]; then
            die "$DIR was created with base port $saved, not CAIRN_CLUSTER_PORT=$CAIRN_CLUSTER_PORT"
        fi
        BASE=$saved
    else
        BASE=${CAIRN_CLUSTER_PORT:-27100}
    fi
    case $BASE in '' | *[!0-9]*) die "bad base port '$BASE'" ;; esac
    if [ "$BASE" -lt 1024 ] || [ "$BASE" -gt 65000 ]; then die "base port $BASE: use 1024..65000"; fi
    if [ -z "$saved" ] && [ "$1" = 1 ]; then
        echo "base_port=$BASE" >"$DIR/cluster.env" || die "cannot write $DIR/cluster.env"
    fi
    ETCD_ENDPOINTS=""
    local i
    for i in 1 2 3; do ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}http://127.0.0.1:$((BASE + i))"; done
}

s3_port() { echo $((BASE + 20 + $(node_index "$1"))); }
rpc_port() { echo $((BASE + 40 + $(node_index "$1"))); }
etcd_client_port() { echo $((BASE + ${1#m})); }
etcd_peer_port() { echo $((BASE + 10 + ${1#m})); }

# A secret made of random letters and digits (no shell or config quoting issues).
random_token() { # random_token LENGTH
    local out=""
    while [ "${#out}" -lt "$1" ]; do
        out+=$(head -c 256 /dev/urandom | tr -dc 'A-Za-z0-9')
    done
    echo "${out:0:$1}"
}

# Written once, mode 0600 from the start (umask), never shown on a command line.
make_secret_files() {
    if [ ! -s "$DIR/rpc.secret" ]; then
        (umask 077 && random_token 48 >"$DIR/rpc.secret") || die "cannot write $DIR/rpc.secret"
    fi
    # every node's master key (wraps users' secrets; CAIRN_MASTER_KEY, when set, comes first)
    if [ ! -s "$DIR/master.key" ]; then
        (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$DIR/master.key") ||
            die "cannot write $DIR/master.key"
    fi
    if [ -n "${CAIRN_ACCESS_KEY:-}" ] && [ -n "${CAIRN_SECRET_KEY:-}" ]; then
        CRED_FROM="env"
        return
    fi
    if [ ! -s "$DIR/credentials" ]; then
        (umask 077 && printf 'access_key = %s\nsecret_key = %s\n' "CK$(random_token 18 | tr '[:lower:]' '[:upper:]')" \
            "$(random_token 40)" >"$DIR/credentials") || die "cannot write $DIR/credentials"
    fi
    CAIRN_ACCESS_KEY=$(sed -n 's/^access_key = //p' "$DIR/credentials")
    CAIRN_SECRET_KEY=$(sed -n 's/^secret_key = //p' "$DIR/credentials")
    if [ -z "$CAIRN_ACCESS_KEY" ] || [ -z "$CAIRN_SECRET_KEY" ]; then die "$DIR/credentials is damaged"; fi
    CRED_FROM="file"
}

# CAIRN_CLUSTER_TLS=1: a throwaway CA and a certificate per node for the node RPC, made once
# (keys mode 0600 from the start). Every certificate the CA signed is a peer.
make_tls_files() {
    local n req="openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
    [ "${CAIRN_CLUSTER_TLS:-0}" = 1 ] || return 0
    command -v openssl >/dev/null || die "CAIRN_CLUSTER_TLS=1 needs the openssl CLI"
    mkdir -p "$DIR/tls"
    if [ ! -s "$DIR/tls/ca.pem" ]; then
        (umask 077 && $req -x509 -days 30 -subj "/CN=cairn-$CLUSTER_ID-ca" \
            -keyout "$DIR/tls/ca.key" -out "$DIR/tls/ca.pem" 2>/dev/null) || die "cannot make the CA"
    fi
    for n in "${NODES[@]}"; do
        [ -s "$DIR/tls/$n.pem" ] && continue
        printf 'subjectAltName=DNS:%s,IP:127.0.0.1\n' "$n" >"$DIR/tls/$n.ext"
        (umask 077 && $req -subj "/CN=$n" -keyout "$DIR/tls/$n.key" -out "$DIR/tls/$n.csr" \
            2>/dev/null && openssl x509 -req -in "$DIR/tls/$n.csr" -CA "$DIR/tls/ca.pem" \
            -CAkey "$DIR/tls/ca.key" -CAcreateserial -days 30 -extfile "$DIR/tls/$n.ext" \
            -out "$DIR/tls/$n.pem" 2>/dev/null) || die "cannot make the certificate of $n"
    done
}

# The pair for status calls when the cluster was started with generated credentials.
load_credentials() {
    if [ -z "${CAIRN_ACCESS_KEY:-}" ] || [ -z "${CAIRN_SECRET_KEY:-}" ]; then
        if [ -f "$DIR/credentials" ]; then
            CAIRN_ACCESS_KEY=$(sed -n 's/^access_key = //p' "$DIR/credentials")
            CAIRN_SECRET_KEY=$(sed -n 's/^secret_key = //p' "$DIR/credentials")
        fi
    fi
    export CAIRN_ACCESS_KEY CAIRN_SECRET_KEY
}

# ---- processes ----

# The pid in FILE when that process is alive and its command line holds WORD (its config file or
# data dir: not a reused pid).
live_pid() { # live_pid FILE WORD
    local p
    [ -f "$1" ] || return 1
    p=$(cat "$1" 2>/dev/null)
    case $p in '' | *[!0-9]*) return 1 ;; esac
    running "$p" || return 1
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
    echo "$p"
}

port_busy() { # port_busy PORT: something listens on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The process exists and has not exited. An exited one stays a zombie until whoever adopted it
# (init, or a subreaper) reaps it, which may take a while: that is gone too.
running() { # running PID
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null) || return 1
    [ "$st" != Z ] && [ "$st" != X ]
}

# After `CMD &`: returns once the child runs CMD (its command line holds WORD) or has ended (up
# to 10 s). The shell forks, then the child makes its redirections and execs: until the exec,
# /proc/PID/cmdline is this script's own, and live_pid in that moment (a few ms, far longer on a
# loaded machine) took a node that was starting for one that had exited (test_cluster_tls_rolling
# failed so once, with the node running on).
exec_wait() { # exec_wait PID WORD
    local i
    for ((i = 0; i < 1000; i++)); do
        running "$1" || return 0
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$2" && return 0
        sleep 0.01
    done
}

# SIGTERM, wait up to STOP_TIMEOUT seconds, then SIGKILL; waits until the process is gone.
stop_pid() { # stop_pid PID WHAT
    local p=$1 i
    kill -TERM "$p" 2>/dev/null || return 0
    for ((i = 0; i < STOP_TIMEOUT * 20; i++)); do
        running "$p" || return 0
        sleep 0.05
    done
    echo "local-cluster: $2 (pid $p) did not stop within ${STOP_TIMEOUT}s: SIGKILL" >&2
    kill -KILL "$p" 2>/dev/null
    for ((i = 0; i < 100; i++)); do
        running "$p" || return 0
        sleep 0.05
    done
}

# ---- etcd ----

etcd_start_member() { # etcd_start_member NAME
    local m=$1 cluster="" e
    for e in "${ETCDS[@]}"; do
        cluster+="${cluster:+,}$e=http://127.0.0.1:$(etcd_peer_port "$e")"
    done
    local state=new
    [ -d "$DIR/etcd/$m/member" ] && state=existing
    local cport pport
    cport=$(etcd_client_port "$m")
    pport=$(etcd_peer_port "$m")
    port_busy "$cport" && die "port $cport (etcd $m clients) is in use: stop what holds it or set CAIRN_CLUSTER_PORT"
    port_busy "$pport" && die "port $pport (etcd $m peers) is in use: stop what holds it or set CAIRN_CLUSTER_PORT"
    mkdir -p "$DIR/etcd"
    "$ETCD_BIN" --name "$m" --data-dir "$DIR/etcd/$m" \
        --listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
        --listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
        --initial-cluster "$cluster" --initial-cluster-token "cairn-local-$CLUSTER_ID" \
        --initial-cluster-state "$state" --heartbeat-interval 100 --election-timeout 1000 \
        --auto-compaction-retention 1 \
        </dev/null >>"$DIR/etcd/$m.log" 2>&1 &
    echo $! >"$DIR/etcd/$m.pid"
    exec_wait $! "$DIR/etcd/$m "
}

# A linearizable read answers on member M (it has a leader).
etcd_ready() { # etcd_ready NAME
    curl -s -m 1 -X POST -d '{"key":"L2NhaXJuLXJlYWR5"}' \
        "http://127.0.0.1:$(etcd_client_port "$1")/v3/kv/range" 2>/dev/null | grep -q '"revision"'
}

etcd_up() {
    local m deadline
    [ -x "$ETCD_BIN" ] || die "no etcd at $ETCD_BIN (Debian: apt-get install etcd-server; or set CAIRN_ETCD)"
    for m in "${ETCDS[@]}"; do
        live_pid "$DIR/etcd/$m.pid" "$DIR/etcd/$m " >/dev/null || etcd_start_member "$m"
    done
    deadline=$((SECONDS + READY_TIMEOUT))
    for m in "${ETCDS[@]}"; do
        until etcd_ready "$m"; do
            if ! live_pid "$DIR/etcd/$m.pid" "$DIR/etcd/$m " >/dev/null; then
                tail -5 "$DIR/etcd/$m.log" >&2
                die "etcd member $m exited (log: $DIR/etcd/$m.log)"
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                tail -5 "$DIR/etcd/$m.log" >&2
                die "etcd member $m did not come up within ${READY_TIMEOUT}s (log: $DIR/etcd/$m.log)"
            fi
            sleep 0.2
        done
    done
}

# ---- the layout ----

layout() { "$CAIRN_BIN" admin layout "$@" --etcd "$ETCD_ENDPOINTS" --cluster "$CLUSTER_ID"; }

# The current layout epoch in etcd ("" when none or etcd does not answer).
current_epoch() {
    layout show 2>/dev/null | sed -nE 's/^cluster [^ ]+: layout epoch ([0-9]+) at etcd revision.*/\1/p'
}

bootstrap_layout() {
    local out n
    out=$(layout show 2>&1) || die "cannot read the layout from etcd: $out"
    grep -q "no layout applied yet" <<<"$out" || return 0
    layout discard >/dev/null 2>&1 # a change staged by an interrupted first start
    for n in "${NODES[@]}"; do
        out=$(layout add "$n" --addr "$RPC_HOST:$(rpc_port "$n")" --az "$(az_of_node "$n")" \
            --drives "$DRIVES" 2>&1) || die "layout add $n failed: $out"
    done
    out=$(layout apply --yes 2>&1) || die "layout apply failed: $out"
    echo "local-cluster: layout applied ($(grep -m1 '^applied:' <<<"$out"))" >&2
}

# ---- nodes ----

write_node_config() { # write_node_config NODE
    local n=$1
    mkdir -p "$DIR/$n/data"
    cat >"$DIR/$n/cairn.conf" <<EOF
# written by deploy/local-cluster.sh; rewritten at every start
[server]
listen = 127.0.0.1:$(s3_port "$n")
data = $DIR/$n/data
log_level = info
master_key_file = $DIR/master.key

[storage]
drives = $DRIVES
data_cells = 2
parity_cells = 2

[cluster]
etcd = $ETCD_ENDPOINTS
id = $CLUSTER_ID
node_id = $n
rpc_listen = 127.0.0.1:$(rpc_port "$n")
addr = $RPC_HOST:$(rpc_port "$n")
rpc_secret_file = $DIR/rpc.secret
member_ttl_s = 5
gc_grace_s = ${CAIRN_CLUSTER_GC_GRACE_S:-900}
EOF
    if [ "${CAIRN_CLUSTER_TLS:-0}" = 1 ]; then
        printf 'tls_ca = %s\ntls_cert = %s\ntls_key = %s\n' "$DIR/tls/ca.pem" "$DIR/tls/$n.pem" \
            "$DIR/tls/$n.key" >>"$DIR/$n/cairn.conf"
    fi
    if [ -n "${CAIRN_CLUSTER_CONF_EXTRA:-}" ]; then
        printf '%s\n' "$CAIRN_CLUSTER_CONF_EXTRA" >>"$DIR/$n/cairn.conf"
    fi
}

node_start() { # node_start NODE: start it unless it runs
    local n=$1 p
    live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf" >/dev/null && return 0
    for p in "$(s3_port "$n")" "$(rpc_port "$n")"; do
        port_busy "$p" && die "port $p (node $n) is in use: stop what holds it or set CAIRN_CLUSTER_PORT"
    done
    write_node_config "$n"
    CAIRN_ACCESS_KEY=$CAIRN_ACCESS_KEY CAIRN_SECRET_KEY=$CAIRN_SECRET_KEY \
        "$CAIRN_BIN" server --config "$DIR/$n/cairn.conf" </dev/null >>"$DIR/$n/server.log" 2>&1 &
    echo $! >"$DIR/$n/pid"
    CHILD[$n]=$!
    exec_wait $! "$DIR/$n/cairn.conf"
}

# How a node this script started ended, into ENDED: ", exit status N" or ", killed by SIGNAME"
# (the shell keeps its children's status; "" for a node another run of the script started), or,
# when it has not ended after all, what runs under its pid.
# Not in a command substitution: a subshell cannot wait for its parent's children.
node_ended() { # node_ended NODE
    local p=${CHILD[$1]:-} rc
    ENDED=""
    [ -n "$p" ] || return 0
    if running "$p"; then # not gone: nothing to wait for
        ENDED=", yet its pid $p runs ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | head -c 80))"
        return 0
    fi
    wait "$p" 2>/dev/null
    rc=$?
    if [ "$rc" -gt 128 ]; then
        ENDED=", killed by SIG$(kill -l "$((rc - 128))" 2>/dev/null || echo "$((rc - 128))")"
    else
        ENDED=", exit status $rc"
    fi
}

# Ready, and the layout epoch (>= want) in its status; dies on timeout or exit.
node_wait() { # node_wait NODE WANT_EPOCH DEADLINE
    local n=$1 want=$2 deadline=$3 url out
    url="http://127.0.0.1:$(s3_port "$n")"
    while :; do
        if ! live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf" >/dev/null; then
            tail -5 "$DIR/$n/server.log" >&2
            node_ended "$n"
            die "node $n exited$ENDED (log: $DIR/$n/server.log)"
        fi
        if curl -s -m 1 -o /dev/null -w '%{http_code}' "$url/health/ready" 2>/dev/null | grep -q 200; then
            out=$("$CAIRN_BIN" admin status --endpoint "$url" 2>/dev/null)
            local e
            e=$(sed -nE 's/^cluster: layout epoch ([0-9]+) .*/\1/p' <<<"$out")
            if [ -n "$e" ] && [ "$e" -ge "$want" ] && [ "$e" -gt 0 ]; then
                return 0
            fi
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            tail -5 "$DIR/$n/server.log" >&2
            die "node $n not ready with layout epoch $want within ${READY_TIMEOUT}s (log: $DIR/$n/server.log)"
        fi
        sleep 0.2
    done
}

node_line() { # node_line NODE
    local n=$1 p
    if p=$(live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf"); then
        echo "$n $(az_of_node "$n") http://127.0.0.1:$(s3_port "$n") $p"
    else
        echo "$n $(az_of_node "$n") http://127.0.0.1:$(s3_port "$n") - down"
    fi
}

aws_line() {
    # shellcheck disable=SC2016 # printed for the user's shell to expand
    local secret='"$CAIRN_SECRET_KEY"'
    [ "$CRED_FROM" = file ] && secret="\"\$(sed -n 's/^secret_key = //p' '$DIR/credentials')\""
    echo "AWS_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$secret AWS_DEFAULT_REGION=us-east-1 aws --endpoint-url http://127.0.0.1:$(s3_port n1) s3 ls"
}

check_binaries() {
    [ -x "$CAIRN_BIN" ] || die "no cairn binary at $CAIRN_BIN (build it: bash scripts/setup.sh; or set CAIRN_BIN)"
    command -v curl >/dev/null 2>&1 || die "curl is needed (apt-get install curl)"
}

# ---- commands ----

cmd_start() {
    local n epoch deadline
    check_binaries
    make_secret_files
    make_tls_files
    export CAIRN_ACCESS_KEY CAIRN_SECRET_KEY
    etcd_up
    bootstrap_layout
    epoch=$(current_epoch)
    [ -n "$epoch" ] || die "etcd holds no readable layout for cluster $CLUSTER_ID"
    for n in "${NODES[@]}"; do node_start "$n"; done
    deadline=$((SECONDS + READY_TIMEOUT))
    for n in "${NODES[@]}"; do node_wait "$n" "$epoch" "$deadline"; done
    for n in "${NODES[@]}"; do node_line "$n"; done
    aws_line
}

cmd_start_one() { # cmd_start_one NODE
    local n=$1 epoch
    case " ${NODES[*]} " in *" $n "*) ;; *) die "no node '$n' (nodes: ${NODES[*]})" ;; esac
    check_binaries
    [ -s "$DIR/rpc.secret" ] || die "$DIR holds no cluster: run '$0 start' first"
    make_secret_files
    export CAIRN_ACCESS_KEY CAIRN_SECRET_KEY
    live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf" >/dev/null && { node_line "$n"; return 0; }
    epoch=$(current_epoch) # "" with etcd down: the node starts on its cached layout
    node_start "$n"
    node_wait "$n" "${epoch:-1}" $((SECONDS + READY_TIMEOUT))
    node_line "$n"
}

cmd_start_member() { # cmd_start_member MEMBER: rejoins the cluster on its own data dir
    local m=$1 p deadline
    [ -s "$DIR/rpc.secret" ] || die "$DIR holds no cluster: run '$0 start' first"
    [ -x "$ETCD_BIN" ] || die "no etcd at $ETCD_BIN (Debian: apt-get install etcd-server; or set CAIRN_ETCD)"
    if ! live_pid "$DIR/etcd/$m.pid" "$DIR/etcd/$m " >/dev/null; then
        etcd_start_member "$m"
    fi
    deadline=$((SECONDS + READY_TIMEOUT))
    until etcd_ready "$m"; do
        live_pid "$DIR/etcd/$m.pid" "$DIR/etcd/$m " >/dev/null || die "etcd member $m exited (log: $DIR/etcd/$m.log)"
        [ "$SECONDS" -lt "$deadline" ] || die "etcd member $m did not come up within ${READY_TIMEOUT}s (log: $DIR/etcd/$m.log)"
        sleep 0.2
    done
    p=$(live_pid "$DIR/etcd/$m.pid" "$DIR/etcd/$m ")
    echo "etcd $m az${m#m} http://127.0.0.1:$(etcd_client_port "$m") $p"
}

cmd_stop() {
    local n m p
    for n in "${NODES[@]}"; do
        if p=$(live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf"); then stop_pid "$p" "node $n" & fi
    done
    wait
    # one member after the other: stopped together, the last ones wait for peers that are gone
    # (measured: 9 s together, 2 s each in turn)
    for m in "${ETCDS[@]}"; do
        if p=$(live_pid "$DIR/etcd/$m.pid" "$DIR/etcd/$m "); then stop_pid "$p" "etcd $m"; fi
    done
    rm -f "$DIR"/n*/pid "$DIR"/etcd/m*.pid
    echo "local-cluster: stopped ($DIR)"
}

# Every node lists every node as a live member and has delivered (or expired) every hint it wrote
# since its start; dies when that takes past the deadline.
cluster_settled() { # cluster_settled DEADLINE
    local n out live pending h w d e r
    while :; do
        pending=""
        for n in "${NODES[@]}"; do
            out=$("$CAIRN_BIN" admin status --endpoint "http://127.0.0.1:$(s3_port "$n")" 2>/dev/null)
            live=$(sed -n 's/^live members: //p' <<<"$out" | wc -w)
            [ "$live" -eq "${#NODES[@]}" ] || { pending+=" $n:members=$live"; continue; }
            # hints written - delivered - expired - refused: what this node still holds for a peer
            h=$(sed -nE 's/.*hints ([0-9]+) written, ([0-9]+) delivered, ([0-9]+) expired, ([0-9]+) refused.*/\1 \2 \3 \4/p' <<<"$out")
            if [ -n "$h" ]; then
                read -r w d e r <<<"$h"
                [ $((w - d - e - r)) -le 0 ] || pending+=" $n:hints=$((w - d - e - r))"
            fi
        done
        [ -z "$pending" ] && return 0
        if [ "$SECONDS" -ge "$1" ]; then
            for n in "${NODES[@]}"; do # a node that ended meanwhile, and how
                live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf" >/dev/null && continue
                node_ended "$n"
                pending+=" ($n exited$ENDED)"
            done
            die "the cluster did not settle within ${SETTLE_TIMEOUT}s:$pending"
        fi
        sleep 0.2
    done
}

# One node after the other: SIGTERM (the node drains its requests and leaves the member list,
# docs/upgrades.md), start it again on the same data and config, wait until it is ready with the
# current layout, then until the cluster settled, before the next. Every node must run at first:
# restarting one while another is down would take two away at once.
cmd_restart_rolling() {
    local n p epoch t0
    check_binaries
    [ -s "$DIR/rpc.secret" ] || die "$DIR holds no cluster: run '$0 start' first"
    make_secret_files
    export CAIRN_ACCESS_KEY CAIRN_SECRET_KEY
    for n in "${NODES[@]}"; do
        live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf" >/dev/null || die "node $n is down: start it first"
    done
    epoch=$(current_epoch)
    cluster_settled $((SECONDS + SETTLE_TIMEOUT))
    for n in "${NODES[@]}"; do
        t0=$(date +%s%N)
        p=$(live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf") && stop_pid "$p" "node $n"
        echo "restart $n: stopped after $((($(date +%s%N) - t0) / 1000000)) ms"
        node_start "$n"
        node_wait "$n" "${epoch:-1}" $((SECONDS + READY_TIMEOUT))
        echo "restart $n: ready after $((($(date +%s%N) - t0) / 1000000)) ms"
        cluster_settled $((SECONDS + SETTLE_TIMEOUT))
        echo "restart $n: cluster settled after $((($(date +%s%N) - t0) / 1000000)) ms"
    done
    for n in "${NODES[@]}"; do node_line "$n"; done
}

cmd_status() {
    local n m p up=0
    load_credentials
    for n in "${NODES[@]}"; do
        node_line "$n"
        live_pid "$DIR/$n/pid" "$DIR/$n/cairn.conf" >/dev/null && up=$((up + 1))
    done
    for m in "${ETCDS[@]}"; do
        local url az="az${m#m}"
        url="http://127.0.0.1:$(etcd_client_port "$m")"
        if p=$(live_pid "$DIR/etcd/$m.pid" "$DIR/etcd/$m "); then
            if etcd_ready "$m"; then
                echo "etcd $m $az $url $p"
            else
                echo "etcd $m $az $url $p no-leader"
            fi
        else
            echo "etcd $m $az $url - down"
        fi
    done
    local epoch
    epoch=$(current_epoch)
    echo "layout epoch ${epoch:-unknown (etcd did not answer or no layout)}; $up of ${#NODES[@]} nodes up"
}

USAGE="usage: $0 start [NODE-ID | MEMBER] | stop | status | restart-rolling"
[ $# -ge 1 ] || die "$USAGE"
setup_dir "$([ "$1" = start ] && echo 1 || echo 0)"
case $1 in
start)
    if [ $# -lt 2 ]; then
        cmd_start
    elif [[ $2 == m[1-3] ]]; then
        cmd_start_member "$2"
    else
        cmd_start_one "$2"
    fi
    ;;
stop) cmd_stop ;;
status) cmd_status ;;
restart-rolling) cmd_restart_rolling ;;
*) die "$USAGE" ;;
esac
