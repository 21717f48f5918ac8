/*
 * Checkpoints of the optimizer: every rank's weights and optimizer state, written so that a
 * failure never costs the previous good one, and read back onto any number of ranks.
 *
 * On disk, under DIR:
 *   DIR/step-00000012/rank-00003.ckpt   one per writing rank: records of (parameter, state,
 *                                        global rows), fp32, exactly the bytes in memory
 *   DIR/step-00000012/MANIFEST.json     written last by rank 0: step, world size, layout and
 *                                        settings digests, every file's size and XXH3-64
 *   DIR/LATEST                          the newest complete checkpoint's folder name
 * A checkpoint is written into DIR/.partial-step-N, each file fsync'ed, then the manifest,
 * then the folder is renamed into place and LATEST replaced by rename: a crash or a failed
 * write at any point leaves the previous checkpoint and LATEST as they were.
 *
 * Records hold global row ranges, so loading re-shards: each rank takes the rows it holds
 * now from whichever files have them (local mode: the full matrices, momentum on the new
 * owner). Every file read is checked against the manifest's size and checksum first.
 */
#ifndef MU_SHARD_CHECKPOINT_H
#define MU_SHARD_CHECKPOINT_H

#include <stdint.h>

#include "shard/optimizer.h"

typedef struct mu_checkpoint_info {
    const char *dir;
    uint64_t settings_digest; /* of the run settings that must match on resume */
    int keep;                 /* complete checkpoints kept (older ones are removed); >= 1 */
} mu_checkpoint_info_t;

/* Collective: writes the state after opt's last step. A failure (on any rank) is agreed,
 * reported naming the rank and file, and leaves no partial checkpoint behind. */
mu_status_t mu_checkpoint_write(mu_optimizer_t *opt, const mu_checkpoint_info_t *info);

/* Collective: loads DIR's newest checkpoint (or DIR itself when it holds a MANIFEST.json)
 * into opt, which must be fresh; refuses a corrupted, truncated or mismatched one naming
 * the file. *step receives the checkpoint's step. */
mu_status_t mu_checkpoint_load(mu_optimizer_t *opt, const mu_checkpoint_info_t *info, long *step);

#endif
