#!/usr/bin/env bash
# Fault: hostile or broken requests (truncated body, oversized headers, malformed XML, wrong
# payload hash) get proper answers and store nothing; see badinput.py.
source "$(dirname "$0")/lib.sh"
h_start
if CAIRN_ENDPOINT=$H_ENDPOINT PYTHONPATH=$H_DIR "$H_PY" "$H_DIR/badinput.py"; then
    h_ok "bad-input cases"
else
    h_bad "bad-input cases"
fi
h_finish
