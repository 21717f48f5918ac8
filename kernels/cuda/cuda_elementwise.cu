/*
 * The cuda backend's element-wise and reduction kernels. Each operation is a small functor
 * applied by one grid-stride kernel (memory-bound work: one pass, no shared-memory tiling
 * beyond the reductions). bf16 operands are loaded into fp32, computed in fp32 and rounded to
 * nearest even on store; fp64 computes in fp64. The arithmetic follows the host reference
 * (kernels/ref/) term by term, so results differ from the CPU only by FMA contraction and
 * the summation order of the reductions.
 */
#include <cuda_bf16.h>

#include "kernels/cuda/cuda_impl.h"

namespace
{

typedef __nv_bfloat16 bf16;

/* The type arithmetic runs in for each storage type. */
template <typename T> struct Acc {
    typedef float type;
};
template <> struct Acc<double> {
    typedef double type;
};

__device__ inline float load(const float *p)
{
    return *p;
}
__device__ inline double load(const double *p)
{
    return *p;
}
__device__ inline float load(const bf16 *p)
{
    return __bfloat162float(*p);
}
__device__ inline void store(float *p, double v)
{
    *p = (float)v;
}
__device__ inline void store(double *p, double v)
{
    *p = v;
}
/* Through fp32, as the host's mu_bf16_from_f32((float)v) does. */
__device__ inline void store(bf16 *p, double v)
{
    *p = __float2bfloat16_rn((float)v);
}

template <typename T> __device__ inline T *at(void *base, int64_t ld, int64_t i, int64_t j)
{
    return (T *)base + i * ld + j;
}

/* Threads per block and the most blocks a launch uses (grid-stride loops cover the rest). */
constexpr int THREADS = 256;
constexpr int64_t MAX_BLOCKS = 4096;

template <typename F> __global__ void each_kernel(int64_t rows, int64_t cols, F f)
{
    const int64_t n = rows * cols;
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x)
        f(k / cols, k % cols);
}

int blocks_for(int64_t n)
{
    const int64_t b = (n + THREADS - 1) / THREADS;
    return (int)(b < MAX_BLOCKS ? b : MAX_BLOCKS);
}

template <typename F> mu_status_t each(cudaStream_t s, int64_t rows, int64_t cols, F f)
{
    if (rows * cols == 0)
        return MU_OK;
    each_kernel<<<blocks_for(rows * cols), THREADS, 0, s>>>(rows, cols, f);
    MU_CUDA_CHECK(cudaGetLastError());
    return MU_OK;
}

/* Sum over all entries of f(i, j) in fp64, added into *out (one atomic per block). */
template <typename F> __global__ void sum_kernel(int64_t rows, int64_t cols, F f, double *out)
{
    __shared__ double partial[THREADS];
    const int64_t n = rows * cols;
    double mine = 0.0;
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x)
        mine += f(k / cols, k % cols);
    partial[threadIdx.x] = mine;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half /= 2) {
        if ((int)threadIdx.x < half)
            partial[threadIdx.x] += partial[threadIdx.x + half];
        __syncthreads();
    }
    if (threadIdx.x == 0)
        atomicAdd(out, partial[0]);
}

/* Largest |f(i, j)| (f >= 0), by integer atomicMax on the bits of a non-negative double. */
template <typename F> __global__ void max_kernel(int64_t rows, int64_t cols, F f, double *out)
{
    const int64_t n = rows * cols;
    double mine = 0.0;
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
         k += (int64_t)gridDim.x * blockDim.x)
        mine = fmax(mine, f(k / cols, k % cols));
    atomicMax((unsigned long long *)out, (unsigned long long)__double_as_longlong(mine));
}

mu_status_t read_back(mu_cuda_state_t *st, double *value)
{
    MU_CUDA_CHECK(cudaMemcpyAsync(st->reduce_host, st->reduce, sizeof(double),
                                  cudaMemcpyDeviceToHost, st->compute));
    MU_CUDA_CHECK(cudaStreamSynchronize(st->compute));
    *value = *st->reduce_host;
    return MU_OK;
}

template <typename F>
mu_status_t reduce_sum(mu_cuda_state_t *st, int64_t rows, int64_t cols, F f, double *value)
{
    MU_CUDA_CHECK(cudaMemsetAsync(st->reduce, 0, sizeof(double), st->compute));
    if (rows * cols > 0) {
        sum_kernel<<<blocks_for(rows * cols), THREADS, 0, st->compute>>>(rows, cols, f, st->reduce);
        MU_CUDA_CHECK(cudaGetLastError());
    }
    return read_back(st, value);
}

