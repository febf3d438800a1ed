#!/usr/bin/env bash
# Secrets and SigV2 policy (issue 8, item 9): the secret key is printed only by the start that
# generated it (later starts print where it is kept, and the example they print still works);
# a SigV2 presigned URL may be valid for at most 7 days; `--sigv2 off` / `[server] sigv2 = off`
# refuses every SigV2 request with 403 AccessDenied while SigV4 keeps working.
source "$(dirname "$0")/lib.sh"
h_own_server "starts servers with secrets and options of its own"

# start_own OUT ARGS...: a server of our own (no CAIRN_* credentials in its environment) on a free
# port; sets OWN_PID and OWN_PORT and waits until it is ready.
OWN_PID=""
start_own() {
    local out=$1 i
    shift
    OWN_PORT=$(h_free_port)
    env -u CAIRN_ACCESS_KEY -u CAIRN_SECRET_KEY "$CAIRN_BIN" server --listen "127.0.0.1:$OWN_PORT" \
        "$@" >"$out" 2>&1 &
    OWN_PID=$!
    h_track "$OWN_PID"
    for ((i = 0; i < 300; i++)); do
        curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$OWN_PORT/health/ready" 2>/dev/null &&
            return 0
        kill -0 "$OWN_PID" 2>/dev/null || break
        sleep 0.1 # polling a readiness probe
    done
    h_bad "own server ready" "$(tail -20 "$out")"
    return 1
}

stop_own() {
    kill -TERM "$OWN_PID" 2>/dev/null
    wait "$OWN_PID"
    h_eq "own server exits 0 on SIGTERM" 0 $?
}

# ---- the secret on the console ----
gen=$H_WORK/gen
start_own "$H_WORK/first.out" --data "$gen" && stop_own
secret=$(sed -n 's/^secret_key = //p' "$gen/credentials")
h_eq "a secret was generated" 40 "${#secret}"
if grep -qF -- "$secret" "$H_WORK/first.out"; then
    h_ok "first start prints the generated secret"
else
    h_bad "first start prints the generated secret" "$(cat "$H_WORK/first.out")"
fi
start_own "$H_WORK/second.out" --data "$gen" && stop_own
if grep -qF -- "$secret" "$H_WORK/second.out"; then
    h_bad "second start does not print the secret" "$(cat "$H_WORK/second.out")"
else
    h_ok "second start does not print the secret"
fi
h_run "second start says where the secret is kept" grep -qF "kept in $gen/credentials" \
    "$H_WORK/second.out"
# the example command it prints still yields the key
expr=$(sed -n 's/.*AWS_SECRET_ACCESS_KEY=\(.*\) AWS_DEFAULT_REGION=.*/\1/p' "$H_WORK/second.out")
h_eq "the printed example reads the secret from the file" "$secret" "$(eval "printf %s $expr")"

h_start # credentials from CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY
if grep -qF -- "$CAIRN_SECRET_KEY" "$H_LOG"; then
    h_bad "a secret from the environment is not printed" "$(head -8 "$H_LOG")"
else
    h_ok "a secret from the environment is not printed"
fi

# ---- SigV2 on (the default): presigned URLs at most 7 days ----
if CAIRN_ENDPOINT=$H_ENDPOINT PYTHONPATH=$H_DIR "$H_PY" "$H_DIR/sigv2_policy.py" on; then
    h_ok "SigV2 on: 7-day cap"
else
    h_bad "SigV2 on: 7-day cap"
fi
h_stop

# ---- SigV2 off, by flag and by config file ----
h_fails_with "--sigv2 takes on or off" "invalid value 'maybe' for server.sigv2" \
    "$CAIRN_BIN" server --data "$H_WORK/x" --sigv2 maybe --check-config
printf '[server]\nsigv2 = off\n' >"$H_WORK/nov2.conf"
h_run "sigv2 = off is a valid config key" \
    "$CAIRN_BIN" server --data "$H_WORK/x" --config "$H_WORK/nov2.conf" --check-config
for how in "--sigv2 off" "--config $H_WORK/nov2.conf"; do
    # shellcheck disable=SC2086 # $how is two words on purpose
    start_own "$H_WORK/nov2.out" --data "$H_WORK/nov2" $how || continue
    (
        export CAIRN_ACCESS_KEY CAIRN_SECRET_KEY
        CAIRN_ACCESS_KEY=$(sed -n 's/^access_key = //p' "$H_WORK/nov2/credentials")
        CAIRN_SECRET_KEY=$(sed -n 's/^secret_key = //p' "$H_WORK/nov2/credentials")
        CAIRN_ENDPOINT=http://127.0.0.1:$OWN_PORT PYTHONPATH=$H_DIR "$H_PY" \
            "$H_DIR/sigv2_policy.py" off
    )
    h_eq "SigV2 off ($how): V2 refused, V4 served" 0 $?
    stop_own
done
h_finish
