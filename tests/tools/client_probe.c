/*
 * client_probe: misbehaving and well-behaved clients for the trainer-interface tests.
 *
 *   client_probe connect SOCKET RANK DIGEST        a normal HELLO; prints "connected" or the error
 *   client_probe version SOCKET RANK DIGEST V      HELLO claiming protocol version V
 *   client_probe garbage SOCKET                    bytes that are not a muond message
 *   client_probe truncated SOCKET                  a header promising more bytes than it sends
 *   client_probe skip-step SOCKET RANK DIGEST      connects, then asks for step 1 + 5
 *
 * Every mode prints the daemon's answer on stdout (the ERROR message when there is one) and
 * exits 0 when the answer arrived, 1 when it did not.
 */
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

static int probe_connect(const char *path, int rank, uint64_t digest)
{
    muond_client_options_t o = {
        .socket_path = path, .rank = rank, .layout_digest = digest, .timeout_ms = 10000};
    muond_client_t *c = NULL;
    char err[512];
    if (muond_connect(&o, &c, err, sizeof err) != MUOND_OK) {
        printf("%s\n", err);
        return 0;
    }
    printf("connected (%lld steps done)\n", (long long)muond_steps_done(c));
    muond_close(&c);
    return 0;
}

static int probe_version(const char *path, int rank, uint64_t digest, unsigned version)
{
    uint8_t msg[64];
    const muond_hello_t hello = {digest, rank};
    const size_t n = muond_encode_hello(msg, sizeof msg, &hello);
    msg[4] = (uint8_t)version; /* the header's version field, little-endian */
    msg[5] = (uint8_t)(version >> 8);
    const int s = open_socket(path);
    muond_wire_send(s, msg, n, -1);
    return print_reply(s);
}

static int probe_bytes(const char *path, const uint8_t *bytes, size_t n)
{
    const int s = open_socket(path);
    muond_wire_send(s, bytes, n, -1);
    return print_reply(s);
}

/* A valid trainer handshake, then a STEP far from the expected one. */
static int probe_skip_step(const char *path, int rank, uint64_t digest)
{
    const int s = open_socket(path);
    uint8_t msg[64];
    const muond_hello_t hello = {digest, rank};
    muond_wire_send(s, msg, muond_encode_hello(msg, sizeof msg, &hello), -1);
    muond_header_t h;
    uint8_t *payload = NULL;
    int fd = -1;
    if (muond_wire_recv(s, 10000, &h, &payload, &fd) != MUOND_WIRE_OK) {
        printf("no WELCOME\n");
        return 1;
    }
    muond_welcome_t w;
    const int64_t next = muond_decode_welcome(payload, h.length, &w) == 0 ? w.steps_done + 1 : 1;
    muond_welcome_free(&w);
    free(payload);
    if (fd >= 0)
        close(fd);
    muond_wire_send(s, msg, muond_encode_step(msg, sizeof msg, next + 5), -1);
    return print_reply(s);
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
    fprintf(stderr, "client_probe: unknown mode %s\n", mode);
    return 2;
}
