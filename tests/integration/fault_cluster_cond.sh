#!/usr/bin/env bash
# fault_cluster_cond: conditional writes stay atomic across gateways (issue 9, 2.7). The local
# cluster (deploy/local-cluster.sh: 3 etcd members, 6 nodes) in a temp dir on free ports; 16
# clients (python threads, SigV4 from s3raw.py) race through the 6 nodes:
#   - PUT If-None-Match: * of one new key, for 30 keys: exactly one 200 per key, the others 412
#     PreconditionFailed (or 409 ConditionalRequestConflict, which S3 may answer), and the object
#     read back through another node is the winner's body;
#   - If-Match rounds: every client read the key's ETag, then PUTs If-Match with it: exactly one
#     200 per round, the others 412 (10 rounds);
#   - DELETE If-Match with the current ETag from 16 clients, 5 keys: exactly one 204 per key (the
#     others find no object: 404 NoSuchKey, or 412), and the key is gone;
#   - CompleteMultipartUpload If-None-Match: * of one key from 16 uploads (one per client, on its
#     node), 3 keys: exactly one 200, the object the winner's part.
# Then a conditional PUT against a plain one through the cluster (the latency table of
# docs/replication.md); n1 killed: its partitions get new leaders within the lease TTL; with etcd
# stopped: conditional writes answer 503, plain ones work.
# About 40 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need curl python3
[ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }

. "$(dirname "$0")/lib_cluster.sh"
lc_setup itcond
READY_TIMEOUT=40
trap 'lc_track; "$LC" stop >/dev/null 2>&1; h_cleanup' EXIT

h_run "local-cluster.sh start" "$LC" start || h_finish
lc_track
export CAIRN_ENDPOINT="http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 21))"
h_run "create bucket race through n1" "$H_PY" "$H_DIR/s3raw.py" mb race

