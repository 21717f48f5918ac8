#!/bin/sh
# A graceful stop on SIGTERM (what Slurm sends at the end of a job):
# 1. mpiexec, synthetic trainer: SIGTERM to one rank only; every rank stops after the same
#    complete step, and the state equals an uninterrupted run of that many steps, bit for bit.
# 2. Slurm, socket trainers: `scancel --signal=TERM` of the daemon's step (what Slurm does to
#    every step at the end of a job); the trainers hear why, every rank exits 143, and the
#    sockets are gone. (SIGTERM to srun itself would not do: srun then kills the step.)
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
LAYOUT="$LAYOUTS/tiny.json"

# wait_for FILE REGEX SECONDS
wait_for() {
    for _ in $(seq $(($3 * 10))); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

"$MPIEXEC" -n 2 --bind-to none "$MUOND" run --layout "$LAYOUT" --trainer synthetic \
    --steps 100000000 >"$SCRATCH/stop.out" 2>"$SCRATCH/stop.err" &
mpiexec_pid=$!
wait_for "$SCRATCH/stop.err" " step 50/" 60 || fail "the run did not reach step 50"
rank1=$(pgrep -P "$mpiexec_pid" -x muond | tail -n 1)
kill -TERM "$rank1"
set +e
wait "$mpiexec_pid"
status=$?
set -e
[ "$status" -eq 143 ] || fail "exit status $status after SIGTERM, expected 143 (128 + 15)"
steps=$(sed -n 's/.*stopping on SIGTERM after \([0-9]*\) complete step(s), on every rank.*/\1/p' \
    "$SCRATCH/stop.err")
[ -n "$steps" ] || { fail "no stop message"; tail -3 "$SCRATCH/stop.err" >&2; finish; }
stopped=$(sed -n 's/^state after the last complete step: digest //p' "$SCRATCH/stop.out")
run_capture "$MPIEXEC" -n 2 "$MUOND" run --layout "$LAYOUT" --trainer synthetic --steps "$steps" \
    --digest
expect_status 0 "the uninterrupted run of $steps steps"
straight=$(sed -n 's/^digest //p' "$SCRATCH/out")
echo "stopped after $steps steps: digest $stopped; uninterrupted: $straight"
[ -n "$stopped" ] && [ "$stopped" = "$straight" ] ||
    fail "the stopped state ($stopped) is not that of $steps steps ($straight)"

need_cluster
example_job "--steps 100000"
cat >>"$SCRATCH/job.sh" <<'JOB'
for _ in $(seq 600); do grep -q " step 5:" "$SCRATCH/daemon.err" && break; sleep 0.1; done
step=$(squeue -h -s -j "$SLURM_JOB_ID" -o "%i %j" | awk '$2 == "muond" {print $1}')
scancel --signal=TERM "$step"
wait $daemon
echo "daemon $?"
wait $trainers
echo "trainers $?"
JOB
run_capture timeout 300 salloc -n 2 --overcommit --time=10 sh "$SCRATCH/job.sh"
expect_status 0 "salloc"
expect_in "$SCRATCH/out" "daemon 143" "muond exits 128 + SIGTERM"
expect_match "$SCRATCH/daemon.err" "stopping on SIGTERM after [0-9]+ complete step" "muond says why it stops"
expect_match "$SCRATCH/trainers.err" "muond stopped on SIGTERM before step [0-9]+" "the trainers hear why"
[ -z "$(ls -A "$MUOND_SOCKET_DIR" 2>/dev/null)" ] || fail "sockets left: $(ls "$MUOND_SOCKET_DIR")"
finish
