#!/bin/sh
# The certified step under mpiexec (shard/verify.c):
#  1. GPT-2-small on 4 ranks with one injected ill-scaled gradient (illcond: subnormal, so the
#     fast path's result is NaN): only that matrix goes
#     to the fallback, every step's report names it with its reason, and the final digest
#     equals a run whose layout sends that matrix to the fallback from the start
#     ("fallback": "always").
#  2. --force-fallback on 1..4 ranks: every matrix of every step is solved exactly, and the
#     step report lists them all.
#  3. A NaN gradient under on_nonfinite skip (the step goes on, the report names the parameter,
#     the rank that held the NaN and the step; no NaN reaches the state) and abort (the job
#     stops with a non-zero status and the same names).
#  4. muond orth --method scalapack on 1..4 ranks gives the exact polar factor.
#   test_fallback_step.sh LAYOUT_DIR gpt2|small    (gpt2: part 1; small: parts 2 to 4)
. "$(dirname "$0")/../cli/lib.sh"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # see test_digest.sh
LAYOUTS=$1
MODE=$2
BAD=h.3.attn.c_proj.weight

run_muond() { # run_muond RANKS ARGS...
    ranks=$1
    shift
    run_capture timeout 900 "$MPIEXEC" -n "$ranks" --oversubscribe "$MUOND" run \
        --trainer synthetic --seed 3 "$@"
}

gpt2_injection() {
# 1. one injected rank-deficient gradient in GPT-2-small
run_muond 4 --layout "$LAYOUTS/gpt2-small.json" --steps 2 --digest --inject "illcond:param=$BAD"
expect_status 0 "injected run"
injected=$(grep '^digest' "$SCRATCH/out" || true)
for step in 1 2; do
    expect_in "$SCRATCH/err" "step $step: $BAD (768x768, owner rank" "step $step names the matrix"
    lines=$(grep -c "step $step: .*: fallback, " "$SCRATCH/err" || true)
    [ "$lines" -eq 1 ] || fail "step $step reports $lines fallbacks, expected 1"
done
expect_in "$SCRATCH/err" "fallback, non-finite fast result" "the reason is the NaN fast result"
others=$(grep 'fallback, ' "$SCRATCH/err" | grep -vcF "$BAD" || true)
[ "$others" -eq 0 ] || fail "$others fallback line(s) name other matrices"
sed "s/\"name\": \"$BAD\",/&\"fallback\": \"always\",/" "$LAYOUTS/gpt2-small.json" \
    >"$SCRATCH/always.json"
grep -q '"fallback": "always"' "$SCRATCH/always.json" || fail "could not edit the layout"
run_muond 4 --layout "$SCRATCH/always.json" --steps 2 --digest --inject "illcond:param=$BAD"
expect_status 0 "reference run"
expect_in "$SCRATCH/err" "fallback, forced" "the reference says forced"
reference=$(grep '^digest' "$SCRATCH/out" || true)
echo "injected: $injected, exact from the start: $reference"
[ -n "$injected" ] && [ "$injected" = "$reference" ] ||
    fail "digest '$injected' differs from the exact-from-the-start run '$reference'"
}

small_cases() {
# 2. every matrix through the fallback, on every grid
matrices=$(grep -c '"method": "\(polar-express\|ns5\|gram\)"' "$LAYOUTS/tiny.json")
for p in 1 2 3 4; do
    run_muond "$p" --layout "$LAYOUTS/tiny.json" --steps 2 --force-fallback
    expect_status 0 "--force-fallback on $p rank(s)"
    got=$(grep -c 'fallback, forced' "$SCRATCH/err" || true)
    [ "$got" -eq $((2 * matrices)) ] ||
        fail "--force-fallback on $p rank(s): $got forced fallbacks reported, expected $((2 * matrices))"
done

# 3. a NaN gradient in the last row of w1, which the last rank holds
for p in 1 2 3; do
    last=$((p - 1))
    run_muond "$p" --layout "$LAYOUTS/tiny.json" --steps 3 --inject nan-grad:param=w1:step=2
    expect_status 0 "skip on $p rank(s)"
    expect_in "$SCRATCH/err" "step 2: w1: skipped, 1 non-finite gradient entries (first on rank $last)" \
        "skip on $p rank(s) names w1, its rank and the step"
    grep -q 'step 3: .*\(fallback\|skipped\)' "$SCRATCH/err" &&
        fail "skip on $p rank(s): step 3 still saw a NaN (the state was polluted)"
done
sed 's/"name": "tiny",/&"optimizer": {"on_nonfinite": "abort"},/' "$LAYOUTS/tiny.json" \
    >"$SCRATCH/abort.json"
run_muond 2 --layout "$SCRATCH/abort.json" --steps 3 --inject nan-grad:param=w1:step=2
[ "$STATUS" -ne 0 ] || fail "abort: the job did not stop"
expect_in "$SCRATCH/err" "step 2: non-finite gradient in w1 (1 entries, first on rank 1); on_nonfinite is abort" \
    "abort names w1, its rank and the step"

# 4. the fallback as a command: fp64 solve, float32 output (so 1e-6, a few fp32 ulps of
#    the O(1) entries summed over the matrix)
"$NPYTOOL" spectrum "$SCRATCH/g.npy" 300 200 1e6 5 "$SCRATCH/polar.npy"
for p in 1 2 3 4; do
    run_capture timeout 300 "$MPIEXEC" -n "$p" --oversubscribe "$MUOND" orth "$SCRATCH/g.npy" \
        "$SCRATCH/q.npy" --method scalapack
    expect_status 0 "orth --method scalapack on $p rank(s)"
    d=$("$NPYTOOL" distance "$SCRATCH/q.npy" "$SCRATCH/polar.npy")
    echo "orth --method scalapack, $p rank(s): ||Q - polar||_2 = $d"
    expect_leq "$d" 1e-6 "orth --method scalapack on $p rank(s)"
done
run_capture timeout 300 "$MPIEXEC" -n 2 --oversubscribe "$MUOND" orth "$SCRATCH/none.npy" \
    "$SCRATCH/q2.npy" --method scalapack
[ "$STATUS" -ne 0 ] || fail "orth --method scalapack: a missing input did not fail"
expect_in "$SCRATCH/err" "none.npy: cannot open" "the missing input is named"
[ ! -e "$SCRATCH/q2.npy" ] || fail "orth --method scalapack wrote an output for a missing input"
}

case "$MODE" in
gpt2) gpt2_injection ;;
small) small_cases ;;
*) fail "mode '$MODE': expected gpt2 or small" ;;
esac
finish
