#!/bin/sh
# muond check: the plan of the GPT-2-small layout is balanced, and bad layouts are explained.
. "$(dirname "$0")/lib.sh"
LAYOUTS="$(dirname "$0")/../data/layouts"

run_capture "$MUOND" check --layout "$LAYOUTS/gpt2-small.json" --ranks 4 --json
expect_status 0 "check gpt2-small"
imbalance=$(sed -n 's/.*"imbalance":\([0-9.e+-]*\).*/\1/p' "$SCRATCH/out")
echo "gpt2-small on 4 ranks: owner imbalance (max/mean FLOPs) $imbalance"
expect_leq "$imbalance" 1.05 "owner imbalance at 4 ranks"
expect_in "$SCRATCH/out" '"matrices":48' "48 matrices"

run_capture "$MUOND" check --layout "$LAYOUTS/gpt2-small.json" --ranks 3
expect_status 0 "check table"
expect_in "$SCRATCH/out" "imbalance (max/mean FLOPs)" "table footer"
expect_in "$SCRATCH/out" "148 parameters, 48 matrices" "table header"

run_capture "$MUOND" check --layout "$LAYOUTS/bad/duplicate-name.json"
expect_status 2 "duplicate name"
expect_in "$SCRATCH/err" 'parameters[1] ("w"): name: duplicate' "duplicate message"
run_capture "$MUOND" check
expect_status 2 "no layout"
expect_in "$SCRATCH/err" "--layout FILE is required" "missing option message"
finish
