#!/usr/bin/env bash
# bench/cluster.sh - the loopback cluster next to the single-node default, in one run (issue 9,
# speed bullet): 4 KiB and 1 MiB GET and PUT through one node of deploy/local-cluster.sh, as
# ratios against the same workloads on a single `cairn server`, with the CPU both spend per op.
#
#   bench/cluster.sh              ~5 s per workload, about 3 minutes in all (with the listing)
#   QUICK=1 bench/cluster.sh      ~2 s per workload (a smoke run; figures are noisier)
#   SPREAD=0 bench/cluster.sh     skip the runs spread over all six nodes
#   LIST=0 bench/cluster.sh       skip the listing rows (LIST_KEYS keys in the big prefix:
#                                 50,000, with QUICK=1 5,000)
#   WRK=0 bench/cluster.sh        skip the outside tool's runs (wrk)
# Knobs: CAIRN_BIN (default build/bin/cairn), DUR (seconds per workload), BENCH_TMP (where the
# data dirs go; default $TMPDIR or /tmp), OUT (results file, default
# bench/cluster-results-<date>.md), CAIRN_ETCD (the etcd binary, as local-cluster.sh takes it).
#
# What it runs, in order, on this machine's loopback:
#   single     `cairn server` on a fresh data dir (the embedded default: 6 drive folders, 4+2),
#              as bench/run.sh starts it
#   cluster    deploy/local-cluster.sh start in a temp dir on free ports (3 etcd members, six
#              nodes in three AZs with 4 drive folders each, bodies 8+4 over the 24 drives,
#              records N=3/W=2/R=2)
#   then, per workload, back to back (the same load on the machine for both sides; the side not
#   measured is idle): the single node; the cluster through n1; and (SPREAD=1) the cluster with
#   the connections spread over the six nodes (one `cairn bench` per node, c/6 each, at once)
#   workloads  4 KiB GET c=64 and 1 MiB GET c=16 (objects preloaded), 4 KiB PUT c=64, 1 MiB PUT
#              c=16 (the concurrencies of bench/run.sh's rows), all by `cairn bench`
#   wrk        (WRK=1; the Debian package, installed when missing) the outside check: each
#              workload again right after cairn bench's runs of it, on the single node and through
#              n1, by SigV4 presigned URLs (bench/presign.py) and bench/wrk_s3.lua for the PUT
#              bodies, one wrk thread per core; a second table with both sides and the ratio
#   listing    (LIST=1) ListObjectsV2 through each side: the first page (100 keys) of a 1,000-key
#              prefix and of a LIST_KEYS-key prefix, c=4 by `cairn bench --op list`; then one
#              client paging through the big prefix 1,000 keys a page (bench/list_pages.py):
#              the issue's "steady rate whatever the prefix size", as ratios on each side
# CPU: utime+stime of every server process (the single server; the six nodes, and etcd counted
# apart) from /proc/PID/stat before and after each workload, divided by the requests it did:
# server CPU per request, a figure that does not depend on how the two cores are shared with the
# load tool (and with other work on the machine), unlike req/s.
# Prints one table (bench/cluster_summary.py) and writes it to OUT. Exits non-zero when a step
# or a request failed; a missed target is reported in the table, not as a failure. Every process
# it starts is stopped on exit (trap).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${CAIRN_BIN:-$root/build/bin/cairn}
if [ "${QUICK:-0}" = 1 ]; then DUR=${DUR:-2}; else DUR=${DUR:-5}; fi
SPREAD=${SPREAD:-1}
LIST=${LIST:-1}
WRK=${WRK:-1}
if [ "${QUICK:-0}" = 1 ]; then LIST_KEYS=${LIST_KEYS:-5000}; else LIST_KEYS=${LIST_KEYS:-50000}; fi
OUT=${OUT:-$root/bench/cluster-results-$(date +%F).md}
work=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/cairn-cbench.XXXXXX")
res=$work/results
cdir=$work/cluster
mkdir -p "$res"
server="" cluster_up=0

cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    [ "$cluster_up" = 1 ] && CAIRN_CLUSTER_DIR=$cdir "$root/deploy/local-cluster.sh" stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

say() { printf '== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[ -x "$bin" ] || { echo "no cairn binary at $bin (build first: scripts/setup.sh)" >&2; exit 1; }
if [ "$WRK" = 1 ] && ! command -v wrk >/dev/null 2>&1; then
    say "installing wrk (Debian package)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk >/dev/null
fi
WT=$(nproc)

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
machine="$(date -u '+%F %H:%M UTC'), $(nproc) cores ($cpu), kernel $(uname -r), ${DUR}s per workload, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
say "$machine"
export CAIRN_ACCESS_KEY=benchaccess01 CAIRN_SECRET_KEY=bench-secret-0123456789abcdefgh

# Clock ticks of utime+stime summed over the given pids (a vanished pid counts 0).
cpu_ticks() {
    local p t=0 f
    for p in "$@"; do
        f=$(sed -E 's/^[0-9]+ \(.*\) //' "/proc/$p/stat" 2>/dev/null) || continue
        # after the comm: state is field 1, utime field 12, stime field 13
        t=$((t + $(awk '{print $12 + $13}' <<<"$f")))
    done
    echo "$t"
}

# run NAME ENDPOINT... -- BENCH-ARGS: one `cairn bench` per endpoint at once (concurrency split),
# with the CPU of SERVERS and ETCDS around it. Writes NAME.json (one per endpoint: NAME.K.json)
# and NAME.cpu.
run() {
    local name=$1 eps=() args=() c=0 i=0 pids=() a0 e0 a1 e1
    shift
    while [ "$1" != -- ]; do eps+=("$1"); shift; done
    shift
    args=("$@")
    for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[i]}" = --concurrency ] && c=${args[i + 1]}; done
    local each=$(((c + ${#eps[@]} - 1) / ${#eps[@]}))
    # shellcheck disable=SC2086 # pid lists
    a0=$(cpu_ticks $SERVERS) e0=$(cpu_ticks $ETCDS)
    for ((i = 0; i < ${#eps[@]}; i++)); do
        # each process its own key names (--prefix P -> P0, P1, ...): no two write the same key
        local mine=("${args[@]}") k
        for ((k = 0; k < ${#mine[@]}; k++)); do [ "${mine[k]}" = --prefix ] && mine[k + 1]+=$i; done
        "$bin" bench --endpoint "${eps[i]}" --quiet --json "${mine[@]}" --concurrency "$each" \
            >"$res/$name.$i.json" &
        pids+=($!)
    done
    local rc=0
    for q in "${pids[@]}"; do wait "$q" || rc=1; done
    # shellcheck disable=SC2086
    a1=$(cpu_ticks $SERVERS) e1=$(cpu_ticks $ETCDS)
    echo "$((a1 - a0)) $((e1 - e0)) $(getconf CLK_TCK) ${#eps[@]} $each" >"$res/$name.cpu"
    [ "$rc" = 0 ] || { say "$name: a request failed (see $res/$name.*.json)"; exit 1; }
}

# One workload (NAME and bench arguments) on each side in turn, back to back, so that the single
# node and the cluster see the same load on the machine; the side not measured sits idle (an idle
# cluster costs under 0.01 core).
workload() {
    local w=$1 what=$2
    shift 2
    local put=0
    [[ " $* " == *" --op put "* ]] && put=1
    pfx() { if [ "$put" = 1 ]; then echo "--prefix $1"; fi; } # PUTs: fresh keys per run
    say "$what, ${DUR}s: single, cluster via n1${spread_eps:+, spread}"
    # shellcheck disable=SC2046 # pfx's words
    SERVERS=$server ETCDS="" run "single-$w" "$single_ep" -- "$@" $(pfx single) --duration "$DUR"
    # shellcheck disable=SC2046
    SERVERS=$cluster_pids ETCDS=$etcd_pids run "cluster-$w" "${eps[0]}" -- "$@" $(pfx cluster) --duration "$DUR"
    if [ -n "$spread_eps" ]; then
        # shellcheck disable=SC2046,SC2086 # pfx's words, the six endpoints
        SERVERS=$cluster_pids ETCDS=$etcd_pids run "spread-$w" $spread_eps -- "$@" $(pfx spread) --duration "$DUR"
    fi
}

# wrk_pair NAME CONCURRENCY METHOD ORDER BODY-BYTES BUCKET PREFIX KEYS: the outside tool's check of
# workload NAME, right after cairn bench's runs of it: wrk over presigned targets (keys
# PREFIX-%08u; a PUT's PREFIX gets the side's name, so each side writes fresh keys), on the single
# node and then through n1. Writes wrk-SIDE-NAME.json; a request that failed fails the run.
wrk_pair() {
    [ "$WRK" = 1 ] || return 0
    local name=$1 c=$2 method=$3 order=$4 body=$5 bucket=$6 prefix=$7 keys=$8 side ep p
    say "$name by wrk (presigned URLs), ${DUR}s: single, cluster via n1"
    for side in single cluster; do
        if [ "$side" = single ]; then ep=$single_ep; else ep=${eps[0]}; fi
        p=$prefix
        [ "$method" = PUT ] && p=$prefix$side
        python3 "$root/bench/presign.py" "$ep" "$method" "$bucket" "$p" "$keys" >"$work/wrk-$side-$name.txt"
        WRK_PATHS=$work/wrk-$side-$name.txt WRK_METHOD=$method WRK_ORDER=$order WRK_BODY=$body \
            WRK_THREADS=$WT wrk -t"$WT" -c"$c" -d"${DUR}s" --latency -s "$root/bench/wrk_s3.lua" \
            "$ep" >"$work/$side-$name.wrk"
        sed -n 's/^WRKJSON //p' "$work/$side-$name.wrk" >"$res/wrk-$side-$name.json"
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(1 if d["requests"] == 0 or sum(d["errors"].values()) else 0)' "$res/wrk-$side-$name.json" ||
            { cat "$work/$side-$name.wrk" >&2; say "$side-$name: wrk saw failed requests"; exit 1; }
    done
}
preload() { # preload ENDPOINT: the GET objects
    "$bin" bench --endpoint "$1" --quiet --json --op put --bucket get4k --size 4K --keys 100 --count 100 --concurrency 16 >/dev/null
    "$bin" bench --endpoint "$1" --quiet --json --op put --bucket get1m --size 1M --keys 64 --count 64 --concurrency 16 >/dev/null
}

# ---- the single-node default and the loopback cluster, both started first ----
sport=$(free_port)
"$bin" server --data "$work/single" --listen "127.0.0.1:$sport" >>"$work/single.log" 2>&1 &
server=$!
single_ep=http://127.0.0.1:$sport
for _ in $(seq 100); do curl -sf "$single_ep/health/ready" >/dev/null && break; sleep 0.1; done
curl -sf "$single_ep/health/ready" >/dev/null || { cat "$work/single.log" >&2; exit 1; }
say "single: cairn server pid $server on 127.0.0.1:$sport"

# A base port whose ports BASE+1..BASE+46 (those local-cluster.sh uses) are free.
base=""
for _ in $(seq 20); do
    b=$((20000 + RANDOM % 12000)) # below the ephemeral range (32768-): no client socket there
    busy=0
    for o in 1 2 3 11 12 13 21 22 23 24 25 26 41 42 43 44 45 46; do
        port_busy $((b + o)) && busy=1 && break
    done
    [ "$busy" = 0 ] && base=$b && break
done
[ -n "$base" ] || { say "no free base port found"; exit 1; }
cluster_up=1
say "cluster: deploy/local-cluster.sh start (base port $base)"
CAIRN_CLUSTER_DIR=$cdir CAIRN_CLUSTER_PORT=$base CAIRN_BIN=$bin "$root/deploy/local-cluster.sh" start \
    >"$work/cluster-start.txt" || { cat "$work/cluster-start.txt" >&2; exit 1; }
mapfile -t eps < <(awk '/^n[1-6] / {print $3}' "$work/cluster-start.txt")
[ "${#eps[@]}" = 6 ] || { cat "$work/cluster-start.txt" >&2; exit 1; }
cluster_pids=$(awk '/^n[1-6] / {print $4}' "$work/cluster-start.txt" | tr '\n' ' ')
etcd_pids=$(cat "$cdir"/etcd/m*.pid | tr '\n' ' ')
spread_eps=""
[ "$SPREAD" = 1 ] && spread_eps="${eps[*]}"

preload "$single_ep"
preload "${eps[0]}"
workload get4k "4 KiB GET c=64" --op get --bucket get4k --size 4K --keys 100 --no-preload --concurrency 64
wrk_pair get4k 64 GET random 0 get4k obj 100
workload get1m "1 MiB GET c=16" --op get --bucket get1m --size 1M --keys 64 --no-preload --concurrency 16
wrk_pair get1m 16 GET random 0 get1m obj 64
workload put4k "4 KiB PUT c=64" --op put --bucket put4k --size 4K --keys 100000 --concurrency 64
wrk_pair put4k 64 PUT seq 4096 put4k wrk $((DUR * 30000))
workload put1m "1 MiB PUT c=16" --op put --bucket put1m --size 1M --keys 1000 --concurrency 16
wrk_pair put1m 16 PUT seq 1048576 put1m wrk $((DUR * 1500))

# Listing at scale: a bucket with LIST_KEYS keys under one prefix and 1,000 under another, on each
# side. The first page of each prefix (c=4; `run` makes --prefix s / b into s0 / b0, the keys'
# prefix), then one client paging through the whole big prefix (bench/list_pages.py, which also
# checks that every key is listed once, in order).
if [ "$LIST" = 1 ]; then
    say "listing: $LIST_KEYS keys under one prefix and 1,000 under another, on each side"
    for ep in "$single_ep" "${eps[0]}"; do
        for p in "s0 1000" "b0 $LIST_KEYS"; do
            read -r pfx_ n_ <<<"$p"
            "$bin" bench --endpoint "$ep" --quiet --json --op put --bucket lst --size 1K \
                --prefix "$pfx_" --keys "$n_" --count "$n_" --concurrency 32 >/dev/null
        done
    done
    for w in "listsmall s" "listbig b"; do
        read -r name_ pfx_ <<<"$w"
        say "first page of prefix ${pfx_}0-, ${DUR}s: single, cluster via n1"
        SERVERS=$server ETCDS="" run "single-$name_" "$single_ep" -- --op list --bucket lst \
            --prefix "$pfx_" --no-preload --concurrency 4 --duration "$DUR"
        SERVERS=$cluster_pids ETCDS=$etcd_pids run "cluster-$name_" "${eps[0]}" -- --op list \
            --bucket lst --prefix "$pfx_" --no-preload --concurrency 4 --duration "$DUR"
    done
    say "paging through all $LIST_KEYS keys of prefix b0-, 1,000 a page: single, cluster via n1"
    python3 "$root/bench/list_pages.py" "$single_ep" lst b0- "$LIST_KEYS" >"$res/single-pages.json"
    python3 "$root/bench/list_pages.py" "${eps[0]}" lst b0- "$LIST_KEYS" >"$res/cluster-pages.json"
fi

kill "$server"
wait "$server" 2>/dev/null || true
server=""
CAIRN_CLUSTER_DIR=$cdir "$root/deploy/local-cluster.sh" stop >/dev/null 2>&1
cluster_up=0

echo
python3 "$root/bench/cluster_summary.py" "$res" "$OUT" "$machine"
echo "written to $OUT" >&2