template <typename F>
mu_status_t reduce_max(mu_cuda_state_t *st, int64_t rows, int64_t cols, F f, double *value)
{
    MU_CUDA_CHECK(cudaMemsetAsync(st->reduce, 0, sizeof(double), st->compute));
    if (rows * cols > 0) {
        max_kernel<<<blocks_for(rows * cols), THREADS, 0, st->compute>>>(rows, cols, f, st->reduce);
        MU_CUDA_CHECK(cudaGetLastError());
    }
    return read_back(st, value);
}

/* ---- functors ----------------------------------------------------------------------------- */

template <typename S, typename D> struct Convert {
    const void *src;
    int64_t src_ld;
    void *dst;
    int64_t dst_ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        store(at<D>(dst, dst_ld, i, j), (double)load(at<S>((void *)src, src_ld, i, j)));
    }
};

template <typename T> struct Axpby {
    typedef typename Acc<T>::type A;
    A alpha, beta;
    const void *x;
    int64_t x_ld;
    void *y;
    int64_t y_ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        T *yp = at<T>(y, y_ld, i, j);
        const A ax = alpha * load(at<T>((void *)x, x_ld, i, j));
        /* beta == 0 never reads y: NaN in an uninitialised y must not leak (kernels/ops.h). */
        store(yp, beta == A(0) ? ax : ax + beta * load(yp));
    }
};

template <typename T> struct Scale {
    typename Acc<T>::type alpha;
    void *x;
    int64_t ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        T *p = at<T>(x, ld, i, j);
        store(p, alpha * load(p));
    }
};

template <typename T> struct AddDiagonal {
    typename Acc<T>::type alpha;
    void *x;
    int64_t ld;
    __device__ void operator()(int64_t, int64_t k) const
    {
        T *p = at<T>(x, ld, k, k);
        store(p, load(p) + alpha);
    }
};

template <typename T> struct SetIdentity {
    double alpha;
    void *x;
    int64_t ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        store(at<T>(x, ld, i, j), i == j ? alpha : 0.0);
    }
};

template <typename T> struct Fill {
    double value;
    void *x;
    int64_t ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        store(at<T>(x, ld, i, j), value);
    }
};

/* (x_ij - shift * [i == j]) / divisor, squared, in fp64. */
template <typename T> struct ShiftedSquare {
    const void *x;
    int64_t ld;
    double shift, divisor;
    __device__ double operator()(int64_t i, int64_t j) const
    {
        const double v =
            ((double)load(at<T>((void *)x, ld, i, j)) - (i == j ? shift : 0.0)) / divisor;
        return v * v;
    }
};

template <typename T> struct AbsShifted {
    const void *x;
    int64_t ld;
    double shift;
    __device__ double operator()(int64_t i, int64_t j) const
    {
        return fabs((double)load(at<T>((void *)x, ld, i, j)) - (i == j ? shift : 0.0));
    }
};

template <typename T> struct NonFinite {
    const void *x;
    int64_t ld;
    __device__ double operator()(int64_t i, int64_t j) const
    {
        return isfinite((double)load(at<T>((void *)x, ld, i, j))) ? 0.0 : 1.0;
    }
};

template <typename T> struct Momentum {
    typedef typename Acc<T>::type A;
    A beta;
    bool nesterov;
    const void *g;
    int64_t g_ld;
    void *m;
    int64_t m_ld;
    void *u;
    int64_t u_ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        const A grad = load(at<T>((void *)g, g_ld, i, j));
        const A mom = beta * load(at<T>(m, m_ld, i, j)) + grad;
        store(at<T>(m, m_ld, i, j), mom);
        store(at<T>(u, u_ld, i, j), nesterov ? grad + beta * mom : mom);
    }
};

template <typename T> struct ApplyUpdate {
    typedef typename Acc<T>::type A;
    A decay, step;
    const void *o;
    int64_t o_ld;
    void *w;
    int64_t w_ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        T *wp = at<T>(w, w_ld, i, j);
        store(wp, load(wp) * decay - step * load(at<T>((void *)o, o_ld, i, j)));
    }
};

template <typename T> struct AdamW {
    typedef typename Acc<T>::type A;
    A b1, b2, eps, decay, c1, c2, lr;
    const void *g;
    void *w, *m1, *m2;
    int64_t g_ld, w_ld, m1_ld, m2_ld;
    __device__ void operator()(int64_t i, int64_t j) const
    {
        const A grad = load(at<T>((void *)g, g_ld, i, j));
        T *ap = at<T>(m1, m1_ld, i, j), *bp = at<T>(m2, m2_ld, i, j), *wp = at<T>(w, w_ld, i, j);
        const A a = b1 * load(ap) + (1 - b1) * grad;
        const A b = b2 * load(bp) + (1 - b2) * grad * grad;
        store(ap, a);
        store(bp, b);
        store(wp, load(wp) * decay - lr * (a * c1) / (sqrt(b * c2) + eps));
    }
};

