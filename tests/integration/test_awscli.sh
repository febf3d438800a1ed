#!/usr/bin/env bash
# aws CLI against one cairn node: buckets, single and multipart copies, sync of awkward names,
# s3api head/put/get-range/list/delete, presigned URLs (valid and expired), rm, rb, and the error
# codes clients branch on. Prefers Debian's /usr/bin/aws (awscli 2.9) over any other `aws` on PATH.
# Also runs against a cluster (lib.sh "Cluster mode"), each aws call through the next node when
# CAIRN_TEST_ALTERNATE=1.
source "$(dirname "$0")/lib.sh"

if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN" curl cmp
echo "client: $("$AWSBIN" --version 2>&1)"
h_start

aws() { "$AWSBIN" --endpoint-url "$(h_endpoint)" --region us-east-1 "$@"; }
B=$(h_bucket cli-bucket)
W=$H_WORK
SEED=4242
# shellcheck disable=SC2016 # a JMESPath literal, not shell
NKEYS='length(Contents || `[]`)'
echo "seed: $SEED"

h_run "s3 mb" aws s3 mb "s3://$B"
h_gen "$W/small.bin" 1000 "$SEED"
h_gen "$W/big.bin" $((20 << 20)) $((SEED + 1))
h_run "s3 cp small file" aws s3 cp "$W/small.bin" "s3://$B/small.bin"
h_run "s3 cp 20 MiB file (multipart)" aws s3 cp "$W/big.bin" "s3://$B/big.bin"
if h_run "s3 ls" aws s3 ls "s3://$B/"; then
    if grep -q 'small.bin' <<<"$H_OUT" && grep -q 'big.bin' <<<"$H_OUT"; then
        h_ok "s3 ls shows both objects"
    else
        h_bad "s3 ls shows both objects" "$H_OUT"
    fi
fi

# A tree with names that break naive URL handling.
T=$W/tree
mkdir -p "$T/with space" "$T/ünïcødé dir/ß" "$T/sub/deep"
printf 'space\n' >"$T/with space/a b.txt"
printf 'unicode\n' >"$T/ünïcødé dir/ß/файл 名前.txt"
printf 'plus\n' >"$T/plus+sign+.txt"
printf 'percent\n' >"$T/percent%20literal.txt"
h_gen "$T/sub/deep/random.bin" 70000 $((SEED + 2))
# sync compares sizes and local mtime against LastModified (whole seconds): old mtimes keep the
# second sync independent of sub-second timing.
find "$T" -type f -exec touch -d '2020-01-02 03:04:05' {} +
h_run "s3 sync tree with spaces/unicode/plus" aws s3 sync --no-progress "$T" "s3://$B/tree/"
if h_run "s3 sync again" aws s3 sync --no-progress "$T" "s3://$B/tree/"; then
    h_eq "second sync transfers nothing" "" "$(grep -E 'upload:|copy:' <<<"$H_OUT")"
fi
h_run "s3 cp --recursive back" aws s3 cp --recursive "s3://$B/tree/" "$W/back/" &&
    h_run "downloaded tree equals the original" diff -r "$T" "$W/back"
h_run "s3 cp big object back" aws s3 cp "s3://$B/big.bin" "$W/big.back" &&
    h_run "big object byte-exact" cmp "$W/big.bin" "$W/big.back"

if h_run "s3api head-object" aws s3api head-object --bucket "$B" --key big.bin; then
    h_eq "head-object ContentLength" 20971520 \
        "$("$H_PY" -c 'import json,sys; print(json.load(sys.stdin)["ContentLength"])' <<<"$H_OUT")"
    if grep -Eq '"ETag": "\\"[0-9a-f]{32}-[0-9]+\\""' <<<"$H_OUT"; then
        h_ok "multipart ETag has the -N form"
    else
        h_bad "multipart ETag has the -N form" "$H_OUT"
    fi
fi

h_run "s3api put-object with metadata" aws s3api put-object --bucket "$B" --key meta.txt \
    --body "$W/small.bin" --content-type text/plain --metadata color=blue,shape=round
if h_run "s3api head-object (metadata)" aws s3api head-object --bucket "$B" --key meta.txt; then
    h_eq "user metadata returned" "blue round text/plain" "$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("Metadata", {}).get("color"), d.get("Metadata", {}).get("shape"), d.get("ContentType"))
' <<<"$H_OUT")"
fi

if h_run "s3api get-object --range" aws s3api get-object --bucket "$B" --key big.bin \
    --range bytes=1048570-1048769 "$W/range.out"; then
    dd if="$W/big.bin" of="$W/range.want" bs=1 skip=1048570 count=200 status=none
    h_run "range bytes match" cmp "$W/range.want" "$W/range.out"
