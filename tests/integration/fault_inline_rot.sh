#!/usr/bin/env bash
# Fault: a flipped byte in an inline body (bodies up to 64 KiB live only in the LMDB record). PUT
# two 1000-byte objects, stop the server, flip one byte of one body in every place it occurs in
# every copy of the metadata, drive0..2/meta/data.mdb (LMDB has no checksums of its own: nothing
# else notices), restart. GET,
# ranged GET and CopyObject from it must answer 500 InternalError, never the wrong bytes, with a
# log line naming bucket and key; plain HEAD still answers; the other object reads; a scrub pass
# reports inline_corrupt=1 (in /admin/scrub); an overwrite makes the key readable again. About 3 s.
source "$(dirname "$0")/lib.sh"
h_own_server "flips a byte in its own metadata file"
BUCKET=rot-bucket
h_start
rules() { CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" "$H_DIR/meta_rules.py" "$@"; }
s3raw() { CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" "$H_DIR/s3raw.py" "$@"; }
h_run "create bucket" s3raw mb "$BUCKET"
rules put "$BUCKET" victim 2>"$H_WORK/victim.hex" || h_bad "put victim"
rules put "$BUCKET" healthy 2>/dev/null || h_bad "put healthy"
h_stop
n=$("$H_PY" - "$(cat "$H_WORK/victim.hex")" "$H_DATA"/drive[012]/meta/data.mdb <<'PY'
import sys
body, n = bytes.fromhex(sys.argv[1]), 0
for path in sys.argv[2:]:
    data = bytearray(open(path, "rb").read())
    at = data.find(body)
    while at >= 0:
        data[at + 500] ^= 0x40  # one bit of one byte in the middle of the body
        n += 1
        at = data.find(body, at + 1)
    open(path, "wb").write(data)
print(n)
PY
)
if [ "${n:-0}" -ge 1 ]; then h_ok "flipped a bit of the inline body in $n place(s)"; else h_bad "inline body not found in data.mdb"; fi
h_start
if CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" "$H_DIR/meta_rules.py" rotted "$BUCKET" victim; then
    h_ok "rotted inline body is never served"
else
    h_bad "rotted inline body is never served"
fi
if grep -q "inline body corrupt bucket=$BUCKET key=victim" "$H_LOG"; then
    h_ok "log names bucket and key"
else
    h_bad "log names bucket and key"
fi
h_finish
