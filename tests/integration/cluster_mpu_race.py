#!/usr/bin/env python3
"""cluster_mpu_race.py: the S3 steps of test_cluster_mpu_race.sh, one phase per call, with boto3.

Calls on one upload that race through different nodes of the loopback cluster
(docs/multipart-cluster.md, "Races"). Each round starts its calls on threads released by one
barrier. The state between phases (each object's expected bytes, as a seed list) lives in a JSON
file. Exits non-zero at the first check that fails; prints one line per check that passed.

  complete2 ENDPOINTS STATE BUCKET ROUNDS   per round an upload with parts 1, 2, 3; Complete
                                            [1, 2] through n2 and [1, 3] through n5 at once:
                                            exactly one answers 200, the other NoSuchUpload, and
                                            HEAD through every node gives the winner's ETag
  partrace  ENDPOINTS STATE BUCKET ROUNDS   per round an upload with parts 1, 2; UploadPart of
                                            part 2 again (same bytes) or of part 3 through n3
                                            while Complete [1, 2] through n4 (odd rounds: Abort
                                            through n4): the UploadPart answers 200 or
                                            NoSuchUpload, the upload is gone afterwards
  killpart  ENDPOINTS STATE BUCKET PID      an UploadPart of 8 MiB through n4 whose process (PID)
                                            is SIGKILLed mid-body; the part again through n5 and
                                            Complete through n6: the object reads back byte-exact
  verify    ENDPOINTS STATE BUCKET          every object of the earlier phases reads back
                                            byte-exact (run past the garbage grace period: no
                                            body an object uses was freed) through n1, n3, n6
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time

from lc_boto import client
from tcheck import fail, ok

MIB = 1 << 20
SMALL = 300 * 1024  # above the inline threshold: a body of its own with cells on the nodes


def body(seed, n):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 32
    return bytes(out[:n])


def code_of(e):
    return getattr(e, "response", {}).get("Error", {}).get("Code", repr(e))


def race(calls):
    """Run each call on its own thread, released together; each result: ("ok", value) or
    ("err", code)."""
    bar = threading.Barrier(len(calls))
    out = [None] * len(calls)

    def run(i, fn):
        bar.wait()
        try:
            out[i] = ("ok", fn())
        except Exception as e:  # botocore ClientError, or a transport failure
            out[i] = ("err", code_of(e))

    ts = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


SIZES = {"p1": 5 * MIB}


def part_body(seed):
    if seed.endswith(":big"):
        return body(seed[:-4], 8 * MIB)
    return body(seed, SIZES.get(seed.split(":")[0], SMALL))


def upload(cl, b, k, u, number, seed):
    return cl.upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=number,
                          Body=part_body(seed))["ETag"]


def complete(cl, b, k, u, parts):
    return lambda: cl.complete_multipart_upload(
        Bucket=b, Key=k, UploadId=u,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})["ETag"]


def gone(cl, b, k, u):
    try:
        cl.list_parts(Bucket=b, Key=k, UploadId=u)
    except Exception as e:
        return code_of(e) == "NoSuchUpload"
    return False


def complete2(c, st, b, rounds):
    p1 = part_body("p1")
    for i in range(rounds):
        k = "c2/%d" % i
        u = c[0].create_multipart_upload(Bucket=b, Key=k)["UploadId"]
        e1 = c[1].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=1, Body=p1)["ETag"]
        e2 = upload(c[2], b, k, u, 2, "two:%d" % i)
        e3 = upload(c[3], b, k, u, 3, "three:%d" % i)
        lists = [[(1, e1), (2, e2)], [(1, e1), (3, e3)]]
        res = race([complete(c[1], b, k, u, lists[0]), complete(c[4], b, k, u, lists[1])])
        wins = [j for j, r in enumerate(res) if r[0] == "ok"]
        if len(wins) != 1:
            fail("round %d: exactly one Complete wins: %r" % (i, res))
        w = wins[0]
        if res[1 - w] != ("err", "NoSuchUpload"):
            fail("round %d: the losing Complete answers NoSuchUpload: %r" % (i, res))
        seeds = ["p1", "two:%d" % i if w == 0 else "three:%d" % i]
        etag = res[w][1]
        for n, cl in enumerate(c):
            h = cl.head_object(Bucket=b, Key=k)
            if h["ETag"] != etag or h["ContentLength"] != 5 * MIB + SMALL:
                fail("round %d: HEAD through n%d: %s %d, want the winner's %s" %
                     (i, n + 1, h["ETag"], h["ContentLength"], etag))
        if not gone(c[5], b, k, u):
            fail("round %d: the upload is gone after the race" % i)
        st.setdefault("objects", {})[k] = seeds
    ok("%d rounds: two Completes with different part lists through n2 and n5, exactly one won "
       "each time, the other answered NoSuchUpload, every node names the winner's object" % rounds)


def partrace(c, st, b, rounds):
    p1 = part_body("p1")
    seen = {}
    for i in range(rounds):
        k = "pr/%d" % i
        u = c[0].create_multipart_upload(Bucket=b, Key=k)["UploadId"]
        e1 = c[1].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=1, Body=p1)["ETag"]
        e2 = upload(c[2], b, k, u, 2, "two:%d" % i)
        again = (i // 2) % 2 == 0  # part 2 again, same bytes (Complete may keep either record)
        number, seed = (2, "two:%d" % i) if again else (3, "three:%d" % i)
        up = lambda: upload(c[2], b, k, u, number, seed)  # noqa: E731
        if i % 2 == 0:
            fin = complete(c[3], b, k, u, [(1, e1), (2, e2)])
        else:
            fin = lambda: c[3].abort_multipart_upload(Bucket=b, Key=k, UploadId=u)  # noqa: E731
        delay = 0.004 * (i % 10)  # the part's body takes a while: the end lands before or after

        def end(fin=fin, delay=delay):
            time.sleep(delay)
            return fin()
        r_up, r_end = race([up, end])
        if r_end[0] != "ok":
            fail("round %d: the %s answers 200: %r" % (i, "Complete" if i % 2 == 0 else "Abort",
                                                        r_end))
        if r_up[0] != "ok" and r_up != ("err", "NoSuchUpload"):
            fail("round %d: the racing UploadPart answers 200 or NoSuchUpload: %r" % (i, r_up))
        seen[r_up[1] if r_up[0] == "err" else "200"] = seen.get(
            r_up[1] if r_up[0] == "err" else "200", 0) + 1
        if not gone(c[5], b, k, u):
            fail("round %d: the upload is gone after the race" % i)
        ups = c[4].list_multipart_uploads(Bucket=b, Prefix=k).get("Uploads", [])
        if ups:
            fail("round %d: ListMultipartUploads still shows %r" % (i, ups))
        if i % 2 == 0:
            st.setdefault("objects", {})[k] = ["p1", "two:%d" % i]
    ok("%d rounds: UploadPart racing Complete / Abort; its answers %r; every upload ended" %
       (rounds, seen))


def killpart(c, st, b, pid):
    """UploadPart of part 2 (8 MiB) through n4, SIGKILLed mid-body; part 2 again through n5;
    Complete through n6 keeps the second upload (the first left cells no record names)."""
    k = "kp/0"
    u = c[0].create_multipart_upload(Bucket=b, Key=k)["UploadId"]
    e1 = c[1].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=1, Body=part_body("p1"))["ETag"]
    big = body("kill:2", 8 * MIB)
    res = []

    class Slow(io.BytesIO):
        """The body sent in small reads, 1 ms each (about 1 s for 8 MiB): the node is killed
        while its cells are being written. The SigV4 hash reads it in large pieces first."""

        def read(self, n=-1):
            if 0 < n <= 65536:
                time.sleep(0.001)
            return super().read(n)

    def send():
        try:
            res.append(c[3].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=2,
                                        Body=Slow(big)))
        except Exception as e:  # the node dies under it
            res.append(code_of(e))

    port = c[3].meta.endpoint_url.rsplit(":", 1)[1]
    t = threading.Thread(target=send)
    t.start()
    for _ in range(300):  # the body is on its way once n4 has the connection
        out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%s )" % port],
                             capture_output=True, text=True).stdout
        if out.strip():
            break
        time.sleep(0.01)
    time.sleep(0.2)
    os.kill(pid, 9)
    t.join()
    if not isinstance(res[0], str):  # botocore names a send cut by a reset "Could not connect"
        fail("the UploadPart through n4 was cut by the kill: %r" % res[0])
    e2 = c[4].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=2, Body=big)["ETag"]
    etag = complete(c[5], b, k, u, [(1, e1), (2, e2)])()
    got = c[2].get_object(Bucket=b, Key=k)["Body"].read()
    if hashlib.sha256(got).digest() != hashlib.sha256(part_body("p1") + big).digest():
        fail("the object made after the part was uploaded again reads back byte-exact")
    st.setdefault("objects", {})[k] = ["p1", "kill:2:big"]
    ok("UploadPart through n4 SIGKILLed mid-body (%s); part 2 again through n5, Complete through "
       "n6 (%s): the object reads back byte-exact" % (str(res[0])[:40], etag))


def verify(c, st, b):
    objs = st.get("objects", {})
    bad = []
    for k, seeds in sorted(objs.items()):
        want = hashlib.sha256(b"".join(part_body(s) for s in seeds)).hexdigest()
        for n in (0, 2, 5):
            try:
                got = hashlib.sha256(c[n].get_object(Bucket=b, Key=k)["Body"].read()).hexdigest()
            except Exception as e:
                got = code_of(e)
            if got != want:
                bad.append("%s through n%d: %s" % (k, n + 1, got[:16]))
    if bad:
        fail("objects read back byte-exact: %s" % "; ".join(bad[:8]))
    ok("%d objects read back byte-exact through n1, n3 and n6" % len(objs))


def main():
    phase, eps, state, b = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4]
    c = [client(e) for e in eps]
    st = json.load(open(state)) if os.path.exists(state) else {}
    if not st.get("bucket"):
        c[0].create_bucket(Bucket=b)
        st["bucket"] = b
    if phase == "complete2":
        complete2(c, st, b, int(sys.argv[5]))
    elif phase == "partrace":
        partrace(c, st, b, int(sys.argv[5]))
    elif phase == "killpart":
        killpart(c, st, b, int(sys.argv[5]))
    elif phase == "verify":
        verify(c, st, b)
    else:
        fail("unknown phase %s" % phase)
    json.dump(st, open(state, "w"))


if __name__ == "__main__":
    main()
