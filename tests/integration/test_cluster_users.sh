#!/usr/bin/env bash
# test_cluster_users: users and access keys cluster-wide (docs/users.md, "On a cluster"). Starts
# deploy/local-cluster.sh (3 etcd members, 6 nodes; one master key file for every node).
# `cairn admin user create` through n1 makes alice and bob; alice's key works through n4 within
# the watch delay (the time is printed), she creates a bucket there and reads her object back
# through n2; bob is denied her object through n5 (403 AccessDenied) and does not list her
# bucket; `cairn admin user list` through n6 shows both, a second alice through n3 is 409; the
# users document in etcd and every node's data hold no secret in the clear; alice's key disabled
# through n2 is refused (InvalidAccessKeyId) by every node, enabled again through n3 works on n6;
# bob disabled through n4 is refused through n1, deleted through n5 refused everywhere. Last, n6
# restarted with another master key refuses alice's key (it cannot unwrap it) and says why in its
# log, while n1 still serves her. Between those: alice's bucket policy put through n2 lets bob read
# shared/* through n5 (obj outside it: 403) and anonymous requests read public/* through n6
# (other keys, a PUT: 403, nothing written);
# RestrictPublicBuckets put through n1 closes public/* to anonymous requests on n6 (bob still
# reads), deleted through n3 reopens it; a public bucket ACL is refused under BucketOwnerEnforced,
# accepted after BucketOwnerPreferred through n2 and lets n6 list the bucket anonymously; a public
# object ACL put through n3 opens that object to anonymous reads through n6 (tag conditions and
# more on object ACLs: test_cluster_website.sh); the policy deleted through n4 closes it all again
# on n5 and n6. About 25 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
. "$H_DIR/lib_cluster.sh"
. "$H_DIR/lib_etcd.sh" # h_until_ok
export CAIRN_BIN
unset CAIRN_MASTER_KEY # every node reads the cluster's DIR/master.key (local-cluster.sh)
lc_up cu
IFS=, read -r -a EP <<<"$(lc_endpoints)"

ep() { echo "${EP[$((${1#n} - 1))]}"; }
admin() { # admin NODE ARGS...: cairn admin user ARGS against NODE, as root
    local n=$1
    shift
    "$CAIRN_BIN" admin user "$@" --endpoint "$(ep "$n")"
}
as() { # as USER NODE s3raw ARGS...: a request signed with USER's key (AK_USER / SK_USER)
    local ak=AK_$1 sk=SK_$1 n=$2
    shift 2
    CAIRN_ACCESS_KEY=${!ak} CAIRN_SECRET_KEY=${!sk} CAIRN_ENDPOINT=$(ep "$n") \
        "$H_PY" "$H_DIR/s3raw.py" "$@"
}
refused() { # refused USER NODE: USER's key is InvalidAccessKeyId there (the answer printed if not)
    local out
    out=$(as "$1" "$2" ls 2>&1)
    grep -q "<Code>InvalidAccessKeyId</Code>" <<<"$out" || { echo "$out" | head -c 300; return 1; }
}
works() { grep -q "^200 " <<<"$(as "$1" "$2" ls)"; }
is_status() { # is_status CODE: the last answer (in $H_OUT) had HTTP status CODE
    grep -q "^$1 " <<<"$H_OUT" && h_ok "  ... with HTTP status $1" || h_bad "HTTP status $1" "$H_OUT"
}
every_node() { # every_node DESC CHECK USER: CHECK USER NODE holds on every node within 5 s
    local n
    for n in n1 n2 n3 n4 n5 n6; do h_until_ok "$1 ($n)" 5 "$2" "$3" "$n"; done
}

