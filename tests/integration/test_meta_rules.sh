#!/usr/bin/env bash
# S3 rules kept by the metadata layer (issue 8, item 12), with raw signed requests
# (meta_rules.py, standard library only): DeleteBucket of a bucket holding only unfinished
# multipart uploads deletes it with them and frees their parts' blobs (drive blob counts from
# /admin/status go back); an object still blocks it (BucketNotEmpty) and keeps the uploads; a
# CompleteMultipartUpload retried after it succeeded answers 200 with the same ETag, a different
# part list or a retry after the key was overwritten answers NoSuchUpload. About 2 s.
source "$(dirname "$0")/lib.sh"
h_own_server "compares its own server's drive blob counts in /admin/status"
h_start
if CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" "$H_DIR/meta_rules.py" mpu; then
    h_ok "metadata rules"
else
    h_bad "metadata rules"
fi
h_finish
