/* Layout files: JSON (libcjson) to a validated mu_layout_t. See shard/layout.h. */
#include "shard/layout.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "kernels/shampoo.h"

/* Defaults: Muon's usual settings (Jordan et al. 2024); T = 5 as in modded-nanogpt. */
static const mu_settings_t DEFAULT_SETTINGS = {
    .lr = 0.02,
    .momentum = 0.95,
    .weight_decay = 0.0,
    .nesterov = true,
    .scale = MU_SCALE_SPECTRAL,
    .pe_lower = MU_PE_DEFAULT_LOWER,
    .pe_iters = MU_LAYOUT_DEFAULT_PE_ITERS,
    .adamw_lr = 3e-4,
    .adamw_beta1 = 0.9,
    .adamw_beta2 = 0.95,
    .adamw_eps = 1e-8,
    .adamw_weight_decay = 0.0,
    .exchange_dtype = MU_DTYPE_F32,
    .wave_budget_bytes = (int64_t)1024 << 20,
    .grad_mode = MU_GRAD_SHARDED,
    .descent_min = 0.0, /* derived from each plan's schedule (kernels/certificate.h) */
    .on_nonfinite = MU_NONFINITE_SKIP,
    .compute_dtype = MU_DTYPE_F32,
    .shampoo_beta = MU_SHAMPOO_DEFAULT_BETA,
    .shampoo_epsilon = MU_SHAMPOO_DEFAULT_EPSILON,
    .shampoo_interval = MU_SHAMPOO_DEFAULT_INTERVAL,
    .shampoo_max_dim = 4096,
};
/* shampoo.max_dim's ceiling: 16384^2 fp32 is 1 GiB per statistic, four of them per side. */
static const double SHAMPOO_MAX_DIM_CEILING = 16384;
/* Largest accepted dimension and element count: BLAS takes int dimensions. */
static const int64_t MAX_DIM = 2147483647;
static const int64_t MAX_ELEMENTS = (int64_t)1 << 40;

static const char *const method_names[MU_METHOD_COUNT] = {"polar-express", "ns5", "gram", "adamw",
                                                          "shampoo"};
/* In mu_schedule_mode_t's order. */
static const char *const schedule_names[] = {"fixed", "adaptive"};

bool mu_method_is_matrix(mu_method_t method)
{
    return method != MU_METHOD_ADAMW;
}

const char *mu_method_name(mu_method_t method)
{
    return (int)method >= 0 && method < MU_METHOD_COUNT ? method_names[method] : "unknown";
}

bool mu_method_is_orth(mu_method_t method)
{
    return mu_method_is_matrix(method) && method != MU_METHOD_SHAMPOO;
}

mu_orth_method_t mu_method_orth(mu_method_t method)
{
    return method == MU_METHOD_NS5    ? MU_ORTH_NS5
           : method == MU_METHOD_GRAM ? MU_ORTH_GRAM
                                      : MU_ORTH_POLAR_EXPRESS;
}

double mu_scale_factor(mu_scale_rule_t rule, int64_t rows, int64_t cols)
{
    switch (rule) {
    case MU_SCALE_SPECTRAL:
        return sqrt(fmax(1.0, (double)rows / (double)cols));
    case MU_SCALE_RMS:
        return 0.2 * sqrt((double)(rows > cols ? rows : cols));
    default:
        return 1.0;
    }
}

void mu_layout_orth_opts(const mu_layout_t *layout, const mu_param_t *p, mu_orth_opts_t *out)
{
    mu_orth_opts_default(out);
    out->method = mu_method_orth(p->method);
    /* The Gram route's R_k -> I cannot be resolved in bf16 (kernels/gram.c): it stays fp32. */
    out->dtype = out->method == MU_ORTH_GRAM ? MU_DTYPE_F32 : layout->settings.compute_dtype;
    out->lower = layout->settings.pe_lower;
    out->iters = out->method == MU_ORTH_NS5 ? 0 : layout->settings.pe_iters;
    out->schedule = p->schedule;
}

