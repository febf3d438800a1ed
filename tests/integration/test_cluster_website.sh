#!/usr/bin/env bash
# test_cluster_website: what issue 11 serves on cluster nodes (docs/website.md, docs/users.md) with
# one etcd member and three `cairn server` nodes n1..n3 of one cluster. Static websites: the
# configuration put through n1 is read back through n3; through n2 and n3 (curl, Host
# BUCKET.s3-website.localhost) the index document, a sub-directory index, "dir" -> 302 "/dir/",
# a missing page as the error document with 404, a routing rule's redirect, an object's own
# redirect, a range (206) and a conditional GET (304); deleted through n2, a website request
# through n3 answers NoSuchWebsiteConfiguration. Public object ACLs: x-amz-acl public-read on a
# PUT through n1 lets an anonymous GET through n2 in, a private object stays 403 until
# PutObjectAcl through n3 opens it (GetObjectAcl through n1 shows AllUsers READ), a multipart
# upload (Create, part, Complete through three nodes) and a copy made public-read are readable
# anonymously, and IgnorePublicAcls put through n2 closes them again. s3:ExistingObjectTag: a
# policy allowing anonymous reads of objects tagged pub=yes lets one through n3 and refuses one
# tagged pub=no, until PutObjectTagging through n1 retags it; the same condition on DeleteObject
# lets a user's DeleteObjects through n3 delete the key tagged so and refuse the other (decided
# per key on a worker); a condition on PutObject decides bob's POST form uploads through n2 and n3
# (allowed over a key tagged x=y, 403 over one tagged otherwise and over a missing key: the
# key's record is read while the form's body waits). About 10 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and clustered servers"
. "$H_DIR/lib_etcd.sh"
cl_cluster cw 2 n1 n2 n3
# every node the same master key: the users' secrets (docs/users.md)
CAIRN_MASTER_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export CAIRN_MASTER_KEY
CL_SERVER_CONF="website_domain = s3-website.localhost"
for n in "${NODES[@]}"; do cl_node_start "$n" cw || h_finish; done

url() { echo "http://127.0.0.1:${PORT[$1]}"; }
# rq NODE METHOD PATH [QUERY] [BODY] [HEADER:VALUE...]: a signed request as root; prints the
# status, the response headers (lower-case) and the body; fails unless 2xx.
rq() {
    CAIRN_ENDPOINT=$(url "$1") "$H_PY" - "${@:2}" <<'EOF'
import base64, hashlib, os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
method, path = sys.argv[1], sys.argv[2]
query = dict(p.partition("=")[::2] for p in sys.argv[3].split("&") if p) if len(sys.argv) > 3 else {}
body = sys.argv[4].encode() if len(sys.argv) > 4 else b""
headers = dict(h.split(":", 1) for h in sys.argv[5:])
if body and query:
    headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
st, hdrs, resp = s3raw.request(method, path, query, body=body, headers=headers)
print(st)
for k, v in hdrs.items():
    print("%s: %s" % (k, v))
print(resp.decode("utf-8", "replace")[:2000])
sys.exit(0 if 200 <= st < 300 else 1)
EOF
}
# web NODE PATH [CURL ARGS...]: a website request; prints "STATUS LOCATION" then the body
web() {
    local n=$1 p=$2
    shift 2
    curl -s -o "$H_WORK/web.body" -w '%{http_code} %{redirect_url}\n' \
        -H "Host: site.s3-website.localhost:${PORT[$n]}" "$@" "$(url "$n")$p"
    cat "$H_WORK/web.body"
}
web_is() { [[ $(web "$1" "$2") == "$3 "* ]]; } # web_is NODE PATH STATUS (no pipe: pipefail)
anon_is() {                                             # anon_is NODE PATH STATUS
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$(url "$1")$2")" = "$3" ]
}
expect() { # expect DESC PATTERN: the last output ($H_OUT, as one string) matches PATTERN (ERE)
    grep -Ezq -- "$2" <<<"$H_OUT" && h_ok "$1" || h_bad "$1" "$H_OUT"
}

