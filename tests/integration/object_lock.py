#!/usr/bin/env python3
"""Object Lock with boto3 (docs/object-lock.md), run by test_object_lock.sh.

`setup`: buckets with lock, S3's errors, versions under COMPLIANCE, GOVERNANCE and a legal hold,
and every deletion path tried against them (each must fail with 403 AccessDenied and leave the
version readable); the version ids go to LOCK_STATE. `after-restart`: the same versions are still
there with their locks, the deletions still fail, an expired retention is deletable, a released
legal hold is deletable. Needs CAIRN_ENDPOINT, the root keys, and ALICE_* (may delete versions and
set retention, not bypass) and BOB_* (may also s3:BypassGovernanceRetention) keys. Prints one
`ok -` / `FAIL -` line per check; exits 1 when any failed.
"""
import datetime
import json
import os
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

EP = os.environ["CAIRN_ENDPOINT"]
STATE = os.environ["LOCK_STATE"]
PREFIX = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "")
FAILS = 0
PATHS = []  # every deletion path tried, listed at the end


def client(ak="CAIRN_ACCESS_KEY", sk="CAIRN_SECRET_KEY"):
    return boto3.client(
        "s3", endpoint_url=EP, region_name="us-east-1", aws_access_key_id=os.environ[ak],
        aws_secret_access_key=os.environ[sk],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


S3 = client()


def check(name, cond, detail=""):
    global FAILS
    if cond:
        print("ok - " + name)
    else:
        FAILS += 1
        print("FAIL - %s %s" % (name, detail))


def code_of(fn):
    try:
        fn()
        return None, 200, ""
    except ClientError as e:
        err = e.response["Error"]
        return err["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"], err.get("Message", "")


def fails(name, want, fn):
    code, status, msg = code_of(fn)
    check("%s -> %s" % (name, want), code == want, "got %s %s %s" % (code, status, msg))
    return msg


def later(seconds):
    return datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)


def survives(path, b, k, vid):
    """A deletion path was tried: the version must still be readable."""
    PATHS.append(path)
    try:
        S3.head_object(Bucket=b, Key=k, VersionId=vid)
        check("  %s/%s %s survives: %s" % (b, k, vid[:8], path), True)
    except ClientError as e:
        check("  %s/%s survives: %s" % (b, k, path), False, str(e))


def denied_delete(path, b, k, vid, fn):
    msg = fails(path, "AccessDenied", fn)
    check("  S3's message", "object protected by object lock" in msg, msg)
    survives(path, b, k, vid)


