#!/usr/bin/env bash
# fault_cluster_read: GETs of multi-stripe objects through the nodes of the other AZs go on whole
# and byte-exact while a whole AZ is killed under them (issue 9: losing an AZ loses nothing;
# docs/chunks.md, "Hedged reads"). deploy/local-cluster.sh starts 3 etcd members and 6 nodes (n1,
# n2 in az1; n3, n4 in az2; n5, n6 in az3; 12 drives: profile 8+4, 4 cells per AZ). cluster_read.py
# puts 6 objects of 9 MiB + 13 bytes (5 stripes of 2 MiB, the last short) through n1-n6, then
# reads them in a loop through n3-n6, one reader each; after 2 s n1 and n2 are SIGKILLed, the
# readers go on for 8 s more (past the killed nodes' member lease). With 8 of 12 cells of every
# stripe on live nodes (k: no spare), no GET may be cut short after its headers, answer wrong
# bytes or fail. Each stripe given up is logged with its missing cells' errors (shown). About
# 20 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_up itread boto3
EPS=$(lc_endpoints)
STOP=$H_WORK/stop
N=6 SIZE=$((9 * 1024 * 1024 + 13))

h_run "6 objects of 9 MiB put through n1-n6" "$H_PY" "$H_DIR/cluster_read.py" put "$EPS" reads "$N" "$SIZE"
"$H_PY" "$H_DIR/cluster_read.py" read "$EPS" reads "$N" "$SIZE" 2,3,4,5 "$STOP" >"$H_WORK/read.out" 2>&1 &
READ=$!
h_track "$READ"
sleep 2
kill -KILL "$(lc_pid n1)" "$(lc_pid n2)"
echo "killed n1 and n2 (az1) under the readers"
sleep 8
touch "$STOP"
if wait "$READ"; then
    h_ok "every GET through n3-n6 whole and byte-exact while az1 was killed"
else
    h_bad "every GET through n3-n6 whole and byte-exact while az1 was killed" "$(cat "$H_WORK/read.out")"
fi
sed 's/^/   /' "$H_WORK/read.out"
for n in n3 n4 n5 n6; do
    grep -h "body cut short\|stripe at" "$CAIRN_CLUSTER_DIR/$n/server.log" | head -n 5 | sed "s/^/   $n: /"
done

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
