/*
 * muond bench step: the optimizer step of a layout on synthetic gradients, under mpiexec.
 * Reports, over the timed steps, the median of the slowest rank's time per phase; the owner
 * imbalance (planned FLOPs, and measured compute time, max/mean over ranks); the bytes each
 * rank sends per step against the ideal (twice its own matrix-shard bytes in sharded mode);
 * and, per node, the payload that must cross its link each way (muond bench scaling sets it
 * beside the bytes counted on the wire).
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "launcher/bench.h"
#include "launcher/commands.h"
#include "launcher/option_rows.h"
#include "launcher/options.h"
#include "launcher/runtime.h"
#include "shard/synthetic.h"

typedef struct step_settings {
    const char *layout, *comm, *backend, *bind, *wave_checksums, *exchange;
    long steps, warmup, seed, blas_threads;
    double comm_timeout;
    bool json;
} step_settings_t;

#define FIELD(f) offsetof(step_settings_t, f)
static const mu_option_t step_options[] = {
    MU_OPTION_LAYOUT("the model layout", FIELD(layout)),
    {"steps", NULL, MU_OPT_INT, "N", "5", MU_BENCH_MIN_RUNS, 1000, NULL,
     "timed steps (the median is reported)", FIELD(steps)},
    MU_OPTION_WARMUP("steps", FIELD(warmup)),
    MU_OPTION_SEED("the synthetic data", FIELD(seed)),
    MU_OPTION_BLAS_THREADS(FIELD(blas_threads)),
    MU_RUNTIME_BACKEND_OPTIONS(FIELD(comm), FIELD(comm_timeout), FIELD(backend), FIELD(bind)),
    MU_EXCHANGE_OPTION(FIELD(exchange)),
    MU_WAVE_CHECKSUMS_OPTION(FIELD(wave_checksums)),
    MU_OPTION_JSON("print JSON lines instead of tables", FIELD(json)),
};
#undef FIELD

static const mu_command_spec_t step_spec = {
    .name = "bench step",
    .usage = "--layout FILE [--steps N] [--warmup N] [--json] [options]",
    .summary = "Times the optimizer step of a layout on synthetic gradients (run it under\n"
               "mpiexec -n P). Phase times are the slowest rank's, median over the timed steps;\n"
               "imbalance is max/mean over ranks of the planned FLOPs and of the measured\n"
               "compute time; bytes are what each rank sends per step, against the ideal of\n"
               "twice its own matrix-shard bytes (to itself included).",
    .min_positional = 0,
    .max_positional = 0,
    .options = step_options,
    .option_count = sizeof step_options / sizeof step_options[0],
};

enum { PHASES = 6, MAX_TIMED = 1000 };
/* fallback is the part of compute spent in the exact fallback. */
static const char *const phase_names[PHASES] = {"momentum", "exchange", "compute",
                                                "fallback", "apply",    "total"};

static bool layout_sharded(const mu_runtime_t *rt)
{
    return rt->layout->settings.grad_mode == MU_GRAD_SHARDED;
}

typedef struct step_results {
    double phase_ms[PHASES][MAX_TIMED]; /* slowest rank per timed step */
    double compute_ratio[MAX_TIMED];    /* max / mean compute time over ranks */
    int64_t bytes_sent, bytes_remote;   /* this rank's, per step */
} step_results_t;

static mu_status_t timed_step(mu_runtime_t *rt, const step_settings_t *s, step_results_t *res,
                              int index)
{
    MU_CHECK(mu_synthetic_fill_gradients(rt->opt, (uint64_t)s->seed));
    mu_step_stats_t st;
    MU_CHECK(mu_optimizer_step(rt->opt, &st));
    if (index < 0)
        return MU_OK;
    double t[PHASES] = {st.momentum_s, st.exchange_s, st.compute_s,
                        st.fallback_s, st.apply_s,    st.total_s};
    double compute_sum = st.compute_s;
    MU_CHECK(mu_comm_allreduce(rt->comm, t, PHASES, MU_COMM_F64, MU_COMM_MAX));
    MU_CHECK(mu_comm_allreduce(rt->comm, &compute_sum, 1, MU_COMM_F64, MU_COMM_SUM));
    for (int p = 0; p < PHASES; p++)
        res->phase_ms[p][index] = 1e3 * t[p];
    const double mean = compute_sum / rt->ranks;
    res->compute_ratio[index] = mean > 0.0 ? t[2] / mean : 0.0;
    res->bytes_sent = st.bytes_sent;
    res->bytes_remote = st.bytes_sent_remote;
    return MU_OK;
}

