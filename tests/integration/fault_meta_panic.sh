#!/usr/bin/env bash
# Fault: an EIO on LMDB's meta-page write leaves the environment in MDB_PANIC (every later
# transaction fails until the process reopens it). The node must then refuse writes with a 5xx
# (never a 404 that would tell a client its bucket is gone, never a 200), report itself not ready
# (/health/ready 503) so an orchestrator restarts it, and after a restart serve every acknowledged
# object byte-exact and accept writes again. Uses the ldfault LD_PRELOAD shim (fault_meta_eio.sh).
source "$(dirname "$0")/lib.sh"
h_own_server "its server runs under the ldfault shim"
source "$H_DIR/lib_fault.sh"
# One metadata environment (DATA/meta, as a cluster node keeps it): a single failing disk then
# fails the commit. With the default three copies a copy fails alone and writes go on
# (fault_meta_replicas.sh).
printf '[storage]\nmeta_replicas = 1\n' >"$H_WORK/one-copy.conf"
H_SERVER_ARGS=(--config "$H_WORK/one-copy.conf")
h_need cc curl
# The meta-page write (offset below 8192) of the first commit after the arm file appears, which
# the PUT loop creates right before k02: how many commits the server makes at start or between
# requests does not move the failure.
ldfault_start LDFAULT_OP=pwrite LDFAULT_NTH=1 LDFAULT_COUNT=1 LDFAULT_OFFSET_BELOW=8192 \
    LDFAULT_ARM_FILE="$H_WORK/arm"
h_run "create bucket" s3raw mb panic-bucket
h_run "15 PUTs across the injected meta-page failure" env CAIRN_ENDPOINT="$H_ENDPOINT" \
    PYTHONPATH="$H_DIR" "$H_PY" - "$H_WORK/puts.txt" "$H_WORK/arm" <<'PY'
import sys
import s3raw
with open(sys.argv[1], "w") as f:
    for i in range(15):
        if i == 2:
            open(sys.argv[2], "w").close()
        st, _, _ = s3raw.request("PUT", "/panic-bucket/k%02d" % i, body=b"v%02d" % i * 100)
        f.write("k%02d %d\n" % (i, st))
PY
echo "PUT statuses: $(awk '{printf "%s ", $2}' "$H_WORK/puts.txt")"
first_bad=$(awk '$2 != 200 {print NR; exit}' "$H_WORK/puts.txt")
if [ -n "$first_bad" ] && awk -v f="$first_bad" 'NR >= f && ($2 < 500 || $2 > 599) {bad=1} END {exit bad}' "$H_WORK/puts.txt"; then
    h_ok "after the failure every PUT got a 5xx (from PUT #$first_bad on)"
else
    h_bad "after the failure every PUT got a 5xx" "$(cat "$H_WORK/puts.txt")"
fi
h_eq "/health/ready reports the failed store" 503 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$H_ENDPOINT/health/ready")"
h_stop
h_start
h_eq "/health/ready after a restart" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$H_ENDPOINT/health/ready")"
h_run "acknowledged PUTs read back, refused ones are absent" env CAIRN_ENDPOINT="$H_ENDPOINT" \
    PYTHONPATH="$H_DIR" "$H_PY" - "$H_WORK/puts.txt" <<'PY'
import sys
import s3raw
bad = 0
for line in open(sys.argv[1]):
    key, st = line.split()
    i = int(key[1:])
    got, _, body = s3raw.request("GET", "/panic-bucket/" + key)
    if int(st) == 200 and (got != 200 or body != b"v%02d" % i * 100):
        bad += 1
        print("lost: %s (GET %d)" % (key, got))
    elif int(st) != 200 and got != 404:
        bad += 1
        print("refused PUT visible: %s (GET %d)" % (key, got))
sys.exit(1 if bad else 0)
PY
h_run "writes work again" s3raw put panic-bucket after "$H_WORK/puts.txt"
h_finish
