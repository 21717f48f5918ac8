#!/bin/sh
# mpiexec for test programs that are not scripts: `mpiexec.sh ARGS...` runs
# `$MPIEXEC ARGS...` with AddressSanitizer's leak checks off for the ranks it starts. Open MPI
# dlcloses its components at MPI_Finalize, so the allocations it makes in MPI_Init leak with
# stacks no suppression can name (they show as <unknown module>). Memory errors are still
# caught everywhere; leaks are checked only where MPI is not initialised (fallback_loopback,
# the loopback runs of muond).
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" exec "$MPIEXEC" "$@"
