#!/usr/bin/env bash
# test_etcd_check: `cairn admin etcd-check` against a 3-member etcd cluster started by lib_etcd.sh:
# all healthy (exit 0, one leader), one member killed (a quorum again once a leader is elected, its
# row says "no"), two killed (no quorum, exit 1), and the killed member back again. No cairn
# server is needed.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own etcd members"
. "$H_DIR/lib_etcd.sh"
h_need curl python3
[ -x "$ETCD_BIN" ] || { echo "SKIP $H_NAME: $ETCD_BIN is not installed"; exit 77; }

etcd_start 3 || { h_bad "3 etcd members start"; h_finish; }
h_ok "3 etcd members started: $ETCD_ENDPOINTS"

check() { "$CAIRN_BIN" admin etcd-check --endpoints "$1" --timeout 500 >"$H_WORK/out" 2>&1; }
# after a member died or came back the others may need about a second to (re)elect a leader
check_until_healthy() {
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        check "$ETCD_ENDPOINTS" && return 0
        sleep 0.3
    done
    return 1
}
check "$ETCD_ENDPOINTS"
rc=$?
cat "$H_WORK/out"
[ "$rc" -eq 0 ] && h_ok "healthy cluster: exit 0" || h_bad "healthy cluster: exit $rc"
[ "$(grep -c ' yes ' "$H_WORK/out")" -eq 3 ] && h_ok "3 rows reachable" || h_bad "3 rows reachable"
leaders=$(awk '$2 == "yes" {print $4}' "$H_WORK/out" | sort -u | wc -l)
[ "$leaders" -eq 1 ] && h_ok "one leader named by all" || h_bad "leaders named: $leaders"

etcd_kill 0
check_until_healthy
rc=$?
cat "$H_WORK/out"
[ "$rc" -eq 0 ] && h_ok "one member down: healthy again" || h_bad "one member down: exit $rc"
grep -q "^${ETCD_URLS[0]} *no " "$H_WORK/out" && h_ok "dead member's row says no" ||
    h_bad "dead member's row"

etcd_kill 1
check "$ETCD_ENDPOINTS"
rc=$?
cat "$H_WORK/out"
[ "$rc" -eq 1 ] && h_ok "two members down: exit 1" || h_bad "two members down: exit $rc"
grep -q "1 of 3 members reachable" "$H_WORK/out" && h_ok "1 of 3 reachable" || h_bad "count"

etcd_restart 0 && h_ok "member 0 restarted" || h_bad "member 0 restarted"
check_until_healthy
rc=$?
cat "$H_WORK/out"
[ "$rc" -eq 0 ] && h_ok "quorum back: exit 0" || h_bad "quorum back: exit $rc"

h_fails_with "no endpoints: usage" "usage: cairn admin etcd-check" "$CAIRN_BIN" admin etcd-check
etcd_stop
h_finish
