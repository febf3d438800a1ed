#!/usr/bin/env python3
"""cluster_lifecycle.py: the S3 steps of test_cluster_lifecycle.sh (boto3), against the loopback
cluster whose lifecycle day is one second. Exits non-zero at the first check that fails; prints
one line per check that passed.

  cluster_lifecycle.py EPS BUCKET
    a configuration put through n1 (expire tmp/ after a day, tagged t/ objects after a day, abort
    uploads under up/ after a day) and read back through n4; one too large for the bucket document with 400 through n3;
    objects written through every node, an upload started through n3 with a part; then, read
    through other nodes: tmp/ and the tagged object expire, the rest stays, the stale upload is
    aborted and the other one kept; the nodes' last passes examined each record left once in all
    (/admin/status); in a bucket with Object Lock, NoncurrentVersionExpiration with
    NewerNoncurrentVersions 1 keeps the latest and newest noncurrent version of each key and a
    locked one; x-amz-expiration on PUT/GET/HEAD through other nodes follows a
    configuration put through n2; the configuration deleted, and the header gone with it.
"""
import datetime
import json
import os
import sys
import time

import s3raw
from cluster_versioning import check, err, fail
from lc_boto import client

NTMP = 24


def keys(cl, b):
    out, token = [], None
    while True:
        kw = {"Bucket": b, "MaxKeys": 7}
        if token:
            kw["ContinuationToken"] = token
        r = cl.list_objects_v2(**kw)
        out += [o["Key"] for o in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            return out
        token = r["NextContinuationToken"]


def last_passes(eps):
    """Each node's last finished lifecycle pass (its /admin/status), or None."""
    out = []
    for e in eps:
        os.environ["CAIRN_ENDPOINT"] = e
        st, _, body = s3raw.request("GET", "/admin/status")
        out.append(json.loads(body)["lifecycle"]["last"] if st == 200 else None)
    return out


def uploads(cl, b):
    return sorted(u["Key"] for u in cl.list_multipart_uploads(Bucket=b).get("Uploads", []))


CONFIG = {"Rules": [
    {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
    {"ID": "tagged", "Status": "Enabled",
     "Filter": {"And": {"Prefix": "t/", "Tags": [{"Key": "class", "Value": "debug"}]}},
     "Expiration": {"Days": 1}},
    {"ID": "mpu", "Status": "Enabled", "Filter": {"Prefix": "up/"},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
]}


def main():
    eps, b = sys.argv[1].split(","), sys.argv[2]
    c = [client(e) for e in eps]
    c[0].create_bucket(Bucket=b)
    c[0].put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=CONFIG)
    # Another node reads its copy of the bucket document, which follows etcd's watch (tens of ms
    # on an idle machine, longer on a loaded one): poll, as for every cross-node read below.
    check(until(lambda: rule_ids(c[3], b) == ["mpu", "tagged", "tmp"]) and
          any(r.get("Filter", {}).get("Prefix") == "tmp/" for r in
              c[3].get_bucket_lifecycle_configuration(Bucket=b)["Rules"]),
          "the configuration put through n1 is read back through n4")
    many = {"Rules": [{"ID": "rule-%03d" % i, "Status": "Enabled", "Filter": {"Prefix": "p%d/" % i},
                       "Expiration": {"Days": 1 + i}} for i in range(400)]}
    check(err(lambda: c[2].put_bucket_lifecycle_configuration(
        Bucket=b, LifecycleConfiguration=many)) == ("InvalidRequest", 400),
        "a configuration larger than the bucket document keeps is refused with 400 (n3)")
    check(until(lambda: rule_ids(c[5], b) == ["mpu", "tagged", "tmp"]),
          "the refused configurations left the stored one in place (n6)")

    for i in range(NTMP):
        c[i % 6].put_object(Bucket=b, Key="tmp/%02d" % i, Body=b"x" * i)
    for i in range(6):
        c[i].put_object(Bucket=b, Key="keep/%d" % i, Body=b"keep")
    c[1].put_object(Bucket=b, Key="t/a", Body=b"a", Tagging="class=debug")
    c[4].put_object(Bucket=b, Key="t/b", Body=b"b", Tagging="class=keep")
    up = c[2].create_multipart_upload(Bucket=b, Key="up/x")["UploadId"]
    c[2].upload_part(Bucket=b, Key="up/x", UploadId=up, PartNumber=1, Body=b"p" * 1024)
    c[5].create_multipart_upload(Bucket=b, Key="other/y")
    check(len(keys(c[4], b)) == NTMP + 8 and uploads(c[1], b) == ["other/y", "up/x"],
          "objects written through every node, two uploads started")

    want = sorted(["keep/%d" % i for i in range(6)] + ["t/b"])
    end = time.time() + 25
    while time.time() < end:
        if sorted(keys(c[i % 6], b)) == want and uploads(c[(i + 1) % 6], b) == ["other/y"]:
            break
        time.sleep(0.5)
    check(sorted(keys(c[5], b)) == want, "tmp/ and the tagged object expired (listed via n6)")
    check(uploads(c[4], b) == ["other/y"], "the stale upload was aborted, the other kept (n5)")
    # Each record is examined by one node: over passes that all started after the expirations,
    # the nodes' counts add up to what is left (7 objects, 1 upload), not six times that.
    since, sums = time.time() * 1000, []
    end = time.time() + 15
    while time.time() < end:
        last = last_passes(eps)
        if all(p and p["start_ms"] > since for p in last):
            sums.append(sum(p["examined"] for p in last))
            if sums[-1] == 8:
                break
            since = time.time() * 1000
        time.sleep(0.5)
    check(sums and sums[-1] == 8,
          "each remaining record examined by one node per pass (sums %s)" % sums)
    check(err(lambda: c[3].get_object(Bucket=b, Key="tmp/00"))[1] == 404 and
          c[3].get_object(Bucket=b, Key="t/b")["Body"].read() == b"b",
          "an expired object is gone, a kept one reads back (n4)")
    expiration_header(c, b)
    noncurrent(c, eps, b + "-v")
    c[0].delete_bucket_lifecycle(Bucket=b)
    check(until(lambda: rule_ids(c[2], b) is None) and
          err(lambda: c[2].get_bucket_lifecycle_configuration(Bucket=b))[0] ==
          "NoSuchLifecycleConfiguration", "deleted through n1, none through n3")
    check(until(lambda: "Expiration" not in c[4].head_object(Bucket=b, Key="keep/0")),
          "no x-amz-expiration once the configuration is deleted (n5)")


def versions(cl, b):
    r = cl.list_object_versions(Bucket=b)
    return sorted((v["Key"], v["VersionId"]) for v in r.get("Versions", []))


def noncurrent(c, eps, b):
    """NoncurrentVersionExpiration on a bucket with Object Lock (versioned): a key's noncurrent
    versions expire but for the NewerNoncurrentVersions newest, a locked one stays; under m/ the
    noncurrent version goes and then the delete marker left alone (ExpiredObjectDeleteMarker)."""
    c[0].create_bucket(Bucket=b, ObjectLockEnabledForBucket=True)
    rule = {"Rules": [{"ID": "dm", "Status": "Enabled", "Filter": {"Prefix": "m/"},
                       "Expiration": {"ExpiredObjectDeleteMarker": True},
                       "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
                      {"ID": "nc", "Status": "Enabled", "Filter": {"Prefix": ""},
                       "NoncurrentVersionExpiration": {"NoncurrentDays": 1,
                                                       "NewerNoncurrentVersions": 1}}]}
    ids = {}
    for k, n in (("a", 4), ("l", 3), ("s", 1)):
        ids[k] = []
        for i in range(n):
            kw = {}
            if k == "l" and i == 0:
                kw = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate":
                      datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)}
            ids[k].append(c[(i + len(k)) % 6].put_object(Bucket=b, Key=k, Body=b"v%d" % i,
                                                          **kw)["VersionId"])
    c[2].put_object(Bucket=b, Key="m/x", Body=b"gone")
    c[3].delete_object(Bucket=b, Key="m/x")
    check([(v["Key"], v["IsLatest"]) for v in
           c[4].list_object_versions(Bucket=b, Prefix="m/").get("DeleteMarkers", [])] ==
          [("m/x", True)], "m/x deleted: a delete marker over its version")
    c[1].put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=rule)
    want = sorted([("a", ids["a"][3]), ("a", ids["a"][2])] + [("l", v) for v in ids["l"]] +
                  [("s", ids["s"][0])])
    check(until(lambda: versions(c[2], b) == want, 20),
          "noncurrent versions expired but the newest one of each key and a locked one (n3)")
    check(until(lambda: not c[0].list_object_versions(Bucket=b, Prefix="m/").get("DeleteMarkers")),
          "the delete marker left alone is removed (ExpiredObjectDeleteMarker, n1)")
    check(c[5].get_object(Bucket=b, Key="a")["VersionId"] == ids["a"][3],
          "the latest version stays the latest (n6)")
    check(until(lambda: sum(p["refused_locked"] for p in last_passes(eps) if p) >= 1, 10),
          "a node's last pass counted the locked version's deletion refused")
    c[0].delete_bucket_lifecycle(Bucket=b)


