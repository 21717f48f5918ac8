#!/bin/sh
# bf16 compute in the step ("compute_dtype": "bf16"): digests are bitwise per backend, so the
# distributed step on 1..4 ranks must match the single-process reference on the same backend.
#   test_digest_bf16.sh BACKEND STEPS LAYOUT...
# The reference backend's bf16 (fp64 accumulation) runs everywhere; dnnl's only where oneDNN
# has bf16 instructions (AVX512-BF16 or AMX): elsewhere this test reports itself skipped.
set -eu
backend=$1
shift
if ! "$MUOND" bench kernels --backend "$backend" --dtype bf16 --shape 8x8 \
    --method polar-express --runs 5 --warmup 0 --peer none >/dev/null 2>&1; then
    echo "skip: the $backend backend has no bf16 arithmetic on this CPU ($(grep -m1 'model name' /proc/cpuinfo))"
    exit 77
fi
MUOND_BACKEND=$backend exec sh "$(dirname "$0")/test_digest.sh" "$@"