void mu_layout_hyper(const mu_layout_t *layout, int index, mu_hyper_t *out)
{
    const mu_param_t *p = &layout->params[index];
    const mu_settings_t *s = &layout->settings;
    *out = (mu_hyper_t){p->lr, p->weight_decay,
                        mu_method_is_matrix(p->method) ? s->momentum : s->adamw_beta1};
}

int64_t mu_param_owner_bytes(const mu_param_t *p)
{
    return 2 * (int64_t)sizeof(float) * p->rows * p->cols;
}

void mu_layout_shampoo_opts(const mu_layout_t *layout, mu_shampoo_opts_t *out)
{
    const mu_settings_t *s = &layout->settings;
    *out = (mu_shampoo_opts_t){s->shampoo_beta, s->shampoo_epsilon, s->shampoo_interval};
}

double mu_layout_param_flops(const mu_layout_t *layout, const mu_param_t *p)
{
    if (p->method == MU_METHOD_SHAMPOO)
        return mu_shampoo_flops(p->rows, p->cols, layout->settings.shampoo_interval);
    return mu_orth_flops(mu_method_orth(p->method), p->rows, p->cols, layout->settings.pe_iters);
}

/* ---- parsing helpers: each names the place it is reading ------------------------------- */

typedef struct where {
    const char *source;
    char place[256]; /* "parameters[3] (\"h.0.mlp.fc\")" or "optimizer" */
} where_t;

static mu_status_t fail(const where_t *w, const char *field, const char *problem)
{
    return mu_error(MU_ERR_INVALID, "%s: %s: %s: %s", w->source, w->place, field, problem);
}

/* Rejects keys not in `allowed` (a NULL-terminated list). */
static mu_status_t check_keys(const cJSON *obj, const char *const *allowed, const where_t *w)
{
    for (const cJSON *item = obj->child; item; item = item->next) {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(item->string, *a) == 0;
        if (!known)
            return fail(w, item->string, "unknown key");
    }
    return MU_OK;
}

/* Reads an optional number in [lo, hi] (exclusive ends when the flags say so). */
static mu_status_t get_number(const cJSON *obj, const char *key, double lo, double hi, bool lo_open,
                              const where_t *w, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return MU_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return fail(w, key, "must be a finite number");
    const double x = v->valuedouble;
    if ((lo_open ? x <= lo : x < lo) || x > hi) {
        char problem[128];
        snprintf(problem, sizeof problem, "%g is outside %s%g, %g]", x, lo_open ? "(" : "[", lo,
                 hi);
        return fail(w, key, problem);
    }
    *out = x;
    return MU_OK;
}

static mu_status_t get_bool(const cJSON *obj, const char *key, const where_t *w, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return MU_OK;
    if (!cJSON_IsBool(v))
        return fail(w, key, "must be true or false");
    *out = cJSON_IsTrue(v);
    return MU_OK;
}

/* Reads an optional string that must be one of `choices`; *index receives its position. */
static mu_status_t get_choice(const cJSON *obj, const char *key, const char *const *choices,
                              int count, const where_t *w, int *index)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return MU_OK;
    if (!cJSON_IsString(v))
        return fail(w, key, "must be a string");
    for (int i = 0; i < count; i++)
        if (strcmp(v->valuestring, choices[i]) == 0) {
            *index = i;
            return MU_OK;
        }
    char problem[256] = "must be one of";
    for (int i = 0; i < count; i++) {
        strncat(problem, i ? ", " : " ", sizeof problem - strlen(problem) - 1);
        strncat(problem, choices[i], sizeof problem - strlen(problem) - 1);
    }
    return fail(w, key, problem);
}

static mu_status_t get_object(const cJSON *obj, const char *key, const where_t *w,
                              const cJSON **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = NULL;
    if (!v)
        return MU_OK;
    if (!cJSON_IsObject(v))
        return fail(w, key, "must be an object");
    *out = v;
    return MU_OK;
}

/* ---- sections --------------------------------------------------------------------------- */

