"""S3 rules of the metadata layer that real clients depend on, checked with raw signed requests.

    meta_rules.py mpu     DeleteBucket of a bucket holding only unfinished multipart uploads
                          deletes it with them (and frees their parts' blobs); an object still
                          blocks it; a CompleteMultipartUpload retried after it succeeded answers
                          200 with the same ETag, until the key is overwritten.
    meta_rules.py put B K   PUT a 1000-byte inline object whose bytes are printed (hex) on stdout.
    meta_rules.py rotted B K  After the inline body of B/K was damaged on disk: GET, ranged GET and
                          a copy from it answer 500 InternalError, plain HEAD answers 200, and a
                          scrub pass counts it as inline_corrupt; an overwrite makes it readable.

Prints one "ok - ..." or "FAIL - ..." line per check; exits 1 if any check failed. Uses s3raw.py
(standard library only); endpoint and credentials from the environment, as s3raw.
"""

import json
import re
import sys
import time

import s3raw

FAILS = 0


def check(desc, cond, detail=""):
    global FAILS
    if cond:
        print("ok - " + desc)
    else:
        FAILS += 1
        print("FAIL - " + desc + (("\n    | " + str(detail)[:400]) if detail else ""))


def req(method, path, query=None, body=b"", headers=None):
    return s3raw.request(method, path, query or {}, body, headers)


def upload_id(body):
    m = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
    return m.group(1).decode() if m else None


def etag_of(body):
    m = re.search(rb"<ETag>([^<]+)</ETag>", body)
    return m.group(1).decode().replace("&quot;", '"') if m else None


