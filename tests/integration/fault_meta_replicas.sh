#!/usr/bin/env bash
# Fault: losing two drive folders of the single-node default loses neither metadata nor inline
# bodies. The metadata lives in three copies (drive0..2/meta, docs/metadata.md "Copies on the
# drives"); large bodies are 4+2 erasure-coded over the six drive folders. Each round writes
# buckets, small (inline) and large objects, then:
#   1. stop, rm -rf drive0 and drive1 (two metadata copies and their cells), start;
#   2. SIGKILL, rm -rf drive1 and drive2, start;
#   3. while serving, rm -rf drive0 and drive2, write more (must succeed), then stop and start;
#   4. under the ldfault shim every fdatasync of drive1/meta fails: writes keep succeeding,
#      /admin/status shows copy 1 failed; restart without the shim: copy 1 is rebuilt.
# After each restart every object written so far reads back byte-exact and the listings are
# complete, and the log names the rebuilt copies; a scrub pass then restores the large bodies'
# lost cells before the next round takes two more drives. Round 0 also starts from a data dir of the old
# layout (one environment in DATA/meta), which the copies are built from.
source "$(dirname "$0")/lib.sh"
h_own_server "deletes its own drive folders and restarts its server"
source "$H_DIR/lib_fault.sh"
h_need cc

SEED=${SEED:-4100}
echo "seed: $SEED"

# objs ROUND: write round ROUND's objects (two buckets; inline 1..60 KB and 1-3 MB bodies) and
# append "bucket key md5 size" lines to $H_WORK/objs.txt. Fails on any non-200.
objs() {
    env CAIRN_ENDPOINT="$H_ENDPOINT" PYTHONPATH="$H_DIR" "$H_PY" - "$1" "$SEED" \
        "$H_WORK/objs.txt" <<'PY'
import hashlib, random, sys
import s3raw
rnd, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed * 100 + rnd)
bad = 0
with open(out, "a") as f:
    for b in ("rep-a-%d" % rnd, "rep-b-%d" % rnd):
        st, _, _ = s3raw.request("PUT", "/" + b)
        bad += st != 200
        for i in range(12):
            size = rng.randint(1, 60000) if i < 10 else rng.randint(1 << 20, 3 << 20)
            body = rng.randbytes(size)
            key = "r%d/k%02d" % (rnd, i)
            st, _, _ = s3raw.request("PUT", "/%s/%s" % (b, key), body=body)
            bad += st != 200
            if st == 200:
                f.write("%s %s %s %d\n" % (b, key, hashlib.md5(body).hexdigest(), size))
print("round %d: %d failed PUTs" % (rnd, bad))
sys.exit(1 if bad else 0)
PY
}

# verify WHAT: every object of objs.txt reads back byte-exact; every bucket lists exactly its keys.
verify() {
    if h_run "every object byte-exact and listed ($1)" env CAIRN_ENDPOINT="$H_ENDPOINT" \
        PYTHONPATH="$H_DIR" "$H_PY" - "$H_WORK/objs.txt" <<'PY'; then
import hashlib, re, sys
import s3raw
want, bad = {}, 0
for line in open(sys.argv[1]).read().split("\n"):
    if line:
        b, key, md5, size = line.split()
        want.setdefault(b, {})[key] = (md5, int(size))
for b, keys in sorted(want.items()):
    for key, (md5, size) in sorted(keys.items()):
        st, _, body = s3raw.request("GET", "/%s/%s" % (b, key))
        if st != 200 or len(body) != size or hashlib.md5(body).hexdigest() != md5:
            bad += 1
            print("bad: %s/%s status %d size %d" % (b, key, st, len(body)))
    st, _, body = s3raw.request("GET", "/" + b, query={"list-type": "2"})
    listed = set(re.findall(r"<Key>([^<]*)</Key>", body.decode()))
    if st != 200 or listed != set(keys):
        bad += 1
        print("listing of %s: status %d, %d keys, want %d" % (b, st, len(listed), len(keys)))
n = sum(len(k) for k in want.values())
print("%d objects in %d buckets checked, %d bad" % (n, len(want), bad))
sys.exit(1 if bad else 0)
PY
        h_ok "$(tail -1 <<<"$H_OUT")"
    fi
}

