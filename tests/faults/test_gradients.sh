#!/bin/sh
# Gradient faults, synthetic trainer, 3 ranks: each is detected and reported with the
# parameter, rank and step, and the run goes on (on_nonfinite skip, the fallback).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

run_muond 3 -- --layout "$TINY" --steps 4 --inject inf-grad:param=w1:step=2
expect_status 0 "inf-grad"
expect_in "$SCRATCH/err" "step 2: w1: skipped, 1 non-finite gradient entries (first on rank 2)" \
    "inf-grad names w1, the rank holding the last row and the step"

run_muond 3 -- --layout "$TINY" --steps 4 --inject nan-grad:param=w2:rank=1:step=3
expect_status 0 "nan-grad on rank 1"
expect_in "$SCRATCH/err" "step 3: w2: skipped, 1 non-finite gradient entries (first on rank 1)" \
    "nan-grad names w2, rank 1 and step 3"

run_muond 3 -- --layout "$TINY" --steps 3 --digest --inject zero-grad:param=w3:step=1
expect_status 0 "zero-grad"
expect_in "$SCRATCH/err" "step 1: 1 matrix update(s) were zero" "zero-grad is reported"
expect_match "$SCRATCH/out" '^weights norm [0-9]' "zero-grad leaves finite weights"

run_muond 3 -- --layout "$TINY" --steps 3 --inject illcond:param=w2:step=2
expect_status 0 "illcond"
expect_match "$SCRATCH/err" "step 2: w2 \(.*\): fallback, non-finite fast result" \
    "illcond sends w2 to the fallback at step 2: its fast result is NaN"
grep -q "step [13]: .*fallback" "$SCRATCH/err" && fail "illcond: a fallback at a step it did not fire"

# An internal failure deep inside the fallback: rank 1's pdgesvd workspace cannot be had. The
# job stops, and the rank that failed prints the whole call trail, from the allocation in
# fallback/ through the certifier and the step to the daemon's loop.
run_muond 3 -- --layout "$TINY" --steps 3 --inject illcond:param=w2:step=2,fallback-nomem:rank=1:step=2
[ "$STATUS" -eq 1 ] || fail "fallback-nomem: exit status $STATUS, not 1 (an internal failure)"
expect_in "$SCRATCH/err" "(rank 1): NOMEM: fallback: no memory for pdgesvd's workspace" \
    "the failing rank names the allocation"
expect_match "$SCRATCH/err" "^  at fallback/polar.c:[0-9]+ -> NOMEM \(svd\(" "the trail starts in the fallback"
expect_match "$SCRATCH/err" "^  at shard/verify.c:[0-9]+ -> NOMEM \(mu_fallback_polar\(" \
    "the trail passes through the certifier"
expect_match "$SCRATCH/err" "^  at launcher/cmd_run.c:[0-9]+ -> NOMEM \(mu_optimizer_step" \
    "the trail reaches the daemon's step loop"

# MUOND_DUMP_MOMENTUM: each matrix's owner writes the momentum it orthogonalizes, at the
# listed steps only, as float32 .npy of the matrix's shape (the certificate's real matrices).
mkdir -p "$SCRATCH/dump"
export MUOND_DUMP_MOMENTUM="$SCRATCH/dump:2"
run_muond 3 -- --layout "$TINY" --steps 3
expect_status 0 "the momentum dump"
[ -f "$SCRATCH/dump/w1-s2.npy" ] && [ -f "$SCRATCH/dump/w2-s2.npy" ] ||
    fail "no dump of w1 and w2 at step 2: $(ls "$SCRATCH/dump")"
[ ! -e "$SCRATCH/dump/w1-s1.npy" ] || fail "a dump at step 1, which was not listed"
"$MUOND" orth "$SCRATCH/dump/w2-s2.npy" "$SCRATCH/q.npy" >/dev/null 2>&1 ||
    fail "the dump of w2 does not read as a matrix"
export MUOND_DUMP_MOMENTUM="$SCRATCH/dump:two"
run_muond 1 -- --layout "$TINY" --steps 1
unset MUOND_DUMP_MOMENTUM
expect_status 2 "a bad step list"
expect_in "$SCRATCH/err" "MUOND_DUMP_MOMENTUM=$SCRATCH/dump:two: steps must be" "the bad list is named"

run_muond 2 -- --layout "$TINY" --steps 2 --inject melt-grad
expect_status 2 "an unknown fault"
expect_in "$SCRATCH/err" "unknown fault 'melt-grad'" "the unknown fault is named"
run_muond 2 -- --layout "$TINY" --steps 2 --inject nan-grad:param=nope
expect_status 2 "a fault on an unknown parameter"
expect_in "$SCRATCH/err" "has no parameter nope" "the unknown parameter is named"
finish
