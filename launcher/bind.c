#include "launcher/bind.h"

#include <errno.h>
#include <hwloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/mpi/mpi_check.h"

/* Long enough for the list form of any cpuset we compare ("0-63,128-191"). */
#define CPUSET_TEXT_MAX 1024

typedef struct binder {
    hwloc_topology_t topo;
    hwloc_bitmap_t start; /* where the launcher left this process */
    hwloc_bitmap_t set;   /* where it goes */
    int index, count;     /* this rank's share among the ranks dividing `start` */
    bool bind_memory;
    char how[256];
} binder_t;

static mu_status_t load_topology(binder_t *b, bool with_pci)
{
    if (hwloc_topology_init(&b->topo) != 0)
        return mu_error(MU_ERR_NOMEM, "hwloc_topology_init: %s", strerror(errno));
    /* PCI devices only when a GPU's locality is asked for: the scan costs time. */
    if (with_pci)
        hwloc_topology_set_io_types_filter(b->topo, HWLOC_TYPE_FILTER_KEEP_IMPORTANT);
    if (hwloc_topology_load(b->topo) != 0)
        return mu_error(MU_ERR_IO, "hwloc_topology_load: %s", strerror(errno));
    b->start = hwloc_bitmap_alloc();
    b->set = hwloc_bitmap_alloc();
    if (!b->start || !b->set)
        return mu_error(MU_ERR_NOMEM, "hwloc_bitmap_alloc");
    if (hwloc_get_cpubind(b->topo, b->start, HWLOC_CPUBIND_PROCESS) != 0)
        hwloc_bitmap_copy(b->start, hwloc_topology_get_allowed_cpuset(b->topo));
    hwloc_bitmap_and(b->start, b->start, hwloc_topology_get_allowed_cpuset(b->topo));
    return MU_OK;
}

static void unload(binder_t *b)
{
    hwloc_bitmap_free(b->start);
    hwloc_bitmap_free(b->set);
    if (b->topo)
        hwloc_topology_destroy(b->topo);
}

/* Whether every rank of the node starts on the same cpuset (a node-wide one to divide), or
 * the launcher already gave each its own. */
static mu_status_t same_start_on_node(const binder_t *b, MPI_Comm node, bool *same)
{
    char mine[CPUSET_TEXT_MAX], first[CPUSET_TEXT_MAX];
    hwloc_bitmap_list_snprintf(mine, sizeof mine, b->start);
    memcpy(first, mine, sizeof first);
    MU_MPI_CHECK(MPI_Bcast(first, sizeof first, MPI_CHAR, 0, node));
    int equal = strcmp(mine, first) == 0;
    MU_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &equal, 1, MPI_INT, MPI_LAND, node));
    *same = equal;
    return MU_OK;
}

/* core: hwloc_distrib spreads `count` shares over the start set's cores, whole cores while
 * there are enough, so ranks keep their caches to themselves. */
static mu_status_t split_cores(binder_t *b)
{
    const int max_roots = hwloc_bitmap_weight(b->start);
    hwloc_obj_t *roots = calloc((size_t)max_roots + 1, sizeof *roots);
    hwloc_bitmap_t *shares = calloc((size_t)b->count, sizeof *shares);
    if (!roots || !shares) {
        free(roots);
        free(shares);
        return mu_error(MU_ERR_NOMEM, "binding: %d shares", b->count);
    }
    const int n = hwloc_get_largest_objs_inside_cpuset(b->topo, b->start, roots, max_roots + 1);
    const int core_depth = hwloc_get_type_or_below_depth(b->topo, HWLOC_OBJ_CORE);
    if (n > 0 &&
        hwloc_distrib(b->topo, roots, (unsigned)n, shares, (unsigned)b->count, core_depth, 0) == 0)
        hwloc_bitmap_copy(b->set, shares[b->index]);
    else
        hwloc_bitmap_copy(b->set, b->start);
    for (int i = 0; i < b->count; i++)
        hwloc_bitmap_free(shares[i]);
    free(shares);
    free(roots);
    snprintf(b->how, sizeof b->how, "core: share %d of %d of the node's cpus", b->index + 1,
             b->count);
    return MU_OK;
}

