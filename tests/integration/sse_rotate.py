"""Master-key rotation through boto3, run by test_sse_rotate.sh (docs/encryption.md, "Rotating
the master key"). `write`: SSE-S3 objects of every kind whose data keys the rewrap pass must move -
a simple object, a multipart one, two versions of a key in a versioned bucket, an object of a
bucket with default encryption, an upload left in progress (its part's key sits in the parts
database) - and one SSE-C object (under its customer's key, which the pass must leave alone);
their digests and the upload's id go to ROT_STATE. `verify`: every one reads back byte-exact (each
version by id), the upload completes and reads back (`read`: all but the upload). `fails`: a GET
of the simple object answers 500 (its master key is not loaded), never bytes. Endpoint in CAIRN_ENDPOINT, credentials in AWS_*.
Prints one `ok -` / `FAIL -` line per check; exits 1 when any failed.
"""
import base64
import hashlib
import json
import os
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

S3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1",
                  config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
STATE = os.environ["ROT_STATE"]
B, BD = "rot", "rot-default"
CKEY = bytes(range(32))
SSEC = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": base64.b64encode(CKEY).decode(),
        "SSECustomerKeyMD5": base64.b64encode(hashlib.md5(CKEY).digest()).decode()}
FAILS = 0
MB = 1024 * 1024


def check(name, cond, detail=""):
    global FAILS
    print(("ok - " if cond else "FAIL - ") + name + ("" if cond else " " + str(detail)))
    FAILS += 0 if cond else 1


def md5(b):
    return hashlib.md5(b).hexdigest()


def write():
    st = {"objects": {}, "versions": []}
    S3.create_bucket(Bucket=B)
    S3.put_bucket_versioning(Bucket=B, VersioningConfiguration={"Status": "Enabled"})
    S3.create_bucket(Bucket=BD)
    S3.put_bucket_encryption(Bucket=BD, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    simple = os.urandom(200 * 1024 + 7)
    S3.put_object(Bucket=B, Key="simple", Body=simple, ServerSideEncryption="AES256")
    st["objects"]["simple"] = md5(simple)
    up = S3.create_multipart_upload(Bucket=B, Key="mp", ServerSideEncryption="AES256")["UploadId"]
    parts, whole = [], b""
    for n, size in ((1, 5 * MB), (2, MB + 3)):
        body = os.urandom(size)
        whole += body
        parts.append({"PartNumber": n, "ETag": S3.upload_part(
            Bucket=B, Key="mp", UploadId=up, PartNumber=n, Body=body)["ETag"]})
    S3.complete_multipart_upload(Bucket=B, Key="mp", UploadId=up,
                                 MultipartUpload={"Parts": parts})
    st["objects"]["mp"] = md5(whole)
    for i in range(2):
        body = os.urandom(70 * 1024 + i)
        vid = S3.put_object(Bucket=B, Key="v", Body=body, ServerSideEncryption="AES256")
        st["versions"].append([vid["VersionId"], md5(body)])
    dflt = os.urandom(1000)
    S3.put_object(Bucket=BD, Key="d", Body=dflt)
    st["default"] = md5(dflt)
    ssec = os.urandom(3000)
    S3.put_object(Bucket=B, Key="ssec", Body=ssec, **SSEC)
    st["ssec"] = md5(ssec)
    st["pending"] = S3.create_multipart_upload(Bucket=B, Key="pending",
                                               ServerSideEncryption="AES256")["UploadId"]
    pend = os.urandom(5 * MB)
    st["pending_etag"] = S3.upload_part(Bucket=B, Key="pending", UploadId=st["pending"],
                                        PartNumber=1, Body=pend)["ETag"]
    st["pending_md5"] = md5(pend)
    with open(STATE, "w") as f:
        json.dump(st, f)
    check("SSE objects written (simple, multipart, 2 versions, default, SSE-C, an upload)", True)


def read():
    with open(STATE) as f:
        st = json.load(f)
    for k, want in st["objects"].items():
        got = S3.get_object(Bucket=B, Key=k)
        check("%s reads back byte-exact" % k,
              md5(got["Body"].read()) == want and got.get("ServerSideEncryption") == "AES256")
    for vid, want in st["versions"]:
        got = S3.get_object(Bucket=B, Key="v", VersionId=vid)["Body"].read()
        check("version %s... reads back byte-exact" % vid[:8], md5(got) == want)
    got = S3.get_object(Bucket=BD, Key="d")["Body"].read()
    check("the default-encrypted object reads back", md5(got) == st["default"])
    got = S3.get_object(Bucket=B, Key="ssec", **SSEC)["Body"].read()
    check("the SSE-C object reads back with its key", md5(got) == st["ssec"])
    return st


def verify():
    st = read()
    S3.complete_multipart_upload(Bucket=B, Key="pending", UploadId=st["pending"],
                                 MultipartUpload={"Parts": [{"PartNumber": 1,
                                                             "ETag": st["pending_etag"]}]})
    got = S3.get_object(Bucket=B, Key="pending")["Body"].read()
    check("the upload in progress completes and reads back", md5(got) == st["pending_md5"])


def fails():
    try:
        body = S3.get_object(Bucket=B, Key="simple")["Body"].read()
        check("GET under a missing master key fails", False, "got %d bytes" % len(body))
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        check("GET under a missing master key: %d" % status, status in (500, 503))


if __name__ == "__main__":
    {"write": write, "read": read, "verify": verify, "fails": fails}[sys.argv[1]]()
    sys.exit(1 if FAILS else 0)
