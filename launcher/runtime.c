#include "launcher/runtime.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/mpi/mpi_check.h"
#include "core/log.h"
#ifdef MUOND_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif
#include "launcher/commands.h"
#include "launcher/options.h"
#include "launcher/stop.h"
#include "shard/synthetic.h"

/* A loopback run is one process without MPI: no runtime to start, nothing to leak. */
static bool wants_mpi(const mu_runtime_opts_t *o)
{
    return !(o->comm && strcmp(o->comm, "loopback") == 0);
}

static mu_status_t start_mpi(int *argc, char ***argv, mu_runtime_t *rt, MPI_Comm *node)
{
    MU_CHECK(mu_launch_prepare());
    int initialized = 0;
    MU_MPI_CHECK(MPI_Initialized(&initialized));
    if (!initialized)
        MU_MPI_CHECK(MPI_Init(argc, argv));
    rt->mpi_started = !initialized;
    MU_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rt->rank));
    MU_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &rt->ranks));
    mu_log_set_rank(rt->rank);
    return mu_placement_discover(&rt->place, node);
}

/* With GPUs, the ranks of a node spread over them by local rank, before anything touches
 * CUDA; without, the reason is logged once and the CPU backends serve. Writes the chosen
 * GPU's PCI bus id into bus_id (for the binding), or leaves it empty. */
static void select_gpu(const mu_runtime_t *rt, char *bus_id, size_t len)
{
    bus_id[0] = '\0';
#ifdef MUOND_HAVE_CUDA
    char why[256] = "";
    const int device = mu_cuda_select_device(rt->place.local_rank, why, sizeof why);
    if (device >= 0 && mu_cuda_current_bus_id(bus_id, len) != 0)
        bus_id[0] = '\0';
    if (device >= 0)
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "local rank %d uses GPU %d (%s)", rt->place.local_rank,
               device, bus_id);
#else
    (void)rt, (void)len;
#endif
}

/* Where this rank runs and what it is bound to, in one line per rank. */
static mu_status_t place_and_bind(const mu_runtime_opts_t *o, mu_runtime_t *rt, MPI_Comm node)
{
    char bus_id[32], binding[512] = "not bound (one process without MPI)";
    select_gpu(rt, bus_id, sizeof bus_id);
    if (node != MPI_COMM_NULL) {
        const mu_bind_request_t req = {o->bind, rt->place.local_rank, rt->place.local_ranks,
                                       bus_id[0] ? bus_id : NULL};
        MU_CHECK(mu_bind_process(&req, node, binding, sizeof binding));
    }
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER,
           "rank %d of %d on %s (node %d of %d, local rank %d of %d, %s): %s", rt->rank, rt->ranks,
           rt->place.host, rt->place.node, rt->place.nodes, rt->place.local_rank,
           rt->place.local_ranks, rt->place.job, binding);
    return MU_OK;
}

/* Why this run's matrices must be host memory (written into buf), or NULL when device memory
 * will do. */
static const char *host_memory_reason(const mu_runtime_opts_t *o, const mu_runtime_t *rt, char *buf,
                                      size_t len)
{
    if (o->io && !o->io_device)
        return "socket trainers share host memory (--trainer-memory host)";
    if (!wants_mpi(o))
        return "the loopback communicator copies host buffers";
#ifdef MUOND_HAVE_CUDA
    char why[256];
    const int devices = mu_cuda_device_count(why, sizeof why);
    if (devices > 0 && rt->place.local_ranks > devices) {
        snprintf(buf, len,
                 "%d ranks on this node share %d GPU(s), and NCCL needs a GPU of its own for "
                 "each rank",
                 rt->place.local_ranks, devices);
        return buf;
    }
#else
    (void)rt, (void)buf, (void)len;
#endif
    return NULL;
}

/* The steps every rank takes locally; their outcome is agreed afterwards. */
static mu_status_t load_local(const mu_runtime_opts_t *o, mu_runtime_t *rt)
{
    if (o->layout_path)
        MU_CHECK(mu_layout_load(o->layout_path, &rt->layout));
    char reason[160];
    const mu_dtype_t compute = rt->layout ? rt->layout->settings.compute_dtype : MU_DTYPE_F32;
    MU_CHECK(mu_backend_create_for_dtype(
        o->backend, host_memory_reason(o, rt, reason, sizeof reason), compute, &rt->be));
    if (compute == MU_DTYPE_BF16 && !mu_backend_bf16_compute(rt->be))
        return mu_error(MU_ERR_INVALID,
                        "%s asks for \"compute_dtype\": \"bf16\", which the %s backend "
                        "cannot compute (bf16 needs cuda, or dnnl on a CPU with AVX512-BF16 or "
                        "AMX)",
                        rt->layout->source, mu_backend_name(rt->be));
    if (o->io_device && mu_backend_host_memory(rt->be))
        return mu_error(MU_ERR_NOTSUP,
                        "--trainer-memory device shares GPU memory, but the kernel "
                        "backend is %s (MUOND_LOG=info says why cuda was not chosen)",
                        mu_backend_name(rt->be));
    return mu_backend_set_threads(rt->be, o->blas_threads);
}

/* The communicator must reach the backend's memory: MPI moves host buffers (Debian's Open MPI
 * is not CUDA-aware), NCCL device buffers. "auto" follows the backend; a contradiction is an
 * error naming both. */
