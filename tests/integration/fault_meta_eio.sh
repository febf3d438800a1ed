#!/usr/bin/env bash
# Fault: the metadata store's disk returns EIO. LMDB does its own I/O, so the server runs under an
# LD_PRELOAD shim (ldfault/ldfault.c, built here with cc) that fails fdatasync calls number
# NTH .. NTH+COUNT-1 on ".../meta/data.mdb" with EIO. A burst of sequential PUTs (inline and
# chunked bodies) must answer every PUT whose commit hit a failure with a 5xx, never 200, and
# answer 200 again once the failures stop. Then SIGKILL, restart without the shim: every PUT
# answered 200 reads back byte-exact, and every PUT answered 5xx is absent (404).
# LDFAULT_OP=pwrite can hit LMDB's meta-page write, which leaves LMDB in MDB_PANIC until a
# restart: fault_meta_panic.sh tests that case (see docs/storage.md, "Metadata I/O faults").
source "$(dirname "$0")/lib.sh"
h_own_server "its server runs under the ldfault shim"
source "$H_DIR/lib_fault.sh"
# One metadata environment (DATA/meta, as a cluster node keeps it): a single failing disk then
# fails the commit. With the default three copies a copy fails alone and writes go on
# (fault_meta_replicas.sh).
printf '[storage]\nmeta_replicas = 1\n' >"$H_WORK/one-copy.conf"
H_SERVER_ARGS=(--config "$H_WORK/one-copy.conf")
h_need cc

SEED=${SEED:-3400}
OP=${LDFAULT_OP:-fdatasync}
NTH=${LDFAULT_NTH:-20}
COUNT=${LDFAULT_COUNT:-5}
PUTS=${PUTS:-80}
BUCKET=metaeio-bucket
echo "seed: $SEED, failing $OP #$NTH..#$((NTH + COUNT - 1)) on meta/data.mdb, $PUTS PUTs"

ldfault_start LDFAULT_OP="$OP" LDFAULT_NTH="$NTH" LDFAULT_COUNT="$COUNT"
h_run "create bucket" s3raw mb "$BUCKET"

# One PUT per key, in order; prints "key size status" per PUT.
h_run "burst of $PUTS PUTs under the shim" env CAIRN_ENDPOINT="$H_ENDPOINT" PYTHONPATH="$H_DIR" \
    "$H_PY" - "$BUCKET" "$SEED" "$PUTS" "$H_WORK/puts.txt" <<'PY'
import random, sys
import s3raw
bucket, seed, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(out, "w") as f:
    for i in range(n):
        size = 700 if i % 2 else 70000 + i
        body = random.Random(seed * 1000 + i).randbytes(size)
        st, _, _ = s3raw.request("PUT", "/%s/k%03d" % (bucket, i), body=body)
        f.write("k%03d %d %d\n" % (i, size, st))
PY
INJECTED=$(grep -c '^ldfault: EIO' "$H_LOG")
OK=$(awk '$3 == 200' "$H_WORK/puts.txt" | wc -l)
FAILED5XX=$(awk '$3 >= 500 && $3 < 600' "$H_WORK/puts.txt" | wc -l)
OTHER=$(awk '$3 != 200 && ($3 < 500 || $3 >= 600)' "$H_WORK/puts.txt" | wc -l)
echo "EIO injected $INJECTED, PUTs 200 $OK, PUTs 5xx $FAILED5XX, other $OTHER"
h_eq "every injected failure happened" "$COUNT" "$INJECTED"
if [ "$FAILED5XX" -ge 1 ]; then
    h_ok "PUTs hitting a failed commit got a 5xx ($FAILED5XX)"
else
    h_bad "PUTs hitting a failed commit got a 5xx" "none did: $(cat "$H_WORK/puts.txt")"
fi
if [ "$FAILED5XX" -le "$INJECTED" ]; then
    h_ok "at most one failed PUT per injected failure"
else
    h_bad "at most one failed PUT per injected failure" "$FAILED5XX 5xx for $INJECTED failures"
fi
h_eq "PUTs with a status other than 200 or 5xx" 0 "$OTHER"
h_eq "the last 20 PUTs (after the failures stopped) all got 200" 20 \
    "$(tail -n 20 "$H_WORK/puts.txt" | awk '$3 == 200' | wc -l)"
h_kill9
h_start
h_run "after kill -9: 200s read back byte-exact, 5xx PUTs absent" env CAIRN_ENDPOINT="$H_ENDPOINT" \
    PYTHONPATH="$H_DIR" "$H_PY" - "$BUCKET" "$SEED" "$H_WORK/puts.txt" <<'PY'
import random, sys
import s3raw
bucket, seed, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
good = bad = 0
for line in open(path):
    key, size, put = line.split()
    i, size, put = int(key[1:]), int(size), int(put)
    st, _, body = s3raw.request("GET", "/%s/%s" % (bucket, key))
    if put == 200:
        ok = st == 200 and body == random.Random(seed * 1000 + i).randbytes(size)
    else:
        ok = st == 404
    good += ok
    bad += not ok
    if not ok:
        print("%s: PUT %d, GET %d (%d bytes)" % (key, put, st, len(body)))
print("objects checked %d, wrong %d" % (good + bad, bad))
sys.exit(1 if bad else 0)
PY
printf '%s\n' "$H_OUT" | tail -3
h_finish
