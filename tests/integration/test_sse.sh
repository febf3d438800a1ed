#!/usr/bin/env bash
# Encryption at rest (issue 10, scope 5; docs/encryption.md) with the real clients: the boto3
# suite sse.py (SSE-S3 sizes and ranges, multipart with part and range GETs, bucket default
# encryption, SSE-C right/wrong/missing key, the copy matrix), then the aws CLI (put-object --sse,
# head-object, a ranged get, s3 cp with --sse-c), then the proof: the drive folders and the
# metadata hold none of the marker strings of the encrypted bodies, while the markers of two plain
# objects are found (the grep's control). The master key file is created beside the data folder
# with mode 0600; the objects read back after a restart, and a server started with another master
# key refuses to decrypt them (500) rather than serve garbage. Refused on cluster nodes.
source "$(dirname "$0")/lib.sh"

h_own_server "encryption at rest is single-node for now (a cluster node answers 501)"
if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
export CAIRN_SSE_MARKERS=$H_WORK/markers CAIRN_SSE_PLAIN_MARKERS=$H_WORK/plain-markers
export CAIRN_SSE_KEYS=$H_WORK/ssec-key

if "$H_PY" "$H_DIR/sse.py"; then h_ok "boto3 SSE suite"; else h_bad "boto3 SSE suite"; fi

aws() { "$AWSBIN" --endpoint-url "$H_ENDPOINT" --region us-east-1 "$@"; }
B=sse-cli
h_run "create bucket" aws s3api create-bucket --bucket "$B"
CLI_MARK="CAIRN-SECRET-CLI-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
for i in $(seq 1 4000); do echo "$CLI_MARK line $i of a text body"; done >"$H_WORK/cli-body"
echo "$CLI_MARK" >>"$CAIRN_SSE_MARKERS"
h_run "put-object --server-side-encryption AES256" aws s3api put-object --bucket "$B" --key cli \
    --body "$H_WORK/cli-body" --server-side-encryption AES256
grep -q '"ServerSideEncryption": "AES256"' <<<"$H_OUT" && h_ok "put-object answers AES256" ||
    h_bad "put-object answers AES256" "$H_OUT"
if h_run "head-object" aws s3api head-object --bucket "$B" --key cli; then
    grep -q '"ServerSideEncryption": "AES256"' <<<"$H_OUT" && h_ok "head-object says AES256" ||
        h_bad "head-object says AES256" "$H_OUT"
fi
h_run "get-object --range" aws s3api get-object --bucket "$B" --key cli --range bytes=70000-140000 \
    "$H_WORK/cli-range"
h_eq "the range's bytes" "$(tail -c +70001 "$H_WORK/cli-body" | head -c 70001 | md5sum)" \
    "$(md5sum <"$H_WORK/cli-range")"
head -c 32 /dev/urandom >"$H_WORK/cli-key"
h_run "s3 cp --sse-c" aws s3 cp "$H_WORK/cli-body" "s3://$B/cli-c" --sse-c AES256 \
    --sse-c-key "fileb://$H_WORK/cli-key"
h_run "s3 cp --sse-c back" aws s3 cp "s3://$B/cli-c" "$H_WORK/cli-c" --sse-c AES256 \
    --sse-c-key "fileb://$H_WORK/cli-key"
h_eq "SSE-C round trip through the CLI" "$(h_md5 "$H_WORK/cli-body")" "$(h_md5 "$H_WORK/cli-c")"
h_fails_with "s3 cp of an SSE-C object without the key" "400|Bad Request" \
    aws s3 cp "s3://$B/cli-c" "$H_WORK/cli-nokey"

# The proof: no marker of an encrypted body anywhere under the data folder (drive chunks and the
# metadata files), while plain bodies' markers are found where they live.
h_stop
leaks=0
while read -r m; do
    [ -n "$m" ] || continue
    if grep -rqaF -- "$m" "$H_DATA"; then
        leaks=$((leaks + 1))
        h_bad "plaintext marker $m of an encrypted object found on disk" \
            "$(grep -rlaF -- "$m" "$H_DATA" | head -5)"
    fi
done <"$CAIRN_SSE_MARKERS"
n=$(grep -c . "$CAIRN_SSE_MARKERS")
if [ "$leaks" = 0 ] && [ "$n" -ge 15 ]; then
    h_ok "none of $n encrypted bodies' markers is on disk"
elif [ "$leaks" = 0 ]; then
    h_bad "the suite recorded the encrypted bodies' markers" "only $n"
fi
found=0
while read -r m; do
    [ -n "$m" ] && grep -rqaF -- "$m" "$H_DATA" && found=$((found + 1))
done <"$CAIRN_SSE_PLAIN_MARKERS"
h_eq "the grep finds every plain body's marker (control)" "$(grep -c . "$CAIRN_SSE_PLAIN_MARKERS")" \
    "$found"
h_eq "master key file beside the data folder, mode 600" 600 "$(stat -c %a "$H_DATA.key")"

# Restart: the same key reads everything back.
h_start
h_run "SSE-S3 object after a restart" aws s3api get-object --bucket "$B" --key cli "$H_WORK/again"
h_eq "  its bytes" "$(h_md5 "$H_WORK/cli-body")" "$(h_md5 "$H_WORK/again")"
h_stop
# Another master key (the env wins over the file): the data keys do not unwrap, nothing is served.
CAIRN_MASTER_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') h_start
AWS_MAX_ATTEMPTS=1 h_fails_with "SSE-S3 object under another master key: 500" "500|InternalError" \
    aws s3api get-object --bucket "$B" --key cli "$H_WORK/wrong"
h_run "a plain object still reads under another master key" \
    aws s3api get-object --bucket sse-py --key plain "$H_WORK/plain"
h_finish
