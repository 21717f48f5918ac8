#!/bin/sh
# muond under srun: `srun --mpi=pmix -n 4 --overcommit muond run` beside
# `srun -n 4 --overcommit --overlap` example trainers, in one allocation. The held-out loss
# must equal, to the printed digit, that of the same training under mpiexec (the arithmetic
# is the same; only the launcher differs). `--mpi=pmi2` is refused with the fix named.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_cluster
STEPS=30
example_job "--steps $STEPS --csv $SCRATCH/srun.csv"
cat >>"$SCRATCH/job.sh" <<'JOB'
wait $trainers
trainers_status=$?
wait $daemon
echo "trainers $trainers_status daemon $?"
JOB
run_capture timeout 300 salloc -n 4 --overcommit --time=10 sh "$SCRATCH/job.sh"
expect_status 0 "salloc"
expect_in "$SCRATCH/out" "trainers 0 daemon 0" "both steps succeed"
expect_in "$SCRATCH/daemon.err" "every trainer said BYE after $STEPS step(s)" "muond ends with its trainers"
expect_match "$SCRATCH/daemon.err" "rank 3 of 4 on .*Slurm job [0-9]+ step [0-9]+" "ranks know their Slurm job and step"
expect_match "$SCRATCH/daemon.err" "trainers connect to $MUOND_SOCKET_DIR/slurm-[0-9]+\.rank3\.sock" "the socket is named by the job"
[ -z "$(ls -A "$MUOND_SOCKET_DIR" 2>/dev/null)" ] || fail "sockets left: $(ls "$MUOND_SOCKET_DIR")"

# The same training under mpiexec.
run_capture "$ROOT/scripts/train-example.sh" --build "$BUILD" --steps "$STEPS" --ranks 4 \
    --csv "$SCRATCH/mpiexec.csv"
expect_status 0 "the same training under mpiexec"
srun_loss=$(final_eval "$SCRATCH/srun.csv")
mpiexec_loss=$(final_eval "$SCRATCH/mpiexec.csv")
first_loss=$(head -n 2 "$SCRATCH/srun.csv" | tail -n 1 | awk -F, '{print $3}')
echo "held-out loss after $STEPS steps: srun $srun_loss, mpiexec $mpiexec_loss (step 1: $first_loss)"
[ -n "$srun_loss" ] && [ "$srun_loss" = "$mpiexec_loss" ] ||
    fail "srun's loss ($srun_loss) differs from mpiexec's ($mpiexec_loss)"
expect_leq "$srun_loss" "$(awk -v f="$first_loss" 'BEGIN {print f / 4}')" "the loss falls 4x in $STEPS steps"

# srun --mpi=pmi2: refused by muond itself, naming the fix.
run_capture timeout 120 srun --mpi=pmi2 -n 2 --overcommit "$MUOND" run --layout "$LAYOUT" \
    --trainer synthetic --steps 1
[ "$STATUS" -ne 0 ] || fail "srun --mpi=pmi2 was not refused"
expect_in "$SCRATCH/err" "was started with srun --mpi=pmi2" "the refusal names the launch"
expect_in "$SCRATCH/err" 'launch muond with `srun --mpi=pmix`' "the refusal names the fix"
# The other MPI command, the ScaLAPACK orth, refuses before it reads anything.
run_capture timeout 120 srun --mpi=pmi2 -n 2 --overcommit "$MUOND" orth "$SCRATCH/none.npy" \
    "$SCRATCH/out.npy" --method scalapack
expect_status 2 "muond orth --method scalapack under srun --mpi=pmi2"
expect_in "$SCRATCH/err" 'launch muond with `srun --mpi=pmix`' "orth names the fix"
finish
