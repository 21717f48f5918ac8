/* muond run: the daemon. With --trainer synthetic it trains on generated gradients. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "launcher/commands.h"
#include "launcher/options.h"
#include "launcher/runtime.h"

typedef struct run_settings {
    const char *layout, *trainer, *comm, *backend;
    long steps, seed, blas_threads;
    bool digest;
} run_settings_t;

#define FIELD(f) offsetof(run_settings_t, f)
static const mu_option_t run_options[] = {
    {"layout", "MUOND_LAYOUT", MU_OPT_STRING, "FILE", NULL, 0, 0, NULL,
     "the model layout (JSON; see shard/layout.h)", FIELD(layout)},
    {"trainer", NULL, MU_OPT_CHOICE, "KIND", "synthetic", 0, 0, "synthetic",
     "where gradients come from (socket trainers are not implemented yet)", FIELD(trainer)},
    {"steps", NULL, MU_OPT_INT, "N", "10", 0, 1e9, NULL, "optimizer steps to run", FIELD(steps)},
    {"seed", NULL, MU_OPT_INT, "S", "1", 0, 1e15, NULL,
     "seed of the synthetic weights and gradients", FIELD(seed)},
    {"digest", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "print a 64-bit digest of all final weights (global row order; the same for any number "
     "of ranks when --blas-threads is the same)",
     FIELD(digest)},
    {"blas-threads", "MUOND_BLAS_THREADS", MU_OPT_INT, "N", "1", 1, 1024, NULL,
     "BLAS threads per rank", FIELD(blas_threads)},
    {"comm", "MUOND_COMM", MU_OPT_CHOICE, "C", "auto", 0, 0, "auto|mpi|loopback",
     "communicator backend", FIELD(comm)},
    {"backend", "MUOND_BACKEND", MU_OPT_STRING, "B", "auto", 0, 0, NULL,
     "kernel backend: auto, cpu or reference", FIELD(backend)},
};
#undef FIELD

static const mu_command_spec_t run_spec = {
    .name = "run",
    .usage = "--layout FILE [--trainer synthetic] [--steps N] [--seed S] [--digest] [options]",
    .summary = "Runs the optimizer daemon, one rank per trainer, under mpiexec or srun (alone it\n"
               "runs as a single rank). With --trainer synthetic every rank generates its\n"
               "gradients from (seed, parameter, global row, step), so results do not depend on\n"
               "the number of ranks. Rank 0 logs one line per step with the phase times (the\n"
               "maximum over ranks).",
    .min_positional = 0,
    .max_positional = 0,
    .options = run_options,
    .option_count = sizeof run_options / sizeof run_options[0],
};

/* The slowest rank's time of each phase, on every rank. */
static mu_status_t log_step(mu_runtime_t *rt, const mu_step_stats_t *st, long step, long steps)
{
    double t[5] = {st->momentum_s, st->exchange_s, st->compute_s, st->apply_s, st->total_s};
    MU_CHECK(mu_comm_allreduce(rt->comm, t, 5, MU_COMM_F64, MU_COMM_MAX));
    if (rt->rank == 0) {
        mu_log_set_step(step);
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER,
               "step %ld/%ld: %.1f ms (momentum %.1f, exchange %.1f, compute %.1f, apply %.1f "
               "ms; max over %d ranks)",
               step, steps, 1e3 * t[4], 1e3 * t[0], 1e3 * t[1], 1e3 * t[2], 1e3 * t[3], rt->ranks);
    }
    return MU_OK;
}

static mu_status_t train(mu_runtime_t *rt, const run_settings_t *s)
{
    if (rt->rank == 0 && mu_log_enabled(MU_LOG_INFO, MU_SUB_LAUNCHER)) {
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "effective settings of muond run:");
        mu_options_dump(&run_spec, s, stderr);
    }
    MU_CHECK(mu_synthetic_init(rt, (uint64_t)s->seed));
    for (long step = 1; step <= s->steps; step++) {
        MU_CHECK(mu_synthetic_fill(rt, (uint64_t)s->seed));
        mu_step_stats_t st;
        MU_CHECK(mu_optimizer_step(rt->opt, &st));
        MU_CHECK(log_step(rt, &st, step, s->steps));
    }
    if (s->digest) {
        uint64_t digest = 0;
        MU_CHECK(mu_optimizer_digest(rt->opt, &digest));
        if (rt->rank == 0)
            printf("digest %016llx\n", (unsigned long long)digest);
    }
    return MU_OK;
}

static mu_runtime_opts_t runtime_opts(const void *settings)
{
    const run_settings_t *s = settings;
    return (mu_runtime_opts_t){s->layout, s->comm, s->backend, (int)s->blas_threads};
}

static mu_status_t body(mu_runtime_t *rt, const void *settings)
{
    return train(rt, settings);
}

int mu_cmd_run(int argc, char **argv)
{
    run_settings_t s = {0};
    return mu_runtime_main("muond run", &run_spec, argc, argv, &s, runtime_opts, body);
}
