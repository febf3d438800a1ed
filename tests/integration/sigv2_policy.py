"""SigV2 policy checks for fault_secrets_sigv2.sh: `sigv2_policy.py on|off` (endpoint and
credentials from the environment). With V2 on, a presigned URL valid for more than 7 days is
refused and one valid for less works; with V2 off, every V2 request is refused with a message
that says so while V4 keeps working. Prints `ok -`/`FAIL -` lines; exits 1 if any check failed.
"""

import email.utils
import os
import sys
import time

import hostile_headers as hh
import s3raw

BUCKET = "policy"
KEY = "object.txt"
BODY = b"signed by V2\n"


def v2_presigned_get(expires):
    path = "/%s/%s" % (BUCKET, KEY)
    q = {"AWSAccessKeyId": os.environ["CAIRN_ACCESS_KEY"], "Expires": str(expires),
         "Signature": hh.v2_signature("GET", path, str(expires), {})}
    return hh.send("GET", path, q, {"Host": hh.host_header()})


def v2_header_get(amz_date=False):
    """A V2 GET without User-Agent; with amz_date, dated by x-amz-date and a stale Date."""
    path = "/%s/%s" % (BUCKET, KEY)
    h = {"Host": hh.host_header(), "Date": email.utils.formatdate(usegmt=True)}
    date_line = h["Date"]
    if amz_date:
        h["Date"] = "Tue, 27 Mar 2007 21:20:27 +0000"  # ignored: x-amz-date dates the request
        h["x-amz-date"] = email.utils.formatdate(usegmt=True)
        date_line = ""
    h["Authorization"] = "AWS %s:%s" % (os.environ["CAIRN_ACCESS_KEY"],
                                        hh.v2_signature("GET", path, date_line, h))
    return hh.send("GET", path, {}, h)


def main(mode):
    st, _, _ = s3raw.request("PUT", "/" + BUCKET)
    hh.check("create bucket", st == 200, "status %d" % st)
    st, _, _ = s3raw.request("PUT", "/%s/%s" % (BUCKET, KEY), body=BODY)
    hh.check("V4 PUT", st == 200, "status %d" % st)
    week = 7 * 86400
    if mode == "on":
        st, _, body = v2_presigned_get(int(time.time()) + week - 60)
        hh.check("V2 presigned URL valid for just under 7 days works",
                 st == 200 and body == BODY, "status %d %r" % (st, body[:300]))
        st, _, body = v2_header_get()
        hh.check("V2 header auth works (no User-Agent)", st == 200 and body == BODY,
                 "status %d" % st)
        st, _, body = v2_header_get(amz_date=True)
        hh.check("V2 with Date and x-amz-date: empty date line, x-amz-date signed",
                 st == 200 and body == BODY, "status %d %r" % (st, body[:300]))
        st, _, body = v2_presigned_get(int(time.time()) + week + 3600)
        hh.check("V2 presigned URL valid for 7 days + 1 hour -> 403 AccessDenied",
                 st == 403 and hh.xml_field(body, "Code") == "AccessDenied"
                 and "7 days" in (hh.xml_field(body, "Message") or ""),
                 "status %d %r" % (st, body[:400]))
        st, _, body = v2_presigned_get(int(time.time()) + 10 * 365 * 86400)
        hh.check("V2 presigned URL valid for 10 years -> 403", st == 403, "status %d" % st)
    else:
        for desc, resp in (("V2 header auth", v2_header_get()),
                           ("V2 presigned", v2_presigned_get(int(time.time()) + 300))):
            st, _, body = resp
            hh.check("%s with sigv2 off -> 403 AccessDenied, says V2 is disabled" % desc,
                     st == 403 and hh.xml_field(body, "Code") == "AccessDenied"
                     and "Signature Version 2 is disabled" in (hh.xml_field(body, "Message") or ""),
                     "status %d %r" % (st, body[:400]))
        st, _, body = s3raw.request("GET", "/%s/%s" % (BUCKET, KEY))
        hh.check("V4 still works with sigv2 off", st == 200 and body == BODY, "status %d" % st)
    return 1 if hh.FAILS else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
