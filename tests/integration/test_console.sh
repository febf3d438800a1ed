#!/usr/bin/env bash
# The web console (docs/console.md) against one cairn node: the embedded files as curl sees them
# (types, CSP, X-Frame-Options, 404, HEAD), the console's SigV4 signer against AWS's published
# examples (node), then, when Debian's chromium is installed (scripts/setup.sh adds it), the
# console itself in headless Chromium driven over the DevTools protocol (tests/js/
# console_browser.mjs): sign in, create a bucket, list a bucket holding a hostile key name (it
# must show as text), page through 105 keys, upload (one PUT and a multipart upload), a signed
# GET, delete, and the cluster page with its graphs; no CSP violation. Screenshots go to
# $CAIRN_TEST_ARTIFACTS (default build/test-artifacts). A node without a WebSocket client (before
# 22) gets the `ws` package from tests/js/package-lock.json (`npm ci` when missing). Without
# chromium the browser part is skipped with a notice; the rest still runs.
source "$(dirname "$0")/lib.sh"
h_need curl node
"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
h_start
E=$H_ENDPOINT

# ---- the files over HTTP ----
for f in index.html app.js sigv4.js style.css; do
    hdr=$(curl -sS -D - -o "$H_WORK/$f" --max-time 10 "$E/_console/$f")
    if cmp -s "$H_WORK/$f" "$H_ROOT/console/$f"; then h_ok "GET /_console/$f is the file"; else h_bad "GET /_console/$f differs"; fi
    h_eq "$f status" "200" "$(printf '%s' "$hdr" | head -1 | cut -d' ' -f2)"
    case $f in
    *.html) want="text/html; charset=utf-8" ;;
    *.js) want="text/javascript; charset=utf-8" ;;
    *.css) want="text/css; charset=utf-8" ;;
    esac
    h_eq "$f type" "$want" "$(printf '%s' "$hdr" | tr -d '\r' | sed -n 's/^Content-Type: //Ip')"
    h_eq "$f X-Frame-Options" "DENY" "$(printf '%s' "$hdr" | tr -d '\r' | sed -n 's/^X-Frame-Options: //Ip')"
    csp=$(printf '%s' "$hdr" | tr -d '\r' | sed -n 's/^Content-Security-Policy: //Ip')
    case $csp in
    *"script-src 'self'"*"frame-ancestors 'none'"*) h_ok "$f CSP" ;;
    *) h_bad "$f CSP: '$csp'" ;;
    esac
done
h_eq "GET /_console/ is index.html" "200" "$(curl -sS -o /dev/null -w '%{http_code}' "$E/_console/")"
h_eq "GET /_console redirects" "301 $E/_console/" \
    "$(curl -sS -o /dev/null -w '%{http_code} %{redirect_url}' "$E/_console")"
h_eq "unknown console file" "404" "$(curl -sS -o /dev/null -w '%{http_code}' "$E/_console/x.js")"
h_eq "HEAD index.html" "200 0" \
    "$(curl -sS -I -o /dev/null -w '%{http_code} %{size_download}' "$E/_console/index.html")"

# ---- the signer ----
if node "$H_ROOT/tests/js/test_sigv4.js"; then h_ok "sigv4.js: AWS examples"; else h_bad "sigv4.js: AWS examples"; fi

# ---- the console in Chromium ----
CHROMIUM=$(command -v chromium || true)
if [ -z "$CHROMIUM" ]; then
    echo "NOTE - chromium not installed (apt-get install chromium): browser test skipped"
    h_finish
fi
# The page is driven over the DevTools protocol, a WebSocket: node >= 22 has a client built in;
# older ones (Debian 12's node 18, node 20) use the `ws` package pinned in tests/js/
# package-lock.json, installed here with `npm ci` when missing, as test_js.sh does.
JSDIR=$H_ROOT/tests/js
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null &&
    [ ! -f "$JSDIR/node_modules/ws/package.json" ]; then
    # npm keeps its cache under $HOME, which lib.sh points at the temp dir: use the real one
    if ! (cd "$JSDIR" && HOME=$H_REAL_HOME npm ci --no-audit --no-fund --loglevel=error); then
        h_bad "npm ci in $JSDIR (node $(node --version) needs the ws package)"
        h_finish
    fi
