#!/usr/bin/env bash
# fault_cluster_partition: network partitions and delays from the RPC fault layer on the loopback
# cluster (issue 9, "Done when": partition tests). Every node follows one rules file
# (CAIRN_RPC_FAULTS_FILE, exported before deploy/local-cluster.sh start; nd_faults_parse format,
# each rule applies to the calls of its first node). On a strong bucket, 9 s3hist.py clients
# (single-key put, get and delete on 4 keys; no conditional writes: they need the partition
# leader of another slice) pinned to the AZs (clients 0, 3, 6 on n1/n2, 1, 4, 7 on n3/n4, the
# others on n5/n6) run through: a two-way partition isolating az1, a one-way partition (n1 cannot
# reach n3 and n4; they reach it), delays of 300 ms on five links, each a few seconds and healed.
# Then one more history reads every key through every node. The concatenated history must pass
# lincheck.py: no acknowledged write lost (a final read returns the last acknowledged write or a
# later one of unknown outcome) and every read linearizable. Then an available bucket across a
# two-way partition (cluster_avail.py): both sides acknowledge writes, and after healing every
# node answers the same value for each key within 60 s, a value some side wrote last.
# About 50 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
h_need curl python3
[ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }
lc_setup itpart
export CAIRN_RPC_FAULTS_FILE=$H_WORK/faults
: >"$CAIRN_RPC_FAULTS_FILE"
TOOLS=$H_ROOT/tests/tools

if ! h_run "local-cluster.sh start (every node reads $CAIRN_RPC_FAULTS_FILE)" lc start; then
    lc_track
    h_finish
fi
lc_track
EPS=$(lc_endpoints)

# rules SPEC: every node follows SPEC within 200 ms (the file is replaced whole).
rules() {
    printf '%s' "$1" >"$CAIRN_RPC_FAULTS_FILE.tmp" && mv "$CAIRN_RPC_FAULTS_FILE.tmp" "$CAIRN_RPC_FAULTS_FILE"
    echo "$(date +%T.%N | cut -c1-12) rules: ${1:-none}"
}
# both ways between every node of one set and every node of the other
split() { # split "n1 n2" "n3 n4 n5 n6"
    local a b out=""
    for a in $1; do for b in $2; do out+="${out:+,}$a>$b:refuse,$b>$a:refuse"; done; done
    echo "$out"
}

hist=$H_WORK/history.jsonl final=$H_WORK/final.jsonl
"$H_PY" "$TOOLS/s3hist.py" --endpoints "$EPS" --client-endpoints "0,1;2,3;4,5" --clients 9 \
    --bucket strong --create-bucket --keys 4 --prefix part --mix get=4,put=2,delete=1 \
    --think 10 --seconds 27 --timeout 3 --seed 11 --out "$hist" >"$H_WORK/s3hist.out" 2>&1 &
HIST=$!
h_track "$HIST"
sleep 3
rules "$(split "n1 n2" "n3 n4 n5 n6")" # two-way: az1 alone
sleep 6
rules ""
sleep 3
rules "n1>n3:refuse,n1>n4:refuse" # one-way: n3 and n4 still reach n1
sleep 5
rules ""
sleep 2
rules "n1>n3:delay=300,n3>n5:delay=300,n5>n1:delay=300,n2>n4:delay=300,n6>n2:delay=300"
sleep 5
rules ""
if wait "$HIST"; then
    h_ok "s3hist on the strong bucket through the faults"
else
    h_bad "s3hist on the strong bucket" "$(cat "$H_WORK/s3hist.out")"
fi
cat "$H_WORK/s3hist.out"
# Writes per AZ side and outcome: the isolated side's coordinators cannot reach a write quorum.
"$H_PY" - "$hist" <<'PY'
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    c[("az%d" % (r["endpoint"] // 2 + 1), r["op"], r["status"] if r["status"] else "timeout")] += 1
for k in sorted(c, key=str):
    print("   %s %-6s %-7s %d" % (k[0], k[1], k[2], c[k]))
PY
n503=$(grep -c '"status": 503' "$hist")
echo "   503 answers (partition lost its quorum, recorded as unknown outcome): $n503"

# Every key read through every node once healed: the final state of each key.
h_run "final reads of every key through every node" "$H_PY" "$TOOLS/s3hist.py" --endpoints "$EPS" \
    --client-endpoints "0;1;2;3;4;5" --clients 6 --client-base 100 --bucket strong --keys 4 \
    --prefix part --mix get=1 --seconds 0.5 --timeout 5 --seed 12 --out "$final" &&
    echo "   ${H_OUT##*$'\n'}"
"$H_PY" - "$final" <<'PY' && h_ok "every final read answered (200 or 404)" || h_bad "every final read answered"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if recs and all(r["status"] in (200, 404) for r in recs) else 1)
PY
cat "$hist" "$final" >"$H_WORK/all.jsonl"
t0=$(date +%s%N)
if h_run "lincheck: the strong bucket's history is linearizable, no acknowledged write lost" \
    "$H_PY" "$TOOLS/lincheck.py" "$H_WORK/all.jsonl"; then
    printf '%s\n' "$H_OUT" | tail -n 6
    echo "   checked in $((($(date +%s%N) - t0) / 1000000)) ms"
else
    cp "$H_WORK/all.jsonl" "${TMPDIR:-/tmp}/$H_NAME-history.jsonl" 2>/dev/null &&
        echo "history kept in ${TMPDIR:-/tmp}/$H_NAME-history.jsonl"
fi

# ---- an available bucket: writes on both sides, convergence after healing ----
if h_run "available bucket: both sides of a two-way partition take writes; converged after healing" \
    "$H_PY" "$H_DIR/cluster_avail.py" --endpoints "$EPS" --side-a 0,1 --faults "$CAIRN_RPC_FAULTS_FILE" \
    --rules "$(split "n1 n2" "n3 n4 n5 n6")" --bucket avail --keys 4 --seconds 6 --deadline 60; then
    printf '%s\n' "$H_OUT" | sed 's/^/   /'
fi

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
