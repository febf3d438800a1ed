#!/usr/bin/env bash
# test_cluster_buckets: the bucket namespace in etcd (issue 9) with one etcd member (lib_etcd.sh)
# and three `cairn server` nodes n1..n3 of one cluster (a layout applied with `cairn admin layout`,
# region eu-west-1 so that S3 answers an owner re-creating a bucket with 409). A bucket created
# through n1 is listed by n2 and n3 within a bounded wait and takes a PutObject through n3; 8
# concurrent CreateBucket of one name through the 3 nodes: exactly one 200, seven 409
# BucketAlreadyOwnedByYou; 200 requests for unknown buckets through n2 cost at most one etcd
# read per 50 ms; DeleteBucket through n2 removes it everywhere; `cairn admin status`
# shows the 3 nodes up by AZ; with etcd stopped CreateBucket and DeleteBucket get 503
# ServiceUnavailable as S3 XML while object reads and the bucket list keep working; bucket tags set
# through n1 are read through n2, and with etcd stopped PutBucketTagging gets 503 while
# GetBucketTagging answers from memory; a website configuration put through n2 with the aws CLI
# is read back through n1; etcd back, a node killed with SIGKILL shows as DOWN
# within its lease TTL (users, policies and anonymous requests on a cluster: test_cluster_users).
# About 15 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and clustered servers"
. "$H_DIR/lib_etcd.sh"
export CAIRN_REGION=eu-west-1
cl_cluster cb 2 n1 n2 n3

CL_SERVER_CONF="region = eu-west-1"
node_start() { cl_node_start "$1" cb; }
node_stop() { cl_node_stop "$1"; }
s3() { # s3 NODE CMD ARGS...: s3raw.py against NODE
    local n=$1
    shift
    CAIRN_ENDPOINT="http://127.0.0.1:${PORT[$n]}" "$H_PY" "$H_DIR/s3raw.py" "$@"
}
until_ok() { h_until_ok "$@"; }
listed() { grep -q "<Name>$2</Name>" <<<"$(s3 "$1" ls)"; }
not_listed() {
    local out
    out=$(s3 "$1" ls)
    grep -q "^200 " <<<"$out" && ! grep -q "<Name>$2</Name>" <<<"$out"
}
admin_status() { "$CAIRN_BIN" admin status --region eu-west-1 --endpoint "http://127.0.0.1:${PORT[$1]}"; }
status_has() { admin_status "$1" | grep -Eq -- "$2"; }
is_status() { # is_status CODE: the last s3 answer (in $H_OUT) had HTTP status CODE
    grep -q "^$1 " <<<"$H_OUT" && h_ok "  ... with HTTP status $1" || h_bad "HTTP status $1" "$H_OUT"
}

for n in "${NODES[@]}"; do node_start "$n" || h_finish; done

# ---- admin status: the cluster by node and AZ ----
until_ok "n1's status shows 3 nodes up in 3 AZs" 10 status_has n1 "AZs: az1: 1/1 up, az2: 1/1 up, az3: 1/1 up"
H_OUT=$(admin_status n1)
grep -Eq "^n3 +az3 +127.0.0.1:${RPORT[n3]} +up +2 +(just now|[0-9]+[smhd] ago)" <<<"$H_OUT" &&
    h_ok "status: a row per node (az, address, state, drives, last seen)" ||
    h_bad "status node rows" "$H_OUT"
echo "$H_OUT" | sed -n '/^cluster:/,$p' | sed 's/^/   | /'

# ---- a bucket created through n1 exists on every node ----
h_run "CreateBucket shared through n1" s3 n1 mb shared
until_ok "n2 lists bucket shared" 5 listed n2 shared
until_ok "n3 lists bucket shared" 5 listed n3 shared
h_gen "$H_WORK/obj" 100000 9
h_run "PutObject into shared through n3" s3 n3 put shared obj "$H_WORK/obj"
h_run "GetObject through n3" s3 n3 get shared obj "$H_WORK/back"
h_eq "object reads back" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back")"
h_fails_with "the same bucket again through n2: 409 BucketAlreadyOwnedByYou" \
    "<Code>BucketAlreadyOwnedByYou</Code>" s3 n2 mb shared && is_status 409

# A request through n3 right after the create through n1 (one process, no start-up gap): found
# through the namespace (etcd) when n3's watch has not delivered the bucket yet.
H_OUT=$("$H_PY" - "${PORT[n1]}" "${PORT[n3]}" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % sys.argv[1]
st1 = s3raw.request("PUT", "/quick")[0]
os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % sys.argv[2]
st2 = s3raw.request("PUT", "/quick/k", body=b"hello")[0]
print(st1, st2)
EOF
)
[ "$H_OUT" = "200 200" ] && h_ok "PutObject through n3 at once after CreateBucket through n1" ||
    h_bad "PutObject through n3 at once after CreateBucket through n1" "$H_OUT"
