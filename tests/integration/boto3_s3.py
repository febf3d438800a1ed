"""boto3 against a running cairn node (endpoint in CAIRN_ENDPOINT, credentials in the AWS_* env).

Run by test_boto3.sh with every Python that has boto3: Debian's (boto3 1.26, plain payloads) and a
newer one if present (boto3 >= 1.36 sends CRC32 trailers, STREAMING-UNSIGNED-PAYLOAD-TRAILER, by
default). Prints one `ok -` / `FAIL -` line per check; exit status 1 if any check failed.
Deterministic: the random payloads come from a fixed seed, printed at the start.
"""

import base64
import hashlib
import io
import os
import random
import sys
import tempfile
import urllib.error
import urllib.request

import boto3
import botocore
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

SEED = 1729
FAILS = []


def ok(desc):
    print("ok - " + desc, flush=True)


def bad(desc, detail=""):
    FAILS.append(desc)
    print("FAIL - " + desc, flush=True)
    for line in str(detail).splitlines()[:20]:
        print("    | " + line)


def check(desc, cond, detail=""):
    if cond:
        ok(desc)
    else:
        bad(desc, detail)


def step(desc, fn, *args, **kw):
    """Run one client call; a raised exception is a failed check."""
    try:
        result = fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 - any client error fails this step
        bad(desc, "%s: %s" % (type(e).__name__, e))
        return None
    ok(desc)
    return result


def expect_error(desc, code, fn, *args, **kw):
    """The call must fail with this S3 error code (or HTTP status for bodiless HEAD answers)."""
    try:
        fn(*args, **kw)
    except ClientError as e:
        got = e.response.get("Error", {}).get("Code")
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        check(desc, got == code or str(status) == code, "got code %r status %r" % (got, status))
        return
    except Exception as e:  # noqa: BLE001
        bad(desc, "%s: %s" % (type(e).__name__, e))
        return
    bad(desc, "call succeeded, expected " + code)


def crc32c(data):
    poly, crc = 0x82F63B78, 0xFFFFFFFF
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return base64.b64encode((crc ^ 0xFFFFFFFF).to_bytes(4, "big")).decode()


def crc32c_available():
    try:
        from botocore.httpchecksum import CrtCrc32cChecksum  # noqa: F401
        import awscrt  # noqa: F401
    except ImportError:
        return False
    return True


def b64(digest):
    return base64.b64encode(digest).decode()


def add_header_hook(client, op, name, value):
    """Old botocore lacks some newer request parameters (IfNoneMatch): send the header directly."""

    def hook(request, **_):
        request.headers[name] = value

    client.meta.events.register_first("before-sign.s3." + op, hook)
    return lambda: client.meta.events.unregister("before-sign.s3." + op, hook)


def has_param(client, op, param):
    shape = client.meta.service_model.operation_model(op).input_shape
    return param in shape.members


