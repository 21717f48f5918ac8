#!/bin/sh
# muond model: the extrapolation table for a family and a layout file, JSON lines whose
# numbers hold together, and clear refusals of bad input (exit status 2, naming the option).
. "$(dirname "$0")/lib.sh"
LAYOUTS="$(dirname "$0")/../data/layouts"

run_capture "$MUOND" model --layout 1b --gpus 8,64,1024
expect_status 0 "model --layout 1b"
expect_in "$SCRATCH/out" "1b on H100" "the table names the layout and GPU"
[ "$(grep -cE '^ +(8|64|1024) ' "$SCRATCH/out")" -eq 3 ] || fail "not one row per GPU count"

run_capture "$MUOND" model --layout "$LAYOUTS/gpt2-small.json" --gpus 8,1024 --gpu h200 --json
expect_status 0 "model --json on a layout file"
/usr/bin/python3 - "$SCRATCH/out" <<'PY' || fail "the JSON lines do not hold together"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert [r["gpus"] for r in rows] == [8, 1024], rows
for r in rows:
    for design in ("flat", "hierarchical", "rs-ag"):
        p = r[design]
        parts = p["momentum_ms"] + p["exchange_ms"] + p["compute_ms"] + p["apply_ms"]
        assert abs(parts - p["total_ms"]) < 1e-6 * max(1.0, p["total_ms"]), (design, p)
    assert r["connections_per_rank_flat"] == r["gpus"] - 1
    assert r["connections_per_rank_hierarchical"] == 7 + r["nodes"] - 1
# At 1024 GPUs the flat all-to-all's per-peer latency dominates: the two-stage one wins.
assert rows[1]["hierarchical"]["total_ms"] < rows[1]["flat"]["total_ms"], rows[1]
# One node: both routes are the same.
assert abs(rows[0]["hierarchical"]["total_ms"] - rows[0]["flat"]["total_ms"]) < 1e-9
PY

# Local mode's collectives as libnbc runs them (and below, compute on shared cores): every rank's gradient reaches the owner, the
# broadcast reaches every rank, and for 2^k ranks the owner takes in 2 (p-1)/p of the matrix
# (Rabenseifner: reduce-scatter, then gather), where a binomial tree would take k matrices.
/usr/bin/python3 - "$(dirname "$0")/../../bench" <<'PY' || fail "the model's local-mode rounds are wrong"
import sys
sys.path.insert(0, sys.argv[1])
import scaling_model as sm
for ranks in range(2, 10):
    for root in (0, ranks - 1):
        held = {r: {r} for r in range(ranks)}
        for edges in sm.reduce_rounds(ranks, root, 1.0):
            moved = [(dst, set(held[src])) for src, dst, _ in edges]
            for dst, got in moved:
                held[dst] |= got
        assert held[root] == set(range(ranks)), (ranks, root, held[root])
        reached = {root}
        for edges in sm.bcast_rounds(ranks, root, 1.0):
            assert all(src in reached for src, _, _ in edges), (ranks, root, edges)
            reached |= {dst for _, dst, _ in edges}
        assert reached == set(range(ranks)), (ranks, root)
for ranks in (4, 8):
    into_root = sum(b for edges in sm.reduce_rounds(ranks, 0, 1.0) for _, dst, b in edges if dst == 0)
    assert abs(into_root - 2 * (ranks - 1) / ranks) < 1e-12, (ranks, into_root)
out_of_root = sum(b for edges in sm.bcast_rounds(4, 2, 1.0) for src, _, b in edges if src == 2)
assert out_of_root == 3.0, out_of_root  # linear up to 4 ranks
# Ranks that share cores: all four run at half speed until three finish (t = 2); the last
# then runs alone (t = 3). Idle ranks finish at once; without a measured table, ranks/cores.
m = sm.Machine(1, 4, 1.0, 0.0, 1.0, 0.0, None, 0.0, 0.0, cores=2, sharing={1: 1.0, 2: 1.0, 4: 2.0})
assert list(m.finish_times([1, 1, 1, 2])) == [2.0, 2.0, 2.0, 3.0], m.finish_times([1, 1, 1, 2])
assert list(m.finish_times([0, 1, 0, 0])) == [0.0, 1.0, 0.0, 0.0]
assert m.compute_slowdown(3) == 1.5  # between the measured counts
m.sharing = None
assert m.compute_slowdown(4) == 2.0 and m.compute_slowdown(2) == 1.0
PY

run_capture "$MUOND" model --layout 1b --gpus 12
expect_status 2 "--gpus 12 (not a multiple of 8 GPUs per node)"
expect_in "$SCRATCH/err" "--gpus: every count must be positive, and a multiple of --gpus-per-node" "names the option"
run_capture "$MUOND" model --layout "$SCRATCH/none.json"
expect_status 2 "a missing layout file"
expect_in "$SCRATCH/err" "--layout $SCRATCH/none.json: not a layout file or a family" "names the file"
echo "not json" >"$SCRATCH/bad.jsonl"
run_capture "$MUOND" model --validate "$SCRATCH/bad.jsonl"
expect_status 2 "--validate on a file without points"
expect_in "$SCRATCH/err" "holds no bench scaling points" "says what is wrong"
run_capture "$MUOND" bench scaling --nodes two
expect_status 2 "bench scaling --nodes two"
expect_in "$SCRATCH/err" "--nodes: 'two' is not a comma-separated list" "bench scaling names the option"
finish