fi
B=$(h_bucket console)
export CAIRN_ENDPOINT=$E CAIRN_CONSOLE_BUCKET=$B
if "$H_PY" - <<'PY'; then h_ok "bucket with hostile key and folder names and 105 keys under many/"; else h_bad "fixture"; fi
import os, boto3
from concurrent.futures import ThreadPoolExecutor
s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1")
b = os.environ["CAIRN_CONSOLE_BUCKET"]
s3.create_bucket(Bucket=b)
s3.put_object(Bucket=b, Key="<img src=x onerror=window.__pwned=1>", Body=b"hostile body")
s3.put_object(Bucket=b, Key="<b>bold<b>/<i>in<i>", Body=b"hostile folder")
with ThreadPoolExecutor(8) as ex:
    list(ex.map(lambda i: s3.put_object(Bucket=b, Key="many/k%03d" % i, Body=b"x"), range(105)))
PY
ART=${CAIRN_TEST_ARTIFACTS:-$H_ROOT/build/test-artifacts}
mkdir -p "$ART" "$H_WORK/chrome"
head -c 1000 /dev/urandom >"$H_WORK/a-small.txt"
head -c $((9 * 1024 * 1024 + 5)) /dev/urandom >"$H_WORK/a-big.bin"
"$CHROMIUM" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
    --disable-extensions --disable-background-networking --remote-debugging-port=0 \
    --user-data-dir="$H_WORK/chrome" about:blank >"$H_WORK/chromium.log" 2>&1 &
CHPID=$!
h_track $CHPID
for ((i = 0; i < 300; i++)); do
    [ -s "$H_WORK/chrome/DevToolsActivePort" ] && break
    sleep 0.1 # waiting for chromium to write its port file
done
DTPORT=$(head -1 "$H_WORK/chrome/DevToolsActivePort" 2>/dev/null || true)
if [ -z "$DTPORT" ]; then
    h_bad "chromium did not start: $(tail -3 "$H_WORK/chromium.log")"
    h_finish
fi
if timeout 120 node --no-warnings "$H_ROOT/tests/js/console_browser.mjs" \
    "$DTPORT" "$E" "$B" "$ART" "$H_WORK/a-small.txt" "$H_WORK/a-big.bin"; then
    h_ok "console in headless chromium (screenshots in $ART)"
else
    h_bad "console in headless chromium"
fi
kill -TERM "$CHPID" 2>/dev/null
timeout 10 tail --pid="$CHPID" -f /dev/null || kill -KILL "$CHPID" 2>/dev/null
wait "$CHPID" 2>/dev/null
# what the browser did, checked with boto3
if "$H_PY" - "$H_WORK/a-small.txt" "$H_WORK/a-big.bin" <<'PY'; then h_ok "uploads, delete and create seen by boto3"; else h_bad "uploads, delete and create seen by boto3"; fi
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["CAIRN_ENDPOINT"], region_name="us-east-1")
b = os.environ["CAIRN_CONSOLE_BUCKET"]
for f in sys.argv[1:]:
    got = s3.get_object(Bucket=b, Key="many/" + os.path.basename(f))
    assert got["Body"].read() == open(f, "rb").read(), f
big = s3.head_object(Bucket=b, Key="many/a-big.bin")
assert big["ETag"].endswith('-2"'), big["ETag"]  # two parts of 8 MiB at most
keys = [o["Key"] for o in s3.list_objects_v2(Bucket=b, Prefix="many/k")["Contents"]]
assert "many/k000" not in keys and len(keys) == 104, len(keys)
s3.head_bucket(Bucket=b + "-made")
PY
h_finish