static mu_status_t parse_adamw(const cJSON *obj, const char *source, mu_settings_t *s)
{
    static const char *const keys[] = {"lr", "beta1", "beta2", "eps", "weight_decay", NULL};
    where_t w = {source, "optimizer.adamw"};
    MU_CHECK(check_keys(obj, keys, &w));
    MU_CHECK(get_number(obj, "lr", 0, 1e3, true, &w, &s->adamw_lr));
    MU_CHECK(get_number(obj, "beta1", 0, 0.999999999, false, &w, &s->adamw_beta1));
    MU_CHECK(get_number(obj, "beta2", 0, 0.999999999, false, &w, &s->adamw_beta2));
    MU_CHECK(get_number(obj, "eps", 0, 1, true, &w, &s->adamw_eps));
    MU_CHECK(get_number(obj, "weight_decay", 0, 1e3, false, &w, &s->adamw_weight_decay));
    return MU_OK;
}

static mu_status_t parse_polar_express(const cJSON *obj, const char *source, mu_settings_t *s)
{
    static const char *const keys[] = {"lower", "iters", "schedule", NULL};
    where_t w = {source, "optimizer.polar_express"};
    MU_CHECK(check_keys(obj, keys, &w));
    int schedule = (int)s->pe_schedule;
    MU_CHECK(get_choice(obj, "schedule", schedule_names, 2, &w, &schedule));
    s->pe_schedule = (mu_schedule_mode_t)schedule;
    MU_CHECK(get_number(obj, "lower", 0, 0.999999, true, &w, &s->pe_lower));
    double iters = s->pe_iters;
    MU_CHECK(get_number(obj, "iters", 1, MU_SCHEDULE_MAX_ITERS, false, &w, &iters));
    if (iters != floor(iters))
        return fail(&w, "iters", "must be an integer");
    s->pe_iters = (int)iters;
    return MU_OK;
}

static mu_status_t parse_shampoo(const cJSON *obj, const char *source, mu_settings_t *s)
{
    static const char *const keys[] = {"beta", "epsilon", "interval", "max_dim", NULL};
    where_t w = {source, "optimizer.shampoo"};
    MU_CHECK(check_keys(obj, keys, &w));
    MU_CHECK(get_number(obj, "beta", 0, 1, false, &w, &s->shampoo_beta));
    /* Below 1e-5 the roots' condition number passes 1e5, beyond what fp32 resolves. */
    MU_CHECK(get_number(obj, "epsilon", 1e-5, 1, false, &w, &s->shampoo_epsilon));
    double interval = s->shampoo_interval, max_dim = (double)s->shampoo_max_dim;
    MU_CHECK(get_number(obj, "interval", 1, 1e6, false, &w, &interval));
    MU_CHECK(get_number(obj, "max_dim", 1, SHAMPOO_MAX_DIM_CEILING, false, &w, &max_dim));
    if (interval != floor(interval))
        return fail(&w, "interval", "must be an integer");
    if (max_dim != floor(max_dim))
        return fail(&w, "max_dim", "must be an integer");
    s->shampoo_interval = (int)interval;
    s->shampoo_max_dim = (int64_t)max_dim;
    return MU_OK;
}

