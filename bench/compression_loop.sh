#!/usr/bin/env bash
# Compression and the event loop (docs/compression.md, "Off the event loop"): for each server
# binary given, a server with one event loop (`threads = 1`, so every connection shares it) and
# `compression = auto` at level 1 takes PUTs of a text-like body (curl to a presigned URL) while
# a client GETs a 1 KB object over and over, one at a time, on fresh connections (the same loop).
# Per binary and rep, two PUTs: the first alone, for its wall time and the server's CPU (utime +
# stime from /proc/PID/stat over the PUT, per GiB); the second with the GETs running, for their
# latency: median, p99, max, and the share of that PUT's wall time spent in GETs slower than
# 20 ms (how long the loop was unavailable). Medians over the reps.
# Binaries alternate between reps so both see the same machine load. Not part of .ci/run.
#   bench/compression_loop.sh SIZE_MIB REPS BIN [BIN...]     (e.g. 1024 3 old/cairn new/cairn)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=$1
reps=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-zloop.XXXXXX")
pid=""
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export CAIRN_ACCESS_KEY=zbenchaccess CAIRN_SECRET_KEY=zbenchsecret0123456789
tick=$(getconf CLK_TCK)

# The text body of bench/compression.sh (bench/textbody.py).
python3 "$root/bench/textbody.py" "$work/text" "$size_mib"
printf '[server]\nthreads = 1\n[storage]\ncompression = auto\ncompression_level = 1\n' \
    >"$work/loop.conf"

run_one() { # BIN INDEX -> appends "wall cpu stalled p50 p99 max n" to $work/bINDEX
    local bin=$1 i=$2 port t0 t1 url
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    rm -rf "$work/data"
    "$bin" server --config "$work/loop.conf" --data "$work/data" --listen "127.0.0.1:$port" \
        >"$work/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
    export CAIRN_ENDPOINT=http://127.0.0.1:$port
    python3 "$root/tests/integration/s3raw.py" mb zloop >/dev/null
    python3 "$root/tests/integration/s3raw.py" put zloop small "$root/README.md" >/dev/null
    url=$(python3 "$root/bench/presign.py" "$CAIRN_ENDPOINT" PUT zloop text 1)
    # First the PUT alone: its wall time and the server's CPU.
    local s0 e0 wall cpu
    t0=$(cpu_ticks "$pid")
    wall=$(curl -sS -f -T "$work/text" "$CAIRN_ENDPOINT$url" -o /dev/null -w '%{time_total}')
    t1=$(cpu_ticks "$pid")
    cpu=$(awk -v a="$t0" -v b="$t1" -v t="$tick" 'BEGIN { print (b - a) / t }')
    # Then again with the GETs running.
    python3 - "$root/tests/integration" "$work/gets" "$work/stop" <<'PY' &
import os, sys, time
sys.path.insert(0, sys.argv[1])
import s3raw
out, stop = open(sys.argv[2], "w"), sys.argv[3]
while not os.path.exists(stop):
    t = time.time()
    st = s3raw.request("GET", "/zloop/small")[0]
    out.write("%.6f %.3f %d\n" % (t, (time.time() - t) * 1000, st))
PY
    local getter=$!
    sleep 0.5
    s0=$(date +%s.%N)
    curl -sS -f -T "$work/text" "$CAIRN_ENDPOINT$url" -o /dev/null
    e0=$(date +%s.%N)
    touch "$work/stop"
    wait "$getter"
    rm -f "$work/stop"
    python3 - "$work/gets" "$s0" "$e0" "$wall" "$cpu" >>"$work/b$i" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
s0, e0, wall, cpu = (float(x) for x in sys.argv[2:6])
put2 = e0 - s0
# the GETs that started during the PUT
lat = sorted(float(ms) for t, ms, st in rows if s0 <= float(t) <= e0 and st == "200")
bad = sum(1 for r in rows if r[2] != "200")
stalled = sum(x for x in lat if x > 20) / 1000
p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else 0
print(wall, cpu, stalled / put2, p(0.5), p(0.99), lat[-1] if lat else 0, len(lat), bad)
PY
    kill "$pid"
    wait "$pid" || true
    pid=""
    rm -f "$work/gets"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

for ((r = 0; r < reps; r++)); do
    i=0
    for bin in "$@"; do
        run_one "$bin" "$i"
        i=$((i + 1))
    done
done
gib=$(awk -v m="$size_mib" 'BEGIN { print m / 1024 }')
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "text body ${size_mib} MiB, $reps PUTs per binary (medians), one event loop, GETs of 1 KB meanwhile"
printf '%-40s %8s %8s %9s %9s %9s %9s %8s %6s\n' binary "wall s" "MB/s" "CPU s/GiB" "GET p50" \
    "GET p99" "GET max" "stalled" GETs
i=0
for bin in "$@"; do
    f=$work/b$i
    col() { cut -d' ' -f"$1" "$f" | median; }
    w=$(col 1)
    printf '%-40s %8.2f %8.1f %9.2f %8.1fms %8.1fms %8.1fms %7.0f%% %6d\n' "$bin" "$w" \
        "$(awk -v w="$w" -v m="$size_mib" 'BEGIN { print m * 1.048576 / w }')" \
        "$(awk -v c="$(col 2)" -v g="$gib" 'BEGIN { print c / g }')" "$(col 4)" "$(col 5)" \
        "$(col 6)" "$(awk -v s="$(col 3)" 'BEGIN { print 100 * s }')" "$(col 7)"
    echo "  samples: $(tr '\n' ';' <"$f")"
    i=$((i + 1))
done
