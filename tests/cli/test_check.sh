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
# A user's bad input is one clear line; the call trail is for MUOND_LOG=debug (and for
# internal failures, below).
[ "$(wc -l <"$SCRATCH/err")" -eq 1 ] || fail "a bad layout printed more than its one line"
if grep -q '^  at ' "$SCRATCH/err"; then fail "a bad layout printed the call trail"; fi
run_capture env MUOND_LOG=debug "$MUOND" check --layout "$LAYOUTS/bad/duplicate-name.json"
expect_status 2 "bad layout under MUOND_LOG=debug"
expect_match "$SCRATCH/err" '^  at .*layout' "MUOND_LOG=debug shows the trail"
run_capture "$MUOND" bench kernels --shape 8x8 --dtype bf16 --backend auto --runs 5 --peer none
if [ "$STATUS" -eq 1 ]; then # no backend computes bf16 here: not the user's input, a trail
    expect_match "$SCRATCH/err" '^  at ' "an internal-kind failure keeps its trail"
fi
run_capture "$MUOND" check
expect_status 2 "no layout"
expect_in "$SCRATCH/err" "--layout FILE is required" "missing option message"
finish
