#!/usr/bin/env bash
# Resident memory of the server during a 5 GiB upload through the aws CLI (issue: "memory per
# request is bounded whatever the object size"). Not part of .ci/run: it writes ~7.5 GiB to disk
# (4+2 coding) and takes a few minutes. Prints the peak VmRSS of the server and the upload time.
#   bench/mem_5g_put.sh [SIZE_MIB]   (default 5120)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-5120}
bin=${CAIRN_BIN:-$root/build/bin/cairn}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-mem.XXXXXX")
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP_LOG:-}" ] && cp "$work/rss.log" "$KEEP_LOG"; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export CAIRN_ACCESS_KEY=memtestaccess CAIRN_SECRET_KEY=memtestsecret0123456789
export AWS_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
"$bin" server --data "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
aws --endpoint-url "http://127.0.0.1:$port" s3 mb s3://mem >/dev/null
peak=0
sample() {
    while kill -0 "$server" 2>/dev/null; do
        rss=$(awk '/VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null || echo 0)
        awk '/RssAnon|RssFile/ {printf "%s %s ", $1, $2} END {print ""}' "/proc/$server/status" >>"$work/rss.log" 2>/dev/null
        [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" >"$work/peak"
        sleep 0.2
    done
}
sample &
sampler=$!
start=$(date +%s.%N)
# The body is generated on the fly: no 5 GiB file on disk, the CLI streams from stdin.
head -c $((size_mib << 20)) /dev/zero | tr '\0' 'x' |
    aws --endpoint-url "http://127.0.0.1:$port" s3 cp - s3://mem/big --expected-size $((size_mib << 20)) >/dev/null
end=$(date +%s.%N)
got=$(aws --endpoint-url "http://127.0.0.1:$port" s3api head-object --bucket mem --key big --query ContentLength --output text)
kill "$sampler" 2>/dev/null || true
peak_kib=$(cat "$work/peak" 2>/dev/null || echo 0)
printf 'uploaded %s bytes (expected %s) in %.1f s; server peak RSS %d MiB\n' "$got" \
    $((size_mib << 20)) "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" $((peak_kib / 1024))
awk '{ if ($2 > a) a = $2; if ($4 > f) f = $4 } END { printf "  of which peak anonymous %d MiB, peak file-backed (LMDB map, binary) %d MiB\n", a / 1024, f / 1024 }' "$work/rss.log"
[ "$got" = $((size_mib << 20)) ]
