"""Unsigned x-amz-* headers for fault_hostile_headers.sh (endpoint and credentials from the
environment; standard library only).

A client that holds a presigned URL, or replays a signed request, adds x-amz-* headers its
signature does not cover. Each one could change what the request does (x-amz-copy-source turns a
PUT into a copy of somebody else's object), so each must be refused: 403 AccessDenied "There were
headers present in the request which were not signed" for SigV4 (header and presigned), 403
SignatureDoesNotMatch for SigV2 (whose signature covers every x-amz-* header, so an added one is a
wrong signature). After every refusal the target key must not exist, the private object must be
unchanged, and a client on another connection must still be served.

Prints `ok -`/`FAIL -` lines; exits 1 if any check failed.
"""

import base64
import datetime
import email.utils
import hashlib
import hmac
import os
import re
import sys
import time
import zlib

import s3raw

# CAIRN_TEST_BUCKET_PREFIX: set by lib.sh on a cluster shared by several runs, else empty
MINE = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "") + "mine"
PRIVATE = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "") + "private"
SECRET_SRC = PRIVATE + "/secret.txt"  # the copy source an attacker names
TARGET = "upload.bin"
SECRET_BODY = b"the private object: nobody may copy me\n" * 100
ATTACK_BODY = b"attacker bytes\n"
V4_MESSAGE = "There were headers present in the request which were not signed"
FAILS = []


def check(desc, cond, detail=""):
    print(("ok - " if cond else "FAIL - ") + desc, flush=True)
    if not cond:
        FAILS.append(desc)
        for line in str(detail).splitlines()[:15]:
            print("    | " + line)


def xml_field(body, name):
    m = re.search(rb"<%s>([^<]*)</%s>" % (name.encode(), name.encode()), body)
    return m.group(1).decode() if m else None


def host_header():
    host, port = s3raw.endpoint()
    return "%s:%d" % (host, port)


def send(method, path, query, headers, body=b""):
    """Send exactly these headers (plus Content-Length) on a fresh connection."""
    h = dict(headers)
    h["Content-Length"] = str(len(body))
    with s3raw.connect() as s:
        s.sendall(s3raw.request_bytes(method, path, query, h) + body)
        return s3raw.read_response(s, method)


# ---- the four ways of signing a PUT of BODY to PATH, each leaving `extra` unsigned ----

