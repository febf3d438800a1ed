#!/usr/bin/env bash
# bench/cluster_put_ab.sh - CPU per 4 KiB PUT through n1 of a fresh loopback cluster, for A/Bs of
# two binaries (docs/performance.md, "Seventh session: 4 KiB PUT").
#
#   bench/cluster_put_ab.sh BIN LABEL [COUNT]      one run: prints one line
#   for i in 1 2 3; do bench/cluster_put_ab.sh old/cairn old; bench/cluster_put_ab.sh new/cairn new; done
#
# Each run starts deploy/local-cluster.sh in a temp dir on free ports (a fresh data dir: the
# repair and anti-entropy passes after a start decode every record, so a reused dir adds its size
# to the figures), PUTs 500 objects of 4 KiB to warm up, then COUNT (default 4000) PUTs of 4 KiB at
# c=64 through n1 with `cairn bench --count`, and prints, divided by COUNT: utime+stime of the six
# nodes and of n1 (/proc/PID/stat), voluntary + involuntary context switches (/proc/PID/task/*/
# status), and fdatasync calls of the six nodes (`perf stat -e syscalls:sys_enter_fdatasync`,
# when perf is there). THREADS=1 also prints CPU and switches per PUT by thread role on every node
# (roles named from a `gdb` backtrace of each thread after the run; needs gdb and ptrace).
# Other environment variables reach the nodes (CAIRN_<SECTION>_<KEY> sets a key). Every process
# it starts is stopped on exit. CPU per request, not req/s: on a shared machine the rate follows
# the load, the CPU per request much less (alternate the binaries within minutes all the same).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: cluster_put_ab.sh BIN LABEL [COUNT]}
label=${2:-run}
count=${3:-4000}
work=$(mktemp -d "${BENCH_TMP:-${TMPDIR:-/tmp}}/cairn-putab.XXXXXX")
cdir=$work/cluster
pstat=""
export CAIRN_ACCESS_KEY=${CAIRN_ACCESS_KEY:-benchaccess01}
export CAIRN_SECRET_KEY=${CAIRN_SECRET_KEY:-bench-secret-0123456789abcdefgh}