cudaStream_t stream_of(mu_backend_t *be)
{
    return mu_cuda_state(be)->compute;
}

/* Calls body.run<T>() with T the storage type of dtype. */
template <typename Body> mu_status_t by_dtype(mu_dtype_t dtype, Body body)
{
    switch (dtype) {
    case MU_DTYPE_F32:
        return body.template run<float>();
    case MU_DTYPE_F64:
        return body.template run<double>();
    case MU_DTYPE_BF16:
        return body.template run<bf16>();
    }
    return mu_error(MU_ERR_INVALID, "cuda: unknown dtype %d", (int)dtype);
}

struct ConvertBody {
    cudaStream_t s;
    const void *src;
    mu_dtype_t src_dtype;
    int64_t src_ld;
    void *dst;
    mu_dtype_t dst_dtype;
    int64_t dst_ld, rows, cols;
    template <typename S> struct To {
        const ConvertBody *b;
        template <typename D> mu_status_t run() const
        {
            return each(b->s, b->rows, b->cols,
                        Convert<S, D>{b->src, b->src_ld, b->dst, b->dst_ld});
        }
    };
    template <typename S> mu_status_t run() const
    {
        return by_dtype(dst_dtype, To<S>{this});
    }
};

/* One body per operation: the fields it needs, and run<T>() for the storage type T. */
struct AxpbyBody {
    cudaStream_t s;
    double alpha, beta;
    const mu_mat_t *x;
    mu_mat_t *y;
    template <typename T> mu_status_t run() const
    {
        typedef typename Acc<T>::type A;
        return each(s, y->rows, y->cols,
                    Axpby<T>{(A)alpha, (A)beta, x->data, x->ld, y->data, y->ld});
    }
};

struct ScaleBody {
    cudaStream_t s;
    double alpha;
    mu_mat_t *x;
    template <typename T> mu_status_t run() const
    {
        typedef typename Acc<T>::type A;
        return each(s, x->rows, x->cols, Scale<T>{(A)alpha, x->data, x->ld});
    }
};

struct AddIdentityBody {
    cudaStream_t s;
    double alpha;
    mu_mat_t *x;
    template <typename T> mu_status_t run() const
    {
        typedef typename Acc<T>::type A;
        return each(s, 1, x->rows, AddDiagonal<T>{(A)alpha, x->data, x->ld});
    }
};

struct SetIdentityBody {
    cudaStream_t s;
    double alpha;
    mu_mat_t *x;
    template <typename T> mu_status_t run() const
    {
        return each(s, x->rows, x->cols, SetIdentity<T>{alpha, x->data, x->ld});
    }
};

struct FillBody {
    cudaStream_t s;
    double value;
    mu_mat_t *x;
    template <typename T> mu_status_t run() const
    {
        return each(s, x->rows, x->cols, Fill<T>{value, x->data, x->ld});
    }
};

/* ||x - shift I||_F. fp32 and bf16 squares cannot overflow fp64; fp64 entries may, so they
 * are divided by the largest magnitude first (two passes), as BLAS dnrm2 scales. */
struct ShiftedNormBody {
    mu_cuda_state_t *st;
    const mu_mat_t *x;
    double shift;
    double *out;
    template <typename T> mu_status_t run() const
    {
        double divisor = 1.0, sum = 0.0;
        if (x->dtype == MU_DTYPE_F64) {
            MU_CHECK(
                reduce_max(st, x->rows, x->cols, AbsShifted<T>{x->data, x->ld, shift}, &divisor));
            if (divisor == 0.0 || !isfinite(divisor)) {
                *out = divisor;
                return MU_OK;
            }
        }
        MU_CHECK(reduce_sum(st, x->rows, x->cols, ShiftedSquare<T>{x->data, x->ld, shift, divisor},
                            &sum));
        *out = divisor * sqrt(sum);
        return MU_OK;
    }
};

struct CountNonfiniteBody {
    mu_cuda_state_t *st;
    const mu_mat_t *x;
    int64_t *out;
    template <typename T> mu_status_t run() const
    {
        double count = 0.0;
        MU_CHECK(reduce_sum(st, x->rows, x->cols, NonFinite<T>{x->data, x->ld}, &count));
        *out = (int64_t)count;
        return MU_OK;
    }
};

struct MomentumBody {
    cudaStream_t s;
    double beta;
    bool nesterov;
    const mu_mat_t *g;
    mu_mat_t *m, *u;
    template <typename T> mu_status_t run() const
    {
        typedef typename Acc<T>::type A;
        return each(s, g->rows, g->cols,
                    Momentum<T>{(A)beta, nesterov, g->data, g->ld, m->data, m->ld, u->data, u->ld});
    }
};

