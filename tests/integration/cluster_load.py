#!/usr/bin/env python3
"""Mixed PUT/GET load through every node of a cluster, and the read-back of what it acknowledged
(fault_cluster_kill.sh; python3 standard library, tests/integration/s3raw.py's signer).

  cluster_load.py load --endpoints URL,... --bucket B --stop FILE --down FILE --ledger FILE
                       --ops FILE [--threads N] [--seed S]
  cluster_load.py verify --endpoints URL,... --bucket B --ledger FILE [--skip IDX,...] [--per-object N]

load: creates the bucket through the first endpoint (--create-bucket), then runs N threads until
FILE --stop exists. Each op goes to the next endpoint (round robin per thread) that the --down
file does not list. 40 % are PUTs of a new key (1 KiB to 3 MiB, the body drawn from a seed kept
with the key), 60 % GETs of a key acknowledged before (any thread's). A PUT is acknowledged only
on 200 whose ETag is the body's MD5; it then goes to the ledger (key, size, md5, seed). A GET
must answer 200 with exactly the acknowledged bytes. Allowed besides: 503 to a PUT (refused
while a partition has no quorum, or a body has too few live columns; counted; a GET of an
acknowledged object must succeed), and a transport error (refused, reset, timeout) from an
endpoint that the --down file lists within 3 s of the error (the test kills a node, then
appends its index). With --exposed N, up to N acknowledged objects may answer a GET with 503
(each listed as EXPOSED): a body acknowledged with a column dropped (the writer's k+1 rule, a
node too slow under load) has fewer cells to lose than an AZ holds until repair heals it; the
test then reads every one of them back once the AZ is back. Everything else is a failure,
printed. The --down file is the load
balancer's health check: a killed node's endpoint gets no new requests once listed.

Every op goes to --ops as a JSON line {"t0", "t1" (time.time()), "ep", "op", "status", "err"}
so the test can measure the time to the first successful op after each kill. Exit 0 when no
failure, 1 otherwise; a summary line on stdout.

verify: every ledger entry read back through every endpoint (but --skip), byte-exact: prints
the count per endpoint; exit 1 on any missing or different object (with --exposed N, up to N
objects answering 503 are listed as EXPOSED and tolerated; never a wrong byte). With
--per-object N each entry is read through N of those endpoints, the i-th entry through the
endpoints from i (mod their count) on, so every endpoint reads an equal share and every entry is
read through N different ones.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3raw  # noqa: E402

SIZES = [(1024, 40), (64 * 1024, 35), (512 * 1024, 20), (3 * 1024 * 1024, 5)]
TIMEOUT = 15.0  # per request: longer than the coordinator's 5 s quorum timeout


def body_of(seed, size):
    return random.Random(seed).randbytes(size)


class Conn:
    """One keep-alive connection per endpoint; reopened after any error."""

    def __init__(self, urls):
        self.eps = []
        for u in urls:
            p = urllib.parse.urlsplit(u)
            self.eps.append((p.hostname, p.port or 80))
        self.conns = {}

    def call(self, ei, method, path, body=b""):
        host, port = self.eps[ei]
        c = self.conns.get(ei)
        if c is None:
            c = http.client.HTTPConnection(host, port, timeout=TIMEOUT)
            self.conns[ei] = c
        h = {"Content-Length": str(len(body))}
        signed = s3raw.sign(method, path, {}, h, hashlib.sha256(body).hexdigest(),
                            host="%s:%d" % (host, port))
        try:
            c.request(method, path, body=body, headers=signed)
            r = c.getresponse()
            data = r.read()
        except BaseException:
            c.close()
            del self.conns[ei]
            raise
        return r.status, r.getheader("ETag", ""), data

    def drop(self, ei):
        c = self.conns.pop(ei, None)
        if c is not None:
            c.close()

    def close(self):
        for c in self.conns.values():
            c.close()


def read_down(path):
    try:
        with open(path) as f:
            return {int(x) for x in f.read().split()}
    except OSError:
        return set()


class Load:
    def __init__(self, args):
        self.args = args
        self.urls = args.endpoints.split(",")
        self.mu = threading.Lock()
        self.acked = []  # (key, size, md5, seed)
        self.ledger = open(args.ledger, "w")
        self.opslog = open(args.ops, "w")
        self.failures = []
        self.counts = {}
        self.exposed = set()  # acknowledged keys a GET found unreadable (503)

    def note(self, rec):
        with self.mu:
            self.opslog.write(json.dumps(rec) + "\n")
            k = (rec["op"], rec["status"] if rec["status"] else "transport")
            self.counts[k] = self.counts.get(k, 0) + 1

    def fail(self, msg):
        with self.mu:
            self.failures.append(msg)
        print("FAILURE: " + msg, flush=True)

    def excused(self, ei):
        """A transport error from endpoint ei: the test lists it as down within 3 s."""
        end = time.monotonic() + 3
        while time.monotonic() < end:
            if ei in read_down(self.args.down):
                return True
            time.sleep(0.05)
        return False

    def worker(self, n):
        rng = random.Random(self.args.seed * 7919 + n)
        conn = Conn(self.urls)
        turn, seq = n, 0
        try:
            while not os.path.exists(self.args.stop):
                down = read_down(self.args.down)
                for ei in down:
                    conn.drop(ei)  # a restarted node is a new connection
                live = [i for i in range(len(self.urls)) if i not in down]
                turn += 1
                ei = live[turn % len(live)]
                with self.mu:
                    pick = rng.choice(self.acked) if self.acked else None
                if pick is None or rng.random() < 0.4:
                    seq += 1
                    size = rng.choices([s for s, _ in SIZES], weights=[w for _, w in SIZES])[0]
                    size += rng.randrange(1024)
                    seed = rng.getrandbits(48)
                    key = "obj-t%d-%d" % (n, seq)
                    self.put(conn, ei, key, size, seed)
                else:
                    self.get(conn, ei, pick)
        finally:
            conn.close()

    def op(self, conn, ei, method, key, body=b""):
        """(status or None, etag, data, error string); logs the op."""
        t0 = time.time()
        try:
            status, etag, data = conn.call(ei, method, "/%s/%s" % (self.args.bucket, key), body)
            err = ""
        except (OSError, http.client.HTTPException) as e:
            status, etag, data, err = None, "", b"", "%s: %s" % (type(e).__name__, e)
        self.note({"t0": t0, "t1": time.time(), "ep": ei, "op": method, "status": status,
                   "err": err, "key": key})
        return status, etag, data, err

    def allowed(self, ei, what, status, err):
        """A non-200 answer that the test tolerates (503 to a PUT, or a transport error from a
        node that the test killed); else a failure."""
        if status == 503 and what.startswith("PUT"):
            return True
        if status is None and self.excused(ei):
            return True
        self.fail("%s via endpoint %d: %s" % (what, ei, err or "HTTP %s" % status))
        return False

    def put(self, conn, ei, key, size, seed):
        body = body_of(seed, size)
        md5 = hashlib.md5(body).hexdigest()
        status, etag, _, err = self.op(conn, ei, "PUT", key, body)
        if status == 200:
            if etag.strip('"') != md5:
                self.fail("PUT %s via %d: ETag %s, body MD5 %s" % (key, ei, etag, md5))
                return
            with self.mu:
                self.acked.append((key, size, md5, seed))
                self.ledger.write(json.dumps({"key": key, "size": size, "md5": md5,
                                              "seed": seed}) + "\n")
                self.ledger.flush()
            return
        self.allowed(ei, "PUT %s" % key, status, err)

    def get(self, conn, ei, entry):
        key, size, md5, _ = entry
        status, _, data, err = self.op(conn, ei, "GET", key)
        if status == 200:
            if len(data) != size or hashlib.md5(data).hexdigest() != md5:
                self.fail("GET %s via %d: %d bytes, MD5 %s; acknowledged %d bytes, MD5 %s"
                          % (key, ei, len(data), hashlib.md5(data).hexdigest(), size, md5))
            return
        if status == 503:
            with self.mu:
                tolerated = key in self.exposed or len(self.exposed) < self.args.exposed
                if tolerated and key not in self.exposed:
                    self.exposed.add(key)
                    print("EXPOSED: GET %s via endpoint %d: 503" % (key, ei), flush=True)
            if tolerated:
                return
        self.allowed(ei, "GET %s (acknowledged)" % key, status, err)

    def run(self):
        if self.args.create_bucket:
            c = Conn(self.urls)
            try:
                status, _, data = c.call(0, "PUT", "/" + self.args.bucket)
            finally:
                c.close()
            if status != 200:
                print("cluster_load: create bucket: HTTP %d %s" % (status, data[:200]))
                return 1
        threads = [threading.Thread(target=self.worker, args=(i,))
                   for i in range(self.args.threads)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - t0
        self.ledger.close()
        self.opslog.close()
        total = sum(self.counts.values())
        parts = ", ".join("%s %s: %d" % (k[0], k[1], v) for k, v in sorted(
            self.counts.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))))
        print("cluster_load: %d ops in %.1f s (%.0f/s), %d acknowledged PUTs; %s; %d exposed; "
              "%d failures" % (total, took, total / took, len(self.acked), parts,
                               len(self.exposed), len(self.failures)))
        return 1 if self.failures else 0


def verify(args):
    urls = args.endpoints.split(",")
    skip = {int(x) for x in args.skip.split(",") if x}
    with open(args.ledger) as f:
        entries = [json.loads(line) for line in f]
    bad = []
    exposed = set()
    live = [i for i in range(len(urls)) if i not in skip]
    per = args.per_object if 0 < args.per_object <= len(live) else len(live)
    mine = {ei: [] for ei in live}  # endpoint -> the entries it reads
    for j, e in enumerate(entries):
        for r in range(per):
            mine[live[(j + r) % len(live)]].append(e)
    good = {i: 0 for i in live}
    mu = threading.Lock()

    def check(ei):
        conn = Conn(urls)
        try:
            for e in mine[ei]:
                try:
                    status, _, data, = conn.call(ei, "GET", "/%s/%s" % (args.bucket, e["key"]))
                except (OSError, http.client.HTTPException) as ex:
                    status, data = "%s: %s" % (type(ex).__name__, ex), b""
                ok = (status == 200 and len(data) == e["size"]
                      and hashlib.md5(data).hexdigest() == e["md5"]
                      and data == body_of(e["seed"], e["size"]))
                with mu:
                    if ok:
                        good[ei] += 1
                    elif status == 503 and (e["key"] in exposed or len(exposed) < args.exposed):
                        exposed.add(e["key"])
                        good[ei] += 1  # counted apart below
                    else:
                        bad.append("%s via endpoint %d: status %s, %d bytes (want %d)"
                                   % (e["key"], ei, status, len(data), e["size"]))
        finally:
            conn.close()

    threads = [threading.Thread(target=check, args=(i,)) for i in good]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for b in bad[:20]:
        print("MISMATCH: " + b)
    for k in sorted(exposed):
        print("EXPOSED: " + k)
    print("cluster_load verify: %d acknowledged objects, each through %d endpoints; byte-exact (or"
          " exposed) per endpoint: %s; %d exposed; %d bad"
          % (len(entries), per, " ".join("%d:%d/%d" % (ei, good[ei], len(mine[ei])) for ei in live),
             len(exposed), len(bad)))
    return 1 if bad or any(good[ei] != len(mine[ei]) for ei in live) else 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=("load", "verify"))
    ap.add_argument("--endpoints", required=True)
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stop", default="")
    ap.add_argument("--down", default="")
    ap.add_argument("--ledger", required=True)
    ap.add_argument("--ops", default=os.devnull)
    ap.add_argument("--skip", default="")
    ap.add_argument("--exposed", type=int, default=0)
    ap.add_argument("--per-object", type=int, default=0)
    ap.add_argument("--create-bucket", action="store_true")
    args = ap.parse_args(argv)
    if args.mode == "verify":
        return verify(args)
    if not args.stop or not args.down:
        ap.error("load needs --stop and --down")
    return Load(args).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
