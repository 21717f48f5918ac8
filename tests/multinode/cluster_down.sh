#!/bin/sh
# Fixture cleanup: `down` leaves no daemon, task, namespace, link or private mount behind.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
have_slurm || { echo "SKIPPED: Slurm is not installed"; exit 77; }
[ -f "$CLUSTER/pids" ] || { echo "SKIPPED: no cluster was started in $CLUSTER"; exit 77; }
prefix=$(cat "$CLUSTER/network")
cluster_down_leaves_nothing
netns=$(ip netns list | grep "^$prefix-" || true)
[ -z "$netns" ] || fail "namespaces left: $netns"
links=$(ip -o link show | grep -E ": ${prefix}[bvp][0-9]*[:@]" || true)
[ -z "$links" ] || fail "links left: $links"
mounts=$(grep -l "$CLUSTER/node-tmp" /proc/[0-9]*/mountinfo 2>/dev/null || true)
[ -z "$mounts" ] || fail "private mounts left in: $mounts"
[ ! -e "$CLUSTER/node-tmp" ] || fail "the nodes' private /tmp directories are left"
finish
