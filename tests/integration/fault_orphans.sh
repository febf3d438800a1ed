#!/usr/bin/env bash
# Fault: a metadata commit whose outcome is unknown. The ldfault shim fails LMDB's meta-page write
# during a run of 100 KB PUTs (bodies stored as stripes, not inline): LMDB panics, the PUT answers
# 5xx, and the gateway must keep the body's blobs (the record may be on disk). With the server
# stopped, `cairn fsck --grace 0` reports those blobs as orphans (exit 1) and leaves them;
# `--repair` leaves them too while DATA/cluster.node marks the data a cluster node's, then,
# without it, deletes them; a last fsck is clean; after a restart every acknowledged object reads
# back byte-exact and the refused ones are absent.
source "$(dirname "$0")/lib.sh"
h_own_server "its server runs under the ldfault shim"
source "$H_DIR/lib_fault.sh"
h_need cc
# One metadata environment (DATA/meta): the panic then fails the commit; with the default three
# copies the panicking copy fails alone and the PUT succeeds (fault_meta_replicas.sh).
printf '[storage]\nmeta_replicas = 1\n' >"$H_WORK/one-copy.conf"
H_SERVER_ARGS=(--config "$H_WORK/one-copy.conf")
fsck() { "$CAIRN_BIN" fsck --data "$H_DATA" "$@"; }
# The meta-page write (offset below 8192) of the first commit after the arm file appears, which
# the PUT loop creates right before k02 (fault_meta_panic.sh says why).
ldfault_start LDFAULT_OP=pwrite LDFAULT_NTH=1 LDFAULT_COUNT=1 LDFAULT_OFFSET_BELOW=8192 \
    LDFAULT_ARM_FILE="$H_WORK/arm"
h_run "create bucket" s3raw mb orphan-bucket
h_run "12 PUTs of 100 KB across the injected meta-page failure" env CAIRN_ENDPOINT="$H_ENDPOINT" \
    PYTHONPATH="$H_DIR" "$H_PY" - "$H_WORK/puts.txt" "$H_WORK/arm" <<'PY'
import random, sys
import s3raw
with open(sys.argv[1], "w") as f:
    for i in range(12):
        if i == 2:
            open(sys.argv[2], "w").close()
        body = random.Random(i).randbytes(100000)
        st, _, _ = s3raw.request("PUT", "/orphan-bucket/k%02d" % i, body=body)
        f.write("k%02d %d\n" % (i, st))
PY
echo "PUT statuses: $(awk '{printf "%s ", $2}' "$H_WORK/puts.txt")"
if grep -q 'commit outcome unknown' "$H_LOG"; then
    h_ok "the gateway kept the blobs of the PUT whose commit outcome is unknown"
else
    h_bad "the gateway kept the blobs of the PUT whose commit outcome is unknown" \
        "$(grep -E 'ldfault|md |commit' "$H_LOG" | tail -5)"
fi
h_stop
H_OUT=$(fsck --grace 0 2>&1)
rc=$?
printf '%s\n' "$H_OUT"
h_eq "fsck finds the orphans (exit 1)" 1 "$rc"
norph=$(printf '%s\n' "$H_OUT" | grep -c '^drive[0-9]* *orphans: 1 blobs')
if [ "$norph" -ge 5 ]; then
    h_ok "one orphan on each of the $norph drives holding the refused body's cells"
else
    h_bad "one orphan on each drive holding the refused body's cells" "$H_OUT"
fi
H_OUT=$(fsck 2>&1)
rc=$?
printf '%s\n' "$H_OUT" | grep orphans
h_eq "within the grace period they are only noted (exit 0)" 0 "$rc"
echo n9 >"$H_DATA/cluster.node" # as `cairn server` marks a cluster node's data
H_OUT=$(fsck --grace 0 --repair 2>&1)
# here-strings, not printf | grep -q: under pipefail a grep that exits at its match makes bash's
# printf (one write per line) die of SIGPIPE and the pipeline fail (2 in 300 here)
if grep -q "reported, not deleted" <<<"$H_OUT" && ! grep -q reclaimed <<<"$H_OUT"; then
    h_ok "on a cluster node's data (cluster.node) --repair deletes no orphan"
else
    h_bad "on a cluster node's data (cluster.node) --repair deletes no orphan" "$H_OUT"
fi
rm -f "$H_DATA/cluster.node"
H_OUT=$(fsck --grace 0 --repair 2>&1)
rc=$?
printf '%s\n' "$H_OUT" | grep orphans
h_eq "fsck --repair reclaims them (exit 0)" 0 "$rc"
if [ "$(printf '%s\n' "$H_OUT" | grep -c 'orphans: 1 blobs.*(reclaimed)')" -ge 5 ]; then
    h_ok "--repair reports the orphans reclaimed"
else
    h_bad "--repair reports the orphans reclaimed" "$H_OUT"
fi
H_OUT=$(fsck --grace 0 2>&1)
rc=$?
if [ "$rc" = 0 ] && ! grep -q orphans <<<"$H_OUT"; then
    h_ok "a last fsck is clean and finds no orphan"
else
    h_bad "a last fsck is clean and finds no orphan" "$H_OUT"
fi
h_start
h_run "acknowledged PUTs read back, refused ones are absent" env CAIRN_ENDPOINT="$H_ENDPOINT" \
    PYTHONPATH="$H_DIR" "$H_PY" - "$H_WORK/puts.txt" <<'PY'
import random, sys
import s3raw
bad = 0
for line in open(sys.argv[1]):
    key, st = line.split()
    i = int(key[1:])
    got, _, body = s3raw.request("GET", "/orphan-bucket/" + key)
    if int(st) == 200 and (got != 200 or body != random.Random(i).randbytes(100000)):
        bad += 1
        print("lost: %s (GET %d)" % (key, got))
    elif int(st) != 200 and got != 404:
        bad += 1
        print("refused PUT visible: %s (GET %d)" % (key, got))
sys.exit(1 if bad else 0)
PY
h_finish
