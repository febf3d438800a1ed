#!/usr/bin/env python3
"""/metrics and the access log under a boto3 load (test_metrics.sh runs it).

    metrics.py load ENDPOINT ACCESS_LOG   scrape, load, scrape (again until the log thread wrote
                                          every request, at most 30 s): the counters moved,
                                          the text parses, the log holds the load
    metrics.py log ACCESS_LOG MIN         every line of the file is JSON; at least MIN lines
    metrics.py scrape ENDPOINT            parse one scrape strictly (prints the family count)

The parser below is strict about the Prometheus text format 0.0.4: names, label syntax and
escapes, one TYPE per family before its samples, a family's samples contiguous, no duplicate
series, counters named *_total, histogram buckets cumulative with +Inf equal to _count.
Exit status 0 when every check passed; each failed check prints a FAIL line.
"""
import json
import math
import os
import re
import sys
import time
import urllib.request

import boto3
from botocore.config import Config

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count", "")}
FAILS = []
QUIET = [False]  # the self-test provokes failures it expects


def fail(msg):
    FAILS.append(msg)
    if not QUIET[0]:
        print("FAIL - " + msg)


def parse_labels(s, pos, lineno):
    """Parse {a="b",...} starting at s[pos] == '{'; return (dict, position after '}')."""
    labels = {}
    pos += 1
    while True:
        if s[pos] == "}":
            return labels, pos + 1
        m = LABEL.match(s, pos)
        if not m:
            raise ValueError("line %d: bad label name at %r" % (lineno, s[pos:]))
        name = m.group(0)
        pos = m.end()
        if s[pos : pos + 2] != '="':
            raise ValueError("line %d: expected =\" after %s" % (lineno, name))
        pos += 2
        val = []
        while s[pos] != '"':
            if s[pos] == "\\":
                esc = s[pos + 1]
                if esc not in 'n"\\':
                    raise ValueError("line %d: bad escape \\%s" % (lineno, esc))
                val.append("\n" if esc == "n" else esc)
                pos += 2
            else:
                if s[pos] == "\n":
                    raise ValueError("line %d: newline in a label value" % lineno)
                val.append(s[pos])
                pos += 1
        pos += 1
        if name in labels:
            raise ValueError("line %d: label %s twice" % (lineno, name))
        labels[name] = "".join(val)
        if s[pos] == ",":
            pos += 1
        elif s[pos] != "}":
            raise ValueError("line %d: expected , or } at %r" % (lineno, s[pos:]))


def parse_value(v, lineno):
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", v):
        raise ValueError("line %d: bad value %r" % (lineno, v))
    return float(v)


def family_of(name, types):
    """The family a sample name belongs to (histogram/summary suffixes stripped)."""
    for fam, t in types.items():
        for suf in SUFFIXES.get(t, ("",)):
            if name == fam + suf:
                return fam
    return name


