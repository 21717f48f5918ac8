/* Writing checkpoints (see checkpoint.h): files, fsync, manifest, atomic renames. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/fault.h"
#include "core/log.h"
#include "kernels/host_view.h"
#include "shard/checkpoint_impl.h"

static void add_piece(ckpt_piece_t *pieces, int *n, int param, ckpt_state_t state, int64_t begin,
                      mu_mat_t *m)
{
    if (pieces)
        pieces[*n] = (ckpt_piece_t){param, state, begin, m};
    (*n)++;
}

int mu_ckpt_pieces(mu_optimizer_t *opt, bool writing, ckpt_piece_t *pieces)
{
    int n = 0;
    const bool replica_writer = mu_env_sharded(&opt->env) || !writing || opt->env.rank == 0;
    for (int p = 0; p < opt->env.layout->param_count; p++) {
        param_state_t *ps = &opt->store->params[p];
        if (ps->row_end == ps->row_begin)
            continue;
        if (replica_writer)
            add_piece(pieces, &n, p, CKPT_W, ps->row_begin, &ps->w);
        if (mu_method_is_matrix(opt->env.layout->params[p].method)) {
            if (ps->m.data) /* the shard, or the full matrix on its owner in local mode */
                add_piece(pieces, &n, p, CKPT_M, ps->row_begin, &ps->m);
            if (ps->shampoo) /* on its owner, whole */
                for (int side = 0; side < 2; side++) {
                    add_piece(pieces, &n, p, CKPT_SHAMPOO_L + side, 0,
                              mu_shampoo_statistic(ps->shampoo, side));
                    add_piece(pieces, &n, p, CKPT_SHAMPOO_L_ROOT + side, 0,
                              mu_shampoo_root(ps->shampoo, side));
                }
        } else if (replica_writer) {
            add_piece(pieces, &n, p, CKPT_M1, ps->row_begin, &ps->m1);
            add_piece(pieces, &n, p, CKPT_M2, ps->row_begin, &ps->m2);
        }
    }
    return n;
}

void mu_ckpt_step_dir(const char *dir, long step, char *out, size_t len)
{
    snprintf(out, len, "%s/step-%08ld", dir, step);
}

mu_status_t mu_ckpt_join(char *out, size_t len, const char *dir, const char *name)
{
    if (snprintf(out, len, "%s/%s", dir, name) >= (int)len)
        return mu_error(MU_ERR_INVALID, "checkpoint path %s/%s is too long", dir, name);
    return MU_OK;
}

void mu_ckpt_rank_file(int rank, char *out, size_t len)
{
    snprintf(out, len, "rank-%05d.ckpt", rank);
}

/* ---- one rank's file --------------------------------------------------------------------- */

typedef struct writer {
    int fd;
    const char *path;
    XXH3_state_t *hash;
    int64_t bytes;
    bool disk_full; /* injected: the write runs out of space half-way */
} writer_t;

