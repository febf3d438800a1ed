#!/usr/bin/env bash
# Fault: a drive replaced by an empty one, rebuilt by the scrubber.
# Upload objects from inline (1 KiB) to many stripes (9.5 MiB) plus a two-part multipart upload,
# stop the server, `rm -rf` one whole drive folder (a new empty disk: the server recreates it on
# start), start, and `cairn admin scrub --wait` must report the bodies it repaired with no
# failures. Then stop, delete every segment file of two OTHER drives and start again: with 4+2
# coding every object can only read back byte-exact if the replaced drive really holds its cells.
source "$(dirname "$0")/lib.sh"
h_own_server "replaces a drive folder of its own server"
source "$H_DIR/lib_fault.sh"

SEED=${SEED:-3300}
SIZES=(1024 307200 5242880 9961472)
BUCKET=replace-bucket
echo "seed: $SEED"
rng_pick() { "$H_PY" -c "import random,sys; r=random.Random($SEED); \
d=r.randrange(6); o=r.sample([i for i in range(6) if i!=d],2); print(d, *o)"; }
read -r REPLACED OTHER1 OTHER2 <<<"$(rng_pick)"
echo "replaced drive$REPLACED, then losing drive$OTHER1 and drive$OTHER2"

h_start
admin() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }

h_run "create bucket" s3raw mb "$BUCKET"
for size in "${SIZES[@]}"; do
    h_gen "$H_WORK/obj-$size" "$size" $((SEED + size))
    h_run "put $size-byte object" s3raw put "$BUCKET" "obj-$size" "$H_WORK/obj-$size"
done
h_gen "$H_WORK/obj-mpu" $((5242880 + 716800)) $((SEED + 7))
h_run "multipart upload (5 MiB + 700 KiB parts)" env CAIRN_ENDPOINT="$H_ENDPOINT" \
    "$H_PY" - "$H_DIR" "$BUCKET" obj-mpu "$H_WORK/obj-mpu" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[1])
import s3raw
bucket, key, path = sys.argv[2], sys.argv[3], sys.argv[4]
data = open(path, "rb").read()
obj = "/%s/%s" % (bucket, key)
st, _, body = s3raw.request("POST", obj, {"uploads": ""})
assert st == 200, (st, body)
uid = re.search(rb"<UploadId>([^<]+)</UploadId>", body).group(1).decode()
parts, cut = [], 5242880
for n, chunk in ((1, data[:cut]), (2, data[cut:])):
    st, h, body = s3raw.request("PUT", obj, {"partNumber": str(n), "uploadId": uid}, body=chunk)
    assert st == 200, (st, body)
    etag = {k.lower(): v for k, v in h.items()}["etag"]
    parts.append("<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>" % (n, etag))
xml = ("<CompleteMultipartUpload>%s</CompleteMultipartUpload>" % "".join(parts)).encode()
st, _, body = s3raw.request("POST", obj, {"uploadId": uid}, body=xml)
assert st == 200 and b"<Error>" not in body, (st, body)
print(st)
PY
KEYS=("${SIZES[@]/#/obj-}" obj-mpu)

# get_all: GET every object; prints the number that are missing or differ.
get_all() { fault_mismatches "$BUCKET" "${KEYS[@]}"; }
h_eq "all ${#KEYS[@]} objects byte-exact (healthy)" 0 "$(get_all)"
h_stop

before=$(find "$H_DATA/drive$REPLACED" -name 'seg-*.cbs' | wc -l)
rm -rf -- "${H_DATA:?}/drive$REPLACED"
h_ok "drive$REPLACED replaced by an empty disk ($before segment files gone)"
h_start
h_eq "all objects byte-exact with drive$REPLACED empty" 0 "$(get_all)"
h_run "cairn admin scrub --wait" admin scrub --wait
printf '%s\n' "$H_OUT"
col() { awk -v k="$1" -v c="$2" 'index($0, k) == 1 { print $(c) }'; }
FOUND=$(col "damaged found" 3 <<<"$H_OUT")
REPAIRED=$(col "repaired" 2 <<<"$H_OUT")
FAILED=$(col "repair failures" 3 <<<"$H_OUT")
echo "bodies found damaged $FOUND, repaired $REPAIRED, repair failures $FAILED"
if [ "${REPAIRED:-0}" -ge 4 ]; then
    h_ok "scrub repaired the bodies of the replaced drive ($REPAIRED)"
else
    h_bad "scrub repaired the bodies of the replaced drive" "repaired=${REPAIRED:-none}"
fi
h_eq "every damaged body repaired" "$FOUND" "$REPAIRED"
h_eq "no repair failed" 0 "$FAILED"
h_eq "/metrics: no drive failed" 6 \
    "$(curl -fsS "$H_ENDPOINT/metrics" | grep -c '^cairn_drive_failed{drive="[0-5]"} 0$')"
h_stop

mapfile -t segs < <(find "$H_DATA/drive$OTHER1" "$H_DATA/drive$OTHER2" -name 'seg-*.cbs')
rm -f -- "${segs[@]}"
h_ok "deleted ${#segs[@]} segment files of drive$OTHER1 and drive$OTHER2"
h_start
h_eq "all ${#KEYS[@]} objects byte-exact from the rebuilt drive$REPLACED + 3 others" 0 "$(get_all)"
h_finish
