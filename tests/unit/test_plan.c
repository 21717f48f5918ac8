/* The shard plan (shard/plan.h): the row rule, owner assignment and waves. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "shard/plan.h"

#ifndef MU_TEST_DATA
#error "MU_TEST_DATA must name tests/data"
#endif

static mu_layout_t *load(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/layouts/%s", MU_TEST_DATA, name);
    mu_layout_t *l = NULL;
    cr_assert_eq(mu_layout_load(path, &l), MU_OK, "%s", mu_error_message());
    return l;
}

Test(plan, row_shards_cover_every_row_once)
{
    const int64_t rows[] = {1, 2, 7, 768, 3072, 50257};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (int p = 1; p <= 9; p++) {
            int64_t next = 0;
            for (int r = 0; r < p; r++) {
                int64_t b, e;
                mu_shard_rows(rows[i], p, r, &b, &e);
                cr_expect_eq(b, next, "rows %ld, %d ranks: gap before rank %d", (long)rows[i], p,
                             r);
                cr_expect_leq(e - b, rows[i] / p + 1, "uneven shard");
                cr_expect_geq(e - b, rows[i] / p, "uneven shard");
                next = e;
            }
            cr_expect_eq(next, rows[i]);
        }
}

Test(plan, gpt2_small_is_balanced_and_deterministic)
{
    mu_layout_t *l = load("gpt2-small.json");
    for (int p = 1; p <= 8; p++) {
        mu_shard_plan_t *a = NULL, *b = NULL;
        cr_assert_eq(mu_shard_plan_build(l, p, &a), MU_OK);
        cr_assert_eq(mu_shard_plan_build(l, p, &b), MU_OK);
        cr_expect_eq(a->entry_count, 48);
        cr_expect_eq(memcmp(a->owner_of, b->owner_of, sizeof(int) * (size_t)l->param_count), 0,
                     "the plan must not depend on anything but layout and rank count");
        if (p == 4)
            cr_expect_leq(mu_shard_plan_imbalance(a), 1.05, "imbalance %.4f at 4 ranks",
                          mu_shard_plan_imbalance(a));
        mu_shard_plan_destroy(&a);
        mu_shard_plan_destroy(&b);
    }
    mu_layout_destroy(&l);
}

Test(plan, waves_respect_the_budget_and_hold_every_matrix_once)
{
    mu_layout_t *l = load("edge-shapes.json"); /* a 1 KiB budget forces several waves */
    for (int ranks = 1; ranks <= 2; ranks++) {
        mu_shard_plan_t *plan = NULL;
        cr_assert_eq(mu_shard_plan_build(l, ranks, &plan), MU_OK);
        cr_expect_gt(plan->wave_count, 1, "%d rank(s)", ranks);
        int *seen = calloc((size_t)l->param_count, sizeof *seen);
        for (int w = 0; w < plan->wave_count; w++) {
            int64_t held[2] = {0, 0};
            for (int k = plan->wave_begin[w]; k < plan->wave_begin[w + 1]; k++) {
                held[plan->entries[k].owner] += plan->entries[k].owner_bytes;
                seen[plan->entries[k].param]++;
                if (k > plan->wave_begin[w])
                    cr_expect_geq(plan->entries[k].owner, plan->entries[k - 1].owner,
                                  "a wave is grouped by owner");
            }
            for (int r = 0; r < ranks; r++)
                cr_expect_leq(held[r], l->settings.wave_budget_bytes, "wave %d rank %d", w, r);
        }
        for (int i = 0; i < l->param_count; i++)
            cr_expect_eq(seen[i], mu_method_is_matrix(l->params[i].method) ? 1 : 0, "param %d", i);
        free(seen);
        mu_shard_plan_destroy(&plan);
    }
    mu_layout_destroy(&l);
}

Test(plan, more_ranks_than_matrices_and_adamw_only)
{
    mu_layout_t *one = load("one-matrix.json"), *none = load("adamw-only.json");
    mu_shard_plan_t *plan = NULL;
    cr_assert_eq(mu_shard_plan_build(one, 4, &plan), MU_OK);
    cr_expect_eq(plan->entry_count, 1);
    cr_expect_eq(plan->rank_matrices[0] + plan->rank_matrices[1] + plan->rank_matrices[2] +
                     plan->rank_matrices[3],
                 1);
    mu_shard_plan_destroy(&plan);
    cr_assert_eq(mu_shard_plan_build(none, 3, &plan), MU_OK);
    cr_expect_eq(plan->entry_count, 0);
    cr_expect_eq(plan->wave_count, 0);
    cr_expect_eq(mu_shard_plan_imbalance(plan), 0.0);
    mu_shard_plan_destroy(&plan);
    mu_layout_destroy(&one);
    mu_layout_destroy(&none);
}