static mu_status_t parse_optimizer(const cJSON *obj, const char *source, mu_settings_t *s)
{
    static const char *const keys[] = {"lr",           "momentum",      "nesterov", "weight_decay",
                                       "scale",        "polar_express", "adamw",    "descent_min",
                                       "on_nonfinite", "compute_dtype", "shampoo",  NULL};
    static const char *const scales[] = {"spectral", "rms", "none"};
    static const char *const policies[] = {"skip", "abort"};
    where_t w = {source, "optimizer"};
    MU_CHECK(check_keys(obj, keys, &w));
    MU_CHECK(get_number(obj, "lr", 0, 1e3, true, &w, &s->lr));
    MU_CHECK(get_number(obj, "momentum", 0, 0.999999999, false, &w, &s->momentum));
    MU_CHECK(get_bool(obj, "nesterov", &w, &s->nesterov));
    MU_CHECK(get_number(obj, "weight_decay", 0, 1e3, false, &w, &s->weight_decay));
    int scale = (int)s->scale;
    MU_CHECK(get_choice(obj, "scale", scales, 3, &w, &scale));
    s->scale = (mu_scale_rule_t)scale;
    MU_CHECK(get_number(obj, "descent_min", 0, 1, true, &w, &s->descent_min));
    int policy = (int)s->on_nonfinite;
    MU_CHECK(get_choice(obj, "on_nonfinite", policies, 2, &w, &policy));
    s->on_nonfinite = (mu_nonfinite_policy_t)policy;
    static const char *const dtypes[] = {"fp32", "bf16"};
    int compute = s->compute_dtype == MU_DTYPE_BF16 ? 1 : 0;
    MU_CHECK(get_choice(obj, "compute_dtype", dtypes, 2, &w, &compute));
    s->compute_dtype = compute ? MU_DTYPE_BF16 : MU_DTYPE_F32;
    const cJSON *sub;
    MU_CHECK(get_object(obj, "polar_express", &w, &sub));
    if (sub)
        MU_CHECK(parse_polar_express(sub, source, s));
    MU_CHECK(get_object(obj, "adamw", &w, &sub));
    if (sub)
        MU_CHECK(parse_adamw(sub, source, s));
    MU_CHECK(get_object(obj, "shampoo", &w, &sub));
    if (sub)
        MU_CHECK(parse_shampoo(sub, source, s));
    return MU_OK;
}

static mu_status_t parse_exchange(const cJSON *obj, const char *source, mu_settings_t *s)
{
    static const char *const keys[] = {"dtype", "wave_budget_mib", NULL};
    static const char *const dtypes[] = {"fp32", "bf16"};
    where_t w = {source, "exchange"};
    MU_CHECK(check_keys(obj, keys, &w));
    int dtype = s->exchange_dtype == MU_DTYPE_BF16 ? 1 : 0;
    MU_CHECK(get_choice(obj, "dtype", dtypes, 2, &w, &dtype));
    s->exchange_dtype = dtype ? MU_DTYPE_BF16 : MU_DTYPE_F32;
    double mib = (double)(s->wave_budget_bytes >> 20);
    MU_CHECK(get_number(obj, "wave_budget_mib", 0, 1 << 24, true, &w, &mib));
    s->wave_budget_bytes = (int64_t)(mib * 1048576.0);
    return MU_OK;
}

static mu_status_t parse_shape(const cJSON *v, const where_t *w, mu_param_t *p)
{
    if (!cJSON_IsArray(v))
        return fail(w, "shape", "must be an array of 1 to 4 positive integers");
    const int n = cJSON_GetArraySize(v);
    if (n < 1 || n > MU_PARAM_MAX_DIMS)
        return fail(w, "shape", "must have 1 to 4 dimensions");
    p->ndim = n;
    int64_t elements = 1;
    for (int i = 0; i < n; i++) {
        const cJSON *d = cJSON_GetArrayItem(v, i);
        char problem[96];
        if (!cJSON_IsNumber(d) || d->valuedouble != floor(d->valuedouble) || d->valuedouble < 1 ||
            d->valuedouble > (double)MAX_DIM) {
            snprintf(problem, sizeof problem, "dimension %d must be a positive integer (max %lld)",
                     i, (long long)MAX_DIM);
            return fail(w, "shape", problem);
        }
        p->dims[i] = (int64_t)d->valuedouble;
        if (elements > MAX_ELEMENTS / p->dims[i])
            return fail(w, "shape", "has more than 2^40 elements");
        elements *= p->dims[i];
    }
    p->rows = p->dims[0];
    p->cols = elements / p->rows;
    if (p->cols > MAX_DIM)
        return fail(w, "shape", "flattens to more than 2^31-1 columns");
    return MU_OK;
}

static mu_status_t parse_name(const cJSON *v, where_t *w, int index, mu_param_t *p)
{
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
        return fail(w, "name", "must be a non-empty string");
    if (strlen(v->valuestring) >= MU_PARAM_NAME_MAX)
        return fail(w, "name", "is longer than 127 characters");
    snprintf(p->name, sizeof p->name, "%s", v->valuestring);
    snprintf(w->place, sizeof w->place, "parameters[%d] (\"%s\")", index, p->name);
    return MU_OK;
}

