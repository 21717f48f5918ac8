# Helpers for the multi-node tests (sourced after tests/cli/lib.sh): the fixture's cluster is
# slurm/local-cluster with NODES network-namespace nodes in $SLURM_TEST_CLUSTER (ctest fixture
# multinode_cluster). TMPDIR, and so $SCRATCH, lies in the build tree, which every node sees.
. "$(dirname "$0")/../slurm/lib.sh"
NODES=3
LINK_GBIT=2
# Another range than the single-node fixture's (20000-29998), so that both can be up.
CLUSTER_PORT=$((CLUSTER_PORT + 10000))

# Exit 77 (skipped) where namespaces cannot be made (not root) or the fixture is not up.
need_nodes() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIPPED: several nodes need root (network namespaces)"
        exit 77
    fi
    need_cluster
}

node_name() { echo "$(cat "$CLUSTER/network")-$1"; }

# The host-side veth bytes (tx + rx) of node $1's link.
link_bytes() {
    veth=$(awk -v n="$(node_name "$1")" '$1 == n {print $3}' "$CLUSTER/nodes")
    echo $(($(cat "/sys/class/net/$veth/statistics/tx_bytes") + $(cat "/sys/class/net/$veth/statistics/rx_bytes")))
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s, fails past SECONDS.
wait_for() {
    limit=$(($1 * 5))
    what=$2
    shift 2
    tries=0
    until "$@"; do
        tries=$((tries + 1))
        if [ "$tries" -gt "$limit" ]; then
            fail "$what did not happen within $((limit / 5)) s"
            return 1
        fi
        sleep 0.2
    done
}
