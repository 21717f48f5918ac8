# Helpers for the Slurm tests (sourced after tests/cli/lib.sh). The cluster is the one
# slurm_cluster_up started in $SLURM_TEST_CLUSTER (ctest fixture slurm_cluster); its port
# comes from the directory, so that two build trees never share one.
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LOCAL_CLUSTER="$ROOT/slurm/local-cluster"
CLUSTER="${SLURM_TEST_CLUSTER:?set by ctest}"
CLUSTER_PORT=$((20000 + $(printf '%s' "$CLUSTER" | cksum | cut -d' ' -f1) % 5000 * 2))
export SLURM_CONF="$CLUSTER/slurm.conf"
export MUOND_SOCKET_DIR="$SCRATCH/sockets"
export MUOND_LOG=info # the tests read the daemon's placement and progress lines
# Leak checks off for the ranks srun and mpiexec start (see tests/mpi/mpiexec.sh for why).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
LAYOUTS="$ROOT/tests/data/layouts"
BUILD="$(cd "$(dirname "$MUOND")/.." && pwd)"

have_slurm() {
    command -v srun >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1 &&
        { command -v slurmctld >/dev/null 2>&1 || [ -x /usr/sbin/slurmctld ]; }
}

# Exit 77 (skipped) unless the fixture's cluster is up.
need_cluster() {
    if ! have_slurm; then
        echo "SKIPPED: Slurm is not installed (apt-get install slurm-wlm slurmctld slurmd munge)"
        exit 77
    fi
    if ! "$LOCAL_CLUSTER" status --dir "$CLUSTER" >/dev/null 2>&1; then
        echo "SKIPPED: the local cluster in $CLUSTER is not up (slurm_cluster_up failed?)"
        exit 77
    fi
}

# example_job TRAINER_ARGS: begins $SCRATCH/job.sh, the script of an allocation, with the two
# steps slurm/muond.sbatch runs, both in the background: muond on the example layout ($daemon;
# output in $SCRATCH/daemon.*) and the example trainers with TRAINER_ARGS ($trainers; output in
# $SCRATCH/trainers.*). The caller appends how the job ends.
example_job() {
    LAYOUT="$LAYOUTS/mlp-polar-express.json"
    TRAINER_ARGS=$1
    MUOND_LAYOUT_DIGEST=$("$MUOND" check --layout "$LAYOUT" --print-digest)
    export MUOND_LAYOUT_DIGEST MUOND SCRATCH LAYOUT MLP_TRAINER TRAINER_ARGS
    cat >"$SCRATCH/job.sh" <<'JOB'
srun --mpi=pmix --overlap "$MUOND" run --layout "$LAYOUT" \
    >"$SCRATCH/daemon.out" 2>"$SCRATCH/daemon.err" &
daemon=$!
# shellcheck disable=SC2086  # TRAINER_ARGS holds several arguments
srun --mpi=none --overlap "$MLP_TRAINER" $TRAINER_ARGS \
    >"$SCRATCH/trainers.out" 2>"$SCRATCH/trainers.err" &
trainers=$!
JOB
}

# The last held-out loss in a trainer's CSV (step,train,eval).
final_eval() { tail -n 1 "$1" | awk -F, '{print $3}'; }

# cluster_down_leaves_nothing: `down` of the fixture's cluster, then no recorded daemon, no
# process carrying its mark (slurmstepd, job tasks), no muond or trainer of this build (the
# cluster tests run alone: RUN_SERIAL), and `status` says down.
cluster_down_leaves_nothing() {
    pids=$(awk '{print $2}' "$CLUSTER/pids" | tr '\n' ' ')
    run_capture "$LOCAL_CLUSTER" down --dir "$CLUSTER"
    expect_status 0 "down"
    for pid in $pids; do
        ! kill -0 "$pid" 2>/dev/null || fail "daemon $pid still running after down"
    done
    left=$(grep -lzxF "MUOND_LOCAL_CLUSTER=$CLUSTER" /proc/[0-9]*/environ 2>/dev/null || true)
    [ -z "$left" ] || fail "processes of the cluster left: $left"
    strays=$(pgrep -f "$BUILD/(launcher/muond|client/mlp_trainer)" || true)
    [ -z "$strays" ] || fail "muond or trainer processes left: $strays"
    run_capture "$LOCAL_CLUSTER" status --dir "$CLUSTER"
    expect_status 3 "status says down"
}