cleanup() {
    [ -n "$pstat" ] && kill "$pstat" 2>/dev/null
    CAIRN_CLUSTER_DIR=$cdir "$root/deploy/local-cluster.sh" stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
base=""
for _ in $(seq 20); do # a base whose ports local-cluster.sh uses are free (as bench/cluster.sh)
    b=$((20000 + RANDOM % 12000)) busy=0
    for o in 1 2 3 11 12 13 21 22 23 24 25 26 41 42 43 44 45 46; do
        port_busy $((b + o)) && busy=1 && break
    done
    [ "$busy" = 0 ] && base=$b && break
done
[ -n "$base" ] || { echo "no free base port found" >&2; exit 1; }
CAIRN_CLUSTER_DIR=$cdir CAIRN_CLUSTER_PORT=$base CAIRN_BIN=$bin "$root/deploy/local-cluster.sh" start \
    >"$work/start.txt" || { cat "$work/start.txt" >&2; exit 1; }
ep=$(awk '/^n1 / {print $3}' "$work/start.txt")
mapfile -t pids < <(awk '/^n[1-6] / {print $4}' "$work/start.txt")
[ "${#pids[@]}" = 6 ] || { cat "$work/start.txt" >&2; exit 1; }

ticks() { # utime+stime of the given pids, in clock ticks
    local t=0 p
    for p in "$@"; do t=$((t + $(sed -E 's/^[0-9]+ \(.*\) //' "/proc/$p/stat" | awk '{print $12 + $13}'))); done
    echo "$t"
}
switches() { # voluntary + involuntary context switches of every thread of the given pids
    local t=0 p
    for p in "$@"; do t=$((t + $(cat /proc/"$p"/task/*/status 2>/dev/null | awk '/ctxt_switches/ {s += $2} END {print s + 0}'))); done
    echo "$t"
}
per_thread() { # per_thread PID FILE: "tid switches ticks" per thread
    local t
    for t in /proc/"$1"/task/*; do
        echo "${t##*/} $(awk '/ctxt_switches/ {s += $2} END {print s + 0}' "$t/status") $(sed -E 's/^[0-9]+ \(.*\) //' "$t/stat" | awk '{print $12 + $13}')"
    done >"$2"
}

"$bin" bench --endpoint "$ep" --quiet --json --op put --bucket warm4k --size 4K --keys 100000 \
    --count 500 --concurrency 64 >/dev/null || { echo "warm-up failed" >&2; exit 1; }
sleep 1
if command -v perf >/dev/null; then
    perf stat -e syscalls:sys_enter_fdatasync -x, -o "$work/pstat" -p "$(IFS=,; echo "${pids[*]}")" 2>/dev/null &
    pstat=$!
    sleep 0.3
fi
if [ "${THREADS:-0}" = 1 ]; then for i in 0 1 2 3 4 5; do per_thread "${pids[i]}" "$work/t0.$i"; done; fi
a0=$(ticks "${pids[@]}") n0=$(ticks "${pids[0]}") c0=$(switches "${pids[@]}") d0=$(switches "${pids[0]}")
"$bin" bench --endpoint "$ep" --quiet --json --op put --bucket put4k --size 4K --keys 1000000 \
    --count "$count" --concurrency 64 --prefix ab >"$work/r.json" || { echo "a PUT failed" >&2; exit 1; }
a1=$(ticks "${pids[@]}") n1=$(ticks "${pids[0]}") c1=$(switches "${pids[@]}") d1=$(switches "${pids[0]}")
if [ -n "$pstat" ]; then kill -INT "$pstat"; wait "$pstat" 2>/dev/null; pstat=""; fi
if [ "${THREADS:-0}" = 1 ]; then
    for i in 0 1 2 3 4 5; do
        per_thread "${pids[i]}" "$work/t1.$i"
        gdb -p "${pids[i]}" -batch -ex "thread apply all bt 12" >"$work/bt.$i" 2>/dev/null
    done
fi
python3 - "$work" "$label" "$count" "$(getconf CLK_TCK)" "$a1" "$a0" "$n1" "$n0" "$c1" "$c0" "$d1" "$d0" "${THREADS:-0}" <<'PY'
import collections, json, os, re, sys
work, label = sys.argv[1], sys.argv[2]
count, hz = int(sys.argv[3]), int(sys.argv[4])
a1, a0, n1, n0, c1, c0, d1, d0, threads = map(int, sys.argv[5:14])
us = lambda ticks: ticks * 1e6 / hz / count
syncs = "-"
if os.path.exists(work + "/pstat"):
    for line in open(work + "/pstat"):
        f = line.split(",")
        if len(f) > 2 and f[0].isdigit():
            syncs = "%.2f" % (int(f[0]) / count)
rate = json.load(open(work + "/r.json"))["total"]["ops_per_s"]
print("%-12s cluster CPU/PUT %4.0f us (n1 %4.0f)  switches/PUT %4.1f (n1 %3.1f)  fdatasync/PUT %s"
      "  %6.0f op/s  load %s" % (label, us(a1 - a0), us(n1 - n0), (c1 - c0) / count,
                                  (d1 - d0) / count, syncs, rate, open("/proc/loadavg").read().split()[0]))
if not threads:
    sys.exit(0)
skip = {"epoll_wait", "event_base_loop", "start_thread", "clone3", "clone", "syscall", "sem_wait",
        "pthread_cond_wait", "sem_clockwait", "do_futex_wait", "futex_wait", "poll", "epoll_dispatch",
        "nanosleep", "clock_nanosleep"}
for i in range(6):
    def load(name):
        return {l.split()[0]: tuple(map(int, l.split()[1:])) for l in open("%s/%s.%d" % (work, name, i))}
    t0, t1 = load("t0"), load("t1")
    role = {}
    for block in re.split(r"\nThread ", open("%s/bt.%d" % (work, i)).read()):
        m = re.search(r"LWP (\d+)", block)
        if m:
            names = [f for f in re.findall(r" in (\w+) \(", block) if not f.startswith("_") and f not in skip]
            role[m.group(1)] = "/".join(names[:2]) or "?"
    agg = collections.defaultdict(lambda: [0, 0, 0])
    for tid, (cs, ticks) in t1.items():
        cs0, ticks0 = t0.get(tid, (0, 0))
        r = agg[role.get(tid, "?")]
        r[0] += cs - cs0; r[1] += ticks - ticks0; r[2] += 1
    print("  n%d" % (i + 1))
    for name, (cs, ticks, n) in sorted(agg.items(), key=lambda x: -x[1][1]):
        if cs > count * 0.05 or ticks > 0:
            print("    %-40s x%-3d CPU/PUT %5.1f us  switches/PUT %4.2f" % (name, n, us(ticks), cs / count))
PY
