#!/usr/bin/env bash
# test_cluster_tombstones: tombstone collection (docs/replication.md, "Tombstone collection") on
# three clustered nodes n1..n3 in three AZs (every partition's N = 3 homes are the three nodes)
# with one etcd member, [cluster] tombstone_grace_s = 4 and maintenance_s = 2 (an anti-entropy
# tick every 2 s, not 10: what a tick does is the same). 20 keys are written through n1, 10 of
# them deleted through n2; within a few anti-entropy ticks the partitions' first
# homes report exactly 10 tombstones collected (each counted once, when every home dropped it);
# afterwards every deleted key answers 404 through every node, a listing through each node
# shows the 10 others, and a deleted key written again reads back; n1's /metrics parses and
# carries the cluster families. About 15 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and clustered servers"
. "$H_DIR/lib_etcd.sh"
h_need curl python3
[ -x "$ETCD_BIN" ] || { echo "SKIP $H_NAME: $ETCD_BIN is not installed"; exit 77; }

etcd_start 1 || { h_bad "etcd starts"; h_finish; }
NODES=(n1 n2 n3)
declare -A PORT RPORT PID
for n in "${NODES[@]}"; do PORT[$n]=$(h_free_port) RPORT[$n]=$(h_free_port); done
export CAIRN_RPC_SECRET=cluster-tombstones-test-secret
E=(--etcd "$ETCD_ENDPOINTS" --cluster ct)
for i in 1 2 3; do
    h_run "layout add n$i in az$i" "$CAIRN_BIN" admin layout add "n$i" \
        --addr "127.0.0.1:${RPORT[n$i]}" --az "az$i" --drives 3 "${E[@]}"
done
h_run "layout apply" "$CAIRN_BIN" admin layout apply --yes --objects 2000 "${E[@]}"
CL_CLUSTER_CONF="tombstone_grace_s = 4"
export CAIRN_CLUSTER_MAINTENANCE_S=2 # [cluster] maintenance_s of the nodes started here
for n in "${NODES[@]}"; do cl_node_start "$n" ct || h_finish; done

s3() { # s3 NODE CMD ARGS...
    local n=$1
    shift
    CAIRN_ENDPOINT="http://127.0.0.1:${PORT[$n]}" "$H_PY" "$H_DIR/s3raw.py" "$@"
}
# The sum over the nodes of a "replication" counter of /admin/status.
counter_sum() {
    H_DIR=$H_DIR "$H_PY" - "$1" "${PORT[n1]}" "${PORT[n2]}" "${PORT[n3]}" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
total = 0
for port in sys.argv[2:]:
    os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % port
    st, _, body = s3raw.request("GET", "/admin/status")
    doc = json.loads(body)
    rep = doc.get("replication") or doc.get("cluster", {}).get("replication") or {}
    total += rep.get(sys.argv[1], 0)
print(total)
PY
}
collected_is() { [ "$(counter_sum tombs_collected)" = "$1" ]; }

h_until_ok "bucket tomb created through n1" 10 s3 n1 mb tomb
echo "payload" >"$H_WORK/obj"
bad=0
for i in $(seq -w 1 20); do s3 n1 put tomb "k$i" "$H_WORK/obj" >/dev/null || bad=$((bad + 1)); done
h_eq "20 PUTs through n1" 0 "$bad"
bad=0 t0=$(date +%s%N)
for i in $(seq -w 1 10); do s3 n2 rm tomb "k$i" >/dev/null || bad=$((bad + 1)); done
h_eq "10 DELETEs through n2" 0 "$bad"
n=$(counter_sum tombs_collected)
if [ $(($(date +%s%N) - t0)) -lt 4000000000 ]; then # no tombstone is older than the grace yet
    h_eq "nothing collected within the grace (4 s)" 0 "$n"
else
    echo "   (the deletes took over 4 s on this machine: the within-grace check is skipped)"
fi

h_until_ok "the first homes report 10 tombstones collected" 45 collected_is 10
sleep 3 # one more anti-entropy tick (2 s): nothing more to collect, nothing comes back
h_eq "still exactly 10 collected after another tick" 10 "$(counter_sum tombs_collected)"
sum=0
for n in "${NODES[@]}"; do
    c=$("$CAIRN_BIN" admin status --endpoint "http://127.0.0.1:${PORT[$n]}" 2>&1 |
        sed -nE 's/^metadata: .*tombstones collected ([0-9]+)$/\1/p')
    sum=$((sum + ${c:-1000}))
done
h_eq "cairn admin status: the nodes' 'tombstones collected' add up to 10" 10 "$sum"

for n in "${NODES[@]}"; do
    answers=""
    for i in $(seq -w 1 10); do answers+="$(s3 "$n" head tomb "k$i" 2>&1 | cut -c1-3) "; done
    h_eq "the 10 deleted keys answer 404 through $n" "$(printf '404 %.0s' $(seq 10))" "$answers"
    H_OUT=$(H_DIR=$H_DIR CAIRN_ENDPOINT="http://127.0.0.1:${PORT[$n]}" "$H_PY" - <<'PY'
import os, re, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
st, _, body = s3raw.request("GET", "/tomb", query={"list-type": "2"})
print(" ".join(re.findall(r"<Key>([^<]*)</Key>", body.decode())))
PY
)
    h_eq "a listing through $n shows the 10 live keys" \
        "k11 k12 k13 k14 k15 k16 k17 k18 k19 k20" "$H_OUT"
done
h_run "a collected key written again through n3" s3 n3 put tomb k01 "$H_WORK/obj"
h_run "... reads back through n1" s3 n1 get tomb k01 "$H_WORK/back"
h_eq "... byte-exact" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back")"
# a cluster node's /metrics parses strictly and carries the cluster families (docs/metrics.md)
if h_run "n1 /metrics parses" "$H_PY" "$H_DIR/metrics.py" scrape "http://127.0.0.1:${PORT[n1]}"; then
    h_run "... with the quorum, degraded-read and repair families" curl -fsS \
        -o "$H_WORK/metrics.txt" "http://127.0.0.1:${PORT[n1]}/metrics"
    h_eq "... cluster families present" 3 "$(grep -cE \
        '^cairn_(quorum_failures_total|degraded_reads_total|repair_running) ' "$H_WORK/metrics.txt")"
fi

for n in "${NODES[@]}"; do cl_node_stop "$n"; done
etcd_stop
if [ "$H_FAILS" -gt 0 ]; then
    for n in "${NODES[@]}"; do echo "---- $n log"; grep -E "tombstone|anti-entropy" "$H_WORK/$n.log" | tail -10; done
fi
h_finish
