/*
 * The numpy peer of `muond bench kernels`: bench/polar_express_numpy.py run once per shape
 * in the same run (same machine state, same OpenBLAS and core, same thread count), its one
 * JSON line read back through a pipe.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launcher/bench.h"

enum { PEER_OUTPUT_MAX = 4096 };

static const char *python_path(void)
{
    const char *p = getenv("MUOND_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/* Runs argv with stdout into out (NUL-terminated); stderr passes through. */
static mu_status_t run_capture(char *const argv[], char *out, size_t out_len)
{
    int fds[2];
    if (pipe(fds) != 0)
        return mu_error(MU_ERR_IO, "bench peer: pipe: %s", strerror(errno));
    const pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        return mu_error(MU_ERR_IO, "bench peer: fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]), close(fds[1]);
        execv(argv[0], argv);
        fprintf(stderr, "bench peer: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t got;
    while (used + 1 < out_len && (got = read(fds[0], out + used, out_len - 1 - used)) > 0)
        used += (size_t)got;
    out[used] = '\0';
    close(fds[0]);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
        return mu_error(MU_ERR_IO, "bench peer: %s %s failed (status %d)", argv[0], argv[1],
                        WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    return MU_OK;
}

static mu_status_t parse_peer(const char *text, mu_bench_peer_t *out)
{
    cJSON *o = cJSON_Parse(text);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "median_ms");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "max_sigma_error");
    const bool ok = cJSON_IsNumber(ms) && cJSON_IsNumber(err);
    if (ok)
        *out = (mu_bench_peer_t){.ms = ms->valuedouble, .max_sigma_error = err->valuedouble};
    cJSON_Delete(o);
    return ok ? MU_OK : mu_error(MU_ERR_IO, "bench peer: unexpected output '%.200s'", text);
}

mu_status_t mu_bench_numpy_peer(const mu_bench_peer_args_t *a, mu_bench_peer_t *out)
{
    char self[1024];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return mu_error(MU_ERR_IO, "bench peer: cannot find the muond binary");
    self[n] = '\0';
    char shape[48], iters[16], runs[16], warmup[16], seed[24], threads[16];
    snprintf(shape, sizeof shape, "%ldx%ld", a->rows, a->cols);
    snprintf(iters, sizeof iters, "%d", a->iters);
    snprintf(runs, sizeof runs, "%ld", a->runs);
    snprintf(warmup, sizeof warmup, "%ld", a->warmup);
    snprintf(seed, sizeof seed, "%ld", a->seed);
    snprintf(threads, sizeof threads, "%d", a->threads);
    char *argv[] = {(char *)python_path(), MUOND_BENCH_DIR "/polar_express_numpy.py",
                    "--muond", self, "--shape", shape, "--iters", iters, "--runs", runs,
                    "--warmup", warmup, "--seed", seed, "--threads", threads, "--dtype",
                    (char *)a->dtype, NULL};
    char text[PEER_OUTPUT_MAX];
    MU_CHECK(run_capture(argv, text, sizeof text));
    return parse_peer(text, out);
}
