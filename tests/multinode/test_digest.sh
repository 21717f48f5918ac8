#!/bin/sh
# The step is exact across nodes: `muond run --digest` under srun on 2 and on 3 nodes (4 ranks,
# TCP between the nodes' namespaces, shared memory within one) prints the digest of the same 4
# ranks under mpiexec on one node. Every rank logs its node and local rank, and every node's
# link carried exchange traffic. The node-aware exchange (--exchange hierarchical) gives the
# same digests on 2 and 3 nodes of 2 ranks (sharded layouts: any rank count).
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_nodes
RANKS=4
STEPS=3
for layout in tiny.json edge-shapes.json mlp-polar-express.json; do
    run_capture timeout 300 "$MPIEXEC" -n "$RANKS" --oversubscribe "$MUOND" run \
        --layout "$LAYOUTS/$layout" --trainer synthetic --steps "$STEPS" --digest
    expect_status 0 "$layout on one node"
    want=$(grep '^digest' "$SCRATCH/out" || true)
    for nodes in 2 3; do
        before=$(link_bytes "$nodes")
        run_capture timeout 300 srun -N "$nodes" -n "$RANKS" --overcommit --mpi=pmix "$MUOND" run \
            --layout "$LAYOUTS/$layout" --trainer synthetic --steps "$STEPS" --digest
        expect_status 0 "$layout on $nodes nodes"
        got=$(grep '^digest' "$SCRATCH/out" || true)
        [ -n "$want" ] && [ "$got" = "$want" ] ||
            fail "$layout on $nodes nodes: '$got', one node: '$want'"
        expect_match "$SCRATCH/err" "rank 3 of 4 on $(node_name "$nodes") \(node $((nodes - 1)) of $nodes, local rank [0-9] of [0-9]" \
            "rank 3 runs on the last of $nodes nodes"
        expect_match "$SCRATCH/err" "rank 0 of 4 on $(node_name 1) \(node 0 of $nodes, local rank 0 of 2" \
            "ranks 0 and 1 share node 1"
        after=$(link_bytes "$nodes")
        expect_leq $((before + 10000)) "$after" "the last node's link carried the exchange"
    done
    [ "$layout" != mlp-polar-express.json ] || continue # local mode: no all-to-all
    for shape in "2 4" "3 6"; do
        # shellcheck disable=SC2086  # two words: nodes and ranks
        set -- $shape
        run_capture timeout 120 srun -N "$1" -n "$2" --overcommit --mpi=pmix "$MUOND" run --exchange hierarchical \
            --layout "$LAYOUTS/$layout" --trainer synthetic --steps "$STEPS" --digest
        expect_status 0 "$layout, hierarchical, $1 nodes"
        got=$(grep '^digest' "$SCRATCH/out" || true)
        [ "$got" = "$want" ] || fail "$layout, hierarchical on $1 nodes of $(($2 / $1)): '$got', flat: '$want'"
        expect_in "$SCRATCH/err" "exchange: hierarchical (within each of $1 node(s)" "the exchange groups $1 nodes"
    done
done
finish