/* Polar Express schedules (polar-express and gram) follow optimizer.polar_express.schedule
 * unless the parameter says; other methods have none to adapt. */
static mu_status_t parse_param_schedule(const cJSON *obj, const mu_settings_t *s, const where_t *w,
                                        mu_param_t *p)
{
    const bool polar = p->method == MU_METHOD_POLAR_EXPRESS || p->method == MU_METHOD_GRAM;
    if (!polar && cJSON_GetObjectItemCaseSensitive(obj, "schedule"))
        return fail(w, "schedule", "applies to polar-express and gram only");
    int schedule = polar ? (int)s->pe_schedule : (int)MU_SCHEDULE_FIXED;
    MU_CHECK(get_choice(obj, "schedule", schedule_names, 2, w, &schedule));
    p->schedule = (mu_schedule_mode_t)schedule;
    return MU_OK;
}

static mu_status_t parse_param(const cJSON *obj, int index, const mu_settings_t *s,
                               const char *source, mu_param_t *p)
{
    static const char *const keys[] = {"name",         "shape",    "method",   "lr",
                                       "weight_decay", "fallback", "schedule", NULL};
    static const char *const fallbacks[] = {"auto", "always"};
    where_t w = {source, ""};
    snprintf(w.place, sizeof w.place, "parameters[%d]", index);
    if (!cJSON_IsObject(obj))
        return fail(&w, "(entry)", "must be an object");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    if (!name)
        return fail(&w, "name", "is missing");
    MU_CHECK(parse_name(name, &w, index, p));
    MU_CHECK(check_keys(obj, keys, &w));
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(obj, "shape");
    if (!shape)
        return fail(&w, "shape", "is missing");
    MU_CHECK(parse_shape(shape, &w, p));
    if (!cJSON_GetObjectItemCaseSensitive(obj, "method"))
        return fail(&w, "method", "is missing");
    int method = 0;
    MU_CHECK(get_choice(obj, "method", method_names, MU_METHOD_COUNT, &w, &method));
    p->method = (mu_method_t)method;
    if (mu_method_is_matrix(p->method) && p->ndim < 2)
        return fail(&w, "method", "a matrix method needs a shape of at least 2 dimensions");
    p->lr = mu_method_is_matrix(p->method) ? s->lr : s->adamw_lr;
    p->weight_decay = mu_method_is_matrix(p->method) ? s->weight_decay : s->adamw_weight_decay;
    MU_CHECK(get_number(obj, "lr", 0, 1e3, true, &w, &p->lr));
    MU_CHECK(get_number(obj, "weight_decay", 0, 1e3, false, &w, &p->weight_decay));
    int fallback = 0;
    MU_CHECK(get_choice(obj, "fallback", fallbacks, 2, &w, &fallback));
    if (fallback && !mu_method_is_matrix(p->method))
        return fail(&w, "fallback", "applies to matrix methods only");
    p->fallback_always = fallback == 1;
    return parse_param_schedule(obj, s, &w, p);
}

/* A shampoo owner's statistics grow as the square of each side: refused past max_dim. */
static mu_status_t check_shampoo_size(const mu_layout_t *l, int i)
{
    const mu_param_t *p = &l->params[i];
    const int64_t side = p->rows > p->cols ? p->rows : p->cols;
    if (p->method != MU_METHOD_SHAMPOO || side <= l->settings.shampoo_max_dim)
        return MU_OK;
    return mu_error(MU_ERR_INVALID,
                    "%s: parameters[%d] (\"%s\"): shape: shampoo keeps a %lldx%lld and a "
                    "%lldx%lld statistic (%.1f MiB with their roots); its side %lld is above "
                    "optimizer.shampoo.max_dim = %lld (use polar-express for it, or raise "
                    "max_dim up to %.0f)",
                    l->source, i, p->name, (long long)p->rows, (long long)p->rows,
                    (long long)p->cols, (long long)p->cols,
                    (double)mu_shampoo_state_bytes(p->rows, p->cols) / 1048576.0, (long long)side,
                    (long long)l->settings.shampoo_max_dim, SHAMPOO_MAX_DIM_CEILING);
}

