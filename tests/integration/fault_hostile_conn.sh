#!/usr/bin/env bash
# Fault: hostile connections against a server with 256 descriptors (see hostile_conn.py).
#   1. max_connections 100: 400 connections sending half a head; a signed PUT/GET still succeeds
#      within seconds (idle and half-head connections are shed for it).
#   2. a head trickled a byte a second ends at the 3 s head deadline with 408 or a close.
#   3. bytes after the final aws-chunked chunk: a clean 4xx or a close, nothing stored.
#   4. max_connections far above the descriptors: 400 half heads drive accept() into EMFILE; the
#      server sheds and keeps serving, and logs a summary, not one line per failed accept.
# The server keeps serving other clients throughout and exits 0 on SIGTERM.
source "$(dirname "$0")/lib.sh"
h_own_server "limits its own server's descriptors and connections"

run_py() {
    local desc=$1
    shift
    if CAIRN_ENDPOINT=$H_ENDPOINT PYTHONPATH=$H_DIR timeout 120 "$H_PY" "$H_DIR/hostile_conn.py" "$@"; then
        h_ok "$desc"
    else
        h_bad "$desc"
    fi
}

conf=$H_WORK/server.conf
printf '[server]\nmax_connections = 100\nheader_timeout_ms = 3000\nthreads = 2\n' >"$conf"
H_SERVER_ARGS=(--config "$conf")
H_ULIMIT="-n 256"
h_start
if grep -q "RLIMIT_NOFILE 256, max_connections 100" "$H_LOG"; then
    h_ok "start-up logs the descriptor limit and max_connections"
else
    h_bad "start-up logs the descriptor limit and max_connections" "$(grep -i rlimit "$H_LOG")"
fi
run_py "400 half-head connections past max_connections" flood 400
run_py "slow-header client ended by the head deadline" slow-header 3
run_py "bytes after the final aws-chunked chunk" after-last-chunk
run_py "the server still serves" serves
h_stop

printf '[server]\nmax_connections = 5000\nheader_timeout_ms = 3000\nthreads = 2\n' >"$conf"
before=$(grep -c "accept" "$H_LOG")
h_start
run_py "400 half-head connections past the descriptor limit (EMFILE)" flood 400
run_py "the server still serves after EMFILE" serves
lines=$(($(grep -c "accept" "$H_LOG") - before))
if [ "$lines" -le 10 ]; then
    h_ok "accept failures logged as a summary ($lines lines)"
else
    h_bad "accept failures logged as a summary" "$lines log lines mention accept"
fi

# soft limit below the hard one: the server raises it
h_stop
hard=$(ulimit -H -n)
if [ "$hard" != unlimited ] && [ "$hard" -gt 200 ]; then
    H_SERVER_ARGS=()
    H_ULIMIT="-S -n 200"
    h_start
    if grep -q "RLIMIT_NOFILE $hard," "$H_LOG"; then
        h_ok "the soft descriptor limit is raised to the hard limit ($hard)"
    else
        h_bad "the soft descriptor limit is raised to the hard limit ($hard)" "$(grep -i rlimit "$H_LOG")"
    fi
fi
h_finish