static mu_status_t check_comm(const mu_runtime_opts_t *o, const mu_runtime_t *rt)
{
    const bool host = mu_backend_host_memory(rt->be);
    const bool automatic = !o->comm || strcmp(o->comm, "auto") == 0;
    if (!automatic && !host && strcmp(o->comm, "nccl") != 0)
        return mu_error(MU_ERR_INVALID,
                        "--comm %s moves host buffers, but the %s backend keeps them in device "
                        "memory: use --comm nccl (or auto)",
                        o->comm, mu_backend_name(rt->be));
    else if (!automatic && host && strcmp(o->comm, "nccl") == 0)
        return mu_error(MU_ERR_INVALID,
                        "--comm nccl moves device buffers, but the %s backend keeps them in "
                        "host memory: use --backend cuda (or --comm auto)",
                        mu_backend_name(rt->be));
    return MU_OK;
}

/* Replaces the start-up communicator by the one the backend needs, and ties them together. */
static mu_status_t start_device_comm(const mu_runtime_opts_t *o, mu_runtime_t *rt)
{
    MU_CHECK(mu_comm_agree(rt->comm, check_comm(o, rt)));
    if (!mu_backend_host_memory(rt->be)) { /* auto or nccl, as check_comm allowed */
        mu_comm_t *device_comm = NULL;
        MU_CHECK(mu_comm_create("nccl", &device_comm));
        mu_comm_destroy(&rt->comm);
        rt->comm = device_comm;
    }
    const mu_exchange_route_t route = o->exchange && strcmp(o->exchange, "hierarchical") == 0
                                          ? MU_EXCHANGE_HIERARCHICAL
                                          : MU_EXCHANGE_FLAT;
#ifdef MUOND_HAVE_CUDA
    const mu_comm_config_t cfg = {.device_stream = mu_cuda_backend_stream(rt->be),
                                  .timeout_s = o->comm_timeout_s,
                                  .exchange = route};
#else
    const mu_comm_config_t cfg = {.timeout_s = o->comm_timeout_s, .exchange = route};
#endif
    MU_CHECK(mu_comm_configure(rt->comm, &cfg));
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "backends: kernels %s, comm %s", mu_backend_name(rt->be),
           mu_comm_name(rt->comm));
    return MU_OK;
}

mu_status_t mu_runtime_start(const mu_runtime_opts_t *o, int *argc, char ***argv, mu_runtime_t *rt)
{
    *rt = (mu_runtime_t){.ranks = 1,
                         .place = {.nodes = 1, .local_ranks = 1, .host = "", .job = "no launcher"}};
    MPI_Comm node = MPI_COMM_NULL;
    if (wants_mpi(o)) {
        rt->rank = -1; /* until MPI says */
        MU_CHECK(start_mpi(argc, argv, rt, &node));
    }
    const mu_status_t placed = place_and_bind(o, rt, node);
    if (node != MPI_COMM_NULL)
        MPI_Comm_free(&node);
    MU_CHECK(placed);
    /* Start on MPI (or loopback): the agreement on the local steps needs a communicator
     * before the backend that decides the final one exists. */
    const bool nccl_named = o->comm && strcmp(o->comm, "nccl") == 0;
    MU_CHECK(mu_comm_create(nccl_named ? "auto" : o->comm, &rt->comm));
    MU_CHECK(mu_comm_agree(rt->comm, load_local(o, rt)));
    MU_CHECK(start_device_comm(o, rt));
    if (!rt->layout) /* a command without a model (bench fallback) */
        return MU_OK;
    MU_CHECK(mu_optimizer_create(rt->layout, rt->comm, rt->be, o->io, &rt->opt));
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "layout %s (%s): %d parameters, digest %016llx",
           rt->layout->name, rt->layout->source, rt->layout->param_count,
           (unsigned long long)rt->layout->digest);
    return MU_OK;
}

void mu_runtime_stop(mu_runtime_t *rt)
{
    mu_optimizer_destroy(&rt->opt);
    mu_backend_destroy(&rt->be);
    mu_layout_destroy(&rt->layout);
    mu_comm_destroy(&rt->comm);
    if (rt->mpi_started)
        MPI_Finalize();
    rt->mpi_started = false;
}

int mu_runtime_main(const char *prog, const mu_command_spec_t *spec, int argc, char **argv,
                    void *settings, mu_runtime_opts_t (*runtime_opts)(const void *settings),
                    mu_runtime_body_fn body)
{
    mu_parsed_t parsed;
    mu_status_t status = mu_options_parse(spec, argc, argv, settings, &parsed);
    if (status == MU_OK && parsed.help) {
        mu_options_print_help(spec, stdout);
        return MU_EXIT_OK;
    }
    const mu_runtime_opts_t o = runtime_opts(settings);
    if (status == MU_OK && !o.layout_path && !o.without_layout)
        status = mu_error(MU_ERR_INVALID, "--layout FILE is required");
    if (status != MU_OK)
        return mu_command_fail(spec->name, status);
    mu_runtime_t rt;
    status = mu_runtime_start(&o, &argc, &argv, &rt);
    MU_TRY(status, mu_comm_agree(rt.comm, body(&rt, settings)));
    int code = status == MU_OK ? MU_EXIT_OK : mu_runtime_fail(&rt, prog, status);
    if (status == MU_OK && rt.stopped_by)
        code = MU_EXIT_SIGNAL_BASE + rt.stopped_by;
    if (mu_comm_broken(rt.comm)) { /* a peer is gone: MPI_Finalize would wait for it forever */
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code); /* the launcher ends the job with this rank's code */
        _exit(code);
    }
    mu_runtime_stop(&rt);
    fflush(stdout);
    return code;
}

int mu_runtime_fail(const mu_runtime_t *rt, const char *command, mu_status_t status)
{
    char prog[96];
    if (rt->rank >= 0)
        snprintf(prog, sizeof prog, "%s (rank %d)", command, rt->rank);
    else /* MPI did not start: there is no rank to name yet */
        snprintf(prog, sizeof prog, "%s", command);
    return mu_command_fail(prog, status);
}
