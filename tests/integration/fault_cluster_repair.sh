#!/usr/bin/env bash
# fault_cluster_repair: the repair pass of a running cluster (issue 9, section 2.9; docs/chunks.md,
# "Repair in a running cluster"). The local cluster (deploy/local-cluster.sh: 6 nodes in 3 AZs,
# bodies in 8+4 over 24 drives) takes 20 objects of mixed sizes (some of several 2 MiB stripes)
# through three nodes; n3 is SIGKILLed; 10 more objects are written (their n3 cells go to handoff
# drives or are dropped); n3 starts again. Then `cairn admin repair --wait` on every node (rounds
# until every body is whole, at most 4), and: every object reads back byte-exact through every
# node, and `cairn admin object-cells` shows every body with k+m healthy cells, each at one of
# its homes. The repair block of `cairn admin status` (MB/s, share of the disk, time to full
# redundancy, nines) goes to the log. Then n2 stops and `cairn fsck --repair` on its data deletes
# none of its cells (cells of other nodes' records look like orphans to its metadata) and every
# body is still whole once it is back; restarted with a 2 s repair interval, its interval pass
# counts bodies on their layout alone and a requested pass stats every cell. With every etcd
# member stopped, a pass asked of n1 waits for a fresh member list, and runs once etcd is back. A
# single node answers both routes 503. `cairn admin status --cluster` through one node shows all
# six nodes' passes, and five (n2 not asked) while n2 is stopped. 40-100 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need curl python3 ss
[ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }

. "$(dirname "$0")/lib_cluster.sh"
lc_setup itrep
READY_TIMEOUT=30

ep() { echo "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${1#n}))"; }
s3() { CAIRN_ENDPOINT=$(ep "$1") "$H_PY" "$H_DIR/s3raw.py" "${@:2}" >/dev/null 2>&1; }
T0=$(date +%s)

h_run "local-cluster.sh start" "$LC" start || h_finish
lc_track
h_run "create a bucket through n1" s3 n1 mb rbk

