#!/usr/bin/env bash
# Fault: an object overwritten and then deleted while a slow client is still downloading it. The
# download must complete with the old bytes (read leases keep the old data until the GET ends),
# the new version must be served afterwards, and the delete must be final. Also against a cluster
# (lib.sh "Cluster mode"; with CAIRN_TEST_ALTERNATE=1 the download, the overwrite and the delete go
# through different nodes: the replicas' garbage grace period keeps the old cells then).
source "$(dirname "$0")/lib.sh"
h_need aws curl
h_start
aws_() { aws --endpoint-url "$(h_endpoint)" "$@"; }
L=$(h_bucket lease)
echo "seed 7 and 8"
h_gen "$H_WORK/old" $((32 << 20)) 7
h_gen "$H_WORK/new" $((3 << 20)) 8
h_run "create bucket" aws_ s3api create-bucket --bucket "$L"
h_run "put old version" aws_ s3api put-object --bucket "$L" --key obj --body "$H_WORK/old"
url=$(aws_ s3 presign "s3://$L/obj")
curl -sS --fail --limit-rate 8M -o "$H_WORK/got" "$url" &
reader=$!
h_track "$reader"
sleep 1
h_run "overwrite while the download runs" aws_ s3api put-object --bucket "$L" --key obj \
    --body "$H_WORK/new"
h_run "GET sees the new version" aws_ s3api get-object --bucket "$L" --key obj "$H_WORK/new.got"
cmp -s "$H_WORK/new" "$H_WORK/new.got" && h_ok "new version byte-exact" ||
    h_bad "new version byte-exact"
h_run "delete while the download runs" aws_ s3api delete-object --bucket "$L" --key obj
if wait "$reader"; then h_ok "slow download finished"; else h_bad "slow download finished"; fi
cmp -s "$H_WORK/old" "$H_WORK/got" && h_ok "slow download got the old bytes exactly" ||
    h_bad "slow download got the old bytes exactly" "$(ls -l "$H_WORK"/old "$H_WORK"/got)"
h_fails_with "deleted object is gone" "404|Not Found|NoSuchKey" \
    aws_ s3api head-object --bucket "$L" --key obj
h_finish
