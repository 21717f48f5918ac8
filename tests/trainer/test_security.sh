#!/bin/sh
# Another user cannot use the daemon: the socket directory is 0700 and the socket 0600; and
# even where the file system would let it connect, SO_PEERCRED refuses the peer's uid.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
LAYOUT="$(dirname "$0")/../data/layouts/mlp-polar-express.json"
DIGEST=$(digest_of "$LAYOUT")
export MUOND_LAYOUT_DIGEST=$DIGEST

# The probe without arguments prints its usage and exits 2: proof that nobody can run it.
probe_status=0
runuser -u nobody -- "$CLIENT_PROBE" >/dev/null 2>&1 || probe_status=$?
if [ "$(id -u)" -ne 0 ] || [ "$probe_status" -ne 2 ]; then
    echo "SKIP: needs root, and a client_probe that user nobody can run (status $probe_status)"
    exit 77
fi

start_daemon 1 "$LAYOUT" --trainer-timeout 30
SOCK=$(socket_of 0)
mode_of() { stat -c %a "$1"; }
[ "$(mode_of "$MUOND_SOCKET_DIR")" = 700 ] || fail "socket directory mode $(mode_of "$MUOND_SOCKET_DIR")"
[ "$(mode_of "$SOCK")" = 600 ] || fail "socket mode $(mode_of "$SOCK")"

# Inherit nothing but the path: nobody runs the probe.
runuser -u nobody -- "$CLIENT_PROBE" connect "$SOCK" 0 "$DIGEST" >"$SCRATCH/nobody1.out" 2>&1 || true
echo "nobody, default permissions: $(cat "$SCRATCH/nobody1.out")"
expect_in "$SCRATCH/nobody1.out" "Permission denied" "the file system keeps other users out"

# Open the file system on purpose: the peer-credential check must still refuse.
chmod 0711 "$SCRATCH" "$MUOND_SOCKET_DIR"
chmod 0666 "$SOCK"
runuser -u nobody -- "$CLIENT_PROBE" connect "$SOCK" 0 "$DIGEST" >"$SCRATCH/nobody2.out" 2>&1 || true
echo "nobody, opened permissions: $(cat "$SCRATCH/nobody2.out")"
expect_in "$SCRATCH/nobody2.out" "uid 65534 may not use this muond" "SO_PEERCRED refuses other uids"
expect_in "$SCRATCH/daemon.err" "refused a connection from uid 65534" "the refusal is logged"

# The daemon still serves its own user's trainer.
"$MLP_TRAINER" --rank 0 --steps 5 >"$SCRATCH/t.out" 2>&1 || fail "own trainer: $(cat "$SCRATCH/t.out")"
wait_pid "$DAEMON" 30 || fail "daemon did not end cleanly"
PIDS=""

# A directory that is not private is refused before anything listens.
mkdir -p "$SCRATCH/open" && chmod 0755 "$SCRATCH/open"
MUOND_SOCKET_DIR="$SCRATCH/open" run_capture "$MUOND" run --comm loopback --layout "$LAYOUT"
expect_status 2 "open socket directory"
expect_in "$SCRATCH/err" "is not private" "open directory message"
finish
