#!/usr/bin/env bash
# The single-node runbooks of docs/operations.md, run with the commands the doc gives, so the doc
# stays true. Each block below names its section. Replace a disk: stop, an empty folder where
# drive1 was (a new disk; drive1 holds a metadata copy too), start, `cairn admin status` shows
# 6/6 drives and 3 of 3 metadata copies, `cairn admin scrub --wait` rebuilds, objects byte-exact.
# Rotate a user's access key: second key, clients move, first key disabled (refused), deleted.
# Restore an old version: copy-object from a versionId, rclone --s3-version-at, an undelete by
# removing the delete marker. Copy back from a backup bucket (rclone, aws s3 sync). Back up the metadata with
# mdb_copy while the server runs, then restore it after losing every metadata copy. The cluster
# runbooks are covered by the cluster tests the doc names. About 15 s.
source "$(dirname "$0")/lib.sh"
h_own_server "stops, edits and restarts its own server's data directory"
if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN" rclone mdb_copy
aws() { "$AWSBIN" --endpoint-url "$H_ENDPOINT" --region us-east-1 "$@"; }
admin() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }
same() { [ "$(sha256sum <"$1")" = "$(sha256sum <"$2")" ] && echo same || echo differ; }
export RCLONE_CONFIG=$H_WORK/rclone.conf
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_CAIRN_TYPE=s3 RCLONE_CONFIG_CAIRN_PROVIDER=Other
export RCLONE_CONFIG_CAIRN_REGION=us-east-1 RCLONE_CONFIG_CAIRN_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_CAIRN_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY
export RCLONE_CONFIG_CAIRN_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY
rc() { RCLONE_CONFIG_CAIRN_ENDPOINT=$H_ENDPOINT rclone --retries 1 --low-level-retries 2 "$@"; }

h_start
export CAIRN_ENDPOINT=$H_ENDPOINT
s3raw() { "$H_PY" "$H_DIR/s3raw.py" "$@"; } # setup and checks; the doc's steps use aws and rclone
h_run "create bucket live" s3raw mb live
for n in 1 2; do
    h_gen "$H_WORK/obj$n" $((n * 700000)) $((52 + n))
    h_run "put obj$n" s3raw put live "obj$n" "$H_WORK/obj$n"
done

# ---- Replace a disk (single node) ----
h_stop                                                   # systemctl stop cairn
rm -rf -- "${H_DATA:?}/drive1" && mkdir "$H_DATA/drive1" # the new, empty disk mounted there
h_start                                                  # systemctl start cairn
h_run "cairn admin status" admin status
h_eq "status: 6/6 drives online" 1 "$(grep -c '6/6 drives online' <<<"$H_OUT")"
h_eq "status: 3 of 3 metadata copies" 1 "$(grep -c '^metadata: 3 of 3 copies healthy' <<<"$H_OUT")"
h_run "cairn admin scrub --wait" admin scrub --wait
h_eq "scrub: no repair failed" 0 "$(awk '/^repair failures/ { print $3 }' <<<"$H_OUT")"
h_eq "scrub repaired both bodies" 2 "$(awk 'index($0, "repaired") == 1 { print $2 }' <<<"$H_OUT")"
h_eq "the new disk carries the data directory's format stamp" \
    "$(awk '$1 == "id" { print $2 }' "$H_DATA/FORMAT")" \
    "$(awk '$1 == "id" { print $2 }' "$H_DATA/drive1/FORMAT")"
for n in 1 2; do
    h_run "get obj$n" s3raw get live "obj$n" "$H_WORK/got$n"
    h_eq "obj$n byte-exact after the disk replacement" same "$(same "$H_WORK/obj$n" "$H_WORK/got$n")"
done

# ---- Rotate keys: a user's access key ----
h_run "cairn admin user create app" admin user create app
AK1=$(sed -n 's/^access_key=//p' <<<"$H_OUT") SK1=$(sed -n 's/^secret_key=//p' <<<"$H_OUT")
as() { local ak=$1 sk=$2; shift 2; CAIRN_ACCESS_KEY=$ak CAIRN_SECRET_KEY=$sk s3raw "$@"; }
h_run "app creates its bucket" as "$AK1" "$SK1" mb app-data
h_run "app writes with its first key" as "$AK1" "$SK1" put app-data k "$H_WORK/obj1"
h_run "cairn admin user key create app" admin user key create app
AK2=$(sed -n 's/^access_key=//p' <<<"$H_OUT") SK2=$(sed -n 's/^secret_key=//p' <<<"$H_OUT")
h_run "the second key reads" as "$AK2" "$SK2" get app-data k "$H_WORK/got-k"
h_run "cairn admin user key disable AK1" admin user key disable "$AK1"
h_fails_with "the first key is refused" InvalidAccessKeyId as "$AK1" "$SK1" get app-data k
h_run "the second key still reads" as "$AK2" "$SK2" get app-data k "$H_WORK/got-k"
h_run "cairn admin user key delete AK1" admin user key delete "$AK1"
h_run "cairn admin user list" admin user list
h_eq "app has one key left, the second" "$AK2 enabled" \
    "$(awk '$1 == "app" { print $3, $4 }' <<<"$H_OUT")"

