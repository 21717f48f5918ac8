#!/bin/sh
# Fixture cleanup: the cluster goes down by its recorded PIDs and leaves nothing running.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
have_slurm || { echo "SKIPPED: Slurm is not installed"; exit 77; }
[ -f "$CLUSTER/pids" ] || { echo "SKIPPED: no cluster was started in $CLUSTER"; exit 77; }
cluster_down_leaves_nothing
finish
