/*
 * The wire protocol between a trainer and its muond rank (libc only; shared by the client
 * library and the daemon).
 *
 * Every message is a 12-byte header followed by `length` payload bytes, all little-endian:
 *     uint32 magic "MUOD"   uint16 version   uint16 type   uint32 length
 * The conversation on one Unix socket:
 *     trainer                                  muond rank
 *     HELLO(layout digest, rank)          ->
 *                                         <-   WELCOME(shared memory layout) + memfd (SCM_RIGHTS),
 *                                              or, for device memory, WELCOME carrying a CUDA
 *                                              IPC handle and the GPU's PCI bus id (no fd)
 *     STEP(k)                             ->   (k = steps already done + 1)
 *                                         <-   DONE(k, status, fallbacks, message)
 *     ... STEP/DONE per step ...
 *     BYE                                 ->
 * Any violation (wrong magic or version, a digest or rank that does not match, a step out of
 * order, a malformed payload) is answered with ERROR(code, message) and the connection is
 * closed; other trainers and the optimizer state are untouched.
 *
 * The decoders are total: any byte sequence yields either a message or an error, never a read
 * outside the buffer (tests/fuzz exercises them).
 */
#ifndef MUOND_PROTOCOL_H
#define MUOND_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define MUOND_PROTOCOL_MAGIC   0x444f554du /* "MUOD" read as a little-endian uint32 */
#define MUOND_PROTOCOL_VERSION 2u /* 2: WELCOME says where the region lives */
#define MUOND_HEADER_BYTES     12u
#define MUOND_MAX_PAYLOAD      (16u << 20) /* WELCOME for ~90k parameters */
#define MUOND_NAME_MAX         128u        /* parameter names, including the terminating NUL */
#define MUOND_TEXT_MAX         512u        /* messages in DONE and ERROR */
#define MUOND_IPC_HANDLE_BYTES 64u         /* sizeof(cudaIpcMemHandle_t) */
#define MUOND_BUS_ID_MAX       32u         /* a PCI bus id "dddd:bb:dd.f", with its NUL */

/* Where the weights-and-gradients region lives. */
typedef enum muond_memory {
    MUOND_MEMORY_HOST = 0,     /* a memfd passed with WELCOME; the trainer maps it */
    MUOND_MEMORY_CUDA_IPC = 1, /* GPU memory; the trainer opens the IPC handle on that GPU */
} muond_memory_t;

typedef enum muond_msg_type {
    MUOND_MSG_HELLO = 1,
    MUOND_MSG_WELCOME = 2,
    MUOND_MSG_STEP = 3,
    MUOND_MSG_DONE = 4,
    MUOND_MSG_BYE = 5,
    MUOND_MSG_ERROR = 6,
} muond_msg_type_t;

/* DONE statuses. */
typedef enum muond_step_status {
    MUOND_STEP_OK = 0,
    MUOND_STEP_SKIPPED_NONFINITE = 1, /* parameters with NaN/Inf gradients were skipped (the
                                         message names them); the rest was applied */
    MUOND_STEP_FAILED = 2,            /* the optimizer failed; the daemon is stopping */
} muond_step_status_t;

/* ERROR codes. */
typedef enum muond_error_code {
    MUOND_REFUSED_UID = 1,   /* the peer's uid (or gid) is not admitted */
    MUOND_BAD_VERSION = 2,   /* header version differs */
    MUOND_BAD_DIGEST = 3,    /* the trainer's layout digest differs */
    MUOND_BAD_RANK = 4,      /* HELLO names another rank */
    MUOND_BAD_STEP = 5,      /* STEP out of order */
    MUOND_BAD_MESSAGE = 6,   /* malformed or unexpected message */
    MUOND_BUSY = 7,          /* this rank already serves a trainer */
    MUOND_SHUTTING_DOWN = 8, /* the daemon is stopping */
} muond_error_code_t;

typedef struct muond_header {
    uint32_t magic;
    uint16_t version, type;
    uint32_t length;
} muond_header_t;

typedef struct muond_hello {
    uint64_t layout_digest;
    int32_t rank;
} muond_hello_t;

/* Where one parameter's rows live in the shared region (byte offsets; fp32, row-major). */
typedef struct muond_param_info {
    char name[MUOND_NAME_MAX];
    int64_t rows, cols;         /* the whole (flattened) parameter */
    int64_t row_begin, row_end; /* rows in this rank's region */
    uint64_t weight_offset, grad_offset;
} muond_param_info_t;

typedef struct muond_welcome {
    uint64_t layout_digest;
    int32_t rank, ranks;
    uint32_t gradient_mode; /* 0 sharded, 1 local */
    int64_t steps_done;
    uint64_t region_bytes;
    uint32_t memory; /* muond_memory_t */
    uint8_t cuda_ipc_handle[MUOND_IPC_HANDLE_BYTES]; /* MUOND_MEMORY_CUDA_IPC; zeros otherwise */
    char cuda_device[MUOND_BUS_ID_MAX];             /* its GPU's PCI bus id; "" otherwise */
    uint32_t param_count;
    muond_param_info_t *params; /* decoded: malloc'ed, freed with muond_welcome_free */
} muond_welcome_t;

typedef struct muond_done {
    int64_t step;
    uint32_t status, fallbacks;
    char message[MUOND_TEXT_MAX];
} muond_done_t;

typedef struct muond_error_msg {
    uint32_t code;
    char message[MUOND_TEXT_MAX];
} muond_error_msg_t;

/* Decoding results: 0, or a negative reason whose text muond_decode_error() gives. */
enum {
    MUOND_DECODE_OK = 0,
    MUOND_DECODE_SHORT = -1,    /* fewer bytes than the message needs */
    MUOND_DECODE_MAGIC = -2,    /* not a muond message */
    MUOND_DECODE_VERSION = -3,  /* another protocol version */
    MUOND_DECODE_LENGTH = -4,   /* payload longer than MUOND_MAX_PAYLOAD */
    MUOND_DECODE_MALFORMED = -5 /* the payload does not parse, or has bytes left over */
};
const char *muond_decode_error(int code);

/* Header of a message starting at buf (len >= MUOND_HEADER_BYTES for success). */
int muond_decode_header(const uint8_t *buf, size_t len, muond_header_t *out);

/* Payload decoders (payload without header). */
int muond_decode_hello(const uint8_t *p, size_t len, muond_hello_t *out);
int muond_decode_welcome(const uint8_t *p, size_t len, muond_welcome_t *out);
int muond_decode_step(const uint8_t *p, size_t len, int64_t *step);
int muond_decode_done(const uint8_t *p, size_t len, muond_done_t *out);
int muond_decode_error_msg(const uint8_t *p, size_t len, muond_error_msg_t *out);
void muond_welcome_free(muond_welcome_t *w);

/* Encoders write header + payload into buf (capacity cap); they return the message's size in
 * bytes, or 0 if it does not fit. */
size_t muond_encode_hello(uint8_t *buf, size_t cap, const muond_hello_t *m);
size_t muond_encode_welcome(uint8_t *buf, size_t cap, const muond_welcome_t *m);
size_t muond_encode_step(uint8_t *buf, size_t cap, int64_t step);
size_t muond_encode_done(uint8_t *buf, size_t cap, const muond_done_t *m);
size_t muond_encode_bye(uint8_t *buf, size_t cap);
size_t muond_encode_error(uint8_t *buf, size_t cap, const muond_error_msg_t *m);

#endif
