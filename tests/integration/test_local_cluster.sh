#!/usr/bin/env bash
# test_local_cluster: deploy/local-cluster.sh and `cairn server` in cluster mode (issue 9, section
# 2.10). With a temp CAIRN_CLUSTER_DIR and a base port whose ports are free: `start` brings up 3
# etcd members and 6 nodes and prints the 6 node lines in the exact format and the aws line; every
# node answers /health/ready, shows the same layout epoch, serves the node RPC (`cairn node-rpc
# check` with the cluster secret, refused with a wrong one) and registered its RPC address and S3
# endpoint; S3 works through a node; a SIGKILLed node shows as down; a node that ends while
# `start n3` waits is reported with its status or signal, one slow to exec is waited for;
# `start n3` brings it back on the same layout; `stop` leaves no process of the cluster; a second `start` keeps the layout
# and every node's first repair pass, over 24 bodies spread over the nodes, counts none failed.
# Then the server's own checks: the cluster secret file must not be world-readable, rpc_listen is
# required in cluster mode and refused without it, the single-node default opens no RPC port, a
# busy RPC port is reported; the script names a missing binary, etcd not starting, a port in use
# and a base port other than the cluster's. About 15 s.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_cluster.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need curl python3 ss
[ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }

LC=$H_ROOT/deploy/local-cluster.sh
export CAIRN_CLUSTER_DIR=$H_WORK/cluster CAIRN_CLUSTER=itlc STOP_TIMEOUT=10 READY_TIMEOUT=30

export CAIRN_CLUSTER_PORT
CAIRN_CLUSTER_PORT=$(h_cluster_base_port)
[ -n "$CAIRN_CLUSTER_PORT" ] || { h_bad "found free ports"; h_finish; }

# Every process of the cluster is killed by lib.sh's EXIT trap too, should a check fail midway.
track_cluster() { lc_track; }
trap 'track_cluster; h_cleanup' EXIT

line_re='^n[1-6] az[1-3] http://127\.0\.0\.1:[0-9]+ [0-9]+$'
check_lines() { # check_lines DESC OUTPUT: exactly the 6 node lines, in order, AZs as documented
    local lines want=""
    lines=$(grep -E '^n[0-9]' <<<"$2")
    for n in 1 2 3 4 5 6; do
        want+="n$n az$(((n + 1) / 2)) http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + n))"$'\n'
    done
    if [ "$(grep -cE "$line_re" <<<"$lines")" -eq 6 ] && [ "$(wc -l <<<"$lines")" -eq 6 ] &&
        [ "$(cut -d' ' -f1-3 <<<"$lines")"$'\n' = "$want" ]; then
        h_ok "$1"
    else
        h_bad "$1" "$2"
    fi
}
pid_of() { awk -v n="$1" '$1 == n { print $4 }' <<<"$2"; }
epoch_of() { # the layout epoch a node's /admin/status reports
    "$CAIRN_BIN" admin status --endpoint "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${1#n}))" \
        2>/dev/null | sed -nE 's/^cluster: layout epoch ([0-9]+) .*/\1/p'
}
L() { "$CAIRN_BIN" admin layout "$@" --etcd "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 1))" --cluster itlc; }

# ---- start ----
t0=$(date +%s%N)
if h_run "local-cluster.sh start" "$LC" start; then
    echo "   start took $((($(date +%s%N) - t0) / 1000000)) ms"
fi
START_OUT=$H_OUT
track_cluster
check_lines "start printed the 6 node lines '<node-id> <az> <endpoint> <pid>'" "$START_OUT"
grep -Eq "^AWS_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY .*aws --endpoint-url http://127\.0\.0\.1:[0-9]+ " \
    <<<"$START_OUT" && h_ok "start printed the aws line" || h_bad "aws line" "$START_OUT"
h_eq "the RPC secret file is mode 600" 600 "$(stat -c %a "$CAIRN_CLUSTER_DIR/rpc.secret")"
[ ! -e "$CAIRN_CLUSTER_DIR/credentials" ] && h_ok "credentials from the environment (no file)" ||
    h_bad "credentials from the environment"

ready=0 epochs=""
for n in n1 n2 n3 n4 n5 n6; do
    curl -fsS -o /dev/null -m 2 "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${n#n}))/health/ready" &&
        ready=$((ready + 1))
    epochs+="$(epoch_of "$n") "
done
h_eq "every node answers /health/ready" 6 "$ready"
h_eq "every node shows layout epoch 1" "1 1 1 1 1 1 " "$epochs"