fi

if h_run "list-objects-v2 prefix+delimiter" aws s3api list-objects-v2 --bucket "$B" \
    --prefix tree/ --delimiter /; then
    h_eq "common prefixes" "tree/sub/ tree/with space/ tree/ünïcødé dir/" "$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(p["Prefix"] for p in d.get("CommonPrefixes", [])))' <<<"$H_OUT")"
    h_eq "keys at the prefix level" "tree/percent%20literal.txt tree/plus+sign+.txt" "$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(o["Key"] for o in d.get("Contents", [])))' <<<"$H_OUT")"
fi

for i in 0 1 2 3 4 5 6; do
    aws s3api put-object --bucket "$B" --key "page/k$i" --body "$W/small.bin" >/dev/null ||
        h_bad "put page/k$i"
done
if h_run "list-objects-v2 --page-size 2 --max-items 5" aws s3api list-objects-v2 --bucket "$B" \
    --prefix page/ --page-size 2 --max-items 5; then
    first=$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(o["Key"] for o in d["Contents"]), d.get("NextToken", "NONE"))' <<<"$H_OUT")
    keys=${first% *}
    token=${first##* }
    h_eq "first 5 keys" "page/k0 page/k1 page/k2 page/k3 page/k4" "$keys"
    if h_run "list-objects-v2 --starting-token" aws s3api list-objects-v2 --bucket "$B" \
        --prefix page/ --page-size 2 --starting-token "$token"; then
        h_eq "remaining keys" "page/k5 page/k6" "$("$H_PY" -c '
import json, sys
print(" ".join(o["Key"] for o in json.load(sys.stdin)["Contents"]))' <<<"$H_OUT")"
    fi
fi

if h_run "s3api delete-objects" aws s3api delete-objects --bucket "$B" \
    --delete '{"Objects":[{"Key":"page/k0"},{"Key":"page/k1"},{"Key":"page/missing"}]}'; then
    h_eq "delete-objects reports 3 deleted" 3 "$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
print(len(d.get("Deleted", [])))' <<<"$H_OUT")"
    h_eq "5 page/ keys left" 5 "$(aws s3api list-objects-v2 --bucket "$B" --prefix page/ \
        --query "$NKEYS" --output text 2>&1)"
fi

if h_run "s3 presign" aws s3 presign "s3://$B/small.bin" --expires-in 300; then
    url=$H_OUT
    h_run "curl presigned URL" curl -fsS -o "$W/presigned.out" "$url" &&
        h_run "presigned GET byte-exact" cmp "$W/small.bin" "$W/presigned.out"
fi
if h_run "s3 presign --expires-in 1" aws s3 presign "s3://$B/small.bin" --expires-in 1; then
    url=$H_OUT
    sleep 2 # the URL must outlive its expiry: this wait is the point of the test
    h_eq "expired presigned URL answers 403" 403 \
        "$(curl -s -o "$W/expired.out" -w '%{http_code}' "$url")"
fi

h_fails_with "wrong secret -> SignatureDoesNotMatch" SignatureDoesNotMatch \
    env AWS_SECRET_ACCESS_KEY=wrong-secret "$AWSBIN" --endpoint-url "$(h_endpoint)" \
    s3api list-objects-v2 --bucket "$B"
h_fails_with "unknown access key -> InvalidAccessKeyId" InvalidAccessKeyId \
    env AWS_ACCESS_KEY_ID=AKIANOSUCHKEY0000000 "$AWSBIN" --endpoint-url "$(h_endpoint)" \
    s3api list-objects-v2 --bucket "$B"
h_fails_with "invalid bucket name -> InvalidBucketName" InvalidBucketName \
    aws s3api create-bucket --bucket Bad_Bucket..Name
h_fails_with "get missing key -> NoSuchKey" 'NoSuchKey' \
    aws s3api get-object --bucket "$B" --key no/such/key "$W/missing.out"
h_fails_with "head missing key -> 404" '404|Not Found' \
    aws s3api head-object --bucket "$B" --key no/such/key

h_run "s3 rm --recursive" aws s3 rm --recursive "s3://$B/"
h_eq "bucket empty after rm" 0 \
    "$(aws s3api list-objects-v2 --bucket "$B" --query "$NKEYS" --output text 2>&1)"
h_run "s3 rb" aws s3 rb "s3://$B"
h_fails_with "head-bucket after rb -> 404" '404|Not Found|NoSuchBucket' \
    aws s3api head-bucket --bucket "$B"

h_finish
