#!/usr/bin/env bash
# Lifecycle rules on versions (issue 10, scope 3) on a single node, with a lifecycle day of one
# second ([lifecycle] day_s = 1, the test clock) and a pass every second: the boto3 suite
# lifecycle_versions.py (a current version expiring into a delete marker, noncurrent versions
# expiring while the newest ones are kept, lone delete markers removed by ExpiredObjectDeleteMarker
# and kept by Expiration Days, tag and prefix filters on versions, a suspended bucket's null
# marker, x-amz-expiration on PUT/HEAD/GET, the version counters; with Object Lock, a locked
# noncurrent version kept and its refusal counted), `cairn admin status` showing
# them, then a restart in the middle of a pass over 120 versions at 30 versions/s: the pass resumes
# where it stood and examines each version once. Cluster nodes refuse lifecycle configurations
# (test_lifecycle.sh checks that), so this test runs on a single node only.
source "$(dirname "$0")/lib.sh"

"$H_PY" -c 'import boto3' 2>/dev/null || { echo "SKIP $H_NAME: no boto3"; exit 77; }
if [ "$H_CLUSTER" = 1 ]; then
    echo "SKIP $H_NAME: lifecycle runs on a single node (test_lifecycle.sh checks the refusal)"
    exit 77
fi
lc_conf() {
    printf '[lifecycle]\nday_s = 1\ninterval_s = 1\nrate = %s\n' "$1" >"$H_WORK/lc.conf"
}
lc_conf 1000
H_SERVER_ARGS=(--config "$H_WORK/lc.conf")
h_start
export CAIRN_ENDPOINT=$H_ENDPOINT LC_STATE=$H_WORK/lc.state
export PYTHONPATH=$H_DIR${PYTHONPATH:+:$PYTHONPATH}

if "$H_PY" "$H_DIR/lifecycle_versions.py" rules; then h_ok "boto3 lifecycle rules on versions"
else h_bad "boto3 lifecycle rules on versions"; fi
"$H_PY" "$H_DIR/lifecycle_versions.py" locked
case $? in
0) h_ok "locked versions outlive the rules" ;;
77) ;; # this server has no Object Lock: nothing checked, nothing claimed
*) h_bad "locked versions outlive the rules" ;;
esac
if h_run "cairn admin status" "$CAIRN_BIN" admin status --endpoint "$H_ENDPOINT"; then
    grep -q '^  versions: noncurrent expired [0-9]*, delete markers removed [0-9]*, refused by lock' \
        <<<"$H_OUT" && h_ok "admin status shows the version counters" ||
        h_bad "admin status shows the version counters" "$H_OUT"
fi
grep -q 'lifecycle.*key=nc/k version=[0-9a-f]* expired (noncurrent) by rule nc' "$H_LOG" &&
    h_ok "a noncurrent expiration is logged" ||
    h_bad "a noncurrent expiration is logged" "$(grep lifecycle "$H_LOG" | tail -5)"
grep -q 'lifecycle.*key=dm/lone version=[0-9a-f]* removed (expired delete marker) by rule dm' \
    "$H_LOG" && h_ok "a marker's removal is logged" ||
    h_bad "a marker's removal is logged" "$(grep lifecycle "$H_LOG" | tail -5)"

h_stop
lc_conf 30
h_start
if "$H_PY" "$H_DIR/lifecycle_versions.py" bulk-start; then
    h_stop
    h_start
    if "$H_PY" "$H_DIR/lifecycle_versions.py" bulk-check; then
        h_ok "the pass over versions resumed after a restart"
    else h_bad "the pass over versions resumed after a restart"; fi
    grep -q "pass resumed at bucket=$(h_bucket lcv-bulk) objects after key=bulk/" "$H_LOG" &&
        h_ok "the resumption is logged" || h_bad "the resumption is logged" "$(tail -5 "$H_LOG")"
else
    h_bad "a pass part-way through 120 versions"
fi
h_finish
