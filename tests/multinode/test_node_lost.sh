#!/bin/sh
# A node lost mid-run: 3 ranks on 3 nodes checkpoint every 10 steps; node 3's slurmd and every
# process of its namespace are killed. The two survivors name the missing rank 2 within
# --comm-timeout and stop; resuming from the last checkpoint with the 3 ranks on the 2 nodes
# left gives the digest of the fault-free 3-rank run (the layout is local-mode: its gradient
# sums, so its digest, depend on the rank count, not on the nodes). Runs last: node 3 stays
# down until the fixture's cleanup.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_nodes
STEPS=400
TIMEOUT_S=2
LAYOUT="$LAYOUTS/mlp-polar-express.json"
run_capture timeout 300 "$MPIEXEC" -n 3 --oversubscribe "$MUOND" run --layout "$LAYOUT" \
    --trainer synthetic --seed 5 --steps "$STEPS" --digest
expect_status 0 "the fault-free run"
clean=$(grep '^digest' "$SCRATCH/out" || true)

checkpointed() { # checkpointed STEP: the newest complete checkpoint is STEP or later
    latest=$(sed -n 's/^step-0*\([0-9][0-9]*\)$/\1/p' "$SCRATCH/ck/LATEST" 2>/dev/null || true)
    [ -n "$latest" ] && [ "$latest" -ge "$1" ]
}
survivors_named() {
    [ "$(grep -c "rank [01]: .*missing (no answer to a roll call): rank 2" "$SCRATCH/lost.err")" -ge 2 ]
}
no_muond_on_survivors() {
    for node in 1 2; do
        for pid in $(ip netns pids "$(node_name "$node")"); do
            if grep -qF "$MUOND" "/proc/$pid/cmdline" 2>/dev/null; then return 1; fi
        done
    done
}
job_gone() { [ -z "$(squeue -h -n node-lost -o %i)" ]; }

srun --job-name=node-lost -N 3 -n 3 --mpi=pmix "$MUOND" run --layout "$LAYOUT" \
    --trainer synthetic --seed 5 --steps "$STEPS" --checkpoint-dir "$SCRATCH/ck" \
    --checkpoint-every 10 --comm-timeout "$TIMEOUT_S" >"$SCRATCH/lost.out" 2>"$SCRATCH/lost.err" &
job=$!
wait_for 120 "a checkpoint at step 20" checkpointed 20 || {
    tail -n 20 "$SCRATCH/lost.out" "$SCRATCH/lost.err" >&2
    kill "$job"
    finish
}
lost=$(node_name 3)
# shellcheck disable=SC2046  # one argument per PID
kill -KILL $(ip netns pids "$lost")
killed=$(date +%s)
wait_for 30 "both survivors naming rank 2" survivors_named
named=$(date +%s)
wait_for 30 "the survivors stopping" no_muond_on_survivors
stopped=$(date +%s)
echo "node $lost killed; survivors named rank 2 after $((named - killed)) s, stopped after $((stopped - killed)) s"
expect_leq $((named - killed)) $((TIMEOUT_S + 5)) "the survivors named the missing rank within --comm-timeout"
# srun waits on the dead node's step daemon until Slurm gives up on it (SlurmdTimeout): mark
# the node down, as an administrator would, and end the job.
scontrol update nodename="$lost" state=down reason="killed by test_node_lost"
scancel -n node-lost
wait_for 60 "the job ending" job_gone
wait "$job" || true
latest=$(cat "$SCRATCH/ck/LATEST")
echo "resuming from $latest on 2 nodes"
run_capture timeout 300 srun -N 2 -n 3 --overcommit -w "$(node_name 1),$(node_name 2)" --mpi=pmix "$MUOND" run \
    --layout "$LAYOUT" --trainer synthetic --seed 5 --steps "$STEPS" --digest --resume "$SCRATCH/ck"
expect_status 0 "resume onto 2 nodes"
got=$(grep '^digest' "$SCRATCH/out" || true)
[ -n "$clean" ] && [ "$got" = "$clean" ] || fail "resumed digest '$got', fault-free '$clean'"
expect_in "$SCRATCH/err" "$latest" "the resume names its checkpoint"
finish
