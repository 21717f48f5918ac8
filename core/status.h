/*
 * muond's one error convention.
 *
 * Contract (applies to every layer):
 *  - Functions that can fail return mu_status_t; MU_OK (0) means success.
 *  - Functions that return a pointer return NULL on failure and record the error.
 *  - The function where an error originates records a human-readable message with
 *    mu_error(); every caller that propagates it with MU_CHECK / MU_CHECK_GOTO adds a
 *    file:line frame to the trail, so the top level can print the whole call chain.
 *  - Every *_create has a *_destroy that takes a pointer-to-pointer and sets it to NULL.
 *  - Adapters translate foreign error codes at the boundary (MU_MPI_CHECK, MU_CUDA_CHECK, ...
 *    live beside the code that calls those libraries).
 *
 * The message and trail are thread-local: one thread's failure never overwrites another's.
 */
#ifndef MU_CORE_STATUS_H
#define MU_CORE_STATUS_H

#include <stdio.h>

typedef enum mu_status {
    MU_OK = 0,
    MU_ERR_INVALID,   /* bad argument, shape, option or input file content */
    MU_ERR_NOMEM,     /* an allocation failed */
    MU_ERR_IO,        /* a read, write, open or rename failed */
    MU_ERR_MPI,       /* an MPI call failed */
    MU_ERR_NCCL,      /* an NCCL call failed */
    MU_ERR_CUDA,      /* a CUDA runtime call failed */
    MU_ERR_CUBLAS,    /* a cuBLAS call failed */
    MU_ERR_SCALAPACK, /* ScaLAPACK/LAPACK reported a failure */
    MU_ERR_NUMERIC,   /* non-finite data or an iteration that did not converge */
    MU_ERR_TIMEOUT,   /* a deadline passed */
    MU_ERR_NOTSUP,    /* not supported by this backend or build */
    MU_ERR_PROTOCOL,  /* a malformed or unexpected message */
    MU_ERR_DNNL,      /* a oneDNN call failed */
    MU_STATUS_COUNT
} mu_status_t;

/* Short fixed name of a status ("INVALID"); never NULL. */
const char *mu_strerror(mu_status_t status);

/* Records the origin of an error: a printf-style message, and clears the trail.
 * Returns status so that `return mu_error(MU_ERR_INVALID, "...")` reads naturally. */
mu_status_t mu_error(mu_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The last recorded message of this thread, or "" if none. Valid until the next mu_error. */
const char *mu_error_message(void);

/* Forgets the message and the trail (after an error was handled). */
void mu_error_clear(void);

/* A copy of this thread's error, so that a first failure can still be reported, trail and
 * all, after cleanup code met (and handled) a second one. */
enum {
    MU_ERROR_MESSAGE_CAPACITY = 1024,
    MU_ERROR_TRAIL_FRAMES = 16,
    MU_ERROR_FRAME_CAPACITY = 200
};
typedef struct mu_error_saved {
    mu_status_t status;
    char message[MU_ERROR_MESSAGE_CAPACITY];
    char trail[MU_ERROR_TRAIL_FRAMES][MU_ERROR_FRAME_CAPACITY];
    int trail_length;
} mu_error_saved_t;
void mu_error_save(mu_status_t status, mu_error_saved_t *out);
/* Makes the saved error this thread's again; returns its status. */
mu_status_t mu_error_restore(const mu_error_saved_t *saved);

/* Appends one propagation frame to this thread's trail; used by MU_CHECK. */
void mu_error_trace(const char *file, int line, const char *expr, mu_status_t status);

/* Prints "prog: STATUS: message" and the propagation trail, one frame per line. */
void mu_error_report(FILE *out, const char *prog, mu_status_t status);
/* Prints only "prog: STATUS: message": for a user's bad input, where the line says it all. */
void mu_error_report_line(FILE *out, const char *prog, mu_status_t status);

/* Propagate a failure to the caller, leaving a trail frame. */
#define MU_CHECK(call)                                                                             \
    do {                                                                                           \
        const mu_status_t mu_check_status_ = (call);                                               \
        if (mu_check_status_ != MU_OK) {                                                           \
            mu_error_trace(__FILE__, __LINE__, #call, mu_check_status_);                           \
            return mu_check_status_;                                                               \
        }                                                                                          \
    } while (0)

/* Store a failure in `status` and jump to a cleanup label naming what must be released. */
#define MU_CHECK_GOTO(status, call, label)                                                         \
    do {                                                                                           \
        (status) = (call);                                                                         \
        if ((status) != MU_OK) {                                                                   \
            mu_error_trace(__FILE__, __LINE__, #call, (status));                                   \
            goto label;                                                                            \
        }                                                                                          \
    } while (0)

/* One link of a status chain whose cleanup must run whatever happens: runs `call` only while
 * `status` is MU_OK, and a failure adds a trail frame, as MU_CHECK would:
 *     mu_status_t status = MU_OK;
 *     MU_TRY(status, first(x));
 *     MU_TRY(status, second(x));
 *     release(x);
 *     return status;                                                                         */
#define MU_TRY(status, call)                                                                       \
    do {                                                                                           \
        if ((status) == MU_OK) {                                                                   \
            (status) = (call);                                                                     \
            if ((status) != MU_OK)                                                                 \
                mu_error_trace(__FILE__, __LINE__, #call, (status));                               \
        }                                                                                          \
    } while (0)

#endif
