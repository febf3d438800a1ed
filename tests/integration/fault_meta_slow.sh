#!/usr/bin/env bash
# Fault: a slow metadata disk must not stall the event loop (issue 8, item 7, metadata part).
# The server runs with one event loop under the ldfault shim (built here with cc), which makes
# every fdatasync of meta/data.mdb sleep DELAY_MS (default 2000) while a flag file exists.
# CreateBucket, DeleteBucket, CreateMultipartUpload, AbortMultipartUpload and
# CompleteMultipartUpload are started together; GETs of a 4 KiB object on the same loop must
# each answer within LIMIT_MS (700), and every one of those requests must succeed. When those
# commits ran on the loop, every GET waited for them. About 5 s.
source "$(dirname "$0")/lib.sh"
h_own_server "its server runs under the ldfault shim"
source "$H_DIR/lib_fault.sh"
h_need cc

DELAY_MS=${DELAY_MS:-2000}
FLAG=$H_WORK/slow-meta
ldfault_start LDFAULT_OP=fdatasync LDFAULT_DELAY_FILE="$FLAG" LDFAULT_DELAY_MS="$DELAY_MS" \
    -- --threads 1
export H_WORK
slow() { CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" "$H_DIR/meta_slow.py" "$@"; }
if slow setup; then h_ok "setup"; else h_bad "setup"; fi
if slow race "$FLAG"; then
    h_ok "the loop keeps serving while metadata commits are slow"
else
    h_bad "the loop keeps serving while metadata commits are slow"
fi
h_finish
