#!/usr/bin/env bash
# test_cluster_sse_rotate: master-key rotation on the nodes of the loopback cluster
# (docs/encryption.md, "Rotating the master key", "On a cluster"). Every node reads the cluster's
# master.key, key A: sse_rotate.py writes SSE-S3 objects through n1 (simple, multipart, two
# versions, bucket default, an upload in progress) and an SSE-C one; a user is made (her secret,
# wrapped under A, lives in etcd). The file then holds "B, A" and the nodes restart one at a time;
# `cairn admin sse rewrap --wait` runs on every node (each re-wraps the records it holds through
# the replicated record path), every node's status shows B alone in use, and the nodes together
# re-wrapped at least the 7 data keys written. The file then holds B alone and the nodes restart again: every object
# reads back byte-exact through n2, n4 and n6 (each version by id), the upload completes, and
# the user's key signs through n3. About 25 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_up itrot boto3
export ROT_STATE=$H_WORK/rot.json
node() { echo "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + $1))"; }
KA=$(head -n 1 "$CAIRN_CLUSTER_DIR/master.key")
KB=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')

CAIRN_ENDPOINT=$(node 1) h_run "SSE objects under key A through n1" "$H_PY" "$H_DIR/sse_rotate.py" \
    write
if out=$("$CAIRN_BIN" admin user create carol --endpoint "$(node 1)"); then # in etcd, under A
    CAROL_AK=$(sed -n 's/^access_key=//p' <<<"$out")
    CAROL_SK=$(sed -n 's/^secret_key=//p' <<<"$out")
    h_ok "a user made under key A"
else
    h_bad "a user made under key A" "$out"
fi

printf '%s\n%s\n' "$KB" "$KA" >"$CAIRN_CLUSTER_DIR/master.key"
h_run "every node restarted with B, A" lc restart-rolling
lc_track
for n in 1 2 3 4 5 6; do
    h_run "n$n: cairn admin sse rewrap --wait" "$CAIRN_BIN" admin sse rewrap --wait \
        --endpoint "$(node $n)"
done
moved=0
for n in 1 2 3 4 5 6; do
    out=$("$CAIRN_BIN" admin sse status --json --endpoint "$(node $n)")
    moved=$((moved + $("$H_PY" -c 'import json, sys; print(json.load(sys.stdin)["rewrapped"])' \
        <<<"$out")))
    "$H_PY" -c 'import json, sys; d = json.load(sys.stdin)
sys.exit(0 if d["in_use"] == [d["primary"]] and not d["failed"] else 1)' <<<"$out" &&
        h_ok "n$n: only B in use" || h_bad "n$n: only B in use" "$out"
done
# simple 1, multipart 2, versions 2, default 1, the upload's part 1: at least 7 moved
[ "$moved" -ge 7 ] && h_ok "the nodes re-wrapped $moved data keys" ||
    h_bad "the nodes re-wrapped the data keys" "$moved"

printf '%s\n' "$KB" >"$CAIRN_CLUSTER_DIR/master.key"
h_run "every node restarted with B alone" lc restart-rolling
lc_track
if grep -q "may still wrap" "$CAIRN_CLUSTER_DIR"/n*/server.log; then
    h_bad "no node misses a key" "$(grep -h "may still wrap" "$CAIRN_CLUSTER_DIR"/n*/server.log |
        head -3)"
else
    h_ok "no node misses a key"
fi
for n in 2 4; do
    CAIRN_ENDPOINT=$(node $n) h_run "every object reads back under B through n$n" "$H_PY" \
        "$H_DIR/sse_rotate.py" read
done
CAIRN_ENDPOINT=$(node 6) h_run "through n6, and the upload completes" "$H_PY" \
    "$H_DIR/sse_rotate.py" verify
h_run "the user's key made under A signs through n3" env AWS_ACCESS_KEY_ID="$CAROL_AK" \
    AWS_SECRET_ACCESS_KEY="$CAROL_SK" CAIRN_ENDPOINT="$(node 3)" "$H_PY" -c 'import boto3, os
s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1")
s3.list_buckets()'
h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
