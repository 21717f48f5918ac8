#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "core/knobs.h"
#include <unistd.h>

const char *muond_wire_error(int code)
{
    switch (code) {
    case MUOND_WIRE_OK:
        return "ok";
    case MUOND_WIRE_CLOSED:
        return "connection closed by the peer";
    case MUOND_WIRE_TIMEOUT:
        return "timed out";
    case MUOND_WIRE_IO:
        return "socket error";
    case MUOND_WIRE_NOMEM:
        return "out of memory";
    default:
        return muond_decode_error(code);
    }
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Waits until sock is readable before the deadline (< 0: none). */
static int wait_readable(int sock, long long deadline)
{
    for (;;) {
        int remaining = -1;
        if (deadline >= 0) {
            const long long left = deadline - now_ms();
            if (left <= 0)
                return MUOND_WIRE_TIMEOUT;
            remaining = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = {sock, POLLIN, 0};
        const int n = poll(&p, 1, remaining);
        if (n > 0)
            return MUOND_WIRE_OK;
        if (n < 0 && errno != EINTR)
            return MUOND_WIRE_IO;
    }
}

int muond_wire_send(int sock, const uint8_t *msg, size_t len, int pass_fd)
{
    size_t sent = 0;
    while (sent < len) {
        struct iovec iov = {(void *)(msg + sent), len - sent};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        union {
            struct cmsghdr align;
            char bytes[CMSG_SPACE(sizeof(int))];
        } control;
        if (pass_fd >= 0 && sent == 0) {
            memset(&control, 0, sizeof control);
            mh.msg_control = control.bytes;
            mh.msg_controllen = sizeof control.bytes;
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        const ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return (errno == EPIPE || errno == ECONNRESET) ? MUOND_WIRE_CLOSED : MUOND_WIRE_IO;
        sent += (size_t)n;
    }
    return MUOND_WIRE_OK;
}

/* Takes the fd out of SCM_RIGHTS ancillary data, if any. */
static int take_fd(struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int))) {
            int fd;
            memcpy(&fd, CMSG_DATA(c), sizeof fd);
            return fd;
        }
    return -1;
}

/* Reads exactly len bytes; the first read also collects a passed fd. */
static int read_exact(int sock, uint8_t *buf, size_t len, long long deadline, int *fd)
{
    size_t got = 0;
    while (got < len) {
        const int w = wait_readable(sock, deadline);
        if (w != MUOND_WIRE_OK)
            return w;
        struct iovec iov = {buf + got, len - got};
        union {
            struct cmsghdr align;
            char bytes[CMSG_SPACE(sizeof(int))];
        } control;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (fd) {
            mh.msg_control = control.bytes;
            mh.msg_controllen = sizeof control.bytes;
        }
        const ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == ECONNRESET ? MUOND_WIRE_CLOSED : MUOND_WIRE_IO;
        if (n == 0)
            return MUOND_WIRE_CLOSED;
        if (fd) {
            const int passed = take_fd(&mh);
            if (passed >= 0 && *fd < 0)
                *fd = passed;
            else if (passed >= 0)
                close(passed); /* only one fd per message is meaningful */
        }
        got += (size_t)n;
    }
    return MUOND_WIRE_OK;
}

int muond_wire_recv(int sock, int timeout_ms, muond_header_t *h, uint8_t **payload, int *passed_fd)
{
    *payload = NULL;
    int fd = -1;
    const long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    uint8_t header[MUOND_HEADER_BYTES];
    int status = read_exact(sock, header, sizeof header, deadline, &fd);
    if (status == MUOND_WIRE_OK)
        status = muond_decode_header(header, sizeof header, h);
    if (status == MUOND_WIRE_OK) {
        *payload = malloc(h->length ? h->length : 1);
        status =
            *payload ? read_exact(sock, *payload, h->length, deadline, NULL) : MUOND_WIRE_NOMEM;
    }
    if (status != MUOND_WIRE_OK) {
        free(*payload);
        *payload = NULL;
    }
    if (passed_fd && status == MUOND_WIRE_OK)
        *passed_fd = fd;
    else if (fd >= 0)
        close(fd);
    return status;
}

int muond_socket_dir(char *out, size_t cap)
{
    const char *dir = getenv(mu_knob_env(MU_KNOB_SOCKET_DIR));
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    int n;
    if (dir && *dir)
        n = snprintf(out, cap, "%s", dir);
    else if (runtime && *runtime)
        n = snprintf(out, cap, "%s/muond", runtime);
    else
        n = snprintf(out, cap, "/tmp/muond-%u", (unsigned)getuid());
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

static void job_tag(char *out, size_t cap)
{
    const char *job = getenv(mu_knob_env(MU_KNOB_JOB));
    const char *slurm_job = getenv("SLURM_JOB_ID");
    const char *ompi_job = getenv("OMPI_MCA_ess_base_jobid");
    if (job && *job)
        snprintf(out, cap, "%s", job);
    else if (slurm_job && *slurm_job) /* the job, not the step: trainers run in another step */
        snprintf(out, cap, "slurm-%s", slurm_job);
    else if (ompi_job && *ompi_job)
        snprintf(out, cap, "ompi-%s", ompi_job);
    else
        snprintf(out, cap, "local");
}

int muond_rank_from_env(void)
{
    const char *names[] = {"MUOND_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID",
                           "PMI_RANK"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        char *end;
        const long r = v && *v ? strtol(v, &end, 10) : -1;
        if (r >= 0 && r <= INT_MAX && *end == '\0')
            return (int)r;
    }
    return -1;
}

int muond_socket_path(int rank, char *out, size_t cap)
{
    char dir[512], tag[128];
    if (muond_socket_dir(dir, sizeof dir) != 0)
        return -1;
    job_tag(tag, sizeof tag);
    const int n = snprintf(out, cap, "%s/%s.rank%d.sock", dir, tag, rank);
    const size_t limit = sizeof(((struct sockaddr_un *)0)->sun_path);
    return (n < 0 || (size_t)n >= cap || (size_t)n >= limit) ? -1 : 0;
}
