/* The daemon's side of the trainer interface; see trainer_server.h. */
#define _GNU_SOURCE /* memfd_create, accept4, struct ucred */
#include "core/clock.h"
#include "launcher/trainer_server.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/muond_protocol.h"
#include "client/transport.h"
#include "core/fault.h"
#include "core/log.h"
#include "launcher/stop.h"
#ifdef MUOND_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

/* A connecting client has this long to send HELLO; a message, once begun, this long to end. */
static const int HANDSHAKE_MS = 5000;
enum { LISTEN_BACKLOG = 8, SMALL_MESSAGE = 1024 };

struct mu_trainer_server {
    mu_trainer_server_opts_t o;
    int listen_fd, trainer_fd, memfd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    mu_io_provider_t io;
    uint32_t memory; /* muond_memory_t of the region */
    uint8_t ipc_handle[MUOND_IPC_HANDLE_BYTES];
    char bus_id[MUOND_BUS_ID_MAX];
    muond_welcome_t welcome; /* the region's description, sent to every admitted trainer */
    uint8_t *welcome_msg;
    size_t welcome_len;
    muond_step_msg_t step; /* the trainer's last STEP, with its hyper-parameters if any */
};

/* ---- the private directory and the socket ----------------------------------------------- */

static mu_status_t private_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mu_error(MU_ERR_IO, "cannot create the socket directory %s: %s", dir,
                        strerror(errno));
    struct stat st;
    if (lstat(dir, &st) != 0)
        return mu_error(MU_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
        return mu_error(MU_ERR_INVALID,
                        "socket directory %s is not private (a directory of uid %u with mode "
                        "0700 is required; found owner %u, mode %04o)",
                        dir, (unsigned)geteuid(), (unsigned)st.st_uid, st.st_mode & 07777);
    return MU_OK;
}

/* An existing socket file is either live (another daemon: refuse) or stale (remove it). */
static mu_status_t clear_stale(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return MU_OK;
    if (!S_ISSOCK(st.st_mode))
        return mu_error(MU_ERR_INVALID, "%s exists and is not a socket", path);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, path);
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof addr) == 0;
    if (probe >= 0)
        close(probe);
    if (live)
        return mu_error(MU_ERR_INVALID,
                        "%s is in use by another muond (set MUOND_JOB to tell "
                        "concurrent jobs apart)",
                        path);
    unlink(path);
    return MU_OK;
}

static mu_status_t listen_on(mu_trainer_server_t *s)
{
    char dir[512];
    if (muond_socket_dir(dir, sizeof dir) != 0 ||
        muond_socket_path(s->o.rank, s->path, sizeof s->path) != 0)
        return mu_error(MU_ERR_INVALID, "the socket path is too long (set MUOND_SOCKET_DIR)");
    MU_CHECK(private_dir(dir));
    MU_CHECK(clear_stale(s->path));
    s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0)
        return mu_error(MU_ERR_IO, "socket: %s", strerror(errno));
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, s->path);
    const mode_t old = umask(0177); /* the socket is born 0600, with no window */
    const int bound = bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (bound != 0 || listen(s->listen_fd, LISTEN_BACKLOG) != 0)
        return mu_error(MU_ERR_IO, "cannot listen on %s: %s", s->path, strerror(errno));
    return MU_OK;
}

/* ---- shared memory ----------------------------------------------------------------------- */

static mu_status_t memfd_map(mu_trainer_server_t *s, size_t bytes, void **base)
{
    char name[64];
    snprintf(name, sizeof name, "muond-weights-and-gradients");
    s->memfd = memfd_create(name, MFD_CLOEXEC);
    if (s->memfd < 0 || ftruncate(s->memfd, (off_t)bytes) != 0)
        return mu_error(MU_ERR_IO, "shared memory of %zu bytes: %s", bytes, strerror(errno));
    *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, s->memfd, 0);
    if (*base == MAP_FAILED) {
        *base = NULL;
        return mu_error(MU_ERR_IO, "mmap: %s", strerror(errno));
    }
    return MU_OK; /* a new memfd reads as zeros */
}

