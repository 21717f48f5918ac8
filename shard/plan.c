/* qsort_r is a GNU extension (glibc). */
#define _GNU_SOURCE
#include "shard/plan.h"

#include <stdlib.h>
#include <string.h>

void mu_shard_rows(int64_t rows, int ranks, int rank, int64_t *begin, int64_t *end)
{
    *begin = rows * rank / ranks;
    *end = rows * (rank + 1) / ranks;
}

/* LPT order: costliest first; equal costs by parameter index. */
static int by_cost(const void *a, const void *b)
{
    const mu_plan_entry_t *x = a, *y = b;
    if (x->flops != y->flops)
        return x->flops > y->flops ? -1 : 1;
    return x->param - y->param;
}

static void assign_owners(mu_shard_plan_t *plan)
{
    for (int i = 0; i < plan->entry_count; i++) {
        int best = 0; /* least loaded; ties go to the lowest rank */
        for (int r = 1; r < plan->ranks; r++)
            if (plan->rank_flops[r] < plan->rank_flops[best])
                best = r;
        mu_plan_entry_t *e = &plan->entries[i];
        e->owner = best;
        plan->rank_flops[best] += e->flops;
        plan->rank_owner_bytes[best] += e->owner_bytes;
        plan->rank_matrices[best]++;
        plan->owner_of[e->param] = best;
    }
}

/* Cuts the LPT-ordered entries into waves within the per-owner budget. */
static mu_status_t cut_waves(mu_shard_plan_t *plan, int64_t budget)
{
    int64_t *held = calloc((size_t)plan->ranks, sizeof *held);
    plan->wave_begin = calloc((size_t)plan->entry_count + 1, sizeof *plan->wave_begin);
    if (!held || !plan->wave_begin) {
        free(held);
        return mu_error(MU_ERR_NOMEM, "plan: cannot allocate waves");
    }
    plan->wave_count = 0;
    for (int i = 0; i < plan->entry_count; i++) {
        const mu_plan_entry_t *e = &plan->entries[i];
        if (i == 0 || held[e->owner] + e->owner_bytes > budget) {
            plan->wave_begin[plan->wave_count++] = i;
            memset(held, 0, sizeof *held * (size_t)plan->ranks);
        }
        held[e->owner] += e->owner_bytes;
    }
    plan->wave_begin[plan->wave_count] = plan->entry_count;
    free(held);
    return MU_OK;
}

/* Within a wave: by owner, then shape, then parameter (same-shape matrices back to back).
 * The context is the layout (glibc's qsort_r). */
static int by_owner_and_shape(const void *a, const void *b, void *context)
{
    const mu_layout_t *layout = context;
    const mu_plan_entry_t *x = a, *y = b;
    const mu_param_t *px = &layout->params[x->param], *py = &layout->params[y->param];
    if (x->owner != y->owner)
        return x->owner - y->owner;
    if (px->rows != py->rows)
        return px->rows < py->rows ? -1 : 1;
    if (px->cols != py->cols)
        return px->cols < py->cols ? -1 : 1;
    if (px->method != py->method)
        return (int)px->method - (int)py->method;
    return x->param - y->param;
}

static mu_status_t allocate(mu_shard_plan_t *plan, int params)
{
    plan->entries =
        calloc((size_t)(plan->entry_count ? plan->entry_count : 1), sizeof *plan->entries);
    plan->owner_of = malloc(sizeof *plan->owner_of * (size_t)params);
    plan->rank_flops = calloc((size_t)plan->ranks, sizeof *plan->rank_flops);
    plan->rank_owner_bytes = calloc((size_t)plan->ranks, sizeof *plan->rank_owner_bytes);
    plan->rank_matrices = calloc((size_t)plan->ranks, sizeof *plan->rank_matrices);
    if (!plan->entries || !plan->owner_of || !plan->rank_flops || !plan->rank_owner_bytes ||
        !plan->rank_matrices)
        return mu_error(MU_ERR_NOMEM, "plan: cannot allocate for %d ranks", plan->ranks);
    for (int i = 0; i < params; i++)
        plan->owner_of[i] = -1;
    return MU_OK;
}

static void collect_entries(const mu_layout_t *layout, mu_shard_plan_t *plan)
{
    int n = 0;
    for (int i = 0; i < layout->param_count; i++) {
        const mu_param_t *p = &layout->params[i];
        if (!mu_method_is_matrix(p->method))
            continue;
        plan->entries[n++] = (mu_plan_entry_t){
            .param = i,
            .flops = mu_layout_param_flops(layout, p),
            .owner_bytes = mu_param_owner_bytes(p),
        };
    }
}

mu_status_t mu_shard_plan_build(const mu_layout_t *layout, int ranks, mu_shard_plan_t **out)
{
    if (!layout || !out || ranks < 1)
        return mu_error(MU_ERR_INVALID, "plan: bad arguments (ranks %d)", ranks);
    *out = NULL;
    mu_shard_plan_t *plan = calloc(1, sizeof *plan);
    if (!plan)
        return mu_error(MU_ERR_NOMEM, "plan: cannot allocate");
    plan->ranks = ranks;
    for (int i = 0; i < layout->param_count; i++)
        plan->entry_count += mu_method_is_matrix(layout->params[i].method);
    mu_status_t status;
    MU_CHECK_GOTO(status, allocate(plan, layout->param_count), out_with_plan);
    collect_entries(layout, plan);
    qsort(plan->entries, (size_t)plan->entry_count, sizeof *plan->entries, by_cost);
    assign_owners(plan);
    MU_CHECK_GOTO(status, cut_waves(plan, layout->settings.wave_budget_bytes), out_with_plan);
    for (int w = 0; w < plan->wave_count; w++)
        qsort_r(plan->entries + plan->wave_begin[w],
                (size_t)(plan->wave_begin[w + 1] - plan->wave_begin[w]), sizeof *plan->entries,
                by_owner_and_shape, (void *)layout);
    *out = plan;
    return MU_OK;
out_with_plan:
    mu_shard_plan_destroy(&plan);
    return status;
}

void mu_shard_plan_destroy(mu_shard_plan_t **plan)
{
    if (!plan || !*plan)
        return;
    mu_shard_plan_t *p = *plan;
    free(p->entries);
    free(p->wave_begin);
    free(p->owner_of);
    free(p->rank_flops);
    free(p->rank_owner_bytes);
    free(p->rank_matrices);
    free(p);
    *plan = NULL;
}

double mu_shard_plan_imbalance(const mu_shard_plan_t *plan)
{
    double total = 0.0, worst = 0.0;
    for (int r = 0; r < plan->ranks; r++) {
        total += plan->rank_flops[r];
        if (plan->rank_flops[r] > worst)
            worst = plan->rank_flops[r];
    }
    return total > 0.0 ? worst / (total / plan->ranks) : 0.0;
}

int mu_shard_plan_largest_wave(const mu_shard_plan_t *plan)
{
    int most = 1;
    for (int w = 0; w < plan->wave_count; w++) {
        const int n = plan->wave_begin[w + 1] - plan->wave_begin[w];
        most = n > most ? n : most;
    }
    return most;
}