# sizes: small (one short stripe), one stripe, several 2 MiB stripes (8 x 256 KiB)
SIZES=(300000 700000 2097152 2500000 5000000 9000000 1200000 4194304 350000 6100000)
put_objects() { # put_objects FIRST COUNT NODES...: objects oFIRST.. round-robin over the nodes
    local i n nodes=("${@:3}") ok=0
    for ((i = $1; i < $1 + $2; i++)); do
        h_gen "$H_WORK/o$i" "${SIZES[$((i % ${#SIZES[@]}))]}" "$i"
        n=${nodes[$((i % ${#nodes[@]}))]}
        s3 "$n" put rbk "o$i" "$H_WORK/o$i" && ok=$((ok + 1))
    done
    echo "$ok"
}
h_eq "20 objects written through n1, n2, n5" 20 "$(put_objects 0 20 n1 n2 n5)"

p3=$(awk '$1 == "n3" { print $4 }' <<<"$("$LC" status)")
[ -n "$p3" ] || { h_bad "n3 runs" "$("$LC" status)"; h_finish; }
kill -KILL "$p3"
for ((i = 0; i < 50; i++)); do kill -0 "$p3" 2>/dev/null || break; sleep 0.1; done
h_eq "10 objects written through n1, n4, n6 with n3 down" 10 "$(put_objects 20 10 n1 n4 n6)"
h_run "start n3 again" "$LC" start n3 || h_finish
t_back=$(date +%s%N)
lc_track

# Every body whole at its homes? (object-cells exits 0 only then)
whole() {
    local i bad=0
    for ((i = 0; i < 30; i++)); do
        "$CAIRN_BIN" admin object-cells rbk "o$i" --endpoint "$(ep n$((i % 6 + 1)))" \
            >"$H_WORK/cells.$i" 2>&1 || bad=$((bad + 1))
    done
    echo "$bad"
}
echo "   right after n3 is back: $(whole) of 30 bodies not whole (n3's own pass may have begun)"
cat "$H_WORK/cells.25" # one body written while n3 was down

t_rep=$(date +%s%N)
for round in 1 2 3 4; do
    for n in n1 n2 n3 n4 n5 n6; do
        "$CAIRN_BIN" admin repair --wait --endpoint "$(ep "$n")" >"$H_WORK/repair.$n" 2>&1
    done
    t_pass=$(date +%s%N)
    bad=$(whole)
    echo "   repair round $round: $bad bodies not whole"
    [ "$bad" -eq 0 ] && break
    sleep 2 # records n3 missed come back with hints and anti-entropy
done
echo "   repair took $(((t_pass - t_rep) / 1000000)) ms in $round rounds; time to full redundancy" \
    "(n3 back until the last pass of the round that left every body whole): $(((t_pass - t_back) / 1000000)) ms"
h_eq "after repair every body has k+m healthy cells at its homes" 0 "$bad"
cat "$H_WORK/cells.25"
grep -q '^part 0: 8+4, .* 12 healthy, 12 at home$' "$H_WORK/cells.25" &&
    h_ok "object-cells shows 8+4 with 12 healthy cells at home" || h_bad "object-cells" "$(cat "$H_WORK/cells.25")"

ok=0
for n in n1 n2 n3 n4 n5 n6; do
    for ((i = 0; i < 30; i++)); do
        rm -f "$H_WORK/back"
        s3 "$n" get rbk "o$i" "$H_WORK/back" && cmp -s "$H_WORK/o$i" "$H_WORK/back" && ok=$((ok + 1))
    done
done
h_eq "every object reads back byte-exact through every node" 180 "$ok"

healed=0
for n in n1 n2 n3 n4 n5 n6; do
    "$CAIRN_BIN" admin status --endpoint "$(ep "$n")" >"$H_WORK/status.$n" 2>&1
    echo "---- $n: repair ----"
    sed -n '/^repair:/,$p' "$H_WORK/status.$n"
    grep -q "^durability .* nines/year" "$H_WORK/status.$n" && healed=$((healed + 1))
done
h_eq "every node's status shows the repair block with the durability in nines" 6 "$healed"
# The whole cluster's repair in one table, asked of one node: every live node answers at its
# registered S3 endpoint, and no last pass left a body it could not heal.
if H_OUT=$("$CAIRN_BIN" admin status --cluster --endpoint "$(ep n4)" 2>&1); then
    echo "$H_OUT"
    grep -q "^cluster: 6 of 6 nodes answered (6 asked.*failed 0;" <<<"$H_OUT" &&
        [ "$(grep -cE '^n[1-6] +az[1-3] +up ' <<<"$H_OUT")" = 6 ] &&
        h_ok "status --cluster: six rows, every node answered, nothing failed" ||
        h_bad "status --cluster shows the six nodes" "$H_OUT"
else
    h_bad "status --cluster exits 0" "$H_OUT"
fi
grep -h "repair pass (.*) done" "$CAIRN_CLUSTER_DIR"/n*/server.log | tail -12
sum=$(grep -h "repair pass (.*) done" "$CAIRN_CLUSTER_DIR"/n*/server.log |
    sed -nE 's/.* ([0-9]+) healed, .*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
[ "$sum" -gt 0 ] && h_ok "the passes healed bodies ($sum in all)" || h_bad "bodies healed" "$sum"
echo "   the whole test took $(($(date +%s) - T0)) s"

# fsck --repair on a stopped cluster node must not delete the cells it holds for bodies whose
# records live on other nodes (they look like orphans to its own metadata): reported, not deleted.
p2=$(awk '$1 == "n2" { print $4 }' <<<"$("$LC" status)")
kill -TERM "$p2"
for ((i = 0; i < 100; i++)); do kill -0 "$p2" 2>/dev/null || break; sleep 0.1; done
# A stopped node left the member list (its lease revoked at SIGTERM): not asked, shown DOWN.
for ((i = 0; i < 50; i++)); do # the entry node reads the member list every second
    H_OUT=$("$CAIRN_BIN" admin status --cluster --json --endpoint "$(ep n1)" 2>&1)
    grep -q '"asked": 5' <<<"$H_OUT" && break
    sleep 0.1
done
"$H_PY" -c 'import json, sys
d = json.loads(sys.argv[1])
n2 = [n for n in d["nodes"] if n["id"] == "n2"][0]
assert d["asked"] == 5 and d["answered"] == 5 and not n2["live"] and not n2["answered"], d' "$H_OUT" &&
    h_ok "status --cluster with n2 stopped: five asked, five answered, n2 not live" ||
    h_bad "status --cluster with n2 stopped" "$H_OUT"
"$CAIRN_BIN" fsck --data "$CAIRN_CLUSTER_DIR/n2/data" --repair --grace 0 >"$H_WORK/fsck.n2" 2>&1
[ -f "$CAIRN_CLUSTER_DIR/n2/data/cluster.node" ] && grep -q "orphans are reported, not deleted" "$H_WORK/fsck.n2" &&
    ! grep -q "reclaimed" "$H_WORK/fsck.n2" &&
    h_ok "fsck --repair on a cluster node deletes no cell" || h_bad "fsck --repair on a cluster node" \
    "$(cat "$H_WORK/fsck.n2")"
# n2 comes back with a 2 s repair interval: its interval passes check layouts only (every body
# whole at its homes on live nodes is counted without a stat), a requested pass stats every cell.
log2=$CAIRN_CLUSTER_DIR/n2/server.log
n2_from=$(($(wc -c <"$log2") + 1))
h_run "start n2 again (repair_interval_s 2)" env CAIRN_CLUSTER_REPAIR_INTERVAL_S=2 "$LC" start n2 &&
    lc_track
h_eq "every body still has k+m healthy cells after fsck on n2" 0 "$(whole)"
passes() { tail -c "+$n2_from" "$log2" | grep -h "repair pass ($1) done"; }
for ((i = 0; i < 300; i++)); do # at most 30 s (a sanitizer build starts slower)
    [ -n "$(passes "interval, layouts only")" ] && break
    sleep 0.1
done
line=$(passes "interval, layouts only" | head -1)
echo "   n2: $line"
trusted=$(sed -nE 's/.*bodies \(([0-9]+) on their layout alone\).*/\1/p' <<<"$line")
[ "${trusted:-0}" -gt 0 ] && grep -q " 0 degraded, 0 healed, 0 failed" <<<"$line" &&
    h_ok "n2's interval pass counts its $trusted whole bodies on their layout alone" ||
    h_bad "an interval pass checks layouts only" "$(tail -c "+$n2_from" "$log2" | grep "repair pass")"
"$CAIRN_BIN" admin repair --wait --endpoint "$(ep n2)" >"$H_WORK/repair.n2" 2>&1
line=$(passes requested | tail -1)
echo "   n2: $line"
grep -q "(0 on their layout alone), 0 degraded, 0 healed, 0 failed" <<<"$line" &&
    h_ok "a requested pass on n2 stats every cell (none counted on its layout alone)" ||
    h_bad "a requested pass is a full one" "$(tail -c "+$n2_from" "$log2" | grep "repair pass")"

# A node whose member list is stale (etcd unreachable from it: older than half the member lease
# TTL, 2.5 s here) does not repair: its liveness view may no longer be the other nodes', and two
# nodes healing one body delete each other's cells. Every etcd member stopped (SIGSTOP), a pass
# asked of n1 waits (logged, no pass starts); etcd continued, the pass runs.
log1=$CAIRN_CLUSTER_DIR/n1/server.log
members=$(for m in m1 m2 m3; do lc_pid "$m"; done)
# shellcheck disable=SC2086 # one pid per word
kill -STOP $members
sleep 4 # the last member list read ages past 2.5 s
before=$(grep -c "repair pass (requested) over layout" "$log1")
"$CAIRN_BIN" admin repair --endpoint "$(ep n1)" >"$H_WORK/repair.stale" 2>&1
for ((i = 0; i < 100; i++)); do
    grep -q "repair pass (requested) waits: the member list is stale" "$log1" && break
    sleep 0.1
done
sleep 2 # the thread retries every second: still no pass
after=$(grep -c "repair pass (requested) over layout" "$log1")
grep -q "repair pass (requested) waits: the member list is stale" "$log1" && [ "$after" = "$before" ] &&
    h_ok "with etcd unreachable, a pass asked of n1 waits" ||
    h_bad "a pass waits for a fresh member list" "$(tail -n 20 "$log1")"
# shellcheck disable=SC2086
kill -CONT $members
"$CAIRN_BIN" admin repair --wait --endpoint "$(ep n1)" >"$H_WORK/repair.fresh" 2>&1
[ "$(grep -c "repair pass (requested) over layout" "$log1")" -gt "$before" ] &&
    h_ok "etcd back, the pass held back runs" || h_bad "the held-back pass runs" "$(tail -n 20 "$log1")"

# Two nodes live in etcd but silent (SIGSTOP: their sockets take connections, nothing answers):
# status --cluster asks every node at once, so it ends after one 5 s timeout, not two, showing
# both as NO ANSWER and exiting 4.
for ((i = 0; i < 100; i++)); do # first every node live and answering again (after etcd's stop)
    "$CAIRN_BIN" admin status --cluster --json --endpoint "$(ep n4)" 2>/dev/null |
        grep -q '"answered": 6' && break
    sleep 0.2
done
# Every node's last pass a fresh one: the passes that began as etcd came back may have met on a
# body (two nodes each taking itself for the partition's first live home while the member list
# settled: the CAS on the record lets one heal win, the other counts a failure), and a failure in
# a node's last pass makes status exit 3 (damage) before 4 (no answer).
for n in n1 n2 n3 n4 n5 n6; do
    "$CAIRN_BIN" admin repair --wait --endpoint "$(ep "$n")" >/dev/null 2>&1
done
p5=$(lc_pid n5) p6=$(lc_pid n6)
kill -STOP "$p5" "$p6"
t0=$(date +%s%N)
H_OUT=$("$CAIRN_BIN" admin status --cluster --endpoint "$(ep n4)" 2>&1)
rc=$?
took=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$p5" "$p6"
echo "$H_OUT"
echo "   status --cluster with n5 and n6 stopped: exit $rc after $took ms"
[ "$rc" = 4 ] && [ "$took" -lt 9000 ] &&
    [ "$(grep -cE '^n[56] +az3 +NO ANSWER ' <<<"$H_OUT")" = 2 ] &&
    grep -q "^cluster: 4 of 6 nodes answered (6 asked" <<<"$H_OUT" &&
    [ "$(grep -c "no answer from 127.0.0.1:[0-9]* within 5 s" <<<"$H_OUT")" = 2 ] &&
    h_ok "status --cluster with two silent nodes: NO ANSWER for both after one timeout, exit 4" ||
    h_bad "status --cluster with two silent nodes (exit $rc, $took ms)" "$H_OUT"

h_run "local-cluster.sh stop" "$LC" stop
for n in n1 n2 n3 n4 n5 n6; do
    grep -q "stopped$" "$CAIRN_CLUSTER_DIR/$n/server.log" || h_bad "$n stopped cleanly"
done
san=$(grep -lE "Sanitizer|runtime error:" "$CAIRN_CLUSTER_DIR"/n*/server.log)
h_eq "no sanitizer report in any node's log (an ASan binary as CAIRN_BIN checks leaks)" "" "$san"

# A single node has no repair pass: the routes answer 503 and change nothing.
h_start
h_fails_with "a single node refuses cairn admin repair (503)" "NotClustered" \
    "$CAIRN_BIN" admin repair --endpoint "$H_ENDPOINT"
h_fails_with "a single node refuses cairn admin object-cells (503)" "HTTP 503" \
    "$CAIRN_BIN" admin object-cells b k --endpoint "$H_ENDPOINT"
h_finish
