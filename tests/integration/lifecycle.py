"""Bucket lifecycle through boto3 and raw signed requests (endpoint in CAIRN_ENDPOINT, credentials
in the AWS_* / CAIRN_* env), run by test_lifecycle.sh against a server whose lifecycle day is one
second ([lifecycle] day_s = 1, interval_s = 1, rate = 50). Prints one `ok -` / `FAIL -` line per
check; exit status 1 if any failed.

  lifecycle.py rules       configuration API and its errors; objects expiring by prefix, tag, size
                           and a past date, others kept; a stale multipart upload aborted; the
                           worker's counters in /admin/status
  lifecycle.py bulk-start  150 objects under a never-due rule; returns once the worker's pass is
                           part-way through them (the caller then restarts the server)
  lifecycle.py bulk-check  after the restart: the pass resumed where it stood (started before the
                           restart, every object examined exactly once)
"""

import base64
import hashlib
import json
import os
import sys
import time

import boto3
import s3raw
from botocore.config import Config
from botocore.exceptions import ClientError
from tcheck import FAILS, check

PREFIX = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "")
RULES_BUCKET = PREFIX + "lc-rules"
BULK_BUCKET = PREFIX + "lc-bulk"
NBULK = 150


def client():
    return boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1",
                        config=Config(retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))


def status():
    st, _, body = s3raw.request("GET", "/admin/status")
    return json.loads(body)["lifecycle"] if st == 200 else None


def wait_for(desc, fn, timeout=20):
    """Poll fn (a readiness condition, not a delay) until it returns a true value or time runs out."""
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    check(desc, False, "not within %d s" % timeout)
    return None


def put_raw(bucket, xml, md5=True):
    body = xml.encode()
    h = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()} if md5 else {}
    return s3raw.request("PUT", "/" + bucket, {"lifecycle": ""}, body, h)


def code_of(resp):
    st, _, body = resp
    b = body.decode(errors="replace")
    s, e = b.find("<Code>"), b.find("</Code>")
    return st, b[s + 6:e] if s >= 0 and e > s else ""


def rule(body, rid="r"):
    return ("<LifecycleConfiguration><Rule><ID>%s</ID><Status>Enabled</Status>%s</Rule>"
            "</LifecycleConfiguration>" % (rid, body))


def check_errors(b):
    cases = [
        ("no Content-MD5", None, (400, "InvalidRequest")),
        ("not XML", "nonsense", (400, "MalformedXML")),
        ("no rule", "<LifecycleConfiguration/>", (400, "MalformedXML")),
        ("no Status", "<LifecycleConfiguration><Rule><Filter/><Expiration><Days>1</Days>"
         "</Expiration></Rule></LifecycleConfiguration>", (400, "MalformedXML")),
        ("Status other", rule("<Filter/><Expiration><Days>1</Days></Expiration>").replace(
            "Enabled", "On"), (400, "MalformedXML")),
        ("Filter and Prefix", rule("<Filter/><Prefix>a</Prefix><Expiration><Days>1</Days>"
                                   "</Expiration>"), (400, "MalformedXML")),
        ("Filter with two predicates", rule("<Filter><Prefix>a</Prefix><ObjectSizeLessThan>5"
                                            "</ObjectSizeLessThan></Filter><Expiration><Days>1"
                                            "</Days></Expiration>"), (400, "MalformedXML")),
        ("Days 0", rule("<Filter/><Expiration><Days>0</Days></Expiration>"),
         (400, "InvalidArgument")),
        ("Days and Date", rule("<Filter/><Expiration><Days>1</Days><Date>2020-01-01T00:00:00Z"
                               "</Date></Expiration>"), (400, "MalformedXML")),
        ("Date not at midnight", rule("<Filter/><Expiration><Date>2020-01-01T10:00:00Z</Date>"
                                      "</Expiration>"), (400, "InvalidArgument")),
        ("no action", rule("<Filter/>"), (400, "InvalidRequest")),
        ("ID too long", rule("<Filter/><Expiration><Days>1</Days></Expiration>", "i" * 256),
         (400, "InvalidArgument")),
        ("duplicate ID", "<LifecycleConfiguration>" + 2 * (
            "<Rule><ID>same</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days>"
            "</Expiration></Rule>") + "</LifecycleConfiguration>", (400, "InvalidArgument")),
        ("upload abort with tags", rule("<Filter><Tag><Key>a</Key><Value>b</Value></Tag></Filter>"
                                        "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1"
                                        "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"),
         (400, "InvalidRequest")),
        ("NoncurrentDays 0", rule("<Filter/><NoncurrentVersionExpiration><NoncurrentDays>0"
                                  "</NoncurrentDays></NoncurrentVersionExpiration>"),
         (400, "InvalidArgument")),
        ("Transition", rule("<Filter/><Transition><Days>1</Days><StorageClass>GLACIER"
                            "</StorageClass></Transition>"), (501, "NotImplemented")),
        ("1001 rules", "<LifecycleConfiguration>" + "".join(
            "<Rule><ID>r%d</ID><Status>Enabled</Status><Filter/><Expiration><Days>1</Days>"
            "</Expiration></Rule>" % i for i in range(1001)) + "</LifecycleConfiguration>",
         (400, "InvalidRequest")),
    ]
    for desc, xml, want in cases:
        got = code_of(put_raw(b, xml if xml is not None else rule(
            "<Filter/><Expiration><Days>1</Days></Expiration>"), md5=xml is not None))
        check("PUT lifecycle refused: %s -> %d %s" % (desc, want[0], want[1]), got == want, got)


