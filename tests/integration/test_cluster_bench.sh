#!/usr/bin/env bash
# test_cluster_bench: bench/cluster.sh in its shortest form (QUICK=1, 1 s per workload, without
# the spread runs). It must exit 0 (no request failed: GET bodies checked by length and every
# 10th byte for byte, through the single node and through n1 of a loopback cluster), write the
# table with the four rows (4 KiB and 1 MiB, GET and PUT), each with a throughput ratio and a CPU
# ratio that are numbers above 0, the same four rows measured by wrk (presigned URLs: no request
# failed, a ratio above 0), and the listing rows (5,000 keys under one prefix: every key listed
# once, in order, through each side), and leave no process of its own behind. 40-70 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need curl python3
[ -x "${CAIRN_ETCD:-/usr/bin/etcd}" ] || { echo "SKIP $H_NAME: etcd is not installed"; exit 77; }

out=$H_WORK/table.md
mkdir -p "$H_WORK/tmp"
if H_OUT=$(CAIRN_BIN=$CAIRN_BIN QUICK=1 DUR=1 SPREAD=0 BENCH_TMP=$H_WORK/tmp OUT=$out \
    timeout 180 "$H_ROOT/bench/cluster.sh" 2>&1); then
    h_ok "bench/cluster.sh exits 0"
else
    h_bad "bench/cluster.sh exits 0" "$H_OUT"
fi

for row in "4 KiB GET, c=64" "4 KiB PUT, c=64" "1 MiB GET, c=16" "1 MiB PUT, c=16"; do
    # the main table's row has nine columns (eleven fields), the wrk table's six (eight)
    line=$(grep -F "| $row |" "$out" 2>/dev/null | awk -F'|' 'NF == 11')
    wline=$(grep -F "| $row |" "$out" 2>/dev/null | awk -F'|' 'NF == 8')
    wratio=$(awk -F'|' '{gsub(/ /, "", $5); print $5}' <<<"$wline")
    if [[ $wratio =~ ^[0-9]+\.[0-9]+$ ]] && awk -v r="$wratio" 'BEGIN { exit !(r > 0) }'; then
        h_ok "row '$row' by wrk: ratio $wratio"
    else
        h_bad "row '$row' by wrk with a ratio" "$(cat "$out" 2>/dev/null)"
    fi
    # | workload | single | cluster | ratio | target | met? | cpu single | cpu cluster | cpu ratio |
    ratio=$(awk -F'|' '{gsub(/ /, "", $5); print $5}' <<<"$line")
    cpu=$(awk -F'|' '{gsub(/ /, "", $10); print $10}' <<<"$line")
    if [[ $ratio =~ ^[0-9]+\.[0-9]+$ ]] && [[ $cpu =~ ^[0-9]+\.[0-9]+$ ]] &&
        awk -v r="$ratio" -v c="$cpu" 'BEGIN { exit !(r > 0 && c > 0) }'; then
        h_ok "row '$row': ratio $ratio, CPU ratio $cpu"
    else
        h_bad "row '$row' with a ratio and a CPU ratio" "$(cat "$out" 2>/dev/null)"
    fi
done

# The listing rows: first pages of both prefixes by both sides, and the paging through the big
# prefix (bench/list_pages.py exits 1, failing the script, unless every key was listed once).
for row in "first page (100 keys) of the 1,000-key prefix, c=4" "first page (100 keys) of the 5,000-key prefix, c=4" \
    "all 5,000 keys, 1,000 a page (5 pages), one client"; do
    line=$(grep -F "| $row |" "$out" 2>/dev/null)
    ratio=$(awk -F'|' '{gsub(/ /, "", $5); print $5}' <<<"$line")
    if [[ $ratio =~ ^[0-9]+\.[0-9]+$ ]] && awk -v r="$ratio" 'BEGIN { exit !(r > 0) }'; then
        h_ok "listing row '$row': ratio $ratio"
    else
        h_bad "listing row '$row' with a ratio" "$(cat "$out" 2>/dev/null)"
    fi
done
h_eq "the steadiness rows are there" 2 "$(grep -cE '^\| (big prefix / small prefix|page time \(median\))' "$out")"

# Nothing it started is left: no process runs from its temp dirs.
left=$(pgrep -f -- "$H_WORK/tmp" | wc -l) # pgrep leaves itself out
h_eq "no server, node or etcd member left running" 0 "$left"
h_eq "its temp dir is removed" "" "$(ls -A "$H_WORK/tmp")"
h_finish
