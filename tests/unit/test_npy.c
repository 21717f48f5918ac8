/*
 * .npy reading and writing (core/npy.h) on hand-made files: every accepted variant
 * (float32/float64, C/Fortran order, little/big endian, format 1.0/2.0/3.0) and every
 * malformation the reader must name (magic, version, dtype, rank, truncation, trailing data).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/npy.h"

static char path[256];

static void make_path(void)
{
    snprintf(path, sizeof path, "/tmp/muond-test-npy-%d.npy", (int)getpid());
}

/* Writes magic + version + header text (padded, newline-terminated) + data bytes. */
static void write_raw(int major, const char *dict, const void *data, size_t data_len)
{
    make_path();
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    const size_t prefix = major == 1 ? 10 : 12;
    size_t header_len = strlen(dict) + 1;
    header_len += (64 - (prefix + header_len) % 64) % 64;
    const unsigned char magic[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, 0};
    fwrite(magic, 1, 8, f);
    const unsigned char len_bytes[4] = {header_len & 0xff, (header_len >> 8) & 0xff,
                                        (header_len >> 16) & 0xff, header_len >> 24};
    fwrite(len_bytes, 1, major == 1 ? 2 : 4, f);
    fputs(dict, f);
    for (size_t i = strlen(dict) + 1; i < header_len; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, data_len, f);
    fclose(f);
}

static const double expected[6] = {1, 2, 3, 4, 5, 6}; /* the 2 x 3 matrix, row-major */

static void expect_matrix(void)
{
    double *data = NULL;
    int64_t rows, cols;
    cr_assert_eq(mu_npy_read_matrix(path, &data, &rows, &cols), MU_OK, "%s", mu_error_message());
    cr_expect_eq(rows, 2);
    cr_expect_eq(cols, 3);
    for (int i = 0; i < 6; i++)
        cr_expect_eq(data[i], expected[i], "element %d", i);
    free(data);
    unlink(path);
}

Test(npy, float32_c_order)
{
    const float d[6] = {1, 2, 3, 4, 5, 6};
    write_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, sizeof d);
    expect_matrix();
}

Test(npy, float64_fortran_order)
{
    const double d[6] = {1, 4, 2, 5, 3, 6}; /* column-major */
    write_raw(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", d, sizeof d);
    expect_matrix();
}

Test(npy, big_endian_and_version_2)
{
    unsigned char d[24];
    for (int i = 0; i < 6; i++) {
        float v = (float)(i + 1);
        unsigned char b[4];
        memcpy(b, &v, 4);
        for (int k = 0; k < 4; k++)
            d[4 * i + k] = b[3 - k];
    }
    write_raw(2, "{\"descr\": \">f4\", \"fortran_order\": False, \"shape\": (2, 3)}", d, sizeof d);
    expect_matrix();
}

Test(npy, roundtrip_through_writer)
{
    make_path();
    const float d[6] = {1, 2, 3, 4, 5, 6};
    cr_assert_eq(mu_npy_write_matrix(path, d, MU_NPY_F32, 2, 3), MU_OK);
    expect_matrix();
}

static void expect_error(const char *fragment)
{
    double *data = NULL;
    int64_t rows, cols;
    cr_expect_eq(mu_npy_read_matrix(path, &data, &rows, &cols), MU_ERR_INVALID);
    cr_expect_not_null(strstr(mu_error_message(), fragment), "message '%s' lacks '%s'",
                       mu_error_message(), fragment);
    cr_expect_not_null(strstr(mu_error_message(), path), "message '%s' does not name the file",
                       mu_error_message());
    free(data);
    unlink(path);
}

Test(npy, malformed_files_are_named)
{
    const float d[8] = {0}; /* room for the trailing-bytes case */
    write_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, 20);
    expect_error("truncated");
    write_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, 28);
    expect_error("unexpected bytes");
    write_raw(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", d, 24);
    expect_error("not float32 or float64");
    write_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", d, 24);
    expect_error("2-D");
    write_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", d, 24);
    expect_error("2-D");
    write_raw(1, "{'descr': '<f4', 'shape': (2, 3), }", d, 24);
    expect_error("fortran_order");
    write_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", d, 24);
    expect_error("non-negative");
    write_raw(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", d, 24);
    expect_error("True or False");
    write_raw(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", d,
              24);
    expect_error("twice");
    write_raw(7, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, 24);
    expect_error("version 7");
    write_raw(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 3), }", d, 24);
    expect_error("dimension larger");
}

Test(npy, not_npy_and_missing)
{
    make_path();
    FILE *f = fopen(path, "wb");
    fputs("hello, this is not numpy", f);
    fclose(f);
    expect_error("bad magic");
    double *data = NULL;
    int64_t rows, cols;
    cr_expect_eq(mu_npy_read_matrix("/nonexistent/dir/x.npy", &data, &rows, &cols), MU_ERR_IO);
    cr_expect_not_null(strstr(mu_error_message(), "/nonexistent/dir/x.npy"));
}

Test(npy, header_parser_never_reads_past_the_buffer)
{
    /* Every prefix of a valid file must be rejected cleanly (ASan checks the reads). */
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    uint8_t buf[128] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 64 - 10, 0};
    memcpy(buf + 10, dict, strlen(dict));
    for (size_t len = 0; len < 64; len++) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        mu_npy_header_t h;
        cr_expect_neq(mu_npy_parse_header(copy, len, "prefix", &h), MU_OK, "length %zu", len);
        free(copy);
    }
}

Test(npy, failed_write_leaves_no_file)
{
    const float d[2] = {1, 2};
    cr_expect_eq(mu_npy_write_matrix("/nonexistent/dir/out.npy", d, MU_NPY_F32, 1, 2), MU_ERR_IO);
    cr_expect_neq(access("/nonexistent/dir/out.npy", F_OK), 0);
}
