#!/bin/sh
# muond root end to end: every method against the fp64 eigendecomposition, and bad input.
. "$(dirname "$0")/lib.sh"

# A: 128 x 128 SPD, kappa 1e3. Tolerance for fp32 express and newton against eigh:
# ||X - A^(-1/2)||_2 <= 10 (kappa / p + n) u ||A^(-1/2)||_2 (tests/unit/test_spd_root.c's
# argument), with ||A^(-1/2)||_2 = sqrt(kappa) = 31.6 here: 10 * 628 * 6e-8 * 31.6 = 1.2e-2.
"$NPYTOOL" spd "$SCRATCH/a.npy" 128 1000 3
run_capture "$MUOND" root "$SCRATCH/a.npy" - "$SCRATCH/eigh.npy" --p 2 --method eigh
expect_status 0 "root --method eigh"
for method in express newton; do
    run_capture "$MUOND" root "$SCRATCH/a.npy" - "$SCRATCH/$method.npy" --p 2 --method "$method" \
        --residual
    expect_status 0 "root --method $method"
    expect_match "$SCRATCH/out" "^residual \|\|A X\^p - I\|\|: _F [0-9.e+-]+, _2 [0-9.e+-]+;" \
        "$method residual line"
    d=$("$NPYTOOL" distance "$SCRATCH/$method.npy" "$SCRATCH/eigh.npy")
    echo "p = 2, n = 128, kappa 1e3, fp32 $method: ||X - X_eigh||_2 = $d"
    expect_leq "$d" 1.2e-2 "$method against eigh"
done
expect_match "$SCRATCH/out" "steps, [0-9]+ GEMMs" "newton reports its GEMMs"

# p = 1 with B: a solve; fp64 express with refinement against eigh (Cholesky).
"$NPYTOOL" spectrum "$SCRATCH/b.npy" 128 3 10 4
run_capture "$MUOND" root "$SCRATCH/a.npy" "$SCRATCH/b.npy" "$SCRATCH/x1.npy" --p 1 --dtype fp64
expect_status 0 "root --p 1 with B"
run_capture "$MUOND" root "$SCRATCH/a.npy" "$SCRATCH/b.npy" "$SCRATCH/x1-eigh.npy" --p 1 \
    --method eigh
d=$("$NPYTOOL" distance "$SCRATCH/x1.npy" "$SCRATCH/x1-eigh.npy")
expect_leq "$d" 1e-9 "p = 1 fp64 solve against Cholesky"

# Bad input: each message names the file or the option, the output is not written.
"$NPYTOOL" spectrum "$SCRATCH/tall.npy" 8 6 10 1
"$NPYTOOL" spectrum "$SCRATCH/square.npy" 8 8 10 1
run_capture "$MUOND" root "$SCRATCH/tall.npy" - "$SCRATCH/bad.npy"
expect_status 2 "non-square A"
expect_in "$SCRATCH/err" "tall.npy: A must be square" "non-square A named"
run_capture "$MUOND" root "$SCRATCH/square.npy" - "$SCRATCH/bad.npy"
expect_status 2 "non-symmetric A"
expect_in "$SCRATCH/err" "square.npy: A is not symmetric" "non-symmetric A named"
run_capture "$MUOND" root "$SCRATCH/a.npy" "$SCRATCH/square.npy" "$SCRATCH/bad.npy"
expect_status 2 "B with the wrong rows"
expect_in "$SCRATCH/err" "square.npy" "B named"
run_capture "$MUOND" root "$SCRATCH/a.npy" - "$SCRATCH/bad.npy" --p 3
expect_status 2 "p = 3"
expect_in "$SCRATCH/err" "--p" "option named"
[ ! -e "$SCRATCH/bad.npy" ] || fail "a refused run wrote its output"
finish
