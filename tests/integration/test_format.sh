#!/usr/bin/env bash
# On-disk format stamps checked at start (common/cm_format.h, docs/upgrades-format.md).
# A new data directory and its six drives get a FORMAT stamp with one id; `cairn admin status`
# (text and --json) and `cairn fsck` show the format. With every stamp removed (a directory an
# older cairn wrote) the next start adopts it: stamps written with origin "adopted", the object
# stored before reads back byte-exact. Then `cairn server` must refuse, exit 1, write nothing and
# name the versions for: a data directory stamped with a future format, a corrupt drive stamp, a
# drive of another data directory; `cairn fsck` refuses the future format, and so does `cairn
# node-rpc serve` a bare drive folder stamped with one (a mix of formats needs a second format:
# test_common_format.c "mixed" covers it). With the stamps put back the server starts and the
# object is intact. About 10 s.
source "$(dirname "$0")/lib.sh"
h_own_server "restarts its own server over hand-edited format stamps"
if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
aws() { "$AWSBIN" --endpoint-url "$H_ENDPOINT" --region us-east-1 "$@"; }
admin() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }

h_start
h_gen "$H_WORK/body" 300000 52
h_run "create bucket" aws s3api create-bucket --bucket fmt
h_run "put an object" aws s3api put-object --bucket fmt --key k --body "$H_WORK/body"
h_run "cairn admin status --json" admin status --json
h_eq "status: format version" "1 1 new" "$("$H_PY" -c '
import json, sys
f = json.load(sys.stdin)["format"]
print(f["version"], f["supported"], f["origin"])' <<<"$H_OUT")"
h_stop

id=$(awk '$1 == "id" { print $2 }' "$H_DATA/FORMAT")
same=0
for i in 0 1 2 3 4 5; do
    [ "$(awk '$1 == "id" { print $2 }' "$H_DATA/drive$i/FORMAT")" = "$id" ] && same=$((same + 1))
done
h_eq "six drive stamps carry the data directory's id" 6 "$same"
h_run "cairn fsck shows the format" "$CAIRN_BIN" fsck --data "$H_DATA"
h_eq "fsck: format line" 1 "$(grep -c '^fsck: on-disk format 1 (id '"$id" <<<"$H_OUT")"

# A directory an older cairn wrote: no stamps at all.
rm -f "$H_DATA/FORMAT" "$H_DATA"/drive*/FORMAT
h_start
h_eq "adopted: the data directory says so" adopted "$(awk '$1 == "origin" { print $2 }' "$H_DATA/FORMAT")"
h_eq "adopted: drive4 says so" adopted "$(awk '$1 == "origin" { print $2 }' "$H_DATA/drive4/FORMAT")"
h_run "get the object after the adoption" aws s3api get-object --bucket fmt --key k "$H_WORK/got"
h_eq "object byte-exact after the adoption" "$(sha256sum <"$H_WORK/body")" "$(sha256sum <"$H_WORK/got")"
h_run "cairn admin status" admin status
h_eq "status: the format line" 1 \
    "$(grep -c '^on-disk format: 1 (this server reads up to 1), stamped by cairn .* over a directory an older cairn wrote$' <<<"$H_OUT")"
h_stop
cp -a "$H_DATA/FORMAT" "$H_WORK/FORMAT.data"
cp -a "$H_DATA/drive3/FORMAT" "$H_WORK/FORMAT.drive3"
cp -a "$H_DATA/drive1/FORMAT" "$H_WORK/FORMAT.drive1"

# state_sum: every file name and content under the data directory (nothing may change on refusal)
state_sum() { (cd "$H_DATA" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }
# refused DESC PATTERN: `cairn server` must exit 1 at once with PATTERN on stderr, changing nothing.
refused() {
    local before after rc
    before=$(state_sum)
    H_OUT=$(timeout 20 "$CAIRN_BIN" server --data "$H_DATA" --listen "127.0.0.1:$(h_free_port)" 2>&1)
    rc=$?
    after=$(state_sum)
    h_eq "$1: exit status" 1 "$rc"
    if grep -Eq -- "$2" <<<"$H_OUT"; then h_ok "$1: message"; else h_bad "$1: message" "expected /$2/ in: $H_OUT"; fi
    h_eq "$1: nothing written" "$before" "$after"
}

printf 'cairn-format 9\nkind data\nshards 12\n' >"$H_DATA/FORMAT"
refused "a future format" "refusing to start on .*/FORMAT says on-disk format 9; this cairn knows format 1 and older"
h_fails_with "cairn fsck refuses the future format" "says on-disk format 9" "$CAIRN_BIN" fsck --data "$H_DATA"
cp -a "$H_WORK/FORMAT.data" "$H_DATA/FORMAT"

sed -i 's/^kind drive$/kind drivE/' "$H_DATA/drive3/FORMAT"
refused "a corrupt drive stamp" "drive3/FORMAT is corrupt \(checksum mismatch\)"
cp -a "$H_WORK/FORMAT.drive3" "$H_DATA/drive3/FORMAT"

# drive1 from another data directory: the stamp of a second, fresh one (written before it serves)
"$CAIRN_BIN" server --data "$H_WORK/other" --listen "127.0.0.1:$(h_free_port)" >/dev/null 2>&1 &
other=$!
h_track "$other"
for ((i = 0; i < 100; i++)); do
    [ -s "$H_WORK/other/drive5/FORMAT" ] && break
    sleep 0.1 # polling for a file the other server writes
done
kill -TERM "$other"
wait "$other"
cp "$H_WORK/other/drive1/FORMAT" "$H_DATA/drive1/FORMAT"
refused "a drive of another data directory" "drive1 belongs to another data directory"
cp -a "$H_WORK/FORMAT.drive1" "$H_DATA/drive1/FORMAT"

# `cairn node-rpc serve` (a storage node's RPC over bare drive folders) refuses a newer stamp too
mkdir "$H_WORK/bare"
printf 'cairn-format 9\n' >"$H_WORK/bare/FORMAT"
h_fails_with "node-rpc serve refuses a drive of a newer format" "FORMAT: not supported \(format 9 is newer" \
    env CAIRN_RPC_SECRET=format-test-secret-0123456789 timeout 20 "$CAIRN_BIN" node-rpc serve \
    --node-id x --listen "127.0.0.1:$(h_free_port)" "$H_WORK/bare"

h_start
h_run "get the object after the refusals" aws s3api get-object --bucket fmt --key k "$H_WORK/got2"
h_eq "object byte-exact at the end" "$(sha256sum <"$H_WORK/body")" "$(sha256sum <"$H_WORK/got2")"
h_finish
