#!/usr/bin/env bash
# test_harness_pids: lib.sh's cleanup kills the processes a test tracked, never a process that got
# one of their pids after they exited. A test that ran a local cluster tracks every node's pid,
# the stopped ones too, and run.sh runs tests two at a time: a SIGKILL at its end to a recycled
# pid could end another test's server or node without a log line (test_cluster_tls_rolling once
# lost a node that way, or by something like it). Each case runs a child shell that sources
# lib.sh, tracks, and exits (its EXIT trap is the cleanup under test):
# - a tracked process that still runs is killed;
# - a tracked process that exited, whose pid the kernel then gave to a new process (forced with
#   /proc/sys/kernel/ns_last_pid, hence root), leaves the new process alone;
# - h_track PID WORD (a pid read from a pid file) does not track a process whose command line
#   lacks WORD.
. "$(dirname "$0")/lib.sh"
h_own_server "it tests the harness, with no server"
if ! [ -w /proc/sys/kernel/ns_last_pid ]; then
    echo "SKIP $H_NAME: recycling a pid needs a writable /proc/sys/kernel/ns_last_pid (root)"
    exit 77
fi

# child SCRIPT: bash sourcing lib.sh runs SCRIPT, then exits 0 (KEEP=0: its temp dir goes)
child() { KEEP=0 bash -c ". '$H_DIR/lib.sh'; $1; exit 0" child >/dev/null 2>&1; }
# spawn: the pid of a new `sleep 300` that is not this shell's job (no "Killed" notices)
spawn() { sh -c 'sleep 300 </dev/null >/dev/null 2>&1 & echo $!'; }
alive() { [ "$(sed -E 's/^[0-9]+ \(.*\) (.).*/\1/' "/proc/$1/stat" 2>/dev/null)" = S ]; }

A=$(spawn)
h_track "$A"
child "h_track $A"
for ((i = 0; i < 50; i++)); do alive "$A" || break; sleep 0.1; done
alive "$A" && h_bad "a tracked process that still runs is killed at exit" "pid $A runs" ||
    h_ok "a tracked process that still runs is killed at exit"

# In the child: track a sleep, end it, then start sleeps until one gets its pid (ns_last_pid
# names the pid before the next one; another fork on the machine may come first: try again).
# When another process took the pid meanwhile (a test in the other lane forks all the time; a
# CI run once lost all 100 tries to one that kept it), start over with a new tracked sleep.
# Start times count clock ticks (10 ms): the new one starts a tick later at least, as it would
# in earnest, where the kernel hands a pid out again only after going round all of them.
child "for ((r = 0; r < 20; r++)); do
        sleep 300 & A=\$!; h_track \$A; kill -KILL \$A; wait \$A; sleep 0.05
        for ((t = 0; t < 20; t++)); do
            [ -e /proc/\$A ] && break
            echo \$((A - 1)) >/proc/sys/kernel/ns_last_pid
            sleep 300 & B=\$!
            [ \$B = \$A ] && break 2
            kill -KILL \$B; wait \$B
        done
    done
    echo \$A \$B >'$H_WORK/pids'"
read -r A B <"$H_WORK/pids"
h_track "$B"
if [ "$A" != "$B" ]; then
    h_bad "a new process got the tracked pid (ns_last_pid)" "tracked $A, new $B"
else
    alive "$B" && h_ok "the process that got a tracked pid after it exited survives the cleanup" ||
        h_bad "the process that got a tracked pid after it exited survives the cleanup" \
            "pid $B (a sleep started after the tracked one ended) was killed"
fi

C=$(spawn)
h_track "$C"
child "h_track $C no-such-word-in-its-command-line"
alive "$C" && h_ok "h_track PID WORD skips a process whose command line lacks WORD" ||
    h_bad "h_track PID WORD skips a process whose command line lacks WORD" "pid $C was killed"
h_finish
