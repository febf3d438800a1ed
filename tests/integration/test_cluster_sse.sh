#!/usr/bin/env bash
# test_cluster_sse: encryption at rest on the nodes of the loopback cluster (docs/encryption.md,
# "Cluster nodes"). deploy/local-cluster.sh starts 3 etcd members and 6 nodes, every node reading
# the same master key file. The boto3 suite sse.py runs with every object call on the next node in
# turn (CAIRN_SSE_ENDPOINTS): SSE-S3 bodies around the 64 KiB segment written through one node and
# read, ranged and HEADed through others, multipart uploads whose parts go through different
# nodes, bucket default encryption (a member of the etcd bucket document, seen by every node),
# SSE-C with the right, a missing (400) and another key (403), the CopyObject / UploadPartCopy
# matrix. Then the proof: no marker of an encrypted body in any node's folder (drive chunks and
# metadata), the plain control markers found. Last, n6 restarted with another master key answers
# a GET of an SSE-S3 object 500 with a message naming the master key, and still serves plain
# objects. About 30 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_up itsse boto3
EPS=$(lc_endpoints)
export CAIRN_SSE_ENDPOINTS=$EPS
export CAIRN_SSE_MARKERS=$H_WORK/markers CAIRN_SSE_PLAIN_MARKERS=$H_WORK/plain-markers
export CAIRN_SSE_KEYS=$H_WORK/ssec-key

if h_run "boto3 SSE suite through all six nodes" "$H_PY" "$H_DIR/sse.py"; then
    grep -c '^ok' <<<"$H_OUT" | sed 's/^/   checks passed: /'
else
    grep -E '^FAIL|^ +\|' <<<"$H_OUT" | head -n 40 | sed 's/^/   /'
fi

# n6 under another master key (the env wins over the shared key file): the data keys of SSE-S3
# objects do not unwrap there, and it says why instead of serving anything.
N6=http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 26))
p6=$(lc_pid n6)
kill -TERM "$p6"
for _ in $(seq 1 100); do kill -0 "$p6" 2>/dev/null || break; sleep 0.1; done
CAIRN_MASTER_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') h_run "n6 with another master key" \
    lc start n6
lc_track
export CAIRN_ENDPOINT=$N6
h_run "GET of an SSE-S3 object through n6" "$H_PY" - <<'EOF'
import os

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1",
                  config=Config(retries={"max_attempts": 1}))
try:
    s3.get_object(Bucket="sse-py", Key="s3-1000")["Body"].read()
    raise SystemExit("an SSE-S3 object was served under another master key")
except ClientError as e:
    st = e.response["ResponseMetadata"]["HTTPStatusCode"]
    msg = e.response["Error"].get("Message", "")
    if st != 500 or "another master key" not in msg:
        raise SystemExit("answer %d %r" % (st, msg))
    print("500: " + msg)
body = s3.get_object(Bucket="sse-py", Key="plain-small")["Body"].read()
if len(body) != 500:
    raise SystemExit("plain object: %d bytes" % len(body))
print("a plain object still reads through n6")
EOF
sed 's/^/   /' <<<"$H_OUT"
h_run "local-cluster.sh stop" lc stop

# The proof, on every node's folder: drives (chunks) and metadata.
leaks=0
while read -r m; do
    [ -n "$m" ] || continue
    if grep -rqaF -- "$m" "$CAIRN_CLUSTER_DIR"/n[1-6]; then
        leaks=$((leaks + 1))
        h_bad "plaintext marker $m of an encrypted object found on a node" \
            "$(grep -rlaF -- "$m" "$CAIRN_CLUSTER_DIR"/n[1-6] | head -5)"
    fi
done <"$CAIRN_SSE_MARKERS"
n=$(grep -c . "$CAIRN_SSE_MARKERS")
if [ "$leaks" = 0 ] && [ "$n" -ge 15 ]; then
    h_ok "none of $n encrypted bodies' markers is in any node's folder"
elif [ "$leaks" = 0 ]; then
    h_bad "the suite recorded the encrypted bodies' markers" "only $n"
fi
found=0
while read -r m; do
    [ -n "$m" ] && grep -rqaF -- "$m" "$CAIRN_CLUSTER_DIR"/n[1-6] && found=$((found + 1))
done <"$CAIRN_SSE_PLAIN_MARKERS"
h_eq "the grep finds every plain body's marker (control)" "$(grep -c . "$CAIRN_SSE_PLAIN_MARKERS")" \
    "$found"
lc_check_sanitizers
h_finish
