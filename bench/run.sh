#!/usr/bin/env bash
# bench/run.sh - the benchmark suite of issue 4: cairn next to references measured in the same run.
#
#   bench/run.sh               ~10 s per workload, about 2-3 minutes in all
#   QUICK=1 bench/run.sh       ~2 s per workload (a smoke run; figures are noisier)
#   PERF=1 bench/run.sh        also `perf record -g` the server during the cairn runs and keep
#                              `perf report` summaries next to the results
# Knobs: CAIRN_BIN (default build/bin/cairn), DUR (seconds per workload), BENCH_TMP (where the data
# dir and disk test files go: put it on the disk you want measured; default $TMPDIR or /tmp),
# OUT (results file, default bench/results-<date>.md).
#
# What it runs, in order, on this machine's loopback:
#   raw CPU      `cairn bench --raw` (ISA-L 4+2 encode, MD5, SHA-256, CRC32C, CRC64NVME per core)
#   raw disk     dd 1 MiB blocks O_DIRECT + fdatasync; 4 KiB append + fdatasync rate, one stream
#   cairn        `cairn server` on a fresh data dir (embedded default: 6 drive folders, 4+2)
#   nginx        a private nginx (temp config, loopback port, no access log) serving the same
#                bytes as static files: one 4 KiB and one 1 MiB object copied out of cairn
#   workloads    4 KiB GET c=64 and 1 MiB GET c=16 on both (same load tool: `cairn bench`, nginx
#                with --raw-http), 4 KiB PUT c=64, 64 MiB PUT c=4 (server VmRSS sampled)
#   wrk          the outside tool (Debian package, installed when missing): the same GETs against
#                both, by SigV4 presigned URLs for cairn (bench/presign.py) and plain URLs for
#                nginx, and the 4 KiB PUT c=64 by presigned URLs with a Lua script for the
#                bodies (bench/wrk_s3.lua); one thread per core; each right after the same
#                workload by `cairn bench`, the PUTs after a second fdatasync-rate measurement
#                (wrk's 4 KiB PUTs on a fresh data dir, as cairn bench's are)
# Prints one table (workload; cairn, reference and ratio by each tool; target, met?) and writes it
# to OUT. Exits non-zero when a step fails or a request failed; missed targets are reported, not
# failures.
# Every process it starts is stopped on exit (trap).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CAIRN_BIN:-$root/build/bin/cairn}
if [ "${QUICK:-0}" = 1 ]; then DUR=${DUR:-2}; DISK_MB=256; RAW_S=0.3; else DUR=${DUR:-10}; DISK_MB=1024; RAW_S=1; fi
OUT=${OUT:-$root/bench/results-$(date +%F).md}
work=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/cairn-bench.XXXXXX")
res=$work/results
mkdir -p "$res"
server="" nginx="" sampler="" perfpid=""

