#!/bin/sh
# The example trainers on every node beside their ranks: one allocation of 3 nodes, muond and
# the trainers as two srun steps of one task per node. Each trainer runs on its rank's node
# (the socket is found by job and rank in the node's view of MUOND_SOCKET_DIR) and the
# held-out loss equals, to the printed digit, the same training under mpiexec on one node.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_nodes
STEPS=30
LAYOUT="$LAYOUTS/mlp-polar-express.json"
MUOND_LAYOUT_DIGEST=$("$MUOND" check --layout "$LAYOUT" --print-digest)
export MUOND_LAYOUT_DIGEST MUOND SCRATCH LAYOUT MLP_TRAINER STEPS
cat >"$SCRATCH/job.sh" <<'JOB'
srun --mpi=pmix --overlap "$MUOND" run --layout "$LAYOUT" \
    >"$SCRATCH/daemon.out" 2>"$SCRATCH/daemon.err" &
daemon=$!
srun --mpi=none --overlap sh -c 'hostname >"$SCRATCH/trainer-host.$SLURM_PROCID" &&
    exec "$MLP_TRAINER" --steps "$STEPS" --csv "$SCRATCH/nodes.csv"' \
    >"$SCRATCH/trainers.out" 2>"$SCRATCH/trainers.err" &
trainers=$!
wait $trainers
trainers_status=$?
wait $daemon
echo "trainers $trainers_status daemon $?"
JOB
run_capture timeout 300 salloc -N "$NODES" -n "$NODES" --time=10 sh "$SCRATCH/job.sh"
expect_status 0 "salloc -N $NODES"
expect_in "$SCRATCH/out" "trainers 0 daemon 0" "both steps succeed"
[ "$STATUS" -eq 0 ] || { tail -n 20 "$SCRATCH/daemon.err" "$SCRATCH/trainers.err" >&2; finish; }
expect_in "$SCRATCH/daemon.err" "every trainer said BYE after $STEPS step(s)" "muond ends with its trainers"
rank=0
while [ "$rank" -lt "$NODES" ]; do
    node=$(node_name $((rank + 1)))
    expect_match "$SCRATCH/daemon.err" "rank $rank of $NODES on $node \(node $rank of $NODES" \
        "rank $rank runs on $node"
    expect_in "$SCRATCH/trainer-host.$rank" "$node" "trainer $rank runs beside its rank on $node"
    rank=$((rank + 1))
done
run_capture "$ROOT/scripts/train-example.sh" --build "$BUILD" --steps "$STEPS" --ranks "$NODES" \
    --csv "$SCRATCH/mpiexec.csv"
expect_status 0 "the same training under mpiexec"
nodes_loss=$(final_eval "$SCRATCH/nodes.csv")
mpiexec_loss=$(final_eval "$SCRATCH/mpiexec.csv")
echo "held-out loss after $STEPS steps: $NODES nodes $nodes_loss, mpiexec $mpiexec_loss"
[ -n "$nodes_loss" ] && [ "$nodes_loss" = "$mpiexec_loss" ] ||
    fail "the loss on $NODES nodes ($nodes_loss) differs from mpiexec's ($mpiexec_loss)"
finish
