#!/usr/bin/env python3
"""make_corpus.py - write the seed corpus of every fuzz target into tests/fuzz/corpus/<target>/.

Seeds are small, valid (or nearly valid) inputs in the shape each target expects, so a fuzzer
starts deep inside the parser instead of spending its first hour rediscovering "GET / HTTP/1.1".
Signed seeds (SigV4 headers and presigned queries, SigV2, aws-chunked chunk signatures) are
computed here with AWS's documented example credentials and the date the targets use
(2013-05-24), so they verify. Output is deterministic: running the script again rewrites the same
files (named by a short hash of their content). Regression inputs from fixed findings live next to
the seeds as regress-*; this script leaves them alone.

Usage: tests/fuzz/make_corpus.py [OUTDIR]   (default: tests/fuzz/corpus next to this file)
"""
import base64
import hashlib
import hmac
import json
import os
import struct
import sys
import urllib.parse

AK = "AKIAIOSFODNN7EXAMPLE"
SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DATE = "20130524"
AMZ_DATE = "20130524T000000Z"
HTTP_DATE = "Fri, 24 May 2013 00:00:00 GMT"
NOW = 1369353600  # the targets' clock: 2013-05-24T00:00:00Z
REGION = "us-east-1"
SCOPE = f"{DATE}/{REGION}/s3/aws4_request"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
SEED_SIG = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"


def hmac256(key, msg):
    return hmac.new(key, msg.encode() if isinstance(msg, str) else msg, hashlib.sha256).digest()


def signing_key():
    k = hmac256(("AWS4" + SK).encode(), DATE)
    for part in (REGION, "s3", "aws4_request"):
        k = hmac256(k, part)
    return k


def uri_encode(s, keep_slash):
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(s, safe=safe)


def canonical_query(raw_query, skip=()):
    pairs = []
    for item in raw_query.split("&") if raw_query else []:
        name, _, value = item.partition("=")
        name = urllib.parse.unquote_plus(name)
        value = urllib.parse.unquote_plus(value)
        if name in skip:
            continue
        pairs.append((uri_encode(name, False), uri_encode(value, False)))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def sigv4_header(method, path, query, headers, payload_hash):
    """headers: list of (name, value); returns the lines with Authorization added."""
    hs = sorted((n.lower(), " ".join(v.split())) for n, v in headers)  # trimmed, spaces collapsed
    signed = ";".join(n for n, _ in hs)
    canon = "\n".join([method, path, canonical_query(query),  # S3: the path as sent
                       "".join(f"{n}:{v}\n" for n, v in hs), signed, payload_hash])
    sts = "\n".join(["AWS4-HMAC-SHA256", AMZ_DATE, SCOPE,
                     hashlib.sha256(canon.encode()).hexdigest()])
    sig = hmac.new(signing_key(), sts.encode(), hashlib.sha256).hexdigest()
    auth = (f"AWS4-HMAC-SHA256 Credential={AK}/{SCOPE}, SignedHeaders={signed}, "
            f"Signature={sig}")
    return headers + [("Authorization", auth)]


def sigv4_presigned(method, path, query, host, expires=3600):
    q = (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AK}%2F{DATE}%2F{REGION}%2Fs3%2F"
         f"aws4_request&X-Amz-Date={AMZ_DATE}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host")
    if query:
        q = query + "&" + q
    canon = "\n".join([method, path, canonical_query(q),
                       f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", AMZ_DATE, SCOPE,
                     hashlib.sha256(canon.encode()).hexdigest()])
    sig = hmac.new(signing_key(), sts.encode(), hashlib.sha256).hexdigest()
    return f"{path}?{q}&X-Amz-Signature={sig}"


V2_SUBRESOURCES = sorted(["acl", "cors", "delete", "lifecycle", "location", "logging",
                          "notification", "partNumber", "policy", "requestPayment",
                          "response-cache-control", "response-content-disposition",
                          "response-content-encoding", "response-content-language",
                          "response-content-type", "response-expires", "restore", "tagging",
                          "torrent", "uploadId", "uploads", "versionId", "versioning",
                          "versions", "website"])


