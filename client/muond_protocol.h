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
 *     STEP(k, hyper-parameters)           ->   (k = steps already done + 1; the learning
 *                                              rate, weight decay and momentum of every
 *                                              parameter for this step, or none: the layout's)
 *                                         <-   DONE(k, status, fallbacks, message, events)
 *     ... STEP/DONE per step ...
 *     BYE                                 ->
 * A HELLO of another version is answered with an ERROR in that version's header (the header
 * and ERROR are the same in every version), so an old client can print why it was refused.
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

#include "muond_client.h" /* the event kinds DONE carries */

#define MUOND_PROTOCOL_MAGIC 0x444f554du /* "MUOD" read as a little-endian uint32 */
#define MUOND_PROTOCOL_VERSION                                                                     \
    3u /* 2: WELCOME says where the region lives; 3: STEP carries                                  \
          per-step hyper-parameters, WELCOME each parameter's shape,                               \
          method and layout values, DONE the step's events */
#define MUOND_HEADER_BYTES     12u
#define MUOND_MAX_PAYLOAD      (16u << 20) /* WELCOME for ~90k parameters */
#define MUOND_NAME_MAX         128u        /* parameter names, including the terminating NUL */
#define MUOND_TEXT_MAX         512u        /* messages in DONE and ERROR */
#define MUOND_IPC_HANDLE_BYTES 64u         /* sizeof(cudaIpcMemHandle_t) */
#define MUOND_BUS_ID_MAX       32u         /* a PCI bus id "dddd:bb:dd.f", with its NUL */
#define MUOND_METHOD_MAX       16u         /* a method name ("polar-express"), with its NUL */
#define MUOND_MAX_DIMS         4u          /* a parameter's shape before flattening */
#define MUOND_EVENTS_MAX       32u         /* events listed in one DONE */
/* Accepted per-step values: a scheduler may take the rate to 0; 1e3 is the layout's bound. */
#define MUOND_HYPER_MAX 1e3

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

/* DONE's events are the public muond_step_event_kind_t (muond_client.h); the highest: */
#define MUOND_EVENT_KIND_MAX 5u

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

/* One parameter's hyper-parameters for a step. momentum is Muon's beta for matrix methods and
 * AdamW's beta1 for adamw. Valid: finite, lr and weight_decay in [0, MUOND_HYPER_MAX],
 * momentum in [0, 1). */
typedef struct muond_hyper {
    double lr, weight_decay, momentum;
} muond_hyper_t;

/* NULL when h is valid, else what is wrong with it ("lr -1 is outside [0, 1000]"), in buf. */
const char *muond_hyper_problem(const muond_hyper_t *h, char *buf, size_t cap);

/* Where one parameter's rows live in the shared region (byte offsets; fp32, row-major), and
 * what the layout says of it. */
typedef struct muond_param_info {
    char name[MUOND_NAME_MAX];
    int64_t rows, cols;         /* the whole (flattened) parameter */
    int64_t row_begin, row_end; /* rows in this rank's region */
    uint64_t weight_offset, grad_offset;
    uint32_t ndim;                 /* the shape before flattening: dims[0] = rows, the */
    int64_t dims[MUOND_MAX_DIMS];  /* product of the others = cols; unused dims are 0 */
    char method[MUOND_METHOD_MAX]; /* "polar-express", "ns5", "gram", "shampoo" or "adamw" */
    muond_hyper_t hyper;           /* the layout's values: what a step uses unless told */
} muond_param_info_t;

typedef struct muond_welcome {
    uint64_t layout_digest;
    int32_t rank, ranks;
    uint32_t gradient_mode; /* 0 sharded, 1 local */
    int64_t steps_done;
    uint64_t region_bytes;
    uint32_t memory;                                 /* muond_memory_t */
    uint8_t cuda_ipc_handle[MUOND_IPC_HANDLE_BYTES]; /* MUOND_MEMORY_CUDA_IPC; zeros otherwise */
    char cuda_device[MUOND_BUS_ID_MAX];              /* its GPU's PCI bus id; "" otherwise */
    uint32_t param_count;
    muond_param_info_t *params; /* decoded: malloc'ed, freed with muond_welcome_free */
} muond_welcome_t;

/* STEP: the step asked for and, optionally, every parameter's hyper-parameters for it. */
typedef struct muond_step_msg {
    int64_t step;
    uint32_t hyper_count; /* 0 (the layout's values) or the parameter count, WELCOME order */
    muond_hyper_t *hyper; /* decoded: malloc'ed, freed with muond_step_msg_free */
} muond_step_msg_t;

typedef struct muond_event {
    uint32_t kind;  /* muond_step_event_kind_t */
    uint32_t param; /* index in WELCOME order */
} muond_event_t;

typedef struct muond_done {
    int64_t step;
    uint32_t status, fallbacks;
    char message[MUOND_TEXT_MAX];
    uint32_t events_total; /* events of the step; the first event_count are listed */
    uint32_t event_count;  /* <= MUOND_EVENTS_MAX */
    muond_event_t events[MUOND_EVENTS_MAX];
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
int muond_decode_step(const uint8_t *p, size_t len, muond_step_msg_t *out);
int muond_decode_done(const uint8_t *p, size_t len, muond_done_t *out);
int muond_decode_error_msg(const uint8_t *p, size_t len, muond_error_msg_t *out);
void muond_welcome_free(muond_welcome_t *w);
void muond_step_msg_free(muond_step_msg_t *m);

/* Encoders write header + payload into buf (capacity cap); they return the message's size in
 * bytes, or 0 if it does not fit. */
size_t muond_encode_hello(uint8_t *buf, size_t cap, const muond_hello_t *m);
size_t muond_encode_welcome(uint8_t *buf, size_t cap, const muond_welcome_t *m);
/* The most bytes a WELCOME with param_count parameters takes, header included. */
size_t muond_welcome_msg_bytes(uint32_t param_count);
size_t muond_encode_step(uint8_t *buf, size_t cap, const muond_step_msg_t *m);
/* The bytes a STEP with hyper_count entries takes, header included. */
size_t muond_step_msg_bytes(uint32_t hyper_count);
size_t muond_encode_done(uint8_t *buf, size_t cap, const muond_done_t *m);
size_t muond_encode_bye(uint8_t *buf, size_t cap);
size_t muond_encode_error(uint8_t *buf, size_t cap, const muond_error_msg_t *m);
/* The same ERROR in another protocol version's header: the answer to a HELLO of that version. */
size_t muond_encode_error_as(uint8_t *buf, size_t cap, uint16_t version,
                             const muond_error_msg_t *m);

#endif
