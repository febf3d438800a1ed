#!/usr/bin/env bash
# Fault: offline check. Upload objects; `cairn fsck` must refuse the drives while the server holds
# them (exit 2); after a clean stop it reports every drive clean (exit 0). Then bit rot in the data
# of drive1 and a torn tail on drive3: fsck finds them (exit 1), --repair rewrites the damaged
# segments, a second fsck reports only the blobs that lost data, and after a restart every GET is
# byte-exact (parity rebuilds what repair had to drop).
source "$(dirname "$0")/lib.sh"
h_own_server "runs cairn fsck on its own data dir"
source "$H_DIR/lib_fault.sh"
fsck() { "$CAIRN_BIN" fsck --data "$H_DATA" "$@"; }
h_start
fault_upload 3100
H_OUT=$(fsck 2>&1)
h_eq "fsck refuses drives a running server holds (exit 2)" 2 "$?"
h_stop
if h_run "fsck of the stopped node is clean" fsck; then
    printf '%s\n' "$H_OUT"
fi
mapfile -t segs < <(fault_segments drive1)
mapfile -t tail_segs < <(fault_segments drive3 | sort | tail -1)
if h_run "rot a data block on drive1, tear the tail of drive3" "$H_PY" - "${tail_segs[0]:-}" \
    "${segs[@]}" <<'PY'; then
import os, sys
torn, rot = sys.argv[1], sys.argv[2:]
for path in rot:
    size = os.path.getsize(path)
    if size > 4096:
        with open(path, "r+b") as f:
            f.seek(size // 2)
            b = f.read(1)
            f.seek(size // 2)
            f.write(bytes([b[0] ^ 0x20]))
with open(torn, "ab") as f:
    f.write(b"CBRC" + b"\x01" * 40)
print("rotted", len(rot), "segments; tore", torn)
PY
    printf '%s\n' "$H_OUT"
fi
H_OUT=$(fsck 2>&1)
rc=$?
printf '%s\n' "$H_OUT"
h_eq "fsck finds the damage (exit 1)" 1 "$rc"
if grep -q '^drive3 .* 44  PROBLEMS' <<<"$H_OUT"; then
    h_ok "fsck reports drive3's 44 torn bytes"
else
    h_bad "fsck reports drive3's 44 torn bytes" "$H_OUT"
fi
H_OUT=$(fsck --repair 2>&1)
printf '%s\n' "$H_OUT"
if grep -q 'segments rewritten' <<<"$H_OUT"; then
    h_ok "fsck --repair rewrote the damaged segments"
else
    h_bad "fsck --repair rewrote the damaged segments" "$H_OUT"
fi
H_OUT=$(fsck 2>&1)
rc=$?
if printf '%s\n' "$H_OUT" | awk '$1 ~ /^drive/ && ($8 + $9 + $10 + $12 + $13) != 0 { bad = 1 } END { exit bad }'; then
    h_ok "after repair: no bad headers, regions, blocks, overlaps or torn bytes (exit $rc)"
else
    h_bad "after repair: no bad headers, regions, blocks, overlaps or torn bytes" "$H_OUT"
fi
h_start
fault_verify "after fsck --repair"
h_finish
