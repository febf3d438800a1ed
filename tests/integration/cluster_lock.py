#!/usr/bin/env python3
"""cluster_lock.py: the S3 steps of test_cluster_lock.sh, one phase per call, boto3.

Each request goes through the node the step names (n1..n6 of the loopback cluster); the version
ids live in a JSON state file between phases. Exits non-zero at the first check that fails;
prints one line per check that passed.

  setup  EPS STATE BUCKET  a bucket created with Object Lock through n1, seen by every node;
                           versions with COMPLIANCE (set by PutObjectRetention through n2), a
                           legal hold, GOVERNANCE, and the bucket's default retention (set
                           through n4), a multipart upload's hold (Complete through n5),
                           CopyObject's retention; every deletion by id through n3..n6 and DeleteObjects
                           refused, the versions still there; a delete marker allowed and
                           deleted; shortening COMPLIANCE refused; governance bypass works
  after  EPS STATE         (after a node restart) the locks read back through every node, every
                           deletion still refused; a released hold, then the version deleted
  race   EPS STATE         20 rounds on a GOVERNANCE version: a COMPLIANCE extension through n1
                           races a GOVERNANCE change through n4 (no bypass) that the extension
                           makes a shortening; every answer 200 or 403, and the retention read
                           back is never weaker than a change that answered 200; then 10
                           rounds of a COMPLIANCE extension through n1 racing tag changes
                           through n2 and n5: the retention kept, the tags one of those written
"""
import datetime
import json
import sys
import threading
import time

from lc_boto import client
from tcheck import fail, ok


def check(cond, msg, detail=""):
    if not cond:
        fail(msg + (": " + detail if detail else ""))
    ok(msg)


def err(fn):
    try:
        fn()
    except Exception as e:  # botocore ClientError
        r = getattr(e, "response", {})
        return r.get("Error", {}).get("Code", repr(e))
    return None


def later(s):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=s)


def refused_everywhere(cls, b, st, names):
    """Deleting each named version by id through n3..n6 is AccessDenied; it is still there."""
    for name in names:
        for i in (2, 3, 4, 5):
            code = err(lambda: cls[i].delete_object(Bucket=b, Key=st[name][0],
                                                    VersionId=st[name][1]))
            check(code == "AccessDenied", f"delete {name} by id through n{i + 1} refused",
                  str(code))
        h = cls[0].head_object(Bucket=b, Key=st[name][0], VersionId=st[name][1])
        check(h["VersionId"] == st[name][1], f"{name} still there")
    objs = [{"Key": st[n][0], "VersionId": st[n][1]} for n in names]
    r = cls[3].delete_objects(Bucket=b, Delete={"Objects": objs})
    codes = sorted(e["Code"] for e in r.get("Errors", []))
    check(codes == ["AccessDenied"] * len(names) and not r.get("Deleted"),
          "DeleteObjects of them through n4: each AccessDenied", str(r.get("Errors")))


