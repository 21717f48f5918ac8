/* Private to kernels/: what a backend handle holds. */
#ifndef MU_KERNELS_BACKEND_IMPL_H
#define MU_KERNELS_BACKEND_IMPL_H

#include "kernels/ops.h"

struct mu_backend {
    const struct mu_kernel_ops *ops;
    void *state; /* owned by the backend: created by ops->init, freed by ops->fini */
    /* ops->bf16_compute, unless init found that this CPU lacks the instructions (dnnl). */
    bool bf16_compute;
};

/* The compiled-in backends' tables. */
extern const struct mu_kernel_ops mu_reference_ops;
extern const struct mu_kernel_ops mu_cpu_ops;
#ifdef MUOND_HAVE_DNNL
extern const struct mu_kernel_ops mu_dnnl_ops; /* kernels/dnnl/dnnl_ops.c */
#endif
#ifdef MUOND_HAVE_CUDA
extern const struct mu_kernel_ops mu_cuda_ops; /* kernels/cuda/cuda_ops.cu */
#endif

#endif
