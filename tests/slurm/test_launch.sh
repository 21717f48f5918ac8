#!/bin/sh
# muond launch inside a Slurm allocation: the daemon and the PyTorch trainers as the two srun
# steps of slurm/muond.sbatch, the rank count from the allocation; the digits CNN trains,
# rank 0's output reaches the terminal, and nothing is left in the socket directory.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_cluster
STEPS=20
DIGITS="$ROOT/client/python/examples/digits.py"
run_capture timeout 300 salloc -n 2 --overcommit --time=10 "$MUOND" launch \
    --from-model "$DIGITS:make_model" -- /usr/bin/python3 "$DIGITS" --steps "$STEPS" \
    --eval-every 10
expect_status 0 "muond launch under salloc"
expect_in "$SCRATCH/err" "2 rank(s) under srun" "the launcher uses srun inside the allocation"
expect_match "$SCRATCH/out" "digits: muond polar-express, 2 ranks: test accuracy [0-9.]+%" \
    "rank 0's trainer reports"
[ -z "$(ls -A "$MUOND_SOCKET_DIR" 2>/dev/null)" ] || fail "left in the socket directory: $(ls "$MUOND_SOCKET_DIR")"
finish