def make_client():
    return boto3.client(
        "s3",
        endpoint_url=os.environ["CAIRN_ENDPOINT"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def test_put_get(s3, b, rng):
    data = rng.randbytes(100_000)
    step("put_object", s3.put_object, Bucket=b, Key="plain", Body=data)
    got = step("get_object", s3.get_object, Bucket=b, Key="plain")
    if got:
        check("get_object body byte-exact", got["Body"].read() == data)
        check("ETag is the MD5", got["ETag"] == '"%s"' % hashlib.md5(data).hexdigest(), got["ETag"])
    for alg, want in (("CRC32C", crc32c(data)), ("SHA256", b64(hashlib.sha256(data).digest()))):
        key = "sum-" + alg
        if alg == "CRC32C" and not crc32c_available():
            print("skip - CRC32C checks: this botocore needs awscrt for CRC32C", flush=True)
            continue
        r = step("put_object ChecksumAlgorithm=" + alg, s3.put_object, Bucket=b, Key=key, Body=data,
                 ChecksumAlgorithm=alg)
        if r is not None and ("Checksum" + alg) in r:
            check("put response checksum " + alg, r["Checksum" + alg] == want, r["Checksum" + alg])
        h = step("head_object ChecksumMode=ENABLED " + alg, s3.head_object, Bucket=b, Key=key,
                 ChecksumMode="ENABLED")
        if h is not None:
            check("head returns stored " + alg, h.get("Checksum" + alg) == want,
                  "want %s, head had %r" % (want, {k: v for k, v in h.items() if "Checksum" in k}))
        g = step("get " + alg + " object", s3.get_object, Bucket=b, Key=key)
        if g:
            check("get " + alg + " object byte-exact", g["Body"].read() == data)


def test_conditional_and_copy(s3, b):
    native = has_param(s3, "PutObject", "IfNoneMatch")
    kw = {"IfNoneMatch": "*"} if native else {}
    undo = None if native else add_header_hook(s3, "PutObject", "If-None-Match", "*")
    try:
        step("put IfNoneMatch=* (absent key)", s3.put_object, Bucket=b, Key="once", Body=b"1", **kw)
        expect_error("put IfNoneMatch=* again -> 412", "PreconditionFailed", s3.put_object,
                     Bucket=b, Key="once", Body=b"2", **kw)
    finally:
        if undo:
            undo()
    got = step("get conditional object", s3.get_object, Bucket=b, Key="once")
    if got:
        check("first conditional write kept", got["Body"].read() == b"1")
    step("copy_object", s3.copy_object, Bucket=b, Key="copy-of-plain",
         CopySource={"Bucket": b, "Key": "plain"})
    a = step("head source", s3.head_object, Bucket=b, Key="plain")
    c = step("head copy", s3.head_object, Bucket=b, Key="copy-of-plain")
    if a and c:
        check("copy has the source ETag and size",
              (a["ETag"], a["ContentLength"]) == (c["ETag"], c["ContentLength"]), (a, c))


def test_multipart(s3, b, rng, tmp):
    path = os.path.join(tmp, "big.bin")
    data = rng.randbytes(12 << 20)
    with open(path, "wb") as f:
        f.write(data)
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=3)
    step("upload_file 12 MiB multipart", s3.upload_file, path, b, "big.bin", Config=cfg)
    h = step("head multipart object", s3.head_object, Bucket=b, Key="big.bin")
    if h:
        check("multipart size", h["ContentLength"] == len(data), h["ContentLength"])
        check("multipart ETag ends in -3", h["ETag"].endswith('-3"'), h["ETag"])
    buf = io.BytesIO()
    step("download_fileobj", s3.download_fileobj, b, "big.bin", buf, Config=cfg)
    check("multipart object byte-exact", buf.getvalue() == data)
    r = step("get_object Range", s3.get_object, Bucket=b, Key="big.bin", Range="bytes=5242870-5242889")
    if r:
        check("range across a part boundary", r["Body"].read() == data[5242870:5242890])
    test_part_copy(s3, b, data)


def test_part_copy(s3, b, data):
    """UploadPartCopy with ranges: a new object assembled from two ranges of big.bin."""
    up = step("create upload for part copies", s3.create_multipart_upload, Bucket=b, Key="pc")
    if not up:
        return
    uid, parts = up["UploadId"], []
    ranges = [(1000, 1000 + (5 << 20) - 1), (7 << 20, len(data) - 1)]
    for n, (lo, hi) in enumerate(ranges, 1):
        r = step("upload_part_copy bytes=%d-%d" % (lo, hi), s3.upload_part_copy, Bucket=b, Key="pc",
                 UploadId=uid, PartNumber=n, CopySource={"Bucket": b, "Key": "big.bin"},
                 CopySourceRange="bytes=%d-%d" % (lo, hi))
        if r:
            parts.append({"PartNumber": n, "ETag": r["CopyPartResult"]["ETag"]})
    step("complete part-copy upload", s3.complete_multipart_upload, Bucket=b, Key="pc",
         UploadId=uid, MultipartUpload={"Parts": parts})
    got = step("get part-copy object", s3.get_object, Bucket=b, Key="pc")
    if got:
        want = b"".join(data[lo:hi + 1] for lo, hi in ranges)
        check("part-copy object is the two source ranges", got["Body"].read() == want)
    uid2 = s3.create_multipart_upload(Bucket=b, Key="pc2")["UploadId"]
    expect_error("upload_part_copy range beyond the source -> InvalidRange", "InvalidRange",
                 s3.upload_part_copy, Bucket=b, Key="pc2", UploadId=uid2, PartNumber=1,
                 CopySource={"Bucket": b, "Key": "big.bin"},
                 CopySourceRange="bytes=0-%d" % len(data))
    step("abort the second upload", s3.abort_multipart_upload, Bucket=b, Key="pc2", UploadId=uid2)
    step("copy_object REPLACE metadata", s3.copy_object, Bucket=b, Key="pc-meta",
         CopySource={"Bucket": b, "Key": "pc"}, MetadataDirective="REPLACE",
         ContentType="text/x-test", Metadata={"color": "blue"})
    h = step("head REPLACE copy", s3.head_object, Bucket=b, Key="pc-meta")
    if h:
        check("REPLACE copy has the new headers",
              h["ContentType"] == "text/x-test" and h["Metadata"] == {"color": "blue"}, h)


def test_listing(s3, b):
    for i in range(12):
        s3.put_object(Bucket=b, Key="list/%02d" % i, Body=b"x")
    keys = []
    pages = 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix="list/",
                                                                 PaginationConfig={"PageSize": 5}):
            pages += 1
            keys += [o["Key"] for o in page.get("Contents", [])]
        ok("list_objects_v2 paginator")
    except Exception as e:  # noqa: BLE001
        bad("list_objects_v2 paginator", e)
    check("paginator saw 12 keys in 3 pages", keys == ["list/%02d" % i for i in range(12)] and pages == 3,
          "%d pages: %s" % (pages, keys))
    v = step("list_object_versions", s3.list_object_versions, Bucket=b, Prefix="list/0")
    if v:
        vs = v.get("Versions", [])
        check("versions listed with IsLatest",
              len(vs) == 10 and all(x.get("IsLatest") for x in vs), vs[:2])
    objs = [{"Key": "list/%02d" % i} for i in range(12)]
    d = step("delete_objects", s3.delete_objects, Bucket=b, Delete={"Objects": objs})
    if d:
        check("delete_objects deleted 12", len(d.get("Deleted", [])) == 12 and not d.get("Errors"), d)
    left = s3.list_objects_v2(Bucket=b, Prefix="list/").get("KeyCount")
    check("no list/ keys left", left == 0, left)


