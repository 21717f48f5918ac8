#!/bin/sh
# Trainers on GPU memory (label gpu): the example trainer against a one-rank daemon that shares
# its weights and gradients by CUDA IPC (--trainer-memory device, cuda + NCCL), and against one
# on host shared memory and the cpu backend. Both must finish 40 steps, and the held-out losses
# must agree within 2% (relative): the same training, with cuBLAS's rounding instead of
# OpenBLAS's compounding over 40 steps of a tanh network. (The bound is an estimate: this test
# has not run on a GPU yet; see docs/gpu.md.) Without a usable GPU it says so and exits 77.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/../trainer/lib.sh"
unset MUOND_BACKEND # the suite pins cpu (tests/CMakeLists.txt); these runs name their own
LAYOUT="$(dirname "$0")/../data/layouts/mlp-polar-express.json"
STEPS=40
export MUOND_LAYOUT_DIGEST="$(digest_of "$LAYOUT")"
if ! nvidia-smi >/dev/null 2>&1; then
    echo "SKIPPED: no usable GPU (nvidia-smi fails)"
    exit 77
fi

# final_loss MEMORY BACKEND: the held-out loss after $STEPS steps.
final_loss() {
    start_daemon 1 "$LAYOUT" --trainer-memory "$1" --backend "$2"
    "$MLP_TRAINER" --rank 0 --steps $STEPS --csv "$SCRATCH/$1.csv" >"$SCRATCH/$1.out" \
        2>"$SCRATCH/$1.err" || { fail "trainer on $1 memory failed"; cat "$SCRATCH/$1.err" >&2; }
    wait_pid "$DAEMON" 60 || { fail "daemon ($1 memory) did not end cleanly"; cat "$SCRATCH/daemon.err" >&2; }
    cp "$SCRATCH/daemon.err" "$SCRATCH/daemon-$1.err"
    PIDS=""
    tail -1 "$SCRATCH/$1.csv" | awk -F, '{print $3}'
}
device=$(final_loss device cuda)
expect_in "$SCRATCH/daemon-device.err" "backends: kernels cuda, comm nccl" "the daemon ran on the GPU"
host=$(final_loss host cpu)
first=$(sed -n 2p "$SCRATCH/host.csv" | awk -F, '{print $3}')
echo "held-out loss after $STEPS steps: device memory + cuda $device, host memory + cpu $host (step 1: $first)"
rel=$(awk -v a="$device" -v b="$host" 'BEGIN { d = a - b; if (d < 0) d = -d; print d / b }')
expect_leq "$rel" 0.02 "the GPU-memory run trains as the host one does"
awk -v a="$device" -v b="$first" 'BEGIN { exit !(a < b) }' || fail "no progress on device memory"
finish
