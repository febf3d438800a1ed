#!/usr/bin/env bash
# Fault: a full disk. The data dir is a 40 MiB tmpfs holding a 6 MiB ballast file. 1 MiB PUTs go
# in until one fails: it must fail with 507 InsufficientStorage, every PUT acknowledged before it
# must read back byte-exact while the disk is full, and the store must stay consistent (fsck clean
# after a stop). Deleting the ballast frees space: PUTs work again. Needs root to mount the tmpfs;
# without it the test says so and passes (tests/unit/test_blobstore_compact.c covers the store).
source "$(dirname "$0")/lib.sh"
h_own_server "its server runs on a small tmpfs"
source "$H_DIR/lib_fault.sh"
if ! fault_tmpfs 40 cairn-enospc; then
    h_ok "cannot mount a tmpfs here (not root?): the full-disk check runs in test_blobstore_compact"
    h_finish
fi
dd if=/dev/zero of="$H_DATA/ballast" bs=1M count=6 status=none
h_start
h_run "create bucket" s3raw mb "$FAULT_BUCKET"
stored=0
status=""
for ((i = 0; i < 60; i++)); do
    h_gen "$H_WORK/obj-$i" 1048576 $((4100 + i))
    if ! out=$(s3raw put "$FAULT_BUCKET" "obj-$i" "$H_WORK/obj-$i" 2>&1); then
        status=$out
        break
    fi
    stored=$((stored + 1))
done
echo "stored $stored objects of 1 MiB before the disk was full; then: ${status:0:200}"
if [ "$stored" -ge 5 ] && [ "$stored" -lt 60 ]; then
    h_ok "$stored PUTs fit before the disk was full"
else
    h_bad "the disk fills after a few PUTs" "stored $stored"
fi
case "$status" in
507*InsufficientStorage*) h_ok "the PUT that did not fit got 507 InsufficientStorage" ;;
*) h_bad "the PUT that did not fit got 507 InsufficientStorage" "$status" ;;
esac
verify_stored() {
    local i bad=0
    for ((i = 0; i < stored; i++)); do
        s3raw get "$FAULT_BUCKET" "obj-$i" "$H_WORK/got" >/dev/null 2>&1 || bad=$((bad + 1))
        [ "$(h_md5 "$H_WORK/got")" = "$(h_md5 "$H_WORK/obj-$i")" ] || bad=$((bad + 1))
        rm -f "$H_WORK/got"
    done
    h_eq "all $stored acknowledged objects byte-exact ($1)" 0 "$bad"
}
verify_stored "disk full"
rm -f "$H_DATA/ballast"
h_gen "$H_WORK/after" 1048576 4999
h_run "PUT works again once space is freed" s3raw put "$FAULT_BUCKET" after "$H_WORK/after"
h_stop
if h_run "fsck after the full disk: clean" "$CAIRN_BIN" fsck --data "$H_DATA"; then
    printf '%s\n' "$H_OUT"
fi
h_start
verify_stored "after restart"
h_finish
