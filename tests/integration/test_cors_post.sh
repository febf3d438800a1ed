#!/usr/bin/env bash
# CORS and POST Object (issue 11, scopes 4 and 6) with real clients. Against a cluster
# (CAIRN_TEST_ENDPOINTS, as test_cluster_clients.sh runs it) everything goes through the first
# node, and a configuration set there must also answer preflights through the last node (its
# watch delivers it: polled, bounded), and stop once deleted. CORS: boto3 puts a
# configuration (Get returns it, NoSuchCORSConfiguration without one, bad configurations refused
# as S3 does), curl sends preflights (allowed: 200 with the Access-Control-* headers; another
# origin, method or header, and a bucket without configuration: 403 AccessForbidden) and real
# requests with an Origin (GET, and an error answer, carry the headers; a request from another
# origin does not). POST Object: boto3's generate_presigned_post makes the policy and curl -F
# uploads with it: the object lands byte for byte (also a 3 MiB file, striped), ${filename} is
# replaced, success_action_status 201 answers a PostResponse, a redirect answers 303; a wrong key
# prefix, a file too large, an expired policy and a bad signature are refused with 403 (400 for
# the size) and store nothing.
source "$(dirname "$0")/lib.sh"

"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_need curl
if [ -z "${CAIRN_TEST_ENDPOINTS:-}" ]; then # the fields of a form must come within 1 s here
    printf '[server]\npost_fields_timeout_ms = 1000\n' >"$H_WORK/server.conf"
    H_SERVER_ARGS=(--config "$H_WORK/server.conf")
fi
h_start
B=$(h_bucket cors-post)
E=$H_ENDPOINT

boto() { # boto3 script on stdin with s3 (a client for $E) and B defined
    "$H_PY" - "$@" <<EOF
import boto3, botocore, json, sys, time
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url="$E", region_name="us-east-1",
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
B = "$B"
$(cat)
EOF
}

# status_of / hdr_of OUTPUT: the status, a header's value, of `curl -sS -D-` output
status_of() { head -n1 <<<"$1" | awk '{print $2}'; }
hdr_of() { grep -i "^$1:" <<<"$2" | head -n1 | cut -d' ' -f2- | tr -d '\r'; }

# ---- CORS ----
h_run "create bucket" boto <<'EOF'
s3.create_bucket(Bucket=B)
EOF


out=$(curl -sS -D- -o /dev/null -X OPTIONS "$E/$B/x" -H 'Origin: https://app.example.com' \
    -H 'Access-Control-Request-Method: GET')
h_eq "preflight without a configuration: 403" 403 "$(status_of "$out")"

if h_run "get-bucket-cors without one: NoSuchCORSConfiguration" boto <<'EOF'
try:
    s3.get_bucket_cors(Bucket=B)
    sys.exit("no error")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "NoSuchCORSConfiguration", e.response
EOF
then :; fi

h_run "put-bucket-cors refuses bad configurations" boto <<'EOF'
def bad(rules, code):
    try:
        s3.put_bucket_cors(Bucket=B, CORSConfiguration={"CORSRules": rules})
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == code, (rules, e.response)
        return
    sys.exit("accepted %r" % rules)
