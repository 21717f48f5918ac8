/* Private to shard/checkpoint*.c: the file format and what both halves share. */
#ifndef MU_SHARD_CHECKPOINT_IMPL_H
#define MU_SHARD_CHECKPOINT_IMPL_H

#include <stdint.h>

#include "shard/checkpoint.h"
#include "shard/store.h"

#define CKPT_MAGIC "MUCKPT\r\n" /* 8 bytes; the CR LF catches text-mode transfers */
enum { CKPT_VERSION = 1, CKPT_PATH_MAX = 4096 };

/* A parameter's pieces of state. Shampoo's statistics and roots are whole matrices (global
 * rows 0..side), written by their owner and read by whichever rank owns the matrix on resume:
 * they do not depend on the ownership. */
typedef enum ckpt_state {
    CKPT_W = 0,
    CKPT_M,
    CKPT_M1,
    CKPT_M2,
    CKPT_SHAMPOO_L,
    CKPT_SHAMPOO_R,
    CKPT_SHAMPOO_L_ROOT,
    CKPT_SHAMPOO_R_ROOT,
    CKPT_STATES
} ckpt_state_t;

/* The global shape of a state of parameter p: rows x cols, or a Shampoo side's square. */
static inline void mu_ckpt_state_shape(const mu_param_t *p, ckpt_state_t state, int64_t *rows,
                                       int64_t *cols)
{
    const bool left = state == CKPT_SHAMPOO_L || state == CKPT_SHAMPOO_L_ROOT;
    const bool right = state == CKPT_SHAMPOO_R || state == CKPT_SHAMPOO_R_ROOT;
    *rows = right ? p->cols : p->rows;
    *cols = left ? p->rows : p->cols;
}

typedef struct ckpt_header {
    char magic[8];
    uint32_t version, rank, ranks, records;
    int64_t step;
    uint64_t layout_digest;
} ckpt_header_t;

typedef struct ckpt_record {
    int32_t param, state; /* ckpt_state_t */
    int64_t row_begin, rows, cols;
} ckpt_record_t; /* followed by rows * cols fp32 values, row-major */

/* One piece of state this rank holds: a parameter's W, M, M1, M2 or Shampoo matrix, global
 * rows [row_begin, row_begin + m->rows). */
typedef struct ckpt_piece {
    int param;
    ckpt_state_t state;
    int64_t row_begin;
    mu_mat_t *m;
} ckpt_piece_t;

/* The pieces this rank writes (writing) or holds and must fill (!writing): in local mode the
 * replicated W, M1 and M2 are written by rank 0 alone. Returns the count; pieces may be NULL
 * to count. */
int mu_ckpt_pieces(mu_optimizer_t *opt, bool writing, ckpt_piece_t *pieces);

/* out = "dir/name"; a path that does not fit is an error naming it. */
mu_status_t mu_ckpt_join(char *out, size_t len, const char *dir, const char *name);

/* "DIR/step-00000012" and the like. */
void mu_ckpt_step_dir(const char *dir, long step, char *out, size_t len);
void mu_ckpt_rank_file(int rank, char *out, size_t len);

#endif
