#!/bin/sh
# Fuzzes the trainer protocol's decoders with libFuzzer (clang, with AddressSanitizer and
# UBSan) for a bounded time, starting from the committed corpus (tests/fuzz/corpus). New
# interesting inputs go to build-fuzz/corpus; a crash leaves its input in build-fuzz/ and
# fails the script.
#   scripts/fuzz.sh [SECONDS]      (default 60)
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
./scripts/install-deps.sh
mkdir -p build-fuzz/corpus
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iclient \
    tests/fuzz/fuzz_protocol.c client/protocol.c -o build-fuzz/fuzz_protocol
cd build-fuzz
./fuzz_protocol -max_total_time="$seconds" -print_final_stats=1 -artifact_prefix=./ \
    corpus ../tests/fuzz/corpus
