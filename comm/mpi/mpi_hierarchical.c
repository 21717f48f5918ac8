/* The node-aware two-stage all-to-all (see mpi_hierarchical.h). */
#include "comm/mpi/mpi_hierarchical.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "comm/mpi/mpi_check.h"

struct mu_hier {
    MPI_Comm node, rail; /* this node's ranks; one rank per node, of this local rank */
    int nodes, per_node; /* n, g */
    int node_id, local;  /* (a, i) of this rank */
    int *world_of;       /* [n g]: the world rank of (b, j) at b g + j */
};

enum stage { STAGE_COUNTS, STAGE_NODE, STAGE_RAIL, STAGE_DONE };
static const char *const stage_names[] = {"hierarchical alltoallv: counts within the node",
                                          "hierarchical alltoallv: data within the node",
                                          "hierarchical alltoallv: data between nodes",
                                          "hierarchical alltoallv: done"};

struct mu_hier_op {
    const mu_hier_t *h;
    enum stage stage;
    MPI_Request request;
    const char *send;
    char *recv;
    int64_t *args;     /* [4 P]: send counts, send displs, recv counts, recv displs */
    int64_t *forward;  /* [g n]: to local j, the bytes for (b, j), at j n + b */
    int64_t *incoming; /* [g n]: from local i, the bytes it sends me for (b, me), at i n + b */
    int *counts;       /* [4 max(g, n)]: the stage's MPI counts and displacements */
    char *out, *in;    /* the stage's packed buffers, of out_cap and in_cap bytes */
    int64_t out_cap, in_cap;
};

/* ---- the node map ------------------------------------------------------------------------ */

static mu_status_t split_nodes(MPI_Comm world, int node_ranks, MPI_Comm *node)
{
    int rank;
    MU_MPI_CHECK(MPI_Comm_rank(world, &rank));
    if (node_ranks > 0)
        MU_MPI_CHECK(MPI_Comm_split(world, rank / node_ranks, rank, node));
    else
        MU_MPI_CHECK(MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, node));
    return MU_OK;
}

/* Nodes numbered by their lowest world rank, as the placement log numbers them. */
static mu_status_t number_nodes(MPI_Comm world, mu_hier_t *h)
{
    int rank, ids[2] = {0, 0};
    MU_MPI_CHECK(MPI_Comm_rank(world, &rank));
    MPI_Comm leaders;
    MU_MPI_CHECK(MPI_Comm_split(world, h->local == 0 ? 0 : MPI_UNDEFINED, rank, &leaders));
    if (leaders != MPI_COMM_NULL) {
        MU_MPI_CHECK(MPI_Comm_rank(leaders, &ids[0]));
        MU_MPI_CHECK(MPI_Comm_size(leaders, &ids[1]));
        MU_MPI_CHECK(MPI_Comm_free(&leaders));
    }
    MU_MPI_CHECK(MPI_Bcast(ids, 2, MPI_INT, 0, h->node));
    h->node_id = ids[0];
    h->nodes = ids[1];
    return MU_OK;
}

static mu_status_t check_uniform(MPI_Comm world, const mu_hier_t *h)
{
    int sizes[2] = {h->per_node, -h->per_node};
    MU_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MAX, world));
    if (sizes[0] != -sizes[1])
        return mu_error(MU_ERR_INVALID,
                        "--exchange hierarchical needs as many ranks on every node (they hold "
                        "%d to %d here): place the same number per node, or use --exchange flat",
                        -sizes[1], sizes[0]);
    return MU_OK;
}

static mu_status_t map_ranks(MPI_Comm world, mu_hier_t *h)
{
    int rank, size;
    MU_MPI_CHECK(MPI_Comm_rank(world, &rank));
    MU_MPI_CHECK(MPI_Comm_size(world, &size));
    int *slot_of = malloc(sizeof(int) * (size_t)size);
    h->world_of = malloc(sizeof(int) * (size_t)size);
    if (!slot_of || !h->world_of) {
        free(slot_of);
        return mu_error(MU_ERR_NOMEM, "hierarchical exchange: cannot allocate the rank map");
    }
    const int slot = h->node_id * h->per_node + h->local;
    const int rc = MPI_Allgather(&slot, 1, MPI_INT, slot_of, 1, MPI_INT, world);
    for (int r = 0; rc == MPI_SUCCESS && r < size; r++)
        h->world_of[slot_of[r]] = r;
    free(slot_of);
    MU_MPI_CHECK(rc);
    return MU_OK;
}

