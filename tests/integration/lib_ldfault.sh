# shellcheck shell=bash
# ldfault_wrapper SHIM_ENV [SERVER_ARGS...]: build the ldfault LD_PRELOAD shim (ldfault/ldfault.c)
# and write $H_WORK/cairn-ldfault, a wrapper that runs $CAIRN_BIN under it with the environment
# SHIM_ENV (e.g. "LDFAULT_OP=fdatasync LDFAULT_DELAY_MS=1000") and SERVER_ARGS appended to its
# arguments. Prints the wrapper's path; exits the test with FAIL when the shim does not build.
# An AddressSanitizer build needs its runtime first in the preload list.
ldfault_wrapper() {
    local env=$1 shim=$H_WORK/ldfault.so wrap=$H_WORK/cairn-ldfault preload asan_rt
    shift
    if ! cc -std=c11 -O2 -shared -fPIC -o "$shim" "$H_DIR/ldfault/ldfault.c" -ldl >&2; then
        echo "FAIL - building the ldfault shim" >&2
        echo "FAIL $H_NAME" >&2
        exit 1
    fi
    preload=$shim
    asan_rt=$(ldd "$CAIRN_BIN" 2>/dev/null | awk '/libasan/ {print $3}')
    [ -n "$asan_rt" ] && preload="$asan_rt $shim"
    {
        echo '#!/bin/sh'
        printf 'LD_PRELOAD="%s" %s exec "%s" "$@"' "$preload" "$env" "$CAIRN_BIN"
        printf ' "%s"' "$@"
        echo
    } >"$wrap"
    chmod +x "$wrap"
    echo "$wrap"
}
