# shellcheck shell=bash
# Helpers for the tests that run deploy/local-cluster.sh (3 etcd members, 6 nodes), sourced after
# lib.sh: ports from lib.sh's h_cluster_base_port, the cluster dir in the test's temp dir, and an EXIT
# trap that kills every process of the cluster (by its pid files) should a check fail midway;
# the tests end with `lc stop`, and run.sh kills the test's process group besides.
#   lc_setup ID           CAIRN_CLUSTER_DIR, CAIRN_CLUSTER (ID), CAIRN_CLUSTER_PORT; the EXIT trap
#   lc_up ID [boto3]      skip without etcd (or boto3), lc_setup ID, start the cluster, lc_track
#   lc ARGS...            deploy/local-cluster.sh ARGS
#   lc_track              register the running processes of the cluster (by their pid files)
#                         with h_track
#   lc_endpoints          "http://127.0.0.1:P1,...,P6": the S3 endpoints of n1..n6
#   lc_pid NODE|MEMBER    the pid of a running node (n1..n6) or etcd member (m1..m3)
#   lc_check_sanitizers   after stop: no node logged a sanitizer report
#   lc_load BUCKET THREADS [ARGS...]  rolling_load.py load over every node in the background
#                         (LOAD its pid; STOP, OUT, STARTED files in H_WORK; output in load.out),
#                         returning once its workers run

LC=$H_ROOT/deploy/local-cluster.sh

lc_track() {
    local f dir
    dir=$(cd "$CAIRN_CLUSTER_DIR" 2>/dev/null && pwd) || return 0 # as local-cluster.sh spells it
    for f in "$dir"/n*/pid "$dir"/etcd/m*.pid; do
        [ -f "$f" ] && h_track "$(cat "$f")" "$dir" # not a pid reused since
    done
}

lc_setup() { # lc_setup CLUSTER-ID
    export CAIRN_CLUSTER_DIR=$H_WORK/cluster CAIRN_CLUSTER=$1 STOP_TIMEOUT=10 READY_TIMEOUT=60
    export CAIRN_CLUSTER_PORT
    CAIRN_CLUSTER_PORT=$(h_cluster_base_port)
    [ -n "$CAIRN_CLUSTER_PORT" ] || { h_bad "found free ports"; h_finish; }
    trap 'lc_track; h_cleanup' EXIT
}

lc() { "$LC" "$@"; }

lc_up() { # lc_up CLUSTER-ID [boto3]
    h_need curl python3
    [ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }
    if [ "${2:-}" = boto3 ] && ! "$H_PY" -c 'import boto3' 2>/dev/null; then
        echo "SKIP $H_NAME: boto3 is not installed"
        exit 77
    fi
    lc_setup "$1"
    if ! h_run "local-cluster.sh start" lc start; then
        lc_track
        h_finish
    fi
    lc_track
}

lc_endpoints() {
    local n out=""
    for n in 1 2 3 4 5 6; do out+="${out:+,}http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + n))"; done
    echo "$out"
}

lc_pid() { # lc_pid n3 | m2
    case $1 in
    m*) cat "$CAIRN_CLUSTER_DIR/etcd/$1.pid" ;;
    *) cat "$CAIRN_CLUSTER_DIR/$1/pid" ;;
    esac
}

# After `lc stop`: no node logged a sanitizer report (the ASan/UBSan server of CI's second run).
lc_check_sanitizers() {
    local hits
    hits=$(grep -lE "ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:" \
        "$CAIRN_CLUSTER_DIR"/n*/server.log 2>/dev/null)
    if [ -z "$hits" ]; then
        h_ok "no node logged a sanitizer report"
    else
        h_bad "no node logged a sanitizer report" "$(grep -hE -A5 'Sanitizer|runtime error:' $hits | head -n 30)"
    fi
}

lc_load() { # lc_load BUCKET THREADS [ARGS...]
    local bucket=$1 threads=$2 i
    shift 2
    STOP=$H_WORK/stop OUT=$H_WORK/state.json STARTED=$H_WORK/started
    "$H_PY" "$H_DIR/rolling_load.py" load --endpoints "$(lc_endpoints)" --bucket "$bucket" \
        --threads "$threads" --stop "$STOP" --out "$OUT" --started "$STARTED" "$@" \
        >"$H_WORK/load.out" 2>&1 &
    LOAD=$!
    h_track "$LOAD"
    for ((i = 0; i < 300; i++)); do
        [ -e "$STARTED" ] || ! kill -0 "$LOAD" 2>/dev/null && break
        sleep 0.1
    done
}
