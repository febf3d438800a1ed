#!/usr/bin/env bash
# test_layout_etcd: the cluster layout in etcd (issue 9, section 2.1). With one etcd member started
# by lib_etcd.sh: `cairn admin layout add` stages nodes in 3 AZs, show prints them and the staged
# diff, apply refuses without --yes on a pipe, --dry-run changes nothing, apply installs epoch 1; a
# second change shows its moved share and installs epoch 2; two concurrent applies: exactly one
# wins, the other reports a conflict; drain and remove; bad input refused with clear messages. A
# `cairn server` with a [cluster] section adopts the layout (admin status), registers as a member
# (layout show), follows a new apply within seconds, keeps serving S3 on its last layout while
# etcd is down, picks up a change applied after etcd is back, ignores an undecodable layout
# document, and restarted while etcd is down comes up on the last layout it adopted. About 8 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and a clustered server, and restarts it"
. "$H_DIR/lib_etcd.sh"
h_need curl python3
[ -x "$ETCD_BIN" ] || { echo "SKIP $H_NAME: $ETCD_BIN is not installed"; exit 77; }

etcd_start 1 || { h_bad "etcd starts"; h_finish; }
h_ok "etcd started: $ETCD_ENDPOINTS"
E=(--etcd "$ETCD_ENDPOINTS" --cluster itc)
L() { "$CAIRN_BIN" admin layout "$1" "${@:2}" "${E[@]}"; }
# status_until PATTERN SECONDS: poll `cairn admin status` until its output matches
status_until() {
    local deadline=$((SECONDS + $2))
    while [ "$SECONDS" -le "$deadline" ]; do
        H_OUT=$("$CAIRN_BIN" admin status --endpoint "$H_ENDPOINT" 2>&1)
        grep -Eq -- "$1" <<<"$H_OUT" && return 0
        sleep 0.2
    done
    return 1
}
check_status() { # check_status DESC PATTERN SECONDS; prints how long it took
    local t0 t1
    t0=$(date +%s%N)
    if status_until "$2" "$3"; then
        t1=$(date +%s%N)
        h_ok "$1 (after $(((t1 - t0) / 1000000)) ms)"
    else
        h_bad "$1" "$H_OUT"
    fi
}

# ---- staging and applying ----
h_run "add n1 in az1 (4 drives)" L add n1 --addr 127.0.0.1:9101 --az az1 --drives 4
h_run "add n2 in az2 (4 drives)" L add n2 --addr 127.0.0.1:9102 --az az2 --drives 4
h_run "add n3 in az3 (drives with weights)" L add n3 --addr 127.0.0.1:9103 --az az3 \
    --drive 0:100 --drive 1:100 --drive 2:50 --drive 3:150
if h_run "show before the first apply" L show; then
    grep -q "no layout applied yet" <<<"$H_OUT" && grep -q "+ node n3 in AZ az3" <<<"$H_OUT" &&
        grep -Eq "^n3 +az3 +127.0.0.1:9103 +up +no +4 +400 +0:100 1:100 2:50 3:150" <<<"$H_OUT" &&
        h_ok "show: no layout yet, the staged nodes and drives" || h_bad "show staged" "$H_OUT"
fi
h_fails_with "apply on a pipe without --yes is refused" "stdin is not a terminal: pass --yes" \
    L apply --objects 20000 </dev/null
h_run "apply --dry-run" L apply --dry-run --objects 20000
grep -q "dry run: nothing applied" <<<"$H_OUT" && h_ok "dry run says so" || h_bad "dry run" "$H_OUT"
h_run "show after the dry run" L show
grep -q "no layout applied yet" <<<"$H_OUT" && h_ok "dry run applied nothing" ||
    h_bad "dry run applied nothing" "$H_OUT"
if h_run "apply --yes: epoch 1" L apply --yes --objects 50000; then
    grep -q "applied: layout epoch 1 at etcd revision" <<<"$H_OUT" &&
        grep -q "AZ bound: kept" <<<"$H_OUT" && grep -q "drives: load max/mean" <<<"$H_OUT" &&
        h_ok "apply printed the effect and epoch 1" || h_bad "apply output" "$H_OUT"
fi
h_run "show epoch 1" L show
grep -Eq "^cluster itc: layout epoch 1 at etcd revision [0-9]+" <<<"$H_OUT" &&
    grep -q "no staged change" <<<"$H_OUT" && h_ok "show: epoch 1, nothing staged" ||
    h_bad "show epoch 1" "$H_OUT"

# ---- bad input ----
h_fails_with "duplicate node id refused" "node 'n1' is already in the layout" \
    L add n1 --addr 127.0.0.1:9111 --az az1 --drives 2
h_fails_with "weight 0 refused" "bad weight '0'" L add n9 --addr 127.0.0.1:9109 --az az1 \
    --drives 2 --weight 0
