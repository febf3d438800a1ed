"""Server-side encryption through boto3 (endpoint in CAIRN_ENDPOINT, or the nodes of a cluster in
CAIRN_SSE_ENDPOINTS, comma-separated; credentials in the AWS_* env), run by test_sse.sh and
test_cluster_sse.sh: SSE-S3 single-part (sizes around the 64 KiB segment), ranges across
segments, multipart with part and range GETs, bucket default encryption, SSE-C with the right,
wrong and missing key, and the CopyObject / UploadPartCopy matrix across encryption settings.
Every encrypted body carries a marker string; the markers are written to the file named by
CAIRN_SSE_MARKERS (one per line) for the shell to grep the data directory for. The plaintext
markers of two plain objects (inline, striped) go to CAIRN_SSE_PLAIN_MARKERS, as the grep's
positive control. Prints one `ok -` / `FAIL -` line per check; exit status 1 if any failed.

With several endpoints every object call goes to the next node in turn (so an object written
through one node is read through others, and the parts of one upload go through different
nodes); bucket encryption settings are changed through the first node, and the suite waits until
every node sees a change before relying on it (a node learns it from the etcd watch).
"""

import base64
import hashlib
import os
import random
import sys
import time
import zlib

import boto3
from botocore.config import Config
from tcheck import FAILS, check, err_of

MARKERS = []
PLAIN_MARKERS = []
MARKER_SIZES = []  # the body size of each entry of MARKERS, in order
RNG = random.Random(int(os.environ.get("CAIRN_SSE_SEED", "10")))
SEG = 64 * 1024


def body(size, plain=False):
    """size bytes: a text-like body with a unique marker every 4 KiB (so every cell and every
    segment holds some), recorded for the grep."""
    marker = "CAIRN-%s-%016x" % ("PLAIN" if plain else "SECRET", RNG.getrandbits(64))
    (PLAIN_MARKERS if plain else MARKERS).append(marker)
    if not plain:
        MARKER_SIZES.append(size)
    unit = (marker + " the quick brown fox jumps over the lazy dog ").encode()
    out = bytearray()
    while len(out) < size:
        out += unit
        out += RNG.randbytes(4096 - len(unit))
    return bytes(out[:size])


def md5hex(b):
    return hashlib.md5(b).hexdigest()


def crc32_b64(b):
    return base64.b64encode(zlib.crc32(b).to_bytes(4, "big")).decode()


def ssec(key):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def src_ssec(key):
    return {"CopySourceSSECustomerAlgorithm": "AES256", "CopySourceSSECustomerKey": key}


class Nodes:
    """boto3 clients of the cluster's nodes: each object call goes to the next node in turn."""

    def __init__(self, clients):
        self.clients = clients
        self.turn = 0

    def __getattr__(self, name):
        if name.endswith("bucket_encryption") or name == "create_bucket":
            return getattr(self.clients[0], name)
        client = self.clients[self.turn % len(self.clients)]
        self.turn += 1
        return getattr(client, name)

    def settle(self, bucket, want):
        """Wait (at most 10 s) until every node answers GetBucketEncryption with want (200/404)."""
        deadline = time.time() + 10
        for c in self.clients:
            while err_of(c.get_bucket_encryption, Bucket=bucket)[0] != want:
                if time.time() > deadline:
                    check("every node sees the bucket encryption change (%d)" % want, False)
                    return
                time.sleep(0.05)


def settle(s3, bucket, want):
    if isinstance(s3, Nodes):
        s3.settle(bucket, want)


def get(s3, b, k, **kw):
    return s3.get_object(Bucket=b, Key=k, **kw)["Body"].read()


