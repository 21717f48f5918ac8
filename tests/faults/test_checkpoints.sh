#!/bin/sh
# Checkpoints: resuming re-shards (4 -> 2, 3 -> 4) and continues bit for bit; a failed write
# (disk-full) never replaces the previous good checkpoint, and resuming from it gives the
# fault-free digest; corrupted, truncated and mismatched checkpoints are refused, naming the
# file; local mode resumes too.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

clean=$(clean_digest 3 6)

resume_case() { # resume_case WRITERS READERS
    rm -rf "$SCRATCH/ck"
    run_muond "$1" -- --layout "$TINY" --steps 4 --checkpoint-dir "$SCRATCH/ck" --checkpoint-every 2
    expect_status 0 "checkpointing on $1 ranks"
    run_muond "$2" -- --layout "$TINY" --steps 6 --digest --resume "$SCRATCH/ck"
    expect_status 0 "resuming on $2 ranks"
    expect_same "$(digest_of_run)" "$clean" "written by $1 ranks, resumed on $2"
}
resume_case 4 2
resume_case 3 4

# The layout of a checkpoint: files private to the user, the manifest naming each file.
ls "$SCRATCH/ck" | grep -q '^step-00000002$' || fail "the older checkpoint (step 2) is gone"
manifest="$SCRATCH/ck/step-00000004/MANIFEST.json"
expect_in "$manifest" '"world_size":	3' "the manifest records the world size"
expect_match "$manifest" '"xxh3":	"[0-9a-f]{16}"' "the manifest holds each file's checksum"
modes=$(stat -c %a "$SCRATCH/ck/step-00000004/"* | sort -u | tr '\n' ' ')
[ "$modes" = "600 " ] || fail "checkpoint files have modes '$modes', expected 600"

# disk-full at step 4 on rank 2: step 2 stays the newest checkpoint, nothing partial is left.
rm -rf "$SCRATCH/ck"
run_muond 3 -- --layout "$TINY" --steps 5 --checkpoint-dir "$SCRATCH/ck" --checkpoint-every 2 \
    --inject disk-full:rank=2:step=4
expect_status 0 "a failed checkpoint write does not stop training"
expect_in "$SCRATCH/err" "rank-00002.ckpt: No space left on device (injected disk-full)" \
    "the failed write names the file"
expect_in "$SCRATCH/err" "checkpoint of step 4 failed" "the failed checkpoint is reported"
expect_in "$SCRATCH/ck/LATEST" "step-00000002" "LATEST still names step 2"
[ -z "$(ls -A "$SCRATCH/ck" | grep -v '^LATEST$\|^step-00000002$')" ] ||
    fail "the failed write left something behind: $(ls -A "$SCRATCH/ck")"
run_muond 2 -- --layout "$TINY" --steps 6 --digest --resume "$SCRATCH/ck"
expect_status 0 "resume after disk-full"
expect_same "$(digest_of_run)" "$clean" "resuming after disk-full gives the fault-free digest"

# Refusals, each naming the file.
file="$SCRATCH/ck/step-00000002/rank-00001.ckpt"
cp "$file" "$SCRATCH/good.ckpt"
printf 'X' | dd of="$file" bs=1 seek=200 conv=notrunc 2>/dev/null
run_muond 2 -- --layout "$TINY" --steps 6 --resume "$SCRATCH/ck"
expect_status 2 "a corrupted checkpoint"
expect_in "$SCRATCH/err" "$file: checksum" "the corrupted file is named"
head -c 100 "$SCRATCH/good.ckpt" >"$file"
run_muond 2 -- --layout "$TINY" --steps 6 --resume "$SCRATCH/ck"
expect_status 2 "a truncated checkpoint"
expect_in "$SCRATCH/err" "$file: 100 bytes, the manifest says" "the truncated file is named"
cp "$SCRATCH/good.ckpt" "$file"
run_muond 2 -- --layout "$LAYOUTS/one-matrix.json" --steps 6 --resume "$SCRATCH/ck"
expect_status 2 "another layout's checkpoint"
expect_in "$SCRATCH/err" "MANIFEST.json: written for layout digest" "the mismatch is named"
run_muond 2 -- --layout "$TINY" --steps 6 --checkpoint-every 2
expect_status 2 "--checkpoint-every without a folder"
expect_in "$SCRATCH/err" "--checkpoint-every 2 needs --checkpoint-dir DIR" "the missing folder is asked for"
run_muond 2 -- --layout "$TINY" --steps 6 --resume "$SCRATCH/nowhere"
expect_status 2 "a missing checkpoint"
expect_in "$SCRATCH/err" "--resume $SCRATCH/nowhere: no checkpoint there" "the missing folder is named"

# A stop signal writes a checkpoint of the last complete step, and resuming continues it.
rm -rf "$SCRATCH/ck"
MUOND_LOG=info "$MPIEXEC" -n 2 --bind-to none "$MUOND" run --layout "$TINY" --trainer synthetic \
    --seed 5 --steps 100000000 --checkpoint-dir "$SCRATCH/ck" >"$SCRATCH/stop.out" \
    2>"$SCRATCH/stop.err" &
mpiexec_pid=$!
for _ in $(seq 600); do grep -q " step 20/" "$SCRATCH/stop.err" 2>/dev/null && break; sleep 0.1; done
kill -TERM "$(pgrep -P "$mpiexec_pid" -x muond | tail -n 1)"
wait "$mpiexec_pid" || true
stopped=$(sed -n 's/.*stopping on SIGTERM after \([0-9]*\) complete step(s).*/\1/p' "$SCRATCH/stop.err")
if [ -z "$stopped" ]; then
    fail "no stop message"
else
    expect_in "$SCRATCH/ck/LATEST" "step-$(printf %08d "$stopped")" "the stop wrote step $stopped"
    want=$(clean_digest 2 $((stopped + 3)))
    run_muond 3 -- --layout "$TINY" --steps $((stopped + 3)) --digest --resume "$SCRATCH/ck"
    expect_same "$(digest_of_run)" "$want" "resuming the stopped run"
fi

# Local (replicated) mode: momentum moves to the new owner.
local_clean=$(clean_digest 3 6 "$LAYOUTS/tiny-local.json")
rm -rf "$SCRATCH/ck"
run_muond 3 -- --layout "$LAYOUTS/tiny-local.json" --steps 3 --checkpoint-dir "$SCRATCH/ck" \
    --checkpoint-every 3
run_muond 3 -- --layout "$LAYOUTS/tiny-local.json" --steps 6 --digest --resume "$SCRATCH/ck"
expect_status 0 "local-mode resume"
expect_same "$(digest_of_run)" "$local_clean" "local mode resumes bit for bit"
finish