def v4_presigned_put(path, extra, body=ATTACK_BODY, query=None):
    """A presigned URL that signs only host (boto3 generate_presigned_url), used with extra."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], s3raw.REGION)
    q = dict(query or {})
    q.update({"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": "%s/%s" % (os.environ["CAIRN_ACCESS_KEY"], scope),
              "X-Amz-Date": amz_date, "X-Amz-Expires": "300", "X-Amz-SignedHeaders": "host"})
    canon_query = "&".join("%s=%s" % (s3raw._q(k), s3raw._q(v)) for k, v in sorted(q.items()))
    canon = "\n".join(["PUT", s3raw._q(path, safe="/-_.~"), canon_query,
                       "host:%s\n" % host_header(), "host", "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canon.encode()).hexdigest()])
    key = ("AWS4" + os.environ["CAIRN_SECRET_KEY"]).encode()
    for part in (amz_date[:8], s3raw.REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    q["X-Amz-Signature"] = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    h = {"Host": host_header()}
    h.update(extra)
    return send("PUT", path, q, h, body)


def v4_header_put(path, extra, body=ATTACK_BODY):
    """A header-signed PUT (host, x-amz-date, x-amz-content-sha256 signed), then extra added."""
    h = s3raw.sign("PUT", path, {}, {}, hashlib.sha256(body).hexdigest())
    h.update(extra)
    return send("PUT", path, {}, h, body)


def v2_signature(method, path, date_line, headers):
    amz = {}
    for k, v in headers.items():
        if k.lower().startswith("x-amz-"):
            amz.setdefault(k.lower(), []).append(v.strip())
    canon = "".join("%s:%s\n" % (k, ",".join(amz[k])) for k in sorted(amz))
    to_sign = "%s\n%s\n%s\n%s\n%s%s" % (method, headers.get("Content-MD5", ""),
                                        headers.get("Content-Type", ""), date_line, canon, path)
    mac = hmac.new(os.environ["CAIRN_SECRET_KEY"].encode(), to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def v2_header_put(path, extra, body=ATTACK_BODY, signed=None):
    """A SigV2 header-signed PUT over the `signed` headers, then extra added."""
    h = {"Host": host_header(), "Date": email.utils.formatdate(usegmt=True)}
    h.update(signed or {})
    h["Authorization"] = "AWS %s:%s" % (os.environ["CAIRN_ACCESS_KEY"],
                                        v2_signature("PUT", path, h["Date"], h))
    h.update(extra)
    return send("PUT", path, {}, h, body)


def v2_presigned_put(path, extra, body=ATTACK_BODY):
    """A SigV2 presigned URL (aws s3 presign, boto3's default for s3), used with extra."""
    expires = str(int(time.time()) + 300)
    q = {"AWSAccessKeyId": os.environ["CAIRN_ACCESS_KEY"], "Expires": expires,
         "Signature": v2_signature("PUT", path, expires, {})}
    h = {"Host": host_header()}
    h.update(extra)
    return send("PUT", path, q, h, body)


# ---- the headers injected, each of which would change what the PUT does ----

def injections(etag):
    crc = base64.b64encode(zlib.crc32(ATTACK_BODY).to_bytes(4, "big")).decode()
    past = email.utils.formatdate(time.time() - 86400 * 365, usegmt=True)
    return [
        {"x-amz-copy-source": SECRET_SRC},  # the reproduction
        {"x-amz-copy-source": "/" + SECRET_SRC},
        {"X-Amz-Copy-Source": SECRET_SRC},
        {"x-amz-copy-source": SECRET_SRC, "x-amz-metadata-directive": "REPLACE"},
        {"x-amz-metadata-directive": "REPLACE"},
        {"x-amz-tagging": "owner=attacker"},
        {"x-amz-acl": "public-read"},
        {"x-amz-checksum-crc32": crc},
        {"x-amz-sdk-checksum-algorithm": "CRC32"},
        {"x-amz-checksum-crc32": crc, "x-amz-sdk-checksum-algorithm": "CRC32"},
        {"x-amz-website-redirect-location": "https://attacker.example/"},
        {"x-amz-copy-source-if-match": etag},
        {"x-amz-copy-source-if-none-match": '"0"'},
        {"x-amz-copy-source-if-modified-since": past},
        {"x-amz-copy-source-if-unmodified-since": email.utils.formatdate(usegmt=True)},
        {"x-amz-copy-source-range": "bytes=0-9"},
        {"x-amz-meta-foo": "bar"},
        {"x-amz-server-side-encryption": "AES256"},
        {"x-amz-storage-class": "STANDARD"},
    ]


def nothing_stored(desc):
    """The target must not exist; if it does, it is removed so the next case stands alone."""
    st, _, _ = s3raw.request("HEAD", "/%s/%s" % (MINE, TARGET))
    check("%s: %s/%s does not exist" % (desc, MINE, TARGET), st == 404, "HEAD answered %d" % st)
    if st != 404:
        s3raw.request("DELETE", "/%s/%s" % (MINE, TARGET))


def expect_refused(desc, resp, code, message=None):
    st, _, body = resp
    ok = st == 403 and xml_field(body, "Code") == code
    if message is not None:
        ok = ok and xml_field(body, "Message") == message
    check("%s -> 403 %s" % (desc, code), ok, "status %d %r" % (st, body[:400]))


def control_get(conn, desc):
    """A signed GET of the private object on the long-lived control connection."""
    path = "/%s/secret.txt" % PRIVATE
    h = s3raw.sign("GET", path, {}, {}, s3raw.EMPTY_SHA256)
    try:
        conn.sendall(s3raw.request_bytes("GET", path, {}, h))
        st, _, body = s3raw.read_response(conn)
    except OSError as e:
        st, body = "error %s" % e, b""
    check("%s: the other client is served, private object intact" % desc,
          st == 200 and body == SECRET_BODY, "status %s, %d bytes" % (st, len(body)))


def multipart_part_copy(etag):
    """A presigned UploadPart URL plus x-amz-copy-source would be an UploadPartCopy."""
    path = "/%s/mpu.bin" % MINE
    st, _, body = s3raw.request("POST", path, {"uploads": ""})
    upload_id = xml_field(body, "UploadId")
    check("CreateMultipartUpload", st == 200 and upload_id, "status %d %r" % (st, body[:300]))
    if not upload_id:
        return
    q = {"partNumber": "1", "uploadId": upload_id}
    resp = v4_presigned_put(path, {"x-amz-copy-source": SECRET_SRC}, query=q)
    expect_refused("presigned UploadPart + unsigned x-amz-copy-source", resp, "AccessDenied",
                   V4_MESSAGE)
    resp = v4_presigned_put(path, {"x-amz-copy-source-if-match": etag,
                                   "x-amz-copy-source": SECRET_SRC}, query=q)
    expect_refused("presigned UploadPart + unsigned conditional copy", resp, "AccessDenied",
                   V4_MESSAGE)
    st, _, body = s3raw.request("GET", path, {"uploadId": upload_id})
    check("the upload has no part", st == 200 and b"<Part>" not in body,
          "status %d %r" % (st, body[:400]))
    s3raw.request("DELETE", path, {"uploadId": upload_id})


def main():
    for b in (MINE, PRIVATE):
        st, _, body = s3raw.request("PUT", "/" + b)
        check("create bucket %s" % b, st == 200, "status %d %r" % (st, body[:300]))
    st, hdrs, body = s3raw.request("PUT", "/%s/secret.txt" % PRIVATE, body=SECRET_BODY)
    check("store private/secret.txt", st == 200, "status %d %r" % (st, body[:300]))
    etag = hdrs.get("etag", '"x"')
    control = s3raw.connect()
    control_get(control, "before")

    schemes = [
        ("SigV4 presigned (signs host)", v4_presigned_put, "AccessDenied", V4_MESSAGE),
        ("SigV4 header auth", v4_header_put, "AccessDenied", V4_MESSAGE),
        ("SigV2 presigned", v2_presigned_put, "SignatureDoesNotMatch", None),
        ("SigV2 header auth", v2_header_put, "SignatureDoesNotMatch", None),
    ]
    path = "/%s/%s" % (MINE, TARGET)
    for scheme, put, code, message in schemes:
        for extra in injections(etag):
            desc = "%s + unsigned %s" % (scheme, ", ".join(sorted(extra)))
            expect_refused(desc, put(path, extra), code, message)
            nothing_stored(desc)
        control_get(control, scheme)

    # V2 past the old canonicaliser's 64 x-amz-* headers: a request signed over 64, plus one
    full = {"x-amz-meta-h%02d" % i: "v" for i in range(64)}
    resp = v2_header_put(path, {"x-amz-copy-source": SECRET_SRC}, signed=full)
    expect_refused("SigV2 with 64 signed x-amz-meta-* + unsigned x-amz-copy-source", resp,
                   "SignatureDoesNotMatch")
    nothing_stored("SigV2 with 65 x-amz-* headers")
    multipart_part_copy(etag)
    st, _, body = s3raw.request("GET", "/" + MINE, {"list-type": "2"})
    check("bucket %s is still empty" % MINE, st == 200 and b"<Key>" not in body,
          "status %d %r" % (st, body[:400]))

    # the same requests, signed, do what they say: the refusals were about the signature
    st, _, body = v4_presigned_put(path, {})
    check("the presigned URL alone stores its object", st == 200, "status %d %r" % (st, body[:300]))
    st, _, body = s3raw.request("GET", path)
    check("...with the URL holder's bytes", st == 200 and body == ATTACK_BODY, "status %d" % st)
    st, _, body = s3raw.request("PUT", "/%s/copied.bin" % MINE,
                                headers={"x-amz-copy-source": SECRET_SRC})
    check("a signed x-amz-copy-source copies", st == 200, "status %d %r" % (st, body[:300]))
    many = {"x-amz-meta-h%02d" % i: "v" for i in range(70)}
    st, _, body = v2_header_put("/%s/many.bin" % MINE, {}, signed=many)
    check("SigV2 with 70 signed x-amz-meta-* headers is accepted", st == 200,
          "status %d %r" % (st, body[:300]))
    control_get(control, "after")
    control.close()
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
