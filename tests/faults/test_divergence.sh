#!/bin/sh
# Divergence checks (--check-every): a clean run passes them and keeps its digest; a silently
# corrupted owner result (sdc) is caught by the recomputation on another rank; a replica
# whose weights went wrong (local mode, bitflip) is caught by the replica digests.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

clean=$(clean_digest 3 5)
run_muond 3 -- --layout "$TINY" --steps 5 --digest --check-every 1
expect_status 0 "checks on a clean run"
expect_same "$(digest_of_run)" "$clean" "the checks change nothing"
grep -q 'divergence\|silent-data' "$SCRATCH/err" && fail "a clean run reported a divergence"

run_muond 3 -- --layout "$TINY" --steps 6 --check-every 1 --inject sdc:param=w2
[ "$STATUS" -ne 0 ] || fail "a silently corrupted result did not stop the job"
expect_match "$SCRATCH/err" "step [0-9]+: silent-data-corruption check: owner rank [0-2]'s result for w2 \(24x8\) differs from rank [0-2]'s recomputation" \
    "sdc names the owner, the checker, the parameter and the step"

run_muond 3 -- --layout "$LAYOUTS/tiny-local.json" --steps 4 --check-every 2 \
    --inject bitflip:rank=2:step=2
[ "$STATUS" -ne 0 ] || fail "a diverged replica did not stop the job"
expect_in "$SCRATCH/err" "divergence check after step 2: rank 2's replicated weights digest is" \
    "the diverged replica is named"
finish
