#!/usr/bin/env python3
"""cluster_get_retry.py: a GET whose stripes fall short for a while goes on once they are back
(fault_cluster_heal_get.sh; docs/chunks.md, "A GET and a concurrent heal").

  ENDPOINTS BUCKET FAULTS   a 40 MiB object put through n1; a GET through n6 reads its first
                            256 KiB, then n6's calls to n1, n2 and n3 are refused (the RPC fault
                            rules in the file FAULTS: 6 of 12 cells of every stripe out of reach,
                            k = 8) for 2.5 s and allowed again; the rest of the body must arrive
                            whole and byte-exact. Exits 1 otherwise.
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


def main():
    eps, bucket, faults = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
    data = bytearray()
    block = hashlib.sha256(b"get-retry").digest()
    while len(data) < 40 * MIB:
        block = hashlib.sha256(block).digest()
        data += block * 64
    data = bytes(data[:40 * MIB])
    client(eps[0]).put_object(Bucket=bucket, Key="big", Body=data)
    body = client(eps[5]).get_object(Bucket=bucket, Key="big")["Body"]
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
        print("FAIL - the GET broke off after %d bytes (%.1f s into the fault): %s" %
              (len(got), time.time() - t0, repr(e)[:120]))
        sys.exit(1)
    t.join()
    if got != data:
        print("FAIL - the GET gave %d bytes, not the object's" % len(got))
        sys.exit(1)
    print("ok - 40 MiB GET through n6 whole and byte-exact across 2.5 s of refused cells "
          "(%.1f s)" % (time.time() - t0))


if __name__ == "__main__":
    main()
