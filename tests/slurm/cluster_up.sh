#!/bin/sh
# Fixture setup: a real single-host Slurm cluster for the other slurm tests.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
have_slurm || { echo "SKIPPED: Slurm is not installed"; exit 77; }
"$LOCAL_CLUSTER" down --dir "$CLUSTER" 2>/dev/null || true # a run that was killed
"$LOCAL_CLUSTER" up --dir "$CLUSTER" --port "$CLUSTER_PORT" >"$SCRATCH/out" 2>"$SCRATCH/err" ||
    { cat "$SCRATCH/err" >&2; exit 1; }
expect_in "$SCRATCH/out" "export SLURM_CONF=$CLUSTER/slurm.conf" "up prints the client setting"
run_capture sinfo -h -o %T
expect_status 0 "sinfo answers"
expect_in "$SCRATCH/out" idle "the node is idle"
finish