sub() { # sub USER NODE METHOD BUCKET SUBRESOURCE [BODY]: a bucket subresource request as USER
    local ak=AK_$1 sk=SK_$1
    CAIRN_ACCESS_KEY=${!ak} CAIRN_SECRET_KEY=${!sk} CAIRN_ENDPOINT=$(ep "$2") \
        "$H_PY" - "$3" "$4" "$5" "${6:-}" <<'EOF'
import base64, hashlib, os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
method, bucket, sub, body = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].encode()
headers = {"Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()} if body else {}
st, _, resp = s3raw.request(method, "/" + bucket, {sub: ""}, body=body, headers=headers)
print(st, resp.decode("utf-8", "replace")[:3000])
sys.exit(0 if 200 <= st < 300 else 1)
EOF
}
with_acl() { # with_acl USER NODE PATH ACL: PUT PATH (a bucket: PutBucketAcl; else an object) as USER
    local ak=AK_$1 sk=SK_$1
    CAIRN_ACCESS_KEY=${!ak} CAIRN_SECRET_KEY=${!sk} CAIRN_ENDPOINT=$(ep "$2") \
        "$H_PY" - "$3" "$4" <<'EOF'
import os, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
path, acl = sys.argv[1], sys.argv[2]
bucket_acl = path.count("/") == 1
st, _, resp = s3raw.request("PUT", path, {"acl": ""} if bucket_acl else {},
                            body=b"" if bucket_acl else b"x", headers={"x-amz-acl": acl})
print(st, resp.decode("utf-8", "replace")[:300])
sys.exit(0 if st == 200 else 1)
EOF
}
anon() { # anon NODE PATH: an unsigned GET; prints the status, then the body; fails unless 2xx
    local code
    code=$(curl -s -o "$H_WORK/anon.body" -w '%{http_code}' "$(ep "$1")$2")
    echo "$code"
    cat "$H_WORK/anon.body"
    [ "${code:0:1}" = 2 ]
}
anon_is() { [ "$(anon "$1" "$2" | head -n 1)" = "$3" ]; }
bob_denied_shared() { ! as bob n5 get alicebkt shared/doc "$H_WORK/x" >/dev/null; }

make_user() { # make_user NAME NODE: sets AK_NAME and SK_NAME
    local out
    if out=$(admin "$2" create "$1"); then
        h_ok "cairn admin user create $1 through $2"
    else
        h_bad "cairn admin user create $1 through $2" "$out"
        h_finish
    fi
    printf -v "AK_$1" '%s' "$(sed -n 's/^access_key=//p' <<<"$out")"
    printf -v "SK_$1" '%s' "$(sed -n 's/^secret_key=//p' <<<"$out")"
}

# ---- created through n1, usable through n4 ----
make_user alice n1
h_until_ok "alice's key works through n4" 5 works alice n4
make_user bob n1
h_run "alice creates bucket alicebkt through n4" as alice n4 mb alicebkt
h_gen "$H_WORK/obj" 5000 3
h_run "alice puts an object through n4" as alice n4 put alicebkt obj "$H_WORK/obj"
h_run "alice reads it back through n2" as alice n2 get alicebkt obj "$H_WORK/back"
h_eq "object reads back" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/back")"
h_until_ok "bob's key works through n5" 5 works bob n5
h_fails_with "bob is denied alice's object through n5" "<Code>AccessDenied</Code>" \
    as bob n5 get alicebkt obj "$H_WORK/x" && is_status 403
h_fails_with "bob cannot write into alice's bucket through n3" "<Code>AccessDenied</Code>" \
    as bob n3 put alicebkt evil "$H_WORK/obj" && is_status 403
grep -q "alicebkt" <<<"$(as bob n5 ls)" && h_bad "bob does not list alice's bucket" "$(as bob n5 ls)" ||
    h_ok "bob does not list alice's bucket"
grep -q "<Name>alicebkt</Name>" <<<"$(as alice n6 ls)" && h_ok "alice lists her bucket through n6" ||
    h_bad "alice lists her bucket through n6" "$(as alice n6 ls)"
h_run "cairn admin user list through n6" admin n6 list
grep -q alice <<<"$H_OUT" && grep -q bob <<<"$H_OUT" && h_ok "  ... shows alice and bob" ||
    h_bad "  ... shows alice and bob" "$H_OUT"
h_fails_with "a second alice through n3: AlreadyExists" AlreadyExists admin n3 create alice

