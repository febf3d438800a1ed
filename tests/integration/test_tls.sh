#!/usr/bin/env bash
# TLS on the S3 port (docs/tls.md). A CA and a server certificate are made here with the openssl
# CLI (nothing private is committed); the server gets them through the config file ([server]
# tls_cert, tls_key) with a short header_timeout_ms. Then over https: the aws CLI (--ca-bundle),
# boto3 (verify=CA file) and rclone (--ca-cert) round-trip objects (PUT, GET, list, multipart); a
# presigned URL is fetched with curl --cacert; a plain HTTP request to the port gets a 400 saying to
# use https, never an answer; a connection that never starts its handshake is closed by the header
# timeout; SIGHUP serves a new certificate to new connections (serial checked with openssl
# s_client) while an open connection keeps its own, and a bad certificate keeps the current one.
# `cairn admin status` works over https with --ca-cert and refuses a certificate of another CA.
# Bad TLS settings are refused at start: one of the two keys only, a world-readable key, a key
# that does not match the certificate, and for the node RPC ([cluster] tls_*, test_cluster_tls.sh)
# one of the three keys only, or the keys without a cluster.
source "$(dirname "$0")/lib.sh"

if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need openssl curl rclone "$AWSBIN"
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_own_server "it starts its server with TLS"

T=$H_WORK/tls
mkdir -p "$T"
# cert NAME SERIAL: a P-256 key and a certificate for 127.0.0.1/localhost signed by the test CA
cert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
        -keyout "$T/$1.key" -out "$T/$1.csr" 2>/dev/null &&
        openssl x509 -req -in "$T/$1.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial "$2" \
            -days 2 -extfile "$T/ext.cnf" -out "$T/$1.pem" 2>/dev/null &&
        chmod 600 "$T/$1.key"
}
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$T/ext.cnf"
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=cairn-test-ca -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null &&
    cert one 4097 && cert two 8193 && cert other 12289; then
    h_ok "test CA and certificates generated"
else
    h_bad "test CA and certificates generated"
    h_finish
fi
cp "$T/one.pem" "$T/server.pem" && cp -p "$T/one.key" "$T/server.key"

# ---- bad settings are refused before anything starts ----
h_fails_with "tls_cert without tls_key is refused" "needs both" \
    "$CAIRN_BIN" server --data "$H_DATA" --tls-cert "$T/server.pem" --check-config
cp "$T/one.key" "$T/open.key" && chmod 644 "$T/open.key"
h_fails_with "a world-readable key is refused" "every user" \
    "$CAIRN_BIN" server --data "$H_DATA" --tls-cert "$T/one.pem" --tls-key "$T/open.key" \
    --check-config
h_fails_with "a key of another certificate is refused" "does not match" \
    "$CAIRN_BIN" server --data "$H_DATA" --tls-cert "$T/one.pem" --tls-key "$T/two.key" \
    --check-config
printf '[cluster]\netcd = http://127.0.0.1:1\nid = c\nnode_id = n1\nrpc_listen = 127.0.0.1:0\naddr = 127.0.0.1:1\ntls_ca = %s\n' \
    "$T/ca.pem" >"$H_WORK/rpc1.conf"
h_fails_with "[cluster] tls_ca without tls_cert and tls_key is refused" "needs all of" \
    "$CAIRN_BIN" server --data "$H_DATA" --config "$H_WORK/rpc1.conf" --check-config
printf '[cluster]\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\n' "$T/ca.pem" "$T/one.pem" \
    "$T/one.key" >"$H_WORK/rpc2.conf"
h_fails_with "[cluster] tls_* without a cluster is refused" "need a \[cluster\] section" \
    "$CAIRN_BIN" server --data "$H_DATA" --config "$H_WORK/rpc2.conf" --check-config

cat >"$H_WORK/cairn.conf" <<EOF
[server]
tls_cert = $T/server.pem
tls_key = $T/server.key
header_timeout_ms = 1500
EOF
H_SERVER_ARGS=(--config "$H_WORK/cairn.conf")
H_CA=$T/ca.pem
h_start
grep -q "serving S3 on https://" "$H_LOG" && h_ok "banner says https" ||
    h_bad "banner says https" "$(head -3 "$H_LOG")"
HOSTPORT=127.0.0.1:$H_PORT
serial() {
    openssl s_client -connect "$HOSTPORT" -CAfile "$T/ca.pem" </dev/null 2>/dev/null |
        openssl x509 -noout -serial 2>/dev/null
}
h_eq "the configured certificate is served" "serial=1001" "$(serial)"

