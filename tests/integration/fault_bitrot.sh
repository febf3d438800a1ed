#!/usr/bin/env bash
# Fault: bit rot under a live server, found and repaired by the scrubber.
# Upload objects from inline (1 KiB) to many stripes (9.5 MiB); with the server running, flip
# random bits inside stored records (block checksum tables and data) in the segment files of two
# seeded-random drives (at most two cells of any 4+2 stripe, so everything is repairable); then
# `cairn admin scrub --wait` must report exactly the damaged bodies found and repaired while GETs
# stay byte-exact during and after the pass, /metrics must show the counters, and a second pass
# must find nothing.
source "$(dirname "$0")/lib.sh"
h_own_server "flips bits in its own drive files"
source "$H_DIR/lib_fault.sh"

SEED=${SEED:-3100}
FLIPS=${FLIPS:-16}
SIZES=(1024 70000 307200 1048576 3000000 5242880 9961472)
BUCKET=bitrot-bucket
echo "seed: $SEED, flips: $FLIPS"

# The server runs with a slower scrub rate (10 MB/s) so the pass overlaps the GETs below.
REAL_BIN=$CAIRN_BIN
if [ ! -x "$REAL_BIN" ]; then
    echo "FAIL - server binary $REAL_BIN missing"
    exit 1
fi
WRAP=$H_WORK/cairn-slow-scrub
printf '#!/bin/sh\nexec "%s" "$@" --scrub-rate-mb 10\n' "$REAL_BIN" >"$WRAP"
chmod +x "$WRAP"
CAIRN_BIN=$WRAP
h_start
admin() { "$REAL_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }

h_run "create bucket" s3raw mb "$BUCKET"
for size in "${SIZES[@]}"; do
    h_gen "$H_WORK/obj-$size" "$size" $((SEED + size))
    h_run "put $size-byte object" s3raw put "$BUCKET" "obj-$size" "$H_WORK/obj-$size"
done

# get_all: GET every object; prints the number of mismatches.
get_all() { fault_mismatches "$BUCKET" "${SIZES[@]/#/obj-}"; }

# Flip bits inside PUT records (checksum table + data) of two drives; print the count of
# distinct bodies (blob ids) hit.
h_run "flip $FLIPS random bits in the segment files of two drives (live server)" \
    "$H_PY" - "$H_DATA" "$SEED" "$FLIPS" <<'PY'
import glob, os, random, struct, sys
data, seed, flips = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
drives = sorted(rng.sample(range(6), 2))
regions = []  # (path, start, length, blob id)
for d in drives:
    for path in sorted(glob.glob(f"{data}/drive{d}/seg-*.cbs")):
        size, off = os.path.getsize(path), 32
        with open(path, "rb") as f:
            while off + 48 <= size:
                f.seek(off)
                h = f.read(48)
                magic, typ = struct.unpack(">IB", h[:5])
                if magic != 0x43425243:
                    break
                blob = h[8:24].hex()
                length, nb = struct.unpack(">II", h[32:40])
                if typ == 1:
                    regions.append((path, off + 48, 4 * nb + length, blob))
                    off += (48 + 4 * nb + length + 7) & ~7
                else:
                    off += 48
total = sum(r[2] for r in regions)
hit = set()
for _ in range(flips):
    pick = rng.randrange(total)
    for path, start, length, blob in regions:
        if pick < length:
            break
        pick -= length
    with open(path, "r+b") as f:
        f.seek(start + pick)
        b = f.read(1)[0]
        f.seek(start + pick)
        f.write(bytes([b ^ (1 << rng.randrange(8))]))
    hit.add(blob)
print(f"drives {drives}: {len(regions)} records, {total} bytes; bodies hit {len(hit)}")
PY
printf '%s\n' "$H_OUT"
HIT=$(sed -n 's/.*bodies hit \([0-9]*\).*/\1/p' <<<"$H_OUT")
[ -n "$HIT" ] || HIT=-1

# Scrub in the background while GETs run; every GET must be byte-exact.
admin scrub --wait >"$H_WORK/scrub1.out" 2>&1 &
APID=$!
h_track "$APID"
rounds=0 bad=0
while kill -0 "$APID" 2>/dev/null; do
    bad=$((bad + $(get_all)))
    rounds=$((rounds + 1))
done
wait "$APID"
rc=$?
cat "$H_WORK/scrub1.out"
h_eq "cairn admin scrub --wait exit status" 0 "$rc"
h_eq "GETs byte-exact during the scrub ($rounds rounds of ${#SIZES[@]})" 0 "$bad"
[ "$rounds" -ge 1 ] && h_ok "GETs ran while the pass was running" ||
    h_bad "GETs ran while the pass was running" "rounds=$rounds"
col() { awk -v k="$1" -v c="$2" 'index($0, k) == 1 { print $(c) }' "$3"; }
FOUND=$(col "damaged found" 3 "$H_WORK/scrub1.out")
REPAIRED=$(col "repaired" 2 "$H_WORK/scrub1.out")
FAILED=$(col "repair failures" 3 "$H_WORK/scrub1.out")
echo "flips injected $FLIPS, bodies hit $HIT, bodies found damaged $FOUND, bodies repaired $REPAIRED"
h_eq "scrub found every damaged body" "$HIT" "$FOUND"
h_eq "scrub repaired every damaged body" "$HIT" "$REPAIRED"
h_eq "no repair failed" 0 "$FAILED"
h_eq "GETs byte-exact after the scrub" 0 "$(get_all)"

METRICS=$(curl -fsS "$H_ENDPOINT/metrics")
h_eq "/metrics shows the repairs" "cairn_scrub_repaired_total $HIT" \
    "$(grep '^cairn_scrub_repaired_total ' <<<"$METRICS")"
h_eq "unsigned POST /admin/scrub is refused" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$H_ENDPOINT/admin/scrub")"
h_run "cairn admin status" admin status && printf '%s\n' "$H_OUT" | head -8
grep -q "; 6/6 drives online;" <<<"$H_OUT" && h_ok "status shows 6 drives online" ||
    h_bad "status shows 6 drives online" "$H_OUT"

h_run "second scrub pass" admin scrub --wait
h_eq "second pass finds nothing" 0 "$(col "damaged found" 3 - <<<"$H_OUT")"
h_eq "second pass verified every object" "${#SIZES[@]}" "$(col "objects checked" 3 - <<<"$H_OUT")"
h_finish
