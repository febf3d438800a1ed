"""While metadata commits are slow (each LMDB fdatasync sleeps, see fault_meta_slow.sh), start
CreateBucket, DeleteBucket, CreateMultipartUpload, AbortMultipartUpload and
CompleteMultipartUpload at once, then time GETs of a small object on the same (single) event
loop: each must answer within LIMIT_MS, far below one slow commit, because those commits run on
worker threads. Then every started request must have succeeded.

    meta_slow.py setup              bucket, probe object, two uploads with one part each
    meta_slow.py race DELAY_FILE    create DELAY_FILE, run the race, remove it
"""

import os
import re
import sys
import threading
import time

import s3raw

LIMIT_MS = float(os.environ.get("LIMIT_MS", "700"))
FAILS = 0


def check(desc, cond, detail=""):
    global FAILS
    print(("ok - " if cond else "FAIL - ") + desc + ("" if cond or not detail else
                                                     "\n    | " + str(detail)[:300]))
    FAILS += 0 if cond else 1


def req(method, path, query=None, body=b"", headers=None):
    return s3raw.request(method, path, query or {}, body, headers)


def setup():
    check("create bucket", req("PUT", "/slow")[0] == 200)
    check("create bucket to delete", req("PUT", "/slow-gone")[0] == 200)
    check("put probe", req("PUT", "/slow/probe", body=b"p" * 4096)[0] == 200)
    for key in ("done", "dropped"):
        st, _, body = req("POST", "/slow/" + key, {"uploads": ""})
        uid = re.search(rb"<UploadId>([^<]+)<", body).group(1).decode()
        st, h, _ = req("PUT", "/slow/" + key, {"partNumber": "1", "uploadId": uid}, b"x" * 3000)
        check("upload %s with one part" % key, st == 200)
        with open(os.path.join(os.environ["H_WORK"], key + ".id"), "w") as f:
            f.write("%s %s\n" % (uid, h["etag"]))


def race(delay_file):
    ids = {}
    for key in ("done", "dropped"):
        with open(os.path.join(os.environ["H_WORK"], key + ".id")) as f:
            ids[key] = f.read().split()
    xml = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag></Part>"
           "</CompleteMultipartUpload>" % ids["done"][1]).encode()
    ops = {
        "CreateBucket": ("PUT", "/slow-new", None, b"", 200),
        "DeleteBucket": ("DELETE", "/slow-gone", None, b"", 204),
        "CreateMultipartUpload": ("POST", "/slow/new", {"uploads": ""}, b"", 200),
        "AbortMultipartUpload": ("DELETE", "/slow/dropped", {"uploadId": ids["dropped"][0]}, b"",
                                 204),
        "CompleteMultipartUpload": ("POST", "/slow/done", {"uploadId": ids["done"][0]}, xml, 200),
    }
    results = {}

    def run(name, m, p, q, b):
        t0 = time.monotonic()
        st = req(m, p, q, b)[0]
        results[name] = (st, (time.monotonic() - t0) * 1000)

    open(delay_file, "w").close()
    threads = [threading.Thread(target=run, args=(n, m, p, q, b))
               for n, (m, p, q, b, _) in ops.items()]
    for t in threads:
        t.start()
    time.sleep(0.2)  # let the slow requests reach their commits
    worst = 0.0
    for _ in range(5):
        t0 = time.monotonic()
        st, _, body = req("GET", "/slow/probe")
        ms = (time.monotonic() - t0) * 1000
        worst = max(worst, ms)
        check("GET probe during slow commits -> 200", st == 200 and len(body) == 4096, st)
    for t in threads:
        t.join()
    os.unlink(delay_file)
    print("slowest GET %.0f ms while metadata commits took: %s" %
          (worst, ", ".join("%s %.0f ms" % (n, r[1]) for n, r in results.items())))
    check("every GET answered within %.0f ms" % LIMIT_MS, worst < LIMIT_MS, worst)
    for name, (_, _, _, _, want) in ops.items():
        st, ms = results.get(name, (None, 0))
        check("%s -> %d" % (name, want), st == want, st)
    check("the commits were slow (the delay was in effect)",
          min(r[1] for r in results.values()) >= LIMIT_MS, results)


if __name__ == "__main__":
    if sys.argv[1] == "setup":
        setup()
    else:
        race(sys.argv[2])
    sys.exit(1 if FAILS else 0)
