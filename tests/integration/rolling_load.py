#!/usr/bin/env python3
"""Client load through every node with boto3's own retries, for test_cluster_rolling.sh.

  rolling_load.py load --endpoints URL,... --bucket B --stop FILE --out FILE [--threads 6]
  rolling_load.py verify --endpoints URL,... --bucket B --out FILE
  rolling_load.py drain --endpoints URL,... --bucket B --node I --name ID --pid PID --cairn BIN

load: creates bucket B, then runs --threads workers until FILE exists (--started: a file made once
they run). They share one boto3 client per endpoint (retries={'max_attempts': 10, 'mode':
'standard'}) and each takes them in turn,
so every node gets every kind of request: PUT of a new key (1 KiB to 256 KiB), GET (the bytes
compared with what was acknowledged), HEAD (the length compared), LIST of the worker's prefix,
DELETE of one of its keys and, every 20th step, a multipart upload of two parts (5 MiB + 1 KiB)
through one node. A request counts as failed when the SDK gives up (its retries spent) or when a
GET, HEAD or LIST answers something other than what the worker was acknowledged before. Writes
out FILE (JSON): the counts per operation, the failures (at most 20 texts) and the acknowledged
state (key -> sha256 and size; deleted keys). With --window (a file "START END" in epoch seconds,
read at the end) it also counts the requests begun within it and fails below --min-during.
Exits 1 on any failure.

drain: PUTs an 8 MiB object through node --node, starts a GET of it on a socket that reads
nothing after the response head, sends the node (--pid) SIGTERM, and checks that while that GET
is still in flight the node has left the member list another node reads (within 5 s), and new
connections to it are refused; then the GET must complete byte-exact. Exits 1 otherwise.

verify: reads FILE back and checks, through every endpoint in turn, that each acknowledged key
answers its bytes exactly and each acknowledged delete answers 404. Exits 1 on any mismatch.
"""

import argparse
import hashlib
import json
import os
import random
import sys
import threading
import time

import boto3
import botocore.config
import botocore.exceptions

MP_PART = 5 * 1024 * 1024


RETRIED = {}  # why an attempt failed (exception class or HTTP status) -> count, for the report
RETRIED_LOCK = threading.Lock()


def on_attempt(response=None, caught_exception=None, **kwargs):
    """needs-retry hook: count each attempt that failed, whether the SDK then retries or not."""
    if caught_exception is not None:
        why = type(caught_exception).__name__
    elif response is not None and response[0].status_code >= 500:
        why = "HTTP %d" % response[0].status_code
    else:
        return None
    with RETRIED_LOCK:
        RETRIED[why] = RETRIED.get(why, 0) + 1
    return None


def clients(endpoints, session=None):
    """One client per endpoint, from one session (making a session loads the service models:
    slow). boto3's clients are thread-safe: the workers share them."""
    session = session or boto3.session.Session()
    cfg = botocore.config.Config(
        retries={"max_attempts": 10, "mode": "standard"},
        connect_timeout=3,
        read_timeout=20,
        s3={"addressing_style": "path"},
    )
    out = []
    for e in endpoints:
        c = session.client(
            "s3",
            endpoint_url=e,
            region_name="us-east-1",
            aws_access_key_id=os.environ["CAIRN_ACCESS_KEY"],
            aws_secret_access_key=os.environ["CAIRN_SECRET_KEY"],
            config=cfg,
        )
        c.meta.events.register("needs-retry.s3", on_attempt)
        out.append(c)
    return out