def sse_s3(s3, b):
    objs = {}
    for size in (0, 1, 1000, SEG - 1, SEG, SEG + 1, 3 * SEG + 17, 2 * 1024 * 1024 + 5):
        k = "s3-%d" % size
        data = body(size)
        r = s3.put_object(Bucket=b, Key=k, Body=data, ServerSideEncryption="AES256",
                          ChecksumAlgorithm="CRC32")
        check("PUT SSE-S3 %d bytes answers AES256" % size, r.get("ServerSideEncryption") ==
              "AES256", r)
        check("  ETag is the MD5 of the plaintext", r["ETag"].strip('"') == md5hex(data), r["ETag"])
        check("  x-amz-checksum-crc32 is the plaintext's", r.get("ChecksumCRC32") ==
              crc32_b64(data), r.get("ChecksumCRC32"))
        g = s3.get_object(Bucket=b, Key=k, ChecksumMode="ENABLED")
        got = g["Body"].read()
        check("  GET returns the plaintext", got == data, "%d vs %d bytes" % (len(got), size))
        check("  GET says AES256 and the plaintext checksum",
              g.get("ServerSideEncryption") == "AES256" and g.get("ChecksumCRC32") ==
              crc32_b64(data), g)
        h = s3.head_object(Bucket=b, Key=k)
        check("  HEAD: AES256, plaintext length", h.get("ServerSideEncryption") == "AES256" and
              h["ContentLength"] == size, h)
        objs[k] = data
    data = objs["s3-%d" % (2 * 1024 * 1024 + 5)]
    n = len(data)
    for first, last in ((0, 0), (SEG - 1, SEG), (SEG, 2 * SEG - 1), (100, 300000),
                        (SEG * 16 - 5, SEG * 16 + 5), (1048570, 1048600), (n - 10, n - 1)):
        got = get(s3, b, "s3-%d" % n, Range="bytes=%d-%d" % (first, last))
        check("range %d-%d of an SSE-S3 object" % (first, last), got == data[first:last + 1],
              "%d bytes" % len(got))
    got = get(s3, b, "s3-%d" % n, Range="bytes=-70000")
    check("suffix range of an SSE-S3 object", got == data[-70000:])
    return objs


def multipart(s3, b, k, key=None, extra=None, sizes=(5 << 20, 100 * 1024)):
    """An upload of parts of these sizes; returns the answer to Create and the parts' bodies."""
    kw = dict(extra or {})
    if key:
        kw.update(ssec(key))
    up = s3.create_multipart_upload(Bucket=b, Key=k, **kw)
    parts, bodies = [], []
    for i, size in enumerate(sizes, 1):
        data = body(size)
        pk = ssec(key) if key else {}
        r = s3.upload_part(Bucket=b, Key=k, UploadId=up["UploadId"], PartNumber=i, Body=data,
                           **pk)
        parts.append({"PartNumber": i, "ETag": r["ETag"]})
        bodies.append(data)
    s3.complete_multipart_upload(Bucket=b, Key=k, UploadId=up["UploadId"],
                                 MultipartUpload={"Parts": parts})
    return up, bodies


def sse_multipart(s3, b):
    up, bodies = multipart(s3, b, "mp-s3", extra={"ServerSideEncryption": "AES256"},
                           sizes=(5 << 20, 300 * 1024))
    check("CreateMultipartUpload SSE-S3 answers AES256", up.get("ServerSideEncryption") ==
          "AES256", up)
    whole = b"".join(bodies)
    check("multipart SSE-S3: whole GET", get(s3, b, "mp-s3") == whole)
    lo = (5 << 20) - 1000
    got = get(s3, b, "mp-s3", Range="bytes=%d-%d" % (lo, lo + 200000))
    check("multipart SSE-S3: a range across the part boundary", got == whole[lo:lo + 200001])
    g = s3.get_object(Bucket=b, Key="mp-s3", PartNumber=2)
    check("multipart SSE-S3: GET partNumber=2", g["Body"].read() == bodies[1] and
          g.get("ServerSideEncryption") == "AES256")
    got = get(s3, b, "mp-s3", Range="bytes=%d-%d" % (len(whole) - 5000, len(whole) - 1))
    check("multipart SSE-S3: the last bytes", got == whole[-5000:])
    return whole


