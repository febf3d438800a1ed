"""Hostile connections for fault_hostile_conn.sh (endpoint and credentials from the environment).

Usage: hostile_conn.py flood N | slow-header DEADLINE_S | after-last-chunk | serves
Each command prints `ok -`/`FAIL -` lines and exits 1 if a check failed. Every socket has a
timeout, so a server that stops answering fails the check instead of hanging the test.

flood N            N connections send half a request head and stay open; meanwhile a normal
                   signed PUT and GET must succeed within a few seconds.
slow-header D      a head sent one byte a second must end (408 or close) about D s after it began.
after-last-chunk   aws-chunked PUTs whose Content-Length covers bytes after the final chunk get a
                   clean 4xx or a closed connection, quickly, and store nothing.
serves             one normal PUT and GET (the server still serves).
"""

import hashlib
import os
import resource
import socket
import sys
import time

import s3raw
from badinput import FAILS, check, code_of

BUCKET = "hostile-conn"


def put_get(key, timeout):
    """A normal signed PUT then GET of a small object; (ok, detail, seconds)."""
    body = os.urandom(1000)
    t0 = time.monotonic()
    try:
        st, _, resp = request("PUT", "/%s/%s" % (BUCKET, key), body, timeout)
        if st != 200:
            return False, "PUT answered %d %r" % (st, resp[:200]), time.monotonic() - t0
        st, _, got = request("GET", "/%s/%s" % (BUCKET, key), b"", timeout)
        if st != 200 or got != body:
            return False, "GET answered %d (%d bytes)" % (st, len(got)), time.monotonic() - t0
    except OSError as e:
        return False, "%s: %s" % (type(e).__name__, e), time.monotonic() - t0
    return True, "", time.monotonic() - t0


def request(method, path, body, timeout):
    h = s3raw.sign(method, path, {}, {"Content-Length": str(len(body))},
                   hashlib.sha256(body).hexdigest())
    with s3raw.connect(timeout=timeout) as s:
        s.sendall(s3raw.request_bytes(method, path, {}, h) + body)
        return s3raw.read_response(s, method)


def closed_by_server(s):
    """True when the server closed s (EOF or reset), False when it is still open."""
    s.setblocking(False)
    try:
        s.recv(1, socket.MSG_PEEK)  # EOF, or an answer such as 408: the server is done with it
        return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def flood(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 256), hard))
    host, port = s3raw.endpoint()
    socks = []
    try:
        for i in range(n):
            s = socket.socket()
            s.settimeout(5)
            s.connect((host, port))  # completes in the kernel's backlog, accepted or not
            s.sendall(b"PUT /%s/flood-%d HTTP/1.1\r\nHost: x\r\nX-Half: " % (BUCKET.encode(), i))
            socks.append(s)
        check("%d half-head connections opened" % n, len(socks) == n)
        ok, detail, took = put_get("during-flood", 10)
        check("a signed PUT and GET succeed during the flood (%.2f s)" % took, ok, detail)
        check("... within 5 s", took < 5, "took %.2f s" % took)
        closed = sum(closed_by_server(s) for s in socks)
        print("    %d of %d flood connections closed by the server" % (closed, n))
    finally:
        for s in socks:
            s.close()


def slow_header(deadline):
    host, port = s3raw.endpoint()
    s = socket.create_connection((host, port), timeout=1.0)
    t0 = time.monotonic()
    s.sendall(b"GET /%s/slow HTTP/1.1\r\nHost: x\r\nX-Slow: " % BUCKET.encode())
    answer = b""
    sent = 0
    while time.monotonic() - t0 < deadline + 10:
        try:
            chunk = s.recv(4096)
            answer += chunk
            if not chunk or b"</Error>" in answer:
                break
        except socket.timeout:
            pass
        except OSError:
            break
        try:
            s.sendall(b"a")  # one byte about every second: each one re-armed the old timer
            sent += 1
        except OSError:
            break
    took = time.monotonic() - t0
    s.close()
    check("a head sent a byte a second is ended by the server (%.1f s, %d bytes sent)"
          % (took, sent), took < deadline + 3, "took %.1f s" % took)
    check("... not before its deadline", took > deadline - 0.5, "took %.1f s" % took)
    status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else b"none"
    check("... with 408 RequestTimeout or a close",
          answer == b"" or (status == b"408" and code_of(answer) == "RequestTimeout"),
          answer[:300])


def chunked_put(key, extra, close_early):
    """An unsigned-trailer aws-chunked PUT of b"hello" followed by `extra` within Content-Length.
    Returns (status or 0 when closed without answer, body, seconds)."""
    enc = b"5\r\nhello\r\n0\r\n\r\n"
    path = "/%s/%s" % (BUCKET, key)
    h = s3raw.sign("PUT", path, {}, {
        "Content-Length": str(len(enc) + len(extra)),
        "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "5",
    }, "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    t0 = time.monotonic()
    with s3raw.connect(timeout=10) as s:
        try:
            s.sendall(s3raw.request_bytes("PUT", path, {}, h) + enc)
            if extra:
                s.sendall(extra)
            if close_early:
                s.shutdown(socket.SHUT_WR)
            st, _, body = s3raw.read_response(s)
        except (OSError, ValueError):
            st, body = 0, b""
    return st, body, time.monotonic() - t0


def after_last_chunk():
    st, body, _ = chunked_put("clean", b"", False)
    check("a well-formed aws-chunked PUT is stored", st == 200, "status %d %r" % (st, body[:200]))
    cases = [("few", b"EXTRA"), ("many", os.urandom(3 << 20))]
    for name, extra in cases:
        key = "after-" + name
        st, body, took = chunked_put(key, extra, False)
        check("%d bytes after the final chunk: a 4xx or a close, not 200 (%d %s, %.1f s)"
              % (len(extra), st, code_of(body), took),
              st == 0 or 400 <= st < 500, "status %d %r" % (st, body[:200]))
        check("... answered within 5 s", took < 5, "took %.1f s" % took)
        st, _, _ = request("HEAD", "/%s/%s" % (BUCKET, key), b"", 10)
        check("... and nothing stored (HEAD %d)" % st, st == 404)


def main(argv):
    cmd = argv[1]
    if cmd != "serves":
        st, _, _ = request("PUT", "/" + BUCKET, b"", 10)
        check("bucket exists", st in (200, 409), "status %d" % st)
    if cmd == "flood":
        flood(int(argv[2]))
    elif cmd == "slow-header":
        slow_header(float(argv[2]))
    elif cmd == "after-last-chunk":
        after_last_chunk()
    elif cmd == "serves":
        ok, detail, took = put_get("serves", 10)
        check("a signed PUT and GET succeed (%.2f s)" % took, ok, detail)
    else:
        print("unknown command " + cmd, file=sys.stderr)
        return 2
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
