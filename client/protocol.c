/* Encoding and bounds-checked decoding of the trainer protocol (client/muond_protocol.h). */
#include "muond_protocol.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a cursor over bytes: every read checks the bounds and poisons the cursor on failure -- */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} reader_t;

static uint64_t read_le(reader_t *r, size_t width)
{
    if (r->bad || width > r->len - r->pos) {
        r->bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v |= (uint64_t)r->p[r->pos + i] << (8 * i);
    r->pos += width;
    return v;
}

static uint32_t read_u32(reader_t *r)
{
    return (uint32_t)read_le(r, 4);
}

static uint64_t read_u64(reader_t *r)
{
    return read_le(r, 8);
}

static int64_t read_i64(reader_t *r)
{
    return (int64_t)read_le(r, 8);
}

/* Doubles travel as their IEEE-754 bits, little-endian. */
static double read_f64(reader_t *r)
{
    const uint64_t bits = read_le(r, 8);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* A string: uint16 length, then that many bytes without NUL; stored NUL-terminated. */
static void read_string(reader_t *r, char *out, size_t cap, bool allow_empty)
{
    const size_t n = (size_t)read_le(r, 2);
    if (r->bad || n >= cap || n > r->len - r->pos || (n == 0 && !allow_empty) ||
        memchr(r->p + r->pos, '\0', n)) {
        r->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, r->p + r->pos, n);
    out[n] = '\0';
    r->pos += n;
}

/* A payload parses only if every byte was consumed. */
static int finish(const reader_t *r)
{
    return (r->bad || r->pos != r->len) ? MUOND_DECODE_MALFORMED : MUOND_DECODE_OK;
}

typedef struct writer {
    uint8_t *p;
    size_t cap, pos;
    bool full;
} writer_t;

static void write_le(writer_t *w, uint64_t v, size_t width)
{
    if (w->full || width > w->cap - w->pos) {
        w->full = true;
        return;
    }
    for (size_t i = 0; i < width; i++)
        w->p[w->pos + i] = (uint8_t)(v >> (8 * i));
    w->pos += width;
}

static void write_f64(writer_t *w, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    write_le(w, bits, 8);
}

static void write_string(writer_t *w, const char *s, size_t cap)
{
    const size_t n = strnlen(s, cap - 1);
    write_le(w, n, 2);
    if (w->full || n > w->cap - w->pos) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->pos, s, n);
    w->pos += n;
}

/* Starts a message: reserves the header, filled in by close_message. */
static writer_t open_message(uint8_t *buf, size_t cap)
{
    writer_t w = {buf, cap, 0, cap < MUOND_HEADER_BYTES};
    if (!w.full)
        w.pos = MUOND_HEADER_BYTES;
    return w;
}

static size_t close_message_as(writer_t *w, muond_msg_type_t type, uint16_t version)
{
    if (w->full || w->pos - MUOND_HEADER_BYTES > MUOND_MAX_PAYLOAD)
        return 0;
    writer_t h = {w->p, MUOND_HEADER_BYTES, 0, false};
    write_le(&h, MUOND_PROTOCOL_MAGIC, 4);
    write_le(&h, version, 2);
    write_le(&h, (uint64_t)type, 2);
    write_le(&h, w->pos - MUOND_HEADER_BYTES, 4);
    return w->pos;
}

static size_t close_message(writer_t *w, muond_msg_type_t type)
{
    return close_message_as(w, type, MUOND_PROTOCOL_VERSION);
}

/* ---- hyper-parameters --------------------------------------------------------------------- */

const char *muond_hyper_problem(const muond_hyper_t *h, char *buf, size_t cap)
{
    const struct {
        const char *name;
        double value, upper;
        bool upper_open;
    } fields[] = {{"lr", h->lr, MUOND_HYPER_MAX, false},
                  {"weight_decay", h->weight_decay, MUOND_HYPER_MAX, false},
                  {"momentum", h->momentum, 1.0, true}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const double v = fields[i].value;
        const bool above = fields[i].upper_open ? v >= fields[i].upper : v > fields[i].upper;
        if (isfinite(v) && v >= 0 && !above)
            continue;
        snprintf(buf, cap, "%s %g is outside [0, %g%s", fields[i].name, v, fields[i].upper,
                 fields[i].upper_open ? ")" : "]");
        return buf;
    }
    return NULL;
}

static void read_hyper(reader_t *r, muond_hyper_t *h)
{
    h->lr = read_f64(r);
    h->weight_decay = read_f64(r);
    h->momentum = read_f64(r);
    char why[96];
    if (muond_hyper_problem(h, why, sizeof why))
        r->bad = true;
}

static void write_hyper(writer_t *w, const muond_hyper_t *h)
{
    write_f64(w, h->lr);
    write_f64(w, h->weight_decay);
    write_f64(w, h->momentum);
}

/* ---- decoding ---------------------------------------------------------------------------- */

const char *muond_decode_error(int code)
{
    switch (code) {
    case MUOND_DECODE_OK:
        return "ok";
    case MUOND_DECODE_SHORT:
        return "message truncated";
    case MUOND_DECODE_MAGIC:
        return "not a muond message (bad magic)";
    case MUOND_DECODE_VERSION:
        return "unsupported protocol version";
    case MUOND_DECODE_LENGTH:
        return "payload too long";
    default:
        return "malformed payload";
    }
}

int muond_decode_header(const uint8_t *buf, size_t len, muond_header_t *out)
{
    if (!buf || !out || len < MUOND_HEADER_BYTES)
        return MUOND_DECODE_SHORT;
    reader_t r = {buf, MUOND_HEADER_BYTES, 0, false};
    out->magic = read_u32(&r);
    out->version = (uint16_t)read_le(&r, 2);
    out->type = (uint16_t)read_le(&r, 2);
    out->length = read_u32(&r);
    if (out->magic != MUOND_PROTOCOL_MAGIC)
        return MUOND_DECODE_MAGIC;
    if (out->version != MUOND_PROTOCOL_VERSION)
        return MUOND_DECODE_VERSION;
    if (out->length > MUOND_MAX_PAYLOAD)
        return MUOND_DECODE_LENGTH;
    return MUOND_DECODE_OK;
}

int muond_decode_hello(const uint8_t *p, size_t len, muond_hello_t *out)
{
    reader_t r = {p, p ? len : 0, 0, false};
    out->layout_digest = read_u64(&r);
    out->rank = (int32_t)read_u32(&r);
    return finish(&r);
}

enum { HYPER_BYTES = 3 * 8 };

int muond_decode_step(const uint8_t *p, size_t len, muond_step_msg_t *out)
{
    memset(out, 0, sizeof *out);
    reader_t r = {p, p ? len : 0, 0, false};
    out->step = read_i64(&r);
    const uint32_t count = read_u32(&r);
    /* Refuse counts the payload cannot hold before allocating anything. */
    if (r.bad || (uint64_t)count * HYPER_BYTES != r.len - r.pos)
        return MUOND_DECODE_MALFORMED;
    if (count) {
        out->hyper = calloc(count, sizeof *out->hyper);
        if (!out->hyper)
            return MUOND_DECODE_MALFORMED;
        out->hyper_count = count;
    }
    for (uint32_t i = 0; i < count && !r.bad; i++)
        read_hyper(&r, &out->hyper[i]);
    const int status = finish(&r);
    if (status != MUOND_DECODE_OK)
        muond_step_msg_free(out);
    return status;
}

void muond_step_msg_free(muond_step_msg_t *m)
{
    if (!m)
        return;
    free(m->hyper);
    m->hyper = NULL;
    m->hyper_count = 0;
}

int muond_decode_done(const uint8_t *p, size_t len, muond_done_t *out)
{
    reader_t r = {p, p ? len : 0, 0, false};
    out->step = read_i64(&r);
    out->status = read_u32(&r);
    out->fallbacks = read_u32(&r);
    read_string(&r, out->message, sizeof out->message, true);
    out->events_total = read_u32(&r);
    out->event_count = read_u32(&r);
    if (out->event_count > MUOND_EVENTS_MAX || out->event_count > out->events_total)
        r.bad = true;
    for (uint32_t i = 0; i < out->event_count && !r.bad; i++) {
        out->events[i].kind = read_u32(&r);
        out->events[i].param = read_u32(&r);
        if (out->events[i].kind < 1 || out->events[i].kind > MUOND_EVENT_KIND_MAX)
            r.bad = true;
    }
    return finish(&r);
}

int muond_decode_error_msg(const uint8_t *p, size_t len, muond_error_msg_t *out)
{
    reader_t r = {p, p ? len : 0, 0, false};
    out->code = read_u32(&r);
    read_string(&r, out->message, sizeof out->message, true);
    return finish(&r);
}

/* One parameter entry: name, six 64-bit fields, the shape (ndim, then MUOND_MAX_DIMS
 * dimensions), the method's name and the layout's hyper-parameters. */
enum { PARAM_FIXED_BYTES = 2 + 1 + 6 * 8 + 4 + MUOND_MAX_DIMS * 8 + 2 + 1 + HYPER_BYTES };

/* The shape must flatten to rows x cols, with zeros past ndim. */
static bool shape_matches(const muond_param_info_t *p)
{
    if (p->ndim < 1 || p->ndim > MUOND_MAX_DIMS || p->dims[0] != p->rows)
        return false;
    int64_t cols = 1;
    for (uint32_t d = 1; d < MUOND_MAX_DIMS; d++) {
        if (d >= p->ndim) {
            if (p->dims[d] != 0)
                return false;
            continue;
        }
        if (p->dims[d] < 1 || p->dims[d] > INT32_MAX || cols > INT32_MAX / p->dims[d])
            return false;
        cols *= p->dims[d];
    }
    return cols == p->cols;
}

static void read_shape_and_method(reader_t *r, muond_param_info_t *p)
{
    p->ndim = read_u32(r);
    for (unsigned d = 0; d < MUOND_MAX_DIMS; d++)
        p->dims[d] = read_i64(r);
    read_string(r, p->method, sizeof p->method, false);
    read_hyper(r, &p->hyper);
    if (!r->bad && !shape_matches(p))
        r->bad = true;
}

static void read_param(reader_t *r, uint64_t region, muond_param_info_t *p)
{
    read_string(r, p->name, sizeof p->name, false);
    p->rows = read_i64(r);
    p->cols = read_i64(r);
    p->row_begin = read_i64(r);
    p->row_end = read_i64(r);
    p->weight_offset = read_u64(r);
    p->grad_offset = read_u64(r);
    read_shape_and_method(r, p);
    const bool shape_ok = p->rows > 0 && p->cols > 0 && p->rows <= INT32_MAX &&
                          p->cols <= INT32_MAX && p->row_begin >= 0 && p->row_begin <= p->row_end &&
                          p->row_end <= p->rows;
    if (!shape_ok) {
        r->bad = true;
        return;
    }
    const uint64_t bytes = (uint64_t)(p->row_end - p->row_begin) * (uint64_t)p->cols * 4u;
    if (p->weight_offset > region || bytes > region - p->weight_offset || p->grad_offset > region ||
        bytes > region - p->grad_offset || p->weight_offset % 4 || p->grad_offset % 4)
        r->bad = true;
}

int muond_decode_welcome(const uint8_t *p, size_t len, muond_welcome_t *out)
{
    memset(out, 0, sizeof *out);
    reader_t r = {p, p ? len : 0, 0, false};
    out->layout_digest = read_u64(&r);
    out->rank = (int32_t)read_u32(&r);
    out->ranks = (int32_t)read_u32(&r);
    out->gradient_mode = read_u32(&r);
    out->steps_done = read_i64(&r);
    out->region_bytes = read_u64(&r);
    out->memory = read_u32(&r);
    for (unsigned i = 0; i < MUOND_IPC_HANDLE_BYTES; i++)
        out->cuda_ipc_handle[i] = (uint8_t)read_le(&r, 1);
    read_string(&r, out->cuda_device, sizeof out->cuda_device, true);
    const uint32_t count = read_u32(&r);
    const bool device_named =
        out->memory == MUOND_MEMORY_HOST ? out->cuda_device[0] == 0 : out->cuda_device[0] != 0;
    /* Refuse counts the payload cannot hold before allocating anything. */
    if (r.bad || out->ranks < 1 || out->rank < 0 || out->rank >= out->ranks ||
        out->gradient_mode > 1 || out->steps_done < 0 || out->memory > MUOND_MEMORY_CUDA_IPC ||
        !device_named || (uint64_t)count * PARAM_FIXED_BYTES > r.len - r.pos)
        return MUOND_DECODE_MALFORMED;
    out->params = calloc(count ? count : 1, sizeof *out->params);
    if (!out->params)
        return MUOND_DECODE_MALFORMED;
    out->param_count = count;
    for (uint32_t i = 0; i < count && !r.bad; i++)
        read_param(&r, out->region_bytes, &out->params[i]);
    const int status = finish(&r);
    if (status != MUOND_DECODE_OK)
        muond_welcome_free(out);
    return status;
}

void muond_welcome_free(muond_welcome_t *w)
{
    if (!w)
        return;
    free(w->params);
    w->params = NULL;
    w->param_count = 0;
}

/* ---- encoding ---------------------------------------------------------------------------- */

size_t muond_encode_hello(uint8_t *buf, size_t cap, const muond_hello_t *m)
{
    writer_t w = open_message(buf, cap);
    write_le(&w, m->layout_digest, 8);
    write_le(&w, (uint32_t)m->rank, 4);
    return close_message(&w, MUOND_MSG_HELLO);
}

size_t muond_encode_welcome(uint8_t *buf, size_t cap, const muond_welcome_t *m)
{
    writer_t w = open_message(buf, cap);
    write_le(&w, m->layout_digest, 8);
    write_le(&w, (uint32_t)m->rank, 4);
    write_le(&w, (uint32_t)m->ranks, 4);
    write_le(&w, m->gradient_mode, 4);
    write_le(&w, (uint64_t)m->steps_done, 8);
    write_le(&w, m->region_bytes, 8);
    write_le(&w, m->memory, 4);
    for (unsigned i = 0; i < MUOND_IPC_HANDLE_BYTES; i++)
        write_le(&w, m->cuda_ipc_handle[i], 1);
    write_string(&w, m->cuda_device, sizeof m->cuda_device);
    write_le(&w, m->param_count, 4);
    for (uint32_t i = 0; i < m->param_count; i++) {
        const muond_param_info_t *p = &m->params[i];
        write_string(&w, p->name, sizeof p->name);
        const uint64_t fields[6] = {(uint64_t)p->rows,    (uint64_t)p->cols, (uint64_t)p->row_begin,
                                    (uint64_t)p->row_end, p->weight_offset,  p->grad_offset};
        for (int k = 0; k < 6; k++)
            write_le(&w, fields[k], 8);
        write_le(&w, p->ndim, 4);
        for (unsigned d = 0; d < MUOND_MAX_DIMS; d++)
            write_le(&w, (uint64_t)p->dims[d], 8);
        write_string(&w, p->method, sizeof p->method);
        write_hyper(&w, &p->hyper);
    }
    return close_message(&w, MUOND_MSG_WELCOME);
}

size_t muond_welcome_msg_bytes(uint32_t param_count)
{
    enum {
        FIXED = 8 + 4 + 4 + 4 + 8 + 8 + 4 + MUOND_IPC_HANDLE_BYTES + 2 + MUOND_BUS_ID_MAX + 4,
        ENTRY = 2 + MUOND_NAME_MAX + 6 * 8 + 4 + MUOND_MAX_DIMS * 8 + 2 + MUOND_METHOD_MAX +
                HYPER_BYTES,
    };
    return MUOND_HEADER_BYTES + FIXED + (size_t)param_count * ENTRY;
}

size_t muond_step_msg_bytes(uint32_t hyper_count)
{
    return MUOND_HEADER_BYTES + 8 + 4 + (size_t)hyper_count * HYPER_BYTES;
}

size_t muond_encode_step(uint8_t *buf, size_t cap, const muond_step_msg_t *m)
{
    writer_t w = open_message(buf, cap);
    write_le(&w, (uint64_t)m->step, 8);
    write_le(&w, m->hyper_count, 4);
    for (uint32_t i = 0; i < m->hyper_count; i++)
        write_hyper(&w, &m->hyper[i]);
    return close_message(&w, MUOND_MSG_STEP);
}

size_t muond_encode_done(uint8_t *buf, size_t cap, const muond_done_t *m)
{
    writer_t w = open_message(buf, cap);
    write_le(&w, (uint64_t)m->step, 8);
    write_le(&w, m->status, 4);
    write_le(&w, m->fallbacks, 4);
    write_string(&w, m->message, sizeof m->message);
    const uint32_t listed = m->event_count < MUOND_EVENTS_MAX ? m->event_count : MUOND_EVENTS_MAX;
    write_le(&w, m->events_total > listed ? m->events_total : listed, 4);
    write_le(&w, listed, 4);
    for (uint32_t i = 0; i < listed; i++) {
        write_le(&w, m->events[i].kind, 4);
        write_le(&w, m->events[i].param, 4);
    }
    return close_message(&w, MUOND_MSG_DONE);
}

size_t muond_encode_bye(uint8_t *buf, size_t cap)
{
    writer_t w = open_message(buf, cap);
    return close_message(&w, MUOND_MSG_BYE);
}

size_t muond_encode_error_as(uint8_t *buf, size_t cap, uint16_t version, const muond_error_msg_t *m)
{
    writer_t w = open_message(buf, cap);
    write_le(&w, m->code, 4);
    write_string(&w, m->message, sizeof m->message);
    return close_message_as(&w, MUOND_MSG_ERROR, version);
}

size_t muond_encode_error(uint8_t *buf, size_t cap, const muond_error_msg_t *m)
{
    return muond_encode_error_as(buf, cap, MUOND_PROTOCOL_VERSION, m);
}
