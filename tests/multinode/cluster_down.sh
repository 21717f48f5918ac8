#!/bin/sh
# Fixture cleanup: `down` leaves no daemon, task, namespace, link or private mount behind.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
have_slurm || { echo "SKIPPED: Slurm is not installed"; exit 77; }
[ -f "$CLUSTER/pids" ] || { echo "SKIPPED: no cluster was started in $CLUSTER"; exit 77; }
prefix=$(cat "$CLUSTER/network")
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
netns=$(ip netns list | grep "^$prefix-" || true)
[ -z "$netns" ] || fail "namespaces left: $netns"
links=$(ip -o link show | grep -E ": ${prefix}[bvp][0-9]*[:@]" || true)
[ -z "$links" ] || fail "links left: $links"
mounts=$(grep -l "$CLUSTER/node-tmp" /proc/[0-9]*/mountinfo 2>/dev/null || true)
[ -z "$mounts" ] || fail "private mounts left in: $mounts"
[ ! -e "$CLUSTER/node-tmp" ] || fail "the nodes' private /tmp directories are left"
run_capture "$LOCAL_CLUSTER" status --dir "$CLUSTER"
expect_status 3 "status says down"
finish
