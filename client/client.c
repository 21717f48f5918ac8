/* libmuond-client (see muond_client.h). libc only (CUDA, when a daemon shares GPU memory, is
 * loaded at run time: cuda_ipc.c). */
#include "muond_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/knobs.h"
#include "cuda_ipc.h"
#include "muond_protocol.h"
#include "transport.h"

enum { DEFAULT_TIMEOUT_MS = 60000, SEND_BUFFER = 64 };

struct muond_client {
    int sock;
    muond_welcome_t welcome;
    muond_hyper_t *hyper; /* per parameter: what the next STEP carries */
    uint8_t *step_msg;    /* STEP's buffer, sized for every parameter's hyper-parameters */
    size_t step_msg_cap;
    void *region; /* mapped host memory, or the opened device allocation */
    size_t region_bytes;
    bool on_device; /* the region is GPU memory opened by CUDA IPC */
    char error[512];
};

static muond_status_t say(char *buf, size_t len, muond_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static muond_status_t say(char *buf, size_t len, muond_status_t status, const char *fmt, ...)
{
    if (buf && len) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(buf, len, fmt, args);
        va_end(args);
    }
    return status;
}

const char *muond_status_string(muond_status_t status)
{
    static const char *const names[] = {
        "ok",      "invalid argument", "i/o error",     "protocol error",
        "refused", "timed out",        "out of memory", "step failed"};
    return (unsigned)status < sizeof names / sizeof names[0] ? names[status] : "unknown";
}

int muond_env_rank(void)
{
    return muond_rank_from_env();
}

muond_status_t muond_default_socket_path(int rank, char *out, size_t cap)
{
    return muond_socket_path(rank, out, cap) == 0 ? MUOND_OK : MUOND_ERR_INVALID;
}

/* Connects to the daemon's socket. A daemon started beside us (srun starts both steps at
 * once) may not listen yet: a missing or not yet listening socket is retried every 50 ms
 * until timeout_ms has passed. */
static muond_status_t open_socket(const char *path, int timeout_ms, int *out, char *err, size_t len)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        return say(err, len, MUOND_ERR_INVALID, "socket path too long: %s", path);
    strcpy(addr.sun_path, path);
    for (int waited_ms = 0;; waited_ms += 50) {
        const int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
            return say(err, len, MUOND_ERR_IO, "socket: %s", strerror(errno));
        if (connect(s, (struct sockaddr *)&addr, sizeof addr) == 0) {
            *out = s;
            return MUOND_OK;
        }
        const int e = errno;
        close(s);
        const bool not_yet = e == ENOENT || e == ECONNREFUSED;
        if (!not_yet || waited_ms >= timeout_ms)
            return say(err, len, e == EACCES ? MUOND_ERR_REFUSED : MUOND_ERR_IO,
                       "cannot connect to %s%s: %s", path,
                       not_yet ? " (is muond running in this job?)" : "", strerror(e));
        nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
    }
}

/* An ERROR from the daemon becomes a refusal with its message. */
static muond_status_t daemon_error(const uint8_t *payload, uint32_t len, char *err, size_t elen)
{
    muond_error_msg_t e;
    if (muond_decode_error_msg(payload, len, &e) != MUOND_DECODE_OK)
        return say(err, elen, MUOND_ERR_PROTOCOL, "malformed ERROR from the daemon");
    return say(err, elen, MUOND_ERR_REFUSED, "muond refused: %s", e.message);
}