def bucket_default(s3, b2):
    st, code = err_of(s3.get_bucket_encryption, Bucket=b2)
    check("GetBucketEncryption without one: 404 ServerSideEncryptionConfigurationNotFoundError",
          st == 404 and code == "ServerSideEncryptionConfigurationNotFoundError", (st, code))
    kms = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]}
    st, code = err_of(s3.put_bucket_encryption, Bucket=b2,
                      ServerSideEncryptionConfiguration=kms)
    check("PutBucketEncryption aws:kms: 501 NotImplemented", st == 501 and
          code == "NotImplemented", (st, code))
    aes = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                      "BucketKeyEnabled": True}]}
    s3.put_bucket_encryption(Bucket=b2, ServerSideEncryptionConfiguration=aes)
    # the setting is the one just put, every time (a worker once read its state before the loop
    # had filled it in, and removed the configuration while answering 200)
    lost = 0
    for _ in range(25):
        s3.delete_bucket_encryption(Bucket=b2)
        s3.put_bucket_encryption(Bucket=b2, ServerSideEncryptionConfiguration=aes)
        st, code = err_of(s3.get_bucket_encryption, Bucket=b2)
        lost += st != 200
    check("PutBucketEncryption then GetBucketEncryption, 25 times: never lost", lost == 0,
          "%d of 25 lost" % lost)
    c = s3.get_bucket_encryption(Bucket=b2)["ServerSideEncryptionConfiguration"]
    rule = c["Rules"][0]
    check("GetBucketEncryption: AES256, BucketKeyEnabled",
          rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256" and
          rule.get("BucketKeyEnabled") is True, c)
    settle(s3, b2, 200)
    data = body(200000)
    r = s3.put_object(Bucket=b2, Key="by-default", Body=data)
    check("PUT without headers into a default-encrypted bucket: AES256",
          r.get("ServerSideEncryption") == "AES256", r)
    check("  and reads back", get(s3, b2, "by-default") == data)
    up, bodies = multipart(s3, b2, "mp-default")
    check("multipart into a default-encrypted bucket: AES256",
          s3.head_object(Bucket=b2, Key="mp-default").get("ServerSideEncryption") == "AES256")
    check("  and reads back", get(s3, b2, "mp-default") == b"".join(bodies))
    s3.delete_bucket_encryption(Bucket=b2)
    st, code = err_of(s3.get_bucket_encryption, Bucket=b2)
    check("after DeleteBucketEncryption: not found", st == 404, (st, code))
    settle(s3, b2, 404)
    plain = body(3000, plain=True)
    r = s3.put_object(Bucket=b2, Key="plain-after", Body=plain)
    check("PUT after DeleteBucketEncryption is plain", "ServerSideEncryption" not in r, r)
    check("  the default-encrypted object still reads", get(s3, b2, "by-default") == data)


def sse_c(s3, b):
    k1, k2 = os.urandom(32), os.urandom(32)
    data = body(3 * SEG + 99)
    r = s3.put_object(Bucket=b, Key="c1", Body=data, **ssec(k1))
    check("PUT SSE-C answers the algorithm and key MD5",
          r.get("SSECustomerAlgorithm") == "AES256" and
          r.get("SSECustomerKeyMD5") == base64.b64encode(hashlib.md5(k1).digest()).decode(), r)
    check("  ETag is the MD5 of the plaintext", r["ETag"].strip('"') == md5hex(data))
    g = s3.get_object(Bucket=b, Key="c1", **ssec(k1))
    check("GET SSE-C with the key", g["Body"].read() == data and
          g.get("SSECustomerAlgorithm") == "AES256", g)
    got = get(s3, b, "c1", Range="bytes=65530-131080", **ssec(k1))
    check("ranged GET SSE-C with the key", got == data[65530:131081])
    st, code = err_of(s3.get_object, Bucket=b, Key="c1")
    check("GET SSE-C without the key: 400 InvalidRequest", st == 400 and
          code == "InvalidRequest", (st, code))
    st, code = err_of(s3.get_object, Bucket=b, Key="c1", **ssec(k2))
    check("GET SSE-C with another key: 403", st == 403, (st, code))
    st, _ = err_of(s3.head_object, Bucket=b, Key="c1")
    check("HEAD SSE-C without the key: 400", st == 400, st)
    st, _ = err_of(s3.head_object, Bucket=b, Key="c1", **ssec(k2))
    check("HEAD SSE-C with another key: 403", st == 403, st)
    h = s3.head_object(Bucket=b, Key="c1", **ssec(k1))
    check("HEAD SSE-C with the key", h["ContentLength"] == len(data))
    st, code = err_of(s3.put_object, Bucket=b, Key="c-badmd5", Body=b"x",
                      SSECustomerAlgorithm="AES256",
                      SSECustomerKey=base64.b64encode(k1).decode(),  # given MD5: boto sends as is
                      SSECustomerKeyMD5=base64.b64encode(hashlib.md5(k2).digest()).decode())
    check("PUT SSE-C with a key MD5 that does not match: 400 InvalidArgument",
          st == 400 and code == "InvalidArgument", (st, code))
    st, code = err_of(s3.put_object, Bucket=b, Key="c-both", Body=b"x",
                      ServerSideEncryption="AES256", **ssec(k1))
    check("PUT with SSE-S3 and SSE-C at once: 400", st == 400, (st, code))
    st, code = err_of(s3.put_object, Bucket=b, Key="c-kms", Body=b"x",
                      ServerSideEncryption="aws:kms")
    check("PUT aws:kms: 501", st == 501, (st, code))
    # Multipart with a customer key: every part needs it.
    up, bodies = multipart(s3, b, "mp-c", key=k1)
    mpc = b"".join(bodies)
    check("multipart SSE-C: GET with the key", get(s3, b, "mp-c", **ssec(k1)) == mpc)
    g = s3.get_object(Bucket=b, Key="mp-c", PartNumber=2, **ssec(k1))
    check("multipart SSE-C: GET partNumber=2", g["Body"].read() == bodies[1])
    st, _ = err_of(s3.get_object, Bucket=b, Key="mp-c")
    check("multipart SSE-C: GET without the key: 400", st == 400, st)
    up = s3.create_multipart_upload(Bucket=b, Key="mp-c2", **ssec(k1))
    st, _ = err_of(s3.upload_part, Bucket=b, Key="mp-c2", UploadId=up["UploadId"], PartNumber=1,
                   Body=b"p" * 10)
    check("UploadPart of an SSE-C upload without the key: 400", st == 400, st)
    st, _ = err_of(s3.upload_part, Bucket=b, Key="mp-c2", UploadId=up["UploadId"], PartNumber=1,
                   Body=b"p" * 10, **ssec(k2))
    check("UploadPart of an SSE-C upload with another key: 403", st == 403, st)
    s3.abort_multipart_upload(Bucket=b, Key="mp-c2", UploadId=up["UploadId"])
    return k1, k2, data, mpc


