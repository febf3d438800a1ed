#!/usr/bin/env bash
# Fault: bit rot on two drives. Upload 1 KiB / 300 KiB / 5 MiB objects, stop the server, invert
# 64-byte runs at 25%, 50% and 75% of every segment file of drive0 and drive2 (data cells of a
# systematic code, so the healthy read path meets the damage), restart: every GET must be
# byte-exact (checksums catch the damage, parity rebuilds it).
source "$(dirname "$0")/lib.sh"
h_own_server "corrupts its own drive files while the server is stopped"
source "$H_DIR/lib_fault.sh"
h_start
fault_upload 2200
h_stop
mapfile -t segs < <(fault_segments drive0 drive2)
if [ ${#segs[@]} -gt 0 ]; then
    h_ok "found ${#segs[@]} segment files on drive0 and drive2"
else
    h_bad "found segment files on drive0 and drive2" "$(find "$H_DATA" -maxdepth 3 | head -40)"
fi
if h_run "flip bytes in the middle of the segment files" "$H_PY" - "${segs[@]}" <<'PY'; then
import os, sys
for path in sys.argv[1:]:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        for frac in (0.25, 0.5, 0.75):
            off = int(size * frac)
            f.seek(off)
            run = f.read(64)
            f.seek(off)
            f.write(bytes(b ^ 0xFF for b in run))
    print(path, size)
PY
    printf '%s\n' "$H_OUT"
fi
h_start
fault_verify "drive0+drive2 corrupted"
fault_verify "second read"
h_finish
