"""Request headers for test_headers.sh (endpoint and credentials from the environment).

docs/s3-headers.md lists every x-amz-* request header S3 documents and what cairn does with it.
This script sends each header on the operations it belongs to, signed, and checks the answer is
what the page says: real support (2xx, and the effect visible where there is one), an accepted
no-op (2xx), or a refusal (501 NotImplemented naming the feature, or S3's 400/403) that stored
nothing. It also checks an empty ListObjectsV2 continuation-token (same as none) and that
CopyObject refuses a destination key PutObject refuses.
Prints `ok -`/`FAIL -` lines; exit 1 if any check failed.
"""

import base64
import hashlib
import os
import re
import sys
import zlib

import s3raw

# CAIRN_TEST_BUCKET_PREFIX: set by lib.sh on a cluster shared by several runs, else empty
BPREFIX = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "")
B = BPREFIX + "hdr-bucket"
FAILS = []
SEQ = [0]


def check(desc, cond, detail=""):
    print(("ok - " if cond else "FAIL - ") + desc, flush=True)
    if not cond:
        FAILS.append(desc)
        for line in str(detail).splitlines()[:10]:
            print("    | " + line)


def code_of(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def message_of(body):
    m = re.search(rb"<Message>([^<]*)</Message>", body)
    return m.group(1).decode() if m else ""


def fresh(prefix):
    SEQ[0] += 1
    return "%s-%d" % (prefix, SEQ[0])


def req(method, path, query=None, body=b"", headers=None):
    return s3raw.request(method, path, query or {}, body, headers or {})


def exists(key):
    st, _, _ = req("HEAD", "/%s/%s" % (B, key))
    return st == 200


def upload_keys():
    _, _, body = req("GET", "/" + B, {"uploads": ""})
    return set(k.decode() for k in re.findall(rb"<Key>([^<]*)</Key>", body))


def expect_refused(desc, answer, feature, status=501, code="NotImplemented"):
    st, _, body = answer
    ok = st == status and (not body or code_of(body) == code)
    if ok and feature and body:
        ok = feature.lower() in message_of(body).lower()
    check("%s -> %d %s" % (desc, status, code), ok, "status %d %r" % (st, body[:300]))


def expect_ok(desc, answer):
    st, _, body = answer
    check("%s -> 2xx" % desc, 200 <= st < 300, "status %d %r" % (st, body[:300]))


# (header, value, feature named in the message) refused on PutObject, CopyObject and
# CreateMultipartUpload.
WRITE_REFUSED = [
    ("x-amz-server-side-encryption", "aws:kms", "server-side encryption"),
    ("x-amz-server-side-encryption-aws-kms-key-id", "arn:aws:kms:us-east-1:1:key/x", "SSE-KMS"),
    ("x-amz-server-side-encryption-context", "e30=", "SSE-KMS"),
    ("x-amz-server-side-encryption-bucket-key-enabled", "true", "Bucket Keys"),
    # the canned ACLs cairn serves are test_users.sh's; these grant to principals it does not have
    ("x-amz-acl", "aws-exec-read", "access control"),
    ("x-amz-acl", "bucket-owner-read", "access control"),
    ("x-amz-acl", "log-delivery-write", "access control"),
    ("x-amz-grant-read", 'uri="http://acs.amazonaws.com/groups/global/AllUsers"', "grants"),
    ("x-amz-grant-full-control", 'id="someone"', "grants"),
    ("x-amz-grant-read-acp", 'id="someone"', "grants"),
    ("x-amz-grant-write-acp", 'id="someone"', "grants"),
    ("x-amz-storage-class", "GLACIER", "archive"),
    ("x-amz-storage-class", "DEEP_ARCHIVE", "archive"),
    ("x-amz-storage-class", "GLACIER_IR", "archive"),
]

SSEC = {
    "x-amz-server-side-encryption-customer-algorithm": "AES256",
    "x-amz-server-side-encryption-customer-key": base64.b64encode(b"k" * 32).decode(),
    "x-amz-server-side-encryption-customer-key-MD5":
        base64.b64encode(hashlib.md5(b"k" * 32).digest()).decode(),
}
SRC_SSEC = {k.replace("x-amz-", "x-amz-copy-source-", 1): v for k, v in SSEC.items()}


def writes_refused():
    for name, value, feature in WRITE_REFUSED:
        h = {name: value}
        k = fresh("put")
        expect_refused("PutObject %s: %s" % (name, value),
                       req("PUT", "/%s/%s" % (B, k), body=b"data", headers=h), feature)
        check("  nothing stored by PutObject", not exists(k))
        k = fresh("copy")
        ch = dict(h, **{"x-amz-copy-source": "/%s/src" % B})
        expect_refused("CopyObject %s" % name, req("PUT", "/%s/%s" % (B, k), headers=ch), feature)
        check("  nothing stored by CopyObject", not exists(k))
        k = fresh("mpu")
        expect_refused("CreateMultipartUpload %s" % name,
                       req("POST", "/%s/%s" % (B, k), {"uploads": ""}, headers=h), feature)
        check("  no upload created", k not in upload_keys())
    # A header hoisted into a presigned URL's query string counts as the header.
    k = fresh("hoisted")
    expect_refused("PutObject ?x-amz-server-side-encryption-context=e30=",
                   req("PUT", "/%s/%s" % (B, k), {"x-amz-server-side-encryption-context": "e30="},
                       body=b"data"), "SSE-KMS")
    check("  nothing stored (hoisted)", not exists(k))
    k = fresh("hoisted-sse")
    answer = req("PUT", "/%s/%s" % (B, k), {"x-amz-server-side-encryption": "AES256"},
                 body=b"data")
    expect_ok("PutObject ?x-amz-server-side-encryption=AES256", answer)
    _, h, _ = req("HEAD", "/%s/%s" % (B, k))
    check("  stored encrypted (hoisted SSE is never dropped)",
          h.get("x-amz-server-side-encryption") == "AES256", h)
    k = fresh("badclass")
    expect_refused("PutObject x-amz-storage-class: FAST",
                   req("PUT", "/%s/%s" % (B, k), body=b"x",
                       headers={"x-amz-storage-class": "FAST"}),
                   "", 400, "InvalidStorageClass")
    check("  nothing stored (bad class)", not exists(k))
    k = fresh("write-offset")
    expect_refused("PutObject x-amz-write-offset-bytes",
                   req("PUT", "/%s/%s" % (B, k), body=b"x",
                       headers={"x-amz-write-offset-bytes": "0"}), "append")
    check("  nothing stored (append)", not exists(k))
    k = fresh("copy-tagdir")
    expect_refused("CopyObject x-amz-tagging-directive: MOVE",
                   req("PUT", "/%s/%s" % (B, k), headers={
                       "x-amz-copy-source": "/%s/src" % B,
                       "x-amz-tagging-directive": "MOVE"}), "", 400, "InvalidArgument")
    check("  nothing stored (tagging directive)", not exists(k))


def sse_c_everywhere(upload_id):
    """SSE-C headers on objects and uploads that are not SSE-C: 400 InvalidRequest, nothing
    stored (test_sse.sh and test_cluster_sse.sh cover SSE-C itself)."""
    no = (None, 400, "InvalidRequest")
    expect_refused("GetObject SSE-C on a plain object",
                   req("GET", "/%s/src" % B, headers=SSEC), *no)
    k = fresh("c")
    expect_refused("CopyObject source SSE-C of a plain object",
                   req("PUT", "/%s/%s" % (B, k),
                       headers=dict(SRC_SSEC, **{"x-amz-copy-source": "/%s/src" % B})), *no)
    check("  nothing stored (copy)", not exists(k))
    part = {"uploadId": upload_id, "partNumber": "2"}
    expect_refused("UploadPart SSE-C to a plain upload",
                   req("PUT", "/%s/mp" % B, part, body=b"p" * 100, headers=SSEC), *no)
    _, _, body = req("GET", "/%s/mp" % B, {"uploadId": upload_id})
    nums = re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)
    check("  refused parts were not stored", nums == [b"1"], body[:300])