/* Device memory goes to the trainer as a CUDA IPC handle; the trainer opens it on our GPU. */
static mu_status_t cuda_ipc_map(mu_trainer_server_t *s, mu_backend_t *be, size_t bytes, void **base)
{
#ifdef MUOND_HAVE_CUDA
    MU_CHECK(mu_io_device_map(be, bytes, base));
    char why[256];
    if (mu_cuda_ipc_export(*base, s->ipc_handle, s->bus_id, sizeof s->bus_id, why, sizeof why))
        return mu_error(MU_ERR_CUDA, "%s", why);
    s->memory = MUOND_MEMORY_CUDA_IPC;
    return MU_OK;
#else
    (void)be, (void)bytes, (void)base;
    return mu_error(MU_ERR_NOTSUP, "device memory for trainers needs CUDA");
#endif
}

static mu_status_t share_map(void *ctx, mu_backend_t *be, size_t bytes, void **base)
{
    return mu_backend_host_memory(be) ? memfd_map(ctx, bytes, base)
                                      : cuda_ipc_map(ctx, be, bytes, base);
}

static void share_unmap(void *ctx, mu_backend_t *be, void *base, size_t bytes)
{
    (void)ctx;
    if (mu_backend_host_memory(be))
        munmap(base, bytes);
    else
        mu_io_device_unmap(be, base, bytes);
}

mu_status_t mu_trainer_server_new(mu_trainer_server_t **out)
{
    mu_trainer_server_t *s = calloc(1, sizeof *s);
    if (!s)
        return mu_error(MU_ERR_NOMEM, "trainer server: cannot allocate");
    *s = (mu_trainer_server_t){.listen_fd = -1, .trainer_fd = -1, .memfd = -1};
    s->io = (mu_io_provider_t){share_map, share_unmap, s};
    *out = s;
    return MU_OK;
}

void mu_trainer_server_destroy(mu_trainer_server_t **srv)
{
    if (!srv || !*srv)
        return;
    mu_trainer_server_t *s = *srv;
    if (s->trainer_fd >= 0)
        close(s->trainer_fd);
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        unlink(s->path);
    }
    if (s->memfd >= 0)
        close(s->memfd);
    muond_welcome_free(&s->welcome);
    muond_step_msg_free(&s->step);
    free(s->welcome_msg);
    free(s);
    *srv = NULL;
}

const mu_io_provider_t *mu_trainer_server_io(mu_trainer_server_t *srv)
{
    return &srv->io;
}

const char *mu_trainer_server_path(const mu_trainer_server_t *srv)
{
    return srv->path;
}

/* One parameter's entry in WELCOME: where its rows are, its shape, method and layout values. */
static void describe_param(const mu_layout_t *l, int i, const mu_param_view_t *v, void *base,
                           muond_param_info_t *out)
{
    const mu_param_t *p = &l->params[i];
    mu_hyper_t h;
    mu_layout_hyper(l, i, &h);
    *out = (muond_param_info_t){.rows = p->rows,
                                .cols = p->cols,
                                .row_begin = v->row_begin,
                                .row_end = v->row_end,
                                .weight_offset = (uint64_t)((char *)v->w.data - (char *)base),
                                .grad_offset = (uint64_t)((char *)v->g.data - (char *)base),
                                .ndim = (uint32_t)p->ndim,
                                .hyper = {h.lr, h.weight_decay, h.momentum}};
    for (int d = 0; d < p->ndim; d++)
        out->dims[d] = p->dims[d];
    snprintf(out->name, sizeof out->name, "%s", p->name);
    snprintf(out->method, sizeof out->method, "%s", mu_method_name(p->method));
}

