#!/usr/bin/env bash
# Users, keys, bucket policies, ACLs and anonymous access (issue 11, scopes 1-3; docs/users.md).
# Three users made with `cairn admin user create` as an operator would; the boto3 suite users.py
# (another user's bucket denied with nothing changed, a policy granting a prefix, an explicit deny
# beating an allow, anonymous reads of a public prefix, PublicAccessBlock, canned ACLs), the aws
# CLI as the third user, key and user disabling, admin refused to users, the secrets absent from
# the data folder in plaintext, and everything surviving a restart. Users are made with the
# master key file gone (the key loaded at start is used, never loaded a second time).
source "$(dirname "$0")/lib.sh"

h_own_server "users are single-node (a cluster node answers 501)"
if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
# The master key is loaded once, at start (SSE's, g->mkey): the users use that copy, so taking
# the key file away now does not stop them (it is put back before the restart below).
h_run "the master key file was made at start" test -s "$H_DATA.key"
mv "$H_DATA.key" "$H_WORK/key.saved"

admin() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }
# make_user NAME VAR: create NAME, export VAR_AK / VAR_SK from the access_key= / secret_key= lines
make_user() {
    local out
    if out=$(admin user create "$1"); then
        h_ok "cairn admin user create $1"
    else
        h_bad "cairn admin user create $1" "$out"
        return 1
    fi
    export "$2_AK=$(sed -n 's/^access_key=//p' <<<"$out")"
    export "$2_SK=$(sed -n 's/^secret_key=//p' <<<"$out")"
}
make_user alice ALICE
make_user bob BOB
make_user carol CAROL
h_fails_with "a second user named alice" AlreadyExists admin user create alice
h_fails_with "a user named root" InvalidRequest admin user create root
if CAIRN_ACCESS_KEY=$BOB_AK CAIRN_SECRET_KEY=$BOB_SK "$CAIRN_BIN" admin user list \
    --endpoint "$H_ENDPOINT" >"$H_WORK/out" 2>&1; then
    h_bad "a user cannot administer users" "$(cat "$H_WORK/out")"
else
    h_ok "a user cannot administer users"
fi

if "$H_PY" "$H_DIR/users.py"; then h_ok "boto3 users suite"; else h_bad "boto3 users suite"; fi

# the aws CLI as the third user
caws() {
    AWS_ACCESS_KEY_ID=$CAROL_AK AWS_SECRET_ACCESS_KEY=$CAROL_SK "$AWSBIN" \
        --endpoint-url "$H_ENDPOINT" --region us-east-1 "$@"
}
h_run "carol creates a bucket" caws s3api create-bucket --bucket carol-bucket
printf 'carol data' >"$H_WORK/c"
h_run "carol puts an object" caws s3api put-object --bucket carol-bucket --key c --body "$H_WORK/c"
h_fails_with "carol reads alice's object" AccessDenied \
    caws s3api get-object --bucket alice-bucket --key priv/s.txt "$H_WORK/got"
h_fails_with "carol overwrites bob's bucket" AccessDenied \
    caws s3api put-object --bucket bob-bucket --key x --body "$H_WORK/c"
h_run "carol lists her buckets" caws s3api list-buckets --query 'Buckets[].Name' --output text
h_eq "carol sees only her bucket" "carol-bucket" "$(tr -d '[:space:]' <<<"$H_OUT")"
code=$(curl -s -o "$H_WORK/anon" -w '%{http_code}' "$H_ENDPOINT/carol-bucket/c")
h_eq "anonymous GET of a private object" 403 "$code"
grep -q '<Code>AccessDenied</Code>' "$H_WORK/anon" && h_ok "the 403 is S3 XML" ||
    h_bad "the 403 is S3 XML" "$(cat "$H_WORK/anon")"
cat >"$H_WORK/pol.json" <<'JSON'
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",
 "Resource":"arn:aws:s3:::carol-bucket/*"}]}