CONFIG = {"Rules": [
    {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
     "Expiration": {"Days": 2}},
    {"ID": "tagged", "Status": "Enabled", "Filter": {"Tag": {"Key": "expire", "Value": "yes"}},
     "Expiration": {"Days": 1}},
    {"ID": "big", "Status": "Enabled",
     "Filter": {"And": {"Prefix": "size/", "ObjectSizeGreaterThan": 1000}},
     "Expiration": {"Days": 1}},
    {"ID": "dated", "Status": "Enabled", "Filter": {"Prefix": "dated/"},
     "Expiration": {"Date": "2020-01-01T00:00:00Z"}},
    {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": "mpu/"},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": "nc/"},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 2}},
    {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"},
     "Expiration": {"Days": 1}},
]}


def exists(s3, b, k):
    try:
        s3.head_object(Bucket=b, Key=k)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey"):
            return False
        raise


def rules(s3):
    b = RULES_BUCKET
    s3.create_bucket(Bucket=b)
    try:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
        check("GET lifecycle of a bucket without one: NoSuchLifecycleConfiguration", False)
    except ClientError as e:
        check("GET lifecycle of a bucket without one: NoSuchLifecycleConfiguration",
              e.response["Error"]["Code"] == "NoSuchLifecycleConfiguration", e)
    check_errors(b)
    got = code_of(put_raw(PREFIX + "lc-nobucket",
                          rule("<Filter/><Expiration><Days>1</Days></Expiration>")))
    check("PUT lifecycle on a missing bucket: NoSuchBucket", got == (404, "NoSuchBucket"), got)

    # Objects first, so the worker's first look at them is after the rules exist.
    body_small, body_big = b"s" * 10, b"B" * 2000
    s3.put_object(Bucket=b, Key="tmp/a", Body=b"x")
    s3.put_object(Bucket=b, Key="keep/a", Body=b"x")
    s3.put_object(Bucket=b, Key="other", Body=b"x")
    s3.put_object(Bucket=b, Key="t/yes", Body=b"x", Tagging="expire=yes")
    s3.put_object(Bucket=b, Key="t/no", Body=b"x", Tagging="expire=no")
    s3.put_object(Bucket=b, Key="size/big", Body=body_big)
    s3.put_object(Bucket=b, Key="size/small", Body=body_small)
    s3.put_object(Bucket=b, Key="dated/x", Body=b"x")
    up = s3.create_multipart_upload(Bucket=b, Key="mpu/stale")["UploadId"]
    s3.upload_part(Bucket=b, Key="mpu/stale", UploadId=up, PartNumber=1, Body=b"p" * 1000)
    other_up = s3.create_multipart_upload(Bucket=b, Key="other-upload")["UploadId"]

    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=CONFIG)
    got = s3.get_bucket_lifecycle_configuration(Bucket=b)["Rules"]
    by_id = {r["ID"]: r for r in got}
    check("GET lifecycle returns every rule", sorted(by_id) == sorted(
        r["ID"] for r in CONFIG["Rules"]), got)
    check("rule filters read back", by_id.get("big", {}).get("Filter") == {
        "And": {"Prefix": "size/", "ObjectSizeGreaterThan": 1000}} and
        by_id.get("tagged", {}).get("Filter") == {"Tag": {"Key": "expire", "Value": "yes"}}, got)
    check("rule actions read back",
          by_id.get("noncurrent", {}).get("NoncurrentVersionExpiration") == {
              "NoncurrentDays": 1, "NewerNoncurrentVersions": 2} and
          by_id.get("uploads", {}).get("AbortIncompleteMultipartUpload") == {
              "DaysAfterInitiation": 1} and by_id.get("off", {}).get("Status") == "Disabled" and
          by_id.get("dated", {}).get("Expiration", {}).get("Date") is not None, got)

    gone = ["tmp/a", "t/yes", "size/big", "dated/x"]
    kept = ["keep/a", "other", "t/no", "size/small"]
    if wait_for("expiring objects removed", lambda: not any(exists(s3, b, k) for k in gone)):
        check("objects expired by prefix, tag, size and date", True)

    def upload_gone():
        ups = s3.list_multipart_uploads(Bucket=b).get("Uploads", [])
        return "mpu/stale" not in [u["Key"] for u in ups] and ups
    ups = wait_for("stale upload aborted", upload_gone)
    if ups:
        check("the stale upload is aborted, the other kept",
              [u["UploadId"] for u in ups] == [other_up], ups)
    try:
        s3.list_parts(Bucket=b, Key="mpu/stale", UploadId=up)
        check("the aborted upload's parts are gone", False)
    except ClientError as e:
        check("the aborted upload's parts are gone",
              e.response["Error"]["Code"] == "NoSuchUpload", e)
    # One more whole pass after the expirations: objects the rules do not select stay.
    p0 = status()["passes"]
    wait_for("another pass finishes", lambda: status()["passes"] >= p0 + 2)
    check("objects no rule selects are kept", all(exists(s3, b, k) for k in kept),
          [k for k in kept if not exists(s3, b, k)])
    st = status()
    check("the worker's counters in /admin/status",
          st and st["passes"] >= 2 and st["last"]["examined"] >= len(kept) and
          st["last"]["end_ms"] >= st["last"]["start_ms"] > 0, st)
    s3.abort_multipart_upload(Bucket=b, Key="other-upload", UploadId=other_up)

    s3.delete_bucket_lifecycle(Bucket=b)
    try:
        s3.get_bucket_lifecycle_configuration(Bucket=b)
        check("GET after DELETE: NoSuchLifecycleConfiguration", False)
    except ClientError as e:
        check("GET after DELETE: NoSuchLifecycleConfiguration",
              e.response["Error"]["Code"] == "NoSuchLifecycleConfiguration", e)
    s3.delete_bucket_lifecycle(Bucket=b)  # none: still 204
    check("DELETE lifecycle without one succeeds", True)


