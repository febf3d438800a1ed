#!/usr/bin/env bash
# The linearizability tools (tests/tools/, docs/testing.md "Linearizability"): the checker's unit
# tests on hand-made histories (test_lincheck.py), then a real history: 8 s3hist.py clients for
# 5 s on 3 keys of one single-node cairn (put, get, delete, If-None-Match and If-Match PUTs),
# which lincheck.py must find linearizable; a copy with one read changed to a value overwritten
# before the read began must be found not linearizable (exit 1) and the report must name that
# read; a 2 s history over two endpoints with per-client endpoint sets must keep to the sets and
# pass; a 4 s history across a 1.5 s SIGSTOP of the server (requests time out, then many take
# effect after SIGCONT: unknown outcomes) must pass; a budget of 10 steps must give up with
# "too large" (exit 3). About 20 s.
source "$(dirname "$0")/lib.sh"
h_own_server "stops its own server with SIGSTOP"
TOOLS=$H_ROOT/tests/tools

h_run "checker unit tests" "$H_PY" "$TOOLS/test_lincheck.py"
[ $H_FAILS -eq 0 ] || printf '%s\n' "$H_OUT" | tail -n 30

h_start
hist=$H_WORK/history.jsonl
if h_run "s3hist: 8 clients, 5 s, 3 keys" "$H_PY" "$TOOLS/s3hist.py" --endpoints "$H_ENDPOINT" \
    --bucket lin --create-bucket --clients 8 --seconds 5 --keys 3 --seed 7 --timeout 10 \
    --out "$hist"; then
    printf '%s\n' "$H_OUT"
fi
ops=$(wc -l <"$hist")
# Every kind must have run, with each of its decisive outcomes, or the check proves little.
"$H_PY" - "$hist" <<'EOF' && h_ok "history has $ops ops of every kind and outcome" || h_bad "history has every kind and outcome"
import collections, json, sys
seen = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    seen[(r["op"], r["result"])] += 1
need = [("put", "ok"), ("get", "ok"), ("get", "absent"), ("delete", "ok"), ("create", "ok"),
        ("create", "precondition-failed"), ("cas", "ok"), ("cas", "precondition-failed")]
missing = [n for n in need if seen[n] == 0]
# A refusal (4xx) would be a bug; a timeout (unknown) only a slow server, which the check handles.
bad = {k: v for k, v in seen.items() if k[1] == "failed"}
print("counts:", dict(seen))
sys.exit(1 if missing or bad or sum(seen.values()) < 500 else 0)
EOF

if h_run "lincheck: the recorded history is linearizable" "$H_PY" "$TOOLS/lincheck.py" "$hist"; then
    printf '%s\n' "$H_OUT" | tail -n 5
fi

