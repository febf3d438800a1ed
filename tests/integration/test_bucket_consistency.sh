#!/usr/bin/env bash
# test_bucket_consistency: how a bucket gets its consistency mode (issue 9, 2.6; docs/replication.md
# "Consistency modes: how a bucket gets its mode"). One etcd member (lib_etcd.sh), two `cairn
# server` nodes n1, n2 of one cluster and a single-node server. CreateBucket through n1 with
# x-cairn-consistency: available -> HeadBucket on n1 says available at once, on n2 within a bounded
# wait; `cairn admin bucket list` shows the table, `cairn admin bucket consistency` prints and
# flips the mode and both nodes follow; a bad header value is 400 InvalidArgument and creates
# nothing; the admin command on an unknown bucket says so and exits 1, a bad mode exits 2, etcd
# down exits 1 while HeadBucket still answers from memory; a single node takes the header and
# answers strong. About 6 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd and clustered servers"
. "$H_DIR/lib_etcd.sh"
cl_cluster bc 2 n1 n2

# node_start N: start node N with its own data dir and a [cluster] section (as
CL_SERVER_CONF=""
node_start() { cl_node_start "$1" bc; }
node_stop() { cl_node_stop "$1"; }

# req PORT METHOD PATH [NAME:VALUE]: one signed request; prints "STATUS MODE CODE MESSAGE" (MODE:
# the x-cairn-consistency answered, CODE: the S3 error code, "-" when absent).
cat >"$H_WORK/req.py" <<'EOF'
import os, re, sys
sys.path.insert(0, os.environ["H_DIR"])
import s3raw
port, method, path = sys.argv[1:4]
os.environ["CAIRN_ENDPOINT"] = "http://127.0.0.1:%s" % port
headers = dict([sys.argv[4].split(":", 1)]) if len(sys.argv) > 4 else {}
st, h, body = s3raw.request(method, path, headers=headers)
code = re.search(rb"<Code>([^<]*)</Code>", body)
msg = re.search(rb"<Message>([^<]*)</Message>", body)
print(st, h.get("x-cairn-consistency", "-"), code.group(1).decode() if code else "-",
      msg.group(1).decode() if msg else "")
EOF
req() { "$H_PY" "$H_WORK/req.py" "$@"; }
mode_is() { # mode_is NODE BUCKET MODE: HeadBucket through NODE answers 200 with MODE
    [ "$(req "${PORT[$1]}" HEAD "/$2")" = "200 $3 - " ]
}
until_ok() { h_until_ok "$@"; }
admin_bucket() { "$CAIRN_BIN" admin bucket "$@" "${E[@]}"; }

for n in "${NODES[@]}"; do node_start "$n" || h_finish; done

# ---- set at creation ----
h_eq "CreateBucket fast through n1 with x-cairn-consistency: available" "200 - - " \
    "$(req "${PORT[n1]}" PUT /fast x-cairn-consistency:available)"
h_eq "HeadBucket on n1 at once: available (the create waited for n1's watch)" "200 available - " \
    "$(req "${PORT[n1]}" HEAD /fast)"
until_ok "HeadBucket on n2 shows available" 5 mode_is n2 fast available
h_eq "CreateBucket plain through n2 without the header" "200 - - " "$(req "${PORT[n2]}" PUT /plain)"
until_ok "HeadBucket on n1 shows plain strong" 5 mode_is n1 plain strong
h_eq "a bad value: 400 InvalidArgument naming the header" \
    "400 - InvalidArgument x-cairn-consistency must be strong or available (lowercase)" \
    "$(req "${PORT[n1]}" PUT /bad x-cairn-consistency:eventual)"
h_eq "... and no bucket was created" "404 - - " "$(req "${PORT[n1]}" HEAD /bad)"

# ---- the admin commands ----
h_run "admin bucket list" admin_bucket list
grep -q "^cluster bc: 2 buckets (etcd revision [0-9]*)$" <<<"$H_OUT" &&
    grep -Eq "^name +created \(UTC\) +consistency$" <<<"$H_OUT" &&
    grep -Eq "^fast +20[0-9-]+T[0-9:]+Z +available$" <<<"$H_OUT" &&
    grep -Eq "^plain +20[0-9-]+T[0-9:]+Z +strong$" <<<"$H_OUT" &&
    h_ok "list: a row per bucket with its creation time and mode" || h_bad "list table" "$H_OUT"
