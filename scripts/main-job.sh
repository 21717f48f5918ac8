#!/bin/sh
# Installs the dependencies, builds muond and runs its main job on the embedded defaults.
# Until the daemon lands (issue 3/4) the main job is the kernel benchmark: every
# orthogonalization method on the default shapes, against the GEMM rate of this machine.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
./build/launcher/muond bench kernels
