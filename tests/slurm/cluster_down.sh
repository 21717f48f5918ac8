#!/bin/sh
# Fixture cleanup: the cluster goes down by its recorded PIDs and leaves nothing running.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
have_slurm || { echo "SKIPPED: Slurm is not installed"; exit 77; }
[ -f "$CLUSTER/pids" ] || { echo "SKIPPED: no cluster was started in $CLUSTER"; exit 77; }
pids=$(awk '{print $2}' "$CLUSTER/pids" | tr '\n' ' ')
run_capture "$LOCAL_CLUSTER" down --dir "$CLUSTER"
expect_status 0 "down"
for pid in $pids; do
    ! kill -0 "$pid" 2>/dev/null || fail "daemon $pid still running after down"
done
# Nothing the cluster started (slurmstepd, job tasks) is left: they carry its mark.
left=$(grep -lzxF "MUOND_LOCAL_CLUSTER=$CLUSTER" /proc/[0-9]*/environ 2>/dev/null || true)
[ -z "$left" ] || fail "processes of the cluster left: $left"
# Nor any muond or trainer of this build (the slurm tests run alone: RUN_SERIAL).
strays=$(pgrep -f "$BUILD/(launcher/muond|client/mlp_trainer)" || true)
[ -z "$strays" ] || fail "muond or trainer processes left: $strays"
run_capture "$LOCAL_CLUSTER" status --dir "$CLUSTER"
expect_status 3 "status says down"
finish