def copies(s3, b, s3objs, k1, k2, cdata):
    plain = body(300000, plain=True)
    s3.put_object(Bucket=b, Key="plain", Body=plain)
    src3 = "s3-%d" % (3 * SEG + 17)
    d3 = s3objs[src3]

    def head(k, **kw):
        return s3.head_object(Bucket=b, Key=k, **kw)

    s3.copy_object(Bucket=b, Key="cp-plain-to-s3", CopySource={"Bucket": b, "Key": "plain"},
                   ServerSideEncryption="AES256")
    check("copy plain -> SSE-S3", get(s3, b, "cp-plain-to-s3") == plain and
          head("cp-plain-to-s3").get("ServerSideEncryption") == "AES256")
    r = s3.copy_object(Bucket=b, Key="cp-s3-to-plain", CopySource={"Bucket": b, "Key": src3})
    # A plain copy stores the plaintext, as asked: that body's marker is a plain one from now on.
    i = MARKER_SIZES.index(len(d3))
    PLAIN_MARKERS.append(MARKERS.pop(i))
    MARKER_SIZES.pop(i)
    check("copy SSE-S3 -> plain", get(s3, b, "cp-s3-to-plain") == d3 and
          "ServerSideEncryption" not in head("cp-s3-to-plain"), r)
    check("  the copy's ETag is the plaintext MD5",
          r["CopyObjectResult"]["ETag"].strip('"') == md5hex(d3))
    s3.copy_object(Bucket=b, Key="cp-c-to-s3", CopySource={"Bucket": b, "Key": "c1"},
                   ServerSideEncryption="AES256", **src_ssec(k1))
    check("copy SSE-C -> SSE-S3", get(s3, b, "cp-c-to-s3") == cdata and
          head("cp-c-to-s3").get("ServerSideEncryption") == "AES256")
    s3.copy_object(Bucket=b, Key="cp-s3-to-c", CopySource={"Bucket": b, "Key": src3}, **ssec(k2))
    check("copy SSE-S3 -> SSE-C", get(s3, b, "cp-s3-to-c", **ssec(k2)) == d3)
    st, _ = err_of(s3.get_object, Bucket=b, Key="cp-s3-to-c", **ssec(k1))
    check("  the new object needs the new key", st == 403, st)
    s3.copy_object(Bucket=b, Key="cp-c-to-c", CopySource={"Bucket": b, "Key": "c1"},
                   **src_ssec(k1), **ssec(k2))
    check("copy SSE-C -> SSE-C under another key", get(s3, b, "cp-c-to-c", **ssec(k2)) == cdata)
    st, code = err_of(s3.copy_object, Bucket=b, Key="cp-nokey",
                      CopySource={"Bucket": b, "Key": "c1"})
    check("copy of an SSE-C source without its key: 400", st == 400, (st, code))
    st, code = err_of(s3.copy_object, Bucket=b, Key="cp-wrongkey",
                      CopySource={"Bucket": b, "Key": "c1"}, **src_ssec(k2))
    check("copy of an SSE-C source with another key: 403", st == 403, (st, code))
    # In place: the same key, encryption changed (S3 counts that as a change). Its body was
    # written plain first, so its marker is a plain one: the old chunks stay in the append-only
    # segment files until compaction (docs/encryption.md, "What a stolen disk reveals").
    before = body(200000, plain=True)
    s3.put_object(Bucket=b, Key="inplace", Body=before)
    s3.copy_object(Bucket=b, Key="inplace", CopySource={"Bucket": b, "Key": "inplace"},
                   ServerSideEncryption="AES256")
    check("copy onto itself plain -> SSE-S3", get(s3, b, "inplace") == before and
          head("inplace").get("ServerSideEncryption") == "AES256")
    # UploadPartCopy into an SSE-C upload: a range of an SSE-S3 multipart source, a whole SSE-C
    # multipart source, a range of an SSE-C single-part source.
    up = s3.create_multipart_upload(Bucket=b, Key="mp-copy", **ssec(k2))
    r1 = s3.upload_part_copy(Bucket=b, Key="mp-copy", UploadId=up["UploadId"], PartNumber=1,
                             CopySource={"Bucket": b, "Key": "mp-s3"},
                             CopySourceRange="bytes=0-%d" % ((5 << 20) - 1), **ssec(k2))
    r2 = s3.upload_part_copy(Bucket=b, Key="mp-copy", UploadId=up["UploadId"], PartNumber=2,
                             CopySource={"Bucket": b, "Key": "mp-c"}, **src_ssec(k1), **ssec(k2))
    r3 = s3.upload_part_copy(Bucket=b, Key="mp-copy", UploadId=up["UploadId"], PartNumber=3,
                             CopySource={"Bucket": b, "Key": "c1"},
                             CopySourceRange="bytes=1000-70000", **src_ssec(k1), **ssec(k2))
    s3.complete_multipart_upload(
        Bucket=b, Key="mp-copy", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": i + 1, "ETag": x["CopyPartResult"]["ETag"]}
                                   for i, x in enumerate((r1, r2, r3))]})


