#!/bin/sh
# muond launch (label launch): a clean run streams rank 0 and logs the rest; a failing trainer
# stops the job with its status; SIGTERM stops everything cleanly (128 + 15); a trainer that
# ignores SIGTERM is killed after --kill-after; a daemon that cannot start ends the job; bad
# command lines exit 2 naming the problem. After every run no process of the job is left.
. "$(dirname "$0")/../cli/lib.sh"
export MUOND_SOCKET_DIR="$SCRATCH/sockets"
export MUOND_LOG=info
unset MUOND_JOB
LAYOUT="$(dirname "$0")/../data/layouts/mlp-polar-express.json"
# Every process of a job inherits this variable from the launcher (the test's shell does not
# have it), so that leftovers can be found in /proc.
MARK="MUOND_LAUNCH_TEST=$SCRATCH"

job_processes() {
    for environ in /proc/[0-9]*/environ; do
        if tr '\0' '\n' 2>/dev/null <"$environ" | grep -qxF -- "$MARK"; then
            pid=${environ#/proc/}
            echo "${pid%/environ}"
        fi
    done
}

no_leftovers() { # no_leftovers DESCRIPTION
    left=$(job_processes)
    if [ -n "$left" ]; then
        fail "$1: processes left: $(ps -o pid,args -p "$(echo "$left" | tr '\n' ',' | sed 's/,$//')")"
        for pid in $left; do kill -9 "$pid" 2>/dev/null || true; done
    fi
}

# Jobs: leak checks off in what mpiexec starts (as everywhere in this suite: Open MPI's
# unloaded components leave unattributable reports); the bad command lines below start
# nothing, so the launcher's own paths keep them.
NO_LEAKS="ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
launch() { env "$NO_LEAKS" "$MARK" "$MUOND" launch "$@"; }

# wait_for FILE TEXT SECONDS: until FILE contains TEXT (status 1 after SECONDS).
wait_for() {
    tries=0
    until grep -qF -- "$2" "$1" 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -le $(($3 * 10)) ] || return 1
        sleep 0.1
    done
}

# 1. A clean run: status 0, rank 0 on stdout, rank 1 and the daemon in the log directory,
#    the private run directory removed.
run_capture launch -n 2 --layout "$LAYOUT" --log-dir "$SCRATCH/logs" -- sh -c \
    'echo "trainer $MUOND_RANK of $MUOND_RANKS ($RANK, $LOCAL_RANK, $WORLD_SIZE)"; exec "$0" --steps 5 --batch 8' \
    "$MLP_TRAINER"
expect_status 0 "a clean run"
expect_in "$SCRATCH/out" "trainer 0 of 2 (0, 0, 2)" "rank 0 is told its rank"
expect_in "$SCRATCH/out" "step 5 " "rank 0's output is streamed"
expect_in "$SCRATCH/logs/trainer.1.log" "trainer 1 of 2 (1, 1, 2)" "rank 1's output is in its log"
expect_in "$SCRATCH/logs/muond.log" "every trainer said BYE after 5 step(s)" "the daemon's log"
[ -z "$(ls -d "$MUOND_SOCKET_DIR"/launch-* 2>/dev/null)" ] || fail "the run directory was left"
no_leftovers "a clean run"

# 2. A trainer that fails: the job stops, the launcher exits with that trainer's status.
run_capture env "$NO_LEAKS" "$MARK" timeout 120 "$MUOND" launch -n 3 --layout "$LAYOUT" --kill-after 5 -- sh -c \
    'if [ "$MUOND_RANK" = 1 ]; then exit 3; fi; exec "$0" --steps 100000' \
    "$MLP_TRAINER"
expect_status 3 "the failing trainer's status"
expect_match "$SCRATCH/err" "trainer 1 \(pid [0-9]+\) exited with status 3" "the failure is named"
expect_in "$SCRATCH/err" "stopping the job (trainer 1 failed)" "the job is stopped"
expect_in "$SCRATCH/err" "logs kept in $MUOND_SOCKET_DIR/launch-" "the logs are kept"
no_leftovers "a failing trainer"

# terminated NAME READY ARGS...: muond launch ARGS in the background (output in
# $SCRATCH/NAME.out and .err); once READY is in its output, SIGTERM to the launcher, which
# must exit 143 (128 + 15).
terminated() {
    name=$1
    ready=$2
    shift 2
    env "$NO_LEAKS" "$MARK" "$MUOND" launch "$@" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" &
    pid=$!
    wait_for "$SCRATCH/$name.out" "$ready" 60 || fail "$name: '$ready' never came"
    kill -TERM "$pid"
    STATUS=0
    wait "$pid" || STATUS=$?
    [ "$STATUS" -eq 143 ] || fail "$name: launcher status $STATUS, expected 143"
}

# 3. SIGTERM to the launcher: forwarded; the daemon stops after a complete step.
terminated term "step 3 " -n 2 --layout "$LAYOUT" --log-dir "$SCRATCH/term" -- \
    "$MLP_TRAINER" --steps 100000 --batch 8
expect_in "$SCRATCH/term.err" "Terminated: stopping the daemon and the trainers" "forwarded"
expect_match "$SCRATCH/term/muond.log" "stopping on SIGTERM after [0-9]+ complete step" \
    "the daemon stops cleanly"
no_leftovers "SIGTERM"

# 4. A trainer that ignores SIGTERM is killed after --kill-after.
terminated stubborn "ready" -n 2 --layout "$LAYOUT" --kill-after 2 -- sh -c \
    'trap "" TERM INT; echo ready; while :; do sleep 1; done'
expect_match "$SCRATCH/stubborn.err" "trainer 0 \(pid [0-9]+\) did not stop; killing it" \
    "the stubborn trainer is killed"
no_leftovers "a trainer that ignores SIGTERM"

# 5. A daemon that cannot start ends the job; its log is shown.
run_capture env "$NO_LEAKS" "$MARK" timeout 120 "$MUOND" launch -n 2 --layout "$LAYOUT" --grace 2 --kill-after 5 \
    --comm-timeout -5 -- "$MLP_TRAINER" --steps 5
[ "$STATUS" -ne 0 ] || fail "a daemon that cannot start: status 0"
expect_in "$SCRATCH/err" "comm-timeout" "the daemon's complaint is shown"
no_leftovers "a daemon that cannot start"

# 6. Bad command lines: status 2, naming the problem, nothing started.
bad() { # bad TEXT ARGS...
    want=$1
    shift
    run_capture env "$MARK" "$MUOND" launch "$@"
    expect_status 2 "muond launch $*"
    expect_in "$SCRATCH/err" "$want" "muond launch $*"
}
bad "unknown option '--bogus'" -n 2 --layout "$LAYOUT" --bogus -- true
bad "no trainer command" -n 2 --layout "$LAYOUT"
bad "--trainer is muond launch's to choose" -n 2 --layout "$LAYOUT" --trainer synthetic -- true
bad "one of them" -n 2 --layout "$LAYOUT" --from-model x.py:f -- true
bad "how many ranks" --layout "$LAYOUT" -- true
bad "cannot open the layout" -n 2 --layout "$SCRATCH/missing.json" -- true
no_leftovers "bad command lines"
finish
