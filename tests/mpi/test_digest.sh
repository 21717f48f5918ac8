#!/bin/sh
# The distributed step is exact: for every layout given, `muond run --digest` under
# mpiexec -n 1, 2, 3 and 4 prints the same digest as step_reference, a single process that
# runs the same arithmetic on full matrices without any sharding or communication code.
#   test_digest.sh STEPS LAYOUT...
# Local-gradient-mode layouts average P trainers' gradients, so each P is compared with the
# reference for that P.
. "$(dirname "$0")/../cli/lib.sh"
# Under AddressSanitizer, leak checks are off for the ranks mpiexec starts: Open MPI dlcloses
# its components at MPI_Finalize, leaving allocations whose stacks no report can attribute.
# Memory errors are still caught; muond's own leaks are checked by the MPI-free runs
# (tests/cli/test_run_loopback.sh).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
STEPS=$1
shift
SEED=7

for layout in "$@"; do
    name=$(basename "$layout" .json)
    local_mode=$(grep -c '"gradient_mode": *"local"' "$layout" || true)
    want=$("$STEP_REFERENCE" "$layout" "$STEPS" "$SEED" 1)
    for p in 1 2 3 4; do
        if [ "$local_mode" -ne 0 ]; then
            want=$("$STEP_REFERENCE" "$layout" "$STEPS" "$SEED" "$p")
        fi
        run_capture timeout 900 "$MPIEXEC" -n "$p" --oversubscribe "$MUOND" run --trainer synthetic \
            --layout "$layout" \
            --steps "$STEPS" --seed "$SEED" --digest
        expect_status 0 "$name on $p rank(s)"
        got=$(grep '^digest' "$SCRATCH/out" || true)
        echo "$name P=$p: $got (reference $want)"
        [ "$got" = "$want" ] || fail "$name on $p rank(s): '$got' differs from the reference '$want'"
    done
done
finish
