#!/usr/bin/env bash
# rclone (configured through RCLONE_CONFIG_CAIRN_* variables, path-style) against one cairn node:
# mkdir, copy of a tree with a 30 MiB file (multipart: upload cutoff lowered to 10 MiB), check,
# lsf, sync after deleting a local file, purge. Also against a cluster (lib.sh "Cluster mode"),
# each rclone call through the next node when CAIRN_TEST_ALTERNATE=1.
source "$(dirname "$0")/lib.sh"
h_need rclone
echo "client: $(rclone version 2>&1 | head -1)"
h_start

export RCLONE_CONFIG=$H_WORK/rclone.conf # empty: everything comes from the environment
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_CAIRN_TYPE=s3
export RCLONE_CONFIG_CAIRN_PROVIDER=Other
export RCLONE_CONFIG_CAIRN_ENDPOINT=$H_ENDPOINT
export RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY
export RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY
export RCLONE_CONFIG_CAIRN_REGION=us-east-1
export RCLONE_CONFIG_CAIRN_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_CAIRN_UPLOAD_CUTOFF=10M
export RCLONE_CONFIG_CAIRN_CHUNK_SIZE=5M
rc() { RCLONE_CONFIG_CAIRN_ENDPOINT=$(h_endpoint) rclone --retries 1 --low-level-retries 2 "$@"; }
B=cairn:$(h_bucket rclone-bucket)
SEED=99
echo "seed: $SEED"
T=$H_WORK/tree
mkdir -p "$T/a/b" "$T/ünï cødé" "$T/empty-file-dir"
h_gen "$T/big 30M.bin" $((30 << 20)) "$SEED"
h_gen "$T/a/b/mid.bin" 400000 $((SEED + 1))
h_gen "$T/ünï cødé/small+plus.bin" 3000 $((SEED + 2))
: >"$T/empty-file-dir/zero"
printf 'doomed\n' >"$T/a/delete-me.txt"

h_run "mkdir" rc mkdir "$B"
h_run "copy tree (incl. 30 MiB multipart)" rc copy "$T" "$B/tree"
h_run "check (sizes and hashes)" rc check "$T" "$B/tree"
h_run "check --download (byte compare)" rc check --download "$T" "$B/tree"
if h_run "lsf -R" rc lsf -R --files-only "$B/tree"; then
    h_eq "lsf lists every file" \
        "a/b/mid.bin a/delete-me.txt big 30M.bin empty-file-dir/zero ünï cødé/small+plus.bin" \
        "$(LC_ALL=C sort <<<"$H_OUT" | paste -sd' ')"
fi
rm "$T/a/delete-me.txt"
h_run "sync after deleting a local file" rc sync "$T" "$B/tree"
if h_run "lsf after sync" rc lsf -R --files-only "$B/tree"; then
    if grep -q delete-me <<<"$H_OUT"; then
        h_bad "deleted file removed remotely" "$H_OUT"
    else
        h_ok "deleted file removed remotely"
    fi
fi
h_run "check after sync" rc check "$T" "$B/tree"
h_run "purge" rc purge "$B"
h_fails_with "bucket gone after purge" 'directory not found|NoSuchBucket|404' rc lsf "$B"
h_finish