def setup(cls, path, b):
    cls[0].create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    for i, cl in enumerate(cls):
        cfg = cl.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
        check(cfg["ObjectLockEnabled"] == "Enabled" and
              cl.get_bucket_versioning(Bucket=b).get("Status") == "Enabled",
              f"lock and versioning seen through n{i + 1}")
    code = err(lambda: cls[2].put_bucket_versioning(
        Bucket=b, VersioningConfiguration={"Status": "Suspended"}))
    check(code == "InvalidBucketState", "Suspended refused through n3", str(code))
    far = later(3600)
    st = {"c": ["c", cls[0].put_object(Bucket=b, Key="c", Body=b"compliance")["VersionId"]]}
    cls[1].put_object_retention(Bucket=b, Key="c", VersionId=st["c"][1],
                                Retention={"Mode": "COMPLIANCE", "RetainUntilDate": far})
    st["h"] = ["h", cls[0].put_object(Bucket=b, Key="h", Body=b"held",
                                      ObjectLockLegalHoldStatus="ON")["VersionId"]]
    st["g"] = ["g", cls[1].put_object(Bucket=b, Key="g", Body=b"governance",
                                      ObjectLockMode="GOVERNANCE",
                                      ObjectLockRetainUntilDate=far)["VersionId"]]
    cls[3].put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    # each node's follower of the bucket documents may lag by tens of ms (more under the
    # sanitizer at load): every node is polled, up to 5 s, before the writes below rely on it
    rules = []
    for cl in cls:
        deadline = time.time() + 5
        while True:
            rule = cl.get_object_lock_configuration(Bucket=b)["ObjectLockConfiguration"]
            rule = rule.get("Rule")
            if rule or time.time() > deadline:
                break
            time.sleep(0.05)
        rules.append(rule)
    want = {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}
    check(all(r == want for r in rules),
          "default retention set through n4, read through every node", str(rules))
    st["d"] = ["d", cls[4].put_object(Bucket=b, Key="d", Body=b"default")["VersionId"]]
    up = cls[1].create_multipart_upload(Bucket=b, Key="m", ObjectLockLegalHoldStatus="ON")
    part = cls[2].upload_part(Bucket=b, Key="m", UploadId=up["UploadId"], PartNumber=1,
                              Body=b"multipart")
    st["m"] = ["m", cls[4].complete_multipart_upload(
        Bucket=b, Key="m", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})["VersionId"]]
    h = cls[0].head_object(Bucket=b, Key="m")
    check(h.get("ObjectLockLegalHoldStatus") == "ON" and h.get("ObjectLockMode") == "GOVERNANCE",
          "Complete applies the upload's hold and the default retention", str(h))
    st["y"] = ["y", cls[3].copy_object(Bucket=b, Key="y", CopySource={"Bucket": b, "Key": "d"},
                                       ObjectLockMode="COMPLIANCE",
                                       ObjectLockRetainUntilDate=far)["VersionId"]]
    h = cls[5].head_object(Bucket=b, Key="y")
    check(h.get("ObjectLockMode") == "COMPLIANCE", "CopyObject takes the request's lock", str(h))
    h = cls[5].head_object(Bucket=b, Key="d")
    check(h.get("ObjectLockMode") == "GOVERNANCE", "a new version takes the default", str(h))
    ret = cls[5].get_object_retention(Bucket=b, Key="c", VersionId=st["c"][1])["Retention"]
    check(ret["Mode"] == "COMPLIANCE", "GetObjectRetention through n6", str(ret))
    hold = cls[2].get_object_legal_hold(Bucket=b, Key="h")["LegalHold"]
    check(hold["Status"] == "ON", "GetObjectLegalHold through n3")
    check(cls[4].head_object(Bucket=b, Key="h").get("ObjectLockLegalHoldStatus") == "ON",
          "HEAD shows the hold")
    refused_everywhere(cls, b, st, ["c", "h", "g", "d", "m", "y"])
    code = err(lambda: cls[5].delete_object(Bucket=b, Key="c", VersionId=st["c"][1],
                                            BypassGovernanceRetention=True))
    check(code == "AccessDenied", "bypass does not lift COMPLIANCE", str(code))
    code = err(lambda: cls[1].put_object_retention(
        Bucket=b, Key="c", VersionId=st["c"][1],
        Retention={"Mode": "GOVERNANCE", "RetainUntilDate": far}))
    check(code == "AccessDenied", "COMPLIANCE -> GOVERNANCE refused", str(code))
    m = cls[4].delete_object(Bucket=b, Key="c")
    check(m.get("DeleteMarker"), "a plain DELETE makes a marker")
    cls[2].delete_object(Bucket=b, Key="c", VersionId=m["VersionId"])
    check(cls[0].head_object(Bucket=b, Key="c")["VersionId"] == st["c"][1],
          "the marker deleted by id, the locked version latest again")
    cls[5].delete_object(Bucket=b, Key="g", VersionId=st["g"][1], BypassGovernanceRetention=True)
    code = err(lambda: cls[0].head_object(Bucket=b, Key="g", VersionId=st["g"][1]))
    check(code in ("404", "NoSuchVersion", "NoSuchKey"), "GOVERNANCE deleted with bypass", str(code))
    del st["g"]
    st["bucket"] = b
    with open(path, "w") as f:
        json.dump(st, f)


def after(cls, path):
    with open(path) as f:
        st = json.load(f)
    b = st.pop("bucket")
    for i, cl in enumerate(cls):
        ret = cl.get_object_retention(Bucket=b, Key="c", VersionId=st["c"][1])["Retention"]
        hold = cl.get_object_legal_hold(Bucket=b, Key="h", VersionId=st["h"][1])["LegalHold"]
        check(ret["Mode"] == "COMPLIANCE" and hold["Status"] == "ON",
              f"retention and hold read through n{i + 1}")
    refused_everywhere(cls, b, st, ["c", "h", "d"])
    for name in ("c", "h"):
        code = err(lambda: cls[5].delete_object(Bucket=b, Key=st[name][0], VersionId=st[name][1],
                                                BypassGovernanceRetention=True))
        check(code == "AccessDenied", f"delete {name} with bypass refused", str(code))
    cls[2].delete_object(Bucket=b, Key="d", VersionId=st["d"][1], BypassGovernanceRetention=True)
    code = err(lambda: cls[0].head_object(Bucket=b, Key="d", VersionId=st["d"][1]))
    check(code in ("404", "NoSuchVersion", "NoSuchKey"), "the default GOVERNANCE: bypassed",
          str(code))
    cls[2].put_object_legal_hold(Bucket=b, Key="h", VersionId=st["h"][1],
                                 LegalHold={"Status": "OFF"})
    cls[4].delete_object(Bucket=b, Key="h", VersionId=st["h"][1])
    code = err(lambda: cls[0].head_object(Bucket=b, Key="h", VersionId=st["h"][1]))
    check(code in ("404", "NoSuchVersion", "NoSuchKey"), "a released hold: deleted", str(code))