def sigv2_sts(method, target, headers, date_line, vhost=None):
    get = {n.lower(): v for n, v in headers}
    amz = {}
    for n, v in headers:
        if n.lower().startswith("x-amz-"):
            amz.setdefault(n.lower(), []).append(v)
    path, _, query = target.partition("?")
    res = (("/" + vhost) if vhost else "") + path
    sub = []
    params = [p.partition("=") for p in query.split("&")] if query else []
    for name in V2_SUBRESOURCES:
        for k, eq, v in params:
            if k == name:
                sub.append(name + ("=" + urllib.parse.unquote(v) if eq else ""))
                break
    if sub:
        res += "?" + "&".join(sub)
    return "\n".join([method, get.get("content-md5", ""), get.get("content-type", ""),
                      date_line, ""]) + "".join(
        f"{n}:{','.join(amz[n])}\n" for n in sorted(amz)) + res


def sigv2_sign(sts):
    return base64.b64encode(hmac.new(SK.encode(), sts.encode(), hashlib.sha1).digest()).decode()


def sigv2_header(method, target, headers, vhost=None):
    amz_date = any(n.lower() == "x-amz-date" for n, _ in headers)
    date = dict((n.lower(), v) for n, v in headers).get("date", "")
    sig = sigv2_sign(sigv2_sts(method, target, headers, "" if amz_date else date, vhost))
    return headers + [("Authorization", f"AWS {AK}:{sig}")]


def sigv2_presigned(method, target, expires):
    sig = sigv2_sign(sigv2_sts(method, target, [], str(expires)))
    sep = "&" if "?" in target else "?"
    return (f"{target}{sep}AWSAccessKeyId={AK}&Expires={expires}&Signature="
            f"{urllib.parse.quote(sig, safe='')}")


def auth_lines(method, target, headers):
    """The line format of fuzz_sigv4 and fuzz_sigv2: method, target, then name:value lines."""
    return "\n".join([method, target] + [f"{n}:{v}" for n, v in headers]).encode()


# ---- per-target seeds ----

def seeds_http():
    heads = [
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n\r\n",
        "GET /bucket/key.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n"
        "If-None-Match: \"abc\"\r\n\r\n",
        "PUT /photos/2024/holiday.jpg HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"
        "Content-Length: 5\r\nContent-MD5: XUFAKrxLKna5cZ2REBfFkg==\r\n"
        "x-amz-content-sha256: " + hashlib.sha256(b"hello").hexdigest() + "\r\n"
        "x-amz-date: 20130524T000000Z\r\nExpect: 100-continue\r\n\r\nhello",
        "PUT /b/k HTTP/1.1\r\nHost: b.s3.local\r\nTransfer-Encoding: chunked\r\n"
        "Content-Encoding: aws-chunked\r\nx-amz-decoded-content-length: 5\r\n"
        "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n"
        "x-amz-trailer: x-amz-checksum-crc32\r\n\r\n",
        "POST /b/k?uploads HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
        "DELETE /b/k?uploadId=abc HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "HEAD /b/k?versionId=null HTTP/1.1\r\nHost: h\r\nUser-Agent: rclone/v1.60\r\n"
        "X-Folded: a\r\n b\r\n\r\n",
        "GET http://127.0.0.1:9000/b?list-type=2&prefix=a%2Fb&delimiter=%2F HTTP/1.1\r\n"
        "Host: 127.0.0.1:9000\r\nAccept-Encoding: identity\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /health/ready HTTP/1.1\r\nhost:h\r\ncontent-length:  7 \r\n\r\n",
        "GET / HTTP/1.1\nHost: bare-lf\n\n",
    ]
    return [h.encode() for h in heads] + [b"1a2b;chunk-signature=" + b"0" * 64 + b"\r\n",
                                         b"0\r\n\r\n", b"ffffffff\r\n"]


def chunk_sig(prev, data):
    sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", AMZ_DATE, SCOPE, prev, EMPTY_SHA,
                     hashlib.sha256(data).hexdigest()])
    return hmac.new(signing_key(), sts.encode(), hashlib.sha256).hexdigest()


def trailer_sig(prev, trailer):
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", AMZ_DATE, SCOPE, prev,
                     hashlib.sha256(trailer).hexdigest()])
    return hmac.new(signing_key(), sts.encode(), hashlib.sha256).hexdigest()


def crc32_b64(data):
    import zlib
    return base64.b64encode(struct.pack(">I", zlib.crc32(data))).decode()


def signed_chunks(chunks, trailer=None):
    prev, out = SEED_SIG, b""
    for c in chunks + [b""]:
        prev = chunk_sig(prev, c)
        out += f"{len(c):x};chunk-signature={prev}\r\n".encode() + c
        if c:
            out += b"\r\n"
    if trailer is None:
        return out + b"\r\n"
    t = trailer.encode()
    return out + t + f"x-amz-trailer-signature:{trailer_sig(prev, t)}\r\n\r\n".encode()


