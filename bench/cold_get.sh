#!/usr/bin/env bash
# bench/cold_get.sh - GETs of objects the page cache does not hold, and what they do to the
# requests beside them: N 1 MiB objects read at random by wrk (c=16) while a second wrk (c=4)
# GETs one 4 KiB object (inline: in memory). A server whose event loops wait on the disk for the
# cold reads makes the small GETs wait behind them; one whose loops never wait (docs/storage.md,
# "Reads that never wait on the disk") answers them at memory speed. Prints both rates and the
# small GETs' median and p99 latency.
#
#   bench/cold_get.sh                  the single-node default (`cairn server`)
#   CLUSTER=1 bench/cold_get.sh        deploy/local-cluster.sh, both loads through n1
#
# Knobs: CAIRN_BIN (default build-release/bin/cairn, else build/bin/cairn), N (objects: 4,000;
# 2,000 for the cluster), DUR (seconds of load, 4), BENCH_TMP (data dirs; default $TMPDIR or
# /tmp). The objects are cold because the store drops its pages once they are durable
# (docs/storage.md, section 4); as root the script also drops the page cache before the reads.
# Needs wrk and python3 (bench/presign.py). Stops every process it started.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
bin=${CAIRN_BIN:-}
[ -n "$bin" ] || { [ -x "$root/build-release/bin/cairn" ] && bin=$root/build-release/bin/cairn; } ||
    bin=$root/build/bin/cairn
[ -x "$bin" ] || { echo "cold_get: no cairn binary at $bin (bash scripts/setup.sh)" >&2; exit 1; }
command -v wrk >/dev/null || { echo "cold_get: wrk is missing (apt-get install wrk)" >&2; exit 1; }
export CAIRN_ACCESS_KEY=${CAIRN_ACCESS_KEY:-benchaccess01}
export CAIRN_SECRET_KEY=${CAIRN_SECRET_KEY:-bench-secret-0123456789abcdefgh}
cluster=${CLUSTER:-0}
n=${N:-$([ "$cluster" = 1 ] && echo 2000 || echo 4000)}
dur=${DUR:-4}
work=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/cairn-cold.XXXXXX")
server=
cleanup() {
    if [ "$cluster" = 1 ]; then
        CAIRN_CLUSTER_DIR=$work/cluster CAIRN_BIN=$bin "$root/deploy/local-cluster.sh" stop \
            >/dev/null 2>&1 || true
    elif [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

if [ "$cluster" = 1 ]; then
    CAIRN_CLUSTER_DIR=$work/cluster CAIRN_BIN=$bin "$root/deploy/local-cluster.sh" start \
        >"$work/nodes.txt"
    ep=$(awk '/^n1 / {print $3}' "$work/nodes.txt")
else
    port=$(free_port)
    "$bin" server --data "$work/data" --listen "127.0.0.1:$port" >>"$work/server.log" 2>&1 &
    server=$!
    ep=http://127.0.0.1:$port
    for _ in $(seq 100); do
        curl -fsS "$ep/health/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
fi
echo "cold_get: $n objects of 1 MiB through $ep ($([ "$cluster" = 1 ] && echo "loopback cluster, n1" || echo "single node"))"
"$bin" bench --endpoint "$ep" --quiet --json --op put --bucket cold --size 1M --keys "$n" \
    --count "$n" --concurrency 16 >/dev/null
"$bin" bench --endpoint "$ep" --quiet --json --op put --bucket small --size 4K --keys 1 --count 1 \
    --concurrency 1 >/dev/null
python3 "$here/presign.py" "$ep" GET cold obj "$n" >"$work/big.txt"
python3 "$here/presign.py" "$ep" GET small obj 1 >"$work/small.txt"
sync
if [ -w /proc/sys/vm/drop_caches ]; then echo 1 >/proc/sys/vm/drop_caches; fi
WRK_PATHS=$work/big.txt WRK_METHOD=GET WRK_ORDER=random WRK_THREADS=1 \
    wrk -t1 -c16 -d"${dur}s" -s "$here/wrk_s3.lua" "$ep" >"$work/big.out" &
big=$!
WRK_PATHS=$work/small.txt WRK_METHOD=GET WRK_ORDER=random WRK_THREADS=1 \
    wrk -t1 -c4 -d"${dur}s" --latency -s "$here/wrk_s3.lua" "$ep" >"$work/small.out"
wait "$big"
rate() { awk '/Requests\/sec/ {print $2}' "$1"; }
lat() { awk -v p="$2" '$1 == p {print $2}' "$1"; }
printf '| load | GETs/s | median | p99 |\n|---|---|---|---|\n'
printf '| 1 MiB, cold, c=16 | %s | - | - |\n' "$(rate "$work/big.out")"
printf '| 4 KiB, in memory, c=4, meanwhile | %s | %s | %s |\n' "$(rate "$work/small.out")" \
    "$(lat "$work/small.out" 50%)" "$(lat "$work/small.out" 99%)"
if [ "$cluster" != 1 ]; then
    curl -fsS "$ep/metrics" | grep -E '^cairn_loop_reads_(un)?cached_total' || true
fi