static void print_phases(const mu_runtime_t *rt, const step_settings_t *s, step_results_t *res)
{
    const double planned = mu_shard_plan_imbalance(mu_optimizer_plan(rt->opt));
    const double measured = mu_bench_median(res->compute_ratio, (int)s->steps);
    double median[PHASES];
    for (int p = 0; p < PHASES; p++)
        median[p] = mu_bench_median(res->phase_ms[p], (int)s->steps);
    if (s->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "bench", "step");
        cJSON_AddStringToObject(o, "layout", rt->layout->name);
        cJSON_AddNumberToObject(o, "ranks", rt->ranks);
        cJSON_AddNumberToObject(o, "nodes", rt->place.nodes);
        cJSON_AddStringToObject(o, "mode", layout_sharded(rt) ? "sharded" : "local");
        cJSON_AddNumberToObject(o, "steps", (double)s->steps);
        for (int p = 0; p < PHASES; p++) {
            char key[32];
            snprintf(key, sizeof key, "%s_ms", phase_names[p]);
            cJSON_AddNumberToObject(o, key, median[p]);
        }
        cJSON_AddNumberToObject(o, "imbalance_planned", planned);
        cJSON_AddNumberToObject(o, "imbalance_measured", measured);
        char *text = cJSON_PrintUnformatted(o);
        printf("%s\n", text ? text : "{}");
        cJSON_free(text);
        cJSON_Delete(o);
        return;
    }
    printf("# muond bench step: layout %s, %d rank(s) on %d node(s), median of %ld steps after "
           "%ld warm-up (slowest rank per phase; fallback is part of compute)\n",
           rt->layout->name, rt->ranks, rt->place.nodes, s->steps, s->warmup);
    for (int p = 0; p < PHASES; p++)
        printf("%-10s %10.1f ms\n", phase_names[p], median[p]);
    printf("owner imbalance (max/mean): planned FLOPs %.4f, measured compute time %.4f\n", planned,
           measured);
}

/* Rank 0 prints every rank's bytes against its ideal. */
static mu_status_t print_bytes(mu_runtime_t *rt, const step_settings_t *s,
                               const step_results_t *res)
{
    int64_t mine[3] = {res->bytes_sent, res->bytes_remote, mu_optimizer_ideal_bytes(rt->opt)};
    int64_t *all = rt->rank == 0 ? calloc((size_t)rt->ranks * 3, sizeof *all) : NULL;
    int64_t *counts = calloc((size_t)rt->ranks, sizeof *counts);
    int64_t *displs = calloc((size_t)rt->ranks, sizeof *displs);
    mu_status_t status = (!counts || !displs || (rt->rank == 0 && !all))
                             ? mu_error(MU_ERR_NOMEM, "bench step: cannot allocate")
                             : MU_OK;
    status = mu_comm_agree(rt->comm, status);
    for (int r = 0; status == MU_OK && r < rt->ranks; r++) {
        counts[r] = sizeof mine;
        displs[r] = (int64_t)sizeof mine * r;
    }
    MU_TRY(status, mu_comm_gatherv(rt->comm, mine, sizeof mine, all, counts, displs, 0));
    for (int r = 0; status == MU_OK && rt->rank == 0 && r < rt->ranks; r++) {
        const int64_t *b = all + 3 * r;
        const double ratio = b[2] > 0 ? (double)b[0] / (double)b[2] : 0.0;
        if (s->json)
            printf("{\"bench\":\"step\",\"rank\":%d,\"bytes_sent\":%lld,\"bytes_sent_remote\":%lld,"
                   "\"ideal_bytes\":%lld,\"ratio_to_ideal\":%.6f}\n",
                   r, (long long)b[0], (long long)b[1], (long long)b[2], ratio);
        else
            printf("rank %d: sent %.2f MiB per step (%.2f MiB to other ranks), ideal %.2f MiB, "
                   "ratio %.4f\n",
                   r, (double)b[0] / 1048576.0, (double)b[1] / 1048576.0, (double)b[2] / 1048576.0,
                   ratio);
    }
    free(all);
    free(counts);
    free(displs);
    return status;
}

/* Per node, the payload per step its ranks must send to (tx) and receive from (rx) other
 * nodes' ranks: in sharded mode the exchange's segments between ranks of different nodes; in
 * local mode, with more than one node, every matrix once each way (its reduction to the owner
 * and its broadcast, the least any tree can move). */
static void node_payloads(const mu_runtime_t *rt, const int64_t *all, int64_t *tx, int64_t *rx)
{
    const int ranks = rt->ranks, row = 1 + ranks;
    for (int node = 0; node < rt->place.nodes; node++)
        tx[node] = rx[node] = 0;
    for (int r = 0; r < ranks; r++)
        for (int q = 0; q < ranks; q++) {
            const int64_t from = all[r * row], to = all[q * row];
            if (from != to) {
                tx[from] += all[r * row + 1 + q];
                rx[to] += all[r * row + 1 + q];
            }
        }
    if (!layout_sharded(rt) && rt->place.nodes > 1)
        for (int node = 0; node < rt->place.nodes; node++)
            tx[node] = rx[node] = mu_optimizer_matrix_bytes(rt->opt);
}