def complete_expectations():
    """CompleteMultipartUpload compares x-amz-mp-object-size and a whole-object checksum."""
    st, _, body = req("POST", "/%s/full" % B, {"uploads": ""},
                      headers={"x-amz-checksum-algorithm": "CRC32",
                               "x-amz-checksum-type": "FULL_OBJECT"})
    uid = re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()
    data = b"full object bytes"
    crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    st, h, _ = req("PUT", "/%s/full" % B, {"uploadId": uid, "partNumber": "1"}, body=data,
                   headers={"x-amz-checksum-crc32": crc})
    done = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag>"
            "<ChecksumCRC32>%s</ChecksumCRC32></Part></CompleteMultipartUpload>"
            % (h.get("etag"), crc)).encode()
    wrong = base64.b64encode((zlib.crc32(data) ^ 1).to_bytes(4, "big")).decode()
    for desc, hh, code in [("a wrong x-amz-checksum-crc32", {"x-amz-checksum-crc32": wrong},
                            "BadDigest"),
                           ("x-amz-checksum-sha256 of another algorithm",
                            {"x-amz-checksum-sha256": base64.b64encode(b"x" * 32).decode()},
                            "InvalidRequest"),
                           ("a wrong x-amz-mp-object-size", {"x-amz-mp-object-size": "5"},
                            "InvalidRequest")]:
        expect_refused("CompleteMultipartUpload with %s" % desc,
                       req("POST", "/%s/full" % B, {"uploadId": uid}, body=done, headers=hh),
                       "", 400, code)
        check("  nothing stored, upload still open", not exists("full") and "full" in upload_keys())
    expect_ok("CompleteMultipartUpload with the right checksum and size",
              req("POST", "/%s/full" % B, {"uploadId": uid}, body=done,
                  headers={"x-amz-checksum-crc32": crc, "x-amz-mp-object-size": str(len(data))}))
    check("  stored", exists("full"))


