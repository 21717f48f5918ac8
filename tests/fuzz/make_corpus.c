/*
 * Writes the protocol fuzzer's seed corpus (tests/fuzz/corpus) with the real encoders, so that
 * the seeds follow the protocol when its version changes:
 *
 *     make_corpus DIR
 *
 * The test fuzz_corpus_current runs it into a scratch directory and compares the result with
 * the committed corpus; after a protocol change, run it into tests/fuzz/corpus and commit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muond_protocol.h"

static uint8_t buf[8192];
static const char *dir;

static int put(const char *name, const uint8_t *bytes, size_t n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

/* Two parameters of a 2-rank job: a 4x8 matrix and its bias, on the host. */
static muond_welcome_t example_welcome(muond_param_info_t params[2])
{
    params[0] = (muond_param_info_t){.name = "l1.weight",
                                     .rows = 4,
                                     .cols = 8,
                                     .row_begin = 0,
                                     .row_end = 4,
                                     .weight_offset = 0,
                                     .grad_offset = 128,
                                     .ndim = 2,
                                     .dims = {4, 8},
                                     .method = "polar-express",
                                     .hyper = {0.02, 0.0, 0.95}};
    params[1] = (muond_param_info_t){.name = "l1.bias",
                                     .rows = 4,
                                     .cols = 1,
                                     .row_begin = 0,
                                     .row_end = 4,
                                     .weight_offset = 256,
                                     .grad_offset = 272,
                                     .ndim = 1,
                                     .dims = {4},
                                     .method = "adamw",
                                     .hyper = {3e-4, 0.01, 0.9}};
    return (muond_welcome_t){.layout_digest = 0x6406b704366aaecdull,
                             .rank = 1,
                             .ranks = 2,
                             .gradient_mode = 1,
                             .steps_done = 3,
                             .region_bytes = 4096,
                             .param_count = 2,
                             .params = params};
}

static int welcomes(void)
{
    muond_param_info_t params[2];
    muond_welcome_t w = example_welcome(params);
    size_t n = muond_encode_welcome(buf, sizeof buf, &w);
    int bad = put("welcome", buf, n);
    bad |= put("truncated-welcome", buf, 40);
    w.gradient_mode = 0; /* sharded: rank 1 holds rows [2, 4) */
    params[0].row_begin = params[1].row_begin = 2;
    bad |= put("welcome-sharded", buf, muond_encode_welcome(buf, sizeof buf, &w));
    params[0].grad_offset = 4093; /* outside the 4096-byte region */
    bad |= put("offset-outside-region", buf, muond_encode_welcome(buf, sizeof buf, &w));
    w = example_welcome(params);
    w.memory = MUOND_MEMORY_CUDA_IPC;
    memset(w.cuda_ipc_handle, 0xab, sizeof w.cuda_ipc_handle);
    snprintf(w.cuda_device, sizeof w.cuda_device, "0000:19:00.0");
    bad |= put("welcome-cuda-ipc", buf, muond_encode_welcome(buf, sizeof buf, &w));
    return bad;
}

static int steps(void)
{
    const muond_step_msg_t plain = {.step = 42};
    int bad = put("step", buf, muond_encode_step(buf, sizeof buf, &plain));
    muond_hyper_t hyper[2] = {{0.01, 0.0, 0.95}, {1.5e-4, 0.01, 0.9}};
    const muond_step_msg_t scheduled = {.step = 43, .hyper_count = 2, .hyper = hyper};
    bad |= put("step-hyper", buf, muond_encode_step(buf, sizeof buf, &scheduled));
    hyper[1].momentum = 1.0; /* outside [0, 1) */
    bad |= put("step-bad-momentum", buf, muond_encode_step(buf, sizeof buf, &scheduled));
    return bad;
}

static int others(void)
{
    const muond_hello_t hello = {0x6406b704366aaecdull, 1};
    int bad = put("hello", buf, muond_encode_hello(buf, sizeof buf, &hello));
    muond_done_t done = {.step = 42, .status = MUOND_STEP_SKIPPED_NONFINITE, .fallbacks = 1};
    snprintf(done.message, sizeof done.message, "non-finite gradient entries in w (3)");
    done.events_total = done.event_count = 2;
    done.events[0] = (muond_event_t){MUOND_EVENT_SKIPPED_NONFINITE, 0};
    done.events[1] = (muond_event_t){MUOND_EVENT_FALLBACK_CERTIFICATE, 1};
    bad |= put("done", buf, muond_encode_done(buf, sizeof buf, &done));
    muond_error_msg_t e = {.code = MUOND_BAD_DIGEST};
    snprintf(e.message, sizeof e.message, "layout digest 0000000000000bad differs");
    bad |= put("error", buf, muond_encode_error(buf, sizeof buf, &e));
    bad |= put("error-version-2", buf, muond_encode_error_as(buf, sizeof buf, 2, &e));
    bad |= put("bye", buf, muond_encode_bye(buf, sizeof buf));
    bad |= put("bad-magic", (const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    dir = argv[1];
    return welcomes() | steps() | others();
}
