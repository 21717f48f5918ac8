#!/bin/sh
# Killing a trainer mid-run: every rank reports it, the daemon exits non-zero within the
# trainer timeout, and no step was applied in part: a clean run of exactly the reported
# number of steps ends with the same weights (digest) as the interrupted one.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
LAYOUT="$(dirname "$0")/../data/layouts/mlp-polar-express.json"
export MUOND_LAYOUT_DIGEST=$(digest_of "$LAYOUT")
TIMEOUT=3

start_daemon 2 "$LAYOUT" --trainer-timeout "$TIMEOUT"
"$MLP_TRAINER" --rank 0 --steps 500 >"$SCRATCH/t0.out" 2>&1 &
T0=$!
"$MLP_TRAINER" --rank 1 --steps 500 >/dev/null 2>&1 &
T1=$!
PIDS="$PIDS $T0 $T1"
until grep -q "^step 15 " "$SCRATCH/t0.out" 2>/dev/null; do sleep 0.05; done
kill -9 "$T1"
killed_at=$(date +%s)
STATUS=0
wait_pid "$DAEMON" $((TIMEOUT + 20)) || STATUS=$?
elapsed=$(($(date +%s) - killed_at))
echo "daemon exit status $STATUS, $elapsed s after the kill"
[ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || fail "the daemon must exit non-zero on its own"
[ "$elapsed" -le $((TIMEOUT + 10)) ] || fail "the daemon took $elapsed s to stop"
# Killed between steps it "disconnected"; killed while its step ran, it "went away during
# step k (the step was applied)". Either way rank 1 reports it.
grep -qE "r1 s[0-9-]+\] WARN +launcher: trainer (disconnected|went away during step)" "$SCRATCH/daemon.err" ||
    fail "rank 1 did not report that its trainer left"
expect_match "$SCRATCH/daemon.err" "r1 s[0-9-]+\] ERROR +launcher: no trainer for $TIMEOUT s" \
    "rank 1 reports the timeout (its log prefix names the rank)"
steps=$(sed -n 's/.*stopping after \([0-9]*\) complete step(s).*/\1/p' "$SCRATCH/daemon.err" | head -1)
interrupted=$(sed -n 's/^state after the last complete step: digest //p' "$SCRATCH/daemon.out")
echo "interrupted after $steps complete steps, digest $interrupted"
[ -n "$steps" ] && [ -n "$interrupted" ] || fail "the daemon did not report its last state"
stop_all

# The same trainers and data, exactly $steps steps, uninterrupted.
start_daemon 2 "$LAYOUT" --trainer-timeout 30 --digest
"$MLP_TRAINER" --rank 0 --steps "$steps" >/dev/null 2>&1 &
R0=$!
"$MLP_TRAINER" --rank 1 --steps "$steps" >/dev/null 2>&1 &
R1=$!
PIDS="$PIDS $R0 $R1"
wait_pid "$R0" 120 && wait_pid "$R1" 120 && wait_pid "$DAEMON" 60 || fail "the clean run failed"
clean=$(sed -n 's/^digest //p' "$SCRATCH/daemon.out")
echo "clean run of $steps steps: digest $clean"
[ "$clean" = "$interrupted" ] || fail "interrupted state $interrupted differs from $steps clean steps $clean"
PIDS=""
finish