def rule_ids(cl, b):
    """The rule IDs of b's lifecycle configuration as cl's node has it, sorted; None for none."""
    try:
        return sorted(r["ID"] for r in cl.get_bucket_lifecycle_configuration(Bucket=b)["Rules"])
    except cl.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "NoSuchLifecycleConfiguration":
            return None
        raise


def until(cond, secs=5):
    """cond() true within secs (a node's copy of the bucket document follows etcd)."""
    end = time.time() + secs
    while not cond():
        if time.time() > end:
            return False
        time.sleep(0.2)
    return True


def expiration_header(c, b):
    """x-amz-expiration on cluster nodes: n5 parsed the rules already (no rule selects keep/),
    a configuration put through n2 is followed, and PUT, GET and HEAD all carry the header."""
    check("Expiration" not in c[4].head_object(Bucket=b, Key="keep/0"),
          "no x-amz-expiration for an object no rule selects (n5)")
    later = {"Rules": [{"ID": "keep-later", "Status": "Enabled", "Filter": {"Prefix": "keep/"},
                        "Expiration": {"Days": 100000}}]}
    c[1].put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=later)
    want = 'rule-id="keep-later"'
    check(until(lambda: want in c[4].head_object(Bucket=b, Key="keep/0").get("Expiration", "")),
          "a configuration put through n2 gives x-amz-expiration on HEAD through n5")
    got = c[4].get_object(Bucket=b, Key="keep/1")
    check(want in got.get("Expiration", "") and "expiry-date=" in got["Expiration"],
          "GET through n5 carries it too: %s" % got.get("Expiration"))
    check(until(lambda: want in c[3].put_object(Bucket=b, Key="keep/new", Body=b"n")
                .get("Expiration", "")), "PUT through n4 answers it")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # one line that says what broke, not a truncated traceback
        import traceback
        fail("%s at line %d" % (repr(e)[:300], traceback.extract_tb(e.__traceback__)[-1].lineno))