def seeds_chunked():
    body = b"hello world, this is an aws-chunked body"
    crc = crc32_b64(body)
    out = []
    for step in (0, 7, 63, 200):  # first byte: feed step (>= 192: one feed)
        b = bytes([step])
        out.append(b + f"{len(body):x}\r\n".encode() + body +
                   f"\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode())
        out.append(b + signed_chunks([body[:16], body[16:]]))
        out.append(b + signed_chunks([body], f"x-amz-checksum-crc32:{crc}\n"))
    out.append(b"\x05" + b"5\nhello\n0\nx-amz-checksum-crc32:" + crc32_b64(b"hello").encode() +
               b"\n\n")
    out.append(b"\xc8" + b"0\r\n\r\n")
    return out


def seeds_sigv4():
    host = ("Host", "examplebucket.s3.amazonaws.com")
    out = []
    # AWS's documented GET example (same key, date and signature inputs as the target).
    out.append(auth_lines("GET", "/test.txt", sigv4_header(
        "GET", "/test.txt", "", [host, ("Range", "bytes=0-9"),
                                 ("x-amz-content-sha256", EMPTY_SHA), ("x-amz-date", AMZ_DATE)],
        EMPTY_SHA)))
    body_sha = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    out.append(auth_lines("PUT", "/test%24file.text", sigv4_header(
        "PUT", "/test%24file.text", "",
        [host, ("Date", HTTP_DATE), ("x-amz-date", AMZ_DATE), ("x-amz-storage-class",
                                                               "REDUCED_REDUNDANCY"),
         ("x-amz-content-sha256", body_sha)], body_sha)))
    out.append(auth_lines("GET", "/?lifecycle", sigv4_header(
        "GET", "/", "lifecycle", [host, ("x-amz-content-sha256", EMPTY_SHA),
                                  ("x-amz-date", AMZ_DATE)], EMPTY_SHA)))
    out.append(auth_lines("GET", "/?list-type=2&max-keys=2&prefix=J", sigv4_header(
        "GET", "/", "list-type=2&max-keys=2&prefix=J",
        [host, ("x-amz-content-sha256", EMPTY_SHA), ("x-amz-date", AMZ_DATE)], EMPTY_SHA)))
    out.append(auth_lines("PUT", "/examplebucket/chunkObject.txt", sigv4_header(
        "PUT", "/examplebucket/chunkObject.txt", "",
        [("Host", "s3.amazonaws.com"), ("x-amz-date", AMZ_DATE),
         ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
         ("Content-Encoding", "aws-chunked"), ("x-amz-decoded-content-length", "66560")],
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")))
    out.append(auth_lines("PUT", "/b/k%20with%20space+plus", sigv4_header(
        "PUT", "/b/k%20with%20space+plus", "",
        [("Host", "127.0.0.1:9000"), ("x-amz-date", AMZ_DATE),
         ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("x-amz-meta-a", "  spaced  value "),
         ("x-amz-copy-source", "/src/key")], "UNSIGNED-PAYLOAD")))
    out.append(auth_lines("GET", sigv4_presigned("GET", "/test.txt", "", host[1], 86400),
                          [host]))
    out.append(auth_lines("PUT", sigv4_presigned("PUT", "/mine/upload.bin", "", host[1]),
                          [host]))
    out.append(auth_lines("GET", sigv4_presigned("GET", "/b/k", "versionId=null", host[1]),
                          [host]))
    # SigV2 through the same entry point.
    out.append(auth_lines("GET", "/photos/puppy.jpg", sigv2_header(
        "GET", "/photos/puppy.jpg", [host, ("Date", HTTP_DATE)])))
    out.append(auth_lines("GET", sigv2_presigned("GET", "/b/k", NOW + 600), [host]))
    out.append(b"GET\n/\nAuthorization:AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, "
               b"Signature=00\nhost:h")
    return out


def seeds_sigv2():
    host = ("Host", "johnsmith.s3.amazonaws.com")
    reqs = [
        ("GET", "/photos/puppy.jpg", [host, ("Date", HTTP_DATE)], "johnsmith"),
        ("PUT", "/photos/puppy.jpg", [("Content-Type", "image/jpeg"), ("Content-Length", "94328"),
                                      host, ("Date", HTTP_DATE)], "johnsmith"),
        ("GET", "/?prefix=photos&max-keys=50&marker=puppy",
         [("User-Agent", "Mozilla/5.0"), host, ("Date", HTTP_DATE)], "johnsmith"),
        ("GET", "/?acl", [host, ("Date", HTTP_DATE)], "johnsmith"),
        ("DELETE", "/johnsmith/photos/puppy.jpg",
         [("User-Agent", "dotnet"), ("Host", "s3.amazonaws.com"), ("Date", HTTP_DATE),
          ("x-amz-date", HTTP_DATE)], None),
        ("PUT", "/static.johnsmith.net/db-backup.dat.gz",
         [("User-Agent", "curl/7.15.5"), ("Host", "static.johnsmith.net:8080"),
          ("Date", HTTP_DATE), ("x-amz-acl", "public-read"),
          ("content-type", "application/x-download"),
          ("Content-MD5", "4gJE4saaMU4BqNR0kLY+lw=="),
          ("X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"),
          ("X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"),
          ("X-Amz-Meta-FileChecksum", "0x02661779"),
          ("X-Amz-Meta-ChecksumAlgorithm", "crc32"),
          ("Content-Disposition", "attachment; filename=database.dat"),
          ("Content-Encoding", "gzip"), ("Content-Length", "5913339")], None),
        ("GET", "/b/k?uploadId=abc&partNumber=2&versionId=v1&response-content-type=text%2Fplain",
         [("Host", "h"), ("Date", HTTP_DATE)], None),
        ("PUT", "/b/k?tagging", [("Host", "h"), ("Date", HTTP_DATE), ("x-amz-b", "2"),
                                 ("X-Amz-A", "1"), ("x-amz-copy-source", "/src/key")], None),
    ]
    out = []
    for method, target, headers, vhost in reqs:
        # The target gets the bucket for a virtual-hosted request from its own selector line.
        signed = sigv2_header(method, target, headers, vhost)
        out.append((vhost or "").encode() + b"\n" + auth_lines(method, target, signed))
    out.append(b"\n" + auth_lines("GET", sigv2_presigned("GET", "/b/k?versionId=x", NOW + 3600),
                                  [("Host", "h")]))
    out.append(b"\n" + auth_lines("GET", sigv2_presigned("GET", "/b/k", NOW - 1),
                                  [("Host", "h")]))
    return out


def seeds_xml():
    parts = "".join(f"<Part><PartNumber>{i}</PartNumber><ETag>\"{hashlib.md5(str(i).encode()).hexdigest()}\"</ETag></Part>"
                    for i in range(1, 4))
    return [s.encode() for s in [
        f'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{parts}'
        "</CompleteMultipartUpload>",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUpload><Part>"
        "<ETag>&quot;0cc175b9c0f1b6a831c399e269772661&quot;</ETag><PartNumber>1</PartNumber>"
        "<ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><PartNumber>10000</PartNumber>"
        "<ETag>92eb5ffee6ae2fec3ad71c777531578f</ETag><ChecksumSHA256>"
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=</ChecksumSHA256></Part>"
        "</CompleteMultipartUpload>",
        "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>a</ETag></Part>"
        "<Part><PartNumber>1</PartNumber><ETag>b</ETag></Part></CompleteMultipartUpload>",
        '<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>'
        "<Object><Key>a/b.txt</Key></Object><Object><Key>c&amp;d</Key>"
        "<VersionId>null</VersionId></Object></Delete>",
        "<Delete><Object><Key></Key></Object><Object><Key>&#x1F600;</Key></Object></Delete>",
        "<VersioningConfiguration><Status>Enabled</Status><MfaDelete>Disabled</MfaDelete>"
        "</VersioningConfiguration>",
        '<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        "<Status>Suspended</Status></VersioningConfiguration>",
        "<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint>"
        "</CreateBucketConfiguration>",
        "<!DOCTYPE x [<!ENTITY a \"b\">]><Delete><Object><Key>&a;</Key></Object></Delete>",
        '<Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a b</Key>'
        "<Value>caf\u00e9</Value></Tag><Tag><Key>aws:x</Key><Value></Value></Tag></TagSet>"
        "</Tagging>",
        "project=cairn&team=s%20t+x&empty=&k",
        "/bucket/key?list-type=2&prefix=a%2F&delimiter=%2F&continuation-token=YQ%3D%3D",
        "/b/k?uploadId=x&partNumber=3&versionId",
        "bytes=0-9", "bytes=-500", "bytes=900-", "bytes=1-2,4-5",
        "/src-bucket/some%20key%2Bplus?versionId=abc",
        "\"d41d8cd98f00b204e9800998ecf8427e\", W/\"x\"", "*",
    ]]


def seeds_cond():
    # First byte: object size selector and copy-source flag; then 8 bytes of mtime; then lines:
    # Range, If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
    # x-amz-copy-source-range (a line "-" means the header is absent).
    mt = struct.pack(">q", NOW * 1000 + 123)
    lines = [
        ["bytes=0-9", "\"d41d8cd98f00b204e9800998ecf8427e\"", "-", "-", "-", "bytes=0-0"],
        ["bytes=-5", "-", "W/\"x\", \"d41d8cd98f00b204e9800998ecf8427e\"", "-", "-", "-"],
        ["bytes=10-", "*", "-", "-", HTTP_DATE, "bytes=5-1"],
        ["-", "-", "-", HTTP_DATE, "-", "-"],
        ["bytes=0-0,5-6", "-", "*", "Thursday, 23-May-13 00:00:00 GMT", "-", "-"],
        ["bytes=5-1", "abc", "-", "-", "Thu May 23 00:00:00 2013", "-"],
        ["bytes=-0", "-", "-", "Fri, 24 May 2013 00:00:01 GMT", "-", "bytes=0-99999"],
        ["bytes = 1-2", " \"a\" , \"b\" ", "-", "-", "Mon, 01 Jan 1990 00:00:00 GMT", "-"],
    ]
    out = []
    for i, ls in enumerate(lines):
        out.append(bytes([i * 37 % 256]) + mt + "\n".join(ls).encode())
    return out


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def bs_record(rtype, blob_id, off, data):
    """A blobstore record: 48-byte header, a CRC32C per 64 KiB block, the data, padding to 8."""
    block = 65536
    nblocks = (len(data) + block - 1) // block
    h = bytearray(48)
    struct.pack_into(">I", h, 0, 0x43425243)
    h[4] = rtype
    h[8:24] = blob_id
    struct.pack_into(">QII", h, 24, off, len(data), nblocks)
    struct.pack_into(">I", h, 44, crc32c(bytes(h[:44])))
    crcs = b"".join(struct.pack(">I", crc32c(data[i:i + block]))
                    for i in range(0, len(data), block))
    rec = bytes(h) + crcs + data
    return rec + b"\0" * (-len(rec) % 8)


def seeds_record():
    a, b = bytes(range(16)), bytes(range(16, 32))
    put_a = bs_record(1, a, 0, b"cairn blob data " * 4)
    put_b = bs_record(1, b, 0, bytes(range(256)) * 20)
    dele = bs_record(2, a, 0, b"")
    return [put_a, put_a + put_b, put_a + dele, put_b[:3000], put_a + b"\x00" * 100 + put_b[:48],
            put_a + bs_record(1, a, 64, b"appended") + dele]


def tlv(tag, value):
    return bytes([tag]) + struct.pack(">I", len(value)) + value


def md_object_fields(key, size, inline=None, parts=()):
    f = tlv(1, key) + tlv(2, b"3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY") + tlv(3, struct.pack(">Q", size))
    f += tlv(4, struct.pack(">q", NOW * 1000)) + tlv(5, b"d41d8cd98f00b204e9800998ecf8427e")
    f += tlv(7, b"text/plain") + tlv(8, b"max-age=60") + tlv(12, HTTP_DATE.encode())
    f += tlv(14, struct.pack(">I", 6) + b"author" + b"cairn")
    f += tlv(15, bytes([1, 1]) + b"AAAAAA==")
    if inline is not None:
        f += tlv(16, inline)
    for p in parts:
        f += tlv(17, p)
    return f


def md_part_fields(number, size, inline=None):
    f = tlv(1, struct.pack(">I", number)) + tlv(2, struct.pack(">Q", size))
    f += tlv(3, struct.pack(">q", NOW * 1000)) + tlv(4, b"0cc175b9c0f1b6a831c399e269772661")
    f += tlv(5, bytes([2]) + b"4waSgw==")
    if inline is not None:
        return f + tlv(6, inline)
    drives = bytes(range(6)) + b"\xff" * 26  # MD_MAX_CELLS (32) drive slots
    layout = bytes(range(16)) + struct.pack(">QI", size, 65536) + bytes([4, 2]) + drives
    return f + tlv(7, layout)


def seeds_mdrecord():
    # First byte selects the decoder: 0 object, 1 bucket, 2 upload, 3 part; then the record.
    V = b"\x01"
    obj_inline = V + md_object_fields(b"photos/2024/holiday.jpg", 5, inline=b"hello")
    obj_parts = V + md_object_fields(b"big.bin", 10 << 20, parts=[
        md_part_fields(1, 5 << 20), md_part_fields(2, 5 << 20)])
    obj_small_parts = V + md_object_fields(b"mp", 6, parts=[md_part_fields(1, 3, b"abc"),
                                                            md_part_fields(2, 3, b"def")])
    marker = V + tlv(1, b"deleted") + tlv(2, b"v2") + tlv(6, b"\x01")
    bucket = V + tlv(1, b"photos") + tlv(2, struct.pack(">q", NOW * 1000)) + \
        tlv(3, AK.encode()) + tlv(4, b"\x01")
    upload = V + tlv(1, b"big.bin") + tlv(2, b"2~aHVfT2sU0ZlXbDVs") + \
        tlv(3, struct.pack(">q", NOW * 1000)) + tlv(4, AK.encode()) + \
        tlv(5, V + md_object_fields(b"big.bin", 0))
    part = V + md_part_fields(7, 5 << 20)
    part_inline = V + md_part_fields(1, 4, b"data")
    return [b"\x00" + obj_inline, b"\x00" + obj_parts, b"\x00" + obj_small_parts,
            b"\x00" + marker, b"\x01" + bucket, b"\x02" + upload, b"\x03" + part,
            b"\x03" + part_inline, b"\x00" + V + tlv(99, b"future field") + tlv(1, b"k")]


def seeds_layout():
    def drive(i, w=100, state="up"):
        return {"id": i, "weight": w, "state": state}

    def node(nid, addr, drives, state="up"):
        return {"id": nid, "addr": addr, "state": state, "drives": drives}

    single = {"version": 1, "epoch": 0, "azs": [
        {"name": "az1", "nodes": [node("n1", "127.0.0.1:9100", [drive(i) for i in range(6)])]}]}
    three = {"version": 1, "epoch": 7, "azs": [
        {"name": "az%d" % a, "nodes": [
            node("n%d%d" % (a, n), "10.0.%d.%d:9100" % (a, n),
                 [drive(i, 100 + 50 * (i % 2)) for i in range(4)]) for n in range(2)]}
        for a in range(1, 4)]}
    states = {"version": 1, "epoch": 3, "azs": [
        {"name": "a", "nodes": [node("x", "127.0.0.1:1", [drive(0), drive(1, 10, "draining")]),
                                node("y", "127.0.0.1:2", [drive(0, 100, "down")], "draining")]},
        {"name": "b", "nodes": [node("z", "127.0.0.1:3", [drive(0), drive(1)], "down")]}]}
    docs = [single, three, states]
    return [json.dumps(d, separators=(",", ":")).encode() for d in docs]


def seeds_http_client():
    return [
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 204 No Content\r\nServer: cairn\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nnot here",
        b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nX-Cairn-Len: 12\r\n\r\n",
    ]


def seeds_form():
    def part(name, value, extra=b""):
        return (b"--XyZ\r\nContent-Disposition: form-data; name=\"" + name + b"\"" + extra +
                b"\r\n\r\n" + value + b"\r\n")
    policy = base64.b64encode(
        b'{"expiration": "2026-12-05T12:00:00Z", "conditions": [{"bucket": "web"}, '
        b'["starts-with", "$key", "up/"], ["content-length-range", 1, 100], '
        b'{"x-amz-algorithm": "AWS4-HMAC-SHA256"}, '
        b'{"x-amz-credential": "AK/20261205/us-east-1/s3/aws4_request"}, '
        b'{"x-amz-date": "20261205T100000Z"}]}')
    fields = (part(b"key", b"up/${filename}") + part(b"x-amz-algorithm", b"AWS4-HMAC-SHA256") +
              part(b"x-amz-credential", b"AK/20261205/us-east-1/s3/aws4_request") +
              part(b"x-amz-date", b"20261205T100000Z") + part(b"policy", policy) +
              part(b"x-amz-signature", b"0" * 64))
    file = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n--XyZ\r\nx\r\n--XyZ--\r\n")
    return [
        b"\x07" + fields + file,
        b"\x00" + fields + file,
        b"\x30" + part(b"a", b"1") + b"--XyZ--\r\n",
        b"\x05" + part(b"file", b"data\r\n--XyX", b"; filename=\"f\"") + b"--XyZ--",
        b"\x02preamble\r\n--XyZ  \r\nContent-Disposition: form-data; name=k\r\n\r\nv\r\n--XyZ--",
    ]


def seeds_ndcond():
    # the cond route's query as nd_cond_write sends it (node/nd_client.c nd_cond_target)
    blob = bytes([0x5C] * 16)
    cells = bytes([0, 0, 1, 1, 0, 2, 0xFF, 3, 9])
    old = (blob + struct.pack(">QBB", 10, 2, 1) + cells).hex()
    return [
        b"inm=1",
        b"ifmatch=e%26x",
        b"ifmatch=%2A&del=1",
        b"unlocked=2&del=1",
        b"ncsucc=1369353600000&ncnewer=2&unlocked=1&del=1",
        b"ncsucc=5&ncnewer=1&nckey=photos%2F%C3%A9t%C3%A9%26%3D.jpg&del=1",
        b"ncsucc=5&ncnewer=1&nckey=" + b"a" * 1023 + b"%25&del=1",
        b"lock=1",
        b"lock=7",
        b"lock=8",
        ("lock=16&hpart=0&hold=" + old).encode(),
        ("lock=16&hpart=9999&hold=" + old + "&x=1").encode(),
    ]


def seeds_ndbatch():
    # byte 0 the mode (node/nd_batch.c framing): 0 a batch put's body (u32 length | record each),
    # 1 a batch of reads' body (u16 length | key each), 2 a batch of reads' answer after the
    # count of keys asked (minus one), 3 items (u16 length | bytes) framed both ways
    V = b"\x01"
    recs = [V + md_object_fields(b"photos/a.jpg", 5, inline=b"hello"),
            V + tlv(1, b"deleted") + tlv(2, b"v2") + tlv(6, b"\x01"),
            V + md_object_fields("d\u00e9j\u00e0/\u00e9t\u00e9".encode(), 0)]
    keys = [b"photos/a.jpg", b"deleted", b"k" * 1024, "d\u00e9j\u00e0/\u00e9t\u00e9".encode()]

    def put_body(rs):
        return b"".join(struct.pack(">I", len(r)) + r for r in rs)

    def get_body(ks):
        return b"".join(struct.pack(">H", len(k)) + k for k in ks)

    answer = b"R" + struct.pack(">I", len(recs[0])) + recs[0] + b"N" + b"B" + b"F"
    return [b"\x00" + put_body(recs), b"\x00" + put_body(recs[:1]),
            b"\x00" + put_body([recs[1]] * 64), b"\x00" + put_body([b""]),
            b"\x01" + get_body(keys), b"\x01" + get_body(keys[:1] * 64),
            b"\x01" + get_body([b"a\x00b"]),
            b"\x02\x03" + answer, b"\x02\x00R" + struct.pack(">I", len(recs[2])) + recs[2],
            b"\x02\x01NN", b"\x02\x00N" + b"N",
            b"\x03" + get_body(keys), b"\x03" + get_body([b"", b"x"]),
            b"\x03" + get_body(recs)]


TARGETS = {
    "fuzz_http": seeds_http,
    "fuzz_chunked": seeds_chunked,
    "fuzz_sigv4": seeds_sigv4,
    "fuzz_sigv2": seeds_sigv2,
    "fuzz_xml": seeds_xml,
    "fuzz_cond": seeds_cond,
    "fuzz_record": seeds_record,
    "fuzz_mdrecord": seeds_mdrecord,
    "fuzz_layout": seeds_layout,
    "fuzz_http_client": seeds_http_client,
    "fuzz_form": seeds_form,
    "fuzz_ndcond": seeds_ndcond,
    "fuzz_ndbatch": seeds_ndbatch,
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    for target, gen in TARGETS.items():
        d = os.path.join(root, target)
        os.makedirs(d, exist_ok=True)
        for name in os.listdir(d):
            if name.startswith("seed-"):
                os.unlink(os.path.join(d, name))
        seeds = gen()
        for s in seeds:
            name = "seed-" + hashlib.sha1(s).hexdigest()[:12]
            with open(os.path.join(d, name), "wb") as f:
                f.write(s)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
