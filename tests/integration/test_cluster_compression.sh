#!/usr/bin/env bash
# test_cluster_compression: compression on the nodes of the loopback cluster (docs/compression.md,
# "Cluster nodes"; `[storage] compression = auto`, the default, on every node). cluster_compress.py:
# a 20 MiB text-like body PUT through n1 (its frames compressed on n1's workers, then sent to the
# window of stripes in flight from n1's loop) is stored compressed (n1's /admin/status: one body,
# its logical bytes, stored under half; the live bytes of all six nodes' drives, parity included,
# grow by less than half the body), a multipart upload with parts through n2 and n3 likewise, a
# 12 MiB random body through n4 is skipped; every body reads back byte-exact, whole and in ranges
# (frame edges, inside a frame, across frames, the tail), through the other nodes. About 20 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$(dirname "$0")/lib_cluster.sh"
lc_up itzc boto3
export CAIRN_ENDPOINTS
CAIRN_ENDPOINTS=$(lc_endpoints)
if h_run "compressed bodies through the nodes" "$H_PY" "$H_DIR/cluster_compress.py"; then
    grep -E "stored in|grew by" <<<"$H_OUT" | sed 's/^/   /'
else
    grep -E '^FAIL|^ +\|' <<<"$H_OUT" | head -n 40 | sed 's/^/   /'
fi
h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