/* Sends HELLO and reads WELCOME (with the shared-memory fd) or ERROR. */
static muond_status_t handshake(muond_client_t *c, const muond_hello_t *hello, int timeout_ms,
                                int *memfd)
{
    uint8_t msg[SEND_BUFFER];
    const size_t n = muond_encode_hello(msg, sizeof msg, hello);
    const int sent = muond_wire_send(c->sock, msg, n, -1);
    /* A daemon that refuses our uid answers and closes before reading HELLO: the send then
     * fails, but its ERROR is already waiting to be read. */
    muond_header_t h;
    uint8_t *payload = NULL;
    int w = muond_wire_recv(c->sock, timeout_ms, &h, &payload, memfd);
    muond_status_t status = MUOND_OK;
    if (w != MUOND_WIRE_OK && sent != MUOND_WIRE_OK)
        status = say(c->error, sizeof c->error, MUOND_ERR_IO, "sending HELLO: %s",
                     muond_wire_error(sent));
    else if (w != MUOND_WIRE_OK)
        status = say(c->error, sizeof c->error,
                     w == MUOND_WIRE_TIMEOUT ? MUOND_ERR_TIMEOUT : MUOND_ERR_PROTOCOL,
                     "waiting for WELCOME: %s", muond_wire_error(w));
    else if (h.type == MUOND_MSG_ERROR)
        status = daemon_error(payload, h.length, c->error, sizeof c->error);
    else if (h.type != MUOND_MSG_WELCOME ||
             muond_decode_welcome(payload, h.length, &c->welcome) != MUOND_DECODE_OK)
        status = say(c->error, sizeof c->error, MUOND_ERR_PROTOCOL, "malformed WELCOME");
    else if (c->welcome.memory == MUOND_MEMORY_HOST && *memfd < 0)
        status = say(c->error, sizeof c->error, MUOND_ERR_PROTOCOL,
                     "WELCOME came without the shared memory");
    else if (c->welcome.memory == MUOND_MEMORY_CUDA_IPC && *memfd >= 0)
        status = say(c->error, sizeof c->error, MUOND_ERR_PROTOCOL,
                     "a device-memory WELCOME came with a file descriptor");
    free(payload);
    return status;
}

/* Device memory: the daemon's allocation, opened on its GPU (found by PCI bus id). */
static muond_status_t open_device_region(muond_client_t *c)
{
    c->region_bytes = (size_t)c->welcome.region_bytes;
    char why[384];
    if (muond_cuda_ipc_open(c->welcome.cuda_device, c->welcome.cuda_ipc_handle, &c->region, why,
                            sizeof why) != 0) {
        c->region = NULL;
        return say(c->error, sizeof c->error, MUOND_ERR_IO, "opening the daemon's GPU memory: %s",
                   why);
    }
    c->on_device = true;
    return MUOND_OK;
}

static muond_status_t map_region(muond_client_t *c, int memfd)
{
    if (c->welcome.memory == MUOND_MEMORY_CUDA_IPC)
        return open_device_region(c);
    c->region_bytes = (size_t)c->welcome.region_bytes;
    c->region = mmap(NULL, c->region_bytes ? c->region_bytes : 1, PROT_READ | PROT_WRITE,
                     MAP_SHARED, memfd, 0);
    close(memfd);
    if (c->region == MAP_FAILED) {
        c->region = NULL;
        return say(c->error, sizeof c->error, MUOND_ERR_IO,
                   "mapping %zu bytes of shared memory: %s", c->region_bytes, strerror(errno));
    }
    return MUOND_OK;
}

/* The hyper-parameters start at the layout's values; STEP's buffer is sized once. */
static muond_status_t prepare_steps(muond_client_t *c)
{
    const uint32_t n = c->welcome.param_count;
    c->hyper = calloc(n ? n : 1, sizeof *c->hyper);
    c->step_msg_cap = muond_step_msg_bytes(n);
    c->step_msg = malloc(c->step_msg_cap);
    if (!c->hyper || !c->step_msg)
        return say(c->error, sizeof c->error, MUOND_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++)
        c->hyper[i] = c->welcome.params[i].hyper;
    return MUOND_OK;
}

static void free_client(muond_client_t *c)
{
    muond_welcome_free(&c->welcome);
    free(c->hyper);
    free(c->step_msg);
    free(c);
}

static void unmap_region(muond_client_t *c)
{
    char why[384];
    if (c->on_device)
        muond_cuda_ipc_close(c->region, why, sizeof why); /* leaving: nothing to report to */
    else
        munmap(c->region, c->region_bytes ? c->region_bytes : 1);
    c->region = NULL;
}

static uint64_t digest_from(const muond_client_options_t *o)
{
    if (o->layout_digest)
        return o->layout_digest;
    const char *env = getenv(mu_knob_env(MU_KNOB_LAYOUT_DIGEST));
    return env ? strtoull(env, NULL, 16) : 0;
}

