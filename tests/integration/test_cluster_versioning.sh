#!/usr/bin/env bash
# test_cluster_versioning: bucket versioning on the loopback cluster (docs/versioning.md, "On a
# cluster"): 3 etcd members and 6 nodes (n1, n2 in az1; n3, n4 in az2; n5, n6 in az3), driven
# with boto3 (cluster_versioning.py). Versioning Enabled through n2 and seen by every node;
# If-None-Match PUTs of one key racing through all six nodes make one version, If-Match on its
# ETag one more; versions written through three nodes, read by id
# through a fourth, a delete marker, ListObjectVersions through every node and in pages of 1-5,
# permanent deletes (the marker, an older version, the latest), CopyObject by source versionId,
# Complete making a version; two 1,024-byte keys (long-form version keys: versions, listing,
# GET and DELETE by id, a marker); tags set and read by versionId through different nodes; Suspended
# (writes, conditional ones too, replace the null version, a DELETE makes a null marker) and
# Enabled again; PUTs of one
# key racing through n1 and n4 (every version listed, one
# latest, the same everywhere); n3 killed while a key gets 4 versions and a marker, then back:
# they are all listed and read byte-exact through n3 and the others; striped versions of a key
# (its first written before versioning) still read back past the garbage grace period (1 s) and
# a maintenance tick; last, the bucket emptied as the aws CLI does (list-object-versions,
# delete-objects) and deleted. About 25 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
export CAIRN_CLUSTER_GC_GRACE_S=1 # replaced bodies would be freed within the test
lc_up itver boto3
EPS=$(lc_endpoints)
ST=$H_WORK/state.json
step() { # each phase needs the one before: the first that fails ends the test
    if h_run "$1" "$H_PY" "$H_DIR/cluster_versioning.py" "${@:2}"; then
        sed 's/^/   /' <<<"$H_OUT"
    else
        tail -n 3 <<<"$H_OUT" | sed 's/^/   /' # the failing check (h_bad shows the first 30 lines)
        h_run "local-cluster.sh stop" lc stop
        h_finish
    fi
}

step "versioning enabled through n2" enable "$EPS" "$ST" vers
step "versions, markers, listings, permanent deletes" writes "$EPS" "$ST"
step "tags by versionId; Suspended and back" suspend "$EPS" "$ST"
step "two nodes racing on one key" race "$EPS" "$ST"
kill -KILL "$(lc_pid n3)"
echo "killed n3"
step "versions written with n3 down" down "$EPS" "$ST"
h_run "local-cluster.sh start n3" lc start n3
lc_track
step "n3 back: every version there" verify "$EPS" "$ST" 2,0,5
step "emptied as the aws CLI does, then deleted" empty "$EPS" "$ST"

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