cleanup() {
    for p in $perfpid $sampler $nginx $server; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

say() { printf '== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

[ -x "$bin" ] || { echo "no cairn binary at $bin (build first: scripts/setup.sh)" >&2; exit 1; }
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    say "installing nginx (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx-core >/dev/null 2>&1 ||
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
if ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null
fi

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
dev=$(df --output=source "$work" | tail -1)
fstype=$(df --output=fstype "$work" | tail -1)
machine="$(date -u '+%F %H:%M UTC'), $(nproc) cores ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, data on $dev ($fstype), kernel $(uname -r), ${DUR}s per workload"
say "$machine"

# ---- raw references ----
say "raw CPU (cairn bench --raw)"
"$bin" bench --raw --json --raw-seconds "$RAW_S" >"$res/raw.json"

say "raw disk: ${DISK_MB} MiB sequential write (O_DIRECT, fdatasync), 4 KiB append+fdatasync"
dd_out=$(dd if=/dev/zero of="$work/dd.bin" bs=1M count="$DISK_MB" oflag=direct conv=fdatasync 2>&1 | tail -1)
rm -f "$work/dd.bin"
fsync_rate() { # SECONDS [DD-OUTPUT]: JSON with the 4 KiB append+fdatasync rate (and dd's figure)
    python3 - "$work/fsync.bin" "$1" "${2:-}" <<'PY'
import json, os, re, sys, time
path, secs, dd = sys.argv[1], float(sys.argv[2]), sys.argv[3]
m = re.match(r"(\d+) bytes .* copied, ([0-9.]+) s", dd)
seq = int(m.group(1)) / float(m.group(2)) / 1e6 if m else 0.0
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block, n, t0 = b"x" * 4096, 0, time.monotonic()
while time.monotonic() - t0 < secs:
    os.write(fd, block)
    os.fdatasync(fd)
    n += 1
rate = n / (time.monotonic() - t0)
os.close(fd)
os.unlink(path)
print(json.dumps({"seq_write_mb_s": seq, "fsync4k_per_s": rate, "dd": dd}))
PY
}
fsync_rate "$(( DUR < 5 ? 1 : 3 ))" "$dd_out" >"$res/disk.json"

# ---- servers ----
export CAIRN_ACCESS_KEY=benchaccess01 CAIRN_SECRET_KEY=bench-secret-0123456789abcdefgh
cport=$(free_port)
start_cairn() {
    "$bin" server --data "$work/data" --listen "127.0.0.1:$cport" >>"$work/server.log" 2>&1 &
    server=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$cport/health/ready" >/dev/null && break; sleep 0.1; done
    curl -sf "http://127.0.0.1:$cport/health/ready" >/dev/null || { cat "$work/server.log" >&2; exit 1; }
    say "cairn server pid $server on $cend"
}
cend=http://127.0.0.1:$cport
start_cairn

B() { "$bin" bench --endpoint "$cend" --quiet --json "$@"; }

# Preload the GET objects first; nginx then serves the same bytes.
B --op put --bucket get4k --size 4K --keys 100 --count 100 --concurrency 16 >/dev/null
B --op put --bucket get1m --size 1M --keys 64 --count 64 --concurrency 16 >/dev/null
mkdir -p "$work/www"
fetched=0
if command -v aws >/dev/null 2>&1; then
    export AWS_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY AWS_DEFAULT_REGION=us-east-1
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    aws --endpoint-url "$cend" s3 cp s3://get4k/obj-00000000 "$work/www/4k" >/dev/null 2>&1 &&
        aws --endpoint-url "$cend" s3 cp s3://get1m/obj-00000000 "$work/www/1m" >/dev/null 2>&1 && fetched=1
fi
if [ "$fetched" != 1 ]; then # same sizes, other bytes: static serving does not look at them
    head -c 4096 /dev/urandom >"$work/www/4k"
    head -c 1048576 /dev/urandom >"$work/www/1m"
fi
[ "$(stat -c %s "$work/www/4k")" = 4096 ] && [ "$(stat -c %s "$work/www/1m")" = 1048576 ]

nport=$(free_port)
mkdir -p "$work/nginx"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user nobody nogroup;" && chmod 755 "$work" "$work/www" && chmod 644 "$work/www/"*
cat >"$work/nginx/nginx.conf" <<NG
$user_line
worker_processes auto;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    default_type application/octet-stream;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$nport;
        root $work/www;
    }
}
NG
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
nginx=$!
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$nport/4k" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$nport/4k" || { cat "$work/nginx/error.log" >&2; exit 1; }
say "nginx $($NGINX -v 2>&1 | sed 's/.*\///') pid $nginx on 127.0.0.1:$nport"
N() { "$bin" bench --endpoint "http://127.0.0.1:$nport" --quiet --json --op get "$@"; }

perf_start() {
    [ "${PERF:-0}" = 1 ] && command -v perf >/dev/null || return 0
    perf record -g -o "$work/perf-$1.data" -p "$server" >/dev/null 2>&1 &
    perfpid=$!
}
perf_stop() {
    [ -n "$perfpid" ] || return 0
    kill -INT "$perfpid" 2>/dev/null || true
    wait "$perfpid" 2>/dev/null || true
    perfpid=""
    { # flat profile by symbol, then by shared object (the binary has no frame pointers)
        perf report -i "$work/perf-$1.data" --stdio --no-children -g none --percent-limit 0.7
        perf report -i "$work/perf-$1.data" --stdio --no-children -g none --sort dso
    } 2>/dev/null | grep -v -e '^$' -e '^# *$' >"${OUT%.md}-perf-$1.txt" || true
}

