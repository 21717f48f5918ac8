#!/bin/sh
# Trains the example MLP with muond on this machine: starts `mpiexec -n P muond run` with the
# example layout for METHOD, then P example trainers (client/examples/mlp_trainer.c), waits for
# them, and tears everything down by PID (also on failure or Ctrl-C).
#   scripts/train-example.sh [--method polar-express|ns5|shampoo|adamw] [--layout FILE] [--steps N]
#                            [--ranks P] [--csv FILE] [--build DIR]
# Rank 0's trainer prints the training and held-out loss per step.
set -eu
cd "$(dirname "$0")/.."

method=polar-express
steps=200
ranks=4
csv=""
build=build
layout=
while [ $# -gt 0 ]; do
    case "$1" in
    --method) method=$2; shift 2 ;;
    --layout) layout=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --ranks) ranks=$2; shift 2 ;;
    --csv) csv=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    *) echo "train-example: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -n "$layout" ] || layout=tests/data/layouts/mlp-$method.json
[ -f "$layout" ] || { echo "train-example: no layout $layout" >&2; exit 2; }
muond=$build/launcher/muond
trainer=$build/client/mlp_trainer

if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# One name for the daemon and its trainers, unique to this run.
export MUOND_JOB="example-$$"
MUOND_LAYOUT_DIGEST=$("$muond" check --layout "$layout" --print-digest)
export MUOND_LAYOUT_DIGEST

pids=""
cleanup() {
    for pid in $pids; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $pids; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

# Under AddressSanitizer (the test suite's sanitizer pass) the ranks mpiexec starts run
# without leak checks: Open MPI's unloaded components make those reports unattributable.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    mpiexec -n "$ranks" --oversubscribe "$muond" run --layout "$layout" --trainer socket \
    --trainer-timeout 60 &
daemon=$!
pids="$daemon"

# Wait until every rank listens (up to 60 s).
for rank in $(seq 0 $((ranks - 1))); do
    path=$(OMPI_COMM_WORLD_RANK=$rank "$muond" run --print-socket)
    tries=0
    until [ -S "$path" ]; do
        tries=$((tries + 1))
        if [ $tries -gt 600 ] || ! kill -0 "$daemon" 2>/dev/null; then
            echo "train-example: muond did not start listening on $path" >&2
            exit 1
        fi
        sleep 0.1
    done
done

trainers=""
for rank in $(seq 0 $((ranks - 1))); do
    if [ "$rank" -eq 0 ] && [ -n "$csv" ]; then
        "$trainer" --rank "$rank" --steps "$steps" --csv "$csv" &
    else
        "$trainer" --rank "$rank" --steps "$steps" >/dev/null &
    fi
    trainers="$trainers $!"
    pids="$pids $!"
done

status=0
for pid in $trainers; do
    wait "$pid" || status=1
done
wait "$daemon" || status=1
pids=""
exit $status
