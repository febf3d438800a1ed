#!/usr/bin/env bash
# Transparent compression (docs/compression.md): two servers in the same run, one with
# `[storage] compression = auto` (the default) and one with `compression = off`, each sent the
# same text-like body and the same random body (curl PUTs to presigned URLs, alternating between
# the servers so both see the same machine load). Per body and mode: median wall time of the PUTs
# and the server's CPU time over them (utime + stime from /proc/PID/stat, as seconds per GiB),
# the same for a GET of each body after each PUT (compared with what was sent), and for the text
# body the stored bytes (admin status) against its size. Not part of .ci/run: it
# writes several GiB (4+2 coding).
#   bench/compression.sh [SIZE_MIB] [REPS]      (default 1024 MiB, 3 PUTs per body and mode)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=${1:-1024}
reps=${2:-3}
bin=${CAIRN_BIN:-$root/build/bin/cairn}
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-zbench.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
export CAIRN_ACCESS_KEY=zbenchaccess CAIRN_SECRET_KEY=zbenchsecret0123456789
tick=$(getconf CLK_TCK)

# Bodies: random bytes, and text-like lines (64 MiB generated, repeated: each 1 MiB frame is
# compressed on its own, so the repetition does not help zstd).
head -c $((size_mib << 20)) /dev/urandom >"$work/random"
python3 "$root/bench/textbody.py" "$work/text" "$size_mib"

start_server() { # MODE -> sets port_MODE, pid_MODE
    local mode=$1 port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf '[storage]\ncompression = %s\n' "$mode" >"$work/$mode.conf"
    "$bin" server --config "$work/$mode.conf" --data "$work/data-$mode" \
        --listen "127.0.0.1:$port" >"$work/server-$mode.log" 2>&1 &
    pids+=($!)
    eval "port_$mode=$port pid_$mode=$!"
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.1; done
    CAIRN_ENDPOINT=http://127.0.0.1:$port python3 "$root/tests/integration/s3raw.py" mb zbench >"$work/mb.out" || { cat "$work/mb.out" "$work/server-$mode.log"; exit 1; }
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status() { # PORT -> "stored_bytes logical_bytes bodies"
    CAIRN_ENDPOINT=http://127.0.0.1:$1 python3 - "$root/tests/integration" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import s3raw
st, _, body = s3raw.request("GET", "/admin/status")
z = json.loads(body)["compression"]
print(z["stored_bytes"], z["logical_bytes"], z["bodies"])
PY
}
put() { # MODE BODY [get] -> appends "wall cpu_seconds" to $work/MODE-BODY (or MODE-BODY-get)
    local mode=$1 body=$2 port pid url t0 t1 wall
    port=$(eval echo "\$port_$mode")
    pid=$(eval echo "\$pid_$mode")
    if [ "${3:-}" = get ]; then
        url=$(python3 "$root/bench/presign.py" "http://127.0.0.1:$port" GET zbench "$body" 1)
        t0=$(cpu_ticks "$pid")
        wall=$(curl -sS -f "http://127.0.0.1:$port$url" -o "$work/got" -w '%{time_total}')
        cmp -s "$work/got" "$work/$body" || { echo "GET $body from $mode differs" >&2; exit 1; }
        rm -f "$work/got"
    else
        url=$(python3 "$root/bench/presign.py" "http://127.0.0.1:$port" PUT zbench "$body" 1)
        t0=$(cpu_ticks "$pid")
        wall=$(curl -sS -f -T "$work/$body" "http://127.0.0.1:$port$url" -o /dev/null -w '%{time_total}')
    fi
    t1=$(cpu_ticks "$pid")
    echo "$wall $(awk -v a="$t0" -v b="$t1" -v t="$tick" 'BEGIN { print (b - a) / t }')" \
        >>"$work/$mode-$body${3:+-$3}"
}

start_server auto
start_server off
for ((r = 0; r < reps; r++)); do
    for body in random text; do
        if ((r % 2)); then put off "$body"; put auto "$body"; else put auto "$body"; put off "$body"; fi
        if ((r % 2)); then put off "$body" get; put auto "$body" get; else put auto "$body" get; put off "$body" get; fi
    done
done

for f in "$work"/auto-* "$work"/off-*; do
    echo "samples $(basename "$f") (wall s, server CPU s): $(tr '\n' ' ' <"$f")"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
gib=$(awk -v m="$size_mib" 'BEGIN { print m / 1024 }')
echo "body ${size_mib} MiB, $reps PUTs per body and mode (median); server CPU = utime + stime"
printf '%-11s %-5s %10s %10s %16s\n' body mode "wall s" "MB/s" "server CPU s/GiB"
for body in random text random-get text-get; do
    for mode in auto off; do
        w=$(cut -d' ' -f1 "$work/$mode-$body" | median)
        c=$(cut -d' ' -f2 "$work/$mode-$body" | median)
        printf '%-11s %-5s %10.2f %10.1f %16.2f\n' "${body/-get/ GET}" "$mode" "$w" \
            "$(awk -v w="$w" -v m="$size_mib" 'BEGIN { print m * 1.048576 / w }')" \
            "$(awk -v c="$c" -v g="$gib" 'BEGIN { print c / g }')"
        eval "w_${mode}_${body/-get/_get}=$w c_${mode}_${body/-get/_get}=$c"
    done
done
read -r stored logical bodies < <(status "$port_auto")
echo "auto: $bodies bodies compressed, $logical logical bytes stored in $stored bytes" \
    "($(awk -v s="$stored" -v l="$logical" 'BEGIN { printf "%.1f%%", 100 * s / l }') of the text)"
ratio() { awk -v a="$1" -v o="$2" 'BEGIN { printf "%.3f", o / a }'; }
echo "random PUT speed, auto / off: wall $(ratio "$w_auto_random" "$w_off_random")x," \
    "server CPU $(ratio "$c_auto_random" "$c_off_random")x (text: wall" \
    "$(ratio "$w_auto_text" "$w_off_text")x, CPU $(ratio "$c_auto_text" "$c_off_text")x)"
