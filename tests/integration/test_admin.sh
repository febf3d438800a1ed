#!/usr/bin/env bash
# `cairn admin` against a real server (docs/admin.md): status, drives, buckets, layout, scrub and
# repair as tables and as --json (parsed with python3, field names checked), the durability
# estimate, the progress of `scrub --wait` without a terminal (plain lines, rate and ETA) and on
# one (a line rewritten with \r, through script(1) when present), the admin API refusing unsigned
# requests, and the one-line messages and exit codes of an unreachable endpoint (4, also a server
# that answers a byte at a time: one deadline bounds the whole exchange), refused credentials (5)
# and a server error (6: repair on a single node).
source "$(dirname "$0")/lib.sh"

if [ -x /usr/bin/aws ]; then AWSBIN=/usr/bin/aws; else AWSBIN=aws; fi
h_need "$AWSBIN"
[ "$H_CLUSTER" = 0 ] || { echo "SKIP $H_NAME: single-node test"; exit 77; }
h_start
aws() { "$AWSBIN" --endpoint-url "$H_ENDPOINT" --region us-east-1 "$@"; }
adm() { "$CAIRN_BIN" admin "$@" --endpoint "$H_ENDPOINT"; }
# jcheck DESC FILE PYTHON: FILE must parse as JSON and the expression on `d` be true
jcheck() {
    if "$H_PY" -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($3) else 1)" \
        "$2" 2>"$H_WORK/jcheck.err"; then h_ok "$1"; else
        h_bad "$1" "$(cat "$H_WORK/jcheck.err" "$2" | head -n 40)"; fi
}

B=$(h_bucket admin-tables)
h_run "create bucket" aws s3api create-bucket --bucket "$B"
h_gen "$H_WORK/obj" 300000 7
for i in 1 2 3; do h_run "put o$i" aws s3api put-object --bucket "$B" --key "o$i" --body "$H_WORK/obj"; done
printf 'x' >"$H_WORK/small"
h_run "put a small object" aws s3api put-object --bucket "$B" --key small --body "$H_WORK/small"

# scrub --wait without a terminal: progress lines on stderr, the table on stdout
if adm scrub --wait >"$H_WORK/scrub.out" 2>"$H_WORK/scrub.err"; then h_ok "scrub --wait"; else
    h_bad "scrub --wait" "$(cat "$H_WORK/scrub.out" "$H_WORK/scrub.err")"; fi
grep -Eq '^scrub \[#{20}\] 100% .* of .*, (rate unknown|[0-9.]+ [KMG]?i?B/s), ETA .*; objects 4/' \
    "$H_WORK/scrub.err" && h_ok "scrub progress: a final 100% line with rate and ETA" ||
    h_bad "scrub progress: a final 100% line with rate and ETA" "$(cat "$H_WORK/scrub.err")"
grep -q $'\r' "$H_WORK/scrub.err" && h_bad "no carriage returns without a terminal" ||
    h_ok "no carriage returns without a terminal"
grep -q '^damaged found' "$H_WORK/scrub.out" && h_ok "scrub result table" ||
    h_bad "scrub result table" "$(cat "$H_WORK/scrub.out")"
if command -v script >/dev/null; then
    script -qec "$CAIRN_BIN admin scrub --wait --endpoint $H_ENDPOINT" /dev/null \
        >"$H_WORK/tty.out" 2>&1 </dev/null
    grep -q $'\rscrub \\[' "$H_WORK/tty.out" && h_ok "on a terminal the progress line is rewritten" ||
        h_bad "on a terminal the progress line is rewritten" "$(cat -A "$H_WORK/tty.out" | head)"
fi
# The JSON document alone on stdout; progress lines (with or without a bar, as the pass has
# counted its total or not yet) go to stderr.
adm scrub --wait --json >"$H_WORK/scrub.json" 2>"$H_WORK/scrub.err" &&
    h_ok "scrub --wait --json" || h_bad "scrub --wait --json" "$(cat "$H_WORK/scrub.err")"
jcheck "scrub --json: the pass and its final status" "$H_WORK/scrub.json" \
    'd["pass"] >= 3 and d["status"]["passes"] >= d["pass"] and d["status"]["pass"]["objects"] == 4 and not d["status"]["running"]'

