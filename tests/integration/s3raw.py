"""Minimal SigV4-signed S3 requests over raw sockets, standard library only.

Used by the fault tests, which must not depend on an S3 client and need to send what no client
sends (truncated bodies, wrong payload hashes, oversized headers). Signing follows the AWS SigV4
header scheme: canonical request -> string to sign -> HMAC chain (date, region, "s3",
"aws4_request"). The endpoint and credentials come from CAIRN_ENDPOINT, CAIRN_ACCESS_KEY and
CAIRN_SECRET_KEY.

As a command: s3raw.py mb BUCKET | rb BUCKET | hb BUCKET | ls | put BUCKET KEY FILE |
get BUCKET KEY FILE | head BUCKET KEY | rm BUCKET KEY prints the HTTP status (and the start of the
body) and exits 0 on 2xx, 1 otherwise.
CAIRN_REGION (default us-east-1) is the region signed for.
"""

import datetime
import hashlib
import hmac
import os
import socket
import sys
import urllib.parse

REGION = os.environ.get("CAIRN_REGION", "us-east-1")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def endpoint():
    u = urllib.parse.urlsplit(os.environ["CAIRN_ENDPOINT"])
    return u.hostname, u.port or 80


def _q(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def sign(method, path, query, headers, payload_hash, now=None, secret=None, access=None,
         host=None):
    """Return headers plus x-amz-date, x-amz-content-sha256 and Authorization.

    path is the decoded path ("/bucket/key"); query a dict (values may be ""); headers a dict of
    extra headers to send and sign; host the Host header ("name:port", default CAIRN_ENDPOINT's).
    The caller's dict is not modified."""
    access = access or os.environ["CAIRN_ACCESS_KEY"]
    secret = secret or os.environ["CAIRN_SECRET_KEY"]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    h = {k.lower(): str(v).strip() for k, v in headers.items()}
    h["host"] = host or "%s:%d" % endpoint()
    h["x-amz-date"] = amz_date
    h["x-amz-content-sha256"] = payload_hash
    signed = sorted(k for k in h if k in ("host", "content-md5", "content-type") or k.startswith("x-amz-"))
    canon_query = "&".join("%s=%s" % (_q(k), _q(v)) for k, v in sorted(query.items()))
    canon = "\n".join([
        method, _q(path, safe="/-_.~"), canon_query,
        "".join("%s:%s\n" % (k, h[k]) for k in signed), ";".join(signed), payload_hash,
    ])
    scope = "%s/%s/s3/aws4_request" % (day, REGION)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canon.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    h["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access, scope, ";".join(signed), sig)
    return h


def request_bytes(method, path, query, headers):
    """The request line and header block, ready to send."""
    target = _q(path, safe="/-_.~")
    if query:
        target += "?" + "&".join(("%s=%s" % (_q(k), _q(v))) if v != "" else _q(k)
                                 for k, v in sorted(query.items()))
    lines = ["%s %s HTTP/1.1" % (method, target)]
    lines += ["%s: %s" % (k, v) for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock, method="GET"):
    """Read one response: (status, headers dict, body). Returns (0, {}, b"") if the server closed
    the connection without answering."""
    f = sock.makefile("rb")
    line = f.readline()
    if not line:
        return 0, {}, b""
    parts = line.decode("latin-1").split(" ", 2)
    status = int(parts[1])
    headers = {}
    while True:
        hl = f.readline().decode("latin-1")
        if hl in ("\r\n", "\n", ""):
            break
        k, _, v = hl.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = b""
    if method != "HEAD" and status not in (204, 304):
        if "content-length" in headers:
            body = f.read(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                n = int(f.readline().split(b";")[0], 16)
                if n == 0:
                    f.readline()
                    break
                body += f.read(n)
                f.readline()
    return status, headers, body


def connect(timeout=30):
    host, port = endpoint()
    return socket.create_connection((host, port), timeout=timeout)


def request(method, path, query=None, body=b"", headers=None, payload_hash=None):
    """One signed request on a fresh connection: (status, headers, body)."""
    query = query or {}
    h = dict(headers or {})
    h["Content-Length"] = str(len(body))
    ph = payload_hash or hashlib.sha256(body).hexdigest()
    signed = sign(method, path, query, h, ph)
    with connect() as s:
        s.sendall(request_bytes(method, path, query, signed) + body)
        return read_response(s, method)


def main(argv):
    cmd = argv[1]
    if cmd == "mb":
        st, _, body = request("PUT", "/" + argv[2])
    elif cmd == "rb":
        st, _, body = request("DELETE", "/" + argv[2])
    elif cmd == "hb":
        st, _, body = request("HEAD", "/" + argv[2])
    elif cmd == "ls":
        st, _, body = request("GET", "/")
    elif cmd == "put":
        with open(argv[4], "rb") as f:
            st, _, body = request("PUT", "/%s/%s" % (argv[2], argv[3]), body=f.read())
    elif cmd == "get":
        st, _, body = request("GET", "/%s/%s" % (argv[2], argv[3]))
        if 200 <= st < 300:
            with open(argv[4], "wb") as f:
                f.write(body)
            body = b""
    elif cmd == "head":
        st, _, body = request("HEAD", "/%s/%s" % (argv[2], argv[3]))
    elif cmd == "rm":
        st, _, body = request("DELETE", "/%s/%s" % (argv[2], argv[3]))
    else:
        print("unknown command " + cmd, file=sys.stderr)
        return 2
    text = body.decode("utf-8", "replace")
    print(st, text if cmd == "ls" else text[:500])
    return 0 if 200 <= st < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
