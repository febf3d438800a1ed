#!/usr/bin/env bash
# boto3 against one cairn node, run by every Python here that has boto3: Debian's /usr/bin/python3
# (python3-boto3 1.26: plain signed payloads) and the python3 on PATH when it is a different one
# with its own boto3 (>= 1.36 sends CRC32 trailers, STREAMING-UNSIGNED-PAYLOAD-TRAILER, by default).
source "$(dirname "$0")/lib.sh"

pythons=()
for py in /usr/bin/python3 "$(command -v python3 || true)"; do
    if [ -z "$py" ] || [ ! -x "$py" ]; then continue; fi
    real=$(readlink -f "$(command -v "$py")")
    case " ${seen:-} " in *" $real "*) continue ;; esac
    seen="${seen:-} $real"
    # pyenv shims resolve to a script: compare the interpreter they really run instead
    exe=$("$py" -c 'import sys; print(sys.executable)' 2>/dev/null) || continue
    case " ${seen_exe:-} " in *" $exe "*) continue ;; esac
    seen_exe="${seen_exe:-} $exe"
    if "$py" -c 'import boto3' 2>/dev/null; then pythons+=("$py"); fi
done
if [ ${#pythons[@]} -eq 0 ]; then
    echo "SKIP $H_NAME: no python with boto3"
    exit 77
fi
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
for py in "${pythons[@]}"; do
    echo "== $py"
    if "$py" "$H_DIR/boto3_s3.py"; then
        h_ok "boto3 suite with $py"
    else
        h_bad "boto3 suite with $py"
    fi
done
h_finish
