#!/usr/bin/env bash
# fault_cluster_heal_get: GETs keep streaming whole and byte-exact while repair passes move the
# cells of the very objects they read (docs/chunks.md, "A GET and a concurrent heal"). The
# loopback cluster (6 nodes in 3 AZs, 8+4) takes 6 objects of 9 MiB; one reader per node but n3
# GETs them round robin the whole time. n3 is SIGKILLed; past its member lease, repair passes run
# on the five others at once (n3's cells rebuilt on handoffs, the records swapped under the
# readers, n3's places retired for the grace period); n3 starts again and more passes move the
# cells home: each move deletes the retired chunk at the home place before writing the cell
# there, so a GET that read the record before the first swap finds that cell "not found" on a
# live node. No GET may be cut short, wrong or fail; the cells readers found missing on live
# nodes, and the pieces read again on the record read anew, are counted from the logs.
# CYCLES (default 1) repeats kill, passes, restart, passes (the soak, run by hand); PASSES
# (default 2) passes per phase. Last, a 40 MiB GET through n6 whose stripes fall short
# mid-body for 2.5 s (RPC fault rules refuse n6's calls to n1-n3: 6 of 12 cells) goes on whole
# once they are back, for a plain object and then an SSE-S3 one (its pieces are stored segments
# read and decrypted on another path). About 35 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_setup ithget
export CAIRN_RPC_FAULTS_FILE=$H_WORK/faults # for the last step
: >"$CAIRN_RPC_FAULTS_FILE"
lc_up ithget boto3
EPS=$(lc_endpoints)
STOP=$H_WORK/stop
N=6 SIZE=$((9 * 1024 * 1024 + 13)) PASSES=${PASSES:-2}

ep() { echo "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${1#n}))"; }
passes() { # passes NODES...: PASSES rounds of a repair pass on every node at once
    local p n pids
    for ((p = 0; p < PASSES; p++)); do
        pids=()
        for n in "$@"; do
            "$CAIRN_BIN" admin repair --wait --endpoint "$(ep "$n")" >>"$H_WORK/repair.$n" 2>&1 &
            pids+=($!)
        done
        wait "${pids[@]}" # not the reader
    done
}

h_run "6 objects of 9 MiB put through n1-n6" "$H_PY" "$H_DIR/cluster_read.py" put "$EPS" hget "$N" "$SIZE"
"$H_PY" "$H_DIR/cluster_read.py" read "$EPS" hget "$N" "$SIZE" 0,1,3,4,5 "$STOP" >"$H_WORK/read.out" 2>&1 &
READ=$!
h_track "$READ"
for ((c = 1; c <= ${CYCLES:-1}; c++)); do
    sleep 1
    kill -KILL "$(lc_pid n3)"
    sleep 7 # its member lease (5 s) lapses: its cells are rebuilt on handoffs
    passes n1 n2 n4 n5 n6
    lc start n3 >/dev/null 2>&1 || h_bad "n3 starts again" "cycle $c"
    lc_track
    sleep 2
    passes n1 n2 n3 n4 n5 n6
    echo "cycle $c: n3 killed, $PASSES passes on the others, n3 back, $PASSES passes on all"
done
touch "$STOP"
if wait "$READ"; then
    h_ok "every GET whole and byte-exact while repairs moved the cells it read"
else
    h_bad "every GET whole and byte-exact while repairs moved the cells it read" \
        "$(cat "$H_WORK/read.out")"
fi
sed 's/^/   /' "$H_WORK/read.out"
gone=$(cat "$CAIRN_CLUSTER_DIR"/n[1-6]/server.log | grep -c "unreadable (not found")
again=$(cat "$CAIRN_CLUSTER_DIR"/n[1-6]/server.log | grep -c "record read again")
moved=$(cat "$H_WORK"/repair.* | awk '/^cells rebuilt\/moved/ { s += $3 } END { print s + 0 }')
echo "   cells the passes rebuilt or moved: $moved; cells found missing on live nodes by readers: $gone;" \
    "pieces read again on the record read anew: $again"
for n in n1 n2 n4 n5 n6; do
    grep -h "body cut short\|stripe at\|record read again" "$CAIRN_CLUSTER_DIR/$n/server.log" |
        head -n 5 | sed "s/^/   $n: /"
done

# The retry itself: a GET whose stripes fall short mid-body (n6 refused by n1-n3 for 2.5 s)
# goes on; without it the body was cut once the reader's rounds (1.6 s) ran out.
h_run "a GET whose stripes fall short for 2.5 s goes on (plain, SSE-S3)" "$H_PY" "$H_DIR/cluster_get_retry.py" \
    "$EPS" hget "$CAIRN_RPC_FAULTS_FILE" && sed 's/^/   /' <<<"$H_OUT"
grep -h "record read again" "$CAIRN_CLUSTER_DIR/n6/server.log" | tail -n 3 | sed "s/^/   n6: /"

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
