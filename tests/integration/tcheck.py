"""tcheck.py: the ok / FAIL lines of the Python test scripts (the format lib.sh prints).

check(desc, cond, detail) prints one line a step and goes on: a failed step is recorded in FAILS
(the script exits 1 at its end when any failed) with up to 10 lines of detail; ok(msg) and
fail(msg) for scripts that stop at the first failure (fail exits 1). err_of(fn, **kw) is
(HTTP status, S3 error code) of a boto3 call that should fail, (200, None) when it did not.
"""
import sys

FAILS = []


def check(desc, cond, detail=""):
    if cond:
        print("ok - " + desc, flush=True)
    else:
        FAILS.append(desc)
        print("FAIL - " + desc, flush=True)
        for line in str(detail).splitlines()[:10]:
            print("    | " + line)


def ok(msg):
    print("ok -", msg, flush=True)


def fail(msg):
    print("FAIL -", msg, flush=True)
    sys.exit(1)


def err_of(fn, **kw):
    """(status, code) of a call that should fail; (200, None) when it did not."""
    from botocore.exceptions import ClientError
    try:
        fn(**kw)
        return 200, None
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
