#!/usr/bin/env bash
# /metrics and the JSON access log (issue 12, scope 3; docs/metrics.md): the scrape parses with a
# strict Prometheus text-format parser (metrics.py, which first proves it refuses malformed text),
# its counters move under a boto3 load (requests by operation and code, latency histograms with
# monotone buckets, bytes, connections, blobstore appends and group commits), no label names a
# bucket or key; every access-log line is JSON, hostile keys (quotes, newlines, control bytes,
# braces, non-ASCII) come back intact, request ids match the responses'; after logrotate's
# rename + SIGHUP the server writes to a new file and the renamed one stays whole.
source "$(dirname "$0")/lib.sh"

"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_own_server "it reads the server's access log and sends it SIGHUP"
LOG=$H_WORK/access.log
export CAIRN_LOG_ACCESS_FILE=$LOG
h_start

h_run "metrics parser self-test" "$H_PY" "$H_DIR/metrics.py" selftest
h_run "first scrape parses" "$H_PY" "$H_DIR/metrics.py" scrape "$H_ENDPOINT"
if "$H_PY" "$H_DIR/metrics.py" load "$H_ENDPOINT" "$LOG"; then
    h_ok "counters move under load; access log lines are JSON with hostile keys intact"
else
    h_bad "counters move under load; access log lines are JSON with hostile keys intact"
fi

# logrotate: rename, SIGHUP, then the next requests go to a new file at the configured path
lines_before=$(wc -l <"$LOG")
mv "$LOG" "$LOG.1"
kill -HUP "$H_PID"
for ((i = 0; i < 100; i++)); do
    curl -fsS -o /dev/null "$H_ENDPOINT/health/live"
    [ -s "$LOG" ] && break
    sleep 0.1 # polling for the drain thread's write, bounded to 10 s
done
if [ -s "$LOG" ]; then h_ok "SIGHUP: a new access log at the configured path"; else
    h_bad "SIGHUP: a new access log at the configured path" "$(ls -l "$H_WORK")"
fi
h_run "the renamed log is whole JSON" "$H_PY" "$H_DIR/metrics.py" log "$LOG.1" "$lines_before"
h_run "the new log is JSON" "$H_PY" "$H_DIR/metrics.py" log "$LOG" 1
if grep -q '"op":"Health"' "$LOG"; then h_ok "requests after SIGHUP are in the new log"; else
    h_bad "requests after SIGHUP are in the new log" "$(head -3 "$LOG")"
fi
h_finish
