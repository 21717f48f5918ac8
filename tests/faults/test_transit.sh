#!/bin/sh
# Corruption in transit, 4 ranks: one flipped bit is caught by the wave checksum and the
# resent wave gives the fault-free digest; a bit flipped again on the resend stops the job,
# naming sender, receiver, parameter and step.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"

clean=$(clean_digest 4 5)
run_muond 4 -- --layout "$TINY" --steps 5 --digest --inject bitflip:rank=1:step=3
expect_status 0 "one bitflip"
expect_match "$SCRATCH/err" "step 3: checksum mismatch in the gather of wave [0-9]+ \(rank [0-9] -> rank 1, [a-z0-9]+\); sending it again" \
    "the mismatch is reported with sender, receiver and parameter"
expect_same "$(digest_of_run)" "$clean" "the resent wave gives the fault-free digest"

run_muond 4 -- --layout "$TINY" --steps 5 --digest --inject bitflip:rank=1:step=3:times=2
[ "$STATUS" -ne 0 ] || fail "a twice-corrupted wave did not stop the job"
expect_match "$SCRATCH/err" "step 3: the gather of wave [0-9]+ arrived corrupted twice \(rank [0-9] -> rank 1, [a-z0-9]+; checksum mismatch after one resend\)" \
    "the stop names sender, receiver, parameter and step"
expect_bounded "the corrupted run"
finish