static mu_status_t put(writer_t *w, const void *data, size_t len)
{
    if (w->disk_full && w->bytes > 0) {
        errno = ENOSPC;
        return mu_error(MU_ERR_IO, "writing %s: %s (injected disk-full)", w->path, strerror(errno));
    }
    for (size_t done = 0; done < len;) {
        const ssize_t n = write(w->fd, (const char *)data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return mu_error(MU_ERR_IO, "writing %s: %s", w->path, strerror(errno));
        done += (size_t)n;
    }
    XXH3_64bits_update(w->hash, data, len);
    w->bytes += (int64_t)len;
    return MU_OK;
}

/* One record: its header, then the piece's values read through a host view. */
static mu_status_t put_piece(mu_optimizer_t *opt, writer_t *w, const ckpt_piece_t *pc)
{
    const ckpt_record_t rec = {pc->param, pc->state, pc->row_begin, pc->m->rows, pc->m->cols};
    MU_CHECK(put(w, &rec, sizeof rec));
    mu_host_view_t v;
    MU_CHECK(
        mu_host_view_begin(opt->env.be, pc->m, MU_DTYPE_F32, MU_HOST_READ | MU_HOST_PACKED, &v));
    mu_status_t status = MU_OK;
    MU_TRY(status, put(w, v.data, sizeof(float) * (size_t)(pc->m->rows * pc->m->cols)));
    mu_host_view_release(&v);
    return status;
}

static mu_status_t put_all(mu_optimizer_t *opt, writer_t *w, const ckpt_piece_t *pieces, int n)
{
    const ckpt_header_t h = {
        CKPT_MAGIC,  CKPT_VERSION,    (uint32_t)opt->env.rank, (uint32_t)opt->env.ranks,
        (uint32_t)n, opt->steps_done, opt->env.layout->digest};
    MU_CHECK(put(w, &h, sizeof h));
    for (int i = 0; i < n; i++)
        MU_CHECK(put_piece(opt, w, &pieces[i]));
    return MU_OK;
}

/* Writes this rank's file into the partial folder; its size and checksum go to out[0..1]. */
static mu_status_t write_rank_file(mu_optimizer_t *opt, const char *partial, int64_t *out)
{
    char name[64], path[CKPT_PATH_MAX];
    mu_ckpt_rank_file(opt->env.rank, name, sizeof name);
    MU_CHECK(mu_ckpt_join(path, sizeof path, partial, name));
    const int n = mu_ckpt_pieces(opt, true, NULL);
    ckpt_piece_t *pieces = calloc((size_t)n + 1, sizeof *pieces);
    writer_t w = {.fd = -1, .path = path, .hash = XXH3_createState()};
    if (!pieces || !w.hash) {
        free(pieces);
        XXH3_freeState(w.hash);
        return mu_error(MU_ERR_NOMEM, "checkpoint: cannot allocate");
    }
    mu_ckpt_pieces(opt, true, pieces);
    XXH3_64bits_reset(w.hash);
    w.disk_full = mu_fault_fire(MU_FAULT_DISK_FULL, opt->env.rank, opt->steps_done, NULL) != NULL;
    mu_status_t status = MU_OK;
    w.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w.fd < 0)
        status = mu_error(MU_ERR_IO, "creating %s: %s", path, strerror(errno));
    MU_TRY(status, put_all(opt, &w, pieces, n));
    if (status == MU_OK && fsync(w.fd) != 0)
        status = mu_error(MU_ERR_IO, "fsync %s: %s", path, strerror(errno));
    if (w.fd >= 0 && close(w.fd) != 0 && status == MU_OK)
        status = mu_error(MU_ERR_IO, "closing %s: %s", path, strerror(errno));
    out[0] = w.bytes;
    out[1] = (int64_t)XXH3_64bits_digest(w.hash);
    XXH3_freeState(w.hash);
    free(pieces);
    return status;
}

/* ---- rank 0: folders, manifest, renames -------------------------------------------------- */

static mu_status_t sync_dir(const char *dir)
{
    const int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        const int e = errno;
        if (fd >= 0)
            close(fd);
        return mu_error(MU_ERR_IO, "fsync of folder %s: %s", dir, strerror(e));
    }
    close(fd);
    return MU_OK;
}

