#!/usr/bin/env python3
"""cluster_versioning.py: the S3 steps of test_cluster_versioning.sh, one phase per call, boto3.

Each request goes through the node the step names (an endpoint of the loopback cluster, n1..n6);
state between phases (version ids, the bodies they stand for) lives in a JSON file. Exits
non-zero at the first check that fails; prints one line per check that passed.

  enable   EPS STATE BUCKET  bucket via n1, a key written before versioning ("pre"), Enabled
                             via n2, seen by every node; If-None-Match PUTs racing through every
                             node make one version; If-Match on the latest's ETag
  suspend  EPS STATE         tags by versionId; Suspended: writes replace the null version, a
                             DELETE makes a null marker, older versions stay, conditional PUTs
                             replace the null version too; Enabled again
  writes   EPS STATE         versions through several nodes, GET/HEAD by id, delete marker,
                             ListObjectVersions (every page size), permanent deletes, copy by
                             source versionId, Complete making a version; 1,024-byte keys
  race     EPS STATE         PUTs of one key through n1 and n4 at once: every version listed,
                             one latest, the same through every node
  down     EPS STATE         (n3 killed) versions and a marker of "d" through the others
  verify   EPS STATE NODES   "d"'s versions listed and read byte-exact through each node given
  empty    EPS STATE         DeleteBucket refused while versions are left, list-object-versions +
                             delete-objects of versions and markers, then DeleteBucket works
"""
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET

from lc_boto import client
from tcheck import fail, ok


def check(cond, msg):
    if not cond:
        fail(msg)
    ok(msg)


def err(fn):
    try:
        fn()
    except Exception as e:  # botocore ClientError
        r = getattr(e, "response", {})
        return r.get("Error", {}).get("Code", repr(e)), r.get("ResponseMetadata", {}).get(
            "HTTPStatusCode")
    return None, 200


def versions(cl, b, prefix="", page=1000):
    """Every entry of ListObjectVersions in the server's order (boto3 hands versions and delete
    markers apart: the entries are read from the XML), paged with key-marker + version-id-marker.
    """
    out, kw, raw = [], {"Bucket": b, "Prefix": prefix, "MaxKeys": page}, []

    def keep(http_response, **_):
        raw.append(http_response.content)
    cl.meta.events.register("after-call.s3.ListObjectVersions", keep)
    try:
        while True:
            r = cl.list_object_versions(**kw)
            for el in ET.fromstring(raw.pop()):
                tag = el.tag.split("}")[-1]
                if tag in ("Version", "DeleteMarker"):
                    f = {x.tag.split("}")[-1]: x.text for x in el}
                    # botocore asks for EncodingType=url and decodes only what it parses
                    out.append((urllib.parse.unquote(f["Key"]), f["VersionId"],
                                f["IsLatest"] == "true", tag == "DeleteMarker"))
            if not r.get("IsTruncated"):
                return out
            kw["KeyMarker"] = r["NextKeyMarker"]
            kw["VersionIdMarker"] = r.get("NextVersionIdMarker", "")
    finally:
        cl.meta.events.unregister("after-call.s3.ListObjectVersions", keep)


def big(seed, n=300 * 1024):
    """A body above the inline limit: striped into cells on the nodes' drives."""
    out, block = bytearray(), hashlib.sha256(seed).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:n])


def get(cl, b, k, vid=None):
    kw = {"Bucket": b, "Key": k}
    if vid:
        kw["VersionId"] = vid
    r = cl.get_object(**kw)
    return r["Body"].read(), r.get("VersionId")


def enable(c, st, b):
    c[0].create_bucket(Bucket=b)
    c[0].put_object(Bucket=b, Key="pre", Body=b"before versioning")
    c[0].put_object(Bucket=b, Key="big", Body=big(b"plain"))
    c[1].put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    every_node_says(c, b, "Enabled", "GetBucketVersioning through n%d: Enabled")
    st.update(bucket=b)
    conditional(c, st)


def cond_put(cl, b, k, data, header, value):
    """PUT with one conditional header (this botocore has no parameter for it): status."""
    def add(request, **kw):
        request.headers[header] = value
    cl.meta.events.register("before-sign.s3.PutObject", add)
    try:
        return err(lambda: cl.put_object(Bucket=b, Key=k, Body=data))
    finally:
        cl.meta.events.unregister("before-sign.s3.PutObject", add)