# rebuilt N WHAT: the log of this start names N rebuilt metadata copies.
rebuilt() {
    local got
    got=$(sed -n "$((LOG_MARK + 1)),\$p" "$H_LOG" | grep -c "metadata copy .* rebuilt from")
    h_eq "$2: $1 metadata copies rebuilt" "$1" "$got"
}
mark_log() { LOG_MARK=$(wc -l <"$H_LOG"); }
# heal: a scrub pass rebuilds the cells of the removed drive folders, so that the next round's
# two lost drives leave every large body its 4 cells (the metadata needs no such pass).
heal() { h_run "scrub rebuilds the lost cells ($1)" "$CAIRN_BIN" admin scrub --wait --endpoint "$H_ENDPOINT"; }

# meta_state: "copies_healthy/copies" from /admin/status.
meta_state() {
    env CAIRN_ENDPOINT="$H_ENDPOINT" PYTHONPATH="$H_DIR" "$H_PY" - <<'PY'
import json
import s3raw
st, _, body = s3raw.request("GET", "/admin/status")
m = json.loads(body)["meta"]
print("%d/%d %s" % (m["copies_healthy"], m["copies"], ",".join(c["state"] for c in m["list"])))
PY
}

# Round 0: a data dir of the old layout (one environment in DATA/meta) is migrated.
printf '[storage]\nmeta_replicas = 1\n' >"$H_WORK/one-copy.conf"
H_SERVER_ARGS=(--config "$H_WORK/one-copy.conf")
h_start
h_run "round 0 writes (old layout)" objs 0
h_stop
H_SERVER_ARGS=()
mark_log
h_start
rebuilt 3 "migration"
if [ -f "$H_DATA/meta.migrated/data.mdb" ] && [ ! -e "$H_DATA/meta" ]; then
    h_ok "the old store is kept as meta.migrated"
else
    h_bad "the old store is kept as meta.migrated" "$(ls "$H_DATA")"
fi
verify "migrated"

# Round 1: stopped, two drive folders removed.
h_run "round 1 writes" objs 1
h_stop
rm -rf "$H_DATA/drive0" "$H_DATA/drive1"
mark_log
h_start
rebuilt 2 "drive0 and drive1 removed while stopped"
verify "drive0 and drive1 removed while stopped"
heal "drive0 and drive1"

# Round 2: killed, two other drive folders removed.
h_run "round 2 writes" objs 2
h_kill9
rm -rf "$H_DATA/drive1" "$H_DATA/drive2"
mark_log
h_start
rebuilt 2 "drive1 and drive2 removed after SIGKILL"
verify "drive1 and drive2 removed after SIGKILL"
heal "drive1 and drive2"

# Round 3: two drive folders removed while serving; writes go on.
rm -rf "$H_DATA/drive0" "$H_DATA/drive2"
h_run "round 3 writes after drive0 and drive2 were removed while serving" objs 3
verify "drive0 and drive2 removed while serving"
h_stop
mark_log
h_start
rebuilt 2 "restart after round 3"
verify "restart after round 3"
heal "drive0 and drive2"

# Round 4: every sync of copy 1 fails while serving.
h_stop
ldfault_start LDFAULT_PATH=/drive1/meta/data.mdb LDFAULT_OP=fdatasync LDFAULT_NTH=1 \
    LDFAULT_COUNT=1000000000
h_run "round 4 writes while copy 1's syncs fail" objs 4
h_eq "status: copy 1 failed, two healthy" "2/3 ok,failed,ok" "$(meta_state)"
if grep -q "metadata copy .*drive1/meta failed" "$H_LOG"; then
    h_ok "log names the failed copy"
else
    h_bad "log names the failed copy"
fi
verify "copy 1 failed"
h_stop
mark_log
h_start
rebuilt 1 "restart after copy 1 failed"
h_eq "status: three healthy copies" "3/3 ok,ok,ok" "$(meta_state)"
verify "copy 1 rebuilt"
h_finish