# ---- a bucket policy put through n2, enforced on n5 and n6; access block, ACL, ownership ----
h_run "alice puts shared/doc" as alice n4 put alicebkt shared/doc "$H_WORK/obj"
h_run "alice puts public/pic" as alice n4 put alicebkt public/pic "$H_WORK/obj"
POLICY='{"Version":"2012-10-17","Statement":[{"Sid":"bob","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/bob"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::alicebkt/shared/*"},{"Sid":"pub","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::alicebkt/public/*"}]}'
h_fails_with "bob reads shared/doc before any policy: 403" "<Code>AccessDenied</Code>" \
    as bob n5 get alicebkt shared/doc "$H_WORK/x"
h_fails_with "anonymous read of public/pic before any policy: 403" "^403" anon n6 /alicebkt/public/pic
h_fails_with "bob may not put alice's bucket policy" "<Code>AccessDenied</Code>" \
    sub bob n2 PUT alicebkt policy "$POLICY"
h_run "alice puts the bucket policy through n2" sub alice n2 PUT alicebkt policy "$POLICY"
h_until_ok "bob reads shared/doc through n5 (the policy allows that prefix)" 5 \
    as bob n5 get alicebkt shared/doc "$H_WORK/x"
h_eq "  ... the object's bytes" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/x")"
h_fails_with "bob is still denied obj through n5 (outside the prefix)" "<Code>AccessDenied</Code>" \
    as bob n5 get alicebkt obj "$H_WORK/x" && is_status 403
h_until_ok "anonymous read of public/pic through n6" 5 anon_is n6 /alicebkt/public/pic 200
h_run "  ... its bytes" curl -sf -o "$H_WORK/anon" "$(ep n6)/alicebkt/public/pic"
h_eq "  ... the object's bytes" "$(h_md5 "$H_WORK/obj")" "$(h_md5 "$H_WORK/anon")"
H_OUT=$(anon n6 /alicebkt/obj)
grep -q "<Code>AccessDenied</Code>" <<<"$H_OUT" && h_ok "anonymous read of obj through n6: AccessDenied" ||
    h_bad "anonymous read of obj through n6: AccessDenied" "$H_OUT"
h_eq "  ... with HTTP status 403" 403 "$(head -n 1 <<<"$H_OUT")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary x "$(ep n6)/alicebkt/anon")
h_eq "an anonymous PUT through n6: 403" 403 "$code"
h_fails_with "  ... wrote nothing" "<Code>NoSuchKey</Code>" as alice n1 get alicebkt anon "$H_WORK/x"
h_run "GetBucketPolicy through n3" sub alice n3 GET alicebkt policy
grep -q '"Sid":"pub"' <<<"$H_OUT" && h_ok "  ... answers the policy as sent" || h_bad "  ... as sent" "$H_OUT"
h_run "GetBucketPolicyStatus through n1" sub alice n1 GET alicebkt policyStatus
grep -q "<IsPublic>true</IsPublic>" <<<"$H_OUT" && h_ok "  ... IsPublic true" || h_bad "  ... IsPublic" "$H_OUT"
PAB='<PublicAccessBlockConfiguration><RestrictPublicBuckets>true</RestrictPublicBuckets></PublicAccessBlockConfiguration>'
h_run "alice puts RestrictPublicBuckets through n1" sub alice n1 PUT alicebkt publicAccessBlock "$PAB"
h_until_ok "anonymous read of public/pic through n6 now 403" 5 anon_is n6 /alicebkt/public/pic 403
h_run "bob still reads shared/doc through n5 (users are not restricted)" \
    as bob n5 get alicebkt shared/doc "$H_WORK/x"
h_run "GetPublicAccessBlock through n4" sub alice n4 GET alicebkt publicAccessBlock
grep -q "<RestrictPublicBuckets>true</RestrictPublicBuckets>" <<<"$H_OUT" && h_ok "  ... as put" ||
    h_bad "  ... as put" "$H_OUT"
h_run "alice deletes the access block through n3" sub alice n3 DELETE alicebkt publicAccessBlock
h_until_ok "anonymous read of public/pic through n6 again" 5 anon_is n6 /alicebkt/public/pic 200
h_fails_with "a public bucket ACL under BucketOwnerEnforced: 400" "AccessControlListNotSupported" \
    with_acl alice n2 /alicebkt public-read