class Worker(threading.Thread):
    def __init__(self, idx, args, cs, counts, fails, lock):
        super().__init__(daemon=True)
        self.idx, self.args, self.counts, self.fails, self.lock = idx, args, counts, fails, lock
        self.cs = cs
        self.starts = []  # when each request began
        self.turn = idx
        self.rng = random.Random(idx * 7919 + 1)
        self.live = {}  # key -> (sha256, size): acknowledged and not deleted
        self.gone = set()  # acknowledged deletes
        self.seq = 0
        self.began = self.ended = 0.0

    def client(self):
        self.turn += 1
        return self.cs[self.turn % len(self.cs)]

    def count(self, op, err=None):
        """One request ended (err: why it failed); it began at self.began."""
        self.starts.append(self.began)
        with self.lock:
            self.counts[op] = self.counts.get(op, 0) + 1
            if err is not None:
                self.counts["failed"] = self.counts.get("failed", 0) + 1
                if len(self.fails) < 20:
                    self.fails.append("%s worker %d %.3f: %s" % (op, self.idx, time.time(), err))

    def call(self, op, fn):
        """fn() under the count: its result, or None when it failed (recorded)."""
        self.began = time.time()
        try:
            r = fn()
            self.count(op)
            return r
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            self.count(op, "%s: %s" % (type(e).__name__, e))
            return None

    def put(self):
        self.seq += 1
        key = "w%d/k%05d" % (self.idx, self.seq)
        body = os.urandom(self.rng.choice((1024, 7000, 65536, 262144)))
        if self.call("PUT", lambda: self.client().put_object(Bucket=self.args.bucket, Key=key,
                                                             Body=body)) is not None:
            self.live[key] = (hashlib.sha256(body).hexdigest(), len(body))

    def get(self, key):
        sha, size = self.live[key]

        def fn():
            r = self.client().get_object(Bucket=self.args.bucket, Key=key)
            got = r["Body"].read()
            if hashlib.sha256(got).hexdigest() != sha:
                raise ValueError("GET %s: %d bytes, not the %d acknowledged" % (key, len(got), size))
            return got

        self.checked("GET", fn)

    def checked(self, op, fn):
        """Like call, but a wrong answer (ValueError) or a cut body is a failure too."""
        self.began = time.time()
        try:
            fn()
            self.count(op)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError,
                ValueError) as e:
            self.count(op, "%s: %s" % (type(e).__name__, e))

    def head(self, key):
        size = self.live[key][1]

        def fn():
            r = self.client().head_object(Bucket=self.args.bucket, Key=key)
            if r["ContentLength"] != size:
                raise ValueError("HEAD %s: length %d, not %d" % (key, r["ContentLength"], size))

        self.checked("HEAD", fn)

    def list(self):
        want = set(self.live)

        def fn():
            got = set()
            pages = self.client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.args.bucket, Prefix="w%d/" % self.idx):
                got.update(o["Key"] for o in page.get("Contents", []))
            if got != want:
                raise ValueError("LIST w%d/: %d missing, %d extra" % (self.idx, len(want - got),
                                                                      len(got - want)))

        self.checked("LIST", fn)

    def delete(self, key):
        if self.call("DELETE", lambda: self.client().delete_object(Bucket=self.args.bucket,
                                                                   Key=key)) is not None:
            del self.live[key]
            self.gone.add(key)

    def multipart(self):
        self.seq += 1
        key = "w%d/mp%05d" % (self.idx, self.seq)
        c = self.client()  # one node for the whole upload, as a client usually does
        parts = [os.urandom(MP_PART), os.urandom(1024)]
        b = self.args.bucket
        up = self.call("MPU-CREATE", lambda: c.create_multipart_upload(Bucket=b, Key=key))
        if up is None:
            return
        uid, done = up["UploadId"], []
        for i, p in enumerate(parts, 1):
            r = self.call("MPU-PART", lambda: c.upload_part(Bucket=b, Key=key, UploadId=uid,
                                                           PartNumber=i, Body=p))
            if r is None:
                return
            done.append({"PartNumber": i, "ETag": r["ETag"]})
        if self.call("MPU-COMPLETE", lambda: c.complete_multipart_upload(
                Bucket=b, Key=key, UploadId=uid, MultipartUpload={"Parts": done})) is not None:
            whole = b"".join(parts)
            self.live[key] = (hashlib.sha256(whole).hexdigest(), len(whole))

    def run(self):
        """The steps until the stop file; anything unforeseen ends the worker as a failure."""
        try:
            self.steps()
        except Exception as e:  # noqa: BLE001 - a worker that dies must fail the run, not vanish
            self.count("CRASH", "%s: %s" % (type(e).__name__, e))
        self.ended = time.time()

    def steps(self):
        step = 0
        while not os.path.exists(self.args.stop):
            step += 1
            keys = sorted(self.live)
            r = self.rng.random()
            if step % 20 == 0:
                self.multipart()
            elif not keys or r < 0.35:
                self.put()
            elif r < 0.65:
                self.get(self.rng.choice(keys))
            elif r < 0.80:
                self.head(self.rng.choice(keys))
            elif r < 0.90:
                self.list()
            else:
                self.delete(self.rng.choice(keys))


def load(args):
    cs = clients(args.endpoints.split(","))
    cs[0].create_bucket(Bucket=args.bucket)
    counts, fails, lock = {}, [], threading.Lock()
    ws = [Worker(i, args, cs, counts, fails, lock) for i in range(args.threads)]
    t0 = time.time()
    for w in ws:
        w.start()
    if args.started:
        open(args.started, "w").close()
    for w in ws:
        w.join()
    stopped = min(w.ended for w in ws)
    live, gone = {}, []
    for w in ws:
        live.update(w.live)
        gone.extend(sorted(w.gone))
    total = sum(v for k, v in counts.items() if k != "failed")
    during = 0
    if args.window:  # "START END" (epoch seconds) of the rolling restart, written by the test
        lo, hi = (float(x) for x in open(args.window).read().split())
        during = sum(lo <= t < hi for w in ws for t in w.starts)
        print("requests begun during the rolling restart (%.1f s): %d" % (hi - lo, during))
    with open(args.out, "w") as f:
        json.dump({"counts": counts, "fails": fails, "live": live, "gone": gone}, f)
    print("requests %d in %.1f s (first worker ended after %.1f s), failed %d: %s" % (
        total, time.time() - t0, stopped - t0, counts.get("failed", 0),
        ", ".join("%s %d" % (k, v) for k, v in sorted(counts.items()) if k != "failed")))
    print("failed attempts (retried by the SDK while it had attempts left): %s" % (
        ", ".join("%s %d" % kv for kv in sorted(RETRIED.items())) or "none"))
    for line in fails:
        print("FAILED " + line)
    if args.window and during < args.min_during:
        print("FAILED: fewer than %d requests during the rolling restart" % args.min_during)
        return 1
    return 1 if counts.get("failed", 0) else 0