h_fails_with "non-numeric drive weight refused" "bad weight 'heavy'" \
    L add n9 --addr 127.0.0.1:9109 --az az1 --drive 0:heavy
h_fails_with "unknown node refused (drain)" "no node 'nosuch' in the layout" L drain nosuch
h_fails_with "unknown node refused (remove)" "no node 'nosuch' in the layout" L remove nosuch
h_fails_with "missing drives refused" "give --addr HOST:PORT, --az AZ and the drives" \
    L add n9 --addr 127.0.0.1:9109 --az az1
h_fails_with "bad address refused" "the address is HOST:PORT" \
    L add n9 --addr nohostport --az az1 --drives 2
h_fails_with "apply with nothing staged" "nothing is staged" L apply --yes
h_fails_with "bad AZ name refused" "AZ names are 1-63 characters" \
    L add n9 --addr 127.0.0.1:9109 --az "az 1" --drives 2
h_fails_with "bad cluster id" "bad --cluster" "$CAIRN_BIN" admin layout show \
    --etcd "$ETCD_ENDPOINTS" --cluster "a/b"
h_run "show still epoch 1 after the refusals" L show
grep -q "no staged change" <<<"$H_OUT" && h_ok "nothing was staged by bad input" ||
    h_bad "nothing staged by bad input" "$H_OUT"

# ---- a node with [cluster] adopts the layout and registers ----
cat >"$H_WORK/cluster.conf" <<EOF2
[cluster]
etcd = $ETCD_ENDPOINTS
id = itc
node_id = n1
member_ttl_s = 2
rpc_listen = 127.0.0.1:$(h_free_port)
EOF2
export CAIRN_RPC_SECRET=layout-test-cluster-secret
H_SERVER_ARGS=(--config "$H_WORK/cluster.conf")
h_start
check_status "server adopted layout epoch 1" "cluster: layout epoch 1 .*etcd connected, registered" 10
check_status "server lists itself as a live member" "live members: n1" 5
grep -q "NOT in the layout" <<<"$H_OUT" && h_bad "n1 is in the layout" "$H_OUT" ||
    h_ok "status does not say n1 is missing from the layout"
h_run "layout show after the server started" L show
grep -Eq "^n1 +az1 +127.0.0.1:9101 +up +yes " <<<"$H_OUT" && h_ok "show: n1 is live" ||
    h_bad "show: n1 is live" "$H_OUT"

# ---- a second change: epoch 2 with its moved share ----
h_run "add n4 in az1" L add n4 --addr 127.0.0.1:9104 --az az1 --drives 4
if h_run "apply epoch 2" L apply --yes --objects 50000; then
    moved=$(sed -nE 's/^change: moved .* = ([0-9.]+); ideal .* ([0-9.]+); ratio ([0-9.]+)$/\1 \2 \3/p' <<<"$H_OUT")
    echo "   moved share, ideal, ratio: $moved"
    awk -v r="${moved##* }" 'BEGIN { exit !(r > 0.5 && r <= 1.2) }' &&
        grep -q "applied: layout epoch 2" <<<"$H_OUT" &&
        h_ok "epoch 2 applied; moved/ideal ${moved##* } <= 1.2" || h_bad "epoch 2 moved" "$H_OUT"
fi
check_status "server followed to epoch 2" "cluster: layout epoch 2 " 5

# ---- two concurrent applies: exactly one wins ----
h_run "stage drain n2" L drain n2
# n4 holds nothing and does not run: n1's handoff from epoch 1 cannot settle, and n1 says so in
# its member value; apply refuses until --force
h_fails_with "apply refused while n1 is in the handoff" "refused: 1 node.s. above still move data" \
    L apply --yes --objects 20000
grep -Eq "node n1: (still in the handoff to epoch 2|serves epoch 1)" <<<"$H_OUT" &&
    h_ok "the refusal names n1" || h_bad "the refusal names n1" "$H_OUT"
# each reads the layout, then simulates for a while (~1 s), then compares-and-sets
L apply --yes --force --objects 600000 --timeout 10000 >"$H_WORK/a1" 2>&1 &
p1=$!
L apply --yes --force --objects 600000 --timeout 10000 >"$H_WORK/a2" 2>&1 &
p2=$!
wait "$p1"
r1=$?
wait "$p2"
r2=$?
# They normally overlap and the loser's compare-and-set fails (a conflict). On a loaded machine the
# second may start only after the first finished; it then finds the change applied (nothing staged,
# or staged on an older epoch). Either way exactly one applies and the other says why it did not.
wins=$(cat "$H_WORK/a1" "$H_WORK/a2" | grep -c "applied: layout epoch 3")
if [ "$wins" -eq 1 ] && [ $((r1 + r2)) -eq 1 ] &&
    grep -q "conflict: the current layout changed since it was read" "$H_WORK/a1" "$H_WORK/a2"; then
    h_ok "concurrent applies: one won (exit $r1/$r2), the other reported a conflict"