/* Describes the optimizer's region for WELCOME. */
static mu_status_t describe_region(mu_trainer_server_t *s, mu_optimizer_t *opt)
{
    const mu_layout_t *l = s->o.layout;
    void *base;
    size_t bytes;
    mu_optimizer_io_region(opt, &base, &bytes);
    s->welcome = (muond_welcome_t){.layout_digest = l->digest,
                                   .rank = s->o.rank,
                                   .ranks = mu_optimizer_plan(opt)->ranks,
                                   .gradient_mode = l->settings.grad_mode == MU_GRAD_LOCAL,
                                   .region_bytes = bytes,
                                   .memory = s->memory,
                                   .param_count = (uint32_t)l->param_count};
    memcpy(s->welcome.cuda_ipc_handle, s->ipc_handle, sizeof s->ipc_handle);
    memcpy(s->welcome.cuda_device, s->bus_id, sizeof s->bus_id);
    s->welcome.params = calloc((size_t)l->param_count + 1, sizeof *s->welcome.params);
    if (!s->welcome.params)
        return mu_error(MU_ERR_NOMEM, "trainer server: cannot describe the region");
    for (int i = 0; i < l->param_count; i++) {
        mu_param_view_t v;
        MU_CHECK(mu_optimizer_param(opt, i, &v));
        describe_param(l, i, &v, base, &s->welcome.params[i]);
    }
    return MU_OK;
}

mu_status_t mu_trainer_server_start(mu_trainer_server_t *s, const mu_trainer_server_opts_t *o,
                                    mu_optimizer_t *opt)
{
    s->o = *o;
    MU_CHECK(describe_region(s, opt));
    MU_CHECK(listen_on(s));
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "trainers connect to %s", s->path);
    return MU_OK;
}

/* ---- connections -------------------------------------------------------------------------- */

static void send_error_as(int fd, uint16_t version, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An ERROR in the given protocol version's header (the peer's, for a HELLO we cannot speak). */
static void send_error_as(int fd, uint16_t version, uint32_t code, const char *fmt, ...)
{
    muond_error_msg_t e = {.code = code};
    va_list args;
    va_start(args, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, args);
    va_end(args);
    uint8_t msg[SMALL_MESSAGE];
    muond_wire_send(fd, msg, muond_encode_error_as(msg, sizeof msg, version, &e), -1);
}

#define send_error(fd, ...) send_error_as(fd, MUOND_PROTOCOL_VERSION, __VA_ARGS__)

/* SO_PEERCRED: our own uid, or the admitted group. */
static bool admitted(const mu_trainer_server_t *s, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    if (cred.uid == geteuid() || (s->o.allow_gid >= 0 && cred.gid == (gid_t)s->o.allow_gid))
        return true;
    MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER, "refused a connection from uid %u (pid %d)",
           (unsigned)cred.uid, (int)cred.pid);
    send_error(fd, MUOND_REFUSED_UID, "uid %u may not use this muond (it runs as uid %u)",
               (unsigned)cred.uid, (unsigned)geteuid());
    return false;
}

/* Reads HELLO and checks it; on failure the peer has been told why. */
static bool check_hello(const mu_trainer_server_t *s, int fd)
{
    muond_header_t h = {0};
    uint8_t *payload = NULL;
    const int w = muond_wire_recv(fd, HANDSHAKE_MS, &h, &payload, NULL);
    muond_hello_t hello;
    bool ok = false;
    if (w == MUOND_DECODE_VERSION) /* answered in the client's version, so that it can read it */
        send_error_as(fd, h.version, MUOND_BAD_VERSION,
                      "protocol version %u; this muond speaks %u (rebuild the trainer against "
                      "this muond's libmuond-client)",
                      (unsigned)h.version, MUOND_PROTOCOL_VERSION);
    else if (w != MUOND_WIRE_OK)
        send_error(fd, MUOND_BAD_MESSAGE, "expected HELLO: %s", muond_wire_error(w));
    else if (h.type != MUOND_MSG_HELLO || muond_decode_hello(payload, h.length, &hello) != 0)
        send_error(fd, MUOND_BAD_MESSAGE, "expected a well-formed HELLO");
    else if (hello.layout_digest != s->o.layout->digest)
        send_error(fd, MUOND_BAD_DIGEST, "layout digest %016llx; this muond runs %s (%016llx)",
                   (unsigned long long)hello.layout_digest, s->o.layout->name,
                   (unsigned long long)s->o.layout->digest);
    else if (hello.rank != s->o.rank)
        send_error(fd, MUOND_BAD_RANK, "HELLO for rank %d reached rank %d", hello.rank, s->o.rank);
    else
        ok = true;
    if (!ok)
        MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER, "rejected a client handshake");
    free(payload);
    return ok;
}