# ---- the node RPC of every node, and the member records ----
h_run "layout show" L show
SHOW=$H_OUT
export CAIRN_RPC_SECRET
CAIRN_RPC_SECRET=$(cat "$CAIRN_CLUSTER_DIR/rpc.secret")
rpc_ok=0 rec_ok=0 refused=0
for n in n1 n2 n3 n4 n5 n6; do
    rpc=$(awk -v n="$n" '$1 == n && $2 == "rpc" { print $3 }' <<<"$SHOW")
    s3=$(awk -v n="$n" '$1 == n && $2 == "rpc" { print $5 }' <<<"$SHOW")
    [ "$rpc" = "127.0.0.1:$((CAIRN_CLUSTER_PORT + 40 + ${n#n}))" ] &&
        [ "$s3" = "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${n#n}))" ] && rec_ok=$((rec_ok + 1))
    out=$("$CAIRN_BIN" node-rpc check "$n@$rpc" 2>&1) && grep -q "^node $n, .* 4 drives" <<<"$out" &&
        rpc_ok=$((rpc_ok + 1))
    if ! out=$(CAIRN_RPC_SECRET=not-the-cluster-secret "$CAIRN_BIN" node-rpc check "$n@$rpc" 2>&1) &&
        grep -q "CM_ERR_AUTH" <<<"$out"; then
        refused=$((refused + 1))
    fi
done
h_eq "every member record names its RPC address and S3 endpoint" 6 "$rec_ok"
h_eq "every node's RPC answers node-rpc check (4 drives)" 6 "$rpc_ok"
h_eq "every node's RPC refuses a wrong cluster secret" 6 "$refused"
h_run "n2's RPC writes, reads back and deletes a chunk on drive 3" \
    "$CAIRN_BIN" node-rpc check --write 3 --size 300000 "n2@127.0.0.1:$((CAIRN_CLUSTER_PORT + 42))"
h_fails_with "a wrong cluster secret is refused" "CM_ERR_AUTH" \
    env CAIRN_RPC_SECRET=not-the-cluster-secret "$CAIRN_BIN" node-rpc check \
    "n4@127.0.0.1:$((CAIRN_CLUSTER_PORT + 44))"
h_run "admin status shows the RPC's refusal" "$CAIRN_BIN" admin status \
    --endpoint "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 24))"
grep -Eq "^node RPC: port $((CAIRN_CLUSTER_PORT + 44)), [0-9]+ requests, 2 refused" <<<"$H_OUT" &&
    h_ok "n4 counted its two refused RPC requests" || h_bad "n4 RPC counters" "$H_OUT"

# ---- S3 through one node (stored by that node alone in this slice) ----
export CAIRN_ENDPOINT=http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 21))
h_gen "$H_WORK/obj" 300000 9
h_run "create a bucket through n1" "$H_PY" "$H_DIR/s3raw.py" mb lcb
h_run "put through n1" "$H_PY" "$H_DIR/s3raw.py" put lcb o1 "$H_WORK/obj"
h_run "get through n1" "$H_PY" "$H_DIR/s3raw.py" get lcb o1 "$H_WORK/back"
h_eq "object reads back" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back")"

# ---- a node killed, seen down, started again ----
p3=$(pid_of n3 "$START_OUT")
kill -KILL "$p3"
for ((i = 0; i < 50; i++)); do kill -0 "$p3" 2>/dev/null || break; sleep 0.1; done
h_run "status after SIGKILL of n3" "$LC" status
grep -Eq "^n3 az2 http://127\.0\.0\.1:$((CAIRN_CLUSTER_PORT + 23)) - down$" <<<"$H_OUT" &&
    [ "$(grep -cE "$line_re" <<<"$H_OUT")" -eq 5 ] && h_ok "status: n3 down, the 5 others up" ||
    h_bad "status shows n3 down" "$H_OUT"
grep -Eq "^etcd m1 az1 http://127\.0\.0\.1:$((CAIRN_CLUSTER_PORT + 1)) [0-9]+$" <<<"$H_OUT" &&
    [ "$(grep -c '^etcd m' <<<"$H_OUT")" -eq 3 ] && h_ok "status lists the 3 etcd members" ||
    h_bad "status etcd members" "$H_OUT"
