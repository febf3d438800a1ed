"""Object tagging and GetObjectAttributes through boto3 (endpoint in CAIRN_ENDPOINT, credentials
in the AWS_* env), run by test_tagging.sh. Prints one `ok -` / `FAIL -` line per check; exit status
1 if any failed. CAIRN_TAGGING_CLUSTER=1: a cluster node; CAIRN_TAGGING_OTHER, another node's
endpoint, through which tag changes are made and read back too.
"""

import base64
import hashlib
import os
import sys
import threading
import time

import boto3
import s3raw
from botocore.config import Config
from botocore.exceptions import ClientError
from tcheck import FAILS, check, err_of

CLUSTER = os.environ.get("CAIRN_TAGGING_CLUSTER") == "1"


def tagset(d):
    return [{"Key": k, "Value": v} for k, v in d.items()]


def tags_of(s3, b, k):
    return {t["Key"]: t["Value"] for t in s3.get_object_tagging(Bucket=b, Key=k)["TagSet"]}


def main():
    s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1",
                      config=Config(retries={"max_attempts": 1}))
    # Another node of the cluster (the same endpoint on a single node).
    s3o = boto3.client("s3", region_name="us-east-1", config=Config(retries={"max_attempts": 1}),
                       endpoint_url=os.environ.get("CAIRN_TAGGING_OTHER") or
                       os.environ["CAIRN_ENDPOINT"])
    b = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "") + "tagging-py"
    s3.create_bucket(Bucket=b)

    # x-amz-tagging on PutObject; tagging count on GET/HEAD.
    s3.put_object(Bucket=b, Key="a", Body=b"hello", Tagging="project=cairn&team=s%20t+x&empty=")
    want = {"project": "cairn", "team": "s t x", "empty": ""}
    check("PutObject x-amz-tagging stored", tags_of(s3, b, "a") == want, tags_of(s3, b, "a"))
    h = s3.head_object(Bucket=b, Key="a")
    check("HEAD x-amz-tagging-count", h["ResponseMetadata"]["HTTPHeaders"].get(
        "x-amz-tagging-count") == "3", h["ResponseMetadata"]["HTTPHeaders"])
    g = s3.get_object(Bucket=b, Key="a")
    check("GET TagCount", g.get("TagCount") == 3 and g["Body"].read() == b"hello", g)
    s3.put_object(Bucket=b, Key="plain", Body=b"x")
    h = s3.head_object(Bucket=b, Key="plain")["ResponseMetadata"]["HTTPHeaders"]
    check("no tagging count without tags", "x-amz-tagging-count" not in h, h)
    check("untagged object: empty TagSet", tags_of(s3, b, "plain") == {})

    # Limits on the header.
    eleven = "&".join("k%d=v" % i for i in range(11))
    check("x-amz-tagging with 11 tags -> 400 BadRequest",
          err_of(s3.put_object, Bucket=b, Key="t11", Body=b"x", Tagging=eleven) ==
          (400, "BadRequest"))
    check("x-amz-tagging with a duplicate key -> 400 InvalidArgument",
          err_of(s3.put_object, Bucket=b, Key="dup", Body=b"x", Tagging="a=1&a=2") ==
          (400, "InvalidArgument"))
    check("x-amz-tagging aws: prefix -> 400 InvalidTag",
          err_of(s3.put_object, Bucket=b, Key="aws", Body=b"x", Tagging="aws:x=1") ==
          (400, "InvalidTag"))
    check("nothing stored by refused PUTs",
          err_of(s3.head_object, Bucket=b, Key="t11")[0] == 404)

    # Copy: COPY (default) keeps the source's tags, REPLACE takes the request's.
    s3.copy_object(Bucket=b, Key="c1", CopySource={"Bucket": b, "Key": "a"})
    check("CopyObject copies the tags", tags_of(s3, b, "c1") == want, tags_of(s3, b, "c1"))
    s3.copy_object(Bucket=b, Key="c2", CopySource={"Bucket": b, "Key": "a"},
                   TaggingDirective="REPLACE", Tagging="only=one")
    check("CopyObject REPLACE takes x-amz-tagging", tags_of(s3, b, "c2") == {"only": "one"})
    s3.copy_object(Bucket=b, Key="c3", CopySource={"Bucket": b, "Key": "a"},
                   TaggingDirective="REPLACE")
    check("CopyObject REPLACE without tags: none", tags_of(s3, b, "c3") == {})

    # Multipart: tags given at create, applied at complete.
    up = s3.create_multipart_upload(Bucket=b, Key="mp", Tagging="mp=yes")
    part = b"p" * (5 << 20)
    e1 = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=part)
    e2 = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=2, Body=b"end")
    s3.complete_multipart_upload(
        Bucket=b, Key="mp", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1["ETag"]},
                                   {"PartNumber": 2, "ETag": e2["ETag"]}]})
    check("multipart: create's tags on the object", tags_of(s3, b, "mp") == {"mp": "yes"})

    # GetObjectAttributes.
    at = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=[
        "ETag", "ObjectSize", "StorageClass", "ObjectParts", "Checksum"])
    check("attributes: ObjectSize", at.get("ObjectSize") == len(part) + 3, at)
    check("attributes: ETag without quotes, -2",
          at.get("ETag", "").endswith("-2") and '"' not in at.get("ETag", ""), at)
    check("attributes: StorageClass", at.get("StorageClass") == "STANDARD", at)
    check("attributes: Last-Modified", at.get("LastModified") is not None, at)
    parts = at.get("ObjectParts", {})
    check("attributes: PartsCount 2", parts.get("TotalPartsCount") == 2, parts)
    at = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectParts"], MaxParts=1)
    parts = at.get("ObjectParts", {})
    check("attributes: MaxParts 1 truncates",
          parts.get("IsTruncated") is True and len(parts.get("Parts", [])) == 1 and
          str(parts.get("NextPartNumberMarker")) == "1", parts)
    at = s3.get_object_attributes(Bucket=b, Key="mp", ObjectAttributes=["ObjectParts"],
                                  PartNumberMarker=1)
    parts = at.get("ObjectParts", {})
    check("attributes: PartNumberMarker 1 gives part 2",
          [p["PartNumber"] for p in parts.get("Parts", [])] == [2] and
          parts.get("IsTruncated") is False, parts)
    at = s3.get_object_attributes(Bucket=b, Key="a", ObjectAttributes=["ETag", "Checksum"])
    check("attributes: single PUT has no ObjectParts, has a checksum",
          "ObjectParts" not in at and "Checksum" in at, at)  # boto3 < 1.36 cannot read CRC64NVME
    check("GetObjectTagging in a missing bucket -> 404 NoSuchBucket",
          err_of(s3.get_object_tagging, Bucket=b + "-none", Key="a") == (404, "NoSuchBucket"))
    check("attributes of a missing key -> 404",
          err_of(s3.get_object_attributes, Bucket=b, Key="nope",
                 ObjectAttributes=["ETag"])[0] == 404)

    # Changing tags of an existing object (on a cluster, also through another node).
    s3.put_object_tagging(Bucket=b, Key="a", Tagging={"TagSet": tagset({"new": "set"})})
    check("PutObjectTagging replaces the set", tags_of(s3, b, "a") == {"new": "set"})
    check("the new set read through another node", tags_of(s3o, b, "a") == {"new": "set"})
    s3o.put_object_tagging(Bucket=b, Key="plain", Tagging={"TagSet": tagset({"o": "1"})})
    check("PutObjectTagging through another node, read here",
          tags_of(s3, b, "plain") == {"o": "1"})
    s3o.delete_object_tagging(Bucket=b, Key="plain")
    check("DeleteObjectTagging through another node, read here",
          tags_of(s3, b, "plain") == {})
    obj = s3.get_object(Bucket=b, Key="a")
    check("tags changed, body and ETag kept",
          obj["Body"].read() == b"hello" and obj["TagCount"] == 1, obj)
    s3.put_object_tagging(Bucket=b, Key="mp", Tagging={"TagSet": tagset({"m": "2"})})
    check("PutObjectTagging on a multipart object", tags_of(s3, b, "mp") == {"m": "2"})
    body = s3.get_object(Bucket=b, Key="mp")["Body"].read()
    check("multipart body intact after tagging", body == part + b"end")
    check("11 tags -> 400 BadRequest",
          err_of(s3.put_object_tagging, Bucket=b, Key="a", Tagging={
              "TagSet": tagset({"k%d" % i: "v" for i in range(11)})}) == (400, "BadRequest"))
    check("key of 129 chars -> InvalidTag",
          err_of(s3.put_object_tagging, Bucket=b, Key="a", Tagging={
              "TagSet": tagset({"k" * 129: "v"})}) == (400, "InvalidTag"))
    check("key of 128 unicode chars accepted",
          err_of(s3.put_object_tagging, Bucket=b, Key="a", Tagging={
              "TagSet": tagset({"é" * 128: "ü" * 256})}) == (200, None))
    check("value of 257 chars -> InvalidTag",
          err_of(s3.put_object_tagging, Bucket=b, Key="a", Tagging={
              "TagSet": tagset({"k": "v" * 257})}) == (400, "InvalidTag"))
    check("duplicate keys -> InvalidTag",
          err_of(s3.put_object_tagging, Bucket=b, Key="a", Tagging={
              "TagSet": [{"Key": "d", "Value": "1"}, {"Key": "d", "Value": "2"}]}) ==
          (400, "InvalidTag"))
    check("a character outside S3's set -> InvalidTag",
          err_of(s3.put_object_tagging, Bucket=b, Key="a", Tagging={
              "TagSet": tagset({"a*b": "v"})}) == (400, "InvalidTag"))
    check("refused sets changed nothing", tags_of(s3, b, "a") == {"é" * 128: "ü" * 256})
    xml = b"<Tagging><TagSet><Tag><Key>x</Key><Value>y</Value></Tag></TagSet></Tagging>"
    st, _, _ = s3raw.request("PUT", "/%s/a" % b, {"tagging": ""}, body=xml)
    check("PutObjectTagging without Content-MD5 or checksum -> 400", st == 400, st)
    st, _, body = s3raw.request("PUT", "/%s/a" % b, {"tagging": ""}, body=xml,
                                headers={"Content-MD5": "1B2M2Y8AsgTpgAZPz8Y2Bg=="})
    check("PutObjectTagging with a wrong Content-MD5 -> 400 BadDigest",
          st == 400 and b"BadDigest" in body, (st, body[:200]))
    md5 = base64.b64encode(hashlib.md5(b"<Tagging/>").digest()).decode()
    st, _, body = s3raw.request("PUT", "/%s/a" % b, {"tagging": ""}, body=b"<Tagging/>",
                                headers={"Content-MD5": md5})
    check("Tagging without TagSet -> 400 MalformedXML",
          st == 400 and b"MalformedXML" in body, (st, body[:200]))
    check("PutObjectTagging on a missing key -> 404 NoSuchKey",
          err_of(s3.put_object_tagging, Bucket=b, Key="nope", Tagging={
              "TagSet": tagset({"a": "b"})}) == (404, "NoSuchKey"))
    s3.delete_object_tagging(Bucket=b, Key="a")
    check("DeleteObjectTagging empties the set", tags_of(s3, b, "a") == {})
    h = s3.head_object(Bucket=b, Key="a")["ResponseMetadata"]["HTTPHeaders"]
    check("no tagging count after delete", "x-amz-tagging-count" not in h, h)

    bucket_tags(s3, s3o, b)
    race(s3, b)

    for k in ["a", "plain", "c1", "c2", "c3", "mp", "race"]:
        s3.delete_object(Bucket=b, Key=k)
    s3.delete_bucket(Bucket=b)
    return 1 if FAILS else 0