# ---- a static website through every node ----
h_run "CreateBucket site through n1" rq n1 PUT /site
POLICY='{"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::site","arn:aws:s3:::site/*"]}]}'
h_run "a public-read policy through n1" rq n1 PUT /site policy "$POLICY"
h_run "PUT index.html" rq n1 PUT /site/index.html "" "<h1>home</h1>" "Content-Type:text/html"
h_run "PUT docs/index.html" rq n1 PUT /site/docs/index.html "" "<h1>docs</h1>" "Content-Type:text/html"
h_run "PUT error.html" rq n1 PUT /site/error.html "" "<h1>oops</h1>" "Content-Type:text/html"
h_run "PUT moved (an object redirect)" rq n1 PUT /site/moved "" "x" \
    "x-amz-website-redirect-location:/docs/"
SITE='<WebsiteConfiguration><IndexDocument><Suffix>index.html</Suffix></IndexDocument><ErrorDocument><Key>error.html</Key></ErrorDocument><RoutingRules><RoutingRule><Condition><KeyPrefixEquals>old/</KeyPrefixEquals></Condition><Redirect><ReplaceKeyPrefixWith>docs/</ReplaceKeyPrefixWith><HttpRedirectCode>302</HttpRedirectCode></Redirect></RoutingRule></RoutingRules></WebsiteConfiguration>'
h_run "PutBucketWebsite through n1" rq n1 PUT /site website "$SITE"
h_run "GetBucketWebsite through n3" rq n3 GET /site website
expect "  ... answers the configuration as put" "<Suffix>index.html</Suffix>.*<KeyPrefixEquals>old/"
for n in n2 n3; do
    h_until_ok "/ through $n: the index document" 5 web_is "$n" / 200
    H_OUT=$(web "$n" /)
    expect "  ... its body" "^200 .*<h1>home</h1>"
    h_run "/docs/ through $n" web "$n" /docs/
    expect "  ... the sub-directory's index" "^200 .*<h1>docs</h1>"
    h_run "/docs through $n" web "$n" /docs
    expect "  ... 302 to /docs/" "^302 http://127.0.0.1:${PORT[$n]}/docs/"
    h_run "/nothing through $n" web "$n" /nothing
    expect "  ... the error document with 404" "^404 .*<h1>oops</h1>"
    h_run "/old/index.html through $n" web "$n" /old/index.html
    expect "  ... the routing rule's 302 to docs/" "^302 http://site.s3-website.localhost:${PORT[$n]}/docs/index.html"
    h_run "/moved through $n" web "$n" /moved
    expect "  ... the object's own redirect (301)" "^301 .*/docs/"
