#!/usr/bin/env bash
# Configuration (issue 12, scope 1) and /metrics + health access (scope 3), through the binary:
# - every key of `cairn server --config-doc` given a value its "accepts" column refuses (out of
#   range, ill-typed, too long) on line 3 of a file: `--check-config` exits non-zero naming the
#   line; the same value in CAIRN_<SECTION>_<KEY>: refused naming the variable;
# - precedence file < environment < flag, shown by --print-config with each source;
# - /metrics with [metrics] token and allow: 401 without or with a wrong bearer token, 200 with
#   the right one; allow = "" without a token: 403; the default (loopback) admits 127.0.0.1;
#   /health/live and /health/ready answer without credentials; a cluster node is not ready (503,
#   with the reason) until a layout exists, then ready;
# - SIGHUP: a new log level takes effect (debug lines appear), a restart-only key is logged as
#   needing a restart, a broken file is refused with its line and the server keeps serving with
#   the running configuration, a rotated credentials file is taken (the new pair signs, the old
#   one no longer does).
source "$(dirname "$0")/lib.sh"

h_own_server "it starts servers with config files of its own and signals them"
h_need curl
if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"

# ---- a bad value for every key, from the table's own reference ----
"$CAIRN_BIN" server --config-doc >"$H_WORK/keys.md" || h_bad "--config-doc runs"
"$H_PY" - "$CAIRN_BIN" "$H_WORK" "$H_WORK/keys.md" >"$H_WORK/bad.out" <<'EOF'
import os, re, subprocess, sys
cairn, work, doc = sys.argv[1:4]

def bad_value(accepts):
    m = re.match(r"integer (-?\d+)\.\.(-?\d+)$", accepts)
    if m:
        return str(int(m.group(2)) + 1)
    m = re.match(r"number (\S+)\.\.(\S+)$", accepts)
    if m:
        return str(float(m.group(1)) - 1)
    if accepts == "on|off":
        return "maybe"
    m = re.match(r"text, at most (\d+) bytes$", accepts)
    if m:
        return "x" * (int(m.group(1)) + 1)
    if ", at most" in accepts:  # a form: HOST:PORT, a CIDR list
        return "?bad value"
    if "|" in accepts:
        return "none-of-these"
    raise SystemExit("no bad value for '%s'" % accepts)

rows = [l.split(" | ") for l in open(doc) if l.startswith("| `")]
print("keys %d" % len(rows))
env = dict(os.environ)
for row in rows:
    name, accepts = row[0][3:-1], row[1]
    section, key = name.split(".", 1)
    bad = bad_value(accepts)
    conf = os.path.join(work, "bad.conf")
    with open(conf, "w") as f:
        f.write("# a bad value on line 3\n[%s]\n%s = %s\n" % (section, key, bad))
    r = subprocess.run([cairn, "server", "--config", conf, "--check-config"],
                       capture_output=True, text=True, timeout=10)
    named = (conf + ":3: ") in r.stderr and (name in r.stderr or "line too long" in r.stderr)
    print("%s file %s %s" % ("ok" if r.returncode != 0 and named else "bad", name,
                             r.stderr.strip()[:200].replace("\n", " ")))
    var = "CAIRN_%s_%s" % (section.upper(), key.upper())
    e = dict(env)
    e[var] = bad
    r = subprocess.run([cairn, "server", "--check-config"], capture_output=True, text=True,
                       timeout=10, env=e)
    named = (var + ": invalid value") in r.stderr
    print("%s env %s %s" % ("ok" if r.returncode != 0 and named else "bad", var,
                            r.stderr.strip()[:200].replace("\n", " ")))
EOF
nkeys=$(sed -n 's/^keys //p' "$H_WORK/bad.out")
if [ "${nkeys:-0}" -ge 30 ]; then
    h_ok "--config-doc lists $nkeys keys"
else
    h_bad "--config-doc lists the keys" "$(cat "$H_WORK/bad.out")"
fi
while read -r verdict how what detail; do
    case $verdict in
    ok) h_ok "bad value refused by $how: $what" ;;
    bad) h_bad "bad value refused by $how: $what" "$detail" ;;
    esac
done < <(grep -E '^(ok|bad) ' "$H_WORK/bad.out")

