/*
 * muond run: the daemon. Trainers connect over local sockets (launcher/trainer_server.h), or
 * the synthetic trainer generates gradients in-process.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "client/transport.h"
#include "core/knobs.h"
#include "core/log.h"
#include "launcher/commands.h"
#include "launcher/inject.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"
#include "launcher/resilience.h"
#include "launcher/runtime.h"
#include "shard/synthetic.h"
#include "launcher/stop.h"
#include "launcher/trainer_server.h"
#include "shard/synthetic.h"

typedef struct run_settings {
    const char *layout, *trainer, *trainer_memory, *comm, *backend, *bind, *inject;
    const char *checkpoint_dir, *resume, *wave_checksums, *exchange;
    long steps, seed, blas_threads, allow_gid, check_every, checkpoint_every, checkpoint_keep;
    double trainer_timeout, comm_timeout;
    bool digest, print_socket, force_fallback;
    mu_trainer_server_t *server; /* socket trainers (not an option) */
    mu_resilience_t *res;        /* checks and checkpoints (not an option) */
} run_settings_t;

#define FIELD(f) offsetof(run_settings_t, f)
static const mu_option_t run_options[] = {
    MU_OPTION_LAYOUT("the model layout (JSON; see shard/layout.h)", FIELD(layout)),
    {"trainer", "MUOND_TRAINER", MU_OPT_CHOICE, "KIND", "socket", 0, 0, "socket|synthetic",
     "socket: trainers connect with libmuond-client; synthetic: generated gradients",
     FIELD(trainer)},
    {"steps", NULL, MU_OPT_INT, "N", "0", 0, 1e9, NULL,
     "steps to run; 0 = until the trainers say BYE (required for the synthetic trainer)",
     FIELD(steps)},
    {"trainer-memory", "MUOND_TRAINER_MEMORY", MU_OPT_CHOICE, "WHERE", "host", 0, 0, "host|device",
     "socket trainers: where the shared weights and gradients live: host (a memfd the trainer "
     "maps) or device (GPU memory the trainer opens by CUDA IPC; needs the cuda backend)",
     FIELD(trainer_memory)},
    {"trainer-timeout", "MUOND_TRAINER_TIMEOUT", MU_OPT_DOUBLE, "SECONDS", "60", 0.1, 1e6, NULL,
     "how long a rank waits for its trainer to connect or reconnect", FIELD(trainer_timeout)},
    {"allow-gid", NULL, MU_OPT_INT, "GID", "-1", -1, 4294967294.0, NULL,
     "also admit trainers whose group is GID (-1: only this uid)", FIELD(allow_gid)},
    {"print-socket", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "print where this process's rank listens for its trainer, and exit", FIELD(print_socket)},
    MU_OPTION_SEED("the synthetic weights and gradients", FIELD(seed)),
    {"digest", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "print a 64-bit digest of all final weights (global row order; the same for any number "
     "of ranks when --blas-threads is the same)",
     FIELD(digest)},
    MU_OPTION_BLAS_THREADS(FIELD(blas_threads)),
    MU_RUNTIME_BACKEND_OPTIONS(FIELD(comm), FIELD(comm_timeout), FIELD(backend), FIELD(bind)),
    MU_EXCHANGE_OPTION(FIELD(exchange)),
    {"force-fallback", NULL, MU_OPT_FLAG, NULL, NULL, 0, 0, NULL,
     "solve every matrix with the exact ScaLAPACK fallback instead of its fast method (tests, "
     "timing)",
     FIELD(force_fallback)},
    {"inject", "MUOND_INJECT", MU_OPT_STRING, "SPEC", NULL, 0, 0, NULL,
     "plant faults on purpose: comma-separated KIND[:rank=R][:step=S][:param=NAME][:ms=N]"
     "[:times=N], KIND one of nan-grad, inf-grad, zero-grad, illcond, bitflip, stall, kill, "
     "trainer-kill, bad-message, disk-full, sdc, fallback-nomem, bad-root (README: Faults)",
     FIELD(inject)},
    MU_WAVE_CHECKSUMS_OPTION(FIELD(wave_checksums)),
    {"check-every", "MUOND_CHECK_EVERY", MU_OPT_INT, "K", "0", 0, 1e9, NULL,
     "every K steps the ranks compare the step counter, layout and settings digests (and the "
     "replicated weights in local mode), and one owner's result is recomputed by another "
     "rank (0: never)",
     FIELD(check_every)},
    {"checkpoint-dir", "MUOND_CHECKPOINT_DIR", MU_OPT_STRING, "DIR", NULL, 0, 0, NULL,
     "where checkpoints go (DIR/step-N/, DIR/LATEST); also written at a SIGTERM/SIGINT stop",
     FIELD(checkpoint_dir)},
    {"checkpoint-every", "MUOND_CHECKPOINT_EVERY", MU_OPT_INT, "K", "0", 0, 1e9, NULL,
     "write a checkpoint every K steps (0: only at a stop signal)", FIELD(checkpoint_every)},
    {"checkpoint-keep", NULL, MU_OPT_INT, "N", "2", 1, 1e6, NULL,
     "complete checkpoints kept; older ones are removed", FIELD(checkpoint_keep)},
    {"resume", "MUOND_RESUME", MU_OPT_STRING, "DIR", NULL, 0, 0, NULL,
     "continue from DIR's newest checkpoint (or the step-N folder DIR), on any number of ranks",
     FIELD(resume)},
};
#undef FIELD

