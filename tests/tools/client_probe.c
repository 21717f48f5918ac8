/*
 * client_probe: misbehaving and well-behaved clients for the trainer-interface tests.
 *
 *   client_probe connect SOCKET RANK DIGEST        a normal HELLO; prints "connected" or the error
 *   client_probe version SOCKET RANK DIGEST V      HELLO claiming protocol version V (as a
 *                                                  client of version V, it reads the answer
 *                                                  only if it comes in version V)
 *   client_probe garbage SOCKET                    bytes that are not a muond message
 *   client_probe truncated SOCKET                  a header promising more bytes than it sends
 *   client_probe skip-step SOCKET RANK DIGEST      connects, then asks for step 1 + 5
 *   client_probe bad-hyper SOCKET RANK DIGEST      muond_set_hyper with a NaN rate (refused by
 *                                                  the library), then a raw STEP whose
 *                                                  momentum is 1 (refused by the daemon)
 *   client_probe step-lr SOCKET RANK DIGEST LR     sets every parameter's rate to LR and asks
 *                                                  for one step
 *
 * Every mode prints the daemon's answer on stdout (the ERROR message when there is one) and
 * exits 0 when the answer arrived, 1 when it did not.
 */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "muond_client.h"
#include "muond_protocol.h"
#include "transport.h"

static int open_socket(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    const int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
        perror("client_probe: connect");
        exit(1);
    }
    return s;
}

/* Prints the daemon's reply (ERROR text, or the message type). */
static int print_reply(int s)
{
    muond_header_t h;
    uint8_t *payload = NULL;
    const int w = muond_wire_recv(s, 10000, &h, &payload, NULL);
    if (w != MUOND_WIRE_OK) {
        printf("no reply: %s\n", muond_wire_error(w));
        return 1;
    }
    muond_error_msg_t e;
    if (h.type == MUOND_MSG_ERROR && muond_decode_error_msg(payload, h.length, &e) == 0)
        printf("ERROR %u: %s\n", e.code, e.message);
    else
        printf("reply of type %u\n", h.type);
    free(payload);
    return 0;
}

/* A connected client through the library, or NULL after printing why not. */
static muond_client_t *try_connect(const char *path, int rank, uint64_t digest)
{
    muond_client_options_t o = {
        .socket_path = path, .rank = rank, .layout_digest = digest, .timeout_ms = 10000};
    muond_client_t *c = NULL;
    char err[512];
    if (muond_connect(&o, &c, err, sizeof err) != MUOND_OK)
        printf("%s\n", err);
    return c;
}

static int probe_connect(const char *path, int rank, uint64_t digest)
{
    muond_client_t *c = try_connect(path, rank, digest);
    if (c)
        printf("connected (%lld steps done)\n", (long long)muond_steps_done(c));
    muond_close(&c);
    return 0;
}

