#!/usr/bin/env bash
# Fault: deleting on a full disk gives the space back (issue 8, item 10). The data dir is a small
# tmpfs (every drive folder on it, default segment size, so all data sits in each drive's active
# segment). 1 MiB PUTs go in until one answers 507; half of the objects are deleted; then PUTs
# must work again within a few seconds (the dead cells are punched out of the segment files), every
# surviving object must read back byte-exact, and `cairn admin status` (and /metrics) must show
# per drive the space used, live and reclaimable. fsck is clean after a stop, and everything reads
# back after a restart. Needs root to mount the tmpfs; without it the test says so and passes
# (tests/unit/test_blobstore_reclaim.c covers the store).
source "$(dirname "$0")/lib.sh"
h_own_server "its server runs on a small tmpfs"
source "$H_DIR/lib_fault.sh"
TMPFS_MB=${TMPFS_MB:-64}
if ! fault_tmpfs "$TMPFS_MB" cairn-reclaim; then
    h_ok "cannot mount a tmpfs here (not root?): test_blobstore_reclaim covers hole punching"
    h_finish
fi

# One python process drives the whole sequence (a process per request would make it slow):
#   fill      PUT 1 MiB objects obj-0.. until one is refused; prints "stored N STATUS"
#   delete    DELETE every even-numbered object of the first N
#   refill    PUT new objects again-0.. until one succeeds, for at most SECONDS; prints
#             "refill-ok SECONDS_TAKEN" or "refill-failed STATUS"; then PUTs 3 more
#   verify    GET every object that should exist; prints "bad COUNT of TOTAL"
drive() {
    CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" - "$H_DIR" "$FAULT_BUCKET" "$@" <<'EOF'
import hashlib, random, sys, time
sys.path.insert(0, sys.argv[1])
import s3raw
bucket, cmd, args = sys.argv[2], sys.argv[3], sys.argv[4:]
MiB = 1 << 20

def body(name):
    return random.Random(name).randbytes(MiB)

def put(name):
    st, _, resp = s3raw.request("PUT", "/%s/%s" % (bucket, name), body=body(name))
    return st, resp.decode("utf-8", "replace")[:200]

if cmd == "fill":
    n = 0
    while n < int(args[0]):
        st, resp = put("obj-%d" % n)
        if st != 200:
            print("stored", n, st, resp.replace("\n", " "))
            break
        n += 1
    else:
        print("stored", n, "never-full")
elif cmd == "delete":
    bad = 0
    for i in range(0, int(args[0]), 2):
        st, _, _ = s3raw.request("DELETE", "/%s/obj-%d" % (bucket, i))
        bad += st != 204
    print("delete-failures", bad)
elif cmd == "refill":
    start, i, last = time.monotonic(), 0, ""
    while time.monotonic() - start < float(args[0]):
        st, resp = put("again-%d" % i)
        if st == 200:
            break
        last = "%d %s" % (st, resp.replace("\n", " "))
        time.sleep(0.2)
    else:
        print("refill-failed", last)
        sys.exit(0)
    took = time.monotonic() - start
    # three more, each retried for up to 5 s: the rest of the dead space is punched at the
    # blobstore's next ticks (at least once a second), not by the delete itself
    extra = 0
    for j in range(i + 1, i + 4):
        until = time.monotonic() + 5
        ok = put("again-%d" % j)[0] == 200
        while not ok and time.monotonic() < until:
            time.sleep(0.2)
            ok = put("again-%d" % j)[0] == 200
        extra += ok
    print("refill-ok %.1f" % took, "then", extra, "of 3 more", "next", i + 4)
elif cmd == "verify":
    names = ["obj-%d" % i for i in range(1, int(args[0]), 2)]
    names += ["again-%d" % i for i in range(int(args[1]))]
    bad = 0
    for name in names:
        st, _, got = s3raw.request("GET", "/%s/%s" % (bucket, name))
        bad += st != 200 or hashlib.md5(got).digest() != hashlib.md5(body(name)).digest()
    print("bad", bad, "of", len(names))
EOF
}