# A node that ends while start waits for it is reported with how it ended (the script's child).
printf '#!/bin/sh\n[ "$1" = server ] && kill -KILL $$\nexec "%s" "$@"\n' "$CAIRN_BIN" >"$H_WORK/killed"
chmod +x "$H_WORK/killed"
h_fails_with "a node killed while start waits is reported so" "node n3 exited, killed by SIGKILL" \
    env CAIRN_BIN="$H_WORK/killed" "$LC" start n3
h_fails_with "a node that exits while start waits is reported with its status" \
    "node n3 exited, exit status 2" env CAIRN_CLUSTER_CONF_EXTRA="no_such_key = 1" "$LC" start n3
# The shell forks, then the child execs cairn: until the exec its command line is the script's
# own, and a start that took that moment for a node that had exited failed on a loaded machine.
# Here n3's log is a FIFO nobody reads yet, so the shell's open for the redirection waits before
# the exec: start must wait for it too, and succeed once a reader comes.
N3LOG=$CAIRN_CLUSTER_DIR/n3/server.log
mv "$N3LOG" "$H_WORK/n3-before.log" && mkfifo "$N3LOG"
before=$(cat "$CAIRN_CLUSTER_DIR/n3/pid")
"$LC" start n3 >"$H_WORK/slow.out" 2>&1 &
SLOW=$!
h_track "$SLOW"
for ((i = 0; i < 100; i++)); do
    p=$(cat "$CAIRN_CLUSTER_DIR/n3/pid")
    [ "$p" != "$before" ] && grep -q wait_for_partner "/proc/$p/wchan" 2>/dev/null && break
    sleep 0.1 # polling for the child's wait in open(2)
done
sleep 0.5 # the start's first checks of the node come meanwhile (the bug: within milliseconds)
cat "$N3LOG" >"$H_WORK/n3-fifo.log" &
h_track "$!"
for ((i = 0; i < 300; i++)); do kill -0 "$SLOW" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$SLOW" 2>/dev/null; then
    h_bad "start n3 waits for a node slow to exec" "no answer within 30 s: $(cat "$H_WORK/slow.out")"
elif wait "$SLOW"; then
    h_ok "start n3 waits for a node slow to exec (not taken for one that exited)"
else
    h_bad "start n3 waits for a node slow to exec" "$(cat "$H_WORK/slow.out")"
fi
p=$(cat "$CAIRN_CLUSTER_DIR/n3/pid")
kill -TERM "$p"
for ((i = 0; i < 100; i++)); do [ -e "/proc/$p" ] || break; sleep 0.1; done
rm -f "$N3LOG" && mv "$H_WORK/n3-before.log" "$N3LOG"
if h_run "start n3" "$LC" start n3; then
    grep -Eq "^n3 az2 http://127\.0\.0\.1:$((CAIRN_CLUSTER_PORT + 23)) [0-9]+$" <<<"$H_OUT" &&
        [ "$(pid_of n3 "$H_OUT")" != "$p3" ] && h_ok "start n3 printed its line with a new pid" ||
        h_bad "start n3 line" "$H_OUT"
fi
track_cluster
h_eq "n3 is back on layout epoch 1" 1 "$(epoch_of n3)"
h_run "n3's RPC answers again" "$CAIRN_BIN" node-rpc check "n3@127.0.0.1:$((CAIRN_CLUSTER_PORT + 43))"
h_fails_with "start of an unknown node is refused" "no node 'n7'" "$LC" start n7

# ---- bodies over the nodes, for the repair passes of the second start ----
h_run "24 bodies of 300 KiB through n1 (cells on every node)" "$CAIRN_BIN" bench --quiet \
    --endpoint "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 21))" --op put --bucket lcstart \
    --size 300K --keys 24 --count 24 --concurrency 4
declare -A LOG_AT # each node's log size before the stop: what the second start logs comes after
for n in n1 n2 n3 n4 n5 n6; do LOG_AT[$n]=$(stat -c %s "$CAIRN_CLUSTER_DIR/$n/server.log"); done
new_start_passes() { # the start passes each node logged since LOG_AT
    local n
    for n in n1 n2 n3 n4 n5 n6; do
        tail -c +"$((LOG_AT[$n] + 1))" "$CAIRN_CLUSTER_DIR/$n/server.log"
    done | grep "repair pass (start) done"
}