done
h_run "a range through n2" web n2 /index.html -H "Range: bytes=1-3"
expect "  ... 206" "^206 "
h_eq "  ... with those bytes" "h1>" "$(cat "$H_WORK/web.body")"
etag=$(curl -sI -H "Host: site.s3-website.localhost" "$(url n3)/index.html" | tr -d '\r' |
    sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
h_run "If-None-Match with the ETag through n3" web n3 /index.html -H "If-None-Match: $etag"
expect "  ... 304" "^304 "
h_run "DeleteBucketWebsite through n2" rq n2 DELETE /site website
h_until_ok "a website request through n3: NoSuchWebsiteConfiguration" 5 web_is n3 / 404
H_OUT=$(web n3 /)
expect "  ... said in an HTML page" "NoSuchWebsiteConfiguration"

# ---- public object ACLs, written and decided through different nodes ----
h_run "CreateBucket acls through n1 (ownership BucketOwnerPreferred)" rq n1 PUT /acls "" "" \
    "x-amz-object-ownership:BucketOwnerPreferred"
h_run "PUT pub with x-amz-acl public-read through n1" rq n1 PUT /acls/pub "" "public" \
    "x-amz-acl:public-read"
h_run "PUT priv (private) through n1" rq n1 PUT /acls/priv "" "private"
h_until_ok "an anonymous GET of pub through n2" 5 anon_is n2 /acls/pub 200
h_run "  ... and of priv through n2: 403" anon_is n2 /acls/priv 403
h_run "PutObjectAcl public-read on priv through n3" rq n3 PUT /acls/priv acl "" "x-amz-acl:public-read"
h_until_ok "an anonymous GET of priv through n2 now" 5 anon_is n2 /acls/priv 200
h_run "GetObjectAcl of priv through n1" rq n1 GET /acls/priv acl
expect "  ... grants AllUsers READ" "AllUsers.*READ"
# mp_copy: a multipart upload with x-amz-acl public-read (Create through n1, the part through n2,
# Complete through n3) and a copy of a private object src made public-read by CopyObject through n2
mp_copy() {
    "$H_PY" - "$(url n1)" "$(url n2)" "$(url n3)" <<'PY'
import os, re, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
def at(i, *a, **kw):
    os.environ["CAIRN_ENDPOINT"] = sys.argv[1 + i]
    return s3raw.request(*a, **kw)
st, _, body = at(0, "POST", "/acls/mp", {"uploads": ""}, headers={"x-amz-acl": "public-read"})
uid = re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()
st, h, _ = at(1, "PUT", "/acls/mp", {"partNumber": "1", "uploadId": uid}, body=b"multipart")
done = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
        "</CompleteMultipartUpload>" % h["etag"]).encode()
st, _, body = at(2, "POST", "/acls/mp", {"uploadId": uid}, body=done)
print("complete", st)
st, _, body = at(0, "PUT", "/acls/src", body=b"source")
print("src", st)
st, _, body = at(1, "PUT", "/acls/copy", headers={"x-amz-copy-source": "/acls/src",
                                                  "x-amz-acl": "public-read"})
print("copy", st)
sys.exit(0 if st == 200 else 1)
PY
}
h_run "a multipart upload and a copy, each with x-amz-acl public-read" mp_copy
h_until_ok "  ... an anonymous GET of the completed object through n2" 5 anon_is n2 /acls/mp 200
h_until_ok "  ... and of the copy through n3" 5 anon_is n3 /acls/copy 200
h_run "  ... while its private source stays 403" anon_is n3 /acls/src 403
h_fails_with "PutObjectAcl on a missing key: NoSuchKey" "NoSuchKey" rq n2 PUT /acls/none acl "" \
    "x-amz-acl:public-read"
h_run "IgnorePublicAcls through n2" rq n2 PUT /acls publicAccessBlock \
    '<PublicAccessBlockConfiguration><IgnorePublicAcls>true</IgnorePublicAcls></PublicAccessBlockConfiguration>'
h_until_ok "an anonymous GET of pub through n3: 403" 5 anon_is n3 /acls/pub 403

# ---- s3:ExistingObjectTag conditions ----
h_run "CreateBucket tagged through n1" rq n1 PUT /tagged
TPOL='{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::tagged/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/pub":"yes"}}},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"s3:DeleteObject","Resource":"arn:aws:s3:::tagged/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/pub":"yes"}}}]}'
h_run "a policy with s3:ExistingObjectTag through n2" rq n2 PUT /tagged policy "$TPOL"
h_run "PUT yes (tagged pub=yes) through n1" rq n1 PUT /tagged/yes "" "y" "x-amz-tagging:pub=yes"
h_run "PUT no (tagged pub=no) through n1" rq n1 PUT /tagged/no "" "n" "x-amz-tagging:pub=no"
h_until_ok "an anonymous GET of yes through n3" 5 anon_is n3 /tagged/yes 200
h_run "  ... and of no through n3: 403" anon_is n3 /tagged/no 403
h_run "  ... and of a missing key: 403" anon_is n3 /tagged/none 403
h_run "PutObjectTagging pub=yes on no through n1" rq n1 PUT /tagged/no tagging \
    '<Tagging><TagSet><Tag><Key>pub</Key><Value>yes</Value></Tag></TagSet></Tagging>'