elif [ "$wins" -eq 1 ] && [ $((r1 + r2)) -eq 1 ] &&
    cat "$H_WORK/a1" "$H_WORK/a2" | grep -Eq "nothing is staged|the staged change is based on epoch"; then
    h_ok "concurrent applies ran one after the other: one won (exit $r1/$r2), the other refused"
else
    h_bad "concurrent applies" "exit $r1 $r2, wins $wins"
    grep -v "^ *n[0-9]\|^az\|^node\|^AZ\|^$" "$H_WORK/a1" "$H_WORK/a2"
fi
h_run "show epoch 3" L show
grep -Eq "^cluster itc: layout epoch 3 " <<<"$H_OUT" && grep -Eq "^n2 +az2 .* draining " <<<"$H_OUT" &&
    h_ok "epoch 3: n2 draining" || h_bad "epoch 3: n2 draining" "$H_OUT"
h_fails_with "draining twice refused" "node 'n2' is already draining" L drain n2
h_run "stage remove n4" L remove n4
grep -q "~ node n4: up -> removed" <<<"$H_OUT" && h_ok "remove staged with its diff" ||
    h_bad "remove diff" "$H_OUT"
h_run "apply epoch 4" L apply --yes --force --objects 50000
h_run "show epoch 4" L show
grep -Eq "^n4 +az1 .* removed " <<<"$H_OUT" && grep -Eq "^cluster itc: layout epoch 4 " <<<"$H_OUT" &&
    h_ok "epoch 4: n4 removed" || h_bad "epoch 4: n4 removed" "$H_OUT"
check_status "server followed to epoch 4" "cluster: layout epoch 4 " 5

# ---- etcd down: the node keeps serving on its last layout ----
# Only n1 runs, and object records and bodies live on the layout's nodes: leave n1 alone in it
# (a one-node cluster keeps every partition and every cell on it).
h_run "stage remove n2" L remove n2
h_run "stage remove n3" L remove n3
h_run "apply epoch 5: n1 alone" L apply --yes --force --objects 20000
check_status "server followed to epoch 5" "cluster: layout epoch 5 " 5
export CAIRN_ENDPOINT=$H_ENDPOINT
s3() { "$H_PY" "$H_DIR/s3raw.py" "$@"; }
h_gen "$H_WORK/obj" 70000 16
h_run "create a bucket" s3 mb layoutb
h_run "put before the outage" s3 put layoutb before "$H_WORK/obj"
etcd_stop
h_ok "etcd stopped"
check_status "status: etcd unreachable, still epoch 5" \
    "cluster: layout epoch 5 .*etcd UNREACHABLE \(serving on the last layout\)" 10
h_run "put during the outage" s3 put layoutb during "$H_WORK/obj"
h_run "get during the outage" s3 get layoutb before "$H_WORK/back"
h_eq "object reads back during the outage" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back")"
h_fails_with "layout commands fail clearly without etcd" "cannot read the current layout from etcd" \
    L show --timeout 300
kill -0 "$H_PID" && h_ok "server still running" || h_bad "server still running"

# ---- etcd back: a change applied now is picked up ----
etcd_restart 0 && h_ok "etcd restarted" || h_bad "etcd restarted"
# n5 (not running) joins draining: it takes no partition and no new cell, so n1 still holds all
h_run "add n5 after the outage" L add n5 --addr 127.0.0.1:9105 --az az2 --drives 4
h_run "stage drain n5" L drain n5
h_run "apply epoch 6" L apply --yes --force --objects 20000
check_status "server followed to epoch 6 after the outage" \
    "cluster: layout epoch 6 .*etcd connected, registered" 10
check_status "registered again" "live members: n1" 5
h_run "get after the outage" s3 get layoutb during "$H_WORK/back2"
h_eq "object written during the outage reads back" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back2")"

# ---- a broken document is ignored by the node ----
key=$(printf '/cairn/itc/layout' | base64 -w0)
val=$(printf '{"version":1,"epoch":99,"azs":"broken"}' | base64 -w0)
curl -s -m 3 -X POST -d "{\"key\":\"$key\",\"value\":\"$val\"}" "${ETCD_URLS[0]}/v3/kv/put" >/dev/null
check_status "broken layout rejected, epoch 6 kept" "cluster: layout epoch 6 .*rejected [1-9]" 5
h_fails_with "show reports the broken document" "the current layout in etcd .* is not valid" L show

# ---- restarted while etcd is down: up on the last layout it adopted (not the broken one) ----
etcd_stop
h_stop
h_start
check_status "restarted during an outage: on the cached epoch 6" \
    "cluster: layout epoch 6 .*etcd UNREACHABLE .*rejected 0" 5
h_run "get after the restart during the outage" s3 get layoutb during "$H_WORK/back3"
h_eq "object reads back" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back3")"
h_finish
