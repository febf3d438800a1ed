#!/usr/bin/env bash
# test_cluster_small_ae: anti-entropy repairs a 2-node cluster (fewer nodes than N = 3: every
# partition lives on both, and rp_homes shrinks N for the router and for "who is the first home"
# alike; before they shared it no node of a 1- or 2-node cluster was a first home, so anti-entropy
# and the repair pass never ran there). One etcd member (lib_etcd.sh), nodes n1 (az1) and n2 (az2).
# 8 small objects (inline bodies) written through n1 into an `available` bucket, on both nodes;
# n2 loses its data directory while stopped and comes back empty. Within two maintenance ticks
# (2 s each here: [cluster] maintenance_s = 2; a tick does the same as every 10 s) the first homes' anti-entropy has written every key back to n2
# (replication.ae_repaired in /admin/status, summed over the nodes, reaches 8: nothing else reads
# or writes meanwhile, so no read repair or hint can have done it). Then n1 stops and each object
# reads back byte-exact through n2 alone. About 15 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and clustered servers"
. "$H_DIR/lib_etcd.sh"
cl_cluster sa 3 n1 n2
CL_SERVER_CONF=""
export CAIRN_CLUSTER_MAINTENANCE_S=2 # [cluster] maintenance_s of the nodes started here
for n in "${NODES[@]}"; do cl_node_start "$n" sa || h_finish; done

# req.py PORT METHOD PATH HEADER BODY-FILE OUT: one signed request (HEADER "NAME:VALUE" or "",
# BODY-FILE or "" for none); prints the status, writes the answer's body to OUT.
cat >"$H_WORK/req.py" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
port, method, path = sys.argv[1:4]
os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % port
headers = dict([sys.argv[4].split(":", 1)]) if sys.argv[4] else {}
body = open(sys.argv[5], "rb").read() if sys.argv[5] else b""
st, _, got = s3raw.request(method, path, body=body, headers=headers)
open(sys.argv[6], "wb").write(got)
print(st)
EOF
req() { # req NODE METHOD PATH [NAME:VALUE [BODY-FILE]]
    "$H_PY" "$H_WORK/req.py" "${PORT[$1]}" "$2" "$3" "${4:-}" "${5:-}" "$H_WORK/resp"
}
head_ok() { [ "$(req "$1" HEAD /aeb)" = 200 ]; }
# ae_repaired: replication.ae_repaired of n1 plus n2's (a node down counts 0)
ae_repaired() {
    local n sum=0 v
    for n in "${NODES[@]}"; do
        [ "$(req "$n" GET /admin/status 2>/dev/null)" = 200 ] || continue
        v=$(grep -o '"ae_repaired":[0-9]*' "$H_WORK/resp" | cut -d: -f2)
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}
repaired_all() { [ "$(ae_repaired)" -ge 8 ]; }

h_eq "CreateBucket aeb (available) through n1" 200 "$(req n1 PUT /aeb x-cairn-consistency:available)"
h_until_ok "n2 knows bucket aeb" 10 head_ok n2
ok=0
for i in 1 2 3 4 5 6 7 8; do
    h_gen "$H_WORK/obj$i" $((1000 + i)) "$i"
    [ "$(req n1 PUT "/aeb/k$i" "" "$H_WORK/obj$i")" = 200 ] && ok=$((ok + 1))
done
h_eq "8 PUTs through n1" 8 "$ok"
cl_node_stop n2
rm -rf "$H_WORK/n2/data"
h_eq "nothing repaired yet" 0 "$(ae_repaired)"
cl_node_start n2 sa || h_finish
h_until_ok "anti-entropy wrote the 8 keys back to n2 (replication.ae_repaired)" 40 repaired_all
cl_node_stop n1
ok=0
for i in 1 2 3 4 5 6 7 8; do
    [ "$(req n2 GET "/aeb/k$i")" = 200 ] && cmp -s "$H_WORK/resp" "$H_WORK/obj$i" && ok=$((ok + 1))
done
h_eq "each object reads back byte-exact through n2 alone" 8 "$ok"
cl_node_stop n2
etcd_stop
h_finish
