/*
 * Fault injection (--inject SPEC, MUOND_INJECT): faults planted on purpose so that the tests
 * can prove each one is detected, reported and survived or stopped cleanly.
 *
 * SPEC is a comma-separated list of KIND[:key=value]...; keys: rank=R (default: any rank),
 * step=S (default: every step), param=NAME (where the kind takes one), ms=N (stall),
 * times=N (how many times it fires in all; default 1 for bitflip, stall, kill, trainer-kill
 * and bad-message, else at every match).
 *
 * The table is process-wide (the hooks sit in several layers: the exchange, checkpoints, the
 * trainer server); a hook costs one load of mu_faults_armed when nothing is planted.
 */
#ifndef MU_CORE_FAULT_H
#define MU_CORE_FAULT_H

#include <stdbool.h>

#include "core/status.h"

typedef enum mu_fault_kind {
    MU_FAULT_NAN_GRAD,       /* a NaN in the gradient (the last global row, or rank R's first) */
    MU_FAULT_INF_GRAD,       /* an Inf, placed as nan-grad's NaN */
    MU_FAULT_ZERO_GRAD,      /* the whole gradient of param is zero */
    MU_FAULT_ILLCOND,        /* a rank-one gradient: the residual check fails */
    MU_FAULT_BITFLIP,        /* a bit of a received exchange buffer flips */
    MU_FAULT_STALL,          /* a rank sleeps ms milliseconds inside an exchange */
    MU_FAULT_KILL,           /* a rank dies (SIGKILL) inside an exchange */
    MU_FAULT_TRAINER_KILL,   /* a rank kills its trainer (SIGKILL) before serving the step */
    MU_FAULT_BAD_MESSAGE,    /* the trainer's next message arrives malformed */
    MU_FAULT_DISK_FULL,      /* a checkpoint write fails with ENOSPC */
    MU_FAULT_SDC,            /* an owner's result is silently corrupted after its check */
    MU_FAULT_FALLBACK_NOMEM, /* the exact fallback's SVD workspace allocation fails on a rank */
    MU_FAULT_BAD_ROOT,       /* an owner's fresh Shampoo roots are 1.1 times what they should be */
    MU_FAULT_KINDS
} mu_fault_kind_t;

enum { MU_FAULTS_MAX = 16, MU_FAULT_PARAM_MAX = 128 };

typedef struct mu_fault {
    mu_fault_kind_t kind;
    int rank;                       /* -1: any */
    long step;                      /* 0: every step */
    char param[MU_FAULT_PARAM_MAX]; /* "" when not given */
    long ms;
    long times; /* fires left; < 0: unlimited */
} mu_fault_t;

extern bool mu_faults_armed;

/* Parses SPEC into the table (replacing it). Errors name the item and what was expected. */
mu_status_t mu_faults_parse(const char *spec);
void mu_faults_clear(void);
const char *mu_fault_kind_name(mu_fault_kind_t kind);

/* The planted fault of this kind for (rank, step, param) that fires now, or NULL; param NULL
 * matches any. Firing uses up one of its times. */
const mu_fault_t *mu_fault_fire_slow(mu_fault_kind_t kind, int rank, long step, const char *param);

static inline const mu_fault_t *mu_fault_fire(mu_fault_kind_t kind, int rank, long step,
                                              const char *param)
{
    return mu_faults_armed ? mu_fault_fire_slow(kind, rank, step, param) : (const mu_fault_t *)0;
}

/* The planted faults, for the launcher to check against the layout and to give a fault
 * without a parameter the layout's default one. */
int mu_faults_count(void);
mu_fault_t *mu_fault_at(int index);

#endif