/* The daemon's whole answer (it closes after an ERROR), within 10 s. */
static size_t read_until_closed(int s, uint8_t *buf, size_t cap)
{
    size_t got = 0;
    struct pollfd p = {s, POLLIN, 0};
    while (got < cap && poll(&p, 1, 10000) == 1) {
        const ssize_t n = recv(s, buf + got, cap - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static void set_version(uint8_t *header, unsigned version)
{
    header[4] = (uint8_t)version; /* the header's version field, little-endian */
    header[5] = (uint8_t)(version >> 8);
}

static int probe_version(const char *path, int rank, uint64_t digest, unsigned version)
{
    uint8_t msg[64];
    const muond_hello_t hello = {digest, rank};
    const size_t n = muond_encode_hello(msg, sizeof msg, &hello);
    set_version(msg, version);
    const int s = open_socket(path);
    muond_wire_send(s, msg, n, -1);
    uint8_t reply[4096];
    const size_t got = read_until_closed(s, reply, sizeof reply);
    const unsigned replied = got >= MUOND_HEADER_BYTES ? reply[4] | (unsigned)reply[5] << 8 : 0;
    if (replied != version) {
        printf("no reply in version %u (%zu bytes, version %u)\n", version, got, replied);
        return 1;
    }
    set_version(reply, MUOND_PROTOCOL_VERSION); /* ERROR reads the same in every version */
    muond_header_t h;
    muond_error_msg_t e;
    if (muond_decode_header(reply, got, &h) != 0 || h.type != MUOND_MSG_ERROR ||
        h.length != got - MUOND_HEADER_BYTES ||
        muond_decode_error_msg(reply + MUOND_HEADER_BYTES, h.length, &e) != 0) {
        printf("a malformed reply in version %u\n", version);
        return 1;
    }
    printf("ERROR %u in version %u: %s\n", e.code, version, e.message);
    return 0;
}

static int probe_bytes(const char *path, const uint8_t *bytes, size_t n)
{
    const int s = open_socket(path);
    muond_wire_send(s, bytes, n, -1);
    return print_reply(s);
}

/* A raw HELLO/WELCOME, bypassing the library: the socket, with *w decoded (free it), or -1. */
static int raw_handshake(const char *path, int rank, uint64_t digest, muond_welcome_t *w)
{
    const int s = open_socket(path);
    uint8_t msg[64];
    const muond_hello_t hello = {digest, rank};
    muond_wire_send(s, msg, muond_encode_hello(msg, sizeof msg, &hello), -1);
    muond_header_t h;
    uint8_t *payload = NULL;
    int fd = -1;
    const int ok = muond_wire_recv(s, 10000, &h, &payload, &fd) == MUOND_WIRE_OK &&
                   muond_decode_welcome(payload, h.length, w) == 0;
    free(payload);
    if (fd >= 0)
        close(fd);
    if (!ok) {
        printf("no WELCOME\n");
        close(s);
        return -1;
    }
    return s;
}

/* A valid trainer handshake, then a STEP far from the expected one. */
static int probe_skip_step(const char *path, int rank, uint64_t digest)
{
    muond_welcome_t w;
    const int s = raw_handshake(path, rank, digest, &w);
    if (s < 0)
        return 1;
    const muond_step_msg_t step = {.step = w.steps_done + 1 + 5};
    muond_welcome_free(&w);
    uint8_t msg[64];
    muond_wire_send(s, msg, muond_encode_step(msg, sizeof msg, &step), -1);
    return print_reply(s);
}

static muond_client_t *connect_or_die(const char *path, int rank, uint64_t digest)
{
    muond_client_t *c = try_connect(path, rank, digest);
    if (!c)
        exit(1);
    return c;
}

/* A raw STEP whose momentum is 1 (the daemon refuses it and drops us), then, reconnected, a
 * NaN rate through the library (which refuses it before sending). */
static int probe_bad_hyper(const char *path, int rank, uint64_t digest)
{
    muond_welcome_t w;
    const int s = raw_handshake(path, rank, digest, &w);
    if (s < 0)
        return 1;
    uint8_t msg[4096];
    muond_hyper_t *hyper = calloc(w.param_count, sizeof *hyper);
    for (uint32_t i = 0; i < w.param_count; i++)
        hyper[i] = (muond_hyper_t){0.01, 0.0, 1.0};
    const muond_step_msg_t step = {w.steps_done + 1, w.param_count, hyper};
    muond_welcome_free(&w);
    const int sent = muond_wire_send(s, msg, muond_encode_step(msg, sizeof msg, &step), -1);
    free(hyper);
    printf("daemon: ");
    if (sent != MUOND_WIRE_OK || print_reply(s) != 0)
        return 1;
    close(s);
    muond_client_t *c = connect_or_die(path, rank, digest);
    if (muond_set_hyper(c, 0, NAN, 0.0, 0.9) == MUOND_OK) {
        printf("a NaN learning rate was accepted\n");
        return 1;
    }
    printf("library: %s\n", muond_client_error(c));
    muond_close(&c);
    return 0;
}

static int probe_step_lr(const char *path, int rank, uint64_t digest, double lr)
{
    muond_client_t *c = connect_or_die(path, rank, digest);
    for (int i = 0; i < muond_param_count(c); i++) {
        muond_param_t p;
        muond_param_at(c, i, &p);
        muond_set_hyper(c, i, lr, p.weight_decay, p.momentum);
    }
    muond_step_result_t r;
    if (muond_step(c, &r) != MUOND_OK)
        printf("step refused: %s\n", muond_client_error(c));
    else
        printf("step %lld done\n", (long long)r.step);
    muond_close(&c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: client_probe MODE SOCKET [RANK DIGEST [VERSION]]\n");
        return 2;
    }
    const char *mode = argv[1], *path = argv[2];
    const int rank = argc > 3 ? atoi(argv[3]) : 0;
    const uint64_t digest = argc > 4 ? strtoull(argv[4], NULL, 16) : 0;
    if (strcmp(mode, "connect") == 0)
        return probe_connect(path, rank, digest);
    if (strcmp(mode, "version") == 0 && argc > 5)
        return probe_version(path, rank, digest, (unsigned)atoi(argv[5]));
    if (strcmp(mode, "garbage") == 0)
        return probe_bytes(path, (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18);
    if (strcmp(mode, "truncated") == 0) {
        uint8_t msg[64];
        const muond_hello_t hello = {1, 0};
        const size_t n = muond_encode_hello(msg, sizeof msg, &hello);
        return probe_bytes(path, msg, n - 5); /* the header promises 12 payload bytes */
    }
    if (strcmp(mode, "skip-step") == 0)
        return probe_skip_step(path, rank, digest);
    if (strcmp(mode, "bad-hyper") == 0)
        return probe_bad_hyper(path, rank, digest);
    if (strcmp(mode, "step-lr") == 0 && argc > 5)
        return probe_step_lr(path, rank, digest, atof(argv[5]));
    fprintf(stderr, "client_probe: unknown mode %s\n", mode);
    return 2;
}