# wrk: requests over presigned targets (GET keys at random, PUT keys in order per thread), one
# JSON line (WRKJSON) from the script's done() into the results. WT = wrk threads.
WT=$(nproc)
python3 "$root/bench/presign.py" "$cend" GET get4k obj 100 >"$work/wrk-get4k.txt"
python3 "$root/bench/presign.py" "$cend" GET get1m obj 64 >"$work/wrk-get1m.txt"
python3 "$root/bench/presign.py" "$cend" PUT put4kwrk wrk 200000 >"$work/wrk-put4k.txt"
W() { # W OUTNAME CONCURRENCY URL [PATHS METHOD ORDER BODYBYTES]
    local name=$1 c=$2 url=$3
    WRK_PATHS=${4:-} WRK_METHOD=${5:-GET} WRK_ORDER=${6:-random} WRK_BODY=${7:-0} WRK_THREADS=$WT \
        wrk -t"$WT" -c"$c" -d"${DUR}s" --latency -s "$root/bench/wrk_s3.lua" "$url" >"$work/$name.wrk"
    sed -n 's/^WRKJSON //p' "$work/$name.wrk" >"$res/$name.json"
    [ -s "$res/$name.json" ] || { cat "$work/$name.wrk" >&2; exit 1; }
}

# ---- workloads ----
# Each workload is measured by both tools back to back (this machine's load moves within a
# minute), and the single-stream fsync rate is taken again right before the PUTs: the PUT rows'
# reference (the one at the start stays in the references list).
say "nginx  4 KiB GET c=64, ${DUR}s, cairn bench and wrk"
N --raw-http /4k --concurrency 64 --duration "$DUR" >"$res/nginx_get4k.json"
W wrk_nginx_get4k 64 "http://127.0.0.1:$nport/4k"
say "cairn  4 KiB GET c=64, ${DUR}s, cairn bench and wrk"
perf_start get4k
B --op get --bucket get4k --size 4K --keys 100 --no-preload --concurrency 64 --duration "$DUR" >"$res/cairn_get4k.json"
perf_stop get4k
W wrk_cairn_get4k 64 "$cend" "$work/wrk-get4k.txt"
say "nginx  1 MiB GET c=16, ${DUR}s, cairn bench and wrk"
N --raw-http /1m --concurrency 16 --duration "$DUR" >"$res/nginx_get1m.json"
W wrk_nginx_get1m 16 "http://127.0.0.1:$nport/1m"
say "cairn  1 MiB GET c=16, ${DUR}s, cairn bench and wrk"
perf_start get1m
B --op get --bucket get1m --size 1M --keys 64 --no-preload --concurrency 16 --duration "$DUR" >"$res/cairn_get1m.json"
perf_stop get1m
W wrk_cairn_get1m 16 "$cend" "$work/wrk-get1m.txt"
say "4 KiB append+fdatasync again, then cairn 4 KiB PUT c=64, ${DUR}s, cairn bench and wrk"
fsync_rate "$(( DUR < 5 ? 1 : 3 ))" >"$res/fsync_put.json"
perf_start put4k
B --op put --bucket put4k --size 4K --keys 100000 --concurrency 64 --duration "$DUR" >"$res/cairn_put4k.json"
perf_stop put4k
# wrk's PUTs on a fresh store too: a small PUT costs more CPU as the metadata grows (~50 us for
# the first 500,000 PUTs, 65-73 us by 780,000 on this machine: docs/performance.md, "Nineteenth
# session"), so wrk measured right after cairn bench's ~230,000 PUTs read 10-30 % low
kill "$server" && wait "$server" 2>/dev/null
rm -rf "$work/data"
start_cairn
B --op put --bucket put4kwrk --size 4K --keys 1 --count 1 --concurrency 1 >/dev/null # the bucket
W wrk_cairn_put4k 64 "$cend" "$work/wrk-put4k.txt" PUT seq 4096

# A fresh server process for the memory figure: otherwise the LMDB pages the 4 KiB PUT run
# touched stay mapped (file-backed, reclaimable) and dominate VmRSS.
kill "$server" && wait "$server" 2>/dev/null
start_cairn
say "cairn 64 MiB PUT c=4, ${DUR}s (sampling server VmRSS)"
(
    peak=0
    while kill -0 "$server" 2>/dev/null; do
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$server/status" 2>/dev/null)
        [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$res/rss.txt"
        sleep 0.1 # sampling interval of a monitor, not synchronisation
    done
) &
sampler=$!
perf_start put64m
B --op put --bucket put64m --size 64M --keys 8 --concurrency 4 --duration "$DUR" >"$res/cairn_put64m.json"
perf_stop put64m
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
sampler=""

echo
python3 "$root/bench/summarize.py" "$res" "$OUT" "$machine"
rc=$?
echo "written to $OUT" >&2
exit $rc
