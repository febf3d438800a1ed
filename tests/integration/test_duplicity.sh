#!/usr/bin/env bash
# duplicity (Debian 12's 0.8, boto3 backend) against one cairn node, into a versioned bucket as a
# backup repository would be: a full backup of a generated tree, a change, an incremental backup,
# `verify`, a restore of the latest state and of the full backup's time, each compared with what
# was backed up; then `remove-all-but-n-full` after a second full backup, and the versions it
# leaves behind as noncurrent versions and delete markers (ListObjectVersions). Issue 10's
# "duplicity full + incremental + restore". Against a cluster (no versioning there) it skips.
source "$(dirname "$0")/lib.sh"
h_need duplicity diff
echo "client: $(duplicity --version 2>&1)"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
[ -n "${CAIRN_TEST_ENDPOINTS:-}" ] && h_own_server "keeps versions, which cluster nodes refuse"
h_start

B=$(h_bucket dup-bucket)
h_run "create bucket" aws --endpoint-url "$H_ENDPOINT" s3api create-bucket --bucket "$B"
h_run "enable versioning" aws --endpoint-url "$H_ENDPOINT" s3api put-bucket-versioning \
    --bucket "$B" --versioning-configuration Status=Enabled

SEED=4242
T=$H_WORK/src
mkdir -p "$T/docs" "$T/bin/deep" "$T/names with spaces"
h_gen "$T/bin/random-2M.bin" $((2 << 20)) "$SEED"
h_gen "$T/bin/deep/random-300k.bin" 300000 $((SEED + 1))
for i in $(seq 1 30); do
    printf 'document %d\n%s\n' "$i" "$(seq 1 "$i")" >"$T/docs/doc-$i.txt"
done
h_gen "$T/names with spaces/ünïcødé+.bin" 4000 $((SEED + 2))

# boto3 addresses buckets path-style here (AWS_CONFIG_FILE), so no wildcard DNS is needed
cat >"$H_WORK/aws-config" <<'EOF'
[default]
s3 =
    addressing_style = path
EOF
export AWS_CONFIG_FILE=$H_WORK/aws-config
URL="boto3+s3://$B/backups"
dup() {
    duplicity --no-encryption --s3-endpoint-url "$H_ENDPOINT" --s3-region-name us-east-1 \
        --archive-dir "$H_WORK/archive" --name cairn-test --verbosity warning "$@"
}

h_run "full backup" dup full "$T" "$URL"
cp -a "$T" "$H_WORK/state-full"
sleep 1.1 # duplicity names backups by the second: keep the full's time distinct
printf 'changed after the full backup\n' >>"$T/docs/doc-3.txt"
rm "$T/docs/doc-7.txt"
h_gen "$T/bin/new-500k.bin" 500000 $((SEED + 3))
h_run "incremental backup" dup incremental "$T" "$URL"
h_run "verify against the source" dup verify --compare-data "$URL" "$T"

if h_run "restore the latest state" dup restore "$URL" "$H_WORK/restore-latest"; then
    h_run "restored latest equals the source" diff -r "$T" "$H_WORK/restore-latest"
fi
if h_run "collection-status" dup collection-status "$URL"; then
    full_time=$(grep -m1 -oE 'Full +[A-Z][a-z]{2} [A-Z][a-z]{2} +[0-9]+ [0-9:]{8} [0-9]{4}' \
        <<<"$H_OUT" | sed -E 's/^Full +//')
    echo "full backup time: $full_time"
fi
if [ -n "${full_time:-}" ] &&
    h_run "restore the full backup's state (--time)" dup restore --time \
        "$(date -u -d "$full_time" +%Y-%m-%dT%H:%M:%SZ)" "$URL" "$H_WORK/restore-full"; then
    h_run "restored full equals the state at the full backup" diff -r "$H_WORK/state-full" \
        "$H_WORK/restore-full"
else
    h_bad "the full backup's time from collection-status" "$H_OUT"
fi

# a second chain, then pruning the first: duplicity deletes its volumes, which in a versioned
# bucket become delete markers over noncurrent versions (nothing is lost until they expire)
sleep 1.1
h_run "second full backup" dup full "$T" "$URL"
h_run "remove-all-but-n-full 1 --force" dup remove-all-but-n-full 1 --force "$URL"
if h_run "restore after pruning" dup restore "$URL" "$H_WORK/restore-pruned"; then
    h_run "restored after pruning equals the source" diff -r "$T" "$H_WORK/restore-pruned"
fi
if h_run "list-object-versions" aws --endpoint-url "$H_ENDPOINT" s3api list-object-versions \
    --bucket "$B" --prefix backups/ --output json; then
    counts=$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
live = [v for v in d.get("Versions", []) if v["IsLatest"]]
old = [v for v in d.get("Versions", []) if not v["IsLatest"]]
print(len(live), len(old), len(d.get("DeleteMarkers", [])))' <<<"$H_OUT")
    read -r live old markers <<<"$counts"
    echo "versions: $live current, $old noncurrent, $markers delete markers"
    if [ "${live:-0}" -gt 0 ] && [ "${old:-0}" -gt 0 ] && [ "${markers:-0}" -gt 0 ]; then
        h_ok "the pruned chain's volumes are noncurrent versions under delete markers"
    else
        h_bad "the pruned chain's volumes are noncurrent versions under delete markers" "$counts"
    fi
fi
h_finish
