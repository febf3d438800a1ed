#!/usr/bin/env bash
# bench/blobstore_bench.sh - build and run bench/blobstore_bench.c (issue 3's blobstore figures:
# sequential append vs raw fdatasync'd writes, 64-writer group commit vs one-writer fsync rate).
#   bench/blobstore_bench.sh [DIR (default $BENCH_TMP or /tmp)] [seq MiB (256)] [seconds (3)]
# BUILD=<cmake build dir with libblobstore.a> (default build). Not part of the test suite.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$root/build}
make -C "$build" -s blobstore common >/dev/null
work=$(mktemp -d "${1:-${BENCH_TMP:-/tmp}}/cairn-bsbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -std=gnu11 -Wall -Wextra -Werror -I"$root/blobstore" -I"$root/common" \
    "$root/bench/blobstore_bench.c" "$build/libblobstore.a" "$build/libcommon.a" \
    $(pkg-config --libs libisal libcrypto) -lpthread -o "$work/blobstore_bench"
"$work/blobstore_bench" "$work" "${2:-256}" "${3:-3}"