def parse(text):
    """Return {family: {"type": t, "samples": [(name, labels, value)]}}; raise on a format error."""
    if not text.endswith("\n"):
        raise ValueError("text does not end with a newline")
    types, fams, seen, done, current = {}, {}, set(), set(), None
    for lineno, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                if not NAME.fullmatch(parts[2]):
                    raise ValueError("line %d: bad metric name %r" % (lineno, parts[2]))
                if parts[1] == "TYPE":
                    t = parts[3] if len(parts) == 4 else ""
                    if t not in TYPES:
                        raise ValueError("line %d: bad type %r" % (lineno, t))
                    if parts[2] in types:
                        raise ValueError("line %d: second TYPE for %s" % (lineno, parts[2]))
                    if parts[2] in fams:
                        raise ValueError("line %d: TYPE after samples of %s" % (lineno, parts[2]))
                    types[parts[2]] = t
            continue
        if not line.strip():
            raise ValueError("line %d: empty line" % lineno)
        m = NAME.match(line)
        if not m:
            raise ValueError("line %d: bad sample %r" % (lineno, line))
        name, pos, labels = m.group(0), m.end(), {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = parse_labels(line, pos, lineno)
        rest = line[pos:]
        if not rest.startswith(" "):
            raise ValueError("line %d: no space before the value" % lineno)
        fields = rest[1:].split(" ")
        if len(fields) not in (1, 2):
            raise ValueError("line %d: bad value field %r" % (lineno, rest))
        value = parse_value(fields[0], lineno)
        fam = family_of(name, types)
        if fam != current:
            if fam in done:
                raise ValueError("line %d: samples of %s not contiguous" % (lineno, fam))
            if current is not None:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError("line %d: duplicate series %s%s" % (lineno, name, labels))
        seen.add(key)
        f = fams.setdefault(fam, {"type": types.get(fam, "untyped"), "samples": []})
        f["samples"].append((name, labels, value))
    return fams


def check_rules(fams):
    """Naming and histogram rules; returns the number of problems reported."""
    bad = 0
    for fam, f in fams.items():
        if not fam.startswith("cairn_"):
            fail("family %s lacks the cairn_ prefix" % fam)
            bad += 1
        if f["type"] == "untyped":
            fail("family %s has no TYPE" % fam)
            bad += 1
        if f["type"] == "counter" and not fam.endswith("_total"):
            fail("counter %s is not named *_total" % fam)
            bad += 1
        if f["type"] != "histogram":
            continue
        series = {}
        for name, labels, value in f["samples"]:
            rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            s = series.setdefault(rest, {"buckets": [], "count": None, "sum": None})
            if name.endswith("_bucket"):
                le = labels["le"]
                s["buckets"].append((math.inf if le == "+Inf" else float(le), value))
            elif name.endswith("_count"):
                s["count"] = value
            else:
                s["sum"] = value
        for rest, s in series.items():
            les = [b[0] for b in s["buckets"]]
            counts = [b[1] for b in s["buckets"]]
            if les != sorted(les) or not les or les[-1] != math.inf:
                fail("%s%s: bucket bounds not ascending to +Inf" % (fam, dict(rest)))
                bad += 1
            if counts != sorted(counts):
                fail("%s%s: bucket counts not monotone: %s" % (fam, dict(rest), counts))
                bad += 1
            if s["count"] is None or s["sum"] is None or counts[-1] != s["count"]:
                fail("%s%s: +Inf bucket != _count, or _sum missing" % (fam, dict(rest)))
                bad += 1
    return bad


def scrape(endpoint):
    with urllib.request.urlopen(endpoint + "/metrics", timeout=10) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode("utf-8")
    if not ctype.startswith("text/plain"):
        fail("/metrics Content-Type is %r" % ctype)
    return parse(text)


def value(fams, fam, name=None, **labels):
    """Sum of the samples of fam named name (default fam) whose labels include labels."""
    total = 0.0
    for n, lb, v in fams.get(fam, {"samples": []})["samples"]:
        if n == (name or fam) and all(lb.get(k) == w for k, w in labels.items()):
            total += v
    return total


HOSTILE = [
    'quote"and\\backslash',
    "new\nline\rand\ttab",
    "ctl\x01\x02\x1f\x7fbytes",
    'brace}{"x":1}',
    "unicode-\u00e9\u4e2d\u2028\U0001f600",
]


def load(endpoint, log_path):
    before = scrape(endpoint)
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    bucket = "metrics-load"
    s3.create_bucket(Bucket=bucket)
    body = b"m" * 4096
    n = 30
    ids = set()
    for i in range(n):
        s3.put_object(Bucket=bucket, Key="k%d" % i, Body=body)
    for i in range(n):
        r = s3.get_object(Bucket=bucket, Key="k%d" % i)
        r["Body"].read()
        ids.add(r["ResponseMetadata"]["RequestId"])
    big = b"B" * (300 * 1024)  # past the inline threshold: blobstore appends and a group commit
    s3.put_object(Bucket=bucket, Key="big", Body=big)
    try:
        s3.get_object(Bucket=bucket, Key="no-such-key")
        fail("GET of a missing key succeeded")
    except s3.exceptions.NoSuchKey:
        pass
    for k in HOSTILE:
        s3.put_object(Bucket=bucket, Key=k, Body=b"x")
        s3.head_object(Bucket=bucket, Key=k)
    s3.list_objects_v2(Bucket=bucket)
    # CreateBucket; n PUTs and n GETs; the big PUT and the missing key's GET; a PUT and a HEAD
    # per hostile key; the listing
    requests = 1 + 2 * n + 2 + 2 * len(HOSTILE) + 1

    def logged(recs):
        """Whether the file holds a line for every request above."""
        ops = [r.get("op") for r in recs]
        got = {r.get("id") for r in recs}
        return ids <= got and "ListObjectsV2" in ops and ops.count("HeadObject") >= len(HOSTILE)

    # The access log has its own writer thread: a line lands some time after
    # its response, later still on a loaded machine. Wait (bounded) until the
    # file holds every request above and the counter has counted them.
    deadline = time.monotonic() + 30
    while True:
        after = scrape(endpoint)
        counted = (value(after, "cairn_access_log_lines_total")
                   - value(before, "cairn_access_log_lines_total"))
        if (counted >= requests and logged(parsed_lines(log_path))) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    bad = check_rules(after)

    def moved(desc, fam, want, name=None, **labels):
        d = value(after, fam, name, **labels) - value(before, fam, name, **labels)
        if d < want:
            fail("%s: moved by %g, want >= %g" % (desc, d, want))
        else:
            print("ok - %s moved by %g" % (desc, d))

    moved("PutObject 200", "cairn_requests_total", n + 1 + len(HOSTILE), op="PutObject", code="200")
    moved("GetObject 200", "cairn_requests_total", n, op="GetObject", code="200")
    moved("GetObject 404", "cairn_requests_total", 1, op="GetObject", code="404")
    moved("HeadObject 200", "cairn_requests_total", len(HOSTILE), op="HeadObject", code="200")
    moved("ListObjectsV2", "cairn_requests_total", 1, op="ListObjectsV2")
    moved("CreateBucket", "cairn_requests_total", 1, op="CreateBucket")
    moved("GetObject latency count", "cairn_request_duration_seconds",
          n + 1, "cairn_request_duration_seconds_count", op="GetObject")
    moved("bytes received by PutObject", "cairn_received_bytes_total",
          n * 4096 + len(big), op="PutObject")
    moved("bytes sent by GetObject", "cairn_sent_bytes_total", n * 4096, op="GetObject")
    moved("connections accepted", "cairn_connections_accepted_total", 1)
    moved("blobstore appends", "cairn_blobstore_appends_total", 1)
    moved("group commits", "cairn_blobstore_group_commit_writes",
          1, "cairn_blobstore_group_commit_writes_count")
    moved("access log lines", "cairn_access_log_lines_total", requests)
    if value(after, "cairn_build_info") != 1:
        fail("cairn_build_info is not 1")
    if value(after, "cairn_drive_size_bytes") <= 0:
        fail("cairn_drive_size_bytes is not positive")
    if "cairn_connections_open" not in after:
        fail("no cairn_connections_open")
    # bounded labels: no bucket or key ever names a series
    for fam, f in after.items():
        for name, labels, v in f["samples"]:
            for lv in labels.values():
                if bucket in lv or lv.startswith("k") and lv[1:].isdigit():
                    fail("%s has a label naming a bucket or key: %r" % (name, lv))
    print("ok - %d families parsed, %d rule problems" % (len(after), bad))

    # the access log: every line JSON; the hostile keys come back exactly
    with open(log_path, "rb") as fh:
        raw = fh.read()
    recs = check_log_bytes(raw)
    keys = {r.get("key") for r in recs if r.get("op") == "PutObject"}
    for k in HOSTILE:
        if k not in keys:
            fail("access log: hostile key %r not found intact" % k)
    logged_ids = {r["id"] for r in recs if r.get("op") == "GetObject" and r.get("status") == 200}
    if not ids <= logged_ids:
        fail("access log: %d GetObject request ids missing" % len(ids - logged_ids))
    miss = [r for r in recs if r.get("op") == "GetObject" and r.get("error") == "NoSuchKey"]
    if not miss or miss[0]["status"] != 404 or miss[0]["key"] != "no-such-key":
        fail("access log: the NoSuchKey GET is not logged as 404 NoSuchKey")
    gets = [r for r in recs if r.get("op") == "GetObject" and r.get("status") == 200]
    if gets and (gets[0]["bytes_out"] != 4096 or gets[0]["user"] != os.environ["AWS_ACCESS_KEY_ID"]):
        fail("access log: GetObject bytes_out/user wrong: %r" % gets[0])
    print("ok - access log: %d lines, hostile keys intact, request ids match" % len(recs))


def parsed_lines(path):
    """The complete lines of the log that parse (a check in progress: no verdicts)."""
    with open(path, "rb") as fh:
        lines = fh.read().split(b"\n")[:-1]
    recs = []
    for line in lines:
        try:
            recs.append(json.loads(line.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            pass
    return recs


FIELDS = {"time": str, "id": str, "remote": str, "user": str, "op": str, "method": str,
          "bucket": str, "error": str, "status": int, "bytes_in": int, "bytes_out": int,
          "latency_ms": (int, float)}


def check_log_bytes(raw):
    recs = []
    if raw and not raw.endswith(b"\n"):
        fail("access log does not end with a newline")
    for i, line in enumerate(raw.split(b"\n")[:-1], 1):
        try:
            rec = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            fail("access log line %d is not JSON (%s): %r" % (i, e, line[:200]))
            continue
        for f, t in FIELDS.items():
            if not isinstance(rec.get(f), t):
                fail("access log line %d: field %s missing or not %s" % (i, f, t))
        if not re.fullmatch(r"[0-9a-f]{16}", rec.get("id", "")):
            fail("access log line %d: bad request id" % i)
        recs.append(rec)
    return recs


def main():
    try:
        if sys.argv[1] == "load":
            load(sys.argv[2], sys.argv[3])
        elif sys.argv[1] == "log":
            with open(sys.argv[2], "rb") as fh:
                recs = check_log_bytes(fh.read())
            if len(recs) < int(sys.argv[3]):
                fail("%s: %d lines, want >= %s" % (sys.argv[2], len(recs), sys.argv[3]))
            print("ok - %s: %d JSON lines" % (sys.argv[2], len(recs)))
        elif sys.argv[1] == "scrape":
            fams = scrape(sys.argv[2])
            check_rules(fams)
            print("ok - %d families" % len(fams))
        elif sys.argv[1] == "selftest":
            selftest()
    except ValueError as e:
        fail("format: %s" % e)
    sys.exit(1 if FAILS else 0)


def selftest():
    """The parser refuses what it must (run by test_metrics.sh, so a lax parser fails the test)."""
    bad = [
        "x_total 1",  # no newline at the end
        "# TYPE a counter\n# TYPE a counter\n",
        "a{b=\"c\\q\"} 1\n",
        "a{b=\"c\"} 1\nb 2\na{b=\"d\"} 3\n",
        "a 1\na 2\n",
        "a{1b=\"c\"} 1\n",
        "a one\n",
    ]
    for t in bad:
        try:
            parse(t)
            fail("parser accepted %r" % t)
        except (ValueError, IndexError):
            pass
    good = "# HELP a_total x\n# TYPE a_total counter\na_total{op=\"q\\\"\"} 1\n"
    if parse(good)["a_total"]["samples"][0][1]["op"] != 'q"':
        fail("parser misread an escaped label")
    hist = ("# TYPE cairn_h histogram\ncairn_h_bucket{le=\"1\"} 2\n"
            "cairn_h_bucket{le=\"+Inf\"} 1\ncairn_h_sum 1\ncairn_h_count 1\n")
    n = len(FAILS)
    QUIET[0] = True
    check_rules(parse(hist))
    QUIET[0] = False
    if len(FAILS) == n:
        fail("non-monotone buckets not caught")
    else:
        del FAILS[n:]
    print("ok - parser self-test")


if __name__ == "__main__":
    main()
