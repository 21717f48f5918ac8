#!/bin/sh
# The binary starts anywhere: with the CUDA runtime compiled in it must not link the driver
# stub (libcuda), must run on this GPU-less machine, and must say why it uses the CPU.
. "$(dirname "$0")/lib.sh"
unset MUOND_BACKEND # this test is about what auto chooses

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
        echo "a GPU is present: the no-GPU checks do not apply"
        expect_in "$SCRATCH/err" "kernel backend: cuda" "start-up logs the chosen backend"
    else
        expect_in "$SCRATCH/err" "no GPU here" "start-up explains the CPU fallback"
        expect_in "$SCRATCH/err" "kernel backend: cpu" "start-up logs the chosen backend"
        # Asking for the GPU path where it cannot run is an error that says why.
        run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy" --backend cuda
        expect_status 1 "orth --backend cuda without a GPU"
        expect_in "$SCRATCH/err" "backend 'cuda' cannot run here: cudaGetDeviceCount" \
            "the refusal quotes the CUDA runtime"
        run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy" --dtype bf16 --backend cpu
        expect_status 2 "orth --dtype bf16 on the cpu"
        expect_in "$SCRATCH/err" "bf16 with fp32 accumulation needs the cuda backend" \
            "bf16 compute is refused on the cpu with the reason"
        [ -s "$SCRATCH/q.npy" ] || fail "a refused run must leave the earlier output alone"
        # auto with bf16: the dnnl backend where the CPU has bf16 instructions, else a refusal.
        run_capture env MUOND_LOG=info "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy" \
            --dtype bf16 --backend auto
        if grep -qwE 'avx512_bf16|amx_bf16' /proc/cpuinfo; then
            expect_status 0 "orth --dtype bf16 on a CPU with bf16 instructions"
            expect_in "$SCRATCH/err" "kernel backend: dnnl" "auto picks dnnl for bf16"
        else
            expect_status 1 "orth --dtype bf16 on a CPU without bf16 instructions"
            expect_in "$SCRATCH/err" "no kernel backend can compute bf16 here" \
                "auto says no backend computes bf16"
            expect_in "$SCRATCH/err" "backend dnnl unavailable: it has no bf16 arithmetic here" \
                "auto says why dnnl was passed over"
        fi
        layout="$(dirname "$0")/../data/layouts/tiny.json"
        # A singleton MPI run: leak checks off, as for every MPI run (tests/mpi/mpiexec.sh).
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            run_capture "$MUOND" run --trainer synthetic --layout "$layout" --steps 1 --comm nccl
        expect_status 2 "run --comm nccl with the cpu backend"
        expect_in "$SCRATCH/err" "--comm nccl moves device buffers, but the cpu backend" \
            "the comm and backend contradiction is named"
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
            run_capture "$MUOND" run --layout "$layout" --trainer-memory device --steps 1
        expect_status 1 "run --trainer-memory device without a GPU"
        expect_in "$SCRATCH/err" "--trainer-memory device shares GPU memory, but the kernel backend is cpu" \
            "device memory for trainers is refused without the cuda backend"
    fi
else
    echo "built without CUDA"
fi
finish
