#!/bin/sh
# The daemon on a GPU (label gpu): `muond run --trainer synthetic` with --backend cuda and
# NCCL at world size 1 ends with weights whose norm matches the cpu run's within 1e-5
# (relative): the same arithmetic, rounded differently (cuBLAS vs OpenBLAS summation order,
# FMA contraction), a few steps at lr <= 0.02 moving the weights by ~1e-3 of their norm.
# Without a usable GPU it says so and exits 77 (ctest: skipped).
. "$(dirname "$0")/../cli/lib.sh"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # see tests/mpi/mpiexec.sh
export MUOND_LOG=info # the start-up line that names the backends is an info message
unset MUOND_BACKEND   # the suite pins cpu (tests/CMakeLists.txt); these runs name their own
LAYOUTS="$(dirname "$0")/../data/layouts"
TOL=1e-5

run_capture "$MPIEXEC" -n 1 "$MUOND" run --trainer synthetic --backend cuda \
    --layout "$LAYOUTS/tiny.json" --steps 1
if [ "$STATUS" -ne 0 ] && grep -q "cannot run here" "$SCRATCH/err"; then
    echo "SKIPPED: no usable GPU: $(grep -o "cannot run here.*" "$SCRATCH/err" | head -1)"
    exit 77
fi
expect_status 0 "a one-step cuda run"

# More ranks on the node than GPUs: NCCL would refuse two ranks on one GPU, so auto keeps the
# CPU and says why, and an explicit --backend cuda is refused with the same reason.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
if [ "${gpus:-0}" -ge 1 ]; then
    over=$((gpus + 1))
    run_capture "$MPIEXEC" -n "$over" --oversubscribe "$MUOND" run --trainer synthetic \
        --backend auto --layout "$LAYOUTS/tiny.json" --steps 1
    expect_status 0 "$over ranks on $gpus GPU(s) with --backend auto"
    expect_in "$SCRATCH/err" "ranks on this node share $gpus GPU(s)" "auto says why it keeps the CPU"
    expect_in "$SCRATCH/err" "backends: kernels cpu, comm mpi" "auto keeps the CPU"
    run_capture "$MPIEXEC" -n "$over" --oversubscribe "$MUOND" run --trainer synthetic \
        --backend cuda --layout "$LAYOUTS/tiny.json" --steps 1
    expect_status 1 "$over ranks on $gpus GPU(s) with --backend cuda"
    expect_in "$SCRATCH/err" "ranks on this node share $gpus GPU(s)" "the refusal says why"
fi

norm_of() { grep '^weights norm' "$SCRATCH/out" | awk '{print $3}'; }
for layout in tiny edge-shapes gpt2-small; do
    run_capture "$MPIEXEC" -n 1 "$MUOND" run --trainer synthetic --backend cpu \
        --layout "$LAYOUTS/$layout.json" --steps 3 --digest
    expect_status 0 "$layout on the cpu"
    cpu=$(norm_of)
    run_capture "$MPIEXEC" -n 1 "$MUOND" run --trainer synthetic --backend cuda --comm nccl \
        --layout "$LAYOUTS/$layout.json" --steps 3 --digest
    expect_status 0 "$layout on cuda + nccl"
    expect_in "$SCRATCH/err" "backends: kernels cuda, comm nccl" "$layout: the GPU path ran"
    gpu=$(norm_of)
    rel=$(awk -v a="$gpu" -v b="$cpu" 'BEGIN { d = a - b; if (d < 0) d = -d; print d / b }')
    echo "$layout: weights norm cpu $cpu, cuda $gpu, relative difference $rel"
    expect_leq "$rel" "$TOL" "$layout: cuda weights norm against the cpu's"
done
finish
