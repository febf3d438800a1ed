#!/usr/bin/env bash
# Master-key rotation (docs/encryption.md, "Rotating the master key") on a single node: SSE-S3
# objects (simple, multipart, versioned, bucket default, an upload in progress) and an SSE-C one
# written under key A (sse_rotate.py write), and a user whose secret A wraps. Started with B alone
# before any rewrap: the start logs A as missing, a GET answers 500 with a log line naming A, and
# `cairn admin sse rewrap --wait` stops on the error (exit 3) naming A. Started with "B,A":
# everything reads, the pass resumes and finishes, the status shows B alone in use. Started with
# B alone again: no key is missing, every object reads back byte-exact, the upload completes, the
# user's key signs. Cluster nodes: test_cluster_sse_rotate.sh.
source "$(dirname "$0")/lib.sh"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
admin() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }
if [ "$H_CLUSTER" = 1 ]; then
    echo "SKIP $H_NAME: single node (test_cluster_sse_rotate.sh rotates on a cluster)"
    exit 77
fi
KA=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
KB=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
export ROT_STATE=$H_WORK/rot.json

CAIRN_MASTER_KEY=$KA h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
if "$H_PY" "$H_DIR/sse_rotate.py" write; then h_ok "SSE objects under key A"; else
    h_bad "SSE objects under key A"; fi
if out=$(admin user create carol); then # her secret is wrapped under A too
    CAROL_AK=$(sed -n 's/^access_key=//p' <<<"$out")
    CAROL_SK=$(sed -n 's/^secret_key=//p' <<<"$out")
    h_ok "a user made under key A"
else
    h_bad "a user made under key A" "$out"
fi
h_stop

# A removed before any rewrap: loud, never garbage.
CAIRN_MASTER_KEY=$KB h_start
since=$(grep -c . "$H_LOG")
if grep -Eq 'master key [0-9a-f]{8} may still wrap SSE-S3 data keys' "$H_LOG"; then
    h_ok "the start names the missing key"; else h_bad "the start names the missing key"; fi
IDA=$(grep -Eo 'master key [0-9a-f]{8} may still wrap' "$H_LOG" | tail -1 | cut -d' ' -f3)
if "$H_PY" "$H_DIR/sse_rotate.py" fails; then h_ok "a GET under the missing key fails"; else
    h_bad "a GET under the missing key fails"; fi
if grep -q "wrapped under master key $IDA, which this server does not" <<<"$(tail -n +"$since" "$H_LOG")"
then h_ok "  its log line names key $IDA"; else h_bad "  its log line names key $IDA"; fi
admin sse rewrap --wait >"$H_WORK/out" 2>&1
h_eq "rewrap without key A stops on an error (exit 3)" 3 $?
grep -q "master key $IDA, which this server does not hold" "$H_WORK/out" &&
    h_ok "  the error names key $IDA" || h_bad "  the error names key $IDA" "$(cat "$H_WORK/out")"
h_stop

# B primary, A still listed: everything reads; the pass resumes and finishes.
CAIRN_MASTER_KEY=$KB,$KA h_start
if h_run "sse status with both keys" admin sse status --json; then
    grep -q "\"$IDA\"" <<<"$H_OUT" && h_ok "  A is in use" || h_bad "  A is in use" "$H_OUT"
fi
if h_run "cairn admin sse rewrap --wait" admin sse rewrap --wait; then
    grep -Eq "finished, phase done: [0-9]+ records, [0-9]+ wrapped keys, [1-9][0-9]* re-wrapped" \
        <<<"$H_OUT" && h_ok "  every data key re-wrapped" || h_bad "  re-wrapped" "$H_OUT"
fi
if h_run "sse status after the pass" admin sse status --json; then
    "$H_PY" -c 'import json, sys; d = json.load(sys.stdin)
sys.exit(0 if d["in_use"] == [d["primary"]] and not d["missing"] and not d["failed"] else 1)' \
        <<<"$H_OUT" && h_ok "  only B in use" || h_bad "  only B in use" "$H_OUT"
fi
h_stop

# A retired: nothing missing, every object byte-exact.
CAIRN_MASTER_KEY=$KB h_start
since=$(grep -n "== starting" "$H_LOG" | tail -1 | cut -d: -f1)
if grep -q "may still wrap" <<<"$(tail -n +"$since" "$H_LOG")"; then
    h_bad "no key missing after the pass"; else h_ok "no key missing after the pass"; fi
if "$H_PY" "$H_DIR/sse_rotate.py" verify; then h_ok "every object reads back under B alone"; else
    h_bad "every object reads back under B alone"; fi
h_run "the user's key made under A still signs" env AWS_ACCESS_KEY_ID="$CAROL_AK" \
    AWS_SECRET_ACCESS_KEY="$CAROL_SK" "$H_PY" -c 'import boto3, os, sys
s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1")
s3.list_buckets()'
h_finish
