#!/usr/bin/env python3
"""cluster_get_retry.py: a GET whose stripes fall short for a while goes on once they are back
(fault_cluster_heal_get.sh; docs/chunks.md, "A GET and a concurrent heal").

  ENDPOINTS BUCKET FAULTS   a 40 MiB object put through n1; a GET through n6 reads its first
                            256 KiB, then n6's calls to n1, n2 and n3 are refused (the RPC fault
                            rules in the file FAULTS: 6 of 12 cells of every stripe out of reach,
                            k = 8) for 2.5 s and allowed again; the rest of the body must arrive
                            whole and byte-exact. Then the same with an SSE-S3 object (its pieces
                            are read as stored segments and decrypted: another path). Exits 1
                            otherwise.
"""
import hashlib
import os
import sys
import threading
import time

from lc_boto import client

MIB = 1 << 20


def rules(path, spec):
    with open(path + ".tmp", "w") as f:
        f.write(spec)
    os.rename(path + ".tmp", path)


def get_across_fault(eps, bucket, faults, data, key, extra, what):
    client(eps[0]).put_object(Bucket=bucket, Key=key, Body=data, **extra)
    resp = client(eps[5]).get_object(Bucket=bucket, Key=key)
    if extra and resp.get("ServerSideEncryption") != extra["ServerSideEncryption"]:
        print("FAIL - %s: the GET does not say it was encrypted: %r" %
              (what, resp.get("ServerSideEncryption")))
        sys.exit(1)
    body = resp["Body"]
    got = body.read(256 * 1024)

    def fault():
        rules(faults, "n6>n1:refuse,n6>n2:refuse,n6>n3:refuse")
        time.sleep(2.5)
        rules(faults, "")

    t = threading.Thread(target=fault)
    t.start()
    t0 = time.time()
    try:
        while True:
            piece = body.read(MIB)
            if not piece:
                break
            got += piece
    except Exception as e:  # IncompleteRead: the body cut short
        t.join()
        print("FAIL - %s: the GET broke off after %d bytes (%.1f s into the fault): %s" %
              (what, len(got), time.time() - t0, repr(e)[:120]))
        sys.exit(1)
    t.join()
    if got != data:
        print("FAIL - %s: the GET gave %d bytes, not the object's" % (what, len(got)))
        sys.exit(1)
    print("ok - %s: 40 MiB GET through n6 whole and byte-exact across 2.5 s of refused cells "
          "(%.1f s)" % (what, time.time() - t0))


def main():
    eps, bucket, faults = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
    data = bytearray()
    block = hashlib.sha256(b"get-retry").digest()
    while len(data) < 40 * MIB:
        block = hashlib.sha256(block).digest()
        data += block * 64
    data = bytes(data[:40 * MIB])
    get_across_fault(eps, bucket, faults, data, "big", {}, "plain")
    get_across_fault(eps, bucket, faults, data, "big-sse", {"ServerSideEncryption": "AES256"},
                     "SSE-S3")


if __name__ == "__main__":
    main()
