#!/usr/bin/env bash
# Fault: a slow metadata disk must not stall the event loop (issue 8, item 7, metadata part).
# The server runs with one event loop under the ldfault shim (built here with cc), which makes
# every fdatasync of meta/data.mdb sleep DELAY_MS (default 2000) while a flag file exists.
# CreateBucket, DeleteBucket, CreateMultipartUpload, AbortMultipartUpload and
# CompleteMultipartUpload are started together; GETs of a 4 KiB object on the same loop must
# each answer within LIMIT_MS (700), and every one of those requests must succeed. When those
# commits ran on the loop, every GET waited for them. About 5 s.
source "$(dirname "$0")/lib.sh"
h_need cc

DELAY_MS=${DELAY_MS:-2000}
SHIM=$H_WORK/ldfault.so
if ! cc -std=c11 -O2 -shared -fPIC -o "$SHIM" "$H_DIR/ldfault/ldfault.c" -ldl; then
    echo "FAIL - building the ldfault shim"
    echo "FAIL $H_NAME"
    exit 1
fi
REAL_BIN=$CAIRN_BIN
WRAP=$H_WORK/cairn-slowmeta
PRELOAD=$SHIM
asan_rt=$(ldd "$REAL_BIN" 2>/dev/null | awk '/libasan/ {print $3}')
[ -n "$asan_rt" ] && PRELOAD="$asan_rt $SHIM"
FLAG=$H_WORK/slow-meta
cat >"$WRAP" <<SH
#!/bin/sh
LD_PRELOAD="$PRELOAD" LDFAULT_OP=fdatasync LDFAULT_DELAY_FILE="$FLAG" LDFAULT_DELAY_MS=$DELAY_MS \
    exec "$REAL_BIN" "\$@" --threads 1
SH
chmod +x "$WRAP"
CAIRN_BIN=$WRAP
h_start
CAIRN_BIN=$REAL_BIN
export H_WORK
slow() { CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" "$H_DIR/meta_slow.py" "$@"; }
if slow setup; then h_ok "setup"; else h_bad "setup"; fi
if slow race "$FLAG"; then
    h_ok "the loop keeps serving while metadata commits are slow"
else
    h_bad "the loop keeps serving while metadata commits are slow"
fi
h_finish