static mu_status_t welcome(mu_trainer_server_t *s, int fd, long steps_done)
{
    s->welcome.steps_done = steps_done;
    const size_t cap = muond_welcome_msg_bytes(s->welcome.param_count);
    uint8_t *msg = malloc(cap);
    if (!msg)
        return mu_error(MU_ERR_NOMEM, "cannot encode WELCOME");
    const size_t n = muond_encode_welcome(msg, cap, &s->welcome);
    const int w = n ? muond_wire_send(fd, msg, n, s->memfd) : MUOND_WIRE_NOMEM;
    free(msg);
    if (w != MUOND_WIRE_OK)
        MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER, "WELCOME failed: %s", muond_wire_error(w));
    return w == MUOND_WIRE_OK ? MU_OK : MU_ERR_IO;
}

/* A new connection: admitted and well-formed ones become the trainer if there is none. */
static void accept_one(mu_trainer_server_t *s, long steps_done)
{
    const int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (!admitted(s, fd) || !check_hello(s, fd)) {
        close(fd);
        return;
    }
    if (s->trainer_fd >= 0) {
        send_error(fd, MUOND_BUSY, "rank %d already serves a trainer", s->o.rank);
        close(fd);
        return;
    }
    if (welcome(s, fd, steps_done) != MU_OK) {
        close(fd);
        return;
    }
    s->trainer_fd = fd;
    MU_LOG(MU_LOG_INFO, MU_SUB_LAUNCHER, "trainer connected (%ld steps done)", steps_done);
}

/* what: how the trainer left, e.g. "disconnected before step 7". */
static void drop_trainer(mu_trainer_server_t *s, const char *what)
{
    MU_LOG(MU_LOG_WARN, MU_SUB_LAUNCHER, "trainer %s; waiting up to %.0f s for it to reconnect",
           what, s->o.trainer_timeout_s);
    close(s->trainer_fd);
    s->trainer_fd = -1;
}