h_run "alice sets ownership BucketOwnerPreferred through n2" sub alice n2 PUT alicebkt ownershipControls \
    '<OwnershipControls><Rule><ObjectOwnership>BucketOwnerPreferred</ObjectOwnership></Rule></OwnershipControls>'
h_run "PutBucketAcl public-read through n2" with_acl alice n2 /alicebkt public-read
h_until_ok "an anonymous listing of alicebkt through n6 (the bucket ACL)" 5 anon_is n6 /alicebkt 200
h_run "GetBucketAcl through n1" sub alice n1 GET alicebkt acl
grep -q "AllUsers" <<<"$H_OUT" && h_ok "  ... grants AllUsers READ" || h_bad "  ... AllUsers" "$H_OUT"
h_run "alice puts o2 with x-amz-acl public-read through n3" with_acl alice n3 /alicebkt/o2 public-read
h_until_ok "an anonymous read of o2 through n6 (the object ACL)" 5 anon_is n6 /alicebkt/o2 200
h_run "alice deletes the policy through n4" sub alice n4 DELETE alicebkt policy
h_until_ok "bob is denied shared/doc through n5 again" 5 bob_denied_shared
h_until_ok "anonymous read of public/pic through n6: 403 again" 5 anon_is n6 /alicebkt/public/pic 403

# ---- secrets: wrapped in etcd and on disk ----
key64=$(printf '/cairn/cu/users' | base64 -w0)
doc=$(curl -s -X POST -d "{\"key\":\"$key64\"}" "http://127.0.0.1:$((CAIRN_CLUSTER_PORT + 1))/v3/kv/range" |
    "$H_PY" -c 'import sys, json, base64; print(base64.b64decode(json.load(sys.stdin)["kvs"][0]["value"]).decode())')
grep -q "\"ak\":\"$AK_alice\"" <<<"$doc" && h_ok "the users document in etcd holds alice's key" ||
    h_bad "the users document in etcd holds alice's key" "$doc"
if grep -q -- "$SK_alice" <<<"$doc" || grep -rqF -- "$SK_alice" "$CAIRN_CLUSTER_DIR"/n*/data* 2>/dev/null; then
    h_bad "no secret in the clear in etcd or a node's data"
else
    h_ok "no secret in the clear in etcd or a node's data"
fi

# ---- disabled, enabled, deleted: through one node, seen by all ----
h_run "disable alice's key through n2" admin n2 key disable "$AK_alice"
every_node "alice's disabled key is refused" refused alice
h_run "enable it through n3" admin n3 key enable "$AK_alice"
h_until_ok "alice's key works again through n6" 5 works alice n6
h_run "disable the user bob through n4" admin n4 disable bob
h_until_ok "bob is refused through n1" 5 refused bob n1
h_run "delete bob through n5" admin n5 delete bob
every_node "deleted bob is refused" refused bob
h_fails_with "deleting bob again: NotFound" NotFound admin n1 delete bob

# ---- a node with another master key cannot unwrap the secrets ----
pid6=$(lc_pid n6)
kill -TERM "$pid6"
for _ in $(seq 100); do kill -0 "$pid6" 2>/dev/null || break; sleep 0.1; done
other=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
if CAIRN_MASTER_KEY=$other lc start n6 >/dev/null 2>&1; then
    lc_track
    h_ok "n6 restarted with another master key"
    h_until_ok "n6 refuses alice's key" 5 refused alice n6
    grep -q "access key $AK_alice: cannot unwrap its secret.*another master key.*share the master key" "$CAIRN_CLUSTER_DIR"/n6/server.log &&
        h_ok "  ... and logs why (another master key)" ||
        h_bad "  ... and logs why" "$(grep -i unwrap "$CAIRN_CLUSTER_DIR"/n6/server.log | tail -n 3)"
    h_run "n1 still serves alice" as alice n1 get alicebkt obj "$H_WORK/back2"
else
    h_bad "n6 restarted with another master key"
fi

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
