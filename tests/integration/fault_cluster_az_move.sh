#!/usr/bin/env bash
# fault_cluster_az_move: with a whole AZ down, a repair pass still moves cells that were handed
# off at write time back home, and swaps the record (docs/cluster.md, the cut GET; docs/chunks.md,
# "A GET and a concurrent heal"). Five objects are PUT through n1-n5 while n6 is cut off both ways
# (RPC fault rules): n6's two cells of each body go to handoffs (n5, its AZ partner, under the AZ
# cap). Then n1 and n2 (all of az1) are SIGKILLed, n6 is reachable again and a repair pass runs on
# n3-n6 at once: the bodies whose partition n3-n6 heal get their two cells moved home with az1
# down, and every object still reads byte-exact through n3-n6. Such a move deleted the old places
# at once before the obsolete cells were deferred (gc_grace_s), which is what cut a GET streaming
# the old layout (exactly the two cells of one node "not found"). About 15 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_setup itazmv
export CAIRN_RPC_FAULTS_FILE=$H_WORK/faults
: >"$CAIRN_RPC_FAULTS_FILE"
lc_up itazmv boto3
EPS=$(lc_endpoints)
N=5 SIZE=$((3 * 1024 * 1024 + 5))
ep() { echo "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${1#n}))"; }
cells() { # cells TAG: each object's cells as n3 reports them, into $H_WORK/TAG.N
    local i
    for ((i = 0; i < N; i++)); do
        "$CAIRN_BIN" admin object-cells azmv "o$i" --endpoint "$(ep n3)" >"$H_WORK/$1.$i" 2>&1
    done
}

NODES="n1 n2 n3 n4 n5 n6"
rules() { # rules SPEC WANT: write the fault rules, wait until every node in NODES logged WANT again
    local n k before=()
    for n in $NODES; do
        before+=("$(grep -c "RPC fault rules now: $2" "$CAIRN_CLUSTER_DIR/$n/server.log")")
    done
    printf '%s' "$1" >"$CAIRN_RPC_FAULTS_FILE"
    for ((k = 0; k < 100; k++)); do # the maintenance thread reads them (busy under load)
        local late=0 i=0
        for n in $NODES; do
            [ "$(grep -c "RPC fault rules now: $2" "$CAIRN_CLUSTER_DIR/$n/server.log")" -gt \
                "${before[i]}" ] || late=1
            i=$((i + 1))
        done
        [ $late = 0 ] && return 0
        sleep 0.1
    done
    echo "   (not every node took the rules \"$1\" within 10 s)"
}
# n6 cut off both ways: every writer hands its cells off, and n6's own repair pass (a start or
# "node back" one of the cluster's first seconds) cannot read sources to move them home early
rules '*>n6:refuse,n6>*:refuse' '\*>n6'
h_run "$N objects put through n1-n5 while n6 is cut off" "$H_PY" "$H_DIR/cluster_read.py" put \
    "${EPS%,*}" azmv "$N" "$SIZE"
cells before # (the layout: NOT HOME is where a cell is, whatever its stat)
away=$(cat "$H_WORK"/before.* | grep -c "NOT HOME")
if [ "$away" = $((2 * N)) ]; then
    h_ok "n6's two cells of every body were handed off at write time"
else
    h_bad "n6's two cells of every body were handed off at write time" "$(cat "$H_WORK"/before.*)"
fi

NODES="n3 n4 n5 n6"
# az1 goes before n6 is reachable again: every move below is made with a whole AZ down
kill -KILL "$(lc_pid n1)" "$(lc_pid n2)"
echo "killed n1 and n2 (az1)"
rules '' '(none)'
pids=()
for n in n3 n4 n5 n6; do
    "$CAIRN_BIN" admin repair --wait --endpoint "$(ep "$n")" >"$H_WORK/repair.$n" 2>&1 &
    pids+=($!)
done
wait "${pids[@]}" || true # exit 3: az1's cells cannot be rebuilt (no room under the AZ cap)
cells after
moved=0
for ((i = 0; i < N; i++)); do
    if grep -q "NOT HOME" "$H_WORK/before.$i" && grep -q "8 healthy, 8 at home" "$H_WORK/after.$i"; then
        moved=$((moved + 1))
    fi
done
echo "   bodies whose handed-off cells moved home with az1 down: $moved of $N"
if [ "$moved" -gt 0 ]; then
    h_ok "a pass moved handed-off cells home with a whole AZ down"
else
    h_bad "a pass moved handed-off cells home with a whole AZ down" "$(cat "$H_WORK"/after.*)"
fi
h_run "GETs through n3-n6 byte-exact after the moves" "$H_PY" - "$EPS" "$N" "$SIZE" <<'PY'
import os, sys
sys.path.insert(0, os.environ["H_DIR"])
from cluster_read import body
from lc_boto import client
eps, n, size = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
for node in (2, 3, 4, 5):
    cl = client(eps[node])
    for i in range(n):
        got = cl.get_object(Bucket="azmv", Key="o%d" % i)["Body"].read()
        if got != body(i, size):
            sys.exit("o%d through n%d: %d bytes, not the object" % (i, node + 1, len(got)))
print("ok - %d GETs whole" % (4 * n))
PY
h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