/* Injected trainer-kill: SIGKILL to the connected trainer (its pid from SO_PEERCRED). */
static bool kill_trainer(mu_trainer_server_t *s, long step)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (!mu_fault_fire(MU_FAULT_TRAINER_KILL, s->o.rank, step, NULL) ||
        getsockopt(s->trainer_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
        return false;
    kill(cred.pid, SIGKILL);
    char what[160];
    snprintf(what, sizeof what, "(pid %d) was killed before step %ld (injected trainer-kill)",
             (int)cred.pid, step);
    drop_trainer(s, what);
    return true;
}

/* An ERROR saying why, then the trainer is dropped (it may reconnect). */
static void reject_trainer(mu_trainer_server_t *s, uint32_t code, long step, const char *why)
{
    send_error(s->trainer_fd, code, "%s", why);
    muond_step_msg_free(&s->step);
    char what[400];
    snprintf(what, sizeof what, "sent a bad message before step %ld (%.300s)", step, why);
    drop_trainer(s, what);
}

/* A well-formed STEP for `step` with none or one value set per parameter (the values were
 * range-checked by the decoder); on failure, `why` says what was wrong. */
static bool step_acceptable(const mu_trainer_server_t *s, const uint8_t *payload, uint32_t len,
                            long step, muond_step_msg_t *m, char *why, size_t cap)
{
    if (muond_decode_step(payload, len, m) != MUOND_DECODE_OK) {
        snprintf(why, cap,
                 "expected STEP(%ld) with valid hyper-parameters (lr and "
                 "weight_decay in [0, %g], momentum in [0, 1))",
                 step, MUOND_HYPER_MAX);
        return false;
    }
    if (m->step != step) {
        snprintf(why, cap, "expected STEP(%ld), got STEP(%lld)", step, (long long)m->step);
        return false;
    }
    if (m->hyper_count != 0 && m->hyper_count != s->welcome.param_count) {
        snprintf(why, cap,
                 "STEP(%ld) carries %u hyper-parameter sets; the layout has %u "
                 "parameters",
                 step, m->hyper_count, s->welcome.param_count);
        return false;
    }
    return true;
}

/* The trainer's next message: 1 = STEP(step), 2 = BYE, 0 = it is gone (dropped). */
static int trainer_message(mu_trainer_server_t *s, long step)
{
    if (kill_trainer(s, step))
        return 0;
    muond_header_t h;
    uint8_t *payload = NULL;
    const int w = muond_wire_recv(s->trainer_fd, HANDSHAKE_MS, &h, &payload, NULL);
    if (w == MUOND_WIRE_OK && mu_fault_fire(MU_FAULT_BAD_MESSAGE, s->o.rank, step, NULL))
        h.type = UINT16_MAX; /* as if the trainer had sent a type no protocol version has */
    int result = 0;
    char why[256];
    muond_step_msg_free(&s->step);
    if (w != MUOND_WIRE_OK) {
        char what[160];
        snprintf(what, sizeof what, "%s before step %ld",
                 w == MUOND_WIRE_CLOSED ? "disconnected" : muond_wire_error(w), step);
        drop_trainer(s, what);
    } else if (h.type == MUOND_MSG_BYE) {
        result = 2;
    } else if (h.type == MUOND_MSG_STEP &&
               step_acceptable(s, payload, h.length, step, &s->step, why, sizeof why)) {
        result = 1;
    } else {
        if (h.type != MUOND_MSG_STEP)
            snprintf(why, sizeof why, "expected STEP(%ld)", step);
        reject_trainer(s, h.type == MUOND_MSG_STEP ? MUOND_BAD_STEP : MUOND_BAD_MESSAGE, step, why);
    }
    free(payload);
    return result;
}

mu_status_t mu_trainer_server_wait(mu_trainer_server_t *s, long step, mu_trainer_event_t *event)
{
    double deadline = s->trainer_fd < 0 ? mu_seconds() + s->o.trainer_timeout_s : -1;
    for (;;) {
        struct pollfd fds[2] = {{s->listen_fd, POLLIN, 0}, {s->trainer_fd, POLLIN, 0}};
        const int nfds = s->trainer_fd >= 0 ? 2 : 1;
        const double left = deadline < 0 ? -1 : deadline - mu_seconds();
        if (deadline >= 0 && left <= 0) {
            *event = MU_TRAINER_LOST;
            return MU_OK;
        }
        if (mu_stop_signal()) {
            *event = MU_TRAINER_STOP;
            return MU_OK;
        }
        const int wait_ms = left < 0 ? MU_STOP_POLL_MS : (int)(left * 1000) + 1;
        const int n =
            poll(fds, (nfds_t)nfds, wait_ms < MU_STOP_POLL_MS ? wait_ms : MU_STOP_POLL_MS);
        if (n < 0 && errno != EINTR)
            return mu_error(MU_ERR_IO, "poll: %s", strerror(errno));
        if (n > 0 && (fds[0].revents & POLLIN))
            accept_one(s, step - 1);
        if (n > 0 && nfds == 2 && fds[1].revents) {
            const int m = trainer_message(s, step);
            if (m == 1 || m == 2) {
                *event = m == 1 ? MU_TRAINER_STEP : MU_TRAINER_BYE;
                return MU_OK;
            }
        }
        if (s->trainer_fd >= 0)
            deadline = -1;
        else if (deadline < 0)
            deadline = mu_seconds() + s->o.trainer_timeout_s;
    }
}

const muond_hyper_t *mu_trainer_server_hyper(const mu_trainer_server_t *s)
{
    return s->step.hyper_count ? s->step.hyper : NULL;
}

void mu_trainer_server_done(mu_trainer_server_t *s, const muond_done_t *d)
{
    if (s->trainer_fd < 0)
        return;
    uint8_t msg[SMALL_MESSAGE + MUOND_EVENTS_MAX * 8];
    const int w = muond_wire_send(s->trainer_fd, msg, muond_encode_done(msg, sizeof msg, d), -1);
    char what[160];
    snprintf(what, sizeof what, "went away during step %lld (the step was applied)",
             (long long)d->step);
    if (w != MUOND_WIRE_OK)
        drop_trainer(s, what);
}