mu_status_t mu_hier_create(MPI_Comm world, int node_ranks, mu_hier_t **out)
{
    mu_hier_t *h = calloc(1, sizeof *h);
    if (!h)
        return mu_error(MU_ERR_NOMEM, "hierarchical exchange: cannot allocate");
    h->node = h->rail = MPI_COMM_NULL;
    mu_status_t status = split_nodes(world, node_ranks, &h->node);
    if (status == MU_OK && (MPI_Comm_rank(h->node, &h->local) != MPI_SUCCESS ||
                            MPI_Comm_size(h->node, &h->per_node) != MPI_SUCCESS))
        status = mu_error(MU_ERR_MPI, "hierarchical exchange: cannot query the node");
    MU_TRY(status, number_nodes(world, h));
    MU_TRY(status, check_uniform(world, h));
    MU_TRY(status, map_ranks(world, h));
    if (status == MU_OK && MPI_Comm_split(world, h->local, h->node_id, &h->rail) != MPI_SUCCESS)
        status = mu_error(MU_ERR_MPI, "hierarchical exchange: cannot make the rails");
    if (status != MU_OK) {
        mu_hier_destroy(&h);
        return status;
    }
    *out = h;
    return MU_OK;
}

void mu_hier_destroy(mu_hier_t **h)
{
    if (!*h)
        return;
    if ((*h)->node != MPI_COMM_NULL)
        MPI_Comm_free(&(*h)->node);
    if ((*h)->rail != MPI_COMM_NULL)
        MPI_Comm_free(&(*h)->rail);
    free((*h)->world_of);
    free(*h);
    *h = NULL;
}

int mu_hier_nodes(const mu_hier_t *h)
{
    return h->nodes;
}

/* ---- one operation ---------------------------------------------------------------------- */

static int64_t *arg(const mu_hier_op_t *op, int which) /* 0..3 as in op->args */
{
    return op->args + (size_t)which * (size_t)(op->h->nodes * op->h->per_node);
}

static int64_t bytes_to(const mu_hier_op_t *op, int node, int local)
{
    return arg(op, 0)[op->h->world_of[node * op->h->per_node + local]];
}

static int64_t bytes_from(const mu_hier_op_t *op, int node, int local)
{
    return arg(op, 2)[op->h->world_of[node * op->h->per_node + local]];
}

/* counts[0..k) = per-peer totals; displacements after them; false if one exceeds int. */
static bool set_counts(int *counts, const int64_t *totals, int k, int *displs)
{
    int64_t at = 0;
    for (int p = 0; p < k; p++) {
        if (totals[p] > INT_MAX || at > INT_MAX)
            return false;
        counts[p] = (int)totals[p];
        displs[p] = (int)at;
        at += totals[p];
    }
    return at <= INT_MAX;
}

static mu_status_t start_counts(mu_hier_op_t *op)
{
    const mu_hier_t *h = op->h;
    for (int j = 0; j < h->per_node; j++)
        for (int b = 0; b < h->nodes; b++)
            op->forward[j * h->nodes + b] = bytes_to(op, b, j);
    op->stage = STAGE_COUNTS;
    MU_MPI_CHECK(MPI_Ialltoall(op->forward, h->nodes, MPI_INT64_T, op->incoming, h->nodes,
                               MPI_INT64_T, h->node, &op->request));
    return MU_OK;
}

/* memcpy of bytes from from + from_at to to + to_at; an empty segment touches nothing (the
 * caller's buffers may be NULL where it sends or receives nothing). */
static void copy_segment(char *to, int64_t to_at, const char *from, int64_t from_at, int64_t bytes)
{
    if (bytes > 0)
        memcpy(to + to_at, from + from_at, (size_t)bytes);
}