RACE=$(
    cat <<'EOF'
import os, sys, threading, time, hashlib
sys.path.insert(0, os.environ["H_DIR"])
import s3raw, socket

BASE = int(os.environ["CAIRN_CLUSTER_PORT"])
PORTS = [BASE + 21 + i for i in range(6)]
mode = sys.argv[1]


def call(port, method, key, body=b"", headers=None, path=None, query=None):
    path = path or "/race/" + key
    query = query or {}
    h = dict(headers or {})
    h["Content-Length"] = str(len(body))
    signed = s3raw.sign(method, path, query, h, hashlib.sha256(body).hexdigest(),
                        host="127.0.0.1:%d" % port)
    for attempt in range(3):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                s.sendall(s3raw.request_bytes(method, path, query, signed) + body)
                st, hd, b = s3raw.read_response(s, method)
                return st, {k.lower(): v for k, v in hd.items()}, b
        except OSError as e:
            err = e
    return 0, {}, str(err).encode()


def race(fn):
    out = [None] * 16
    go = threading.Barrier(16)

    def run(i):
        go.wait()
        out[i] = fn(i)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


bad = 0
losers = {}
if mode == "create":
    for k in range(30):
        key = "new-%d" % k
        res = race(lambda i: call(PORTS[i % 6], "PUT", key, b"client-%d" % i,
                                  {"If-None-Match": "*"}))
        codes = [r[0] for r in res]
        wins = [i for i, c in enumerate(codes) if c == 200]
        for c in codes:
            losers[c] = losers.get(c, 0) + 1
        ok_losers = all(c in (200, 412, 409) for c in codes)
        st, _, body = call(PORTS[(k + 3) % 6], "GET", key)
        if len(wins) != 1 or not ok_losers or st != 200 or body != b"client-%d" % wins[0]:
            bad += 1
            print("key %s: codes %s, read back %d %r" % (key, codes, st, body[:40]))
    print("create: 30 keys x 16 clients, answers %s" % sorted(losers.items()))
elif mode == "match":
    key = "cas"
    st, hd, _ = call(PORTS[0], "PUT", key, b"round-start")
    for rnd in range(10):
        res = race(lambda i: call(PORTS[i % 6], "HEAD", key))
        etags = set(r[1].get("etag") for r in res)
        if len(etags) != 1 or None in etags:
            bad += 1
            print("round %d: HEADs disagree: %s" % (rnd, etags))
            continue
        etag = etags.pop()
        res = race(lambda i: call(PORTS[(i + rnd) % 6], "PUT", key, b"r%d-c%d" % (rnd, i),
                                  {"If-Match": etag}))
        codes = [r[0] for r in res]
        wins = [i for i, c in enumerate(codes) if c == 200]
        st, _, body = call(PORTS[rnd % 6], "GET", key)
        if len(wins) != 1 or not all(c in (200, 412, 409) for c in codes) or \
                body != b"r%d-c%d" % (rnd, wins[0]):
            bad += 1
            print("round %d: codes %s, read back %r" % (rnd, codes, body[:40]))
    print("if-match: 10 rounds x 16 clients")
elif mode == "delete":
    for k in range(5):
        key = "del-%d" % k
        call(PORTS[0], "PUT", key, b"doomed")
        st, hd, _ = call(PORTS[1], "HEAD", key)
        etag = hd.get("etag")
        res = race(lambda i: call(PORTS[i % 6], "DELETE", key, b"", {"If-Match": etag}))
        codes = [r[0] for r in res]
        wins = codes.count(204)
        st, _, _ = call(PORTS[2], "GET", key)
        if wins != 1 or not all(c in (204, 412, 404, 409) for c in codes) or st != 404:
            bad += 1
            print("key %s: codes %s, then GET %d" % (key, codes, st))
    print("delete if-match: 5 keys x 16 clients")
elif mode == "multipart":
    # CompleteMultipartUpload If-None-Match: * of one key from 16 uploads, each on its own node
    import re
    for k in range(3):
        key = "mpu-%d" % k
        ups = []
        for i in range(16):
            port = PORTS[i % 6]
            st, _, b = call(port, "POST", key, query={"uploads": ""})
            up = re.search(rb"<UploadId>([^<]+)</UploadId>", b).group(1).decode()
            st, hd, _ = call(port, "PUT", key, b"part-of-%d" % i,
                             query={"partNumber": "1", "uploadId": up})
            xml = ("<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>%s</ETag>"
                   "</Part></CompleteMultipartUpload>" % hd.get("etag")).encode()
            ups.append((port, up, xml))
        res = race(lambda i: call(ups[i][0], "POST", key, ups[i][2], {"If-None-Match": "*"},
                                  query={"uploadId": ups[i][1]}))
        codes = [r[0] for r in res]
        wins = [i for i, c in enumerate(codes) if c == 200 and b"<Error>" not in res[i][2]]
        st, _, body = call(PORTS[(k + 1) % 6], "GET", key)
        if len(wins) != 1 or not all(c in (200, 412, 409) for c in codes) or \
                body != b"part-of-%d" % wins[0]:
            bad += 1
            print("key %s: codes %s, read back %r" % (key, codes, body[:40]))
    print("complete multipart if-none-match: 3 keys x 16 uploads")
elif mode == "latency":
    import statistics
    for label, hdr in (("plain", {}), ("conditional", {"If-None-Match": "*"})):
        ms = []
        for i in range(60):
            t0 = time.monotonic()
            st, _, _ = call(PORTS[i % 6], "PUT", "lat-%s-%d" % (label, i), b"x" * 1024, hdr)
            ms.append((time.monotonic() - t0) * 1000)
            bad += st != 200
        ms.sort()
        print("%s PUT 1 KiB through the 6 nodes: median %.1f ms, p90 %.1f ms, max %.1f ms" %
              (label, statistics.median(ms), ms[int(len(ms) * 0.9)], ms[-1]))
elif mode == "first":
    # the first conditional write of a partition elects its leader (etcd round trips)
    import statistics
    first, next_ = [], []
    for b in range(6):
        bucket = "first-%d-%d" % (b, os.getpid())
        st, _, _ = call(PORTS[b], "PUT", "", path="/" + bucket)
        bad += st != 200
        t0 = time.monotonic()
        st, hd, _ = call(PORTS[b], "PUT", "", b"f", {"If-None-Match": "*"}, path="/%s/k" % bucket)
        first.append((time.monotonic() - t0) * 1000)
        t0 = time.monotonic()  # the same key, so the same partition: its leader is known now
        st2, _, _ = call(PORTS[b], "PUT", "", b"g", {"If-Match": hd.get("etag", "-")},
                         path="/%s/k" % bucket)
        next_.append((time.monotonic() - t0) * 1000)
        bad += st != 200 or st2 != 200
    print("first conditional PUT of a new partition: median %.1f ms, max %.1f ms; "
          "a second one right after: median %.1f ms" %
          (statistics.median(first), max(first), statistics.median(next_)))
elif mode == "stats":
    import json
    led = fwd = 0
    for port in PORTS:
        st, _, body = call(port, "GET", "", path="/admin/status")
        cond = json.loads(body).get("cluster", {}).get("cond") or \
            json.loads(body).get("cond") or {}
        led += cond.get("led", 0)
        fwd += cond.get("forwarded", 0)
    want = int(sys.argv[2])
    print("conditional writes run by leaders: %d (sent %d), handed over between nodes: %d" %
          (led, want, fwd))
    bad = int(led != want or fwd == 0)
elif mode == "failover":
    # n1 was killed: the partitions it led answer 503 until its lease ends, then get a new leader
    t0 = time.monotonic()
    todo = {"fo-%d" % k for k in range(16)}
    codes = {}
    while todo and time.monotonic() - t0 < 30:
        for i, key in enumerate(sorted(todo)):
            st, _, _ = call(PORTS[1 + i % 5], "PUT", key, b"fo", {"If-None-Match": "*"})
            codes[st] = codes.get(st, 0) + 1
            if st in (200, 412):  # 412: an earlier try that answered 503 had won after all
                todo.discard(key)
        time.sleep(0.2)
    took = time.monotonic() - t0
    print("all 16 keys written %.1f s after n1 died; answers %s" % (took, sorted(codes.items())))
    bad = int(bool(todo) or codes.get(200, 0) == 0)
elif mode == "nodetcd":
    st1, _, _ = call(PORTS[2], "PUT", "after-etcd-plain", b"p")
    st2, _, b = call(PORTS[3], "PUT", "after-etcd-cond", b"c", {"If-None-Match": "*"})
    print("plain %d, conditional %d %s" % (st1, st2, b[:80]))
    # 16 at once through one node: each answers 503 within a bound (no queue behind etcd calls)
    def timed(i):
        t0 = time.monotonic()
        st, _, _ = call(PORTS[4], "PUT", "after-etcd-%d" % i, b"c", {"If-None-Match": "*"})
        return st, time.monotonic() - t0
    res = race(timed)
    slowest = max(r[1] for r in res)
    print("16 conditional PUTs at once: answers %s, slowest %.1f s" %
          (sorted(set(r[0] for r in res)), slowest))
    # bound: 16 writes on a node's gateway workers, each waiting at most 3 s for the etcd client
    # (1 s per call), some behind another: two rounds of 3 s plus the answers, well under 10 s
    bad = int(st1 != 200 or st2 != 503 or any(r[0] != 503 for r in res) or slowest > 10)
sys.exit(1 if bad else 0)
EOF
)
export H_DIR
race() { "$H_PY" -c "$RACE" "$@"; }

