#include "kernels/residual.h"

#include <math.h>
#include <stdlib.h>

#include "kernels/probes.h"

/* Stream id of the probe vectors in the counter RNG: keeps them apart from other users. */
static const uint64_t PROBE_STREAM = 0x70726f6265ULL; /* "probe" */

void mu_residual_opts_default(mu_residual_opts_t *opts)
{
    *opts = (mu_residual_opts_t){
        .probes = MU_RESIDUAL_DEFAULT_PROBES,
        .power_steps = MU_RESIDUAL_DEFAULT_POWER_STEPS,
        .seed = 0x5eed,
    };
}

typedef struct probe_work {
    mu_mat_t v, w, e;        /* s x k probes, l x k intermediate, s x k E v */
    double *host_v, *host_e; /* s x k each */
} probe_work_t;

static void release_work(mu_backend_t *be, probe_work_t *pw)
{
    mu_k_release(be, &pw->v);
    mu_k_release(be, &pw->w);
    mu_k_release(be, &pw->e);
    free(pw->host_v);
    free(pw->host_e);
}

static mu_status_t alloc_work(mu_backend_t *be, int64_t s, int64_t l, int k, mu_dtype_t dt,
                              probe_work_t *pw)
{
    MU_CHECK(mu_k_alloc(be, s, k, dt, &pw->v));
    MU_CHECK(mu_k_alloc(be, l, k, dt, &pw->w));
    MU_CHECK(mu_k_alloc(be, s, k, dt, &pw->e));
    pw->host_v = malloc((size_t)(s * k) * sizeof *pw->host_v);
    pw->host_e = malloc((size_t)(s * k) * sizeof *pw->host_e);
    if (!pw->host_v || !pw->host_e)
        return mu_error(MU_ERR_NOMEM, "residual: cannot allocate %lld probes", (long long)(s * k));
    return MU_OK;
}

/* E = Q Q^T V - V on the short side. */
static mu_status_t apply_defect(mu_backend_t *be, const mu_mat_t *q, bool wide, probe_work_t *pw)
{
    if (wide) {
        MU_CHECK(mu_k_gemm(be, MU_TRANS, MU_NO_TRANS, 1.0, q, &pw->v, 0.0, &pw->w));
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, q, &pw->w, 0.0, &pw->e));
    } else {
        MU_CHECK(mu_k_gemm(be, MU_NO_TRANS, MU_NO_TRANS, 1.0, q, &pw->v, 0.0, &pw->w));
        MU_CHECK(mu_k_gemm(be, MU_TRANS, MU_NO_TRANS, 1.0, q, &pw->w, 0.0, &pw->e));
    }
    return mu_k_axpby(be, -1.0, &pw->v, 1.0, &pw->e);
}

/* sqrt(sum_j ||E v_j||^2 / sum_j ||v_j||^2): before any power step, the RMS of s_i^2 - 1. */
static double pooled_ratio(const probe_work_t *pw, int64_t s, int k)
{
    double ee = 0.0, vv = 0.0;
    for (int j = 0; j < k; j++) {
        const double ne = mu_probes_column_norm(pw->host_e, s, k, j),
                     nv = mu_probes_column_norm(pw->host_v, s, k, j);
        ee += ne * ne;
        vv += nv * nv;
    }
    return vv > 0.0 ? sqrt(ee / vv) : 0.0;
}

static mu_status_t run_probes(mu_backend_t *be, const mu_mat_t *q, const mu_residual_opts_t *o,
                              probe_work_t *pw, mu_residual_t *out)
{
    const bool wide = q->rows <= q->cols;
    const int64_t s = wide ? q->rows : q->cols;
    const int k = o->probes;
    mu_probes_gaussian(o->seed, PROBE_STREAM, s, k, pw->host_v);
    double worst = 0.0;
    for (int step = 0; step < o->power_steps; step++) {
        MU_CHECK(mu_k_upload(be, pw->host_v, MU_DTYPE_F64, k, &pw->v));
        MU_CHECK(apply_defect(be, q, wide, pw));
        MU_CHECK(mu_k_download(be, &pw->e, pw->host_e, MU_DTYPE_F64, k));
        if (step == 0)
            out->rms = pooled_ratio(pw, s, k);
        worst = mu_probes_power_ratio(pw->host_v, pw->host_e, s, k);
        if (!isfinite(worst))
            break;
    }
    if (!isfinite(worst) || !isfinite(out->rms))
        return mu_error(MU_ERR_NUMERIC, "residual: Q has non-finite entries");
    out->spectral = worst;
    return MU_OK;
}

mu_status_t mu_residual_measure(mu_backend_t *be, const mu_mat_t *q,
                                const mu_residual_opts_t *opts, mu_residual_t *out)
{
    mu_residual_opts_t defaults;
    mu_residual_opts_default(&defaults);
    const mu_residual_opts_t *o = opts ? opts : &defaults;
    if (!be || !q || !out || o->probes < 1 || o->power_steps < 1)
        return mu_error(MU_ERR_INVALID, "residual: bad arguments");
    if (q->rows == 0 || q->cols == 0)
        return mu_error(MU_ERR_INVALID, "residual: empty matrix");
    const bool wide = q->rows <= q->cols;
    probe_work_t pw = {0};
    mu_status_t status;
    MU_CHECK_GOTO(status,
                  alloc_work(be, wide ? q->rows : q->cols, wide ? q->cols : q->rows, o->probes,
                             q->dtype, &pw),
                  out_with_work);
    MU_CHECK_GOTO(status, run_probes(be, q, o, &pw, out), out_with_work);
out_with_work:
    release_work(be, &pw);
    return status;
}

mu_status_t mu_residual_estimate(mu_backend_t *be, const mu_mat_t *q,
                                 const mu_residual_opts_t *opts, double *estimate)
{
    mu_residual_t r = {0};
    if (!estimate)
        return mu_error(MU_ERR_INVALID, "residual: bad arguments");
    MU_CHECK(mu_residual_measure(be, q, opts, &r));
    *estimate = r.spectral;
    return MU_OK;
}
