#!/usr/bin/env python3
"""An `available` bucket across a two-way partition, then its convergence after healing
(fault_cluster_partition.sh; python3 standard library, tests/integration/s3raw.py's signer).

  cluster_avail.py --endpoints URL,... --side-a 0,1 --faults FILE --rules SPEC --bucket B
                   [--keys 4] [--seconds 6] [--deadline 60]

Creates bucket B with `x-cairn-consistency: available`, writes the partition rules SPEC (the
nd_faults_parse format) into FILE (every node re-reads it within 200 ms), then runs one writer per
(side, key) for --seconds: side A's writers go through the endpoints --side-a lists (in turn),
side B's through the others. Each writer PUTs unique values ("<key>.<side>.<seq>") one after the
other. The rules are then cleared, and every node is asked for every key until all of them answer
the same value for each key, or --deadline seconds pass (hint delivery runs every second,
anti-entropy every 10 s).

Checks (exit 1 when one fails): each side had writes of every key acknowledged (an available
bucket takes writes on both sides of the split, whichever nodes the key's partition lives on); every node answers every key within the deadline with the
same value; that value is one a writer could have left last: the last acknowledged value of one
side, or one of that side's writes of unknown outcome sent after it (every earlier write of a
side was overwritten by its next one, whose coordinator read it first). Prints the counts per
side and the time to convergence.
"""

import argparse
import hashlib
import http.client
import os
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3raw  # noqa: E402


def call(url, method, path, body=b"", headers=None, timeout=3.0):
    """(status, body) or (None, error text)."""
    u = urllib.parse.urlsplit(url)
    hostport = "%s:%d" % (u.hostname, u.port)
    h = dict(headers or {})
    h["Content-Length"] = str(len(body))
    signed = s3raw.sign(method, path, {}, h, hashlib.sha256(body).hexdigest(), host=hostport)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=signed)
        r = conn.getresponse()
        return r.status, r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, ("%s: %s" % (type(e).__name__, e)).encode()
    finally:
        conn.close()


def write_rules(path, spec):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(spec)
    os.replace(tmp, path)


class Writer(threading.Thread):
    def __init__(self, args, side, urls, key, deadline):
        super().__init__()
        self.args, self.side, self.urls, self.key, self.deadline = args, side, urls, key, deadline
        self.ok = 0
        self.other = {}  # status -> count
        self.last_ok = None
        self.after = []  # unknown-outcome values sent after last_ok

    def run(self):
        seq = 0
        while time.monotonic() < self.deadline:
            seq += 1
            value = "%s.%s.%d" % (self.key, self.side, seq)
            url = self.urls[seq % len(self.urls)]
            status, _ = call(url, "PUT", "/%s/%s" % (self.args.bucket, self.key), value.encode())
            if status == 200:
                self.ok += 1
                self.last_ok, self.after = value, []
                continue
            self.other[status] = self.other.get(status, 0) + 1
            if status is None or status >= 500:
                self.after.append(value)  # may have landed
            time.sleep(0.05)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", required=True)
    ap.add_argument("--side-a", required=True, help="indexes of side A's endpoints")
    ap.add_argument("--faults", required=True)
    ap.add_argument("--rules", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--keys", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--deadline", type=float, default=60.0)
    args = ap.parse_args(argv)
    urls = args.endpoints.split(",")
    side_a = [int(x) for x in args.side_a.split(",")]
    sides = {"A": [urls[i] for i in side_a],
             "B": [u for i, u in enumerate(urls) if i not in side_a]}

    status, body = call(urls[0], "PUT", "/" + args.bucket,
                        headers={"x-cairn-consistency": "available"})
    if status != 200:
        print("cluster_avail: create bucket: %s %s" % (status, body[:200]))
        return 1
    time.sleep(1)  # every node's bucket watch learns the mode
    write_rules(args.faults, args.rules)
    time.sleep(0.6)  # every node re-reads the file within 200 ms
    keys = ["av-k%d" % i for i in range(args.keys)]
    deadline = time.monotonic() + args.seconds
    writers = [Writer(args, side, sides[side], k, deadline) for side in sides for k in keys]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    write_rules(args.faults, "")
    healed = time.monotonic()
    bad = []
    for side in sides:
        ws = [w for w in writers if w.side == side]
        other = {}
        for w in ws:
            for s, n in w.other.items():
                other[s] = other.get(s, 0) + n
        print("cluster_avail: side %s (%d endpoints): %d writes acknowledged, others %s"
              % (side, len(sides[side]), sum(w.ok for w in ws), other or "none"))
        for w in ws:
            if w.ok == 0:
                bad.append("side %s: no write of %s acknowledged (%s)" % (side, w.key, w.other))

    # Convergence: every node answers the same value for each key.
    answers = {}
    while True:
        answers = {k: [call(u, "GET", "/%s/%s" % (args.bucket, k)) for u in urls] for k in keys}
        same = all(a[0][0] == 200 and all(x == a[0] for x in a) for a in answers.values())
        took = time.monotonic() - healed
        if same or took > args.deadline:
            break
        time.sleep(0.5)
    if not same:
        for k, a in answers.items():
            bad.append("%s not converged after %.0f s: %s" % (k, took, [
                (s, b[:40]) for s, b in a]))
    else:
        print("cluster_avail: all %d nodes answer the same value for each of %d keys %.1f s "
              "after healing" % (len(urls), len(keys), took))
        for k in keys:
            got = answers[k][0][1].decode()
            allowed = set()
            for w in writers:
                if w.key == k:
                    allowed.update(([w.last_ok] if w.last_ok else []) + w.after)
            if got not in allowed:
                bad.append("%s converged to %s, not a last write of a side (%s)"
                           % (k, got, sorted(allowed)))
    for b in bad:
        print("FAILURE: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
