#!/usr/bin/env bash
# Fault: a client adds x-amz-* headers its signature does not cover (to a presigned URL that signs
# only host, to a header-signed request, with SigV2): every one is refused with 403, nothing is
# stored or copied, and the server keeps serving other clients; see hostile_headers.py.
source "$(dirname "$0")/lib.sh"
h_start
if CAIRN_ENDPOINT=$H_ENDPOINT PYTHONPATH=$H_DIR "$H_PY" "$H_DIR/hostile_headers.py"; then
    h_ok "unsigned x-amz-* header cases"
else
    h_bad "unsigned x-amz-* header cases"
fi
h_finish
