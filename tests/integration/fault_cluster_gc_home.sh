#!/usr/bin/env bash
# fault_cluster_gc_home: the old places a repair swap leaves are freed after the grace period,
# and a cell that moved back to its old place within it is not (docs/chunks.md, "Obsolete cells
# are freed after a grace period"). The local cluster with gc_grace_s = 20 and a maintenance tick
# every 2 s (maintenance_s; what a tick does is the same as every 10 s) takes 8 objects; n3 is
# SIGKILLed and, once its member lease lapsed, a repair on every node rebuilds its cells on
# handoff drives (its own places become garbage entries); n3 starts again and the next repair
# moves the cells home, to those very places (the handoffs become garbage entries). Past the
# grace period and a maintenance tick, the nodes have freed garbage, and every body still has
# k+m healthy cells at its homes and reads back byte-exact through every node: the reclaim of
# the first entries (the quorum's record names those places again) deleted none of them.
# About 45 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need curl python3 ss
[ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }

. "$(dirname "$0")/lib_cluster.sh"
lc_setup itgch
GRACE=20
export CAIRN_CLUSTER_GC_GRACE_S=$GRACE CAIRN_CLUSTER_MAINTENANCE_S=2
READY_TIMEOUT=30
NOBJ=8

ep() { echo "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${1#n}))"; }
s3() { CAIRN_ENDPOINT=$(ep "$1") "$H_PY" "$H_DIR/s3raw.py" "${@:2}" >/dev/null 2>&1; }
repair_all() { # repair_all NODES...: a pass on each, waited for
    local n
    for n in "$@"; do
        "$CAIRN_BIN" admin repair --wait --endpoint "$(ep "$n")" >>"$H_WORK/repair.$n" 2>&1
    done
}
not_whole() { # bodies without k+m healthy cells at their homes, asked through n1
    local i bad=0
    for ((i = 0; i < NOBJ; i++)); do
        "$CAIRN_BIN" admin object-cells rbk "o$i" --endpoint "$(ep n1)" >"$H_WORK/cells.$i" 2>&1 ||
            bad=$((bad + 1))
    done
    echo "$bad"
}
gc_freed() { # the sum of gc_freed over the nodes' /admin/status
    local n sum=0 v
    for n in n1 n2 n3 n4 n5 n6; do
        v=$(CAIRN_ENDPOINT=$(ep "$n") "$H_PY" - "$H_DIR" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[1])
import s3raw
st, _, body = s3raw.request("GET", "/admin/status")
m = re.search(rb'"gc_freed":(\d+)', body)
print(m.group(1).decode() if m else 0)
PY
)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

h_run "local-cluster.sh start" "$LC" start || h_finish
lc_track
h_run "create a bucket through n1" s3 n1 mb rbk
ok=0
for ((i = 0; i < NOBJ; i++)); do
    h_gen "$H_WORK/o$i" $((300000 + i * 250000)) "$i"
    s3 n1 put rbk "o$i" "$H_WORK/o$i" && ok=$((ok + 1))
done
h_eq "$NOBJ objects written through n1" "$NOBJ" "$ok"
freed0=$(gc_freed)

p3=$(awk '$1 == "n3" { print $4 }' <<<"$("$LC" status)")
[ -n "$p3" ] || { h_bad "n3 runs" "$("$LC" status)"; h_finish; }
kill -KILL "$p3"
# its member lease (member_ttl_s = 5) lapses: the others count it dead (polled, 15 s at most)
for ((i = 0; i < 75; i++)); do
    seen=0
    for n in n1 n2 n4 n5 n6; do
        grep -q "az2: 1/2 up" <<<"$("$CAIRN_BIN" admin status --endpoint "$(ep "$n")" 2>/dev/null)" &&
            seen=$((seen + 1))
    done
    [ "$seen" -eq 5 ] && break
    sleep 0.2 # polling the member lists
done
h_eq "the other nodes count n3 dead" 5 "$seen"
repair_all n1 n2 n4 n5 n6
t1=$(date +%s) # the first entries fall due GRACE s after this (their swaps ended before)
down=$(not_whole)
[ "$down" -gt 0 ] && h_ok "with n3 down, $down bodies healed onto handoffs (not at home)" ||
    h_bad "bodies on handoffs while n3 is down" "$down"

h_run "start n3 again" "$LC" start n3 || h_finish
lc_track
for _ in 1 2 3 4; do
    repair_all n1 n2 n3 n4 n5 n6
    bad=$(not_whole)
    [ "$bad" -eq 0 ] && break
    sleep 2
done
h_eq "after n3 is back, every body has k+m healthy cells at its homes" 0 "$bad"
t2=$(date +%s)
[ $((t2 - t1)) -lt "$GRACE" ] && h_ok "the cells went home $((t2 - t1)) s after they left, within the grace period" ||
    h_bad "cells home within the grace period" "$((t2 - t1)) s"

wait_s=$((GRACE + 4 - (t2 - t1))) # the first entries' grace and a maintenance tick (2 s)
sleep $((wait_s > 4 ? wait_s : 4))
freed=$(gc_freed)
for _ in $(seq 15); do # a slow (sanitizer) server's tick may come late: poll up to 30 s more
    [ "$freed" -gt "$freed0" ] && break
    sleep 2
    freed=$(gc_freed)
done
[ "$freed" -gt "$freed0" ] && h_ok "the nodes freed garbage past the grace period ($((freed - freed0)) entries)" ||
    h_bad "garbage freed" "$freed0 -> $freed"
h_eq "every body still has k+m healthy cells at its homes after the reclaim" 0 "$(not_whole)"
ok=0
for n in n1 n2 n3 n4 n5 n6; do
    for ((i = 0; i < NOBJ; i++)); do
        rm -f "$H_WORK/back"
        s3 "$n" get rbk "o$i" "$H_WORK/back" && cmp -s "$H_WORK/o$i" "$H_WORK/back" && ok=$((ok + 1))
    done
done
h_eq "every object reads back byte-exact through every node" $((6 * NOBJ)) "$ok"
h_finish
