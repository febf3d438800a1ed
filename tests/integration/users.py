#!/usr/bin/env python3
"""Users, bucket policies, ACLs and anonymous access with boto3 (docs/users.md).

Run by test_users.sh with CAIRN_ENDPOINT and the keys of three users made with
`cairn admin user create` (ALICE_AK/ALICE_SK, BOB_AK/BOB_SK, CAROL_AK/CAROL_SK). Every denial
must be a 403 S3 XML AccessDenied and must change nothing. Prints one `ok -` / `FAIL -` line per
check and exits 1 when any failed.
"""
import json
import os
import sys
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

EP = os.environ["CAIRN_ENDPOINT"]
FAILS = 0


def client(who):
    return boto3.client(
        "s3", endpoint_url=EP, region_name="us-east-1",
        aws_access_key_id=os.environ[who + "_AK"],
        aws_secret_access_key=os.environ[who + "_SK"],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                      signature_version="s3v4"))  # also for generate_presigned_post


def check(name, cond, detail=""):
    global FAILS
    if cond:
        print("ok - " + name)
    else:
        FAILS += 1
        print("FAIL - %s %s" % (name, detail))


def code_of(fn):
    """The S3 error code and HTTP status of fn(), or (None, 200)."""
    try:
        fn()
        return None, 200
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def denied(name, fn):
    code, status = code_of(fn)
    check(name + " is AccessDenied 403", (code, status) == ("AccessDenied", 403),
          "got %s %s" % (code, status))


