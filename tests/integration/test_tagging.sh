#!/usr/bin/env bash
# Object tagging and GetObjectAttributes (issue 10, scope 4) with the real clients: the boto3 suite
# tagging.py (x-amz-tagging on PUT / copy / multipart, tagging count, limits, GetObjectAttributes,
# Put/Get/DeleteObjectTagging, a raw PutObjectTagging without Content-MD5, bucket tags, tag
# changes racing PUTs of the same bytes), then the aws CLI's s3api verbs (object and bucket tags,
# attributes) and the tags surviving a restart. Against a cluster (CAIRN_TEST_ENDPOINTS,
# as test_cluster_clients.sh runs it) tags are also changed through one node and read through
# another (the list's last), and the restart is skipped.
source "$(dirname "$0")/lib.sh"

if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
CLUSTER=0
[ -n "${CAIRN_TEST_ENDPOINTS:-}" ] && CLUSTER=1
export CAIRN_TAGGING_CLUSTER=$CLUSTER
[ "$CLUSTER" = 1 ] && export CAIRN_TAGGING_OTHER=${H_ENDPOINTS[${#H_ENDPOINTS[@]} - 1]}

if "$H_PY" "$H_DIR/tagging.py"; then h_ok "boto3 tagging suite"; else h_bad "boto3 tagging suite"; fi

aws() { "$AWSBIN" --endpoint-url "$(h_endpoint)" --region us-east-1 "$@"; }
B=$(h_bucket tagging-cli)
h_run "create bucket" aws s3api create-bucket --bucket "$B"
printf 'body' >"$H_WORK/body"
h_run "put-object --tagging" aws s3api put-object --bucket "$B" --key k --body "$H_WORK/body" \
    --tagging 'a=1&b=two'
if h_run "get-object-tagging" aws s3api get-object-tagging --bucket "$B" --key k; then
    h_eq "get-object-tagging TagSet" "a=1 b=two" "$("$H_PY" -c '
import json, sys
print(" ".join("%s=%s" % (t["Key"], t["Value"]) for t in json.load(sys.stdin)["TagSet"]))' \
        <<<"$H_OUT")"
fi
if h_run "get-object-attributes" aws s3api get-object-attributes --bucket "$B" --key k \
    --object-attributes ObjectSize StorageClass; then
    h_eq "ObjectSize" 4 "$("$H_PY" -c 'import json,sys; print(json.load(sys.stdin)["ObjectSize"])' \
        <<<"$H_OUT")"
fi
h_fails_with "get-object-attributes with an unknown attribute" InvalidArgument \
    aws s3api get-object-attributes --bucket "$B" --key k --object-attributes Nonsense

h_run "put-object-tagging" aws s3api put-object-tagging --bucket "$B" --key k \
    --tagging 'TagSet=[{Key=c,Value=3}]'
if [ "$CLUSTER" = 0 ]; then
    h_stop
    h_start
fi
if h_run "get-object-tagging after a restart" aws s3api get-object-tagging --bucket "$B" --key k
then
    grep -q '"Key": "c"' <<<"$H_OUT" && h_ok "tags survive a restart" ||
        h_bad "tags survive a restart" "$H_OUT"
fi
h_run "delete-object-tagging" aws s3api delete-object-tagging --bucket "$B" --key k
h_run "put-bucket-tagging" aws s3api put-bucket-tagging --bucket "$B" \
    --tagging 'TagSet=[{Key=owner,Value=ops}]'
if h_run "get-bucket-tagging" aws s3api get-bucket-tagging --bucket "$B"; then
    grep -q '"Value": "ops"' <<<"$H_OUT" && h_ok "bucket tags read back" ||
        h_bad "bucket tags read back" "$H_OUT"
fi
h_run "delete-bucket-tagging" aws s3api delete-bucket-tagging --bucket "$B"
h_fails_with "get-bucket-tagging after delete" NoSuchTagSet \
    aws s3api get-bucket-tagging --bucket "$B"
h_run "delete object" aws s3api delete-object --bucket "$B" --key k
h_run "delete bucket" aws s3api delete-bucket --bucket "$B"
h_finish