static const mu_command_spec_t run_spec = {
    .name = "run",
    .usage = "--layout FILE [--trainer socket|synthetic] [--steps N] [options]",
    .summary =
        "Runs the optimizer daemon, one rank per trainer, under mpiexec or srun (alone it runs\n"
        "as a single rank). Socket trainers (the default) connect to their rank's Unix socket\n"
        "(--print-socket; the path comes from MUOND_SOCKET_DIR, XDG_RUNTIME_DIR or /tmp/muond-UID\n"
        "and MUOND_JOB or the Slurm/Open MPI job ids) and step it with libmuond-client; the run\n"
        "ends when every trainer says BYE. The synthetic trainer generates gradients from\n"
        "(seed, parameter, global row, step). Rank 0 logs one line per step with the phase\n"
        "times (the maximum over ranks). Under srun, launch with --mpi=pmix. SIGTERM or SIGINT\n"
        "stops every rank after the same complete step, removes the sockets and exits with\n"
        "128 + the signal.",
    .min_positional = 0,
    .max_positional = 0,
    .options = run_options,
    .option_count = sizeof run_options / sizeof run_options[0],
};

const mu_command_spec_t *mu_run_command_spec(void)
{
    return &run_spec;
}

enum { PHASE_SLOTS = 6 }; /* momentum, exchange, compute, apply, total, fallback */

/* Rank 0's lines for one step, from the agreed phase times t and the zero-update count. */
static void print_step(const mu_runtime_t *rt, const mu_step_stats_t *st, const double *t,
                       long long zero, long step, long steps)
{
    if (zero > 0) /* a zero gradient and momentum: nothing to orthogonalize, W only decays */
        MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER,
               "step %ld: %lld matrix update(s) were zero (all-zero gradient and momentum)", step,
               zero);
    char of[32] = "", extra[96] = "";
    if (steps > 0)
        snprintf(of, sizeof of, "/%ld", steps);
    if (st->events_total > 0)
        snprintf(extra, sizeof extra, "; %lld fallback(s) in %.1f ms, %lld skipped",
                 (long long)st->fallbacks, 1e3 * t[5], (long long)st->skipped);
    mu_log_set_step(step);
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER,
           "step %ld%s: %.1f ms (momentum %.1f, exchange %.1f, compute %.1f, apply %.1f ms; "
           "max over %d ranks)%s",
           step, of, 1e3 * t[4], 1e3 * t[0], 1e3 * t[1], 1e3 * t[2], 1e3 * t[3], rt->ranks, extra);
    for (int i = 0; i < st->event_count; i++) {
        char line[384];
        mu_step_event_format(rt->opt, &st->events[i], line, sizeof line);
        MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER, "step %ld: %s", step, line);
    }
    if (st->events_total > st->event_count)
        MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER, "step %ld: %lld more event(s) not listed", step,
               (long long)(st->events_total - st->event_count));
}

/* The slowest rank's time of each phase and what the step did besides the fast path, logged
 * by rank 0 (the events are the same on every rank). */