muond_status_t muond_connect(const muond_client_options_t *o, muond_client_t **out, char *err,
                             size_t err_len)
{
    if (!o || !out || o->rank < 0)
        return say(err, err_len, MUOND_ERR_INVALID, "muond_connect: bad arguments");
    *out = NULL;
    const muond_hello_t hello = {digest_from(o), o->rank};
    if (hello.layout_digest == 0)
        return say(err, err_len, MUOND_ERR_INVALID,
                   "no layout digest (set options.layout_digest or MUOND_LAYOUT_DIGEST; "
                   "`muond check --layout F` prints it)");
    char path[512];
    if (o->socket_path)
        snprintf(path, sizeof path, "%s", o->socket_path);
    else if (muond_socket_path(o->rank, path, sizeof path) != 0)
        return say(err, err_len, MUOND_ERR_INVALID, "socket path too long");
    muond_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return say(err, err_len, MUOND_ERR_NOMEM, "out of memory");
    c->sock = -1;
    const int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
    muond_status_t status = open_socket(path, timeout_ms, &c->sock, err, err_len);
    int memfd = -1;
    if (status == MUOND_OK)
        status = handshake(c, &hello, timeout_ms, &memfd);
    if (status == MUOND_OK)
        status = map_region(c, memfd);
    else if (memfd >= 0)
        close(memfd);
    if (status == MUOND_OK)
        status = prepare_steps(c);
    if (status != MUOND_OK) {
        if (c->error[0])
            say(err, err_len, status, "%s", c->error);
        if (c->sock >= 0)
            close(c->sock);
        if (c->region)
            unmap_region(c);
        free_client(c);
        return status;
    }
    *out = c;
    return MUOND_OK;
}

muond_status_t muond_param_at(muond_client_t *c, int index, muond_param_t *out)
{
    if (!c || !out || index < 0 || (uint32_t)index >= c->welcome.param_count)
        return MUOND_ERR_INVALID;
    const muond_param_info_t *p = &c->welcome.params[index];
    *out = (muond_param_t){
        .name = p->name,
        .weights = (float *)((char *)c->region + p->weight_offset),
        .grads = (float *)((char *)c->region + p->grad_offset),
        .rows = p->rows,
        .cols = p->cols,
        .row_begin = p->row_begin,
        .row_end = p->row_end,
        .on_device = c->on_device,
        .ndim = (int)p->ndim,
        .method = p->method,
        .lr = p->hyper.lr,
        .weight_decay = p->hyper.weight_decay,
        .momentum = p->hyper.momentum,
    };
    memcpy(out->dims, p->dims, sizeof out->dims);
    return MUOND_OK;
}

muond_status_t muond_set_hyper(muond_client_t *c, int index, double lr, double weight_decay,
                               double momentum)
{
    if (!c)
        return MUOND_ERR_INVALID;
    if (index < 0 || (uint32_t)index >= c->welcome.param_count)
        return say(c->error, sizeof c->error, MUOND_ERR_INVALID,
                   "muond_set_hyper: no parameter %d (the layout has %u)", index,
                   c->welcome.param_count);
    const muond_hyper_t h = {lr, weight_decay, momentum};
    char why[128];
    if (muond_hyper_problem(&h, why, sizeof why))
        return say(c->error, sizeof c->error, MUOND_ERR_INVALID, "parameter '%s': %s",
                   c->welcome.params[index].name, why);
    c->hyper[index] = h;
    return MUOND_OK;
}

muond_status_t muond_param(muond_client_t *c, const char *name, muond_param_t *out)
{
    if (!c || !name || !out)
        return MUOND_ERR_INVALID;
    for (uint32_t i = 0; i < c->welcome.param_count; i++)
        if (strcmp(c->welcome.params[i].name, name) == 0)
            return muond_param_at(c, (int)i, out);
    return say(c->error, sizeof c->error, MUOND_ERR_INVALID, "no parameter named '%s'", name);
}

int muond_param_count(const muond_client_t *c)
{
    return c ? (int)c->welcome.param_count : 0;
}