def anon(method, path, data=None):
    """An unsigned request: (status, body)."""
    req = urllib.request.Request(EP + path, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def anon_denied(name, method, path, data=None):
    st, body = anon(method, path, data)
    check(name + " (anonymous) is 403 S3 XML", st == 403 and b"<Code>AccessDenied</Code>" in body,
          "got %s %r" % (st, body[:200]))


def body(c, bucket, key):
    return c.get_object(Bucket=bucket, Key=key)["Body"].read()


def post_form(post, data):
    """A browser form upload (POST Object) of data with boto3's generate_presigned_post fields:
    (status, body)."""
    bnd = "----cairnusers"
    parts = []
    for k, v in post["fields"].items():
        parts.append('--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
                     % (bnd, k, v))
    head = "".join(parts) + ('--%s\r\nContent-Disposition: form-data; name="file"; '
                             'filename="f.txt"\r\nContent-Type: text/plain\r\n\r\n' % bnd)
    form = head.encode() + data + ("\r\n--%s--\r\n" % bnd).encode()
    req = urllib.request.Request(post["url"], data=form, method="POST",
                                 headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def main():
    alice, bob, carol = client("ALICE"), client("BOB"), client("CAROL")
    B = "alice-bucket"
    alice.create_bucket(Bucket=B)
    alice.put_object(Bucket=B, Key="pub/a.txt", Body=b"public a")
    alice.put_object(Bucket=B, Key="pub/secret.txt", Body=b"not for bob")
    alice.put_object(Bucket=B, Key="priv/s.txt", Body=b"alice only")

    # another user's bucket: denied, nothing changed
    denied("bob GetObject in alice's bucket", lambda: bob.get_object(Bucket=B, Key="priv/s.txt"))
    denied("bob PutObject over alice's object",
           lambda: bob.put_object(Bucket=B, Key="priv/s.txt", Body=b"bob was here"))
    denied("bob DeleteObject of alice's object",
           lambda: bob.delete_object(Bucket=B, Key="priv/s.txt"))
    denied("bob ListObjects of alice's bucket", lambda: bob.list_objects_v2(Bucket=B))
    denied("bob PutBucketPolicy on alice's bucket",
           lambda: bob.put_bucket_policy(Bucket=B, Policy=policy(
               {"Effect": "Allow", "Principal": "*", "Action": "s3:*",
                "Resource": "arn:aws:s3:::%s/*" % B})))
    denied("bob DeleteBucket of alice's bucket", lambda: bob.delete_bucket(Bucket=B))
    res = bob.delete_objects(Bucket=B, Delete={"Objects": [{"Key": "priv/s.txt"}]})
    errs = [e["Code"] for e in res.get("Errors", [])]
    check("bob DeleteObjects: the key answers AccessDenied", errs == ["AccessDenied"], str(res))
    check("alice's object unchanged after bob's attempts",
          body(alice, B, "priv/s.txt") == b"alice only")
    bob.create_bucket(Bucket="bob-bucket")
    denied("bob CopyObject from alice's bucket into his own",
           lambda: bob.copy_object(Bucket="bob-bucket", Key="stolen",
                                   CopySource={"Bucket": B, "Key": "priv/s.txt"}))
    names = [b["Name"] for b in bob.list_buckets()["Buckets"]]
    check("bob's ListBuckets shows his own buckets only", names == ["bob-bucket"], str(names))

    # a policy granting bob read on a prefix, with an explicit deny beating the allow
    code, _ = code_of(lambda: alice.put_bucket_policy(Bucket=B, Policy="{not json"))
    check("malformed policy is MalformedPolicy", code == "MalformedPolicy", str(code))
    code, _ = code_of(lambda: alice.put_bucket_policy(Bucket=B, Policy=policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::other-bucket/*"})))
    check("policy naming another bucket is MalformedPolicy", code == "MalformedPolicy", str(code))
    code, _ = code_of(lambda: alice.get_bucket_policy(Bucket=B))
    check("no policy yet: NoSuchBucketPolicy", code == "NoSuchBucketPolicy", str(code))
    bob_arn = "arn:aws:iam::000000000000:user/bob"
    pol = policy(
        {"Sid": "BobReadsPub", "Effect": "Allow", "Principal": {"AWS": [bob_arn]},
         "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::%s/pub/*" % B},
        {"Sid": "BobListsPub", "Effect": "Allow", "Principal": {"AWS": bob_arn},
         "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::%s" % B,
         "Condition": {"StringLike": {"s3:prefix": "pub/*"}}},
        {"Sid": "NotTheSecret", "Effect": "Deny", "Principal": {"AWS": bob_arn},
         "Action": "s3:Get*", "Resource": "arn:aws:s3:::%s/pub/secret*" % B})
    alice.put_bucket_policy(Bucket=B, Policy=pol)
    got = json.loads(alice.get_bucket_policy(Bucket=B)["Policy"])
    check("GetBucketPolicy returns the policy", got == json.loads(pol))
    check("policy grants bob pub/a.txt", body(bob, B, "pub/a.txt") == b"public a")
    denied("explicit Deny beats the Allow (pub/secret.txt)",
           lambda: bob.get_object(Bucket=B, Key="pub/secret.txt"))
    denied("outside the granted prefix (priv/s.txt)",
           lambda: bob.get_object(Bucket=B, Key="priv/s.txt"))
    denied("the grant is read-only (bob PutObject pub/)",
           lambda: bob.put_object(Bucket=B, Key="pub/b.txt", Body=b"x"))
    keys = [o["Key"] for o in bob.list_objects_v2(Bucket=B, Prefix="pub/").get("Contents", [])]
    check("s3:prefix condition lets bob list pub/", keys == ["pub/a.txt", "pub/secret.txt"],
          str(keys))
    denied("s3:prefix condition: bob listing everything", lambda: bob.list_objects_v2(Bucket=B))
    denied("carol is not named by the policy",
           lambda: carol.get_object(Bucket=B, Key="pub/a.txt"))
    st = alice.get_bucket_policy_status(Bucket=B)["PolicyStatus"]["IsPublic"]
    check("GetBucketPolicyStatus: not public", st is False, str(st))

    # a browser form upload (POST Object) is the signer's write: bob may only read pub/
    st, b = post_form(bob.generate_presigned_post(B, "pub/posted.txt"), b"from bob's form")
    check("bob's POST Object into alice's bucket is 403 AccessDenied",
          st == 403 and b"<Code>AccessDenied</Code>" in b, "got %s %r" % (st, b[:200]))
    code, _ = code_of(lambda: alice.head_object(Bucket=B, Key="pub/posted.txt"))
    check("bob's refused POST stored nothing", code in ("404", "NoSuchKey"), str(code))
    st, b = post_form(alice.generate_presigned_post(B, "pub/posted.txt"), b"from alice's form")
    check("the owner's POST Object is stored", st == 204 and
          body(alice, B, "pub/posted.txt") == b"from alice's form", "got %s %r" % (st, b[:200]))

    # a user's presigned URLs and SigV2 requests carry the user's rights, no more
    url = bob.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "pub/a.txt"})
    with urllib.request.urlopen(url, timeout=10) as r:
        check("bob's presigned GET of pub/a.txt", r.read() == b"public a")
    url = bob.generate_presigned_url("get_object", Params={"Bucket": B, "Key": "priv/s.txt"})
    try:
        urllib.request.urlopen(url, timeout=10)
        check("bob's presigned GET of priv/s.txt is 403", False, "got 200")
    except urllib.error.HTTPError as e:
        check("bob's presigned GET of priv/s.txt is 403", e.code == 403, str(e.code))
    bob2 = boto3.client("s3", endpoint_url=EP, region_name="us-east-1",
                        aws_access_key_id=os.environ["BOB_AK"],
                        aws_secret_access_key=os.environ["BOB_SK"],
                        config=Config(signature_version="s3", retries={"max_attempts": 1},
                                      s3={"addressing_style": "path"}))
    check("bob's SigV2 GET of pub/a.txt", body(bob2, B, "pub/a.txt") == b"public a")
    denied("bob's SigV2 GET of priv/s.txt", lambda: bob2.get_object(Bucket=B, Key="priv/s.txt"))

    # anonymous: public prefix readable, everything else 403
    anon_denied("GET pub/a.txt before a public policy", "GET", "/%s/pub/a.txt" % B)
    public = policy(
        {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/pub/*" % B},
        {"Sid": "NotTheSecret", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::%s/pub/secret*" % B})
    alice.put_bucket_policy(Bucket=B, Policy=public)
    st = alice.get_bucket_policy_status(Bucket=B)["PolicyStatus"]["IsPublic"]
    check("GetBucketPolicyStatus: public", st is True, str(st))
    s, b = anon("GET", "/%s/pub/a.txt" % B)
    check("anonymous GET of a public object", (s, b) == (200, b"public a"), str((s, b[:100])))
    s, _ = anon("HEAD", "/%s/pub/a.txt" % B)
    check("anonymous HEAD of a public object", s == 200, str(s))
    anon_denied("GET pub/secret.txt (denied)", "GET", "/%s/pub/secret.txt" % B)
    anon_denied("GET priv/s.txt", "GET", "/%s/priv/s.txt" % B)
    anon_denied("list the bucket", "GET", "/%s?list-type=2" % B)
    anon_denied("PUT an object", "PUT", "/%s/pub/anon.txt" % B, b"anon")
    anon_denied("DELETE an object", "DELETE", "/%s/pub/a.txt" % B)
    anon_denied("ListBuckets", "GET", "/")
    code, _ = code_of(lambda: alice.head_object(Bucket=B, Key="pub/anon.txt"))
    check("the anonymous PUT stored nothing", code in ("404", "NoSuchKey"), str(code))
    check("the anonymous DELETE deleted nothing", body(alice, B, "pub/a.txt") == b"public a")

    # PublicAccessBlock
    code, _ = code_of(lambda: alice.get_public_access_block(Bucket=B))
    check("no access block: NoSuchPublicAccessBlockConfiguration",
          code == "NoSuchPublicAccessBlockConfiguration", str(code))
    alice.put_public_access_block(Bucket=B, PublicAccessBlockConfiguration={
        "BlockPublicAcls": False, "IgnorePublicAcls": False, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    cfg = alice.get_public_access_block(Bucket=B)["PublicAccessBlockConfiguration"]
    check("GetPublicAccessBlock reads it back",
          cfg["BlockPublicPolicy"] and cfg["RestrictPublicBuckets"] and not cfg["BlockPublicAcls"],
          str(cfg))
    denied("BlockPublicPolicy refuses a public policy",
           lambda: alice.put_bucket_policy(Bucket=B, Policy=public))
    anon_denied("RestrictPublicBuckets: the public grant", "GET", "/%s/pub/a.txt" % B)
    alice.delete_public_access_block(Bucket=B)
    s, _ = anon("GET", "/%s/pub/a.txt" % B)
    check("access block deleted: public again", s == 200, str(s))
    alice.delete_bucket_policy(Bucket=B)
    anon_denied("policy deleted: the public grant is gone", "GET", "/%s/pub/a.txt" % B)

    # canned ACLs: refused under BucketOwnerEnforced, served once ownership allows them
    code, _ = code_of(lambda: alice.put_object(Bucket=B, Key="acl/x", Body=b"x",
                                               ACL="public-read"))
    check("public-read under BucketOwnerEnforced: AccessControlListNotSupported",
          code == "AccessControlListNotSupported", str(code))
    own = alice.get_bucket_ownership_controls(Bucket=B)["OwnershipControls"]["Rules"][0]
    check("default ownership is BucketOwnerEnforced",
          own["ObjectOwnership"] == "BucketOwnerEnforced", str(own))
    alice.put_bucket_ownership_controls(Bucket=B, OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]})
    alice.put_object(Bucket=B, Key="acl/x", Body=b"acl public", ACL="public-read")
    alice.put_object(Bucket=B, Key="acl/y", Body=b"acl private")
    s, b = anon("GET", "/%s/acl/x" % B)
    check("public-read object ACL: anonymous GET", (s, b) == (200, b"acl public"), str(s))
    anon_denied("private object next to it", "GET", "/%s/acl/y" % B)
    grants = alice.get_object_acl(Bucket=B, Key="acl/x")["Grants"]
    check("GetObjectAcl shows AllUsers READ",
          any(g["Grantee"].get("URI", "").endswith("/AllUsers") and g["Permission"] == "READ"
              for g in grants), str(grants))
    mpu = alice.create_multipart_upload(Bucket=B, Key="acl/mpu", ACL="public-read")
    part = alice.upload_part(Bucket=B, Key="acl/mpu", UploadId=mpu["UploadId"], PartNumber=1,
                             Body=b"multipart public")
    alice.complete_multipart_upload(Bucket=B, Key="acl/mpu", UploadId=mpu["UploadId"],
                                    MultipartUpload={"Parts": [{"PartNumber": 1,
                                                                "ETag": part["ETag"]}]})
    s, b = anon("GET", "/%s/acl/mpu" % B)
    check("public-read on CreateMultipartUpload: anonymous GET of the completed object",
          (s, b) == (200, b"multipart public"), str(s))
    alice.copy_object(Bucket=B, Key="acl/copy", CopySource={"Bucket": B, "Key": "acl/x"})
    anon_denied("a copy of a public object is private", "GET", "/%s/acl/copy" % B)
    alice.put_object_acl(Bucket=B, Key="acl/y", ACL="public-read")
    s, _ = anon("GET", "/%s/acl/y" % B)
    check("PutObjectAcl public-read: anonymous GET", s == 200, str(s))
    alice.put_public_access_block(Bucket=B, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": False,
        "RestrictPublicBuckets": False})
    anon_denied("IgnorePublicAcls: the object ACL", "GET", "/%s/acl/x" % B)
    denied("BlockPublicAcls refuses a public ACL",
           lambda: alice.put_object_acl(Bucket=B, Key="acl/y", ACL="public-read"))
    alice.delete_public_access_block(Bucket=B)
    alice.put_bucket_acl(Bucket=B, ACL="public-read")
    s, b = anon("GET", "/%s?list-type=2&prefix=acl/" % B)
    check("public-read bucket ACL: anonymous listing", s == 200 and b"acl/x" in b, str(s))
    alice.put_bucket_acl(Bucket=B, ACL="private")
    anon_denied("private bucket ACL: listing", "GET", "/%s?list-type=2" % B)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