static mu_status_t log_step(mu_runtime_t *rt, const mu_step_stats_t *st, long step, long steps)
{
    /* One MAX allreduce: six phase times, then a slot per rank for its zero-update count
     * (counted by the owners), summed afterwards. */
    double *t = calloc((size_t)(PHASE_SLOTS + rt->ranks), sizeof *t);
    if (!t)
        return mu_error(MU_ERR_NOMEM, "cannot log the step");
    const double phases[PHASE_SLOTS] = {st->momentum_s, st->exchange_s, st->compute_s,
                                        st->apply_s,    st->total_s,    st->fallback_s};
    memcpy(t, phases, sizeof phases);
    t[PHASE_SLOTS + rt->rank] = (double)st->zero_updates;
    const mu_status_t status =
        mu_comm_allreduce(rt->comm, t, PHASE_SLOTS + rt->ranks, MU_COMM_F64, MU_COMM_MAX);
    double zero = 0.0;
    for (int r = 0; r < rt->ranks; r++)
        zero += t[PHASE_SLOTS + r];
    if (status == MU_OK && rt->rank == 0)
        print_step(rt, st, t, (long long)zero, step, steps);
    free(t);
    return status;
}

/* How a run that ends early labels its digest (tests compare it with a clean run's). */
#define LAST_STATE "state after the last complete step: digest "

static mu_status_t print_digest(mu_runtime_t *rt, const char *what)
{
    uint64_t digest = 0;
    double norm = 0.0;
    MU_CHECK(mu_optimizer_digest(rt->opt, &digest));
    MU_CHECK(mu_optimizer_weights_norm(rt->opt, &norm));
    if (rt->rank == 0)
        printf("%s%016llx\nweights norm %.9e\n", what, (unsigned long long)digest, norm);
    fflush(stdout);
    return MU_OK;
}

static void dump_settings(const mu_runtime_t *rt, const run_settings_t *s)
{
    if (rt->rank == 0 && mu_log_enabled(MU_LOG_INFO, MU_SUB_LAUNCHER)) {
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "effective settings of muond run:");
        mu_options_dump(&run_spec, s, stderr);
        mu_knobs_dump(stderr); /* the environment knobs that are set (core/knobs.h) */
    }
}

/* Whether any rank was asked to stop (SIGTERM, SIGINT): agreed at a step boundary, so that
 * every rank ends after the same complete step. */
static mu_status_t agree_stop(mu_runtime_t *rt, long steps_done)
{
    int64_t signo = mu_stop_signal();
    MU_CHECK(mu_comm_allreduce(rt->comm, &signo, 1, MU_COMM_I64, MU_COMM_MAX));
    rt->stopped_by = (int)signo;
    if (signo && rt->rank == 0)
        MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER,
               "stopping on %s after %ld complete step(s), on every rank; no step was applied "
               "in part",
               mu_stop_signal_name((int)signo), steps_done);
    return MU_OK;
}

/* An agreed stop signal: a checkpoint of the last complete step, and its digest. */
static mu_status_t stop_cleanly(mu_runtime_t *rt, const run_settings_t *s)
{
    MU_CHECK(mu_resilience_at_stop(rt, s->res));
    return print_digest(rt, LAST_STATE);
}

/* The trainers are gone: say where the state stands (for a resume), and stop with the
 * failure that says why, even when the digest cannot be had too. */
static mu_status_t stop_without_trainers(mu_runtime_t *rt, mu_status_t why)
{
    mu_error_saved_t saved;
    mu_error_save(why, &saved);
    if (print_digest(rt, LAST_STATE) != MU_OK)
        MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER, "no digest of the last state: %s", mu_error_message());
    return mu_error_restore(&saved);
}

static mu_status_t train_synthetic(mu_runtime_t *rt, const run_settings_t *s)
{
    if (s->steps < 1)
        return mu_error(MU_ERR_INVALID, "--steps N (N >= 1) is required with --trainer synthetic");
    MU_CHECK(mu_synthetic_init_weights(rt->opt, (uint64_t)s->seed));
    MU_CHECK(mu_resilience_resume(rt, s->res));
    for (long step = mu_optimizer_next_step(rt->opt); step <= s->steps; step++) {
        mu_log_set_step(step); /* every rank's lines carry it, not only rank 0's summary */
        MU_CHECK(agree_stop(rt, step - 1));
        if (rt->stopped_by)
            return stop_cleanly(rt, s);
        MU_CHECK(mu_synthetic_fill_gradients(rt->opt, (uint64_t)s->seed));
        MU_CHECK(mu_inject_gradients(rt, (uint64_t)s->seed));
        mu_step_stats_t st;
        MU_CHECK(mu_optimizer_step(rt->opt, &st));
        MU_CHECK(log_step(rt, &st, step, s->steps));
        MU_CHECK(mu_resilience_after_step(rt, s->res));
    }
    return s->digest ? print_digest(rt, "digest ") : MU_OK;
}