# ---- precedence: file < environment < flag, with sources ----
printf '# cairn\n[server]\nlog_level = error\nworkers = 7\nregion = eu-test-1\n' >"$H_WORK/p.conf"
if h_run "--print-config" env CAIRN_SERVER_LOG_LEVEL=debug CAIRN_SERVER_WORKERS=9 \
    "$CAIRN_BIN" server --config "$H_WORK/p.conf" --log-level warn --print-config; then
    show() { grep -E "^$1 " <<<"$H_OUT" | sed -E 's/ +/ /g'; }
    h_eq "a flag wins over the environment" "server.log_level = warn # flag --log-level" \
        "$(show server.log_level)"
    h_eq "the environment wins over the file" \
        "server.workers = 9 # env CAIRN_SERVER_WORKERS" "$(show server.workers)"
    h_eq "a file value with its line" "server.region = eu-test-1 # $H_WORK/p.conf:5" \
        "$(show server.region)"
    h_eq "a default" "storage.drives = 6 # default" "$(show storage.drives)"
fi
h_fails_with "keys are checked together after every source" "must be at least data_cells" \
    env CAIRN_STORAGE_DRIVES=3 "$CAIRN_BIN" server --check-config

# ---- /metrics access and health ----
expect() { # expect DESC CMD...: a check that CMD succeeds (its output, if any, is not kept)
    local desc=$1
    shift
    if "$@"; then h_ok "$desc"; else h_bad "$desc" "$(tail -5 "$H_LOG" 2>/dev/null)"; fi
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
TOKEN=metrics-token-$RANDOM$RANDOM
cat >"$H_WORK/m.conf" <<EOF
[storage]
drives = 3
data_cells = 2
parity_cells = 1
[metrics]
token = $TOKEN
allow = 10.99.0.0/16
EOF
H_SERVER_ARGS=(--config "$H_WORK/m.conf")
h_start
h_eq "/metrics without a token, from an address not allowed: 401" 401 "$(code "$H_ENDPOINT/metrics")"
h_run "the 401 invites a bearer token" curl -s -D - -o /dev/null --max-time 5 "$H_ENDPOINT/metrics"
expect "WWW-Authenticate: Bearer" grep -qi '^www-authenticate: Bearer' <<<"$H_OUT"
h_eq "/metrics with a wrong bearer token: 401" 401 \
    "$(code -H "Authorization: Bearer wrong-$TOKEN" "$H_ENDPOINT/metrics")"
h_eq "/metrics with the token: 200" 200 \
    "$(code -H "Authorization: Bearer $TOKEN" "$H_ENDPOINT/metrics")"
h_eq "/health/live needs no credentials" 200 "$(code "$H_ENDPOINT/health/live")"
h_eq "/health/ready needs no credentials" 200 "$(code "$H_ENDPOINT/health/ready")"
h_stop
printf '[metrics]\nallow = ""\n' >"$H_WORK/m.conf"
h_start
h_eq "allow = \"\" and no token: 403" 403 "$(code "$H_ENDPOINT/metrics")"
h_stop
H_SERVER_ARGS=()
h_start
h_eq "by default loopback may read /metrics" 200 "$(code "$H_ENDPOINT/metrics")"
h_stop

# ---- /health/ready on a cluster node: registered, and a layout known ----
source "$H_DIR/lib_etcd.sh"
ready_body() { curl -s --max-time 2 "http://127.0.0.1:$CPORT/health/ready"; }
until_body() { # until_body TEXT: /health/ready's body has TEXT within 15 s
    local i
    for ((i = 0; i < 150; i++)); do
        grep -q -- "$1" <<<"$(ready_body)" && return 0
        sleep 0.1 # polling a readiness probe
    done
    return 1
}
if [ ! -x "$ETCD_BIN" ]; then
    echo "ok - (no etcd: the cluster readiness checks are skipped)"
elif ! etcd_start 1; then
    h_bad "etcd starts"
else
    CPORT=$(h_free_port) RPC=$(h_free_port)
    printf '[storage]\ndrives = 3\ndata_cells = 2\nparity_cells = 1\n[cluster]\netcd = %s\n' \
        "$ETCD_ENDPOINTS" >"$H_WORK/c.conf"
    printf 'id = rd\nnode_id = n1\nmember_ttl_s = 2\nrpc_listen = 127.0.0.1:%s\n' "$RPC" \
        >>"$H_WORK/c.conf"
    CAIRN_RPC_SECRET=ready-test-rpc-secret "$CAIRN_BIN" server --config "$H_WORK/c.conf" \
        --data "$H_WORK/cdata" --listen "127.0.0.1:$CPORT" >>"$H_WORK/c.log" 2>&1 &
    CPID=$!
    h_track "$CPID"
    expect "a cluster node without a layout is not ready (503, says why)" \
        until_body "no cluster layout known yet"
    h_eq "... with status 503" 503 "$(code "http://127.0.0.1:$CPORT/health/ready")"
    h_eq "... while /health/live answers" 200 "$(code "http://127.0.0.1:$CPORT/health/live")"
    E=(--etcd "$ETCD_ENDPOINTS" --cluster rd)
    h_run "layout add n1" "$CAIRN_BIN" admin layout add n1 --addr "127.0.0.1:$RPC" --az az1 \
        --drives 3 "${E[@]}"
    h_run "layout apply" "$CAIRN_BIN" admin layout apply --yes --objects 1000 "${E[@]}"
    expect "registered with a layout: ready" until_body "^ready"
    kill -TERM "$CPID"
    wait "$CPID" 2>/dev/null
    etcd_stop
fi

# ---- SIGHUP: log level, needs-restart, broken file, credentials ----
log_wait() { # log_wait ERE: the server log gains a line matching ERE within 10 s
    local i
    for ((i = 0; i < 100; i++)); do
        grep -Eq -- "$1" "$H_LOG" && return 0
        sleep 0.1 # polling the log of an asynchronous reload
    done
    return 1
}
debug_lines_after_request() { # 0 when a request adds level=debug lines to the log (within 10 s)
    local before i
    before=$(grep -c 'level=debug' "$H_LOG")
    curl -s -o /dev/null --max-time 5 "$H_ENDPOINT/nosuchbucket-$RANDOM"
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c 'level=debug' "$H_LOG")" -gt "$before" ] && return 0
        sleep 0.1 # polling the log
    done
    return 1
}
printf '[server]\nlog_level = info\n[storage]\ndrives = 6\n' >"$H_WORK/h.conf"
unset CAIRN_ACCESS_KEY CAIRN_SECRET_KEY # the pair from DATA/credentials, which SIGHUP re-reads
rm -rf "$H_DATA"
H_SERVER_ARGS=(--config "$H_WORK/h.conf")
h_start
OLD_AK=$(sed -n 's/^access_key = //p' "$H_DATA/credentials")
OLD_SK=$(sed -n 's/^secret_key = //p' "$H_DATA/credentials")
aws() { "$AWSBIN" --endpoint-url "$H_ENDPOINT" --region us-east-1 "$@"; }
h_run "the generated pair signs" env AWS_ACCESS_KEY_ID="$OLD_AK" AWS_SECRET_ACCESS_KEY="$OLD_SK" \
    "$AWSBIN" --endpoint-url "$H_ENDPOINT" s3api list-buckets
