#!/usr/bin/env bash
# test_cluster_stale_retry: the stale retry on real nodes (docs/replication.md, "The stale
# retry"). Three clustered nodes n1..n3 in az1..az3 (every partition on all three) and one etcd
# member; n1 reaches etcd through a TCP relay of this test's (relay.py below), so stopping the
# relay (SIGSTOP) makes n1's layout watch lag while n2 and n3 follow etcd. A layout change
# that moves no partition (n4 added and removed in one staged change: epoch 2, the same homes) is
# applied while the relay is stopped: n2 and n3 adopt epoch 2 and their fences refuse n1's calls
# of epoch 1 (CM_ERR_STALE), so a PUT and a GET through n1 reach only n1's own replica, no
# quorum. Their ops must wait for n1's newer layout instead of answering 503: the relay goes on
# a second later, n1's follower adopts epoch 2, the ops run once more and both answer 200 (the
# GET byte-exact). n1's /admin/status `stale_retries` (and its metric) counts the retries, n2's
# and n3's stay 0. Without the retry both ops answer 503 at once.
# Requests go through s3raw.py, which never retries (an SDK would retry a 503 and hide it).
# About 6-10 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and clustered servers"
. "$H_DIR/lib_etcd.sh"
cl_cluster stale 3 n1 n2 n3

# relay.py PORT-FILE HOST:PORT: a TCP relay on a free port (written to PORT-FILE) to HOST:PORT,
# a thread per direction and connection; SIGSTOP holds every byte, SIGCONT lets them go on.
cat >"$H_WORK/relay.py" <<'PY'
import os, socket, sys, threading
host, port = sys.argv[2].rsplit(":", 1)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(64)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c, _ = ls.accept()
    try:
        u = socket.create_connection((host, int(port)))
    except OSError:
        c.close()
        continue
    for a, b in ((c, u), (u, c)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
PY
etcd_hostport=${ETCD_URLS[0]#http://}
"$H_PY" "$H_WORK/relay.py" "$H_WORK/relay.port" "$etcd_hostport" >"$H_WORK/relay.log" 2>&1 &
RELAY=$!
h_track "$RELAY"
for ((i = 0; i < 100; i++)); do [ -s "$H_WORK/relay.port" ] && break; sleep 0.05; done
[ -s "$H_WORK/relay.port" ] || { h_bad "the etcd relay listens" "$(cat "$H_WORK/relay.log")"; h_finish; }
ETCD_ENDPOINTS=http://127.0.0.1:$(cat "$H_WORK/relay.port") cl_node_start n1 stale || h_finish
for n in n2 n3; do cl_node_start "$n" stale || h_finish; done
relay_go() { kill -CONT "$RELAY" 2>/dev/null; }

# s3 NODE METHOD PATH [BODY-FILE]: "STATUS SECONDS" of one request through NODE (no retry).
s3() {
    CAIRN_ENDPOINT=http://127.0.0.1:${PORT[$1]} H_DIR=$H_DIR "$H_PY" - "$2" "$3" "${4:-}" <<'PY'
import os, sys, time
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
body = open(sys.argv[3], "rb").read() if sys.argv[3] else b""
t0 = time.monotonic()
st, _, got = s3raw.request(sys.argv[1], sys.argv[2], body=body)
if sys.argv[1] == "GET" and st == 200 and os.environ.get("WANT"):
    st = st if got == open(os.environ["WANT"], "rb").read() else 299  # 299: a wrong body
print(st, "%.2f" % (time.monotonic() - t0))
PY
}
# rep NODE KEY: the replication counter KEY of NODE's /admin/status.
rep() {
    CAIRN_ENDPOINT=http://127.0.0.1:${PORT[$1]} H_DIR=$H_DIR "$H_PY" - "$2" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
st, _, body = s3raw.request("GET", "/admin/status")
print(json.loads(body).get("replication", {}).get(sys.argv[1], "?"))
PY
}
epochs() { echo "$(rep n1 epoch) $(rep n2 epoch) $(rep n3 epoch)"; }
others_on_2() { [ "$(rep n2 epoch) $(rep n3 epoch)" = "2 2" ]; }

head -c 300000 /dev/urandom >"$H_WORK/body"
h_eq "create bucket through n1" "200" "$(s3 n1 PUT /stale | cut -d' ' -f1)"
h_eq "PUT old through n1" "200" "$(s3 n1 PUT /stale/old "$H_WORK/body" | cut -d' ' -f1)"
h_eq "every node on layout epoch 1" "1 1 1" "$(epochs)"

# epoch 2 with the same homes: n4 added and removed in one staged change
h_run "stage: layout add n4" "$CAIRN_BIN" admin layout add n4 --addr "127.0.0.1:$(h_free_port)" \
    --az az1 --drives 3 "${E[@]}" || h_finish
h_run "stage: layout remove n4 (nothing moves)" "$CAIRN_BIN" admin layout remove n4 "${E[@]}" ||
    h_finish
kill -STOP "$RELAY"
h_run "layout apply (epoch 2) while n1's etcd relay is stopped" \
    "$CAIRN_BIN" admin layout apply --yes --objects 100 "${E[@]}" || h_finish
h_until_ok "n2 and n3 adopted layout epoch 2" 10 others_on_2
h_eq "n1 still serves epoch 1" 1 "$(rep n1 epoch)"

# both ops start on epoch 1, are refused by n2 and n3, and wait; the relay goes on after 1 s
s3 n1 PUT /stale/new "$H_WORK/body" >"$H_WORK/put.out" &
P1=$!
WANT=$H_WORK/body s3 n1 GET /stale/old >"$H_WORK/get.out" &
P2=$!
sleep 1
h_eq "the ops wait for the newer layout (no answer after 1 s)" "" \
    "$(cat "$H_WORK/put.out" "$H_WORK/get.out")"
relay_go
wait "$P1" "$P2"
echo "   PUT: $(cat "$H_WORK/put.out") s, GET: $(cat "$H_WORK/get.out") s (status, seconds)"
h_eq "PUT through n1 succeeded after the stale retry" 200 "$(cut -d' ' -f1 "$H_WORK/put.out")"
h_eq "GET through n1 succeeded after the stale retry, byte-exact" 200 \
    "$(cut -d' ' -f1 "$H_WORK/get.out")"
h_eq "every node on layout epoch 2" "2 2 2" "$(epochs)"
# at least the two ops' retries (a maintenance op of n1's in the window may add its own)
retries=$(rep n1 stale_retries)
[ "$retries" -ge 2 ] 2>/dev/null && h_ok "n1 counted the ops' retries (stale_retries $retries)" ||
    h_bad "n1 counted the ops' retries" "stale_retries $retries"
h_eq "n2 and n3 retried nothing" "0 0" "$(rep n2 stale_retries) $(rep n3 stale_retries)"
curl -s -o "$H_WORK/metrics.txt" "http://127.0.0.1:${PORT[n1]}/metrics"
h_eq "n1's metric cairn_stale_retries_total says as much" "cairn_stale_retries_total $retries" \
    "$(grep '^cairn_stale_retries_total ' "$H_WORK/metrics.txt")"
h_eq "GET new through n3, byte-exact" 200 "$(WANT=$H_WORK/body s3 n3 GET /stale/new | cut -d' ' -f1)"

for n in n1 n2 n3; do cl_node_stop "$n"; done
grep -lE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" "$H_WORK"/n*.log >/dev/null 2>&1 &&
    h_bad "no node logged a sanitizer report" || h_ok "no node logged a sanitizer report"
etcd_stop
kill "$RELAY" && wait "$RELAY" 2>/dev/null
h_finish