def bucket_tags(s3, s3o, b):
    check("GetBucketTagging without tags -> 404 NoSuchTagSet",
          err_of(s3.get_bucket_tagging, Bucket=b) == (404, "NoSuchTagSet"))
    s3.put_bucket_tagging(Bucket=b, Tagging={"TagSet": tagset({"team": "storage", "env": ""})})
    got = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=b)["TagSet"]}
    check("PutBucketTagging / GetBucketTagging", got == {"team": "storage", "env": ""}, got)
    if CLUSTER:  # the other node learns the change from etcd's watch: give it a moment
        for _ in range(50):
            got = {t["Key"]: t["Value"]
                   for t in s3o.get_bucket_tagging(Bucket=b).get("TagSet", [])} \
                if err_of(s3o.get_bucket_tagging, Bucket=b) == (200, None) else {}
            if got == {"team": "storage", "env": ""}:
                break
            time.sleep(0.1)
        check("bucket tags read through another node", got == {"team": "storage", "env": ""},
              got)
    check("50 bucket tags accepted",
          err_of(s3.put_bucket_tagging, Bucket=b, Tagging={
              "TagSet": tagset({"k%d" % i: "v" for i in range(50)})}) == (200, None))
    check("51 bucket tags -> 400 InvalidTag",
          err_of(s3.put_bucket_tagging, Bucket=b, Tagging={
              "TagSet": tagset({"k%d" % i: "v" for i in range(51)})}) == (400, "InvalidTag"))
    check("bucket tags kept after a refused set",
          len(s3.get_bucket_tagging(Bucket=b)["TagSet"]) == 50)
    check("GetBucketTagging of a missing bucket -> 404 NoSuchBucket",
          err_of(s3.get_bucket_tagging, Bucket=b + "-none") == (404, "NoSuchBucket"))
    s3.delete_bucket_tagging(Bucket=b)
    check("DeleteBucketTagging -> NoSuchTagSet after",
          err_of(s3.get_bucket_tagging, Bucket=b) == (404, "NoSuchTagSet"))
    if CLUSTER:
        for _ in range(50):
            if err_of(s3o.get_bucket_tagging, Bucket=b) == (404, "NoSuchTagSet"):
                break
            time.sleep(0.1)
        check("DeleteBucketTagging seen through another node",
              err_of(s3o.get_bucket_tagging, Bucket=b) == (404, "NoSuchTagSet"))


