/* The kernel backends in priority order, and how one is chosen (see kernels/ops.h). */
#include <stdlib.h>
#include <string.h>

#include "core/knobs.h"
#include "core/log.h"

#include "kernels/backend_impl.h"
#ifdef MUOND_HAVE_CUDA
#include "kernels/cuda/device.h"
#endif

static const struct mu_kernel_ops *const registry[] = {
#ifdef MUOND_HAVE_CUDA
    &mu_cuda_ops,
#endif
    &mu_cpu_ops,
#ifdef MUOND_HAVE_DNNL
    &mu_dnnl_ops,
#endif
    &mu_reference_ops,
};
enum { REGISTRY_SIZE = sizeof registry / sizeof registry[0] };

int mu_backend_list(const char **names, int capacity)
{
    for (int i = 0; i < REGISTRY_SIZE && i < capacity; i++)
        names[i] = registry[i]->name;
    return REGISTRY_SIZE;
}

/* Says at start whether the GPU path can run, and why not when it cannot. */
static void log_gpu_presence(void)
{
#ifdef MUOND_HAVE_CUDA
    char why[256] = "";
    const int devices = mu_cuda_device_count(why, sizeof why);
    if (devices > 0)
        MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "CUDA runtime: %d device(s)", devices);
    else
        MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "CUDA backend compiled in, no GPU here (%s)", why);
#else
    MU_LOG(MU_LOG_DEBUG, MU_SUB_KERNELS, "this build has no CUDA backend (MUOND_CUDA=OFF)");
#endif
}

static mu_status_t start_backend(const struct mu_kernel_ops *ops, mu_backend_t **out)
{
    mu_backend_t *be = calloc(1, sizeof *be);
    if (!be)
        return mu_error(MU_ERR_NOMEM, "cannot allocate a backend handle");
    be->ops = ops;
    be->bf16_compute = ops->bf16_compute;
    const mu_status_t status = ops->init(be);
    if (status != MU_OK) {
        free(be);
        MU_CHECK(status);
    }
    char description[256];
    ops->describe(be, description, sizeof description);
    MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "kernel backend: %s", description);
    *out = be;
    return MU_OK;
}

static mu_status_t create_named(const char *name, const char *need_host, mu_backend_t **out)
{
    for (int i = 0; i < REGISTRY_SIZE; i++) {
        if (strcmp(registry[i]->name, name) != 0)
            continue;
        char why[256] = "unknown reason";
        if (!registry[i]->can_use(why, sizeof why))
            return mu_error(MU_ERR_NOTSUP, "backend '%s' cannot run here: %s", name, why);
        if (need_host && !registry[i]->host_memory)
            return mu_error(MU_ERR_NOTSUP,
                            "backend '%s' keeps matrices in device memory, but this run "
                            "needs them in host memory: %s",
                            name, need_host);
        return start_backend(registry[i], out);
    }
    char known[256] = "";
    for (int i = 0; i < REGISTRY_SIZE; i++) {
        strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
        strncat(known, registry[i]->name, sizeof known - strlen(known) - 1);
    }
    return mu_error(MU_ERR_INVALID, "unknown kernel backend '%s' (known: auto, %s)", name, known);
}

/* Whether a started backend computes in dtype for auto's purposes; on false it is destroyed
 * and why is set. (Only bf16 varies: every backend computes fp32 and fp64, dnnl's bf16
 * depends on the CPU, which only its init can tell, and the reference's is an oracle.) */
static bool computes(mu_backend_t **be, mu_dtype_t dtype, char *why, size_t why_len)
{
    const bool oracle = (*be)->ops->oracle;
    if (dtype != MU_DTYPE_BF16 || ((*be)->bf16_compute && !oracle))
        return true;
    snprintf(why, why_len, oracle ? "its bf16 is a test oracle (plain loops), not for work"
                                   : "it has no bf16 arithmetic here");
    mu_backend_destroy(be);
    return false;
}

