#!/usr/bin/env bash
# Fault: a worker job outlives the stop grace period. A PUT of a striped body reaches its worker,
# whose fdatasync of drive0 is held for 3 s by the ldfault LD_PRELOAD shim (delay mode); the
# server is told to stop with a 300 ms grace ([server] stop_grace_ms), so the loops exit while the
# job still runs. The server must wait for the job, free its request, and exit 0 with no sanitizer
# report: before gw_quiesce, cmd/server.c freed the event bases first and the job's completion
# called event_base_once on freed memory (an ASan heap-use-after-free; CI runs this test against
# build-asan/bin/cairn too). Afterwards the data of that PUT is either complete or absent.
source "$(dirname "$0")/lib.sh"
h_own_server "its server runs under the ldfault shim and is stopped mid-request"
source "$H_DIR/lib_fault.sh"
h_need cc

DELAY_MS=3000
CONF=$H_WORK/cairn.conf
printf '[server]\nstop_grace_ms = 300\n' >"$CONF"
ldfault_start LDFAULT_OP=fdatasync LDFAULT_PATH=/drive0/seg- LDFAULT_DELAY_MS="$DELAY_MS" \
    -- --config "$CONF"

h_run "create bucket" s3raw mb "$FAULT_BUCKET"
h_gen "$H_WORK/body" 307200 5100
s3raw put "$FAULT_BUCKET" slow-put "$H_WORK/body" >"$H_WORK/put.out" 2>&1 &
PUT_PID=$!
h_track "$PUT_PID"

# Wait (bounded) until the PUT's worker is inside the delayed fdatasync.
for ((i = 0; i < 100; i++)); do
    grep -q '^ldfault: delay fdatasync' "$H_LOG" && break
    sleep 0.1 # polling the server log for the shim's line
done
h_eq "the PUT's worker is in a delayed fdatasync" 1 \
    "$(grep -c '^ldfault: delay fdatasync' "$H_LOG")"
START=$(date +%s%N)
h_stop
TOOK_MS=$((($(date +%s%N) - START) / 1000000))
echo "stop took $TOOK_MS ms (grace 300 ms, fdatasync held $DELAY_MS ms)"
wait "$PUT_PID" 2>/dev/null
if grep -q 'waiting for 1 running' "$H_LOG"; then
    h_ok "the job outlived the grace period and the server waited for it"
else
    h_bad "the job outlived the grace period and the server waited for it" "$(tail -20 "$H_LOG")"
fi
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$H_LOG"; then
    h_bad "no sanitizer report at shutdown" "$(grep -A 30 -E 'Sanitizer|runtime error' "$H_LOG")"
else
    h_ok "no sanitizer report at shutdown"
fi

# The interrupted PUT's data: committed whole, or not at all.
h_start
rm -f "$H_WORK/got"
GOT=$(s3raw get "$FAULT_BUCKET" slow-put "$H_WORK/got" 2>&1)
case "$GOT" in
200*) h_eq "the PUT that outlived the grace is complete" "$(h_md5 "$H_WORK/body")" \
    "$(h_md5 "$H_WORK/got")" ;;
404*) h_ok "the PUT that outlived the grace is absent" ;;
*) h_bad "the PUT that outlived the grace is complete or absent" "$GOT" ;;
esac
h_finish
