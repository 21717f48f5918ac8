/* The dnnl backend's matmul: primitives created once per key and reused (dnnl_impl.h). */
#include <string.h>

#include "kernels/dnnl/dnnl_impl.h"

static dnnl_data_type_t dnnl_type(mu_dtype_t dtype)
{
    return dtype == MU_DTYPE_BF16 ? dnnl_bf16 : dnnl_f32;
}

/* A row-major rows x cols view with leading dimension ld, or its transpose: the same bytes
 * with the strides swapped, so no operand is ever copied to transpose it. */
static mu_status_t describe(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, int64_t ld,
                            mu_trans_t trans, mu_dtype_t dtype)
{
    const dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {ld, 1};
    if (trans == MU_TRANS) {
        strides[0] = 1;
        strides[1] = ld;
    }
    MU_DNNL_CHECK(dnnl_memory_desc_init_by_strides(md, 2, dims, dnnl_type(dtype), strides));
    return MU_OK;
}

/* alpha as the output scale, beta as a sum post-op; the defaults (1, 0) add nothing. */
static mu_status_t make_attr(const dnnl_matmul_key_t *k, dnnl_primitive_attr_t *out)
{
    dnnl_primitive_attr_t attr;
    MU_DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    *out = attr;
    if (k->alpha != 1.0f)
        MU_DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha));
    if (k->beta != 0.0f) {
        dnnl_post_ops_t post;
        MU_DNNL_CHECK(dnnl_post_ops_create(&post));
        const dnnl_status_t appended = dnnl_post_ops_append_sum(post, k->beta);
        const dnnl_status_t set = appended == dnnl_success
                                      ? dnnl_primitive_attr_set_post_ops(attr, post)
                                      : appended;
        dnnl_post_ops_destroy(post);
        MU_DNNL_CHECK(set);
    }
    return MU_OK;
}

static mu_status_t create_primitive(dnnl_state_t *st, const dnnl_matmul_key_t *k,
                                    dnnl_primitive_t *out)
{
    dnnl_memory_desc_t a_md, b_md, c_md;
    /* op(A) is m x k: A is stored m x k (no trans) or k x m (trans); likewise op(B). */
    MU_CHECK(describe(&a_md, k->m, k->k, k->lda, k->trans_a, k->dtype));
    MU_CHECK(describe(&b_md, k->k, k->n, k->ldb, k->trans_b, k->dtype));
    MU_CHECK(describe(&c_md, k->m, k->n, k->ldc, MU_NO_TRANS, k->dtype));
    dnnl_matmul_desc_t desc;
    MU_DNNL_CHECK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md));
    dnnl_primitive_attr_t attr = NULL;
    mu_status_t status = make_attr(k, &attr);
    dnnl_primitive_desc_t pd = NULL;
    if (status == MU_OK) {
        const dnnl_status_t made = dnnl_primitive_desc_create(&pd, &desc, attr, st->engine, NULL);
        status = made == dnnl_success ? MU_OK : mu_dnnl_error(made, "matmul primitive descriptor");
    }
    dnnl_primitive_attr_destroy(attr);
    MU_CHECK(status);
    const char *impl = NULL;
    if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl)
        strncpy(st->impl, impl, sizeof st->impl - 1);
    const dnnl_status_t created = dnnl_primitive_create(out, pd);
    dnnl_primitive_desc_destroy(pd);
    MU_DNNL_CHECK(created);
    return MU_OK;
}

static void release_entry(dnnl_matmul_entry_t *e)
{
    dnnl_primitive_destroy(e->primitive);
    dnnl_memory_destroy(e->a);
    dnnl_memory_destroy(e->b);
    dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

void mu_dnnl_cache_clear(dnnl_state_t *st)
{
    for (int i = 0; i < st->entries; i++)
        release_entry(&st->cache[i]);
    st->entries = 0;
}

/* The memory objects take each call's pointers; their descriptors come from the primitive. */
static mu_status_t make_memories(dnnl_state_t *st, dnnl_matmul_entry_t *e)
{
    const_dnnl_primitive_desc_t pd;
    MU_DNNL_CHECK(dnnl_primitive_get_primitive_desc(e->primitive, &pd));
    const struct {
        dnnl_query_t what;
        dnnl_memory_t *mem;
    } args[] = {{dnnl_query_src_md, &e->a}, {dnnl_query_weights_md, &e->b},
                {dnnl_query_dst_md, &e->c}};
    for (int i = 0; i < 3; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, args[i].what, 0);
        MU_DNNL_CHECK(dnnl_memory_create(args[i].mem, md, st->engine, DNNL_MEMORY_NONE));
    }
    return MU_OK;
}

/* The slot a new entry goes in: a free one, or the least recently used one, emptied. */
static dnnl_matmul_entry_t *free_slot(dnnl_state_t *st)
{
    if (st->entries < DNNL_CACHE_ENTRIES)
        return &st->cache[st->entries++];
    dnnl_matmul_entry_t *oldest = &st->cache[0];
    for (int i = 1; i < DNNL_CACHE_ENTRIES; i++)
        if (st->cache[i].last_used < oldest->last_used)
            oldest = &st->cache[i];
    release_entry(oldest);
    return oldest;
}

static mu_status_t find_entry(dnnl_state_t *st, const dnnl_matmul_key_t *k,
                              dnnl_matmul_entry_t **out)
{
    for (int i = 0; i < st->entries; i++)
        if (memcmp(&st->cache[i].key, k, sizeof *k) == 0) {
            st->hits++;
            *out = &st->cache[i];
            return MU_OK;
        }
    st->misses++;
    dnnl_matmul_entry_t *e = free_slot(st);
    e->key = *k;
    mu_status_t status = create_primitive(st, k, &e->primitive);
    MU_TRY(status, make_memories(st, e));
    if (status != MU_OK) {
        release_entry(e); /* a zeroed slot: its key (m = 0) matches no call, and it goes first */
        MU_CHECK(status);
    }
    *out = e;
    return MU_OK;
}

mu_status_t mu_dnnl_matmul(mu_backend_t *be, mu_trans_t trans_a, mu_trans_t trans_b, double alpha,
                           const mu_mat_t *a, const mu_mat_t *b, double beta, mu_mat_t *c)
{
    dnnl_state_t *st = be->state;
    dnnl_matmul_key_t key;
    memset(&key, 0, sizeof key); /* compared bytewise: the padding must be zero too */
    key.m = c->rows;
    key.n = c->cols;
    key.k = trans_a == MU_TRANS ? a->rows : a->cols;
    key.lda = a->ld;
    key.ldb = b->ld;
    key.ldc = c->ld;
    key.trans_a = trans_a;
    key.trans_b = trans_b;
    key.dtype = c->dtype;
    key.alpha = (float)alpha;
    key.beta = (float)beta;
    dnnl_matmul_entry_t *e;
    MU_CHECK(find_entry(st, &key, &e));
    e->last_used = ++st->clock;
    MU_DNNL_CHECK(dnnl_memory_set_data_handle(e->a, a->data));
    MU_DNNL_CHECK(dnnl_memory_set_data_handle(e->b, b->data));
    MU_DNNL_CHECK(dnnl_memory_set_data_handle(e->c, c->data));
    const dnnl_exec_arg_t args[] = {
        {DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
    MU_DNNL_CHECK(dnnl_primitive_execute(e->primitive, st->stream, 3, args));
    MU_DNNL_CHECK(dnnl_stream_wait(st->stream));
    return MU_OK;
}
