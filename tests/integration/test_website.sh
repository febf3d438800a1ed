#!/usr/bin/env bash
# Static website hosting (issue 11, scope 5; docs/website.md) on a single node. boto3 sets the
# configurations (Put/Get/DeleteBucketWebsite, S3's validation errors, NoSuchWebsiteConfiguration)
# and uploads a small site; curl sends website requests by Host ("BUCKET.s3-website.localhost")
# on the S3 port, unsigned: the index document for "/" and for a sub-directory, "dir" redirected
# to "dir/", the error document with 404 (anonymous may list) and 403 (it may not) and an HTML
# page without one, a private object not served, RedirectAllRequestsTo, routing rules (key
# prefix, and error code), the object's x-amz-website-redirect-location, conditional GET, a
# range, a gzip'd object with its Content-Encoding, HEAD, and a POST refused with an HTML page.
source "$(dirname "$0")/lib.sh"

"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_need curl
h_own_server "website hosting is single-node"
printf '[server]\nwebsite_domain = s3-website.localhost\n' >"$H_WORK/server.conf"
H_SERVER_ARGS=(--config "$H_WORK/server.conf")
h_start
E=$H_ENDPOINT

boto() { # boto3 script on stdin with s3 (a root client for $E)
    "$H_PY" - "$@" <<EOF
import boto3, botocore, json, sys
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url="$E", region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
def public(b, listing):
    st = [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
           "Resource": "arn:aws:s3:::%s/*" % b},
          {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
           "Resource": "arn:aws:s3:::%s/private/*" % b}]
    if listing:
        st.append({"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
                   "Resource": "arn:aws:s3:::%s" % b})
    s3.put_bucket_policy(Bucket=b, Policy=json.dumps({"Version": "2012-10-17", "Statement": st}))
def refused(code, cfg, b="site"):
    try:
        s3.put_bucket_website(Bucket=b, WebsiteConfiguration=cfg)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == code, (cfg, e.response)
        return
    sys.exit("accepted %r" % cfg)
$(cat)
EOF
}

# web BUCKET PATH [CURL ARGS...]: a website request; prints headers and body
web() {
    local b=$1 p=$2
    shift 2
    curl -sS -D- --max-time 10 -H "Host: $b.s3-website.localhost:$H_PORT" "$@" "$E$p"
}
status_of() { head -n1 <<<"$1" | awk '{print $2}'; }
hdr_of() { grep -i "^$1:" <<<"$2" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }
body_of() { sed '1,/^\r$/d' <<<"$1"; }

h_run "create buckets, upload a site" boto <<'EOF'
import gzip
for b in ("site", "closed", "nolist", "moved"):
    s3.create_bucket(Bucket=b)
def put(b, k, body, **kw):
    s3.put_object(Bucket=b, Key=k, Body=body, **kw)
for b in ("site", "nolist", "closed"):
    put(b, "index.html", b"<h1>home</h1>", ContentType="text/html")
    put(b, "error.html", b"<h1>custom error</h1>", ContentType="text/html")
put("site", "about/index.html", b"<h1>about</h1>", ContentType="text/html")
put("site", "style.css", b"body { color: red }" * 50, ContentType="text/css")
put("site", "app.js", gzip.compress(b"console.log('hi');" * 100), ContentType="application/javascript",
    ContentEncoding="gzip")
put("site", "old.html", b"moved", WebsiteRedirectLocation="/new.html")
put("site", "private/secret.html", b"secret", ContentType="text/html")
public("site", True)
public("nolist", False)
EOF

h_run "GetBucketWebsite without one: NoSuchWebsiteConfiguration" boto <<'EOF'
try:
    s3.get_bucket_website(Bucket="site")
    sys.exit("no error")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "NoSuchWebsiteConfiguration", e.response
EOF
out=$(web site /)
h_eq "website request to a bucket without configuration: 404 HTML" "404 text/html; charset=utf-8" \
    "$(status_of "$out") $(hdr_of content-type "$out")"