/* ---- socket trainers ---------------------------------------------------------------------- */

/* The ranks' trainer events, agreed: all asked for the step, all said BYE, or neither. */
static mu_status_t agree_event(mu_runtime_t *rt, const run_settings_t *s, long step,
                               mu_trainer_event_t mine, mu_trainer_event_t *all)
{
    int64_t counts[4] = {0, 0, 0, 0}; /* indexed by mu_trainer_event_t */
    counts[mine] = 1;
    MU_CHECK(mu_comm_allreduce(rt->comm, counts, 4, MU_COMM_I64, MU_COMM_SUM));
    if (counts[MU_TRAINER_STEP] == rt->ranks || counts[MU_TRAINER_BYE] == rt->ranks) {
        *all = counts[MU_TRAINER_STEP] == rt->ranks ? MU_TRAINER_STEP : MU_TRAINER_BYE;
        return MU_OK;
    }
    *all = MU_TRAINER_LOST;
    if (mine == MU_TRAINER_LOST)
        MU_LOG(MU_LOG_ERROR, MU_SUB_LAUNCHER, "no trainer for %.0f s at step %ld",
               s->trainer_timeout, step);
    return mu_error(MU_ERR_TIMEOUT,
                    "step %ld: %lld rank(s) lost their trainer, %lld trainer(s) said BYE, %lld "
                    "asked for the step; stopping after %ld complete step(s), none applied in "
                    "part",
                    step, (long long)counts[MU_TRAINER_LOST], (long long)counts[MU_TRAINER_BYE],
                    (long long)counts[MU_TRAINER_STEP], step - 1);
}

/* The step's hyper-parameters, agreed. Each rank's trainer sent its own (or none: the
 * layout's), and replicas and shards of one parameter must move together, so they must be
 * equal on every rank: one MAX allreduce over the values and their negatives finds both ends. */
static mu_status_t agree_hyper(mu_runtime_t *rt, const run_settings_t *s, long step)
{
    const mu_layout_t *l = rt->layout;
    const int n = 3 * l->param_count;
    const muond_hyper_t *sent = mu_trainer_server_hyper(s->server);
    double *v = malloc(2 * (size_t)n * sizeof *v);
    if (!v)
        return mu_error(MU_ERR_NOMEM, "cannot agree on the hyper-parameters");
    for (int i = 0; i < l->param_count; i++) {
        mu_hyper_t h;
        if (sent)
            h = (mu_hyper_t){sent[i].lr, sent[i].weight_decay, sent[i].momentum};
        else
            mu_layout_hyper(l, i, &h);
        const double mine[3] = {h.lr, h.weight_decay, h.momentum};
        for (int k = 0; k < 3; k++) {
            v[3 * i + k] = mine[k];
            v[n + 3 * i + k] = -mine[k];
        }
    }
    mu_status_t status = mu_comm_allreduce(rt->comm, v, 2 * n, MU_COMM_F64, MU_COMM_MAX);
    static const char *const names[3] = {"lr", "weight_decay", "momentum"};
    for (int j = 0; status == MU_OK && j < n; j++)
        if (v[j] != -v[n + j])
            status = mu_error(MU_ERR_INVALID,
                              "step %ld: the trainers sent different %s for %s (from %g to %g "
                              "across the ranks); every trainer must send the same values",
                              step, names[j % 3], l->params[j / 3].name, -v[n + j], v[j]);
    for (int i = 0; status == MU_OK && i < l->param_count; i++)
        mu_optimizer_set_hyper(rt->opt, i, &(mu_hyper_t){v[3 * i], v[3 * i + 1], v[3 * i + 2]});
    free(v);
    return status;
}

