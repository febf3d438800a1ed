#!/usr/bin/env bash
# Expect: 100-continue (RFC 9110 section 10.1.1; a report said boto3 stalled 60 s after an
# empty-body PUT with Expect followed by another request on the same connection). Raw sockets
# (expect_continue.py): an empty PUT with Expect answers at once and the next request on the
# connection too (also pipelined), a client waiting for the 100 gets it and then its answer, a
# client sending the body without waiting gets its answer. Then boto3 itself: PUTs of an empty
# and a small file-like body (botocore sends Expect for those) followed by GETs on the same
# client, each bounded to a few seconds.
source "$(dirname "$0")/lib.sh"
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
B=$(h_bucket expectcont)
h_run "create bucket" "$H_PY" "$H_DIR/s3raw.py" mb "$B"
h_run "raw sockets: Expect with empty, waited and eager bodies" \
    timeout 60 "$H_PY" "$H_DIR/expect_continue.py" "$B"
echo "$H_OUT"

if "$H_PY" -c 'import boto3' 2>/dev/null; then
    h_run "boto3: empty and small file bodies with Expect, then GETs, no stall" \
        timeout 60 "$H_PY" - "$H_ENDPOINT" "$B" <<'PY'
import io, sys, time
import boto3
from botocore.config import Config
ep, b = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  config=Config(retries={"max_attempts": 1}, read_timeout=10,
                                s3={"addressing_style": "path"}))
for i, body in enumerate([b"", b"x" * 100, b"", b"y" * 200000]):
    t = time.monotonic()
    s3.put_object(Bucket=b, Key="k%d" % i, Body=io.BytesIO(body))
    got = s3.get_object(Bucket=b, Key="k%d" % i)["Body"].read()
    s3.head_object(Bucket=b, Key="k%d" % i)
    took = time.monotonic() - t
    assert got == body, i
    assert took < 5, "PUT+GET+HEAD %d took %.1f s" % (i, took)
    print("body %d bytes: %.2f s" % (len(body), took))
PY
    echo "$H_OUT"
else
    echo "ok - boto3 not installed: its case skipped"
fi
h_finish
