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

# ldfault_start [NAME=VALUE...] [-- SERVER_FLAGS...]: build the ldfault LD_PRELOAD shim
# (ldfault/ldfault.c, needs cc) and start the server under it with those LDFAULT_* settings and
# extra server flags. An AddressSanitizer build gets its runtime first in the preload list. Later
# h_start calls (restarts) run the plain binary again.
ldfault_start() {
    local shim=$H_WORK/ldfault.so wrap=$H_WORK/cairn-ldfault real=$CAIRN_BIN settings=() asan_rt
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        settings+=("$1")
        shift
    done
    [ $# -eq 0 ] || shift
    if ! cc -std=c11 -O2 -shared -fPIC -o "$shim" "$H_DIR/ldfault/ldfault.c" -ldl; then
        echo "FAIL - building the ldfault shim"
        echo "FAIL $H_NAME"
        exit 1
    fi
    local preload=$shim
    asan_rt=$(ldd "$real" 2>/dev/null | awk '/libasan/ {print $3}')
    [ -n "$asan_rt" ] && preload="$asan_rt $shim"
    printf '#!/bin/sh\nLD_PRELOAD="%s" %s exec "%s" "$@" %s\n' "$preload" "${settings[*]}" \
        "$real" "$*" >"$wrap"
    chmod +x "$wrap"
    CAIRN_BIN=$wrap
    h_start
    CAIRN_BIN=$real
}

# fault_tmpfs MIB NAME: mount a MIB MiB tmpfs named NAME on $H_DATA (a small disk to fill) and
# unmount it when the test exits. Fails (returns 1) where it cannot mount, i.e. when not root.
fault_tmpfs() {
    mkdir -p "$H_DATA"
    if [ "$(id -u)" != 0 ] || ! mount -t tmpfs -o "size=${1}m" "$2" "$H_DATA" 2>/dev/null; then
        return 1
    fi
    trap fault_tmpfs_cleanup EXIT
}

fault_tmpfs_cleanup() {
    if [ -n "$H_PID" ]; then
        kill -KILL "$H_PID" 2>/dev/null
        wait "$H_PID" 2>/dev/null
        H_PID=""
    fi
    umount -l "$H_DATA" 2>/dev/null
    h_cleanup
}

# fault_p99_max: the p99 bound (ms) of a loop-latency test (fault_slow_drive, fault_slow_read):
# SLOW_P99_MS when set, else 30, or 150 against the sanitizer build, which spends 3-5x the CPU per
# request (measured p99 1.7-4.8 ms on a shared 2-core machine, 36 ms at load 25); each test's
# maximum still catches any wait on its slow drive.
fault_p99_max() {
    if grep -q libasan <<<"$(ldd "$CAIRN_BIN" 2>/dev/null)"; then
        echo "${SLOW_P99_MS:-150}"
    else
        echo "${SLOW_P99_MS:-30}"
    fi
}
