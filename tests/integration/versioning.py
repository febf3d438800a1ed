"""Bucket versioning through boto3 (endpoint in CAIRN_ENDPOINT, credentials in the AWS_* env), run
by test_versioning.sh. Prints one `ok -` / `FAIL -` line per check; exit status 1 if any failed.
The same suite runs against a cluster node (test_cluster_clients.sh).
"""

import os
import sys
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from tcheck import FAILS, check

PREFIX = os.environ.get("CAIRN_TEST_BUCKET_PREFIX", "")


def err_of(fn, **kw):
    """(status, code, headers) of a call that should fail; (200, None, {}) when it did not."""
    try:
        fn(**kw)
        return 200, None, {}
    except ClientError as e:
        md = e.response["ResponseMetadata"]
        return md["HTTPStatusCode"], e.response["Error"].get("Code"), md.get("HTTPHeaders", {})


EXTRA = threading.local()  # headers for this thread's next PutObject (old boto3: no IfNoneMatch)


def add_extra(request, **_):
    for k, v in getattr(EXTRA, "headers", {}).items():
        request.headers[k] = v


def put_cond(s3, headers, **kw):
    EXTRA.headers = headers
    try:
        return s3.put_object(**kw)
    finally:
        EXTRA.headers = {}


def body(s3, b, k, **kw):
    return s3.get_object(Bucket=b, Key=k, **kw)["Body"].read()


def all_versions(s3, b, page, **kw):
    """Every (key, version id, is_latest, is_marker) through pages of `page` entries."""
    out, km, vm = [], None, None
    while True:
        args = dict(Bucket=b, MaxKeys=page, **kw)
        if km is not None:
            args["KeyMarker"] = km
            if vm is not None:
                args["VersionIdMarker"] = vm
        r = s3.list_object_versions(**args)
        entries = [(v["Key"], v["VersionId"], v["IsLatest"], False) for v in r.get("Versions", [])]
        entries += [(m["Key"], m["VersionId"], m["IsLatest"], True)
                    for m in r.get("DeleteMarkers", [])]
        # boto3 splits versions and markers: S3 order is key, then newest first.
        out.extend(entries)
        if not r["IsTruncated"]:
            return out
        km, vm = r["NextKeyMarker"], r.get("NextVersionIdMarker")


