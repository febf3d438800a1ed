#!/usr/bin/env bash
# s3cmd (SigV4, path-style via host_bucket = the endpoint itself) against one cairn node:
# mb, put, ls, get, info, del, rb. Also against a cluster (lib.sh "Cluster mode"), each s3cmd call
# through the next node when CAIRN_TEST_ALTERNATE=1.
source "$(dirname "$0")/lib.sh"
h_need s3cmd cmp
echo "client: $(s3cmd --version 2>&1)"
h_start

CFG=$H_WORK/s3cfg
cat >"$CFG" <<CFG
[default]
access_key = $CAIRN_ACCESS_KEY
secret_key = $CAIRN_SECRET_KEY
host_base = ${H_ENDPOINT#http://}
host_bucket = ${H_ENDPOINT#http://}
bucket_location = us-east-1
use_https = False
signature_v2 = False
check_ssl_certificate = False
CFG
s3() {
    local hp
    hp=$(h_endpoint)
    hp=${hp#http://}
    s3cmd -c "$CFG" --host="$hp" --host-bucket="$hp" --no-progress "$@"
}
B=$(h_bucket s3cmd-bucket)
SEED=77
echo "seed: $SEED"
h_gen "$H_WORK/one.bin" 300000 "$SEED"
h_gen "$H_WORK/big.bin" $((17 << 20)) $((SEED + 1)) # above s3cmd's 15 MiB multipart chunk

h_run "mb" s3 mb "s3://$B"
h_run "put" s3 put "$H_WORK/one.bin" "s3://$B/dir/one file.bin"
h_run "put 17 MiB (multipart)" s3 put "$H_WORK/big.bin" "s3://$B/big.bin"
if h_run "ls" s3 ls --recursive "s3://$B"; then
    if grep -q 'dir/one file.bin' <<<"$H_OUT" && grep -q 'big.bin' <<<"$H_OUT"; then
        h_ok "ls lists both objects"
    else
        h_bad "ls lists both objects" "$H_OUT"
    fi
fi
h_run "get" s3 get "s3://$B/dir/one file.bin" "$H_WORK/one.back" &&
    h_run "get byte-exact" cmp "$H_WORK/one.bin" "$H_WORK/one.back"
h_run "get multipart object" s3 get "s3://$B/big.bin" "$H_WORK/big.back" &&
    h_run "multipart object byte-exact" cmp "$H_WORK/big.bin" "$H_WORK/big.back"
if h_run "info" s3 info "s3://$B/dir/one file.bin"; then
    if grep -q "MD5 sum: *$(h_md5 "$H_WORK/one.bin")" <<<"$H_OUT" &&
        grep -Eq 'File size: *300000' <<<"$H_OUT"; then
        h_ok "info shows size and MD5"
    else
        h_bad "info shows size and MD5" "$H_OUT"
    fi
fi
h_run "del" s3 del "s3://$B/dir/one file.bin" "s3://$B/big.bin"
h_eq "bucket empty after del" "" "$(s3 ls --recursive "s3://$B" 2>&1)"
h_run "rb" s3 rb "s3://$B"
h_fails_with "ls of removed bucket fails" 'NoSuchBucket|404' s3 ls "s3://$B"
h_finish
