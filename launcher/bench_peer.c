/*
 * The numpy peer of `muond bench kernels`: bench/polar_express_numpy.py --serve, one process
 * per shape, kept running so that its timed calls alternate with muond's own (same machine
 * state, same OpenBLAS, core and thread count). Requests and answers are lines on two pipes.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher/bench.h"
#include "launcher/commands.h"

enum { PEER_LINE_MAX = 4096 };

struct mu_bench_peer {
    pid_t pid;
    FILE *to, *from; /* the peer's stdin and stdout */
};

static mu_status_t spawn(char *const argv[], mu_bench_peer_t *p)
{
    int in[2], out[2];
    if (pipe(in) != 0)
        return mu_error(MU_ERR_IO, "bench peer: pipe: %s", strerror(errno));
    if (pipe(out) != 0) {
        close(in[0]), close(in[1]);
        return mu_error(MU_ERR_IO, "bench peer: pipe: %s", strerror(errno));
    }
    p->pid = fork();
    if (p->pid < 0) {
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return mu_error(MU_ERR_IO, "bench peer: fork: %s", strerror(errno));
    }
    if (p->pid == 0) {
        dup2(in[0], STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execv(argv[0], argv);
        fprintf(stderr, "bench peer: cannot run %s: %s (set MUOND_PYTHON)\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->to = fdopen(in[1], "w");
    p->from = fdopen(out[0], "r");
    if (!p->to || !p->from)
        return mu_error(MU_ERR_IO, "bench peer: fdopen: %s", strerror(errno));
    return MU_OK;
}

/* The peer's next line (without the newline); its exit is an error naming the script. */
static mu_status_t read_line(mu_bench_peer_t *p, char *line, size_t len)
{
    if (!fgets(line, (int)len, p->from))
        return mu_error(MU_ERR_IO, "bench peer: %s ended early (its stderr says why)",
                        MUOND_BENCH_DIR "/polar_express_numpy.py");
    line[strcspn(line, "\n")] = '\0';
    return MU_OK;
}

/* Stops the peer (the streams closed, the process reaped) and frees it. */
static void release(mu_bench_peer_t *p)
{
    if (p->to)
        fclose(p->to);
    if (p->from)
        fclose(p->from);
    int status;
    if (p->pid > 0)
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
            ;
    free(p);
}

mu_status_t mu_bench_peer_open(const mu_bench_peer_args_t *a, mu_bench_peer_t **out)
{
    char self[1024];
    MU_CHECK(mu_self_path(self, sizeof self));
    char shape[48], iters[16], warmup[16], seed[24], threads[16];
    snprintf(shape, sizeof shape, "%ldx%ld", a->rows, a->cols);
    snprintf(iters, sizeof iters, "%d", a->iters);
    snprintf(warmup, sizeof warmup, "%ld", a->warmup);
    snprintf(seed, sizeof seed, "%ld", a->seed);
    snprintf(threads, sizeof threads, "%d", a->threads);
    char *argv[] = {(char *)mu_python_path(), MUOND_BENCH_DIR "/polar_express_numpy.py",
                    "--serve", "--muond", self, "--shape", shape, "--iters", iters,
                    "--warmup", warmup, "--seed", seed, "--threads", threads, "--dtype",
                    (char *)a->dtype, NULL};
    mu_bench_peer_t *p = calloc(1, sizeof *p);
    if (!p)
        return mu_error(MU_ERR_NOMEM, "bench peer: cannot allocate");
    char line[PEER_LINE_MAX];
    mu_status_t status = spawn(argv, p);
    MU_TRY(status, read_line(p, line, sizeof line));
    if (status == MU_OK && strcmp(line, "ready") != 0)
        status = mu_error(MU_ERR_IO, "bench peer: expected 'ready', got '%.200s'", line);
    if (status != MU_OK) {
        release(p);
        return status;
    }
    *out = p;
    return MU_OK;
}

mu_status_t mu_bench_peer_run(mu_bench_peer_t *p, double *ms)
{
    char line[PEER_LINE_MAX];
    if (fputs("run\n", p->to) == EOF || fflush(p->to) != 0)
        return mu_error(MU_ERR_IO, "bench peer: cannot write to it: %s", strerror(errno));
    MU_CHECK(read_line(p, line, sizeof line));
    char *end;
    *ms = strtod(line, &end);
    if (end == line || *ms <= 0.0)
        return mu_error(MU_ERR_IO, "bench peer: unexpected answer '%.200s'", line);
    return MU_OK;
}

mu_status_t mu_bench_peer_close(mu_bench_peer_t **peer, double *max_sigma_error)
{
    mu_bench_peer_t *p = *peer;
    *peer = NULL;
    if (!p)
        return MU_OK;
    char line[PEER_LINE_MAX];
    mu_status_t status = MU_OK;
    if (max_sigma_error) {
        fputs("quit\n", p->to);
        fflush(p->to);
        status = read_line(p, line, sizeof line);
        cJSON *o = status == MU_OK ? cJSON_Parse(line) : NULL;
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "max_sigma_error");
        if (status == MU_OK && cJSON_IsNumber(err))
            *max_sigma_error = err->valuedouble;
        else if (status == MU_OK)
            status = mu_error(MU_ERR_IO, "bench peer: unexpected summary '%.200s'", line);
        cJSON_Delete(o);
    } else {
        kill(p->pid, SIGTERM); /* abandoned after an error: no summary wanted */
    }
    release(p);
    return status;
}
