#!/usr/bin/env bash
# Transparent compression (issue 10, scope 4; docs/compression.md) with boto3 against a server
# with the default `[storage] compression = auto`: a 32 MiB text-like body is stored in less than
# half its size (admin status and the drives' live bytes), a 32 MiB random body is not compressed
# (counted as skipped), ranged GETs across frame (= stripe) boundaries and the last byte of the
# compressed object are byte-exact, a multipart object of text parts reads back whole and across
# its part boundary, a scrub pass finds nothing, then a bit flipped inside a compressed cell on a
# drive (live server) is read around (GET byte-exact) and found and repaired by the scrubber like
# any other cell. Finally a restart with `compression = off` still reads everything and stores a
# new text body uncompressed, and `cairn fsck` of the stopped server finds everything consistent.
source "$(dirname "$0")/lib.sh"
h_own_server "flips a bit in its own drive files and restarts with another config"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }

SEED=${SEED:-1010}
MIB=$((1 << 20))
echo "seed: $SEED"
h_start
admin() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }
export CAIRN_ENDPOINT=$H_ENDPOINT
B=$(h_bucket compression)

# Text-like: lines of words drawn at random (zstd level 1 gets about 3:1 on it, not 100:1), the
# text of the compression benches (bench/textbody.py).
"$H_PY" - "$H_WORK" "$SEED" "$H_ROOT/bench" <<'PY'
import random, sys
work, seed = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from textbody import block
rng = random.Random(seed)
open(f"{work}/text", "wb").write(block(rng, 32 << 20))
for i in range(3):
    open(f"{work}/part{i}", "wb").write(block(rng, (6 << 20) + 12345 * i))
PY
h_gen "$H_WORK/random" $((32 * MIB)) "$SEED"

