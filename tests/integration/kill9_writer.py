"""Burst of PUTs for fault_kill9.sh: THREADS writers PUT distinct keys until a request fails (the
server was killed) or MAX_KEYS is reached. Every PUT answered 200 is appended to the ack file as
`key size md5` and flushed at once, so the test knows exactly which writes were acknowledged.
Content is derived from (seed, key), so nothing else needs keeping. Seed from argv, printed.
"""

import hashlib
import random
import sys
import threading

import s3raw

THREADS = 4
MAX_KEYS = 4000
SIZES = (1024, 20_000, 100_000, 300_000, 1_100_000)


def content(seed, i):
    rng = random.Random(seed * 1_000_003 + i)
    return rng.randbytes(SIZES[i % len(SIZES)])


def writer(tid, bucket, seed, ack, lock):
    i = tid
    while i < MAX_KEYS:
        body = content(seed, i)
        key = "burst/%05d" % i
        try:
            status, _, _ = s3raw.request("PUT", "/%s/%s" % (bucket, key), body=body)
        except OSError:
            return  # connection refused or reset: the server is gone
        if status != 200:
            return
        with lock:
            ack.write("%s %d %s\n" % (key, len(body), hashlib.md5(body).hexdigest()))
            ack.flush()
        i += THREADS


def main():
    bucket, seed, ack_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    print("kill9 writer: seed %d, %d threads" % (seed, THREADS), flush=True)
    lock = threading.Lock()
    with open(ack_path, "a") as ack:
        ts = [threading.Thread(target=writer, args=(t, bucket, seed, ack, lock)) for t in range(THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
