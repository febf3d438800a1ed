"""Load that makes a server wait on its drives, for fault_slow_drive.sh.

usage: slow_drive_load.py BUCKET SECONDS READY_FILE

For SECONDS, in threads: overwrites of four striped objects (300 KiB PUTs: their old blobs are
freed), GETs of the same objects (their leases make the last reader free a replaced body), and
PUTs that send 1.5 MiB of an announced 2 MiB body and hang up (the server aborts the writer and
deletes the stripe already appended). Every one of those frees blobs on every drive, the slow one
included. READY_FILE is created once the objects exist and the load starts. Prints one line of
counts; exits 1 if a PUT or GET that should succeed failed.
"""

import os
import random
import sys
import threading
import time

import s3raw

BIG = 300 * 1024


def main():
    bucket, seconds, ready = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    rng = random.Random(7100)
    bodies = [rng.randbytes(BIG) for _ in range(4)]
    for i, b in enumerate(bodies):
        st, _, _ = s3raw.request("PUT", "/%s/big%d" % (bucket, i), body=b)
        if st != 200:
            print("setup PUT big%d: %d" % (i, st))
            return 1
    counts = {"put": 0, "get": 0, "abort": 0, "bad": 0}
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def bump(k):
        with lock:
            counts[k] += 1

    def overwrite():
        i = 0
        while time.monotonic() < end:
            st, _, _ = s3raw.request("PUT", "/%s/big%d" % (bucket, i % 4), body=bodies[i % 4])
            bump("put" if st == 200 else "bad")
            i += 1

    def read(first):
        i = first
        while time.monotonic() < end:
            st, _, body = s3raw.request("GET", "/%s/big%d" % (bucket, i % 4))
            bump("get" if st == 200 and body == bodies[i % 4] else "bad")
            i += 1
            time.sleep(0.02)  # pacing: the single loop's CPU is not what is measured

    def abort():
        part = rng.randbytes(1536 * 1024)
        n = 0
        while time.monotonic() < end:
            path = "/%s/aborted%d" % (bucket, n % 8)
            h = s3raw.sign("PUT", path, {}, {"Content-Length": str(2 << 20)}, "UNSIGNED-PAYLOAD")
            with s3raw.connect() as s:
                s.sendall(s3raw.request_bytes("PUT", path, {}, h) + part)
            bump("abort")
            n += 1
            time.sleep(0.1)  # pacing, so aborts do not crowd out the other load

    threads = [threading.Thread(target=overwrite), threading.Thread(target=read, args=(0,)),
               threading.Thread(target=read, args=(2,)), threading.Thread(target=abort)]
    open(ready, "w").close()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("overwrites %(put)d, striped GETs %(get)d, aborted PUTs %(abort)d, failed %(bad)d"
          % counts)
    return 1 if counts["bad"] else 0


if __name__ == "__main__":
    sys.exit(main())
