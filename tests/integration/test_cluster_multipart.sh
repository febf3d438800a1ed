#!/usr/bin/env bash
# test_cluster_multipart: multipart uploads across the nodes of the loopback cluster (issue 9,
# docs/multipart-cluster.md). deploy/local-cluster.sh starts 3 etcd members and 6 nodes (n1, n2
# in az1; n3, n4 in az2; n5, n6 in az3). Through boto3 (cluster_multipart.py): Create through n1;
# part 1 through n2, part 2 through n3 and again (a replacement) through n4, part 3 through n4;
# ListParts through n5 (the replacement wins, pages by max-parts and marker); ListMultipartUploads
# through n6 shows the upload, ListObjects never shows its records. Then SIGKILL n1 and n2, all
# of az1 (the creating node among them: every partition keeps two homes in the other AZs), and
# Complete through n6; the object reads back byte-exact through n3-n6, and ListObjects shows only
# the real keys. Abort works through another node than Create, after which the upload is gone
# everywhere. The killed nodes come back and read the object too. Last, DeleteBucket with an
# upload still open (S3 drops it with the bucket): the bucket made again lists no old upload or
# key. Before that, two 1,024-byte keys sharing their first 1,000 bytes (long-form upload keys):
# one Created, listed, Completed and read through different nodes, the other Aborted. About 20 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_up itmpu boto3
EPS=$(lc_endpoints)
ST=$H_WORK/state.json
step() { h_run "$1" "$H_PY" "$H_DIR/cluster_multipart.py" "${@:2}" && sed 's/^/   /' <<<"$H_OUT"; }

step "create through n1" create "$EPS" "$ST" mpu "big/object.bin"
step "parts through n2-n4, listings through n5 and n6" parts "$EPS" "$ST"
kill -KILL "$(lc_pid n1)" "$(lc_pid n2)"
echo "killed n1 and n2 (az1)"
step "Complete through n6 with az1 down" complete "$EPS" "$ST" 5
step "reads through n3-n6 with az1 down" verify "$EPS" "$ST" 2,3,4,5
# A GET cut short (the "note" of get_body) says why in the serving node's log; the cluster dir
# goes with the test, so the lines that name a cause are shown here. A cell "not found" on a live
# node (the cut's one logged cause so far; docs/cluster.md) is shown even when the GET's re-read
# carried it: the node that answered says whether and when the chunk was deleted there.
cut=0
grep -qE "^note|IncompleteRead|StreamingError" <<<"$H_OUT" && cut=1
for n in n3 n4 n5 n6; do
    if [ $cut = 1 ]; then
        grep -hE "body cut short|stripe at|unauthenticated|stalled|heal: cell" \
            "$CAIRN_CLUSTER_DIR/$n/server.log" | head -n 20 | sed "s/^/   $n: /"
    fi
    grep -hE "no such chunk|record read again" "$CAIRN_CLUSTER_DIR/$n/server.log" | head -n 20 |
        sed "s/^/   $n: /"
done
step "Abort through another node than Create" abort "$EPS" "$ST"
h_run "local-cluster.sh start n1" lc start n1
h_run "local-cluster.sh start n2" lc start n2
lc_track
step "reads through n1 and n2 once back" verify "$EPS" "$ST" 0,1
step "1,024-byte keys through the nodes" longkey "$EPS" "$ST"
step "DeleteBucket drops an open upload" rb "$EPS" "$ST"

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
