/*
 * Private to shard/: the certifier, the judge of every fast orthogonalization (DESIGN.md,
 * step 4; shard/verify.c) and the silent-data-corruption recheck beside it (shard/recheck.c).
 * It owns each matrix's check of this step, the verdict table the ranks agree on (allocated
 * once) and the ScaLAPACK fallback handle (created on first use).
 */
#ifndef MU_SHARD_CERTIFIER_H
#define MU_SHARD_CERTIFIER_H

#include "kernels/certificate.h"
#include "kernels/orth.h"
#include "kernels/shampoo.h"
#include "shard/optimizer_impl.h"

/* The owner's verdict on one matrix of the step, and where its full G and Q are. */
typedef struct entry_check {
    int verdict;         /* 0: certified; else a mu_step_event_kind_t fallback reason */
    mu_cert_t cert;      /* what the certificate measured */
    double value, limit; /* the failed test's number and limit (the descent's on a pass) */
    mu_mat_t g, q;       /* owner only */
    mu_shampoo_t *shampoo; /* owner of a shampoo matrix: its state, for the exact roots */
} entry_check_t;

mu_status_t mu_certifier_create(const mu_shard_env_t *env, mu_certifier_t **out);
void mu_certifier_destroy(mu_certifier_t **cert);

/* Sends every matrix through the exact fallback (tests and timing). */
void mu_certifier_force_fallback(mu_certifier_t *cert, bool force);

/* Owner: entry's check starts over, with its G and Q where they are (an empty check, nothing
 * to judge or solve, when g and q are NULL). */
void mu_certifier_reset(mu_certifier_t *cert, int entry, const mu_mat_t *g, const mu_mat_t *q);

/* Owner: judges entry's fast result, as the fast path reported it, with the certificate of
 * plan's limits (or forces it), at `step` (MUOND_DUMP_MOMENTUM writes G first when the step
 * is listed). */
mu_status_t mu_certifier_judge(mu_certifier_t *cert, int entry, const mu_orth_plan_t *plan,
                               long step, const mu_orth_report_t *report);

/* Owner of a shampoo matrix: judges the roots its step computed (none to judge on steps
 * between root computations), or forces the exact ones. */
mu_status_t mu_certifier_judge_roots(mu_certifier_t *cert, int entry, mu_shampoo_t *shampoo,
                                     const mu_shampoo_report_t *report);

/* Collective: agrees on the verdicts of entries [first, first + count), solves each failed
 * one with the fallback into its owner's Q, and marks the ones that could not be solved as
 * skipped in ctx. */
mu_status_t mu_certifier_agree(mu_certifier_t *cert, mu_step_ctx_t *ctx, int first, int count);

const entry_check_t *mu_certifier_check(const mu_certifier_t *cert, int entry);

/* shard/recheck.c */
/* Sharded, after wave's verdicts: when this step is due, recomputes the sampled matrix of
 * the wave on another rank; a mismatch marks it skipped and is returned via *failure. */
mu_status_t mu_recheck_wave(mu_optimizer_t *opt, mu_step_ctx_t *ctx, int wave,
                            mu_status_t *failure);

#endif
