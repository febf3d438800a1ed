#!/usr/bin/env bash
# test_cluster_orphans: the cluster-wide orphan sweep (`cairn admin orphans`; docs/storage.md,
# "Orphans on a cluster"). The loopback cluster, boto3: objects of several sizes, a multipart
# object, two versions of a key in a versioned bucket, and an upload left open with one part
# written; then three chunks no record
# names written straight to n2, n4 and n5 through the node RPC (`cairn node-rpc check --write
# --keep`). With the default grace (an hour) the sweep finds no orphan and reports the three as
# young; after 3 quiet seconds a dry run with --grace 2 reports exactly the three and deletes
# none; --delete deletes them; a third run finds none. Every object reads back byte-exact and
# the open upload completes with its part intact. With n6 SIGKILLed the sweep refuses (a node
# down may hold the only copy of a name). About 25 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need ss
. "$(dirname "$0")/lib_cluster.sh"
lc_up itorph boto3
EPS=$(lc_endpoints)
ep() { echo "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 20 + ${1#n}))"; }
rpc() { echo "$1@127.0.0.1:$((CAIRN_CLUSTER_PORT + 40 + ${1#n}))"; }
PYF=$H_WORK/orph.py
cat >"$PYF" <<'PY'
import json, os, sys
sys.path.insert(0, os.environ["H_DIR"])
from lc_boto import body, client

MIB = 1 << 20

def fail(msg):
    print("FAIL -", msg, flush=True)
    sys.exit(1)

phase, eps, state = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
c = [client(e) for e in eps]
b = "orph"
sizes = {"small": 3000, "one": 700000, "stripes": 5 * MIB + 12345}
if phase == "write":
    c[0].create_bucket(Bucket=b)
    for i, (k, n) in enumerate(sizes.items()):
        c[i % 6].put_object(Bucket=b, Key=k, Body=body(k, n))
    u = c[1].create_multipart_upload(Bucket=b, Key="mp")["UploadId"]
    parts = [{"PartNumber": i, "ETag": c[i].upload_part(Bucket=b, Key="mp", UploadId=u,
              PartNumber=i, Body=body("mp%d" % i, 5 * MIB if i == 1 else MIB))["ETag"]}
             for i in (1, 2)]
    c[3].complete_multipart_upload(Bucket=b, Key="mp", UploadId=u,
                                   MultipartUpload={"Parts": parts})
    o = c[4].create_multipart_upload(Bucket=b, Key="open")["UploadId"]
    e = c[5].upload_part(Bucket=b, Key="open", UploadId=o, PartNumber=1,
                         Body=body("open1", 5 * MIB))["ETag"]
    c[0].create_bucket(Bucket=b + "v")
    c[0].put_bucket_versioning(Bucket=b + "v", VersioningConfiguration={"Status": "Enabled"})
    v1 = c[2].put_object(Bucket=b + "v", Key="k", Body=body("v1", 900000))["VersionId"]
    c[3].put_object(Bucket=b + "v", Key="k", Body=body("v2", 800000))
    json.dump({"open": o, "etag": e, "v1": v1}, open(state, "w"))
    print("written")
