#!/usr/bin/env bash
# tls_cost.sh - the server's CPU per 4 KiB GET over plain HTTP and over TLS (docs/tls.md).
#
# Two `cairn server` processes on fresh data dirs, one plain and one with a throwaway P-256
# certificate made here with the openssl CLI, each holding one 4 KiB object. wrk (bench/wrk_s3.lua,
# presigned GET targets from bench/presign.py) drives each for DUR seconds (default 5) with C
# keep-alive connections (default 8), then again with "Connection: close" (a new connection, and
# for TLS a full handshake, per request). The figure is the server's own CPU (utime + stime from
# /proc/PID/stat, in clock ticks) over the run divided by the requests wrk completed: CPU per
# request, not wall clock, so the load tool sharing the cores does not count. Prints a Markdown
# table. Every process it starts is stopped on exit.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CAIRN_BIN:-$root/build/bin/cairn}
DUR=${DUR:-5}
C=${C:-8}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-tls-cost.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
export CAIRN_ACCESS_KEY=BENCHTLSACCESSKEY001 CAIRN_SECRET_KEY=bench-tls-secret-0123456789abcdef
command -v wrk >/dev/null || { echo "tls_cost.sh: needs wrk" >&2; exit 1; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 600 "$work/key.pem"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # start NAME SCHEME [ARGS]: sets PID_NAME, EP_NAME
    local name=$1 scheme=$2 p
    shift 2
    p=$(port)
    "$BIN" server --data "$work/$name" --listen "127.0.0.1:$p" --log-level warn "$@" \
        >"$work/$name.log" 2>&1 &
    pids+=($!)
    printf -v "PID_$name" %s $!
    printf -v "EP_$name" %s "$scheme://127.0.0.1:$p"
    for _ in $(seq 100); do
        curl -fsk -o /dev/null "$scheme://127.0.0.1:$p/health/ready" && return 0
        sleep 0.1 # polling a readiness probe
    done
    echo "tls_cost.sh: $name did not start" >&2
    exit 1
}
start plain http
start tls https --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"

head -c 4096 /dev/urandom >"$work/obj"
export AWS_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY
export AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
for name in plain tls; do
    ep_var=EP_$name
    aws --endpoint-url "${!ep_var}" --ca-bundle "$work/cert.pem" s3 mb s3://tlscost >/dev/null
    aws --endpoint-url "${!ep_var}" --ca-bundle "$work/cert.pem" s3 cp "$work/obj" \
        s3://tlscost/obj-00000000 >/dev/null
    python3 "$root/bench/presign.py" "${!ep_var}" GET tlscost obj 1 >"$work/$name.paths"
done

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
run() { # run NAME CONNECTION_HEADER: prints "requests us_per_request"
    local name=$1 hdr=$2 pid_var=PID_$1 ep_var=EP_$1 t0 t1 n
    t0=$(ticks "${!pid_var}")
    WRK_PATHS=$work/$name.paths wrk -t1 -c"$C" -d"${DUR}s" ${hdr:+-H "$hdr"} \
        -s "$root/bench/wrk_s3.lua" "${!ep_var}" >"$work/wrk.out"
    t1=$(ticks "${!pid_var}")
    n=$(sed -n 's/^WRKJSON {"requests": \([0-9]*\),.*/\1/p' "$work/wrk.out")
    grep -q '"status": 0' "$work/wrk.out" || { cat "$work/wrk.out" >&2; exit 1; }
    awk -v n="$n" -v t=$((t1 - t0)) -v hz="$hz" 'BEGIN { printf "%d %.1f\n", n, t * 1e6 / hz / n }'
}
echo "| 4 KiB GET, $C connections, ${DUR}s | requests | server CPU per request |"
echo "| --- | --- | --- |"
for mode in keep-alive close; do
    hdr=""
    [ "$mode" = close ] && hdr="Connection: close"
    for name in plain tls; do
        read -r n us < <(run "$name" "$hdr")
        echo "| $name, $mode | $n | $us µs |"
    done
done
