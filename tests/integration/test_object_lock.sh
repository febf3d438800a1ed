#!/usr/bin/env bash
# Object Lock (issue 10, scope 2; docs/object-lock.md) on a single node, with boto3 and the aws
# CLI. object_lock.py setup: buckets created with lock (versioned, cannot be suspended), lock
# enabled on an existing versioned bucket, default retention (PUT and Complete take it), S3's
# errors, the lock headers on HEAD/GET; then every deletion path against COMPLIANCE, GOVERNANCE
# and legal-hold versions - DeleteObject by version (with and without the bypass header),
# DeleteObjects with VersionId, PutObjectRetention shortening or downgrading, Complete / Copy / PUT
# over the key, a plain DELETE (a marker), a locked null version (and the suspension that would
# let a write replace it), lifecycle expiration with the test clock ([lifecycle] day_s = 1), the
# GOVERNANCE bypass by a user without and with s3:BypassGovernanceRetention - each leaving the
# version readable; lock headers on writes refused without s3:PutObjectRetention /
# s3:PutObjectLegalHold, and shown on GET/HEAD only to users allowed to read them. Then the aws CLI, a restart, and object_lock.py after-restart: the versions
# and their locks are still there and still refuse deletion; an expired retention and a released
# legal hold are deletable. Through a cluster (test_cluster_* runs this file with
# CAIRN_TEST_ENDPOINTS) only a short run with the aws CLI: a held version is not deleted until
# released (test_cluster_lock.sh has the rest).
source "$(dirname "$0")/lib.sh"

if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
aws() { "$AWSBIN" --endpoint-url "$(h_endpoint)" --region us-east-1 "$@"; }
if [ "$H_CLUSTER" = 1 ]; then
    h_start
    B=$(h_bucket lock-cluster)
    h_run "create-bucket --object-lock-enabled-for-bucket" aws s3api create-bucket --bucket "$B" \
        --object-lock-enabled-for-bucket
    echo held >"$H_WORK/held"
    h_run "put-object" aws s3api put-object --bucket "$B" --key k --body "$H_WORK/held"
    V=$(sed -n 's/.*"VersionId": "\([^"]*\)".*/\1/p' <<<"$H_OUT")
    h_run "put-object-legal-hold ON" aws s3api put-object-legal-hold --bucket "$B" --key k \
        --version-id "$V" --legal-hold Status=ON
    h_fails_with "a held version is not deleted" 'AccessDenied' \
        aws s3api delete-object --bucket "$B" --key k --version-id "$V"
    h_run "put-object-legal-hold OFF" aws s3api put-object-legal-hold --bucket "$B" --key k \
        --version-id "$V" --legal-hold Status=OFF
    h_run "then it is" aws s3api delete-object --bucket "$B" --key k --version-id "$V"
    h_finish
fi
cat >"$H_WORK/lc.conf" <<CONF
[lifecycle]
day_s = 1
interval_s = 1
CONF
H_SERVER_ARGS=(--config "$H_WORK/lc.conf")
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT LOCK_STATE=$H_WORK/lock.state

admin() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }
for who in alice bob; do
    if out=$(admin user create "$who"); then
        W=${who^^}
        export "${W}_AK=$(sed -n 's/^access_key=//p' <<<"$out")"
        export "${W}_SK=$(sed -n 's/^secret_key=//p' <<<"$out")"
    else
        h_bad "cairn admin user create $who" "$out"
    fi
done

if "$H_PY" "$H_DIR/object_lock.py" setup; then h_ok "boto3 object lock suite"; else
    h_bad "boto3 object lock suite"; fi

B=$(h_bucket lock-cli)
h_run "create-bucket --object-lock-enabled-for-bucket" aws s3api create-bucket --bucket "$B" \
    --object-lock-enabled-for-bucket
h_run "put-object-lock-configuration" aws s3api put-object-lock-configuration --bucket "$B" \
    --object-lock-configuration \
    '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"COMPLIANCE","Years":1}}}'
if h_run "get-object-lock-configuration" aws s3api get-object-lock-configuration --bucket "$B"; then
    grep -q '"Years": 1' <<<"$H_OUT" && grep -q COMPLIANCE <<<"$H_OUT" &&
        h_ok "the aws CLI reads the default back" || h_bad "the aws CLI reads the default" "$H_OUT"
fi
printf 'kept for a year\n' >"$H_WORK/body"
h_run "put-object" aws s3api put-object --bucket "$B" --key doc --body "$H_WORK/body"
VID=$("$H_PY" -c 'import json,sys; print(json.load(sys.stdin)["VersionId"])' <<<"$H_OUT")
if h_run "get-object-retention" aws s3api get-object-retention --bucket "$B" --key doc \
    --version-id "$VID"; then
    grep -q '"Mode": "COMPLIANCE"' <<<"$H_OUT" && h_ok "default retention applied" ||
        h_bad "default retention applied" "$H_OUT"
fi
h_fails_with "delete-object --version-id (aws CLI)" AccessDenied \
    aws s3api delete-object --bucket "$B" --key doc --version-id "$VID" \
    --bypass-governance-retention
h_run "put-object-legal-hold ON" aws s3api put-object-legal-hold --bucket "$B" --key doc \
    --version-id "$VID" --legal-hold Status=ON

h_stop
h_start
if "$H_PY" "$H_DIR/object_lock.py" after-restart; then h_ok "locks hold after a restart"; else
    h_bad "locks hold after a restart"; fi
if h_run "get-object-legal-hold after the restart" aws s3api get-object-legal-hold \
    --bucket "$B" --key doc --version-id "$VID"; then
    grep -q '"Status": "ON"' <<<"$H_OUT" && h_ok "legal hold kept" || h_bad "legal hold" "$H_OUT"
fi
h_fails_with "delete-object --version-id after the restart" AccessDenied \
    aws s3api delete-object --bucket "$B" --key doc --version-id "$VID"
h_run "head-object of the locked version" aws s3api head-object --bucket "$B" --key doc \
    --version-id "$VID"
h_finish
