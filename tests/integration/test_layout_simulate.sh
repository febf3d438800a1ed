#!/usr/bin/env bash
# `cairn admin layout simulate` (issue 9, placement): offline, no server. Checks the tables and
# figures it prints: the AZ bound kept, drive load max/mean <= 1.05 with equal weights, a 7th node
# moving at most 1.2x the ideal share, a removed node's cells moving (and no more), a layout read from a document (per-node rows, a double-weight
# node), refusals of a bad document and bad arguments, and the durability block (faster repair,
# more nines; a bad AFR refused). About 3 seconds.
. "$(dirname "$0")/lib.sh"

S=("$CAIRN_BIN" admin layout simulate --objects 60000)

# field LINE-PATTERN N: the Nth whitespace field of the first output line matching the pattern.
field() { awk -v p="$1" -v n="$2" '$0 ~ p { print $n; exit }' <<<"$H_OUT"; }
# ratio: the moved/ideal ratio of the change line.
ratio() { sed -nE 's/^change: moved .*; ratio ([0-9.]+)$/\1/p' <<<"$H_OUT"; }
# le A B: both are numbers and A <= B.
le() {
    awk -v a="$1" -v b="$2" \
        'BEGIN { n = "^[0-9]+([.][0-9]+)?$"; exit !(a ~ n && b ~ n && a + 0 <= b + 0) }'
}

if h_run "simulate 3 AZs x 2 nodes x 4 drives, 4+2" "${S[@]}" --k 4 --m 2; then
    grep -q "AZ bound: kept: no object has more than 2 cells in one AZ" <<<"$H_OUT" &&
        h_ok "AZ bound kept (2 per AZ)" || h_bad "AZ bound kept (2 per AZ)" "$H_OUT"
    mm=$(field "^drives: load max/mean" 4)
    le "$mm" 1.05 && h_ok "drive load max/mean $mm <= 1.05" || h_bad "max/mean <= 1.05" "$H_OUT"
    rows=$(grep -cE '^n[0-9]+ +az[0-9] ' <<<"$H_OUT")
    h_eq "one row per node" 6 "$rows"
fi

if h_run "default profile of 24 drives over 3 AZs is 8+4" "${S[@]}"; then
    grep -q "profile 8+4, at most 4 cells per AZ" <<<"$H_OUT" && h_ok "8+4 chosen" ||
        h_bad "8+4 chosen" "$H_OUT"
fi

if h_run "add a 7th node in az1" "${S[@]}" --k 4 --m 2 --add-node az1; then
    ratio=$(ratio)
    le "$ratio" 1.2 && h_ok "moved $ratio x the ideal share (<= 1.2)" ||
        h_bad "moved <= 1.2x ideal" "$H_OUT"
fi

if h_run "6 AZs of one node, add a 7th AZ" "${S[@]}" --azs 6 --nodes-per-az 1 --k 4 --m 2 \
    --add-node az7; then
    ratio=$(ratio)
    le "$ratio" 1.2 && le 0.8 "$ratio" && h_ok "moved $ratio x the ideal share (0.8..1.2)" ||
        h_bad "moved 0.8..1.2x ideal" "$H_OUT"
fi

if h_run "remove node n6 (az3 keeps n5)" "${S[@]}" --k 4 --m 2 --remove-node n6; then
    ratio=$(ratio)
    le "$ratio" 1.2 && le 0.8 "$ratio" && h_ok "moved $ratio x the ideal share (0.8..1.2)" ||
        h_bad "moved 0.8..1.2x ideal" "$H_OUT"
    n6=$(field "^n6 " 5)
    h_eq "the removed node holds no cell" 0 "$n6"
fi
h_fails_with "draining an unknown node is refused" "no node" "${S[@]}" --drain n99

h_run "ring scheme runs" "${S[@]}" --scheme ring --k 4 --m 2

# a layout document: 3 AZs, one node each, n1 with double-weight drives; 2+1 (one cell per AZ)
cat >"$H_WORK/layout.json" <<'EOF_JSON'
{"version":1,"epoch":4,"azs":[
 {"name":"a","nodes":[{"id":"n1","addr":"10.0.0.1:9100","drives":[{"id":0,"weight":200},{"id":1,"weight":200}]},
                      {"id":"n2","addr":"10.0.0.2:9100","drives":[{"id":0,"weight":100},{"id":1,"weight":100}]}]},
 {"name":"b","nodes":[{"id":"n3","addr":"10.0.1.1:9100","drives":[{"id":0,"weight":100}]}]},
 {"name":"c","nodes":[{"id":"n4","addr":"10.0.2.1:9100","state":"up","drives":[{"id":0,"weight":100}]}]}]}
EOF_JSON
if h_run "simulate a layout document" "${S[@]}" --file "$H_WORK/layout.json" --k 2 --m 1; then
    n1=$(field "^n1 " 5)
    n2=$(field "^n2 " 5)
    r=$(awk -v a="$n1" -v b="$n2" 'BEGIN { printf "%.3f", a / b }')
    le 1.9 "$r" && le "$r" 2.1 && h_ok "double-weight node gets ${r}x its sibling's cells" ||
        h_bad "double-weight node gets ~2x" "$H_OUT"
    grep -q "epoch 4" <<<"$H_OUT" && h_ok "epoch read from the document" ||
        h_bad "epoch read from the document" "$H_OUT"
fi

printf '{"version":1,"epoch":1,"azs":[{"name":"a","nodes":[{"id":"n1","addr":"x:1",' \
    >"$H_WORK/bad.json"
printf '"drives":[{"id":0,"weight":0}]}]}]}' >>"$H_WORK/bad.json"
h_fails_with "a document with weight 0 is refused" "weight" "${S[@]}" --file "$H_WORK/bad.json"
h_fails_with "a missing file is refused" "cannot open" "${S[@]}" --file "$H_WORK/none.json"
h_fails_with "an unknown flag is refused" "unknown or bad argument" "${S[@]}" --bogus 1

# the durability block: nines at the assumed repair speed; 10x faster repair gives more nines
nines() { sed -nE 's/^  MTTDL .*: ([0-9.]+) nines$/\1/p' <<<"$H_OUT"; }
if h_run "durability at 20 MB/s" "${S[@]}" --k 4 --m 2 --repair-mbps 20; then
    slow=$(nines)
    grep -q "^durability: profile 4+2 over 24 drives in 3 AZs" <<<"$H_OUT" &&
        h_ok "durability block printed ($slow nines)" || h_bad "durability block" "$H_OUT"
fi
if h_run "durability at 200 MB/s" "${S[@]}" --k 4 --m 2 --repair-mbps 200; then
    fast=$(nines)
    le "$slow" "$fast" && [ "$slow" != "$fast" ] && h_ok "faster repair: $fast > $slow nines" ||
        h_bad "faster repair gives more nines" "$H_OUT"
fi
h_fails_with "a bad AFR is refused" "no durability estimate" "${S[@]}" --afr 1.5
h_finish