# status
if h_run "status" adm status; then
    head -n 1 <<<"$H_OUT" | grep -Eq '^cairn at 127\.0\.0\.1:[0-9]+: ready; erasure 4\+2; 6/6 drives online; .* used; 0 checksum failures; scrub idle, last pass ended (just now|[0-9]+s ago)$' &&
        h_ok "status: the summary line first" || h_bad "status: the summary line first" "$H_OUT"
    grep -Eq '^durability: tolerates 2 drive losses \(4\+2 over 6 drives\); with a measured repair rate of .* a lost drive of .* is rebuilt in ~.*; estimated annual loss probability ~.* under an assumed AFR of 2%/year per drive' <<<"$H_OUT" &&
        h_ok "status: the durability estimate" || h_bad "status: the durability estimate" "$H_OUT"
    grep -Eq '^drive +state +blobs +used +live +reclaimable +segments +checksum failures$' <<<"$H_OUT" &&
        h_ok "status: the drive table" || h_bad "status: the drive table" "$H_OUT"
fi
adm status --json >"$H_WORK/status.json" && h_ok "status --json" || h_bad "status --json"
jcheck "status --json: drives, scrub and durability" "$H_WORK/status.json" \
    'd["ready"] and d["erasure"] == "4+2" and len(d["drives"]) == 6 and d["durability"]["tolerated_drive_losses"] == 2 and d["durability"]["tolerated_node_losses"] is None and d["durability"]["known"] and d["durability"]["repair_rate_measured"] and 0 < d["durability"]["annual_loss_probability"] < 1e-6 and d["durability"]["afr_assumed"] == 0.02 and d["durability"]["rebuild_s"] >= 0'

# drives
if h_run "drives" adm drives; then
    head -n 1 <<<"$H_OUT" | grep -Eq '^6 drives, 6 online; .* used, .* free; 0 checksum failures; last scrub (just now|[0-9]+s ago)$' &&
        h_ok "drives: the summary line" || h_bad "drives: the summary line" "$H_OUT"
    [ "$(grep -Ec '^[0-5] +ok +[0-9.]+ [KMG]?i?B +[0-9.]+ [KMGT]iB +[0-9.]+ [KMGT]iB +[0-9]+ .* +0 +(just now|[0-9]+s ago) ' <<<"$H_OUT")" = 6 ] &&
        h_ok "drives: one aligned row per drive" || h_bad "drives: one aligned row per drive" "$H_OUT"
fi
adm drives --json >"$H_WORK/drives.json" && h_ok "drives --json" || h_bad "drives --json"
jcheck "drives --json: per drive state, space, blobs, checksum failures, last scrub" \
    "$H_WORK/drives.json" \
    'd["drives_total"] == 6 and all(x["state"] == "ok" and x["online"] and x["fs_total_bytes"] >= x["fs_free_bytes"] > 0 and x["blobs"] > 0 and x["used_bytes"] > 0 and x["checksum_failures"] == 0 and x["last_scrub_ms"] > 0 for x in d["drives"])'

# buckets
if h_run "buckets" adm buckets; then
    grep -Eq "^1 buckets, 4 objects, 878\.9 KiB$" <<<"$H_OUT" && h_ok "buckets: the summary line" ||
        h_bad "buckets: the summary line" "$H_OUT"
    grep -Eq "^$B +$CAIRN_ACCESS_KEY +4 +878\.9 KiB +off +no +(just now|[0-9]+s ago)$" <<<"$H_OUT" &&
        h_ok "buckets: the bucket's row" || h_bad "buckets: the bucket's row" "$H_OUT"
fi
adm buckets --json >"$H_WORK/buckets.json" && h_ok "buckets --json" || h_bad "buckets --json"
jcheck "buckets --json: owner, counts, flags, created" "$H_WORK/buckets.json" \
    "[(b['name'], b['owner'], b['objects'], b['bytes'], b['versioning'], b['lifecycle'], b['exact']) for b in d['buckets']] == [('$B', '$CAIRN_ACCESS_KEY', 4, 900001, 'off', False, True)] and d['buckets'][0]['created_ms'] > 0"

# layout, as the node sees it
h_run "layout" adm layout && grep -q '^single node, no cluster layout: erasure 4+2 over 6 drives; tolerates 2 drive losses$' <<<"$H_OUT" &&
    h_ok "layout: a single node" || h_bad "layout: a single node" "$H_OUT"
adm layout --json >"$H_WORK/layout.json" && h_ok "layout --json" || h_bad "layout --json"
jcheck "layout --json: a single node's profile and tolerance" "$H_WORK/layout.json" \
    'd["clustered"] is False and d["k"] == 4 and d["m"] == 2 and d["drives"] == 6 and d["tolerated_drive_losses"] == 2 and d["nodes"] == []'