# Per-drive space from GET /admin/status, summed over the drives: "used live reclaimable" bytes.
status_sums() {
    CAIRN_ENDPOINT=$H_ENDPOINT "$H_PY" - "$H_DIR" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import s3raw
st, _, body = s3raw.request("GET", "/admin/status")
d = json.loads(body)["drives"]
print(sum(x["used_bytes"] for x in d), sum(x["live_bytes"] for x in d),
      sum(x["reclaimable_bytes"] for x in d))
EOF
}

h_start
h_run "create bucket" s3raw mb "$FAULT_BUCKET"
out=$(drive fill 200)
echo "$out"
read -r _ stored status _ <<<"$out"
if [ "$stored" -ge 10 ] && [ "$status" = 507 ]; then
    h_ok "$stored PUTs fit, then 507 InsufficientStorage"
else
    h_bad "PUTs until the disk is full, then 507" "$out"
fi
df -k "$H_DATA" | tail -1
h_eq "every delete answers 204 on the full disk" "delete-failures 0" "$(drive delete "$stored")"
out=$(drive refill 10)
echo "$out"
case "$out" in
"refill-ok "*) h_ok "PUTs work again after the deletes (${out#refill-ok })" ;;
*) h_bad "PUTs work again within 10 s of the deletes" "$out" ;;
esac
took=$(awk '{print $2}' <<<"$out")
if [ -n "$took" ] && awk -v t="$took" 'BEGIN { exit !(t <= 5) }'; then
    h_ok "the first PUT after the deletes succeeded within 5 s (${took} s)"
else
    h_bad "the first PUT after the deletes succeeded within 5 s" "$out"
fi
again=$(sed -n 's/.* next \([0-9]*\).*/\1/p' <<<"$out")
again=${again:-0}
df -k "$H_DATA" | tail -1
h_eq "surviving and new objects byte-exact" "bad 0 of $((stored / 2 + again))" \
    "$(drive verify "$stored" "$again")"

# check_space WHEN: /admin/status used, live and reclaimable add up, and little is left dead.
check_space() {
    local sums used live reclaim
    if ! sums=$(status_sums); then
        h_bad "admin status answers with used_bytes, live_bytes, reclaimable_bytes ($1)" "$sums"
        return
    fi
    read -r used live reclaim <<<"$sums"
    # punching runs at the blobstore's ticks (at least once a second): give it a few
    for _ in 1 2 3 4 5; do
        [ "$used" -lt $((live + live / 10 + 4 * 1048576)) ] && break
        sleep 1
        sums=$(status_sums) && read -r used live reclaim <<<"$sums"
    done
    echo "admin status, all drives ($1): used $used live $live reclaimable $reclaim"
    # used = live + reclaimable + headers of live records; after punching little is left dead
    if [ "$used" -ge "$live" ] && [ "$live" -gt 0 ] && [ "$reclaim" -le $((used - live)) ] &&
        [ "$used" -lt $((live + live / 10 + 4 * 1048576)) ]; then
        h_ok "admin status ($1): used $used >= live $live, reclaimable $reclaim"
    else
        h_bad "admin status ($1): used, live and reclaimable consistent after reclaim" "$sums"
    fi
}
check_space "after the deletes"
if h_run "cairn admin status prints the table" "$CAIRN_BIN" admin status --endpoint "$H_ENDPOINT"; then
    printf '%s\n' "$H_OUT"
    if grep -q "reclaimable" <<<"$H_OUT"; then
        h_ok "the drive table has used, live and reclaimable columns"
    else
        h_bad "the drive table has used, live and reclaimable columns" "$H_OUT"
    fi
fi
h_eq "/metrics has used, live and reclaimable bytes for the 6 drives" 18 \
    "$(curl -fsS --max-time 5 "$H_ENDPOINT/metrics" |
        grep -cE '^cairn_blobstore_(used|live|reclaimable)_bytes\{drive="[0-5]"\} [0-9]+$')"

h_stop
if h_run "fsck after deletes on the full disk: clean" "$CAIRN_BIN" fsck --data "$H_DATA"; then
    printf '%s\n' "$H_OUT"
fi
h_start
h_eq "surviving and new objects byte-exact after a restart" \
    "bad 0 of $((stored / 2 + again))" "$(drive verify "$stored" "$again")"
check_space "after a restart"
h_finish
