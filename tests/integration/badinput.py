"""Bad-input answers for fault_badinput.sh (endpoint and credentials from the environment).

Each case sends, over a raw socket, a request no well-behaved client sends, and checks both the
answer and that nothing was stored. Prints `ok -`/`FAIL -` lines; exit 1 if any check failed.
"""

import hashlib
import os
import re
import socket
import sys

import s3raw

# CAIRN_TEST_BUCKET_PREFIX: set by lib.sh on a cluster shared by several runs, else empty
BUCKET = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "") + "badinput-bucket"
FAILS = []


def check(desc, cond, detail=""):
    print(("ok - " if cond else "FAIL - ") + desc, flush=True)
    if not cond:
        FAILS.append(desc)
        for line in str(detail).splitlines()[:15]:
            print("    | " + line)


def code_of(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


def absent(key):
    status, _, body = s3raw.request("HEAD", "/%s/%s" % (BUCKET, key))
    return status == 404, "HEAD answered %d" % status


def truncated_body():
    """Content-Length promises 100000 bytes, 40000 arrive, then the client half-closes."""
    body = bytes(range(256)) * 400
    sent = body[:40000]
    h = s3raw.sign("PUT", "/%s/truncated" % BUCKET, {}, {"Content-Length": str(len(body))},
                   hashlib.sha256(body).hexdigest())
    with s3raw.connect() as s:
        s.sendall(s3raw.request_bytes("PUT", "/%s/truncated" % BUCKET, {}, h) + sent)
        s.shutdown(socket.SHUT_WR)
        # The server's answer (or its close) tells us it is done with this request.
        try:
            status, _, resp = s3raw.read_response(s)
        except (OSError, ValueError):
            status, resp = 0, b""
    check("truncated body is not answered 200", status != 200, "status %d %r" % (status, resp[:200]))
    check("truncated upload not stored", *absent("truncated"))


def oversized_headers():
    with s3raw.connect() as s:
        req = ("GET /%s/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: %s\r\n\r\n"
               % (BUCKET, "a" * (256 * 1024))).encode()
        try:
            s.sendall(req)
            status, _, _ = s3raw.read_response(s)
        except OSError as e:  # a reset before any answer
            status = "connection error %s" % e
    check("256 KiB header -> 431 or 400", status in (431, 400), "got %s" % status)
    many = "".join("X-H%05d: %s\r\n" % (i, "v" * 60) for i in range(3000))
    with s3raw.connect() as s:
        try:
            s.sendall(("GET /%s/x HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (BUCKET, many)).encode())
            status, _, _ = s3raw.read_response(s)
        except OSError as e:
            status = "connection error %s" % e
    check("3000 headers (~200 KiB) -> 431 or 400", status in (431, 400), "got %s" % status)


def malformed_xml():
    status, _, body = s3raw.request("POST", "/%s/mpu" % BUCKET, {"uploads": ""})
    m = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
    check("CreateMultipartUpload", status == 200 and m, "status %d %r" % (status, body[:300]))
    if m:
        upload_id = m.group(1).decode()
        for bad in (b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>",
                    b"this is not xml at all"):
            status, _, body = s3raw.request("POST", "/%s/mpu" % BUCKET, {"uploadId": upload_id},
                                            body=bad)
            check("CompleteMultipartUpload with %r -> 400 MalformedXML" % bad[:20],
                  status == 400 and code_of(body) == "MalformedXML",
                  "status %d code %s" % (status, code_of(body)))
        s3raw.request("DELETE", "/%s/mpu" % BUCKET, {"uploadId": upload_id})
    check("no object from the failed Complete", *absent("mpu"))
    s3raw.request("PUT", "/%s/keep" % BUCKET, body=b"keep me")
    for bad in (b"<Delete><Object><Key>keep</Key></Object>", b"\x00\x01 binary junk"):
        md5 = __import__("base64").b64encode(hashlib.md5(bad).digest()).decode()
        status, _, body = s3raw.request("POST", "/" + BUCKET, {"delete": ""}, body=bad,
                                        headers={"Content-MD5": md5})
        check("DeleteObjects with %r -> 400 MalformedXML" % bad[:20],
              status == 400 and code_of(body) == "MalformedXML",
              "status %d code %s" % (status, code_of(body)))
    status, _, _ = s3raw.request("HEAD", "/%s/keep" % BUCKET)
    check("object survives malformed DeleteObjects", status == 200, "HEAD answered %d" % status)


def bad_content_sha256():
    body = b"the real body"
    wrong = hashlib.sha256(b"another body").hexdigest()
    status, _, resp = s3raw.request("PUT", "/%s/sha-wrong" % BUCKET, body=body, payload_hash=wrong)
    check("x-amz-content-sha256 of other bytes -> 400", status == 400,
          "status %d code %s" % (status, code_of(resp)))
    check("object with wrong payload hash not stored", *absent("sha-wrong"))
    status, _, resp = s3raw.request("PUT", "/%s/sha-junk" % BUCKET, body=body,
                                    payload_hash="not-a-sha256-value")
    check("malformed x-amz-content-sha256 -> 400", status == 400,
          "status %d code %s" % (status, code_of(resp)))
    check("object with malformed payload hash not stored", *absent("sha-junk"))


def main():
    status, _, body = s3raw.request("PUT", "/" + BUCKET)
    check("create bucket", status == 200, "status %d %r" % (status, body[:300]))
    truncated_body()
    oversized_headers()
    malformed_xml()
    bad_content_sha256()
    status, _, _ = s3raw.request("GET", "/%s/keep" % BUCKET)
    check("server still serves after all of the above", status == 200, "status %d" % status)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
