#!/bin/sh
# Stalls and dead ranks, 4 ranks: a short stall is ridden out (fault-free digest); a stall
# past --comm-timeout, and a killed rank, make every surviving rank name the missing one and
# exit promptly; after a kill the last checkpoint is intact and resuming from it gives the
# fault-free digest.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

clean=$(clean_digest 4 6)
run_muond 4 -- --layout "$TINY" --steps 6 --digest --comm-timeout 30 \
    --inject stall:rank=2:step=2:ms=300
expect_status 0 "a 300 ms stall under a 30 s deadline"
expect_same "$(digest_of_run)" "$clean" "the stalled run's digest"

run_muond 4 -- --layout "$TINY" --steps 6 --comm-timeout 1 --inject stall:rank=2:step=2:ms=30000
[ "$STATUS" -ne 0 ] || fail "a stall past the deadline did not stop the job"
expect_in "$SCRATCH/err" "did not complete within --comm-timeout 1 s; missing (no answer to a roll call): rank 2" \
    "the stalled rank is named"
expect_bounded "the stalled run"

# Open MPI's mpiexec kills the whole job when a rank dies unless told to let it run: with
# --enable-recovery the survivors' own deadline is what stops them.
run_muond 4 --enable-recovery -- --layout "$TINY" --steps 6 --comm-timeout 2 \
    --inject kill:rank=1:step=4
survivors=$(grep -c "step 4: rank [023]: .*missing (no answer to a roll call): rank 1" "$SCRATCH/err" || true)
[ "$survivors" -ge 1 ] || { fail "no survivor named the dead rank 1"; cat "$SCRATCH/err" >&2; }
expect_bounded "the run with a dead rank"

run_muond 4 -- --layout "$TINY" --steps 6 --checkpoint-dir "$SCRATCH/ck" --checkpoint-every 2 \
    --inject kill:rank=1:step=4
[ "$STATUS" -ne 0 ] || fail "a killed rank did not stop the job"
expect_bounded "the killed job"
expect_in "$SCRATCH/ck/LATEST" "step-00000002" "the last checkpoint is step 2"
run_muond 4 -- --layout "$TINY" --steps 6 --digest --resume "$SCRATCH/ck"
expect_status 0 "resume after the kill"
expect_same "$(digest_of_run)" "$clean" "resuming after the kill gives the fault-free digest"
finish
