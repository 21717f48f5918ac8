/* Reading checkpoints back, onto any number of ranks (see checkpoint.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "core/log.h"
#include "shard/checkpoint_impl.h"

/* A piece this rank must fill, staged in host memory until every row has arrived. */
typedef struct target {
    ckpt_piece_t piece;
    float *host;
    int64_t rows_filled;
} target_t;

typedef struct manifest {
    char folder[CKPT_PATH_MAX];
    cJSON *root;
    long step;
    int world_size;
} manifest_t;

static mu_status_t read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mu_error(MU_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    mu_status_t status = MU_OK;
    *data = NULL;
    if (fstat(fileno(f), &st) != 0 || !(*data = malloc((size_t)st.st_size + 1)))
        status = mu_error(MU_ERR_IO, "cannot read %s", path);
    else if (fread(*data, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        status = mu_error(MU_ERR_IO, "reading %s: %s", path, strerror(errno));
    fclose(f);
    if (status != MU_OK) {
        free(*data);
        *data = NULL;
        return status;
    }
    (*data)[st.st_size] = '\0';
    *len = (size_t)st.st_size;
    return MU_OK;
}

/* DIR itself when it holds a manifest, else the folder DIR/LATEST names. */
static mu_status_t find_folder(const char *dir, char *folder, size_t len)
{
    char path[CKPT_PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/MANIFEST.json", dir);
    if (stat(path, &st) == 0) {
        snprintf(folder, len, "%s", dir);
        return MU_OK;
    }
    snprintf(path, sizeof path, "%s/LATEST", dir);
    char *text = NULL;
    size_t n = 0;
    if (read_file(path, &text, &n) != MU_OK)
        return mu_error(MU_ERR_IO,
                        "--resume %s: no checkpoint there (neither %s/LATEST nor "
                        "%s/MANIFEST.json can be read)",
                        dir, dir, dir);
    text[strcspn(text, "\n")] = '\0';
    const bool sane = text[0] && !strchr(text, '/');
    if (sane)
        snprintf(folder, len, "%s/%s", dir, text);
    free(text);
    if (!sane)
        return mu_error(MU_ERR_INVALID, "%s: does not name a checkpoint folder", path);
    return MU_OK;
}

static const char *string_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static mu_status_t read_manifest(const char *dir, const mu_layout_t *layout, manifest_t *m)
{
    MU_CHECK(find_folder(dir, m->folder, sizeof m->folder));
    char path[CKPT_PATH_MAX], *text = NULL;
    size_t len = 0;
    MU_CHECK(mu_ckpt_join(path, sizeof path, m->folder, "MANIFEST.json"));
    MU_CHECK(read_file(path, &text, &len));
    m->root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *step = cJSON_GetObjectItemCaseSensitive(m->root, "step");
    const cJSON *world = cJSON_GetObjectItemCaseSensitive(m->root, "world_size");
    const char *digest = string_of(m->root, "layout_digest");
    if (!cJSON_IsNumber(step) || !cJSON_IsNumber(world) || !digest ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(m->root, "files")))
        return mu_error(MU_ERR_INVALID, "%s: not a muond checkpoint manifest (corrupted?)", path);
    m->step = (long)step->valuedouble;
    m->world_size = world->valueint;
    char mine[20];
    snprintf(mine, sizeof mine, "%016llx", (unsigned long long)layout->digest);
    if (strcmp(digest, mine) != 0)
        return mu_error(MU_ERR_INVALID,
                        "%s: written for layout digest %s; this run's layout %s has %s", path,
                        digest, layout->source, mine);
    return MU_OK;
}

static target_t *find_target(target_t *t, int n, const ckpt_record_t *r)
{
    for (int i = 0; i < n; i++)
        if (t[i].piece.param == r->param && (int)t[i].piece.state == r->state)
            return &t[i];
    return NULL;
}

/* Copies the rows of one record that this rank holds. */
static void take_rows(target_t *t, const ckpt_record_t *r, const float *values)
{
    const int64_t begin = t->piece.row_begin, end = begin + t->piece.m->rows;
    const int64_t lo = r->row_begin > begin ? r->row_begin : begin;
    const int64_t hi = r->row_begin + r->rows < end ? r->row_begin + r->rows : end;
    if (hi <= lo)
        return;
    memcpy(t->host + (lo - begin) * r->cols, values + (lo - r->row_begin) * r->cols,
           sizeof(float) * (size_t)((hi - lo) * r->cols));
    t->rows_filled += hi - lo;
}

static mu_status_t take_records(const mu_layout_t *layout, const char *path, const char *data,
                                size_t len, target_t *t, int n)
{
    ckpt_header_t h;
    if (len < sizeof h || memcmp(data, CKPT_MAGIC, 8) != 0)
        return mu_error(MU_ERR_INVALID, "%s: not a muond checkpoint file", path);
    memcpy(&h, data, sizeof h);
    size_t at = sizeof h;
    for (uint32_t i = 0; i < h.records; i++) {
        ckpt_record_t r;
        if (at + sizeof r > len)
            return mu_error(MU_ERR_INVALID, "%s: truncated at record %u", path, i);
        memcpy(&r, data + at, sizeof r);
        at += sizeof r;
        int64_t rows = 0, cols = 0;
        const bool known =
            r.param >= 0 && r.param < layout->param_count && r.state >= 0 && r.state < CKPT_STATES;
        if (known)
            mu_ckpt_state_shape(&layout->params[r.param], (ckpt_state_t)r.state, &rows, &cols);
        const bool fits = known && r.cols == cols && r.row_begin >= 0 && r.rows >= 0 &&
                          r.row_begin + r.rows <= rows &&
                          at + sizeof(float) * (size_t)(r.rows * r.cols) <= len;
        if (!fits)
            return mu_error(MU_ERR_INVALID, "%s: record %u does not fit the layout", path, i);
        target_t *target = find_target(t, n, &r);
        if (target) /* float data is only 4-aligned in the file: copy it out */
            take_rows(target, &r, (const float *)(const void *)(data + at));
        at += sizeof(float) * (size_t)(r.rows * r.cols);
    }
    return MU_OK;
}

/* Reads one listed file, checks it against the manifest, and takes its rows. */
static mu_status_t load_file(const mu_layout_t *layout, const manifest_t *m, const cJSON *entry,
                             target_t *t, int n)
{
    const char *name = string_of(entry, "name"), *sum = string_of(entry, "xxh3");
    const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(entry, "bytes");
    if (!name || !sum || !cJSON_IsNumber(bytes) || strchr(name, '/'))
        return mu_error(MU_ERR_INVALID, "%s/MANIFEST.json: a malformed file entry", m->folder);
    char path[CKPT_PATH_MAX], *data = NULL, got[20];
    size_t len = 0;
    MU_CHECK(mu_ckpt_join(path, sizeof path, m->folder, name));
    MU_CHECK(read_file(path, &data, &len));
    snprintf(got, sizeof got, "%016llx", (unsigned long long)XXH3_64bits(data, len));
    mu_status_t status = MU_OK;
    if ((double)len != bytes->valuedouble)
        status = mu_error(MU_ERR_INVALID, "%s: %zu bytes, the manifest says %.0f (truncated?)",
                          path, len, bytes->valuedouble);
    else if (strcmp(got, sum) != 0)
        status = mu_error(MU_ERR_INVALID, "%s: checksum %s, the manifest says %s (corrupted)", path,
                          got, sum);
    else
        status = take_records(layout, path, data, len, t, n);
    free(data);
    return status;
}

/* The pieces are assembled in host buffers of their own, not in views of the state: rows
 * come from several files, and a resume that fails half-way must leave the state as it was. */
static mu_status_t build_targets(mu_optimizer_t *opt, target_t **out, int *count)
{
    const int n = mu_ckpt_pieces(opt, false, NULL);
    ckpt_piece_t *pieces = calloc((size_t)n + 1, sizeof *pieces);
    target_t *t = calloc((size_t)n + 1, sizeof *t);
    *out = t;
    *count = n;
    if (!pieces || !t) {
        free(pieces);
        return mu_error(MU_ERR_NOMEM, "resume: cannot allocate");
    }
    mu_ckpt_pieces(opt, false, pieces);
    for (int i = 0; i < n; i++) {
        t[i].piece = pieces[i];
        t[i].host = malloc(sizeof(float) * (size_t)(pieces[i].m->rows * pieces[i].m->cols + 1));
        if (!t[i].host) {
            free(pieces);
            return mu_error(MU_ERR_NOMEM, "resume: cannot stage");
        }
    }
    free(pieces);
    return MU_OK;
}

static const char *const state_names[CKPT_STATES] = {"weights",        "momentum",      "AdamW m1",
                                                     "AdamW m2",       "Shampoo L",     "Shampoo R",
                                                     "Shampoo L root", "Shampoo R root"};

/* Every row arrived: upload; else name what is missing. */
static mu_status_t install(mu_optimizer_t *opt, const manifest_t *m, target_t *t, int n)
{
    for (int i = 0; i < n; i++) {
        const ckpt_piece_t *pc = &t[i].piece;
        if (t[i].rows_filled != pc->m->rows)
            return mu_error(MU_ERR_INVALID,
                            "%s: holds %lld of the %lld rows of %s's %s that rank %d needs "
                            "(from row %lld)",
                            m->folder, (long long)t[i].rows_filled, (long long)pc->m->rows,
                            opt->env.layout->params[pc->param].name, state_names[pc->state],
                            opt->env.rank, (long long)pc->row_begin);
        MU_CHECK(mu_k_upload(opt->env.be, t[i].host, MU_DTYPE_F32, pc->m->cols, pc->m));
    }
    return MU_OK;
}

static mu_status_t load_local(mu_optimizer_t *opt, const mu_checkpoint_info_t *info, manifest_t *m)
{
    MU_CHECK(read_manifest(info->dir, opt->env.layout, m));
    target_t *t = NULL;
    int n = 0;
    mu_status_t status = build_targets(opt, &t, &n);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(m->root, "files"))
    {
        MU_TRY(status, load_file(opt->env.layout, m, entry, t, n));
    }
    MU_TRY(status, install(opt, m, t, n));
    for (int i = 0; t && i < n; i++)
        free(t[i].host);
    free(t);
    return status;
}

mu_status_t mu_checkpoint_load(mu_optimizer_t *opt, const mu_checkpoint_info_t *info, long *step)
{
    if (opt->steps_done != 0)
        return mu_error(MU_ERR_INVALID, "resume: the optimizer has already stepped");
    manifest_t m = {0};
    mu_status_t status = load_local(opt, info, &m);
    if (status != MU_OK)
        MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "%s", mu_error_message());
    status = mu_comm_agree(opt->env.comm, status);
    if (status == MU_OK) {
        opt->steps_done = m.step;
        *step = m.step;
        const char *settings = string_of(m.root, "settings_digest");
        char mine[20];
        snprintf(mine, sizeof mine, "%016llx", (unsigned long long)info->settings_digest);
        if (opt->env.rank == 0 && settings && strcmp(settings, mine) != 0)
            MU_LOG(MU_LOG_WARN, MU_SUB_SHARD,
                   "resuming %s with other run settings than it was written with", m.folder);
        if (opt->env.rank == 0)
            MU_LOG(MU_LOG_INFO, MU_SUB_SHARD,
                   "resumed from %s: step %ld, written by %d rank(s), now %d", m.folder, m.step,
                   m.world_size, opt->env.ranks);
    }
    cJSON_Delete(m.root);
    return status;
}
