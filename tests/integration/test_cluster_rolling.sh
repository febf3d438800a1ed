#!/usr/bin/env bash
# test_cluster_rolling: a rolling restart of the loopback cluster under client load loses no
# request (issue 12, "Done when"; docs/upgrades.md). deploy/local-cluster.sh starts 3 etcd members
# and 6 nodes; rolling_load.py runs 6 boto3 workers (SDK retries on: standard mode, 10 attempts)
# spread over every node's endpoint: PUT, GET (bytes compared), HEAD, LIST, DELETE and multipart
# uploads. During the load `local-cluster.sh restart-rolling` restarts n1..n6 one at a time (SIGTERM:
# the node drains; start; ready; cluster settled). Checks: the restart went through; no request
# failed after the SDK's retries (the counts per operation are printed); every acknowledged object
# reads back byte-exact and every acknowledged delete answers 404 through all six nodes; every
# node logged a drained stop (no response cut at the grace period). Before the load, one drain in
# slow motion (rolling_load.py drain): a GET held in flight on n6 at its SIGTERM; n6 must leave
# the member list its peers read while the GET is still in flight, refuse new connections, and
# the GET must complete byte-exact. The nodes call each other by the name localhost
# (CAIRN_CLUSTER_RPC_HOST), so all of it also runs the node RPC over resolved names. About 40 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
# the layout and the member records name every node's RPC by "localhost" (docs/rpc.md, "Names")
# (CAIRN_CLUSTER_RPC_HOST=127.0.0.1 runs it on numeric addresses, as a binary without names needs)
export CAIRN_CLUSTER_RPC_HOST=${CAIRN_CLUSTER_RPC_HOST:-localhost}
lc_up itroll boto3
out=$("$CAIRN_BIN" admin layout show --etcd "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 1))" --cluster itroll 2>&1)
h_eq "six nodes in the layout and six members with the RPC at $CAIRN_CLUSTER_RPC_HOST:PORT" 12 \
    "$(grep -cF "$CAIRN_CLUSTER_RPC_HOST:" <<<"$out")"
export CAIRN_ACCESS_KEY CAIRN_SECRET_KEY
if [ -z "${CAIRN_ACCESS_KEY:-}" ]; then
    CAIRN_ACCESS_KEY=$(sed -n 's/^access_key = //p' "$CAIRN_CLUSTER_DIR/credentials")
    CAIRN_SECRET_KEY=$(sed -n 's/^secret_key = //p' "$CAIRN_CLUSTER_DIR/credentials")
fi
EPS=$(lc_endpoints)

# The drain of one node, in slow motion: a GET held in flight by its client keeps n6 draining.
if h_run "SIGTERM during a GET: n6 leaves the member list at once, refuses new connections, the GET completes" \
    "$H_PY" "$H_DIR/rolling_load.py" drain --endpoints "$EPS" --bucket drain --node 5 --name n6 \
    --pid "$(lc_pid n6)" --cairn "$CAIRN_BIN"; then
    echo "   $H_OUT"
fi
h_run "local-cluster.sh start n6 (after its drain)" lc start n6
lc_track

WINDOW=$H_WORK/window
lc_load rolling 6 --window "$WINDOW" --min-during 100
sleep 2 # the load runs through every node before the first goes
t0=$(date +%s.%N)
h_run "local-cluster.sh restart-rolling (under load)" lc restart-rolling &&
    grep '^restart' <<<"$H_OUT" | sed 's/^/   /'
t1=$(date +%s.%N)
echo "$t0 $t1" >"$WINDOW"
echo "   rolling restart took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s"
lc_track
sleep 2
touch "$STOP"
if wait "$LOAD"; then
    h_ok "no request failed during the rolling restart (and at least 100 begun during it)"
else
    h_bad "no request failed during the rolling restart (and at least 100 begun during it)" \
        "$(tail -n 25 "$H_WORK/load.out")"
fi
grep -E "^(requests|failed attempts)" "$H_WORK/load.out" | sed 's/^/   /'
[ -s "$OUT" ] &&
    h_run "every acknowledged object byte-exact, every acknowledged delete gone, through all six" \
        "$H_PY" "$H_DIR/rolling_load.py" verify --endpoints "$EPS" --bucket rolling --out "$OUT" &&
    echo "   ${H_OUT##*$'\n'}"
cut=$(grep -l "grace period over" "$CAIRN_CLUSTER_DIR"/n*/server.log 2>/dev/null)
if [ -z "$cut" ]; then
    h_ok "every node drained within its grace period"
else
    h_bad "every node drained within its grace period" "$cut"
fi

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