# ---- the aws CLI ----
aws() { "$AWSBIN" --endpoint-url "$H_ENDPOINT" --ca-bundle "$T/ca.pem" "$@"; }
h_gen "$H_WORK/big" $((12 * 1024 * 1024 + 12345)) 42 # above the CLI's 8 MiB multipart threshold
printf 'small body' >"$H_WORK/small"
h_run "aws mb" aws s3 mb s3://tls-cli
h_run "aws cp (multipart upload)" aws s3 cp "$H_WORK/big" s3://tls-cli/big
h_run "aws cp small" aws s3 cp "$H_WORK/small" s3://tls-cli/dir/small
if h_run "aws ls" aws s3 ls --recursive s3://tls-cli; then
    grep -q "dir/small" <<<"$H_OUT" && grep -q " big" <<<"$H_OUT" && h_ok "aws ls lists both" ||
        h_bad "aws ls lists both" "$H_OUT"
fi
h_run "aws cp down" aws s3 cp s3://tls-cli/big "$H_WORK/big.back"
h_eq "aws round trip" "$(h_md5 "$H_WORK/big")" "$(h_md5 "$H_WORK/big.back" 2>/dev/null)"
# one attempt: a retried connection reported its own end ("connection closed (EOF)", once at load
# 14) instead of the first attempt's certificate error
h_fails_with "aws without the CA refuses the certificate" "CERTIFICATE_VERIFY_FAILED|verify" \
    env AWS_MAX_ATTEMPTS=1 "$AWSBIN" --endpoint-url "$H_ENDPOINT" s3 ls s3://tls-cli

# ---- boto3, and a presigned URL fetched with curl ----
if OUT=$(CA=$T/ca.pem EP=$H_ENDPOINT "$H_PY" - <<'EOF' 2>&1
import hashlib, os, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["EP"], verify=os.environ["CA"],
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.create_bucket(Bucket="tls-boto")
s3.put_object(Bucket="tls-boto", Key="a", Body=b"over tls")
assert s3.get_object(Bucket="tls-boto", Key="a")["Body"].read() == b"over tls"
parts, blob = [], os.urandom(5 * 1024 * 1024 + 7)
up = s3.create_multipart_upload(Bucket="tls-boto", Key="mp")["UploadId"]
for n, piece in ((1, blob[: 5 * 1024 * 1024]), (2, blob[5 * 1024 * 1024 :])):
    r = s3.upload_part(Bucket="tls-boto", Key="mp", PartNumber=n, UploadId=up, Body=piece)
    parts.append({"PartNumber": n, "ETag": r["ETag"]})
s3.complete_multipart_upload(Bucket="tls-boto", Key="mp", UploadId=up,
                             MultipartUpload={"Parts": parts})
got = s3.get_object(Bucket="tls-boto", Key="mp")["Body"].read()
assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest(), "multipart body differs"
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tls-boto")["Contents"]]
assert keys == ["a", "mp"], keys
print(s3.generate_presigned_url("get_object", Params={"Bucket": "tls-boto", "Key": "a"},
                                ExpiresIn=300))
EOF
); then
    h_ok "boto3 put/get/multipart/list over https"
    URL=$(tail -n 1 <<<"$OUT")
    case $URL in https://127.0.0.1:$H_PORT/*) h_ok "presigned URL is https with the port" ;;
    *) h_bad "presigned URL is https with the port" "$URL" ;; esac
    h_eq "presigned URL fetched with curl --cacert" "over tls" \
        "$(curl -fsS --cacert "$T/ca.pem" "$URL" 2>&1)"
else
    h_bad "boto3 put/get/multipart/list over https" "$OUT"
fi

# ---- rclone ----
export RCLONE_CONFIG=$H_WORK/rclone.conf
: >"$RCLONE_CONFIG"
export RCLONE_CONFIG_C_TYPE=s3 RCLONE_CONFIG_C_PROVIDER=Other RCLONE_CONFIG_C_ENDPOINT=$H_ENDPOINT
export RCLONE_CONFIG_C_ACCESS_KEY_ID=$CAIRN_ACCESS_KEY RCLONE_CONFIG_C_REGION=us-east-1
export RCLONE_CONFIG_C_SECRET_ACCESS_KEY=$CAIRN_SECRET_KEY RCLONE_CONFIG_C_FORCE_PATH_STYLE=true
export RCLONE_CONFIG_C_UPLOAD_CUTOFF=5M RCLONE_CONFIG_C_CHUNK_SIZE=5M
rc() { rclone --ca-cert "$T/ca.pem" --retries 1 --low-level-retries 2 "$@"; }
h_run "rclone mkdir" rc mkdir c:tls-rclone
h_run "rclone copy (multipart)" rc copyto "$H_WORK/big" c:tls-rclone/big
if h_run "rclone ls" rc ls c:tls-rclone; then
    grep -q " big$" <<<"$H_OUT" && h_ok "rclone lists the object" ||
        h_bad "rclone lists the object" "$H_OUT"
fi
h_run "rclone copy down" rc copyto c:tls-rclone/big "$H_WORK/big.rclone"
h_eq "rclone round trip" "$(h_md5 "$H_WORK/big")" "$(h_md5 "$H_WORK/big.rclone" 2>/dev/null)"