static muond_status_t read_done(muond_client_t *c, int64_t step, muond_step_result_t *r)
{
    muond_header_t h;
    uint8_t *payload = NULL;
    const int w = muond_wire_recv(c->sock, -1, &h, &payload, NULL);
    if (w != MUOND_WIRE_OK)
        return say(c->error, sizeof c->error, MUOND_ERR_IO, "waiting for DONE(%lld): %s",
                   (long long)step, muond_wire_error(w));
    muond_done_t d;
    muond_status_t status = MUOND_OK;
    if (h.type == MUOND_MSG_ERROR)
        status = daemon_error(payload, h.length, c->error, sizeof c->error);
    else if (h.type != MUOND_MSG_DONE || muond_decode_done(payload, h.length, &d) != 0 ||
             d.step != step)
        status = say(c->error, sizeof c->error, MUOND_ERR_PROTOCOL, "expected DONE(%lld)",
                     (long long)step);
    free(payload);
    if (status != MUOND_OK)
        return status;
    *r = (muond_step_result_t){.step = d.step,
                               .status = (int)d.status,
                               .fallbacks = (int)d.fallbacks,
                               .events_total = (int)d.events_total};
    snprintf(r->message, sizeof r->message, "%s", d.message);
    for (uint32_t i = 0; i < d.event_count; i++)
        if (d.events[i].param < c->welcome.param_count)
            r->events[r->event_count++] =
                (muond_step_event_t){(int)d.events[i].kind, (int)d.events[i].param};
    c->welcome.steps_done = step;
    if (d.status == MUOND_STEP_FAILED)
        return say(c->error, sizeof c->error, MUOND_ERR_STEP, "step %lld failed: %s",
                   (long long)step, d.message);
    return MUOND_OK;
}

muond_status_t muond_step(muond_client_t *c, muond_step_result_t *result)
{
    if (!c)
        return MUOND_ERR_INVALID;
    muond_step_result_t local;
    const int64_t step = c->welcome.steps_done + 1;
    const muond_step_msg_t m = {step, c->welcome.param_count, c->hyper};
    const int w = muond_wire_send(c->sock, c->step_msg,
                                  muond_encode_step(c->step_msg, c->step_msg_cap, &m), -1);
    if (w == MUOND_WIRE_OK)
        return read_done(c, step, result ? result : &local);
    /* A daemon that stopped (SIGTERM) answers the step before closing, perhaps before we
     * asked: its answer is then still waiting to be read, and says more than EPIPE. */
    const muond_status_t answer = read_done(c, step, result ? result : &local);
    if (answer == MUOND_ERR_IO)
        return say(c->error, sizeof c->error, MUOND_ERR_IO, "sending STEP(%lld): %s",
                   (long long)step, muond_wire_error(w));
    return answer;
}

int64_t muond_steps_done(const muond_client_t *c)
{
    return c ? c->welcome.steps_done : -1;
}

int muond_rank(const muond_client_t *c)
{
    return c ? c->welcome.rank : -1;
}

int muond_ranks(const muond_client_t *c)
{
    return c ? c->welcome.ranks : -1;
}

int muond_on_device(const muond_client_t *c)
{
    return c ? c->on_device : -1;
}

muond_status_t muond_copy(muond_client_t *c, void *dst, const void *src, size_t bytes)
{
    if (!c || (!dst && bytes) || (!src && bytes))
        return MUOND_ERR_INVALID;
    if (!c->on_device) {
        memcpy(dst, src, bytes);
        return MUOND_OK;
    }
    char why[384];
    if (muond_cuda_copy(dst, src, bytes, why, sizeof why) != 0)
        return say(c->error, sizeof c->error, MUOND_ERR_IO, "%s", why);
    return MUOND_OK;
}

int muond_local_gradients(const muond_client_t *c)
{
    return c ? (int)c->welcome.gradient_mode : -1;
}

muond_status_t muond_close(muond_client_t **cp)
{
    if (!cp || !*cp)
        return MUOND_OK;
    muond_client_t *c = *cp;
    uint8_t msg[SEND_BUFFER];
    const int w = muond_wire_send(c->sock, msg, muond_encode_bye(msg, sizeof msg), -1);
    if (c->region)
        unmap_region(c);
    close(c->sock);
    free_client(c);
    *cp = NULL;
    return w == MUOND_WIRE_OK ? MUOND_OK : MUOND_ERR_IO;
}

const char *muond_client_error(const muond_client_t *c)
{
    return c ? c->error : "no client";
}
