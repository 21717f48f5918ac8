#include "launcher/runtime.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "launcher/commands.h"
#include "launcher/options.h"
#include "shard/synthetic.h"

/* A loopback run is one process without MPI: no runtime to start, nothing to leak. */
static bool wants_mpi(const mu_runtime_opts_t *o)
{
    return !(o->comm && strcmp(o->comm, "loopback") == 0);
}

static mu_status_t start_mpi(int *argc, char ***argv, mu_runtime_t *rt)
{
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized && MPI_Init(argc, argv) != MPI_SUCCESS)
        return mu_error(MU_ERR_MPI, "MPI_Init failed");
    rt->mpi_started = !initialized;
    MPI_Comm_rank(MPI_COMM_WORLD, &rt->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &rt->ranks);
    mu_log_set_rank(rt->rank);
    return MU_OK;
}

int mu_local_rank_from_env(int fallback)
{
    const char *names[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return atoi(v);
    }
    return fallback;
}

/* The steps every rank takes locally; their outcome is agreed afterwards. */
static mu_status_t load_local(const mu_runtime_opts_t *o, mu_runtime_t *rt)
{
    if (o->layout_path)
        MU_CHECK(mu_layout_load(o->layout_path, &rt->layout));
    MU_CHECK(mu_backend_create(o->backend, &rt->be));
    return mu_backend_set_threads(rt->be, o->blas_threads);
}

mu_status_t mu_runtime_start(const mu_runtime_opts_t *o, int *argc, char ***argv, mu_runtime_t *rt)
{
    *rt = (mu_runtime_t){.ranks = 1};
    if (wants_mpi(o))
        MU_CHECK(start_mpi(argc, argv, rt));
    rt->local_rank = mu_local_rank_from_env(rt->rank);
    MU_CHECK(mu_comm_create(o->comm, &rt->comm));
    MU_CHECK(mu_comm_agree(rt->comm, load_local(o, rt)));
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
    if (status == MU_OK)
        status = mu_comm_agree(rt.comm, body(&rt, settings));
    const int code = status == MU_OK ? MU_EXIT_OK : mu_runtime_fail(&rt, prog, status);
    mu_runtime_stop(&rt);
    return code;
}

int mu_runtime_fail(const mu_runtime_t *rt, const char *command, mu_status_t status)
{
    char prog[96];
    snprintf(prog, sizeof prog, "%s (rank %d)", command, rt->rank);
    return mu_command_fail(prog, status);
}

static bool sharded(const mu_runtime_t *rt)
{
    return rt->layout->settings.grad_mode == MU_GRAD_SHARDED;
}

mu_status_t mu_synthetic_init(mu_runtime_t *rt, uint64_t seed)
{
    for (int p = 0; p < rt->layout->param_count; p++) {
        mu_param_view_t v;
        MU_CHECK(mu_optimizer_param(rt->opt, p, &v));
        mu_synthetic_weights(seed, p, v.row_begin, v.row_end - v.row_begin, v.w.cols, v.w.data,
                             v.w.ld);
    }
    return MU_OK;
}

mu_status_t mu_synthetic_fill(mu_runtime_t *rt, uint64_t seed)
{
    const long step = mu_optimizer_steps_done(rt->opt) + 1;
    for (int p = 0; p < rt->layout->param_count; p++) {
        mu_param_view_t v;
        MU_CHECK(mu_optimizer_param(rt->opt, p, &v));
        mu_synthetic_gradient(seed, p, step, sharded(rt) ? -1 : rt->rank, v.row_begin,
                              v.row_end - v.row_begin, v.g.cols, v.g.data, v.g.ld);
    }
    return MU_OK;
}
