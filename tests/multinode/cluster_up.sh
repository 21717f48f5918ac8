#!/bin/sh
# Fixture setup: a Slurm cluster of $NODES network-namespace nodes with 2 Gbit/s links. Each
# node has its own hostname and address, no route out of 198.18.0.0/15, and runs tasks.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
have_slurm || { echo "SKIPPED: Slurm is not installed"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "SKIPPED: several nodes need root (network namespaces)"; exit 77; }
"$LOCAL_CLUSTER" down --dir "$CLUSTER" 2>/dev/null || true # a run that was killed
run_capture "$LOCAL_CLUSTER" up --dir "$CLUSTER" --port "$CLUSTER_PORT" --nodes "$NODES" \
    --link-gbit "$LINK_GBIT"
expect_status 0 "up --nodes $NODES"
[ "$STATUS" -eq 0 ] || { cat "$SCRATCH/err" >&2; finish; }
expect_in "$SCRATCH/out" "export SLURM_CONF=$CLUSTER/slurm.conf" "up prints the client setting"
expect_in "$SCRATCH/err" "$NODES nodes on 198.18." "up names the nodes' subnet"
run_capture sinfo -h -N -t idle -o %N
expect_status 0 "sinfo answers"
[ "$(sort -u "$SCRATCH/out" | wc -l)" -eq "$NODES" ] || fail "not $NODES idle nodes: $(cat "$SCRATCH/out")"
# One task per node: each sees its own hostname, address and route table.
run_capture timeout 60 srun -N "$NODES" -n "$NODES" --mpi=none sh -c \
    'echo "$(hostname) $(ip -o -4 addr show dev eth0 | awk "{print \$4}") $(ip route | grep -c default)"'
expect_status 0 "srun -N $NODES"
[ "$(awk '{print $1}' "$SCRATCH/out" | sort -u | wc -l)" -eq "$NODES" ] ||
    fail "the tasks do not see $NODES hostnames: $(cat "$SCRATCH/out")"
expect_match "$SCRATCH/out" "^$(node_name 1) 198\.18\.[0-9]+\.11/24 0$" "node 1's name, address, no default route"
[ "$(awk '$3 != 0' "$SCRATCH/out" | wc -l)" -eq 0 ] || fail "a node has a route out: $(cat "$SCRATCH/out")"
# The links are shaped.
run_capture tc qdisc show dev "$(awk 'NR == 1 {print $3}' "$CLUSTER/nodes")"
expect_match "$SCRATCH/out" "tbf .*rate ${LINK_GBIT}Gbit" "node 1's link is shaped to $LINK_GBIT Gbit/s"
finish
