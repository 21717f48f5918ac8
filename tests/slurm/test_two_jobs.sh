#!/bin/sh
# Two muond jobs at once on this host (each overcommitted onto one cpu): both run together,
# listen on sockets named by their own job ids, and finish; nothing is left in the socket
# directory.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_cluster
STEPS=40
# The template with its per-node task count replaced by a total: Slurm 22.05 holds a second
# --ntasks-per-node --overcommit job for Resources on this 2-cpu node (a plain -n job does not),
# and a command-line option cannot remove a directive.
sed -e 's/^#SBATCH --ntasks-per-node=.*/#SBATCH --ntasks=2/' \
    -e 's/^#SBATCH --gpus-per-node=.*/#SBATCH --gpus-per-node=0/' \
    "$ROOT/slurm/muond.sbatch" >"$SCRATCH/muond.sbatch"
submit() {
    (cd "$ROOT" && sbatch --parsable --nodes=1 --cpus-per-task=1 --overcommit \
        --output="$SCRATCH/job-%j.out" \
        --export=ALL,MUOND="$MUOND",TRAINER="$MLP_TRAINER --steps $STEPS" "$SCRATCH/muond.sbatch")
}
first=$(submit)
second=$(submit)
echo "jobs $first and $second"
together=no
for _ in $(seq 600); do
    running=$(squeue -h -t RUNNING -o %i -j "$first,$second" 2>/dev/null | wc -l)
    [ "$running" -eq 2 ] && together=yes
    [ -z "$(squeue -h -o %i -j "$first,$second" 2>/dev/null)" ] && break
    sleep 0.2
done
[ -z "$(squeue -h -o %i -j "$first,$second" 2>/dev/null)" ] ||
    { fail "the jobs did not finish in 120 s"; scancel "$first" "$second"; }
[ "$together" = yes ] || fail "the two jobs never ran at the same time"
for job in "$first" "$second"; do
    out="$SCRATCH/job-$job.out"
    expect_in "$out" "muond.sbatch: done, status 0" "job $job ends well"
    expect_in "$out" "trainers connect to $MUOND_SOCKET_DIR/slurm-$job.rank0.sock" \
        "job $job listens on its own socket"
done
[ -z "$(ls -A "$MUOND_SOCKET_DIR" 2>/dev/null)" ] || fail "sockets left: $(ls "$MUOND_SOCKET_DIR")"
finish
