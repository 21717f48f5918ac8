#!/bin/sh
# A bad layout stops `muond run` on every rank with a message naming the parameter and field,
# exit status 2, and no rank left hanging (the run must end well inside the timeout).
. "$(dirname "$0")/../cli/lib.sh"
# Under AddressSanitizer, leak checks are off for the ranks mpiexec starts: Open MPI dlcloses
# its components at MPI_Finalize, leaving allocations whose stacks no report can attribute.
# Memory errors are still caught; muond's own leaks are checked by the MPI-free runs
# (tests/cli/test_run_loopback.sh).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
BAD="$(dirname "$0")/../data/layouts/bad"
RANKS=3

check() { # check FILE TEXT
    run_capture timeout 120 "$MPIEXEC" -n "$RANKS" --oversubscribe "$MUOND" run --trainer synthetic \
        --layout "$BAD/$1" --steps 1
    [ "$STATUS" -ne 124 ] || fail "$1: timed out (a rank hung)"
    expect_status 2 "$1"
    for r in $(seq 0 $((RANKS - 1))); do
        grep -F "(rank $r)" "$SCRATCH/err" | grep -qF -- "$2" ||
            fail "$1: rank $r did not report '$2'"
    done
}

check missing-shape.json 'parameters[1] ("b"): shape: is missing'
check negative-dimension.json 'parameters[0] ("neg"): shape: dimension 1 must be a positive'
check zero-dimension.json 'parameters[0] ("zero"): shape: dimension 0 must be a positive'
check unknown-method.json 'parameters[0] ("w"): method: must be one of'
check duplicate-name.json 'parameters[1] ("w"): name: duplicate of parameters[0]'
check over-budget.json 'parameters[0] ("huge"): shape: its owner needs 8.0 MiB'
check unknown-key.json 'optimizer: learning_rate: unknown key'
check syntax-error.json 'syntax-error.json:3:35: not valid JSON'
check vector-matrix-method.json 'a matrix method needs a shape of at least 2 dimensions'

run_capture timeout 120 "$MPIEXEC" -n 2 --oversubscribe "$MUOND" run --trainer synthetic \
    --layout /nonexistent.json
expect_status 2 "missing layout file"
expect_in "$SCRATCH/err" "/nonexistent.json: cannot open the layout" "missing file message"
finish
