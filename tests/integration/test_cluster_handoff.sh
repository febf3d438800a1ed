#!/usr/bin/env bash
# test_cluster_handoff: strong reads across a layout change that moves partitions to a new node
# (docs/replication.md, "Layout changes"). Three clustered nodes n1..n3 in az1..az3 (every
# partition on all three) and one etcd member; n4 starts outside the layout. Phase 1: 6 s3hist
# clients put and get 8 keys of a strong bucket through n1 and n3 while n1 and n3 cannot reach n2
# (RPC fault rules), so the latest versions are on n1 and n3 only. Then n4 joins az1 (`layout
# add`, `apply`): the partitions whose az1 home becomes n4 move from {n1, n2, n3} to
# {n4, n2, n3}, where n4 is empty and n2 stale. Phase 2, the faults cleared: clients read the
# keys through n2 and n4, whose new quorum {n2, n4} holds none of the phase-1 writes; with the
# handoff a read also needs R of the previous homes and returns them (without it, those reads go
# back in time and lincheck fails). Meanwhile n2 cannot reach n4, so n2 cannot settle the
# handoff (its anti-entropy over both home sets needs every new home) while n1, n3 and n4 do
# (status handoff_active 0, a few seconds after the apply); n2 is restarted and must resume the
# handoff from DATA/handoff.layout (handoff_active 1 again: a node restarted without it would
# read its new homes alone). The fault cleared, n2 settles too, and final reads of every key
# through every node end the history, which lincheck.py must find linearizable with no
# acknowledged write lost. 25-40 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and clustered servers"
. "$H_DIR/lib_etcd.sh"
TOOLS=$H_ROOT/tests/tools
export CAIRN_RPC_FAULTS_FILE=$H_WORK/faults
: >"$CAIRN_RPC_FAULTS_FILE"
cl_cluster hoff 3 n1 n2 n3
for n in n1 n2 n3; do cl_node_start "$n" hoff || h_finish; done
PORT[n4]=$(h_free_port) RPORT[n4]=$(h_free_port)
cl_node_start n4 hoff || h_finish
ep() { echo "http://127.0.0.1:${PORT[$1]}"; }

rules() {
    printf '%s' "$1" >"$CAIRN_RPC_FAULTS_FILE.tmp" && mv "$CAIRN_RPC_FAULTS_FILE.tmp" "$CAIRN_RPC_FAULTS_FILE"
    sleep 0.5 # every node reloads the file within 200 ms
}
# The replication counter $1 of every node given, space-separated.
counters() {
    local key=$1
    shift
    H_DIR=$H_DIR "$H_PY" - "$key" "$@" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
out = []
for port in sys.argv[2:]:
    os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % port
    st, _, body = s3raw.request("GET", "/admin/status")
    doc = json.loads(body)
    rep = doc.get("replication") or doc.get("cluster", {}).get("replication") or {}
    out.append(str(rep.get(sys.argv[1], "?")))
print(" ".join(out))
PY
}
ALL=("${PORT[n1]}" "${PORT[n2]}" "${PORT[n3]}" "${PORT[n4]}")
epoch2() { [ "$(counters epoch "${ALL[@]}")" = "2 2 2 2" ]; }
settled() { [ "$(counters handoff_active "${ALL[@]}")" = "0 0 0 0" ]; }
others_settled() { [ "$(counters handoff_active "${PORT[n1]}" "${PORT[n3]}" "${PORT[n4]}")" = "0 0 0" ]; }
n2_epoch2() { [ "$(counters epoch "${PORT[n2]}")" = 2 ]; }
hist() { # hist OUT ENDPOINTS SECONDS MIX SEED CLIENT-BASE [s3hist options]
    local out=$1 eps=$2 secs=$3 mix=$4 seed=$5 base=$6
    shift 6
    "$H_PY" "$TOOLS/s3hist.py" --endpoints "$eps" --clients 6 --client-base "$base" --bucket hoff \
        --keys 16 --prefix hk --mix "$mix" --seconds "$secs" --timeout 5 --seed "$seed" \
        --out "$out" "$@"
}

rules "n1>n2:refuse,n3>n2:refuse"
h_run "phase 1: puts and gets through n1 and n3, n2 unreachable from them" \
    hist "$H_WORK/h1.jsonl" "$(ep n1),$(ep n3)" 2 put=2,get=1 21 0 --create-bucket &&
    echo "   ${H_OUT##*$'\n'}"
h_run "layout add n4 in az1" "$CAIRN_BIN" admin layout add n4 --addr "127.0.0.1:${RPORT[n4]}" \
    --az az1 --drives 3 --weight 400 "${E[@]}"
h_run "layout apply (epoch 2)" "$CAIRN_BIN" admin layout apply --yes --objects 1000 "${E[@]}"
h_until_ok "every node adopted layout epoch 2" 10 epoch2
rules "n2>n4:refuse" # n2's anti-entropy cannot reach a new home: its handoff stays on
h_run "phase 2: gets through n2 and n4 (the new quorum of the moved partitions)" \
    hist "$H_WORK/h2.jsonl" "$(ep n2),$(ep n4)" 2 get=1 22 100 && echo "   ${H_OUT##*$'\n'}"
h_until_ok "n1, n3 and n4 settled the handoff (anti-entropy over both home sets)" 30 others_settled
h_eq "n2 has not (n4 unreachable)" 1 "$(counters handoff_active "${PORT[n2]}")"
cl_node_stop n2
cl_node_start n2 hoff || h_finish
h_until_ok "n2 back on layout epoch 2" 10 n2_epoch2
h_eq "n2 resumed the handoff after its restart (DATA/handoff.layout)" 1 \
    "$(counters handoff_active "${PORT[n2]}")"
rules ""
h_until_ok "every node settled the handoff" 30 settled
echo "   partitions settled per node: $(counters handoff_settled "${ALL[@]}"); keys copied: $(counters handoff_copied "${ALL[@]}")"
h_run "final reads of every key through every node" \
    hist "$H_WORK/h3.jsonl" "$(ep n1),$(ep n2),$(ep n3),$(ep n4)" 1 get=1 23 200 &&
    echo "   ${H_OUT##*$'\n'}"
cat "$H_WORK"/h1.jsonl "$H_WORK"/h2.jsonl "$H_WORK"/h3.jsonl >"$H_WORK/all.jsonl"
if h_run "lincheck: linearizable across the layout change, no acknowledged write lost" \
    "$H_PY" "$TOOLS/lincheck.py" "$H_WORK/all.jsonl"; then
    printf '%s\n' "$H_OUT" | tail -n 3
else
    cp "$H_WORK/all.jsonl" "${TMPDIR:-/tmp}/$H_NAME-history.jsonl" 2>/dev/null &&
        echo "history kept in ${TMPDIR:-/tmp}/$H_NAME-history.jsonl"
fi

for n in n1 n2 n3 n4; do cl_node_stop "$n"; done
grep -lE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$H_WORK"/n*.log >/dev/null 2>&1 &&
    h_bad "no node logged a sanitizer report" || h_ok "no node logged a sanitizer report"
etcd_stop
h_finish
