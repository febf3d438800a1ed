#!/usr/bin/env python3
"""cluster_multipart.py: the S3 steps of test_cluster_multipart.sh, one phase per call, with boto3.

Each step goes through the node the test names (an endpoint of the loopback cluster); the state
between phases (upload id, ETags, the expected bytes) lives in a JSON file. Exits non-zero with a
message at the first check that fails; prints one line per check that passed.

  create   ENDPOINTS STATE BUCKET KEY        bucket + CreateMultipartUpload via n1
  parts    ENDPOINTS STATE                   part 1 via n2, part 2 via n3, part 2 again via n4
                                             (the replacement), part 3 via n4; ListParts via n5;
                                             ListMultipartUploads via n6 shows the upload
  complete ENDPOINTS STATE NODE              Complete via node index NODE
  verify   ENDPOINTS STATE NODES             GET via each node index in NODES (comma list):
                                             byte-exact; ListObjects shows only real keys
  longkey  ENDPOINTS STATE                   two 1,024-byte keys sharing their first 1,000 bytes:
                                             one Created via n1, a part via n2, listed via n3,
                                             ListParts via n4, Complete via n5, GET via n6, and
                                             deleted; the other Created via n3, Aborted via n4
  rb       ENDPOINTS STATE                   an upload left open, objects deleted, DeleteBucket
                                             via n5; made again, it lists no old upload or key
  abort    ENDPOINTS STATE                   Create via n3, a part via n4, Abort via n5;
                                             then UploadPart/ListParts via n6 say NoSuchUpload
"""
import hashlib
import json
import os
import sys
import time

from lc_boto import client
from tcheck import fail, ok

import s3raw

MIB = 1 << 20



