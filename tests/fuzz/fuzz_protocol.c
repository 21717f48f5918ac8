/*
 * Fuzz target for the trainer protocol's decoders (client/protocol.c), for libFuzzer:
 * arbitrary bytes go through the header decoder and every payload decoder. Beyond "no crash,
 * no out-of-bounds read" (AddressSanitizer), every message that decodes must survive a round
 * trip: encoding it again and decoding that gives the same fields.
 *
 * Built with clang -fsanitize=fuzzer by scripts/fuzz.sh; without clang, fuzz_replay.c replays
 * the committed corpus through the same function in the regular test suite.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "muond_protocol.h"

static uint8_t scratch[MUOND_HEADER_BYTES + (1u << 20)];

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void welcome_round_trip(const muond_welcome_t *w)
{
    const size_t n = muond_encode_welcome(scratch, sizeof scratch, w);
    if (n == 0)
        return; /* too large for the scratch buffer: not a property violation */
    muond_header_t h;
    EXPECT(muond_decode_header(scratch, n, &h) == 0 && h.type == MUOND_MSG_WELCOME);
    muond_welcome_t again;
    EXPECT(muond_decode_welcome(scratch + MUOND_HEADER_BYTES, h.length, &again) == 0);
    EXPECT(again.param_count == w->param_count && again.region_bytes == w->region_bytes);
    EXPECT(again.memory == w->memory && strcmp(again.cuda_device, w->cuda_device) == 0);
    EXPECT(memcmp(again.cuda_ipc_handle, w->cuda_ipc_handle, sizeof w->cuda_ipc_handle) == 0);
    for (uint32_t i = 0; i < w->param_count; i++) {
        EXPECT(strcmp(again.params[i].name, w->params[i].name) == 0);
        EXPECT(again.params[i].weight_offset == w->params[i].weight_offset);
        EXPECT(again.params[i].row_end == w->params[i].row_end);
        EXPECT(again.params[i].ndim == w->params[i].ndim);
        EXPECT(memcmp(again.params[i].dims, w->params[i].dims, sizeof w->params[i].dims) == 0);
        EXPECT(strcmp(again.params[i].method, w->params[i].method) == 0);
        EXPECT(memcmp(&again.params[i].hyper, &w->params[i].hyper, sizeof w->params[i].hyper) == 0);
    }
    muond_welcome_free(&again);
}

/* Hyper-parameters that decode are valid, and survive a round trip bit for bit. */
static void step_round_trip(const muond_step_msg_t *m)
{
    char why[128];
    for (uint32_t i = 0; i < m->hyper_count; i++)
        EXPECT(muond_hyper_problem(&m->hyper[i], why, sizeof why) == NULL);
    const size_t n = muond_encode_step(scratch, sizeof scratch, m);
    if (n == 0)
        return;
    EXPECT(n == muond_step_msg_bytes(m->hyper_count));
    muond_step_msg_t again;
    EXPECT(muond_decode_step(scratch + MUOND_HEADER_BYTES, n - MUOND_HEADER_BYTES, &again) == 0);
    EXPECT(again.step == m->step && again.hyper_count == m->hyper_count);
    EXPECT(m->hyper_count == 0 ||
           memcmp(again.hyper, m->hyper, m->hyper_count * sizeof *m->hyper) == 0);
    muond_step_msg_free(&again);
}

static void payload_decoders(const uint8_t *p, size_t len)
{
    muond_hello_t hello;
    if (muond_decode_hello(p, len, &hello) == 0) {
        const size_t n = muond_encode_hello(scratch, sizeof scratch, &hello);
        muond_hello_t again;
        EXPECT(muond_decode_hello(scratch + MUOND_HEADER_BYTES, n - MUOND_HEADER_BYTES, &again) ==
               0);
        EXPECT(again.layout_digest == hello.layout_digest && again.rank == hello.rank);
    }
    muond_welcome_t w;
    if (muond_decode_welcome(p, len, &w) == 0) {
        for (uint32_t i = 0; i < w.param_count; i++) /* offsets were checked against the region */
            EXPECT(w.params[i].weight_offset <= w.region_bytes);
        welcome_round_trip(&w);
        muond_welcome_free(&w);
    }
    muond_step_msg_t step;
    if (muond_decode_step(p, len, &step) == 0) {
        step_round_trip(&step);
        muond_step_msg_free(&step);
    }
    muond_done_t done;
    if (muond_decode_done(p, len, &done) == 0) {
        const size_t n = muond_encode_done(scratch, sizeof scratch, &done);
        muond_done_t again;
        EXPECT(muond_decode_done(scratch + MUOND_HEADER_BYTES, n - MUOND_HEADER_BYTES, &again) ==
               0);
        EXPECT(again.step == done.step && strcmp(again.message, done.message) == 0);
        EXPECT(again.event_count == done.event_count && again.events_total == done.events_total);
        EXPECT(memcmp(again.events, done.events, done.event_count * sizeof *done.events) == 0);
    }
    muond_error_msg_t e;
    (void)muond_decode_error_msg(p, len, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    muond_header_t h;
    if (muond_decode_header(data, size, &h) == 0 && h.length <= size - MUOND_HEADER_BYTES)
        payload_decoders(data + MUOND_HEADER_BYTES, h.length);
    payload_decoders(data, size); /* also without a header: more paths for the fuzzer */
    return 0;
}