/* At least one byte: MPI and the copies get a real pointer even for an empty stage. */
static mu_status_t reserve(char **buf, int64_t *cap, int64_t bytes)
{
    if (*buf && bytes <= *cap)
        return MU_OK;
    free(*buf);
    bytes = bytes > 0 ? bytes : 1;
    *buf = malloc((size_t)bytes);
    *cap = *buf ? bytes : 0;
    return *buf ? MU_OK
                : mu_error(MU_ERR_NOMEM, "hierarchical exchange: cannot allocate %lld bytes",
                           (long long)bytes);
}

static int64_t total(const int64_t *v, int k)
{
    int64_t sum = 0;
    for (int p = 0; p < k; p++)
        sum += v[p];
    return sum;
}

/* The stage's Ialltoallv over comm's peers, from op->out into op->in (reserved already). */
static mu_status_t start_alltoallv(mu_hier_op_t *op, MPI_Comm comm, int peers,
                                   const int64_t *out_totals, const int64_t *in_totals)
{
    int *c = op->counts;
    if (!set_counts(c, out_totals, peers, c + peers) ||
        !set_counts(c + 2 * peers, in_totals, peers, c + 3 * peers))
        return mu_error(MU_ERR_INVALID, "%s: more than 2 GiB for one peer", stage_names[op->stage]);
    MU_MPI_CHECK(MPI_Ialltoallv(op->out, c, c + peers, MPI_BYTE, op->in, c + 2 * peers,
                                c + 3 * peers, MPI_BYTE, comm, &op->request));
    return MU_OK;
}

/* To local j: this rank's segments for (0, j), (1, j), ... in node order. */
static mu_status_t start_node_stage(mu_hier_op_t *op, int64_t *totals)
{
    const mu_hier_t *h = op->h;
    MU_CHECK(reserve(&op->out, &op->out_cap, total(op->forward, h->nodes * h->per_node)));
    MU_CHECK(reserve(&op->in, &op->in_cap, total(op->incoming, h->nodes * h->per_node)));
    char *at = op->out;
    for (int j = 0; j < h->per_node; j++) {
        totals[j] = 0;
        for (int b = 0; b < h->nodes; b++) {
            const int64_t n = op->forward[j * h->nodes + b];
            copy_segment(at, 0, op->send, arg(op, 1)[h->world_of[b * h->per_node + j]], n);
            at += n;
            totals[j] += n;
        }
    }
    for (int i = 0; i < h->per_node; i++) {
        totals[h->per_node + i] = 0;
        for (int b = 0; b < h->nodes; b++)
            totals[h->per_node + i] += op->incoming[i * h->nodes + b];
    }
    op->stage = STAGE_NODE;
    return start_alltoallv(op, h->node, h->per_node, totals, totals + h->per_node);
}

/* What the node stage brought: segments from each local i for every (b, me); this node's go
 * into place, the others are packed for rail peer b in order of i. */
static mu_status_t start_rail_stage(mu_hier_op_t *op, int64_t *totals)
{
    const mu_hier_t *h = op->h;
    const int n = h->nodes, g = h->per_node;
    for (int i = 0; i < g; i++)
        if (op->incoming[i * n + h->node_id] != bytes_from(op, h->node_id, i))
            return mu_error(MU_ERR_INVALID,
                            "hierarchical alltoallv: world rank %d sends %lld bytes where %lld "
                            "are expected (mismatched counts)",
                            h->world_of[h->node_id * g + i],
                            (long long)op->incoming[i * n + h->node_id],
                            (long long)bytes_from(op, h->node_id, i));
    for (int b = 0; b < n; b++)
        for (int i = 0; i < g && b != h->node_id; i++)
            totals[b] += op->incoming[i * n + b];
    for (int c = 0; c < n; c++)
        for (int i = 0; i < g && c != h->node_id; i++)
            totals[n + c] += bytes_from(op, c, i);
    /* The node stage's data is read while this stage's is packed: a buffer each. */
    char *node_data = op->in;
    op->in = NULL;
    op->in_cap = 0;
    mu_status_t status = reserve(&op->out, &op->out_cap, total(totals, n));
    MU_TRY(status, reserve(&op->in, &op->in_cap, total(totals + n, n)));
    int64_t *rail_at = status == MU_OK ? calloc((size_t)n, sizeof *rail_at) : NULL;
    if (!rail_at) {
        free(node_data);
        return status != MU_OK ? status
                               : mu_error(MU_ERR_NOMEM, "hierarchical exchange: cannot allocate");
    }
    for (int b = 1; b < n; b++)
        rail_at[b] = rail_at[b - 1] + totals[b - 1];
    const char *from = node_data;
    for (int i = 0; i < g; i++)
        for (int b = 0; b < n; b++) {
            const int64_t bytes = op->incoming[i * n + b];
            if (b == h->node_id)
                copy_segment(op->recv, arg(op, 3)[h->world_of[h->node_id * g + i]], from, 0, bytes);
            else
                copy_segment(op->out, rail_at[b], from, 0, bytes);
            rail_at[b] += b == h->node_id ? 0 : bytes;
            from += bytes;
        }
    free(rail_at);
    free(node_data);
    op->stage = STAGE_RAIL;
    return start_alltoallv(op, h->rail, n, totals, totals + n);
}