# ---- stop: nothing left ----
pids=()
for f in "$CAIRN_CLUSTER_DIR"/n*/pid "$CAIRN_CLUSTER_DIR"/etcd/m*.pid; do pids+=("$(cat "$f")"); done
t0=$(date +%s%N)
h_run "local-cluster.sh stop" "$LC" stop
echo "   stop took $((($(date +%s%N) - t0) / 1000000)) ms"
# An exited process may stay a zombie until init reaps it: it holds no port, file or memory.
# The stat line is read once: a zombie reaped between two reads is gone, not running.
running() {
    local st
    st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    ! grep -qE '^[0-9]+ \(.*\) [ZX] ' <<<"$st"
}
running_in_dir() { # pids of running processes whose command line names the cluster dir
    local p
    for p in $(pgrep -f "$CAIRN_CLUSTER_DIR"); do running "$p" && echo "$p"; done
}
left=0
for p in "${pids[@]}"; do running "$p" && left=$((left + 1)); done
h_eq "no node or etcd process of the cluster left (${#pids[@]} stopped)" 0 "$left"
h_eq "no process names the cluster dir" "" "$(running_in_dir)"
grep -q "stopped$" "$CAIRN_CLUSTER_DIR/n1/server.log" && h_ok "n1 logged a clean stop" ||
    h_bad "n1 clean stop" "$(tail -5 "$CAIRN_CLUSTER_DIR/n1/server.log")"
h_run "status after stop" "$LC" status
[ "$(grep -c ' - down$' <<<"$H_OUT")" -eq 9 ] && h_ok "status: 6 nodes and 3 etcd members down" ||
    h_bad "status after stop" "$H_OUT"

# ---- a second start keeps the layout ----
h_run "second start" "$LC" start
track_cluster
check_lines "second start printed the 6 node lines" "$H_OUT"
grep -q "layout applied" <<<"$H_OUT" && h_bad "the layout was not applied again" "$H_OUT" ||
    h_ok "the layout was not applied again"
h_eq "n6 is on layout epoch 1 after the restart" 1 "$(epoch_of n6)"
h_run "layout show after the restart" L show
grep -Eq "^cluster itlc: layout epoch 1 " <<<"$H_OUT" && h_ok "etcd still holds epoch 1" ||
    h_bad "epoch 1 kept" "$H_OUT"
h_run "object written before the restart reads back through n1" \
    "$H_PY" "$H_DIR/s3raw.py" get lcb o1 "$H_WORK/back2"
h_eq "object still byte-exact" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back2")"
# Every node's first repair pass waits until all six are in the member list (or three lease
# TTLs, 15 s here): started while the others still registered, it found their cells unreachable
# and counted every body it checked as failed.
for _ in $(seq 300); do
    [ "$(new_start_passes | grep -c .)" -ge 6 ] && break
    sleep 0.1 # polling the nodes' logs, not synchronisation
done
new_passes=$(new_start_passes)
h_eq "every node ran its start pass after the second start" 6 "$(grep -c . <<<"$new_passes")"
h_eq "no start pass counted a body failed (the nodes were all up)" "" \
    "$(grep -v " 0 failed" <<<"$new_passes")"
h_run "stop again" "$LC" stop
h_eq "no process names the cluster dir after the second stop" "" "$(running_in_dir)"

h_fails_with "start with another base port is refused" "was created with base port $CAIRN_CLUSTER_PORT" \
    env CAIRN_CLUSTER_PORT=$((CAIRN_CLUSTER_PORT + 100)) "$LC" start
h_run "status goes by the cluster's own ports whatever CAIRN_CLUSTER_PORT says" \
    env CAIRN_CLUSTER_PORT=$((CAIRN_CLUSTER_PORT + 100)) "$LC" status
grep -q "^n1 az1 http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 21)) - down$" <<<"$H_OUT" &&
    h_ok "status: the original ports" || h_bad "status ports" "$H_OUT"

# ---- the server's cluster-mode checks ----
conf() { # conf FILE RPC_LISTEN_LINE SECRET_FILE_LINE
    printf '[cluster]\netcd = http://127.0.0.1:1\nid = x\nnode_id = n1\n%s\n%s\n' "$2" "$3" >"$1"
}
conf "$H_WORK/norpc.conf" "" ""
h_fails_with "cluster mode without rpc_listen is refused" "needs rpc_listen" \
    "$CAIRN_BIN" server --config "$H_WORK/norpc.conf" --check-config
printf '[cluster]\nrpc_listen = 127.0.0.1:1\n' >"$H_WORK/rpconly.conf"
h_fails_with "rpc_listen without [cluster] etcd/id/node_id is refused" "need a \[cluster\] section" \
    "$CAIRN_BIN" server --config "$H_WORK/rpconly.conf" --check-config
