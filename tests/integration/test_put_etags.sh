#!/usr/bin/env bash
# ETags of concurrent PUTs (put_etags.py): twelve connections send bodies of random sizes in random
# pieces, so each loop's MD5 batch (gateway/gw_md5.c) hashes mixes of requests; every ETag must be
# the MD5 of its body and every GET the body; a wrong Content-MD5 is refused and a connection
# closing halfway through its body leaves the server answering. Seeded (printed).
source "$(dirname "$0")/lib.sh"
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
B=$(h_bucket putetags)
seed=${PUT_ETAGS_SEED:-$((RANDOM % 10000 + 1))}
echo "seed $seed"
h_run "create bucket" "$H_PY" "$H_DIR/s3raw.py" mb "$B"
h_run "concurrent PUTs: ETag = MD5, GET = body" timeout 240 "$H_PY" "$H_DIR/put_etags.py" "$B" "$seed"
echo "$H_OUT"
h_finish
