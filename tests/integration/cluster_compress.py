"""Compression on cluster nodes, run by test_cluster_compression.sh: a text-like body PUT through
n1 (single part) and a multipart one through n2/n3 are stored compressed (the writing node's
/admin/status: bodies, logical and stored bytes; stored under half, and the live bytes of every
node's drives, parity included, grow by less than half the body), a random body PUT through
n4 is not (skipped); every body reads back byte-exact, whole and in ranges (frame edges, inside a
frame, across frames, the tail), through the other nodes. Endpoints in CAIRN_ENDPOINTS
(comma-separated, n1..n6), credentials in the AWS_* env. Prints ok/FAIL lines; exit 1 on a
failure."""

import json
import os
import random
import sys

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3raw  # noqa: E402

FAILS = []
EPS = os.environ["CAIRN_ENDPOINTS"].split(",")
RNG = random.Random(7)
MIB = 1 << 20


def check(desc, cond, detail=""):
    print(("ok - " if cond else "FAIL - ") + desc, flush=True)
    if not cond:
        FAILS.append(desc)
        print("    | %s" % detail)


def client(i):
    return boto3.client("s3", endpoint_url=EPS[i], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 2}))


def status(i):
    os.environ["CAIRN_ENDPOINT"] = EPS[i]
    _, _, body = s3raw.request("GET", "/admin/status")
    return json.loads(body)


def zstat(i):
    return status(i)["compression"]


def live():
    """The live bytes of every drive of every node."""
    return sum(d["live_bytes"] for i in range(len(EPS)) for d in status(i)["drives"])


def text(size):
    words = [b"cairn", b"stripe", b"erasure", b"drive", b"object", b"bucket", b"the", b"of",
             b"zstd", b"frame", b"node", b"cluster", b"quorum", b"replica"]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(RNG.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:size])


def main():
    b = "zcomp"
    client(0).create_bucket(Bucket=b)
    z0 = [zstat(i) for i in range(4)]

    txt = text(20 * MIB + 12345)
    live0 = live()
    client(0).put_object(Bucket=b, Key="text", Body=txt)
    grown = live() - live0
    check("text PUT: the cluster's drives grew by less than half its size (%d bytes, parity "
          "included)" % grown, 0 < grown and 2 * grown < len(txt))
    z = zstat(0)
    bodies = z["bodies"] - z0[0]["bodies"]
    logical = z["logical_bytes"] - z0[0]["logical_bytes"]
    stored = z["stored_bytes"] - z0[0]["stored_bytes"]
    check("text PUT through n1: one body compressed", bodies == 1, z)
    check("  its logical bytes are the body's", logical == len(txt), (logical, len(txt)))
    check("  stored in less than half its size (%d of %d bytes)" % (stored, logical),
          0 < stored and 2 * stored < logical)

    # A multipart upload whose parts go through n2 and n3: each part a compressed body.
    parts = [text(6 * MIB + 777), text(3 * MIB + 5)]
    up = client(1).create_multipart_upload(Bucket=b, Key="mp")
    done = []
    for i, p in enumerate(parts, 1):
        r = client(i).upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=i,
                                  Body=p)
        done.append({"PartNumber": i, "ETag": r["ETag"]})
    client(5).complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                        MultipartUpload={"Parts": done})
    got = sum(zstat(i)["bodies"] - z0[i]["bodies"] for i in (1, 2))
    check("multipart parts through n2 and n3: compressed", got == 2, got)

    rnd = RNG.randbytes(12 * MIB + 3)
    client(3).put_object(Bucket=b, Key="random", Body=rnd)
    z = zstat(3)
    check("random PUT through n4: skipped, not compressed",
          z["skipped"] - z0[3]["skipped"] == 1 and z["bodies"] == z0[3]["bodies"], z)

    whole = b"".join(parts)
    for key, data in (("text", txt), ("mp", whole), ("random", rnd)):
        for i in range(1, 6):
            got = client(i).get_object(Bucket=b, Key=key)["Body"].read()
            check("GET %s through n%d: byte-exact" % (key, i + 1), got == data,
                  "%d vs %d bytes" % (len(got), len(data)))
        n = len(data)
        for first, last in ((0, 0), (MIB - 1, MIB), (4 * MIB - 3, 4 * MIB + 2), (12345, 99999),
                            (3 * MIB + 17, 9 * MIB), (n - 10, n - 1)):
            if last >= n:
                continue
            i = RNG.randrange(1, 6)
            got = client(i).get_object(Bucket=b, Key=key,
                                       Range="bytes=%d-%d" % (first, last))["Body"].read()
            check("range %d-%d of %s through n%d" % (first, last, key, i + 1),
                  got == data[first:last + 1], "%d bytes" % len(got))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
