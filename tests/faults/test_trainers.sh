#!/bin/sh
# Trainer faults with the example trainer (socket trainers, local gradient mode):
#  - trainer-kill: the rank reports it, the daemon stops non-zero within the trainer timeout,
#    and resuming from the last checkpoint with restarted trainers ends with the same weights
#    as an uninterrupted run;
#  - bad-message: the rank answers ERROR and drops that connection, nothing else changes,
#    and the daemon stops within the timeout;
#  - nan-grad under on_nonfinite skip: the step is skipped and the final held-out loss is
#    within 1% of the fault-free run's.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/../trainer/lib.sh"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LAYOUT="$ROOT/tests/data/layouts/mlp-polar-express.json"
export MUOND_LAYOUT_DIGEST=$(digest_of "$LAYOUT")
TIMEOUT=3
STEPS=8

trainers() { # trainers STEPS: two example trainers in the background, T0 and T1
    "$MLP_TRAINER" --rank 0 --steps "$1" >"$SCRATCH/t0.out" 2>&1 &
    T0=$!
    "$MLP_TRAINER" --rank 1 --steps "$1" >"$SCRATCH/t1.out" 2>&1 &
    T1=$!
    PIDS="$PIDS $T0 $T1"
}

daemon_digest() { sed -n 's/^digest //p' "$SCRATCH/daemon.out"; }

# faulty_run WHAT DAEMON-OPTIONS...: the daemon with trainers must stop non-zero on its own
# within the trainer timeout.
faulty_run() {
    what=$1
    shift
    start_daemon 2 "$LAYOUT" --trainer-timeout $TIMEOUT "$@"
    trainers $STEPS
    STATUS=0
    wait_pid "$DAEMON" $((TIMEOUT + 30)) || STATUS=$?
    [ "$STATUS" -ne 0 ] && [ "$STATUS" -ne 124 ] ||
        fail "$what: the daemon must exit non-zero on its own (status $STATUS)"
}

# finished_run WHAT DAEMON-OPTIONS...: the daemon and trainers all end well.
finished_run() {
    what=$1
    shift
    start_daemon 2 "$LAYOUT" --digest "$@"
    trainers $STEPS
    wait_pid "$T0" 120 && wait_pid "$T1" 120 && wait_pid "$DAEMON" 60 || fail "the $what run failed"
}

# The uninterrupted run.
finished_run clean
clean=$(daemon_digest)
stop_all

# trainer-kill before step 5 on rank 1, checkpoints every 2 steps.
faulty_run trainer-kill --checkpoint-dir "$SCRATCH/ck" --checkpoint-every 2 \
    --inject trainer-kill:rank=1:step=5
expect_match "$SCRATCH/daemon.err" "r1 s[0-9-]+\] WARN +launcher: trainer \(pid [0-9]+\) was killed before step 5 \(injected trainer-kill\)" \
    "the killed trainer is reported, by rank 1's log prefix"
expect_match "$SCRATCH/daemon.err" "r1 s[0-9-]+\] ERROR +launcher: no trainer for $TIMEOUT s" \
    "rank 1 reports the timeout (its log prefix names the rank)"
expect_in "$SCRATCH/ck/LATEST" "step-00000004" "the last checkpoint is step 4"
stop_all
finished_run resumed --resume "$SCRATCH/ck"
[ -n "$clean" ] && [ "$(daemon_digest)" = "$clean" ] ||
    fail "resumed after trainer-kill: digest '$(daemon_digest)', uninterrupted '$clean'"
stop_all

# bad-message before step 3 on rank 0.
faulty_run bad-message --inject bad-message:rank=0:step=3
expect_match "$SCRATCH/daemon.err" "r0 s[0-9-]+\] WARN +launcher: trainer sent a bad message before step 3" \
    "the bad message is reported with the rank (the log prefix) and step"
expect_in "$SCRATCH/t0.out" "expected STEP(3)" "the trainer hears what was wrong"
expect_match "$SCRATCH/daemon.err" "stopping after 2 complete step\(s\), none applied in part" \
    "no step was applied in part"
stop_all

# nan-grad at step 20 of 60 in l2.weight, on_nonfinite skip (the layout's default).
loss_of() { tail -1 "$1" | awk -F, '{print $3}'; }
example() { # example NAME [SPEC]: 60 steps on 2 ranks with faults SPEC, the loss in NAME.csv
    MUOND_INJECT="${2:-}" "$ROOT/scripts/train-example.sh" --build "$(cd "$(dirname "$MUOND")/.." && pwd)" --ranks 2 \
        --steps 60 --csv "$SCRATCH/$1.csv" >"$SCRATCH/$1.out" 2>&1 || fail "the $1 example failed"
}
example clean
example nan nan-grad:param=l2.weight:step=20
expect_in "$SCRATCH/nan.out" "step 20 " "the run reaches step 20"
grep "^step 20 " "$SCRATCH/nan.out" | grep -q "skipped: non-finite gradients" ||
    fail "step 20 was not reported skipped"
expect_in "$SCRATCH/nan.out" "step 20: l2.weight: skipped" "the daemon names the parameter and step"
a=$(loss_of "$SCRATCH/clean.csv")
b=$(loss_of "$SCRATCH/nan.csv")
echo "held-out loss after 60 steps: fault-free $a, with nan-grad at step 20 $b"
awk -v a="$a" -v b="$b" 'BEGIN { d = (b - a) / a; if (d < 0) d = -d; exit !(a > 0 && d <= 0.01) }' ||
    fail "the loss with a skipped step ($b) is not within 1% of the fault-free one ($a)"
finish
