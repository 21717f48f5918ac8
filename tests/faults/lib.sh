# Helpers for the fault tests (sourced after tests/cli/lib.sh): muond under mpiexec with the
# synthetic trainer, the fault-free digest to compare against, and a clock.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" # see tests/mpi/mpiexec.sh
export MUOND_LOG=warn
LAYOUTS="$(cd "$(dirname "$0")/../data/layouts" && pwd)"
TINY=$LAYOUTS/tiny.json
# A bound on how long a stopped job may take (start-up, one deadline, the roll call, the
# teardown, with room for the sanitizers), far below a hang's forever.
BOUNDED_S=60

# run_muond RANKS [--mpiexec-flag]... -- MUOND-RUN-ARGS...: output in $SCRATCH/out, err.
run_muond() {
    ranks=$1
    shift
    flags=""
    while [ "$1" != "--" ]; do flags="$flags $1"; shift; done
    shift
    started=$(date +%s)
    # shellcheck disable=SC2086 # flags are words
    run_capture timeout 300 "$MPIEXEC" $flags -n "$ranks" --oversubscribe "$MUOND" run \
        --trainer synthetic --seed 5 "$@"
    ELAPSED=$(($(date +%s) - started))
}

digest_of_run() { grep '^digest' "$SCRATCH/out" || true; }

# clean_digest RANKS STEPS [LAYOUT]: the fault-free run's digest.
clean_digest() {
    run_muond "$1" -- --layout "${3:-$TINY}" --steps "$2" --digest
    expect_status 0 "fault-free run on $1 rank(s)"
    digest_of_run
}

expect_same() { # expect_same GOT WANT DESCRIPTION
    if [ -z "$1" ] || [ "$1" != "$2" ]; then fail "$3: '$1', expected '$2'"; fi
}

expect_bounded() { # expect_bounded DESCRIPTION
    expect_leq "$ELAPSED" "$BOUNDED_S" "$1 stopped within $BOUNDED_S s"
}