def test_presign(s3, b):
    url = s3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "plain"}, ExpiresIn=300)
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = resp.read()
        want = s3.get_object(Bucket=b, Key="plain")["Body"].read()
        check("presigned URL GET byte-exact", body == want)
    except urllib.error.URLError as e:
        bad("presigned URL GET", e)


def test_errors(s3, b):
    expect_error("get missing key -> NoSuchKey", "NoSuchKey", s3.get_object, Bucket=b, Key="nope")
    expect_error("get in missing bucket -> NoSuchBucket", "NoSuchBucket", s3.get_object,
                 Bucket="no-such-bucket-cairn", Key="k")
    expect_error("delete non-empty bucket -> BucketNotEmpty", "BucketNotEmpty", s3.delete_bucket,
                 Bucket=b)
    wrong_md5 = b64(hashlib.md5(b"other bytes").digest())
    expect_error("bad Content-MD5 -> BadDigest", "BadDigest", s3.put_object, Bucket=b, Key="md5",
                 Body=b"these bytes", ContentMD5=wrong_md5)
    expect_error("object with bad Content-MD5 not stored", "404", s3.head_object, Bucket=b, Key="md5")


def cleanup(s3, b):
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b):
            for o in page.get("Contents", []):
                s3.delete_object(Bucket=b, Key=o["Key"])
        s3.delete_bucket(Bucket=b)
        ok("emptied and deleted bucket")
    except Exception as e:  # noqa: BLE001
        bad("emptied and deleted bucket", e)


def main():
    print("client: python %s, boto3 %s, botocore %s, seed %d"
          % (sys.version.split()[0], boto3.__version__, botocore.__version__, SEED), flush=True)
    rng = random.Random(SEED)
    s3 = make_client()
    # CAIRN_TEST_BUCKET_PREFIX: set by lib.sh on a cluster shared by several runs, else empty
    prefix = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "")
    b = prefix + "boto3-" + boto3.__version__.replace(".", "-")
    step("create_bucket", s3.create_bucket, Bucket=b)
    with tempfile.TemporaryDirectory() as tmp:
        test_put_get(s3, b, rng)
        test_conditional_and_copy(s3, b)
        test_multipart(s3, b, rng, tmp)
    test_listing(s3, b)
    test_presign(s3, b)
    test_errors(s3, b)
    cleanup(s3, b)
    print("boto3 %s: %d failed check(s)" % (boto3.__version__, len(FAILS)))
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