h_until_ok "an anonymous GET of no through n2 now" 5 anon_is n2 /tagged/no 200
if h_run "cairn admin user create bob through n1" "$CAIRN_BIN" admin user create bob --endpoint "$(url n1)"; then
    AK=$(sed -n 's/^access_key=//p' <<<"$H_OUT") SK=$(sed -n 's/^secret_key=//p' <<<"$H_OUT")
    h_run "PUT d1 (pub=yes) and d2 (pub=no) through n1" rq n1 PUT /tagged/d1 "" "1" "x-amz-tagging:pub=yes"
    rq n1 PUT /tagged/d2 "" "2" "x-amz-tagging:pub=no" >/dev/null || h_bad "PUT d2"
    DEL='<Delete><Object><Key>d1</Key></Object><Object><Key>d2</Key></Object></Delete>'
    bob_deletes() { CAIRN_ACCESS_KEY=$AK CAIRN_SECRET_KEY=$SK rq n3 POST /tagged delete "$DEL"; }
    h_until_ok "bob's DeleteObjects through n3 (once n3 knows bob)" 5 bob_deletes
    expect "  ... deletes d1 (tagged pub=yes)" "<Deleted><Key>d1</Key>"
    expect "  ... refuses d2 (AccessDenied)" "<Error><Key>d2</Key><Code>AccessDenied</Code>"
    h_run "  ... d2 is still there" rq n2 HEAD /tagged/d2
    h_fails_with "  ... d1 is gone" "^404" rq n2 HEAD /tagged/d1

    # POST Object decided by s3:ExistingObjectTag: the form's key's record is read mid-body
    h_run "CreateBucket ptag through n1" rq n1 PUT /ptag
    PPOL='{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::ptag/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/x":"y"}}}]}'
    h_run "a policy letting bob write over objects tagged x=y, through n2" rq n2 PUT /ptag policy "$PPOL"
    h_run "PUT ok (x=y) and no (x=n) through n1" rq n1 PUT /ptag/ok "" "old" "x-amz-tagging:x=y"
    rq n1 PUT /ptag/no "" "old" "x-amz-tagging:x=n" >/dev/null || h_bad "PUT no"
    # bob_post NODE KEY: bob's POST form (boto3's presigned fields, curl) of "new"; prints the status
    bob_post() {
        local f
        f=$(CAIRN_ACCESS_KEY=$AK CAIRN_SECRET_KEY=$SK "$H_PY" - "$(url "$1")" "$2" <<'EOF'
import os, sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id=os.environ["CAIRN_ACCESS_KEY"],
                  aws_secret_access_key=os.environ["CAIRN_SECRET_KEY"],
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
for k, v in s3.generate_presigned_post("ptag", sys.argv[2], ExpiresIn=300)["fields"].items():
    print("-F\n%s=%s" % (k, v))
EOF
        ) || return 1
        printf new >"$H_WORK/post.file"
        mapfile -t A <<<"$f"
        curl -s -o "$H_WORK/post.out" -w '%{http_code}' "${A[@]}" -F "file=@$H_WORK/post.file" \
            "$(url "$1")/ptag"
    }
    h_eq "bob's POST over ok (tagged x=y) through n3: 204" 204 "$(bob_post n3 ok)"
    h_run "  ... ok holds the form's file" rq n2 GET /ptag/ok
    expect "  ... (new)" "new\s*$"
    h_eq "bob's POST over no (tagged x=n) through n2: 403" 403 "$(bob_post n2 no)"
    grep -q "<Code>AccessDenied</Code>" "$H_WORK/post.out" && h_ok "  ... AccessDenied" ||
        h_bad "  ... AccessDenied" "$(cat "$H_WORK/post.out")"
    h_run "  ... no is unchanged" rq n1 GET /ptag/no
    expect "  ... (old)" "old\s*$"
    h_eq "bob's POST to a missing key through n3: 403" 403 "$(bob_post n3 none)"
fi

for n in "${NODES[@]}"; do cl_node_stop "$n"; done
grep -lE "ERROR: AddressSanitizer|runtime error:" "$H_WORK"/n*.log >/dev/null 2>&1 &&
    h_bad "no node logged a sanitizer report" || h_ok "no node logged a sanitizer report"
h_finish
