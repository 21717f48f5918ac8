#!/bin/sh
# `muond run --comm loopback` is one process without MPI: its digest equals the reference's,
# and (in the sanitizer pass) LeakSanitizer checks all of muond's own memory on this path.
. "$(dirname "$0")/lib.sh"
LAYOUTS="$(dirname "$0")/../data/layouts"

for name in tiny edge-shapes convnet tiny-local adamw-only; do
    want=$("$STEP_REFERENCE" "$LAYOUTS/$name.json" 2 5 1)
    run_capture "$MUOND" run --comm loopback --trainer synthetic --layout "$LAYOUTS/$name.json" \
        --steps 2 --seed 5 \
        --digest
    expect_status 0 "$name"
    got=$(grep '^digest' "$SCRATCH/out" || true)
    echo "$name: $got (reference $want)"
    [ "$got" = "$want" ] || fail "$name: '$got' differs from the reference '$want'"
done

run_capture "$MUOND" run --comm loopback --trainer synthetic --steps 1 \
    --layout "$LAYOUTS/bad/unknown-method.json"
expect_status 2 "bad layout"
expect_in "$SCRATCH/err" "muond run (rank 0): INVALID" "bad layout names the rank"
finish
