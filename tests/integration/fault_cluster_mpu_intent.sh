#!/usr/bin/env bash
# fault_cluster_mpu_intent: an UploadPart whose node is SIGKILLed mid-body leaves cells no record
# names; the intent its node wrote before the first cell frees them once the node is back and
# the grace period passed (docs/multipart-cluster.md, "Reclaiming a killed UploadPart"). The
# loopback cluster with a garbage grace of 3 s and a maintenance tick every 2 s, boto3: Create through n1, part 1 through n2, an
# 8 MiB part 2 through n4 sent slowly and n4 SIGKILLed under it; n4 started again; within the
# grace, a tick and some slack its maintenance reports the intent decided "freed"
# (intents_freed, the log) and its garbage reclaim frees the body (gc_freed); part 2 sent again
# through n5, part 3 an UploadPartCopy through n2 (its body has an intent too) and Complete
# through n6: the object reads back byte-exact through n3. The record
# landing after an Abort is repl_upload/intents (unit). About 20 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need ss
. "$(dirname "$0")/lib_cluster.sh"
export CAIRN_CLUSTER_GC_GRACE_S=3 CAIRN_CLUSTER_MAINTENANCE_S=2
lc_up itmpi boto3
EPS=$(lc_endpoints)
ST=$H_WORK/state.json
PYF=$H_WORK/mpi.py
cat >"$PYF" <<'PY'
import hashlib, io, json, os, subprocess, sys, threading, time
sys.path.insert(0, os.environ["H_DIR"])
from lc_boto import body, client

MIB = 1 << 20

def fail(msg):
    print("FAIL -", msg, flush=True)
    sys.exit(1)

phase, eps, state = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
c = [client(e) for e in eps]
b, k = "mpi", "obj"
p1, big = body("p1", 6 * MIB), body("p2", 8 * MIB)
if phase == "kill":
    pid = int(sys.argv[4])
    c[0].create_bucket(Bucket=b)
    u = c[0].create_multipart_upload(Bucket=b, Key=k)["UploadId"]
    e1 = c[1].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=1, Body=p1)["ETag"]
    res = []

    class Slow(io.BytesIO):
        """Small reads, 1 ms each: the node dies while the cells are being written."""
        def read(self, n=-1):
            if 0 < n <= 65536:
                time.sleep(0.001)
            return super().read(n)

    def send():
        try:
            res.append(c[3].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=2, Body=Slow(big)))
        except Exception as e:
            res.append(repr(e)[:60])

    port = c[3].meta.endpoint_url.rsplit(":", 1)[1]
    t = threading.Thread(target=send)
    t.start()
    for _ in range(300):  # the body is on its way once n4 has the connection
        out = subprocess.run(["ss", "-Htn", "state", "established", "( sport = :%s )" % port],
                             capture_output=True, text=True).stdout
        if out.strip():
            break
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(pid, 9)
    t.join()
    if not isinstance(res[0], str):
        fail("the UploadPart through n4 was cut by the kill: %r" % res[0])
    json.dump({"u": u, "e1": e1}, open(state, "w"))
    print("ok - UploadPart of 8 MiB through n4 SIGKILLed mid-body (%s)" % res[0], flush=True)
elif phase == "complete":
    st = json.load(open(state))
    u = st["u"]
    e2 = c[4].upload_part(Bucket=b, Key=k, UploadId=u, PartNumber=2, Body=big)["ETag"]
    src = body("src", 300 * 1024)  # above the inline threshold: a body in cells, with an intent
    c[0].put_object(Bucket=b, Key="src", Body=src)
    e3 = c[1].upload_part_copy(Bucket=b, Key=k, UploadId=u, PartNumber=3,
                               CopySource={"Bucket": b, "Key": "src"})["CopyPartResult"]["ETag"]
    c[5].complete_multipart_upload(Bucket=b, Key=k, UploadId=u, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": st["e1"]}, {"PartNumber": 2, "ETag": e2},
                  {"PartNumber": 3, "ETag": e3}]})
    got = c[2].get_object(Bucket=b, Key=k)["Body"].read()
    if hashlib.sha256(got).digest() != hashlib.sha256(p1 + big + src).digest():
        fail("the object reads back byte-exact through n3")
    print("ok - part 2 again through n5, part 3 copied through n2, Complete through n6: the "
          "object reads back byte-exact through n3", flush=True)
PY
status() { # status NODE FIELD: a counter of the node's /admin/status
    CAIRN_ENDPOINT="http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${1#n}))" "$H_PY" - "$H_DIR" "$2" <<'PY'
import re, sys
sys.path.insert(0, sys.argv[1])
import s3raw
st, _, body = s3raw.request("GET", "/admin/status")
m = re.search(rb'"' + sys.argv[2].encode() + rb'":(\d+)', body)
print(m.group(1).decode() if m else 0)
PY
}
export H_DIR
step() { h_run "$1" "$H_PY" "$PYF" "${@:2}" && sed 's/^/   /' <<<"$H_OUT"; }

step "an UploadPart whose node dies mid-body" kill "$EPS" "$ST" "$(lc_pid n4)" || { lc stop; h_finish; }
h_run "start n4 again" lc start n4 || { lc stop; h_finish; }
lc_track
freed=0
for _ in $(seq 20); do # the grace (3 s) and a maintenance tick (10 s); a sanitizer server is slower
    freed=$(status n4 intents_freed)
    [ "${freed:-0}" -ge 1 ] && break
    sleep 2
done
h_eq "n4's maintenance decided the intent it left: no record names the body, freed" 1 "$freed"
h_eq "n4 kept no intent as owned by a record" 0 "$(status n4 intents_kept)"
grep -q "intent of part 2 of upload .*: no record names its body: freed" "$CAIRN_CLUSTER_DIR/n4/server.log" &&
    h_ok "n4 logged the intent's decision" || h_bad "n4 logged the intent's decision" "$(grep intent "$CAIRN_CLUSTER_DIR/n4/server.log" | tail -3)"
gc=$(status n4 gc_freed)
[ "${gc:-0}" -ge 1 ] && h_ok "n4's garbage reclaim freed the body ($gc entries)" || h_bad "n4 freed the body" "gc_freed $gc"
step "the upload completes with part 2 sent again" complete "$EPS" "$ST"

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
