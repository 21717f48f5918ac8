/*
 * libmuond-client: the trainer's side of muond (libc only; link with -lmuond-client).
 *
 * A trainer process talks to the muond rank on its node over a Unix socket and shares its
 * parameters' fp32 weights and gradients with it in shared memory, so that nothing is copied
 * through the kernel and the trainer needs no MPI:
 *
 *     muond_client_t *c;
 *     char err[256];
 *     muond_client_options_t o = {.rank = 0, .layout_digest = digest};
 *     if (muond_connect(&o, &c, err, sizeof err) != MUOND_OK) { puts(err); ... }
 *     muond_param_t w1;
 *     muond_param(c, "l1.weight", &w1);   // w1.weights / w1.grads point into shared memory
 *     for (;;) {
 *         ... write gradients into every param's grads ...
 *         muond_step(c, &result);           // blocks until muond has updated the weights
 *         ... read the updated weights ...
 *     }
 *     muond_close(&c);                      // says BYE
 *
 * Rules of the shared memory: write gradients (and, before the first step, initial weights)
 * only between steps; during muond_step the daemon owns both.
 *
 * Device memory: when the daemon runs with --trainer-memory device, the region is GPU memory
 * shared by CUDA IPC (muond_on_device() is 1; the library then loads the CUDA runtime with
 * dlopen and opens the region on the daemon's GPU, which must be visible to this process).
 * weights and grads are then device pointers: write them from kernels or with muond_copy, and
 * finish that work (synchronize the stream) before muond_step; the weights are final when
 * muond_step returns. In sharded mode a rank's region
 * holds its row shard of every parameter (rows [row_begin, row_end)); in local mode the whole
 * parameter.
 *
 * Hyper-parameters: every STEP carries each parameter's learning rate, weight decay and
 * momentum (Muon's beta, or AdamW's beta1) for that step: the layout's values (muond_param_t's
 * lr, weight_decay, momentum) until muond_set_hyper changes them, so that a trainer's
 * learning-rate schedule reaches the daemon. Every rank's trainer must set the same values;
 * the daemon refuses a step on which they differ.
 *
 * Errors: functions return a muond_status_t; muond_client_error() says what happened in words
 * (for muond_connect, the err buffer does). Every create has a close that takes the pointer's
 * address and sets it to NULL.
 */
#ifndef MUOND_CLIENT_H
#define MUOND_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum muond_status {
    MUOND_OK = 0,
    MUOND_ERR_INVALID,  /* a bad argument, or no such parameter */
    MUOND_ERR_IO,       /* the socket or shared memory failed */
    MUOND_ERR_PROTOCOL, /* the daemon sent something unexpected */
    MUOND_ERR_REFUSED,  /* the daemon refused us (uid, version, digest, rank, busy) */
    MUOND_ERR_TIMEOUT,  /* no answer in time */
    MUOND_ERR_NOMEM,
    MUOND_ERR_STEP, /* the step failed in the daemon (see the message) */
} muond_status_t;

typedef struct muond_client muond_client_t;

typedef struct muond_client_options {
    const char *socket_path; /* NULL: <dir>/<job>.rank<rank>.sock from the environment */
    int rank;                /* which muond rank this trainer belongs to */
    uint64_t layout_digest;  /* the layout the trainer was written for; 0: $MUOND_LAYOUT_DIGEST */
    int timeout_ms;          /* for connecting (the daemon may start later) and the handshake;
                                0: 60 s */
} muond_client_options_t;

typedef struct muond_param {
    const char *name;
    float *weights;             /* (row_end - row_begin) x cols, row-major, in shared memory */
    float *grads;               /* same shape */
    int64_t rows, cols;         /* the whole parameter (flattened to 2-D) */
    int64_t row_begin, row_end; /* the rows this rank holds */
    int on_device;              /* 1: weights and grads are GPU pointers (see muond_copy) */
    int ndim;                   /* the layout's shape before flattening: dims[0] = rows */
    int64_t dims[4];
    const char *method;                /* "polar-express", "ns5", "gram", "shampoo" or "adamw" */
    double lr, weight_decay, momentum; /* the layout's values (what steps use unless set) */
} muond_param_t;

