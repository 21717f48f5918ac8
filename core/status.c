#include "core/status.h"

#include <stdarg.h>
#include <string.h>

#include "core/log.h"

enum {
    MESSAGE_CAPACITY = MU_ERROR_MESSAGE_CAPACITY,
    TRAIL_FRAMES = MU_ERROR_TRAIL_FRAMES, /* deeper chains keep their innermost frames: that is
                                             where it began */
    FRAME_CAPACITY = MU_ERROR_FRAME_CAPACITY,
};

static _Thread_local char error_message[MESSAGE_CAPACITY];
static _Thread_local char trail[TRAIL_FRAMES][FRAME_CAPACITY];
static _Thread_local int trail_length;

static const char *const status_names[MU_STATUS_COUNT] = {
    [MU_OK] = "OK",
    [MU_ERR_INVALID] = "INVALID",
    [MU_ERR_NOMEM] = "NOMEM",
    [MU_ERR_IO] = "IO",
    [MU_ERR_MPI] = "MPI",
    [MU_ERR_NCCL] = "NCCL",
    [MU_ERR_CUDA] = "CUDA",
    [MU_ERR_CUBLAS] = "CUBLAS",
    [MU_ERR_SCALAPACK] = "SCALAPACK",
    [MU_ERR_NUMERIC] = "NUMERIC",
    [MU_ERR_TIMEOUT] = "TIMEOUT",
    [MU_ERR_NOTSUP] = "NOTSUP",
    [MU_ERR_PROTOCOL] = "PROTOCOL",
    [MU_ERR_DNNL] = "DNNL",
};

const char *mu_strerror(mu_status_t status)
{
    if ((int)status < 0 || status >= MU_STATUS_COUNT)
        return "UNKNOWN";
    return status_names[status];
}

mu_status_t mu_error(mu_status_t status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, args);
    va_end(args);
    trail_length = 0;
    MU_LOG(MU_LOG_DEBUG, MU_SUB_CORE, "error %s: %s", mu_strerror(status), error_message);
    return status;
}

const char *mu_error_message(void)
{
    return error_message;
}

void mu_error_clear(void)
{
    error_message[0] = '\0';
    trail_length = 0;
}

void mu_error_save(mu_status_t status, mu_error_saved_t *out)
{
    out->status = status;
    memcpy(out->message, error_message, sizeof error_message);
    memcpy(out->trail, trail, sizeof trail);
    out->trail_length = trail_length;
}

mu_status_t mu_error_restore(const mu_error_saved_t *saved)
{
    memcpy(error_message, saved->message, sizeof error_message);
    memcpy(trail, saved->trail, sizeof trail);
    trail_length = saved->trail_length;
    return saved->status;
}

void mu_error_trace(const char *file, int line, const char *expr, mu_status_t status)
{
    MU_LOG(MU_LOG_DEBUG, MU_SUB_CORE, "%s:%d -> %s (%s)", file, line, mu_strerror(status), expr);
    if (trail_length >= TRAIL_FRAMES)
        return;
    snprintf(trail[trail_length], FRAME_CAPACITY, "%s:%d -> %s (%s)", file, line,
             mu_strerror(status), expr);
    trail_length++;
}

void mu_error_report_line(FILE *out, const char *prog, mu_status_t status)
{
    const char *message = error_message[0] ? error_message : "(no message recorded)";
    fprintf(out, "%s: %s: %s\n", prog, mu_strerror(status), message);
}

void mu_error_report(FILE *out, const char *prog, mu_status_t status)
{
    mu_error_report_line(out, prog, status);
    for (int i = 0; i < trail_length; i++)
        fprintf(out, "  at %s\n", trail[i]);
}
