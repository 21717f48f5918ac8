#!/bin/sh
# --exchange hierarchical is exact: the node-aware all-to-all delivers what the flat one does,
# byte for byte, so the digest equals step_reference's for every grouping of ranks into nodes
# (MUOND_NODE_RANKS=N makes every N consecutive ranks a node on this one host; unset, the
# host is one node, and one node or one rank per node runs the flat exchange). Nodes of
# unequal rank counts are refused with the fix named.
. "$(dirname "$0")/../cli/lib.sh"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # see test_digest.sh
export MUOND_LOG=info # the communicator logs how it groups the nodes
LAYOUTS="$(dirname "$0")/../data/layouts"
STEPS=2
SEED=7

# hierarchical RANKS NODE_RANKS LAYOUT: the digest of the hierarchical run in $got
hierarchical() {
    run_capture env MUOND_NODE_RANKS="$2" timeout 600 "$MPIEXEC" -n "$1" --oversubscribe \
        "$MUOND" run --trainer synthetic --layout "$3" --steps "$STEPS" --seed "$SEED" --digest \
        --exchange hierarchical
    got=$(grep '^digest' "$SCRATCH/out" || true)
}

for layout in tiny.json edge-shapes.json adaptive.json; do
    want=$("$STEP_REFERENCE" "$LAYOUTS/$layout" "$STEPS" "$SEED" 1)
    for grouping in "4 2" "6 2" "6 3" "2 1" "4 0"; do
        # shellcheck disable=SC2086  # two words: ranks and node size
        set -- $grouping
        hierarchical "$1" "$2" "$LAYOUTS/$layout"
        expect_status 0 "$layout on $1 ranks in nodes of $2"
        echo "$layout, $1 ranks, MUOND_NODE_RANKS=$2: $got (reference $want)"
        [ "$got" = "$want" ] || fail "$layout, $1 ranks in nodes of $2: '$got', reference '$want'"
    done
done
expect_in "$SCRATCH/err" "exchange: hierarchical (within each of 1 node(s), then between nodes): the same as flat here" \
    "one host is one node, where the flat exchange runs"

hierarchical 3 2 "$LAYOUTS/tiny.json"
expect_status 2 "3 ranks in nodes of 2"
expect_in "$SCRATCH/err" "needs as many ranks on every node (they hold 1 to 2 here)" "the refusal says why"
expect_in "$SCRATCH/err" "or use --exchange flat" "the refusal names the fix"
finish
