#!/bin/sh
# muond bench kernels: a smoke test of both output formats on small shapes (no timings are
# asserted; speed is measured by running the benchmark, not by tests).
. "$(dirname "$0")/lib.sh"

run_capture "$MUOND" bench kernels --shape 48x96 --shape 80x40 \
    --method polar-express,ns5,gram,svd --runs 5 --json
expect_status 0 "bench --json"
lines=$(grep -c '"bench":"kernels"' "$SCRATCH/out" || true)
[ "$lines" -eq 8 ] || fail "expected 8 JSON lines (2 shapes x 4 methods), got $lines"
expect_in "$SCRATCH/out" '"percent_of_gemm":' "JSON has the GEMM ratio"
expect_in "$SCRATCH/out" '"speedup_vs_polar_express":' "JSON has the ratio to Polar Express"
expect_in "$SCRATCH/out" '"max_sigma_error":' "JSON has the accuracy"

expect_in "$SCRATCH/out" '"best_gemm_backend":' "JSON names the best GEMM reference present"
expect_in "$SCRATCH/out" '"percent_of_best_gemm":' "JSON has the ratio to the best GEMM"
# The numpy peer: on every Polar Express row (Gaussian input, host backend), nowhere else.
peers=$(grep -c '"peer":"numpy"' "$SCRATCH/out" || true)
pe_rows=$(grep -c '"method":"polar-express"' "$SCRATCH/out" || true)
[ "$peers" -eq "$pe_rows" ] || fail "expected a numpy peer on each of $pe_rows PE rows, got $peers"
expect_in "$SCRATCH/out" '"speedup_vs_peer":' "JSON has muond's speed-up over the peer"
run_capture "$MUOND" bench kernels --shape 32x64 --method polar-express --runs 5 --json --peer none
expect_status 0 "bench --peer none"
if grep -q '"peer"' "$SCRATCH/out"; then fail "--peer none still ran the peer"; fi
run_capture env MUOND_PYTHON=/nonexistent/python3 "$MUOND" bench kernels --shape 32x64 \
    --method polar-express --runs 5
expect_status 2 "bench with a missing peer interpreter (a bad MUOND_PYTHON)"
expect_in "$SCRATCH/err" "cannot run /nonexistent/python3" "the missing interpreter is named"
expect_in "$SCRATCH/err" "polar_express_numpy.py ended early" "the peer script is named"

run_capture "$MUOND" bench kernels --shape 32x64 --method gram --runs 5
expect_status 0 "bench table"
expect_in "$SCRATCH/out" "%gemm" "table header"
expect_in "$SCRATCH/out" "%best" "table header: the best GEMM present"
expect_in "$SCRATCH/out" "32x64" "table row"

# bench schedules: every recorded momentum gets a row, and the summary has the ratio.
MOMENTA="$(dirname "$0")/../data/momenta"
run_capture "$MUOND" bench schedules --dir "$MOMENTA" --runs 5 --warmup 0
expect_status 0 "bench schedules"
rows=$(grep -c '\.npy ' "$SCRATCH/out" || true)
want=$(ls "$MOMENTA"/*.npy | wc -l)
[ "$rows" -eq "$want" ] || fail "bench schedules: $rows rows for $want matrices"
expect_in "$SCRATCH/out" "adaptive / fixed time" "bench schedules: the ratio"
expect_in "$SCRATCH/out" "reach mean" "bench schedules: what adapting cost"
run_capture "$MUOND" bench schedules --dir "$SCRATCH/nowhere"
expect_status 2 "bench schedules on a missing folder"
expect_in "$SCRATCH/err" "nowhere: cannot open the folder" "the missing folder is named"
mkdir "$SCRATCH/empty"
run_capture "$MUOND" bench schedules --dir "$SCRATCH/empty"
expect_status 2 "bench schedules on a folder without matrices"
expect_in "$SCRATCH/err" "no .npy matrix in it" "the empty folder is named"

run_capture "$MUOND" bench kernels --shape 10by20
expect_status 2 "bad shape"
expect_in "$SCRATCH/err" "10by20" "bad shape message"
run_capture "$MUOND" bench kernels --runs 2
expect_status 2 "fewer than 5 runs"
run_capture "$MUOND" bench nosuch
expect_status 2 "unknown benchmark"

# bench roots on one small case: both methods reach the target, eigh is exact, Express takes
# fewer GEMMs than Newton (columns: n kappa p GEMM | T GEMMs R ms xG | T GEMMs R ms xG | ...).
run_capture "$MUOND" bench roots --sizes 48 --kappas 1e3 --ps 2
expect_status 0 "bench roots"
row=$(grep -E '^ +48 ' "$SCRATCH/out" || true)
[ -n "$row" ] || fail "no row for n = 48 in: $(cat "$SCRATCH/out")"
echo "$row" | awk -F'|' '{ split($2, e, " "); split($3, n, " "); split($4, h, " ");
    if (e[3] > 1e-2 || n[3] > 1e-2) { print "residual above target: " $0; exit 1 }
    if (h[3] > 1e-10) { print "eigh residual " h[3]; exit 1 }
    if (e[2] >= n[2]) { print "express GEMMs " e[2] " >= newton " n[2]; exit 1 } }' ||
    fail "bench roots row: $row"
run_capture "$MUOND" bench roots --ps 3
expect_status 2 "p = 3"
expect_in "$SCRATCH/err" "--ps" "message names --ps"
finish