# zstat: "bodies logical stored skipped live" from GET /admin/status (live: the drives' live
# bytes summed).
zstat() {
    CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" - "$H_DIR" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import s3raw
st, _, body = s3raw.request("GET", "/admin/status")
d = json.loads(body)
z = d["compression"]
print(z["bodies"], z["logical_bytes"], z["stored_bytes"], z["skipped"],
      sum(x["live_bytes"] for x in d["drives"]))
PY
}
s3py() { CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" - "$H_WORK" "$B" "$@"; }
PYHEAD='import boto3, os, sys
work, b = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1")
def body(key):
    return s3.get_object(Bucket=b, Key=key)["Body"].read()
'

h_run "create bucket" s3py <<<"$PYHEAD
s3.create_bucket(Bucket=b)"
read -r _ _ _ _ LIVE0 < <(zstat)
h_run "PUT the 32 MiB text body" s3py <<<"$PYHEAD
s3.put_object(Bucket=b, Key='text', Body=open(work + '/text', 'rb').read())"
read -r BODIES LOGICAL STORED SKIPPED LIVE1 < <(zstat)
echo "text: bodies $BODIES, logical $LOGICAL, stored $STORED, live bytes $LIVE0 -> $LIVE1"
h_eq "one body compressed" 1 "$BODIES"
h_eq "its logical bytes are the body's" $((32 * MIB)) "$LOGICAL"
[ "$STORED" -gt 0 ] && [ $((STORED * 2)) -lt "$LOGICAL" ] &&
    h_ok "stored in less than half its size ($STORED bytes)" ||
    h_bad "stored in less than half its size" "stored $STORED of $LOGICAL"
# 4+2: the drives hold 1.5x the stored stream; uncompressed it would be 1.5 x 32 MiB.
GROWTH=$((LIVE1 - LIVE0))
[ "$GROWTH" -gt 0 ] && [ $((GROWTH * 4)) -lt $((3 * 32 * MIB)) ] &&
    h_ok "the drives grew by less than half of 1.5 x 32 MiB ($GROWTH bytes)" ||
    h_bad "the drives grew by less than half of 1.5 x 32 MiB" "grew $GROWTH"
h_run "cairn admin status shows the saving" admin status
grep -qE '^compression: auto, since start 1 bodies compressed' <<<"$H_OUT" &&
    h_ok "status line" || h_bad "status line" "$H_OUT"

h_run "PUT the 32 MiB random body" s3py <<<"$PYHEAD
s3.put_object(Bucket=b, Key='random', Body=open(work + '/random', 'rb').read())"
read -r BODIES2 _ _ SKIPPED2 LIVE2 < <(zstat)
h_eq "the random body is not compressed" "1 $((SKIPPED + 1))" "$BODIES2 $SKIPPED2"
GROWTH=$((LIVE2 - LIVE1))
[ "$GROWTH" -ge $((3 * 16 * MIB)) ] && h_ok "the random body is stored whole ($GROWTH bytes)" ||
    h_bad "the random body is stored whole" "grew $GROWTH"

# Ranges across frame (1 MiB stripe) boundaries, the first and last bytes, a suffix range, and
# a range over most of the body; the random object's too.
RANGES_PY="$PYHEAD
M = 1 << 20
bad = []
for key in ('text', 'random'):
    data = open(work + '/' + key, 'rb').read()
    n = len(data)
    spans = [(0, 0), (M - 1, M), (M - 1, 3 * M + 5), (5 * M - 100, 5 * M + 99), (n - 1, n - 1),
             (12345, n - 54321), (7 * M, 8 * M - 1), (n - M - 1, n - 1)]
    for a, z in spans:
        got = s3.get_object(Bucket=b, Key=key, Range='bytes=%d-%d' % (a, z))['Body'].read()
        if got != data[a:z + 1]:
            bad.append((key, a, z))
    got = s3.get_object(Bucket=b, Key=key, Range='bytes=-70000')['Body'].read()
    if got != data[-70000:]:
        bad.append((key, 'suffix'))
    if body(key) != data:
        bad.append((key, 'whole'))
print(bad)
sys.exit(1 if bad else 0)"
h_run "ranged GETs across frame boundaries byte-exact" s3py <<<"$RANGES_PY"

h_run "multipart text object (3 parts of about 6 MiB): PUT, GET whole and across parts" \
    s3py <<<"$PYHEAD
parts, data = [], b''
up = s3.create_multipart_upload(Bucket=b, Key='multi')['UploadId']
for i in range(3):
    p = open(work + '/part%d' % i, 'rb').read()
    data += p
    r = s3.upload_part(Bucket=b, Key='multi', UploadId=up, PartNumber=i + 1, Body=p)
    parts.append({'PartNumber': i + 1, 'ETag': r['ETag']})
s3.complete_multipart_upload(Bucket=b, Key='multi', UploadId=up, MultipartUpload={'Parts': parts})
assert body('multi') == data, 'whole'
e = (6 << 20)
for a, z in [(e - 10, e + 10), (e - (1 << 20), 2 * e + 20000), (len(data) - 3, len(data) - 1)]:
    got = s3.get_object(Bucket=b, Key='multi', Range='bytes=%d-%d' % (a, z))['Body'].read()
    assert got == data[a:z + 1], (a, z)"
read -r BODIES3 _ _ _ _ < <(zstat)
h_eq "the three parts were compressed" 4 "$BODIES3"

h_run "scrub pass" admin scrub --wait
col() { awk -v k="$1" -v c="$2" 'index($0, k) == 1 { print $(c) }'; }
h_eq "scrub finds nothing damaged" 0 "$(col "damaged found" 3 <<<"$H_OUT")"
h_run "cairn admin status after the pass" admin status
grep -qE '^compression: the last scrub pass met 4 compressed bodies' <<<"$H_OUT" &&
    h_ok "the scrub pass counted the compressed bodies" ||
    h_bad "the scrub pass counted the compressed bodies" "$H_OUT"
h_eq "/metrics counts them" "cairn_compressed_bodies_total 4" \
    "$(curl -fsS "$H_ENDPOINT/metrics" | grep '^cairn_compressed_bodies_total ')"

# Flip one bit inside a compressed cell: a few KiB after the first zstd frame magic in a segment
# file (the start of a compressed object's first data cell; record data is contiguous after the
# record's CRC table, and every cell here is far longer than that).
h_run "flip a bit inside a compressed cell (live server)" "$H_PY" - "$H_DATA" "$SEED" <<'PY'
import glob, random, sys
data, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
for path in sorted(glob.glob(f"{data}/drive*/seg-*.cbs")):
    with open(path, "r+b") as f:
        raw = f.read()
        at = raw.find(b"\x28\xb5\x2f\xfd", 32)
        if at < 0:
            continue
        pos = at + 100 + rng.randrange(4000)
        f.seek(pos)
        f.write(bytes([raw[pos] ^ (1 << rng.randrange(8))]))
        print(f"flipped {path} at {pos}")
        sys.exit(0)
sys.exit("no compressed cell found")
PY
printf '%s\n' "$H_OUT"
h_run "GETs byte-exact with the bit flipped" s3py <<<"$RANGES_PY"
h_run "scrub pass after the flip" admin scrub --wait
printf '%s\n' "$H_OUT" | grep -E "damaged found|repaired"
h_eq "scrub found the damaged body" 1 "$(col "damaged found" 3 <<<"$H_OUT")"
h_eq "scrub repaired it" 1 "$(col "repaired" 2 <<<"$H_OUT")"
h_run "second scrub pass" admin scrub --wait
h_eq "second pass finds nothing" 0 "$(col "damaged found" 3 <<<"$H_OUT")"
h_run "GETs byte-exact after the repair" s3py <<<"$RANGES_PY"

# compression = off: what is stored compressed still reads; a new body is stored as it came.
h_stop
printf '[storage]\ncompression = off\n' >"$H_WORK/off.conf"
H_SERVER_ARGS=(--config "$H_WORK/off.conf")
h_start
h_run "GETs byte-exact after a restart with compression off" s3py <<<"$RANGES_PY"
h_run "PUT the text body again" s3py <<<"$PYHEAD
s3.put_object(Bucket=b, Key='text2', Body=open(work + '/text', 'rb').read())"
read -r BODIES4 _ _ _ _ < <(zstat)
h_eq "nothing compressed with compression = off" 0 "$BODIES4"
h_stop
h_run "cairn fsck of the stopped server is clean (records and cell lengths agree)" \
    "$CAIRN_BIN" fsck --data "$H_DATA"
h_finish
