#!/usr/bin/env python3
"""Prints SigV4 presigned request targets ("/bucket/key?X-Amz-..."), one per line, for wrk.

    presign.py ENDPOINT METHOD BUCKET PREFIX COUNT [EXPIRES]

Keys are PREFIX-%08u for 0..COUNT-1, as `cairn bench` names them. Each URL signs only `host`
with UNSIGNED-PAYLOAD, as boto3's generate_presigned_url and `aws s3 presign` (V4) make them; the
credentials come from CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY. Standard library only: the same
scheme as tests/integration/s3raw.py signs headers with, moved into the query string.
"""
import datetime
import hashlib
import hmac
import os
import sys
import urllib.parse

REGION = "us-east-1"


def quote(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def main():
    endpoint, method, bucket, prefix, count = sys.argv[1:6]
    expires = sys.argv[6] if len(sys.argv) > 6 else "3600"
    host = urllib.parse.urlsplit(endpoint).netloc
    access, secret = os.environ["CAIRN_ACCESS_KEY"], os.environ["CAIRN_SECRET_KEY"]
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], REGION)
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": access + "/" + scope,
              "X-Amz-Date": amz_date, "X-Amz-Expires": expires, "X-Amz-SignedHeaders": "host"}
    query = "&".join("%s=%s" % (quote(k), quote(v)) for k, v in sorted(params.items()))
    out = []
    for i in range(int(count)):
        path = "/%s/%s-%08u" % (bucket, prefix, i)
        canon = "\n".join([method, quote(path, safe="/-_.~"), query, "host:%s\n" % host, "host",
                           "UNSIGNED-PAYLOAD"])
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canon.encode()).hexdigest()])
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        out.append("%s?%s&X-Amz-Signature=%s\n" % (quote(path, safe="/-_.~"), query, sig))
    sys.stdout.write("".join(out))


if __name__ == "__main__":
    main()
