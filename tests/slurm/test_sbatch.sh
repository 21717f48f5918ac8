#!/bin/sh
# slurm/muond.sbatch, scaled to this host (1 node, 2 ranks, no GPUs, overcommitted), under
# `sbatch --wait`: both steps run, the trainers train, muond ends with them.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_cluster
STEPS=20
run_capture sh -c "cd '$ROOT' && timeout 300 sbatch --wait --nodes=1 --ntasks-per-node=2 \
    --gpus-per-node=0 --cpus-per-task=1 --overcommit --output='$SCRATCH/job-%j.out' \
    --export=ALL,MUOND='$MUOND',TRAINER='$MLP_TRAINER --steps $STEPS --csv $SCRATCH/loss.csv' \
    slurm/muond.sbatch"
expect_status 0 "sbatch --wait of the template"
job_out=$(ls "$SCRATCH"/job-*.out 2>/dev/null | head -n 1)
[ -n "$job_out" ] || { fail "the job wrote no output"; finish; }
expect_in "$job_out" "muond.sbatch: done, status 0" "the job script ends well"
expect_in "$job_out" "every trainer said BYE after $STEPS step(s)" "muond ends with its trainers"
expect_match "$job_out" "rank 1 of 2 on .*bound to cpus" "ranks log their binding"
first=$(sed -n 2p "$SCRATCH/loss.csv" | awk -F, '{print $3}')
last=$(final_eval "$SCRATCH/loss.csv")
echo "held-out loss: step 1 $first, step $STEPS $last"
expect_leq "$last" "$(awk -v f="$first" 'BEGIN {print f / 3}')" "the loss falls 3x in $STEPS steps"
finish