def bulk_start(s3):
    b = BULK_BUCKET
    # A pass that began while the rules bucket still had its configuration ends first, so the
    # pass measured below looks at this bucket alone.
    p0 = status()["passes"]
    wait_for("a pass ends after the rules bucket's configuration was deleted",
             lambda: status()["passes"] >= p0 + 1)
    s3.create_bucket(Bucket=b)
    for i in range(NBULK):
        s3.put_object(Bucket=b, Key="bulk/%03d" % i, Body=b"x")
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
        {"ID": "never", "Status": "Enabled", "Filter": {"Prefix": "bulk/"},
         "Expiration": {"Days": 36500}}]})

    def part_way():
        st = status()
        ex = st["current"]["examined"] if st and st["running"] and st["bucket"] == b else 0
        return st if 0 < ex < NBULK else None
    st = wait_for("the worker's pass is part-way through the bucket", part_way)
    if st:
        print("# pass at %d of %d objects, started %d" % (st["current"]["examined"], NBULK,
                                                            st["current"]["start_ms"]))
        with open(os.environ["LC_STATE"], "w") as f:
            json.dump({"start_ms": st["current"]["start_ms"], "stop_ms": int(time.time() * 1000)},
                      f)


def bulk_check(s3):
    with open(os.environ["LC_STATE"]) as f:
        before = json.load(f)
    st = wait_for("the resumed pass finishes", lambda: (status() or {}).get("passes", 0) >= 1 and
                  status())
    if not st:
        return
    last = st["last"]
    check("the pass after the restart is the one under way before it",
          last["start_ms"] == before["start_ms"] < before["stop_ms"], (last, before))
    check("every object examined exactly once across the restart",
          last["examined"] == NBULK, last)
    check("no object expired by a never-due rule", last["expired"] == 0 and
          len(s3.list_objects_v2(Bucket=BULK_BUCKET).get("Contents", [])) == NBULK, last)


def main():
    s3 = client()
    {"rules": rules, "bulk-start": bulk_start, "bulk-check": bulk_check}[sys.argv[1]](s3)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
