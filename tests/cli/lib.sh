# Helpers for the command-line tests (sourced). Each test script gets MUOND and NPYTOOL in
# the environment and a private scratch directory that is removed on exit.
set -eu

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/muond-cli.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
FAILURES=0

fail() {
    echo "FAIL: $*" >&2
    FAILURES=$((FAILURES + 1))
}

# run_capture CMD...: runs CMD, keeping its status in $STATUS, stdout in $SCRATCH/out and
# stderr in $SCRATCH/err.
run_capture() {
    set +e
    "$@" >"$SCRATCH/out" 2>"$SCRATCH/err"
    STATUS=$?
    set -e
}

expect_status() { # expect_status WANT DESCRIPTION
    if [ "$STATUS" -ne "$1" ]; then
        fail "$2: exit status $STATUS, expected $1; stderr:"
        sed 's/^/    /' "$SCRATCH/err" >&2
    fi
}

expect_in() { # expect_in FILE TEXT DESCRIPTION
    if ! grep -qF -- "$2" "$1"; then
        fail "$3: '$2' not found in $(basename "$1"):"
        sed 's/^/    /' "$1" >&2
    fi
}

expect_match() { # expect_match FILE EXTENDED-REGEX DESCRIPTION
    if ! grep -qE -- "$2" "$1"; then
        fail "$3: /$2/ not found in $(basename "$1"):"
        sed 's/^/    /' "$1" >&2
    fi
}

expect_leq() { # expect_leq VALUE LIMIT DESCRIPTION
    if ! awk -v v="$1" -v l="$2" 'BEGIN { exit !(v + 0 <= l + 0) }'; then
        fail "$3: $1 > $2"
    fi
}

finish() {
    if [ "$FAILURES" -ne 0 ]; then
        echo "$FAILURES check(s) failed" >&2
        exit 1
    fi
    echo "all checks passed"
}