/* numa: the NUMA nodes that hold some of the start set, dealt out by local rank. */
static mu_status_t split_numa(binder_t *b)
{
    const int all = hwloc_get_nbobjs_by_type(b->topo, HWLOC_OBJ_NUMANODE);
    int usable = 0;
    for (int i = 0; i < all; i++)
        usable += hwloc_bitmap_intersects(
            hwloc_get_obj_by_type(b->topo, HWLOC_OBJ_NUMANODE, (unsigned)i)->cpuset, b->start);
    if (usable == 0)
        return split_cores(b);
    const int pick = (int)((long)b->index * usable / b->count);
    for (int i = 0, seen = 0; i < all; i++) {
        hwloc_obj_t numa = hwloc_get_obj_by_type(b->topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
        if (!hwloc_bitmap_intersects(numa->cpuset, b->start) || seen++ != pick)
            continue;
        hwloc_bitmap_and(b->set, numa->cpuset, b->start);
        snprintf(b->how, sizeof b->how, "numa: NUMA node %u of %d", numa->os_index, usable);
    }
    b->bind_memory = true;
    return MU_OK;
}

/* gpu: the cpus of the first non-I/O ancestor of the GPU's PCI device (its NUMA node, or
 * the package) that this process may use. */
static mu_status_t near_gpu(binder_t *b, const char *bus_id)
{
    hwloc_obj_t pci = bus_id ? hwloc_get_pcidev_by_busidstring(b->topo, bus_id) : NULL;
    hwloc_obj_t near = pci ? hwloc_get_non_io_ancestor_obj(b->topo, pci) : NULL;
    if (near)
        hwloc_bitmap_and(b->set, near->cpuset, b->start);
    if (!near || hwloc_bitmap_iszero(b->set)) {
        MU_CHECK(split_cores(b));
        char why[128];
        snprintf(why, sizeof why, " (%s%s)", bus_id ? "hwloc cannot place GPU " : "no GPU",
                 bus_id ? bus_id : "");
        strncat(b->how, why, sizeof b->how - strlen(b->how) - 1);
        return MU_OK;
    }
    snprintf(b->how, sizeof b->how, "gpu: the %s nearest GPU %s", hwloc_obj_type_string(near->type),
             bus_id);
    b->bind_memory = true;
    return MU_OK;
}

static mu_status_t choose(binder_t *b, const char *mode, const char *bus_id)
{
    if (strcmp(mode, "core") == 0)
        return split_cores(b);
    if (strcmp(mode, "numa") == 0)
        return split_numa(b);
    if (strcmp(mode, "gpu") == 0 || (strcmp(mode, "auto") == 0 && bus_id))
        return near_gpu(b, bus_id);
    if (strcmp(mode, "auto") == 0)
        return split_cores(b);
    return mu_error(MU_ERR_INVALID, "--bind %s: expected one of " MU_BIND_CHOICES, mode);
}

/* Applies b->set (and its memory), then reads back what the system did. */
static void apply(binder_t *b, char *report, size_t len)
{
    char note[160] = "";
    if (hwloc_set_cpubind(b->topo, b->set, HWLOC_CPUBIND_PROCESS) != 0)
        snprintf(note, sizeof note, "; binding refused (%s), left unbound", strerror(errno));
    /* Memory binding matters only with several NUMA nodes. Linux binds the policy of the
     * calling thread (a whole-process policy is not available), which the threads created
     * later (CUDA's, the communicators') inherit. */
    if (hwloc_get_nbobjs_by_type(b->topo, HWLOC_OBJ_NUMANODE) < 2)
        b->bind_memory = false;
    hwloc_bitmap_t nodes = hwloc_bitmap_alloc();
    if (b->bind_memory && nodes && !note[0]) {
        hwloc_cpuset_to_nodeset(b->topo, b->set, nodes);
        if (hwloc_set_membind(b->topo, nodes, HWLOC_MEMBIND_BIND,
                              HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) != 0)
            snprintf(note, sizeof note, "; memory not bound (%s)", strerror(errno));
    }
    char now[CPUSET_TEXT_MAX], from[CPUSET_TEXT_MAX], mem[96] = "";
    hwloc_get_cpubind(b->topo, b->set, HWLOC_CPUBIND_PROCESS);
    hwloc_bitmap_list_snprintf(now, sizeof now, b->set);
    hwloc_bitmap_list_snprintf(from, sizeof from, b->start);
    if (b->bind_memory && nodes && !note[0]) {
        char list[48];
        hwloc_bitmap_list_snprintf(list, sizeof list, nodes);
        snprintf(mem, sizeof mem, ", memory on NUMA node(s) %s", list);
    }
    hwloc_bitmap_free(nodes);
    snprintf(report, len, "bound to cpus %s%s (of %s; %s)%s", now, mem, from, b->how, note);
}

mu_status_t mu_bind_process(const mu_bind_request_t *r, MPI_Comm node, char *report, size_t len)
{
    const char *mode = r->mode ? r->mode : "auto";
    binder_t b = {.index = r->local_rank, .count = r->local_ranks};
    const bool gpu_locality = strcmp(mode, "gpu") == 0 || strcmp(mode, "auto") == 0;
    mu_status_t status = load_topology(&b, r->gpu_bus_id && gpu_locality);
    bool same = true;
    MU_TRY(status, same_start_on_node(&b, node, &same));
    if (status == MU_OK && strcmp(mode, "none") == 0) {
        char from[CPUSET_TEXT_MAX];
        hwloc_bitmap_list_snprintf(from, sizeof from, b.start);
        snprintf(report, len, "not bound (--bind none): cpus %s, as launched", from);
    } else if (status == MU_OK) {
        if (!same) { /* the launcher placed each rank: divide only our own set */
            b.index = 0;
            b.count = 1;
        }
        status = choose(&b, mode, r->gpu_bus_id);
        if (status == MU_OK && !same)
            strncat(b.how, "; the launcher bound each rank, kept within it",
                    sizeof b.how - strlen(b.how) - 1);
        if (status == MU_OK)
            apply(&b, report, len);
    }
    unload(&b);
    return status;
}