expect "no debug lines at log_level = info" test "$(grep -c 'level=debug' "$H_LOG")" = 0

sed -i 's/log_level = info/log_level = debug/; s/drives = 6/drives = 8/' "$H_WORK/h.conf"
NEW_AK=CAIRNROTATED0000001
NEW_SK=rotated-secret-key-0123456789abcdefghij
printf 'access_key = %s\nsecret_key = %s\n' "$NEW_AK" "$NEW_SK" >"$H_DATA/credentials.new"
chmod 600 "$H_DATA/credentials.new"
mv "$H_DATA/credentials.new" "$H_DATA/credentials"
kill -HUP "$H_PID"
expect "SIGHUP applies log_level" log_wait 'SIGHUP: server.log_level = debug \(was info\)'
expect "a restart-only key is logged as needing a restart" \
    log_wait 'SIGHUP: storage.drives changed \(6 -> 8\): needs restart'
expect "credentials reloaded" log_wait "SIGHUP: root credentials loaded \(access key $NEW_AK\)"
h_run "the new pair signs after SIGHUP" env AWS_ACCESS_KEY_ID="$NEW_AK" \
    AWS_SECRET_ACCESS_KEY="$NEW_SK" "$AWSBIN" --endpoint-url "$H_ENDPOINT" s3api list-buckets
h_fails_with "the old pair no longer signs" "InvalidAccessKeyId|403|Forbidden" \
    env AWS_ACCESS_KEY_ID="$OLD_AK" AWS_SECRET_ACCESS_KEY="$OLD_SK" \
    "$AWSBIN" --endpoint-url "$H_ENDPOINT" s3api list-buckets
expect "debug lines appear after the reload" debug_lines_after_request

printf '[server]\nlog_level = loud\n' >>"$H_WORK/h.conf" # lines 5 and 6
kill -HUP "$H_PID"
expect "a broken file on SIGHUP is refused naming its line" \
    log_wait "SIGHUP: configuration refused, the running one stays: $H_WORK/h.conf:6: invalid value"
h_eq "the server keeps serving after a refused reload" 200 "$(code "$H_ENDPOINT/health/ready")"
expect "the running log level (debug) stays after a refused reload" debug_lines_after_request
h_finish
