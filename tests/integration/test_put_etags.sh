#!/usr/bin/env bash
# ETags of concurrent PUTs (put_etags.py): twelve connections send bodies of random sizes in random
# pieces, so the loops' MD5 batches (gateway/gw_md5.c) hash mixes of requests; every ETag must be
# the MD5 of its body and every GET the body; a wrong Content-MD5 is refused and a connection
# closing halfway through its body leaves the server answering; with two loops or more, some
# batches must have hashed bodies of both loops together (/metrics). Seeded (printed).
source "$(dirname "$0")/lib.sh"
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
B=$(h_bucket putetags)
seed=${PUT_ETAGS_SEED:-$((RANDOM % 10000 + 1))}
echo "seed $seed"
h_run "create bucket" "$H_PY" "$H_DIR/s3raw.py" mb "$B"
h_run "concurrent PUTs: ETag = MD5, GET = body" timeout 240 "$H_PY" "$H_DIR/put_etags.py" "$B" "$seed"
echo "$H_OUT"
# The loops hashed some of those bodies together (gw_md5.c's shared batches): with more than one
# loop (one per CPU) and the SIMD lanes (the counters stay 0 without AVX-512).
METRICS=$(curl -fsS "$H_ENDPOINT/metrics")
calls=$(awk '$1 == "cairn_md5_batches_total" {print $2}' <<<"$METRICS")
shared=$(awk '$1 == "cairn_md5_batches_shared_total" {print $2}' <<<"$METRICS")
echo "MD5 batches $calls, shared $shared, loops $(nproc)"
if [ "${calls:-0}" -gt 0 ] && [ "$(nproc)" -gt 1 ]; then
    h_run "some MD5 batches took another loop's bodies" test "${shared:-0}" -gt 0
fi
h_finish