def subresources_not_pretended():
    """RenameObject is refused, not answered as a PUT of the object; GetObjectAttributes
    answers its own document, not the object's body."""
    st, _, body = req("GET", "/%s/src" % B, {"attributes": ""},
                      headers={"x-amz-object-attributes": "ETag"})
    check("GetObjectAttributes (?attributes) -> its XML document",
          st == 200 and b"<GetObjectAttributesResponse" in body, "status %d %r" % (st, body[:200]))
    k = fresh("renamed")
    expect_refused("RenameObject (?renameObject)",
                   req("PUT", "/%s/%s" % (B, k), {"renameObject": ""},
                       headers={"x-amz-rename-source": "/%s/src" % B}), "")
    check("  nothing stored (rename)", not exists(k) and exists("src"))


def buckets_and_deletes():
    # (x-amz-bucket-object-lock-enabled: true is served on a single node: test_object_lock.sh)
    for name, value, feature in [("x-amz-acl", "log-delivery-write", "access control"),
                                 ("x-amz-grant-write", 'id="someone"', "grants")]:
        b = BPREFIX + fresh("hdr-nb")
        expect_refused("CreateBucket %s: %s" % (name, value),
                       req("PUT", "/" + b, headers={name: value}), feature)
        st, _, _ = req("HEAD", "/" + b)
        check("  bucket not created", st == 404, "HEAD bucket %d" % st)
    for name, value in [("x-amz-bucket-object-lock-enabled", "false"), ("x-amz-acl", "private"),
                        ("x-amz-acl", "bucket-owner-full-control"),
                        ("x-amz-object-ownership", "BucketOwnerEnforced")]:
        b = BPREFIX + fresh("hdr-ok")
        expect_ok("CreateBucket %s: %s" % (name, value), req("PUT", "/" + b, headers={name: value}))
        req("DELETE", "/" + b)
    expect_refused("DeleteObject x-amz-if-match-size",
                   req("DELETE", "/%s/src" % B, headers={"x-amz-if-match-size": "1"}), "size")
    check("  object not deleted", exists("src"))