grep -q "bucket quick: in the namespace before the watch delivered it" "$H_WORK/n3.log" &&
    echo "   (n3 found it through etcd before its watch delivered it)"

# ---- a flood of requests for unknown buckets through n2: shared, paced etcd reads ----
H_OUT=$("$H_PY" - "${PORT[n2]}" <<'EOF'
import json, os, sys, threading, time
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % sys.argv[1]
def fresh():
    st, _, body = s3raw.request("GET", "/admin/status")
    b = json.loads(body)["cluster"]["buckets"]
    return b["fresh_lookups"], b["fresh_reads"]
l0, r0 = fresh()
codes = []
def flood(t):
    for i in range(25):
        codes.append(s3raw.request("GET", "/nx-%d-%d-%d/k" % (os.getpid(), t, i))[0])
t0 = time.monotonic()
ths = [threading.Thread(target=flood, args=(t,)) for t in range(8)]
for t in ths: t.start()
for t in ths: t.join()
ms = (time.monotonic() - t0) * 1000
l1, r1 = fresh()
print(len(codes), codes.count(404), l1 - l0, r1 - r0, int(ms))
EOF
)
read -r fl_n fl_404 fl_lookups fl_reads fl_ms <<<"$H_OUT"
[ "$fl_n" = 200 ] && [ "$fl_404" = 200 ] && [ "${fl_lookups:-0}" -ge 200 ] &&
    [ "$fl_reads" -le $((1 + fl_ms / 50)) ] && [ "$fl_reads" -lt 100 ] &&
    h_ok "200 requests for unknown buckets: 404 each, $fl_reads etcd reads in $fl_ms ms (at most one per 50 ms)" ||
    h_bad "unknown-bucket flood (n, 404s, lookups, etcd reads, ms)" "$H_OUT"

# ---- 8 concurrent CreateBucket of one name through the 3 nodes ----
H_OUT=$("$H_PY" - "${PORT[n1]}" "${PORT[n2]}" "${PORT[n3]}" <<'EOF'
import multiprocessing as mp, os, re, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
ports = sys.argv[1:]
def create(i, barrier, q):
    os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % ports[i % 3]  # this process's node
    barrier.wait()
    st, _, body = s3raw.request("PUT", "/race")
    code = re.search(rb"<Code>([^<]*)</Code>", body)
    q.put("%d %s" % (st, code.group(1).decode() if code else "-"))
barrier, q = mp.Barrier(8), mp.Queue()
procs = [mp.Process(target=create, args=(i, barrier, q)) for i in range(8)]
for p in procs: p.start()
print("\n".join(q.get(timeout=30) for _ in procs))
for p in procs: p.join()
EOF
)
oks=$(grep -c "^200 " <<<"$H_OUT")
owned=$(grep -c "^409 BucketAlreadyOwnedByYou" <<<"$H_OUT")
[ "$oks" -eq 1 ] && [ "$owned" -eq 7 ] &&
    h_ok "8 racing creates: exactly one 200, seven 409 BucketAlreadyOwnedByYou" ||
    h_bad "8 racing creates" "$H_OUT"
for n in "${NODES[@]}"; do until_ok "$n lists race" 5 listed "$n" race; done

# ---- DeleteBucket through n2 removes it everywhere ----
h_run "DeleteBucket race through n2" s3 n2 rb race
grep -q "^204" <<<"$H_OUT" && h_ok "DeleteBucket answered 204" || h_bad "204" "$H_OUT"
for n in "${NODES[@]}"; do until_ok "$n no longer lists race" 5 not_listed "$n" race; done
h_fails_with "HEAD of the deleted bucket through n3: 404" "^404" s3 n3 head race x
h_fails_with "DeleteBucket of a non-empty bucket through n3: 409 BucketNotEmpty" \
    "<Code>BucketNotEmpty</Code>" s3 n3 rb shared && is_status 409
h_run "create it again through n3" s3 n3 mb race

