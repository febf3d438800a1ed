#!/usr/bin/env bash
# Bucket versioning (issue 10, scope 1; docs/versioning.md) with real clients: the boto3 suite
# versioning.py (versions and ids, GET/HEAD/DELETE by id, delete markers and their 404/405, copy by
# version, deleting versions for good, tagging and attributes per version, multipart, conditional
# PUTs racing, ListObjectVersions paged by 1/2/3/5 across key and version boundaries, prefix and
# delimiter, DeleteObjects with ids, suspended/null semantics); then the aws CLI emptying a
# versioned bucket the documented way (list-object-versions, delete-objects of every version and
# marker; delete-bucket refused with BucketNotEmpty before, accepted after), the versions surviving
# a restart; `cairn fsck --repair` keeping an older version's striped body; then rclone
# --s3-versions listing an old version and copying it back.
# Against a cluster (CAIRN_TEST_ENDPOINTS) the same, but for the restart and fsck (single node):
# cluster nodes keep versions as replicated records (docs/versioning.md, "On a cluster");
# test_cluster_versioning covers them through several nodes.
source "$(dirname "$0")/lib.sh"

if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
h_need rclone
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT

if "$H_PY" "$H_DIR/versioning.py"; then h_ok "boto3 versioning suite"; else
    h_bad "boto3 versioning suite"; fi

# ---- aws CLI: empty a versioned bucket ----
aws() { "$AWSBIN" --endpoint-url "$(h_endpoint)" --region us-east-1 "$@"; }
B=$(h_bucket versioning-cli)
h_run "create bucket" aws s3api create-bucket --bucket "$B"
h_run "enable versioning" aws s3api put-bucket-versioning --bucket "$B" \
    --versioning-configuration Status=Enabled
if h_run "get-bucket-versioning" aws s3api get-bucket-versioning --bucket "$B"; then
    grep -q '"Status": "Enabled"' <<<"$H_OUT" && h_ok "Status Enabled" || h_bad "Status" "$H_OUT"
fi
for i in 1 2 3; do
    printf 'body %s\n' "$i" >"$H_WORK/body"
    h_run "put-object k1 #$i" aws s3api put-object --bucket "$B" --key k1 --body "$H_WORK/body"
done
h_run "put-object k2" aws s3api put-object --bucket "$B" --key "dir/k 2" --body "$H_WORK/body"
h_run "delete-object k1 (a marker)" aws s3api delete-object --bucket "$B" --key k1
h_run "delete-object k2 (a marker)" aws s3api delete-object --bucket "$B" --key "dir/k 2"
h_fails_with "delete-bucket while versions remain" BucketNotEmpty \
    aws s3api delete-bucket --bucket "$B"

if [ "$H_CLUSTER" != 1 ]; then # a cluster's nodes are not this test's to restart
    h_stop
    h_start
fi
if h_run "list-object-versions after a restart" aws s3api list-object-versions --bucket "$B"; then
    h_eq "4 versions, 2 markers" "4 2" "$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(len(d.get("Versions", [])), len(d.get("DeleteMarkers", [])))' <<<"$H_OUT")"
    # The documented recipe: every version and every marker into one delete-objects call.
    "$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
objs = [{"Key": v["Key"], "VersionId": v["VersionId"]}
        for v in d.get("Versions", []) + d.get("DeleteMarkers", [])]
print(json.dumps({"Objects": objs, "Quiet": False}))' <<<"$H_OUT" >"$H_WORK/delete.json"
    if h_run "delete-objects of every version and marker" aws s3api delete-objects \
        --bucket "$B" --delete "file://$H_WORK/delete.json"; then
        h_eq "6 deleted, no errors" "6 0" "$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(len(d.get("Deleted", [])), len(d.get("Errors", [])))' <<<"$H_OUT")"
    fi
fi
if h_run "list-object-versions of the emptied bucket" aws s3api list-object-versions --bucket "$B"
then
    grep -q '"VersionId"' <<<"$H_OUT" && h_bad "bucket emptied" "$H_OUT" || h_ok "bucket emptied"
