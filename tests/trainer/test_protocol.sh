#!/bin/sh
# Misbehaving clients get a clear ERROR and are disconnected while real trainers go on
# training undisturbed; a trainer that sends a step out of order is dropped; a trainer may
# reconnect and continue.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
LAYOUT="$(dirname "$0")/../data/layouts/mlp-polar-express.json"
DIGEST=$(digest_of "$LAYOUT")
export MUOND_LAYOUT_DIGEST=$DIGEST

# 1. Two trainers train for 60 steps while bad clients knock on rank 0.
start_daemon 2 "$LAYOUT" --trainer-timeout 30
"$MLP_TRAINER" --rank 0 --steps 60 >"$SCRATCH/t0.out" 2>"$SCRATCH/t0.err" &
T0=$!
"$MLP_TRAINER" --rank 1 --steps 60 >/dev/null 2>"$SCRATCH/t1.err" &
T1=$!
PIDS="$PIDS $T0 $T1"
sleep 1
S0=$(socket_of 0)
probe() { # probe EXPECTED MODE ARGS...
    want=$1
    shift
    "$CLIENT_PROBE" "$@" >"$SCRATCH/probe.out" 2>&1 || true
    echo "probe $1: $(cat "$SCRATCH/probe.out")"
    grep -qF -- "$want" "$SCRATCH/probe.out" || fail "probe $1: expected '$want'"
}
probe "layout digest 0000000000000bad" connect "$S0" 0 bad
probe "in version 9: protocol version 9; this muond speaks 3" version "$S0" 0 "$DIGEST" 9
# An old client (version 2) reads its refusal: it comes in its own version.
probe "ERROR 2 in version 2: protocol version 2; this muond speaks 3 (rebuild the trainer" \
    version "$S0" 0 "$DIGEST" 2
probe "expected HELLO: not a muond message (bad magic)" garbage "$S0"
probe "expected HELLO: timed out" truncated "$S0"
probe "rank 0 already serves a trainer" connect "$S0" 0 "$DIGEST"
probe "HELLO for rank 1 reached rank 0" connect "$S0" 1 "$DIGEST"
wait_pid "$T0" 120 || fail "trainer 0 failed: $(cat "$SCRATCH/t0.err")"
wait_pid "$T1" 120 || fail "trainer 1 failed: $(cat "$SCRATCH/t1.err")"
wait_pid "$DAEMON" 60 || fail "the daemon did not end cleanly: $(tail -5 "$SCRATCH/daemon.err")"
expect_in "$SCRATCH/t0.out" "step 60 " "training completed all 60 steps"
expect_in "$SCRATCH/daemon.err" "every trainer said BYE after 60 step(s)" "clean end"
expect_in "$SCRATCH/daemon.err" "rejected a client handshake" "rejections are logged"
PIDS=""

# 2. A trainer that stops after 10 steps is replaced by one that continues to 20.
start_daemon 1 "$LAYOUT" --trainer-timeout 30
"$MLP_TRAINER" --rank 0 --steps 10 >"$SCRATCH/first.out" 2>&1 || fail "first trainer"
# The first trainer's BYE ended the run only if every trainer said BYE: here that is all of
# them, so the daemon is done; a reconnect needs a trainer that leaves without BYE instead.
wait_pid "$DAEMON" 30 || fail "daemon after BYE"
start_daemon 1 "$LAYOUT" --trainer-timeout 30
"$MLP_TRAINER" --rank 0 --steps 10 >"$SCRATCH/first.out" 2>&1 &
FIRST=$!
PIDS="$PIDS $FIRST"
until grep -q "^step 5 " "$SCRATCH/first.out" 2>/dev/null; do sleep 0.1; done
kill -9 "$FIRST"
wait "$FIRST" 2>/dev/null || true
"$MLP_TRAINER" --rank 0 --steps 12 >"$SCRATCH/second.out" 2>&1 || fail "reconnecting trainer"
first_step=$(head -1 "$SCRATCH/second.out" | awk '{print $2}')
echo "the reconnecting trainer started at step $first_step"
[ "$first_step" -ge 6 ] && [ "$first_step" -le 7 ] || fail "it should continue from step 6 or 7"
expect_in "$SCRATCH/second.out" "step 12 " "the reconnecting trainer finished"
wait_pid "$DAEMON" 30 || fail "daemon after the second trainer"
# The kill lands either between steps or while the daemon computes the step the trainer sent.
expect_match "$SCRATCH/daemon.err" "trainer (disconnected before|went away during) step" \
    "the disconnection is reported"
PIDS=""

# 3. A trainer that skips ahead is told so and dropped; with no trainer back in time the
#    daemon stops with a non-zero status.
start_daemon 1 "$LAYOUT" --trainer-timeout 2
probe "expected STEP(1)" skip-step "$(socket_of 0)" 0 "$DIGEST"
STATUS=0
wait_pid "$DAEMON" 30 || STATUS=$?
[ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || fail "daemon status $STATUS after losing its trainer"
expect_in "$SCRATCH/daemon.err" "no trainer for 2 s at step 1" "the lost trainer is reported"
PIDS=""

# 4. Per-step hyper-parameters: a NaN rate is refused by the library, a momentum of 1 by the
#    daemon; trainers that send different rates to the ranks get a failed step naming the
#    parameter, and the daemon stops.
start_daemon 1 "$LAYOUT" --trainer-timeout 5
probe "daemon: ERROR 5: expected STEP(1) with valid hyper-parameters" bad-hyper "$(socket_of 0)" \
    0 "$DIGEST"
expect_in "$SCRATCH/probe.out" "library: parameter 'l1.weight': lr nan is outside [0, 1000]" \
    "the library refuses a NaN rate"
wait_pid "$DAEMON" 30 || fail "the daemon did not end after the probe's BYE"
start_daemon 2 "$LAYOUT" --trainer-timeout 30
"$CLIENT_PROBE" step-lr "$(socket_of 0)" 0 "$DIGEST" 0.01 >"$SCRATCH/lr0.out" 2>&1 &
L0=$!
"$CLIENT_PROBE" step-lr "$(socket_of 1)" 1 "$DIGEST" 0.02 >"$SCRATCH/lr1.out" 2>&1 &
L1=$!
PIDS="$PIDS $L0 $L1"
wait_pid "$L0" 60 || fail "probe on rank 0"
wait_pid "$L1" 60 || fail "probe on rank 1"
STATUS=0
wait_pid "$DAEMON" 60 || STATUS=$?
[ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] || fail "daemon status $STATUS after differing rates"
for r in 0 1; do
    expect_in "$SCRATCH/lr$r.out" "the trainers sent different lr for l1.weight (from 0.01 to 0.02" \
        "rank $r hears why its step failed"
done
PIDS=""
finish