/* The protocol's name for what an event did to its parameter. */
static uint32_t event_kind(const mu_step_event_t *e)
{
    switch (e->kind) {
    case MU_EVENT_SKIPPED_NONFINITE:
        return MUOND_EVENT_SKIPPED_NONFINITE;
    case MU_EVENT_FALLBACK_NONFINITE:
        return e->solved ? MUOND_EVENT_FALLBACK_NONFINITE : MUOND_EVENT_SKIPPED_UNSOLVED;
    case MU_EVENT_FALLBACK_FORCED:
        return e->solved ? MUOND_EVENT_FALLBACK_FORCED : MUOND_EVENT_SKIPPED_UNSOLVED;
    default:
        return e->solved ? MUOND_EVENT_FALLBACK_CERTIFICATE : MUOND_EVENT_SKIPPED_UNSOLVED;
    }
}

/* DONE for a step that ran: its status, the fallback count, the events and a message naming
 * them. */
static void describe_step(mu_runtime_t *rt, const mu_step_stats_t *st, long step, muond_done_t *d)
{
    *d = (muond_done_t){.step = step,
                        .status = MUOND_STEP_OK,
                        .fallbacks = (uint32_t)st->fallbacks,
                        .events_total = (uint32_t)st->events_total};
    for (int i = 0; i < st->event_count; i++) {
        char line[384];
        mu_step_event_format(rt->opt, &st->events[i], line, sizeof line);
        const size_t used = strlen(d->message);
        snprintf(d->message + used, sizeof d->message - used, "%s%s", i ? "; " : "", line);
        if (st->events[i].kind == MU_EVENT_SKIPPED_NONFINITE)
            d->status = MUOND_STEP_SKIPPED_NONFINITE;
        if (d->event_count < MUOND_EVENTS_MAX)
            d->events[d->event_count++] =
                (muond_event_t){event_kind(&st->events[i]), (uint32_t)st->events[i].param};
    }
}

/* DONE for a step that did not run. */
static void refuse_step(const run_settings_t *s, long step, const char *why)
{
    muond_done_t d = {.step = step, .status = MUOND_STEP_FAILED};
    snprintf(d.message, sizeof d.message, "%s", why);
    mu_trainer_server_done(s->server, &d);
}

/* One step asked for by every trainer, with the hyper-parameters they sent; the trainers hear
 * how it went: DONE carries the fallback count and the events, and the message names what was
 * skipped or solved exactly. */
static mu_status_t serve_step(mu_runtime_t *rt, const run_settings_t *s, long step)
{
    mu_step_stats_t st;
    mu_status_t status = agree_hyper(rt, s, step);
    MU_TRY(status, mu_inject_gradients(rt, (uint64_t)s->seed));
    MU_TRY(status, mu_optimizer_step(rt->opt, &st));
    if (status == MU_OK) /* device memory: DONE only once the trainer may read the weights */
        status = mu_k_synchronize(rt->be);
    if (status != MU_OK) {
        refuse_step(s, step, mu_error_message());
        return status;
    }
    muond_done_t done;
    describe_step(rt, &st, step, &done);
    mu_trainer_server_done(s->server, &done);
    MU_CHECK(log_step(rt, &st, step, s->steps));
    return mu_resilience_after_step(rt, s->res);
}

static mu_status_t serve_trainers(mu_runtime_t *rt, const run_settings_t *s)
{
    const mu_trainer_server_opts_t so = {rt->rank, rt->layout, s->trainer_timeout, s->allow_gid};
    MU_CHECK(mu_resilience_resume(rt, s->res));
    MU_CHECK(mu_comm_agree(rt->comm, mu_trainer_server_start(s->server, &so, rt->opt)));
    for (long step = mu_optimizer_next_step(rt->opt); s->steps == 0 || step <= s->steps; step++) {
        mu_log_set_step(step);
        mu_trainer_event_t mine = MU_TRAINER_LOST, all;
        MU_CHECK(mu_comm_agree(rt->comm, mu_trainer_server_wait(s->server, step, &mine)));
        MU_CHECK(agree_stop(rt, step - 1));
        if (rt->stopped_by) {
            char why[160];
            snprintf(why, sizeof why,
                     "muond stopped on %s before step %ld; the weights are those after step %ld",
                     mu_stop_signal_name(rt->stopped_by), step, step - 1);
            /* Also a trainer whose STEP is not read yet (the signal came first): it finds
             * the answer when it asks. */
            if (mine != MU_TRAINER_BYE)
                refuse_step(s, step, why);
            return stop_cleanly(rt, s);
        }
        const mu_status_t agreed = agree_event(rt, s, step, mine, &all);
        if (agreed != MU_OK)
            return stop_without_trainers(rt, agreed);
        if (all == MU_TRAINER_BYE) {
            MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "every trainer said BYE after %ld step(s)",
                   step - 1);
            break;
        }
        MU_CHECK(serve_step(rt, s, step));
    }
    return s->digest ? print_digest(rt, "digest ") : MU_OK;
}

