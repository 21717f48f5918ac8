#include "core/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Format facts from NumPy's NEP 1 ("A simple file format for NumPy arrays"). */
static const uint8_t NPY_MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
enum {
    NPY_PREFIX_V1 = 10, /* magic, 2 version bytes, uint16 header length */
    NPY_PREFIX_V2 = 12, /* magic, 2 version bytes, uint32 header length */
    NPY_ALIGNMENT = 64, /* writers pad the header so data starts 64-byte aligned */
    NPY_MAX_DIMS = 32,  /* NumPy's own limit on array rank */
    NPY_MAX_TEXT = 256, /* longest key or string value we accept in the header */
};
/* Largest dimension accepted: far above any real weight matrix, and small enough that
 * rows*cols*8 cannot overflow a 64-bit size. */
static const int64_t NPY_MAX_DIM = (int64_t)1 << 31;

/* ---- header dictionary: a small subset of Python literal syntax ---------------------- */

typedef struct dict_cursor {
    const char *p, *end;
    const char *what;
} dict_cursor_t;

static void skip_space(dict_cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool accept(dict_cursor_t *c, char ch)
{
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return true;
    }
    return false;
}

static mu_status_t parse_quoted(dict_cursor_t *c, char out[NPY_MAX_TEXT])
{
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return mu_error(MU_ERR_INVALID, "%s: header: expected a quoted string", c->what);
    const char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (n + 1 >= NPY_MAX_TEXT)
            return mu_error(MU_ERR_INVALID, "%s: header: string too long", c->what);
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return mu_error(MU_ERR_INVALID, "%s: header: unterminated string", c->what);
    c->p++;
    out[n] = '\0';
    return MU_OK;
}

static mu_status_t parse_bool(dict_cursor_t *c, bool *out)
{
    skip_space(c);
    const size_t left = (size_t)(c->end - c->p);
    if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
        c->p += 4;
        *out = true;
        return MU_OK;
    }
    if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
        c->p += 5;
        *out = false;
        return MU_OK;
    }
    return mu_error(MU_ERR_INVALID, "%s: header: fortran_order must be True or False", c->what);
}

static mu_status_t parse_dim(dict_cursor_t *c, int64_t *out)
{
    skip_space(c);
    int64_t value = 0;
    const char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        value = value * 10 + (*c->p - '0');
        if (value > NPY_MAX_DIM)
            return mu_error(MU_ERR_INVALID, "%s: header: dimension larger than %lld", c->what,
                            (long long)NPY_MAX_DIM);
        c->p++;
    }
    if (c->p == start)
        return mu_error(MU_ERR_INVALID, "%s: header: shape must hold non-negative integers",
                        c->what);
    if (c->p < c->end && *c->p == 'L') /* written by Python 2 era NumPy */
        c->p++;
    *out = value;
    return MU_OK;
}

static mu_status_t parse_shape(dict_cursor_t *c, int64_t dims[NPY_MAX_DIMS], int *ndim)
{
    if (!accept(c, '('))
        return mu_error(MU_ERR_INVALID, "%s: header: shape must be a tuple", c->what);
    *ndim = 0;
    while (!accept(c, ')')) {
        if (*ndim >= NPY_MAX_DIMS)
            return mu_error(MU_ERR_INVALID, "%s: header: too many dimensions", c->what);
        MU_CHECK(parse_dim(c, &dims[*ndim]));
        (*ndim)++;
        if (!accept(c, ',')) {
            if (!accept(c, ')'))
                return mu_error(MU_ERR_INVALID, "%s: header: malformed shape tuple", c->what);
            break;
        }
    }
    return MU_OK;
}

