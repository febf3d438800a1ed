#!/usr/bin/env python3
"""cluster_read.py: the S3 steps of fault_cluster_read.sh, with boto3.

  put  ENDPOINTS BUCKET N SIZE         bucket, then N objects of SIZE bytes, object i through
                                       node i mod 6 (several stripes each, the last one short)
  read ENDPOINTS BUCKET N SIZE NODES STOP
                                       one reader thread per node index in NODES (comma list):
                                       GETs of the N objects round robin until the file STOP
                                       exists; each GET is whole and byte-exact, cut short
                                       (headers out, then the body broke off), wrong bytes, or an
                                       S3 error. Prints the counts; exits 1 when any GET was cut
                                       short, wrong or failed.
"""
import hashlib
import os
import sys
import threading
import time

from lc_boto import client



def body(i, n):
    out = bytearray()
    block = hashlib.sha256(b"cluster-read-%d" % i).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def main():
    phase, eps, bucket, n, size = sys.argv[1], sys.argv[2].split(","), sys.argv[3], \
        int(sys.argv[4]), int(sys.argv[5])
    if phase == "put":
        client(eps[0]).create_bucket(Bucket=bucket)
        for i in range(n):
            client(eps[i % len(eps)]).put_object(Bucket=bucket, Key="o%d" % i, Body=body(i, size))
        print("ok - %d objects of %d bytes put through n1-n6" % (n, size))
        return
    nodes = [int(x) for x in sys.argv[6].split(",")]
    stop = sys.argv[7]
    want = [hashlib.sha256(body(i, size)).hexdigest() for i in range(n)]
    lock = threading.Lock()
    counts = {}  # (node, outcome) -> count
    first = {}   # outcome -> first example

    def note(node, outcome, what):
        with lock:
            counts[(node, outcome)] = counts.get((node, outcome), 0) + 1
            first.setdefault(outcome, "n%d: %s" % (node + 1, what))

    clients = {x: client(eps[x]) for x in nodes}  # made here: boto3 makes clients unsafely

    def reader(node):
        cl = clients[node]
        i = node
        while not os.path.exists(stop):
            key = "o%d" % (i % n)
            i += 1
            t0 = time.time()
            try:
                got = cl.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as e:  # noqa: BLE001 - every failure is counted
                r = repr(e)
                code = getattr(e, "response", {}).get("Error", {}).get("Code")
                if code:
                    note(node, "error", "%s %s after %.2f s" % (key, code, time.time() - t0))
                elif "IncompleteRead" in r or "Streaming" in r:
                    note(node, "short", "%s %s after %.2f s" % (key, r[:160], time.time() - t0))
                else:
                    note(node, "error", "%s %s" % (key, r[:160]))
                continue
            if len(got) == size and hashlib.sha256(got).hexdigest() == want[(i - 1) % n]:
                note(node, "ok", key)
            else:
                note(node, "wrong", "%s: %d bytes" % (key, len(got)))

    threads = [threading.Thread(target=reader, args=(x,)) for x in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = 0
    for x in nodes:
        row = {o: counts.get((x, o), 0) for o in ("ok", "short", "wrong", "error")}
        bad += row["short"] + row["wrong"] + row["error"]
        print("n%d: %d whole, %d cut short, %d wrong, %d errors" %
              (x + 1, row["ok"], row["short"], row["wrong"], row["error"]))
    for outcome, ex in sorted(first.items()):
        if outcome != "ok":
            print("first %s: %s" % (outcome, ex))
    total = sum(v for (x, o), v in counts.items() if o == "ok")
    print("%d GETs whole and byte-exact, %d not" % (total, bad))
    sys.exit(1 if bad or total == 0 else 0)


if __name__ == "__main__":
    main()