# ---- Restore an old version ----
h_run "create bucket docs" s3raw mb docs
h_run "enable versioning" aws s3api put-bucket-versioning --bucket docs \
    --versioning-configuration Status=Enabled
printf 'first draft\n' >"$H_WORK/v1"
printf 'overwritten by mistake\n' >"$H_WORK/v2"
h_run "put v1" s3raw put docs report.txt "$H_WORK/v1"
sleep 1.1 # --s3-version-at has one-second resolution: a moment between v1 and v2
AT=$(date -u '+%Y-%m-%d %H:%M:%S')
sleep 1.1
h_run "put v2" s3raw put docs report.txt "$H_WORK/v2"
h_run "put notes" s3raw put docs notes.txt "$H_WORK/v2"
h_run "delete notes (a delete marker)" s3raw rm docs notes.txt
h_run "list-object-versions" aws s3api list-object-versions --bucket docs
read -r V1 MARKER <<<"$("$H_PY" -c '
import json, sys
d = json.load(sys.stdin)
old = min((v for v in d["Versions"] if v["Key"] == "report.txt"), key=lambda v: v["LastModified"])
mk = [m for m in d["DeleteMarkers"] if m["Key"] == "notes.txt" and m["IsLatest"]]
print(old["VersionId"], mk[0]["VersionId"])' <<<"$H_OUT")"
h_run "rclone copy --s3-version-at (the bucket as it was)" rc copy --s3-version-at "$AT" \
    cairn:docs "$H_WORK/restored"
h_eq "rclone restored v1" same "$(same "$H_WORK/v1" "$H_WORK/restored/report.txt")"
h_run "copy-object from versionId v1" aws s3api copy-object --bucket docs --key report.txt \
    --copy-source "docs/report.txt?versionId=$V1"
h_run "get the restored object" s3raw get docs report.txt "$H_WORK/got-v"
h_eq "v1 is current again" same "$(same "$H_WORK/v1" "$H_WORK/got-v")"
h_run "undelete: delete the delete marker" aws s3api delete-object --bucket docs --key notes.txt \
    --version-id "$MARKER"
h_run "notes is back" s3raw get docs notes.txt "$H_WORK/got-n"
h_eq "notes byte-exact" same "$(same "$H_WORK/v2" "$H_WORK/got-n")"

# ---- Copy back from a backup bucket ----
h_run "create bucket live-backup" s3raw mb live-backup
h_run "the backup: rclone sync live -> live-backup" rc sync cairn:live cairn:live-backup
h_run "obj2 lost in live" s3raw rm live obj2
h_run "copy back: rclone copy live-backup -> live" rc copy cairn:live-backup cairn:live
h_run "get obj2 from live" s3raw get live obj2 "$H_WORK/got-b"
h_eq "obj2 byte-exact after the copy back" same "$(same "$H_WORK/obj2" "$H_WORK/got-b")"
h_run "obj1 lost in live" s3raw rm live obj1
h_run "copy back: aws s3 sync s3://live-backup s3://live" aws s3 sync s3://live-backup s3://live
h_run "get obj1 from live" s3raw get live obj1 "$H_WORK/got-b1"
h_eq "obj1 byte-exact after the aws copy back" same "$(same "$H_WORK/obj1" "$H_WORK/got-b1")"

# ---- Back up the metadata (online), and restore it ----
mkdir -p "$H_WORK/meta-backup"
h_run "mdb_copy -c the metadata while the server runs" \
    mdb_copy -c "$H_DATA/drive0/meta" "$H_WORK/meta-backup"
h_stop
rm -rf -- "$H_DATA"/drive{0,1,2}/meta # every copy lost
mkdir "$H_DATA/drive0/meta" && cp "$H_WORK/meta-backup/data.mdb" "$H_DATA/drive0/meta/"
h_start
h_run "cairn admin status after the restore" admin status
h_eq "status: 3 of 3 metadata copies (rebuilt from the backup)" 1 \
    "$(grep -c '^metadata: 3 of 3 copies healthy' <<<"$H_OUT")"
h_run "get obj2 after the metadata restore" s3raw get live obj2 "$H_WORK/got-m"
h_eq "obj2 byte-exact after the metadata restore" same "$(same "$H_WORK/obj2" "$H_WORK/got-m")"
h_run "notes after the metadata restore" s3raw get docs notes.txt "$H_WORK/got-m2"
h_run "app's second key after the metadata restore" as "$AK2" "$SK2" get app-data k "$H_WORK/got-k"
h_finish