/* What a step did to one parameter besides the fast path. */
typedef enum muond_step_event_kind {
    MUOND_EVENT_FALLBACK_CERTIFICATE = 1, /* the certificate failed: solved exactly instead */
    MUOND_EVENT_FALLBACK_NONFINITE = 2,   /* the fast result was not finite: solved exactly */
    MUOND_EVENT_FALLBACK_FORCED = 3,      /* the layout or --force-fallback asked for it */
    MUOND_EVENT_SKIPPED_NONFINITE = 4,    /* NaN/Inf in its gradient: not updated this step */
    MUOND_EVENT_SKIPPED_UNSOLVED = 5,     /* the exact fallback failed too: not updated */
} muond_step_event_kind_t;

typedef struct muond_step_event {
    int kind;  /* muond_step_event_kind_t */
    int param; /* index, as for muond_param_at */
} muond_step_event_t;

enum { MUOND_STEP_EVENTS_MAX = 32 };

typedef struct muond_step_result {
    int64_t step;
    int status;    /* 0 applied, 1 applied except parameters with NaN/Inf gradients (named in
                      message), 2 failed */
    int fallbacks; /* matrices solved by the exact fallback */
    char message[512];
    int events_total; /* events of the step; the first event_count are in events */
    int event_count;
    muond_step_event_t events[MUOND_STEP_EVENTS_MAX];
} muond_step_result_t;

muond_status_t muond_connect(const muond_client_options_t *options, muond_client_t **out, char *err,
                             size_t err_len);

/* Looks a parameter up by name. */
muond_status_t muond_param(muond_client_t *c, const char *name, muond_param_t *out);
int muond_param_count(const muond_client_t *c);
muond_status_t muond_param_at(muond_client_t *c, int index, muond_param_t *out);

/* Sets the hyper-parameters of parameter `index` for every following step, until set again:
 * lr and weight_decay in [0, 1000], momentum in [0, 1) (Muon's beta, or AdamW's beta1).
 * MUOND_ERR_INVALID, with the reason in muond_client_error, for anything else. */
muond_status_t muond_set_hyper(muond_client_t *c, int index, double lr, double weight_decay,
                               double momentum);

/* Asks muond to apply the gradients now in shared memory, with the hyper-parameters set, and
 * waits until it has. */
muond_status_t muond_step(muond_client_t *c, muond_step_result_t *result);

int64_t muond_steps_done(const muond_client_t *c);
int muond_rank(const muond_client_t *c);
int muond_ranks(const muond_client_t *c);
int muond_local_gradients(const muond_client_t *c); /* 1 in local mode, 0 in sharded mode */
/* 1 when the daemon shares GPU memory (muond run --trainer-memory device), 0 for host memory. */
int muond_on_device(const muond_client_t *c);
/* Copies bytes between the shared region and the trainer's memory (either side may be host or
 * device memory), synchronously: memcpy for host regions, cudaMemcpy for device ones. */
muond_status_t muond_copy(muond_client_t *c, void *dst, const void *src, size_t bytes);

/* Says BYE, unmaps the shared memory, closes the socket; sets *c to NULL. */
muond_status_t muond_close(muond_client_t **c);

const char *muond_client_error(const muond_client_t *c);
const char *muond_status_string(muond_status_t status);

/* This process's rank in the job its launcher (srun, mpiexec) started, or -1 outside one.
 * A trainer step launched with the daemon's task layout has the rank of the muond rank on
 * its node that it belongs to. */
int muond_env_rank(void);

/* The socket path the daemon's rank uses in this environment (see transport.c's rule). */
muond_status_t muond_default_socket_path(int rank, char *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