# ---- the admin CLI over https ----
if h_run "cairn admin status over https (--ca-cert)" \
    "$CAIRN_BIN" admin status --endpoint "$H_ENDPOINT" --ca-cert "$T/ca.pem" --data "$H_DATA"; then
    grep -q "ready" <<<"$H_OUT" && h_ok "admin status answers" || h_bad "admin status answers" "$H_OUT"
fi
h_fails_with "cairn admin refuses a certificate not chaining to --ca-cert" "TLS to .* failed" \
    "$CAIRN_BIN" admin status --endpoint "$H_ENDPOINT" --ca-cert "$T/other.pem" --data "$H_DATA"

# ---- plain HTTP on the TLS port: a 400 that says so, never served ----
OUT=$(curl -sS -o "$H_WORK/plain.body" -w '%{http_code}' "http://$HOSTPORT/tls-boto/a" 2>&1)
h_eq "plain HTTP GET answered 400" 400 "$OUT"
grep -q "HTTPS only" "$H_WORK/plain.body" && ! grep -q "over tls" "$H_WORK/plain.body" &&
    h_ok "the 400 says to use https and serves nothing" ||
    h_bad "the 400 says to use https and serves nothing" "$(cat "$H_WORK/plain.body")"
h_fails_with "plain HTTP DELETE is closed, not served" "Empty reply|reset|closed" \
    curl -sS -X DELETE "http://$HOSTPORT/tls-boto/a"

# ---- a connection that never starts its handshake ----
IDLE=$("$H_PY" - "$H_PORT" <<'EOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(10)
t0 = time.monotonic()
try:
    data = s.recv(1)
except OSError:
    data = b"error"
print("%.1f %r" % (time.monotonic() - t0, data))
EOF
)
read -r SECS BYTES <<<"$IDLE"
if [ "$BYTES" = "b''" ] && awk -v s="$SECS" 'BEGIN { exit !(s >= 1.0 && s < 5) }'; then
    h_ok "a connection without a handshake is closed by the header timeout (${SECS}s)"
else
    h_bad "a connection without a handshake is closed by the header timeout" "$IDLE"
fi

# ---- SIGHUP: a new certificate for new connections; open ones keep theirs ----
# The Python helper keeps one https connection open (one GET before the reload), then on "go"
# makes a second GET on it and prints the SHA-256 of the certificate it was accepted with.
mkfifo "$H_WORK/go"
CA=$T/ca.pem "$H_PY" - "$H_PORT" "$H_WORK/go" >"$H_WORK/kept.out" 2>&1 <<'EOF' &
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=__import__("os").environ["CA"])
c = http.client.HTTPSConnection("127.0.0.1", int(sys.argv[1]), context=ctx, timeout=10)
c.request("GET", "/health/live"); c.getresponse().read()
der = c.sock.getpeercert(binary_form=True)
print("open", flush=True)
open(sys.argv[2]).read()  # wait for the reload
c.request("GET", "/health/live"); r = c.getresponse(); r.read()
print("kept", r.status, __import__("hashlib").sha256(der).hexdigest())
EOF
KEPT=$!
h_track "$KEPT"
for _ in $(seq 50); do grep -q open "$H_WORK/kept.out" && break; sleep 0.1; done
cp "$T/two.pem" "$T/server.pem.new" && mv "$T/server.pem.new" "$T/server.pem"
cp -p "$T/two.key" "$T/server.key.new" && mv "$T/server.key.new" "$T/server.key"
kill -HUP "$H_PID"
for _ in $(seq 50); do grep -q "TLS certificate reloaded" "$H_LOG" && break; sleep 0.1; done
h_eq "after SIGHUP new connections get the new certificate" "serial=2001" "$(serial)"
echo go >"$H_WORK/go"
wait "$KEPT"
ONE=$(openssl x509 -in "$T/one.pem" -outform der | sha256sum | cut -d' ' -f1)
h_eq "a connection opened before the reload keeps its certificate" "kept 200 $ONE" \
    "$(grep kept "$H_WORK/kept.out" || cat "$H_WORK/kept.out")"
printf 'not a certificate\n' >"$T/server.pem"
kill -HUP "$H_PID"
for _ in $(seq 50); do grep -q "TLS reload failed" "$H_LOG" && break; sleep 0.1; done
grep -q "TLS reload failed" "$H_LOG" && h_ok "a bad certificate on SIGHUP is logged" ||
    h_bad "a bad certificate on SIGHUP is logged" "$(tail -5 "$H_LOG")"
h_eq "and the previous certificate is still served" "serial=2001" "$(serial)"
h_eq "the server still answers" "ok" "$(curl -fsS --cacert "$T/ca.pem" "$H_ENDPOINT/health/live")"

h_finish
