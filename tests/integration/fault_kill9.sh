#!/usr/bin/env bash
# Fault: crash during writes. Four writers PUT distinct keys; once at least 40 PUTs have been
# acknowledged the server gets SIGKILL mid-burst. After a restart every PUT that was answered 200
# must read back byte-exact (acknowledged means durable). Writes in flight may or may not exist.
source "$(dirname "$0")/lib.sh"
h_own_server "kills and restarts its own server"
source "$H_DIR/lib_fault.sh"
h_start
SEED=3300
ACK=$H_WORK/acked.txt
: >"$ACK"
h_run "create bucket" s3raw mb "$FAULT_BUCKET"
CAIRN_ENDPOINT=$H_ENDPOINT PYTHONPATH=$H_DIR "$H_PY" "$H_DIR/kill9_writer.py" "$FAULT_BUCKET" \
    "$SEED" "$ACK" &
writer=$!
h_track "$writer"
for ((i = 0; i < 1200; i++)); do # poll the ack count for up to 120 s
    [ "$(wc -l <"$ACK")" -ge 40 ] && break
    kill -0 "$writer" 2>/dev/null || break
    sleep 0.1
done
acked_before=$(wc -l <"$ACK")
h_kill9
wait "$writer"
acked=$(wc -l <"$ACK")
if [ "$acked_before" -ge 40 ]; then
    h_ok "$acked PUTs acknowledged before the crash"
else
    h_bad "at least 40 PUTs acknowledged before the crash" "only $acked_before"
fi
h_start
if h_run "every acknowledged PUT is readable byte-exact" env CAIRN_ENDPOINT="$H_ENDPOINT" \
    PYTHONPATH="$H_DIR" "$H_PY" - "$FAULT_BUCKET" "$SEED" "$ACK" <<'PY'; then
import hashlib, sys
import kill9_writer, s3raw
bucket, seed, ack = sys.argv[1], int(sys.argv[2]), sys.argv[3]
bad = 0
lines = open(ack).read().split("\n")
for line in filter(None, lines):
    key, size, md5 = line.split()
    status, _, body = s3raw.request("GET", "/%s/%s" % (bucket, key))
    got = hashlib.md5(body).hexdigest()
    if status != 200 or got != md5 or len(body) != int(size):
        bad += 1
        print("lost or damaged: %s status %d size %d md5 %s" % (key, status, len(body), got))
print("%d acknowledged keys checked, %d bad" % (len(list(filter(None, lines))), bad))
sys.exit(1 if bad else 0)
PY
    h_ok "verified: $(tail -1 <<<"$H_OUT")"
fi
h_finish