bad([{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}], "InvalidRequest")
bad([{"AllowedOrigins": ["https://*.*.com"], "AllowedMethods": ["GET"]}], "InvalidRequest")
bad([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101, "MalformedXML")
EOF

h_run "put-bucket-cors" boto <<'EOF'
s3.put_bucket_cors(Bucket=B, CORSConfiguration={"CORSRules": [
    {"ID": "app", "AllowedOrigins": ["https://app.example.com", "https://*.cdn.example.com"],
     "AllowedMethods": ["GET", "PUT", "HEAD"], "AllowedHeaders": ["x-amz-*", "content-type"],
     "ExposeHeaders": ["ETag", "x-amz-request-id"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}]})
c = s3.get_bucket_cors(Bucket=B)["CORSRules"]
assert len(c) == 2 and c[0]["ID"] == "app" and c[0]["MaxAgeSeconds"] == 600, c
assert c[0]["AllowedOrigins"][1] == "https://*.cdn.example.com", c
s3.put_object(Bucket=B, Key="x", Body=b"hello")
EOF

out=$(curl -sS -D- -o /dev/null -X OPTIONS "$E/$B/x" -H 'Origin: https://app.example.com' \
    -H 'Access-Control-Request-Method: PUT' \
    -H 'Access-Control-Request-Headers: Content-Type, X-Amz-Date')
h_eq "preflight allowed: 200" 200 "$(status_of "$out")"
h_eq "preflight Allow-Origin" "https://app.example.com" \
    "$(hdr_of Access-Control-Allow-Origin "$out")"
h_eq "preflight Allow-Methods" "GET, PUT, HEAD" "$(hdr_of Access-Control-Allow-Methods "$out")"
h_eq "preflight Allow-Headers" "Content-Type, X-Amz-Date" \
    "$(hdr_of Access-Control-Allow-Headers "$out")"
h_eq "preflight Max-Age" 600 "$(hdr_of Access-Control-Max-Age "$out")"
h_eq "preflight Expose-Headers" "ETag, x-amz-request-id" \
    "$(hdr_of Access-Control-Expose-Headers "$out")"

preflight_via() { # ENDPOINT: the status of an allowed GET preflight there
    curl -sS -o /dev/null -w '%{http_code}' -X OPTIONS "$1/$B/x" \
        -H 'Origin: https://app.example.com' -H 'Access-Control-Request-Method: GET'
}
until_status() { # DESC WANT ENDPOINT
    local i got
    for ((i = 0; i < 50; i++)); do
        got=$(preflight_via "$3")
        [ "$got" = "$2" ] && break
        sleep 0.1 # polling for the other node's watch, bounded
    done
    h_eq "$1" "$2" "$got"
}
OTHER=""
[ -n "${CAIRN_TEST_ENDPOINTS:-}" ] && OTHER=${H_ENDPOINTS[${#H_ENDPOINTS[@]} - 1]}
[ -n "$OTHER" ] && until_status "a preflight through another cluster node: 200" 200 "$OTHER"

out=$(curl -sS -D- -o /dev/null -X OPTIONS "$E/$B/x" -H 'Origin: https://a.cdn.example.com' \
    -H 'Access-Control-Request-Method: HEAD')
h_eq "preflight from a wildcard origin: 200" 200 "$(status_of "$out")"

out=$(curl -sS -D- -X OPTIONS "$E/$B/x" -H 'Origin: https://evil.example.org' \
    -H 'Access-Control-Request-Method: PUT')
h_eq "preflight of another origin's PUT: 403" 403 "$(status_of "$out")"
grep -q "<Code>AccessForbidden</Code>" <<<"$out" && grep -q "CORSResponse" <<<"$out" &&
    h_ok "403 preflight answers S3's CORSResponse" || h_bad "403 preflight body" "$out"
out=$(curl -sS -D- -o /dev/null -X OPTIONS "$E/$B/x" -H 'Origin: https://evil.example.org' \
    -H 'Access-Control-Request-Method: GET')
h_eq "preflight of any origin's GET (rule *): 200" 200 "$(status_of "$out")"
h_eq "rule * answers Allow-Origin *" "*" "$(hdr_of Access-Control-Allow-Origin "$out")"
out=$(curl -sS -D- -o /dev/null -X OPTIONS "$E/$B/x" -H 'Origin: https://app.example.com' \
    -H 'Access-Control-Request-Method: PUT' -H 'Access-Control-Request-Headers: authorization')
h_eq "preflight with a header no rule allows: 403" 403 "$(status_of "$out")"
out=$(curl -sS -D- -o /dev/null -X OPTIONS "$E/$B/x" -H 'Access-Control-Request-Method: GET')
h_eq "preflight without Origin: 400" 400 "$(status_of "$out")"

out=$(curl -sS -D- -o /dev/null "$E/$B/x" -H 'Origin: https://app.example.com')
h_eq "unsigned GET with an Origin is still refused: 403" 403 "$(status_of "$out")"
h_eq "... and its error carries Allow-Origin" "https://app.example.com" \
    "$(hdr_of Access-Control-Allow-Origin "$out")"
URL=$(boto <<'EOF'
print(s3.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "x"}, ExpiresIn=300))
EOF
)
out=$(curl -sS -D- "$URL" -H 'Origin: https://app.example.com')
h_eq "signed GET with an Origin: 200" 200 "$(status_of "$out")"
h_eq "GET carries Allow-Origin" "https://app.example.com" \
    "$(hdr_of Access-Control-Allow-Origin "$out")"
h_eq "GET carries Expose-Headers" "ETag, x-amz-request-id" \
    "$(hdr_of Access-Control-Expose-Headers "$out")"
grep -qi "^Vary: Origin" <<<"$out" && h_ok "GET carries Vary: Origin" || h_bad "Vary" "$out"
out=$(curl -sS -D- -o /dev/null "$URL" -H 'Origin: https://evil.example.org' -X DELETE)
[ -z "$(hdr_of Access-Control-Allow-Origin "$out")" ] &&
    h_ok "a request no rule allows carries no Access-Control header" ||
    h_bad "no CORS headers for a DELETE from another origin" "$out"
out=$(curl -sS -D- -o /dev/null "$URL")
[ -z "$(hdr_of Access-Control-Allow-Origin "$out")" ] &&
    h_ok "a request without Origin carries no Access-Control header" ||
    h_bad "no CORS headers without Origin" "$out"

h_run "delete-bucket-cors, then preflights are refused" boto <<'EOF'
s3.delete_bucket_cors(Bucket=B)
try:
    s3.get_bucket_cors(Bucket=B)
    sys.exit("still there")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "NoSuchCORSConfiguration"
EOF
out=$(curl -sS -D- -o /dev/null -X OPTIONS "$E/$B/x" -H 'Origin: https://app.example.com' \
    -H 'Access-Control-Request-Method: GET')
h_eq "preflight after delete-bucket-cors: 403 (cache invalidated)" 403 "$(status_of "$out")"
[ -n "$OTHER" ] && until_status "... and through another cluster node: 403" 403 "$OTHER"

# ---- POST Object ----
# presign KEY [CONDITIONS_JSON [EXPIRES]]: the form fields as curl -F arguments, one per line.
presign() {
    boto "$@" <<'EOF'
key = sys.argv[1]
conds = json.loads(sys.argv[2]) if len(sys.argv) > 2 else None
exp = int(sys.argv[3]) if len(sys.argv) > 3 else 300
fields = {"success_action_status": "201"} if conds and {"success_action_status": "201"} in conds \
    else None
p = s3.generate_presigned_post(B, key, Fields=fields, Conditions=conds, ExpiresIn=exp)
for k, v in p["fields"].items():
    print("-F")
    print("%s=%s" % (k, v))
EOF
}
post() { # post OUTFILE FORMARGS-FILE FILE [extra curl args]: prints the HTTP status
    local out=$1 args=$2 file=$3
    shift 3
    mapfile -t A <"$args"
    curl -sS -o "$out" -w '%{http_code}' "${A[@]}" "$@" -F "file=@$file" "$E/$B"
}
count_keys() {
    boto "$1" <<'EOF'
print(s3.list_objects_v2(Bucket=B, Prefix=sys.argv[1]).get("KeyCount", 0))
EOF
}

h_gen "$H_WORK/small" 5000 1
h_gen "$H_WORK/big" $((3 << 20)) 2
presign 'up/${filename}' '[["starts-with", "$key", "up/"], ["content-length-range", 1, 4194304], {"success_action_status": "201"}]' >"$H_WORK/f1"
code=$(post "$H_WORK/r1" "$H_WORK/f1" "$H_WORK/small;filename=photo one.jpg;type=image/jpeg")
h_eq "POST Object with success_action_status 201" 201 "$code"
grep -q "<Key>up/photo one.jpg</Key>" "$H_WORK/r1" && h_ok "PostResponse names the key" ||
    h_bad "PostResponse" "$(cat "$H_WORK/r1")"
h_run "the object is there, byte for byte" boto "$H_WORK/small" <<'EOF'
body = s3.get_object(Bucket=B, Key="up/photo one.jpg")["Body"].read()
assert body == open(sys.argv[1], "rb").read(), len(body)
EOF
code=$(post "$H_WORK/r2" "$H_WORK/f1" "$H_WORK/big;filename=big.bin")
h_eq "POST Object of 3 MiB" 201 "$code"
h_run "the 3 MiB object is there, byte for byte" boto "$H_WORK/big" <<'EOF'
body = s3.get_object(Bucket=B, Key="up/big.bin")["Body"].read()
assert body == open(sys.argv[1], "rb").read(), len(body)
EOF

presign 'plain.txt' >"$H_WORK/f2"
code=$(post "$H_WORK/r3" "$H_WORK/f2" "$H_WORK/small")
h_eq "POST Object without success_action_status: 204" 204 "$code"

presign 'red.txt' '[{"success_action_redirect": "https://app.example.com/done"}]' >"$H_WORK/f3"
printf -- '-F\nsuccess_action_redirect=https://app.example.com/done\n' >>"$H_WORK/f3"
out=$(mapfile -t A <"$H_WORK/f3"; curl -sS -D- -o /dev/null "${A[@]}" -F "file=@$H_WORK/small" "$E/$B")
h_eq "POST Object with a redirect: 303" 303 "$(status_of "$out")"
grep -qi "^Location: https://app.example.com/done?bucket=$B&key=red.txt&etag=" <<<"$out" &&
    h_ok "303 Location has bucket, key and etag" || h_bad "303 Location" "$out"

# Refusals: nothing stored.
code=$(post "$H_WORK/r4" "$H_WORK/f1" "$H_WORK/small" -F "key=other/x")
h_eq "a repeated key field is malformed" 400 "$code"
sed -i 's|^key=up/\${filename}$|key=other/${filename}|' "$H_WORK/f1"
code=$(post "$H_WORK/r5" "$H_WORK/f1" "$H_WORK/small;filename=k.txt")
h_eq "a key outside the policy's prefix: 403" 403 "$code"
grep -q "Policy Condition failed" "$H_WORK/r5" && h_ok "... Policy Condition failed" ||
    h_bad "wrong-prefix message" "$(cat "$H_WORK/r5")"
presign 'lim/${filename}' '[["starts-with", "$key", "lim/"], ["content-length-range", 1, 4096]]' >"$H_WORK/f4"
code=$(post "$H_WORK/r6" "$H_WORK/f4" "$H_WORK/small;filename=a")
h_eq "a file over content-length-range: 400" 400 "$code"
grep -q "EntityTooLarge" "$H_WORK/r6" && h_ok "... EntityTooLarge" ||
    h_bad "too-large code" "$(cat "$H_WORK/r6")"
presign 'exp/x' '[]' -60 >"$H_WORK/f5" # expired a minute ago
code=$(post "$H_WORK/r7" "$H_WORK/f5" "$H_WORK/small")
h_eq "an expired policy: 403" 403 "$code"
grep -q "Policy expired" "$H_WORK/r7" && h_ok "... Policy expired" ||
    h_bad "expired message" "$(cat "$H_WORK/r7")"
presign 'sig/x' >"$H_WORK/f6"
sed -i "s|^x-amz-signature=.*|x-amz-signature=$(printf '%064d' 7)|" "$H_WORK/f6"
code=$(post "$H_WORK/r8" "$H_WORK/f6" "$H_WORK/small")
h_eq "a forged signature: 403" 403 "$code"
grep -q "SignatureDoesNotMatch" "$H_WORK/r8" && h_ok "... SignatureDoesNotMatch" ||
    h_bad "forged-signature code" "$(cat "$H_WORK/r8")"
presign 'extra/x' >"$H_WORK/f7"
code=$(post "$H_WORK/r9" "$H_WORK/f7" "$H_WORK/small" -F "x-amz-meta-sneaky=1")
h_eq "a field no condition covers: 403" 403 "$code"
grep -q "Extra input fields: x-amz-meta-sneaky" "$H_WORK/r9" && h_ok "... Extra input fields" ||
    h_bad "extra-field message" "$(cat "$H_WORK/r9")"
# Hostile forms, sent raw: a file part that never ends (valid policy: the file streams, then the
# body ends without its boundary), 200 fields, a 1 MiB field. Refused, nothing stored.
presign 'noend/x' >"$H_WORK/f8"
"$H_PY" - "$H_WORK/f8" "$H_WORK" <<'EOF'
import sys
fields = open(sys.argv[1]).read().split("\n")[1::2]
def part(name, value):
    return b"--XyZ\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" % (
        name.encode(), value.encode())
head = b"".join(part(*f.split("=", 1)) for f in fields if f)
file = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" + b"z" * 200000
open(sys.argv[2] + "/noend", "wb").write(head + file + b"\r\n--XyZ")
open(sys.argv[2] + "/many", "wb").write(
    b"".join(part("f%d" % i, "v") for i in range(200)) + b"--XyZ--\r\n")
open(sys.argv[2] + "/huge", "wb").write(part("big", "v" * (1 << 20)) + b"--XyZ--\r\n")
EOF
raw_post() { # FILE: the status of posting it as a form with boundary XyZ
    curl -sS -o "$H_WORK/raw.out" -w '%{http_code}' -H 'Content-Type: multipart/form-data; boundary=XyZ' \
        --data-binary "@$1" "$E/$B"
}
h_eq "a file part without its closing boundary: 400" 400 "$(raw_post "$H_WORK/noend")"
grep -q MalformedPOSTRequest "$H_WORK/raw.out" && h_ok "... MalformedPOSTRequest" ||
    h_bad "no-end code" "$(cat "$H_WORK/raw.out")"
h_eq "200 fields: 400" 400 "$(raw_post "$H_WORK/many")"
h_eq "a 1 MiB field: 400" 400 "$(raw_post "$H_WORK/huge")"
grep -q MaxPostPreDataLengthExceeded "$H_WORK/raw.out" && h_ok "... MaxPostPreDataLengthExceeded" ||
    h_bad "huge-field code" "$(cat "$H_WORK/raw.out")"
if [ -z "${CAIRN_TEST_ENDPOINTS:-}" ]; then
    # A client sending its fields a byte at a time: answered 400 RequestTimeout and cut once
    # post_fields_timeout_ms (1 s here) has passed, not held for as long as it trickles.
    out=$("$H_PY" - "${E#http://}" "$B" <<'EOF'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
body = b"--XyZ\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\n" + b"k" * 100
s.sendall(b"POST /%s HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
          b"Content-Length: 100000\r\n\r\n" % sys.argv[2].encode())
t0, got = time.time(), b""
try:
    for b in body:
        s.sendall(bytes([b]))
        time.sleep(0.1)
        s.setblocking(False)
        try:
            got += s.recv(4096)
        except BlockingIOError:
            pass
        s.setblocking(True)
        if got:
            break
    s.settimeout(5)
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
except OSError:
    pass
status = (got.split(b"\r\n")[0].split() + [b"-", b"none"])[1].decode(errors="replace")
print(status, "RequestTimeout" in got.decode(errors="replace"), "%.0f" % (time.time() - t0))
EOF
)
    read -r code timeout_seen secs <<<"$out"
    h_eq "a trickled form: 400" 400 "$code"
    h_eq "... RequestTimeout" True "$timeout_seen"
    [ "${secs:-99}" -le 4 ] && h_ok "... within the deadline, not the trickle's pace ($secs s)" ||
        h_bad "trickled form answered late" "$out"
fi
for p in other lim exp sig extra noend; do
    h_eq "nothing stored under $p/" 0 "$(count_keys "$p/")"
done

h_finish
