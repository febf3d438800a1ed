#!/usr/bin/env bash
# test_server_signals: no signal ends `cairn server` without a log line saying so
# (cmd/server_fatal.c; cmd/server.c blocks the stop signals on its first line).
# - a stray SIGUSR1 (its default action ends a process) while serving: the log's last line names
#   the signal and the sender (this shell's pid), and the server still ends by that signal
#   (status 138) as it would have without the line;
# - SIGTERM during start-up, while the server waits for its configuration file (a FIFO, so the
#   moment is certain): the stop is logged and graceful once the server runs (status 0), where
#   the default action used to end it silently (status 143, nothing logged).
. "$(dirname "$0")/lib.sh"
h_own_server "it signals its own server"
h_need curl

h_start
kill -USR1 "$H_PID"
wait "$H_PID" 2>/dev/null # (the shell would print "User defined signal 1")
RC=$?
H_PID=""
h_eq "a stray SIGUSR1 still ends the server by that signal (status 128+10)" 138 "$RC"
LAST=$(tail -n 1 "$H_LOG")
WANT="signal USR1 (code 0, sent by pid $BASHPID uid $(id -u)): the server ends now"
grep -qF "$WANT" <<<"$LAST" && h_ok "its last log line names the signal and its sender" ||
    h_bad "its last log line names the signal and its sender" "want: $WANT"$'\n'"last: $LAST"

FIFO=$H_WORK/cairn.conf
mkfifo "$FIFO"
EARLY_LOG=$H_WORK/early.log
"$CAIRN_BIN" server --config "$FIFO" --data "$H_WORK/early" --listen "127.0.0.1:$(h_free_port)" \
    </dev/null >"$EARLY_LOG" 2>&1 &
EPID=$!
h_track "$EPID"
# the server sits in open(2) of the FIFO until a writer comes (the kernel's wait_for_partner)
for ((i = 0; i < 100; i++)); do
    grep -q wait_for_partner "/proc/$EPID/wchan" 2>/dev/null && break
    sleep 0.1 # polling the server's state
done
grep -q wait_for_partner "/proc/$EPID/wchan" 2>/dev/null ||
    h_bad "the server waits for its configuration FIFO" "wchan: $(cat "/proc/$EPID/wchan" 2>&1)"
kill -TERM "$EPID"
# open read-write: no wait for a reader, and nothing blocks should the server be gone
exec 3<>"$FIFO"
printf '[server]\nlog_level = info\n' >&3
exec 3>&-
wait "$EPID"
RC=$?
h_eq "SIGTERM during start-up: the server starts, then stops gracefully (status 0)" 0 "$RC"
grep -q "signal TERM: stopping" "$EARLY_LOG" && grep -q "level=info mod=server .* stopped$" "$EARLY_LOG" &&
    h_ok "the early stop is logged (signal TERM: stopping ... stopped)" ||
    h_bad "the early stop is logged (signal TERM: stopping ... stopped)" "$(tail -n 5 "$EARLY_LOG")"
h_finish
