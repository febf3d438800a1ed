#!/usr/bin/env bash
# test_cluster_mpu_race: calls on one multipart upload racing through different nodes of the
# loopback cluster (docs/multipart-cluster.md, "Races"), with boto3 (cluster_mpu_race.py), a
# garbage grace period of 3 s and a maintenance tick every 2 s ([cluster] maintenance_s). Two Completes of one upload with different part lists, through n2
# and n5 at once, 6 rounds: exactly one answers 200, the other NoSuchUpload, HEAD through every
# node names the winner's object. An UploadPart (of a new part, or of part 2 again with the same
# bytes) racing a Complete or an Abort through another node, 8 rounds: the UploadPart answers 200
# or NoSuchUpload and the upload is gone afterwards. An UploadPart through n4 SIGKILLed mid-body:
# the part uploaded again through n5 completes the upload through n6. Past the grace period and a maintenance tick
# (the nodes free garbage then), every object made reads back byte-exact through three nodes:
# no body an object uses was freed. About 20 s.
. "$(dirname "$0")/lib.sh"
h_own_server "starts its own cluster with deploy/local-cluster.sh"
h_need ss
. "$(dirname "$0")/lib_cluster.sh"
export CAIRN_CLUSTER_GC_GRACE_S=3 CAIRN_CLUSTER_MAINTENANCE_S=2
lc_up itmpr boto3
EPS=$(lc_endpoints)
ST=$H_WORK/state.json
step() { h_run "$1" "$H_PY" "$H_DIR/cluster_mpu_race.py" "${@:2}" && sed 's/^/   /' <<<"$H_OUT"; }

step "two Completes with different part lists at once" complete2 "$EPS" "$ST" race "${MPR_ROUNDS:-6}"
step "UploadPart racing Complete and Abort" partrace "$EPS" "$ST" race "$((${MPR_ROUNDS:-6} + 2))"
step "an UploadPart whose node dies mid-body, then the part again" killpart "$EPS" "$ST" race "$(lc_pid n4)"
sleep 7 # the grace period (3 s) and a maintenance tick (2 s): unused bodies are freed by now
step "every object reads back byte-exact past the grace period" verify "$EPS" "$ST" race

h_run "local-cluster.sh stop" lc stop
lc_check_sanitizers
h_finish
