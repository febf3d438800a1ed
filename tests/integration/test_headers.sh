#!/usr/bin/env bash
# Every documented x-amz-* request header gets real support or a refusal that stores nothing
# (docs/s3-headers.md; headers.py sends them), an empty continuation-token lists from the
# start, and CopyObject checks its destination key like PutObject.
source "$(dirname "$0")/lib.sh"
h_start
if CAIRN_ENDPOINT=$H_ENDPOINT PYTHONPATH=$H_DIR "$H_PY" "$H_DIR/headers.py"; then
    h_ok "request headers"
else
    h_bad "request headers"
fi
h_finish
