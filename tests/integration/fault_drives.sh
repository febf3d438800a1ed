#!/usr/bin/env bash
# Fault: two whole drives lost. Upload 1 KiB / 300 KiB / 5 MiB objects, stop the server, delete
# every segment file of drive1 and drive4, restart: with 4+2 coding every GET must be byte-exact.
# Then drive2's segments too (three of six lost): a GET of a striped body is answered 503
# ServiceUnavailable with an S3 error (not a 200 cut short), its HEAD still 200, and the 1 KiB
# object (inline in metadata) still reads byte-exact.
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
h_stop
rm -f -- $(fault_segments drive2)
h_start
for size in 307200 5242880; do
    h_fails_with "GET $size-byte object with 3 drives lost: 503" '<Code>ServiceUnavailable</Code>' \
        s3raw get "$FAULT_BUCKET" "obj-$size" "$H_WORK/got-$size"
    h_run "HEAD $size-byte object with 3 drives lost: 200" s3raw head "$FAULT_BUCKET" "obj-$size"
done
rm -f "$H_WORK/got-1024"
h_run "GET 1024-byte object with 3 drives lost" s3raw get "$FAULT_BUCKET" obj-1024 "$H_WORK/got-1024"
h_eq "1024-byte object byte-exact (3 drives lost)" "$(h_md5 "$H_WORK/obj-1024")" \
    "$(h_md5 "$H_WORK/got-1024")"
h_finish
