/*
 * The node-aware all-to-all of the MPI backend (--exchange hierarchical): a segment from rank
 * (node a, local rank i) to (b, j) goes first to (a, j) inside node a, then to (b, j) over
 * the "rail" of local rank j: every rank then talks to its node's ranks and to one rank per
 * other node (g - 1 + n - 1 peers instead of g n - 1), and the bytes that cross node links are
 * the same. The data arrives as MPI_Ialltoallv would put it, byte for byte.
 *
 * Four stages, each one nonblocking MPI call on a sub-communicator: the counts inside the node
 * (what each rank forwards), the data inside the node, the data along the rail, then the copy
 * into place. mu_hier_advance runs the local work between them.
 */
#ifndef MU_COMM_MPI_HIERARCHICAL_H
#define MU_COMM_MPI_HIERARCHICAL_H

#include <mpi.h>
#include <stdbool.h>

#include "comm/comm.h"

typedef struct mu_hier mu_hier_t;
typedef struct mu_hier_op mu_hier_op_t;

/* Collective over world. Nodes are the shared-memory groups, or every node_ranks consecutive
 * ranks when node_ranks > 0 (tests on one host). Refuses nodes of unequal rank counts. */
mu_status_t mu_hier_create(MPI_Comm world, int node_ranks, mu_hier_t **out);
void mu_hier_destroy(mu_hier_t **h);
int mu_hier_nodes(const mu_hier_t *h);

/* Starts the first stage; a's buffers must stay valid until the operation is freed. */
mu_status_t mu_hier_start(mu_hier_t *h, const mu_alltoallv_args_t *a, mu_hier_op_t **out);
/* The request of the stage in flight (poll it; when it completes, call mu_hier_advance). */
MPI_Request *mu_hier_request(mu_hier_op_t *op);
/* The stage's name, for deadline messages. */
const char *mu_hier_stage(const mu_hier_op_t *op);
/* After the stage's request completed: the local work, then the next stage; *done once the
 * data is in place. */
mu_status_t mu_hier_advance(mu_hier_op_t *op, bool *done);
void mu_hier_free(mu_hier_op_t **op);

#endif
