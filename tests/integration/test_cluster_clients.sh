#!/usr/bin/env bash
# test_cluster_clients: the real-client tests against the loopback cluster (issue 9: "the
# real-client integration tests pass against the cluster through any node"). Starts
# deploy/local-cluster.sh (3 etcd members, 6 nodes in 3 AZs) with the binary under test
# (CAIRN_BIN) in a temp CAIRN_CLUSTER_DIR on free ports; checks a bucket's life across the nodes
# (BucketNotEmpty through every node while one object is left, wherever its records are; once
# it is deleted, DeleteBucket through another node, then every node answers HeadBucket 404, lists
# no such bucket and refuses a PUT into it); then runs each client test in lib.sh's cluster mode
# (CAIRN_TEST_ENDPOINTS): test i through node i mod 6 (the list rotated so that its node comes
# first), those marked :alt with CAIRN_TEST_ALTERNATE=1 (each client step through the next node).
# CLUSTER_LANES tests run at once (default 2: the clients wait on the network as much as on the
# CPU). Each test is one check here, its output printed when it failed. At the end every node must
# still run and, once the cluster stopped, no node log may hold a sanitizer report. The cluster is
# stopped on every exit (trap). CLUSTER_TESTS="test_s3cmd test_rclone:alt" runs only those.
# About 2 minutes (3 with the ASan server).
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need curl
[ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }

LC=$H_ROOT/deploy/local-cluster.sh
export CAIRN_CLUSTER_DIR=$H_WORK/cluster CAIRN_CLUSTER=itcc STOP_TIMEOUT=10 READY_TIMEOUT=60
export CAIRN_BIN # local-cluster.sh starts the nodes with the binary under test
export CAIRN_CLUSTER_PORT
CAIRN_CLUSTER_PORT=$(h_cluster_base_port)
[ -n "$CAIRN_CLUSTER_PORT" ] || { h_bad "found free ports"; h_finish; }
read -r -a CLIENTS <<<"${CLUSTER_TESTS:-test_awscli:alt test_boto3 test_s3cmd:alt test_rclone:alt \
test_restic:alt test_js test_headers test_bench fault_badinput fault_hostile_headers \
fault_overwrite_read:alt test_tagging test_lifecycle test_cors_post test_versioning test_object_lock}"
LANES=${CLUSTER_LANES:-2}
echo "server binary: $CAIRN_BIN"

# Stop the cluster however the test ends; lib.sh's cleanup then kills whatever did not stop.
cluster_down() {
    local f
    [ -d "$CAIRN_CLUSTER_DIR" ] || return 0
    for f in "$CAIRN_CLUSTER_DIR"/n*/pid "$CAIRN_CLUSTER_DIR"/etcd/m*.pid; do
        [ -f "$f" ] && h_track "$(cat "$f")" "$(cd "$CAIRN_CLUSTER_DIR" && pwd)"
    done
    "$LC" stop >/dev/null 2>&1
}
trap 'cluster_down; h_cleanup' EXIT

t0=$(date +%s%N)
if ! h_run "local-cluster.sh start (port base $CAIRN_CLUSTER_PORT)" "$LC" start; then
    tail -n 5 "$CAIRN_CLUSTER_DIR"/n*/server.log 2>/dev/null
    h_finish
fi
echo "   start took $((($(date +%s%N) - t0) / 1000000)) ms"
mapfile -t NODES < <(grep -E '^n[1-6] ' <<<"$H_OUT" | cut -d' ' -f3)
h_eq "6 node endpoints" 6 "${#NODES[@]}"
[ "${#NODES[@]}" -eq 6 ] || h_finish

# ---- a bucket's life across the nodes ----

raw() { CAIRN_ENDPOINT=${NODES[$1]} "$H_PY" "$H_DIR/s3raw.py" "${@:2}"; }
status_of() { raw "$@" 2>/dev/null | head -n 1 | cut -d' ' -f1; }
# until_all DESC WANT CMD...: on every node (index appended to CMD), CMD's status becomes WANT
# within 5 s (the bucket namespace's watch delivers a removal in tens of ms).
until_all() {
    local desc=$1 want=$2 n i got bad=""
    shift 2
    for ((n = 0; n < 6; n++)); do
        for ((i = 0; i < 50; i++)); do
            got=$("$@" "$n")
            [ "$got" = "$want" ] && break
            sleep 0.1 # polling for the watch, bounded
        done
        [ "$got" = "$want" ] || bad+="n$((n + 1)): $got "
    done
    if [ -z "$bad" ]; then h_ok "$desc"; else h_bad "$desc" "$bad"; fi
}
head_bucket() { status_of "$2" hb "$1"; }
listed() { if grep -q "<Name>$1</Name>" <<<"$(raw "$2" ls)"; then echo listed; else echo absent; fi; }
put_into() { status_of "$2" put "$1" late "$H_WORK/one"; }