def accepted():
    """Headers cairn supports or that ask for nothing it does not do: 2xx."""
    for name, value in [("x-amz-storage-class", "STANDARD"),
                        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                        ("x-amz-storage-class", "STANDARD_IA"),
                        ("x-amz-storage-class", "INTELLIGENT_TIERING"),
                        ("x-amz-acl", "private"), ("x-amz-acl", "bucket-owner-full-control"),
                        ("x-amz-object-lock-legal-hold", "OFF"),
                        ("x-amz-server-side-encryption-bucket-key-enabled", "false"),
                        ("x-amz-request-payer", "requester"),
                        ("x-amz-expected-bucket-owner", os.environ["CAIRN_ACCESS_KEY"]),
                        ("x-amz-sdk-checksum-algorithm", "CRC32")]:
        k = fresh("acc")
        expect_ok("PutObject %s: %s" % (name, value),
                  req("PUT", "/%s/%s" % (B, k), body=b"hello", headers={name: value}))
        check("  stored", exists(k))
    k = fresh("redirect")
    expect_ok("PutObject x-amz-website-redirect-location",
              req("PUT", "/%s/%s" % (B, k), body=b"x",
                  headers={"x-amz-website-redirect-location": "/elsewhere"}))
    st, h, _ = req("HEAD", "/%s/%s" % (B, k))
    check("  redirect location stored and echoed",
          h.get("x-amz-website-redirect-location") == "/elsewhere", h)
    crc = base64.b64encode(zlib.crc32(b"hello").to_bytes(4, "big")).decode()
    k = fresh("crc")
    expect_ok("PutObject x-amz-checksum-crc32 (right)",
              req("PUT", "/%s/%s" % (B, k), body=b"hello", headers={"x-amz-checksum-crc32": crc}))
    st, h, _ = req("HEAD", "/%s/%s" % (B, k), headers={"x-amz-checksum-mode": "ENABLED"})
    check("  x-amz-checksum-mode echoes it", h.get("x-amz-checksum-crc32") == crc, h)
    k = fresh("crc-bad")
    expect_refused("PutObject x-amz-checksum-crc32 (wrong)",
                   req("PUT", "/%s/%s" % (B, k), body=b"hellO",
                       headers={"x-amz-checksum-crc32": crc}), "", 400, "BadDigest")
    check("  nothing stored (bad checksum)", not exists(k))
    k = fresh("copy-alg")
    st, _, body = req("PUT", "/%s/%s" % (B, k), headers={"x-amz-copy-source": "/%s/src" % B,
                                                         "x-amz-checksum-algorithm": "SHA256",
                                                         "x-amz-tagging-directive": "COPY"})
    check("CopyObject x-amz-checksum-algorithm: SHA256 -> 2xx with a SHA256",
          st == 200 and b"<ChecksumSHA256>" in body, "status %d %r" % (st, body[:300]))
    for name, value in [("x-amz-expected-bucket-owner", "111122223333"),
                        ("x-amz-source-expected-bucket-owner", "111122223333")]:
        k = fresh("owner")
        h = {name: value, "x-amz-copy-source": "/%s/src" % B}
        expect_refused("CopyObject %s: another account" % name,
                       req("PUT", "/%s/%s" % (B, k), headers=h), "", 403, "AccessDenied")
        check("  nothing stored (owner)", not exists(k))
    expect_ok("DeleteObject x-amz-bypass-governance-retention + x-amz-mfa",
              req("DELETE", "/%s/%s" % (B, k),
                  headers={"x-amz-bypass-governance-retention": "true", "x-amz-mfa": "1 2"}))


def delete_objects_checksum():
    """DeleteObjects verifies an x-amz-checksum-* of its body (newer SDKs send no Content-MD5)."""
    for k in ("del-a", "del-b"):
        req("PUT", "/%s/%s" % (B, k), body=b"x")
    body = b"<Delete><Object><Key>del-a</Key></Object><Object><Key>del-b</Key></Object></Delete>"
    good = base64.b64encode(zlib.crc32(body).to_bytes(4, "big")).decode()
    bad = base64.b64encode((zlib.crc32(body) ^ 1).to_bytes(4, "big")).decode()
    expect_refused("DeleteObjects with a wrong x-amz-checksum-crc32",
                   req("POST", "/" + B, {"delete": ""}, body=body,
                       headers={"x-amz-checksum-crc32": bad}), "", 400, "BadDigest")
    check("  nothing deleted", exists("del-a") and exists("del-b"))
    expect_ok("DeleteObjects with the right x-amz-checksum-crc32",
              req("POST", "/" + B, {"delete": ""}, body=body,
                  headers={"x-amz-checksum-crc32": good, "x-amz-sdk-checksum-algorithm": "CRC32"}))
    check("  both deleted", not exists("del-a") and not exists("del-b"))