# ---- bucket tags: in the bucket document, set through n1, read through n2 from its copy ----
btag() { # btag NODE PUT|GET|DELETE BUCKET [KEY=VALUE]: ?tagging of BUCKET through NODE
    "$H_PY" - "${PORT[$1]}" "$2" "$3" "${4:-}" <<'EOF'
import base64, hashlib, os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % sys.argv[1]
body, headers = b"", {}
if sys.argv[2] == "PUT":
    k, v = sys.argv[4].split("=", 1)
    body = ("<Tagging><TagSet><Tag><Key>%s</Key><Value>%s</Value></Tag></TagSet></Tagging>" %
            (k, v)).encode()
    headers["Content-MD5"] = base64.b64encode(hashlib.md5(body).digest()).decode()
st, _, resp = s3raw.request(sys.argv[2], "/" + sys.argv[3], {"tagging": ""}, body=body,
                            headers=headers)
print(st, resp.decode("utf-8", "replace")[:300])
sys.exit(0 if 200 <= st < 300 else 1)
EOF
}
tagged() { grep -q "<Value>$3</Value>" <<<"$(btag "$1" GET "$2")"; }
h_run "PutBucketTagging shared through n1" btag n1 PUT shared team=storage
tagged n1 shared storage && h_ok "n1 reads its tags back at once" ||
    h_bad "n1 reads its tags back at once" "$(btag n1 GET shared)"
until_ok "n2 reads the bucket's tags" 5 tagged n2 shared storage
h_run "DeleteBucketTagging race through n3" btag n3 DELETE race
h_fails_with "GetBucketTagging race through n3: NoSuchTagSet" "<Code>NoSuchTagSet</Code>" \
    btag n3 GET race

# ---- etcd stopped: bucket changes refused with 503, objects still served ----
etcd_stop
h_ok "etcd stopped"
h_fails_with "PutBucketTagging with etcd down: 503" "<Code>ServiceUnavailable</Code>" \
    btag n1 PUT shared team=other && is_status 503
tagged n2 shared storage && h_ok "GetBucketTagging through n2 during the outage (from memory)" ||
    h_bad "GetBucketTagging through n2 during the outage" "$(btag n2 GET shared)"
h_fails_with "CreateBucket with etcd down: 503 ServiceUnavailable (S3 XML)" \
    "^<Error><Code>ServiceUnavailable</Code>" s3 n1 mb during && is_status 503
h_fails_with "DeleteBucket with etcd down: 503" "<Code>ServiceUnavailable</Code>" s3 n2 rb race &&
    is_status 503
h_run "GetObject through n3 with etcd down" s3 n3 get shared obj "$H_WORK/back2"
h_eq "object reads back during the outage" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back2")"
listed n2 shared && listed n1 race && h_ok "bucket lists kept during the outage" ||
    h_bad "bucket lists kept during the outage" "$(s3 n2 ls)"
etcd_restart 0 && h_ok "etcd restarted" || h_bad "etcd restarted"
h_run "CreateBucket after etcd is back" s3 n1 mb after
until_ok "n3 lists it" 5 listed n3 after

# ---- a website configuration: a member of the namespace (serving: test_cluster_website) ----
h_run "PutBucketWebsite through n2 (aws CLI)" \
    aws --region eu-west-1 --endpoint-url "http://127.0.0.1:${PORT[n2]}" s3api put-bucket-website \
    --bucket shared --website-configuration '{"IndexDocument":{"Suffix":"index.html"}}'
site_of() {
    grep -q '"Suffix": "index.html"' <<<"$(aws --region eu-west-1 \
        --endpoint-url "http://127.0.0.1:${PORT[$1]}" s3api get-bucket-website --bucket shared)"
}
until_ok "GetBucketWebsite through n1 answers it" 5 site_of n1

# ---- a node killed: DOWN in the others' status within its lease TTL ----
until_ok "3 nodes up again after the outage" 10 status_has n1 "AZs: az1: 1/1 up, az2: 1/1 up, az3: 1/1 up"
kill -KILL "${PID[n3]}"
wait "${PID[n3]}" 2>/dev/null
h_ok "n3 killed with SIGKILL"
until_ok "n1's status shows n3 DOWN (lease TTL 2 s)" 8 status_has n1 "AZs: az1: 1/1 up, az2: 1/1 up, az3: 0/1 up"
status_has n1 "^n3 +az3 +127.0.0.1:${RPORT[n3]} +DOWN +2 +(just now|[0-9]+[smhd] ago)" &&
    h_ok "n3's row says DOWN with when it was last seen" ||
    h_bad "n3 DOWN row" "$(admin_status n1)"

node_stop n1
node_stop n2
etcd_stop
if [ "$H_FAILS" -gt 0 ]; then
    for n in "${NODES[@]}"; do echo "---- $n log"; tail -15 "$H_WORK/$n.log"; done
fi
h_finish