static void print_payloads(const mu_runtime_t *rt, const step_settings_t *s, const int64_t *tx,
                           const int64_t *rx)
{
    for (int node = 0; node < rt->place.nodes; node++) {
        if (s->json)
            printf("{\"bench\":\"step\",\"node\":%d,\"link_payload_tx\":%lld,"
                   "\"link_payload_rx\":%lld}\n",
                   node, (long long)tx[node], (long long)rx[node]);
        else
            printf("node %d: %.2f MiB out and %.2f MiB in per step to other nodes (payload)\n",
                   node, (double)tx[node] / 1048576.0, (double)rx[node] / 1048576.0);
    }
}

/* Rank 0 gathers each rank's node and bytes per peer, and prints each node's payload. */
static mu_status_t print_links(mu_runtime_t *rt, const step_settings_t *s)
{
    const int ranks = rt->ranks, row = 1 + ranks;
    int64_t *mine = calloc((size_t)row, sizeof *mine);
    int64_t *all = rt->rank == 0 ? calloc((size_t)ranks * (size_t)row, sizeof *all) : NULL;
    int64_t *counts = calloc((size_t)ranks, sizeof *counts);
    int64_t *displs = calloc((size_t)ranks, sizeof *displs);
    int64_t *tx = calloc((size_t)rt->place.nodes, sizeof *tx);
    int64_t *rx = calloc((size_t)rt->place.nodes, sizeof *rx);
    mu_status_t status = (!mine || !counts || !displs || !tx || !rx || (rt->rank == 0 && !all))
                             ? mu_error(MU_ERR_NOMEM, "bench step: cannot allocate")
                             : MU_OK;
    status = mu_comm_agree(rt->comm, status);
    if (status == MU_OK) {
        mine[0] = rt->place.node;
        mu_optimizer_peer_bytes(rt->opt, mine + 1); /* local mode: zeros */
        for (int r = 0; r < ranks; r++) {
            counts[r] = row * (int64_t)sizeof *mine;
            displs[r] = counts[r] * r;
        }
    }
    MU_TRY(status,
           mu_comm_gatherv(rt->comm, mine, row * (int64_t)sizeof *mine, all, counts, displs, 0));
    if (status == MU_OK && rt->rank == 0) {
        node_payloads(rt, all, tx, rx);
        print_payloads(rt, s, tx, rx);
    }
    free(mine);
    free(all);
    free(counts);
    free(displs);
    free(tx);
    free(rx);
    return status;
}

static mu_status_t bench(mu_runtime_t *rt, const step_settings_t *s)
{
    step_results_t *res = calloc(1, sizeof *res);
    mu_status_t status = mu_comm_agree(
        rt->comm, res ? MU_OK : mu_error(MU_ERR_NOMEM, "bench step: cannot allocate"));
    MU_TRY(status, mu_synthetic_init_weights(rt->opt, (uint64_t)s->seed));
    mu_optimizer_set_transit_checks(rt->opt, strcmp(s->wave_checksums, "on") == 0);
    for (long i = 0; status == MU_OK && i < s->warmup + s->steps; i++) {
        if (rt->rank == 0)
            MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "bench step: %s step %ld of %ld",
                   i < s->warmup ? "warm-up" : "timed", i < s->warmup ? i + 1 : i - s->warmup + 1,
                   i < s->warmup ? s->warmup : s->steps);
        status = timed_step(rt, s, res, i < s->warmup ? -1 : (int)(i - s->warmup));
    }
    if (status == MU_OK && rt->rank == 0)
        print_phases(rt, s, res);
    MU_TRY(status, print_bytes(rt, s, res));
    MU_TRY(status, print_links(rt, s));
    free(res);
    return status;
}

static mu_runtime_opts_t runtime_opts(const void *settings)
{
    const step_settings_t *s = settings;
    return (mu_runtime_opts_t){.layout_path = s->layout,
                               .comm = s->comm,
                               .comm_timeout_s = s->comm_timeout,
                               .exchange = s->exchange,
                               .backend = s->backend,
                               .bind = s->bind,
                               .blas_threads = (int)s->blas_threads};
}

static mu_status_t body(mu_runtime_t *rt, const void *settings)
{
    return bench(rt, settings);
}

int mu_bench_step(int argc, char **argv)
{
    step_settings_t s = {0};
    return mu_runtime_main("bench step", &step_spec, argc, argv, &s, runtime_opts, body);
}
