#!/usr/bin/env bash
# Node RPC through the real binary (issue 9, item 3): `cairn node-rpc serve` runs a storage node's
# RPC on two drive folders; `cairn node-rpc check` calls info, then writes a 3 MB chunk, reads it
# back byte-exact, stats and deletes it; a wrong secret, or a request signed for another node id,
# is refused (401, CM_ERR_AUTH); a fault rule from CAIRN_RPC_FAULTS refuses the call without
# reaching the node; SIGTERM stops the node with status 0. A few seconds.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own node RPC servers"

export CAIRN_RPC_SECRET=integration-cluster-secret
port=$(h_free_port)
"$CAIRN_BIN" node-rpc serve --node-id n1 --listen "127.0.0.1:$port" "$H_WORK/d0" "$H_WORK/d1" \
    >>"$H_LOG" 2>&1 &
node_pid=$!
h_track "$node_pid"
check=("$CAIRN_BIN" node-rpc check "n1@127.0.0.1:$port")

for ((i = 0; i < 50; i++)); do # polling the node until it answers, not synchronisation by delay
    "${check[@]}" >/dev/null 2>&1 && break
    sleep 0.1
done

if h_run "info answers" "${check[@]}"; then
    grep -q "^node n1," <<<"$H_OUT" && grep -q "drive 1 ok" <<<"$H_OUT" &&
        h_ok "info names the node and its two drives" ||
        h_bad "info names the node and its two drives" "$H_OUT"
fi
h_run "append, read back byte-exact, stat, delete on drive 1" "${check[@]}" --write 1 \
    --size 3000000 && echo "$H_OUT"
h_fails_with "a wrong secret is refused" "CM_ERR_AUTH.*signature" \
    env CAIRN_RPC_SECRET=not-the-secret "${check[@]}"
h_fails_with "a request signed for another node is refused" "CM_ERR_AUTH.*another node" \
    "$CAIRN_BIN" node-rpc check "n2@127.0.0.1:$port"
h_fails_with "no secret: usage error" "CAIRN_RPC_SECRET" env -u CAIRN_RPC_SECRET "${check[@]}"
h_fails_with "fault rule check>n1:refuse refuses the call" "CM_ERR_UNAVAILABLE" \
    env CAIRN_RPC_FAULTS="check>n1:refuse" "${check[@]}"
h_run "a rule for another caller does not apply" env CAIRN_RPC_FAULTS="other>n1:refuse" \
    "${check[@]}"
h_fails_with "a missing drive is an error" "CM_ERR_NOTFOUND" "${check[@]}" --write 5

kill -TERM "$node_pid"
wait "$node_pid"
h_eq "node-rpc serve exits 0 on SIGTERM" 0 $?
h_finish
