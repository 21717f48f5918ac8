# Helpers for the trainer-interface tests (sourced after tests/cli/lib.sh): start a daemon with
# its own job name and socket directory, wait for its sockets, and stop everything by PID.
export MUOND_JOB="test-$$"
export MUOND_SOCKET_DIR="$SCRATCH/sockets"
export MUOND_LOG=info # the tests read the daemon's progress lines
PIDS=""

stop_all() {
    for pid in $PIDS; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in $PIDS; do wait "$pid" 2>/dev/null || true; done
    PIDS=""
}
trap 'stop_all; rm -rf "$SCRATCH"' EXIT

digest_of() { "$MUOND" check --layout "$1" --print-digest; }

socket_of() { OMPI_COMM_WORLD_RANK=$1 "$MUOND" run --print-socket; }

# start_daemon RANKS LAYOUT [muond run options...]: sets DAEMON; output in $SCRATCH/daemon.*
start_daemon() {
    ranks=$1
    layout=$2
    shift 2
    # Leak checks off for mpiexec's ranks only (see tests/mpi/test_digest.sh for why).
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
        "$MPIEXEC" -n "$ranks" --oversubscribe "$MUOND" run --layout "$layout" "$@" \
        >"$SCRATCH/daemon.out" 2>"$SCRATCH/daemon.err" &
    DAEMON=$!
    PIDS="$PIDS $DAEMON"
    for r in $(seq 0 $((ranks - 1))); do
        tries=0
        until [ -S "$(socket_of "$r")" ]; do
            tries=$((tries + 1))
            [ $tries -lt 300 ] && kill -0 "$DAEMON" 2>/dev/null || {
                fail "the daemon did not start listening"; cat "$SCRATCH/daemon.err" >&2; finish; }
            sleep 0.1
        done
    done
}

# wait_pid PID SECONDS: the exit status, or 124 if it had to be killed.
wait_pid() {
    waited=0
    while kill -0 "$1" 2>/dev/null && [ "$waited" -lt $(($2 * 10)) ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$1" 2>/dev/null; then
        kill -9 "$1" 2>/dev/null || true
        wait "$1" 2>/dev/null || true
        return 124
    fi
    wait "$1"
}