static mu_status_t check_budget(const mu_layout_t *l)
{
    for (int i = 0; i < l->param_count; i++) {
        const mu_param_t *p = &l->params[i];
        MU_CHECK(check_shampoo_size(l, i));
        if (mu_method_is_matrix(p->method) &&
            mu_param_owner_bytes(p) > l->settings.wave_budget_bytes)
            return mu_error(MU_ERR_INVALID,
                            "%s: parameters[%d] (\"%s\"): shape: its owner needs %.1f MiB (G and Q "
                            "in fp32), more than exchange.wave_budget_mib = %.1f",
                            l->source, i, p->name, (double)mu_param_owner_bytes(p) / 1048576.0,
                            (double)l->settings.wave_budget_bytes / 1048576.0);
    }
    return MU_OK;
}

static mu_status_t parse_params(const cJSON *arr, const char *source, mu_layout_t *l)
{
    where_t w = {source, "layout"};
    if (!cJSON_IsArray(arr))
        return fail(&w, "parameters", "must be an array");
    l->param_count = cJSON_GetArraySize(arr);
    if (l->param_count == 0)
        return fail(&w, "parameters", "is empty");
    l->params = calloc((size_t)l->param_count, sizeof *l->params);
    if (!l->params)
        return mu_error(MU_ERR_NOMEM, "%s: cannot allocate %d parameters", source, l->param_count);
    int i = 0;
    for (const cJSON *item = arr->child; item; item = item->next, i++) {
        MU_CHECK(parse_param(item, i, &l->settings, source, &l->params[i]));
        for (int j = 0; j < i; j++)
            if (strcmp(l->params[j].name, l->params[i].name) == 0)
                return mu_error(MU_ERR_INVALID,
                                "%s: parameters[%d] (\"%s\"): name: duplicate of "
                                "parameters[%d]",
                                source, i, l->params[i].name, j);
    }
    return MU_OK;
}

/* ---- digest: everything ranks and trainers must agree on -------------------------------- */

static void hash_f64(XXH3_state_t *h, double v)
{
    XXH3_64bits_update(h, &v, sizeof v);
}

static uint64_t layout_digest(const mu_layout_t *l)
{
    XXH3_state_t *h = XXH3_createState();
    if (!h)
        return 0;
    XXH3_64bits_reset(h);
    const mu_settings_t *s = &l->settings;
    const double settings[] = {s->lr,
                               s->momentum,
                               s->weight_decay,
                               s->nesterov,
                               s->scale,
                               s->pe_lower,
                               s->pe_iters,
                               s->adamw_lr,
                               s->adamw_beta1,
                               s->adamw_beta2,
                               s->adamw_eps,
                               s->adamw_weight_decay,
                               s->exchange_dtype,
                               (double)s->wave_budget_bytes,
                               s->grad_mode,
                               s->descent_min,
                               s->on_nonfinite};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        hash_f64(h, settings[i]);
    if (s->compute_dtype != MU_DTYPE_F32) /* hashed only when set: fp32 layouts keep digests */
        hash_f64(h, s->compute_dtype);
    bool shampoo = false;
    for (int i = 0; i < l->param_count; i++)
        shampoo |= l->params[i].method == MU_METHOD_SHAMPOO;
    if (shampoo) { /* likewise: only layouts that use them */
        hash_f64(h, s->shampoo_beta);
        hash_f64(h, s->shampoo_epsilon);
        hash_f64(h, s->shampoo_interval);
        hash_f64(h, (double)s->shampoo_max_dim);
    }
    for (int i = 0; i < l->param_count; i++) {
        const mu_param_t *p = &l->params[i];
        XXH3_64bits_update(h, p->name, strlen(p->name) + 1);
        for (int d = 0; d < p->ndim; d++)
            hash_f64(h, (double)p->dims[d]);
        const double rest[] = {p->ndim, p->method, p->lr, p->weight_decay, p->fallback_always};
        for (size_t k = 0; k < sizeof rest / sizeof rest[0]; k++)
            hash_f64(h, rest[k]);
        if (p->schedule != MU_SCHEDULE_FIXED) /* likewise: fixed layouts keep their digests */
            hash_f64(h, p->schedule);
    }
    const uint64_t digest = XXH3_64bits_digest(h);
    XXH3_freeState(h);
    return digest;
}