struct ApplyUpdateBody {
    cudaStream_t s;
    double decay, step;
    const mu_mat_t *o;
    mu_mat_t *w;
    template <typename T> mu_status_t run() const
    {
        typedef typename Acc<T>::type A;
        return each(s, w->rows, w->cols,
                    ApplyUpdate<T>{(A)decay, (A)step, o->data, o->ld, w->data, w->ld});
    }
};

struct AdamWBody {
    cudaStream_t s;
    const mu_adamw_hyper_t *h;
    const mu_mat_t *g;
    mu_mat_t *w, *m1, *m2;
    template <typename T> mu_status_t run() const
    {
        typedef typename Acc<T>::type A;
        AdamW<T> f;
        f.b1 = (A)h->beta1;
        f.b2 = (A)h->beta2;
        f.eps = (A)h->eps;
        f.decay = (A)(1.0 - h->lr * h->weight_decay);
        f.c1 = (A)(1.0 / (1.0 - pow(h->beta1, (double)h->step)));
        f.c2 = (A)(1.0 / (1.0 - pow(h->beta2, (double)h->step)));
        f.lr = (A)h->lr;
        f.g = g->data;
        f.w = w->data;
        f.m1 = m1->data;
        f.m2 = m2->data;
        f.g_ld = g->ld;
        f.w_ld = w->ld;
        f.m1_ld = m1->ld;
        f.m2_ld = m2->ld;
        return each(s, g->rows, g->cols, f);
    }
};

} // namespace

/* ---- the table's entries -------------------------------------------------------------------- */

extern "C" mu_status_t mu_cuda_convert(cudaStream_t s, const void *src, mu_dtype_t src_dtype,
                                       int64_t src_ld, void *dst, mu_dtype_t dst_dtype,
                                       int64_t dst_ld, int64_t rows, int64_t cols)
{
    return by_dtype(src_dtype,
                    ConvertBody{s, src, src_dtype, src_ld, dst, dst_dtype, dst_ld, rows, cols});
}

extern "C" mu_status_t mu_cuda_axpby(mu_backend_t *be, double alpha, const mu_mat_t *x, double beta,
                                     mu_mat_t *y)
{
    return by_dtype(y->dtype, AxpbyBody{stream_of(be), alpha, beta, x, y});
}

extern "C" mu_status_t mu_cuda_scale(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    return by_dtype(x->dtype, ScaleBody{stream_of(be), alpha, x});
}

extern "C" mu_status_t mu_cuda_add_identity(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    return by_dtype(x->dtype, AddIdentityBody{stream_of(be), alpha, x});
}

extern "C" mu_status_t mu_cuda_set_identity(mu_backend_t *be, double alpha, mu_mat_t *x)
{
    return by_dtype(x->dtype, SetIdentityBody{stream_of(be), alpha, x});
}

extern "C" mu_status_t mu_cuda_fill(mu_backend_t *be, double value, mu_mat_t *x)
{
    return by_dtype(x->dtype, FillBody{stream_of(be), value, x});
}

extern "C" mu_status_t mu_cuda_norm_frob(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    return by_dtype(x->dtype, ShiftedNormBody{mu_cuda_state(be), x, 0.0, out});
}

extern "C" mu_status_t mu_cuda_dist_identity(mu_backend_t *be, const mu_mat_t *x, double *out)
{
    return by_dtype(x->dtype, ShiftedNormBody{mu_cuda_state(be), x, 1.0, out});
}

extern "C" mu_status_t mu_cuda_count_nonfinite(mu_backend_t *be, const mu_mat_t *x, int64_t *out)
{
    return by_dtype(x->dtype, CountNonfiniteBody{mu_cuda_state(be), x, out});
}

extern "C" mu_status_t mu_cuda_momentum(mu_backend_t *be, double beta, bool nesterov,
                                        const mu_mat_t *g, mu_mat_t *m, mu_mat_t *u)
{
    return by_dtype(g->dtype, MomentumBody{stream_of(be), beta, nesterov, g, m, u});
}

extern "C" mu_status_t mu_cuda_apply_update(mu_backend_t *be, double lr, double wd, double scale,
                                            const mu_mat_t *o, mu_mat_t *w)
{
    return by_dtype(w->dtype, ApplyUpdateBody{stream_of(be), 1.0 - lr * wd, lr * scale, o, w});
}

extern "C" mu_status_t mu_cuda_adamw(mu_backend_t *be, const mu_adamw_hyper_t *h, const mu_mat_t *g,
                                     mu_mat_t *w, mu_mat_t *m1, mu_mat_t *m2)
{
    return by_dtype(g->dtype, AdamWBody{stream_of(be), h, g, w, m1, m2});
}
