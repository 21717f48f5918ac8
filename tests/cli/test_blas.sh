#!/bin/sh
# muond blas: muond never runs a generic OpenBLAS core on a CPU with AVX2 or AVX-512, the
# choice reaches programs started through it (numpy trainers), a forced core re-executes
# once, and the user's own OPENBLAS_CORETYPE is kept, with a warning when it lags.
. "$(dirname "$0")/lib.sh"
unset OPENBLAS_CORETYPE MUOND_BLAS_CORE MUOND_BLAS_CORE_CHOSEN

json_field() { # json_field FILE KEY
    sed -n "s/.*\"$2\": *\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$1"
}

# 1. As it starts: the verdict, and the core against the CPU's flags.
run_capture "$MUOND" blas --check
expect_status 0 "muond blas --check (its kernels must use what the CPU allows)"
run_capture "$MUOND" blas --json
cp "$SCRATCH/out" "$SCRATCH/default.json"
core=$(json_field "$SCRATCH/default.json" core)
level=$(json_field "$SCRATCH/default.json" core_level)
flags=$(grep -m1 '^flags' /proc/cpuinfo)
case " $flags " in
*" avx512f "*) want="avx512" ;;
*" avx2 "*) want="avx2" ;;
*) want="" ;;
esac
if [ -n "$want" ]; then
    case "$level" in
    avx512*) ;;
    avx2) [ "$want" = avx2 ] || fail "core $core runs avx2 kernels on an AVX-512 CPU" ;;
    *) fail "core $core ($level) is generic on a CPU with $want" ;;
    esac
fi

# 2. A numpy program started through muond runs the same core.
if /usr/bin/python3 -c 'import numpy, threadpoolctl' 2>/dev/null; then
    run_capture "$MUOND" blas -- /usr/bin/python3 -c \
        'import numpy, threadpoolctl; print([i["architecture"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"][0])'
    expect_status 0 "muond blas -- python3"
    [ "$(cat "$SCRATCH/out")" = "$core" ] ||
        fail "numpy under muond blas runs $(cat "$SCRATCH/out"), muond runs $core"
else
    echo "skip: numpy/threadpoolctl not installed (python check)"
fi

# 3. A forced core re-executes muond once with OPENBLAS_CORETYPE; one that lags the CPU
# (Sandybridge: AVX only) makes --check fail, so the check above can fail.
if [ -n "$want" ]; then
    run_capture env MUOND_BLAS_CORE=Sandybridge "$MUOND" blas --check
    expect_status 1 "forced Sandybridge on a $want CPU: --check"
    expect_in "$SCRATCH/out" "Sandybridge (chosen by muond from MUOND_BLAS_CORE" "forced core"
    expect_in "$SCRATCH/out" "LAGGING" "forced core verdict"
    # A child inherits the choice and does not re-execute again (the marker says why).
    run_capture env MUOND_BLAS_CORE=Sandybridge "$MUOND" blas -- sh -c \
        'echo "$OPENBLAS_CORETYPE $MUOND_BLAS_CORE_CHOSEN"; "$MUOND" blas'
    # (The middle field is what OpenBLAS picked by itself: Zen here, Prescott on a new Xeon.)
    expect_match "$SCRATCH/out" "^Sandybridge Sandybridge:[A-Za-z0-9]+:MUOND_BLAS_CORE$" \
        "inherited marker"
    expect_in "$SCRATCH/out" "core:     Sandybridge (chosen by muond" "child keeps the choice"
    # The kernels' start-up line says it too, with a warning.
    run_capture env MUOND_BLAS_CORE=Sandybridge MUOND_LOG=info "$MUOND" bench kernels \
        --shape 64x64 --method polar-express --runs 5 --warmup 0
    expect_status 0 "bench kernels on a forced core"
    expect_match "$SCRATCH/err" "WARN .*OpenBLAS runs core Sandybridge" "lag warning"
    expect_match "$SCRATCH/out" "core Sandybridge \\(chosen by muond" "bench header names the core"
fi

# 4. A core whose instructions the CPU lacks is refused, not run into SIGILL.
if [ "$want" = avx2 ]; then
    run_capture env MUOND_BLAS_CORE=SkylakeX "$MUOND" blas
    expect_status 0 "forced SkylakeX on an AVX2 CPU"
    expect_in "$SCRATCH/out" "MUOND_BLAS_CORE=SkylakeX refused" "refusal"
fi

# 5. The user's OPENBLAS_CORETYPE wins, and a lagging one is named.
run_capture env OPENBLAS_CORETYPE=Prescott "$MUOND" blas
expect_in "$SCRATCH/out" "Prescott (OPENBLAS_CORETYPE, the user's choice" "user's core kept"
run_capture env MUOND_BLAS_CORE=keep "$MUOND" blas
expect_in "$SCRATCH/out" "MUOND_BLAS_CORE=keep" "keep"

# 6. Bad invocations.
run_capture "$MUOND" blas --
expect_status 2 "muond blas -- without a command"
run_capture "$MUOND" blas -- /nonexistent/program
expect_status 2 "muond blas -- a missing program"
expect_in "$SCRATCH/err" "cannot run '/nonexistent/program'" "missing program named"
finish
