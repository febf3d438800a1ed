#!/bin/bash
# put4k_cpu.sh - server CPU per 4 KiB PUT, PUTs per metadata commit and the load tool's own CPU,
# by wrk (presigned URLs, bench/wrk_s3.lua, as bench/run.sh drives it) or by `cairn bench`
# (header-signed), each against a fresh server. For A/Bs on a shared machine, where throughput
# follows the load of the moment and CPU per request much less (docs/performance.md, "Seventh
# session: 4 KiB PUT under wrk").
#
#   bench/put4k_cpu.sh wrk|bench|both [SECONDS] [CONNECTIONS]     (defaults 5 and 64)
#
# `both` runs cairn bench then wrk on one server. CAIRN_BIN picks the binary. Per run it prints
# one line: requests, rate, server CPU per PUT (utime+stime of the server process from
# /proc/PID/stat around the run), PUTs per commit (the metadata store's commit counter, `meta.seq`
# of /admin/status), the tool's CPU per PUT (whole process, start-up included: wrk loads its URL
# list into each thread before its clock starts), server bytes written per PUT (wchar), context
# switches per PUT (all server threads), and the load average. Every process it starts is stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CAIRN_BIN:-$root/build/bin/cairn}
mode=${1:?usage: put4k_cpu.sh wrk|bench|both [SECONDS] [CONNECTIONS]}
secs=${2:-5}
conc=${3:-64}
command -v wrk >/dev/null || [ "$mode" = bench ] || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/put4k_cpu.XXXXXX")
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
export CAIRN_ACCESS_KEY=benchaccess01 CAIRN_SECRET_KEY=bench-secret-0123456789abcdefgh
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
end=http://127.0.0.1:$port
"$bin" server --data "$work/data" --listen "127.0.0.1:$port" >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "$end/health/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$end/health/ready" >/dev/null || { cat "$work/server.log" >&2; exit 1; }
B() { "$bin" bench --endpoint "$end" --quiet --json "$@"; }
B --op put --bucket put4kwrk --size 4K --keys 1 --count 1 --concurrency 1 >/dev/null # the bucket
[ "$mode" = bench ] || python3 "$root/bench/presign.py" "$end" PUT put4kwrk wrk 200000 >"$work/urls.txt"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
wchar() { awk '/^wchar/ {print $2}' "/proc/$server/io"; }
switches() { cat /proc/"$server"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
commits() { "$bin" admin status --json --endpoint "$end" | python3 -c 'import json, sys; print(json.load(sys.stdin)["meta"]["seq"])'; }

measure() { # TOOL
    local tool=$1 s0 c0 w0 x0 s1 c1 w1 x1 n req err cu cs
    s0=$(commits) c0=$(cpu_ticks) w0=$(wchar) x0=$(switches)
    if [ "$tool" = wrk ]; then
        WRK_PATHS=$work/urls.txt WRK_METHOD=PUT WRK_ORDER=seq WRK_BODY=4096 WRK_THREADS=2 \
            /usr/bin/time -o "$work/time" -f "%U %S" wrk -t2 -c"$conc" -d"${secs}s" \
            -s "$root/bench/wrk_s3.lua" "$end" >"$work/out" 2>&1
        n=$(sed -n 's/^WRKJSON //p' "$work/out" | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["requests"], sum(d["errors"].values()))')
    else
        /usr/bin/time -o "$work/time" -f "%U %S" "$bin" bench --endpoint "$end" --quiet --json \
            --op put --bucket put4k --size 4K --keys 100000 --concurrency "$conc" \
            --duration "$secs" >"$work/out"
        n=$(python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["total"]; print(d["count"], d["errors"])' "$work/out")
    fi
    c1=$(cpu_ticks) w1=$(wchar) x1=$(switches) s1=$(commits)
    read -r req err <<<"$n"
    read -r cu cs <"$work/time"
    python3 - "$tool" "$req" "$err" "$secs" "$((c1 - c0))" "$(getconf CLK_TCK)" "$((s1 - s0))" \
        "$cu" "$cs" "$((w1 - w0))" "$((x1 - x0))" <<'PY'
import sys
tool, req, err, secs, ticks, hz, commits, cu, cs, wbytes, sw = sys.argv[1:]
req = max(int(req), 1)
print("%s: %d PUTs (%s errors) %.0f/s, server CPU %.1f us/PUT, %.1f PUTs/commit, tool CPU %.1f "
      "us/PUT, %.0f bytes written/PUT, %.2f switches/PUT, load %s" % (
          tool, req, err, req / float(secs), int(ticks) / float(hz) / req * 1e6,
          req / max(int(commits), 1), (float(cu) + float(cs)) / req * 1e6, int(wbytes) / req,
          int(sw) / req, open("/proc/loadavg").read().split()[0]))
PY
}
case $mode in
both) measure bench; measure wrk ;;
wrk | bench) measure "$mode" ;;
*) echo "usage: put4k_cpu.sh wrk|bench|both [SECONDS] [CONNECTIONS]" >&2; exit 2 ;;
esac
