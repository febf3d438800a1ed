#!/usr/bin/env bash
# Bucket lifecycle (issue 10, scope 3) on a single node, with a lifecycle day of one second
# ([lifecycle] day_s = 1, the test clock), a pass every second and 50 objects/s: the boto3 suite
# lifecycle.py (configuration put / get / delete and S3's errors for bad documents; objects
# expiring by prefix, tag, size and a past date while the others stay; a stale multipart upload
# aborted with its parts; the worker's counters in /admin/status), the aws CLI reading the
# configuration back, `cairn admin status` showing the worker, then a restart in the middle of a
# pass over 150 objects: the pass resumes where it stood and examines each object once. Against a
# cluster (CAIRN_TEST_ENDPOINTS, as test_cluster_clients.sh runs it) a node stores and answers a
# configuration, a noncurrent-version rule included (test_cluster_lifecycle.sh tests the worker
# there).
source "$(dirname "$0")/lib.sh"

if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
aws() { "$AWSBIN" --endpoint-url "$(h_endpoint)" --region us-east-1 "$@"; }
RULES='{"Rules":[{"ID":"logs","Status":"Enabled","Filter":{"Prefix":"logs/"},"Expiration":{"Days":30}}]}'
if [ "$H_CLUSTER" = 1 ]; then
    h_start
    B=$(h_bucket lc-cluster)
    h_run "create bucket" aws s3api create-bucket --bucket "$B"
    NC='{"Rules":[{"ID":"nc","Status":"Enabled","Filter":{"Prefix":""},"NoncurrentVersionExpiration":{"NoncurrentDays":3}}]}'
    # every rule kind runs on clusters too (its effects: test_cluster_lifecycle.sh)
    h_run "a cluster node takes a noncurrent rule" \
        aws s3api put-bucket-lifecycle-configuration --bucket "$B" --lifecycle-configuration "$NC"
    if h_run "the noncurrent rule reads back" aws s3api get-bucket-lifecycle-configuration \
        --bucket "$B"; then
        grep -q '"NoncurrentDays": 3' <<<"$H_OUT" && h_ok "NoncurrentDays stored" ||
            h_bad "NoncurrentDays stored" "$H_OUT"
    fi
    h_run "put-bucket-lifecycle-configuration" aws s3api put-bucket-lifecycle-configuration \
        --bucket "$B" --lifecycle-configuration "$RULES"
    if h_run "get-bucket-lifecycle-configuration" aws s3api get-bucket-lifecycle-configuration \
        --bucket "$B"; then
        grep -q '"Prefix": "logs/"' <<<"$H_OUT" && h_ok "a cluster node reads the rule back" ||
            h_bad "a cluster node reads the rule back" "$H_OUT"
    fi
    h_run "delete-bucket-lifecycle" aws s3api delete-bucket-lifecycle --bucket "$B"
    h_run "delete bucket" aws s3api delete-bucket --bucket "$B"
    h_finish
fi
cat >"$H_WORK/lc.conf" <<CONF
[lifecycle]
day_s = 1
interval_s = 1
rate = 50
CONF
H_SERVER_ARGS=(--config "$H_WORK/lc.conf")
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT LC_STATE=$H_WORK/lc.state
export PYTHONPATH=$H_DIR${PYTHONPATH:+:$PYTHONPATH}

B=$(h_bucket lc-cli)
h_run "create bucket" aws s3api create-bucket --bucket "$B"
h_run "put-bucket-lifecycle-configuration" aws s3api put-bucket-lifecycle-configuration \
    --bucket "$B" --lifecycle-configuration "$RULES"
if h_run "get-bucket-lifecycle-configuration" aws s3api get-bucket-lifecycle-configuration \
    --bucket "$B"; then
    grep -q '"Prefix": "logs/"' <<<"$H_OUT" && grep -q '"Days": 30' <<<"$H_OUT" &&
        h_ok "the aws CLI reads the rule back" || h_bad "the aws CLI reads the rule back" "$H_OUT"
fi
h_run "delete-bucket-lifecycle" aws s3api delete-bucket-lifecycle --bucket "$B"
h_fails_with "get after delete" NoSuchLifecycleConfiguration \
    aws s3api get-bucket-lifecycle-configuration --bucket "$B"
h_run "delete bucket" aws s3api delete-bucket --bucket "$B"

if "$H_PY" "$H_DIR/lifecycle.py" rules; then h_ok "boto3 lifecycle rules"; else
    h_bad "boto3 lifecycle rules"; fi
if h_run "cairn admin status" "$CAIRN_BIN" admin status --endpoint "$H_ENDPOINT"; then
    grep -q '^lifecycle: .* passes since the server started' <<<"$H_OUT" &&
        grep -q '^last pass: .*expired' <<<"$H_OUT" && h_ok "admin status shows the worker" ||
        h_bad "admin status shows the worker" "$H_OUT"
fi
grep -q 'lifecycle.*expired by rule tmp' "$H_LOG" && h_ok "an expiration is logged" ||
    h_bad "an expiration is logged" "$(tail -5 "$H_LOG")"

if "$H_PY" "$H_DIR/lifecycle.py" bulk-start; then
    h_stop
    h_start
    if "$H_PY" "$H_DIR/lifecycle.py" bulk-check; then h_ok "the pass resumed after a restart"
    else h_bad "the pass resumed after a restart"; fi
    grep -q "pass resumed at bucket=$(h_bucket lc-bulk) objects after key=bulk/" "$H_LOG" &&
        h_ok "the resumption is logged" || h_bad "the resumption is logged" "$(tail -5 "$H_LOG")"
else
    h_bad "a pass part-way through 150 objects"
fi
h_finish