echo "$H_OUT" | sed 's/^/   | /'
h_run "admin bucket consistency fast" admin_bucket consistency fast
h_eq "... prints available" "available" "$H_OUT"
h_run "admin bucket consistency fast strong" admin_bucket consistency fast strong
grep -q "^bucket fast: consistency available -> strong (etcd revision [0-9]*)" <<<"$H_OUT" &&
    h_ok "... says what changed" || h_bad "... says what changed" "$H_OUT"
for n in "${NODES[@]}"; do until_ok "$n shows fast strong" 5 mode_is "$n" fast strong; done
h_run "admin bucket consistency plain available (CAIRN_ETCD_ENDPOINTS, CAIRN_CLUSTER)" \
    env CAIRN_ETCD_ENDPOINTS="$ETCD_ENDPOINTS" CAIRN_CLUSTER=bc \
    "$CAIRN_BIN" admin bucket consistency plain available
for n in "${NODES[@]}"; do until_ok "$n shows plain available" 5 mode_is "$n" plain available; done
h_run "the same mode again" admin_bucket consistency plain available
h_eq "... changes nothing" "bucket plain: already available (nothing changed)" "$H_OUT"
h_run "admin bucket consistency plain prints it" admin_bucket consistency plain
h_eq "... available" "available" "$H_OUT"

# ---- errors ----
"$CAIRN_BIN" admin bucket consistency nosuch available "${E[@]}" >"$H_WORK/out" 2>&1
h_eq "unknown bucket: exit 1" 1 $?
grep -q "no bucket 'nosuch' in cluster bc" "$H_WORK/out" && h_ok "... saying so" ||
    h_bad "... saying so" "$(cat "$H_WORK/out")"
"$CAIRN_BIN" admin bucket consistency nosuch "${E[@]}" >"$H_WORK/out" 2>&1
h_eq "unknown bucket, printing: exit 1" 1 $?
"$CAIRN_BIN" admin bucket consistency fast eventual "${E[@]}" >"$H_WORK/out" 2>&1
h_eq "unknown mode: exit 2" 2 $?
grep -q "unknown mode 'eventual': strong or available" "$H_WORK/out" && h_ok "... saying so" ||
    h_bad "... saying so" "$(cat "$H_WORK/out")"
h_eq "... and nothing changed" "available" "$(admin_bucket consistency plain 2>&1)"

etcd_stop
h_ok "etcd stopped"
"$CAIRN_BIN" admin bucket list "${E[@]}" --timeout 500 >"$H_WORK/out" 2>&1
h_eq "admin bucket list with etcd down: exit 1" 1 $?
grep -q "etcd did not answer at $ETCD_ENDPOINTS" "$H_WORK/out" && h_ok "... saying so" ||
    h_bad "... saying so" "$(cat "$H_WORK/out")"
"$CAIRN_BIN" admin bucket consistency fast available "${E[@]}" --timeout 500 >"$H_WORK/out" 2>&1
h_eq "admin bucket consistency with etcd down: exit 1" 1 $?
mode_is n2 plain available && mode_is n1 fast strong &&
    h_ok "HeadBucket answers the modes from memory while etcd is down" ||
    h_bad "modes from memory during the outage" "$(req "${PORT[n2]}" HEAD /plain)"
for n in "${NODES[@]}"; do node_stop "$n"; done

# ---- a single node: the header is taken, every bucket is strong ----
h_start
h_eq "single node: CreateBucket with x-cairn-consistency: available" "200 - - " \
    "$(req "$H_PORT" PUT /one x-cairn-consistency:available)"
h_eq "... HeadBucket says strong (one copy of each record: the modes are the same)" \
    "200 strong - " "$(req "$H_PORT" HEAD /one)"
h_eq "single node: a bad value is 400 too" "400 - InvalidArgument" \
    "$(req "$H_PORT" PUT /two x-cairn-consistency:STRONG | cut -d' ' -f1-3)"

if [ "$H_FAILS" -gt 0 ]; then
    for n in "${NODES[@]}"; do echo "---- $n log"; tail -15 "$H_WORK/$n.log"; done
fi
h_finish
