/*
 * Framing of protocol messages over a stream socket, with deadlines and file-descriptor
 * passing (libc only; shared by the client library and the daemon). Private to muond.
 */
#ifndef MUOND_TRANSPORT_H
#define MUOND_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "muond_protocol.h"

/* Results: 0, or one of these (negative). */
enum {
    MUOND_WIRE_OK = 0,
    MUOND_WIRE_CLOSED = -10,  /* the peer closed the connection */
    MUOND_WIRE_TIMEOUT = -11, /* the deadline passed */
    MUOND_WIRE_IO = -12,      /* a system call failed (errno says why) */
    MUOND_WIRE_NOMEM = -13,
    /* header problems are MUOND_DECODE_* (muond_protocol.h) */
};
const char *muond_wire_error(int code);

/* Sends one encoded message; pass_fd >= 0 travels with it (SCM_RIGHTS). Never raises
 * SIGPIPE: a closed peer is MUOND_WIRE_CLOSED. */
int muond_wire_send(int sock, const uint8_t *msg, size_t len, int pass_fd);

/* Receives one message within timeout_ms (< 0: no deadline). On success *payload is a
 * malloc'ed buffer of h->length bytes (free it) and *passed_fd an fd that came with it, or -1
 * (passed_fd may be NULL when none is expected; a stray fd is then closed). */
int muond_wire_recv(int sock, int timeout_ms, muond_header_t *h, uint8_t **payload, int *passed_fd);

/* The socket path of a (global) rank: <dir>/<tag>.rank<rank>.sock, where dir is
 * $MUOND_SOCKET_DIR, else $XDG_RUNTIME_DIR/muond, else /tmp/muond-<uid>, and tag is $MUOND_JOB,
 * else slurm-<job> from Slurm (one per job: the daemon and its trainers run as two steps of
 * it), else ompi-<jobid> from Open MPI, else "local".
 * Returns 0, or -1 if it does not fit in cap or in a Unix socket address. */
int muond_socket_dir(char *out, size_t cap);
int muond_socket_path(int rank, char *out, size_t cap);

/* This process's rank: $MUOND_RANK (muond launch), else its launcher's (Open MPI, PMIx,
 * Slurm or PMI), or -1. */
int muond_rank_from_env(void);

#endif
