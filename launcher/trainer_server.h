/*
 * The daemon's side of the trainer interface (client/muond_protocol.h): one Unix socket per
 * rank, in a private directory, and the shared memory that holds the rank's weights and
 * gradients.
 *
 * Security: the directory is created 0700 (an existing one must be a directory owned by us
 * and closed to others, or it is refused), the socket is 0600, and every connection's peer
 * uid is checked with SO_PEERCRED: only our own uid is admitted, or a peer whose gid is
 * --allow-gid. The shared memory is an anonymous memfd, reachable only through the fd passed
 * to the admitted trainer; with device memory (--trainer-memory device) it is a cudaMalloc'ed
 * region whose CUDA IPC handle travels only in WELCOME, over that socket, to that trainer. No
 * network listener exists.
 *
 * Robustness: a connection that sends a wrong version, digest, rank or step, or a malformed
 * message, gets ERROR and is closed; the trainer connection and the state are untouched. A
 * trainer that disconnects may reconnect (HELLO again) within the trainer timeout.
 */
#ifndef MU_LAUNCHER_TRAINER_SERVER_H
#define MU_LAUNCHER_TRAINER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "client/muond_protocol.h"
#include "shard/layout.h"
#include "shard/optimizer.h"

typedef struct mu_trainer_server mu_trainer_server_t;

typedef struct mu_trainer_server_opts {
    int rank; /* names the socket: <dir>/<job>.rank<rank>.sock */
    const mu_layout_t *layout;
    double trainer_timeout_s; /* how long to wait for a (re)connection */
    long allow_gid;           /* < 0: none */
} mu_trainer_server_opts_t;

typedef enum mu_trainer_event {
    MU_TRAINER_STEP = 0, /* the trainer asked for the expected step */
    MU_TRAINER_BYE = 1,  /* the trainer said goodbye */
    MU_TRAINER_LOST = 2, /* no trainer within the timeout */
    MU_TRAINER_STOP = 3, /* a stop signal arrived while waiting (launcher/stop.h) */
} mu_trainer_event_t;

/* Two stages, because the optimizer's memory must come from the server before the server can
 * describe it: _new gives the shared-memory provider (pass it to mu_optimizer_create), and
 * _start then listens and describes the optimizer's region to trainers. */
mu_status_t mu_trainer_server_new(mu_trainer_server_t **out);
const mu_io_provider_t *mu_trainer_server_io(mu_trainer_server_t *srv);
mu_status_t mu_trainer_server_start(mu_trainer_server_t *srv, const mu_trainer_server_opts_t *o,
                                    mu_optimizer_t *opt);
/* Closes the connections and removes the socket. */
void mu_trainer_server_destroy(mu_trainer_server_t **srv);

const char *mu_trainer_server_path(const mu_trainer_server_t *srv);

/* Serves connections until this rank's trainer asks for `step` (steps step-1 are done), says
 * BYE, stays away longer than the timeout, or a stop signal arrives. */
mu_status_t mu_trainer_server_wait(mu_trainer_server_t *srv, long step, mu_trainer_event_t *event);

/* The hyper-parameters (one per parameter, layout order) the trainer's STEP carried for the
 * step it asked for, or NULL when it carried none (the layout's values apply). Valid until
 * the next mu_trainer_server_wait. */
const muond_hyper_t *mu_trainer_server_hyper(const mu_trainer_server_t *srv);

/* Reports a step's outcome to the trainer (a trainer that went away is noted, not an error):
 * its status, how many matrices the exact fallback solved, the events, and a message naming
 * them. */
void mu_trainer_server_done(mu_trainer_server_t *srv, const muond_done_t *done);

#endif