/* From rail peer c: the segments of (c, 0), (c, 1), ... for this rank. */
static void place_rail_data(mu_hier_op_t *op)
{
    const mu_hier_t *h = op->h;
    const char *from = op->in;
    for (int c = 0; c < h->nodes; c++)
        for (int i = 0; i < h->per_node && c != h->node_id; i++) {
            const int64_t bytes = bytes_from(op, c, i);
            copy_segment(op->recv, arg(op, 3)[h->world_of[c * h->per_node + i]], from, 0, bytes);
            from += bytes;
        }
    op->stage = STAGE_DONE;
}

mu_status_t mu_hier_start(mu_hier_t *h, const mu_alltoallv_args_t *a, mu_hier_op_t **out)
{
    const int size = h->nodes * h->per_node, wide = h->nodes > h->per_node ? h->nodes : h->per_node;
    mu_hier_op_t *op = calloc(1, sizeof *op);
    int64_t *args = op ? malloc(sizeof *args * 4 * (size_t)size) : NULL;
    int64_t *tables = op ? malloc(sizeof *tables * 2 * (size_t)size) : NULL;
    int *counts = op ? malloc(sizeof *counts * 4 * (size_t)wide) : NULL;
    if (!op || !args || !tables || !counts) {
        free(args), free(tables), free(counts), free(op);
        return mu_error(MU_ERR_NOMEM, "hierarchical exchange: cannot allocate");
    }
    *op = (mu_hier_op_t){.h = h,
                         .send = a->send,
                         .recv = a->recv,
                         .args = args,
                         .forward = tables,
                         .incoming = tables + size,
                         .counts = counts};
    memcpy(args, a->send_counts, sizeof *args * (size_t)size);
    memcpy(args + size, a->send_displs, sizeof *args * (size_t)size);
    memcpy(args + 2 * size, a->recv_counts, sizeof *args * (size_t)size);
    memcpy(args + 3 * size, a->recv_displs, sizeof *args * (size_t)size);
    const mu_status_t status = start_counts(op);
    if (status != MU_OK) {
        mu_hier_free(&op);
        return status;
    }
    *out = op;
    return MU_OK;
}

MPI_Request *mu_hier_request(mu_hier_op_t *op)
{
    return &op->request;
}

const char *mu_hier_stage(const mu_hier_op_t *op)
{
    return stage_names[op->stage];
}

mu_status_t mu_hier_advance(mu_hier_op_t *op, bool *done)
{
    const int wide = op->h->nodes > op->h->per_node ? op->h->nodes : op->h->per_node;
    int64_t *totals = calloc(2 * (size_t)wide, sizeof *totals);
    if (!totals)
        return mu_error(MU_ERR_NOMEM, "hierarchical exchange: cannot allocate");
    mu_status_t status = MU_OK;
    switch (op->stage) {
    case STAGE_COUNTS:
        status = start_node_stage(op, totals);
        break;
    case STAGE_NODE:
        status = start_rail_stage(op, totals);
        break;
    case STAGE_RAIL:
        place_rail_data(op);
        break;
    default: /* already done */
        break;
    }
    free(totals);
    *done = op->stage == STAGE_DONE;
    return status;
}

void mu_hier_free(mu_hier_op_t **op)
{
    if (!*op)
        return;
    free((*op)->args);
    free((*op)->forward);
    free((*op)->counts);
    free((*op)->out);
    free((*op)->in);
    free(*op);
    *op = NULL;
}