LB=t$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')-life
printf 'one object\n' >"$H_WORK/one"
h_run "create bucket $LB through n1" raw 0 mb "$LB"
h_run "put its one object through n2" raw 1 put "$LB" only "$H_WORK/one"
bad=""
for ((n = 0; n < 6; n++)); do
    got=$(status_of "$n" rb "$LB")
    [ "$got" = 409 ] || bad+="n$((n + 1)): $got "
done
if [ -z "$bad" ]; then
    h_ok "DeleteBucket through every node: 409 BucketNotEmpty"
else
    h_bad "DeleteBucket through every node: 409 BucketNotEmpty" "$bad"
fi
h_run "delete the object through n3" raw 2 rm "$LB" only
h_eq "DeleteBucket through n4: 204" 204 "$(status_of 3 rb "$LB")"
until_all "HeadBucket through every node: 404" 404 head_bucket "$LB"
until_all "no node lists the bucket" absent listed "$LB"
until_all "PUT into the deleted bucket through every node: 404" 404 put_into "$LB"

# ---- the client tests ----

# run_client I SPEC: the test named by SPEC (NAME or NAME:alt) through node I mod 6 first.
run_client() {
    local i=$1 name=${2%%:*} alt=0 k eps="" s
    [ "$name" = "$2" ] || alt=1
    for ((k = 0; k < 6; k++)); do eps+="${eps:+ }${NODES[(i + k) % 6]}"; done
    s=$(date +%s)
    CAIRN_TEST_ENDPOINTS=$eps CAIRN_TEST_ALTERNATE=$alt CAIRN_TEST_BUCKET_PREFIX="" \
        timeout -k 5 "${CLIENT_TIMEOUT:-300}" bash "$H_DIR/$name.sh" </dev/null \
        >"$H_WORK/$name.log" 2>&1
    echo "$? $(($(date +%s) - s)) $((i % 6 + 1)) $alt" >"$H_WORK/$name.rc"
}

t1=$(date +%s)
running=0
for i in "${!CLIENTS[@]}"; do
    if [ "$running" -ge "$LANES" ]; then
        wait -n
        running=$((running - 1))
    fi
    run_client "$i" "${CLIENTS[$i]}" &
    h_track "$!"
    running=$((running + 1))
done
wait
echo "   client tests took $(($(date +%s) - t1)) s ($LANES at a time)"

for spec in "${CLIENTS[@]}"; do
    name=${spec%%:*}
    read -r rc secs node alt <"$H_WORK/$name.rc" 2>/dev/null || rc=missing
    how="through n$node"
    [ "$alt" = 1 ] && how="from n$node, alternating nodes"
    if [ "$rc" = 0 ]; then
        h_ok "$name $how (${secs}s, $(grep -c '^ok - ' "$H_WORK/$name.log") checks)"
    elif [ "$rc" = 77 ] && [ "${CI:-}" != true ]; then
        echo "skip - $name: $(tail -n 1 "$H_WORK/$name.log")"
    else
        h_bad "$name $how (exit $rc, ${secs}s)" "$(grep -E '^(FAIL|SKIP)' "$H_WORK/$name.log")"
        sed 's/^/      /' "$H_WORK/$name.log" | tail -n 60
    fi
done

# ---- the nodes after all that ----

if h_run "local-cluster.sh status" "$LC" status; then
    h_eq "every node still runs" 0 "$(grep -c ' down$' <<<"$H_OUT")"
fi
h_run "local-cluster.sh stop" "$LC" stop
reports=$(grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' \
    "$CAIRN_CLUSTER_DIR"/n*/server.log 2>/dev/null)
h_eq "no sanitizer report in any node log" "" "$reports"
for f in $reports; do grep -m 5 -A 15 -E 'ERROR: |runtime error:' "$f"; done
if [ "$H_FAILS" -gt 0 ]; then
    for f in "$CAIRN_CLUSTER_DIR"/n*/server.log; do
        echo "---- $f (warnings and errors, last 10) ----"
        grep -E 'level=(warn|error)' "$f" | tail -n 10
    done
fi
h_finish