grep -q "NoSuchWebsiteConfiguration" <<<"$out" && h_ok "the page names NoSuchWebsiteConfiguration" ||
    h_bad "the page names NoSuchWebsiteConfiguration" "$out"

h_run "PutBucketWebsite refuses bad configurations" boto <<'EOF'
refused("InvalidArgument", {"ErrorDocument": {"Key": "e.html"}})
refused("InvalidArgument", {"IndexDocument": {"Suffix": "a/index.html"}})
refused("InvalidArgument", {"IndexDocument": {"Suffix": "index.html"},
                            "RedirectAllRequestsTo": {"HostName": "example.com"}})
refused("InvalidArgument", {"RedirectAllRequestsTo": {"HostName": "example.com", "Protocol": "ftp"}})
refused("InvalidArgument", {"IndexDocument": {"Suffix": "index.html"}, "RoutingRules": [
    {"Redirect": {"ReplaceKeyWith": "a", "ReplaceKeyPrefixWith": "b"}}]})
refused("InvalidArgument", {"IndexDocument": {"Suffix": "index.html"}, "RoutingRules": [
    {"Condition": {"HttpErrorCodeReturnedEquals": "200"}, "Redirect": {"HostName": "x"}}]})
refused("InvalidArgument", {"IndexDocument": {"Suffix": "index.html"}, "RoutingRules": [
    {"Redirect": {"HostName": "x", "HttpRedirectCode": "200"}}]})
refused("InvalidArgument", {"IndexDocument": {"Suffix": "index.html"}, "RoutingRules": [
    {"Redirect": {"HostName": "x"}}] * 51})
refused("NoSuchBucket", {"IndexDocument": {"Suffix": "index.html"}}, b="nosuchbucket")
EOF

h_run "PutBucketWebsite, GetBucketWebsite returns it" boto <<'EOF'
cfg = {"IndexDocument": {"Suffix": "index.html"}, "ErrorDocument": {"Key": "error.html"},
       "RoutingRules": [
           {"Condition": {"KeyPrefixEquals": "docs/"},
            "Redirect": {"ReplaceKeyPrefixWith": "documents/", "HttpRedirectCode": "302"}},
           {"Condition": {"KeyPrefixEquals": "gone/", "HttpErrorCodeReturnedEquals": "404"},
            "Redirect": {"HostName": "archive.example.com", "Protocol": "https"}}]}
for b in ("site", "nolist", "closed"):
    s3.put_bucket_website(Bucket=b, WebsiteConfiguration=cfg)
got = s3.get_bucket_website(Bucket="site")
assert got["IndexDocument"] == {"Suffix": "index.html"}, got
assert got["ErrorDocument"] == {"Key": "error.html"}, got
assert len(got["RoutingRules"]) == 2 and got["RoutingRules"][0]["Redirect"]["HttpRedirectCode"] == "302", got
s3.put_bucket_website(Bucket="moved", WebsiteConfiguration={
    "RedirectAllRequestsTo": {"HostName": "www.example.com", "Protocol": "https"}})
