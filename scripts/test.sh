#!/bin/sh
# Installs the dependencies, builds muond and runs the whole test suite with ctest.
#   scripts/test.sh              Release build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build in
#                                build-sanitize/, the same tests but the long quality runs
#                                (label slow) and the Python ones (label python: the client
#                                library would be loaded into an uninstrumented python3)
# Warnings are errors here: this is also CI's gate.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

build_dir=build
config="-DCMAKE_BUILD_TYPE=Release"
select=
if [ "${1:-}" = "--sanitize" ]; then
    build_dir=build-sanitize
    config="-DCMAKE_BUILD_TYPE=RelWithDebInfo -DMUOND_SANITIZE=address,undefined"
    # Leak checks on; a sanitizer report fails the test that produced it.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    # The long quality runs (label slow) and the Python tests stay in the regular pass only.
    select="-LE slow|python"
fi

jobs=$(nproc)
# shellcheck disable=SC2086  # $config holds several arguments
cmake -S . -B "$build_dir" -DMUOND_WERROR=ON $config
cmake --build "$build_dir" -j"$jobs"
# shellcheck disable=SC2086  # $select is empty or two arguments
ctest --test-dir "$build_dir" --output-on-failure -j"$jobs" $select
