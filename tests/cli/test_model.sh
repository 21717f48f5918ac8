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