t0=$(date +%s)
h_run "If-None-Match: * from 16 clients through 6 nodes, 30 keys: exactly one 200 each" race create
echo "$H_OUT" | tail -3 | sed 's/^/   | /'
h_run "If-Match rounds from 16 clients: exactly one winner per round" race match
echo "$H_OUT" | tail -2 | sed 's/^/   | /'
h_run "DELETE If-Match from 16 clients: exactly one 204 per key" race delete
echo "$H_OUT" | tail -2 | sed 's/^/   | /'
h_run "CompleteMultipartUpload If-None-Match: * from 16 uploads: exactly one wins" race multipart
echo "$H_OUT" | tail -2 | sed 's/^/   | /'
echo "   races took $(($(date +%s) - t0)) s"
h_run "latency of a conditional PUT against a plain one" race latency
echo "$H_OUT" | sed 's/^/   | /'
h_run "latency of the first conditional PUT of a partition (leader election)" race first
echo "$H_OUT" | sed 's/^/   | /'
# 30 x 16 + 10 x 16 + 5 x 16 + 3 x 16 raced, 60 + 12 timed: each run once by its leader (840);
# each of the 48 Completes also claims its upload on the leader first, and each of the 45 that
# lose the If-None-Match race gives its claim back there (docs/multipart-cluster.md): 933
h_run "every conditional write ran once on a leader, most handed over by other nodes" race stats 933
echo "$H_OUT" | sed 's/^/   | /'

# A leader dies (SIGKILL: its lease is not revoked): its partitions are unavailable for
# conditional writes until the lease's TTL (10 s) ends, then another home takes over.
kill -KILL "$(cat "$CAIRN_CLUSTER_DIR/n1/pid")"
h_run "n1 killed: conditional writes through the other nodes recover within the lease TTL" \
    race failover
echo "$H_OUT" | sed 's/^/   | /'

# etcd gone: no leader can be had, so conditional writes answer 503; plain writes keep working.
for f in "$CAIRN_CLUSTER_DIR"/etcd/m*.pid; do kill -STOP "$(cat "$f")"; done
sleep 1.2 # past the leader cache (CMD_COND_CACHE_MS)
h_run "etcd stopped: conditional PUTs 503 within a bound, plain PUT 200" race nodetcd
echo "$H_OUT" | sed 's/^/   | /'
for f in "$CAIRN_CLUSTER_DIR"/etcd/m*.pid; do kill -CONT "$(cat "$f")"; done

h_run "local-cluster.sh stop" "$LC" stop
h_finish
