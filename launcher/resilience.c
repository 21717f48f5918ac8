#include "launcher/resilience.h"

#include <stdlib.h>

#include "core/log.h"
#include "shard/checkpoint.h"

static mu_checkpoint_info_t info_of(const mu_resilience_t *r, const char *dir)
{
    return (mu_checkpoint_info_t){dir, r->settings_digest, (int)r->checkpoint_keep};
}

mu_status_t mu_resilience_resume(mu_runtime_t *rt, mu_resilience_t *r)
{
    r->last_checkpoint = -1;
    mu_optimizer_set_check_every(rt->opt, r->check_every);
    if (!r->resume)
        return MU_OK;
    const mu_checkpoint_info_t info = info_of(r, r->resume);
    MU_CHECK(mu_checkpoint_load(rt->opt, &info, &r->last_checkpoint));
    return MU_OK;
}

static mu_status_t write_checkpoint(mu_runtime_t *rt, mu_resilience_t *r)
{
    const long step = mu_optimizer_steps_done(rt->opt);
    const mu_checkpoint_info_t info = info_of(r, r->checkpoint_dir);
    const mu_status_t status = mu_checkpoint_write(rt->opt, &info);
    if (status == MU_OK) {
        r->last_checkpoint = step;
        if (rt->rank == 0)
            MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "checkpoint of step %ld written to %s", step,
                   r->checkpoint_dir);
    } else if (rt->rank == 0) {
        MU_LOG(MU_LOG_ERROR, MU_SUB_LAUNCHER,
               "checkpoint of step %ld failed (%s); the previous good one (step %ld) stays in %s "
               "and training goes on",
               step, mu_error_message(), r->last_checkpoint, r->checkpoint_dir);
    }
    mu_error_clear();
    return MU_OK;
}

/* ---- the divergence check ----------------------------------------------------------------- */

enum { FIELD_STEP, FIELD_LAYOUT, FIELD_CONFIG, FIELD_WEIGHTS, FIELDS };
static const char *const field_names[FIELDS] = {"step counter", "layout digest", "settings digest",
                                                "replicated weights digest"};

/* The value most ranks hold in field f (ties: the lowest rank's). */
static int64_t majority(const int64_t *all, int ranks, int f)
{
    int best = 0, best_votes = 0;
    for (int a = 0; a < ranks; a++) {
        int votes = 0;
        for (int b = 0; b < ranks; b++)
            votes += all[b * FIELDS + f] == all[a * FIELDS + f];
        if (votes > best_votes) {
            best = a;
            best_votes = votes;
        }
    }
    return all[best * FIELDS + f];
}

/* Counts the ranks whose field f differs from the majority; rank 0 names them. */
static int report_field(const int64_t *all, int ranks, int f, long step, bool speak)
{
    const int64_t want = majority(all, ranks, f);
    int differing = 0;
    for (int r = 0; r < ranks; r++) {
        if (all[r * FIELDS + f] == want)
            continue;
        differing++;
        if (!speak)
            continue;
        MU_LOG(MU_LOG_ERROR, MU_SUB_LAUNCHER,
               "divergence check after step %ld: rank %d's %s is %016llx, the other ranks' "
               "%016llx",
               step, r, field_names[f], (unsigned long long)all[r * FIELDS + f],
               (unsigned long long)want);
    }
    return differing;
}

static mu_status_t divergence_check(mu_runtime_t *rt, const mu_resilience_t *r)
{
    const long step = mu_optimizer_steps_done(rt->opt);
    int64_t *all = calloc((size_t)rt->ranks * FIELDS, sizeof *all);
    if (!all)
        return mu_error(MU_ERR_NOMEM, "divergence check: cannot allocate");
    int64_t *mine = all + rt->rank * FIELDS;
    mine[FIELD_STEP] = step;
    mine[FIELD_LAYOUT] = (int64_t)rt->layout->digest;
    mine[FIELD_CONFIG] = (int64_t)r->config_digest;
    uint64_t weights = 0;
    mu_status_t status = MU_OK;
    if (rt->layout->settings.grad_mode == MU_GRAD_LOCAL)
        MU_TRY(status, mu_optimizer_replica_digest(rt->opt, &weights));
    mine[FIELD_WEIGHTS] = (int64_t)weights;
    status = mu_comm_agree(rt->comm, status);
    MU_TRY(status,
           mu_comm_allreduce(rt->comm, all, (int64_t)rt->ranks * FIELDS, MU_COMM_I64, MU_COMM_SUM));
    int differing = 0; /* every rank holds the same table, so all count alike */
    for (int f = 0; status == MU_OK && f < FIELDS; f++)
        differing += report_field(all, rt->ranks, f, step, rt->rank == 0);
    free(all);
    MU_CHECK(status);
    if (differing > 0)
        return mu_error(MU_ERR_NUMERIC,
                        "divergence check after step %ld: %d disagreement(s) between ranks "
                        "(rank 0 lists them); stopping, the newest checkpoint is step %ld",
                        step, differing, r->last_checkpoint);
    if (rt->rank == 0)
        MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "divergence check after step %ld: %d rank(s) agree",
               step, rt->ranks);
    return MU_OK;
}

mu_status_t mu_resilience_after_step(mu_runtime_t *rt, mu_resilience_t *r)
{
    const long step = mu_optimizer_steps_done(rt->opt);
    if (r->check_every > 0 && step % r->check_every == 0)
        MU_CHECK(divergence_check(rt, r));
    if (r->checkpoint_dir && r->checkpoint_every > 0 && step % r->checkpoint_every == 0)
        MU_CHECK(write_checkpoint(rt, r));
    return MU_OK;
}

mu_status_t mu_resilience_at_stop(mu_runtime_t *rt, mu_resilience_t *r)
{
    if (!r->checkpoint_dir || r->last_checkpoint == mu_optimizer_steps_done(rt->opt))
        return MU_OK;
    return write_checkpoint(rt, r);
}