def storage_classes():
    """Accepted classes are stored and echoed (not STANDARD, which S3 never names)."""
    expect_ok("PutObject x-amz-storage-class: standard_ia",
              req("PUT", "/%s/sc-ia" % B, body=b"x", headers={"x-amz-storage-class": "standard_ia"}))
    _, h, _ = req("HEAD", "/%s/sc-ia" % B)
    check("  HEAD says STANDARD_IA", h.get("x-amz-storage-class") == "STANDARD_IA", h)
    _, h, _ = req("GET", "/%s/src" % B)
    check("  a STANDARD object names no class", "x-amz-storage-class" not in h, h)
    _, _, body = req("GET", "/" + B, {"list-type": "2", "prefix": "sc-"})
    check("  listing says STANDARD_IA",
          b"<Key>sc-ia</Key>" in body and b"<StorageClass>STANDARD_IA</StorageClass>" in body,
          body[:400])
    # A copy takes the request's class (STANDARD by default), never the source's.
    expect_ok("CopyObject without a class",
              req("PUT", "/%s/sc-copy" % B, headers={"x-amz-copy-source": "/%s/sc-ia" % B}))
    _, h, _ = req("HEAD", "/%s/sc-copy" % B)
    check("  the copy is STANDARD", "x-amz-storage-class" not in h, h)
    expect_ok("CopyObject onto itself to change the class",
              req("PUT", "/%s/sc-copy" % B, headers={"x-amz-copy-source": "/%s/sc-copy" % B,
                                                     "x-amz-storage-class": "ONEZONE_IA"}))
    _, h, _ = req("HEAD", "/%s/sc-copy" % B)
    check("  now ONEZONE_IA", h.get("x-amz-storage-class") == "ONEZONE_IA", h)
    st, _, body = req("POST", "/%s/sc-mpu" % B, {"uploads": ""},
                      headers={"x-amz-storage-class": "REDUCED_REDUNDANCY"})
    uid = re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()
    st, h, _ = req("PUT", "/%s/sc-mpu" % B, {"uploadId": uid, "partNumber": "1"}, body=b"q" * 10)
    _, _, body = req("GET", "/%s/sc-mpu" % B, {"uploadId": uid})
    check("  ListParts says REDUCED_REDUNDANCY",
          b"<StorageClass>REDUCED_REDUNDANCY</StorageClass>" in body, body[:400])
    done = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
            "</CompleteMultipartUpload>" % h.get("etag")).encode()
    expect_ok("CompleteMultipartUpload", req("POST", "/%s/sc-mpu" % B, {"uploadId": uid},
                                             body=done))
    _, h, _ = req("HEAD", "/%s/sc-mpu" % B)
    check("  the completed object is REDUCED_REDUNDANCY",
          h.get("x-amz-storage-class") == "REDUCED_REDUNDANCY", h)


def empty_continuation_token():
    """ListObjectsV2 with `continuation-token=` lists from the start (or from start-after)."""
    for q, want in [("list-type=2&continuation-token=", b"<Key>acc-"),
                    ("continuation-token=&list-type=2&start-after=src", b"<Key>zz")]:
        params = dict(p.split("=", 1) for p in q.split("&"))
        h = s3raw.sign("GET", "/" + B, params, {}, s3raw.EMPTY_SHA256)
        with s3raw.connect() as s:
            s.sendall(("GET /%s?%s HTTP/1.1\r\n" % (B, q)).encode() +
                      "".join("%s: %s\r\n" % kv for kv in h.items()).encode() + b"\r\n")
            st, _, body = s3raw.read_response(s)
        check("ListObjectsV2 %s -> 200 listing %s" % (q, want.decode()),
              st == 200 and want in body and b"<KeyCount>0</KeyCount>" not in body,
              "status %d %r" % (st, body[:300]))
        if "start-after" in q:
            check("  start-after applies", b"<Key>acc-" not in body, body[:300])


def copy_destination_key():
    """CopyObject refuses a destination key that PutObject refuses (not UTF-8)."""
    expect_ok("PutObject src2", req("PUT", "/%s/src2" % B, body=b"second source"))
    _, _, before = req("GET", "/" + B, {"list-type": "2"})
    path = ("/%s/bad" % B).encode() + b"\xff" + b"key"  # sent as bad%FFkey
    st, _, body = req("PUT", path, body=b"x")
    check("PutObject to a key that is not UTF-8 -> 400", st == 400, "status %d %r" % (st, body))
    st, _, body = req("PUT", path, headers={"x-amz-copy-source": "/%s/src2" % B})
    check("CopyObject to a key that is not UTF-8 -> 400", st == 400, "status %d %r" % (st, body))
    _, _, after = req("GET", "/" + B, {"list-type": "2"})
    check("  nothing stored (bad key)", before == after, after[:400])


def main():
    st, _, body = req("PUT", "/" + B)
    check("create bucket", st == 200, body)
    expect_ok("PutObject src", req("PUT", "/%s/src" % B, body=b"source bytes"))
    expect_ok("PutObject zz", req("PUT", "/%s/zz" % B, body=b"z"))
    st, _, body = req("POST", "/%s/mp" % B, {"uploads": ""})
    m = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
    check("CreateMultipartUpload", st == 200 and m, body[:300])
    upload_id = m.group(1).decode()
    expect_ok("UploadPart 1", req("PUT", "/%s/mp" % B, {"uploadId": upload_id, "partNumber": "1"},
                                  body=b"p" * 100))
    writes_refused()
    sse_c_everywhere(upload_id)
    complete_expectations()
    subresources_not_pretended()
    buckets_and_deletes()
    accepted()
    delete_objects_checksum()
    storage_classes()
    empty_continuation_token()
    copy_destination_key()
    print("%d checks failed" % len(FAILS))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
