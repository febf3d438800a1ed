#!/usr/bin/env bash
# systemd's Type=notify protocol (issue 12, scope 6; common/cm_sdnotify.h), with a fake systemd:
# a python3 unix datagram socket named by NOTIFY_SOCKET that records every message.
# - a path socket: READY=1 once /health/ready answers 200; SIGHUP gives RELOADING=1 (with
#   MONOTONIC_USEC) then READY=1; SIGTERM gives STOPPING=1, the last message;
# - an abstract socket ("@name") with WATCHDOG_USEC: READY=1, then WATCHDOG=1 every half period;
#   WATCHDOG_PID naming another process: no WATCHDOG=1 (the watchdog is not this process's);
# - NOTIFY_SOCKET that is no socket address: the server still serves, and says why it is silent.
source "$(dirname "$0")/lib.sh"

h_own_server "it sets the server's environment (NOTIFY_SOCKET)"
h_need curl

# listen ADDR OUT: record each datagram on ADDR as one line of OUT (newlines shown as '|')
listen() {
    "$H_PY" - "$1" "$2" <<'PY' &
import socket, sys
addr, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
open(out + ".bound", "w").close()
with open(out, "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", "|") + "\n")
PY
    LISTENER=$!
    h_track "$LISTENER"
    for ((i = 0; i < 100; i++)); do
        [ -e "$2.bound" ] && return 0
        sleep 0.05 # waiting for the listener to bind
    done
    h_bad "the fake notify socket binds" "$1"
}

# wait_msg FILE ERE: FILE gains a line matching ERE within 10 s
wait_msg() {
    local i
    for ((i = 0; i < 100; i++)); do
        grep -Eq -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1 # polling the recorded messages
    done
    return 1
}

expect() {
    local desc=$1
    shift
    if "$@"; then h_ok "$desc"; else h_bad "$desc" "$(cat "$MSGS" 2>/dev/null)"; fi
}

# ---- a path socket: ready, reload, stop ----
MSGS=$H_WORK/path.msgs
listen "$H_WORK/notify.sock" "$MSGS"
export NOTIFY_SOCKET=$H_WORK/notify.sock
h_start
unset NOTIFY_SOCKET
expect "READY=1 sent once the server serves" wait_msg "$MSGS" '^READY=1\|STATUS=serving S3$'
h_eq "READY=1 is the first message" "READY=1|STATUS=serving S3" "$(head -1 "$MSGS")"
kill -HUP "$H_PID"
expect "SIGHUP: RELOADING=1 with MONOTONIC_USEC" wait_msg "$MSGS" '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$'
expect "SIGHUP: READY=1 after the reload" wait_msg "$MSGS" '^READY=1$'
h_eq "reload messages in order" "RELOADING=1 READY=1" \
    "$(sed -n '2,3p' "$MSGS" | sed 's/|.*//' | tr '\n' ' ' | sed 's/ $//')"
h_stop
expect "SIGTERM: STOPPING=1" wait_msg "$MSGS" '^STOPPING=1$'
h_eq "STOPPING=1 is the last message" "STOPPING=1" "$(tail -1 "$MSGS")"
h_eq "no watchdog without WATCHDOG_USEC" 0 "$(grep -c WATCHDOG "$MSGS")"
kill "$LISTENER" 2>/dev/null

# ---- an abstract socket with a watchdog of 400 ms: WATCHDOG=1 every 200 ms ----
MSGS=$H_WORK/abstract.msgs
ABSTRACT=@cairn-test-notify-$$-$RANDOM
listen "$ABSTRACT" "$MSGS"
export NOTIFY_SOCKET=$ABSTRACT WATCHDOG_USEC=400000
h_start
unset NOTIFY_SOCKET WATCHDOG_USEC
expect "abstract socket: READY=1" wait_msg "$MSGS" '^READY=1'
expect "abstract socket: WATCHDOG=1 keep-alives" wait_msg "$MSGS" '^WATCHDOG=1$'
n0=$(grep -c '^WATCHDOG=1$' "$MSGS")
sleep 1 # counting the keep-alives of one second (period 200 ms)
n1=$(grep -c '^WATCHDOG=1$' "$MSGS")
if [ $((n1 - n0)) -ge 3 ] && [ $((n1 - n0)) -le 7 ]; then
    h_ok "WATCHDOG=1 every half period ($((n1 - n0)) in 1 s)"
else
    h_bad "WATCHDOG=1 every half period" "$((n1 - n0)) in 1 s (expected about 5)"
fi
h_stop
kill "$LISTENER" 2>/dev/null

# ---- WATCHDOG_PID of another process: not this one's watchdog ----
MSGS=$H_WORK/otherpid.msgs
listen "$H_WORK/other.sock" "$MSGS"
export NOTIFY_SOCKET=$H_WORK/other.sock WATCHDOG_USEC=200000 WATCHDOG_PID=1
h_start
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
expect "WATCHDOG_PID=1: READY=1" wait_msg "$MSGS" '^READY=1'
sleep 0.5 # two and a half periods in which no keep-alive may come
h_eq "WATCHDOG_PID of another process: no WATCHDOG=1" 0 "$(grep -c WATCHDOG "$MSGS")"
h_stop
kill "$LISTENER" 2>/dev/null

# ---- an unusable NOTIFY_SOCKET: serve anyway, say so ----
export NOTIFY_SOCKET=relative/path
h_start
unset NOTIFY_SOCKET
if grep -q "NOTIFY_SOCKET is not a usable socket address" "$H_LOG"; then
    h_ok "an unusable NOTIFY_SOCKET is reported and the server serves"
else
    h_bad "an unusable NOTIFY_SOCKET is reported" "$(h_server_log_tail)"
fi
h_finish