JSON
h_run "carol makes her bucket public" caws s3api put-bucket-policy --bucket carol-bucket \
    --policy "file://$H_WORK/pol.json"
h_eq "curl reads carol's public object" "carol data" "$(curl -s "$H_ENDPOINT/carol-bucket/c")"

# keys and users disabled, enabled, deleted
h_run "bob reads his bucket" env AWS_ACCESS_KEY_ID="$BOB_AK" AWS_SECRET_ACCESS_KEY="$BOB_SK" \
    "$AWSBIN" --endpoint-url "$H_ENDPOINT" s3api list-objects-v2 --bucket bob-bucket
h_run "disable bob's key" admin user key disable "$BOB_AK"
h_fails_with "a disabled key is refused" InvalidAccessKeyId env AWS_ACCESS_KEY_ID="$BOB_AK" \
    AWS_SECRET_ACCESS_KEY="$BOB_SK" "$AWSBIN" --endpoint-url "$H_ENDPOINT" \
    s3api list-objects-v2 --bucket bob-bucket
h_run "enable bob's key" admin user key enable "$BOB_AK"
h_run "disable the user bob" admin user disable bob
h_fails_with "a disabled user's key is refused" InvalidAccessKeyId env AWS_ACCESS_KEY_ID="$BOB_AK" \
    AWS_SECRET_ACCESS_KEY="$BOB_SK" "$AWSBIN" --endpoint-url "$H_ENDPOINT" \
    s3api list-objects-v2 --bucket bob-bucket
h_run "enable the user bob" admin user enable bob
if out=$(admin user key create bob); then
    h_ok "a second key for bob"
    BOB2_AK=$(sed -n 's/^access_key=//p' <<<"$out")
    BOB2_SK=$(sed -n 's/^secret_key=//p' <<<"$out")
else
    h_bad "a second key for bob" "$out"
fi
h_run "cairn admin user list" admin user list
grep -q "$BOB2_AK" <<<"$H_OUT" && h_ok "the list shows bob's second key" ||
    h_bad "the list shows bob's second key" "$H_OUT"
h_run "cairn admin users (the same table)" admin users
grep -q "$BOB2_AK" <<<"$H_OUT" && grep -q '^USER ' <<<"$H_OUT" && h_ok "admin users lists the keys" ||
    h_bad "admin users lists the keys" "$H_OUT"
h_run "cairn admin users --json" admin users --json
"$H_PY" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if any(k["access_key"] == sys.argv[1] for u in d["users"] for k in u["keys"]) else 1)' "$BOB2_AK" <<<"$H_OUT" &&
    h_ok "admin users --json is the users document" || h_bad "admin users --json is the users document" "$H_OUT"

# secrets at rest: wrapped under the master key, never in plaintext in the data folder
found=""
for s in "$ALICE_SK" "$BOB_SK" "$CAROL_SK" "$BOB2_SK"; do
    grep -rqaF -- "$s" "$H_DATA" && found="$found ${s:0:6}..."
done
h_eq "no secret key in plaintext under the data dir" "" "$found"

h_stop
mv "$H_WORK/key.saved" "$H_DATA.key"
h_start
h_run "bob's second key works after a restart" env AWS_ACCESS_KEY_ID="$BOB2_AK" \
    AWS_SECRET_ACCESS_KEY="$BOB2_SK" "$AWSBIN" --endpoint-url "$H_ENDPOINT" \
    s3api list-objects-v2 --bucket bob-bucket
h_eq "carol's policy survives a restart" "carol data" "$(curl -s "$H_ENDPOINT/carol-bucket/c")"
h_run "delete the user bob" admin user delete bob
h_fails_with "a deleted user's key is refused" InvalidAccessKeyId env AWS_ACCESS_KEY_ID="$BOB2_AK" \
    AWS_SECRET_ACCESS_KEY="$BOB2_SK" "$AWSBIN" --endpoint-url "$H_ENDPOINT" \
    s3api list-objects-v2 --bucket bob-bucket
h_finish