def verify(args):
    cs = clients(args.endpoints.split(","))
    st = json.load(open(args.out))
    bad, n = [], 0
    for key, (sha, size) in sorted(st["live"].items()):
        n += 1
        try:
            got = cs[n % len(cs)].get_object(Bucket=args.bucket, Key=key)["Body"].read()
            if hashlib.sha256(got).hexdigest() != sha:
                bad.append("%s: %d bytes, not the %d acknowledged" % (key, len(got), size))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            bad.append("%s: %s" % (key, e))
    for key in st["gone"]:
        n += 1
        try:
            cs[n % len(cs)].head_object(Bucket=args.bucket, Key=key)
            bad.append("%s: deleted, still there" % key)
        except botocore.exceptions.ClientError as e:
            if e.response["Error"]["Code"] not in ("404", "NoSuchKey"):
                bad.append("%s: %s" % (key, e))
    print("verified %d objects byte-exact and %d deletes, %d wrong" % (
        len(st["live"]), len(st["gone"]), len(bad)))
    for line in bad[:20]:
        print("WRONG " + line)
    return 1 if bad else 0


def live_members(cairn, endpoint):
    """The live members a node lists in its status (cairn admin status), or None."""
    import subprocess
    out = subprocess.run([cairn, "admin", "status", "--endpoint", endpoint], capture_output=True,
                         text=True, timeout=10).stdout
    for line in out.splitlines():
        if line.startswith("live members:"):
            return line.split()[2:]
    return None


def drain(args):
    """A GET in flight at SIGTERM: the node leaves its peers' member list while the GET drains."""
    import signal
    import socket
    import urllib.parse
    eps = args.endpoints.split(",")
    c = clients([eps[args.node]])[0]
    body = os.urandom(8 << 20)
    c.create_bucket(Bucket=args.bucket)
    c.put_object(Bucket=args.bucket, Key="big", Body=body)
    u = urllib.parse.urlsplit(c.generate_presigned_url(
        "get_object", Params={"Bucket": args.bucket, "Key": "big"}, ExpiresIn=300))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # the server's sends stall at once
    s.settimeout(30)  # a server that stops answering fails the check, never hangs it
    s.connect((u.hostname, u.port))
    s.sendall(("GET %s?%s HTTP/1.1\r\nHost: %s\r\n\r\n" % (u.path, u.query, u.netloc)).encode())
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            print("drain: the connection closed before the response head")
            return 1
        got += chunk
    head, rest = got.split(b"\r\n\r\n", 1)
    os.kill(args.pid, signal.SIGTERM)
    t0 = time.time()
    other = eps[(args.node + 1) % len(eps)]
    left = None
    while time.time() - t0 < 5:
        m = live_members(args.cairn, other)
        if m is not None and args.name not in m:
            left = time.time() - t0
            break
        time.sleep(0.05)
    refused = False
    try:
        socket.create_connection((u.hostname, u.port), timeout=2).close()
    except ConnectionRefusedError:
        refused = True
    draining = os.path.exists("/proc/%d" % args.pid)
    while len(rest) < len(body):
        chunk = s.recv(1 << 16)
        if not chunk:
            break
        rest += chunk
    s.close()
    ok = left is not None and refused and rest == body and b" 200 " in head.split(b"\r\n")[0]
    print("drain: %s left the member list %s after SIGTERM (process %s), new connections %s, "
          "the GET in flight got %d of %d bytes%s" % (
              args.name, "%.0f ms" % (left * 1000) if left is not None else "NOT within 5 s",
              "still draining" if draining else "gone", "refused" if refused else "ACCEPTED",
              len(rest), len(body), ", byte-exact" if rest == body else ", WRONG"))
    return 0 if ok and draining else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=("load", "verify", "drain"))
    p.add_argument("--endpoints", required=True)
    p.add_argument("--bucket", required=True)
    p.add_argument("--out")
    p.add_argument("--node", type=int, help="drain: the index of the node to stop in --endpoints")
    p.add_argument("--name", help="drain: its node id")
    p.add_argument("--pid", type=int, help="drain: its pid")
    p.add_argument("--cairn", help="drain: the cairn binary (cairn admin status)")
    p.add_argument("--stop")
    p.add_argument("--threads", type=int, default=6)
    p.add_argument("--started", help="load: a file made once the workers run")
    p.add_argument("--window", help="load: a file with the restart's start and end (epoch s)")
    p.add_argument("--min-during", type=int, default=100,
                   help="load: requests that must begin within --window")
    args = p.parse_args()
    sys.exit({"load": load, "verify": verify, "drain": drain}[args.mode](args))


if __name__ == "__main__":
    main()
