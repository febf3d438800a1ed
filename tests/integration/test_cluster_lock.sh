#!/usr/bin/env bash
# test_cluster_lock: Object Lock on the loopback cluster (docs/object-lock.md, "On a cluster"):
# 3 etcd members and 6 nodes, driven with boto3 (cluster_lock.py). A bucket created with lock
# through n1 and seen by every node (Suspended refused); COMPLIANCE set by PutObjectRetention
# through n2, a legal hold and GOVERNANCE from PUT headers, the default retention set through n4,
# a multipart upload's hold applied by Complete, CopyObject's retention;
# every deletion by id through n3..n6 and DeleteObjects refused, the versions still there;
# governance bypass deletes only GOVERNANCE. n3 killed and started again: the locks read back through every
# node and every deletion is still refused; a released hold lets its version go. Then 20 rounds
# of a COMPLIANCE extension through n1 racing a GOVERNANCE change through n4 on one version: no
# change answered 200 and then lost; 10 rounds of a COMPLIANCE extension through n1 racing tag
# changes through n2 and n5: the retention and one of the tag sets kept. About 25 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_up itlock boto3
EPS=$(lc_endpoints)
ST=$H_WORK/state.json
step() { # each phase needs the one before: the first that fails ends the test
    if h_run "$1" "$H_PY" "$H_DIR/cluster_lock.py" "${@:2}"; then
        sed 's/^/   /' <<<"$H_OUT"
    else
        h_run "local-cluster.sh stop" lc stop
        h_finish
    fi
}

step "locked versions refuse every deletion" setup "$EPS" "$ST" locked
kill -KILL "$(lc_pid n3)"
echo "killed n3"
h_run "local-cluster.sh start n3" lc start n3
lc_track
step "after n3's restart: still refused" after "$EPS" "$ST"
step "racing retention changes decided by the partition leader" race "$EPS" "$ST"

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