s3.put_bucket_tagging(Bucket="site", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
assert s3.get_bucket_website(Bucket="site")["ErrorDocument"] == {"Key": "error.html"}
EOF

# ---- serving ----
out=$(web site /)
h_eq "/ serves the index document" "200 <h1>home</h1>" "$(status_of "$out") $(body_of "$out")"
out=$(web site /about/)
h_eq "/about/ serves about/index.html" "200 <h1>about</h1>" "$(status_of "$out") $(body_of "$out")"
out=$(web site /about)
h_eq "/about redirects to /about/" "302 /about/" "$(status_of "$out") $(hdr_of location "$out")"
out=$(web site /style.css)
h_eq "a stylesheet with its type" "200 text/css" "$(status_of "$out") $(hdr_of content-type "$out")"
out=$(web site /nothing.html)
h_eq "missing key, listable: 404 with the error document" "404 <h1>custom error</h1>" \
    "$(status_of "$out") $(body_of "$out")"
out=$(web nolist /nothing.html)
h_eq "missing key, not listable: 403 with the error document" "403 <h1>custom error</h1>" \
    "$(status_of "$out") $(body_of "$out")"
out=$(web site "/$(printf 'a%.0s' {1..1020})/")
h_eq "a key at the limit plus the index suffix: missing (404), not an error" 404 "$(status_of "$out")"
out=$(web site /private/secret.html)
h_eq "a private object: 403 with the error document" "403 <h1>custom error</h1>" \
    "$(status_of "$out") $(body_of "$out")"
out=$(web closed /)
h_eq "a bucket without public reads: 403 page, not its index" "403 text/html; charset=utf-8" \
    "$(status_of "$out") $(hdr_of content-type "$out")"
grep -q "home" <<<"$out" && h_bad "the closed bucket's index was not served" "$out" ||
    h_ok "the closed bucket's index was not served"
out=$(web site /docs/guide.html)
h_eq "routing rule by prefix: 302 to documents/" "302 http://site.s3-website.localhost:$H_PORT/documents/guide.html" \
    "$(status_of "$out") $(hdr_of location "$out")"
out=$(web site /gone/page.html)
h_eq "routing rule on 404: 301 to the archive" "301 https://archive.example.com/gone/page.html" \
    "$(status_of "$out") $(hdr_of location "$out")"
out=$(web moved /a/b.html)
h_eq "RedirectAllRequestsTo" "301 https://www.example.com/a/b.html" \
    "$(status_of "$out") $(hdr_of location "$out")"
out=$(web site /old.html)
h_eq "x-amz-website-redirect-location: 301" "301 /new.html" "$(status_of "$out") $(hdr_of location "$out")"

# ---- HTTP semantics of the served objects ----
out=$(web site /style.css)
etag=$(hdr_of etag "$out")
out=$(web site /style.css -H "If-None-Match: $etag")
h_eq "conditional GET: 304" 304 "$(status_of "$out")"
out=$(web site /style.css -H "Range: bytes=0-3")
h_eq "range: 206 with 4 bytes" "206 body" "$(status_of "$out") $(body_of "$out")"
out=$(web site /app.js --compressed)
h_eq "gzip'd object served with its Content-Encoding" "200 gzip" \
    "$(status_of "$out") $(hdr_of content-encoding "$out")"
grep -q "console.log('hi');console.log" <<<"$out" && h_ok "curl --compressed decodes it" ||
    h_bad "curl --compressed decodes it" "$(head -c 400 <<<"$out")"
out=$(curl -sS -I --max-time 10 -H "Host: site.s3-website.localhost:$H_PORT" "$E/")
h_eq "HEAD /: 200 text/html" "200 text/html" "$(status_of "$out") $(hdr_of content-type "$out")"
out=$(web site /index.html -X POST -d x=1)
h_eq "POST: 405 HTML" "405 text/html; charset=utf-8" "$(status_of "$out") $(hdr_of content-type "$out")"
out=$(web site /index.html -H "Authorization: AWS4-HMAC-SHA256 Credential=bogus")
h_eq "a signed-looking request is still just anonymous" 200 "$(status_of "$out")"

# ---- the S3 endpoint is unchanged; deletion ----
out=$(curl -sS -D- --max-time 10 "$E/site/nothing.html")
h_eq "the S3 endpoint still answers XML" "application/xml" "$(hdr_of content-type "$out")"
h_run "DeleteBucketWebsite" boto <<'EOF'
s3.delete_bucket_website(Bucket="site")
try:
    s3.get_bucket_website(Bucket="site")
    sys.exit("still there")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "NoSuchWebsiteConfiguration", e.response
assert s3.get_bucket_tagging(Bucket="site")["TagSet"] == [{"Key": "k", "Value": "v"}]
EOF
out=$(web site /)
h_eq "no website after the deletion" 404 "$(status_of "$out")"

h_finish