RANK = {"GOVERNANCE": 1, "COMPLIANCE": 2}


def race(cls, path):
    with open(path) as f:
        b = json.load(f)["bucket"]
    t0 = later(3600).replace(microsecond=0)
    asks = [(0, "COMPLIANCE", t0 + datetime.timedelta(seconds=600)),
            (3, "GOVERNANCE", t0 + datetime.timedelta(seconds=300))]
    both = 0
    for rnd in range(20):
        vid = cls[0].put_object(Bucket=b, Key="race", Body=b"r", ObjectLockMode="GOVERNANCE",
                                ObjectLockRetainUntilDate=t0)["VersionId"]
        gate = threading.Barrier(len(asks))
        codes = [None] * len(asks)

        def change(i, node, mode, until):
            gate.wait()
            codes[i] = err(lambda: cls[node].put_object_retention(
                Bucket=b, Key="race", VersionId=vid,
                Retention={"Mode": mode, "RetainUntilDate": until})) or "200"

        ts = [threading.Thread(target=change, args=(i, *a)) for i, a in enumerate(asks)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if any(c not in ("200", "AccessDenied") for c in codes):
            fail(f"round {rnd}: every answer 200 or AccessDenied: {codes}")
        ret = cls[1].get_object_retention(Bucket=b, Key="race", VersionId=vid)["Retention"]
        for c, (node, mode, until) in zip(codes, asks):
            if c == "200" and (RANK[ret["Mode"]] < RANK[mode] or ret["RetainUntilDate"] < until):
                fail(f"round {rnd}: {mode} until {until} through n{node + 1} answered 200, "
                     f"the version has {ret['Mode']} until {ret['RetainUntilDate']} ({codes})")
        both += codes == ["200", "200"]
    ok("20 racing retention changes through n1 and n4: none acknowledged and then weakened "
       f"(both answered 200 in {both})")
    race_tags(cls, b, t0)


def race_tags(cls, b, t0):
    """10 rounds: a COMPLIANCE extension through n1 races tag changes through n2 and n5."""
    until = t0 + datetime.timedelta(seconds=900)
    for rnd in range(10):
        vid = cls[0].put_object(Bucket=b, Key="rtag", Body=b"t", ObjectLockMode="GOVERNANCE",
                                ObjectLockRetainUntilDate=t0)["VersionId"]
        sets = {1: [{"Key": "via", "Value": f"n2-{rnd}"}],
                4: [{"Key": "via", "Value": f"n5-{rnd}"}]}
        gate = threading.Barrier(3)
        codes = {}

        def run(node, fn):
            gate.wait()
            codes[node] = err(fn) or "200"

        ts = [threading.Thread(target=run, args=(0, lambda: cls[0].put_object_retention(
            Bucket=b, Key="rtag", VersionId=vid,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until})))]
        for node, tags in sets.items():
            ts.append(threading.Thread(target=run, args=(node, lambda n=node, t=tags: cls[n]
                .put_object_tagging(Bucket=b, Key="rtag", VersionId=vid,
                                    Tagging={"TagSet": t}))))
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if any(c != "200" for c in codes.values()):
            fail(f"round {rnd}: every answer 200: {codes}")
        ret = cls[2].get_object_retention(Bucket=b, Key="rtag", VersionId=vid)["Retention"]
        if ret["Mode"] != "COMPLIANCE" or ret["RetainUntilDate"] < until:
            fail(f"round {rnd}: the COMPLIANCE extension answered 200, a racing tag change left "
                 f"{ret['Mode']} until {ret['RetainUntilDate']}")
        got = cls[5].get_object_tagging(Bucket=b, Key="rtag", VersionId=vid)["TagSet"]
        if got not in sets.values():
            fail(f"round {rnd}: the tags {got} are none of the sets that answered 200")
    ok("10 rounds of a COMPLIANCE extension through n1 racing tag changes through n2 and n5: "
       "the retention kept, the tags one of the sets written")


def main():
    phase, eps = sys.argv[1], sys.argv[2].split(",")
    cls = [client(ep) for ep in eps]
    if phase == "setup":
        setup(cls, sys.argv[3], sys.argv[4])
    elif phase == "after":
        after(cls, sys.argv[3])
    elif phase == "race":
        race(cls, sys.argv[3])
    else:
        fail("unknown phase " + phase)


if __name__ == "__main__":
    main()
