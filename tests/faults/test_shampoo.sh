#!/bin/sh
# The shampoo method around its fast path (tests/data/layouts/shampoo.json: roots every 3
# steps):
#  - a checkpoint holds the owners' statistics and roots whole, so resuming on another
#    number of ranks (other owners) gives the uninterrupted run's digest, bit for bit, in
#    sharded and local mode;
#  - an injected bad root (1.1 A^(-1/4): X^2 A X^2 - I = 0.46 I) fails its certificate and is
#    solved again by ScaLAPACK's pdsyevd root, reported, and training goes on;
#  - the exact roots ("fallback": "always") and the fast ones give the same weights to within
#    the fast roots' accuracy: Q within ~5e-5 of the exact one (tests/unit/test_shampoo.c),
#    so ||W_fast|| and ||W_exact|| within 1e-5 relative (5.4e-7 measured);
#  - a matrix above optimizer.shampoo.max_dim is refused, naming the parameter and the limit.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
SHAMPOO=$LAYOUTS/shampoo.json
LOCAL=$LAYOUTS/shampoo-local.json

norm_of_run() { sed -n 's/^weights norm //p' "$SCRATCH/out"; }

relative_gap() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; print d / b }'; }

# resume_case LAYOUT WRITERS READERS: 5 steps with checkpoints every 2 (the one of step 4
# holds roots computed at step 4, used at step 5), resumed to step 8.
resume_case() {
    run_muond "$2" -- --layout "$1" --steps 8 --digest
    expect_status 0 "$(basename "$1") uninterrupted on $2 rank(s)"
    clean=$(digest_of_run)
    rm -rf "$SCRATCH/ck"
    run_muond "$2" -- --layout "$1" --steps 5 --checkpoint-dir "$SCRATCH/ck" --checkpoint-every 2
    expect_status 0 "$(basename "$1"): checkpointing on $2 ranks"
    run_muond "$3" -- --layout "$1" --steps 8 --digest --resume "$SCRATCH/ck"
    expect_status 0 "$(basename "$1"): resuming on $3 ranks"
    echo "$(basename "$1") written by $2, resumed on $3: $(digest_of_run) (uninterrupted $clean)"
    expect_same "$(digest_of_run)" "$clean" "$(basename "$1") written by $2 ranks, resumed on $3"
}
resume_case "$SHAMPOO" 3 2
resume_case "$SHAMPOO" 1 4
# Local mode averages one gradient per rank: the rank count stays, the owners are the same.
resume_case "$LOCAL" 2 2

run_muond 3 -- --layout "$SHAMPOO" --steps 6 --digest
expect_status 0 "the fast roots"
fast=$(norm_of_run)

run_muond 3 -- --layout "$SHAMPOO" --steps 6 --digest --inject bad-root:param=w2:step=4
expect_status 0 "an injected bad root"
expect_match "$SCRATCH/err" "step 4: w2 \(13x37, owner rank [0-9]\): fallback, root \|\|X\^2 A X\^2 - I\|\| 0\.46[0-9]* > 0\.0[0-9]* -> pdsyevd" \
    "the bad root is caught, named and solved by pdsyevd"
bad=$(norm_of_run)
gap=$(relative_gap "$bad" "$fast")
echo "bad root at step 4, solved exactly: ||W|| $bad against $fast (relative $gap)"
expect_leq "$gap" 1e-5 "after the exact root, the weights stay on the fast run's path"

# "fallback": "always" on the shampoo matrices only (--force-fallback would also solve w3's
# polar factor exactly, which Polar Express only approaches).
sed 's/"method": "shampoo"/"method": "shampoo", "fallback": "always"/' "$SHAMPOO" >"$SCRATCH/exact.json"
run_muond 2 -- --layout "$SCRATCH/exact.json" --steps 6 --digest
expect_status 0 "exact roots throughout"
[ "$(grep -c 'forced -> pdsyevd' "$SCRATCH/err")" -eq 6 ] ||
    fail "3 shampoo matrices x 2 root steps should be 6 pdsyevd solves: $(grep -c 'forced -> pdsyevd' "$SCRATCH/err")"
exact=$(norm_of_run)
gap=$(relative_gap "$exact" "$fast")
echo "exact roots: ||W|| $exact against $fast (relative $gap)"
expect_leq "$gap" 1e-5 "the exact and the fast roots give the same training to 1e-5"

python3 -c 'import json, sys
layout = json.load(open(sys.argv[1]))
layout["parameters"][0]["shape"] = [48, 5000]
json.dump(layout, open(sys.argv[2], "w"))' "$SHAMPOO" "$SCRATCH/big.json"
run_capture "$MUOND" check --layout "$SCRATCH/big.json"
expect_status 2 "a shampoo matrix above max_dim"
expect_in "$SCRATCH/err" 'parameters[0] ("w1"): shape: shampoo keeps a 48x48 and a 5000x5000 statistic' \
    "the refusal names the parameter and the statistics"
expect_in "$SCRATCH/err" "above optimizer.shampoo.max_dim = 4096" "the refusal names the limit"
finish