conf "$H_WORK/wild.conf" "rpc_listen = 0.0.0.0:$(h_free_port)" ""
h_fails_with "a wildcard rpc_listen needs addr" "set \[cluster\] addr" \
    "$CAIRN_BIN" server --config "$H_WORK/wild.conf" --check-config
echo "a-cluster-secret-of-some-length" >"$H_WORK/open.secret"
chmod 644 "$H_WORK/open.secret"
conf "$H_WORK/open.conf" "rpc_listen = 127.0.0.1:$(h_free_port)" \
    "rpc_secret_file = $H_WORK/open.secret"
h_fails_with "a world-readable secret file is refused" "readable by every user.*chmod 600" \
    env -u CAIRN_RPC_SECRET "$CAIRN_BIN" server --config "$H_WORK/open.conf" \
    --data "$H_WORK/d1" --listen "127.0.0.1:$(h_free_port)"
conf "$H_WORK/short.conf" "rpc_listen = 127.0.0.1:$(h_free_port)" ""
h_fails_with "no secret at all is refused" "set CAIRN_RPC_SECRET or \[cluster\] rpc_secret_file" \
    env -u CAIRN_RPC_SECRET "$CAIRN_BIN" server --config "$H_WORK/short.conf" \
    --data "$H_WORK/d2" --listen "127.0.0.1:$(h_free_port)"
h_fails_with "a short secret is refused" "too short" env CAIRN_RPC_SECRET=short \
    "$CAIRN_BIN" server --config "$H_WORK/short.conf" --data "$H_WORK/d3" \
    --listen "127.0.0.1:$(h_free_port)"

# ---- the single-node default opens one port only ----
h_start
ports=$(ss -ltnpH 2>/dev/null | grep "pid=$H_PID," | awk '{ print $4 }' | sed 's/.*://' | sort -u)
h_eq "the single-node server listens on its S3 port only" "$H_PORT" "$ports"

# ---- ports in use, a missing binary ----
# a port held by another program (cairn's own listeners use SO_REUSEPORT, so a second cairn on
# the same port would share it rather than fail: that is why local-cluster.sh probes ports first)
hold_port() { # hold_port PORT FILE: listen on PORT (0: any) in the background, its port into FILE
    "$H_PY" -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
open(sys.argv[2], "w").write(str(s.getsockname()[1])); time.sleep(60)' "$1" "$2" </dev/null \
        >/dev/null 2>&1 &
    h_track $!
    for ((i = 0; i < 50; i++)); do [ -s "$2" ] && break; sleep 0.1; done
}
hold_port 0 "$H_WORK/held"
held=$(cat "$H_WORK/held")
conf "$H_WORK/busy.conf" "rpc_listen = 127.0.0.1:$held" ""
h_fails_with "the server says when its RPC port is in use" \
    "cannot listen for the node RPC on 127.0.0.1:$held" \
    env CAIRN_RPC_SECRET=a-cluster-secret-long-enough timeout 20 \
    "$CAIRN_BIN" server --config "$H_WORK/busy.conf" --data "$H_WORK/d4" \
    --listen "127.0.0.1:$(h_free_port)"
h_fails_with "local-cluster.sh: a missing binary is named" "no cairn binary at /nonexistent/cairn" \
    env CAIRN_BIN=/nonexistent/cairn CAIRN_CLUSTER_DIR="$H_WORK/c2" "$LC" start
h_fails_with "local-cluster.sh: etcd not coming up is reported" "etcd member m1 exited \(log: " \
    env CAIRN_ETCD=/bin/false CAIRN_CLUSTER_DIR="$H_WORK/c4" CAIRN_CLUSTER_PORT="$(h_cluster_base_port)" \
    "$LC" start
# n1's S3 port held by another program: start stops there, naming it (etcd came up first: stop it)
base3=$(h_cluster_base_port)
hold_port $((base3 + 21)) "$H_WORK/held3"
busy=$(cat "$H_WORK/held3")
h_fails_with "local-cluster.sh: a port in use is named" "port $busy \(node n1\) is in use" \
    env CAIRN_CLUSTER_DIR="$H_WORK/c3" CAIRN_CLUSTER_PORT="$base3" "$LC" start
CAIRN_CLUSTER_DIR="$H_WORK/c3" "$LC" stop >/dev/null
h_eq "nothing of that attempt left running" "" "$(CAIRN_CLUSTER_DIR=$H_WORK/c3 running_in_dir)"
h_stop
h_finish
