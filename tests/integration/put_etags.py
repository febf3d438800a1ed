"""Concurrent PUTs whose ETags must be the MD5 of their bodies, for test_put_etags.sh.

A loop hashes the bodies it is receiving together (gateway/gw_md5.c, common/cm_md5.c): one
request's bytes share the SIMD kernel with others', and each body is paused while its bytes wait
for the loop's batch. This drives that with 12 connections at once, raw sockets: bodies of random
sizes (empty, around the 64 KiB inline threshold and the 1 MiB stripe, up to 9 MiB), sent whole or
in random pieces with pauses (so batches hold different mixes of requests and byte counts),
UNSIGNED-PAYLOAD or a signed payload hash, some with Content-MD5; one with a wrong Content-MD5
(400 BadDigest) and one connection that closes halfway through its body. Every PUT's ETag must be
the MD5 of its body and a GET must return the body; the server must still answer afterwards.

Usage: put_etags.py BUCKET SEED (CAIRN_ENDPOINT and the credentials in the environment).
"""

import base64
import hashlib
import random
import sys
import threading
import time

import s3raw


def put(bucket, key, body, rnd, unsigned, content_md5=None, stop_at=None):
    headers = {"Content-Length": str(len(body))}
    if content_md5 is not None:
        headers["Content-MD5"] = content_md5
    ph = "UNSIGNED-PAYLOAD" if unsigned else hashlib.sha256(body).hexdigest()
    h = s3raw.sign("PUT", "/%s/%s" % (bucket, key), {}, headers, ph)
    with s3raw.connect(timeout=60) as s:
        s.sendall(s3raw.request_bytes("PUT", "/%s/%s" % (bucket, key), {}, h))
        pos = 0
        while pos < len(body):
            n = len(body) - pos if rnd.random() < 0.3 else rnd.randint(1, 300000)
            if stop_at is not None and pos + n >= stop_at:
                s.sendall(body[pos:stop_at])
                return None  # the connection closes with the body half sent
            s.sendall(body[pos:pos + n])
            pos += n
            if rnd.random() < 0.2:
                time.sleep(rnd.random() * 0.02)
        return s3raw.read_response(s, "PUT")


def worker(bucket, wid, seed, errors):
    rnd = random.Random(seed * 100 + wid)
    sizes = [0, 1, 65535, 65536, 65537, 1 << 20, (1 << 20) + 1, 4 << 20]
    for i in range(6):
        size = rnd.choice(sizes) if rnd.random() < 0.4 else rnd.randint(0, 9 << 20)
        body = rnd.randbytes(size)
        md5 = hashlib.md5(body)
        key = "w%d-%d" % (wid, i)
        unsigned = rnd.random() < 0.7
        cmd5 = base64.b64encode(md5.digest()).decode() if rnd.random() < 0.3 else None
        if wid == 0 and i == 1 and size > 0:  # a wrong Content-MD5
            st, hd, rb = put(bucket, key, body, rnd, unsigned,
                             base64.b64encode(hashlib.md5(body + b"x").digest()).decode())
            if st != 400 or b"BadDigest" not in rb:
                errors.append("%s: wrong Content-MD5 answered %d %r" % (key, st, rb[:200]))
            continue
        if wid == 1 and i == 2 and size > 2:  # closes halfway
            put(bucket, key, body, rnd, unsigned, stop_at=size // 2)
            continue
        st, hd, rb = put(bucket, key, body, rnd, unsigned, cmd5)
        if st != 200:
            errors.append("%s (%d bytes): PUT %d %r" % (key, size, st, rb[:200]))
            continue
        if hd.get("etag", "").strip('"') != md5.hexdigest():
            errors.append("%s (%d bytes): ETag %s, MD5 %s" % (key, size, hd.get("etag"),
                                                             md5.hexdigest()))
        st, hd, got = s3raw.request("GET", "/%s/%s" % (bucket, key))
        if st != 200 or got != body:
            errors.append("%s (%d bytes): GET %d, %d bytes back" % (key, size, st, len(got)))


def main():
    bucket, seed = sys.argv[1], int(sys.argv[2])
    errors = []
    threads = [threading.Thread(target=worker, args=(bucket, w, seed, errors)) for w in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    st, _, _ = s3raw.request("PUT", "/%s/after" % bucket, body=b"still answering")
    if st != 200:
        errors.append("PUT after the run: %d" % st)
    for e in errors:
        print("FAIL", e)
    print("%d errors (seed %d)" % (len(errors), seed))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
