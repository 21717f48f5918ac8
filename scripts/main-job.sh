#!/bin/sh
# Installs the dependencies, builds muond and runs its main job on the embedded default: a
# 4-rank daemon on this machine training the GPT-2-small layout (tests/data/layouts) for
# three steps with the synthetic trainer, then printing the digest of the final weights.
# (The socket trainers of issue 4 will replace the synthetic trainer here.)
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
if [ "$(id -u)" -eq 0 ]; then
    # Open MPI refuses to start as root unless told; the README's commands run as root.
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
mpiexec -n 4 --oversubscribe ./build/launcher/muond run \
    --layout tests/data/layouts/gpt2-small.json --trainer synthetic --steps 3 --digest