def main():
    eps = os.environ.get("CAIRN_SSE_ENDPOINTS", "").split(",")
    clients = [boto3.client("s3", endpoint_url=e, region_name="us-east-1",
                            config=Config(retries={"max_attempts": 1}))
               for e in (eps if eps[0] else [os.environ["CAIRN_ENDPOINT"]])]
    s3 = Nodes(clients) if len(clients) > 1 else clients[0]
    b, b2 = "sse-py", "sse-default"
    s3.create_bucket(Bucket=b)
    s3.create_bucket(Bucket=b2)
    s3objs = sse_s3(s3, b)
    mp_whole = sse_multipart(s3, b)
    bucket_default(s3, b2)
    k1, k2, cdata, mpc = sse_c(s3, b)
    copies(s3, b, s3objs, k1, k2, cdata)
    got = get(s3, b, "mp-copy", **ssec(k2))
    want = mp_whole[:5 << 20] + mpc + cdata[1000:70001]
    check("UploadPartCopy matrix into an SSE-C upload reads back", got == want,
          "%d vs %d bytes" % (len(got), len(want)))
    # A plain inline object: the grep's control (its marker must be found in the metadata).
    s3.put_object(Bucket=b, Key="plain-small", Body=body(500, plain=True))
    with open(os.environ["CAIRN_SSE_MARKERS"], "w") as f:
        f.write("\n".join(MARKERS) + "\n")
    with open(os.environ["CAIRN_SSE_PLAIN_MARKERS"], "w") as f:
        f.write("\n".join(PLAIN_MARKERS) + "\n")
    with open(os.environ["CAIRN_SSE_KEYS"], "w") as f:
        f.write(base64.b64encode(k1).decode() + "\n")
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