# errors: one line each, documented exit codes
expect_exit() { # DESC CODE PATTERN CMD...
    local desc=$1 code=$2 pat=$3 rc
    shift 3
    "$@" >"$H_WORK/err.out" 2>"$H_WORK/err.err"
    rc=$?
    if [ "$rc" = "$code" ] && [ "$(wc -l <"$H_WORK/err.err")" = 1 ] && grep -Eq "$pat" "$H_WORK/err.err" &&
        [ ! -s "$H_WORK/err.out" ]; then h_ok "$desc"; else
        h_bad "$desc" "exit $rc (want $code)"$'\n'"$(cat "$H_WORK/err.out" "$H_WORK/err.err")"; fi
}
DEAD=$(h_free_port)
expect_exit "an unreachable endpoint: exit 4" 4 "^cairn admin: cannot connect to 127\.0\.0\.1:$DEAD: " \
    "$CAIRN_BIN" admin drives --json --endpoint "http://127.0.0.1:$DEAD"
# a server that answers a byte every half second: the exchange's deadline holds (each receive
# alone would have waited well within its timeout, for the 70 s the answer takes)
DRIP=$(h_free_port)
"$H_PY" - "$DRIP" "$H_WORK/drip.ready" <<'PY' &
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
open(sys.argv[2], "w").close()
c, _ = s.accept()
c.recv(65536)
for b in b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"{" * 100:
    try:
        c.send(bytes([b]))
    except OSError:
        break
    time.sleep(0.5)
PY
h_track $! python3
for _ in $(seq 100); do [ -e "$H_WORK/drip.ready" ] && break; sleep 0.05; done
t0=$(date +%s%N)
expect_exit "a server answering a byte at a time: exit 4 at the deadline" 4 \
    "^cairn admin: no answer from 127\.0\.0\.1:$DRIP within 2 s$" \
    env CAIRN_ADMIN_TIMEOUT=2 "$CAIRN_BIN" admin drives --endpoint "http://127.0.0.1:$DRIP"
ms=$((($(date +%s%N) - t0) / 1000000))
[ "$ms" -lt 4500 ] && h_ok "... within the 2 s deadline (${ms} ms)" ||
    h_bad "... within the 2 s deadline" "took ${ms} ms"
expect_exit "a bad CAIRN_ADMIN_TIMEOUT: exit 2" 2 "^cairn admin: CAIRN_ADMIN_TIMEOUT must be 1 to 3600 seconds, not '0'$" \
    env CAIRN_ADMIN_TIMEOUT=0 "$CAIRN_BIN" admin drives --endpoint "$H_ENDPOINT"
expect_exit "refused credentials: exit 5" 5 \
    '^cairn admin: GET /admin/status: HTTP 403 SignatureDoesNotMatch: .*check CAIRN_ACCESS_KEY' \
    env CAIRN_SECRET_KEY=not-the-secret "$CAIRN_BIN" admin status --endpoint "$H_ENDPOINT"
expect_exit "an unknown access key: exit 5" 5 '^cairn admin: GET /admin/buckets: HTTP 403 InvalidAccessKeyId' \
    env CAIRN_ACCESS_KEY=NOSUCHKEY000000000 "$CAIRN_BIN" admin buckets --endpoint "$H_ENDPOINT"
expect_exit "a server error (repair on a single node): exit 6" 6 \
    '^cairn admin: POST /admin/repair: HTTP 503 NotClustered: this server is not a cluster node$' \
    "$CAIRN_BIN" admin repair --json --endpoint "$H_ENDPOINT"
expect_exit "the orphan sweep on a single node: exit 6" 6 \
    '^cairn admin: POST /admin/orphans: HTTP 503 NotClustered: this server is not a cluster node$' \
    "$CAIRN_BIN" admin orphans --endpoint "$H_ENDPOINT"
expect_exit "a usage error: exit 2" 2 "^cairn admin: unknown or incomplete argument '--bogus'" \
    "$CAIRN_BIN" admin drives --bogus --endpoint "$H_ENDPOINT"
for p in drives buckets orphans; do
    h_eq "unsigned GET /admin/$p is refused" 403 \
        "$(curl -s -o /dev/null -w '%{http_code}' "$H_ENDPOINT/admin/$p")"
done
# the orphan sweep's delete is the admin API's most destructive call: unsigned, it is refused too
h_eq "unsigned POST /admin/orphans?delete=1 is refused" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$H_ENDPOINT/admin/orphans?delete=1")"
h_finish