def body(seed, n):
    out = bytearray()
    block = hashlib.sha256(seed.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block * 32
    return bytes(out[:n])


def err_code(fn):
    try:
        fn()
    except Exception as e:  # botocore ClientError
        return getattr(e, "response", {}).get("Error", {}).get("Code", repr(e))
    return None


def get_body(cl, b, k, n):
    """The object's bytes. A stream that breaks off is tried again twice, said aloud: right after
    an AZ is killed a GET was seen to stop mid-body (about 1 run in 70, before the obsolete cells
    of a repair's move were deferred; a data-path read, not the records this test is about;
    docs/cluster.md, "Known limits")."""
    for attempt in range(3):
        try:
            return cl.get_object(Bucket=b, Key=k)["Body"].read()
        except Exception as e:  # IncompleteRead / ResponseStreamingError
            if attempt == 2 or "IncompleteRead" not in repr(e) and "Streaming" not in repr(e):
                raise
            print("note - GET through n%d broke off mid-body (%s); tried again" %
                  (n + 1, type(e).__name__), flush=True)
    return b""


def main():
    phase, eps, state = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
    c = [client(e) for e in eps]
    st = json.load(open(state)) if os.path.exists(state) else {}
    if phase == "create":
        st["bucket"], st["key"] = sys.argv[4], sys.argv[5]
        c[0].create_bucket(Bucket=st["bucket"])
        c[0].put_object(Bucket=st["bucket"], Key="plain", Body=b"a plain object")
        st["upload"] = c[0].create_multipart_upload(Bucket=st["bucket"], Key=st["key"])["UploadId"]
        ok("CreateMultipartUpload through n1: %s" % st["upload"])
    elif phase == "parts":
        b, k, u = st["bucket"], st["key"], st["upload"]
        plan = [(1, 1, "p1", 5 * MIB), (2, 2, "p2-first", 5 * MIB), (2, 3, "p2", 5 * MIB + 7),
                (3, 3, "p3", 20 * 1024)]  # small: inline in its record
        etags = {}
        for number, node, seed, size in plan:
            r = c[node].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=number,
                                    Body=body(seed, size))
            etags[number] = r["ETag"].strip('"')
            if etags[number] != hashlib.md5(body(seed, size)).hexdigest():
                fail("part %d ETag through n%d" % (number, node + 1))
            ok("UploadPart %d (%s, %d bytes) through n%d" % (number, seed, size, node + 1))
        st["etags"] = etags
        st["expect"] = hashlib.sha256(body("p1", 5 * MIB) + body("p2", 5 * MIB + 7) +
                                      body("p3", 20 * 1024)).hexdigest()
        st["size"] = 10 * MIB + 7 + 20 * 1024
        lp = c[4].list_parts(Bucket=b, Key=k, UploadId=u)
        got = [(p["PartNumber"], p["ETag"].strip('"'), p["Size"]) for p in lp["Parts"]]
        want = [(1, etags[1], 5 * MIB), (2, etags[2], 5 * MIB + 7), (3, etags[3], 20 * 1024)]
        if got != want:
            fail("ListParts through n5: %r, want %r" % (got, want))
        ok("ListParts through n5: 3 parts, part 2 is its second upload")
        lp = c[4].list_parts(Bucket=b, Key=k, UploadId=u, MaxParts=2)
        if [p["PartNumber"] for p in lp["Parts"]] != [1, 2] or not lp["IsTruncated"]:
            fail("ListParts max-parts=2 through n5: %r" % lp)
        lp = c[4].list_parts(Bucket=b, Key=k, UploadId=u, PartNumberMarker=2)
        if [p["PartNumber"] for p in lp["Parts"]] != [3]:
            fail("ListParts after part 2 through n5: %r" % lp)
        ok("ListParts pages through n5")
        ups = c[5].list_multipart_uploads(Bucket=b).get("Uploads", [])
        if [(x["Key"], x["UploadId"]) for x in ups] != [(k, u)] or not ups[0]["Initiator"]["ID"]:
            fail("ListMultipartUploads through n6: %r" % ups)
        ok("ListMultipartUploads through n6 shows the upload")
        keys = [o["Key"] for o in c[5].list_objects_v2(Bucket=b).get("Contents", [])]
        if keys != ["plain"]:
            fail("ListObjects through n6 while the upload is open: %r" % keys)
        ok("ListObjects through n6 shows no upload record")
        # The upload's own record named as a key (md_mpkey.c: 0xFF 'u' key 01 01 id) is never an
        # object: GET and HEAD through n6 answer 404 (gateway/gw_meta.c, reserved()).
        os.environ["CAIRN_ENDPOINT"] = eps[5]
        raw = ("/%s/" % b).encode() + b"\xffu" + k.encode() + b"\x01\x01" + u.encode()
        for method in ("GET", "HEAD"):
            status, _, _ = s3raw.request(method, raw)
            if status != 404:
                fail("%s of the upload record's key through n6: %d, want 404" % (method, status))
        ok("GET and HEAD of the upload record's own key through n6 answer 404")
    elif phase == "complete":
        n = int(sys.argv[4])
        b, k, u = st["bucket"], st["key"], st["upload"]
        parts = [{"PartNumber": i, "ETag": '"%s"' % st["etags"][str(i)]} for i in (1, 2, 3)]
        t0 = time.monotonic()
        c[n].complete_multipart_upload(Bucket=b, Key=k, UploadId=u,
                                       MultipartUpload={"Parts": parts})
        ok("CompleteMultipartUpload through n%d (%.0f ms)" % (n + 1,
                                                             (time.monotonic() - t0) * 1000))
        ups = c[n].list_multipart_uploads(Bucket=b).get("Uploads", [])
        if ups:
            fail("ListMultipartUploads after Complete: %r" % ups)
        ok("the upload is gone from ListMultipartUploads")
    elif phase == "verify":
        b, k = st["bucket"], st["key"]
        for n in (int(x) for x in sys.argv[4].split(",")):
            data = get_body(c[n], b, k, n)
            if len(data) != st["size"] or hashlib.sha256(data).hexdigest() != st["expect"]:
                fail("GET through n%d: %d bytes, not the parts' bytes" % (n + 1, len(data)))
            keys = [o["Key"] for o in c[n].list_objects_v2(Bucket=b).get("Contents", [])]
            if keys != sorted(["plain", k]):
                fail("ListObjects through n%d: %r" % (n + 1, keys))
            ok("GET through n%d byte-exact, ListObjects shows %r" % (n + 1, keys))
    elif phase == "abort":
        b, k = st["bucket"], st["key"] + ".aborted"
        u = c[2].create_multipart_upload(Bucket=b, Key=k)["UploadId"]
        c[3].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=1, Body=body("ab", 100 * 1024))
        c[4].abort_multipart_upload(Bucket=b, Key=k, UploadId=u)
        ok("Create through n3, UploadPart through n4, Abort through n5")
        code = err_code(lambda: c[5].list_parts(Bucket=b, Key=k, UploadId=u))
        if code != "NoSuchUpload":
            fail("ListParts through n6 after Abort: %r" % code)
        code = err_code(lambda: c[5].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=2,
                                                 Body=b"late"))
        if code != "NoSuchUpload":
            fail("UploadPart through n6 after Abort: %r" % code)
        ups = c[3].list_multipart_uploads(Bucket=b).get("Uploads", [])
        if any(x["UploadId"] == u for x in ups):
            fail("ListMultipartUploads through n4 after Abort: %r" % ups)
        ok("after Abort: NoSuchUpload through n6, not listed through n4")
    elif phase == "longkey":
        b, base = st["bucket"], "long/" + "a" * 995
        k1, k2 = base + "1" * 24, base + "2" * 24
        u1 = c[0].create_multipart_upload(Bucket=b, Key=k1)["UploadId"]
        u2 = c[2].create_multipart_upload(Bucket=b, Key=k2)["UploadId"]
        data = body("long", 300 * 1024)
        etag = c[1].upload_part(Bucket=b, Key=k1, UploadId=u1, PartNumber=1, Body=data)["ETag"]
        ok("two 1,024-byte keys: Create through n1 and n3, UploadPart through n2")
        ups = c[2].list_multipart_uploads(Bucket=b, Prefix="long/").get("Uploads", [])
        if sorted((x["Key"], x["UploadId"]) for x in ups) != sorted([(k1, u1), (k2, u2)]):
            fail("ListMultipartUploads through n3: %r" % [(len(x["Key"]), x["UploadId"])
                                                          for x in ups])
        pg = c[2].list_multipart_uploads(Bucket=b, Prefix="long/", MaxUploads=1)
        nxt = c[2].list_multipart_uploads(Bucket=b, Prefix="long/", MaxUploads=1,
                                          KeyMarker=pg["NextKeyMarker"],
                                          UploadIdMarker=pg["NextUploadIdMarker"])
        got = [x["Key"] for x in pg.get("Uploads", []) + nxt.get("Uploads", [])]
        if sorted(got) != [k1, k2] or not pg["IsTruncated"] or nxt["IsTruncated"]:
            fail("ListMultipartUploads pages of 1 through n3: %d keys" % len(got))
        ok("ListMultipartUploads through n3 shows both whole keys, also in pages of 1")
        parts = c[3].list_parts(Bucket=b, Key=k1, UploadId=u1).get("Parts", [])
        if [(x["PartNumber"], x["ETag"]) for x in parts] != [(1, etag)]:
            fail("ListParts through n4: %r" % parts)
        c[4].complete_multipart_upload(Bucket=b, Key=k1, UploadId=u1, MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": etag}]})
        if get_body(c[5], b, k1, 5) != data:
            fail("GET of the 1,024-byte key through n6: not the part's bytes")
        ok("ListParts through n4, Complete through n5, GET through n6 byte-exact")
        c[3].abort_multipart_upload(Bucket=b, Key=k2, UploadId=u2)
        ups = c[5].list_multipart_uploads(Bucket=b, Prefix="long/").get("Uploads", [])
        code = err_code(lambda: c[0].list_parts(Bucket=b, Key=k2, UploadId=u2))
        if ups or code != "NoSuchUpload":
            fail("after Complete and Abort: %d uploads listed, ListParts %r" % (len(ups), code))
        c[4].delete_object(Bucket=b, Key=k1)
        ok("Abort through n4: no upload of either key left; the object deleted")
    elif phase == "rb":
        b = st["bucket"]
        u = c[2].create_multipart_upload(Bucket=b, Key="left/open")["UploadId"]
        c[3].upload_part(Bucket=b, Key="left/open", UploadId=u, PartNumber=1, Body=b"x" * 1000)
        for n, k in ((4, "plain"), (5, st["key"])):
            c[n].delete_object(Bucket=b, Key=k)
        c[4].delete_bucket(Bucket=b)
        ok("DeleteBucket through n5 with an upload open (made through n3)")
        c[5].create_bucket(Bucket=b)
        ups = c[2].list_multipart_uploads(Bucket=b).get("Uploads", [])
        keys = c[3].list_objects_v2(Bucket=b).get("Contents", [])
        if ups or keys:
            fail("the bucket made again lists old uploads or keys: %r %r" % (ups, keys))
        ok("made again through n6: no upload and no key of the old bucket")
    json.dump(st, open(state, "w"))


if __name__ == "__main__":
    main()
