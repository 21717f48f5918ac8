#!/bin/sh
# muond orth end to end: the acceptance case, every method, and bad input files.
. "$(dirname "$0")/lib.sh"

# Acceptance: 256 x 512, kappa = 100, T = 8 matches the SVD polar factor within 1e-3
# (||Q - UV^T||_2; the result is written as float32).
"$NPYTOOL" spectrum "$SCRATCH/g.npy" 256 512 100 7 "$SCRATCH/polar.npy"
run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy" --method polar-express --iters 8
expect_status 0 "orth polar-express"
d=$("$NPYTOOL" distance "$SCRATCH/q.npy" "$SCRATCH/polar.npy")
echo "polar-express T=8, 256x512, kappa 100: ||Q - polar||_2 = $d"
expect_leq "$d" 1e-3 "polar-express distance to the SVD polar factor"

for method in ns5 gram svd; do
    run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q-$method.npy" --method "$method"
    expect_status 0 "orth --method $method"
done
d=$("$NPYTOOL" distance "$SCRATCH/q-svd.npy" "$SCRATCH/polar.npy")
expect_leq "$d" 1e-6 "svd method (float32 output of the exact factor)"
d=$("$NPYTOOL" distance "$SCRATCH/q-gram.npy" "$SCRATCH/polar.npy")
expect_leq "$d" 1e-3 "gram method"

# --residual reports the estimate and the exact value.
run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy" --residual --dtype fp64
expect_status 0 "orth --residual"
expect_in "$SCRATCH/out" "residual ||QQ^T - I||_2: estimate" "residual line"
# ... and the exact steepest-descent metrics: fp64 Polar Express on a full-rank G is the
# descent of the polar factor to within its schedule's bound.
eff=$(awk '/^descent <Q,G>/ && $3 == "exact" { print $4 }' "$SCRATCH/out")
[ -n "$eff" ] || fail "no descent line in: $(cat "$SCRATCH/out")"
expect_leq "$(awk -v e="$eff" 'BEGIN { d = e - 1; print (d < 0 ? -d : d) }')" 1e-3 \
    "descent efficiency of polar-express"
expect_match "$SCRATCH/out" "\|\|Q - U_r V_r\^T\|\|_2 [0-9.e+-]+$" "distance from the exact answer"

# --schedule adaptive: the choice is printed, takes no more steps than the fixed schedule, and
# the result still passes the certificate. kappa 10 over 200x300 needs far fewer than 8.
"$NPYTOOL" spectrum "$SCRATCH/k10.npy" 200 300 10 5 "$SCRATCH/k10-polar.npy"
run_capture "$MUOND" orth "$SCRATCH/k10.npy" "$SCRATCH/k10-q.npy" --schedule adaptive --residual
expect_status 0 "orth --schedule adaptive"
steps=$(sed -n 's/^adaptive schedule: l = [0-9.e+-]*, T = \([0-9]*\) .*/\1/p' "$SCRATCH/out")
[ -n "$steps" ] || fail "no adaptive schedule line in: $(cat "$SCRATCH/out")"
expect_leq "$steps" 5 "adaptive steps at kappa 10"
expect_match "$SCRATCH/out" "^certificate: .*: pass$" "the adaptive result passes the certificate"
d=$("$NPYTOOL" distance "$SCRATCH/k10-q.npy" "$SCRATCH/k10-polar.npy")
expect_leq "$d" 0.05 "adaptive result near the polar factor"
run_capture "$MUOND" orth "$SCRATCH/k10.npy" "$SCRATCH/k10-q.npy" --schedule adaptive --method ns5
expect_status 2 "adaptive ns5"
expect_in "$SCRATCH/err" "adaptive schedules are Polar Express schedules" "adaptive ns5 refused"

# Tall input and fp64 computation.
"$NPYTOOL" spectrum "$SCRATCH/tall.npy" 300 40 10 3 "$SCRATCH/tall-polar.npy"
run_capture "$MUOND" orth "$SCRATCH/tall.npy" "$SCRATCH/tall-q.npy" --dtype fp64
expect_status 0 "orth tall fp64"
d=$("$NPYTOOL" distance "$SCRATCH/tall-q.npy" "$SCRATCH/tall-polar.npy")
expect_leq "$d" 1e-6 "tall fp64"

# Bad inputs: exit status 2, a message naming the file, OUT left alone.
echo "keep me" >"$SCRATCH/out.npy"
head -c 300 "$SCRATCH/g.npy" >"$SCRATCH/truncated.npy"
run_capture "$MUOND" orth "$SCRATCH/truncated.npy" "$SCRATCH/out.npy"
expect_status 2 "truncated input"
expect_in "$SCRATCH/err" "truncated.npy: truncated" "truncated input message"
expect_in "$SCRATCH/out.npy" "keep me" "OUT untouched after a failure"

printf 'not a numpy file at all' >"$SCRATCH/junk.npy"
run_capture "$MUOND" orth "$SCRATCH/junk.npy" "$SCRATCH/out.npy"
expect_status 2 "junk input"
expect_in "$SCRATCH/err" "junk.npy: not a .npy file" "junk input message"

run_capture "$MUOND" orth "$SCRATCH/missing.npy" "$SCRATCH/out.npy"
expect_status 2 "missing input"
expect_in "$SCRATCH/err" "missing.npy: cannot open" "missing input message"

"$NPYTOOL" poison "$SCRATCH/nan.npy" 8 9
run_capture "$MUOND" orth "$SCRATCH/nan.npy" "$SCRATCH/out.npy"
expect_status 2 "NaN input"
expect_in "$SCRATCH/err" "nan.npy: the matrix has 1 NaN or infinite entries" "NaN message"
expect_in "$SCRATCH/out.npy" "keep me" "OUT untouched after NaN input"

run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/nodir/q.npy"
expect_status 2 "unwritable output"
expect_in "$SCRATCH/err" "nodir/q.npy" "unwritable output message"

# Invocation errors.
run_capture "$MUOND" orth "$SCRATCH/g.npy"
expect_status 2 "missing OUT argument"
run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy" --method magic
expect_status 2 "unknown method"
expect_in "$SCRATCH/err" "polar-express|ns5|gram|svd" "unknown method message lists the choices"
run_capture "$MUOND" orth "$SCRATCH/g.npy" "$SCRATCH/q.npy" --lower 0
expect_status 2 "lower out of range"
run_capture "$MUOND" orth --help
expect_status 0 "orth --help"
expect_in "$SCRATCH/out" "usage: muond orth IN.npy OUT.npy" "orth help"
run_capture "$MUOND" frobnicate
expect_status 2 "unknown command"
run_capture "$MUOND" --help
expect_status 0 "muond --help"
expect_in "$SCRATCH/out" "orth" "top-level help lists orth"

finish
