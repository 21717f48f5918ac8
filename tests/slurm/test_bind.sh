#!/bin/sh
# hwloc binding under mpiexec (no cluster needed): two ranks split this host's cpus into
# disjoint sets; --bind none leaves them where the launcher put them; a cpuset imposed from
# outside (taskset, as a Slurm cgroup would) is never left; a launcher's own per-rank binding
# is kept.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
[ "$(nproc)" -ge 2 ] || { echo "SKIPPED: needs 2 cpus, this host has $(nproc)"; exit 77; }
LAYOUT="$LAYOUTS/tiny.json"

# bound RANK: the cpu list rank RANK logged ("bound to cpus 0-3,8 (of ...").
bound() { sed -n "s/.*rank $1 of 2 on .*: bound to cpus \([0-9,-]*\) .*/\1/p" "$SCRATCH/err"; }
# expand LIST: one cpu per line.
expand() {
    echo "$1" | tr ',' '\n' | awk -F- '{ hi = NF > 1 ? $2 : $1; for (c = $1; c <= hi; c++) print c }'
}
# run_two HOW: two ranks that mpiexec leaves unbound, muond --bind HOW.
run_two() {
    run_capture "$MPIEXEC" -n 2 --bind-to none "$MUOND" run --layout "$LAYOUT" \
        --trainer synthetic --steps 1 --bind "$1"
}

run_two core
expect_status 0 "--bind core"
a=$(bound 0)
b=$(bound 1)
echo "--bind core: rank 0 on cpus '$a', rank 1 on cpus '$b'"
[ -n "$a" ] && [ -n "$b" ] || fail "a rank did not log its binding"
common=$(printf '%s\n%s\n' "$(expand "$a")" "$(expand "$b")" | sort | uniq -d)
[ -z "$common" ] || fail "the two ranks share cpus: $common"
expect_match "$SCRATCH/err" "local rank 1 of 2.*core: share 2 of 2" "the split is logged"

run_two none
expect_status 0 "--bind none"
expect_match "$SCRATCH/err" "rank 0 of 2 .*not bound \(--bind none\): cpus" "rank 0 unbound"
expect_match "$SCRATCH/err" "rank 1 of 2 .*not bound \(--bind none\): cpus" "rank 1 unbound"
! grep -q "bound to cpus" "$SCRATCH/err" || fail "--bind none bound a rank"

# An imposed cpuset (cpu 1 only): both ranks stay inside it.
run_capture taskset -c 1 "$MPIEXEC" -n 2 --bind-to none --oversubscribe "$MUOND" run \
    --layout "$LAYOUT" --trainer synthetic --steps 1 --bind core
expect_status 0 "--bind core inside taskset -c 1"
[ "$(bound 0)" = 1 ] && [ "$(bound 1)" = 1 ] ||
    fail "ranks left the imposed cpuset: rank 0 '$(bound 0)', rank 1 '$(bound 1)'"

# mpiexec's own binding (one core per rank for 2 ranks) is kept.
run_capture "$MPIEXEC" -n 2 --bind-to core "$MUOND" run --layout "$LAYOUT" --trainer synthetic \
    --steps 1
expect_status 0 "--bind auto under mpiexec --bind-to core"
expect_in "$SCRATCH/err" "the launcher bound each rank, kept within it" "the launcher's binding is kept"

run_capture "$MUOND" run --layout "$LAYOUT" --trainer synthetic --steps 1 --bind sideways
expect_status 2 "a bad --bind"
expect_in "$SCRATCH/err" "bind" "the bad option is named"
finish
