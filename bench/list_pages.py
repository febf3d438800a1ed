#!/usr/bin/env python3
"""Pages through one prefix with ListObjectsV2 and times every page (bench/cluster.sh, listing).

    list_pages.py ENDPOINT BUCKET PREFIX EXPECTED [MAX_KEYS]

One client, one keep-alive connection, requests signed with SigV4 (botocore) from
CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY. Follows NextContinuationToken to the end, then checks the
listing: EXPECTED keys, each once, in order. Prints one JSON line: pages, keys, seconds, pages/s,
and the median time of a page in the first and in the last fifth of the pages (a listing whose
pages get slower the deeper it goes shows there; medians, so one page delayed by the host does
not decide it). Exits 1 when the listing is wrong or a request
fails.
"""
import http.client
import json
import os
import re
import statistics
import sys
import time
import urllib.parse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY_RE = re.compile(rb"<Key>([^<]*)</Key>")
TOKEN_RE = re.compile(rb"<NextContinuationToken>([^<]*)</NextContinuationToken>")


def main():
    endpoint, bucket, prefix, expected = sys.argv[1:5]
    max_keys = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    expected = int(expected)
    creds = Credentials(os.environ["CAIRN_ACCESS_KEY"], os.environ["CAIRN_SECRET_KEY"])
    u = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    keys, times, token = [], [], None
    start = time.monotonic()
    while True:
        q = {"list-type": "2", "max-keys": str(max_keys), "prefix": prefix}
        if token is not None:
            q["continuation-token"] = token
        query = urllib.parse.urlencode(sorted(q.items()), quote_via=urllib.parse.quote)
        url = f"{endpoint}/{bucket}?{query}"
        req = AWSRequest(method="GET", url=url, headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
        SigV4Auth(creds, "s3", "us-east-1").add_auth(req)
        t0 = time.monotonic()
        conn.request("GET", f"/{bucket}?{query}", headers=dict(req.headers.items()))
        resp = conn.getresponse()
        body = resp.read()
        times.append(time.monotonic() - t0)
        if resp.status != 200:
            print(f"list_pages: page {len(times)}: HTTP {resp.status}: {body[:300]!r}", file=sys.stderr)
            return 1
        keys += [k.decode() for k in KEY_RE.findall(body)]
        m = TOKEN_RE.search(body)
        if not m:
            break
        token = m.group(1).decode()
    secs = time.monotonic() - start
    if len(keys) != expected or keys != sorted(set(keys)) or not all(k.startswith(prefix) for k in keys):
        print(f"list_pages: {len(keys)} keys listed ({len(set(keys))} distinct), expected {expected} "
              f"in order", file=sys.stderr)
        return 1
    fifth = max(1, len(times) // 5)
    print(json.dumps({
        "pages": len(times), "keys": len(keys), "seconds": secs, "pages_per_s": len(times) / secs,
        "first_fifth_ms": statistics.median(times[:fifth]) * 1e3,
        "last_fifth_ms": statistics.median(times[-fifth:]) * 1e3,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
