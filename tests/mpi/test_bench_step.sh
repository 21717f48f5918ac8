#!/bin/sh
# muond bench step under mpiexec: both output formats, and exchange bytes equal to the ideal
# (twice each rank's own matrix-shard bytes) for a layout whose rows divide evenly.
. "$(dirname "$0")/../cli/lib.sh"
# Under AddressSanitizer, leak checks are off for the ranks mpiexec starts: Open MPI dlcloses
# its components at MPI_Finalize, leaving allocations whose stacks no report can attribute.
# Memory errors are still caught; muond's own leaks are checked by the MPI-free runs
# (tests/cli/test_run_loopback.sh).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
LAYOUTS="$(dirname "$0")/../data/layouts"

run_capture timeout 300 "$MPIEXEC" -n 2 --oversubscribe "$MUOND" bench step \
    --layout "$LAYOUTS/tiny.json" --steps 5 --json
expect_status 0 "bench step --json"
expect_in "$SCRATCH/out" '"bench":"step"' "phase line"
expect_in "$SCRATCH/out" '"compute_ms":' "compute time"
lines=$(grep -c '"ratio_to_ideal"' "$SCRATCH/out" || true)
[ "$lines" -eq 2 ] || fail "expected a bytes line per rank, got $lines"

run_capture timeout 300 "$MPIEXEC" -n 4 --oversubscribe "$MUOND" bench step \
    --layout "$LAYOUTS/one-matrix.json" --steps 5
expect_status 0 "bench step table"
expect_in "$SCRATCH/out" "owner imbalance" "imbalance line"
expect_in "$SCRATCH/out" "rank 3: sent" "per-rank bytes"
finish
