# shellcheck shell=bash
# Helpers shared by the fault tests (sourced after lib.sh): upload a fixed set of objects with the
# dependency-free signed client s3raw.py, and read them all back comparing MD5s.

FAULT_SIZES=(1024 307200 5242880) # 1 KiB (inline in metadata), 300 KiB, 5 MiB
FAULT_BUCKET=fault-bucket

s3raw() { CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" "$H_DIR/s3raw.py" "$@"; }

# fault_upload SEED: create the bucket and one object per size; remembers their MD5s.
fault_upload() {
    local seed=$1 size
    echo "seed: $seed"
    h_run "create bucket" s3raw mb "$FAULT_BUCKET"
    for size in "${FAULT_SIZES[@]}"; do
        h_gen "$H_WORK/obj-$size" "$size" $((seed + size))
        h_run "put $size-byte object" s3raw put "$FAULT_BUCKET" "obj-$size" "$H_WORK/obj-$size"
    done
}

# fault_verify WHAT: GET every object and require byte-exact content.
fault_verify() {
    local what=$1 size
    for size in "${FAULT_SIZES[@]}"; do
        rm -f "$H_WORK/got-$size"
        if h_run "GET $size-byte object ($what)" s3raw get "$FAULT_BUCKET" "obj-$size" \
            "$H_WORK/got-$size"; then
            h_eq "$size-byte object byte-exact ($what)" "$(h_md5 "$H_WORK/obj-$size")" \
                "$(h_md5 "$H_WORK/got-$size")"
        fi
    done
}

# fault_segments DRIVE...: list the blobstore segment files of the given drive folders.
fault_segments() {
    local d
    for d in "$@"; do
        find "$H_DATA/$d" -type f -name 'seg-*.cbs' 2>/dev/null
    done
}

# fault_mismatches BUCKET KEY...: GET each key and compare with $H_WORK/KEY (the bytes PUT);
# prints how many are missing or differ.
fault_mismatches() {
    local bucket=$1 key bad=0
    shift
    for key in "$@"; do
        rm -f "$H_WORK/got"
        if ! s3raw get "$bucket" "$key" "$H_WORK/got" >/dev/null 2>&1 ||
            ! cmp -s "$H_WORK/$key" "$H_WORK/got"; then
            bad=$((bad + 1))
        fi
    done
    echo "$bad"
}

# fault_ldfault_bin OP NTH COUNT: build the ldfault LD_PRELOAD shim (ldfault/ldfault.c) and write a
# wrapper that runs $CAIRN_BIN under it, failing calls NTH .. NTH+COUNT-1 of OP on meta/data.mdb
# with EIO; prints the wrapper's path (empty, and a FAIL line, when the shim does not build).
fault_ldfault_bin() {
    local op=$1 nth=$2 count=$3 shim=$H_WORK/ldfault.so wrap=$H_WORK/cairn-ldfault-$1-$2 asan_rt
    if ! cc -std=c11 -O2 -shared -fPIC -o "$shim" "$H_DIR/ldfault/ldfault.c" -ldl; then
        echo "FAIL - building the ldfault shim" >&2
        return 1
    fi
    local preload=$shim
    # An AddressSanitizer build needs its runtime first in the preload list.
    asan_rt=$(ldd "$CAIRN_BIN" 2>/dev/null | awk '/libasan/ {print $3}')
    [ -n "$asan_rt" ] && preload="$asan_rt $shim"
    cat >"$wrap" <<SH
#!/bin/sh
LD_PRELOAD="$preload" LDFAULT_OP=$op LDFAULT_NTH=$nth LDFAULT_COUNT=$count exec "$CAIRN_BIN" "\$@"
SH
    chmod +x "$wrap"
    echo "$wrap"
}