def conditional(c, st):
    """If-None-Match PUTs of one new key racing through the six nodes: one version made."""
    b, res = st["bucket"], [None] * 6

    def put(i):
        res[i] = cond_put(c[i], b, "cond", b"from n%d" % (i + 1), "If-None-Match", "*")
    ts = [threading.Thread(target=put, args=(i,)) for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    won = [i for i in range(6) if res[i][1] == 200]
    check(len(won) == 1 and all(r[1] in (409, 412) for i, r in enumerate(res) if i not in won),
          "6 If-None-Match PUTs racing through n1-n6: one 200, the rest 412/409: %s" % res)
    got = versions(c[0], b, "cond")
    check(len(got) == 1 and got[0][2], "one version of cond listed")
    etag = c[3].head_object(Bucket=b, Key="cond")["ETag"]
    check(cond_put(c[4], b, "cond", b"again", "If-Match", etag)[1] == 200 and
          cond_put(c[5], b, "cond", b"late", "If-Match", etag)[1] == 412,
          "If-Match on the latest's ETag: once 200, then 412")
    got = versions(c[1], b, "cond")
    check(len(got) == 2, "two versions of cond")

    def delete_if(cl, vid, value):
        def add(request, **kw):
            request.headers["If-Match"] = value
        cl.meta.events.register("before-sign.s3.DeleteObject", add)
        try:
            return err(lambda: cl.delete_object(Bucket=b, Key="cond", VersionId=vid))
        finally:
            cl.meta.events.unregister("before-sign.s3.DeleteObject", add)
    wrong, right = delete_if(c[0], got[1][1], '"0123"'), delete_if(c[3], got[1][1], etag)
    check(wrong[1] == 412 and right[0] is None,
          "DELETE of a version with If-Match: 412 for another ETag, done for its own: %s %s"
          % (wrong, right))
    for e in versions(c[1], b, "cond"):
        c[2].delete_object(Bucket=b, Key="cond", VersionId=e[1])
    check(versions(c[0], b, "cond") == [], "both deleted for good")


def writes(c, st):
    b = st["bucket"]
    ids = []
    for i in range(3):
        r = c[i].put_object(Bucket=b, Key="k", Body=b"body %d" % i)
        ids.append(r["VersionId"])
    check(len(set(ids)) == 3 and all(len(v) == 32 for v in ids),
          "three PUTs through n1-n3 answer three version ids")
    for i, v in enumerate(ids):
        data, vid = get(c[3], b, "k", v)
        check(data == b"body %d" % i and vid == v, "GET by version %d through n4" % i)
    h = c[4].head_object(Bucket=b, Key="k")
    check(h["VersionId"] == ids[2], "HEAD through n5: the latest")
    pre = c[0].put_object(Bucket=b, Key="pre", Body=b"after versioning")["VersionId"]
    data, vid = get(c[5], b, "pre", "null")
    check(data == b"before versioning" and vid == "null", "the pre-versioning object is 'null'")
    st["big"] = [c[2].put_object(Bucket=b, Key="big", Body=big(b"v1"))["VersionId"],
                 c[3].put_object(Bucket=b, Key="big", Body=big(b"v2"))["VersionId"]]
    st["big_ms"] = time.time()
    bigs(c, st, [4])
    m = c[5].delete_object(Bucket=b, Key="k")
    check(m.get("DeleteMarker") and len(m.get("VersionId", "")) == 32,
          "DELETE through n6: a delete marker")
    code, status = err(lambda: c[0].get_object(Bucket=b, Key="k"))
    check(status == 404 and code == "NoSuchKey", "GET k behind the marker: 404 NoSuchKey")
    code, status = err(lambda: c[1].get_object(Bucket=b, Key="k", VersionId=m["VersionId"]))
    check(status == 405, "GET of the marker by id: 405")
    keys = [o["Key"] for o in c[2].list_objects_v2(Bucket=b).get("Contents", [])]
    check(keys == ["big", "pre"], "ListObjectsV2 leaves k out: %s" % keys)
    want = [("k", m["VersionId"], True, True), ("k", ids[2], False, False),
            ("k", ids[1], False, False), ("k", ids[0], False, False),
            ("pre", pre, True, False), ("pre", "null", False, False)]
    for n, cl in enumerate(c):
        got = [e for e in versions(cl, b) if e[0] != "big"]
        check(got == want, "ListObjectVersions through n%d: %s" % (n + 1, got))
    for page in range(1, 6):
        check([e for e in versions(c[page % 6], b, page=page) if e[0] != "big"] == want,
              "pages of %d, same entries" % page)
    d = c[1].delete_object(Bucket=b, Key="k", VersionId=m["VersionId"])
    check(d.get("DeleteMarker") and d.get("VersionId") == m["VersionId"],
          "the marker deleted for good through n2")
    data, vid = get(c[3], b, "k")
    check(data == b"body 2" and vid == ids[2], "k is back at its newest version")
    c[2].delete_object(Bucket=b, Key="k", VersionId=ids[1])
    code, status = err(lambda: c[4].get_object(Bucket=b, Key="k", VersionId=ids[1]))
    check(code == "NoSuchVersion", "a version deleted for good: NoSuchVersion")
    c[3].delete_object(Bucket=b, Key="k", VersionId=ids[2])
    data, vid = get(c[5], b, "k")
    check(data == b"body 0" and vid == ids[0], "deleting the latest promotes the next one")
    r = c[4].copy_object(Bucket=b, Key="k2", CopySource={"Bucket": b, "Key": "pre",
                                                         "VersionId": "null"})
    data, _ = get(c[0], b, "k2", r["VersionId"])
    check(data == b"before versioning", "CopyObject of the null version by versionId")
    mp = c[1].create_multipart_upload(Bucket=b, Key="mp")
    part = c[2].upload_part(Bucket=b, Key="mp", UploadId=mp["UploadId"], PartNumber=1,
                            Body=b"m" * 100)
    r = c[3].complete_multipart_upload(
        Bucket=b, Key="mp", UploadId=mp["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    check(len(r.get("VersionId", "")) == 32, "CompleteMultipartUpload answers its version id")
    check(get(c[5], b, "mp", r["VersionId"])[0] == b"m" * 100, "its version reads back")
    got = [e[:3] for e in versions(c[0], b, "k")]
    check(got == [("k", ids[0], True), ("k2", got[1][1], True)], "what is left of k: %s" % got)
    longkey(c, b)


def longkey(c, b):
    """Keys of 1,024 bytes (S3's limit), the longest too long for the short version key: two
    sharing their first 1,000 bytes, each with its own versions."""
    k1, k2 = "L" + "\u00e9" * 10 + "x" * 1003, "L" + "\u00e9" * 10 + "x" * 1002 + "y"
    check(len(k1.encode()) == 1024 and len(k2.encode()) == 1024, "two 1,024-byte keys")
    v = [c[0].put_object(Bucket=b, Key=k1, Body=b"long 1")["VersionId"],
         c[1].put_object(Bucket=b, Key=k1, Body=b"long 2")["VersionId"]]
    w = c[2].put_object(Bucket=b, Key=k2, Body=b"other")["VersionId"]
    check(len(v[0]) == len(v[1]) == len(w) == 32, "three PUTs of them answer version ids")
    want = [(k1, v[1], True, False), (k1, v[0], False, False), (k2, w, True, False)]
    for n in (3, 4):
        got = versions(c[n], b, "L")
        check(got == want, "ListObjectVersions of the long keys through n%d" % (n + 1))
    check([e for e in versions(c[5], b, "L", page=1)] == want, "in pages of 1, the same")
    for i, vid in enumerate(v):
        check(get(c[5 - i], b, k1, vid) == (b"long %d" % (i + 1), vid), "GET by id %d" % i)
    check(get(c[0], b, k1) == (b"long 2", v[1]), "GET without id: the latest")
    c[1].delete_object(Bucket=b, Key=k1, VersionId=v[1])
    check(get(c[2], b, k1) == (b"long 1", v[0]), "the latest deleted by id: the older promoted")
    code, _ = err(lambda: c[3].get_object(Bucket=b, Key=k1, VersionId=v[1]))
    check(code == "NoSuchVersion", "the deleted one: NoSuchVersion")
    m = c[4].delete_object(Bucket=b, Key=k1)
    check(m.get("DeleteMarker") and len(m.get("VersionId", "")) == 32, "a delete marker")
    code, status = err(lambda: c[5].get_object(Bucket=b, Key=k1))
    check(status == 404, "GET behind the marker: 404")
    got = versions(c[0], b, "L")
    check(got == [(k1, m["VersionId"], True, True), (k1, v[0], False, False),
                  (k2, w, True, False)], "listed: the marker, the older version, the other key")


def every_node_says(c, b, status, what):
    """Each node's GetBucketVersioning answers status: each learns it from the etcd watch (tens of
    ms; more on a loaded machine, once over a second under the sanitizer), so each is polled for
    up to 5 s, and the writes that follow reach nodes that all know."""
    for i, cl in enumerate(c):
        deadline = time.time() + 5
        while (cl.get_bucket_versioning(Bucket=b).get("Status") != status and
               time.time() < deadline):
            time.sleep(0.05)
        check(cl.get_bucket_versioning(Bucket=b).get("Status") == status, what % (i + 1))


def suspend(c, st):
    b = st["bucket"]
    v1 = c[0].put_object(Bucket=b, Key="s", Body=b"enabled")["VersionId"]
    c[1].put_object_tagging(Bucket=b, Key="s", VersionId=v1,
                            Tagging={"TagSet": [{"Key": "t", "Value": "one"}]})
    v2 = c[2].put_object(Bucket=b, Key="s", Body=b"enabled 2")["VersionId"]
    c[3].put_object_tagging(Bucket=b, Key="s", Tagging={"TagSet": [{"Key": "t", "Value": "two"}]})
    t1 = c[4].get_object_tagging(Bucket=b, Key="s", VersionId=v1)
    t2 = c[5].get_object_tagging(Bucket=b, Key="s")
    check(t1["TagSet"] == [{"Key": "t", "Value": "one"}] and t1["VersionId"] == v1 and
          t2["TagSet"] == [{"Key": "t", "Value": "two"}] and t2["VersionId"] == v2,
          "tags by versionId and of the latest, through other nodes")
    c[3].put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    every_node_says(c, b, "Suspended", "through n%d: Suspended")
    code, status = cond_put(c[2], b, "s", b"x", "If-None-Match", "*")
    check(status == 412, "If-None-Match on a suspended bucket's key: 412 %s" % code)
    for i, n in enumerate((0, 4)):
        r = c[n].put_object(Bucket=b, Key="s", Body=b"suspended %d" % i)
        check(r.get("VersionId") == "null", "a suspended PUT through n%d: version null" % (n + 1))
    got = [e[:3] for e in versions(c[1], b, "s")]
    check(got == [("s", "null", True), ("s", v2, False), ("s", v1, False)],
          "one null version, the latest, the enabled ones kept: %s" % got)
    check(get(c[2], b, "s", "null")[0] == b"suspended 1", "GET versionId=null: the last write")
    etag = c[3].head_object(Bucket=b, Key="s")["ETag"]
    check(cond_put(c[4], b, "s", b"suspended if", "If-Match", etag)[1] == 200 and
          get(c[0], b, "s", "null")[0] == b"suspended if" and
          [e[1] for e in versions(c[5], b, "s")] == ["null", v2, v1],
          "If-Match in a suspended bucket: the null version replaced, still one")
    d = c[5].delete_object(Bucket=b, Key="s")
    check(d.get("DeleteMarker") and d.get("VersionId") == "null", "a suspended DELETE: null marker")
    got = [e for e in versions(c[0], b, "s")]
    check(got == [("s", "null", True, True), ("s", v2, False, False), ("s", v1, False, False)],
          "the null marker replaced the null version: %s" % got)
    c[2].put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    every_node_says(c, b, "Enabled", "through n%d: Enabled again")
    v3 = c[1].put_object(Bucket=b, Key="s", Body=b"enabled 3")["VersionId"]
    got = [e[:3] for e in versions(c[4], b, "s")]
    check(got == [("s", v3, True), ("s", "null", False), ("s", v2, False), ("s", v1, False)],
          "Enabled again: a new version on top of the null marker: %s" % got)


def race(c, st):
    b, rounds = st["bucket"], 6
    made, errors = [], []

    def put(cl, tag):
        for i in range(rounds):
            try:
                made.append(cl.put_object(Bucket=b, Key="race", Body=b"%s %d" % (tag, i))
                            ["VersionId"])
            except Exception as e:
                errors.append(repr(e))
    ts = [threading.Thread(target=put, args=(c[0], b"n1")),
          threading.Thread(target=put, args=(c[3], b"n4"))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors and len(made) == 2 * rounds, "%d PUTs of one key through n1 and n4 at once"
          % len(made))
    for n, cl in enumerate(c):
        got = versions(cl, b, "race")
        latest = [e[1] for e in got if e[2]]
        check(sorted(e[1] for e in got) == sorted(made), "through n%d: every version listed" %
              (n + 1))
        check(latest == [got[0][1]], "through n%d: one latest, listed first" % (n + 1))
        check(get(cl, b, "race")[1] == got[0][1], "through n%d: GET answers that one" % (n + 1))


def down(c, st):
    b, ids = st["bucket"], []
    for i, n in enumerate([0, 1, 3, 4]):
        ids.append(c[n].put_object(Bucket=b, Key="d", Body=b"down %d" % i)["VersionId"])
    ids.append(c[5].delete_object(Bucket=b, Key="d")["VersionId"])
    ok("4 versions and a marker of d through n1, n2, n4, n5, n6 with n3 down")
    st["down"] = ids


def verify(c, st, nodes):
    b, ids = st["bucket"], st["down"]
    want = [("d", ids[4], True, True)] + [("d", ids[i], False, False) for i in (3, 2, 1, 0)]
    for n in nodes:
        got = versions(c[n], b, "d")
        check(got == want, "through n%d: d's versions and marker, in order" % (n + 1))
        for i in range(4):
            check(get(c[n], b, "d", ids[i])[0] == b"down %d" % i,
                  "through n%d: version %d byte-exact" % (n + 1, i))


def bigs(c, st, nodes):
    """The striped versions of "big" (the null one written before versioning) read back."""
    b = st["bucket"]
    for n in nodes:
        for vid, seed in [("null", b"plain"), (st["big"][0], b"v1"), (st["big"][1], b"v2")]:
            check(get(c[n], b, "big", vid)[0] == big(seed),
                  "through n%d: striped version %s of big byte-exact" % (n + 1, vid[:8]))


def empty(c, st):
    b = st["bucket"]
    # past the garbage grace period (1 s here) and a maintenance tick (10 s) of every node: a
    # body a pointer replaced is no garbage, so every version still reads
    time.sleep(max(0.0, st["big_ms"] + 11 - time.time()))
    bigs(c, st, [0, 2, 5])
    code, _ = err(lambda: c[1].delete_bucket(Bucket=b))
    check(code == "BucketNotEmpty", "DeleteBucket with versions left: %s" % code)
    ents = versions(c[5], b)
    objs = [{"Key": e[0], "VersionId": e[1]} for e in ents]
    for i in range(0, len(objs), 1000):
        r = c[5].delete_objects(Bucket=b, Delete={"Objects": objs[i:i + 1000]})
        check(not r.get("Errors"), "DeleteObjects of %d versions and markers through n6" %
              len(objs[i:i + 1000]))
    check(versions(c[0], b) == [], "no version left")
    c[2].delete_bucket(Bucket=b)
    ok("DeleteBucket through n3")


def main():
    phase, eps, state = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    c = [client(e) for e in eps]
    st = json.load(open(state)) if os.path.exists(state) else {}
    if phase == "enable":
        enable(c, st, sys.argv[4])
    elif phase == "writes":
        writes(c, st)
    elif phase == "suspend":
        suspend(c, st)
    elif phase == "race":
        race(c, st)
    elif phase == "down":
        down(c, st)
    elif phase == "verify":
        verify(c, st, [int(n) for n in sys.argv[4].split(",")])
    elif phase == "empty":
        empty(c, st)
    else:
        fail("unknown phase " + phase)
    json.dump(st, open(state, "w"))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line that says what broke, not a truncated traceback
        import traceback
        fail("%s at line %d" % (repr(e)[:300], traceback.extract_tb(e.__traceback__)[-1].lineno))
