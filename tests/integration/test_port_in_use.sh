#!/usr/bin/env bash
# A second `cairn server` started on the port a running one listens on exits non-zero at once
# with a message that says so, rather than share the port through SO_REUSEPORT (two CI runs once
# collided that way, each getting half of the other's requests); the first keeps serving.
# About 1 s.
source "$(dirname "$0")/lib.sh"
h_own_server "starts a second server on its own server's port"
h_start
mkdir -p "$H_WORK/data2"
h_fails_with "a second server on port $H_PORT exits non-zero" "in use by another process" \
    timeout 30 "$CAIRN_BIN" server --data "$H_WORK/data2" --listen "127.0.0.1:$H_PORT"
answered=0
for _ in 1 2 3 4; do
    curl -fsS -o /dev/null --max-time 5 "$H_ENDPOINT/health/ready" && answered=$((answered + 1))
done
h_eq "the first server answers every request" 4 "$answered"
h_finish