/* Removes a checkpoint folder and the files in it (no deeper levels exist). */
static void remove_folder(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[CKPT_PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static mu_status_t make_folders(const char *dir, const char *partial)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return mu_error(MU_ERR_IO, "creating the checkpoint folder %s: %s", dir, strerror(errno));
    remove_folder(partial); /* left by a crash */
    if (mkdir(partial, 0700) != 0)
        return mu_error(MU_ERR_IO, "creating %s: %s", partial, strerror(errno));
    return MU_OK;
}

static char *hex64(uint64_t v, char *buf)
{
    sprintf(buf, "%016llx", (unsigned long long)v);
    return buf;
}

static cJSON *manifest_json(const mu_optimizer_t *opt, const mu_checkpoint_info_t *info,
                            const int64_t *files)
{
    char hex[20];
    cJSON *root = cJSON_CreateObject(), *list = cJSON_CreateArray();
    cJSON_AddNumberToObject(root, "format", CKPT_VERSION);
    cJSON_AddNumberToObject(root, "step", (double)opt->steps_done);
    cJSON_AddNumberToObject(root, "world_size", opt->env.ranks);
    cJSON_AddStringToObject(root, "layout", opt->env.layout->name);
    cJSON_AddStringToObject(root, "layout_digest", hex64(opt->env.layout->digest, hex));
    cJSON_AddStringToObject(root, "settings_digest", hex64(info->settings_digest, hex));
    cJSON_AddStringToObject(root, "grad_mode", mu_env_sharded(&opt->env) ? "sharded" : "local");
    for (int r = 0; r < opt->env.ranks; r++) {
        char name[64];
        mu_ckpt_rank_file(r, name, sizeof name);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", name);
        cJSON_AddNumberToObject(f, "bytes", (double)files[2 * r]);
        cJSON_AddStringToObject(f, "xxh3", hex64((uint64_t)files[2 * r + 1], hex));
        cJSON_AddItemToArray(list, f);
    }
    cJSON_AddItemToObject(root, "files", list);
    return root;
}

/* Writes text to path by way of path.tmp, fsync and rename. */
static mu_status_t replace_file(const char *path, const char *text)
{
    char tmp[CKPT_PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    const int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f && fd >= 0)
        close(fd);
    if (!f)
        return mu_error(MU_ERR_IO, "creating %s: %s", tmp, strerror(errno));
    const bool ok = fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    const int e = errno;
    if (fclose(f) != 0 || !ok) {
        unlink(tmp);
        return mu_error(MU_ERR_IO, "writing %s: %s", tmp, strerror(ok ? errno : e));
    }
    if (rename(tmp, path) != 0)
        return mu_error(MU_ERR_IO, "renaming %s to %s: %s", tmp, path, strerror(errno));
    return MU_OK;
}

static int descending(const void *a, const void *b)
{
    const long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

/* Removes all but the newest `keep` complete checkpoints. */
static void prune(const char *dir, int keep)
{
    DIR *d = opendir(dir);
    long *steps = NULL;
    size_t count = 0, capacity = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        long step = 0;
        char tail = 0;
        if (sscanf(e->d_name, "step-%ld%c", &step, &tail) != 1)
            continue;
        if (count == capacity) {
            long *grown = realloc(steps, sizeof *steps * (capacity = capacity ? 2 * capacity : 16));
            if (!grown)
                break;
            steps = grown;
        }
        steps[count++] = step;
    }
    if (d)
        closedir(d);
    qsort(steps, count, sizeof *steps, descending);
    for (size_t i = (size_t)keep; i < count; i++) {
        char path[CKPT_PATH_MAX];
        mu_ckpt_step_dir(dir, steps[i], path, sizeof path);
        remove_folder(path);
    }
    free(steps);
}

/* The manifest into the partial folder, then the folder and LATEST into place. */
static mu_status_t publish(const mu_optimizer_t *opt, const mu_checkpoint_info_t *info,
                           const char *partial, const int64_t *files)
{
    char path[CKPT_PATH_MAX], final[CKPT_PATH_MAX];
    cJSON *root = manifest_json(opt, info, files);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return mu_error(MU_ERR_NOMEM, "checkpoint: cannot encode the manifest");
    mu_status_t status = mu_ckpt_join(path, sizeof path, partial, "MANIFEST.json");
    if (status != MU_OK) {
        free(text);
        return status;
    }
    status = replace_file(path, text);
    free(text);
    MU_CHECK(status);
    MU_CHECK(sync_dir(partial));
    mu_ckpt_step_dir(info->dir, opt->steps_done, final, sizeof final);
    remove_folder(final); /* an older run's checkpoint of the same step */
    if (rename(partial, final) != 0)
        return mu_error(MU_ERR_IO, "renaming %s to %s: %s", partial, final, strerror(errno));
    MU_CHECK(sync_dir(info->dir));
    snprintf(path, sizeof path, "%s/LATEST", info->dir);
    const char *base = strrchr(final, '/') + 1;
    char line[64];
    snprintf(line, sizeof line, "%s\n", base);
    MU_CHECK(replace_file(path, line));
    MU_CHECK(sync_dir(info->dir));
    prune(info->dir, info->keep);
    return MU_OK;
}

mu_status_t mu_checkpoint_write(mu_optimizer_t *opt, const mu_checkpoint_info_t *info)
{
    char partial[CKPT_PATH_MAX];
    snprintf(partial, sizeof partial, "%s/.partial-step-%08ld", info->dir, opt->steps_done);
    mu_status_t status = opt->env.rank == 0 ? make_folders(info->dir, partial) : MU_OK;
    MU_CHECK(mu_comm_agree(opt->env.comm, status));
    int64_t *files = calloc(2 * (size_t)opt->env.ranks, sizeof *files);
    if (!files)
        status = mu_error(MU_ERR_NOMEM, "checkpoint: cannot allocate");
    else
        status = write_rank_file(opt, partial, files + 2 * opt->env.rank);
    if (status != MU_OK)
        MU_LOG(MU_LOG_ERROR, MU_SUB_SHARD, "checkpoint of step %ld: %s", opt->steps_done,
               mu_error_message());
    status = mu_comm_agree(opt->env.comm, status);
    if (status == MU_OK && files) /* every rank's size and checksum to rank 0 */
        status =
            mu_comm_allreduce(opt->env.comm, files, 2 * opt->env.ranks, MU_COMM_I64, MU_COMM_SUM);
    if (status == MU_OK && opt->env.rank == 0)
        status = publish(opt, info, partial, files);
    free(files);
    status = mu_comm_agree(opt->env.comm, status);
    if (status != MU_OK && opt->env.rank == 0)
        remove_folder(partial); /* the previous checkpoint and LATEST stay as they were */
    return status;
}
