#!/usr/bin/env python3
"""Records a concurrent single-key S3 history for lincheck.py (python3 standard library only).

C client threads run for T seconds against one or more S3 endpoints, each on a random key of K
(all in one bucket), with a random mix of put, get, delete, create (PUT If-None-Match: *) and
cas (PUT If-Match: the ETag of the value the client last saw on that key). Every written value is
unique ("<run>.c<client>.<seq>", also the object's body), so a read names the write it saw and
the ETag a cas sends names the value it expects (a single-part PUT's ETag is the MD5 of its body).
Keys start absent: their names carry a random run id.

Each request is signed with tests/integration/s3raw.py's SigV4 signer and sent on a keep-alive
http.client connection per (client, endpoint) with a per-request socket timeout. Outcome:
2xx ok; 404 on get absent, on cas not-found; 412 precondition-failed; any other 4xx failed (no
effect); 5xx, a timeout or a broken connection unknown (the op may or may not have taken effect;
the connection is replaced). Times are time.monotonic_ns() taken before the request is sent and
after the response is read, so each recorded interval contains the real one even when a thread
waits for the interpreter lock; CLOCK_MONOTONIC is one clock for every process of the machine, so
histories of several s3hist processes on one machine can be concatenated.

Endpoints: --endpoints URL,URL,... (default $CAIRN_ENDPOINT). Each client uses all of them, or
the set --client-endpoints gives it ("0,1;2;3,4,5": client 0 uses endpoints 0 and 1, client 1
endpoint 2, client 2 endpoints 3-5, client 3 again 0 and 1, ...), picking per request in turn
(--pick rr, starting at the client's number) or at random (--pick random). --mix changes the op
weights (e.g. "get=4,put=2,delete=1": no conditional writes); --client-base numbers the clients
from N, so that the histories of several runs can be concatenated; --think MS makes each client
wait between its ops (fewer ops, so a long run under faults stays within lincheck's budget). The endpoint index is
recorded with each op, so a partition test can tell which side of a split answered.

Output: the history as JSON lines (format in lincheck.py) to --out, and a summary line on
stdout: ops, rate, and ok/failed/unknown counts per op kind. Credentials come from
CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY. Exit status 0, or 2 on bad arguments or when the bucket
cannot be created.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
import lincheck  # noqa: E402
import s3raw  # noqa: E402

MIX = {"get": 4, "put": 2, "delete": 1, "create": 2, "cas": 2}


class Endpoint:
    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "http" or not u.hostname:
            raise ValueError("endpoint %r: want http://host:port" % url)
        self.host, self.port = u.hostname, u.port or 80
        self.hostport = "%s:%d" % (self.host, self.port)


class Client(threading.Thread):
    def __init__(self, n, args, eps, mine, keys, deadline):
        super().__init__(name="client-%d" % n)
        self.n, self.args, self.eps, self.mine, self.keys = n, args, eps, mine, keys
        self.deadline = deadline
        self.rng = random.Random(args.seed * 1000003 + n)
        self.conns = {}
        self.seen = {}  # key -> last value this client read or wrote there
        self.seq = 0
        self.turn = n
        self.records = []

    def endpoint(self):
        if self.args.pick == "random":
            return self.rng.choice(self.mine)
        self.turn += 1
        return self.mine[self.turn % len(self.mine)]

    def send(self, ei, method, path, headers, body):
        """(status, body) or raises OSError / http.client.HTTPException."""
        ep = self.eps[ei]
        conn = self.conns.get(ei)
        if conn is None:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=self.args.timeout)
            self.conns[ei] = conn
        h = dict(headers)
        h["Content-Length"] = str(len(body))
        signed = s3raw.sign(method, path, {}, h, hashlib.sha256(body).hexdigest(),
                            host=ep.hostport)
        try:
            conn.request(method, urllib.parse.quote(path, safe="/-_.~"), body=body,
                         headers=signed)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            del self.conns[ei]
            raise
        return resp.status, data

    def one(self):
        key = self.rng.choice(self.keys)
        mix = self.args.mix
        kind = self.rng.choices(list(mix), weights=list(mix.values()))[0]
        expect = self.seen.get(key)
        if kind == "cas" and expect is None:
            kind = "create" if "create" in mix else "put"
        args, headers, body, method = {}, {}, b"", "PUT"
        if kind in lincheck.WRITES:
            self.seq += 1
            value = "%s.c%d.%d" % (self.args.run, self.n, self.seq)
            args["value"] = value
            body = value.encode()
        if kind == "create":
            headers["If-None-Match"] = "*"
        elif kind == "cas":
            args["expect"] = expect
            headers["If-Match"] = '"%s"' % hashlib.md5(expect.encode()).hexdigest()
        elif kind == "get":
            method = "GET"
        elif kind == "delete":
            method = "DELETE"
        ei = self.endpoint()
        rec = {"client": self.args.client_base + self.n, "key": key, "op": kind, "args": args, "endpoint": ei}
        rec["invoke"] = time.monotonic_ns()
        try:
            status, data = self.send(ei, method, "/%s/%s" % (self.args.bucket, key), headers,
                                     body)
        except (OSError, http.client.HTTPException) as e:
            rec.update({"return": None, "result": lincheck.UNKNOWN, "status": None,
                        "error": "%s: %s" % (type(e).__name__, e)})
            self.records.append(rec)
            return
        rec["return"] = time.monotonic_ns()
        rec["status"] = status
        rec["result"] = outcome(kind, status)
        if rec["result"] == lincheck.UNKNOWN:
            rec["return"] = None
        if kind == "get" and rec["result"] == lincheck.OK:
            rec["read"] = data.decode("utf-8", "replace")
            self.seen[key] = rec["read"]
        elif kind in lincheck.WRITES and rec["result"] == lincheck.OK:
            self.seen[key] = args["value"]
        elif rec["result"] in (lincheck.ABSENT_R, lincheck.NF) or (
                kind == "delete" and rec["result"] == lincheck.OK):
            self.seen.pop(key, None)
        self.records.append(rec)

    def run(self):
        try:
            while time.monotonic() < self.deadline:
                self.one()
                if self.args.think:
                    time.sleep(self.args.think / 1000)
        finally:
            for c in self.conns.values():
                c.close()


def outcome(kind, status):
    if 200 <= status < 300:
        return lincheck.OK
    if status >= 500:
        return lincheck.UNKNOWN
    if status == 404 and kind == "get":
        return lincheck.ABSENT_R
    if status == 404 and kind == "cas":
        return lincheck.NF
    if status == 412 and kind in ("create", "cas"):
        return lincheck.PF
    return lincheck.FAILED


def parse_mix(spec):
    """--mix "get=4,put=2" as {kind: weight}; "" is the default MIX."""
    if not spec:
        return dict(MIX)
    mix = {}
    for part in spec.split(","):
        kind, _, w = part.partition("=")
        if kind not in MIX or not w.isdigit() or int(w) < 1:
            raise ValueError("--mix %r: KIND=WEIGHT,... with KIND one of %s" % (spec,
                                                                                ", ".join(MIX)))
        mix[kind] = int(w)
    return mix


def client_sets(spec, neps):
    """--client-endpoints as a list of endpoint index lists."""
    if not spec:
        return [list(range(neps))]
    sets = []
    for part in spec.split(";"):
        idx = [int(x) for x in part.split(",") if x.strip()]
        if not idx or any(i < 0 or i >= neps for i in idx):
            raise ValueError("--client-endpoints %r: indexes 0..%d" % (spec, neps - 1))
        sets.append(idx)
    return sets


def make_bucket(ep, bucket):
    h = {"Content-Length": "0"}
    signed = s3raw.sign("PUT", "/" + bucket, {}, h, s3raw.EMPTY_SHA256, host=ep.hostport)
    conn = http.client.HTTPConnection(ep.host, ep.port, timeout=30)
    try:
        conn.request("PUT", "/" + bucket, body=b"", headers=signed)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200 and b"BucketAlreadyOwnedByYou" not in body:
        raise OSError("create bucket %s: HTTP %d %s" % (bucket, resp.status, body[:200]))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--endpoints", default=os.environ.get("CAIRN_ENDPOINT", ""),
                    help="comma-separated http://host:port list")
    ap.add_argument("--client-endpoints", default="", help="per-client endpoint sets, e.g. "
                    "'0,1;2;3,4,5' (client i uses set i mod the number of sets)")
    ap.add_argument("--pick", choices=("rr", "random"), default="rr")
    ap.add_argument("--bucket", required=True)
    ap.add_argument("--create-bucket", action="store_true")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--prefix", default="", help="key name prefix (default lin-<run id>)")
    ap.add_argument("--timeout", type=float, default=2.0, help="per-request socket timeout (s)")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--mix", default="", help="op weights, e.g. 'get=4,put=2,delete=1' "
                    "(default get=4,put=2,delete=1,create=2,cas=2)")
    ap.add_argument("--think", type=float, default=0,
                    help="ms each client waits between its ops (a smaller history)")
    ap.add_argument("--client-base", type=int, default=0,
                    help="number of the first client in the history (to concatenate histories)")
    ap.add_argument("--out", required=True, help="history file (JSON lines)")
    args = ap.parse_args(argv)
    try:
        eps = [Endpoint(u) for u in args.endpoints.split(",") if u]
        if not eps:
            raise ValueError("no endpoint (--endpoints or CAIRN_ENDPOINT)")
        sets = client_sets(args.client_endpoints, len(eps))
        args.mix = parse_mix(args.mix)
        if args.clients < 1 or args.keys < 1 or args.seconds <= 0:
            raise ValueError("--clients, --keys and --seconds must be positive")
    except ValueError as e:
        print("s3hist: %s" % e, file=sys.stderr)
        return 2
    args.run = "%08x" % random.Random(args.seed).getrandbits(32)
    prefix = args.prefix or "lin-" + args.run
    keys = ["%s-k%d" % (prefix, i) for i in range(args.keys)]
    print("s3hist: seed %d, run %s, keys %s-k0..%d" % (args.seed, args.run, prefix,
                                                       args.keys - 1))
    if args.create_bucket:
        try:
            make_bucket(eps[0], args.bucket)
        except (OSError, http.client.HTTPException) as e:
            print("s3hist: %s" % e, file=sys.stderr)
            return 2
    start = time.monotonic()
    clients = [Client(i, args, eps, sets[i % len(sets)], keys, start + args.seconds)
               for i in range(args.clients)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    took = time.monotonic() - start
    recs = sorted((r for c in clients for r in c.records), key=lambda r: r["invoke"])
    with open(args.out, "w", encoding="utf-8") as f:
        for r in recs:
            f.write(json.dumps(r, sort_keys=True) + "\n")
    print("s3hist: %d ops in %.1f s (%.0f/s), %d clients, %d keys, %d endpoints: %s"
          % (len(recs), took, len(recs) / took, args.clients, args.keys, len(eps),
             lincheck.summarize(recs)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
