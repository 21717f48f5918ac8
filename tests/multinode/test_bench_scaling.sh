#!/bin/sh
# muond bench scaling on the fixture's nodes (exchange-bound layout, 1 and 2 nodes, flat and
# hierarchical, two rounds): the table, JSON lines, plot and the model's validation come out;
# each point is the median of its rounds and carries their spread; the bytes
# each node's veth carried per step are the payload the owner plan must move, plus at most
# 10% (headers, start-up), and no link ran faster than its shaped rate.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
need_nodes
OUT="$SCRATCH/scaling"
run_capture timeout 600 "$MUOND" bench scaling --cluster "$CLUSTER" --nodes 1,2 \
    --scaling exchange --modes sharded --exchanges flat,hierarchical --repeats 2 --out "$OUT"
expect_status 0 "bench scaling"
[ "$STATUS" -eq 0 ] || { tail -n 20 "$SCRATCH/err" >&2; finish; }
expect_in "$SCRATCH/out" "# muond bench scaling: phases in ms" "the table"
expect_in "$SCRATCH/out" "# muond model --validate" "the model's validation"
expect_in "$SCRATCH/err" "latency:" "the latency probe"
expect_in "$SCRATCH/err" "round 2/2, point 4/4" "the second round"
expect_in "$SCRATCH/out" "largest spread over rounds" "the noise beside the errors"
[ -s "$OUT/scaling.png" ] || fail "no plot in $OUT/scaling.png"
/usr/bin/python3 - "$OUT/scaling.jsonl" "$LINK_GBIT" <<'PY' || fail "the measured points do not hold together"
import json, sys
points = [json.loads(line) for line in open(sys.argv[1])]
shaped = float(sys.argv[2])
assert [(p["nodes"], p["exchange"]) for p in points] == \
    [(1, "flat"), (1, "hierarchical"), (2, "flat"), (2, "hierarchical")], points
for p in points:
    assert p["link_gbit"] == shaped, p["link_gbit"]
    assert p["total_ms"] > 0 and p["compute_ms"] > 0
    assert p["rounds"] == 2 and 0 <= p["spread"]["total_ms"] < 10, p["spread"]
    if p["nodes"] == 1:
        continue
    for link in p["links"]:
        assert link["payload_tx"] > 0 and link["payload_rx"] > 0, link
        for way in ("tx", "rx"):
            ratio = link[f"wire_{way}"] / link[f"payload_{way}"]
            assert 1.0 <= ratio <= 1.1, (p["exchange"], link, ratio)
    assert 0 < p["achieved_gbit"] <= 1.05 * shaped, p["achieved_gbit"]
    print(f"{p['exchange']}: wire/payload {p['wire_over_payload']:.4f}, "
          f"{p['achieved_gbit']:.2f} of {shaped} Gbit/s in the exchange phase")
PY
finish