static mu_status_t parse_root(const cJSON *root, const char *source, mu_layout_t *l)
{
    static const char *const keys[] = {"name",          "optimizer",  "exchange",
                                       "gradient_mode", "parameters", NULL};
    static const char *const modes[] = {"sharded", "local"};
    where_t w = {source, "layout"};
    if (!cJSON_IsObject(root))
        return fail(&w, "(top level)", "must be a JSON object");
    MU_CHECK(check_keys(root, keys, &w));
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (name && !cJSON_IsString(name))
        return fail(&w, "name", "must be a string");
    snprintf(l->name, sizeof l->name, "%s", name ? name->valuestring : "(unnamed)");
    const cJSON *sub;
    MU_CHECK(get_object(root, "optimizer", &w, &sub));
    if (sub)
        MU_CHECK(parse_optimizer(sub, source, &l->settings));
    MU_CHECK(get_object(root, "exchange", &w, &sub));
    if (sub)
        MU_CHECK(parse_exchange(sub, source, &l->settings));
    int mode = 0;
    MU_CHECK(get_choice(root, "gradient_mode", modes, 2, &w, &mode));
    l->settings.grad_mode = (mu_grad_mode_t)mode;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (!params)
        return fail(&w, "parameters", "is missing");
    MU_CHECK(parse_params(params, source, l));
    MU_CHECK(check_budget(l));
    l->digest = layout_digest(l);
    return MU_OK;
}

/* Line and column of a cJSON syntax error, for the message. */
static void error_position(const char *text, const char *at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (const char *p = text; p < at && *p; p++) {
        if (*p == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

mu_status_t mu_layout_parse(const char *text, size_t len, const char *what, mu_layout_t **out)
{
    if (!text || !what || !out)
        return mu_error(MU_ERR_INVALID, "layout: null argument");
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (!root) {
        int line, col;
        error_position(text, end ? end : text, &line, &col);
        return mu_error(MU_ERR_INVALID, "%s:%d:%d: not valid JSON", what, line, col);
    }
    mu_layout_t *l = calloc(1, sizeof *l);
    mu_status_t status = MU_OK;
    if (!l) {
        status = mu_error(MU_ERR_NOMEM, "%s: cannot allocate a layout", what);
        goto out_with_json;
    }
    l->settings = DEFAULT_SETTINGS;
    snprintf(l->source, sizeof l->source, "%s", what);
    MU_CHECK_GOTO(status, parse_root(root, l->source, l), out_with_layout);
    *out = l;
    cJSON_Delete(root);
    return MU_OK;
out_with_layout:
    mu_layout_destroy(&l);
out_with_json:
    cJSON_Delete(root);
    return status;
}

mu_status_t mu_layout_load(const char *path, mu_layout_t **out)
{
    if (!path || !out)
        return mu_error(MU_ERR_INVALID, "layout: null argument");
    FILE *f = fopen(path, "rb");
    if (!f)
        return mu_error(MU_ERR_IO, "%s: cannot open the layout", path);
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *grown = realloc(text, cap);
            if (!grown) {
                free(text);
                fclose(f);
                return mu_error(MU_ERR_NOMEM, "%s: cannot read the layout", path);
            }
            text = grown;
        }
        const size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    const bool read_error = ferror(f);
    fclose(f);
    mu_status_t status = read_error ? mu_error(MU_ERR_IO, "%s: read failed", path)
                                    : mu_layout_parse(text ? text : "", len, path, out);
    free(text);
    return status;
}

void mu_layout_destroy(mu_layout_t **layout)
{
    if (!layout || !*layout)
        return;
    free((*layout)->params);
    free(*layout);
    *layout = NULL;
}