else:
    st = json.load(open(state))
    for i, (k, n) in enumerate(sizes.items()):
        got = c[(i + 2) % 6].get_object(Bucket=b, Key=k)["Body"].read()
        if got != body(k, n):
            fail("%s does not read back byte-exact" % k)
    want = body("mp1", 5 * MIB) + body("mp2", MIB)
    if c[2].get_object(Bucket=b, Key="mp")["Body"].read() != want:
        fail("mp does not read back byte-exact")
    e2 = c[1].upload_part(Bucket=b, Key="open", UploadId=st["open"], PartNumber=2,
                          Body=body("open2", 1000))["ETag"]
    c[0].complete_multipart_upload(Bucket=b, Key="open", UploadId=st["open"], MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": st["etag"]}, {"PartNumber": 2, "ETag": e2}]})
    if c[4].get_object(Bucket=b, Key="open")["Body"].read() != body("open1", 5 * MIB) + body("open2", 1000):
        fail("the upload left open does not read back byte-exact")
    old = c[5].get_object(Bucket=b + "v", Key="k", VersionId=st["v1"])["Body"].read()
    if old != body("v1", 900000) or c[1].get_object(Bucket=b + "v", Key="k")["Body"].read() != body("v2", 800000):
        fail("a version of the versioned key does not read back byte-exact")
    print("verified")
PY
export H_DIR
h_run "objects, a multipart object and an open upload written" "$H_PY" "$PYF" write "$EPS" "$H_WORK/st.json" || h_finish

# Three chunks no record names, on three nodes (the first drive of n2, the second of n4 and n5).
export CAIRN_RPC_SECRET
CAIRN_RPC_SECRET=$(cat "$CAIRN_CLUSTER_DIR/rpc.secret")
kept=0
for nd in n2:0 n4:1 n5:1; do
    out=$("$CAIRN_BIN" node-rpc check --write "${nd#*:}" --size 65536 --keep "$(rpc "${nd%:*}")" 2>&1)
    grep -q "^kept " <<<"$out" && kept=$((kept + 1))
done
h_eq "three unnamed chunks written through the node RPC" 3 "$kept"

total() { # total COLUMN (from the table's total row: cells named young orphans bytes deleted)
    awk -v col="$1" '$1 == "total" { print $(col + 1) }' <<<"$H_OUT"
}
orphans() { "$CAIRN_BIN" admin orphans --endpoint "$(ep n1)" "$@"; }

# Right after the start a node may not have reported its layout epoch in its member value yet:
# the sweep refuses then ("a layout change is under way"); wait for the reports. On a loaded
# machine a node's lease may also lapse for a moment (its keepalive late): the sweep then stops
# at "node nX of the layout is down" until the node has registered again; wait for that too.
for ((i = 0; i < 60; i++)); do
    out=$(orphans 2>&1) && ! grep -q "did not complete" <<<"$out" && break
    grep -Eq "layout change is under way|has not reported its layout|of the layout is down" \
        <<<"$out" || break
    sleep 0.5
done
h_run "a sweep with the default grace (an hour)" orphans
h_eq "... finds no orphan" 0 "$(total 4)"
h_eq "... and reports the three chunks as young unnamed" 3 "$(total 3)"
echo "$H_OUT"

sleep 3 # every cell is now older than a grace of 2 s
h_run "a dry run with --grace 2" orphans --grace 2
echo "$H_OUT"
h_eq "... finds exactly the three chunks" 3 "$(total 4)"
h_eq "... and deletes none" 0 "$(total 6)"
h_eq "... no young cells left" 0 "$(total 3)"
grep -q "dry run" <<<"$H_OUT" || h_bad "the dry run says so" "$H_OUT"

h_run "a sweep with --delete --grace 2 (through n3)" "$CAIRN_BIN" admin orphans --delete --grace 2 --endpoint "$(ep n3)"
echo "$H_OUT"
h_eq "... deletes the three" 3 "$(total 6)"
h_run "a third sweep" orphans --grace 2
h_eq "... finds none left" 0 "$(total 4)"

h_run "every object and version reads back byte-exact; the open upload completes" "$H_PY" "$PYF" verify "$EPS" "$H_WORK/st.json"

kill -KILL "$(lc_pid n6)"
refused="" ran=0
for ((i = 0; i < 40; i++)); do # until the member lease (5 s) runs out, the mark of n6 fails
    if out=$(orphans --grace 2 2>&1); then
        ran=$((ran + 1))
    else
        refused=$out
        grep -q "node n6 of the layout is down" <<<"$out" && break
    fi
    sleep 0.5
done
h_eq "with n6 killed no sweep completes" 0 "$ran"
if grep -q "node n6 of the layout is down" <<<"$refused"; then
    h_ok "once n6's lease ran out the sweep refuses, naming it"
else
    h_bad "once n6's lease ran out the sweep refuses, naming it" "$refused"
fi
lc stop >/dev/null 2>&1
lc_check_sanitizers
h_finish
