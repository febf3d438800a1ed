#!/usr/bin/env bash
# restic (minio-go: signed streaming payloads) against one cairn node: init, backup of a generated
# tree, check --read-data, restore + diff -r, a second backup, `restic diff`, forget --prune.
# Also against a cluster (lib.sh "Cluster mode"), each restic call through the next node when
# CAIRN_TEST_ALTERNATE=1.
source "$(dirname "$0")/lib.sh"
h_need restic diff
echo "client: $(restic version 2>&1)"
h_start

B=$(h_bucket restic-bucket)
export RESTIC_PASSWORD=cairn-restic-test-password
export RESTIC_CACHE_DIR=$H_WORK/restic-cache
SEED=2024
echo "seed: $SEED"
T=$H_WORK/src
mkdir -p "$T/docs" "$T/bin/deep/er" "$T/names with spaces"
h_gen "$T/bin/random-3M.bin" $((3 << 20)) "$SEED"
h_gen "$T/bin/deep/er/random-700k.bin" 700000 $((SEED + 1))
for i in $(seq 1 40); do
    printf 'document %d\n%s\n' "$i" "$(seq 1 "$i")" >"$T/docs/doc-$i.txt"
done
h_gen "$T/names with spaces/ünïcødé+.bin" 5000 $((SEED + 2))
ln -s ../docs/doc-1.txt "$T/bin/link"

restic_() { RESTIC_REPOSITORY=s3:$(h_endpoint)/$B restic "$@"; }
r() { restic_ --quiet "$@"; }
h_run "init" r init
h_run "backup #1" r backup --tag one "$T"
h_run "check --read-data" r check --read-data
mkdir -p "$H_WORK/restore"
if h_run "restore latest" r restore latest --target "$H_WORK/restore"; then
    h_run "restored tree equals the source" diff -r --no-dereference "$T" "$H_WORK/restore$T"
fi
rm "$T/docs/doc-3.txt"
printf 'changed\n' >>"$T/docs/doc-5.txt"
h_gen "$T/bin/new-1M.bin" $((1 << 20)) $((SEED + 3))
h_run "backup #2" r backup --tag two "$T"
if h_run "snapshots --json" r snapshots --json; then
    ids=$("$H_PY" -c 'import json,sys; print(" ".join(s["short_id"] for s in json.load(sys.stdin)))' \
        <<<"$H_OUT")
    h_eq "two snapshots" 2 "$(wc -w <<<"$ids")"
    # shellcheck disable=SC2086 # two ids, split on purpose
    if h_run "diff between snapshots" restic_ diff $ids; then
        if grep -q 'doc-3.txt' <<<"$H_OUT" && grep -q 'new-1M.bin' <<<"$H_OUT" &&
            grep -q 'doc-5.txt' <<<"$H_OUT"; then
            h_ok "diff shows removed, changed and added files"
        else
            h_bad "diff shows removed, changed and added files" "$H_OUT"
        fi
    fi
fi
h_run "forget --keep-last 1 --prune" r forget --keep-last 1 --prune
h_run "check --read-data after prune" r check --read-data
if h_run "snapshots after forget" r snapshots --json; then
    h_eq "one snapshot left" 1 \
        "$("$H_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$H_OUT")"
fi
h_finish