def race(s3, b):
    """PutObjectTagging racing PUTs of the same bytes (same ETag, a new body each time): the tag
    rewrite must never bring back a replaced record, whose chunks are freed. A smoke test: the
    interleaving that matters is rare here; test_meta_tags.c checks it deterministically."""
    body = hashlib.sha256(b"race").digest() * 16384  # 512 KiB: stored as stripes, not inline
    s3.put_object(Bucket=b, Key="race", Body=body)
    errors = []
    stop = threading.Event()

    def tagger():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                s3.put_object_tagging(Bucket=b, Key="race",
                                      Tagging={"TagSet": tagset({"n": str(i)})})
            except ClientError as e:
                if e.response["Error"]["Code"] != "ConditionalRequestConflict":
                    errors.append(e)

    t = threading.Thread(target=tagger)
    t.start()
    try:
        for _ in range(25):
            s3.put_object(Bucket=b, Key="race", Body=body)
    finally:
        stop.set()
        t.join()
    check("tagging raced by PUTs: no unexpected error", not errors, errors[:3])
    ok_reads = 0
    for _ in range(3):
        got = s3.get_object(Bucket=b, Key="race")["Body"].read()
        ok_reads += got == body
    check("tagging raced by PUTs: the body reads back whole", ok_reads == 3)


if __name__ == "__main__":
    sys.exit(main())