static mu_status_t parse_descr(const char *descr, const char *what, mu_npy_header_t *out)
{
    const char order = descr[0];
    if (order != '<' && order != '>' && order != '=' && order != '|')
        return mu_error(MU_ERR_INVALID, "%s: dtype '%s' has no byte-order mark", what, descr);
    if (strcmp(descr + 1, "f4") == 0)
        out->type = MU_NPY_F32;
    else if (strcmp(descr + 1, "f8") == 0)
        out->type = MU_NPY_F64;
    else
        return mu_error(MU_ERR_INVALID, "%s: dtype '%s' is not float32 or float64", what, descr);
    /* '=' and '|' mean native order; muond is built for little-endian hosts only. */
    out->big_endian = (order == '>');
    return MU_OK;
}

typedef struct header_fields {
    bool have_descr, have_order, have_shape;
    char descr[NPY_MAX_TEXT];
    int64_t dims[NPY_MAX_DIMS];
    int ndim;
} header_fields_t;

static mu_status_t parse_entry(dict_cursor_t *c, header_fields_t *f, mu_npy_header_t *out)
{
    char key[NPY_MAX_TEXT];
    MU_CHECK(parse_quoted(c, key));
    if (!accept(c, ':'))
        return mu_error(MU_ERR_INVALID, "%s: header: expected ':' after '%s'", c->what, key);
    bool *seen = NULL;
    if (strcmp(key, "descr") == 0) {
        seen = &f->have_descr;
        MU_CHECK(parse_quoted(c, f->descr));
    } else if (strcmp(key, "fortran_order") == 0) {
        seen = &f->have_order;
        MU_CHECK(parse_bool(c, &out->fortran_order));
    } else if (strcmp(key, "shape") == 0) {
        seen = &f->have_shape;
        MU_CHECK(parse_shape(c, f->dims, &f->ndim));
    } else {
        return mu_error(MU_ERR_INVALID, "%s: header: unknown key '%s'", c->what, key);
    }
    if (*seen)
        return mu_error(MU_ERR_INVALID, "%s: header: key '%s' given twice", c->what, key);
    *seen = true;
    return MU_OK;
}

static mu_status_t parse_dict(dict_cursor_t *c, mu_npy_header_t *out)
{
    header_fields_t f = {0};
    if (!accept(c, '{'))
        return mu_error(MU_ERR_INVALID, "%s: header: expected '{'", c->what);
    while (!accept(c, '}')) {
        MU_CHECK(parse_entry(c, &f, out));
        if (!accept(c, ',')) {
            if (!accept(c, '}'))
                return mu_error(MU_ERR_INVALID, "%s: header: expected ',' or '}'", c->what);
            break;
        }
    }
    if (!f.have_descr || !f.have_order || !f.have_shape)
        return mu_error(MU_ERR_INVALID, "%s: header: missing %s", c->what,
                        !f.have_descr   ? "'descr'"
                        : !f.have_order ? "'fortran_order'"
                                        : "'shape'");
    MU_CHECK(parse_descr(f.descr, c->what, out));
    if (f.ndim != 2)
        return mu_error(MU_ERR_INVALID, "%s: array has %d dimension(s); a 2-D matrix is required",
                        c->what, f.ndim);
    out->rows = f.dims[0];
    out->cols = f.dims[1];
    return MU_OK;
}