def main():
    s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1",
                      config=Config(retries={"max_attempts": 1}))
    s3.meta.events.register_first("before-sign.s3.PutObject", add_extra)
    b = PREFIX + "versioning-py"
    s3.create_bucket(Bucket=b)

    # Never enabled: empty configuration, null versions, no version header.
    check("never-enabled bucket: empty VersioningConfiguration",
          "Status" not in s3.get_bucket_versioning(Bucket=b))
    r = s3.put_object(Bucket=b, Key="pre", Body=b"pre-versioning")
    check("unversioned PUT answers no version id", "VersionId" not in r)
    lv = s3.list_object_versions(Bucket=b)["Versions"]
    check("unversioned object listed as version null, latest",
          [(v["Key"], v["VersionId"], v["IsLatest"]) for v in lv] == [("pre", "null", True)], lv)

    # Configuration errors.
    st, code, _ = err_of(s3.put_bucket_versioning, Bucket=b,
                         VersioningConfiguration={"Status": "Enabled", "MFADelete": "Enabled"})
    check("MFADelete Enabled refused (501)", (st, code) == (501, "NotImplemented"), (st, code))
    st, code, _ = err_of(s3.put_bucket_versioning, Bucket=PREFIX + "no-such-bucket-v",
                         VersioningConfiguration={"Status": "Enabled"})
    check("PutBucketVersioning on a missing bucket: NoSuchBucket", code == "NoSuchBucket", code)

    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    check("GetBucketVersioning: Enabled",
          s3.get_bucket_versioning(Bucket=b).get("Status") == "Enabled")

    # Versions: three PUTs, ids newest first, GET/HEAD by id.
    ids = []
    for i in range(3):
        r = s3.put_object(Bucket=b, Key="doc", Body=b"v%d" % i)
        ids.append(r.get("VersionId"))
    check("PUT answers x-amz-version-id", all(ids) and len(set(ids)) == 3, ids)
    check("version ids: fixed length, URL-safe",
          all(len(v) == 32 and v.isalnum() for v in ids), ids)
    check("version ids sort newest first", ids[2] < ids[1] < ids[0], ids)
    check("GET latest", body(s3, b, "doc") == b"v2")
    check("GET by versionId", body(s3, b, "doc", VersionId=ids[0]) == b"v0")
    h = s3.head_object(Bucket=b, Key="doc", VersionId=ids[1])
    check("HEAD by versionId", h["ContentLength"] == 2 and h.get("VersionId") == ids[1], h)
    check("GET answers x-amz-version-id",
          s3.get_object(Bucket=b, Key="doc")["VersionId"] == ids[2])
    st, code, _ = err_of(s3.get_object, Bucket=b, Key="doc", VersionId="f" * 32)
    check("unknown versionId: 404 NoSuchVersion", (st, code) == (404, "NoSuchVersion"), (st, code))
    st, code, _ = err_of(s3.get_object, Bucket=b, Key="doc", VersionId="not-a-version")
    check("malformed versionId: 400 InvalidArgument", (st, code) == (400, "InvalidArgument"),
          (st, code))
    check("the pre-versioning object is version null",
          body(s3, b, "pre", VersionId="null") == b"pre-versioning")

    # Delete markers.
    r = s3.delete_object(Bucket=b, Key="doc")
    dm = r.get("VersionId")
    check("DELETE makes a delete marker", r.get("DeleteMarker") is True and dm, r)
    st, code, hdrs = err_of(s3.get_object, Bucket=b, Key="doc")
    check("GET behind a marker: 404 NoSuchKey with x-amz-delete-marker",
          (st, code) == (404, "NoSuchKey") and hdrs.get("x-amz-delete-marker") == "true",
          (st, code, hdrs))
    st, code, hdrs = err_of(s3.get_object, Bucket=b, Key="doc", VersionId=dm)
    check("GET of the marker by id: 405 with x-amz-delete-marker",
          st == 405 and hdrs.get("x-amz-delete-marker") == "true", (st, code, hdrs))
    st, code, hdrs = err_of(s3.head_object, Bucket=b, Key="doc")
    check("HEAD behind a marker: 404 with x-amz-delete-marker",
          st == 404 and hdrs.get("x-amz-delete-marker") == "true", (st, hdrs))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b).get("Contents", [])]
    check("ListObjectsV2 hides a key behind a marker", keys == ["pre"], keys)
    keys = [o["Key"] for o in s3.list_objects(Bucket=b).get("Contents", [])]
    check("ListObjects (V1) hides it too", keys == ["pre"], keys)
    check("an older version still reads", body(s3, b, "doc", VersionId=ids[1]) == b"v1")

    # Copy by version, back on top.
    r = s3.copy_object(Bucket=b, Key="doc", CopySource={"Bucket": b, "Key": "doc",
                                                        "VersionId": ids[0]})
    check("CopyObject from a version answers both version ids",
          r.get("CopySourceVersionId") == ids[0] and r.get("VersionId"), r)
    check("the copy is the latest", body(s3, b, "doc") == b"v0")
    st, code, _ = err_of(s3.copy_object, Bucket=b, Key="x",
                         CopySource={"Bucket": b, "Key": "doc", "VersionId": dm})
    check("copying a delete marker by id is refused (400)", st == 400, (st, code))

    # Remove the marker for good: the listing shows it gone; then delete a version for good.
    r = s3.delete_object(Bucket=b, Key="doc", VersionId=dm)
    check("DELETE of a marker by id answers DeleteMarker and its id",
          r.get("DeleteMarker") is True and r.get("VersionId") == dm, r)
    r = s3.delete_object(Bucket=b, Key="doc", VersionId=ids[1])
    check("DELETE of a version by id", r.get("VersionId") == ids[1], r)
    st, code, _ = err_of(s3.get_object, Bucket=b, Key="doc", VersionId=ids[1])
    check("the deleted version is gone", code == "NoSuchVersion", code)
    vl = [v["VersionId"] for v in s3.list_object_versions(Bucket=b, Prefix="doc")["Versions"]]
    check("versions after the deletes", len(vl) == 3 and vl[1:] == [ids[2], ids[0]], vl)

    # Deleting the latest by id promotes the previous version.
    latest = vl[0]
    s3.delete_object(Bucket=b, Key="doc", VersionId=latest)
    check("deleting the latest promotes the next", body(s3, b, "doc") == b"v2")

    # Tagging per version and GetObjectAttributes of a version.
    s3.put_object_tagging(Bucket=b, Key="doc", VersionId=ids[0],
                          Tagging={"TagSet": [{"Key": "old", "Value": "yes"}]})
    t = s3.get_object_tagging(Bucket=b, Key="doc", VersionId=ids[0])
    check("tags of an older version", t["TagSet"] == [{"Key": "old", "Value": "yes"}]
          and t.get("VersionId") == ids[0], t)
    check("the latest keeps its own tags",
          s3.get_object_tagging(Bucket=b, Key="doc")["TagSet"] == [])
    a = s3.get_object_attributes(Bucket=b, Key="doc", VersionId=ids[0],
                                 ObjectAttributes=["ObjectSize", "ETag"])
    check("GetObjectAttributes of a version", a["ObjectSize"] == 2 and a.get("VersionId") == ids[0],
          a)

    # Multipart Complete makes a version.
    up = s3.create_multipart_upload(Bucket=b, Key="mp")
    p = s3.upload_part(Bucket=b, Key="mp", UploadId=up["UploadId"], PartNumber=1, Body=b"m" * 100)
    r = s3.complete_multipart_upload(Bucket=b, Key="mp", UploadId=up["UploadId"],
                                     MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                 "ETag": p["ETag"]}]})
    check("CompleteMultipartUpload answers a version id", len(r.get("VersionId", "")) == 32, r)

    # Conditional writes test the latest version.
    s3.put_object(Bucket=b, Key="cond", Body=b"1")
    st, code, _ = err_of(put_cond, s3=s3, headers={"If-None-Match": "*"}, Bucket=b, Key="cond",
                         Body=b"2")
    check("If-None-Match: * over a live latest: 412", st == 412, (st, code))
    s3.delete_object(Bucket=b, Key="cond")
    r = put_cond(s3, {"If-None-Match": "*"}, Bucket=b, Key="cond", Body=b"3")
    check("If-None-Match: * behind a marker succeeds", r.get("VersionId"), r)
    etag = s3.head_object(Bucket=b, Key="cond")["ETag"]
    put_cond(s3, {"If-Match": etag}, Bucket=b, Key="cond", Body=b"4")
    st, code, _ = err_of(put_cond, s3=s3, headers={"If-Match": etag}, Bucket=b, Key="cond",
                         Body=b"5")
    check("If-Match with the previous latest's ETag: 412", st == 412, (st, code))
    # Racing If-None-Match creates: exactly one wins.
    results = []

    def racer(i):
        st, code, _ = err_of(put_cond, s3=s3, headers={"If-None-Match": "*"}, Bucket=b,
                             Key="race", Body=b"r%d" % i)
        results.append(st)

    ts = [threading.Thread(target=racer, args=(i,)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    nv = len(s3.list_object_versions(Bucket=b, Prefix="race")["Versions"])
    check("8 racing If-None-Match PUTs: one wins, one version",
          results.count(200) == 1 and results.count(412) == 7 and nv == 1, (results, nv))

    # Paging: keys and versions mixed, every page size gives the same sequence.
    pb = PREFIX + "versioning-paging"
    s3.create_bucket(Bucket=pb)
    s3.put_bucket_versioning(Bucket=pb, VersioningConfiguration={"Status": "Enabled"})
    for k, n in (("a", 3), ("a/b", 1), ("a/c", 2), ("b", 2), ("c d+e", 3)):
        for i in range(n):
            s3.put_object(Bucket=pb, Key=k, Body=b"%d" % i)
    s3.delete_object(Bucket=pb, Key="b")
    full = all_versions(s3, pb, 1000)
    check("ListObjectVersions: 12 entries", len(full) == 12, full)
    pages = {n: all_versions(s3, pb, n) for n in (1, 2, 3, 5)}

    def canon(lst):
        return sorted(lst)  # boto3 splits a page's versions from its markers

    check("paging by 1, 2, 3, 5 lists the same entries",
          all(canon(v) == canon(full) for v in pages.values()), pages)
    check("paging by 1 keeps S3 order (key, newest first)",
          [e[0] for e in pages[1]] == sorted(e[0] for e in pages[1]) and
          [e for e in pages[1] if e[0] == "b"][0][3], pages[1])
    latest = {e[0] for e in full if e[2]}
    check("one IsLatest per key", latest == {"a", "a/b", "a/c", "b", "c d+e"} and
          sum(1 for e in full if e[2]) == 5, full)
    r = s3.list_object_versions(Bucket=pb, Delimiter="/", MaxKeys=1000)
    check("delimiter rolls a/ up", [p["Prefix"] for p in r.get("CommonPrefixes", [])] == ["a/"]
          and sum(1 for v in r["Versions"] if v["Key"] == "a") == 3, r)
    r = s3.list_object_versions(Bucket=pb, Prefix="c", EncodingType="url")
    check("encoding-type=url", r["Versions"][0]["Key"] in ("c%20d%2Be", "c d+e"), r["Versions"][0])
    st, code, _ = err_of(s3.list_object_versions, Bucket=pb, VersionIdMarker=full[0][1])
    check("version-id-marker without key-marker: 400", st == 400, (st, code))

    # DeleteObjects with version ids.
    vs = s3.list_object_versions(Bucket=pb, Prefix="a/c")["Versions"]
    r = s3.delete_objects(Bucket=pb, Delete={"Objects": [
        {"Key": "a/c", "VersionId": vs[1]["VersionId"]}, {"Key": "a/b"}]})
    d = {x["Key"]: x for x in r.get("Deleted", [])}
    check("DeleteObjects: a version by id",
          d.get("a/c", {}).get("VersionId") == vs[1]["VersionId"], r)
    check("DeleteObjects: a marker for a plain key, with its id",
          d.get("a/b", {}).get("DeleteMarker") is True and
          len(d.get("a/b", {}).get("DeleteMarkerVersionId", "")) == 32, r)

    # Suspended: writes replace the null version and keep the others.
    sb = PREFIX + "versioning-suspended"
    s3.create_bucket(Bucket=sb)
    s3.put_object(Bucket=sb, Key="k", Body=b"n0")
    s3.put_bucket_versioning(Bucket=sb, VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket=sb, Key="k", Body=b"e1")["VersionId"]
    s3.put_bucket_versioning(Bucket=sb, VersioningConfiguration={"Status": "Suspended"})
    check("GetBucketVersioning: Suspended",
          s3.get_bucket_versioning(Bucket=sb).get("Status") == "Suspended")
    s3.put_object(Bucket=sb, Key="k", Body=b"s1")
    s3.put_object(Bucket=sb, Key="k", Body=b"s2")
    vl = [(v["VersionId"], v["IsLatest"]) for v in
          s3.list_object_versions(Bucket=sb)["Versions"]]
    check("suspended PUTs replace the null version, keep the others",
          vl == [("null", True), (v1, False)], vl)
    check("the null version holds the last suspended write",
          body(s3, sb, "k", VersionId="null") == b"s2")
    r = s3.delete_object(Bucket=sb, Key="k")
    check("suspended DELETE: a null delete marker",
          r.get("DeleteMarker") is True and r.get("VersionId") == "null", r)
    lv = s3.list_object_versions(Bucket=sb)
    check("the null object gave way to the null marker",
          [m["VersionId"] for m in lv.get("DeleteMarkers", [])] == ["null"] and
          [v["VersionId"] for v in lv["Versions"]] == [v1], lv)

    if FAILS:
        print("%d checks failed" % len(FAILS))
        sys.exit(1)


if __name__ == "__main__":
    main()
    if FAILS:
        sys.exit(1)
