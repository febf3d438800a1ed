#!/usr/bin/env bash
# test_cluster_tls_rolling: a running cluster's node RPC switched from plain to TLS node by node,
# serving throughout ([cluster] tls_mode, docs/tls.md "Switching a running cluster"). The loopback
# cluster starts with the TLS files in place but tls_mode = off (CAIRN_CLUSTER_TLS=1 makes and
# names them; CAIRN_CLUSTER_TLS_MODE, inherited by the nodes, is the key). rolling_load.py runs 2
# boto3 workers over all six nodes (PUT, GET compared, HEAD, LIST, DELETE, multipart) while
# `local-cluster.sh restart-rolling` moves every node to accept, then every node to on: each
# restart waits until every node lists all six as live members and has delivered its hints, which
# needs the RPC between nodes of neighbouring modes. Checks: both rolls went through; no request
# failed; every acknowledged object reads back byte-exact through all six; each node logged the
# mode it was given; on accept, a node's RPC port answers a TLS caller with a node certificate and
# a plain one alike (the RPC's own 401 for an unsigned call); then n2 alone restarts with require:
# objects still cross it (its peers dial TLS), and a plain caller on its RPC port gets the 400
# for https while n3 (on) still answers plain. No node logged a failed TLS handshake to a peer.
# About 35 s (12 restarts).
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need openssl
. "$(dirname "$0")/lib_cluster.sh"
export CAIRN_CLUSTER_TLS=1 CAIRN_CLUSTER_TLS_MODE=off
lc_up ittlsroll boto3
EPS=$(lc_endpoints)
TLS=$CAIRN_CLUSTER_DIR/tls
export CAIRN_ACCESS_KEY CAIRN_SECRET_KEY
if [ -z "${CAIRN_ACCESS_KEY:-}" ]; then
    CAIRN_ACCESS_KEY=$(sed -n 's/^access_key = //p' "$CAIRN_CLUSTER_DIR/credentials")
    CAIRN_SECRET_KEY=$(sed -n 's/^secret_key = //p' "$CAIRN_CLUSTER_DIR/credentials")
fi
rpc() { echo "127.0.0.1:$((CAIRN_CLUSTER_PORT + 40 + ${1#n}))"; } # rpc n2: n2's RPC address

# Every node's last start logged tls_mode MODE (cmd/server.c) and its listener's kind (server_rpc.c).
modes_are() { # modes_are MODE LISTENER-WORDS
    local n bad=""
    for n in n1 n2 n3 n4 n5 n6; do
        grep "tls_mode .*: the node RPC dials" "$CAIRN_CLUSTER_DIR/$n/server.log" | tail -1 |
            grep -qF "tls_mode $1:" || bad+=" $n"
        grep "node RPC of $n on" "$CAIRN_CLUSTER_DIR/$n/server.log" | tail -1 | grep -qF "$2" ||
            bad+=" $n"
    done
    [ -z "$bad" ] && h_ok "every node runs tls_mode $1 (its RPC serves $2)" ||
        h_bad "every node runs tls_mode $1 (its RPC serves $2)" "not:$bad"
}
modes_are off "drives, plain"

lc_load tlsroll 2

CAIRN_CLUSTER_TLS_MODE=accept h_run "every node in turn to tls_mode = accept (under load)" \
    lc restart-rolling && grep 'settled' <<<"$H_OUT" | sed 's/^/   /'
lc_track
modes_are accept "TLS and plain callers"
# accept: one port, both kinds of caller; the unsigned call is the RPC's own 401 either way
CODE=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://$(rpc n1)/_cairn/rpc/v1/info" 2>&1)
h_eq "accept: a plain caller reaches n1's RPC (its 401 for an unsigned call)" 401 "$CODE"
CODE=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' --cacert "$TLS/ca.pem" --cert "$TLS/n2.pem" \
    --key "$TLS/n2.key" "https://$(rpc n1)/_cairn/rpc/v1/info" 2>&1)
h_eq "accept: a TLS caller with a node certificate reaches n1's RPC (401 too)" 401 "$CODE"

CAIRN_CLUSTER_TLS_MODE=on h_run "every node in turn to tls_mode = on (under load)" \
    lc restart-rolling && grep 'settled' <<<"$H_OUT" | sed 's/^/   /'
lc_track
modes_are on "TLS and plain callers"

# n2 alone on require: its peers (on) dial it over TLS; a plain caller is refused
kill -TERM "$(lc_pid n2)"
for ((i = 0; i < 150; i++)); do kill -0 "$(lc_pid n2)" 2>/dev/null || break; sleep 0.1; done
CAIRN_CLUSTER_TLS_MODE=require h_run "n2 restarted with tls_mode = require" lc start n2
lc_track
grep "node RPC of n2 on" "$CAIRN_CLUSTER_DIR/n2/server.log" | tail -1 | grep -q "TLS only" &&
    h_ok "n2 serves its RPC to TLS callers only" ||
    h_bad "n2 serves its RPC to TLS callers only" "$(grep "node RPC of n2" "$CAIRN_CLUSTER_DIR/n2/server.log")"
sleep 1 # the load runs through n2 on require
touch "$STOP"
if wait "$LOAD"; then
    h_ok "no request failed while the cluster switched to TLS"
else
    h_bad "no request failed while the cluster switched to TLS" "$(tail -n 25 "$H_WORK/load.out")"
fi
grep -E "^(requests|failed attempts)" "$H_WORK/load.out" | sed 's/^/   /'
[ -s "$OUT" ] &&
    h_run "every acknowledged object byte-exact, every acknowledged delete gone, through all six" \
        "$H_PY" "$H_DIR/rolling_load.py" verify --endpoints "$EPS" --bucket tlsroll --out "$OUT" &&
    echo "   ${H_OUT##*$'\n'}"
OUT2=$(curl -sS -m 5 "http://$(rpc n2)/" 2>&1)
grep -q "HTTPS only" <<<"$OUT2" && h_ok "require: a plain caller on n2's RPC port gets the 400 for https" ||
    h_bad "require: a plain caller on n2's RPC port gets the 400 for https" "$OUT2"
CODE=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://$(rpc n3)/_cairn/rpc/v1/info" 2>&1)
h_eq "on: n3 still answers a plain caller (401 for an unsigned call)" 401 "$CODE"

# Checked before the stop: a node stopping cuts its peers' connections mid-read ("unexpected eof"),
# which is the stop, not a handshake that failed (and this test stops nodes under load).
HITS=$(grep -h "TLS to .* failed" "$CAIRN_CLUSTER_DIR"/n*/server.log | grep -v "unexpected eof" |
    head -5)
[ -z "$HITS" ] && h_ok "no node logged a failed TLS handshake to a peer" ||
    h_bad "no node logged a failed TLS handshake to a peer" "$HITS"
h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