# Corrupt one read in the second half: a get that began after two completed writes of its key (w1 returned before w2
# was invoked, w2 returned before the get was invoked) now claims to have read w1's value.
bad=$H_WORK/corrupt.jsonl
line=$("$H_PY" - "$hist" "$bad" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
for i in range(len(recs) // 2, len(recs)):  # from the middle: the report must find it there
    g = recs[i]
    if g["op"] != "get" or g["result"] not in ("ok", "absent"):
        continue
    writes = [w for w in recs if w["key"] == g["key"] and w["op"] in ("put", "create", "cas")
              and w["result"] == "ok" and w["return"] < g["invoke"]]
    for w2 in sorted(writes, key=lambda w: -w["invoke"]):
        w1 = [w for w in writes if w["return"] < w2["invoke"]]
        if w1:
            g["result"], g["read"] = "ok", w1[0]["args"]["value"]
            with open(sys.argv[2], "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in recs)
            print(i + 1)
            sys.exit(0)
sys.exit(1)
EOF
)
if [ -n "$line" ]; then
    h_ok "corrupted line $line of the history"
    "$H_PY" "$TOOLS/lincheck.py" "$bad" >"$H_WORK/corrupt.out" 2>&1
    rc=$?
    h_eq "lincheck exits 1 on the corrupted history" 1 "$rc"
    if grep -q "NOT linearizable" "$H_WORK/corrupt.out" && grep -q "(line $line)" "$H_WORK/corrupt.out"; then
        h_ok "the report names the corrupted read (line $line)"
    else
        h_bad "the report names the corrupted read (line $line)" "$(cat "$H_WORK/corrupt.out")"
    fi
    sed -n '/NOT linearizable/,/^lincheck/p' "$H_WORK/corrupt.out" | head -n 20
else
    h_bad "found a read to corrupt"
fi

# Two endpoints (the same node under two names, as a cluster test gives six nodes), with
# per-client sets: client 0 only endpoint 0, client 1 only endpoint 1, client 2 both.
hist2=$H_WORK/history2.jsonl
h_run "s3hist: 2 endpoints, per-client sets" "$H_PY" "$TOOLS/s3hist.py" --bucket lin \
    --endpoints "$H_ENDPOINT,http://localhost:$H_PORT" --client-endpoints "0;1;0,1" \
    --pick random --clients 3 --seconds 2 --keys 2 --timeout 10 --out "$hist2"
"$H_PY" - "$hist2" <<'EOF' && h_ok "each client used only its endpoints" || h_bad "each client used only its endpoints"
import json, sys
used = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    used.setdefault(r["client"], set()).add(r["endpoint"])
print("endpoints per client:", used)
sys.exit(0 if used == {0: {0}, 1: {1}, 2: {0, 1}} else 1)
EOF
h_run "lincheck: the two-endpoint history is linearizable" "$H_PY" "$TOOLS/lincheck.py" "$hist2"

# Real unknown outcomes: the server is stopped (SIGSTOP) for 1.5 s while 8 clients with a 0.5 s
# timeout run; their requests time out, and many take effect after SIGCONT, when the clients
# have given up on them. The history must still be linearizable.
hist3=$H_WORK/history3.jsonl
"$H_PY" "$TOOLS/s3hist.py" --bucket lin --endpoints "$H_ENDPOINT" --clients 8 --seconds 4 \
    --keys 3 --timeout 0.5 --out "$hist3" >"$H_WORK/stop.out" 2>&1 &
rec=$!
h_track "$rec"
sleep 1 # fault schedule: let the recording run before the stop
kill -STOP "$H_PID"
sleep 1.5
kill -CONT "$H_PID"
if wait "$rec"; then
    h_ok "s3hist across a 1.5 s SIGSTOP of the server"
    cat "$H_WORK/stop.out"
else
    h_bad "s3hist across a 1.5 s SIGSTOP of the server" "$(cat "$H_WORK/stop.out")"
fi
nunk=$(grep -c '"result": "unknown"' "$hist3")
[ "$nunk" -gt 0 ] && h_ok "the stop left $nunk ops of unknown outcome" ||
    h_bad "the stop left ops of unknown outcome"
"$H_PY" - "$hist3" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
unk = {r["args"]["value"] for r in recs if r["result"] == "unknown" and "value" in r["args"]}
seen = {r["read"] for r in recs if r.get("read") in unk}
print("info: %d timed-out writes, %d of them later read (applied after the client gave up)"
      % (len(unk), len(seen)))
EOF
h_run "lincheck: the history across the stop is linearizable" "$H_PY" "$TOOLS/lincheck.py" "$hist3"
printf '%s\n' "$H_OUT" | tail -n 4

"$H_PY" "$TOOLS/lincheck.py" --budget 10 "$hist" >"$H_WORK/budget.out" 2>&1
rc=$?
h_eq "lincheck exits 3 when the budget runs out" 3 "$rc"
grep -q "too large" "$H_WORK/budget.out" && h_ok "budget report says too large" ||
    h_bad "budget report says too large" "$(cat "$H_WORK/budget.out")"
h_finish
