/*
 * What the daemon does between steps so that faults neither go unnoticed nor lose state:
 * divergence checks every K steps, checkpoints every K steps (and at an agreed stop), and
 * resuming from a checkpoint. All functions are collective.
 */
#ifndef MU_LAUNCHER_RESILIENCE_H
#define MU_LAUNCHER_RESILIENCE_H

#include <stdint.h>

#include "launcher/runtime.h"

typedef struct mu_resilience {
    const char *checkpoint_dir; /* NULL: no checkpoints */
    long checkpoint_every, checkpoint_keep;
    const char *resume;       /* NULL: start fresh */
    long check_every;         /* 0: no divergence checks */
    uint64_t config_digest;   /* of every run setting: must agree on all ranks */
    uint64_t settings_digest; /* of the settings a resumed run should share (seed, backend) */
    long last_checkpoint;     /* step of the newest checkpoint written or loaded; -1: none */
} mu_resilience_t;

/* Loads the checkpoint --resume names, if any, after the weights were initialized. */
mu_status_t mu_resilience_resume(mu_runtime_t *rt, mu_resilience_t *r);

/* After a complete step: the divergence check and the checkpoint when they are due. A failed
 * checkpoint is reported and training goes on (the previous one stays); a divergence stops
 * the job. */
mu_status_t mu_resilience_after_step(mu_runtime_t *rt, mu_resilience_t *r);

/* At an agreed stop: a checkpoint of the last complete step unless one exists. */
mu_status_t mu_resilience_at_stop(mu_runtime_t *rt, mu_resilience_t *r);

#endif