static mu_status_t create_auto(const char *need_host, mu_dtype_t dtype, mu_backend_t **out)
{
    for (int i = 0; i < REGISTRY_SIZE; i++) {
        char why[256] = "unknown reason";
        if (need_host && !registry[i]->host_memory) {
            snprintf(why, sizeof why, "its matrices live in device memory, and %s", need_host);
        } else if (registry[i]->can_use(why, sizeof why)) {
            MU_CHECK(start_backend(registry[i], out));
            if (computes(out, dtype, why, sizeof why))
                return MU_OK;
        }
        MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "backend %s unavailable: %s", registry[i]->name, why);
    }
    return mu_error(MU_ERR_NOTSUP, "no kernel backend can compute %s here%s",
                    mu_dtype_name(dtype),
                    dtype == MU_DTYPE_BF16 ? " (bf16 needs a GPU, or a CPU with AVX512-BF16 or "
                                             "AMX for the dnnl backend)"
                                           : "");
}

mu_status_t mu_backend_create(const char *name, mu_backend_t **out)
{
    return mu_backend_create_for(name, NULL, out);
}

mu_status_t mu_backend_create_for(const char *name, const char *need_host, mu_backend_t **out)
{
    return mu_backend_create_for_dtype(name, need_host, MU_DTYPE_F32, out);
}

mu_status_t mu_backend_create_for_dtype(const char *name, const char *need_host, mu_dtype_t dtype,
                                        mu_backend_t **out)
{
    if (!out)
        return mu_error(MU_ERR_INVALID, "backend: null output");
    *out = NULL;
    const char *env = mu_knob(MU_KNOB_BACKEND);
    if ((!name || strcmp(name, "auto") == 0) && env) {
        MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "MUOND_BACKEND=%s chooses the kernel backend", env);
        name = env;
    }
    log_gpu_presence();
    if (!name || strcmp(name, "auto") == 0)
        return create_auto(need_host, dtype, out);
    return create_named(name, need_host, out);
}

void mu_backend_destroy(mu_backend_t **be)
{
    if (!be || !*be)
        return;
    (*be)->ops->fini(*be);
    free(*be);
    *be = NULL;
}

const char *mu_backend_name(const mu_backend_t *be)
{
    return be ? be->ops->name : "(none)";
}

bool mu_backend_host_memory(const mu_backend_t *be)
{
    return be && be->ops->host_memory;
}

bool mu_backend_oracle(const mu_backend_t *be)
{
    return be && be->ops->oracle;
}

bool mu_backend_bf16_compute(const mu_backend_t *be)
{
    return be && be->bf16_compute;
}

/* MUOND_GRAPHS=0 runs every call as it comes: the baseline the graphs are measured against. */
static bool graphs_switched_off(void)
{
    const char *v = mu_knob(MU_KNOB_GRAPHS);
    return v && (strcmp(v, "0") == 0 || strcmp(v, "off") == 0);
}

bool mu_backend_can_capture(const mu_backend_t *be)
{
    return be && be->ops->capture_begin && !graphs_switched_off();
}

void mu_backend_describe(const mu_backend_t *be, char *out, size_t out_len)
{
    if (be)
        be->ops->describe(be, out, out_len);
    else
        snprintf(out, out_len, "(none)");
}

mu_status_t mu_backend_set_threads(mu_backend_t *be, int threads)
{
    if (!be || threads < 1)
        return mu_error(MU_ERR_INVALID, "backend: bad thread count %d", threads);
    if (!be->ops->set_threads)
        return MU_OK; /* nothing to set: the backend runs the same way regardless */
    MU_CHECK(be->ops->set_threads(be, threads));
    MU_LOG(MU_LOG_INFO, MU_SUB_KERNELS, "kernel backend %s: %d BLAS thread(s)", be->ops->name,
           threads);
    return MU_OK;
}