def complete_xml(parts):
    inner = "".join("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % p for p in parts)
    return ("<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % inner).encode()


def drive_blobs():
    st, _, body = req("GET", "/admin/status")
    if st != 200:
        return None
    return sum(d["blobs"] for d in json.loads(body)["drives"])


def new_upload(bucket, key):
    st, _, body = req("POST", "/%s/%s" % (bucket, key), {"uploads": ""})
    return upload_id(body) if st == 200 else None


def put_part(bucket, key, uid, number, data):
    st, h, _ = req("PUT", "/%s/%s" % (bucket, key), {"partNumber": str(number), "uploadId": uid},
                   data)
    return st, h.get("etag")


def mpu():
    check("create bucket", req("PUT", "/mpu-only")[0] == 200)
    blobs0 = drive_blobs()
    uid1, uid2 = new_upload("mpu-only", "a"), new_upload("mpu-only", "dir/b")
    check("two uploads created", uid1 and uid2)
    check("inline part uploaded", put_part("mpu-only", "a", uid1, 1, b"x" * 1000)[0] == 200)
    check("stored part uploaded", put_part("mpu-only", "dir/b", uid2, 1, b"y" * 300000)[0] == 200)
    blobs1 = drive_blobs()
    check("the stored part made blobs", blobs1 is not None and blobs1 > blobs0, (blobs0, blobs1))
    st, _, body = req("DELETE", "/mpu-only")
    check("DeleteBucket with only uploads -> 204", st == 204, (st, body))
    check("the bucket is gone", req("HEAD", "/mpu-only")[0] == 404)
    # Deletes run on each drive's own thread, after the answer: wait (bounded) for them.
    deadline = time.monotonic() + 10
    while drive_blobs() != blobs0 and time.monotonic() < deadline:
        time.sleep(0.05)
    check("the parts' blobs are freed", drive_blobs() == blobs0, (blobs0, drive_blobs()))

    check("create second bucket", req("PUT", "/mpu-obj")[0] == 200)
    uid = new_upload("mpu-obj", "a")
    check("put an object", req("PUT", "/mpu-obj/o", body=b"z")[0] == 200)
    st, _, body = req("DELETE", "/mpu-obj")
    check("an object still blocks DeleteBucket (409)", st == 409 and b"BucketNotEmpty" in body,
          (st, body))
    st, _, body = req("GET", "/mpu-obj", {"uploads": ""})
    check("and the upload is kept", st == 200 and uid.encode() in body, body)

    # A Complete retried after its first answer was lost.
    uid = new_upload("mpu-obj", "done")
    st1, e1 = put_part("mpu-obj", "done", uid, 1, b"p" * 5000)
    xml = complete_xml([(1, e1)])
    st, _, body = req("POST", "/mpu-obj/done", {"uploadId": uid}, xml)
    first = etag_of(body)
    check("complete -> 200", st == 200 and first, (st, body))
    st, _, body = req("POST", "/mpu-obj/done", {"uploadId": uid}, xml)
    check("retried complete -> 200 with the same ETag", st == 200 and etag_of(body) == first,
          (st, body, first))
    wrong = complete_xml([(1, '"00000000000000000000000000000000"')])
    st, _, body = req("POST", "/mpu-obj/done", {"uploadId": uid}, wrong)
    check("a different part list -> NoSuchUpload", st == 404 and b"NoSuchUpload" in body,
          (st, body))
    st, _, body = req("GET", "/mpu-obj/done")
    check("the object reads back", st == 200 and body == b"p" * 5000, st)
    check("overwrite the key", req("PUT", "/mpu-obj/done", body=b"new")[0] == 200)
    st, _, body = req("POST", "/mpu-obj/done", {"uploadId": uid}, xml)
    check("retry after an overwrite -> NoSuchUpload", st == 404 and b"NoSuchUpload" in body,
          (st, body))
    # Abort, then clean up.
    st, _, _ = req("DELETE", "/mpu-obj/a", {"uploadId": new_upload("mpu-obj", "a")})
    check("abort -> 204", st == 204, st)
    for k in ("o", "done"):
        req("DELETE", "/mpu-obj/" + k)
    check("DeleteBucket of the emptied bucket", req("DELETE", "/mpu-obj")[0] == 204)


def put(bucket, key):
    seed = sum(key.encode())  # different keys, different bytes
    body = bytes((i * 7 + seed) % 251 for i in range(1000))
    st, _, _ = req("PUT", "/%s/%s" % (bucket, key), body=body)
    check("put inline object %s/%s" % (bucket, key), st == 200, st)
    sys.stderr.write(body.hex() + "\n")


def scrub_status():
    st, _, body = req("GET", "/admin/scrub")
    return json.loads(body) if st == 200 else {}


def rotted(bucket, key):
    path = "/%s/%s" % (bucket, key)
    st, _, body = req("GET", path)
    check("GET of the rotted inline body -> 500 InternalError",
          st == 500 and b"InternalError" in body, (st, body[:200]))
    st, _, body = req("GET", path, headers={"Range": "bytes=0-9"})
    check("ranged GET -> 500", st == 500, st)
    st, _, _ = req("HEAD", path)
    check("plain HEAD (no bytes) -> 200", st == 200, st)
    st, _, body = req("PUT", "/%s/copy" % bucket,
                      headers={"x-amz-copy-source": "/%s/%s" % (bucket, key)})
    check("CopyObject from it -> 500, nothing copied", st == 500 and
          req("HEAD", "/%s/copy" % bucket)[0] == 404, (st, body[:200]))
    st, _, body = req("GET", "/%s/healthy" % bucket)
    check("another inline object still reads", st == 200 and len(body) == 1000, st)
    before = scrub_status().get("passes", 0)
    st, _, _ = req("POST", "/admin/scrub")
    check("scrub started", st == 202, st)
    deadline = time.time() + 30
    s = scrub_status()
    while s.get("passes", 0) <= before and time.time() < deadline:
        time.sleep(0.1)  # polling the pass counter, not synchronising by delay
        s = scrub_status()
    check("scrub counts one corrupt inline body",
          s.get("inline_corrupt") == 1 and s.get("pass", {}).get("inline_corrupt") == 1 and
          s.get("inline_checked", 0) >= 2, s)
    check("overwrite it", req("PUT", path, body=b"fresh bytes")[0] == 200)
    st, _, body = req("GET", path)
    check("the new body reads", st == 200 and body == b"fresh bytes", st)


def main():
    mode = sys.argv[1]
    if mode == "mpu":
        mpu()
    elif mode == "put":
        put(sys.argv[2], sys.argv[3])
    elif mode == "rotted":
        rotted(sys.argv[2], sys.argv[3])
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
