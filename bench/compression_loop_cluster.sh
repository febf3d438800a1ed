#!/usr/bin/env bash
# Compression and the event loop on a cluster node (docs/compression.md, "Cluster nodes"): for each
# cairn binary given, deploy/local-cluster.sh on free ports with every node at one event loop
# (`threads = 1`) and zstd level LEVEL (default 12: a frame of text costs tens to hundreds of ms).
# Through n1: a text PUT alone (wall time; CPU of n1 and of all six nodes, utime + stime from
# /proc/PID/stat over the PUT, per MiB of body), then the same PUT while a client GETs a 1 KB
# object from n1 over and over, one at a time: the share of that PUT's wall time spent in GETs
# slower than 100 ms (how long n1's loop was held), their p50, p99 and max. Both PUTs read back
# byte-exact. Medians over REPS; binaries alternate between reps. Not part of .ci/run.
#   bench/compression_loop_cluster.sh SIZE_MIB REPS BIN [BIN...]   (e.g. 16 3 old/cairn new/cairn)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
size_mib=$1
reps=$2
shift 2
work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-zcloop.XXXXXX")
up=0
cleanup() {
    [ "$up" = 0 ] ||
        CAIRN_CLUSTER_DIR=$work/cluster "$root/deploy/local-cluster.sh" stop >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' INT TERM
export CAIRN_ACCESS_KEY=zcbenchaccess CAIRN_SECRET_KEY=zcbenchsecret0123456789
export CAIRN_CLUSTER_CONF_EXTRA
CAIRN_CLUSTER_CONF_EXTRA=$(printf '[server]\nthreads = 1\n[storage]\ncompression_level = %d' \
    "${LEVEL:-12}")

# The text body of bench/compression.sh (bench/textbody.py).
python3 "$root/bench/textbody.py" "$work/text" "$size_mib"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_base() { # a base port whose ports (those local-cluster.sh uses) are all free
    local b o busy
    for _ in $(seq 20); do
        b=$((20000 + RANDOM % 12000)) busy=0
        for o in 1 2 3 11 12 13 21 22 23 24 25 26 41 42 43 44 45 46; do
            port_busy $((b + o)) && busy=1 && break
        done
        [ "$busy" = 0 ] && echo "$b" && return 0
    done
    return 1
}

run_one() { # BIN INDEX: appends one line of figures to $work/bINDEX
    local bin=$1 i=$2 base
    base=$(free_base) || { echo "no free base port" >&2; exit 1; }
    rm -rf "$work/cluster"
    up=1
    CAIRN_CLUSTER_DIR=$work/cluster CAIRN_CLUSTER_PORT=$base CAIRN_BIN=$bin \
        "$root/deploy/local-cluster.sh" start >"$work/start.txt"
    python3 - "$root/tests/integration" "$work/start.txt" "$size_mib" "$work/text" \
        >>"$work/b$i" <<'PY'
import json, sys, threading, time
sys.path.insert(0, sys.argv[1])
import os
rows = [l.split() for l in open(sys.argv[2]) if l[:1] == "n" and len(l.split()) >= 4]
os.environ["CAIRN_ENDPOINT"] = rows[0][2]
import s3raw
pids = [int(r[3]) for r in rows]
hz = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / hz
mib = int(sys.argv[3])
text = open(sys.argv[4], "rb").read()
assert s3raw.request("PUT", "/zcloop")[0] == 200
assert s3raw.request("PUT", "/zcloop/small", body=b"s" * 1000)[0] == 200
c0 = [cpu(p) for p in pids]
t0 = time.monotonic()
assert s3raw.request("PUT", "/zcloop/alone", body=text)[0] == 200
wall = time.monotonic() - t0
c1 = [cpu(p) for p in pids]
lat, done = [], threading.Event()
def getter():  # 1 KB GETs one after another until the PUT has ended
    while not done.is_set():
        t = time.monotonic()
        st, _, b = s3raw.request("GET", "/zcloop/small")
        assert st == 200 and len(b) == 1000
        if not done.is_set():
            lat.append((t, (time.monotonic() - t) * 1000))
g = threading.Thread(target=getter)
g.start()
time.sleep(0.2)
t0 = time.monotonic()
st = s3raw.request("PUT", "/zcloop/busy", body=text)[0]
busy = time.monotonic() - t0
done.set()
g.join()
lat = [ms for t, ms in lat if t >= t0]  # the GETs that started during the PUT
assert st == 200
for k in ("alone", "busy"):
    assert s3raw.request("GET", "/zcloop/" + k)[2] == text, k
print(json.dumps({"wall": wall, "n1": (c1[0] - c0[0]) / mib, "all": (sum(c1) - sum(c0)) / mib,
                  "stalled": sum(x for x in lat if x > 100) / 1000 / busy, "lat": lat}))
PY
    CAIRN_CLUSTER_DIR=$work/cluster "$root/deploy/local-cluster.sh" stop >/dev/null 2>&1
    up=0
}

for ((r = 0; r < reps; r++)); do
    i=0
    for bin in "$@"; do
        run_one "$bin" "$i"
        i=$((i + 1))
    done
done
python3 - "$size_mib" "${LEVEL:-12}" "$reps" "$work" "$@" <<'PY'
import json, statistics, sys
mib, level, reps, work, bins = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
print("text PUT of %s MiB through n1 of the loopback cluster, level %s, one loop per node, %s reps"
      " (medians); GETs of 1 KB from n1 during a second PUT" % (mib, level, reps))
cols = ("wall s", "n1 CPU/MiB", "all CPU/MiB", "stalled", "GET p50", "GET p99", "GET max", "GETs")
print("%-36s" % "binary" + "".join("%12s" % c for c in cols))
for i, b in enumerate(bins):
    runs = [json.loads(l) for l in open("%s/b%d" % (work, i))]
    def q(r, f):
        lat = sorted(r["lat"]) or [0]
        return lat[min(len(lat) - 1, int(f * len(lat)))]
    med = lambda fn: statistics.median(fn(r) for r in runs)
    row = (med(lambda r: r["wall"]), med(lambda r: r["n1"]), med(lambda r: r["all"]),
           100 * med(lambda r: r["stalled"]), med(lambda r: q(r, 0.5)), med(lambda r: q(r, 0.99)),
           med(lambda r: q(r, 1)), med(lambda r: len(r["lat"])))
    print("%-36s%11.2fs%11.3fs%11.3fs%11.0f%%%10.1fms%10.1fms%10.1fms%12d" % ((b,) + row))
    print("  samples (wall, n1 CPU/MiB, stalled): " + "; ".join(
        "%.2f %.3f %.0f%%" % (r["wall"], r["n1"], 100 * r["stalled"]) for r in runs))
PY