mu_status_t mu_npy_parse_header(const uint8_t *buf, size_t len, const char *what,
                                mu_npy_header_t *out)
{
    if (!buf || !out || !what)
        return mu_error(MU_ERR_INVALID, "npy: null argument");
    memset(out, 0, sizeof *out);
    if (len < NPY_PREFIX_V1 || memcmp(buf, NPY_MAGIC, sizeof NPY_MAGIC) != 0)
        return mu_error(MU_ERR_INVALID, "%s: not a .npy file (bad magic)", what);
    const int major = buf[6];
    size_t prefix, header_len;
    if (major == 1) {
        prefix = NPY_PREFIX_V1;
        header_len = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (major == 2 || major == 3) {
        if (len < NPY_PREFIX_V2)
            return mu_error(MU_ERR_INVALID, "%s: truncated header", what);
        prefix = NPY_PREFIX_V2;
        header_len =
            (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        return mu_error(MU_ERR_INVALID, "%s: unsupported .npy format version %d", what, major);
    }
    if (header_len > len - prefix)
        return mu_error(MU_ERR_INVALID, "%s: truncated header (%zu bytes declared, %zu present)",
                        what, header_len, len - prefix);
    dict_cursor_t cursor = {(const char *)buf + prefix, (const char *)buf + prefix + header_len,
                            what};
    MU_CHECK(parse_dict(&cursor, out));
    out->data_offset = prefix + header_len;
    return MU_OK;
}

/* ---- reading ---------------------------------------------------------------------------- */

static void swap_bytes(uint8_t *p, size_t width)
{
    for (size_t i = 0; i < width / 2; i++) {
        const uint8_t t = p[i];
        p[i] = p[width - 1 - i];
        p[width - 1 - i] = t;
    }
}

static double element_as_double(const uint8_t *raw, const mu_npy_header_t *h)
{
    uint8_t bytes[8];
    const size_t width = h->type == MU_NPY_F32 ? 4 : 8;
    memcpy(bytes, raw, width);
    if (h->big_endian)
        swap_bytes(bytes, width);
    if (h->type == MU_NPY_F32) {
        float f;
        memcpy(&f, bytes, sizeof f);
        return f;
    }
    double d;
    memcpy(&d, bytes, sizeof d);
    return d;
}

/* Converts raw file data (either order, either dtype) into a row-major double array. */
static void convert_elements(const uint8_t *raw, const mu_npy_header_t *h, double *out)
{
    const size_t width = h->type == MU_NPY_F32 ? 4 : 8;
    for (int64_t i = 0; i < h->rows; i++) {
        for (int64_t j = 0; j < h->cols; j++) {
            const int64_t src = h->fortran_order ? j * h->rows + i : i * h->cols + j;
            out[i * h->cols + j] = element_as_double(raw + (size_t)src * width, h);
        }
    }
}

static mu_status_t read_all(const char *path, uint8_t **buf_out, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return mu_error(MU_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    mu_status_t status = MU_OK;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        status = mu_error(MU_ERR_IO, "%s: not a regular file", path);
        goto out_with_file;
    }
    const size_t len = (size_t)st.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        status = mu_error(MU_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, len);
        goto out_with_file;
    }
    if (fread(buf, 1, len, f) != len) {
        free(buf);
        status = mu_error(MU_ERR_IO, "%s: read failed", path);
        goto out_with_file;
    }
    *buf_out = buf;
    *len_out = len;
out_with_file:
    fclose(f);
    return status;
}

static mu_status_t check_data_size(const mu_npy_header_t *h, size_t file_len, const char *path)
{
    const size_t width = h->type == MU_NPY_F32 ? 4 : 8;
    const size_t expected = (size_t)h->rows * (size_t)h->cols * width;
    const size_t present = file_len - h->data_offset;
    if (present < expected)
        return mu_error(MU_ERR_INVALID,
                        "%s: truncated: a %lldx%lld %s matrix needs %zu bytes of data, the file "
                        "holds %zu",
                        path, (long long)h->rows, (long long)h->cols,
                        h->type == MU_NPY_F32 ? "float32" : "float64", expected, present);
    if (present > expected)
        return mu_error(MU_ERR_INVALID, "%s: %zu unexpected bytes after the matrix data", path,
                        present - expected);
    return MU_OK;
}

mu_status_t mu_npy_read_matrix(const char *path, double **data_out, int64_t *rows, int64_t *cols)
{
    if (!path || !data_out || !rows || !cols)
        return mu_error(MU_ERR_INVALID, "npy: null argument");
    uint8_t *buf = NULL;
    size_t len = 0;
    MU_CHECK(read_all(path, &buf, &len));

    mu_status_t status;
    mu_npy_header_t h;
    MU_CHECK_GOTO(status, mu_npy_parse_header(buf, len, path, &h), out_with_buffer);
    MU_CHECK_GOTO(status, check_data_size(&h, len, path), out_with_buffer);

    double *data = NULL;
    const size_t count = (size_t)h.rows * (size_t)h.cols;
    if (count > 0) {
        data = malloc(count * sizeof *data);
        if (!data) {
            status = mu_error(MU_ERR_NOMEM, "%s: cannot allocate %zu elements", path, count);
            goto out_with_buffer;
        }
        convert_elements(buf + h.data_offset, &h, data);
    }
    *data_out = data;
    *rows = h.rows;
    *cols = h.cols;
out_with_buffer:
    free(buf);
    return status;
}

/* ---- writing ---------------------------------------------------------------------------- */

/* Builds the version 1.0 prefix and padded header; returns its length. */
static size_t format_header(char *out, size_t cap, mu_npy_type_t type, int64_t rows, int64_t cols)
{
    char dict[160];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '<%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     type == MU_NPY_F32 ? "f4" : "f8", (long long)rows, (long long)cols);
    size_t total = NPY_PREFIX_V1 + (size_t)n + 1; /* +1 for the closing newline */
    const size_t padded = (total + NPY_ALIGNMENT - 1) / NPY_ALIGNMENT * NPY_ALIGNMENT;
    const size_t header_len = padded - NPY_PREFIX_V1;
    if (padded > cap)
        return 0;
    memcpy(out, NPY_MAGIC, sizeof NPY_MAGIC);
    out[6] = 1;
    out[7] = 0;
    out[8] = (char)(header_len & 0xff);
    out[9] = (char)(header_len >> 8);
    memcpy(out + NPY_PREFIX_V1, dict, (size_t)n);
    memset(out + NPY_PREFIX_V1 + n, ' ', padded - NPY_PREFIX_V1 - (size_t)n - 1);
    out[padded - 1] = '\n';
    return padded;
}

static mu_status_t write_fully(int fd, const void *data, size_t len, const char *path)
{
    const uint8_t *p = data;
    while (len > 0) {
        const ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return mu_error(MU_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return MU_OK;
}

/* mkstemp creates files 0600; an output file should get the mode open(2) would give it. */
static mode_t output_file_mode(void)
{
    const mode_t mask = umask(0);
    umask(mask);
    return (mode_t)0666 & ~mask;
}

mu_status_t mu_npy_write_matrix(const char *path, const void *data, mu_npy_type_t type,
                                int64_t rows, int64_t cols)
{
    if (!path || (!data && rows * cols > 0) || rows < 0 || cols < 0)
        return mu_error(MU_ERR_INVALID, "npy: bad arguments writing %s", path ? path : "(null)");
    char header[256];
    const size_t header_len = format_header(header, sizeof header, type, rows, cols);
    if (header_len == 0)
        return mu_error(MU_ERR_INVALID, "%s: header does not fit", path);

    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) >= (int)sizeof tmp)
        return mu_error(MU_ERR_INVALID, "%s: path too long", path);
    const int fd = mkstemp(tmp);
    if (fd < 0)
        return mu_error(MU_ERR_IO, "%s: cannot create a temporary file beside it: %s", path,
                        strerror(errno));
    mu_status_t status;
    const size_t bytes = (size_t)rows * (size_t)cols * (type == MU_NPY_F32 ? 4 : 8);
    MU_CHECK_GOTO(status, write_fully(fd, header, header_len, path), out_with_tmpfile);
    MU_CHECK_GOTO(status, write_fully(fd, data, bytes, path), out_with_tmpfile);
    if (fsync(fd) != 0 || fchmod(fd, output_file_mode()) != 0) {
        status = mu_error(MU_ERR_IO, "%s: cannot flush: %s", path, strerror(errno));
        goto out_with_tmpfile;
    }
    if (close(fd) != 0) {
        unlink(tmp);
        return mu_error(MU_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        status = mu_error(MU_ERR_IO, "%s: cannot rename into place: %s", path, strerror(errno));
        unlink(tmp);
        return status;
    }
    return MU_OK;
out_with_tmpfile:
    close(fd);
    unlink(tmp);
    return status;
}