static mu_runtime_opts_t runtime_opts(const void *settings)
{
    const run_settings_t *s = settings;
    return (mu_runtime_opts_t){.layout_path = s->layout,
                               .comm = s->comm,
                               .comm_timeout_s = s->comm_timeout,
                               .exchange = s->exchange,
                               .backend = s->backend,
                               .bind = s->bind,
                               .blas_threads = (int)s->blas_threads,
                               .io = s->server ? mu_trainer_server_io(s->server) : NULL,
                               .io_device = s->server && s->trainer_memory &&
                                            strcmp(s->trainer_memory, "device") == 0};
}

/* The digests the divergence check compares (every setting) and a checkpoint records (the
 * ones a resumed run should share). */
static mu_status_t digest_settings(const run_settings_t *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return mu_error(MU_ERR_NOMEM, "cannot digest the settings");
    mu_options_dump(&run_spec, s, f);
    fclose(f);
    s->res->config_digest = XXH3_64bits(text, len);
    free(text);
    char trajectory[256];
    snprintf(trajectory, sizeof trajectory, "seed %ld backend %s blas %ld fallback %d", s->seed,
             s->backend ? s->backend : "", s->blas_threads, (int)s->force_fallback);
    s->res->settings_digest = XXH3_64bits(trajectory, strlen(trajectory));
    return MU_OK;
}

static mu_status_t body(mu_runtime_t *rt, const void *settings)
{
    const run_settings_t *s = settings;
    dump_settings(rt, s);
    if (s->checkpoint_every > 0 && !s->checkpoint_dir)
        return mu_error(MU_ERR_INVALID, "--checkpoint-every %ld needs --checkpoint-dir DIR",
                        s->checkpoint_every);
    MU_CHECK(mu_inject_setup(rt, s->inject));
    *s->res = (mu_resilience_t){.checkpoint_dir = s->checkpoint_dir,
                                .checkpoint_every = s->checkpoint_every,
                                .checkpoint_keep = s->checkpoint_keep,
                                .resume = s->resume,
                                .check_every = s->check_every,
                                .last_checkpoint = -1};
    MU_CHECK(digest_settings(s));
    mu_optimizer_force_fallback(rt->opt, s->force_fallback);
    mu_optimizer_set_transit_checks(rt->opt, strcmp(s->wave_checksums, "on") == 0);
    return s->server ? serve_trainers(rt, s) : train_synthetic(rt, s);
}

/* --print-socket: where this process's rank listens, from the environment alone (no MPI). */
static int print_socket(void)
{
    char path[512];
    const int rank = muond_rank_from_env();
    if (muond_socket_path(rank < 0 ? 0 : rank, path, sizeof path) != 0)
        return mu_command_fail("run", mu_error(MU_ERR_INVALID, "the socket path is too long"));
    printf("%s\n", path);
    return MU_EXIT_OK;
}

int mu_cmd_run(int argc, char **argv)
{
    mu_resilience_t res = {0};
    run_settings_t s = {.res = &res};
    mu_parsed_t parsed;
    if (mu_options_parse(&run_spec, argc, argv, &s, &parsed) == MU_OK && s.print_socket &&
        !parsed.help)
        return print_socket();
    mu_stop_install(); /* only the daemon: a benchmark stops at Ctrl-C as any program does */
    const bool sockets = !s.trainer || strcmp(s.trainer, "socket") == 0;
    if (sockets && mu_trainer_server_new(&s.server) != MU_OK)
        return mu_command_fail("run", MU_ERR_NOMEM);
    const int code = mu_runtime_main("run", &run_spec, argc, argv, &s, runtime_opts, body);
    mu_trainer_server_destroy(&s.server);
    return code;
}
