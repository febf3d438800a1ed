#!/usr/bin/env bash
# Fault: two whole drives lost. Upload 1 KiB / 300 KiB / 5 MiB objects, stop the server, delete
# every segment file of drive1 and drive4, restart: with 4+2 coding every GET must be byte-exact.
source "$(dirname "$0")/lib.sh"
h_own_server "deletes its own drive files while the server is stopped"
source "$H_DIR/lib_fault.sh"
h_start
fault_upload 1100
fault_verify "healthy"
h_stop
mapfile -t segs < <(fault_segments drive1 drive4)
if [ ${#segs[@]} -gt 0 ]; then
    h_ok "found ${#segs[@]} segment files on drive1 and drive4"
else
    h_bad "found segment files on drive1 and drive4" "$(find "$H_DATA" -maxdepth 3 | head -40)"
fi
rm -f -- "${segs[@]}"
h_start
fault_verify "drive1+drive4 segments deleted"
fault_verify "second read"
h_finish
