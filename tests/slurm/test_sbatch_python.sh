#!/bin/sh
# slurm/muond.sbatch with PyTorch trainers (the digits CNN through muond.torch), scaled to this
# host under `sbatch --wait`: both steps run, the trainers train, muond ends with them.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_cluster
STEPS=20
# The same template with PyTorch trainers (the digits CNN through muond.torch).
PYTHONPATH="$ROOT/client/python" /usr/bin/python3 -m muond layout \
    "$ROOT/client/python/examples/digits.py:make_model" --out "$SCRATCH/digits.json"
run_capture sh -c "cd '$ROOT' && timeout 300 sbatch --wait --nodes=1 --ntasks-per-node=2 \
    --gpus-per-node=0 --cpus-per-task=1 --overcommit --output='$SCRATCH/job-%j.out' \
    --export=ALL,MUOND='$MUOND',LAYOUT='$SCRATCH/digits.json',TRAINER='/usr/bin/python3 \
client/python/examples/digits.py --steps $STEPS --eval-every 10' slurm/muond.sbatch"
expect_status 0 "sbatch --wait of the template with Python trainers"
job_out=$(ls "$SCRATCH"/job-*.out 2>/dev/null | head -n 1)
[ -n "$job_out" ] || { fail "the Python job wrote no output"; finish; }
expect_in "$job_out" "muond.sbatch: done, status 0" "the Python job ends well"
expect_in "$job_out" "every trainer said BYE after $STEPS step(s)" "muond ends with its Python trainers"
expect_match "$job_out" "digits: muond polar-express, 2 ranks: test accuracy [0-9.]+%" \
    "rank 0's PyTorch trainer reports its test accuracy"
finish