fi
h_run "delete-bucket once empty" aws s3api delete-bucket --bucket "$B"

# ---- fsck --repair keeps the bodies of older versions (they are no orphans) ----
fsck_keeps_versions() {
    FB=$(h_bucket versioning-fsck)
    h_run "create bucket (fsck)" aws s3api create-bucket --bucket "$FB"
    h_run "enable versioning (fsck bucket)" aws s3api put-bucket-versioning --bucket "$FB" \
        --versioning-configuration Status=Enabled
    h_gen "$H_WORK/old.bin" 300000 7 # striped: past the inline threshold
    h_gen "$H_WORK/new.bin" 300000 8
    h_run "put the old body" aws s3api put-object --bucket "$FB" --key big --body "$H_WORK/old.bin"
    OLDV=$("$H_PY" -c 'import json,sys; print(json.load(sys.stdin)["VersionId"])' <<<"$H_OUT")
    h_run "put the new body" aws s3api put-object --bucket "$FB" --key big --body "$H_WORK/new.bin"
    h_stop
    if h_run "fsck --repair --grace 0" "$CAIRN_BIN" fsck --data "$H_DATA" --repair --grace 0; then
        grep -qE 'orphans: [1-9]' <<<"$H_OUT" &&
            h_bad "fsck finds no orphan" "$H_OUT" || h_ok "fsck finds no orphan"
    fi
    h_start
    h_run "get the old version after fsck --repair" aws s3api get-object --bucket "$FB" --key big \
        --version-id "$OLDV" "$H_WORK/old.out"
    h_eq "old version's bytes intact" "$(h_md5 "$H_WORK/old.bin")" "$(h_md5 "$H_WORK/old.out" 2>/dev/null)"
}
[ "$H_CLUSTER" = 1 ] || fsck_keeps_versions # a single node's data directory

# ---- rclone --s3-versions: list an old version, copy it back ----
export RCLONE_CONFIG=$H_WORK/rclone.conf
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_CAIRN_TYPE=s3
export RCLONE_CONFIG_CAIRN_PROVIDER=Other
export RCLONE_CONFIG_CAIRN_ENDPOINT=$H_ENDPOINT
export RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY
export RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY
export RCLONE_CONFIG_CAIRN_REGION=us-east-1
export RCLONE_CONFIG_CAIRN_FORCE_PATH_STYLE=true
rc() { rclone --retries 1 --low-level-retries 2 "$@"; }
RB=$(h_bucket versioning-rclone)
h_run "create bucket (rclone)" aws s3api create-bucket --bucket "$RB"
h_run "enable versioning (rclone bucket)" aws s3api put-bucket-versioning --bucket "$RB" \
    --versioning-configuration Status=Enabled
mkdir -p "$H_WORK/src" "$H_WORK/back"
printf 'first edition\n' >"$H_WORK/src/report.txt"
h_run "rclone copy v1" rc copyto "$H_WORK/src/report.txt" "cairn:$RB/report.txt"
printf 'second edition, longer\n' >"$H_WORK/src/report.txt"
h_run "rclone copy v2" rc copyto "$H_WORK/src/report.txt" "cairn:$RB/report.txt"
if h_run "rclone lsf --s3-versions" rc lsf --s3-versions "cairn:$RB"; then
    OLD=$(grep -E '^report-v[0-9-]+-[0-9]+\.txt$' <<<"$H_OUT" | head -1)
    [ -n "$OLD" ] && h_ok "old version listed ($OLD)" || h_bad "old version listed" "$H_OUT"
    if [ -n "$OLD" ] && h_run "rclone copy the old version back" \
        rc copyto --s3-versions "cairn:$RB/$OLD" "$H_WORK/back/report.txt"; then
        h_eq "old version's bytes" "first edition" "$(cat "$H_WORK/back/report.txt")"
    fi
fi
h_run "rclone cat latest" rc cat "cairn:$RB/report.txt"
h_eq "latest bytes" "second edition, longer" "$H_OUT"
h_finish