def errors_and_config(L):
    plain = PREFIX + "lock-plain"
    S3.create_bucket(Bucket=plain)
    fails("GetObjectLockConfiguration without one", "ObjectLockConfigurationNotFoundError",
          lambda: S3.get_object_lock_configuration(Bucket=plain))
    fails("PUT with lock headers on a bucket without lock", "InvalidRequest",
          lambda: S3.put_object(Bucket=plain, Key="x", Body=b"x", ObjectLockMode="GOVERNANCE",
                                ObjectLockRetainUntilDate=later(60)))
    cfg = {"ObjectLockEnabled": "Enabled"}
    fails("PutObjectLockConfiguration on an unversioned bucket", "InvalidBucketState",
          lambda: S3.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration=cfg))
    S3.put_bucket_versioning(Bucket=plain, VersioningConfiguration={"Status": "Enabled"})
    S3.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration=cfg)
    got = S3.get_object_lock_configuration(Bucket=plain)["ObjectLockConfiguration"]
    check("lock enabled on an existing versioned bucket", got.get("ObjectLockEnabled") == "Enabled",
          str(got))

    check("a bucket created with lock is versioned",
          S3.get_bucket_versioning(Bucket=L).get("Status") == "Enabled")
    got = S3.get_object_lock_configuration(Bucket=L)["ObjectLockConfiguration"]
    check("its configuration: Enabled, no rule", got == {"ObjectLockEnabled": "Enabled"}, str(got))
    fails("suspending a locked bucket", "InvalidBucketState",
          lambda: S3.put_bucket_versioning(Bucket=L,
                                           VersioningConfiguration={"Status": "Suspended"}))
    for bad in ({"ObjectLockEnabled": "Enabled",
                 "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1, "Years": 1}}},
                {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Days": 1}}}):
        fails("bad default retention %s" % json.dumps(bad["Rule"]), "MalformedXML",
              lambda: S3.put_object_lock_configuration(Bucket=plain, ObjectLockConfiguration=bad))
    fails("default retention of 0 days", "InvalidArgument",
          lambda: S3.put_object_lock_configuration(
              Bucket=plain, ObjectLockConfiguration={
                  "ObjectLockEnabled": "Enabled",
                  "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 0}}}))
    fails("a mode without a date", "InvalidArgument",
          lambda: S3.put_object(Bucket=L, Key="x", Body=b"x", ObjectLockMode="GOVERNANCE"))
    fails("a date in the past", "InvalidArgument",
          lambda: S3.put_object(Bucket=L, Key="x", Body=b"x", ObjectLockMode="GOVERNANCE",
                                ObjectLockRetainUntilDate=later(-60)))
    fails("legal hold MAYBE", "InvalidArgument",
          lambda: S3.put_object(Bucket=L, Key="x", Body=b"x", ObjectLockLegalHoldStatus="MAYBE"))
    bare = client()  # this client sends neither Content-MD5 nor a checksum on PutObject
    from botocore.handlers import conditionally_calculate_md5
    bare.meta.events.unregister("before-call.s3.PutObject", conditionally_calculate_md5)
    fails("lock headers without Content-MD5 or a checksum", "InvalidRequest",
          lambda: bare.put_object(Bucket=L, Key="x", Body=b"x", ObjectLockMode="GOVERNANCE",
                                  ObjectLockRetainUntilDate=later(60)))
    v = S3.put_object(Bucket=L, Key="nolock", Body=b"x")["VersionId"]
    fails("GetObjectRetention of a version without one", "NoSuchObjectLockConfiguration",
          lambda: S3.get_object_retention(Bucket=L, Key="nolock", VersionId=v))
    hold = S3.get_object_legal_hold(Bucket=L, Key="nolock", VersionId=v)["LegalHold"]
    check("GetObjectLegalHold of a version without one: OFF", hold == {"Status": "OFF"}, str(hold))

    # the bucket's default retention, applied to versions written without lock headers
    d = PREFIX + "lock-default"
    S3.create_bucket(Bucket=d, ObjectLockEnabledForBucket=True)
    S3.put_object_lock_configuration(Bucket=d, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 2}}})
    got = S3.get_object_lock_configuration(Bucket=d)["ObjectLockConfiguration"]
    check("default retention read back",
          got.get("Rule", {}).get("DefaultRetention") == {"Mode": "GOVERNANCE", "Days": 2}, str(got))
    before = datetime.datetime.now(datetime.timezone.utc)
    h = S3.put_object(Bucket=d, Key="k", Body=b"dflt")
    head = S3.head_object(Bucket=d, Key="k")
    until = head.get("ObjectLockRetainUntilDate")
    check("a new version takes the default mode", head.get("ObjectLockMode") == "GOVERNANCE",
          str(head.get("ObjectLockMode")))
    check("  and 2 days", until is not None and
          abs((until - before).total_seconds() - 2 * 86400) < 60, str(until))
    denied_delete("DeleteObject by version under the default retention", d, "k", h["VersionId"],
                  lambda: S3.delete_object(Bucket=d, Key="k", VersionId=h["VersionId"]))
    up = S3.create_multipart_upload(Bucket=d, Key="mp")
    p = S3.upload_part(Bucket=d, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"part")
    S3.complete_multipart_upload(Bucket=d, Key="mp", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    check("CompleteMultipartUpload takes the default",
          S3.head_object(Bucket=d, Key="mp").get("ObjectLockMode") == "GOVERNANCE")


def lock_headers_of(head):
    return sorted(k for k in ("ObjectLockMode", "ObjectLockRetainUntilDate",
                              "ObjectLockLegalHoldStatus") if k in head)


def lock_permissions(L, far):
    """S3's permissions: lock headers on a write need s3:PutObjectRetention / PutObjectLegalHold,
    and GET/HEAD show them only to callers allowed s3:GetObjectRetention / GetObjectLegalHold.
    alice may set and read retention (not holds), bob neither."""
    base = ["s3:PutObject", "s3:GetObject"]
    S3.put_bucket_policy(Bucket=L, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/alice",
                                                  "arn:aws:iam::000000000000:user/bob"]},
         "Action": base, "Resource": "arn:aws:s3:::%s/perm/*" % L},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/alice"},
         "Action": ["s3:PutObjectRetention", "s3:GetObjectRetention"],
         "Resource": "arn:aws:s3:::%s/perm/*" % L}]}))
    alice = client("ALICE_AK", "ALICE_SK")
    bob = client("BOB_AK", "BOB_SK")
    ret = {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": far}
    hold = {"ObjectLockLegalHoldStatus": "ON"}
    bob.put_object(Bucket=L, Key="perm/plain", Body=b"x")
    check("bob PutObject without lock headers", True)
    fails("bob PutObject with retention headers (no s3:PutObjectRetention)", "AccessDenied",
          lambda: bob.put_object(Bucket=L, Key="perm/b1", Body=b"x", **ret))
    fails("bob PutObject with a legal hold header (no s3:PutObjectLegalHold)", "AccessDenied",
          lambda: bob.put_object(Bucket=L, Key="perm/b2", Body=b"x", **hold))
    fails("bob CopyObject with retention headers", "AccessDenied",
          lambda: bob.copy_object(Bucket=L, Key="perm/b3",
                                  CopySource={"Bucket": L, "Key": "perm/plain"}, **ret))
    bob.copy_object(Bucket=L, Key="perm/b5", CopySource={"Bucket": L, "Key": "perm/plain"})
    check("bob CopyObject of the same source without lock headers", True)
    fails("bob CreateMultipartUpload with a legal hold", "AccessDenied",
          lambda: bob.create_multipart_upload(Bucket=L, Key="perm/b4", **hold))
    fails("  nothing written by the refused writes", "404",
          lambda: S3.head_object(Bucket=L, Key="perm/b1"))
    alice.put_object(Bucket=L, Key="perm/a1", Body=b"x", **ret)
    check("alice PutObject with retention headers (allowed)",
          S3.head_object(Bucket=L, Key="perm/a1").get("ObjectLockMode") == "GOVERNANCE")
    fails("alice PutObject with a legal hold header (no s3:PutObjectLegalHold)", "AccessDenied",
          lambda: alice.put_object(Bucket=L, Key="perm/a2", Body=b"x", **ret, **hold))
    S3.put_object(Bucket=L, Key="perm/both", Body=b"both", **ret, **hold)
    want = {"root": ["ObjectLockLegalHoldStatus", "ObjectLockMode", "ObjectLockRetainUntilDate"],
            "alice": ["ObjectLockMode", "ObjectLockRetainUntilDate"], "bob": []}
    for who, c in (("root", S3), ("alice", alice), ("bob", bob)):
        head = c.head_object(Bucket=L, Key="perm/both")
        check("HEAD as %s shows %s" % (who, want[who] or "no lock headers"),
              lock_headers_of(head) == want[who], str(lock_headers_of(head)))
        got = c.get_object(Bucket=L, Key="perm/both")
        check("GET as %s shows the same" % who, lock_headers_of(got) == want[who]
              and got["Body"].read() == b"both", str(lock_headers_of(got)))


def setup():
    st = {}
    L = st["bucket"] = PREFIX + "lock-main"
    S3.create_bucket(Bucket=L, ObjectLockEnabledForBucket=True)
    errors_and_config(L)

    far = later(3600)
    st["c"] = S3.put_object(Bucket=L, Key="c", Body=b"compliance", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=far)["VersionId"]
    st["g"] = S3.put_object(Bucket=L, Key="g", Body=b"governance", ObjectLockMode="GOVERNANCE",
                            ObjectLockRetainUntilDate=far)["VersionId"]
    st["g2"] = S3.put_object(Bucket=L, Key="g2", Body=b"governance2", ObjectLockMode="GOVERNANCE",
                             ObjectLockRetainUntilDate=far)["VersionId"]
    st["h"] = S3.put_object(Bucket=L, Key="h", Body=b"held",
                            ObjectLockLegalHoldStatus="ON")["VersionId"]
    st["e"] = S3.put_object(Bucket=L, Key="e", Body=b"expires", ObjectLockMode="COMPLIANCE",
                            ObjectLockRetainUntilDate=later(4))["VersionId"]
    st["e_until"] = time.time() + 4
    head = S3.head_object(Bucket=L, Key="c")
    check("HEAD: x-amz-object-lock-mode", head.get("ObjectLockMode") == "COMPLIANCE")
    check("HEAD: x-amz-object-lock-retain-until-date",
          abs((head["ObjectLockRetainUntilDate"] - far).total_seconds()) < 1,
          str(head.get("ObjectLockRetainUntilDate")))
    check("HEAD: x-amz-object-lock-legal-hold",
          S3.head_object(Bucket=L, Key="h").get("ObjectLockLegalHoldStatus") == "ON")
    got = S3.get_object(Bucket=L, Key="g")
    check("GET: the lock headers too", got.get("ObjectLockMode") == "GOVERNANCE")
    ret = S3.get_object_retention(Bucket=L, Key="c", VersionId=st["c"])["Retention"]
    check("GetObjectRetention", ret["Mode"] == "COMPLIANCE", str(ret))

    c, g, h = st["c"], st["g"], st["h"]
    denied_delete("DeleteObject of a COMPLIANCE version", L, "c", c,
                  lambda: S3.delete_object(Bucket=L, Key="c", VersionId=c))
    denied_delete("DeleteObject of a COMPLIANCE version with the GOVERNANCE bypass (root)", L, "c",
                  c, lambda: S3.delete_object(Bucket=L, Key="c", VersionId=c,
                                              BypassGovernanceRetention=True))
    denied_delete("DeleteObject of a GOVERNANCE version without the bypass header", L, "g", g,
                  lambda: S3.delete_object(Bucket=L, Key="g", VersionId=g))
    denied_delete("DeleteObject of a version under legal hold, with the bypass", L, "h", h,
                  lambda: S3.delete_object(Bucket=L, Key="h", VersionId=h,
                                           BypassGovernanceRetention=True))
    res = S3.delete_objects(Bucket=L, Delete={"Objects": [
        {"Key": "c", "VersionId": c}, {"Key": "g", "VersionId": g}, {"Key": "h", "VersionId": h}]})
    codes = sorted(e["Code"] for e in res.get("Errors", []))
    check("DeleteObjects of the three versions: three AccessDenied",
          codes == ["AccessDenied"] * 3 and not res.get("Deleted"), str(res))
    for k, v in (("c", c), ("g", g), ("h", h)):
        survives("DeleteObjects with VersionId", L, k, v)
    fails("shortening a COMPLIANCE retention", "AccessDenied",
          lambda: S3.put_object_retention(Bucket=L, Key="c", VersionId=c, Retention={
              "Mode": "COMPLIANCE", "RetainUntilDate": later(1800)}))
    fails("downgrading COMPLIANCE to GOVERNANCE (with bypass)", "AccessDenied",
          lambda: S3.put_object_retention(Bucket=L, Key="c", VersionId=c, Retention={
              "Mode": "GOVERNANCE", "RetainUntilDate": later(7200)},
              BypassGovernanceRetention=True))
    fails("shortening a GOVERNANCE retention without the bypass", "AccessDenied",
          lambda: S3.put_object_retention(Bucket=L, Key="g", VersionId=g, Retention={
              "Mode": "GOVERNANCE", "RetainUntilDate": later(1800)}))
    ret = S3.get_object_retention(Bucket=L, Key="c", VersionId=c)["Retention"]
    check("  the retention is unchanged", abs((ret["RetainUntilDate"] - far).total_seconds()) < 1,
          str(ret))
    S3.put_object_retention(Bucket=L, Key="c", VersionId=c, Retention={
        "Mode": "COMPLIANCE", "RetainUntilDate": far + datetime.timedelta(seconds=60)})
    check("lengthening a COMPLIANCE retention is allowed", True)
    PATHS.append("PutObjectRetention shortening / downgrading")

    # writes over the key make new versions; the protected one stays
    up = S3.create_multipart_upload(Bucket=L, Key="c")
    p = S3.upload_part(Bucket=L, Key="c", UploadId=up["UploadId"], PartNumber=1, Body=b"mp")
    S3.complete_multipart_upload(Bucket=L, Key="c", UploadId=up["UploadId"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p["ETag"]}]})
    survives("CompleteMultipartUpload over the key", L, "c", c)
    S3.copy_object(Bucket=L, Key="c", CopySource={"Bucket": L, "Key": "g"})
    survives("CopyObject over the key", L, "c", c)
    S3.put_object(Bucket=L, Key="c", Body=b"overwrite")
    survives("PutObject over the key", L, "c", c)
    S3.delete_object(Bucket=L, Key="c")
    survives("DeleteObject without versionId (adds a delete marker)", L, "c", c)
    lock_headers_ok = S3.copy_object(Bucket=L, Key="copied", CopySource={"Bucket": L, "Key": "g"},
                                     ObjectLockMode="COMPLIANCE",
                                     ObjectLockRetainUntilDate=far)
    check("CopyObject with lock headers",
          S3.head_object(Bucket=L, Key="copied").get("ObjectLockMode") == "COMPLIANCE",
          str(lock_headers_ok))

    # GOVERNANCE: the bypass counts only with the permission
    acts = ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion",
            "s3:GetObjectRetention", "s3:PutObjectRetention"]
    S3.put_bucket_policy(Bucket=L, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/alice",
                                                  "arn:aws:iam::000000000000:user/bob"]},
         "Action": acts, "Resource": "arn:aws:s3:::%s/*" % L},
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:user/bob"},
         "Action": "s3:BypassGovernanceRetention", "Resource": "arn:aws:s3:::%s/*" % L}]}))
    alice = client("ALICE_AK", "ALICE_SK")
    bob = client("BOB_AK", "BOB_SK")
    denied_delete("alice (no s3:BypassGovernanceRetention) with the bypass header", L, "g", g,
                  lambda: alice.delete_object(Bucket=L, Key="g", VersionId=g,
                                              BypassGovernanceRetention=True))
    fails("alice shortening GOVERNANCE with the bypass header", "AccessDenied",
          lambda: alice.put_object_retention(Bucket=L, Key="g", VersionId=g, Retention={
              "Mode": "GOVERNANCE", "RetainUntilDate": later(600)},
              BypassGovernanceRetention=True))
    denied_delete("bob (allowed) without the bypass header", L, "g2", st["g2"],
                  lambda: bob.delete_object(Bucket=L, Key="g2", VersionId=st["g2"]))
    bob.delete_object(Bucket=L, Key="g2", VersionId=st["g2"], BypassGovernanceRetention=True)
    fails("  bob with the bypass header deleted it", "404",
          lambda: S3.head_object(Bucket=L, Key="g2", VersionId=st["g2"]))

    lock_permissions(L, far)

    # a null version locked through PutObjectRetention (lock enabled on a versioned bucket)
    N = st["nbucket"] = PREFIX + "lock-null"
    S3.create_bucket(Bucket=N)
    S3.put_object(Bucket=N, Key="n", Body=b"null version")
    S3.put_bucket_versioning(Bucket=N, VersioningConfiguration={"Status": "Enabled"})
    S3.put_object_lock_configuration(Bucket=N,
                                     ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"})
    S3.put_object_retention(Bucket=N, Key="n", VersionId="null",
                            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": far})
    denied_delete("DeleteObject of a locked null version", N, "n", "null",
                  lambda: S3.delete_object(Bucket=N, Key="n", VersionId="null"))
    fails("suspending versioning (which would let a write replace the null version)",
          "InvalidBucketState",
          lambda: S3.put_bucket_versioning(Bucket=N,
                                           VersioningConfiguration={"Status": "Suspended"}))
    S3.put_object(Bucket=N, Key="n", Body=b"newer")
    survives("PutObject over a locked null version", N, "n", "null")

    # legal hold released: deletable
    h2 = S3.put_object(Bucket=L, Key="h2", Body=b"held2", ObjectLockLegalHoldStatus="ON")
    S3.put_object_legal_hold(Bucket=L, Key="h2", VersionId=h2["VersionId"],
                             LegalHold={"Status": "OFF"})
    hold = S3.get_object_legal_hold(Bucket=L, Key="h2", VersionId=h2["VersionId"])["LegalHold"]
    check("legal hold OFF read back", hold == {"Status": "OFF"}, str(hold))
    S3.delete_object(Bucket=L, Key="h2", VersionId=h2["VersionId"])
    fails("  the released version deleted", "404",
          lambda: S3.head_object(Bucket=L, Key="h2", VersionId=h2["VersionId"]))
    # legal hold on an unlocked version (no retention): protects it
    S3.put_object_legal_hold(Bucket=L, Key="nolock", LegalHold={"Status": "ON"})
    st["nolock"] = S3.head_object(Bucket=L, Key="nolock")["VersionId"]
    denied_delete("DeleteObject of a version put on hold afterwards", L, "nolock", st["nolock"],
                  lambda: S3.delete_object(Bucket=L, Key="nolock", VersionId=st["nolock"]))

    # lifecycle (test clock: a day is a second) expires the key: a marker, the version stays
    st["lc"] = S3.put_object(Bucket=L, Key="lc/x", Body=b"lifecycle", ObjectLockMode="COMPLIANCE",
                             ObjectLockRetainUntilDate=far)["VersionId"]
    S3.put_bucket_lifecycle_configuration(Bucket=L, LifecycleConfiguration={"Rules": [{
        "ID": "lc", "Status": "Enabled", "Filter": {"Prefix": "lc/"},
        "Expiration": {"Days": 1}}]})
    deadline = time.time() + 20
    marker = False
    while time.time() < deadline and not marker:
        vs = S3.list_object_versions(Bucket=L, Prefix="lc/")
        marker = any(m.get("IsLatest") for m in vs.get("DeleteMarkers", []))
        if not marker:
            time.sleep(0.5)  # polling the worker's result, bounded by the deadline
    check("lifecycle expired lc/x (a delete marker on top)", marker)
    survives("lifecycle expiration", L, "lc/x", st["lc"])
    with open(STATE, "w") as f:
        json.dump(st, f)


def after_restart():
    with open(STATE) as f:
        st = json.load(f)
    L, N = st["bucket"], st["nbucket"]
    for k in ("c", "g", "h", "lc", "nolock"):
        key = "lc/x" if k == "lc" else k
        survives("a restart", L, key, st[k])
    survives("a restart", N, "n", "null")
    head = S3.head_object(Bucket=L, Key="g", VersionId=st["g"])
    check("after the restart: GOVERNANCE kept", head.get("ObjectLockMode") == "GOVERNANCE")
    check("after the restart: legal hold kept",
          S3.head_object(Bucket=L, Key="h", VersionId=st["h"]).get("ObjectLockLegalHoldStatus")
          == "ON")
    denied_delete("DeleteObject of the COMPLIANCE version after the restart", L, "c", st["c"],
                  lambda: S3.delete_object(Bucket=L, Key="c", VersionId=st["c"],
                                           BypassGovernanceRetention=True))
    res = S3.delete_objects(Bucket=L, Delete={"Objects": [
        {"Key": "g", "VersionId": st["g"]}, {"Key": "lc/x", "VersionId": st["lc"]}]})
    check("DeleteObjects after the restart: refused",
          len(res.get("Errors", [])) == 2 and not res.get("Deleted"), str(res))
    survives("DeleteObjects after the restart", L, "g", st["g"])
    wait = st["e_until"] - time.time()
    if wait > 0:
        time.sleep(wait + 0.2)  # the retention's own end: the wall clock is what it is about
    S3.delete_object(Bucket=L, Key="e", VersionId=st["e"])
    fails("an expired retention: the version deleted", "404",
          lambda: S3.head_object(Bucket=L, Key="e", VersionId=st["e"]))
    S3.put_object_legal_hold(Bucket=L, Key="h", VersionId=st["h"], LegalHold={"Status": "OFF"})
    S3.delete_object(Bucket=L, Key="h", VersionId=st["h"])
    fails("legal hold released after the restart: deleted", "404",
          lambda: S3.head_object(Bucket=L, Key="h", VersionId=st["h"]))


def main():
    {"setup": setup, "after-restart": after_restart}[sys.argv[1]]()
    print("# deletion paths tried: " + "; ".join(sorted(set(PATHS))))
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
