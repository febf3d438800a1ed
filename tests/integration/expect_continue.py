"""Expect: 100-continue at the socket level (RFC 9110 section 10.1.1), for
test_expect_continue.sh. Each case sends signed requests over ONE connection and reads the
interim and final responses with a deadline, so a server that waits for a body that will never
come, or answers out of order, fails in seconds instead of hanging:

- an empty-body PUT with Expect (Content-Length: 0): a final response at once (no body to wait
  for; a 100 is allowed but not needed), then a GET on the same connection answers at once;
- a PUT with a body and Expect, the body sent only after the 100 (a client that waits);
- a PUT with a body and Expect, the body sent with the head (a client that does not wait): an
  optional 100, then the final response, and the next request on the connection works;
- the same as the first with the second request pipelined right behind the empty PUT.

Usage: expect_continue.py BUCKET (CAIRN_ENDPOINT and the credentials in the environment).
"""

import hashlib
import socket
import sys
import time

import s3raw

DEADLINE = 5.0  # seconds a response may take; the stall reported was 60 s


class Conn:
    def __init__(self):
        self.sock = s3raw.connect(timeout=DEADLINE)
        self.buf = b""

    def send_head(self, method, path, body=b"", expect=False, extra=b""):
        h = {"Content-Length": str(len(body))}
        if expect:
            h["Expect"] = "100-continue"
        signed = s3raw.sign(method, path, {}, h, hashlib.sha256(body).hexdigest())
        self.sock.sendall(s3raw.request_bytes(method, path, {}, signed) + extra)

    def _fill(self, until):
        while True:
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError("no response within %.0f s" % DEADLINE)
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no response within %.0f s" % DEADLINE)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buf += chunk
            return

    def response(self, head_only=False):
        """(status, headers, body) of the next response, interim ones included."""
        until = time.monotonic() + DEADLINE
        while b"\r\n\r\n" not in self.buf:
            self._fill(until)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        n = 0 if head_only or status < 200 else int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self._fill(until)
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body

    def final(self):
        """The final response, skipping one optional 100 Continue."""
        st, h, b = self.response()
        if st == 100:
            st, h, b = self.response()
        return st, h, b

    def nothing_pending(self):
        """Nothing more arrives on the connection within 0.2 s."""
        self.sock.settimeout(0.2)
        try:
            extra = self.sock.recv(65536)
        except socket.timeout:
            extra = None
        finally:
            self.sock.settimeout(DEADLINE)
        return extra is None and not self.buf


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def main():
    b = sys.argv[1]
    body = b"expect-continue body " * 5000  # about 100 KiB: not inline
    t0 = time.monotonic()

    c = Conn()  # 1: empty body with Expect, then another request
    c.send_head("PUT", "/%s/empty" % b, expect=True)
    st, _, _ = c.final()
    check(st == 200, "empty PUT with Expect: %d" % st)
    c.send_head("GET", "/%s/empty" % b)
    st, h, got = c.response()
    check(st == 200 and got == b"", "GET after the empty PUT: %d %r" % (st, got[:40]))
    check(c.nothing_pending(), "a stray response after the GET")
    print("empty PUT with Expect, then GET: ok")

    c = Conn()  # 2: body only after the 100
    c.send_head("PUT", "/%s/waited" % b, body, expect=True)
    st, _, _ = c.response(head_only=True)
    check(st == 100, "no 100 Continue for a PUT waiting to send its body: %d" % st)
    c.sock.sendall(body)
    st, _, _ = c.response()
    check(st == 200, "PUT after the 100: %d" % st)
    c.send_head("GET", "/%s/waited" % b)
    st, _, got = c.response()
    check(st == 200 and got == body, "GET of the waited PUT: %d" % st)
    print("PUT sending its body after the 100: ok")

    c = Conn()  # 3: body sent without waiting
    c.send_head("PUT", "/%s/eager" % b, body, expect=True, extra=body)
    st, _, _ = c.final()
    check(st == 200, "PUT with the body right behind its head: %d" % st)
    c.send_head("GET", "/%s/eager" % b)
    st, _, got = c.response()
    check(st == 200 and got == body, "GET of the eager PUT: %d" % st)
    check(c.nothing_pending(), "a stray response after the GET")
    print("PUT sending its body without waiting: ok")

    c = Conn()  # 4: a second request pipelined behind the empty PUT
    h = {"Content-Length": "0", "Expect": "100-continue"}
    signed = s3raw.sign("PUT", "/%s/empty2" % b, {}, h, s3raw.EMPTY_SHA256)
    first = s3raw.request_bytes("PUT", "/%s/empty2" % b, {}, signed)
    signed = s3raw.sign("GET", "/%s/empty" % b, {}, {"Content-Length": "0"}, s3raw.EMPTY_SHA256)
    c.sock.sendall(first + s3raw.request_bytes("GET", "/%s/empty" % b, {}, signed))
    st, _, _ = c.final()
    check(st == 200, "pipelined empty PUT: %d" % st)
    st, _, got = c.response()
    check(st == 200 and got == b"", "GET pipelined behind the empty PUT: %d" % st)
    print("GET pipelined behind an empty PUT with Expect: ok")
    print("all cases in %.2f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
