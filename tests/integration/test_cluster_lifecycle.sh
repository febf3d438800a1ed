#!/usr/bin/env bash
# test_cluster_lifecycle: bucket lifecycle on the loopback cluster (docs/lifecycle.md, "Cluster
# nodes"): 3 etcd members and 6 nodes whose lifecycle day is one second ([lifecycle] day_s = 1,
# a pass every second). cluster_lifecycle.py puts a configuration through n1 and reads it through
# n4, sees a noncurrent rule refused with 501, writes objects and uploads through every node and
# waits until, read through other nodes, the selected objects expired and the stale upload was
# aborted while the others stay; over passes that all began after that, the nodes' examined
# counters (/admin/status) add up to the records left, not six times them (one node applies the
# rules to each partition); x-amz-expiration through other nodes follows a configuration put
# through n2 and goes with its deletion; in a bucket with Object Lock, NoncurrentVersionExpiration
# (NewerNoncurrentVersions 1) removes the older noncurrent versions but a locked one, and
# ExpiredObjectDeleteMarker the marker left alone. Then the nodes' logs: each expired object and the aborted upload
# appear exactly once across all six, spread over several nodes, and no lifecycle warning or
# error anywhere. About 20 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
export CAIRN_CLUSTER_CONF_EXTRA=$'[lifecycle]\nday_s = 1\ninterval_s = 1\nrate = 1000'
lc_up itlc boto3
B=lc-cluster
if h_run "configuration, expiry and abort across nodes" "$H_PY" "$H_DIR/cluster_lifecycle.py" \
    "$(lc_endpoints)" "$B"; then
    sed 's/^/   /' <<<"$H_OUT"
fi
LOGS=("$CAIRN_CLUSTER_DIR"/n*/server.log)
DONE="bucket=$B key=.* (expired|aborted) by rule"
twice=$(grep -hE "$DONE" "${LOGS[@]}" | sed -E 's/.*(bucket=[^ ]+ key=[^ ]+).*/\1/' | sort | uniq -d)
n=$(cat "${LOGS[@]}" | grep -cE "$DONE")
[ "$n" = 26 ] && [ -z "$twice" ] && h_ok "24 + 1 expirations and 1 abort logged, each once" ||
    h_bad "each expiration and abort logged once" "$n lines; twice: $twice"
nodes=$(grep -l "bucket=$B key=.* expired by rule" "${LOGS[@]}" | wc -l)
[ "$nodes" -ge 2 ] && h_ok "expirations done by $nodes nodes (each its own partitions)" ||
    h_bad "expirations spread over the partitions' first homes" "$nodes node(s)"
nc=$(cat "${LOGS[@]}" | grep -cE "bucket=$B-v key=a version=[0-9a-f]+ expired \(noncurrent\) by rule nc")
locked=$(cat "${LOGS[@]}" | grep -cE "bucket=$B-v key=l version=.*: the version is locked")
[ "$nc" = 2 ] && [ "$locked" -ge 1 ] && h_ok "2 noncurrent versions expired once each, the locked one refused" ||
    h_bad "2 noncurrent expirations and a locked version refused" "$nc expired, $locked refused"
bad=$(grep -hE "level=(warn|error) mod=lifecycle" "${LOGS[@]}" | head -5)
[ -z "$bad" ] && h_ok "no lifecycle warning or error in any node's log" ||
    h_bad "no lifecycle warning or error in any node's log" "$bad"

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
