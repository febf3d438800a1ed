#!/usr/bin/env bash
# `cairn bench` smoke test (issue 4): a short PUT run, a GET run that verifies every body, a
# mixed run, and a GET with the wrong content seed, which must fail verification and exit non-zero.
# Every report is --json and is checked for zero errors and a non-zero count. About 6 seconds.
# Also against a cluster node (lib.sh "Cluster mode").
. "$(dirname "$0")/lib.sh"
h_start

# json_check FILE OP: the report parses, names OP with count > 0, and shows no errors.
json_check() {
    "$H_PY" - "$1" "$2" <<'EOF_PY'
import json, sys
r = json.load(open(sys.argv[1]))
op = r["ops"][sys.argv[2]]
assert r["total"]["errors"] == 0, r["total"]
assert op["count"] > 0 and op["errors"] == 0, op
assert r["total"]["ops_per_s"] > 0, r["total"]
lat = op["latency_ms"]
assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat
if sys.argv[2] == "get":
    assert op["verified"] == op["count"], op  # --verify-every 1
    assert op["bytes"] == op["count"] * 8192, op
print(sys.argv[2], op["count"], "ops,", op["ops_per_s"], "ops/s, p99", lat["p99"], "ms")
EOF_PY
}

SMOKE=$(h_bucket smoke)
B=("$CAIRN_BIN" bench --endpoint "$H_ENDPOINT" --bucket "$SMOKE" --size 8K --keys 50 --quiet --json)
seed=$((RANDOM % 1000 + 1))
echo "seed $seed"

if h_run "bench put 2s" "${B[@]}" --op put --duration 2 --concurrency 8 --seed "$seed"; then
    printf '%s\n' "$H_OUT" >"$H_WORK/put.json"
    h_run "put report: ops, no errors" json_check "$H_WORK/put.json" put && echo "$H_OUT"
fi
if h_run "bench get 2s, every body verified" "${B[@]}" --op get --duration 2 --concurrency 8 \
    --seed "$seed" --verify-every 1 --no-preload; then
    printf '%s\n' "$H_OUT" >"$H_WORK/get.json"
    h_run "get report: ops, no errors, all verified" json_check "$H_WORK/get.json" get &&
        echo "$H_OUT"
fi
h_run "bench mixed 300 requests (preload, list, delete)" "${B[@]}" --op mixed --count 300 \
    --mix get=50,put=20,head=10,delete=10,list=10 --size 1K-64K --bucket "$(h_bucket smokemix)" \
    --seed "$seed"
h_fails_with "wrong content seed: verification fails, exit non-zero" "body differs" \
    "$CAIRN_BIN" bench --endpoint "$H_ENDPOINT" --bucket "$SMOKE" --size 8K --keys 50 --quiet \
    --op get --count 20 --seed $((seed + 1)) --verify-every 1 --no-preload
h_fails_with "bad credentials: errors reported" "HTTP 403" \
    "$CAIRN_BIN" bench --endpoint "$H_ENDPOINT" --secret-key wrong-secret --quiet --op put \
    --count 5 --bucket "$SMOKE"
if h_run "bench --raw --json" "$CAIRN_BIN" bench --raw --json --raw-seconds 0.05; then
    h_run "raw report has all kernels" "$H_PY" -c 'import json,sys; r=json.loads(sys.argv[1])["raw"]
assert all(r[k] > 0 for k in ("ec_4+2_encode","md5","sha256","crc32c","crc64nvme","md5_x2","md5_x4")), r' "$H_OUT"
fi
h_finish
