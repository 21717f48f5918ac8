#!/bin/sh
# The binary starts anywhere: with the CUDA runtime compiled in it must not link the driver
# stub (libcuda), must run on this GPU-less machine, and must say why it uses the CPU.
. "$(dirname "$0")/lib.sh"

run_capture "$MUOND" --version
expect_status 0 "muond --version"
expect_in "$SCRATCH/out" "muond " "version line"

ldd "$MUOND" >"$SCRATCH/ldd"
if grep -q 'libcuda\.so' "$SCRATCH/ldd"; then
    fail "muond links the CUDA driver library (libcuda); it would not start without a GPU"
fi
if grep -q 'libcudart' "$SCRATCH/ldd"; then
    echo "CUDA runtime linked; checking the no-GPU start"
    "$NPYTOOL" spectrum "$SCRATCH/g.npy" 8 12 2 1
    MUOND_LOG=info run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy"
    expect_status 0 "orth with the CUDA runtime linked"
    if nvidia-smi >/dev/null 2>&1; then
        echo "a GPU is present: the no-GPU message is not expected here"
    else
        expect_in "$SCRATCH/err" "no GPU here" "start-up explains the CPU fallback"
    fi
    expect_in "$SCRATCH/err" "kernel backend: cpu" "start-up logs the chosen backend"
else
    echo "built without CUDA"
fi
finish
